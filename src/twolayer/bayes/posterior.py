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
:func:`twolayer.bayes.laplace` wires it to a fitted classifier. NumPy
inputs are computed in float64 NumPy (SciPy's triangular solves on the
host). Arrays of another array-API namespace (PyTorch or CuPy on a GPU,
``array_api_strict``) are computed where they are, in their floating dtype,
with the namespace's ``linalg``: the posterior's ``mean``, ``precision``,
factor and marginal variance are then arrays of that namespace and device,
as are the predictives; the scalars are Python floats, and the prior and
:math:`\\gamma_g` (four numbers each) NumPy arrays. :meth:`LaplacePosterior.to_dict`
always gives NumPy arrays.

It is one module because the factorisations, the evidence and the predictives all share the
posterior precision's factor; split, that factor would travel between modules.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import array_api_compat
import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from twolayer import curvature
from twolayer import network as nw
from twolayer.bayes.choices import HESSIANS, METHODS, STRUCTURES
from twolayer.bayes.memory import factorisation_bytes, logit_estimate, predict_estimate
from twolayer.bayes.predictive import (
    CHUNK_ELEMENTS,
    _array_namespace,
    _free_memory,
    predictive_mc,
    predictive_probit,
)
from twolayer.errors import DataError
from twolayer.estimator import check_choice
from twolayer.network import Params
from twolayer.prior import PriorPrecision, as_prior_precision, group_ids, group_sizes
from twolayer.resources import check_memory, covered
from twolayer.training.on_device import to_host

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


Array = Any  # an array of any array-API namespace


def _shape_of(params: Params) -> tuple[int, int, int]:
    # Arrays (of any namespace) are read as they are; lists and other array-likes through NumPy.
    if not isinstance(params, tuple):
        return nw.param_shapes(params)
    return nw.param_shapes(Params(*(p if array_api_compat.is_array_api_obj(p) else np.asarray(p) for p in params)))


def _as_float64(params: Params) -> Params:
    return Params(*(np.asarray(p, dtype=np.float64) for p in params))


def _on_device(xp: Any, params: Params, curvature_matrix: Array) -> tuple[Params, Array]:
    """The weights and the curvature of a device, cast to one floating dtype (float64 for integers).

    Both must be arrays of ``xp`` on one device: nothing is moved silently.
    """
    arrays = (*params, curvature_matrix)
    if not all(array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray) for a in arrays):
        raise ValueError(
            f"params and the curvature must all be arrays of {xp.__name__} (on one device), "
            "or all NumPy: move them to one place first"
        )
    floating = [a.dtype for a in arrays if xp.isdtype(a.dtype, "real floating")]
    dtype = xp.result_type(*floating) if len(floating) == len(arrays) else xp.float64
    cast = [a if a.dtype == dtype else xp.astype(a, dtype) for a in arrays]
    return Params(*cast[:4]), cast[4]


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
    xp = array_api_compat.array_namespace(W2, b2)
    return Params(W1, b1, W2 - xp.mean(W2, axis=1, keepdims=True), b2 - xp.mean(b2))


def _namespace_of(a: Array) -> Any:
    """The array-API namespace of ``a`` (array_api_compat's wrapper of NumPy for a NumPy array)."""
    return array_api_compat.array_namespace(a)


def _host_copy(a: Array) -> np.ndarray:
    """A NumPy copy of an array of any namespace and device (one explicit transfer)."""
    return np.array(to_host(a), copy=True)


