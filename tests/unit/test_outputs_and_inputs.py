"""Files written whole or not at all, links refused, baseline numbers race-free; baselines and
recordings checked where they are read; outside text made safe to show."""

from __future__ import annotations

import errno
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llmbench import output_files
from pytest_llmbench.generate.replay import (
    FORMAT_VERSION,
    MANIFEST,
    Recorder,
    RecordingError,
    RecordingInvalid,
    Replayer,
    recording_info,
)
from pytest_llmbench.output_files import (
    OutputError,
    problem_with_dir,
    problem_with_file,
    write_atomic,
)
from pytest_llmbench.text_safety import for_cell, for_markdown, for_terminal
from pytest_llmbench.verdict.baselines import Store, StoreError, check_name, saved_items
from pytest_llmbench.verdict.comparison import missing_items

# --- writing ---------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_and_no_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "base.json"
    target.write_text("old")

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(output_files.os, "fsync", disk_full)
    with pytest.raises(OutputError, match=r"cannot write .*base\.json: No space left on device"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["base.json"]  # no temp file, no 0-byte file
    with pytest.raises(OutputError):
        write_atomic(tmp_path / "new.json", "x")
    assert not (tmp_path / "new.json").exists()


def test_write_refuses_a_symbolic_link_and_leaves_its_target(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (tmp_path / "out.json").symlink_to(outside)
    with pytest.raises(OutputError, match="symbolic link"):
        write_atomic(tmp_path / "out.json", "evil")
    assert outside.read_text() == "precious"


def test_write_makes_parents_and_readable_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "r.json"
    write_atomic(target, "{}")
    assert target.read_text() == "{}"
    assert target.stat().st_mode & 0o044  # not mkstemp's private 0600


@pytest.mark.parametrize(
    ("make", "relative", "problem"),
    [
        (lambda p: p.mkdir(), "x", "is a directory"),
        (lambda p: p.write_text(""), "x/under.md", "is a file, not a directory"),
        (lambda p: p.write_text(""), "x/deeper/under.md", "is a file, not a directory"),
        (lambda p: p.symlink_to(p.parent), "x", "is a symbolic link"),
    ],
)
def test_problem_with_file(tmp_path: Path, make: Any, relative: str, problem: str) -> None:
    make(tmp_path / "x")
    assert problem in (problem_with_file(tmp_path / relative) or "")


def test_problem_with_paths_the_system_refuses(tmp_path: Path) -> None:
    assert "cannot create files in '/proc'" in (problem_with_file(Path("/proc/x.md")) or "")
    assert problem_with_file(Path("/dev/null")) == "is not a regular file"
    (tmp_path / "f").write_text("")
    assert problem_with_dir(tmp_path / "f") == "is a file, not a directory"
    assert problem_with_dir(tmp_path / "new" / "dir") is None
    assert problem_with_file(tmp_path / "new" / "r.json") is None
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # the probe file is gone


def test_two_runs_saving_one_name_at_once_get_distinct_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = Store.runs

    def slow_runs(self: Store) -> list[Path]:
        found = listed(self)
        time.sleep(0.2)  # widen the gap between choosing a number and writing it
        return found

    monkeypatch.setattr(Store, "runs", slow_runs)
    store = Store(tmp_path / ".llmbench")
    saved: list[Path] = []
    threads = [
        threading.Thread(target=lambda n=n: saved.append(store.save("main", {"n": n}).history))
        for n in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p.name for p in saved) == ["0001_main.json", "0002_main.json"]
    assert sorted(json.loads(p.read_text())["n"] for p in saved) == [0, 1]
    assert not list((tmp_path / ".llmbench").rglob("*.lock"))  # nothing a user would commit


@pytest.mark.parametrize("name", ["bad name", "../up", "a/b", "..", ""])
def test_baseline_names_that_cannot_be_file_names(name: str) -> None:
    with pytest.raises(StoreError, match="use letters, digits"):
        check_name(name)


# --- baselines read back ---------------------------------------------------------------------

GOOD_ITEM = {"model": "m", "test": "t", "outcome": "passed", "record": {"scores": {"score": 1}}}


def baseline(**changes: Any) -> dict[str, Any]:
    return {"schema": "pytest-llmbench/results", "version": 1, "items": [GOOD_ITEM], **changes}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "the file is empty"),
        ('{"schema": "pytest-llmbench/results", "ver', "not valid JSON (Unterminated string"),
        (json.dumps(baseline(version=2)), "version: expected 1 (this plugin's results version)"),
        (
            json.dumps(baseline(version="1")),
            'version: expected 1 (this plugin\'s results version), got "1"',
        ),
        (json.dumps(baseline(items="x")), 'document.items: expected a list, got "x"'),
        (json.dumps(baseline(items=["x"])), 'items[0]: expected an object, got "x"'),
        (json.dumps(baseline(items=[{"test": "t"}])), "items[0].model: missing"),
        (
            json.dumps(baseline(items=[{**GOOD_ITEM, "record": {"scores": {"score": "high"}}}])),
            'items[0].record.scores.score: expected a number or null, got "high"',
        ),
        (
            json.dumps(
                baseline(
                    items=[{**GOOD_ITEM, "record": {"generations": [{"metrics": {"ttft_s": []}}]}}]
                )
            ),
            "items[0].record.generations[0].metrics.ttft_s: expected a number or null, got []",
        ),
        (
            json.dumps({"schema": "other"}),
            "schema: expected 'pytest-llmbench/results', got \"other\"",
        ),
    ],
)
def test_a_bad_baseline_is_named_with_its_field(tmp_path: Path, content: str, message: str) -> None:
    store = Store(tmp_path)
    (tmp_path / "0001_base.json").write_text(content)
    with pytest.raises(StoreError) as raised:
        store.load("base")
    assert f"saved run {tmp_path / '0001_base.json'} is not a usable baseline: {message}" in str(
        raised.value
    )


