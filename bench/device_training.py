"""Accuracy of on-device training under ADC quantisation (issue 3, item 6), recorded in RESULTS.md.

    SPELA_HW_DATA=../shared/data NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        python -m bench.device_training --rule spela --adc none,ideal,8,6,4 --seeds 0,1,2

Trains ``--epochs`` epochs on the first ``--n-train`` MNIST training images (all by default),
on a ``sim.CrossbarDevice``
(preset ``--preset``: conductance levels, non-linear updates, pulses; its periphery: bit-serial
inputs, ADC of each tile's partial sums) with the ADC bits overridden per run (``ideal``: exact
products, same cells), and measures test accuracy on the 10,000 test images twice: on the device
(every product through the converters, as the chip would infer) and digitally from the stored
conductances. Also a float32 run without a device, and the device lifetime implied by the
writes. One JSON line per run goes to ``--out``; a Markdown table is logged at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np

from sim import CrossbarDevice
from spela_hw import Backprop, BackpropClassifier, Sgd, Spela, SpelaClassifier, load_dataset
from spela_hw.rules.common import forward_all, readout_predictions, uses_logit_readout

log = logging.getLogger("bench.device_training")


def estimator(args, seed: int, device):
    """SPELA with the ``official-code`` loss (log(2 - cos), no input norm) or backprop, SGD."""
    common = dict(batch_size=args.batch, epochs=args.epochs, shuffle=True, random_state=seed, device=device)
    if args.rule == "spela":
        return SpelaClassifier((args.hidden, 10), rule=Spela(loss="log_2_minus_cos", optimizer=Sgd(args.lr or 2.5)),
                               **common)
    return BackpropClassifier((args.hidden, 10), rule=Backprop(Sgd(args.lr or 0.1)), **common)


def device_accuracy(clf, X, y, device) -> list[float]:
    """Per-layer test accuracy with every product computed on ``device`` (through ``mvm``)."""
    L = clf.network_spec_.n_layers
    hits = np.zeros(L)
    logits = uses_logit_readout(clf.rule_)
    for s0 in range(0, len(X), 1000):
        xq = clf._ops.quantize_input(X[s0:s0 + 1000])
        hs = forward_all(clf.state_, clf._ops, xq, False, logits_last=logits, device=device)
        for k in range(L):
            pred = readout_predictions(clf.state_, clf._ops, k, hs[k], logits=logits and k == L - 1)[0]
            hits[k] += np.sum(clf.classes_[pred] == y[s0:s0 + 1000])
    return [float(h / len(X)) for h in hits]


def run(args, adc: str | None, seed: int):
    d = load_dataset("mnist")
    n = args.n_train or len(d.y_train)
    X, y = d.features("train")[:n], d.y_train[:n]
    Xt, yt = d.features("test"), d.y_test
    device = None
    if adc is not None:
        conv = dict(converters=None) if adc == "ideal" else dict(adc_bits=int(adc), error_adc_bits=int(adc),
                                                                  adc_range=args.adc_range)
        device = CrossbarDevice(args.preset, weight_range=args.weight_range, seed=seed, **conv, **args.overrides)
    clf = estimator(args, seed, device)
    t0 = time.perf_counter()
    clf.fit(X, y)
    rec = {"rule": args.rule, "dims": f"784-{args.hidden}-10", "n_train": len(X), "epochs": args.epochs,
           "batch": args.batch, "lr": args.lr or (2.5 if args.rule == "spela" else 0.1), "seed": seed,
           "preset": args.preset if device else None, "adc": adc or "no device",
           "weight_range": args.weight_range if device else None,
           "device_overrides": args.overrides if device else None,
           "train_seconds": round(time.perf_counter() - t0, 1),
           "digital_accuracy": clf.score_layers(Xt, yt)}
    if device is not None:
        rec["converters"] = device.converters.describe() if device.converters else "ideal (exact products)"
        rec["device_accuracy"] = device_accuracy(clf, Xt, yt, clf.device_)  # the trained copy
        life = clf.device_.lifetime(clf.train_counts_.samples, samples_per_day=args.samples_per_day)
        rec["lifetime"] = {"max_writes_per_cell": life.max_writes_per_cell,
                           "mean_writes_per_cell": round(life.mean_writes_per_cell, 3),
                           "max_pulses_per_cell": life.max_pulses_per_cell,
                           "writes_per_cell_per_sample": life.writes_per_cell_per_sample,
                           "endurance_cycles": life.endurance_cycles,
                           "samples_per_day": life.samples_per_day, "days": life.days}
    return rec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rule", choices=("spela", "backprop"), default="spela")
    p.add_argument("--adc", default="none,ideal,8,6,4",
                   help="comma list: none (float32, no device), ideal (device, exact products), ADC bits")
    p.add_argument("--n-train", type=int, default=0, help="first N training images (0: all)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--seeds", default="0", help="comma list; seeds the network, shuffling and the device")
    p.add_argument("--adc-range", default="dynamic", help="ADC range convention (sim.crossbar_device)")
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--lr", type=float, default=None, help="default 2.5 (SPELA, mean over the batch), 0.1 (BP)")
    p.add_argument("--preset", default="rram-22nm")
    p.add_argument("--weight-range", type=float, default=1.0)
    p.add_argument("--samples-per-day", type=float, default=10000.0)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="device field override, e.g. --set stuck_at_hrs_rate=0.09 --set d2d_sigma=0.3")
    p.add_argument("--out", default="device_training.jsonl")
    args = p.parse_args(argv)
    args.overrides = {k: float(v) for k, v in (item.split("=", 1) for item in args.set)}
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows = []
    for adc in args.adc.split(","):
        for seed in (int(v) for v in args.seeds.split(",")):
            rec = run(args, None if adc == "none" else adc, seed)
            with open(args.out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            log.info(json.dumps(rec))
            rows.append(rec)
    log.info("| rule | ADC | on-device test acc (layer 1 / output) | digital read-out | max writes/cell | days |")
    for adc in args.adc.split(","):
        rs = [r for r in rows if r["adc"] == (adc if adc != "none" else "no device")]
        fmt = (lambda key: " / ".join(f"{100 * np.mean(v):.2f} ± {100 * np.std(v):.2f}"
                                      for v in zip(*[r[key] for r in rs])) if key in rs[0] else "-")
        life = [r["lifetime"] for r in rs if "lifetime" in r]
        writes = f"{np.mean([v['max_writes_per_cell'] for v in life]):.0f}" if life else "-"
        days = f"{np.mean([v['days'] for v in life]):.0f}" if life else "-"
        log.info(f"| {rs[0]['rule']} | {rs[0]['adc']} | {fmt('device_accuracy')} | {fmt('digital_accuracy')} | "
                 f"{writes} | {days} |")


if __name__ == "__main__":
    main()
