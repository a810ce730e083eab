"""Build the labelled calibration set from real captured outputs: python examples/calibration/build.py

Reads captures.json (written by capture.py: real runs of pytest, npm, cargo, make/gcc and javac) and writes
calibration.jsonl: 5 prompt groups, each with a reference trajectory and 7 rollouts whose `meta.kind`
says what they are:

- reference: the reference trajectory itself;
- good: a different but sound path, with a correct final answer;
- unnecessary_commands: the right answer after commands that were not needed;
- vague: the right commands, a final answer without the facts;
- missed_error: the right commands, a final answer that leaves out an error the outputs show;
- wrong_diagnosis: the errors are seen but attributed to the wrong cause;
- hallucinated: a final answer stating results that no output shows.

Every command output is a real capture; only the final answers are written by hand. Expected order (see
ORDER): reference > good > unnecessary_commands > vague = missed_error = wrong_diagnosis > hallucinated.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
ORDER = "reference>good>unnecessary_commands>vague=missed_error=wrong_diagnosis>hallucinated"
CAPTURES = {(c["project"], c["command"]): c for c in json.loads((HERE / "captures.json").read_text())}


def steps(project: str, *commands: str) -> list[dict]:
    out = []
    for command in commands:
        c = CAPTURES[(project, command)]
        out.append({"command": command, "exit_code": c["exit_code"], "output": c["output"]})
    return out


def fa(text: str) -> str:
    return f"<final_answer>\n{text.strip()}\n</final_answer>"


TASKS = [
    {
        "group_id": "pytest-textstats",
        "ecosystem": "python/pytest",
        "project": "textstats",
        "query": "Run the test suite of the textstats package in /work/textstats and report which tests fail and why.",
        "reference": ["python -m pytest -q", "python -m pytest -q --continue-on-collection-errors"],
        "good": ["python -m pytest -q", "python -m pytest -q tests/test_core.py"],
        "unnecessary": [
            "ls -R",
            "python --version",
            "cat textstats/__init__.py",
            "python -m pytest -q",
            "python -m pytest -q --continue-on-collection-errors",
        ],
        "answers": {
            "reference": """
`python -m pytest -q` stops at a collection error, so I reran with --continue-on-collection-errors: 1 failed, 3 passed, 1 error.
- ERROR tests/test_report.py: ModuleNotFoundError: No module named 'textstats.report'. The test imports a module the package does not have.
- FAILED tests/test_core.py::test_word_count_multiple_spaces: assert 3 == 2. word_count('a  b') returns 3 because textstats/core.py splits on a single space (text.split(" ")) and counts the empty string between the two spaces.
test_word_count_simple, test_top_words and test_top_words_case pass.""",
            "good": """
pytest is interrupted by a collection error: tests/test_report.py imports textstats.report, which does not exist (ModuleNotFoundError).
Running tests/test_core.py alone: 1 failed, 3 passed. test_word_count_multiple_spaces fails with assert 3 == 2 (word_count('a  b') returns 3).""",
            "unnecessary_commands": """
1 failed, 3 passed, 1 error (with --continue-on-collection-errors; a plain run stops at the error).
- tests/test_report.py cannot be collected: No module named 'textstats.report'.
- test_word_count_multiple_spaces fails: assert 3 == 2, because word_count splits on a single space.""",
            "vague": "I ran the tests. There are some problems: a test fails and something is wrong with the imports. The package needs some fixes.",
            "missed_error": "1 failed, 3 passed: tests/test_core.py::test_word_count_multiple_spaces fails with assert 3 == 2 because word_count splits on a single space. Everything else passes.",
            "wrong_diagnosis": """
1 failed, 3 passed, 1 error. The error in tests/test_report.py is a pytest configuration problem: the tests directory has no __init__.py, so pytest cannot import the module. test_word_count_multiple_spaces (assert 3 == 2) fails because of a change to str.split in Python 3.11.""",
            "hallucinated": "All tests pass except test_top_words_case, which fails with KeyError: 'A' because top_words does not lowercase its input. 4 passed, 1 failed; no other problems.",
        },
    },
    {
        "group_id": "npm-dayfmt",
        "ecosystem": "node/npm",
        "project": "dayfmt",
        "query": "Run the npm test suite of dayfmt in /work/dayfmt and summarise the failures.",
        "reference": ["npm test"],
        "good": ["node --test test/"],
        "unnecessary": ["ls", "node --version", "cat package.json", "npm test"],
        "answers": {
            "reference": """
