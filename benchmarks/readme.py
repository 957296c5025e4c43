"""The README's "Performance" table, generated from ``benchmarks/results.json``.

python -m benchmarks.readme     # rewrite the table in README.md (run.py does it too)
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks.harness import ROOT, shown

RESULTS = ROOT / "benchmarks" / "results.json"
README = ROOT / "README.md"
BEGIN = "<!-- performance table: written by `python -m benchmarks.readme` from results.json -->"
END = "<!-- end of performance table -->"
MET = {True: "yes", False: "**no**", None: "report"}


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    command = "python -m benchmarks" + (" --quick" if m["quick"] else "")
    lines = [
        f"{'Quick' if m['quick'] else 'Full'} run (`{command}`, {m['duration_s']:.0f} s), "
        f"{m['date'][:10]}: {m['cpu']}, {m['cores']} cores, Python {m['python']}; load "
        f"average {m['load_average_at_start'][0]} at the start and "
        f"{m['load_average_at_end'][0]} at the end ({m['load_note']}).",
        "",
        "| figure | value | target | met |",
        "|---|---|---|---|",
    ]
    for f in results["figures"]:
        value = shown(f["value"], f["unit"])
        met = "skipped" if f["value"] is None and f["met"] is None else MET[f["met"]]
        lines.append(f"| {cell(f['figure'])} | {cell(value)} | {cell(f['target'])} | {met} |")
    return "\n".join(lines)


def updated(readme: str, results: dict[str, Any]) -> str:
    """``readme`` with the text between the markers replaced by :func:`table`."""
    head, found, rest = readme.partition(BEGIN)
    _old, found_end, tail = rest.partition(END)
    if not found or not found_end:
        raise ValueError(f"README.md lacks the markers {BEGIN!r} ... {END!r}")
    return f"{head}{BEGIN}\n{table(results)}\n\n{END}{tail}"


def main() -> None:
    results = json.loads(RESULTS.read_text())
    README.write_text(updated(README.read_text(), results))
    print(f"wrote the performance table of {README}")


if __name__ == "__main__":
    main()
