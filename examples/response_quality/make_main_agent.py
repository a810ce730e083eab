"""Generate examples/response_quality/main_agent.jsonl (deterministic):
python examples/response_quality/make_main_agent.py

Four saved main-agent runs in OpenAI chat-completions form, for the `response_quality` rubric (paper Fig. 7).
The main agent fixes a bug in /testbed with three tools: `terminal`, `str_replace_editor` and
`execution_subagent`, which runs commands on its behalf and returns only a <final_answer> summary.

- marshmallow-timedelta: one call, a precise answer the agent acts on directly;
- httpx-copy-with: one call, a vague answer: the agent re-runs the tests itself;
- click-bool-envvar: two calls (reproduce, then verify near the end of the run: fewer than 5 turns follow);
  the problem statement is given as a list of content parts;
- vite-alias-build: one call whose answer dumps the raw build log (the error is there, but buried),
  returned as content parts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent

SYSTEM = """You are an autonomous software engineer working in a repository checked out at /testbed. Your task is to resolve the issue in the user's message with a minimal, correct change to the source code. Do not modify the existing tests unless the issue requires it.

You have three tools:
- terminal: run a shell command in /testbed and see its full output.
- str_replace_editor: view, create and edit files (view / create / str_replace).
- execution_subagent: delegate a command-execution task (running tests, builds, reproduction scripts, installs) to an execution subagent. Give it a precise query: which commands to run and what to report. It runs the commands itself and returns only a short summary between <final_answer> and </final_answer>; you will NOT see the commands it ran or their raw output, so ask for the exact details you need (exit codes, failing test names, file:line, error messages).

