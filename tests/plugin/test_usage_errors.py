"""Bad input is one ``ERROR:`` line (exit 4) with the fix, before any test runs."""

from __future__ import annotations

import pytest

TEST_FILE = "def test_x(llm):\n    llm.generate('hi')\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--llm-models=gemma"], "*model spec 'gemma' has no backend prefix; use ollama:NAME*"),
        (["--llm-models=llama-server:missing.gguf"], "*GGUF file 'missing.gguf' not found*"),
        (
            ["--llm-models=ollama:m", "--llm-max-tokens=lots"],
            "*--llm-max-tokens='lots' is not an integer*",
        ),
        (
            ["--llm-models=ollama:m", "--llm-temperature=-1"],
            "*--llm-temperature='-1' must be at least 0*",
        ),
        (["--llm-models=ollama:m", "--llm-leaderboard=fancy"], "*use one of auto, models, items*"),
        (["--llm-models=ollama:m", "--llm-server-args=-x 'unclosed"], "*cannot split*"),
        (
            ["--llm-models=ollama:m", "--llm-replay-missing=record"],
            "*--llm-replay-missing=record needs --llm-replay DIR*",
        ),
        (
            ["--llm-models=ollama:m", "--llm-replay=.", "--llm-replay-missing=regen"],
            "*--llm-replay-missing='regen': use `error` (the default) or `record`*",
        ),
    ],
)
def test_usage_error(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_not_a_gguf_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TEST_FILE)
    pytester.path.joinpath("fake.gguf").write_bytes(b"<html>")
    result = pytester.runpytest("--llm-models=llama-server:fake.gguf")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *is not a GGUF file*"])


def test_missing_binary_says_how_to_build(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TEST_FILE)
    pytester.path.joinpath("m.gguf").write_bytes(b"GGUF")
    result = pytester.runpytest(
        "--llm-models=llama-server:m.gguf", "--llm-llama-server-bin=/nonexistent/llama-server"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *python -m pytest_llmbench.tools.llama_server*"])


def test_ini_models_are_parsed_too(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllm_models = nonsense\n")
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *'nonsense' has no backend prefix*"])


def test_unknown_marker_setting(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n@pytest.mark.llm(max_tokenz=5)\ndef test_x(llm):\n    pass\n"
    )
    pytester.path.joinpath("m.gguf").write_bytes(b"GGUF")
    result = pytester.runpytest("--llm-models=ollama:m@http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *@pytest.mark.llm: unknown keyword(s) max_tokenz; valid keys: max_tokens*"]
    )


def test_without_models_llm_tests_skip_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TEST_FILE)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no models: pass --llm-models=SPEC*"])
