"""A run like ``pytest examples`` on six models, as the controller sees it (for the
leaderboard snapshots and the HTML report's tests)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pytest_llmbench.generate.records import ItemRecord
from pytest_llmbench.serve.specs import labels, parse_specs
from pytest_llmbench.verdict.results import Results

SPECS = parse_specs(
    [
        "openai:devstral@http://127.0.0.1:18301/v1,openai:qwen3-coder-30b@http://127.0.0.1:18301/v1,"
        "gpt=openai:gpt-oss-20b@http://127.0.0.1:18302/v1,ollama:gemma4:e4b,"
        "llama-server:gemma3-270m,ollama:qwen3:8b@http://gpu1.lab.example:11434"
    ]
)


def typed(data: dict[str, Any], model: str = "m", test: str = "t") -> ItemRecord:
    """A record as the controller reads it, from the parts of its report form a test gives."""
    return ItemRecord.from_dict({"model": model, "test": test, **data})


def fake_report(nodeid: str, when: str, outcome: str, record: dict[str, Any]) -> Any:
    return SimpleNamespace(
        nodeid=nodeid,
        when=when,
        outcome=outcome,
        passed=outcome == "passed",
        failed=outcome == "failed",
        skipped=outcome == "skipped",
        llmbench=record,
    )


def _gen(k: int, *, thinking: int | None = None, truncated: bool = False) -> dict[str, Any]:
    return {
        "metrics": {
            "ttft_s": 0.05 * (k + 1),
            "ttfa_s": 0.05 * (k + 1) + (0.5 if thinking else 0),
            "decode_tps": 180.0 / (k + 1),
            "server_decode_tps": 181.0 / (k + 1),
            "prompt_tps": 900.0 / (k + 1),
            "output_tokens": 100 * (k + 1),
            "thinking_tokens": thinking,
            "load_s": 1.5 if k == 4 else None,
            "peak_rss_mb": 420.0 if k == 4 else None,
        },
        "truncated": truncated,
        "finish_reason": "length" if truncated else "stop",
        "messages": [{"role": "user", "content": f"Prompt for model {k}: write <b>code</b>"}],
        "answer": f"def answer_{k}():\n    return {k}  # <not html>",
        "thinking": "Let me think step by step." if thinking else "",
    }


def example_results() -> Results:
    """Six models × (todo_app v1/v2, saas_spec, humaneval ×2, speed ×2), with scores,
    diagnoses, a named score, thinking, a truncation and an infrastructure error."""
    results = Results([s.id for s in SPECS], labels(SPECS))
    for k, spec in enumerate(SPECS):
        cases: list[tuple[str, str, dict[str, Any]]] = []
        for v in ("v1", "v2"):
            score = 100.0 if (k + (v == "v2")) % 3 == 0 else 60.0
            diag = [] if score == 100 else ["waited for interactive input"]
            cases.append((f"test_todo_app[{v}]", "passed" if score >= 90 else "failed",
                          {"scores": {"score": score}, "score": {"diagnoses": diag, "checks": [
                              {"name": "syntax", "score": 1.0, "passed": True},
                              {"name": "features", "score": 0.9, "passed": True},
                              {"name": "functional", "score": score / 100, "passed": score == 100},
                          ]}}))  # fmt: skip
        truncated = k == 3
        cases.append(("test_saas_spec", "failed" if truncated else "passed",
                      {"scores": {"score": 40.0 if truncated else 85.0, "quality": (k + 1) / 3},
                       "score": {"diagnoses": ["truncated at the output cap"] if truncated else [],
                                 "checks": [{"name": "sections", "score": 0.5, "passed": False}]},
                       "truncated": truncated}))  # fmt: skip
        for n in range(2):
            ok = (k + n) % 2 == 0
            cases.append((f"test_humaneval[HumanEval/{n}]", "passed" if ok else "failed",
                          {"scores": {"score": 100.0 if ok else 0.0},
                           "score": {"diagnoses": [] if ok else ["crashed (exit 1: NameError)"]}}))  # fmt: skip
        for prompt in ("explain", "list"):
            error = (
                "StreamError: the server cut the stream" if k == 5 and prompt == "list" else None
            )
            cases.append(
                (f"test_speed[{prompt}]", "failed" if error else "passed", {"error": error})
            )
        for test, outcome, extra in cases:
            nodeid = f"examples/t.py::{test}[{spec.id}]"
            gens = [
                _gen(
                    k,
                    thinking=300 if k == 2 else None,
                    truncated=bool(extra.pop("truncated", False)),
                )
            ]
            if extra.get("error") is None:
                extra.pop("error", None)
            record = {"model": spec.id, "test": test, "generations": gens, **extra}
            base = {"model": spec.id, "test": test}
            results.add(fake_report(nodeid, "setup", "passed", base))
            results.add(fake_report(nodeid, "call", outcome, record))
            results.add(fake_report(nodeid, "teardown", "passed", base))
    return results
