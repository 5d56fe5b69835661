"""Side by side: training on ``sim.CrossbarDevice`` vs aihwkit tiles with matched device parameters.

    SPELA_HW_DATA=../shared/data NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        python -m bench.aihwkit_compare --seeds 0,1,2 --epochs 5

Needs the extra ``spela-hw[aihwkit]``. For each rule (SPELA with the ``official-code`` loss
log(2 - cos) and SGD 2.5; backprop with softmax cross-entropy and SGD 0.1), each matched device
kind (:class:`sim.aihwkit_device.MatchedDevice`: ``constant_step``, and ``soft_bounds`` with
non-linearity ``--nonlinearity``), each engine (``crossbar``: :class:`sim.CrossbarDevice` with
ideal converters; ``aihwkit``: :class:`sim.aihwkit_device.AihwkitDevice` with perfect IO; ``none``:
float32 without a device, once per rule) and seed, trains a 784-``--hidden``-10 network on the
first ``--n-train`` MNIST training images (all by default), mini-batch ``--batch``, and records
the test accuracy on the 10,000 test images after every epoch (from the stored weights: with
ideal converters and perfect IO that is what the device computes). Both engines see the same
levels, weight range, step law, device-to-device and cycle-to-cycle variation and pulse limit.
One JSON line per run goes to ``--out``; a run already there is skipped (the benchmark resumes);
the Markdown table is logged at the end (``--table-only`` prints it from ``--out``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time

import numpy as np

from spela_hw import Backprop, BackpropClassifier, Sgd, Spela, SpelaClassifier, load_dataset

log = logging.getLogger("bench.aihwkit_compare")


def estimator(rule: str, hidden: int, batch: int, epochs: int, seed: int, device):
    """SPELA (``official-code`` loss and rate) or backprop, SGD, as in ``bench.device_training``."""
    common = dict(batch_size=batch, epochs=epochs, shuffle=True, random_state=seed, device=device)
    if rule == "spela":
        return SpelaClassifier((hidden, 10), rule=Spela(loss="log_2_minus_cos", optimizer=Sgd(2.5)), **common)
    return BackpropClassifier((hidden, 10), rule=Backprop(Sgd(0.1)), **common)


def matched(args, kind: str, rule: str):
    from sim.aihwkit_device import MatchedDevice

    return MatchedDevice(kind, levels=args.levels, weight_range=args.weight_range[rule],
                         nonlinearity=args.nonlinearity if kind == "soft_bounds" else 0.0,
                         d2d_sigma=args.d2d, c2c_sigma=args.c2c, max_pulses=31)


def run(args, data, rule: str, kind: str, engine: str, seed: int) -> dict:
    X, y, Xt, yt = data
    device = None
    if engine != "none":
        m = matched(args, kind, rule)
        device = m.crossbar(seed=seed) if engine == "crossbar" else m.aihwkit(seed=seed)
    clf = estimator(rule, args.hidden, args.batch, args.epochs, seed, device)
    t0 = time.perf_counter()
    clf.fit(X, y, eval_set=(Xt, yt))
    return {"rule": rule, "kind": kind if device else "-", "engine": engine, "seed": seed,
            "dims": f"784-{args.hidden}-10", "n_train": len(X), "batch": args.batch, "epochs": args.epochs,
            "levels": args.levels, "weight_range": args.weight_range[rule], "nonlinearity": args.nonlinearity,
            "d2d_sigma": args.d2d, "c2c_sigma": args.c2c,
            "device": None if device is None else (device.describe() if hasattr(device, "describe")
                                                   else "sim.CrossbarDevice, ideal converters"),
            "accuracy": [[h[f"layer{k + 1}_accuracy"] for k in range(2)] for h in clf.history_],
            "train_seconds": round(time.perf_counter() - t0, 1)}


def key(rec: dict) -> tuple:
    return rec["rule"], rec["kind"], rec["engine"], rec["seed"], rec["epochs"], rec["n_train"], rec["levels"]


def table(rows: list[dict], epochs=(1, 5)) -> str:
    """Markdown: mean ± std over seeds per (rule, kind, engine), and the aihwkit - crossbar gap."""
    def acc(rec, epoch):
        a = rec["accuracy"][epoch - 1]
        return a if rec["rule"] == "spela" else a[1:]  # backprop reads out at its output only

    groups: dict = {}
    for r in rows:
        groups.setdefault((r["rule"], r["kind"], r["engine"]), []).append(r)
    shown = [e for e in epochs if all(len(r["accuracy"]) >= e for r in rows)]
    head = "| rule | device | engine | seeds | " + " | ".join(
        f"epoch {e}" for e in shown) + " | aihwkit - crossbar | train s |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    fmt = (lambda v: " / ".join(f"{100 * m:.2f} ± {100 * s:.2f}" for m, s in zip(np.mean(v, 0), np.std(v, 0))))
    for (rule, kind, engine), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "none",
                                                                            kv[0][2] != "crossbar")):
        cells = [fmt([acc(r, e) for r in rs]) for e in shown]
        gap = "–"
        other = groups.get((rule, kind, "crossbar"))
        if engine == "aihwkit" and other:
            gap = "; ".join(" / ".join(f"{100 * g:+.2f}" for g in
                                       np.mean([acc(r, e) for r in rs], 0) - np.mean([acc(r, e) for r in other], 0))
                            for e in shown)
        secs = np.mean([r["train_seconds"] for r in rs])
        lines.append(f"| {rule} | {kind} | {engine} | {len(rs)} | " + " | ".join(cells) + f" | {gap} | {secs:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rules", default="spela,backprop")
    p.add_argument("--kinds", default="constant_step,soft_bounds")
    p.add_argument("--engines", default="none,crossbar,aihwkit")
    p.add_argument("--seeds", default="0")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--n-train", type=int, default=0, help="first N training images (0: all 60,000)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--levels", type=int, default=64)
    p.add_argument("--nonlinearity", type=float, default=3.0, help="soft_bounds only (NeuroSim nu, A = P / nu)")
    p.add_argument("--d2d", type=float, default=0.3, help="device-to-device sigma of the step (log-normal)")
    p.add_argument("--c2c", type=float, default=0.3, help="cycle-to-cycle sigma per pulse, in nominal steps")
    p.add_argument("--weight-range-spela", type=float, default=0.5)
    p.add_argument("--weight-range-backprop", type=float, default=0.25)
    p.add_argument("--out", default="aihwkit_compare.jsonl")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)
    args.weight_range = {"spela": args.weight_range_spela, "backprop": args.weight_range_backprop}
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    done = []
    if os.path.exists(args.out):
        with open(args.out) as f:
            done = [json.loads(line) for line in f if line.strip()]
    if not args.table_only:
        d = load_dataset("mnist")
        n = args.n_train or len(d.y_train)
        data = (d.features("train")[:n], d.y_train[:n], d.features("test"), d.y_test)
        have = {key(r) for r in done}
        for seed in (int(s) for s in args.seeds.split(",")):  # seed outermost: a cut run has whole seeds
            for rule in args.rules.split(","):
                for engine in args.engines.split(","):
                    for kind in (["-"] if engine == "none" else args.kinds.split(",")):
                        probe = {"rule": rule, "kind": kind, "engine": engine, "seed": seed, "epochs": args.epochs,
                                 "n_train": n, "levels": args.levels}
                        if key(probe) in have:
                            continue
                        rec = run(args, data, rule, kind, engine, seed)
                        with open(args.out, "a") as f:
                            f.write(json.dumps(rec) + "\n")
                        log.info(json.dumps(rec))
                        done.append(rec)
    print(table(done))


if __name__ == "__main__":
    main()
