"""Training and inference speed of the numba backend on MNIST 784-1024-10, with everything the
speed section of RESULTS.md reports besides the PyTorch peer: accuracy after the timed epoch,
bit-exactness against the reference backend, a roofline (bytes moved per sample against measured
memory bandwidth), numba compile and cache-load times, and the peak RSS of a training run.

``run(quick)`` returns one dict per measurement (``bench`` names the table it belongs to);
:mod:`bench.__main__` adds the PyTorch rows and renders the tables. Every timing is the median of
several repetitions after a warm-up run (which also compiles the kernels).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["RECIPES", "Config", "load_data", "run", "median", "machine"]

#: The benchmarked recipes (official-code network and loss; lr 0.05 per sample is the official
#: 2.5 at batch 50 moved to batch 1 with mean reduction, see presets).
RECIPES = {
    "spela-per-sample": dict(kind="spela", batch=1, lr=0.05),
    "spela-minibatch": dict(kind="spela", batch=50, lr=2.5),
    "backprop-per-sample": dict(kind="backprop", batch=1, lr=0.01),
    "backprop-minibatch": dict(kind="backprop", batch=50, lr=0.1),
}
HIDDEN = (1024, 10)
SLOPE = 0.001


def median(xs):
    return float(np.median(np.asarray(xs, np.float64)))


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run (``Config.for_mode(quick)``)."""

    n_spela: int          # samples of the timed SPELA epoch (numba)
    n_backprop: int       # samples of the timed backprop epoch (numba)
    n_torch_sample: int   # samples timed for the PyTorch per-sample peers
    n_torch_batch: int    # samples timed for the PyTorch mini-batch peers
    n_reference: int      # samples for the reference-backend comparisons
    n_test: int
    reps: int
    warmup: int
    threads: tuple
    budget_s: float = float("inf")  # longest timed epoch; longer ones time fewer samples

    @classmethod
    def for_mode(cls, quick: bool) -> "Config":
        if quick:
            return cls(200, 100, 50, 200, 20, 200, 1, 60, (1,))
        return cls(60000, 10000, 3000, 60000, 5000, 10000, 3, 500, (1, 2), 40.0)


