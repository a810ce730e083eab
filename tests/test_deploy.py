"""The Kubernetes manifests (deploy/k8s) against the Kubernetes schema, shipped offline by
kubernetes-validate (strict: an unknown or misspelt field is an error), and against the service itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reward.judge.router_config import load_router_config
from reward.service.app import OPEN_PATHS

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
OLDEST_SUPPORTED = "1.28.0"  # HPA autoscaling/v2 and every field used here are GA there


def resources() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return docs


def by_kind(kind: str, name: str) -> dict:
    return next(d for d in resources() if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("version", [OLDEST_SUPPORTED, "latest"])
def test_every_manifest_is_valid_kubernetes(version):
    import kubernetes_validate

    version = kubernetes_validate.latest_version() if version == "latest" else version
    docs = resources()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "PersistentVolumeClaim"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError with the path


def test_kustomization_lists_every_manifest():
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_the_deployment_matches_the_service_it_runs():
    pod = by_kind("Deployment", "reward")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"/readyz", "/healthz"} <= set(OPEN_PATHS)  # the probes need no token
    env = {e["name"]: e.get("value") for e in container["env"]}
    # the cache URL names the Redis Service and its port, with the password of the Secret Redis requires
    redis = by_kind("Service", "reward-redis")["spec"]["ports"][0]["port"]
    assert env["REWARD_CACHE_URL"] == f"redis://:$(REDIS_PASSWORD)@reward-redis:{redis}/0"
    names = [e["name"] for e in container["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("REWARD_CACHE_URL")  # k8s expands only earlier ones
    secret = next(e for e in container["env"] if e["name"] == "REDIS_PASSWORD")["valueFrom"]["secretKeyRef"]
    redis_pod = by_kind("Deployment", "reward-redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis_pod["args"][:2] == ["--requirepass", "$(REDIS_PASSWORD)"]
    assert redis_pod["env"][0]["valueFrom"]["secretKeyRef"] == secret
    # tokens are required: the auth Secret is not optional (no pod serves unauthenticated)
    auth = [e["secretRef"] for e in container["envFrom"] if e["secretRef"]["name"] == "reward-auth"]
    assert auth and not auth[0].get("optional", False)
    # graceful shutdown outlasts the request deadline
    assert pod["terminationGracePeriodSeconds"] > 90
    # the Router config mounted is one the service loads
    mount = next(m for m in container["volumeMounts"] if m["name"] == "router")
    assert env["REWARD_JUDGE_ROUTER_CONFIG"] == mount["mountPath"] + "/router.yaml"


def test_the_router_config_in_the_configmap_loads(tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(by_kind("ConfigMap", "reward-router")["data"]["router.yaml"])
    config = load_router_config(str(path))
    assert all(d["litellm_params"].get("rpm") for d in config["model_list"])


def test_only_reward_pods_reach_redis():
    policy = by_kind("NetworkPolicy", "reward-redis")["spec"]
    redis_labels = by_kind("Deployment", "reward-redis")["spec"]["template"]["metadata"]["labels"]
    reward_labels = by_kind("Deployment", "reward")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= redis_labels.items()
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert peer["podSelector"]["matchLabels"].items() <= reward_labels.items()
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_the_image_installs_pinned_versions_of_every_runtime_dependency():
    """constraints.txt (written by deploy/freeze_constraints.py where the tests passed) pins every direct
    runtime dependency of the distribution with its `redis` extra at a version pyproject.toml admits, and the
    Dockerfile installs with it. (Versions installed elsewhere may be newer: what is pinned is what was tested
    when it was written.) The `report` extra is not the server's: neither installed nor pinned for the image."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    root = K8S.parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    direct = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["redis"]]
    pinned = {
        canonicalize_name(name): version
        for name, version in (
            line.split("==") for line in (root / "constraints.txt").read_text().splitlines() if line and line[0] != "#"
        )
    }
    for req in direct:
        version = pinned.get(canonicalize_name(req.name))
        assert version is not None and req.specifier.contains(version), (req, version)
    dockerfile = (root / "Dockerfile").read_text()
    assert "pip install -c constraints.txt '.[redis]'" in dockerfile
    assert "matplotlib" not in pinned and "report" not in dockerfile.split("RUN pip install", 1)[1].split("\n")[0]
    assert f"dependency of {project['name']}[redis]" in (root / "constraints.txt").read_text()
