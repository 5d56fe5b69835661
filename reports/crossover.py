"""Where SPELA pays off: training memory and energy of SPELA vs backprop against depth, batch size
and for a conv workload, with the point where SPELA starts to win.

Everything here is analytic (the :mod:`sim` memory ledger and energy model on closed-form counts):
no training, well under a second. Both rules run the *same* network shape (like for like), on
the same preset, at the same storage widths. Memory is the training step's ledger: ``total``
counts every level (crossbar cells, SRAM, registers and any DRAM), ``on chip`` what the preset
keeps on chip after SRAM overflow spills to DRAM. Energy per training sample is a nominal value
with an interval: every placeholder of the energy tables at the low and high ends of its range
(:func:`sim.compare_energy` says whether SPELA's advantage survives the whole range).

Public functions return tidy DataFrames (:func:`depth_sweep`, :func:`batch_sweep`,
:func:`conv_sweep`, :func:`crossovers`, :func:`conv_net_points`: a conv network from the
description the conv trainers take, every SPELA conv target against backprop), figures
(:func:`crossover_figure`) and the report section (:func:`crossover_section`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

__all__ = ["DEPTHS", "BATCHES", "COLUMNS", "CONV_NET", "depth_sweep", "batch_sweep", "conv_sweep", "conv_net_points",
           "crossovers", "crossover_figure", "crossover_section"]

DEPTHS = tuple(range(1, 10))
#: The conv network of the report's conv point, as ``spela-hw train --net`` takes it (the paper's
#: MNIST CNN: two 5x5 blocks of 32 and 64 filters with BatchNorm and 2x2 max-pool, then 10 outputs).
CONV_NET = ("c32k5p2-c64k5p2-d10", (1, 28, 28))
#: Batch sizes of the conv point: per-sample edge learning and the conv trainers' default.
CONV_NET_BATCHES = (1, 64)
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
RULES = ("spela", "backprop")
#: Quantities compared, with the column they read and how they are described.
QUANTITIES = {
    "total_bytes": "training memory, all levels",
    "on_chip_bytes": "training memory on chip",
    "energy_pj": "training energy per sample (nominal)",
    "energy_robust": "training energy per sample, over the whole placeholder range",
}

COLUMNS = {
    "crossover_data": {
        "sweep": "depth (784-1024xk-10 MLP), batch (MLP) or conv (VGG-8 against batch)",
        "x": "hidden layers (depth) or batch size", "rule": "spela or backprop", "network": "layer widths",
        "batch_size": "samples per update step", "total_bytes": "training memory at every level (bytes)",
        "on_chip_bytes": "training memory on chip after any SRAM spill (bytes)",
        "sram_demand_bytes": "what the step wants in SRAM (bytes)", "dram_bytes": "bytes spilled to DRAM",
        "energy_pj": "training energy per sample, nominal (pJ)",
        "energy_low_pj": "same, every placeholder at its low end (pJ)",
        "energy_high_pj": "same, every placeholder at its high end (pJ)",
        "difference_low_pj": "SPELA - backprop energy, lowest over the shared placeholder box (pJ)",
        "difference_high_pj": "SPELA - backprop energy, highest over the shared placeholder box (pJ)"},
    "conv_net": {
        "network": "the conv network description (input shape: spec string)", "batch_size": "samples per step",
        "rule": "spela or backprop", "conv_target": "SPELA's read-out of a conv block (backprop: none)",
        "total_bytes": "training memory at every level (bytes)",
        "on_chip_bytes": "training memory on chip after any SRAM spill (bytes)",
        "projection_bytes": "of which SPELA's stored projection matrices (bytes)",
        "energy_pj": "training energy per sample, nominal (pJ)",
        "energy_low_pj": "same, every placeholder at its low end (pJ)",
        "energy_high_pj": "same, every placeholder at its high end (pJ)",
        "memory_vs_backprop": "training memory (all levels) / backprop's at the same batch",
        "energy_vs_backprop": "nominal training energy / backprop's at the same batch",
        "cheaper_everywhere": "SPELA's energy stays below backprop's at every corner of the placeholder ranges"},
    "crossovers": {
        "sweep": "depth, batch or conv", "quantity": "what is compared",
        "crossover": "smallest x from which SPELA stays below backprop (empty: never in the range)",
        "statement": "the crossover in words"},
}


# -- data -------------------------------------------------------------------------------------------


def _resolve(hw_or_preset):
    from sim import resolve_hardware

    return resolve_hardware(hw_or_preset)


def _bits(bits):
    """Storage widths: a :class:`sim.BitWidths`, a precision token (8, "fp32") or None (w8a16)."""
    from sim import BitWidths

    if isinstance(bits, BitWidths):
        return bits
    from .config import precision_for

    return BitWidths.from_precision(precision_for(8 if bits is None else bits))


def _points(sweep: str, xs, networks, batches, hw, bits, n_classes) -> pd.DataFrame:
    """One row per (x, rule): ledger, energy with its interval, and the shared-box difference."""
    from sim import compare_energy, design_point

    rows = []
    for x, net, b in zip(xs, networks, batches):
        dps = {r: design_point(net, hw, r, bits=bits, batch_size=b, n_classes=n_classes) for r in RULES}
        adv = compare_energy(dps["spela"], dps["backprop"], "train")
        for r, dp in dps.items():
            fit = dp.ledger_train.fits(None, allow_dram_spill=True)
            iv = adv.rule if r == "spela" else adv.baseline
            rows.append({"sweep": sweep, "x": int(x), "rule": r, "network": dp.network, "batch_size": int(b),
                         "total_bytes": int(dp.ledger_train.peak_bytes),
                         "on_chip_bytes": int(fit.used_bytes["total"]),
                         "sram_demand_bytes": int(fit.sram_demand_bytes), "dram_bytes": int(fit.used_bytes["dram"]),
                         "energy_pj": iv.nominal_pj, "energy_low_pj": iv.low_pj, "energy_high_pj": iv.high_pj,
                         "difference_low_pj": adv.difference_low_pj, "difference_high_pj": adv.difference_high_pj})
    return pd.DataFrame(rows, columns=list(COLUMNS["crossover_data"]))


def depth_sweep(hw_or_preset, depths=DEPTHS, width: int = 1024, batch_size: int = 1, bits=None,
                n_inputs: int = 784, n_classes: int = 10) -> pd.DataFrame:
    """SPELA vs backprop on ``784-width x k-10`` for every ``k`` in ``depths`` (tidy rows)."""
    hw, bw = _resolve(hw_or_preset), _bits(bits)
    nets = [(n_inputs,) + (width,) * k + (n_classes,) for k in depths]
    return _points("depth", depths, nets, [batch_size] * len(nets), hw, bw, n_classes)


def batch_sweep(hw_or_preset, dims=(784, 256, 10), batches=BATCHES, bits=None) -> pd.DataFrame:
    """SPELA vs backprop on one MLP (``dims``, same shape for both) against the batch size."""
    hw, bw = _resolve(hw_or_preset), _bits(bits)
    dims = tuple(dims)
    return _points("batch", batches, [dims] * len(batches), batches, hw, bw, dims[-1])


def conv_sweep(hw_or_preset, batches=BATCHES, bits=None, workload=None) -> pd.DataFrame:
    """SPELA vs backprop on a conv workload (default: NeuroSim's VGG-8) against the batch size."""
    from sim import vgg8

    hw, bw = _resolve(hw_or_preset), _bits(bits)
    wl = workload if workload is not None else vgg8()
    out = _points("conv", batches, [wl] * len(batches), batches, hw, bw, wl.n_classes)
    return out


def conv_net_points(hw_or_preset, spec=None, bits=None, batches=CONV_NET_BATCHES) -> pd.DataFrame:
    """SPELA with each conv target vs backprop on one conv network description (tidy rows).

    ``spec`` is a :class:`spela_hw.ConvNetSpec` (default :data:`CONV_NET`), sized from the
    description as ``spela-hw size --net`` does; its ``conv_target`` is replaced by each of
    ``projection`` (the paper's trainable per-channel projections), ``fixed_projection`` (one
    seed) and ``pooled`` in turn. Memory and energy of one training step, analytic.
    """
    from dataclasses import replace

    from sim import compare_energy, design_point
    from spela_hw.conv import CONV_TARGETS, ConvNetSpec

    hw, bw = _resolve(hw_or_preset), _bits(bits)
    spec = spec if spec is not None else ConvNetSpec.parse(*CONV_NET)
    rows = []
    for b in batches:
        bp = design_point(spec, hw, "backprop", bits=bw, batch_size=b)
        points = [("backprop", "", bp, None)]
        for target in CONV_TARGETS:
            sp = design_point(replace(spec, conv_target=target), hw, "spela", bits=bw, batch_size=b)
            points.append(("spela", target, sp, compare_energy(sp, bp, "train")))
        for rule, target, dp, adv in points:
            fit = dp.ledger_train.fits(None, allow_dram_spill=True)
            iv = dp.interval("train")
            rows.append({"network": dp.network, "batch_size": int(b), "rule": rule, "conv_target": target,
                         "total_bytes": int(dp.ledger_train.peak_bytes), "on_chip_bytes": int(fit.used_bytes["total"]),
                         "projection_bytes": int(sum(r.bytes for r in dp.ledger_train.rows
                                                     if r.tensor_class == "projections" and r.level != "register")),
                         "energy_pj": iv.nominal_pj, "energy_low_pj": iv.low_pj, "energy_high_pj": iv.high_pj,
                         "memory_vs_backprop": dp.ledger_train.peak_bytes / bp.ledger_train.peak_bytes,
                         "energy_vs_backprop": iv.nominal_pj / bp.energy_train.total_pj,
                         "cheaper_everywhere": None if adv is None else bool(adv.difference_high_pj < 0)})
    return pd.DataFrame(rows, columns=list(COLUMNS["conv_net"]))


def conv_net_statements(df: pd.DataFrame) -> list[str]:
    """One sentence per batch: does SPELA pay off on this conv network, and with which target?"""
    out = []
    for b, g in df.groupby("batch_size", sort=True):
        sp = g[g["rule"] == "spela"].set_index("conv_target")
        parts = [f"{t} {r.memory_vs_backprop:.2g}x the memory, {r.energy_vs_backprop:.2g}x the energy"
                 + ("" if r.cheaper_everywhere else " (not cheaper at every placeholder corner)")
                 for t, r in sp.iterrows()]
        pays = [t for t, r in sp.iterrows() if r.memory_vs_backprop < 1 and r.cheaper_everywhere]
        verdict = (f"SPELA pays off in memory and energy with {', '.join(pays)}" if pays else
                   "SPELA does not pay off in both memory and energy with any conv target")
        out.append(f"{g['network'].iloc[0]} at batch {b}: {verdict}; against backprop, SPELA with "
                   + "; ".join(parts) + ".")
    return out


def _wins(df: pd.DataFrame, quantity: str) -> pd.Series:
    """Per x: does SPELA beat backprop on ``quantity``?"""
    if quantity == "energy_robust":
        s = df[df["rule"] == "spela"].set_index("x")
        return s["difference_high_pj"] < 0
    piv = df.pivot_table(index="x", columns="rule", values=quantity, aggfunc="first").sort_index()
    return piv["spela"] < piv["backprop"]


def crossover_point(df: pd.DataFrame, quantity: str):
    """Smallest x from which SPELA stays below backprop to the end of the sweep (None: never)."""
    wins = _wins(df, quantity).sort_index()
    if not wins.iloc[-1]:
        return None
    losing = wins.index[~wins.to_numpy()]
    return int(wins.index[0]) if len(losing) == 0 else int(wins.index[wins.index > losing.max()][0])


#: What SPELA has less of, per quantity, as said in the statements.
_LESS = {"total_bytes": "needs less training memory (all levels) than backprop",
         "on_chip_bytes": "needs less on-chip training memory than backprop",
         "energy_pj": "spends less training energy per sample than backprop (nominal)",
         "energy_robust": "spends less training energy per sample than backprop at every corner of the "
                          "placeholder ranges"}


def _statement(sweep: str, quantity: str, x, df: pd.DataFrame, label: str) -> str:
    xs = sorted(df["x"].unique())
    unit = "hidden layers" if sweep == "depth" else "batch"
    rng = f"{unit} {xs[0]}-{xs[-1]}"
    less = _LESS[quantity]
    if x is None:
        wins = _wins(df, quantity)
        some = [int(v) for v in wins.index[wins.to_numpy()]]
        if some:
            return (f"{label}: SPELA {less} only at {unit} {', '.join(map(str, some))}, not at the end of "
                    f"the range ({rng}).")
        return f"{label}: SPELA never {less} ({rng})."
    if x == xs[0]:
        return f"{label}: SPELA {less} over the whole range ({rng})."
    return f"{label}: SPELA {less} from {unit} {x} on ({rng})."


def crossovers(data: pd.DataFrame, labels: dict | None = None) -> pd.DataFrame:
    """The crossover of every sweep in ``data`` and every quantity, with a statement in words."""
    rows = []
    for sweep, df in data.groupby("sweep", sort=False):
        label = (labels or {}).get(sweep, sweep)
        for q in QUANTITIES:
            x = crossover_point(df, q)
            rows.append({"sweep": sweep, "quantity": QUANTITIES[q], "crossover": x,
                         "statement": _statement(sweep, q, x, df, label)})
    return pd.DataFrame(rows, columns=list(COLUMNS["crossovers"]))


# -- figures ----------------------------------------------------------------------------------------


#: Panel titles and x labels of the sweeps (the x axis of batch sweeps is log2).
PANELS = {"depth": ("against depth", "hidden layers of 1024"), "batch": ("against batch size", "batch size"),
          "conv": ("VGG-8 against batch size", "batch size")}


def crossover_figure(data: pd.DataFrame, title: str, name: str = "crossover", labels: dict | None = None):
    """One column per sweep in ``data``: training memory (KiB; solid = all levels, dashed = on chip)
    above training energy per sample (µJ; shaded = the placeholder interval), SPELA vs backprop,
    with the crossover marked (or "never" / "everywhere" stated)."""
    from .figures import _new, render_figure, rule_color

    sweeps = [sw for sw in PANELS if sw in set(data["sweep"])]
    fig, axes = _new(2, len(sweeps), w=3.6 * len(sweeps) + 0.6, h=6.4)
    for j, sweep in enumerate(sweeps):
        df = data[data["sweep"] == sweep]
        ax_m, ax_e = axes[0][j], axes[1][j]
        for r in RULES:
            d = df[df["rule"] == r].sort_values("x")
            c = rule_color(r)
            ax_m.plot(d["x"], d["total_bytes"] / 1024, "-o", color=c, ms=3, label=f"{r}: all levels")
            ax_m.plot(d["x"], d["on_chip_bytes"] / 1024, "--", color=c, lw=1.1, label=f"{r}: on chip")
            ax_e.plot(d["x"], d["energy_pj"] / 1e6, "-o", color=c, ms=3, label=r)
            ax_e.fill_between(d["x"], d["energy_low_pj"] / 1e6, d["energy_high_pj"] / 1e6, color=c, alpha=0.15,
                              lw=0, label=f"{r}: placeholder range")
        ax_m.set_title((labels or {}).get(sweep, PANELS[sweep][0]), fontsize=9.5)
        ax_m.set_ylabel("training memory (KiB)")
        ax_e.set_ylabel("training energy per sample (µJ)")
        for ax, q in ((ax_m, "total_bytes"), (ax_e, "energy_robust")):
            ax.set_xlabel(PANELS[sweep][1])
            ax.set_yscale("log")
            if sweep != "depth":
                ax.set_xscale("log", base=2)
            x = crossover_point(df, q)
            if x is not None and x != df["x"].min():
                ax.axvline(x, color="#444444", ls=":", lw=1.2)
                ax.text(0.03, 0.97, f"SPELA lower from {x} on", transform=ax.transAxes, va="top", fontsize=8)
            else:
                ax.text(0.03, 0.97, "SPELA never lower" if x is None else "SPELA lower everywhere",
                        transform=ax.transAxes, va="top", fontsize=8)
    handles, names = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in names:
                handles.append(h)
                names.append(lab)
    fig.legend(handles, names, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.06))
    fig.tight_layout()
    return render_figure(fig, name, title,
                         "Analytic (memory ledger and energy model on closed-form counts), the same network shape "
                         "for both rules. Top: memory of one training step, solid = every level (crossbar "
                         "cells, SRAM, DRAM), dashed = on chip after any SRAM spill to DRAM. Bottom: energy per "
                         "training sample, line = nominal, shaded = every placeholder at the low / high end of "
                         "its range. Dotted line: from where SPELA stays lower (energy: at every corner of the "
                         "placeholder ranges).")


