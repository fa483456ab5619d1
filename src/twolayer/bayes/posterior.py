"""The Bayesian two-layer network: Laplace approximation, evidence, moderated predictions.

This module is the last section of ``shared/reference/curvature.md`` (PRML
§5.7, after MacKay 1992). Errors are **sums** over patterns (PRML eq. 5.24),
so every curvature and evidence here is a sum over patterns too.

The prior
    A zero-mean Gaussian on every parameter, with one precision per group
    :math:`g \\in` (``W1``, ``b1``, ``W2``, ``b2``) — the grouped prior of
    MacKay (1992) and PRML eq. 5.211 —

    .. math::

        p(w \\mid \\alpha) = \\prod_g \\mathcal N(w_g \\mid 0, \\alpha_g^{-1} I),
        \\qquad
        \\tilde E(w) = E(w) + \\sum_g \\frac{\\alpha_g}{2} \\lVert w_g \\rVert^2 .

    A single :math:`\\alpha` (PRML eq. 5.162) is the case of four equal
    precisions. Priors on the biases keep the posterior precision positive
    definite: the softmax makes the data error flat along :math:`M + 1`
    directions of the second layer (adding one vector to every output unit's
    incoming weights), among them a common shift of ``b2``, which only the
    prior can pin down.

The Laplace approximation
    :math:`q(w) = \\mathcal N(w \\mid w_{\\text{MAP}}, A^{-1})` with
    :math:`A = H_+ + \\operatorname{diag}(\\alpha)` (PRML eq. 5.165), where
    :math:`H` is the exact Hessian or the Gauss–Newton matrix of :math:`E` at
    :math:`w_{\\text{MAP}}` and :math:`H_+` is :math:`H` with its negative
    eigenvalues set to zero (the exact Hessian can be indefinite even at a
    minimum of :math:`\\tilde E`; their number is reported). Three structures:
    ``"full"`` (the ``W x W`` matrix), ``"last_layer"`` (the ``K (M + 1)``
    second-layer parameters, exactly, with the first layer held at its
    trained value) and ``"diagonal"`` (:math:`H` replaced by its diagonal;
    any size).

The evidence (PRML eq. 5.175 with a grouped prior; the :math:`2\\pi` terms cancel)
    .. math::

        \\ln p(\\mathcal D \\mid \\alpha) \\simeq -\\tilde E(w_{\\text{MAP}})
        - \\tfrac12 \\ln |A| + \\sum_g \\tfrac{W_g}{2} \\ln \\alpha_g ,

    and its re-estimation (PRML eqs. 5.178–5.180, MacKay 1992):
    :math:`\\gamma_g = W_g - \\alpha_g \\operatorname{Tr}_g(A^{-1})`,
    :math:`\\alpha_g \\leftarrow \\gamma_g / \\lVert w_g \\rVert^2`. With one
    :math:`\\alpha` this is :math:`\\gamma = \\sum_i \\lambda_i / (\\alpha + \\lambda_i)`
    over the eigenvalues of :math:`H_+`.

The predictive distribution (PRML §5.7.3)
    The output activations are linearised about :math:`w_{\\text{MAP}}`, so
    that :math:`a \\sim \\mathcal N(a_{\\text{MAP}}, B A^{-1} B^\\top)` with
    :math:`B = \\partial a / \\partial w`, and
    :math:`p(C_k \\mid x) = \\int \\operatorname{softmax}_k(a)\\, \\mathcal N(a)\\, da`
    is computed by Monte Carlo over :math:`a` (exact for the linearised
    model as the number of samples grows) or by a probit-style approximation
    (see :func:`predictive_probit`).

The functions that take explicit inputs (:func:`posterior_from_curvature`,
:func:`predictive_mc`, :func:`predictive_probit`, :func:`map_estimate`) are
the mathematics; :func:`laplace` wires them to a fitted
:class:`~twolayer.classifier.TwoLayerClassifier`, and
:class:`BayesianTwoLayerClassifier` is the scikit-learn estimator that runs
the whole evidence procedure. All computation is in float64 NumPy.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg
import scipy.optimize
from scipy.special import log_softmax, logsumexp, softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted
from threadpoolctl import threadpool_limits

from twolayer import curvature
from twolayer import network as nw
from twolayer.network import Params
from twolayer.training.optim import SMALL_PROBLEM

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


__all__ = [
    "GROUPS",
    "BayesianTwoLayerClassifier",
    "LaplacePosterior",
    "MapFit",
    "PriorPrecision",
    "as_prior_precision",
    "group_sizes",
    "laplace",
    "map_estimate",
    "posterior_from_curvature",
    "predictive_mc",
    "predictive_probit",
]

GROUPS: tuple[str, str, str, str] = ("W1", "b1", "W2", "b2")

#: One precision for every group, four (W1, b1, W2, b2), or a mapping by group name.
PriorPrecision = float | Sequence[float] | Mapping[str, float] | np.ndarray
HESSIANS = ("exact", "gauss_newton")
STRUCTURES = ("full", "last_layer", "diagonal")
METHODS = ("mc", "probit")
ALPHA_SEARCHES = ("fixed_point", "grid")

# Re-estimated precisions are kept in [_ALPHA_MIN, _ALPHA_MAX]: a group whose
# weights all vanish would otherwise get an infinite precision, and one with
# gamma_g = 0 a zero precision and a singular A.
_ALPHA_MIN, _ALPHA_MAX = 1e-8, 1e8

# Elements in one temporary of the predictive (2**22 float64 = 32 MiB): the
# Jacobian B of a chunk of patterns, or the Monte Carlo logits of a chunk.
_CHUNK_ELEMENTS = 2**22

# Up to this many parameters the posterior's factorisations run on one BLAS
# thread: a 600 x 600 Cholesky took 0.02 s on one thread and 0.3 s on two
# threads of a busy two-core machine.
_SMALL_FACTORISATION = 2048


# --------------------------------------------------------------------------
# Parameter groups and prior precisions
# --------------------------------------------------------------------------


def group_sizes(n_features: int, n_hidden: int, n_classes: int) -> tuple[int, int, int, int]:
    """The sizes :math:`W_g` of the groups ``W1``, ``b1``, ``W2``, ``b2``, in flatten order."""
    D, M, K = n_features, n_hidden, n_classes
    return (D * M, M, M * K, K)


def _group_ids(shape: tuple[int, int, int]) -> np.ndarray:
    """For each flat parameter, the index of its group in :data:`GROUPS`."""
    return np.repeat(np.arange(4), group_sizes(*shape))


def as_prior_precision(prior_precision: PriorPrecision) -> np.ndarray:
    """The four group precisions :math:`(\\alpha_{W1}, \\alpha_{b1}, \\alpha_{W2}, \\alpha_{b2})`.

    Parameters
    ----------
    prior_precision : float, sequence of 4 floats, or mapping
        One precision for every group, one per group in the order of
        :data:`GROUPS`, or a mapping with exactly the keys of :data:`GROUPS`.

    Returns
    -------
    ndarray of shape (4,)
        Positive and finite.
    """
    if isinstance(prior_precision, Mapping):
        keys = set(prior_precision)
        if keys != set(GROUPS):
            raise ValueError(f"a prior_precision mapping needs exactly the keys {list(GROUPS)}, got {sorted(keys)}")
        values = np.array([prior_precision[g] for g in GROUPS], dtype=np.float64)
    else:
        values = np.asarray(prior_precision, dtype=np.float64)
        if values.ndim == 0:
            values = np.full(4, float(values))
        if values.shape != (4,):
            raise ValueError(
                f"prior_precision must be a number or four numbers (W1, b1, W2, b2), got shape {values.shape}"
            )
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(
            f"prior precisions must be positive and finite (alpha = 0 leaves the softmax's "
            f"null directions unbounded and A singular), got {values.tolist()}"
        )
    return values


def _shape_of(params: Params) -> tuple[int, int, int]:
    if not isinstance(params, tuple) or len(params) != 4:
        raise TypeError(f"params must be a Params (W1, b1, W2, b2), got {type(params).__name__}")
    W1, b1, W2, b2 = (np.asarray(p) for p in params)
    if (
        W1.ndim != 2
        or W2.ndim != 2
        or b1.shape != (W1.shape[1],)
        or W2.shape[0] != W1.shape[1]
        or b2.shape != (W2.shape[1],)
    ):
        raise ValueError(
            "params must hold W1 (D, M), b1 (M,), W2 (M, K), b2 (K,); got shapes "
            f"{W1.shape}, {b1.shape}, {W2.shape}, {b2.shape}"
        )
    return int(W1.shape[0]), int(W1.shape[1]), int(W2.shape[1])


def _as_float64(params: Params) -> Params:
    return Params(*(np.asarray(p, dtype=np.float64) for p in params))


def _centred(params: Params) -> Params:
    """Move the weights along the softmax's null directions to the point of least norm.

    Adding one vector to every output unit's incoming weights (a row of
    ``[W2; b2]`` shifted by a constant) changes no output probability, so the
    data error is flat along these ``M + 1`` directions and only the prior
    decides: the posterior mode along them has every row of ``W2`` and ``b2``
    summing to zero. An estimator that does not penalise ``b2`` leaves its
    common shift wherever initialisation put it; centring removes it and
    changes no prediction.
    """
    W1, b1, W2, b2 = params
    return Params(W1, b1, W2 - W2.mean(axis=1, keepdims=True), b2 - b2.mean())


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


# --------------------------------------------------------------------------
# The Laplace posterior
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LaplacePosterior:
    """A Gaussian approximation :math:`\\mathcal N(w_{\\text{MAP}}, A^{-1})` of the weight posterior.

    Built by :func:`laplace` (from a fitted classifier) or
    :func:`posterior_from_curvature` (from explicit inputs); not meant to be
    constructed directly.

    Attributes
    ----------
    mean : ndarray of shape (W,)
        :math:`w_{\\text{MAP}}` in :func:`twolayer.network.flatten` order.
    precision : ndarray
        The posterior precision :math:`A = H_+ + \\operatorname{diag}(\\alpha)`
        over the parameters the structure covers: shape ``(W, W)`` for
        ``"full"``, ``(K (M + 1), K (M + 1))`` for ``"last_layer"`` (the
        trailing ``W2``, ``b2`` entries of the flat vector), and its diagonal,
        shape ``(W,)``, for ``"diagonal"``.
    prior_precision : ndarray of shape (4,)
        :math:`\\alpha_g` for ``W1``, ``b1``, ``W2``, ``b2``.
    data_error : float
        :math:`E(w_{\\text{MAP}})`, summed over patterns.
    log_evidence : float
        The Laplace approximation of :math:`\\ln p(\\mathcal D \\mid \\alpha)`
        (PRML eq. 5.175, grouped). For ``"last_layer"`` it is the evidence of
        the second layer with the first held fixed: only the covered groups'
        prior terms enter.
    gamma : float
        :math:`\\gamma`, the number of well-determined parameters (PRML eq.
        5.179) over the covered groups.
    gamma_groups : ndarray of shape (4,)
        :math:`\\gamma_g` per group; NaN for groups the structure does not cover.
    n_negative_eigenvalues : int
        Eigenvalues of :math:`H` (entries, for ``"diagonal"``) below
        :math:`-W \\epsilon \\max_i |\\lambda_i|` that were set to zero. For the
        Gauss–Newton matrix, which is positive semi-definite, this is zero
        unless rounding made :math:`A` indefinite.
    structure : {"full", "last_layer", "diagonal"}
    hessian : {"exact", "gauss_newton"}
        For ``"last_layer"`` both give the same matrix (the output
        activations are linear in the second layer).
    activation : str
        The network's hidden-unit activation.
    shape : tuple of int
        ``(D, M, K)``.
    """

    mean: np.ndarray
    precision: np.ndarray
    prior_precision: np.ndarray
    data_error: float
    log_evidence: float
    gamma: float
    gamma_groups: np.ndarray
    n_negative_eigenvalues: int
    structure: str
    hessian: str
    activation: str
    shape: tuple[int, int, int]
    # Lower Cholesky factor of `precision` (full, last_layer) or `precision` itself (diagonal).
    _factor: np.ndarray = field(repr=False)
    # diag(A^{-1}) over the covered parameters.
    _variance: np.ndarray = field(repr=False)

    @property
    def params(self) -> Params:
        """The mean as :class:`~twolayer.network.Params`."""
        return nw.unflatten(self.mean, *self.shape)

    @property
    def covered(self) -> slice:
        """The slice of the flat parameter vector that the precision covers."""
        return _covered(self.structure, self.shape)

    @property
    def marginal_variance(self) -> np.ndarray:
        """:math:`\\operatorname{diag}(A^{-1})` over the covered parameters."""
        return self._variance.copy()

    def to_dict(self) -> dict[str, Any]:
        """The posterior as NumPy arrays and JSON-serialisable scalars, for a model file.

        :meth:`from_dict` rebuilds it exactly. The arrays are ``mean``,
        ``precision``, ``prior_precision``, ``gamma_groups``, ``factor`` (the
        Cholesky factor, or the diagonal) and ``variance``; everything else is
        a float, an int, a str or a list of ints.
        """
        return {
            "mean": self.mean.copy(),
            "precision": self.precision.copy(),
            "prior_precision": self.prior_precision.copy(),
            "gamma_groups": self.gamma_groups.copy(),
            "factor": self._factor.copy(),
            "variance": self._variance.copy(),
            "data_error": self.data_error,
            "log_evidence": self.log_evidence,
            "gamma": self.gamma,
            "n_negative_eigenvalues": self.n_negative_eigenvalues,
            "structure": self.structure,
            "hessian": self.hessian,
            "activation": self.activation,
            "shape": list(self.shape),
        }

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> LaplacePosterior:
        """Rebuild a posterior from :meth:`to_dict`'s output."""
        missing = {
            "mean",
            "precision",
            "prior_precision",
            "gamma_groups",
            "factor",
            "variance",
            "data_error",
            "log_evidence",
            "gamma",
            "n_negative_eigenvalues",
            "structure",
            "hessian",
            "activation",
            "shape",
        } - set(state)
        if missing:
            raise ValueError(f"a LaplacePosterior state needs the keys {sorted(missing)}")
        D, M, K = (int(v) for v in state["shape"])
        structure = _check_choice("structure", state["structure"], STRUCTURES)
        P = _covered(structure, (D, M, K))
        mean = np.array(state["mean"], dtype=np.float64)
        if mean.shape != (nw.n_params(D, M, K),):
            raise ValueError(f"mean must have {nw.n_params(D, M, K)} entries for shape {(D, M, K)}, got {mean.shape}")
        factor = np.array(state["factor"], dtype=np.float64)
        n = P.stop - P.start
        if factor.shape != ((n,) if structure == "diagonal" else (n, n)):
            raise ValueError(f"factor has shape {factor.shape}, which does not fit structure={structure!r}")
        return cls(
            mean=mean,
            precision=np.array(state["precision"], dtype=np.float64),
            prior_precision=as_prior_precision(state["prior_precision"]),
            data_error=float(state["data_error"]),
            log_evidence=float(state["log_evidence"]),
            gamma=float(state["gamma"]),
            gamma_groups=np.array(state["gamma_groups"], dtype=np.float64),
            n_negative_eigenvalues=int(state["n_negative_eigenvalues"]),
            structure=structure,
            hessian=_check_choice("hessian", state["hessian"], HESSIANS),
            activation=nw.get_activation(str(state["activation"])).name,
            shape=(D, M, K),
            _factor=factor,
            _variance=np.array(state["variance"], dtype=np.float64),
        )

    def reestimated_prior_precision(self, *, tie: bool = False) -> np.ndarray:
        """MacKay's update :math:`\\alpha_g \\leftarrow \\gamma_g / \\lVert w_g \\rVert^2`.

        Parameters
        ----------
        tie : bool, default False
            If True, one precision for all groups,
            :math:`\\alpha \\leftarrow \\gamma / \\lVert w \\rVert^2` over the
            covered groups, returned for all four.

        Returns
        -------
        ndarray of shape (4,)
            The new precisions, clipped to [1e-8, 1e8]; groups the structure
            does not cover keep their precision (unless ``tie``).

        References
        ----------
        PRML eqs. 5.178–5.180; D. J. C. MacKay, "A practical Bayesian framework
        for backpropagation networks", Neural Computation 4 (1992), eq. 4.2.
        """
        ids = _group_ids(self.shape)
        norms = np.bincount(ids, weights=self.mean**2, minlength=4)  # ||w_g||^2
        covered = ~np.isnan(self.gamma_groups)
        if tie:
            new = np.full(4, _safe_ratio(self.gamma, float(norms[covered].sum())))
        else:
            new = self.prior_precision.copy()
            for g in np.flatnonzero(covered):
                new[g] = _safe_ratio(float(self.gamma_groups[g]), float(norms[g]))
        return np.clip(new, _ALPHA_MIN, _ALPHA_MAX)

    def logit_distribution(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The linearised Gaussian over the output activations at each input.

        .. math::

            a(x) \\sim \\mathcal N\\big(a(x, w_{\\text{MAP}}),\\; B A^{-1} B^\\top\\big),
            \\qquad B = \\partial a / \\partial w

        Parameters
        ----------
        X : array-like of shape (N, D)

        Returns
        -------
        mean : ndarray of shape (N, K)
            :math:`a_{\\text{MAP}}(x_n)`.
        covariance : ndarray of shape (N, K, K)
            :math:`\\Sigma_a(x_n) = B_n A^{-1} B_n^\\top`.

        References
        ----------
        PRML §5.7.3, eqs. 5.183–5.187 (their multi-output analogue).
        """
        X = _check_X(X, self.shape[0])
        params = self.params
        z, a_map = nw.hidden_and_output(params, X, activation=self.activation)
        K = self.shape[2]
        P = self.covered.stop - self.covered.start
        cov = np.empty((X.shape[0], K, K))
        step = max(1, _CHUNK_ELEMENTS // (K * nw.n_params(*self.shape)))
        with _blas_threads(P):
            for start in range(0, X.shape[0], step):
                self._logit_covariance(
                    params, X[start : start + step], z[start : start + step], cov[start : start + step]
                )
        return a_map, cov

    def _logit_covariance(self, params: Params, X: np.ndarray, z: np.ndarray, out: np.ndarray) -> None:
        """Write :math:`B_n A^{-1} B_n^\\top` of a chunk of patterns into ``out``."""
        K = self.shape[2]
        P = self.covered.stop - self.covered.start
        if self.structure == "last_layer":
            B = _last_layer_jacobian(z, K)  # (n, K, P)
        else:
            B = curvature.weight_jacobian(params, X, activation=self.activation)  # (n, K, W)
        n = B.shape[0]
        if self.structure == "diagonal":
            out[...] = np.einsum("nkp,p,nlp->nkl", B, 1.0 / self._factor, B, optimize=True)
        else:
            # A^{-1} = L^{-T} L^{-1}, so B A^{-1} B^T = V^T V with V = L^{-1} B^T.
            V = scipy.linalg.solve_triangular(
                self._factor, B.reshape(n * K, P).T, lower=True, check_finite=False
            ).reshape(P, n, K)
            out[...] = np.einsum("pnk,pnl->nkl", V, V, optimize=True)

    def predict_proba(
        self,
        X: Any,
        *,
        method: str = "mc",
        n_samples: int = 1000,
        random_state: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """The moderated predictive :math:`p(C_k \\mid x, \\mathcal D)` of the linearised model.

        Parameters
        ----------
        X : array-like of shape (N, D)
        method : {"mc", "probit"}, default "mc"
            ``"mc"``: Monte Carlo over the Gaussian of the output activations
            (:func:`predictive_mc`), exact for the linearised model up to
            sampling error; ``"probit"``: the closed-form approximation of
            :func:`predictive_probit`, deterministic and cheaper, close to
            Monte Carlo for two classes but more moderated with many.
        n_samples : int, default 1000
            Monte Carlo samples (``"mc"`` only).
        random_state : int, numpy.random.Generator or None
            Seed of the Monte Carlo draws (``"mc"`` only).

        Returns
        -------
        ndarray of shape (N, K)
            Rows sum to one; columns in the order of the network's outputs.

        References
        ----------
        PRML §5.7.3; MacKay, "The evidence framework applied to classification
        networks", Neural Computation 4 (1992).
        """
        _check_choice("method", method, METHODS)
        mean, cov = self.logit_distribution(X)
        if method == "mc":
            return predictive_mc(mean, cov, n_samples=n_samples, random_state=random_state)
        return predictive_probit(mean, cov)


def _safe_ratio(gamma: float, norm: float) -> float:
    return gamma / norm if norm > 0 else _ALPHA_MAX


def _covered(structure: str, shape: tuple[int, int, int]) -> slice:
    D, M, K = shape
    W = nw.n_params(D, M, K)
    return slice((D + 1) * M, W) if structure == "last_layer" else slice(0, W)


def _check_X(X: Any, D: int) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != D:
        raise ValueError(f"X must have shape (N, {D}), got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X holds NaN or infinite values")
    return X


def _last_layer_jacobian(z: np.ndarray, K: int) -> np.ndarray:
    """:math:`\\partial a_k / \\partial [W_2; b_2]_{jk'} = I_{kk'} \\tilde z_j` with :math:`\\tilde z = (z, 1)`.

    ``[W2; b2]`` raveled in C order is exactly ``W2.ravel()`` followed by
    ``b2``, the trailing part of the flatten order.
    """
    zb = np.concatenate([z, np.ones((z.shape[0], 1))], axis=1)  # (n, M+1)
    B = zb[:, None, :, None] * np.eye(K)[None, :, None, :]  # (n, K, M+1, K)
    return B.reshape(z.shape[0], K, -1)


def _nonnegative_part(H: np.ndarray) -> tuple[np.ndarray, int]:
    """:math:`H_+`: ``H`` with its negative eigenvalues set to zero, and how many were below rounding."""
    lam, V = np.linalg.eigh(H)
    # numpy.linalg.matrix_rank's rounding threshold: below it an eigenvalue is zero to working precision.
    tol = H.shape[0] * np.finfo(np.float64).eps * max(float(np.abs(lam).max(initial=0.0)), 1e-300)
    n_negative = int(np.count_nonzero(lam < -tol))
    if not np.any(lam < 0):
        return H, n_negative
    H_plus = (V * np.maximum(lam, 0.0)) @ V.T
    return (H_plus + H_plus.T) / 2, n_negative


def _blas_threads(size: int) -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread below a few thousand parameters: there, threads cost more than they save."""
    return threadpool_limits(limits=1, user_api="blas") if size <= _SMALL_FACTORISATION else contextlib.nullcontext()


def _factorised(
    H: np.ndarray, prior: np.ndarray, structure: str, hessian: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """``A``, its factor, ``diag(A^{-1})``, ``ln|A|`` and the number of negative eigenvalues set to zero."""
    P = prior.shape[0]
    if structure == "diagonal":
        tol = P * np.finfo(np.float64).eps * max(float(np.abs(H).max(initial=0.0)), 1e-300)
        n_negative = int(np.count_nonzero(H < -tol))
        A = np.maximum(H, 0.0) + prior  # (P,)
        factor = A
        logdet = float(np.sum(np.log(A)))
        variance = 1.0 / A
    else:
        H = (H + H.T) / 2  # symmetric by construction; remove rounding asymmetry
        n_negative = 0
        if hessian == "exact":
            H, n_negative = _nonnegative_part(H)
        A = H + np.diag(prior)  # PRML eq. 5.165
        try:
            factor = np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            # Only reachable through rounding (H_+ + diag(alpha) is positive definite).
            H, n_negative = _nonnegative_part(H)
            A = H + np.diag(prior)
            factor = np.linalg.cholesky(A)
        logdet = 2.0 * float(np.sum(np.log(np.diag(factor))))  # ln|A| = 2 sum ln L_ii
        L_inv = scipy.linalg.solve_triangular(factor, np.eye(P), lower=True, check_finite=False)
        variance = np.sum(L_inv**2, axis=0)  # (A^{-1})_ii = sum_j (L^{-1})_ji^2

    return A, factor, variance, logdet, n_negative


def posterior_from_curvature(
    params: Params,
    curvature_matrix: Any,
    prior_precision: PriorPrecision,
    data_error: float,
    *,
    structure: str = "full",
    hessian: str = "exact",
    activation: str = "tanh",
) -> LaplacePosterior:
    """The Laplace posterior, log evidence and :math:`\\gamma` from explicit inputs.

    Parameters
    ----------
    params : Params
        :math:`w_{\\text{MAP}}`.
    curvature_matrix : array-like
        :math:`H` (exact Hessian or Gauss–Newton matrix of the data error
        :math:`E`, **without** the prior) at ``params``: shape ``(W, W)`` for
        ``"full"``, ``(P, P)`` with ``P = K (M + 1)`` (the second-layer block)
        for ``"last_layer"``, ``(W,)`` (its diagonal) for ``"diagonal"``.
    prior_precision : float, 4 floats, or mapping
        :math:`\\alpha_g`; see :func:`as_prior_precision`.
    data_error : float
        :math:`E(w_{\\text{MAP}})`, summed over patterns.
    structure : {"full", "last_layer", "diagonal"}, default "full"
    hessian : {"exact", "gauss_newton"}, default "exact"
        What ``curvature_matrix`` is. Negative eigenvalues are set to zero in
        either case; for ``"gauss_newton"`` (positive semi-definite in exact
        arithmetic) the eigendecomposition is skipped unless rounding makes
        :math:`A` fail its Cholesky factorisation.
    activation : str, default "tanh"
        The hidden-unit activation, needed by the predictive.

    Returns
    -------
    LaplacePosterior

    Notes
    -----
    With :math:`\\alpha_i` the prior precision of parameter ``i`` and
    :math:`C` the covered parameters,

    .. math::

        \\ln p(\\mathcal D \\mid \\alpha) \\simeq -E - \\sum_{i \\in C} \\frac{\\alpha_i}{2} w_i^2
        - \\frac12 \\ln |A| + \\frac12 \\sum_{i \\in C} \\ln \\alpha_i ,
        \\qquad \\gamma_g = W_g - \\alpha_g \\sum_{i \\in g} (A^{-1})_{ii} .

    References
    ----------
    PRML §5.7.1 (eqs. 5.165, 5.175) and §5.7.2 (eqs. 5.177–5.180);
    MacKay (1992), "A practical Bayesian framework for backpropagation networks".
    """
    _check_choice("structure", structure, STRUCTURES)
    _check_choice("hessian", hessian, HESSIANS)
    nw.get_activation(activation)
    params = _as_float64(params)
    shape = _shape_of(params)
    alpha = as_prior_precision(prior_precision)
    data_error = float(data_error)
    if not np.isfinite(data_error):
        raise ValueError(f"data_error must be finite, got {data_error}")
    mean = np.asarray(nw.flatten(params), dtype=np.float64)
    covered = _covered(structure, shape)
    P = covered.stop - covered.start
    ids = _group_ids(shape)[covered]
    prior = alpha[ids]  # (P,)  alpha_i of each covered parameter
    H = np.asarray(curvature_matrix, dtype=np.float64)
    expected = (P,) if structure == "diagonal" else (P, P)
    if H.shape != expected:
        raise ValueError(
            f"for structure={structure!r} with D, M, K = {shape} the curvature must have shape "
            f"{expected}, got {H.shape}"
        )
    if not np.all(np.isfinite(H)):
        raise ValueError("the curvature holds NaN or infinite values")

    with _blas_threads(P):
        A, factor, variance, logdet, n_negative = _factorised(H, prior, structure, hessian)

    w = mean[covered]
    # PRML eq. 5.175, grouped: -E - sum alpha_i w_i^2 / 2 - ln|A| / 2 + sum ln(alpha_i) / 2
    log_evidence = -data_error - 0.5 * float(np.sum(prior * w**2)) - 0.5 * logdet + 0.5 * float(np.sum(np.log(prior)))
    sizes = np.bincount(ids, minlength=4)
    gamma_groups = np.full(4, np.nan)
    for g in np.unique(ids):
        # gamma_g = W_g - alpha_g Tr_g(A^{-1}), never below zero since A >= diag(alpha)
        gamma_groups[g] = max(float(sizes[g] - alpha[g] * np.sum(variance[ids == g])), 0.0)
    return LaplacePosterior(
        mean=mean,
        precision=A,
        prior_precision=alpha,
        data_error=data_error,
        log_evidence=float(log_evidence),
        gamma=float(np.nansum(gamma_groups)),
        gamma_groups=gamma_groups,
        n_negative_eigenvalues=n_negative,
        structure=structure,
        hessian=hessian,
        activation=activation,
        shape=shape,
        _factor=factor,
        _variance=variance,
    )


# --------------------------------------------------------------------------
# The moderated predictive
# --------------------------------------------------------------------------


def _check_logit_gaussian(mean: Any, cov: Any) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mean.ndim != 2 or cov.shape != (*mean.shape, mean.shape[1]):
        raise ValueError(f"mean must have shape (N, K) and cov (N, K, K); got {mean.shape} and {cov.shape}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
        raise ValueError("mean and cov must be finite")
    return mean, cov


def predictive_mc(
    mean: Any,
    cov: Any,
    *,
    n_samples: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> np.ndarray:
    """:math:`\\int \\operatorname{softmax}(a)\\, \\mathcal N(a \\mid \\mu_n, \\Sigma_n)\\, da` by Monte Carlo.

    The same ``n_samples`` standard normal draws :math:`\\varepsilon_s` serve
    every pattern, :math:`a_{ns} = \\mu_n + R_n \\varepsilon_s` with
    :math:`R_n R_n^\\top = \\Sigma_n` (from the eigendecomposition, so a
    singular :math:`\\Sigma_n` is fine): each pattern's estimate is unbiased,
    and the result for a pattern does not depend on which other patterns are
    in the batch.

    Parameters
    ----------
    mean : array-like of shape (N, K)
    cov : array-like of shape (N, K, K)
        Symmetric positive semi-definite.
    n_samples : int, default 1000
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    ndarray of shape (N, K)
        Rows sum to one. The standard error of each entry is at most
        :math:`0.5 / \\sqrt{n_{\\text{samples}}}`.

    References
    ----------
    PRML §11.1 (Monte Carlo) applied to eq. 5.190's integral.
    """
    mean, cov = _check_logit_gaussian(mean, cov)
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    N, K = mean.shape
    eps = np.random.default_rng(random_state).standard_normal((int(n_samples), K))  # (S, K)
    s, U = np.linalg.eigh((cov + np.swapaxes(cov, 1, 2)) / 2)
    root = U * np.sqrt(np.maximum(s, 0.0))[:, None, :]  # (N, K, K)  R R^T = Sigma
    out = np.empty((N, K))
    step = max(1, _CHUNK_ELEMENTS // (int(n_samples) * K))
    for start in range(0, N, step):
        rows = slice(start, start + step)
        a = mean[rows, None, :] + np.einsum("sl,nkl->nsk", eps, root[rows])  # (n, S, K)
        out[rows] = softmax(a, axis=2).mean(axis=1)
    return out


def predictive_probit(mean: Any, cov: Any) -> np.ndarray:
    """The probit-style approximation of the Gaussian–softmax integral.

    Each pairwise logit difference is moderated as in the two-class probit
    approximation (PRML eq. 4.153) and the results are normalised:

    .. math::

        \\tilde p_k = \\Big( \\sum_{l} \\exp\\big(-\\kappa_{kl} (\\mu_k - \\mu_l)\\big) \\Big)^{-1},
        \\qquad \\kappa_{kl} = \\big(1 + \\tfrac{\\pi}{8} \\operatorname{var}(a_k - a_l)\\big)^{-1/2},
        \\qquad p_k = \\tilde p_k / \\textstyle\\sum_l \\tilde p_l ,

    with :math:`\\operatorname{var}(a_k - a_l) = \\Sigma_{kk} + \\Sigma_{ll} - 2\\Sigma_{kl}`.
    With all :math:`\\kappa = 1` this is the softmax; for two classes it is
    exactly PRML's :math:`\\sigma(\\kappa(\\sigma_d^2)\\, \\mu_d)` on the logit
    difference :math:`d = a_1 - a_2`.

    Why not :math:`\\operatorname{softmax}(\\kappa \\odot \\mu)` with
    :math:`\\kappa_k = (1 + \\pi \\Sigma_{kk} / 8)^{-1/2}`: the softmax is
    unchanged when a common amount is added to every logit, but that formula
    is not, and the posterior variance of that common shift is set by the
    prior on ``b2`` alone (:math:`1 / (K \\alpha_{b2})`, large for a weak
    prior), which would flatten every prediction. The pairwise form uses only
    logit differences and so is invariant, like the integral it approximates.

    Parameters
    ----------
    mean : array-like of shape (N, K)
    cov : array-like of shape (N, K, K)

    Returns
    -------
    ndarray of shape (N, K)
        Rows sum to one.

    References
    ----------
    PRML §4.5.2, eqs. 4.151–4.155; D. J. C. MacKay, "The evidence framework
    applied to classification networks", Neural Computation 4 (1992);
    Z. Lu, E. Ie and F. Sha, "Mean-field approximation to Gaussian-softmax
    integral with application to uncertainty estimation", arXiv:2006.07584
    (2020), whose pairwise form this is.
    """
    mean, cov = _check_logit_gaussian(mean, cov)
    diag = np.diagonal(cov, axis1=1, axis2=2)  # (N, K)
    var = np.maximum(diag[:, :, None] + diag[:, None, :] - cov - np.swapaxes(cov, 1, 2), 0.0)
    kappa = 1.0 / np.sqrt(1.0 + np.pi / 8.0 * var)  # (N, K, K)  PRML eq. 4.154
    diff = mean[:, :, None] - mean[:, None, :]  # (N, K, K)  mu_k - mu_l
    log_p = -logsumexp(-kappa * diff, axis=2)  # ln p~_k
    return np.exp(log_softmax(log_p, axis=1))


# --------------------------------------------------------------------------
# Training the MAP network under a grouped prior
# --------------------------------------------------------------------------


class MapFit(NamedTuple):
    """The result of :func:`map_estimate`."""

    params: Params  #: w_MAP
    data_error: float  #: E(w_MAP), summed over patterns
    objective: float  #: E~(w_MAP) = E + sum_g alpha_g ||w_g||^2 / 2
    n_iter: int  #: L-BFGS iterations
    n_evaluations: int  #: evaluations of the error and gradient
    converged: bool  #: whether L-BFGS met its tolerance within max_iter
    loss_curve: list[float]  #: E~ / S after each iteration (S the total pattern weight)


def map_estimate(
    X: Any,
    T: Any,
    prior_precision: PriorPrecision,
    *,
    init: Params,
    sample_weight: Any | None = None,
    activation: str = "tanh",
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> MapFit:
    """Minimise :math:`\\tilde E(w) = E(w) + \\sum_g \\tfrac{\\alpha_g}{2} \\lVert w_g \\rVert^2` by L-BFGS.

    The gradient is the network's exact backpropagation
    (:func:`twolayer.network.error_and_gradient`) plus :math:`\\alpha_g w_g`;
    SciPy's L-BFGS-B minimises :math:`\\tilde E / S`, with :math:`S` the
    total pattern weight (``N`` without weights), so that ``tol`` does not
    depend on the number of patterns and an integer weight is the same as
    repeating its pattern.

    Parameters
    ----------
    X : array-like of shape (N, D)
    T : array-like of shape (N, K)
        Targets, rows summing to one.
    prior_precision : float, 4 floats, or mapping
        :math:`\\alpha_g`; see :func:`as_prior_precision`.
    init : Params
        The starting weights (not modified).
    sample_weight : array-like of shape (N,), optional
    activation : str, default "tanh"
    max_iter : int, default 1000
    tol : float, default 1e-6
        L-BFGS-B's ``gtol``: the largest gradient component of
        :math:`\\tilde E / S` at which it stops.

    Returns
    -------
    MapFit

    References
    ----------
    PRML §5.5.1 (weight decay, eq. 5.112) and §5.7.1 (eq. 5.165);
    D. C. Liu and J. Nocedal, "On the limited memory BFGS method for large
    scale optimization", Mathematical Programming 45 (1989).
    """
    alpha = as_prior_precision(prior_precision)
    init = _as_float64(init)
    shape = _shape_of(init)
    X = _check_X(X, shape[0])
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (X.shape[0], shape[2]):
        raise ValueError(f"T must have shape ({X.shape[0]}, {shape[2]}), got {T.shape}")
    s = None
    S = float(X.shape[0])
    if sample_weight is not None:
        s = np.asarray(sample_weight, dtype=np.float64)
        if s.shape != (X.shape[0],) or not np.all(np.isfinite(s)) or np.any(s < 0) or not np.any(s > 0):
            raise ValueError(f"sample_weight must be {X.shape[0]} finite non-negative numbers, not all zero")
        S = float(np.sum(s))
    prior = alpha[_group_ids(shape)]  # (W,)
    scale = 1.0 / S

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        E, grad = nw.error_and_gradient(nw.unflatten(theta, *shape), X, T, s, activation=activation)
        value = E + 0.5 * float(np.dot(prior, theta * theta))  # E~, PRML eq. 5.112 grouped
        return scale * value, scale * (np.asarray(nw.flatten(grad)) + prior * theta)

    curve: list[float] = []

    def record(intermediate_result: scipy.optimize.OptimizeResult) -> None:
        curve.append(float(intermediate_result.fun))

    D, M, K = shape
    # One BLAS thread for small problems, where threads only add synchronisation
    # (inside L-BFGS-B's own linear algebra too), as twolayer.training.optim does.
    small = X.shape[0] * M * (D + K) < SMALL_PROBLEM
    with threadpool_limits(limits=1, user_api="blas") if small else contextlib.nullcontext():
        result = scipy.optimize.minimize(
            objective,
            np.array(nw.flatten(init), dtype=np.float64),
            jac=True,
            method="L-BFGS-B",
            callback=record,
            options={"maxiter": int(max_iter), "gtol": tol, "ftol": tol * np.finfo(float).eps ** 0.5},
        )
    params = nw.unflatten(np.array(result.x), *shape)
    E = nw.error(params, X, T, s, activation=activation)
    return MapFit(
        params=params,
        data_error=float(E),
        objective=float(result.fun) / scale,
        n_iter=int(result.nit),
        n_evaluations=int(result.nfev),
        converged=bool(result.success),
        loss_curve=curve,
    )


# --------------------------------------------------------------------------
# Wiring to a fitted classifier
# --------------------------------------------------------------------------


def _last_layer_hessian(params: Params, X: np.ndarray, sample_weight: np.ndarray | None, activation: str) -> np.ndarray:
    """The second-layer block :math:`\\sum_n \\tilde z_n \\tilde z_n^\\top \\otimes \\Lambda_n` (curvature.md, "Exact Hessian").

    Exact and Gauss–Newton coincide here: :math:`a` is linear in ``[W2; b2]``.
    """
    z, a2 = nw.hidden_and_output(params, X, activation=activation)
    y = softmax(a2, axis=1)
    N, K = y.shape
    zb = np.concatenate([z, np.ones((N, 1))], axis=1)  # (N, M+1)
    Lam = y[:, :, None] * np.eye(K)[None] - y[:, :, None] * y[:, None, :]  # (N, K, K)
    if sample_weight is not None:
        Lam = sample_weight[:, None, None] * Lam
    # H[(j,k),(j',k')] = sum_n z_j z_j' Lambda_kk'; (j, k) raveled as in [W2; b2].ravel()
    H = np.einsum("nj,ni,nkl->jkil", zb, zb, Lam, optimize=True)
    P = zb.shape[1] * K
    return H.reshape(P, P)


def _data_curvature(
    params: Params,
    X: np.ndarray,
    T: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    activation: str,
    hessian: str,
    structure: str,
) -> np.ndarray:
    """The curvature of :math:`E` that :func:`posterior_from_curvature` expects for a structure."""
    with _blas_threads(nw.n_params(*_shape_of(params))):
        return _data_curvature_unlimited(
            params, X, T, sample_weight, activation=activation, hessian=hessian, structure=structure
        )


def _data_curvature_unlimited(
    params: Params,
    X: np.ndarray,
    T: np.ndarray,
    sample_weight: np.ndarray | None,
    *,
    activation: str,
    hessian: str,
    structure: str,
) -> np.ndarray:
    if structure == "last_layer":
        return _last_layer_hessian(params, X, sample_weight, activation)
    if structure == "diagonal":
        approximation = "gauss-newton" if hessian == "gauss_newton" else None
        diag = curvature.hessian_diagonal(
            params, X, T, sample_weight, approximation=approximation, activation=activation
        )
        return np.asarray(nw.flatten(diag))
    if hessian == "gauss_newton":
        return np.asarray(curvature.gauss_newton(params, X, T, sample_weight, activation=activation))
    return np.asarray(curvature.hessian(params, X, T, sample_weight, activation=activation))


def _targets(y: Any, classes: np.ndarray) -> np.ndarray:
    """1-of-K codes of ``y`` in the column order of ``classes``."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    index = np.searchsorted(classes, y)
    index = np.clip(index, 0, len(classes) - 1)
    unknown = classes[index] != y
    if np.any(unknown):
        raise ValueError(f"y holds labels the model was not trained on: {np.unique(y[unknown])[:5].tolist()}")
    return np.eye(len(classes))[index]


def laplace(
    model: Any,
    X: Any,
    y: Any,
    *,
    hessian: str = "exact",
    structure: str = "full",
    prior_precision: PriorPrecision | None = None,
    sample_weight: Any | None = None,
) -> LaplacePosterior:
    """The Laplace approximation of a fitted two-layer classifier's weight posterior.

    Parameters
    ----------
    model : TwoLayerClassifier or BayesianTwoLayerClassifier
        Fitted; any scikit-learn ``MLPClassifier`` with one hidden layer goes
        through :func:`twolayer.classifier.from_sklearn` first. Its weights
        are taken as :math:`w_{\\text{MAP}}`, moved along the softmax's null
        directions to their least-norm point (which changes no prediction;
        see the notes).
    X : array-like of shape (N, D)
        The training inputs (the posterior is over the data the model saw).
    y : array-like of shape (N,)
        Their labels, among ``model.classes_``.
    hessian : {"exact", "gauss_newton"}, default "exact"
    structure : {"full", "last_layer", "diagonal"}, default "full"
    prior_precision : float, 4 floats, mapping, or None
        :math:`\\alpha_g` for ``W1``, ``b1``, ``W2``, ``b2``. None takes the
        model's: ``alpha_`` for a BayesianTwoLayerClassifier, otherwise its
        weight decay ``alpha`` for **every** group, biases included (PRML's
        single-:math:`\\alpha` prior, eq. 5.162).
    sample_weight : array-like of shape (N,), optional
        The weights the model was trained with.

    Returns
    -------
    LaplacePosterior

    Notes
    -----
    TwoLayerClassifier (like scikit-learn) does not penalise biases, so with a
    bias prior its weights are a stationary point of :math:`\\tilde E` only up
    to :math:`\\alpha_b b` in the bias components; with the default
    (:math:`\\alpha_b` = the weight decay, typically small) that offset is
    negligible against the data curvature of every direction except the
    softmax's flat ones, and along those the weights are centred, which is
    exactly their posterior mode. A bias precision equal to the weight decay
    is a weak prior that keeps :math:`A` positive definite without pulling the
    biases; :class:`BayesianTwoLayerClassifier` re-estimates it from the
    evidence.

    References
    ----------
    PRML §5.7.1–5.7.3; MacKay (1992).
    """
    _check_choice("hessian", hessian, HESSIANS)
    _check_choice("structure", structure, STRUCTURES)
    params_ = getattr(model, "params_", None)
    classes = getattr(model, "classes_", None)
    if params_ is None or classes is None:
        raise ValueError(
            f"{type(model).__name__} is not fitted (it has no params_ and classes_); "
            "fit it first, or convert an MLPClassifier with twolayer.classifier.from_sklearn"
        )
    alpha: PriorPrecision
    if prior_precision is not None:
        alpha = prior_precision
    elif getattr(model, "alpha_", None) is not None:
        alpha = np.asarray(model.alpha_, dtype=np.float64)
    else:
        alpha = float(model.alpha)
        if alpha <= 0:
            raise ValueError(
                f"the model's weight decay alpha is {alpha}: the Hessian has M + 1 null "
                "directions, so A would be singular; pass prior_precision > 0"
            )
    params = _centred(_as_float64(params_))
    shape = _shape_of(params)
    activation = str(model.activation)
    X = _check_X(X, shape[0])
    T = _targets(y, np.asarray(classes))
    if T.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} patterns but y has {T.shape[0]}")
    s = None
    if sample_weight is not None:
        s = np.asarray(sample_weight, dtype=np.float64)
        if s.shape != (X.shape[0],) or np.any(s < 0) or not np.all(np.isfinite(s)):
            raise ValueError(f"sample_weight must be {X.shape[0]} finite non-negative numbers")
    E = nw.error(params, X, T, s, activation=activation)
    H = _data_curvature(params, X, T, s, activation=activation, hessian=hessian, structure=structure)
    return posterior_from_curvature(params, H, alpha, E, structure=structure, hessian=hessian, activation=activation)


# --------------------------------------------------------------------------
# The scikit-learn estimator
# --------------------------------------------------------------------------


def _seed_sequence(random_state: Any) -> np.random.SeedSequence:
    """A SeedSequence from None, an int, a RandomState or a Generator."""
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(np.iinfo(np.int32).max)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(2**63)))
    raise ValueError(f"random_state must be None, an int, a numpy RandomState or Generator; got {random_state!r}")


class BayesianTwoLayerClassifier(ClassifierMixin, BaseEstimator):
    """A two-layer network classifier whose weight decay is chosen by the evidence.

    The evidence framework (PRML §5.7.2, MacKay 1992) chooses the prior
    precisions :math:`\\alpha` from the training data alone, and the
    classifier then predicts with the moderated predictive of the final
    Laplace posterior (PRML §5.7.3) rather than the MAP network's outputs.
    Two ways to choose :math:`\\alpha`:

    ``alpha_search="fixed_point"`` (MacKay's re-estimation)
        Train the MAP network under :math:`\\alpha`, build the Laplace
        posterior there, set :math:`\\alpha_g \\leftarrow \\gamma_g / \\lVert w_g \\rVert^2`
        and repeat, re-training from the current weights, until the
        precisions settle. One precision for all groups, or one per group.
    ``alpha_search="grid"``
        Train the MAP network at each :math:`\\alpha` of ``alpha_grid``,
        every time from the same initial weights, and keep the one of
        largest log evidence. One precision for all groups.

    The two differ because the fixed point makes the evidence stationary
    with the MAP weights (and so the curvature) held fixed, while the
    evidence of the re-trained network also changes through
    :math:`\\ln |A|` as :math:`w_{\\text{MAP}}` moves with :math:`\\alpha`.
    On the digits the fixed point settles at several times the
    :math:`\\alpha` that the largest re-trained evidence (and held-out data)
    prefer.

    Moderation helps most where the MAP network is over-confident (a weak
    prior, few data, extrapolation). Where the training data are nearly
    separable the output curvature :math:`\\Lambda` vanishes at the
    confidently fitted patterns, the Gaussian posterior is far broader than
    the true (one-sided) one, and the moderated predictive is under-confident:
    on 500 digits with 8 hidden units its held-out log-loss was about twice
    the MAP network's (0.39 against 0.19 at the fixed point's alpha; the
    MAP probabilities are available from :meth:`predict_proba_map`).

    The MAP network is trained here by L-BFGS (:func:`map_estimate`) on the
    network's exact gradient plus the grouped penalty
    :math:`\\sum_g \\tfrac{\\alpha_g}{2} \\lVert w_g \\rVert^2`, biases
    included: :class:`~twolayer.classifier.TwoLayerClassifier` has one
    weight-decay coefficient and leaves biases unpenalised, which cannot
    express a grouped prior.

    Parameters
    ----------
    n_hidden : int, default 20
        The number of hidden units :math:`M`.
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
    alpha : float, default 1.0
        The starting prior precision of every group for ``"fixed_point"``,
        in the units of TwoLayerClassifier's ``alpha`` (the coefficient of
        :math:`\\tfrac12 \\lVert w \\rVert^2` added to the summed error).
    alpha_search : {"fixed_point", "grid"}, default "fixed_point"
    per_group : bool, default False
        With ``"fixed_point"``, re-estimate one precision per group (``W1``,
        ``b1``, ``W2``, ``b2``; MacKay 1992) instead of one for all.
        Per-group precisions can drift along the rescaling between the layers:
        where the hidden units work in their linear range, a smaller ``W1``
        and a larger ``W2`` fit alike, each re-estimation shrinks
        :math:`\\alpha_{W2}` and grows :math:`\\alpha_{W1}`, and the cycles
        can run off towards a linear network (seen on the digits, and on two
        moons with 8 hidden units; a warning says when a precision reaches
        the bounds 1e-8 or 1e8).
    alpha_grid : array-like of positive floats or None, default None
        The precisions tried by ``"grid"``; None is
        ``numpy.logspace(-2, 2, 17)`` (four per decade).
    hessian : {"gauss_newton", "exact"}, default "gauss_newton"
        The curvature of the posterior. Gauss–Newton is positive
        semi-definite; the exact Hessian's negative eigenvalues are set to
        zero (counted in ``n_negative_eigenvalues_``).
    structure : {"full", "last_layer", "diagonal"}, default "full"
        ``full`` costs :math:`O(W^3)` time and :math:`O(W^2)` memory (a few
        thousand weights); ``diagonal`` scales to any size. ``last_layer``
        treats the first layer as fixed: cheap and exact for the second
        layer, but its evidence ignores the first layer's weights, so it
        re-estimates only ``W2``'s and ``b2``'s precisions (a tied
        ``alpha`` is applied to every group) and is a poor guide for ``"grid"``.
    max_cycles : int, default 10
        The most train / re-estimate cycles of ``"fixed_point"``.
    alpha_tol : float, default 1e-2
        ``"fixed_point"`` stops when no precision changes by more than this
        relative amount.
    max_iter : int, default 1000
        L-BFGS iterations per training.
    tol : float, default 1e-6
        L-BFGS's tolerance on the largest gradient component of
        :math:`\\tilde E / S`.
    method : {"mc", "probit"}, default "mc"
        How the predictive integral is evaluated (see
        :meth:`LaplacePosterior.predict_proba`).
    n_samples : int, default 1000
        Monte Carlo samples for ``method="mc"``.
    random_state : int, numpy.random.Generator, RandomState or None, default None
        Seeds the initial weights and the Monte Carlo draws (fixed at fit
        time, so that the predictions of a fitted model never change).

    Attributes
    ----------
    alpha_ : ndarray of shape (4,)
        The chosen prior precisions of ``W1``, ``b1``, ``W2``, ``b2`` (all
        equal unless ``per_group``).
    gamma_ : float
        The number of well-determined parameters of the final posterior.
    gamma_groups_ : ndarray of shape (4,)
        :math:`\\gamma_g` per group (NaN for groups ``last_layer`` does not cover).
    log_evidence_ : float
        The log evidence of the final posterior.
    evidence_curve_ : list of float
        The log evidence after each training, in the order trained (for
        ``"fixed_point"`` it need not increase).
    alpha_curve_ : list of ndarray of shape (4,)
        The precisions of each training.
    n_cycles_ : int
        Trainings run.
    n_negative_eigenvalues_ : int
        Of the final posterior's curvature (see :class:`LaplacePosterior`).
    posterior_ : LaplacePosterior
        The final Laplace posterior.
    classes_, coefs_, intercepts_, params_, n_features_in_, feature_names_in_
        As for TwoLayerClassifier; the weights are the chosen MAP network's,
        moved along the softmax's flat directions to their least-norm point
        (which changes no prediction).
    loss_ : float
        :math:`\\tilde E / S` of the chosen MAP network, :math:`S` the total
        pattern weight.
    best_loss_ : float
        The least entry of ``loss_curve_`` in the chosen network's training.
    loss_curve_ : list of float
        :math:`\\tilde E / S` after each L-BFGS iteration of every training in turn.
    validation_scores_, best_validation_score_ : None
    n_iter_ : int
        L-BFGS iterations over all trainings.
    t_ : int
        Patterns processed (``N`` per function evaluation).
    n_layers_ : int
        3.
    n_outputs_ : int
        ``K``.
    out_activation_ : str
        "softmax".

    References
    ----------
    D. J. C. MacKay, "A practical Bayesian framework for backpropagation
    networks" and "The evidence framework applied to classification
    networks", Neural Computation 4 (1992); PRML §5.7.
    """

    def __init__(
        self,
        n_hidden: int = 20,
        activation: str = "tanh",
        alpha: float = 1.0,
        alpha_search: str = "fixed_point",
        per_group: bool = False,
        alpha_grid: Any = None,
        hessian: str = "gauss_newton",
        structure: str = "full",
        max_cycles: int = 10,
        alpha_tol: float = 1e-2,
        max_iter: int = 1000,
        tol: float = 1e-6,
        method: str = "mc",
        n_samples: int = 1000,
        random_state: Any = None,
    ) -> None:
        self.n_hidden = n_hidden
        self.activation = activation
        self.alpha = alpha
        self.alpha_search = alpha_search
        self.per_group = per_group
        self.alpha_grid = alpha_grid
        self.hessian = hessian
        self.structure = structure
        self.max_cycles = max_cycles
        self.alpha_tol = alpha_tol
        self.max_iter = max_iter
        self.tol = tol
        self.method = method
        self.n_samples = n_samples
        self.random_state = random_state

    def _check_hyperparameters(self) -> np.ndarray:
        """Check the hyperparameters; return the grid of ``"grid"`` (largest first)."""
        for name in ("n_hidden", "max_cycles", "max_iter", "n_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("alpha", "alpha_tol", "tol"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < float(value) < np.inf):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        nw.get_activation(self.activation)
        _check_choice("alpha_search", self.alpha_search, ALPHA_SEARCHES)
        _check_choice("hessian", self.hessian, HESSIANS)
        _check_choice("structure", self.structure, STRUCTURES)
        _check_choice("method", self.method, METHODS)
        if not isinstance(self.per_group, (bool, np.bool_)):
            raise TypeError(f"per_group must be True or False, got {self.per_group!r}")
        if self.per_group and self.alpha_search == "grid":
            raise ValueError("per_group=True needs alpha_search='fixed_point' (a grid holds one alpha)")
        grid = np.logspace(-2, 2, 17) if self.alpha_grid is None else np.asarray(self.alpha_grid, dtype=np.float64)
        if grid.ndim != 1 or grid.size < 1 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
            raise ValueError(f"alpha_grid must be a list of positive finite numbers, got {self.alpha_grid!r}")
        return np.sort(grid)[::-1]

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BayesianTwoLayerClassifier:
        """Choose the prior precisions by the evidence and fit the final posterior.

        Parameters
        ----------
        X : array-like of shape (N, D)
            Dense; computed in float64.
        y : array-like of shape (N,)
        sample_weight : array-like of shape (N,), optional
            Non-negative pattern weights; an integer weight is the same as
            repeating the pattern.

        Returns
        -------
        self
        """
        grid = self._check_hyperparameters()
        X, y = _validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.shape[0] < 2:
            raise ValueError(
                f"BayesianTwoLayerClassifier needs samples of at least 2 classes; got 1 class ({self.classes_[0]!r})"
            )
        s = None
        if sample_weight is not None:
            s = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            if not np.any(s > 0):
                raise ValueError("the sample weights are all zero; at least one must be positive")
        N, D = X.shape
        K = self.classes_.shape[0]
        T = np.eye(K)[codes]
        init_seed, predict_seed = _seed_sequence(self.random_state).spawn(2)
        params = nw.init_params(D, int(self.n_hidden), K, random_state=np.random.default_rng(init_seed))
        # Drawn now so that a fitted model's Monte Carlo predictions never change.
        self._predict_seed = int(predict_seed.generate_state(1)[0])

        self.evidence_curve_: list[float] = []
        self.alpha_curve_: list[np.ndarray] = []
        self.loss_curve_: list[float] = []
        n_iter = n_evaluations = 0

        def train(alpha: np.ndarray, init: Params) -> tuple[MapFit, LaplacePosterior]:
            nonlocal n_iter, n_evaluations
            fit = map_estimate(
                X,
                T,
                alpha,
                init=init,
                sample_weight=s,
                activation=self.activation,
                max_iter=int(self.max_iter),
                tol=float(self.tol),
            )
            n_iter += fit.n_iter
            n_evaluations += fit.n_evaluations
            self.loss_curve_.extend(fit.loss_curve)
            w = _centred(fit.params)  # changes no prediction: the posterior mode along the flat directions
            H = _data_curvature(w, X, T, s, activation=self.activation, hessian=self.hessian, structure=self.structure)
            E = nw.error(w, X, T, s, activation=self.activation)
            posterior = posterior_from_curvature(
                w, H, alpha, E, structure=self.structure, hessian=self.hessian, activation=self.activation
            )
            self.evidence_curve_.append(posterior.log_evidence)
            self.alpha_curve_.append(alpha.copy())
            return fit, posterior

        if self.alpha_search == "grid":
            best: tuple[MapFit, LaplacePosterior] | None = None
            for value in grid:
                # Every alpha from the same initial weights: a path of warm starts would carry one
                # alpha's basin (an underfit one, from a large alpha) into the next.
                fit, posterior = train(np.full(4, value), params)
                if best is None or posterior.log_evidence > best[1].log_evidence:
                    best = (fit, posterior)
            assert best is not None  # the grid is never empty
            fit, posterior = best
            if grid.size > 1 and posterior.prior_precision[0] in (grid[0], grid[-1]):
                warnings.warn(
                    f"the evidence is largest at the end of alpha_grid (alpha = {posterior.prior_precision[0]:g}); "
                    "widen the grid",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        else:
            alpha = np.full(4, float(self.alpha))
            for _ in range(int(self.max_cycles)):
                fit, posterior = train(alpha, params)
                params = posterior.params
                new = posterior.reestimated_prior_precision(tie=not self.per_group)
                if np.all(np.abs(new - alpha) <= self.alpha_tol * alpha):
                    break
                alpha = new
            else:
                warnings.warn(
                    f"the evidence re-estimation of alpha did not settle within max_cycles={self.max_cycles} "
                    f"(last alpha {alpha.tolist()}); increase max_cycles or alpha_tol",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        if np.any(posterior.prior_precision <= _ALPHA_MIN) or np.any(posterior.prior_precision >= _ALPHA_MAX):
            warnings.warn(
                f"a prior precision reached the bound {_ALPHA_MIN:g} or {_ALPHA_MAX:g} "
                f"(alpha = {posterior.prior_precision.tolist()}): the evidence drove a group's weights to "
                "zero or without bound, as per-group precisions can along the rescaling between the "
                "layers; use one alpha (per_group=False)",
                ConvergenceWarning,
                stacklevel=2,
            )
        if not fit.converged:
            warnings.warn(
                f"L-BFGS did not converge within max_iter={self.max_iter} iterations for the chosen "
                "alpha; increase max_iter",
                ConvergenceWarning,
                stacklevel=2,
            )

        S = float(N if s is None else np.sum(s))
        self.posterior_ = posterior
        self.alpha_ = posterior.prior_precision.copy()
        self.gamma_ = posterior.gamma
        self.gamma_groups_ = posterior.gamma_groups.copy()
        self.log_evidence_ = posterior.log_evidence
        self.n_negative_eigenvalues_ = posterior.n_negative_eigenvalues
        self.n_cycles_ = len(self.evidence_curve_)
        self.params_ = posterior.params
        self.coefs_ = [self.params_.W1, self.params_.W2]
        self.intercepts_ = [self.params_.b1, self.params_.b2]
        # E~ of the centred weights: centring changes E not at all and the penalty only downwards.
        self.loss_ = (
            posterior.data_error
            + 0.5 * float(np.sum(posterior.prior_precision[_group_ids(posterior.shape)] * posterior.mean**2))
        ) / S
        self.best_loss_ = min(fit.loss_curve, default=self.loss_)
        self.validation_scores_ = None
        self.best_validation_score_ = None
        self.n_iter_ = n_iter
        self.t_ = N * n_evaluations
        self.n_layers_ = 3
        self.n_outputs_ = K
        self.out_activation_ = "softmax"
        return self

    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return _validate_data(self, X, dtype=np.float64, reset=False)

    def predict_proba(self, X: Any) -> np.ndarray:
        """The moderated predictive :math:`p(C_k \\mid x, \\mathcal D)`.

        Returns
        -------
        ndarray of shape (N, K)
            Columns in the order of ``classes_``.
        """
        X = self._check_X(X)
        return self.posterior_.predict_proba(
            X, method=self.method, n_samples=int(self.n_samples), random_state=self._predict_seed
        )

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The class of largest moderated probability.

        Returns
        -------
        ndarray of shape (N,)
        """
        proba = self.predict_proba(X)  # first: it checks that the model is fitted
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba_map(self, X: Any) -> np.ndarray:
        """The MAP network's own outputs :math:`y_k(x, w_{\\text{MAP}})`, without moderation.

        Returns
        -------
        ndarray of shape (N, K)
        """
        X = self._check_X(X)
        return nw.forward(self.params_, X, activation=self.activation)
