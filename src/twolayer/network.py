"""The two-layer network, its cross-entropy error and exact backpropagation.

This module is the mathematics of ``docs/derivation.md`` (after
Bishop, *Pattern Recognition and Machine Learning*, chapter 5) as pure
functions. For a batch ``X`` of ``N`` patterns with ``D`` features, ``M``
hidden units and ``K`` classes:

.. math::

    a^{(1)} = X W_1 + b_1, \\quad z = h(a^{(1)}), \\quad
    a^{(2)} = z W_2 + b_2, \\quad y = \\operatorname{softmax}(a^{(2)})

Errors are **sums** over patterns (PRML eq. 5.24), never means, so that the
gradient over a concatenated batch is the sum of the gradients over its parts.

The weights are stored in scikit-learn's layout (``coefs_`` / ``intercepts_``),
which is the transpose of PRML's: :math:`w^{(1)}_{ji}` is ``W1[i-1, j-1]``,
the bias :math:`w^{(1)}_{j0}` is ``b1[j-1]``, :math:`w^{(2)}_{kj}` is
``W2[j-1, k-1]`` and :math:`w^{(2)}_{k0}` is ``b2[k-1]``. With patterns as rows,
the sums over ``i`` and ``j`` in the derivation are then plain matrix products.

Every function is written against the Python array API standard: it works on
the namespace of its inputs (NumPy, CuPy, PyTorch, ``array_api_strict``) through
``array_api_compat``. Inputs are never modified.

The working precision follows the inputs: float32 inputs compute and return
float32, float64 inputs float64; mixed float inputs promote as the namespace's
``result_type`` does; integer or boolean input is computed in float64.

It is one module so that it reads line for line beside docs/derivation.md.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from twolayer.activations import ACTIVATIONS, Activation, get_activation, register_activation

__all__ = [
    "ACTIVATIONS",
    "OUTPUTS",
    "Activation",
    "Params",
    "backprop_arrays",
    "check_output",
    "error",
    "error_and_gradient",
    "flatten",
    "forward",
    "forward_pass",
    "get_activation",
    "gradient",
    "hidden_and_output",
    "init_params",
    "log_forward",
    "log_outputs",
    "log_sigmoid",
    "log_softmax",
    "n_params",
    "param_shapes",
    "register_activation",
    "unflatten",
    "working_arrays",
]

Array = Any  # an array of any array-API namespace

#: Patterns per chunk of a large batch in :func:`error_and_gradient`. Small enough that a
#: (chunk, M) temporary stays in a core's L2 cache for M of a few hundred, large enough that
#: the products keep their speed (BENCHMARKS.md has the measurements).
CHUNK_ROWS = 2048

#: The output nonlinearities :math:`f`: ``"softmax"`` (1-of-K classes, the error of PRML eq.
#: 5.24) and ``"sigmoid"`` (K independent labels, each a logistic unit, the binary
#: cross-entropy of PRML eq. 5.21 summed over the outputs). Both are the canonical link of
#: their error, so the output error is :math:`\\delta_k = y_k - t_k` for either.
OUTPUTS = ("softmax", "sigmoid")


def check_output(output: str) -> str:
    """``output`` if it names an output nonlinearity of :data:`OUTPUTS`; else a ValueError naming it."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return output


class Params(NamedTuple):
    """The weights of a two-layer network, in scikit-learn's layout.

    Attributes
    ----------
    W1 : array of shape (D, M)
        First-layer weights; ``W1[i-1, j-1]`` is :math:`w^{(1)}_{ji}`.
    b1 : array of shape (M,)
        First-layer biases :math:`w^{(1)}_{j0}`.
    W2 : array of shape (M, K)
        Second-layer weights; ``W2[j-1, k-1]`` is :math:`w^{(2)}_{kj}`.
    b2 : array of shape (K,)
        Second-layer biases :math:`w^{(2)}_{k0}`.
    """

    W1: Array
    b1: Array
    W2: Array
    b2: Array


