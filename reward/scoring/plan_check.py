"""What makes a condensing reply usable as an Execution Plan: complete, not a refusal, and recognisably
following the sections of the rubric's condensing template (templates/condense.j2). A plan that fails is
re-asked, then reported as an error; it is never graded, rewarded or cached.
"""

from __future__ import annotations

import math
import re

from reward.judge.base import InvalidReply, Reply

# Template lines such as "Task Outcome: [success / failure / partial. One sentence.]"
_SECTION = re.compile(r"^([A-Z][A-Za-z /-]{2,60}):\s*\[", re.MULTILINE)
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry\b|i can'?not|i can'?t|i won'?t|i'?m (?:not able|unable)|i am unable|"
    r"i am not able|as an ai\b|unfortunately,? i)",
    re.IGNORECASE,
)


def plan_sections(condense_template: str) -> tuple[str, ...]:
    """The section titles the condensing template asks for, in order (none for a template without any)."""
    return tuple(dict.fromkeys(m.group(1).strip() for m in _SECTION.finditer(condense_template)))


def _present(title: str, text: str) -> bool:
    words = r"[\s*_#`]+".join(re.escape(w) for w in title.split())
    return re.search(words, text, re.IGNORECASE) is not None


def check_plan(reply: Reply, sections: tuple[str, ...]) -> str:
    """The plan text of a condensing reply, or InvalidReply saying what is wrong (the re-ask's reason)."""
    text = reply.content.strip()
    if reply.finish_reason == "length":
        raise InvalidReply(
            "judge_invalid_plan",
            "the plan was cut off at the token limit (finish_reason: length); write the complete plan, more concisely",
        )
    if not text:
        raise InvalidReply("judge_empty_reply", "the reply was empty; an EXECUTION PLAN is required")
    missing = [s for s in sections if not _present(s, text)]
    # All sections but one: a judge may rename one heading; a reply without most of them is not a plan.
    if sections and len(sections) - len(missing) < max(1, math.ceil(len(sections) * 0.75)):
        if _REFUSAL.search(text):
            raise InvalidReply("judge_refusal", f"the reply refused instead of writing the plan: {text[:200]!r}")
        raise InvalidReply(
            "judge_invalid_plan",
            f"the reply does not follow the EXECUTION PLAN template (missing: {', '.join(missing)})",
        )
    return text
