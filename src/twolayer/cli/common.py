"""What every subcommand shares: exit codes, the parser, argument types, output and data helpers."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from twolayer.errors import DataError

if TYPE_CHECKING:
    from rich.console import Console

    from twolayer.io.datasets import Dataset
    from twolayer.io.modelfile import ModelFile

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one-line summary, arguments and action."""

    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# --------------------------------------------------------------------------
# Argument parsing
# --------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage block is for --help), and arguments added when first needed.

    A subcommand's arguments are added the first time its parser parses or
    formats help, so that ``twolayer --help`` and the other subcommands do not
    import what one subcommand's choices come from (the estimators, hence
    scikit-learn).
    """

    def __init__(
        self, *args: Any, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self._add_arguments = add_arguments

    def _complete(self) -> None:
        if self._add_arguments is not None:
            add, self._add_arguments = self._add_arguments, None
            add(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._complete()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._complete()
        return super().format_help()

    def format_usage(self) -> str:
        self._complete()
        return super().format_usage()

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "a whole number, 0 or more")


def at_least_two(text: str) -> int:
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 2, got {text!r}")
    return value


def seed(text: str) -> int:
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


def positive_float(text: str) -> float:
    return _float(text, low=0.0, closed_low=False, what="a positive number")


def non_negative_float(text: str) -> float:
    return _float(text, low=0.0, closed_low=True, what="a number >= 0")


def fraction(text: str) -> float:
    return _float(text, low=0.0, high=1.0, closed_low=False, what="a fraction strictly between 0 and 1")


def activations() -> list[str]:
    """The registered hidden-unit activations, sorted."""
    from twolayer.network import ACTIVATIONS

    return sorted(ACTIVATIONS)


def add_model_data_arguments(p: argparse.ArgumentParser, *, data_required: bool) -> None:
    p.add_argument("model", metavar="MODEL", help="a model file written by 'twolayer train --out'")
    p.add_argument(
        "data",
        metavar="DATA",
        nargs=None if data_required else "?",
        help="a built-in dataset or a table (CSV/TSV, compressed or not, Parquet, Feather, NPZ; '-' is "
        "standard input); columns are matched by name when the model has names, extra ones ignored"
        + ("" if data_required else " (optional)"),
    )
    p.add_argument(
        "--target",
        metavar="NAME",
        help="the column holding the labels (default: the model's target column, else the last)",
    )
    add_table_arguments(p)


def separator(text: str) -> str:
    """A ``--sep`` value: one character; ``tab`` and a written ``\\t`` stand for the tab."""
    value = "\t" if text in ("tab", "\\t") else text
    if len(value) != 1 or value in ('"', "\r", "\n"):
        raise argparse.ArgumentTypeError(f"expected one character (or 'tab'), not a quote or line break, got {text!r}")
    return value


def add_table_arguments(p: argparse._ActionsContainer) -> None:  # a parser or an argument group
    """The options of reading a table that every command shares: the identifier column and the delimiter."""
    p.add_argument(
        "--id",
        metavar="COLUMN",
        help="a column identifying each row: never a feature, carried into every prediction row",
    )
    p.add_argument(
        "--sep",
        type=separator,
        metavar="CHAR",
        help="the delimiter of a text table (default: sniffed among , tab ; |)",
    )


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------


def console(stream: TextIO | None = None) -> Console:
    from rich.console import Console

    return Console(file=stream or sys.stdout, highlight=False, soft_wrap=False)


@contextlib.contextmanager
def busy(message: str, *, quiet: bool = False, stream: TextIO | None = None) -> Iterator[None]:
    """A spinner with the elapsed time on standard error while a long step of unknown length runs.

    Only on a terminal and not under ``--quiet``: elsewhere (a pipe, a log, a test) it prints
    nothing, so that a command that then fails still prints exactly one line.
    """
    stream = stream or sys.stderr
    if quiet or not stream.isatty():
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn(message), TimeElapsedColumn())
    with Progress(*columns, console=console(stream), transient=True) as progress:
        progress.add_task(message, total=None)
        yield


def note(message: str, quiet: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def need_matplotlib(option: str) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise DataError(f"{option} needs matplotlib: pip install 'twolayer[plot]'")


def label(value: object) -> str:
    return str(value.item() if isinstance(value, np.generic) else value)


def confusion_table(matrix: np.ndarray, classes: Sequence[object] | np.ndarray, title: str) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("true \\ predicted", justify="right", style="bold")
    for c in classes:
        table.add_column(label(c), justify="right")
    for c, row in zip(classes, matrix):
        table.add_row(label(c), *(str(int(v)) for v in row))
    return table


def key_value_table(title: str, rows: Sequence[tuple[str, str]]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False, min_width=len(title))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value)
    return table


def rows_description(source: str, rows: str, n: int) -> str:
    return f"{source}, {'all' if rows == 'all' else 'the ' + rows} rows ({n} samples)"


# --------------------------------------------------------------------------
# Data against a model
# --------------------------------------------------------------------------


def _reading(model_file: ModelFile, args: argparse.Namespace, require_target: bool, keep_raw: bool) -> dict[str, Any]:
    """How DATA is read for a model: the columns it reads (its encoding's, its feature names, or
    unnamed how many), encoded its way, and the command's --target, --id and --sep."""
    features: Sequence[str] | int = model_file.n_features
    if model_file.encoding is not None:
        features = list(model_file.encoding.names)
    elif model_file.feature_names is not None:
        features = list(model_file.feature_names)
    if is_multilabel(model_file):
        # One 0/1 column per label, named as in training; a prediction reads none of them.
        if args.target is not None:
            raise DataError(f"--target: {args.model} is multilabel; it reads its label columns by their names")
        return {
            "features": features,
            "encoding": model_file.encoding,
            "targets": list(label_names(model_file)) if require_target else None,
            "require_target": require_target,
            "id_column": args.id,
            "sep": args.sep,
            "keep_raw": keep_raw,
        }
    return {
        "features": features,
        "encoding": model_file.encoding,
        "target": args.target,
        "require_target": require_target,
        "default_target": model_file.target_name,
        "id_column": args.id,
        "sep": args.sep,
        "keep_raw": keep_raw,
    }


