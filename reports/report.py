"""``spela-hw report``: train SPELA and backprop, price them on hardware, write a report folder.

The page opens with the verdict for one design point (the first preset, the first fixed-point
precision, the configured batch): SPELA minus backprop on the same network shape, in accuracy
over the seeds, training memory and energy, each number with its confidence and source.

:func:`build_report` runs the experiments of a :class:`~reports.config.ReportConfig` (in parallel
over local processes), prices them with ``sim`` and writes::

    <out>/index.html      self-contained page (inline CSS, figures as SVG data URIs, no scripts)
    <out>/report.md       the same content in Markdown (figures linked as PNG)
    <out>/tables/*.csv    tidy tables (and *.parquet when pyarrow is importable)
    <out>/figures/*.png, *.svg
    <out>/config.toml     the exact configuration (``spela-hw report --config config.toml``)
    <out>/manifest.json   files, versions, timings, failures

The folder is assembled next to ``out`` (in ``.<name>.partial-<pid>``) and moved into place at the
end, so ``out`` is either the previous complete report or the new complete one; the staging folders
a killed run left behind are removed by the next run. One report at a time writes ``out`` (a lock
on ``.<name>.lock`` next to it). An existing ``out`` that is not a spela-hw report is never touched.
A run that fails is listed in the report, which is then marked incomplete (``"complete": false``
in the manifest).
"""

from __future__ import annotations

import datetime as _dt
import glob
import importlib.machinery
import json
import logging
import os
import platform
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from spela_hw import jsonio
from spela_hw.errors import ConfigError
from spela_hw.specs import RULES

from . import figures as F
from . import tables as T
from .config import ReportConfig, precision_for, precision_label
from .document import Document, Note, Section, Table, render_html, render_markdown
from .experiments import run_task, task_label
from .files import (atomic_write_bytes, atomic_write_text, exclusive_lock, fsync_dir, pid_alive, remove_stale_dirs,
                    write_table)
from .hardware import budget_bytes, budget_tables, size_runs, sources_tables
from .runner import default_workers, run_tasks
from .spiking import price_spike_counts, spiking_available

__all__ = ["build_report", "ReportResult", "plan_tasks", "MANIFEST_NAME"]

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
GENERATOR = "spela-hw report"


@dataclass
class ReportResult:
    """Where the report went and what it contains."""

    out: Path
    index_html: Path
    report_md: Path
    tables: dict = field(default_factory=dict)  # name -> DataFrame
    figures: list = field(default_factory=list)  # names
    sections: dict = field(default_factory=dict)  # id -> status
    failures: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """True when every run finished and was priced (no failures)."""
        return not self.failures


# -- planning ----------------------------------------------------------------------------------------

def _dataset_meta(name: str):
    from .experiments import _dataset

    d = _dataset(name)
    return int(d.x_train.shape[1]), int(d.n_classes), int(d.x_train.shape[0]), int(d.x_test.shape[0])


def _check_against_data(config: ReportConfig) -> tuple[int, int, int, int]:
    try:
        n_features, n_classes, n_train, n_test = _dataset_meta(config.dataset)
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError("dataset", f"cannot load {config.dataset!r}: {exc}") from None
    if config.dims[0] != n_features:
        raise ConfigError("dims", f"the input width {config.dims[0]} does not match the {n_features} "
                                  f"features of {config.dataset}")
    softmax = [r for r in config.rules if getattr(RULES[r], "loss", None) == "softmax_ce"]
    if softmax and config.dims[-1] != n_classes:
        # Like for like: every rule trains the configured shape, and a softmax needs one output per class.
        raise ConfigError("dims", f"{', '.join(softmax)} needs one output per class ({n_classes} for "
                                  f"{config.dataset}), so the comparison would not be like for like with "
                                  f"{config.dims[-1]} outputs; use {_shape(config.dims[:-1] + (n_classes,))}, or "
                                  f"rules = [\"spela\"] for a SPELA-only report of this shape")
    return n_features, n_classes, n_train, n_test


def _shape(dims) -> str:
    return "-".join(map(str, dims))


def plan_tasks(config: ReportConfig, n_classes: int, spike_target: str | None = None) -> list[dict]:
    """Every experiment of the report as a task dict, in the order the workers take them.

    The spiking run comes first: Brian2's C++ build is the longest single step and runs beside
    everything else. Then one training run per kernel family (rule x float or fixed point), the
    family with the longest numba compilation first: with an empty numba cache, workers that
    start two runs of the same family at once would both compile its kernels.
    """
    common = {"dataset": config.dataset, "batch_size": config.batch_size}
    tasks = []
    if spike_target:
        tasks.append({"kind": "spike", **common, "dims": list(config.spike_dims),
                      "train_samples": config.spike_train_samples, "test_samples": config.spike_test_samples,
                      "seed": config.seeds[0], "target": spike_target, "rule": "spela", "bits": "fp32"})
    for bits in config.bits:
        for rule in config.rules:
            for seed in config.seeds:
                tasks.append({"kind": "train", **common, **_rule_options(config, rule), "rule": rule, "bits": bits,
                              "seed": seed,
                              "dims": list(config.dims), "epochs": config.epochs, "train_samples": config.train_samples,
                              "test_samples": config.test_samples, "energy_samples": config.energy_samples,
                              "exit_thresholds": list(config.exit_thresholds)})
    tasks[len(tasks) - len(config.bits) * len(config.rules) * len(config.seeds):] = \
        _compile_leaders_first(tasks[len(tasks) - len(config.bits) * len(config.rules) * len(config.seeds):])
    if transfer_reason(config, n_classes) is None:
        for seed in config.seeds:
            tasks.append({"kind": "transfer", **common, "seed": seed, "bits": _design_bits(config, fixed=True),
                          "epochs": config.epochs, "train_samples": config.train_samples})
    for frac in config.few_shot_test_fractions:
        for rule in config.rules:
            for trial in range(config.few_shot_trials):
                tasks.append({"kind": "few_shot", **common, **_rule_options(config, rule), "rule": rule,
                              "bits": config.bits[0],
                              "seed": config.seeds[0], "trial": trial, "test_fraction": frac,
                              "dims": list(config.dims), "epochs": config.few_shot_epochs,
                              "max_test_samples": config.test_samples or 2000})
    return tasks


def _rule_options(config: ReportConfig, rule: str) -> dict:
    """The task fields of a rule's own settings (SPELA's class vectors; none for backprop)."""
    return {"class_vectors": config.class_vectors} if rule == "spela" else {}


