"""Why training diverged: the setting most likely to blame, so that an error can name it.

A non-finite error has three usual causes, told apart here from numbers that
do not depend on how far the weights had grown when it happened:

- a weight decay so strong that its penalty, its gradient or the squares an
  optimiser takes of them overflow the working dtype, or (for plain SGD) so
  strong, stronger than the data, that each step's decay,
  :math:`\\eta \\lambda w`, overshoots zero by more than the weight itself,
  so that the weights grow in alternating sign;
- inputs so large that the products of the forward and backward passes
  overflow (unscaled features);
- steps too long for the error surface: the learning rate of a minibatch
  solver.

The names are those of the Python API (``alpha``, ``X``,
``learning_rate_init``); the command line translates them into its options.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from twolayer.cluster import RowBlocks
from twolayer.errors import TrainingDiverged
from twolayer.prior import Decay, decay_per_group

__all__ = ["CAUSES", "Diverged", "diverged", "explain", "largest_input", "likely_cause"]

#: The causes :func:`likely_cause` tells apart, by the Python parameter to change.
CAUSES = ("alpha", "X", "learning_rate_init", "solver")


class Diverged(TrainingDiverged):
    """:class:`~twolayer.errors.TrainingDiverged` that names the setting most likely to blame.

    Parameters
    ----------
    message : str
        The sentence, naming the Python parameter.
    cause : str
        One of :data:`CAUSES`: ``"alpha"`` (the weight decay), ``"X"`` (the
        inputs' scale), ``"learning_rate_init"`` or ``"solver"`` (a whole-batch
        solver stepped to non-finite weights for none of the other reasons).
    """

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


def largest_input(X: Any, rows: np.ndarray | None = None) -> float:
    """The largest :math:`|x|` of the (finite) training rows, without a copy of ``X`` where it is dense.

    Parameters
    ----------
    X : ndarray or scipy sparse matrix of shape (N, D)
    rows : ndarray, optional
        The training rows; all when None.

    Returns
    -------
    float
    """
    if isinstance(X, RowBlocks):  # on the cluster: each block's largest, brought back
        return float(max(X.map_each(_largest_in_block)))
    if sp.issparse(X):
        part = X if rows is None else X[rows]
        return float(abs(part).max()) if part.nnz else 0.0
    if X.size == 0:
        return 0.0
    if rows is None:
        return float(max(np.max(X), -np.min(X)))
    return float(max(np.max(X[rows]), -np.min(X[rows])))


def _largest_in_block(X: np.ndarray, *_: Any) -> float:
    return float(np.max(np.abs(X))) if X.size else 0.0


def likely_cause(decay: Decay, dtype: Any, max_input: float, sgd_learning_rate: float | None, minibatch: bool) -> str:
    """The parameter most likely to blame for a non-finite error, one of :data:`CAUSES`.

    Parameters
    ----------
    decay : float, 4 floats or mapping
        The decay per step, :math:`\\lambda_g = \\alpha_g / S` (``TrainingData.lam``).
    dtype : numpy dtype
        The working dtype.
    max_input : float
        The largest :math:`|x|` of the training rows (:func:`largest_input`).
    sgd_learning_rate : float or None
        The learning rate of plain SGD, whose steps take :math:`\\eta \\lambda w`
        of decay unnormalised; None for the other solvers.
    minibatch : bool
        Whether the solver is a minibatch one (whose learning rate is then the
        remaining suspect).

    Returns
    -------
    str
    """
    lam = max(decay_per_group(decay))
    # The fourth root of the largest number: a penalty of lam times a few weights,
    # its gradient and their squares (Adam's second moment, the dot products of
    # L-BFGS) all stay finite below it, and at least one overflows well above.
    limit = float(np.finfo(dtype).max) ** 0.25
    if lam >= limit:
        return "alpha"
    # An SGD step multiplies a weight by 1 - eta lam before the data's pull: beyond 2 the weights
    # grow in alternating sign. Either setting can be the odd one; a decay above one per unit of
    # pattern weight outweighs the data (whose gradient per pattern is of order one).
    if sgd_learning_rate is not None and sgd_learning_rate * lam > 2.0 and lam > 1.0:
        return "alpha"
    if not math.isfinite(max_input) or max_input >= limit:
        return "X"
    return "learning_rate_init" if minibatch else "solver"


def explain(cause: str, decay: Decay, dtype: Any, max_input: float, learning_rate: float | None) -> str:
    """The clause that says why, for the Python API: what the cause is and what to change.

    Parameters
    ----------
    cause : str
        One of :data:`CAUSES`, from :func:`likely_cause`.
    decay, dtype, max_input
        As for :func:`likely_cause`.
    learning_rate : float or None
        ``learning_rate_init``, named when it is the cause.

    Returns
    -------
    str
    """
    name = np.dtype(dtype).name
    lam = max(decay_per_group(decay))
    if cause == "alpha":
        return (
            f"the weight decay is too strong (alpha per unit of pattern weight is {lam:.3g}): its penalty "
            f"or its steps overflow {name}; lower alpha"
        )
    if cause == "X":
        return f"the inputs reach {max_input:.3g}, so large that the network's products overflow {name}; scale them"
    if cause == "learning_rate_init":
        return (
            f"the steps of learning_rate_init={learning_rate:g} overshoot; lower learning_rate_init or scale the inputs"
            if learning_rate is not None
            else "the steps overshoot; lower learning_rate_init or scale the inputs"
        )
    return "the solver stepped to non-finite weights; scale the inputs or try another solver"


def diverged(
    prefix: str,
    decay: Decay,
    dtype: Any,
    X: Any,
    rows: np.ndarray | None,
    *,
    sgd_learning_rate: float | None = None,
    learning_rate: float | None = None,
    minibatch: bool = False,
    suffix: str = "",
) -> Diverged:
    """The :class:`Diverged` error for a trainer: ``prefix``, the likely cause and what to change, ``suffix``.

    Parameters
    ----------
    prefix : str
        Where it happened ("training diverged in epoch 3: ...").
    decay : float, 4 floats or mapping
        ``TrainingData.lam``.
    dtype : numpy dtype
        The working dtype.
    X, rows
        The training data, as for :func:`largest_input`.
    sgd_learning_rate, minibatch
        As for :func:`likely_cause`.
    learning_rate : float, optional
        ``learning_rate_init``, named when it is the cause.
    suffix : str
        What was kept.

    Returns
    -------
    Diverged
    """
    max_input = largest_input(X, rows)
    cause = likely_cause(decay, dtype, max_input, sgd_learning_rate, minibatch)
    clause = explain(cause, decay, dtype, max_input, learning_rate)
    return Diverged(f"{prefix}: {clause}.{suffix}", cause)