def _group_slices(shape: tuple[int, int, int], covered: slice) -> list[tuple[int, slice]]:
    """``(g, positions)`` for each prior group the covered slice holds, positions relative to its start.

    The groups are contiguous in :func:`twolayer.network.flatten` order, so a
    slice per group reads them in any namespace (no boolean indexing).
    """
    ends = np.cumsum(group_sizes(*shape))
    out = []
    for g, (start, stop) in enumerate(zip((0, *ends[:-1]), ends)):
        lo, hi = max(int(start), covered.start), min(int(stop), covered.stop)
        if lo < hi:
            out.append((g, slice(lo - covered.start, hi - covered.start)))
    return out


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
    mean : array of shape (W,)
        :math:`w_{\\text{MAP}}` in :func:`twolayer.network.flatten` order. A
        NumPy float64 array, or an array of the namespace, device and dtype
        the posterior was built from (see the module notes); ``precision``,
        :attr:`marginal_variance` and the predictives follow it.
    precision : array
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

    mean: Array
    precision: Array
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
    _factor: Array = field(repr=False)
    # diag(A^{-1}) over the covered parameters.
    _variance: Array = field(repr=False)

    @property
    def params(self) -> Params:
        """The mean as :class:`~twolayer.network.Params`."""
        return nw.unflatten(self.mean, *self.shape)

    @property
    def covered(self) -> slice:
        """The slice of the flat parameter vector that the precision covers."""
        return _covered(self.structure, self.shape)

    @property
    def marginal_variance(self) -> Array:
        """:math:`\\operatorname{diag}(A^{-1})` over the covered parameters, in the namespace of ``mean``."""
        return _namespace_of(self._variance).asarray(self._variance, copy=True)

    def to_dict(self) -> dict[str, Any]:
        """The posterior as NumPy arrays and JSON-serialisable scalars, for a model file.

        :meth:`from_dict` rebuilds it exactly (as a NumPy posterior: a device's
        arrays are copied to the host here). The arrays are ``mean``,
        ``precision``, ``prior_precision``, ``gamma_groups``, ``factor`` (the
        Cholesky factor, or the diagonal) and ``variance``; everything else is
        a float, an int, a str or a list of ints.
        """
        return {
            "mean": _host_copy(self.mean),
            "precision": _host_copy(self.precision),
            "prior_precision": self.prior_precision.copy(),
            "gamma_groups": self.gamma_groups.copy(),
            "factor": _host_copy(self._factor),
            "variance": _host_copy(self._variance),
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
            If True, one precision for all the covered groups,
            :math:`\\alpha \\leftarrow \\gamma / \\lVert w \\rVert^2` over them.
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
            does not cover keep their precision.

        References
        ----------
        PRML eqs. 5.178–5.180; D. J. C. MacKay, "A practical Bayesian framework
        for backpropagation networks", Neural Computation 4 (1992), eq. 4.2.
        """
        ids = group_ids(*self.shape)
        # ||w_g||^2, summed here: W numbers come back from a device, against the W x W it factorised.
        norms = np.bincount(ids, weights=to_host(self.mean**2), minlength=4)
        covered = ~np.isnan(self.gamma_groups)
        nu = float(hyperprior)
        if not (math.isfinite(nu) and nu >= 0):
            raise ValueError(f"hyperprior must be a finite number of at least zero, got {hyperprior!r}")
        if not (math.isfinite(centre) and centre > 0):
            raise ValueError(f"centre must be a positive finite number, got {centre!r}")
        pseudo_norm = nu / float(centre)  # nu pseudo-parameters of mean square 1 / centre
        if tie:
            # The evidence of a posterior over some groups says nothing of the others' prior: a last-layer
            # posterior re-estimates the output layer's precision, and the hidden layer keeps its own.
            new = self.prior_precision.copy()
            new[covered] = _safe_ratio(self.gamma + nu, float(norms[covered].sum()) + pseudo_norm)
        else:
            new = self.prior_precision.copy()
            for g in np.flatnonzero(covered):
                new[g] = _safe_ratio(float(self.gamma_groups[g]) + nu, float(norms[g]) + pseudo_norm)
        return np.clip(new, ALPHA_MIN, ALPHA_MAX)

    def logit_distribution(self, X: Any) -> tuple[Array, Array]:
        """The linearised Gaussian over the output activations at each input.

        .. math::

            a(x) \\sim \\mathcal N\\big(a(x, w_{\\text{MAP}}),\\; B A^{-1} B^\\top\\big),
            \\qquad B = \\partial a / \\partial w

        Parameters
        ----------
        X : array-like of shape (N, D)
            For a posterior on a device: an array of its namespace and device.

        Returns
        -------
        mean : array of shape (N, K)
            :math:`a_{\\text{MAP}}(x_n)`, in the namespace and on the device of ``mean``.
        covariance : array of shape (N, K, K)
            :math:`\\Sigma_a(x_n) = B_n A^{-1} B_n^\\top`, likewise.

        References
        ----------
        PRML §5.7.3, eqs. 5.185–5.188 (their multi-output analogue).
        """
        X = _check_X(X, self.shape[0], like=self.mean)
        xp = _namespace_of(self.mean)
        device = array_api_compat.device(self.mean)
        X = X if X.dtype == self.mean.dtype else xp.astype(X, self.mean.dtype)  # the posterior's precision
        N = X.shape[0]
        check_memory(
            logit_estimate(N, *self.shape, self.structure),
            "the predictive's Gaussian over the logits",
            "the number of rows of X",
            parts=f"the covariances of {N} patterns' logits and the weight Jacobian",
            available=_free_memory(xp, device),
        )
        params = self.params
        K = self.shape[2]
        P = self.covered.stop - self.covered.start
        cov = xp.empty((N, K, K), dtype=self.mean.dtype, device=device)
        step = max(1, CHUNK_ELEMENTS // (K * nw.n_params(*self.shape)))
        # A posterior read from a file may hold finite values whose products overflow: that is
        # reported below, once, as what it is, rather than as a warning and a NaN probability.
        with _blas_threads(P), np.errstate(over="ignore", invalid="ignore"):
            z, a_map = nw.hidden_and_output(params, X, activation=self.activation)
            for start in range(0, N, step):
                rows = slice(start, min(start + step, N))
                cov[rows, ...] = self._logit_covariance(params, X[rows, ...], z[rows, ...])
        finite = xp.all(xp.isfinite(a_map), axis=1) & xp.all(xp.isfinite(cov), axis=(1, 2))
        if not bool(xp.all(finite)):
            row = int(np.flatnonzero(~to_host(finite))[0])
            raise DataError(
                f"the posterior's predictive is not finite at row {row}: its weights or covariance factor "
                "hold values too large for float64"
            )
        return a_map, cov

    def _logit_covariance(self, params: Params, X: Array, z: Array) -> Array:
        """:math:`B_n A^{-1} B_n^\\top` of a chunk of patterns, shape ``(n, K, K)``."""
        xp = _namespace_of(X)
        K = self.shape[2]
        P = self.covered.stop - self.covered.start
        if self.structure == "last_layer":
            B = _last_layer_jacobian(z, K)  # (n, K, P)
        else:
            B = curvature.weight_jacobian(params, X, activation=self.activation)  # (n, K, W)
        n = B.shape[0]
        # NumPy keeps its einsum contractions: model files record the probabilities they gave, to the bit.
        host = isinstance(B, np.ndarray)
        if self.structure == "diagonal":
            if host:
                return np.einsum("nkp,p,nlp->nkl", B, 1.0 / self._factor, B, optimize=True)
            return (B / self._factor) @ xp.permute_dims(B, (0, 2, 1))  # one (K, P) @ (P, K) per pattern
        # A^{-1} = L^{-T} L^{-1}, so B A^{-1} B^T = V^T V with V = L^{-1} B^T.
        V = xp.reshape(_solve_lower(xp, self._factor, xp.permute_dims(xp.reshape(B, (n * K, P)), (1, 0))), (P, n, K))
        if host:
            return np.einsum("pnk,pnl->nkl", V, V, optimize=True)
        V = xp.permute_dims(V, (1, 0, 2))  # (n, P, K)
        return xp.permute_dims(V, (0, 2, 1)) @ V

    def predict_proba(
        self,
        X: Any,
        *,
        method: str = "mc",
        n_samples: int = 1000,
        random_state: int | np.random.Generator | None = None,
    ) -> Array:
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
        array of shape (N, K)
            Rows sum to one; columns in the order of the network's outputs.
            In the namespace and on the device of ``mean``.

        References
        ----------
        PRML §5.7.3; MacKay, "The evidence framework applied to classification
        networks", Neural Computation 4 (1992).
        """
        check_choice("method", method, METHODS)
        X = _check_X(X, self.shape[0], like=self.mean)
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
            available=_free_memory(_namespace_of(self.mean), array_api_compat.device(self.mean)),
        )


