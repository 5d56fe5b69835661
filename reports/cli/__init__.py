"""The ``spela-hw`` command line: one sub-command per module ``reports.cli.cmd_<name>``.

Each command module defines ``register(subparsers)`` which adds its parser and sets
``func=run`` where ``run(args) -> int``. Progress goes to stderr; ``--json`` output to stdout.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from pathlib import Path

from spela_hw.errors import DataError, DatasetNotFoundError, SpelaError
from spela_hw.io import model_path

# Order is the order of ``spela-hw --help``.
COMMANDS = ("train", "evaluate", "size", "presets", "report", "sweep", "spike", "export")


def silence(stream) -> None:
    """Point ``stream``, whose reader has gone (a closed pipe), at the null device: later writes,
    and the flush at exit, then succeed quietly instead of raising ``BrokenPipeError``."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def say(msg: str) -> None:
    """Progress to stderr; when nobody reads stderr any more (``2>&1 | head -1``), progress stops
    and the command goes on."""
    try:
        print(msg, file=sys.stderr, flush=True)
    except BrokenPipeError:
        silence(sys.stderr)


def model_file(text: str) -> Path:
    """The model file a command line names: as given when it exists, else with ``.npz`` appended
    as ``train --out`` does (``mymodel`` -> ``mymodel.npz``)."""
    path = Path(text)
    return path if path.exists() else model_path(path)


def dataset_help() -> str:
    """The ``--dataset`` names, from the dataset registry: the shipped default first, then the
    others, saying which ones only a user's own copy provides (no download)."""
    from spela_hw.datasets import BUNDLED_DATASET, DATASETS

    others = [n for n in DATASETS if n != BUNDLED_DATASET]
    own = [n for n in others if not DATASETS[n].mirrors]
    return (f"{BUNDLED_DATASET} (shipped, default), {', '.join(others)}"
            + (f" ({', '.join(own)}: your own copy, in SPELA_HW_DATA/<name>/ or a data dir)"
               if own else ""))


def load_data(name: str, data_dir=None):
    """``spela_hw.load_dataset`` whose not-found error names the command line's remedies (the
    library's names the Python API's ``data_dir=`` and ``download=True``)."""
    from spela_hw import load_dataset

    try:
        return load_dataset(name, data_dir=data_dir)
    except DatasetNotFoundError as exc:
        raise DataError(f"{exc.where} Set SPELA_HW_DATA to a directory containing {exc.name}/, give --data-dir DIR, "
                        f"or use --dataset mnist-bundled (shipped with the package).") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spela-hw",
        description="Forward-only on-device learning (SPELA) vs backprop: train, size, report.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"reports.cli.cmd_{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (exit 2) and --help (exit 0) return like commands
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except SpelaError as exc:
        say(f"spela-hw {args.command}: error: {exc}")
        return 2
    except KeyboardInterrupt:
        say(f"spela-hw {args.command}: interrupted")
        return 130
    except BrokenPipeError:  # the reader of stdout has gone: stop quietly, as `cmd | head` expects
        silence(sys.stdout)
        silence(sys.stderr)
        return 141  # 128 + SIGPIPE, what a shell reports for a command ended by a closed pipe
