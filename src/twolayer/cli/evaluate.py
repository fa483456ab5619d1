"""``twolayer evaluate``, ``predict`` and ``plot``: a model file against data."""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from twolayer.cli.common import (
    EXIT_OK,
    Command,
    add_model_data_arguments,
    busy,
    confusion_table,
    console,
    is_multilabel,
    key_value_table,
    label,
    label_names,
    labels_as_classes,
    model_batches,
    model_data,
    need_matplotlib,
    positive_int,
    probabilities,
    read_for_evaluation,
    recorded_rows,
    report_picture,
    rows_description,
)
from twolayer.cli.dask_options import add_dask_arguments, refuse_predict_options
from twolayer.cli.multilabel import evaluation_rows, label_table, prediction_columns
from twolayer.errors import DataError

__all__ = ["EVALUATE", "PLOT", "PREDICT", "PredictionColumns", "evaluate", "plot", "predict"]


def _add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    add_model_data_arguments(p, data_required=True)
    p.add_argument(
        "--rows",
        choices=("all", "train", "test"),
        default="all",
        help="all of DATA's rows, or only those the model was trained on or held out (DATA must be the "
        "model's training data) (default: all)",
    )
    p.add_argument(
        "--bins",
        type=positive_int,
        default=15,
        metavar="B",
        help="equal-width confidence bins of the calibration errors and the diagram (default: 15)",
    )
    p.add_argument(
        "--plot",
        metavar="PICTURE",
        help="write a reliability diagram (for a Bayesian network, moderated and MAP) to this file (.png, .pdf or .svg)",
    )


def _add_predict_arguments(p: argparse.ArgumentParser) -> None:
    add_model_data_arguments(p, data_required=True)
    p.add_argument("--proba", action="store_true", help="add a column of probabilities per class")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write the predictions here: CSV, TSV, Parquet or Feather by the extension (default, or '-': "
        "standard output, CSV)",
    )
    p.add_argument("--format", choices=("csv", "tsv", "parquet", "feather"), help="the format, whatever the name")
    p.add_argument(
        "--keep-columns", action="store_true", help="write the input's feature columns too, before the predictions"
    )
    add_dask_arguments(p, command="predict")


def _add_plot_arguments(p: argparse.ArgumentParser) -> None:
    add_model_data_arguments(p, data_required=False)
    p.add_argument("--out", metavar="PICTURE", required=True, help="the picture to write (.png, .pdf or .svg)")


