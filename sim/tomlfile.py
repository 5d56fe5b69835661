"""The one reader of TOML files (users' configs and the shipped presets and tables).

Whatever is wrong with the file (missing, unreadable, not UTF-8, not TOML), the error is a
:class:`~spela_hw.errors.ConfigError` that names the file; field errors found later are given the
file's name by :func:`spela_hw.errors.naming_file`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from spela_hw.errors import ConfigError

__all__ = ["read_toml"]


def read_toml(source, where: str) -> dict:
    """Parse a TOML file into a dict.

    Parameters
    ----------
    source : path-like or importlib.resources.abc.Traversable
        The file (a shipped resource or a user's file).
    where : str
        What the file configures (``"hardware"``, ``"sweep"``, ...): the field of file-level errors.

    Raises
    ------
    ConfigError
        Naming the file: missing, unreadable, not UTF-8 text or not valid TOML.
    """
    if isinstance(source, (str, bytes)) or hasattr(source, "__fspath__"):
        source = Path(source)
    try:
        raw = source.read_bytes()
    except FileNotFoundError:
        raise ConfigError(where, "no such file", file=source) from None
    except OSError as exc:
        raise ConfigError(where, f"cannot read: {exc.strerror or exc}", file=source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(where, f"not UTF-8 text (byte {raw[exc.start:exc.start + 1]!r} at offset "
                                 f"{exc.start}); TOML files are UTF-8", file=source) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, f"not valid TOML: {exc}", file=source) from None
    except RecursionError:
        raise ConfigError(where, "not valid TOML: nested too deeply", file=source) from None
