"""The ``spela-hw`` command line: one sub-command per module ``reports.cli.cmd_<name>``.

Each command module defines ``register(subparsers)`` which adds its parser and sets
``func=run`` where ``run(args) -> int``. Progress goes to stderr; ``--json`` output to stdout.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from spela_hw.errors import SpelaError

# Order is the order of ``spela-hw --help``.
COMMANDS = ("train", "evaluate", "size", "presets", "report", "sweep", "spike")


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
        print(f"spela-hw {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"spela-hw {args.command}: interrupted", file=sys.stderr)
        return 130
