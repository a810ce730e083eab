"""Generate the bundled example files (deterministic): python examples/make_examples.py

- examples/rollouts.jsonl: 4 prompt groups x 8 rollouts (pytest, npm/jest, dotnet, cargo), with good,
  terse, hallucinating, misdirected and degenerate rollouts, ANSI colours and progress bars;
- examples/references.jsonl: the same references as trajectories, for `reward plans`.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
RED, GREEN, BOLD, RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"


def fa(text: str) -> str:
    return f"<final_answer>\n{text.strip()}\n</final_answer>"


def step(command: str, exit_code: int, output: str) -> dict:
    return {"command": command, "exit_code": exit_code, "output": output}


# --- pytest ------------------------------------------------------------------------------------------
PYTEST_COLLECT = (
    "============================= test session starts ==============================\n"
    "platform linux -- Python 3.11.7, pytest-8.3.2, pluggy-1.5.0\n"
    "rootdir: /testbed\nconfigfile: pyproject.toml\nplugins: cov-5.0.0\ncollected 214 items\n\n"
)
PYTEST_DOTS = "".join(
    f"tests/test_{name}.py {'.' * n}{' ' * (60 - n)}[{pct:3d}%]\n"
    for name, n, pct in [
        ("cli", 38, 17),
        ("config", 41, 36),
        ("parser", 57, 63),
        ("render", 44, 84),
        ("utils", 32, 100),
    ]
)
PYTEST_FAIL = (
    PYTEST_COLLECT
    + PYTEST_DOTS.replace("tests/test_parser.py " + "." * 57, "tests/test_parser.py " + "." * 55 + "FF")
    + "\n=================================== FAILURES ===================================\n"
    "___________________________ test_parse_quoted_comma ____________________________\n\n"
    "    def test_parse_quoted_comma():\n>       assert parse_row('a,\"b,c\",d') == ['a', 'b,c', 'd']\n"
    "E       AssertionError: assert ['a', '\"b', 'c\"', 'd'] == ['a', 'b,c', 'd']\n"
    "E         At index 1 diff: '\"b' != 'b,c'\n\ntests/test_parser.py:88: AssertionError\n"
    "___________________________ test_parse_escaped_quote ___________________________\n\n"
    '    def test_parse_escaped_quote():\n>       assert parse_row(\'"a""b"\') == [\'a"b\']\n'
    "E       AssertionError: assert ['a\"\"b'] == ['a\"b']\n\ntests/test_parser.py:95: AssertionError\n"
    "=========================== short test summary info ============================\n"
    f"{RED}FAILED{RESET} tests/test_parser.py::test_parse_quoted_comma - AssertionError: assert ['a', '\"b', 'c\"', 'd'] == ...\n"
    f"{RED}FAILED{RESET} tests/test_parser.py::test_parse_escaped_quote - AssertionError: assert ['a\"\"b'] == ['a\"b']\n"
    f"{RED}{BOLD}========================= 2 failed, 212 passed in 4.81s ========================={RESET}\n"
)
PYTEST_QUERY = (
    "Run the test suite in /testbed with `python -m pytest -q tests/` and report which tests fail, "
    "with their assertion messages and file:line."
)
PYTEST_GOOD = fa(
    """
