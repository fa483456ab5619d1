"""Figures of predicted probabilities against true labels, accumulated batch by batch.

Accuracy, log-loss, the confusion matrix, per-class precision, recall and F1,
the Brier score and the reliability diagram with its calibration errors are all
sums over patterns. :class:`Evaluation` keeps those sums and nothing per
pattern, so that data too large for memory is evaluated in batches with memory
of order :math:`K^2 + B` (``K`` classes, ``B`` confidence bins). The one-shot
functions of :mod:`~twolayer.report.metrics` and
:mod:`~twolayer.report.calibration` are a single batch of it; the definitions
(bins, clipping) are documented there.

The sums of floating-point terms are kept exactly: each term is cut at
:math:`2^{-124}` into an integer part and four 31-bit fractions, exact
floating-point operations, and integers add associatively. So the results do
not depend on how the patterns are split into batches nor on their order, bit
for bit, and a mean is rounded once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Evaluation", "PerClassScores", "ReliabilityCurve"]

_LIMB_BITS = 31
_FRACTION_LIMBS = 4
_LIMB_SCALE = float(1 << _LIMB_BITS)
_LIMB_MASK = (1 << _LIMB_BITS) - 1
# Rows an update handles at a time: bounds its temporaries, and a chunk's sum of one
# 31-bit limb stays below 2**53, so it is exact in a float64 bincount.
_CHUNK_ROWS = 1 << 16


@dataclass(frozen=True)
class ReliabilityCurve:
    """The data of a reliability diagram.

    Attributes
    ----------
    bin_edges : ndarray of shape (n_bins + 1,)
        ``numpy.linspace(0, 1, n_bins + 1)``.
    confidence : ndarray of shape (n_bins,)
        Mean top-label confidence of the patterns in each bin; NaN where the
        bin is empty.
    accuracy : ndarray of shape (n_bins,)
        Fraction of the patterns in each bin that are classified correctly;
        NaN where the bin is empty.
    count : ndarray of shape (n_bins,), int
        Number of patterns in each bin.
    """

    bin_edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """``accuracy - confidence`` per bin (negative: over-confident); NaN where empty."""
        return self.accuracy - self.confidence


@dataclass(frozen=True)
class PerClassScores:
    """Precision, recall, F1 and support of each class (0 where undefined), in the order of the classes."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray

    @classmethod
    def from_confusion(cls, confusion: Any) -> PerClassScores:
        """The scores of a confusion matrix.

        Parameters
        ----------
        confusion : array-like of shape (K, K), int
            Row: the true class, column: the predicted one.

        Returns
        -------
        PerClassScores
            As scikit-learn's ``precision_recall_fscore_support`` with
            ``zero_division=0``: precision :math:`tp / (tp + fp)`, recall
            :math:`tp / (tp + fn)`, F1 :math:`2 tp / (2 tp + fp + fn)`, each 0
            where its denominator is, and support :math:`tp + fn`.
        """
        matrix = np.asarray(confusion, dtype=np.int64)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(f"confusion must be a square matrix, got shape {matrix.shape}")
        true_positive = np.diagonal(matrix).copy()
        support = matrix.sum(axis=1)
        predicted = matrix.sum(axis=0)

        def ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
            return np.divide(
                numerator, denominator, out=np.zeros(numerator.shape, dtype=np.float64), where=denominator != 0
            )

        return cls(
            precision=ratio(true_positive, predicted),
            recall=ratio(true_positive, support),
            f1=ratio(2.0 * true_positive, (support + predicted).astype(np.float64)),
            support=support,
        )


