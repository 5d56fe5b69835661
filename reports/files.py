"""Writing result files safely: atomic replacement, durable appends, tables as CSV and Parquet.

Every file a report or a sweep writes is either complete or absent: whole files are written to a
temporary file in the same directory and moved into place with :func:`os.replace`; result logs are
appended one complete line at a time and flushed to disk (``fsync``) before the next result is
accepted, so a killed process loses at most the line it was writing, which the reader ignores.

Temporary files carry the writer's PID (``.<name>.<pid>.<random>.tmp``), so the next run can remove
the ones a killed writer left (:func:`remove_stale_temporaries`) without touching a live writer's.
One writer per output folder is enforced with :func:`exclusive_lock`.
"""

from __future__ import annotations

import fcntl
import glob
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from spela_hw import jsonio
from spela_hw.errors import ConfigError
from spela_hw.tempfiles import fsync_dir, pid_alive, remove_stale_temporaries, temporary_prefix

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "write_table",
    "append_json_line",
    "read_json_lines",
    "repair_json_lines",
    "parquet_available",
    "exclusive_lock",
    "pid_alive",
    "fsync_dir",
    "remove_stale_temporaries",
    "remove_stale_dirs",
]

log = logging.getLogger(__name__)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + fsync + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)  # the rename itself must survive a power cut
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


@contextmanager
def exclusive_lock(lock_path, what: str, target, field: str = "out"):
    """Hold an exclusive, non-blocking lock on ``lock_path`` while the block runs.

    The lock file records the holder's PID. A second holder gets a :class:`ConfigError` naming
    ``target`` and that PID; a place where the lock cannot be created (a file where a directory is
    expected, no write permission) gets a :class:`ConfigError` naming the path. The kernel drops the
    lock when the holder dies, so a killed run never blocks the next one.

    Parameters
    ----------
    lock_path : path-like
        The lock file (created with its parent folders).
    what : str
        Who writes, for the message ("sweep", "report").
    target : path-like
        What the lock protects, for the message.
    field : str
        Config field named by the errors.
    """
    lock_path = Path(lock_path)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileExistsError:
        raise ConfigError(field, f"{lock_path.parent} exists and is not a directory") from None
    except OSError as exc:  # a file on the way, no permission, a read-only file system
        raise ConfigError(field, f"cannot write in {lock_path.parent}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise ConfigError(field, f"another {what} is writing {target} (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def remove_stale_dirs(folder, prefix: str) -> int:
    """Remove ``<folder>/<prefix><pid>`` directories whose process is dead (or is this one).

    Returns the number removed. Used for a report's staging folders, ``.<name>.partial-<pid>``.
    """
    folder = Path(folder)
    removed = 0
    if not folder.is_dir():
        return 0
    for d in folder.glob(f"{glob.escape(prefix)}*"):
        pid = d.name[len(prefix):]
        if d.is_dir() and pid.isdigit() and (int(pid) == os.getpid() or not pid_alive(int(pid))):
            shutil.rmtree(d, ignore_errors=True)
            removed += 1
    if removed:
        log.warning("%s: removed %d folder(s) %s* left by a killed run", folder, removed, prefix)
    return removed


def atomic_write_text(path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def parquet_available() -> bool:
    """True when pandas can write Parquet (pyarrow importable)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def write_table(df, folder, name: str, parquet: bool | None = None) -> list[Path]:
    """Write a DataFrame as ``name.csv`` (and ``name.parquet`` when pyarrow is present).

    Returns the paths written. Both files are written atomically.
    """
    import io

    folder = Path(folder)
    paths = [atomic_write_text(folder / f"{name}.csv", df.to_csv(index=False, lineterminator="\n"))]
    if parquet is None:
        parquet = parquet_available()
    if parquet:
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        paths.append(atomic_write_bytes(folder / f"{name}.parquet", buf.getvalue()))
    return paths


def append_json_line(path, record: dict) -> None:
    """Append one JSON object as one line and fsync it before returning.

    The line is written with a single ``write`` on a file opened with ``O_APPEND``, so concurrent
    writers never interleave within a line; the caller is the only writer in practice.
    """
    line = (jsonio.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def repair_json_lines(path) -> int:
    """Cut a trailing partial line (left by a killed writer) so appends start on a fresh line.

    Returns the number of bytes removed (0 when the file is absent or already ends in a newline).
    """
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        # Scan back to the last newline; results are small, so reading the tail is cheap.
        block = 1 << 16
        pos = size
        keep = 0
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            i = chunk.rfind(b"\n")
            if i >= 0:
                keep = start + i + 1
                break
            pos = start
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    log.warning("%s: removed a partial last line (%d bytes) left by an interrupted run", path, size - keep)
    return size - keep


def read_json_lines(path) -> list[dict]:
    """All complete JSON lines of ``path`` (a partial or corrupt line is skipped with a warning)."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    with open(path, "rb") as fh:
        for i, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                log.warning("%s:%d: ignoring a partial last line", path, i)
                break
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as exc:
                log.warning("%s:%d: ignoring a corrupt line (%s)", path, i, exc)
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out
