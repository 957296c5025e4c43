from collections.abc import Callable

import pytest

from pytest_llmbench.serve.backends.openai_compat import OpenAIFinal, Usage
from pytest_llmbench.serve.streaming import Accumulator, Delta, decode_rate, iter_sse_data


def test_sse_single_and_multiline_events_comments_and_old_error_lines() -> None:
    lines = [
        ": ping",
        'data: {"a":1}',
        "",
        "data: x",
        "data: y",
        "",
        "event: foo",
        "",
        'error: {"code":500}',
        "data: [DONE]",
    ]
    assert list(iter_sse_data(lines)) == [
        '{"a":1}',
        "x\ny",
        '{"error": "{\\"code\\":500}"}',
        "[DONE]",
    ]


def test_sse_data_without_space_after_colon() -> None:
    assert list(iter_sse_data(["data:{}", ""])) == ["{}"]


def feed(parts: list[str]) -> Accumulator:
    acc = Accumulator()
    for i, part in enumerate(parts):
        acc.add(Delta(content=part), float(i + 1))
    acc.finish(99.0)
    return acc


def test_inline_think_split_across_chunks_times_first_answer_token() -> None:
    acc = feed(["<th", "ink>", "let me", " think</", "think>", "\n\n", "Answer", " here"])
    assert acc.thinking == "let me think"
    assert acc.answer == "Answer here"
    assert acc.text == "<think>let me think</think>\n\nAnswer here"
    assert acc.clock.first_token == 1.0
    assert acc.clock.first_answer == 7.0  # "Answer", not the blank line after </think>


def test_unclosed_think_cut_by_truncation_is_all_thinking() -> None:
    acc = feed(["<think>", "step 1", " step 2"])
    assert acc.answer == ""
    assert acc.thinking == "step 1 step 2"
    assert acc.clock.first_answer is None


def test_separate_reasoning_channel() -> None:
    acc = Accumulator()
    acc.add(Delta(thinking="hmm"), 1.0)
    acc.add(Delta(content="Hi"), 2.0)
    acc.add(Delta(finish_reason="stop", final=OpenAIFinal(Usage(None, 2, None, None))), 3.0)
    acc.finish(3.5)
    assert (acc.thinking, acc.answer, acc.finish_reason) == ("hmm", "Hi", "stop")
    assert (acc.clock.first_token, acc.clock.first_answer, acc.clock.thinking_events) == (
        1.0,
        2.0,
        1,
    )
    assert acc.final == OpenAIFinal(Usage(None, 2, None, None))


def test_less_than_sign_in_answer_is_kept() -> None:
    acc = feed(["if a <", " b:", " <thin", "g>"])
    assert acc.answer == "if a < b: <thing>"


@pytest.mark.parametrize(
    ("tokens", "first", "last", "rate"),
    [(11, 1.0, 2.0, 10.0), (1, 1.0, 2.0, None), (None, 1.0, 2.0, None), (5, 2.0, 2.0, None)],
)
def test_decode_rate_uses_n_minus_one(tokens, first, last, rate) -> None:  # type: ignore[no-untyped-def]
    assert decode_rate(tokens, first, last) == rate


def test_streamed_tokens_leave_out_the_unstreamed_end_of_sequence() -> None:
    from pytest_llmbench.serve.backends.base import streamed_tokens

    assert streamed_tokens(16, "stop") == 15
    assert streamed_tokens(16, "length") == 16  # a cap: every counted token was streamed
    assert streamed_tokens(0, "stop") == 0 and streamed_tokens(None, "stop") is None


def test_inter_token_latency_percentiles_and_longest_gap() -> None:
    from pytest_llmbench.serve.streaming import InterTokenLatency

    itl = InterTokenLatency.of([0.0, 1.0, 3.0, 6.0])  # gaps 1, 2, 3
    assert itl is not None
    assert (itl.p50_s, itl.max_s) == (2.0, 3.0)
    assert itl.p90_s == pytest.approx(2.8) and itl.p99_s == pytest.approx(2.98)  # as numpy
    assert InterTokenLatency.of([5.0]) is None and InterTokenLatency.of([]) is None
    one = InterTokenLatency.of([1.0, 1.5])
    assert one is not None and one.p50_s == one.p99_s == one.max_s == 0.5


def test_every_streamed_token_is_stamped_for_the_latency_figures() -> None:
    acc = Accumulator()
    acc.add(Delta(thinking="hm"), 1.0)
    acc.add(Delta(content="a"), 2.0)
    acc.add(Delta(content="<think>"), 4.0)
    acc.add(Delta(finish_reason="stop"), 9.0)  # not a token
    assert acc.clock.token_times == [1.0, 2.0, 4.0]


@pytest.mark.parametrize(
    ("chunks", "lines"),
    [
        (["a\nb", "c\n", "\n"], ["a", "bc", ""]),
        (["a\r", "\nb\r\r\n", "c"], ["a", "b", "", "c"]),  # \r\n split across reads
        (["x\u2028y\x85\x0c", "\n"], ["x\u2028y\x85\x0c"]),  # not line ends in JSON text
        (["", "\n", "", "tail"], ["", "tail"]),
    ],
)
def test_iter_lines_ends_lines_as_sse_says(chunks: list[str], lines: list[str]) -> None:
    from pytest_llmbench.serve.streaming import iter_lines

    assert list(iter_lines(chunks)) == lines


def test_a_long_line_is_buffered_in_linear_time() -> None:
    # A 50 MB SSE line took 71 s of CPU when every read re-joined (and re-searched) the
    # whole line so far: over 1,024 reads that is ~500 joins of the line. Now each piece is
    # kept once, so reading the line costs a few joins of it, measured beside one join of the
    # same pieces (a ratio to a same-size baseline holds on a loaded machine).
    import time

    from pytest_llmbench.serve.streaming import iter_lines

    pieces = ["x" * 65536] * 1024 + ["\n"]

    def best_of(work: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            work()
            best = min(best, time.process_time() - started)
        return max(best, 1e-4)

    (line,) = iter_lines(pieces)
    assert len(line) == 64 * 2**20
    assert best_of(lambda: list(iter_lines(pieces))) / best_of(lambda: "".join(pieces)) < 20
