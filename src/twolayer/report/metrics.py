"""How well a classifier's probabilities predict labels: accuracy, log-loss, confusion, per-class scores.

And the stratified train/test split that a training run holds out its test
patterns by. Calibration (ECE, Brier, reliability) is in
:mod:`twolayer.report.calibration`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twolayer.errors import DataError

__all__ = [
    "ClassificationMetrics",
    "PerClassScores",
    "accuracy",
    "classification_metrics",
    "per_class_scores",
    "stratified_split",
]


@dataclass(frozen=True)
class ClassificationMetrics:
    """The figures of one set of predicted probabilities against the true labels.

    Attributes
    ----------
    n_samples : int
        Patterns.
    accuracy : float
        The fraction whose most probable class is the true one.
    log_loss : float
        The mean of :math:`-\\ln p(t_n \\mid x_n)` (scikit-learn's ``log_loss``,
        probabilities clipped away from 0).
    confusion_matrix : list of list of int
        Row: the true class, column: the predicted one, in the order of ``classes``.
    predicted : ndarray of shape (N,)
        The most probable class of each pattern.
    """

    n_samples: int
    accuracy: float
    log_loss: float
    confusion_matrix: list[list[int]]
    predicted: np.ndarray


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of patterns with ``y_pred == y_true``."""
    return float(np.mean(y_pred == y_true))


def classification_metrics(proba: np.ndarray, y: np.ndarray, classes: np.ndarray) -> ClassificationMetrics:
    """Accuracy, log-loss and confusion matrix of class probabilities.

    Parameters
    ----------
    proba : ndarray of shape (N, K)
        :math:`p(C_k \\mid x_n)`, columns in the order of ``classes``.
    y : ndarray of shape (N,)
        The true labels, each one of ``classes``.
    classes : ndarray of shape (K,)

    Returns
    -------
    ClassificationMetrics
    """
    from sklearn.metrics import confusion_matrix, log_loss

    predicted = classes[np.argmax(proba, axis=1)]
    return ClassificationMetrics(
        n_samples=int(y.size),
        accuracy=accuracy(y, predicted),
        log_loss=float(log_loss(y, proba, labels=classes)),
        confusion_matrix=confusion_matrix(y, predicted, labels=classes).tolist(),
        predicted=predicted,
    )


@dataclass(frozen=True)
class PerClassScores:
    """Precision, recall, F1 and support of each class (0 where undefined), in the order of the classes."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray


def per_class_scores(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> PerClassScores:
    """Precision, recall and F1 of each class, from the true and the predicted labels."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=classes, zero_division=0)
    return PerClassScores(np.asarray(precision), np.asarray(recall), np.asarray(f1), np.asarray(support))


def stratified_split(
    y: np.ndarray, test_size: float, random_state: int, *, source: str, option: str = "test_size"
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test indices of a stratified split, after checking every class can be on both sides.

    Parameters
    ----------
    y : ndarray of shape (N,)
        The labels.
    test_size : float
        The fraction held out, strictly between 0 and 1; ``ceil(test_size * N)``
        patterns, as scikit-learn's ``train_test_split`` counts them.
    random_state : int
        Seeds the split.
    source : str
        Where the labels came from, for messages.
    option : str, default "test_size"
        What messages call ``test_size`` (the command line says ``--test-size``).

    Raises
    ------
    DataError
        When a class has a single pattern, or either side would have fewer
        patterns than there are classes.
    """
    from sklearn.model_selection import train_test_split

    classes, counts = np.unique(y, return_counts=True)
    rare = np.flatnonzero(counts < 2)
    if rare.size:
        value = classes[rare[0]]
        shown = str(value.item() if isinstance(value, np.generic) else value)
        raise DataError(
            f"{source}: class {shown!r} has a single sample; a stratified "
            "train/test split needs at least two of each class"
        )
    n_samples = int(y.size)
    n_test = math.ceil(test_size * n_samples)
    for side, n in (("held out", n_test), ("left for training", n_samples - n_test)):
        if n < classes.size:
            raise DataError(
                f"{option} {test_size} leaves {n} samples {side}, fewer than the {classes.size} classes of {source}"
            )
    train, test = train_test_split(np.arange(n_samples), test_size=test_size, stratify=y, random_state=random_state)
    return np.sort(train), np.sort(test)
