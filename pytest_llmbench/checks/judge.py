"""An optional judge: a second model grades an answer against a rubric, as strict JSON.

The verdict is validated; a reply that is not valid JSON of the right shape is retried a bounded
number of times and then raised as :class:`JudgeError` — never turned into a score of 0 or 1,
and never silently handed to another model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pytest_llmbench.checks.result import CheckResult
from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.text_safety import for_cell

if TYPE_CHECKING:
    from pytest_llmbench.llm import LLM

JUDGE_PROMPT = """You are a strict grader. Grade the ANSWER to the TASK against each criterion.
Reply with ONLY a JSON object, no prose, no code fence, exactly of this shape:
{{"criteria": {{"<criterion id>": {{"pass": true or false, "reason": "<one sentence>"}}, ...}}}}
Use exactly these criterion ids: {ids}.

TASK:
{task}

CRITERIA:
{criteria}

ANSWER:
{answer}
"""

_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


class JudgeError(LLMBenchError):
    """The judge model did not return a valid verdict within the allowed attempts."""


def parse_verdict(text: str, ids: list[str]) -> dict[str, tuple[bool, str]]:
    """Validate a judge reply; raises ``ValueError`` saying what is wrong with it."""
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the reply")
    data = json.loads(body[start : end + 1])
    criteria = data.get("criteria") if isinstance(data, dict) else None
    if not isinstance(criteria, dict):
        raise ValueError('the JSON has no "criteria" object')
    verdict: dict[str, tuple[bool, str]] = {}
    for cid in ids:
        entry = criteria.get(cid)
        if not isinstance(entry, dict) or not isinstance(entry.get("pass"), bool):
            raise ValueError(f'criterion {cid!r} is missing or has no boolean "pass"')
        verdict[cid] = (entry["pass"], for_cell(str(entry.get("reason", ""))))
    return verdict


def judge(
    judge_llm: LLM,
    task: str,
    answer: str,
    rubric: Mapping[str, str],
    *,
    attempts: int = 3,
    max_tokens: int = 1024,
    name: str = "judge",
) -> CheckResult:
    """Ask ``judge_llm`` to grade ``answer``; score = fraction of criteria passed.

    ``rubric`` maps a short criterion id to its description. Raises :class:`JudgeError` when
    no valid verdict came back in ``attempts`` tries.
    """
    ids = list(rubric)
    prompt = JUDGE_PROMPT.format(
        ids=", ".join(ids),
        task=task,
        criteria="\n".join(f"- {cid}: {text}" for cid, text in rubric.items()),
        answer=answer,
    )
    problems: list[str] = []
    for _attempt in range(attempts):
        reply = judge_llm.generate(prompt, max_tokens=max_tokens, temperature=0.0)
        try:
            verdict = parse_verdict(reply.answer, ids)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            problems.append(f"{exc}: {reply.answer[:120]!r}")
            continue
        passed = [cid for cid, (ok, _) in verdict.items() if ok]
        details = "; ".join(
            f"{cid}: {'pass' if ok else 'FAIL'} ({why})" for cid, (ok, why) in verdict.items()
        )
        return CheckResult(
            name=name,
            score=len(passed) / len(ids) if ids else 1.0,
            passed=len(passed) == len(ids),
            details=f"judged by {judge_llm.model}: {details}",
        )
    raise JudgeError(
        f"judge {judge_llm.model} gave no valid JSON verdict in {attempts} attempt(s): "
        + " | ".join(problems)
        + ". Use a stronger judge model (--llm-judge) or fix the rubric."
    )


def verdict_json(passes: Mapping[str, bool]) -> str:
    """A valid verdict, as a judge should write it (handy for scripted tests)."""
    return json.dumps({"criteria": {k: {"pass": v, "reason": "ok"} for k, v in passes.items()}})


__all__ = ["JudgeError", "judge", "parse_verdict", "verdict_json"]
