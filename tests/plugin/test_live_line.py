"""The live line is wired into the run: present by default, absent with -q and with -s."""

from __future__ import annotations

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

TEST = """
def test_answer(llm, request):
    assert llm.generate("hi").answer
    line = request.config.pluginmanager.get_plugin("llmbench-live-line")
    assert (line is not None) == (request.config.getoption("verbose") >= 0
                                  and request.config.getoption("capture") != "no")
    assert llm.backend.live is line
"""


@pytest.mark.parametrize("args", [(), ("-q",), ("-s",)])
def test_live_line_on_unless_quiet_or_uncaptured(
    pytester: pytest.Pytester, args: tuple[str, ...], fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_live_wiring=TEST)  # not test_live: tests/unit has one
    srv = fake_llama_server(ModelScript(["Hi", "!"]))
    result = pytester.runpytest(f"--llm-models=llama-server@{srv.url}", *args)
    result.assert_outcomes(passed=1)
