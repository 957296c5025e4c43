"""The todo-app benchmark of the brief as reusable pieces: 10 features, 7 functional steps.

Completion is judged by what changed: after ``complete 1`` the line of task 1 (and the
section it is listed under) must differ from its line before, with ids, timestamps, spacing
and the title itself taken out, and task 2's must not; a done/✓ keyword alone proves
nothing, and a change must say done (a mark added or changed, a done word added or a not-done
word taken away): a priority raised instead is no completion. The features are searched in the
code with its comments taken out."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from pytest_llmbench.check_result import CheckResult
from pytest_llmbench.checks.features import any_of, calls, features, imports, main_block, regex
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


DONE, KEPT = "Buy groceries", "Walk the dog"  # task 1 gets completed, task 2 does not


def _shown(out: str, title: str, titles: Sequence[str]) -> str | None:
    """How ``out`` shows the task ``title``, with what every task shows alike taken out: its
    line without the title, digits (ids, timestamps) and spacing, and the nearest line above
    it that shows no task (its section: "Pending:" / "Completed:"). ``None`` when no line
    shows it."""
    lines = out.splitlines()
    low = [ln.lower() for ln in lines]
    at = next((i for i, ln in enumerate(low) if title.lower() in ln), None)
    if at is None:
        return None

    def bare(line: str) -> str:
        return " ".join(re.sub(r"\d+", "#", line.replace(title.lower(), "")).split())

    above = next((ln for ln in reversed(low[:at]) if not any(t.lower() in ln for t in titles)), "")
    return f"{bare(above)} / {bare(low[at])}"


#: Words a change of the line must add (or remove) to say "done"; a change of symbols ([x], ✓,
#: strike-through, a completion date) says it too. Any other change (a priority, a note) does not.
_DONE_WORDS = {"done", "complete", "completed", "finished", "closed", "resolved", "archived"}
_DONE_WORDS |= {"archive", "yes", "true", "x", "y"}
_UNDONE_WORDS = {"not", "pending", "todo", "open", "incomplete", "undone", "no", "false", "active"}
_UNDONE_WORDS |= {"n", "waiting", "due"}


def _says_done(was: str, now: str) -> bool:
    """The change from ``was`` to ``now`` (lines bared by :func:`_shown`) adds a done word or
    a symbol, or takes away a not-done word."""
    tokens = re.compile(r"\w+|[^\w\s]+")
    before, after = Counter(tokens.findall(was)), Counter(tokens.findall(now))
    changed = list((after - before) + (before - after))
    return (
        any(not t[0].isalnum() and t != "#" for t in changed)
        or bool(set(after - before) & _DONE_WORDS)
        or bool(set(before - after) & _UNDONE_WORDS)
    )


def _completion_shown(out: str, earlier: Sequence[str]) -> str | None:
    """``complete 1`` changed how task 1 is shown and left task 2 as it was: judged by what
    changed against the first listing of both, never by a keyword on the line."""
    titles = (DONE, KEPT)
    before = next((o for o in earlier if all(t.lower() in o.lower() for t in titles)), None)
    if before is None:
        return "no earlier listing shows both tasks to compare with"
    was, now = _shown(before, DONE, titles), _shown(out, DONE, titles)
    if now is None:
        return f"{DONE!r} is no longer listed after complete 1 (a completed task must show)"
    if now == was:
        line = next(ln for ln in out.splitlines() if DONE.lower() in ln.lower())
        return f"complete 1 changed nothing on the {DONE!r} line: {line.strip()!r}"
    if _shown(out, KEPT, titles) != _shown(before, KEPT, titles):
        return f"complete 1 also changed how {KEPT!r} (task 2, not completed) is shown"
    if not _says_done(was or "", now):
        line = next(ln for ln in out.splitlines() if DONE.lower() in ln.lower())
        return (
            f"complete 1 changed the {DONE!r} line, but not to anything that says done (no "
            f"done word or mark added, no not-done word taken away): {line.strip()!r}"
        )
    return None


TODO_STEPS = (
    Step(["add", "Buy groceries"], name='add "Buy groceries"'),
    Step(["add", "Walk the dog"], name='add "Walk the dog"'),
    _listed("Buy groceries", "Walk the dog"),
    Step(["complete", "1"], name="complete 1"),
    Step(["list"], compare=_completion_shown, name="list shows 1 completed"),
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
