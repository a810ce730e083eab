"""Write constraints.txt: the installed version of every runtime dependency of reward[redis], recursively.

Run in the environment the tests passed in: `python deploy/freeze_constraints.py > constraints.txt`.
"""

from __future__ import annotations

import importlib.metadata as md

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HEADER = """# Exact versions of every runtime dependency of reward[redis], as tested (the Docker image installs with
# `pip install -c constraints.txt`). Regenerate: python deploy/freeze_constraints.py > constraints.txt"""


def closure(name: str, extras: tuple[str, ...] = ()) -> dict[str, str]:
    found: dict[str, str] = {}

    def walk(dist_name: str, wanted: tuple[str, ...]) -> None:
        key = canonicalize_name(dist_name)
        try:
            dist = md.distribution(dist_name)
        except md.PackageNotFoundError:
            return
        found[key] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            envs = [{"extra": ""}, *({"extra": e} for e in wanted)]
            if (req.marker is None or any(req.marker.evaluate(env) for env in envs)) and (
                canonicalize_name(req.name) not in found
            ):
                walk(req.name, tuple(req.extras))

    walk(name, extras)
    found.pop(canonicalize_name(name), None)
    return found


if __name__ == "__main__":
    print(HEADER)
    for key, version in sorted(closure("reward", ("redis",)).items()):
        print(f"{key}=={version}")
