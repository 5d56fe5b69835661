"""The output layer's spread over seeds (issue 18, bench/RESULTS.md): class-vector geometry.

    python -m bench.output_spread [--rotations 300]

Prints, for randomly rotated simplices of 10 classes at several layer widths, the share of
rotations that leave some class with a non-positive read-out margin at its best non-negative
output (:func:`spela_hw.classvectors.nonnegative_readout_margins`), and the margins of the
10-unit output layer of ``official-code`` with ``random_state`` 0..4. Pure NumPy, seconds.
"""
import argparse

import numpy as np

from spela_hw.classvectors import class_vectors, nonnegative_readout_margins

WIDTHS = (10, 12, 16, 34, 100, 1024)


def output_vector_seed(random_state: int) -> int:
    """The class-vector seed an estimator derives from ``random_state`` (``Classifier._seeds``)."""
    return int(np.random.SeedSequence(random_state).generate_state(4)[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rotations", type=int, default=300, help="rotations per width (seeds 0..R-1)")
    args = ap.parse_args(argv)
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
