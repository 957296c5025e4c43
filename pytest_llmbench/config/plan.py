"""What one test asks for through ``@pytest.mark.llm(...)``, merged with the run's options."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pytest_llmbench.config.run_config import RunConfig
from pytest_llmbench.config.thresholds import Threshold, parse_thresholds
from pytest_llmbench.serve.generation import Settings, setting_text

#: Marker keywords that are not generation settings.
PLAN_KEYS = ("repeat", "min_pass_rate", "thresholds", "benchmark", "alone")
#: Every keyword ``@pytest.mark.llm(...)`` takes: the generation settings, then the plan's.
MARKER_KEYS = (*(f.name for f in fields(Settings)), *PLAN_KEYS)


@dataclass(frozen=True)
class ItemPlan:
    settings: Settings
    repeat: int
    min_pass_rate: float | None
    thresholds: tuple[Threshold, ...]
    benchmark: str | None = None
    """The benchmark the test belongs to (``benchmark="todo"``); default: its function name."""
    alone: bool = False
    """No other generation in flight on its server while it generates (``alone=True``: a
    test that measures speed under ``--llm-concurrency``)."""

    def settings_for(self, rep: int) -> Settings:
        """Repeats get distinct (recorded) seeds when sampling is random."""
        if rep and self.settings.temperature > 0:
            return self.settings.replace(seed=self.settings.seed + rep)
        return self.settings


def build_plan(marker_kwargs: Iterable[Mapping[str, Any]], run: RunConfig) -> ItemPlan:
    """Apply marker keywords, farthest marker first so the closest wins.

    Raises ``ValueError``/``TypeError`` naming the bad keyword; the caller turns it into a
    usage error with the test's id.
    """
    settings = run.settings
    repeat, min_rate, thresholds = run.repeat, run.min_pass_rate, run.thresholds
    marked_rate = False
    benchmark: str | None = None
    alone = False
    for kwargs in marker_kwargs:
        unknown = sorted(set(kwargs) - set(MARKER_KEYS))
        if unknown:
            raise TypeError(
                f"unknown keyword(s) {', '.join(unknown)}; valid keys: {', '.join(MARKER_KEYS)}"
            )
        rest = {k: v for k, v in kwargs.items() if k not in PLAN_KEYS}
        settings = settings.replace(**rest)
        if "repeat" in kwargs:
            value = kwargs["repeat"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"repeat={value!r} must be a whole number, at least 1")
            repeat = value
        if "min_pass_rate" in kwargs:
            marked_rate = True
            min_rate = float(kwargs["min_pass_rate"])
            if not 0 <= min_rate <= 1:
                raise ValueError(f"min_pass_rate={min_rate} must be between 0 and 1")
        if "thresholds" in kwargs:
            thresholds = parse_thresholds(kwargs["thresholds"])
        if "benchmark" in kwargs:
            benchmark = str(kwargs["benchmark"]).strip()
            if not benchmark:
                raise ValueError("benchmark='' must name the benchmark, e.g. benchmark='todo'")
        if "alone" in kwargs:
            if not isinstance(kwargs["alone"], bool):
                raise ValueError(f"alone={kwargs['alone']!r} must be True or False")
            alone = kwargs["alone"]
    if marked_rate and repeat == 1:
        # A pass rate over one run is no gate: it would be silently ignored.
        raise ValueError(
            f"min_pass_rate={min_rate} gates repeated runs: add repeat=N (N > 1) to the marker "
            f"or pass --llm-repeat=N"
        )
    return ItemPlan(settings, repeat, min_rate, thresholds, benchmark, alone)


def overrides_lines(run: Settings, plans: Iterable[tuple[str, Settings]]) -> list[str]:
    """``llmbench: test_x: max_tokens=256 (marker)`` once per test that changes a setting."""
    lines: dict[str, None] = {}
    for name, settings in plans:
        names = [
            f.name for f in fields(Settings) if getattr(settings, f.name) != getattr(run, f.name)
        ]
        changed = [setting_text(n, getattr(settings, n)) or f"{n}=(unset)" for n in names]
        if changed:
            lines.setdefault(f"llmbench: {name}: {' '.join(changed)} (marker)")
    return list(lines)
