"""`reward serve` (the HTTP service in worker processes) and `reward fake-judge` (the fake judge alone)."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from reward.cli.console import err
from reward.cli.options import BaseOpt, CacheOpt, ConcOpt, FakeOpt, KeyOpt, ModelOpt, PlansOpt, ToolOpt
from reward.errors import ConfigError
from reward.redaction import redact_url
from reward.scoring.build import FAKE_MODEL, check_credentials, check_pinning, judge_configured, router_config
from reward.settings import DEFAULTS, Settings, setting


def serve(
    host: Annotated[str, typer.Option(envvar="REWARD_HOST", help="Interface to listen on.")] = DEFAULTS.host,
    port: Annotated[int, typer.Option(envvar="REWARD_PORT", min=0, max=65535, help="Port.")] = DEFAULTS.port,
    workers: Annotated[int, typer.Option(envvar="REWARD_WORKERS", min=1, help="Worker processes.")] = DEFAULTS.workers,
    rubric_dir: Annotated[
        Path | None, typer.Option("--rubric-dir", help="Rubrics to load (all *.yaml) [env REWARD_RUBRIC_DIR].")
    ] = None,
    rubric: Annotated[str | None, typer.Option("--rubric", help="Default rubric [env REWARD_RUBRIC].")] = None,
    cache: CacheOpt = None,
    judge_model: ModelOpt = None,
    judge_api_base: BaseOpt = None,
    judge_api_key: KeyOpt = None,
    concurrency: ConcOpt = None,
    plans: PlansOpt = None,
    terminal_tool: ToolOpt = None,
    judge_error_fallback: Annotated[
        float | None,
        typer.Option(
            "--judge-error-fallback",
            help="Reward the OpenRLHF/slime endpoints return, flagged, when the judge fails "
            "[env REWARD_JUDGE_ERROR_FALLBACK]; default: answer 503.",
        ),
    ] = None,
    fake_judge: FakeOpt = False,
) -> None:
    """Run the HTTP service (POST /score, trainer endpoints, /healthz, /readyz, /rubrics, /docs)."""
    from reward.service.reward_service import RewardService, ServiceSettings
    from reward.service.workers import serve as run_workers

    if host.startswith("[") and host.endswith("]"):  # an IPv6 address as a URL spells it: the address
        host = host[1:-1]
    # Flags become the REWARD_* environment, which every worker process reads at start-up.
    overrides = {
        "REWARD_RUBRIC_DIR": rubric_dir,
        "REWARD_RUBRIC": rubric,
        "REWARD_CACHE_DIR": cache,
        "REWARD_JUDGE_MODEL": judge_model,
        "REWARD_JUDGE_API_BASE": judge_api_base,
        "REWARD_JUDGE_API_KEY": judge_api_key,
        "REWARD_JUDGE_CONCURRENCY": concurrency,
        "REWARD_PLANS": os.pathsep.join(str(p) for p in plans) if plans else None,
        "REWARD_TERMINAL_TOOL": terminal_tool,
        "REWARD_JUDGE_ERROR_FALLBACK": judge_error_fallback,
    }
    os.environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    Settings.from_env()  # every variable checked, all problems in one line, before anything starts
    if setting("log_format") == "json":  # the banner and warnings are log lines too: JSON like the rest
        from reward.service.logs import configure, dict_config

        configure(dict_config("json"))
    fake = None
    if fake_judge:
        from reward.judge.fake.http import FakeJudgeServer

        fake = FakeJudgeServer().start()
        os.environ.update(
            REWARD_JUDGE_MODEL=FAKE_MODEL,
            REWARD_JUDGE_API_BASE=fake.api_base,
            REWARD_JUDGE_API_KEY="fake-judge-key",
        )
        say("Serving with the FAKE judge: scores are NOT real judgements.", warning=True)
    # Fail here, with a clear message, rather than in every worker.
    settings = ServiceSettings.from_env()
    service = RewardService(settings)
    default_judge = service.default.judge.settings
    judges = [sc.judge.settings for sc in service.scorers.values()]
    service.close()
    if not fake_judge and not judge_configured(default_judge, bool(setting("judge_model"))):
        raise ConfigError(
            f"no judge is configured for {default_judge.grade.model}: set REWARD_JUDGE_MODEL (and its key or "
            "REWARD_JUDGE_API_BASE), or pass --fake-judge for a dry run"
        )
    router = None if fake_judge else router_config()
    if not fake_judge:
        for judge in judges:  # every loaded rubric's judge: a request may name any of them
            check_credentials(judge, router)
        for pin in dict.fromkeys(w for judge in judges for w in check_pinning(judge, router)):
            say(pin, warning=True)

    def announce(served: int) -> None:  # once the port is bound: --port 0 shows the port it got
        say(
            f"reward {settings.default_rubric} on http://{url_host(host)}:{served} ({workers} worker(s)), "
            f"judge {judge_banner(default_judge.grade.model, router)}, cache {cache_banner(settings.cache_dir)}"
        )
        warning = exposure_warning(host, setting("tokens"))
        if warning:
            say(warning, warning=True)

    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown, which would end the process with the
    # signal; a handler of our own turns that into a normal exit 0 once in-flight requests are done.
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        run_workers(
            "reward.service.app:create_app",
            host=host,
            port=port,
            workers=workers,
            announce=announce,
            log_level="warning",
            timeout_graceful_shutdown=30,
        )
    finally:
        if fake is not None:
            fake.stop()


def say(message: str, warning: bool = False) -> None:
    """A start-up line: through logging in JSON mode (one JSON object a line), else styled on stderr."""
    if setting("log_format") == "json":
        logging.getLogger("reward.serve").log(logging.WARNING if warning else logging.INFO, message)
    elif warning:  # one line each, however narrow the terminal: log collectors and greps read them
        err.print(f"[bold yellow]warning: {escape(message)}[/bold yellow]", soft_wrap=True)
    else:
        err.print(escape(message), highlight=False, soft_wrap=True)


def judge_banner(model: str, router: dict | None) -> str:
    if router is None:
        return model
    names = sorted({str(m.get("model_name")) for m in router.get("model_list") or [] if isinstance(m, dict)})
    return f"router {setting('judge_router_config')} ({', '.join(names)})"


def cache_banner(cache_dir: Path | None) -> str:
    url = setting("cache_url")
    if url:
        return f"{redact_url(url)} (shared)"
    return str(cache_dir) if cache_dir is not None else "disabled"


def fake_judge_cmd(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8011,
    host: Annotated[str, typer.Option(help="Interface (keep it on loopback).")] = "127.0.0.1",
    latency: Annotated[float, typer.Option(min=0, help="Seconds to wait before each reply.")] = 0.0,
    fault_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Fraction of prompts whose first attempt gets an injected fault.")
    ] = 0.0,
) -> None:
    """Run the fake OpenAI-compatible judge (dry runs, tests): its scores are not real judgements."""
    from reward.judge.fake.http import serve

    err.print(f"fake judge on http://{host}:{port}/v1 (model openai/anything); stats at /_stats")
    serve(host, port, latency, fault_rate)


def url_host(host: str) -> str:
    """The host as a URL spells it: an IPv6 address in brackets; "" (every interface) as 0.0.0.0."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host or "0.0.0.0"


def exposure_warning(host: str, tokens: tuple[str, ...]) -> str | None:
    """Listening beyond loopback with no token: anyone who reaches the port scores (and spends judge money)."""
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback or tokens:
        return None
    return (
        f"listening on {host or 'every interface'} with no REWARD_TOKENS: anyone who can reach this port can "
        "score and spend the judge's budget; set REWARD_TOKENS (and REWARD_TOKEN on the clients)"
    )


def register(app: typer.Typer) -> None:
    app.command()(serve)


def register_fake_judge(app: typer.Typer) -> None:
    app.command("fake-judge")(fake_judge_cmd)
