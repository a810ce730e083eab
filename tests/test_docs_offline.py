"""/docs and /redoc from the assets bundled in the package (no CDN): the pages reference only the server's
own URLs, each answers 200 with its content type (the static assets without a token, the schema with the
`?token=` the page was opened with), and the pages render in a headless browser that can reach nothing else."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from reward.service.app import STATIC
from tests.server_proc import ServerProcess, server_env

TOKEN = "docs-token-123"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}
PAGES = {"/docs": "swagger-ui/swagger-ui-bundle.js", "/redoc": "redoc/redoc.standalone.js"}


@pytest.fixture(scope="module")
def docs_server(fake_judge_server, tmp_path_factory):
    env = server_env(dict(os.environ), fake_judge_server.api_base, tmp_path_factory.mktemp("docs") / "cache")
    env.update(REWARD_TOKENS=TOKEN)
    proc = ServerProcess(env)
    yield proc
    proc.stop()


def referenced(html: str) -> list[str]:
    """Every URL a page loads: src / href attributes, Swagger UI's `url:` and ReDoc's `spec-url`."""
    urls = re.findall(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", html)
    urls += re.findall(r"""\burl:\s*'([^']+)'""", html)
    return urls


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_pages_reference_only_local_urls_that_answer(docs_server, page):
    assert httpx.get(f"{docs_server.url}{page}").status_code == 401  # the page itself is behind the token
    r = httpx.get(f"{docs_server.url}{page}", params={"token": TOKEN})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store" and r.headers["referrer-policy"] == "no-referrer"
    assert "http://" not in r.text and "https://" not in r.text and "//" not in "".join(referenced(r.text))
    urls = referenced(r.text)
    assert PAGES[page] in " ".join(urls) and any(u.startswith("/openapi.json?token=") for u in urls)
    for url in urls:
        assert url.startswith("/"), url
        got = httpx.get(f"{docs_server.url}{url}")  # as a browser asks: no Authorization header
        assert got.status_code == 200, url
        kind = TYPES[Path(url.split("?")[0]).suffix]
        assert kind in got.headers["content-type"], (url, got.headers["content-type"])
        assert len(got.content) > 100


@pytest.mark.slow
def test_the_schema_names_the_bearer_scheme_and_the_token_query_opens_nothing_else(docs_server):
    schema = httpx.get(f"{docs_server.url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert schema["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    assert schema["security"] == [{"bearer": []}] and schema["paths"]["/healthz"]["get"]["security"] == []
    assert httpx.get(f"{docs_server.url}/openapi.json", params={"token": "wrong"}).status_code == 401
    # a token in a URL opens the docs only: never the scoring endpoints or the metrics
    assert httpx.get(f"{docs_server.url}/metrics", params={"token": TOKEN}).status_code == 401
    assert httpx.get(f"{docs_server.url}/rubrics", params={"token": TOKEN}).status_code == 401
    assert httpx.post(f"{docs_server.url}/score", params={"token": TOKEN}, json={}).status_code == 401
    assert httpx.get(f"{docs_server.url}/static/nothing-here.js").status_code == 404


def test_the_bundled_assets_are_the_vendored_upstream_files():
    """Every file under static/ is listed in VENDORED.txt with its package, version and sha256, unmodified."""
    listed = {}
    for line in (STATIC / "VENDORED.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            _package, _version, name, digest = line.split()
            listed[name] = digest
    present = {p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file()} - {"VENDORED.txt"}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest, name
    assert {"swagger-ui/LICENSE", "redoc/LICENSE"} <= present  # Apache-2.0 and MIT: shipped with the code


def dump_dom(url: str, profile: Path) -> str:
    if CHROMIUM is None:
        if os.environ.get("REWARD_REQUIRE_SERVICES") == "1":
            pytest.fail("chromium is required here (REWARD_REQUIRE_SERVICES=1) but not installed")
        pytest.skip("chromium is not installed (CI installs it: apt-get install chromium)")
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        # no name resolves but the server's address: a page that needed a CDN would stay blank
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        "--dump-dom",
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.slow
def test_swagger_ui_and_redoc_render_with_no_network(docs_server, tmp_path):
    swagger = dump_dom(f"{docs_server.url}/docs?token={TOKEN}", tmp_path / "p1")
    assert "opblock" in swagger and "/score" in swagger and "/openrlhf" in swagger  # the operations, rendered
    redoc = dump_dom(f"{docs_server.url}/redoc?token={TOKEN}", tmp_path / "p2")
    assert "/score" in redoc and "api-content" in redoc
