import pytest

from reward.core.trajectory import Rollout, Step
from reward.judge.llm import count_tokens
from reward.rubric.penalties import check_penalty, has_final_answer
from reward.rubric.spec import Penalties

OK = "<final_answer>Command: pytest\nSummary: 3 passed</final_answer>"


def make(steps=None, final=OK, num_tokens=None) -> Rollout:
    steps = [Step(command="pytest", exit_code=0, output="3 passed")] if steps is None else steps
    return Rollout(id="r", steps=steps, final_answer=final, num_tokens=num_tokens)


def never_called(text: str) -> int:
    raise AssertionError("the tokenizer must not run")


def test_final_answer_forms():
    assert has_final_answer(OK)
    assert has_final_answer("preamble <final_answer>x</final_answer> trailing")
    assert not has_final_answer("")
    assert not has_final_answer("no tags at all")
    assert not has_final_answer("<final_answer>unclosed")
    assert not has_final_answer("<final_answer>  \n </final_answer>")


def test_clean_rollout_has_no_penalty():
    assert check_penalty(Penalties(), make(), never_called) is None


def test_too_long_from_trainer_token_count():
    p = check_penalty(Penalties(), make(num_tokens=30_001), never_called)
    assert p is not None and (p.kind, p.reward) == ("too_long", -100.0)
    assert check_penalty(Penalties(), make(num_tokens=30_000), never_called) is None


def test_too_long_counted_offline_when_no_token_count():
    long = make(steps=[Step(command="cat big.log", exit_code=0, output="word " * 40_000)])
    assert count_tokens("word " * 40_000) > 30_000
    p = check_penalty(Penalties(), long, count_tokens)
    assert p is not None and p.kind == "too_long"


def test_short_text_skips_the_tokenizer():
    # under 30,000 bytes cannot be over 30,000 tokens: the tokenizer is never called
    assert check_penalty(Penalties(), make(), never_called) is None


def test_missing_final_answer_and_empty_and_unclosed():
    for final in ("", "The tests ran.", "<final_answer>unclosed", "<final_answer></final_answer>"):
        p = check_penalty(Penalties(), make(final=final), never_called)
        assert p is not None and (p.kind, p.reward) == ("missing_final_answer", -100.0), final


def test_no_commands():
    p = check_penalty(Penalties(), make(steps=[]), never_called)
    assert p is not None and (p.kind, p.reward) == ("no_commands", -50.0)
    blank = make(steps=[Step(command="   ", exit_code=0)])
    assert check_penalty(Penalties(), blank, never_called).kind == "no_commands"


def test_first_match_wins_in_paper_order():
    everything_wrong = make(steps=[], final="", num_tokens=50_000)
    assert check_penalty(Penalties(), everything_wrong, never_called).kind == "too_long"
    assert check_penalty(Penalties(), make(steps=[], final=""), never_called).kind == "missing_final_answer"


def test_penalties_are_configurable_and_can_be_disabled():
    cfg = Penalties(max_tokens=100, too_long=-7, missing_final_answer=None, no_commands=-3)
    assert check_penalty(cfg, make(num_tokens=101), never_called).reward == -7
    assert check_penalty(cfg, make(steps=[], final=""), never_called).kind == "no_commands"
    assert check_penalty(cfg, make(final=""), never_called) is None


def test_text_over_128_bytes_per_allowed_token_is_too_long_without_tokenizing():
    huge = make(steps=[Step(command="yes", exit_code=0, output="a" * 3_900_000)])  # > 128 x 30,000 bytes
    p = check_penalty(Penalties(), huge, never_called)
    assert p is not None and p.kind == "too_long" and p.detail.startswith("at least 30470 tokens")


def test_long_text_is_counted_in_pieces_so_one_endless_word_is_not_quadratic():
    pieces = []

    def counter(text):
        pieces.append(len(text))
        return count_tokens(text)

    p = check_penalty(Penalties(), make(steps=[Step(command="yes", exit_code=0, output="a" * 1_000_000)]), counter)
    assert p is not None and p.kind == "too_long"
    assert len(pieces) > 1 and max(pieces) <= 64 * 1024


# One character of each class the judge is never shown (reward.core.clean.sanitize): a final answer or a command
# made of them is empty, as the judge sees it, so it is penalised, never graded.
INVISIBLE = {
    "C0": "\x01",
    "DEL": "\x7f",
    "C1": "\x85",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "bidi override": "\u202e",
    "bidi isolate": "\u2066",
    "word joiner": "\u2060",
    "BOM": "\ufeff",
    "soft hyphen": "\u00ad",
    "tag character": "\U000e0041",
}


@pytest.mark.parametrize("kind", sorted(INVISIBLE))
def test_a_final_answer_of_invisible_characters_is_missing(kind):
    c = INVISIBLE[kind]
    assert not has_final_answer(f"<final_answer>{c}</final_answer>")
    assert not has_final_answer(f"<final_answer> {c * 3} \n{c}</final_answer>")
    p = check_penalty(Penalties(), make(final=f"<final_answer>{c}</final_answer>"), never_called)
    assert p is not None and (p.kind, p.reward) == ("missing_final_answer", -100.0)
    # text the judge does see still counts: the character is dropped, not the answer
    assert has_final_answer(f"<final_answer>{c}3 passed</final_answer>")


@pytest.mark.parametrize("kind", sorted(INVISIBLE))
def test_a_command_of_invisible_characters_is_no_command(kind):
    c = INVISIBLE[kind]
    p = check_penalty(Penalties(), make(steps=[Step(command=c, exit_code=0, output="")]), never_called)
    assert p is not None and (p.kind, p.reward) == ("no_commands", -50.0)
    both = [Step(command=f" {c} ", exit_code=0, output=""), Step(command=f"{c}ls", exit_code=0, output="a")]
    assert check_penalty(Penalties(), make(steps=both), never_called) is None


def test_the_judge_is_shown_what_the_penalty_checks_read():
    from reward.core.trajectory import condense_input

    r = make(
        steps=[Step(command="\u200bls\x01", exit_code=0, output="x\u202ey")],
        final="<final_answer>a\x85b</final_answer>",
    )
    shown = condense_input("q\ufeff", r, 500, 500)
    assert shown.steps[0].command == "ls" and shown.steps[0].output == "xy"
    assert shown.final_answer == "<final_answer>ab</final_answer>" and shown.query == "q"
