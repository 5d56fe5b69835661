"""Fault campaign: kill -9 at random moments, and a catalogue of bad inputs (issue 13).

``python -m bench.faults`` measures the figures of the reliability section
(``docs/RELIABILITY.md``) on the checkout it is run from:

* **kill campaign** (``--only kill``): ``spela-hw train``, ``sweep`` and ``report`` run on tiny
  configurations; each is SIGKILLed after a seeded delay drawn uniformly within the duration of an
  uninterrupted run, then resumed (``train --resume``, ``sweep --resume``) or re-run (``report``)
  to completion, and the result is compared with the uninterrupted run: nothing lost, nothing
  duplicated, bit-identical weights, no orphan worker processes, no stray temporary files;
* **bad-input catalogue** (``--only badinput``): every bad input named in issue 13 runs as a
  subprocess and must end with a non-zero exit, no Python traceback, and a message that names the
  offending file, option or field.

Markdown tables go to stdout (and to ``--write FILE``, atomically), progress to stderr. The exit
status is 1 when any invariant or case fails. Every command runs in a fresh session; the harness
only ever kills processes of the sessions it started. Kernels are compiled once into a numba cache
private to the campaign (``--numba-cache default`` keeps the environment's cache instead).

::

    python -m bench.faults                          # 20 kills per command + every bad input
    python -m bench.faults --kills 3 --only kill --commands train
    python -m bench.faults --only badinput --cases model-,toml
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
ENTRY = "import sys; from reports.cli import main; sys.exit(main())"
TRACEBACK = "Traceback (most recent call last)"
#: Address-space cap of bad-input runs: an absurd size must fail, not eat the shared machine.
BAD_INPUT_MEMORY = 4 << 30
BAD_INPUT_TIMEOUT = 90.0

# -- tiny configurations of the kill campaign ------------------------------------------------------

#: 8-bit weights (stochastic rounding: exact resume needs the rounding stream restored), about 4 s
#: for 8 epochs of the 8,000 bundled training samples (4 epochs with --quick).
TRAIN_EPOCHS = {False: 8, True: 4}


def train_args(epochs: int) -> tuple:
    return ("train", "--dims", "784,128,10", "--weight-bits", "8", "--epochs", str(epochs), "--seed", "0")

#: 12 points in 6 training runs; fp32 on the crossbar preset is recorded as not applicable.
SWEEP_TOML = """\
[sweep]
dataset = "mnist-bundled"
epochs = 1
train_samples = 500
test_samples = 200
energy_samples = 20
budget = "256 KB"

[grid]
dims = [[784, 32, 34]]
bits = ["fp32", 8, 4]
presets = ["sram-cim-22nm", "mcu-256kb"]
rules = ["spela", "backprop"]
seeds = [0]
"""
#: Sweep metrics that do not depend on timing (compared with the uninterrupted sweep).
SWEEP_FIELDS = ("accuracy", "layer_accuracy", "train_energy_pj", "infer_energy_pj",
                "train_on_chip_bytes", "train_peak_bytes", "infer_peak_bytes", "arrays")
REPORT_TOML = """\
dims = [784, 32, 10]
bits = ["fp32", 8]
rules = ["spela", "backprop"]
epochs = 1
seeds = [0]
train_samples = 500
test_samples = 200
energy_samples = 20
few_shot_trials = 0
spiking = "off"
workers = 2
"""
#: Report tables that do not depend on timing (compared with the uninterrupted report).
REPORT_TABLES = ("final_accuracy.csv", "energy_summary.csv")


def say(msg: str) -> None:
    print(f"[faults] {msg}", file=sys.stderr, flush=True)


# -- running commands ------------------------------------------------------------------------------

@dataclass
class Run:
    """One finished (or killed) command."""

    rc: int | None          # None: killed by the harness (or timed out)
    killed: bool            # the kill was delivered while the command ran
    timed_out: bool
    seconds: float
    stdout: str
    stderr: str
    orphans: int            # processes of its session still alive after the grace period

    def last_line(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        return lines[-1][:200] if lines else ""


class Runner:
    """Starts ``spela-hw`` commands of this checkout, each in a session of its own."""

    def __init__(self, work: Path, numba_cache: str, grace: float):
        self.work, self.grace = work, grace
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        if numba_cache != "default":
            self.env["NUMBA_CACHE_DIR"] = numba_cache

    def start(self, args, cwd: Path, memory: int | None = None, stderr=None) -> tuple[subprocess.Popen, Path]:
        """Start ``spela-hw ARGS`` in ``cwd``; stdout and stderr go to files in the work folder."""
        cwd.mkdir(parents=True, exist_ok=True)
        logs = Path(tempfile.mkdtemp(prefix="log-", dir=self.work))
        preexec = (lambda: resource.setrlimit(resource.RLIMIT_AS, (memory, memory))) if memory else None
        with open(logs / "stdout", "wb") as out, open(logs / "stderr", "wb") as err:
            proc = subprocess.Popen([sys.executable, "-c", ENTRY, *map(str, args)], cwd=cwd, env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err if stderr is None else stderr,
                                    start_new_session=True, preexec_fn=preexec)
        return proc, logs

    def finish(self, proc: subprocess.Popen, logs: Path, t0: float, kill_after: float | None = None,
               timeout: float = 600.0) -> Run:
        """Wait for ``proc`` (SIGKILL it after ``kill_after`` s), then count its surviving session."""
        killed = timed_out = False
        try:
            proc.wait(timeout=kill_after if kill_after is not None else timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # kill -9 of the command's own process only, as a user would
            proc.wait()
            killed, timed_out = kill_after is not None, kill_after is None
        seconds = time.perf_counter() - t0
        orphans = reap_session(proc.pid, self.grace)
        read = lambda name: (logs / name).read_text(errors="replace") if (logs / name).exists() else ""  # noqa: E731
        run = Run(None if killed or timed_out else proc.returncode, killed, timed_out, seconds,
                  read("stdout"), read("stderr"), orphans)
        shutil.rmtree(logs, ignore_errors=True)
        return run

    def run(self, args, cwd: Path, kill_after: float | None = None, timeout: float = 600.0,
            memory: int | None = None) -> Run:
        t0 = time.perf_counter()
        proc, logs = self.start(args, cwd, memory)
        return self.finish(proc, logs, t0, kill_after, timeout)


def session_members(sid: int) -> list[int]:
    """Live processes (zombies excluded) of session ``sid``."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        state, _ppid, _pgrp, session = stat[stat.rindex(")") + 2:].split()[:4]
        if int(session) == sid and state not in "ZX":
            pids.append(int(entry.name))
    return pids


