"""The whole plugin through pytest, against the real llama-server and gemma3-270m."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_server

TESTS = """
import pytest

PROMPTS = ["Name three colours.", "Say hello."]

@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.llm(max_tokens=12)
def test_prompt(llm, prompt):
    g = llm.generate(prompt)
    llm.record_score("tokens", g.metrics.output_tokens)
    assert g.metrics.output_tokens > 0

@pytest.mark.llm(max_tokens=6)
def test_fails_on_purpose(llm):
    g = llm.generate("Tell me a story.")
    assert not g.truncated, "cut at the cap"
"""


@pytest.fixture
def two_models(
    pytester: pytest.Pytester,
    llama_server_bin: Path,
    gemma_gguf: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    monkeypatch.setenv("COLUMNS", "300")  # every column of the leaderboard, unwrapped
    pytester.makepyfile(test_bench=TESTS)
    copy = pytester.path / "tiny.gguf"
    copy.symlink_to(gemma_gguf)
    return [
        "--llm-models=llama-server:gemma3-270m,llama-server:tiny.gguf",
        "--llm-ctx=2048",
        "-p",
        "no:cacheprovider",
    ]


def leaderboard_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The per-model table (the first one after the leaderboard heading), by header."""
    rows: dict[str, dict[str, str]] = {}
    headers: list[str] = []
    lines = stdout.split("llmbench leaderboard", 1)[1].splitlines()
    for line in lines[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "model":
            headers = cells
        elif cells[0].startswith("llama-server:"):
            rows[cells[0]] = dict(zip(headers, cells, strict=True))
    return rows


STABLE = ["model", "n", "pass", "fail", "err", "out tok", "trunc", "fails_on_purpose"]


def test_matrix_ids_order_one_load_per_model_and_leaderboard(
    pytester: pytest.Pytester, two_models: list[str]
) -> None:
    result = pytester.runpytest(*two_models, "-v", "--junitxml=junit.xml")
    result.assert_outcomes(passed=4, failed=2)
    # Items grouped by model, in --llm-models order, ids readable.
    result.stdout.fnmatch_lines(
        [
            "*test_prompt[[]llama-server:gemma3-270m-Name three colours.[]] PASSED*",
            "*test_prompt[[]llama-server:gemma3-270m-Say hello.[]] PASSED*",
            "*test_fails_on_purpose[[]llama-server:gemma3-270m[]] FAILED*",
            "*test_prompt[[]llama-server:tiny-Name three colours.[]] PASSED*",
            "*test_prompt[[]llama-server:tiny-Say hello.[]] PASSED*",
            "*test_fails_on_purpose[[]llama-server:tiny[]] FAILED*",
        ]
    )
    starts = [line for line in result.stdout.lines if "starting llama-server" in line]
    assert len(starts) == 2, starts  # one load per model
    # The demo GGUF is a base model without a chat template: said loudly, next to the figures.
    result.stdout.fnmatch_lines(
        ["[[]llmbench[]] WARNING: llama-server:gemma3-270m: the GGUF has no chat template*"]
    )
    # Said once per model (a failing assertion may also show the Generation's repr).
    for model in ("llama-server:gemma3-270m", "llama-server:tiny"):
        warning = f"[llmbench] WARNING: {model}: the GGUF has no chat template"
        assert sum(line.startswith(warning) for line in result.stdout.lines) == 1, model
    rows = leaderboard_rows(result.stdout.str())
    assert set(rows) == {"llama-server:gemma3-270m", "llama-server:tiny"}
    for cells in rows.values():
        assert [cells[h] for h in ("n", "pass", "fail", "err")] == ["3", "2", "1", "0"]
        assert float(cells["load s"]) > 0
        assert float(cells["TTFT s"]) > 0
        assert float(cells["srv tok/s"]) > 0
        assert cells["trunc"] == "3"  # all three hit their small caps
        assert cells["prompt"] == "2/2" and cells["fails_on_purpose"] == "0/1"  # per benchmark
        assert float(cells["tokens"]) > 0  # llm.record_score("tokens", ...) is a column
    # -v adds per-item rows.
    result.stdout.fnmatch_lines(
        [
            "*| llama-server:tiny * | test_fails_on_purpose * | failed *",
            "*| llama-server:tiny * | test_prompt[[]Say hello.[]] * | passed *",
        ]
    )
    # JUnit XML lists every item.
    cases = list(ET.parse(pytester.path / "junit.xml").getroot().iter("testcase"))
    assert len(cases) == 6
    props = {p.get("name"): p.get("value") for p in cases[0].iter("property")}
    assert props["llm.model"] == "llama-server:gemma3-270m"
    assert float(props["llm.ttft_s"]) > 0 and props["llm.output_tokens"] == "12"
    assert props["llm.score.tokens"] == "12.0"
    assert "llmbench" not in props  # the full record stays off the XML


def test_xdist_gives_the_same_rows_and_keeps_a_model_on_one_worker(
    pytester: pytest.Pytester, two_models: list[str]
) -> None:
    serial = pytester.runpytest(*two_models)
    parallel = pytester.runpytest(*two_models, "-n", "2", "--dist", "loadgroup", "-v")
    parallel.assert_outcomes(passed=4, failed=2)
    a, b = leaderboard_rows(serial.stdout.str()), leaderboard_rows(parallel.stdout.str())
    assert a.keys() == b.keys()
    for model in a:
        assert [a[model][i] for i in STABLE] == [b[model][i] for i in STABLE]
    workers: dict[str, set[str]] = {}
    for line in parallel.stdout.lines:
        match = re.search(r"\[(gw\d)\].*\[(llama-server:(?:gemma3-270m|tiny))", line)
        if match:
            workers.setdefault(match.group(2), set()).add(match.group(1))
    assert len(workers) == 2 and all(len(w) == 1 for w in workers.values()), workers


def test_k_selects_one_model(pytester: pytest.Pytester, two_models: list[str]) -> None:
    result = pytester.runpytest(*two_models, "-k", "tiny and prompt")
    result.assert_outcomes(passed=2, deselected=4)
    assert set(leaderboard_rows(result.stdout.str())) == {"llama-server:tiny"}
    assert sum("starting llama-server" in line for line in result.stdout.lines) == 1


UNJUDGED = """
def test_only_generates(llm):
    llm.generate("Hi")

def test_asserts(llm):
    assert llm.generate("Hi").text is not None
"""


def test_a_test_that_cannot_fail_on_the_answer_is_reported(
    pytester: pytest.Pytester, llama_server_bin: Path, gemma_gguf: Path
) -> None:
    pytester.makepyfile(test_u=UNJUDGED)
    args = ["--llm-models=llama-server:gemma3-270m", "--llm-max-tokens=4", "--llm-ctx=512"]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2)
    assert sum("LLMBenchUnscoredWarning" in line for line in result.stdout.lines) == 1
    result.stdout.fnmatch_lines(
        ["*LLMBenchUnscoredWarning: test_only_generates generated 1 answer(s)*"]
    )
    strict = pytester.runpytest(*args, "--llm-strict")
    strict.assert_outcomes(passed=1, failed=1)
    strict.stdout.fnmatch_lines(["*--llm-strict: test_only_generates generated*"])
