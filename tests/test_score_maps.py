"""Score maps stay on the rubric's scale: both sides of every point are scores on it, so a map can never send
a reward out of its range (a point of [10, 1e6] would have paid millions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reward.rubric.load import RubricError, data_root, load_rubric
from tests.conftest import run_cli


def overlay(tmp_path: Path, maps: str, scale: str = "") -> Path:
    text = (data_root() / "rubrics" / "execution_subagent.yaml").read_text()
    if scale:
        assert "scale: {min: 0, max: 10}" in text
        text = text.replace("scale: {min: 0, max: 10}", scale)
    path = tmp_path / "overlay.yaml"
    path.write_text(text + "\nscore_maps:\n  " + maps + "\n")
    return path


@pytest.mark.parametrize(
    ("maps", "point"),
    [
        ("informativeness: {points: [[0, 0], [10, 1e6]]}", "[10, 1e+06]"),
        ("hallucinated_results: {points: [[0, -1e6], [10, -1e6]]}", "[0, -1e+06]"),
        ("efficiency: {points: [[-5, 0], [10, 10]]}", "[-5, 0]"),
        ("efficiency: {points: [[0, 0], [5, 5], [12, 10]]}", "[12, 10]"),
        ("efficiency: {points: [[0, 0], [10, 10.5]]}", "[10, 10.5]"),
    ],
)
def test_a_map_off_the_scale_is_a_rubric_error(tmp_path: Path, maps: str, point: str) -> None:
    path = overlay(tmp_path, maps)
    ran = run_cli("rubric", "check", path, env={"COLUMNS": "300"}, check=False)
    assert ran.returncode == 2, ran.stdout + ran.stderr
    why = " ".join(ran.stderr.split())
    assert f"score map point {point} is outside the scale [0, 10]" in why and "Traceback" not in why
    with pytest.raises(RubricError, match="outside the scale"):
        load_rubric(path, overrides=[])


def test_a_map_on_the_scale_loads_ends_included(tmp_path: Path) -> None:
    path = overlay(tmp_path, "efficiency: {points: [[0, 0], [3.5, 2], [10, 10]]}")
    assert load_rubric(path, overrides=[]).spec.score_maps["efficiency"](10) == 10
    # on a continuous scale the bounds are the scale's own
    cont = overlay(tmp_path, "efficiency: {points: [[0.0, 0.1], [1.0, 0.9]]}", "scale: {min: 0.0, max: 1.0}")
    assert load_rubric(cont, overrides=[]).spec.score_maps["efficiency"](0.5) == pytest.approx(0.5)
    off = overlay(tmp_path, "efficiency: {points: [[0.0, 0.1], [1.0, 1.5]]}", "scale: {min: 0.0, max: 1.0}")
    with pytest.raises(RubricError, match=r"outside the scale \[0, 1\]"):
        load_rubric(off, overrides=[])
