"""Accuracy and energy of the stochastic-rounding unit against its random bits per synapse
(``PrecisionSpec.sr_bits``; issue 18, bench/RESULTS.md "The stochastic-rounding unit's width").

    SPELA_HW_DATA=../shared/data python -m bench.sr_bits run --epochs 1
    SPELA_HW_DATA=../shared/data python -m bench.sr_bits run --epochs 5 --sr-bits 2,4,8,16
    python -m bench.sr_bits table
    SPELA_HW_DATA=../shared/data python -m bench.sr_bits speed

``run`` trains the ``paper-v2`` recipe (784-1000-34, per sample, SGD 0.01, -cos, input norm at
every layer) in fixed point for every combination of dataset, weight bits, SR bits and seed,
and appends one JSON line per epoch (test accuracy at every layer) to ``RUNS/records.jsonl``.
Each run is checkpointed to ``RUNS/<name>.npz`` after every epoch, so a later ``--epochs 5``
continues the 1-epoch runs (epoch 1 of a 5-epoch run is the 1-epoch run, bit for bit) and an
interrupted grid resumes. ``--workers 2`` runs two configurations at a time (one kernel thread
each). ``table`` prints the Markdown table of RESULTS.md: mean +- standard deviation over the
seeds of the output layer's and layer 1's accuracy, and the SR unit's energy per training
sample from ``sim`` (what ``spela-hw size --dims 784,1000,34 --classes 10 --rule spela
--sr-bits B`` reports as ``sr_random``). ``speed`` times one per-sample epoch of the speed
benchmark's recipe (bench/bench_train.py: MNIST 784-1024-10, lr 0.05) in float32 and in 8-bit
with several SR widths and with round-to-nearest (no SR unit at all: the most any cheaper
generator could save), on 1 and 2 threads, all in one run, repetitions interleaved.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

DIMS = (784, 1000, 34)
PRESET = "paper-v2"
HARDWARE = "rram-22nm"  # spela-hw size's default preset


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",")]


def run_name(dataset: str, weight_bits: int, sr_bits: int, seed: int) -> str:
    return f"{dataset}-w{weight_bits}-sr{sr_bits}-s{seed}"


def _done(records: Path) -> set[tuple[str, int]]:
    """(run name, epoch) pairs already recorded."""
    if not records.exists():
        return set()
    out = set()
    for line in records.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out.add((r["name"], r["epoch"]))
    return out


def train_one(dataset: str, weight_bits: int, sr_bits: int, seed: int, epochs: int, runs: str) -> list[dict]:
    """Train (or continue) one configuration up to ``epochs``; returns the new epoch records,
    each appended to ``records.jsonl`` as its epoch ends (a killed grid loses no finished
    epoch)."""
    from spela_hw import PrecisionSpec, SpelaClassifier, load_dataset
    from spela_hw.io import load_model

    name = run_name(dataset, weight_bits, sr_bits, seed)
    ckpt = Path(runs) / f"{name}.npz"
    d = load_dataset(dataset)
    X, Xt = d.features("train"), d.features("test")
    if ckpt.exists():
        clf = load_model(ckpt)
        clf.epochs = epochs
        clf.n_jobs = 1
    else:
        clf = SpelaClassifier.from_preset(PRESET, epochs=epochs, random_state=seed, n_jobs=1,
                                          precision=PrecisionSpec.fixed(weight_bits, sr_bits=sr_bits))
    new = []

    def record(model, r):
        new.append({"name": name, "dataset": dataset, "weight_bits": weight_bits, "sr_bits": sr_bits,
                    "seed": seed, "epoch": r["epoch"], "train_seconds": r["train_seconds"],
                    "layer1_accuracy": r["layer1_accuracy"], "output_accuracy": r[f"layer{len(DIMS) - 1}_accuracy"]})
        # the record first: a kill before the checkpoint re-runs the epoch (the same numbers,
        # recorded twice: ``table`` keeps one), never loses it
        with (Path(runs) / "records.jsonl").open("a") as out:  # one short O_APPEND write per line
            out.write(json.dumps(new[-1]) + "\n")
        model.save(ckpt)

    if ckpt.exists():
        clf.continue_fit(X, d.y_train, eval_set=(Xt, d.y_test), callback=record)
    else:
        clf.fit(X, d.y_train, eval_set=(Xt, d.y_test), callback=record)
    return new


def run(args) -> None:
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    records = runs / "records.jsonl"
    done = _done(records)
    todo = [c for c in itertools.product(args.datasets.split(","), _ints(args.weight_bits),
                                         _ints(args.sr_bits), _ints(args.seeds))
            if (run_name(*c), args.epochs) not in done]
    print(f"{len(todo)} runs to {args.epochs} epoch(s); load {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(train_one, *c, args.epochs, str(runs)) for c in todo]
        for f in futures:
            for r in f.result():
                print(f"{r['name']} epoch {r['epoch']}: out {r['output_accuracy']:.4f} "
                      f"layer1 {r['layer1_accuracy']:.4f} ({time.time() - t0:.0f} s)", flush=True)


def sr_energy(weight_bits: int, sr_bits: int) -> tuple[float, float]:
    """(SR unit's pJ per training sample, total pJ per training sample) of 784-1000-34 SPELA at
    batch 1 on ``HARDWARE``, priced from the trainer's own PrecisionSpec."""
    from sim import BitWidths, Workload, design_point
    from spela_hw import PrecisionSpec

    bits = BitWidths.from_precision(PrecisionSpec.fixed(weight_bits, sr_bits=sr_bits))
    r = design_point(Workload.dense(DIMS, 10), HARDWARE, "spela", bits, 1)
    e = r.energy_train
    return sum(i.energy_pj for i in e.items if i.action == "sr_random"), e.total_pj


def table(args) -> str:
    raw = (Path(args.runs) / "records.jsonl").read_text().splitlines()
    recs = list({(r["name"], r["epoch"]): r for r in map(json.loads, filter(str.strip, raw))}.values())
    lines = [("| dataset | weights | epochs | SR bits | output acc. % | layer-1 acc. % | seeds "
              "| SR unit energy per sample | share of training energy |"),
             "|---|---|---|---|---|---|---|---|---|"]
    shown = set(_ints(args.epochs))
    keys = sorted({(r["dataset"], r["weight_bits"], r["epoch"]) for r in recs if r["epoch"] in shown},
                  key=lambda k: (k[0], -k[1], k[2]))
    energy = {}
    for ds, wb, ep in keys:
        for sb in sorted({r["sr_bits"] for r in recs if (r["dataset"], r["weight_bits"], r["epoch"]) == (ds, wb, ep)}):
            sel = [r for r in recs if (r["dataset"], r["weight_bits"], r["epoch"], r["sr_bits"]) == (ds, wb, ep, sb)]
            out = 100 * np.array([r["output_accuracy"] for r in sel])
            l1 = 100 * np.array([r["layer1_accuracy"] for r in sel])
            if (wb, sb) not in energy:
                energy[(wb, sb)] = sr_energy(wb, sb)
            sr_pj, total_pj = energy[(wb, sb)]
            seeds = ",".join(str(r["seed"]) for r in sorted(sel, key=lambda r: r["seed"]))
            lines.append(f"| {ds} | {wb} | {ep} | {sb} | {out.mean():.2f} ± {out.std(ddof=1) if len(sel) > 1 else 0:.2f} "
                         f"| {l1.mean():.2f} ± {l1.std(ddof=1) if len(sel) > 1 else 0:.2f} | {seeds} "
                         f"| {sr_pj / 1e3:.2f} nJ | {100 * sr_pj / total_pj:.2f} % |")
    return "\n".join(lines)


SPEED_CONFIGS = ("fp32", "w8-sr16", "w8-sr8", "w8-sr4", "w8-nearest")


def _speed_precision(name: str):
    from spela_hw import PrecisionSpec

    if name == "fp32":
        return PrecisionSpec()
    if name == "w8-nearest":
        return PrecisionSpec.fixed(8, update_rounding="nearest")
    return PrecisionSpec.fixed(8, sr_bits=int(name.split("-sr")[1]))


def speed(args) -> str:
    """Median samples/s of one per-sample epoch of ``args.samples`` samples per configuration."""
    from bench.bench_train import Config, _Threads, load_data
    from spela_hw.estimator import SpelaClassifier
    from spela_hw.specs import Sgd, Spela

    data = load_data(Config.for_mode(False))
    X, y = data.x_train[:args.samples], data.y_train[:args.samples]

    def make(name):
        return SpelaClassifier(layer_sizes=(1024, 10), precision=_speed_precision(name), batch_size=1,
                               epochs=1, shuffle=False, random_state=0, slope=0.001,
                               rule=Spela(loss="log_2_minus_cos", optimizer=Sgd(0.05)))

    load0 = os.getloadavg()[0]
    times = {(c, t): [] for c in SPEED_CONFIGS for t in (1, 2)}
    for t in (1, 2):
        with _Threads(t):
            for c in SPEED_CONFIGS:  # warm-up: compiles
                make(c).fit(X[:500], y[:500])
            for _ in range(args.reps):
                for c in SPEED_CONFIGS:
                    times[(c, t)].append(make(c).fit(X, y).history_[0]["train_seconds"])
    load1 = os.getloadavg()[0]
    lines = [(f"per-sample epoch of {len(X)} MNIST samples, 784-1024-10, median of {args.reps} interleaved "
              f"repetitions; load average {load0:.1f} before, {load1:.1f} after"), "",
             "| configuration | samples/s, 1 thread | samples/s, 2 threads | vs float32 (1 / 2 threads) |",
             "|---|---|---|---|"]
    rate = {k: len(X) / float(np.median(v)) for k, v in times.items()}
    for c in SPEED_CONFIGS:
        lines.append(f"| {c} | {rate[(c, 1)]:,.0f} | {rate[(c, 2)]:,.0f} | "
                     f"{rate[(c, 1)] / rate[('fp32', 1)]:.2f} / {rate[(c, 2)] / rate[('fp32', 2)]:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sr_bits", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the grid (resumable)")
    r.add_argument("--epochs", type=int, default=1)
    r.add_argument("--datasets", default="mnist,fashion-mnist")
    r.add_argument("--weight-bits", default="8,6")
    r.add_argument("--sr-bits", default="2,4,6,8,12,16")
    r.add_argument("--seeds", default="0,1,2")
    r.add_argument("--workers", type=int, default=2)
    t = sub.add_parser("table", help="print the Markdown table of the recorded runs")
    t.add_argument("--epochs", default="1,5", help="epochs whose accuracy is shown")
    s = sub.add_parser("speed", help="time 8-bit per-sample training against float32 per SR width")
    s.add_argument("--samples", type=int, default=20000)
    s.add_argument("--reps", type=int, default=3)
    for q in (r, t):
        q.add_argument("--runs", default="sr_bits_runs", help="directory of checkpoints and records.jsonl")
    args = p.parse_args(argv)
    if args.cmd == "run":
        run(args)
    elif args.cmd == "speed":
        print(speed(args))
    else:
        print(table(args))


if __name__ == "__main__":
    main()
