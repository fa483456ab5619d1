"""The MAP network under a grouped Gaussian prior.

:math:`w_{\\text{MAP}}` minimises
:math:`\\tilde E(w) = E(w) + \\sum_g \\tfrac{\\alpha_g}{2} \\lVert w_g \\rVert^2`
(PRML eq. 5.112 with one precision per group, biases included); the Laplace
posterior (:mod:`twolayer.bayes.posterior`) is centred there. The minimisation
is the package's one L-BFGS trainer, :func:`twolayer.training.optim.train_lbfgs`,
with a decay per group; on arrays of a device's namespace (PyTorch, CuPy,
``array_api_strict``) the same minimisation runs through
:func:`twolayer.training.on_device.train_full_batch_on_device`, every error
and gradient computed where the patterns are.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from twolayer import network as nw
from twolayer.bayes.posterior import _as_float64, _check_X, _shape_of
from twolayer.cluster import as_row_blocks, is_dask
from twolayer.network import Params
from twolayer.prior import PriorPrecision, as_prior_precision
from twolayer.training import optim
from twolayer.training.on_device import to_host, train_full_batch_on_device

__all__ = ["MapFit", "map_estimate"]


class MapFit(NamedTuple):
    """The result of :func:`map_estimate`."""

    params: Params  #: w_MAP
    data_error: float  #: E(w_MAP), summed over patterns
    objective: float  #: E~(w_MAP) = E + sum_g alpha_g ||w_g||^2 / 2
    n_iter: int  #: L-BFGS iterations
    n_evaluations: int  #: evaluations of the error and gradient
    converged: bool  #: whether L-BFGS met its tolerance within max_iter
    loss_curve: list[float]  #: E~ / S after each iteration (S the total pattern weight)


def map_estimate(
    X: Any,
    T: Any,
    prior_precision: PriorPrecision,
    *,
    init: Params,
    sample_weight: Any | None = None,
    activation: str = "tanh",
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> MapFit:
    """Minimise :math:`\\tilde E(w) = E(w) + \\sum_g \\tfrac{\\alpha_g}{2} \\lVert w_g \\rVert^2` by L-BFGS.

    A call to the package's L-BFGS trainer,
    :func:`twolayer.training.optim.train_lbfgs`, with the decay
    :math:`\\alpha_g / S` on every group: SciPy's L-BFGS-B minimises
    :math:`\\tilde E / S` on the network's exact gradient, with :math:`S` the
    total pattern weight (``N`` without weights), so that ``tol`` does not
    depend on the number of patterns and an integer weight is the same as
    repeating its pattern.

    Parameters
    ----------
    X : array-like of shape (N, D)
    T : array-like of shape (N, K)
        Targets, rows summing to one.
    prior_precision : float, 4 floats, or mapping
        :math:`\\alpha_g`; see :func:`as_prior_precision`.
    init : Params
        The starting weights (not modified); NumPy, or arrays of any
        namespace (brought to the host once, where SciPy's driver keeps them).
    sample_weight : array-like of shape (N,), optional
    activation : str, default "tanh"
    max_iter : int, default 1000
    tol : float, default 1e-6
        L-BFGS-B's ``gtol``: the largest gradient component of
        :math:`\\tilde E / S` at which it stops.

    Returns
    -------
    MapFit
        On a device's ``X`` (an array of a namespace other than NumPy) the
        weights ``params`` are arrays of that namespace and device, and ``T``
        and ``sample_weight`` must be arrays there too; the numbers are
        Python floats.

    References
    ----------
    PRML §5.5.1 (weight decay, eq. 5.112) and §5.7.1 (eq. 5.166);
    D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large
    scale optimization", Mathematical Programming 45 (1989).
    """
    alpha = as_prior_precision(prior_precision)
    if _on_a_device(X):
        return _map_on_device(X, T, alpha, init, sample_weight, activation, max_iter, tol)
    init = _as_float64(init)
    D, M, K = _shape_of(init)
    if is_dask(X):
        return _map_on_cluster(X, T, alpha, init, sample_weight, activation, max_iter, tol)
    X = _check_X(X, D)
    N = X.shape[0]
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (N, K):
        raise ValueError(f"T must have shape ({N}, {K}), got {T.shape}")
    if not np.all(np.isfinite(T)) or np.any(T < 0):
        raise ValueError("T must hold finite, non-negative targets (rows summing to one)")
    s = None
    if sample_weight is not None:
        s = np.asarray(sample_weight, dtype=np.float64)
        if s.shape != (N,) or not np.all(np.isfinite(s)) or np.any(s < 0) or not np.any(s > 0):
            raise ValueError(f"sample_weight must be {N} finite non-negative numbers, not all zero")
    S = float(N) if s is None else float(np.sum(s))
    data = optim.TrainingData(*_class_index_rows(X, T, s, S), lam=tuple(float(a) for a in alpha / S))
    state = optim.TrainingState(theta=np.array(nw.flatten(init), dtype=np.float64))
    settings = _lbfgs_settings(activation, max_iter, tol)
    return _run_lbfgs(state, data, settings, (D, M, K), S, lambda p: nw.error(p, X, T, s, activation=activation))


def _lbfgs_settings(activation: str, max_iter: int, tol: float) -> optim.LbfgsSettings:
    # ftol: a relative reduction of tol * sqrt(eps) per step, far below SciPy's default, so that gtol decides.
    return optim.LbfgsSettings(
        activation=activation,
        max_iter=int(max_iter),
        max_fun=15000,
        tol=float(tol),
        ftol=float(tol) * np.finfo(np.float64).eps ** 0.5,
    )


def _run_lbfgs(
    state: optim.TrainingState,
    data: optim.TrainingData,
    settings: optim.LbfgsSettings,
    dims: tuple[int, int, int],
    S: float,
    error: Any,
) -> MapFit:
    """Train, and the MAP fit with its data error ``error(params)``."""
    reason, _ = optim.train_lbfgs(state, data, settings, n_classes=dims[2])
    params = nw.unflatten(state.theta, *dims)
    assert state.loss is not None  # train_lbfgs always ends with the final value
    return MapFit(
        params=params,
        data_error=float(error(params)),
        objective=state.loss * S,
        n_iter=state.n_iter,
        n_evaluations=state.t // data.n,
        converged=reason == "converged",
        loss_curve=state.loss_curve,
    )


def _argmax_rows(T: np.ndarray) -> np.ndarray:
    """Per block: the class index of each 1-of-K target row."""
    return np.argmax(T, axis=1).astype(np.intp)


def _map_on_cluster(
    X: Any,
    T: Any,
    alpha: np.ndarray,
    init: Params,
    sample_weight: Any,
    activation: str,
    max_iter: int,
    tol: float,
) -> MapFit:
    """:func:`map_estimate` on Dask data: every error and gradient a sum over the cluster's blocks.

    ``T`` must hold 1-of-K rows (the estimator's targets); the weights are
    rescaled to mean one on the workers, as ``_class_index_rows`` does in memory.
    """
    from twolayer.bayes.on_cluster import data_error

    D, M, K = _shape_of(init)
    N = int(X.shape[0])
    S = float(N) if sample_weight is None else float(sample_weight.sum().compute())
    k = T.map_blocks(_argmax_rows, drop_axis=1, dtype=np.intp)
    w = None if sample_weight is None else sample_weight * (N / S)
    blocks = as_row_blocks(X, k, w, names=("X", "T", "sample_weight"))
    data = optim.TrainingData(X=blocks, k=np.empty(0, dtype=np.intp), w=None, lam=tuple(float(a) for a in alpha / S))
    state = optim.TrainingState(theta=np.array(nw.flatten(init), dtype=np.float64))
    settings = _lbfgs_settings(activation, max_iter, tol)
    return _run_lbfgs(
        state, data, settings, (D, M, K), S, lambda p: data_error(p, X, T, sample_weight, activation=activation)
    )


def _on_a_device(X: Any) -> bool:
    """Whether ``X`` is an array of a namespace other than NumPy (and not Dask)."""
    return (
        not is_dask(X)
        and not isinstance(X, np.ndarray)
        and array_api_compat.is_array_api_obj(X)
        and not array_api_compat.is_numpy_array(X)
    )


def _map_on_device(
    X: Any,
    T: Any,
    alpha: np.ndarray,
    init: Params,
    sample_weight: Any,
    activation: str,
    max_iter: int,
    tol: float,
) -> MapFit:
    """:func:`map_estimate` on a device's arrays: SciPy's L-BFGS-B here, every error and gradient there.

    The minimisation of the host (:func:`map_estimate`): :math:`\\tilde E / S`
    with the decay :math:`\\alpha_g / S` on every group, the pattern weights
    scaled to mean one, a target row that is not 1-of-K one row per class.
    ``T`` and ``sample_weight`` must be arrays of the namespace and device of
    ``X``; the weights ``params`` of the result are too.
    """
    init = _as_float64(Params(*(to_host(p) for p in init)))
    D, M, K = _shape_of(init)
    xp = array_api_compat.array_namespace(X)
    if not xp.isdtype(X.dtype, "real floating"):
        X = xp.astype(X, xp.float64)
    X = _check_X(X, D, like=X)
    device = array_api_compat.device(X)
    dtype = X.dtype
    N = X.shape[0]
    for name, a in (("T", T), ("sample_weight", sample_weight)):
        if a is not None and not (
            _on_a_device(a) and array_api_compat.array_namespace(a) is xp and array_api_compat.device(a) == device
        ):
            raise ValueError(f"{name} must be an array of {xp.__name__} on {device}, where X is")
    T = T if T.dtype == dtype else xp.astype(T, dtype)
    if tuple(T.shape) != (N, K):
        raise ValueError(f"T must have shape ({N}, {K}), got {tuple(T.shape)}")
    if not bool(xp.all(xp.isfinite(T)) & xp.all(T >= 0)):
        raise ValueError("T must hold finite, non-negative targets (rows summing to one)")
    s = None
    if sample_weight is not None:
        s = sample_weight if sample_weight.dtype == dtype else xp.astype(sample_weight, dtype)
        if tuple(s.shape) != (N,) or not bool(xp.all(xp.isfinite(s)) & xp.all(s >= 0) & xp.any(s > 0)):
            raise ValueError(f"sample_weight must be {N} finite non-negative numbers, not all zero")
    S = float(N) if s is None else float(xp.sum(s))
    rows, targets, weight = _class_index_rows_on_device(xp, X, T, s, S)
    lam = tuple(float(a) for a in alpha / S)
    host_dtype = np.float32 if dtype == xp.float32 else np.float64
    state = optim.TrainingState(theta=np.array(nw.flatten(init), dtype=host_dtype))
    settings = _lbfgs_settings(activation, max_iter, tol)
    theta = xp.asarray(state.theta, device=device, copy=True)
    reason, _, theta = train_full_batch_on_device(
        state, theta, rows, targets, weight, lam, settings, method="lbfgs", n_classes=K
    )
    params = nw.unflatten(theta, D, M, K)
    assert state.loss is not None  # the trainer always ends with the final value
    return MapFit(
        params=params,
        data_error=float(nw.error(params, X, T, s, activation=activation)),
        objective=state.loss * S,
        n_iter=state.n_iter,
        n_evaluations=state.t // rows.shape[0],
        converged=reason == "converged",
        loss_curve=state.loss_curve,
    )


def _class_index_rows_on_device(xp: Any, X: Any, T: Any, s: Any, S: float) -> tuple[Any, Any, Any]:
    """:func:`_class_index_rows` on a device: the rows, their 1-of-K targets and weights times ``rows / S``.

    1-of-K targets (the estimator's) stay where they are; other rows are
    found on the host (their indices, once) and gathered there.
    """
    one_of_k = bool(xp.all((T == 0.0) | (T == 1.0)) & xp.all(xp.sum(T, axis=1) == 1.0))
    if one_of_k:
        rows, targets, weight = X, T, s
    else:
        device = array_api_compat.device(X)
        T_host = to_host(T)
        n, k = np.nonzero(T_host)
        n_dev = xp.asarray(n.astype(np.int64), device=device)
        rows = xp.take(X, n_dev, axis=0)
        targets = xp.take(
            xp.eye(T.shape[1], dtype=X.dtype, device=device), xp.asarray(k.astype(np.int64), device=device), axis=0
        )
        weight = xp.asarray(T_host[n, k], dtype=X.dtype, device=device)
        if s is not None:
            weight = weight * xp.take(s, n_dev, axis=0)
    if weight is None:
        return rows, targets, None
    return rows, targets, weight * (rows.shape[0] / S)


def _class_index_rows(
    X: np.ndarray, T: np.ndarray, s: np.ndarray | None, S: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The patterns as the trainer takes them: inputs, class indices :math:`k` and weights times ``N / S``.

    The cross-entropy of a target row is a weighted sum over classes,
    :math:`-s_n \\sum_k t_{nk} \\ln y_k(x_n)`, so a pattern whose target is not
    one-of-K becomes one row per class with :math:`t_{nk} > 0`, of class index
    :math:`k` and weight :math:`s_n t_{nk}`: the same error and gradient. 1-of-K
    targets keep their rows. The trainer divides the weighted error by its
    number of rows, so the weights are scaled to make that the error over
    :math:`S = \\sum_n s_n`, the scale of the decay ``alpha / S``.
    """
    one_of_k = bool(np.all((T == 0.0) | (T == 1.0)) and np.all(np.sum(T, axis=1) == 1.0))
    if one_of_k:
        k = np.argmax(T, axis=1).astype(np.intp)
        weight = s
    else:
        n, k = np.nonzero(T)  # (n, k) row-major: each pattern's classes together
        k = k.astype(np.intp)
        weight = T[n, k] * (1.0 if s is None else s[n])
        X = X[n]
    X = np.ascontiguousarray(X)
    if weight is None:
        return X, k, None
    return X, k, weight * (X.shape[0] / S)
