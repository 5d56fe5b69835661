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

Every quantity in a file carries its unit (``node = "22 nm"``). Each field's metadata holds its
TOML key, its unit and its range, and every section checks itself on construction, so a
description built in Python (``TechnologyConfig(node_nm=-5, vdd_v=0, clock_hz=0)``) is refused like
one read from a file. Unknown keys, missing units and out-of-range values raise
:class:`~spela_hw.errors.ConfigError` naming the dotted field (``technology.node``).

A file that starts from a preset (``base = "rram-22nm"``) is resolved by :mod:`sim.presets`
(:func:`sim.presets.load_hardware_toml`), which builds on this module and not the other way round.
"""

from __future__ import annotations

import functools
import math
from dataclasses import MISSING, dataclass, field, fields, replace

from spela_hw.errors import ConfigError

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
    "CONVENTION_CHOICES",
]

# -- the schema lives in the fields' metadata ------------------------------------------------------
# Each field of a section carries a _Spec: its TOML key, its kind and range, and for quantities the
# unit its attribute holds. ``__post_init__`` checks every field against it (so a config built in
# Python is validated like one read from a file) and the TOML reader and writer derive the keys,
# the units and which keys are required from it.


@dataclass(frozen=True)
class _Spec:
    """One field: TOML ``key`` (the attribute's name when ``None``) and ``kind``.

    ``kind`` is ``("q", dimension, scale, unit, lo, hi)``: a quantity with a unit in the file,
    held as ``base_si_value * scale`` in ``unit``; ``("i", lo, hi)``: an integer; ``("f", lo,
    hi)``: a dimensionless number; ``("c", choices)``; ``("s",)``: a string; ``("b",)``: a
    boolean. Ranges are inclusive. ``required``: the key must be in a file (default: when the
    field has no default).
    """

    key: str | None
    kind: tuple
    required: bool | None = None


def _field(key, kind, required=None, **default):
    return field(**default, metadata={"spec": _Spec(key, kind, required)})


def _q(key, dim, scale, unit, lo=0.0, hi=math.inf, **default):
    return _field(key, ("q", dim, scale, unit, lo, hi), **default)


def _i(lo, hi, key=None, **default):
    return _field(key, ("i", lo, hi), **default)


def _f(lo, hi, key=None, **default):
    return _field(key, ("f", lo, hi), **default)


def _c(choices, key=None, **default):
    return _field(key, ("c", tuple(choices)), **default)


def _s(key=None, **default):
    return _field(key, ("s",), **default)


def _b(key=None, required=None, **default):
    return _field(key, ("b",), required, **default)


@functools.cache
def _schema(cls) -> tuple[tuple[str, str, _Spec, bool, object], ...]:
    """``(attribute, TOML key, spec, required, default)`` of every field of ``cls`` with a spec."""
    rows = []
    for f in fields(cls):
        spec = f.metadata.get("spec")
        if spec is not None:
            required = f.default is MISSING if spec.required is None else spec.required
            rows.append((f.name, spec.key or f.name, spec, required, f.default))
    return tuple(rows)


def _validate(obj, section: str) -> None:
    """Check every field of ``obj`` against its spec; the error names ``section.key``."""
    for attr, key, spec, _, default in _schema(type(obj)):
        value = getattr(obj, attr)
        if value is None and default is None:
            continue  # an optional value left out
        problem = _check(spec.kind, value)
        if problem:
            got = f"got {value!r}" if key == attr else f"got {attr}={value!r}"  # the Python name too
            raise ConfigError(f"{section}.{key}", f"{problem}, {got}")


def _check(kind: tuple, value) -> str | None:
    """What is wrong with ``value`` for ``kind`` (``None`` when it is valid)."""
    tag = kind[0]
    if tag in ("q", "f", "i"):
        if isinstance(value, bool) or not isinstance(value, int if tag == "i" else (int, float)):
            return "must be an integer" if tag == "i" else "must be a number"
        if not math.isfinite(value):
            return "must be finite"
        lo, hi = kind[-2:]
        unit = f" {kind[3]}" if tag == "q" else ""
        if not lo <= value <= hi:
            return f"must lie in [{lo:g}, {hi:g}]{unit}"
        return None
    if tag == "c":
        return None if value in kind[1] else f"must be one of {kind[1]}"
    if tag == "s":
        return None if isinstance(value, str) else "must be a string"
    if tag == "b":
        return None if isinstance(value, bool) else "must be true or false"
    raise AssertionError(tag)


def _from_toml(kind: tuple, value, where: str):
    """A file's value as the attribute holds it: quantities converted from their unit (range and
    type are checked by the section's ``__post_init__``)."""
    if kind[0] == "q":
        _, dim, scale = kind[:3]
        # 12 significant digits: "90 nm" reads as 90.0, not 90.00000000000001
        return float(f"{parse_quantity(value, dim, where) * scale:.12g}")
    if kind[0] == "f" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _parse_section(cls, d, where: str, extra: dict | None = None):
    if not isinstance(d, dict):
        raise ConfigError(where, f"must be a table, got {type(d).__name__}")
    schema = _schema(cls)
    known = {row[1] for row in schema}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}", f"unknown key (known: {', '.join(sorted(known))})")
    kwargs = dict(extra or {})
    for attr, key, spec, required, _ in schema:
        if key in d:
            kwargs[attr] = _from_toml(spec.kind, d[key], f"{where}.{key}")
        elif required:
            raise ConfigError(f"{where}.{key}", "missing")
    return cls(**kwargs)


