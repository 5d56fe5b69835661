"""Quantities with units: parsing ``"256 KB"`` or ``"0.9 V"`` into base units, and formatting.

Every number a user or a table file gives carries its unit; a bare number where a unit is
expected is a :class:`~spela_hw.errors.ConfigError` naming the field. Base units: bytes, bits,
metres, volts, seconds, hertz, joules, watts, ohms, siemens, square metres, samples per second.

Byte prefixes (:data:`BYTE_UNITS_HELP`, docs/hardware.md §2.1): ``KiB``/``MiB``/``GiB`` are the
IEC 1024-based units; ``kB`` (lower-case k) is the SI 1000 bytes. The ambiguous upper-case
``KB``/``MB``/``GB`` follow the JEDEC memory convention, the one memory datasheets and the
sources of our presets use: ``KB`` = ``KiB`` = 1024 bytes (so "256 KB" of SRAM is 262,144 bytes
and "32 KB" = 2**18 bits). Sizes are always printed in KiB/MiB/GiB. Spellings that could mean
bits or are mistyped (``kb``, ``Kb``, ``KIB``, ``kiB``) are refused with the accepted list.
"""

from __future__ import annotations

import math
import re

from spela_hw.errors import ConfigError

__all__ = ["DIMENSIONS", "BYTE_UNITS_HELP", "parse_quantity", "to_unit", "format_bytes", "format_si"]

#: The byte units accepted, as said in errors and in ``--help``.
BYTE_UNITS_HELP = ("B; KiB, MiB, GiB = 1024-based (IEC); kB = 1000 B (SI); KB, MB, GB = 1024-based "
                   "(JEDEC memory convention, same as KiB, MiB, GiB)")

# unit -> (dimension, factor to the base unit)
_UNITS: dict[str, tuple[str, float]] = {
    # information (KB/MB/GB: JEDEC, = KiB/MiB/GiB; kB: SI; see the module docstring)
    "B": ("bytes", 1.0), "kB": ("bytes", 1e3), "KB": ("bytes", 1024.0), "KiB": ("bytes", 1024.0),
    "MB": ("bytes", 1024.0**2), "MiB": ("bytes", 1024.0**2), "GB": ("bytes", 1024.0**3),
    "GiB": ("bytes", 1024.0**3),
    "bit": ("bits", 1.0), "b": ("bits", 1.0), "Kbit": ("bits", 1024.0), "Mbit": ("bits", 1024.0**2),
    # length
    "nm": ("length", 1e-9), "um": ("length", 1e-6), "µm": ("length", 1e-6), "mm": ("length", 1e-3),
    # voltage
    "V": ("voltage", 1.0), "mV": ("voltage", 1e-3),
    # time
    "ps": ("time", 1e-12), "ns": ("time", 1e-9), "us": ("time", 1e-6), "µs": ("time", 1e-6),
    "ms": ("time", 1e-3), "s": ("time", 1.0),
    # frequency
    "Hz": ("frequency", 1.0), "kHz": ("frequency", 1e3), "MHz": ("frequency", 1e6),
    "GHz": ("frequency", 1e9),
    # sample rate
    "S/s": ("rate", 1.0), "kS/s": ("rate", 1e3), "MS/s": ("rate", 1e6), "GS/s": ("rate", 1e9),
    # energy
    "fJ": ("energy", 1e-15), "pJ": ("energy", 1e-12), "nJ": ("energy", 1e-9),
    "uJ": ("energy", 1e-6), "µJ": ("energy", 1e-6), "mJ": ("energy", 1e-3), "J": ("energy", 1.0),
    # energy per bit (table entries)
    "fJ/bit": ("energy_per_bit", 1e-15), "pJ/bit": ("energy_per_bit", 1e-12),
    # power
    "uW": ("power", 1e-6), "µW": ("power", 1e-6), "mW": ("power", 1e-3), "W": ("power", 1.0),
    # resistance and conductance
    "ohm": ("resistance", 1.0), "kohm": ("resistance", 1e3), "Mohm": ("resistance", 1e6),
    "Ω": ("resistance", 1.0), "kΩ": ("resistance", 1e3), "MΩ": ("resistance", 1e6),
    "nS": ("conductance", 1e-9), "uS": ("conductance", 1e-6), "µS": ("conductance", 1e-6),
    "mS": ("conductance", 1e-3), "S": ("conductance", 1.0),
    # area
    "um2": ("area", 1e-12), "µm²": ("area", 1e-12), "mm2": ("area", 1e-6), "mm²": ("area", 1e-6),
    "F2": ("area_f2", 1.0), "F²": ("area_f2", 1.0),
    # bandwidth
    "B/s": ("bandwidth", 1.0), "MB/s": ("bandwidth", 1024.0**2), "GB/s": ("bandwidth", 1024.0**3),
    # dimensionless multipliers
    "x": ("ratio", 1.0),
}

