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

Everything ``fit`` and ``partial_fit`` do on NumPy arrays they do there, to
float rounding: a warm start or ``partial_fit`` goes on from the training
state (the weights, the optimiser's moments and learning rate, the counters
and records), which lives on the host between fits, so that a model fitted
on the host goes on on a device and the other way round; early stopping
holds out the rows a NumPy fit holds out (drawn here from the same seed)
and scores them on the device, and a validation set of one's own
(``X_val``) is moved to the device of ``X`` and scored there. One number,
the score, comes back per epoch. What NumPy inputs refuse (``partial_fit``
with early stopping, say) is refused alike.

:meth:`~twolayer.classifier.TwoLayerClassifier.to_numpy` gives a copy whose weights are NumPy
arrays (model files do this themselves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import array_api_compat
import numpy as np
import scipy.sparse as sp

from twolayer import network
from twolayer.classifier import fitting
from twolayer.classifier.memory import fit_estimate
from twolayer.estimator import validate_data
from twolayer.network import Params
from twolayer.resources import check_memory
from twolayer.training import optim
from twolayer.training.on_device import (
    DEVICE_CHUNK_ROWS,
    DeviceWeights,
    device_optimizer,
    free_memory,
    to_host,
    train_full_batch_on_device,
    train_minibatch_on_device,
)
from twolayer.training.solvers import MINIBATCH_SOLVERS

if TYPE_CHECKING:
    from twolayer.classifier.classifier import TwoLayerClassifier

__all__ = ["check_namespace", "device_namespace", "fit", "has_float64", "on_device_params", "predict"]


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
    attributes silently); :meth:`~twolayer.classifier.TwoLayerClassifier.to_numpy` brings a
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


def has_float64(xp: Any, device: Any) -> bool:
    """Whether ``device`` computes in float64 (Apple's MPS, say, does not)."""
    try:
        xp.zeros(1, dtype=xp.float64, device=device)
    except (TypeError, RuntimeError, ValueError):
        return False
    return True


def _float_dtype(xp: Any, X: Any) -> Any:
    """float32 stays float32; everything else computes in float64 where the device has it, else float32."""
    if X.dtype == xp.float32 or not has_float64(xp, array_api_compat.device(X)):
        return xp.float32
    return xp.float64


