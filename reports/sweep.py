"""Design-space sweeps: a grid of (shape x bits x preset x rule x seed x ...) points, resumable.

A sweep is described by a TOML file::

    [sweep]                      # settings shared by every point
    dataset = "mnist-bundled"
    epochs = 1
    train_samples = 2000
    test_samples = 1000
    budget = "256 KB"
    out = "sweep-out"            # results folder
    max_points = 10000           # larger grids are refused (--max-points N raises the limit)

    [grid]                       # one point per combination
    dims = [[784, 128, 34], [784, 256, 34]]
    bits = ["fp32", 8, 4]
    presets = ["sram-cim-22nm", "mcu-256kb"]
    rules = ["spela", "backprop"]
    seeds = [0, 1]

Any key of :data:`AXES` may be a grid axis (a list under ``[grid]``) or a single setting under
``[sweep]``. A point's identity is a hash of all its settings, so the same point always has the
same id, whichever grid it came from.

Execution. Points that share everything but the hardware preset share one training run (a
*group*); a group runs as one task on a local process pool (default, one worker per core), an
existing Dask cluster (``scheduler="tcp://host:8786"``) or a local Dask cluster
(``local_cluster=N``). The grid is counted from its axes before a point is built: a grid larger
than ``max_points`` (default 10,000) is refused unless the limit is raised, and the point count
and an estimated time are announced before the first run. Every point's result is appended to
``<out>/results.jsonl`` as one JSON line, fsync'd, as soon as its group finishes; a failed point is recorded with its error and the
sweep goes on. ``resume=True`` skips every point that already has a record, whatever its status
(with ``retry_failed=True`` it reruns the failed ones, whose new record supersedes the old: readers
take the latest record per point), so a killed sweep loses at most the groups that were running
and never duplicates a point. Every record names the spela-hw version that computed it
(``spela_hw_version``); a resume over records of another version is refused rather than mixing
them. Only one process writes a results file at a time
(an exclusive lock on ``<out>/.lock``).

Report. :func:`write_sweep_report` writes ``<out>/report/`` (HTML, Markdown, CSV, figures) with
every point and the Pareto front of accuracy (max) vs training energy per sample (min) vs
training memory on chip (min).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import logging
import math
import os
import socket
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from spela_hw import jsonio
from spela_hw.errors import ConfigError, naming_file
from spela_hw.rules.common import readout_layers
from spela_hw.specs import RULES

from .config import _parse_int, load_toml, parse_bits, parse_dims, precision_label, weight_bits_of
from .files import (append_json_line, atomic_write_text, exclusive_lock, read_json_lines, remove_stale_temporaries,
                    repair_json_lines)

__all__ = ["SweepConfig", "AXES", "SETTINGS", "check_grid_size", "expand_points", "estimate_seconds", "plan_groups",
           "run_sweep", "SweepResult", "load_results", "results_frame", "pareto_mask", "write_sweep_report",
           "evaluate_group", "point_id", "describe_point"]

log = logging.getLogger(__name__)

RESULTS_NAME = "results.jsonl"
FORMAT_VERSION = 1
#: The record field naming the spela-hw version that computed the point.
VERSION_KEY = "spela_hw_version"

#: Keys that may be grid axes (lists under ``[grid]``) or single values under ``[sweep]``.
AXES = ("dims", "bits", "presets", "rules", "seeds", "batch_size", "epochs")
#: Keys that are single settings only.
SETTINGS = ("dataset", "train_samples", "test_samples", "energy_samples", "budget", "out", "workers", "max_points")
#: Largest grid run without being asked (``max_points`` / ``--max-points`` raise it).
DEFAULT_MAX_POINTS = 10_000

# Singular names used inside a point (the grid keys are plural where they are in ReportConfig).
_POINT_KEY = {"dims": "dims", "bits": "bits", "presets": "preset", "rules": "rule", "seeds": "seed",
              "batch_size": "batch_size", "epochs": "epochs"}
_DEFAULTS = {"dataset": "mnist-bundled", "train_samples": None, "test_samples": None, "energy_samples": 200,
             "budget": "256 KB", "out": "sweep", "workers": 0, "max_points": DEFAULT_MAX_POINTS,
             "dims": [(784, 256, 34)], "bits": ["fp32", 8], "presets": ["sram-cim-22nm"],
             "rules": ["spela", "backprop"], "seeds": [0], "batch_size": [1], "epochs": [1]}


def _axis_values(key: str, value, where: str) -> list:
    """Validated values of one axis (a list) or a single setting."""
    field_ = f"{where}.{key}"
    if key == "dims":
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (list, tuple, str)) for v in value):
            return [parse_dims(v, f"{field_}[{i}]") for i, v in enumerate(value)]
        return [parse_dims(value, field_)]
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ConfigError(field_, "needs at least one value")
    if key == "bits":
        return list(parse_bits(list(items), field_))
    if key == "rules":
        for v in items:
            if not isinstance(v, str) or v not in RULES:
                raise ConfigError(field_, f"{v!r} is not one of {tuple(RULES)}")
        return list(items)
    if key == "presets":
        from sim import resolve_hardware

        for v in items:
            if not isinstance(v, str):
                raise ConfigError(field_, f"must be preset names or .toml paths, got {v!r}")
            try:
                resolve_hardware(v)
            except ConfigError as exc:
                raise ConfigError(field_, str(exc)) from None
        return list(items)
    if key in ("seeds", "batch_size", "epochs"):
        minimum = 0 if key == "seeds" else 1
        return [_parse_int(v, field_, minimum) for v in items]
    raise ConfigError(field_, "unknown axis")


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep: shared settings plus the values of every axis.

    Build with :meth:`from_dict` / :meth:`from_toml`; see the module docstring for the format.
    """

    dataset: str = "mnist-bundled"
    train_samples: int | None = None
    test_samples: int | None = None
    energy_samples: int = 200
    budget: str | None = "256 KB"
    out: str = "sweep"
    workers: int = 0
    max_points: int = DEFAULT_MAX_POINTS
    axes: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> "SweepConfig":
        if not isinstance(d, dict):
            raise ConfigError(where or "sweep", "must be a table")
        unknown = set(d) - {"sweep", "grid"}
        if unknown:
            raise ConfigError(sorted(unknown)[0], "unknown table; a sweep file has [sweep] and [grid]")
        fixed, grid = d.get("sweep", {}), d.get("grid", {})
        for name, t in (("sweep", fixed), ("grid", grid)):
            if not isinstance(t, dict):
                raise ConfigError(name, "must be a table")
        for key in fixed:
            if key not in AXES + SETTINGS:
                raise ConfigError(f"sweep.{key}", f"unknown setting; known: {', '.join(SETTINGS + AXES)}")
        for key in grid:
            if key not in AXES:
                where_ = f"grid.{key}"
                hint = " (a single setting: put it under [sweep])" if key in SETTINGS else ""
                raise ConfigError(where_, f"unknown axis{hint}; axes: {', '.join(AXES)}")
        both = set(fixed) & set(grid)
        if both:
            raise ConfigError(f"grid.{sorted(both)[0]}", "given both under [sweep] and [grid]")
        axes = {}
        for key in AXES:
            if key in grid:
                axes[key] = _axis_values(key, grid[key], "grid")
                if len(set(map(repr, axes[key]))) != len(axes[key]):  # a repeated value would repeat points
                    raise ConfigError(f"grid.{key}", f"repeats a value: {grid[key]!r}")
            elif key in fixed:
                vals = _axis_values(key, fixed[key], "sweep")
                if len(vals) != 1:
                    raise ConfigError(f"sweep.{key}", "a setting under [sweep] takes one value; lists go under [grid]")
                axes[key] = vals
            else:
                axes[key] = [tuple(v) if isinstance(v, list) else v for v in _DEFAULTS[key]]
        kw = {k: fixed.get(k, _DEFAULTS[k]) for k in SETTINGS}
        if not isinstance(kw["dataset"], str) or not kw["dataset"]:
            raise ConfigError("sweep.dataset", f"must be a dataset name, got {kw['dataset']!r}")
        for k in ("train_samples", "test_samples"):
            if kw[k] is not None:
                kw[k] = _parse_int(kw[k], f"sweep.{k}", 10)
        kw["energy_samples"] = _parse_int(kw["energy_samples"], "sweep.energy_samples", 1)
        kw["workers"] = _parse_int(kw["workers"], "sweep.workers", 0)
        kw["max_points"] = _parse_int(kw["max_points"], "sweep.max_points", 1)
        if kw["budget"] is not None:
            if not isinstance(kw["budget"], str):
                raise ConfigError("sweep.budget", f"must be a size such as '256 KB', got {kw['budget']!r}")
            if kw["budget"].strip().lower() in ("none", "off"):
                kw["budget"] = None
            else:
                from sim import MemoryBudget

                try:
                    MemoryBudget.parse(kw["budget"])
                except ConfigError as exc:
                    raise ConfigError("sweep.budget", str(exc)) from None
        if not isinstance(kw["out"], str) or not kw["out"]:
            raise ConfigError("sweep.out", f"must be a directory path, got {kw['out']!r}")
        return cls(**kw, axes=axes)

    @classmethod
    def from_toml(cls, path) -> "SweepConfig":
        """Read a sweep file; every error names the file and the field."""
        with naming_file(path):
            return cls.from_dict(load_toml(path, "sweep"))

    def with_overrides(self, **changes) -> "SweepConfig":
        d = {k: getattr(self, k) for k in SETTINGS}
        for k, v in changes.items():
            if v is not None:
                d[k] = v
        return SweepConfig.from_dict({"sweep": d, "grid": {k: [list(x) if isinstance(x, tuple) else x
                                                               for x in v] for k, v in self.axes.items()}})

    def to_dict(self) -> dict:
        sweep = {k: getattr(self, k) for k in SETTINGS if getattr(self, k) is not None}
        grid = {k: [list(x) if isinstance(x, tuple) else x for x in v] for k, v in self.axes.items()}
        return {"sweep": sweep, "grid": grid}

    @property
    def n_points(self) -> int:
        """Points of the grid, counted from the axis lengths (nothing is built)."""
        return math.prod(len(v) for v in self.axes.values())


