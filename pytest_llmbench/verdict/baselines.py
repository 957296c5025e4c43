"""Saved runs (baselines) in the style of pytest-benchmark: a stable ``NAME.json`` per name and
numbered ``history/NNNN_NAME.json`` files, read back checked, and what makes two runs not
like for like (the comparison itself: :mod:`pytest_llmbench.verdict.comparison`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmbench.fingerprint import changes
from pytest_llmbench.generate.records import ItemRecord
from pytest_llmbench.output_files import locked, write_atomic
from pytest_llmbench.schema import SCHEMA_ID, SCHEMA_VERSION
from pytest_llmbench.serve.server_info import like_for_like_keys
from pytest_llmbench.typed_json import Invalid, expect, field, read_json
from pytest_llmbench.verdict.outcome import OUTCOMES
from pytest_llmbench.verdict.results import ItemResult


class StoreError(ValueError):
    """A baseline that cannot be found or read; the message says what exists."""


@dataclass(frozen=True)
class SavedRun:
    path: Path
    """The stable file (``.llmbench/main.json``): what ``--llm-compare=main`` reads."""
    history: Path
    """The numbered copy kept in ``history/`` (``0003_main.json``)."""


class Store:
    """A directory of saved runs: ``NAME.json``, the latest run saved under each name (a stable
    file a CI job keeps comparing against, and may commit), and ``history/NNNN_NAME.json``,
    every run saved, numbered (as pytest-benchmark keeps them). Numbered runs directly in the
    directory (this plugin's earlier layout) are still found."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def history(self) -> Path:
        return self.root / "history"

    def runs(self) -> list[Path]:
        """Every numbered run, oldest first."""
        pattern = "[0-9][0-9][0-9][0-9]_*.json"
        found = [*self.history.glob(pattern), *self.root.glob(pattern)]
        return sorted(found, key=lambda p: (int(p.name[:4]), p.name))

    def names(self) -> list[Path]:
        """The stable files, one per name."""
        return sorted(p for p in self.root.glob("*.json") if not p.name[:4].isdigit())

    def save(self, name: str, document: dict[str, Any]) -> SavedRun:
        """Write ``document`` as ``NAME.json`` and as the next numbered run in ``history/``,
        each atomically; two runs saving at once get distinct numbers (the choice is made
        under a lock on the directory itself: no lock file is left beside the runs)."""
        check_name(name)
        text = json.dumps(document, indent=1, default=str)
        with locked(self.root):
            runs = self.runs()
            number = int(runs[-1].name[:4]) + 1 if runs else 1
            history = self.history / f"{number:04d}_{name}.json"
            write_atomic(history, text)
            path = self.root / f"{name}.json"
            write_atomic(path, text)
        return SavedRun(path, history)

    def find(self, ref: str) -> Path:
        """A path, ``latest``, a number (``3`` / ``0003``, from the history) or a name (its
        stable file, else its newest numbered run)."""
        if Path(ref).suffix == ".json" and Path(ref).is_file():
            return Path(ref)
        runs = self.runs()
        if ref == "latest" and runs:
            return runs[-1]
        if ref.isdigit():
            hits = [p for p in runs if int(p.name[:4]) == int(ref)]
        else:
            stable = self.root / f"{ref}.json"
            hits = [stable] if stable.is_file() else [p for p in runs if p.stem[5:] == ref]
        if not hits:
            have = [p.stem for p in self.names()] + [p.name for p in runs[-5:]]
            raise StoreError(
                f"no saved run {ref!r} in {self.root} (have: {', '.join(have) or 'none'}); "
                f"save one with --llm-save NAME"
            )
        return hits[-1]

    def load(self, ref: str) -> tuple[Path, dict[str, Any]]:
        """The saved run ``ref``, checked to have the shape :func:`compare` reads."""
        path = self.find(ref)
        try:
            data = read_json(path)
            check_baseline(data)
        except Invalid as exc:
            raise StoreError(
                f"saved run {path} is not a usable baseline: {exc}; pick another with "
                f"--llm-compare or save a new one with --llm-save NAME"
            ) from None
        return path, data


def run_name(path: Path) -> str:
    """The name a saved run was given: ``main`` for ``0003_main.json`` or ``main.json``."""
    stem = path.stem
    return stem[5:] if re.fullmatch(r"\d{4}_.+", stem) else stem


def check_name(name: str) -> None:
    """A baseline name becomes part of a file name: letters, digits, ``.``, ``_``, ``-``."""
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name.strip(".") == "":
        raise StoreError(f"baseline name {name!r}: use letters, digits, '.', '_' or '-'")


def check_baseline(data: Any) -> None:
    """Raise :class:`~pytest_llmbench.typed_json.Invalid` naming the first field of ``data``
    that is not what a results document (schema pytest-llmbench/results v1) holds there."""
    expect(data, "document", dict)
    if data.get("schema") != SCHEMA_ID:
        raise Invalid(f"schema: expected {SCHEMA_ID!r}, got {json.dumps(data.get('schema'))}")
    if data.get("version") != SCHEMA_VERSION or isinstance(data.get("version"), bool):
        raise Invalid(
            f"version: expected {SCHEMA_VERSION} (this plugin's results version), "
            f"got {json.dumps(data.get('version'))}"
        )
    environment = field(data, "environment", "document", dict, required=False) or {}
    field(environment, "hardware", "environment", dict, type(None), required=False)
    models = field(environment, "models", "environment", dict, required=False) or {}
    for model, facts in models.items():
        expect(facts, f"environment.models[{model!r}]", dict)
    saved_items(data)


def saved_items(data: dict[str, Any]) -> list[ItemResult]:
    """The items of a results document (a saved run), typed; :class:`Invalid` names the
    first field that is not what this plugin writes there."""
    items = []
    for n, item in enumerate(field(data, "items", "document", list)):
        where = f"items[{n}]"
        expect(item, where, dict)
        model = field(item, "model", where, str)
        test = field(item, "test", where, str)
        outcome = field(item, "outcome", where, str, required=False) or "pending"
        if outcome not in OUTCOMES:
            raise Invalid(
                f"{where}.outcome: expected one of {', '.join(OUTCOMES)}, got {outcome!r}"
            )
        nodeid = field(item, "nodeid", where, str, required=False) or ""
        record = field(item, "record", where, dict, type(None), required=False) or {}
        typed = ItemRecord.from_dict({"model": model, "test": test, **record}, f"{where}.record")
        items.append(ItemResult(nodeid, model, test, typed, outcome))
    return items


def fingerprint_mismatches(base: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Differences that make a comparison unfair: settings, model digest/build, hardware."""
    notes = []
    if base.get("settings") != current.get("settings"):
        notes.append(f"settings: {changes(base.get('settings'), current.get('settings'))}")
    bm = (base.get("environment") or {}).get("models") or {}
    cm = (current.get("environment") or {}).get("models") or {}
    for model in sorted(set(bm) & set(cm)):
        for key in (*like_for_like_keys(), "settings"):
            before, after = bm[model].get(key), cm[model].get(key)
            if before != after:
                notes.append(f"{model}: {key} {changes(before, after)}")
    bh = (base.get("environment") or {}).get("hardware")
    ch = (current.get("environment") or {}).get("hardware")
    if bh != ch:
        notes.append(f"hardware: {changes(bh, ch)}")
    return notes