# --------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------


def init_params(
    n_features: int,
    n_hidden: int,
    n_classes: int,
    *,
    random_state: int | np.random.Generator | None = None,
    dtype: Any = np.float64,
) -> Params:
    """Draw initial weights by Glorot and Bengio's uniform rule.

    Every weight and bias of a layer is drawn from
    :math:`U(-b, b)` with :math:`b = \\sqrt{6 / (\\text{fan\\_in} + \\text{fan\\_out})}`,
    biases included, as scikit-learn's ``MLPClassifier`` does.

    Parameters
    ----------
    n_features, n_hidden, n_classes : int
        ``D``, ``M`` and ``K``; each at least 1.
    random_state : int, numpy.random.Generator or None
        Seed or generator; ``None`` draws fresh entropy.
    dtype : numpy dtype, default float64
        The dtype of the returned NumPy arrays.

    Returns
    -------
    Params
        NumPy arrays of shapes ``(D, M)``, ``(M,)``, ``(M, K)``, ``(K,)``.

    References
    ----------
    X. Glorot and Y. Bengio, "Understanding the difficulty of training deep
    feedforward neural networks", AISTATS 2010.
    """
    for name, value in (("n_features", n_features), ("n_hidden", n_hidden), ("n_classes", n_classes)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rng = np.random.default_rng(random_state)

    def layer(fan_in: int, fan_out: int) -> tuple[np.ndarray, np.ndarray]:
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        W = rng.uniform(-bound, bound, size=(fan_in, fan_out)).astype(dtype)
        b = rng.uniform(-bound, bound, size=fan_out).astype(dtype)
        return W, b

    W1, b1 = layer(n_features, n_hidden)
    W2, b2 = layer(n_hidden, n_classes)
    return Params(W1, b1, W2, b2)


def param_shapes(params: Params) -> tuple[int, int, int]:
    """``(D, M, K)`` read from the parameters' shapes, which must agree with one another.

    Raises
    ------
    TypeError
        If ``params`` is not a tuple of four arrays.
    ValueError
        If the arrays are not ``W1 (D, M)``, ``b1 (M,)``, ``W2 (M, K)``, ``b2 (K,)`` for one
        ``D``, ``M`` and ``K``; the message gives the shapes found.
    """
    if not isinstance(params, tuple) or len(params) != 4:
        raise TypeError(f"params must be a Params (W1, b1, W2, b2), got {type(params).__name__}")
    W1, b1, W2, b2 = params
    shapes = f"{tuple(W1.shape)}, {tuple(b1.shape)}, {tuple(W2.shape)}, {tuple(b2.shape)}"
    if W1.ndim != 2 or W2.ndim != 2 or b1.ndim != 1 or b2.ndim != 1:
        raise ValueError(f"params must hold W1 (D, M), b1 (M,), W2 (M, K), b2 (K,); got shapes {shapes}")
    D, M = W1.shape
    K = W2.shape[1]
    if b1.shape[0] != M or W2.shape[0] != M or b2.shape[0] != K:
        raise ValueError(
            f"params have inconsistent parameter shapes: W1 (D, M), b1 (M,), W2 (M, K), b2 (K,) expected, got {shapes}"
        )
    return int(D), int(M), int(K)


def n_params(n_features: int, n_hidden: int, n_classes: int) -> int:
    """The number of weights ``W = (D + 1) M + (M + 1) K``."""
    return (n_features + 1) * n_hidden + (n_hidden + 1) * n_classes


def flatten(params: Params) -> Array:
    """Concatenate the parameters into one vector.

    The order is ``W1.ravel()``, ``b1``, ``W2.ravel()``, ``b2`` (C order); the
    Hessian and every other flat quantity of this package use it.

    Returns
    -------
    array of shape (W,)
    """
    xp = array_api_compat.array_namespace(*params)
    return xp.concat([xp.reshape(p, (-1,)) for p in params])


def unflatten(theta: Array, n_features: int, n_hidden: int, n_classes: int) -> Params:
    """Split a flat vector into :class:`Params`, the inverse of :func:`flatten`.

    For a NumPy vector the four arrays are views of ``theta``, so an optimiser
    can update one flat vector in place and see the blocks change with it.
    """
    xp = array_api_compat.array_namespace(theta)
    D, M, K = n_features, n_hidden, n_classes
    expected = n_params(D, M, K)
    if theta.ndim != 1 or theta.shape[0] != expected:
        raise ValueError(
            f"theta must be a vector of length (D+1)M + (M+1)K = {expected} "
            f"for D={D}, M={M}, K={K}; got shape {tuple(theta.shape)}"
        )
    ends = np.cumsum([D * M, M, M * K, K])
    W1 = xp.reshape(theta[: ends[0]], (D, M))
    b1 = theta[ends[0] : ends[1]]
    W2 = xp.reshape(theta[ends[1] : ends[2]], (M, K))
    b2 = theta[ends[2] : ends[3]]
    return Params(W1, b1, W2, b2)


# --------------------------------------------------------------------------
# Forward propagation
# --------------------------------------------------------------------------


def working_arrays(params: Params, X: Array, *others: Array | None) -> tuple[Any, Params, Array, list[Array | None]]:
    """The array namespace of the inputs, and every input cast to the one working dtype.

    The working dtype is the ``result_type`` of the floating inputs among
    ``X`` and ``params``; integer or boolean input joins a float64 computation.

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    *others : array or None
        Further inputs (targets, sample weights) to cast alike; ``None`` stays ``None``.

    Returns
    -------
    xp : namespace
        The array-API namespace of ``X`` and ``params``.
    params : Params
        Cast to the working dtype (the same arrays where no cast is needed).
    X : array
        Cast to the working dtype.
    others : list
        Each of ``others``, cast (and made an array of ``xp`` if it was not one).
    """
    xp = array_api_compat.array_namespace(X, *params)
    floating = [a.dtype for a in (X, *params) if xp.isdtype(a.dtype, "real floating")]
    dtype = xp.result_type(*floating) if floating else xp.float64
    if len(floating) < 1 + len(params):
        # Integer or boolean input joins the float64 computation.
        dtype = xp.result_type(dtype, xp.float64)

    def cast(a: Array | None) -> Array | None:
        if a is None:
            return None
        a = a if hasattr(a, "dtype") else xp.asarray(a)
        return a if a.dtype == dtype else xp.astype(a, dtype)

    params = Params(*(cast(p) for p in params))
    return xp, params, cast(X), [cast(o) for o in others]


def _add_bias(a: Array, b: Array) -> Array:
    """``a + b`` for an array this module just made: in place where the namespace allows,
    which saves an (N, M) temporary and a pass over it (JAX arrays, say, are immutable)."""
    if array_api_compat.is_writeable_array(a):
        a += b
        return a
    return a + b


def forward_pass(xp: Any, params: Params, X: Array, act: Activation) -> tuple[Array, Array]:
    """The hidden outputs ``z`` and the output activations ``a2`` (PRML eq. 5.9).

    The building block of :func:`hidden_and_output` for callers that already
    hold the namespace and working-dtype inputs (:func:`working_arrays`) and
    the :class:`Activation`.

    Parameters
    ----------
    xp : namespace
    params : Params
        In the working dtype.
    X : array of shape (N, D)
        In the working dtype.
    act : Activation

    Returns
    -------
    z : array of shape (N, M)
        :math:`z_j = h(a_j)`.
    a2 : array of shape (N, K)
        :math:`a_k = \\sum_j w^{(2)}_{kj} z_j + w^{(2)}_{k0}`.
    """
    W1, b1, W2, b2 = params
    a1 = _add_bias(X @ W1, b1)  # (N, M)  a_j = sum_i w_ji x_i + w_j0
    z = act.h(xp, a1)  # (N, M)  z_j = h(a_j)
    a2 = _add_bias(z @ W2, b2)  # (N, K)  a_k = sum_j w_kj z_j + w_k0
    return z, a2


def _hidden_errors(xp: Any, act: Activation, z: Array, back: Array) -> Array:
    """delta_j = h'(a_j) sum_k w_kj delta_k, given ``back`` = sum_k w_kj delta_k (eq. 5.56).

    ``back`` is a product this module just made and is overwritten where the namespace
    allows, by the activation's ``hidden_delta`` when it has one.
    """
    if not array_api_compat.is_writeable_array(back):
        return act.h_prime(xp, z) * back
    if act.hidden_delta is not None:
        return act.hidden_delta(xp, z, back)
    back *= act.h_prime(xp, z)
    return back


def log_softmax(xp: Any, a2: Array) -> Array:
    """The log-softmax of each row, :math:`\\ln y_k = a_k - \\operatorname{logsumexp}(a)`.

    Finite for any finite ``a2`` (the logarithm of the softmax would not be).

    Parameters
    ----------
    xp : namespace
    a2 : array of shape (N, K)
        The output activations.

    Returns
    -------
    array of shape (N, K)

    References
    ----------
    PRML eq. 4.104 (the softmax).
    """
    shifted = a2 - xp.max(a2, axis=1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))


