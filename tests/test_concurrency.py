"""Several processes, one kernel cache (issue 13, part 1).

numba's on-disk cache is shared by sweep and report workers and by ``spela-hw`` commands run side
by side. These tests force the interleavings that corrupt numba's own cache, check that the
package's cache (``spela_hw._kernels.SharedCache``) survives them, and train several
configurations at once on one fresh cache under CPU load, bit for bit against a serial run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# A tiny kernel made by the package's decorator, in its own file (numba caches by file).
KERNEL_MODULE = """
from spela_hw._kernels import jit

@jit
def ident(x):
    return x
"""


def _env(cache_dir: Path | None, **extra) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **extra}
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    return env


def _python(code: str, env: dict, cwd: Path, timeout: float = 300) -> str:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd, capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout


# Forces the interleaving in which numba's unlocked save corrupts a fresh index: A and B both read
# the empty index (both take data file 1), B writes the index last, A writes data file 1 last, so
# the index names A's machine code for B's signature. A waits at most 3 s for each step of B, so
# under a lock, which keeps B out until A is done, the script just runs one save after the other.
RACER = """
import sys, time
from pathlib import Path
from numba.core import caching

role, arg, sync = sys.argv[1], sys.argv[2], Path(sys.argv[3])

def mark(name):
    (sync / name).touch()

def wait(name):
    t0 = time.monotonic()
    while not (sync / name).exists() and time.monotonic() - t0 < 3:
        time.sleep(0.005)

save_index, save_data = caching.IndexDataCacheFile._save_index, caching.IndexDataCacheFile._save_data

def hooked_index(self, overloads):
    if role == "a":
        mark("a_picked"); wait("b_picked"); save_index(self, overloads); mark("a_index")
    else:
        mark("b_picked"); wait("a_index"); save_index(self, overloads)

def hooked_data(self, name, data):
    if role == "a":
        wait("b_data"); save_data(self, name, data)
    else:
        save_data(self, name, data); mark("b_data")

