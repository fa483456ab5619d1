"""Model files and checkpoints: safetensors and JSON, written atomically, read without trust.

A **model file** is one safetensors file. Its tensors are the weights in
scikit-learn's layout, ``W1`` (D, M), ``b1`` (M,), ``W2`` (M, K), ``b2`` (K,),
and, for a model that standardises its inputs, ``scaler.mean`` and
``scaler.scale`` (D,). Its metadata (safetensors allows string to string)
holds JSON:

==================  ==========================================================
``format``          ``"twolayer.model"``
``format_version``  ``1`` (a network) or ``2`` (a Bayesian network); a file
                    from a newer version is refused
``kind``            ``"bayesian"`` in version 2 files; absent in version 1
``classes``         the class labels, their type kept (integers or strings)
``feature_names``   the names of the D features, or ``null``
``target_name``     the name of the target column, or ``null``
``dtype``           ``"float32"`` or ``"float64"``, the weights' dtype
``hyperparameters`` ``get_params()`` of the estimator, less the callback
``scaler``          ``null``, or the number of samples it was fitted on
``curves``          ``loss`` per epoch and ``validation`` scores (or ``null``)
``training``        ``n_iter``, ``t`` and the final ``loss``
``info``            free JSON for the caller (the command line's summary)
``sha256``          a digest of every tensor and every other metadata entry
==================  ==========================================================

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

Trust: reading parses the safetensors header and JSON and nothing else.
Nothing is unpickled and no code from the file runs; every entry is checked
(names, types, shapes, dtypes, finiteness, the digest) before an estimator is
built, so a truncated, corrupted, foreign or newer file gives one clear
:class:`~twolayer.errors.DataError`. The digest detects accidental damage;
it is not a signature.

Atomicity: a file is serialised in memory, written to a temporary file in
the destination's folder, flushed and ``fsync``-ed, then renamed over the
destination with ``os.replace`` (atomic on POSIX and Windows), and the folder
is ``fsync``-ed. At any moment the destination holds the old file or the new
one, never a mixture.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from twolayer.errors import DataError
from twolayer.io.atomic import atomic_write, atomic_write_all

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from twolayer.bayes import BayesianTwoLayerClassifier
    from twolayer.classifier import TwoLayerClassifier
    from twolayer.network import Params

    Network = TwoLayerClassifier | BayesianTwoLayerClassifier

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMAT_VERSION",
    "MODEL_FORMAT",
    "Checkpoint",
    "ModelFile",
    "atomic_write",
    "atomic_write_all",
    "load",
    "load_checkpoint",
    "model_bytes",
    "read",
    "save",
    "save_checkpoint",
    "scaled_model",
    "standard_scaler",
]

MODEL_FORMAT = "twolayer.model"
CHECKPOINT_FORMAT = "twolayer.checkpoint"
FORMAT_VERSION = 2  # the newest version this module reads and writes
_NETWORK_VERSION = 1  # plain networks: readable by every version of twolayer
_BAYESIAN_VERSION = 2

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


# --------------------------------------------------------------------------
# The container: tensors + JSON metadata + digest
# --------------------------------------------------------------------------


def _json_default(value: object) -> object:
    # NumPy scalars appear in training states and hyperparameters; they are
    # stored as the Python numbers they equal.
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"cannot store a {type(value).__name__} in a model file's metadata")


def _dumps(value: object) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


def _digest(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(json.dumps([name, little.dtype.str, list(array.shape)]).encode())
        digest.update(little.tobytes())
    digest.update(json.dumps(sorted((k, v) for k, v in metadata.items() if k != "sha256")).encode())
    return digest.hexdigest()


def _pack(
    file_format: str,
    tensors: Mapping[str, np.ndarray],
    entries: Mapping[str, object],
    *,
    version: int = _NETWORK_VERSION,
) -> bytes:
    import safetensors.numpy

    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    metadata = {"format": file_format, "format_version": str(version)}
    metadata.update({key: _dumps(value) for key, value in entries.items()})
    metadata["sha256"] = _digest(arrays, metadata)
    return _sorted_metadata(safetensors.numpy.save(arrays, metadata=metadata))


def _sorted_metadata(data: bytes) -> bytes:
    """``data`` with its header's metadata in sorted key order, so that a model saves to the same bytes.

    safetensors writes the metadata from a hash map whose order changes from call
    to call (the tensors it sorts itself). The header is length-prefixed JSON and
    the tensors' offsets count from its end, so it can be written again whole,
    padded with spaces to 8 bytes as safetensors pads it.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def _what_it_looks_like(data: bytes) -> str:
    if data[:1] == b"\x80" or data[:2] in (b"(d", b"(l", b"}q", b"]q", b"cc"):
        return "; it looks like a Python pickle, which twolayer never loads"
    if data[:4] == b"PK\x03\x04":
        return "; it is a zip archive (a .npz or a PyTorch pickle?), which twolayer does not load as a model"
    if data[:6] == b"\x93NUMPY":
        return "; it is a NumPy .npy array"
    if data and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in data[:64]):
        return "; it looks like a text file"
    return ""