def _note_unseen(source: str, unseen: Mapping[str, int]) -> None:
    for column, rows in unseen.items():
        held = "1 row holds" if rows == 1 else f"{rows} rows hold"
        note(
            f"note: {source}: {held} a value of {column!r} that the model never saw in training "
            "(that column's inputs are all zero there)"
        )


def model_data(
    model_file: ModelFile, args: argparse.Namespace, *, require_target: bool, keep_raw: bool = False
) -> Dataset:
    """Load DATA (``args.data``, with ``--target``, ``--id`` and ``--sep``) with the columns the model
    needs, matched by name when it has names, and encoded as the model's were; say which rows hold a
    category the model never saw."""
    from twolayer.io.datasets import load_dataset

    data = load_dataset(args.data, **_reading(model_file, args, require_target, keep_raw))
    _note_unseen(data.source, data.unseen)
    return data


def model_batches(
    model_file: ModelFile, args: argparse.Namespace, *, require_target: bool, keep_raw: bool = False
) -> Iterator[Dataset]:
    """:func:`model_data` a batch of rows at a time, so that memory stays flat on a long file; the
    note on unseen categories comes once the last batch is through."""
    from twolayer.io.datasets import load_batches

    unseen: Counter[str] = Counter()
    source = args.data
    for data in load_batches(args.data, **_reading(model_file, args, require_target, keep_raw)):
        unseen.update(data.unseen)
        source = data.source
        yield data
    _note_unseen(source, unseen)


def is_multilabel(model_file: ModelFile) -> bool:
    """Whether the model file holds a multilabel network (K sigmoid outputs, one 0/1 label each)."""
    return getattr(network_of(model_file.model), "out_activation_", "softmax") == "logistic"


def label_names(model_file: ModelFile) -> tuple[str, ...]:
    """A multilabel model's label names: the target columns it was trained on (``twolayer train``
    records them in the file's info), else ``label_0``, ``label_1``, ..."""
    names = (model_file.info or {}).get("target_names")
    K = len(model_file.classes)
    if isinstance(names, list) and len(names) == K and all(isinstance(n, str) for n in names):
        return tuple(names)
    return tuple(f"label_{k}" for k in range(K))


def labels_as_classes(data: Dataset, classes: np.ndarray) -> np.ndarray:
    """The data's labels in the type of the model's classes; unknown labels are an error."""
    assert data.y is not None
    y = data.y
    if classes.dtype.kind == "U" and y.dtype.kind != "U":
        y = y.astype(str)  # "1" in a CSV read back as an integer
    unknown = np.setdiff1d(np.unique(y), classes) if y.dtype.kind == classes.dtype.kind else np.unique(y)
    if unknown.size:
        shown = ", ".join(repr(label(u)) for u in unknown[:5])
        known = ", ".join(repr(label(c)) for c in classes[:10])
        raise DataError(f"{data.source}: labels {shown} are not among the model's classes ({known})")
    return y


def split_record(data: Dataset, test_index: np.ndarray, fingerprint: str) -> dict[str, Any]:
    """What a model file's info records of its train/test split: enough to find the training rows again."""
    return {"fingerprint": fingerprint, "n_samples": data.n_samples, "test_rows": [int(i) for i in test_index]}