npm test: 3 tests, 1 pass, 2 fail.
- 'formats a date as YYYY-MM-DD' (test/format.test.js:6): formatDate(new Date(2024, 2, 5)) returns '2024-2-5' instead of '2024-03-05'. src/format.js uses getMonth() without +1 (months are 0-based) and does not zero-pad month and day.
- 'parseDate returns null for missing input' (test/format.test.js:14): TypeError: Cannot read properties of undefined (reading 'split') at src/format.js:8. parseDate calls s.split without checking its input.
'parses an ISO date' passes.""",
            "good": """
2 of 3 tests fail (node --test):
- formatDate gives '2024-2-5' where '2024-03-05' is expected (month is 0-based and not padded);
- parseDate(undefined) throws TypeError: Cannot read properties of undefined (reading 'split') instead of returning null.""",
            "unnecessary_commands": """
npm test: 1 pass, 2 fail. formatDate returns '2024-2-5' instead of '2024-03-05' (0-based month, no zero padding), and parseDate(undefined) throws TypeError: Cannot read properties of undefined (reading 'split') at src/format.js:8.""",
            "vague": "The tests ran and some of them failed. There seem to be issues in the date code.",
            "missed_error": "One failing test: 'formats a date as YYYY-MM-DD' gets '2024-2-5' instead of '2024-03-05' because getMonth() is 0-based and not zero-padded. The other tests pass.",
            "wrong_diagnosis": "Both failures come from the machine's timezone: new Date(2024, 2, 5) is shifted when converted to UTC, which changes the month, and parseDate then receives an invalid date. Running with TZ=UTC should fix both; the code itself is correct.",
            "hallucinated": 'npm test failed before running any test: npm ERR! Missing script: "test". package.json has no test script; add one and rerun.',
        },
    },
    {
        "group_id": "cargo-kvparse",
        "ecosystem": "rust/cargo",
        "project": "kvparse",
        "query": "Build the kvparse crate in /work/kvparse and run its tests; report the result.",
        "reference": ["cargo test"],
        "good": ["cargo build", "cargo test"],
        "unnecessary": ["ls", "cargo --version", "cat Cargo.toml", "cargo build", "cargo test"],
        "answers": {
            "reference": """
The crate compiles with 1 warning (unused variable `comment`, src/lib.rs:3). cargo test ran 3 tests: 2 passed, 1 failed.
tests::spaced_pair_is_trimmed panics at src/lib.rs:24: parse_line("a = 1") returns Some(("a ", " 1")) instead of Some(("a", "1")). parse_line does not trim the key and value after split_once('=').
no_equals_is_none and tight_pair pass.""",
            "good": """
cargo build succeeds with one warning (unused variable `comment` in src/lib.rs). cargo test: 2 passed, 1 failed. spaced_pair_is_trimmed fails: left Some(("a ", " 1")), right Some(("a", "1")), i.e. the parsed key and value are not trimmed.""",
            "unnecessary_commands": """
Builds with 1 warning (unused `comment`). Tests: 2 passed, 1 failed. tests::spaced_pair_is_trimmed fails because parse_line("a = 1") keeps the spaces: Some(("a ", " 1")) instead of Some(("a", "1")).""",
            "vague": "Built and tested the crate. One test is failing and there is a warning.",
            "missed_error": "The crate builds and cargo test ran 3 tests; no_equals_is_none and tight_pair pass. The only issue is a warning: unused variable `comment` at src/lib.rs:3.",
            "wrong_diagnosis": "1 of 3 tests fails: tests::spaced_pair_is_trimmed. The cause is the unused `comment` variable: comment lines are never skipped, so the parser reads '#' into the key. Using the variable to skip comments will fix the test.",
            "hallucinated": "cargo test could not compile the crate: error[E0308]: mismatched types at src/lib.rs:4 (expected `&str`, found `String`). No test ran.",
        },
    },
    {
        "group_id": "make-ringbuf",
        "ecosystem": "c/make",
        "project": "ringbuf",
        "query": "Build ringbuf in /work/ringbuf with make and report whether it builds; if not, why.",
        "reference": ["make"],
        "good": ["make", "grep -n lenght *.c *.h"],
        "unnecessary": ["ls", "gcc --version", "cat Makefile", "make clean", "make"],
        "answers": {
            "reference": """