Work step by step: locate the relevant code, make the change, then verify it by running the relevant tests. When you are done, reply with a short summary of the change and no tool call."""

_ids = iter(range(1, 1000))


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "id": f"call_{next(_ids):03d}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def assistant(text: str | None, *calls: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        m["tool_calls"] = list(calls)
    return m


def result(of: dict[str, Any], content: Any) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": of["id"], "content": content}


def turn(text: str | None, c: dict[str, Any], output: Any) -> list[dict[str, Any]]:
    return [assistant(text, c), result(c, output)]


def edited(path: str) -> str:
    return f"The file {path} has been edited successfully."


def run(run_id: str, problem: Any, *turns: list[dict[str, Any]], final: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": problem}]
    for t in turns:
        messages += t
    messages.append(assistant(final))
    return {"id": run_id, "messages": messages}


# --- marshmallow: a precise answer the agent acts on ----------------------------------------------------
TIMEDELTA_SRC = """1503	    def _serialize(self, value, attr, obj, **kwargs):
1504	        if value is None:
1505	            return None
1506	        base_unit = dt.timedelta(**{self.precision: 1})
1507	        return int(value.total_seconds() / base_unit.total_seconds())
1508\t
1509	    def _deserialize(self, value, attr, data, **kwargs):
1510	        try:
1511	            value = int(value)
1512	        except (TypeError, ValueError) as error:
1513	            raise self.make_error("invalid") from error"""

marshmallow = run(
    "marshmallow-timedelta",
    'TimeDelta serialization precision\n\n```python\nfrom marshmallow.fields import TimeDelta\nfrom datetime import timedelta\n\ntd_field = TimeDelta(precision="milliseconds")\nobj = dict()\nobj["td_field"] = timedelta(milliseconds=345)\nprint(td_field.serialize("td_field", obj))\n```\n\nOutput of this snippet is `344`, but it seems that `345` is correct. Looks like a rounding issue: the value goes through float seconds.',
    turn(
        "I'll find how TimeDelta serializes values.",
        call(
            "terminal",
            command="grep -n 'class TimeDelta' src/marshmallow/fields.py && sed -n 1500,1515p src/marshmallow/fields.py | cat -n",
        ),
        "1436:class TimeDelta(Field):\n" + TIMEDELTA_SRC,
    ),
    turn(
        "`value.total_seconds() / base_unit.total_seconds()` divides two floats: 0.345 / 0.001 = 344.99999999999994, and int() truncates it to 344. I'll compute in integer microseconds instead.",
        call(
            "str_replace_editor",
            command="str_replace",
            path="/testbed/src/marshmallow/fields.py",
            old_str="        base_unit = dt.timedelta(**{self.precision: 1})\n        return int(value.total_seconds() / base_unit.total_seconds())",
            new_str="        # Integer microseconds: float seconds lose precision (0.345 / 0.001 == 344.99999999999994).\n        base_unit = dt.timedelta(**{self.precision: 1})\n        delta = utils.timedelta_to_microseconds(value)\n        unit = utils.timedelta_to_microseconds(base_unit)\n        return delta // unit",
        ),
        edited("/testbed/src/marshmallow/fields.py"),
    ),
    turn(
        "That helper does not exist yet; I'll add it to utils.py.",
        call(
            "str_replace_editor",
            command="str_replace",
            path="/testbed/src/marshmallow/utils.py",
            old_str="def from_iso_time(value):",
            new_str='def timedelta_to_microseconds(value: dt.timedelta) -> int:\n    """The number of microseconds in a timedelta, computed without floats."""\n    return (value.days * (24 * 3600) + value.seconds) * 1000000 + value.microseconds\n\n\ndef from_iso_time(value):',
        ),
        edited("/testbed/src/marshmallow/utils.py"),
    ),
    turn(
        "Now I'll have the tests for TimeDelta run.",
        call(
            "execution_subagent",
            query="In /testbed, run `python -m pytest tests/test_fields.py tests/test_serialization.py -q -k 'timedelta or TimeDelta'` and report the pass/fail counts and, for every failure, the test id, file:line and the assertion message with the values compared.",
        ),
        "<final_answer>\nCommand: cd /testbed && python -m pytest tests/test_fields.py tests/test_serialization.py -q -k 'timedelta or TimeDelta'\nExit code: 1\nResult: 17 passed, 1 failed, 412 deselected in 0.38s\n\nFailure:\n- tests/test_serialization.py::TestFieldSerialization::test_timedelta_field (tests/test_serialization.py:603)\n  AssertionError: assert -1 == 0\n  The assertion is `assert field.serialize(\"d8\", user) == 0`, where user.d8 = dt.timedelta(microseconds=-1) and the field is fields.TimeDelta(fields.TimeDelta.SECONDS). The test expects truncation toward zero for negative values; the new code returns -1.\n\nAll other TimeDelta tests (precision variants, deserialization, invalid input) passed.\n</final_answer>",
    ),
    turn(
        "Floor division rounds -1 µs down to -1 s, while the previous behaviour (int() of a float) truncated toward zero. Let me look at the test to confirm what is expected.",
        call("terminal", command="sed -n 590,606p tests/test_serialization.py"),
        '        user.d6 = dt.timedelta(days=1, seconds=1, microseconds=1)\n        user.d7 = dt.timedelta(seconds=-1)\n        user.d8 = dt.timedelta(microseconds=-1)\n\n        field = fields.TimeDelta(fields.TimeDelta.DAYS)\n        assert field.serialize("d1", user) == 1\n        field = fields.TimeDelta(fields.TimeDelta.SECONDS)\n        assert field.serialize("d1", user) == 86400\n        field = fields.TimeDelta(fields.TimeDelta.SECONDS)\n        assert field.serialize("d6", user) == 86401\n        field = fields.TimeDelta(fields.TimeDelta.SECONDS)\n        assert field.serialize("d7", user) == -1\n        field = fields.TimeDelta(fields.TimeDelta.SECONDS)\n        assert field.serialize("d8", user) == 0\n        field = fields.TimeDelta(fields.TimeDelta.MICROSECONDS)\n        assert field.serialize("d8", user) == -1',
    ),
    turn(
        "Confirmed: negative values must truncate toward zero. I'll divide the absolute value and restore the sign.",
        call(
            "str_replace_editor",
            command="str_replace",
            path="/testbed/src/marshmallow/fields.py",
            old_str="        return delta // unit",
            new_str="        # Truncate toward zero, as int() did: -1 microsecond is 0 seconds, not -1.\n        quotient = abs(delta) // unit\n        return quotient if delta >= 0 else -quotient",
        ),
        edited("/testbed/src/marshmallow/fields.py"),
    ),
    turn(
        "Re-running the TimeDelta tests.",
        call(
            "terminal",
            command="python -m pytest tests/test_fields.py tests/test_serialization.py -q -k 'timedelta or TimeDelta' 2>&1 | tail -3",
        ),
        "..................                                                       [100%]\n18 passed, 412 deselected in 0.35s",
    ),
    turn(
        "And the snippet from the issue.",
        call(
            "terminal",
            command="python -c \"import datetime as dt; from marshmallow.fields import TimeDelta; print(TimeDelta(precision='milliseconds').serialize('td', {'td': dt.timedelta(milliseconds=345)}))\"",
        ),
        "345",
    ),
    final="TimeDelta now serializes in integer microseconds (new helper `utils.timedelta_to_microseconds`), so `timedelta(milliseconds=345)` with precision milliseconds gives 345 instead of 344. Negative values still truncate toward zero as before; all 18 TimeDelta tests pass.",
)

# --- httpx: a vague answer, so the agent re-runs the tests itself ------------------------------------
httpx = run(
    "httpx-copy-with",
    '`URL.copy_with(params=...)` drops the fragment\n\n```python\n>>> import httpx\n>>> httpx.URL("https://example.org/path#section").copy_with(params={"a": "1"})\nURL(\'https://example.org/path?a=1\')\n```\n\nExpected `URL(\'https://example.org/path?a=1#section\')`. Only the query should change.',
    turn(
        "Let me look at copy_with.",
        call("terminal", command="grep -n 'def copy_with' -A 24 httpx/_urls.py"),
        '255:    def copy_with(self, **kwargs: typing.Any) -> "URL":\n256-        """\n257-        Copy this URL, returning a new URL with some components altered.\n258-        Accepts the same set of parameters as the components that are made\n259-        available via properties on the `URL` class.\n260-        """\n261-        if "params" in kwargs:\n262-            params = kwargs.pop("params")\n263-            query = str(QueryParams(params)).encode("ascii")\n264-            return URL(self, query=query, fragment=None, **kwargs)\n265-        return URL(self, **kwargs)',
    ),
    turn(
        "Line 264 explicitly passes `fragment=None`, which clears the fragment. The params branch should only replace the query.",
        call(
            "str_replace_editor",
            command="str_replace",
            path="/testbed/httpx/_urls.py",
            old_str='            query = str(QueryParams(params)).encode("ascii")\n            return URL(self, query=query, fragment=None, **kwargs)',
            new_str='            kwargs["query"] = str(QueryParams(params)).encode("ascii")\n        return URL(self, **kwargs)',
        ),
        edited("/testbed/httpx/_urls.py"),
    ),
    turn(
        "I'll have the URL tests run.",
        call(
            "execution_subagent",
            query="Run `python -m pytest tests/models/test_url.py -q` in /testbed and report which tests fail, with the assertion message and file:line of each failure, and the pass/fail counts.",
        ),
        "<final_answer>\nI ran the tests for the URL model. Most of the tests passed, but there were a few failures related to URL handling. The failures seem to be caused by the recent changes to copy_with. You may want to review the implementation of copy_with and make sure query parameters are handled correctly.\n</final_answer>",
    ),
    turn(
        "The subagent did not say which tests failed or why. I'll run them myself.",
        call("terminal", command="python -m pytest tests/models/test_url.py -q 2>&1 | tail -25"),
        "......................................F.......................F....................... [100%]\n=================================== FAILURES ===================================\n_________________________ test_url_copy_with_empty_params ______________________\n\n    def test_url_copy_with_empty_params():\n        url = httpx.URL(\"https://example.org/path?a=1#frag\")\n>       assert url.copy_with(params={}) == httpx.URL(\"https://example.org/path#frag\")\nE       AssertionError: assert URL('https://example.org/path?#frag') == URL('https://example.org/path#frag')\n\ntests/models/test_url.py:311: AssertionError\n___________________________ test_url_copy_remove_param _________________________\n\n    def test_url_copy_remove_param():\n        url = httpx.URL(\"https://example.org:123/?a=123\")\n>       assert url.copy_remove_param(\"a\") == \"https://example.org:123/\"\nE       AssertionError: assert URL('https://example.org:123/?') == 'https://example.org:123/'\n\ntests/models/test_url.py:402: AssertionError\n=========================== short test summary info ============================\nFAILED tests/models/test_url.py::test_url_copy_with_empty_params - AssertionError: assert URL('https://example.org/path?#frag') == URL('https://example.org/path#frag')\nFAILED tests/models/test_url.py::test_url_copy_remove_param - AssertionError: assert URL('https://example.org:123/?') == 'https://example.org:123/'\n2 failed, 84 passed in 0.29s",
    ),
    turn(
        'Two failures, both with a bare `?`: an empty params dict now gives the query b"". `test_url_copy_with_empty_params` is this issue\'s case; let me check that copy_remove_param goes through copy_with too.',
        call("terminal", command="grep -n 'def copy_remove_param' -A 3 httpx/_urls.py"),
        '318:    def copy_remove_param(self, key: str) -> "URL":\n319-        return self.copy_with(params=self.params.remove(key))\n320-\n321-    def copy_merge_params(self, params: QueryParamTypes) -> "URL":',
    ),
    turn(
        'Same cause for both: when the params are empty the query must be None, not b"", so that no `?` is written.',
        call(
            "str_replace_editor",
            command="str_replace",
            path="/testbed/httpx/_urls.py",
            old_str='            kwargs["query"] = str(QueryParams(params)).encode("ascii")',
            new_str='            # An empty query is None, not b"": otherwise a bare "?" is written.\n            kwargs["query"] = str(QueryParams(params)).encode("ascii") or None',
        ),
        edited("/testbed/httpx/_urls.py"),
    ),
    turn(
        "Running the URL tests again.",
        call("terminal", command="python -m pytest tests/models/test_url.py -q 2>&1 | tail -4"),
        "......................................................................................  [100%]\n86 passed in 0.27s",
    ),
    turn(
        "All 86 URL tests pass. Checking the example from the issue.",
        call(
            "terminal",
            command="python -c \"import httpx; print(httpx.URL('https://example.org/path#section').copy_with(params={'a': '1'}))\"",
        ),
        "https://example.org/path?a=1#section",
    ),
    final="`URL.copy_with(params=...)` no longer clears the fragment: the params branch now only sets the query, and an empty params dict gives no query at all (no bare `?`, which also fixes copy_remove_param of the last parameter). All 86 tests in tests/models/test_url.py pass.",
)

# --- click: two calls; the second near the end of the run ---------------------------------------------
REPRO = 'import click\n\n\n@click.command()\n@click.option("--debug/--no-debug", envvar="FLAG_DEBUG", default=False)\ndef cli(debug):\n    click.echo(f"debug={debug}")\n\n\nif __name__ == "__main__":\n    cli()\n'

click = run(
    "click-bool-envvar",
    [
        {"type": "text", "text": "Boolean flag ignores a falsy environment variable\n\n"},
        {
            "type": "text",
            "text": 'A boolean flag with `envvar` is always True when the variable is set, whatever its value:\n\n```python\n@click.command()\n@click.option("--debug/--no-debug", envvar="FLAG_DEBUG", default=False)\ndef cli(debug):\n    click.echo(f"debug={debug}")\n```\n\n`FLAG_DEBUG=0 python app.py` prints `debug=True`. `0`, `false`, `no` and `off` should give False, like the BOOL type accepts on the command line.',
        },
    ],
    turn(
        "I'll write a reproduction script first.",
        call("str_replace_editor", command="create", path="/testbed/reproduce_envvar.py", file_text=REPRO),
        "File created successfully at: /testbed/reproduce_envvar.py",
    ),
    turn(
        "Let me confirm the behaviour.",
        call(
            "execution_subagent",
            query="In /testbed, run `FLAG_DEBUG=0 python reproduce_envvar.py` and `FLAG_DEBUG=1 python reproduce_envvar.py` and report the exact printed output and the exit code of each run.",
        ),
        "<final_answer>\n1. `FLAG_DEBUG=0 python reproduce_envvar.py` -> printed `debug=True`, exit code 0\n2. `FLAG_DEBUG=1 python reproduce_envvar.py` -> printed `debug=True`, exit code 0\n\nThe issue reproduces: FLAG_DEBUG=0 is read as True.\n</final_answer>",
    ),
    turn(
        "Reproduced. Let me find where a flag's value is taken from the environment.",
        call("terminal", command="grep -n 'def resolve_envvar_value\\|def value_from_envvar' -A 14 src/click/core.py"),
        '2893:    def resolve_envvar_value(self, ctx: Context) -> str | None:\n2894-        rv = super().resolve_envvar_value(ctx)\n2895-\n2896-        if rv is not None:\n2897-            return rv\n2898-\n2899-        if (\n2900-            self.allow_from_autoenv\n2901-            and ctx.auto_envvar_prefix is not None\n2902-            and self.name is not None\n2903-        ):\n2904-            envvar = f"{ctx.auto_envvar_prefix}_{self.name.upper()}"\n2905-            rv = os.environ.get(envvar)\n2906-\n2907-            if rv:\n2908:    def value_from_envvar(self, ctx: Context) -> t.Any | None:\n2909-        rv: t.Any | None = self.resolve_envvar_value(ctx)\n2910-\n2911-        if rv is None:\n2912-            return None\n2913-\n2914-        if self.is_flag and self.flag_value:\n2915-            return bool(rv)\n2916-\n2917-        value_depth = (self.nargs != 1) + bool(self.multiple)',
    ),
    turn(
        'Line 2915: `bool(rv)` is True for any non-empty string, including "0". The value should go through the BOOL type instead.',
        call(
            "str_replace_editor",
            command="str_replace",
            path="/testbed/src/click/core.py",
            old_str="        if self.is_flag and self.flag_value:\n            return bool(rv)",
            new_str='        if self.is_flag and self.flag_value:\n            # "0", "false", "no", "off" are False, as on the command line.\n            return types.BoolParamType().convert(rv, self, ctx)',
        ),
        edited("/testbed/src/click/core.py"),
    ),
    turn(
        "Checking that `types` is imported in core.py.",
        call("terminal", command="grep -n '^from . import types\\|^from \\.types import' src/click/core.py"),
        "26:from . import types",
    ),
    turn(
        "Good. Now I'll have the fix verified.",
        call(
            "execution_subagent",
            query="In /testbed, run `FLAG_DEBUG=0 python reproduce_envvar.py` and `FLAG_DEBUG=1 python reproduce_envvar.py` (report the printed output of each), then `python -m pytest tests/test_options.py tests/test_basic.py -q` and report the pass/fail counts and any failure with file:line and message.",
        ),
        "<final_answer>\n- `FLAG_DEBUG=0 python reproduce_envvar.py` -> `debug=False` (exit 0)\n- `FLAG_DEBUG=1 python reproduce_envvar.py` -> `debug=True` (exit 0)\n- `python -m pytest tests/test_options.py tests/test_basic.py -q` -> exit 0, 241 passed in 0.62s, no failures.\n</final_answer>",
    ),
    turn(
        "The fix works and the option tests pass. Removing the reproduction script.",
        call("terminal", command="rm reproduce_envvar.py && git status --short"),
        " M src/click/core.py",
    ),
    final="A boolean flag read from its environment variable is now converted with the BOOL type instead of `bool()`, so `FLAG_DEBUG=0` (or false/no/off) gives False. Verified with a reproduction script; tests/test_options.py and tests/test_basic.py pass (241 tests).",
)

# --- vite: the answer dumps the raw log; the error is there, but buried -----------------------------
BUILD_LOG = """<final_answer>
Here is the output of the build:

