"""The rubric as data and what it computes: the YAML spec and its loading (with line-numbered errors), the
safe formula expression, prompt rendering (jinja2, StrictUndefined), declared inputs, the verdict schema,
penalties, the reward formula, judge noise over K samples, and finishing a rollout and a group."""

from reward.rubric.finish import expected_basis, graded_fields, group_fields, sampling
from reward.rubric.load import Rubric, RubricError, data_root, load_rubric, resolve_rubric_path, rubric_dir
from reward.rubric.spec import Dimension, DimensionGroup, Penalties, RubricSpec, Scale

__all__ = [
    "Dimension",
    "DimensionGroup",
    "Penalties",
    "Rubric",
    "RubricError",
    "RubricSpec",
    "Scale",
    "data_root",
    "expected_basis",
    "graded_fields",
    "group_fields",
    "load_rubric",
    "resolve_rubric_path",
    "rubric_dir",
    "sampling",
]