def check_grid_size(config: SweepConfig) -> int:
    """The number of points of the grid; a :class:`ConfigError` when it exceeds ``config.max_points``."""
    n = config.n_points
    if n > config.max_points:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in config.axes.items() if len(v) > 1)
        raise ConfigError("sweep.max_points", f"the grid has {n:,} points ({sizes}), more than the limit of "
                                              f"{config.max_points:,}; raise it with --max-points {n} (or "
                                              f"max_points under [sweep]) if you mean it")
    return n


def point_id(point: dict) -> str:
    """Stable id of a point: a hash of every setting that changes its result."""
    canon = json.dumps({k: point[k] for k in sorted(point)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def expand_points(config: SweepConfig) -> list[dict]:
    """Every point of the grid (a dict of singular settings), in a stable order.

    Raises :class:`ConfigError` for a grid larger than ``config.max_points`` (see :func:`check_grid_size`).
    """
    check_grid_size(config)
    keys = list(AXES)
    points = []
    for combo in itertools.product(*(config.axes[k] for k in keys)):
        p = {_POINT_KEY[k]: (list(v) if isinstance(v, tuple) else v) for k, v in zip(keys, combo)}
        p.update(dataset=config.dataset, train_samples=config.train_samples, test_samples=config.test_samples,
                 energy_samples=config.energy_samples, budget=config.budget)
        p["point_id"] = point_id(p)
        points.append(p)
    return points


def plan_groups(points: list[dict]) -> list[dict]:
    """Group points that share one training run (everything but the preset and the budget)."""
    groups: dict[str, dict] = {}
    for p in points:
        train = {k: v for k, v in p.items() if k not in ("preset", "budget", "point_id")}
        gid = point_id(train)
        g = groups.setdefault(gid, {"group_id": gid, "train": train, "points": []})
        g["points"].append({"point_id": p["point_id"], "preset": p["preset"], "budget": p["budget"]})
    return list(groups.values())


# -- the worker -----------------------------------------------------------------------------------------

def evaluate_group(group: dict) -> list[dict]:
    """Train once and size on every preset of the group; one record per point. Never raises."""
    from .experiments import train_task
    from .hardware import dims_for_rule

    t0 = time.perf_counter()
    tr = group["train"]
    base = {"format_version": FORMAT_VERSION, VERSION_KEY: package_version(), "pid": os.getpid(),
            "host": socket.gethostname()}
    records = []
    try:
        from .experiments import dataset_arrays

        n_classes = dataset_arrays(tr["dataset"])[4]
        dims = dims_for_rule(tr["rule"], tr["dims"], n_classes)
        res = train_task({"kind": "train", "dataset": tr["dataset"], "rule": tr["rule"], "bits": tr["bits"],
                          "seed": tr["seed"], "dims": list(dims), "epochs": tr["epochs"],
                          "batch_size": tr["batch_size"], "train_samples": tr["train_samples"],
                          "test_samples": tr["test_samples"], "energy_samples": tr["energy_samples"],
                          "exit_analysis": False})
    except Exception as exc:  # the whole group fails: every point gets the error
        err, tb = f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=20)
        for p in group["points"]:
            records.append({**base, "point_id": p["point_id"], "status": "error", "error": err, "traceback": tb,
                            "point": {**tr, "preset": p["preset"], "budget": p["budget"]}, "metrics": {},
                            "seconds": time.perf_counter() - t0, "finished_at": _now()})
        return records
    train_seconds = time.perf_counter() - t0
    acc = [float(a) for a in res["final_accuracy"]]
    for p in group["points"]:
        t1 = time.perf_counter()
        point = {**tr, "preset": p["preset"], "budget": p["budget"]}
        best = max(readout_layers(RULES[tr["rule"]](), len(acc)), key=acc.__getitem__)  # first of ties
        metrics = {"accuracy": acc[-1], "best_layer": best + 1, "best_layer_accuracy": acc[best],
                   "layer_accuracy": acc, "trained_dims": list(dims), "fit_seconds": res["fit_seconds"],
                   "train_samples_used": res["train_samples"], "test_samples_used": res["test_samples"]}
        try:
            from sim import resolve_hardware

            if tr["bits"] == "fp32" and resolve_hardware(p["preset"]).has_crossbar:
                rec = {"status": "not_applicable",
                       "error": f"{p['preset']} stores weights in crossbar cells: float32 weights do not apply"}
            else:
                metrics.update(_size_point(dims, tr, p, res, n_classes))
                rec = {"status": "ok", "error": None}
        except Exception as exc:  # noqa: BLE001 - one preset failing must not hide the others
            rec = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc(limit=20)}
        records.append({**base, "point_id": p["point_id"], **rec, "point": point, "metrics": metrics,
                        "seconds": train_seconds + time.perf_counter() - t1, "finished_at": _now()})
    return records