def _compile_leaders_first(train_tasks: list[dict]) -> list[dict]:
    """The first run of each kernel family, SPELA fixed point (the longest compilation) first,
    then the others in their order."""
    def family(t):
        return (t["rule"] != "spela", t["bits"] == "fp32")  # sorts SPELA before others, fixed before float

    leaders = {}
    for t in train_tasks:
        leaders.setdefault(family(t), t)
    first = [leaders[k] for k in sorted(leaders)]
    return first + [t for t in train_tasks if all(t is not f for f in first)]


# -- the output folder ---------------------------------------------------------------------------------

def _check_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise ConfigError("out", f"{out} exists and is not a directory")
        if any(out.iterdir()) and not (out / MANIFEST_NAME).exists():
            raise ConfigError("out", f"{out} exists, is not empty and is not a spela-hw report; "
                                     "choose another --out")
        if (out / MANIFEST_NAME).exists():
            try:
                gen = json.loads((out / MANIFEST_NAME).read_text()).get("generator")
            except (OSError, ValueError):
                gen = None
            if gen != GENERATOR:
                raise ConfigError("out", f"{out} holds something else than a spela-hw report; choose another --out")


def _staging_prefixes(out: Path) -> tuple[str, str]:
    """Name prefixes (followed by a PID) of the folders a report assembles and retires next to ``out``."""
    return f".{out.name}.partial-", f".{out.name}.old-"


def _report_lock(out: Path):
    """One report at a time writes ``out``: a lock on ``.<name>.lock`` beside it (``out`` itself is replaced)."""
    return exclusive_lock(out.with_name(f".{out.name}.lock"), "report", out)


def _restore_interrupted_swap(out: Path) -> None:
    """Put back the previous report of a run killed between the two renames of :func:`_swap_in`."""
    prefix = _staging_prefixes(out)[1]
    if out.exists():
        return
    for old in out.parent.glob(f"{glob.escape(prefix)}*"):
        pid = old.name[len(prefix):]
        if pid.isdigit() and not pid_alive(int(pid)) and (old / MANIFEST_NAME).is_file():
            os.replace(old, out)
            log.warning("%s: restored the previous report from %s (left by a killed run)", out, old.name)
            return


def _swap_in(staging: Path, out: Path) -> None:
    """Move the finished report into place (the old one, if any, is removed afterwards)."""
    old = None
    if out.exists():
        old = out.with_name(f"{_staging_prefixes(out)[1]}{os.getpid()}")
        os.replace(out, old)
    os.replace(staging, out)
    fsync_dir(out.parent)  # the renames themselves must survive a power cut
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class _heartbeat:
    """While the runs go on, say every ``every_s`` seconds how many are done and what is running.

    The pool takes tasks in plan order, so the first ``workers`` unfinished tasks are the ones
    running (a spiking run spends its first minute or so in Brian2's C++ build, which says so).
    """

    def __init__(self, say, tasks, done: set, workers: int, every_s: float = 10.0):
        self.say, self.tasks, self.done, self.workers, self.every_s = say, tasks, done, workers, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="report-heartbeat", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.wait(self.every_s):
            left = [t for t in self.tasks if id(t) not in self.done]
            if not left:
                return
            running = [task_label(t) + (" (Brian2 C++ build, then the spiking run)" if t["kind"] == "spike" else "")
                       for t in left[:self.workers]]
            self.say(f"{len(self.tasks) - len(left)} of {len(self.tasks)} runs done; running: "
                     f"{'; '.join(running)}; {len(left) - len(running)} waiting")


# -- environment -------------------------------------------------------------------------------------

