"""The install as a user gets it: the distribution's name (not `reward`, an unrelated PyPI package), what
each extra brings (matplotlib only with `report`, never in the server), `reward --version`, shell completion,
and `reward score`'s lock file, which the run holding it removes."""

from __future__ import annotations

import ast
import fcntl
import importlib.metadata as md
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import reward
from reward.errors import RunError
from reward.scoring import output_file
from reward.scoring.output_file import exclusive
from tests.conftest import EXAMPLES, ROOT, example_groups, run_cli
from tests.server_proc import ServerProcess, server_env

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DIST = PROJECT["name"]
EXTRAS = PROJECT["optional-dependencies"]
HINT = f"pip install '{DIST}[report]'"


# --- the distribution's name ------------------------------------------------------------------------------


def test_the_distribution_is_not_named_reward_but_the_package_and_the_command_are():
    # `reward` on PyPI is another project (2018): `pip install 'reward[redis]'` installs it, not this one
    assert canonicalize_name(DIST) == "rubric-reward"
    assert PROJECT["scripts"] == {"reward": "reward.__main__:run"}
    installed = md.distribution(DIST)  # this checkout, installed under its name (pip install -e '.[dev]')
    assert installed.version == reward.__version__
    assert any(ep.name == "reward" and ep.value == "reward.__main__:run" for ep in installed.entry_points)


def test_the_version_is_written_once_where_the_code_reads_it():
    assert "version" in PROJECT["dynamic"] and "version" not in PROJECT
    hatch = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hatch"]["version"]
    assert (ROOT / hatch["path"]).resolve() == Path(reward.__file__).resolve()


# `pip install ...` as the project's texts write it: README, Dockerfile, CI, and the messages the code prints.
# A requirement is the local checkout ('.', '.[x]', -e '.[x]') or this distribution by its name, with extras
# it has; never `reward`.
_INSTALL = re.compile(r"pip3? install ([^`\n]*)")
TEXTS = [
    "README.md",
    "Dockerfile",
    ".ci/run",
    "deploy/freeze_constraints.py",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "reward").rglob("*.py")),
]
# Files others are changing as part of the same rename (issue 20): still `reward[...]`. Strict: once a file is
# fixed, its mark must go.
PENDING: set[str] = set()  # texts whose install lines are still to be renamed (strict xfail until they are)


def install_problems(text: str) -> list[str]:
    problems = []
    for match in _INSTALL.finditer(text):
        for raw in match.group(1).split():
            if raw in {"&&", "||", "|", ";"}:
                break  # the next command
            token = raw.strip("'\"`),;")
            if not token or token.startswith("-"):
                continue
            name, _, rest = token.partition("[")
            extras = set(rest.rstrip("]").split(",")) - {""}
            if name in {".", "./"}:
                pass
            elif canonicalize_name(name) == "reward":
                problems.append(f"{token}: the distribution is {DIST}")
            elif canonicalize_name(name) != canonicalize_name(DIST):
                continue  # another project (a harness, pip itself), an option's value, a word after the command
            problems.extend(f"{token}: no extra {extra!r}" for extra in sorted(extras - set(EXTRAS)))
    return problems


def test_install_problems_finds_the_forms_that_install_another_project():
    assert install_problems("pip install 'reward[redis]'") == [f"reward[redis]: the distribution is {DIST}"]
    assert install_problems("`pip install reward`") == [f"reward: the distribution is {DIST}"]
    assert install_problems(f"pip install '{DIST}[plots]'") == [f"{DIST}[plots]: no extra 'plots'"]
    assert install_problems("raise ConfigError(\"needs redis: pip install 'reward[redis]'\") from None") == [
        f"reward[redis]: the distribution is {DIST}"
    ]
    assert install_problems(f"pip install -e '.[dev]' && pip install '{DIST}[redis]' openpipe-art==1") == []
    assert install_problems("pip install -c constraints.txt '.[redis]' && rm -rf /app/reward") == []


@pytest.mark.parametrize(
    "names",
    [
        pytest.param(sorted(set(TEXTS) - PENDING), id="settled"),
        *(
            pytest.param([n], id=n, marks=pytest.mark.xfail(strict=True, reason="rename pending"))
            for n in sorted(PENDING)
        ),
    ],
)
def test_every_install_command_names_this_distribution_and_its_extras(names):
    found = {n: install_problems((ROOT / n).read_text(encoding="utf-8")) for n in names}
    assert {n: p for n, p in found.items() if p} == {}


# --- matplotlib: the `report` extra ---------------------------------------------------------------------------


def test_matplotlib_is_the_report_extra_only():
    def names(reqs: list[str]) -> set[str]:
        return {canonicalize_name(Requirement(r).name) for r in reqs}

    assert "matplotlib" not in names(PROJECT["dependencies"])
    assert names(EXTRAS["report"]) == {"matplotlib"}
    assert set(EXTRAS["report"]) <= set(EXTRAS["dev"])  # the same specifier: the tests draw the plots
    assert "matplotlib" not in names(EXTRAS["redis"])