def _size_point(dims, tr, p, res, n_classes) -> dict:
    from sim import design_point
    from spela_hw import Counts

    from .hardware import _bit_widths

    L = len(dims) - 1
    dp = design_point(tuple(dims), p["preset"], RULES[tr["rule"]](), bits=_bit_widths(tr["bits"]),
                      batch_size=tr["batch_size"], counts=Counts.from_dict(res["train_counts"]),
                      infer_counts=Counts.from_dict(res["infer_counts"][str(L - 1)]["exit"]), budget=p["budget"],
                      n_classes=n_classes)
    s = dp.summary()
    out = {k: s[k] for k in ("train_energy_pj", "infer_energy_pj", "train_latency_ns", "infer_latency_ns",
                             "train_on_chip_bytes", "train_peak_bytes", "infer_peak_bytes", "arrays",
                             "utilisation", "array_area_mm2", "fits_train", "fits_infer", "lifetime_days")}
    out["train_dram_bytes"] = int(dp.ledger_train.by_level().get("dram", 0))
    out["fit_reasons"] = list(dp.fit_train.reasons) if dp.fit_train is not None else []
    for k, v in list(out.items()):
        if isinstance(v, float) and not np.isfinite(v):
            out[k] = None  # JSON has no NaN/inf
    return out


