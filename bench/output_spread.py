"""The output layer's spread over seeds (issue 18, bench/RESULTS.md): class-vector geometry.

    python -m bench.output_spread [--rotations 300]
    SPELA_HW_DATA=../shared/data python -m bench.output_spread --train mnist --epochs 5 \
        --init 0,1,2,3,4 --vectors 0,1,2,3,4 [--order K] [--method auto|aligned|onehot]

Without ``--train``: for randomly rotated simplices of 10 classes at several layer widths, the
share of rotations that leave some class with a non-positive read-out margin at its best
non-negative output (:func:`spela_hw.classvectors.nonnegative_readout_margins`), and the
margins of the 10-unit output layer of ``official-code`` with ``random_state`` 0..4 (pure
NumPy, seconds). With ``--train``: ``official-code`` runs crossing the initial weights of
``random_state`` I with the class vectors of ``random_state`` C, one JSON line each (output
accuracy per epoch, test recall per class); ``--order K`` presents the training set in the
fixed permutation ``default_rng(1000 + K)`` every epoch.
"""
import argparse
import json

import numpy as np

from spela_hw import SpelaClassifier
from spela_hw.classvectors import class_vectors, nonnegative_readout_margins

WIDTHS = (10, 12, 16, 34, 100, 1024)


def output_vector_seed(random_state: int) -> int:
    """The class-vector seed an estimator derives from ``random_state`` (its ``_seeds``)."""
    return SpelaClassifier(random_state=random_state)._seeds()[1]


def train_grid(args) -> None:
    """One ``official-code`` run per (init, vectors) pair; a JSON line each on stdout."""
    from spela_hw import Sgd, Spela, load_dataset

    d = load_dataset(args.train)
    X, y, Xt, yt = d.features("train"), d.y_train, d.features("test"), d.y_test
    if args.order is not None:
        p = np.random.default_rng(1000 + args.order).permutation(len(X))
        X, y = X[p], y[p]
    rule = Spela(loss="log_2_minus_cos", input_norm="off", class_vectors=args.method,
                 optimizer=Sgd(lr=2.5, step_every=10, step_delta=0.1))  # official-code's rule
    for i in args.init:
        for c in args.vectors:
            clf = SpelaClassifier.from_preset("official-code", epochs=args.epochs, random_state=i, n_jobs=1,
                                              rule=rule, class_vector_seed=output_vector_seed(c))
            clf.fit(X, y, eval_set=(Xt, yt))
            curve = [round(100 * r["layer2_accuracy"], 2) for r in clf.history_]
            pred = clf.predict(Xt)
            recall = [round(float(np.mean(pred[yt == k] == k)), 3) for k in range(len(clf.classes_))]
            print(json.dumps({"data": args.train, "init": i, "vectors": c, "order": args.order,
                              "method": args.method, "output": curve, "recall": recall}), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rotations", type=int, default=300, help="rotations per width (seeds 0..R-1)")
    ap.add_argument("--train", metavar="DATASET", help="train official-code runs instead (see above)")
    ap.add_argument("--epochs", type=int, default=5)
    def ints(text):
        return [int(x) for x in text.split(",")]

    ap.add_argument("--init", type=ints, default=[0], help="random_state of the initial weights, comma-separated")
    ap.add_argument("--vectors", type=ints, default=[0], help="random_state whose class vectors to use")
    ap.add_argument("--order", type=int, help="fixed permutation K of the training set (default: data order)")
    ap.add_argument("--method", default="auto", help="Spela class_vectors method")
    args = ap.parse_args(argv)
    if args.train:
        return train_grid(args)
    print("| output width | rotations with a class at margin <= 0 | median of the smallest |v_c+| |")
    print("|---|---|---|")
    for d in WIDTHS:
        vs = [class_vectors(10, d, s, layer=1) for s in range(args.rotations)]
        bad = np.mean([nonnegative_readout_margins(v).min() <= 0 for v in vs])
        reach = np.median([np.linalg.norm(np.maximum(v, 0), axis=1).min() for v in vs])
        print(f"| {d} | {100 * bad:.0f} % | {reach:.2f} |")
    print("\nofficial-code output layer (784-1024-10), margin per class 0..9:")
    for rs in range(5):
        m = nonnegative_readout_margins(class_vectors(10, 10, output_vector_seed(rs), layer=1))
        print(f"random_state={rs}: " + " ".join(f"{x:+.2f}" for x in m))
    m = nonnegative_readout_margins(class_vectors(10, 10, 0, method="aligned"))
    print(f"aligned: {m[0]:+.3f} for every class")


if __name__ == "__main__":
    main()
