"""The trainers' sums over a cluster's blocks of rows (:class:`twolayer.cluster.RowBlocks`).

A :class:`~twolayer.training.state.TrainingData` whose ``X`` is a
:class:`~twolayer.cluster.RowBlocks` of ``(X, k, w)`` (patterns, class indices
or 0/1 targets, and pattern weights or None) trains on the cluster:

- :class:`BlockedFullBatch` is the full-batch evaluator of
  :math:`\\tilde E / S`, its gradient and its exact Hessian-vector product.
  Each block computes its part of the data term with the in-memory evaluator
  (``twolayer.training.full_batch._FullBatch``, divided by the whole
  ``N``), the parts are added on the workers, and the decay is added once
  here: the same function as in memory, summed in another order (the
  difference is rounding, relative 1e-15 in float64).
- :class:`BlockedMinibatch` is an epoch of the minibatch solvers that brings
  the blocks here one after another (the next one on its way while the
  current one trains) and runs the in-memory batches over each.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twolayer import network
from twolayer.cluster import RowBlocks
from twolayer.training.objective import _Layout
from twolayer.training.state import MinibatchSettings, TrainingData, TrainingState

__all__ = ["BlockedFullBatch", "BlockedMinibatch"]


def _block_data(X: np.ndarray, k: np.ndarray, w: np.ndarray | None, dtype: Any, output: str) -> TrainingData:
    """One block as in-memory training data of the working dtype (no decay: it is added once, for the whole)."""
    X = np.ascontiguousarray(X, dtype=dtype)
    k = np.ascontiguousarray(k, dtype=dtype) if output == "sigmoid" else np.asarray(k, dtype=np.intp)
    w = None if w is None else np.asarray(w, dtype=dtype)
    return TrainingData(X=X, k=k, w=w, lam=0.0, output=output)


def _block_error_and_gradient(
    X: np.ndarray, k: np.ndarray, w: np.ndarray | None, theta: np.ndarray, dims: tuple[int, int, int], how: tuple
) -> tuple[float, np.ndarray]:
    """:math:`\\frac{1}{N} \\sum_{n \\in b} \\bar w_n E_n` and its gradient for block ``b`` (``how``: activation, output, N)."""
    from twolayer.training.full_batch import _FullBatch

    activation, output, N = how
    full = _FullBatch(_block_data(X, k, w, theta.dtype, output), dims, theta.dtype, activation, total_rows=N)
    with np.errstate(over="ignore", invalid="ignore"):  # the driver checks the sum for finiteness
        f, g = full._evaluate(theta)
    return f, g.copy()


def _block_hessp(
    X: np.ndarray,
    k: np.ndarray,
    w: np.ndarray | None,
    theta: np.ndarray,
    v: np.ndarray,
    dims: tuple[int, int, int],
    how: tuple,
) -> np.ndarray:
    """:math:`\\frac{1}{N} (\\nabla^2 \\sum_{n \\in b} \\bar w_n E_n) v` for block ``b``."""
    from twolayer.training.full_batch import _FullBatch

    activation, output, N = how
    full = _FullBatch(_block_data(X, k, w, theta.dtype, output), dims, theta.dtype, activation, total_rows=N)
    return full.hessp(theta, v)


class BlockedFullBatch:
    """:math:`\\tilde E / S`, its gradient and Hessian-vector products, summed over a cluster's blocks.

    The weights go to the workers once per evaluation (one task of their own,
    not embedded in every block's task); each block returns its part, the parts are added on the
    workers, and only the total (one number and W weights) comes back.
    """

    def __init__(self, data: TrainingData, dims: tuple[int, int, int], dtype: Any, activation: str) -> None:
        if not isinstance(data.X, RowBlocks):
            raise TypeError("BlockedFullBatch needs data.X to be a twolayer.cluster.RowBlocks")
        self.blocks: RowBlocks = data.X
        self.data, self.dims, self.activation = data, dims, activation
        self.N = self.blocks.shape[0]
        self.dtype = np.dtype(dtype)
        self.layout = _Layout(*dims, data.lam)
        self.grad = np.empty(network.n_params(*dims), dtype=dtype)
        self.scratch = np.empty_like(self.grad)
        self.how = (activation, data.output, self.N)
        self.n_eval = 0

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Returns ``(f, g)``; ``g`` is an internal buffer, overwritten by the next call."""
        theta = np.asarray(theta, dtype=self.dtype)
        E, g = self.blocks.map_sum(_block_error_and_gradient, theta.copy(), self.dims, self.how)
        np.copyto(self.grad, g, casting="same_kind")
        with np.errstate(over="ignore", invalid="ignore"):  # the caller checks f for finiteness
            self.layout.add_decay(theta, self.grad, self.scratch)
            f = float(E) + self.layout.penalty(theta)  # eqs. 5.112 and 5.122–5.123, divided by S
        self.n_eval += 1
        return f, self.grad

    def hessp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """:math:`H v` of :math:`\\tilde E / S` (a new array): the blocks' parts, then :math:`\\lambda_g v_g` once."""
        theta = np.asarray(theta, dtype=self.dtype)
        v = np.asarray(v, dtype=self.dtype)
        out = np.asarray(
            self.blocks.map_sum(_block_hessp, theta.copy(), v.copy(), self.dims, self.how), dtype=self.dtype
        )
        for block, lam in self.layout.segments:
            if lam != 0.0:
                out[block] += lam * v[block]
        return out


class BlockedMinibatch:
    """An epoch of minibatch steps over a cluster's blocks, brought here one after another.

    The epoch visits the blocks in an order drawn from ``state.rng`` (when
    shuffling) and the rows of each block in an order drawn from it too;
    batches do not cross blocks, so a block's last batch may be smaller. This
    differs from the in-memory shuffle, which permutes all rows at once: here
    two rows share a batch only if they share a block. With blocks of many
    batches each and rows in no particular order the gradient noise is much
    the same; data sorted by class (a file per class, say) would give batches
    of one class while a block lasts, so shuffle such rows across files first.
    The order depends on ``state.rng`` alone, so a run resumed from a
    checkpoint at an epoch's end goes on bit for bit.

    Memory here is two blocks (the one in use and the next); the workers
    hold theirs (or read them again from their source).
    """

    def __init__(self, state: TrainingState, data: TrainingData, settings: MinibatchSettings, n_classes: int) -> None:
        from twolayer.training.minibatch import _Minibatch

        if not isinstance(data.X, RowBlocks):
            raise TypeError("BlockedMinibatch needs data.X to be a twolayer.cluster.RowBlocks")
        if data.rows is not None:
            raise ValueError("a validation split of blocks is not supported: pass a validation set of your own")
        self._inner = _Minibatch
        self.state, self.data, self.settings, self.n_classes = state, data, settings, n_classes
        self.blocks: RowBlocks = data.X
        self.n = self.blocks.shape[0]
        D = self.blocks.shape[1]
        K = n_classes
        M = (state.theta.shape[0] - K) // (D + 1 + K)
        self.dims = (D, M, K)
        self.params = network.unflatten(state.theta, D, M, K)  # views: the optimiser's steps show through
        self.layout = _Layout(D, M, K, data.lam)

    def epoch(self) -> float | None:
        """One pass over every block; the epoch's loss, or None on a non-finite error."""
        state, settings = self.state, self.settings
        if settings.shuffle and self.blocks.n_blocks > 1:  # one block: the in-memory epoch exactly
            if state.rng is None:
                raise ValueError("shuffling needs state.rng")
            order = state.rng.permutation(self.blocks.n_blocks)
        else:
            order = np.arange(self.blocks.n_blocks)
        total = 0.0  # sum over batches of sum_n w_n E_n
        for _, (X, k, w) in self.blocks.iter_blocks(order):
            part = _block_data(X, k, w, state.theta.dtype, self.data.output)
            part.lam = self.data.lam
            part.checked = True  # the blocks were checked on the workers
            run = self._inner(state, part, settings, self.n_classes)
            sub = run.batches()
            if sub is None:
                return None
            total += sub
        if not np.isfinite(state.theta).all():
            return None
        return total / self.n + self.layout.penalty(state.theta)  # (data term + decay at the epoch's end) / S
