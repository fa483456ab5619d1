"""The two-layer network for one pattern, written out from scratch in SymPy.

The network of PRML eq. 5.9 with softmax outputs and the cross-entropy error
of eq. 5.24 (or, for multilabel targets, K logistic sigmoid outputs with the
binary cross-entropy of eq. 5.21 for each), every weight, input and target a
symbol, for concrete small ``D``, ``M`` and ``K``. It shares no code with :mod:`twolayer.network`: it is
what the derivation differentiates.

Notation follows ``docs/derivation.md``: inputs :math:`x_i` with :math:`x_0 = 1`,
first-layer weights :math:`w^{(1)}_{ji}`, hidden activations
:math:`a^{(1)}_j` (named ``a1_j``) and outputs :math:`z_j = \\tanh(a^{(1)}_j)`
with :math:`z_0 = 1`, second-layer weights :math:`w^{(2)}_{kj}`, output
activations :math:`a^{(2)}_k` (``a2_k``; the homework's :math:`z_k`), outputs
:math:`y_k`, targets :math:`t_k`. The error is that of one pattern; the
derivatives of :math:`E = \\sum_n E_n` are sums of these.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sympy
from sympy import Expr

__all__ = [
    "SymbolicNetwork",
    "binary_cross_entropy",
    "cross_entropy",
    "logistic_sigmoid",
    "softmax",
    "symbolic_network",
    "tanh_from_exp",
]


def softmax(a: Sequence[Expr]) -> tuple[Expr, ...]:
    """:math:`y_k = \\exp(a_k) / \\sum_l \\exp(a_l)`, literally (PRML eq. 4.62)."""
    total = sympy.Add(*(sympy.exp(a_l) for a_l in a))
    return tuple(sympy.exp(a_k) / total for a_k in a)


def cross_entropy(y: Sequence[Expr], t: Sequence[Expr]) -> Expr:
    """:math:`E = -\\sum_k t_k \\ln y_k` for one pattern (PRML eq. 5.24)."""
    return -sympy.Add(*(t_k * sympy.log(y_k) for t_k, y_k in zip(t, y)))


def logistic_sigmoid(a: Sequence[Expr]) -> tuple[Expr, ...]:
    """:math:`y_k = 1 / (1 + \\exp(-a_k))` for each output on its own, literally (PRML eq. 4.59)."""
    return tuple(1 / (1 + sympy.exp(-a_k)) for a_k in a)


def binary_cross_entropy(y: Sequence[Expr], t: Sequence[Expr]) -> Expr:
    """:math:`E = -\\sum_k [t_k \\ln y_k + (1 - t_k) \\ln(1 - y_k)]` for one pattern (PRML eq. 5.21 per output)."""
    return -sympy.Add(*(t_k * sympy.log(y_k) + (1 - t_k) * sympy.log(1 - y_k) for t_k, y_k in zip(t, y)))


def tanh_from_exp(a: Expr) -> Expr:
    """The homework's :math:`h(a) = (e^a - e^{-a}) / (e^a + e^{-a})`."""
    return (sympy.exp(a) - sympy.exp(-a)) / (sympy.exp(a) + sympy.exp(-a))


@dataclass(frozen=True)
class SymbolicNetwork:
    """The two-layer network for one pattern, every quantity a SymPy symbol or expression.

    Indices are those of ``docs/derivation.md``, stored 0-based: ``w1[j - 1][i]`` is
    :math:`w^{(1)}_{ji}` (``i = 0`` the bias), ``w2[k - 1][j]`` is
    :math:`w^{(2)}_{kj}` (``j = 0`` the bias), ``x[0] = z[0] = 1``.

    Attributes
    ----------
    n_features, n_hidden, n_classes : int
        ``D``, ``M`` and ``K``.
    x : tuple
        :math:`(1, x_1, \\dots, x_D)`.
    w1 : tuple of tuples of Symbol
        ``M`` rows of ``D + 1`` first-layer weights.
    w2 : tuple of tuples of Symbol
        ``K`` rows of ``M + 1`` second-layer weights.
    t : tuple of Symbol
        The targets :math:`t_1, \\dots, t_K`.
    z : tuple of Expr
        :math:`(1, \\tanh(\\sum_i w^{(1)}_{1i} x_i), \\dots)`, the hidden outputs.
    y : tuple of Expr
        The outputs :math:`y_k` as functions of weights and inputs.
    E : Expr
        The error :math:`-\\sum_k t_k \\ln y_k` (or the binary cross-entropy, for
        sigmoid outputs) as a function of weights, inputs and targets.
    a1 : tuple of Symbol
        Hidden activations :math:`a^{(1)}_j` as free symbols, for the hidden error.
    z_of_a1 : tuple of Expr
        :math:`(1, \\tanh(a^{(1)}_1), \\dots)`.
    y_of_a1 : tuple of Expr
        The outputs as functions of ``a1`` and ``w2``.
    E_of_a1 : Expr
        The error as a function of ``a1``, ``w2`` and ``t``.
    a2 : tuple of Symbol
        Output activations :math:`a^{(2)}_k` as free symbols, for the output steps.
    y_of_a2 : tuple of Expr
        :math:`\\operatorname{softmax}(a^{(2)})`, or :math:`\\sigma(a^{(2)}_k)` for each output.
    E_of_a2 : Expr
        The error as a function of ``a2`` and ``t``.
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity and its error: the softmax with the cross-entropy
        (eq. 5.24), or K logistic sigmoids with the binary cross-entropy summed
        over the outputs (eq. 5.21 for each).
    """

    n_features: int
    n_hidden: int
    n_classes: int
    x: tuple[Expr, ...]
    w1: tuple[tuple[sympy.Symbol, ...], ...]
    w2: tuple[tuple[sympy.Symbol, ...], ...]
    t: tuple[sympy.Symbol, ...]
    z: tuple[Expr, ...]
    y: tuple[Expr, ...]
    E: Expr
    a1: tuple[sympy.Symbol, ...]
    z_of_a1: tuple[Expr, ...]
    y_of_a1: tuple[Expr, ...]
    E_of_a1: Expr
    a2: tuple[sympy.Symbol, ...]
    y_of_a2: tuple[Expr, ...]
    E_of_a2: Expr
    output: str = "softmax"

    @property
    def targets_sum_to_one(self) -> dict[sympy.Symbol, Expr]:
        """The constraint :math:`\\sum_l t_l = 1` as the substitution :math:`t_K = 1 - \\sum_{l<K} t_l`."""
        return {self.t[-1]: 1 - sympy.Add(*self.t[:-1])}

    def sample(self, rng: np.random.Generator, *, one_hot: bool) -> dict[sympy.Symbol, sympy.Rational]:
        """Exact random values for every symbol: weights and inputs from
        ``{-2, -15/8, ..., 2}``, targets 1-of-K (``one_hot``) or from ``{0, 1/8, ..., 1}``."""
        free = [*self.x[1:], *itertools.chain(*self.w1, *self.w2), *self.a1, *self.a2]
        values = {s: sympy.Rational(int(rng.integers(-16, 17)), 8) for s in free}
        if one_hot:
            hot = int(rng.integers(self.n_classes))
            values.update({t_k: sympy.Integer(k == hot) for k, t_k in enumerate(self.t)})
        else:
            values.update({t_k: sympy.Rational(int(rng.integers(0, 9)), 8) for t_k in self.t})
        return values


