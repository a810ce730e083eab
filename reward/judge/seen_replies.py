"""Replies refused before validation (an API refusal, no choices) still tell the caller who answered.

The scorer learns that the fake judge touched a group through the `validate` it hands to `Judge.ask` (every
reply, valid or not, passes there). A reply the judge client rejects itself never reaches it, so a fake one
is shown to it as an empty reply first: the README's rule, any plan or verdict the fake gave marks the group
fake, holds for these too.
"""

from __future__ import annotations

import contextlib

from reward.judge.base import InvalidReply, Reply, asking


def rejected(fake: bool, category: str, message: str) -> InvalidReply:
    """The InvalidReply for a reply rejected before validation, a fake one first shown to the caller's
    `validate` (for what it notes; its verdict on the empty text is dropped: the re-ask gives this reason)."""
    validate = asking()
    if fake and validate is not None:
        with contextlib.suppress(Exception):  # noting only: it never changes the outcome
            validate(Reply(content="", fake=True))
    return InvalidReply(category, message)
