"""The public API is what ``pytest_llmbench.__all__`` names, nothing less and nothing more
(as httpx's tests/test_exported_members.py pins its own), and installing the plugin brings
the pytest plugins the README relies on."""

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement

import pytest_llmbench

ROOT = Path(__file__).resolve().parents[1]


def test_all_names_the_whole_public_namespace() -> None:
    exported = pytest_llmbench.__all__  # its order is ruff's (RUF022)
    assert len(exported) == len(set(exported))
    for name in exported:  # lazy names resolve (and then sit in the namespace)
        getattr(pytest_llmbench, name)
    public = {
        name
        for name, value in vars(pytest_llmbench).items()
        if not name.startswith("_")
        # submodules become attributes when imported; only ``checks`` is API
        and not (isinstance(value, ModuleType) and name != "checks")
    }
    assert public == set(exported)
    assert set(dir(pytest_llmbench)) >= set(exported)


def test_exported_objects_are_the_plugins_own() -> None:
    for name in pytest_llmbench.__all__:
        value = getattr(pytest_llmbench, name)
        owner = value.__name__ if isinstance(value, ModuleType) else value.__module__
        assert owner.startswith("pytest_llmbench."), (name, owner)


def test_names_the_readme_and_examples_import_from_the_package_are_exported() -> None:
    texts = [(ROOT / "README.md").read_text()]
    texts += [p.read_text() for p in (ROOT / "examples").rglob("*.py")]
    imported = {
        name.strip()
        for text in texts
        for names in re.findall(r"^from pytest_llmbench import ([\w, ]+)$", text, re.M)
        for name in names.split(",")
    }
    assert imported, "the README imports nothing from pytest_llmbench any more?"
    assert imported <= set(pytest_llmbench.__all__)


def test_importing_the_package_leaves_the_checks_and_sandbox_unloaded() -> None:
    """pytest imports the plugin on every start: the heavy parts load on first use."""
    code = (
        "import sys, pytest_llmbench\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pytest_llmbench.checks', "
        "'pytest_llmbench.sandbox', 'yaml'))))\n"
        "from pytest_llmbench import Step, checks\n"
        "assert checks.Step is Step\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        pytest_llmbench.nonexistent  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "nonexistent" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_pytest_xdist_and_pytest_timeout_install_with_the_plugin() -> None:
    """``-n N --dist loadgroup`` and pytest-timeout as the outer guard need no extra."""
    required = {
        Requirement(line).name
        for line in importlib.metadata.requires("pytest-llmbench") or []
        if "extra ==" not in line
    }
    assert {"pytest-xdist", "pytest-timeout"} <= required
