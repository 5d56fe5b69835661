"""Figures of the report and the sweep (matplotlib, Agg backend), each saved as PNG and SVG.

Every function takes tidy DataFrames (the same tables the report writes as CSV) and returns a
:class:`reports.document.Figure`; nothing here computes results.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .document import Figure, energy_unit  # noqa: E402

__all__ = [
    "render_figure",
    "learning_curves_figure",
    "accuracy_vs_bits_figure",
    "few_shot_figure",
    "memory_figure",
    "energy_figure",
    "crossbar_figure",
    "early_exit_figure",
    "pareto_figure",
    "rule_color",
]

_STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 130,
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "svg.fonttype": "none",  # keep text as text: smaller, searchable SVG
    "svg.hashsalt": "spela-hw",  # deterministic ids
}

_RULE_COLORS = {"spela": "#1f5fbf", "backprop": "#d2691e", "sigprop": "#2e8b57"}
_CLASS_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
                 "#8c8c8c", "#ccb974", "#64b5cd", "#2f4b7c", "#a05195"]


def rule_color(rule: str) -> str:
    return _RULE_COLORS.get(rule, "#555555")


def render_figure(fig, name: str, title: str, caption: str) -> Figure:
    """PNG bytes and SVG text of a matplotlib figure (closed afterwards)."""
    try:
        with plt.rc_context(_STYLE):
            png, svg = io.BytesIO(), io.StringIO()
            fig.savefig(png, format="png", bbox_inches="tight", metadata={"Software": None})
            fig.savefig(svg, format="svg", bbox_inches="tight", metadata={"Date": None})
    finally:
        plt.close(fig)
    return Figure(name, title, caption, png.getvalue(), svg.getvalue())


def _new(nrows=1, ncols=1, w=7.5, h=3.6, **kw):
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(w, h), squeeze=False, **kw)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
    return fig, axes


def _spread_caption(n: int, what: str, spread: str) -> str:
    """Caption sentence for a spread: only when it comes from >= 2 runs (``n`` runs per point)."""
    if n >= 2:
        return f"Mean over {n} {what}; {spread[0].lower()}{spread[1:]} over {n} {what}."
    return f"One {what[:-1]} per point: no spread shown."


def learning_curves_figure(curves: pd.DataFrame, precisions: list[str]) -> Figure:
    """Test accuracy per epoch: SPELA at every layer's read-out vs backprop's output.

    ``curves`` columns: rule, precision, seed, epoch, layer, exit, accuracy. With two or more
    seeds a band shows their min-max; with one, no band (and the caption says so).
    """
    n_seeds = int(curves.groupby(["rule", "precision"])["seed"].nunique().min()) if len(curves) else 0
    precisions = [p for p in precisions if p in set(curves["precision"])]
    n = max(len(precisions), 1)
    fig, axes = _new(1, n, w=min(3.9 * n, 11.5), h=3.4, sharey=True)
    for ax, prec in zip(axes[0], precisions):
        sub = curves[curves["precision"] == prec]
        for rule in sub["rule"].unique():
            r = sub[sub["rule"] == rule]
            layers = sorted(r["layer"].unique())
            if rule != "spela":
                layers = layers[-1:]  # other rules are read out at their output only
            for i, layer in enumerate(layers):
                g = r[r["layer"] == layer].groupby("epoch")["accuracy"]
                m, lo, hi = g.mean(), g.min(), g.max()
                last = layer == max(r["layer"])
                label = f"{rule} layer {layer}" + (" (output)" if last else "")
                color = rule_color(rule)
                alpha = 1.0 if last else 0.35 + 0.5 * i / max(len(layers) - 1, 1)
                ax.plot(m.index, m.values * 100, marker="o", ms=3.5, lw=1.8 if last else 1.3,
                        color=color, alpha=alpha, ls="-" if rule == "spela" else "--", label=label)
                if n_seeds >= 2:
                    ax.fill_between(m.index, lo.values * 100, hi.values * 100, color=color, alpha=0.12)
        ax.set_title(prec)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0][0].set_ylabel("test accuracy (%)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    return render_figure(fig, "learning_curves", "Accuracy per epoch",
                         "Test accuracy after every epoch; SPELA is read out at every layer (each layer "
                         "is an exit), backprop at its output. "
                         + _spread_caption(n_seeds, "seeds", "Shaded: min-max"))


def accuracy_vs_bits_figure(acc: pd.DataFrame) -> Figure:
    """Final accuracy against weight precision. ``acc``: rule, precision, weight_bits, layer, exit,
    accuracy_mean, accuracy_std."""
    fig, axes = _new(1, 1, w=6.2, h=3.5)
    ax = axes[0][0]
    n_seeds = int(acc["n_seeds"].min()) if "n_seeds" in acc and len(acc) else 1
    order = sorted(acc["weight_bits"].unique(), reverse=True)
    xs = {b: i for i, b in enumerate(order)}
    labels = {b: ("fp32" if b == 32 else f"{b}-bit") for b in order}
    for rule in acc["rule"].unique():
        r = acc[acc["rule"] == rule]
        layers = sorted(r["layer"].unique())
        if rule != "spela":
            layers = layers[-1:]
        for i, layer in enumerate(layers):
            g = r[r["layer"] == layer].sort_values("weight_bits", ascending=False)
            last = layer == max(r["layer"])
            ax.errorbar([xs[b] for b in g["weight_bits"]], g["accuracy_mean"] * 100,
                        yerr=g["accuracy_std"].fillna(0) * 100 if n_seeds >= 2 else None, marker="o", ms=4,
                        capsize=3,
                        color=rule_color(rule), alpha=1.0 if last else 0.45,
                        ls="-" if rule == "spela" else "--",
                        label=f"{rule} layer {layer}" + (" (output)" if last else ""))
    ax.set_xticks(range(len(order)), [labels[b] for b in order])
    ax.set_xlabel("weight precision")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="best")
    fig.tight_layout()
    return render_figure(fig, "accuracy_vs_bits", "Accuracy against weight bits",
                         "Final test accuracy at each weight precision (fixed point: 16-bit activations, "
                         "stochastic rounding of updates). "
                         + _spread_caption(n_seeds, "seeds", "Error bars: std"))


def few_shot_figure(fs: pd.DataFrame) -> Figure:
    """Grouped bars: few-shot accuracy per held-out fraction and rule. ``fs``: rule,
    test_fraction, n_train, accuracy_mean, accuracy_std."""
    fig, axes = _new(1, 1, w=6.0, h=3.4)
    ax = axes[0][0]
    n_trials = int(fs["n_trials"].min()) if "n_trials" in fs and len(fs) else 1
    fracs = sorted(fs["test_fraction"].unique())
    rules = list(fs["rule"].unique())
    width = 0.8 / max(len(rules), 1)
    for j, rule in enumerate(rules):
        r = fs[fs["rule"] == rule].set_index("test_fraction").reindex(fracs)
        x = np.arange(len(fracs)) + (j - (len(rules) - 1) / 2) * width
        err = r["accuracy_std"].fillna(0) * 100 if n_trials >= 2 else None
        ax.bar(x, r["accuracy_mean"] * 100, width * 0.92, yerr=err, capsize=3, color=rule_color(rule), label=rule)
        # the value sits at the foot of the bar, clear of the error bar around its top (above a low bar)
        sd = r["accuracy_std"].fillna(0).to_numpy() if n_trials >= 2 else np.zeros(len(x))
        for xi, v, e in zip(x, r["accuracy_mean"], sd):
            if not np.isfinite(v):
                continue
            inside = (v - e) * 100 > 9
            ax.text(xi, 1.5 if inside else (v + e) * 100 + 1.5, f"{v * 100:.1f}", ha="center", va="bottom",
                    fontsize=8, color="white" if inside else "black", fontweight="bold" if inside else "normal")
    ntr = fs.groupby("test_fraction")["n_train"].first().reindex(fracs)
    ax.set_xticks(range(len(fracs)), [f"{f:.2f} held out\n({n} train)" for f, n in zip(fracs, ntr)])
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=max(len(rules), 1))
    fig.tight_layout()
    return render_figure(fig, "few_shot", "Few-shot comparison",
                         "Train and test merged and re-split with a large held-out fraction; accuracy at "
                         "each rule's output. " + _spread_caption(n_trials, "trials", "Error bars: std"))


def memory_figure(mem: pd.DataFrame, budget_bytes: float | None, title_suffix: str = "") -> Figure:
    """Stacked bars of bytes by tensor class per (rule, precision, phase), with the budget line.

    Left: everything, against the budget. Right: the same without weights and biases, where the
    rules differ (stored activations, error buffers, gradients, class vectors). Bytes placed in
    off-chip DRAM are hatched. ``mem`` columns: rule, precision, phase, tensor_class, level, bytes.
    """
    keys = mem[["precision", "rule", "phase"]].drop_duplicates().values.tolist()
    classes = list(dict.fromkeys(mem.sort_values("bytes", ascending=False)["tensor_class"]))
    colors = {c: _CLASS_COLORS[i % len(_CLASS_COLORS)] for i, c in enumerate(classes)}
    fig, axes = _new(1, 2, w=min(3.0 + 1.1 * len(keys), 12.0), h=4.2)
    labels = [f"{r}\n{p}\n{ph}" for p, r, ph in keys]
    for ax, skip in zip(axes[0], ((), ("weights", "biases"))):
        bottom = np.zeros(len(keys))
        for cls in classes:
            if cls in skip:
                continue
            for dram in (False, True):
                vals = []
                for prec, rule, phase in keys:
                    sel = mem[(mem["precision"] == prec) & (mem["rule"] == rule) & (mem["phase"] == phase)
                              & (mem["tensor_class"] == cls) & ((mem["level"] == "dram") == dram)]
                    vals.append(sel["bytes"].sum() / 1024)
                vals = np.array(vals)
                if not vals.any():
                    continue
                ax.bar(range(len(keys)), vals, 0.7, bottom=bottom, color=colors[cls],
                       hatch="//" if dram else None, edgecolor="white" if dram else None,
                       label=cls if not dram else f"{cls} (DRAM)")
                bottom += vals
        ax.set_xticks(range(len(keys)), labels, fontsize=7.5)
        ax.set_ylabel("memory (KiB)")
    axes[0][0].set_title("everything")
    axes[0][1].set_title("without weights and biases")
    if budget_bytes:
        ax = axes[0][0]
        ax.axhline(budget_bytes / 1024, color="#b42318", ls="--", lw=1.4)
        ax.text(-0.4, budget_bytes / 1024, f"budget {budget_bytes / 1024:,.0f} KiB", color="#b42318",
                va="bottom", ha="left", fontsize=8.5)
    handles, names = [], []
    for ax in axes[0]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in names:
                handles.append(h)
                names.append(l)
    fig.legend(handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return render_figure(fig, "memory_ledger", "Memory by tensor class" + title_suffix,
                         "Peak memory of a training step and of inference, itemised by tensor class; the "
                         "dashed line is the on-chip budget; hatched bytes sit in off-chip DRAM. The right "
                         "panel leaves out weights and biases to show where the rules differ.")


def energy_figure(en: pd.DataFrame, title_suffix: str = "") -> Figure:
    """Stacked bars of energy per sample by component, training and inference side by side.

    ``en`` columns: rule, precision, phase, component, energy_pj.
    """
    phases = [p for p in ("train", "infer") if p in set(en["phase"])]
    fig, axes = _new(1, len(phases), w=min(4.6 * len(phases), 11.5), h=3.8)
    comps = list(dict.fromkeys(en.sort_values("energy_pj", ascending=False)["component"]))
    scale, unit = energy_unit(en.groupby(["phase", "precision", "rule"])["energy_pj"].sum().max() if len(en) else 0)
    colors = {c: _CLASS_COLORS[i % len(_CLASS_COLORS)] for i, c in enumerate(comps)}
    for ax, phase in zip(axes[0], phases):
        sub = en[en["phase"] == phase]
        keys = sub[["precision", "rule"]].drop_duplicates().values.tolist()
        bottom = np.zeros(len(keys))
        for c in comps:
            vals = np.array([sub[(sub["precision"] == p) & (sub["rule"] == r) & (sub["component"] == c)]
                             ["energy_pj"].sum() / scale for p, r in keys])
            if not vals.any():
                continue
            ax.bar(range(len(keys)), vals, 0.7, bottom=bottom, color=colors[c], label=c)
            bottom += vals
        ax.set_xticks(range(len(keys)), [f"{r}\n{p}" for p, r in keys], fontsize=8)
        ax.set_title("per training sample" if phase == "train" else "per inference")
        ax.set_ylabel(f"energy ({unit})")
    handles, labels = [], []
    for ax in axes[0]:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l not in labels:
                handles.append(h)
                labels.append(l)
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return render_figure(fig, "energy", "Energy per sample by component" + title_suffix,
                         "Energy of one training sample (forward, loss, update, writes, buffers) and of one "
                         "inference, priced from the counts of the actual runs.")


def crossbar_figure(tiles: pd.DataFrame) -> Figure:
    """Arrays per layer and their utilisation. ``tiles``: precision, layer, matrix, arrays,
    utilisation."""
    fig, axes = _new(1, 2, w=9.5, h=3.3)
    ax1, ax2 = axes[0]
    precs = list(dict.fromkeys(tiles["precision"]))
    layers = list(dict.fromkeys(tiles["layer"] + " " + tiles["matrix"].replace({"weights": "W", "class_vectors": "V"})))
    width = 0.8 / max(len(precs), 1)
    for j, p in enumerate(precs):
        t = tiles[tiles["precision"] == p]
        lab = t["layer"] + " " + t["matrix"].replace({"weights": "W", "class_vectors": "V"})
        idx = [layers.index(x) for x in lab]
        x = np.array(idx) + (j - (len(precs) - 1) / 2) * width
        ax1.bar(x, t["arrays"], width * 0.92, label=p, color=_CLASS_COLORS[j % len(_CLASS_COLORS)])
        ax2.bar(x, t["utilisation"] * 100, width * 0.92, label=p, color=_CLASS_COLORS[j % len(_CLASS_COLORS)])
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(layers)), layers, fontsize=8)
    ax1.set_ylabel("crossbar arrays")
    ax2.set_ylabel("cell utilisation (%)")
    ax2.set_ylim(0, 105)
    ax1.legend(title="weights")
    fig.tight_layout()
    return render_figure(fig, "crossbars", "Crossbar arrays per layer",
                         "Arrays needed to hold each weight matrix (W) and, when stored on arrays, the class "
                         "vectors (V); utilisation is the share of cells that hold data.")


def early_exit_figure(exits: pd.DataFrame, policy: pd.DataFrame, reference: pd.DataFrame | None = None) -> Figure:
    """Accuracy against energy per inference: fixed exit layers and the confidence-exit policy.

    ``exits``: precision, exit_layer, accuracy, energy_pj. ``policy``: precision, threshold,
    accuracy, energy_pj. ``reference`` (optional): rule, precision, accuracy, energy_pj points.
    One colour per precision; squares: exit at layer k; triangles: confidence policy; stars:
    another rule's output (backprop).
    """
    fig, axes = _new(1, 1, w=7.6, h=4.0)
    ax = axes[0][0]
    scale, unit = energy_unit(max([exits["energy_pj"].max()] + ([reference["energy_pj"].max()]
                                                                if reference is not None and len(reference) else [])))
    precs = list(dict.fromkeys(exits["precision"]))
    pcolor = {p: _CLASS_COLORS[j % len(_CLASS_COLORS)] for j, p in enumerate(precs)}
    for p in precs:
        c = pcolor[p]
        e = exits[exits["precision"] == p].sort_values("exit_layer")
        ax.plot(e["energy_pj"] / scale, e["accuracy"] * 100, marker="s", color=c, lw=1.6,
                label=f"spela {p}: exit at layer k")
        for _, row in e.iterrows():
            ax.annotate(f"L{int(row['exit_layer'])}", (row["energy_pj"] / scale, row["accuracy"] * 100),
                        textcoords="offset points", xytext=(5, -3), fontsize=8, color=c)
        if policy is not None and len(policy):
            q = policy[policy["precision"] == p].sort_values("energy_pj")
            ax.plot(q["energy_pj"] / scale, q["accuracy"] * 100, marker="^", ms=4, ls=":", color=c, alpha=0.9,
                    label=f"spela {p}: confidence exit")
    if reference is not None and len(reference):
        for _, row in reference.iterrows():
            ax.scatter([row["energy_pj"] / scale], [row["accuracy"] * 100], marker="*", s=110,
                       color=pcolor.get(row["precision"], "#333333"), edgecolors="black", linewidths=0.6,
                       zorder=5, label=f"{row['rule']} {row['precision']} (output)")
    ax.set_xlabel(f"energy per inference ({unit})")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return render_figure(fig, "early_exit", "Early exit: accuracy against energy",
                         "Stopping inference at layer k (squares), the confidence-threshold policy (triangles, "
                         "a package extension: leave at the first layer whose read-out margin reaches the "
                         "threshold) and backprop's output (stars), one colour per precision.")


def pareto_figure(points: pd.DataFrame, x: str, y: str, color: str, front_mask, xlabel: str, ylabel: str,
                  clabel: str, name: str = "pareto", title: str = "Pareto front") -> Figure:
    """Scatter of sweep points with the Pareto-optimal ones outlined and joined."""
    fig, axes = _new(1, 1, w=6.6, h=4.0)
    ax = axes[0][0]
    front_mask = np.asarray(front_mask, bool)
    cvals = points[color].astype(float)
    norm = matplotlib.colors.Normalize(vmin=float(cvals.min()), vmax=float(cvals.max()) or 1.0)
    markers = ["o", "s", "^", "D", "v", "P"]
    sc = None
    for i, rule in enumerate(dict.fromkeys(points["rule"]) if "rule" in points else [None]):
        sel = points["rule"] == rule if rule is not None else np.ones(len(points), bool)
        sc = ax.scatter(points.loc[sel, x], points.loc[sel, y], c=cvals[sel], cmap="viridis", norm=norm, s=30,
                        alpha=0.85, marker=markers[i % len(markers)], label=rule)
    f = points[front_mask].sort_values(x)
    ax.scatter(f[x], f[y], facecolors="none", edgecolors="#b42318", s=90, lw=1.4, label="Pareto-optimal")
    ax.set_xscale("log")
    cb = fig.colorbar(sc, ax=ax)
    cb.set_label(clabel)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    leg = ax.legend(loc="lower right")
    for h in leg.legend_handles[:-1]:  # rule markers: shape matters, not colour
        h.set_facecolor("#888888")
        h.set_edgecolor("#888888")
    fig.tight_layout()
    return render_figure(fig, name, title,
                         "Every finished sweep point; circled points are not dominated in accuracy, energy "
                         "and memory together.")
