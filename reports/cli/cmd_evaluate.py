"""``spela-hw evaluate MODEL``: per-layer test accuracy and inference counts of a saved model."""

from __future__ import annotations

import sys

from reports.cli import load_data, model_file
from reports.cli.cmd_train import readout_accuracy
from spela_hw import jsonio
from spela_hw.io import load_model


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a saved model on a dataset's test split")
    p.add_argument("model", type=model_file, help="model file written by `spela-hw train` (.npz may be left out)")
    p.add_argument("--dataset", default="mnist-bundled")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    clf = load_model(args.model)
    data = load_data(args.dataset, data_dir=args.data_dir)
    x, y = data.features("test"), data.y_test
    accs = readout_accuracy(clf, clf.score_layers(x, y))
    counts = clf.inference_counts(x, exit_layer=-1)
    per_sample = {k: float(v.sum()) for k, v in counts.per_sample().items()}
    if args.json:
        print(jsonio.dumps({"model": str(args.model), "dataset": data.name, "rule": clf.rule_.name,
                          "dims": list(clf.network_spec_.dims), "precision": clf.precision_.name,
                          "layer_accuracy": accs, "accuracy": accs[-1],
                          "inference_counts_per_sample": per_sample}))
    else:
        print(f"{args.model}: {clf.rule_.name} {'-'.join(map(str, clf.network_spec_.dims))} "
              f"{clf.precision_.name} on {data.name} ({len(y)} test samples)")
        for k, a in enumerate(accs):
            if a is not None:  # no trained read-out at backprop's hidden layers
                print(f"  layer {k + 1} read-out accuracy: {a:.4f}")
        print(f"  per inference: {per_sample['forward_macs']:.0f} MACs, "
              f"{per_sample['weight_reads']:.0f} weight reads, {per_sample['readout_macs']:.0f} read-out MACs")
    sys.stdout.flush()
    return 0
