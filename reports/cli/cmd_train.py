"""``spela-hw train``: train one network (SPELA, backprop or sigprop) and save the model."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from reports.cli import dataset_help, load_data, say
from spela_hw import PrecisionSpec, jsonio
from spela_hw.conv import CONV_TARGETS, NORMS, ConvNetSpec, parse_layers
from spela_hw.conv.estimator import ConvBackpropClassifier, ConvSpelaClassifier
from spela_hw.errors import ConfigError
from spela_hw.estimator import Classifier, check_n_jobs
from spela_hw.io import load_model, model_path, read_training_data
from spela_hw.recipes import PRESETS, default_params, preset_params
from spela_hw.protocols import default_competitors, few_shot, one_epoch
from spela_hw.transfer import DEFAULT_EXTRACTOR, SPLITS, default_heads, transfer
from spela_hw.specs import DEFAULT_SR_BITS, RULES, SR_BITS_RANGE, Sgd, spec_to_dict

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


def parse_lr_step(text: str) -> tuple[int, float]:
    """``"10:0.1"`` -> ``(10, 0.1)``: every 10 epochs the learning rate times 0.1 (an argparse type)."""
    every, _, gamma = text.partition(":")
    try:
        step = int(every), float(gamma)
    except ValueError:
        raise argparse.ArgumentTypeError(f"lr-step must be EPOCHS:FACTOR like 10:0.1, got {text!r}") from None
    if step[0] < 1 or not 0 < step[1] <= 1:
        raise argparse.ArgumentTypeError(f"lr-step needs a positive number of epochs and a factor in (0, 1], "
                                         f"got {text!r}")
    return step


def parse_ranges(text: str) -> float | tuple[float, ...]:
    """``"0.25"`` -> ``0.25``; ``"0.25,2"`` -> ``(0.25, 2.0)``, one range per layer (an argparse type)."""
    try:
        ranges = tuple(float(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"weight range must be a number or comma-separated numbers like 0.25,2, "
                                         f"got {text!r}") from None
    return ranges[0] if len(ranges) == 1 else ranges


#: Values of the options left out. Their parser defaults are None so that a resumed run can tell
#: an option given (checked against the checkpoint) from one left out (the checkpoint's value).
DEFAULTS = {"dataset": "mnist-bundled", "rule": "spela", "seed": 0, "weight_range": 0.25, "backend": "numba"}


def _opt(args, name):
    """The option's value, or its default when it was left out."""
    value = getattr(args, name)
    return DEFAULTS[name] if value is None else value


def add_model_options(p) -> None:
    """Options shared by every command that builds an estimator."""
    p.add_argument("--dataset", help=dataset_help())
    p.add_argument("--data-dir", help="directory holding the dataset files, the only place searched when given "
                                      "(else SPELA_HW_DATA, cache, system)")
    p.add_argument("--rule", choices=sorted(RULES), help="learning rule (default spela)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a measured recipe of the chosen --rule (spela: official-code, paper-v2; sigprop: sigprop-sgd, sigprop-adam)")
    p.add_argument("--dims", type=parse_dims,
                   help="layer widths from the input (default 784,1024,34 for spela: 34 output dimensions for "
                        "the 10 class vectors; 784,1024,10 for backprop and sigprop)")
    p.add_argument("--weight-bits", type=int, help="fixed-point weights of this width (default float32)")
    p.add_argument("--weight-range", type=parse_ranges,
                   help="with --weight-bits: weights hold [-R, R) (default 0.25; a narrower range is a finer LSB); "
                        "R1,R2,... gives each layer its own range, e.g. 0.25,2 for long runs whose output "
                        "weights grow")
    p.add_argument("--sr-bits", type=int,
                   help=f"with --weight-bits: random bits per synapse of the stochastic-rounding unit, "
                        f"{SR_BITS_RANGE[0]}..{SR_BITS_RANGE[1]} (default {DEFAULT_SR_BITS}; size --sr-bits "
                        f"prices the same unit)")
    p.add_argument("--batch-size", type=int, help="1 = per-sample edge mode (default 1, --net 64; preset's own)")
    p.add_argument("--epochs", type=int, help="epochs (default 3; preset's own; with --resume: the total "
                                              "to reach)")
    p.add_argument("--lr", type=float, help="learning rate (constant unless the preset has a schedule; --net: the "
                                            "dense layers' SGD under spela, whose conv blocks keep Adam 0.01, or "
                                            "backprop's Adam)")
    p.add_argument("--lr-step", type=parse_lr_step, metavar="EPOCHS:FACTOR",
                   help="SGD learning-rate steps: times FACTOR every EPOCHS epochs, e.g. 10:0.1 (replaces the "
                        "preset's schedule; --net: the dense layers')")
    p.add_argument("--seed", type=int, help="random seed (init, class vectors, order, rounding; default 0)")
    p.add_argument("--backend", choices=("numba", "reference"), help="default numba")
    p.add_argument("--limit-train", type=int, help="use only the first N training samples (all when fewer)")
    p.add_argument("--jobs", type=int, default=-1,
                   help="most kernel threads: -1 all cores (default; the fused SPELA kernels use two where "
                        "measured faster than one; BLAS paths one), 1 one thread; never changes a result")


