"""One settings model for every REWARD_* variable, read by every reader; one base class for our errors."""

import importlib
import importlib.util
import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import reward
from reward.errors import ConfigError, RewardError
from reward.settings import DEFAULTS, Settings, env_name, markdown_table, setting
from tests.conftest import run_cli_process

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "reward").rglob("*.py"))
NAME = re.compile(r"\bREWARD_[A-Z][A-Z0-9_]*[A-Z0-9]\b")
FIELDS = {env_name(f) for f in Settings.model_fields}


def names_in_source() -> set[str]:
    return {n for path in SOURCES for n in NAME.findall(path.read_text(encoding="utf-8"))}


def test_every_variable_in_the_source_is_a_setting_and_in_the_readme():
    names = names_in_source()
    assert {"REWARD_JUDGE_MODEL", "REWARD_CACHE_URL", "REWARD_TOKEN", "REWARD_PORT"} <= names  # the scan works
    assert names - FIELDS == set()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert {n for n in FIELDS if f"`{n}`" not in readme} == set()


# Read by the test suite and CI only, never by the package.
TEST_ONLY = {
    "REWARD_REQUIRE_SERVICES",
    "REWARD_TEST_RAY",
    "REWARD_TEST_REAL_JUDGE",
    "REWARD_TEST_MODEL",
    "REWARD_FUZZ_EXAMPLES",
}


def test_deployments_and_docs_set_only_known_variables():
    # a misspelt variable in a manifest or the docs would be silently ignored
    files = [ROOT / "README.md", ROOT / "Dockerfile", ROOT / ".ci" / "run", ROOT / "pyproject.toml"]
    files += [p for d in ("deploy", "bench", "examples") for p in (ROOT / d).rglob("*") if p.is_file()]
    names = {n for p in files for n in NAME.findall(p.read_text(encoding="utf-8", errors="replace"))}
    assert "REWARD_CACHE_URL" in names
    assert names - FIELDS - TEST_ONLY == set()


def test_the_readme_table_is_the_models():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"<!-- reward env --markdown: begin -->\n(.*?)\n<!-- reward env --markdown: end -->", readme, re.S
    )
    assert block is not None
    assert block.group(1) == markdown_table(), "README out of date: paste `reward env --markdown` into it"


def test_no_module_reads_a_reward_variable_but_settings():
    direct = re.compile(r"""(?:environ\.get\(|environ\[|getenv\()\s*["']REWARD_""")
    readers = [p.name for p in SOURCES if p.name != "variables.py" and direct.search(p.read_text(encoding="utf-8"))]
    assert readers == []


def test_defaults_are_todays():
    s = Settings.from_env({})
    assert s == DEFAULTS
    assert (s.judge_concurrency, s.judge_timeout, s.judge_samples, s.judge_model) == (64, None, None, None)
    assert (s.request_deadline, s.max_rollouts, s.max_pending_rollouts) == (90.0, 4096, 16384)
    assert (s.max_body_bytes, s.cache_marker_ttl, s.tokens, s.plans) == (64 * 1024 * 1024, 10.0, (), ())
    assert s.cache_timeout == 1.0
    assert (s.rubric, s.terminal_tool, s.exit_code) == (
        "execution_subagent",
        (
            "run_in_terminal",
            "bash",
            "Bash",
            "terminal",
            "execute_bash",
            "shell",
            "exec_command",
            "execute_command",
            "run_shell_command",
            "run_terminal_cmd",
            "run_command",
        ),
        ("json", "python_dict", "last_line"),
    )
    assert (s.host, s.port, s.workers, s.url, s.timeout, s.token) == (
        "127.0.0.1",
        8000,
        1,
        "http://127.0.0.1:8000",
        110.0,
        None,
    )


def test_an_empty_value_is_unset():
    assert Settings.from_env(dict.fromkeys(FIELDS - {"REWARD_TOKENS"}, "")) == DEFAULTS
    assert Settings.from_env({}).tokens == ()  # REWARD_TOKENS absent: no auth, as documented


@pytest.mark.parametrize("value", ["", " ", ",", " , ,"])
def test_reward_tokens_set_without_a_token_refuses_to_start(value):
    """deploy/k8s/reward.yaml promises a pod whose auth Secret is wrong does not start rather than serve
    unauthenticated: REWARD_TOKENS present but holding no token is an error, never "no auth"."""
    with pytest.raises(ConfigError, match="REWARD_TOKENS is set but holds no token"):
        Settings.from_env({"REWARD_TOKENS": value})
    with pytest.raises(ConfigError, match="REWARD_TOKENS"):
        setting("tokens", {"REWARD_TOKENS": value})


def test_serve_with_an_empty_auth_secret_does_not_start():
    ran = run_cli_process(
        "serve", "--fake-judge", "--port", "0", env={"PATH": "/usr/bin:/bin", "REWARD_TOKENS": ""}, check=False
    )
    assert ran.returncode == 2 and "REWARD_TOKENS is set but holds no token" in ran.stderr, ran.stderr