def package_versions() -> dict:
    """Versions of Python and every package the results depend on."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("spela-hw", "numpy", "numba", "pandas", "matplotlib", "brian2", "dask", "distributed",
                 "pyarrow", "scipy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine() -> dict:
    return {"platform": platform.platform(), "machine": platform.machine(), "cores": default_workers(),
            "processor": platform.processor() or ""}


# -- the report ---------------------------------------------------------------------------------------

def build_report(config: ReportConfig, progress: Callable[[str], None] | None = None,
                 argv: list[str] | None = None) -> ReportResult:
    """Run every experiment of ``config`` and write the report folder ``config.out``.

    Parameters
    ----------
    config : ReportConfig
    progress : callable, optional
        Receives one line of text per step (the CLI prints them to stderr).
    argv : list of str, optional
        The command line, recorded in the Reproduce section.

    Returns
    -------
    ReportResult
        With the failed runs in ``failures`` (the report is then marked incomplete).

    Raises
    ------
    ConfigError
        For a bad configuration or ``out`` (a file, an unwritable place, another report writing
        it), before any run starts.
    """
    out = Path(config.out).resolve()
    with _report_lock(out):
        _restore_interrupted_swap(out)
        for prefix in _staging_prefixes(out):
            remove_stale_dirs(out.parent, prefix)
        return _build_report(config, out, progress, argv)


def _build_report(config: ReportConfig, out: Path, progress, argv) -> ReportResult:
    say = progress or (lambda msg: log.info("%s", msg))
    t_start = time.perf_counter()
    say(f"checking the configuration and loading {config.dataset}")
    _check_out(out)
    n_features, n_classes, n_train_all, n_test_all = _check_against_data(config)
    if config.budget:
        budget_bytes(config.budget)  # validates
    for preset in config.presets:
        from sim import resolve_hardware

        try:
            resolve_hardware(preset)
        except ConfigError as exc:
            raise ConfigError("presets", str(exc)) from None

    spike_target, spike_reason = spiking_available(config.spiking)
    if config.spiking == "on" and spike_target is None:
        raise ConfigError("spiking", spike_reason)
    if spike_target is not None and config.spike_dims[0] != n_features:
        raise ConfigError("spike_dims", f"the input width {config.spike_dims[0]} does not match the "
                                        f"{n_features} features of {config.dataset}")

    tasks = plan_tasks(config, n_classes, spike_target)
    workers = config.workers or default_workers()
    say(f"report: {len(tasks)} runs on {min(workers, len(tasks))} worker process(es); "
        f"dataset {config.dataset}, dims {'-'.join(map(str, config.dims))}, "
        f"precisions {', '.join(precision_label(b) for b in config.bits)}, epochs {config.epochs}, "
        f"seeds {list(config.seeds)}")
    results: list[dict] = []
    done: set[int] = set()

    def on_result(task, res):
        results.append(res)
        done.add(id(task))
        status = "failed: " + res["error"] if res.get("error") else f"{res.get('seconds', float('nan')):.1f} s"
        say(f"{len(results)} of {len(tasks)} runs done: {task_label(task)}: {status}")

    with _heartbeat(say, tasks, done, min(workers, len(tasks))):
        run_tasks(run_task, tasks, on_result, workers=workers)
    t_runs = time.perf_counter() - t_start

    say("pricing on hardware presets and drawing figures")
    train_runs = [r for r in results if r["task"]["kind"] == "train"]
    hw = size_runs(train_runs, config.presets, config.batch_size, config.budget, n_classes)

    staging = out.with_name(f"{_staging_prefixes(out)[0]}{os.getpid()}")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "tables").mkdir(parents=True)
    (staging / "figures").mkdir()
    try:
        doc, tables, figs = _assemble(config, results, hw, n_classes, n_train_all, n_test_all, spike_reason,
                                      argv, t_runs, say)
        for name, df in tables.items():
            write_table(df, staging / "tables", name)
        for fig in figs:
            atomic_write_bytes(staging / "figures" / f"{fig.name}.png", fig.png)
            atomic_write_text(staging / "figures" / f"{fig.name}.svg", fig.svg)
        atomic_write_text(staging / "index.html", render_html(doc))
        atomic_write_text(staging / "report.md", render_markdown(doc))
        atomic_write_text(staging / "config.toml", config.to_toml())
        failures = [{"task": task_label(r["task"]), "error": r["error"]} for r in results if r.get("error")]
        failures += [{"task": f"{e['preset']} {e['rule']} {e['precision']} {e['what']}", "error": e["error"]}
                     for e in hw.errors]
        seconds = time.perf_counter() - t_start
        manifest = {
            "generator": GENERATOR, "format_version": 1, "complete": not failures,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "config": config.to_dict(), "argv": argv, "versions": package_versions(), "machine": machine(),
            "seconds": {"runs": t_runs, "total": seconds},
            "sections": {s.id: {"status": s.status, "reason": s.reason} for s in doc.sections},
            "tables": sorted(tables), "figures": sorted(f.name for f in figs), "failures": failures,
        }
        atomic_write_text(staging / MANIFEST_NAME, jsonio.dumps(manifest, indent=2) + "\n")
        _swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"report written in {time.perf_counter() - t_start:.1f} s")
    return ReportResult(out, out / "index.html", out / "report.md", tables, [f.name for f in figs],
                        {s.id: s.status for s in doc.sections}, failures, time.perf_counter() - t_start)


# -- assembling sections ------------------------------------------------------------------------------

def _assemble(config, results, hw, n_classes, n_train_all, n_test_all, spike_reason, argv, t_runs, progress=None):
    tables: dict[str, pd.DataFrame] = {}
    figs = []
    sections = []
    train = sorted((r for r in results if r["task"]["kind"] == "train"), key=lambda r: r["task"]["seed"])
    ok_train = [r for r in train if not r.get("error")]
    main_bits = list(config.bits[:2])
    main_precs = [precision_label(b) for b in main_bits]

    def add(section: Section):
        sections.append(section)
        for t in section.tables:
            t.df = T.ordered(t.df, config.rules, config.presets)
            tables[t.name] = t.df
        figs.extend(section.figures)

    failures = [r for r in results if r.get("error")]
    lead = _verdict_section(config, ok_train, hw, n_classes)
    for t in lead.tables:
        tables[t.name] = t.df
    crossover = _crossover_section(config, progress)  # right after the verdict: where the verdict turns
    if crossover is not None:
        add(crossover)
    add(_accuracy_section(config, ok_train, train, main_precs))
    add(_bits_section(config, ok_train))
    add(_data_scarce_section(config, results, ok_train))
    add(_transfer_section(config, results, n_classes))
    add(_memory_section(config, hw, main_precs, n_classes))
    add(_energy_section(config, hw, main_precs))
    add(_crossbar_section(config, hw))
    add(_early_exit_section(config, hw, ok_train))
    add(_spiking_section(config, results, spike_reason, hw))
    add(_sources_section(config))
    add(_reproduce_section(config, argv, results, hw, t_runs, failures))

    summary = []
    if failures or hw.errors:  # say so first: numbers from a partial set of runs must not pass as complete
        summary.insert(0, Note("bad", f"Incomplete report: {len(failures)} of {len(results)} run(s) failed"
                                      + (f" and {len(hw.errors)} could not be priced" if hw.errors else "")
                                      + "; see Reproduce for the errors."))
    n_train = min(config.train_samples or n_train_all, n_train_all)
    n_test = min(config.test_samples or n_test_all, n_test_all)
    subtitle = (f"{config.dataset}: {n_train:,} training / {n_test:,} test samples; network "
                f"{'-'.join(map(str, config.dims))}; rules {', '.join(config.rules)}; "
                f"{config.epochs} epoch(s), batch {config.batch_size}; hardware "
                f"{', '.join(config.presets)}; generated {_dt.date.today().isoformat()}")
    doc = Document("SPELA vs backprop: accuracy, memory and energy on the edge", subtitle, sections, summary, lead)
    return doc, tables, figs


# -- the verdict: the first screen ----------------------------------------------------------------

#: Until ``sim`` prices placeholders over ranges of their own (``sim.compare_energy``), every
#: placeholder action is varied independently between these multiples of its value (an
#: assumption the report states).
PLACEHOLDER_FACTORS = (0.5, 2.0)


def _design_bits(config: ReportConfig, fixed: bool = False):
    """The precision of the verdict: the first fixed-point one configured (edge hardware stores
    fixed-point weights; float32 cannot sit in crossbar cells), else the first one (``fixed``:
    else 8 bits)."""
    return next((b for b in config.bits if b != "fp32"), 8 if fixed else config.bits[0])


def _design_point(run: dict, preset: str, batch_size: int, n_classes: int):
    """``sim.design_point`` of one training run, priced from the counts it executed."""
    from sim import design_point
    from spela_hw import Counts

    from .hardware import _bit_widths

    task = run["task"]
    dims = tuple(task["dims"])
    last = str(len(dims) - 2)
    return design_point(dims, preset, RULES[task["rule"]](), bits=_bit_widths(task["bits"]), batch_size=batch_size,
                        counts=Counts.from_dict(run["train_counts"]),
                        infer_counts=Counts.from_dict(run["infer_counts"][last]["exit"]), n_classes=n_classes)


def _energy_interval(spela_point, backprop_point, phase: str) -> tuple[dict, str]:
    """Energy per sample of both rules and of SPELA minus backprop as ``(low, nominal, high)`` pJ.

    Uses ``sim.compare_energy`` (every placeholder at the ends of its own range, the same value
    pricing both rules: they run on one chip) when ``sim`` has it; otherwise every placeholder
    action of the line items is varied independently by :data:`PLACEHOLDER_FACTORS`. Returns the
    three intervals (keys ``spela``, ``backprop``, ``difference``) and how they were bounded.
    """
    import sim

    if hasattr(sim, "compare_energy"):
        adv = sim.compare_energy(spela_point, backprop_point, phase)
        return ({"spela": (adv.rule.low_pj, adv.rule.nominal_pj, adv.rule.high_pj),
                 "backprop": (adv.baseline.low_pj, adv.baseline.nominal_pj, adv.baseline.high_pj),
                 "difference": (adv.difference_low_pj, adv.difference_nominal_pj, adv.difference_high_pj)},
                "every placeholder at the low and high end of its range in sim/tables/placeholders.toml, the same "
                "value pricing both rules")
    items = {}
    for rule, point in (("spela", spela_point), ("backprop", backprop_point)):
        e = point.energy_train if phase == "train" else point.energy_infer
        items[rule] = pd.DataFrame(e.to_records())[["action", "kind", "energy_pj"]]
    neg = items["backprop"].assign(energy_pj=-items["backprop"]["energy_pj"])
    lo, hi = PLACEHOLDER_FACTORS
    return ({"spela": _factor_interval(items["spela"]), "backprop": _factor_interval(items["backprop"]),
             "difference": _factor_interval(pd.concat([items["spela"], neg]))},
            f"every placeholder action varied independently from {lo:g}x to {hi:g}x its value (an assumption: "
            "no published range yet), the same value pricing both rules")


def _factor_interval(items: pd.DataFrame) -> tuple[float, float, float]:
    """``(low, nominal, high)`` of line items (action, kind, energy_pj; possibly negated) with each
    placeholder action's items, summed, scaled by :data:`PLACEHOLDER_FACTORS`."""
    nominal = float(items["energy_pj"].sum())
    ph = items[items["kind"] == "placeholder"].groupby("action")["energy_pj"].sum()
    lo_f, hi_f = PLACEHOLDER_FACTORS
    return (nominal + float(sum(min(c * lo_f, c * hi_f) - c for c in ph)), nominal,
            nominal + float(sum(max(c * lo_f, c * hi_f) - c for c in ph)))


