"""Judge limits shared by every replica: litellm's Router counts each deployment's usage in Redis.

A Router config (REWARD_JUDGE_ROUTER_CONFIG) states each deployment's published limits once (`rpm`, `tpm`
in its litellm_params). With a shared cache on Redis (REWARD_CACHE_URL), the same Redis is given to the
Router unless the config names one itself, so every replica counts against the same per-minute windows;
and a deployment with limits is routed by `usage-based-routing-v2`, the Router strategy that enforces
them (a call over the limit becomes a rate-limit error before it reaches the provider, which the Router's
own retry loop waits out) rather than only weighting by them.

litellm keeps the counts in each process's memory and syncs them with Redis every 0.1 s; measured with
bench/replicas.py, each replica still holds only its own limit in a steady stream (README: state limits
divided by the number of replicas).
"""

from __future__ import annotations

from typing import Any

ENFORCING_STRATEGY = "usage-based-routing-v2"
_REDIS_SETTINGS = ("redis_url", "redis_host")


def has_limits(config: dict[str, Any]) -> bool:
    def limited(d: Any) -> bool:
        params = d.get("litellm_params") if isinstance(d, dict) else None
        return isinstance(params, dict) and any(params.get(k) is not None for k in ("rpm", "tpm"))

    return any(limited(d) for d in config.get("model_list") or [])


def shared_limits(config: dict[str, Any], cache_url: str | None) -> dict[str, Any]:
    """The Router config with usage counted in the shared Redis and limits enforced (a new dict)."""
    out = dict(config)
    if cache_url is not None and not any(out.get(k) for k in _REDIS_SETTINGS):
        out["redis_url"] = cache_url
    if has_limits(out):
        out.setdefault("routing_strategy", ENFORCING_STRATEGY)
    return out
