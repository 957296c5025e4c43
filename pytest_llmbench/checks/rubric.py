"""Checks on prose answers with embedded code: YAML, Compose services, SQL, phrases,
sections, Python snippets."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from re import Pattern
from typing import Any

import yaml

from pytest_llmbench.answer_text import extract_blocks, fenced_blocks
from pytest_llmbench.check_result import CheckResult, parse_error
from pytest_llmbench.checks.features import without_comments


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


def _other_documents(text: str) -> list[Any]:
    """The documents of the untagged and JSON blocks that parse as YAML (JSON is YAML): a
    Compose file is one wherever it is written; what does not parse here is not an error."""
    docs: list[Any] = []
    for block in (b for b in fenced_blocks(text) if b.tag in ("", "json", "jsonc")):
        try:
            docs.extend(d for d in yaml.safe_load_all(block.body) if d is not None)
        except yaml.YAMLError:
            continue
    return docs


def _compose_services(text: str) -> tuple[dict[str, Any] | None, str]:
    """The services of every Compose file in ``text`` together, as Compose merges them: a
    second file such as ``docker-compose.override.yml`` runs its services too, and its keys
    for a service already defined are laid over that service's, not in place of them."""
    docs, errors = _yaml_documents(text)
    services: dict[str, Any] | None = None
    for doc in [*docs, *_other_documents(text)]:
        if isinstance(doc, dict) and isinstance(doc.get("services"), dict):
            services = dict(services or {})
            for name, body in doc["services"].items():
                before = services.get(name)
                both = isinstance(before, dict) and isinstance(body, dict)
                services[name] = {**before, **body} if both else body  # type: ignore[dict-item]
    if services is not None:
        return services, ""
    why = "no Compose file (YAML with services:) found"
    return None, why + (f"; YAML errors: {'; '.join(errors)}" if errors else "")


#: Images that run the same server under another name.
_SAME_SERVER = {"postgres": ("postgis", "timescale", "pgvector", "citus")}


_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE | re.MULTILINE)
#: A command that installs or starts the same server inside another image.
_STARTS_SERVER = {
    "postgres": re.compile(
        r"\b(postgres|postmaster)\s+-D\b|\bpg_ctl(cluster)?\b.*\bstart\b"
        r"|\b(apk|apt-get|apt|yum|dnf|microdnf)\b.*\b(add|install)\b.*"
        r"\bpostgresql(-?\d+)?(-server)?(?![\w.-])",  # the server, not postgresql-client
        re.IGNORECASE,
    )
}


def _service_hits(services: dict[str, Any], word: str, text: str = "") -> list[str]:
    """The services whose name or image names ``word`` (or an image of the same server), and,
    when a Dockerfile in ``text`` starts ``FROM`` such an image, every service that builds
    one (which Dockerfile a ``build:`` takes cannot be told from the answer); a
    ``dockerfile_inline`` from one, or a ``command`` / ``entrypoint`` that installs or starts
    the server in another image (``apk add postgresql``, ``postgres -D``)."""
    names = (word.lower(), *_SAME_SERVER.get(word.lower(), ()))
    built_from = [
        m.group(1)
        for b in fenced_blocks(text)
        if b.tag in ("dockerfile", "docker", "")
        for m in _FROM.finditer(b.body)
        if any(n in m.group(1).lower() for n in names)
    ]
    starts = _STARTS_SERVER.get(word.lower())
    hits = []
    for name, body in services.items():
        body = body if isinstance(body, dict) else {}
        image = str(body.get("image", ""))
        builds = "build" in body and not image
        build = body.get("build")
        inline = str(build.get("dockerfile_inline", "")) if isinstance(build, dict) else ""
        command = " ".join(str(body.get(key, "")) for key in ("entrypoint", "command"))
        if (
            word.lower() in str(name).lower()
            or any(n in image.lower() for n in names)
            or (builds and built_from)
            or any(n in m.group(1).lower() for m in _FROM.finditer(inline) for n in names)
            or (starts is not None and starts.search(command) is not None)
        ):
            hits.append(str(name))
    return hits


def compose_lacks_service(
    text: str, service: str = "postgres", name: str | None = None
) -> CheckResult:
    """Passes when no Compose file in the answer (a YAML, JSON or untagged block; files merged
    as Compose merges them) has a service whose name or image contains ``service`` (for
    ``postgres`` also the PostGIS, TimescaleDB, pgvector and Citus images), nor builds one when
    a Dockerfile in the answer starts ``FROM`` such an image, nor installs or starts it in its
    ``command`` or ``entrypoint``."""
    label = name or f"no_{service}_service"
    services, why = _compose_services(text)
    if services is None:
        return CheckResult(label, 0.0, False, why, "no code found")
    hits = _service_hits(services, service, text)
    if hits:
        return CheckResult(label, 0.0, False, f"Compose runs {service}: service(s) {hits}")
    return CheckResult(label, 1.0, True, f"no {service} among services {sorted(services)}")