def _verdict_section(config: ReportConfig, ok_train: list[dict], hw, n_classes: int) -> Section:
    preset, bits = config.presets[0], _design_bits(config)
    prec = precision_label(bits)
    s = Section("verdict", f"Verdict: SPELA or backprop on {preset}, {prec} weights, batch {config.batch_size}",
                lead_tables=("verdict",))
    if not {"spela", "backprop"} <= set(config.rules):
        return Section.unavailable(s.id, s.title, "the verdict compares SPELA with backprop: configure both rules")
    runs = [r for r in ok_train if r["task"]["bits"] == bits]
    acc = T.output_accuracy_by_seed(runs, prec)
    n_seeds = int(acc.groupby("rule")["seed"].nunique().min()) if len(acc) else 0
    n_test = runs[0]["test_samples"] if runs else 0
    seeds_text = T.seeds_phrase(n_seeds)
    # Energy from the lowest seed of each rule (the counts differ across seeds only in data-dependent events).
    first = {}
    for r in sorted(runs, key=lambda r: r["task"]["seed"]):
        first.setdefault(r["task"]["rule"], r)
    energy, basis = {}, ""
    if {"spela", "backprop"} <= set(first):
        try:
            points = {rule: _design_point(first[rule], preset, config.batch_size, n_classes)
                      for rule in ("spela", "backprop")}
            for phase in ("train", "infer"):
                energy[phase], basis = _energy_interval(points["spela"], points["backprop"], phase)
        except Exception as exc:  # noqa: BLE001 - the verdict keeps accuracy and memory, says why
            s.notes.append(Note("warn", f"energy not priced for the verdict: {type(exc).__name__}: {exc}"))
    seed_e = first["spela"]["task"]["seed"] if "spela" in first else config.seeds[0]
    sources = {"accuracy": "runs: tables/final_accuracy.csv", "memory": "sim ledger: tables/memory_ledger.csv",
               "energy": "sim energy: tables/energy_items.csv"}
    best = T.best_spela_exit(runs, prec)
    best_exit = (best, T.output_accuracy_by_seed(runs, prec, spela_layer=best)) if best else None
    v = T.verdict_table(acc, hw.summary, energy, preset, prec, sources, best_exit)
    s.paragraphs.append(
        T.verdict_sentence(v) + f" Like for like: both rules train the same {_shape(config.dims)} network "
        "(backprop's softmax needs one output per class, so SPELA gets that width too, not the SPELA paper's "
        "wider output), so weights, multiply-accumulates and weight memory are identical and every difference "
        f"is the learning rule's. SPELA's class vectors: {config.class_vectors}"
        + (" (the paper's simplex aligned with the output units, so that every class is within reach of a "
           "non-negative output; a randomly rotated one makes the output read-out swing from seed to seed)."
           if config.class_vectors == "aligned" and config.dims[-1] == n_classes else "."))
    if len(v):
        s.tables.append(Table(
            "verdict", "SPELA minus backprop at this design point", v,
            f"Accuracy: test accuracy after {config.epochs} epoch(s) on {n_test:,} test samples, mean \u00b1 std over "
            + seeds_text + " per rule; the difference is the mean \u00b1 std of the per-seed differences"
            + ("" if n_seeds >= 2 else " (one seed: no spread)") + ". Memory: one training step, all levels in "
            "the total (accounting: docs/hardware.md \u00a79). Energy: the counts of the seed-"
            f"{seed_e} runs x energy per action on {preset}; in brackets and after \"range\", the interval over "
            "the placeholder numbers" + (f" ({basis})" if basis else "") + ".",
            T.COLUMNS["verdict"], display=T.verdict_display(v)))
    s.notes += _placeholder_notes(config, hw, preset, prec)
    return s


