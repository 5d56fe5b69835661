"""Where dataset files are searched, in order.

1. the explicit ``data_dir`` argument (either the dataset's own directory or a root holding
   ``<name>/``): when it is given, it is the only place searched (an explicit directory is used
   or refused, never replaced by another copy);
2. ``$SPELA_HW_DATA/<name>`` (a root with one subdirectory per dataset: ``mnist/``,
   ``fashion-mnist/``, ``kmnist/``, ``cifar10/``, ``svhn/``);
3. the per-user cache ``$XDG_CACHE_HOME/spela-hw/datasets/<name>`` (default ``~/.cache``), where
   downloads go;
4. the system directories ``/usr/local/share/datasets/<name>`` and ``/usr/share/datasets/<name>``
   (Debian's ``dataset-fashion-mnist`` installs ``/usr/share/datasets/fashion-mnist``);
5. for bundled data only, the package's own directory.

A directory holds a dataset when every file of one of its layouts is present there.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError, DatasetNotFoundError
from .registry import DatasetInfo, Layout, dataset_info

__all__ = ["DATA_ENV_VAR", "SYSTEM_DATA_DIRS", "cache_dir", "candidate_dirs", "find_layout",
           "find_dataset_dir"]

DATA_ENV_VAR = "SPELA_HW_DATA"
#: System-wide data roots, searched after the user cache (patchable in tests).
SYSTEM_DATA_DIRS: tuple[str, ...] = ("/usr/local/share/datasets", "/usr/share/datasets")


def cache_dir(name: str | None = None) -> Path:
    """Per-user dataset cache: ``$XDG_CACHE_HOME/spela-hw/datasets[/<name>]`` (``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    root = Path(base) / "spela-hw" / "datasets"
    return root / dataset_info(name).name if name is not None else root


def candidate_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Every directory searched for dataset ``name``, in search order (see module docstring)."""
    info = dataset_info(name)
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        return [d, d / info.name]
    dirs: list[Path] = []
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        dirs.append(Path(env).expanduser() / info.name)
    dirs.append(cache_dir(info.name))
    dirs += [Path(s) / info.name for s in SYSTEM_DATA_DIRS]
    if info.builtin_dir is not None:
        dirs.append(Path(__file__).resolve().parent / info.builtin_dir)
    return dirs


def find_layout(info: DatasetInfo, directory: Path) -> Layout | None:
    """The first layout of ``info`` whose files are all present in ``directory``, if any."""
    for layout in info.layouts:
        if all((directory / f).is_file() for f in layout.filenames()):
            return layout
    return None


def find_dataset_dir(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """The first directory (in search order) that holds a complete copy of dataset ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`~spela_hw.datasets.DATASETS`.
    data_dir : path-like, optional
        The only place searched when given: the dataset's directory itself, or a root
        containing ``<name>/``.

    Raises
    ------
    DataError
        When no place holds the files (:class:`~spela_hw.errors.DatasetNotFoundError`); the
        message lists every place looked and the file names expected.
    """
    info = dataset_info(name)
    dirs = candidate_dirs(info.name, data_dir)
    for d in dirs:
        if find_layout(info, d) is not None:
            return d
    wanted = " or ".join("{" + ", ".join(lay.filenames()) + "}" for lay in info.layouts)
    looked = "\n".join(f"  - {d}" for d in dirs)
    if data_dir is not None:
        raise DataError(f"dataset {info.name!r} not found in data_dir {data_dir}. Looked in:\n{looked}\n"
                        f"for the files {wanted}.")
    raise DatasetNotFoundError(
        info.name, f"dataset {info.name!r} not found. Looked in:\n{looked}\nfor the files {wanted}.",
        f"Set {DATA_ENV_VAR} to a directory containing {info.name}/, pass data_dir="
        + (", or use download=True." if info.mirrors else
           f" (it cannot be downloaded by spela-hw: get it from {info.homepage})."))
