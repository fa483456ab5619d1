"""The Laplace posterior of the two-layer network and its evidence.

This module is the last section of ``docs/curvature.md`` (PRML
§5.7, after MacKay 1992). Errors are **sums** over patterns (PRML eq. 5.24),
so every curvature and evidence here is a sum over patterns too.

The prior
    A zero-mean Gaussian on every parameter, with one precision per group
    :math:`g \\in` (``W1``, ``b1``, ``W2``, ``b2``) — the grouped prior of
    MacKay (1992) and PRML §5.5.1, eqs. 5.122–5.123 —

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
    :math:`A = H_+ + \\operatorname{diag}(\\alpha)` (PRML eq. 5.166), where
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
The predictive (PRML §5.7.3)
    :meth:`LaplacePosterior.logit_distribution` linearises the output
    activations about :math:`w_{\\text{MAP}}`, so that
    :math:`a \\sim \\mathcal N(a_{\\text{MAP}}, B A^{-1} B^\\top)` with
    :math:`B = \\partial a / \\partial w`; :mod:`twolayer.bayes.predictive`
    integrates the softmax over it.

:func:`posterior_from_curvature` takes explicit inputs (the mathematics);
:func:`twolayer.bayes.laplace` wires it to a fitted classifier. All
computation is in float64 NumPy.

It is one module because the factorisations, the evidence and the predictives all share the
posterior precision's factor; split, that factor would travel between modules.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from twolayer import curvature
from twolayer import network as nw
from twolayer.bayes.choices import HESSIANS, METHODS, STRUCTURES
from twolayer.bayes.memory import FACTORISATION_MATRICES, logit_estimate, predict_estimate
from twolayer.bayes.predictive import CHUNK_ELEMENTS, predictive_mc, predictive_probit
from twolayer.errors import DataError
from twolayer.estimator import check_choice
from twolayer.network import Params
from twolayer.prior import PriorPrecision, as_prior_precision, group_ids
from twolayer.resources import check_memory, covered

__all__ = ["HESSIANS", "METHODS", "SCALARS", "STRUCTURES", "LaplacePosterior", "posterior_from_curvature"]

#: The posterior's scalar entries, as :meth:`LaplacePosterior.to_dict` gives them (its arrays aside).
SCALARS = ("data_error", "log_evidence", "gamma", "n_negative_eigenvalues", "structure", "hessian", "activation")


# Re-estimated precisions are kept in [ALPHA_MIN, ALPHA_MAX]: a group whose
# weights all vanish would otherwise get an infinite precision, and one with
# gamma_g = 0 a zero precision and a singular A.
ALPHA_MIN, ALPHA_MAX = 1e-8, 1e8

# Up to this many parameters the posterior's factorisations run on one BLAS
# thread, where threads cost more in synchronisation than they save.
_SMALL_FACTORISATION = 2048


# --------------------------------------------------------------------------
# Shared by the package's modules
# --------------------------------------------------------------------------


def _shape_of(params: Params) -> tuple[int, int, int]:
    return nw.param_shapes(Params(*(np.asarray(p) for p in params)) if isinstance(params, tuple) else params)


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
            "shape",
            *SCALARS,
        } - set(state)
        if missing:
            raise ValueError(f"a LaplacePosterior state needs the keys {sorted(missing)}")
        D, M, K = (int(v) for v in state["shape"])
        structure = check_choice("structure", state["structure"], STRUCTURES)
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
            hessian=check_choice("hessian", state["hessian"], HESSIANS),
            activation=nw.get_activation(str(state["activation"])).name,
            shape=(D, M, K),
            _factor=factor,
            _variance=np.array(state["variance"], dtype=np.float64),
        )

    def reestimated_prior_precision(
        self, *, tie: bool = False, hyperprior: float = 0.0, centre: float = 1.0
    ) -> np.ndarray:
        """MacKay's update :math:`\\alpha_g \\leftarrow \\gamma_g / \\lVert w_g \\rVert^2`, optionally under a Gamma hyperprior.

        Parameters
        ----------
        tie : bool, default False
            If True, one precision for all groups,
            :math:`\\alpha \\leftarrow \\gamma / \\lVert w \\rVert^2` over the
            covered groups, returned for all four.
        hyperprior : float, default 0.0
            :math:`\\nu \\ge 0`, the strength of a Gamma hyperprior on each
            precision, :math:`\\alpha_g \\sim \\operatorname{Gamma}(1 + \\nu / 2,\\
            \\text{rate } \\nu / (2 \\alpha_0))`, whose mode is ``centre``. The
            update then maximises the evidence plus :math:`\\ln p(\\alpha)`
            (MAP-II), which is
            :math:`\\alpha_g \\leftarrow (\\gamma_g + \\nu) / (\\lVert w_g \\rVert^2 + \\nu / \\alpha_0)`:
            as if each group had :math:`\\nu` more well-determined parameters
            of mean square :math:`1 / \\alpha_0`. Zero is no hyperprior.
        centre : float, default 1.0
            :math:`\\alpha_0 > 0`, the hyperprior's mode.

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
        ids = group_ids(*self.shape)
        norms = np.bincount(ids, weights=self.mean**2, minlength=4)  # ||w_g||^2
        covered = ~np.isnan(self.gamma_groups)
        nu = float(hyperprior)
        if not (math.isfinite(nu) and nu >= 0):
            raise ValueError(f"hyperprior must be a finite number of at least zero, got {hyperprior!r}")
        if not (math.isfinite(centre) and centre > 0):
            raise ValueError(f"centre must be a positive finite number, got {centre!r}")
        pseudo_norm = nu / float(centre)  # nu pseudo-parameters of mean square 1 / centre
        if tie:
            new = np.full(4, _safe_ratio(self.gamma + nu, float(norms[covered].sum()) + pseudo_norm))
        else:
            new = self.prior_precision.copy()
            for g in np.flatnonzero(covered):
                new[g] = _safe_ratio(float(self.gamma_groups[g]) + nu, float(norms[g]) + pseudo_norm)
        return np.clip(new, ALPHA_MIN, ALPHA_MAX)

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
        PRML §5.7.3, eqs. 5.185–5.188 (their multi-output analogue).
        """
        X = _check_X(X, self.shape[0])
        check_memory(
            logit_estimate(X.shape[0], *self.shape, self.structure),
            "the predictive's Gaussian over the logits",
            "the number of rows of X",
            parts=f"the covariances of {X.shape[0]} patterns' logits and the weight Jacobian",
        )
        params = self.params
        K = self.shape[2]
        P = self.covered.stop - self.covered.start
        cov = np.empty((X.shape[0], K, K))
        step = max(1, CHUNK_ELEMENTS // (K * nw.n_params(*self.shape)))
        # A posterior read from a file may hold finite values whose products overflow: that is
        # reported below, once, as what it is, rather than as a warning and a NaN probability.
        with _blas_threads(P), np.errstate(over="ignore", invalid="ignore"):
            z, a_map = nw.hidden_and_output(params, X, activation=self.activation)
            for start in range(0, X.shape[0], step):
                self._logit_covariance(
                    params, X[start : start + step], z[start : start + step], cov[start : start + step]
                )
        finite = np.isfinite(a_map).all(axis=1) & np.isfinite(cov).all(axis=(1, 2))
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise DataError(
                f"the posterior's predictive is not finite at row {row}: its weights or covariance factor "
                "hold values too large for float64"
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
        check_choice("method", method, METHODS)
        X = _check_X(X, self.shape[0])
        if method == "mc" and (isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1):
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        self.check_predict_memory(X.shape[0], method=method, n_samples=int(n_samples) if method == "mc" else 1)
        with covered():  # the whole predictive was checked just above
            mean, cov = self.logit_distribution(X)
            if method == "mc":
                return predictive_mc(mean, cov, n_samples=n_samples, random_state=random_state)
            return predictive_probit(mean, cov)

    def check_predict_memory(self, n_patterns: int, *, method: str = "mc", n_samples: int = 1000) -> None:
        """Refuse (:class:`~twolayer.errors.InsufficientMemory`) a prediction that would not fit in memory.

        Warns (:class:`~twolayer.errors.HighMemoryWarning`) past half of the
        memory available; see :func:`twolayer.bayes.memory.predict_estimate`.

        Parameters
        ----------
        n_patterns : int
            The patterns to predict; with Monte Carlo one pattern's draws
            already take ``8 * n_samples * K`` bytes several times over.
        method, n_samples
            As for :meth:`predict_proba`.
        """
        D, M, K = self.shape
        mc = method == "mc"
        check_memory(
            predict_estimate(n_patterns, D, M, K, self.structure, method, n_samples if mc else 1),
            "prediction",
            ("n_samples", "the number of rows of X") if mc else ("the number of rows of X",),
            parts=(f"{n_samples} Monte Carlo draws of {K} logits, " if mc else "")
            + f"the logits' covariances of {n_patterns} pattern{'s' if n_patterns != 1 else ''}",
            switch={"method": "probit"} if mc else None,
            stacklevel=4,
        )


def _safe_ratio(gamma: float, norm: float) -> float:
    return gamma / norm if norm > 0 else ALPHA_MAX


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
        A = H + np.diag(prior)  # PRML eq. 5.166
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
    PRML §5.7.1 (eqs. 5.166, 5.175) and §5.7.2 (eqs. 5.177–5.180);
    MacKay (1992), "A practical Bayesian framework for backpropagation networks".
    """
    check_choice("structure", structure, STRUCTURES)
    check_choice("hessian", hessian, HESSIANS)
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
    ids = group_ids(*shape)[covered]
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

    if structure != "diagonal":
        check_memory(
            8 * (FACTORISATION_MATRICES - 1) * P * P,
            "the posterior's factorisation",
            (),
            parts=f"{P} x {P} matrices: the symmetric curvature, A, its Cholesky factor and inverse",
            switch={"structure": "diagonal"},
        )
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
