"""Check the backpropagated gradient against central differences.

Every derivative :math:`\\partial E / \\partial w_i` that
:func:`twolayer.network.gradient` returns is compared with the central
difference (PRML eq. 5.69)

.. math::

    \\frac{\\partial E}{\\partial w_i} \\approx
    \\frac{E(w + \\epsilon e_i) - E(w - \\epsilon e_i)}{2 \\epsilon},

whose error is :math:`O(\\epsilon^2)`, and the directional derivative along a
few random unit vectors :math:`v` is compared with :math:`\\nabla E \\cdot v`
(as HIPS autograd's ``check_grads`` does). The error :math:`E` is the **sum**
over patterns (PRML eq. 5.24), as everywhere in this package.

Relative error
--------------
For an analytic value :math:`a` and a numerical value :math:`n` the reported
relative error is

.. math::

    r = \\frac{|a - n|}{\\max(|a| + |n|,\\ \\text{floor})},
    \\qquad \\text{floor} = \\text{atol} / \\text{rtol},

and a derivative passes when :math:`r \\le \\text{rtol}`, that is when
:math:`|a - n| \\le \\max(\\text{rtol}\\,(|a| + |n|),\\ \\text{atol})`. The sum
:math:`|a| + |n|` in the denominator is symmetric in the two numbers and is
zero only when both are. The floor is needed because a central difference
cannot resolve a derivative below its rounding noise: :math:`E` itself is
computed with an absolute rounding error of about :math:`u \\cdot S`, where
:math:`u` is the float64 unit roundoff and :math:`S` the scale of the sums that
make up :math:`E`, so the difference quotient carries an absolute error of about
:math:`u S / \\epsilon` whatever the size of the derivative. By default ``atol``
is ten times that estimate,

.. math::

    \\text{atol} = 10\\, \\frac{u}{\\epsilon} \\sum_n |s_n|
    \\Bigl(1 + \\max_k |a_{nk}| + \\sum_k |t_{nk} \\ln y_{nk}|\\Bigr),

with :math:`a_{nk}` the output activations, :math:`s_n` the pattern weights and
:math:`\\epsilon` the step (measured on random networks, the largest error of a
correct gradient stays below 0.4 of the unscaled estimate).

With ``output="sigmoid"`` (multilabel targets: K independent logistic outputs
and the binary cross-entropy, ``docs/derivation.md``, "Sigmoid outputs") the
error checked is that one, and :math:`|t_{nk} \\ln y_{nk}|` in ``atol`` becomes
:math:`|t_{nk} \\ln y_{nk} + (1 - t_{nk}) \\ln(1 - y_{nk})|`.

Everything is computed in float64, whatever the precision of the inputs: the
check is of the formulas, not of float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from twolayer import network
from twolayer.network import Params
from twolayer.teaching.gradcheck_report import BlockCheck, DirectionalCheck, EntryCheck, GradCheckReport

__all__ = [
    "BLOCKS",
    "BlockCheck",
    "DirectionalCheck",
    "EntryCheck",
    "GradCheckReport",
    "check_gradient",
    "check_random_network",
    "numerical_gradient",
    "random_problem",
]

BLOCKS: tuple[str, ...] = Params._fields  # ("W1", "b1", "W2", "b2"), the order of flatten

GradientFn = Callable[..., Params]

_UNIT_ROUNDOFF = float(np.finfo(np.float64).eps)
_NOISE_FACTOR = 10.0  # headroom over the rounding-noise estimate (see the module docstring)


# --------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------


def _as_float64(a: Any, name: str) -> np.ndarray:
    """A float64 NumPy copy of ``a`` (a copy, so nothing of the caller's can change)."""
    try:
        arr = np.array(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array, got {type(a).__name__}: {exc}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinity")
    return arr


def _validated(
    params: Params | Sequence[Any],
    X: Any,
    T: Any,
    sample_weight: Any | None,
) -> tuple[Params, np.ndarray, np.ndarray, np.ndarray | None]:
    if len(params) != len(BLOCKS):
        raise ValueError(f"params must hold four arrays {BLOCKS}, got {len(params)}")
    W1, b1, W2, b2 = (_as_float64(p, name) for p, name in zip(params, BLOCKS))
    X = _as_float64(X, "X")
    T = _as_float64(T, "T")
    D, _, K = network.param_shapes(Params(W1, b1, W2, b2))
    if X.ndim != 2 or X.shape[1] != D:
        raise ValueError(f"X must have shape (N, D) with D = {D}, got {X.shape}")
    N = X.shape[0]
    if T.shape != (N, K):
        raise ValueError(f"T must have shape (N, K) = ({N}, {K}), got {T.shape}")
    s = None
    if sample_weight is not None:
        s = _as_float64(sample_weight, "sample_weight")
        if s.shape != (N,):
            raise ValueError(f"sample_weight must have shape (N,) = ({N},), got {s.shape}")
    return Params(W1, b1, W2, b2), X, T, s


def _check_settings(eps: float, rtol: float, atol: float | None) -> None:
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    if not (np.isfinite(rtol) and rtol > 0):
        raise ValueError(f"rtol must be a positive finite number, got {rtol!r}")
    if atol is not None and not (np.isfinite(atol) and atol >= 0):
        raise ValueError(f"atol must be a non-negative finite number or None, got {atol!r}")


def _rounding_noise(
    params: Params,
    X: np.ndarray,
    T: np.ndarray,
    s: np.ndarray | None,
    eps: float,
    activation: str,
    output: str = "softmax",
) -> float:
    """The default ``atol``: ten times the estimated rounding error of a difference quotient."""
    _, a2 = network.hidden_and_output(params, X, activation=activation)  # (N, K)
    log_y = network.log_forward(params, X, activation=activation, output=output)  # (N, K)
    terms = T * log_y
    if output == "sigmoid":
        terms = terms + (1 - T) * (log_y - a2)  # ln(1 - y) = ln y - a for the logistic sigmoid
    per_pattern = 1.0 + np.max(np.abs(a2), axis=1) + np.sum(np.abs(terms), axis=1)  # (N,)
    weights = np.ones(X.shape[0]) if s is None else np.abs(s)
    return _NOISE_FACTOR * _UNIT_ROUNDOFF * float(weights @ per_pattern) / eps


def _rel_error(a: float, n: float, floor: float) -> float:
    # The tiny bound only matters when atol = 0 and both numbers are zero: 0 / tiny = 0.
    return float(abs(a - n) / max(abs(a) + abs(n), floor, np.finfo(np.float64).tiny))


def _sample_indices(sizes: Sequence[int], max_params: int | None, rng: np.random.Generator) -> list[np.ndarray]:
    """Flat indices to check within each block: all, or a random sample with one per block at least."""
    total = sum(sizes)
    if max_params is None or max_params >= total:
        return [np.arange(size) for size in sizes]
    # One entry from every block first, so that no block goes unchecked, then the
    # rest uniformly (without replacement) from everything not yet chosen.
    offsets = np.cumsum([0, *sizes])
    chosen = [offsets[b] + rng.integers(size) for b, size in enumerate(sizes)]
    remaining = np.setdiff1d(np.arange(total), chosen)
    chosen.extend(rng.choice(remaining, size=max_params - len(sizes), replace=False))
    chosen_arr = np.sort(np.asarray(chosen))
    return [
        chosen_arr[(chosen_arr >= offsets[b]) & (chosen_arr < offsets[b + 1])] - offsets[b] for b in range(len(sizes))
    ]


# --------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------


def numerical_gradient(
    params: Params | Sequence[Any],
    X: Any,
    T: Any,
    sample_weight: Any | None = None,
    *,
    activation: str = "tanh",
    eps: float = 1e-6,
    output: str = "softmax",
) -> Params:
    """The gradient of :func:`twolayer.network.error` by central differences.

    Each derivative is :math:`[E(w_+) - E(w_-)] / (w_{+,i} - w_{-,i})` with
    :math:`w_\\pm = w \\pm \\epsilon e_i`, dividing by the step as actually
    represented in float64 rather than by :math:`2 \\epsilon`. Two evaluations
    of :math:`E` per parameter: meant for checking, not for training.

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    T : array of shape (N, K)
    sample_weight : array of shape (N,), optional
    activation : str, default "tanh"
    eps : float, default 1e-6
        The step :math:`\\epsilon`.
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity and its error, as for :func:`twolayer.network.error`.

    Returns
    -------
    Params
        float64 NumPy arrays in the layout of ``params``.

    References
    ----------
    PRML §5.3.3, eq. 5.69.
    """
    _check_settings(eps, 1.0, None)
    network.get_activation(activation)
    network.check_output(output)
    p, X, T, s = _validated(params, X, T, sample_weight)
    theta = np.asarray(network.flatten(p))
    g = np.empty_like(theta)
    for i in range(theta.size):
        g[i] = _difference_quotient(theta, i, eps, p, X, T, s, activation, output)
    D, M, K = X.shape[1], p.W1.shape[1], p.W2.shape[1]
    return Params(*(np.array(b) for b in network.unflatten(g, D, M, K)))


def _difference_quotient(
    theta: np.ndarray,
    i: int,
    eps: float,
    p: Params,
    X: np.ndarray,
    T: np.ndarray,
    s: np.ndarray | None,
    activation: str,
    output: str = "softmax",
) -> float:
    """The central difference along coordinate ``i`` (PRML eq. 5.69)."""
    plus, minus = theta.copy(), theta.copy()
    plus[i] += eps
    minus[i] -= eps
    E_plus = _error_at(plus, p, X, T, s, activation, output)
    E_minus = _error_at(minus, p, X, T, s, activation, output)
    # The represented step, not 2 eps: w +- eps is rounded, and the quotient
    # should use the step actually taken.
    return float((E_plus - E_minus) / (plus[i] - minus[i]))


def _error_at(
    theta: np.ndarray,
    p: Params,
    X: np.ndarray,
    T: np.ndarray,
    s: np.ndarray | None,
    activation: str,
    output: str = "softmax",
) -> float:
    """E(w) at the flat vector ``theta``, laid out as ``p``."""
    D, M, K = X.shape[1], p.W1.shape[1], p.W2.shape[1]
    return network.error(network.unflatten(theta, D, M, K), X, T, s, activation=activation, output=output)


def check_gradient(
    params: Params | Sequence[Any],
    X: Any,
    T: Any,
    sample_weight: Any | None = None,
    *,
    activation: str = "tanh",
    eps: float = 1e-6,
    rtol: float = 1e-7,
    atol: float | None = None,
    max_params: int | None = None,
    n_directions: int = 3,
    random_state: int | np.random.Generator | None = None,
    gradient_fn: GradientFn | None = None,
    output: str = "softmax",
) -> GradCheckReport:
    """Compare the analytic gradient with central differences, entry by entry.

    Parameters
    ----------
    params : Params
        The point :math:`w` at which to check.
    X : array of shape (N, D)
    T : array of shape (N, K)
    sample_weight : array of shape (N,), optional
        As for :func:`twolayer.network.error`.
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
        For ReLU a difference across the kink at :math:`a_j = 0` is not a
        derivative; with continuous random data this has probability about
        :math:`\\epsilon` per unit and pattern.
    eps : float, default 1e-6
        The step :math:`\\epsilon` of the central differences.
    rtol : float, default 1e-7
        The tolerance on the relative error (see the module docstring).
    atol : float, optional
        The absolute agreement that always suffices; by default ten times the
        estimated rounding noise of a difference quotient (module docstring).
    max_params : int, optional
        Check at most this many parameters, drawn at random (at least one per
        block, so at least 4); all when ``None`` or when there are no more.
    n_directions : int, default 3
        How many random unit directions to check :math:`\\nabla E \\cdot v` along.
    random_state : int, numpy.random.Generator or None
        Seeds the choice of parameters and of directions.
    gradient_fn : callable, optional
        The gradient to check, called as
        ``gradient_fn(params, X, T, sample_weight, activation=activation)`` and
        returning :class:`~twolayer.network.Params` (with ``output="sigmoid"``
        also passed when ``output`` is ``"sigmoid"``); by default
        :func:`twolayer.network.gradient`.
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity and its error: softmax outputs with the
        cross-entropy (targets 1-of-K), or K logistic outputs with the binary
        cross-entropy (multilabel indicator targets; one output is allowed).

    Returns
    -------
    GradCheckReport
        Its ``passed`` says whether everything agreed; ``str(report)`` is a table.

    References
    ----------
    PRML §5.3.3 (numerical differentiation, eq. 5.69); the directional check
    follows ``check_grads`` of HIPS autograd.
    """
    _check_settings(eps, rtol, atol)
    network.get_activation(activation)
    network.check_output(output)
    if max_params is not None and (int(max_params) != max_params or max_params < len(BLOCKS)):
        raise ValueError(
            f"max_params must be None or an integer of at least {len(BLOCKS)} (one entry per block), got {max_params!r}"
        )
    if int(n_directions) != n_directions or n_directions < 0:
        raise ValueError(f"n_directions must be a non-negative integer, got {n_directions!r}")
    p, X, T, s = _validated(params, X, T, sample_weight)
    D, M, K, N = X.shape[1], p.W1.shape[1], p.W2.shape[1], X.shape[0]
    if K < 2 and output == "softmax":
        raise ValueError(
            f"the network has K = {K} output: a softmax over one class is the constant 1, so the error and "
            "every derivative are zero and the check could not fail; give at least 2 classes"
        )
    rng = np.random.default_rng(random_state)

    grad_fn = network.gradient if gradient_fn is None else gradient_fn
    grad = grad_fn(p, X, T, s, activation=activation, **({"output": output} if output != "softmax" else {}))
    grad_blocks = []
    for g, q, name in zip(grad, p, BLOCKS):
        g = np.asarray(g, dtype=np.float64)
        if g.shape != q.shape:
            raise ValueError(f"the gradient's {name} has shape {g.shape}, expected {q.shape}")
        grad_blocks.append(g)

    E = network.error(p, X, T, s, activation=activation, output=output)
    atol = _rounding_noise(p, X, T, s, eps, activation, output) if atol is None else float(atol)
    floor = atol / rtol
    theta = np.asarray(network.flatten(p))
    offsets = np.cumsum([0, *(q.size for q in p)])

    blocks = []
    for b, indices in enumerate(_sample_indices([q.size for q in p], max_params, rng)):
        name, shape, g_flat = BLOCKS[b], p[b].shape, grad_blocks[b].ravel()
        entries = []
        for flat in indices:
            a = float(g_flat[flat])
            n = _difference_quotient(theta, int(offsets[b] + flat), eps, p, X, T, s, activation, output)
            r = _rel_error(a, n, floor)
            idx = tuple(int(i) for i in np.unravel_index(flat, shape))
            entries.append(EntryCheck(name, idx, a, n, r, bool(r <= rtol)))  # NaN fails
        blocks.append(BlockCheck(name, tuple(int(d) for d in shape), tuple(entries)))

    g_theta = np.concatenate([g.ravel() for g in grad_blocks])
    directions = []
    for _ in range(int(n_directions)):
        v = rng.standard_normal(theta.size)
        v /= np.linalg.norm(v)
        plus, minus = theta + eps * v, theta - eps * v
        E_plus = _error_at(plus, p, X, T, s, activation, output)
        E_minus = _error_at(minus, p, X, T, s, activation, output)
        n = float((E_plus - E_minus) / (2 * eps))
        a = float(g_theta @ (plus - minus)) / (2 * eps)  # grad . v along the rounded step
        r = _rel_error(a, n, floor)
        directions.append(DirectionalCheck(a, n, r, bool(r <= rtol)))

    return GradCheckReport(
        blocks=tuple(blocks),
        directions=tuple(directions),
        error=float(E),
        eps=float(eps),
        rtol=float(rtol),
        atol=atol,
        activation=activation,
        n_features=int(D),
        n_hidden=int(M),
        n_classes=int(K),
        n_samples=int(N),
        output=output,
    )


def random_problem(
    n_features: int,
    n_hidden: int,
    n_classes: int,
    n_samples: int,
    *,
    random_state: int | np.random.Generator | None = None,
    output: str = "softmax",
) -> tuple[Params, np.ndarray, np.ndarray]:
    """A random float64 network and data set to check gradients on.

    The weights follow :func:`twolayer.network.init_params`; the inputs are
    standard normal and the targets 1-of-K codes of uniformly drawn classes,
    or, with ``output="sigmoid"``, indicator rows whose entries are 0 or 1
    independently with probability 1/2 (any number of labels per pattern).

    Parameters
    ----------
    n_features, n_hidden, n_classes, n_samples : int
        ``D``, ``M``, ``K`` and ``N``; each at least 1, ``K`` at least 2 for
        softmax outputs.
    random_state : int, numpy.random.Generator or None
    output : {"softmax", "sigmoid"}, default "softmax"

    Returns
    -------
    params : Params
    X : ndarray of shape (N, D)
    T : ndarray of shape (N, K)
    """
    if int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    network.check_output(output)
    if output == "sigmoid" and (int(n_classes) != n_classes or n_classes < 1):
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if output == "softmax" and (int(n_classes) != n_classes or n_classes < 2):
        raise ValueError(
            f"n_classes must be an integer of at least 2, got {n_classes!r} (one softmax class has a constant "
            "output: nothing to check)"
        )
    rng = np.random.default_rng(random_state)
    params = network.init_params(n_features, n_hidden, n_classes, random_state=rng)
    X = rng.standard_normal((int(n_samples), int(n_features)))
    if output == "sigmoid":
        T = (rng.random((int(n_samples), int(n_classes))) < 0.5).astype(np.float64)
    else:
        T = np.eye(int(n_classes))[rng.integers(int(n_classes), size=int(n_samples))]
    return params, X, T


def check_random_network(
    n_features: int,
    n_hidden: int,
    n_classes: int,
    n_samples: int,
    *,
    random_state: int | np.random.Generator | None = None,
    activation: str = "tanh",
    eps: float = 1e-6,
    rtol: float = 1e-7,
    atol: float | None = None,
    max_params: int | None = None,
    n_directions: int = 3,
    gradient_fn: GradientFn | None = None,
    output: str = "softmax",
) -> GradCheckReport:
    """Check the gradient on a random problem from :func:`random_problem`.

    One generator, seeded by ``random_state``, draws the problem and then the
    parameters and directions to check, so a seed reproduces the whole check.
    The other parameters are those of :func:`check_gradient`.

    Returns
    -------
    GradCheckReport

    References
    ----------
    PRML §5.3.3.
    """
    rng = np.random.default_rng(random_state)
    params, X, T = random_problem(n_features, n_hidden, n_classes, n_samples, random_state=rng, output=output)
    return check_gradient(
        params,
        X,
        T,
        activation=activation,
        eps=eps,
        rtol=rtol,
        atol=atol,
        max_params=max_params,
        n_directions=n_directions,
        random_state=rng,
        gradient_fn=gradient_fn,
        output=output,
    )
