"""Checkpoints: what resuming a training run needs, in the container of :mod:`twolayer.io.container`.

A **checkpoint** is a safetensors file of the same make as a model file
(``format`` is ``"twolayer.checkpoint"``) holding the estimator's
``get_training_state()`` (arrays as tensors ``state/NAME``, everything else
as JSON, the shuffling generator's state included), the hyperparameters, the
scaler, the indices of the train/test split (``split/train``,
``split/test``), the epoch, and free JSON for the caller. It is written
atomically: the previous checkpoint survives a failure.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twolayer.io.atomic import atomic_write
from twolayer.io.container import (
    CHECKPOINT_FORMAT,
    _Checker,
    _hyperparameters_from_json,
    _hyperparameters_to_json,
    _is_number,
    _pack,
    _unpack,
    package_version,
)
from twolayer.io.models import _hyperparameter_names

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]


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
        "twolayer_version": package_version(),
    }
    atomic_write(path, _pack(CHECKPOINT_FORMAT, tensors, entries))


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read and check a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    DataError
        For a missing, truncated, corrupted, foreign or newer file, one
        that is not a regular file or exceeds the limits of
        :mod:`twolayer.io.container`, or a training state whose counts,
        labels, dtypes, shapes or generator state do not fit together.
    """
    source = os.fspath(path)
    tensors, metadata, _ = _unpack(source, CHECKPOINT_FORMAT, "twolayer checkpoint")
    check = _Checker(source, tensors, metadata)
    state = _training_state(check)
    hyper = _hyperparameters_from_json(check, check.entry("hyperparameters", dict), _hyperparameter_names("network"))
    epoch = check.count(metadata, "epoch", "the epoch")
    mean = scale = None
    expected = {name for name in tensors if name.startswith("state/")} | {"split/train", "split/test"}
    if check.entry("scaled", bool):
        expected |= {"scaler.mean", "scaler.scale"}
        D = state["n_features_in"]
        features = f"the training state has {D} features"
        mean = check.tensor("scaler.mean", (D,), (np.float64,), because=features)
        scale = check.tensor("scaler.scale", (D,), (np.float64,), because=features)
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


# The tensors of a training state: the running weights, the best weights of early stopping, and the
# optimiser's moments, each a vector of every weight.
_STATE_TENSORS = ("theta", "best_theta", "velocity", "adam_m", "adam_v")
# What each optimiser's state needs besides the weights.
_OPTIMIZER_TENSORS = {"sgd": ("velocity",), "adam": ("adam_m", "adam_v")}


def _training_state(check: _Checker) -> dict[str, Any]:
    """The training state of a checkpoint: its JSON entry and its ``state/`` tensors, checked against each other.

    Every count, label and size it records is checked (and the tensors
    against the sizes) before the estimator takes it, so that a damaged or
    tampered checkpoint is refused with the entry named rather than failing
    in the middle of restoring it.
    """
    from twolayer.network import n_params

    plain = check.entry("state", dict)
    state = dict(plain)
    for key in ("n_features_in", "n_hidden"):
        check.count(plain, key, f"the training state's {key}", positive=True)
    for key in ("n_iter", "t", "no_improvement_count"):
        check.count(plain, key, f"the training state's {key}")
    classes = plain.get("classes")
    if not (
        isinstance(classes, list)
        and len(classes) >= 2
        and any(all(map(test, classes)) for test in (_is_number, _is_text, _is_bool))
        and len(set(classes)) == len(classes)
    ):
        raise check.fail("the training state's classes must be at least two distinct numbers, strings or booleans")
    _check_classes_dtype(check, plain.get("classes_dtype"), classes)
    dtype = plain.get("dtype")
    if dtype not in ("float32", "float64"):
        raise check.fail(f"the training state's dtype {dtype!r} is not float32 or float64")
    size = n_params(plain["n_features_in"], plain["n_hidden"], len(classes))
    names = {name.removeprefix("state/") for name in check.tensors if name.startswith("state/")}
    if not names <= set(_STATE_TENSORS):
        raise check.fail(f"unexpected tensor 'state/{sorted(names - set(_STATE_TENSORS))[0]}'")
    optimizer = plain.get("optimizer")
    needed = {"theta"}
    if optimizer is not None:
        name = optimizer.get("name") if isinstance(optimizer, dict) else None
        if name not in _OPTIMIZER_TENSORS or not isinstance(optimizer.get("settings"), dict):
            raise check.fail("the training state's optimizer is malformed")
        if not all(isinstance(v, (int, float, str)) for v in optimizer["settings"].values()):
            raise check.fail("the training state's optimizer settings must be numbers, booleans or names")
        if not _is_number(optimizer.get("learning_rate")):
            raise check.fail("the training state's learning rate must be a number")
        if name == "adam":
            check.count(optimizer, "t", "the training state's optimizer t")
        needed |= set(_OPTIMIZER_TENSORS[name])
    layout = (
        f"the training state has {size} weights (D={plain['n_features_in']}, M={plain['n_hidden']}, K={len(classes)})"
    )
    for name in sorted(needed | names):
        state[name] = check.tensor(f"state/{name}", (size,), (np.dtype(dtype).type,), because=layout)
    for key, optional in (("loss_curve", False), ("validation_scores", True)):
        values = plain.get(key)
        if not (optional and values is None) and not (isinstance(values, list) and all(map(_is_number, values))):
            raise check.fail(f"the training state's {key} must be a list of numbers")
    for key in ("loss", "best_loss", "best_validation_score"):
        if plain.get(key) is not None and not _is_number(plain[key]):
            raise check.fail(f"the training state's {key} must be a number")
    if plain.get("split_seed") is not None:
        check.count(plain, "split_seed", "the training state's split_seed")
    _check_rng_state(check, plain.get("rng_state"))
    return state


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _check_classes_dtype(check: _Checker, text: Any, classes: list[Any]) -> None:
    """The dtype the labels are restored in: a number of at most 8 bytes, text no wider than the longest label, or object.

    A dtype is itself a size: ``"<U1000000000"`` would make restoring the
    labels allocate gigabytes each.
    """
    # Only the plain forms NumPy writes ("<i8", "<U6", "|b1", "|O"), so that no odd alias is parsed.
    plain = isinstance(text, str) and re.fullmatch(r"[<>|=]?[biufUO][0-9]{0,9}", text) is not None
    dtype = np.dtype(text) if plain else None
    longest = max((len(c) for c in classes if isinstance(c, str)), default=0)
    fits = dtype is not None and (
        (dtype.kind in "biuf" and dtype.itemsize <= 8)
        or (dtype.kind == "U" and dtype.itemsize <= 4 * max(longest, 1))
        or dtype.kind == "O"  # labels fitted from an object array: each label as it is
    )
    if not fits:
        raise check.fail(f"the training state's classes_dtype {text!r} is not a dtype of its classes")


def _check_rng_state(check: _Checker, rng_state: Any) -> None:
    """The shuffling generator's state, or None; tried on a new generator, which refuses one malformed or out of range."""
    if rng_state is None:
        return
    try:
        np.random.default_rng().bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError, OverflowError):
        raise check.fail("the training state's rng_state is not the state of the shuffling generator") from None
