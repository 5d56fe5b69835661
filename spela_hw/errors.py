"""One hierarchy of errors for the whole toolkit.

Every error a user can trigger by bad input is a :class:`SpelaError`. Configuration errors also
derive from :class:`ValueError` so that generic ``except ValueError`` code keeps working, and they
name the offending field so that a message always says *what* was wrong.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = [
    "SpelaError",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "CapacityError",
    "MappingError",
    "SaturationError",
    "ModelFileError",
    "DivergenceError",
    "naming_file",
]


class SpelaError(Exception):
    """Base class of every error raised by spela-hw."""


class ConfigError(SpelaError, ValueError):
    """A specification, configuration or argument is invalid.

    Parameters
    ----------
    field : str
        Dotted name of the offending field, e.g. ``"weight.bits"``.
    message : str
        What is wrong with it.
    file : str or path-like, optional
        The file the field was read from; named first in the message.
    """

    def __init__(self, field: str, message: str, file=None):
        self.field = field
        self.message = message
        self.file = None if file is None else str(file)
        super().__init__(f"{field}: {message}" if file is None else f"{file}: {field}: {message}")


class DataError(SpelaError, ValueError):
    """A data file or array is malformed (wrong magic, truncated, bad digest, NaN, wrong shape)."""


class DatasetNotFoundError(DataError):
    """A dataset's files are in none of the places searched. ``where`` lists the places and the
    files; the message adds the Python API's remedies (a command line names its own options)."""

    def __init__(self, name: str, where: str, remedy: str):
        self.name = name
        self.where = where
        super().__init__(f"{where} {remedy}")


class CapacityError(SpelaError):
    """A network or workload does not fit the hardware it was mapped onto."""


class MappingError(SpelaError):
    """A network or rule cannot be mapped onto the requested backend (e.g. spiking neurons)."""


class SaturationError(SpelaError, ArithmeticError):
    """A fixed-point value overflowed its format while the overflow policy was ``"raise"``."""


class ModelFileError(SpelaError, ValueError):
    """A saved model file is corrupt, truncated or of an incompatible format version."""


class DivergenceError(SpelaError, ArithmeticError):
    """Training diverged: weights became NaN or infinite (typically a learning rate too large)."""


@contextmanager
def naming_file(path):
    """Name ``path`` in every :class:`ConfigError` raised inside (unless it names a file already).

    Validation code reports the field; the reader of a file adds which file it came from.
    """
    try:
        yield
    except ConfigError as exc:
        if exc.file is not None:
            raise
        raise ConfigError(exc.field, exc.message, file=path) from None
