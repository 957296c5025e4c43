"""Checks on prose answers with embedded code: YAML, Compose services, SQL, phrases,
sections, Python snippets."""

from __future__ import annotations

import re
from collections.abc import Sequence
from re import Pattern
from typing import Any

import yaml

from pytest_llmbench.checks.extract import extract_blocks
from pytest_llmbench.checks.result import CheckResult
from pytest_llmbench.checks.syntax import parse_error


def _yaml_documents(text: str) -> tuple[list[Any], list[str]]:
    docs: list[Any] = []
    errors: list[str] = []
    for i, block in enumerate(extract_blocks(text, "yaml"), 1):
        try:
            docs.extend(d for d in yaml.safe_load_all(block) if d is not None)
        except yaml.YAMLError as exc:
            errors.append(f"block {i}: {str(exc).splitlines()[0]}")
    return docs, errors


def yaml_parses(text: str, name: str = "yaml_parses") -> CheckResult:
    """Every YAML block parses (score = fraction of blocks that do)."""
    blocks = extract_blocks(text, "yaml")
    if not blocks:
        return CheckResult(name, 0.0, False, "no YAML block found", "no code found")
    _docs, errors = _yaml_documents(text)
    score = (len(blocks) - len(errors)) / len(blocks)
    return CheckResult(
        name,
        score,
        not errors,
        f"{len(blocks) - len(errors)}/{len(blocks)} YAML blocks parse"
        + (f"; {'; '.join(errors)}" if errors else ""),
    )


def _compose_services(text: str) -> tuple[dict[str, Any] | None, str]:
    docs, errors = _yaml_documents(text)
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("services"), dict):
            return doc["services"], ""
    why = "no Compose file (YAML with services:) found"
    return None, why + (f"; YAML errors: {'; '.join(errors)}" if errors else "")


def _service_hits(services: dict[str, Any], word: str) -> list[str]:
    hits = []
    for name, body in services.items():
        image = str(body.get("image", "")) if isinstance(body, dict) else ""
        if word.lower() in str(name).lower() or word.lower() in image.lower():
            hits.append(str(name))
    return hits


def compose_lacks_service(
    text: str, service: str = "postgres", name: str | None = None
) -> CheckResult:
    """Passes when the Compose file has no service whose name or image contains ``service``."""
    label = name or f"no_{service}_service"
    services, why = _compose_services(text)
    if services is None:
        return CheckResult(label, 0.0, False, why, "no code found")
    hits = _service_hits(services, service)
    if hits:
        return CheckResult(label, 0.0, False, f"Compose runs {service}: service(s) {hits}")
    return CheckResult(label, 1.0, True, f"no {service} among services {sorted(services)}")


def compose_has_service(text: str, service: str, name: str | None = None) -> CheckResult:
    label = name or f"{service}_service"
    services, why = _compose_services(text)
    if services is None:
        return CheckResult(label, 0.0, False, why, "no code found")
    hits = _service_hits(services, service)
    return CheckResult(label, float(bool(hits)), bool(hits), f"services: {sorted(services)}")


_CREATE = re.compile(
    r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?[`\"\[]?(?:\w+\.)?(\w+)[`\"\]]?\s*\((.*?)\);",
    re.IGNORECASE | re.DOTALL,
)


def sql_create_table(
    text: str, table: str | None = None, columns: Sequence[str] = (), name: str | None = None
) -> CheckResult:
    """A ``CREATE TABLE`` (for ``table`` when given) naming ``columns``; score counts the
    table and each column."""
    label = name or (f"table_{table}" if table else "create_table")
    tables = {m.group(1).lower(): m.group(2) for m in _CREATE.finditer(text)}
    if not tables:
        return CheckResult(label, 0.0, False, "no CREATE TABLE statement found")
    if table is None:
        body = " ".join(tables.values())
        found_table = True
    else:
        body = tables.get(table.lower(), "")
        found_table = table.lower() in tables
    have = [c for c in columns if re.search(rf"\b{re.escape(c)}\b", body, re.IGNORECASE)]
    total = 1 + len(columns)
    score = (int(found_table) + len(have)) / total if found_table else 0.0
    missing = [c for c in columns if c not in have]
    details = (
        f"tables: {sorted(tables)}" + (f"; missing columns: {missing}" if missing else "")
        if found_table
        else f"no table {table!r}; tables: {sorted(tables)}"
    )
    return CheckResult(label, score, score == 1.0, details)


def phrases(
    text: str,
    required: Sequence[str | Pattern[str]] = (),
    forbidden: Sequence[str | Pattern[str]] = (),
    name: str = "phrases",
) -> CheckResult:
    """Required patterns present and forbidden ones absent (strings are case-insensitive
    regexes); score = fraction satisfied."""

    def hit(pattern: str | Pattern[str]) -> bool:
        compiled = pattern if isinstance(pattern, Pattern) else re.compile(pattern, re.I | re.M)
        return compiled.search(text) is not None

    def show(p: str | Pattern[str]) -> str:
        return p.pattern if isinstance(p, Pattern) else p

    missing = [show(p) for p in required if not hit(p)]
    present = [show(p) for p in forbidden if hit(p)]
    total = len(required) + len(forbidden)
    if total == 0:
        raise ValueError("phrases() needs required or forbidden patterns")
    score = (total - len(missing) - len(present)) / total
    details = []
    if missing:
        details.append(f"missing: {missing}")
    if present:
        details.append(f"forbidden but present: {present}")
    return CheckResult(name, score, score == 1.0, "; ".join(details) or "all satisfied")


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def sections_with_code(text: str, sections: Sequence[str], name: str = "sections") -> CheckResult:
    """Each named Markdown section exists and contains a fenced code block (not bullets)."""
    heads = list(_HEADING.finditer(text))
    missing, no_code = [], []
    for section in sections:
        idx = next((i for i, h in enumerate(heads) if section.lower() in h.group(2).lower()), None)
        if idx is None:
            missing.append(section)
            continue
        level = len(heads[idx].group(1))
        end = next((h.start() for h in heads[idx + 1 :] if len(h.group(1)) <= level), len(text))
        if not re.search(r"^[ \t]*(```|~~~)", text[heads[idx].end() : end], re.MULTILINE):
            no_code.append(section)
    good = len(sections) - len(missing) - len(no_code)
    details = []
    if missing:
        details.append(f"missing sections: {missing}")
    if no_code:
        details.append(f"sections without code: {no_code}")
    return CheckResult(
        name,
        good / len(sections) if sections else 1.0,
        good == len(sections),
        "; ".join(details) or "every section has code",
    )


def python_snippets_parse(text: str, name: str = "snippets_parse") -> CheckResult:
    """Fraction of Python blocks that parse."""
    blocks = [b for b in extract_blocks(text, "python") if b.strip()]
    if not blocks:
        return CheckResult(name, 0.0, False, "no Python block found", "no code found")
    bad = []
    for i, block in enumerate(blocks, 1):
        error = parse_error(block)
        if error is not None:
            bad.append(f"block {i} line {error.lineno}: {error.msg}")
    return CheckResult(
        name,
        (len(blocks) - len(bad)) / len(blocks),
        not bad,
        f"{len(blocks) - len(bad)}/{len(blocks)} parse" + (f"; {'; '.join(bad)}" if bad else ""),
    )
