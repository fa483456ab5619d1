"""Multilabel runs on the command line: ``train --multilabel --target C1 C2 ...``, and ``evaluate`` and
``predict`` of the model it writes.

A multilabel network has K sigmoid outputs, one per target column, each column 0/1 (or true/false).
Its figures are the subset accuracy (every label of a row right), the Hamming loss (the fraction of
wrong label decisions) and each label's precision, recall and F1; its model file records the target
columns' names in its info (``target_names``), which ``predict`` names its columns after and
``evaluate`` reads the labels from.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from twolayer.cli.common import key_value_table
from twolayer.errors import DataError

if TYPE_CHECKING:
    from twolayer.report.metrics import ClassificationMetrics, MultilabelMetrics, PerClassScores

__all__ = [
    "check_multilabel_options",
    "evaluation_rows",
    "is_multilabel_run",
    "label_table",
    "labels_phrase",
    "measure",
    "multilabel_figures",
    "multilabel_rows",
    "prediction_columns",
]


def check_multilabel_options(args: argparse.Namespace) -> None:
    """Check ``train``'s ``--multilabel`` against ``--target`` and ``--bayes``, in one line each, and
    leave ``args.target`` one name (a single target) or a list of names (multilabel)."""
    targets = args.target
    if args.multilabel:
        if args.bayes:
            raise DataError("--multilabel does not apply to --bayes (a Bayesian network has softmax outputs)")
        if args.plot is not None:
            raise DataError("--plot does not apply to --multilabel (its report draws one confusion matrix)")
        if args.resume is None and (targets is None or len(targets) < 2):
            given = "no --target" if targets is None else f"--target {targets[0]} alone"
            raise DataError(f"--multilabel needs two or more --target columns, one per label; got {given}")
    elif targets is not None and len(targets) > 1:
        raise DataError(f"--target {' '.join(targets)}: several target columns need --multilabel (one 0/1 label each)")
    if targets is not None:
        args.target = list(targets) if args.multilabel else targets[0]


def is_multilabel_run(options: Mapping[str, Any]) -> bool:
    """Whether a run's options are a multilabel run's: its target is a list of columns."""
    return isinstance(options.get("target"), list)


def labels_phrase(y: np.ndarray) -> str:
    """``"4 classes"``, or ``"3 labels"`` for a label matrix."""
    return f"{y.shape[1]} labels" if y.ndim == 2 else f"{np.unique(y).size} classes"


def measure(proba: np.ndarray, y: np.ndarray, classes: np.ndarray) -> Any:
    """The figures of ``proba`` against ``y``: :class:`~twolayer.report.metrics.MultilabelMetrics`
    for a label matrix, else :class:`~twolayer.report.metrics.ClassificationMetrics`."""
    from twolayer.report.metrics import classification_metrics, multilabel_metrics

    return multilabel_metrics(proba, y) if np.ndim(y) == 2 else classification_metrics(proba, y, classes)


def multilabel_figures(test: MultilabelMetrics, names: Sequence[str]) -> dict[str, Any]:
    """What the model file's info records of a multilabel run besides the common figures."""
    return {
        "target_names": list(names),
        "test_hamming_loss": test.hamming_loss,
        "test_label_f1": {name: float(f) for name, f in zip(names, test.scores.f1)},
    }


def multilabel_rows(
    rows: Sequence[tuple[str, str]], train: MultilabelMetrics | ClassificationMetrics, test: MultilabelMetrics
) -> list[tuple[str, str]]:
    """The summary's rows, their accuracies named for what they are, and the Hamming loss added."""
    names = {"train accuracy": "train subset accuracy", "test accuracy": "test subset accuracy"}
    out = [(names.get(key, key), value) for key, value in rows]
    at = next((i + 1 for i, (key, _) in enumerate(out) if key == "test subset accuracy"), len(out))
    out.insert(at, ("test Hamming loss", f"{test.hamming_loss:.4f}"))
    return out


def label_table(scores: PerClassScores, names: Sequence[str], title: str) -> Any:
    """Each label's precision, recall, F1 and support (the rows it applies to)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", min_width=len(title))
    for column in ("label", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="right")
    for name, p, r, f, s in zip(names, scores.precision, scores.recall, scores.f1, scores.support):
        table.add_row(name, f"{p:.4f}", f"{r:.4f}", f"{f:.4f}", str(int(s)))
    return table


def prediction_columns(proba: np.ndarray, names: Sequence[str], with_proba: bool) -> dict[str, np.ndarray]:
    """``predict``'s columns for a multilabel model: one 0/1 column per label, named after its target
    column, and with ``--proba`` a ``proba_<name>`` column each."""
    columns: dict[str, np.ndarray] = {name: (proba[:, k] > 0.5).astype(np.int64) for k, name in enumerate(names)}
    if with_proba:
        columns.update({f"proba_{name}": proba[:, k] for k, name in enumerate(names)})
    return columns


def evaluation_rows(model: str, data: str, metrics: MultilabelMetrics) -> Any:
    """``evaluate``'s summary of a multilabel model."""
    rows = [
        ("model", model),
        ("data", data),
        ("subset accuracy", f"{metrics.accuracy:.4f}"),
        ("Hamming loss", f"{metrics.hamming_loss:.4f}"),
        ("log-loss", f"{metrics.log_loss:.4f} (binary cross-entropy summed over the labels, per row)"),
    ]
    return key_value_table("Evaluation (multilabel)", rows)
