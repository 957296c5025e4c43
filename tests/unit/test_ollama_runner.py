"""Which Ollama generations carry a reload or prompt-cache caveat."""

from __future__ import annotations

from pytest_llmbench.serve.backends.ollama_runner import RunnerWatch


def user(text: str, system: str | None = None) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": text}]


def kinds(
    watch: RunnerWatch,
    messages: list[dict[str, str]],
    prompt_tps: float | None = 100.0,
    load_s: float = 0.002,
) -> list[str]:
    return [c.kind for c in watch.caveats(messages, load_s, prompt_tps)]


def test_a_prompt_is_marked_when_it_was_sent_before_and_evaluated_far_faster() -> None:
    watch = RunnerWatch()
    assert kinds(watch, user("Summarise Hamlet in three sentences.")) == []  # uncached: 100
    assert kinds(watch, user("Name a prime."), 120.0) == []  # uncached: 110 is the reference
    assert kinds(watch, user("Summarise Hamlet in three sentences."), 1500.0) == ["prompt_cache"]
    (caveat,) = watch.caveats(user("Name a prime."), 0.002, 880.0)
    assert caveat.detail == (
        "prompt evaluated 8x faster than this model's recent uncached 110 tok/s; "
        "100% of it was sent before"
    )
    assert caveat.excludes == ("ttft_s", "ttfa_s", "prompt_tps")


def test_shared_text_alone_is_no_evidence() -> None:
    """A repeat evaluated at the uncached rate (the server did not reuse its cache, as
    gemma3's checkpoints do not for a shared part of one message) is not marked; nor is a
    fast prompt that shares less than half its text (it cannot be 2x faster from the cache)."""
    watch = RunnerWatch()
    assert kinds(watch, user("Count from 1 to 4.")) == []
    assert kinds(watch, user("Count from 1 to 4."), 150.0) == []  # 1.5x: noise
    assert kinds(watch, user("Count from 2 to 5."), 1000.0) == []  # 46 % shared
    system = "You are a careful senior engineer. Answer with code only, no prose at all."
    assert kinds(watch, user("Sort a list.", system), 90.0) == []
    assert kinds(watch, user("Parse a date.", system), 900.0) == ["prompt_cache"]


def test_without_a_prompt_rate_or_an_uncached_reference_nothing_is_marked() -> None:
    watch = RunnerWatch()
    assert kinds(watch, user("one"), None) == []  # no rate: no reference either
    assert kinds(watch, user("one"), 5000.0) == []  # nothing uncached measured yet
    assert kinds(watch, user("two"), 100.0) == []
    assert kinds(watch, user("one"), None) == []


def test_the_reference_is_the_recent_uncached_rate() -> None:
    """The load drifts: a prompt is compared with the last few uncached ones."""
    watch = RunnerWatch()
    for i in range(5):
        assert kinds(watch, user(f"{i} first topic"), 1000.0) == []
    for i in range(5):
        assert kinds(watch, user(f"{i} second topic, slower"), 50.0) == []
    assert kinds(watch, user("0 first topic"), 150.0) == ["prompt_cache"]  # 3x the last 50s


def test_a_reload_is_named_with_its_load_time_and_empties_the_cache() -> None:
    watch = RunnerWatch()
    assert kinds(watch, user("one")) == []
    (reload,) = watch.caveats(user("one"), 4.1, 5000.0)  # a fast repeat, but a new runner
    assert reload.kind == "reloaded"
    assert reload.detail == "reloaded during the run: TTFT includes 4.1 s of load"
    assert reload.excludes == ("ttft_s", "ttfa_s")
    assert kinds(watch, user("two"), load_s=0.24) == []  # below the threshold: a warm model
    watch.loaded()  # the plugin's own preload
    assert kinds(watch, user("one"), 5000.0) == []
