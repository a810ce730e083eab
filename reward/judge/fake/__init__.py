"""The fake judges, named for what they are: their scores are never real judgements and every reply is marked
fake. `InProcessFakeJudge` answers in process (no socket: logic tests); `FakeJudgeServer` is a real
OpenAI-compatible HTTP server (transport tests, dry runs, benchmarks). Both give the same replies
(`reward.judge.fake.replies`)."""

from typing import TYPE_CHECKING

from reward._lazy import lazy_exports

if TYPE_CHECKING:
    from reward.judge.fake.distorted import DistortedJudge, Distortion
    from reward.judge.fake.http import FakeJudgeServer
    from reward.judge.fake.in_process import InProcessFakeJudge

__all__ = ["DistortedJudge", "Distortion", "FakeJudgeServer", "InProcessFakeJudge"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DistortedJudge": "reward.judge.fake.distorted",
        "Distortion": "reward.judge.fake.distorted",
        "FakeJudgeServer": "reward.judge.fake.http",
        "InProcessFakeJudge": "reward.judge.fake.in_process",
    },
)