def _placeholder_notes(config, hw, preset: str, prec: str) -> list[Note]:
    """The warning that belongs next to every energy number: what rests on placeholders, and how
    much of the energy is ADC conversions (published numbers, paid alike by both rules)."""
    if hw.energy.empty:
        return []
    e = hw.energy[(hw.energy["preset"] == preset) & (hw.energy["precision"] == prec)]
    placeholders = sorted(set(e.loc[e["kind"] == "placeholder", "action"]))
    if not placeholders:
        return []
    shares = []
    for phase, label in (("train", "training"), ("infer", "inference")):
        per_rule = []
        for rule in config.rules:
            g = e[(e["phase"] == phase) & (e["rule"] == rule)]
            total = g["energy_pj"].sum()
            if total > 0:
                adc = g.loc[g["action"].str.startswith("adc"), "energy_pj"].sum()
                per_rule.append(f"{100 * adc / total:.0f} % ({rule})")
        if per_rule:
            shares.append(f"{' and '.join(per_rule)} of {label} energy")
    text = (f"Energies are placeholder-dependent: {len(placeholders)} hardware actions on {preset} are priced "
            f"with placeholder numbers, not published ones ({', '.join(placeholders)}); the verdict gives "
            "energies as intervals over their range. ADC conversions (published numbers) make up "
            + "; ".join(shares) + ". Every number with its source: Conventions and sources.")
    return [Note("warn", text)]


def _crossover_section(config: ReportConfig, progress) -> Section | None:
    """"Where SPELA pays off": the crossover section of :mod:`reports.crossover`, when it is there."""
    # look in this package's own folder only (an editable install elsewhere must not stand in for it)
    if importlib.machinery.PathFinder.find_spec("reports.crossover", [str(Path(__file__).parent)]) is None:
        return None
    from . import crossover

    try:
        return crossover.crossover_section(config, progress=progress)
    except Exception as exc:  # noqa: BLE001 - the rest of the report stands without it
        log.debug("crossover section failed", exc_info=True)
        return Section.unavailable("crossover", "Where SPELA pays off", f"{type(exc).__name__}: {exc}")


def _accuracy_section(config, ok_train, train, main_precs) -> Section:
    s = Section("accuracy", "Accuracy per epoch and per layer vs backprop")
    if not ok_train:
        reason = "; ".join(sorted({r["error"] for r in train if r.get("error")})) or "no training run finished"
        return Section.unavailable(s.id, s.title, reason)
    curves = T.learning_curves(ok_train)
    final = T.final_accuracy(ok_train)
    s.paragraphs.append(
        "Every SPELA layer has its own fixed class vectors, so every layer is an exit: its read-out is "
        "the class whose vector has the largest cosine with the layer's output. Backprop is read out at "
        "its softmax output. Accuracy is measured on the test split after every epoch.")
    s.figures.append(F.learning_curves_figure(curves, main_precs))
    n_seeds = int(final["n_seeds"].min()) if len(final) else 0
    s.tables.append(Table("final_accuracy", "Final test accuracy per read-out", final,
                          (f"Mean, std, min and max over {n_seeds} seeds." if n_seeds >= 2 else
                           "One seed: the mean is that run's accuracy and there is no std."),
                          T.COLUMNS["final_accuracy"]))
    s.tables.append(Table("learning_curves", "Accuracy per epoch", curves, "", T.COLUMNS["learning_curves"],
                          show=False))
    failed = [r for r in train if r.get("error")]
    for r in failed:
        s.notes.append(Note("bad", f"run failed: {task_label(r['task'])}: {r['error']}"))
    return s


def _bits_section(config, ok_train) -> Section:
    s = Section("bits", "Accuracy against weight bits")
    if not ok_train:
        return Section.unavailable(s.id, s.title, "no training run finished")
    acc = T.accuracy_vs_bits(ok_train)
    s.paragraphs.append(_precision_text(config))
    if len(set(acc["weight_bits"])) > 1:
        s.figures.append(F.accuracy_vs_bits_figure(acc))
    else:
        s.notes.append(Note("info", "only one precision was trained; add more with --bits fp32,8,6,4"))
    # the same numbers as the accuracy section's table, sorted by precision: written, not shown twice
    s.tables.append(Table("accuracy_vs_bits", "Final accuracy by weight precision", acc, "",
                          T.COLUMNS["accuracy_vs_bits"], show=False))
    sat = T.saturations(ok_train)
    if len(sat):
        s.tables.append(Table("saturations", "Fixed-point saturation events", sat,
                              "Values clipped by a fixed-point format per training sample (all layers).",
                              T.COLUMNS["saturations"]))
    return s


def _precision_text(config: ReportConfig) -> str:
    """What each fixed-point precision means, read from the formats the runs used."""
    fixed = [b for b in config.bits if b != "fp32"]
    if not fixed:
        return "Every run is float32 throughout."
    p = precision_for(fixed[0])
    w, a, acc, cv, u = p.weight, p.activation, p.accumulator, p.class_vector, p.update
    return (f"Each precision is a separate bit-true training run: fixed-point weights of the given width "
            f"(range \u00b1{w.max_value + w.lsb:g}, spela_hw.PrecisionSpec.fixed), {a.bits}-bit activations "
            f"(range \u00b1{a.max_value + a.lsb:g}), {acc.bits}-bit accumulators, {cv.bits}-bit class vectors, and a "
            f"{u.bits}-bit update term rounded onto the weight grid ({u.rounding} rounding, seeded). fp32 is float32 "
            "throughout.")


