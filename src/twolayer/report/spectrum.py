"""The eigenvalues of the Hessian and the Gauss-Newton matrix of a network's error.

For a network with ``W`` parameters the matrices are ``W x W`` and symmetric.
Up to :data:`FULL_SPECTRUM_MAX_PARAMS` parameters every eigenvalue is found by
:func:`numpy.linalg.eigvalsh` of the explicit matrix; at any size the ``k``
largest and smallest are found by Lanczos (:func:`scipy.sparse.linalg.eigsh`)
on the R-operator's matrix-vector products (:mod:`twolayer.curvature`), which
never forms the matrix.

The error is that of the regularised network, summed over the patterns,

.. math:: \\tilde E(w) = E(w) + \\sum_g \\tfrac{\\alpha_g}{2} \\lVert w_g \\rVert^2,

with one precision :math:`\\alpha_g` per parameter group (``W1``, ``b1``,
``W2``, ``b2``): :math:`(\\alpha, 0, \\alpha, 0)` for weight decay on the
weights alone (PRML eq. 5.112), a Bayesian network's prior otherwise (PRML
eqs. 5.122–5.123). Its curvature is that of :math:`E` plus
:math:`\\operatorname{diag}(\\alpha_i)`.

The softmax makes ``M + 1`` eigenvectors known in advance
(:func:`known_eigenvectors`); Lanczos runs on their orthogonal complement
(:func:`spectrum`), because it finds a repeated eigenvalue only once.

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), sections 5.4
and 5.7. C. Lanczos, "An iteration method for the solution of the eigenvalue
problem of linear differential and integral operators", J. Res. Nat. Bur.
Standards 45 (1950).

It is one module because the Lanczos iteration, its deflation and the memory estimate all work on
the one curvature operator built here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from twolayer.network import Params, flatten, gradient, n_params
from twolayer.prior import as_prior_precision, decay_per_group
from twolayer.resources import check_memory, covered

if TYPE_CHECKING:
    from scipy.sparse.linalg import LinearOperator

__all__ = [
    "FULL_SPECTRUM_MAX_PARAMS",
    "Condition",
    "CurvatureSpectra",
    "KnownEigenvectors",
    "NegativeCount",
    "Spectrum",
    "class_sample_weight",
    "condition_number",
    "curvature_spectra",
    "decayed_matrix",
    "decayed_operator",
    "known_eigenvectors",
    "lanczos",
    "max_eigenvalues_per_end",
    "memory_estimate",
    "negative_count",
    "one_hot",
    "prior_precision",
    "spectrum",
]

#: Every eigenvalue (numpy.linalg.eigvalsh of the explicit W x W matrices) up
#: to this many parameters: two 5000 x 5000 matrices take 400 MB; beyond,
#: Lanczos alone.
FULL_SPECTRUM_MAX_PARAMS = 5000


@dataclass(frozen=True)
class KnownEigenvectors:
    """Eigenvectors that every such matrix has, whatever the weights and the data.

    The softmax ignores a common shift of the output activations, so adding
    the same number to every output bias (``b2``), or the same vector ``u``
    to every column of ``W2`` (each :math:`a_k` moves by :math:`z \\cdot u`),
    leaves :math:`E` unchanged at every point. The Hessian and the
    Gauss-Newton matrix of :math:`E` vanish along these ``M + 1`` directions,
    so those of :math:`\\tilde E` have them as eigenvectors with the decay's
    eigenvalues: :math:`\\alpha_{b2}` and, ``M`` times, :math:`\\alpha_{W2}`.
    The ones with eigenvalue 0 are the flat directions of :math:`\\tilde E`.

    Attributes
    ----------
    vectors : ndarray of shape (W, M + 1)
        Orthonormal columns, in the order of :func:`twolayer.network.flatten`.
    values : ndarray of shape (M + 1,)
        The eigenvalue of each column.
    """

    vectors: np.ndarray
    values: np.ndarray

    @property
    def flat(self) -> int:
        """The number of known directions along which the error is constant."""
        return int(np.sum(self.values == 0))

    @property
    def nonzero(self) -> np.ndarray:
        """The known eigenvalues that are not zero."""
        return np.asarray(self.values[self.values != 0])


def known_eigenvectors(D: int, M: int, K: int, alpha_W2: float, alpha_b2: float) -> KnownEigenvectors:
    """The ``M + 1`` eigenvectors that the softmax's shift invariance gives.

    Parameters
    ----------
    D, M, K : int
        Inputs, hidden units and classes.
    alpha_W2, alpha_b2 : float
        The decay's precision on ``W2`` and on ``b2``.

    Returns
    -------
    KnownEigenvectors
        A common shift of ``b2`` first (eigenvalue ``alpha_b2``), then one of
        each row of ``W2`` (eigenvalue ``alpha_W2``).
    """
    ones = np.full(K, 1.0 / math.sqrt(K))
    zero = Params(np.zeros((D, M)), np.zeros(M), np.zeros((M, K)), np.zeros(K))
    columns = [np.asarray(flatten(zero._replace(b2=ones)))]
    for j in range(M):
        W2 = np.zeros((M, K))
        W2[j] = ones
        columns.append(np.asarray(flatten(zero._replace(W2=W2))))
    return KnownEigenvectors(np.column_stack(columns), np.array([alpha_b2] + [alpha_W2] * M))


def max_eigenvalues_per_end(D: int, M: int, K: int) -> int:
    """The most eigenvalues :func:`spectrum` can find at each end of a ``D-M-K`` network's spectrum.

    Lanczos works on the complement of the ``M + 1`` known eigenvectors, and
    ARPACK finds fewer eigenvalues than its operator's size.
    """
    return n_params(D, M, K) - (M + 1) - 1


@dataclass(frozen=True)
class Spectrum:
    """What is known about the eigenvalues of one matrix.

    Attributes
    ----------
    name : str
        The matrix ("Hessian", "Gauss-Newton").
    largest, smallest : ndarray of shape (k,)
        The ``k`` values at each end, decreasing and increasing, with the flat
        directions left out; NaN marks a value that is not known (Lanczos did
        not converge and there is no full spectrum).
    full : ndarray of shape (W,) or None
        Every eigenvalue, increasing, when it was computed.
    lanczos_largest, lanczos_smallest : ndarray of shape (k,)
        What Lanczos found, with the known eigenvalues merged in.
    products : int
        The matrix-vector products Lanczos spent on both ends.
    """

    name: str
    largest: np.ndarray
    smallest: np.ndarray
    full: np.ndarray | None
    lanczos_largest: np.ndarray
    lanczos_smallest: np.ndarray
    products: int

    @property
    def known_values(self) -> np.ndarray:
        """Every eigenvalue when the full spectrum was computed, else the values known at both ends."""
        return self.full if self.full is not None else np.concatenate([self.largest, self.smallest])

    @property
    def n_converged(self) -> int:
        """How many of the values Lanczos looked for, at both ends, it found."""
        return int(np.sum(np.isfinite(self.lanczos_largest)) + np.sum(np.isfinite(self.lanczos_smallest)))

    @property
    def scale(self) -> float:
        """The largest eigenvalue magnitude known."""
        known = np.concatenate([self.largest, self.smallest])
        known = known[np.isfinite(known)]
        return float(np.max(np.abs(known))) if known.size else math.nan

    def zero_tolerance(self, n_params: int) -> float:
        """An eigenvalue of absolute value at or below this is zero to double precision (numpy.linalg.matrix_rank's rule)."""
        return n_params * float(np.finfo(np.float64).eps) * self.scale

    def lanczos_error(self) -> float:
        """The largest distance of a Lanczos value from the full spectrum's, relative to the largest absolute eigenvalue.

        Rank by rank where Lanczos converged on a whole end; otherwise from
        each value to the nearest eigenvalue. NaN without a full spectrum.
        """
        if self.full is None:
            return math.nan
        gaps = []
        for found, exact in ((self.lanczos_largest, self.largest), (self.lanczos_smallest, self.smallest)):
            if np.isfinite(found).all():
                gaps.append(np.abs(found - exact))
            else:
                found = found[np.isfinite(found)]
                gaps.append(
                    np.min(np.abs(found[:, None] - self.full[None, :]), axis=1, initial=np.inf)
                    if found.size
                    else np.zeros(0)
                )
        gap = np.concatenate(gaps)
        return float(np.max(gap) / self.scale) if gap.size else math.nan


def lanczos(
    operator: LinearOperator, k: int, which: Literal["LA", "SA"], budget: int, v0: np.ndarray
) -> tuple[np.ndarray, int]:
    """The (up to) ``k`` eigenvalues at one end that Lanczos converged on, and the products spent.

    Parameters
    ----------
    operator : scipy.sparse.linalg.LinearOperator
        Symmetric, ``W x W``.
    k : int
        Eigenvalues wanted, fewer than ``W``.
    which : {"LA", "SA"}
        The largest or the smallest (algebraic) end.
    budget : int
        About the most matrix-vector products to spend.
    v0 : ndarray of shape (W,)
        The starting vector.

    Returns
    -------
    values : ndarray
        The converged eigenvalues, in ARPACK's order; fewer than ``k`` when
        the budget ran out first.
    products : int
        The matrix-vector products spent.
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    W = operator.shape[0]
    products = 0

    def matvec(v: np.ndarray) -> np.ndarray:
        nonlocal products
        products += 1
        return np.asarray(operator.matvec(v))

    counted = LinearOperator((W, W), matvec=matvec, rmatvec=matvec, dtype=np.float64)
    ncv = _lanczos_vectors(W, k)
    # ARPACK counts restarts, each of about ncv - k products after the first ncv.
    maxiter = max(1, (budget - ncv) // max(1, ncv - k))
    try:
        values = eigsh(counted, k=k, which=which, v0=v0, ncv=ncv, maxiter=maxiter, tol=1e-10, return_eigenvectors=False)
    except ArpackNoConvergence as exc:
        values = np.asarray(exc.eigenvalues).real
    return np.asarray(values, dtype=np.float64), products


def _end(found: np.ndarray, known: np.ndarray, k: int, *, largest: bool) -> np.ndarray:
    """The k values at one end from Lanczos's and the known ones, NaN-padded."""
    merged = np.sort(np.concatenate([found, known]))
    merged = merged[::-1] if largest else merged
    return np.concatenate([merged[:k], np.full(max(0, k - merged.size), np.nan)])


def spectrum(
    name: str,
    operator: LinearOperator,
    dense: Callable[[], np.ndarray] | None,
    known: KnownEigenvectors,
    k: int,
    budget: int,
) -> Spectrum:
    """Lanczos at both ends of one symmetric matrix, and its full spectrum when ``dense`` is given.

    Lanczos runs on the complement of the known eigenvectors (it finds a
    repeated eigenvalue once, and the known ones repeat): they are moved
    beyond the far end of the spectrum, :math:`-\\sigma` for the largest
    values and :math:`+\\sigma` for the smallest, with :math:`\\sigma` above
    the spectral radius, and their eigenvalues are merged back afterwards.

    Parameters
    ----------
    name : str
        The matrix's name, kept in the result.
    operator : scipy.sparse.linalg.LinearOperator
        The matrix's products, ``W x W``.
    dense : callable or None
        Builds the explicit matrix; ``None`` for Lanczos alone.
    known : KnownEigenvectors
        Eigenvectors of the matrix known in advance.
    k : int
        Eigenvalues at each end, at most ``W - (number of known) - 1``.
    budget : int
        About the most matrix-vector products Lanczos may spend at each end.

    Returns
    -------
    Spectrum
        With the flat directions (known eigenvalue 0) left out of
        ``largest`` and ``smallest``.
    """
    from scipy.sparse.linalg import LinearOperator, onenormest

    W = operator.shape[0]
    Q = known.vectors
    sigma = 2.0 * float(onenormest(operator)) + 1.0  # above every |lambda|: ||A||_2 <= ||A||_1 for symmetric A

    def moved(sign: float) -> LinearOperator:
        def matvec(v: np.ndarray) -> np.ndarray:
            v = np.ravel(v)
            inside = v - Q @ (Q.T @ v)
            Av = np.asarray(operator.matvec(inside)).ravel()
            return np.asarray(Av - Q @ (Q.T @ Av) + sign * sigma * (Q @ (Q.T @ v)))

        return LinearOperator((W, W), matvec=matvec, rmatvec=matvec, dtype=np.float64)

    v0 = np.random.default_rng(0).standard_normal(W)  # a fixed start: the same Krylov space every run
    top, spent_top = lanczos(moved(-1.0), k, "LA", budget, v0)
    bottom, spent_bottom = lanczos(moved(+1.0), k, "SA", budget, v0)
    lanczos_largest = _end(top, known.nonzero, k, largest=True)
    lanczos_smallest = _end(bottom, known.nonzero, k, largest=False)
    largest, smallest, full = lanczos_largest, lanczos_smallest, None
    if dense is not None:
        full = np.linalg.eigvalsh(dense())
        # The flat directions' eigenvalues are the ones closest to zero
        # (exactly zero but for round-off); the rest is the spectrum on their complement.
        rest = np.delete(full, np.argsort(np.abs(full), kind="stable")[: known.flat])
        largest, smallest = rest[::-1][:k], rest[:k]
    return Spectrum(name, largest, smallest, full, lanczos_largest, lanczos_smallest, spent_top + spent_bottom)


def _lanczos_vectors(n_params: int, k: int) -> int:
    """ARPACK's Krylov basis for ``k`` values (``ncv`` of :func:`lanczos`)."""
    return min(n_params, max(2 * k + 1, 20))


def memory_estimate(
    n_samples: int, n_features: int, n_hidden: int, n_classes: int, k: int, full: bool
) -> dict[str, int]:
    """The bytes :func:`curvature_spectra` allocates at its peak, by what they are for (float64).

    The known eigenvectors (``W x (M + 1)``, built column by column and then
    stacked: twice that), the products' forward quantities and R pass
    (:func:`twolayer.curvature.memory_estimate`), and the larger of
    Lanczos's basis (``ncv`` vectors and ARPACK's six more) and, for the full
    spectrum, the dense matrix with its decayed copy and ``eigvalsh``'s copy.

    Parameters
    ----------
    n_samples, n_features, n_hidden, n_classes : int
        :math:`N`, :math:`D`, :math:`M`, :math:`K`.
    k : int
        Eigenvalues at each end.
    full : bool
        Whether the full spectrum is computed.

    Returns
    -------
    dict
        ``"known"``, ``"products"``, ``"lanczos"`` and ``"dense"`` (0 without the full spectrum).
    """
    from twolayer import curvature

    N, D, M, K = int(n_samples), int(n_features), int(n_hidden), int(n_classes)
    W = n_params(D, M, K)
    return {
        "known": 8 * 2 * W * (M + 1),
        "products": curvature.memory_estimate("products", N, D, M, K),
        "lanczos": 8 * (_lanczos_vectors(W, k) + 6) * W,
        "dense": curvature.memory_estimate("hessian", N, D, M, K) + 8 * 2 * W * W if full else 0,
    }


def _check_memory(N: int, D: int, M: int, K: int, k: int, full: bool) -> None:
    """Refuse spectra that would not fit in memory (warn past half), naming what the caller can lower."""
    parts = memory_estimate(N, D, M, K, k, full)
    total = parts["known"] + parts["products"] + max(parts["lanczos"], parts["dense"])
    # Name what is a good share of the total; the rest is the network's own size.
    lower = [
        name for name, key in (("the number of rows of X", "products"), ("k", "lanczos")) if parts[key] >= total / 4
    ]
    W = n_params(D, M, K)
    what = f"the spectra of a {D}-{M}-{K} network's curvature"
    described = f"{M + 1} known eigenvectors of length {W}, products over {N} patterns, " + (
        f"two {W} x {W} matrices" if full else f"{_lanczos_vectors(W, k)} Lanczos vectors"
    )
    check_memory(total, what, lower, parts=described, stacklevel=4)


@dataclass(frozen=True)
class NegativeCount:
    """How many eigenvalues are below zero, and how surely.

    Attributes
    ----------
    count : int or None
        The count (``kind`` "exact" or "estimated"), a lower bound ("at_least"),
        or ``None`` ("unknown").
    kind : {"exact", "estimated", "at_least", "unknown"}
        "exact" from the full spectrum; "estimated" when the ``k`` smallest
        Lanczos values reach zero (a negative eigenvalue Lanczos missed is
        still possible); "at_least" when all ``k`` converged values are
        negative or some did not converge; "unknown" when none converged.
    n_values : int
        The eigenvalues the count rests on (``W`` for "exact").
    """

    count: int | None
    kind: Literal["exact", "estimated", "at_least", "unknown"]
    n_values: int


def negative_count(spectrum: Spectrum, n_params: int) -> NegativeCount:
    """The eigenvalues below ``-spectrum.zero_tolerance(n_params)``."""
    tol = spectrum.zero_tolerance(n_params)
    if spectrum.full is not None:
        return NegativeCount(int(np.sum(spectrum.full < -tol)), "exact", n_params)
    known = spectrum.smallest[np.isfinite(spectrum.smallest)]
    negative = int(np.sum(known < -tol))
    if known.size == spectrum.smallest.size and known[-1] >= -tol:
        return NegativeCount(negative, "estimated", int(known.size))
    if known.size == 0:
        return NegativeCount(None, "unknown", 0)
    return NegativeCount(negative, "at_least", int(known.size))


@dataclass(frozen=True)
class Condition:
    """The condition number of a symmetric matrix, or why there is none.

    Attributes
    ----------
    kind : {"finite", "indefinite", "singular", "unknown"}
        "indefinite": an eigenvalue below zero; "singular": the smallest is
        zero to double precision; "unknown": an end did not converge.
    value : float
        :math:`\\lambda_{max} / \\lambda_{min}` when finite; ``inf`` when
        singular; NaN otherwise.
    """

    kind: Literal["finite", "indefinite", "singular", "unknown"]
    value: float


def condition_number(spectrum: Spectrum, n_params: int) -> Condition:
    """:math:`\\lambda_{max} / \\lambda_{min}` of a positive definite matrix, with the flat directions left out."""
    high, low = spectrum.largest[0], spectrum.smallest[0]
    if not (math.isfinite(high) and math.isfinite(low)):
        return Condition("unknown", math.nan)
    tol = spectrum.zero_tolerance(n_params)
    if low < -tol:
        return Condition("indefinite", math.nan)
    if low <= tol:
        return Condition("singular", math.inf)
    return Condition("finite", float(high / low))


def decayed_operator(operator: LinearOperator, decay: np.ndarray) -> LinearOperator:
    """``operator + diag(decay)`` as a LinearOperator: the decay's Hessian added to the data's."""
    from scipy.sparse.linalg import LinearOperator

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.ravel(v)
        return np.asarray(np.asarray(operator.matvec(v)).ravel() + decay * v)

    return LinearOperator(operator.shape, matvec=matvec, rmatvec=matvec, dtype=np.float64)


def decayed_matrix(matrix: np.ndarray, decay: np.ndarray) -> np.ndarray:
    """``matrix + diag(decay)`` as a new float64 array: the decay's Hessian added to the data's."""
    out: np.ndarray = np.array(matrix, dtype=np.float64)
    out[np.diag_indices_from(out)] += decay
    return out


def prior_precision(alpha: float | Sequence[float], *, bayesian: bool) -> list[float]:
    """The prior precision on each group :math:`(W1, b1, W2, b2)` of a model's ``alpha``.

    The two estimators read one number differently, so the caller says which it has.

    Parameters
    ----------
    alpha : float or sequence of 4 floats
        A plain network's ``alpha``, or a Bayesian network's ``alpha_``.
    bayesian : bool
        False: ``alpha`` is weight decay, on the weights and not the biases
        (PRML eq. 5.112), so one number means :math:`(\\alpha, 0, \\alpha, 0)`.
        True: ``alpha`` is a prior precision (PRML §5.5.1, eqs. 5.122–5.123),
        one number meaning the same precision on all four groups.
    """
    return [float(a) for a in (as_prior_precision(alpha) if bayesian else decay_per_group(alpha))]


def one_hot(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """1-of-K targets ``T`` (N, K) of labels ``y``, columns in the order of the sorted ``classes``."""
    codes = np.searchsorted(classes, y)
    T = np.zeros((y.size, classes.size))
    T[np.arange(y.size), codes] = 1.0
    return T


def class_sample_weight(class_weight: str | Mapping[Any, float], y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The weight of each pattern under scikit-learn's ``class_weight`` ("balanced" or a mapping).

    Raises
    ------
    ValueError
        When the weights cannot be computed for these labels.
    """
    from sklearn.utils.class_weight import compute_class_weight

    return np.asarray(compute_class_weight(class_weight, classes=classes, y=y)[np.searchsorted(classes, y)])


@dataclass(frozen=True)
class CurvatureSpectra:
    """The spectra of a network's regularised error at its weights.

    Attributes
    ----------
    n_params : int
        ``W``.
    known : KnownEigenvectors
        The softmax's known eigenvectors and their eigenvalues.
    gradient : ndarray of shape (W,)
        :math:`\\nabla \\tilde E`, zero at a minimum.
    hessian, gauss_newton : Spectrum
        Of :math:`\\nabla\\nabla \\tilde E` and of the Gauss-Newton matrix
        plus :math:`\\operatorname{diag}(\\alpha_i)`.
    full : bool
        Whether every eigenvalue was computed.
    """

    n_params: int
    known: KnownEigenvectors
    gradient: np.ndarray
    hessian: Spectrum
    gauss_newton: Spectrum
    full: bool

    @property
    def gradient_norm(self) -> float:
        """:math:`\\lVert \\nabla \\tilde E \\rVert`, zero at an exact minimum."""
        return float(np.linalg.norm(self.gradient))

    @property
    def gradient_max(self) -> float:
        """The gradient's largest component in magnitude."""
        return float(np.max(np.abs(self.gradient)))


def curvature_spectra(
    params: Params,
    X: np.ndarray,
    T: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    activation: str,
    prior_precision: Sequence[float],
    k: int,
    max_products: int,
    full: bool | None = None,
) -> CurvatureSpectra:
    """The extreme eigenvalues of the Hessian and the Gauss-Newton matrix of :math:`\\tilde E`.

    Parameters
    ----------
    params : Params
        The weights, float64.
    X : ndarray of shape (N, D)
        Inputs, as the network sees them.
    T : ndarray of shape (N, K)
        1-of-K targets.
    sample_weight : ndarray of shape (N,) or None
        Pattern weights of the error.
    activation : str
        The hidden units' activation, a key of :data:`twolayer.network.ACTIVATIONS`.
    prior_precision : sequence of 4 floats
        :math:`(\\alpha_{W1}, \\alpha_{b1}, \\alpha_{W2}, \\alpha_{b2})`.
    k : int
        Eigenvalues at each end, at most :func:`max_eigenvalues_per_end`.
    max_products : int
        About the most matrix-vector products Lanczos may spend at each end.
    full : bool, optional
        Also compute every eigenvalue; by default when ``W`` is at most
        :data:`FULL_SPECTRUM_MAX_PARAMS`.

    Returns
    -------
    CurvatureSpectra
    """

    D, M = params.W1.shape
    K = params.W2.shape[1]
    W = n_params(D, M, K)
    if full is None:
        full = W <= FULL_SPECTRUM_MAX_PARAMS
    _check_memory(X.shape[0], D, M, K, k, full)
    from twolayer import curvature

    with covered():  # checked as a whole just above
        alpha = [float(a) for a in prior_precision]
        decay = np.asarray(flatten(Params(*(np.full(np.shape(p), a) for p, a in zip(params, alpha)))))
        known = known_eigenvectors(D, M, K, alpha[2], alpha[3])
        g = flatten(gradient(params, X, T, sample_weight, activation=activation)) + decay * flatten(params)
        hessian = spectrum(
            "Hessian",
            decayed_operator(curvature.hessian_operator(params, X, T, sample_weight, activation=activation), decay),
            (lambda: decayed_matrix(curvature.hessian(params, X, T, sample_weight, activation=activation), decay))
            if full
            else None,
            known,
            k,
            max_products,
        )
        gauss_newton = spectrum(
            "Gauss-Newton",
            decayed_operator(
                curvature.gauss_newton_operator(params, X, T, sample_weight, activation=activation), decay
            ),
            (lambda: decayed_matrix(curvature.gauss_newton(params, X, T, sample_weight, activation=activation), decay))
            if full
            else None,
            known,
            k,
            max_products,
        )
        return CurvatureSpectra(W, known, np.asarray(g), hessian, gauss_newton, full)