def _safe_ratio(gamma: float, norm: float) -> float:
    return gamma / norm if norm > 0 else ALPHA_MAX


def _covered(structure: str, shape: tuple[int, int, int]) -> slice:
    D, M, K = shape
    W = nw.n_params(D, M, K)
    return slice((D + 1) * M, W) if structure == "last_layer" else slice(0, W)


def _check_X(X: Any, D: int, *, like: Array | None = None) -> Array:
    """``X`` checked: float64 NumPy, or, where ``like`` (the weights) is on a device, an array beside it.

    On a device ``X`` must be an array of the namespace and device of ``like``
    (nothing is moved silently, scikit-learn's rule for array-API inputs); it
    is cast to the floating dtype of the two.
    """
    if like is None or isinstance(like, np.ndarray):
        X = np.asarray(X, dtype=np.float64)
    else:
        xp = _namespace_of(like)
        device = array_api_compat.device(like)
        if not (
            array_api_compat.is_array_api_obj(X)
            and not isinstance(X, np.ndarray)
            and array_api_compat.array_namespace(X) is xp
            and array_api_compat.device(X) == device
        ):
            raise ValueError(
                f"X must be an array of {xp.__name__} on {device}, where the weights are; "
                f"got {type(X).__module__}.{type(X).__name__}. Move it there first, or bring the model to NumPy"
            )
        dtype = like.dtype if not xp.isdtype(X.dtype, "real floating") else xp.result_type(X.dtype, like.dtype)
        X = X if X.dtype == dtype else xp.astype(X, dtype)
    if X.ndim != 2 or X.shape[1] != D:
        raise ValueError(f"X must have shape (N, {D}), got shape {tuple(X.shape)}")
    xp_X = _namespace_of(X)
    if not bool(xp_X.all(xp_X.isfinite(X))):
        raise ValueError("X holds NaN or infinite values")
    return X


