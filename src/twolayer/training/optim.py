"""Optimisers and training loops for the two-layer network.

The estimator (:mod:`twolayer.classifier`) validates data and hyperparameters;
this module trains. It minimises the regularised error of PRML eq. 5.112,

.. math::

    \\tilde E(w) = \\sum_n s_n E_n(w) + \\frac{\\alpha}{2} \\lVert w \\rVert^2,

where :math:`E_n` is the cross-entropy of pattern :math:`n` (PRML eq. 5.24),
:math:`s_n` its weight and the decay acts on the weights ``W1`` and ``W2`` but
not on the biases. Every solver follows the same function. Write
:math:`S = \\sum_n s_n` (``S = N`` without weights) and :math:`\\bar w_n = s_n N / S`
for the weights rescaled to mean one; then

- L-BFGS minimises :math:`\\tilde E / S`, with gradient
  :math:`\\tfrac{1}{N} \\sum_n \\bar w_n \\nabla E_n + \\lambda w`, where
  :math:`\\lambda = \\alpha / S`;
- a minibatch solver steps along
  :math:`g = \\tfrac{1}{B} \\sum_{n \\in \\text{batch}} \\bar w_n \\nabla E_n + \\lambda w`
  for a batch of ``B`` patterns, whose average over an epoch of equal batches
  is :math:`\\nabla \\tilde E / S`, the L-BFGS direction.

Weights thus count patterns: an integer weight is the same as repeating the
pattern, and ``alpha`` always means "per ``S`` patterns", whatever the batch size.

Two implementations of one gradient live here. :func:`twolayer.network.error_and_gradient`
is the readable reference; :func:`_batch_error_and_gradient` computes the same
five matrix products into buffers that a :class:`_Workspace` allocates once per
fit, so that an epoch allocates nothing of size ``B x M`` or ``D x M`` and does
no Python work per pattern. The tests assert that the two agree to rounding.

The optimisers update one flat parameter vector in place; :func:`twolayer.network.unflatten`
gives ``W1, b1, W2, b2`` as views of it, so the products read the weights
without copies. Every scalar in an update is a Python ``float`` (or, for the
compiled kernels, a scalar of the working dtype) so that float32 vectors stay
float32 (NumPy promotes float32 arrays with NumPy float64 scalars).

When numba is installed (the optional ``fast`` extra), the elementwise work
between the products runs as compiled loops: each optimiser step, with the
weight decay folded in, is one pass over the vector instead of about fourteen
ufunc passes, and the softmax, output delta, tanh delta and bias gradients of a
batch are two passes instead of about twenty ufunc calls. The optimiser loops
perform NumPy's operations in NumPy's order and give the same bits; the
gradient loops sum in a different order and agree to rounding. Without numba,
or with :data:`FUSED` set to False, the NumPy code runs.

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), §5.2.4
(gradient descent, minibatches), §5.3 (backpropagation), §5.5.1 (weight decay).
D. P. Kingma and J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.
Y. Nesterov, "A method for solving the convex programming problem with
convergence rate O(1/k^2)", 1983; I. Sutskever et al., "On the importance of
initialization and momentum in deep learning", ICML 2013.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from twolayer import network
from twolayer.errors import NonFiniteInput, TrainingDiverged
from twolayer.network import Params

# Whether the fast paths use the compiled kernels when numba (optional, the "fast" extra) is
# installed; NumPy computes the same numbers without it. The tests switch it to compare both.
FUSED = True

__all__ = [
    "SGD",
    "Adam",
    "LbfgsSettings",
    "MinibatchSettings",
    "NonFiniteInput",
    "TrainingData",
    "TrainingDiverged",
    "TrainingState",
    "check_finite",
    "checks_rows_as_it_gathers",
    "make_optimizer",
    "objective",
    "train_lbfgs",
    "train_minibatch",
    "train_second_order",
]

LEARNING_RATE_SCHEDULES = ("constant", "invscaling", "adaptive")

# N M (D + K) below which a full-batch run keeps BLAS to one thread (see train_lbfgs)
SMALL_PROBLEM = 1 << 22

# Full-batch solvers of twolayer.training.second_order that use exact Hessian-vector products.
SECOND_ORDER_METHODS = ("newton-cg", "trust-ncg", "scg")

# on_epoch(state) -> True to stop: the estimator's hook, called after each epoch.
EpochHook = Callable[["TrainingState"], bool]


def _non_finite_input(X: np.ndarray, row: int) -> NonFiniteInput:
    """The error for row ``row`` of ``X``, which has a non-finite entry: where, and which kind."""
    column = int(np.flatnonzero(~np.isfinite(X[row]))[0])
    kind = "NaN" if np.isnan(X[row, column]) else "infinity"
    return NonFiniteInput(f"Input X contains {kind} at row {row}, column {column}: every feature must be finite")


# Rows per piece of check_finite: pieces of a few MiB, never a copy of all the rows checked.
CHECK_ROWS = 4096


def check_finite(X: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Raise :class:`NonFiniteInput`, naming the first bad entry, unless ``X`` (or its ``rows``) is finite.

    Piece by piece, in the order given: a piece whose sum is finite has no
    NaN or infinity (one pass); only a piece whose sum is not (an entry is
    not finite, or the sum overflowed) is looked at entry by entry.
    """
    n = X.shape[0] if rows is None else rows.shape[0]
    for start in range(0, n, CHECK_ROWS):
        stop = min(start + CHECK_ROWS, n)
        part = X[start:stop] if rows is None else X[rows[start:stop]]
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.sum(part)):
                continue
        bad = np.flatnonzero(~np.isfinite(part).all(axis=1))
        if bad.size:
            raise _non_finite_input(X, int(start + bad[0] if rows is None else rows[start + bad[0]]))


def checks_rows_as_it_gathers() -> bool:
    """Whether a shuffled minibatch epoch checks unchecked rows in its compiled gather (numba installed).

    Where it does not, :class:`TrainingData` ``checked=False`` costs a pass of
    :func:`check_finite` before the epoch, no less than checking up front.
    """
    kernels = _kernels()
    return kernels is not None and kernels.gather is not None


# --------------------------------------------------------------------------
# The regularised objective, from the reference network functions
# --------------------------------------------------------------------------


def objective(
    params: Params,
    X: np.ndarray,
    T: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    alpha: float = 0.0,
    activation: str = "tanh",
) -> float:
    """The regularised error per unit of pattern weight, :math:`\\tilde E / S`.

    This is what ``loss_`` reports and what every solver minimises:

    .. math::

        \\frac{1}{S} \\Bigl( \\sum_n s_n E_n(w) + \\frac{\\alpha}{2}
        (\\lVert W_1 \\rVert^2 + \\lVert W_2 \\rVert^2) \\Bigr),
        \\qquad S = \\sum_n s_n,

    which equals scikit-learn's ``MLPClassifier`` L-BFGS loss for the same
    weights, data and sample weights.

    Parameters
    ----------
    params : Params
    X : ndarray of shape (N, D)
    T : ndarray of shape (N, K)
        1-of-K targets.
    sample_weight : ndarray of shape (N,), optional
        :math:`s_n`; ones when omitted.
    alpha : float, default 0
        The weight-decay coefficient :math:`\\alpha`.
    activation : str, default "tanh"

    Returns
    -------
    float

    References
    ----------
    PRML eq. 5.24 (the error) and eq. 5.112 (weight decay).
    """
    E = network.error(params, X, T, sample_weight, activation=activation)
    S = float(X.shape[0]) if sample_weight is None else float(np.sum(sample_weight))
    W1 = np.asarray(params.W1, dtype=np.float64)
    W2 = np.asarray(params.W2, dtype=np.float64)
    penalty = 0.5 * alpha * (float(np.vdot(W1, W1)) + float(np.vdot(W2, W2)))  # eq. 5.112
    return (E + penalty) / S


