"""Interleaved before/after timing of two checkouts of spela-hw (a kernel change must not slow).

    python -m bench.ab_speed BEFORE_DIR AFTER_DIR [--rounds 10] [--n 60000]
                             [--configs spela-per-sample:fp32:1,spela-per-sample:w8:1]

Each timing is one training epoch of a :mod:`bench.bench_train` recipe on the first ``N`` MNIST
training images, in a fresh process (``PYTHONPATH`` at the checkout, its own numba cache under a
temporary folder, filled by the first round), after a warm-up fit in the same process. Before and
after alternate run by run, so a change of machine load hits both alike. Prints, per
configuration, the samples/s of both sides (medians), after / before in seconds (medians, and
the median of the per-round ratios) and whether every run ended with the same weights (SHA-256).
Each side runs its own ``bench.bench_train`` (this checkout's when a side has none).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_ONE = """
import hashlib, sys, time
import numpy as np
from bench import bench_train as bt
from spela_hw import load_dataset
recipe, prec, threads, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
d = load_dataset("mnist")
X, y = d.features("train")[:n], d.y_train[:n]
bt.make_classifier(recipe, prec).set_params(n_jobs=threads).fit(X[:2000], y[:2000])
clf = bt.make_classifier(recipe, prec).set_params(n_jobs=threads)
t = time.perf_counter()
clf.fit(X, y)
t = time.perf_counter() - t
h = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in clf.state_.weights))
print(t, h.hexdigest()[:12])
"""


def time_once(checkout: Path, cache: Path, config: tuple[str, str, str], n: int) -> tuple[float, str]:
    """Seconds of one timed epoch and the weights' digest, in a fresh process on ``checkout``."""
    bench_root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=f"{checkout}{os.pathsep}{bench_root}", NUMBA_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", _ONE, *config, str(n)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), out[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path, help="checkout before the change")
    ap.add_argument("after", type=Path, help="checkout after the change")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--n", type=int, default=60000, help="training images per timed epoch")
    ap.add_argument("--configs", default="spela-per-sample:fp32:1,spela-per-sample:w8:1",
                    help="RECIPE:PRECISION:THREADS, comma-separated")
    a = ap.parse_args(argv)
    for side in (a.before, a.after):
        if not (side / "spela_hw" / "__init__.py").is_file():
            ap.error(f"{side}: not a spela-hw checkout (no spela_hw/__init__.py)")
    configs = [tuple(c.split(":")) for c in a.configs.split(",")]
    if any(len(c) != 3 for c in configs):
        ap.error(f"--configs: each entry is RECIPE:PRECISION:THREADS, got {a.configs!r}")
    print("| recipe | precision | threads | N | rounds | before samples/s | after samples/s "
          "| after / before (medians) | paired | same weights |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in configs:
            secs = {"before": [], "after": []}
            digests = set()
            for r in range(a.rounds):
                for name, side in (("before", a.before), ("after", a.after)):
                    t, h = time_once(side.resolve(), Path(tmp) / name, cfg, a.n)
                    secs[name].append(t)
                    digests.add(h)
                print(f"[ab_speed] {':'.join(cfg)} round {r + 1}/{a.rounds}: "
                      f"{secs['before'][-1]:.3f} s / {secs['after'][-1]:.3f} s", file=sys.stderr)
            b, f = statistics.median(secs["before"]), statistics.median(secs["after"])
            paired = statistics.median(x / y for x, y in zip(secs["after"], secs["before"]))
            print(f"| {' | '.join(cfg)} | {a.n} | {a.rounds} | {a.n / b:,.0f} | {a.n / f:,.0f} | "
                  f"{f / b:.3f} | {paired:.3f} | {'yes' if len(digests) == 1 else 'NO'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
