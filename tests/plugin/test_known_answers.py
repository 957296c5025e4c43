"""Known answers (``answers:DIR``): a user's checks proven on answers with known verdicts, each
folder a "model" on the leaderboard, no server started."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench.generate.known_answers import KnownAnswerError, file_name, read_answer

CHECKS = """
import pytest

NAMES = {"alice": "Alice", "bob": "Bob"}

@pytest.mark.parametrize("name", NAMES.values(), ids=NAMES.keys())
def test_greet(llm, name):
    answer = llm.generate(f"Greet {name}.")
    llm.record_score("polite", 1.0 if "please" in answer.answer.lower() else 0.0)
    assert f"hello {name.lower()}" in answer.answer.lower(), "no greeting by name"

def test_unanswered(llm):
    llm.generate("Anything.")
"""

BAD = "---\nexpect: fail\nnote: greets nobody\n---\nGood day.\n"


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def items(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    document = json.loads((pytester.path / "r.json").read_text())
    return {i["nodeid"]: i for i in document["items"]}


@pytest.fixture
def known(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_checks=CHECKS)
    write(
        pytester.path,
        {
            "known/good/test_checks/test_greet[alice].md": "Hello Alice, please sit.\n",
            "known/good/test_checks/test_greet[bob].md": "Hello Bob!\n",
            "known/bad/test_checks/test_greet[alice].md": BAD,
            "known/bad/test_checks/test_greet[bob].md": "---\nexpect: fail\n---\nHello Rob.\n",
        },
    )
    return pytester


MODELS = "--llm-models=answers:known/good,answers:known/bad"


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_good_and_bad_answers_get_their_verdicts_with_no_server(
    known: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    result = known.runpytest(MODELS, "--llm-json=r.json", "-rxs", *xdist)
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=2, xfailed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*XFAIL*test_greet*answers:known/bad-alice* - known bad answer known/bad/test_checks/test_greet[[]alice].md (greets nobody)",
            "*SKIP*answers:known/good: no known answers for test_unanswered (looked for known/good/test_checks/test_unanswered.md)",
        ]
    )
    result.stdout.fnmatch_lines(["llmbench gate passed: known answers: 2 must pass, 2 must fail"])
    out = result.stdout.str()
    assert "healthy" not in out and "starting" not in out
    result.stdout.fnmatch_lines(
        [
            "| model*| n*| pass*| fail*|*",
            "| answers:known/good*| 3*| 2*| 0*|*",
            "| answers:known/bad*| 3*| 0*| 2*|*",  # the bad answers fail the checks
        ]
    )
    header = next(line for line in result.stdout.lines if line.startswith("| model"))
    assert "TTFT" not in header and "tok/s" not in header  # nothing was timed
    assert "out tok" not in header  # nor counted: no column of zeros
    records = items(known)
    good = records["test_checks.py::test_greet[answers:known/good-alice]"]["record"]
    assert good["known_answer"] == {
        "path": "known/good/test_checks/test_greet[alice].md",
        "expect": "pass",
        "note": None,
    }
    assert good["scores"] == {"polite": 1.0}
    metrics = good["generations"][0]["metrics"]
    assert metrics["ttft_s"] is None and metrics["decode_tps"] is None  # absent, not 0
    assert good["generations"][0]["request_settings"]["answer_file"].endswith("[alice].md")
    models = {m["model"]: m for m in json.loads((known.path / "r.json").read_text())["models"]}
    assert models["answers:known/good"]["ttft_s_median"] is None


@pytest.mark.parametrize(
    ("path", "text", "outcomes", "lines"),
    [
        (
            "known/bad/test_checks/test_greet[bob].md",
            "---\nexpect: fail\n---\nhello bob\n",
            {"passed": 2, "xfailed": 1},
            [
                "*known answer known/bad/test_checks/test_greet[[]bob].md is marked `expect: fail` but the test passed: the check does not catch it*"
            ],
        ),
        (
            "known/good/test_checks/test_greet[bob].md",
            "Hi.\n",
            {"passed": 1, "xfailed": 2},
            [
                "*known answer known/good/test_checks/test_greet[[]bob].md should pass (it is not marked `expect: fail`) but the test failed:*",
                "*no greeting by name*",
            ],
        ),
    ],
    ids=["bad answer passes", "good answer fails"],
)
def test_a_wrong_verdict_fails_the_run_naming_the_file(
    known: pytest.Pytester, path: str, text: str, outcomes: dict[str, int], lines: list[str]
) -> None:
    write(known.path, {path: text})
    result = known.runpytest(MODELS)
    assert result.ret == 1
    result.assert_outcomes(failed=1, skipped=2, **outcomes)
    result.stdout.fnmatch_lines(lines)


def test_a_missing_answer_beside_others_is_an_error_naming_the_file(known: pytest.Pytester) -> None:
    (known.path / "known/good/test_checks/test_greet[bob].md").unlink()
    result = known.runpytest(MODELS)
    result.assert_outcomes(passed=1, xfailed=2, errors=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*KnownAnswerError: answers:known/good: no known answer for test_greet[[]bob]: known/good/test_checks/test_greet[[]bob].md does not exist, though the test has other known answers in known/good/test_checks; write it*",
        ]
    )


def test_a_broken_test_is_never_an_expected_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checks="def test_x(llm):\n    llm.generate('x').answer.nope()\n")
    write(pytester.path, {"bad/test_checks/test_x.md": BAD})
    result = pytester.runpytest("--llm-models=answers:bad")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*known answer bad/test_checks/test_x.md is marked `expect: fail`, but the test failed by raising AttributeError, not by an assertion: a bug in the test or its check, not a verdict*",
        ]
    )


TRICKY = """
import pytest