def evaluate(args: argparse.Namespace) -> int:
    from rich.table import Table

    from twolayer.io.modelfile import atomic_write
    from twolayer.report.evaluation import Evaluation

    model_file = read_for_evaluation(args)
    if is_multilabel(model_file):
        return _evaluate_multilabel(args, model_file)
    classes = model_file.classes
    # The model's probabilities; a Bayesian network's MAP ones beside them, for calibration.
    names = ["moderated", "MAP network"] if model_file.bayesian else ["model"]
    evaluations = {name: Evaluation(classes, n_bins=args.bins) for name in names}

    def add(X: np.ndarray, y: np.ndarray) -> None:
        evaluations[names[0]].update(probabilities(model_file.model, X, args.data), y)
        if model_file.bayesian:
            evaluations["MAP network"].update(probabilities(model_file.model, X, args.data, map_network=True), y)

    source = args.data
    with busy("predicting"):
        if args.rows == "all":
            # A batch at a time: what is kept of each is a few sums, so memory stays flat on a long file.
            for data in model_batches(model_file, args, require_target=True):
                add(data.X, labels_as_classes(data, classes))
                source = data.source
        else:  # the training or held-out rows need the whole file, to be found again
            data = model_data(model_file, args, require_target=True)
            used = recorded_rows(model_file, data, args.rows, args.model)
            add(data.X[used], labels_as_classes(data, classes)[used])
            source = data.source
    evaluation = evaluations[names[0]]
    n = evaluation.n_samples
    if n == 0:
        raise DataError(f"--rows {args.rows}: {source} has none of them")
    calibration = {name: e.calibration_summary() for name, e in evaluations.items()}

    png = None
    if args.plot is not None:
        from twolayer.io.paths import figure_format
        from twolayer.report import plots

        curves = {
            f"{name} (ECE {calibration[name]['ece']:.3f})": e.reliability_curve() for name, e in evaluations.items()
        }
        figure = plots.reliability_figure(curves, title=f"{args.model} on {source}, {args.rows} rows ({n})")
        png = plots.render(figure, figure_format(args.plot))

    out = console()
    model = str(args.model) + (" (Bayesian: moderated predictions)" if model_file.bayesian else "")
    rows = [
        ("model", model),
        ("data", rows_description(source, args.rows, n)),
        ("accuracy", f"{evaluation.accuracy:.4f}"),
        ("log-loss", f"{evaluation.log_loss:.4f}"),
    ]
    out.print(key_value_table("Evaluation", rows))
    title = f"Calibration ({args.bins} bins of the top-label confidence)"
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("", style="bold")
    for name in calibration:
        table.add_column(name, justify="right")
    for key, name in (
        ("accuracy", "accuracy"),
        ("log_loss", "log-loss"),
        ("brier", "Brier score"),
        ("ece", "expected calibration error"),
        ("mce", "maximum calibration error"),
    ):
        table.add_row(name, *(f"{values[key]:.4f}" for values in calibration.values()))
    out.print(table)
    table = Table(title="Per class", title_justify="left")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    scores = evaluation.per_class_scores()
    for c, p, r, f, s in zip(classes, scores.precision, scores.recall, scores.f1, scores.support):
        table.add_row(label(c), f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", str(int(s)))
    out.print(table)
    out.print(confusion_table(evaluation.confusion_matrix, classes, "Confusion matrix"))
    if png is not None:
        atomic_write(args.plot, png)
        print(f"wrote plot {args.plot}")
    return EXIT_OK


def _evaluate_multilabel(args: argparse.Namespace, model_file: Any) -> int:
    """``evaluate`` of a multilabel model: subset accuracy, Hamming loss and each label's scores."""
    from twolayer.report.metrics import multilabel_metrics

    if args.plot is not None:
        raise DataError(f"--plot: {args.model} is multilabel; its reliability diagram is not drawn")
    names = label_names(model_file)
    with busy("predicting"):
        data = model_data(model_file, args, require_target=True)
        used = recorded_rows(model_file, data, args.rows, args.model)
        assert data.y is not None
        proba = probabilities(model_file.model, data.X[used], data.source)
    if used.size == 0:
        raise DataError(f"--rows {args.rows}: {data.source} has none of them")
    metrics = multilabel_metrics(proba, data.y[used])
    out = console()
    out.print(evaluation_rows(str(args.model), rows_description(data.source, args.rows, int(used.size)), metrics))
    out.print(label_table(metrics.scores, names, "Per label"))
    return EXIT_OK


def predict(args: argparse.Namespace) -> int:
    from twolayer.io.modelfile import read
    from twolayer.io.paths import check_outputs
    from twolayer.io.predictions import PredictionWriter, prediction_format

    refuse_predict_options(args)  # --dask's options without --dask, and what --dask cannot honour
    if args.dask is not None:
        from twolayer.cli.dask_runs import predict_on_cluster

        return predict_on_cluster(args)
    out = None if args.out == "-" else args.out  # "-" is standard output, as with no --out
    check_outputs({"MODEL": args.model, "DATA": args.data}, {"--out": out})
    fmt = prediction_format(out, args.format)
    if out is None and fmt not in ("csv", "tsv") and sys.stdout.isatty():
        raise DataError(f"--format {fmt} is binary: give --out FILE, or redirect standard output")
    model_file = read(args.model)
    maker = PredictionColumns.of(model_file, args.proba)
    # A batch at a time, so that memory stays flat however long DATA is. A file appears only once
    # every batch is through (a refusal in the last leaves no file); standard output gets each as it comes.
    spinner = busy("predicting") if out is not None else contextlib.nullcontext()
    with spinner, PredictionWriter(out, fmt) as writer:
        for data in model_batches(model_file, args, require_target=False, keep_raw=args.keep_columns):
            raw = data.raw if args.keep_columns else None
            writer.write(maker.columns(data.X, data.ids, data.source, id_name=data.id_name, raw=raw))
    if out is not None:
        print(f"wrote {writer.rows} predictions to {out} ({fmt})")
    return EXIT_OK


@dataclass(frozen=True)
class PredictionColumns:
    """What ``predict`` writes for a batch of rows: the identifier, the inputs as read when asked, the
    predicted class (a multilabel model's 0/1 labels) and, with ``--proba``, the probabilities.

    It pickles, so that ``predict --dask`` sends it to the workers, which call it on their partitions.
    """

    model: Any
    classes: np.ndarray
    labels: tuple[str, ...] | None  # a multilabel model's label names
    proba: bool
    id_name: str | None = None

    @classmethod
    def of(cls, model_file: Any, proba: bool, id_name: str | None = None) -> PredictionColumns:
        """The columns of a model file's predictions."""
        labels = label_names(model_file) if is_multilabel(model_file) else None
        return cls(model_file.model, model_file.classes, labels, bool(proba), id_name)

    def columns(
        self,
        X: np.ndarray,
        ids: np.ndarray | None,
        source: str,
        *,
        id_name: str | None = None,
        raw: dict[str, np.ndarray] | None = None,
    ) -> dict[str, Any]:
        """The columns of the predictions for the rows ``X`` of ``source``, in the order they are written."""
        proba = probabilities(self.model, X, source)
        # The identifier column first, so that predictions are joined to their rows by key, not by order.
        columns: dict[str, Any] = {}
        if ids is not None:
            columns[id_name or self.id_name or "id"] = ids
        if raw is not None:
            # The feature columns as read (a text column's words, an empty cell empty), not the network's inputs.
            columns.update({name: values for name, values in raw.items() if name not in columns})
        if self.labels is not None:  # one 0/1 column per label, named after its target column
            columns.update(prediction_columns(proba, self.labels, self.proba))
        else:
            columns["prediction"] = self.classes[np.argmax(proba, axis=1)]
            if self.proba:
                columns.update({f"proba_{label(c)}": proba[:, k] for k, c in enumerate(self.classes)})
        return columns

    def __call__(self, X: np.ndarray, ids: np.ndarray | None, source: str) -> dict[str, Any]:
        """:meth:`columns` without the inputs as read: what a partition on the cluster writes."""
        return self.columns(X, ids, source)


def plot(args: argparse.Namespace) -> int:
    from twolayer.io.modelfile import atomic_write, read
    from twolayer.io.paths import check_outputs
    from twolayer.report.metrics import classification_metrics

    check_outputs({"MODEL": args.model, "DATA": args.data}, {"--out": args.out}, figures=("--out",))
    need_matplotlib("twolayer plot")
    model_file = read(args.model)
    data = None
    matrix = (model_file.info or {}).get("test_confusion_matrix")
    if args.data is not None:
        data = model_data(model_file, args, require_target=True)
        y = labels_as_classes(data, model_file.classes)
        data = type(data)(data.X, y, data.feature_names, data.target_name, data.source)
        proba = probabilities(model_file.model, data.X, data.source)
        matrix = classification_metrics(proba, y, model_file.classes).confusion_matrix
    if not model_file.loss_curve and matrix is None and data is None:
        raise DataError(f"{args.model} holds no learning curves or results to plot; give DATA as well")
    try:
        png = report_picture(
            model_file.model,
            model_file.classes,
            model_file.loss_curve,
            model_file.validation_curve,
            matrix,
            data,
            title=f"{args.model}" + (f" on {args.data}" if args.data else ""),
            path=args.out,
        )
    except ValueError as exc:  # e.g. a malformed stored matrix
        raise DataError(f"cannot plot {args.model}: {exc}") from None
    atomic_write(args.out, png)
    print(f"wrote plot {args.out}")
    return EXIT_OK


EVALUATE = Command(
    "evaluate",
    "accuracy, log-loss, calibration (ECE, Brier), per-class precision/recall/F1 and confusion "
    "matrix of a model on data",
    _add_evaluate_arguments,
    evaluate,
)
PREDICT = Command(
    "predict", "write a CSV of a model's predictions (and probabilities) for data", _add_predict_arguments, predict
)
PLOT = Command(
    "plot",
    "draw a model's learning curves, confusion matrix and (two features) decision regions, or a "
    "Bayesian network's MAP and moderated probability contours",
    _add_plot_arguments,
    plot,
)
