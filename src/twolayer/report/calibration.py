"""How far predicted probabilities are from observed frequencies.

A classifier is *calibrated* when, among the patterns to which it gives
confidence ``c`` in its predicted class, a fraction ``c`` is classified
correctly. This module measures that for any probabilistic classifier's
``predict_proba`` output, with the *top-label* view (Guo et al. 2017): the
confidence of a pattern is its largest probability :math:`\\max_k p_{nk}`, and
it is correct when that class is the true one.

The confidences are sorted into ``n_bins`` bins of equal width on
:math:`[0, 1]`; bin ``b`` holds the confidences in
:math:`(b / B, (b + 1) / B]` (the first bin also holds 0), the convention of
:func:`sklearn.calibration.calibration_curve`. Then

.. math::

    \\mathrm{ECE} = \\sum_b \\frac{n_b}{N} \\big| \\mathrm{acc}_b - \\mathrm{conf}_b \\big|,
    \\qquad
    \\mathrm{MCE} = \\max_{b:\\, n_b > 0} \\big| \\mathrm{acc}_b - \\mathrm{conf}_b \\big|,

with :math:`\\mathrm{acc}_b` the fraction correct and :math:`\\mathrm{conf}_b`
the mean confidence in bin ``b``. The pairs
:math:`(\\mathrm{conf}_b, \\mathrm{acc}_b)` are the points of a reliability
diagram; :func:`reliability_curve` returns them with the bin counts, and
nothing here draws (plots belong to the edges of the package).

Everything is a pure function of arrays; inputs are never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ReliabilityCurve",
    "calibration_summary",
    "expected_calibration_error",
    "reliability_curve",
]


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


def _labels_and_proba(
    y_true: Any, proba: Any, classes: Sequence[Any] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Check the inputs; return column indices of the true classes and the probabilities."""
    P = np.asarray(proba, dtype=np.float64)
    if P.ndim != 2 or P.shape[1] < 2:
        raise ValueError(f"proba must have shape (N, K) with K >= 2 columns, got shape {P.shape}")
    if P.shape[0] == 0:
        raise ValueError("proba holds no patterns (N = 0)")
    if not np.all(np.isfinite(P)) or np.any(P < 0):
        raise ValueError("proba must hold finite, non-negative probabilities")
    if not np.allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-6):
        raise ValueError("each row of proba must sum to one (within 1e-6)")
    y = np.asarray(y_true)
    if y.ndim != 1 or y.shape[0] != P.shape[0]:
        raise ValueError(f"y_true must have shape ({P.shape[0]},) to match proba, got shape {y.shape}")
    K = P.shape[1]
    if classes is None:
        # Without the class list, a label is the index of its column.
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                "y_true is not integer column indices; pass classes= (e.g. model.classes_) "
                "to say which label each column of proba belongs to"
            )
        index = y.astype(np.intp)
        if np.any(index < 0) or np.any(index >= K):
            raise ValueError(f"y_true holds column indices outside 0..{K - 1}")
        return index, P
    cls = np.asarray(classes)
    if cls.ndim != 1 or cls.shape[0] != K:
        raise ValueError(f"classes must list the {K} classes of proba's columns, got shape {cls.shape}")
    order = np.argsort(cls, kind="stable")
    pos = np.searchsorted(cls[order], y)
    pos = np.clip(pos, 0, K - 1)
    found = cls[order][pos] == y
    if not np.all(found):
        missing = np.unique(y[~found])
        raise ValueError(f"y_true holds labels that are not in classes: {missing[:5].tolist()}")
    return order[pos], P


def _confidence_and_correct(index: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.argmax(P, axis=1)  # ties go to the first class, as in predict()
    confidence = P[np.arange(P.shape[0]), predicted]
    return confidence, (predicted == index).astype(np.float64)


def _check_n_bins(n_bins: int) -> int:
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)


def _filled_bins(curve: ReliabilityCurve) -> tuple[np.ndarray, np.ndarray]:
    """The non-empty bins' weights :math:`n_b / N` and gaps :math:`|\\mathrm{acc}_b - \\mathrm{conf}_b|`."""
    filled = curve.count > 0
    return curve.count[filled] / curve.count.sum(), np.abs(curve.gap[filled])