def _with_lr(rule, lr):
    """``rule`` with a constant learning rate ``lr`` (SGD's step schedule dropped)."""
    opt = rule.optimizer
    return type(rule)(**{**rule.__dict__, "optimizer": type(opt)(
        **{**opt.__dict__, "lr": lr, **({"step_delta": 0.0} if isinstance(opt, Sgd) else {})})})


def _with_lr_options(rule, args):
    """``rule`` with ``--lr`` and ``--lr-step`` applied (each only when given)."""
    if args.lr is not None:
        rule = _with_lr(rule, args.lr)
    if args.lr_step is None:
        return rule
    opt = rule.optimizer
    if not isinstance(opt, Sgd):
        raise ConfigError("lr-step", f"steps an SGD learning rate; --rule {rule.name} here trains with "
                                     f"{type(opt).__name__}")
    every, gamma = args.lr_step
    return type(rule)(**{**rule.__dict__, "optimizer": Sgd(
        **{**opt.__dict__, "step_every": every, "step_gamma": gamma, "step_delta": 0.0})})


def _precision(args):
    """The PrecisionSpec of --weight-bits / --weight-range / --sr-bits (None: float32)."""
    if args.weight_bits is None:
        if args.weight_range is not None:
            raise ConfigError("weight-range", "sets the range of fixed-point weights: give --weight-bits too")
        if args.sr_bits is not None:
            raise ConfigError("sr-bits", "sets the stochastic rounding of fixed-point weights: give --weight-bits too")
        return None
    try:
        return PrecisionSpec.fixed(args.weight_bits, _opt(args, "weight_range"),
                                   sr_bits=DEFAULT_SR_BITS if args.sr_bits is None else args.sr_bits)
    except ConfigError as exc:
        if exc.field == "sr_bits":
            raise ConfigError("sr-bits", exc.message) from None
        raise


