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


LIGHT = {
    "import reward": "import reward; reward.__all__",
    "reward --help": "from reward.cli import main; main(['--help'])",
    "reward compare --help": "from reward.cli import main; main(['compare', '--help'])",
    "reward rubric check": f"from reward.cli import main; main(['rubric', 'check', {str(PACKAGE.parent / 'rubrics' / 'execution_subagent.yaml')!r}])",
    "reward env": "from reward.cli import main; main(['env'])",
    "reward rubric schema": "from reward.cli import main; main(['rubric', 'schema'])",
}


@pytest.mark.slow
@pytest.mark.parametrize("what", sorted(LIGHT))
def test_commands_that_call_no_judge_never_load_litellm(what):
    code = (
        "import sys\ntry:\n    "
        + LIGHT[what]
        + "\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "heavy = sorted(m for m in ('litellm', 'fastapi', 'uvicorn', 'matplotlib') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
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
