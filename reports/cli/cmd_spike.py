"""``spela-hw spike``: SPELA as spiking plasticity in Brian2 (train in spikes, or convert a model).

Examples::

    spela-hw spike                       # 784-100-10 learns the bundled MNIST subset, about 1 minute
    spela-hw spike --dataset mnist --dims 784,400,10 --train-samples 60000 --test-samples 10000 --json
    spela-hw spike --from-model model.npz --test-samples 2000 --json

Without ``--from-model`` the network learns in spikes (one Brian2 run for training and test) and,
with ``--compare-rate``, rate SPELA is trained on the same samples, shape, epochs and class codes.
With ``--from-model`` a saved ``spela_hw`` model is converted to spikes (threshold balancing) and
its spiking accuracy is compared with its rate accuracy. Energies are per sample under every
named convention of ``sim.spiking_energy``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from mappings.brian2 import (BackendConfig, EncodingConfig, NeuronConfig, PlasticityConfig,
                             QuantizationConfig, SpikingConfig, SpikingSpela, rate_spela_with_codes)
from sim.spiking_energy import SPIKING_CONVENTIONS, price_spiking
from reports.cli import dataset_help, load_data, model_file, say
from spela_hw import NetworkSpec, Sgd, Spela, jsonio
from spela_hw.errors import ConfigError


# the output trace of `spike` (NeuronConfig keeps 20 ms): a smoother error, measured in
# bench/RESULTS.md "Learning in spikes over seeds (issue 19, item 1)"
TAU_Y_MS = 40.0


def _dims(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"dims must be comma-separated integers like 784,400,10, got {text!r}") from None
    if len(dims) < 2 or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"dims needs an input width and at least one layer, got {text!r}")
    return dims


def register(sub) -> None:
    p = sub.add_parser("spike", help="SPELA as spiking plasticity in Brian2 (train or convert)",
                       description=__doc__.split("Examples::")[0].strip(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist-bundled", help=dataset_help())
    p.add_argument("--data-dir", help="directory holding the dataset files")
    p.add_argument("--dims", type=_dims, default=(784, 100, 10), help="layer widths (default 784,100,10)")
    p.add_argument("--train-samples", type=int, default=8000,
                   help="training samples per epoch (default 8000, all of mnist-bundled's)")
    p.add_argument("--test-samples", type=int, default=2000, help="test samples (default 2000)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--from-model", metavar="MODEL", type=model_file,
                   help="convert this saved spela_hw model instead of training (.npz may be left out)")
    p.add_argument("--calibration-samples", type=int, default=1000,
                   help="training samples that set the conversion's per-layer scales")
    p.add_argument("--percentile", type=float, default=99.9, help="threshold-balancing percentile")
    p.add_argument("--conversion", default="signed", choices=("signed", "relu"),
                   help="signed: ON/OFF IF pairs keep LeakyReLU's negative branch (default); relu: ON only")
    p.add_argument("--compare-rate", action="store_true",
                   help="also train rate SPELA on the same samples, shape, epochs and class codes")
    p.add_argument("--rate-lr", type=float, default=0.3, help="learning rate of the rate comparison")
    p.add_argument("--target", default="auto", choices=("auto", "numpy", "cython", "cpp_standalone"))
    p.add_argument("--build-dir", help="keep the standalone project here (default: the build cache of this "
                                       "network shape, $SPELA_HW_CACHE/brian2 or ~/.cache/spela-hw/brian2)")
    p.add_argument("--dt-ms", type=float, default=1.0,
                   help="time step (default 1 ms; 0.5 ms was the default before issue 19: same accuracy, "
                        "slower, bench/RESULTS.md)")
    p.add_argument("--code", default="poisson", choices=("poisson", "regular", "ttfs"))
    p.add_argument("--rate-max-hz", type=float, default=250.0)
    p.add_argument("--present-ms", type=float, default=100.0)
    p.add_argument("--rest-ms", type=float, default=20.0)
    p.add_argument("--gate-start-ms", type=float, default=20.0)
    p.add_argument("--gate-stop-ms", type=float)
    p.add_argument("--lr-eff", type=float, default=2.0, help="rate-equivalent step of every layer")
    p.add_argument("--hidden-rate-hz", type=float, default=100.0)
    p.add_argument("--schedule", default="inverse_time", choices=("inverse_epoch", "constant", "inverse_time"),
                   help="learning-rate factor: 1/(1 + epoch), 1, or 1/(1 + s/decay) per training sample s "
                        "(default inverse_time)")
    p.add_argument("--decay-samples", type=float, default=3000.0,
                   help="decay constant (samples) of --schedule inverse_time (default 3000)")
    p.add_argument("--sign-policy", default="nonnegative", choices=("nonnegative", "on_off_differential"))
    p.add_argument("--class-codes", default="disjoint", choices=("disjoint", "sparse"))
    p.add_argument("--reset", default="subtract", choices=("subtract", "zero"))
    p.add_argument("--tau-y-ms", type=float,
                   help=f"time constant of the output trace the rule reads (default {TAU_Y_MS:g} ms; the "
                        f"library's 20 ms gave a noisier error and 0.2-0.5 points less on full MNIST, bench/RESULTS.md)")
    p.add_argument("--weight-bits", type=int, help="hardware-faithful variant: plastic weights of this "
                                                   "width with 7-bit traces and an 8-bit error")
    p.add_argument("--chunk-samples", type=int,
                   help="split training into runs of this many samples (bounds the image table's "
                        "memory: 8 bytes per pixel per sample); default one run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result record as JSON on stdout")
    p.add_argument("--out", help="also write the JSON record to this file")
    p.set_defaults(func=run)


def _config(args) -> SpikingConfig:
    quant = QuantizationConfig(weight_bits=args.weight_bits) if args.weight_bits is not None else None
    gate_stop = args.gate_stop_ms if args.gate_stop_ms is not None else args.present_ms
    return SpikingConfig(
        neuron=NeuronConfig(reset=args.reset, tau_y_ms=TAU_Y_MS if args.tau_y_ms is None else args.tau_y_ms),
        encoding=EncodingConfig(code=args.code, rate_max_hz=args.rate_max_hz, present_ms=args.present_ms,
                                rest_ms=args.rest_ms, gate_start_ms=args.gate_start_ms, gate_stop_ms=gate_stop),
        plasticity=PlasticityConfig(lr_eff=args.lr_eff, hidden_rate_hz=args.hidden_rate_hz,
                                    schedule=args.schedule, decay_samples=args.decay_samples,
                                    sign_policy=args.sign_policy,
                                    class_codes=args.class_codes, quantization=quant),
        backend=BackendConfig(target=args.target, dt_ms=args.dt_ms, seed=args.seed, build_dir=args.build_dir))


def _energy(counts: dict) -> dict:
    return {phase: {conv: price_spiking(c["total"], conv).to_dict() for conv in SPIKING_CONVENTIONS}
            for phase, c in counts.items()}


def run(args) -> int:
    for name in ("train_samples", "test_samples", "epochs", "calibration_samples"):
        if getattr(args, name) < 0:
            raise ConfigError(name.replace("_", "-"), "must be >= 0")
    if args.chunk_samples is not None and args.chunk_samples < 1:
        raise ConfigError("chunk-samples", f"must be a positive number of samples, got {args.chunk_samples}")
    if not 0.0 < args.percentile <= 100.0:
        raise ConfigError("percentile", f"must lie in (0, 100], got {args.percentile}")
    if args.from_model and args.compare_rate:
        raise ConfigError("compare-rate", "applies to training in spikes, not to --from-model")
    if args.from_model and args.tau_y_ms is not None:
        raise ConfigError("tau-y-ms", "applies to training in spikes; a converted network reads no trace")
    if args.from_model and args.calibration_samples < 1:
        raise ConfigError("calibration-samples", "--from-model needs at least one calibration sample")
    if args.compare_rate:
        Sgd(args.rate_lr)  # refuse a bad --rate-lr before the spiking run, not after it
    data = load_data(args.dataset, data_dir=args.data_dir)
    X, y = data.x_train[:args.train_samples] / 255.0, np.asarray(data.y_train[:args.train_samples])
    Xt, yt = data.x_test[:args.test_samples] / 255.0, np.asarray(data.y_test[:args.test_samples])
    if args.dims[0] != X.shape[1]:
        raise ConfigError("dims", f"input width {args.dims[0]} does not match the dataset's {X.shape[1]} features")
    cfg = _config(args)
    record = {"command": "spela-hw spike " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "spela-hw spike",
              "dataset": args.dataset, "dims": list(args.dims), "train_samples": len(X),
              "test_samples": len(Xt), "epochs": args.epochs}
    t0 = time.perf_counter()
    if args.from_model:
        from spela_hw.io import load_model

        clf = load_model(args.from_model)
        rate_acc = clf.score_layers(Xt.astype(np.float32), yt)
        net = SpikingSpela.from_spela_hw(clf, data.x_train[:args.calibration_samples] / 255.0, cfg,
                                         percentile=args.percentile, signed=args.conversion == "signed")
        say(f"converted {args.from_model}; running {len(Xt)} test samples in spikes")
        res = net.evaluate(Xt, yt, progress=say)
        record.update(mode="conversion", model=os.path.basename(args.from_model), dims=list(clf.network_spec_.dims),
                      rate_accuracy=rate_acc, percentile=args.percentile, conversion=args.conversion)
    else:
        spec = NetworkSpec(args.dims, n_classes=int(max(y.max(), yt.max()) + 1))
        net = SpikingSpela(spec, Spela(), cfg, class_code_seed=args.seed)
        say(f"training {'-'.join(map(str, args.dims))} in spikes on {data.name}: {len(X)} samples x "
            f"{args.epochs} epochs, then {len(Xt)} test samples")
        res = net.fit(X, y, epochs=args.epochs, X_test=Xt, y_test=yt, shuffle_seed=args.seed,
                      chunk_samples=args.chunk_samples, progress=say)
        record.update(mode="spike_training", rate_equivalent_lr=net.rate_equivalent_lr(),
                      exported_rate_accuracy=net.to_spela_hw().score_layers(Xt.astype(np.float32), yt)
                      if args.sign_policy == "nonnegative" else None)
        if args.compare_rate:
            if args.sign_policy != "nonnegative":
                raise ConfigError("compare-rate", "needs --sign-policy nonnegative (same codes)")
            rate = rate_spela_with_codes(spec, net.class_codes_, args.rate_lr, seed=args.seed, shuffle=True)
            block = 1000 if args.schedule == "inverse_time" else max(len(X), 1)
            for epoch in range(args.epochs):
                # the spiking run's schedule (inverse_time: blocks of 1,000 samples at their mean gain)
                for a in range(0, len(X), block):
                    if args.schedule == "inverse_epoch":
                        gain = 1.0 / (1 + epoch)
                    elif args.schedule == "inverse_time":
                        seen = epoch * len(X) + np.arange(a, min(a + block, len(X)))
                        gain = float(np.mean(1.0 / (1.0 + seen / args.decay_samples)))
                    else:
                        gain = 1.0
                    rate.rule_ = Spela(optimizer=Sgd(args.rate_lr * gain))
                    rate.partial_fit(X[a:a + block].astype(np.float32), y[a:a + block])
            record["rate_model"] = {"lr": args.rate_lr, "class_codes": args.class_codes, "schedule": args.schedule,
                                    "accuracy": rate.score_layers(Xt.astype(np.float32), yt)}
    record.update(
        layer_accuracy=list(res.layer_accuracy), rate_twin_accuracy=res.rate_twin_accuracy,
        silent_fraction=list(res.silent_fraction), learning_curve=res.online_accuracy,
        counts=res.counts, energy_pj=_energy(res.counts),
        timing={"target": res.target, "wall_s": time.perf_counter() - t0, "brian2_wall_s": res.wall_s,
                "build_s": res.build_s, "sim_s": res.sim_s},
        config=res.info["config"], sign_policy=res.info["sign_policy"], class_codes=res.info["class_codes"])
    text = jsonio.dumps(record, indent=2)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.out)
    if args.json:
        print(text)
    else:
        acc = ", ".join(f"layer {k + 1}: {a:.4f}" for k, a in enumerate(res.layer_accuracy))
        print(f"spiking accuracy  {acc}")
        if res.rate_twin_accuracy:
            print("rate twin         " + ", ".join(f"{a:.4f}" for a in res.rate_twin_accuracy))
        if "rate_accuracy" in record:
            print("rate model        " + ", ".join(f"{a:.4f}" for a in record["rate_accuracy"]))
        if "rate_model" in record:
            print("rate SPELA        " + ", ".join(f"{a:.4f}" for a in record["rate_model"]["accuracy"]))
        for phase, c in res.counts.items():
            t = c["total"]
            print(f"{phase:5s} per sample: {t['synaptic_ops']:.4g} synaptic ops, "
                  f"{t['plasticity_updates']:.4g} plasticity updates, "
                  f"{t['output_spikes']:.4g} spikes; Loihi {record['energy_pj'][phase]['loihi_measured']['total_pj'] / 1e6:.3g} uJ")
        print(f"target {res.target}; wall {record['timing']['wall_s']:.1f} s"
              + (f" (build {res.build_s:.1f} s, simulation {res.sim_s:.1f} s)" if res.sim_s else ""))
    return 0