def _section_to_dict(obj) -> dict:
    out = {}
    for attr, key, spec, _, _ in _schema(type(obj)):
        v = getattr(obj, attr)
        if v is not None:
            out[key] = f"{v:.12g} {spec.kind[3]}" if spec.kind[0] == "q" else v
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

    node_nm: float = _q("node", "length", 1e9, "nm", 1.0, 250.0)
    vdd_v: float = _q("vdd", "voltage", 1.0, "V", 0.3, 5.0)
    clock_hz: float = _q("clock", "frequency", 1.0, "Hz", 1e3, 1e10)
    digital_macs_per_cycle: int = _i(1, 1 << 20, default=1)

    def __post_init__(self):
        _validate(self, "technology")

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

    kind: str = _c(DEVICE_KINDS)
    source: str = _s()
    cell_area_f2: float = _q("cell_area", "area_f2", 1.0, "F2", 1.0, 1e5)
    r_on_ohm: float | None = _q("r_on", "resistance", 1.0, "ohm", 1.0, 1e10, default=None)
    on_off_ratio: float | None = _f(1.0001, 1e9, default=None)
    levels: int = _i(2, 1 << 16, default=32)
    read_voltage_v: float = _q("read_voltage", "voltage", 1.0, "V", 0.0, 10.0, default=0.5)
    read_pulse_s: float = _q("read_pulse", "time", 1.0, "s", 0.0, 1.0, default=10e-9)
    write_voltage_v: float = _q("write_voltage", "voltage", 1.0, "V", 0.0, 20.0, default=4.0)
    write_pulse_s: float = _q("write_pulse", "time", 1.0, "s", 0.0, 1.0, default=50e-9)
    pulses_per_write: float = _f(0.0, 1e4, default=1.0)
    write_phases: int = _i(1, 4, default=2)
    endurance_cycles: float | None = _f(1.0, 1e20, default=None)
    nonlinearity_ltp: float = _f(0.0, 1e6, default=0.0)
    nonlinearity_ltd: float = _f(0.0, 1e6, default=0.0)
    d2d_sigma: float = _f(0.0, 10.0, default=0.0)
    c2c_sigma: float = _f(0.0, 10.0, default=0.0)
    stuck_at_hrs_rate: float = _f(0.0, 1.0, default=0.0)
    stuck_at_lrs_rate: float = _f(0.0, 1.0, default=0.0)

    def __post_init__(self):
        _validate(self, "device")
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

    rows: int = _i(2, 65536)
    cols: int = _i(2, 65536)
    cell_bits: int = _i(1, 8)
    device: DeviceConfig  # no TOML key: the file's [device] section
    rows_read_at_once: int = _i(0, 65536, default=0)
    transposable: bool = _b(default=True)

    def __post_init__(self):
        _validate(self, "crossbar")
        if self.rows_read_at_once > self.rows:
            raise ConfigError("crossbar.rows_read_at_once", f"must be at most rows = {self.rows}")
        if self.device.kind == "sram" and self.cell_bits != 1:
            raise ConfigError("crossbar.cell_bits", "SRAM cells store 1 bit")

    @property
    def parallel_rows(self) -> int:
        return self.rows if self.rows_read_at_once == 0 else self.rows_read_at_once


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

    input_encoding: str = _c(INPUT_ENCODINGS)
    adc_bits: int = _i(1, 16)
    columns_per_adc: int = _i(1, 65536)
    adc_rate_sps: float = _q("adc_rate", "rate", 1.0, "S/s", 1e3, 1e12)
    adc_bits_error: int = _i(1, 16, default=6)
    dac_bits: int = _i(0, 16, default=0)

    def __post_init__(self):
        _validate(self, "periphery")
        if self.input_encoding == "dac" and self.dac_bits < 1:
            raise ConfigError("periphery.dac_bits", "must be >= 1 with input_encoding = 'dac'")


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

    name: str = _s()
    kind: str = _c(BUFFER_KINDS)
    size_bytes: float = _q("size", "bytes", 1.0, "B", 1.0, 2.0**50)
    bank_bytes: float = _q("bank", "bytes", 1.0, "B", 1.0, 2.0**50)

    def __post_init__(self):
        _validate(self, f"buffers.{self.name}")
        if self.bank_bytes > self.size_bytes:
            raise ConfigError(f"buffers.{self.name}.bank", "bank larger than the buffer")

    @property
    def writable(self) -> bool:
        return self.kind == "sram"


