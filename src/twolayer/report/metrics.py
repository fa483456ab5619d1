"""How well a classifier's probabilities predict labels: accuracy, log-loss, confusion, per-class scores.

For a multilabel classifier (K independent 0/1 labels per pattern),
:func:`multilabel_metrics` gives the subset accuracy, the Hamming loss, the
mean binary cross-entropy and each label's precision, recall and F1.

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
    "MultilabelMetrics",
    "PerClassScores",
    "accuracy",
    "classification_metrics",
    "hamming_loss",
    "multilabel_metrics",
    "per_class_scores",
    "per_label_scores",
    "stratified_split",
    "subset_accuracy",
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
    """The fraction of patterns with ``y_pred == y_true``.

    For label matrices of shape (N, K) (multilabel), a pattern counts when
    all its K labels are right: the subset accuracy, as scikit-learn's
    ``accuracy_score`` has it.
    """
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if true.ndim == 2:
        return subset_accuracy(true, pred)
    return float(np.mean(pred == true))


def _indicator_pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if true.ndim != 2 or pred.shape != true.shape:
        raise ValueError(
            f"y_true and y_pred must be label matrices of one shape (N, K), got shapes {true.shape} and {pred.shape}"
        )
    return true != 0, pred != 0


def subset_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of patterns whose K predicted labels are all right.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (N, K)
        Indicator matrices: nonzero for a label that applies.

    Returns
    -------
    float
    """
    true, pred = _indicator_pair(y_true, y_pred)
    return float(np.mean(np.all(true == pred, axis=1)))


def hamming_loss(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The fraction of the N K label decisions that are wrong.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (N, K)
        Indicator matrices: nonzero for a label that applies.

    Returns
    -------
    float
    """
    true, pred = _indicator_pair(y_true, y_pred)
    return float(np.mean(true != pred))


def per_label_scores(y_true: np.ndarray, y_pred: np.ndarray) -> PerClassScores:
    """Precision, recall and F1 of each label of a multilabel target, each label a two-class problem.

    Label k's scores are those of "applies" against "does not apply": with
    :math:`tp_k`, :math:`fp_k` and :math:`fn_k` its true positives, false
    positives and false negatives, precision :math:`tp/(tp + fp)`, recall
    :math:`tp/(tp + fn)` and F1 their harmonic mean, each 0 where its
    denominator is (scikit-learn's ``zero_division=0``).

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (N, K)
        Indicator matrices: nonzero for a label that applies.

    Returns
    -------
    PerClassScores
        One entry per label, in column order; ``support`` is the number of
        patterns the label applies to.
    """
    true, pred = _indicator_pair(y_true, y_pred)
    tp = np.sum(true & pred, axis=0).astype(np.float64)
    fp = np.sum(~true & pred, axis=0).astype(np.float64)
    fn = np.sum(true & ~pred, axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return PerClassScores(precision, recall, f1, np.sum(true, axis=0).astype(np.int64))


@dataclass(frozen=True)
class MultilabelMetrics:
    """The figures of predicted label probabilities against the true label matrix.

    Attributes
    ----------
    n_samples : int
        Patterns.
    accuracy : float
        The subset accuracy: the fraction of patterns with every label right
        (a label predicted where its probability exceeds 1/2).
    hamming_loss : float
        The fraction of wrong label decisions.
    log_loss : float
        The mean over patterns of the binary cross-entropy summed over the
        labels, :math:`-\\sum_k [t_k \\ln p_k + (1 - t_k) \\ln(1 - p_k)]`
        (probabilities clipped away from 0 and 1 as scikit-learn's ``log_loss`` clips them).
    scores : PerClassScores
        Each label's precision, recall, F1 and support.
    confusion_matrix : list of list of list of int
        For each label, ``[[tn, fp], [fn, tp]]`` (scikit-learn's ``multilabel_confusion_matrix``).
    predicted : ndarray of shape (N, K)
        The predicted 0/1 labels.
    """

    n_samples: int
    accuracy: float
    hamming_loss: float
    log_loss: float
    scores: PerClassScores
    confusion_matrix: list[list[list[int]]]
    predicted: np.ndarray


def multilabel_metrics(proba: np.ndarray, y: np.ndarray) -> MultilabelMetrics:
    """Subset accuracy, Hamming loss, log-loss and per-label scores of label probabilities.

    Parameters
    ----------
    proba : ndarray of shape (N, K)
        :math:`p(t_{nk} = 1 \\mid x_n)` for each label, each in [0, 1] (the
        rows need not sum to one).
    y : ndarray of shape (N, K)
        The true labels, 0 or 1.

    Returns
    -------
    MultilabelMetrics

    Raises
    ------
    ValueError
        When ``proba`` does not hold probabilities, or ``y`` is not a 0/1
        matrix of its shape.
    """
    p, t = np.asarray(proba, dtype=np.float64), np.asarray(y)
    if p.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"proba and y must have one shape (N, K), got shapes {p.shape} and {t.shape}")
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("proba must hold probabilities, each in [0, 1]")
    if not np.all((t == 0) | (t == 1)):
        raise ValueError("y must hold labels 0 and 1")
    predicted = (p > 0.5).astype(np.int64)
    true = t.astype(bool)
    clipped = np.clip(p, np.finfo(np.float64).eps, 1 - np.finfo(np.float64).eps)
    per_pattern = -np.sum(np.where(true, np.log(clipped), np.log1p(-clipped)), axis=1)
    pred = predicted.astype(bool)
    tn, fp = np.sum(~true & ~pred, axis=0), np.sum(~true & pred, axis=0)
    fn, tp = np.sum(true & ~pred, axis=0), np.sum(true & pred, axis=0)
    confusion = [[[int(a), int(b)], [int(c), int(d)]] for a, b, c, d in zip(tn, fp, fn, tp)]
    return MultilabelMetrics(
        n_samples=int(p.shape[0]),
        accuracy=subset_accuracy(t, predicted),
        hamming_loss=hamming_loss(t, predicted),
        log_loss=float(np.mean(per_pattern)) if per_pattern.size else float("nan"),
        scores=per_label_scores(t, predicted),
        confusion_matrix=confusion,
        predicted=predicted,
    )


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

    Notes
    -----
    A label matrix ``y`` of shape (N, K) (multilabel) cannot be stratified
    by class: its split is a plain seeded shuffle, leaving at least one
    pattern on each side.
    """
    from sklearn.model_selection import train_test_split

    if np.ndim(y) == 2:
        n = int(np.shape(y)[0])
        n_test = math.ceil(test_size * n)
        if n_test < 1 or n - n_test < 1:
            raise DataError(f"{option} {test_size} leaves no samples on one side of the {n} of {source}")
        train, test = train_test_split(np.arange(n), test_size=test_size, random_state=random_state)
        return np.sort(train), np.sort(test)

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