@dataclass
class Data:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data(cfg: Config) -> Data:
    """MNIST when the data directory has it, else the MNIST split shipped in the package; the
    training set in one fixed random order (seeded), the same for every implementation."""
    from spela_hw.datasets import load_dataset
    from spela_hw.errors import DataError

    try:
        ds, name = load_dataset("mnist"), "mnist"
    except DataError:
        ds, name = load_dataset("mnist-bundled"), "mnist-bundled"
    n_train = max(cfg.n_spela, cfg.n_backprop, cfg.n_torch_batch, cfg.n_torch_sample)
    x, y = ds.features("train"), np.asarray(ds.labels("train"), np.int64)
    # One fixed permutation: every prefix (the timed subsets) holds every class.
    order = np.random.default_rng(20240215).permutation(len(x))
    x, y = x[order], y[order]
    if n_train > len(x):  # the bundled split is smaller: repeat it (timing only)
        reps = -(-n_train // len(x))
        x, y = np.tile(x, (reps, 1)), np.tile(y, reps)
    xt, yt = ds.features("test")[:cfg.n_test], np.asarray(ds.labels("test"), np.int64)[:cfg.n_test]
    return Data(name, np.ascontiguousarray(x[:n_train]), y[:n_train], xt, yt)


def _precision(name):
    from spela_hw.specs import PrecisionSpec

    return PrecisionSpec() if name == "fp32" else PrecisionSpec.fixed(int(name[1:]))


def make_classifier(recipe: str, precision: str, backend: str = "numba", seed: int = 0, epochs=1):
    from spela_hw.estimator import BackpropClassifier, SpelaClassifier
    from spela_hw.specs import Backprop, Sgd, Spela

    r = RECIPES[recipe]
    kw = dict(layer_sizes=HIDDEN, precision=_precision(precision), batch_size=r["batch"],
              epochs=epochs, shuffle=False, backend=backend, random_state=seed, slope=SLOPE,
              activation="leaky_relu", init="he_uniform", bias_init="uniform_fan_in")
    if r["kind"] == "spela":
        return SpelaClassifier(rule=Spela(loss="log_2_minus_cos", optimizer=Sgd(r["lr"])), **kw)
    return BackpropClassifier(rule=Backprop(optimizer=Sgd(r["lr"])), **kw)


class _Threads:
    """Numba threads (which the estimators' default ``n_jobs=-1`` uses) for the duration of a
    ``with``, and as many BLAS threads for the code around the fits (``threadpoolctl`` when
    installed; the estimators run their own products on one BLAS thread, spela_hw/blas.py)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        import numba

        # Estimators keep their default n_jobs=-1 (the numba pool), as `spela-hw train` does.
        self.saved = numba.get_num_threads()
        numba.set_num_threads(min(self.n, numba.config.NUMBA_NUM_THREADS))
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # BLAS keeps its default thread count (OPENBLAS_NUM_THREADS)
            self.blas = None
        else:
            self.blas = threadpool_limits(limits=self.n, user_api="blas")

    def __exit__(self, *exc):
        import numba

        numba.set_num_threads(self.saved)
        if self.blas is not None:
            self.blas.restore_original_limits()


def time_training(recipe, precision, data: Data, n, cfg: Config, threads=1, backend="numba"):
    """Median seconds of one epoch over ``n`` samples (fresh, identical initial state each time);
    the library's own epoch timer (``history_[0]["train_seconds"]``) is used. When the warm-up
    shows that an epoch would take longer than ``cfg.budget_s`` (a loaded machine, 2 threads),
    fewer samples are timed (``full_epoch`` is then False)."""
    X, y = data.x_train[:n], data.y_train[:n]
    with _Threads(threads):
        make_classifier(recipe, precision, backend).fit(X[:cfg.warmup], y[:cfg.warmup])
        probe = make_classifier(recipe, precision, backend).fit(X[:cfg.warmup], y[:cfg.warmup])
        rate = cfg.warmup / max(probe.history_[0]["train_seconds"], 1e-9)
        n_eff = n if cfg.budget_s == float("inf") else \
            min(n, max(cfg.warmup, int(rate * cfg.budget_s)))
        n_eff -= n_eff % RECIPES[recipe]["batch"] if n_eff > RECIPES[recipe]["batch"] else 0
        X, y, n = X[:n_eff], y[:n_eff], n_eff
        times, cpu = [], []
        for _ in range(cfg.reps if backend == "numba" else 1):
            c0 = time.process_time()
            clf = make_classifier(recipe, precision, backend).fit(X, y)
            cpu.append(time.process_time() - c0)
            times.append(clf.history_[0]["train_seconds"])
    med = median(times)
    kind = RECIPES[recipe]
    acc = clf.score_layers(data.x_test, data.y_test)
    row = {"bench": "train", "recipe": recipe, "kind": kind["kind"], "batch": kind["batch"],
           "lr": kind["lr"], "precision": precision, "impl": backend, "threads": threads,
           "samples": n, "seconds_median": med, "seconds_all": times, "samples_per_s": n / med,
           "samples_per_cpu_s": n / median(cpu), "accuracy": acc, "data": data.name,
           "full_epoch": n == len(data.x_train) or n >= cfg.n_spela}
    return row, clf


def bit_exact_check(recipe, precision, data: Data, n) -> dict:
    """Train the numba and the reference backends on the same ``n`` samples: weights identical?"""
    X, y = data.x_train[:n], data.y_train[:n]
    a = make_classifier(recipe, precision, "numba").fit(X, y)
    t0 = time.perf_counter()
    b = make_classifier(recipe, precision, "reference").fit(X, y)
    ref_s = time.perf_counter() - t0
    same = all(np.array_equal(wa, wb) for wa, wb in zip(a.state_.weights, b.state_.weights)) and \
        all(np.array_equal(wa, wb) for wa, wb in zip(a.state_.biases, b.state_.biases))
    counts = all(np.array_equal(a.train_counts_.data[k], b.train_counts_.data[k])
                 for k in a.train_counts_.data)
    maxdiff = [float(np.max(np.abs(wa.astype(np.float64) - wb.astype(np.float64))))
               for wa, wb in zip(a.state_.weights, b.state_.weights)]
    return {"bench": "exactness", "recipe": recipe, "precision": precision, "samples": n,
            "weights_identical": bool(same), "counts_identical": bool(counts),
            "max_abs_weight_diff": maxdiff,
            "max_abs_weight": [float(np.max(np.abs(w.astype(np.float64))))
                               for w in b.state_.weights],
            "accuracy_numba": a.score_layers(data.x_test, data.y_test),
            "accuracy_reference": b.score_layers(data.x_test, data.y_test),
            "reference_samples_per_s": n / ref_s}


def time_inference(clf, data: Data, cfg: Config, precision, threads=1) -> list[dict]:
    """Throughput of ``predict`` at every exit layer (layers above the exit are not computed)."""
    rows = []
    X = data.x_test
    with _Threads(threads):
        for k in range(len(HIDDEN)):
            clf.predict(X[:64], layer=k)
            times = []
            for _ in range(max(cfg.reps, 3)):
                t0 = time.perf_counter()
                pred = clf.predict(X, layer=k)
                times.append(time.perf_counter() - t0)
            med = median(times)
            rows.append({"bench": "inference", "precision": precision, "impl": "numba",
                         "exit_layer": k + 1, "threads": threads, "samples": len(X),
                         "seconds_median": med, "samples_per_s": len(X) / med,
                         "accuracy": float(np.mean(pred == data.y_test))})
    return rows


# ----------------------------------------------------------------------------------------------
# roofline
# ----------------------------------------------------------------------------------------------
def l2_bytes(default: int = 512 << 10) -> int:
    """Per-core L2 cache size (from :func:`cache_sizes`; ``default`` where unknown)."""
    size = cache_sizes().get("L2", "").upper()
    try:
        return int(size.rstrip("KM")) * {"K": 1 << 10, "M": 1 << 20}.get(size[-1:], 1)
    except ValueError:
        return default


def measure_bandwidth(quick: bool) -> dict:
    """Read+write bandwidth (GB/s) of copies that fit one core's L2 cache (source and
    destination a quarter of it each), the L3 cache (3 MB each) and neither (256 MB)."""
    out = {"l2_bytes": l2_bytes()}
    for label, nbytes, reps in (("l2", out["l2_bytes"] // 4, 300 if quick else 3000),
                                ("l3", 3 << 20, 30 if quick else 300),
                                ("dram", 256 << 20, 2 if quick else 10)):
        a = np.ones(nbytes // 8)
        b = np.empty_like(a)
        np.copyto(b, a)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                np.copyto(b, a)
            times.append((time.perf_counter() - t0) / reps)
        out[label] = 2 * nbytes / min(times) / 1e9
    return out


def measure_hash_rate() -> float:
    """The stochastic-rounding unit's 32-bit lowbias32 words per second (one word feeds two
    synapses; the kernel an input-major row uses, one thread)."""
    from spela_hw._kernels.sr_unit import sr_words

    zb = np.empty(1 << 16, np.uint32)
    sr_words(zb, len(zb), np.uint64(12345), 1, np.uint32(0xFFFFFFFF))
    t0 = time.perf_counter()
    for r in range(200):
        sr_words(zb, len(zb), np.uint64(r), 1, np.uint32(0xFFFFFFFF))
    return 200 * len(zb) / (time.perf_counter() - t0)


def bytes_per_sample(x: np.ndarray, batch: int, weight_bytes: int) -> dict:
    """Weight traffic of the fused pass per sample on inputs ``x`` (rows = pixels): each step
    reads every weight row whose pending or new input is non-zero and writes the updated ones;
    the 1024x10 output layer is read and written whole. Activations are negligible."""
    nz = x != 0
    steps = [nz[s:s + batch].any(axis=0) for s in range(0, len(x), batch)]
    read = write = 0
    for t in range(1, len(steps)):
        read += np.count_nonzero(steps[t] | steps[t - 1])
        write += np.count_nonzero(steps[t - 1])
    m1 = HIDDEN[0]
    n_steps = len(steps) - 1
    per_step = ((read + write) / n_steps * m1 * weight_bytes
                + 2 * HIDDEN[0] * HIDDEN[1] * weight_bytes)
    rows_read = read / n_steps
    return {"bytes": per_step / batch, "rows_read_per_step": rows_read,
            "active_layer_bytes": np.count_nonzero(nz.any(axis=0)) * m1 * weight_bytes,
            "rows_written_per_step": write / n_steps, "hashes_per_sample":
            (write / n_steps * m1 + HIDDEN[0] * HIDDEN[1]) / 2 / batch}  # 2 synapses per word


# ----------------------------------------------------------------------------------------------
# subprocess measurements: compile time, cache load, peak RSS
# ----------------------------------------------------------------------------------------------
_WARM_SCRIPT = r"""
import json, time
t0 = time.perf_counter()
import numpy as np
from bench.bench_train import make_classifier, _Threads
t1 = time.perf_counter()
rng = np.random.default_rng(0)
X = rng.random((60, 784), dtype=np.float32) * (rng.random((60, 784)) < 0.2)
y = np.arange(60) % 10
first = second = 0.0
for prec in ("fp32", "w8"):
    for recipe in ("spela-per-sample", "spela-minibatch"):
        for threads in (1, 2):
            with _Threads(threads):
                for k in range(2):
                    t = time.perf_counter()
                    make_classifier(recipe, prec).fit(X, y).predict(X)
                    dt = time.perf_counter() - t
                    if k == 0:
                        first += dt
                    else:
                        second += dt
