"""A litellm Router configuration file (`REWARD_JUDGE_ROUTER_CONFIG`): several judge deployments."""

from __future__ import annotations

from typing import Any

from reward.errors import ConfigError


def load_router_config(path: str) -> dict[str, Any]:
    """A litellm Router configuration (YAML): `model_list` with deployments named `condense` and `grade`,
    plus any Router settings (routing_strategy, num_retries, rpm/tpm, fallbacks, ...)."""
    import yaml

    try:
        data = yaml.safe_load(open(path, encoding="utf-8"))  # noqa: SIM115
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"router config {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("model_list"), list):
        raise ConfigError(f"router config {path}: needs a model_list")
    names = {d.get("model_name") for d in data["model_list"] if isinstance(d, dict)}
    if not {"condense", "grade"} <= names:
        raise ConfigError(f"router config {path}: model_list needs deployments named 'condense' and 'grade'")
    return data
