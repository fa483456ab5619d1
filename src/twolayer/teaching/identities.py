"""Deciding an identity ``lhs = rhs`` with SymPy: a proof, a counterexample, or neither.

Each claim of the derivation is a set of identities, one per case. A case
**holds** when the difference of its sides simplifies to zero. To make that
simplification rational and fast, every ``tanh(.)`` in the difference is
replaced by an independent symbol, and every ``exp(c_1 m_1 + c_2 m_2 + ...)``
(integers ``c``, monomials ``m``) by a product of powers of independent
positive symbols, one per monomial. This only forgets relations, so a
difference that vanishes afterwards vanished before: a proof, not a test.

Otherwise the case is **refuted** by a counterexample: exact rational values
of the symbols at which the two sides differ (drawn so as to respect the
case's hypotheses, such as 1-of-K targets when the claim assumes
:math:`\\sum_l t_l = 1`). A case that neither simplifies to zero nor has a
counterexample among the random points tried is reported as not proved
(``holds`` is False, and the detail says so).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy
from sympy import Expr

__all__ = ["Identity", "Sample", "Step", "check_claim"]

#: ``sample(rng)``: exact values for the symbols of an identity.
Sample = Callable[[np.random.Generator], dict[sympy.Symbol, sympy.Rational]]

_N_TRIALS = 8  # random points tried for a counterexample
_DIGITS = 40  # working precision of the numerical evaluation


# --------------------------------------------------------------------------
# Claims and verdicts
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
# Deciding
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