def _data_scarce_section(config, results, ok_train) -> Section:
    s = Section("data_scarce", "Few-shot and 1-epoch comparison")
    fs_runs = [r for r in results if r["task"]["kind"] == "few_shot"]
    ok_fs = [r for r in fs_runs if not r.get("error")]
    s.paragraphs.append(
        "The SPELA paper claims it beats backprop when data is scarce (v2 section 4.2, Table 4) and after "
        "a single epoch. We test both claims on our own runs with the same network and precision for "
        "both rules. Few-shot: train and test are merged and re-split at random with the given fraction "
        f"held out (split seed = seed x 1000 + trial, as spela_hw.protocols.few_shot), trained for "
        f"{config.few_shot_epochs} epoch(s) at {precision_label(config.bits[0])}; accuracy at each rule's "
        "output on the held-out part.")
    if ok_fs:
        fs, fs_raw = T.few_shot(ok_fs)
        s.figures.append(F.few_shot_figure(fs))
        n_trials = int(fs["n_trials"].min()) if len(fs) else 0
        s.tables.append(Table("few_shot", "Few-shot accuracy", fs,
                              f"Mean and std over {n_trials} trials." if n_trials >= 2 else
                              "One trial: no std.", T.COLUMNS["few_shot"]))
        s.tables.append(Table("few_shot_runs", "Few-shot runs", fs_raw, "", T.COLUMNS["few_shot_runs"],
                              show=False))
        s.notes += T.few_shot_verdicts(fs)
    else:
        reason = "; ".join(sorted({r["error"] for r in fs_runs if r.get("error")})) or "no few-shot run configured"
        s.notes.append(Note("warn", f"few-shot comparison unavailable: {reason}"))
    if ok_train:
        one = T.one_epoch(ok_train)
        s.tables.append(Table("one_epoch", "Accuracy after one epoch and at the end", one,
                              "Epoch 1 of the main runs (identical to a 1-epoch run with the same seed).",
                              T.COLUMNS["one_epoch"]))
    s.tables.append(Table("published_reference", "Published numbers for context", T.published_reference(),
                          "Other data sizes, shapes and recipes than ours: context, not a target.",
                          T.COLUMNS["published_reference"]))
    if not ok_fs and not ok_train:
        s.status, s.reason = "unavailable", "no run finished"
    return s


def transfer_reason(config: ReportConfig, n_classes: int) -> str | None:
    """Why the transfer section does not run, or None when it does."""
    if config.transfer == "off":
        return "transfer = off"
    if n_classes < 4:
        return f"the protocol splits the classes in halves and {config.dataset} has {n_classes}"
    return None


def _transfer_section(config, results, n_classes) -> Section:
    from spela_hw.transfer import DEFAULT_EXTRACTOR

    from .hardware import transfer_head_costs

    s = Section("transfer", "On-device transfer learning")
    reason = transfer_reason(config, n_classes)
    if reason:
        return Section.unavailable(s.id, s.title, reason, status="not run")
    runs = [r for r in results if r["task"]["kind"] == "transfer"]
    ok = [r for r in runs if not r.get("error")]
    if not ok:
        why = "; ".join(sorted({r["error"] for r in runs if r.get("error")})) or "no transfer run finished"
        return Section.unavailable(s.id, s.title, why)
    s.paragraphs.append(
        f"The edge scenario: a feature extractor ({DEFAULT_EXTRACTOR}, backprop, float32, one epoch) is trained "
        f"off-device on the training images of the lower half of the classes of {config.dataset}, frozen, and "
        "its outputs quantised once to 8-bit codes; on the device a head learns the upper half of the classes "
        "from those codes (spela_hw.transfer, docs/transfer.md): SPELA, one layer to 34 dimensions per sample, "
        "and backprop, softmax regression at batch 32, each in float32 and in fixed point, for "
        f"{config.epochs} epoch(s). Memory is the head's training step from sim's ledger against the budget "
        f"({config.budget or 'none'}); energy per training sample is priced from closed-form counts on each "
        "preset, with all placeholders at their low and high ends. The frozen extractor's inference is not "
        "included (spela-hw size --net sizes it).")
    rows = []
    for run in ok:
        for rec in run["records"]:
            costs = transfer_head_costs(rec, config.presets, config.budget)
            for preset, e in costs["energy"].items():
                rows.append({"head": rec["head"], "precision": rec["precision_label"], "preset": preset,
                             "accuracy": rec["accuracy"], "trainable_parameters": rec["trainable_parameters"],
                             "train_memory_kib": costs["memory_bytes"] / 1024, "fits_budget": costs["fits_budget"],
                             "energy_nj": e.get("nominal_pj", float("nan")) / 1e3,
                             "energy_low_nj": e.get("low_pj", float("nan")) / 1e3,
                             "energy_high_nj": e.get("high_pj", float("nan")) / 1e3, "energy_note": e.get("error", "")})
    df = T.transfer(rows)
    n = int(df["n_seeds"].min())
    s.tables.append(Table("transfer", "Heads learned on device", df,
                          f"Mean and std over {n} seeds (one extractor each)." if n >= 2 else "One seed: no std.",
                          T.COLUMNS["transfer"], display=T.transfer_display(df)))
    s.notes += T.transfer_verdicts(df, config.presets[0])
    if len(ok) < len(runs):
        s.notes.append(Note("bad", f"{len(runs) - len(ok)} of {len(runs)} transfer run(s) failed; see Reproduce."))
    return s


def _memory_section(config, hw, main_precs, n_classes) -> Section:
    s = Section("memory", "Memory ledger and budget")
    if hw.ledger.empty:
        reason = "; ".join(sorted({e["error"] for e in hw.errors})) or "no run could be sized"
        return Section.unavailable(s.id, s.title, reason)
    preset = config.presets[0]
    bb = budget_bytes(config.budget)
    s.paragraphs.append(
        f"Peak memory of one training step (batch {config.batch_size}) and of inference on {preset}, "
        "itemised by tensor class and placed at a memory level by the hardware model (crossbar arrays, "
        "SRAM, NVM, registers, DRAM). The verdict checks the on-chip total against the budget "
        f"({config.budget or 'none given'}) and the preset's own capacities; rows that do not fit in "
        "SRAM spill to DRAM when the preset has one, which the verdict names.")
    led = hw.ledger[hw.ledger["preset"] == preset]
    fig_rows = led[led["precision"].isin(main_precs)]
    if len(fig_rows):
        s.figures.append(F.memory_figure(fig_rows, bb, f" ({preset})"))
    v = hw.verdicts
    s.tables.append(Table("memory_verdicts", "Does it fit?", v, "", T.COLUMNS["memory_verdicts"]))
    for _, row in v[(v["preset"] == preset) & v["precision"].isin(main_precs)].iterrows():
        kind = "ok" if row["verdict"] == "fits" else ("warn" if row["fits"] else "bad")
        if row["fits"] is None:
            kind = "info"
        s.notes.append(Note(kind, f"{row['rule']} {row['precision']} {row['phase']}: {row['verdict']}"
                                  f" ({row['on_chip_bytes'] / 1024:,.1f} KiB on chip)"
                                  + ("" if row["reasons"] == "within every limit" else f": {row['reasons']}")))
    try:
        bt = budget_tables(config.dims, config.rules, config.bits, preset, config.budget, n_classes)
        mvb = bt["memory_vs_batch"]
        s.tables.append(Table("memory_vs_batch_main", "Training memory against batch size",
                              mvb[mvb["precision"].isin(main_precs)],
                              "Closed-form ledger of one training step; rows that overflow the preset's SRAM "
                              "spill to DRAM when it has one.", T.COLUMNS["memory_vs_batch"], max_rows=40))
        s.tables.append(Table("memory_vs_batch", "Training memory against batch size (all precisions)", mvb, "",
                              T.COLUMNS["memory_vs_batch"], show=False))
        if len(bt["budget_solver"]):
            s.tables.append(Table("budget_solver", f"What fits {config.budget}", bt["budget_solver"], "",
                                  T.COLUMNS["budget_solver"]))
    except Exception as exc:  # noqa: BLE001 - the rest of the section stands without it
        s.notes.append(Note("warn", f"budget solver unavailable: {type(exc).__name__}: {exc}"))
    main = led[led["precision"].isin(main_precs)]
    s.tables.append(Table("memory_ledger_main", f"Ledger rows on {preset}", main.drop(columns=["preset"]), "",
                          T.COLUMNS["memory_ledger"], max_rows=80))
    s.tables.append(Table("memory_ledger", "Memory ledger (all presets and precisions)", hw.ledger, "",
                          T.COLUMNS["memory_ledger"], show=False))
    return s


