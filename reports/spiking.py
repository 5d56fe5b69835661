"""The report's spiking experiment: a small SPELA network trained in spikes with Brian2.

Runs only when :mod:`mappings.brian2` imports (Brian2 installed); otherwise the report shows a
visible "not run" note with the reason. With the ``cpp_standalone`` target the C++ project is
kept in the spiking mapping's build cache (:mod:`mappings.brian2.buildcache`), so the next report recompiles only what changed
instead of building from scratch (about a minute of compiler time). Spike counts are priced with
:func:`sim.spiking_energy.price_spiking` under every published per-event convention, which the
report names next to each number (they are not comparable with each other).
"""

from __future__ import annotations

import contextlib
import logging

__all__ = ["spiking_available", "spike_task", "price_spike_counts"]

log = logging.getLogger(__name__)


def spiking_available(mode: str = "auto") -> tuple[str | None, str]:
    """The Brian2 target to use and why not when there is none.

    Returns ``(target, "")`` with ``target`` ``"cpp_standalone"`` (a C++ compiler is present) or
    ``"numpy"`` (only when ``mode == "on"``: the runtime target is minutes slower), else
    ``(None, reason)``.
    """
    if mode == "off":
        return None, "disabled (spiking = 'off')"
    try:
        from mappings.brian2 import compiler_available
    except Exception as exc:  # ImportError, or Brian2 failing to import on this numpy
        return None, f"the Brian2 mapping is not importable ({type(exc).__name__}: {exc})"
    if compiler_available():
        return "cpp_standalone", ""
    if mode == "on":
        return "numpy", ""
    return None, ("no C++ compiler for Brian2's cpp_standalone target, and the runtime numpy target would "
                  "take minutes; run with --spiking on to use it anyway")


def _cached_build_dir(task: dict):
    """The project folder of this network shape in the mapping's build cache (``None``: in use by
    another run, or no writable cache; that run builds in a temporary folder)."""
    from mappings.brian2.buildcache import cached_build_dir

    return cached_build_dir({"dims": list(task["dims"]), "encoding": task.get("encoding"), "dt_ms": task.get("dt_ms")})


def spike_task(task: dict) -> dict:
    """Train SPELA in spikes on the first ``train_samples`` and test on ``test_samples``.

    Returns accuracy at every layer's read-out, the rate-twin accuracy, per-sample counts of the
    training and test phases, the Brian2 target and timings.
    """
    from mappings.brian2 import BackendConfig, SpikingConfig, SpikingSpela
    from spela_hw import NetworkSpec, Spela

    from .experiments import dataset_arrays

    Xtr, ytr, Xte, yte, n_classes = dataset_arrays(task["dataset"], task["train_samples"], task["test_samples"])
    spec = NetworkSpec(tuple(task["dims"]), n_classes=n_classes)
    from mappings.brian2 import EncodingConfig

    # Optional overrides (tests use short presentation windows on the runtime target).
    encoding = EncodingConfig(**task["encoding"]) if task.get("encoding") else EncodingConfig()
    target = task.get("target", "numpy")
    with (_cached_build_dir(task) if target == "cpp_standalone" and task.get("reuse_build", True)
          else contextlib.nullcontext(None)) as build_dir:
        backend = BackendConfig(target=target, seed=int(task["seed"]), build_dir=build_dir,
                                **({"dt_ms": float(task["dt_ms"])} if task.get("dt_ms") else {}))
        config = SpikingConfig(encoding=encoding, backend=backend)
        net = SpikingSpela(spec, Spela(), config, class_code_seed=int(task["seed"]))
        res = net.fit(Xtr, ytr, epochs=int(task.get("epochs", 1)), X_test=Xte, y_test=yte)
    counts = {phase: {"samples": c["samples"], "total": c["total"],
                      "layers": [{k: v for k, v in row.items()} for row in c["layers"]]}
              for phase, c in res.counts.items()}
    return {
        "layer_accuracy": [float(a) for a in res.layer_accuracy],
        "rate_twin_accuracy": None if res.rate_twin_accuracy is None else [float(a) for a in res.rate_twin_accuracy],
        "silent_fraction": [float(s) for s in res.silent_fraction],
        "counts": counts,
        "target": res.target,
        "wall_s": float(res.wall_s),
        "build_s": None if res.build_s is None else float(res.build_s),
        "sim_s": None if res.sim_s is None else float(res.sim_s),
        "n_train": int(len(Xtr)),
        "build_cached": build_dir is not None,
        "n_test": int(len(Xte)),
        "info": {k: v for k, v in res.info.items() if k in ("sign_policy", "class_codes", "loss", "eta", "dims")},
    }


def price_spike_counts(result: dict) -> tuple[list[dict], list[dict]]:
    """Energy per sample of the spiking run under every convention of ``sim.spiking_energy``.

    Returns ``(totals, items)``: one total per (phase, convention) with the counts the convention
    does not price, and one item per (phase, convention, priced count).
    """
    from sim.spiking_energy import SPIKING_CONVENTIONS, price_spiking

    totals, items = [], []
    for phase, c in result["counts"].items():
        for conv in SPIKING_CONVENTIONS:
            b = price_spiking(c["total"], conv)
            totals.append({"phase": phase, "convention": conv, "energy_pj": b.total_pj,
                           "unpriced": ", ".join(b.unpriced)})
            for name, pj in b.energy_pj.items():
                items.append({"phase": phase, "convention": conv, "count": name,
                              "events_per_sample": float(c["total"].get(name, 0.0)), "energy_pj": pj})
    return totals, items
