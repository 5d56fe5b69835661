"""``spela-hw export --format nir MODEL``: a trained network as a NIR graph for other simulators and chips.

Examples::

    spela-hw export --format nir model.npz                  # writes model.nir
    spela-hw export --format nir model.npz --out net.nir --exits all --json

MODEL is a SPELA model written by ``spela-hw train``. It is converted to spikes exactly as
``spela-hw spike --from-model`` converts it (threshold balancing on the first
``--calibration-samples`` training images of ``--dataset``; integrate-and-fire neurons, ON/OFF
pairs with ``--conversion signed``) and written as a NIR graph: per layer an Affine node (weights,
bias) and an IF node, then the read-out (a Linear node with the unit class vectors, an integrator
counting its output). The input code, presentation window and reset mode are in the graph's
metadata; the learning rule is not exported (NIR describes inference). See docs/spiking.md §17.
"""

from __future__ import annotations

import argparse
import os

from reports.cli import load_data, model_file, say
from spela_hw.errors import ConfigError
from spela_hw.jsonio import dumps

FORMATS = ("nir",)


def register(sub) -> None:
    p = sub.add_parser("export", help="write a trained model as a NIR graph (spiking, for other simulators)",
                       description=__doc__.split("Examples::")[0].strip(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=model_file, help="model file written by `spela-hw train` (.npz may be left out)")
    p.add_argument("--format", default="nir", choices=FORMATS, help="output format (default nir)")
    p.add_argument("--out", help="output file (default: MODEL with the suffix .nir)")
    p.add_argument("--dataset", default="mnist-bundled", help="dataset whose training images calibrate the conversion")
    p.add_argument("--data-dir", help="directory holding the dataset files")
    p.add_argument("--calibration-samples", type=int, default=1000,
                   help="training images that set the per-layer scales (default 1000)")
    p.add_argument("--percentile", type=float, default=99.9, help="threshold-balancing percentile (default 99.9)")
    p.add_argument("--conversion", default="signed", choices=("signed", "relu"),
                   help="signed: ON/OFF IF pairs keep LeakyReLU's negative branch (default); relu: ON only")
    p.add_argument("--rate-max-hz", type=float, default=250.0, help="input rate of a white pixel (metadata)")
    p.add_argument("--dt-ms", type=float, default=0.5, help="time step of the Brian2 run (metadata)")
    p.add_argument("--exits", default="last", choices=("last", "all"),
                   help="read-outs to export: the last layer's (default) or every layer's")
    p.add_argument("--json", action="store_true", help="print a summary of the graph as JSON on stdout")
    p.set_defaults(func=run)


def _spiking_config(args):
    from mappings.brian2 import BackendConfig, EncodingConfig, SpikingConfig

    return SpikingConfig(encoding=EncodingConfig(rate_max_hz=args.rate_max_hz),
                         backend=BackendConfig(dt_ms=args.dt_ms))


def run(args) -> int:
    if args.calibration_samples < 1:
        raise ConfigError("calibration-samples", f"must be >= 1, got {args.calibration_samples}")
    if not 0.0 < args.percentile <= 100.0:
        raise ConfigError("percentile", f"must lie in (0, 100], got {args.percentile}")
    from mappings.nir import model_to_nir, require_nir, write_nir
    from spela_hw.io import load_model

    require_nir()  # before loading data: a missing package is the first thing to say
    cfg = _spiking_config(args)
    clf = load_model(args.model)
    out = args.out or os.path.splitext(str(args.model))[0] + ".nir"
    data = load_data(args.dataset, data_dir=args.data_dir)
    if data.x_train.shape[1] != clf.network_spec_.dims[0]:
        raise ConfigError("dataset", f"{data.name} has {data.x_train.shape[1]} features, the model "
                                     f"{args.model} takes {clf.network_spec_.dims[0]}")
    graph, net = model_to_nir(clf, data.x_train[:args.calibration_samples] / 255.0, cfg,
                              percentile=args.percentile, signed=args.conversion == "signed", exits=args.exits)
    write_nir(graph, out)
    summary = {"model": str(args.model), "out": out, "format": args.format,
               "dims": list(clf.network_spec_.dims), "neurons": list(net.neurons),
               "conversion": args.conversion, "nodes": {k: type(v).__name__ for k, v in graph.nodes.items()},
               "edges": [list(e) for e in graph.edges]}
    if args.json:
        print(dumps(summary))
    else:
        say(f"wrote {out}: {len(graph.nodes)} nodes, {len(graph.edges)} edges "
            f"({'-'.join(map(str, summary['dims']))}, {args.conversion} conversion, "
            f"{sum(net.neurons)} IF neurons)")
    return 0
