"""What fitting a :class:`~twolayer.classifier.TwoLayerClassifier` allocates, estimated before it starts.

The estimate follows the trainers of :mod:`twolayer.training` array by array,
with :math:`P = M(D + 1) + K(M + 1)` parameters of ``s`` bytes each (4 for
float32, 8 for float64):

- **minibatch** (``sgd``, ``adam``): the weights, the gradient and the
  optimiser state (SGD's velocity, Adam's two moments, each with a scratch
  vector), and the copies of the weights and the optimiser state that an
  epoch keeps to restore after divergence: :math:`6P` for SGD, :math:`8P` for
  Adam, one more with early stopping (the best weights); per row of the batch
  :math:`B`, the gathered inputs and the working arrays of the forward and
  backward passes, :math:`(D + 2M + K + 4)s` bytes and two indices; the epoch's
  order of the rows, and with early stopping the held-out rows and their
  outputs.
- **L-BFGS**: four vectors in the working dtype (weights, gradient, partial
  gradient, scratch) and about 39 in float64: SciPy's L-BFGS-B keeps ten
  pairs of steps and gradients and five more vectors (:math:`25P`), its
  bounds, indices and copies of the point, and ours; the working arrays of
  :data:`twolayer.network.CHUNK_ROWS` patterns at a time.
- **trust-ncg**, **newton-cg**, **scg**: the solver's vectors (about 22 for
  the Newton methods, 12 for ``scg``, measured) and the Hessian-vector
  product's forward and R-pass arrays over every pattern at once, about
  :math:`8M + 8K` numbers per pattern (and the dense copy of sparse input).

``tests/test_resources.py`` compares these estimates with what ``tracemalloc``
records of a real fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twolayer import network
from twolayer.training.solvers import MINIBATCH_SOLVERS

__all__ = ["LBFGS_FLOAT64_VECTORS", "FitEstimate", "fit_estimate"]

#: float64 vectors of length P held during an L-BFGS fit (SciPy's memory of 10 steps and ours).
LBFGS_FLOAT64_VECTORS = 39

# Working-dtype vectors of length P that each second-order solver holds, and numbers per pattern.
_SECOND_ORDER_VECTORS = {"trust-ncg": 22, "newton-cg": 22, "scg": 12}
_MINIBATCH_VECTORS = {"sgd": 6, "adam": 8}
_OPTIMIZER_NAMES = {"sgd": "SGD", "adam": "Adam"}

#: ``(bytes, parts, parameters to lower, parameters to switch)``.
FitEstimate = tuple[float, str, tuple[str, ...], dict[str, str]]


def fit_estimate(
    *,
    n_samples: int,
    n_features: int,
    n_hidden: int,
    n_classes: int,
    dtype: Any,
    solver: str,
    batch_size: int | str = "auto",
    early_stopping: bool = False,
    validation_fraction: float = 0.1,
    sparse: bool = False,
) -> FitEstimate:
    """The bytes a fit allocates at its peak, and what they are for.

    The input ``X`` itself is not counted: it exists before the fit starts.

    Parameters
    ----------
    n_samples, n_features, n_hidden, n_classes : int
        :math:`N`, :math:`D`, :math:`M`, :math:`K`.
    dtype : numpy dtype
        The working dtype (float32 or float64).
    solver : str
        A name of :data:`twolayer.training.solvers.SOLVERS`.
    batch_size : int or "auto", default "auto"
    early_stopping : bool, default False
    validation_fraction : float, default 0.1
    sparse : bool, default False
        Whether ``X`` is a sparse matrix (the second-order solvers densify it).

    Returns
    -------
    nbytes : float
    parts : str
        What they are made of, for a message.
    lower : tuple of str
        The estimator's parameters whose smaller values need less.
    switch : dict
        A parameter and a value that needs less (``{"solver": "lbfgs"}``), or empty.
    """
    N, D, M, K = int(n_samples), int(n_features), int(n_hidden), int(n_classes)
    s = np.dtype(dtype).itemsize
    P = network.n_params(D, M, K)
    if solver in MINIBATCH_SOLVERS:
        n_val = int(np.ceil(N * validation_fraction)) if early_stopping else 0
        n_train = max(1, N - n_val)
        B = min(200, n_train) if batch_size == "auto" else min(int(batch_size), n_train)
        vectors = _MINIBATCH_VECTORS.get(solver, 8) + (1 if early_stopping else 0)
        batch = B * ((D + 2 * M + K + 4) * s + 16)
        held_out = n_val * (D + 2 * M + 2 * K) * s
        nbytes = float(vectors * P * s + batch + 16 * N + held_out)
        parts = f"weights, gradient, {_OPTIMIZER_NAMES.get(solver, solver)} state, a batch of {B} working arrays"
        return nbytes, parts, ("n_hidden", "batch_size"), {}
    chunk = min(N, network.CHUNK_ROWS)
    working = 4 * P * s + chunk * ((2 * M + K + 4) * s + 16)
    if solver == "lbfgs":
        nbytes = float(working + LBFGS_FLOAT64_VECTORS * P * 8)
        return nbytes, f"weights, L-BFGS memory of 10 steps, working arrays of {chunk} patterns", ("n_hidden",), {}
    vectors = _SECOND_ORDER_VECTORS.get(solver, 22)
    per_pattern = (8 * M + 8 * K + (D if sparse else 0)) * s
    nbytes = float(working + vectors * P * s + N * per_pattern)
    parts = f"weights, {solver} vectors, Hessian-vector products over all {N} patterns"
    return nbytes, parts, ("n_hidden",), {"solver": "lbfgs"}