Command: cd /testbed && python -m pytest tests/
Summary: 2 failed, 212 passed in 4.81s (exit code 1). Failures, both in tests/test_parser.py:
- test_parse_quoted_comma (line 88): parse_row('a,"b,c",d') returned ['a', '"b', 'c"', 'd'] instead of ['a', 'b,c', 'd'] - quoted commas are split.
- test_parse_escaped_quote (line 95): parse_row('"a""b"') returned ['a""b'] instead of ['a"b'] - doubled quotes are not unescaped.
All other modules (cli, config, render, utils) pass.
"""
)


def pytest_group() -> dict:
    ok = step("cd /testbed && python -m pytest tests/", 1, PYTEST_FAIL)
    return {
        "group_id": "pytest-csvkit-parser",
        "query": PYTEST_QUERY,
        "reference": {"steps": [ok], "final_answer": PYTEST_GOOD},
        "rollouts": [
            {"id": "good", "steps": [ok], "final_answer": PYTEST_GOOD, "num_tokens": 3120},
            {
                "id": "recovered",
                "steps": [
                    step("pytest -q tests/", 127, "bash: pytest: command not found\n"),
                    step("cd /testbed && python -m pytest -q tests/", 1, PYTEST_FAIL),
                ],
                "final_answer": fa(
                    "Command: pytest -q tests/ -> not on PATH (127); reran as python -m pytest.\n"
                    "Summary: 2 failed, 212 passed. FAILED tests/test_parser.py::test_parse_quoted_comma "
                    "(line 88, quoted comma split) and ::test_parse_escaped_quote (line 95, doubled quote kept)."
                ),
                "num_tokens": 3604,
            },
            {
                "id": "terse",
                "steps": [ok],
                "final_answer": fa("Command: python -m pytest tests/\nSummary: some parser tests fail."),
                "num_tokens": 2950,
            },
            {
                "id": "hallucinated",
                "steps": [ok],
                "final_answer": fa("Command: python -m pytest tests/\nSummary: All 214 tests passed in 4.81s."),
                "num_tokens": 2941,
            },
            {
                "id": "wrong-dir",
                "steps": [
                    step(
                        "python -m pytest -q", 4, "ERROR: file or directory not found: tests\n\nno tests ran in 0.01s\n"
                    ),
                ],
                "final_answer": fa(
                    "Command: python -m pytest -q\nSummary: no tests ran (exit code 4); tests not found."
                ),
                "num_tokens": 1210,
            },
            {"id": "no-final-answer", "steps": [ok], "final_answer": "The tests ran; two failed.", "num_tokens": 2890},
            {
                "id": "no-commands",
                "steps": [],
                "final_answer": fa("Summary: the parser tests probably fail on quoted fields."),
                "num_tokens": 640,
            },
            {"id": "good-duplicate", "steps": [ok], "final_answer": PYTEST_GOOD, "num_tokens": 3120},
        ],
    }


# --- npm / jest --------------------------------------------------------------------------------------
NPM_INSTALL = (
    "\r⸩ ░░░░░░░░░░░░░░░░░░ idealTree: timing idealTree Completed in 412ms"
    "\r⸨##########░░░░░░░░⸩ reify:typescript: timing reifyNode Completed in 2310ms"
    "\r\nadded 612 packages, and audited 613 packages in 9s\n\n"
    "84 packages are looking for funding\n  run `npm fund` for details\n\n"
    "2 moderate severity vulnerabilities\n\nTo address all issues, run:\n  npm audit fix\n"
)
JEST_FAIL = (
    "\n> date-kit@3.4.1 test\n> jest --ci\n\n"
    f"{GREEN}PASS{RESET} src/__tests__/parse.test.ts\n{GREEN}PASS{RESET} src/__tests__/add.test.ts\n"
    f"{RED}FAIL{RESET} src/__tests__/format.test.ts\n"
    "  ● formatRelative › formats yesterday in a UTC+13 timezone\n\n"
    "    expect(received).toBe(expected) // Object.is equality\n\n"
    '    Expected: "yesterday at 11:00 PM"\n    Received: "today at 11:00 PM"\n\n'
    "      42 |     const base = new Date('2024-03-10T10:00:00Z');\n"
    "      43 |     const d = new Date('2024-03-09T10:00:00Z');\n"
    "    > 44 |     expect(formatRelative(d, base, { timeZone: 'Pacific/Auckland' })).toBe('yesterday at 11:00 PM');\n"
    "         |                                                                        ^\n\n"
    "      at Object.<anonymous> (src/__tests__/format.test.ts:44:72)\n\n"
    + "".join(f"{GREEN}PASS{RESET} src/__tests__/{n}.test.ts\n" for n in ["sub", "diff", "locale", "interval", "week"])
    + f"\nTest Suites: {RED}1 failed{RESET}, 7 passed, 8 total\nTests:       {RED}1 failed{RESET}, 311 passed, 312 total\n"
    "Snapshots:   0 total\nTime:        6.204 s\nRan all test suites.\n"
)
NPM_GOOD = fa(
    """
