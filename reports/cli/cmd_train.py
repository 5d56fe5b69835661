"""``spela-hw train``: train one network (SPELA, backprop or sigprop) and save the model."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from spela_hw import PrecisionSpec, load_dataset
from spela_hw.errors import ConfigError
from spela_hw.estimator import Classifier
from spela_hw.io import load_model
from spela_hw.presets import PRESETS, preset_params
from spela_hw.protocols import few_shot, one_epoch
from spela_hw.specs import RULES, Sgd, spec_to_dict

log = logging.getLogger("spela-hw.train")


def parse_dims(text: str) -> tuple[int, ...]:
    """``"784,1024,10"`` -> ``(784, 1024, 10)`` (an argparse type)."""
    try:
        dims = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"dims must be comma-separated integers like 784,1024,10, got {text!r}") from None
    if len(dims) < 2 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"dims needs an input width and at least one positive layer width, got {text!r}")
    return dims


def parse_ranges(text: str) -> float | tuple[float, ...]:
    """``"0.25"`` -> ``0.25``; ``"0.25,2"`` -> ``(0.25, 2.0)``, one range per layer (an argparse type)."""
    try:
        ranges = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight range must be a number or comma-separated numbers like 0.25,2, "
                                         f"got {text!r}") from None
    return ranges[0] if len(ranges) == 1 else ranges


def add_model_options(p) -> None:
    """Options shared by every command that builds an estimator."""
    p.add_argument("--dataset", default="mnist-bundled",
                   help="mnist-bundled (shipped, default), mnist, fashion-mnist, kmnist")
    p.add_argument("--data-dir", help="directory holding the dataset files (else SPELA_HW_DATA, cache, system)")
    p.add_argument("--rule", default="spela", choices=sorted(RULES), help="learning rule")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a measured recipe of the chosen --rule (spela: official-code, paper-v2; sigprop: sigprop-sgd, sigprop-adam)")
    p.add_argument("--dims", type=parse_dims, help="layer widths from the input, e.g. 784,1024,10")
    p.add_argument("--weight-bits", type=int, help="fixed-point weights of this width (default float32)")
    p.add_argument("--weight-range", type=parse_ranges, default=0.25,
                   help="fixed-point weights hold [-R, R) (default 0.25; a narrower range is a finer LSB); "
                        "R1,R2,... gives each layer its own range, e.g. 0.25,2 for long runs whose output "
                        "weights grow")
    p.add_argument("--batch-size", type=int, help="1 = per-sample edge mode (default 1; preset's own)")
    p.add_argument("--epochs", type=int, help="epochs (default 3; preset's own)")
    p.add_argument("--lr", type=float, help="learning rate (constant unless the preset has a schedule)")
    p.add_argument("--seed", type=int, default=0, help="random seed (init, class vectors, order, rounding)")
    p.add_argument("--backend", default="numba", choices=("numba", "reference"))
    p.add_argument("--limit-train", type=int, help="use only the first N training samples")


def build_estimator(args, n_features: int) -> Classifier:
    """An estimator from the CLI options (preset first, explicit options override it)."""
    params = preset_params(args.preset) if args.preset else {"layer_sizes": (1024, 10), "epochs": 3}
    if args.preset and params["rule"].name != args.rule:
        raise ConfigError("preset", f"{args.preset} is a {params['rule'].name} recipe; use --rule {params['rule'].name}")
    rule = params.pop("rule", None) or RULES[args.rule]()
    if args.lr is not None:
        rule = type(rule)(**{**rule.__dict__, "optimizer": type(rule.optimizer)(
            **{**rule.optimizer.__dict__, "lr": args.lr, **({"step_delta": 0.0} if isinstance(rule.optimizer, Sgd) else {})})})
    if args.dims is not None:
        if args.dims[0] != n_features:
            raise ConfigError("dims", f"input width {args.dims[0]} does not match the dataset's {n_features} features")
        params["layer_sizes"] = args.dims[1:]
    for opt, key in (("batch_size", "batch_size"), ("epochs", "epochs")):
        if getattr(args, opt) is not None:
            params[key] = getattr(args, opt)
    precision = PrecisionSpec.fixed(args.weight_bits, args.weight_range) if args.weight_bits else None
    return Classifier(**params, rule=rule, precision=precision, backend=args.backend,
                      random_state=args.seed, progress=sys.stderr.isatty())


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network and save the model",
                       description="Train SPELA, backprop or sigprop on a dataset; per-layer test "
                                   "accuracy after every epoch; the model is checkpointed every epoch.")
    add_model_options(p)
    p.add_argument("--protocol", default="standard", choices=("standard", "few-shot", "one-epoch"),
                   help="standard split, the few-shot protocol or the 1-epoch protocol (SPELA vs backprop)")
    p.add_argument("--test-fraction", type=float, action="append",
                   help="few-shot test fraction (repeatable; default 0.95 and 0.99)")
    p.add_argument("--trials", type=int, default=5, help="few-shot / 1-epoch trials")
    p.add_argument("--out", type=Path, help="model file (default runs/<rule>-<dataset>.npz)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint at --out")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    p.set_defaults(func=run)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args) -> int:
    data = load_dataset(args.dataset, data_dir=args.data_dir)
    x_tr, y_tr = data.features("train"), data.y_train
    if args.limit_train:
        x_tr, y_tr = x_tr[: args.limit_train], y_tr[: args.limit_train]
    x_te, y_te = data.features("test"), data.y_test
    if args.protocol != "standard":
        return _run_protocol(args, data)
    clf = build_estimator(args, x_tr.shape[1])
    out = args.out or Path("runs") / f"{args.rule}-{args.dataset}.npz"
    t0 = time.perf_counter()

    def checkpoint(model, record):
        model.save(out)
        accs = " ".join(f"L{k + 1}={record[f'layer{k + 1}_accuracy']:.4f}"
                        for k in range(model.network_spec_.n_layers))
        _say(f"epoch {record['epoch']}/{model.epochs} lr={record['lr']:.4g} "
             f"{record['train_seconds']:.1f}s test accuracy {accs}")

    if args.resume and out.exists():
        clf = load_model(out)
        clf.set_params(epochs=max(clf.epochs, args.epochs or clf.epochs), progress=sys.stderr.isatty())
        _say(f"resuming {out} at epoch {clf.epochs_done_}/{clf.epochs}")
        clf.continue_fit(x_tr, y_tr, eval_set=(x_te, y_te), callback=checkpoint)
    else:
        spec_dims = (x_tr.shape[1], *clf.layer_sizes)
        _say(f"training {args.rule} {'-'.join(map(str, spec_dims))} on {data.name} "
             f"({len(y_tr)} train / {len(y_te)} test), {clf.precision.name if clf.precision else 'fp32'}, "
             f"batch {clf.batch_size}, {clf.epochs} epochs")
        clf.fit(x_tr, y_tr, eval_set=(x_te, y_te), callback=checkpoint)
        if clf.epochs == 0:
            clf.save(out)
    seconds = time.perf_counter() - t0
    accs = clf.score_layers(x_te, y_te)
    _say(f"saved {out}")
    if args.json:
        per_sample = {k: [float(v) for v in vals] for k, vals in clf.train_counts_.per_sample().items()}
        result = {
            "dataset": data.name,
            "rule": clf.rule_.name,
            "dims": list(clf.network_spec_.dims),
            "precision": clf.precision_.name,
            "layer_accuracy": accs,
            "accuracy": accs[-1],
            "epochs": clf.epochs_done_,
            "samples": int(clf.train_counts_.samples),
            "train_seconds": round(seconds, 3),
            "model": str(out),
            "history": clf.history_,
            "train_counts_per_sample": per_sample,
            "config": {
                "rule": spec_to_dict(clf.rule_),
                "precision": clf.precision_.to_dict(),
                "layer_sizes": list(clf.layer_sizes),
                "batch_size": clf.batch_size,
                "epochs": clf.epochs,
                "shuffle": clf.shuffle,
                "seed": args.seed,
                "backend": clf.backend,
                "activation": clf.activation,
                "slope": clf.slope,
                "init": clf.init,
                "bias_init": clf.bias_init,
            },
        }
        print(json.dumps(result, default=_json_default))
    return 0


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _run_protocol(args, data) -> int:
    epochs = args.epochs or (5 if args.protocol == "few-shot" else 1)
    if args.protocol == "few-shot":
        fractions = tuple(args.test_fraction or (0.95, 0.99))
        _say(f"few-shot protocol on {data.name}: test fractions {fractions}, {epochs} epochs, {args.trials} trials")
        records = few_shot(data, fractions, epochs=epochs, trials=args.trials, seed=args.seed)
    else:
        _say(f"1-epoch protocol on {data.name}, {args.trials} trials")
        records = one_epoch(data, trials=args.trials, seed=args.seed)
    for r in records:
        _say(f"{r['protocol']} {r['rule']:9s} trial {r['trial']} n_train={r['n_train']} accuracy={r['accuracy']:.4f}")
    if args.json:
        print(json.dumps({"protocol": args.protocol, "dataset": data.name, "records": records},
                         default=_json_default))
    return 0
