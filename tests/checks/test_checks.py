"""Every check on good, bad and hostile inputs."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmbench import checks
from pytest_llmbench.checks.judge import parse_verdict


def test_extract_code_rules() -> None:
    assert checks.extract_code("Here:\n```python\nprint(1)\n```\nbye") == "print(1)\n"
    two = "```python\na = 1\n```\ntext\n```py\nimport os\nprint(os.sep)\n```"
    assert checks.extract_code(two) == "import os\nprint(os.sep)\n"  # the longest block
    assert checks.extract_code("```\nx = 1\n```") == "x = 1\n"  # untagged
    assert checks.extract_code("```bash\nls\n```") is None
    assert checks.extract_code("import sys\nprint(sys.argv)") == "import sys\nprint(sys.argv)"
    assert checks.extract_code("Sorry, I cannot help.") is None
    assert checks.extract_code("```python\ndef f(:\n    return f'{x") == "def f(:\n    return f'{x"
    assert checks.extract_code("") is None and checks.extract_code(None) is None


def test_blocks_in_prose() -> None:
    text = "a\n```yaml\nk: v\n```\n```sql\nSELECT 1;\n```\n```yml\nx: 1\n```\n```json\n{}\n```"
    assert checks.extract_blocks(text, "yaml") == ["k: v\n", "x: 1\n"]
    assert checks.extract_blocks(text, "sql") == ["SELECT 1;\n"]
    assert checks.extract_blocks(text, "json") == ["{}\n"]


def test_split_thinking() -> None:
    assert checks.split_thinking("<think>hmm</think>\nAnswer") == ("hmm", "Answer")
    assert checks.split_thinking("<think>cut off") == ("cut off", "")
    assert checks.split_thinking("plain") == ("", "plain")


@given(st.text(), st.sampled_from(["python", "yaml", None]))
def test_extraction_never_raises(text: str, language: str | None) -> None:
    checks.extract_code(text, language)
    checks.extract_blocks(text, language)
    checks.split_thinking(text)


def test_python_syntax() -> None:
    assert checks.python_syntax("x = 1\n").passed
    bad = checks.python_syntax("def f(:\n  pass")
    assert not bad.passed and "line 1" in bad.details and bad.diagnosis is None
    assert checks.python_syntax("x = (", truncated=True).diagnosis == checks.TRUNCATED
    assert checks.python_syntax(None).diagnosis == checks.NO_CODE
    assert not checks.python_syntax("\x00").passed  # NUL byte: an error, not a crash
    assert not checks.python_syntax("(" * 5000).passed  # absurd nesting


def test_features_ast_and_regex_fallback() -> None:
    code = "import sqlite3\nimport argparse as ap\np = ap.ArgumentParser()\nif __name__ == '__main__':\n    pass\n"
    listing = {
        "sqlite": checks.imports("sqlite3"),
        "argparse": checks.calls("argparse.ArgumentParser"),
        "main": checks.main_block(),
        "input": checks.calls("input"),
        "add": r"def add",
    }
    result = checks.features(code, listing)
    assert result.score == pytest.approx(3 / 5)
    assert "missing: input, add" in result.details
    broken = code + "def add(:\n"
    assert checks.features(broken, listing).score == pytest.approx(4 / 5)  # regex fallback
    assert checks.features(code, {"not input": checks.not_(checks.calls("input"))}).passed
    assert checks.features(None, listing).diagnosis == checks.NO_CODE
    with pytest.raises(ValueError):
        checks.features(code, {})


def test_combine_weights_and_explain() -> None:
    ok = checks.CheckResult("syntax", 1, True)
    half = checks.CheckResult("features", 0.5, False, "5/10")
    none = checks.CheckResult("functional", 0, False, "x", checks.TIMED_OUT)
    score = checks.combine([ok, half, none])
    assert score.total == 40 and score.diagnoses == (checks.TIMED_OUT,)
    assert "features: 50% × weight 40" in score.explain()
    assert checks.combine({"a": ok, "b": none}).total == 50  # equal weights otherwise
    with pytest.raises(ValueError, match="no weight"):
        checks.combine({"a": ok}, weights={"b": 1})
    restored = checks.Score.from_dict(score.to_dict())
    assert restored == score


COMPOSE = """Intro
```yaml
services:
  api:
    image: myapp/api
  redis:
    image: redis:7
```
"""


def test_rubric_checks() -> None:
    assert checks.compose_lacks_service(COMPOSE, "postgres").passed
    with_db = COMPOSE.replace("  redis:\n    image: redis:7", "  db:\n    image: postgres:16")
    failed = checks.compose_lacks_service(with_db, "postgres")
    assert not failed.passed and "db" in failed.details
    assert checks.compose_lacks_service("no yaml here").diagnosis == checks.NO_CODE
    assert checks.compose_has_service(COMPOSE, "redis").passed
    assert not checks.yaml_parses("```yaml\na: [\n```").passed
    sql = "```sql\nCREATE TABLE tenants (id SERIAL, db_host TEXT, db_name TEXT);\n```"
    assert checks.sql_create_table(sql, "tenants", ["db_host", "db_name"]).passed
    partial = checks.sql_create_table(sql, "tenants", ["db_host", "db_port"])
    assert partial.score == pytest.approx(2 / 3) and "db_port" in partial.details
    assert checks.sql_create_table(sql, "users").score == 0
    found = checks.phrases(
        "JWT refresh token", required=["refresh token", re.compile("oauth")], forbidden=["TODO"]
    )
    # one of two required found: the absent forbidden pattern earns half its point
    assert found.score == pytest.approx(1.5 / 3) and "oauth" in found.details
    doc = "# Spec\n## Schema\n```sql\nx\n```\n## Auth\n- bullet only\n"
    sections = checks.sections_with_code(doc, ["Schema", "Auth", "Celery"])
    assert sections.score == pytest.approx(1 / 3)
    assert "Celery" in sections.details and "Auth" in sections.details
    snippets = checks.python_snippets_parse("```python\nx = 1\n```\n```python\ndef (:\n```")
    assert snippets.score == 0.5


def test_judge_verdict_parsing() -> None:
    good = '```json\n{"criteria": {"a": {"pass": true, "reason": "ok"}, "b": {"pass": false}}}\n```'
    assert parse_verdict(good, ["a", "b"]) == {"a": (True, "ok"), "b": (False, "")}
    for bad in ["no json", '{"criteria": {"a": {"pass": "yes"}}}', '{"verdict": 1}', "{"]:
        with pytest.raises(ValueError):
            parse_verdict(bad, ["a"])


def test_a_predicate_that_raises_is_a_broken_check_not_a_missing_feature() -> None:
    def broken(code: str) -> bool:
        return code.nonexistent()  # type: ignore[attr-defined, no-any-return]

    with pytest.raises(checks.CheckError) as info:
        checks.features("import os\n", {"uses os": checks.imports("os"), "custom": broken})
    message = str(info.value)
    assert message.startswith("features: predicate 'custom' raised AttributeError")
    assert "fix it (the answer was not scored)" in message


def test_a_stdout_callable_that_raises_is_a_broken_check() -> None:
    step = checks.Step(["x"], stdout=lambda out: out.splitlines()[5] == "x", name="list")
    with pytest.raises(checks.CheckError, match="run_program: the stdout check of step 'list'"):
        checks.run_program("print('one line')\n", [step])
