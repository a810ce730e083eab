"""What makes a judge reply usable. A condensing reply, as an Execution Plan: complete, not a refusal, and
recognisably following the sections of the rubric's condensing template (templates/condense.j2). A grading
reply, in every grading shape (one rollout, a group, a pair): not empty, not cut off, not a refusal, then what
the shape's parser accepts. A reply that fails is re-asked, then reported as an error; it is never graded,
rewarded or cached.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TypeVar

from reward.judge.base import InvalidReply, Reply
from reward.rubric.verdict import InvalidVerdict

T = TypeVar("T")

# Template lines such as "Task Outcome: [success / failure / partial. One sentence.]"
_SECTION = re.compile(r"^([A-Z][A-Za-z /-]{2,60}):\s*\[", re.MULTILINE)
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry\b|i can'?not|i can'?t|i won'?t|i'?m (?:not able|unable)|i am unable|"
    r"i am not able|as an ai\b|unfortunately,? i)",
    re.IGNORECASE,
)


def refused(text: str) -> bool:
    """Whether a reply that is not what was asked opens as a refusal ("I'm sorry, but I can't ...")."""
    return not text.lstrip().startswith(("{", "[")) and _REFUSAL.search(text) is not None


def check_verdict(reply: Reply, wanted: str, parse: Callable[[str], T]) -> T:
    """What `parse` makes of a grading reply's content, or InvalidReply with the re-ask's reason, categorised
    alike in every grading shape: `judge_empty_reply` (no text; `wanted` says what was asked for),
    `judge_parse_error` (cut off at the token limit, or what `parse` refused with InvalidVerdict), and
    `judge_refusal` (plain text refusing instead of giving the verdict)."""
    text = reply.content.strip()
    if not text:
        raise InvalidReply("judge_empty_reply", f"the reply was empty; {wanted}")
    if reply.finish_reason == "length":
        raise InvalidReply("judge_parse_error", "the verdict was cut off at the token limit; reply shorter")
    try:
        return parse(reply.content)
    except InvalidVerdict as exc:
        if refused(text):
            raise InvalidReply(
                "judge_refusal", f"the reply refused instead of giving the verdict: {text[:200]!r}"
            ) from exc
        raise InvalidReply("judge_parse_error", str(exc)) from exc


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
        if refused(text):
            raise InvalidReply("judge_refusal", f"the reply refused instead of writing the plan: {text[:200]!r}")
        raise InvalidReply(
            "judge_invalid_plan",
            f"the reply does not follow the EXECUTION PLAN template (missing: {', '.join(missing)})",
        )
    return text