def _energy_section(config, hw, main_precs) -> Section:
    s = Section("energy", "Energy and latency per training sample and per inference")
    if hw.energy.empty:
        reason = "; ".join(sorted({e["error"] for e in hw.errors})) or "no run could be priced"
        return Section.unavailable(s.id, s.title, reason)
    preset = config.presets[0]
    s.paragraphs.append(
        "Energy = the operations each run actually executed (its counts, per sample) x the energy of each "
        "hardware action on the preset (tables with sources in the Conventions section). Training energy "
        "includes the forward pass, the loss unit, the update and the weight writes; inference is one "
        "forward pass with the read-out at the output.")
    en = hw.energy[hw.energy["preset"] == preset]
    comp = T.energy_by_component(hw.energy)
    priced = [p for p in dict.fromkeys(en["precision"])]
    fig_precs = [p for p in main_precs if p in priced] or priced[:2]
    fig_data = comp[(comp["preset"] == preset) & comp["precision"].isin(fig_precs)]
    if len(fig_data):
        s.figures.append(F.energy_figure(fig_data, f" ({preset})"))
    summary = T.hw_summary(hw.summary)
    s.tables.append(Table("energy_summary", "Energy, latency and memory per design point", summary,
                          "Per sample; training at the configured batch size.", T.COLUMNS["energy_summary"],
                          display=T.short_notes(summary)))
    s.tables.append(Table("energy_by_component", "Energy by component", comp, "", T.COLUMNS["energy_by_component"],
                          show=False))
    s.tables.append(Table("energy_items", "Energy line items", hw.energy, "", T.COLUMNS["energy_items"], show=False))
    s.tables.append(Table("latency", "Latency by stage", hw.latency, "", T.COLUMNS["latency"], show=False))
    placeholders = sorted(set(hw.energy.loc[hw.energy["kind"] == "placeholder", "action"]))
    if placeholders:
        s.notes.append(Note("warn", "priced with placeholder numbers (no published source; replace with your "
                                    "own): " + ", ".join(placeholders)))
    unpriced: dict[tuple, list] = {}
    for e in hw.not_applicable + hw.errors:
        if e["what"] == "energy and arrays":
            unpriced.setdefault((e["preset"], e["precision"], e["error"]), []).append(e["rule"])
    for (preset_, prec, why), rules in unpriced.items():
        s.notes.append(Note("info", f"{preset_} {prec} ({', '.join(rules)}): not priced: {why}"))
    s.notes += T.energy_verdicts(hw.summary, preset)
    return s


def _crossbar_section(config, hw) -> Section:
    s = Section("crossbars", "Crossbar arrays per layer")
    if hw.tiling.empty:
        reason = ("no preset with crossbar arrays among " + ", ".join(config.presets)) if not hw.summary.empty \
            else "no run could be sized"
        return Section.unavailable(s.id, s.title, reason)
    s.paragraphs.append(
        "Each weight matrix is tiled onto R x C arrays with bit slicing (weight bits / cell bits columns "
        "per weight) and the preset's signed-weight encoding; utilisation is the share of the allocated "
        "cells that hold data. The counts do not depend on the rule, except that class vectors stored on "
        "arrays add matrices for SPELA.")
    t = hw.tiling
    first_rule = t["rule"].iloc[0]
    main = t[(t["preset"] == t["preset"].iloc[0]) & (t["rule"] == first_rule)]
    s.figures.append(F.crossbar_figure(main))
    s.tables.append(Table("crossbars", "Tiling per layer", t, "", T.COLUMNS["crossbars"], max_rows=40))
    return s


def _early_exit_section(config, hw, ok_train) -> Section:
    s = Section("early_exit", "Early exit: accuracy against energy")
    if hw.early_exit.empty:
        reason = "; ".join(e["error"] for e in hw.errors if e["what"].startswith("early exit")) or \
            ("needs a SPELA run priced on hardware" if "spela" in config.rules else "SPELA is not among the rules")
        if len(config.dims) < 3:
            reason = "the network has one layer: no earlier exit"
        return Section.unavailable(s.id, s.title, reason)
    preset = config.presets[0]
    s.paragraphs.append(
        "Stopping inference at layer k skips the layers after it. The confidence-exit policy is a package "
        "extension (not in the paper): a sample leaves at the first layer whose read-out margin "
        "(best minus second-best score, divided by the largest |score|) reaches the threshold; every "
        "layer it passes through reads out, and the last layer always answers. Energies are per inference "
        f"on {preset}.")
    ex = hw.early_exit[hw.early_exit["preset"] == preset]
    pol = hw.confidence_exit[hw.confidence_exit["preset"] == preset] if len(hw.confidence_exit) else hw.confidence_exit
    ref = hw.summary[(hw.summary["preset"] == preset) & (hw.summary["rule"] != "spela")]
    ref_pts = None
    if len(ref) and "infer_energy_pj" in ref:
        accs = T.final_output_accuracy(ok_train)
        ref_pts = ref.merge(accs, on=["rule", "precision"], how="inner")
        ref_pts = ref_pts[["rule", "precision", "accuracy", "infer_energy_pj"]].rename(
            columns={"infer_energy_pj": "energy_pj"}).dropna()
        ref_pts = ref_pts[ref_pts["precision"].isin(set(ex["precision"]))]
    s.figures.append(F.early_exit_figure(ex, pol, ref_pts))
    s.tables.append(Table("early_exit", "Exit at layer k", hw.early_exit, "", T.COLUMNS["early_exit"]))
    if len(hw.confidence_exit):
        s.tables.append(Table("confidence_exit", "Confidence-threshold exit policy (package extension)",
                              hw.confidence_exit, "", T.COLUMNS["confidence_exit"]))
    return s


