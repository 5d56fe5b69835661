"""Energy and latency per sample: action events x per-action energies, as in Accelergy.

Two halves. **Counting** (:func:`action_events`): the learner's :class:`~spela_hw.counts.Counts`
(from a real run, or :func:`~sim.workload.closed_form_counts`) become an events table,
:class:`ActionEvents`, of hardware *actions* per sample (cell reads, ADC conversions, digital MACs,
loss-unit operations, programming pulses, buffer accesses, DRAM bits), one row per layer,
category, item and action, using the tiling of each layer and the hardware's conventions; the
latency comes with it (it depends on no price). **Pricing** (:func:`price_events`): each action
has one energy in :class:`ActionCosts`, built from the shipped tables and the hardware
description, and energy = sum of events x cost, an :class:`EnergyBreakdown` itemised per layer and
category. :func:`energy_breakdown` does both; :class:`PricedPoint` re-prices the same events at
the placeholders' corners. Categories:

==================  ==========================================================================
forward_mvm         array reads, input drivers / DACs, shift-add, bias and activation (also of
                    sigprop's target stream: ``target_macs`` are priced as MVMs of the layer's
                    arrays, ``target_macs / (m n)`` of them, its label front included)
adc_dac             ADC conversions of the forward (and target-stream) reads
error_path          backprop's transposed reads and their ADCs (or digital ``W^T delta`` MACs)
readout             class-vector read-out (early exit) MVMs
loss_unit           SPELA's cosine datapath (``|h|^2``, ``h.v``, rsqrt, divide) / softmax
update              outer product, accumulate, stochastic-rounding random bits
weight_write        programming pulses and the read before each write (or SRAM writes)
buffer              activation, class-vector, master-copy and digital weight traffic
dram                bits moved to and from DRAM (batch state that did not fit on chip)
==================  ==========================================================================

Digital energies are 45 nm table values scaled by the process factor (convention ``scaling``);
ADC energies are used as published; device read/write energies are ``V^2 G t`` of the cell;
DRAM is not scaled unless ``dram_scaling``. Latency assumes layers run one after another, arrays
of a layer in parallel, buffer traffic overlapped with compute, and no weight duplication.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from spela_hw.counts import Counts
from spela_hw.errors import ConfigError

from .config import HardwareConfig
from .ledger import BitWidths, MemoryLedger
from .tables import EnergyTables, load_tables
from .tiling import MatrixTiling, TilingResult, tile_workload
from .workload import Workload

__all__ = ["ActionCost", "ActionCosts", "action_costs", "EnergyItem", "EnergyBreakdown",
           "ActionEvent", "ActionEvents", "action_events", "action_widths", "digital_cycles", "price_events",
           "energy_breakdown", "CATEGORIES", "lifetime_days", "corner_costs", "events_by_action", "reprice",
           "EnergyInterval", "PricedPoint", "EnergyAdvantage", "energy_advantage"]

CATEGORIES = ("forward_mvm", "adc_dac", "error_path", "readout", "loss_unit", "update", "weight_write",
              "buffer", "dram")

ACTIONS = (
    "cell_read", "input_driver", "dac", "adc_forward", "adc_error", "shift_add", "bias_activation",
    "digital_mac_forward", "digital_mac_error", "digital_mac_readout", "loss_mac", "loss_op",
    "update_mul", "update_accumulate", "sr_random", "write_pulse", "read_before_write",
    "weight_write_digital", "weight_read_digital", "act_read", "act_write", "cv_read",
    "master_rmw", "dram_bit", "array_mac",
)


@dataclass(frozen=True)
class ActionCost:
    """Energy of one action with its provenance (``kind`` as in the tables)."""

    pj: float
    kind: str
    basis: str


@dataclass(frozen=True)
class ActionCosts:
    """Energy per event of every action (see :data:`ACTIONS`)."""

    costs: dict
    input_bit_activity: float = 0.5

    def __getitem__(self, action: str) -> ActionCost:
        return self.costs[action]

    @classmethod
    def uniform(cls, pj: float = 1.0) -> "ActionCosts":
        """Every action costs ``pj`` (golden tests: totals equal event counts)."""
        return cls({a: ActionCost(float(pj), "golden", f"{pj} pJ per action") for a in ACTIONS}, 1.0)

    def placeholders(self) -> list[str]:
        return sorted(a for a, c in self.costs.items() if c.kind == "placeholder")

    def to_records(self) -> list[dict]:
        return [{"action": a, **asdict(c)} for a, c in self.costs.items()]


def _weight_level_bank_bits(hw: HardwareConfig) -> float:
    return hw.sram.bank_bytes * 8


def action_costs(hardware: HardwareConfig, bits: BitWidths, tables: EnergyTables | None = None) -> ActionCosts:
    """Per-action energies for ``hardware`` at ``bits`` under its conventions."""
    t = tables or load_tables()
    hw, conv = hardware, hardware.conventions
    tech = hw.technology
    f = t.energy_factor(tech.node_nm, tech.vdd_v, conv.scaling)
    scale_txt = f"x{f:.3g} ({conv.scaling}, {tech.node_nm:g} nm, {tech.vdd_v:g} V)"
    fl = bits.is_float
    bank = _weight_level_bank_bits(hw)

    def sram_bit(array_bits: float, tensor_bits: float | None = None) -> float:
        return t.sram_pj_per_bit(array_bits, conv.sram_law, tensor_bits) * f

    wr = conv.sram_write_to_read
    c: dict[str, ActionCost] = {}
    mac_fw = t.mac_pj(bits.weight, bits.activation, bits.accumulator, fl) * f
    c["digital_mac_forward"] = ActionCost(mac_fw, "fit", f"mul({bits.weight},{bits.activation}) + add({bits.accumulator}) {scale_txt}")
    c["digital_mac_error"] = ActionCost(t.mac_pj(bits.weight, bits.error, bits.accumulator, fl) * f, "fit",
                                        f"mul({bits.weight},{bits.error}) + add({bits.accumulator}) {scale_txt}")
    c["digital_mac_readout"] = ActionCost(t.mac_pj(bits.class_vector, bits.activation, bits.accumulator, fl) * f, "fit",
                                          f"mul({bits.class_vector},{bits.activation}) + add({bits.accumulator}) {scale_txt}")
    c["loss_mac"] = ActionCost(t.mac_pj(bits.activation, bits.activation, bits.accumulator, fl) * f, "fit",
                               f"mul({bits.activation},{bits.activation}) + add({bits.accumulator}) {scale_txt}")
    seed_bits = t.value("rsqrt_seed_table_bits")
    seed_pj = sram_bit(seed_bits) * bits.update
    c["loss_op"] = ActionCost(t.rsqrt_pj(bits.update, seed_pj) * f if not fl else
                              t.rsqrt_multiplies() * t.mul_pj(32, is_float=True) * f, "placeholder",
                              f"Newton-Raphson rsqrt/divide at {bits.update} bits + seed-table read {scale_txt}")
    c["update_mul"] = ActionCost(t.mul_pj(bits.update, bits.activation, fl) * f, "fit",
                                 f"mul({bits.update},{bits.activation}) {scale_txt}")
    acc_bits = bits.master or bits.weight
    c["update_accumulate"] = ActionCost(t.add_pj(acc_bits, fl) * f, "fit", f"add({acc_bits}) {scale_txt}")
    c["sr_random"] = ActionCost(t.rng_pj(bits.sr_random_bits) * f if bits.sr_random_bits else 0.0, "placeholder",
                                f"{bits.sr_random_bits} random bits = add({bits.sr_random_bits}) {scale_txt}")
    c["act_read"] = ActionCost(sram_bit(bank) * bits.activation, "fit",
                               f"{bits.activation} bits x SRAM {conv.sram_law} at bank {hw.sram.bank_bytes / 1024:g} KiB {scale_txt}")
    c["act_write"] = ActionCost(sram_bit(bank) * bits.activation * wr, "placeholder" if wr == 1.0 else "fit",
                                f"act_read x sram_write_to_read={wr:g}")
    c["master_rmw"] = ActionCost(sram_bit(bank) * bits.master * (1 + wr) if bits.master else 0.0, "fit",
                                 f"read + write of {bits.master} bits (SRAM)")
    c["weight_read_digital"] = ActionCost(sram_bit(bank) * bits.weight, "fit", f"{bits.weight} bits x SRAM")
    c["weight_write_digital"] = ActionCost(sram_bit(bank) * bits.weight * wr, "placeholder" if wr == 1.0 else "fit",
                                           f"{bits.weight} bits x SRAM write (= read x {wr:g})")
    # class-vector storage
    st = conv.class_vector_storage
    if st == "seed":
        n_cls_pj = t.rng_pj(16) + t.mac_pj(16, 16, 32)
        c["cv_read"] = ActionCost(n_cls_pj * f, "placeholder",
                                  "regenerated from the seed: one 16-bit random draw + one MAC per value per basis vector "
                                  "(multiplied by N-1 in the events)")
    elif st == "nvm" and hw.nvm is not None:
        c["cv_read"] = ActionCost(t.value("flash_read_pj_per_bit") * bits.class_vector, "placeholder",
                                  f"{bits.class_vector} bits x flash read")
    elif st in ("nvm", "crossbar") and hw.has_crossbar:
        dev = hw.crossbar.device
        e = (dev.read_energy_pj() if dev.is_nonvolatile else t.value("sram_cim_cell_read")) + t.adc_pj(1, conv.adc_energy)[0]
        c["cv_read"] = ActionCost(e * bits.class_vector, "derived", "cell read + 1-bit sense per stored bit")
    else:
        c["cv_read"] = ActionCost(sram_bit(bank) * bits.class_vector, "fit", f"{bits.class_vector} bits x SRAM")
    dram = t.dram_pj_per_bit(hw.dram.energy_level) * (f if conv.dram_scaling else 1.0)
    c["dram_bit"] = ActionCost(dram, "published", f"DRAM {hw.dram.energy_level} (Horowitz){' scaled' if conv.dram_scaling else ''}")
    # crossbar actions
    if hw.has_crossbar:
        dev, pe = hw.crossbar.device, hw.periphery
        if dev.is_nonvolatile:
            c["cell_read"] = ActionCost(dev.read_energy_pj(), "derived",
                                        f"V_read^2 G_mean t_read = {dev.read_voltage_v:g} V, {dev.read_pulse_s * 1e9:g} ns")
        else:
            c["cell_read"] = ActionCost(t.value("sram_cim_cell_read"), "placeholder", "SRAM CIM cell, one input cycle")
        if pe.input_encoding == "bit_serial":
            c["input_driver"] = ActionCost(t.value("input_driver_per_row_cycle") * f, "placeholder",
                                           f"word-line driver per row per cycle {scale_txt}")
            c["dac"] = ActionCost(0.0, "published", "bit-serial inputs: no DAC (NeuroSim)")
        else:
            c["input_driver"] = ActionCost(0.0, "published", "DAC inputs")
            c["dac"] = ActionCost(t.value("dac_per_conversion_per_bit") * pe.dac_bits * f, "placeholder",
                                  f"{pe.dac_bits}-bit DAC {scale_txt}")
        e_adc, k_adc = t.adc_pj(pe.adc_bits, conv.adc_energy)
        c["adc_forward"] = ActionCost(e_adc, k_adc, f"{pe.adc_bits}-bit ADC, {conv.adc_energy}")
        e_adc, k_adc = t.adc_pj(pe.adc_bits_error, conv.adc_energy)
        c["adc_error"] = ActionCost(e_adc, k_adc, f"{pe.adc_bits_error}-bit ADC, {conv.adc_energy}")
        c["shift_add"] = ActionCost(t.add_pj(bits.accumulator) * f, "fit", f"add({bits.accumulator}) {scale_txt}")
        if dev.is_nonvolatile:
            c["write_pulse"] = ActionCost(dev.write_pulse_energy_pj(), "derived",
                                          f"V_write^2 G_mean t_write = {dev.write_voltage_v:g} V, {dev.write_pulse_s * 1e9:g} ns")
            c["read_before_write"] = ActionCost(dev.read_energy_pj() + t.adc_pj(hw.crossbar.cell_bits, conv.adc_energy)[0],
                                                "derived", "cell read + sense at cell bits")
        else:
            arr_bits = hw.crossbar.rows * hw.crossbar.cols
            c["write_pulse"] = ActionCost(sram_bit(arr_bits) * wr, "placeholder" if wr == 1.0 else "fit",
                                          f"SRAM bit write in a {arr_bits}-bit array (= read x {wr:g})")
            c["read_before_write"] = ActionCost(sram_bit(arr_bits), "fit", f"SRAM bit read in a {arr_bits}-bit array")
    else:
        for a in ("cell_read", "input_driver", "dac", "adc_forward", "adc_error", "shift_add", "write_pulse",
                  "read_before_write"):
            c[a] = ActionCost(0.0, "published", "no crossbar")
    c["array_mac"] = ActionCost(0.0, "published", "no calibrated chip model")
    if hw.chip is not None:
        _calibrated_chip_costs(c, hw)
    c["bias_activation"] = ActionCost(t.add_pj(bits.accumulator, fl) * f, "fit",
                                      f"bias add at {bits.accumulator} bits (activation select folded in) {scale_txt}")
    return ActionCosts(c, t.value("input_bit_activity"))


def _calibrated_chip_costs(c: dict, hw: HardwareConfig) -> None:
    """Replace the array and periphery prices by the preset's calibrated chip coefficients.

    Every column conversion costs ``e_read`` (sense/ADC, precharge, word-line drive, mux,
    shift-add: its input drivers, shift-add and, for the transposed read, its converter are
    inside it), every array MAC ``e_mac`` (cells, buffers, interconnect, leakage: cell reads
    are inside it). The error path reuses the forward coefficients: Table VII calibrates reads only.
    """
    from .periphery import neurosim_table

    coeffs = neurosim_table()[1]
    if hw.chip.calibration not in coeffs:
        raise ConfigError("chip.calibration", f"unknown calibration {hw.chip.calibration!r}; known: {', '.join(sorted(coeffs))}")
    k = coeffs[hw.chip.calibration]
    src = f"calibrated on {k.source}"
    for a in ("adc_forward", "adc_error"):
        c[a] = ActionCost(k.read_energy_pj, "calibrated", f"per-read periphery e_read ({hw.chip.calibration}), {src}")
    for a, inside in (("shift_add", "e_read"), ("input_driver", "e_read"), ("cell_read", "e_mac")):
        c[a] = ActionCost(0.0, "calibrated", f"inside the calibrated {inside} ({hw.chip.calibration})")
    c["array_mac"] = ActionCost(k.mac_energy_fj * 1e-3, "calibrated",
                                f"per-MAC array, buffer, interconnect and leakage e_mac ({hw.chip.calibration}), {src}")


@dataclass(frozen=True)
class EnergyItem:
    """One line of a breakdown: events per sample x energy per event."""

    category: str
    item: str
    layer: str
    action: str
    events: float
    pj_per_event: float
    energy_pj: float
    kind: str
    basis: str


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy (pJ per sample) by category, item and layer, plus latency (ns per sample).

    Attributes
    ----------
    phase : {"train", "infer"}
    algorithm, hardware, network : str
    items : tuple of EnergyItem
    latency_ns : dict
        Per-sample latency by stage (``forward``, ``error_path``, ``readout``, ``digital``,
        ``weight_write``, ``dram``); ``total`` is their sum.
    conventions : dict
        Every switch in force (printed in every output).
    placeholders : tuple of str
        Actions priced with placeholder numbers.
    notes : tuple of str
    lifetime_days : float or None
        Days until the most-written cell reaches the device endurance at ``samples_per_day``.
    events : ActionEvents or None
        The events table the items price (:func:`price_events`); re-priced at other costs by
        :class:`PricedPoint`.
    """

    phase: str
    algorithm: str
    hardware: str
    network: str
    items: tuple[EnergyItem, ...]
    latency_ns: dict
    conventions: dict
    placeholders: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    lifetime_days: float | None = None
    samples_per_day: float = 0.0
    events: ActionEvents | None = field(default=None, repr=False, compare=False)

    @property
    def total_pj(self) -> float:
        return float(sum(i.energy_pj for i in self.items))

    def by_category(self) -> dict[str, float]:
        out = {c: 0.0 for c in CATEGORIES}
        for i in self.items:
            out[i.category] += i.energy_pj
        return out

    def by_layer(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i in self.items:
            out[i.layer] = out.get(i.layer, 0.0) + i.energy_pj
        return out

    def to_records(self) -> list[dict]:
        base = {"phase": self.phase, "algorithm": self.algorithm, "hardware": self.hardware, "network": self.network}
        return [{**base, **asdict(i)} for i in self.items]

    def summary(self) -> dict:
        return {"phase": self.phase, "algorithm": self.algorithm, "hardware": self.hardware,
                "network": self.network, "energy_pj": self.total_pj, **{f"{k}_pj": v for k, v in self.by_category().items()},
                "latency_ns": self.latency_ns.get("total", 0.0), "lifetime_days": self.lifetime_days}


def lifetime_days(endurance_cycles: float | None, writes_per_cell_per_sample: float, samples_per_day: float) -> float | None:
    """Days of on-device learning before the most-written cell reaches its endurance."""
    if endurance_cycles is None or samples_per_day <= 0:
        return None
    if writes_per_cell_per_sample <= 0:
        return math.inf
    return endurance_cycles / (writes_per_cell_per_sample * samples_per_day)


# -- action events: what one sample executes, before pricing ------------------------------------


@dataclass(frozen=True)
class ActionEvent:
    """One row of the events table: ``count`` actions of one kind per sample.

    ``bits`` is the width of what one event moves or produces (:func:`action_widths`); its price
    already includes it. A ``cell_read`` counts every (cell, input cycle) pair: pricing charges
    the ``input_bit_activity`` fraction of them (inputs that are 1 drive current).
    """

    layer: str
    category: str
    item: str
    action: str
    count: float
    bits: int


@dataclass(frozen=True)
class ActionEvents:
    """The events table of one design point and phase: the counts half of counts x prices.

    Attributes
    ----------
    phase, algorithm, hardware, network : str
    rows : tuple of ActionEvent
        In the order of the priced breakdown's items.
    latency_ns : dict
        Per-sample latency by stage (the tiling's converter slots, write pulses, the digital
        unit's cycles, DRAM bandwidth): it does not depend on prices.
    conventions : dict
    notes : tuple of str
    lifetime_days : float or None
        Days until the most-written cell reaches the device endurance at ``samples_per_day``.
    samples_per_day : float
    """

    phase: str
    algorithm: str
    hardware: str
    network: str
    rows: tuple[ActionEvent, ...]
    latency_ns: dict
    conventions: dict
    notes: tuple[str, ...] = ()
    lifetime_days: float | None = None
    samples_per_day: float = 0.0

    def by_action(self) -> dict[str, float]:
        """Events per sample of every action."""
        out: dict[str, float] = {}
        for r in self.rows:
            out[r.action] = out.get(r.action, 0.0) + r.count
        return out

    def to_records(self) -> list[dict]:
        base = {"phase": self.phase, "algorithm": self.algorithm, "hardware": self.hardware, "network": self.network}
        return [{**base, **asdict(r)} for r in self.rows]


def action_widths(hardware: HardwareConfig, bits: BitWidths) -> dict[str, int]:
    """Width in bits of what one event of each action moves or produces (the events' ``bits``)."""
    acc, cell = bits.accumulator, hardware.crossbar.cell_bits if hardware.has_crossbar else 0
    pe = hardware.periphery
    return {"cell_read": cell, "input_driver": 1, "dac": pe.dac_bits if pe else 0,
            "adc_forward": pe.adc_bits if pe else 0, "adc_error": pe.adc_bits_error if pe else 0,
            "shift_add": acc, "bias_activation": acc, "digital_mac_forward": acc, "digital_mac_error": acc,
            "digital_mac_readout": acc, "loss_mac": acc, "array_mac": acc, "loss_op": bits.update,
            "update_mul": bits.update, "update_accumulate": bits.master or bits.weight,
            "sr_random": bits.sr_random_bits, "write_pulse": cell, "read_before_write": cell,
            "weight_write_digital": bits.weight, "weight_read_digital": bits.weight, "act_read": bits.activation,
            "act_write": bits.activation, "cv_read": bits.class_vector, "master_rmw": bits.master, "dram_bit": 1}


def digital_cycles(tables: EnergyTables) -> dict[str, float]:
    """Cycles of the digital unit per event of each action it runs (its latency; others take none).

    A MAC or product takes one cycle; a loss-unit operation is its Newton-Raphson multiplies
    (:meth:`~sim.tables.EnergyTables.rsqrt_multiplies`, the same count its energy is priced with).
    """
    one = ("digital_mac_forward", "digital_mac_error", "digital_mac_readout", "loss_mac", "update_mul")
    return {**dict.fromkeys(one, 1.0), "loss_op": tables.rsqrt_multiplies()}


class _Emitter:
    """Collects the non-zero rows of an events table."""

    def __init__(self, widths: dict[str, int]):
        self.rows: list[ActionEvent] = []
        self.widths = widths

    def __call__(self, category: str, item: str, layer: str, action: str, count) -> None:
        if count:
            self.rows.append(ActionEvent(layer, category, item, action, float(count), self.widths[action]))


def action_events(
    counts: Counts,
    workload: Workload,
    hardware: HardwareConfig,
    bits: BitWidths,
    algorithm: str,
    tiling: TilingResult | None = None,
    ledger: MemoryLedger | None = None,
    samples_per_day: float = 1000.0,
    tables: EnergyTables | None = None,
) -> ActionEvents:
    """The hardware actions one sample of ``counts`` executes on ``hardware`` (no prices).

    Parameters are those of :func:`energy_breakdown` (``algorithm`` names the rule in the output;
    the error path is priced from ``error_macs`` whatever the rule). ``tables`` give the loss
    unit's cycles (:func:`digital_cycles`; default the shipped tables).
    """
    if counts.n_layers != workload.n_layers:
        raise ConfigError("counts", f"has {counts.n_layers} layers, the workload {workload.n_layers}")
    hw = hardware
    if hw.has_crossbar and bits.is_float:
        raise ConfigError("precision", f"{hw.name} stores weights in crossbar cells: use fixed-point weights")
    if tiling is None and hw.has_crossbar:
        tiling = tile_workload(workload, hw, bits.weight, bits.activation, bits.error, bits.class_vector)
    n_s = max(counts.samples, 1)
    ps = {k: v.astype(np.float64) / n_s for k, v in counts.data.items()}
    emit = _Emitter(action_widths(hw, bits))
    lat = dict.fromkeys(("forward", "error_path", "readout", "digital", "weight_write", "dram"), 0.0)
    tiles = {(t.layer, t.matrix): t for t in tiling.matrices} if tiling is not None else {}
    writes_per_cell, notes = 0.0, []
    for k, L in enumerate(workload.layers):
        p = {name: v[k] for name, v in ps.items()}
        if hw.has_crossbar:
            w = _crossbar_layer_events(emit, lat, L, tiles[L.name, "weights"], p, hw, bits, counts.update_steps / n_s)
            writes_per_cell = max(writes_per_cell, w)
        else:
            _digital_layer_events(emit, L, p, hw.conventions)
        emit("forward_mvm", "bias + activation", L.name, "bias_activation",
             (p["forward_macs"] / L.weights + p["target_macs"] / L.weights) * L.fan_out)
        _readout_events(emit, lat, L, tiles.get((L.name, "class_vectors")), p, hw)
        _local_events(emit, L, p, bits, workload.n_classes, hw.conventions.class_vector_storage,
                      (L.name, "class_vectors") in tiles)
    if hw.has_crossbar and not hw.crossbar.transposable and any(r.category == "error_path" for r in emit.rows):
        notes.append(f"{algorithm} needs transposed reads but {hw.name}'s arrays are not transposable")
    cycles = digital_cycles(tables or load_tables())
    ops = sum(r.count * cycles[r.action] for r in emit.rows if r.action in cycles)
    lat["digital"] = ops / (hw.technology.digital_macs_per_cycle * hw.technology.clock_hz) * 1e9
    if ledger is not None:
        lat["dram"] += _dram_events(emit, ledger, counts.update_steps / n_s, hw.dram.bandwidth_bps)
    lat = {k: float(v) for k, v in lat.items()}
    lat["total"] = sum(lat.values())
    dev = hw.crossbar.device if hw.has_crossbar else None
    life = None
    if dev is not None and dev.is_nonvolatile:
        life = lifetime_days(dev.endurance_cycles, float(writes_per_cell), samples_per_day)
    return ActionEvents(counts.phase, algorithm, hw.name, workload.name, tuple(emit.rows), lat,
                        dict(hw.conventions.describe()), tuple(notes), life, float(samples_per_day))


def _array_read_events(emit, L, t: MatrixTiling, mvms: float, stream: str, adc_item: str, dac: bool) -> None:
    """Cell reads, input drivers (or DACs), conversions and shift-adds of ``mvms`` forward reads."""
    emit("forward_mvm", f"{stream}array read", L.name, "cell_read", mvms * t.input_cycles * L.fan_in * t.columns)
    emit("forward_mvm", f"{stream}input drivers", L.name, "input_driver", mvms * t.input_cycles * L.fan_in * t.col_tiles)
    if dac:
        emit("forward_mvm", f"{stream}DAC", L.name, "dac", mvms * L.fan_in * t.col_tiles)
    emit("adc_dac", adc_item, L.name, "adc_forward", mvms * t.conversions_per_mvm)
    emit("forward_mvm", f"{stream}shift-add", L.name, "shift_add", mvms * t.conversions_per_mvm)


def _crossbar_layer_events(emit, lat: dict, L, t: MatrixTiling, p: dict, hw: HardwareConfig, bits: BitWidths,
                           steps_per_sample: float) -> float:
    """Forward (and target-stream) reads, transposed error reads and writes of one layer's arrays.

    Adds the stages' latency to ``lat``; returns the writes per weight cell per sample.
    """
    conv, name, mn = hw.conventions, L.name, L.weights
    fwd, err, tgt = p["forward_macs"] / mn, p["error_macs"] / mn, p["target_macs"] / mn
    rate, dac = hw.periphery.adc_rate_sps, hw.periphery.input_encoding == "dac"
    _array_read_events(emit, L, t, fwd, "", "forward ADC", dac)
    emit("forward_mvm", "array, buffers, interconnect, leakage (calibrated)", name, "array_mac",
         (fwd + tgt) * mn if hw.chip is not None else 0)
    lat["forward"] += fwd * t.adc_slots_per_mvm / rate * 1e9
    if tgt:  # sigprop's target stream through the same arrays (in MVM equivalents)
        _array_read_events(emit, L, t, tgt, "target stream ", "target stream ADC", dac)
        lat["forward"] += tgt * t.adc_slots_per_mvm / rate * 1e9
    if err:
        # every cell sees each error-bit cycle, as in the forward read
        emit("error_path", "transposed array read", name, "cell_read",
             err * (bits.error if t.input_cycles > 1 else 1) * L.fan_in * t.columns)
        emit("error_path", "error ADC", name, "adc_error", err * t.conversions_t_per_mvm)
        emit("error_path", "shift-add", name, "shift_add", err * t.conversions_t_per_mvm)
        emit("error_path", "array, buffers, interconnect, leakage (calibrated)", name, "array_mac",
             err * mn if hw.chip is not None else 0)
        lat["error_path"] += err * t.adc_slots_t_per_mvm / rate * 1e9
    writes = p["weight_writes" if conv.write_accounting == "dense" else "update_writes"]
    cells, dev = t.slices * t.signed_factor, hw.crossbar.device
    if dev.is_nonvolatile:
        emit("weight_write", "programming pulses", name, "write_pulse", writes * cells * dev.pulses_per_write)
    else:
        emit("weight_write", "SRAM cell writes", name, "write_pulse", writes * cells)
    emit("weight_write", "read before write", name, "read_before_write", writes * cells)
    # rows are written one after another; arrays in parallel
    t_row = dev.pulses_per_write * dev.write_pulse_s * dev.write_phases if dev.is_nonvolatile \
        else 1.0 / hw.technology.clock_hz
    if writes:
        lat["weight_write"] += steps_per_sample * min(L.fan_in, hw.crossbar.rows) * t_row * 1e9
    # every dense write cycles each cell of the weight once (endurance counts cycles)
    return writes / max(L.weights + L.biases, 1)


def _digital_layer_events(emit, L, p: dict, conv) -> None:
    """Forward, target-stream and error MACs and the weight traffic of a layer in digital SRAM."""
    name = L.name
    emit("forward_mvm", "digital MACs", name, "digital_mac_forward", p["forward_macs"])
    emit("forward_mvm", "target stream digital MACs", name, "digital_mac_forward", p["target_macs"])
    emit("error_path", "digital MACs (W^T delta)", name, "digital_mac_error", p["error_macs"])
    reads = p["weight_reads"]
    if conv.conv_weight_reads == "per_position" and L.positions > 1:
        reads += (L.positions - 1) * (L.weights + L.biases) * (p["forward_macs"] / L.weights) / L.positions
    emit("buffer", "weight reads", name, "weight_read_digital", reads)
    emit("weight_write", "weight writes (SRAM)", name, "weight_write_digital",
         p["weight_writes" if conv.write_accounting == "dense" else "update_writes"])


def _readout_events(emit, lat: dict, L, tc: MatrixTiling | None, p: dict, hw: HardwareConfig) -> None:
    """The class-vector read-out (early exit): an array read when the class vectors sit in arrays."""
    ro = p["readout_macs"]
    if not ro:
        return
    if tc is None:
        emit("readout", "digital MACs", L.name, "digital_mac_readout", ro)
        return
    mvms = ro / (tc.fan_in * tc.fan_out)
    emit("readout", "class-vector array read", L.name, "cell_read", mvms * tc.input_cycles * tc.fan_in * tc.columns)
    emit("readout", "read-out ADC", L.name, "adc_forward", mvms * tc.conversions_per_mvm)
    emit("readout", "shift-add", L.name, "shift_add", mvms * tc.conversions_per_mvm)
    lat["readout"] += mvms * tc.adc_slots_per_mvm / hw.periphery.adc_rate_sps * 1e9


def _local_events(emit, L, p: dict, bits: BitWidths, n_classes: int, cv_storage: str, cv_in_arrays: bool) -> None:
    """Loss unit, update and buffer traffic of one layer (digital on every platform)."""
    name, writes = L.name, p["weight_writes"]
    emit("loss_unit", "MACs (|h|^2, h.v, input norm)", name, "loss_mac", p["loss_macs"])
    emit("loss_unit", "rsqrt / divide / exp", name, "loss_op", p["loss_unit_ops"])
    emit("update", "outer product", name, "update_mul", p["update_macs"])
    emit("update", "accumulate", name, "update_accumulate", writes)
    if bits.sr_random_bits:
        emit("update", "stochastic-rounding random bits", name, "sr_random", writes)
    if bits.master:
        emit("buffer", "master copy read-modify-write", name, "master_rmw", writes)
    emit("buffer", "activation reads", name, "act_read", p["act_reads"])
    emit("buffer", "activation writes", name, "act_write", p["act_writes"])
    cv = p["class_vector_reads"]
    if cv and not cv_in_arrays:
        # a seed regenerates v_y from the N - 1 basis vectors it mixes
        emit("buffer", "class-vector reads", name, "cv_read", cv * ((n_classes - 1) if cv_storage == "seed" else 1))
    elif cv and p["readout_macs"] == 0:
        # training reads v_y from arrays holding the class vectors
        emit("buffer", "class-vector reads", name, "cv_read", cv)


def _dram_events(emit, ledger: MemoryLedger, steps_per_sample: float, bandwidth_bps: float) -> float:
    """DRAM bits of the ledger's rows placed in DRAM; returns their transfer time (ns per sample).

    Batch state is written and read back once per sample; optimiser state, gradients and master
    copies once per update step.
    """
    ns = 0.0
    for r in ledger.rows:
        if r.level != "dram" or not r.bytes:
            continue
        per_sample = (2 * r.bytes * 8 * steps_per_sample) if r.persistent else (2 * r.bytes * 8 / ledger.batch_size)
        emit("dram", f"{r.tensor_class} (write + read)", "all", "dram_bit", per_sample)
        ns += per_sample / 8 / bandwidth_bps * 1e9
    return ns


# -- pricing: events x energy table -------------------------------------------------------------


def _charged(row: ActionEvent, costs: ActionCosts) -> float:
    """Events of ``row`` that cost energy: cell reads only when their input bit is 1."""
    return row.count * costs.input_bit_activity if row.action == "cell_read" else row.count


def price_events(events: ActionEvents, costs: ActionCosts) -> EnergyBreakdown:
    """Energy of ``events`` at ``costs``: one item per row, events x energy per event."""
    items = []
    for r in events.rows:
        n, c = _charged(r, costs), costs[r.action]
        if n:
            items.append(EnergyItem(r.category, r.item, r.layer, r.action, n, c.pj, n * c.pj, c.kind, c.basis))
    placeholders = tuple(sorted({i.action for i in items if i.kind == "placeholder"}))
    return EnergyBreakdown(events.phase, events.algorithm, events.hardware, events.network, tuple(items),
                           dict(events.latency_ns), events.conventions, placeholders, events.notes,
                           events.lifetime_days, events.samples_per_day, events)


def energy_breakdown(
    counts: Counts,
    workload: Workload,
    hardware: HardwareConfig,
    bits: BitWidths,
    algorithm: str,
    tiling: TilingResult | None = None,
    ledger: MemoryLedger | None = None,
    costs: ActionCosts | None = None,
    samples_per_day: float = 1000.0,
) -> EnergyBreakdown:
    """Per-sample energy and latency of ``counts`` on ``hardware``: :func:`action_events` priced by
    :func:`price_events`.

    Parameters
    ----------
    counts : Counts
        From a training run (``clf.train_counts_``), ``inference_counts``, or
        :func:`~sim.workload.closed_form_counts`. Must describe ``workload``'s layers.
    workload : Workload
    hardware : HardwareConfig
    bits : BitWidths
    algorithm : str
        The rule's name in the output. The error path comes from the counts: ``error_macs`` are
        transposed array reads (or digital ``W^T delta`` MACs).
    tiling : TilingResult, optional
        Computed when omitted.
    ledger : MemoryLedger, optional
        Rows placed in DRAM are charged as DRAM traffic (write + read back per sample for batch
        state; per update step for optimiser state, gradients and master copies).
    costs : ActionCosts, optional
        Per-action energies; default :func:`action_costs`. ``ActionCosts.uniform(1.0)`` turns the
        result into an event count (golden tests).
    samples_per_day : float
        For the device lifetime estimate.
    """
    events = action_events(counts, workload, hardware, bits, algorithm, tiling, ledger, samples_per_day)
    return price_events(events, costs or action_costs(hardware, bits))


# -- uncertainty: placeholders at the ends of their ranges ------------------------------------------
#
# Energy is a sum of event counts x non-negative prices, and every price rises with every ranged
# placeholder (docs in sim/tables/placeholders.toml): pricing with all placeholders at their low
# (high) ends gives the exact lower (upper) bound of one design point. A difference of two design
# points on the same chip shares the placeholders, so its bounds are found at the vertices of the
# box of the placeholders that move it (the difference is monotone in each placeholder alone).

#: Above this many active placeholders the difference falls back to the independent bound.
MAX_VERTEX_PLACEHOLDERS = 14


def corner_costs(hardware: HardwareConfig, bits: BitWidths, corner="nominal",
                 tables: EnergyTables | None = None) -> ActionCosts:
    """Per-action energies with ranged placeholders at ``corner``.

    Parameters
    ----------
    corner : {"low", "nominal", "high"} or dict
        One corner for every ranged entry, or ``{entry name: corner}`` (others nominal).
        ``sram_write_to_read`` moves only when the hardware leaves the convention at the
        placeholder value.
    """
    t = tables or load_tables()
    key = corner if isinstance(corner, str) else tuple(sorted(corner.items()))
    try:
        return _corner_costs(hardware, bits, key, t)
    except TypeError:  # an unhashable hardware description: compute without the cache
        return _corner_costs.__wrapped__(hardware, bits, key, t)


@functools.lru_cache(maxsize=8192)
def _corner_costs(hardware: HardwareConfig, bits: BitWidths, key, t: EnergyTables) -> ActionCosts:
    corner = key if isinstance(key, str) else dict(key)
    wr = t.record("sram_write_to_read") if "sram_write_to_read" in t.records else None
    c_wr = corner if isinstance(corner, str) else corner.get("sram_write_to_read", "nominal")
    hw = hardware
    if wr is not None and hw.conventions.sram_write_to_read == wr.value and c_wr != "nominal":
        hw = _with_conventions(hw, sram_write_to_read=wr.at(c_wr))
    return action_costs(hw, bits, t.at_corner(corner))


def _with_conventions(hw: HardwareConfig, **changes) -> HardwareConfig:
    from dataclasses import replace

    return replace(hw, conventions=hw.conventions.with_changes(**changes))


def events_by_action(events: ActionEvents) -> dict[str, float]:
    """Events per sample of every action in an events table (see :meth:`ActionEvents.by_action`)."""
    return events.by_action()


def reprice(events: ActionEvents, costs: ActionCosts) -> float:
    """Total pJ of ``events`` at ``costs``: the ``total_pj`` of :func:`price_events` without its items."""
    return float(sum(_charged(r, costs) * costs[r.action].pj for r in events.rows))


@dataclass(frozen=True)
class EnergyInterval:
    """Energy per sample (pJ) at nominal placeholders and with all of them at their low/high ends.

    Attributes
    ----------
    phase, algorithm, hardware, network : str
    nominal_pj, low_pj, high_pj : float
        ``low_pj <= nominal_pj <= high_pj``; equal when no ranged placeholder prices this point.
    placeholders : tuple of str
        Ranged table entries that move this energy.
    """

    phase: str
    algorithm: str
    hardware: str
    network: str
    nominal_pj: float
    low_pj: float
    high_pj: float
    placeholders: tuple[str, ...] = ()

    @property
    def provenance(self) -> str:
        """``"modelled"`` or ``"placeholder-dependent"``."""
        return "placeholder-dependent" if self.high_pj > self.low_pj else "modelled"

    def to_dict(self) -> dict:
        return {**asdict(self), "placeholders": ", ".join(self.placeholders), "provenance": self.provenance}


@dataclass(frozen=True)
class PricedPoint:
    """What re-pricing one design point needs: its events, hardware and storage widths."""

    breakdown: EnergyBreakdown
    hardware: HardwareConfig
    bits: BitWidths

    def __post_init__(self):
        if self.breakdown.events is None:
            raise ConfigError("breakdown", "carries no events table: build it with energy_breakdown or price_events")

    def at(self, corner) -> float:
        """Energy per sample (pJ) with placeholders at ``corner`` (see :func:`corner_costs`)."""
        return reprice(self.breakdown.events, corner_costs(self.hardware, self.bits, corner))

    def moved_by(self) -> tuple[str, ...]:
        """The ranged entries whose range moves this energy."""
        base = self.at("nominal")
        names = tuple(load_tables().ranged())
        return tuple(n for n in names if self.at({n: "low"}) != base or self.at({n: "high"}) != base)

    def interval(self) -> EnergyInterval:
        b = self.breakdown
        return EnergyInterval(b.phase, b.algorithm, b.hardware, b.network, b.total_pj, self.at("low"),
                              self.at("high"), self.moved_by())


@dataclass(frozen=True)
class EnergyAdvantage:
    """Energy of ``rule`` minus ``baseline`` per sample (pJ) over the placeholder ranges.

    Attributes
    ----------
    rule, baseline : EnergyInterval
    difference_nominal_pj, difference_low_pj, difference_high_pj : float
        ``rule - baseline`` with the *same* placeholder values pricing both (they run on one
        chip), minimised and maximised over the vertices of the box of the placeholders that
        move either energy.
    method : str
        ``"shared placeholders, vertex search over N"`` or the independent fallback.

    ``survives`` is True when the rule is cheaper over the whole box (``difference_high_pj <
    0``); ``survives_independent`` is the looser check ``rule.high_pj < baseline.low_pj``, which
    treats the two designs as priced by unrelated numbers.
    """

    rule: EnergyInterval
    baseline: EnergyInterval
    difference_nominal_pj: float
    difference_low_pj: float
    difference_high_pj: float
    method: str

    @property
    def survives(self) -> bool:
        return self.difference_high_pj < 0

    @property
    def survives_independent(self) -> bool:
        return self.rule.high_pj < self.baseline.low_pj

    @property
    def verdict(self) -> str:
        r, b = self.rule.algorithm, self.baseline.algorithm
        if self.survives:
            return f"{r} cheaper over the whole placeholder range"
        if self.difference_low_pj > 0:
            return f"{b} cheaper over the whole placeholder range"
        return "depends on the placeholders" if self.difference_nominal_pj else "equal"

    def to_dict(self) -> dict:
        return {"phase": self.rule.phase, "rule": self.rule.algorithm, "baseline": self.baseline.algorithm,
                "hardware": self.rule.hardware, "rule_network": self.rule.network,
                "baseline_network": self.baseline.network,
                "rule_pj": self.rule.nominal_pj, "rule_low_pj": self.rule.low_pj, "rule_high_pj": self.rule.high_pj,
                "baseline_pj": self.baseline.nominal_pj, "baseline_low_pj": self.baseline.low_pj,
                "baseline_high_pj": self.baseline.high_pj, "difference_pj": self.difference_nominal_pj,
                "difference_low_pj": self.difference_low_pj, "difference_high_pj": self.difference_high_pj,
                "survives": self.survives, "survives_independent": self.survives_independent,
                "verdict": self.verdict, "method": self.method}


def energy_advantage(rule: PricedPoint, baseline: PricedPoint) -> EnergyAdvantage:
    """``rule - baseline`` energy over the placeholder ranges (see :class:`EnergyAdvantage`)."""
    import itertools

    if rule.hardware.name != baseline.hardware.name or rule.breakdown.phase != baseline.breakdown.phase:
        raise ConfigError("baseline", "compare two design points of the same phase on the same hardware")
    ri, bi = rule.interval(), baseline.interval()
    names = tuple(dict.fromkeys(ri.placeholders + bi.placeholders))
    nominal = ri.nominal_pj - bi.nominal_pj
    if len(names) > MAX_VERTEX_PLACEHOLDERS:
        return EnergyAdvantage(ri, bi, nominal, ri.low_pj - bi.high_pj, ri.high_pj - bi.low_pj,
                               f"independent bounds ({len(names)} placeholders: too many vertices)")
    diffs = [nominal]
    for ends in itertools.product(("low", "high"), repeat=len(names)):
        corner = dict(zip(names, ends))
        diffs.append(rule.at(corner) - baseline.at(corner))
    return EnergyAdvantage(ri, bi, nominal, min(diffs), max(diffs),
                           f"shared placeholders, vertex search over {len(names)}")
