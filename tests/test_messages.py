"""Messages a person reads when a file or a line is not what a command expects: plain words, one line."""

from __future__ import annotations

import json

import pytest

from reward.core.trajectory import Group, parse_line
from tests.conftest import EXAMPLES, group
from tests.conftest import run_cli as reward


def test_truncated_line_says_so_without_a_doubled_at():
    line = json.dumps(group("g"))
    for cut in (len(line) // 2, len(line) - 1, 30):
        problem = str(parse_line(Group, line[:cut], 7))
        assert problem.startswith("line 7: invalid JSON: ") and " at at " not in problem
        assert "cut off?" in problem, problem
    raw_tab = str(parse_line(Group, '{"group_id": "g", "query": "a\tb"}', 1))
    assert "invalid control character (a raw tab" in raw_tab and "cut off" not in raw_tab


@pytest.mark.parametrize("command", [["report", "-o", "OUT"], ["compare", "SAME"]])
def test_analysis_of_an_input_file_says_it_is_not_scored(tmp_path, command):
    args = [str(tmp_path / "r.html") if a == "OUT" else str(EXAMPLES) if a == "SAME" else a for a in command]
    ran = reward(command[0], str(EXAMPLES), *args[1:], check=False)
    assert ran.returncode == 2
    assert "is not a scored file: it looks like `reward score` input" in ran.stderr
    assert "Field required" not in ran.stderr


def test_analysis_of_garbage_says_not_scored_in_one_line(tmp_path):
    junk = tmp_path / "junk.jsonl"
    junk.write_text("hello\n[1, 2]\n")
    ran = reward("report", str(junk), "-o", str(tmp_path / "r.html"), check=False)
    assert ran.returncode == 2 and "is not a scored file: none of its 2 line(s)" in ran.stderr


def test_a_form_body_is_told_to_send_json(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from reward.service.app import create_app
    from reward.service.reward_service import RewardService, ServiceSettings
    from tests.conftest import ROOT

    monkeypatch.setenv("REWARD_JUDGE_MODEL", "openai/x")
    monkeypatch.setenv("REWARD_JUDGE_API_BASE", "http://127.0.0.1:9/v1")
    svc = RewardService(ServiceSettings(rubric_dir=ROOT / "rubrics", cache_dir=tmp_path / "c"))
    with TestClient(create_app(svc)) as c:
        for path in ("/score", "/slime", "/openrlhf"):
            r = c.post(path, data={"groups": "x"})  # what `curl -d` sends without a content-type
            assert r.status_code == 415, (path, r.text)
            assert r.json()["detail"] == [
                "body: send JSON (content-type: application/json), not application/x-www-form-urlencoded"
            ]
        assert c.post("/score", json={"groups": []}).status_code == 422  # JSON still validated as before


def test_a_json_body_without_a_json_content_type_is_415_saying_so(tmp_path, monkeypatch):
    """A valid JSON body sent with no content-type (or octet-stream, text/json) got FastAPI's 422 "Input should
    be a valid dictionary", which hides the fix: it is a 415 naming the content-type to send."""
    import json

    from fastapi.testclient import TestClient

    from reward.service.app import create_app
    from reward.service.reward_service import RewardService, ServiceSettings
    from tests.conftest import ROOT, group

    monkeypatch.setenv("REWARD_JUDGE_MODEL", "openai/x")
    monkeypatch.setenv("REWARD_JUDGE_API_BASE", "http://127.0.0.1:9/v1")
    svc = RewardService(ServiceSettings(rubric_dir=ROOT / "rubrics", cache_dir=tmp_path / "c"))
    body = json.dumps({"groups": [group("g")]}).encode()
    with TestClient(create_app(svc)) as c:
        for path in ("/score", "/slime", "/openrlhf"):
            r = c.post(path, content=body)  # httpx sends no content-type for raw bytes
            assert r.status_code == 415, (path, r.text)
            assert r.json()["detail"] == ["body: send JSON (content-type: application/json), no content-type was sent"]
        for kind in ("application/octet-stream", "text/json"):
            r = c.post("/score", content=body, headers={"content-type": kind})
            assert r.status_code == 415 and r.json()["detail"] == [
                f"body: send JSON (content-type: application/json), not {kind}"
            ]
        r = c.post("/score", content=b'{"groups": []}', headers={"content-type": "application/json; charset=utf-8"})
        assert r.status_code == 422 and "groups" in r.text  # JSON is read and validated as before
