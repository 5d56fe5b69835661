"""Optional download of the standard files, verified before they become visible.

Each file is streamed into a temporary file next to its destination, hashed, checked against every
known digest and only then renamed into place with :func:`os.replace`; on any failure the temporary
file is removed, so a half-written or unverified file is never left behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DataError
from .locate import cache_dir
from .registry import dataset_info

__all__ = ["download_dataset"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_TIMEOUT_S = 60.0


def _fetch_verified(url: str, dest: Path, digests: dict[str, str], timeout_s: float) -> None:
    """Download ``url`` to ``dest`` atomically; raise DataError on a digest mismatch.

    Network errors propagate as ``OSError`` / ``urllib.error.URLError`` for the caller to try the
    next mirror.
    """
    hashers = {alg: hashlib.new(alg) for alg in digests}
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                for h in hashers.values():
                    h.update(chunk)
            out.flush()
            os.fsync(out.fileno())
        for alg, expected in digests.items():
            actual = hashers[alg].hexdigest()
            if actual != expected.lower():
                raise DataError(f"{dest.name} from {url}: {alg} digest mismatch: "
                                f"expected {expected}, got {actual}")
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def download_dataset(name: str, dest_dir: str | os.PathLike | None = None, *,
                     mirrors: tuple[str, ...] | None = None,
                     timeout_s: float = _TIMEOUT_S) -> Path:
    """Download the standard files of dataset ``name`` (first layout) and verify them.

    Files already present in ``dest_dir`` are kept (the loader verifies them). Mirrors are tried in
    order for each file.

    Parameters
    ----------
    name : str
        A dataset with mirrors (``"mnist"``, ``"fashion-mnist"``, ``"kmnist"``).
    dest_dir : path-like, optional
        Where to write; default :func:`~spela_hw.datasets.cache_dir` ``(name)``.
    mirrors : tuple of str, optional
        Base URLs overriding the registry's.
    timeout_s : float
        Socket timeout per request, seconds.

    Returns
    -------
    pathlib.Path
        The directory holding the files.

    Raises
    ------
    DataError
        When a file cannot be obtained from any mirror or fails its digest; nothing is left
        behind for that file.
    """
    info = dataset_info(name)
    bases = tuple(mirrors) if mirrors is not None else info.mirrors
    if not bases:
        raise DataError(f"dataset {info.name!r} has no download mirrors")
    dest = Path(dest_dir) if dest_dir is not None else cache_dir(info.name)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{dest}: cannot create download directory: {exc}") from exc
    for filename in info.layouts[0].filenames():
        target = dest / filename
        if target.is_file():
            continue
        digests = info.file_spec(filename).digests
        if not digests:
            log.warning("%s: no published digest is known; downloading unverified", filename)
        errors = []
        for base in bases:
            url = base.rstrip("/") + "/" + filename
            log.info("downloading %s -> %s", url, target)
            try:
                _fetch_verified(url, target, digests, timeout_s)
                break
            except DataError as exc:
                errors.append(str(exc))
            except (OSError, urllib.error.URLError, ValueError) as exc:
                errors.append(f"{url}: {exc}")
        else:
            raise DataError(f"{target}: download failed from every mirror:\n  "
                            + "\n  ".join(errors))
    return dest