DIMENSIONS = tuple(sorted({d for d, _ in _UNITS.values()}))

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\s\d].*?)?\s*$")


def parse_quantity(value, dimension: str, field: str) -> float:
    """Parse ``"<number> <unit>"`` into the base unit of ``dimension``.

    Parameters
    ----------
    value : str
        E.g. ``"256 KB"``, ``"0.9 V"``, ``"1 GHz"``. A bare number is rejected: the unit is part
        of the value.
    dimension : str
        One of :data:`DIMENSIONS`.
    field : str
        Dotted name used in the error message.

    Returns
    -------
    float
        The value in the base unit (bytes, volts, hertz, ...).
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    if isinstance(value, bool) or isinstance(value, (int, float)):
        raise ConfigError(field, f"needs a unit ({_example(dimension)}), got the bare number {value!r}")
    if not isinstance(value, str):
        raise ConfigError(field, f"must be a string like {_example(dimension)!r}, got {value!r}")
    m = _QUANTITY.match(value)
    if not m:
        raise ConfigError(field, f"cannot read {value!r} as '<number> <unit>'")
    number, unit = m.group(1), m.group(2)
    if not unit:
        raise ConfigError(field, f"needs a unit ({_example(dimension)}), got {value!r}")
    return to_unit(float(number), unit, dimension, field)


def to_unit(number: float, unit: str, dimension: str, field: str) -> float:
    """Convert ``number`` given in ``unit`` to the base unit of ``dimension`` (validating both)."""
    if unit not in _UNITS:
        accepted = BYTE_UNITS_HELP if dimension == "bytes" else f"e.g. {_example(dimension)}"
        raise ConfigError(field, f"unknown unit {unit!r} (expected a {dimension} unit: {accepted})")
    dim, factor = _UNITS[unit]
    if dim != dimension:
        raise ConfigError(field, f"unit {unit!r} is a {dim} unit, expected {dimension} "
                                 f"(e.g. {_example(dimension)})")
    x = float(number) * factor
    if not math.isfinite(x):
        raise ConfigError(field, f"must be finite, got {number!r}")
    return x


def _example(dimension: str) -> str:
    return {
        "bytes": "'256 KiB'", "bits": "'64 bit'", "length": "'22 nm'", "voltage": "'0.9 V'",
        "time": "'10 ns'", "frequency": "'1 GHz'", "rate": "'1 GS/s'", "energy": "'0.2 pJ'",
        "energy_per_bit": "'20.3125 pJ/bit'", "power": "'1.26 mW'", "resistance": "'100 kohm'",
        "conductance": "'10 uS'", "area": "'580 um2'", "area_f2": "'160 F2'", "ratio": "'1 x'",
        "bandwidth": "'12.8 GB/s'",
    }.get(dimension, dimension)


def format_bytes(n: float) -> str:
    """``813056`` -> ``"794.0 KiB"`` (binary prefixes, one decimal)."""
    n = float(n)
    for unit, scale in (("GiB", 1024.0**3), ("MiB", 1024.0**2), ("KiB", 1024.0)):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def format_si(x: float, unit: str) -> str:
    """``format_si(4.3e-7, "J")`` -> ``"430 nJ"`` (three significant digits)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g} {unit}"
    prefixes = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"),
                (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))
    for scale, p in prefixes:
        if abs(x) >= scale:
            return f"{x / scale:.3g} {p}{unit}"
    return f"{x / 1e-15:.3g} f{unit}"
