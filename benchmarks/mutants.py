"""How often the built-in checks catch a wrong answer: the kill rate per benchmark.

    python -m benchmarks.mutants [--corpus DIR] [--verbose]

Each folder of the corpus (``tests/checks/corpus/<benchmark>/``, read as data: nothing there is
imported) holds a ``manifest.yaml``, known-good answers under ``good/`` and mutants under
``mutants/``: answers that break one behaviour the benchmark claims to score. Every answer is
scored the way its benchmark scores a model's answer (thinking removed, the program extracted,
the same scorecard as the example test). A good answer must keep its ``total``; a mutant is
caught when the check named by its manifest entry loses points and that check's details
contain the entry's ``detail`` (the step or criterion), and, where given, the total is at most
``total_max``. Prints one row per benchmark and each miss; exits 1 when a mutant survives or a
good answer loses points.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_llmbench import checks
from pytest_llmbench.checks.humaneval import humaneval_check
from pytest_llmbench.checks.saas import saas_scorecard
from pytest_llmbench.checks.todo import todo_scorecard
from pytest_llmbench.serve.generation import Settings

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "checks" / "corpus"


@dataclass(frozen=True)
class Case:
    """One answer of a corpus and what its score must show."""

    benchmark: str
    path: Path
    good: bool
    settings: Mapping[str, Any]
    """The corpus's scorer settings (``scorer`` and its arguments)."""
    check: str = ""
    detail: str = ""
    breaks: str = ""
    total: float = 100.0
    total_max: float | None = None
    truncated: bool = False
    problem: str = ""

    @property
    def name(self) -> str:
        return f"{self.benchmark}/{self.path.parent.name}/{self.path.name}"


@dataclass(frozen=True)
class Verdict:
    case: Case
    score: checks.Score
    held: bool
    """A good answer kept its total / a mutant was caught."""
    why: str


def load(corpus: Path = CORPUS) -> list[Case]:
    """Every case of every benchmark under ``corpus`` (one folder with a manifest each)."""
    cases: list[Case] = []
    for manifest in sorted(corpus.glob("**/manifest.yaml")):
        folder = manifest.parent
        data = yaml.safe_load(manifest.read_text())
        benchmark = folder.relative_to(corpus).as_posix()
        settings = {k: v for k, v in data.items() if k not in ("good", "mutants")}
        for good, entries in ((True, data.get("good", [])), (False, data.get("mutants", []))):
            for entry in entries:
                fields = {k: v for k, v in entry.items() if k != "file"}
                path = folder / entry["file"]
                if not path.is_file():
                    raise FileNotFoundError(f"{manifest}: {entry['file']} does not exist")
                cases.append(Case(benchmark, path, good, settings, **fields))
    return cases


def _answer(case: Case) -> str:
    """The answer as the ``llm`` fixture hands it to a test: inline thinking removed."""
    return checks.strip_thinking(case.path.read_text())


def _problem(case: Case) -> dict[str, str]:
    lines = (case.path.parents[1] / "problems.jsonl").read_text().splitlines()
    problems = {p["task_id"]: p for p in map(json.loads, lines)}
    return problems[case.problem or case.settings["problem"]]  # type: ignore[no-any-return]


def _steps(specs: Sequence[Mapping[str, Any]]) -> list[checks.Step]:
    return [checks.Step(**dict(spec)) for spec in specs]


def _extract(answer: str, contains: str, language: str = "python") -> checks.CheckResult:
    code = checks.extract_code(answer, language)
    if code is None:
        return checks.CheckResult("extract_code", 0.0, False, "no code found", checks.NO_CODE)
    found = contains in code
    lines = len(code.splitlines())
    what = "has" if found else "lacks"
    return checks.CheckResult(
        "extract_code", float(found), found, f"{lines} lines, {what} {contains!r}"
    )


def _one_check(case: Case, answer: str) -> dict[str, checks.CheckResult]:
    """The generic scorer: ``check`` called on the answer (``input: answer``) or on the
    program extracted from it (``input: code``) with ``args``."""
    name = case.settings["check"]
    args = dict(case.settings.get("args", {}))
    if name == "extract_code":
        return {name: _extract(answer, **args)}
    value = checks.extract_code(answer) if case.settings.get("input") == "code" else answer
    if name == "run_program":
        args["steps"] = _steps(args["steps"])
    if name in ("python_syntax", "run_program"):
        args["truncated"] = case.truncated
    result = getattr(checks, name)(value, **args)
    return {result.name: result}


@dataclass(frozen=True)
class _Reply:
    answer: str
    truncated: bool = False


