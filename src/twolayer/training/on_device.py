"""The trainers on arrays of any array-API namespace: PyTorch or CuPy on a GPU, ``array_api_strict``.

The same function as everywhere in :mod:`twolayer.training` (PRML eqs.
5.112 and 5.122–5.123 divided by :math:`S`), computed where the arrays are:

- :func:`train_minibatch_on_device` runs the whole minibatch loop there: the
  gather of a batch (``take``), the forward and backward products of
  :mod:`twolayer.network`, the decay and the Adam or SGD step are array
  operations of the namespace, with no transfer per batch. Once per epoch the
  order of the rows goes there (drawn here by ``state.rng``, so that a seed
  gives the same order on every device) and the epoch's loss and a finiteness
  flag come back; with early stopping, the held-out score too, computed
  there. Between fits the optimiser's state lives on the host, in the
  estimator's :class:`~twolayer.training.state.TrainingState` (moved there
  and back once per fit, :func:`device_optimizer`), so that a warm start or
  ``partial_fit`` goes on exactly, on the device or on the host.
- :func:`train_full_batch_on_device` computes :math:`\\tilde E / S`, its
  gradient and its exact Hessian-vector products there (the R operator of
  :mod:`twolayer.curvature`), while SciPy's L-BFGS-B, Newton-CG, trust-region
  or scaled conjugate gradients drive from here: each evaluation moves the W
  weights there and W gradient entries back, :math:`O(W)` per evaluation
  against the :math:`O(N M (D + K))` products.

Rows are taken in chunks of :data:`DEVICE_CHUNK_ROWS` (a GPU wants large
products; the CPU paths' cache-sized chunks would launch thousands of small
kernels). The optimisers' schedules (``invscaling``, ``adaptive``) are those
of :mod:`twolayer.training.optimizers`; only their vector algebra is here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from twolayer import network
from twolayer.network import Params
from twolayer.prior import Decay, decay_per_group, is_weight_decay
from twolayer.training.diagnosis import diverged
from twolayer.training.full_batch import record_iteration
from twolayer.training.minibatch import reached_plateau, track_improvement
from twolayer.training.optimizers import SGD, Adam, Optimizer
from twolayer.training.state import EpochHook, LbfgsSettings, MinibatchSettings, TrainingState

__all__ = [
    "DEVICE_CHUNK_ROWS",
    "DeviceAdam",
    "DeviceOptimizer",
    "DeviceSGD",
    "DeviceWeights",
    "device_optimizer",
    "free_memory",
    "to_host",
    "train_full_batch_on_device",
    "train_minibatch_on_device",
]

#: Rows per chunk of a full-batch evaluation on a device.
DEVICE_CHUNK_ROWS = 1 << 16

Array = Any


def to_host(a: Any) -> np.ndarray:
    """A NumPy copy of an array of any namespace and device (the one transfer it costs).

    NumPy arrays and array-likes that are no array of a namespace (lists of
    labels, say) are taken as ``numpy.asarray`` takes them.
    """
    if isinstance(a, np.ndarray) or not array_api_compat.is_array_api_obj(a) or array_api_compat.is_numpy_array(a):
        return np.asarray(a)
    from sklearn.utils._array_api import move_to

    return np.asarray(move_to(a, xp=np, device="cpu"))


def free_memory(xp: Any, device: Any) -> int | None:
    """The bytes free on ``device``: a CUDA device's own through PyTorch or CuPy, this machine's for the host.

    None where the namespace cannot say (another accelerator): nothing is then checked.
    """
    from twolayer.resources import available_memory

    if array_api_compat.is_torch_namespace(xp):
        import torch

        where = torch.device(device)
        if where.type == "cuda":
            free, _ = torch.cuda.mem_get_info(where)
            return int(free)
        return available_memory() if where.type == "cpu" else None
    if array_api_compat.is_cupy_namespace(xp):
        import cupy

        with cupy.cuda.Device(getattr(device, "id", device)):
            free, _ = cupy.cuda.runtime.memGetInfo()
        return int(free)
    return available_memory()  # array_api_strict and the like hold their arrays in this process


def _decay_vector(
    xp: Any, dims: tuple[int, int, int], lam: Decay, dtype: Any, device: Any
) -> tuple[Array, list[float]]:
    """:math:`\\lambda_g` on every flat position of group g (zero where undecayed), and the four :math:`\\lambda_g`."""
    D, M, K = dims
    decay = list(decay_per_group(lam))
    sizes = (D * M, M, M * K, K)
    return xp.concat([xp.full((n,), a_g, dtype=dtype, device=device) for a_g, n in zip(decay, sizes)]), decay


def _penalty(xp: Any, theta: Array, dims: tuple[int, int, int], decay: list[float], weight_decay: bool) -> Array:
    """:math:`\\sum_g \\tfrac{\\lambda_g}{2} \\lVert w_g \\rVert^2` as a 0-d array of the namespace."""
    W1, b1, W2, b2 = network.unflatten(theta, *dims)
    norms = [xp.sum(p * p) for p in (W1, b1, W2, b2)]
    if weight_decay:
        return 0.5 * decay[0] * (norms[0] + norms[2])
    total = xp.zeros((), dtype=theta.dtype, device=array_api_compat.device(theta))
    for lam, norm in zip(decay, norms):
        if lam:
            total = total + 0.5 * lam * norm
    return total


def _rows(xp: Any, a: Array | None, idx: Array) -> Array | None:
    return None if a is None else xp.take(a, idx, axis=0)


def _error_and_gradient(
    xp: Any, theta: Array, dims: tuple[int, int, int], X: Array, T: Array, w: Array | None, activation: str, output: str
) -> tuple[Array, Array]:
    """:math:`\\sum_n \\bar w_n E_n` (0-d) and its flat gradient, chunk by chunk, all in the namespace."""
    act = network.get_activation(activation)
    params = network.unflatten(theta, *dims)
    N = X.shape[0]
    E, grad = None, None
    for start in range(0, N, DEVICE_CHUNK_ROWS):
        stop = min(start + DEVICE_CHUNK_ROWS, N)
        Xc, Tc = X[start:stop, ...], T[start:stop, ...]
        wc = None if w is None else w[start:stop]
        E_c, g_c = network.backprop_arrays(xp, act, params, Xc, Tc, wc, output)
        g_flat = network.flatten(g_c)
        E = E_c if E is None else E + E_c
        grad = g_flat if grad is None else grad + g_flat
    assert E is not None and grad is not None  # N > 0: the estimator refuses empty data
    return E, grad


class DeviceAdam(Adam):
    """:class:`~twolayer.training.optimizers.Adam` with its moments in the namespace of the weights.

    Every step makes new arrays (no array is written in place), so that a
    snapshot of the state is a set of references (:meth:`snapshot`).
    """

    def __init__(self, xp: Any, like: Array, **settings: float) -> None:
        super().__init__(0, np.float64, **settings)
        self.xp = xp
        self.m = xp.zeros_like(like)
        self.v = xp.zeros_like(like)

    def step_array(self, theta: Array, g: Array) -> Array:
        """The next weights after a step along ``g`` (decay included), as a new array."""
        beta1, beta2 = self.beta_1, self.beta_2
        self.t += 1
        self.fresh = False
        eta = self.learning_rate * math.sqrt(1.0 - beta2**self.t) / (1.0 - beta1**self.t)  # eta_t
        self.m = beta1 * self.m + (1.0 - beta1) * g
        self.v = beta2 * self.v + (1.0 - beta2) * (g * g)
        return theta - eta * self.m / (self.xp.sqrt(self.v) + self.epsilon)

    def snapshot(self) -> dict[str, Any]:
        """The state as it stands (references: the steps make new arrays), for :meth:`restore`."""
        return {"learning_rate": self.learning_rate, "t": self.t, "m": self.m, "v": self.v, "fresh": self.fresh}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Back to a :meth:`snapshot`."""
        self.learning_rate, self.t, self.m, self.v = (
            snapshot["learning_rate"],
            snapshot["t"],
            snapshot["m"],
            snapshot["v"],
        )
        self.fresh = snapshot["fresh"]

    def load_from(self, host: Adam) -> None:
        """Take the state of ``host``, an optimiser of the host (its moments moved here once)."""
        self.learning_rate, self.t, self.fresh = host.learning_rate, host.t, host.fresh
        if not host.fresh:
            self.m, self.v = _moved(self.xp, host.m, self.m), _moved(self.xp, host.v, self.v)

    def store_into(self, host: Optimizer) -> None:
        """Give ``host`` this state (the moments brought back once), so that a later fit, here or there, goes on."""
        assert isinstance(host, Adam)  # the host optimiser this one was made from (device_optimizer)
        if not self.fresh:
            host.load_state(
                {"learning_rate": self.learning_rate, "t": self.t, "m": to_host(self.m), "v": to_host(self.v)}
            )