# -- the report section -----------------------------------------------------------------------------


@dataclass
class CrossoverData:
    """The three sweeps and their crossovers (tidy), and the conv network point."""

    data: pd.DataFrame
    crossovers: pd.DataFrame
    preset: str
    precision: str
    conv_net: pd.DataFrame | None = None


def crossover_data(hw_or_preset, dims=(784, 256, 10), bits=None, batch_size: int = 1,
                   progress: Callable[[str], None] | None = None) -> CrossoverData:
    """All three sweeps on one preset (``dims``: the MLP of the batch sweep)."""
    say = progress or (lambda msg: None)
    hw = _resolve(hw_or_preset)
    say(f"crossover: depth sweep 1-9 hidden layers of 1024 on {hw.name}")
    d = depth_sweep(hw, batch_size=batch_size, bits=bits)
    say("crossover: batch sweep 1-256")
    b = batch_sweep(hw, dims, bits=bits)
    say("crossover: VGG-8 against batch size")
    c = conv_sweep(hw, bits=bits)
    say(f"crossover: {CONV_NET[0]}, SPELA's conv targets against backprop")
    cn = conv_net_points(hw, bits=bits)
    data = pd.concat([d, b, c], ignore_index=True)
    labels = {"depth": f"Depth (784-1024xk-10, batch {batch_size})", "batch": f"Batch ({'-'.join(map(str, dims))})",
              "conv": "VGG-8 (CIFAR-10 shape)"}
    from .config import precision_label

    return CrossoverData(data, crossovers(data, labels), hw.name, precision_label(8 if bits is None else bits)
                         if not hasattr(bits, "weight") else f"int{bits.weight}", cn)


