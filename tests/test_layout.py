"""The package's floor plan: no import cycle (imports inside functions count), packages by concept, and the
commands that call no judge never load litellm."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import reward

PACKAGE = Path(reward.__file__).parent


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules importing it runs: every import statement, at any depth, except under
    `if TYPE_CHECKING:`, and the modules a curated `__init__` loads lazily (its name -> module table).
    Importing `reward.a.b` also runs `reward.a` (its `__init__`), unless the importer lives inside `reward.a`
    (a package is initialised before its submodules)."""
    mods = modules()
    graph: dict[str, set[str]] = defaultdict(set)

    def add(importer: str, target: str) -> None:
        while target and target not in mods:
            target = target.rpartition(".")[0]
        while target:
            if target != importer and not importer.startswith(target + "."):
                graph[importer].add(target)
            target = target.rpartition(".")[0]

    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Dict) and path.name == "__init__.py":  # lazy exports: name -> module
                for value in node.values:
                    if isinstance(value, ast.Constant) and value.value in mods:
                        add(name, value.value)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "reward":
                        add(name, alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                if base.split(".")[0] != "reward":
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    add(name, sub if sub in mods else base)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(modules()):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_inside_functions_lazy_exports_and_parent_packages():
    graph = import_graph()
    assert "reward.scoring.runner" in graph["reward.cli.score"]  # inside the command function
    assert "reward.scoring" in graph["reward.cli.score"]  # the package's __init__ runs first
    assert "reward.judge.litellm_judge" in graph["reward.judge"]  # a lazy export
    assert "reward.scoring.scorer" in graph["reward"]
    assert not any(m == "reward" or "reward.cli.score".startswith(m + ".") for m in graph["reward.cli.score"])


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_packages_by_concept():
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert len(packages) >= 6, packages
    assert len(loose) <= 10, loose
    for name in packages:  # a curated __init__: it says what the package holds
        assert ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text())), name


RUBRIC = PACKAGE.parent / "rubrics" / "execution_subagent.yaml"
# command -> the heavy modules it must not load (the report draws its plots with matplotlib)
LIGHT = {
    "import reward": ([], "litellm fastapi uvicorn matplotlib"),
    "--help": (["--help"], "litellm fastapi uvicorn matplotlib"),
    "compare --help": (["compare", "--help"], "litellm fastapi uvicorn matplotlib"),
    "rubric check": (["rubric", "check", str(RUBRIC)], "litellm fastapi uvicorn matplotlib"),
    "rubric schema": (["rubric", "schema"], "litellm fastapi uvicorn matplotlib"),
    "env": (["env"], "litellm fastapi uvicorn matplotlib"),
    "compare": (["compare", "{scored}", "{scored}"], "litellm fastapi uvicorn matplotlib"),
    "rescore": (
        ["rescore", "{scored}", "-r", "execution_subagent", "-o", "{tmp}/rescored.jsonl"],
        "litellm fastapi uvicorn matplotlib",
    ),
    "calibrate": (
        ["calibrate", "{scored}", "--label", "status", "--order", "ok>penalized"],
        "litellm fastapi uvicorn matplotlib",
    ),
    "report": (["report", "{scored}", "-o", "{tmp}/report.html"], "litellm fastapi uvicorn"),
}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    from tests.conftest import EXAMPLES, run_cli

    tmp = tmp_path_factory.mktemp("light")
    run_cli("score", EXAMPLES, "-o", tmp / "scored.jsonl", "--fake-judge", "--no-progress", "--cache-dir", "none")
    return tmp


@pytest.mark.slow
@pytest.mark.parametrize("what", sorted(LIGHT))
def test_commands_that_call_no_judge_never_load_litellm(what, scored):
    args, heavy = LIGHT[what]
    args = [a.format(scored=scored / "scored.jsonl", tmp=scored) for a in args]
    run = f"from reward.cli import main; main({args!r})" if what != "import reward" else "import reward"
    code = (
        f"import sys\ntry:\n    {run}\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        f"print('HEAVY', sorted(m for m in {heavy.split()!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout, out.stdout[-500:]


def test_public_api():
    names = set(reward.__all__)
    assert {"load_rubric", "Rubric", "Judge", "open_scorer", "score_file", "rescore_group", "RewardError"} <= names
    assert {"Group", "Rollout", "GroupResult", "__version__"} <= names
    for name in reward.__all__:
        assert getattr(reward, name) is not None, name
    with pytest.raises(AttributeError):
        reward.no_such_name  # noqa: B018


def test_all_names_what_loads():
    assert sorted(reward.__all__) == sorted(["__version__", *reward._EXPORTS])


def test_the_readmes_python_example_runs(tmp_path, monkeypatch):
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "rollouts.jsonl").write_text((PACKAGE.parent / "examples" / "rollouts.jsonl").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REWARD_CACHE_DIR", str(tmp_path / "cache"))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["result"].group_id == "pytest-csvkit-parser" and scope["result"].mean is not None
    assert scope["report"].scored == 4 and len((tmp_path / "scored.jsonl").read_text().splitlines()) == 4
