"""Energy tables shipped as TOML data (``sim/tables/*.toml``) and the cost laws built on them.

Every number in a table carries ``value``, ``unit``, ``node``, ``vdd``, ``source`` and ``kind``
(``published`` / ``fit`` / ``derived`` / ``placeholder``); an unknown node or Vdd is written
``"unknown"``. A placeholder also carries ``low``, ``high`` (same unit, ``low <= value <= high``)
and ``range_reason``: the interval the energy model propagates (:meth:`EnergyTables.at_corner`). Loading validates every record and raises :class:`ConfigError` naming the field.
All energies returned here are at the table's reference point (45 nm, 0.9 V for digital logic);
:func:`energy_factor` scales them to another node (Stillmaker & Baas).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from importlib import resources

from spela_hw.errors import ConfigError

from .tomlfile import read_toml
from .units import parse_quantity, to_unit

__all__ = [
    "KINDS",
    "ParamRecord",
    "EnergyTables",
    "load_tables",
    "SRAM_LAWS",
    "ADC_CONVENTIONS",
    "SCALING_METHODS",
]

KINDS = ("published", "fit", "derived", "placeholder")
SRAM_LAWS = ("size_law", "qkeras_poly")
ADC_CONVENTIONS = ("p_over_fs", "mnsim_cycles")
SCALING_METHODS = ("stillmaker_baas", "none")

_ENTRY_KEYS = {"value", "unit", "node", "vdd", "source", "kind", "conditions", "low", "high", "range_reason"}
CORNERS = ("low", "nominal", "high")
_UNIT_DIMENSION = {"pJ": "energy", "pJ/bit": "energy_per_bit", "bit": "bits", "x": "ratio"}


@dataclass(frozen=True)
class ParamRecord:
    """One number of a table with its provenance.

    Attributes
    ----------
    name, table : str
    value : float
        As written in the file, in ``unit``.
    unit : str
    node_nm, vdd_v : float or None
        ``None`` when the source leaves them unknown.
    source, kind, conditions : str
    low, high : float or None
        The plausible range of a placeholder (``None`` for sourced numbers).
    range_reason : str
        Why the range is what it is.
    """

    table: str
    name: str
    value: float
    unit: str
    node_nm: float | None
    vdd_v: float | None
    source: str
    kind: str
    conditions: str = ""
    low: float | None = None
    high: float | None = None
    range_reason: str = ""

    @property
    def ranged(self) -> bool:
        """Has a range wider than its value."""
        return self.low is not None and self.high is not None and self.low < self.high

    def at(self, corner: str) -> float:
        """The value at ``corner`` (``"low"``, ``"nominal"`` or ``"high"``)."""
        if corner not in CORNERS:
            raise ConfigError("corner", f"must be one of {CORNERS}, got {corner!r}")
        v = {"low": self.low, "high": self.high}.get(corner)
        return self.value if v is None else v

    def to_dict(self) -> dict:
        return {
            "table": self.table, "name": self.name, "value": self.value, "unit": self.unit,
            "node_nm": self.node_nm, "vdd_v": self.vdd_v, "source": self.source, "kind": self.kind,
            "conditions": self.conditions, "low": self.low, "high": self.high, "range_reason": self.range_reason,
        }


def _optional_quantity(value, dimension: str, field: str) -> float | None:
    if value == "unknown":
        return None
    return parse_quantity(value, dimension, field)


def parse_entry(table: str, name: str, d: dict) -> ParamRecord:
    """Validate one ``[entries.<name>]`` record (every field named in errors)."""
    where = f"{table}.entries.{name}"
    if not isinstance(d, dict):
        raise ConfigError(where, "must be a table of value, unit, node, vdd, source, kind")
    unknown = set(d) - _ENTRY_KEYS
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}", "unknown key")
    for key in ("value", "unit", "node", "vdd", "source", "kind"):
        if key not in d:
            raise ConfigError(f"{where}.{key}", "missing")
    value = d["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}.value", f"must be a finite number, got {value!r}")
    unit = d["unit"]
    if unit not in _UNIT_DIMENSION:
        raise ConfigError(f"{where}.unit", f"must be one of {tuple(_UNIT_DIMENSION)}, got {unit!r}")
    to_unit(value, unit, _UNIT_DIMENSION[unit], f"{where}.value")
    if d["kind"] not in KINDS:
        raise ConfigError(f"{where}.kind", f"must be one of {KINDS}, got {d['kind']!r}")
    if not isinstance(d["source"], str) or not d["source"].strip():
        raise ConfigError(f"{where}.source", "must name the source")
    node = _optional_quantity(d["node"], "length", f"{where}.node")
    vdd = _optional_quantity(d["vdd"], "voltage", f"{where}.vdd")
    node_nm = None if node is None else float(f"{node * 1e9:.12g}")
    low, high, reason = _parse_range(where, d, float(value))
    return ParamRecord(table, name, float(value), unit, node_nm, vdd,
                       d["source"], d["kind"], str(d.get("conditions", "")), low, high, reason)


def _parse_range(where: str, d: dict, value: float) -> tuple[float | None, float | None, str]:
    """``low``, ``high`` and ``range_reason``: required for a placeholder, optional otherwise."""
    given = [k for k in ("low", "high", "range_reason") if k in d]
    if not given:
        if d["kind"] == "placeholder":
            raise ConfigError(f"{where}.low", "a placeholder needs low, high and range_reason (its plausible range)")
        return None, None, ""
    for key in ("low", "high", "range_reason"):
        if key not in d:
            raise ConfigError(f"{where}.{key}", "missing (low, high and range_reason go together)")
    for key in ("low", "high"):
        x = d[key]
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
            raise ConfigError(f"{where}.{key}", f"must be a finite number >= 0, got {x!r}")
    if not d["low"] <= value <= d["high"]:
        raise ConfigError(f"{where}.low", f"needs low <= value <= high, got {d['low']} <= {value} <= {d['high']}")
    if not isinstance(d["range_reason"], str) or not d["range_reason"].strip():
        raise ConfigError(f"{where}.range_reason", "must say why the range is what it is")
    return float(d["low"]), float(d["high"]), d["range_reason"].strip()


@dataclass(frozen=True)
class AdcChoice:
    """A published converter (power, rate, area) from which per-conversion energies derive."""

    choice: str
    bits: int
    power_w: float
    rate_sps: float
    area_um2: float
    node_nm: float | None
    vdd_v: float | None
    source: str
    kind: str

    def energy_pj(self, convention: str) -> float:
        e = self.power_w / self.rate_sps * 1e12
        return e * (self.bits + 2) if convention == "mnsim_cycles" else e


@dataclass(frozen=True)
class ScalingNode:
    node_nm: float
    energy_poly: tuple[float, float, float]
    nominal_vdd_v: float
    area_from_45: float

    def poly(self, vdd_v: float) -> float:
        a, b, c = self.energy_poly
        return a * vdd_v * vdd_v + b * vdd_v + c


class EnergyTables:
    """All shipped tables, validated, with the cost laws of docs/hardware.md §1-5.

    Use :func:`load_tables` (cached) rather than constructing this directly.
    """

    def __init__(self, records: dict[str, ParamRecord], adc: dict[str, AdcChoice],
                 adc_defaults: dict[int, str], scaling: dict[float, ScalingNode]):
        self.records = records
        self.adc_choices = adc
        self.adc_defaults = adc_defaults
        self.scaling_nodes = dict(sorted(scaling.items(), reverse=True))

    # -- records -------------------------------------------------------------------------------

    def record(self, name: str) -> ParamRecord:
        """The record ``name`` (unique across tables)."""
        try:
            return self.records[name]
        except KeyError:
            raise ConfigError("table entry", f"no entry named {name!r}") from None

    def value(self, name: str) -> float:
        return self.records[name].value

    def ranged(self) -> dict[str, ParamRecord]:
        """The records with a range (every placeholder), by name."""
        return {n: r for n, r in self.records.items() if r.ranged}

    def at_corner(self, corner: str | dict) -> "EnergyTables":
        """These tables with every ranged record at ``corner`` (``"low"``/``"nominal"``/``"high"``),
        or each named record at its own corner (``{"sram_cim_cell_read": "high", ...}``; records not
        named stay nominal)."""
        choice = {n: corner for n in self.ranged()} if isinstance(corner, str) else dict(corner)
        records = dict(self.records)
        for name, c in choice.items():
            r = self.record(name)
            records[name] = replace(r, value=r.at(c))
        return EnergyTables(records, self.adc_choices, self.adc_defaults, self.scaling_nodes)

    # -- digital arithmetic at 45 nm ------------------------------------------------------------

    def add_pj(self, bits: int, is_float: bool = False) -> float:
        """Energy of one add: fit ``0.003125 b`` (integer) or Horowitz fp16/fp32."""
        if is_float:
            return self.value("fp16_add") if bits <= 16 else self.value("fp32_add")
        return self.value("add_per_bit") * bits

    def mul_pj(self, bits_a: int, bits_b: int | None = None, is_float: bool = False) -> float:
        """Energy of one multiply; mixed widths use the derived array-multiplier form."""
        if is_float:
            return self.value("fp16_mul") if max(bits_a, bits_b or bits_a) <= 16 else self.value("fp32_mul")
        if bits_b is None or bits_b == bits_a:
            return self.value("mul_b2") * bits_a * bits_a + self.value("mul_b") * bits_a
        return (self.value("mul_b2") * bits_a * bits_b
                + self.value("mul_mixed_linear") * (bits_a + bits_b))

    def mac_pj(self, bits_w: int, bits_x: int, bits_acc: int, is_float: bool = False) -> float:
        """``mul(b_w, b_x) + add(b_acc)``: int8 x int8 into int32 gives 0.2 + 0.1 = 0.3 pJ."""
        return self.mul_pj(bits_w, bits_x, is_float) + self.add_pj(bits_acc, is_float)

    def rsqrt_multiplies(self) -> float:
        """[placeholder] Multiplies in one loss-unit operation (rsqrt or divide): Newton-Raphson
        iterations x multiplies per iteration, 3 x 3 = 9 nominal (docs/hardware.md §1.2).

        Prices the operation (:meth:`rsqrt_pj`) and sets its cycles on the digital unit
        (:func:`sim.energy.digital_cycles`).
        """
        return self.value("rsqrt_newton_iterations") * self.value("rsqrt_multiplies_per_iteration")

    def rsqrt_pj(self, bits: int, seed_table_pj: float) -> float:
        """[placeholder] Newton-Raphson reciprocal square root (or divide) at ``bits``."""
        return self.rsqrt_multiplies() * self.mul_pj(bits) + seed_table_pj

    def rng_pj(self, random_bits: int) -> float:
        """[placeholder] ``random_bits`` random bits cost one add of that width (an LFSR step)."""
        return self.value("rng_add_equivalent_per_bit") * self.add_pj(random_bits)

    # -- memory --------------------------------------------------------------------------------

    def sram_pj_per_bit(self, array_bits: float, law: str = "size_law",
                        tensor_bits: float | None = None) -> float:
        """Energy per bit of an SRAM access at 45 nm.

        ``size_law``: ``0.3125 pJ * sqrt(array_bits / 2**18)`` with ``array_bits`` the bank
        accessed. ``qkeras_poly``: the 64-bit-word polynomial in ``log2`` of the size of the tensor
        moved (``tensor_bits``, floored at the configured minimum), divided by 64.
        """
        if law == "size_law":
            return self.value("sram_size_law_pj_per_bit") * math.sqrt(
                float(array_bits) / self.value("sram_size_law_reference"))
        if law == "qkeras_poly":
            size = max(float(tensor_bits if tensor_bits is not None else array_bits),
                       self.value("sram_qkeras_min_size"))
            x = math.log2(size)
            e64 = (self.value("sram_qkeras_poly_a") * x * x + self.value("sram_qkeras_poly_b") * x
                   + self.value("sram_qkeras_poly_c"))
            return e64 / 64.0
        raise ConfigError("conventions.sram_law", f"must be one of {SRAM_LAWS}, got {law!r}")

    def dram_pj_per_bit(self, level: str = "low") -> float:
        if level not in ("low", "high"):
            raise ConfigError("dram.energy_level", f"must be 'low' or 'high', got {level!r}")
        return self.value(f"dram_pj_per_bit_{level}")

    # -- ADC -----------------------------------------------------------------------------------

    def adc_pj(self, bits: int, convention: str = "p_over_fs") -> tuple[float, str]:
        """Energy per conversion at ``bits`` and the kind of the number (published / derived).

        Resolutions with a default converter use it; 5, 7 and 9 bits interpolate their
        neighbours geometrically; below 4 bits halve per bit from 4 bits; above 10 bits double
        per bit from 10 bits. The two latter are extrapolations and are reported as derived.
        """
        if convention not in ADC_CONVENTIONS:
            raise ConfigError("conventions.adc_energy", f"must be one of {ADC_CONVENTIONS}, got {convention!r}")
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 16:
            raise ConfigError("periphery.adc_bits", f"must be an integer from 1 to 16, got {bits!r}")
        if bits in self.adc_defaults:
            return self.adc_choices[self.adc_defaults[bits]].energy_pj(convention), "published"
        known = sorted(self.adc_defaults)
        lo, hi = known[0], known[-1]
        if bits < lo:
            return self.adc_pj(lo, convention)[0] * 2.0 ** (bits - lo), "derived"
        if bits > hi:
            return self.adc_pj(hi, convention)[0] * 2.0 ** (bits - hi), "derived"
        below = max(b for b in known if b < bits)
        above = min(b for b in known if b > bits)
        e_lo, e_hi = self.adc_pj(below, convention)[0], self.adc_pj(above, convention)[0]
        t = (bits - below) / (above - below)
        return e_lo ** (1 - t) * e_hi**t, "derived"

    def adc_record(self, bits: int) -> AdcChoice | None:
        """The converter behind the default at ``bits`` (``None`` when derived)."""
        choice = self.adc_defaults.get(bits)
        return None if choice is None else self.adc_choices[choice]

    # -- process scaling -----------------------------------------------------------------------

    def _poly_at(self, node_nm: float, vdd_v: float) -> float:
        nodes = sorted(self.scaling_nodes)
        if not nodes[0] <= node_nm <= nodes[-1]:
            raise ConfigError("technology.node",
                              f"scaling covers {nodes[0]:g}-{nodes[-1]:g} nm, got {node_nm:g} nm")
        if node_nm in self.scaling_nodes:
            return self.scaling_nodes[node_nm].poly(vdd_v)
        above = min(n for n in nodes if n > node_nm)
        below = max(n for n in nodes if n < node_nm)
        t = (node_nm - below) / (above - below)
        return (1 - t) * self.scaling_nodes[below].poly(vdd_v) + t * self.scaling_nodes[above].poly(vdd_v)

    def energy_factor(self, node_nm: float, vdd_v: float, method: str = "stillmaker_baas") -> float:
        """Energy at ``(node_nm, vdd_v)`` relative to 45 nm, 0.9 V (e.g. 32 nm, 0.9 V: 0.64)."""
        if method == "none":
            return 1.0
        if method != "stillmaker_baas":
            raise ConfigError("conventions.scaling", f"must be one of {SCALING_METHODS}, got {method!r}")
        return self._poly_at(node_nm, vdd_v) / self._poly_at(45.0, 0.9)

    def area_factor(self, node_nm: float) -> float:
        """Logic area relative to 45 nm (linear interpolation between tabulated nodes)."""
        nodes = sorted(self.scaling_nodes)
        if not nodes[0] <= node_nm <= nodes[-1]:
            raise ConfigError("technology.node", f"area scaling covers {nodes[0]:g}-{nodes[-1]:g} nm")
        if node_nm in self.scaling_nodes:
            return self.scaling_nodes[node_nm].area_from_45
        above = min(n for n in nodes if n > node_nm)
        below = max(n for n in nodes if n < node_nm)
        t = (node_nm - below) / (above - below)
        return (1 - t) * self.scaling_nodes[below].area_from_45 + t * self.scaling_nodes[above].area_from_45

    def to_records(self) -> list[dict]:
        """Every shipped number with its provenance (tidy rows)."""
        rows = [r.to_dict() for r in self.records.values()]
        for c in self.adc_choices.values():
            rows.append({"table": "adc", "name": f"adc_choice_{c.choice}_{c.bits}b", "value": c.power_w * 1e3,
                         "unit": "mW", "node_nm": c.node_nm, "vdd_v": c.vdd_v, "source": c.source,
                         "kind": c.kind, "conditions": f"{c.rate_sps / 1e9:g} GS/s, {c.area_um2:g} um2"})
        return rows


def _read_toml(name: str) -> dict:
    return read_toml(resources.files("sim").joinpath("tables", name), name.removesuffix(".toml"))


def _check_keys(d: dict, allowed: set, where: str) -> None:
    unknown = set(d) - allowed
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}", "unknown key")


def _parse_adc(doc: dict) -> tuple[dict, dict]:
    _check_keys(doc, {"format_version", "table", "choices", "defaults"}, "adc")
    choices = {}
    for key, c in doc["choices"].items():
        where = f"adc.choices.{key}"
        _check_keys(c, {"bits", "power", "rate", "area", "node", "vdd", "source", "kind"}, where)
        for k in ("bits", "power", "rate", "area", "node", "vdd", "source", "kind"):
            if k not in c:
                raise ConfigError(f"{where}.{k}", "missing")
        node = _optional_quantity(c["node"], "length", f"{where}.node")
        choices[key] = AdcChoice(
            key, int(c["bits"]), parse_quantity(c["power"], "power", f"{where}.power"),
            parse_quantity(c["rate"], "rate", f"{where}.rate"),
            parse_quantity(c["area"], "area", f"{where}.area") * 1e12,
            None if node is None else float(f"{node * 1e9:.12g}"), _optional_quantity(c["vdd"], "voltage", f"{where}.vdd"),
            c["source"], c["kind"])
    defaults = {}
    for bits, key in doc["defaults"].items():
        key = str(key)
        if key not in choices or choices[key].bits != int(bits):
            raise ConfigError(f"adc.defaults.{bits}", f"names choice {key!r} which is not a {bits}-bit converter")
        defaults[int(bits)] = key
    return choices, defaults


def _parse_scaling(doc: dict) -> dict:
    _check_keys(doc, {"format_version", "table", "source", "nodes"}, "scaling")
    nodes = {}
    for key, n in doc["nodes"].items():
        where = f"scaling.nodes.{key}"
        _check_keys(n, {"energy_poly", "nominal_vdd", "area_from_45"}, where)
        poly = n["energy_poly"]
        if len(poly) != 3:
            raise ConfigError(f"{where}.energy_poly", "needs three coefficients a, b, c")
        nodes[float(key)] = ScalingNode(float(key), tuple(float(p) for p in poly),
                                        parse_quantity(n["nominal_vdd"], "voltage", f"{where}.nominal_vdd"),
                                        float(n["area_from_45"]))
    return nodes


ENTRY_TABLES = ("horowitz_45nm.toml", "fixed_point_fits.toml", "memory.toml", "placeholders.toml")


@functools.lru_cache(maxsize=1)
def load_tables() -> EnergyTables:
    """Load and validate every shipped table once (cached)."""
    records: dict[str, ParamRecord] = {}
    for fname in ENTRY_TABLES:
        doc = _read_toml(fname)
        table = doc.get("table", fname.removesuffix(".toml"))
        _check_keys(doc, {"format_version", "table", "entries"}, table)
        for name, entry in doc["entries"].items():
            if name in records:
                raise ConfigError(f"{table}.entries.{name}", "defined in two tables")
            records[name] = parse_entry(table, name, entry)
    adc, defaults = _parse_adc(_read_toml("adc.toml"))
    scaling = _parse_scaling(_read_toml("scaling.toml"))
    return EnergyTables(records, adc, defaults, scaling)
