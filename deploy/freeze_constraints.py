"""Write constraints.txt: the installed version of every runtime dependency of the image's install
(the distribution with its `redis` extra: what `reward serve` needs, not the `report` extra), recursively.

Run in the environment the tests passed in: `python deploy/freeze_constraints.py > constraints.txt`.
The distribution's name is read from pyproject.toml, so a rename cannot leave this pinning another package
(or nothing: a name that is not installed yields an empty closure, which is refused).
"""

from __future__ import annotations

import importlib.metadata as md
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
DIST = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["name"]
EXTRAS = ("redis",)  # the Dockerfile's `pip install -c constraints.txt '.[redis]'`

HEADER = (
    f"# Exact versions of every runtime dependency of {DIST}[{','.join(EXTRAS)}], as tested\n"
    "# (the Docker image installs with `pip install -c constraints.txt`).\n"
    "# Regenerate: python deploy/freeze_constraints.py > constraints.txt"
)


def closure(name: str, extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Name -> installed version of every distribution `name[extras]` needs here, recursively. A distribution
    is walked again when it is reached with an extra not yet walked (`foo` first, `foo[bar]` later)."""
    found: dict[str, str] = {}
    walked: set[tuple[str, str]] = set()

    def walk(dist_name: str, wanted: tuple[str, ...]) -> None:
        key = canonicalize_name(dist_name)
        todo = [e for e in ("", *wanted) if (key, e) not in walked]
        if not todo:
            return
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            return
        found[key] = dist.version
        walked.update((key, e) for e in todo)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in todo):
                walk(req.name, tuple(req.extras))

    walk(name, extras)
    found.pop(canonicalize_name(name), None)
    return found


if __name__ == "__main__":
    pins = closure(DIST, EXTRAS)
    if not pins:
        sys.exit(f"{DIST} is not installed here: install it (pip install -e '.[dev]') and run this again")
    print(HEADER)
    for key, version in sorted(pins.items()):
        print(f"{key}=={version}")
