"""The service: `RewardService` (rubrics, scorers and reference plans, without HTTP), the FastAPI app with the
trainer endpoints, the worker processes of `reward serve`, and the Ray Serve application."""

from typing import TYPE_CHECKING

from reward._lazy import lazy_exports

if TYPE_CHECKING:
    from reward.service.app import create_app
    from reward.service.reward_service import RewardService, ServiceSettings

__all__ = ["RewardService", "ServiceSettings", "create_app"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "RewardService": "reward.service.reward_service",
        "ServiceSettings": "reward.service.reward_service",
        "create_app": "reward.service.app",
    },
)