def crossover_section(config, hw_or_preset=None, progress: Callable[[str], None] | None = None):
    """The report section "Where SPELA pays off" (a :class:`reports.document.Section`).

    Parameters
    ----------
    config : ReportConfig
        Uses its first fixed-point precision (crossbar cells hold fixed-point weights), its batch
        size (depth sweep) and its hidden widths (batch sweep, with one output per class).
    hw_or_preset : HardwareConfig or str, optional
        Default: the config's first preset.
    progress : callable, optional
        Receives one line per sweep.
    """
    from .document import Note, Section, Table

    s = Section("crossover", "Where SPELA pays off")
    preset = hw_or_preset if hw_or_preset is not None else config.presets[0]
    fixed = [b for b in config.bits if b != "fp32"]
    bits = fixed[0] if fixed else 8
    n_classes = 10
    dims = tuple(config.dims[:-1]) + (n_classes,)
    try:
        cd = crossover_data(preset, dims, bits, config.batch_size, progress)
    except Exception as exc:  # noqa: BLE001 - the report keeps the section with its reason
        return Section.unavailable(s.id, s.title, f"{type(exc).__name__}: {exc}")
    s.paragraphs.append(
        "SPELA's claim is about what it does not store: backprop keeps every layer's input (and masks and "
        "error buffers) until the backward pass, SPELA keeps one layer in flight plus fixed class vectors. "
        "This shows where that starts to pay: deeper MLPs, larger batches and a conv network. Both rules "
        f"run the same network shape, on {cd.preset}, with {cd.precision} weights (16-bit activations), "
        "plain SGD. Memory: the training step's ledger; \"total\" counts every level (crossbar cells, "
        "SRAM, registers and DRAM), \"on chip\" what stays on chip when SRAM overflow spills to DRAM. "
        "Energy: per training sample, from closed-form counts priced on the preset.")
    s.paragraphs.append(
        "Provenance: modelled (analytic ledger and energy model, no measurement). Memory has no "
        "placeholders. Energy is placeholder-dependent: the shaded bands put every placeholder at the "
        "low and high end of its range (sim/tables/placeholders.toml gives each range and its reason); "
        "\"over the whole placeholder range\" means SPELA minus backprop stays negative at every corner of "
        "those ranges, with the same placeholder values pricing both rules (they run on one chip).")
    for _, row in cd.crossovers.iterrows():
        s.notes.append(Note("info" if pd.isna(row["crossover"]) else "ok", row["statement"]))
    s.paragraphs.append(
        "Why SPELA can need more memory at batch 1: it keeps fixed class vectors, C x width values per layer "
        "(10 x 1024 bytes at 8 bits), while backprop stores only that layer's input for one sample (1024 "
        "16-bit values plus a 1-bit mask, 2,176 bytes). From batch 5 backprop's stored activations outgrow "
        "the class vectors layer by layer (conventions.class_vector_storage = \"seed\" removes them). "
        "Backprop's training energy is dominated by its error path (transposed array reads and their "
        "6-bit ADC conversions) from two hidden layers on; that part of the model is not yet checked against "
        "NeuroSim V2's training model.")
    panel_labels = {"depth": f"depth (batch {config.batch_size})",
                    "batch": f"{'-'.join(map(str, dims))} against batch", "conv": "VGG-8 against batch"}
    s.figures.append(crossover_figure(cd.data, f"SPELA vs backprop against depth, batch and on VGG-8 ({cd.preset})",
                                      labels=panel_labels))
    s.paragraphs.append(
        f"A conv network, sized from the description `spela-hw train --net` takes ({CONV_NET[0]} on "
        f"{'x'.join(map(str, CONV_NET[1]))} images, BatchNorm): SPELA's read-out of a conv block decides whether "
        "it pays off. The paper's trainable per-channel projections are stored and trained like weights (here far "
        "more values than the conv weights); a fixed projection regenerated from a seed stores nothing; pooled "
        "targets compare the channel means. `spela-hw size --net ...` or `--model FILE` gives the full ledger.")
    for text in conv_net_statements(cd.conv_net):
        s.notes.append(Note("info", text))
    s.tables.append(Table("crossovers", "Where SPELA starts to win", cd.crossovers, "", COLUMNS["crossovers"]))
    s.tables.append(Table("conv_net", f"SPELA's conv targets against backprop on {CONV_NET[0]}", cd.conv_net, "",
                          COLUMNS["conv_net"]))
    s.tables.append(Table("crossover_data", "Crossover data", cd.data, "", COLUMNS["crossover_data"], show=False))
    return s
