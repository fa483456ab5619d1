"""The minibatch optimisers, SGD (with classical or Nesterov momentum) and Adam.

Each updates one flat parameter vector in place, with the weight decay of
PRML eqs. 5.112 and 5.122–5.123 folded into the step: the vector is cut into
consecutive segments, each with the weight by which ``lam`` decays it. Every
scalar in an update is a Python ``float`` (or, for the compiled kernels of
:mod:`twolayer.training.kernels`, a scalar of the working dtype), so that
float32 vectors stay float32 (NumPy promotes float32 arrays with NumPy
float64 scalars). The NumPy updates run over chunks of :data:`UFUNC_CHUNK`
entries, so that their dozen passes stay in cache; elementwise, the chunking
cannot change a bit.

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), §5.2.4.
Kingma, D. P. and Ba, J., "Adam: a method for stochastic optimization", ICLR 2015.
Y. Nesterov, "A method for solving the convex programming problem with
convergence rate O(1/k^2)", 1983; I. Sutskever et al., "On the importance of
initialization and momentum in deep learning", ICML 2013.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from twolayer.training.kernels import _kernels

__all__ = [
    "LEARNING_RATE_SCHEDULES",
    "SGD",
    "UFUNC_CHUNK",
    "Adam",
    "Optimizer",
    "Segments",
    "make_optimizer",
    "optimizer_keywords",
]

LEARNING_RATE_SCHEDULES = ("constant", "invscaling", "adaptive")

# Consecutive blocks of the flat vector, each with its weight in the decay: an optimiser step
# decays block s by lam * weight_s (True counts one, False zero).
Segments = tuple[tuple[slice, bool | float], ...]

#: Entries per chunk of the NumPy updates: the dozen passes of a chunk then run in cache.
UFUNC_CHUNK = 1 << 15


def _block_decay(weight: bool | float, lam: float) -> float:
    """The decay of a block: ``lam`` times its weight, and zero for an undecayed block whatever ``lam``."""
    return lam * float(weight) if weight else 0.0


def _adam_numpy(
    theta: np.ndarray,
    g: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    tmp: np.ndarray,
    lam: float,
    beta1: float,
    c1: float,
    beta2: float,
    c2: float,
    eps: float,
    step: float,
) -> None:
    """One Adam step over a block, as ufuncs; ``g`` and ``tmp`` are overwritten.

    ``c1`` and ``c2`` are ``1 - beta1`` and ``1 - beta2``, rounded once by the caller.
    """
    if lam != 0.0:
        np.multiply(theta, lam, out=tmp)
        g += tmp  # g + lam w  (eq. 5.112)
    np.multiply(g, c1, out=tmp)
    m *= beta1
    m += tmp  # m = beta1 m + (1 - beta1) g
    np.multiply(g, g, out=tmp)
    tmp *= c2
    v *= beta2
    v += tmp  # v = beta2 v + (1 - beta2) g^2
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


def _kernel_blocks(segments: Segments, lam: float, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """The segments as the compiled kernels take them: (start, stop) rows and each block's decay."""
    bounds = np.array([(block.start, block.stop) for block, _ in segments], dtype=np.intp).reshape(-1, 2)
    lams = np.array([_block_decay(weight, lam) for _, weight in segments], dtype=dtype)
    return bounds, lams


def _whole(theta: np.ndarray) -> Segments:
    return ((slice(0, theta.shape[0]), False),)


def _chunks(segments: Segments) -> Iterator[tuple[slice, bool | float]]:
    """The segments cut into blocks of at most :data:`UFUNC_CHUNK` entries."""
    for block, weight in segments:
        for start in range(block.start, block.stop, UFUNC_CHUNK):
            yield slice(start, min(start + UFUNC_CHUNK, block.stop)), weight


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

        ``segments`` are consecutive blocks of the vector, each with a weight
        ``c`` (``True`` counting one, ``False`` zero): on a block the step follows
        :math:`g + c \\lambda w` (eqs. 5.112, 5.122–5.123); without ``segments`` no
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
        for block, weight in _chunks(segments):
            decay = _block_decay(weight, lam)
            _sgd_numpy(theta[block], grad[block], v[block], tmp[block], decay, mu, eta, self.nesterov)

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

        As :meth:`SGD.step`: :math:`g + c \\lambda w` on each of the ``segments``,
        :math:`g` elsewhere; ``grad`` is scratch.
        """
        x = theta.dtype.type  # scalars in the working dtype, as NumPy casts Python floats
        beta1, beta2, m, v, tmp = self.beta_1, self.beta_2, self.m, self.v, self._tmp
        self.t += 1
        self.fresh = False
        step = self.learning_rate * math.sqrt(1.0 - beta2**self.t) / (1.0 - beta1**self.t)  # eta_t
        segments = segments or _whole(theta)
        kernels = _kernels()
        args = (beta1, 1.0 - beta1, beta2, 1.0 - beta2, self.epsilon, step)
        if kernels is not None:
            bounds, lams = self._blocks(segments, lam, theta.dtype)
            kernels.adam(theta, grad, m, v, bounds, lams, *map(x, args))
            return
        for block, weight in _chunks(segments):
            _adam_numpy(theta[block], grad[block], m[block], v[block], tmp[block], _block_decay(weight, lam), *args)

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


def optimizer_keywords(solver: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The keywords of :class:`SGD` or :class:`Adam` from the estimator's hyperparameters.

    ``settings`` holds the estimator's names: ``learning_rate_init`` and, for
    SGD, ``momentum``, ``nesterovs_momentum``, ``learning_rate``, ``power_t``;
    for Adam ``beta_1``, ``beta_2``, ``epsilon``.
    """
    if solver == "sgd":
        return {
            "learning_rate_init": settings["learning_rate_init"],
            "momentum": settings["momentum"],
            "nesterov": settings["nesterovs_momentum"],
            "schedule": settings["learning_rate"],
            "power_t": settings["power_t"],
        }
    if solver == "adam":
        return {
            "learning_rate_init": settings["learning_rate_init"],
            "beta_1": settings["beta_1"],
            "beta_2": settings["beta_2"],
            "epsilon": settings["epsilon"],
        }
    raise ValueError(f"no minibatch optimiser named {solver!r}; choose 'sgd' or 'adam'")


def make_optimizer(solver: str, n_params: int, dtype: Any, settings: dict[str, Any]) -> Optimizer:
    """A fresh optimiser for ``solver`` ("sgd" or "adam") from its hyperparameters (see :func:`optimizer_keywords`)."""
    keywords = optimizer_keywords(solver, settings)
    return SGD(n_params, dtype, **keywords) if solver == "sgd" else Adam(n_params, dtype, **keywords)