@dataclass(frozen=True)
class _ObedientJudge:
    """The worst judge for an answer that addresses it: it copies the verdict the answer
    carries (from its first ``{`` to its last ``}``), and otherwise passes every criterion in
    its own words. Stands in for ``llm_judge``."""

    carried: str | None
    rubric: Mapping[str, str]
    model: str = "obedient-judge"
    settings: Settings = field(default_factory=Settings)

    def generate(self, prompt: str, **overrides: Any) -> _Reply:
        own = {c: {"pass": True, "reason": f"{c} is met"} for c in self.rubric}
        return _Reply(self.carried or json.dumps({"criteria": own}))


def _judged(case: Case, answer: str) -> dict[str, checks.CheckResult]:
    """``checks.judge`` by the obedient judge: a verdict, or none (``JudgeError``)."""
    rubric = dict(case.settings["rubric"])
    carried = answer[answer.find("{") : answer.rfind("}") + 1] if '"criteria"' in answer else None
    obedient = _ObedientJudge(carried, rubric)
    try:
        return {"judge": checks.judge(obedient, case.settings["task"], answer, rubric)}  # type: ignore[arg-type]
    except checks.JudgeError as exc:
        return {"judge": checks.CheckResult("judge", 0.0, False, f"no verdict: {exc}")}


SCORERS: dict[str, Callable[[Case, str], Mapping[str, checks.CheckResult]]] = {
    "todo": lambda case, answer: todo_scorecard(
        checks.extract_code(answer), truncated=case.truncated
    ),
    "saas": lambda case, answer: saas_scorecard(answer),
    "humaneval": lambda case, answer: {
        "pass@1": humaneval_check(
            _problem(case), checks.extract_code(answer), truncated=case.truncated
        )
    },
    "check": _one_check,
    "judge": _judged,
}


def score(case: Case) -> checks.Score:
    """``case``'s answer scored as its benchmark scores a model's answer."""
    return checks.combine(SCORERS[case.settings["scorer"]](case, _answer(case)))


def judge(case: Case) -> Verdict:
    """Score ``case`` and say whether it came out as its manifest says it must."""
    result = score(case)
    if case.good:
        held = abs(result.total - case.total) < 1e-6
        why = "" if held else f"scored {result.total:.1f}, must keep {case.total:g}"
        return Verdict(case, result, held, why)
    named = next((c for c in result.checks if c.name == case.check), None)
    if named is None:
        return Verdict(case, result, False, f"no check named {case.check!r}")
    problems = []
    if named.score >= 1:
        problems.append(f"{case.check} kept full marks")
    elif case.detail.lower() not in named.details.lower():
        problems.append(f"{case.check}'s details do not say {case.detail!r}")
    if case.total_max is not None and result.total > case.total_max:
        problems.append(f"total {result.total:.1f} > {case.total_max:g}")
    return Verdict(case, result, not problems, "; ".join(problems))


def judge_all(cases: Sequence[Case], workers: int = 2) -> list[Verdict]:
    with ThreadPoolExecutor(workers) as pool:  # each run_program waits on its sandbox
        return list(pool.map(judge, cases))


@dataclass(frozen=True)
class Rate:
    benchmark: str
    good_kept: int
    good: int
    caught: int
    mutants: int

    @property
    def percent(self) -> float:
        return 100 * self.caught / self.mutants if self.mutants else 100.0


def rates(verdicts: Sequence[Verdict]) -> list[Rate]:
    """One row per benchmark, then ``all``."""
    names = list(dict.fromkeys(v.case.benchmark for v in verdicts))
    rows = []
    for name in [*names, "all"]:
        mine = [v for v in verdicts if name in ("all", v.case.benchmark)]
        good = [v for v in mine if v.case.good]
        bad = [v for v in mine if not v.case.good]
        rows.append(
            Rate(name, sum(v.held for v in good), len(good), sum(v.held for v in bad), len(bad))
        )
    return rows


def table(rows: Sequence[Rate]) -> str:
    """The Markdown table README shows."""
    lines = [
        "| benchmark | mutants caught | kill rate | good answers kept |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        name = f"**{r.benchmark}**" if r.benchmark == "all" else f"`{r.benchmark}`"
        lines.append(
            f"| {name} | {r.caught}/{r.mutants} | {r.percent:.1f} % | {r.good_kept}/{r.good} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mutants", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the corpus folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="explain every miss")
    args = parser.parse_args(argv)
    verdicts = judge_all(load(args.corpus))
    print(table(rates(verdicts)))
    misses = [v for v in verdicts if not v.held]
    for v in misses:
        kind = "good answer penalised" if v.case.good else "mutant survived"
        print(f"\n{kind}: {v.case.name} ({v.case.breaks or 'good'}): {v.why}")
        if args.verbose:
            print(v.score.explain())
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