def log_sigmoid(xp: Any, a2: Array) -> Array:
    """The log-sigmoid of every entry, :math:`\\ln \\sigma(a) = -\\ln(1 + e^{-a})`.

    Computed as ``-logaddexp(0, -a)``, finite for any finite ``a2`` (where
    :math:`\\ln \\sigma(a)` computed directly gives :math:`-\\infty` once
    :math:`\\sigma(a)` rounds to zero, near :math:`a = -745` in float64).
    :math:`\\ln(1 - \\sigma(a)) = \\ln \\sigma(-a)`.

    Parameters
    ----------
    xp : namespace
    a2 : array of shape (N, K)
        The output activations.

    Returns
    -------
    array of shape (N, K)

    References
    ----------
    PRML eq. 4.59 (the logistic sigmoid).
    """
    return -xp.logaddexp(xp.zeros_like(a2), -a2)


def log_outputs(xp: Any, a2: Array, output: str = "softmax") -> Array:
    """:math:`\\ln y_k` for the output nonlinearity ``output``: :func:`log_softmax` or :func:`log_sigmoid`."""
    return log_sigmoid(xp, a2) if check_output(output) == "sigmoid" else log_softmax(xp, a2)


def _pattern_errors(xp: Any, a2: Array, T: Array, output: str) -> tuple[Array, Array]:
    """:math:`E_n` of each pattern and :math:`\\ln y` for either output nonlinearity.

    Softmax: :math:`E_n = -\\sum_k t_k \\ln y_k` (PRML eq. 5.24). Sigmoid: the
    binary cross-entropy of each output summed over outputs,
    :math:`E_n = -\\sum_k [t_k \\ln y_k + (1 - t_k) \\ln(1 - y_k)]` (PRML eq. 5.21 per output),
    with :math:`\\ln(1 - y_k) = \\ln y_k - a_k`, so that both logarithms come from one log-sigmoid.
    """
    if output == "sigmoid":
        log_y = log_sigmoid(xp, a2)  # ln y_k
        log_1my = log_y - a2  # ln(1 - y_k) = ln sigma(-a_k)
        return -xp.sum(T * log_y + (1 - T) * log_1my, axis=1), log_y
    log_y = log_softmax(xp, a2)
    return -xp.sum(T * log_y, axis=1), log_y


