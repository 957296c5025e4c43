"""The mutation corpus (tests/checks/corpus): every good answer keeps its score and every
mutant is caught by the check that names its behaviour; README states the kill rate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import mutants

ROOT = Path(__file__).resolve().parents[2]
CASES = mutants.load()


_VERDICTS: dict[str, mutants.Verdict] = {}


def verdict(case: mutants.Case) -> mutants.Verdict:
    """Each case judged once per session (the README test reads them all)."""
    if case.name not in _VERDICTS:
        _VERDICTS[case.name] = mutants.judge(case)
    return _VERDICTS[case.name]


def test_the_corpus_covers_every_benchmark_and_check() -> None:
    benchmarks = {c.benchmark for c in CASES}
    assert {"todo", "saas", "humaneval"} <= benchmarks
    generic = {b.split("/", 1)[1] for b in benchmarks if b.startswith("checks/")}
    assert generic == {
        "extract_code",
        "python_syntax",
        "features",
        "run_program",
        "phrases",
        "compose_has_service",
        "compose_lacks_service",
        "sql_create_table",
        "sections_with_code",
    }
    for name in benchmarks:
        kinds = {c.good for c in CASES if c.benchmark == name}
        assert kinds == {True, False}, f"{name} needs good answers and mutants"


@pytest.mark.parametrize("case", [c for c in CASES if c.good], ids=lambda c: c.name)
def test_a_good_answer_keeps_its_score(case: mutants.Case) -> None:
    result = verdict(case)
    assert result.held, f"{result.why}\n{result.score.explain()}"


@pytest.mark.parametrize("case", [c for c in CASES if not c.good], ids=lambda c: c.name)
def test_a_mutant_loses_points_on_the_check_that_names_its_behaviour(case: mutants.Case) -> None:
    result = verdict(case)
    assert result.held, f"{case.breaks}: {result.why}\n{result.score.explain()}"
    assert result.score.total < 100


def test_readme_states_the_kill_rate_the_command_prints() -> None:
    table = mutants.table(mutants.rates([verdict(c) for c in CASES]))
    readme = (ROOT / "README.md").read_text()
    assert table in readme, "run python -m benchmarks.mutants and paste its table into README"


def test_the_command_fails_when_a_mutant_survives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "phrases"
    (folder / "good").mkdir(parents=True)
    (folder / "mutants").mkdir()
    (folder / "good" / "a.md").write_text("We keep a connection pool.\n")
    (folder / "mutants" / "b.md").write_text("We keep a connection pool, as always.\n")
    (folder / "manifest.yaml").write_text(
        "scorer: check\ncheck: phrases\ninput: answer\nargs: {required: [connection pool]}\n"
        "good: [{file: good/a.md, total: 100}]\n"
        "mutants: [{file: mutants/b.md, breaks: no pool, check: phrases, detail: missing}]\n"
    )
    assert mutants.main(["--corpus", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "| `phrases` | 0/1 | 0.0 % | 1/1 |" in out
    assert "mutant survived: phrases/mutants/b.md (no pool): phrases kept full marks" in out


def test_a_manifest_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.yaml").write_text("scorer: todo\ngood: [{file: good/none.py}]\n")
    with pytest.raises(FileNotFoundError, match=r"good/none\.py does not exist"):
        mutants.load(tmp_path)


def test_the_command_reads_the_corpus_as_data_and_never_imports_tests() -> None:
    code = "import sys, benchmarks.mutants as m; print(sorted(n for n in sys.modules if n.split('.')[0] == 'tests'))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