@dataclass(frozen=True)
class DramConfig:
    """Off-chip DRAM; ``present = False`` for a device without one."""

    present: bool = _b(required=True, default=False)  # a file says whether there is one
    size_bytes: float = _q("size", "bytes", 1.0, "B", 0.0, 2.0**50, default=0.0)
    energy_level: str = _c(("low", "high"), default="low")
    bandwidth_bps: float = _q("bandwidth", "bandwidth", 1.0, "B/s", 1.0, 2.0**50, default=12.8 * 1024.0**3)

    def __post_init__(self):
        _validate(self, "dram")


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

    model: str = _c(CHIP_MODELS)
    calibration: str = _s()
    published_row: str = _s()
    speedup_degree: int = _i(1, 1024, default=8)

    def __post_init__(self):
        _validate(self, "chip")


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

    adc_energy: str = _c(CONVENTION_CHOICES["adc_energy"], default="p_over_fs")
    sram_law: str = _c(CONVENTION_CHOICES["sram_law"], default="size_law")
    sram_write_to_read: float = _f(1e-6, 100.0, default=1.0)
    scaling: str = _c(CONVENTION_CHOICES["scaling"], default="stillmaker_baas")
    dram_scaling: bool = _b(default=False)
    signed_weights: str = _c(CONVENTION_CHOICES["signed_weights"], default="offset")
    class_vector_storage: str = _c(CONVENTION_CHOICES["class_vector_storage"], default="sram")
    write_accounting: str = _c(CONVENTION_CHOICES["write_accounting"], default="dense")
    spela_delta: str = _c(CONVENTION_CHOICES["spela_delta"], default="in_place")
    batched_local_update: str = _c(CONVENTION_CHOICES["batched_local_update"], default="from_rows")
    bp_gradient: str = _c(CONVENTION_CHOICES["bp_gradient"], default="fused")
    conv_weight_reads: str = _c(CONVENTION_CHOICES["conv_weight_reads"], default="once_per_sample")

    def __post_init__(self):
        _validate(self, "conventions")

    def describe(self) -> dict[str, str]:
        """Every switch and its value, as printed in every output."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    def with_changes(self, **changes) -> "Conventions":
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"conventions.{sorted(unknown)[0]}", "unknown convention")
        return replace(self, **changes)


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
             "technology": _section_to_dict(self.technology),
             "buffers": [_section_to_dict(b) for b in self.buffers],
             "dram": _section_to_dict(self.dram),
             "conventions": _section_to_dict(self.conventions)}
        if self.crossbar is not None:
            d["crossbar"] = _section_to_dict(self.crossbar)
            d["device"] = _section_to_dict(self.crossbar.device)
            d["periphery"] = _section_to_dict(self.periphery)
        if self.chip is not None:
            d["chip"] = _section_to_dict(self.chip)
        return d


_TOP_KEYS = {"format_version", "name", "description", "sources", "base", "technology", "crossbar",
             "device", "periphery", "buffers", "dram", "conventions", "chip"}


def hardware_from_dict(d: dict, where: str = "hardware") -> HardwareConfig:
    """Build and validate a :class:`HardwareConfig` from its complete TOML-form dict.

    A dict that starts from a preset (``base = "<preset>"``) is resolved first by
    :func:`sim.presets.resolve_base` (:func:`sim.presets.load_hardware_toml` does it).
    """
    if not isinstance(d, dict):
        raise ConfigError(where, "must be a table")
    unknown = set(d) - _TOP_KEYS
    if unknown:
        raise ConfigError(sorted(unknown)[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    if "base" in d:
        raise ConfigError("base", "a description that starts from a preset is resolved by "
                                  "sim.presets.resolve_base (sim.load_hardware_toml reads such a file)")
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
    tech = _parse_section(TechnologyConfig, d["technology"], "technology")
    has_xbar = "crossbar" in d
    for key in ("device", "periphery"):
        if (key in d) != has_xbar:
            raise ConfigError(key if has_xbar else "crossbar",
                              "crossbar, device and periphery go together")
    crossbar = periphery = None
    if has_xbar:
        device = _parse_section(DeviceConfig, d["device"], "device")
        crossbar = _parse_section(CrossbarConfig, d["crossbar"], "crossbar", {"device": device})
        periphery = _parse_section(PeripheryConfig, d["periphery"], "periphery")
    if not isinstance(d["buffers"], list) or not d["buffers"]:
        raise ConfigError("buffers", "must be a non-empty list of [[buffers]] tables")
    buffers = tuple(_parse_section(BufferLevel, b, f"buffers[{i}]") for i, b in enumerate(d["buffers"]))
    dram = _parse_section(DramConfig, d.get("dram", {"present": False}), "dram")
    conventions = _parse_section(Conventions, d.get("conventions", {}), "conventions")
    chip = _parse_section(ChipConfig, d["chip"], "chip") if "chip" in d else None
    return HardwareConfig(d["name"], str(d.get("description", "")), tuple(sources), tech, crossbar,
                          periphery, buffers, dram, conventions, chip)
