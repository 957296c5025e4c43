"""One model served by a pool of endpoints (``@URL1+URL2``): one leaderboard row, items
spread over the endpoints, one xdist group per endpoint."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

TEST = """
import pytest

@pytest.mark.parametrize("prompt", ["a", "b", "c", "d"])
def test_p(llm, prompt):
    assert llm.generate(prompt).answer
"""


def test_serial_run_spreads_items_and_shows_one_row(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_pool=TEST)
    script = ModelScript(["Hi", "!"], token_delay_s=0.005)
    one = fake_llama_server(script)
    two = fake_llama_server(script)
    result = pytester.runpytest(
        f"--llm-models=llama-server@{one.url}+{two.url}", "--llm-json=r.json", "-v"
    )
    served = [len(s.calls("POST", "/v1/chat/completions")) for s in (one, two)]
    result.assert_outcomes(passed=4)
    assert served == [2, 2]
    rows = [line for line in result.stdout.lines if re.match(r"\| llama-server@\S+ +\| 4 ", line)]
    assert len(rows) == 1 and re.match(r"\| llama-server@\S+\+\S+ +\| 4 +\| 4 ", rows[0])
    items = json.loads((pytester.path / "r.json").read_text())["items"]
    served_by = {i["test"]: i["record"]["generations"][0]["server"]["url"] for i in items}
    assert served_by == {"test_p[a]": one.url, "test_p[b]": two.url,
                         "test_p[c]": one.url, "test_p[d]": two.url}  # fmt: skip
    ran = re.findall(r"test_p\[\S+-(\w)\] PASSED", result.stdout.str())
    assert ran == ["a", "c", "b", "d"]  # each endpoint's items together: one load each


def test_xdist_keeps_each_endpoint_on_one_worker(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_pool=TEST)
    script = ModelScript(["Hi", "!"], token_delay_s=0.005)
    one = fake_llama_server(script)
    two = fake_llama_server(script)
    spec = f"llama-server@{one.url}+{two.url}"
    result = pytester.runpytest(f"--llm-models={spec}", "-n", "2", "--dist", "loadgroup", "-v")
    served = [len(s.calls("POST", "/v1/chat/completions")) for s in (one, two)]
    result.assert_outcomes(passed=4)
    assert served == [2, 2]
    workers: dict[str, set[str]] = defaultdict(set)
    for line in result.stdout.lines:
        found = re.search(r"\[(gw\d)\] .*PASSED .*test_p\[\S+-(\w)\]", line)
        if found:  # endpoint 1 serves a and c, endpoint 2 b and d
            workers["ac" if found.group(2) in "ac" else "bd"].add(found.group(1))
    assert len(workers) == 2 and all(len(w) == 1 for w in workers.values()), workers
    assert "]@" not in result.stdout.str()  # ids untouched
    rows = [line for line in result.stdout.lines if re.match(r"\| llama-server@\S+ +\| 4 ", line)]
    assert len(rows) == 1 and re.match(r"\| llama-server@\S+\+\S+ +\| 4 +\| 4 ", rows[0])


def test_an_endpoint_listed_twice_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_pool=TEST)
    result = pytester.runpytest("--llm-models=ollama:m@http://h:1+h:1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*lists an endpoint twice*"])
