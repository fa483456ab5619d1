"""The Gaussian prior on the weights: one precision per parameter group.

The parameters of the two-layer network fall into four groups, in
:func:`twolayer.network.flatten` order: the first-layer weights ``W1``, their
biases ``b1``, the second-layer weights ``W2`` and their biases ``b2``. The
grouped prior of MacKay (1992) and PRML §5.5.1, eqs. 5.122–5.123 gives each group its own
precision :math:`\\alpha_g`,

.. math::

    p(w \\mid \\alpha) \\propto \\prod_g \\exp\\Bigl(-\\frac{\\alpha_g}{2} \\lVert w_g \\rVert^2\\Bigr),
    \\qquad
    \\tilde E(w) = E(w) + \\sum_g \\frac{\\alpha_g}{2} \\lVert w_g \\rVert^2 ,

and the regularised error :math:`\\tilde E` is what training minimises.
Two readings of a single number exist, and each function below says which it takes:

- weight decay (PRML eq. 5.112, scikit-learn's ``alpha``): one :math:`\\alpha`
  on the weights, biases free, i.e. the groups :math:`(\\alpha, 0, \\alpha, 0)`;
  :func:`decay_per_group` reads it so, as training and :mod:`twolayer.curvature` do;
- a proper prior (the Bayesian layer): one :math:`\\alpha` on every group,
  :math:`(\\alpha, \\alpha, \\alpha, \\alpha)`, each positive;
  :func:`as_prior_precision` reads it so.

This module holds numbers only: it imports nothing of the package.

References
----------
D. J. C. MacKay, "A practical Bayesian framework for backpropagation networks",
Neural Computation 4 (1992); C. M. Bishop, *Pattern Recognition and Machine
Learning* (2006), §5.5.1 (eqs. 5.112 and 5.122–5.123).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "GROUPS",
    "Decay",
    "PriorPrecision",
    "as_prior_precision",
    "decay_per_group",
    "group_ids",
    "group_sizes",
    "is_weight_decay",
    "precision_vector",
]

#: The parameter groups, in :func:`twolayer.network.flatten` order.
GROUPS: tuple[str, str, str, str] = ("W1", "b1", "W2", "b2")

#: One precision for every group, four (W1, b1, W2, b2), or a mapping by group name.
PriorPrecision = float | Sequence[float] | Mapping[str, float] | np.ndarray

#: A weight decay: one number for the weights ``W1`` and ``W2`` (biases free), four
#: (W1, b1, W2, b2), or a mapping by group name.
Decay = float | Sequence[float] | Mapping[str, float] | np.ndarray


def group_sizes(n_features: int, n_hidden: int, n_classes: int) -> tuple[int, int, int, int]:
    """The sizes :math:`W_g` of the groups ``W1``, ``b1``, ``W2``, ``b2``, in flatten order."""
    D, M, K = n_features, n_hidden, n_classes
    return (D * M, M, M * K, K)


def group_ids(n_features: int, n_hidden: int, n_classes: int) -> np.ndarray:
    """For each flat parameter, the index of its group in :data:`GROUPS`.

    Returns
    -------
    ndarray of shape (W,), dtype intp
        ``0`` for ``W1``, ``1`` for ``b1``, ``2`` for ``W2``, ``3`` for ``b2``,
        in :func:`twolayer.network.flatten` order.
    """
    return np.repeat(np.arange(4), group_sizes(n_features, n_hidden, n_classes))


def _four(values: PriorPrecision, what: str) -> np.ndarray:
    """Four float64 numbers from a mapping by group or a sequence; a scalar stays 0-d."""
    if isinstance(values, Mapping):
        keys = set(values)
        if keys != set(GROUPS):
            raise ValueError(f"a {what} mapping needs exactly the keys {list(GROUPS)}, got {sorted(keys)}")
        return np.array([values[g] for g in GROUPS], dtype=np.float64)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 0 and array.shape != (4,):
        raise ValueError(f"{what} must be a number or four numbers (W1, b1, W2, b2), got shape {array.shape}")
    return array


def as_prior_precision(prior_precision: PriorPrecision) -> np.ndarray:
    """The four group precisions :math:`(\\alpha_{W1}, \\alpha_{b1}, \\alpha_{W2}, \\alpha_{b2})`.

    Parameters
    ----------
    prior_precision : float, sequence of 4 floats, or mapping
        One precision for every group, one per group in the order of
        :data:`GROUPS`, or a mapping with exactly the keys of :data:`GROUPS`.

    Returns
    -------
    ndarray of shape (4,)
        Positive and finite.
    """
    values = _four(prior_precision, "prior_precision")
    if values.ndim == 0:
        values = np.full(4, float(values))
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(
            f"prior precisions must be positive and finite (alpha = 0 leaves the softmax's "
            f"null directions unbounded and A singular), got {values.tolist()}"
        )
    return values


def decay_per_group(decay: Decay) -> tuple[float, float, float, float]:
    """The four group decays of a weight-decay argument, as Python floats.

    Parameters
    ----------
    decay : float, sequence of 4 floats, or mapping
        One number :math:`\\alpha` is the weight decay of PRML eq. 5.112 on
        the weights only, the groups :math:`(\\alpha, 0, \\alpha, 0)`; four
        numbers (or a mapping with exactly the keys of :data:`GROUPS`) are one
        per group.

    Returns
    -------
    tuple of 4 floats
        :math:`(\\alpha_{W1}, \\alpha_{b1}, \\alpha_{W2}, \\alpha_{b2})`, each
        non-negative (zero leaves its group free).

    Raises
    ------
    ValueError
        For a negative or NaN value, or the wrong number of values.
    """
    values = _four(decay, "decay")
    if values.ndim == 0:
        a = float(values)
        values = np.array([a, 0.0, a, 0.0])
    if not np.all(values >= 0):  # also rejects NaN
        raise ValueError(f"a decay must be non-negative, got {values.tolist()}")
    W1, b1, W2, b2 = (float(v) for v in values)
    return W1, b1, W2, b2


def is_weight_decay(decay: tuple[float, float, float, float]) -> bool:
    """Whether four group decays are one :math:`\\alpha` on the weights, biases free: :math:`(\\alpha, 0, \\alpha, 0)`."""
    W1, b1, W2, b2 = decay
    return W1 == W2 and b1 == 0.0 and b2 == 0.0


def precision_vector(alpha: PriorPrecision, n_features: int, n_hidden: int, n_classes: int) -> np.ndarray:
    """Each flat parameter's precision: :math:`\\alpha_g` for the group ``g`` it belongs to.

    Parameters
    ----------
    alpha : sequence of 4 floats, ndarray of shape (4,), or mapping
        The group precisions :math:`(\\alpha_{W1}, \\alpha_{b1}, \\alpha_{W2}, \\alpha_{b2})`
        (from :func:`as_prior_precision` or :func:`decay_per_group`); a single
        number is refused, since it has two readings.
    n_features, n_hidden, n_classes : int
        ``D``, ``M`` and ``K``.

    Returns
    -------
    ndarray of shape (W,), float64
        In :func:`twolayer.network.flatten` order, so that
        :math:`\\sum_g \\tfrac{\\alpha_g}{2} \\lVert w_g \\rVert^2` is
        ``0.5 * precision_vector(...) @ theta**2``.
    """
    values = _four(alpha, "alpha")
    if values.ndim == 0:
        raise ValueError(
            "precision_vector needs four group precisions (W1, b1, W2, b2); read a single number "
            "with as_prior_precision or decay_per_group first"
        )
    return values[group_ids(n_features, n_hidden, n_classes)]