Command: npm ci
Summary: installed 612 packages (exit 0); 2 moderate audit warnings, not blocking.
Command: npm test
Summary: exit 1. Test Suites: 1 failed, 7 passed; Tests: 1 failed, 311 passed, 312 total.
Failure: src/__tests__/format.test.ts:44 "formatRelative > formats yesterday in a UTC+13 timezone":
Expected "yesterday at 11:00 PM", Received "today at 11:00 PM" (timezone Pacific/Auckland).
"""
)


def npm_group() -> dict:
    install, test = step("npm ci", 0, NPM_INSTALL), step("npm test", 1, JEST_FAIL)
    return {
        "group_id": "npm-date-kit-format",
        "query": "In /testbed install dependencies with npm ci, run npm test, and report failing tests with the expected vs received values.",
        "reference": {"steps": [install, test], "final_answer": NPM_GOOD},
        "rollouts": [
            {"id": "good", "steps": [install, test], "final_answer": NPM_GOOD},
            {
                "id": "skipped-install",
                "steps": [
                    step("npm test", 127, "\n> date-kit@3.4.1 test\n> jest --ci\n\nsh: 1: jest: not found\n"),
                    install,
                    test,
                ],
                "final_answer": fa(
                    "Command: npm test -> jest not found (127), so ran npm ci first (612 packages).\n"
                    "Command: npm test -> 1 failed, 311 passed. format.test.ts:44 expected 'yesterday at 11:00 PM', "
                    "received 'today at 11:00 PM' for Pacific/Auckland."
                ),
            },
            {
                "id": "misdiagnosed",
                "steps": [install, test],
                "final_answer": fa(
                    "Command: npm test\nSummary: 1 failing test in format.test.ts caused by a broken snapshot; "
                    "run jest -u to update snapshots."
                ),
            },
            {
                "id": "audit-fix-detour",
                "steps": [
                    install,
                    step(
                        "npm audit fix --force",
                        0,
                        "changed 14 packages, and audited 613 packages in 4s\n\nfound 0 vulnerabilities\n",
                    ),
                    step("npm install", 0, "up to date, audited 613 packages in 1s\n"),
                    test,
                ],
                "final_answer": fa(
                    "Command: npm audit fix --force; npm test\nSummary: fixed vulnerabilities; 1 test failed in format.test.ts."
                ),
            },
            {
                "id": "claims-pass",
                "steps": [install, test],
                "final_answer": fa("Command: npm test\nSummary: all 312 tests pass."),
            },
            {"id": "unclosed-final-answer", "steps": [install, test], "final_answer": "<final_answer>\n1 test failed"},
            {
                "id": "too-long",
                "steps": [install, step("npm test -- --verbose", 1, JEST_FAIL * 3)],
                "final_answer": NPM_GOOD,
                "num_tokens": 41873,
            },
            {"id": "good-2", "steps": [install, test], "final_answer": NPM_GOOD.replace("Failure:", "Failing test:")},
        ],
    }


# --- dotnet ------------------------------------------------------------------------------------------
DOTNET_BUILD_FAIL = (
    "MSBuild version 17.9.6+a4ecab324 for .NET\n  Determining projects to restore...\n"
    "  All projects are up-to-date for restore.\n"
    "/testbed/PdfSharpCore/Drawing/XGraphics.cs(1412,31): error CS1503: Argument 2: cannot convert from "
    "'double' to 'PdfSharpCore.Drawing.XUnit' [/testbed/PdfSharpCore/PdfSharpCore.csproj]\n"
    "/testbed/PdfSharpCore/Drawing/XGraphics.cs(1418,17): warning CS0618: 'XGraphics.MeasureString(string, XFont)' "
    "is obsolete [/testbed/PdfSharpCore/PdfSharpCore.csproj]\n\nBuild FAILED.\n\n"
    "    1 Warning(s)\n    1 Error(s)\n\nTime Elapsed 00:00:21.37\n"
)
DOTNET_GOOD = fa(
    """
