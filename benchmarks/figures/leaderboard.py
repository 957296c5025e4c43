"""Leaderboard rendering over 10,000 results from 100 models (reports built in-process with
the plugin's own record types), per-model table and with every item row."""

from __future__ import annotations

import time
from typing import Literal

import pytest

from benchmarks.harness import Bench, Figure, median
from pytest_llmbench.generate.records import PROPERTY, GenerationRecord, ItemRecord
from pytest_llmbench.report.leaderboard import render
from pytest_llmbench.report.summary import summarize
from pytest_llmbench.serve.generation import Generation, Metrics, Settings
from pytest_llmbench.verdict.results import Results

ITEMS, MODELS = 10_000, 100


def synthetic_reports(n: int, models: list[str]) -> list[pytest.TestReport]:
    """Setup, call and teardown reports for ``n`` items; every tenth call failed."""
    reports = []
    for i in range(n):
        model = models[i % len(models)]
        metrics = Metrics(
            ttft_s=0.05 + (i % 7) / 100,
            total_s=1.0,
            prompt_tokens=12,
            output_tokens=100 + i % 13,
            decode_tps=50.0 + i % 11,
            server_decode_tps=50.1 + i % 11,
            prompt_tps=300.0,
        )
        generation = Generation(model, "x", "x", "", "stop", metrics, Settings())
        test = f"test_prompt[prompt {i // len(models)}]"
        record = ItemRecord(model, test, generations=[GenerationRecord.of(generation)])
        record.scores["score"] = float(i % 100)
        nodeid = f"test_x.py::test_prompt[{model}-prompt {i // len(models)}]"
        when: Literal["setup", "call", "teardown"]
        for when in ("setup", "call", "teardown"):
            failed = when == "call" and i % 10 == 0
            data = record.to_dict() if when == "call" else {"model": model, "test": test}
            rep = pytest.TestReport(
                nodeid, ("test_x.py", 1, "test_prompt"), {}, "failed" if failed else "passed",
                None, when,
            )  # fmt: skip
            setattr(rep, PROPERTY, data)
            reports.append(rep)
    return reports


def run(bench: Bench) -> None:
    print(f"leaderboard over {ITEMS:,} results")
    models = [f"openai:m{i}@http://127.0.0.1:9" for i in range(MODELS)]
    reports = synthetic_reports(ITEMS, models)
    times: dict[str, list[float]] = {"add": [], "auto": [], "both": []}
    for _ in range(3):
        results = Results(models)
        started = time.perf_counter()
        for rep in reports:
            results.add(rep)
        times["add"].append(time.perf_counter() - started)
        for mode in ("auto", "both"):
            started = time.perf_counter()
            text = render(summarize(results), mode, 0)
            times[mode].append(time.perf_counter() - started)
            assert text.count("\n") >= (MODELS if mode == "auto" else ITEMS), mode
    for mode, label in (("auto", "per-model table"), ("both", f"+ {ITEMS:,} item rows")):
        value = median(times[mode])
        bench.report(
            Figure(
                f"leaderboard render over {ITEMS:,} results ({label})",
                value,
                "s",
                "< 1 s",
                value < 1,
                f"median of 3; {MODELS} models; feeding {3 * ITEMS:,} reports to Results.add "
                f"took {median(times['add']):.2f} s",
                {"seconds": times},
            )
        )
