"""README's layout map names every module of the package, and only modules that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pytest_llmbench"


def map_entries() -> set[str]:
    """The paths the map names, below ``pytest_llmbench/``, read from the indentation."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Layout\n") :]
    block = section[section.index("```\n") + 4 :]
    block = block[: block.index("```")]
    lines = block.splitlines()
    assert lines[0] == "pytest_llmbench/"
    entries: set[str] = set()
    folders: list[tuple[int, str]] = []  # (indent, name) of the enclosing folders
    for line in lines[1:]:
        match = re.match(r"( +)(\S+)", line)
        if not match or not line.startswith("  "):
            if not line.startswith(" "):
                break  # tests/, benchmarks/ ...: the package's map has ended
            continue  # a description carried over to the next line
        indent, name = len(match.group(1)), match.group(2)
        if indent % 2 or not (name.endswith(".py") or name.endswith("/")):
            continue
        folders = [(i, f) for i, f in folders if i < indent]
        path = "/".join([f for _, f in folders] + [name.rstrip("/")])
        entries.add(path + ("/" if name.endswith("/") else ""))
        if name.endswith("/"):
            folders.append((indent, name.rstrip("/")))
    return entries


def package_entries() -> set[str]:
    entries: set[str] = set()
    for path in PACKAGE.rglob("*"):
        relative = path.relative_to(PACKAGE).as_posix()
        if "__pycache__" in relative:
            continue
        if path.is_dir():
            entries.add(relative + "/")
        elif path.suffix == ".py" and (path.name != "__init__.py" or path.parent == PACKAGE):
            entries.add(relative)
    return entries


def test_the_layout_map_names_every_module_and_folder() -> None:
    named, present = map_entries(), package_entries()
    assert not present - named, f"modules missing from README's layout map: {present - named}"
    assert not named - present, f"README's layout map names what does not exist: {named - present}"


def test_the_top_of_the_package_stays_small() -> None:
    top = [p for p in PACKAGE.glob("*.py")]
    assert len(top) <= 15, sorted(p.name for p in top)


def test_where_a_change_belongs_names_modules_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Where a change belongs") :]
    section = section.split("\n## ", 1)[0]
    named = set(re.findall(r"`([\w/.-]+\.(?:py|json))`", section))
    named |= {f"{folder}/" for folder in re.findall(r"`([\w/]+)/`", section)}
    assert len(named) >= 10
    missing = [
        name for name in named if not (PACKAGE / name).exists() and not (ROOT / name).exists()
    ]
    assert not missing, f"README's 'Where a change belongs' names what does not exist: {missing}"
