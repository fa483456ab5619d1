"""The ``twolayer`` command: train, evaluate, predict, check.

Every subcommand is a :class:`Command`: a name, a one-line summary, a
function that adds its arguments to a parser and a function that runs it.
:data:`COMMANDS` lists them in the order of ``twolayer --help``; a new
subcommand is one more entry there.

Conventions:

* results go to standard output; progress, notes and errors to standard error;
* a problem with the user's input (a file, a column, an option's value) is one
  line on standard error and exit status 2, with no traceback and no file
  written or damaged (:class:`~twolayer.errors.DataError`);
* exit status 1 means a check failed (``gradcheck``, ``derive``); 130 means
  training was interrupted with Ctrl-C;
* heavy modules (scikit-learn, rich, matplotlib, SymPy) are imported inside
  the subcommand that needs them, so that ``twolayer --help`` is quick.

The estimators are :class:`twolayer.classifier.TwoLayerClassifier` and, with
``train --bayes``, :class:`twolayer.bayes.BayesianTwoLayerClassifier`; the
curvature comes from :mod:`twolayer.curvature` and the calibration measures
from :mod:`twolayer.report.calibration`. The command line adds no mathematics of
its own beyond the bookkeeping of ``curvature`` (see :class:`_Known`). Inputs are standardised by a
scikit-learn ``StandardScaler`` fitted on the training split (``--scale``,
the default), and the model file holds the scaler and the network together.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from twolayer import __version__
from twolayer.errors import DataError

if TYPE_CHECKING:
    from rich.console import Console
    from typing_extensions import Self

    from twolayer.classifier import TwoLayerClassifier
    from twolayer.io.datasets import Dataset
    from twolayer.io.modelfile import Checkpoint, ModelFile

__all__ = ["COMMANDS", "Command", "build_parser", "main"]

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

# The defaults of `twolayer train`. They are chosen so that the bundled digits
# train in a few seconds to about 97% held-out accuracy with Adam.
TRAIN_DEFAULTS: dict[str, Any] = {
    "hidden": 64,
    "activation": "tanh",
    "solver": "adam",
    "epochs": 100,
    "batch_size": "auto",
    "learning_rate": 3e-3,
    "alpha": 1e-4,
    "tol": 1e-4,
    "n_iter_no_change": 10,
    "class_weight": "none",
    "seed": 0,
    "dtype": "float32",
    "test_size": 0.2,
    "scale": True,
    "checkpoint_every": 10,
}
# The estimator's solvers: minibatch first, then the whole-batch ones, which
# cannot be resumed bit for bit (their internal state lives inside SciPy or
# twolayer.training.second_order and restarts at every call to fit).
MINIBATCH_SOLVERS = ("adam", "sgd")
SOLVERS = (*MINIBATCH_SOLVERS, "lbfgs", "trust-ncg", "newton-cg", "scg")
_FRESH_STATE_ON_RESUME = {
    "lbfgs": "L-BFGS cannot be resumed exactly (SciPy keeps its curvature memory to itself)",
    "trust-ncg": "trust-ncg cannot be resumed exactly (SciPy keeps its trust radius to itself)",
    "newton-cg": "newton-cg cannot be resumed exactly (SciPy keeps its line search's memory to itself)",
    "scg": "scg cannot be resumed exactly (its scale parameter and search direction start afresh)",
}

# `twolayer curvature` computes every eigenvalue (numpy.linalg.eigvalsh of the
# explicit W x W matrices) up to this many parameters: two 5000 x 5000
# matrices take 400 MB and some tens of seconds; beyond, Lanczos alone.
FULL_SPECTRUM_MAX_PARAMS = 5000

# `twolayer train --bayes`: the defaults of BayesianTwoLayerClassifier where
# they differ from TRAIN_DEFAULTS (a weaker start for the evidence is no help:
# the fixed point moves alpha by orders of magnitude in a few cycles).
BAYES_DEFAULTS: dict[str, Any] = {
    "hidden": 20,
    "alpha": 1.0,
    "epochs": 1000,
    "tol": 1e-6,
    "alpha_search": "fixed_point",
    "per_group": False,
    "structure": "full",
    "hessian": "gauss_newton",
    "predictive": "mc",
    "mc_samples": 1000,
    "max_cycles": 10,
}
# Options of `train` that a Bayesian network has no use for.
_NOT_BAYESIAN = {
    "solver": "the MAP network is trained by L-BFGS",
    "batch_size": "the MAP network is trained on the whole batch",
    "learning_rate": "the MAP network is trained by L-BFGS",
    "n_iter_no_change": "L-BFGS stops at --tol",
    "checkpoint": "the evidence procedure cannot be checkpointed",
    "checkpoint_every": "the evidence procedure cannot be checkpointed",
    "resume": "the evidence procedure cannot be checkpointed",
}

# Options that decide the weights: a resumed run must keep them.
_RUN_DEFINING = (
    "target",
    "hidden",
    "activation",
    "solver",
    "batch_size",
    "learning_rate",
    "alpha",
    "tol",
    "n_iter_no_change",
    "class_weight",
    "seed",
    "dtype",
    "test_size",
    "scale",
)


# --------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the usage block is for --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _at_least_two(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 2, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _float(text: str, *, low: float, high: float = math.inf, closed_low: bool, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    inside = (value >= low if closed_low else value > low) and value < high
    if not (math.isfinite(value) and inside):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    return _float(text, low=0.0, closed_low=False, what="a positive number")


def _non_negative_float(text: str) -> float:
    return _float(text, low=0.0, closed_low=True, what="a number >= 0")


def _fraction(text: str) -> float:
    return _float(text, low=0.0, high=1.0, closed_low=False, what="a fraction strictly between 0 and 1")


def _batch_size(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


def _activations() -> list[str]:
    from twolayer.network import ACTIVATIONS

    return sorted(ACTIVATIONS)


def _default(name: str) -> str:
    return f"(default: {TRAIN_DEFAULTS[name]})"


def _bayes_default(name: str) -> str:
    return f"(default: {BAYES_DEFAULTS[name]})"


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    # Training options default to None so that --resume can tell what was
    # given; TRAIN_DEFAULTS fills in the rest.
    p.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="a built-in dataset (see 'twolayer datasets'), a .csv file with a header row or a .npz "
        "file with arrays X and y (default: digits)",
    )
    p.add_argument("--target", metavar="NAME", help="the CSV column holding the labels (default: the last)")
    model = p.add_argument_group("the network and its training")
    model.add_argument("--hidden", type=_positive_int, metavar="M", help=f"hidden units {_default('hidden')}")
    model.add_argument("--activation", choices=_activations(), help=f"hidden-unit activation {_default('activation')}")
    model.add_argument(
        "--solver",
        choices=SOLVERS,
        help="optimiser: minibatch adam or sgd; on the whole batch lbfgs, or with exact Hessian-vector "
        "products trust-ncg, newton-cg (truncated Newton) or scg (Moller's scaled conjugate "
        f"gradient) {_default('solver')}",
    )
    model.add_argument(
        "--epochs",
        type=_positive_int,
        metavar="N",
        help=f"total epochs (iterations for the whole-batch solvers), counted across --resume {_default('epochs')}",
    )
    model.add_argument(
        "--batch-size",
        type=_batch_size,
        metavar="B",
        help=f"minibatch size, or 'auto' for min(200, N) {_default('batch_size')}",
    )
    model.add_argument(
        "--learning-rate",
        type=_positive_float,
        metavar="ETA",
        help=f"initial step size of sgd and adam {_default('learning_rate')}",
    )
    model.add_argument(
        "--alpha", type=_non_negative_float, help=f"L2 penalty (weight decay) on the weights {_default('alpha')}"
    )
    model.add_argument(
        "--tol",
        type=_non_negative_float,
        help=f"stop when the loss improves by less than this for --n-iter-no-change epochs {_default('tol')}",
    )
    model.add_argument("--n-iter-no-change", type=_positive_int, metavar="N", help=f"{_default('n_iter_no_change')}")
    model.add_argument(
        "--class-weight",
        choices=("none", "balanced"),
        help=f"weight the classes equally ('balanced') or the patterns {_default('class_weight')}",
    )
    model.add_argument(
        "--seed", type=_seed, help=f"seeds the split, the initial weights and the shuffling {_default('seed')}"
    )
    model.add_argument("--dtype", choices=("float32", "float64"), help=f"working precision {_default('dtype')}")
    model.add_argument(
        "--test-size",
        type=_fraction,
        metavar="F",
        help=f"fraction held out (stratified) for testing {_default('test_size')}",
    )
    model.add_argument(
        "--scale",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="standardise the features (mean 0, variance 1 on the training split), stored in the "
        "model (default: --scale)",
    )
    bayes = p.add_argument_group(
        "the Bayesian network (--bayes)",
        "With --bayes the network is a twolayer.bayes.BayesianTwoLayerClassifier (PRML 5.7): the MAP network is "
        "trained by L-BFGS in float64 (--epochs iterations per training, default 1000; --tol default 1e-6), the "
        "prior precision alpha is chosen by the evidence (--alpha is where the fixed point starts, default 1), and "
        "predictions are moderated by the Laplace posterior. --hidden defaults to 20. Minibatch options, class "
        "weights and checkpoints do not apply.",
    )
    bayes.add_argument("--bayes", action="store_true", help="train a Bayesian network")
    bayes.add_argument(
        "--alpha-search",
        choices=("fixed_point", "grid"),
        help="MacKay's re-estimation, or the largest evidence over a grid of alphas (1e-2 to 1e2) "
        f"(default: {BAYES_DEFAULTS['alpha_search']})",
    )
    bayes.add_argument(
        "--per-group",
        action="store_true",
        default=None,
        help="one prior precision for each of W1, b1, W2, b2 (fixed point only)",
    )
    bayes.add_argument(
        "--structure",
        choices=("full", "last_layer", "diagonal"),
        help=f"the posterior's covariance {_bayes_default('structure')}",
    )
    bayes.add_argument(
        "--hessian", choices=("gauss_newton", "exact"), help=f"the posterior's curvature {_bayes_default('hessian')}"
    )
    bayes.add_argument(
        "--predictive",
        choices=("mc", "probit"),
        help=f"Monte Carlo or the probit approximation of the moderated predictive {_bayes_default('predictive')}",
    )
    bayes.add_argument(
        "--mc-samples",
        type=_positive_int,
        metavar="S",
        help=f"Monte Carlo samples per prediction {_bayes_default('mc_samples')}",
    )
    bayes.add_argument(
        "--max-cycles",
        type=_positive_int,
        metavar="C",
        help=f"the most train / re-estimate cycles of the fixed point {_bayes_default('max_cycles')}",
    )
    out = p.add_argument_group("files")
    out.add_argument("--out", metavar="PATH", help="write the trained model here (safetensors)")
    out.add_argument(
        "--plot",
        metavar="PNG",
        help="write learning curves, confusion matrix (and, for two features, decision regions) to this PNG file",
    )
    out.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="keep a resumable checkpoint here, written every --checkpoint-every epochs, at the end "
        "and on Ctrl-C (default with --resume: the resumed file)",
    )
    out.add_argument("--checkpoint-every", type=_positive_int, metavar="K", help=f"{_default('checkpoint_every')}")
    out.add_argument(
        "--resume",
        metavar="PATH",
        help="continue from a checkpoint up to --epochs in total; with adam and sgd the result equals "
        "an uninterrupted run bit for bit (the whole-batch solvers continue from the weights with "
        "a fresh solver state)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _add_model_data_arguments(p: argparse.ArgumentParser, *, data_required: bool) -> None:
    p.add_argument("model", metavar="MODEL", help="a model file written by 'twolayer train --out'")
    p.add_argument(
        "data",
        metavar="DATA",
        nargs=None if data_required else "?",
        help="a built-in dataset, a .csv or a .npz file; columns are matched by name when the model "
        "has names" + ("" if data_required else " (optional)"),
    )
    p.add_argument(
        "--target",
        metavar="NAME",
        help="the CSV column holding the labels (default: the model's target column, else the last)",
    )


def _add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    _add_model_data_arguments(p, data_required=True)
    p.add_argument(
        "--rows",
        choices=("all", "train", "test"),
        default="all",
        help="all of DATA's rows, or only those the model was trained on or held out (DATA must be the "
        "model's training data) (default: all)",
    )
    p.add_argument(
        "--bins",
        type=_positive_int,
        default=15,
        metavar="B",
        help="equal-width confidence bins of the calibration errors and the diagram (default: 15)",
    )
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="write a reliability diagram (for a Bayesian network, moderated and MAP) to this PNG file",
    )


def _add_predict_arguments(p: argparse.ArgumentParser) -> None:
    _add_model_data_arguments(p, data_required=True)
    p.add_argument("--proba", action="store_true", help="add a column of probabilities per class")
    p.add_argument("--out", metavar="FILE", help="write the CSV here instead of standard output")


def _add_plot_arguments(p: argparse.ArgumentParser) -> None:
    _add_model_data_arguments(p, data_required=False)
    p.add_argument("--out", metavar="PNG", required=True, help="the PNG file to write")


def _add_curvature_arguments(p: argparse.ArgumentParser) -> None:
    _add_model_data_arguments(p, data_required=True)
    p.epilog = (
        "The matrices are those of the error summed over the patterns used (divide by N for the mean "
        "loss). A trained model is at a minimum of its training rows only (--rows train): all of a built-in "
        "dataset's rows include those held out in training, and there the gradient is not zero."
    )
    p.add_argument(
        "--k",
        type=_positive_int,
        default=6,
        metavar="N",
        help="eigenvalues to find at each end of each spectrum (default: 6)",
    )
    p.add_argument(
        "--max-products",
        type=_positive_int,
        default=1000,
        metavar="P",
        help="the most matrix-vector products Lanczos may spend on each end of each spectrum (default: 1000)",
    )
    p.add_argument(
        "--rows",
        choices=("all", "train", "test"),
        default="all",
        help="all of DATA's rows, or only those the model was trained on (where a trained model is at a "
        "minimum) or held out; train and test need DATA to be the model's training data "
        "(default: all)",
    )
    p.add_argument(
        "--plot",
        metavar="PNG",
        help="write a picture of the spectra: histograms of every eigenvalue when the full spectrum is "
        f"computed (W <= {FULL_SPECTRUM_MAX_PARAMS}), the extreme values otherwise",
    )


def _add_gradcheck_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--features", type=_positive_int, default=4, metavar="D", help="input features (default: 4)")
    p.add_argument("--hidden", type=_positive_int, default=5, metavar="M", help="hidden units (default: 5)")
    p.add_argument("--classes", type=_positive_int, default=3, metavar="K", help="classes (default: 3)")
    p.add_argument("--samples", type=_positive_int, default=10, metavar="N", help="patterns (default: 10)")
    p.add_argument("--seed", type=_seed, default=0, help="seeds the random network and data (default: 0)")
    p.add_argument("--activation", choices=_activations(), default="tanh", help="(default: tanh)")
    p.add_argument("--eps", type=_positive_float, default=1e-6, help="central-difference step (default: 1e-6)")
    p.add_argument(
        "--rtol", type=_positive_float, default=1e-7, help="largest relative error that passes (default: 1e-7)"
    )
    p.add_argument(
        "--max-params",
        type=_positive_int,
        metavar="P",
        help="check a random sample of P weights (at least 4) instead of all",
    )


def _add_derive_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--classes",
        type=_at_least_two,
        nargs="+",
        default=[2, 3, 4],
        metavar="K",
        help="the numbers of classes for which each identity is proved (default: 2 3 4)",
    )
    p.add_argument("--seed", type=_seed, default=0, help="seeds the counterexamples and spot checks (default: 0)")


def _add_datasets_arguments(p: argparse.ArgumentParser) -> None:
    pass


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one-line summary, arguments and action."""

    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``twolayer`` with one subparser per entry of :data:`COMMANDS`."""
    parser = _Parser(
        prog="twolayer",
        description="The two-layer tanh-softmax network with exact backpropagation: train it, evaluate it, "
        "predict with it, and check its derivatives.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"twolayer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.summary, description=command.summary, allow_abbrev=False)
        command.add_arguments(p)
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


# --------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------


def _console(stream: TextIO | None = None) -> Console:
    from rich.console import Console

    return Console(file=stream or sys.stdout, highlight=False, soft_wrap=False)


def _note(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def _check_writable(path: str | None, option: str) -> None:
    # Checked before any work, so that a typo in a folder name costs nothing.
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise DataError(f"{option} {path}: is a folder")
    if not target.parent.is_dir():
        raise DataError(f"{option} {path}: the folder {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise DataError(f"{option} {path}: the folder {target.parent} is not writable")


def _need_matplotlib(option: str) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise DataError(f"{option} needs matplotlib: pip install 'twolayer[plot]'")


def _label(value: object) -> str:
    return str(value.item() if isinstance(value, np.generic) else value)


def _confusion_table(matrix: np.ndarray, classes: Sequence[object] | np.ndarray, title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("true \\ predicted", justify="right", style="bold")
    for c in classes:
        table.add_column(_label(c), justify="right")
    for c, row in zip(classes, matrix):
        table.add_row(_label(c), *(str(int(v)) for v in row))
    return table


def _key_value_table(title: str, rows: Sequence[tuple[str, str]]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False, min_width=len(title))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


# --------------------------------------------------------------------------
# Data against a model
# --------------------------------------------------------------------------


def _model_data(model_file: ModelFile, source: str, target: str | None, *, require_target: bool) -> Dataset:
    """Load DATA with the columns the model needs, matched by name when it has names."""
    from twolayer.io.datasets import load_dataset

    features: Sequence[str] | int = (
        list(model_file.feature_names) if model_file.feature_names is not None else model_file.n_features
    )
    return load_dataset(
        source, target=target, features=features, require_target=require_target, default_target=model_file.target_name
    )


def _labels_as_classes(data: Dataset, classes: np.ndarray) -> np.ndarray:
    """The data's labels in the type of the model's classes; unknown labels are an error."""
    assert data.y is not None
    y = data.y
    if classes.dtype.kind == "U" and y.dtype.kind != "U":
        y = y.astype(str)  # "1" in a CSV read back as an integer
    unknown = np.setdiff1d(np.unique(y), classes) if y.dtype.kind == classes.dtype.kind else np.unique(y)
    if unknown.size:
        shown = ", ".join(repr(_label(u)) for u in unknown[:5])
        known = ", ".join(repr(_label(c)) for c in classes[:10])
        raise DataError(f"{data.source}: labels {shown} are not among the model's classes ({known})")
    return y


# --------------------------------------------------------------------------
# twolayer train
# --------------------------------------------------------------------------


class _Display:
    """Progress on standard error: a rich bar on a terminal, a plain line every few epochs otherwise."""

    def __init__(
        self, total: int, first_epoch: int, *, quiet: bool, stream: TextIO | None = None, unit: str = "epoch"
    ) -> None:
        self.total = total
        self.unit = unit  # "iteration" for the whole-batch solvers
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interactive = not quiet and self.stream.isatty()
        self.every = max(1, math.ceil((total - first_epoch) / 10))
        self.first_epoch = first_epoch
        self.started = time.perf_counter()
        self._progress: Any = None
        self._task: Any = None
        self._pending: tuple[int, float, float] | None = None

    def __enter__(self) -> Self:
        if self.interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn(self.unit),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("held-out acc {task.fields[accuracy]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=_console(self.stream),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "train", total=self.total, completed=self.first_epoch, loss="-", accuracy="-"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
        elif self._pending is not None and exc[0] is None:
            self._print(*self._pending, last=True)  # training stopped between two lines: show where

    def update(self, epoch: int, loss: float, accuracy: float) -> None:
        if self.quiet:
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=epoch, loss=f"{loss:.4g}", accuracy=f"{accuracy:.4f}")
            return
        done = epoch - self.first_epoch
        if done == 1 or done % self.every == 0 or epoch == self.total:
            self._print(epoch, loss, accuracy)
        else:
            self._pending = (epoch, loss, accuracy)

    def _print(self, epoch: int, loss: float, accuracy: float, *, last: bool = False) -> None:
        self._pending = None
        done = max(epoch - self.first_epoch, 1)
        elapsed = time.perf_counter() - self.started
        left = elapsed / done * (self.total - epoch)
        width = len(str(self.total))
        timing = f"{elapsed:.1f}s elapsed" + ("" if last else f", about {left:.1f}s left")
        print(
            f"{self.unit} {epoch:>{width}}/{self.total}  loss {loss:.4g}  held-out accuracy {accuracy:.4f}  {timing}",
            file=self.stream,
            flush=True,
        )


@dataclass
class _Run:
    """Everything a training run knows besides the estimator: what a checkpoint records."""

    options: dict[str, Any]
    data: Dataset
    train_index: np.ndarray
    test_index: np.ndarray
    scaler_mean: np.ndarray | None
    scaler_scale: np.ndarray | None
    scaler_samples: int
    accuracy: list[float]
    elapsed: float

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise with the scaler that the model file will hold (the identity without --scale)."""
        if self.scaler_mean is None or self.scaler_scale is None:
            return X
        from twolayer.io.modelfile import standard_scaler

        scaler = standard_scaler(self.scaler_mean, self.scaler_scale, self.scaler_samples)
        return np.asarray(scaler.transform(X))