def describe_point(pt: dict) -> str:
    """One line naming a point: rule, precision, shape, preset, seed."""
    return (f"{pt.get('rule')} {precision_label(pt.get('bits', 'fp32'))} {'-'.join(map(str, pt.get('dims', [])))} "
            f"{pt.get('preset')} seed {pt.get('seed')}")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# -- the coordinator ----------------------------------------------------------------------------------

def _check_dims(config: SweepConfig) -> tuple[int, int]:
    """Every shape must take the dataset's features (checked before anything is written).

    Returns the numbers of training and test samples a point uses.
    """
    from .experiments import dataset_arrays

    try:
        x_train, _, x_test, _, _ = dataset_arrays(config.dataset, config.train_samples, config.test_samples)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError("sweep.dataset", f"cannot load {config.dataset!r}: {exc}") from None
    n_features = x_train.shape[1]
    for i, d in enumerate(config.axes["dims"]):
        if d[0] != n_features:
            raise ConfigError(f"grid.dims[{i}]", f"the input width {d[0]} does not match the {n_features} "
                                                 f"features of {config.dataset}")
    return len(x_train), len(x_test)


#: Rough multiply-accumulates per second of one worker, training and evaluating (measured on a
#: laptop-class core: SPELA runs faster, backprop slower); only for the announced estimate.
_MACS_PER_SECOND = 5e8
#: Loading the data, building the model and sizing, per training run (seconds).
_SECONDS_PER_RUN = 0.5


