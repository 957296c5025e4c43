"""Which Ollama generations carry a reload or prompt-cache caveat."""

from __future__ import annotations

from pytest_llmbench.backends.ollama_runner import RunnerWatch


def user(text: str, system: str | None = None) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": text}]


def kinds(watch: RunnerWatch, messages: list[dict[str, str]], load_s: float = 0.002) -> list[str]:
    return [c.kind for c in watch.caveats(messages, load_s)]


def test_repeats_and_shared_prefixes_are_cache_suspect_unrelated_prompts_are_not() -> None:
    watch = RunnerWatch()
    assert kinds(watch, user("one")) == []
    assert kinds(watch, user("two")) == []  # only the template's header is shared
    assert kinds(watch, user("one")) == ["prompt_cache"]  # a repeat
    assert kinds(watch, user("Write a haiku about the sea.")) == []
    assert kinds(watch, user("Write a haiku about compilers.")) == ["prompt_cache"]
    system = "You are a careful senior engineer. Answer with code only."
    assert kinds(watch, user("Sort a list.", system)) == []
    assert kinds(watch, user("Parse a date.", system)) == ["prompt_cache"]


def test_a_reload_is_named_with_its_load_time_and_empties_the_cache() -> None:
    watch = RunnerWatch()
    assert kinds(watch, user("one")) == []
    (reload,) = watch.caveats(user("one"), 4.1)  # a repeat, but the runner is new
    assert reload.kind == "reloaded"
    assert reload.detail == "reloaded during the run: TTFT includes 4.1 s of load"
    assert reload.excludes == ("ttft_s", "ttfa_s")
    assert kinds(watch, user("two"), 0.24) == []  # below the threshold: a warm model
    watch.loaded()  # the plugin's own preload
    assert kinds(watch, user("one")) == []
