"""``python -m bench.conv_speed``: conv SPELA training speed against PyTorch CPU (issue 16).

The default network ``c32k5p2-c64k5p2-d10`` on MNIST images, trained by what a user's command
runs (``ConvSpelaClassifier(...).fit``, its own epoch timer ``history_[0]["train_seconds"]``),
per sample (batch 1) and at the estimator's default batch size (64), in float32 (``norm="batch"``,
the default, and ``norm="none"``) and 8-bit (``norm="none"``: fixed point trains without
BatchNorm), side by side in one run with a PyTorch peer of the same recipe from the same initial
parameters (:mod:`bench.conv_torch_peer`, in whichever interpreter has torch). Both sides get the
same thread count (numba's and BLAS's pools, ``torch.set_num_threads``). Writes the section
between ``<!-- conv-speed:begin -->`` and ``<!-- conv-speed:end -->`` of ``bench/RESULTS.md``
(``--quick``: tiny sizes, to a temporary file unless ``--out`` is given).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from spela_hw.conv import estimator
from spela_hw.conv.estimator import THREADS_MIN_BATCH

from .__main__ import RESULTS, _table, write_section
from .bench_train import _Threads, machine, median
from .torch_peer import _shown, torch_python

BEGIN, END = "<!-- conv-speed:begin -->", "<!-- conv-speed:end -->"
NET = "c32k5p2-c64k5p2-d10"
DEFAULT_BATCH = 64  # ConvClassifier's default batch_size
CLASSES = np.arange(10)  # every fit has the 10 MNIST classes, however few samples it sees
#: (precision, norm) of the timed configurations; 8-bit trains without BatchNorm.
CONFIGS = (("fp32", "batch"), ("fp32", "none"), ("w8", "none"))
TARGETS = {1: "≥ 10× PyTorch batch 1", DEFAULT_BATCH: "within 1.5× of PyTorch (ratio ≥ 0.67)"}
log = logging.getLogger("bench.conv_speed")


def _precision(name):
    from spela_hw.specs import PrecisionSpec

    return None if name == "fp32" else PrecisionSpec.fixed(int(name[1:]))


def make_classifier(precision: str, norm: str, batch: int, epochs: int = 1, seed: int = 0):
    """The estimator with its defaults, as ``spela-hw train --net`` builds it."""
    from spela_hw.conv.estimator import ConvSpelaClassifier

    return ConvSpelaClassifier(net=NET, precision=_precision(precision), norm=norm, batch_size=batch,
                               epochs=epochs, random_state=seed)


def load_images(n: int):
    """MNIST (the data directory's, else the bundled subset), ``n`` training images in a fixed order."""
    from spela_hw.datasets import load_dataset
    from spela_hw.errors import DataError

    try:
        ds, name = load_dataset("mnist"), "mnist"
    except DataError:
        ds, name = load_dataset("mnist-bundled"), "mnist-bundled"
    x, y = ds.features("train"), np.asarray(ds.labels("train"), np.int64)
    order = np.random.default_rng(20240215).permutation(len(x))[:n]
    return np.ascontiguousarray(x[order], np.float32), y[order], name


def time_ours(precision, norm, batch, X, y, budget_s, reps, threads, warmup) -> dict:
    """Seconds of one training epoch by the estimator's timer (median of ``reps``) on as many
    samples as the warm-up's rate fits in ``budget_s``; the first fit compiles the kernels."""
    with _Threads(threads):
        t0 = time.perf_counter()
        make_classifier(precision, norm, batch).fit(X[:batch], y[:batch], classes=CLASSES)
        first_call = time.perf_counter() - t0
        probe = make_classifier(precision, norm, batch).fit(X[:warmup], y[:warmup], classes=CLASSES)
        rate = warmup / max(probe.history_[0]["train_seconds"], 1e-9)
        n = min(len(X), max(warmup, int(rate * budget_s)))
        n -= n % batch
        times = [make_classifier(precision, norm, batch).fit(X[:n], y[:n], classes=CLASSES).history_[0]["train_seconds"]
                 for _ in range(reps)]
    med = median(times)
    return {"impl": "spela-hw", "precision": precision, "norm": norm, "batch": batch, "threads": threads,
            "samples": n, "seconds_all": times, "seconds_median": med, "samples_per_s": n / med,
            "first_fit_s": first_call}


def peer_arrays(X, y, path: Path) -> None:
    """Images, labels and the float32 runs' initial parameters (per norm) for the PyTorch peer."""
    from spela_hw.conv.description import ConvNetSpec

    spec = ConvNetSpec.parse(NET, (1, 28, 28))
    arrays = {"x_train": X.reshape(len(X), 1, 28, 28), "y_train": y, "slope": spec.slope,
              "pools": [b.pool for b in spec.conv_blocks], "paddings": [b.padding for b in spec.conv_blocks],
              "strides": [b.stride for b in spec.conv_blocks]}
    for norm in sorted({n for _, n in CONFIGS}):
        clf = make_classifier("fp32", norm, DEFAULT_BATCH, epochs=0).fit(X[:DEFAULT_BATCH], y[:DEFAULT_BATCH],
                                                                         classes=CLASSES)
        st = clf.state_
        arrays[f"{norm}.n_blocks"] = len(st.blocks)
        for k, b in enumerate(st.blocks):
            arrays[f"{norm}.block{k}.w"], arrays[f"{norm}.block{k}.b"] = b.w, b.b
            arrays[f"{norm}.block{k}.projection"] = b.projection
            arrays[f"{norm}.block{k}.targets"], arrays[f"{norm}.block{k}.groups"] = b.targets, b.groups
        dense = st.dense[-1].state
        arrays[f"{norm}.dense.w"], arrays[f"{norm}.dense.b"] = dense.weights[0], dense.biases[0]
        arrays[f"{norm}.dense.v"] = np.asarray(dense.vectors[0], np.float32)
    np.savez(path, **arrays)


def run_peer(cases: list[dict], arrays: Path, timeout_s: float = 7200) -> tuple[list[dict], str]:
    """The PyTorch cases in a torch interpreter: (rows, note); no torch: ([], why)."""
    exe = torch_python()
    if exe is None:
        return [], "PyTorch peer skipped: no interpreter with torch (see bench/README.md)"
    spec_path, out_path = arrays.parent / "conv_cases.json", arrays.parent / "conv_rows.json"
    spec_path.write_text(json.dumps({"arrays": str(arrays), "cases": cases}))
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([exe, "-m", "bench.conv_torch_peer", str(spec_path), str(out_path)], env=env,
                       capture_output=True, text=True, timeout=timeout_s, cwd=root, check=False)
    if r.returncode != 0:
        return [], f"PyTorch peer failed ({_shown(exe, root)}): {r.stderr.strip()[-1500:]}"
    rows = json.loads(out_path.read_text())
    version = rows[0]["torch"] if rows else "?"
    return rows, f"PyTorch {version} (CPU), run by `{_shown(exe, root)}`"


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def _load_note(meta: dict) -> str:
    """Whether the run had the machine to itself, from the 1-minute load averages around it."""
    cores = os.cpu_count() or 1
    if max(meta["load_before"], meta["load_after"]) < cores:
        return f"The machine was otherwise idle (1-minute load average below its {cores} cores)."
    return (f"**The machine was shared with other jobs during this run**: a load average above the {cores} "
            "cores means both sides waited for a core, so absolute rates are pessimistic.")


def render(ours: list[dict], peer: list[dict], meta: dict) -> str:
    by_peer = {(r["norm"], r["batch"], r["threads"]): r for r in peer}
    rows = []
    for r in ours:
        row = [r["precision"], r["norm"], r["batch"], r["samples"], r["samples_per_s"]]
        if "one_thread_per_s" in r:
            row += [r["one_thread_per_s"], f"{r['samples_per_s'] / r['one_thread_per_s']:.2f}×"]
        for threads in meta["torch_threads"]:
            p = by_peer.get((r["norm"], r["batch"], threads))
            row += [p["samples_per_s"] if p else None, f"{r['samples_per_s'] / p['samples_per_s']:.2f}×" if p else "–"]
        rows.append(row + [TARGETS.get(r["batch"], "")])
    ours_cols = ["spela-hw 1 thread samples/s", f"{meta['threads']} threads / 1"] if meta["threads"] > 1 else []
    peer_cols = [c for t in meta["torch_threads"] for c in (f"PyTorch {t} thread{'s' * (t > 1)} samples/s",
                                                            f"spela-hw / PyTorch {t} thr.")]
    m = meta["machine"]
    lines = [BEGIN, "## Conv speed (issue 16)", "",
             f"Generated by `{meta['command']}` on {meta['date']}"
             f"{' (quick smoke run: tiny sizes, not meaningful)' if meta['quick'] else ''}; do not edit by hand.",
             "",
             f"**Machine.** {m.get('cpu', '?')}, {m.get('cores')} cores, Python {m.get('python')}, numpy "
             f"{m.get('numpy')}, numba {m.get('numba')}; {meta['torch_note']}. `uptime` before: "
             f"`{meta['uptime_before']}`; after: `{meta['uptime_after']}`. {_load_note(meta)} The ratios compare the two sides measured in the same "
             "run, interleaved configuration by configuration.", "",
             f"**Method.** `{NET}` on {meta['data']} 28 x 28 images, the estimator's defaults "
             "(`ConvSpelaClassifier`: projection read-out d = 100, conv blocks Adam 0.01, dense layer SGD 20 on "
             f"the L2-normalised map, LeakyReLU 0.001), batch {', '.join(map(str, meta['batches']))} (64 is the "
             "estimator's default). spela-hw is timed "
             "by the estimator's own epoch timer (`fit`, `history_[0]['train_seconds']`: input quantisation "
             "included), after a first fit that compiles or loads the kernels; the number of samples is what "
             f"the warm-up's rate fits in about {meta['budget_s']:g} s. The PyTorch peer runs the same recipe "
             "from the same initial parameters (`bench/conv_torch_peer.py`: per block Conv2d, [BatchNorm2d], "
             "LeakyReLU, MaxPool2d, per-channel projection, loss mean (1 - cos)^2, its own Adam, detached "
             "output; dense layer log(2 - cos) with SGD), one `backward` and `step` per block. 8-bit rows "
             "are compared with PyTorch float32 without BatchNorm (PyTorch has no bit-true 8-bit training). "
             f"Threads: spela-hw runs with numba's and BLAS's pools at {meta['threads']}: the estimator's "
             "default `n_jobs=-1` runs each conv block's update on a thread of its own beside the forward "
             "passes after it (at most one thread per block: two here; batches below "
             f"{meta['min_batch']} samples stay on one), every product on one BLAS thread "
             "(the same bits on any thread count); PyTorch "
             f"with `torch.set_num_threads` {' and '.join(map(str, meta['torch_threads']))}. On a loaded "
             "machine PyTorch's second thread mostly waits for a core (its OpenMP threads spin at every "
             "operator), which is why its 1-thread column is also given.", "",
             _table(["precision", "norm", "batch", "spela-hw samples timed", "spela-hw samples/s", *ours_cols,
                     *peer_cols,
                     "issue 16 target"], rows), "",
             "PyTorch samples timed: " + "; ".join(f"norm {r['norm']} batch {r['batch']} {r['threads']} thr. "
                                                  f"{r['samples']}" for r in peer) + ".", ""]
    first = [f"{r['precision']} {r['norm']} batch {r['batch']}: {r['first_fit_s']:.1f} s" for r in ours]
    lines += [f"First fit of each configuration (a batch; kernels compiled or loaded from numba's cache): "
              f"{'; '.join(first)}.", ""]
    lines += [f"- {n}" for n in meta["notes"]]
    lines += ["", END]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.conv_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, one repetition")
    p.add_argument("--out", type=Path, help="RESULTS.md to update (default bench/RESULTS.md; a temporary file "
                                            "with --quick)")
    p.add_argument("--json", type=Path, help="also write every measurement as JSON here")
    p.add_argument("--budget", type=float, default=20.0, help="seconds per timed epoch (default 20)")
    p.add_argument("--reps", type=int, default=1, help="timed epochs per configuration (median; default 1)")
    p.add_argument("--threads", type=int, default=2, help="numba and BLAS threads of spela-hw (default 2)")
    p.add_argument("--torch-threads", default="2,1", help="PyTorch thread counts, comma-separated (default 2,1)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer")
    p.add_argument("--min-batch", type=int, default=THREADS_MIN_BATCH,
                   help=f"the smallest batch that trains on the threads (default THREADS_MIN_BATCH = "
                        f"{THREADS_MIN_BATCH}; 1 measures the threads at every batch size)")
    p.add_argument("--batches", default=f"1,{DEFAULT_BATCH}",
                   help=f"batch sizes, comma-separated (default 1,{DEFAULT_BATCH}: the issue's targets)")
    args = p.parse_args(argv)
    try:
        torch_threads = [int(t) for t in args.torch_threads.split(",")]
        batches = [int(b) for b in args.batches.split(",")]
    except ValueError:
        p.error(f"--torch-threads and --batches: comma-separated integers, got {args.torch_threads!r}, "
                f"{args.batches!r}")
    if args.budget <= 0 or min(args.reps, args.threads, args.min_batch, *torch_threads, *batches) < 1:
        p.error("--budget must be > 0, --reps, --threads, --min-batch, --torch-threads and --batches >= 1")
    estimator.THREADS_MIN_BATCH = args.min_batch
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s")
    logging.getLogger("spela_hw").setLevel(logging.WARNING)
    budget = 0.5 if args.quick else args.budget
    out = args.out or (Path(tempfile.mkdtemp()) / "RESULTS.md" if args.quick else RESULTS)
    meta = {"quick": args.quick, "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "command": "python -m bench.conv_speed" + (" --quick" if args.quick else "")
                       + ("" if args.batches == p.get_default("batches") else f" --batches {args.batches}")
                       + ("" if args.budget == p.get_default("budget") else f" --budget {args.budget:g}")
                       + ("" if args.min_batch == THREADS_MIN_BATCH else f" --min-batch {args.min_batch}"),
            "machine": machine(),
            "uptime_before": _uptime(), "load_before": os.getloadavg()[0], "budget_s": budget, "threads": args.threads,
            "batches": batches, "min_batch": args.min_batch,
            "torch_threads": torch_threads, "notes": []}
    n_max = 256 if args.quick else 60000
    X, y, meta["data"] = load_images(n_max)
    ours, peer = [], []
    with tempfile.TemporaryDirectory() as tmp:
        arrays = Path(tmp) / "conv_peer.npz"
        if not args.no_torch:
            peer_arrays(X, y, arrays)
        meta["torch_note"] = "PyTorch peer not run"
        for batch in batches:
            warm = 4 * batch if args.quick else max(32, 4 * batch)
            for precision, norm in CONFIGS:
                log.info("spela-hw %s norm=%s batch %d", precision, norm, batch)
                row = time_ours(precision, norm, batch, X, y, budget, args.reps, args.threads, warm)
                if args.threads > 1:  # what the block updates' threads bring, in the same run
                    row["one_thread_per_s"] = time_ours(precision, norm, batch, X, y, budget, args.reps, 1,
                                                        warm)["samples_per_s"]
                ours.append(row)
                if args.no_torch or precision != "fp32":
                    continue
                log.info("pytorch norm=%s batch %d", norm, batch)
                cases = [{"tag": norm, "norm": norm, "batch": batch, "threads": t, "reps": args.reps,
                          "warmup": warm, "n": len(X), "budget_s": budget} for t in torch_threads]
                rows, note = run_peer(cases, arrays)
                peer += rows
                if rows:
                    meta["torch_note"] = note
                elif note not in meta["notes"]:
                    meta["notes"].append(note)
    meta["uptime_after"], meta["load_after"] = _uptime(), os.getloadavg()[0]
    write_section(out, render(ours, peer, meta), BEGIN, END)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": ours + peer}, indent=1, default=str))
    print(f"conv speed section written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
