"""Recording and replaying as wrappers around a backend, the way httpx's ``MockTransport``
stands in for a transport: the ``llm`` object generates from whichever its item was given
(:meth:`~pytest_llmbench.generate.registry.BenchSession.source` decides once per item) and
never knows which. The recordings themselves (files, keys, checks): :mod:`.replay`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from pytest_llmbench.generate.replay import Recorder, RecordingMissing, Replayer
from pytest_llmbench.serve.backends.base import Asked, Backend, ReplySource
from pytest_llmbench.serve.generation import Generation
from pytest_llmbench.serve.server_info import ServerInfo
from pytest_llmbench.serve.streaming import StreamEvent

FillIn = Callable[[str], tuple[ReplySource, float | None]]
"""Makes the model ready to generate a recording that replay lacks (its file name given):
what generates and records it, and the load time paid (``--llm-replay-missing=record``)."""


@dataclass
class Wrapped:
    """A backend whose replies to one model are recorded or replayed. ``model``: the model's
    id as in test ids (a pool's, not its endpoint's), the recordings' key."""

    backend: Backend
    model: str

    @property
    def server_info(self) -> ServerInfo:
        return self.backend.server_info


@dataclass
class Recording(Wrapped):
    """``backend``'s replies, each written to a recording with its stream's timing; the
    returned generation names its file (``recording``). ``name``: the file a replay looked
    for (filling in a missing recording), else the next occurrence of the request's key."""

    recorder: Recorder
    name: str | None = None

    def generate_in_flight(self, asked: Asked) -> Generation:
        events: list[StreamEvent] = []
        generation = self.backend.generate_in_flight(asked, events)
        path = self.recorder.save(
            self.model, generation.request, generation.to_dict(), events, self.name
        )
        return replace(generation, recording=path.name)


@dataclass
class Replaying(Wrapped):
    """Replies from the recordings of ``model``, no server contacted; ``backend`` only makes
    the request body they are keyed by. A missing recording is a
    :class:`~pytest_llmbench.generate.replay.RecordingMissing`, unless ``fill_in`` is given:
    then it is generated live and recorded under the name looked for."""

    replayer: Replayer
    fill_in: FillIn | None = None

    def generate_in_flight(self, asked: Asked) -> Generation:
        body = self.backend.request_body(asked.messages, asked.settings)
        try:
            return self.replayer.lookup(self.model, body)
        except RecordingMissing as missing:
            if self.fill_in is None:
                raise
            live, paid = self.fill_in(missing.name)
        return live.generate_in_flight(asked if paid is None else replace(asked, load_s=paid))