def _epochs_done(model: TwoLayerClassifier) -> int:
    # n_iter_ counts the epochs of the latest fit only (as in scikit-learn);
    # the loss curve runs across warm starts, one entry per epoch.
    return len(model.loss_curve_)


class _Monitor:
    """The estimator's callback: progress, held-out accuracy, periodic checkpoints, Ctrl-C."""

    def __init__(
        self,
        run: _Run,
        X_test: np.ndarray,
        y_test: np.ndarray,
        display: _Display,
        checkpoint: Callable[[TwoLayerClassifier], None] | None,
        every: int,
    ) -> None:
        self.run = run
        self.X_test = X_test
        self.y_test = y_test
        self.display = display
        self.checkpoint = checkpoint
        self.every = every
        self.interrupted = False
        self.diverged_at: int | None = None

    def __call__(self, model: TwoLayerClassifier) -> bool:
        epoch = _epochs_done(model)
        loss = float(model.loss_curve_[-1])
        if not math.isfinite(loss):
            self.diverged_at = epoch  # nothing useful can follow: stop, and write nothing
            return True
        accuracy = float(np.mean(model.predict(self.X_test) == self.y_test))
        self.run.accuracy.append(accuracy)
        self.display.update(epoch, loss, accuracy)
        if self.checkpoint is not None and epoch % self.every == 0 and not self.interrupted:
            self.checkpoint(model)
        return self.interrupted


