"""Named checks with weights -> one total out of 100, with the diagnoses collected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pytest_llmbench.check_result import CheckResult, Score

__all__ = ["DEFAULT_CODE_WEIGHTS", "combine"]

#: The weights implied by the published todo-app scores (BRIEF.md): 20 / 40 / 40.
DEFAULT_CODE_WEIGHTS = {"syntax": 20.0, "features": 40.0, "functional": 40.0}


def combine(
    checks: Mapping[str, CheckResult] | Sequence[CheckResult],
    weights: Mapping[str, float] | None = None,
) -> Score:
    """Weighted mean × 100. Mapping keys name the checks; without ``weights``, the default
    code weights apply when every name is syntax/features/functional, else equal weights."""
    if isinstance(checks, Mapping):
        named = [
            c if c.name == key else CheckResult(key, c.score, c.passed, c.details, c.diagnosis)
            for key, c in checks.items()
        ]
    else:
        named = list(checks)
    if not named:
        raise ValueError("score needs at least one check")
    names = [c.name for c in named]
    if len(set(names)) != len(names):
        raise ValueError(f"two checks share a name: {names}")
    if weights is None:
        weights = (
            DEFAULT_CODE_WEIGHTS
            if set(names) <= set(DEFAULT_CODE_WEIGHTS)
            else dict.fromkeys(names, 1.0)
        )
    missing = [n for n in names if n not in weights]
    if missing:
        raise ValueError(f"no weight for check(s) {missing}; weights given: {dict(weights)}")
    used = {n: float(weights[n]) for n in names}
    total_weight = sum(used.values())
    if total_weight <= 0:
        raise ValueError("the weights add up to zero")
    total = 100 * sum(used[c.name] * min(max(c.score, 0.0), 1.0) for c in named) / total_weight
    found = [c.diagnosis for c in named if c.diagnosis]
    return Score(round(total, 6), tuple(named), used, tuple(dict.fromkeys(found)))
