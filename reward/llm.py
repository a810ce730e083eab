"""The single import point of litellm.

litellm fetches a model cost map from the internet at import unless told not to, and prints banners;
both are settled here, before the first import, so no other module imports litellm directly.
"""

from __future__ import annotations

import logging
import os

# Forced, not defaulted: the project must never download anything at run time.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("LITELLM_LOG", "ERROR")

import litellm

litellm.suppress_debug_info = True
litellm.set_verbose = False
litellm.telemetry = False
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
    logging.getLogger(_name).setLevel(logging.ERROR)

__all__ = ["count_tokens", "litellm"]


def count_tokens(text: str) -> int:
    """Tokens of `text` with tiktoken's cl100k_base, which litellm bundles (no download at run time)."""
    return len(litellm.encoding.encode(text, disallowed_special=()))
