"""Wall time of the user-facing commands, as a user runs them.

    python -m bench.commands [--only report,train] [--reps N] [--write FILE]

* ``report``: the default ``spela-hw report`` cold (an empty numba cache and an empty Brian2
  build cache: ``NUMBA_CACHE_DIR`` and ``SPELA_HW_CACHE`` point at new empty folders) and then
  warm (the caches it filled), with the seconds until its first progress line;
* ``train``: the default ``spela-hw train`` on the bundled data and one epoch of 784-1024-34 on
  full MNIST (``SPELA_HW_DATA``), with ``--jobs 1`` (one kernel thread, the default before
  ``n_jobs``) and with the default ``--jobs -1``, side by side in one run.

Every command runs as a subprocess with the environment a user has; wall time, the CPU time of
the process and its children, and the load average before and after are recorded. Prints a
Markdown section on stdout (``--write FILE`` also writes it there, atomically).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _spela_hw() -> list[str]:
    """The ``spela-hw`` script of this interpreter's environment (as a user runs it), else PATH's."""
    beside = Path(sys.executable).with_name("spela-hw")
    exe = str(beside) if beside.exists() else shutil.which("spela-hw")
    if exe is None:
        raise SystemExit("spela-hw is not installed in this environment (python3 bootstrap.py run sets it up)")
    return [exe]


def run_timed(args: list[str], env: dict, cwd: Path) -> dict:
    """Run ``spela-hw args``; wall and CPU seconds, seconds to the first stderr line, exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.Popen([*_spela_hw(), *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    first = None
    tail = []
    for line in proc.stderr:
        if first is None:
            first = time.perf_counter() - t0
        tail = (tail + [line.rstrip()])[-3:]
    rc = proc.wait()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if rc != 0:
        raise SystemExit(f"spela-hw {' '.join(args)} exited {rc}: {' | '.join(tail)}")
    return {"wall_s": wall, "cpu_s": cpu, "first_line_s": first, "load_before": load0,
            "load_after": os.getloadavg()[0]}


def bench_report(work: Path, reps: int) -> list[list]:
    rows = []
    for rep in range(reps):
        caches = work / f"caches-{rep}"
        env = dict(os.environ, NUMBA_CACHE_DIR=str(caches / "numba"), SPELA_HW_CACHE=str(caches / "spela-hw"))
        for phase in ("cold", "warm"):
            print(f"[bench.commands] report {phase} ({rep + 1}/{reps})", file=sys.stderr, flush=True)
            r = run_timed(["report", "--out", str(work / f"report-{rep}-{phase}")], env, work)
            rows.append([f"`spela-hw report` ({phase})", "default", f"{r['wall_s']:.0f}", f"{r['cpu_s']:.0f}",
                         f"{r['first_line_s']:.1f}", f"{r['load_before']:.2f} / {r['load_after']:.2f}"])
    return rows


def bench_train(work: Path, reps: int) -> list[list]:
    rows = []
    cases = [("`spela-hw train` (defaults: bundled data, 3 epochs)", []),
             ("`spela-hw train --dataset mnist --epochs 1`", ["--dataset", "mnist", "--epochs", "1"])]
    env = dict(os.environ)
    run_timed(["train", "--epochs", "1", "--limit-train", "200", "--out", str(work / "warm.npz")], env, work)
    for label, extra in cases:
        for jobs in ("1", "-1"):
            walls = []
            for rep in range(reps):
                print(f"[bench.commands] train {' '.join(extra)} --jobs {jobs} ({rep + 1}/{reps})",
                      file=sys.stderr, flush=True)
                r = run_timed(["train", *extra, "--jobs", jobs, "--out", str(work / "m.npz")], env, work)
                walls.append(r)
            best = min(walls, key=lambda r: r["wall_s"])
            rows.append([label, f"--jobs {jobs}", f"{best['wall_s']:.1f}", f"{best['cpu_s']:.1f}",
                         f"{best['first_line_s']:.1f}", f"{best['load_before']:.2f} / {best['load_after']:.2f}"])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.commands", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="report,train", help="report, train (comma-separated)")
    p.add_argument("--reps", type=int, default=1, help="repetitions (train: the fastest is kept)")
    p.add_argument("--write", type=Path, help="also write the Markdown section to this file")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    rows = []
    with tempfile.TemporaryDirectory(prefix="spela-bench-commands-") as tmp:
        work = Path(tmp)
        if "report" in only:
            rows += bench_report(work, args.reps)
        if "train" in only:
            rows += bench_train(work, args.reps)
    head = ["command", "threads", "wall (s)", "CPU (s)", "first progress line (s)", "load before / after"]
    lines = [f"Measured by `python -m bench.commands --only {args.only} --reps {args.reps}` on "
             f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        tmp = args.write.with_name(f".{args.write.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
