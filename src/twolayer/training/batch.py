"""The fast batch gradient: the reference backpropagation written into reusable buffers.

:func:`twolayer.network.error_and_gradient` is the readable reference;
``_batch_error_and_gradient`` computes the same five matrix products into
buffers that a ``_Workspace`` allocates once per fit, so that an epoch
allocates nothing of size ``B x M`` or ``D x M`` and does no Python work per
pattern. The hidden activation comes from the registry
(:data:`twolayer.network.ACTIVATIONS`) with its in-place forms, so that every
registered activation trains the network that the reference computes. The
tests assert that the two agree to rounding.

Also here: :func:`check_finite`, the check of the input rows that the first
epoch can make as it gathers them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from twolayer import network
from twolayer.errors import NonFiniteInput
from twolayer.network import Params
from twolayer.training.kernels import _kernels

__all__ = ["CHECK_ROWS", "check_finite"]

#: Rows per piece of check_finite: pieces of a few MiB, never a copy of all the rows checked.
CHECK_ROWS = 4096


def _non_finite_input(X: np.ndarray, row: int) -> NonFiniteInput:
    """The error for row ``row`` of ``X``, which has a non-finite entry: where, and which kind."""
    column = int(np.flatnonzero(~np.isfinite(X[row]))[0])
    kind = "NaN" if np.isnan(X[row, column]) else "infinity"
    return NonFiniteInput(f"Input X contains {kind} at row {row}, column {column}: every feature must be finite")


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


class _Workspace:
    """Buffers for one batch of at most ``rows`` patterns, reused every batch.

    ``A1`` holds :math:`a^{(1)}`, then :math:`z`, then :math:`h'(a^{(1)})`;
    ``A2`` holds :math:`a^{(2)}`, then :math:`y`, then :math:`\\delta^{(2)}`;
    ``D1`` holds :math:`\\delta^{(1)}`; ``X`` receives gathered dense rows; ``T``
    (sigmoid outputs only) the gathered target rows.
    """

    def __init__(
        self,
        rows: int,
        n_features: int,
        n_hidden: int,
        n_classes: int,
        dtype: Any,
        gather: bool,
        output: str = "softmax",
    ) -> None:
        self.rows = rows
        self.X = np.empty((rows, n_features), dtype=dtype) if gather else None
        self.A1 = np.empty((rows, n_hidden), dtype=dtype)
        self.A2 = np.empty((rows, n_classes), dtype=dtype)
        self.D1 = np.empty((rows, n_hidden), dtype=dtype)
        self.row_max = np.empty(rows, dtype=dtype)
        self.row_sum = np.empty(rows, dtype=dtype)
        self.coef = np.empty(rows, dtype=dtype)
        self.k = np.empty(rows, dtype=np.intp)
        self.w = np.empty(rows, dtype=dtype)
        self.T = np.empty((rows, n_classes), dtype=dtype) if output == "sigmoid" else None
        self.E = np.empty((rows, n_classes), dtype=dtype) if output == "sigmoid" else None
        self.arange = np.arange(rows)


def _batch_error_and_gradient(
    params: Params,
    X: np.ndarray | sp.csr_matrix,
    k: np.ndarray,
    w: np.ndarray | None,
    scale: float,
    activation: str,
    ws: _Workspace,
    grad: Params,
    output: str = "softmax",
) -> float:
    """The error of a batch and, into ``grad``, ``scale`` times its gradient.

    The same five products as :func:`twolayer.network.error_and_gradient`
    (with ``T`` the 1-of-K code of the class indices ``k`` and sample weights
    ``w``), written into the workspace and into ``grad`` (arrays that are
    overwritten, typically views of one flat vector). For
    ``output="sigmoid"``, ``k`` is the target matrix ``T`` itself, shape
    ``(B, K)`` in the working dtype, and the error is the binary
    cross-entropy; the compiled kernels (softmax only) are not used.

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
    act = network.get_activation(activation)
    act.h_inplace(A1)  # A1 = z
    np.matmul(A1, W2, out=A2)  # (B, K)  a_k = sum_j w_kj z_j
    kernels = _kernels() if output == "softmax" else None
    if kernels is not None:
        # The same steps in two compiled passes: the ufunc chain below costs ~20 calls per batch.
        x = A2.dtype.type
        E = kernels.output_delta(A2, b2, k, w, x(scale), grad.b2)
        np.matmul(A1.T, A2, out=grad.W2)  # (M, K)  dE/dw_kj = delta_k z_j
        np.matmul(A2, W2.T, out=D1)  # (B, M)  sum_k w_kj delta_k
        delta_kernel = kernels.delta(act.delta_kernel)
        if delta_kernel is not None:
            delta_kernel(A1, D1, grad.b1, x(1.0))
        else:
            act.delta_inplace(A1, D1)
            np.sum(D1, axis=0, out=grad.b1)
        if dense:
            np.matmul(X.T, D1, out=grad.W1)  # (D, M)  dE/dw_ji = delta_j x_i
        else:
            grad.W1[...] = X.T @ D1
        return float(E)
    A2 += b2

    if output == "sigmoid":
        E_n = _sigmoid_delta(A2, k, ws)
    else:
        E_n = _softmax_delta(A2, k, ws)
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
    act.delta_inplace(A1, D1)  # delta_j = h'(a_j) sum_k w_kj delta_k
    if dense:
        np.matmul(X.T, D1, out=grad.W1)  # (D, M)  dE/dw_ji = delta_j x_i
    else:
        grad.W1[...] = X.T @ D1
    np.sum(D1, axis=0, out=grad.b1)
    return E


