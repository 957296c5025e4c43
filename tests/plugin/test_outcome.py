"""Item outcomes and the run's exit status (FakeLlamaServer, no real model needed).

One function decides an item's outcome and one place the exit status: the run exits 1 on any
failed or errored item, with or without the terminal plugin, under xdist, with repeats and
gates; thresholds on repeated tests give one verdict per repeat group, on its median.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from fakes import ModelScript
from tests.fixtures.fakes import StartLlamaServer

GATED = """
import pytest

@pytest.mark.llm(repeat=3, temperature=0.5, min_pass_rate=0.6)
def test_sampled(llm):
    llm.generate("Say yes.")
    assert llm.settings.seed != 43, "the one sample that fails on purpose"
"""

ORDINARY_FAILURE = """
def test_plain():
    assert 1 == 2
"""


@pytest.fixture
def url(fake_llama_server: StartLlamaServer) -> str:
    return f"llama-server@{fake_llama_server(ModelScript(['Yes', '.'])).url}"


def run(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    return pytester.runpytest(f"--llm-models={url}", "-p", "no:cacheprovider", *args)


@pytest.mark.parametrize(
    "args",
    [(), ("-p", "no:terminal"), ("-n", "2"), ("-p", "no:terminal", "-n", "2")],
    ids=["terminal", "no-terminal", "xdist", "no-terminal-xdist"],
)
def test_a_met_pass_rate_never_forgives_another_tests_failure(
    pytester: pytest.Pytester, url: str, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_gated=GATED, test_plain=ORDINARY_FAILURE)
    result = run(pytester, url, "--junitxml=j.xml", *args)
    suite = ET.parse(pytester.path / "j.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("args", [(), ("-p", "no:terminal"), ("-n", "2")])
def test_a_met_pass_rate_forgives_its_own_failed_samples(
    pytester: pytest.Pytester, url: str, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_gated=GATED)
    result = run(pytester, url, "--llm-json=r.json", *args)
    assert result.ret == pytest.ExitCode.OK
    outcomes = sorted(
        i["outcome"] for i in json.loads((pytester.path / "r.json").read_text())["items"]
    )
    assert outcomes == ["failed", "passed", "passed"]


def test_a_run_stopped_by_maxfail_is_never_forgiven(pytester: pytest.Pytester, url: str) -> None:
    pytester.makepyfile(test_gated=GATED.replace("min_pass_rate=0.6", "min_pass_rate=0.5"))
    result = run(pytester, url, "-x", "-p", "no:terminal")  # stops at r2: 1/2 meets 0.5
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_a_missed_pass_rate_fails_the_run_without_the_terminal(
    pytester: pytest.Pytester, url: str
) -> None:
    pytester.makepyfile(test_gated=GATED.replace("min_pass_rate=0.6", "min_pass_rate=0.7"))
    result = run(pytester, url, "-p", "no:terminal")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_an_errored_sample_is_never_forgiven(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_gated=GATED.replace("min_pass_rate=0.6", "min_pass_rate=0.3"))
    srv = fake_llama_server(ModelScript(["Yes"], fault="cut", fault_after=0))
    result = run(pytester, f"llama-server@{srv.url}", "-p", "no:terminal")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


TEARDOWN_ERROR = """
import pytest

@pytest.fixture
def broken_teardown(request):
    yield
    if request.node.name.endswith("-r2]"):  # the sample that fails on purpose
        raise RuntimeError("teardown broke")

@pytest.mark.llm(repeat=3, temperature=0.5, min_pass_rate=0.6)
def test_sampled(llm, broken_teardown):
    llm.generate("Say yes.")
    assert llm.settings.seed != 43, "the one sample that fails on purpose"
"""


def test_a_forgiven_samples_teardown_error_still_fails_the_run(
    pytester: pytest.Pytester, url: str
) -> None:
    pytester.makepyfile(test_gated=TEARDOWN_ERROR)
    result = run(pytester, url, "-p", "no:terminal")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_server_trouble_is_an_error_under_xdist(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_gated=GATED)
    srv = fake_llama_server(ModelScript(["Yes"], fault="cut", fault_after=0))
    result = run(pytester, f"llama-server@{srv.url}", "-n", "2")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*StreamError: llama-server@http*: the server cut the stream*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


SCORED_REPEATS = """
import pytest