def _namespace_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype of ``xp`` for a NumPy working dtype (float32 or float64): that of a training that goes on."""
    return xp.float32 if np.dtype(dtype) == np.float32 else xp.float64


def _to_device(xp: Any, device: Any, a: Any) -> Any:
    """``a`` as an array of ``xp`` on ``device``: moved once if it is elsewhere (NumPy, a list, another device)."""
    if array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray):
        if array_api_compat.array_namespace(a) is xp:
            return a if array_api_compat.device(a) == device else array_api_compat.to_device(a, device)
    return xp.asarray(to_host(a), device=device)


def on_device_params(model: TwoLayerClassifier, xp: Any, device: Any, dtype: Any) -> Params:
    """The weights as arrays of ``xp`` on ``device`` in ``dtype`` (moved there once if they are elsewhere)."""
    arrays = (model.coefs_[0], model.intercepts_[0], model.coefs_[1], model.intercepts_[1])
    out = []
    for a in arrays:
        if not array_api_compat.is_array_api_obj(a) or array_api_compat.array_namespace(a) is not xp:
            a = xp.asarray(to_host(a), device=device)
        elif array_api_compat.device(a) != device:
            a = array_api_compat.to_device(a, device)
        out.append(a if a.dtype == dtype else xp.astype(a, dtype))
    return Params(*out)


def fit(
    model: TwoLayerClassifier,
    X: Any,
    y: Any,
    sample_weight: Any,
    xp: Any,
    *,
    incremental: bool = False,
    classes: Any = None,
    X_val: Any = None,
    y_val: Any = None,
) -> TwoLayerClassifier:
    """Train on ``X`` where it is; see the module notes.

    ``fit`` (``incremental`` False) or one epoch of ``partial_fit``, as the
    estimator's NumPy path does them, step for step: a warm start or
    ``partial_fit`` goes on from the stored training state (weights,
    optimiser, counters, records; fitted on the host or on a device), early
    stopping holds out the rows the NumPy fit holds out, and ``X_val`` (moved
    to the device of ``X`` if it is elsewhere) is scored where it is.

    Parameters
    ----------
    model : TwoLayerClassifier
    X : array of shape (N, D)
        An array of ``xp`` (not NumPy).
    y : array-like of shape (N,), or (N, K)
        Labels, or a multilabel indicator matrix; brought to the host.
    sample_weight : array-like of shape (N,) or None
    xp : namespace
        The namespace of ``X``.
    incremental : bool, default False
        One epoch of ``partial_fit``.
    classes : array-like, optional
        ``partial_fit``'s classes (required on its first call).
    X_val, y_val : array-like, optional
        The caller's validation set.

    Returns
    -------
    TwoLayerClassifier
        ``model``, fitted; its weights are arrays of ``xp`` on the device of ``X``.

    Raises
    ------
    ValueError, twolayer.errors.InsufficientMemory
        Refusals before training begins leave ``model`` as it was.
    """
    before = dict(model.__dict__)
    try:
        state, run, publish = _prepare(
            model, X, y, sample_weight, xp, incremental=incremental, classes=classes, X_val=X_val, y_val=y_val
        )
    except BaseException:  # refused before training: left as it was
        model.__dict__.clear()
        model.__dict__.update(before)
        raise
    return model._train(state, run, publish=publish)


def _prepare(
    model: TwoLayerClassifier,
    X: Any,
    y: Any,
    sample_weight: Any,
    xp: Any,
    *,
    incremental: bool,
    classes: Any,
    X_val: Any,
    y_val: Any,
) -> tuple[optim.TrainingState, fitting.Run, Callable[[], None]]:
    """Check and encode the data, make or continue the training state: the run and the final publication."""
    # As the NumPy path (TwoLayerClassifier._fit): a warm start or partial_fit goes on from the
    # stored state, or from weights set by hand on an estimator never fitted.
    continuing = (incremental or model.warm_start) and hasattr(model, "_training")
    seeded = (
        (incremental or model.warm_start)
        and not continuing
        and hasattr(model, "coefs_")
        and hasattr(model, "intercepts_")
    )
    device = array_api_compat.device(X)
    # A training that goes on keeps its dtype, as on the host.
    dtype = _namespace_dtype(xp, model._training.theta.dtype) if continuing else _float_dtype(xp, X)
    X = validate_data(model, X, reset=not continuing, dtype=dtype)
    host_dtype = np.float32 if dtype == xp.float32 else np.float64
    y_host = to_host(y)
    if y_host.ndim == 2 and y_host.shape[1] == 1:  # a column of labels
        y_host = y_host.ravel()
    if X.shape[0] != y_host.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y_host.shape[0]}")
    k_host = model._encoded_targets(
        y_host,
        host_dtype,
        incremental=incremental,
        classes=None if classes is None else to_host(classes),
        continuing=continuing,
    )
    multilabel = k_host.ndim == 2
    validation = None if X_val is None else _validation_set(model, X, y_host, X_val, y_val, xp, device, host_dtype)
    N, D, K = X.shape[0], X.shape[1], len(model.classes_)
    _check_device_memory(model, xp, device, N, D, K, host_dtype, split=validation is None)
    s = fitting.pattern_weights(
        model, y_host, k_host, None if sample_weight is None else to_host(sample_weight), np.empty((N, 0))
    )

    # The state: only what no check can refuse any more follows.
    if continuing:
        state = model._continue_from_weights(model._training, D)
    else:
        # The log-prior shift of the output biases is for a softmax fit of all the data, as on the host.
        prior = None if incremental or multilabel else np.bincount(k_host, weights=s, minlength=K)
        state = fitting.fresh_state(model, D, host_dtype, prior)
        if seeded:
            weights_set = model._weights_to_continue_from(model.n_hidden)
            np.copyto(state.theta, network.flatten(weights_set), casting="same_kind")
    model._training = state
    output = model._output
    if multilabel:
        T = xp.asarray(k_host, dtype=dtype, device=device)
    else:
        T = xp.take(xp.eye(K, dtype=dtype, device=device), xp.asarray(k_host.astype(np.int64), device=device), axis=0)
    weights = DeviceWeights(
        theta=xp.asarray(state.theta, device=device, copy=True),
        best=None if state.best_theta is None else xp.asarray(state.best_theta, device=device, copy=True),
    )
    M = int(model.n_hidden)

    def publish(*, final: bool = False) -> None:
        """The fitted attributes from the device's weights, as the estimator's ``_publish``.

        At the end of an early-stopped training, the best weights.
        """
        shown = weights.best if final and model.early_stopping and weights.best is not None else weights.theta
        model._set_network(
            network.unflatten(shown, D, M, K),
            n_iter=state.n_iter,
            t=state.t,
            loss_curve=state.loss_curve,
            loss=state.loss,
            best_loss=state.best_loss,
            validation_scores=state.validation_scores,
            best_validation_score=state.best_validation_score,
            output=output,
        )

    publish()
    if model.solver in MINIBATCH_SOLVERS:
        run = _minibatch_run(model, state, weights, X, T, k_host, s, validation, publish, incremental=incremental)
    else:
        run = _full_batch_run(model, state, weights, X, T, k_host, s, validation, publish)
    return state, run, lambda: publish(final=True)


def _validation_set(
    model: TwoLayerClassifier, X: Any, y: np.ndarray, X_val: Any, y_val: Any, xp: Any, device: Any, host_dtype: Any
) -> fitting.ValidationSet:
    """The caller's validation set: ``X_val`` on the device of ``X``, its labels encoded on the host.

    The labels are checked by the estimator's own ``_validation_set``,
    given stand-ins for the patterns that hold nothing (an empty sparse
    matrix of the shape of ``X_val``), so that no copy of ``X_val`` goes to
    the host; ``X_val`` itself is checked where it is.
    """
    shape = tuple(getattr(X_val, "shape", None) or np.shape(X_val))
    stand_in: Any = (
        sp.csr_matrix(shape, dtype=host_dtype)
        if len(shape) == 2
        else np.broadcast_to(np.zeros((), dtype=host_dtype), shape)  # refused for its shape
    )
    _, k_val, s_val = model._validation_set(np.empty((0, X.shape[1]), dtype=host_dtype), y, stand_in, to_host(y_val))
    try:
        X_val = validate_data(model, _to_device(xp, device, X_val), dtype=X.dtype, reset=False)
    except ValueError as exc:
        raise ValueError(f"X_val: {exc}") from None
    return X_val, k_val, s_val


def _minibatch_run(
    model: TwoLayerClassifier,
    state: optim.TrainingState,
    weights: DeviceWeights,
    X: Any,
    T: Any,
    k: np.ndarray,
    s: np.ndarray | None,
    validation: fitting.ValidationSet | None,
    publish: Callable[..., None],
    *,
    incremental: bool,
) -> fitting.Run:
    """Prepare an ``sgd`` or ``adam`` fit on the device, as :func:`twolayer.classifier.fitting.minibatch_run` on the host.

    The optimiser and the validation split are the host's (the same rows,
    from the same seed); the held-out accuracy is computed on the device.
    """
    xp = array_api_compat.array_namespace(X)
    device = array_api_compat.device(X)
    fitting.prepare_optimizer(model, state)
    rows: np.ndarray | None = None
    validation_score: Callable[[Params], float] | None = None
    if validation is not None:
        validation_score = _accuracy(model, *validation)
    elif model.early_stopping:
        rows, val, s_val = fitting.validation_rows(model, state, X.shape[0], k, s)
        X_held_out = xp.take(X, xp.asarray(val.astype(np.int64), device=device), axis=0)
        validation_score = _accuracy(model, X_held_out, k[val], s_val)
    fitting.start_record(state, scored=validation_score is not None, early_stopping=bool(model.early_stopping))
    # Without early stopping the loop does not score; a validation set of one's own is scored after each epoch.
    recorded = None if model.early_stopping else validation_score
    host_dtype = state.theta.dtype
    data = fitting.training_data(
        np.empty((X.shape[0], 0), dtype=host_dtype), k, s, model.alpha, rows, output=model._output
    )
    w = None if data.w is None else xp.asarray(data.w, dtype=X.dtype, device=device)
    # batch_size, _minibatch_run, _prepare, fit, _fit, fit, scikit-learn's _fit_context, the caller of fit
    batch = fitting.batch_size(model, data.n, stacklevel=8)
    settings = fitting.minibatch_settings(
        model, batch, early_stopping=bool(model.early_stopping), incremental=incremental
    )
    D, M, K = X.shape[1], int(model.n_hidden), len(model.classes_)
    host_optimizer = state.optimizer
    assert host_optimizer is not None  # prepare_optimizer made one

    def run(on_epoch: optim.EpochHook) -> tuple[str, str]:
        optimizer = device_optimizer(host_optimizer, xp, weights.theta)

        def hook(st: optim.TrainingState, theta: Any) -> bool:
            if recorded is not None:
                fitting.record_score(model, st, recorded(network.unflatten(theta, D, M, K)))
            publish()
            if model.callback is not None:
                # A callback may read get_training_state (a checkpoint): the host's copy is brought up
                # to date first, O(W) numbers an epoch, and only when someone is looking.
                bring_back()
            return on_epoch(st)

        def bring_back() -> None:
            state.theta[...] = to_host(weights.theta)
            if weights.best is not None:
                state.best_theta = np.array(to_host(weights.best), dtype=state.theta.dtype)  # a copy of its own
            optimizer.store_into(host_optimizer)

        try:
            reason = train_minibatch_on_device(
                state,
                weights,
                X,
                T,
                w,
                data.lam,
                settings,
                optimizer,
                n_classes=K,
                output=model._output,
                rows=rows,
                validation_score=validation_score if model.early_stopping else None,
                on_epoch=hook,
            )
        finally:
            # The state goes back to the host however training ended: a later fit goes on from it.
            bring_back()
        return reason, "the loss was still changing"

    return run


def _full_batch_run(
    model: TwoLayerClassifier,
    state: optim.TrainingState,
    weights: DeviceWeights,
    X: Any,
    T: Any,
    k: np.ndarray,
    s: np.ndarray | None,
    validation: fitting.ValidationSet | None,
    publish: Callable[..., None],
) -> fitting.Run:
    """Prepare an ``lbfgs`` or second-order fit on the device, as :func:`twolayer.classifier.fitting.full_batch_run`."""
    xp = array_api_compat.array_namespace(X)
    device = array_api_compat.device(X)
    recorded = None if validation is None else _accuracy(model, *validation)
    fitting.start_record(
        state, scored=recorded is not None, early_stopping=False
    )  # full-batch solvers never stop early
    data = fitting.training_data(np.empty((X.shape[0], 0), dtype=state.theta.dtype), k, s, model.alpha, None)
    w = None if data.w is None else xp.asarray(data.w, dtype=X.dtype, device=device)
    settings = optim.LbfgsSettings(
        activation=model.activation,
        max_iter=int(model.max_iter),
        max_fun=int(model.max_fun),
        tol=float(model.tol),
        verbose=bool(model.verbose),
    )
    D, M, K = X.shape[1], int(model.n_hidden), len(model.classes_)

    def run(on_epoch: optim.EpochHook) -> tuple[str, str]:
        state.optimizer, state.optimizer_settings = None, {}

        def hook(st: optim.TrainingState) -> bool:
            # The solver keeps st.theta (on the host) at the iterate: the score moves it to the device.
            if recorded is not None:
                fitting.record_score(model, st, recorded(network.unflatten(st.theta, D, M, K)))
            if model.callback is not None:
                # A callback sees the iterate's weights and counters (a checkpoint, a stopping rule):
                # W numbers to the device, as each evaluation moves them anyway.
                weights.theta = xp.asarray(st.theta, device=device, copy=True)
                publish()
            return on_epoch(st)

        theta = None
        try:
            reason, message, theta = train_full_batch_on_device(
                state,
                weights.theta,
                X,
                T,
                w,
                data.lam,
                settings,
                method=model.solver,
                n_classes=K,
                output=model._output,
                on_epoch=hook,
            )
        finally:
            weights.theta = xp.asarray(state.theta, device=device, copy=True) if theta is None else theta
        return reason, message

    return run


def _accuracy(
    model: TwoLayerClassifier, X_val: Any, k_val: np.ndarray, s_val: np.ndarray | None
) -> Callable[[Params], float]:
    """:func:`twolayer.classifier.fitting.accuracy` computed where ``X_val`` is: one number comes back.

    The weights may be on the host (a full-batch solver's iterate), moved
    there; the accuracy is summed in float64 where the device has it, as
    NumPy's weighted average is.

    Parameters
    ----------
    model : TwoLayerClassifier
        Its ``activation`` is read.
    X_val : array of shape (V, D)
        The held-out patterns, on the device.
    k_val : ndarray of shape (V,), or (V, K)
        Class indices, or the 0/1 targets of a multilabel model (subset accuracy).
    s_val : ndarray of shape (V,) or None
        Weights of the patterns in the average; None for all ones.

    Returns
    -------
    callable
        ``score(params) -> float``, higher is better.
    """
    xp = array_api_compat.array_namespace(X_val)
    device = array_api_compat.device(X_val)
    multilabel = k_val.ndim == 2
    targets = xp.asarray(k_val > 0.5 if multilabel else k_val.astype(np.int64), device=device)
    total_dtype = xp.float64 if has_float64(xp, device) else xp.float32
    weights = None if s_val is None else xp.asarray(s_val, dtype=total_dtype, device=device)
    # The denominator on the host, as NumPy's average forms it.
    denominator = float(X_val.shape[0]) if s_val is None else float(np.sum(s_val))
    V = X_val.shape[0]

    def score(params: Params) -> float:
        params = Params(*(xp.asarray(p, dtype=X_val.dtype, device=device) for p in params))
        right_total = xp.zeros((), dtype=total_dtype, device=device)
        for start in range(0, V, DEVICE_CHUNK_ROWS):  # the logits of a chunk at a time
            stop = min(start + DEVICE_CHUNK_ROWS, V)
            a2 = network.hidden_and_output(params, X_val[start:stop, ...], activation=model.activation)[1]
            if multilabel:  # y_k > 1/2 exactly where a_k > 0
                right = xp.all((a2 > 0) == targets[start:stop, ...], axis=1)
            else:
                right = xp.argmax(a2, axis=1) == targets[start:stop]
            right_f = xp.astype(right, total_dtype)
            right_total = right_total + xp.sum(right_f if weights is None else right_f * weights[start:stop])
        return float(right_total) / denominator  # the one value back

    return score


def _check_device_memory(
    model: TwoLayerClassifier, xp: Any, device: Any, N: int, D: int, K: int, dtype: Any, *, split: bool
) -> None:
    """Refuse, before anything is put there, a fit that would not fit in the device's free memory.

    The estimate is the in-memory fit's (:func:`twolayer.classifier.memory.fit_estimate`) with what
    the device adds: the 1-of-K targets and the pattern weights of every row, and working arrays for
    chunks of :data:`~twolayer.training.on_device.DEVICE_CHUNK_ROWS` rows in a full-batch evaluation.
    ``X`` is there already and is not counted; the rows early stopping holds out (``split``) are
    gathered into an array of their own and are.
    """
    nbytes, parts, lower, switch = fit_estimate(
        n_samples=N,
        n_features=D,
        n_hidden=int(model.n_hidden),
        n_classes=K,
        dtype=dtype,
        solver=model.solver,
        batch_size=model.batch_size,
        early_stopping=bool(model.early_stopping),
        validation_fraction=float(model.validation_fraction) if split else 0.0,
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
        stacklevel=7,  # _check_device_memory, _prepare, fit, _fit, fit, scikit-learn's _fit_context, the caller
        available=free_memory(xp, device),
    )


def predict(model: TwoLayerClassifier, X: Any, xp: Any, method: str) -> Any:
    """``method`` of the network on ``X`` where it is; the result an array of the same namespace and device."""
    from twolayer.classifier.classifier import _label_log_proba

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
