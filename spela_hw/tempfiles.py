"""Temporary files that a killed writer can leave behind, and their removal.

Every file spela-hw writes whole (model files here, report and sweep files in ``reports``) is
written to a temporary file ``.<name>.<pid>.<random>.tmp`` in the same folder and then moved into
place. The writer's process id in the name lets the next run remove what a killed writer left
(:func:`remove_stale_temporaries`) without ever touching the file of a writer that is still alive.
After the move the folder is flushed too (:func:`fsync_dir`), so that the rename survives a power cut.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

__all__ = ["temporary_prefix", "fsync_dir", "pid_alive", "remove_stale_temporaries"]

log = logging.getLogger(__name__)

_TMP_PID = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def temporary_prefix(path) -> str:
    """The ``prefix`` of :func:`tempfile.mkstemp` for a temporary copy of ``path`` (with ``suffix=".tmp"``)."""
    return f".{Path(path).name}.{os.getpid()}."


def fsync_dir(path) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory
        pass
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder, name: str | None = None, recursive: bool = True) -> int:
    """Remove temporary files (see the module docstring) whose writer is dead.

    Parameters
    ----------
    folder : path-like
        Where to look.
    name : str, optional
        Only the temporaries of this file name (default: of every file).
    recursive : bool
        Also below ``folder``.

    Returns the number removed. A live writer's temporary file is never touched.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    pattern = f".{name}.*.tmp" if name else ".*.tmp"
    removed = 0
    for tmp in (folder.rglob(pattern) if recursive else folder.glob(pattern)):
        m = _TMP_PID.match(tmp.name)
        if m and tmp.is_file() and not pid_alive(int(m.group(1))):
            try:
                tmp.unlink()
                removed += 1
            except FileNotFoundError:
                pass
    if removed:
        log.warning("%s: removed %d temporary file(s) left by a killed run", folder, removed)
    return removed