def test_the_images_install_set_has_no_matplotlib():
    """What the Dockerfile installs (the distribution with `redis`), as installed here, recursively; and the
    pins it installs with. Neither holds matplotlib or its own dependencies."""
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        import freeze_constraints
    finally:
        sys.path.remove(str(ROOT / "deploy"))
    assert freeze_constraints.DIST == DIST
    image = freeze_constraints.closure(DIST, ("redis",))
    assert "redis" in image and "fastapi" in image  # the walk found the install
    assert not {"matplotlib", "kiwisolver", "contourpy", "fonttools"} & set(image)
    with_report = freeze_constraints.closure(DIST, ("redis", "report"))
    assert {"matplotlib", "kiwisolver"} <= set(with_report)  # an extra walked is found
    assert "'.[redis]'" in (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_only_the_plots_module_imports_matplotlib():
    """So its guard (the one line that says what to install) is the only way a command meets the missing
    library."""
    importers = set()
    for path in Path(reward.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "matplotlib" for n in names):
                importers.add(path.relative_to(ROOT).as_posix())
    assert importers == {"reward/analysis/plots.py"}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("packaging")
    run_cli("score", EXAMPLES, "-o", tmp / "scored.jsonl", "--fake-judge", "--no-progress", "--cache-dir", "none")
    return tmp / "scored.jsonl"


def _without_matplotlib(args: list[str]) -> subprocess.CompletedProcess[str]:
    """`reward ARGS` in a fresh interpreter where `import matplotlib` fails as it does when not installed."""
    code = f"import sys\nsys.modules['matplotlib'] = None\nfrom reward.cli import main\nmain({args!r})"
    env = {**os.environ, "COLUMNS": "80"}  # a narrow console: the message must still be one line
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["report", "compare --html"])
def test_the_plots_without_matplotlib_exit_2_with_the_line_that_installs_it(command, scored, tmp_path):
    html = tmp_path / "out.html"
    args = (
        ["report", str(scored), "-o", str(html)]
        if command == "report"
        else ["compare", str(scored), str(scored), "--html", str(html)]
    )
    ran = _without_matplotlib(args)
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.splitlines() == [f"error: the HTML report needs matplotlib: {HINT}"]
    assert ran.stdout == "" and not html.exists()  # stopped before any work
    assert run_cli(*args).returncode == 0 and html.is_file()  # the same command, with matplotlib: the page


@pytest.mark.slow
def test_commands_without_plots_run_without_matplotlib(scored):
    ran = _without_matplotlib(["compare", str(scored), str(scored)])
    assert ran.returncode == 0, ran.stderr


@pytest.mark.slow
def test_reward_serve_never_imports_matplotlib(fake_judge, tmp_path):
    """The service as the image runs it (the console script, two worker processes), started and scoring a
    group, in an interpreter where any attempt to import matplotlib is recorded (and fails)."""
    record = tmp_path / "attempts"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoMatplotlib:\n"
        "    @staticmethod\n"
        "    def find_spec(name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'matplotlib':\n"
        f"            with open({str(record)!r}, 'a') as f:\n"
        "                f.write(name + '\\n')\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, _NoMatplotlib)\n"
    )
    env = server_env(dict(os.environ), fake_judge.api_base, tmp_path / "cache")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), str(ROOT), env.get("PYTHONPATH")) if p)
    probe = subprocess.run(
        [sys.executable, "-c", "import matplotlib"], env=env, capture_output=True, text=True, timeout=60
    )
    assert probe.returncode != 0 and record.read_text() == "matplotlib\n"  # the trap works (in a child too)
    record.unlink()
    server = ServerProcess(env, "--workers", "2")
    try:
        resp = httpx.post(f"{server.url}/score", json={"groups": example_groups()[:1]}, timeout=120)
        assert resp.status_code == 200, resp.text
        statuses = {r["status"] for r in resp.json()["groups"][0]["rollouts"]}
        assert "ok" in statuses and "error" not in statuses, statuses  # graded by the judge (and penalised)
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code in (200, 401)
    finally:
        log = server.stop()
    assert not record.exists(), record.read_text()
    assert "Traceback" not in log, log[-3000:]


# --- --version, shell completion ------------------------------------------------------------------------------


def test_version():
    assert run_cli("--version").stdout == f"reward {reward.__version__}\n"
    assert reward.__version__ == md.version(DIST)