def _last_layer_jacobian(z: Array, K: int) -> Array:
    """:math:`\\partial a_k / \\partial [W_2; b_2]_{jk'} = I_{kk'} \\tilde z_j` with :math:`\\tilde z = (z, 1)`.

    ``[W2; b2]`` raveled in C order is exactly ``W2.ravel()`` followed by
    ``b2``, the trailing part of the flatten order.
    """
    xp = _namespace_of(z)
    device = array_api_compat.device(z)
    zb = xp.concat([z, xp.ones((z.shape[0], 1), dtype=z.dtype, device=device)], axis=1)  # (n, M+1)
    B = zb[:, None, :, None] * xp.eye(K, dtype=z.dtype, device=device)[None, :, None, :]  # (n, K, M+1, K)
    return xp.reshape(B, (z.shape[0], K, zb.shape[1] * K))


def _solve_lower(xp: Any, L: Array, B: Array) -> Array:
    """:math:`L^{-1} B` for a lower-triangular ``L``, by the namespace's triangular solve where it has one.

    The array API standard has none: SciPy's serves NumPy, PyTorch's and
    CuPy's their arrays, and any other namespace gets its general solve
    (correct for a triangular matrix, only slower).
    """
    if array_api_compat.is_numpy_namespace(xp):
        return scipy.linalg.solve_triangular(L, B, lower=True, check_finite=False)
    if array_api_compat.is_torch_namespace(xp):
        import torch

        return torch.linalg.solve_triangular(L, B, upper=False)
    if array_api_compat.is_cupy_namespace(xp):
        import importlib

        return importlib.import_module("cupyx.scipy.linalg").solve_triangular(L, B, lower=True)
    return xp.linalg.solve(L, B)


def _cholesky(xp: Any, A: Array) -> Array | None:
    """The lower Cholesky factor of ``A``, or None where ``A`` is not positive definite to working precision.

    NumPy (and array_api_strict) raise LinAlgError, PyTorch its own
    (a RuntimeError); CuPy returns NaN instead, hence the look at the diagonal.
    """
    errors: tuple[type[Exception], ...] = (np.linalg.LinAlgError,)
    if array_api_compat.is_torch_namespace(xp):
        import torch

        errors = (*errors, torch.linalg.LinAlgError)
    try:
        L = xp.linalg.cholesky(A)
    except errors:
        return None
    return L if bool(xp.all(xp.isfinite(xp.linalg.diagonal(L)))) else None


def _plus_diagonal(xp: Any, H: Array, d: Array) -> Array:
    """:math:`H + \\operatorname{diag}(d)`; the array API standard has no ``diag`` (one P x P temporary either way)."""
    return H + xp.eye(H.shape[0], dtype=H.dtype, device=array_api_compat.device(H)) * d


def _nonnegative_part(xp: Any, H: Array) -> tuple[Array, int]:
    """:math:`H_+`: ``H`` with its negative eigenvalues set to zero, and how many were below rounding."""
    lam, V = xp.linalg.eigh(H)
    # numpy.linalg.matrix_rank's rounding threshold: below it an eigenvalue is zero to working precision.
    largest = float(xp.max(xp.abs(lam))) if lam.shape[0] else 0.0
    tol = H.shape[0] * xp.finfo(H.dtype).eps * max(largest, 1e-300)
    n_negative = int(xp.sum(xp.astype(lam < -tol, xp.int64)))
    if not bool(xp.any(lam < 0)):
        return H, n_negative
    H_plus = (V * xp.clip(lam, min=0.0)) @ xp.permute_dims(V, (1, 0))
    return (H_plus + xp.permute_dims(H_plus, (1, 0))) / 2, n_negative