class DeviceSGD(SGD):
    """:class:`~twolayer.training.optimizers.SGD` with its velocity in the namespace of the weights.

    As :class:`DeviceAdam`, every step makes new arrays.
    """

    def __init__(self, xp: Any, like: Array, **settings: Any) -> None:
        super().__init__(0, np.float64, **settings)
        self.xp = xp
        self.velocity = xp.zeros_like(like)

    def step_array(self, theta: Array, g: Array) -> Array:
        """The next weights after a step along ``g`` (decay included), as a new array."""
        mu, eta = self.momentum, self.learning_rate
        self.fresh = False
        self.velocity = mu * self.velocity - eta * g
        if self.nesterov:
            return theta + mu * self.velocity - eta * g
        return theta + self.velocity

    def snapshot(self) -> dict[str, Any]:
        """The state as it stands (references: the steps make new arrays), for :meth:`restore`."""
        return {"learning_rate": self.learning_rate, "velocity": self.velocity, "fresh": self.fresh}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Back to a :meth:`snapshot`."""
        self.learning_rate, self.velocity, self.fresh = (
            snapshot["learning_rate"],
            snapshot["velocity"],
            snapshot["fresh"],
        )

    def load_from(self, host: SGD) -> None:
        """Take the state of ``host``, an optimiser of the host (its velocity moved here once)."""
        self.learning_rate, self.fresh = host.learning_rate, host.fresh
        if not host.fresh:
            self.velocity = _moved(self.xp, host.velocity, self.velocity)

    def store_into(self, host: Optimizer) -> None:
        """Give ``host`` this state (the velocity brought back once), so that a later fit, here or there, goes on."""
        assert isinstance(host, SGD)  # the host optimiser this one was made from (device_optimizer)
        if not self.fresh:
            host.load_state({"learning_rate": self.learning_rate, "velocity": to_host(self.velocity)})


DeviceOptimizer = DeviceAdam | DeviceSGD


def _moved(xp: Any, a: np.ndarray, like: Array) -> Array:
    """The host array ``a`` as an array of ``xp`` with the dtype and device of ``like``."""
    return xp.asarray(a, dtype=like.dtype, device=array_api_compat.device(like), copy=True)


def device_optimizer(host: Optimizer, xp: Any, like: Array) -> DeviceOptimizer:
    """An optimiser for weights like ``like`` that goes on from ``host`` (the estimator's, kept in its state).

    The state of a training lives on the host between fits (so that a model
    fitted on a device can go on on the host, and the other way round);
    during one it lives here. :meth:`DeviceAdam.store_into` gives it back.
    """
    if isinstance(host, Adam):
        adam = DeviceAdam(
            xp,
            like,
            learning_rate_init=host.learning_rate_init,
            beta_1=host.beta_1,
            beta_2=host.beta_2,
            epsilon=host.epsilon,
        )
        adam.load_from(host)
        return adam
    sgd = DeviceSGD(
        xp,
        like,
        learning_rate_init=host.learning_rate_init,
        momentum=host.momentum,
        nesterov=host.nesterov,
        schedule=host.schedule,
        power_t=host.power_t,
    )
    sgd.load_from(host)
    return sgd


@dataclass
class DeviceWeights:
    """The weights of a training on a device, as flat arrays of its namespace.

    Attributes
    ----------
    theta : array of shape (W,)
        The running weights: after a divergence, those of the last finished epoch.
    best : array of shape (W,) or None
        With early stopping, the weights of the best validation score so far
        (of an earlier fit too, on a warm start); None before any.
    """

    theta: Array
    best: Array | None = None


def train_minibatch_on_device(
    state: TrainingState,
    weights: DeviceWeights,
    X: Array,
    T: Array,
    w: Array | None,
    lam: Decay,
    settings: MinibatchSettings,
    optimizer: DeviceOptimizer,
    *,
    n_classes: int,
    output: str = "softmax",
    rows: np.ndarray | None = None,
    validation_score: Callable[[Params], float] | None = None,
    on_epoch: Callable[[TrainingState, Array], bool] | None = None,
) -> str:
    """Epochs of Adam or SGD steps on the device until a stopping rule fires.

    As :func:`twolayer.training.optim.train_minibatch`: the same steps,
    losses, stopping rules, early stopping and single epoch of ``partial_fit``
    (``settings.incremental``), with the weights (``weights``), the patterns
    ``X``, the targets ``T`` (1-of-K or 0/1 rows) and the weights ``w`` (mean
    one over the training rows, or None) arrays of one namespace and device.
    ``state`` keeps the record (``loss_curve``, ``n_iter``, ``t``, the
    validation scores and the no-improvement count) and the shuffling
    generator, both on the host; ``weights`` is updated as training goes.

    Parameters
    ----------
    state : TrainingState
    weights : DeviceWeights
        The running and best weights; ``state.theta`` and
        ``state.best_theta`` are not read or written (the caller brings
        these back once, at the end).
    X, T, w : arrays
        Every pattern, its targets and its weight, the held-out rows included.
    lam : Decay
    settings : MinibatchSettings
    optimizer : DeviceAdam or DeviceSGD
    n_classes : int
    output : {"softmax", "sigmoid"}
    rows : ndarray or None
        The training rows (the host's indices into ``X``); None for all.
    validation_score : callable, optional
        ``validation_score(params) -> float`` of device weights, higher is
        better: what early stopping watches (required then).
    on_epoch : callable, optional
        ``on_epoch(state, theta)`` after each epoch; True stops.

    Returns
    -------
    str
        ``"converged"``, ``"max_iter"``, ``"callback"`` or ``"incremental"``.

    Raises
    ------
    Diverged
        When an epoch's error or weights are not finite; ``weights.theta``
        and the optimiser then are as after the previous epoch.
    """
    xp = array_api_compat.array_namespace(X, weights.theta)
    device = array_api_compat.device(X)
    D, K = X.shape[1], n_classes
    M = (weights.theta.shape[0] - K) // (D + 1 + K)
    dims = (D, M, K)
    decay_vec, decay = _decay_vector(xp, dims, lam, weights.theta.dtype, device)
    weight_decay = is_weight_decay(decay_per_group(lam))
    decayed = any(decay)
    n = X.shape[0] if rows is None else rows.shape[0]
    B = int(min(max(settings.batch_size, 1), n))
    act = network.get_activation(settings.activation)
    state.n_iter = 0
    for _ in range(settings.max_iter):
        theta, saved = weights.theta, optimizer.snapshot()
        order = state.rng.permutation(n) if settings.shuffle and state.rng is not None else np.arange(n)
        if rows is not None:
            order = rows[order]
        order_dev = xp.asarray(order.astype(np.int64), device=device)  # the one transfer of the epoch
        # Overflow is caught by the finiteness check below and reported as divergence (a namespace
        # computing with NumPy, array_api_strict, would warn of it first).
        with np.errstate(over="ignore", invalid="ignore"):
            total = xp.zeros((), dtype=theta.dtype, device=device)
            for start in range(0, n, B):
                idx = order_dev[start : min(start + B, n)]
                b = idx.shape[0]
                Xb, Tb, wb = xp.take(X, idx, axis=0), xp.take(T, idx, axis=0), _rows(xp, w, idx)
                E_b, g = network.backprop_arrays(xp, act, network.unflatten(theta, *dims), Xb, Tb, wb, output)
                total = total + E_b
                grad = network.flatten(g) / b
                if decayed:
                    grad = grad + decay_vec * theta  # along (1/B) sum w_n grad E_n + lam_g w_g
                theta = optimizer.step_array(theta, grad)
            loss_dev = total / n + _penalty(xp, theta, dims, decay, weight_decay)
            # As on the host: the data term and the weights must be finite; the decay of huge but finite
            # weights may overflow into an infinite loss, which is recorded (the next epoch fails).
            finite = bool(xp.isfinite(total) & xp.all(xp.isfinite(theta)))
            loss = float(loss_dev)  # one value back per epoch
        if not finite:
            optimizer.restore(saved)  # weights.theta is still the last finished epoch's
            raise diverged(
                f"training diverged in epoch {len(state.loss_curve) + 1}: the error became non-finite",
                lam,
                to_host(theta[:1]).dtype,
                np.zeros((1, 1)),
                None,
                sgd_learning_rate=optimizer.learning_rate if optimizer.name == "sgd" else None,
                learning_rate=optimizer.learning_rate_init,
                minibatch=True,
                suffix=" The weights of the last finished epoch were kept.",
            )
        weights.theta = theta
        state.n_iter += 1
        state.t += n
        state.loss = loss
        state.loss_curve.append(loss)
        if settings.verbose:
            print(f"Iteration {state.n_iter}, loss = {loss:.8f}")
        _track_improvement(state, settings, weights, validation_score, dims)
        optimizer.epoch_end(state.t)
        converged = reached_plateau(state, settings, optimizer)
        if on_epoch is not None and on_epoch(state, theta):
            return "callback"
        if converged:
            return "converged"
        if settings.incremental:
            return "incremental"
    return "max_iter"


def _track_improvement(
    state: TrainingState,
    settings: MinibatchSettings,
    weights: DeviceWeights,
    validation_score: Callable[[Params], float] | None,
    dims: tuple[int, int, int],
) -> None:
    """The best loss or score and the no-improvement counter, by the host loop's rules
    (:func:`twolayer.training.minibatch.track_improvement`); the best weights are kept as a
    reference to the epoch's array (never written in place) instead of a copy on the host."""
    score = None
    if settings.early_stopping:
        if validation_score is None:
            raise ValueError("early stopping needs a validation_score")
        score = float(validation_score(network.unflatten(weights.theta, *dims)))  # one value back per epoch
    if track_improvement(state, settings, score):
        weights.best = weights.theta


def train_full_batch_on_device(
    state: TrainingState,
    theta: Array,
    X: Array,
    T: Array,
    w: Array | None,
    lam: Decay,
    settings: LbfgsSettings,
    *,
    method: str,
    n_classes: int,
    output: str = "softmax",
    on_epoch: EpochHook | None = None,
) -> tuple[str, str, Array]:
    """L-BFGS-B or a second-order method driven by SciPy here, with every product on the device.

    ``state.theta`` (NumPy, the working dtype) follows the iterates; the
    device weights are remade from it at each evaluation (W entries there, W
    back). Returns ``(reason, message, theta)`` as the in-memory trainers do,
    ``theta`` the final weights on the device.
    """
    import scipy.optimize

    from twolayer import curvature
    from twolayer.training import second_order
    from twolayer.training.full_batch import _non_finite_refused

    xp = array_api_compat.array_namespace(X, theta)
    device = array_api_compat.device(X)
    dtype = theta.dtype
    D, K = X.shape[1], n_classes
    M = (theta.shape[0] - K) // (D + 1 + K)
    dims = (D, M, K)
    N = X.shape[0]
    decay_vec, decay = _decay_vector(xp, dims, lam, dtype, device)
    weight_decay = is_weight_decay(decay_per_group(lam))
    host = state.theta  # NumPy, working dtype

    def on_device(x: np.ndarray) -> Array:
        np.copyto(host, x, casting="same_kind")
        return xp.asarray(host, device=device, copy=True)

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        t = on_device(x)
        E, g = _error_and_gradient(xp, t, dims, X, T, w, settings.activation, output)
        f = E / N + _penalty(xp, t, dims, decay, weight_decay)
        g = g / N + decay_vec * t
        state.t += N
        return float(f), to_host(g).astype(np.float64)

    alpha_sum = tuple(a * N for a in decay)

    def hessp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        t = on_device(x)
        v_dev = xp.asarray(np.asarray(v, dtype=host.dtype), device=device)
        Hv = curvature.hessian_vector_product(
            network.unflatten(t, *dims),
            X,
            T,
            network.unflatten(v_dev, *dims),
            w,
            activation=settings.activation,
            alpha=alpha_sum,
            output=output,
        )
        out = to_host(network.flatten(Hv)).astype(np.float64) / N
        if not np.isfinite(out).all():
            raise failure("met a non-finite curvature product (an overflow)")
        return out

    def failure(what: str) -> Exception:
        return diverged(
            f"{method} {what}", lam, host.dtype, np.zeros((1, 1)), None, suffix=" The last iterate was kept."
        )

    def callback(intermediate_result: Any) -> bool | None:
        np.copyto(host, intermediate_result.x, casting="same_kind")
        record_iteration(state, float(intermediate_result.fun), settings.verbose)
        stop = bool(on_epoch is not None and on_epoch(state))
        if method == "lbfgs":
            if stop:
                raise StopIteration
            return None
        return stop

    state.n_iter = 0
    start = host.astype(np.float64)
    reason, message = "converged", ""
    with np.errstate(over="ignore", invalid="ignore"), _non_finite_refused(lambda: failure("met a non-finite value")):
        if method == "lbfgs":
            options: dict[str, Any] = {"maxiter": settings.max_iter, "maxfun": settings.max_fun, "gtol": settings.tol}
            if settings.ftol is not None:
                options["ftol"] = settings.ftol
            result = scipy.optimize.minimize(
                fun, start, method="L-BFGS-B", jac=True, callback=callback, options=options
            )
            if result.status == 99 or "callback" in str(result.message).lower():
                reason = "callback"
            elif not result.success:
                reason = "max_iter" if result.status == 1 else "failed"
        elif method == "scg":
            result = second_order.scaled_conjugate_gradient(
                fun, start, hessp=hessp, max_iter=settings.max_iter, tol=settings.tol, callback=callback
            )
            reason = {0: "converged", 1: "max_iter", 3: "callback"}.get(int(result.status), "failed")
        else:
            result = second_order.minimize_newton(
                fun, start, hessp=hessp, method=method, max_iter=settings.max_iter, tol=settings.tol, callback=callback
            )
            reason = {0: "converged", 1: "max_iter", 3: "callback"}.get(int(result.status), "failed")
        message = str(result.message)
    if not math.isfinite(float(result.fun)):
        raise failure("ended at a non-finite error")
    np.copyto(host, result.x, casting="same_kind")
    state.loss = float(result.fun)
    return reason, message, xp.asarray(host, device=device, copy=True)
