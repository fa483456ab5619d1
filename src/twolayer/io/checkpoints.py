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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twolayer.io.atomic import atomic_write
from twolayer.io.container import (
    CHECKPOINT_FORMAT,
    _Checker,
    _hyperparameters_from_json,
    _hyperparameters_to_json,
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
    hyper = _hyperparameters_from_json(check, check.entry("hyperparameters", dict), _hyperparameter_names("network"))
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
