"""Inter-token latency per generation (client clock): in the results JSON, and gated by
thresholds (``itl_p99_s<=0.25``)."""

from __future__ import annotations

import json

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

TEST = "def test_answer(llm):\n    assert llm.generate('Say hi').answer\n"


def test_a_stall_shows_as_the_longest_gap_and_fails_an_itl_gate(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_f=TEST)
    # 20 tokens 10 ms apart with one 0.6 s stall after the 10th (a model paging weights).
    script = ModelScript(["t"] * 20, token_delay_s=0.01, fault="stall", fault_after=10, stall_s=0.6)
    srv = fake_llama_server(script)
    result = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}",
        "--llm-json=r.json",
        "--llm-thresholds=itl_max_s<=0.25,itl_p50_s<=0.25",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*itl_max_s = *threshold itl_max_s<=0.25*"])
    (item,) = json.loads((pytester.path / "r.json").read_text())["items"]
    m = item["record"]["generations"][0]["metrics"]
    assert m["itl_max_s"] >= 0.55
    assert m["itl_p50_s"] <= m["itl_p90_s"] <= m["itl_p99_s"] <= m["itl_max_s"]
    assert m["itl_p50_s"] < 0.3  # the one stall moves the maximum, not the median
