"""Find or build a ``llama-server`` binary.

The binary is looked up in this order: an explicit path (``--llm-llama-server-bin``),
``$LLAMA_SERVER_BIN``, ``llama-server`` on ``PATH``, then the build cache. When none exists,
``python -m pytest_llmbench.tools.llama_server`` builds one from the llama.cpp source vendored
in a pinned ``llama-cpp-python`` sdist from PyPI (MIT), with ``-DGGML_NATIVE=OFF`` so the binary
runs on any x86-64 CPU of the machine it was built on, and ``-DBUILD_SHARED_LIBS=OFF`` so it does
not depend on a ``libllama.so`` left in the build tree. It takes minutes; only the first run pays.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from pytest_llmbench.tools.cache import cache_dir

#: The pinned sdist whose ``vendor/llama.cpp`` is built (llama.cpp commit 0c1e570).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"

CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_CURL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
)


class BuildError(RuntimeError):
    """The llama-server build failed; the message says at which step and how to retry."""


def cached_binary(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    """Path where the build for ``version`` is (or will be) cached."""
    return cache_dir() / "llama-server" / f"llama-cpp-python-{version}" / "llama-server"


def find_llama_server(explicit: str | None = None) -> Path | None:
    """The binary to use, or ``None`` when there is none anywhere (see module docstring)."""
    if explicit:
        found = shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
        return Path(found) if found else None
    env = os.environ.get("LLAMA_SERVER_BIN")
    if env:
        return Path(env) if Path(env).is_file() else None
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    cached = cached_binary()
    return cached if cached.is_file() else None


def _run(cmd: list[str], step: str, cwd: Path | None = None) -> None:
    print(f"[llama-server build] {step}: {' '.join(cmd)}", flush=True)
    proc = subprocess.run(cmd, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise BuildError(
            f"{step} failed (exit {proc.returncode}). Check that cmake, a C++ compiler and "
            f"network access to PyPI are available, then re-run "
            f"`python -m pytest_llmbench.tools.llama_server`."
        )


def _extract_vendored_source(sdist: Path, dest: Path) -> Path:
    """Extract only ``vendor/llama.cpp`` from the sdist; returns the llama.cpp source dir."""
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name + "/"]
        if not members:
            raise BuildError(f"{sdist.name} has no vendor/llama.cpp directory")
        tar.extractall(dest, members=members, filter="data")
    roots = list(dest.glob("*/vendor/llama.cpp"))
    if not roots:
        raise BuildError(f"could not find vendor/llama.cpp after extracting {sdist.name}")
    return roots[0]


def build(
    version: str = LLAMA_CPP_PYTHON_VERSION, jobs: int | None = None, force: bool = False
) -> Path:
    """Build ``llama-server`` from the pinned sdist and cache it; returns the binary's path."""
    target = cached_binary(version)
    if target.is_file() and not force:
        print(f"[llama-server build] cached: {target}", flush=True)
        return target
    if shutil.which("cmake") is None:
        raise BuildError("cmake is not installed: install it (e.g. `apt-get install cmake g++`)")
    jobs = jobs or os.cpu_count() or 2
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmbench-build-") as tmp:
        work = Path(tmp)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={version}",
                "-d",
                str(work),
            ],
            "download sdist",
        )
        sdists = list(work.glob("llama_cpp_python-*.tar.gz"))
        if not sdists:
            raise BuildError(f"pip did not download llama-cpp-python=={version} as an sdist")
        src = _extract_vendored_source(sdists[0], work / "src")
        build_dir = work / "build"
        _run(["cmake", "-S", str(src), "-B", str(build_dir), *CMAKE_FLAGS], "configure")
        _run(
            [
                "cmake",
                "--build",
                str(build_dir),
                "--config",
                "Release",
                "--target",
                "llama-server",
                "-j",
                str(jobs),
            ],
            f"compile ({jobs} jobs; several minutes)",
        )
        built = build_dir / "bin" / "llama-server"
        if not built.is_file():
            raise BuildError(f"the build finished but {built} does not exist")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copy2(built, partial)
        partial.replace(target)  # atomic: a concurrent reader never sees half a binary
    print(f"[llama-server build] done in {time.monotonic() - started:.0f} s: {target}", flush=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llmbench.tools.llama_server",
        description="Find, or build and cache, a llama-server binary.",
    )
    parser.add_argument(
        "--version",
        default=LLAMA_CPP_PYTHON_VERSION,
        help="llama-cpp-python sdist version whose vendored llama.cpp is built",
    )
    parser.add_argument("--jobs", type=int, default=None, help="parallel compile jobs")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument(
        "--print-path",
        action="store_true",
        help="only print the binary that would be used (exit 1 if none)",
    )
    args = parser.parse_args(argv)
    if args.print_path:
        found = find_llama_server()
        print(found or "")
        return 0 if found else 1
    if not args.force and args.version == LLAMA_CPP_PYTHON_VERSION:
        found = find_llama_server()
        if found:
            print(f"[llama-server build] using existing binary: {found}", flush=True)
            return 0
    try:
        build(args.version, args.jobs, args.force)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