def _unpack(
    path: str | os.PathLike[str], file_format: str, kind: str
) -> tuple[dict[str, np.ndarray], dict[str, Any], int]:
    """Read and check a container: its tensors, its decoded metadata and its format version."""
    import safetensors
    import safetensors.numpy

    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise DataError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise DataError(f"{source} is a folder, not a {kind}") from None
    except OSError as exc:
        raise DataError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        tensors = safetensors.numpy.load(data)
    except safetensors.SafetensorError as exc:
        detail = str(exc)
        for prefix in ("Error while deserializing header: ", "Error while deserializing: "):
            detail = detail.removeprefix(prefix)
        looks_like = _what_it_looks_like(data) or "; it may be truncated or corrupted"
        raise DataError(f"{source} is not a {kind}: not a valid safetensors file ({detail}){looks_like}") from None
    # safetensors has checked the header; read its metadata (str -> str).
    header_size = int.from_bytes(data[:8], "little")
    raw = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise DataError(f"{source} is not a {kind}: its metadata is not text")
    found = raw.get("format")
    if found != file_format:
        if found == CHECKPOINT_FORMAT:
            raise DataError(
                f"{source} is a training checkpoint, not a model file; finish the run with "
                f"'twolayer train --resume {source}'"
            )
        if found == MODEL_FORMAT:
            raise DataError(f"{source} is a model file, not a checkpoint")
        raise DataError(f"{source} is a safetensors file but not a {kind} (its metadata names no twolayer format)")
    version_text = raw.get("format_version", "")
    if not version_text.isdigit() or int(version_text) < 1:
        raise DataError(f"{source}: format_version {version_text!r} is not a version number")
    if int(version_text) > FORMAT_VERSION:
        raise DataError(
            f"{source} was written by a newer twolayer (format version {version_text}; this version reads up to "
            f"{FORMAT_VERSION}): upgrade twolayer to load it"
        )
    if raw.get("sha256") != _digest(tensors, raw):
        raise DataError(f"{source} is corrupted: its contents do not match the sha256 digest stored in it")
    metadata: dict[str, Any] = {}
    for key, text in raw.items():
        if key in ("format", "format_version", "sha256"):
            continue
        try:
            metadata[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: metadata entry {key!r} is not valid JSON ({exc.msg})") from None
    return tensors, metadata, int(version_text)


# --------------------------------------------------------------------------
# Checking what was read
# --------------------------------------------------------------------------


class _Checker:
    """Named checks on a decoded file; every failure is one DataError naming the file and the entry."""

    def __init__(self, source: str, tensors: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
        self.source = source
        self.tensors = tensors
        self.metadata = metadata

    def fail(self, message: str) -> DataError:
        return DataError(f"{self.source}: {message}")

    def entry(self, key: str, types: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if key not in self.metadata:
            if optional:
                return None
            raise self.fail(f"the metadata has no {key!r} entry")
        value = self.metadata[key]
        if value is None and optional:
            return None
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            raise self.fail(f"metadata entry {key!r} has the wrong type ({type(value).__name__})")
        return value

    def tensor(self, name: str, shape: tuple[int, ...], dtypes: tuple[type, ...]) -> np.ndarray:
        if name not in self.tensors:
            raise self.fail(f"tensor {name!r} is missing")
        array = self.tensors[name]
        if array.shape != shape:
            raise self.fail(f"tensor {name!r} has shape {array.shape}, expected {shape}")
        if array.dtype.type not in dtypes:
            raise self.fail(
                f"tensor {name!r} has dtype {array.dtype}, expected {' or '.join(d.__name__ for d in dtypes)}"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise self.fail(f"tensor {name!r} holds NaN or infinity")
        return array

    def no_other_tensors(self, expected: set[str]) -> None:
        extra = sorted(set(self.tensors) - expected)
        if extra:
            raise self.fail(f"unexpected tensor {extra[0]!r}")

    def classes(self) -> np.ndarray:
        classes = self.entry("classes", list)
        if len(classes) < 2:
            raise self.fail(f"a classifier has at least two classes; the file lists {len(classes)}")
        if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
            array = np.array(classes, dtype=np.int64)
        elif all(isinstance(c, str) for c in classes):
            array = np.array(classes, dtype=str)
        else:
            raise self.fail("the classes must be all integers or all strings")
        if np.unique(array).size != array.size or not np.array_equal(np.sort(array), array):
            raise self.fail("the classes must be distinct and sorted")
        return array

    def names(self, key: str, length: int) -> tuple[str, ...] | None:
        names = self.entry(key, list, optional=True)
        if names is None:
            return None
        if len(names) != length or not all(isinstance(n, str) for n in names) or len(set(names)) != length:
            raise self.fail(f"{key!r} must be {length} distinct strings")
        return tuple(names)

    def curve(self, curves: Mapping[str, Any], key: str) -> list[float] | None:
        values = curves.get(key)
        if values is None:
            return None
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise self.fail(f"curves[{key!r}] must be a list of numbers")
        return [float(v) for v in values]


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


# --------------------------------------------------------------------------
# Hyperparameters as JSON
# --------------------------------------------------------------------------


def _hyperparameters_to_json(params: Mapping[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for key, value in params.items():
        if key == "callback":
            continue  # a function: neither storable nor part of the model
        if key == "random_state" and not (value is None or isinstance(value, (int, np.integer))):
            value = None  # a generator object: the fitted weights no longer need it
        if key == "class_weight" and isinstance(value, Mapping):
            # JSON keys are strings; pairs keep the classes' type.
            value = {"pairs": [[k.item() if isinstance(k, np.generic) else k, float(w)] for k, w in value.items()]}
        if key == "alpha_grid" and value is not None:
            value = [float(v) for v in np.ravel(np.asarray(value, dtype=np.float64))]
        stored[key] = value
    return stored


def _hyperparameters_from_json(check: _Checker, stored: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in stored.items():
        if key not in known:
            raise check.fail(f"unknown hyperparameter {key!r}")
        if key == "alpha_grid" and isinstance(value, list):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise check.fail("hyperparameter 'alpha_grid' must be a list of numbers")
        elif isinstance(value, (dict, list)) and key != "class_weight":
            raise check.fail(f"hyperparameter {key!r} has the wrong type")
        if key == "class_weight" and value is not None and not isinstance(value, str):
            pairs = value.get("pairs") if isinstance(value, dict) else None
            if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise check.fail("hyperparameter 'class_weight' is malformed")
            value = {k: float(w) for k, w in pairs}
        params[key] = value
    return params


# --------------------------------------------------------------------------
# Model files
# --------------------------------------------------------------------------


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

    @property
    def n_features(self) -> int:
        """The number of input features ``D``."""
        return int(self.classifier.n_features_in_)

    @property
    def bayesian(self) -> bool:
        """Whether the network is a :class:`~twolayer.bayes.BayesianTwoLayerClassifier`."""
        from twolayer.classifier import TwoLayerClassifier

        return not isinstance(self.classifier, TwoLayerClassifier)


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
    scaler.var_ = scaler.scale_**2
    scaler.n_features_in_ = int(scaler.mean_.shape[0])
    scaler.n_samples_seen_ = int(n_samples_seen)
    return scaler


def _is_network(model: Any) -> bool:
    from twolayer.classifier import TwoLayerClassifier

    if isinstance(model, TwoLayerClassifier):
        return True
    # Imported only when the model may be one: the Bayesian module imports more.
    from twolayer.bayes import BayesianTwoLayerClassifier

    return isinstance(model, BayesianTwoLayerClassifier)


def _parts(model: Any) -> tuple[Network, StandardScaler | None]:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if _is_network(model):
        return model, None
    if isinstance(model, Pipeline):
        steps = [step for _, step in model.steps if step not in (None, "passthrough")]
        if len(steps) == 2 and isinstance(steps[0], StandardScaler) and _is_network(steps[1]):
            return steps[1], steps[0]
    raise TypeError(
        "save takes a fitted TwoLayerClassifier or BayesianTwoLayerClassifier, or a Pipeline of a StandardScaler "
        f"and one of them, not {type(model).__name__}"
    )


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    feature_names: Sequence[str] | None = None,
    target_name: str | None = None,
    validation_curve: Sequence[float] | None = None,
    info: Mapping[str, Any] | None = None,
) -> None:
    """Save a fitted model to one safetensors file, atomically.

    :func:`model_bytes` written with :func:`atomic_write`; the parameters
    and errors are those of :func:`model_bytes`, and ``path`` is the file
    to write (conventionally ``*.safetensors``): an existing file is
    replaced only once the new one is complete.
    """
    data = model_bytes(
        model, feature_names=feature_names, target_name=target_name, validation_curve=validation_curve, info=info
    )
    atomic_write(path, data)


def model_bytes(
    model: Any,
    *,
    feature_names: Sequence[str] | None = None,
    target_name: str | None = None,
    validation_curve: Sequence[float] | None = None,
    info: Mapping[str, Any] | None = None,
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

    Raises
    ------
    TypeError
        For a model of another kind, or classes that are neither integers
        nor strings.
    ValueError
        For weights that are not finite (a diverged fit cannot be loaded).
    """
    from sklearn.utils.validation import check_is_fitted

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
        "twolayer_version": _version(),
    }
    version = _NETWORK_VERSION
    if _is_bayesian(classifier):
        tensors.update(_posterior_tensors(classifier))
        entries["kind"] = "bayesian"
        entries["bayes"] = _bayes_entry(classifier)
        version = _BAYESIAN_VERSION
    return _pack(MODEL_FORMAT, tensors, entries, version=version)


def _is_bayesian(classifier: Network) -> bool:
    from twolayer.classifier import TwoLayerClassifier

    return not isinstance(classifier, TwoLayerClassifier)


def _posterior_tensors(model: BayesianTwoLayerClassifier) -> dict[str, np.ndarray]:
    from twolayer.network import flatten

    state = model.posterior_.to_dict()
    if not np.array_equal(state["mean"], np.asarray(flatten(model.params_))):
        raise ValueError("the posterior's mean is not the model's weights; refit the model before saving it")
    factor = np.asarray(state["factor"], dtype=np.float64)
    if state["structure"] != "diagonal":
        factor = factor[np.tril_indices(factor.shape[0])]  # the Cholesky factor's lower triangle, row by row
    return {"posterior.factor": factor, "posterior.variance": np.asarray(state["variance"], dtype=np.float64)}


def _bayes_entry(model: BayesianTwoLayerClassifier) -> dict[str, Any]:
    state = model.posterior_.to_dict()
    return {
        "posterior": {
            **{
                key: state[key]
                for key in (
                    "data_error",
                    "log_evidence",
                    "gamma",
                    "n_negative_eigenvalues",
                    "structure",
                    "hessian",
                    "activation",
                )
            },
            "prior_precision": [float(v) for v in state["prior_precision"]],
            # JSON has no NaN: a group the structure does not cover is null.
            "gamma_groups": [None if np.isnan(v) else float(v) for v in state["gamma_groups"]],
        },
        "evidence_curve": [float(v) for v in model.evidence_curve_],
        "alpha_curve": [[float(a) for a in alpha] for alpha in model.alpha_curve_],
        "n_cycles": int(model.n_cycles_),
        "loss": float(model.loss_),
        "best_loss": float(model.best_loss_),
        # The seed of the Monte Carlo predictive, drawn at fit time: with it the
        # loaded model's moderated probabilities are the fitted model's, bit for bit.
        "predict_seed": int(model._predict_seed),
    }


def _version() -> str:
    from twolayer import __version__

    return __version__


def _known_hyperparameters(bayesian: bool = False) -> set[str]:
    if bayesian:
        from twolayer.bayes import BayesianTwoLayerClassifier

        return set(BayesianTwoLayerClassifier().get_params(deep=False))
    from twolayer.classifier import TwoLayerClassifier

    return set(TwoLayerClassifier().get_params(deep=False)) - {"callback"}


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
        For a missing, truncated, corrupted, foreign or newer file, or one
        whose entries do not fit together, naming the problem.
    """
    from twolayer.network import ACTIVATIONS, Params

    source = os.fspath(path)
    tensors, metadata, version = _unpack(source, MODEL_FORMAT, "twolayer model file")
    check = _Checker(source, tensors, metadata)
    kind = check.entry("kind", str, optional=True)
    if kind not in (None, "bayesian") or (kind is not None and version < _BAYESIAN_VERSION):
        raise check.fail(f"kind {kind!r} is not a kind of model of format version {version}")
    bayesian = kind == "bayesian"
    dtype_name = check.entry("dtype", str)
    if dtype_name not in _FLOAT_DTYPES:
        raise check.fail(f"dtype {dtype_name!r} is not float32 or float64")
    if bayesian and dtype_name != "float64":
        raise check.fail("a Bayesian network's weights are float64")
    floats = (_FLOAT_DTYPES[dtype_name],)
    if "W1" not in tensors or tensors["W1"].ndim != 2 or 0 in tensors["W1"].shape:
        raise check.fail("tensor 'W1' is missing or not a non-empty matrix")
    D, M = tensors["W1"].shape
    classes = check.classes()
    K = classes.shape[0]
    W1 = check.tensor("W1", (D, M), floats)
    b1 = check.tensor("b1", (M,), floats)
    W2 = check.tensor("W2", (M, K), floats)
    b2 = check.tensor("b2", (K,), floats)
    feature_names = check.names("feature_names", D)
    target_name = check.entry("target_name", str, optional=True)
    hyper = _hyperparameters_from_json(check, check.entry("hyperparameters", dict), _known_hyperparameters(bayesian))
    if hyper.get("n_hidden") != M:
        raise check.fail(f"hyperparameter n_hidden is {hyper.get('n_hidden')!r} but W1 has {M} columns")
    if hyper.get("activation") not in ACTIVATIONS:
        raise check.fail(f"unknown activation {hyper.get('activation')!r}")
    scaler_entry = check.entry("scaler", dict, optional=True)
    expected = {"W1", "b1", "W2", "b2"}
    if bayesian:
        expected |= {"posterior.factor", "posterior.variance"}
    if scaler_entry is not None:
        expected |= {"scaler.mean", "scaler.scale"}
        mean = check.tensor("scaler.mean", (D,), (np.float64,))
        scale = check.tensor("scaler.scale", (D,), (np.float64,))
        if not (scale > 0).all():
            raise check.fail("tensor 'scaler.scale' must be positive")
        n_seen = scaler_entry.get("n_samples_seen")
        if not isinstance(n_seen, int) or isinstance(n_seen, bool) or n_seen < 1:
            raise check.fail("the scaler's n_samples_seen must be a positive integer")
    check.no_other_tensors(expected)
    curves = check.entry("curves", dict)
    loss_curve = check.curve(curves, "loss") or []
    validation_scores = check.curve(curves, "validation_scores")
    held_out = check.curve(curves, "held_out_accuracy")
    training = check.entry("training", dict)
    n_iter, t = training.get("n_iter"), training.get("t")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (n_iter, t)):
        raise check.fail("training n_iter and t must be non-negative integers")
    info = check.entry("info", dict, optional=True)
    with_names_in = check.entry("feature_names_in", bool, optional=True)
    if with_names_in and feature_names is None:
        raise check.fail("feature_names_in is set but there are no feature names")

    if bayesian:
        classifier: Network = _bayesian_network(
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
            dtype_name,
            loss_curve,
            validation_scores,
            (n_iter, t),
            list(feature_names or ()) if with_names_in else None,
            check,
        )
    model: Any = classifier
    if scaler_entry is not None:
        model = scaled_model(classifier, mean, scale, scaler_entry["n_samples_seen"])
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
    )


def _network(
    hyper: dict[str, Any],
    params: Params,
    classes: np.ndarray,
    dtype_name: str,
    loss_curve: list[float],
    validation_scores: list[float] | None,
    counts: tuple[int, int],
    feature_names_in: list[str] | None,
    check: _Checker,
) -> TwoLayerClassifier:
    from twolayer.classifier import STATE_FORMAT, STATE_VERSION, TwoLayerClassifier
    from twolayer.network import flatten

    D, M = params.W1.shape
    # The estimator is rebuilt through its own restore path, from a training
    # state with the stored weights and no optimiser: a later warm start
    # continues from these weights with a fresh optimiser.
    n_iter, t = counts
    state: dict[str, Any] = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "solver": hyper.get("solver", "adam"),
        "n_hidden": M,
        "activation": hyper["activation"],
        "n_features_in": D,
        "classes": classes.tolist(),
        "classes_dtype": classes.dtype.str,
        "dtype": dtype_name,
        "theta": np.asarray(flatten(params)),
        "n_iter": n_iter,
        "t": t,
        "loss_curve": loss_curve,
        "validation_scores": validation_scores,
        "best_loss": min(loss_curve) if loss_curve and validation_scores is None else None,
        "best_validation_score": max(validation_scores) if validation_scores else None,
        "no_improvement_count": 0,
        "rng_state": None,
        "split_seed": None,
        "optimizer": None,
    }
    if feature_names_in is not None:
        state["feature_names_in"] = feature_names_in
    try:
        return TwoLayerClassifier(**hyper).set_training_state(state)
    except (TypeError, ValueError) as exc:
        raise check.fail(f"the stored model does not fit together ({exc})") from None


def _bayesian_network(
    check: _Checker,
    hyper: dict[str, Any],
    params: Params,
    classes: np.ndarray,
    loss_curve: list[float],
    counts: tuple[int, int],
    feature_names_in: list[str] | None,
) -> BayesianTwoLayerClassifier:
    """Rebuild a fitted BayesianTwoLayerClassifier from its weights, posterior factor and fitted values."""
    from twolayer.bayes import BayesianTwoLayerClassifier, LaplacePosterior
    from twolayer.network import flatten

    D, M = params.W1.shape
    K = classes.shape[0]
    entry = check.entry("bayes", dict)
    stored = entry.get("posterior")
    if not isinstance(stored, dict):
        raise check.fail("the 'bayes' entry has no 'posterior'")

    def number(where: Mapping[str, Any], key: str, kind: type = float) -> Any:
        value = where.get(key)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
        if not ok or (kind is int and (not isinstance(value, int) or value < 0)):
            raise check.fail(f"bayes entry {key!r} must be a finite {'count' if kind is int else 'number'}")
        return kind(value)

    def precisions(values: Any, key: str) -> list[float]:
        if not (
            isinstance(values, list)
            and len(values) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < np.inf for v in values)
        ):
            raise check.fail(f"bayes entry {key!r} must be four positive numbers")
        return [float(v) for v in values]

    structure = stored.get("structure")
    if structure not in ("full", "last_layer", "diagonal") or structure != hyper.get("structure", "full"):
        raise check.fail(f"the posterior's structure {structure!r} does not match the hyperparameters")
    if stored.get("hessian") != hyper.get("hessian", "gauss_newton"):
        raise check.fail(f"the posterior's hessian {stored.get('hessian')!r} does not match the hyperparameters")
    if stored.get("activation") != hyper["activation"]:
        raise check.fail(f"the posterior's activation {stored.get('activation')!r} does not match the hyperparameters")
    W = D * M + M + M * K + K
    P = K * (M + 1) if structure == "last_layer" else W
    variance = check.tensor("posterior.variance", (P,), (np.float64,))
    if structure == "diagonal":
        factor = check.tensor("posterior.factor", (P,), (np.float64,))
        precision = factor.copy()
        positive = factor
    else:
        packed = check.tensor("posterior.factor", (P * (P + 1) // 2,), (np.float64,))
        factor = np.zeros((P, P))
        factor[np.tril_indices(P)] = packed
        precision = factor @ factor.T  # A = L L^T, equal to the fitted A up to rounding
        positive = np.diag(factor)
    if not (positive > 0).all() or not (variance > 0).all():
        raise check.fail("the posterior's factor and variances must be positive")
    gamma_groups = stored.get("gamma_groups")
    if not (
        isinstance(gamma_groups, list)
        and len(gamma_groups) == 4
        and all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in gamma_groups)
    ):
        raise check.fail("bayes entry 'gamma_groups' must be four numbers or nulls")
    state = {
        "mean": np.asarray(flatten(params), dtype=np.float64),
        "precision": precision,
        "prior_precision": np.array(precisions(stored.get("prior_precision"), "prior_precision")),
        "gamma_groups": np.array([np.nan if v is None else float(v) for v in gamma_groups]),
        "factor": factor,
        "variance": variance,
        "data_error": number(stored, "data_error"),
        "log_evidence": number(stored, "log_evidence"),
        "gamma": number(stored, "gamma"),
        "n_negative_eigenvalues": number(stored, "n_negative_eigenvalues", int),
        "structure": structure,
        "hessian": stored["hessian"],
        "activation": stored["activation"],
        "shape": [D, M, K],
    }
    curves = {key: entry.get(key) for key in ("evidence_curve", "alpha_curve")}
    if not (
        isinstance(curves["evidence_curve"], list)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in curves["evidence_curve"])
    ):
        raise check.fail("bayes entry 'evidence_curve' must be a list of numbers")
    if not isinstance(curves["alpha_curve"], list):
        raise check.fail("bayes entry 'alpha_curve' must be a list")
    alpha_curve = [np.array(precisions(a, "alpha_curve")) for a in curves["alpha_curve"]]
    seed = entry.get("predict_seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise check.fail("bayes entry 'predict_seed' must be a non-negative integer")
    try:
        posterior = LaplacePosterior.from_dict(state)
        model = BayesianTwoLayerClassifier(**hyper)
        model._check_hyperparameters()
    except (TypeError, ValueError) as exc:
        raise check.fail(f"the stored model does not fit together ({exc})") from None
    n_iter, t = counts
    fitted: dict[str, Any] = {
        "classes_": classes,
        "n_features_in_": D,
        "posterior_": posterior,
        "alpha_": posterior.prior_precision.copy(),
        "gamma_": posterior.gamma,
        "gamma_groups_": posterior.gamma_groups.copy(),
        "log_evidence_": posterior.log_evidence,
        "n_negative_eigenvalues_": posterior.n_negative_eigenvalues,
        "evidence_curve_": [float(v) for v in curves["evidence_curve"]],
        "alpha_curve_": alpha_curve,
        "n_cycles_": number(entry, "n_cycles", int),
        "params_": posterior.params,
        "loss_": number(entry, "loss"),
        "best_loss_": number(entry, "best_loss"),
        "loss_curve_": list(loss_curve),
        "validation_scores_": None,
        "best_validation_score_": None,
        "n_iter_": n_iter,
        "t_": t,
        "n_layers_": 3,
        "n_outputs_": K,
        "out_activation_": "softmax",
    }
    fitted["coefs_"] = [fitted["params_"].W1, fitted["params_"].W2]
    fitted["intercepts_"] = [fitted["params_"].b1, fitted["params_"].b2]
    if feature_names_in is not None:
        fitted["feature_names_in_"] = np.asarray(feature_names_in, dtype=object)
    for name, value in fitted.items():
        setattr(model, name, value)
    # The estimator draws this seed in fit and keeps it private; the moderated
    # predictions of a loaded model repeat the fitted ones only with it.
    model._predict_seed = seed
    return model


def load(path: str | os.PathLike[str]) -> Any:
    """Load a model saved by :func:`save`.

    Loading parses safetensors and JSON only: nothing is unpickled and no
    code from the file runs.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    TwoLayerClassifier or sklearn.pipeline.Pipeline
        The kind of object that was saved: a pipeline (``StandardScaler``
        then ``TwoLayerClassifier``) when the file holds a scaler.

    Raises
    ------
    DataError
        For a file that is missing, truncated, corrupted, not a model, or
        from a newer format version.
    """
    return read(path).model


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """What resuming a training run needs.

    Attributes
    ----------
    state : dict
        ``TwoLayerClassifier.get_training_state()``: the weights, the
        optimiser's moments, the counters, the shuffling generator's state.
    hyperparameters : dict
        The estimator's parameters, less the callback.
    scaler_mean, scaler_scale : ndarray of shape (D,) or None
        The standardisation, when there is one.
    train_index, test_index : ndarray of int64
        The rows of the data in the training and held-out parts.
    epoch : int
        The number of epochs done.
    run : dict
        Free JSON for the caller (the command line's options, the data's
        fingerprint, the held-out accuracy so far).
    """

    state: dict[str, Any]
    hyperparameters: dict[str, Any]
    scaler_mean: np.ndarray | None
    scaler_scale: np.ndarray | None
    train_index: np.ndarray
    test_index: np.ndarray
    epoch: int
    run: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint) -> None:
    """Write a checkpoint atomically (the previous one survives a failure).

    Raises
    ------
    DataError
        When the file cannot be written.
    """
    tensors: dict[str, np.ndarray] = {}
    plain: dict[str, Any] = {}
    for key, value in checkpoint.state.items():
        if isinstance(value, np.ndarray):
            tensors[f"state/{key}"] = value
        else:
            plain[key] = value
    if (checkpoint.scaler_mean is None) != (checkpoint.scaler_scale is None):
        raise ValueError("give both the scaler's mean and scale, or neither")
    if checkpoint.scaler_mean is not None and checkpoint.scaler_scale is not None:
        tensors["scaler.mean"] = np.asarray(checkpoint.scaler_mean, dtype=np.float64)
        tensors["scaler.scale"] = np.asarray(checkpoint.scaler_scale, dtype=np.float64)
    tensors["split/train"] = np.asarray(checkpoint.train_index, dtype=np.int64)
    tensors["split/test"] = np.asarray(checkpoint.test_index, dtype=np.int64)
    entries = {
        "state": plain,
        "hyperparameters": _hyperparameters_to_json(checkpoint.hyperparameters),
        "epoch": int(checkpoint.epoch),
        "scaled": checkpoint.scaler_mean is not None,
        "run": checkpoint.run,
        "twolayer_version": _version(),
    }
    atomic_write(path, _pack(CHECKPOINT_FORMAT, tensors, entries))


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    DataError
        For a missing, truncated, corrupted, foreign or newer file.
    """
    source = os.fspath(path)
    tensors, metadata, _ = _unpack(source, CHECKPOINT_FORMAT, "twolayer checkpoint")
    check = _Checker(source, tensors, metadata)
    plain = check.entry("state", dict)
    state = dict(plain)
    for name, array in tensors.items():
        if name.startswith("state/"):
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                raise check.fail(f"tensor {name!r} holds NaN or infinity")
            state[name.removeprefix("state/")] = array
    hyper = _hyperparameters_from_json(check, check.entry("hyperparameters", dict), _known_hyperparameters())
    epoch = check.entry("epoch", int)
    if epoch < 0:
        raise check.fail("the epoch must be a non-negative integer")
    mean = scale = None
    expected = {name for name in tensors if name.startswith("state/")} | {"split/train", "split/test"}
    if check.entry("scaled", bool):
        expected |= {"scaler.mean", "scaler.scale"}
        D = tensors["scaler.mean"].shape[0] if "scaler.mean" in tensors and tensors["scaler.mean"].ndim == 1 else -1
        mean = check.tensor("scaler.mean", (D,), (np.float64,))
        scale = check.tensor("scaler.scale", (D,), (np.float64,))
        if not (scale > 0).all():
            raise check.fail("tensor 'scaler.scale' must be positive")
    check.no_other_tensors(expected)
    indices = []
    for name in ("split/train", "split/test"):
        if name not in tensors:
            raise check.fail(f"tensor {name!r} is missing")
        array = tensors[name]
        if array.ndim != 1 or array.dtype != np.int64 or array.size == 0 or (array < 0).any():
            raise check.fail(f"tensor {name!r} must be a non-empty vector of non-negative int64 indices")
        indices.append(array)
    if np.intersect1d(indices[0], indices[1]).size:
        raise check.fail("the training and held-out rows overlap")
    run = check.entry("run", dict)
    return Checkpoint(
        state=state,
        hyperparameters=hyper,
        scaler_mean=mean,
        scaler_scale=scale,
        train_index=indices[0],
        test_index=indices[1],
        epoch=epoch,
        run=run,
    )