def test_values_are_parsed():
    s = Settings.from_env(
        {
            "REWARD_PLANS": "a.jsonl::b.jsonl",
            "REWARD_TOKENS": " one, two ,,",
            "REWARD_EXIT_CODE": "first_line, json",
            "REWARD_JUDGE_SAMPLES": "32",
            "REWARD_JUDGE_ERROR_FALLBACK": "-1.5",
            "REWARD_PORT": "9001",
        }
    )
    assert s.plans == (Path("a.jsonl"), Path("b.jsonl"))
    assert s.tokens == ("one", "two")
    assert s.exit_code == ("first_line", "json")
    assert (s.judge_samples, s.judge_error_fallback, s.port) == (32, -1.5, 9001)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REWARD_JUDGE_CONCURRENCY": "0"}, "REWARD_JUDGE_CONCURRENCY must be positive, got '0'"),
        ({"REWARD_JUDGE_CONCURRENCY": "many"}, "REWARD_JUDGE_CONCURRENCY must be an integer, got 'many'"),
        ({"REWARD_JUDGE_TIMEOUT": "soon"}, "REWARD_JUDGE_TIMEOUT must be a number, got 'soon'"),
        ({"REWARD_JUDGE_SAMPLES": "33"}, "REWARD_JUDGE_SAMPLES must be at most 32, got 33"),
        ({"REWARD_MAX_ROLLOUTS": "-1"}, "REWARD_MAX_ROLLOUTS must be positive, got '-1'"),
        ({"REWARD_REQUEST_DEADLINE": "0"}, "REWARD_REQUEST_DEADLINE must be positive, got '0'"),
        ({"REWARD_JUDGE_ERROR_FALLBACK": "high"}, "REWARD_JUDGE_ERROR_FALLBACK must be a number, got 'high'"),
        ({"REWARD_CACHE_MARKER_TTL": "a while"}, "REWARD_CACHE_MARKER_TTL must be a number of seconds, got 'a while'"),
        ({"REWARD_CACHE_MARKER_TTL": "0"}, "REWARD_CACHE_MARKER_TTL must be between 0.1 and 3600 seconds, got '0'"),
        # 0 ms to Redis: every SET PX refused, the shared cache silently off
        ({"REWARD_CACHE_MARKER_TTL": "0.01"}, "REWARD_CACHE_MARKER_TTL must be between 0.1 and 3600 seconds"),
        ({"REWARD_CACHE_MARKER_TTL": "1e9"}, "REWARD_CACHE_MARKER_TTL must be between 0.1 and 3600 seconds"),
        ({"REWARD_CACHE_TIMEOUT": "soon"}, "REWARD_CACHE_TIMEOUT must be a number of seconds, got 'soon'"),
        ({"REWARD_CACHE_TIMEOUT": "0"}, "REWARD_CACHE_TIMEOUT must be between 0.001 and 60 seconds, got '0'"),
        ({"REWARD_CACHE_TIMEOUT": "1e300"}, "REWARD_CACHE_TIMEOUT must be between 0.001 and 60 seconds"),
        (
            {"REWARD_CACHE_URL": "memcached://x"},
            "REWARD_CACHE_URL must start with redis://, rediss://, unix://; got 'memcached'",
        ),
        ({"REWARD_EXIT_CODE": "json,stderr"}, "REWARD_EXIT_CODE: exit-code convention: unknown place(s) ['stderr']"),
        ({"REWARD_TIMEOUT": "long"}, "REWARD_TIMEOUT must be a number, got 'long'"),
        ({"REWARD_WORKERS": "0"}, "REWARD_WORKERS must be positive, got '0'"),
        ({"REWARD_JUDGE_SAMPLES": "many"}, "REWARD_JUDGE_SAMPLES must be an integer or auto, got 'many'"),
        ({"REWARD_JUDGE_MAX_SAMPLES": "40"}, "REWARD_JUDGE_MAX_SAMPLES must be at most 32, got 40"),
        ({"REWARD_HEDGE_QUANTILE": "0.2"}, "REWARD_HEDGE_QUANTILE must be between 0.5 and 0.99, got '0.2'"),
        ({"REWARD_HEDGE_MAX_FRACTION": "1.5"}, "REWARD_HEDGE_MAX_FRACTION must be a fraction between 0 and 1"),
        ({"REWARD_MAX_COST": "-1"}, "REWARD_MAX_COST must be positive, got '-1'"),
        ({"REWARD_MAX_COST": "nan"}, "REWARD_MAX_COST must be a finite number"),
        ({"REWARD_CANARY_RATE": "2"}, "REWARD_CANARY_RATE must be a fraction between 0 and 1, got '2'"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(env, message):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(message)


def test_a_reader_checks_only_what_it_reads():
    env = {"REWARD_MAX_ROLLOUTS": "lots", "REWARD_JUDGE_MODEL": "openai/x"}
    assert setting("judge_model", env) == "openai/x"
    with pytest.raises(ConfigError, match="REWARD_MAX_ROLLOUTS"):
        setting("max_rollouts", env)
    with pytest.raises(KeyError):
        setting("judge_modle", env)


def test_the_readers_use_the_settings(monkeypatch, tmp_path):
    from reward.adapters.client import RewardClient
    from reward.cache.redis_store import cache_url
    from reward.native.exitcode import convention_from_env
    from reward.rubric.load import rubric_dir
    from reward.service.reward_service import ServiceSettings

    monkeypatch.setenv("REWARD_MAX_ROLLOUTS", "7")
    monkeypatch.setenv("REWARD_TOKENS", "a,b")
    monkeypatch.setenv("REWARD_RUBRIC_DIR", str(tmp_path))
    monkeypatch.setenv("REWARD_RUBRIC", "")  # empty: the default
    monkeypatch.setenv("REWARD_EXIT_CODE", "last_line")
    service = ServiceSettings.from_env()
    assert (service.max_rollouts, service.tokens, service.rubric_dir) == (7, ("a", "b"), tmp_path)
    assert (service.default_rubric, service.exit_code, service.request_deadline_s) == (
        "execution_subagent",
        ("last_line",),
        90.0,
    )
    assert rubric_dir() == tmp_path and convention_from_env() == ("last_line",)
    monkeypatch.setenv("REWARD_CACHE_URL", "redis://h:1/0")
    assert cache_url() == "redis://h:1/0"
    monkeypatch.setenv("REWARD_URL", "http://h:1/")
    monkeypatch.setenv("REWARD_TIMEOUT", "5")
    client = RewardClient()
    assert (client.url, client.budget_s) == ("http://h:1", 5.0)
    assert RewardClient(timeout_s=3).budget_s == 3
    monkeypatch.setenv("REWARD_EXIT_CODE", "stdout")
    with pytest.raises(ConfigError, match="REWARD_EXIT_CODE"):
        ServiceSettings.from_env()


@pytest.mark.slow
def test_the_client_imports_no_server_code():
    code = "import sys, reward.adapters.client; print(sorted(m for m in ('fastapi', 'litellm', 'uvicorn') if m in sys.modules))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
    )