def hidden_and_output(params: Params, X: Array, *, activation: str = "tanh") -> tuple[Array, Array]:
    """The hidden-unit outputs and the output activations of each pattern.

    Returns
    -------
    z : array of shape (N, M)
        :math:`z_j = h(a_j)`, the hidden-unit outputs.
    a2 : array of shape (N, K)
        :math:`a_k = \\sum_j w^{(2)}_{kj} z_j`, the output activations (logits).

    References
    ----------
    PRML eq. 5.9.
    """
    xp, params, X, _ = working_arrays(params, X)
    return forward_pass(xp, params, X, get_activation(activation))


def log_forward(params: Params, X: Array, *, activation: str = "tanh", output: str = "softmax") -> Array:
    """The log-probabilities :math:`\\ln y_k(x_n, w)`, computed stably.

    Computed as :math:`a_k - \\operatorname{logsumexp}(a)` (softmax) or
    :math:`-\\ln(1 + e^{-a_k})` (sigmoid), which stay finite where the logarithm
    of the outputs would give :math:`-\\infty`.

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    activation : str, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`OUTPUTS`).

    Returns
    -------
    array of shape (N, K)
    """
    check_output(output)
    xp, params, X, _ = working_arrays(params, X)
    _, a2 = forward_pass(xp, params, X, get_activation(activation))
    return log_outputs(xp, a2, output)