def estimate_seconds(groups: list[dict], n_train: int, n_test: int, workers: int) -> float:
    """A rough wall-clock estimate of running ``groups`` on ``workers`` processes (seconds).

    Per training run: a fixed overhead plus (3 x training samples + test samples) x epochs +
    energy samples, each costing one multiply-accumulate per weight, at a nominal rate. Kernel
    compilation on a cold cache comes on top.
    """
    total = 0.0
    for g in groups:
        tr = g["train"]
        macs = sum(a * b for a, b in zip(tr["dims"][:-1], tr["dims"][1:]))
        samples = (3 * n_train + n_test) * tr["epochs"] + min(tr["energy_samples"], n_test)
        total += _SECONDS_PER_RUN + samples * macs / _MACS_PER_SECOND
    return total / max(1, min(workers, len(groups)))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class SweepResult:
    out: Path
    results_path: Path
    n_points: int
    skipped: int
    ran: int
    failed: int
    seconds: float
    report: Path | None = None
    #: Points of the grid whose latest record is an error (``{"point_id", "point", "error"}``).
    failures: list = field(default_factory=list)


@contextmanager
def _exclusive(out: Path):
    """One writer per results folder: a lock on ``<out>/.lock`` (also proves ``out`` is writable)."""
    with exclusive_lock(out / ".lock", "sweep", out):
        yield


def _latest_per_point(records) -> dict[str, dict]:
    """``point_id -> record``, the last record of a point winning (a retried point supersedes its failure)."""
    latest: dict[str, dict] = {}
    for rec in records:
        pid = rec.get("point_id")
        if isinstance(pid, str):
            latest.pop(pid, None)  # keep file order of the latest records
            latest[pid] = rec
    return latest


def load_results(path) -> dict[str, dict]:
    """The latest record of every point in a results file (``point_id -> record``)."""
    return _latest_per_point(read_json_lines(path))


def package_version() -> str:
    """The installed spela-hw version (the package's own when it runs from a source tree)."""
    from importlib import metadata

    try:
        return metadata.version("spela-hw")
    except metadata.PackageNotFoundError:
        import spela_hw

        return spela_hw.__version__


def _check_same_version(existing: dict[str, dict], results_path: Path) -> None:
    """Refuse to resume over records of another spela-hw version: one results file, one version."""
    mine = package_version()
    theirs = sorted({str(r.get(VERSION_KEY, "unrecorded")) for r in existing.values()} - {mine})
    if theirs:
        why = " ('unrecorded': written before records named their version)" if "unrecorded" in theirs else ""
        raise ConfigError("resume", f"{results_path} holds results of spela-hw {', '.join(theirs)}{why} and this is "
                                    f"spela-hw {mine}: resuming would mix results of two versions. Pass "
                                    f"--overwrite to start over (the old file is kept as results.<time>.jsonl.bak) "
                                    f"or give another --out")


