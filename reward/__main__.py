"""The `reward` command (`python -m reward`, and the console script's entry point `run`).

Importing the command line takes seconds on a loaded machine (litellm, pydantic models, numpy). A Ctrl-C in
that time would print a traceback, or be swallowed by a library's broad `except` around an optional import and
let the command run on as if nothing was pressed: so the press is only noted while the imports run, and acted
on once they are done, with the same one line as an interruption later on.
"""

from __future__ import annotations

import signal


def run() -> None:
    pressed: list[int] = []
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started ignoring it (nohup, a background job): so be it
        from reward.cli.main import main
    else:
        previous = signal.signal(signal.SIGINT, lambda *_: pressed.append(1))
        try:
            from reward.cli.main import main, say_interrupted
        finally:
            signal.signal(signal.SIGINT, previous)
        if pressed:
            say_interrupted()
    main()


if __name__ == "__main__":
    run()