def test_completion_prints_a_script_for_bash_that_completes_commands_and_options():
    script = run_cli("completion", "bash").stdout
    assert "complete -o default -F _reward_completion reward" in script
    assert "_REWARD_COMPLETE=complete_bash" in script
    assert run_cli("completion", "csh", check=False).returncode == 2
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash here")
    # The script sourced in a real bash, asked to complete as the shell would: it calls `reward` back.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert shutil.which("reward", path=env["PATH"]), "the console script is installed"
    ask = (
        'source /dev/stdin; COMP_WORDS=(reward com); COMP_CWORD=1; _reward_completion reward; echo "${COMPREPLY[*]}"; '
        'COMP_WORDS=(reward score --fake); COMP_CWORD=2; _reward_completion reward; echo "${COMPREPLY[*]}"'
    )
    done = subprocess.run([bash, "-c", ask], input=script, capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.splitlines() == ["compare completion", "--fake-judge"], done.stderr


@pytest.mark.parametrize("shell", ["zsh", "fish", "powershell"])
def test_completion_for_the_other_shells(shell):
    assert "_REWARD_COMPLETE" in run_cli("completion", shell).stdout


def test_typers_completion_options_are_on():
    help_text = run_cli("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text and "--version" in help_text


# --- the lock file beside an output ---------------------------------------------------------------------------


def _locked_by_someone(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_the_lock_file_is_removed_when_the_run_ends(tmp_path):
    out = tmp_path / "out.jsonl"
    lock = tmp_path / "out.jsonl.lock"
    with exclusive(out):
        assert _locked_by_someone(lock)
    assert not lock.exists()
    with pytest.raises(ValueError), exclusive(out):  # a run that fails removes it too
        raise ValueError
    assert not lock.exists()


def test_a_lock_file_a_killed_run_left_is_taken_and_removed(tmp_path):
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.lock").write_text("")  # flock died with its process: the file stays
    with exclusive(out):
        pass
    assert not (tmp_path / "out.jsonl.lock").exists()


def test_a_run_that_locked_a_removed_lock_file_starts_over_on_the_paths_file(tmp_path, monkeypatch):
    """The race removing a flock'ed file opens: this run opened the lock file, the run holding it ended and
    removed it, and then this run's flock succeeds on a file no path names. Without the check it would
    write while a third run creates and locks a new file."""
    out = tmp_path / "out.jsonl"
    lock = tmp_path / "out.jsonl.lock"
    real_flock = fcntl.flock
    calls = []

    def flock(fd: int, op: int) -> None:
        calls.append(op)
        if len(calls) == 1:
            lock.unlink()  # the holder ends between this run's open and its flock
        real_flock(fd, op)

    monkeypatch.setattr(output_file.fcntl, "flock", flock)
    with exclusive(out):
        assert len(calls) == 2  # started over
        assert lock.exists() and _locked_by_someone(lock)  # a third run sees the lock and refuses
        monkeypatch.setattr(output_file.fcntl, "flock", real_flock)
        with pytest.raises(RunError, match="another run is writing"), exclusive(out):
            pass
    assert not lock.exists()


def test_a_lock_file_replaced_meanwhile_is_not_removed(tmp_path):
    out = tmp_path / "out.jsonl"
    lock = tmp_path / "out.jsonl.lock"
    with exclusive(out):
        other = tmp_path / "other"
        other.write_text("someone else's")
        os.replace(other, lock)
    assert lock.read_text() == "someone else's"


_CONTENDER = """
import os, sys, time
from pathlib import Path
from reward.errors import RunError
from reward.scoring.output_file import exclusive
out, log, rounds, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fd = os.open(log, os.O_WRONLY | os.O_APPEND)
Path(f"{log}.ready.{os.getpid()}").touch()  # all start together, after their (slow) imports
while len(list(Path(log).parent.glob("log.ready.*"))) < n:
    time.sleep(0.01)
held, deadline = 0, time.monotonic() + 60
while held < rounds and time.monotonic() < deadline:  # until it held it `rounds` times: however loaded the machine
    try:
        with exclusive(out):
            os.write(fd, f"S{os.getpid()}\\n".encode())
            time.sleep(0.0002)
            os.write(fd, f"E{os.getpid()}\\n".encode())
            held += 1
    except RunError:
        pass
print(held)
"""


@pytest.mark.slow
def test_runs_racing_for_one_output_never_hold_it_together(tmp_path):
    """Four processes take and release the lock as fast as they can: every hold is alone (start, end, by the
    same process), however the removals interleave with the others' opens."""
    out, log = tmp_path / "out.jsonl", tmp_path / "log"
    log.write_text("")
    n = 4
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, str(out), str(log), "40", str(n)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(n)
    ]
    held = [int(p.communicate(timeout=120)[0]) for p in procs]
    lines = log.read_text().splitlines()
    assert sum(held) * 2 == len(lines) and held == [40] * n
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        assert start[0] == "S" and end == "E" + start[1:], (start, end)
    assert not (tmp_path / "out.jsonl.lock").exists()


def test_gitignore_covers_output_lock_files():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["scored.jsonl.lock", "runs/a/out.jsonl.lock", "uv.lock"]
    ran = subprocess.run(["git", "check-ignore", *paths], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert ran.stdout.splitlines() == paths[:2]  # a package manager's lock file stays committable