def run_sweep(config: SweepConfig, resume: bool = False, overwrite: bool = False, retry_failed: bool = False,
              scheduler=None, local_cluster: int | None = None, workers: int | None = None,
              progress: Callable[[str], None] | None = None, report: bool = True) -> SweepResult:
    """Evaluate every point of ``config`` not yet in ``<out>/results.jsonl``.

    Parameters
    ----------
    resume : bool
        Continue an earlier sweep in the same folder: skip every point that has a record, whatever
        its status (ok, error, not applicable). Refused (:class:`ConfigError`) when the records come
        from another spela-hw version.
    overwrite : bool
        Start over: an existing results file is renamed to ``results.<time>.jsonl.bak`` first.
    retry_failed : bool
        With ``resume``: run points whose record is an error again (the new record supersedes it).
    scheduler : str or dask.distributed.Client, optional
    local_cluster : int, optional
    workers : int, optional
        Local processes (overrides ``config.workers``; 0 = one per core, 1 = in this process).
    progress : callable, optional
        Receives progress lines.
    report : bool
        Write the sweep report when done.
    """
    from .runner import default_workers, run_tasks

    say = progress or (lambda m: log.info("%s", m))
    t0 = time.perf_counter()
    n_points = check_grid_size(config)
    out = Path(config.out)
    results_path = out / RESULTS_NAME
    with _exclusive(out):
        n_train, n_test = _check_dims(config)
        remove_stale_temporaries(out)
        repair_json_lines(results_path)
        existing = load_results(results_path)
        if existing and not (resume or overwrite):
            raise ConfigError("out", f"{results_path} holds {len(existing)} results of an earlier sweep; "
                                     "pass --resume to continue it or --overwrite to start over")
        if overwrite and results_path.exists():
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            os.replace(results_path, out / f"results.{stamp}.jsonl.bak")
            existing = {}
        _check_same_version(existing, results_path)
        atomic_write_text(out / "sweep.json", jsonio.dumps(config.to_dict(), indent=2) + "\n")
        points = expand_points(config)
        done = {pid for pid, r in existing.items() if not (retry_failed and r.get("status") == "error")}
        todo = [p for p in points if p["point_id"] not in done]
        groups = plan_groups(todo)
        skipped = len(points) - len(todo)
        n_workers = config.workers if workers is None else workers
        procs = 1 if scheduler is not None else (local_cluster or n_workers or default_workers())
        eta = estimate_seconds(groups, n_train, n_test, procs)
        say(f"sweep: {n_points} points ({skipped} already recorded), {len(todo)} to run in {len(groups)} "
            f"training run(s) -> {results_path}; estimated time about {_duration(eta)} on {procs} process(es) "
            "(a rough estimate, plus kernel compilation on a cold cache)")
        written: set[str] = set()
        counters = {"ran": 0, "failed": 0, "groups": 0}
        t_run = time.perf_counter()

        def on_result(group, records):
            if isinstance(records, dict):  # the runner's failure record for a whole group
                records = [{"format_version": FORMAT_VERSION, VERSION_KEY: package_version(),
                            "point_id": p["point_id"], "status": "error",
                            "error": records.get("error"), "traceback": records.get("traceback"),
                            "point": {**group["train"], "preset": p["preset"], "budget": p["budget"]},
                            "metrics": {}, "seconds": None, "finished_at": _now()} for p in group["points"]]
            counters["groups"] += 1
            left = len(groups) - counters["groups"]
            eta_left = (f" (about {_duration((time.perf_counter() - t_run) / counters['groups'] * left)} left, "
                        f"estimated from the runs so far)" if left else "")
            for rec in records:
                if rec["point_id"] in written:  # a retried group never writes a point twice
                    continue
                append_json_line(results_path, rec)
                written.add(rec["point_id"])
                counters["ran"] += 1
                counters["failed"] += rec["status"] == "error"
                m = rec.get("metrics", {})
                what = describe_point(rec["point"])
                if rec["status"] == "ok":
                    e = m.get("train_energy_pj")
                    msg = f"acc {100 * m['accuracy']:.1f}%" + (f", {e / 1e6:.3g} uJ/sample" if e else "")
                elif rec["status"] == "not_applicable":
                    msg = "not applicable: " + str(rec["error"])
                else:
                    msg = "failed: " + str(rec["error"])
                tail = eta_left if rec is records[-1] else ""
                say(f"[{skipped + len(written):>4}/{len(points)}] {what}: {msg}{tail}")

        run_tasks(evaluate_group, groups, on_result, workers=n_workers, scheduler=scheduler,
                  local_cluster=local_cluster)
        result = SweepResult(out, results_path, n_points, skipped, counters["ran"], counters["failed"],
                             time.perf_counter() - t0)
        latest = load_results(results_path)
        result.failures = [{"point_id": p["point_id"], "point": latest[p["point_id"]].get("point", {}),
                            "error": latest[p["point_id"]].get("error")}
                           for p in points if latest.get(p["point_id"], {}).get("status") == "error"]
        if report:
            result.report = write_sweep_report(config, progress=say)
    say(f"sweep: {result.ran} point(s) run, {result.failed} failed, {result.skipped} skipped, "
        f"{result.seconds:.1f} s")
    return result


