"""The network over every row of a dense or sparse ``X``, a chunk of rows at a time.

Prediction and the validation score of early stopping read the outputs of
many rows; a chunk keeps every intermediate to about :math:`2^{20}` entries
and densifies sparse rows one chunk at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from twolayer import network
from twolayer.network import Params

__all__ = ["chunked", "logits"]


def _chunk_rows(X: Any, params: Params) -> int:
    """Rows per chunk so that no intermediate exceeds about 2**20 entries."""
    width = max(params.W1.shape[1], params.W2.shape[1], X.shape[1] if sp.issparse(X) else 1)
    return max(1, (1 << 20) // width)


def chunked(params: Params, X: Any, fn: Callable[[Params, np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a row-wise network function in chunks (densifying sparse rows chunk by chunk).

    Parameters
    ----------
    params : Params
        The network's weights.
    X : ndarray or scipy sparse matrix of shape (N, D)
    fn : callable
        ``fn(params, X_chunk)``, an array with one row per row of the dense ``X_chunk``.

    Returns
    -------
    ndarray
        The rows of ``fn`` over all of ``X``, in order.
    """
    step = _chunk_rows(X, params)
    parts = []
    for start in range(0, X.shape[0], step):
        Xc = X[start : start + step]
        parts.append(fn(params, Xc.toarray() if sp.issparse(Xc) else Xc))
    if not parts:
        return fn(params, np.zeros((0, params.W1.shape[0]), dtype=params.W1.dtype))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def logits(params: Params, X: Any, activation: str) -> np.ndarray:
    """The output activations :math:`a^{(2)}` of every row of dense or sparse ``X``.

    Parameters
    ----------
    params : Params
    X : ndarray or scipy sparse matrix of shape (N, D)
    activation : str
        The hidden-unit activation, a name in :data:`twolayer.network.ACTIVATIONS`.

    Returns
    -------
    ndarray of shape (N, K)
    """
    return chunked(params, X, lambda p, Xc: network.hidden_and_output(p, Xc, activation=activation)[1])
