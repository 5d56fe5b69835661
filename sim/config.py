"""Hardware descriptions: frozen, validated dataclasses grouped by concern, read from TOML.

A :class:`HardwareConfig` bundles

* :class:`TechnologyConfig`: node, Vdd, clock, digital MAC parallelism;
* :class:`CrossbarConfig`: array rows x columns, bits per cell, rows read at once, transposable
  arrays (``None`` for a digital device without crossbars);
* :class:`DeviceConfig`: the memory cell (conductances, pulses, levels, variation, faults,
  endurance);
* :class:`PeripheryConfig`: bit-serial inputs or DAC bits, ADC bits (forward and error path),
  columns per ADC, ADC rate;
* :class:`BufferLevel` tuple: on-chip SRAM and flash/ROM levels with sizes and bank sizes;
* :class:`DramConfig`: off-chip DRAM (or none);
* :class:`ChipConfig`: the calibrated chip-level model (periphery, pipelining, area) a preset
  reproduces a published table with (``None`` for uncalibrated presets; :mod:`sim.periphery`);
* :class:`Conventions`: the named switches where published models disagree; every output prints
  them (:meth:`Conventions.describe`).

Every quantity in a file carries its unit (``node = "22 nm"``). Unknown keys, missing units and
out-of-range values raise :class:`~spela_hw.errors.ConfigError` naming the dotted field.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from spela_hw.errors import ConfigError, naming_file

from .tomlfile import read_toml
from .units import parse_quantity

__all__ = [
    "TechnologyConfig",
    "DeviceConfig",
    "CrossbarConfig",
    "PeripheryConfig",
    "BufferLevel",
    "DramConfig",
    "Conventions",
    "ChipConfig",
    "HardwareConfig",
    "hardware_from_dict",
    "load_hardware_toml",
    "CONVENTION_CHOICES",
]

# -- a tiny schema engine: one row per TOML key -------------------------------------------------
# ("q", dimension, attr_scale, out_unit, lo, hi): quantity with unit; attr = base * attr_scale
# ("i", lo, hi): integer; ("f", lo, hi): dimensionless number; ("c", choices); ("s",); ("b",)


@dataclass(frozen=True)
class _Key:
    key: str
    attr: str
    kind: tuple
    required: bool = True


def _q(key, attr, dim, scale, unit, lo=0.0, hi=math.inf, required=True):
    return _Key(key, attr, ("q", dim, scale, unit, lo, hi), required)


def _i(key, lo, hi, attr=None, required=True):
    return _Key(key, attr or key, ("i", lo, hi), required)


def _f(key, lo, hi, attr=None, required=True):
    return _Key(key, attr or key, ("f", lo, hi), required)


def _c(key, choices, attr=None, required=True):
    return _Key(key, attr or key, ("c", tuple(choices)), required)


def _s(key, attr=None, required=True):
    return _Key(key, attr or key, ("s",), required)


def _b(key, attr=None, required=True):
    return _Key(key, attr or key, ("b",), required)


def _parse_value(k: _Key, value, where: str):
    kind = k.kind[0]
    if kind == "q":
        _, dim, scale, unit, lo, hi = k.kind
        # 12 significant digits: "90 nm" reads as 90.0, not 90.00000000000001
        x = float(f"{parse_quantity(value, dim, where) * scale:.12g}")
        if not lo <= x <= hi:
            raise ConfigError(where, f"must lie in [{lo:g}, {hi:g}] {unit}, got {value!r}")
        return x
    if kind == "i":
        _, lo, hi = k.kind
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(where, f"must be an integer, got {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(where, f"must lie in [{lo}, {hi}], got {value}")
        return value
    if kind == "f":
        _, lo, hi = k.kind
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(where, f"must be a finite number, got {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(where, f"must lie in [{lo:g}, {hi:g}], got {value!r}")
        return float(value)
    if kind == "c":
        if value not in k.kind[1]:
            raise ConfigError(where, f"must be one of {k.kind[1]}, got {value!r}")
        return value
    if kind == "s":
        if not isinstance(value, str):
            raise ConfigError(where, f"must be a string, got {value!r}")
        return value
    if kind == "b":
        if not isinstance(value, bool):
            raise ConfigError(where, f"must be true or false, got {value!r}")
        return value
    raise AssertionError(kind)


def _format_value(k: _Key, x):
    if k.kind[0] == "q":
        _, dim, scale, unit, _, _ = k.kind
        return f"{x:.12g} {unit}"
    return x


def _parse_section(cls, schema: tuple[_Key, ...], d, where: str, extra: dict | None = None):
    if not isinstance(d, dict):
        raise ConfigError(where, f"must be a table, got {type(d).__name__}")
    known = {k.key for k in schema}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}", f"unknown key (known: {', '.join(sorted(known))})")
    kwargs = dict(extra or {})
    for k in schema:
        if k.key in d:
            kwargs[k.attr] = _parse_value(k, d[k.key], f"{where}.{k.key}")
        elif k.required:
            raise ConfigError(f"{where}.{k.key}", "missing")
    return cls(**kwargs)


def _section_to_dict(obj, schema: tuple[_Key, ...]) -> dict:
    out = {}
    for k in schema:
        v = getattr(obj, k.attr)
        if v is None:
            continue
        out[k.key] = _format_value(k, v)
    return out


# -- sections -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TechnologyConfig:
    """Process node, supply and clock of the logic and periphery.

    Attributes
    ----------
    node_nm, vdd_v, clock_hz : float
    digital_macs_per_cycle : int
        Digital multiply-accumulates per cycle (MCU SIMD width, or the loss/update unit of an
        accelerator); sets the latency of digital work.
    """

    node_nm: float
    vdd_v: float
    clock_hz: float
    digital_macs_per_cycle: int = 1


_TECH = (
    _q("node", "node_nm", "length", 1e9, "nm", 1.0, 250.0),
    _q("vdd", "vdd_v", "voltage", 1.0, "V", 0.3, 5.0),
    _q("clock", "clock_hz", "frequency", 1.0, "Hz", 1e3, 1e10),
    _i("digital_macs_per_cycle", 1, 1 << 20, required=False),
)

DEVICE_KINDS = ("rram", "pcm", "fefet", "mram", "sram")


@dataclass(frozen=True)
class DeviceConfig:
    """The memory cell of the crossbar and its update physics.

    Conductances, pulse voltages and widths follow NeuroSim's parameter names; the update model
    (non-linear LTP/LTD with ``levels`` pulses across the range) is NeuroSim's (Chen, Peng, Yu,
    TCAD 2018). ``nonlinearity_*`` is the shape parameter ``A`` of that model expressed in units
    of ``levels`` (large = nearly linear). ``sram`` cells have no conductance range and are
    written digitally.
    """

    kind: str
    source: str
    cell_area_f2: float
    r_on_ohm: float | None = None
    on_off_ratio: float | None = None
    levels: int = 32
    read_voltage_v: float = 0.5
    read_pulse_s: float = 10e-9
    write_voltage_v: float = 4.0
    write_pulse_s: float = 50e-9
    pulses_per_write: float = 1.0
    write_phases: int = 2
    endurance_cycles: float | None = None
    nonlinearity_ltp: float = 0.0
    nonlinearity_ltd: float = 0.0
    d2d_sigma: float = 0.0
    c2c_sigma: float = 0.0
    stuck_at_hrs_rate: float = 0.0
    stuck_at_lrs_rate: float = 0.0

    def __post_init__(self):
        if self.kind != "sram" and (self.r_on_ohm is None or self.on_off_ratio is None):
            raise ConfigError("device.r_on" if self.r_on_ohm is None else "device.on_off_ratio",
                              f"required for a {self.kind} device")
        if self.stuck_at_hrs_rate + self.stuck_at_lrs_rate > 1.0:
            raise ConfigError("device.stuck_at_lrs_rate", "stuck-at rates add up to more than 1")

    @property
    def g_max_s(self) -> float:
        return 0.0 if self.r_on_ohm is None else 1.0 / self.r_on_ohm

    @property
    def g_min_s(self) -> float:
        return 0.0 if self.on_off_ratio is None else self.g_max_s / self.on_off_ratio

    @property
    def is_nonvolatile(self) -> bool:
        return self.kind != "sram"

    def read_energy_pj(self) -> float:
        """Energy of one cell read pulse at mean conductance, ``V^2 G t`` [derived]."""
        g = 0.5 * (self.g_max_s + self.g_min_s)
        return self.read_voltage_v**2 * g * self.read_pulse_s * 1e12

    def write_pulse_energy_pj(self) -> float:
        """Energy of one programming pulse at mean conductance, ``V^2 G t`` [derived]."""
        g = 0.5 * (self.g_max_s + self.g_min_s)
        return self.write_voltage_v**2 * g * self.write_pulse_s * 1e12


_DEVICE = (
    _c("kind", DEVICE_KINDS),
    _s("source"),
    _q("cell_area", "cell_area_f2", "area_f2", 1.0, "F2", 1.0, 1e5),
    _q("r_on", "r_on_ohm", "resistance", 1.0, "ohm", 1.0, 1e10, required=False),
    _f("on_off_ratio", 1.0001, 1e9, required=False),
    _i("levels", 2, 1 << 16, required=False),
    _q("read_voltage", "read_voltage_v", "voltage", 1.0, "V", 0.0, 10.0, required=False),
    _q("read_pulse", "read_pulse_s", "time", 1.0, "s", 0.0, 1.0, required=False),
    _q("write_voltage", "write_voltage_v", "voltage", 1.0, "V", 0.0, 20.0, required=False),
    _q("write_pulse", "write_pulse_s", "time", 1.0, "s", 0.0, 1.0, required=False),
    _f("pulses_per_write", 0.0, 1e4, required=False),
    _i("write_phases", 1, 4, required=False),
    _f("endurance_cycles", 1.0, 1e20, required=False),
    _f("nonlinearity_ltp", 0.0, 1e6, required=False),
    _f("nonlinearity_ltd", 0.0, 1e6, required=False),
    _f("d2d_sigma", 0.0, 10.0, required=False),
    _f("c2c_sigma", 0.0, 10.0, required=False),
    _f("stuck_at_hrs_rate", 0.0, 1.0, required=False),
    _f("stuck_at_lrs_rate", 0.0, 1.0, required=False),
)


@dataclass(frozen=True)
class CrossbarConfig:
    """Array geometry.

    Attributes
    ----------
    rows, cols : int
        Cells per sub-array (NeuroSim default 128 x 128).
    cell_bits : int
        Bits stored per cell; a ``b``-bit weight spans ``ceil(b / cell_bits)`` cells.
    rows_read_at_once : int
        ``0`` means all rows (fully parallel read, NeuroSim ``conventionalParallel``).
    transposable : bool
        Arrays support the transposed read that backprop's error path needs (8T SRAM or eNVM
        with extra sense amplifiers); a design point that needs it on arrays without it is
        flagged.
    """

    rows: int
    cols: int
    cell_bits: int
    device: DeviceConfig
    rows_read_at_once: int = 0
    transposable: bool = True

    def __post_init__(self):
        if self.rows_read_at_once > self.rows:
            raise ConfigError("crossbar.rows_read_at_once", f"must be at most rows = {self.rows}")
        if self.device.kind == "sram" and self.cell_bits != 1:
            raise ConfigError("crossbar.cell_bits", "SRAM cells store 1 bit")

    @property
    def parallel_rows(self) -> int:
        return self.rows if self.rows_read_at_once == 0 else self.rows_read_at_once


_CROSSBAR = (
    _i("rows", 2, 65536),
    _i("cols", 2, 65536),
    _i("cell_bits", 1, 8),
    _i("rows_read_at_once", 0, 65536, required=False),
    _b("transposable", required=False),
)

INPUT_ENCODINGS = ("bit_serial", "dac")


@dataclass(frozen=True)
class PeripheryConfig:
    """Converters around the arrays.

    Attributes
    ----------
    input_encoding : {"bit_serial", "dac"}
        One input bit per cycle with no DAC (NeuroSim), or analog DAC inputs of ``dac_bits``.
    adc_bits : int
        Forward-read ADC resolution.
    adc_bits_error : int
        ADC resolution of the transposed (backprop error) read.
    columns_per_adc : int
        Columns multiplexed onto one ADC (NeuroSim ``numColMuxed = 8``).
    adc_rate_sps : float
        Conversions per second of one ADC.
    """

    input_encoding: str
    adc_bits: int
    columns_per_adc: int
    adc_rate_sps: float
    adc_bits_error: int = 6
    dac_bits: int = 0

    def __post_init__(self):
        if self.input_encoding == "dac" and self.dac_bits < 1:
            raise ConfigError("periphery.dac_bits", "must be >= 1 with input_encoding = 'dac'")


_PERIPHERY = (
    _c("input_encoding", INPUT_ENCODINGS),
    _i("adc_bits", 1, 16),
    _i("columns_per_adc", 1, 65536),
    _q("adc_rate", "adc_rate_sps", "rate", 1.0, "S/s", 1e3, 1e12),
    _i("adc_bits_error", 1, 16, required=False),
    _i("dac_bits", 0, 16, required=False),
)

BUFFER_KINDS = ("sram", "flash", "rom")


@dataclass(frozen=True)
class BufferLevel:
    """One on-chip memory level.

    Attributes
    ----------
    name : str
    kind : {"sram", "flash", "rom"}
        Flash and ROM are read-only during training (class vectors, seeds, frozen weights).
    size_bytes : float
    bank_bytes : float
        Size of the bank an access touches (the SRAM size law charges this, not the total).
    """

    name: str
    kind: str
    size_bytes: float
    bank_bytes: float

    def __post_init__(self):
        if self.bank_bytes > self.size_bytes:
            raise ConfigError(f"buffers.{self.name}.bank", "bank larger than the buffer")

    @property
    def writable(self) -> bool:
        return self.kind == "sram"


_BUFFER = (
    _s("name"),
    _c("kind", BUFFER_KINDS),
    _q("size", "size_bytes", "bytes", 1.0, "B", 1.0, 2.0**50),
    _q("bank", "bank_bytes", "bytes", 1.0, "B", 1.0, 2.0**50),
)


@dataclass(frozen=True)
class DramConfig:
    """Off-chip DRAM; ``present = False`` for a device without one."""

    present: bool = False
    size_bytes: float = 0.0
    energy_level: str = "low"
    bandwidth_bps: float = 12.8 * 1024.0**3


_DRAM = (
    _b("present"),
    _q("size", "size_bytes", "bytes", 1.0, "B", 0.0, 2.0**50, required=False),
    _c("energy_level", ("low", "high"), required=False),
    _q("bandwidth", "bandwidth_bps", "bandwidth", 1.0, "B/s", 1.0, 2.0**50, required=False),
)

CHIP_MODELS = ("neurosim_v14",)


@dataclass(frozen=True)
class ChipConfig:
    """Calibrated chip-level model (:mod:`sim.periphery`) and the published row it reproduces.

    Attributes
    ----------
    model : {"neurosim_v14"}
        Lumped NeuroSim V1.4-style periphery, pipelining and area model.
    calibration : str
        Coefficient set in ``sim/tables/neurosim_v14.toml`` (``"sram-22nm"``, ...).
    published_row : str
        Row of that table's ``[published]`` section the preset is checked against.
    speedup_degree : int
        NeuroSim's pipeline ``speedUpDegree`` (weight duplication of early layers).
    """

    model: str
    calibration: str
    published_row: str
    speedup_degree: int = 8


_CHIP = (
    _c("model", CHIP_MODELS),
    _s("calibration"),
    _s("published_row"),
    _i("speedup_degree", 1, 1024, required=False),
)

CONVENTION_CHOICES = {
    "adc_energy": ("p_over_fs", "mnsim_cycles"),
    "sram_law": ("size_law", "qkeras_poly"),
    "scaling": ("stillmaker_baas", "none"),
    "signed_weights": ("offset", "differential"),
    "class_vector_storage": ("sram", "nvm", "crossbar", "seed"),
    "write_accounting": ("dense", "changed_only"),
    "spela_delta": ("in_place", "separate"),
    "batched_local_update": ("from_rows", "gradient_buffer"),
    "bp_gradient": ("fused", "buffered"),
    "conv_weight_reads": ("once_per_sample", "per_position"),
}


@dataclass(frozen=True)
class Conventions:
    """Named switches where published models (or accounting choices) disagree.

    Attributes
    ----------
    adc_energy : {"p_over_fs", "mnsim_cycles"}
        ADC energy per conversion: ``P / f_s`` (default) or MNSIM's ``P (b + 2) / f_s`` (6-12x).
    sram_law : {"size_law", "qkeras_poly"}
        ``0.3125 pJ/bit * sqrt(bank bits / 2^18)`` (default) or QKeras' polynomial in the tensor
        size (2-15x lower).
    sram_write_to_read : float
        SRAM write energy as a multiple of read energy; 1.0 is the "write = read" placeholder
        (QKeras' assumption).
    scaling : {"stillmaker_baas", "none"}
        Process scaling of digital energies from 45 nm.
    dram_scaling : bool
        Scale DRAM energy with the logic node (off by default: DRAM is array/interface bound).
    signed_weights : {"offset", "differential"}
        Offset mapping with a reference column (NeuroSim, s = 1) or a differential pair (s = 2).
    class_vector_storage : {"sram", "nvm", "crossbar", "seed"}
        Where SPELA's class vectors live; ``seed`` stores one seed and regenerates them.
    write_accounting : {"dense", "changed_only"}
        Charge every read-modify-write (dense) or only weights whose value changed.
    spela_delta : {"in_place", "separate"}
        SPELA's post-synaptic term overwrites h (no extra buffer) or has its own buffer.
    batched_local_update : {"from_rows", "gradient_buffer"}
        At B > 1 a local rule keeps the B inputs and deltas of one layer and applies the update
        from them (default), or keeps a one-layer gradient buffer.
    bp_gradient : {"fused", "buffered"}
        Backprop applies each layer's update as soon as its gradient exists, from the stored
        activations and errors (default; what ``spela_hw``'s training loop does), or keeps a
        full-network gradient buffer at ``gradient`` bits (NeuroSim V2-style).
    conv_weight_reads : {"once_per_sample", "per_position"}
        Digital weight-buffer reads of a convolution: once per sample (weight-stationary) or once
        per output position.
    """

    adc_energy: str = "p_over_fs"
    sram_law: str = "size_law"
    sram_write_to_read: float = 1.0
    scaling: str = "stillmaker_baas"
    dram_scaling: bool = False
    signed_weights: str = "offset"
    class_vector_storage: str = "sram"
    write_accounting: str = "dense"
    spela_delta: str = "in_place"
    batched_local_update: str = "from_rows"
    bp_gradient: str = "fused"
    conv_weight_reads: str = "once_per_sample"

    def __post_init__(self):
        for name, choices in CONVENTION_CHOICES.items():
            if getattr(self, name) not in choices:
                raise ConfigError(f"conventions.{name}", f"must be one of {choices}, got {getattr(self, name)!r}")
        x = self.sram_write_to_read
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 0 < x <= 100:
            raise ConfigError("conventions.sram_write_to_read", f"must be a number in (0, 100], got {x!r}")
        if not isinstance(self.dram_scaling, bool):
            raise ConfigError("conventions.dram_scaling", "must be true or false")

    def describe(self) -> dict[str, str]:
        """Every switch and its value, as printed in every output."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    def with_changes(self, **changes) -> "Conventions":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"conventions.{sorted(unknown)[0]}", "unknown convention")
        return replace(self, **changes)


_CONVENTIONS = tuple(
    [_c(name, choices, required=False) for name, choices in CONVENTION_CHOICES.items()]
    + [_f("sram_write_to_read", 1e-6, 100.0, required=False), _b("dram_scaling", required=False)]
)


@dataclass(frozen=True)
class HardwareConfig:
    """A complete hardware description (see the module docstring).

    Build one with :func:`sim.presets.load_preset`, :func:`load_hardware_toml` or
    :func:`hardware_from_dict`.
    """

    name: str
    description: str
    sources: tuple[str, ...]
    technology: TechnologyConfig
    crossbar: CrossbarConfig | None
    periphery: PeripheryConfig | None
    buffers: tuple[BufferLevel, ...]
    dram: DramConfig = field(default_factory=DramConfig)
    conventions: Conventions = field(default_factory=Conventions)
    chip: ChipConfig | None = None

    def __post_init__(self):
        if (self.crossbar is None) != (self.periphery is None):
            raise ConfigError("periphery", "a crossbar needs a periphery section and vice versa")
        if not self.sources:
            raise ConfigError("sources", "a hardware description must cite at least one source")
        names = [b.name for b in self.buffers]
        if len(set(names)) != len(names):
            raise ConfigError("buffers", "buffer names must be unique")
        if not any(b.writable for b in self.buffers):
            raise ConfigError("buffers", "needs at least one writable (sram) buffer level")
        if self.crossbar is not None and self.periphery.columns_per_adc > self.crossbar.cols:
            raise ConfigError("periphery.columns_per_adc", "cannot exceed crossbar.cols")
        if self.chip is not None and self.crossbar is None:
            raise ConfigError("chip", "the chip model needs a crossbar")

    @property
    def has_crossbar(self) -> bool:
        return self.crossbar is not None

    @property
    def sram(self) -> BufferLevel:
        """The largest writable on-chip buffer (activations, accumulators, optimiser state)."""
        return max((b for b in self.buffers if b.writable), key=lambda b: b.size_bytes)

    @property
    def nvm(self) -> BufferLevel | None:
        """The largest read-only on-chip level (flash/ROM), if any."""
        ro = [b for b in self.buffers if not b.writable]
        return max(ro, key=lambda b: b.size_bytes) if ro else None

    def with_conventions(self, **changes) -> "HardwareConfig":
        return replace(self, conventions=self.conventions.with_changes(**changes))

    def to_dict(self) -> dict:
        """TOML-form dict (quantities with units); ``hardware_from_dict(to_dict())`` round-trips."""
        d = {"format_version": 1, "name": self.name, "description": self.description,
             "sources": list(self.sources),
             "technology": _section_to_dict(self.technology, _TECH),
             "buffers": [_section_to_dict(b, _BUFFER) for b in self.buffers],
             "dram": _section_to_dict(self.dram, _DRAM),
             "conventions": _section_to_dict(self.conventions, _CONVENTIONS)}
        if self.crossbar is not None:
            d["crossbar"] = _section_to_dict(self.crossbar, _CROSSBAR)
            d["device"] = _section_to_dict(self.crossbar.device, _DEVICE)
            d["periphery"] = _section_to_dict(self.periphery, _PERIPHERY)
        if self.chip is not None:
            d["chip"] = _section_to_dict(self.chip, _CHIP)
        return d


_TOP_KEYS = {"format_version", "name", "description", "sources", "base", "technology", "crossbar",
             "device", "periphery", "buffers", "dram", "conventions", "chip"}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def hardware_from_dict(d: dict, where: str = "hardware") -> HardwareConfig:
    """Build and validate a :class:`HardwareConfig` from its TOML-form dict.

    A ``base = "<preset>"`` key starts from that preset and overrides what the dict gives
    (tables merge key by key; ``buffers`` replaces the list).
    """
    if not isinstance(d, dict):
        raise ConfigError(where, "must be a table")
    unknown = set(d) - _TOP_KEYS
    if unknown:
        raise ConfigError(sorted(unknown)[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    if "base" in d:
        from .presets import preset_dict  # local import: presets imports this module

        if not isinstance(d["base"], str):
            raise ConfigError("base", f"must be a preset name, got {d['base']!r}")

        d = _merge(preset_dict(d["base"]), {k: v for k, v in d.items() if k != "base"})
    if d.get("format_version", 1) != 1:
        raise ConfigError("format_version", f"unsupported version {d.get('format_version')!r}")
    for key in ("name", "sources", "technology", "buffers"):
        if key not in d:
            raise ConfigError(key, "missing")
    if not isinstance(d["name"], str) or not d["name"]:
        raise ConfigError("name", "must be a non-empty string")
    if not isinstance(d.get("description", ""), str):
        raise ConfigError("description", f"must be a string, got {d['description']!r}")
    sources = d["sources"]
    if not isinstance(sources, list) or not all(isinstance(s, str) and s for s in sources):
        raise ConfigError("sources", "must be a list of non-empty strings")
    tech = _parse_section(TechnologyConfig, _TECH, d["technology"], "technology")
    has_xbar = "crossbar" in d
    for key in ("device", "periphery"):
        if (key in d) != has_xbar:
            raise ConfigError(key if has_xbar else "crossbar",
                              "crossbar, device and periphery go together")
    crossbar = periphery = None
    if has_xbar:
        device = _parse_section(DeviceConfig, _DEVICE, d["device"], "device")
        crossbar = _parse_section(CrossbarConfig, _CROSSBAR, d["crossbar"], "crossbar", {"device": device})
        periphery = _parse_section(PeripheryConfig, _PERIPHERY, d["periphery"], "periphery")
    if not isinstance(d["buffers"], list) or not d["buffers"]:
        raise ConfigError("buffers", "must be a non-empty list of [[buffers]] tables")
    buffers = tuple(_parse_section(BufferLevel, _BUFFER, b, f"buffers[{i}]") for i, b in enumerate(d["buffers"]))
    dram = _parse_section(DramConfig, _DRAM, d.get("dram", {"present": False}), "dram")
    conventions = _parse_section(Conventions, _CONVENTIONS, d.get("conventions", {}), "conventions")
    chip = _parse_section(ChipConfig, _CHIP, d["chip"], "chip") if "chip" in d else None
    return HardwareConfig(d["name"], str(d.get("description", "")), tuple(sources), tech, crossbar,
                          periphery, buffers, dram, conventions, chip)


def load_hardware_toml(path: str | Path) -> HardwareConfig:
    """Read a user hardware file (TOML; may start from a preset with ``base = "..."``).

    Every error is a :class:`ConfigError` naming the file and the field.
    """
    with naming_file(path):
        return hardware_from_dict(read_toml(path, "hardware"))
