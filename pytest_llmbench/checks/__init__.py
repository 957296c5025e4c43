"""Validators: plain functions returning a named :class:`CheckResult` (score in 0..1)."""

from pytest_llmbench.answer_text import (
    extract_blocks,
    extract_code,
    split_thinking,
    strip_thinking,
)
from pytest_llmbench.check_result import (
    INTERACTIVE,
    NO_CODE,
    TIMED_OUT,
    TRUNCATED,
    CheckResult,
    Score,
)
from pytest_llmbench.checks.features import (
    all_of,
    any_of,
    calls,
    defines,
    features,
    imports,
    main_block,
    not_,
    regex,
)
from pytest_llmbench.checks.judge import JudgeError, judge
from pytest_llmbench.checks.rubric import (
    compose_has_service,
    compose_lacks_service,
    phrases,
    python_snippets_parse,
    sections_with_code,
    sql_create_table,
    yaml_parses,
)
from pytest_llmbench.checks.syntax import python_syntax
from pytest_llmbench.errors import CheckError
from pytest_llmbench.sandbox import Step, run_program
from pytest_llmbench.scoring import DEFAULT_CODE_WEIGHTS, combine

__all__ = [
    "DEFAULT_CODE_WEIGHTS",
    "INTERACTIVE",
    "NO_CODE",
    "TIMED_OUT",
    "TRUNCATED",
    "CheckError",
    "CheckResult",
    "JudgeError",
    "Score",
    "Step",
    "all_of",
    "any_of",
    "calls",
    "combine",
    "compose_has_service",
    "compose_lacks_service",
    "defines",
    "extract_blocks",
    "extract_code",
    "features",
    "imports",
    "judge",
    "main_block",
    "not_",
    "phrases",
    "python_snippets_parse",
    "python_syntax",
    "regex",
    "run_program",
    "sections_with_code",
    "split_thinking",
    "sql_create_table",
    "strip_thinking",
    "yaml_parses",
]
