"""benchmarks/ as a package: every figure module registered once, results.json complete, the
README's performance table generated from it, and the replayed replies (the throughput
figure's server) byte for byte what the fakes stream and what the plugin reads."""

import json
import pkgutil
import threading
from pathlib import Path

import httpx

from benchmarks import figures, readme, replay
from benchmarks.harness import MESSAGES, backend
from pytest_llmbench.serve.backends import Timeouts

ROOT = Path(__file__).resolve().parents[1]


def test_every_figure_module_is_registered_once() -> None:
    modules = {m.name for m in pkgutil.iter_modules(figures.__path__)}
    registered = [run.__module__.rsplit(".", 1)[1] for run in figures.FIGURES.values()]
    assert sorted(registered) == sorted(modules)
    assert list(figures.FIGURES) == registered  # the key is the module's name


def test_results_json_has_every_figure_with_its_target_and_the_machine() -> None:
    results = json.loads(readme.RESULTS.read_text())
    machine = results["machine"]
    for key in ("cpu", "cores", "date", "quick", "load_average_at_start", "load_average_at_end"):
        assert machine[key] is not None, key
    assert {f["group"] for f in results["figures"]} == set(figures.FIGURES)
    for f in results["figures"]:
        assert f["target"] and f["figure"], f


def test_the_readme_performance_table_is_generated_from_results_json() -> None:
    text = (ROOT / "README.md").read_text()
    results = json.loads(readme.RESULTS.read_text())
    assert readme.updated(text, results) == text, "run python -m benchmarks.readme"
    assert not (ROOT / "benchmarks" / "PERFORMANCE.md").exists()


def test_the_table_escapes_pipes_and_says_what_was_skipped() -> None:
    results = json.loads(readme.RESULTS.read_text())
    results["figures"] = [
        {"figure": "a |Δ|", "value": 0.5, "unit": "%", "target": "≤ 1", "met": True},
        {"figure": "b", "value": None, "unit": "", "target": "-", "met": None},
    ]
    rows = readme.table(results).splitlines()[-2:]
    assert rows == ["| a \\|Δ\\| | 0.5 % | ≤ 1 | yes |", "| b | - | - | skipped |"]


def test_replayed_replies_are_what_the_plugin_reads_from_the_fakes() -> None:
    tokens = replay.script_tokens(300)
    replies = replay.record(tokens)
    httpd = replay.serve(replies)
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        for spec in ("llama-server", "ollama:m"):
            plugin = backend(f"{spec}@{url}")
            g = plugin.generate(MESSAGES, replay.settings(len(tokens)), Timeouts())
            assert g.text == "".join(tokens)
            assert g.metrics.output_tokens == len(tokens)
            raw = httpx.post(plugin.generate_url(), json={}).content
            assert raw == replies["POST", httpx.URL(plugin.generate_url()).path][1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_leaderboard_figure_s_reports_are_ones_the_leaderboard_reads() -> None:
    from benchmarks.figures.leaderboard import synthetic_reports
    from pytest_llmbench.report.leaderboard import render
    from pytest_llmbench.report.summary import summarize
    from pytest_llmbench.verdict.results import Results

    models = ["openai:a@http://127.0.0.1:9", "openai:b@http://127.0.0.1:9"]
    results = Results(models)
    for report in synthetic_reports(20, models):
        results.add(report)
    assert [item.outcome for item in results.ordered()].count("failed") == 2
    table = render(summarize(results), "auto", 0)
    assert "openai:a" in table and "openai:b" in table