# --------------------------------------------------------------------------
# The fast minibatch gradient
# --------------------------------------------------------------------------


class _Workspace:
    """Buffers for one batch of at most ``rows`` patterns, reused every batch.

    ``A1`` holds :math:`a^{(1)}`, then :math:`z`, then :math:`h'(a^{(1)})`;
    ``A2`` holds :math:`a^{(2)}`, then :math:`y`, then :math:`\\delta^{(2)}`;
    ``D1`` holds :math:`\\delta^{(1)}`; ``X`` receives gathered dense rows.
    """

    def __init__(self, rows: int, n_features: int, n_hidden: int, n_classes: int, dtype: Any, gather: bool) -> None:
        self.rows = rows
        self.X = np.empty((rows, n_features), dtype=dtype) if gather else None
        self.A1 = np.empty((rows, n_hidden), dtype=dtype)
        self.A2 = np.empty((rows, n_classes), dtype=dtype)
        self.D1 = np.empty((rows, n_hidden), dtype=dtype)
        self.row_max = np.empty(rows, dtype=dtype)
        self.row_sum = np.empty(rows, dtype=dtype)
        self.coef = np.empty(rows, dtype=dtype)
        self.y = np.empty(rows, dtype=np.intp)
        self.w = np.empty(rows, dtype=dtype)
        self.arange = np.arange(rows)


def _activate(activation: str, A: np.ndarray) -> None:
    """Overwrite ``A`` = :math:`a` with :math:`z = h(a)`, as ``network.ACTIVATIONS`` computes it."""
    if activation == "tanh":
        np.tanh(A, out=A)
    elif activation == "logistic":
        # sigma(a) = (1 + tanh(a/2)) / 2, the network's overflow-free form
        A *= 0.5
        np.tanh(A, out=A)
        A += 1.0
        A *= 0.5
    elif activation == "relu":
        np.maximum(A, 0.0, out=A)
    elif activation != "identity":
        network.get_activation(activation)  # raises, naming the choices


def _hidden_delta(activation: str, Z: np.ndarray, D1: np.ndarray) -> None:
    """``D1 *= h'(a)`` from the hidden outputs ``Z``, which this overwrites."""
    if activation == "tanh":
        np.multiply(Z, Z, out=Z)
        np.subtract(1.0, Z, out=Z)  # tanh' = 1 - z^2
        D1 *= Z
    elif activation == "logistic":
        D1 *= Z
        np.subtract(1.0, Z, out=Z)  # sigma' = z (1 - z)
        D1 *= Z
    elif activation == "relu":
        np.sign(Z, out=Z)  # z >= 0, so sign(z) is the step function h'
        D1 *= Z


def _output_delta_loop(
    A2: np.ndarray, b2: np.ndarray, y: np.ndarray, w: np.ndarray | None, scale: Any, grad_b2: np.ndarray
) -> float:
    # The NumPy chain of _batch_error_and_gradient for softmax outputs, row by row: A2 = z W2
    # becomes scale w_n (y_k - t_k); returns sum_n w_n E_n; grad_b2 gets its column sums.
    # Sums run in float64 (NumPy's run pairwise in the working dtype): equal to rounding.
    B, K = A2.shape
    E = 0.0
    for k in range(K):
        grad_b2[k] = 0.0
    for n in range(B):
        row = A2[n]
        top = row[0] + b2[0]
        for k in range(K):
            a = row[k] + b2[k]  # a_k (eq. 5.9)
            row[k] = a
            top = max(top, a)
        t = y[n]
        picked = row[t] - top  # a_t - max
        total = 0.0
        for k in range(K):
            e = np.exp(row[k] - top)  # shifted: exp cannot overflow
            row[k] = e
            total += e
        E_n = np.log(total) - picked  # -ln y_t  (eq. 5.24)
        coef = scale
        if w is not None:
            E_n = w[n] * E_n
            coef = w[n] * scale
        E += E_n
        for k in range(K):
            row[k] = row[k] / total  # y_k (eq. 4.104)
        row[t] -= 1.0  # delta_k = y_k - t_k
        for k in range(K):
            d = row[k] * coef
            row[k] = d
            grad_b2[k] += d
    return E


def _tanh_delta_loop(Z: np.ndarray, D1: np.ndarray, grad_b1: np.ndarray, one: Any) -> None:
    # D1 *= 1 - z^2 as _hidden_delta's three passes round it, in one; grad_b1 gets D1's column sums
    B, M = D1.shape
    for j in range(M):
        grad_b1[j] = 0.0
    for n in range(B):
        for j in range(M):
            z = Z[n, j]
            d = D1[n, j] * (one - z * z)  # delta_j = (1 - z_j^2) sum_k w_kj delta_k
            D1[n, j] = d
            grad_b1[j] += d


def _batch_error_and_gradient(
    params: Params,
    X: np.ndarray | sp.csr_matrix,
    y: np.ndarray,
    w: np.ndarray | None,
    scale: float,
    activation: str,
    ws: _Workspace,
    grad: Params,
) -> float:
    """The error of a batch and, into ``grad``, ``scale`` times its gradient.

    The same five products as :func:`twolayer.network.error_and_gradient`
    (with ``T`` the 1-of-K code of the class indices ``y`` and sample weights
    ``w``), written into the workspace and into ``grad`` (arrays that are
    overwritten, typically views of one flat vector).

    Returns
    -------
    float
        :math:`\\sum_n w_n E_n` over the batch, unscaled.
    """
    W1, b1, W2, b2 = params
    b = X.shape[0]
    A1, A2, D1 = ws.A1[:b], ws.A2[:b], ws.D1[:b]
    dense = isinstance(X, np.ndarray)

    # forward (eq. 5.9)
    if dense:
        np.matmul(X, W1, out=A1)  # (B, M)  a_j = sum_i w_ji x_i
    else:
        A1[...] = X @ W1
    A1 += b1
    _activate(activation, A1)  # A1 = z
    np.matmul(A1, W2, out=A2)  # (B, K)  a_k = sum_j w_kj z_j
    kernels = _kernels()
    if kernels is not None:
        # The same steps in two compiled passes: the ufunc chain below costs ~20 calls per batch.
        x = A2.dtype.type
        E = kernels.output_delta(A2, b2, y, w, x(scale), grad.b2)
        np.matmul(A1.T, A2, out=grad.W2)  # (M, K)  dE/dw_kj = delta_k z_j
        np.matmul(A2, W2.T, out=D1)  # (B, M)  sum_k w_kj delta_k
        if activation == "tanh":
            kernels.tanh_delta(A1, D1, grad.b1, x(1.0))
        else:
            _hidden_delta(activation, A1, D1)
            np.sum(D1, axis=0, out=grad.b1)
        if dense:
            np.matmul(X.T, D1, out=grad.W1)  # (D, M)  dE/dw_ji = delta_j x_i
        else:
            grad.W1[...] = X.T @ D1
        return float(E)
    A2 += b2

    # softmax, error and output delta, fused: A2 becomes delta_k = y_k - t_k
    row_max, row_sum, rows = ws.row_max[:b], ws.row_sum[:b], ws.arange[:b]
    np.max(A2, axis=1, out=row_max)
    A2 -= row_max[:, None]  # shifted logits: exp cannot overflow
    picked = A2[rows, y]  # a_t - max, the shifted logit of each target class
    np.exp(A2, out=A2)
    np.sum(A2, axis=1, out=row_sum)
    E_n = np.log(row_sum)
    E_n -= picked  # E_n = logsumexp(a) - a_t = -ln y_t  (eq. 5.24)
    A2 /= row_sum[:, None]  # y_k (eq. 4.104)
    A2[rows, y] -= 1.0  # delta_k = y_k - t_k
    if w is None:
        E = float(np.sum(E_n))
        A2 *= scale
    else:
        E = float(np.dot(w, E_n))
        coef = ws.coef[:b]
        np.multiply(w, scale, out=coef)
        A2 *= coef[:, None]  # the weighted error's dE/da_k

    # backward (eqs. 5.53-5.56)
    np.matmul(A1.T, A2, out=grad.W2)  # (M, K)  dE/dw_kj = delta_k z_j
    np.sum(A2, axis=0, out=grad.b2)
    np.matmul(A2, W2.T, out=D1)  # (B, M)  sum_k w_kj delta_k
    _hidden_delta(activation, A1, D1)  # delta_j = h'(a_j) sum_k w_kj delta_k
    if dense:
        np.matmul(X.T, D1, out=grad.W1)  # (D, M)  dE/dw_ji = delta_j x_i
    else:
        grad.W1[...] = X.T @ D1
    np.sum(D1, axis=0, out=grad.b1)
    return E