def compose_has_service(text: str, service: str, name: str | None = None) -> CheckResult:
    label = name or f"{service}_service"
    services, why = _compose_services(text)
    if services is None:
        return CheckResult(label, 0.0, False, why, "no code found")
    hits = _service_hits(services, service, text)
    return CheckResult(label, float(bool(hits)), bool(hits), f"services: {sorted(services)}")


_CREATE = re.compile(
    r"CREATE\s+(?:(?:GLOBAL|LOCAL|TEMP|TEMPORARY|UNLOGGED)\s+)*TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?:[`\"\[]?\w+[`\"\]]?\.)?[`\"\[]?(\w+)[`\"\]]?\s*\(",
    re.IGNORECASE,
)
_SQL_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_LINE_COMMENT = re.compile(r"--[^\n]*")
#: A block comment that opens where a statement may start (not "src/**/*.py" in prose).
_BLOCK_COMMENT = re.compile(r"(?<![^\s;(,])/\*.*?\*/", re.DOTALL)
_ALTER = re.compile(
    r"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?:[`\"\[]?\w+[`\"\]]?\.)?[`\"\[]?(\w+)[`\"\]]?"
    r"((?:(?!\n\s*\n|```)[^;])*)",  # up to its ; (not past a blank line or a fence)
    re.IGNORECASE,
)
_ALTER_COLUMN = re.compile(
    r"\b(ADD|DROP)\s+(?:COLUMN\s+)?(?:IF\s+(?:NOT\s+)?EXISTS\s+)?[`\"\[]?(\w+)", re.IGNORECASE
)
_NOT_COLUMNS = {"constraint", "primary", "foreign", "unique", "check", "key", "index", "exclude"}


