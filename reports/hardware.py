"""Pricing trained runs on hardware presets with :mod:`sim`: memory, arrays, energy, latency, exits.

:func:`size_runs` turns the counts of the report's training runs into tidy DataFrames (one per
report table). Each design point is computed by :func:`sim.design_point` from the counts the run
actually executed (``counts_source = "run"``). A point that ``sim`` cannot price (for example
float32 weights on a crossbar preset, whose cells hold fixed-point weights) keeps its memory
ledger and is listed in ``errors`` with the reason, so the report can say why a bar is missing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import pandas as pd

from spela_hw import Counts
from spela_hw.specs import RULES

from .config import precision_for, precision_label, weight_bits_of

__all__ = ["HardwareTables", "size_runs", "dims_for_rule", "budget_bytes", "sources_tables", "transfer_head_costs"]

log = logging.getLogger(__name__)


def dims_for_rule(rule: str, dims, n_classes: int) -> tuple[int, ...]:
    """Layer widths a rule trains: softmax rules (backprop) end in one unit per class.

    SPELA may have more output units than classes (the paper's 784-1000-34); backprop then keeps
    the same hidden layers with an ``n_classes`` output, as in the paper's comparison.
    """
    dims = tuple(dims)
    if getattr(RULES[rule], "loss", None) == "softmax_ce" and dims[-1] != n_classes:
        return dims[:-1] + (n_classes,)
    return dims


def budget_bytes(budget: str | None) -> float | None:
    """The SRAM limit of a budget string, in bytes (``None``: no SRAM limit).

    A bare size (``"256 KiB"``) is an SRAM budget: weights held in crossbar cells do not count
    against it (:class:`sim.MemoryBudget`).
    """
    if budget is None:
        return None
    from sim import MemoryBudget

    return MemoryBudget.parse(budget).sram_bytes


@dataclass
class HardwareTables:
    """Tidy tables of the hardware sections (empty DataFrames when nothing could be computed)."""

    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    ledger: pd.DataFrame = field(default_factory=pd.DataFrame)
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)
    energy: pd.DataFrame = field(default_factory=pd.DataFrame)
    latency: pd.DataFrame = field(default_factory=pd.DataFrame)
    tiling: pd.DataFrame = field(default_factory=pd.DataFrame)
    early_exit: pd.DataFrame = field(default_factory=pd.DataFrame)
    confidence_exit: pd.DataFrame = field(default_factory=pd.DataFrame)
    errors: list = field(default_factory=list)
    not_applicable: list = field(default_factory=list)  # design points that cannot exist, with why


def _verdict_rows(base: dict, phase: str, ledger, fit) -> dict:
    """One row of the verdict table from ``fit = ledger.fits(budget, allow_dram_spill=True)``.

    Bytes are those of the fit's placement (SRAM overflow spilled to DRAM when the preset has
    one); ``sram_demand_bytes`` is what the step would hold in SRAM with no limit, which grows
    with the batch size even when a spill lowers the on-chip bytes.
    """
    from sim.units import format_bytes

    check = fit if fit is not None else ledger.fits(None, allow_dram_spill=True)
    used = check.used_bytes
    reasons = list(fit.reasons) if fit is not None else []
    if check.spilled_bytes:
        reasons.append(f"{format_bytes(check.sram_demand_bytes)} wanted in SRAM: "
                       f"{format_bytes(check.spilled_bytes)} spills to off-chip DRAM")
    fits = None if fit is None else bool(fit.fits)
    if fits is None:
        verdict = "no budget given"
    elif fits and not check.spilled_bytes:
        verdict = "fits"
    elif fits:
        verdict = "fits only by spilling to DRAM"
    else:
        verdict = "does not fit"
    return {**base, "phase": phase, "sram_demand_bytes": int(check.sram_demand_bytes),
            "sram_bytes": int(used["sram"]), "crossbar_bytes": int(used["crossbar"]),
            "on_chip_bytes": int(used["total"]), "dram_bytes": int(used["dram"]),
            "peak_bytes": int(ledger.peak_bytes),
            "budget_bytes": (fit.limit_bytes.get("sram") if fit is not None else None),
            "fits": fits, "verdict": verdict, "reasons": "; ".join(reasons) if reasons else "within every limit"}


def _ledger_only(dims, rule, bits, preset, batch_size, budget, n_classes):
    """Memory ledgers and fits when energy cannot be priced (e.g. float32 on crossbar arrays)."""
    from sim import memory_ledger, resolve_hardware

    hw = resolve_hardware(preset)
    bw = _bit_widths(bits)
    spec = RULES[rule]()
    lt = memory_ledger(dims, spec, bw, batch_size, "train", hw, n_classes=n_classes)
    li = memory_ledger(dims, spec, bw, 1, "infer", hw, n_classes=n_classes,
                       readouts="all" if rule == "spela" else "exit")
    ft = lt.fits(budget, allow_dram_spill=True) if budget else None
    fi = li.fits(budget, allow_dram_spill=True) if budget else None
    return lt, li, ft, fi


def size_runs(runs: list[dict], presets, batch_size: int, budget: str | None, n_classes: int) -> HardwareTables:
    """Price every successful main run (first seed of each rule x precision) on every preset.

    Parameters
    ----------
    runs : list of dict
        Results of :func:`reports.experiments.train_task` (with their ``task``).
    presets : sequence of str
    batch_size : int
    budget : str or None
        e.g. ``"256 KiB"`` (SRAM; see :class:`sim.MemoryBudget`).
    n_classes : int
    """
    from sim import design_point, resolve_hardware

    out = HardwareTables()
    summary, ledger, verdicts, energy, latency, tiling, exits, policy = ([] for _ in range(8))
    chosen: dict[tuple, dict] = {}
    for r in runs:
        if r.get("error") or r["task"]["kind"] != "train":
            continue
        key = (r["task"]["rule"], r["task"]["bits"])
        chosen.setdefault(key, r)  # first seed: counts differ across seeds only in data-dependent counters

    for preset in presets:
        for (rule, bits), r in chosen.items():
            task = r["task"]
            dims = tuple(task["dims"])
            base = {"preset": preset, "rule": rule, "precision": precision_label(bits),
                    "weight_bits": weight_bits_of(bits)}
            spec = RULES[rule]()
            train_counts = Counts.from_dict(r["train_counts"])
            last = len(dims) - 2
            infer_last = Counts.from_dict(r["infer_counts"][str(last)]["exit"])
            float_on_arrays = bits == "fp32" and resolve_hardware(preset).has_crossbar
            try:
                if float_on_arrays:
                    raise _NotApplicable(f"{preset} stores weights in crossbar cells: float32 weights are "
                                         "sized (memory) but not priced; see a digital preset such as mcu-256kb")
                dp = design_point(dims, preset, spec, bits=_bit_widths(bits), batch_size=batch_size,
                                  counts=train_counts, infer_counts=infer_last, budget=budget,
                                  n_classes=n_classes, allow_dram_spill=True)
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                msg = str(exc) if isinstance(exc, _NotApplicable) else f"{type(exc).__name__}: {exc}"
                (out.not_applicable if isinstance(exc, _NotApplicable) else out.errors).append(
                    {**base, "what": "energy and arrays", "error": msg})
                try:
                    lt, li, ft, fi = _ledger_only(dims, rule, bits, preset, batch_size, budget, n_classes)
                except Exception as exc2:  # noqa: BLE001
                    out.errors.append({**base, "what": "memory ledger", "error": f"{type(exc2).__name__}: {exc2}"})
                    continue
                for led in (lt, li):
                    ledger += [{**base, **_ledger_record(rec)} for rec in led.to_records()]
                verdicts.append(_verdict_rows(base, "train", lt, ft))
                verdicts.append(_verdict_rows(base, "infer", li, fi))
                summary.append({**base, "network": "-".join(map(str, dims)),
                                "train_energy_pj": math.nan, "infer_energy_pj": math.nan,
                                "train_latency_ns": math.nan, "infer_latency_ns": math.nan,
                                "train_on_chip_bytes": lt.on_chip_bytes, "train_peak_bytes": lt.peak_bytes,
                                "infer_peak_bytes": li.peak_bytes, "arrays": math.nan, "utilisation": math.nan,
                                "fits_train": None if ft is None else ft.fits,
                                "fits_infer": None if fi is None else fi.fits, "note": msg})
                continue
            s = dp.summary()
            summary.append({**base, "network": s["network"],
                            **{k: s[k] for k in ("train_energy_pj", "infer_energy_pj", "train_latency_ns",
                                                 "infer_latency_ns", "train_on_chip_bytes", "train_peak_bytes",
                                                 "infer_peak_bytes", "arrays", "utilisation", "array_area_mm2",
                                                 "fits_train", "fits_infer", "lifetime_days")},
                            "note": ""})
            for rec in dp.ledger_train.to_records() + dp.ledger_infer.to_records():
                ledger.append({**base, **_ledger_record(rec)})
            verdicts.append(_verdict_rows(base, "train", dp.ledger_train, dp.fit_train))
            verdicts.append(_verdict_rows(base, "infer", dp.ledger_infer, dp.fit_infer))
            for e in (dp.energy_train, dp.energy_infer):
                if e is None:
                    continue
                for rec in e.to_records():
                    energy.append({**base, "phase": rec["phase"], "component": rec["category"], "item": rec["item"],
                                   "layer": rec["layer"], "action": rec["action"], "events": rec["events"],
                                   "pj_per_event": rec["pj_per_event"], "energy_pj": rec["energy_pj"],
                                   "kind": rec["kind"], "basis": rec["basis"]})
                for stage, ns in e.latency_ns.items():
                    latency.append({**base, "phase": e.phase, "stage": stage, "latency_ns": ns})
            for rec in dp.tiling.to_records():
                tiling.append({**base, **{k: rec[k] for k in (
                    "layer", "matrix", "fan_in", "fan_out", "slices", "columns", "row_tiles", "col_tiles",
                    "arrays", "cells_used", "cells_total", "utilisation", "conversions_per_mvm")}})

            # Early exit: energy per inference when stopping at layer k (SPELA-type rules only).
            if rule == "backprop":
                continue
            per_exit_all = {}
            final = r.get("final_accuracy", [])
            for k in range(last + 1):
                try:
                    e_exit = _infer_energy(dims, preset, spec, bits, batch_size, train_counts,
                                           r["infer_counts"][str(k)]["exit"], k, "exit", n_classes)
                    e_all = _infer_energy(dims, preset, spec, bits, batch_size, train_counts,
                                          r["infer_counts"][str(k)]["all"], k, "all", n_classes)
                except Exception as exc:  # noqa: BLE001
                    out.errors.append({**base, "what": f"early exit at layer {k + 1}",
                                       "error": f"{type(exc).__name__}: {exc}"})
                    break
                per_exit_all[k] = e_all
                exits.append({**base, "exit_layer": k + 1, "accuracy": final[k] if k < len(final) else math.nan,
                              "energy_pj": e_exit[0], "latency_ns": e_exit[1],
                              "energy_all_readouts_pj": e_all[0]})
            else:
                for p in r.get("confidence_exit", []):
                    e = sum(f * per_exit_all[k][0] for k, f in enumerate(p["exit_fraction"]))
                    lat = sum(f * per_exit_all[k][1] for k, f in enumerate(p["exit_fraction"]))
                    policy.append({**base, "threshold": p["threshold"], "accuracy": p["accuracy"],
                                   "mean_exit_layer": p["mean_exit_layer"], "energy_pj": e, "latency_ns": lat,
                                   **{f"exit_fraction_layer{k + 1}": f for k, f in enumerate(p["exit_fraction"])}})

    out.summary = pd.DataFrame(summary)
    out.ledger = pd.DataFrame(ledger)
    out.verdicts = pd.DataFrame(verdicts)
    out.energy = pd.DataFrame(energy)
    out.latency = pd.DataFrame(latency)
    out.tiling = pd.DataFrame(tiling)
    out.early_exit = pd.DataFrame(exits)
    out.confidence_exit = pd.DataFrame(policy)
    return out


def transfer_head_costs(record: dict, presets=(), budget: str | None = None) -> dict:
    """Price one on-device head of the transfer protocol (a record of :func:`spela_hw.transfer.transfer`).

    Returns its training memory from ``sim``'s ledger (``memory_bytes``, ``memory_by_class``,
    ``fits_budget`` against ``budget``, None without one) and, per preset, its energy per training
    sample from closed-form counts as ``{"nominal_pj", "low_pj", "high_pj"}`` over the placeholder
    ranges, or ``{"error": why}`` when the preset cannot hold the head (float32 weights in
    crossbar cells).
    """
    from sim import BitWidths, design_point, memory_ledger
    from spela_hw import PrecisionSpec
    from spela_hw.errors import SpelaError
    from spela_hw.specs import rule_from_dict

    rule = rule_from_dict(record["rule"])
    bits = BitWidths.from_precision(PrecisionSpec.from_dict(record["precision_spec"]))
    dims, batch, n_classes = tuple(record["dims"]), int(record["batch_size"]), int(record["n_classes"])
    ledger = memory_ledger(dims, rule, bits=bits, batch_size=batch, n_classes=n_classes)
    energy = {}
    for preset in presets:
        try:
            iv = design_point(dims, preset, rule, bits=bits, batch_size=batch, n_classes=n_classes).interval("train")
            energy[preset] = {"nominal_pj": iv.nominal_pj, "low_pj": iv.low_pj, "high_pj": iv.high_pj}
        except SpelaError as exc:
            energy[preset] = {"error": str(exc)}
    return {"memory_bytes": int(ledger.peak_bytes), "memory_by_class": ledger.by_class(),
            "fits_budget": ledger.fits(budget).fits if budget else None, "energy": energy}


class _NotApplicable(Exception):
    """A design point that cannot exist (not an error of the run)."""


def _ledger_record(rec: dict) -> dict:
    return {k: rec[k] for k in ("phase", "tensor_class", "level", "values", "bits", "bytes", "formula")}


def _bit_widths(bits):
    """Storage widths of a precision token. Passed explicitly: sim reads ``precision=None`` as
    "not given" (its int8 defaults), while here None means float32."""
    from sim import BitWidths

    return BitWidths.from_precision(precision_for(bits))


def _infer_energy(dims, preset, spec, prec_token, batch_size, train_counts, infer_counts_dict, k, readouts, n_classes):
    from sim import design_point

    dp = design_point(dims, preset, spec, bits=_bit_widths(prec_token), batch_size=batch_size, counts=train_counts,
                      infer_counts=Counts.from_dict(infer_counts_dict), exit_layer=k, readouts=readouts,
                      n_classes=n_classes)
    return dp.energy_infer.total_pj, dp.energy_infer.latency_ns.get("total", math.nan)


def sources_tables(presets, bits_list) -> dict[str, pd.DataFrame]:
    """Provenance: presets and their sources, conventions, per-action energies, table entries."""
    from sim import BitWidths, load_tables, resolve_hardware
    from sim.energy import action_costs

    presets_rows, conv_rows, action_rows = [], [], []
    for preset in presets:
        hw = resolve_hardware(preset)
        for i, src in enumerate(hw.sources):
            presets_rows.append({"preset": preset, "description": hw.description if i == 0 else "",
                                 "source": src})
        for k, v in hw.conventions.describe().items():
            conv_rows.append({"preset": preset, "convention": k, "value": str(v)})
        for bits in bits_list:
            if bits == "fp32" and hw.has_crossbar:
                continue
            bw = BitWidths.from_precision(precision_for(bits))
            for rec in action_costs(hw, bw).to_records():
                action_rows.append({"preset": preset, "precision": precision_label(bits), "action": rec["action"],
                                    "pj_per_event": rec["pj"], "kind": rec["kind"], "basis": rec["basis"]})
    tables = pd.DataFrame(load_tables().to_records())
    return {"presets": pd.DataFrame(presets_rows), "conventions": pd.DataFrame(conv_rows),
            "action_costs": pd.DataFrame(action_rows), "energy_tables": tables}


BATCH_SIZES = (1, 8, 32, 128)
BATCH_COLUMNS = ("sram_demand_bytes", "sram_bytes", "dram_bytes", "crossbar_bytes", "on_chip_bytes", "verdict")


def budget_tables(dims, rules, bits_list, preset: str, budget: str | None, n_classes: int) -> dict[str, pd.DataFrame]:
    """What fits the budget and how training memory grows with the batch size.

    ``memory_vs_batch``: SRAM demand (what one training step wants in SRAM; grows with the
    batch), what stays in SRAM and what spills to DRAM when the preset has one, crossbar bytes
    and the verdict, as in the verdict table. The verdict is monotone in the batch size: "fits"
    while the demand fits the SRAM limit, then "fits only by spilling to DRAM" while what cannot
    spill fits, then "does not fit". On-chip bytes may *fall* when rows start to spill; the SRAM
    demand column does not. ``budget_solver``: for every rule and precision, the widest hidden
    width of ``dims`` (all hidden layers equal) and the widest weight format that fit ``budget``
    at batch 1 (``sim`` solvers), and the largest batch whose whole step stays on chip.
    """
    from sim import (MemoryBudget, largest_batch, memory_ledger, resolve_hardware, widest_network,
                     widest_weight_bits)

    hw = resolve_hardware(preset)
    mb = MemoryBudget.parse(budget) if budget else None
    batch_rows, solver_rows = [], []
    for rule in rules:
        d = dims_for_rule(rule, dims, n_classes)
        spec = RULES[rule]()
        for bits in bits_list:
            bw = _bit_widths(bits)
            base = {"preset": preset, "rule": rule, "precision": precision_label(bits),
                    "weight_bits": weight_bits_of(bits)}

            def ledger(b):
                return memory_ledger(d, spec, bw, b, "train", hw, n_classes=n_classes)

            for b in BATCH_SIZES:
                led = ledger(b)
                v = _verdict_rows(base, "train", led, led.fits(mb, allow_dram_spill=True) if mb else None)
                batch_rows.append({**base, "batch_size": b, **{k: v[k] for k in BATCH_COLUMNS}})
            if mb is None:
                continue
            solver_rows.append({
                **base, "network": "-".join(map(str, d)),
                "widest_hidden": widest_network((d[0],) + (None,) * (len(d) - 2) + (d[-1],), mb, spec, bw, 1, hw,
                                                n_classes=n_classes, max_width=1 << 16),
                # ledger.fits's default: on chip only (a spill to DRAM fits only when the budget limits DRAM)
                "largest_batch_on_chip": largest_batch(d, mb, spec, bw, hw, max_batch=1 << 12, n_classes=n_classes),
                "widest_weight_bits": (widest_weight_bits(d, mb, spec, bw, 1, hw, n_classes=n_classes)
                                       if bits != "fp32" else None),
            })
    return {"memory_vs_batch": pd.DataFrame(batch_rows), "budget_solver": pd.DataFrame(solver_rows)}

