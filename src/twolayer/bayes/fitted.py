"""The Laplace approximation of a fitted classifier: the curvature of its data error, wired to the posterior.

:func:`laplace` takes a fitted :class:`~twolayer.classifier.TwoLayerClassifier`
(or :class:`~twolayer.bayes.BayesianTwoLayerClassifier`), computes the
curvature of :math:`E` at its weights for the chosen structure and builds the
:class:`~twolayer.bayes.LaplacePosterior` with
:func:`~twolayer.bayes.posterior_from_curvature`.

A classifier fitted on a device (``TwoLayerClassifier.fit`` on PyTorch or
CuPy arrays under ``sklearn.config_context(array_api_dispatch=True)``) holds
its weights there; :func:`laplace` then takes ``X`` on the same device and
computes the curvature over its rows, the factorisation and the posterior
there too (:mod:`twolayer.bayes.posterior`). Only the labels visit the host,
to be matched with ``classes_`` (which may be strings).
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from twolayer import curvature
from twolayer import network as nw
from twolayer.bayes.memory import laplace_estimate
from twolayer.bayes.on_cluster import data_error, prepare_laplace
from twolayer.bayes.posterior import (
    HESSIANS,
    STRUCTURES,
    Array,
    LaplacePosterior,
    _as_float64,
    _blas_threads,
    _centred,
    _check_X,
    _shape_of,
    posterior_from_curvature,
)
from twolayer.bayes.predictive import _array_namespace, _free_memory
from twolayer.cluster import is_dask
from twolayer.estimator import check_choice
from twolayer.network import Params
from twolayer.prior import PriorPrecision
from twolayer.resources import check_memory, covered
from twolayer.training.on_device import to_host

__all__ = ["laplace"]


def _data_curvature(
    params: Params,
    X: Array,
    T: Array,
    sample_weight: Array | None,
    *,
    activation: str,
    hessian: str,
    structure: str,
) -> Array:
    """The curvature of :math:`E` that :func:`posterior_from_curvature` expects for a structure.

    In the namespace and on the device of ``X`` and ``params`` (NumPy for NumPy or Dask data).
    """
    with _blas_threads(nw.n_params(*_shape_of(params))):
        return _data_curvature_unlimited(
            params, X, T, sample_weight, activation=activation, hessian=hessian, structure=structure
        )


def _data_curvature_unlimited(
    params: Params,
    X: Array,
    T: Array,
    sample_weight: Array | None,
    *,
    activation: str,
    hessian: str,
    structure: str,
) -> Array:
    # twolayer.curvature follows the namespace of its inputs: NumPy (also for Dask data, summed
    # over the cluster's blocks), or the device's.
    if structure == "last_layer":
        return curvature.last_layer_hessian(params, X, sample_weight, activation=activation)
    if structure == "diagonal":
        approximation = "gauss-newton" if hessian == "gauss_newton" else None
        diag = curvature.hessian_diagonal(
            params, X, T, sample_weight, approximation=approximation, activation=activation
        )
        return nw.flatten(diag)
    if hessian == "gauss_newton":
        return curvature.gauss_newton(params, X, T, sample_weight, activation=activation)
    return curvature.hessian(params, X, T, sample_weight, activation=activation)


def _device_weights(model: Any) -> Params | None:
    """``coefs_`` and ``intercepts_`` as they are, when they are arrays of a device's namespace; else None."""
    coefs, intercepts = getattr(model, "coefs_", None), getattr(model, "intercepts_", None)
    if not (isinstance(coefs, (list, tuple)) and isinstance(intercepts, (list, tuple))):
        return None
    if len(coefs) != 2 or len(intercepts) != 2:
        return None
    params = Params(coefs[0], intercepts[0], coefs[1], intercepts[1])
    return params if _array_namespace(*params) is not None else None


def _on_host(a: Any) -> np.ndarray:
    """``a`` as a NumPy array: array-likes converted, another namespace's arrays copied from their device."""
    if array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray) and not is_dask(a):
        return to_host(a)
    return np.asarray(a)


def _targets(y: Any, classes: np.ndarray) -> np.ndarray:
    """1-of-K codes of ``y`` in the column order of ``classes``."""
    y = _on_host(y)
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
        For a model fitted on a device, an array of its weights' namespace
        and device: the posterior is then computed there (see the module notes).
    y : array-like of shape (N,)
        Their labels, among ``model.classes_`` (of any namespace: they are
        matched with the classes on the host).
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
        Whose arrays are in the namespace and on the device of the model's weights.

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
    # params_ is checked and on the host; a model fitted on a device keeps its weights there.
    on_device = _device_weights(model)
    if on_device is not None:
        params_ = on_device
    xp = _array_namespace(*params_)  # None: NumPy weights
    shape = _shape_of(params_)
    activation = str(model.activation)
    if is_dask(X) and xp is None:
        params = _centred(_as_float64(params_))
        X, T, s, _ = prepare_laplace(X, y, sample_weight, np.asarray(classes), shape[0])
        with covered():
            return _posterior(params, X, T, s, alpha, activation=activation, hessian=hessian, structure=structure)
    # On a device X stays there, in the floating dtype of X and the weights; else float64 NumPy.
    X = _check_X(X, shape[0], like=None if xp is None else params_[0])
    if xp is None:
        params = _centred(_as_float64(params_))
    else:
        params = _centred(Params(*(p if p.dtype == X.dtype else xp.astype(p, X.dtype) for p in params_)))
    T = _targets(y, np.asarray(classes))
    if T.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} patterns but y has {T.shape[0]}")
    s = None
    if sample_weight is not None:
        s = _on_host(sample_weight).astype(np.float64)
        if s.shape != (X.shape[0],) or np.any(s < 0) or not np.all(np.isfinite(s)):
            raise ValueError(f"sample_weight must be {X.shape[0]} finite non-negative numbers")
    device = array_api_compat.device(X)
    if xp is not None:  # the targets and weights join X on its device, once
        T = xp.asarray(T, dtype=X.dtype, device=device)
        s = None if s is None else xp.asarray(s, dtype=X.dtype, device=device)
    P = nw.n_params(*shape) if structure != "last_layer" else (shape[1] + 1) * shape[2]
    check_memory(
        laplace_estimate(X.shape[0], *shape, structure, hessian)[0],
        "the Laplace approximation" + ("" if xp is None else f" on {device}"),
        ("the number of rows of X",) if structure == "diagonal" else (),
        parts=f"the {structure} curvature of {P} parameters over {X.shape[0]} patterns and its factorisation",
        switch=None if structure == "diagonal" else {"structure": "diagonal"},
        available=_free_memory(xp, device),
    )
    with covered():
        return _posterior(params, X, T, s, alpha, activation=activation, hessian=hessian, structure=structure)


def _posterior(
    params: Params,
    X: Array,
    T: Array,
    s: Array | None,
    alpha: PriorPrecision,
    *,
    activation: str,
    hessian: str,
    structure: str,
) -> LaplacePosterior:
    E = data_error(params, X, T, s, activation=activation)
    H = _data_curvature(params, X, T, s, activation=activation, hessian=hessian, structure=structure)
    return posterior_from_curvature(params, H, alpha, E, structure=structure, hessian=hessian, activation=activation)
