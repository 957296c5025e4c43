"""GPU memory of a process, from ``nvidia-smi`` when it exists."""

from __future__ import annotations

import shutil
import subprocess


def process_vram_mb(pid: int) -> float | None:
    """MiB of GPU memory used by ``pid``, or ``None`` where nvidia-smi is absent or silent."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    total = 0.0
    found = False
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            try:
                total += float(parts[1])
                found = True
            except ValueError:
                continue
    return total if found else None