def _layer_sizes(args, n_features: int):
    if args.dims[0] != n_features:
        raise ConfigError("dims", f"input width {args.dims[0]} does not match the dataset's {n_features} features")
    return args.dims[1:]


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """``"1,28,28"`` -> ``(1, 28, 28)``: channels, height, width of one input image."""
    try:
        shape = tuple(int(t) for t in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError("input-shape", f"must be three positive integers channels,height,width like 1,28,28, "
                                         f"got {text!r}")
    return shape


def add_conv_options(p, dataset: bool = False) -> None:
    """The options of a conv network description (``--net``): ``train`` and ``size`` take the same."""
    if dataset:
        p.add_argument("--dataset", help="with --net: the input shape and classes of this dataset (" +
                                         dataset_help() + ")")
    p.add_argument("--input-shape", help="with --net: channels,height,width of one input, e.g. 3,32,32 "
                                         "(default: the dataset's)")
    p.add_argument("--conv-target", choices=CONV_TARGETS,
                   help="with --net: SPELA's read-out of a conv block (default projection: trainable per-channel "
                        "projections, the paper's; fixed_projection: regenerated from a seed; pooled: channel means)")
    p.add_argument("--projection-dim", type=int, help="with --net: dimension of the projections (default 100)")
    p.add_argument("--norm", choices=NORMS, help="with --net: after every convolution (default batch)")


CONV_OPTIONS = ("input_shape", "conv_target", "projection_dim", "norm")


def conv_spec_options(args, need_net: bool = True) -> dict:
    """The ConvNetSpec keywords given on the command line (refused without --net unless
    ``need_net`` is false: a conv checkpoint being resumed describes the network)."""
    given = {k: getattr(args, k) for k in CONV_OPTIONS if getattr(args, k, None) is not None}
    if need_net and args.net is None:
        for k in given:
            raise ConfigError(k.replace("_", "-"), "describes a conv network: give --net too")
    if "input_shape" in given:
        given["input_shape"] = parse_input_shape(given["input_shape"])
    return given



def build_estimator(args, n_features: int, **overrides) -> Classifier:
    """An estimator from the CLI options (preset first, explicit options override it, then
    ``overrides``)."""
    rule_name = _opt(args, "rule")
    params = preset_params(args.preset) if args.preset else default_params(rule_name)
    if args.preset and params["rule"].name != rule_name:
        raise ConfigError("preset", f"{args.preset} is a {params['rule'].name} recipe; use --rule {params['rule'].name}")
    rule = _with_lr_options(params.pop("rule", None) or RULES[rule_name](), args)
    if args.dims is not None:
        params["layer_sizes"] = _layer_sizes(args, n_features)
    for opt, key in (("batch_size", "batch_size"), ("epochs", "epochs")):
        if getattr(args, opt) is not None:
            params[key] = getattr(args, opt)
    return Classifier(**{**params, "rule": rule, "precision": _precision(args), "backend": _opt(args, "backend"),
                         "random_state": _opt(args, "seed"), "progress": sys.stderr.isatty(), "n_jobs": args.jobs,
                         **overrides})


def register(sub) -> None:
    p = sub.add_parser("train", help="train a network and save the model",
                       description="Train SPELA, backprop or sigprop on a dataset; per-layer test "
                                   "accuracy after every epoch; the model is checkpointed every epoch.")
    add_model_options(p)
    p.add_argument("--net", help="a conv network instead of an MLP, e.g. c32k5p2-c64k5p2-d10: c<filters>k<kernel>"
                                 "[s<stride>][z<padding>][p<pool>] blocks (conv, norm, LeakyReLU, max-pool), then "
                                 "d<units> dense layers (spela or backprop; `size --net` sizes the same network)")
    add_conv_options(p)
    p.add_argument("--conv-epochs", type=int,
                   help="with --net, spela: train the conv blocks in the first N epochs only, then freeze them "
                        "(BatchNorm folded) while the dense layers learn on (default: every epoch)")
    p.add_argument("--protocol", default="standard", choices=("standard", "few-shot", "one-epoch", "transfer"),
                   help="standard split, the few-shot protocol or the 1-epoch protocol (SPELA vs backprop; "
                        "--rule trains that rule alone), or transfer: a frozen conv extractor (--net, default "
                        f"{DEFAULT_EXTRACTOR}, backprop off-device) and dense heads learned on device in float32 "
                        "and fixed point (--weight-bits, default 8, at each head's own range unless --weight-range); "
                        "--limit-train limits the source and the target training samples")
    p.add_argument("--split", choices=SPLITS,
                   help="--protocol transfer: source and target (classes: lower / upper half of the classes, "
                        "default; half: first / second half of the training set; dataset: --dataset / "
                        "--target-dataset)")
    p.add_argument("--target-dataset", help="--protocol transfer --split dataset: the target data set")
    p.add_argument("--extractor-epochs", type=int, help="--protocol transfer: the extractor's epochs (default 1)")
    p.add_argument("--budget", help="--protocol transfer: memory budget of the on-device head (default 256KiB SRAM)")
    p.add_argument("--test-fraction", type=float, action="append",
                   help="few-shot test fraction (repeatable; default 0.95 and 0.99)")
    p.add_argument("--trials", type=int, help="few-shot / 1-epoch trials (default 5), transfer trials (default 1)")
    p.add_argument("--out", type=Path, help="model file; .npz is appended when missing "
                                            "(default runs/<rule>-<dataset>.npz)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint at --out (it must exist; options given must match it)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    p.set_defaults(func=run)


def _refuse(args, names, why: str) -> None:
    for name in names:
        if getattr(args, name) not in (None, False):
            raise ConfigError(name.replace("_", "-"), why)


def _check_writable(out: Path) -> None:
    """Refuse an --out that cannot be written before any training (not at the first checkpoint);
    creates nothing."""
    if out.is_dir():
        raise ConfigError("out", f"{out} is a directory; give a model file name")
    parent = out.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError("out", f"{out}: cannot write there ({parent} is not a directory)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError("out", f"{out}: cannot write there (no write permission in {parent})")


def run(args) -> int:
    if args.limit_train is not None and args.limit_train < 1:
        raise ConfigError("limit-train", f"must be a positive number of samples, got {args.limit_train}")
    if args.seed is not None and args.seed < 0:
        raise ConfigError("seed", f"must be a non-negative integer, got {args.seed}")
    check_n_jobs(args.jobs, field="jobs")
    if args.protocol == "transfer":
        return _run_transfer(args)
    _refuse(args, _TRANSFER_ONLY, "applies to --protocol transfer only")
    if not args.resume:
        conv_spec_options(args)  # conv options need --net (or a conv checkpoint)
        if args.net is None:
            _refuse(args, ("conv_epochs",), "freezes the conv blocks of a conv network: give --net too")
    if args.net is not None:
        _check_conv_options(args)
    if args.protocol != "standard":
        return _run_protocol(args)
    _refuse(args, ("test_fraction", "trials"), "applies to --protocol few-shot or one-epoch only")
    name = _opt(args, "rule") + (f"-{args.net}" if args.net else "")
    out = model_path(args.out or Path("runs") / f"{name}-{_opt(args, 'dataset')}.npz")
    _check_writable(out)
    clf, trained_on = None, {}
    if args.resume:
        if not out.exists():
            raise ConfigError("resume", f"no checkpoint at {out}; leave out --resume to start a new run")
        clf, trained_on = load_model(out), read_training_data(out)
        if hasattr(clf, "spec_"):
            return _run_conv(args, out, clf)
        conv_spec_options(args)
        _refuse(args, ("conv_epochs",), f"freezes the conv blocks of a conv network; the checkpoint {out} is an MLP")
        if args.net is not None:
            raise ConfigError("net", f"--net {args.net} but the checkpoint {out} is an MLP "
                                     f"({','.join(map(str, clf.network_spec_.dims))}); give another --out")
    elif args.net is not None:
        return _run_conv(args, out)
    limit = args.limit_train if args.limit_train is not None else trained_on.get("limit_train")
    data = load_data(args.dataset or trained_on.get("dataset") or DEFAULTS["dataset"], data_dir=args.data_dir)
    x_tr, y_tr = data.features("train")[:limit], data.y_train[:limit]
    x_te, y_te = data.features("test"), data.y_test
    training_data = {"dataset": data.name, "limit_train": limit}
    t0 = time.perf_counter()

    def checkpoint(model, record):
        model.save(out, training_data)
        accs = " ".join(f"L{k + 1}={record[f'layer{k + 1}_accuracy']:.4f}" for k in model.readout_layers_)
        say(f"epoch {record['epoch']}/{model.epochs} lr={record['lr']:.4g} "
            f"{record['train_seconds']:.1f}s test accuracy {accs}")

    if clf is not None:
        _check_resume(args, clf, trained_on, data.name, len(y_tr), out)
        clf.set_params(epochs=clf.epochs if args.epochs is None else args.epochs, progress=sys.stderr.isatty(),
                       n_jobs=args.jobs)
        say(f"resuming {out} at epoch {clf.epochs_done_}/{clf.epochs}")
        clf.continue_fit(x_tr, y_tr, eval_set=(x_te, y_te), callback=checkpoint)
    else:
        clf = build_estimator(args, x_tr.shape[1])
        spec_dims = (x_tr.shape[1], *clf.layer_sizes)
        say(f"training {_opt(args, 'rule')} {'-'.join(map(str, spec_dims))} on {data.name} "
            f"({len(y_tr)} train / {len(y_te)} test), {clf.precision.name if clf.precision else 'fp32'}, "
            f"batch {clf.batch_size}, {clf.epochs} epochs")
        clf.fit(x_tr, y_tr, eval_set=(x_te, y_te), callback=checkpoint)
        if clf.epochs == 0:
            clf.save(out, training_data)
    seconds = time.perf_counter() - t0
    accs = readout_accuracy(clf, clf.score_layers(x_te, y_te))
    say(f"saved {out}")
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
            "history": [_readout_record(clf, r) for r in clf.history_],
            "train_counts_per_sample": per_sample,
            "config": {
                "rule": spec_to_dict(clf.rule_),
                "precision": clf.precision_.to_dict(),
                "layer_sizes": list(clf.layer_sizes),
                "batch_size": clf.batch_size,
                "epochs": clf.epochs,
                "shuffle": clf.shuffle,
                "seed": clf.random_state,
                "limit_train": limit,
                "backend": clf.backend,
                "n_jobs": clf.n_jobs,
                "activation": clf.activation,
                "slope": clf.slope,
                "init": clf.init,
                "bias_init": clf.bias_init,
            },
        }
        print(jsonio.dumps(result))
    return 0


# -- conv networks (--net) ---------------------------------------------------------------------------

#: Options that describe or run an MLP only, refused with --net (naming both).
_MLP_ONLY = {"dims": "--dims describes an MLP's widths and --net a conv network: give one of the two",
             "preset": "the recipes are MLP recipes; --net trains with the conv estimator's defaults",
             "backend": "conv networks run numba kernels, chosen by the library (ConvSpelaClassifier(backend=...) "
                        "selects the NumPy reference): leave --backend out"}
# `train --net` without --epochs: 3, as for dense networks. c32k5p2-c64k5p2-d10 on the bundled
# data read out 86.5 % at the head after 1 epoch, 96.0 % after 3 (seed 0), in 26 s (loaded machine).
CONV_TRAIN_EPOCHS = 3
_CONV_RULES = {"spela": ConvSpelaClassifier, "backprop": ConvBackpropClassifier}


def _check_conv_options(args) -> None:
    """Refuse what a conv network cannot take, naming the option and --net."""
    for name, why in _MLP_ONLY.items():
        if getattr(args, name) is not None:
            raise ConfigError(name.replace("_", "-"), f"--{name.replace('_', '-')} with --net: {why}")
    if _opt(args, "rule") not in _CONV_RULES:
        raise ConfigError("rule", f"--rule {args.rule} with --net: conv networks train by {' or '.join(_CONV_RULES)}")
    if args.projection_dim is not None and args.projection_dim < 1:
        raise ConfigError("projection-dim", f"must be a positive integer, got {args.projection_dim}")
    if args.jobs > 1 and _opt(args, "rule") != "spela":
        raise ConfigError("jobs", f"--jobs {args.jobs} with --rule {_opt(args, 'rule')}: backprop's conv network "
                                  f"trains on one thread (every layer waits for the backward pass of the next)")
    if args.conv_epochs is not None:
        if args.conv_epochs < 0:
            raise ConfigError("conv-epochs", f"must be a non-negative integer, got {args.conv_epochs}")
        if _opt(args, "rule") != "spela":
            raise ConfigError("conv-epochs", f"--rule {_opt(args, 'rule')} trains every layer in every epoch: "
                                             f"--conv-epochs applies to spela")
    parse_layers(args.net)  # a bad spec string is refused before any data is read


def build_conv_estimator(args, image_shape):
    """A conv estimator from ``--net`` and the options (the input shape from the dataset unless given)."""
    kw = conv_spec_options(args)
    shape = kw.pop("input_shape", None) or tuple(image_shape)
    if math.prod(shape) != math.prod(image_shape):
        raise ConfigError("input-shape", f"{','.join(map(str, shape))} holds {math.prod(shape)} values, the dataset's "
                                         f"{'x'.join(map(str, image_shape))} images {math.prod(image_shape)}")
    ConvNetSpec.parse(args.net, shape, **kw)  # kernels and pools that do not fit, refused before training
    cls = _CONV_RULES[_opt(args, "rule")]
    rule = None if (args.lr, args.lr_step) == (None, None) else _with_lr_options(cls._default_rule, args)
    kw["epochs"] = CONV_TRAIN_EPOCHS  # as the dense default; the estimator's own is 1
    for opt in ("batch_size", "epochs", "conv_epochs"):
        if getattr(args, opt) is not None:
            kw[opt] = getattr(args, opt)
    return cls(net=args.net, rule=rule, precision=_precision(args), input_shape=shape,
               random_state=_opt(args, "seed"), n_jobs=args.jobs, **kw)


def _run_conv(args, out: Path, clf=None) -> int:
    """Train (or resume) a conv network and save it; the standard protocol only."""
    if clf is not None:
        _check_conv_resume(args, clf, out)
    limit = args.limit_train
    data = load_data(_opt(args, "dataset"), data_dir=args.data_dir)
    x_tr, y_tr = data.features("train")[:limit], data.y_train[:limit]
    x_te, y_te = data.features("test"), data.y_test
    t0 = time.perf_counter()

    def checkpoint(model, record):
        model.save(out)
        accs = " ".join(f"L{k}={record[f'layer{k}_accuracy']:.4f}" for k in range(1, model.n_readouts_ + 1))
        dense = f" dense lr={record['dense_lr']:.4g}" if "dense_lr" in record else ""
        say(f"epoch {record['epoch']}/{model.epochs} lr={record['lr']:.4g}{dense} "
            f"{record['train_seconds']:.1f}s test accuracy {accs}")

    if clf is not None:
        samples = clf.history_[-1]["samples"] if clf.history_ else len(y_tr)
        if samples != len(y_tr):
            raise ConfigError("limit-train", f"the checkpoint {out} was trained on {samples} samples per epoch, "
                                             f"this run has {len(y_tr)} (--dataset or --limit-train differ)")
        clf.set_params(epochs=clf.epochs if args.epochs is None else args.epochs, n_jobs=args.jobs)
        say(f"resuming {out} at epoch {clf.epochs_done_}/{clf.epochs}")
        clf.continue_fit(x_tr, y_tr, eval_set=(x_te, y_te), callback=checkpoint)
    else:
        clf = build_conv_estimator(args, data.image_shape)
        say(f"training {_opt(args, 'rule')} {args.net} on {data.name} {'x'.join(map(str, clf.input_shape))} "
            f"({len(y_tr)} train / {len(y_te)} test), {clf.precision.name if clf.precision else 'fp32'}, "
            f"batch {clf.batch_size}, {clf.epochs} epochs")
        clf.fit(x_tr, y_tr, eval_set=(x_te, y_te), callback=checkpoint)
        if clf.epochs == 0:
            clf.save(out)
    seconds = time.perf_counter() - t0
    accs = clf.score_layers(x_te, y_te)
    say(f"saved {out}")
    if args.json:
        print(jsonio.dumps({
            "dataset": data.name, "rule": clf.rule_.name, "net": clf.spec_.net, "network": clf.spec_.to_dict(),
            "precision": clf.precision_.name, "layer_accuracy": accs, "accuracy": accs[-1],
            "epochs": clf.epochs_done_, "train_seconds": round(seconds, 3), "model": str(out),
            "history": clf.history_, "config": {**clf.get_params(), "rule": spec_to_dict(clf.rule_),
                                                "precision": clf.precision_.to_dict(), "limit_train": limit,
                                                "conv_optimizer": spec_to_dict(clf.conv_optimizer_)}}))
    return 0


def _lr_step_text(opt) -> str:
    """An optimiser's learning-rate steps as ``--lr-step`` writes them."""
    if not isinstance(opt, Sgd) or not opt.step_every:
        return "none"
    if opt.step_delta:
        return f"-{opt.step_delta:g} every {opt.step_every} epochs"
    return f"{opt.step_every}:{opt.step_gamma:g}"


def _check_conv_resume(args, clf, out: Path) -> None:
    """Refuse options that contradict a conv checkpoint, naming both values."""
    spec, weight = clf.spec_, clf.precision_.weight
    shape = conv_spec_options(args, need_net=False).get("input_shape")
    given = {
        "net": (args.net and ConvNetSpec.parse(args.net, spec.input_shape).net, spec.net),
        "rule": (args.rule, clf.rule_.name),
        "input-shape": (shape and ",".join(map(str, shape)), ",".join(map(str, spec.input_shape))),
        "conv-target": (args.conv_target, spec.conv_target),
        "projection-dim": (args.projection_dim, spec.projection_dim),
        "norm": (args.norm, spec.norm),
        "weight-bits": (args.weight_bits, weight.bits if weight is not None else "float32"),
        "sr-bits": (args.sr_bits, clf.precision_.sr_bits if weight is not None else "float32"),
        "lr": (args.lr, clf.rule_.optimizer.lr),
        "lr-step": (args.lr_step and "%d:%g" % args.lr_step, _lr_step_text(clf.rule_.optimizer)),
        "batch-size": (args.batch_size, clf.batch_size),
        "conv-epochs": (args.conv_epochs, clf.conv_epochs),
        "seed": (args.seed, clf.random_state),
    }
    conflicts = [(opt, f"--{opt} {mine} but the checkpoint has {theirs}")
                 for opt, (mine, theirs) in given.items() if mine is not None and mine != theirs]
    if conflicts:
        raise ConfigError(conflicts[0][0], f"{'; '.join(c for _, c in conflicts)} ({out}). Leave the option out "
                          f"to resume with the checkpoint's value, or give another --out for a new run")
    if args.epochs is not None and args.epochs < clf.epochs_done_:
        raise ConfigError("epochs", f"--epochs {args.epochs} but the checkpoint {out} already has "
                          f"{clf.epochs_done_} epochs")


def readout_accuracy(clf, accs: list) -> list:
    """Per-layer accuracies with ``None`` where the rule trains no read-out (backprop's hidden
    layers: a cosine read-out there is not a measure of the model)."""
    keep = clf.readout_layers_
    return [a if k in keep else None for k, a in enumerate(accs)]


def _readout_record(clf, record: dict) -> dict:
    """A history record without the accuracies of layers that have no trained read-out."""
    hidden = {f"layer{k + 1}_accuracy" for k in range(clf.network_spec_.n_layers) if k not in clf.readout_layers_}
    return {key: v for key, v in record.items() if key not in hidden}


def _ranges(precision) -> str:
    """The --weight-range text of a precision ("float32" when it has no fixed-point weights)."""
    w = precision.weight
    if w is None:
        return "float32"
    r = w.lsb * 2 ** (w.bits - 1)
    return ",".join(f"{r * 2 ** e:g}" for e in precision.weight_exponents) or f"{r:g}"


def _check_resume(args, clf, trained_on: dict, dataset: str, n_train: int, out: Path) -> None:
    """Refuse options that contradict the checkpoint (they are fixed by it), naming both values."""
    precision, weight = clf.precision_, clf.precision_.weight
    given = {  # option: (value given or None when left out, the checkpoint's value)
        "dataset": (args.dataset and dataset, trained_on.get("dataset", dataset)),
        "rule": (args.rule, clf.rule_.name),
        "dims": (args.dims and ",".join(map(str, args.dims)), ",".join(map(str, clf.network_spec_.dims))),
        "weight-bits": (args.weight_bits, weight.bits if weight is not None else "float32"),
        "sr-bits": (args.sr_bits, precision.sr_bits if weight is not None else "float32"),
        "lr": (args.lr, clf.rule_.optimizer.lr),
        "lr-step": (args.lr_step and "%d:%g" % args.lr_step, _lr_step_text(clf.rule_.optimizer)),
        "batch-size": (args.batch_size, clf.batch_size),
        "seed": (args.seed, clf.random_state),
        "backend": (args.backend, clf.backend),
    }
    if "limit_train" in trained_on:
        given["limit-train"] = (args.limit_train, trained_on["limit_train"] or "all samples")
    if args.weight_range is not None:
        asked = weight is not None and PrecisionSpec.fixed(weight.bits, args.weight_range)
        same = asked and (asked.weight, asked.weight_exponents) == (weight, precision.weight_exponents)
        mine = ",".join(f"{r:g}" for r in np.atleast_1d(args.weight_range))
        given["weight-range"] = (mine, mine if same else _ranges(precision))
    if args.preset is not None:
        asked = preset_params(args.preset)["rule"]
        asked = _with_lr_options(asked, args)
        given["preset"] = (args.preset, args.preset if asked == clf.rule_ else f"another recipe {spec_to_dict(clf.rule_)}")
    conflicts = [(opt, f"--{opt} {mine} but the checkpoint has {theirs}")
                 for opt, (mine, theirs) in given.items() if mine is not None and mine != theirs]
    if conflicts:
        raise ConfigError(conflicts[0][0], f"{'; '.join(c for _, c in conflicts)} ({out}). Leave the option out "
                          f"to resume with the checkpoint's value, or give another --out for a new run")
    samples = clf.history_[-1]["samples"] if clf.history_ else n_train
    if samples != n_train:
        raise ConfigError("limit-train", f"the checkpoint {out} was trained on {samples} samples per epoch, "
                          f"this run has {n_train} (--dataset or --limit-train differ)")
    if args.epochs is not None and args.epochs < clf.epochs_done_:
        raise ConfigError("epochs", f"--epochs {args.epochs} but the checkpoint {out} already has "
                          f"{clf.epochs_done_} epochs")


def _competitors(args, n_features: int, epochs: int) -> dict:
    """What the protocol trains: the paper's pair (with --dims / --weight-bits / --backend applied
    to both), or with --rule (or --preset) that rule alone, built from every option as ``train`` does."""
    if args.rule is None and args.preset is None:
        _refuse(args, ("lr", "lr_step", "batch_size"),
                "the default pair uses each rule's own recipe: give --rule to train one rule with it")
        shared = {"precision": _precision(args)} if (args.weight_bits, args.weight_range, args.sr_bits) \
            != (None, None, None) else {}
        if args.dims is not None:
            shared["layer_sizes"] = _layer_sizes(args, n_features)
        if args.backend is not None:
            shared["backend"] = args.backend
        return default_competitors(epochs, n_jobs=args.jobs, **shared)
    build_estimator(args, n_features)  # refuse bad options before any training
    return {_opt(args, "rule"): lambda seed: build_estimator(args, n_features, epochs=epochs, random_state=seed)}


def _run_protocol(args) -> int:
    _refuse(args, ("out", "resume", "limit_train"), f"does not apply to --protocol {args.protocol}")
    _refuse(args, ("net",), f"--protocol {args.protocol} trains MLPs in this version: leave --net out")
    if args.protocol == "one-epoch":
        _refuse(args, ("test_fraction",), "applies to --protocol few-shot only")
        if args.epochs not in (None, 1):
            raise ConfigError("epochs", f"--protocol one-epoch trains exactly 1 epoch, got {args.epochs}")
    epochs = args.epochs if args.epochs is not None else (5 if args.protocol == "few-shot" else 1)
    trials = 5 if args.trials is None else args.trials
    seed = _opt(args, "seed")
    data = load_data(_opt(args, "dataset"), data_dir=args.data_dir)
    competitors = _competitors(args, data.x_train.shape[1], epochs)
    if args.protocol == "few-shot":
        fractions = tuple(args.test_fraction or (0.95, 0.99))
        say(f"few-shot protocol on {data.name}: test fractions {fractions}, {epochs} epochs, {trials} trials")
        records = few_shot(data, fractions, epochs=epochs, trials=trials, competitors=competitors, seed=seed)
    else:
        say(f"1-epoch protocol on {data.name}, {trials} trials")
        records = one_epoch(data, trials=trials, competitors=competitors, seed=seed)
    for r in records:
        say(f"{r['protocol']} {r['rule']:9s} trial {r['trial']} n_train={r['n_train']} accuracy={r['accuracy']:.4f}")
    if args.json:
        print(jsonio.dumps({"protocol": args.protocol, "dataset": data.name, "records": records}))
    return 0


# -- transfer learning (--protocol transfer) ---------------------------------------------------------

_TRANSFER_ONLY = ("split", "target_dataset", "extractor_epochs", "budget")
#: Options the transfer protocol does not take, and why (each refused by name).
_NOT_TRANSFER = {
    ("out", "resume"): "--protocol transfer saves no model",
    ("test_fraction",): "applies to --protocol few-shot only",
    ("dims", "preset", "lr", "lr_step", "batch_size", "conv_epochs"):
        "--protocol transfer trains its own heads (transfer.default_heads)",
    CONV_OPTIONS: "--protocol transfer's extractor is a backprop conv network with the defaults",
}
DEFAULT_BUDGET = "256KiB"


def _run_transfer(args) -> int:
    for names, why in _NOT_TRANSFER.items():
        _refuse(args, names, why)
    if args.jobs != -1:
        raise ConfigError("jobs", "--protocol transfer: the heads use the kernels' default threads")
    if args.rule is not None and args.rule not in ("spela", "backprop"):
        raise ConfigError("rule", f"--protocol transfer has spela and backprop heads, got {args.rule}")
    for name in ("epochs", "extractor_epochs", "trials"):  # named as on the command line
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(name.replace("_", "-"), f"must be a positive integer, got {getattr(args, name)}")
    split = args.split or ("dataset" if args.target_dataset else "classes")
    if (split == "dataset") != (args.target_dataset is not None):
        raise ConfigError("target-dataset", "is needed by --split dataset and only by it")
    budget = args.budget or DEFAULT_BUDGET
    from reports.hardware import transfer_head_costs  # pandas and sim: loaded only here
    from sim import MemoryBudget

    MemoryBudget.coerce(budget)  # a bad budget refused before training
    fixed = _precision(args)  # --weight-bits alone: its bits at each head's own range (transfer.HEAD_WEIGHT_RANGES)
    if fixed is None or (args.weight_range, args.sr_bits) == (None, None):
        fixed = 8 if args.weight_bits is None else args.weight_bits
    epochs = 3 if args.epochs is None else args.epochs
    heads = default_heads(epochs, backend=_opt(args, "backend"))
    if args.rule is not None:
        heads = {args.rule: heads[args.rule]}
    data = load_data(_opt(args, "dataset"), data_dir=args.data_dir)
    target = load_data(args.target_dataset, data_dir=args.data_dir) if args.target_dataset else None
    net = args.net or DEFAULT_EXTRACTOR
    extractor_epochs = 1 if args.extractor_epochs is None else args.extractor_epochs
    label = f"w{fixed}" if isinstance(fixed, int) else fixed.name
    say(f"transfer protocol on {data.name} (split {split}{', target ' + target.name if target else ''}): "
        f"extractor {net} {extractor_epochs} epochs, heads {', '.join(heads)} {epochs} epochs, fp32 and {label}")
    records = transfer(data, split, target, net=net, extractor_epochs=extractor_epochs, head_epochs=epochs,
                       trials=1 if args.trials is None else args.trials, heads=heads,
                       precisions={"fp32": None, label: fixed}, seed=_opt(args, "seed"),
                       limit_source=args.limit_train, limit_target=args.limit_train)
    for r in records:
        r.update(transfer_head_costs(r, budget=budget))
        say(f"transfer {r['head']:9s} {r['precision']:7s} range {r['weight_range'] or '-'} trial {r['trial']} "
            f"dims {'-'.join(map(str, r['dims']))} params {r['trainable_parameters']} accuracy {r['accuracy']:.4f} memory {r['memory_bytes'] / 1024:.1f} KiB "
            f"({'fits' if r['fits_budget'] else 'exceeds'} {budget})")
    if args.json:
        print(jsonio.dumps({"protocol": "transfer", "dataset": data.name, "split": split,
                            "target_dataset": target.name if target else None, "budget": budget,
                            "records": records}))
    return 0
