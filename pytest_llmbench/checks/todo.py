"""The todo-app benchmark of the brief as reusable pieces: 10 features, 7 functional steps."""

from __future__ import annotations

import re

from pytest_llmbench.checks.features import any_of, calls, features, imports, main_block, regex
from pytest_llmbench.checks.result import CheckResult
from pytest_llmbench.checks.syntax import python_syntax
from pytest_llmbench.sandbox import Step, run_program

TODO_FEATURES = {
    "sqlite": imports("sqlite3"),
    "add": regex(r"""def\s+\w*add\w*|['"]add['"]"""),
    "list": regex(r"""def\s+\w*(list|show)\w*|['"](list|ls)['"]"""),
    "complete": regex(r"""def\s+\w*(complete|done|finish)\w*|['"](complete|done)['"]"""),
    "delete": regex(r"""def\s+\w*(delete|remove)\w*|['"](delete|remove|rm)['"]"""),
    "timestamps": regex(r"datetime|timestamp|time\.time\(|CURRENT_TIMESTAMP|created_at"),
    "completion tracking": regex(
        r"\b(completed|is_done|done|status|is_complete)\b\s*(INTEGER|BOOLEAN|BOOL|INT|=|\))"
    ),
    "error handling": any_of(
        regex(r"^\s*try\s*:"), regex(r"sys\.exit\(\s*[1-9]"), regex(r"parser\.error\(")
    ),
    "main block": main_block(),
    "pretty output": any_of(
        regex(r"\.ljust\(|\.rjust\(|:<\d|:>\d|:\^\d|tabulate|rich\.|\[x\]|\[ \]"),
        regex(r"✓|✔|✗|─|['\"]-{3,}|['\"]={3,}"),
        calls("tabulate"),
    ),
}


def _listed(*present: str, absent: tuple[str, ...] = ()) -> Step:
    def check(out: str) -> bool:
        low = out.lower()
        return all(p.lower() in low for p in present) and not any(a.lower() in low for a in absent)

    return Step(
        ["list"],
        stdout=check,
        name=f"list shows {', '.join(present)}"
        + (f" without {', '.join(absent)}" if absent else ""),
    )


def _completed_marked(out: str) -> bool:
    line = next((ln for ln in out.splitlines() if "buy groceries" in ln.lower()), "")
    return re.search(r"\[x\]|✓|✔|done|complete|yes|true|\b1\b", line, re.IGNORECASE) is not None


TODO_STEPS = (
    Step(["add", "Buy groceries"], name='add "Buy groceries"'),
    Step(["add", "Walk the dog"], name='add "Walk the dog"'),
    _listed("Buy groceries", "Walk the dog"),
    Step(["complete", "1"], name="complete 1"),
    Step(["list"], stdout=_completed_marked, name="list shows 1 completed"),
    Step(["delete", "2"], name="delete 2"),
    _listed("Buy groceries", absent=("Walk the dog",)),
)


def todo_scorecard(program: str | None, *, truncated: bool = False) -> dict[str, CheckResult]:
    """syntax, features and functional for ``program`` (weights 20 / 40 / 40 by default)."""
    return {
        "syntax": python_syntax(program, truncated=truncated),
        "features": features(program, TODO_FEATURES),
        "functional": run_program(program, TODO_STEPS, truncated=truncated),
    }