caching.IndexDataCacheFile._save_index = hooked_index
caching.IndexDataCacheFile._save_data = hooked_data
from racy import ident
wait("a_picked" if role == "b" else "go")
print(repr(ident(eval(arg))))
"""


def test_concurrent_saves_of_two_signatures_keep_each_ones_machine_code(tmp_path):
    """numba numbers a new overload's data file from the index it has just read, unlocked: two
    processes saving different signatures of one kernel at once both take ``.1.nbc`` and the index
    ends up naming the other signature's code. Every later process then runs the wrong machine
    code (here: a float kernel for an int argument). The package's cache serialises saves."""
    (tmp_path / "racy.py").write_text(KERNEL_MODULE)
    cache, sync = tmp_path / "cache", tmp_path / "sync"
    sync.mkdir()
    (sync / "go").touch()
    env = _env(cache)
    procs = [subprocess.Popen([sys.executable, "-c", RACER, role, arg, str(sync)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for role, arg in (("a", "1.5"), ("b", "7"))]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    # A later process loads both signatures from the cache the two racers wrote.
    out = _python("""
        from racy import ident
        print(repr(ident(7)), repr(ident(1.5)), sum(ident.stats.cache_hits.values()))
        """, env, tmp_path)
    assert out.split() == ["7", "1.5", "2"]


def test_boundscheck_and_normal_builds_never_load_each_other(tmp_path):
    """numba's cache key leaves out ``NUMBA_BOUNDSCHECK``: a checked build would be loaded by
    normal runs (slow) and a normal build by a checked run (nothing checked)."""
    (tmp_path / "racy.py").write_text(KERNEL_MODULE)
    call = "from racy import ident; ident(1); print(sum(ident.stats.cache_hits.values()))"
    runs = [("0", "0"), ("1", "0"), ("0", "1"), ("1", "1")]  # (NUMBA_BOUNDSCHECK, expected cache hits)
    hits = [_python(call, _env(tmp_path / "cache", NUMBA_BOUNDSCHECK=bc), tmp_path).strip() for bc, _ in runs]
    assert hits == [h for _, h in runs]


def test_stale_kernels_are_dropped_in_numba_cache_dir(tmp_path):
    """With ``NUMBA_CACHE_DIR`` set, numba caches the kernels there, not in ``__pycache__``: the
    cache dropped when a kernel source changes must be that one."""
    from numba.core.caching import _CacheLocator

    import spela_hw._kernels as k

    cache = tmp_path / _CacheLocator.get_suitable_cache_subpath(k.__file__)
    cache.mkdir()
    stale = cache / "fused.csc_of-92.py313.nbi"
    stale.write_bytes(b"compiled from other sources")
    (cache / "kernel-sources.sha256").write_text("other sources")
    _python("import spela_hw._kernels", _env(tmp_path), tmp_path)
    assert not stale.exists()


def test_kernels_are_neither_loaded_nor_saved_once_sources_change_on_disk(tmp_path, monkeypatch):
    """A process started before the kernel sources were edited must not save machine code built
    from its old sources into the cache that a newer process has just dropped, nor load what the
    newer one saved."""
    import importlib

    from spela_hw._kernels import drop_stale_cache

    (tmp_path / "racy.py").write_text(KERNEL_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))

    def fresh_kernel():
        sys.modules.pop("racy", None)
        return importlib.import_module("racy").ident

    ident = fresh_kernel()
    cache = Path(ident._cache.cache_path)
    drop_stale_cache(tmp_path, cache)  # the sources this process runs
    ident(1)
    saved = sorted(cache.glob("*.nb*"))
    again = fresh_kernel()
    assert saved and again(1) == 1 and sum(again.stats.cache_hits.values()) == 1  # sources agree: loaded
    (cache / "kernel-sources.sha256").write_text("newer sources")  # another process edited and dropped
    ident = fresh_kernel()
    assert ident(1) == 1 and ident(1.5) == 1.5
    assert sum(ident.stats.cache_hits.values()) == 0  # not loaded
    assert sorted(cache.glob("*.nb*")) == saved  # not saved
    sys.modules.pop("racy", None)


# -- stress: several configurations trained at once on one fresh cache, under CPU load ------------

# Every rule, float32 and 8-bit weights, per-sample and mini-batch, 2 and 9 layers.
CONFIGS = [
    {"rule": "spela", "bits": None, "batch": 1, "layers": 2},
    {"rule": "spela", "bits": 8, "batch": 50, "layers": 9},
    {"rule": "backprop", "bits": None, "batch": 50, "layers": 9},
    {"rule": "backprop", "bits": 8, "batch": 1, "layers": 2},
    {"rule": "sigprop", "bits": None, "batch": 50, "layers": 2},
    {"rule": "sigprop", "bits": 8, "batch": 1, "layers": 9},
]
N_TRAIN = 200


def train(config: dict) -> list[np.ndarray]:
    """Weights and biases of ``config`` trained for one epoch on the first bundled MNIST samples."""
    from spela_hw import Classifier, PrecisionSpec, load_dataset
    from spela_hw.specs import RULES

    data = load_dataset("mnist-bundled")
    x, y = data.features("train")[:N_TRAIN], data.y_train[:N_TRAIN]
    clf = Classifier((16,) * (config["layers"] - 1) + (10,), rule=RULES[config["rule"]](),
                     precision=PrecisionSpec.fixed(config["bits"]) if config["bits"] else None,
                     batch_size=config["batch"], epochs=1, random_state=7)
    clf.fit(x, y)
    return [*clf.state_.weights, *clf.state_.biases]


def kernel_cache_stats() -> tuple[int, int]:
    """(signatures compiled, signatures loaded from the cache) over every numba function of the
    package in this process."""
    from numba.core.registry import CPUDispatcher

    misses = hits = 0
    for name, module in list(sys.modules.items()):
        if name.startswith(("spela_hw", "sim")):
            for obj in vars(module).values():
                if isinstance(obj, CPUDispatcher):
                    misses += sum(obj.stats.cache_misses.values())
                    hits += sum(obj.stats.cache_hits.values())
    return misses, hits


CHILD = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[3])
from test_concurrency import kernel_cache_stats, train
arrays = train(json.loads(sys.argv[1]))
np.savez(sys.argv[2], *arrays)
print(json.dumps(kernel_cache_stats()))
"""


def _train_at_once(configs, cache: Path, out: Path) -> list[tuple[int, int]]:
    """Start one process per configuration at once on ``cache``; their (compiled, loaded) counts."""
    out.mkdir()
    env = _env(cache, NUMBA_NUM_THREADS="2")
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(c), str(out / f"{i}.npz"), str(ROOT / "tests")],
                              env=env, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, c in enumerate(configs)]
    stats = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr  # a crash (e.g. -11) or a traceback
        stats.append(tuple(json.loads(stdout.splitlines()[-1])))
    return stats


@pytest.mark.slow
def test_configurations_trained_at_once_on_one_fresh_cache_equal_a_serial_run(tmp_path):
    """Six processes start together on an empty ``NUMBA_CACHE_DIR`` (every kernel compiled and saved
    concurrently, many of them in several signatures), with a busy loop competing for the cores;
    six more then load everything from the cache the first six wrote. Every weight and bias of
    every run equals, bit for bit, the same configuration trained alone in this process. (Saves
    rarely coincide here: the first test, not this one, forces numba's race; this one checks the
    whole path, and fails on a cache that mixes up signatures.)"""
    cache = tmp_path / "cache"
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        t0 = time.perf_counter()
        compiled = _train_at_once(CONFIGS, cache, tmp_path / "compiled")
        t1 = time.perf_counter()
        loaded = _train_at_once(CONFIGS, cache, tmp_path / "loaded")
        t2 = time.perf_counter()
    finally:
        busy.kill()
        busy.wait()
    print(f"{len(CONFIGS)} processes at once: compile round {t1 - t0:.1f} s, load round {t2 - t1:.1f} s; "
          f"(compiled, loaded) signatures {compiled} then {loaded}")
    assert all(n > 0 for n, _ in compiled)  # the first round compiled (the cache was empty)
    assert all(n == 0 and h > 0 for n, h in loaded)  # the second found every signature, intact
    for i, config in enumerate(CONFIGS):
        serial = train(config)
        for run in ("compiled", "loaded"):
            with np.load(tmp_path / run / f"{i}.npz") as f:
                arrays = [f[f"arr_{j}"] for j in range(len(serial))]
            for a, b in zip(arrays, serial):
                assert a.dtype == b.dtype and np.array_equal(a, b), (run, config)


# -- the kernels' tests once more with numba's bounds checking ------------------------------------

# The kernel tests that reach every kernel family (fused SPELA step, fixed and float chunk trainers,
# backprop, sigprop, the crossbar device) in the least time; all of tests/test_fast_kernels.py
# passed too when this list was made (3.5 min).
BOUNDSCHECKED = ["tests/test_core_bitexact.py", "tests/test_backprop.py", "tests/test_sigprop.py",
                 "tests/test_sim_device.py", "tests/test_fast_kernels.py::test_fused_equals_reference"]

OUT_OF_RANGE = """
from spela_hw._kernels import jit

@jit
def poke(a, i):
    a[i] = 1.0
"""


@pytest.mark.slow
def test_kernel_tests_pass_with_bounds_checking(tmp_path):
    """With ``NUMBA_BOUNDSCHECK=1`` (and a cache of its own) every array index is checked: an
    out-of-range read or write raises ``IndexError`` instead of touching memory past an array."""
    env = _env(tmp_path / "cache", NUMBA_BOUNDSCHECK="1")
    (tmp_path / "oob.py").write_text(OUT_OF_RANGE)
    out = _python("""
        import numpy as np
        from oob import poke
        try:
            poke(np.zeros(3), 3)
        except IndexError:
            print("checked")
        """, env, tmp_path)
    assert out.strip() == "checked"  # the setting is in force
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *BOUNDSCHECKED], env=env,
                       cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-5000:]
