"""The hidden-unit activations h of the network, in every form a path of the package needs.

Derivatives are written from the *output* :math:`z = h(a)`: the backward pass
then needs only what the forward pass kept, as in :math:`\tanh'(a) = 1 - \tanh^2(a)`
(``docs/derivation.md``, "Hidden errors"). Each entry of :data:`ACTIVATIONS` carries
the array-API forms the reference functions of :mod:`twolayer.network` and
:mod:`twolayer.curvature` use, and the in-place NumPy forms the training loop
uses, so that every path computes the same function: a new activation is added
with :func:`register_activation`, which checks that its forms agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = ["ACTIVATIONS", "Activation", "check_activation", "get_activation", "register_activation"]

Array = Any  # an array of any array-API namespace


class Activation(NamedTuple):
    """A hidden-unit activation :math:`h`, in every form a path of this package needs.

    Derivatives are written from the output :math:`z = h(a)`, so that the
    backward pass needs only what the forward pass kept. Every field but the
    last two is required, so that an entry cannot serve one path and not
    another; :func:`register_activation` checks that the forms agree.

    Attributes
    ----------
    name : str
        The key in :data:`ACTIVATIONS` (``activation=`` everywhere).
    h, h_prime, h_second : callable ``(xp, array) -> array``
        :math:`z = h(a)` from :math:`a`; :math:`h'(a)` and :math:`h''(a)` from
        :math:`z` alone (for ReLU, :math:`h''` is zero almost everywhere).
        Array-API forms: ``xp`` is the namespace of the array.
    h_inplace : callable ``(A) -> None``
        Overwrites the NumPy array ``A`` holding :math:`a` with :math:`z = h(a)`,
        allocating nothing (the training loop's form).
    delta_inplace : callable ``(Z, D) -> None``
        ``D *= h'(a)`` for NumPy arrays, given the hidden outputs ``Z``, which
        it may overwrite: the hidden errors
        :math:`\\delta_j = h'(a_j) \\sum_k w_{kj} \\delta_k` of eq. 5.56 from
        ``D`` holding the sum.
    hidden_delta : callable ``(xp, z, back) -> array``, optional
        :math:`h'(a) \\cdot` ``back`` for a writeable ``back``, which it may
        overwrite and return (the reference backpropagation's form); ``None``
        for ``back *= h_prime(xp, z)``.
    delta_kernel : callable ``(Z, D, grad_b, one) -> None``, optional
        ``delta_inplace`` fused with the column sums ``grad_b[j] = sum_n D[n, j]``,
        written as loops over NumPy arrays that numba can compile (``one`` is
        1 in the working dtype); ``None`` for ``delta_inplace`` and a sum.
    """

    name: str
    h: Callable[[Any, Array], Array]
    h_prime: Callable[[Any, Array], Array]
    h_second: Callable[[Any, Array], Array]
    h_inplace: Callable[[np.ndarray], None]
    delta_inplace: Callable[[np.ndarray, np.ndarray], None]
    hidden_delta: Callable[[Any, Array, Array], Array] | None = None
    delta_kernel: Callable[[np.ndarray, np.ndarray, np.ndarray, Any], None] | None = None


def _tanh(xp: Any, a: Array) -> Array:
    return xp.tanh(a)


def _tanh_prime(xp: Any, z: Array) -> Array:
    return 1 - z * z  # tanh' = 1 - tanh^2


def _tanh_second(xp: Any, z: Array) -> Array:
    return -2 * z * (1 - z * z)  # tanh'' = -2 tanh (1 - tanh^2)


def _tanh_inplace(A: np.ndarray) -> None:
    np.tanh(A, out=A)


def _tanh_delta_inplace(Z: np.ndarray, D: np.ndarray) -> None:
    np.multiply(Z, Z, out=Z)
    np.subtract(1.0, Z, out=Z)  # tanh' = 1 - z^2
    D *= Z


def _tanh_hidden_delta(xp: Any, z: Array, back: Array) -> Array:
    # back - (z * z) * back: one (N, M) temporary, not the three of (1 - z * z) * back
    t = z * z
    t *= back
    back -= t
    return back


def _tanh_delta_kernel(Z: np.ndarray, D: np.ndarray, grad_b: np.ndarray, one: Any) -> None:
    # _tanh_delta_inplace's product, rounded as its three passes round it, and the column sums, in one pass
    B, M = D.shape
    for j in range(M):
        grad_b[j] = 0.0
    for n in range(B):
        for j in range(M):
            z = Z[n, j]
            d = D[n, j] * (one - z * z)  # delta_j = (1 - z_j^2) sum_k w_kj delta_k
            D[n, j] = d
            grad_b[j] += d


def _logistic(xp: Any, a: Array) -> Array:
    # sigma(a) = (1 + tanh(a/2)) / 2: no exp(-a) to overflow for large negative a.
    return 0.5 * (1 + xp.tanh(0.5 * a))


def _logistic_prime(xp: Any, z: Array) -> Array:
    return z * (1 - z)


def _logistic_second(xp: Any, z: Array) -> Array:
    return z * (1 - z) * (1 - 2 * z)


def _logistic_inplace(A: np.ndarray) -> None:
    # the overflow-free form of _logistic, pass by pass
    A *= 0.5
    np.tanh(A, out=A)
    A += 1.0
    A *= 0.5


def _logistic_delta_inplace(Z: np.ndarray, D: np.ndarray) -> None:
    D *= Z
    np.subtract(1.0, Z, out=Z)  # sigma' = z (1 - z)
    D *= Z


def _relu(xp: Any, a: Array) -> Array:
    return xp.where(a > 0, a, xp.zeros_like(a))


def _relu_prime(xp: Any, z: Array) -> Array:
    return xp.astype(z > 0, z.dtype)


def _relu_inplace(A: np.ndarray) -> None:
    np.maximum(A, 0.0, out=A)


def _relu_delta_inplace(Z: np.ndarray, D: np.ndarray) -> None:
    np.sign(Z, out=Z)  # z >= 0, so sign(z) is the step function h'
    D *= Z


def _zero(xp: Any, z: Array) -> Array:
    return xp.zeros_like(z)


def _identity(xp: Any, a: Array) -> Array:
    return a


def _one(xp: Any, z: Array) -> Array:
    return xp.ones_like(z)


def _nothing(*arrays: np.ndarray) -> None:
    """The identity's in-place forms: h(a) = a and h' = 1 leave their arrays as they are."""


def register_activation(activation: Activation) -> None:
    """Add an activation to :data:`ACTIVATIONS`, after checking that its forms agree.

    On a few points away from zero (where ReLU's kink is), in float64: ``h``
    against ``h_inplace``; ``h_prime`` and ``h_second`` against central
    differences of ``h`` and of ``h_prime``; ``delta_inplace`` (and
    ``hidden_delta`` and ``delta_kernel``, when given) against ``h_prime``
    times the back-propagated sum.

    Parameters
    ----------
    activation : Activation
        Every required field set; its ``name`` not yet registered.

    Raises
    ------
    TypeError
        When ``activation`` is not an :class:`Activation` or a form is not callable.
    ValueError
        When the name is taken or empty, or two forms disagree.
    """
    if not isinstance(activation, Activation):
        raise TypeError(f"register an Activation, not {type(activation).__name__}")
    name = activation.name
    if not isinstance(name, str) or not name:
        raise ValueError(f"an activation needs a non-empty name, got {name!r}")
    if name in ACTIVATIONS:
        raise ValueError(f"an activation named {name!r} is already registered")
    for field, form in zip(Activation._fields[1:], activation[1:]):
        if not callable(form) and not (form is None and field in ("hidden_delta", "delta_kernel")):
            raise TypeError(f"activation {name!r}: {field} must be callable, got {form!r}")
    check_activation(activation)
    ACTIVATIONS[name] = activation


def check_activation(act: Activation) -> None:
    """Raise ValueError unless every form of ``act`` computes the same function (float64, tolerance 1e-6)."""
    a = np.array([[-2.3, -1.1, -0.35], [0.3, 0.9, 2.1]])  # away from 0, where ReLU has its kink
    eps = 1e-5
    z = np.asarray(act.h(np, a), dtype=np.float64)
    back = np.array([[0.7, -1.3, 0.2], [1.1, 0.4, -0.9]])
    expected = {
        "h_inplace": z,
        "h_prime": (act.h(np, a + eps) - act.h(np, a - eps)) / (2 * eps),
        "h_second": (act.h_prime(np, act.h(np, a + eps)) - act.h_prime(np, act.h(np, a - eps))) / (2 * eps),
    }
    got = {"h_inplace": a.copy(), "h_prime": act.h_prime(np, z), "h_second": act.h_second(np, z)}
    act.h_inplace(got["h_inplace"])
    delta = np.asarray(act.h_prime(np, z)) * back
    D = back.copy()
    act.delta_inplace(z.copy(), D)
    expected["delta_inplace"], got["delta_inplace"] = delta, D
    if act.hidden_delta is not None:
        expected["hidden_delta"], got["hidden_delta"] = delta, act.hidden_delta(np, z.copy(), back.copy())
    if act.delta_kernel is not None:
        D, grad_b = back.copy(), np.empty(back.shape[1])
        act.delta_kernel(z.copy(), D, grad_b, 1.0)
        expected["delta_kernel"], got["delta_kernel"] = (
            np.concatenate([delta, delta.sum(axis=0)[None]]),
            np.concatenate([D, grad_b[None]]),
        )
    for form, want in expected.items():
        have = np.asarray(got[form], dtype=np.float64)
        if have.shape != want.shape or not np.allclose(have, want, rtol=1e-6, atol=1e-6):
            raise ValueError(
                f"activation {act.name!r}: {form} disagrees with h (expected {want.ravel()}, got {have.ravel()})"
            )


#: The registered hidden-unit activations by name; add one with :func:`register_activation`.
ACTIVATIONS: dict[str, Activation] = {}
for _activation in (
    Activation(
        "tanh",
        _tanh,
        _tanh_prime,
        _tanh_second,
        _tanh_inplace,
        _tanh_delta_inplace,
        hidden_delta=_tanh_hidden_delta,
        delta_kernel=_tanh_delta_kernel,
    ),
    Activation("logistic", _logistic, _logistic_prime, _logistic_second, _logistic_inplace, _logistic_delta_inplace),
    Activation("relu", _relu, _relu_prime, _zero, _relu_inplace, _relu_delta_inplace),
    Activation("identity", _identity, _one, _zero, _nothing, _nothing),
):
    register_activation(_activation)
del _activation


def get_activation(activation: str) -> Activation:
    """Look up an activation by name, with an error that lists the choices."""
    try:
        return ACTIVATIONS[activation]
    except (KeyError, TypeError):
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}") from None
