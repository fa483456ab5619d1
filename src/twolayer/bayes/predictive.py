"""The moderated predictive: the softmax integrated over a Gaussian on the output activations.

The Laplace posterior, linearised about :math:`w_{\\text{MAP}}`, gives each
input a Gaussian :math:`a \\sim \\mathcal N(\\mu_n, \\Sigma_n)` over the output
activations (:meth:`twolayer.bayes.LaplacePosterior.logit_distribution`);
:math:`p(C_k \\mid x) = \\int \\operatorname{softmax}_k(a)\\, \\mathcal N(a)\\, da`
is computed here by Monte Carlo (:func:`predictive_mc`, exact for the
linearised model as the number of samples grows) or by a probit-style
approximation (:func:`predictive_probit`). PRML §5.7.3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import log_softmax, logsumexp, softmax

from twolayer.resources import check_memory

__all__ = ["mc_memory", "predictive_mc", "predictive_probit", "probit_memory"]

# Elements in one temporary of the predictive (2**22 float64 = 32 MiB): the
# Jacobian B of a chunk of patterns, or the Monte Carlo logits of a chunk.
CHUNK_ELEMENTS = 2**22


def _mc_chunk(n_patterns: int, n_classes: int, n_samples: int) -> int:
    """Patterns per chunk of :func:`predictive_mc`: a chunk's logits stay within CHUNK_ELEMENTS (at least one)."""
    return min(int(n_patterns), max(1, CHUNK_ELEMENTS // (int(n_samples) * int(n_classes))))


def mc_memory(n_patterns: int, n_classes: int, n_samples: int) -> int:
    """The bytes :func:`predictive_mc` allocates: the draws, the covariances' roots, a chunk's logits.

    Counted from its arrays: the ``S x K`` draws; the eigendecomposition and
    square roots of the covariances, four ``N x K x K`` arrays; four arrays of
    a chunk's ``n x S x K`` logits (the sum with the means, the softmax's
    shifted logits, exponentials and quotients); the ``N x K`` result.

    Parameters
    ----------
    n_patterns, n_classes, n_samples : int
        :math:`N`, :math:`K` and the Monte Carlo samples :math:`S`.

    Returns
    -------
    int
    """
    N, K, S = int(n_patterns), int(n_classes), int(n_samples)
    return 8 * (S * K + 4 * N * K * K + 4 * _mc_chunk(N, K, S) * S * K + N * K)


def probit_memory(n_patterns: int, n_classes: int) -> int:
    """The bytes :func:`predictive_probit` allocates: six ``N x K x K`` arrays."""
    return 8 * 6 * int(n_patterns) * int(n_classes) ** 2


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
    PRML §11.1 (Monte Carlo) applied to eq. 5.189's integral.
    """
    mean, cov = _check_logit_gaussian(mean, cov)
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    N, K = mean.shape
    S = int(n_samples)
    step = _mc_chunk(N, K, S)
    check_memory(
        mc_memory(N, K, S),
        "Monte Carlo prediction",
        "n_samples",
        parts=f"{S} draws of {K} logits, {step} pattern{'s' if step > 1 else ''} at a time",
        switch={"method": "probit"},
    )
    eps = np.random.default_rng(random_state).standard_normal((int(n_samples), K))  # (S, K)
    s, U = np.linalg.eigh((cov + np.swapaxes(cov, 1, 2)) / 2)
    root = U * np.sqrt(np.maximum(s, 0.0))[:, None, :]  # (N, K, K)  R R^T = Sigma
    out = np.empty((N, K))
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
    N, K = mean.shape
    check_memory(
        probit_memory(N, K), "the probit predictive", "the number of rows of mean", parts=f"{N} x {K} x {K} arrays"
    )
    diag = np.diagonal(cov, axis1=1, axis2=2)  # (N, K)
    var = np.maximum(diag[:, :, None] + diag[:, None, :] - cov - np.swapaxes(cov, 1, 2), 0.0)
    kappa = 1.0 / np.sqrt(1.0 + np.pi / 8.0 * var)  # (N, K, K)  PRML eq. 4.154
    diff = mean[:, :, None] - mean[:, None, :]  # (N, K, K)  mu_k - mu_l
    log_p = -logsumexp(-kappa * diff, axis=2)  # ln p~_k
    return np.exp(log_softmax(log_p, axis=1))
