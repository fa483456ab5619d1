"""The derivation of backpropagation, step by step, checked by SymPy.

Each step of ``shared/reference/derivation.md`` (restating a homework answer,
after Bishop, *Pattern Recognition and Machine Learning*, §5.3) is stated as
an identity ``lhs = rhs`` and decided by computer algebra:

* the network of PRML eq. 5.9 with softmax outputs and the cross-entropy
  error of eq. 5.24 is written out from scratch for one pattern, with every
  weight, input and target a symbol, for several concrete numbers of classes
  ``K`` (2, 3 and 4 by default) and small ``D`` and ``M``;
* the left-hand side is SymPy's own derivative of that expression, the
  right-hand side the formula the derivation claims;
* the claim **holds** when the difference simplifies to zero. To make that
  simplification rational and fast, every ``tanh(.)`` in the difference is
  replaced by an independent symbol, and every ``exp(c_1 m_1 + c_2 m_2 + ...)``
  (integers ``c``, monomials ``m``) by a product of powers of independent
  positive symbols, one per monomial. This only forgets relations, so a
  difference that vanishes afterwards vanished before: a proof, not a test;
* otherwise the claim is **refuted** by a counterexample: exact rational
  values of the symbols at which the two sides differ (with 1-of-K targets
  whenever the claim assumes :math:`\\sum_l t_l = 1`). A claim that neither
  simplifies to zero nor has a counterexample among the random points tried is
  reported as not proved (``holds`` is False, and the detail says so).

The homework's penultimate line, :math:`\\sum_l t_l f(z_l) - t_k` in place of
:math:`f(z_k) \\sum_l t_l - t_k`, is among the claims, expected to be refuted;
so is :math:`\\partial E / \\partial a_k = y_k - t_k` without the constraint
:math:`\\sum_l t_l = 1` that it needs. The last step substitutes numbers into
the final formulas and compares them with :func:`twolayer.network.gradient`.

Notation follows ``derivation.md``: inputs :math:`x_i` with :math:`x_0 = 1`,
first-layer weights :math:`w^{(1)}_{ji}`, hidden activations
:math:`a^{(1)}_j` (named ``a1_j``) and outputs :math:`z_j = \\tanh(a^{(1)}_j)`
with :math:`z_0 = 1`, second-layer weights :math:`w^{(2)}_{kj}`, output
activations :math:`a^{(2)}_k` (``a2_k``; the homework's :math:`z_k`), outputs
:math:`y_k`, targets :math:`t_k`. The error here is that of one pattern; the
derivatives of :math:`E = \\sum_n E_n` are sums of these.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

try:
    import sympy
    from sympy import Expr
except ImportError as exc:  # an optional dependency: say how to get it
    raise ImportError(
        "twolayer.teaching.derivation needs SymPy; install it with `pip install twolayer[derive]`"
    ) from exc

__all__ = [
    "Identity",
    "Step",
    "SymbolicNetwork",
    "check_claim",
    "cross_entropy",
    "softmax",
    "symbolic_network",
    "tanh_from_exp",
    "verify_derivation",
]

Sample = Callable[[np.random.Generator], dict[sympy.Symbol, sympy.Rational]]

_N_TRIALS = 8  # random points tried for a counterexample
_DIGITS = 40  # working precision of the numerical evaluation


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of the derivation and SymPy's verdict on it.

    Attributes
    ----------
    name : str
        A short title, e.g. ``"softmax derivative, k = j"``.
    claim : str
        The claimed identity in plain text.
    holds : bool
        Whether the identity was proved (for every case checked).
    detail : str
        How: the cases proved, or a counterexample with both sides' values.
    expected : bool, default True
        The verdict a correct derivation gets; False for the homework's slip
        and for the claim that needs a constraint it is not given.
    latex : str, default ""
        The claim in LaTeX.
    """

    name: str
    claim: str
    holds: bool
    detail: str
    expected: bool = True
    latex: str = ""

    @property
    def as_expected(self) -> bool:
        """Whether the verdict is the expected one (a refuted slip is as expected)."""
        return self.holds == self.expected


@dataclass(frozen=True)
class Identity:
    """One case of a claim: ``lhs = rhs`` under the substitutions ``given``.

    Attributes
    ----------
    lhs, rhs : sympy.Expr
    where : str
        Which case this is, e.g. ``"K=3: k=1"`` (the family before the colon,
        the member after); used in the step's detail.
    given : mapping of Symbol to Expr
        Hypotheses, substituted before deciding; e.g. ``{t_K: 1 - t_1 - ... - t_{K-1}}``
        for :math:`\\sum_l t_l = 1`.
    sample : callable, optional
        ``sample(rng)`` returns exact values for the symbols, for counterexamples
        that respect the hypotheses; by default every free symbol is drawn from
        the rationals ``{-2, -15/8, ..., 2}``.
    """

    lhs: Expr
    rhs: Expr
    where: str = ""
    given: Mapping[sympy.Symbol, Expr] = field(default_factory=dict)
    sample: Sample | None = None

    def __post_init__(self) -> None:
        # Plain numbers are welcome (``Identity(expr, 1)``); keep SymPy objects.
        object.__setattr__(self, "lhs", sympy.sympify(self.lhs))
        object.__setattr__(self, "rhs", sympy.sympify(self.rhs))


