from reward.core.clean import clean_output, prepare_output, resolve_carriage_returns, sanitize, strip_ansi, truncate


def test_strip_ansi_removes_colours_cursor_moves_and_osc():
    text = "\x1b[31mFAILED\x1b[0m \x1b[1;32mok\x1b[K\x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"
    assert strip_ansi(text) == "FAILED oklink"


def test_carriage_return_keeps_final_progress_state():
    assert resolve_carriage_returns("10%\r50%\r100%\ndone") == "100%\ndone"


def test_carriage_return_shorter_overwrite_keeps_tail_like_a_terminal():
    assert resolve_carriage_returns("abcdef\rXY") == "XYcdef"


def test_crlf_line_endings_are_plain_newlines():
    assert resolve_carriage_returns("a\r\nb\r\n") == "a\nb\n"


def test_clean_output_handles_ansi_inside_progress_bar():
    # cargo writes "\r   Compiling x\x1b[K" repeatedly: the erase-line escape must not survive.
    text = "\r   Compiling a\x1b[K\r   Compiling bb\x1b[K\n   Finished"
    assert clean_output(text) == "   Compiling bb\n   Finished"


def test_nul_and_control_bytes_are_removed_but_tabs_and_newlines_kept():
    assert sanitize("a\x00b\x07c\td\ne\x7f") == "abc\td\ne"


def test_lone_surrogates_become_encodable():
    out = sanitize("x\ud800y")
    out.encode("utf-8")  # would raise on a surrogate
    assert out.startswith("x") and out.endswith("y")


def test_truncate_short_text_unchanged():
    assert truncate("hello", 500, 500) == "hello"
    assert truncate("x" * 1000, 500, 500) == "x" * 1000


def test_truncate_keeps_head_and_tail_and_counts_cut():
    text = "H" * 500 + "M" * 123 + "T" * 500
    out = truncate(text, 500, 500)
    assert out.startswith("H" * 500) and out.endswith("T" * 500)
    assert "M" not in out
    assert "[... 123 characters truncated ...]" in out


def test_truncate_single_10000_character_line():
    line = "".join(chr(ord("a") + i % 26) for i in range(10_000))
    out = truncate(line, 500, 500)
    assert out.startswith(line[:500]) and out.endswith(line[-500:])
    assert "9,000 characters truncated" in out


def test_truncate_multibyte_never_splits_a_character():
    text = "é" * 700 + "日本語" * 300 + "🙂" * 700
    out = truncate(text, 500, 500)
    out.encode("utf-8")  # valid UTF-8
    assert out.startswith("é" * 500) and out.endswith("🙂" * 500)
    assert f"{len(text) - 1000:,} characters truncated" in out


def test_truncate_zero_tail_does_not_return_whole_text():
    out = truncate("abcdefghij", 3, 0)
    assert out.startswith("abc") and out.endswith("\n") and "7 characters truncated" in out


def test_empty_output():
    assert prepare_output("", 500, 500) == ""


def test_prepare_output_cleans_before_truncating():
    # 2,000 characters of colour codes around 10 visible ones: nothing should be truncated.
    text = ("\x1b[31m" + "x" + "\x1b[0m") * 10 + "\x1b[2K" * 300
    assert prepare_output(text, 5, 5) == "x" * 10


def test_canonical_whitespace():
    from reward.core.clean import canonical_whitespace

    assert canonical_whitespace("a  \n\n\n\nb\t\n  c ") == "a\n\nb\n  c"  # leading indentation kept
    assert canonical_whitespace("no change\n\nhere") == "no change\n\nhere"
    assert canonical_whitespace(" " * 100_000 + "x") == " " * 100_000 + "x"  # a long run is not a trailing one


def test_whitespace_only_differences_share_one_judgement(make_local_scorer):
    import asyncio

    from reward.core.trajectory import Group
    from reward.judge.base import Usage
    from tests.conftest import group, rollout, step

    tidy = rollout(
        "tidy", steps=[step("pytest -q", 0, "3 passed\n\nok")], final="<final_answer>3 passed</final_answer>"
    )
    messy = rollout(
        "messy",
        steps=[step("pytest -q  ", 0, "3 passed   \n\n\n\n\nok\t\t\n")],
        final="<final_answer>3 passed</final_answer>  \n\n\n",
    )
    scorer = make_local_scorer()
    result = asyncio.run(scorer.score_group(Group.model_validate(group("ws", rollouts=[tidy, messy])), Usage()))
    a, b = result.rollouts
    assert (a.status, b.status) == ("ok", "ok") and a.reward == b.reward
    assert scorer.judge.calls == {"condense": 2, "grade": 1}  # reference + one candidate; one verdict


def test_colour_codes_in_commands_answers_and_the_query_share_one_judgement(make_local_scorer):
    """Escape sequences are stripped from what the policy wrote as from outputs: a coloured command and
    answer read the same as plain ones, so they get one plan and one verdict (and the same reward)."""
    import asyncio

    from reward.core.trajectory import Group
    from reward.judge.base import Usage
    from tests.conftest import group, rollout, step

    plain = rollout("plain", steps=[step("pytest -q", 1, "2 failed")], final="<final_answer>2 failed</final_answer>")
    ansi = rollout(
        "ansi",
        steps=[step("\x1b[32mpytest -q\x1b[0m", 1, "2 failed")],
        final="<final_answer>\x1b[31m2 failed\x1b[0m</final_answer>",
    )
    scorer = make_local_scorer()
    g = group("ansi", rollouts=[plain, ansi])
    g["query"] = "Run the tests\x1b[0m"
    result = asyncio.run(scorer.score_group(Group.model_validate(g), Usage()))
    a, b = result.rollouts
    assert (a.status, b.status) == ("ok", "ok") and a.reward == b.reward
    assert scorer.judge.calls == {"condense": 2, "grade": 1}
    prompt = scorer.judge.requests[-1]["messages"][-1]["content"]
    assert "[32m" not in prompt and "[0m" not in prompt


def test_an_answer_of_escape_sequences_only_is_missing():
    from reward.core.trajectory import Step
    from reward.rubric.penalties import has_command, has_final_answer

    assert not has_final_answer("<final_answer>\x1b[0m\x1b[2K</final_answer>")
    assert has_final_answer("<final_answer>\x1b[1mdone\x1b[0m</final_answer>")
    assert not has_command(Step(command="\x1b[0m", exit_code=0, output=""))


def test_a_carriage_return_in_written_text_hides_nothing():
    """Commands and answers are read, not rendered: a CR is dropped and every character kept, so `rm -rf x\\rls`
    cannot be shown to the judge as `ls -rf x` (outputs, terminal captures, resolve the overwrite)."""
    from reward.core.clean import clean_output, readable

    assert readable("rm -rf x\rls") == "rm -rf xls"
    assert clean_output("10%\r100%") == "100%"