def _softmax_delta(A2: np.ndarray, k: np.ndarray, ws: _Workspace) -> np.ndarray:
    """Softmax, error and output delta, fused: ``A2`` becomes delta_k = y_k - t_k; returns E_n."""
    b = A2.shape[0]
    row_max, row_sum, rows = ws.row_max[:b], ws.row_sum[:b], ws.arange[:b]
    np.max(A2, axis=1, out=row_max)
    A2 -= row_max[:, None]  # shifted logits: exp cannot overflow
    picked = A2[rows, k]  # a_t - max, the shifted logit of each target class
    np.exp(A2, out=A2)
    np.sum(A2, axis=1, out=row_sum)
    E_n = np.log(row_sum)
    E_n -= picked  # E_n = logsumexp(a) - a_t = -ln y_t  (eq. 5.24)
    A2 /= row_sum[:, None]  # y_k (eq. 4.104)
    A2[rows, k] -= 1.0  # delta_k = y_k - t_k
    return E_n


def _sigmoid_delta(A2: np.ndarray, T: np.ndarray, ws: _Workspace) -> np.ndarray:
    """Sigmoid, binary cross-entropy and output delta: ``A2`` becomes delta_k = y_k - t_k; returns E_n.

    Per output, :math:`-[t \\ln y + (1 - t) \\ln(1 - y)] = \\ln(1 + e^{a}) - t a`
    (``logaddexp(0, a)``: finite for every finite ``a``), and
    :math:`y = \\sigma(a) = e^{\\ln \\sigma(a)}` with :math:`\\ln \\sigma(a) = a - \\ln(1 + e^a)`.
    """
    assert ws.E is not None  # the workspace of a sigmoid fit
    b = A2.shape[0]
    E = ws.E[:b]
    np.logaddexp(0.0, A2, out=E)  # ln(1 + e^a) = -ln(1 - y)
    E_n = np.sum(E, axis=1)
    E_n -= np.einsum("nk,nk->n", T, A2)  # E_n = sum_k ln(1 + e^{a_k}) - t_k a_k  (eq. 5.21 per output)
    np.subtract(A2, E, out=A2)  # ln y = a - ln(1 + e^a)
    np.exp(A2, out=A2)  # y_k (eq. 4.59)
    A2 -= T  # delta_k = y_k - t_k
    return E_n
