"""The full-batch trainers: L-BFGS, and the second-order solvers with exact Hessian-vector products."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from twolayer import network
from twolayer.cluster import RowBlocks
from twolayer.errors import TrainingDiverged
from twolayer.training.batch import _batch_error_and_gradient, _Workspace
from twolayer.training.diagnosis import diverged
from twolayer.training.objective import _Layout
from twolayer.training.solvers import SECOND_ORDER_METHODS
from twolayer.training.state import EpochHook, LbfgsSettings, TrainingData, TrainingState, _dims

__all__ = ["SECOND_ORDER_METHODS", "SMALL_PROBLEM", "record_iteration", "train_lbfgs", "train_second_order"]

# N M (D + K) below which a full-batch run keeps BLAS to one thread (see train_lbfgs)
SMALL_PROBLEM = 1 << 22


class _FullBatch:
    """:math:`\\tilde E / S` and its gradient over all rows, in the working dtype.

    Rows are processed in chunks of at most ``chunk`` patterns (by default
    :data:`twolayer.network.CHUNK_ROWS`) so that the ``N x M`` intermediates
    never exist whole and stay in cache; partial gradients accumulate.
    """

    def __init__(
        self,
        data: TrainingData,
        dims: tuple[int, int, int],
        dtype: Any,
        activation: str,
        chunk: int | None = None,
        *,
        total_rows: int | None = None,
    ) -> None:
        D, M, K = dims
        self.data, self.dims, self.activation = data, dims, activation
        rows = data.X.shape[0]
        # N of E/N: the rows here, or of the whole when these are one block of it (twolayer.cluster)
        self.N = rows if total_rows is None else int(total_rows)
        self.chunk = int(min(rows, network.CHUNK_ROWS if chunk is None else chunk))
        dense = isinstance(data.X, np.ndarray)
        self.ws = _Workspace(self.chunk, D, M, K, dtype, gather=False, output=data.output)
        self.dense = dense
        self.grad = np.empty(network.n_params(D, M, K), dtype=dtype)
        self.part = np.empty_like(self.grad) if self.chunk < rows else None
        self.layout = _Layout(D, M, K, data.lam)
        self.scratch = np.empty_like(self.grad)
        self.n_eval = 0
        self._hessp_data: tuple[Any, np.ndarray] | None = None

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Returns ``(f, g)``; ``g`` is an internal buffer, overwritten by the next call."""
        with np.errstate(over="ignore", invalid="ignore"):  # the caller checks f for finiteness
            return self._evaluate(theta)

    def _evaluate(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        data, N = self.data, self.N
        rows = data.X.shape[0]
        params = network.unflatten(theta, *self.dims)
        E = 0.0
        for start in range(0, rows, self.chunk):
            stop = min(start + self.chunk, rows)
            out = self.grad if start == 0 else self.part
            w = None if data.w is None else data.w[start:stop]
            E += _batch_error_and_gradient(
                params,
                data.X[start:stop],
                data.k[start:stop],
                w,
                1.0 / N,
                self.activation,
                self.ws,
                network.unflatten(out, *self.dims),
                data.output,
            )
            if start > 0:
                self.grad += self.part
        self.layout.add_decay(theta, self.grad, self.scratch)
        self.n_eval += 1
        f = E / N + self.layout.penalty(theta)  # eqs. 5.112 and 5.122–5.123, divided by S
        return f, self.grad

    def hessp(self, theta: np.ndarray, v: np.ndarray) -> np.ndarray:
        """:math:`H v` of :math:`\\tilde E / S` at ``theta`` (exact, by the R operator; a new array).

        .. math::

            H v = \\frac{1}{N} \\Bigl(\\nabla^2 \\sum_n \\bar w_n E_n\\Bigr) v + \\lambda_g v_g .

        Sparse ``X`` is densified once, at the first product.
        """
        from twolayer import curvature  # only the second-order solvers need it

        X, T = self._dense_data()
        D, M, K = self.dims
        dtype = self.grad.dtype
        decay = self.layout.decay
        # The decay of sum_n w_n E_n is lam_g N, so that the product divided by N below has lam_g.
        N = self.N
        alpha_sum: float | tuple[float, ...] = decay[0] * N if self.layout.weight_decay else tuple(a * N for a in decay)
        Hv = curvature.hessian_vector_product(
            network.unflatten(np.asarray(theta, dtype=dtype), D, M, K),
            X,
            T,
            np.asarray(v, dtype=dtype),
            self.data.w,
            activation=self.activation,
            alpha=alpha_sum,
            output=self.data.output,
        )
        out = network.flatten(Hv)
        out /= N
        return out

    def _dense_data(self) -> tuple[Any, np.ndarray]:
        """``X`` dense and the targets ``T`` (1-of-K, or the indicator rows), made once."""
        if self._hessp_data is None:
            data, dtype = self.data, self.grad.dtype
            X = data.X.toarray() if sp.issparse(data.X) else data.X
            n, K = X.shape[0], self.dims[2]
            if data.output == "sigmoid":
                T = np.asarray(data.k, dtype=dtype)  # the indicator targets themselves
            else:
                T = np.zeros((n, K), dtype=dtype)
                T[np.arange(n), data.k] = 1.0  # 1-of-K targets for the curvature module
            self._hessp_data = (X, T)
        return self._hessp_data


def _full_batch(data: TrainingData, dims: tuple[int, int, int], dtype: Any, activation: str) -> Any:
    """The evaluator of :math:`\\tilde E / S`: over rows here, or over the blocks of a cluster."""
    if isinstance(data.X, RowBlocks):
        from twolayer.training.blocked import BlockedFullBatch

        return BlockedFullBatch(data, dims, dtype, activation)
    return _FullBatch(data, dims, dtype, activation)


class _StopLbfgs(Exception):
    """Raised from the L-BFGS callback to end the run at an iterate."""


def record_iteration(state: TrainingState, f: float, verbose: bool) -> None:
    """An iteration of SciPy's driver ended at the error ``f``: count it and keep its loss in ``state``."""
    state.n_iter += 1
    state.loss = f
    state.loss_curve.append(f)
    best = math.inf if state.best_loss is None else state.best_loss
    state.best_loss = min(best, f)
    if verbose:
        print(f"Iteration {state.n_iter}, loss = {f:.8f}")


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
    ``gtol`` is ``settings.tol``, ``ftol`` is ``settings.ftol`` (when set),
    ``maxiter`` and ``maxfun`` are ``settings.max_iter`` and
    ``settings.max_fun``. After every iteration the
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
    Diverged
        (a :class:`~twolayer.errors.TrainingDiverged`) When the error is
        non-finite, with its likely cause (:mod:`twolayer.training.diagnosis`);
        ``state.theta`` then holds the last accepted iterate.

    References
    ----------
    D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large
    scale optimization", Math. Programming 45 (1989); PRML §5.2.4.
    """
    theta = state.theta
    dims = _dims(theta, data, n_classes)
    full = _full_batch(data, dims, theta.dtype, settings.activation)
    accepted = theta.astype(np.float64)  # the last accepted iterate, in SciPy's dtype
    last: dict[str, Any] = {"x": None, "f": math.nan}

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        np.copyto(theta, x, casting="same_kind")  # float64 -> working dtype at the boundary
        f, g = full(theta)
        state.t += full.N
        if not math.isfinite(f):
            np.copyto(theta, accepted, casting="same_kind")
            raise diverged(
                "L-BFGS met a non-finite error",
                data.lam,
                theta.dtype,
                data.X,
                data.rows,
                suffix=" The last accepted iterate was kept.",
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

    options: dict[str, Any] = {"maxiter": settings.max_iter, "maxfun": settings.max_fun, "gtol": settings.tol}
    if settings.ftol is not None:
        options["ftol"] = settings.ftol
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
                options=options,
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


def _blas_threads(full: Any) -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread for small problems, where threads only add synchronisation."""
    D, M, K = full.dims
    if full.N * M * (D + K) < SMALL_PROBLEM:
        return threadpool_limits(limits=1, user_api="blas")
    return contextlib.nullcontext()


@contextlib.contextmanager
def _non_finite_refused(error: Callable[[], Exception]) -> Iterator[None]:
    """Turn SciPy's refusal of a non-finite vector into ``error()``.

    trust-ncg takes norms with NumPy's ``asarray_chkfinite``, which raises a
    ValueError on infinity or NaN. The start is finite and so are the inputs
    (the estimator checked them), so such a value can only come from an
    overflow on the way: a divergence, reported as one. Other ValueErrors pass.
    """
    try:
        yield
    except ValueError as exc:
        if isinstance(exc, TrainingDiverged) or "infs or NaNs" not in str(exc):
            raise
        raise error() from None


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
    Diverged
        (a :class:`~twolayer.errors.TrainingDiverged`) When the final error
        is non-finite, or an overflow reached a Hessian-vector product or
        SciPy's norms (a rejected non-finite trial error is not one: the
        methods shrink their steps); it names the likely cause
        (:mod:`twolayer.training.diagnosis`), and ``state.theta`` holds the last
        iterate.

    References
    ----------
    PRML §5.4.6 (fast multiplication by the Hessian); J. Nocedal and S. J.
    Wright, *Numerical Optimization* (2006), §7.1; M. F. Møller, Neural
    Networks 6 (1993).
    """
    from twolayer.training import second_order

    if method not in SECOND_ORDER_METHODS:
        raise ValueError(f"method must be one of {SECOND_ORDER_METHODS}, got {method!r}")
    theta = state.theta
    dims = _dims(theta, data, n_classes)
    dtype = theta.dtype
    full = _full_batch(data, dims, dtype, settings.activation)
    N = full.N
    trial = np.empty_like(theta)

    def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        np.copyto(trial, x, casting="same_kind")  # the solver's point, in the working dtype
        f, g = full(trial)
        state.t += N
        return f, g.copy()  # the solvers keep gradients; the buffer is reused

    def hessp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = full.hessp(x, v)
        if not np.isfinite(out).all():
            # The product of a finite Hessian and vector overflowed (or the solver's own
            # arithmetic did, handing over a non-finite v): conjugate gradients on NaN would
            # run to their iteration limit, thousands of products, and end nowhere.
            raise failure("met a non-finite curvature product (an overflow)")
        return out

    def failure(what: str) -> Exception:
        return diverged(f"{method} {what}", data.lam, dtype, data.X, data.rows, suffix=" The last iterate was kept.")

    def callback(intermediate_result: Any) -> bool:
        np.copyto(theta, intermediate_result.x, casting="same_kind")
        record_iteration(state, float(intermediate_result.fun), settings.verbose)
        return bool(on_epoch is not None and on_epoch(state))

    state.n_iter = 0
    with (
        _blas_threads(full),
        np.errstate(over="ignore", invalid="ignore"),
        _non_finite_refused(lambda: failure("met a non-finite value (an overflow)")),
    ):
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
        raise failure("ended at a non-finite error")
    state.loss = float(result.fun)
    reason = {0: "converged", 1: "max_iter", 3: "callback"}.get(int(result.status), "failed")
    return reason, str(result.message)
