"""The ``twolayer`` parser, its subcommands in the order of ``twolayer --help``, and :func:`main`."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from twolayer import __version__
from twolayer.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Command, Parser
from twolayer.cli.curvature import CURVATURE
from twolayer.cli.datasets import DATASETS
from twolayer.cli.evaluate import EVALUATE, PLOT, PREDICT
from twolayer.cli.export import EXPORT
from twolayer.cli.teaching import DERIVE, GRADCHECK
from twolayer.cli.train import TRAIN
from twolayer.errors import DataError, HighMemoryWarning, InsufficientMemory, MemoryEstimate

__all__ = ["COMMANDS", "MEMORY_OPTIONS", "build_parser", "main", "memory_sentence"]

#: The subcommands, in the order of ``twolayer --help``.
COMMANDS: tuple[Command, ...] = (TRAIN, EVALUATE, PREDICT, EXPORT, GRADCHECK, DERIVE, PLOT, CURVATURE, DATASETS)

# How each command names the Python parameters of a memory estimate (twolayer.resources): its
# options, or what the user can change instead. A parameter left out is not named at all.
_TRAIN_MEMORY_OPTIONS = {
    "n_hidden": "--hidden",
    "batch_size": "--batch-size",
    "solver": "--solver",
    "n_samples": "--mc-samples",
    "structure": "--structure",
    "method": "--predictive",
    "the number of rows of X": "the rows of DATA",
}
_MODEL_MEMORY_OPTIONS = {
    "n_samples": "the model's --mc-samples",
    "method": "a model trained with --predictive",
    "the number of rows of X": "the rows of DATA",
}
#: command -> Python parameter -> what the command's user changes instead.
MEMORY_OPTIONS: dict[str, dict[str, str]] = {
    "train": _TRAIN_MEMORY_OPTIONS,
    "curvature": {"the number of rows of X": "the rows of DATA (--rows train or test)", "k": "--k"},
    "predict": _MODEL_MEMORY_OPTIONS,
    "evaluate": _MODEL_MEMORY_OPTIONS,
    "plot": _MODEL_MEMORY_OPTIONS,
}


def memory_sentence(command: str, estimate: MemoryEstimate, *, refused: bool) -> str:
    """The refusal (or warning) of a memory estimate in the words of ``command``'s options.

    Parameters
    ----------
    command : str
        The subcommand, a key of :data:`MEMORY_OPTIONS` (others name no parameter).
    estimate : twolayer.errors.MemoryEstimate
    refused : bool
        The refusal's sentence, else the warning's.

    Returns
    -------
    str
    """
    names = MEMORY_OPTIONS.get(command, {})
    # A parameter the command cannot change is left out, never named in Python's words.
    estimate = dataclasses.replace(
        estimate,
        lower=tuple(p for p in estimate.lower if p in names),
        switch=tuple((p, v) for p, v in estimate.switch if p in names),
    )
    values = {p: f"{names[p]} {v}" for p, v in estimate.switch}
    return estimate.refusal(names, values) if refused else estimate.warning(names, values)


@contextmanager
def _memory_notes(command: str, quiet: bool, deferred: list[str]) -> Iterator[None]:
    """Show each :class:`HighMemoryWarning` as a one-line note in the command's words (none when quiet).

    On a terminal the note comes at once, before the wait it warns of;
    otherwise it is put in ``deferred``, for :func:`main` to print if the
    command succeeds, so that a command that fails still says one line.
    """
    shown = warnings.showwarning
    said: set[str] = set()  # a check before the work and the work's own check say the same once

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if isinstance(message, HighMemoryWarning):
            text = memory_sentence(command, message.estimate, refused=False)
            if not quiet and text not in said:
                said.add(text)
                note = f"twolayer {command}: note: {text}"
                if sys.stderr.isatty():
                    print(note, file=sys.stderr)
                else:
                    deferred.append(note)
            return
        shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", HighMemoryWarning)
        warnings.showwarning = show
        yield


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
        The exit status: 0 success, 1 a failed check, 2 bad input (and work
        that would not fit in memory), 130 interrupted.
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
    notes: list[str] = []
    try:
        with _memory_notes(args.command, bool(getattr(args, "quiet", False)), notes):
            status = int(args.run(args))
        for note in notes:
            print(note, file=sys.stderr)
        return status
    except DataError as exc:
        print(f"twolayer {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except InsufficientMemory as exc:
        print(
            f"twolayer {args.command}: error: {memory_sentence(args.command, exc.estimate, refused=True)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except MemoryError as exc:
        # An allocation no estimate foresaw: still one line, with NumPy's account of it.
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "an allocation failed"
        print(f"twolayer {args.command}: error: out of memory ({detail})", file=sys.stderr)
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