@contextlib.contextmanager
def _sigint_stops(monitor: _Monitor) -> Iterator[None]:
    """Ctrl-C asks the monitor to stop after this epoch; a second Ctrl-C aborts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can be handled only in the main thread
        return

    def handler(signum: int, frame: object) -> None:
        if monitor.interrupted:
            raise KeyboardInterrupt
        monitor.interrupted = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _resolve_options(args: argparse.Namespace, stored: dict[str, Any] | None, resume: str | None) -> dict[str, Any]:
    given = {
        key: getattr(args, key)
        for key in (*TRAIN_DEFAULTS, "target", "epochs", "out", "plot", "checkpoint", "checkpoint_every")
    }
    if stored is None:
        options = {key: (TRAIN_DEFAULTS.get(key) if value is None else value) for key, value in given.items()}
        return options
    options = dict(stored)
    for key in _RUN_DEFINING:
        if given[key] is not None and given[key] != stored.get(key):
            flag = "--" + key.replace("_", "-")
            shown = (
                f"{flag} {given[key]}" if not isinstance(given[key], bool) else (flag if given[key] else "--no-" + key)
            )
            raise DataError(
                f"{shown} differs from the checkpoint's {stored.get(key)!r}; a resumed run keeps the settings it "
                "started with (drop the option, or start afresh without --resume)"
            )
    for key in ("epochs", "out", "plot", "checkpoint_every"):
        if given[key] is not None:
            options[key] = given[key]
    options["checkpoint"] = given["checkpoint"] if given["checkpoint"] is not None else resume
    return options


# What `twolayer train` records in a checkpoint besides the training state.
_RUN_RECORD: dict[str, type | tuple[type, ...]] = {
    "options": dict,
    "source": str,
    "fingerprint": str,
    "scaler_samples": int,
    "accuracy": list,
    "elapsed": (int, float),
}


def _check_run_record(path: str, record: dict[str, Any]) -> None:
    """A checkpoint written by another program may lack what resuming needs: say so in one line."""
    for key, kind in _RUN_RECORD.items():
        if not isinstance(record.get(key), kind):
            raise DataError(f"{path}: not a checkpoint of 'twolayer train' (its record has no valid {key!r})")
    missing = [
        key
        for key in (*TRAIN_DEFAULTS, "target", "epochs", "out", "plot", "checkpoint")
        if key not in record["options"]
    ]
    if missing:
        raise DataError(f"{path}: not a checkpoint of 'twolayer train' (the option {missing[0]!r} is not recorded)")


def _hyperparameters(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "n_hidden": options["hidden"],
        "activation": options["activation"],
        "solver": options["solver"],
        "alpha": options["alpha"],
        "batch_size": options["batch_size"],
        "learning_rate_init": options["learning_rate"],
        "max_iter": options["epochs"],
        "random_state": options["seed"],
        "tol": options["tol"],
        "n_iter_no_change": options["n_iter_no_change"],
        "class_weight": None if options["class_weight"] == "none" else options["class_weight"],
    }


def _split(data: Dataset, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test indices, after checking that every class can be on both sides."""
    from sklearn.model_selection import train_test_split

    assert data.y is not None
    classes, counts = np.unique(data.y, return_counts=True)
    rare = np.flatnonzero(counts < 2)
    if rare.size:
        raise DataError(
            f"{data.source}: class {_label(classes[rare[0]])!r} has a single sample; a stratified "
            "train/test split needs at least two of each class"
        )
    n_test = math.ceil(test_size * data.n_samples)
    for side, n in (("held out", n_test), ("left for training", data.n_samples - n_test)):
        if n < classes.size:
            raise DataError(
                f"--test-size {test_size} leaves {n} samples {side}, fewer than the {classes.size} "
                f"classes of {data.source}"
            )
    train, test = train_test_split(np.arange(data.n_samples), test_size=test_size, stratify=data.y, random_state=seed)
    return np.sort(train), np.sort(test)


def _pipeline(run: _Run, model: Any) -> Any:
    from twolayer.io.modelfile import scaled_model

    if run.scaler_mean is None or run.scaler_scale is None:
        return model
    return scaled_model(model, run.scaler_mean, run.scaler_scale, run.scaler_samples)


