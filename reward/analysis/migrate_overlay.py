"""The rubric overlay `reward migrate` writes: the run's rubric (with the `--set` overrides the run recorded)
whose grading model is the new judge and whose `score_maps` take the new judge's scores onto the old scale.
The condensing model stays the run's, so plans (and their cache entries) are the ones the maps were fitted on.

The overlay is checked before it is put in place: it must load, and ask the judge exactly what the run's rubric
asks (its templates are looked up next to it, so one written far from a rubric with its own templates would
find others, or none).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import yaml

from reward.analysis.scored import output_target
from reward.errors import OutputError, UsageError
from reward.rubric.load import Rubric, RubricError, load_rubric
from reward.rubric.overrides import apply_overrides, parse_overrides
from reward.rubric.score_maps import ScoreMap
from reward.rubric.yaml_source import load_yaml


class _Point(list):
    """A map point, written on one line ([x, y])."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Point, lambda d, p: d.represent_sequence("tag:yaml.org,2002:seq", p, flow_style=True))


def overlay_data(rubric: Rubric, maps: dict[str, ScoreMap], to_model: str, condense_model: str) -> dict:
    data, _ = load_yaml(rubric.path.read_text(encoding="utf-8"), str(rubric.path))
    if rubric.overrides:
        data, _ = apply_overrides(data, parse_overrides(rubric.overrides))
    judge = rubric.spec.judge
    settings = dict(data.get("judge") or {})
    settings["grade"] = {**judge.grade.model_dump(), "model": to_model}
    if rubric.spec.condenses:  # explicit: a rubric whose condensing fell back to `grade` would follow the new judge
        settings["condense"] = {**(judge.condense or judge.grade).model_dump(), "model": condense_model}
    data["judge"] = settings
    data["score_maps"] = {
        name: {"judge": m.judge, "onto": m.onto, "points": [_Point((x, y)) for x, y in m.points]}
        for name, m in maps.items()
    }
    return data


def overlay_text(data: dict, rubric: Rubric, from_judge: str, to_judge: str, n: int) -> str:
    header = (
        f"# reward migrate overlay of {rubric.path.name} ({rubric.name} @ {rubric.version}"
        + (f", with {', '.join(rubric.overrides)}" if rubric.overrides else "")
        + ")\n"
        f"# score_maps take {to_judge}'s scores onto {from_judge}'s scale (fitted on {n} re-graded rollouts).\n"
        f"# Score with it and that judge: reward score IN -o OUT --rubric THIS_FILE\n"
    )
    return header + yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


def write_overlay(path: Path, text: str, rubric: Rubric) -> Rubric:
    """Write the overlay whole, after checking that it loads (from `path`'s folder, where it will be looked up)
    and asks the judge what `rubric` asks. A link to a regular file: its target is written; anything else there
    that is not a regular file is refused (`output_target`)."""
    target = output_target(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.yaml")
    moved = target.with_name(f".{target.name}.{os.getpid()}.tmp.yaml")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        try:
            loaded = load_rubric(tmp, overrides=[])
        except RubricError as exc:
            where = (
                "" if path.parent.resolve() == rubric.path.parent.resolve() else f"; write it into {rubric.path.parent}"
            )
            raise UsageError(f"{path}: the overlay would not load: {exc}{where}") from None
        if (loaded.condense_template, loaded.grade_template) != (rubric.condense_template, rubric.grade_template):
            raise UsageError(
                f"{path}: from there the overlay finds other templates than {rubric.path} (templates are looked "
                f"up next to a rubric): write it into {rubric.path.parent}"
            )
        if moved != tmp:  # the link's target is elsewhere: written next to it, so the rename stays in a folder
            moved.write_text(text, encoding="utf-8")
        os.replace(moved, target)
        return load_rubric(path, overrides=[])
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror}") from exc
    finally:
        for left in {tmp, moved}:
            with contextlib.suppress(OSError):
                left.unlink(missing_ok=True)
