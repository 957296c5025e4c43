"""The live line: shown only for long generations, at most every 0.5 s in a terminal and
every 30 s in CI, drawn after pytest's own text and erased without a trace."""

from __future__ import annotations

from pytest_llmbench.generate.live_line import LiveLine

PYTEST_TEXT = "test_x.py .."


class Screen:
    """A terminal that applies backspaces, so what is left on it can be checked."""

    def __init__(self, width: int = 100) -> None:
        self.width = width
        self.line = list(PYTEST_TEXT)
        self.pos = len(PYTEST_TEXT)
        self.writes = 0
        self.logged: list[str] = []

    def raw(self, text: str) -> None:
        self.writes += 1
        for char in text:
            if char == "\b":
                self.pos -= 1
            elif self.pos < len(self.line):
                self.line[self.pos] = char
                self.pos += 1
            else:
                self.line.append(char)
                self.pos += 1

    def shown(self) -> str:
        return "".join(self.line[: self.pos])

    def room(self) -> int:
        return self.width - len(PYTEST_TEXT)


def live_on(screen: Screen) -> LiveLine:
    return LiveLine(raw=screen.raw, log=screen.logged.append, room=screen.room)


def test_terminal_line_waits_is_rate_limited_and_erases_cleanly() -> None:
    screen = Screen()
    live = live_on(screen)
    for i in range(1, 61):  # a token every 0.1 s for 6 s; the request was sent at 0
        live.tick("llama-server:gemma3-270m", i, 0.0, 0.05, 0.1 * i)
    # Nothing for the first 3 s, then at most one update per 0.5 s.
    assert 5 <= screen.writes <= 7
    assert screen.shown() == (
        f"{PYTEST_TEXT}  [llmbench] llama-server:gemma3-270m: 60 tokens, 9.9 tok/s, 6 s"
    )
    live.clear()
    assert screen.shown() == PYTEST_TEXT and screen.logged == []
    assert "".join(screen.line).rstrip() == PYTEST_TEXT  # erased, not just moved past


def test_a_short_generation_shows_nothing() -> None:
    screen = Screen()
    live = live_on(screen)
    for i in range(1, 20):
        live.tick("m", i, 0.0, 0.05, 0.1 * i)
    live.clear()
    assert screen.writes == 0 and screen.shown() == PYTEST_TEXT


def test_no_room_on_the_line_means_no_line() -> None:
    screen = Screen(width=30)
    live = live_on(screen)
    for i in range(1, 80):
        live.tick("a-model-with-a-long-name", i, 0.0, 0.05, 0.1 * i)
    assert screen.shown() == PYTEST_TEXT  # never wraps pytest's line


def test_ci_writes_one_line_every_30_seconds() -> None:
    logged: list[str] = []
    live = LiveLine(raw=None, log=logged.append, room=lambda: 80)
    for i in range(1, 951):  # 95 s at 10 tokens/s
        live.tick("m", i, 0.0, 0.5, 0.1 * i)
    assert logged == [
        "[llmbench] m: 300 tokens, 10.1 tok/s, 30 s",
        "[llmbench] m: 600 tokens, 10.1 tok/s, 60 s",
        "[llmbench] m: 900 tokens, 10.0 tok/s, 90 s",
    ]


def test_a_new_generation_takes_the_old_line_away() -> None:
    screen = Screen()
    live = live_on(screen)
    live.tick("m", 50, 0.0, 0.1, 5.0)
    assert screen.shown().endswith("5 s")
    live.tick("m", 1, 10.0, 10.1, 10.2)  # the next generation, still short
    assert screen.shown() == PYTEST_TEXT