def _metrics(predictor: Any, X: np.ndarray, y: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    return _metrics_of(predictor.predict_proba(X), y, classes)


def _metrics_of(proba: np.ndarray, y: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import confusion_matrix, log_loss

    predicted = classes[np.argmax(proba, axis=1)]
    return {
        "n_samples": int(y.size),
        "accuracy": float(np.mean(predicted == y)),
        "log_loss": float(log_loss(y, proba, labels=classes)),
        "confusion_matrix": confusion_matrix(y, predicted, labels=classes).tolist(),
        "predicted": predicted,
    }


def _train(args: argparse.Namespace) -> int:
    from twolayer.classifier import TwoLayerClassifier
    from twolayer.io.datasets import check_classes, load_dataset
    from twolayer.io.modelfile import (
        Checkpoint,
        atomic_write_all,
        load_checkpoint,
        model_bytes,
        save_checkpoint,
    )
    from twolayer.training.optim import TrainingDiverged

    if args.bayes:
        return _train_bayes(args)
    for key in BAYES_DEFAULTS:
        if key not in TRAIN_DEFAULTS and getattr(args, key) is not None:
            raise DataError(f"--{key.replace('_', '-')} applies to a Bayesian network: add --bayes")
    checkpoint_in: Checkpoint | None = None
    stored = None
    if args.resume is not None:
        checkpoint_in = load_checkpoint(args.resume)
        _check_run_record(args.resume, checkpoint_in.run)
        stored = checkpoint_in.run["options"]
    options = _resolve_options(args, stored, args.resume)
    for option in ("out", "plot", "checkpoint"):
        _check_writable(options[option], "--" + option)
    if options["plot"] is not None:
        _need_matplotlib("--plot")
    paths = [Path(p).resolve() for p in (options["out"], options["plot"], options["checkpoint"]) if p is not None]
    if len(set(paths)) < len(paths):
        raise DataError("--out, --plot and --checkpoint must name different files")

    source = args.data or (checkpoint_in.run["source"] if checkpoint_in is not None else "digits")
    data = load_dataset(source, target=options["target"])
    check_classes(data)
    assert data.y is not None
    quiet = bool(args.quiet)
    hyper = _hyperparameters(options)
    dtype = np.float32 if options["dtype"] == "float32" else np.float64

    if checkpoint_in is None:
        train_index, test_index = _split(data, options["test_size"], options["seed"])
        mean = scale = None
        if options["scale"]:
            from sklearn.preprocessing import StandardScaler

            scaler = StandardScaler().fit(data.X[train_index])
            mean, scale = scaler.mean_, scaler.scale_
        run = _Run(options, data, train_index, test_index, mean, scale, int(train_index.size), [], 0.0)
        model = TwoLayerClassifier(**hyper)
        first_epoch = 0
    else:
        if checkpoint_in.run["fingerprint"] != data.fingerprint():  # before any training: refuse other data
            raise DataError(f"{source} is not the data the checkpoint {args.resume} was trained on")
        run = _Run(
            options,
            data,
            checkpoint_in.train_index,
            checkpoint_in.test_index,
            checkpoint_in.scaler_mean,
            checkpoint_in.scaler_scale,
            checkpoint_in.run["scaler_samples"],
            list(checkpoint_in.run["accuracy"]),
            float(checkpoint_in.run["elapsed"]),
        )
        top = max(int(run.train_index.max()), int(run.test_index.max()))
        if top >= data.n_samples:
            raise DataError(f"{args.resume}: the split names row {top}, but {source} has {data.n_samples} rows")
        try:
            model = TwoLayerClassifier(**checkpoint_in.hyperparameters).set_training_state(checkpoint_in.state)
        except (TypeError, ValueError, KeyError) as exc:
            raise DataError(f"{args.resume}: the training state cannot be restored ({exc})") from None
        first_epoch = checkpoint_in.epoch
        if options["solver"] in _FRESH_STATE_ON_RESUME:
            _note(
                f"note: {_FRESH_STATE_ON_RESUME[options['solver']]}: the run continues from the checkpoint's "
                "weights with a fresh solver state",
                quiet=bool(args.quiet),
            )

    total = options["epochs"]
    X_train = run.transform(data.X[run.train_index]).astype(dtype)
    y_train = data.y[run.train_index]
    X_test = run.transform(data.X[run.test_index])
    y_test = data.y[run.test_index]

    fingerprint = data.fingerprint()

    def write_checkpoint(fitted: TwoLayerClassifier) -> None:
        assert options["checkpoint"] is not None
        state = fitted.get_training_state()
        info = {
            "options": options,
            "source": source,
            "fingerprint": fingerprint,
            "scaler_samples": run.scaler_samples,
            "accuracy": list(run.accuracy),
            "elapsed": run.elapsed + time.perf_counter() - started,
        }
        params = dict(hyper.items())
        save_checkpoint(
            options["checkpoint"],
            Checkpoint(
                state=state,
                hyperparameters=params,
                scaler_mean=run.scaler_mean,
                scaler_scale=run.scaler_scale,
                train_index=run.train_index,
                test_index=run.test_index,
                epoch=_epochs_done(fitted),
                run=info,
            ),
        )

    from sklearn.exceptions import ConvergenceWarning

    started = time.perf_counter()
    to_train = total - first_epoch
    if not quiet:
        what = f"{data.source}: {data.n_samples} samples, {data.n_features} features, {np.unique(data.y).size} classes"
        resumed = f", resuming at epoch {first_epoch}" if first_epoch else ""
        _note(f"training on {what}; {run.train_index.size} for training, {run.test_index.size} held out{resumed}")
    unit = "epoch" if options["solver"] in MINIBATCH_SOLVERS else "iteration"
    display = _Display(total, first_epoch, quiet=quiet, unit=unit)
    every = options["checkpoint_every"] if options["checkpoint"] is not None else 0
    monitor = _Monitor(run, X_test, y_test, display, write_checkpoint if every else None, every or 1)
    if to_train > 0:
        model.set_params(max_iter=to_train, callback=monitor, warm_start=first_epoch > 0)
        try:
            with display, _sigint_stops(monitor), warnings.catch_warnings(), np.errstate(over="ignore"):
                # Reaching --epochs is the plan, not a problem to warn about;
                # overflow on the way to divergence is reported below, once.
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(X_train, y_train)
        except TrainingDiverged as exc:
            raise DataError(f"{exc} Nothing was written; try a smaller --learning-rate") from None
    elif not quiet:
        _note(f"the checkpoint is at epoch {first_epoch}, --epochs is {total}: nothing left to train")
    model.set_params(callback=None, max_iter=total, warm_start=False)
    epochs_done = _epochs_done(model)
    if monitor.diverged_at is not None or not all(np.isfinite(p).all() for p in model.params_):
        raise DataError(
            f"training diverged in epoch {monitor.diverged_at or epochs_done}: the loss is no longer "
            "finite. Nothing was written; try a smaller --learning-rate"
        )

    if monitor.interrupted:
        if options["checkpoint"] is not None:
            write_checkpoint(model)
            _note(
                f"interrupted at epoch {epochs_done}; checkpoint written to {options['checkpoint']}; continue with "
                f"'twolayer train --resume {options['checkpoint']}'"
            )
        else:
            _note(f"interrupted at epoch {epochs_done}; nothing written (give --checkpoint to be able to resume)")
        return EXIT_INTERRUPTED

    elapsed = run.elapsed + time.perf_counter() - started
    predictor = _pipeline(run, model)
    classes = np.asarray(model.classes_)
    train_metrics = _metrics(predictor, data.X[run.train_index], y_train, classes)
    test_metrics = _metrics(predictor, data.X[run.test_index], y_test, classes)
    stopped = "reached --epochs" if epochs_done >= total else f"converged, --tol {options['tol']}"
    summary = {
        "data": source,
        "n_train": int(run.train_index.size),
        "n_test": int(run.test_index.size),
        "epochs": epochs_done,
        "stopped": stopped,
        "seconds": round(elapsed, 3),
        "train_accuracy": train_metrics["accuracy"],
        "test_accuracy": test_metrics["accuracy"],
        "test_log_loss": test_metrics["log_loss"],
        "test_confusion_matrix": test_metrics["confusion_matrix"],
        "split": _split_record(data, run.test_index, fingerprint),
    }

    png = None
    if options["plot"] is not None:
        png = _report_png(
            predictor,
            classes,
            model.loss_curve_,
            run.accuracy,
            test_metrics["confusion_matrix"],
            data,
            title=f"{source}: {hyper['n_hidden']} hidden units, {hyper['solver']}",
        )
    # Everything is computed: now write the model and the plot, atomically and both or neither.
    files = []
    if options["out"] is not None:
        files.append(
            (
                options["out"],
                model_bytes(
                    predictor,
                    feature_names=data.feature_names,
                    target_name=data.target_name,
                    validation_curve=run.accuracy,
                    info=summary,
                ),
            )
        )
    if png is not None:
        files.append((options["plot"], png))
    atomic_write_all(files)
    if options["checkpoint"] is not None:
        write_checkpoint(model)

    if not quiet:
        console = _console()
        D, M, K = data.n_features, hyper["n_hidden"], classes.size
        console.print(
            _key_value_table(
                "Summary",
                [
                    (
                        "data",
                        f"{source} ({run.train_index.size} train / {run.test_index.size} test, {D} features, {K} classes)",
                    ),
                    (
                        "network",
                        f"{D}-{M}-{K}, {hyper['activation']} hidden units, softmax outputs, {options['dtype']}",
                    ),
                    ("training", f"{hyper['solver']}, {epochs_done} {unit}s ({stopped}), {elapsed:.1f} s"),
                    ("train accuracy", f"{train_metrics['accuracy']:.4f}"),
                    ("test accuracy", f"{test_metrics['accuracy']:.4f}"),
                    ("test log-loss", f"{test_metrics['log_loss']:.4f}"),
                ],
            )
        )
        console.print(
            _confusion_table(
                np.asarray(test_metrics["confusion_matrix"]), classes, "Confusion matrix (held-out test set)"
            )
        )
        for option, label in (("out", "model"), ("plot", "plot"), ("checkpoint", "checkpoint")):
            if options[option] is not None:
                print(f"wrote {label} {options[option]}")
    return EXIT_OK


def _split_record(data: Dataset, test_index: np.ndarray, fingerprint: str) -> dict[str, Any]:
    """What a model file's info records of its train/test split: enough to find the training rows again."""
    return {"fingerprint": fingerprint, "n_samples": data.n_samples, "test_rows": [int(i) for i in test_index]}


def _rows(model_file: ModelFile, data: Dataset, which: str, model: str) -> np.ndarray:
    """The rows of DATA to use: all, or the model's training or held-out rows (DATA must be its training data)."""
    if which == "all":
        return np.arange(data.n_samples)
    record = (model_file.info or {}).get("split")
    if not isinstance(record, dict) or not isinstance(record.get("test_rows"), list):
        raise DataError(
            f"--rows {which}: {model} does not record its train/test split (it was not written by "
            "'twolayer train'); use --rows all"
        )
    if record.get("fingerprint") != data.fingerprint() or record.get("n_samples") != data.n_samples:
        raise DataError(f"--rows {which}: {data.source} is not the data {model} was trained on")
    test = np.zeros(data.n_samples, dtype=bool)
    try:
        test[np.asarray(record["test_rows"], dtype=np.int64)] = True
    except (IndexError, ValueError, TypeError):
        raise DataError(f"--rows {which}: {model} records a malformed split") from None
    return np.flatnonzero(~test if which == "train" else test)


def _train_bayes(args: argparse.Namespace) -> int:
    """``twolayer train --bayes``: the evidence procedure, then the summary and the files."""
    from sklearn.exceptions import ConvergenceWarning

    from twolayer.bayes import BayesianTwoLayerClassifier
    from twolayer.io.datasets import check_classes, load_dataset
    from twolayer.io.modelfile import atomic_write_all, model_bytes
    from twolayer.report.calibration import calibration_summary

    for key, reason in _NOT_BAYESIAN.items():
        if getattr(args, key) is not None:
            raise DataError(f"--{key.replace('_', '-')} does not apply to --bayes ({reason})")
    if args.class_weight not in (None, "none"):
        raise DataError("--class-weight does not apply to --bayes (the evidence is that of the unweighted patterns)")
    if args.dtype == "float32":
        raise DataError("--dtype float32 does not apply to --bayes (a Bayesian network works in float64)")

    def option(key: str) -> Any:
        given = getattr(args, key)
        if given is not None:
            return given
        return BAYES_DEFAULTS[key] if key in BAYES_DEFAULTS else TRAIN_DEFAULTS.get(key)

    options = {
        key: option(key)
        for key in (
            "target",
            "hidden",
            "activation",
            "epochs",
            "alpha",
            "tol",
            "seed",
            "test_size",
            "scale",
            "out",
            "plot",
            *BAYES_DEFAULTS,
        )
    }
    if options["alpha"] <= 0:
        raise DataError("--alpha must be positive with --bayes (it is a prior precision)")
    if options["per_group"] and options["alpha_search"] == "grid":
        raise DataError("--per-group needs --alpha-search fixed_point (a grid holds one alpha)")
    for key in ("out", "plot"):
        _check_writable(options[key], "--" + key)
    if options["plot"] is not None:
        _need_matplotlib("--plot")
    paths = [Path(p).resolve() for p in (options["out"], options["plot"]) if p is not None]
    if len(set(paths)) < len(paths):
        raise DataError("--out and --plot must name different files")

    source = args.data or "digits"
    data = load_dataset(source, target=options["target"])
    check_classes(data)
    assert data.y is not None
    quiet = bool(args.quiet)
    train_index, test_index = _split(data, options["test_size"], options["seed"])
    mean = scale = None
    if options["scale"]:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(data.X[train_index])
        mean, scale = scaler.mean_, scaler.scale_
    run = _Run(options, data, train_index, test_index, mean, scale, int(train_index.size), [], 0.0)
    model = BayesianTwoLayerClassifier(
        n_hidden=options["hidden"],
        activation=options["activation"],
        alpha=options["alpha"],
        alpha_search=options["alpha_search"],
        per_group=bool(options["per_group"]),
        hessian=options["hessian"],
        structure=options["structure"],
        max_cycles=options["max_cycles"],
        max_iter=options["epochs"],
        tol=options["tol"],
        method=options["predictive"],
        n_samples=options["mc_samples"],
        random_state=options["seed"],
    )
    X_train, y_train = run.transform(data.X[train_index]), data.y[train_index]
    D, M, K = data.n_features, options["hidden"], np.unique(data.y).size
    if not quiet:
        what = f"{data.source}: {data.n_samples} samples, {D} features, {K} classes"
        search = (
            "MacKay's fixed point" + (", one alpha per group" if options["per_group"] else "")
            if options["alpha_search"] == "fixed_point"
            else "the largest evidence over a grid"
        )
        _note(
            f"training a Bayesian network on {what}; {train_index.size} for training, {test_index.size} held out; "
            f"alpha by {search} ({options['structure']} Laplace posterior, {options['hessian']} curvature)"
        )
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            model.fit(X_train, y_train)
        except ValueError as exc:
            raise DataError(f"the Bayesian network cannot be trained: {exc}") from None
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            _note(f"note: {warning.message}", quiet=quiet)
        else:  # not ours to judge: pass it on
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    elapsed = time.perf_counter() - started

    predictor = _pipeline(run, model)
    classes = np.asarray(model.classes_)
    y_test = data.y[test_index]
    train_metrics = _metrics(predictor, data.X[train_index], y_train, classes)
    proba = np.asarray(predictor.predict_proba(data.X[test_index]))
    proba_map = _map_proba(predictor, data.X[test_index])
    test_metrics = _metrics_of(proba, y_test, classes)
    moderated = calibration_summary(y_test, proba, classes=classes)
    at_map = calibration_summary(y_test, proba_map, classes=classes)
    alpha = [float(a) for a in model.alpha_]
    summary = {
        "data": source,
        "n_train": int(train_index.size),
        "n_test": int(test_index.size),
        "bayesian": True,
        "epochs": int(model.n_iter_),
        "cycles": int(model.n_cycles_),
        "seconds": round(elapsed, 3),
        "alpha": alpha,
        "gamma": float(model.gamma_),
        "log_evidence": float(model.log_evidence_),
        "train_accuracy": train_metrics["accuracy"],
        "test_accuracy": test_metrics["accuracy"],
        "test_log_loss": test_metrics["log_loss"],
        "test_log_loss_map": at_map["log_loss"],
        "test_ece": moderated["ece"],
        "test_ece_map": at_map["ece"],
        "test_confusion_matrix": test_metrics["confusion_matrix"],
        "split": _split_record(data, test_index, data.fingerprint()),
    }
    png = None
    if options["plot"] is not None:
        png = _report_png(
            predictor,
            classes,
            model.loss_curve_,
            None,
            test_metrics["confusion_matrix"],
            data,
            title=f"{source}: Bayesian network, {M} hidden units, alpha by the evidence",
        )
    files = []  # the model and the plot, atomically and both or neither
    if options["out"] is not None:
        files.append(
            (
                options["out"],
                model_bytes(predictor, feature_names=data.feature_names, target_name=data.target_name, info=summary),
            )
        )
    if png is not None:
        files.append((options["plot"], png))
    atomic_write_all(files)

    if not quiet:
        W = (D + 1) * M + (M + 1) * K
        groups = ", ".join(f"{g} {a:.4g}" for g, a in zip(("W1", "b1", "W2", "b2"), alpha))
        console = _console()
        console.print(
            _key_value_table(
                "Summary",
                [
                    (
                        "data",
                        f"{source} ({train_index.size} train / {test_index.size} test, {D} features, {K} classes)",
                    ),
                    (
                        "network",
                        (
                            f"{D}-{M}-{K}, {options['activation']} hidden units, softmax outputs, float64, Bayesian "
                            f"({options['structure']} Laplace posterior, {options['hessian']} curvature)"
                        ),
                    ),
                    (
                        "training",
                        f"{model.n_cycles_} trainings, {model.n_iter_} L-BFGS iterations in all, {elapsed:.1f} s",
                    ),
                    ("alpha", f"{alpha[0]:.4g} (all weights and biases)" if len(set(alpha)) == 1 else groups),
                    ("gamma", f"{model.gamma_:.4g} well-determined parameters of {W}"),
                    ("log evidence", f"{model.log_evidence_:.6g}"),
                    ("train accuracy", f"{train_metrics['accuracy']:.4f}"),
                    ("test accuracy", f"{test_metrics['accuracy']:.4f} (MAP network {at_map['accuracy']:.4f})"),
                    ("test log-loss", f"{test_metrics['log_loss']:.4f} (MAP network {at_map['log_loss']:.4f})"),
                    ("test ECE", f"{moderated['ece']:.4f} (MAP network {at_map['ece']:.4f}), 15 bins"),
                ],
            )
        )
        console.print(
            _confusion_table(
                np.asarray(test_metrics["confusion_matrix"]), classes, "Confusion matrix (held-out test set, moderated)"
            )
        )
        for key, label in (("out", "model"), ("plot", "plot")):
            if options[key] is not None:
                print(f"wrote {label} {options[key]}")
    return EXIT_OK


def _report_png(
    predictor: Any,
    classes: np.ndarray,
    loss: Sequence[float],
    accuracy: Sequence[float] | None,
    matrix: Sequence[Sequence[int]] | None,
    data: Dataset | None,
    *,
    title: str,
) -> bytes:
    from twolayer.report import plots

    regions = contours = None
    if data is not None and data.n_features == 2 and data.y is not None:
        index = {c: k for k, c in enumerate(classes.tolist())}
        y_index = np.array([index.get(v, -1) for v in data.y.tolist()])
        if _is_bayesian(predictor):
            # PRML Fig. 5.23: the MAP network's contours beside the moderated ones.
            predictors = {
                "MAP network": lambda P: _map_proba(predictor, P),
                "moderated": lambda P: np.asarray(predictor.predict_proba(P)),
            }
            contours = (predictors, data.X, y_index)
        else:

            def predict_index(P: np.ndarray) -> np.ndarray:
                return np.asarray(np.argmax(predictor.predict_proba(P), axis=1))

            regions = (predict_index, data.X, y_index)
    return plots.report_png(
        loss=list(loss),
        accuracy=list(accuracy) if accuracy else None,
        matrix=None if matrix is None else np.asarray(matrix),
        classes=classes.tolist(),
        regions=regions,
        contours=contours,
        feature_names=data.feature_names if data is not None else None,
        title=title,
        unit=_curve_unit(predictor),
    )


def _curve_unit(model: Any) -> str:
    """What one entry of a model's loss curve is."""
    network = _network_of(model)
    if _is_bayesian(network):
        return "L-BFGS iteration (all trainings in turn)"
    return "epoch" if network.solver in MINIBATCH_SOLVERS else "iteration"


def _network_of(model: Any) -> Any:
    """The network itself: the last step of a pipeline."""
    from sklearn.pipeline import Pipeline

    return model[-1] if isinstance(model, Pipeline) else model


def _is_bayesian(model: Any) -> bool:
    return hasattr(_network_of(model), "posterior_")


def _map_proba(model: Any, X: np.ndarray) -> np.ndarray:
    """A Bayesian network's MAP probabilities, through the model's scaler."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        X = model[:-1].transform(X)
    return np.asarray(_network_of(model).predict_proba_map(X))


# --------------------------------------------------------------------------
# twolayer evaluate / predict / plot
# --------------------------------------------------------------------------


def _labelled_rows(args: argparse.Namespace) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """What ``evaluate`` and ``curvature`` both start from: the model file, the data, and the
    chosen rows' features and labels (after checking that ``--plot`` can be written)."""
    from twolayer.io.modelfile import read

    _check_writable(args.plot, "--plot")
    if args.plot is not None:
        _need_matplotlib("--plot")
    model_file = read(args.model)
    data = _model_data(model_file, args.data, args.target, require_target=True)
    used = _rows(model_file, data, args.rows, args.model)
    y = _labels_as_classes(data, model_file.classes)[used]
    return model_file, data, data.X[used], y


def _evaluate(args: argparse.Namespace) -> int:
    from sklearn.metrics import precision_recall_fscore_support

    from twolayer.io.modelfile import atomic_write
    from twolayer.report.calibration import calibration_summary, reliability_curve

    model_file, data, X, y = _labelled_rows(args)
    classes = model_file.classes
    proba = np.asarray(model_file.model.predict_proba(X))
    metrics = _metrics_of(proba, y, classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, metrics["predicted"], labels=classes, zero_division=0
    )
    # Calibration of the model's probabilities; a Bayesian network's MAP ones beside them.
    probabilities = {"moderated" if model_file.bayesian else "model": proba}
    if model_file.bayesian:
        probabilities["MAP network"] = _map_proba(model_file.model, X)
    calibration = {
        name: calibration_summary(y, p, classes=classes, n_bins=args.bins) for name, p in probabilities.items()
    }

    png = None
    if args.plot is not None:
        from twolayer.report import plots

        curves = {
            f"{name} (ECE {calibration[name]['ece']:.3f})": reliability_curve(y, p, classes=classes, n_bins=args.bins)
            for name, p in probabilities.items()
        }
        png = plots.reliability_png(curves, title=f"{args.model} on {data.source}, {args.rows} rows ({y.size})")

    from rich.table import Table

    console = _console()
    console.print(
        _key_value_table(
            "Evaluation",
            [
                ("model", str(args.model) + (" (Bayesian: moderated predictions)" if model_file.bayesian else "")),
                (
                    "data",
                    f"{data.source}, {'all' if args.rows == 'all' else 'the ' + args.rows} rows ({y.size} samples)",
                ),
                ("accuracy", f"{metrics['accuracy']:.4f}"),
                ("log-loss", f"{metrics['log_loss']:.4f}"),
            ],
        )
    )
    title = f"Calibration ({args.bins} bins of the top-label confidence)"
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("", style="bold")
    for name in calibration:
        table.add_column(name, justify="right")
    for key, label in (
        ("accuracy", "accuracy"),
        ("log_loss", "log-loss"),
        ("brier", "Brier score"),
        ("ece", "expected calibration error"),
        ("mce", "maximum calibration error"),
    ):
        table.add_row(label, *(f"{values[key]:.4f}" for values in calibration.values()))
    console.print(table)
    table = Table(title="Per class", title_justify="left")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for c, p, r, f, s in zip(classes, precision, recall, f1, support):
        table.add_row(_label(c), f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", str(int(s)))
    console.print(table)
    console.print(_confusion_table(np.asarray(metrics["confusion_matrix"]), classes, "Confusion matrix"))
    if png is not None:
        atomic_write(args.plot, png)
        print(f"wrote plot {args.plot}")
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    import csv
    import io

    from twolayer.io.modelfile import atomic_write, read

    if args.out is not None:
        _check_writable(args.out, "--out")
    model_file = read(args.model)
    data = _model_data(model_file, args.data, args.target, require_target=False)
    proba = model_file.model.predict_proba(data.X)
    predicted = model_file.classes[np.argmax(proba, axis=1)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["prediction"]
    if args.proba:
        header += [f"proba_{_label(c)}" for c in model_file.classes]
    writer.writerow(header)
    for label, row in zip(predicted, proba):
        writer.writerow([_label(label), *(f"{p:.6g}" for p in row)] if args.proba else [_label(label)])
    if args.out is None:
        sys.stdout.write(buffer.getvalue())
        sys.stdout.flush()
    else:
        atomic_write(args.out, buffer.getvalue().encode("utf-8"))
        print(f"wrote {data.n_samples} predictions to {args.out}")
    return EXIT_OK


def _plot(args: argparse.Namespace) -> int:
    from twolayer.io.modelfile import atomic_write, read

    _check_writable(args.out, "--out")
    _need_matplotlib("twolayer plot")
    model_file = read(args.model)
    data = None
    matrix = (model_file.info or {}).get("test_confusion_matrix")
    if args.data is not None:
        data = _model_data(model_file, args.data, args.target, require_target=True)
        y = _labels_as_classes(data, model_file.classes)
        data = type(data)(data.X, y, data.feature_names, data.target_name, data.source)
        matrix = _metrics(model_file.model, data.X, y, model_file.classes)["confusion_matrix"]
    if not model_file.loss_curve and matrix is None and data is None:
        raise DataError(f"{args.model} holds no learning curves or results to plot; give DATA as well")
    try:
        png = _report_png(
            model_file.model,
            model_file.classes,
            model_file.loss_curve,
            model_file.validation_curve,
            matrix,
            data,
            title=f"{args.model}" + (f" on {args.data}" if args.data else ""),
        )
    except ValueError as exc:  # e.g. a malformed stored matrix
        raise DataError(f"cannot plot {args.model}: {exc}") from None
    atomic_write(args.out, png)
    print(f"wrote plot {args.out}")
    return EXIT_OK


# --------------------------------------------------------------------------
# twolayer curvature
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Known:
    """Eigenvectors that every such matrix has, whatever the weights and the data.

    The softmax ignores a common shift of the output activations, so adding
    the same number to every output bias (``b2``), or the same vector ``u``
    to every column of ``W2`` (each :math:`a_k` moves by :math:`z \\cdot u`),
    leaves :math:`E` unchanged at every point. The Hessian and the
    Gauss-Newton matrix of :math:`E` vanish along these ``M + 1`` directions,
    so those of :math:`\\tilde E` have them as eigenvectors with the decay's
    eigenvalues: that of ``b2`` (0 for TwoLayerClassifier, which leaves
    biases free) and that of ``W2`` (``alpha``). The ones with eigenvalue 0
    are the flat directions of :math:`\\tilde E`.
    """

    vectors: np.ndarray  # (W, M + 1), orthonormal columns
    values: np.ndarray  # (M + 1,)

    @property
    def flat(self) -> int:
        """The number of known directions along which the error is constant."""
        return int(np.sum(self.values == 0))

    @property
    def nonzero(self) -> np.ndarray:
        return np.asarray(self.values[self.values != 0])


def _known_eigenvectors(D: int, M: int, K: int, alpha_W2: float, alpha_b2: float) -> _Known:
    from twolayer.network import Params, flatten

    ones = np.full(K, 1.0 / math.sqrt(K))
    zero = Params(np.zeros((D, M)), np.zeros(M), np.zeros((M, K)), np.zeros(K))
    columns = [np.asarray(flatten(zero._replace(b2=ones)))]
    for j in range(M):
        W2 = np.zeros((M, K))
        W2[j] = ones
        columns.append(np.asarray(flatten(zero._replace(W2=W2))))
    return _Known(np.column_stack(columns), np.array([alpha_b2] + [alpha_W2] * M))


@dataclass(frozen=True)
class _Spectrum:
    """What ``twolayer curvature`` knows about the eigenvalues of one matrix.

    ``largest`` (decreasing) and ``smallest`` (increasing) hold the ``k``
    values at each end with the flat directions left out; NaN marks a value
    that is not known (Lanczos did not converge and there is no full
    spectrum). ``full`` is every eigenvalue, increasing, when it was
    computed; ``lanczos_largest`` and ``lanczos_smallest`` are what Lanczos
    found (with the known eigenvalues merged in).
    """

    name: str
    largest: np.ndarray
    smallest: np.ndarray
    full: np.ndarray | None
    lanczos_largest: np.ndarray
    lanczos_smallest: np.ndarray
    products: int

    @property
    def scale(self) -> float:
        """The largest eigenvalue magnitude known."""
        known = np.concatenate([self.largest, self.smallest])
        known = known[np.isfinite(known)]
        return float(np.max(np.abs(known))) if known.size else math.nan

    def zero_tolerance(self, n_params: int) -> float:
        """|lambda| at or below this is zero to double precision (numpy.linalg.matrix_rank's rule)."""
        return n_params * float(np.finfo(np.float64).eps) * self.scale

    def lanczos_error(self) -> float:
        """The largest distance of a Lanczos value from the full spectrum's, relative to the largest |lambda|.

        Rank by rank where Lanczos converged on a whole end; otherwise from
        each value to the nearest eigenvalue. NaN without a full spectrum.
        """
        if self.full is None:
            return math.nan
        gaps = []
        for found, exact in ((self.lanczos_largest, self.largest), (self.lanczos_smallest, self.smallest)):
            if np.isfinite(found).all():
                gaps.append(np.abs(found - exact))
            else:
                found = found[np.isfinite(found)]
                gaps.append(
                    np.min(np.abs(found[:, None] - self.full[None, :]), axis=1, initial=np.inf)
                    if found.size
                    else np.zeros(0)
                )
        gap = np.concatenate(gaps)
        return float(np.max(gap) / self.scale) if gap.size else math.nan


def _lanczos(operator: Any, k: int, which: str, budget: int, v0: np.ndarray) -> tuple[np.ndarray, int]:
    """eigsh's (up to) k eigenvalues at one end ('LA' or 'SA') that converged, and the products spent."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    W = operator.shape[0]
    products = 0

    def matvec(v: np.ndarray) -> np.ndarray:
        nonlocal products
        products += 1
        return np.asarray(operator.matvec(v))

    counted = LinearOperator((W, W), matvec=matvec, rmatvec=matvec, dtype=np.float64)
    ncv = min(W, max(2 * k + 1, 20))
    # ARPACK counts restarts, each of about ncv - k products after the first ncv.
    maxiter = max(1, (budget - ncv) // max(1, ncv - k))
    try:
        values = eigsh(counted, k=k, which=which, v0=v0, ncv=ncv, maxiter=maxiter, tol=1e-10, return_eigenvectors=False)
    except ArpackNoConvergence as exc:
        values = np.asarray(exc.eigenvalues).real
    return np.asarray(values, dtype=np.float64), products


def _end(found: np.ndarray, known: np.ndarray, k: int, *, largest: bool) -> np.ndarray:
    """The k values at one end from Lanczos's and the known ones, NaN-padded."""
    merged = np.sort(np.concatenate([found, known]))
    merged = merged[::-1] if largest else merged
    return np.concatenate([merged[:k], np.full(max(0, k - merged.size), np.nan)])


def _spectrum(
    name: str, operator: Any, dense: Callable[[], np.ndarray] | None, known: _Known, k: int, budget: int
) -> _Spectrum:
    """Lanczos at both ends of one matrix, and its full spectrum when ``dense`` is given.

    Lanczos runs on the complement of the known eigenvectors (Lanczos finds a
    repeated eigenvalue once, and the known ones repeat): they are moved
    beyond the far end of the spectrum, ``-sigma`` for the largest values and
    ``+sigma`` for the smallest, with ``sigma`` a bound on the spectral
    radius, and their eigenvalues merged back afterwards.
    """
    from scipy.sparse.linalg import LinearOperator, onenormest

    W = operator.shape[0]
    Q = known.vectors
    sigma = 2.0 * float(onenormest(operator)) + 1.0  # above every |lambda|: ||A||_2 <= ||A||_1 for symmetric A

    def moved(sign: float) -> LinearOperator:
        def matvec(v: np.ndarray) -> np.ndarray:
            v = np.ravel(v)
            inside = v - Q @ (Q.T @ v)
            Av = np.asarray(operator.matvec(inside)).ravel()
            return np.asarray(Av - Q @ (Q.T @ Av) + sign * sigma * (Q @ (Q.T @ v)))

        return LinearOperator((W, W), matvec=matvec, rmatvec=matvec, dtype=np.float64)

    v0 = np.random.default_rng(0).standard_normal(W)  # a fixed start: the same output every run
    top, spent_top = _lanczos(moved(-1.0), k, "LA", budget, v0)
    bottom, spent_bottom = _lanczos(moved(+1.0), k, "SA", budget, v0)
    lanczos_largest = _end(top, known.nonzero, k, largest=True)
    lanczos_smallest = _end(bottom, known.nonzero, k, largest=False)
    largest, smallest, full = lanczos_largest, lanczos_smallest, None
    if dense is not None:
        full = np.linalg.eigvalsh(dense())
        # The flat directions' eigenvalues are the ones closest to zero
        # (exactly zero but for round-off); the rest is the spectrum on their complement.
        rest = np.delete(full, np.argsort(np.abs(full), kind="stable")[: known.flat])
        largest, smallest = rest[::-1][:k], rest[:k]
    return _Spectrum(name, largest, smallest, full, lanczos_largest, lanczos_smallest, spent_top + spent_bottom)


def _negative_count(spectrum: _Spectrum, n_params: int) -> str:
    tol = spectrum.zero_tolerance(n_params)
    if spectrum.full is not None:
        return f"{int(np.sum(spectrum.full < -tol))} of {n_params}"
    known = spectrum.smallest[np.isfinite(spectrum.smallest)]
    negative = int(np.sum(known < -tol))
    k = spectrum.smallest.size
    if known.size == k and known[-1] >= -tol:
        return f"{negative} (estimated: the {k} smallest Lanczos values include one >= 0)"
    if known.size == 0:
        return "unknown (Lanczos did not converge)"
    return f"at least {negative} (estimated from {known.size} Lanczos values)"


def _condition_number(spectrum: _Spectrum, n_params: int) -> str:
    high, low = spectrum.largest[0], spectrum.smallest[0]
    if not (math.isfinite(high) and math.isfinite(low)):
        return "unknown (Lanczos did not converge)"
    tol = spectrum.zero_tolerance(n_params)
    if low < -tol:
        return "none: indefinite"
    if low <= tol:
        return "infinite: singular"
    return f"{high / low:.4g}"


def _decayed_operator(operator: Any, decay: np.ndarray) -> Any:
    """``operator + diag(decay)`` as a LinearOperator."""
    from scipy.sparse.linalg import LinearOperator

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.ravel(v)
        return np.asarray(np.asarray(operator.matvec(v)).ravel() + decay * v)

    return LinearOperator(operator.shape, matvec=matvec, rmatvec=matvec, dtype=np.float64)


def _decayed(matrix: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """``matrix + diag(decay)``, the decay's Hessian added to the data's."""
    out: np.ndarray = np.array(matrix, dtype=np.float64)
    out[np.diag_indices_from(out)] += decay
    return out


def _ordinal(n: int, word: str) -> str:
    if n == 1:
        return word
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix} {word}"


def _eigenvalue(value: float) -> str:
    return "not converged" if not math.isfinite(value) else f"{value:.6g}"


def _curvature(args: argparse.Namespace) -> int:
    from sklearn.pipeline import Pipeline
    from sklearn.utils.class_weight import compute_class_weight

    from twolayer import curvature
    from twolayer.io.modelfile import atomic_write
    from twolayer.network import Params, flatten, gradient, n_params

    model_file, data, X, y = _labelled_rows(args)
    classes = model_file.classes
    if isinstance(model_file.model, Pipeline):
        X = model_file.model[:-1].transform(X)  # the network sees what it was trained on
    X = np.asarray(X, dtype=np.float64)
    classifier = model_file.classifier
    params = Params(*(np.asarray(p, dtype=np.float64) for p in classifier.params_))
    D, M, K = data.n_features, classifier.n_hidden, classes.size
    W = n_params(D, M, K)
    # The decay's Hessian, diag(alpha_i): alpha on the weights and none on the
    # biases for TwoLayerClassifier (PRML eq. 5.112); a Bayesian network's
    # prior precision of each group (W1, b1, W2, b2; PRML eq. 5.211).
    if model_file.bayesian:
        group_alpha = [float(a) for a in classifier.alpha_]
    else:
        group_alpha = [float(classifier.alpha), 0.0, float(classifier.alpha), 0.0]
    decay = np.asarray(flatten(Params(*(np.full(np.shape(p), a) for p, a in zip(params, group_alpha)))))
    known = _known_eigenvectors(D, M, K, group_alpha[2], group_alpha[3])
    most = W - known.vectors.shape[1] - 1  # ARPACK finds fewer eigenvalues than the operator's size
    if args.k > most:
        raise DataError(
            f"--k {args.k}: this {D}-{M}-{K} network has {W} parameters, {M + 1} of them along known "
            f"eigenvectors; ask for at most {most} eigenvalues at each end"
        )
    codes = np.searchsorted(classes, y)
    T = np.zeros((y.size, K))
    T[np.arange(y.size), codes] = 1.0  # 1-of-K targets in the order of the model's classes
    sample_weight = None
    if getattr(classifier, "class_weight", None) is not None:
        try:
            sample_weight = compute_class_weight(classifier.class_weight, classes=classes, y=y)[codes]
        except ValueError as exc:
            raise DataError(f"{data.source}: the model's class weights cannot be applied to it ({exc})") from None
    full = W <= FULL_SPECTRUM_MAX_PARAMS
    activation = classifier.activation
    g = flatten(gradient(params, X, T, sample_weight, activation=activation)) + decay * flatten(params)
    spectra = [
        _spectrum(
            "Hessian",
            _decayed_operator(curvature.hessian_operator(params, X, T, sample_weight, activation=activation), decay),
            (lambda: _decayed(curvature.hessian(params, X, T, sample_weight, activation=activation), decay))
            if full
            else None,
            known,
            args.k,
            args.max_products,
        ),
        _spectrum(
            "Gauss-Newton",
            _decayed_operator(
                curvature.gauss_newton_operator(params, X, T, sample_weight, activation=activation), decay
            ),
            (lambda: _decayed(curvature.gauss_newton(params, X, T, sample_weight, activation=activation), decay))
            if full
            else None,
            known,
            args.k,
            args.max_products,
        ),
    ]
    if model_file.bayesian:
        prior = ", ".join(f"{name} {a:.4g}" for name, a in zip(("W1", "b1", "W2", "b2"), group_alpha))
        error = f"E~ = E + sum_g alpha_g/2 |w_g|^2 summed over the patterns, the Bayesian network's prior: {prior}"
    else:
        error = (
            f"E~ = E + alpha/2 |w|^2 summed over the patterns, alpha = {group_alpha[0]:g} on W1 and W2 (biases free)"
        )

    png = None
    if args.plot is not None:
        from twolayer.report import plots

        shown = {s.name: (s.full if s.full is not None else np.concatenate([s.largest, s.smallest])) for s in spectra}
        png = plots.spectrum_png(shown, full=full, title=f"{args.model} on {data.source}: {D}-{M}-{K} network, W = {W}")

    from rich.table import Table

    if known.flat == 0:
        flat = "none: the prior penalises every parameter"
    else:
        what = "a common shift of b2" if known.flat == 1 else "common shifts of b2 and of the rows of W2, as alpha = 0"
        flat = (
            f"{known.flat} direction{'s' if known.flat > 1 else ''} along which E~ is constant ({what}): left "
            "out of the smallest eigenvalues and the condition number"
        )
    lanczos = []
    for s in spectra:
        found = int(np.sum(np.isfinite(s.lanczos_largest)) + np.sum(np.isfinite(s.lanczos_smallest)))
        text = f"{s.name}: {found} of {2 * args.k} converged in {s.products} products"
        if s.full is not None and found:
            text += f", within {s.lanczos_error():.1e} (relative) of the full spectrum"
        lanczos.append(text)
    rows = [
        ("model", f"{args.model}: {D}-{M}-{K} network, {classifier.activation} hidden units, W = {W} parameters"),
        (
            "data",
            f"{data.source}, {'all' if args.rows == 'all' else 'the ' + args.rows} rows ({y.size} samples)"
            + (", standardised by the model's scaler" if isinstance(model_file.model, Pipeline) else ""),
        ),
        (
            "error",
            error
            + (f", patterns weighted by class_weight={classifier.class_weight!r}" if sample_weight is not None else ""),
        ),
        ("gradient", f"|grad E~| = {np.linalg.norm(g):.4g}, largest component {np.max(np.abs(g)):.4g}"),
        ("flat", flat),
        (
            "spectrum",
            f"full (numpy.linalg.eigvalsh), W <= {FULL_SPECTRUM_MAX_PARAMS}"
            if full
            else f"not computed (W > {FULL_SPECTRUM_MAX_PARAMS}); Lanczos values only",
        ),
        ("Lanczos", "scipy eigsh on the R-operator products; " + "; ".join(lanczos)),
    ]
    if png is not None:
        rows.append(("plot", str(args.plot)))
    console = _console()
    console.print(_key_value_table("Curvature at the model's weights", rows))
    table = Table(title=f"Eigenvalues ({'full spectrum' if full else 'Lanczos'})", title_justify="left")
    table.add_column("", style="bold")
    for s in spectra:
        table.add_column(s.name, justify="right")
    for i in range(args.k):
        table.add_row(_ordinal(i + 1, "largest"), *(_eigenvalue(s.largest[i]) for s in spectra))
    for i in reversed(range(args.k)):
        table.add_row(_ordinal(i + 1, "smallest"), *(_eigenvalue(s.smallest[i]) for s in spectra))
    table.add_row("condition number", *(_condition_number(s, W) for s in spectra))
    table.add_row("negative", *(_negative_count(s, W) for s in spectra))
    console.print(table)
    if png is not None:
        atomic_write(args.plot, png)
        print(f"wrote plot {args.plot}")
    return EXIT_OK


# --------------------------------------------------------------------------
# twolayer gradcheck / derive / datasets
# --------------------------------------------------------------------------


def _gradcheck(args: argparse.Namespace) -> int:
    from twolayer.teaching.gradcheck import check_random_network

    if args.max_params is not None and args.max_params < 4:
        raise DataError(f"--max-params {args.max_params}: at least 4 (one weight of each block)")
    report = check_random_network(
        args.features,
        args.hidden,
        args.classes,
        args.samples,
        random_state=args.seed,
        activation=args.activation,
        eps=args.eps,
        rtol=args.rtol,
        max_params=args.max_params,
    )
    print(report.table())
    return EXIT_OK if report.passed else EXIT_CHECK_FAILED


def _derive(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("sympy") is None:
        raise DataError("twolayer derive needs SymPy: pip install 'twolayer[derive]'")
    from twolayer.teaching.derivation import verify_derivation

    steps = verify_derivation(classes=tuple(args.classes), random_state=args.seed)
    print(
        f"The derivation of backpropagation (shared/reference/derivation.md), step by step, checked with SymPy "
        f"for K = {', '.join(map(str, args.classes))}:"
    )
    for number, step in enumerate(steps, start=1):
        if step.holds:
            verdict = "holds" if step.expected else "HOLDS, but should not"
        else:
            verdict = "fails, as it should (a known slip)" if not step.expected else "FAILS"
        mark = "ok  " if step.as_expected else "FAIL"
        print(f"{mark} {number:2d}. {step.name}: {verdict}")
        print(f"         claim: {step.claim}")
        print(f"         {step.detail}")
    wrong = [step for step in steps if not step.as_expected]
    if wrong:
        print(f"FAILED: {len(wrong)} of {len(steps)} steps did not get the expected verdict")
        return EXIT_CHECK_FAILED
    print(f"PASSED: all {len(steps)} steps got the expected verdict")
    return EXIT_OK


def _datasets(args: argparse.Namespace) -> int:
    from rich.table import Table

    from twolayer.io.datasets import BUILTINS, load_builtin

    table = Table(title="Built-in datasets", title_justify="left")
    for column, justify in (
        ("name", "left"),
        ("samples", "right"),
        ("features", "right"),
        ("classes", "right"),
        ("description", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, builtin in BUILTINS.items():
        data = load_builtin(name)
        assert data.y is not None
        table.add_row(name, str(data.n_samples), str(data.n_features), str(np.unique(data.y).size), builtin.description)
    _console().print(table)
    print("DATA may also be a .csv file (a header row, numeric features, the target last or --target NAME)")
    print("or a .npz file (arrays X and y, optionally feature_names).")
    return EXIT_OK


COMMANDS: tuple[Command, ...] = (
    Command(
        "train",
        "train a network on a built-in dataset or a file, show a summary, write the model",
        _add_train_arguments,
        _train,
    ),
    Command(
        "evaluate",
        "accuracy, log-loss, calibration (ECE, Brier), per-class precision/recall/F1 and confusion "
        "matrix of a model on data",
        _add_evaluate_arguments,
        _evaluate,
    ),
    Command(
        "predict", "write a CSV of a model's predictions (and probabilities) for data", _add_predict_arguments, _predict
    ),
    Command(
        "gradcheck",
        "compare backpropagation with central differences on a random network; exit 1 on failure",
        _add_gradcheck_arguments,
        _gradcheck,
    ),
    Command(
        "derive",
        "check each step of the backpropagation derivation symbolically; exit 1 on failure",
        _add_derive_arguments,
        _derive,
    ),
    Command(
        "plot",
        "draw a model's learning curves, confusion matrix and (two features) decision regions, or a "
        "Bayesian network's MAP and moderated probability contours",
        _add_plot_arguments,
        _plot,
    ),
    Command(
        "curvature",
        "extreme eigenvalues, condition number and negative eigenvalues of the Hessian and the "
        "Gauss-Newton matrix of a model's error on data",
        _add_curvature_arguments,
        _curvature,
    ),
    Command("datasets", "list the built-in datasets with their sizes", _add_datasets_arguments, _datasets),
)