def test_baseline_items_missing_from_this_run() -> None:
    base = {
        "items": [
            {"model": "m", "test": "a", "nodeid": "t.py::a[m]", "record": {"scores": {"score": 1}}},
            {"model": "m", "test": "b", "nodeid": "t.py::b[m]", "record": {"scores": {"score": 1}}},
            {"model": "m", "test": "c", "nodeid": "t.py::c[m]", "record": {"scores": {"score": 1}}},
        ]
    }
    current = {
        "items": [
            {"model": "m", "test": "a", "outcome": "passed", "record": {"scores": {"score": 2}}},
            {"model": "m", "test": "b", "outcome": "skipped", "record": {}},
        ]
    }
    assert missing_items(saved_items(base), saved_items(current)) == {
        "m :: b": ["t.py::b[m]"],
        "m :: c": ["t.py::c[m]"],
    }


# --- recordings --------------------------------------------------------------------------------

GENERATION = {
    "model": "m",
    "text": "hi",
    "answer": "hi",
    "thinking": "",
    "finish_reason": "stop",
    "metrics": {"ttft_s": 0.1},
    "settings": {},
    "server": {"backend": "llama-server", "build": "b1-x"},
}
BODY = {"messages": [{"role": "user", "content": "hi"}]}


def test_recorder_refuses_a_planted_link(tmp_path: Path) -> None:
    first = Recorder(tmp_path / "a").save("m", BODY, GENERATION, None)
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / first.name).symlink_to(outside)
    with pytest.raises(RecordingError, match="symbolic link"):
        Recorder(tmp_path / "b").save("m", BODY, GENERATION, None)
    assert outside.read_text() == "precious"


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda d: "", "the file is empty"),
        (lambda d: json.dumps(d)[:40], "not valid JSON"),
        (lambda d: json.dumps({**d, "version": 99}), "recording.version: expected 1"),
        (
            lambda d: json.dumps({k: v for k, v in d.items() if k != "generation"}),
            "recording.generation: missing",
        ),
        (
            lambda d: json.dumps({**d, "generation": "x"}),
            'recording.generation: expected an object, got "x"',
        ),
        (
            lambda d: json.dumps({**d, "generation": {**GENERATION, "text": 5}}),
            "generation.text: expected a string, got 5",
        ),
        (
            lambda d: json.dumps(
                {**d, "generation": {**GENERATION, "metrics": {"ttft_s": "slow"}}}
            ),
            'generation.metrics.ttft_s: expected a number or null, got "slow"',
        ),
    ],
)
def test_a_bad_recording_is_an_item_error_naming_file_and_field(
    tmp_path: Path, mangle: Any, message: str
) -> None:
    path = Recorder(tmp_path).save("m", BODY, GENERATION, None)
    path.write_text(mangle(json.loads(path.read_text())))
    with pytest.raises(RecordingInvalid) as raised:
        Replayer(tmp_path).lookup("m", BODY)
    assert f"m: recording {path} cannot be replayed: {message}" in str(raised.value)


def test_recordings_say_where_and_when_they_were_made(tmp_path: Path) -> None:
    Recorder(tmp_path).save("m", BODY, GENERATION, None)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["version"] == FORMAT_VERSION and manifest["hardware"]["cores"]
    info = recording_info(tmp_path)
    assert info.host == manifest["host"] and info.servers == ("llama-server b1-x",)
    assert info.label() == (
        f"replayed from {tmp_path} (recorded {manifest['recorded']} on {manifest['host']}, "
        f"server llama-server b1-x)"
    )
    assert Replayer(tmp_path).lookup("m", BODY).answer == "hi"


# --- text from outside -------------------------------------------------------------------------


def test_escape_sequences_are_shown_not_obeyed() -> None:
    hostile = "ok\x1b]0;pwned\x07 \x1b[2J \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ \r\x9b\u202e"
    shown = for_terminal(hostile + "\nline 2\tend")
    assert "\x1b" not in shown and "\x07" not in shown and "\x9b" not in shown
    assert shown == (
        "ok\\x1b]0;pwned\\x07 \\x1b[2J \\x1b]8;;http://evil\\x1b\\link\\x1b]8;;\\x1b\\ "
        "\\r\\x9b\\u202e\nline 2\tend"
    )
    assert for_cell("a\nb\tc\x1b") == "a\\nb\\tc\\x1b"
    assert for_terminal("plain ünïcode ✓") == "plain ünïcode ✓"


def test_markdown_cells_cannot_break_the_table_or_inject_html() -> None:
    assert for_markdown("a|b <img src=x onerror=alert(1)> & \x1b[31m\nz") == (
        "a\\|b &lt;img src=x onerror=alert(1)&gt; &amp; \\x1b[31m\\nz"
    )
