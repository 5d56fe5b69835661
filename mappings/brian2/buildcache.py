"""A persistent folder per network shape for Brian2's ``cpp_standalone`` projects.

Brian2 rewrites a generated source file only when its text changes and ``make`` recompiles only
the files it rewrote, so a project folder reused by a run whose generated code is identical
compiles nothing, and one whose code differs in a few constants recompiles only those files.
The key below therefore only groups runs that are likely to share most of their code (network
shape, target options, Brian2 and Python versions); correctness comes from the generated code
itself. One run at a time owns a folder (an exclusive ``flock``); a run that finds it in use,
or no writable cache, builds in a temporary folder instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
from pathlib import Path

__all__ = ["build_cache_root", "cached_build_dir"]

log = logging.getLogger(__name__)


def build_cache_root() -> Path:
    """Where compiled projects are kept: ``$SPELA_HW_CACHE/brian2`` (default
    ``$XDG_CACHE_HOME/spela-hw/brian2`` or ``~/.cache/spela-hw/brian2``)."""
    root = os.environ.get("SPELA_HW_CACHE") or \
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "spela-hw"
    return Path(root) / "brian2"


@contextlib.contextmanager
def cached_build_dir(key: dict):
    """Yield a project folder for ``key`` that no other run is using, or ``None`` (then build
    in a temporary folder). The folder stays locked until the context exits."""
    from importlib import metadata

    try:
        full = dict(key, brian2=metadata.version("brian2"), python=platform.python_version(),
                    machine=platform.machine())
        digest = hashlib.sha256(json.dumps(full, sort_keys=True).encode()).hexdigest()[:16]
        folder = build_cache_root() / f"spike-{digest}"
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except (OSError, metadata.PackageNotFoundError) as exc:
        log.info("no Brian2 build cache (%s): building in a temporary folder", exc)
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("the Brian2 build cache %s is in use: building in a temporary folder", folder)
            yield None
            return
        yield str(folder)
    finally:
        os.close(fd)  # releases the lock