def reap_session(sid: int, grace: float) -> int:
    """Processes of session ``sid`` still alive after ``grace`` s (then SIGKILLed, by pid)."""
    deadline = time.monotonic() + grace
    while (left := session_members(sid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(50):  # wait until the orphans are gone: they hold hundreds of MB each
        if not session_members(sid):
            break
        time.sleep(0.1)
    return len(left)


# -- the kill campaign -------------------------------------------------------------------------------

@dataclass
class Tally:
    """Figures of one command's kill campaign."""

    command: str
    kills: int = 0
    missed: int = 0          # the command ended before its kill moment (not counted as a kill)
    resumed: int = 0         # resumes / re-runs that completed with exit 0 (train re-runs without --resume when killed before its first checkpoint)
    lost: int = 0
    duplicated: int | None = 0
    orphans: int = 0
    stray: int = 0
    mismatches: int = 0
    durations: dict = field(default_factory=dict)   # uninterrupted run per variant (s)
    landed: Counter = field(default_factory=Counter)  # what each kill interrupted
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    def note(self, msg: str) -> None:
        """A finding about the current kill (numbered from 1)."""
        self.notes.append(f"{self.command} kill {self.kills}: {msg}")
        say(f"  ! {msg}")

    @property
    def failed(self) -> bool:
        return bool(self.kills - self.resumed or self.lost or self.duplicated or self.orphans or self.stray
                    or self.mismatches)


def stray_files(folder: Path) -> list[Path]:
    """Temporary files and staging folders left under ``folder``."""
    if not folder.exists():
        return []
    found = list(folder.rglob("*.tmp"))
    found += [p for p in folder.rglob(".*") if p.is_dir() and re.search(r"\.(partial|old)-\d+$", p.name)]
    return found


def html_complete(path: Path) -> bool:
    try:
        return path.read_text(errors="replace").rstrip().endswith("</html>")
    except OSError:
        return False


def timed_reference(runner: Runner, args, out: Path, warm_up: bool = True) -> float:
    """Run ``args`` (which write ``out``) uninterrupted; its duration.

    With ``warm_up`` it runs twice and the second run is timed: the first compiles the kernels or
    loads them from the cache.
    """
    for _ in range(2 if warm_up else 1):
        if out.is_dir():
            shutil.rmtree(out)
        elif out.exists():
            out.unlink()
        run = runner.run(args, out.parent)
        if run.rc != 0:
            raise SystemExit(f"uninterrupted run failed ({run.rc}): {' '.join(map(str, args))}\n{run.stderr[-2000:]}")
    return run.seconds


def kill_loop(tally: Tally, n: int, one_kill: Callable[[int], None]) -> None:
    """Call ``one_kill(i)`` until ``n`` kills were delivered (at most 3n attempts)."""
    t0 = time.perf_counter()
    i = 0
    while tally.kills < n and i < 3 * n:
        one_kill(i)
        i += 1
    tally.seconds = time.perf_counter() - t0


def read_model(path: Path) -> tuple[dict, dict]:
    """Arrays and metadata of a model file, without the estimator (no validation, no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop("meta")))


def _untimed(meta: dict) -> dict:
    """Metadata without wall-clock times, the class-vector seed resolved."""
    meta = dict(meta)
    meta["history"] = [{k: v for k, v in h.items() if "seconds" not in k} for h in meta.get("history", [])]
    # A fresh fit stores the hyper-parameter None ("derive it"), a resumed one the derived value.
    params = meta.get("params")
    if isinstance(params, dict) and params.get("class_vector_seed") is None:
        meta["params"] = {**params, "class_vector_seed": meta.get("class_vector_seed")}
    return meta


def model_differences(path: Path, ref: Path) -> list[str]:
    """What differs between two model files (arrays bit for bit, metadata without timings)."""
    a, meta_a = read_model(path)
    b, meta_b = read_model(ref)
    diffs = [f"array {k} missing" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes():
            diffs.append(f"array {k} differs")
    ua, ub = _untimed(meta_a), _untimed(meta_b)
    diffs += [f"meta {k} differs" for k in sorted(set(ua) | set(ub)) if ua.get(k) != ub.get(k)]
    return diffs


def train_campaign(runner: Runner, n: int, rng: random.Random, work: Path, quick: bool = False) -> Tally:
    from spela_hw.errors import SpelaError
    from spela_hw.io import load_model

    tally = Tally("train")
    epochs = TRAIN_EPOCHS[quick]
    train = train_args(epochs)
    folder = work / "train"
    ref = folder / "reference" / "m.npz"
    say("train: uninterrupted reference run")
    duration = timed_reference(runner, [*train, "--out", ref], ref)
    tally.durations[f"8-bit 784-128-10, {epochs} epochs"] = duration

    def one_kill(i: int) -> None:
        d = folder / f"kill-{i}"
        out = d / "m.npz"
        delay = rng.uniform(0, duration)
        run = runner.run([*train, "--out", out], d, kill_after=delay)
        if not run.killed:
            tally.missed += 1
            return
        tally.kills += 1
        tally.orphans += run.orphans
        if out.exists():
            try:
                tally.landed[f"after epoch {read_model(out)[1]['epochs_done']}"] += 1
            except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is a finding
                tally.lost += 1
                tally.note(f"checkpoint unreadable after the kill: {exc}")
        else:
            tally.landed["before the first checkpoint"] += 1
        # No checkpoint yet: --resume refuses (by design), so the user starts the run again.
        again = runner.run([*train, "--out", out, *(["--resume"] if out.exists() else [])], d)
        tally.orphans += again.orphans
        strays = stray_files(d)
        tally.stray += len(strays)
        if strays:
            tally.note(f"stray files {[p.name for p in strays]}")
        say(f"train kill {tally.kills}/{n} at {delay:.2f} s; resume exit {again.rc}")
        if again.rc != 0:
            tally.note(f"resume exited {again.rc}: {again.last_line()}")
            return
        tally.resumed += 1
        try:
            model = load_model(out)
        except (SpelaError, OSError) as exc:
            tally.lost += 1
            tally.note(f"resumed model does not load: {exc}")
            return
        history = [h.get("epoch") for h in model.history_]
        if model.epochs_done_ < epochs:
            tally.lost += 1
            tally.note(f"resumed model has {model.epochs_done_} of {epochs} epochs")
        if len(history) != len(set(history)) or model.epochs_done_ > epochs:
            tally.duplicated += 1
            tally.note(f"history epochs {history}")
        diffs = model_differences(out, ref)
        if diffs:
            tally.mismatches += 1
            tally.note("differs from the uninterrupted run: " + ", ".join(diffs))

    kill_loop(tally, n, one_kill)
    return tally


def sweep_records(path: Path) -> tuple[list[dict], int]:
    """Records of a results file and the number of lines that are not JSON objects."""
    records, corrupt = [], 0
    if not path.exists():
        return records, corrupt
    for line in path.read_bytes().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            corrupt += 1
            continue
        if isinstance(rec, dict) and isinstance(rec.get("point_id"), str):
            records.append(rec)
        else:
            corrupt += 1
    return records, corrupt


def _deterministic(rec: dict) -> dict:
    m = rec.get("metrics") or {}
    return {"status": rec.get("status"), **{k: m.get(k) for k in SWEEP_FIELDS}}


def sweep_campaign(runner: Runner, n: int, rng: random.Random, work: Path, quick: bool = False) -> Tally:
    tally = Tally("sweep")
    folder = work / "sweep"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "sweep.toml"
    config.write_text(SWEEP_TOML, encoding="utf-8")
    variants = {w: ["sweep", config, "--workers", str(w)] for w in (2, 1)}
    refs = {}
    for k, (w, args) in enumerate(variants.items()):
        say(f"sweep: uninterrupted reference run, {w} worker(s)")
        refs[w] = folder / f"reference-{w}"
        tally.durations[f"{w} worker(s)"] = timed_reference(runner, [*args, "--out", refs[w]], refs[w],
                                                            warm_up=k == 0)
    reference = {r["point_id"]: _deterministic(r) for r in sweep_records(refs[1] / "results.jsonl")[0]}
    other = {r["point_id"]: _deterministic(r) for r in sweep_records(refs[2] / "results.jsonl")[0]}
    if other != reference:
        tally.notes.append("sweep reference: the uninterrupted sweeps with 1 and 2 workers differ")
        tally.mismatches += 1

    def one_kill(i: int) -> None:
        w = (2, 1)[i % 2]
        d = folder / f"kill-{i}"
        out = d / "out"
        delay = rng.uniform(0, tally.durations[f"{w} worker(s)"])
        run = runner.run([*variants[w], "--out", out], d, kill_after=delay)
        if not run.killed:
            tally.missed += 1
            return
        tally.kills += 1
        tally.orphans += run.orphans
        if run.orphans:
            tally.note(f"{run.orphans} worker process(es) outlived the killed sweep ({w} workers)")
        done = len(sweep_records(out / "results.jsonl")[0])
        tally.landed[f"{w} worker(s), " + ("no result yet" if not done else "all points written"
                                            if done >= len(reference) else "some points written")] += 1
        again = runner.run([*variants[w], "--out", out, "--resume"], d)
        tally.orphans += again.orphans
        strays = stray_files(d)
        tally.stray += len(strays)
        if strays:
            tally.note(f"stray files {[str(p.relative_to(d)) for p in strays]}")
        say(f"sweep kill {tally.kills}/{n} ({w} workers) at {delay:.2f} s; resume exit {again.rc}")
        if again.rc != 0:
            tally.note(f"resume exited {again.rc}: {again.last_line()}")
            return
        tally.resumed += 1
        records, corrupt = sweep_records(out / "results.jsonl")
        counts = Counter(r["point_id"] for r in records)
        missing = set(reference) - set(counts)
        extra = sum(c - 1 for c in counts.values())
        tally.lost += len(missing)
        tally.duplicated += extra
        if missing or extra:
            tally.note(f"{len(missing)} point(s) missing, {extra} duplicate record(s) "
                          f"({len(records)} records for {len(reference)} points)")
        latest = {r["point_id"]: _deterministic(r) for r in records}
        wrong = [pid for pid in latest if latest[pid] != reference.get(pid)]
        bad = len(wrong) + corrupt + (not html_complete(out / "report" / "index.html"))
        if bad:
            tally.mismatches += bad
            tally.note(f"{len(wrong)} record(s) differ from the uninterrupted sweep, {corrupt} corrupt "
                          f"line(s), report complete: {html_complete(out / 'report' / 'index.html')}")

    kill_loop(tally, n, one_kill)
    return tally


def report_campaign(runner: Runner, n: int, rng: random.Random, work: Path, quick: bool = False) -> Tally:
    tally = Tally("report", duplicated=None)
    folder = work / "report"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "report.toml"
    config.write_text(REPORT_TOML, encoding="utf-8")
    ref = folder / "reference" / "rep"
    say("report: uninterrupted reference run")
    duration = timed_reference(runner, ["report", "--config", config, "--out", ref], ref)
    tally.durations["2 workers"] = duration
    ref_tables = {t: (ref / "tables" / t).read_bytes() for t in REPORT_TABLES}

    def one_kill(i: int) -> None:
        parent = folder / f"kill-{i}"
        out = parent / "rep"
        existed = i % 2 == 1  # every other kill overwrites an earlier, complete report
        if existed:
            shutil.copytree(ref, out)
        delay = rng.uniform(0, duration)
        args = ["report", "--config", config, "--out", out]
        run = runner.run(args, parent, kill_after=delay)
        if not run.killed:
            tally.missed += 1
            return
        tally.kills += 1
        tally.orphans += run.orphans
        if run.orphans:
            tally.note(f"{run.orphans} worker process(es) outlived the killed report")
        staged = any(re.search(r"\.partial-\d+$", p.name) for p in parent.iterdir())
        tally.landed[("over an old report" if existed else "no report yet")
                     + (", staging folder present" if staged else "")] += 1
        if existed and not out.exists():
            tally.lost += 1
            tally.note("the previous report was gone after the kill")
        elif out.exists() and not html_complete(out / "index.html"):
            tally.lost += 1
            tally.note("a half-written report was in place after the kill")
        again = runner.run(args, parent)
        tally.orphans += again.orphans
        strays = stray_files(parent)
        tally.stray += len(strays)
        if strays:
            tally.note(f"stray files {[str(p.relative_to(parent)) for p in strays]}")
        say(f"report kill {tally.kills}/{n} at {delay:.2f} s; re-run exit {again.rc}")
        if again.rc != 0:
            tally.note(f"re-run exited {again.rc}: {again.last_line()}")
            return
        tally.resumed += 1
        if not html_complete(out / "index.html"):
            tally.lost += 1
            tally.note("index.html missing or incomplete after the re-run")
            return
        try:
            json.loads((out / "manifest.json").read_text())
            differ = [t for t in REPORT_TABLES if (out / "tables" / t).read_bytes() != ref_tables[t]]
        except (OSError, ValueError) as exc:
            differ = [f"manifest/tables unreadable: {exc}"]
        if differ:
            tally.mismatches += 1
            tally.note(f"differs from the uninterrupted report: {differ}")

    kill_loop(tally, n, one_kill)
    return tally


CAMPAIGNS = {"train": train_campaign, "sweep": sweep_campaign, "report": report_campaign}


def kill_table(tallies: list[Tally]) -> str:
    rows = [["command", "kills", "completed resumes", "lost", "duplicated", "orphan processes",
             "stray temp files", "mismatches", "uninterrupted run (s)", "campaign (s)"]]
    for t in tallies:
        durations = "; ".join(f"{k}: {v:.1f}" for k, v in t.durations.items())
        rows.append([f"`{t.command}`", t.kills, t.resumed, t.lost,
                     "–" if t.duplicated is None else t.duplicated, t.orphans, t.stray, t.mismatches,
                     durations, f"{t.seconds:.0f}"])
    lines = [_table(rows), ""]
    for t in tallies:
        landed = ", ".join(f"{k}: {v}" for k, v in sorted(t.landed.items()))
        lines.append(f"- `{t.command}`: kills landed {landed or 'nowhere'}"
                     + (f"; {t.missed} run(s) ended before their kill moment (not counted)" if t.missed else ""))
    if any(t.notes for t in tallies):
        lines += ["", "Findings:", ""] + [f"- {note}" for t in tallies for note in t.notes]
    return "\n".join(lines)


# -- the bad-input catalogue -------------------------------------------------------------------------

@dataclass
class Outcome:
    rc: int | None
    traceback: bool
    named: bool
    ok: bool
    why: str = ""


@dataclass
class Case:
    """One bad input: ``spela-hw ARGV`` must fail with a message matching every ``expect`` regex.

    ``{d}`` in an argument is the case's folder, ``{fx}`` the shared fixtures' folder. ``setup``
    prepares files in the folder; ``forbid`` regexes must not appear on stderr (e.g. work done
    before the error); ``check(d, run)`` returns a failure reason or ``None``. ``custom(ctx, d)``
    replaces the whole run for cases that are not one command.
    """

    name: str
    what: str
    argv: tuple = ()
    expect: tuple = ()
    setup: Callable | None = None
    forbid: tuple = ()
    check: Callable | None = None
    custom: Callable | None = None
    timeout: float = BAD_INPUT_TIMEOUT


@dataclass
class Ctx:
    runner: Runner
    fixtures: Path


TINY = ("--dims", "784,16,10", "--epochs", "1", "--limit-train", "200")
MODEL_BASE = ("--dims", "784,16,10", "--limit-train", "200", "--seed", "0")  # the fixture model's options
UTF8 = r"utf-?8"


def judge(run: Run, expect, forbid=()) -> Outcome:
    """A rejection: non-zero exit, no traceback, every ``expect`` regex in the error message.

    The message is stderr from its first "error" on (progress lines before it do not count).
    """
    tb = TRACEBACK in run.stderr
    start = run.stderr.lower().find("error")
    message = run.stderr[start:] if start >= 0 else run.stderr
    named = all(re.search(p, message, re.I) for p in expect)
    why = []
    if run.timed_out:
        why.append("timed out")
    elif run.rc == 0:
        why.append("exit 0")
    elif run.rc is None or run.rc < 0:
        why.append(f"died of signal {-(run.rc or 0)}")
    if tb:
        why.append("traceback: " + run.last_line())
    if not named:
        missing = [p for p in expect if not re.search(p, message, re.I)]
        why.append(f"message lacks {missing}: {run.last_line()!r}")
    for p in forbid:
        if re.search(p, run.stderr, re.I):
            why.append(f"stderr shows {p!r}")
    return Outcome(run.rc, tb, named, not why, "; ".join(why))


def _edit_model(edit: Callable[[dict, dict], None]) -> Callable:
    """Setup: ``{d}/bad.npz`` = the fixture model with ``edit(meta, arrays)`` applied."""
    def setup(d: Path, fx: Path) -> None:
        arrays, meta = read_model(fx / "m.npz")
        edit(meta, arrays)
        np.savez(d / "bad.npz", meta=np.array(json.dumps(meta)), **arrays)
    return setup


def _drop(*keys) -> Callable[[dict, dict], None]:
    def edit(meta, arrays):
        for key in keys:
            target = meta["params"] if key in meta["params"] else meta
            target.pop(key)
    return edit


def _set(key, value) -> Callable[[dict, dict], None]:
    def edit(meta, arrays):
        (meta["params"] if key in meta["params"] else meta)[key] = value
    return edit


def _write(name: str, data: bytes | str) -> Callable:
    def setup(d: Path, fx: Path) -> None:
        (d / name).write_bytes(data.encode() if isinstance(data, str) else data)
    return setup


def _bundled_copy(damage: Callable[[Path], None] | None = None, drop: str | None = None) -> Callable:
    """Setup: ``{d}/data`` = the bundled MNIST files, one damaged or dropped."""
    def setup(d: Path, fx: Path) -> None:
        from spela_hw import datasets

        src = Path(datasets.__file__).parent / "bundled"
        (d / "data").mkdir()
        for f in src.glob("*.gz"):
            if f.name != drop:
                shutil.copy(f, d / "data" / f.name)
        if damage:
            damage(d / "data")
    return setup


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _copy_fixture(name: str = "m.npz") -> Callable:
    def setup(d: Path, fx: Path) -> None:
        shutil.copy(fx / name, d / name)
    return setup


def _model_loads(name: str) -> Callable:
    """Check: a model file left by the run (if any) must load: the last good checkpoint."""
    def check(d: Path, run: Run) -> str | None:
        if not (d / name).exists():
            return None
        from spela_hw.errors import SpelaError
        from spela_hw.io import load_model

        try:
            load_model(d / name)
        except SpelaError as exc:
            return f"the checkpoint left behind does not load: {exc}"
        return None
    return check


def _out_without_npz(ctx: Ctx, d: Path) -> Outcome:
    """``--out mymodel``: refused by name, or the path printed is the file written, and it works."""
    run = ctx.runner.run(["train", *TINY, "--out", "mymodel", "--json"], d)
    if run.rc != 0:
        return judge(run, [r"out"])
    try:
        model = json.loads(run.stdout.strip().splitlines()[-1])["model"]
    except (ValueError, KeyError, IndexError):
        return Outcome(0, False, False, False, "no JSON with the model path on stdout")
    if not (d / model).is_file():
        return Outcome(0, False, False, False, f"the JSON says the model is {model!r}, which does not exist")
    ev = ctx.runner.run(["evaluate", model], d)
    if ev.rc != 0:
        return Outcome(0, False, True, False, f"evaluate {model} exited {ev.rc}: {ev.last_line()}")
    again = ctx.runner.run(["train", *TINY[:2], "--epochs", "2", *TINY[4:], "--out", "mymodel", "--resume"], d)
    if again.rc != 0 or "resuming" not in again.stderr:
        return Outcome(0, False, True, False, f"--resume --out mymodel did not resume: {again.last_line()}")
    return Outcome(0, False, True, True)


def _used_or_refused(argv, name: str, used: Callable[[dict], bool]) -> Callable:
    """An option a protocol ignored: now refused by name, or used (every JSON record shows it)."""
    def custom(ctx: Ctx, d: Path) -> Outcome:
        run = ctx.runner.run([*argv, "--json"], d, timeout=BAD_INPUT_TIMEOUT, memory=BAD_INPUT_MEMORY)
        if run.rc != 0:
            return judge(run, [name])
        try:
            records = json.loads(run.stdout.strip().splitlines()[-1])["records"]
        except (ValueError, KeyError, IndexError):
            return Outcome(0, False, False, False, "no JSON records on stdout")
        ok = bool(records) and all(used(r) for r in records)
        return Outcome(0, False, ok, ok, "" if ok else f"exit 0 but the records do not show it: {records[:1]}")
    return custom


def _resume_reports_model_seed(ctx: Ctx, d: Path) -> Outcome:
    """``--resume`` without ``--seed`` of a seed-3 model: the JSON reports seed 3 (or a named refusal)."""
    shutil.copy(ctx.fixtures / "m3.npz", d / "m3.npz")
    run = ctx.runner.run(["train", "--dims", "784,16,10", "--limit-train", "200", "--epochs", "2",
                          "--resume", "--out", "m3.npz", "--json"], d)
    if run.rc != 0:
        return judge(run, [r"seed"])
    try:
        seed = json.loads(run.stdout.strip().splitlines()[-1])["config"]["seed"]
    except (ValueError, KeyError, IndexError):
        return Outcome(0, False, False, False, "no JSON on stdout")
    return Outcome(0, False, True, seed == 3, "" if seed == 3 else f"JSON reports seed {seed}, the model's is 3")


def _stderr_closed(ctx: Ctx, d: Path) -> Outcome:
    """``train ... 2>&1 | head -1``: a closed stderr must not stop training."""
    t0 = time.perf_counter()
    proc, logs = ctx.runner.start(["train", "--dims", "784,16,10", "--epochs", "4", "--limit-train", "200",
                                   "--out", "m.npz"], d, stderr=subprocess.PIPE)
    proc.stderr.close()  # the reader went away
    run = ctx.runner.finish(proc, logs, t0, timeout=BAD_INPUT_TIMEOUT)
    try:
        epochs = read_model(d / "m.npz")[1]["epochs_done"] if (d / "m.npz").exists() else 0
    except (OSError, ValueError, KeyError) as exc:
        epochs = f"unreadable ({exc})"
    ok = run.rc == 0 and epochs == 4
    return Outcome(run.rc, False, True, ok, "" if ok else f"exit {run.rc}, model has {epochs} of 4 epochs")


def _two_reports_one_out(ctx: Ctx, d: Path) -> Outcome:
    """Two ``report --out SAME`` at once: one writes the report, the other is refused by name.

    The issue asks for a lock "as sweep does": ``sweep`` refuses a second writer at once
    ("another sweep is writing to ..."). Both succeeding means one report was silently replaced.
    """
    (d / "r.toml").write_text(REPORT_TOML.replace("workers = 2", "workers = 1"), encoding="utf-8")
    args = ["report", "--config", "r.toml", "--out", "rep"]
    t0 = time.perf_counter()
    started = [ctx.runner.start(args, d) for _ in range(2)]
    runs = [ctx.runner.finish(p, logs, t0, timeout=300) for p, logs in started]
    refused = [judge(r, [r"rep", r"another|lock|in use|busy"]) for r in runs if r.rc != 0]
    why = [o.why for o in refused if not o.ok]
    if sum(r.rc == 0 for r in runs) != 1 or len(refused) != 1:
        why.append(f"exit codes {[r.rc for r in runs]}: expected one report written and one refused")
    if not html_complete(d / "rep" / "index.html"):
        why.append("no complete index.html")
    strays = stray_files(d)
    if strays:
        why.append(f"left {[p.name for p in strays]}")
    tb = any(TRACEBACK in r.stderr for r in runs)
    named = all(o.named for o in refused) and bool(refused)
    return Outcome(max(r.rc if r.rc is not None else -9 for r in runs), tb, named, not why, "; ".join(why))


def _huge_grid() -> str:
    seeds = ", ".join(map(str, range(2000)))
    batches = ", ".join(map(str, range(1, 2001)))
    epochs = ", ".join(map(str, range(1, 1001)))
    return (f'[sweep]\nout = "big"\n[grid]\ndims = [[784, 16, 10]]\nbits = [8]\npresets = ["mcu-256kb"]\n'
            f'rules = ["spela"]\nseeds = [{seeds}]\nbatch_size = [{batches}]\nepochs = [{epochs}]\n')


NON_UTF8 = b'dims = [784, 32, 34]\n# caf\xe9 \xff\xfe\n'
HW_NON_UTF8 = b'base = "mcu-256kb"\n# caf\xe9 \xff\n'


def catalogue() -> list[Case]:
    """Every bad input of issue 13 (and the basics it says already work), with what must be named."""
    bad_model = ("evaluate", "{d}/bad.npz")
    cases = [
        # -- CLI numbers and options (issue 13, part 2)
        Case("train-dims-text", "--dims 784,abc,10", ("train", *TINY[2:], "--dims", "784,abc,10"), ("dims",)),
        Case("train-limit-train-0", "--limit-train 0", ("train", *TINY[:4], "--limit-train", "0"),
             (r"limit[-_]train",)),
        Case("train-limit-train-neg", "--limit-train -5", ("train", *TINY[:4], "--limit-train", "-5"),
             (r"limit[-_]train",)),
        Case("train-weight-bits-0", "--weight-bits 0", ("train", *TINY, "--weight-bits", "0"), (r"weight[-_]bits",)),
        Case("train-seed-neg", "--seed -1", ("train", *TINY, "--seed", "-1", "--out", "{d}/m.npz"), ("seed",)),
        Case("train-batch-size-huge", "--batch-size 1000000000",
             ("train", *TINY, "--batch-size", "1000000000", "--out", "{d}/m.npz"), (r"batch[-_]size",)),
        Case("train-epochs-neg", "--epochs -1", ("train", *TINY[:2], "--epochs", "-1", *TINY[4:]), ("epochs",)),
        Case("train-lr-nan", "--lr nan", ("train", *TINY, "--lr", "nan", "--out", "{d}/m.npz"), (r"\blr\b",)),
        Case("train-trials-neg", "--protocol few-shot --trials -1",
             ("train", "--protocol", "few-shot", "--trials", "-1", "--epochs", "1"), ("trials",)),
        *[Case(f"train-few-shot-{opt.strip('-')}", f"--protocol few-shot with {opt} {value}: used or refused",
               custom=_used_or_refused(("train", "--protocol", "few-shot", "--trials", "1", "--epochs", "1",
                                        "--test-fraction", "0.99", opt, value), name, used))
          for opt, value, name, used in (
              ("--dims", "784,64,10", "dims", lambda r: 64 in (r.get("dims") or [])),
              ("--rule", "backprop", "rule", lambda r: r.get("rule") == "backprop"),
              ("--weight-bits", "8", r"weight[-_]bits", lambda r: "8" in str(r.get("precision"))))],
        Case("size-exit-layer-0", "size --exit-layer 0", ("size", "--dims", "784,64,10", "--exit-layer", "0"),
             (r"exit[-_]layer",)),
        Case("train-diverging-lr", "backprop --lr 1000 (NaN weights)",
             ("train", "--rule", "backprop", "--dims", "784,64,10", "--lr", "1000", "--epochs", "2",
              "--limit-train", "1000", "--out", "{d}/m.npz"),
             (r"diverg|non-finite|not finite|nan|inf",), check=_model_loads("m.npz")),
        Case("train-out-no-npz", "--out mymodel, then evaluate and --resume it", custom=_out_without_npz),
        Case("train-out-directory", "--out m.npz, an existing directory", ("train", *TINY, "--out", "{d}/m.npz"),
             ("{d}/m.npz",), setup=lambda d, fx: (d / "m.npz").mkdir(), forbid=(r"epoch 1/",)),
        Case("train-out-unwritable", "--out under a file (/dev/null/m.npz)",
             ("train", *TINY, "--out", "/dev/null/m.npz"), (re.escape("/dev/null"),), forbid=(r"epoch 1/",)),
        Case("train-stderr-closed", "stderr closed by the reader (2>&1 | head -1)", custom=_stderr_closed),
        # -- --resume with conflicting options: an error naming both values
        *[Case(f"resume-conflict-{opt.strip('-')}", f"--resume with {opt} {new} (model: {old})",
               ("train", *MODEL_BASE, "--epochs", "2", "--resume", "--out", "{d}/m.npz", opt, new),
               (name, re.escape(new), old_pattern or re.escape(old)), setup=_copy_fixture())
          for opt, new, old, old_pattern, name in (
              ("--dims", "784,32,10", "784,16,10", "16", "dims"), ("--rule", "backprop", "spela", "", "rule"),
              ("--weight-bits", "8", "fp32", "fp32|float", r"weight[-_]bits"),
              ("--lr", "0.5", "0.05", "", r"\blr\b"), ("--batch-size", "10", "1", "", r"batch[-_]size"),
              ("--seed", "3", "0", "", "seed"), ("--limit-train", "300", "200", "", r"limit[-_]train"),
              ("--dataset", "fashion-mnist", "mnist-bundled", "", "dataset"))],
        Case("resume-json-seed", "--resume: the JSON reports the model's seed", custom=_resume_reports_model_seed),
        # -- --data-dir: used or refused, never replaced
        Case("train-data-dir-missing", "--data-dir a missing directory",
             ("train", *TINY, "--data-dir", "{d}/nowhere", "--out", "{d}/m.npz"), ("nowhere",)),
        Case("train-data-dir-incomplete", "--data-dir without the label file",
             ("train", *TINY, "--data-dir", "{d}/data", "--out", "{d}/m.npz"), ("{d}/data", "t10k-labels"),
             setup=_bundled_copy(drop="t10k-labels-idx1-ubyte.gz")),
        Case("evaluate-data-dir-missing", "evaluate --data-dir a missing directory",
             ("evaluate", "{fx}/m.npz", "--data-dir", "{d}/nowhere"), ("nowhere",)),
        # -- dataset files
        Case("data-truncated-images", "truncated image file in --data-dir",
             ("train", *TINY, "--data-dir", "{d}/data", "--out", "{d}/m.npz"), ("t10k-images",),
             setup=_bundled_copy(lambda p: _truncate(p / "t10k-images-idx3-ubyte.gz"))),
        Case("data-garbage-labels", "label file of random bytes in --data-dir",
             ("train", *TINY, "--data-dir", "{d}/data", "--out", "{d}/m.npz"), ("t10k-labels",),
             setup=_bundled_copy(lambda p: (p / "t10k-labels-idx1-ubyte.gz").write_bytes(os.urandom(4000)))),
        # -- model files
        Case("model-truncated", "model file cut in half", bad_model, ("bad.npz",),
             setup=lambda d, fx: _truncate(Path(shutil.copy(fx / "m.npz", d / "bad.npz")))),
        Case("model-not-npz", "model file that is text", bad_model, ("bad.npz",), setup=_write("bad.npz", "hello\n")),
        Case("model-no-meta", "model without its metadata", bad_model, ("bad.npz", "meta"),
             setup=lambda d, fx: np.savez(d / "bad.npz", **read_model(fx / "m.npz")[0])),
        Case("model-version", "model format version 99", bad_model, ("bad.npz", "version"),
             setup=_edit_model(_set("version", 99))),
        Case("model-nan-weight", "NaN in a weight", bad_model, ("bad.npz", r"nan|finite"),
             setup=_edit_model(lambda m, a: a["weight_0"].__setitem__((0, 0), np.nan))),
        Case("model-weight-shape", "weight_0 of the wrong shape", bad_model, ("bad.npz", r"weight_0|layer 0"),
             setup=_edit_model(lambda m, a: a.__setitem__("weight_0", a["weight_0"][:, :-1].copy()))),
        Case("model-no-weight", "weight_0 missing", bad_model, ("bad.npz", "weight_0"),
             setup=_edit_model(lambda m, a: a.pop("weight_0"))),
        *[Case(f"model-no-{key}", f"metadata without {key}", bad_model, ("bad.npz", key),
               setup=_edit_model(_drop(key)))
          for key in ("n_features_in", "rounding_seed", "history", "train_counts", "layer_sizes", "classes")],
        *[Case(f"model-type-{key}", f"{key} = {value!r}", bad_model, ("bad.npz", key),
               setup=_edit_model(_set(key, value)))
          for key, value in (("layer_sizes", "16,10"), ("n_features_in", "784"), ("epochs_done", "one"),
                             ("rounding_seed", 1.5), ("history", {"epoch": 1}), ("train_counts", [1, 2]),
                             ("classes", 10), ("batch_size", "1"))],
        Case("model-absurd-layer_sizes", "layer_sizes = [1000000000, 10] (must not allocate)", bad_model,
             ("bad.npz", "layer_sizes"), setup=_edit_model(_set("layer_sizes", [10**9, 10])),
             forbid=("MemoryError",)),
        Case("model-negative-layer_sizes", "layer_sizes = [-16, 10]", bad_model, ("bad.npz", "layer_sizes"),
             setup=_edit_model(_set("layer_sizes", [-16, 10]))),
        Case("resume-model-no-n_features_in", "--resume from a model without n_features_in",
             ("train", *MODEL_BASE, "--epochs", "2", "--resume", "--out", "{d}/bad.npz"),
             ("bad.npz", "n_features_in"), setup=_edit_model(_drop("n_features_in"))),
        # -- TOML files
        Case("report-toml-non-utf8", "report --config: not UTF-8",
             ("report", "--config", "{d}/bad.toml", "--out", "{d}/r"), ("bad.toml", UTF8),
             setup=_write("bad.toml", NON_UTF8)),
        Case("sweep-toml-non-utf8", "sweep config: not UTF-8", ("sweep", "{d}/bad.toml", "--out", "{d}/s"),
             ("bad.toml", UTF8), setup=_write("bad.toml", b"[sweep]\nepochs = 1\n# \xff\xfe caf\xe9\n")),
        Case("size-toml-non-utf8", "size --hardware: not UTF-8",
             ("size", "--dims", "784,64,10", "--hardware", "{d}/bad.toml"), ("bad.toml", UTF8),
             setup=_write("bad.toml", HW_NON_UTF8)),
        Case("report-toml-malformed", "report --config: broken TOML",
             ("report", "--config", "{d}/bad.toml", "--out", "{d}/r"), ("bad.toml",),
             setup=_write("bad.toml", "dims = [784, 32\n")),
        Case("sweep-toml-malformed", "sweep config: broken TOML", ("sweep", "{d}/bad.toml", "--out", "{d}/s"),
             ("bad.toml",), setup=_write("bad.toml", "[grid\nbits = [8]\n")),
        Case("size-toml-malformed", "size --hardware: broken TOML",
             ("size", "--dims", "784,64,10", "--hardware", "{d}/bad.toml"), ("bad.toml",),
             setup=_write("bad.toml", 'base = "mcu-256kb\n')),
        Case("report-toml-unknown-key", "report --config: unknown key",
             ("report", "--config", "{d}/bad.toml", "--out", "{d}/r"), ("colour",),
             setup=_write("bad.toml", "colour = 3\n")),
        Case("report-toml-wrong-type", "report --config: epochs = \"three\"",
             ("report", "--config", "{d}/bad.toml", "--out", "{d}/r"), ("epochs",),
             setup=_write("bad.toml", 'epochs = "three"\n')),
        Case("sweep-toml-unknown-axis", "sweep config: unknown grid axis", ("sweep", "{d}/bad.toml", "--out", "{d}/s"),
             (r"grid\.colour",), setup=_write("bad.toml", "[grid]\ncolour = [1, 2]\n")),
        Case("sweep-toml-bad-bits", "sweep config: bits = [\"fp33\"]", ("sweep", "{d}/bad.toml", "--out", "{d}/s"),
             ("bits",), setup=_write("bad.toml", '[grid]\nbits = ["fp33"]\n')),
        # -- sweeps and reports (issue 13, part 3)
        Case("sweep-grid-too-large", "a grid of 4e9 points", ("sweep", "{d}/big.toml", "--out", "{d}/s"),
             (r"max[-_]points",), setup=_write("big.toml", _huge_grid()), forbid=("MemoryError",), timeout=30),
        Case("sweep-workers-neg", "sweep --workers -1", ("sweep", "{d}/s.toml", "--workers", "-1", "--out", "{d}/s"),
             ("workers",), setup=_write("s.toml", SWEEP_TOML)),
        Case("sweep-resume-overwrite", "sweep --resume --overwrite",
             ("sweep", "{d}/s.toml", "--resume", "--overwrite", "--out", "{d}/s"), (r"resume", r"overwrite"),
             setup=_write("s.toml", SWEEP_TOML)),
        Case("report-out-unwritable", "report --out under a file (/dev/null/rep)",
             ("report", "--config", "{d}/r.toml", "--out", "/dev/null/rep"), (re.escape("/dev/null"),),
             setup=_write("r.toml", REPORT_TOML), forbid=(r"\[\s*1/",)),
        Case("report-same-out-twice", "two report --out SAME at once", custom=_two_reports_one_out),
    ]
    return cases


def make_fixtures(runner: Runner, fx: Path) -> None:
    """Small valid models the model-file and --resume cases start from."""
    for name, seed in (("m.npz", "0"), ("m3.npz", "3")):
        run = runner.run(["train", *TINY, "--seed", seed, "--out", fx / name], fx)
        if run.rc != 0:
            raise SystemExit(f"cannot build the fixture model {name}: {run.stderr[-2000:]}")


def _fill(text, d: Path, fx: Path, quote=str) -> str:
    """``{d}`` and ``{fx}`` in an argument (or, quoted, in a pattern) replaced by the folders."""
    return str(text).replace("{d}", quote(str(d))).replace("{fx}", quote(str(fx)))


def run_case(ctx: Ctx, case: Case, work: Path) -> Outcome:
    d = work / case.name
    d.mkdir(parents=True)
    if case.setup:
        case.setup(d, ctx.fixtures)
    if case.custom:
        return case.custom(ctx, d)
    run = ctx.runner.run([_fill(a, d, ctx.fixtures) for a in case.argv], d, timeout=case.timeout,
                         memory=BAD_INPUT_MEMORY)
    outcome = judge(run, [_fill(p, d, ctx.fixtures, re.escape) for p in case.expect], case.forbid)
    if case.check and (reason := case.check(d, run)):
        outcome.ok, outcome.why = False, "; ".join(filter(None, (outcome.why, reason)))
    return outcome


def badinput_table(results: list[tuple[Case, Outcome]]) -> str:
    yes = lambda b: "yes" if b else "no"  # noqa: E731
    rows = [["case", "bad input", "exit code", "traceback?", "named?", "verdict"]]
    rows += [[f"`{c.name}`", c.what, "–" if o.rc is None else o.rc, yes(o.traceback), yes(o.named),
              "pass" if o.ok else "FAIL"] for c, o in results]
    passed = sum(o.ok for _, o in results)
    lines = [_table(rows), "", f"{passed} of {len(results)} bad inputs rejected by name."]
    failed = [(c, o) for c, o in results if not o.ok]
    if failed:
        lines += ["", "Failures:", ""] + [f"- `{c.name}`: {o.why}" for c, o in failed]
    return "\n".join(lines)


# -- output ----------------------------------------------------------------------------------------

def _table(rows: list[list]) -> str:
    cells = [[str(c).replace("|", "\\|") for c in r] for r in rows]
    out = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in cells[1:]])


TITLES = {"kill": "kill -9 at random moments", "badinput": "Bad inputs"}


def write_sections(path: Path, sections: dict[str, str], whole: str) -> None:
    """Replace each section between ``<!-- faults-NAME:begin -->`` and ``<!-- faults-NAME:end -->``
    of ``path`` (e.g. docs/RELIABILITY.md); a file without the markers gets ``whole``. Atomic."""
    from reports.files import atomic_write_text

    text = path.read_text(encoding="utf-8") if path.exists() else ""
    marks = {k: (f"<!-- faults-{k}:begin -->", f"<!-- faults-{k}:end -->") for k in sections}
    if not all(b in text and e in text for b, e in marks.values()):
        atomic_write_text(path, whole)
        return
    for k, body in sections.items():
        begin, end = marks[k]
        a, b = text.index(begin), text.index(end) + len(end)
        text = text[:a] + f"{begin}\n{body}\n{end}" + text[b:]
    atomic_write_text(path, text)


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=20, help="kills per command (default 20)")
    p.add_argument("--only", default="kill,badinput", help="comma-separated parts: kill, badinput (default both)")
    p.add_argument("--commands", default="train,sweep,report", help="commands of the kill campaign")
    p.add_argument("--cases", help="comma-separated substrings: run only the bad-input cases whose name has one")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default 0)")
    p.add_argument("--quick", action="store_true", help="CI smoke run: a shorter train run (4 epochs)")
    p.add_argument("--grace", type=float, default=5.0,
                   help="seconds a killed command's workers get to exit before they count as orphans")
    p.add_argument("--numba-cache", help="numba cache folder ('default': the environment's; default: a fresh "
                   "one in the work folder)")
    p.add_argument("--workdir", type=Path, help="keep every run's files here (default: a temporary folder)")
    p.add_argument("--write", type=Path, help="also write the Markdown to this file (atomically)")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = p.parse_args(argv)
    parts = set(args.only.split(","))
    commands = [c for c in args.commands.split(",") if c]
    if not parts <= {"kill", "badinput"} or not set(commands) <= set(CAMPAIGNS) or args.kills < 0:
        p.error("--only takes kill,badinput; --commands takes train,sweep,report; --kills >= 0")
    sys.path.insert(0, str(ROOT))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="spela-faults-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    runner = Runner(work, args.numba_cache or str(work / "numba-cache"), args.grace)
    t0 = time.perf_counter()
    command = " ".join(["python -m bench.faults", *(argv if argv is not None else sys.argv[1:])])
    measured = (f"Measured by `{command}` (seed {args.seed}) on commit {_commit()}, "
                f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
                f"load average {os.getloadavg()[0]:.1f} at the start.")
    sections: dict[str, str] = {}
    figures: dict = {"command": command, "seed": args.seed}
    failed = False
    try:
        if "kill" in parts and args.kills:
            rng = random.Random(args.seed)
            tallies = []
            for name in commands:
                say(f"kill campaign: {name}, {args.kills} kills")
                tallies.append(CAMPAIGNS[name](runner, args.kills, rng, work, quick=args.quick))
            sections["kill"] = measured + "\n\n" + kill_table(tallies)
            figures["kills"] = [{k: (dict(v) if isinstance(v, Counter) else v) for k, v in t.__dict__.items()}
                                for t in tallies]
            failed |= any(t.failed for t in tallies)
        if "badinput" in parts:
            cases = catalogue()
            if args.cases:
                wanted = args.cases.split(",")
                cases = [c for c in cases if any(w in c.name for w in wanted)]
            fx = work / "fixtures"
            say(f"bad-input catalogue: {len(cases)} cases")
            make_fixtures(runner, fx)
            ctx = Ctx(runner, fx)
            results = []
            for case in cases:
                outcome = run_case(ctx, case, work / "badinput")
                say(f"  {'pass' if outcome.ok else 'FAIL'} {case.name}" + (f": {outcome.why}" if outcome.why else ""))
                results.append((case, outcome))
            sections["badinput"] = measured + "\n\n" + badinput_table(results)
            figures["badinput"] = [{"case": c.name, "what": c.what, **o.__dict__} for c, o in results]
            failed |= not all(o.ok for _, o in results)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    say(f"total time {time.perf_counter() - t0:.0f} s")
    text = "\n\n".join(f"### {TITLES[k]}\n\n{v}" for k, v in sections.items()) + "\n"
    print(text)
    if args.write:
        write_sections(args.write, sections, text)
    if args.json:
        from reports.files import atomic_write_text

        atomic_write_text(args.json, json.dumps(figures, indent=1, default=str) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
