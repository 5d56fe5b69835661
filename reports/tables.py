"""Tidy tables of the report, built from run results; :data:`COLUMNS` documents every column.

One row per observation, one column per variable, units in column names (``energy_pj``,
``latency_ns``, ``bytes``). The CSV files of a report are exactly these DataFrames; the column
documentation below is shown under each table in the HTML report and is checked by the tests.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .config import precision_label, weight_bits_of
from .document import Note, format_energy

__all__ = ["COLUMNS", "learning_curves", "final_accuracy", "accuracy_vs_bits", "saturations", "few_shot",
           "few_shot_verdicts", "transfer", "transfer_display", "transfer_verdicts", "one_epoch",
           "published_reference", "energy_by_component", "hw_summary",
           "energy_verdicts", "final_output_accuracy", "spiking_tables", "runs_table", "output_accuracy_by_seed", "short_notes",
           "verdict_table", "verdict_display", "verdict_sentence", "seeds_phrase", "best_spela_exit"]

_RULE = {"rule": "learning rule (spela, backprop, ...)"}
_PREC = {"precision": "weight precision: fp32 (float32) or intN (N-bit fixed-point weights)",
         "weight_bits": "weight bits (32 for float32)"}
_HW = {"preset": "hardware preset (sim)"}

COLUMNS: dict[str, dict[str, str]] = {
    "verdict": {"quantity": "what is compared, at the design point", "unit": "unit of the value columns",
                "spela": "SPELA: mean over seeds (accuracy) or the modelled value",
                "spela_std": "sample std over seeds (empty: one seed, or not a measured quantity)",
                "spela_low": "low end of the interval over the placeholder range (energies)",
                "spela_high": "high end of that interval",
                "backprop": "backprop, as for SPELA", "backprop_std": "std over seeds",
                "backprop_low": "low end of the interval", "backprop_high": "high end of the interval",
                "difference": "SPELA minus backprop (accuracy: mean of the per-seed differences)",
                "difference_std": "std over seeds of the per-seed difference (empty: one seed)",
                "difference_low": "low end of the difference over the placeholder range (same value of "
                                  "each placeholder for both rules)",
                "difference_high": "high end of that range",
                "n_seeds": "seeds run per rule (accuracy)",
                "confidence": "measured (runs on data), modelled (sim from published or fitted numbers) or "
                              "placeholder-dependent (part of the value rests on placeholder numbers)",
                "source": "where the number comes from"},
    "learning_curves": {**_RULE, **_PREC, "seed": "random_state of the run", "epoch": "epochs completed",
                        "layer": "read-out layer (1 = first hidden layer; backprop: output only)",
                        "exit": "'output' for the last layer, else 'hidden'",
                        "accuracy": "test accuracy (fraction) of that layer's read-out"},
    "final_accuracy": {**_RULE, **_PREC, "layer": "read-out layer", "exit": "'output' or 'hidden'",
                       "accuracy_mean": "mean final test accuracy over seeds (fraction)",
                       "accuracy_std": "sample std over seeds (empty with one seed)",
                       "accuracy_min": "lowest seed", "accuracy_max": "highest seed",
                       "n_seeds": "runs aggregated"},
    "accuracy_vs_bits": {**_RULE, **_PREC, "layer": "read-out layer", "exit": "'output' or 'hidden'",
                         "accuracy_mean": "mean final test accuracy (fraction)",
                         "accuracy_std": "std over seeds", "n_seeds": "runs aggregated"},
    "saturations": {**_RULE, **_PREC, "seed": "random_state",
                    "saturations_per_sample": "fixed-point values clipped per training sample (all layers)"},
    "few_shot": {**_RULE, "test_fraction": "fraction of the merged data held out for testing",
                 "n_train": "training samples", "n_test": "held-out samples scored",
                 "accuracy_mean": "mean test accuracy at the output (fraction)",
                 "accuracy_std": "std over trials", "n_trials": "random re-splits"},
    "few_shot_runs": {**_RULE, "test_fraction": "held-out fraction", "trial": "re-split index",
                      "n_train": "training samples", "n_test": "held-out samples scored",
                      "layer": "read-out layer", "accuracy": "test accuracy (fraction)"},
    "transfer": {"head": "on-device head: spela (one layer to 34 dims) or backprop (softmax regression)",
                 "precision": "the head's weights: fp32 or intN (N-bit fixed point at the head's weight range)",
                 **_HW, "accuracy_mean": "mean test accuracy on the target classes (fraction)",
                 "accuracy_std": "std over seeds", "n_seeds": "trials aggregated (one extractor each)",
                 "trainable_parameters": "the head's weights and biases",
                 "train_memory_kib": "the head's training memory (sim ledger; KiB = 1024 bytes)",
                 "fits_budget": "whether that memory fits the report's budget",
                 "energy_nj": "energy per training sample of the head on the preset (nJ, nominal)",
                 "energy_low_nj": "all placeholders at their low ends (nJ)",
                 "energy_high_nj": "all placeholders at their high ends (nJ)",
                 "energy_note": "why no energy: the preset cannot hold the head"},
    "one_epoch": {**_RULE, **_PREC, "seed": "random_state",
                  "epoch1_output_accuracy": "output accuracy after one epoch (fraction)",
                  "epoch1_best_layer": "layer with the best accuracy after one epoch",
                  "epoch1_best_accuracy": "that accuracy",
                  "final_epoch": "last epoch", "final_output_accuracy": "output accuracy at the end"},
    "published_reference": {"claim": "published quantity", "value": "published value",
                            "setting": "data, shape and recipe of the published number",
                            "source": "where it is published"},
    "memory_verdicts": {**_HW, **_RULE, **_PREC, "phase": "train (one training step) or infer",
                        "sram_demand_bytes": "bytes the step wants in SRAM (no limit; grows with the batch)",
                        "sram_bytes": "bytes held in SRAM (after any spill to DRAM)",
                        "crossbar_bytes": "bytes held in crossbar cells (not part of the SRAM budget)",
                        "on_chip_bytes": "bytes on chip (registers, SRAM, NVM, crossbar cells)",
                        "dram_bytes": "bytes placed in off-chip DRAM",
                        "peak_bytes": "all bytes live at the peak of the step",
                        "budget_bytes": "SRAM budget (empty: none)",
                        "fits": "within the budget and the preset's capacities (spilling to DRAM allowed)",
                        "verdict": "fits / fits only by spilling to DRAM / does not fit",
                        "reasons": "why, with the largest tensor classes"},
    "memory_vs_batch": {**_HW, **_RULE, **_PREC, "batch_size": "samples per update step",
                        "sram_demand_bytes": "bytes a training step wants in SRAM (monotone in the batch)",
                        "sram_bytes": "bytes held in SRAM (after any spill)",
                        "dram_bytes": "bytes spilled to DRAM",
                        "crossbar_bytes": "bytes held in crossbar cells (not part of the SRAM budget)",
                        "on_chip_bytes": "on-chip bytes (falls when rows start to spill)",
                        "verdict": "against the SRAM budget: fits, then fits only by spilling, then does not fit"},
    "budget_solver": {**_HW, **_RULE, **_PREC, "network": "layer widths as configured",
                      "widest_hidden": "widest hidden width (all hidden layers equal) whose training fits, batch 1",
                      "largest_batch_on_chip": "largest batch whose training step fits on chip (no DRAM)",
                      "widest_weight_bits": "widest weight format that fits at batch 1 (empty for float32)"},
    "memory_ledger": {**_HW, **_RULE, **_PREC, "phase": "train or infer",
                      "tensor_class": "weights, biases, gradient_buffer, optimizer_state, stored_activations, "
                                      "activations_in_flight, activation_masks, error_buffers, class_vectors, "
                                      "rng_state, io_staging, ...",
                      "level": "memory level (register, sram, nvm, crossbar, dram)",
                      "values": "stored values", "bits": "bits per value", "bytes": "bytes",
                      "formula": "accounting rule with its numbers"},
    "energy_summary": {**_HW, **_RULE, **_PREC, "network": "layer widths",
                       "train_energy_pj": "energy per training sample (pJ)",
                       "infer_energy_pj": "energy per inference (pJ)",
                       "train_latency_ns": "latency per training sample (ns)",
                       "infer_latency_ns": "latency per inference (ns)",
                       "train_on_chip_bytes": "on-chip bytes of a training step",
                       "train_peak_bytes": "all bytes of a training step",
                       "infer_peak_bytes": "all bytes of inference",
                       "arrays": "crossbar arrays (empty: digital device)",
                       "utilisation": "share of array cells holding data",
                       "array_area_mm2": "cell area of the arrays (mm^2, no periphery)",
                       "fits_train": "training fits the budget", "fits_infer": "inference fits the budget",
                       "lifetime_days": "days until the most-written cell reaches its endurance (1000 samples/day)",
                       "note": "why a point is not priced"},
    "energy_by_component": {**_HW, **_RULE, **_PREC, "phase": "train (per training sample) or infer (per inference)",
                            "component": "forward_mvm, adc_dac, error_path, readout, loss_unit, update, "
                                         "weight_write, buffer, dram",
                            "energy_pj": "energy per sample (pJ)", "share": "fraction of the phase's total"},
    "energy_items": {**_HW, **_RULE, **_PREC, "phase": "train or infer", "component": "energy category",
                     "item": "line item", "layer": "layer", "action": "hardware action priced",
                     "events": "events per sample", "pj_per_event": "energy per event (pJ)",
                     "energy_pj": "events x pJ per event", "kind": "published / fit / derived / placeholder",
                     "basis": "how the per-event energy was obtained"},
    "latency": {**_HW, **_RULE, **_PREC, "phase": "train or infer", "stage": "pipeline stage (total = sum)",
                "latency_ns": "latency per sample (ns)"},
    "crossbars": {**_HW, **_RULE, **_PREC, "layer": "layer", "matrix": "weights or class_vectors",
                  "fan_in": "rows of the matrix", "fan_out": "outputs", "slices": "cell columns per weight bit-slice",
                  "columns": "array columns used", "row_tiles": "arrays stacked along the inputs",
                  "col_tiles": "arrays side by side along the outputs", "arrays": "arrays",
                  "cells_used": "cells holding data", "cells_total": "cells allocated",
                  "utilisation": "cells_used / cells_total", "conversions_per_mvm": "ADC conversions per MVM"},
    "early_exit": {**_HW, **_RULE, **_PREC, "exit_layer": "layer whose read-out answers",
                   "accuracy": "test accuracy at that layer (fraction)",
                   "energy_pj": "energy per inference stopping there, one read-out (pJ)",
                   "latency_ns": "latency per inference (ns)",
                   "energy_all_readouts_pj": "same, reading out every layer passed (pJ)"},
    "confidence_exit": {**_HW, **_RULE, **_PREC, "threshold": "read-out margin needed to leave early",
                        "accuracy": "test accuracy of the policy (fraction)",
                        "mean_exit_layer": "average exit layer", "energy_pj": "mean energy per inference (pJ)",
                        "latency_ns": "mean latency per inference (ns)",
                        "exit_fraction_layerK": "share of samples leaving at layer K"},
    "spiking_accuracy": {"layer": "read-out layer", "spike_accuracy": "test accuracy of the spike-count read-out",
                         "rate_twin_accuracy": "same weights evaluated noise-free with the LIF rate function",
                         "silent_fraction": "test samples on which the layer emitted no spike"},
    "spiking_counts": {"phase": "train or test", "layer": "layer (total = all layers)",
                       "input_spikes": "spikes arriving per sample", "synaptic_ops": "accumulates per sample",
                       "plasticity_updates": "gated weight updates per sample",
                       "output_spikes": "spikes emitted per sample", "neuron_updates": "neuron x time steps"},
    "spiking_energy": {"phase": "train or test", "convention": "per-event energy table (sim.spiking_energy)",
                       "energy_pj": "energy per sample of the priced events (pJ)",
                       "unpriced": "counts this convention does not price"},
    "spiking_energy_items": {"phase": "train or test", "convention": "per-event energy table",
                             "count": "event priced", "events_per_sample": "events per sample",
                             "energy_pj": "energy per sample (pJ)"},
    "presets": {"preset": "hardware preset", "description": "what it models", "source": "one cited source"},
    "conventions": {"preset": "hardware preset", "convention": "switch where published models disagree",
                    "value": "choice in force"},
    "action_costs": {"preset": "hardware preset", "precision": "weight precision", "action": "hardware action",
                     "pj_per_event": "energy per event (pJ)", "kind": "published / fit / derived / placeholder",
                     "basis": "derivation"},
    "energy_tables": {"table": "shipped table", "name": "entry", "value": "value as published", "unit": "unit",
                      "node_nm": "process node (nm)", "vdd_v": "supply (V)", "source": "citation",
                      "kind": "published / fit / derived / placeholder", "conditions": "conditions",
                      "low": "low end of a placeholder's range (same unit)",
                      "high": "high end of a placeholder's range (same unit)",
                      "range_reason": "why the range is what it is"},
    "configuration": {"setting": "ReportConfig field", "value": "value (JSON)"},
    "versions": {"package": "package or machine property", "version": "version or value"},
    "runs": {"kind": "train, few_shot or spike", **_RULE, **_PREC, "seed": "random_state",
             "trial": "few-shot re-split", "test_fraction": "few-shot held-out fraction",
             "seconds": "wall-clock seconds of the run",
             "cpu_seconds": "CPU seconds of the worker process (a compiler it starts is not included)",
             "status": "ok or the error"},
}


def _prec_cols(bits) -> dict:
    return {"precision": precision_label(bits), "weight_bits": weight_bits_of(bits)}


def _exit(layer: int, n_layers: int) -> str:
    return "output" if layer == n_layers else "hidden"


def _layers_of(rule: str, n_layers: int):
    """1-based layers whose read-out the rule trains (every layer of SPELA, backprop's output)."""
    from spela_hw.rules.common import readout_layers
    from spela_hw.specs import RULES

    return [k + 1 for k in readout_layers(RULES[rule](), n_layers)]


def learning_curves(runs: list[dict]) -> pd.DataFrame:
    rows = []
    for r in runs:
        t = r["task"]
        L = len(t["dims"]) - 1
        for h in r["history"]:
            for k in _layers_of(t["rule"], L):
                acc = h.get(f"layer{k}_accuracy")
                if acc is None:
                    continue
                rows.append({"rule": t["rule"], **_prec_cols(t["bits"]), "seed": t["seed"], "epoch": h["epoch"],
                             "layer": k, "exit": _exit(k, L), "accuracy": float(acc)})
    return pd.DataFrame(rows, columns=list(COLUMNS["learning_curves"]))


def _final_rows(runs):
    rows = []
    for r in runs:
        t = r["task"]
        L = len(t["dims"]) - 1
        for k, acc in enumerate(r["final_accuracy"], 1):
            if k not in _layers_of(t["rule"], L):
                continue
            rows.append({"rule": t["rule"], **_prec_cols(t["bits"]), "seed": t["seed"], "layer": k,
                         "exit": _exit(k, L), "accuracy": float(acc)})
    return pd.DataFrame(rows)


def _aggregate(df, by, col, count_name):
    g = df.groupby(by, sort=False)[col]
    out = g.agg(["mean", "std", "min", "max", "count"]).reset_index()
    out.columns = list(by) + [f"{col}_mean", f"{col}_std", f"{col}_min", f"{col}_max", count_name]
    return out


def final_accuracy(runs: list[dict]) -> pd.DataFrame:
    df = _final_rows(runs)
    if df.empty:
        return pd.DataFrame(columns=list(COLUMNS["final_accuracy"]))
    out = _aggregate(df, ["rule", "precision", "weight_bits", "layer", "exit"], "accuracy", "n_seeds")
    return out[list(COLUMNS["final_accuracy"])]


def accuracy_vs_bits(runs: list[dict]) -> pd.DataFrame:
    out = final_accuracy(runs)
    out = out.sort_values(["rule", "layer", "weight_bits"], ascending=[True, True, False])
    return out[list(COLUMNS["accuracy_vs_bits"])].reset_index(drop=True)


def final_output_accuracy(runs: list[dict]) -> pd.DataFrame:
    """Mean output accuracy per (rule, precision): columns rule, precision, accuracy."""
    fa = final_accuracy(runs)
    fa = fa[fa["exit"] == "output"]
    return fa[["rule", "precision", "accuracy_mean"]].rename(columns={"accuracy_mean": "accuracy"})


def saturations(runs: list[dict]) -> pd.DataFrame:
    rows = [{"rule": r["task"]["rule"], **_prec_cols(r["task"]["bits"]), "seed": r["task"]["seed"],
             "saturations_per_sample": r.get("saturations_per_sample", math.nan)}
            for r in runs if r["task"]["bits"] != "fp32"]
    return pd.DataFrame(rows, columns=list(COLUMNS["saturations"]))


def few_shot(runs: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = []
    for r in runs:
        t = r["task"]
        for k, acc in enumerate(r["accuracy"], 1):
            raw.append({"rule": t["rule"], "test_fraction": t["test_fraction"], "trial": t.get("trial", 0),
                        "n_train": r["n_train"], "n_test": r["n_test"], "layer": k, "accuracy": acc})
    raw = pd.DataFrame(raw, columns=list(COLUMNS["few_shot_runs"]))
    last = raw[raw["layer"] == raw.groupby(["rule"])["layer"].transform("max")]
    g = last.groupby(["rule", "test_fraction"], sort=False)
    agg = g.agg(n_train=("n_train", "first"), n_test=("n_test", "first"), accuracy_mean=("accuracy", "mean"),
                accuracy_std=("accuracy", "std"), n_trials=("accuracy", "count")).reset_index()
    return agg[list(COLUMNS["few_shot"])], raw


def transfer(rows: list[dict]) -> pd.DataFrame:
    """The transfer protocol's heads over seeds: one row per head, precision and preset.

    ``rows``: one per priced record and preset, with the :data:`COLUMNS` ``["transfer"]`` keys
    except the aggregates, plus ``accuracy``. Memory and energy do not depend on the seed.
    """
    cols = list(COLUMNS["transfer"])
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    g = df.groupby(["head", "precision", "preset"], sort=False, dropna=False)
    out = g.agg(accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"), n_seeds=("accuracy", "count"),
                **{c: (c, "first") for c in cols[6:]}).reset_index()
    return out[cols]


def _no_energy(row) -> str:
    """Why a transfer head has no energy on its preset, in a few words."""
    return "float32 weights do not fit crossbar cells" if "crossbar" in row["energy_note"] else row["energy_note"]


def transfer_display(df: pd.DataFrame) -> pd.DataFrame:
    """The transfer table as the page shows it: accuracy with its spread, memory and energy with units."""
    def accuracy(r):
        sd = f" ± {100 * r['accuracy_std']:.2f}" if np.isfinite(r["accuracy_std"]) else ""
        return f"{100 * r['accuracy_mean']:.2f}{sd} %"

    def energy(r):
        if not np.isfinite(r["energy_nj"]):
            return f"– ({_no_energy(r)})"
        pj = 1e3 * r["energy_nj"], 1e3 * r["energy_low_nj"], 1e3 * r["energy_high_nj"]
        return f"{_amount(pj[0], 'pJ')} ({_range(pj[1], pj[2], 'pJ')})"

    return pd.DataFrame({
        "head": df["head"], "precision": df["precision"], "preset": df["preset"],
        "accuracy (seeds)": [f"{accuracy(r)} ({r['n_seeds']})" for _, r in df.iterrows()],
        "parameters": [f"{p:,}" for p in df["trainable_parameters"]],
        "training memory": [f"{m:.1f} KiB ({'fits' if f else 'over'} budget)" if f is not None and f == f else
                            f"{m:.1f} KiB" for m, f in zip(df["train_memory_kib"], df["fits_budget"])],
        "energy per training sample (placeholder range)": [energy(r) for _, r in df.iterrows()],
    })


def transfer_verdicts(df: pd.DataFrame, preset: str) -> list[Note]:
    """SPELA's head against backprop's at each precision on ``preset``: accuracy (with the seed
    spread), training memory and energy per training sample."""
    notes = []
    d = df[df["preset"] == preset].set_index(["precision", "head"])
    for prec in dict.fromkeys(df["precision"]):
        if (prec, "spela") not in d.index or (prec, "backprop") not in d.index:
            continue
        a, b = d.loc[(prec, "spela")], d.loc[(prec, "backprop")]
        diff = a["accuracy_mean"] - b["accuracy_mean"]
        noise = float(np.hypot(np.nan_to_num(a["accuracy_std"]), np.nan_to_num(b["accuracy_std"])))
        acc = ("no clear difference (within the seed spread)" if abs(diff) <= noise else
               f"{'SPELA' if diff > 0 else 'backprop'} ahead by {100 * abs(diff):.1f} points")
        energy = (f"{_amount(1e3 * a['energy_nj'], 'pJ')} vs {_amount(1e3 * b['energy_nj'], 'pJ')} per training "
                  f"sample on {preset}"
                  if np.isfinite(a["energy_nj"]) and np.isfinite(b["energy_nj"]) else
                  f"no energy on {preset}: {_no_energy(a if not np.isfinite(a['energy_nj']) else b)}")
        notes.append(Note("info", f"transfer, {prec} heads: SPELA {100 * a['accuracy_mean']:.1f}% vs backprop "
                                  f"{100 * b['accuracy_mean']:.1f}% ({acc}); training memory "
                                  f"{a['train_memory_kib']:.1f} vs {b['train_memory_kib']:.1f} KiB; {energy}"))
    return notes


def few_shot_verdicts(fs: pd.DataFrame) -> list[Note]:
    notes = []
    if not {"spela", "backprop"} <= set(fs["rule"]):
        return notes
    for frac, g in fs.groupby("test_fraction"):
        a = g.set_index("rule")["accuracy_mean"]
        sd = g.set_index("rule")["accuracy_std"].fillna(0)
        diff = a["spela"] - a["backprop"]
        noise = float(np.hypot(sd["spela"], sd["backprop"]))
        n_train = int(g["n_train"].iloc[0])
        if abs(diff) <= noise:
            verdict = "no clear winner (difference within the trial spread)"
        else:
            verdict = "SPELA wins" if diff > 0 else "backprop wins"
        notes.append(Note("info", f"few-shot, {n_train} training samples ({frac:.2f} held out): SPELA "
                                  f"{100 * a['spela']:.1f}% vs backprop {100 * a['backprop']:.1f}%: {verdict}"))
    return notes


def one_epoch(runs: list[dict]) -> pd.DataFrame:
    rows = []
    for r in runs:
        t = r["task"]
        L = len(t["dims"]) - 1
        h = r["history"]
        if not h:
            continue
        first = [h[0].get(f"layer{k}_accuracy", math.nan) for k in range(1, L + 1)]
        best = max(_layers_of(t["rule"], L), key=lambda k: np.nan_to_num(first[k - 1], nan=-1.0))
        rows.append({"rule": t["rule"], **_prec_cols(t["bits"]), "seed": t["seed"],
                     "epoch1_output_accuracy": first[-1], "epoch1_best_layer": best,
                     "epoch1_best_accuracy": first[best - 1], "final_epoch": h[-1]["epoch"],
                     "final_output_accuracy": h[-1].get(f"layer{L}_accuracy", math.nan)})
    return pd.DataFrame(rows, columns=list(COLUMNS["one_epoch"]))


def published_reference() -> pd.DataFrame:
    """Published numbers quoted for context (docs/spela.md §3.1, §3.2, §3.7)."""
    src = "Somasundaram, Mishra, Borthakur, arXiv 2402.09769 v2"
    rows = [
        ("SPELA after 1 epoch, output read-out", "86.53%", "MNIST 60k, 784-1024-10", f"{src}, docs/spela.md §3.2"),
        ("SPELA after 100 epochs, output / layer 1", "95.58% / 91.20%", "MNIST 60k, 784-1024-10", f"{src}, Fig. 2"),
        ("SPELA, output read-out", "96.66 +- 0.04%", "MNIST 60k, 784-1000-34, 5 runs", f"{src}, Table 3"),
        ("BP (copied from Dellaferrera & Kreiman 2022)", "98.63 +- 0.03%", "MNIST 60k, 784-1024-10",
         f"{src}, Table 3"),
        ("Few-shot 0.95 held out: BP / SPELA", "91.34 +- 0.7% / 92.52 +- 0.31%",
         "MNIST merged 70k, 3,500 train, 5 epochs, 5 trials", f"{src}, Table 4"),
        ("Few-shot 0.99 held out: BP / SPELA", "80.59 +- 4.75% / 94.69 +- 0.9%",
         "MNIST merged 70k, 700 train, 5 epochs, 5 trials (SPELA higher with less data: unexplained)",
         f"{src}, Table 4"),
    ]
    return pd.DataFrame(rows, columns=list(COLUMNS["published_reference"]))


def energy_by_component(energy: pd.DataFrame) -> pd.DataFrame:
    if energy.empty:
        return pd.DataFrame(columns=list(COLUMNS["energy_by_component"]))
    keys = ["preset", "rule", "precision", "weight_bits", "phase"]
    g = energy.groupby(keys + ["component"], sort=False)["energy_pj"].sum().reset_index()
    g["share"] = g["energy_pj"] / g.groupby(keys)["energy_pj"].transform("sum")
    return g[list(COLUMNS["energy_by_component"])]


def hw_summary(summary: pd.DataFrame) -> pd.DataFrame:
    cols = [c for c in COLUMNS["energy_summary"] if c in summary.columns]
    return summary[cols] if len(summary) else pd.DataFrame(columns=list(COLUMNS["energy_summary"]))


def short_notes(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` for the page: a long ``note`` (why a point is not priced) becomes a pointer to the
    section's notes, which give it in full, so that rows stay one line high."""
    if "note" not in df or not len(df):
        return df
    return df.assign(note=df["note"].map(lambda n: "not priced: see the notes above" if isinstance(n, str) and n
                                         else ""))


def energy_verdicts(summary: pd.DataFrame, preset: str) -> list[Note]:
    """Energy ratios SPELA vs backprop on the main preset, per precision."""
    notes = []
    if summary.empty or not {"spela", "backprop"} <= set(summary["rule"]):
        return notes
    s = summary[summary["preset"] == preset]
    for prec, g in s.groupby("precision", sort=False):
        a = g.set_index("rule")
        if not {"spela", "backprop"} <= set(a.index):
            continue
        et_s, et_b = a.loc["spela", "train_energy_pj"], a.loc["backprop", "train_energy_pj"]
        ei_s, ei_b = a.loc["spela", "infer_energy_pj"], a.loc["backprop", "infer_energy_pj"]
        if not (np.isfinite(et_s) and np.isfinite(et_b)):
            continue
        same = a.loc["spela", "network"] == a.loc["backprop", "network"] if "network" in a else False
        notes.append(Note("info", f"Energy on {preset}, {prec}: per training sample SPELA {format_energy(et_s)} vs "
                                  f"backprop {format_energy(et_b)} ({et_s / et_b:.2f}x); per inference "
                                  f"{format_energy(ei_s)} vs {format_energy(ei_b)}"
                                  + (f" (both {a.loc['spela', 'network']})" if same else
                                     f" (SPELA {a.loc['spela', 'network']}, backprop {a.loc['backprop', 'network']})")))
    return notes


def spiking_tables(result: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    acc = pd.DataFrame({
        "layer": list(range(1, len(result["layer_accuracy"]) + 1)),
        "spike_accuracy": result["layer_accuracy"],
        "rate_twin_accuracy": result["rate_twin_accuracy"] or [math.nan] * len(result["layer_accuracy"]),
        "silent_fraction": result["silent_fraction"],
    })
    rows = []
    keep = [c for c in COLUMNS["spiking_counts"] if c not in ("phase", "layer")]
    for phase, c in result["counts"].items():
        for row in c["layers"]:
            rows.append({"phase": phase, "layer": str(row["layer"]), **{k: row.get(k, 0.0) for k in keep}})
        rows.append({"phase": phase, "layer": "total", **{k: c["total"].get(k, 0.0) for k in keep}})
    return acc, pd.DataFrame(rows, columns=list(COLUMNS["spiking_counts"]))


def runs_table(results: list[dict]) -> pd.DataFrame:
    rows = []
    for r in results:
        t = r["task"]
        rows.append({"kind": t["kind"], "rule": t.get("rule", ""), **_prec_cols(t.get("bits", "fp32")),
                     "seed": t.get("seed"), "trial": t.get("trial"), "test_fraction": t.get("test_fraction"),
                     "seconds": r.get("seconds"), "cpu_seconds": r.get("cpu_seconds"),
                     "status": r.get("error") or "ok"})
    return pd.DataFrame(rows, columns=list(COLUMNS["runs"]))


def ordered(df: pd.DataFrame, rules=(), presets=()) -> pd.DataFrame:
    """Rows in reading order: preset as configured, widest precision first, rules as configured.

    The sort is stable, so the order within a group (layers, epochs, phases) is kept.
    """
    if df.empty:
        return df
    keys, cols = [], []
    if "preset" in df.columns and presets:
        rank = {p: i for i, p in enumerate(presets)}
        keys.append(df["preset"].map(lambda p: rank.get(p, len(rank))))
    if "weight_bits" in df.columns:
        keys.append(-pd.to_numeric(df["weight_bits"], errors="coerce").fillna(0))
    if "rule" in df.columns and rules:
        rank = {r: i for i, r in enumerate(rules)}
        keys.append(df["rule"].map(lambda r: rank.get(r, len(rank))))
    if not keys:
        return df
    k = pd.concat(keys, axis=1, keys=range(len(keys)))
    order = k.sort_values(list(range(len(keys))), kind="mergesort").index
    return df.loc[order].reset_index(drop=True)


# -- the verdict -----------------------------------------------------------------------------------

def seeds_phrase(n: int, what: str = "seeds") -> str:
    """``"one seed"`` or ``"3 seeds"``: captions say how many runs a spread comes from."""
    return f"one {what[:-1]}" if n == 1 else f"{n} {what}"


def output_accuracy_by_seed(runs: list[dict], precision: str, spela_layer: int | None = None) -> pd.DataFrame:
    """Final test accuracy at each rule's output, one row per (rule, seed), at one precision;
    with ``spela_layer``, SPELA (whose every layer is an exit) is read out at that layer instead."""
    df = _final_rows(runs)
    if df.empty:
        return pd.DataFrame(columns=["rule", "seed", "accuracy"])
    df = df[df["precision"] == precision]
    at = (df["exit"] == "output") if spela_layer is None else \
        ((df["rule"] == "spela") & (df["layer"] == spela_layer)) | ((df["rule"] != "spela") & (df["exit"] == "output"))
    return df.loc[at, ["rule", "seed", "accuracy"]].reset_index(drop=True)


def best_spela_exit(runs: list[dict], precision: str) -> int | None:
    """SPELA's layer with the best mean final accuracy at ``precision``, when it is not the output."""
    df = _final_rows(runs)
    df = df[(df["rule"] == "spela") & (df["precision"] == precision)] if len(df) else df
    if df.empty:
        return None
    means = df.groupby("layer")["accuracy"].mean()
    best = int(means.idxmax())
    return None if best == int(df["layer"].max()) else best


def _std(x) -> float:
    x = np.asarray(x, float)
    return float(np.std(x, ddof=1)) if len(x) >= 2 else math.nan


def _accuracy_row(acc: pd.DataFrame) -> dict:
    """Accuracy in percent: per-rule mean and std over seeds; the difference is the mean and std of
    the per-seed differences (seeds run by both rules), so its mean is SPELA's mean minus backprop's."""
    a = {r: acc[acc["rule"] == r].set_index("seed")["accuracy"] * 100 for r in ("spela", "backprop")}
    paired = a["spela"].index.intersection(a["backprop"].index)
    d = a["spela"].loc[paired] - a["backprop"].loc[paired]
    return {"unit": "%", "spela": float(a["spela"].mean()), "spela_std": _std(a["spela"]),
            "backprop": float(a["backprop"].mean()), "backprop_std": _std(a["backprop"]),
            "difference": float(d.mean()) if len(d) else math.nan, "difference_std": _std(d),
            "n_seeds": int(min(len(a["spela"]), len(a["backprop"])))}


def verdict_table(acc: pd.DataFrame, summary: pd.DataFrame, energy: dict, preset: str, precision: str,
                  sources: dict, best_exit: tuple | None = None) -> pd.DataFrame:
    """SPELA minus backprop at one design point: accuracy, training memory, energy.

    Parameters
    ----------
    acc : DataFrame
        :func:`output_accuracy_by_seed` (rule, seed, accuracy as a fraction).
    summary : DataFrame
        ``HardwareTables.summary`` (training memory on chip and in total).
    energy : dict
        Per phase (``"train"``, ``"infer"``): ``{"spela": (low, nominal, high), "backprop": ...,
        "difference": ...}`` in pJ per sample over the placeholder range (a missing phase is left out).
    preset, precision : str
        The design point.
    sources : dict
        Provenance text per quantity: ``accuracy``, ``memory``, ``energy``.
    best_exit : (int, DataFrame), optional
        SPELA's best earlier exit layer and :func:`output_accuracy_by_seed` with SPELA read out
        there (backprop at its output): one more accuracy row.

    Returns
    -------
    DataFrame
        Columns of ``COLUMNS["verdict"]``, one row per quantity that could be computed.
    """
    rows = []
    if {"spela", "backprop"} <= set(acc["rule"]):
        rows.append({"quantity": "accuracy at the output", **_accuracy_row(acc), "confidence": "measured",
                     "source": sources["accuracy"]})
    if best_exit is not None and {"spela", "backprop"} <= set(best_exit[1]["rule"]):
        rows.append({"quantity": f"accuracy, SPELA exit at layer {best_exit[0]}",
                     **_accuracy_row(best_exit[1]), "confidence": "measured", "source": sources["accuracy"]})
    pt = summary[(summary["preset"] == preset) & (summary["precision"] == precision)] if len(summary) else summary
    pt = pt.set_index("rule") if len(pt) else pt
    if len(pt) and {"spela", "backprop"} <= set(pt.index):
        for quantity, col in (("training memory on chip", "train_on_chip_bytes"),
                              ("training memory, total", "train_peak_bytes")):
            s_, b_ = float(pt.loc["spela", col]) / 1024, float(pt.loc["backprop", col]) / 1024
            rows.append({"quantity": quantity, "unit": "KiB", "spela": s_, "backprop": b_, "difference": s_ - b_,
                         "confidence": "modelled", "source": sources["memory"]})
    for quantity, phase in (("energy per training sample", "train"), ("energy per inference", "infer")):
        if phase not in energy:
            continue
        e = energy[phase]
        row = {"quantity": quantity, "unit": "pJ", "source": sources["energy"]}
        for key in ("spela", "backprop", "difference"):
            row[f"{key}_low"], row[key], row[f"{key}_high"] = e[key]
        ranged = any(e[k][0] < e[k][2] for k in ("spela", "backprop"))
        row["confidence"] = "placeholder-dependent" if ranged else "modelled"
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(COLUMNS["verdict"]))
    for c in out.columns:
        if c not in ("quantity", "unit", "confidence", "source", "n_seeds"):
            out[c] = out[c].astype(float)
    return out


def _signed(x: float, unit: str) -> str:
    return ("+" if x > 0 else "−" if x < 0 else "") + _amount(abs(x), unit)


def _amount(x: float, unit: str) -> str:
    if unit == "pJ":
        return format_energy(x)
    if unit in ("%", "points"):
        return f"{x:.2f} {unit}"
    return f"{x:,.1f} {unit}"


def _range(lo: float, hi: float, unit: str, signed: bool = False) -> str:
    """``"458 to 549 nJ"``: the unit once when both ends share it."""
    fmt = _signed if signed else _amount
    a, b = fmt(lo, unit), fmt(hi, unit)
    ua, ub = a.rsplit(" ", 1), b.rsplit(" ", 1)
    return f"{ua[0]} to {b}" if len(ua) == 2 and len(ub) == 2 and ua[1] == ub[1] else f"{a} to {b}"


def verdict_display(v: pd.DataFrame) -> pd.DataFrame:
    """The verdict table as the page shows it: values with units, spreads and intervals in words."""
    rows = []
    for _, r in v.iterrows():
        unit = r["unit"]

        def value(rule):
            m, sd = r[rule], r[f"{rule}_std"]
            if unit == "%":
                return f"{m:.2f} ± {sd:.2f} %" if np.isfinite(sd) else f"{m:.2f} % (one seed)"
            text = _amount(m, unit)
            lo, hi = r[f"{rule}_low"], r[f"{rule}_high"]
            if np.isfinite(lo) and np.isfinite(hi) and not math.isclose(lo, hi, rel_tol=1e-6, abs_tol=1e-9):
                text += f" ({_range(lo, hi, unit)})"
            return text

        d, sd = r["difference"], r["difference_std"]
        if unit == "%":
            sign = "+" if d > 0 else "\u2212" if d < 0 else ""
            diff = f"{sign}{abs(d):.2f} " + (f"\u00b1 {sd:.2f} points" if np.isfinite(sd) else "points (one seed)")
        else:
            diff = _signed(d, unit)
            if r["backprop"]:
                diff += f" ({100 * d / r['backprop']:+.1f} %)".replace("-", "\u2212")
            lo, hi = r["difference_low"], r["difference_high"]
            if np.isfinite(lo) and np.isfinite(hi) and not math.isclose(lo, hi, rel_tol=1e-6, abs_tol=1e-9):
                diff += f"; range {_range(lo, hi, unit, signed=True)}"
        rows.append({"quantity": r["quantity"], "SPELA": value("spela"), "backprop": value("backprop"),
                     "SPELA − backprop": diff, "confidence": r["confidence"], "source": r["source"]})
    return pd.DataFrame(rows, columns=["quantity", "SPELA", "backprop", "SPELA − backprop", "confidence",
                                       "source"])


def verdict_sentence(v: pd.DataFrame) -> str:
    """One sentence: which rule this design point should learn with, from the verdict table.

    An accuracy difference counts when it exceeds twice its standard error over seeds (std of
    the per-seed differences / sqrt(seeds)); with one seed it always counts, and the sentence
    says so. A saving is substantial from 20 % on (training memory on chip, or training energy
    over the whole placeholder range). A row for SPELA read out at an earlier layer, when there is
    one, is named too (every SPELA layer is an exit).
    """
    rows = v.set_index("quantity")
    acc = rows.loc["accuracy at the output"] if "accuracy at the output" in rows.index else None
    mem = rows.loc["training memory on chip"] if "training memory on chip" in rows.index else None
    en = rows.loc["energy per training sample"] if "energy per training sample" in rows.index else None
    if acc is None or mem is None:
        return "No verdict: a rule's runs or its hardware pricing are missing (see the notes)."
    d, sd, n = acc["difference"], acc["difference_std"], acc["n_seeds"]
    clear = not np.isfinite(sd) or abs(d) > 2 * sd / math.sqrt(n)
    acc_sign = 0 if not clear or abs(d) < 0.005 else (1 if d > 0 else -1)
    mem_rel = mem["difference"] / mem["backprop"] if mem["backprop"] else 0.0
    e_lo = e_hi = math.nan
    if en is not None and en["backprop"]:
        e_lo = (en["difference_low"] if np.isfinite(en["difference_low"]) else en["difference"]) / en["backprop"]
        e_hi = (en["difference_high"] if np.isfinite(en["difference_high"]) else en["difference"]) / en["backprop"]
    cheaper = mem_rel < 0 or (np.isfinite(e_hi) and e_hi < 0)
    saves_much = mem_rel <= -0.2 or (np.isfinite(e_hi) and e_hi <= -0.2)
    def points(diff, std):
        return f"{diff:+.2f}" + (f" \u00b1 {std:.2f}" if np.isfinite(std) else "") + " points"

    if acc_sign == 0:
        acc_text = f"At the output SPELA shows no clear accuracy difference ({points(d, sd)} over {int(n)} seeds)"
    else:
        acc_text = f"At the output SPELA is {points(abs(d), sd)[1:]} {'more' if d > 0 else 'less'} accurate"
    if not np.isfinite(sd):
        acc_text += " (one seed: no spread to judge by)"
    exits = [q for q in rows.index if q.startswith("accuracy, SPELA exit at layer")]
    if exits:
        e = rows.loc[exits[0]]
        acc_text += f"; read out at layer {exits[0].rsplit(' ', 1)[-1]} (an earlier exit), {points(e['difference'], e['difference_std'])}"
    cost = f"{100 * mem_rel:+.1f} % training memory on chip"
    if np.isfinite(e_lo):
        cost += (f" and {100 * e_lo:+.1f} % training energy" if abs(e_hi - e_lo) < 1e-9 else
                 f" and {100 * e_lo:+.1f} % to {100 * e_hi:+.1f} % training energy")
    if acc_sign >= 0 and cheaper:
        choice = "learn with SPELA"
    elif acc_sign > 0:
        choice = "a trade-off (SPELA is more accurate but costs no less)"
    elif acc_sign == 0:
        choice = "learn with backprop (SPELA saves nothing here)"
    elif saves_much:
        choice = "a trade-off (SPELA saves substantially but loses accuracy)"
    else:
        choice = "learn with backprop"
    return f"Verdict for this design point: {choice}. {acc_text}. SPELA needs {cost} compared with backprop."
