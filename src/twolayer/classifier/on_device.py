""":class:`~twolayer.classifier.TwoLayerClassifier` on PyTorch, CuPy or other array-API arrays.

With ``sklearn.set_config(array_api_dispatch=True)`` (which needs
``SCIPY_ARRAY_API=1`` set before SciPy is imported), ``fit`` on arrays of a
namespace other than NumPy trains where they are
(:mod:`twolayer.training.on_device`), and the fitted weights ``coefs_`` and
``intercepts_`` are arrays of that namespace and device; the predictions on
such arrays are too. Only the labels visit the host: ``classes_`` are found
there (they may be strings, which no array namespace holds) and the class
index of every pattern goes back once. With dispatch off, arrays of other
namespaces are converted to NumPy as before.

:meth:`TwoLayerClassifier.to_numpy` gives a copy whose weights are NumPy
arrays (model files do this themselves).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import array_api_compat
import numpy as np
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from twolayer import network
from twolayer.classifier import fitting
from twolayer.classifier.memory import fit_estimate
from twolayer.network import Params
from twolayer.resources import check_memory
from twolayer.training import optim
from twolayer.training.on_device import (
    DEVICE_CHUNK_ROWS,
    free_memory,
    make_device_optimizer,
    to_host,
    train_full_batch_on_device,
    train_minibatch_on_device,
)
from twolayer.training.solvers import MINIBATCH_SOLVERS

if TYPE_CHECKING:
    from twolayer.classifier.classifier import TwoLayerClassifier

__all__ = ["check_namespace", "device_namespace", "fit", "on_device_params", "predict"]


def device_namespace(*arrays: Any) -> Any | None:
    """The array-API namespace of the inputs when scikit-learn's dispatch is on and it is not NumPy, else None."""
    import sklearn

    if not sklearn.get_config().get("array_api_dispatch", False):
        return None
    present = [a for a in arrays if a is not None and not isinstance(a, (np.ndarray, list, tuple))]
    if not present or not all(array_api_compat.is_array_api_obj(a) for a in present):
        return None
    xp = array_api_compat.array_namespace(*present)
    return None if array_api_compat.is_numpy_namespace(xp) else xp


def check_namespace(model: TwoLayerClassifier, X: Any, method: str) -> Any | None:
    """For a prediction: the device namespace of ``X`` (None for NumPy), refused unless the weights are there too.

    With dispatch on, ``X`` must be of the namespace and device the model was
    fitted in (scikit-learn's rule: an estimator does not move its
    attributes silently); :meth:`TwoLayerClassifier.to_numpy` brings a
    device's model to NumPy.
    """
    import sklearn
    from sklearn.utils._array_api import check_same_namespace
    from sklearn.utils.validation import check_is_fitted

    if not sklearn.get_config().get("array_api_dispatch", False):
        return None
    check_is_fitted(model)
    check_same_namespace(X, model, attribute="_first_layer_weights", method=method)
    return device_namespace(X)


def _float_dtype(xp: Any, X: Any) -> Any:
    """float32 stays float32; everything else computes in float64 where the device has it, else float32."""
    if X.dtype == xp.float32:
        return xp.float32
    try:
        xp.zeros(1, dtype=xp.float64, device=array_api_compat.device(X))
    except (TypeError, RuntimeError, ValueError):  # a device without float64 (Apple MPS, say)
        return xp.float32
    return xp.float64


def on_device_params(model: TwoLayerClassifier, xp: Any, device: Any, dtype: Any) -> Params:
    """The weights as arrays of ``xp`` on ``device`` in ``dtype`` (moved there once if they are elsewhere)."""
    arrays = (model.coefs_[0], model.intercepts_[0], model.coefs_[1], model.intercepts_[1])
    out = []
    for a in arrays:
        if not array_api_compat.is_array_api_obj(a) or array_api_compat.array_namespace(a) is not xp:
            a = xp.asarray(to_host(np.asarray(a) if isinstance(a, list) else a), device=device)
        elif array_api_compat.device(a) != device:
            a = array_api_compat.to_device(a, device)
        out.append(a if a.dtype == dtype else xp.astype(a, dtype))
    return Params(*out)