def reliability_curve(
    y_true: Any,
    proba: Any,
    *,
    classes: Sequence[Any] | np.ndarray | None = None,
    n_bins: int = 10,
) -> ReliabilityCurve:
    """The points of a top-label reliability diagram.

    Parameters
    ----------
    y_true : array-like of shape (N,)
        True labels: entries of ``classes``, or column indices ``0..K-1`` of
        ``proba`` when ``classes`` is None.
    proba : array-like of shape (N, K)
        Predicted class probabilities, rows summing to one (``predict_proba``).
    classes : array-like of shape (K,), optional
        The label of each column of ``proba`` (an estimator's ``classes_``).
    n_bins : int, default 10
        Number of equal-width confidence bins on [0, 1].

    Returns
    -------
    ReliabilityCurve

    References
    ----------
    M. H. DeGroot and S. E. Fienberg, "The comparison and evaluation of
    forecasters", *The Statistician* 32 (1983). C. Guo, G. Pleiss, Y. Sun and
    K. Q. Weinberger, "On calibration of modern neural networks", ICML 2017, §2.
    """
    n_bins = _check_n_bins(n_bins)
    index, P = _labels_and_proba(y_true, proba, classes)
    confidence, correct = _confidence_and_correct(index, P)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin b holds (edges[b], edges[b+1]]: the number of inner edges strictly below c.
    bins = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / count
    return ReliabilityCurve(edges, mean_conf, accuracy, count)


def expected_calibration_error(
    y_true: Any,
    proba: Any,
    *,
    classes: Sequence[Any] | np.ndarray | None = None,
    n_bins: int = 15,
) -> float:
    """The top-label expected calibration error.

    :math:`\\mathrm{ECE} = \\sum_b (n_b / N)\\,|\\mathrm{acc}_b - \\mathrm{conf}_b|`,
    between 0 (calibrated, as far as the bins can tell) and 1.

    Parameters
    ----------
    y_true, proba, classes
        As for :func:`reliability_curve`.
    n_bins : int, default 15
        Number of equal-width bins (Guo et al. use 15).

    Returns
    -------
    float

    Notes
    -----
    The binned estimate is biased upwards for small ``N``: even perfectly
    calibrated probabilities give an ECE of order :math:`\\sqrt{B / N}`.

    References
    ----------
    M. P. Naeini, G. F. Cooper and M. Hauskrecht, "Obtaining well calibrated
    probabilities using Bayesian binning", AAAI 2015. Guo et al. 2017, eq. 3.
    """
    weight, gap = _filled_bins(reliability_curve(y_true, proba, classes=classes, n_bins=n_bins))
    return float(np.sum(weight * gap))


def calibration_summary(
    y_true: Any,
    proba: Any,
    *,
    classes: Sequence[Any] | np.ndarray | None = None,
    n_bins: int = 15,
) -> dict[str, float]:
    """Accuracy, log-loss, Brier score and calibration errors of predicted probabilities.

    Parameters
    ----------
    y_true, proba, classes, n_bins
        As for :func:`expected_calibration_error`.

    Returns
    -------
    dict
        ``accuracy``; ``log_loss`` :math:`-\\frac1N \\sum_n \\ln p_{n, t_n}`
        (probabilities clipped below at the smallest positive float so that a
        confident mistake gives a large finite number); ``brier``
        :math:`\\frac1N \\sum_n \\sum_k (p_{nk} - t_{nk})^2`; ``ece`` and
        ``mce`` (the largest bin gap); ``n`` the number of patterns.
    """
    n_bins = _check_n_bins(n_bins)
    index, P = _labels_and_proba(y_true, proba, classes)
    N, K = P.shape
    _, correct = _confidence_and_correct(index, P)
    p_true = np.maximum(P[np.arange(N), index], np.finfo(np.float64).tiny)
    T = np.eye(K)[index]
    weight, gap = _filled_bins(reliability_curve(index, P, n_bins=n_bins))
    return {
        "n": float(N),
        "accuracy": float(correct.mean()),
        "log_loss": float(-np.mean(np.log(p_true))),
        "brier": float(np.mean(np.sum((P - T) ** 2, axis=1))),
        "ece": float(np.sum(weight * gap)),
        "mce": float(gap.max()),
    }