def _spiking_section(config, results, spike_reason, hw) -> Section:
    s = Section("spiking", "Spiking SPELA (Brian2)")
    runs = [r for r in results if r["task"]["kind"] == "spike"]
    if not runs:
        return Section.unavailable(s.id, s.title, spike_reason or "no spiking run configured", status="not run")
    r = runs[0]
    if r.get("error"):
        return Section.unavailable(s.id, s.title, f"the spiking run failed: {r['error']}")
    s.paragraphs.append(
        f"SPELA's update run as three-factor synaptic plasticity of LIF neurons (mappings.brian2, "
        f"target {r['target']}): trained in spikes on the first {r['n_train']} training samples for one "
        f"epoch, tested on {r['n_test']} test samples. A short run to show the mapping learns and what it "
        "costs in spikes, not a tuned result. Energy per sample uses published per-event figures of "
        "neuromorphic chips; the conventions differ in what they include and are not comparable with "
        "each other or with the crossbar numbers above.")
    if r.get("build_s") is not None:
        s.paragraphs.append(
            f"Time: {r['seconds']:.0f} s in all, of which {r['build_s']:.0f} s to generate and compile the C++ "
            + ("project (kept in the build cache, so the next report recompiles only what changed)."
               if r.get("build_cached") else
               "project (built from scratch in a temporary folder: the build cache was unavailable)."))
    acc, counts = T.spiking_tables(r)
    s.tables.append(Table("spiking_accuracy", "Accuracy of the spike read-out", acc, "", T.COLUMNS["spiking_accuracy"]))
    s.tables.append(Table("spiking_counts", "Events per sample", counts, "", T.COLUMNS["spiking_counts"]))
    try:
        totals, items = price_spike_counts(r)
        s.tables.append(Table("spiking_energy", "Energy per sample by convention", pd.DataFrame(totals),
                              "Each convention prices only the events its chip reports; the rest are listed.",
                              T.COLUMNS["spiking_energy"]))
        s.tables.append(Table("spiking_energy_items", "Energy per sample by event", pd.DataFrame(items), "",
                              T.COLUMNS["spiking_energy_items"], show=False))
    except Exception as exc:  # noqa: BLE001
        s.notes.append(Note("warn", f"spiking energy unavailable: {type(exc).__name__}: {exc}"))
    return s


def _sources_section(config) -> Section:
    s = Section("sources", "Conventions and sources")
    try:
        src = sources_tables(config.presets, config.bits)
    except Exception as exc:  # noqa: BLE001
        return Section.unavailable(s.id, s.title, f"{type(exc).__name__}: {exc}")
    s.paragraphs.append(
        "Every hardware number with its origin. kind = published (a measured or reported value), fit (a "
        "fit to published values), derived (computed from others) or placeholder (no source: an "
        "assumption flagged in every report; replace it with your own number). Digital energies are "
        "45 nm values scaled to the preset's node and supply by the named scaling convention.")
    try:
        from spela_hw import DATASETS

        info = DATASETS[config.dataset]
        s.paragraphs.append(f"Data: {info.title} ({info.homepage}). {info.license}")
    except (KeyError, ImportError, AttributeError):
        s.paragraphs.append(f"Data: {config.dataset}.")
    s.tables.append(Table("presets", "Hardware presets and their sources", src["presets"], "",
                          T.COLUMNS["presets"]))
    s.tables.append(Table("conventions", "Convention switches in force", src["conventions"], "",
                          T.COLUMNS["conventions"], max_rows=80))
    s.tables.append(Table("action_costs", "Energy per hardware action", src["action_costs"], "",
                          T.COLUMNS["action_costs"], max_rows=80))
    s.tables.append(Table("energy_tables", "Shipped energy tables", src["energy_tables"], "",
                          T.COLUMNS["energy_tables"], max_rows=80))
    s.paragraphs.append(
        "Algorithm facts come from the SPELA paper (A. Somasundaram, P. Mishra, A. Borthakur, \"Learning Using "
        "a Single Forward Pass\", arXiv 2402.09769, TMLR 2025) and its official code "
        "(BorthakurAyonIITG/SPELA-TMLR-2025), as summarised in docs/spela.md; accounting "
        "rules for memory follow "
        "docs/hardware.md §9 (backprop stores every layer's input for the backward pass; SPELA keeps "
        "one layer's input and output in flight plus the class vectors).")
    return s


def _reproduce_section(config, argv, results, hw, t_runs, failures) -> Section:
    s = Section("reproduce", "Reproduce: configuration, seeds, versions")
    cmd = "spela-hw " + " ".join(argv) if argv is not None else "spela-hw report --config config.toml"
    s.paragraphs.append(f"Command: {cmd}")
    s.paragraphs.append("The exact configuration is in config.toml next to this page: "
                        "spela-hw report --config config.toml --out <dir> recomputes every number. Seeds drive "
                        "initialisation, class vectors, shuffling and stochastic rounding; fixed-point runs "
                        "are bit-exact across machines.")
    cfg = pd.DataFrame([{"setting": k, "value": json.dumps(v) if not isinstance(v, str) else v}
                        for k, v in config.to_dict().items()])
    s.tables.append(Table("configuration", "Configuration", cfg, "", T.COLUMNS["configuration"], max_rows=80))
    vers = pd.DataFrame([{"package": k, "version": v} for k, v in {**package_versions(), **{
        f"machine.{k}": str(v) for k, v in machine().items()}}.items()])
    s.tables.append(Table("versions", "Package versions and machine", vers, "", T.COLUMNS["versions"]))
    runs = T.runs_table(results)
    s.tables.append(Table("runs", "Every run", runs, "Wall-clock seconds include evaluation.", T.COLUMNS["runs"],
                          max_rows=80))
    for f in failures:
        s.notes.append(Note("bad", f"failed: {task_label(f['task'])}: {f['error']}"))
    for e in hw.errors:
        s.notes.append(Note("warn", f"not sized: {e['preset']} {e['rule']} {e['precision']} ({e['what']}): "
                                    f"{e['error']}"))
    return s