Command: dotnet build PdfSharpCore.sln
Summary: Build FAILED (exit 1), 1 error, 1 warning.
Error: PdfSharpCore/Drawing/XGraphics.cs(1412,31): CS1503 Argument 2: cannot convert from 'double' to 'PdfSharpCore.Drawing.XUnit'.
Warning: XGraphics.cs(1418,17) CS0618 MeasureString(string, XFont) is obsolete.
Tests were not run because the build failed.
"""
)


def dotnet_group() -> dict:
    build = step("cd /testbed && dotnet build PdfSharpCore.sln", 1, DOTNET_BUILD_FAIL)
    return {
        "group_id": "dotnet-pdfsharpcore-build",
        "query": "Run `dotnet build PdfSharpCore.sln` in /testbed to check for compilation errors, then run "
        "`dotnet test PdfSharpCore.Test.csproj` and report any test failures.",
        "reference": {"steps": [build], "final_answer": DOTNET_GOOD},
        "rollouts": [
            {"id": "good", "steps": [build], "final_answer": DOTNET_GOOD},
            {
                "id": "tried-tests-anyway",
                "steps": [
                    build,
                    step(
                        "cd /testbed && dotnet test PdfSharpCore.Test/PdfSharpCore.Test.csproj",
                        1,
                        DOTNET_BUILD_FAIL.replace("Build FAILED.", "Build FAILED.\nTest run aborted: build errors."),
                    ),
                ],
                "final_answer": fa(
                    "Command: dotnet build -> FAILED, CS1503 at XGraphics.cs(1412,31) (double -> XUnit).\n"
                    "Command: dotnet test -> aborted, same build error; no tests ran."
                ),
            },
            {
                "id": "vague",
                "steps": [build],
                "final_answer": fa("Command: dotnet build\nSummary: there is a compilation error."),
            },
            {
                "id": "invented-tests",
                "steps": [build],
                "final_answer": fa(
                    "Command: dotnet build; dotnet test\nSummary: build succeeded, 148 tests passed, 2 failed in XGraphicsTests."
                ),
            },
            {
                "id": "restore-loop",
                "steps": [
                    step(
                        "dotnet restore",
                        0,
                        "  Determining projects to restore...\n  All projects are up-to-date for restore.\n",
                    )
                ]
                * 3
                + [build],
                "final_answer": fa(
                    "Command: dotnet restore (x3), dotnet build\nSummary: build failed with error CS1503 in XGraphics.cs line 1412."
                ),
            },
            {"id": "empty-final-answer", "steps": [build], "final_answer": "<final_answer>   </final_answer>"},
            {"id": "no-commands", "steps": [], "final_answer": fa("Summary: I cannot run dotnet here.")},
            {"id": "good-duplicate", "steps": [build], "final_answer": DOTNET_GOOD},
        ],
    }


# --- cargo -------------------------------------------------------------------------------------------
CARGO_TEST = (
    "".join(
        f"\r   Compiling {c}\x1b[K" for c in ["libc v0.2.155", "memchr v2.7.4", "regex-syntax v0.8.4", "regex v1.10.5"]
    )
    + "\n   Compiling tomlfmt v0.6.0 (/testbed)\n"
    "    Finished `test` profile [unoptimized + debuginfo] target(s) in 38.12s\n"
    "     Running unittests src/lib.rs (target/debug/deps/tomlfmt-3f2a9c1d2b7e8a41)\n\n"
    "running 57 tests\n"
    + "".join(f"test fmt::tests::case_{i:02d} ... ok\n" for i in range(54))
    + "test fmt::tests::keeps_trailing_comment ... FAILED\ntest fmt::tests::inline_table_spacing ... ok\n"
    "test fmt::tests::array_of_tables ... ok\n\nfailures:\n\n---- fmt::tests::keeps_trailing_comment stdout ----\n"
    "thread 'fmt::tests::keeps_trailing_comment' panicked at src/fmt.rs:212:9:\n"
    'assertion `left == right` failed\n  left: "a = 1\\n"\n right: "a = 1 # keep\\n"\n'
    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n\n\nfailures:\n"
    "    fmt::tests::keeps_trailing_comment\n\n"
    "test result: FAILED. 56 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.04s\n\n"
    "error: test failed, to rerun pass `--lib`\n"
)
CARGO_GOOD = fa(
    """
