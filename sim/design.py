"""One design point: memory ledger + tiling + energy/latency for a network, rule and hardware."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from spela_hw.counts import Counts
from spela_hw.errors import ConfigError
from spela_hw.specs import PrecisionSpec

from .config import HardwareConfig
from .energy import EnergyAdvantage, EnergyBreakdown, EnergyInterval, PricedPoint, energy_advantage, energy_breakdown
from .ledger import BitWidths, FitResult, MemoryBudget, MemoryLedger, memory_ledger
from .presets import resolve_hardware
from .tiling import TilingResult, tile_workload
from .workload import COUNT_RULES, Workload, algorithm_profile, as_workload, closed_form_counts

__all__ = ["DesignPointResult", "design_point", "resolve_bits", "UNSET", "energy_interval", "compare_energy"]


class _Unset:
    """Marks a parameter the caller did not give (``None`` is a value: float32 precision)."""

    def __repr__(self) -> str:
        return "<not given>"


UNSET = _Unset()


def resolve_bits(bits: BitWidths | None = None, precision=UNSET, weight_bits: int | None = None,
                 **overrides) -> BitWidths:
    """:class:`BitWidths` from ``bits``, or a ``PrecisionSpec``, or just ``weight_bits``.

    ``precision=None`` means float32, as everywhere in ``spela_hw`` (it is *not* "not given");
    ``weight_bits`` alone means fixed point with that weight width and :class:`BitWidths`'
    defaults for the rest (int8 activations). Giving none of the three is an error rather than a
    silent int8 default, and so is giving both ``bits`` and ``precision``.
    """
    given = precision is not UNSET
    if bits is not None:
        if not isinstance(bits, BitWidths):
            raise ConfigError("bits", f"must be a BitWidths, got {type(bits).__name__}")
        if given:
            raise ConfigError("precision", "give bits or precision, not both")
        if weight_bits is not None:
            overrides["weight"] = weight_bits
        return BitWidths(**{**asdict(bits), **overrides}) if overrides else bits
    if given:
        if precision is not None and not isinstance(precision, PrecisionSpec):
            raise ConfigError("precision", f"must be a PrecisionSpec or None (float32), got {precision!r}")
        if weight_bits is not None:
            if precision is None:
                raise ConfigError("weight_bits", "precision=None is float32: weight_bits would contradict it "
                                                 "(give PrecisionSpec.fixed(...) or only weight_bits)")
            overrides["weight"] = weight_bits
        return BitWidths.from_precision(precision, **overrides)
    if weight_bits is not None:
        overrides["weight"] = weight_bits
        return BitWidths(**overrides)
    raise ConfigError("precision", "storage widths not given: pass bits=BitWidths(...), precision= (a "
                                   "PrecisionSpec, or None for float32) or weight_bits=")


@dataclass(frozen=True)
class DesignPointResult:
    """Everything ``spela-hw size`` prints for one (network, rule, hardware, bits, batch).

    Attributes
    ----------
    algorithm, hardware, network : str
    batch_size : int
    bits : BitWidths
    ledger_train, ledger_infer : MemoryLedger
    tiling : TilingResult
        Empty for a digital device.
    energy_train, energy_infer : EnergyBreakdown or None
        ``None`` when no counts exist for the rule (analytic-only rules).
    fit_train, fit_infer : FitResult or None
        Against ``budget`` when one was given.
    budget : str
    conventions : dict
    counts_source : str
        ``"closed_form"`` or ``"run"``.
    hardware_config : HardwareConfig
        The resolved hardware (for re-pricing at placeholder corners: :meth:`interval`).
    """

    algorithm: str
    hardware: str
    network: str
    batch_size: int
    bits: BitWidths
    ledger_train: MemoryLedger
    ledger_infer: MemoryLedger
    tiling: TilingResult
    energy_train: EnergyBreakdown | None
    energy_infer: EnergyBreakdown | None
    fit_train: FitResult | None
    fit_infer: FitResult | None
    budget: str
    conventions: dict
    counts_source: str
    exit_layer: int
    hardware_config: HardwareConfig | None = field(default=None, repr=False, compare=False)

    def priced(self, phase: str = "train") -> PricedPoint:
        """The energy of ``phase`` ready to re-price at placeholder corners."""
        if phase not in ("train", "infer"):
            raise ConfigError("phase", f"must be 'train' or 'infer', got {phase!r}")
        e = self.energy_train if phase == "train" else self.energy_infer
        if e is None:
            raise ConfigError("rule", f"{self.algorithm} has no energy model (no closed-form counts)")
        return PricedPoint(e, self.hardware_config, self.bits)

    def interval(self, phase: str = "train") -> EnergyInterval:
        """Energy per sample of ``phase`` as (nominal, low, high) over the placeholder ranges."""
        return self.priced(phase).interval()

    def summary(self) -> dict:
        """One tidy row of headline numbers."""
        row = {"algorithm": self.algorithm, "hardware": self.hardware, "network": self.network,
               "batch_size": self.batch_size, "weight_bits": self.bits.weight,
               "activation_bits": self.bits.activation, "counts_source": self.counts_source,
               "train_peak_bytes": self.ledger_train.peak_bytes,
               "train_on_chip_bytes": self.ledger_train.on_chip_bytes,
               "infer_peak_bytes": self.ledger_infer.peak_bytes, "arrays": self.tiling.arrays,
               "utilisation": self.tiling.utilisation, "array_area_mm2": self.tiling.array_area_mm2,
               "budget": self.budget, "exit_layer": self.exit_layer}
        for tag, e in (("train", self.energy_train), ("infer", self.energy_infer)):
            row[f"{tag}_energy_pj"] = e.total_pj if e is not None else math.nan
            iv = self.interval(tag) if e is not None and self.hardware_config is not None else None
            row[f"{tag}_energy_low_pj"] = iv.low_pj if iv is not None else math.nan
            row[f"{tag}_energy_high_pj"] = iv.high_pj if iv is not None else math.nan
            row[f"{tag}_latency_ns"] = e.latency_ns["total"] if e is not None else math.nan
        row["lifetime_days"] = self.energy_train.lifetime_days if self.energy_train is not None else None
        row["samples_per_day"] = self.energy_train.samples_per_day if self.energy_train is not None else None
        row["fits_train"] = self.fit_train.fits if self.fit_train is not None else None
        row["fits_infer"] = self.fit_infer.fits if self.fit_infer is not None else None
        return row

    def tables(self) -> dict[str, list[dict]]:
        """Tidy records per table: ``summary``, ``ledger``, ``tiling``, ``energy``, ``latency``,
        ``conventions`` (each a list of flat dicts, ready for ``pandas.DataFrame``)."""
        energy, latency = [], []
        for e in (self.energy_train, self.energy_infer):
            if e is None:
                continue
            energy += e.to_records()
            latency += [{"phase": e.phase, "algorithm": e.algorithm, "hardware": e.hardware, "stage": k,
                         "latency_ns": v} for k, v in e.latency_ns.items()]
        return {
            "summary": [self.summary()],
            "ledger": self.ledger_train.to_records() + self.ledger_infer.to_records(),
            "tiling": self.tiling.to_records(),
            "energy": energy,
            "latency": latency,
            "conventions": [{"convention": k, "value": v} for k, v in self.conventions.items()],
        }

    def to_records(self, table: str | None = None) -> list[dict]:
        """Records of one table, or of all tables with a ``table`` column."""
        tabs = self.tables()
        if table is not None:
            if table not in tabs:
                raise ConfigError("table", f"must be one of {tuple(tabs)}, got {table!r}")
            return tabs[table]
        return [{"table": name, **r} for name, rows in tabs.items() for r in rows]

    def to_dict(self) -> dict:
        """JSON-ready nested form (used by ``spela-hw size --json``)."""
        out = {"algorithm": self.algorithm, "hardware": self.hardware, "network": self.network,
               "batch_size": self.batch_size, "bits": asdict(self.bits), "budget": self.budget,
               "counts_source": self.counts_source, "exit_layer": self.exit_layer,
               **{k: v for k, v in self.tables().items() if k != "conventions"},
               "conventions": self.conventions}
        for tag, f in (("fit_train", self.fit_train), ("fit_infer", self.fit_infer)):
            out[tag] = None if f is None else {"fits": f.fits, "reasons": list(f.reasons),
                                                 "used_bytes": f.used_bytes, "limit_bytes": f.limit_bytes}
        for tag, e in (("energy_train", self.energy_train), ("energy_infer", self.energy_infer)):
            out[f"{tag}_notes"] = [] if e is None else list(e.notes)
            out[f"{tag}_placeholders"] = [] if e is None else list(e.placeholders)
        return out


def design_point(
    network,
    hardware,
    rule="spela",
    bits: BitWidths | None = None,
    batch_size: int = 1,
    precision=UNSET,
    weight_bits: int | None = None,
    counts: Counts | None = None,
    infer_counts: Counts | None = None,
    exit_layer: int | None = None,
    readouts: str = "exit",
    budget=None,
    samples_per_day: float = 1000.0,
    optimizer=None,
    n_classes: int | None = None,
    allow_dram_spill: bool | None = None,
    **ledger_options,
) -> DesignPointResult:
    """Ledger + tiling + energy/latency of one configuration.

    Parameters
    ----------
    network : Workload, NetworkSpec or sequence of int
        ``(784, 1024, 10)``, ``vgg8()``, ...
    hardware : HardwareConfig, preset name or path to a TOML file
    rule : str or rule spec
        Any name in :data:`sim.algorithms.ALGORITHMS` (energy only for those in
        :data:`sim.workload.COUNT_RULES`).
    bits, precision, weight_bits
        Storage widths, one of them required (see :func:`resolve_bits`): ``precision=None`` is
        float32 as in ``spela_hw`` (priced with floating-point costs; a crossbar preset rejects
        it), never a silent int8.
    batch_size : int
    counts, infer_counts : Counts, optional
        Counts of a real run (``clf.train_counts_`` / ``clf.inference_counts(...)``); closed-form
        counts are used when omitted.
    exit_layer, readouts
        Inference: the layer read out (early exit) and whether every layer up to it reads out.
    budget : str, float or MemoryBudget, optional
        ``"256 KiB"`` (SRAM; weights in crossbar cells do not count against it) or
        ``"sram=256KiB,crossbar=1MiB,dram=2GiB"`` (see :class:`~sim.ledger.MemoryBudget`).
    samples_per_day : float
        For the lifetime estimate.
    optimizer : {"sgd", "momentum", "adam"}, optional
        Overrides the rule spec's optimiser in the ledger.
    allow_dram_spill : bool, optional
        Whether the budget check accepts rows spilled to DRAM (see :meth:`MemoryLedger.fits`;
        default on chip only unless ``budget`` limits DRAM). Energy always prices the spill.
    """
    hw: HardwareConfig = resolve_hardware(hardware)
    wl: Workload = as_workload(network, n_classes)
    name = algorithm_profile(rule).name
    bw = resolve_bits(bits, precision, weight_bits)
    last = wl.n_layers - 1
    exit_k = last if exit_layer is None else exit_layer
    if exit_k < 0:
        exit_k += wl.n_layers
    led_t = memory_ledger(wl, rule, bw, batch_size, "train", hw, optimizer=optimizer, **ledger_options)
    led_i = memory_ledger(wl, rule, bw, 1, "infer", hw, optimizer=optimizer, exit_layer=exit_k,
                          readouts="all" if readouts == "all" else "exit", **ledger_options)
    tiling = tile_workload(wl, hw, bw.weight, bw.activation, bw.error, bw.class_vector) if hw.has_crossbar \
        else TilingResult(hw.name, (), 0.0)
    source = "run" if counts is not None else "closed_form"
    e_t = e_i = None
    if counts is not None or name in COUNT_RULES:
        if counts is None:
            counts = closed_form_counts(wl, rule, batch_size, "train")
        elif counts.phase != "train":
            raise ConfigError("counts", f"must be training counts, got phase {counts.phase!r}")
        e_t = energy_breakdown(counts, wl, hw, bw, name, tiling, led_t, samples_per_day=samples_per_day)
        if infer_counts is None:
            infer_counts = closed_form_counts(wl, rule, 1, "infer", exit_layer=exit_k, readouts=readouts)
        e_i = energy_breakdown(infer_counts, wl, hw, bw, name, tiling, led_i, samples_per_day=samples_per_day)
    fit_t = fit_i = None
    budget_txt = ""
    if budget is not None:
        b = MemoryBudget.coerce(budget)
        fit_t, fit_i = led_t.fits(b, allow_dram_spill), led_i.fits(b, allow_dram_spill)
        budget_txt = b.describe()
    conv = {**hw.conventions.describe(), "optimizer": led_t.conventions["optimizer"]}
    return DesignPointResult(name, hw.name, wl.name, batch_size, bw, led_t, led_i, tiling, e_t, e_i, fit_t,
                             fit_i, budget_txt, conv, source, exit_k, hw)


def energy_interval(network, hardware, rule="spela", phase: str = "train", **design_point_options) -> EnergyInterval:
    """Energy per sample of one design point as (nominal, low, high) over the placeholder ranges.

    Every placeholder of the energy tables has a ``low``/``high`` range with its reason
    (``sim/tables/placeholders.toml``); energy is counts x non-negative prices that rise with each
    placeholder, so all placeholders at their low (high) ends bound it exactly.

    Parameters
    ----------
    network, hardware, rule
        As in :func:`design_point`.
    phase : {"train", "infer"}
    **design_point_options
        Passed to :func:`design_point` (``weight_bits=8``, ``batch_size``, ``counts``, ...).

    Example
    -------
    >>> iv = energy_interval((784, 256, 10), "sram-cim-22nm", "spela", weight_bits=8)
    >>> iv.low_pj <= iv.nominal_pj <= iv.high_pj
    True
    """
    return design_point(network, hardware, rule, **design_point_options).interval(phase)


def compare_energy(rule_point: DesignPointResult, baseline_point: DesignPointResult,
                   phase: str = "train") -> EnergyAdvantage:
    """Does ``rule_point`` stay cheaper than ``baseline_point`` over the whole placeholder range?

    Both points run on the same chip, so one placeholder value prices both: the difference
    ``rule - baseline`` is bounded over the vertices of the box of the placeholders that move
    either energy (:class:`~sim.energy.EnergyAdvantage`; ``survives`` says whether the rule is
    cheaper everywhere, ``survives_independent`` the looser high-vs-low check).

    Example
    -------
    >>> sp = design_point((784, 256, 10), "sram-cim-22nm", "spela", weight_bits=8)
    >>> bp = design_point((784, 256, 10), "sram-cim-22nm", "backprop", weight_bits=8)
    >>> compare_energy(sp, bp).difference_nominal_pj < 0
    True
    """
    if rule_point.hardware_config is None or baseline_point.hardware_config is None:
        raise ConfigError("rule_point", "needs design points made by design_point()")
    return energy_advantage(rule_point.priced(phase), baseline_point.priced(phase))