# --------------------------------------------------------------------------
# The network, written out from scratch
# --------------------------------------------------------------------------


def softmax(a: Sequence[Expr]) -> tuple[Expr, ...]:
    """:math:`y_k = \\exp(a_k) / \\sum_l \\exp(a_l)`, literally (PRML eq. 4.62)."""
    total = sympy.Add(*(sympy.exp(a_l) for a_l in a))
    return tuple(sympy.exp(a_k) / total for a_k in a)


def cross_entropy(y: Sequence[Expr], t: Sequence[Expr]) -> Expr:
    """:math:`E = -\\sum_k t_k \\ln y_k` for one pattern (PRML eq. 5.24)."""
    return -sympy.Add(*(t_k * sympy.log(y_k) for t_k, y_k in zip(t, y)))


def tanh_from_exp(a: Expr) -> Expr:
    """The homework's :math:`h(a) = (e^a - e^{-a}) / (e^a + e^{-a})`."""
    return (sympy.exp(a) - sympy.exp(-a)) / (sympy.exp(a) + sympy.exp(-a))


@dataclass(frozen=True)
class SymbolicNetwork:
    """The two-layer network for one pattern, every quantity a SymPy symbol or expression.

    Indices are those of ``derivation.md``, stored 0-based: ``w1[j - 1][i]`` is
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
        The error :math:`-\\sum_k t_k \\ln y_k` as a function of weights, inputs and targets.
    a1 : tuple of Symbol
        Hidden activations :math:`a^{(1)}_j` as free symbols, for the hidden error.
    z_of_a1 : tuple of Expr
        :math:`(1, \\tanh(a^{(1)}_1), \\dots)`.
    y_of_a1 : tuple of Expr
        The outputs as functions of ``a1`` and ``w2``.
    E_of_a1 : Expr
        The error as a function of ``a1``, ``w2`` and ``t``.
    a2 : tuple of Symbol
        Output activations :math:`a^{(2)}_k` as free symbols, for the softmax steps.
    y_of_a2 : tuple of Expr
        :math:`\\operatorname{softmax}(a^{(2)})`.
    E_of_a2 : Expr
        The error as a function of ``a2`` and ``t``.
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


def symbolic_network(n_features: int, n_hidden: int, n_classes: int) -> SymbolicNetwork:
    """Write the network of PRML eq. 5.9 and its error (eq. 5.24) out in SymPy.

    Parameters
    ----------
    n_features, n_hidden, n_classes : int
        ``D``, ``M`` and ``K``; each at least 1.

    Returns
    -------
    SymbolicNetwork

    References
    ----------
    PRML §5.1 (eq. 5.9), §5.2 (eq. 5.24).
    """
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
        return softmax(a2)

    # The full network: a_j = sum_i w_ji x_i, z_j = tanh(a_j) (eq. 5.9).
    z = (sympy.Integer(1), *(sympy.tanh(sympy.Add(*(w1[j][i] * x[i] for i in range(D + 1)))) for j in range(M)))
    y = outputs(z)
    # From the hidden activations on.
    a1 = tuple(sympy.Symbol(f"a1_{j}", **real) for j in range(1, M + 1))
    z_of_a1 = (sympy.Integer(1), *(sympy.tanh(a) for a in a1))
    y_of_a1 = outputs(z_of_a1)
    # From the output activations on.
    a2 = tuple(sympy.Symbol(f"a2_{k}", **real) for k in range(1, K + 1))
    y_of_a2 = softmax(a2)
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
        E=cross_entropy(y, t),
        a1=a1,
        z_of_a1=z_of_a1,
        y_of_a1=y_of_a1,
        E_of_a1=cross_entropy(y_of_a1, t),
        a2=a2,
        y_of_a2=y_of_a2,
        E_of_a2=cross_entropy(y_of_a2, t),
    )


# --------------------------------------------------------------------------
# Deciding an identity
# --------------------------------------------------------------------------


def _generalise(expr: Expr) -> Expr:
    """Replace tanh(.) and exp(.) by independent symbols, so the expression becomes rational.

    Sound for proving zero: the result is a function of more independent
    variables that specialises to ``expr``, so if it is zero, so is ``expr``.
    """
    tanhs = {atom: sympy.Dummy("Z", real=True) for atom in expr.atoms(sympy.tanh)}
    expr = expr.xreplace(tanhs)
    powers: dict[Expr, sympy.Symbol] = {}  # monomial m -> the symbol standing for exp(m)

    def split(e: Expr) -> Expr:
        product = sympy.Integer(1)
        for term in sympy.Add.make_args(sympy.expand(e.args[0])):
            c, m = term.as_coeff_Mul()
            if not c.is_Integer:
                return e  # e.g. exp(a/2): leave it, at the cost of completeness only
            product *= powers.setdefault(m, sympy.Dummy("X", positive=True)) ** int(c)
        return product

    return expr.replace(lambda e: isinstance(e, sympy.exp), split)


def _is_zero(expr: Expr) -> bool:
    # Over one common denominator, a rational function is zero exactly when
    # its expanded numerator is the zero polynomial; no gcd (cancel) is needed.
    numerator, _ = sympy.fraction(sympy.together(_generalise(expr)))
    return bool(sympy.expand(numerator) == 0)


def _default_sample(symbols: Sequence[sympy.Symbol]) -> Sample:
    def sample(rng: np.random.Generator) -> dict[sympy.Symbol, sympy.Rational]:
        return {s: sympy.Rational(int(rng.integers(-16, 17)), 8) for s in symbols}

    return sample


def _show(values: Mapping[sympy.Symbol, Expr], symbols: set[sympy.Symbol]) -> str:
    return ", ".join(f"{s}={values[s]}" for s in sorted(symbols, key=str) if s in values)


def _decide(identity: Identity, rng: np.random.Generator) -> tuple[bool, str]:
    """Prove ``lhs = rhs`` symbolically, or refute it with a counterexample."""
    given = dict(identity.given)
    difference = (identity.lhs - identity.rhs).subs(given)
    if _is_zero(difference):
        return True, ""
    symbols = set(identity.lhs.free_symbols | identity.rhs.free_symbols)
    sample = identity.sample or _default_sample(sorted(symbols - set(given), key=str))
    case = f" ({identity.where.replace(': ', ', ')})" if identity.where else ""
    for _ in range(_N_TRIALS):
        values = sample(rng)
        # Hypotheses first (t_K = 1 - ...), then the values, exactly; only then numbers.
        point = {s: sympy.sympify(e).xreplace(values) for s, e in given.items()}
        point.update({s: v for s, v in values.items() if s not in given})
        lhs = identity.lhs.xreplace(point).evalf(_DIGITS)
        rhs = identity.rhs.xreplace(point).evalf(_DIGITS)
        if not (lhs.is_number and rhs.is_number):
            raise ValueError(f"the sample leaves symbols free in {identity.where or 'the identity'}")
        scale = 1 + abs(lhs) + abs(rhs)
        if abs(lhs - rhs) > sympy.Float(10.0) ** (10 - _DIGITS) * scale:
            return False, (
                f"counterexample{case}: {_show(point, symbols)}: lhs = {float(lhs):.10g}, rhs = {float(rhs):.10g}"
            )
    return False, (
        f"not proved{case}: the difference did not simplify to 0, yet it vanished at {_N_TRIALS} random points"
    )


def check_claim(
    name: str,
    claim: str,
    identities: Sequence[Identity],
    *,
    expected: bool = True,
    latex: str = "",
    random_state: int | np.random.Generator | None = 0,
) -> Step:
    """Decide a claim made of one or more identities, and report it as a :class:`Step`.

    The claim holds when every identity is proved (see the module docstring);
    the first identity refuted ends the check and its counterexample is the
    detail.

    Parameters
    ----------
    name, claim : str
        The step's title and the claim in plain text.
    identities : sequence of Identity
        The cases of the claim, e.g. one per class ``k`` and per ``K``.
    expected : bool, default True
        The verdict a correct derivation should get.
    latex : str, default ""
    random_state : int, numpy.random.Generator or None, default 0
        Seeds the search for counterexamples.

    Returns
    -------
    Step
    """
    if not identities:
        raise ValueError(f"claim {name!r} has no identities to check")
    rng = np.random.default_rng(random_state)
    for identity in identities:
        holds, why = _decide(identity, rng)
        if not holds:
            return Step(name, claim, False, why, expected, latex)
    # "K=3, D=2, M=2: k=1, j=0" -> the family "K=3, D=2, M=2", listed once.
    families = list(dict.fromkeys(i.where.split(":")[0] for i in identities if i.where))
    n = len(identities)
    detail = f"proved: the difference simplifies to 0 in {'the one case' if n == 1 else f'all {n} cases'}"
    if families:
        detail += f" ({'; '.join(families)})"
    return Step(name, claim, True, detail, expected, latex)


# --------------------------------------------------------------------------
# The steps of derivation.md
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

    def where(net: SymbolicNetwork, rest: str) -> str:
        return f"K={net.n_classes}, D={net.n_features}, M={net.n_hidden}: {rest}"

    second = [
        Identity(
            lhs=sympy.diff(net.E, net.w2[k][j]),
            rhs=(net.y[k] - net.t[k]) * net.z[j],
            where=where(net, f"k={k + 1}, j={j}"),
            given=net.targets_sum_to_one,
            sample=_one_hot(net),
        )
        for net in nets
        for k in range(net.n_classes)
        for j in range(net.n_hidden + 1)
    ]
    hidden = [
        Identity(
            lhs=sympy.diff(net.E_of_a1, net.a1[j - 1]),
            rhs=_backprop(net, net.y_of_a1, net.z_of_a1, j),
            where=where(net, f"j={j}"),
            given=net.targets_sum_to_one,
            sample=_one_hot(net),
        )
        for net in nets
        for j in range(1, net.n_hidden + 1)
    ]
    first = [
        Identity(
            lhs=sympy.diff(net.E, net.w1[j - 1][i]),
            rhs=_backprop(net, net.y, net.z, j) * net.x[i],
            where=where(net, f"j={j}, i={i}"),
            given=net.targets_sum_to_one,
            sample=_one_hot(net),
        )
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
    """Substitute numbers into the final formulas and compare with network.gradient."""
    from twolayer import network  # the one import of ours: the code this derivation justifies

    D, M, K = net.n_features, net.n_hidden, net.n_classes
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
    T = np.eye(K)[rng.integers(K, size=n_samples)]
    # PRML's w1[j][i] (i = 0 the bias) in scikit-learn's layout: W1[i-1, j-1], b1[j-1].
    w1_values = np.column_stack([b1, W1.T])  # (M, D+1)
    w2_values = np.column_stack([b2, W2.T])  # (K, M+1)
    theta = [*w1_values.ravel(), *w2_values.ravel()]
    # E = sum_n E_n (PRML eq. 5.24): the gradient is the sum of the per-pattern formulas.
    symbolic = np.sum([formula(*theta, *X[n], *T[n]) for n in range(n_samples)], axis=0)
    sym_w1 = symbolic[: M * (D + 1)].reshape(M, D + 1)
    sym_w2 = symbolic[M * (D + 1) :].reshape(K, M + 1)
    g = network.gradient(network.Params(W1, b1, W2, b2), X, T)
    from_code = np.concatenate([np.column_stack([g.b1, g.W1.T]).ravel(), np.column_stack([g.b2, g.W2.T]).ravel()])
    from_formula = np.concatenate([sym_w1.ravel(), sym_w2.ravel()])
    error = float(np.max(np.abs(from_code - from_formula)) / max(np.max(np.abs(from_formula)), 1e-300))
    holds = error <= 1e-12
    detail = (
        f"D={D}, M={M}, K={K}, N={n_samples} random patterns: max |formula - network.gradient| "
        f"/ max |formula| = {error:.1e} ({'within' if holds else 'above'} 1e-12)"
    )
    return Step(
        "agreement with network.gradient",
        "the final formulas, evaluated at a random point, equal twolayer.network.gradient",
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
        In the order of ``derivation.md``: the softmax derivative (k = j and
        k != j), the cross-entropy through the softmax, collecting terms, the
        homework's slip (expected False), the output error without and with
        :math:`\\sum_l t_l = 1` (the first expected False), tanh', the second
        layer, the hidden error, the first layer, and the numerical agreement
        with :func:`twolayer.network.gradient` (for the largest ``K``).
        ``step.as_expected`` is True for all of them when the derivation is right.

    References
    ----------
    PRML §4.3.4 (the softmax derivative, eq. 4.104, and the cross-entropy
    gradient, eq. 4.106), §5.3.1-5.3.2 (backpropagation, eq. 5.53-5.56, and the
    tanh network, eq. 5.63-5.67); ``shared/reference/derivation.md``.
    """
    classes = tuple(classes)
    if not classes or any(not isinstance(K, (int, np.integer)) or K < 2 for K in classes):
        raise ValueError(f"classes must be a non-empty sequence of integers of at least 2, got {classes!r}")
    rng = np.random.default_rng(random_state)
    nets = [symbolic_network(n_features, n_hidden, int(K)) for K in classes]
    return [
        *_output_steps(nets, rng),
        _tanh_step(rng),
        *_weight_steps(nets, rng),
        _numerical_step(nets[int(np.argmax(classes))], 3, rng),
    ]
