"""The ``twolayer`` parser, its subcommands in the order of ``twolayer --help``, and :func:`main`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from twolayer import __version__
from twolayer.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Command, Parser
from twolayer.cli.curvature import CURVATURE
from twolayer.cli.datasets import DATASETS
from twolayer.cli.evaluate import EVALUATE, PLOT, PREDICT
from twolayer.cli.teaching import DERIVE, GRADCHECK
from twolayer.cli.train import TRAIN
from twolayer.errors import DataError

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: tuple[Command, ...] = (TRAIN, EVALUATE, PREDICT, GRADCHECK, DERIVE, PLOT, CURVATURE, DATASETS)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``twolayer`` with one subparser per entry of :data:`COMMANDS`.

    A subparser's arguments are added when it first parses or prints its
    help (see :class:`~twolayer.cli.common.Parser`).
    """
    parser = Parser(
        prog="twolayer",
        description="The two-layer tanh-softmax network with exact backpropagation: train it, evaluate it, "
        "predict with it, and check its derivatives.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"twolayer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(
            command.name,
            help=command.summary,
            description=command.summary,
            allow_abbrev=False,
            add_arguments=command.add_arguments,
        )
        p.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``twolayer`` command.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status: 0 success, 1 a failed check, 2 bad input, 130
        interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:  # --help, --version or a usage error: argparse has printed it
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        names = ", ".join(c.name for c in COMMANDS)
        print(f"twolayer: error: choose a command: {names} (see 'twolayer --help')", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.run(args))
    except DataError as exc:
        print(f"twolayer {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"twolayer {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`twolayer predict ... | head`):
        # not an error of ours. Point stdout at nothing so that Python's
        # final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