@pytest.mark.parametrize("q", ["a/b:c", "x y?", "..."], ids=["a/b:c", "x y?", "..."])
def test_ids(llm, q):
    first = llm.generate(q)
    second = llm.generate("again")
    assert first.answer == f"answer to {q}" and second.answer == "second"
    assert not first.truncated and second.truncated

class TestGroup:
    def test_method(self, llm):
        answer = llm.generate("x")
        assert answer.answer == "in a class" and answer.thinking == "hmm"
"""


def test_ids_with_unsafe_characters_classes_and_several_generations(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_t=TRICKY)
    second = "---\nfinish_reason: length\n---\nsecond"
    files = {}
    for q in ["a/b:c", "x y?", "..."]:
        files[f"k/test_t/{file_name(f'test_ids[{q}]')}"] = f"answer to {q}"
        files[f"k/test_t/{file_name(f'test_ids[{q}]', 2)}"] = second
    files["k/test_t/TestGroup.test_method.md"] = "<think>hmm</think>in a class"
    write(pytester.path, files)
    assert sorted(p.name for p in (pytester.path / "k/test_t").iterdir())[:2] == [
        "TestGroup.test_method.md",
        "test_ids[...].2.md",
    ]
    result = pytester.runpytest("--llm-models=answers:k")
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("---\nexpect: maybe\n---\nx", "line 2: expect: 'maybe'; use one of pass, fail"),
        (
            "---\nverdict: fail\n---\nx",
            "line 2: 'verdict: fail' is not one of expect: ..., finish_reason: ..., note: ...",
        ),
        ("---\nexpect: fail\nx", "its front matter (from the first line, ---) is never closed"),
    ],
)
def test_bad_front_matter_errors_the_item_naming_file_and_line(
    pytester: pytest.Pytester, text: str, problem: str
) -> None:
    pytester.makepyfile(test_checks="def test_x(llm):\n    assert llm.generate('x').answer\n")
    write(pytester.path, {"k/test_checks/test_x.md": text})
    result = pytester.runpytest("--llm-models=answers:k")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*KnownAnswerError: known answer k/test_checks/test_x.md*{problem}*"]
    )


PROMPT_FILES = """
from pytest_llmbench.prompts import prompt_params
import pytest

@pytest.mark.parametrize("prompt", prompt_params("prompts"))
def test_capital(llm, prompt):
    assert prompt.meta["expected"] in llm.generate(prompt, system=prompt).answer
