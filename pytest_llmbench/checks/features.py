"""A checklist of named predicates over the code: score = fraction found, missing listed.

Predicates read the AST when the code parses and fall back to a regex approximation when it
does not, so a truncated program still gets credit for what is visibly there. Regexes search
the code with its comments and docstrings blanked: a feature only mentioned in prose is not
found.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import tokenize
from collections.abc import Callable, Mapping
from functools import lru_cache

from pytest_llmbench.check_result import CheckResult, parse_error
from pytest_llmbench.errors import check_failed

Predicate = Callable[[str], bool]


@lru_cache(maxsize=64)
def _tree(code: str) -> ast.Module | None:
    return None if parse_error(code) else ast.parse(code)


_STATEMENT_START = (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)


@lru_cache(maxsize=64)
def without_comments(code: str) -> str:
    """``code`` with its ``#`` comments and docstrings (a string that is a statement of its
    own) blanked out, other strings kept: a feature only named in prose is not in the program.
    Code that stops tokenizing (cut off) keeps what was found up to that point blanked."""
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    tokens: list[tokenize.TokenInfo] = []
    with contextlib.suppress(tokenize.TokenError, SyntaxError):  # keep the tokens before it
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            tokens.append(token)
    solid = [t for t in tokens if t.type not in (tokenize.NL, tokenize.COMMENT)]
    prose = [t for t in tokens if t.type == tokenize.COMMENT]
    for i, t in enumerate(solid):
        if t.type != tokenize.STRING:
            continue
        before = solid[i - 1].type if i else tokenize.NEWLINE
        after = solid[i + 1].type if i + 1 < len(solid) else tokenize.ENDMARKER
        if before in _STATEMENT_START and after in (tokenize.NEWLINE, tokenize.ENDMARKER):
            prose.append(t)
    chars = list(code)
    for t in prose:
        first = starts[t.start[0] - 1] + t.start[1]
        last = starts[t.end[0] - 1] + t.end[1]
        for k in range(first, min(last, len(chars))):
            if chars[k] != "\n":
                chars[k] = " "
    return "".join(chars)


def regex(
    pattern: str, flags: int = re.IGNORECASE | re.MULTILINE, *, comments: bool = False
) -> Predicate:
    """True when ``pattern`` occurs in the code outside comments and docstrings; with
    ``comments=True`` anywhere (``not_(regex("TODO", comments=True))``: no TODO left)."""
    compiled = re.compile(pattern, flags)
    if comments:
        return lambda code: compiled.search(code) is not None
    return lambda code: compiled.search(without_comments(code)) is not None


def imports(module: str) -> Predicate:
    """``import module`` / ``from module import ...`` (also submodules)."""
    fallback = regex(
        rf"^\s*(import\s+[\w., ]*\b{re.escape(module)}\b|from\s+{re.escape(module)}\b)"
    )

    def check(code: str) -> bool:
        tree = _tree(code)
        if tree is None:
            return fallback(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(
                a.name == module or a.name.startswith(module + ".") for a in node.names
            ):
                return True
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and (node.module == module or node.module.startswith(module + "."))
            ):
                return True
        return False

    return check


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def calls(name: str) -> Predicate:
    """A call to ``name`` (``input``) or a dotted name ending so (``argparse.ArgumentParser``
    matches ``argparse.ArgumentParser(...)`` and ``ArgumentParser(...)``)."""
    last = name.rsplit(".", 1)[-1]
    fallback = regex(rf"\b{re.escape(last)}\s*\(", re.MULTILINE)

    def check(code: str) -> bool:
        tree = _tree(code)
        if tree is None:
            return fallback(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                called = _dotted(node.func)
                if called in (name, last) or called.endswith("." + last):
                    return True
        return False

    return check


def defines(name: str) -> Predicate:
    """A function or class called ``name`` (a regex, e.g. ``r"\\w*add\\w*"``)."""
    pattern = re.compile(rf"^{name}$")
    fallback = regex(rf"^\s*(async\s+def|def|class)\s+{name}\b")

    def check(code: str) -> bool:
        tree = _tree(code)
        if tree is None:
            return fallback(code)
        return any(
            isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and pattern.match(n.name)
            for n in ast.walk(tree)
        )

    return check


def main_block() -> Predicate:
    """``if __name__ == "__main__":``"""
    return regex(r"^if\s+__name__\s*==\s*['\"]__main__['\"]\s*:")


def any_of(*predicates: Predicate) -> Predicate:
    return lambda code: any(p(code) for p in predicates)


def all_of(*predicates: Predicate) -> Predicate:
    return lambda code: all(p(code) for p in predicates)


def not_(predicate: Predicate) -> Predicate:
    return lambda code: not predicate(code)


def features(code: str | None, checklist: Mapping[str, Predicate | str]) -> CheckResult:
    """Score = fraction of ``checklist`` found (a string is a regex)."""
    if not checklist:
        raise ValueError("features() needs at least one named predicate")
    if not code or not code.strip():
        return CheckResult("features", 0.0, False, "no code found", "no code found")
    found: list[str] = []
    missing: list[str] = []
    for name, predicate in checklist.items():
        check = regex(predicate) if isinstance(predicate, str) else predicate
        try:
            ok = bool(check(code))
        except (RecursionError, ValueError):
            ok = False  # code too deep or not parseable for this predicate: not found
        except Exception as exc:
            raise check_failed("features", f"predicate {name!r}", exc) from exc
        (found if ok else missing).append(name)
    score = len(found) / len(checklist)
    details = f"{len(found)}/{len(checklist)} found"
    if missing:
        details += "; missing: " + ", ".join(missing)
    return CheckResult("features", score, not missing, details)
