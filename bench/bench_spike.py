"""Speed of spiking SPELA in Brian2: the whole schedule as one run vs one ``run()`` per sample.

Issue 4 asks the one-run ``TimedArray`` schedule to be at least 10x faster (samples per second)
than the straightforward loop, and the first-build time to be reported separately. Cases, on a
784-H-10 network (H = 100 unless ``--hidden``) learning real MNIST (the bundled set) with the
default 100 + 20 ms windows at dt = 0.5 ms:

* ``one_run`` on ``cpp_standalone`` (when a compiler is present): build time (code generation and
  compilation) and simulation time of the binary, reported apart;
* ``one_run`` on the runtime ``numpy`` target;
* ``loop``: Python sets each sample's inputs, label and gate and calls ``run()`` for each phase of
  each sample (numpy, and Cython warm when a compiler is present: its compile is excluded).

Run ``python -m bench.bench_spike`` (``--quick`` for a short run).

``--table`` instead measures learning in spikes (784-H-10, the ``spela-hw spike`` learning-rate
schedule) for several time steps, presentation windows and OpenMP thread counts, side by side in
one process: test accuracy at every read-out and simulated samples per second (binary alone).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

__all__ = ["run"]


def _data(n: int):
    from spela_hw import load_dataset

    ds = load_dataset("mnist-bundled")
    return ds.x_train[:n] / 255.0, ds.y_train[:n]


def _net(target: str, hidden: int):
    from mappings.brian2 import BackendConfig, SpikingConfig, SpikingSpela
    from spela_hw import NetworkSpec, Spela

    return SpikingSpela(NetworkSpec((784, hidden, 10)), Spela(), SpikingConfig(backend=BackendConfig(target=target)))


def _row(case: str, target: str, n: int, wall: float, sim: float | None, build: float | None, hidden: int) -> dict:
    per_s = n / (sim if sim else wall)
    return {"bench": "spike_schedule", "case": case, "target": target, "network": f"784-{hidden}-10",
            "samples": n, "wall_s": wall, "build_s": build, "sim_s": sim,
            "samples_per_s": per_s, "samples_per_s_with_build": n / wall}


def run(quick: bool, n_one: int | None = None, n_numpy: int | None = None, n_loop: int | None = None,
        hidden: int = 100) -> list[dict]:
    """One record per case; the last records give the speed-ups over the loop.

    Sizes (samples per case) default to 200/40/10 (``quick``) or 1000/200/50; the one-run cases
    must be long enough that the per-run start-up is small against the simulation.
    """
    from mappings.brian2 import compiler_available

    logging.getLogger("brian2").setLevel(logging.ERROR)
    sizes = (200, 40, 10) if quick else (1000, 200, 50)
    n_one, n_numpy, n_loop = (v if v is not None else d for v, d in zip((n_one, n_numpy, n_loop), sizes))
    X, y = _data(max(n_one, n_numpy, n_loop) + 1)
    rows = []
    if compiler_available():
        net = _net("cpp_standalone", hidden)
        t0 = time.perf_counter()
        res = net.fit(X[:n_one], y[:n_one])
        rows.append(_row("one_run", "cpp_standalone", n_one, time.perf_counter() - t0, res.sim_s, res.build_s, hidden))
    net = _net("numpy", hidden)
    t0 = time.perf_counter()
    net.fit(X[:n_numpy], y[:n_numpy])
    rows.append(_row("one_run", "numpy", n_numpy, time.perf_counter() - t0, None, None, hidden))
    loop_targets = ["numpy"] + (["cython"] if compiler_available() and not quick else [])
    for target in loop_targets:
        if target == "cython":  # compile every code object once; the timed loop is warm
            _net(target, hidden).fit(X[:1], y[:1], loop=True)
        net = _net(target, hidden)
        t0 = time.perf_counter()
        net.fit(X[:n_loop], y[:n_loop], loop=True)
        rows.append(_row("loop", target, n_loop, time.perf_counter() - t0, None, None, hidden))
    best_loop = max(r["samples_per_s"] for r in rows if r["case"] == "loop")
    for r in list(rows):
        if r["case"] == "one_run":
            rows.append({"bench": "spike_speedup", "case": f"one_run {r['target']} vs fastest loop",
                         "speedup": r["samples_per_s"] / best_loop,
                         "speedup_with_build": r["samples_per_s_with_build"] / best_loop,
                         "target": ">= 10x"})
    return rows


#: name -> (dt_ms, present_ms, rest_ms, gate_start_ms, openmp_threads); the gate closes with the
#: presentation. "before" is the setting of the first Brian2 measurements (bench/RESULTS.md).
TABLE_SETTINGS = {
    "before": (0.5, 100.0, 20.0, 20.0, 0),
    "omp2": (0.5, 100.0, 20.0, 20.0, 2),
    "dt1_omp2": (1.0, 100.0, 20.0, 20.0, 2),
    "dt1_50ms_omp2": (1.0, 50.0, 10.0, 10.0, 2),
    "dt1_40ms_omp2": (1.0, 40.0, 10.0, 10.0, 2),
    "dt1": (1.0, 100.0, 20.0, 20.0, 0),
    "dt1_50ms": (1.0, 50.0, 10.0, 10.0, 0),
    "dt1_40ms": (1.0, 40.0, 10.0, 10.0, 0),
    "dt1_50ms_rest0": (1.0, 50.0, 0.0, 10.0, 0),
    "50ms": (0.5, 50.0, 10.0, 10.0, 0),
}


def table(hidden: int = 400, n_train: int = 8000, n_test: int = 2000, seeds=(0,),
          settings: list[str] | None = None) -> list[dict]:
    """One record per (setting, seed): accuracy at every read-out and samples per second."""

    from mappings.brian2 import (BackendConfig, EncodingConfig, PlasticityConfig, SpikingConfig,
                                 SpikingSpela)
    from spela_hw import NetworkSpec, Spela, load_dataset

    logging.getLogger("brian2").setLevel(logging.ERROR)
    ds = load_dataset("mnist-bundled")
    X, y = ds.x_train[:n_train] / 255.0, ds.y_train[:n_train]
    Xt, yt = ds.x_test[:n_test] / 255.0, ds.y_test[:n_test]
    rows = []
    for name in settings or list(TABLE_SETTINGS):
        dt, present, rest, gate_start, threads = TABLE_SETTINGS[name]
        for seed in seeds:
            cfg = SpikingConfig(
                encoding=EncodingConfig(present_ms=present, rest_ms=rest, gate_start_ms=gate_start,
                                        gate_stop_ms=present),
                plasticity=PlasticityConfig(schedule="inverse_time", decay_samples=3000.0),
                backend=BackendConfig(target="cpp_standalone", dt_ms=dt, seed=seed, openmp_threads=threads))
            net = SpikingSpela(NetworkSpec((784, hidden, 10)), Spela(), cfg, class_code_seed=seed)
            t0 = time.perf_counter()
            res = net.fit(X, y, X_test=Xt, y_test=yt, shuffle_seed=seed)
            n = n_train + n_test
            rows.append({"bench": "spike_table", "setting": name, "seed": seed, "network": f"784-{hidden}-10",
                         **dict(zip(("dt_ms", "present_ms", "rest_ms", "gate_start_ms", "openmp_threads"),
                                    TABLE_SETTINGS[name])),
                         "samples": n, "accuracy": list(res.layer_accuracy), "wall_s": time.perf_counter() - t0,
                         "build_s": res.build_s, "sim_s": res.sim_s,
                         "samples_per_s": n / res.sim_s if res.sim_s else None})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--one-run-samples", type=int, help="samples of the cpp_standalone one-run case")
    p.add_argument("--numpy-samples", type=int, help="samples of the numpy one-run case")
    p.add_argument("--loop-samples", type=int, help="samples of each per-sample loop case")
    p.add_argument("--hidden", type=int, default=100, help="hidden width (784-H-10)")
    p.add_argument("--table", action="store_true", help="dt / presentation / threads against accuracy")
    p.add_argument("--train-samples", type=int, default=8000, help="--table: training samples")
    p.add_argument("--test-samples", type=int, default=2000, help="--table: test samples")
    p.add_argument("--seeds", default="0", help="--table: comma-separated seeds")
    p.add_argument("--settings", help=f"--table: comma-separated subset of {', '.join(TABLE_SETTINGS)}")
    args = p.parse_args(argv)
    if args.table:
        table(args.hidden, args.train_samples, args.test_samples, [int(s) for s in args.seeds.split(",")],
              args.settings.split(",") if args.settings else None)
        return 0
    for row in run(args.quick, args.one_run_samples, args.numpy_samples, args.loop_samples, args.hidden):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
