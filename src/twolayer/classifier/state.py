"""The training state as plain values: what :meth:`TwoLayerClassifier.get_training_state` returns and takes back.

A training run's :class:`twolayer.training.optim.TrainingState` (the running
weights, the optimiser's moments, the counters, the shuffling generator)
becomes a dict of NumPy arrays and JSON-serialisable values, so that a model
file or checkpoint can hold it and a later run can continue bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from twolayer import network
from twolayer.training import optim

__all__ = ["STATE_FORMAT", "STATE_VERSION", "state_from_dict", "state_from_record", "state_to_dict"]

STATE_FORMAT = "twolayer-training-state"
STATE_VERSION = 1


def state_to_dict(
    state: optim.TrainingState,
    *,
    solver: str,
    n_hidden: int,
    activation: str,
    n_features_in: int,
    classes: np.ndarray,
    feature_names_in: Sequence[str] | None,
) -> dict[str, Any]:
    """A training state as plain values (see :meth:`TwoLayerClassifier.get_training_state`)."""
    out: dict[str, Any] = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "solver": solver,
        "n_hidden": int(n_hidden),
        "activation": activation,
        "n_features_in": int(n_features_in),
        "classes": classes.tolist(),
        "classes_dtype": classes.dtype.str,
        "dtype": state.theta.dtype.name,
        "theta": state.theta.copy(),
        "n_iter": int(state.n_iter),
        "t": int(state.t),
        "loss": None if state.loss is None else float(state.loss),
        "loss_curve": [float(v) for v in state.loss_curve],
        "validation_scores": None if state.validation_scores is None else [float(v) for v in state.validation_scores],
        "best_loss": _finite_or_none(state.best_loss),
        "best_validation_score": _finite_or_none(state.best_validation_score),
        "no_improvement_count": int(state.no_improvement_count),
        "rng_state": None if state.rng is None else _jsonable(state.rng.bit_generator.state),
        "split_seed": state.split_seed,
        "optimizer": None,
    }
    if feature_names_in is not None:
        out["feature_names_in"] = [str(f) for f in feature_names_in]
    if state.best_theta is not None:
        out["best_theta"] = state.best_theta.copy()
    opt = state.optimizer
    if opt is not None:
        values = opt.state()
        out["optimizer"] = {
            "name": opt.name,
            "settings": _jsonable(dict(state.optimizer_settings)),
            "learning_rate": float(values["learning_rate"]),
            **({"t": int(values["t"])} if opt.name == "adam" else {}),
        }
        if opt.name == "sgd":
            out["velocity"] = values["velocity"]
        else:
            out["adam_m"], out["adam_v"] = values["m"], values["v"]
    return out


def state_from_dict(
    state: Mapping[str, Any], expected: Mapping[str, Any]
) -> tuple[optim.TrainingState, np.ndarray, int, list[str] | None]:
    """The training state, classes, number of features and feature names stored by :func:`state_to_dict`.

    ``expected`` holds the ``solver``, ``n_hidden`` and ``activation`` of
    the estimator that takes the state; a state saved with others is refused.
    """
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"not a training state: expected a dict with format={STATE_FORMAT!r}")
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"unsupported training-state version {state.get('version')!r}; this version reads {STATE_VERSION}"
        )
    for key, value in expected.items():
        if state[key] != value:
            raise ValueError(f"the state was saved with {key}={state[key]!r}, but this estimator has {key}={value!r}")
    dtype = np.dtype(state["dtype"])
    classes = np.asarray(state["classes"], dtype=np.dtype(state["classes_dtype"]))
    D, M, K = int(state["n_features_in"]), int(state["n_hidden"]), classes.shape[0]
    theta = np.array(state["theta"], dtype=dtype, copy=True)
    if theta.shape != (network.n_params(D, M, K),):
        raise ValueError(
            f"theta has shape {theta.shape}, expected ({network.n_params(D, M, K)},) for D={D}, M={M}, K={K}"
        )
    rng = None
    if state.get("rng_state") is not None:
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng_state"]
    early_stopping = state["validation_scores"] is not None
    training = optim.TrainingState(
        theta=theta,
        n_iter=int(state["n_iter"]),
        t=int(state["t"]),
        loss=None if state.get("loss") is None else float(state["loss"]),
        loss_curve=[float(v) for v in state["loss_curve"]],
        validation_scores=[float(v) for v in state["validation_scores"]] if early_stopping else None,
        best_loss=None if early_stopping else _none_or(state["best_loss"], math.inf),
        best_validation_score=_none_or(state["best_validation_score"], -math.inf) if early_stopping else None,
        no_improvement_count=int(state["no_improvement_count"]),
        best_theta=None if state.get("best_theta") is None else np.array(state["best_theta"], dtype=dtype, copy=True),
        rng=rng,
        split_seed=None if state.get("split_seed") is None else int(state["split_seed"]),
    )
    info = state.get("optimizer")
    if info is not None:
        opt = optim.make_optimizer(info["name"], theta.shape[0], dtype, info["settings"])
        values: dict[str, Any] = {"learning_rate": info["learning_rate"]}
        if info["name"] == "sgd":
            values["velocity"] = state["velocity"]
        else:
            values.update(t=info["t"], m=state["adam_m"], v=state["adam_v"])
        opt.load_state(values)
        training.optimizer, training.optimizer_settings = opt, dict(info["settings"])
    names = state.get("feature_names_in")
    return training, classes, D, None if names is None else list(names)


def state_from_record(
    theta: np.ndarray,
    *,
    loss: float | None,
    loss_curve: Sequence[float],
    best_loss: float | None,
    validation_scores: Sequence[float] | None,
    best_validation_score: float | None,
    n_iter: int,
    t: int,
) -> optim.TrainingState:
    r"""A training state with no optimiser: given weights and the record of an earlier training.

    The record is what :meth:`TwoLayerClassifier.from_params` takes; a state
    with ``validation_scores`` is one of early stopping (its ``best_loss`` is
    None), one without keeps ``best_loss`` (:math:`+\infty` when unknown).
    ``theta`` is copied.
    """
    early_stopping = validation_scores is not None
    return optim.TrainingState(
        theta=np.array(theta, copy=True),
        n_iter=int(n_iter),
        t=int(t),
        loss=None if loss is None else float(loss),
        loss_curve=[float(v) for v in loss_curve],
        validation_scores=[float(v) for v in validation_scores] if validation_scores is not None else None,
        best_loss=None if early_stopping else (math.inf if best_loss is None else float(best_loss)),
        best_validation_score=(-math.inf if best_validation_score is None else float(best_validation_score))
        if early_stopping
        else None,
    )


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _none_or(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def _jsonable(value: Any) -> Any:
    """Plain Python ints, floats, strs, lists and dicts (NumPy scalars converted)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
