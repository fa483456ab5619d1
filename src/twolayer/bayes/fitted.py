"""The Laplace approximation of a fitted classifier: the curvature of its data error, wired to the posterior.

:func:`laplace` takes a fitted :class:`~twolayer.classifier.TwoLayerClassifier`
(or :class:`~twolayer.bayes.BayesianTwoLayerClassifier`), computes the
curvature of :math:`E` at its weights for the chosen structure and builds the
:class:`~twolayer.bayes.LaplacePosterior` with
:func:`~twolayer.bayes.posterior_from_curvature`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twolayer import curvature
from twolayer import network as nw
from twolayer.bayes.memory import laplace_estimate
from twolayer.bayes.on_cluster import data_error, prepare_laplace
from twolayer.bayes.posterior import (
    HESSIANS,
    STRUCTURES,
    LaplacePosterior,
    _as_float64,
    _blas_threads,
    _centred,
    _check_X,
    _shape_of,
    posterior_from_curvature,
)
from twolayer.cluster import is_dask
from twolayer.estimator import check_choice
from twolayer.network import Params
from twolayer.prior import PriorPrecision
from twolayer.resources import check_memory, covered

__all__ = ["laplace"]


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
        return np.asarray(curvature.last_layer_hessian(params, X, sample_weight, activation=activation))
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
    check_choice("hessian", hessian, HESSIANS)
    check_choice("structure", structure, STRUCTURES)
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
    if is_dask(X):
        X, T, s, _ = prepare_laplace(X, y, sample_weight, np.asarray(classes), shape[0])
        with covered():
            return _posterior(params, X, T, s, alpha, activation=activation, hessian=hessian, structure=structure)
    X = _check_X(X, shape[0])
    T = _targets(y, np.asarray(classes))
    if T.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} patterns but y has {T.shape[0]}")
    s = None
    if sample_weight is not None:
        s = np.asarray(sample_weight, dtype=np.float64)
        if s.shape != (X.shape[0],) or np.any(s < 0) or not np.all(np.isfinite(s)):
            raise ValueError(f"sample_weight must be {X.shape[0]} finite non-negative numbers")
    P = nw.n_params(*shape) if structure != "last_layer" else (shape[1] + 1) * shape[2]
    check_memory(
        laplace_estimate(X.shape[0], *shape, structure, hessian)[0],
        "the Laplace approximation",
        ("the number of rows of X",) if structure == "diagonal" else (),
        parts=f"the {structure} curvature of {P} parameters over {X.shape[0]} patterns and its factorisation",
        switch=None if structure == "diagonal" else {"structure": "diagonal"},
    )
    with covered():
        return _posterior(params, X, T, s, alpha, activation=activation, hessian=hessian, structure=structure)


def _posterior(
    params: Params,
    X: np.ndarray,
    T: np.ndarray,
    s: np.ndarray | None,
    alpha: PriorPrecision,
    *,
    activation: str,
    hessian: str,
    structure: str,
) -> LaplacePosterior:
    E = data_error(params, X, T, s, activation=activation)
    H = _data_curvature(params, X, T, s, activation=activation, hessian=hessian, structure=structure)
    return posterior_from_curvature(params, H, alpha, E, structure=structure, hessian=hessian, activation=activation)