# Consecutive blocks of the flat vector and whether eq. 5.112's decay acts on each.
Segments = tuple[tuple[slice, bool], ...]


class _Layout:
    """Flat views of the two weight blocks (the decayed parameters) of a vector."""

    def __init__(self, n_features: int, n_hidden: int, n_classes: int) -> None:
        D, M, K = n_features, n_hidden, n_classes
        self.dims = (D, M, K)
        self.W1 = slice(0, D * M)
        self.W2 = slice(D * M + M, D * M + M + M * K)
        # W1 | b1 | W2 | b2, each with whether eq. 5.112's decay acts on it
        self.segments: Segments = (
            (self.W1, True),
            (slice(D * M, D * M + M), False),
            (self.W2, True),
            (slice(D * M + M + M * K, network.n_params(D, M, K)), False),
        )

    def sq_norm(self, theta: np.ndarray) -> float:
        """:math:`\\lVert W_1 \\rVert^2 + \\lVert W_2 \\rVert^2`, accumulated in the working dtype."""
        w1, w2 = theta[self.W1], theta[self.W2]
        return float(np.dot(w1, w1)) + float(np.dot(w2, w2))

    def add_decay(self, theta: np.ndarray, grad: np.ndarray, lam: float, tmp: np.ndarray) -> None:
        """``grad += lam * w`` on the weights, not the biases (the gradient of eq. 5.112's decay).

        ``tmp`` is scratch of ``theta``'s size.
        """
        if lam != 0.0:
            for block in (self.W1, self.W2):
                scaled = np.multiply(theta[block], lam, out=tmp[block])
                grad[block] += scaled


# --------------------------------------------------------------------------
# Update kernels: one pass over a block of the flat vector
# --------------------------------------------------------------------------
#
# An optimiser step reads the gradient, the weights and the optimiser's
# moments and writes them back. As a chain of NumPy ufuncs that is about a
# dozen passes over vectors of W entries (for the workload of issue 5, the
# Adam step and the decay took as long as a third of the five matrix
# products of a batch); compiled with numba it is one pass, and one call per
# step over all four blocks (a call per block cost 4 ms an epoch). Both versions
# perform the same IEEE operations in the same order, each rounded to the
# working dtype (no fused multiply-add, no reassociation: numba's default
# without fastmath), so they give the same bits; the tests assert it. The
# scalars reach the kernels in the working dtype, as NumPy casts Python
# floats against float32 arrays (NEP 50), so float32 stays float32 in both.


def _adam_numpy(
    theta: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    tmp: np.ndarray,
    lam: float,
    b1: float,
    c1: float,
    b2: float,
    c2: float,
    eps: float,
    step: float,
) -> None:
    """One Adam step over a block, as ufuncs; ``g`` and ``tmp`` are overwritten."""
    if lam != 0.0:
        np.multiply(theta, lam, out=tmp)
        g += tmp  # g + lam w  (eq. 5.112)
    np.multiply(g, c1, out=tmp)
    m *= b1
    m += tmp  # m = b1 m + (1 - b1) g
    np.multiply(g, g, out=tmp)
    tmp *= c2
    v *= b2
    v += tmp  # v = b2 v + (1 - b2) g^2
    np.sqrt(v, out=tmp)
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= step
    theta -= tmp  # w -= eta_t m / (sqrt(v) + eps)


def _sgd_numpy(
    theta: np.ndarray,
    g: np.ndarray,
    vel: np.ndarray,
    tmp: np.ndarray,
    lam: float,
    mu: float,
    eta: float,
    nesterov: bool,
) -> None:
    """One SGD step over a block, as ufuncs; ``g`` and ``tmp`` are overwritten."""
    if lam != 0.0:
        np.multiply(theta, lam, out=tmp)
        g += tmp  # g + lam w  (eq. 5.112)
    vel *= mu
    np.multiply(g, eta, out=tmp)
    vel -= tmp  # v = mu v - eta g
    if nesterov:
        theta -= tmp
        np.multiply(vel, mu, out=tmp)
        theta += tmp  # w += mu v - eta g  (in this order)
    else:
        theta += vel  # w += v