> vite-plugin-paths@2.4.1 build
> tsc -p tsconfig.build.json && vite build

npm WARN config production Use `--omit=dev` instead.
Browserslist: caniuse-lite is outdated. Please run:
  npx update-browserslist-db@latest
  Why you should do it regularly: https://github.com/browserslist/update-db#readme
src/plugins/alias.ts(42,23): error TS2345: Argument of type 'string | undefined' is not assignable to parameter of type 'string'.
  Type 'undefined' is not assignable to type 'string'.
src/index.ts(3,1): warning: 'resolveAlias' is re-exported but never used in this module.
npm ERR! Lifecycle script `build` failed with error:
npm ERR! Error: command failed
npm ERR!   in workspace: vite-plugin-paths@2.4.1
npm ERR!   at location: /testbed
npm notice
npm notice New minor version of npm available! 10.2.4 -> 10.5.0
npm notice Changelog: https://github.com/npm/cli/releases/tag/v10.5.0
npm notice Run `npm install -g npm@10.5.0` to update!
npm notice

The build did not succeed. There were also some warnings about browserslist and npm versions.
</final_answer>"""

vite = run(
    "vite-alias-build",
    "Build fails after upgrading to TypeScript 5.4\n\nAfter bumping `typescript` from 5.3.3 to 5.4.2, `npm run build` fails with a type error in the alias plugin. Make the build pass again without loosening `strict` in tsconfig.",
    [
        assistant(
            "I'll have the build run to see the exact errors.",
            c := call(
                "execution_subagent",
                query="In /testbed run `npm run build` and report every TypeScript error (file:line:column, error code, message) and the exit code.",
            ),
        ),
        result(c, [{"type": "text", "text": BUILD_LOG}]),
    ],
    turn(
        "One error: src/plugins/alias.ts line 42. Let me view it.",
        call("str_replace_editor", command="view", path="/testbed/src/plugins/alias.ts", view_range=[34, 50]),
        "    34\t  return {\n    35\t    name: 'vite-plugin-paths:alias',\n    36\t    enforce: 'pre',\n    37\t    resolveId(source, importer) {\n    38\t      const match = aliases.find((a) => source.startsWith(a.find))\n    39\t      if (!match) return null\n    40\t      const rest = source.slice(match.find.length)\n    41\t      const base = importer ? path.dirname(importer) : root\n    42\t      return resolveAlias(match.replacement, rest, base)\n    43\t    },\n    44\t  }\n    45\t}\n    46\t\n    47\texport function resolveAlias(target: string, rest: string, base: string): string {\n    48\t  return path.resolve(base, target + rest)\n    49\t}",
    ),
    turn(
        "`match.replacement` is `string | undefined` in the Alias type. With TypeScript 5.4 the narrowing from `find` no longer carries over. An alias without a replacement cannot be resolved, so return null for it.",
        call(
            "str_replace_editor",
            command="str_replace",
            path="/testbed/src/plugins/alias.ts",
            old_str="      if (!match) return null",
            new_str="      if (!match || match.replacement === undefined) return null",
        ),
        edited("/testbed/src/plugins/alias.ts"),
    ),
    turn(
        "Rebuilding.",
        call("terminal", command="npm run build 2>&1 | tail -6; echo exit=${PIPESTATUS[0]}"),
        "> tsc -p tsconfig.build.json && vite build\n\n\x1b[36mvite v5.1.6 \x1b[32mbuilding for production...\x1b[39m\n\x1b[32m✓\x1b[39m 14 modules transformed.\n\x1b[32m✓ built in 1.92s\x1b[39m\nexit=0",
    ),
    turn(
        "The build passes. Running the plugin's unit tests.",
        call("terminal", command="npx vitest run src/plugins 2>&1 | tail -5"),
        " \x1b[32m✓\x1b[39m src/plugins/alias.test.ts  (12 tests) 18ms\n\n \x1b[2m Test Files \x1b[22m \x1b[1m\x1b[32m1 passed\x1b[39m\x1b[22m (1)\n \x1b[2m      Tests \x1b[22m \x1b[1m\x1b[32m12 passed\x1b[39m\x1b[22m (12)\n \x1b[2m   Duration \x1b[22m 611ms",
    ),
    final="The alias plugin now returns null for an alias without a replacement before calling `resolveAlias`, which fixes TS2345 at src/plugins/alias.ts:42 under TypeScript 5.4 without loosening `strict`. `npm run build` exits 0 and the 12 alias tests pass.",
)


def main() -> None:
    runs = [marshmallow, httpx, click, vite]
    with open(HERE / "main_agent.jsonl", "w", encoding="utf-8") as f:
        for r in runs:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