def forward(params: Params, X: Array, *, activation: str = "tanh", output: str = "softmax") -> Array:
    """The network outputs :math:`y_k(x_n, w)` (PRML eq. 5.9).

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
        The hidden-unit activation :math:`h`.
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity :math:`f`: a softmax over the K outputs, or a
        logistic sigmoid on each (K independent labels).

    Returns
    -------
    array of shape (N, K)
        Class probabilities, each row summing to one (softmax); or the
        probability of each label, independently (sigmoid).
    """
    xp = array_api_compat.array_namespace(X, *params)
    return xp.exp(log_forward(params, X, activation=activation, output=output))


# --------------------------------------------------------------------------
# Error and backpropagation
# --------------------------------------------------------------------------


def error(
    params: Params,
    X: Array,
    T: Array,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    output: str = "softmax",
) -> float:
    """The cross-entropy error :math:`E(w) = -\\sum_n s_n \\sum_k t_{nk} \\ln y_{nk}`.

    With ``output="sigmoid"``, the binary cross-entropy summed over the K
    outputs, :math:`E(w) = -\\sum_n s_n \\sum_k [t_{nk} \\ln y_{nk} + (1 - t_{nk})
    \\ln(1 - y_{nk})]` (PRML eq. 5.21 for each output).

    Parameters
    ----------
    params : Params
    X : array of shape (N, D)
    T : array of shape (N, K)
        Targets, one row per pattern: 1-of-K codes, or probability vectors
        (each row summing to one); for sigmoid outputs, K independent targets
        in [0, 1] (an indicator row for multilabel data).
    sample_weight : array of shape (N,), optional
        The weights :math:`s_n`; one for every pattern when omitted. A weight
        of zero removes its pattern exactly.
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity (:data:`OUTPUTS`).

    Returns
    -------
    float
        The **sum** over patterns (PRML eq. 5.24), not the mean.
    """
    check_output(output)
    xp, params, X, (T, s) = working_arrays(params, X, T, sample_weight)
    _, a2 = forward_pass(xp, params, X, get_activation(activation))
    return _error_from_logits(xp, a2, T, s, output)


def _error_from_logits(xp: Any, a2: Array, T: Array, s: Array | None, output: str = "softmax") -> float:
    E_n, _ = _pattern_errors(xp, a2, T, output)  # (N,)  eq. 5.24 (or 5.21 per output), per pattern
    if s is not None:
        E_n = s * E_n
    return float(xp.sum(E_n))


