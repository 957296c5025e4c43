"""The same requests without the plugin: BENCH_PROMPTS items, each streaming one reply from
the llama-server at BENCH_URL with a bare httpx loop (the yardstick for per-item time)."""

import os
import time

import httpx
import pytest

CLIENT = httpx.Client(headers={"Connection": "close"})
URL = os.environ["BENCH_URL"] + "/v1/chat/completions"
BODY = {"messages": [{"role": "user", "content": "Go."}], "stream": True}


@pytest.mark.parametrize("i", range(int(os.environ["BENCH_PROMPTS"])))
def test_prompt(record_property, i):
    started = time.perf_counter()
    with CLIENT.stream("POST", URL, json=BODY) as reply:
        lines = list(reply.iter_lines())
    record_property("llm.total_s", time.perf_counter() - started)
    assert lines
