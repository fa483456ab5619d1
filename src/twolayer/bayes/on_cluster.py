"""The Bayesian network on Dask collections: the evidence procedure with every sum on the cluster.

Everything the evidence procedure reads from the data is a sum over patterns:
the MAP fit's error and gradient (:mod:`twolayer.training.blocked`), the
curvature at the MAP weights (:mod:`twolayer.curvature`, which sums Dask
data block by block) and the data error :math:`E(w_{\\text{MAP}})`
(:func:`data_error`). So ``fit`` on Dask arrays persists the patterns, their
1-of-K targets and weights on the workers once (when they fit in half the
workers' memory; otherwise every pass reads them from their source), and the
procedure runs unchanged: only numbers, W-vectors and the W × W curvature
come back to this process, where the posterior is factorised.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twolayer import cluster
from twolayer import network as nw
from twolayer.errors import DataError
from twolayer.network import Params

__all__ = ["data_error", "prepare", "prepare_laplace", "targets"]


def _block_error(X: np.ndarray, T: np.ndarray, s: np.ndarray | None, params: Params, activation: str) -> float:
    return nw.error(params, X, T, s, activation=activation)


def data_error(params: Params, X: Any, T: Any, s: Any, *, activation: str) -> float:
    """:math:`E(w) = -\\sum_n s_n \\sum_k t_{nk} \\ln y_{nk}`, summed over a cluster's blocks when ``X`` is Dask."""
    if not cluster.is_dask(X):
        return nw.error(params, X, T, s, activation=activation)
    blocks = cluster.as_row_blocks(X, T, s, names=("X", "T", "sample_weight"))
    return float(blocks.map_sum(_block_error, Params(*(np.asarray(p) for p in params)), activation))


def _one_of_k(k: np.ndarray, K: int) -> np.ndarray:
    return np.eye(K)[k]


def _class_index(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    return np.searchsorted(classes, labels).astype(np.intp)


def targets(y: Any, classes: np.ndarray, n_rows_chunks: tuple[int, ...] | None = None) -> tuple[Any, Any]:
    """The class indices and 1-of-K targets of Dask labels ``y``, lazily; labels outside ``classes`` refused.

    Returns
    -------
    k : Dask array of shape (N,)
    T : Dask array of shape (N, K)
    """
    import dask.array as da

    yd = cluster.frame_to_array(y)
    if yd.ndim == 2 and yd.shape[1] == 1:
        yd = yd[:, 0]
    if yd.ndim != 1:
        raise DataError(f"y must hold one label per pattern, got a Dask array of shape {yd.shape}")
    if n_rows_chunks is not None:
        yd = yd.rechunk((n_rows_chunks,))
    unseen = np.setdiff1d(np.asarray(da.unique(yd).compute()), classes)
    if unseen.size:
        raise DataError(f"y contains labels {unseen.tolist()!r} not among classes_ {classes.tolist()!r}")
    K = len(classes)
    k = yd.map_blocks(_class_index, classes, dtype=np.intp)
    T = k.map_blocks(_one_of_k, K, new_axis=1, chunks=(k.chunks[0], (K,)), dtype=np.float64)
    return k, T


def prepare(model: Any, X: Any, y: Any, sample_weight: Any) -> tuple[Any, Any, Any, Any]:
    """Check Dask data for the Bayesian network and hold it on the workers: ``(X, T, s, k)``.

    ``model.classes_`` (the labels found, at least two) and ``n_features_in_``
    are set; see :func:`prepare_laplace` for the rest.
    """
    X, T, s, k, classes = _checked(X, y, sample_weight, None, None, type(model).__name__)
    model.classes_ = classes
    model.n_features_in_ = int(X.shape[1])
    if hasattr(model, "feature_names_in_"):
        del model.feature_names_in_
    return X, T, s, k


def prepare_laplace(
    X: Any, y: Any, sample_weight: Any, classes: np.ndarray, n_features: int
) -> tuple[Any, Any, Any, Any]:
    """Check Dask data against a fitted model's classes and features and hold it on the workers: ``(X, T, s, k)``.

    ``X`` is float64, its blocks of rows whole patterns; ``T`` the 1-of-K
    targets, ``s`` the weights (or None) and ``k`` the class indices, in the
    same blocks.

    Raises
    ------
    DataError
        For rows that do not match, labels outside ``classes``, bad weights, the wrong number of features.
    NonFiniteInput
        Naming the block, row and column of the first NaN or infinite feature.
    """
    X, T, s, k, _ = _checked(X, y, sample_weight, classes, n_features, "the model")
    return X, T, s, k


def _checked(
    X: Any, y: Any, sample_weight: Any, classes: np.ndarray | None, n_features: int | None, who: str
) -> tuple[Any, Any, Any, Any, np.ndarray]:
    import dask.array as da

    Xd = cluster.frame_to_array(X)
    if Xd.ndim != 2:
        raise DataError(f"X must be 2-D (patterns by features), got a Dask array of shape {Xd.shape}")
    if n_features is not None and Xd.shape[1] != n_features:
        raise DataError(f"X has {Xd.shape[1]} features, but {who} was fitted on {n_features}")
    if any(np.isnan(c) for c in Xd.chunks[0]):
        Xd = Xd.compute_chunk_sizes()
    Xd = Xd.astype(np.float64).rechunk({1: -1})
    yd = cluster.frame_to_array(y)
    if not cluster.is_dask(yd):
        yd = da.from_array(np.asarray(y), chunks=(Xd.chunks[0],))
    if any(np.isnan(c) for c in yd.chunks[0]):
        yd = yd.compute_chunk_sizes()
    if yd.shape[0] != Xd.shape[0]:
        raise DataError(f"X has {Xd.shape[0]} rows but y has {yd.shape[0]}: they must describe the same patterns")
    if classes is None:
        classes = np.asarray(da.unique(yd).compute())
        if classes.shape[0] < 2:
            raise DataError(f"{who} needs samples of at least 2 classes; got {classes.shape[0]}")
    k, T = targets(yd, classes, Xd.chunks[0])
    s = None
    if sample_weight is not None:
        s = sample_weight if cluster.is_dask(sample_weight) else da.from_array(np.asarray(sample_weight, np.float64))
        s = s.astype(np.float64)
        if s.shape != (Xd.shape[0],):
            raise DataError(f"sample_weight must have shape ({Xd.shape[0]},), got {s.shape}")
        s = s.rechunk((Xd.chunks[0],))
        bad, positive = da.compute(da.any(~da.isfinite(s) | (s < 0)), da.any(s > 0))
        if bad or not positive:
            raise DataError("sample_weight must hold finite, non-negative numbers, at least one positive")
    Xd, T, s, k = cluster.persist_if_fits(Xd, T, s, k)
    cluster.as_row_blocks(Xd, names=("X",)).check_finite(0, "X")
    return Xd, T, s, k, classes
