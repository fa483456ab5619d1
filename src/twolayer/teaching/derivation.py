"""The derivation of backpropagation, step by step, checked by SymPy.

Each step of ``docs/derivation.md`` (restating a homework answer,
after Bishop, *Pattern Recognition and Machine Learning*, §5.3) is stated as
an identity ``lhs = rhs`` and decided by computer algebra
(:mod:`twolayer.teaching.identities`):

* the network of PRML eq. 5.9 with softmax outputs and the cross-entropy
  error of eq. 5.24 is written out from scratch for one pattern
  (:mod:`twolayer.teaching.symbolic_network`), for several concrete numbers of
  classes ``K`` (2, 3 and 4 by default) and small ``D`` and ``M``;
* the left-hand side is SymPy's own derivative of that expression, the
  right-hand side the formula the derivation claims;
* the claim holds when the difference provably simplifies to zero, and is
  refuted by an exact counterexample otherwise.

The homework's penultimate line, :math:`\\sum_l t_l f(z_l) - t_k` in place of
:math:`f(z_k) \\sum_l t_l - t_k`, is among the claims, expected to be refuted;
so is :math:`\\partial E / \\partial a_k = y_k - t_k` without the constraint
:math:`\\sum_l t_l = 1` that it needs. The last step substitutes numbers into
the final formulas and compares them with :func:`twolayer.network.gradient`.

Then the multilabel case (``docs/derivation.md``, "Sigmoid outputs"): K
logistic sigmoid outputs with the binary cross-entropy. The sigmoid's
derivative, the output error :math:`y_k - t_k` for *any* targets (no
:math:`\\sum_l t_l = 1` needed this time), the diagonal output curvature
:math:`\\partial^2 E / \\partial a_k \\partial a_l = \\delta_{kl}\\, y_k (1 - y_k)`,
and the final formulas, unchanged after the output errors, against
``network.gradient(..., output="sigmoid")``.

The names of both helper modules are re-exported here, where they were first
defined, so ``from twolayer.teaching.derivation import check_claim`` keeps working.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

try:
    import sympy
    from sympy import Expr
except ImportError as exc:  # an optional dependency: say how to get it
    raise ImportError(
        "twolayer.teaching.derivation needs SymPy; install it with `pip install twolayer[derive]`"
    ) from exc

from twolayer.teaching.identities import Identity, Sample, Step, check_claim
from twolayer.teaching.symbolic_network import (
    SymbolicNetwork,
    binary_cross_entropy,
    cross_entropy,
    logistic_sigmoid,
    softmax,
    symbolic_network,
    tanh_from_exp,
)

__all__ = [
    "Identity",
    "Step",
    "SymbolicNetwork",
    "binary_cross_entropy",
    "check_claim",
    "cross_entropy",
    "logistic_sigmoid",
    "softmax",
    "symbolic_network",
    "tanh_from_exp",
    "verify_derivation",
]


# --------------------------------------------------------------------------
# The steps of docs/derivation.md
# --------------------------------------------------------------------------


def _one_hot(net: SymbolicNetwork) -> Sample:
    return lambda rng: net.sample(rng, one_hot=True)


def _any_targets(net: SymbolicNetwork) -> Sample:
    return lambda rng: net.sample(rng, one_hot=False)


def _output_steps(nets: Sequence[SymbolicNetwork], rng: np.random.Generator) -> list[Step]:
    """Softmax and cross-entropy: the derivatives with respect to the output activations."""

    def per_k(rhs: Callable[[SymbolicNetwork, int], Expr], *, constrained: bool) -> list[Identity]:
        return [
            Identity(
                lhs=sympy.diff(net.E_of_a2, net.a2[k]),
                rhs=rhs(net, k),
                where=f"K={net.n_classes}: k={k + 1}",
                given=net.targets_sum_to_one if constrained else {},
                sample=_one_hot(net) if constrained else _any_targets(net),
            )
            for net in nets
            for k in range(net.n_classes)
        ]

    def sum_t(net: SymbolicNetwork) -> Expr:
        return sympy.Add(*net.t)

    return [
        check_claim(
            "softmax derivative, k = j",
            "dy_k/da_k = y_k (1 - y_k)",
            [
                Identity(
                    sympy.diff(net.y_of_a2[k], net.a2[k]),
                    net.y_of_a2[k] * (1 - net.y_of_a2[k]),
                    f"K={net.n_classes}: k={k + 1}",
                )
                for net in nets
                for k in range(net.n_classes)
            ],
            latex=r"\frac{\partial y_k}{\partial a_k} = y_k (1 - y_k)",
            random_state=rng,
        ),
        check_claim(
            "softmax derivative, k != j",
            "dy_j/da_k = -y_j y_k  (j != k)",
            [
                Identity(
                    sympy.diff(net.y_of_a2[j], net.a2[k]),
                    -net.y_of_a2[j] * net.y_of_a2[k],
                    f"K={net.n_classes}: j={j + 1}, k={k + 1}",
                )
                for net in nets
                for j, k in itertools.permutations(range(net.n_classes), 2)
            ],
            latex=r"\frac{\partial y_j}{\partial a_k} = -y_j y_k \quad (j \neq k)",
            random_state=rng,
        ),
        check_claim(
            "cross-entropy through the softmax",
            "dE/da_k = -t_k (1 - y_k) + sum_{l != k} t_l y_k  (any t)",
            per_k(
                lambda net, k: (
                    -net.t[k] * (1 - net.y_of_a2[k])
                    + sympy.Add(*(net.t[l] * net.y_of_a2[k] for l in range(net.n_classes) if l != k))
                ),
                constrained=False,
            ),
            latex=r"\frac{\partial E}{\partial a_k} = -t_k (1 - y_k) + \sum_{l \neq k} t_l y_k",
            random_state=rng,
        ),
        check_claim(
            "collecting terms",
            "dE/da_k = y_k sum_l t_l - t_k  (any t)",
            per_k(lambda net, k: net.y_of_a2[k] * sum_t(net) - net.t[k], constrained=False),
            latex=r"\frac{\partial E}{\partial a_k} = y_k \sum_l t_l - t_k",
            random_state=rng,
        ),
        check_claim(
            "the homework's penultimate line",
            "dE/da_k = sum_l t_l y_l - t_k  (even with 1-of-K targets)",
            per_k(
                lambda net, k: sympy.Add(*(t_l * y_l for t_l, y_l in zip(net.t, net.y_of_a2))) - net.t[k],
                constrained=True,
            ),
            expected=False,
            latex=r"\frac{\partial E}{\partial a_k} = \sum_l t_l y_l - t_k",
            random_state=rng,
        ),
        check_claim(
            "output error without sum_l t_l = 1",
            "dE/da_k = y_k - t_k  (any t)",
            per_k(lambda net, k: net.y_of_a2[k] - net.t[k], constrained=False),
            expected=False,
            latex=r"\frac{\partial E}{\partial a_k} = y_k - t_k",
            random_state=rng,
        ),
        check_claim(
            "output error",
            "dE/da_k = y_k - t_k  (given sum_l t_l = 1)",
            per_k(lambda net, k: net.y_of_a2[k] - net.t[k], constrained=True),
            latex=r"\delta_k \equiv \frac{\partial E}{\partial a_k} = y_k - t_k \quad \text{if } \sum_l t_l = 1",
            random_state=rng,
        ),
    ]


def _sigmoid_steps(nets: Sequence[SymbolicNetwork], rng: np.random.Generator) -> list[Step]:
    """Sigmoid outputs and the binary cross-entropy: the sigmoid, the output errors and curvature."""
    a = sympy.Symbol("a", real=True)
    (sigma,) = logistic_sigmoid([a])
    pairs = [(net, k, l) for net in nets for k in range(net.n_classes) for l in range(net.n_classes)]
    return [
        check_claim(
            "logistic sigmoid derivative",
            "dy/da = y (1 - y) for y = 1 / (1 + e^-a)",
            [Identity(sympy.diff(sigma, a), sigma * (1 - sigma), "y = 1 / (1 + e^-a)")],
            latex=r"\frac{d\sigma}{da} = \sigma(a) (1 - \sigma(a)), \quad \sigma(a) = \frac{1}{1 + e^{-a}}",
            random_state=rng,
        ),
        check_claim(
            "binary cross-entropy through the sigmoid",
            "dE/da_k = y_k - t_k  (any t: no sum_l t_l = 1 needed)",
            [
                Identity(
                    sympy.diff(net.E_of_a2, net.a2[k]),
                    net.y_of_a2[k] - net.t[k],
                    f"K={net.n_classes}, sigmoid: k={k + 1}",
                    sample=_any_targets(net),
                )
                for net in nets
                for k in range(net.n_classes)
            ],
            latex=r"\frac{\partial E}{\partial a_k} = y_k - t_k, \quad "
            r"E = -\sum_k [t_k \ln y_k + (1 - t_k) \ln(1 - y_k)]",
            random_state=rng,
        ),
        check_claim(
            "sigmoid output curvature",
            "d2E/da_k da_l = y_k (1 - y_k) if k = l, else 0  (any t)",
            [
                Identity(
                    sympy.diff(net.E_of_a2, net.a2[k], net.a2[l]),
                    net.y_of_a2[k] * (1 - net.y_of_a2[k]) if k == l else 0,
                    f"K={net.n_classes}, sigmoid: k={k + 1}, l={l + 1}",
                    sample=_any_targets(net),
                )
                for net, k, l in pairs
            ],
            latex=r"\frac{\partial^2 E}{\partial a_k \partial a_l} = \delta_{kl}\, y_k (1 - y_k)",
            random_state=rng,
        ),
    ]


def _tanh_step(rng: np.random.Generator) -> Step:
    a = sympy.Symbol("a", real=True)
    h = tanh_from_exp(a)
    return check_claim(
        "tanh derivative",
        "h'(a) = 1 - h(a)^2 for h(a) = (e^a - e^-a) / (e^a + e^-a)",
        [Identity(sympy.diff(h, a), 1 - h**2, "h = tanh written with exponentials")],
        latex=r"h'(a) = 1 - h(a)^2, \quad h(a) = \frac{e^a - e^{-a}}{e^a + e^{-a}}",
        random_state=rng,
    )


def _backprop(net: SymbolicNetwork, y: Sequence[Expr], z: Sequence[Expr], j: int) -> Expr:
    """The claimed hidden error (1 - z_j^2) sum_k w_kj (y_k - t_k), for j >= 1."""
    K = net.n_classes
    return (1 - z[j] ** 2) * sympy.Add(*(net.w2[k][j] * (y[k] - net.t[k]) for k in range(K)))


def _weight_steps(nets: Sequence[SymbolicNetwork], rng: np.random.Generator) -> list[Step]:
    """Second layer, hidden errors and first layer, differentiating the whole network."""

    def identity(net: SymbolicNetwork, lhs: Expr, rhs: Expr, case: str) -> Identity:
        # Every weight step assumes 1-of-K targets, as the output error it builds on does.
        return Identity(
            lhs=lhs,
            rhs=rhs,
            where=f"K={net.n_classes}, D={net.n_features}, M={net.n_hidden}: {case}",
            given=net.targets_sum_to_one,
            sample=_one_hot(net),
        )

    second = [
        identity(net, sympy.diff(net.E, net.w2[k][j]), (net.y[k] - net.t[k]) * net.z[j], f"k={k + 1}, j={j}")
        for net in nets
        for k in range(net.n_classes)
        for j in range(net.n_hidden + 1)
    ]
    hidden = [
        identity(net, sympy.diff(net.E_of_a1, net.a1[j - 1]), _backprop(net, net.y_of_a1, net.z_of_a1, j), f"j={j}")
        for net in nets
        for j in range(1, net.n_hidden + 1)
    ]
    first = [
        identity(net, sympy.diff(net.E, net.w1[j - 1][i]), _backprop(net, net.y, net.z, j) * net.x[i], f"j={j}, i={i}")
        for net in nets
        for j in range(1, net.n_hidden + 1)
        for i in range(net.n_features + 1)
    ]
    return [
        check_claim(
            "second-layer derivative",
            "dE/dw2_kj = (y_k - t_k) z_j, z_0 = 1  (given sum_l t_l = 1)",
            second,
            latex=r"\frac{\partial E}{\partial w^{(2)}_{kj}} = (y_k - t_k)\, z_j, \quad z_0 = 1",
            random_state=rng,
        ),
        check_claim(
            "hidden error",
            "delta_j = dE/da_j = (1 - z_j^2) sum_k w2_kj (y_k - t_k)  (given sum_l t_l = 1)",
            hidden,
            latex=r"\delta_j = \frac{\partial E}{\partial a_j} = (1 - z_j^2) \sum_k w^{(2)}_{kj} (y_k - t_k)",
            random_state=rng,
        ),
        check_claim(
            "first-layer derivative",
            "dE/dw1_ji = (1 - z_j^2) sum_k w2_kj (y_k - t_k) x_i, x_0 = 1  (given sum_l t_l = 1)",
            first,
            latex=r"\frac{\partial E}{\partial w^{(1)}_{ji}} = (1 - z_j^2) \sum_k w^{(2)}_{kj} (y_k - t_k)\, x_i, \quad x_0 = 1",
            random_state=rng,
        ),
    ]


def _numerical_step(net: SymbolicNetwork, n_samples: int, rng: np.random.Generator) -> Step:
    """Substitute numbers into the final formulas and compare with network.gradient.

    The formulas are the same for either output (they start from the output
    error :math:`y_k - t_k`); ``net.output`` says which outputs ``y`` are, and
    which targets to draw: 1-of-K codes, or any indicator rows for sigmoid outputs.
    """
    from twolayer import network  # the one import of ours: the code this derivation justifies

    D, M, K = net.n_features, net.n_hidden, net.n_classes
    sigmoid = net.output == "sigmoid"
    # The final answer of the derivation, in PRML's indexing.
    grad_w1 = [[_backprop(net, net.y, net.z, j) * net.x[i] for i in range(D + 1)] for j in range(1, M + 1)]
    grad_w2 = [[(net.y[k] - net.t[k]) * net.z[j] for j in range(M + 1)] for k in range(K)]
    inputs = [*net.x[1:], *net.t]
    weights = [*itertools.chain(*net.w1, *net.w2)]
    formula = sympy.lambdify([*weights, *inputs], [*itertools.chain(*grad_w1, *grad_w2)], modules="math")

    W1 = rng.normal(size=(D, M))
    b1 = rng.normal(size=M)
    W2 = rng.normal(size=(M, K))
    b2 = rng.normal(size=K)
    X = rng.normal(size=(n_samples, D))
    T = (rng.random((n_samples, K)) < 0.5).astype(float) if sigmoid else np.eye(K)[rng.integers(K, size=n_samples)]
    # PRML's w1[j][i] (i = 0 the bias) in scikit-learn's layout: W1[i-1, j-1], b1[j-1].
    w1_values = np.column_stack([b1, W1.T])  # (M, D+1)
    w2_values = np.column_stack([b2, W2.T])  # (K, M+1)
    theta = [*w1_values.ravel(), *w2_values.ravel()]
    # E = sum_n E_n (PRML eq. 5.24): the gradient is the sum of the per-pattern formulas.
    symbolic = np.sum([formula(*theta, *X[n], *T[n]) for n in range(n_samples)], axis=0)
    sym_w1 = symbolic[: M * (D + 1)].reshape(M, D + 1)
    sym_w2 = symbolic[M * (D + 1) :].reshape(K, M + 1)
    params = network.Params(W1, b1, W2, b2)
    g = network.gradient(params, X, T, output="sigmoid") if sigmoid else network.gradient(params, X, T)
    from_code = np.concatenate([np.column_stack([g.b1, g.W1.T]).ravel(), np.column_stack([g.b2, g.W2.T]).ravel()])
    from_formula = np.concatenate([sym_w1.ravel(), sym_w2.ravel()])
    rel_error = float(np.max(np.abs(from_code - from_formula)) / max(np.max(np.abs(from_formula)), 1e-300))
    holds = rel_error <= 1e-12
    detail = (
        f"D={D}, M={M}, K={K}, N={n_samples} random patterns: max |formula - network.gradient| "
        f"/ max |formula| = {rel_error:.1e} ({'within' if holds else 'above'} 1e-12)"
    )
    return Step(
        "agreement with network.gradient" + (", sigmoid outputs" if sigmoid else ""),
        "the final formulas, evaluated at a random point, equal twolayer.network.gradient"
        + (' (output="sigmoid", indicator targets)' if sigmoid else ""),
        holds,
        detail,
        latex=r"\sum_n \frac{\partial E_n}{\partial w} \big|_{\text{formulas}} = \nabla E \big|_{\text{network.gradient}}",
    )


def verify_derivation(
    *,
    classes: Sequence[int] = (2, 3, 4),
    n_features: int = 2,
    n_hidden: int = 2,
    random_state: int | np.random.Generator | None = 0,
) -> list[Step]:
    """Check every step of the derivation of backpropagation with SymPy.

    Parameters
    ----------
    classes : sequence of int, default (2, 3, 4)
        The numbers of classes ``K`` for which each identity is proved; each at
        least 2 (with one class the homework's slip happens to be right).
    n_features, n_hidden : int, default 2
        ``D`` and ``M`` of the networks written out in full.
    random_state : int, numpy.random.Generator or None, default 0
        Seeds the counterexamples and the numerical comparison.

    Returns
    -------
    list of Step
        In the order of ``docs/derivation.md``: the softmax derivative (k = j and
        k != j), the cross-entropy through the softmax, collecting terms, the
        homework's slip (expected False), the output error without and with
        :math:`\\sum_l t_l = 1` (the first expected False), tanh', the second
        layer, the hidden error, the first layer, and the numerical agreement
        with :func:`twolayer.network.gradient` (for the largest ``K``); then for
        sigmoid outputs with the binary cross-entropy: the logistic sigmoid's
        derivative, the output error without any constraint on the targets, the
        output curvature, and the numerical agreement with
        ``network.gradient(..., output="sigmoid")``.
        ``step.as_expected`` is True for all of them when the derivation is right.

    References
    ----------
    PRML §4.3.4 (the softmax derivative, eq. 4.106, and the cross-entropy
    gradient, eq. 4.109), §5.3.1-5.3.2 (backpropagation, eq. 5.53-5.56, and the
    tanh network, eq. 5.63-5.67), §5.2 (eq. 5.21, the binary cross-entropy),
    §4.3.6 (canonical links); ``docs/derivation.md``.
    """
    classes = tuple(classes)
    if not classes or any(not isinstance(K, (int, np.integer)) or K < 2 for K in classes):
        raise ValueError(f"classes must be a non-empty sequence of integers of at least 2, got {classes!r}")
    rng = np.random.default_rng(random_state)
    nets = [symbolic_network(n_features, n_hidden, int(K)) for K in classes]
    sigmoid_nets = [symbolic_network(n_features, n_hidden, int(K), output="sigmoid") for K in classes]
    largest = int(np.argmax(classes))
    return [
        *_output_steps(nets, rng),
        _tanh_step(rng),
        *_weight_steps(nets, rng),
        _numerical_step(nets[largest], 3, rng),
        *_sigmoid_steps(sigmoid_nets, rng),
        _numerical_step(sigmoid_nets[largest], 3, rng),
    ]