Command: cargo test
Summary: compiled in 38s; exit 101. test result: FAILED. 56 passed; 1 failed.
Failure: fmt::tests::keeps_trailing_comment panicked at src/fmt.rs:212:9 - assertion left == right failed:
left "a = 1\\n", right "a = 1 # keep\\n" (the trailing comment is dropped by the formatter).
"""
)


def cargo_group() -> dict:
    test = step("cd /testbed && cargo test", 101, CARGO_TEST)
    return {
        "group_id": "cargo-tomlfmt-comments",
        "query": "Run cargo test in /testbed and report the failing tests with the panic location and assertion values.",
        "reference": {"steps": [test], "final_answer": CARGO_GOOD},
        "rollouts": [
            {"id": "good", "steps": [test], "final_answer": CARGO_GOOD},
            {
                "id": "narrowed",
                "steps": [
                    test,
                    step(
                        "cd /testbed && cargo test keeps_trailing_comment",
                        101,
                        "    Finished `test` profile in 0.21s\nrunning 1 test\ntest fmt::tests::keeps_trailing_comment ... FAILED\n"
                        "thread 'fmt::tests::keeps_trailing_comment' panicked at src/fmt.rs:212:9\n"
                        "test result: FAILED. 0 passed; 1 failed\n",
                    ),
                ],
                "final_answer": fa(
                    "Command: cargo test -> 56 passed, 1 failed.\nCommand: cargo test keeps_trailing_comment -> "
                    "reproduces alone: panic at src/fmt.rs:212:9, left 'a = 1\\n' vs right 'a = 1 # keep\\n'."
                ),
            },
            {
                "id": "release-build",
                "steps": [
                    step(
                        "cd /testbed && cargo build --release",
                        0,
                        "   Compiling tomlfmt v0.6.0 (/testbed)\n    Finished `release` profile [optimized] target(s) in 61.02s\n",
                    )
                ],
                "final_answer": fa("Command: cargo build --release\nSummary: build succeeded; no errors."),
            },
            {
                "id": "counts-only",
                "steps": [test],
                "final_answer": fa("Command: cargo test\nSummary: 56 passed, 1 failed."),
            },
            {
                "id": "wrong-cause",
                "steps": [test],
                "final_answer": fa(
                    "Command: cargo test\nSummary: 1 failure, caused by a missing RUST_BACKTRACE environment variable; set it and rerun."
                ),
            },
            {"id": "no-final-answer", "steps": [test], "final_answer": ""},
            {
                "id": "clean-then-test",
                "steps": [step("cd /testbed && cargo clean", 0, "     Removed 1843 files, 612.4MiB total\n"), test],
                "final_answer": CARGO_GOOD,
            },
            {"id": "good-duplicate", "steps": [test], "final_answer": CARGO_GOOD},
        ],
    }


def main() -> None:
    groups = [pytest_group(), npm_group(), dotnet_group(), cargo_group()]
    with (HERE / "rollouts.jsonl").open("w", encoding="utf-8") as f:
        for g in groups:
            f.write(json.dumps(g, ensure_ascii=False) + "\n")
    with (HERE / "references.jsonl").open("w", encoding="utf-8") as f:
        for g in groups:
            ref = {"id": g["group_id"], "query": g["query"], **g["reference"]}
            f.write(json.dumps(ref, ensure_ascii=False) + "\n")
    print(
        f"wrote {len(groups)} groups x 8 rollouts to {HERE / 'rollouts.jsonl'} and references to {HERE / 'references.jsonl'}"
    )


if __name__ == "__main__":
    main()
