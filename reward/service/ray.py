"""`reward serve` as a Ray Serve application, for a trainer's Ray cluster (`pip install 'rubric-reward[ray]'`).

    serve run reward.ray:app                                    # autoscaling, REWARD_* from this shell
    serve run reward.ray:build num_replicas=4                   # fixed replicas
    serve run reward.ray:build max_replicas=16 num_cpus=2

Each replica is the same FastAPI app as `reward serve`, built on the replica from its environment: every
REWARD_* variable of the shell that starts the application is forwarded to the replicas (plus `env`), so
they share one Redis cache and one set of judge limits when REWARD_CACHE_URL is set (without it each
replica has its own disk cache, which is not shared across machines).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from reward.service.app import create_app
from reward.settings import reward_environ


class RayArgs(BaseModel):
    """The application's arguments (`serve run reward.ray:build key=value ...` or a Serve config file)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "reward"
    num_replicas: int | None = Field(default=None, ge=1, description="fixed replicas; unset: autoscaling")
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=8, ge=1)
    # A request scores a whole group (or a step) concurrently and waits on the judge: many in flight per
    # replica are cheap; autoscaling adds replicas when the average is above this.
    target_ongoing_requests: float = Field(default=32, gt=0)
    max_ongoing_requests: int = Field(default=256, ge=1)
    num_cpus: float = Field(default=1, gt=0, description="CPUs per replica (litellm costs CPU per call)")
    env: dict[str, str] = Field(default_factory=dict, description="more environment for the replicas")


def deployment_options(args: RayArgs) -> dict[str, Any]:
    env = reward_environ() | args.env
    options: dict[str, Any] = {
        "name": args.name,
        "max_ongoing_requests": args.max_ongoing_requests,
        "ray_actor_options": {"num_cpus": args.num_cpus, "runtime_env": {"env_vars": env}},
        # past the service's own request deadline (REWARD_REQUEST_DEADLINE, 90 s): requests finish
        "graceful_shutdown_timeout_s": 100,
        "health_check_period_s": 10,
    }
    if args.num_replicas is not None:
        options["num_replicas"] = args.num_replicas
    else:
        options["autoscaling_config"] = {
            "min_replicas": args.min_replicas,
            "max_replicas": args.max_replicas,
            "target_ongoing_requests": args.target_ongoing_requests,
        }
    return options


def build(args: dict[str, Any] | None = None) -> Any:
    """The application (a Serve application builder): arguments as in RayArgs."""
    parsed = RayArgs.model_validate(args or {})
    # A builder, not an app: the FastAPI app and its service are made on each replica, from its environment.
    ingress = serve.ingress(create_app)
    return serve.deployment(ingress(), **deployment_options(parsed)).bind()


app = build()
