"""Writing result files safely: atomic replacement, durable appends, tables as CSV and Parquet.

Every file a report or a sweep writes is either complete or absent: whole files are written to a
temporary file in the same directory and moved into place with :func:`os.replace`; result logs are
appended one complete line at a time and flushed to disk (``fsync``) before the next result is
accepted, so a killed process loses at most the line it was writing, which the reader ignores.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "write_table",
    "append_json_line",
    "read_json_lines",
    "repair_json_lines",
    "parquet_available",
]

log = logging.getLogger(__name__)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file + fsync + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


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
    line = (json.dumps(record, sort_keys=True, allow_nan=False, default=_json_default) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


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
