"""The fake judges' logprobs (asked with `logprobs` + `top_logprobs`): a verdict's content as tokens, each
integer score value one token whose alternatives follow a known distribution, so tests check logprob scores
exactly.

The distribution of a score written as w on [lo, hi]: valid values weighted exp(-(v - c)^2 / (2 s^2)) with
centre c = w + d, d in [-0.4, 0.4] (the mode stays w, the expectation moves off it) and s in [0.5, 1.5],
both seeded by the prompt and the dimension; OFF_SCALE_P of the mass on a token that is no score value
(`OFF_SCALE_TOKEN`, dropped by the reader before renormalising). Only the `top` likeliest are listed.
"""

from __future__ import annotations

import json
import math
from typing import Any

from reward.judge.fake.replies import _digest

OFF_SCALE_TOKEN = "x"
OFF_SCALE_P = 0.05


def fake_distribution(prompt: str, dimension: str, written: int, lo: int, hi: int) -> dict[str, float]:
    """token -> probability (summing to 1) at the score token of `dimension`, written as `written`."""
    h = _digest("logprobs", prompt, dimension)
    centre = written + ((h % 1000) / 999 - 0.5) * 0.8
    s = 0.5 + ((h // 1000) % 1000) / 999
    weights = {v: math.exp(-((v - centre) ** 2) / (2 * s * s)) for v in range(lo, hi + 1)}
    total = math.fsum(weights.values())
    out = {str(v): (1 - OFF_SCALE_P) * w / total for v, w in weights.items()}
    out[OFF_SCALE_TOKEN] = OFF_SCALE_P
    return out


def _entry(token: str, logprob: float, top: list[dict[str, Any]]) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()), "top_logprobs": top}


def fake_logprobs(content: str, prompt: str, schema: dict[str, Any] | None, top: int) -> list[dict[str, Any]] | None:
    """OpenAI's `logprobs.content` for a verdict: None when the content is not the flat JSON object the fake
    writes (a scripted or group reply: no logprobs, as from a provider without them)."""
    try:
        data = json.loads(content)
    except ValueError:
        return None
    props = (schema or {}).get("properties", {})
    if not isinstance(data, dict) or json.dumps(data) != content:
        return None
    tokens: list[dict[str, Any]] = [_entry("{", 0.0, [])]
    for i, (key, value) in enumerate(data.items()):
        tokens.append(_entry(("" if i == 0 else ", ") + json.dumps(key) + ": ", 0.0, []))
        enum = props.get(key, {}).get("enum")
        if key.endswith("_score") and isinstance(value, int) and isinstance(enum, list) and enum:
            dist = fake_distribution(prompt, key.removesuffix("_score"), value, min(enum), max(enum))
            likeliest = sorted(dist.items(), key=lambda kv: -kv[1])[:top]
            alts = [{"token": t, "logprob": math.log(p), "bytes": list(t.encode())} for t, p in likeliest]
            tokens.append(_entry(str(value), math.log(dist[str(value)]), alts))
        else:
            tokens.append(_entry(json.dumps(value), 0.0, []))
    tokens.append(_entry("}", 0.0, []))
    return tokens