def recorded_rows(model_file: ModelFile, data: Dataset, which: str, model: str) -> np.ndarray:
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


def read_for_evaluation(args: argparse.Namespace) -> ModelFile:
    """The model file ``evaluate`` and ``curvature`` read, once ``--plot`` is known to be writable
    and to destroy no input."""
    from twolayer.io.modelfile import read
    from twolayer.io.paths import check_outputs

    check_outputs({"MODEL": args.model, "DATA": args.data}, {"--plot": args.plot}, figures=("--plot",))
    if args.plot is not None:
        need_matplotlib("--plot")
    return read(args.model)


def labelled_rows(args: argparse.Namespace) -> tuple[ModelFile, Dataset, np.ndarray, np.ndarray]:
    """What ``curvature`` starts from: the model file, the data, and the chosen rows' features and labels."""
    model_file = read_for_evaluation(args)
    data = model_data(model_file, args, require_target=True)
    used = recorded_rows(model_file, data, args.rows, args.model)
    y = labels_as_classes(data, model_file.classes)[used]
    return model_file, data, data.X[used], y


# --------------------------------------------------------------------------
# Models as the files hold them
# --------------------------------------------------------------------------


def network_of(model: Any) -> Any:
    """The network itself: the last step of a pipeline."""
    from sklearn.pipeline import Pipeline

    return model[-1] if isinstance(model, Pipeline) else model


def map_proba(model: Any, X: np.ndarray) -> np.ndarray:
    """A Bayesian network's MAP probabilities, through the model's scaler."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        X = model[:-1].transform(X)
    return np.asarray(network_of(model).predict_proba_map(X))


def probabilities(model: Any, X: np.ndarray, source: str, *, map_network: bool = False) -> np.ndarray:
    """A model file's probabilities for rows of DATA, refused in one line when they are not finite.

    A model whose file passed every check can still overflow on some inputs (a scale near zero,
    weights near the float limits): the arithmetic is let run, and its result judged.
    """
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            P = map_proba(model, X) if map_network else np.asarray(model.predict_proba(X))
    except DataError:
        raise
    except ValueError as exc:  # the network's input check: the scaler turned a row into infinity
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"the model cannot predict {source}: its scaler overflows on these inputs ({reason})") from None
    if not np.isfinite(P).all():
        row = int(np.flatnonzero(~np.isfinite(P).all(axis=1))[0])
        raise DataError(
            f"the model's probabilities for {source} are not finite (the first at its row {row + 1} of this batch): "
            "its scaler or weights overflow on these inputs"
        )
    return P


def curve_unit(model: Any) -> str:
    """What one entry of a model's loss curve is."""
    from twolayer.io.modelfile import is_bayesian
    from twolayer.training.solvers import MINIBATCH_SOLVERS

    network = network_of(model)
    if is_bayesian(network):
        return "L-BFGS iteration (all trainings in turn)"
    return "epoch" if network.solver in MINIBATCH_SOLVERS else "iteration"


def report_picture(
    predictor: Any,
    classes: np.ndarray,
    loss: Sequence[float],
    accuracy: Sequence[float] | None,
    matrix: Sequence[Sequence[int]] | None,
    data: Dataset | None,
    *,
    title: str,
    path: str,
) -> bytes:
    """The training report's picture (learning curves, confusion matrix, and for two features the
    decisions), as the bytes of a PNG, PDF or SVG file by the extension of ``path``."""
    from twolayer.io.modelfile import is_bayesian
    from twolayer.io.paths import figure_format
    from twolayer.report import plots

    regions = contours = None
    if data is not None and data.n_features == 2 and data.y is not None:
        index = {c: k for k, c in enumerate(classes.tolist())}
        y_index = np.array([index.get(v, -1) for v in data.y.tolist()])
        if is_bayesian(predictor):
            # PRML Fig. 5.23: the MAP network's contours beside the moderated ones.
            predictors = {
                "MAP network": lambda P: map_proba(predictor, P),
                "moderated": lambda P: np.asarray(predictor.predict_proba(P)),
            }
            contours = (predictors, data.X, y_index)
        else:

            def predict_index(P: np.ndarray) -> np.ndarray:
                return np.asarray(np.argmax(predictor.predict_proba(P), axis=1))

            regions = (predict_index, data.X, y_index)
    figure = plots.report_figure(
        loss=list(loss),
        accuracy=list(accuracy) if accuracy else None,
        matrix=None if matrix is None else np.asarray(matrix),
        classes=classes.tolist(),
        regions=regions,
        contours=contours,
        feature_names=data.feature_names if data is not None else None,
        title=title,
        unit=curve_unit(predictor),
    )
    return plots.render(figure, figure_format(path))
