"""Model files: a fitted network (or a pipeline of a scaler and one) in one safetensors file.

A **model file** is one safetensors file. Its tensors are the weights in
scikit-learn's layout, ``W1`` (D, M), ``b1`` (M,), ``W2`` (M, K), ``b2`` (K,),
and, for a model that standardises its inputs, ``scaler.mean`` and
``scaler.scale`` (D,). Its metadata (safetensors allows string to string)
holds JSON:

====================  ========================================================
``format``            ``"twolayer.model"``
``format_version``    ``1`` (a network), ``2`` (a Bayesian network) or ``3``
                      (a multilabel network, which older readers must
                      refuse); a file from a newer version is refused
``kind``              ``"bayesian"`` in version 2 files; absent in version 1
``classes``           the class labels, their type kept (integers or strings)
``feature_names``     the names of the D features, or ``null``
``feature_names_in``  whether the estimator was fitted on named columns (so
                      that a loaded one has ``feature_names_in_`` again)
``encoding``          absent when the features are the data's numeric
                      columns as they are; else how the data's columns
                      become the D features
                      (:class:`~twolayer.io.encoding.FeatureEncoding`: each
                      column's name and kind, its fill value, a text
                      column's categories, the missing-value policy), and
                      ``feature_names`` are its input names (``colour=red``)
``target_name``       the name of the target column, or ``null``
``output``            ``"sigmoid"`` for a multilabel network (K independent
                      logistic outputs); absent for softmax outputs
``dtype``             ``"float32"`` or ``"float64"``, the weights' dtype
``hyperparameters``   ``get_params()`` of the estimator, less the callback
``scaler``            ``null``, or the number of samples it was fitted on
``curves``            ``loss`` per epoch, early stopping's
                      ``validation_scores`` and the command line's
                      ``held_out_accuracy`` (each a list or ``null``)
``training``          ``n_iter`` and ``t``
``info``              free JSON for the caller (the command line's summary)
``twolayer_version``  the version of twolayer that wrote the file
``sha256``            a digest of every tensor and every other metadata entry
====================  ========================================================

A **Bayesian model file** (:class:`~twolayer.bayes.BayesianTwoLayerClassifier`,
``format_version`` 2, ``kind`` ``"bayesian"``) has the same entries, with
the Bayesian estimator's hyperparameters, float64 weights (the posterior
mean), and what its moderated predictions need: the tensors
``posterior.factor``, the Cholesky factor of the posterior precision
:math:`A = L L^\\top` as its packed lower triangle (row by row), or for the
``"diagonal"`` structure :math:`A`'s diagonal, and ``posterior.variance``,
:math:`\\operatorname{diag}(A^{-1})`; and the JSON entry ``bayes`` with the
posterior's scalars (structure, Hessian, prior precisions, :math:`\\gamma`,
log evidence, data error), the evidence and alpha curves, and the seed of
the Monte Carlo predictive, so that a loaded model predicts exactly as the
fitted one did. :math:`A` itself is rebuilt as :math:`L L^\\top` (equal to the
fitted one up to rounding), which halves the file. Plain networks are still
written as version 1, so older versions of twolayer read them.

A **checkpoint** is a safetensors file of the same make (``format`` is
``"twolayer.checkpoint"``) holding what resuming needs: the estimator's
``get_training_state()`` (arrays as tensors ``state/NAME``, everything else
as JSON, the shuffling generator's state included), the hyperparameters, the
scaler, the indices of the train/test split (``split/train``, ``split/test``),
the epoch, and free JSON for the caller.
The container (digest, checks, trust) is :mod:`twolayer.io.container`; the
posterior's part of a Bayesian file is :mod:`twolayer.io.bayesian`. A file
is written atomically (:func:`twolayer.io.atomic.atomic_write`): the
destination holds the old file or the new one, never a mixture.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from twolayer.io.atomic import atomic_write
from twolayer.io.bayesian import bayes_entry, bayesian_network, bayesian_tensor_names, posterior_tensors
from twolayer.io.container import (
    BAYESIAN_VERSION,
    FORMAT_VERSION,
    MODEL_FORMAT,
    MULTILABEL_VERSION,
    NETWORK_VERSION,
    _Checker,
    _hyperparameters_from_json,
    _hyperparameters_to_json,
    _pack,
    _unpack,
    package_version,
)
from twolayer.io.encoding import FeatureEncoding

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from twolayer.bayes import BayesianTwoLayerClassifier
    from twolayer.classifier import TwoLayerClassifier
    from twolayer.estimator import BaseTwoLayerClassifier
    from twolayer.network import Params

    Network = TwoLayerClassifier | BayesianTwoLayerClassifier

__all__ = [
    "ModelFile",
    "is_bayesian",
    "load",
    "model_bytes",
    "read",
    "save",
    "scaled_model",
    "split_encoding",
    "standard_scaler",
]

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


@dataclass(frozen=True, eq=False)
class ModelFile:
    """A model file as read: the model and what the file says about it.

    Attributes
    ----------
    model : TwoLayerClassifier, BayesianTwoLayerClassifier or sklearn.pipeline.Pipeline
        Ready for ``predict`` and ``predict_proba``: the classifier, or, when
        the file holds a scaler, ``Pipeline([("scaler", StandardScaler),
        ("classifier", classifier)])``.
    classifier : TwoLayerClassifier or BayesianTwoLayerClassifier
        The network itself (the last step of ``model``).
    classes : ndarray of shape (K,)
        int64 or str labels.
    feature_names : tuple of str or None
        The D feature names, when the model was trained on named columns.
    target_name : str or None
        The name of the target column it was trained on.
    dtype : str
        ``"float32"`` or ``"float64"``.
    hyperparameters : dict
        The estimator's parameters (``get_params``, less the callback).
    loss_curve : list of float
        The training loss after each epoch.
    validation_curve : list of float or None
        Held-out accuracy after each epoch (the command line's), or the
        estimator's early-stopping ``validation_scores_``.
    info : dict or None
        Free JSON stored by the caller (``twolayer train``'s summary).
    format_version : int
        The file's format version.
    encoding : FeatureEncoding or None
        How a table's columns become the D features, when they are not its
        numeric columns as they are: ``predict`` reads ``encoding.names``
        and encodes them so.
    """

    model: Any
    classifier: Network
    classes: np.ndarray
    feature_names: tuple[str, ...] | None
    target_name: str | None
    dtype: str
    hyperparameters: dict[str, Any]
    loss_curve: list[float]
    validation_curve: list[float] | None
    info: dict[str, Any] | None
    format_version: int = FORMAT_VERSION
    encoding: FeatureEncoding | None = None

    @property
    def n_features(self) -> int:
        """The number of input features ``D``."""
        return int(self.classifier.n_features_in_)

    @property
    def bayesian(self) -> bool:
        """Whether the network is a :class:`~twolayer.bayes.BayesianTwoLayerClassifier`."""
        return is_bayesian(self.classifier)


def scaled_model(classifier: TwoLayerClassifier, mean: np.ndarray, scale: np.ndarray, n_samples_seen: int) -> Pipeline:
    """A pipeline that standardises, ``(x - mean) / scale``, then classifies.

    The ``StandardScaler`` is rebuilt from its fitted values, not refitted,
    so it transforms exactly as the one the network was trained behind.

    Parameters
    ----------
    classifier : TwoLayerClassifier
        Fitted on standardised inputs.
    mean, scale : ndarray of shape (D,)
        The scaler's ``mean_`` and ``scale_``.
    n_samples_seen : int
        How many samples the scaler was fitted on.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``"scaler"`` and ``"classifier"``.
    """
    from sklearn.pipeline import Pipeline

    return Pipeline([("scaler", standard_scaler(mean, scale, n_samples_seen)), ("classifier", classifier)])


def standard_scaler(mean: np.ndarray, scale: np.ndarray, n_samples_seen: int) -> StandardScaler:
    """A fitted ``StandardScaler`` rebuilt from its ``mean_`` and ``scale_``, without refitting.

    Parameters
    ----------
    mean, scale : ndarray of shape (D,)
        ``transform`` computes ``(X - mean) / scale``.
    n_samples_seen : int
        How many samples it was fitted on.

    Returns
    -------
    sklearn.preprocessing.StandardScaler
    """
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    scaler.mean_ = np.array(mean, dtype=np.float64)
    scaler.scale_ = np.array(scale, dtype=np.float64)
    with np.errstate(over="ignore"):  # a scale past 1e154 has a variance past float64: infinity, as it is
        scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = int(scaler.mean_.shape[0])
    scaler.n_samples_seen_ = int(n_samples_seen)
    return scaler


def _estimators() -> dict[str, type[BaseTwoLayerClassifier]]:
    """Each kind of network and its estimator: the one place where a plain network and a Bayesian one are told apart."""
    from twolayer.bayes import BayesianTwoLayerClassifier
    from twolayer.classifier import TwoLayerClassifier

    return {"network": TwoLayerClassifier, "bayesian": BayesianTwoLayerClassifier}


def _kind(model: Any) -> str | None:
    """``"network"`` or ``"bayesian"`` for the two estimators, None for anything else."""
    return next((kind for kind, estimator in _estimators().items() if isinstance(model, estimator)), None)


def is_bayesian(model: Any) -> bool:
    """Whether a model is a :class:`~twolayer.bayes.BayesianTwoLayerClassifier`, or a pipeline ending in one.

    Parameters
    ----------
    model : TwoLayerClassifier, BayesianTwoLayerClassifier or sklearn.pipeline.Pipeline
        A pipeline must be a ``StandardScaler`` followed by one of the two.

    Returns
    -------
    bool
    """
    return _kind(_parts(split_encoding(model)[0])[0]) == "bayesian"


def _hyperparameter_names(kind: str) -> set[str]:
    """The parameters of the estimator of a kind of network that a file stores (the callback is not stored)."""
    return set(_estimators()[kind]().get_params(deep=False)) - {"callback"}


def _parts(model: Any) -> tuple[Network, StandardScaler | None]:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if _kind(model) is not None:
        return model, None
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if step not in (None, "passthrough")]
        if len(steps) == 2 and isinstance(steps[0], StandardScaler) and _kind(steps[1]) is not None:
            return steps[1], steps[0]
    raise TypeError(
        "save takes a fitted TwoLayerClassifier or BayesianTwoLayerClassifier, or a Pipeline of a StandardScaler "
        f"and one of them (or one that twolayer.load began with a table's encoding), not {type(model).__name__}"
    )


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    feature_names: Sequence[str] | None = None,
    target_name: str | None = None,
    validation_curve: Sequence[float] | None = None,
    info: Mapping[str, Any] | None = None,
    encoding: FeatureEncoding | None = None,
) -> None:
    """Save a fitted model to one safetensors file, atomically.

    :func:`model_bytes` written with :func:`atomic_write`; the parameters
    and errors are those of :func:`model_bytes`, and ``path`` is the file
    to write (conventionally ``*.safetensors``): an existing file is
    replaced only once the new one is complete.
    """
    data = model_bytes(
        model,
        feature_names=feature_names,
        target_name=target_name,
        validation_curve=validation_curve,
        info=info,
        encoding=encoding,
    )
    atomic_write(path, data)


def model_bytes(
    model: Any,
    *,
    feature_names: Sequence[str] | None = None,
    target_name: str | None = None,
    validation_curve: Sequence[float] | None = None,
    info: Mapping[str, Any] | None = None,
    encoding: FeatureEncoding | None = None,
) -> bytes:
    """The contents of a model file for a fitted model (what :func:`save` writes).

    Parameters
    ----------
    model : TwoLayerClassifier, BayesianTwoLayerClassifier or sklearn.pipeline.Pipeline
        Fitted; a pipeline must be a ``StandardScaler`` followed by one of
        the two. Its classes must be integers or strings. A Bayesian network
        is written as a version 2 file with its Laplace posterior.
    feature_names : sequence of str, optional
        Names of the D features; by default ``feature_names_in_`` when the
        model was fitted on a DataFrame.
    target_name : str, optional
        The name of the target column.
    validation_curve : sequence of float, optional
        Held-out accuracy after each epoch, as the command line records it.
    info : mapping, optional
        Free JSON to store alongside (the command line's training summary).
    encoding : FeatureEncoding, optional
        How a table's columns became the D features (text columns one-hot,
        missing cells filled); its input names are the feature names.

    Raises
    ------
    TypeError
        For a model of another kind, or classes that are neither integers
        nor strings.
    ValueError
        For weights that are not finite (a diverged fit cannot be loaded).
    """
    from sklearn.utils.validation import check_is_fitted

    model, loaded_encoding = split_encoding(model)
    encoding = encoding if encoding is not None else loaded_encoding
    classifier, scaler = _parts(model)
    check_is_fitted(classifier)
    W1, b1, W2, b2 = (np.array(p, copy=True) for p in classifier.params_)
    tensors = {"W1": W1, "b1": b1, "W2": W2, "b2": b2}
    for name, array in tensors.items():
        if not np.isfinite(array).all():
            raise ValueError(f"the weights {name} are not finite (the fit diverged); refusing to save them")
    D = W1.shape[0]
    classes = classifier.classes_.tolist()
    if not (all(isinstance(c, str) for c in classes) or all(type(c) is int for c in classes)):
        raise TypeError("only integer or string class labels can be stored in a model file")
    if feature_names is None and hasattr(classifier, "feature_names_in_"):
        feature_names = [str(f) for f in classifier.feature_names_in_]
    if feature_names is None and scaler is not None and hasattr(scaler, "feature_names_in_"):
        feature_names = [str(f) for f in scaler.feature_names_in_]
    if encoding is not None:
        if encoding.n_inputs != D:
            raise ValueError(f"the encoding makes {encoding.n_inputs} features but the network reads {D}")
        if feature_names is not None and list(feature_names) != encoding.input_names:
            raise ValueError("feature_names must be the encoding's input names")
        feature_names = encoding.input_names
    if feature_names is not None and len(feature_names) != D:
        raise ValueError(f"feature_names must be {D} names, got {len(feature_names)}")
    scaler_entry = None
    if scaler is not None:
        check_is_fitted(scaler)
        mean = np.zeros(D) if scaler.mean_ is None else np.asarray(scaler.mean_, dtype=np.float64)
        scale = np.ones(D) if scaler.scale_ is None else np.asarray(scaler.scale_, dtype=np.float64)
        tensors["scaler.mean"], tensors["scaler.scale"] = mean, scale
        scaler_entry = {"n_samples_seen": int(np.max(scaler.n_samples_seen_))}
    validation = None if classifier.validation_scores_ is None else [float(v) for v in classifier.validation_scores_]
    entries = {
        "classes": classes,
        "feature_names": None if feature_names is None else [str(f) for f in feature_names],
        "feature_names_in": hasattr(classifier, "feature_names_in_"),
        "target_name": target_name,
        "dtype": W1.dtype.name,
        "hyperparameters": _hyperparameters_to_json(classifier.get_params(deep=False)),
        "scaler": scaler_entry,
        "curves": {
            "loss": [float(v) for v in classifier.loss_curve_],
            "validation_scores": validation,
            "held_out_accuracy": None if validation_curve is None else [float(v) for v in validation_curve],
        },
        "training": {"n_iter": int(classifier.n_iter_), "t": int(classifier.t_)},
        "info": None if info is None else dict(info),
        "twolayer_version": package_version(),
    }
    if encoding is not None:
        entries["encoding"] = encoding.to_json()
    version = NETWORK_VERSION
    if getattr(classifier, "out_activation_", "softmax") == "logistic":
        entries["output"] = "sigmoid"  # absent: softmax, as every file before multilabel networks
        version = MULTILABEL_VERSION
    if is_bayesian(classifier):
        tensors.update(posterior_tensors(classifier))
        entries["kind"] = "bayesian"
        entries["bayes"] = bayes_entry(classifier)
        version = BAYESIAN_VERSION
    return _pack(MODEL_FORMAT, tensors, entries, version=version)


def read(path: str | os.PathLike[str]) -> ModelFile:
    """Read and check a model file.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    ModelFile

    Raises
    ------
    DataError
        For a missing, truncated, corrupted, foreign or newer file, one
        that is not a regular file (a device, FIFO or folder) or exceeds
        the limits of :mod:`twolayer.io.container` (header length, JSON
        depth, size), or one whose entries do not fit together (a shape
        that does not match the feature names, classes or the other
        weights, a count out of range), naming the problem.
    """
    from twolayer.network import ACTIVATIONS, OUTPUTS, Params

    source = os.fspath(path)
    tensors, metadata, version = _unpack(source, MODEL_FORMAT, "twolayer model file")
    check = _Checker(source, tensors, metadata)
    kind = check.entry("kind", str, optional=True)
    if kind not in (None, "bayesian") or (kind is not None and version < BAYESIAN_VERSION):
        raise check.fail(f"kind {kind!r} is not a kind of model of format version {version}")
    bayesian = kind == "bayesian"
    dtype_name = check.entry("dtype", str)
    if dtype_name not in _FLOAT_DTYPES:
        raise check.fail(f"dtype {dtype_name!r} is not float32 or float64")
    if bayesian and dtype_name != "float64":
        raise check.fail("a Bayesian network's weights are float64")
    floats = (_FLOAT_DTYPES[dtype_name],)
    # Every size the metadata records is checked against the tensors it describes, and the
    # tensors against each other, before anything is built from them: W1 (D, M) against the
    # feature names and the scaler, b1 and W2 against its M columns, W2 and b2 against the classes.
    if "W1" not in tensors or tensors["W1"].ndim != 2 or 0 in tensors["W1"].shape:
        raise check.fail("tensor 'W1' is missing or not a non-empty matrix")
    shape = tensors["W1"].shape
    D, M = shape
    classes = check.classes()
    K = classes.shape[0]
    feature_names = check.names("feature_names")
    if feature_names is not None and len(feature_names) != D:
        raise check.fail(f"W1 has shape {shape} but the file names {len(feature_names)} features")
    W1 = check.tensor("W1", (D, M), floats)
    b1 = check.tensor("b1", (M,), floats, because=f"W1 has shape {shape}: one bias per hidden unit, {M}")
    if "W2" in tensors and tensors["W2"].ndim == 2 and tensors["W2"].shape[0] != M:
        raise check.fail(f"W2 has shape {tensors['W2'].shape} but W1 has shape {shape}: W2 needs {M} rows")
    W2 = check.tensor("W2", (M, K), floats, because=f"the file lists {K} classes")
    b2 = check.tensor("b2", (K,), floats, because=f"the file lists {K} classes")
    target_name = check.entry("target_name", str, optional=True)
    output = check.entry("output", str, optional=True) or "softmax"
    if output != "softmax" and version < MULTILABEL_VERSION:
        raise check.fail(
            f"output {output!r} needs format version {MULTILABEL_VERSION}, but the file is version {version}"
        )
    if output not in OUTPUTS or (bayesian and output != "softmax"):
        raise check.fail(
            f"output {output!r} is not one of {OUTPUTS}" + (" (a Bayesian network is softmax)" if bayesian else "")
        )
    hyper = _hyperparameters_from_json(
        check, check.entry("hyperparameters", dict), _hyperparameter_names("bayesian" if bayesian else "network")
    )
    if hyper.get("n_hidden") != M:
        raise check.fail(f"hyperparameter n_hidden is {hyper.get('n_hidden')!r} but W1 has {M} columns")
    if hyper.get("activation") not in ACTIVATIONS:
        raise check.fail(f"unknown activation {hyper.get('activation')!r}")
    scaler_entry = check.entry("scaler", dict, optional=True)
    expected = {"W1", "b1", "W2", "b2"}
    if bayesian:
        expected |= bayesian_tensor_names(hyper)
    if scaler_entry is not None:
        expected |= {"scaler.mean", "scaler.scale"}
        features = f"W1 has shape {shape}, {D} features"
        mean = check.tensor("scaler.mean", (D,), (np.float64,), because=features)
        scale = check.tensor("scaler.scale", (D,), (np.float64,), because=features)
        if not (scale > 0).all():
            raise check.fail("tensor 'scaler.scale' must be positive")
        n_seen = check.count(scaler_entry, "n_samples_seen", "the scaler's n_samples_seen", positive=True)
    check.no_other_tensors(expected)
    curves = check.entry("curves", dict)
    loss_curve = check.curve(curves, "loss") or []
    validation_scores = check.curve(curves, "validation_scores")
    held_out = check.curve(curves, "held_out_accuracy")
    training = check.entry("training", dict)
    n_iter, t = check.count(training, "n_iter", "training n_iter"), check.count(training, "t", "training t")
    info = check.entry("info", dict, optional=True)
    with_names_in = check.entry("feature_names_in", bool, optional=True)
    if with_names_in and feature_names is None:
        raise check.fail("feature_names_in is set but there are no feature names")
    encoding = None
    if "encoding" in metadata:
        encoding = FeatureEncoding.from_json(check.entry("encoding", dict), source=source)
        if encoding.n_inputs != D or (feature_names is not None and list(feature_names) != encoding.input_names):
            raise check.fail(f"W1 has shape {shape} but the encoding makes {encoding.n_inputs} other features")

    if bayesian:
        classifier: Network = bayesian_network(
            check,
            hyper,
            Params(W1, b1, W2, b2),
            classes,
            loss_curve,
            (n_iter, t),
            list(feature_names or ()) if with_names_in else None,
        )
    else:
        classifier = _network(
            hyper,
            Params(W1, b1, W2, b2),
            classes,
            loss_curve,
            validation_scores,
            (n_iter, t),
            list(feature_names or ()) if with_names_in else None,
            check,
            output,
        )
    model: Any = classifier
    if scaler_entry is not None:
        model = scaled_model(classifier, mean, scale, n_seen)
    return ModelFile(
        model=model,
        classifier=classifier,
        classes=classes,
        feature_names=feature_names,
        target_name=target_name,
        dtype=dtype_name,
        hyperparameters=hyper,
        loss_curve=loss_curve,
        validation_curve=held_out if held_out is not None else validation_scores,
        info=info,
        format_version=version,
        encoding=encoding,
    )


def _network(
    hyper: dict[str, Any],
    params: Params,
    classes: np.ndarray,
    loss_curve: list[float],
    validation_scores: list[float] | None,
    counts: tuple[int, int],
    feature_names_in: list[str] | None,
    check: _Checker,
    output: str = "softmax",
) -> TwoLayerClassifier:
    """Rebuild a fitted TwoLayerClassifier: the stored weights, and no optimiser (a warm start starts a fresh one)."""
    from twolayer.classifier import TwoLayerClassifier

    n_iter, t = counts
    try:
        return TwoLayerClassifier.from_params(
            params,
            classes,
            hyperparameters=hyper,
            loss_curve=loss_curve,
            best_loss=min(loss_curve) if loss_curve and validation_scores is None else None,
            validation_scores=validation_scores,
            best_validation_score=max(validation_scores) if validation_scores else None,
            n_iter=n_iter,
            t=t,
            feature_names_in=feature_names_in,
            output=output,
        )
    except (TypeError, ValueError) as exc:
        raise check.fail(f"the stored model does not fit together ({exc})") from None


def load(path: str | os.PathLike[str]) -> Any:
    """Load a model saved by :func:`save`.

    Loading parses safetensors and JSON only: nothing is unpickled and no
    code from the file runs.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    TwoLayerClassifier, BayesianTwoLayerClassifier or sklearn.pipeline.Pipeline
        The kind of object that was saved: a pipeline (``StandardScaler``
        then the network) when the file holds a scaler. A model that
        ``twolayer train`` fitted on a table with text columns (one-hot,
        and empty cells filled as training filled them) starts with that
        encoding too
        (:meth:`~twolayer.io.encoding.FeatureEncoding.column_transformer`):
        it predicts on a pandas DataFrame of the table's columns, and
        :func:`save` and :func:`~twolayer.io.onnx.to_onnx` take it back
        apart (:func:`split_encoding`).

    Raises
    ------
    DataError
        For a file that is missing, truncated, corrupted, not a model, or
        from a newer format version.
    """
    from sklearn.pipeline import Pipeline

    file = read(path)
    if file.encoding is None or "text" not in file.encoding.kinds:
        return file.model  # numeric columns: an array of them, as before
    steps = file.model.steps if isinstance(file.model, Pipeline) else [("classifier", file.model)]
    return Pipeline([("encoding", file.encoding.column_transformer()), *steps])


def split_encoding(model: Any) -> tuple[Any, FeatureEncoding | None]:
    """A pipeline that :func:`load` began with a table's encoding, as the model after it and that encoding.

    Anything else is returned as it is, with None.

    Parameters
    ----------
    model : estimator or sklearn.pipeline.Pipeline

    Returns
    -------
    model : estimator or sklearn.pipeline.Pipeline
        The steps after the encoding: one estimator, or a pipeline of them.
    encoding : FeatureEncoding or None
    """
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return model, None
    encoding = getattr(model.steps[0][1], "feature_encoding_", None)
    if not isinstance(encoding, FeatureEncoding):
        return model, None
    rest = model.steps[1:]
    return (rest[0][1] if len(rest) == 1 else Pipeline(rest)), encoding