def _adam_loop(
    theta: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    bounds: np.ndarray,
    lams: np.ndarray,
    b1: Any,
    c1: Any,
    b2: Any,
    c2: Any,
    eps: Any,
    step: Any,
) -> None:
    # _adam_numpy's operations, element by element, on each block bounds[s] with its decay lams[s]:
    # one call per step. Slices, so that every inner loop counts from 0 and vectorises.
    for s in range(bounds.shape[0]):
        lo, hi, lam = bounds[s, 0], bounds[s, 1], lams[s]
        w, gs, ms, vs = theta[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
        if lam != 0.0:
            for i in range(w.shape[0]):
                gi = gs[i] + w[i] * lam
                mi = ms[i] * b1 + gi * c1
                vi = vs[i] * b2 + (gi * gi) * c2
                ms[i] = mi
                vs[i] = vi
                w[i] = w[i] - (mi / (np.sqrt(vi) + eps)) * step
        else:
            for i in range(w.shape[0]):
                gi = gs[i]
                mi = ms[i] * b1 + gi * c1
                vi = vs[i] * b2 + (gi * gi) * c2
                ms[i] = mi
                vs[i] = vi
                w[i] = w[i] - (mi / (np.sqrt(vi) + eps)) * step


def _sgd_loop(
    theta: np.ndarray,
    g: np.ndarray,
    vel: np.ndarray,
    bounds: np.ndarray,
    lams: np.ndarray,
    mu: Any,
    eta: Any,
    nesterov: bool,
) -> None:
    # _sgd_numpy's operations, element by element, block by block as _adam_loop
    for s in range(bounds.shape[0]):
        lo, hi, lam = bounds[s, 0], bounds[s, 1], lams[s]
        w, gs, vs = theta[lo:hi], g[lo:hi], vel[lo:hi]
        for i in range(w.shape[0]):
            gi = gs[i] + w[i] * lam if lam != 0.0 else gs[i]
            vi = vs[i] * mu - gi * eta
            vs[i] = vi
            if nesterov:
                w[i] = (w[i] - gi * eta) + vi * mu
            else:
                w[i] = w[i] + vi


def _kernel_blocks(segments: Segments, lam: float, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """The segments as the compiled kernels take them: (start, stop) rows and each block's decay."""
    bounds = np.array([(block.start, block.stop) for block, _ in segments], dtype=np.intp).reshape(-1, 2)
    lams = np.array([lam if decayed else 0.0 for _, decayed in segments], dtype=dtype)
    return bounds, lams


def _whole(theta: np.ndarray) -> Segments:
    return ((slice(0, theta.shape[0]), False),)


# Entries per chunk of the NumPy updates: the dozen passes of a chunk then run in cache
# (13-20% faster than whole-vector passes for W = 203,530, float32 and float64, measured).
UFUNC_CHUNK = 1 << 15


@functools.cache
def _compiled() -> SimpleNamespace | None:
    """The numba kernels (compiled on first call, cached on disk), or None without numba.

    Imported here, not with the module: numba adds half a second to an import.
    error_model="numpy" drops the zero-division checks that would stop vectorisation;
    no fastmath, so every operation is IEEE-rounded as NumPy's ufuncs round it.
    """
    try:
        import numba
    except ImportError:  # pragma: no cover - exercised where numba is not installed
        return None
    try:  # numba's extension API (intrinsics, llvmlite): should it move, only the gather falls back to np.take
        from twolayer.training import _gather

        gather = _gather.gather
    except ImportError:  # pragma: no cover
        gather = None
    jit = numba.njit(nogil=True, cache=True, error_model="numpy")
    return SimpleNamespace(
        adam=jit(_adam_loop),
        sgd=jit(_sgd_loop),
        output_delta=jit(_output_delta_loop),
        tanh_delta=jit(_tanh_delta_loop),
        gather=gather,
    )


def _kernels() -> SimpleNamespace | None:
    """The compiled kernels when :data:`FUSED` and numba is installed, else None."""
    return _compiled() if FUSED else None


def _chunks(segments: Segments) -> Iterator[tuple[slice, bool]]:
    """The segments cut into blocks of at most :data:`UFUNC_CHUNK` entries."""
    for block, decayed in segments:
        for start in range(block.start, block.stop, UFUNC_CHUNK):
            yield slice(start, min(start + UFUNC_CHUNK, block.stop)), decayed


# --------------------------------------------------------------------------
# Optimisers: in-place updates of one flat vector
# --------------------------------------------------------------------------


class _OptimizerBase:
    """What SGD and Adam share: whether they are fresh, and the kernel form of their last segments."""

    _cached: tuple[Segments, float, np.ndarray, np.ndarray] | None = None
    fresh = False  # set by each optimiser's __init__; the default serves optimisers pickled before it existed

    def _blocks(self, segments: Segments, lam: float, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
        cached = self._cached
        if cached is None or cached[0] is not segments or cached[1] != lam or cached[3].dtype != dtype:
            cached = self._cached = (segments, lam, *_kernel_blocks(segments, lam, dtype))
        return cached[2], cached[3]


class SGD(_OptimizerBase):
    """Stochastic gradient descent with classical or Nesterov momentum.

    With velocity :math:`v` (zero at the start), learning rate :math:`\\eta`
    and momentum :math:`\\mu`, a step along the gradient :math:`g` is

    .. math::

        v \\leftarrow \\mu v - \\eta g, \\qquad
        w \\leftarrow w + v \\ \\ \\text{(classical)}, \\qquad
        w \\leftarrow w + \\mu v - \\eta g \\ \\ \\text{(Nesterov)},

    the forms of scikit-learn's ``SGDOptimizer`` (Nesterov's look-ahead
    rewritten in the current weights, after Sutskever et al. 2013).

    The learning rate follows ``schedule``: ``"constant"``; ``"invscaling"``,
    :math:`\\eta = \\eta_0 / (t + 1)^{p}` after each epoch, ``t`` counting
    patterns seen; ``"adaptive"``, divided by 5 whenever the loss stops
    improving (see :meth:`plateau`).

    Parameters
    ----------
    n_params : int
    dtype : numpy dtype
    learning_rate_init : float
    momentum : float
    nesterov : bool
    schedule : {"constant", "invscaling", "adaptive"}
    power_t : float

    References
    ----------
    PRML §5.2.4; Sutskever, Martens, Dahl and Hinton, ICML 2013.
    """

    name = "sgd"

    def __init__(
        self,
        n_params: int,
        dtype: Any,
        *,
        learning_rate_init: float,
        momentum: float,
        nesterov: bool,
        schedule: str,
        power_t: float,
    ) -> None:
        if schedule not in LEARNING_RATE_SCHEDULES:
            raise ValueError(f"learning_rate must be one of {LEARNING_RATE_SCHEDULES}, got {schedule!r}")
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.schedule = schedule
        self.power_t = float(power_t)
        self.velocity = np.zeros(n_params, dtype=dtype)
        self._tmp = np.empty(n_params, dtype=dtype)
        self.fresh = True  # as constructed: no step taken, no state loaded

    def step(self, theta: np.ndarray, grad: np.ndarray, lam: float = 0.0, segments: Segments | None = None) -> None:
        """Update ``theta`` in place along ``grad`` plus the decay ``lam`` times the weights.

        The step follows :math:`g + \\lambda w` on the ``segments`` marked as
        decayed (eq. 5.112) and :math:`g` elsewhere; without ``segments`` no
        block is decayed. ``grad`` is scratch: its contents afterwards are unspecified.
        """
        x = theta.dtype.type  # scalars in the working dtype, as NumPy casts Python floats
        mu, eta, v, tmp = self.momentum, self.learning_rate, self.velocity, self._tmp
        self.fresh = False
        segments = segments or _whole(theta)
        kernels = _kernels()
        if kernels is not None:
            bounds, lams = self._blocks(segments, lam, theta.dtype)
            kernels.sgd(theta, grad, v, bounds, lams, x(mu), x(eta), self.nesterov)
            return
        for block, decayed in _chunks(segments):
            _sgd_numpy(theta[block], grad[block], v[block], tmp[block], lam if decayed else 0.0, mu, eta, self.nesterov)

    def epoch_end(self, t: int) -> None:
        """Update the learning rate after an epoch; ``t`` counts patterns seen."""
        if self.schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (t + 1) ** self.power_t

    def plateau(self) -> bool:
        """React to ``n_iter_no_change`` epochs without improvement; True means stop.

        The adaptive schedule divides the learning rate by 5 and goes on, until
        it falls to 1e-6; the other schedules stop at once.
        """
        if self.schedule != "adaptive" or self.learning_rate <= 1e-6:
            return True
        self.learning_rate /= 5.0
        return False

    def state(self, into: dict[str, Any] | None = None) -> dict[str, Any]:
        """Copies of the learning rate and velocity (into the arrays of ``into``, an earlier state, if given)."""
        return {"learning_rate": self.learning_rate, "velocity": _copy(self.velocity, into, "velocity")}

    def load_state(self, state: dict[str, Any]) -> None:
        self.learning_rate = float(state["learning_rate"])
        np.copyto(self.velocity, state["velocity"], casting="same_kind")
        self.fresh = False

    def reset(self) -> None:
        """Back to the state of a new optimiser: zero velocity, the initial learning rate."""
        self.learning_rate = self.learning_rate_init
        self.velocity.fill(0)
        self.fresh = True


class Adam(_OptimizerBase):
    """Adam: steps scaled by running estimates of the gradient's moments.

    With :math:`m, v` zero at the start, the ``t``-th step along :math:`g` is

    .. math::

        m \\leftarrow \\beta_1 m + (1 - \\beta_1) g, \\qquad
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) g^2, \\qquad
        w \\leftarrow w - \\eta_t \\frac{m}{\\sqrt{v} + \\epsilon}, \\qquad
        \\eta_t = \\eta \\frac{\\sqrt{1 - \\beta_2^t}}{1 - \\beta_1^t},

    Kingma and Ba's bias correction folded into the step size (their §2), as
    scikit-learn's ``AdamOptimizer`` does.

    References
    ----------
    D. P. Kingma and J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.
    """

    name = "adam"

    def __init__(
        self,
        n_params: int,
        dtype: Any,
        *,
        learning_rate_init: float,
        beta_1: float,
        beta_2: float,
        epsilon: float,
    ) -> None:
        self.learning_rate_init = float(learning_rate_init)
        self.learning_rate = float(learning_rate_init)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.t = 0
        self.m = np.zeros(n_params, dtype=dtype)
        self.v = np.zeros(n_params, dtype=dtype)
        self._tmp = np.empty(n_params, dtype=dtype)
        self.fresh = True  # as constructed: no step taken, no state loaded

    def step(self, theta: np.ndarray, grad: np.ndarray, lam: float = 0.0, segments: Segments | None = None) -> None:
        """Update ``theta`` in place along ``grad`` plus the decay ``lam`` times the weights.

        As :meth:`SGD.step`: :math:`g + \\lambda w` on the decayed ``segments``,
        :math:`g` elsewhere; ``grad`` is scratch.
        """
        x = theta.dtype.type  # scalars in the working dtype, as NumPy casts Python floats
        b1, b2, m, v, tmp = self.beta_1, self.beta_2, self.m, self.v, self._tmp
        self.t += 1
        self.fresh = False
        step = self.learning_rate * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)  # eta_t
        segments = segments or _whole(theta)
        kernels = _kernels()
        args = (b1, 1.0 - b1, b2, 1.0 - b2, self.epsilon, step)
        if kernels is not None:
            bounds, lams = self._blocks(segments, lam, theta.dtype)
            kernels.adam(theta, grad, m, v, bounds, lams, *map(x, args))
            return
        for block, decayed in _chunks(segments):
            _adam_numpy(theta[block], grad[block], m[block], v[block], tmp[block], lam if decayed else 0.0, *args)

    def epoch_end(self, t: int) -> None:
        """Adam keeps its learning rate."""

    def plateau(self) -> bool:
        """No improvement for ``n_iter_no_change`` epochs: stop."""
        return True

    def state(self, into: dict[str, Any] | None = None) -> dict[str, Any]:
        """Copies of the step count and moments (into the arrays of ``into``, an earlier state, if given)."""
        return {
            "learning_rate": self.learning_rate,
            "t": self.t,
            "m": _copy(self.m, into, "m"),
            "v": _copy(self.v, into, "v"),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.learning_rate = float(state["learning_rate"])
        self.t = int(state["t"])
        np.copyto(self.m, state["m"], casting="same_kind")
        np.copyto(self.v, state["v"], casting="same_kind")
        self.fresh = False

    def reset(self) -> None:
        """Back to the state of a new optimiser: zero moments, no steps."""
        self.learning_rate = self.learning_rate_init
        self.t = 0
        self.m.fill(0)
        self.v.fill(0)
        self.fresh = True


Optimizer = SGD | Adam


def _copy(a: np.ndarray, into: dict[str, Any] | None, key: str) -> np.ndarray:
    """A copy of ``a``, written into ``into[key]`` when an earlier state lends its buffer."""
    if into is None:
        return a.copy()
    np.copyto(into[key], a)
    return into[key]


def make_optimizer(solver: str, n_params: int, dtype: Any, settings: dict[str, Any]) -> Optimizer:
    """A fresh optimiser for ``solver`` ("sgd" or "adam") from its hyperparameters.

    ``settings`` holds the estimator's names: ``learning_rate_init`` and, for
    SGD, ``momentum``, ``nesterovs_momentum``, ``learning_rate``, ``power_t``;
    for Adam ``beta_1``, ``beta_2``, ``epsilon``.
    """
    if solver == "sgd":
        return SGD(
            n_params,
            dtype,
            learning_rate_init=settings["learning_rate_init"],
            momentum=settings["momentum"],
            nesterov=settings["nesterovs_momentum"],
            schedule=settings["learning_rate"],
            power_t=settings["power_t"],
        )
    if solver == "adam":
        return Adam(
            n_params,
            dtype,
            learning_rate_init=settings["learning_rate_init"],
            beta_1=settings["beta_1"],
            beta_2=settings["beta_2"],
            epsilon=settings["epsilon"],
        )
    raise ValueError(f"no minibatch optimiser named {solver!r}; choose 'sgd' or 'adam'")


# --------------------------------------------------------------------------
# Training state and data
# --------------------------------------------------------------------------


# The weights and the optimiser's state (None: a fresh optimiser) at an epoch's start.
Snapshot = tuple[np.ndarray, "dict[str, Any] | None"]


@dataclass
class TrainingState:
    """Everything a training run needs to continue exactly where it stopped.

    ``theta`` is the current (running) flat weight vector; ``best_theta`` the
    weights of the best validation score when early stopping. Counters follow
    scikit-learn: ``n_iter`` counts the epochs (iterations) of the current
    call, ``t`` the patterns processed over all calls. ``loss`` is the latest
    loss (``loss_curve[-1]``, or a full-batch solver's final value when it
    made no iteration).
    """

    theta: np.ndarray
    optimizer: Optimizer | None = None
    optimizer_settings: dict[str, Any] = field(default_factory=dict)
    n_iter: int = 0
    t: int = 0
    loss: float | None = None
    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] | None = None
    best_loss: float | None = math.inf
    best_validation_score: float | None = None
    no_improvement_count: int = 0
    best_theta: np.ndarray | None = None
    rng: np.random.Generator | None = None
    split_seed: int | None = None

    def snapshot(self, reuse: Snapshot | None = None) -> Snapshot:
        """Copies of the weights and optimiser state, to restore after divergence.

        ``reuse``, an earlier snapshot of this state, lends its buffers, so that
        an epoch's snapshot allocates nothing. A fresh optimiser's moments are
        zero and are not copied: restoring resets it. (Each copy of a weight
        vector's size is a page-faulting allocation the first time: for the
        workload of issue 5, about 1.5 ms each.)
        """
        if reuse is None:
            theta = self.theta.copy()
        else:
            theta = reuse[0]
            np.copyto(theta, self.theta)
        opt = self.optimizer
        if opt is None or opt.fresh:
            return theta, None
        return theta, opt.state(into=None if reuse is None else reuse[1])

    def restore(self, snapshot: Snapshot) -> None:
        theta, opt = snapshot
        np.copyto(self.theta, theta)
        if self.optimizer is not None:
            if opt is None:
                self.optimizer.reset()
            else:
                self.optimizer.load_state(opt)


@dataclass
class TrainingData:
    """The training patterns as the loops read them.

    Attributes
    ----------
    X : ndarray (C-contiguous) or scipy CSR matrix of shape (N_all, D)
        Every pattern, in the working dtype.
    y : ndarray of shape (N_all,)
        Class indices ``0..K-1``.
    w : ndarray of shape (N_all,) or None
        Pattern weights rescaled to mean one over the training rows
        (:math:`\\bar w_n = s_n N / S`); None for unit weights.
    lam : float
        The decay per step, :math:`\\lambda = \\alpha / S`.
    rows : ndarray or None
        The indices of the training rows (the others are held out for
        validation); None for all rows.
    checked : bool
        Whether the training rows of a dense ``X`` are known to be finite.
        When False, the first epoch checks each row as it gathers it into
        its batch and raises :class:`NonFiniteInput` naming the first bad
        entry: the separate pass over all of ``X`` that input validation
        would make costs as much as 7% of an epoch (issue 5's workload).
    """

    X: Any
    y: np.ndarray
    w: np.ndarray | None
    lam: float
    rows: np.ndarray | None = None
    checked: bool = True

    @property
    def n(self) -> int:
        return self.X.shape[0] if self.rows is None else self.rows.shape[0]


@dataclass(frozen=True)
class MinibatchSettings:
    """The hyperparameters of the minibatch loop, named as the estimator names them."""

    activation: str
    batch_size: int
    shuffle: bool
    max_iter: int
    tol: float
    n_iter_no_change: int
    early_stopping: bool
    incremental: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class LbfgsSettings:
    """The hyperparameters of the L-BFGS run."""

    activation: str
    max_iter: int
    max_fun: int
    tol: float
    verbose: bool = False


def _dims(theta: np.ndarray, data: TrainingData, n_classes: int) -> tuple[int, int, int]:
    D = data.X.shape[1]
    K = n_classes
    M = (theta.shape[0] - K) // (D + 1 + K)  # W = (D + 1) M + (M + 1) K
    return D, M, K


# --------------------------------------------------------------------------
# The minibatch loop (SGD, Adam)
# --------------------------------------------------------------------------


def train_minibatch(
    state: TrainingState,
    data: TrainingData,
    settings: MinibatchSettings,
    *,
    n_classes: int,
    validation_score: Callable[[Params], float] | None = None,
    on_epoch: EpochHook | None = None,
) -> str:
    """Run epochs of minibatch steps until a stopping rule fires.

    Each epoch visits every training row once, in batches of
    ``settings.batch_size`` (a fresh permutation from ``state.rng`` when
    shuffling), stepping along
    :math:`\\tfrac{1}{B} \\sum_{\\text{batch}} \\bar w_n \\nabla E_n + \\lambda w`.
    After the epoch: the loss (the data term summed over its batches, each
    at the weights it saw, plus the decay of the epoch's final weights,
    divided by ``S``) joins ``loss_curve``;
    with early stopping the validation score joins ``validation_scores`` and
    the best weights are kept; the learning-rate schedule and the
    no-improvement counter move as scikit-learn's do; then ``on_epoch(state)``
    runs, and returning True stops.

    Parameters
    ----------
    state : TrainingState
        Updated in place; ``state.optimizer`` must be set.
    data : TrainingData
    settings : MinibatchSettings
    n_classes : int
    validation_score : callable, optional
        ``validation_score(params) -> float``, higher is better; required
        when ``settings.early_stopping``.
    on_epoch : callable, optional

    Returns
    -------
    str
        Why training stopped: ``"converged"``, ``"max_iter"``, ``"callback"``
        or ``"incremental"`` (the one epoch of ``partial_fit``).

    Raises
    ------
    TrainingDiverged
        When the error becomes non-finite; ``state`` then holds the weights
        and optimiser state of the last finished epoch.
    NonFiniteInput
        When ``data.checked`` is False and a training row is not finite;
        the weights and optimiser state are restored as for divergence (the
        shuffling generator has moved on).

    References
    ----------
    PRML §5.2.4 (sequential and minibatch gradient descent), §5.5.2 (early stopping).
    """
    optimizer = state.optimizer
    if optimizer is None:
        raise ValueError("train_minibatch needs state.optimizer")
    run = _Minibatch(state, data, settings, n_classes)
    state.n_iter = 0
    snapshot = None
    for _ in range(settings.max_iter):
        snapshot = state.snapshot(reuse=snapshot)
        # Overflow is caught by the finiteness checks of the epoch and reported as divergence.
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                loss = run.epoch()
        except NonFiniteInput:
            state.restore(snapshot)
            raise
        if loss is None:
            state.restore(snapshot)
            if isinstance(data.X, np.ndarray) and not data.checked:
                check_finite(data.X, data.rows)  # the error may come from a row the epoch had not reached
            raise TrainingDiverged(
                f"training diverged in epoch {len(state.loss_curve) + 1}: the error became non-finite with "
                f"learning_rate_init={optimizer.learning_rate_init:g} (current learning rate "
                f"{optimizer.learning_rate:g}). Lower learning_rate_init or scale the inputs; the weights of "
                f"the last finished epoch were kept."
            )
        state.n_iter += 1
        state.t += data.n
        state.loss = loss
        state.loss_curve.append(loss)
        if settings.verbose:
            print(f"Iteration {state.n_iter}, loss = {loss:.8f}")
        _track_improvement(state, settings, run.params, validation_score)
        optimizer.epoch_end(state.t)
        converged = False
        if state.no_improvement_count > settings.n_iter_no_change:
            if optimizer.plateau():
                converged = True
                if settings.verbose:
                    what = "Validation score" if settings.early_stopping else "Training loss"
                    print(
                        f"{what} did not improve more than tol={settings.tol} "
                        f"for {settings.n_iter_no_change} consecutive epochs. Stopping."
                    )
            else:
                state.no_improvement_count = 0
                if settings.verbose:
                    print(f"Learning rate reduced to {optimizer.learning_rate}")
        if on_epoch is not None and on_epoch(state):
            return "callback"
        if converged:
            return "converged"
        if settings.incremental:
            return "incremental"
    return "max_iter"


class _Minibatch:
    """One fit's buffers for the minibatch loop, and its epoch.

    Everything of the size of a batch or of the weights is allocated here,
    once; an epoch then allocates only the permutation and per-batch vectors
    of length ``B``.
    """

    def __init__(self, state: TrainingState, data: TrainingData, settings: MinibatchSettings, n_classes: int) -> None:
        theta = state.theta
        D, M, K = _dims(theta, data, n_classes)
        self.state, self.data, self.settings = state, data, settings
        self.params = network.unflatten(theta, D, M, K)  # views: the optimiser's steps show through
        self.grad = np.empty_like(theta)
        self.grad_params = network.unflatten(self.grad, D, M, K)
        self.layout = _Layout(D, M, K)
        self.n = data.n
        self.B = int(min(max(settings.batch_size, 1), self.n))
        self.dense = isinstance(data.X, np.ndarray)
        self.contiguous = self.dense and data.rows is None and not settings.shuffle  # batches are slices of X
        kernels = _kernels()
        # The compiled gather copies without casting or bounds checks: only rows of the working dtype.
        self.compiled_gather = (
            self.dense
            and not self.contiguous
            and kernels is not None
            and kernels.gather is not None
            and data.X.dtype == theta.dtype
            and data.X.flags.c_contiguous
        )
        self.ws = _Workspace(self.B, D, M, K, theta.dtype, gather=self.dense and not self.contiguous)
        self.order = np.empty(self.n, dtype=np.intp)

    def _shuffle(self) -> None:
        """The epoch's order of the training rows (indices into ``data.X``)."""
        state, data, order = self.state, self.data, self.order
        if self.settings.shuffle:
            if state.rng is None:
                raise ValueError("shuffling needs state.rng")
            order[...] = state.rng.permutation(self.n)
        else:
            order[...] = np.arange(self.n)
        if data.rows is not None:
            order[...] = data.rows[order]

    def epoch(self) -> float | None:
        """One pass over the training rows; the epoch's loss, or None on a non-finite error."""
        data, ws, theta, grad = self.data, self.ws, self.state.theta, self.grad
        optimizer, layout, lam = self.state.optimizer, self.layout, float(data.lam)
        activation, order, B, n = self.settings.activation, self.order, self.B, self.n
        self._shuffle()
        # Unchecked rows are checked as they are gathered (the compiled gather copies and
        # tests), or else all at once before the epoch.
        kernels = _kernels() if self.compiled_gather else None
        if self.dense and not data.checked and not self.compiled_gather:
            check_finite(data.X, data.rows)
        total = 0.0  # sum over batches of sum_n w_n E_n
        for start in range(0, n, B):
            stop = min(start + B, n)
            b = stop - start
            if self.contiguous:
                Xb, yb = data.X[start:stop], data.y[start:stop]
                wb = None if data.w is None else data.w[start:stop]
            else:
                idx = order[start:stop]
                # Gather into reusable buffers: no copy of X per epoch, no allocation per batch.
                # mode="clip" (the indices are valid) because take buffers `out` under "raise".
                if kernels is not None:
                    Xb = ws.X[:b]
                    bad = kernels.gather(data.X, idx, Xb)
                    if bad >= 0:  # only possible while the rows are unchecked
                        raise _non_finite_input(data.X, int(idx[bad]))
                else:
                    Xb = np.take(data.X, idx, axis=0, out=ws.X[:b], mode="clip") if self.dense else data.X[idx]
                yb = np.take(data.y, idx, out=ws.y[:b], mode="clip")
                wb = None if data.w is None else np.take(data.w, idx, out=ws.w[:b], mode="clip")
            total += _batch_error_and_gradient(self.params, Xb, yb, wb, 1.0 / b, activation, ws, self.grad_params)
            if not math.isfinite(total):
                return None
            optimizer.step(theta, grad, lam, layout.segments)  # along (1/B) sum w_n grad E_n + lam w
        data.checked = True  # every training row has been gathered
        if not np.isfinite(theta).all():
            return None
        return total / n + 0.5 * lam * layout.sq_norm(theta)  # (data term + decay at the epoch's end) / S


def _track_improvement(
    state: TrainingState,
    settings: MinibatchSettings,
    params: Params,
    validation_score: Callable[[Params], float] | None,
) -> None:
    """Update the best loss or score and the no-improvement counter (as scikit-learn)."""
    if settings.early_stopping:
        if validation_score is None:
            raise ValueError("early stopping needs a validation_score")
        score = float(validation_score(params))
        scores = state.validation_scores if state.validation_scores is not None else []
        scores.append(score)
        state.validation_scores = scores
        best = -math.inf if state.best_validation_score is None else state.best_validation_score
        if settings.verbose:
            print(f"Validation score: {score:f}")
        state.no_improvement_count = state.no_improvement_count + 1 if score < best + settings.tol else 0
        if score > best:
            state.best_validation_score = score
            if state.best_theta is None:
                state.best_theta = state.theta.copy()
            else:
                np.copyto(state.best_theta, state.theta)
    else:
        loss = state.loss_curve[-1]
        best = math.inf if state.best_loss is None else state.best_loss
        state.no_improvement_count = state.no_improvement_count + 1 if loss > best - settings.tol else 0
        if loss < best:
            state.best_loss = loss


# --------------------------------------------------------------------------
# L-BFGS over the flat parameter vector
# --------------------------------------------------------------------------


class _FullBatch:
    """:math:`\\tilde E / S` and its gradient over all rows, in the working dtype.

    Rows are processed in chunks of at most ``chunk`` patterns (by default
    :data:`twolayer.network.CHUNK_ROWS`) so that the ``N x M`` intermediates
    never exist whole and stay in cache; partial gradients accumulate.
    """

    def __init__(
        self, data: TrainingData, dims: tuple[int, int, int], dtype: Any, activation: str, chunk: int | None = None
    ) -> None:
        D, M, K = dims
        self.data, self.dims, self.activation = data, dims, activation
        self.N = data.X.shape[0]
        self.chunk = int(min(self.N, network.CHUNK_ROWS if chunk is None else chunk))
        dense = isinstance(data.X, np.ndarray)
        self.ws = _Workspace(self.chunk, D, M, K, dtype, gather=False)
        self.dense = dense
        self.grad = np.empty(network.n_params(D, M, K), dtype=dtype)
        self.part = np.empty_like(self.grad) if self.chunk < self.N else None
        self.layout = _Layout(D, M, K)
        self.scratch = np.empty_like(self.grad)
        self.n_eval = 0

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Returns ``(f, g)``; ``g`` is an internal buffer, overwritten by the next call."""
        with np.errstate(over="ignore", invalid="ignore"):  # the caller checks f for finiteness
            return self._evaluate(theta)

    def _evaluate(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        data, N = self.data, self.N
        params = network.unflatten(theta, *self.dims)
        E = 0.0
        for start in range(0, N, self.chunk):
            stop = min(start + self.chunk, N)
            out = self.grad if start == 0 else self.part
            w = None if data.w is None else data.w[start:stop]
            E += _batch_error_and_gradient(
                params,
                data.X[start:stop],
                data.y[start:stop],
                w,
                1.0 / N,
                self.activation,
                self.ws,
                network.unflatten(out, *self.dims),
            )
            if start > 0:
                self.grad += self.part
        self.layout.add_decay(theta, self.grad, data.lam, self.scratch)
        self.n_eval += 1
        f = E / N + 0.5 * data.lam * self.layout.sq_norm(theta)  # eq. 5.112, divided by S
        return f, self.grad


class _StopLbfgs(Exception):
    """Raised from the L-BFGS callback to end the run at an iterate."""


def train_lbfgs(
    state: TrainingState,
    data: TrainingData,
    settings: LbfgsSettings,
    *,
    n_classes: int,
    on_epoch: EpochHook | None = None,
) -> tuple[str, str]:
    """Minimise :math:`\\tilde E / S` with SciPy's L-BFGS-B over the flat vector.

    SciPy works in float64: each point it proposes is rounded into
    ``state.theta`` (the working dtype, float32 for float32 data), the error
    and gradient are computed there, and the gradient is widened to float64
    for SciPy. The weights, data and products thus stay in the working dtype.
    ``gtol`` is ``settings.tol``; ``maxiter`` and ``maxfun`` are
    ``settings.max_iter`` and ``settings.max_fun``. After every iteration the
    loss joins ``state.loss_curve`` and ``on_epoch(state)`` runs (True stops,
    keeping that iterate).

    Returns
    -------
    reason : str
        ``"converged"``, ``"max_iter"`` (an iteration or evaluation limit),
        ``"callback"`` or ``"failed"`` (SciPy stopped otherwise).
    message : str
        SciPy's message.

    Raises
    ------
    TrainingDiverged
        When the error is non-finite; ``state.theta`` then holds the last
        accepted iterate.

    References
    ----------
    D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large
    scale optimization", Math. Programming 45 (1989); PRML §5.2.4.
    """
    theta = state.theta
    dims = _dims(theta, data, n_classes)
    full = _FullBatch(data, dims, theta.dtype, settings.activation)
    accepted = theta.astype(np.float64)  # the last accepted iterate, in SciPy's dtype
    last: dict[str, Any] = {"x": None, "f": math.nan}

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        np.copyto(theta, x, casting="same_kind")  # float64 -> working dtype at the boundary
        f, g = full(theta)
        state.t += full.N
        if not math.isfinite(f):
            np.copyto(theta, accepted, casting="same_kind")
            raise TrainingDiverged(
                "L-BFGS met a non-finite error (the inputs may be very large: scale them); "
                "the last accepted iterate was kept."
            )
        last["x"], last["f"] = x.copy(), f
        return f, g.astype(np.float64)

    def callback(intermediate_result: Any) -> None:
        x = getattr(intermediate_result, "x", intermediate_result)  # SciPy < 1.11 passes x alone
        f = getattr(intermediate_result, "fun", None)
        if f is None:
            f = last["f"] if last["x"] is not None and np.array_equal(x, last["x"]) else full(_as_working(x, theta))[0]
        accepted[...] = x
        np.copyto(theta, x, casting="same_kind")
        state.n_iter += 1
        state.loss = float(f)
        state.loss_curve.append(float(f))
        best = math.inf if state.best_loss is None else state.best_loss
        state.best_loss = min(best, float(f))
        if settings.verbose:
            print(f"Iteration {state.n_iter}, loss = {float(f):.8f}")
        if on_epoch is not None and on_epoch(state):
            raise _StopLbfgs

    state.n_iter = 0
    try:
        # L-BFGS-B's own vector algebra calls BLAS on vectors of W entries; when the
        # products are small too, BLAS threads only add synchronisation (which on a
        # busy machine costs milliseconds per call), so small problems run on one.
        with _blas_threads(full):
            result = scipy.optimize.minimize(
                fun,
                accepted.copy(),
                method="L-BFGS-B",
                jac=True,
                callback=callback,
                options={"maxiter": settings.max_iter, "maxfun": settings.max_fun, "gtol": settings.tol},
            )
    except _StopLbfgs:
        np.copyto(theta, accepted, casting="same_kind")
        return "callback", "stopped by the callback"
    np.copyto(theta, result.x, casting="same_kind")
    state.loss = float(result.fun)
    if result.success:
        return "converged", str(result.message)
    return ("max_iter" if result.status == 1 else "failed"), str(result.message)


def _as_working(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    return x.astype(like.dtype, copy=True)


def _blas_threads(full: _FullBatch) -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for small problems, where threads only add synchronisation."""
    D, M, K = full.dims
    if full.N * M * (D + K) < SMALL_PROBLEM:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


# --------------------------------------------------------------------------
# Second-order solvers (twolayer.training.second_order) with exact curvature
# --------------------------------------------------------------------------


def train_second_order(
    state: TrainingState,
    data: TrainingData,
    settings: LbfgsSettings,
    *,
    method: str,
    n_classes: int,
    on_epoch: EpochHook | None = None,
) -> tuple[str, str]:
    """Minimise :math:`\\tilde E / S` by truncated Newton or scaled conjugate gradients.

    ``method`` is ``"trust-ncg"`` or ``"newton-cg"``
    (:func:`twolayer.training.second_order.minimize_newton`) or ``"scg"``
    (:func:`twolayer.training.second_order.scaled_conjugate_gradient`), each given the
    exact Hessian-vector product of :math:`\\tilde E / S`,

    .. math::

        H v = \\frac{1}{N} \\Bigl(\\nabla^2 \\sum_n \\bar w_n E_n\\Bigr) v + \\lambda v_W,

    by :func:`twolayer.curvature.hessian_vector_product` (the R operator),
    and the error and gradient of the fast full-batch path. Points are
    rounded into ``state.theta`` (the working dtype) at the boundary, as for
    L-BFGS. ``settings.tol`` bounds the gradient's largest component;
    ``settings.max_fun`` is not used. Sparse ``X`` is densified once for the
    Hessian products.

    Returns
    -------
    reason : str
        ``"converged"``, ``"max_iter"``, ``"callback"`` or ``"failed"``.
    message : str

    Raises
    ------
    TrainingDiverged
        When the final error is non-finite (a rejected non-finite trial step
        is not an error: the methods shrink their steps).

    References
    ----------
    PRML §5.4.6 (fast multiplication by the Hessian); J. Nocedal and S. J.
    Wright, *Numerical Optimization* (2006), §7.1; M. F. Møller, Neural
    Networks 6 (1993).
    """
    from twolayer import curvature  # only these solvers need it
    from twolayer.training import second_order

    if method not in SECOND_ORDER_METHODS:
        raise ValueError(f"method must be one of {SECOND_ORDER_METHODS}, got {method!r}")
    theta = state.theta
    dims = _dims(theta, data, n_classes)
    D, M, K = dims
    dtype = theta.dtype
    full = _FullBatch(data, dims, dtype, settings.activation)
    N = full.N
    X_dense = data.X.toarray() if sp.issparse(data.X) else data.X
    T = np.zeros((N, K), dtype=dtype)
    T[np.arange(N), data.y] = 1.0  # 1-of-K targets for the curvature module
    alpha_sum = float(data.lam) * N  # decay of sum_n w_n E_n, whose Hessian is divided by N below
    trial = np.empty_like(theta)

    def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        np.copyto(trial, x, casting="same_kind")  # the solver's point, in the working dtype
        f, g = full(trial)
        state.t += N
        return f, g.copy()  # the solvers keep gradients; the buffer is reused

    def hessp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        params = network.unflatten(np.asarray(x, dtype=dtype), D, M, K)
        Hv = curvature.hessian_vector_product(
            params, X_dense, T, np.asarray(v, dtype=dtype), data.w, activation=settings.activation, alpha=alpha_sum
        )
        out = network.flatten(Hv)
        out /= N
        return out

    def callback(intermediate_result: Any) -> bool:
        np.copyto(theta, intermediate_result.x, casting="same_kind")
        f = float(intermediate_result.fun)
        state.n_iter += 1
        state.loss = f
        state.loss_curve.append(f)
        best = math.inf if state.best_loss is None else state.best_loss
        state.best_loss = min(best, f)
        if settings.verbose:
            print(f"Iteration {state.n_iter}, loss = {f:.8f}")
        return bool(on_epoch is not None and on_epoch(state))

    state.n_iter = 0
    with _blas_threads(full), np.errstate(over="ignore", invalid="ignore"):
        if method == "scg":
            result = second_order.scaled_conjugate_gradient(
                fun_and_grad, theta.copy(), hessp=hessp, max_iter=settings.max_iter, tol=settings.tol, callback=callback
            )
        else:
            result = second_order.minimize_newton(
                fun_and_grad,
                theta.copy(),
                hessp=hessp,
                method=method,
                max_iter=settings.max_iter,
                tol=settings.tol,
                callback=callback,
            )
    last = theta.copy()  # the last iterate a callback saw (or the start)
    np.copyto(theta, result.x, casting="same_kind")
    if not (math.isfinite(float(result.fun)) and np.isfinite(theta).all()):
        np.copyto(theta, last)
        raise TrainingDiverged(f"{method} ended at a non-finite error (scale the inputs); the last iterate was kept")
    state.loss = float(result.fun)
    reason = {0: "converged", 1: "max_iter", 3: "callback"}.get(int(result.status), "failed")
    return reason, str(result.message)