def _check_n_bins(n_bins: int) -> int:
    """``n_bins`` as an int, after checking it is a positive integer."""
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def _checked_proba(proba: Any, *, allow_empty: bool = False) -> tuple[np.ndarray, float]:
    """``proba`` as float64 after checking it holds probabilities, and the log-loss clipping of its dtype.

    Parameters
    ----------
    proba : array-like of shape (N, K)
        Rows of class probabilities, each summing to one within 1e-6.
    allow_empty : bool, default False
        Whether ``N = 0`` is allowed.

    Returns
    -------
    P : ndarray of shape (N, K), float64
        ``proba`` itself where it is already float64 (not copied).
    eps : float
        The machine epsilon of ``proba``'s floating dtype (float64's for
        others), which scikit-learn's ``log_loss`` clips probabilities by.
    """
    array = np.asarray(proba)
    dtype = array.dtype if np.issubdtype(array.dtype, np.floating) else np.dtype(np.float64)
    P = np.asarray(array, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] < 2:
        raise ValueError(f"proba must have shape (N, K) with K >= 2 columns, got shape {P.shape}")
    if P.shape[0] == 0 and not allow_empty:
        raise ValueError("proba holds no patterns (N = 0)")
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise ValueError("proba must hold finite, non-negative probabilities")
    if not np.allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-6):
        raise ValueError("each row of proba must sum to one (within 1e-6)")
    return P, float(np.finfo(dtype).eps)


class _ClassIndex:
    """The position of each label in a list of distinct classes.

    Parameters
    ----------
    classes : array-like of shape (K,)
        Distinct labels, in any order.
    """

    def __init__(self, classes: Any) -> None:
        self.classes = np.array(classes)  # a copy: later changes to the caller's array do not reach here
        if self.classes.ndim != 1:
            raise ValueError(f"classes must be one-dimensional, got shape {self.classes.shape}")
        self._order = np.argsort(self.classes, kind="stable")
        self._sorted = self.classes[self._order]
        repeated = np.flatnonzero(self._sorted[1:] == self._sorted[:-1])
        if repeated.size:
            raise ValueError(f"classes must be distinct; {self._sorted[repeated].tolist()[0]!r} is listed twice")

    def __call__(self, labels: Any, name: str) -> np.ndarray:
        """The column index of each label.

        Parameters
        ----------
        labels : array-like of shape (N,)
            Each one of the classes.
        name : str
            The Python parameter ``labels`` came in as, for messages.

        Returns
        -------
        ndarray of shape (N,), intp
        """
        y = np.asarray(labels)
        K = self.classes.shape[0]
        try:
            pos = np.clip(np.searchsorted(self._sorted, y), 0, K - 1)
            found = np.asarray(self._sorted[pos] == y, dtype=bool)
        except TypeError:  # labels that do not even compare with the classes, e.g. text against numbers
            pos, found = np.zeros(y.shape, dtype=np.intp), np.zeros(y.shape, dtype=bool)
        if not np.all(found):
            missing = list(dict.fromkeys(y[~found].tolist()))
            raise ValueError(f"{name} holds labels that are not in classes: {missing[:5]}")
        return np.asarray(self._order[pos], dtype=np.intp)


class _ExactSums:
    """Running sums of float64 terms in ``size`` slots, exact to :math:`2^{-124}` per term.

    A term ``v`` with :math:`|v| < 2^{10}` is the integer ``floor(v)`` plus four
    31-bit fractions ``floor(r * 2**31)`` of what remains; each step is an exact
    floating-point operation, and only what is below :math:`2^{-124}` is dropped.
    The pieces add up as integers, and after each addition the carries move up,
    so no limb grows past :math:`2^{31}` but the first.
    """

    def __init__(self, size: int) -> None:
        self._limbs = np.zeros((_FRACTION_LIMBS + 1, size), dtype=np.int64)

    def add(self, values: np.ndarray, slots: np.ndarray | int) -> None:
        """Add at most ``_CHUNK_ROWS`` terms, each to its slot (an array), or all to one slot (an int)."""
        rest = np.asarray(values, dtype=np.float64)
        for i in range(_FRACTION_LIMBS + 1):
            if i:
                rest = rest * _LIMB_SCALE
            part = np.floor(rest)
            rest = rest - part
            if isinstance(slots, int):
                self._limbs[i, slots] += int(part.sum())  # integers below 2**53: summed exactly
            else:
                self._limbs[i] += np.bincount(slots, weights=part, minlength=self._limbs.shape[1]).astype(np.int64)
        for i in range(_FRACTION_LIMBS, 0, -1):
            self._limbs[i - 1] += self._limbs[i] >> _LIMB_BITS
            self._limbs[i] &= _LIMB_MASK

    def _scaled(self, slot: int) -> int:
        """The sum in ``slot`` times :math:`2^{124}`, an exact integer."""
        total = 0
        for limb in self._limbs[:, slot].tolist():
            total = (total << _LIMB_BITS) + limb
        return total

    def mean(self, slot: int, count: int) -> float:
        """The sum in ``slot`` divided by ``count``, rounded once: Python divides integers correctly rounded."""
        return self._scaled(slot) / (count << (_LIMB_BITS * _FRACTION_LIMBS))

    def means(self, counts: np.ndarray) -> np.ndarray:
        """Each slot's sum divided by its count; NaN where the count is 0."""
        return np.array([self.mean(s, int(n)) if n else np.nan for s, n in enumerate(counts.tolist())])


