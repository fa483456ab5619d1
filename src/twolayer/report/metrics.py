"""How well a classifier's probabilities predict labels: accuracy, log-loss, confusion, per-class scores.

And the stratified train/test split that a training run holds out its test
patterns by. Calibration (ECE, Brier, reliability) is in
:mod:`twolayer.report.calibration`; :class:`~twolayer.report.evaluation.Evaluation`
accumulates all of these figures over batches of patterns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from twolayer.errors import DataError
from twolayer.report.evaluation import Evaluation, PerClassScores, _ClassIndex

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
        :math:`p(C_k \\mid x_n)`, columns in the order of ``classes``, rows
        summing to one within 1e-6.
    y : ndarray of shape (N,)
        The true labels, each one of ``classes``.
    classes : ndarray of shape (K,)
        Distinct labels, in any order.

    Returns
    -------
    ClassificationMetrics

    Raises
    ------
    ValueError
        When ``proba`` does not hold probabilities, one column per class, or
        ``y`` does not match it or holds a label not in ``classes``.

    See Also
    --------
    twolayer.report.evaluation.Evaluation : the same figures, batch by batch.
    """
    evaluation = Evaluation(classes, n_bins=1)
    evaluation.update(proba, y)
    return ClassificationMetrics(
        n_samples=evaluation.n_samples,
        accuracy=evaluation.accuracy,
        log_loss=evaluation.log_loss,
        confusion_matrix=evaluation.confusion_matrix.tolist(),
        predicted=evaluation.classes[np.argmax(np.asarray(proba), axis=1)],
    )


def per_class_scores(y: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> PerClassScores:
    """Precision, recall and F1 of each class, from the true and the predicted labels.

    Parameters
    ----------
    y : ndarray of shape (N,)
        The true labels, each one of ``classes``.
    predicted : ndarray of shape (N,)
        The predicted labels, each one of ``classes``.
    classes : ndarray of shape (K,)
        Distinct labels, in any order: the order of the scores.

    Returns
    -------
    PerClassScores
        See :meth:`PerClassScores.from_confusion`.

    Raises
    ------
    ValueError
        When ``y`` and ``predicted`` differ in shape or hold a label not in ``classes``.
    """
    index = _ClassIndex(classes)
    true, guessed = np.asarray(y), np.asarray(predicted)
    if true.ndim != 1 or guessed.shape != true.shape:
        raise ValueError(f"y and predicted must have one shape (N,), got shapes {true.shape} and {guessed.shape}")
    K = index.classes.shape[0]
    cells = index(true, "y") * K + index(guessed, "predicted")
    return PerClassScores.from_confusion(np.bincount(cells, minlength=K * K).reshape(K, K))


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
