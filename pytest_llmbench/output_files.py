"""Writing the run's files safely: paths checked before the run, writes atomic, links refused.

Every file the plugin writes (reports, baselines, recordings) goes through
:func:`write_atomic`: the text goes to a temporary file in the target's directory, is flushed
to disk, and is renamed over the target in one step. A reader never sees half a file, a failed
write (full disk, I/O error) leaves no 0-byte or partial file behind, and a symbolic link at
the target is refused rather than followed (a planted link cannot redirect a write).

:func:`problem_with_file` and :func:`problem_with_dir` say before the run whether a path can
be written at all, so a bad ``--llm-json`` is a usage error at configure time, not a traceback
after hours of benchmarking.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path


class OutputError(OSError):
    """A file could not be written; the message names the file and the reason."""


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists (the cwd for a bare name)."""
    current = path.absolute()
    while not current.exists() and not current.is_symlink() and current != current.parent:
        current = current.parent
    return current


def _probe(directory: Path) -> str | None:
    """Create and remove one file in ``directory``: the only honest writability test (file
    modes say nothing to root, nor about read-only or pseudo file systems)."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".llmbench-probe-")
    except OSError as exc:
        return f"cannot create files in {str(directory)!r} ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(name)
    return None


def _problem_with_parent(path: Path) -> str | None:
    ancestor = _existing_ancestor(path.parent)
    if not ancestor.is_dir():
        return f"{str(ancestor)!r} is a file, not a directory"
    return _probe(ancestor)


def problem_with_file(path: Path) -> str | None:
    """Why ``path`` cannot be written as a file, or ``None`` when it can."""
    if path.is_symlink():
        return "is a symbolic link; give the path of a regular file (links are not followed)"
    if path.is_dir():
        return "is a directory; give a file name inside it"
    if path.exists() and not path.is_file():
        return "is not a regular file"
    return _problem_with_parent(path)


def problem_with_dir(path: Path) -> str | None:
    """Why files cannot be written into the directory ``path`` (made if missing), or ``None``."""
    if path.exists() and not path.is_dir():
        return "is a file, not a directory"
    if path.is_dir():
        return _probe(path)
    return _problem_with_parent(path)


def _mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all; raises :class:`OutputError`."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise OutputError(f"{path}: {exc.strerror or exc}") from None
    else:
        if stat.S_ISLNK(st.st_mode):
            raise OutputError(f"{path} is a symbolic link; refusing to write through it")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{path} is not a regular file; refusing to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), _mode())
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        raise


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` across processes, so two runs choosing the next
    free number there cannot both take the same one. The lock is taken on the directory
    itself: no lock file is left where a user would commit it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise OutputError(f"cannot lock {directory}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


__all__ = ["OutputError", "locked", "problem_with_dir", "problem_with_file", "write_atomic"]
