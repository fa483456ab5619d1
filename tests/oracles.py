"""Test oracles that share no code with twolayer, and shared test settings: one copy for every test module.

The network's error written again from PRML eqs. 5.9 and 5.24 in HIPS
autograd's NumPy (so autograd can give its gradient, Hessian and Jacobians), with
the parameter vector sliced by hand in :func:`twolayer.network.flatten`'s
documented order, and one relative error for comparing results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import autograd.numpy as anp
import numpy as np

from twolayer import network

#: Each registered hidden activation written independently, in autograd's NumPy.
AUTOGRAD_ACTIVATIONS: dict[str, Callable[[Any], Any]] = {
    "tanh": anp.tanh,
    "logistic": lambda a: 1.0 / (1.0 + anp.exp(-a)),
    "relu": lambda a: anp.maximum(a, 0.0),
    "identity": lambda a: a,
}

#: The optimiser settings of the tests' SGD and Adam runs (MLPClassifier's names; copy before changing).
OPTIMIZER_SETTINGS = {
    "learning_rate_init": 0.05,
    "momentum": 0.9,
    "nesterovs_momentum": True,
    "learning_rate": "constant",
    "power_t": 0.5,
    "beta_1": 0.9,
    "beta_2": 0.999,
    "epsilon": 1e-8,
}

#: The activations the tests parametrise over: the registry itself, so that a new entry is tested everywhere.
ACTIVATIONS = sorted(network.ACTIVATIONS)


def rel_err(a: Any, b: Any) -> float:
    """The largest absolute difference over the larger of the two largest magnitudes."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), np.max(np.abs(b)), 1e-300))


def split(theta: Any, D: int, M: int, K: int) -> tuple[Any, Any, Any, Any]:
    """Slice the flat vector by hand: W1 (D, M) row-major, b1, W2 (M, K) row-major, b2."""
    o = 0
    W1 = anp.reshape(theta[o : o + D * M], (D, M))
    o += D * M
    b1 = theta[o : o + M]
    o += M
    W2 = anp.reshape(theta[o : o + M * K], (M, K))
    o += M * K
    b2 = theta[o : o + K]
    return W1, b1, W2, b2


def logits(theta: Any, X: Any, D: int, M: int, K: int, activation: str = "tanh") -> Any:
    """a_k(x_n) = sum_j w_kj h(sum_i w_ji x_i + w_j0) + w_k0 for every pattern (eq. 5.9 before the softmax)."""
    W1, b1, W2, b2 = split(theta, D, M, K)
    return anp.dot(AUTOGRAD_ACTIVATIONS[activation](anp.dot(X, W1) + b1), W2) + b2


def error(
    theta: Any,
    X: Any,
    T: Any,
    s: Any,
    D: int,
    M: int,
    K: int,
    activation: str = "tanh",
    alpha: float | Sequence[float] = 0.0,
) -> Any:
    """E = -sum_n s_n sum_k t_nk ln softmax(a_n)_k + sum_g alpha_g / 2 ||w_g||^2 (eqs. 5.24 and 5.112).

    ``s`` may be None (every weight one); ``alpha`` is one precision for the
    weights W1 and W2 (biases free), or four, one per group (W1, b1, W2, b2).
    """
    a = logits(theta, X, D, M, K, activation)
    top = anp.max(a, axis=1, keepdims=True)
    log_y = a - top - anp.log(anp.sum(anp.exp(a - top), axis=1, keepdims=True))
    per_pattern = -anp.sum(T * log_y, axis=1)
    E = anp.sum(per_pattern if s is None else s * per_pattern)
    groups = split(theta, D, M, K)
    alphas = (alpha, 0.0, alpha, 0.0) if np.ndim(alpha) == 0 else tuple(alpha)
    return E + sum(0.5 * a_g * anp.sum(w_g**2) for a_g, w_g in zip(alphas, groups))