def _table_body(text: str, open_paren: int) -> str:
    """The text between the parenthesis at ``open_paren`` and the one that closes it."""
    depth, quote = 0, ""
    for i in range(open_paren, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[open_paren + 1 : i]
    return text[open_paren + 1 :]


def _column_names(body: str) -> list[str]:
    """The columns a ``CREATE TABLE`` body defines: the first name of each top-level
    definition, comments and constraints left out."""
    body = _SQL_COMMENT.sub(" ", body)
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    names = []
    for part in parts:
        first = re.match(r"\s*[`\"\[]?(\w+)", part)
        if first and first.group(1).lower() not in _NOT_COLUMNS:
            names.append(first.group(1).lower())
    return names


def _python_comments_blanked(text: str) -> str:
    """``text`` with the comments and docstrings of its Python blocks blanked (their strings,
    where SQL usually is, kept)."""
    for block in fenced_blocks(text):
        if block.tag in ("python", "py", "python3", "py3"):
            at = text.index(block.body, block.start)
            text = text[:at] + without_comments(block.body) + text[at + len(block.body) :]
    return text


def _has_column(names: Sequence[str], column: str | Pattern[str]) -> bool:
    if isinstance(column, Pattern):
        return any(column.search(n) for n in names)
    return column.lower() in names


def sql_create_table(
    text: str,
    table: str | None = None,
    columns: Sequence[str | Pattern[str]] = (),
    name: str | None = None,
) -> CheckResult:
    """A ``CREATE TABLE`` (for ``table`` when given) defining ``columns`` (a name, or a
    compiled pattern any defined column may match); score counts the table and each column.
    A column counts only where it is defined: not in a comment (``--``, ``/* */``, a Python
    block's ``#``), a constraint or another table; ``ALTER TABLE ... ADD / DROP COLUMN`` after
    the ``CREATE TABLE`` change its columns, in order."""
    label = name or (f"table_{table}" if table else "create_table")
    tables: dict[str, list[str]] = {}
    # A statement commented out (--, a /* */ that opens where a statement may, a # comment of
    # a Python block) is not one; ALTER TABLE ... ADD / DROP COLUMN change the table, in order.
    sql = _BLOCK_COMMENT.sub(" ", _LINE_COMMENT.sub(" ", _python_comments_blanked(text)))
    statements = sorted([*_CREATE.finditer(sql), *_ALTER.finditer(sql)], key=lambda m: m.start())
    for m in statements:
        if m.re is _CREATE:
            body = _table_body(sql, m.end() - 1)
            tables.setdefault(m.group(1).lower(), []).extend(_column_names(body))
            continue
        altered = tables.get(m.group(1).lower())
        if altered is None:
            continue  # a table this answer never creates
        for change in _ALTER_COLUMN.finditer(m.group(2)):
            column = change.group(2).lower()
            if change.group(1).upper() == "DROP":
                altered[:] = [c for c in altered if c != column]
            elif column not in _NOT_COLUMNS:
                altered.append(column)
    if not tables:
        return CheckResult(label, 0.0, False, "no CREATE TABLE statement found")
    if table is not None and table.lower() not in tables:
        return CheckResult(label, 0.0, False, f"no table {table!r}; tables: {sorted(tables)}")
    defined = (
        [c for cols in tables.values() for c in cols] if table is None else tables[table.lower()]
    )
    missing = [
        c.pattern if isinstance(c, Pattern) else c for c in columns if not _has_column(defined, c)
    ]
    score = (1 + len(columns) - len(missing)) / (1 + len(columns))
    details = f"tables: {sorted(tables)}" + (f"; missing columns: {missing}" if missing else "")
    return CheckResult(label, score, not missing, details)


#: Words that negate what follows them in the same clause.
_NEGATION = re.compile(
    r"\b(not(?!\s+(only|just)\b)|no(?!\s+(more|less|fewer)\s+than\b|\s+matter\b)|never|without"
    r"|neither|nor|none|cannot|instead\s+of|rather\s+than|avoid\w*|skip(s|ped|ping)?|omit\w*"
    r"|forgo\w*)\b|\w+n['’]t\b",
    re.IGNORECASE,
)
#: Where a clause ends: punctuation, a dash, a blank line, a list item or a heading.
_CLAUSE_END = re.compile(r"[.!?;:,—]\s|[.!?]$|\n\s*\n|\n\s*([-*+]|\d+\.|#)\s", re.MULTILINE)


#: After a match, a statement that it is absent ("connection pooling is not used", "... isn't
#: needed", "... does not exist"), before the clause goes on.
_ABSENT = (
    r"(used|needed|required|necessary|supported|implemented|enabled|configured|included"
    r"|provided|present|available|applied)"
)
_NEGATED_AFTER = re.compile(
    r"\b(is|are|was|were|be|been)\s+(not|never)\s+(\w+\s+){0,2}?" + _ABSENT + r"\b"
    r"|\b(is|are|was|were|be|been)\s+(\w+\s+){0,2}?(unnecessary|unneeded|unused|omitted"
    r"|skipped|overkill)\b"
    r"|\b(isn|aren|wasn|weren)['’]t\s+(\w+\s+){0,2}?" + _ABSENT + r"\b"
    r"|\b(do|does|did)\s+not\s+(exist|apply)\b|\b(don|doesn|didn)['’]t\s+(exist|apply)\b",
    re.IGNORECASE,
)
#: Right after a match used as a label, a verdict that it is absent: "Connection pool: not
#: needed", "Connection pool? No.", "connection pool — none".
_LABEL_NEGATED = re.compile(
    r"[ \t]*[:?—–][ \t]*(not(?!\s+(only|just)\b)|no(?!\s+(more|less|fewer)\s+than\b|\s+matter\b)"
    r"|none|never|n/a)\b",
    re.IGNORECASE,
)
_CODE_COMMENT = re.compile(r"#|//|--")
_GOES_ON = re.compile(r"\b(and|but|while|so|then|because|which|that|where)\b", re.IGNORECASE)


class _Prose:
    """Where an answer's clauses and code blocks lie, found once per answer."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.code = [(b.start, b.end) for b in fenced_blocks(text)]
        breaks = list(_CLAUSE_END.finditer(text))
        self.break_starts = [m.start() for m in breaks]
        self.break_ends = [m.end() for m in breaks]

    def negated(self, start: int, end: int) -> bool:
        """True when the match ``start:end`` sits in a prose clause that negates it: a
        negation before it ("we do not use a connection pool") or, after it and before the
        clause goes on, a statement that it is absent ("connection pooling is not used").
        Code is never negated."""
        if any(a <= start < b for a, b in self.code):
            return self._negated_in_a_comment(start, end)
        if _LABEL_NEGATED.match(self.text, end):
            return True
        i = bisect.bisect_right(self.break_ends, start)
        clause_start = self.break_ends[i - 1] if i else 0
        j = bisect.bisect_left(self.break_starts, end)
        clause_end = self.break_starts[j] if j < len(self.break_starts) else len(self.text)
        goes_on = _GOES_ON.search(self.text, end, clause_end)
        after_end = goes_on.start() if goes_on else clause_end
        return bool(
            _NEGATION.search(self.text, clause_start, start)
            or _NEGATED_AFTER.search(self.text, end, after_end)
        )

    def _negated_in_a_comment(self, start: int, end: int) -> bool:
        """In code, only a comment (``#``, ``//``, ``--``) on the match's line negates, as a
        clause of prose: "# no connection pool here"."""
        line_start = self.text.rfind("\n", 0, start) + 1
        line_end = self.text.find("\n", end)
        line_end = len(self.text) if line_end < 0 else line_end
        comment = _CODE_COMMENT.search(self.text, line_start, start)
        if comment is None:
            return False
        return bool(
            _NEGATION.search(self.text, comment.end(), start)
            or _NEGATED_AFTER.search(self.text, end, line_end)
            or _LABEL_NEGATED.match(self.text, end)
        )


def phrases(
    text: str,
    required: Sequence[str | Pattern[str]] = (),
    forbidden: Sequence[str | Pattern[str]] = (),
    name: str = "phrases",
    *,
    negation: bool = True,
) -> CheckResult:
    """Required patterns present and forbidden ones absent (strings are case-insensitive
    regexes); score = fraction satisfied, with two rules so that a wrong answer earns nothing
    by default:

    - a pattern counts only where it is not negated: a required one found only in prose
      clauses with a negation before it ("we do not use a connection pool") or a statement
      after it that it is absent ("connection pooling is not used") is missing, a
      forbidden one found only so ("never use SELECT *") is not present (``negation=False``
      counts every occurrence; fenced code is never negated; "not only", "no more than" and
      "no matter" do not negate);
    - an absent forbidden pattern earns its point only in proportion to the required ones
      found: an empty or off-topic answer scores 0, not the share of the forbidden ones. With
      no required patterns, an empty answer scores 0.
    """
    total = len(required) + len(forbidden)
    if total == 0:
        raise ValueError("phrases() needs required or forbidden patterns")
    if not text or not text.strip():
        return CheckResult(name, 0.0, False, "empty answer")
    prose = _Prose(text)

    def compiled(pattern: str | Pattern[str]) -> Pattern[str]:
        return pattern if isinstance(pattern, Pattern) else re.compile(pattern, re.I | re.M)

    def show(p: str | Pattern[str]) -> str:
        return p.pattern if isinstance(p, Pattern) else p

    missing: list[str] = []
    negated: list[str] = []
    for pattern in required:
        matches = list(compiled(pattern).finditer(text))
        if not matches:
            missing.append(show(pattern))
        elif negation and all(prose.negated(m.start(), m.end()) for m in matches):
            clause = text[max(0, matches[0].start() - 40) : matches[0].end()].split("\n")[-1]
            negated.append(f"{show(pattern)} (in {clause.strip()!r})")
    present = [
        show(p)
        for p in forbidden
        if any(
            not (negation and prose.negated(m.start(), m.end())) for m in compiled(p).finditer(text)
        )
    ]
    found = len(required) - len(missing) - len(negated)
    share = found / len(required) if required else 1.0
    score = (found + share * (len(forbidden) - len(present))) / total
    details = []
    if missing:
        details.append(f"missing: {missing}")
    if negated:
        details.append(f"only negated: {negated}")
    if present:
        details.append(f"forbidden but present: {present}")
    if required and forbidden and share < 1:
        details.append(f"forbidden patterns absent earn {share:.0%} (the required found)")
    return CheckResult(name, score, score == 1.0, "; ".join(details) or "all satisfied")


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def sections_with_code(text: str, sections: Sequence[str], name: str = "sections") -> CheckResult:
    """Each named Markdown section exists (a heading outside code blocks) and contains a
    fenced code block that is not empty (not bullets)."""
    blocks = fenced_blocks(text)

    def in_code(at: int) -> bool:
        return any(b.start <= at < b.end for b in blocks)

    heads = [h for h in _HEADING.finditer(text) if not in_code(h.start())]
    missing, no_code = [], []
    for section in sections:
        idx = next((i for i, h in enumerate(heads) if section.lower() in h.group(2).lower()), None)
        if idx is None:
            missing.append(section)
            continue
        level = len(heads[idx].group(1))
        start = heads[idx].end()
        end = next((h.start() for h in heads[idx + 1 :] if len(h.group(1)) <= level), len(text))
        if not any(start <= b.start < end and b.body.strip() for b in blocks):
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