print(json.dumps({"import_s": t1 - t0, "first_calls_s": first, "second_calls_s": second,
                  "compile_or_load_s": first - second}))
"""

_RSS_SCRIPT = r"""
import json, resource, sys
from pathlib import Path
from bench.bench_train import Config, load_data, make_classifier

def rss_mb(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

n, recipe, prec = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cfg = Config(n, 0, 0, 0, 0, 10, 1, 10, (1,))
data = load_data(cfg)
X, y = data.x_train[:n], data.y_train[:n]
make_classifier(recipe, prec).fit(X[:100], y[:100]).predict(X[:100])  # compile / load kernels
try:  # reset the peak (VmHWM) so that compilation does not count
    Path("/proc/self/clear_refs").write_text("5")
    reset = True
except OSError:
    reset = False
base = rss_mb("VmRSS")
clf = make_classifier(recipe, prec).fit(X, y)
peak = rss_mb("VmHWM")
w = sum(a.nbytes for a in clf.state_.weights) + sum(a.nbytes for a in clf.state_.biases)
print(json.dumps({"rss_before_fit_mb": base, "rss_peak_mb": peak, "peak_reset": reset,
                  "weights_mb": w / 2**20, "data_mb": X.nbytes / 2**20, "samples": n}))
"""


def _py(script, args=(), env=None, timeout=3600):
    root = str(Path(__file__).resolve().parent.parent)
    e = dict(os.environ, **(env or {}))
    e["PYTHONPATH"] = root + os.pathsep + e.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                       text=True, env=e, timeout=timeout, cwd=root)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1]), wall


def compile_times(quick: bool) -> list[dict]:
    """First call in a process with an empty numba cache, then a second process using it."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        if quick:  # an empty cache would compile everything (minutes): only the warm path
            (r, wall) = _py(_WARM_SCRIPT)
            rows.append({"bench": "compile", "case": "process with the project's cache",
                         **r, "process_wall_s": wall})
            return rows
        for case in ("first process, empty cache (compiles)", "second process (cache load)"):
            (r, wall) = _py(_WARM_SCRIPT, env=env)
            rows.append({"bench": "compile", "case": case, **r, "process_wall_s": wall})
    return rows


def peak_rss(n: int, quick: bool = False) -> list[dict]:
    rows = []
    cases = (("spela-per-sample", "fp32"), ("spela-per-sample", "w8"), ("spela-minibatch", "fp32"))
    for recipe, prec in cases[:1] if quick else cases:
        r, _ = _py(_RSS_SCRIPT, (n, recipe, prec))
        rows.append({"bench": "memory", "recipe": recipe, "precision": prec, **r})
    return rows


def cache_sizes() -> dict:
    """Data and unified cache sizes of one core as sysfs writes them, e.g. ``{"L2": "2048K"}``
    (empty where sysfs has none)."""
    caches = {}
    try:
        for idx in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
            if (idx / "type").read_text().strip() != "Instruction":
                caches[f"L{(idx / 'level').read_text().strip()}"] = \
                    (idx / "size").read_text().strip()
    except OSError:
        pass
    return caches


def machine() -> dict:
    """CPU, caches, memory, software versions and the load average."""
    import numba

    info = {"platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__,
            "numba_threading_layer": None, "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["caches_per_core"] = cache_sizes()
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 2**20, 1)
        flags = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("flags")]
        if flags:
            f = flags[0].split()
            info["simd"] = " ".join(x for x in ("avx2", "fma", "avx512f") if x in f)
    except OSError:
        pass
    info["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    return info


# ----------------------------------------------------------------------------------------------
def run(quick: bool, log=print) -> list[dict]:
    """Every numba measurement of the speed section (the PyTorch peer is added by __main__)."""
    cfg = Config.for_mode(quick)
    data = load_data(cfg)
    rows = []
    trained = {}
    for recipe in ("spela-per-sample", "spela-minibatch"):
        for prec in ("fp32", "w8"):
            for threads in cfg.threads:
                log(f"numba {recipe} {prec} threads={threads}")
                row, clf = time_training(recipe, prec, data, cfg.n_spela, cfg, threads)
                rows.append(row)
                trained.setdefault((recipe, prec), clf)
    for recipe in ("backprop-per-sample", "backprop-minibatch"):
        log(f"numba {recipe} fp32")
        try:
            row, _ = time_training(recipe, "fp32", data, cfg.n_backprop, cfg, 1)
            rows.append(row)
        except Exception as exc:  # the backprop rule is maintained elsewhere: report, go on
            rows.append({"bench": "train", "recipe": recipe, "impl": "numba", "error": repr(exc)})
    log("reference backend comparisons")
    for recipe, prec, n_q, n_full in (("spela-per-sample", "fp32", 20, 2000),
                                      ("spela-minibatch", "fp32", 60, 5000),
                                      ("spela-per-sample", "w8", 20, 1000),
                                      ("spela-minibatch", "w8", 60, 2000)):
        rows.append(bit_exact_check(recipe, prec, data, n_q if quick else n_full))
    log("inference")
    for prec in ("fp32", "w8"):
        rows += time_inference(trained[("spela-per-sample", prec)], data, cfg, prec)
    log("roofline")
    bw = measure_bandwidth(quick)
    hash_rate = measure_hash_rate()
    x = data.x_train[:cfg.n_spela]
    for recipe, batch in (("spela-per-sample", 1), ("spela-minibatch", 50)):
        for prec, wbytes in (("fp32", 4), ("w8", 1)):
            model = bytes_per_sample(x, batch, wbytes)
            rows.append({"bench": "roofline", "recipe": recipe, "precision": prec, **model,
                         "bandwidth_l2_gbs": bw["l2"], "l2_bytes": bw["l2_bytes"],
                         "bandwidth_l3_gbs": bw["l3"], "bandwidth_dram_gbs": bw["dram"],
                         "bound_l2_samples_per_s": bw["l2"] * 1e9 / model["bytes"],
                         "bound_l3_samples_per_s": bw["l3"] * 1e9 / model["bytes"],
                         "hash_per_s": hash_rate,
                         "bound_hash_samples_per_s": hash_rate / model["hashes_per_sample"]})
    log("compile and cache-load times")
    rows += compile_times(quick)
    log("peak RSS")
    rows += peak_rss(cfg.n_spela, quick)
    return rows


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for r in run(quick):
        print(json.dumps(r, default=str))
