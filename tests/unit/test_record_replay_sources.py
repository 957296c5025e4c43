"""Recording and replaying are wrappers around a backend (generate/record_replay.py): the
``llm`` object generates from whichever source its item was given and never knows which."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes import ModelScript
from pytest_llmbench.check_result import Score
from pytest_llmbench.errors import LLMBenchError
from pytest_llmbench.generate.llm import LLM
from pytest_llmbench.generate.record_replay import Recording, Replaying
from pytest_llmbench.generate.records import GenerationRecord
from pytest_llmbench.generate.replay import Recorder, RecordingMissing, Replayer
from pytest_llmbench.serve.backends.base import Asked, Messages, ReplySource, Timeouts
from pytest_llmbench.serve.backends.llama_cpp import LlamaServerBackend
from pytest_llmbench.serve.generation import Generation, Metrics, Settings
from pytest_llmbench.serve.server_info import ServerInfo, ServerOptions
from pytest_llmbench.serve.specs import parse_spec
from tests.fixtures.fakes import StartLlamaServer

HI: Messages = [{"role": "user", "content": "hi"}]
SETTINGS = Settings(max_tokens=16)
TIMEOUTS = Timeouts(connect_s=5.0, read_s=10.0, total_s=20.0)
HI_ONCE_MORE = Asked(HI, SETTINGS, TIMEOUTS)


@pytest.fixture
def backend(fake_llama_server: StartLlamaServer) -> Iterator[LlamaServerBackend]:
    server = fake_llama_server(ModelScript(["Ban", "ana", "s"]))
    made = LlamaServerBackend(parse_spec(f"llama-server@{server.url}"), ServerOptions())
    made.prepare(SETTINGS, lambda _line: None)
    yield made
    made.release()


def test_a_recording_keeps_its_own_streams_events_and_the_load_it_paid(
    backend: LlamaServerBackend, tmp_path: Path
) -> None:
    recording = Recording(backend, "m", Recorder(tmp_path))
    first = recording.generate_in_flight(Asked(HI, SETTINGS, TIMEOUTS, load_s=1.5))
    second = recording.generate_in_flight(HI_ONCE_MORE)
    assert first.recording is not None and first.recording.endswith("-1.json")
    assert second.recording is not None and second.recording.endswith("-2.json")
    for generation in (first, second):
        document = json.loads((tmp_path / str(generation.recording)).read_text())
        assert "".join(content for _, content, _ in document["events"]) == generation.text
        assert document["generation"]["metrics"]["load_s"] == generation.metrics.load_s
    assert (first.metrics.load_s, second.metrics.load_s) == (1.5, None)


def test_a_replay_answers_from_the_recordings_and_names_what_is_missing(
    backend: LlamaServerBackend, tmp_path: Path
) -> None:
    recorded = Recording(backend, "m", Recorder(tmp_path)).generate_in_flight(
        Asked(HI, SETTINGS, TIMEOUTS, load_s=1.5)
    )
    replaying = Replaying(backend, "m", Replayer(tmp_path))
    replayed = replaying.generate_in_flight(HI_ONCE_MORE)
    assert (replayed.text, replayed.metrics) == (recorded.text, recorded.metrics)
    with pytest.raises(RecordingMissing, match=r"m: no recording .*-2\.json\)"):
        replaying.generate_in_flight(HI_ONCE_MORE)  # asked once more than recorded


def test_a_missing_recording_is_generated_live_and_recorded_under_the_name_looked_for(
    backend: LlamaServerBackend, tmp_path: Path
) -> None:
    asked: list[str] = []

    def fill_in(name: str) -> tuple[ReplySource, float | None]:
        asked.append(name)
        return Recording(backend, "m", Recorder(tmp_path, manifest=False), name), 2.0

    filled = Replaying(backend, "m", Replayer(tmp_path), fill_in).generate_in_flight(HI_ONCE_MORE)
    assert [filled.recording] == asked and (tmp_path / asked[0]).is_file()
    assert filled.metrics.load_s == 2.0
    again = Replaying(backend, "m", Replayer(tmp_path)).generate_in_flight(HI_ONCE_MORE)
    assert again.text == filled.text  # a later replay finds it


class Answers:
    """A reply source with no server at all: the LLM generates from it all the same."""

    server_info = ServerInfo(backend="scripted")

    def __init__(self, *replies: Generation | LLMBenchError) -> None:
        self.replies = list(replies)
        self.loads: list[float | None] = []

    def generate_in_flight(self, asked: Asked) -> Generation:
        self.loads.append(asked.load_s)
        reply = self.replies.pop(0)
        if isinstance(reply, LLMBenchError):
            reply.partial = reply.partial.paying(asked.load_s)  # as a backend does
            raise reply
        return reply.paying(asked.load_s)


class Log:
    """The item's side: what the LLM hands it."""

    def __init__(self) -> None:
        self.generations: list[GenerationRecord] = []
        self.errors: list[LLMBenchError] = []

    def kept(self, generation: GenerationRecord, *, judge: bool = False) -> None:
        self.generations.append(generation)

    def scored(self, name: str, value: float) -> None:
        raise AssertionError("not scored here")

    def combined(self, score: Score) -> None:
        raise AssertionError("not scored here")

    def errored(self, exc: LLMBenchError, *, judge: bool = False) -> None:
        self.errors.append(exc)


def reply(text: str, recording: str | None = None) -> Generation:
    return Generation("m", text, text, "", "stop", Metrics(), SETTINGS, recording=recording)


def test_the_llm_hands_each_generation_to_its_item_whatever_its_source() -> None:
    log = Log()
    cut = LLMBenchError("the stream was cut", partial=reply("Ba"))
    source = Answers(cut, reply("Banana", recording="abc-1.json"), reply("Kiwi"))
    llm = LLM(parse_spec("llama-server@http://127.0.0.1:1"), source, SETTINGS, TIMEOUTS, log, 3.0)
    with pytest.raises(LLMBenchError):
        llm.generate("a fruit?")
    assert llm.generate("a fruit?").answer == "Banana"
    llm.generate("another?")
    # The load paid before the item goes with its first reply, a cut one too, and only there.
    assert source.loads == [3.0, None, None]
    assert [g.reply.answer for g in log.generations] == ["Ba", "Banana", "Kiwi"]
    assert [g.reply.metrics.load_s for g in log.generations] == [3.0, None, None]
    assert [g.reply.recording for g in log.generations] == [None, "abc-1.json", None]
    assert log.errors == [cut]