def error_and_gradient(
    params: Params,
    X: Array,
    T: Array,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    output: str = "softmax",
) -> tuple[float, Params]:
    """The error and its exact gradient by backpropagation.

    One forward and one backward pass: five matrix products in all (two
    forward; :math:`\\nabla W_2`, the back-propagated errors and
    :math:`\\nabla W_1` backward; the input layer needs no delta), per chunk
    of at most :data:`CHUNK_ROWS` patterns; the chunks' sums are added. The softmax
    Jacobian is never formed: the output errors are fused into
    :math:`\\delta_k = y_k - t_k`, which holds because each target row sums
    to one. For sigmoid outputs with the binary cross-entropy the same
    :math:`\\delta_k = y_k - t_k` holds for any targets in [0, 1]
    (``docs/derivation.md``, "Sigmoid outputs").

    Parameters
    ----------
    params, X, T, sample_weight, activation, output
        As for :func:`error`.

    Returns
    -------
    E : float
        :math:`E(w)`, summed over patterns.
    grad : Params
        :math:`\\partial E / \\partial w`, in the layout of ``params``.

    References
    ----------
    PRML §5.3.1–5.3.2; ``docs/derivation.md`` ("Derivatives").
    """
    check_output(output)
    xp, params, X, (T, s) = working_arrays(params, X, T, sample_weight)
    act = get_activation(activation)
    N = X.shape[0]
    if N <= CHUNK_ROWS:
        return _backprop(xp, act, params, X, T, s, output)
    # E and its gradient are sums over patterns, so a large batch is taken in chunks of
    # rows: the (chunk, M) temporaries stay in cache and the products keep their speed.
    E, grad = 0.0, None
    for start in range(0, N, CHUNK_ROWS):
        rows = slice(start, min(start + CHUNK_ROWS, N))
        E_c, grad_c = _backprop(xp, act, params, X[rows, ...], T[rows, ...], None if s is None else s[rows], output)
        E += E_c
        grad = grad_c if grad is None else Params(*(_add_bias(g, c) for g, c in zip(grad, grad_c)))
    assert grad is not None  # N > CHUNK_ROWS: at least two chunks
    return E, grad


def _backprop(
    xp: Any, act: Activation, params: Params, X: Array, T: Array, s: Array | None, output: str = "softmax"
) -> tuple[float, Params]:
    """One forward and backward pass over a batch in the working dtype: five products."""
    E, grad = backprop_arrays(xp, act, params, X, T, s, output)
    return float(E), grad


def backprop_arrays(
    xp: Any, act: Activation, params: Params, X: Array, T: Array, s: Array | None, output: str = "softmax"
) -> tuple[Array, Params]:
    """:func:`error_and_gradient` of one batch with the error left a 0-d array of the namespace.

    For loops on a device (:mod:`twolayer.training.on_device`), where turning
    the error into a Python float would wait for the device at every batch.
    The inputs are in the working dtype (see :func:`working_arrays`).
    """
    W2 = params.W2
    z, a2 = forward_pass(xp, params, X, act)
    E_n, log_y = _pattern_errors(xp, a2, T, output)  # (N,)  eq. 5.24 (softmax) or 5.21 per output (sigmoid)
    delta2 = xp.exp(log_y) - T  # (N, K)  delta_k = y_k - t_k, for either output (canonical link)
    if s is not None:
        E_n = s * E_n
        delta2 = s[:, None] * delta2  # dE/da_k for the weighted error
    grad_W2 = z.T @ delta2  # (M, K)  dE/dw_kj = delta_k z_j
    grad_b2 = xp.sum(delta2, axis=0)  # (K,)  z_0 = 1
    delta1 = _hidden_errors(xp, act, z, delta2 @ W2.T)  # (N, M)  delta_j = h'(a_j) sum_k w_kj delta_k
    grad_W1 = X.T @ delta1  # (D, M)  dE/dw_ji = delta_j x_i
    grad_b1 = xp.sum(delta1, axis=0)  # (M,)  x_0 = 1
    return xp.sum(E_n), Params(grad_W1, grad_b1, grad_W2, grad_b2)


def gradient(
    params: Params,
    X: Array,
    T: Array,
    sample_weight: Array | None = None,
    *,
    activation: str = "tanh",
    output: str = "softmax",
) -> Params:
    """The exact gradient :math:`\\partial E / \\partial w` by backpropagation.

    See :func:`error_and_gradient`, which this returns the second half of.
    """
    return error_and_gradient(params, X, T, sample_weight, activation=activation, output=output)[1]