def symbolic_network(n_features: int, n_hidden: int, n_classes: int, *, output: str = "softmax") -> SymbolicNetwork:
    """Write the network of PRML eq. 5.9 and its error (eq. 5.24) out in SymPy.

    Parameters
    ----------
    n_features, n_hidden, n_classes : int
        ``D``, ``M`` and ``K``; each at least 1.
    output : {"softmax", "sigmoid"}, default "softmax"
        Softmax outputs with the cross-entropy (eq. 5.24), or K independent
        logistic outputs with the binary cross-entropy (eq. 5.21 for each).

    Returns
    -------
    SymbolicNetwork

    References
    ----------
    PRML §5.1 (eq. 5.9), §5.2 (eq. 5.21, 5.24).
    """
    if output not in ("softmax", "sigmoid"):
        raise ValueError(f"output must be 'softmax' or 'sigmoid', got {output!r}")
    f, error = (softmax, cross_entropy) if output == "softmax" else (logistic_sigmoid, binary_cross_entropy)
    for name, value in (("n_features", n_features), ("n_hidden", n_hidden), ("n_classes", n_classes)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    D, M, K = int(n_features), int(n_hidden), int(n_classes)
    real = {"real": True}
    x = (sympy.Integer(1), *(sympy.Symbol(f"x_{i}", **real) for i in range(1, D + 1)))
    w1 = tuple(tuple(sympy.Symbol(f"w1[{j},{i}]", **real) for i in range(D + 1)) for j in range(1, M + 1))
    w2 = tuple(tuple(sympy.Symbol(f"w2[{k},{j}]", **real) for j in range(M + 1)) for k in range(1, K + 1))
    t = tuple(sympy.Symbol(f"t_{k}", **real) for k in range(1, K + 1))

    def outputs(z: Sequence[Expr]) -> tuple[Expr, ...]:
        a2 = [sympy.Add(*(w2[k][j] * z[j] for j in range(M + 1))) for k in range(K)]  # a_k = sum_j w_kj z_j
        return f(a2)

    # The full network: a_j = sum_i w_ji x_i, z_j = tanh(a_j) (eq. 5.9).
    z = (sympy.Integer(1), *(sympy.tanh(sympy.Add(*(w1[j][i] * x[i] for i in range(D + 1)))) for j in range(M)))
    y = outputs(z)
    # From the hidden activations on.
    a1 = tuple(sympy.Symbol(f"a1_{j}", **real) for j in range(1, M + 1))
    z_of_a1 = (sympy.Integer(1), *(sympy.tanh(a) for a in a1))
    y_of_a1 = outputs(z_of_a1)
    # From the output activations on.
    a2 = tuple(sympy.Symbol(f"a2_{k}", **real) for k in range(1, K + 1))
    y_of_a2 = f(a2)
    return SymbolicNetwork(
        n_features=D,
        n_hidden=M,
        n_classes=K,
        x=x,
        w1=w1,
        w2=w2,
        t=t,
        z=z,
        y=y,
        E=error(y, t),
        a1=a1,
        z_of_a1=z_of_a1,
        y_of_a1=y_of_a1,
        E_of_a1=error(y_of_a1, t),
        a2=a2,
        y_of_a2=y_of_a2,
        E_of_a2=error(y_of_a2, t),
        output=output,
    )
