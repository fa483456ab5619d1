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

Everything is a pure function of arrays; inputs are never modified. For
patterns that come in batches, :class:`~twolayer.report.evaluation.Evaluation`
accumulates the same figures; the functions here are one batch of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from twolayer.report.evaluation import Evaluation, ReliabilityCurve, _check_n_bins, _checked_proba, _ClassIndex

__all__ = [
    "ReliabilityCurve",
    "calibration_summary",
    "expected_calibration_error",
    "reliability_curve",
]


def _labels_and_proba(
    y_true: Any, proba: Any, classes: Sequence[Any] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Check the inputs; return column indices of the true classes and the probabilities."""
    P, _ = _checked_proba(proba)
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
    return _ClassIndex(cls)(y, "y_true"), P


def _evaluation(y_true: Any, proba: Any, classes: Sequence[Any] | np.ndarray | None, n_bins: int) -> Evaluation:
    """An :class:`Evaluation` of all the patterns, its columns labelled by their indices."""
    n_bins = _check_n_bins(n_bins)
    index, P = _labels_and_proba(y_true, proba, classes)
    evaluation = Evaluation(np.arange(P.shape[1]), n_bins)
    evaluation.update(P, index)
    return evaluation


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
    return _evaluation(y_true, proba, classes, n_bins).reliability_curve()


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
    return _evaluation(y_true, proba, classes, n_bins).calibration_summary()["ece"]


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
    return _evaluation(y_true, proba, classes, n_bins).calibration_summary()
