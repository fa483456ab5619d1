"""What the Bayesian network allocates, estimated before it starts: the evidence cycles and the predictive.

All in float64 (8 bytes a number), with :math:`W` the number of weights and
:math:`P` the parameters the posterior covers (:math:`W` for ``"full"`` and
``"diagonal"``, :math:`K(M + 1)` for ``"last_layer"``):

- **a cycle of the evidence procedure** is the largest of its three phases:
  the MAP network's L-BFGS fit (:func:`twolayer.classifier.memory.fit_estimate`),
  the curvature (:func:`twolayer.curvature.memory_estimate`), and the
  factorisation of :math:`A = H_+ + \\operatorname{diag}(\\alpha)`, about six
  :math:`P \\times P` matrices at once (the curvature, its symmetric part,
  the eigenvectors or :math:`A`, the Cholesky factor, :math:`L^{-1}` and its
  square, with LAPACK's copies and workspace); the posterior of the previous
  cycle (its precision and factor, two :math:`P \\times P` matrices) lives
  alongside, and with ``alpha_search="grid"`` the best one so far as well.
- **the predictive** of ``N`` patterns: the hidden and output activations,
  the :math:`N \\times K \\times K` covariances of the logits and, per chunk of
  patterns, the weight Jacobian and its triangular solve; then the integral
  (:func:`twolayer.bayes.predictive.mc_memory`,
  :func:`twolayer.bayes.predictive.probit_memory`).

On a device (arrays of PyTorch, CuPy or another array-API namespace) the
same estimates are checked against the device's free memory
(:func:`twolayer.training.on_device.free_memory`), with the item size of the
arrays' dtype where it is known.

``tests/test_resources.py`` compares these estimates with what ``tracemalloc``
records (which does not see LAPACK's own workspace).
"""

from __future__ import annotations

from twolayer import curvature
from twolayer import network as nw
from twolayer.bayes.predictive import CHUNK_ELEMENTS, mc_memory, probit_memory
from twolayer.classifier.memory import fit_estimate as classifier_fit_estimate

__all__ = [
    "FACTORISATION_MATRICES",
    "factorisation_bytes",
    "fit_estimate",
    "laplace_estimate",
    "logit_estimate",
    "predict_estimate",
]

#: P x P matrices alive at once while the posterior is factorised (the curvature included).
FACTORISATION_MATRICES = 6


def factorisation_bytes(n_covered: int, itemsize: int = 8) -> int:
    """The bytes the factorisation of :math:`A` allocates beside the curvature it is given.

    :data:`FACTORISATION_MATRICES` ``P x P`` matrices less the curvature
    itself, which is already there (in this process or on the device).

    Parameters
    ----------
    n_covered : int
        :math:`P`, the parameters the posterior covers.
    itemsize : int, default 8
        Bytes per number: 8 for float64, 4 for float32.
    """
    P = int(n_covered)
    return int(itemsize) * (FACTORISATION_MATRICES - 1) * P * P


def _covered_size(structure: str, M: int, K: int, W: int) -> int:
    return (M + 1) * K if structure == "last_layer" else W


def laplace_estimate(
    n_samples: int, n_features: int, n_hidden: int, n_classes: int, structure: str, hessian: str
) -> tuple[int, int]:
    """The bytes of one Laplace approximation at its peak, and of the posterior it leaves.

    The larger of the curvature (:func:`twolayer.curvature.memory_estimate`)
    and the factorisation (:data:`FACTORISATION_MATRICES` ``P x P`` matrices,
    or a few vectors for ``"diagonal"``); the posterior keeps its precision
    and factor.

    Parameters
    ----------
    n_samples, n_features, n_hidden, n_classes : int
        :math:`N`, :math:`D`, :math:`M`, :math:`K`.
    structure, hessian : str
        As for :func:`twolayer.bayes.laplace`.

    Returns
    -------
    peak : int
    kept : int
    """
    N, D, M, K = int(n_samples), int(n_features), int(n_hidden), int(n_classes)
    W = nw.n_params(D, M, K)
    if structure == "diagonal":
        kind, factorisation, kept = "diagonal", 8 * 4 * W, 8 * 2 * W
    else:
        P = _covered_size(structure, M, K, W)
        kind = "last_layer" if structure == "last_layer" else hessian.replace("exact", "hessian")
        factorisation, kept = 8 * FACTORISATION_MATRICES * P * P, 8 * 2 * P * P
    return max(curvature.memory_estimate(kind, N, D, M, K), factorisation), kept