def _blas_threads(size: int) -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread below a few thousand parameters: there, threads cost more than they save."""
    return threadpool_limits(limits=1, user_api="blas") if size <= _SMALL_FACTORISATION else contextlib.nullcontext()


def _factorised(
    xp: Any, H: Array, prior: Array, structure: str, hessian: str
) -> tuple[Array, Array, Array, float, int]:
    """``A``, its factor, ``diag(A^{-1})``, ``ln|A|`` and the number of negative eigenvalues set to zero.

    In the namespace ``xp`` of ``H`` and ``prior`` (NumPy's included), on their device.
    """
    P = prior.shape[0]
    device = array_api_compat.device(H)
    if structure == "diagonal":
        largest = float(xp.max(xp.abs(H))) if P else 0.0
        tol = P * xp.finfo(H.dtype).eps * max(largest, 1e-300)
        n_negative = int(xp.sum(xp.astype(H < -tol, xp.int64)))
        A = xp.clip(H, min=0.0) + prior  # (P,)
        factor = A
        logdet = float(xp.sum(xp.log(A)))
        variance = 1.0 / A
    else:
        H = (H + xp.permute_dims(H, (1, 0))) / 2  # symmetric by construction; remove rounding asymmetry
        n_negative = 0
        if hessian == "exact":
            H, n_negative = _nonnegative_part(xp, H)
        A = _plus_diagonal(xp, H, prior)  # PRML eq. 5.166
        factor = _cholesky(xp, A)
        if factor is None:
            # Only reachable through rounding (H_+ + diag(alpha) is positive definite).
            H, n_negative = _nonnegative_part(xp, H)
            A = _plus_diagonal(xp, H, prior)
            factor = _cholesky(xp, A)
            if factor is None:
                raise np.linalg.LinAlgError("the posterior precision is not positive definite to working precision")
        logdet = 2.0 * float(xp.sum(xp.log(xp.linalg.diagonal(factor))))  # ln|A| = 2 sum ln L_ii
        L_inv = _solve_lower(xp, factor, xp.eye(P, dtype=H.dtype, device=device))
        variance = xp.sum(L_inv**2, axis=0)  # (A^{-1})_ii = sum_j (L^{-1})_ji^2

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
    xp = _array_namespace(*params, curvature_matrix)
    if xp is None:
        params = _as_float64(params)
        H = np.asarray(curvature_matrix, dtype=np.float64)
        xp = _namespace_of(H)
    else:
        params, H = _on_device(xp, params, curvature_matrix)
    device = array_api_compat.device(H)
    shape = _shape_of(params)
    alpha = as_prior_precision(prior_precision)
    data_error = float(data_error)
    if not np.isfinite(data_error):
        raise ValueError(f"data_error must be finite, got {data_error}")
    mean = nw.flatten(params)
    covered = _covered(structure, shape)
    P = covered.stop - covered.start
    prior_host = alpha[group_ids(*shape)[covered]]  # (P,)  alpha_i of each covered parameter
    prior = xp.asarray(prior_host, dtype=H.dtype, device=device)
    expected = (P,) if structure == "diagonal" else (P, P)
    if tuple(H.shape) != expected:
        raise ValueError(
            f"for structure={structure!r} with D, M, K = {shape} the curvature must have shape "
            f"{expected}, got {tuple(H.shape)}"
        )
    if not bool(xp.all(xp.isfinite(H))):
        raise ValueError("the curvature holds NaN or infinite values")

    if structure != "diagonal":
        check_memory(
            factorisation_bytes(P, xp.finfo(H.dtype).bits // 8),
            "the posterior's factorisation" + ("" if isinstance(H, np.ndarray) else f" on {device}"),
            (),
            parts=f"{P} x {P} matrices: the symmetric curvature, A, its Cholesky factor and inverse",
            switch={"structure": "diagonal"},
            available=_free_memory(xp, device),
        )
    with _blas_threads(P):
        A, factor, variance, logdet, n_negative = _factorised(xp, H, prior, structure, hessian)

    w = mean[covered]
    # PRML eq. 5.175, grouped: -E - sum alpha_i w_i^2 / 2 - ln|A| / 2 + sum ln(alpha_i) / 2
    log_evidence = (
        -data_error - 0.5 * float(xp.sum(prior * w**2)) - 0.5 * logdet + 0.5 * float(np.sum(np.log(prior_host)))
    )
    sizes = group_sizes(*shape)
    gamma_groups = np.full(4, np.nan)
    for g, positions in _group_slices(shape, covered):
        # gamma_g = W_g - alpha_g Tr_g(A^{-1}), never below zero since A >= diag(alpha)
        gamma_groups[g] = max(float(sizes[g] - alpha[g] * float(xp.sum(variance[positions]))), 0.0)
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
