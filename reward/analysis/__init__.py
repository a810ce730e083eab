"""Analysis of scored files, with no judge call: the lenient reader (files of any version), comparing two runs,
calibrating against labels, rescoring with an edited rubric, and the HTML reports with their plots."""

from typing import TYPE_CHECKING

from reward._lazy import lazy_exports

if TYPE_CHECKING:
    from reward.analysis.calibrate import calibrate
    from reward.analysis.compare import compare_runs
    from reward.analysis.compare_page import render_comparison
    from reward.analysis.report import render_report
    from reward.analysis.rescore import RescoreError, rescore_group
    from reward.analysis.scored import ScoredGroup, read_scored_lenient

__all__ = [
    "RescoreError",
    "ScoredGroup",
    "calibrate",
    "compare_runs",
    "read_scored_lenient",
    "render_comparison",
    "render_report",
    "rescore_group",
]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "RescoreError": "reward.analysis.rescore",
        "ScoredGroup": "reward.analysis.scored",
        "calibrate": "reward.analysis.calibrate",
        "compare_runs": "reward.analysis.compare",
        "read_scored_lenient": "reward.analysis.scored",
        "render_comparison": "reward.analysis.compare_page",
        "render_report": "reward.analysis.report",
        "rescore_group": "reward.analysis.rescore",
    },
)