# -- analysis ----------------------------------------------------------------------------------------

RESULT_COLUMNS = {
    "point_id": "stable id of the point (hash of its settings)",
    "status": "ok, error, or not_applicable (a combination that cannot exist, e.g. float32 on crossbar cells)",
    "dataset": "dataset", "rule": "learning rule", "precision": "weight precision", "weight_bits": "weight bits",
    "dims": "layer widths as configured", "trained_dims": "layer widths trained (backprop: one output per class)",
    "preset": "hardware preset", "batch_size": "batch size", "epochs": "epochs", "seed": "seed",
    "accuracy": "test accuracy at the output (fraction)",
    "best_layer": "read-out layer with the best accuracy", "best_layer_accuracy": "its accuracy",
    "train_energy_pj": "energy per training sample (pJ)", "infer_energy_pj": "energy per inference (pJ)",
    "train_latency_ns": "latency per training sample (ns)", "infer_latency_ns": "latency per inference (ns)",
    "train_on_chip_bytes": "on-chip bytes of a training step", "train_peak_bytes": "all bytes of a training step",
    "train_dram_bytes": "bytes spilled to DRAM while training", "infer_peak_bytes": "bytes of inference",
    "arrays": "crossbar arrays", "utilisation": "array cell utilisation", "fits_train": "training fits the budget",
    "budget": "memory budget", "pareto": "on the Pareto front (accuracy, training energy, training memory)",
    "seconds": "wall-clock seconds", "error": "error of a failed point",
}