def fit_estimate(
    *,
    n_samples: int,
    n_features: int,
    n_hidden: int,
    n_classes: int,
    structure: str,
    hessian: str,
    alpha_search: str,
    n_restarts: int = 3,
    n_components: int = 1,
) -> tuple[float, str]:
    """The bytes a fit of :class:`~twolayer.bayes.BayesianTwoLayerClassifier` allocates at its peak.

    Parameters
    ----------
    n_samples, n_features, n_hidden, n_classes : int
        :math:`N`, :math:`D`, :math:`M`, :math:`K`.
    structure, hessian, alpha_search : str
        The estimator's parameters of these names.
    n_restarts, n_components : int, default 3 and 1
        The estimator's parameters (these defaults are its defaults). With restarts, a cycle keeps its best posterior beside the one being
        built; a mixture keeps every finished component's posterior.

    Returns
    -------
    nbytes : float
    parts : str
        What they are made of, for a message.
    """
    N, D, M, K = int(n_samples), int(n_features), int(n_hidden), int(n_classes)
    map_fit = classifier_fit_estimate(
        n_samples=N, n_features=D, n_hidden=M, n_classes=K, dtype="float64", solver="lbfgs"
    )[0]
    laplace, kept = laplace_estimate(N, D, M, K, structure, hessian)
    # The best posterior so far and the last one (of a grid, or of a cycle's restarts); the finished components.
    live = 2 if alpha_search == "grid" or n_restarts > 0 else 1
    kept *= live + max(int(n_components) - 1, 0)
    nbytes = float(kept + 8 * N * K + max(map_fit, laplace))
    if structure == "diagonal":
        parts = f"the MAP network's L-BFGS, the curvature's diagonal over {N} patterns"
    else:
        P = _covered_size(structure, M, K, nw.n_params(D, M, K))
        parts = f"the MAP network's L-BFGS, {P} x {P} curvature and posterior matrices"
    return nbytes, parts


def logit_estimate(n_samples: int, n_features: int, n_hidden: int, n_classes: int, structure: str) -> int:
    """The bytes of :meth:`~twolayer.bayes.LaplacePosterior.logit_distribution` for ``n_samples`` patterns."""
    N, D, M, K = int(n_samples), int(n_features), int(n_hidden), int(n_classes)
    W = nw.n_params(D, M, K)
    P = _covered_size(structure, M, K, W)
    n = min(N, max(1, CHUNK_ELEMENTS // (K * W)))
    if structure == "last_layer":
        chunk = 8 * 3 * n * K * P
    else:
        chunk = curvature.memory_estimate("weight_jacobian", n, D, M, K) + 8 * 2 * n * K * P
    return 8 * N * (M + K + K * K) + chunk


def predict_estimate(
    n_samples: int, n_features: int, n_hidden: int, n_classes: int, structure: str, method: str, mc_samples: int
) -> int:
    """The bytes of :meth:`~twolayer.bayes.LaplacePosterior.predict_proba`: the logits' Gaussian, then the integral."""
    N, K = int(n_samples), int(n_classes)
    logits = logit_estimate(N, n_features, n_hidden, K, structure)
    integral = mc_memory(N, K, mc_samples) if method == "mc" else probit_memory(N, K)
    return max(logits, 8 * N * (K + K * K) + integral)
