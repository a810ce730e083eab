"""Capture REAL command outputs for the calibration set: python examples/calibration/capture.py

Writes five small projects with real defects (Python/pytest, Node/npm, Rust/cargo, C/make, Java/javac) into
a temporary directory, runs the commands the calibration rollouts use, and records each command's exit
code and combined output in captures.json (the temporary path is replaced by /work/<project>, and each run
is recorded with its exit code). build.py turns the captures into labelled rollouts. Needs python3 with pytest,
node/npm, cargo, gcc/make and javac on PATH; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent

PROJECTS: dict[str, dict[str, str]] = {
    "textstats": {
        "textstats/__init__.py": "from textstats.core import word_count, top_words\n",
        "textstats/core.py": (
            "from collections import Counter\n\n\n"
            "def word_count(text: str) -> int:\n"
            '    return len([w for w in text.split(" ")])\n\n\n'
            "def top_words(text: str, n: int = 3) -> list[str]:\n"
            "    return [w for w, _ in Counter(text.lower().split()).most_common(n)]\n"
        ),
        "tests/test_core.py": (
            "from textstats import top_words, word_count\n\n\n"
            "def test_word_count_simple():\n    assert word_count('a b c') == 3\n\n\n"
            "def test_word_count_multiple_spaces():\n    assert word_count('a  b') == 2\n\n\n"
            "def test_top_words():\n    assert top_words('b a b c b a', 2) == ['b', 'a']\n\n\n"
            "def test_top_words_case():\n    assert top_words('A a B', 1) == ['a']\n"
        ),
        "tests/test_report.py": (
            "from textstats.report import render\n\n\ndef test_render():\n    assert render('a b') == 'words: 2'\n"
        ),
    },
    "dayfmt": {
        "package.json": json.dumps(
            {"name": "dayfmt", "version": "1.2.0", "private": True, "scripts": {"test": "node --test"}}, indent=2
        )
        + "\n",
        "src/format.js": (
            "'use strict';\n\n"
            "function formatDate(d) {\n"
            "  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;\n"
            "}\n\n"
            "function parseDate(s) {\n"
            "  const [y, m, d] = s.split('-').map(Number);\n"
            "  return new Date(y, m - 1, d);\n"
            "}\n\n"
            "module.exports = { formatDate, parseDate };\n"
        ),
        "test/format.test.js": (
            "'use strict';\n"
            "const test = require('node:test');\n"
            "const assert = require('node:assert');\n"
            "const { formatDate, parseDate } = require('../src/format');\n\n"
            "test('formats a date as YYYY-MM-DD', () => {\n"
            "  assert.strictEqual(formatDate(new Date(2024, 2, 5)), '2024-03-05');\n"
            "});\n\n"
            "test('parses an ISO date', () => {\n"
            "  assert.strictEqual(parseDate('2024-03-05').getMonth(), 2);\n"
            "});\n\n"
            "test('parseDate returns null for missing input', () => {\n"
            "  assert.strictEqual(parseDate(undefined), null);\n"
            "});\n"
        ),
    },
    "kvparse": {
        "Cargo.toml": '[package]\nname = "kvparse"\nversion = "0.3.1"\nedition = "2021"\n\n[dependencies]\n',
        "src/lib.rs": (
            "/// Parses `key = value` lines.\n"
            "pub fn parse_line(line: &str) -> Option<(String, String)> {\n"
            "    let comment = line.starts_with('#');\n"
            "    let (k, v) = line.split_once('=')?;\n"
            "    Some((k.to_string(), v.to_string()))\n"
            "}\n\n"
            "#[cfg(test)]\nmod tests {\n    use super::*;\n\n"
            '    #[test]\n    fn no_equals_is_none() {\n        assert_eq!(parse_line("abc"), None);\n    }\n\n'
            "    #[test]\n    fn tight_pair() {\n"
            '        assert_eq!(parse_line("a=1"), Some(("a".to_string(), "1".to_string())));\n    }\n\n'
            "    #[test]\n    fn spaced_pair_is_trimmed() {\n"
            '        assert_eq!(parse_line("a = 1"), Some(("a".to_string(), "1".to_string())));\n    }\n}\n'
        ),
    },
    "ringbuf": {
        "Makefile": (
            "CC ?= gcc\nCFLAGS ?= -Wall -Wextra -O2\n\n"
            "ringbuf: main.o ring.o\n\t$(CC) $(CFLAGS) -o $@ $^\n\n"
            "%.o: %.c ring.h\n\t$(CC) $(CFLAGS) -c $<\n\n"
            "clean:\n\trm -f *.o ringbuf\n"
        ),
        "ring.h": (
            "#ifndef RING_H\n#define RING_H\n#include <stddef.h>\n"
            "typedef struct { int *data; size_t cap; size_t head; size_t length; } ring_t;\n"
            "int ring_push(ring_t *r, int v);\nsize_t ring_len(const ring_t *r);\n#endif\n"
        ),
        "ring.c": (
            '#include "ring.h"\n\n'
            "int ring_push(ring_t *r, int v) {\n"
            "    if (r->length == r->cap) return -1;\n"
            "    r->data[(r->head + r->length) % r->cap] = v;\n"
            "    r->length++;\n    return 0;\n}\n\n"
            "size_t ring_len(const ring_t *r) {\n    return r->lenght;\n}\n"
        ),
        "main.c": (
            '#include <stdio.h>\n#include "ring.h"\n\n'
            "int main(void) {\n    int buf[4];\n    ring_t r = {buf, 4, 0, 0};\n"
            "    ring_push(&r, 1);\n"
            '    printf("%zu\\n", ring_len(&r));\n    return 0;\n}\n'
        ),
    },
    "invoicer": {
        "src/com/acme/invoice/Invoice.java": (
            "package com.acme.invoice;\n\nimport java.util.List;\n\n"
            "public class Invoice {\n"
            "    private final List<LineItem> items;\n\n"
            "    public Invoice(List<LineItem> items) { this.items = items; }\n\n"
            "    public long totalCents() {\n"
            "        return items.stream().mapToLong(LineItem::priceCents).sum();\n"
            "    }\n}\n"
        ),
        "src/com/acme/invoice/LineItem.java": (
            "package com.acme.invoice;\n\n"
            "public record LineItem(String name, long unitCents, int quantity) {\n"
            "    public long totalCents() { return unitCents * quantity; }\n}\n"
        ),
    },
}

# (project, command) pairs, run in order; build.py refers to them by (project, command).
COMMANDS: list[tuple[str, str]] = [
    ("textstats", "python -m pytest -q"),
    ("textstats", "python -m pytest -q --continue-on-collection-errors"),
    ("textstats", "python -m pytest -q tests/test_core.py"),
    ("textstats", "ls -R"),
    ("textstats", "python --version"),
    ("textstats", "cat textstats/__init__.py"),
    ("dayfmt", "npm test"),
    ("dayfmt", "node --test test/"),
    ("dayfmt", "ls"),
    ("dayfmt", "node --version"),
    ("dayfmt", "cat package.json"),
    ("kvparse", "cargo test"),
    ("kvparse", "cargo build"),
    ("kvparse", "ls"),
    ("kvparse", "cargo --version"),
    ("kvparse", "cat Cargo.toml"),
    ("ringbuf", "make"),
    ("ringbuf", "make -k"),
    ("ringbuf", "grep -n lenght *.c *.h"),
    ("ringbuf", "ls"),
    ("ringbuf", "gcc --version"),
    ("ringbuf", "cat Makefile"),
    ("ringbuf", "make clean"),
    ("invoicer", "mkdir -p out && javac -d out $(find src -name '*.java')"),
    ("invoicer", "javac -d out -Xdiags:verbose $(find src -name '*.java')"),
    ("invoicer", "ls -R src"),
    ("invoicer", "java -version 2>&1"),
    ("invoicer", "cat src/com/acme/invoice/LineItem.java"),
]


def _write(root: Path) -> None:
    for project, files in PROJECTS.items():
        for rel, text in files.items():
            path = root / project / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")


def main() -> None:
    env = {
        **os.environ,
        "CARGO_TERM_COLOR": "never",
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
        "LC_ALL": "C.UTF-8",
        "RUST_BACKTRACE": "0",
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` is this interpreter
    captures = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write(root)
        for project, command in COMMANDS:
            proc = subprocess.run(
                command,
                shell=True,
                cwd=root / project,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # interleaved, as a terminal shows them
                text=True,
                timeout=600,
            )
            output = proc.stdout.replace(str(root), "/work")
            captures.append({"project": project, "command": command, "exit_code": proc.returncode, "output": output})
            print(f"{project:10} exit {proc.returncode:3}  {command}", file=sys.stderr)
    (HERE / "captures.json").write_text(json.dumps(captures, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