"""


def test_prompt_files_under_xdist(pytester: pytest.Pytester) -> None:
    """A prompt from ``prompt_params`` (a ``PromptFile``, a ``str`` subclass) is recorded as
    plain text: the record crosses from an xdist worker (execnet refused the subclass)."""
    pytester.makepyfile(test_capital=PROMPT_FILES)
    write(
        pytester.path,
        {
            "prompts/france.md": "---\nexpected: Paris\n---\nCapital of France?\n",
            "prompts/italy.md": "---\nexpected: Rome\n---\nCapital of Italy?\n",
            "k/test_capital/test_capital[france].md": "Paris\n",
            "k/test_capital/test_capital[italy].md": "---\nexpect: fail\n---\nMilan\n",
        },
    )
    result = pytester.runpytest("--llm-models=answers:k", "-n", "2")
    assert "INTERNALERROR" not in result.stdout.str()
    result.assert_outcomes(passed=1, xfailed=1)


def test_front_matter_and_names(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text(
        "---\n# why it is bad\nexpect: fail  # must fail\nnote: no-op complete\n---\n---\nbody\n"
    )
    answer = read_answer(path)
    assert (answer.expect, answer.note, answer.text) == ("fail", "no-op complete", "---\nbody\n")
    path.write_text("no front matter\n---\n")
    assert read_answer(path).text == "no front matter\n---\n" and read_answer(path).expect == "pass"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(KnownAnswerError, match="cannot be read"):
        read_answer(path)
    assert file_name("test_x[a/b]") == "test_x[a%2Fb].md"
    assert file_name("test_x[x y?:*]") == "test_x[x%20y%3F%3A%2A].md"
    assert file_name("test_x[%2F]") == "test_x[%252F].md"  # reversible: % is encoded too
    assert file_name("test_x[é]", 3) == "test_x[%C3%A9].3.md"
    assert file_name("test_x.") == "test_x%2E.md"
    long = file_name("test_x[" + "y" * 400 + "]")
    assert len(long) < 200 and long != file_name("test_x[" + "y" * 399 + "z]")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--llm-models=answers:nowhere"], "answers:nowhere: no folder 'nowhere'*"),
        (
            ["--llm-models=answers:k", "--llm-judge=answers:k"],
            "--llm-judge='answers:k': a judge must be a model*",
        ),
    ],
)
def test_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    (pytester.path / "k").mkdir()
    result = pytester.runpytest(*args)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_the_examples_known_answers_run_green(pytester: pytest.Pytester) -> None:
    """The server-free command of README's *Test your checks*: every example test with known
    answers gets its verdict (good ones pass, bad ones fail as expected), the rest skip."""
    root = Path(__file__).resolve().parents[2]
    known = root / "examples" / "known"
    result = pytester.runpytest_subprocess(
        str(root / "examples"),
        f"--llm-models=answers:{known / 'good'},answers:{known / 'bad'}",
        "-p",
        "no:cacheprovider",
        "-rxs",
    )
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=8, xfailed=8, skipped=6)
    result.stdout.fnmatch_lines(["llmbench gate passed: known answers: 8 must pass, 8 must fail"])
    for test in (
        "test_todo_app[v1]",
        "test_todo_app[v2]",
        "test_saas_spec",
        "test_humaneval[HumanEval%2F4]",
    ):
        result.stdout.fnmatch_lines(
            [f"XFAIL *known bad answer */known/bad/*/{test.replace('[', '[[]')}.md (*"]
        )


GATED = """
import pytest

@pytest.mark.llm(thresholds="score>=50")
def test_gated(llm):
    answer = llm.generate("x")
    llm.record_score("score", 100.0 if "good" in answer.answer else 0.0)

def test_unscored(llm):
    llm.generate("x")
"""


def test_a_missed_threshold_is_a_verdict_and_the_strict_audit_is_not(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_g=GATED)
    write(
        pytester.path,
        {
            "good/test_g/test_gated.md": "good",
            "bad/test_g/test_gated.md": "---\nexpect: fail\n---\nbad",
            "bad/test_g/test_unscored.md": "---\nexpect: fail\n---\nbad",
        },
    )
    result = pytester.runpytest(
        "--llm-models=answers:good,answers:bad", "--llm-strict", "--llm-json=r.json", "-rx"
    )
    result.assert_outcomes(passed=1, xfailed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*known answer bad/test_g/test_unscored.md is marked `expect: fail`, but the test failed by a gate that says nothing about the answer, not by an assertion*",
            "llmbench gate FAILED: thresholds score>=50; known answers: 1 must pass, 2 must fail",
            "  1 test failed: answers:bad :: test_unscored",  # the audit; the expected miss is no gate's
            "*XFAIL test_g.py::test_gated[[]answers:bad] - known bad answer bad/test_g/test_gated.md",
        ]
    )


def test_a_bad_answer_that_passes_says_why_in_the_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_g=GATED)
    write(pytester.path, {"bad/test_g/test_gated.md": "---\nexpect: fail\n---\ngood"})
    result = pytester.runpytest("--llm-models=answers:bad", "--llm-json=r.json")
    result.assert_outcomes(failed=1, skipped=1)
    record = items(pytester)["test_g.py::test_gated[answers:bad]"]["record"]
    assert "the check does not catch it" in record["failure"]


def test_known_answers_are_served_once_whatever_the_repeats(pytester: pytest.Pytester) -> None:
    """A known answer is the same every time: repeating it would only pool identical scores
    (and a pooled threshold would gate an expected failure)."""
    pytester.makepyfile(test_g=GATED)
    write(pytester.path, {"bad/test_g/test_gated.md": "---\nexpect: fail\n---\nbad"})
    result = pytester.runpytest("--llm-models=answers:bad", "--llm-repeat=3", "-rx")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(xfailed=1, skipped=1)
    result.stdout.fnmatch_lines(["*XFAIL test_g.py::test_gated[[]answers:bad] - known bad answer*"])
