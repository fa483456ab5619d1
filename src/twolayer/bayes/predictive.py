"""The moderated predictive: the softmax integrated over a Gaussian on the output activations.

The Laplace posterior, linearised about :math:`w_{\\text{MAP}}`, gives each
input a Gaussian :math:`a \\sim \\mathcal N(\\mu_n, \\Sigma_n)` over the output
activations (:meth:`twolayer.bayes.LaplacePosterior.logit_distribution`);
:math:`p(C_k \\mid x) = \\int \\operatorname{softmax}_k(a)\\, \\mathcal N(a)\\, da`
is computed here by Monte Carlo (:func:`predictive_mc`, exact for the
linearised model as the number of samples grows) or by a probit-style
approximation (:func:`predictive_probit`). PRML §5.7.3.

Both follow the array API standard: NumPy arrays give float64 NumPy results
as ever; arrays of another namespace (PyTorch or CuPy on a GPU,
``array_api_strict``) are computed where they are, in their own floating
dtype, and the result is an array of that namespace and device.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np
import scipy.special

from twolayer.resources import check_memory
from twolayer.training.on_device import to_host

__all__ = ["mc_memory", "predictive_mc", "predictive_probit", "probit_memory"]

# Elements in one temporary of the predictive (2**22 float64 = 32 MiB): the
# Jacobian B of a chunk of patterns, or the Monte Carlo logits of a chunk.
CHUNK_ELEMENTS = 2**22


def _array_namespace(*arrays: Any) -> Any | None:
    """The namespace of the array-API arrays among ``arrays`` when it is not NumPy's (nor Dask's), else None.

    None means the host path: NumPy (lists and other array-likes are converted
    there, as they always were), and Dask, whose collections are brought here
    by ``np.asarray`` where a whole matrix is needed.

    Raises
    ------
    ValueError
        When the arrays are of several namespaces, or on several devices.
    """
    present = [a for a in arrays if a is not None and array_api_compat.is_array_api_obj(a)]
    if not present or all(isinstance(a, np.ndarray) or array_api_compat.is_dask_array(a) for a in present):
        return None
    try:
        xp = array_api_compat.array_namespace(*present)
    except TypeError as exc:
        kinds = sorted({f"{type(a).__module__}.{type(a).__name__}" for a in present})
        raise ValueError(f"the arrays must all be of one namespace, got {kinds}: move them to one place first") from exc
    if array_api_compat.is_numpy_namespace(xp):  # NumPy scalars and 0-d arrays mixed in
        return None
    devices = {str(array_api_compat.device(a)) for a in present}
    if len(devices) > 1:
        raise ValueError(f"the arrays must be on one device, got {sorted(devices)}")
    return xp


def _free_memory(xp: Any, device: Any) -> int | None:
    """The bytes free where arrays of ``xp`` on ``device`` live; None for NumPy (this machine's, the default).

    Looked up through :mod:`twolayer.training.on_device` at each call (so
    that a test can patch it), imported here lazily to keep this module light.
    """
    if xp is None or array_api_compat.is_numpy_namespace(xp):
        return None
    from twolayer.training import on_device

    return on_device.free_memory(xp, device)


# NumPy arrays go through SciPy's special functions and NumPy's einsum, exactly as before the
# array-API path existed: model files record the probabilities they gave, to the bit
# (tests/test_modelfile.py). Other namespaces get the same formulas written with the standard.


def _softmax(xp: Any, a: Any, axis: int) -> Any:
    """:math:`\\exp(a_k) / \\sum_l \\exp(a_l)` along ``axis``, shifted by the maximum against overflow."""
    if isinstance(a, np.ndarray):
        return scipy.special.softmax(a, axis=axis)
    e = xp.exp(a - xp.max(a, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_softmax(xp: Any, a: Any, axis: int) -> Any:
    """:math:`a_k - \\ln \\sum_l \\exp(a_l)` along ``axis``."""
    if isinstance(a, np.ndarray):
        return scipy.special.log_softmax(a, axis=axis)
    shifted = a - xp.max(a, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


def _log_sum_exp(xp: Any, a: Any, axis: int) -> Any:
    """:math:`\\ln \\sum_l \\exp(a_l)` along ``axis`` (the axis dropped), shifted by the maximum."""
    if isinstance(a, np.ndarray):
        return scipy.special.logsumexp(a, axis=axis)
    top = xp.max(a, axis=axis, keepdims=True)
    return xp.squeeze(top, axis=axis) + xp.log(xp.sum(xp.exp(a - top), axis=axis))


def _covariance_roots(cov: Any) -> np.ndarray:
    """:math:`R_n = U_n S_n^{1/2}` with :math:`R_n R_n^\\top = \\Sigma_n`, from NumPy's eigendecomposition on the host.

    A root is unique only up to the signs (and, for repeated eigenvalues, the
    basis) that an eigensolver chooses; taking NumPy's for every namespace
    makes a seed give the same samples on every device, to rounding. The
    ``N x K x K`` covariances travel to the host and back once.
    """
    cov = to_host(cov)
    s, U = np.linalg.eigh((cov + np.swapaxes(cov, 1, 2)) / 2)
    return U * np.sqrt(np.maximum(s, 0.0))[:, None, :]  # (N, K, K)  R R^T = Sigma


def _draws(xp: Any, mean: Any, eps: Any, root: Any) -> Any:
    """:math:`a_{nsk} = \\mu_{nk} + \\sum_l \\varepsilon_{sl} R_{nkl}` for a chunk of patterns, shape ``(n, S, K)``."""
    if isinstance(mean, np.ndarray):
        return mean[:, None, :] + np.einsum("sl,nkl->nsk", eps, root)
    return mean[:, None, :] + eps @ xp.permute_dims(root, (0, 2, 1))  # one (S, K) @ (K, K) per pattern


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


def _check_logit_gaussian(mean: Any, cov: Any) -> tuple[Any, Any, Any]:
    """The namespace (NumPy's for host inputs, made float64) and the checked ``mean`` and ``cov`` in it."""
    xp = _array_namespace(mean, cov)
    if xp is None:
        xp = array_api_compat.array_namespace(np.empty(0))
        mean, cov = np.asarray(mean, dtype=np.float64), np.asarray(cov, dtype=np.float64)
    else:
        floating = [a.dtype for a in (mean, cov) if xp.isdtype(a.dtype, "real floating")]
        dtype = xp.result_type(*floating) if len(floating) == 2 else xp.float64
        mean, cov = (a if a.dtype == dtype else xp.astype(a, dtype) for a in (mean, cov))
    if mean.ndim != 2 or tuple(cov.shape) != (*mean.shape, mean.shape[1]):
        raise ValueError(
            f"mean must have shape (N, K) and cov (N, K, K); got {tuple(mean.shape)} and {tuple(cov.shape)}"
        )
    if not (bool(xp.all(xp.isfinite(mean))) and bool(xp.all(xp.isfinite(cov)))):
        raise ValueError("mean and cov must be finite")
    return xp, mean, cov


def predictive_mc(
    mean: Any,
    cov: Any,
    *,
    n_samples: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> Any:
    """:math:`\\int \\operatorname{softmax}(a)\\, \\mathcal N(a \\mid \\mu_n, \\Sigma_n)\\, da` by Monte Carlo.

    The same ``n_samples`` standard normal draws :math:`\\varepsilon_s` serve
    every pattern, :math:`a_{ns} = \\mu_n + R_n \\varepsilon_s` with
    :math:`R_n R_n^\\top = \\Sigma_n` (from the eigendecomposition, so a
    singular :math:`\\Sigma_n` is fine): each pattern's estimate is unbiased,
    and the result for a pattern does not depend on which other patterns are
    in the batch. The roots are NumPy's, computed on the host for arrays of
    any namespace (:math:`K \\times K` each), so that a seed gives the same
    samples everywhere; the draws and the softmax run where ``mean`` is.

    Parameters
    ----------
    mean : array of shape (N, K)
    cov : array of shape (N, K, K)
        Symmetric positive semi-definite; of the namespace and device of ``mean``.
    n_samples : int, default 1000
    random_state : int, numpy.random.Generator or None
        The draws are made here by NumPy's generator (and moved to the device
        of ``mean``), so a seed gives the same draws, and results equal to
        rounding, on every device.

    Returns
    -------
    array of shape (N, K)
        Of the namespace and device of ``mean``. Rows sum to one. The standard
        error of each entry is at most :math:`0.5 / \\sqrt{n_{\\text{samples}}}`.

    References
    ----------
    PRML §11.1 (Monte Carlo) applied to eq. 5.189's integral.
    """
    xp, mean, cov = _check_logit_gaussian(mean, cov)
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    N, K = mean.shape
    S = int(n_samples)
    step = _mc_chunk(N, K, S)
    device = array_api_compat.device(mean)
    check_memory(
        mc_memory(N, K, S),
        "Monte Carlo prediction",
        "n_samples",
        parts=f"{S} draws of {K} logits, {step} pattern{'s' if step > 1 else ''} at a time",
        switch={"method": "probit"},
        available=_free_memory(xp, device),
    )
    # Drawn on the host from NumPy's generator whatever the device: a seed means the same draws everywhere.
    eps = xp.asarray(
        np.random.default_rng(random_state).standard_normal((S, K)), dtype=mean.dtype, device=device
    )  # (S, K)
    root = xp.asarray(_covariance_roots(cov), dtype=mean.dtype, device=device)  # (N, K, K)
    out = xp.empty((N, K), dtype=mean.dtype, device=device)
    for start in range(0, N, step):
        rows = slice(start, min(start + step, N))
        a = _draws(xp, mean[rows, ...], eps, root[rows, ...])  # (n, S, K)
        out[rows, :] = xp.mean(_softmax(xp, a, axis=2), axis=1)
    return out


def predictive_probit(mean: Any, cov: Any) -> Any:
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
    mean : array of shape (N, K)
    cov : array of shape (N, K, K)
        Of the namespace and device of ``mean``.

    Returns
    -------
    array of shape (N, K)
        Of the namespace and device of ``mean``. Rows sum to one.

    References
    ----------
    PRML §4.5.2, eqs. 4.151–4.155; D. J. C. MacKay, "The evidence framework
    applied to classification networks", Neural Computation 4 (1992);
    Z. Lu, E. Ie and F. Sha, "Mean-field approximation to Gaussian-softmax
    integral with application to uncertainty estimation", arXiv:2006.07584
    (2020), whose pairwise form this is.
    """
    xp, mean, cov = _check_logit_gaussian(mean, cov)
    N, K = mean.shape
    check_memory(
        probit_memory(N, K),
        "the probit predictive",
        "the number of rows of mean",
        parts=f"{N} x {K} x {K} arrays",
        available=_free_memory(xp, array_api_compat.device(mean)),
    )
    diag = xp.linalg.diagonal(cov)  # (N, K)
    var = xp.clip(diag[:, :, None] + diag[:, None, :] - cov - xp.permute_dims(cov, (0, 2, 1)), min=0.0)
    kappa = 1.0 / xp.sqrt(1.0 + math.pi / 8.0 * var)  # (N, K, K)  PRML eq. 4.154
    diff = mean[:, :, None] - mean[:, None, :]  # (N, K, K)  mu_k - mu_l
    log_p = -_log_sum_exp(xp, -kappa * diff, axis=2)  # ln p~_k
    return xp.exp(_log_softmax(xp, log_p, axis=1))  # p_k = p~_k / sum_l p~_l
