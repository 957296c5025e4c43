"""Attaching to a port where nothing listens: the items error within seconds naming the URL,
instead of waiting out the whole health timeout (900 s by default) as for a loading model."""

from __future__ import annotations

import time

import pytest

from pytest_llmbench.serve.backends import llama_cpp
from pytest_llmbench.serve.processes import free_port

TEST = """
def test_answer(llm):
    assert llm.generate("Say hi").answer
"""


def test_nothing_listening_errors_fast_and_says_why(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llama_cpp, "ATTACH_REFUSED_S", 0.5)
    url = f"http://127.0.0.1:{free_port()}"
    pytester.makepyfile(test_f=TEST)
    started = time.monotonic()
    result = pytester.runpytest(f"--llm-models=llama-server@{url}", "--llm-health-timeout=60")
    elapsed = time.monotonic() - started
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*ServerError: llama-server@{url}: nothing answers at {url}/health (connection "
            f"refused for 0.5 s). Is the server running, and is this the right port?*"
        ]
    )
    assert elapsed < 30  # the health timeout (60 s) was not waited out
