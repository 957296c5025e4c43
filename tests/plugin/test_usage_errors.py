"""Bad input is one ``ERROR:`` line (exit 4) with the fix, before any test runs."""

from __future__ import annotations

import json

import pytest

TEST_FILE = "def test_x(llm):\n    llm.generate('hi')\n"
MODEL = "--llm-models=ollama:m@http://127.0.0.1:9"


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
        # Numbers that are no limit or no gate at all.
        ([MODEL, "--llm-timeout=nan"], "--llm-timeout='nan' is not a finite number*"),
        ([MODEL, "--llm-read-timeout=inf"], "--llm-read-timeout='inf' is not a finite number*"),
        ([MODEL, "--llm-health-timeout=inf"], "--llm-health-timeout='inf' is not a finite*"),
        ([MODEL, "--llm-min-pass-rate=nan"], "--llm-min-pass-rate='nan' is not a finite*"),
        ([MODEL, "--llm-temperature=inf"], "--llm-temperature='inf' is not a finite number*"),
        (
            [MODEL, "--llm-seed=-1"],
            "--llm-seed='-1' must be at least 0; fix it on the command line or in the llm_seed "
            "ini setting",
        ),
        (
            [MODEL, "--llm-concurrency=0"],
            "--llm-concurrency='0' must be at least 1; fix it on the command line or in the "
            "llm_concurrency ini setting",
        ),
        # A gate that could never fail.
        (["--llm-models="], "--llm-models='' names no model (an unset CI variable?)*"),
        (["--llm-models= , "], "--llm-models=' , ' names no model*"),
        (["--llm-strict"], "--llm-strict given but no models to gate: pass --llm-models=SPEC*"),
        (
            ["--llm-min-pass-rate=0.8", "--llm-thresholds=score>=50"],
            "--llm-min-pass-rate, --llm-thresholds given but no models to gate*",
        ),
        (["--llm-compare-fail=score:5"], "--llm-compare-fail given but no models to gate*"),
        (
            [MODEL, "--llm-compare-fail=score:5"],
            "--llm-compare-fail needs a saved run to compare with: add --llm-compare=NAME*",
        ),
        # Every output and baseline checked before the first test.
        ([MODEL, "--llm-json=adir"], "--llm-json='adir': is a directory; give a file name inside*"),
        (
            [MODEL, "--llm-markdown=afile/lb.md"],
            "--llm-markdown='afile/lb.md': *afile' is a file, not a directory*",
        ),
        (
            [MODEL, "--llm-html=/proc/x.html"],
            "--llm-html='/proc/x.html': cannot create files in '/proc'*",
        ),
        ([MODEL, "--llm-json=/dev/null"], "--llm-json='/dev/null': is not a regular file*"),
        ([MODEL, "--llm-record=afile"], "--llm-record='afile': is a file, not a directory*"),
        (
            [MODEL, "--llm-save=base", "--llm-storage=afile"],
            "--llm-storage='afile': is a file, not a directory*",
        ),
        ([MODEL, "--llm-save=my run"], "--llm-save: baseline name 'my run': use letters, digits*"),
        (
            [MODEL, "--llm-compare=main"],
            "--llm-compare: no saved run 'main' in */.llmbench (have: none); save one with*",
        ),
    ],
)
def test_usage_error(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    pytester.makepyfile(TEST_FILE)
    pytester.mkdir("adir")
    pytester.path.joinpath("afile").write_text("")
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


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_every_option(pytester: pytest.Pytester, flag: str) -> None:
    """A bare % in an option's help crashed argparse (ValueError: incomplete format)."""
    result = pytester.runpytest_subprocess(flag)
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines(["*--llm-compare-fail=*", "*score:5,decode_tps:10%*"])


def test_help_names_every_model_spec_form(pytester: pytest.Pytester) -> None:
    """--llm-models's help named five forms and left out answers:DIR, pools and NAME=SPEC."""
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    words = " ".join(result.stdout.str().split())  # argparse wraps the help anywhere
    for form in ("openai:MODEL@URL", "@URL1+URL2", "answers:DIR", "NAME=SPEC"):
        assert form in words, form


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ('{"schema": "pytest-llmbench/results", "version": 1, "items": [', "not valid JSON*"),
        (
            json.dumps({"schema": "pytest-llmbench/results", "version": 1, "items": ["x"]}),
            'items[[]0[]]: expected an object, got "x"',
        ),
        (
            json.dumps({"schema": "pytest-llmbench/results", "version": 1, "items": [{}]}),
            "items[[]0[]].model: missing",
        ),
        (
            json.dumps({"schema": "pytest-llmbench/results", "version": 7, "items": []}),
            "version: expected 1 (this plugin's results version), got 7",
        ),
    ],
)
def test_a_bad_baseline_is_a_usage_error_before_the_run(
    pytester: pytest.Pytester, content: str, message: str
) -> None:
    pytester.makepyfile(TEST_FILE)
    pytester.mkdir(".llmbench").joinpath("0001_main.json").write_text(content)
    result = pytester.runpytest(MODEL, "--llm-compare=main")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --llm-compare: saved run */.llmbench/0001_main.json is not a usable baseline: "
            f"{message}*"
        ]
    )
    assert "test_x" not in result.stdout.str()  # nothing ran
