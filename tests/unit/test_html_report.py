"""The HTML page's structure: every model, benchmark and check named, whole labels (nothing
cut), a cell per item that opens to the prompt and answer, units on every chart, offline."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from pytest_llmbench.report.html import Bar, bar_chart, html_page
from pytest_llmbench.report.summary import summarize
from tests.unit._examples import SPECS, example_results


class Page(HTMLParser):
    """Collects texts by enclosing tag, and counts tags."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.texts: dict[str, list[str]] = {}
        self.tags: dict[str, int] = {}
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]

    def handle_endtag(self, tag: str) -> None:
        while self.stack and self.stack.pop() != tag:
            pass

    def handle_data(self, data: str) -> None:
        if self.stack and data.strip():
            self.texts.setdefault(self.stack[-1], []).append(data.strip())


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def test_the_page_names_every_model_benchmark_and_check_whole() -> None:
    results = example_results()
    text = html_page(summarize(results), created="2026-11-30T10:00:00+00:00", version="0.1.0")
    page = parse(text)
    headers = set(page.texts["th"])
    for spec in SPECS:
        assert results.labels[spec.id] in headers  # a matrix column per model
        assert any(spec.id in t for t in page.texts["span"] + page.texts["b"])  # the legend
    assert {"humaneval", "saas_spec", "speed", "todo_app"} <= headers  # benchmark rows
    checks = set(page.texts["td"])
    assert {"syntax", "features", "functional", "sections"} <= checks
    svg_texts = page.texts["text"]
    assert not any("…" in t for t in svg_texts + page.texts["th"])  # no label cut
    for spec in SPECS:  # bar labels are whole: "N. label"
        assert any(t.endswith(f". {results.labels[spec.id]}") for t in svg_texts)
    # Units on every chart's axis.
    for unit in ("(tok/s)", "(s)", "(/100)"):
        assert any(t.endswith(unit) for t in svg_texts), unit
    assert any("(tok/s, median)" in t for t in svg_texts)
    # One cell per item, each opening to its prompt and answer, escaped.
    assert page.tags["details"] >= len(results.items)
    assert "Prompt for model 0: write &lt;b&gt;code&lt;/b&gt;" in text
    assert "return 0  # &lt;not html&gt;" in text
    assert "<summary>Thinking" in text  # thinking apart, for the model that thought
    assert "waited for interactive input" in text and "truncated at the output cap" in text
    # Offline and self-contained.
    assert "<script" not in text and page.urls == []
    found = re.findall(
        r"https?://[\w.:/-]*\w", text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert set(found) <= {spec.url for spec in SPECS}  # the models' own URLs, nothing fetched


def test_bars_grow_to_fit_long_labels_and_name_their_unit() -> None:
    long = "openai:qwen3-coder-30b-a3b-instruct@http://gpu-node-17.example.org:18301/v1"
    svg = bar_chart([Bar(long, 12.5, "#000"), Bar("b", 25.0, "#111")], "tok/s", "decode")
    texts = parse(svg).texts["text"]
    assert long in texts and "12.5 tok/s" in texts and "decode (tok/s)" in texts
    width = int(re.search(r'width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    assert width > len(long) * 7  # the label fits left of the bars


def test_a_caveat_reads_as_its_kind_and_detail_not_a_raw_dict() -> None:
    from pytest_llmbench.serve.caveats import Caveat
    from pytest_llmbench.verdict.results import Results
    from tests.unit._examples import fake_report

    caveat = Caveat("reloaded", "TTFT includes 4.1 s of load", ("ttft_s",)).to_dict()
    record = {
        "model": "m",
        "test": "test_a",
        "generations": [{"metrics": {"ttft_s": 4.2}, "caveats": [caveat]}],
    }
    results = Results(["m"])
    results.add(fake_report("t.py::test_a[m]", "call", "passed", record))
    page = html_page(summarize(results))
    assert "reloaded: TTFT includes 4.1 s of load (left out of the ttft_s medians)" in page
    assert "{&#x27;kind&#x27;" not in page and "{'kind'" not in page


def test_the_page_carries_the_verdict_settings_warnings_and_notes() -> None:
    from pytest_llmbench.verdict.run_verdict import GateFailure, Verdict

    verdict = Verdict(
        passed=False,
        failures=(GateFailure("threshold", "gpt :: test_a", "score = 60, threshold score>=80"),),
        checked=("thresholds score>=80",),
    )
    page = html_page(
        summarize(example_results()),
        verdict=verdict,
        settings="max_tokens=512, temperature=0.0",
        warnings=["gpt: the GGUF has no chat template \x1b[2J"],
        notes=["gpt: 1 generation(s): the model was loaded again"],
    )
    assert '<div class="verdict fail"><b>llmbench gate FAILED: thresholds score&gt;=80</b>' in page
    assert "<li>threshold: gpt :: test_a: score = 60, threshold score&gt;=80</li>" in page
    assert "Run settings: max_tokens=512, temperature=0.0" in page
    assert "<h2>Warnings</h2><ul><li>gpt: the GGUF has no chat template \\x1b[2J</li>" in page
    assert "<h2>Notes</h2><ul><li>gpt: 1 generation(s)" in page


def test_no_raw_python_value_reaches_a_rich_page() -> None:
    """Every fact of a rich run is drawn as words: no ``{'kind': ...}``, ``['...']`` or
    ``'key': value`` repr of a record's dicts and lists anywhere in the page."""
    import html as html_lib

    from pytest_llmbench.report.formats import RunNotes, markdown
    from pytest_llmbench.report.formats import html_page as report_page
    from pytest_llmbench.serve.caveats import Caveat
    from pytest_llmbench.serve.generation import Settings
    from pytest_llmbench.verdict.run_verdict import GateFailure, Verdict
    from tests.unit._examples import fake_report

    results = example_results()
    caveats = [
        Caveat("reloaded", "TTFT includes 4.1 s of load", ("ttft_s", "ttfa_s")).to_dict(),
        Caveat("concurrent", "up to 4 in flight", ("decode_tps",)).to_dict(),
    ]
    generation = {
        "model": "m", "text": "<think>hm</think>ok", "answer": "ok", "thinking": "hm",
        "finish_reason": "stop", "metrics": {"ttft_s": 4.2, "decode_tps": 9.0},
        "settings": Settings(stop=("END",)).to_dict(), "caveats": caveats, "warmup": True,
        "server": {"backend": "ollama", "warnings": ["no chat template"], "health_seen": ["503"]},
        "request_settings": {"temperature": 0.0, "stop": ["END"], "options": {"num_ctx": 8}},
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "recording": "abc.json",
    }  # fmt: skip
    record = {
        "model": SPECS[0].id, "test": "test_rich[x]", "generations": [generation],
        "judge": [generation], "scores": {"score": 40.0, "quality": 0.5},
        "score": {"total": 40.0, "weights": {"syntax": 1.0}, "diagnoses": ["no code block"],
                  "checks": [{"name": "syntax", "score": 0.4, "passed": False,
                              "details": "line 2: invalid", "diagnosis": "no code block"}]},
        "failure": "AssertionError: assert 40.0 >= 80", "thresholds": ["score>=80"],
        "min_pass_rate": None, "known_answer": {"path": "a/b.md", "expect": "fail", "note": "n"},
        "settings": Settings(stop=("END",)).to_dict(), "benchmark": "rich",
    }  # fmt: skip
    nodeid = f"t.py::test_rich[x][{SPECS[0].id}]"
    results.add(fake_report(nodeid, "call", "failed", record))
    verdict = Verdict(
        passed=False,
        failures=(
            GateFailure("threshold", "m :: test_rich[x]", "score = 40, threshold score>=80"),
        ),
        failed_tests=("m :: test_rich[x]",),
        errors=1,
        checked=("thresholds score>=80",),
    )
    notes = RunNotes(
        verdict=verdict,
        settings=Settings(stop=("END",)),
        warnings=("no chat template",),
        notes=("m: 1 generation(s): reloaded (TTFT includes 4.1 s of load)",),
    )
    page = report_page(summarize(results), notes)
    text = html_lib.unescape(re.sub(r"<style>.*?</style>", "", page, flags=re.S))
    raw = r".{0,30}(?:\{'|\['|': |\{\"|\": |=\[\]|=\(\)).{0,30}"
    assert re.findall(raw, text) == []
    assert re.findall(raw, markdown(summarize(results), notes, with_items=True)) == []
    assert 'stop="END"' in text
    assert "reloaded: TTFT includes 4.1 s of load (left out of the ttft_s, ttfa_s medians)" in text
    assert "concurrent: up to 4 in flight" in text and "line 2: invalid" in text