def fit(model: TwoLayerClassifier, X: Any, y: Any, sample_weight: Any, xp: Any) -> TwoLayerClassifier:
    """Train on ``X`` where it is; see the module notes. Returns ``model``."""
    from twolayer.estimator import validate_data

    if model.early_stopping:
        raise ValueError(
            "early_stopping=True is not supported on array-API (device) inputs yet: pass NumPy arrays, "
            "or early_stopping=False"
        )
    device = array_api_compat.device(X)
    dtype = _float_dtype(xp, X)
    X = validate_data(model, X, reset=True, dtype=dtype)
    y_host = to_host(y)
    multilabel = y_host.ndim == 2 and y_host.shape[1] != 1
    if multilabel:
        if type_of_target(y_host) != "multilabel-indicator":
            raise ValueError(f"a 2-D y must be a multilabel indicator matrix of 0 and 1, got shape {y_host.shape}")
        model.classes_ = np.arange(y_host.shape[1])
        model.out_activation_ = "logistic"
        k_host = np.ascontiguousarray(y_host, dtype=np.float64)
    else:
        y_host = y_host.ravel()
        check_classification_targets(y_host)
        k_host = model._class_indices(y_host)
        model.out_activation_ = "softmax"
    if X.shape[0] != y_host.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y_host.shape[0]}")
    K = len(model.classes_)
    host_dtype = np.float32 if dtype == xp.float32 else np.float64
    _check_device_memory(model, xp, device, X.shape[0], X.shape[1], K, host_dtype)
    if multilabel:
        T = xp.asarray(k_host, dtype=dtype, device=device)
    else:
        T = xp.take(xp.eye(K, dtype=dtype, device=device), xp.asarray(k_host.astype(np.int64), device=device), axis=0)
    s = fitting.pattern_weights(
        model, y_host, k_host, None if sample_weight is None else to_host(sample_weight), np.empty((X.shape[0], 0))
    )
    data = fitting.training_data(np.empty((X.shape[0], 0), dtype=host_dtype), k_host, s, model.alpha, None)
    w = None if data.w is None else xp.asarray(data.w, dtype=dtype, device=device)
    prior = None if multilabel else np.bincount(k_host, weights=s, minlength=len(model.classes_))
    state = fitting.fresh_state(model, X.shape[1], host_dtype, prior)
    model._training = state
    theta = xp.asarray(state.theta, device=device, copy=True)
    output = model._output
    K = len(model.classes_)
    D, M = X.shape[1], int(model.n_hidden)

    def publish(theta_dev: Any) -> None:
        model._set_network(
            network.unflatten(theta_dev, D, M, K),
            n_iter=state.n_iter,
            t=state.t,
            loss_curve=state.loss_curve,
            loss=state.loss,
            best_loss=state.best_loss,
            output=output,
        )

    publish(theta)

    def run(on_epoch: optim.EpochHook) -> tuple[str, str]:
        nonlocal theta
        if model.solver in MINIBATCH_SOLVERS:
            settings = {key: getattr(model, key) for key in fitting.OPTIMIZER_KEYS[model.solver]}
            optimizer = make_device_optimizer(model.solver, xp, theta, settings)
            n = X.shape[0]
            batch = min(200, n) if model.batch_size == "auto" else min(int(model.batch_size), n)
            minibatch = fitting.minibatch_settings(model, batch, early_stopping=False)

            def hook(st: optim.TrainingState, theta_dev: Any) -> bool:
                publish(theta_dev)
                return on_epoch(st)

            try:
                reason, theta = train_minibatch_on_device(
                    state, theta, X, T, w, data.lam, minibatch, optimizer, n_classes=K, output=output, on_epoch=hook
                )
            except optim.TrainingDiverged as exc:
                theta = getattr(exc, "theta", theta)
                raise
            finally:
                state.theta[...] = to_host(theta)
                publish(theta)
            return reason, "the loss was still changing"
        settings_fb = optim.LbfgsSettings(
            activation=model.activation,
            max_iter=int(model.max_iter),
            max_fun=int(model.max_fun),
            tol=float(model.tol),
            verbose=bool(model.verbose),
        )
        try:
            reason, message, theta = train_full_batch_on_device(
                state,
                theta,
                X,
                T,
                w,
                data.lam,
                settings_fb,
                method=model.solver,
                n_classes=K,
                output=output,
                on_epoch=on_epoch,
            )
        finally:
            publish(xp.asarray(state.theta, device=device, copy=True) if theta is None else theta)
        return reason, message

    return model._train(state, run, publish=lambda: publish(theta))


def _check_device_memory(model: TwoLayerClassifier, xp: Any, device: Any, N: int, D: int, K: int, dtype: Any) -> None:
    """Refuse, before anything is put there, a fit that would not fit in the device's free memory.

    The estimate is the in-memory fit's (:func:`twolayer.classifier.memory.fit_estimate`) with what
    the device adds: the 1-of-K targets and the pattern weights of every row, and working arrays for
    chunks of :data:`~twolayer.training.on_device.DEVICE_CHUNK_ROWS` rows in a full-batch evaluation.
    ``X`` is there already and is not counted.
    """
    nbytes, parts, lower, switch = fit_estimate(
        n_samples=N,
        n_features=D,
        n_hidden=int(model.n_hidden),
        n_classes=K,
        dtype=dtype,
        solver=model.solver,
        batch_size=model.batch_size,
    )
    s = np.dtype(dtype).itemsize
    nbytes += N * (K + 1) * s
    if model.solver not in MINIBATCH_SOLVERS:
        nbytes += min(N, DEVICE_CHUNK_ROWS) * (2 * int(model.n_hidden) + 2 * K) * s
    check_memory(
        nbytes,
        f"training on {device}",
        lower,
        parts=f"{parts}, the targets of all {N} patterns",
        switch=switch,
        stacklevel=6,  # _check_device_memory, fit, _fit, fit, scikit-learn's _fit_context, the caller
        available=free_memory(xp, device),
    )


def predict(model: TwoLayerClassifier, X: Any, xp: Any, method: str) -> Any:
    """``method`` of the network on ``X`` where it is; the result an array of the same namespace and device."""
    from twolayer.classifier.classifier import _label_log_proba
    from twolayer.estimator import validate_data

    dtype = _float_dtype(xp, X)
    X = validate_data(model, X, reset=False, dtype=dtype)
    device = array_api_compat.device(X)
    params = on_device_params(model, xp, device, dtype)
    _, a2 = network.hidden_and_output(params, X, activation=model.activation)
    sigmoid = model._output == "sigmoid"
    if method == "decision_function":
        return a2[:, 1] - a2[:, 0] if a2.shape[1] == 2 and not sigmoid else a2
    if method == "predict":
        if sigmoid:
            return xp.astype(a2 > 0, xp.int64)
        index = xp.argmax(a2, axis=1)
        classes = model.classes_
        if classes.dtype.kind in "iufb":
            return xp.take(xp.asarray(classes, device=device), index, axis=0)
        return classes[to_host(index)]  # labels no array namespace holds (strings) stay NumPy
    log_p = _label_log_proba(params, X, model.activation) if sigmoid else network.log_softmax(xp, a2)
    return log_p if method == "predict_log_proba" else xp.exp(log_p)