class Evaluation:
    """Accuracy, log-loss, confusion matrix, per-class scores and calibration, accumulated batch by batch.

    Feed it the predicted probabilities and the true labels of any number of
    batches with :meth:`update`; at any point the figures of all the patterns
    seen so far are what :func:`~twolayer.report.metrics.classification_metrics`,
    :func:`~twolayer.report.metrics.per_class_scores`,
    :func:`~twolayer.report.calibration.calibration_summary` and
    :func:`~twolayer.report.calibration.reliability_curve` give for them in one
    array, the same bits however the patterns were split. Memory is of order
    ``K**2 + n_bins``, whatever the number of patterns.

    Parameters
    ----------
    classes : array-like of shape (K,)
        The distinct labels of the columns of the probabilities, ``K >= 2``
        (an estimator's ``classes_``).
    n_bins : int, default 15
        Equal-width confidence bins on [0, 1] of the calibration errors and
        the reliability curve.

    Examples
    --------
    >>> import numpy as np
    >>> evaluation = Evaluation(np.array(["a", "b"]), n_bins=10)
    >>> evaluation.update(np.array([[0.9, 0.1], [0.3, 0.7]]), np.array(["a", "a"]))
    >>> evaluation.update(np.array([[0.2, 0.8]]), np.array(["b"]))
    >>> evaluation.n_samples, round(evaluation.accuracy, 4)
    (3, 0.6667)
    """

    def __init__(self, classes: Any, n_bins: int = 15) -> None:
        self._index = _ClassIndex(classes)
        K = self._index.classes.shape[0]
        if K < 2:
            raise ValueError(f"classes must list at least two classes, got {K}")
        self._n_bins = _check_n_bins(n_bins)
        self._edges = np.linspace(0.0, 1.0, self._n_bins + 1)
        self._n = 0
        self._confusion = np.zeros((K, K), dtype=np.int64)
        self._bin_count = np.zeros(self._n_bins, dtype=np.int64)
        self._bin_correct = np.zeros(self._n_bins, dtype=np.int64)
        self._bin_confidence = _ExactSums(self._n_bins)
        # Slots: log-loss as scikit-learn clips, log-loss clipped at the smallest normal float, Brier score.
        self._sums = _ExactSums(3)

    @property
    def classes(self) -> np.ndarray:
        """The labels of the probabilities' columns, shape (K,) (a copy)."""
        return self._index.classes.copy()

    @property
    def n_bins(self) -> int:
        """The number of confidence bins."""
        return self._n_bins

    @property
    def n_samples(self) -> int:
        """The number of patterns seen."""
        return self._n

    def update(self, proba: Any, y: Any) -> None:
        """Add a batch of patterns.

        Parameters
        ----------
        proba : array-like of shape (N, K)
            :math:`p(C_k \\mid x_n)`, columns in the order of ``classes``, rows
            summing to one within 1e-6. ``N = 0`` is allowed.
        y : array-like of shape (N,)
            The true labels, each one of ``classes``.

        Raises
        ------
        ValueError
            When ``proba`` does not hold probabilities, one per class, or ``y``
            does not match it or holds a label not in ``classes``; the figures
            are then as before the call.
        """
        P, eps = _checked_proba(proba, allow_empty=True)
        K = self._confusion.shape[0]
        if P.shape[1] != K:
            raise ValueError(f"proba has {P.shape[1]} columns, but there are {K} classes")
        labels = np.asarray(y)
        if labels.shape != (P.shape[0],):
            raise ValueError(f"y must have shape ({P.shape[0]},) to match proba, got shape {labels.shape}")
        index = self._index(labels, "y")
        for start in range(0, P.shape[0], _CHUNK_ROWS):
            self._add(P[start : start + _CHUNK_ROWS], index[start : start + _CHUNK_ROWS], eps)
        self._n += P.shape[0]

    def _add(self, P: np.ndarray, index: np.ndarray, eps: float) -> None:
        N, K = P.shape
        rows = np.arange(N)
        predicted = np.argmax(P, axis=1)  # ties go to the first class, as in predict()
        correct = predicted == index
        self._confusion += np.bincount(index * K + predicted, minlength=K * K).reshape(K, K)

        confidence = P[rows, predicted]
        # Bin b holds (edges[b], edges[b+1]]: the number of inner edges strictly below c.
        bins = np.searchsorted(self._edges[1:-1], confidence, side="left")
        self._bin_count += np.bincount(bins, minlength=self._n_bins)
        self._bin_correct += np.bincount(bins[correct], minlength=self._n_bins)
        self._bin_confidence.add(confidence, bins)

        p_true = P[rows, index]
        self._sums.add(-np.log(np.clip(p_true, eps, 1.0 - eps)), 0)
        self._sums.add(-np.log(np.maximum(p_true, np.finfo(np.float64).tiny)), 1)
        error = P.copy()
        error[rows, index] -= 1.0
        self._sums.add(np.sum(error * error, axis=1), 2)

    def _count(self) -> int:
        if self._n == 0:
            raise ValueError("no patterns to evaluate: update() has not been given any")
        return self._n

    @property
    def accuracy(self) -> float:
        """The fraction of patterns whose most probable class is the true one."""
        return int(np.trace(self._confusion)) / self._count()

    @property
    def log_loss(self) -> float:
        """The mean of :math:`-\\ln p(t_n \\mid x_n)`, probabilities clipped to ``[eps, 1 - eps]``.

        ``eps`` is the machine epsilon of the batch's dtype, as scikit-learn's
        ``log_loss`` clips (``ClassificationMetrics.log_loss``);
        :meth:`calibration_summary` clips differently.
        """
        return self._sums.mean(0, self._count())

    @property
    def confusion_matrix(self) -> np.ndarray:
        """Counts, shape (K, K), int64: row the true class, column the predicted one, in the order of ``classes``.

        ``.tolist()`` of it is ``ClassificationMetrics.confusion_matrix``.
        """
        self._count()
        return self._confusion.copy()

    def per_class_scores(self) -> PerClassScores:
        """Precision, recall, F1 and support of each class, as :func:`~twolayer.report.metrics.per_class_scores`.

        Returns
        -------
        PerClassScores
        """
        return PerClassScores.from_confusion(self.confusion_matrix)

    def reliability_curve(self) -> ReliabilityCurve:
        """The points of the top-label reliability diagram, as :func:`~twolayer.report.calibration.reliability_curve`.

        Returns
        -------
        ReliabilityCurve
        """
        self._count()
        count = self._bin_count.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = self._bin_correct / count
        return ReliabilityCurve(self._edges.copy(), self._bin_confidence.means(count), accuracy, count)

    def calibration_summary(self) -> dict[str, float]:
        """Accuracy, log-loss, Brier score and calibration errors, as :func:`~twolayer.report.calibration.calibration_summary`.

        Returns
        -------
        dict
            ``n`` (the number of patterns, a float), ``accuracy``,
            ``log_loss`` (probabilities clipped below at the smallest normal
            float only, so that a confident mistake counts as a large finite
            number), ``brier`` :math:`\\frac1N \\sum_n \\sum_k (p_{nk} - t_{nk})^2`,
            ``ece`` and ``mce``.
        """
        N = self._count()
        curve = self.reliability_curve()
        filled = curve.count > 0
        weight, gap = curve.count[filled] / curve.count.sum(), np.abs(curve.gap[filled])
        return {
            "n": float(N),
            "accuracy": self.accuracy,
            "log_loss": self._sums.mean(1, N),
            "brier": self._sums.mean(2, N),
            "ece": float(np.sum(weight * gap)),
            "mce": float(gap.max()),
        }
