"""Record a run against the llama-server fake, replay it offline: labelled as a replay, bad
recordings named as item errors, missing ones reported or filled in. (The real-server smoke
test is tests/real/test_real_record_replay.py.)"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from fakes import FakeLlamaServer, ModelScript
from tests.fixtures.fakes import StartLlamaServer

TESTS = """
import pytest

@pytest.mark.parametrize("prompt", ["Name a fruit.", "Name a river."])
@pytest.mark.llm(max_tokens=16)
def test_words(llm, prompt):
    answer = llm.generate(prompt)
    llm.record_score("score", 100.0 * ("a" in answer.answer.lower()))
    assert answer.metrics.output_tokens
"""


def document(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def items(path: Path) -> dict[str, dict[str, Any]]:
    return {i["nodeid"]: i for i in document(path)["items"]}


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> str:
    """Record the two items into ``rec``; returns the --llm-models option of that server."""
    pytester.makepyfile(test_rec=TESTS)
    # a with block, not the fixture: the tests replay with this server gone
    with FakeLlamaServer(ModelScript(["Ban", "ana"])) as srv:
        models = f"--llm-models=llama-server@{srv.url}"
        result = pytester.runpytest(models, "--llm-record=rec", "--llm-json=recorded.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*recorded 2 replies to rec*"])
    return models


def test_replay_reproduces_the_run_and_says_it_is_a_replay(
    pytester: pytest.Pytester, recorded: str
) -> None:
    rec = pytester.path / "rec"
    assert len(list(rec.glob("*-1.json"))) == 2
    events = json.loads(next(rec.glob("*-1.json")).read_text())["events"]
    assert events and all(t > 0 for t, _, _ in events)  # timing events kept
    # Make the recording machine recognisable, to show the JSON carries it, not this one.
    manifest = json.loads((rec / "recorded.json").read_text())
    manifest.update(host="recorder-host", hardware={"machine": "recorder-box", "cores": 64})
    (rec / "recorded.json").write_text(json.dumps(manifest))

    replayed = pytester.runpytest(recorded, "--llm-replay=rec", "--llm-json=replayed.json")
    replayed.assert_outcomes(passed=2)
    label = f"replayed from rec (recorded {manifest['recorded']} on recorder-host, server llama-server b7000-abc)"
    replayed.stdout.fnmatch_lines(
        [f"llmbench: {label}", "=* llmbench leaderboard — replayed from rec (*"]
    )
    title = next(line for line in replayed.outlines if "llmbench leaderboard" in line)
    assert len(title) <= 80  # fitted to the width, as every table
    a = items(pytester.path / "recorded.json")
    b = items(pytester.path / "replayed.json")
    assert a.keys() == b.keys()
    for nodeid in a:
        ra, rb = a[nodeid]["record"], b[nodeid]["record"]
        assert ra["scores"] == rb["scores"]
        assert [g["metrics"] for g in ra["generations"]] == [
            g["metrics"] for g in rb["generations"]
        ]
    live, replay = (
        document(pytester.path / "recorded.json"),
        document(pytester.path / "replayed.json"),
    )
    assert live["replayed"] is False and "replay" not in live
    assert live["environment"]["hardware"]["machine"] != "recorder-box"
    assert replay["replayed"] is True
    assert replay["environment"]["hardware"] == {"machine": "recorder-box", "cores": 64}
    assert replay["replay"] == {
        "dir": "rec",
        "recorded": manifest["recorded"],
        "host": "recorder-host",
        "servers": ["llama-server b7000-abc"],
    }
    assert replay["environment"]["models"] == live["environment"]["models"]  # recorded build
    assert socket.gethostname() not in json.dumps(replay["replay"])


def test_a_missing_recording_names_the_setting_that_changed(
    pytester: pytest.Pytester, recorded: str
) -> None:
    changed = pytester.runpytest(recorded, "--llm-replay=rec", "--llm-seed=7")
    changed.assert_outcomes(errors=2)
    changed.stdout.fnmatch_lines(
        [
            "*RecordingMissing: llama-server@http*: no recording for this prompt and settings in rec "
            "(*); against the nearest recording (*.json): seed 42 → 7. Re-record*"
        ]
    )


def test_a_changed_prompt_has_no_recording_or_is_filled_in_when_asked(
    pytester: pytest.Pytester, recorded: str, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_rec=TESTS.replace("Name a fruit.", "Name a vegetable."))
    changed = pytester.runpytest(recorded, "--llm-replay=rec")
    changed.assert_outcomes(passed=1, errors=1)
    changed.stdout.fnmatch_lines(
        [
            "*RecordingMissing: llama-server@http*: no recording*; against the "
            "nearest recording (*.json): the prompt differs. Re-record*"
        ]
    )
    (pytester.path / "rec" / "recorded.json").unlink()  # recordings of unknown origin
    srv = fake_llama_server(ModelScript(["Car", "rot"]))
    filled = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}", "--llm-replay=rec", "--llm-replay-missing=record"
    )
    # The fake's URL differs from the recording's, so both items are new recordings here.
    filled.assert_outcomes(passed=2)
    filled.stdout.fnmatch_lines(["*generating it live*", "*recorded 2 replies to rec*"])
    assert not (pytester.path / "rec" / "recorded.json").exists()  # not claimed as this run's


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda text: "", "the file is empty"),
        (lambda text: text[: len(text) // 2], "not valid JSON*"),
        (
            lambda text: text.replace('"version": 1', '"version": 2'),
            "recording.version: expected 1*",
        ),
        (
            lambda text: json.dumps(
                {k: v for k, v in json.loads(text).items() if k != "generation"}
            ),
            "recording.generation: missing*",
        ),
    ],
)
def test_a_bad_recording_is_an_item_error_naming_the_file(
    pytester: pytest.Pytester, recorded: str, mangle: Any, message: str
) -> None:
    for path in (pytester.path / "rec").glob("*-1.json"):
        path.write_text(mangle(path.read_text()))
    result = pytester.runpytest(recorded, "--llm-replay=rec")
    result.assert_outcomes(errors=2)  # not failures: the model did nothing wrong
    result.stdout.fnmatch_lines(
        [
            f"*RecordingInvalid: llama-server@http*: recording rec/*-1.json cannot be replayed: {message}*"
        ]
    )
    assert "Traceback" not in result.stdout.str() and "KeyError" not in result.stdout.str()


def test_a_planted_link_in_the_recording_folder_is_refused(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_rec=TESTS)
    outside = pytester.path / "outside.txt"
    outside.write_text("precious")
    srv = fake_llama_server(ModelScript(["Ban", "ana"]))
    models = f"--llm-models=llama-server@{srv.url}"
    pytester.runpytest(models, "--llm-record=rec").assert_outcomes(passed=2)
    planted = pytester.mkdir("planted")
    for path in (pytester.path / "rec").glob("*-1.json"):
        (planted / path.name).symlink_to(outside)
    result = pytester.runpytest(models, "--llm-record=planted")
    assert outside.read_text() == "precious"
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*RecordingError: llama-server@http*: recording not written: planted/*-1.json is a "
            "symbolic link; refusing to write through it*"
        ]
    )


def test_recording_under_xdist_counts_every_worker(
    pytester: pytest.Pytester, fake_llama_server: StartLlamaServer
) -> None:
    pytester.makepyfile(test_rec=TESTS)
    srv = fake_llama_server(ModelScript(["Ban", "ana"]))
    result = pytester.runpytest(
        f"--llm-models=llama-server@{srv.url}", "--llm-record=rec", "-n", "2"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*recorded 2 replies to rec*"])
    assert len(list((pytester.path / "rec").glob("*-1.json"))) == 2
