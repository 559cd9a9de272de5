"""The ``i3d`` command: one module per command group, each parsing its arguments and calling the library.

``predict`` (predict, demo, samples), ``features``, ``evaluate`` (eval, merge), ``bench``, ``export`` (export,
quantize), ``prepare`` (fetch, lists, extract), ``models``. A user error is one line on stderr and exit code 2;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import I3DError
from . import bench, evaluate, export, features, models, predict, prepare

GROUPS = (predict, features, export, bench, evaluate, prepare, models)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="i3d", description="I3D video models (mmaction2's ResNet, DeepMind's Inception), offline."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(commands)
    for command in commands.choices.values():  # --debug is accepted after the command too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``i3d`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except I3DError as e:
        if args.debug:
            raise
        print(f"i3d: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("i3d: interrupted", file=sys.stderr)
        return 130
