"""Energy and latency per sample: counts x per-action energies.

The learner's :class:`~spela_hw.counts.Counts` (from a real run, or
:func:`~sim.workload.closed_form_counts`) are turned into hardware *actions* (cell reads, ADC
conversions, digital MACs, loss-unit operations, programming pulses, buffer accesses, DRAM bits)
using the tiling of each layer; each action has one energy in :class:`ActionCosts` built from the
shipped tables and the hardware description. Energy = sum of events x cost, itemised per layer and
category:

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
from dataclasses import asdict, dataclass

import numpy as np

from spela_hw.counts import Counts
from spela_hw.errors import ConfigError

from .config import HardwareConfig
from .ledger import BitWidths, MemoryLedger
from .tables import EnergyTables, load_tables
from .tiling import MatrixTiling, TilingResult, tile_workload
from .workload import Workload

__all__ = ["ActionCost", "ActionCosts", "action_costs", "EnergyItem", "EnergyBreakdown",
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
                              (t.value("rsqrt_newton_iterations") * t.value("rsqrt_multiplies_per_iteration")
                               * t.mul_pj(32, is_float=True) * f), "placeholder",
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
    """Per-sample energy and latency of ``counts`` on ``hardware``.

    Parameters
    ----------
    counts : Counts
        From a training run (``clf.train_counts_``), ``inference_counts``, or
        :func:`~sim.workload.closed_form_counts`. Must describe ``workload``'s layers.
    workload : Workload
    hardware : HardwareConfig
    bits : BitWidths
    algorithm : str
        ``"backprop"`` uses the transposed array read for ``error_macs``.
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
    if counts.n_layers != workload.n_layers:
        raise ConfigError("counts", f"has {counts.n_layers} layers, the workload {workload.n_layers}")
    hw, conv = hardware, hardware.conventions
    if hw.has_crossbar and bits.is_float:
        raise ConfigError("precision", f"{hw.name} stores weights in crossbar cells: use fixed-point weights")
    costs = costs or action_costs(hw, bits)
    if tiling is None and hw.has_crossbar:
        tiling = tile_workload(workload, hw, bits.weight, bits.activation, bits.error, bits.class_vector)
    n_s = max(counts.samples, 1)
    ps = {k: v.astype(np.float64) / n_s for k, v in counts.data.items()}
    items: list[EnergyItem] = []
    notes: list[str] = []
    lat = {"forward": 0.0, "error_path": 0.0, "readout": 0.0, "digital": 0.0, "weight_write": 0.0, "dram": 0.0}
    digital_ops = 0.0

    def add(category, item, layer, action, events):
        if events:
            c = costs[action]
            items.append(EnergyItem(category, item, layer, action, float(events), c.pj, float(events) * c.pj,
                                    c.kind, c.basis))

    wt = {t.layer: t for t in tiling.matrices if t.matrix == "weights"} if tiling is not None else {}
    cvt = {t.layer: t for t in tiling.matrices if t.matrix == "class_vectors"} if tiling is not None else {}
    activity = costs.input_bit_activity  # fraction of input bits that drive current (1 in golden mode)
    rate = hw.periphery.adc_rate_sps if hw.has_crossbar else 1.0
    needs_t = False
    max_writes_per_cell = 0.0
    writes_key = "weight_writes" if conv.write_accounting == "dense" else "update_writes"
    for k, L in enumerate(workload.layers):
        name = L.name
        mn = L.weights
        fwd_mvms = ps["forward_macs"][k] / mn
        err_mvms = ps["error_macs"][k] / mn
        tgt_mvms = ps["target_macs"][k] / mn
        writes = ps[writes_key][k]
        if hw.has_crossbar:
            t: MatrixTiling = wt[name]
            add("forward_mvm", "array read", name, "cell_read", fwd_mvms * t.input_cycles * L.fan_in * t.columns * activity)
            add("forward_mvm", "input drivers", name, "input_driver", fwd_mvms * t.input_cycles * L.fan_in * t.col_tiles)
            if hw.periphery.input_encoding == "dac":
                add("forward_mvm", "DAC", name, "dac", fwd_mvms * L.fan_in * t.col_tiles)
            add("adc_dac", "forward ADC", name, "adc_forward", fwd_mvms * t.conversions_per_mvm)
            add("forward_mvm", "shift-add", name, "shift_add", fwd_mvms * t.conversions_per_mvm)
            add("forward_mvm", "array, buffers, interconnect, leakage (calibrated)", name, "array_mac",
                (fwd_mvms + tgt_mvms) * mn if hw.chip is not None else 0)
            lat["forward"] += fwd_mvms * t.adc_slots_per_mvm / rate * 1e9
            if tgt_mvms:  # sigprop's target stream through the same arrays (in MVM equivalents)
                add("forward_mvm", "target stream array read", name, "cell_read",
                    tgt_mvms * t.input_cycles * L.fan_in * t.columns * activity)
                add("forward_mvm", "target stream input drivers", name, "input_driver",
                    tgt_mvms * t.input_cycles * L.fan_in * t.col_tiles)
                if hw.periphery.input_encoding == "dac":
                    add("forward_mvm", "target stream DAC", name, "dac", tgt_mvms * L.fan_in * t.col_tiles)
                add("adc_dac", "target stream ADC", name, "adc_forward", tgt_mvms * t.conversions_per_mvm)
                add("forward_mvm", "target stream shift-add", name, "shift_add", tgt_mvms * t.conversions_per_mvm)
                lat["forward"] += tgt_mvms * t.adc_slots_per_mvm / rate * 1e9
            if err_mvms:
                needs_t = True
                # every cell sees each error-bit cycle, as in the forward read
                add("error_path", "transposed array read", name, "cell_read",
                    err_mvms * (bits.error if t.input_cycles > 1 else 1) * L.fan_in * t.columns * activity)
                add("error_path", "error ADC", name, "adc_error", err_mvms * t.conversions_t_per_mvm)
                add("error_path", "shift-add", name, "shift_add", err_mvms * t.conversions_t_per_mvm)
                add("error_path", "array, buffers, interconnect, leakage (calibrated)", name, "array_mac",
                    err_mvms * mn if hw.chip is not None else 0)
                lat["error_path"] += err_mvms * t.adc_slots_t_per_mvm / rate * 1e9
            cells = t.slices * t.signed_factor
            if hw.crossbar.device.is_nonvolatile:
                add("weight_write", "programming pulses", name, "write_pulse", writes * cells * hw.crossbar.device.pulses_per_write)
            else:
                add("weight_write", "SRAM cell writes", name, "write_pulse", writes * cells)
            add("weight_write", "read before write", name, "read_before_write", writes * cells)
            # rows are written one after another; arrays in parallel
            dev = hw.crossbar.device
            if dev.is_nonvolatile:
                t_row = dev.pulses_per_write * dev.write_pulse_s * dev.write_phases
            else:
                t_row = 1.0 / hw.technology.clock_hz
            if writes:
                lat["weight_write"] += counts.update_steps / n_s * min(L.fan_in, hw.crossbar.rows) * t_row * 1e9
            # every dense write cycles each cell of the weight once (endurance counts cycles)
            max_writes_per_cell = max(max_writes_per_cell, writes / max(L.weights + L.biases, 1))
        else:
            add("forward_mvm", "digital MACs", name, "digital_mac_forward", ps["forward_macs"][k])
            add("forward_mvm", "target stream digital MACs", name, "digital_mac_forward", ps["target_macs"][k])
            digital_ops += ps["target_macs"][k]
            add("error_path", "digital MACs (W^T delta)", name, "digital_mac_error", ps["error_macs"][k])
            digital_ops += ps["forward_macs"][k] + ps["error_macs"][k]
            reads = ps["weight_reads"][k]
            if conv.conv_weight_reads == "per_position" and L.positions > 1:
                reads += (L.positions - 1) * (L.weights + L.biases) * fwd_mvms / L.positions
            add("buffer", "weight reads", name, "weight_read_digital", reads)
            add("weight_write", "weight writes (SRAM)", name, "weight_write_digital", writes)
        add("forward_mvm", "bias + activation", name, "bias_activation", (fwd_mvms + tgt_mvms) * L.fan_out)
        # read-out
        ro = ps["readout_macs"][k]
        if ro:
            if name in cvt:
                tc = cvt[name]
                ro_mvms = ro / (tc.fan_in * tc.fan_out)
                add("readout", "class-vector array read", name, "cell_read",
                    ro_mvms * tc.input_cycles * tc.fan_in * tc.columns * activity)
                add("readout", "read-out ADC", name, "adc_forward", ro_mvms * tc.conversions_per_mvm)
                add("readout", "shift-add", name, "shift_add", ro_mvms * tc.conversions_per_mvm)
                lat["readout"] += ro_mvms * tc.adc_slots_per_mvm / rate * 1e9
            else:
                add("readout", "digital MACs", name, "digital_mac_readout", ro)
                digital_ops += ro
        # loss unit and update (digital on every platform)
        add("loss_unit", "MACs (|h|^2, h.v, input norm)", name, "loss_mac", ps["loss_macs"][k])
        add("loss_unit", "rsqrt / divide / exp", name, "loss_op", ps["loss_unit_ops"][k])
        add("update", "outer product", name, "update_mul", ps["update_macs"][k])
        add("update", "accumulate", name, "update_accumulate", ps["weight_writes"][k])
        if bits.sr_random_bits:
            add("update", "stochastic-rounding random bits", name, "sr_random", ps["weight_writes"][k])
        if bits.master:
            add("buffer", "master copy read-modify-write", name, "master_rmw", ps["weight_writes"][k])
        # a loss-unit operation is a Newton-Raphson sequence of 9 multiplies (placeholder)
        digital_ops += ps["loss_macs"][k] + ps["update_macs"][k] + ps["loss_unit_ops"][k] * 9
        add("buffer", "activation reads", name, "act_read", ps["act_reads"][k])
        add("buffer", "activation writes", name, "act_write", ps["act_writes"][k])
        cv = ps["class_vector_reads"][k]
        if cv and name not in cvt:
            mult = (workload.n_classes - 1) if conv.class_vector_storage == "seed" else 1
            add("buffer", "class-vector reads", name, "cv_read", cv * mult)
        elif cv and ps["readout_macs"][k] == 0:
            # training reads v_y from arrays holding the class vectors
            add("buffer", "class-vector reads", name, "cv_read", cv)
    if needs_t and hw.has_crossbar and not hw.crossbar.transposable:
        notes.append(f"{algorithm} needs transposed reads but {hw.name}'s arrays are not transposable")
    lat["digital"] = digital_ops / (hw.technology.digital_macs_per_cycle * hw.technology.clock_hz) * 1e9
    # DRAM traffic from the ledger's placement
    if ledger is not None:
        steps_per_sample = counts.update_steps / n_s
        for r in ledger.rows:
            if r.level != "dram" or not r.bytes:
                continue
            per_sample = (2 * r.bytes * 8 * steps_per_sample) if r.persistent else (2 * r.bytes * 8 / ledger.batch_size)
            add("dram", f"{r.tensor_class} (write + read)", "all", "dram_bit", per_sample)
            lat["dram"] += per_sample / 8 / hw.dram.bandwidth_bps * 1e9
    lat = {k: float(v) for k, v in lat.items()}
    lat["total"] = sum(lat.values())
    dev = hw.crossbar.device if hw.has_crossbar else None
    life = None
    if dev is not None and dev.is_nonvolatile:
        life = lifetime_days(dev.endurance_cycles, float(max_writes_per_cell), samples_per_day)
    placeholders = tuple(sorted({i.action for i in items if i.kind == "placeholder"}))
    return EnergyBreakdown(counts.phase, algorithm, hw.name, workload.name, tuple(items), lat,
                           dict(conv.describe()), placeholders, tuple(notes), life, float(samples_per_day))


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


def events_by_action(breakdown: EnergyBreakdown) -> dict[str, float]:
    """Events per sample of every action in ``breakdown`` (the counts half of counts x prices)."""
    out: dict[str, float] = {}
    for i in breakdown.items:
        out[i.action] = out.get(i.action, 0.0) + i.events
    return out


def reprice(events: dict[str, float], costs: ActionCosts, nominal_activity: float) -> float:
    """Total pJ of ``events`` (from :func:`events_by_action`) at ``costs``.

    Cell reads scale with the input-bit activity, which the events already carry at
    ``nominal_activity``; the other actions are events x price.
    """
    ratio = costs.input_bit_activity / nominal_activity if nominal_activity else 1.0
    return float(sum(n * costs[a].pj * (ratio if a == "cell_read" else 1.0) for a, n in events.items()))


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
        object.__setattr__(self, "_events", events_by_action(self.breakdown))
        object.__setattr__(self, "_activity", load_tables().value("input_bit_activity"))

    def at(self, corner) -> float:
        """Energy per sample (pJ) with placeholders at ``corner`` (see :func:`corner_costs`)."""
        return reprice(self._events, corner_costs(self.hardware, self.bits, corner), self._activity)

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