def results_frame(records, points: list[dict] | None = None) -> pd.DataFrame:
    """Tidy table of results (one row per point); restricted to ``points`` when given."""
    records = list(_latest_per_point(records.values() if isinstance(records, dict) else records).values())
    if points is not None:
        ids = {p["point_id"] for p in points}
        records = [r for r in records if r.get("point_id") in ids]
    rows = []
    for r in records:
        pt, m = r.get("point", {}), r.get("metrics", {}) or {}
        rows.append({
            "point_id": r["point_id"], "status": r.get("status"), "dataset": pt.get("dataset"),
            "rule": pt.get("rule"), "precision": precision_label(pt.get("bits", "fp32")),
            "weight_bits": weight_bits_of(pt.get("bits", "fp32")), "dims": "-".join(map(str, pt.get("dims", []))),
            "trained_dims": "-".join(map(str, m.get("trained_dims", []))), "preset": pt.get("preset"),
            "batch_size": pt.get("batch_size"), "epochs": pt.get("epochs"), "seed": pt.get("seed"),
            **{k: m.get(k) for k in ("accuracy", "best_layer", "best_layer_accuracy", "train_energy_pj",
                                     "infer_energy_pj", "train_latency_ns", "infer_latency_ns",
                                     "train_on_chip_bytes", "train_peak_bytes", "train_dram_bytes",
                                     "infer_peak_bytes", "arrays", "utilisation", "fits_train")},
            "budget": pt.get("budget"), "seconds": r.get("seconds"), "error": r.get("error") or "",
        })
    df = pd.DataFrame(rows, columns=[c for c in RESULT_COLUMNS if c != "pareto"])
    for c in ("accuracy", "best_layer_accuracy", "train_energy_pj", "infer_energy_pj", "train_latency_ns",
              "infer_latency_ns", "train_on_chip_bytes", "train_peak_bytes", "train_dram_bytes",
              "infer_peak_bytes", "arrays", "utilisation", "seconds"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    ok = df["status"].eq("ok") & df[["accuracy", "train_energy_pj", "train_on_chip_bytes"]].notna().all(axis=1)
    df.insert(len(df.columns) - 2, "pareto", False)
    if ok.any():
        sub = df.loc[ok]
        mask = pareto_mask(np.column_stack([-sub["accuracy"].to_numpy(float), sub["train_energy_pj"].to_numpy(float),
                                            sub["train_on_chip_bytes"].to_numpy(float)]))
        df.loc[sub.index[mask], "pareto"] = True
    return df


def pareto_mask(costs: np.ndarray) -> np.ndarray:
    """Rows not dominated by any other row (every column is a cost to minimise).

    A row is dominated when another is no worse in every column and strictly better in one.
    Identical rows do not dominate each other (both stay on the front).
    """
    costs = np.asarray(costs, float)
    n = len(costs)
    keep = np.ones(n, bool)
    for i in range(n):
        no_worse = np.all(costs <= costs[i], axis=1)
        better = np.any(costs < costs[i], axis=1)
        if np.any(no_worse & better):
            keep[i] = False
    return keep


def write_sweep_report(config: SweepConfig, progress: Callable[[str], None] | None = None) -> Path:
    """Write ``<out>/report/`` from the results file: every point, the Pareto front, failures."""
    from . import figures as F
    from .document import Document, Note, Section, Table, render_html, render_markdown
    from .files import atomic_write_bytes, write_table

    out = Path(config.out)
    points = expand_points(config)
    records = load_results(out / RESULTS_NAME)
    df = results_frame(records, points)
    folder = out / "report"
    (folder / "tables").mkdir(parents=True, exist_ok=True)
    (folder / "figures").mkdir(exist_ok=True)
    ok = df[df["status"] == "ok"]
    front = ok[ok["pareto"]].sort_values("accuracy", ascending=False)
    axes_desc = ", ".join(f"{k} ({len(v)})" for k, v in config.axes.items() if len(v) > 1) or "a single point"
    s_front = Section("pareto", "Pareto front: accuracy vs training energy vs training memory")
    s_front.paragraphs.append(
        "A point is Pareto-optimal when no other point has at least its accuracy with no more energy per "
        "training sample and no more on-chip training memory, and is strictly better in one of them.")
    figs = []
    if len(ok) >= 1:
        mask = ok["pareto"].to_numpy()
        figs.append(F.pareto_figure(ok, "train_energy_pj", "accuracy", "train_on_chip_bytes", mask,
                                    "energy per training sample (pJ)", "test accuracy (fraction)",
                                    "on-chip training memory (bytes)", "pareto_energy",
                                    "Accuracy against training energy"))
        figs.append(F.pareto_figure(ok, "train_on_chip_bytes", "accuracy", "train_energy_pj", mask,
                                    "on-chip training memory (bytes)", "test accuracy (fraction)",
                                    "energy per training sample (pJ)", "pareto_memory",
                                    "Accuracy against training memory"))
        s_front.figures += figs
        s_front.tables.append(Table("pareto_front", "Pareto-optimal points", front, "", RESULT_COLUMNS))
    else:
        s_front.status, s_front.reason = "unavailable", "no point has finished successfully yet"
    s_all = Section("points", "Every point")
    s_all.tables.append(Table("results", "All points of the grid that have a result", df, "", RESULT_COLUMNS,
                              max_rows=200))
    s_fail = Section("failures", "Failed and not applicable points")
    failed = df[df["status"] != "ok"][["point_id", "status", "rule", "precision", "dims", "preset", "seed", "error"]]
    if len(failed):
        s_fail.tables.append(Table("failures", "Points that failed or do not apply", failed, "", RESULT_COLUMNS))
    else:
        s_fail.paragraphs.append("None.")
    missing = len(points) - len(df)
    n_na = int((df["status"] == "not_applicable").sum())
    summary = [Note("info", f"{len(df)} of {len(points)} points have results ({len(ok)} ok, "
                            f"{len(df) - len(ok) - n_na} failed, {n_na} not applicable); {len(front)} on the "
                            f"Pareto front. Axes: {axes_desc}.")]
    if missing:
        summary.append(Note("warn", f"{missing} point(s) have no result yet: run the sweep again with --resume"))
    doc = Document("spela-hw design-space sweep", f"{config.dataset}; results in {out / RESULTS_NAME}",
                   [s_front, s_all, s_fail], summary)
    for s in doc.sections:
        for t in s.tables:
            write_table(t.df, folder / "tables", t.name)
    for f in figs:
        atomic_write_bytes(folder / "figures" / f"{f.name}.png", f.png)
        atomic_write_text(folder / "figures" / f"{f.name}.svg", f.svg)
    atomic_write_text(folder / "index.html", render_html(doc))
    atomic_write_text(folder / "report.md", render_markdown(doc))
    if progress:
        progress(f"sweep report: {folder / 'index.html'}")
    return folder / "index.html"
