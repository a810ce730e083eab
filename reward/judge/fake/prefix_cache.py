"""How a provider's prompt cache reports hits, for the fake judge and the benchmark's stand-in judge.

A prompt's prefix is cached in whole blocks once a prompt has been seen; a later prompt is served from
the cache for the longest run of whole blocks it shares with an earlier one (OpenAI and vLLM work in
blocks the same way). Bounded: the oldest blocks are forgotten first.
"""

from __future__ import annotations

import hashlib
import threading


class PrefixCache:
    def __init__(self, block_chars: int = 64, max_blocks: int = 500_000) -> None:
        self.block_chars = block_chars
        self.max_blocks = max_blocks
        self._blocks: dict[bytes, None] = {}  # insertion-ordered: the oldest first
        self._lock = threading.Lock()

    def cached_chars(self, prompt: str) -> int:
        """Characters of `prompt` served from the cache (a multiple of the block size); remembers it."""
        data = prompt.encode()
        h = hashlib.sha1(usedforsecurity=False)
        keys = []
        for start in range(0, len(data) - self.block_chars + 1, self.block_chars):
            h.update(data[start : start + self.block_chars])
            keys.append(h.copy().digest())
        with self._lock:
            hit = 0
            while hit < len(keys) and keys[hit] in self._blocks:
                hit += 1
            for key in keys[hit:]:
                self._blocks[key] = None
            while len(self._blocks) > self.max_blocks:
                del self._blocks[next(iter(self._blocks))]
        # in characters of the text, assuming one byte each (exact for ASCII, a lower bound otherwise)
        return min(hit * self.block_chars, len(prompt))

    def clear(self) -> None:
        with self._lock:
            self._blocks.clear()
