"""Cleaning and truncation of command outputs before they reach a judge prompt.

Pure functions. The order matters: escape sequences are removed first (they may contain carriage
returns of their own), then carriage-return overwrites are resolved line by line, then stray control
characters are dropped, and only then is the text truncated, so the head/tail budget is spent on
characters a reader would actually see.
"""

from __future__ import annotations

import re

# CSI (colours, cursor moves), OSC (window titles, hyperlinks; BEL- or ST-terminated) and the
# two-character escapes. Covers what test runners and package managers emit.
_ANSI = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]            # CSI ... final byte
  | \x1b\][^\x07\x1b]*(?:\x07|\x1b\\)  # OSC ... BEL or ST
  | \x1b[PX^_][^\x1b]*\x1b\\           # DCS / SOS / PM / APC strings
  | \x1b[@-Z\\-_]                      # other 7-bit C1 escapes
  | \x9b[0-?]*[ -/]*[@-~]              # 8-bit CSI
    """,
    re.VERBOSE,
)
# C0 controls other than tab and newline, DEL (and a lone ESC left over from a broken sequence), C1 controls,
# and the invisible format characters: soft hyphen, zero-width spaces and joiners, bidi marks, embeddings,
# overrides and isolates, word joiners and invisible operators, the BOM, interlinear annotation marks and the
# tag characters (invisible ASCII). Text a reader cannot see must not decide a penalty or hide in a prompt.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def resolve_carriage_returns(text: str) -> str:
    """Apply terminal carriage-return semantics: text after a CR overwrites the line from column 0.

    A progress bar written as ``10%\\r50%\\r100%`` keeps only ``100%``; ``\\r\\n`` line endings are
    plain newlines.
    """
    if "\r" not in text:
        return text
    lines = []
    for line in text.split("\n"):
        if "\r" not in line:
            lines.append(line)
            continue
        buf = ""
        for segment in line.split("\r"):
            # Overwrite the start of the line; a shorter segment leaves the tail of the old one.
            buf = segment + buf[len(segment) :]
        lines.append(buf)
    return "\n".join(lines)


def sanitize(text: str) -> str:
    """Make arbitrary text safe to embed in a prompt: valid UTF-8, no control or invisible format characters.

    The one cleaning of what the judge is shown of commands, final answers and inputs; the penalty checks
    ("has commands", "has a final answer") read the same cleaned text, so what the judge cannot see cannot
    escape a penalty either."""
    # Lone surrogates survive json.loads but cannot be encoded for the HTTP request.
    text = text.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub("", text)


def readable(text: str) -> str:
    """Written text (the query, commands, final answers, declared inputs) as the judge is shown it and the
    penalty checks read it: escape sequences stripped, then `sanitize`d. Rollouts that differ only in colour
    codes share one judgement, and an answer of escape sequences only is empty. A carriage return is dropped
    with every character kept: this text is read, not rendered by a terminal, and overwrite semantics would
    hide from the judge what the policy wrote (`rm -rf x\rls` shown as `ls -rf x`). Outputs, which are
    terminal captures, get the overwrites resolved (`clean_output`)."""
    return sanitize(strip_ansi(text))


_BLANK_RUNS = re.compile(r"\n{3,}")


def canonical_whitespace(text: str) -> str:
    """No trailing spaces or tabs on any line, and at most one blank line in a row.

    Two rollouts that differ only there are the same thing to a reader, so they get one judgement (one cache
    key) instead of two that may differ and show up as signal in a group with no real difference. Line by
    line, not a regex over the text: `[ \t]+$`-style patterns are quadratic on a long run of spaces."""
    if " \n" in text or "\t\n" in text or "\n\n\n" in text or text.endswith((" ", "\t")):
        text = "\n".join(line.rstrip(" \t") for line in text.split("\n"))
        return _BLANK_RUNS.sub("\n\n", text)
    return text


def clean_output(text: str) -> str:
    """Strip escape sequences, resolve carriage returns, drop control characters, make whitespace canonical
    and drop blank edges.

    Blank edges carry no information and differ between transports (a chat template wraps a tool result
    in newlines), so dropping them lets the same output given as steps, messages or text match exactly.
    """
    return canonical_whitespace(sanitize(resolve_carriage_returns(strip_ansi(text)))).lstrip("\n").rstrip()


def truncation_marker(cut: int) -> str:
    return f"\n[... {cut:,} characters truncated ...]\n"


def truncate(text: str, head: int, tail: int) -> str:
    """Keep the first ``head`` and last ``tail`` characters (code points, never split bytes).

    Text no longer than ``head + tail`` is returned whole: a marker would cost more than it saves.
    """
    if head < 0 or tail < 0:
        raise ValueError("head and tail must be >= 0")
    n = len(text)
    if n <= head + tail:
        return text
    # text[-0:] would be the whole string, hence the explicit start index.
    return text[:head] + truncation_marker(n - head - tail) + text[n - tail :]


def prepare_output(text: str, head: int, tail: int) -> str:
    """What the judge is shown of one command's output."""
    return truncate(clean_output(text), head, tail)