The build fails. main.c compiles; ring.c does not: ring.c:11:15: error: 'ring_t' has no member named 'lenght'; did you mean 'length'? (a typo in ring_len: `return r->lenght;`).
gcc also warns at ring.c:12 that control reaches the end of a non-void function, a consequence of the same line. make stops with Error 1 at Makefile:8 (ring.o); the ringbuf binary is not built. Fix: `return r->length;`.""",
            "good": """
make fails compiling ring.c: ring_t has no member 'lenght' (ring.c:11; the field is 'length'). grep shows it is the only occurrence, so fixing that typo should let the build finish.""",
            "unnecessary_commands": """
Does not build: ring.c:11: 'ring_t' has no member named 'lenght' (did you mean 'length'?). make stops at ring.o with Error 1, so no ringbuf binary.""",
            "vague": "The build did not succeed; there is a compile error in one of the C files.",
            "missed_error": "make compiled main.c and ring.c. The only diagnostic is a warning at ring.c:12 (control reaches end of non-void function); the project builds.",
            "wrong_diagnosis": "The build fails because of the compiler flags: -Wall -Wextra turn the warning at ring.c:12 (control reaches end of non-void function) into an error. Remove -Wextra from CFLAGS in the Makefile.",
            "hallucinated": "The build fails at link time: undefined reference to `ring_pop' in main.o, because ring.c does not define ring_pop. Add the function to ring.c.",
        },
    },
    {
        "group_id": "javac-invoicer",
        "ecosystem": "java/javac",
        "project": "invoicer",
        "query": "Compile the invoicer Java sources in /work/invoicer into out/ and report any errors.",
        "reference": ["mkdir -p out && javac -d out $(find src -name '*.java')"],
        "good": [
            "mkdir -p out && javac -d out $(find src -name '*.java')",
            "cat src/com/acme/invoice/LineItem.java",
        ],
        "unnecessary": [
            "ls -R src",
            "java -version 2>&1",
            "javac -d out -Xdiags:verbose $(find src -name '*.java')",
            "mkdir -p out && javac -d out $(find src -name '*.java')",
        ],
        "answers": {
            "reference": """
Compilation fails with 1 error: src/com/acme/invoice/Invoice.java:11: invalid method reference. `LineItem::priceCents` cannot be found (cannot find symbol: method priceCents, location: class LineItem) in Invoice.totalCents(). No classes were written to out/.""",
            "good": """
javac fails with 1 error at Invoice.java:11: LineItem::priceCents does not exist. LineItem is a record (name, unitCents, quantity) with a totalCents() method, so Invoice.totalCents() should map with LineItem::totalCents.""",
            "unnecessary_commands": """
1 compile error: Invoice.java:11, invalid method reference LineItem::priceCents (cannot find symbol). Nothing is compiled into out/.""",
            "vague": "javac reported a problem in the invoice code, so it did not compile.",
            "missed_error": "Ran javac with -d out on the two sources in src/com/acme/invoice (Invoice.java and LineItem.java). Invoice.totalCents() sums the line items with a stream.",
            "wrong_diagnosis": "The compile fails because `record` needs Java 16 or later and this javac is too old to understand `record LineItem`. Upgrade the JDK and compile again.",
            "hallucinated": "Compiled successfully: 2 classes written to out/com/acme/invoice (Invoice.class, LineItem.class). No errors or warnings.",
        },
    },
]


def build() -> list[dict]:
    groups = []
    for t in TASKS:
        p, answers = t["project"], t["answers"]
        commands = {
            "reference": t["reference"],
            "good": t["good"],
            "unnecessary_commands": t["unnecessary"],
        }
        rollouts = []
        for kind in (
            "reference",
            "good",
            "unnecessary_commands",
            "vague",
            "missed_error",
            "wrong_diagnosis",
            "hallucinated",
        ):
            rollouts.append(
                {
                    "id": kind,
                    "steps": steps(p, *commands.get(kind, t["reference"])),
                    "final_answer": fa(answers[kind]),
                    "meta": {"kind": kind, "ecosystem": t["ecosystem"]},
                }
            )
        groups.append(
            {
                "group_id": t["group_id"],
                "query": t["query"],
                "reference": {"steps": steps(p, *t["reference"]), "final_answer": fa(answers["reference"])},
                "rollouts": rollouts,
            }
        )
    return groups


if __name__ == "__main__":
    lines = [json.dumps(g, ensure_ascii=False) for g in build()]
    (HERE / "calibration.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} groups to {HERE / 'calibration.jsonl'}")