def test_reward_env_lists_every_variable_and_hides_secrets():
    from reward.cli.main import app

    env = {
        "REWARD_JUDGE_API_KEY": "sk-very-secret-1",
        "REWARD_CACHE_URL": "redis://:hunter22@cache:6379/0",
        "COLUMNS": "250",
    }
    result = CliRunner().invoke(app, ["env"], env=env)
    assert result.exit_code == 0, result.output
    assert all(n in result.output for n in FIELDS)
    assert "sk-very-secret-1" not in result.output and "hunter22" not in result.output
    assert "(set, hidden)" in result.output and "redis://:***@cache:6379/0" in result.output
    assert CliRunner().invoke(app, ["env", "--markdown"]).output.strip() == markdown_table()
    bad = CliRunner().invoke(app, ["env"], env={"REWARD_JUDGE_SAMPLES": "99"})
    assert isinstance(bad.exception, ConfigError) and "REWARD_JUDGE_SAMPLES" in str(bad.exception)


# --- errors ---------------------------------------------------------------------------------------------------

OPTIONAL = {
    "reward.ray": "ray",
    "reward.service.ray": "ray",
}  # modules of an optional extra: checked where it is installed


def exception_classes() -> list[str]:
    found = []
    for module in pkgutil.walk_packages(reward.__path__, "reward."):
        if module.name.endswith("__main__"):
            continue
        if module.name in OPTIONAL and importlib.util.find_spec(OPTIONAL[module.name]) is None:
            continue
        mod = importlib.import_module(module.name)
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == mod.__name__:
                found.append(f"{mod.__name__}.{name}")
    return sorted(found)


CLASSES = exception_classes()


def test_the_walk_finds_the_exception_classes():
    assert {
        "reward.errors.ConfigError",
        "reward.judge.base.JudgeError",
        "reward.adapters.client.RewardServiceError",
    } <= set(CLASSES)


@pytest.mark.parametrize(
    "qualname",
    CLASSES,
)
def test_every_project_error_is_a_reward_error(qualname):
    module, name = qualname.rsplit(".", 1)
    assert issubclass(getattr(importlib.import_module(module), name), RewardError)


def test_reward_errors_keep_their_builtin_bases():
    from reward.adapters.client import RewardServiceError
    from reward.adapters.common import AdapterInputError, JudgeFailed
    from reward.analysis.calibrate import OrderError
    from reward.native.prepare import GroupInputError

    # `except ValueError` / `except RuntimeError` in callers still catch them
    assert all(issubclass(c, ValueError) for c in (GroupInputError, AdapterInputError, OrderError))
    assert all(issubclass(c, RuntimeError) for c in (RewardServiceError, JudgeFailed))
