"""``spela-hw report``: the main job. Train SPELA and backprop, size them, write a report folder.

Settings come from the defaults of :class:`reports.config.ReportConfig`, then ``--config
file.toml`` (same names as the options, with ``_`` for ``-``), then the options given here.
Progress goes to stderr; the path of ``index.html`` is printed on stdout at the end (or one JSON
object with ``--json``).

Exit status: 0 when every run finished, 1 when some run failed (the failures are listed on stderr;
the report is still written and marked incomplete), 2 for a bad configuration or ``--out``.
"""

from __future__ import annotations

import sys
import time

from reports.cli import dataset_help, say
from reports.config import ReportConfig
from spela_hw import jsonio

# option -> ReportConfig field (all take the config's parser, so the CLI and TOML agree exactly)
_OPTIONS = (
    ("--dataset", "dataset", f"dataset name: {dataset_help()}"),
    ("--dims", "dims", "layer widths from the input, e.g. 784,256,10, trained by every rule (like for like: "
                       "with backprop the output width is the number of classes)"),
    ("--bits", "bits", "weight precisions, e.g. fp32,8,6,4"),
    ("--rules", "rules", "learning rules, e.g. spela,backprop"),
    ("--class-vectors", "class_vectors", ("SPELA's class vectors: aligned (default: the simplex aligned with a "
                                          "10-unit output's units), auto (randomly rotated, the published "
                                          "recipes'), onehot, simplex, coulomb, gaussian")),
    ("--presets", "presets", "hardware presets, the first is the main one (spela-hw presets lists them)"),
    ("--epochs", "epochs", "training epochs of every main run"),
    ("--seeds", "seeds", "seeds, e.g. 0,1,2 (spread over seeds in the tables)"),
    ("--batch-size", "batch_size", "1 = per-sample edge mode"),
    ("--budget", "budget", "on-chip memory budget, e.g. '256 KB' or 'sram=256KB,nvm=1MB' ('none': no budget)"),
    ("--train-samples", "train_samples", "use only the first N training samples"),
    ("--test-samples", "test_samples", "use only the first N test samples"),
    ("--few-shot-fractions", "few_shot_test_fractions", "held-out fractions of the few-shot protocol, e.g. 0.95,0.99"),
    ("--few-shot-epochs", "few_shot_epochs", "epochs of the few-shot runs"),
    ("--few-shot-trials", "few_shot_trials", "re-splits per held-out fraction (0: skip)"),
    ("--exit-thresholds", "exit_thresholds", "read-out margins of the confidence-exit policy, e.g. 0.1,0.3"),
    ("--energy-samples", "energy_samples", "test samples whose counts price inference"),
    ("--spiking", "spiking", "auto (when Brian2 imports), on, off"),
    ("--spike-dims", "spike_dims", "layer widths of the spiking network, e.g. 784,100,10"),
    ("--spike-train-samples", "spike_train_samples", "training samples of the spiking run"),
    ("--spike-test-samples", "spike_test_samples", "test samples of the spiking run"),
    ("--transfer", "transfer", "on (the on-device transfer-learning section) or off"),
    ("--workers", "workers", "parallel training processes (0: one per core)"),
    ("--out", "out", "output directory (default ./report)"),
)


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="train SPELA and backprop, size them on hardware, write an HTML/Markdown report",
        description="The main job: on the bundled real MNIST split (default) train SPELA and backprop at "
                    "float32 and fixed point, price memory, energy, latency and crossbar arrays on hardware "
                    "presets, and write <out>/index.html (self-contained), report.md, tables (CSV/Parquet) "
                    "and figures (PNG/SVG).")
    p.add_argument("--config", metavar="FILE.toml", help="read settings from a TOML file (options override it)")
    for opt, field, help_ in _OPTIONS:
        p.add_argument(opt, dest=field, default=None, help=help_)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout instead of the path")
    p.set_defaults(func=run)


def config_from_args(args) -> ReportConfig:
    """The report config of parsed arguments (file first, then options)."""
    base = ReportConfig.from_toml(args.config) if args.config else ReportConfig()
    changes = {field: getattr(args, field) for _, field, _ in _OPTIONS if getattr(args, field, None) is not None}
    return base.with_overrides(**changes)


def run(args) -> int:
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        say(f"[report {time.perf_counter() - t0:6.1f} s] {msg}")

    progress("starting: importing the report machinery")  # the first line comes before the slow imports
    from reports.report import build_report

    config = config_from_args(args)

    argv = sys.argv[1:] if sys.argv and sys.argv[0].endswith("spela-hw") else None
    result = build_report(config, progress=progress, argv=argv)
    if args.json:
        print(jsonio.dumps({"out": str(result.out), "index_html": str(result.index_html),
                          "report_md": str(result.report_md), "sections": result.sections,
                          "complete": result.complete, "failures": result.failures, "seconds": result.seconds}))
    else:
        print(result.index_html)
    for f in result.failures:
        say(f"spela-hw report: failed: {f['task']}: {f['error']}")
    if result.failures:
        say(f"spela-hw report: {len(result.failures)} failure(s); the report in {result.out} is incomplete")
    return 0 if result.complete else 1