@pytest.mark.llm(repeat=3, temperature=0.5, thresholds="score>=LIMIT")
def test_scored(llm):
    llm.generate("Say yes.")
    llm.record_score("score", {42: 70.0, 43: 90.0, 44: 95.0}[llm.settings.seed])
"""


def test_thresholds_pool_the_repeats_into_one_verdict_on_the_median(
    pytester: pytest.Pytester, url: str
) -> None:
    pytester.makepyfile(test_scored=SCORED_REPEATS.replace("LIMIT", "80"))
    result = run(pytester, url)
    result.assert_outcomes(passed=3)  # the 70 of r1 alone would miss score>=80
    result.stdout.fnmatch_lines(["*threshold gate OK: llama-server@* test_scored: score>=80*"])
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize("args", [(), ("-p", "no:terminal"), ("-n", "2")])
def test_a_repeat_group_whose_median_misses_fails_the_run(
    pytester: pytest.Pytester, url: str, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_scored=SCORED_REPEATS.replace("LIMIT", "92"))
    result = run(pytester, url, "--llm-json=r.json", *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    if not args:
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(
            [
                "llmbench gate FAILED: thresholds score>=92",
                "  threshold: llama-server@:* :: test_scored: "
                "score = 90, threshold score>=92 (median of 3: 70–95)",
            ]
        )
    (group,) = json.loads((pytester.path / "r.json").read_text())["repeat_groups"]
    assert group["thresholds_missed"] == ["score = 90, threshold score>=92 (median of 3: 70–95)"]


def test_a_single_item_still_fails_on_its_own_threshold(
    pytester: pytest.Pytester, url: str
) -> None:
    pytester.makepyfile(
        test_scored=SCORED_REPEATS.replace("repeat=3", "repeat=1").replace("LIMIT", "80")
    )
    result = run(pytester, url)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*threshold missed: score = 70, threshold score>=80*"])


LLM_TESTS = """
import pytest

@pytest.mark.parametrize("n", [1, 2, 3])
def test_llm(llm, n):
    assert llm.generate("hi").answer

def test_other():
    pass
"""


@pytest.mark.parametrize("args", [(), ("-n", "2")])
def test_no_models_says_so_in_one_line(pytester: pytest.Pytester, args: tuple[str, ...]) -> None:
    pytester.makepyfile(test_x=LLM_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(["*3 LLM tests skipped: no models; pass --llm-models*"])


@pytest.mark.parametrize(
    ("marker", "args", "message"),
    [
        ("min_pass_rate=0.8", (), "*min_pass_rate=0.8 gates repeated runs: add repeat=N*"),
        ("repeat=1, min_pass_rate=0.8", ("--llm-repeat=3",), "*min_pass_rate=0.8 gates*"),
        ("repeat=2.5", (), "*repeat=2.5 must be a whole number, at least 1*"),
        ("repeat=True", (), "*repeat=True must be a whole number*"),
    ],
)
def test_a_marker_gate_that_could_never_apply_is_a_usage_error(
    pytester: pytest.Pytester, marker: str, args: tuple[str, ...], message: str
) -> None:
    pytester.makepyfile(f"import pytest\n@pytest.mark.llm({marker})\ndef test_x(llm):\n    pass\n")
    result = pytester.runpytest("--llm-models=llama-server@http://127.0.0.1:9", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: test_*.py::test_x*: @pytest.mark.llm: {message}"])


def test_a_run_wide_pass_rate_leaves_unrepeated_tests_alone(
    pytester: pytest.Pytester, url: str
) -> None:
    pytester.makepyfile("def test_x(llm):\n    assert llm.generate('hi').answer\n")
    result = run(pytester, url, "--llm-min-pass-rate=0.8")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
