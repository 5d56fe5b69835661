"""``spela-hw sweep sweep.toml``: evaluate a design-space grid, resumably, locally or on Dask.

See :mod:`reports.sweep` for the file format. Every finished point is appended to
``<out>/results.jsonl`` at once; ``--resume`` continues a killed or extended sweep; the report
(``<out>/report/index.html``) shows the Pareto front of accuracy vs energy vs memory.

Exit status: 0 when every point of the grid has a result that is not an error, 1 when some point
failed (the failures are listed on stderr; the results and the report are still written), 2 for
a bad configuration.
"""

from __future__ import annotations

import time

from reports.cli import say
from spela_hw import jsonio


def register(sub) -> None:
    import argparse
    from pathlib import Path

    try:
        example = (Path(__file__).resolve().parents[1] / "examples" / "sweep.toml").read_text(encoding="utf-8")
    except OSError:  # an install without the example files
        example = "see the docstring of reports.sweep"
    p = sub.add_parser(
        "sweep", formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example SWEEP.toml (reports/examples/sweep.toml):\n\n" + example, help="evaluate a grid of designs (shapes x bits x presets x rules x seeds), resumable",
        description="Evaluate every point of the grid in SWEEP.toml: train, then price memory, energy and "
                    "latency on each preset. Results are appended to <out>/results.jsonl as they finish; "
                    "failures are recorded, not fatal. Runs on a local process pool (default), an existing "
                    "Dask cluster (--scheduler) or a local Dask cluster (--local-cluster N).")
    p.add_argument("config", metavar="SWEEP.toml", help="sweep description ([sweep] settings, [grid] axes)")
    p.add_argument("--out", help="results folder (overrides [sweep] out)")
    p.add_argument("--resume", action="store_true",
                   help="skip points that already have a result (refused over results of another spela-hw version)")
    p.add_argument("--retry-failed", action="store_true", help="with --resume: run failed points again")
    p.add_argument("--overwrite", action="store_true",
                   help="start over (an existing results file is kept as results.<time>.jsonl.bak)")
    p.add_argument("--max-points", type=int, metavar="N",
                   help="run grids of up to N points (overrides [sweep] max_points; default 10000)")
    p.add_argument("--workers", type=int, help="local processes (0: one per core; 1: in this process)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="address of an existing Dask scheduler")
    p.add_argument("--local-cluster", type=int, metavar="N", help="start a local Dask cluster with N workers")
    p.add_argument("--report-only", action="store_true", help="only (re)write the report from the results")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from spela_hw.errors import ConfigError

    from reports.sweep import SweepConfig, describe_point, run_sweep, write_sweep_report

    config = SweepConfig.from_toml(args.config)
    if args.out or args.max_points is not None:
        config = config.with_overrides(out=args.out, max_points=args.max_points)
    if args.scheduler and args.local_cluster:
        raise ConfigError("scheduler", "give either --scheduler or --local-cluster, not both")
    if args.resume and args.overwrite:
        raise ConfigError("resume", "--resume and --overwrite exclude each other")
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        say(f"[sweep {time.perf_counter() - t0:7.1f} s] {msg}")

    if args.report_only:
        from pathlib import Path

        from reports.sweep import RESULTS_NAME

        if not (Path(config.out) / RESULTS_NAME).is_file():
            raise ConfigError("out", f"{Path(config.out) / RESULTS_NAME} does not exist: nothing to report")
        path = write_sweep_report(config, progress=progress)
        print(jsonio.dumps({"report": str(path)}) if args.json else path)
        return 0
    res = run_sweep(config, resume=args.resume, overwrite=args.overwrite, retry_failed=args.retry_failed,
                    scheduler=args.scheduler, local_cluster=args.local_cluster, workers=args.workers,
                    progress=progress, report=not args.no_report)
    if args.json:
        print(jsonio.dumps({"results": str(res.results_path), "report": str(res.report) if res.report else None,
                          "points": res.n_points, "ran": res.ran, "failed": res.failed, "skipped": res.skipped,
                          "failures": res.failures, "seconds": res.seconds}))
    else:
        print(res.report if res.report else res.results_path)
    for f in res.failures:
        say(f"spela-hw sweep: failed: {describe_point(f['point'])}: {f['error']}")
    if res.failures:
        say(f"spela-hw sweep: {len(res.failures)} of {res.n_points} point(s) failed "
            "(--resume --retry-failed runs them again)")
    return 1 if res.failures else 0
