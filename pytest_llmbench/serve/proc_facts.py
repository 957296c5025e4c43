"""Facts about processes from Linux ``/proc``: whether one still runs, its CPU time, its
memory. Any process of this user can be asked about, not only this process's children (a
server spawned by another xdist worker)."""

from __future__ import annotations

import os

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (Linux), ``None`` if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of ``pid`` so far (Linux ``/proc``), ``None`` if unknown."""
    fields = _stat(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)


def start_time(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot): tells a reused pid from the process."""
    fields = _stat(pid)
    return fields[19] if fields is not None else ""  # starttime (field 22)


def alive(pid: int, started: str) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (a zombie, dead but
    not yet reaped by its parent, does not)."""
    fields = _stat(pid)
    return fields is not None and fields[19] == started and fields[0] != "Z"


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident set size (``VmHWM``) of ``pid`` so far, in MiB; ``None`` off Linux."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None
