"""The Bayesian part of a model file: the Laplace posterior beside the weights, and the estimator rebuilt from it.

A Bayesian model file (``format_version`` 2, ``kind`` ``"bayesian"``) holds
the tensors ``posterior.factor`` (the Cholesky factor :math:`L` of the
posterior precision :math:`A = L L^\\top` as its packed lower triangle, row
by row, or for the ``"diagonal"`` structure :math:`A`'s diagonal) and
``posterior.variance`` (:math:`\\operatorname{diag}(A^{-1})`), and the JSON
entry ``bayes`` (the posterior's scalars, the evidence and alpha curves, the
seed of the Monte Carlo predictive, the evidence of every restart). A
mixture of ``n_components`` Laplace posteriors keeps its first (largest
evidence) component there and each further one ``c`` as the tensors
``component{c}.mean`` (the flat weights), ``component{c}.factor`` and
``component{c}.variance`` and an entry of ``bayes["components"]``; a file
without them (written before mixtures) is one component, and the
hyperparameters it lacks take the values that fitted it (no restarts, no
hyperprior, full steps). The estimator comes back through
:meth:`~twolayer.bayes.BayesianTwoLayerClassifier.from_posterior`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from twolayer.io.container import _Checker, _is_number

if TYPE_CHECKING:
    from twolayer.bayes import BayesianTwoLayerClassifier
    from twolayer.network import Params

__all__ = ["MAX_MC_SAMPLES", "bayes_entry", "bayesian_network", "bayesian_tensor_names", "posterior_tensors"]

#: The most Monte Carlo samples a model file may ask its predictions to draw. Each prediction holds
#: n_samples x K draws at once (80 MB for ten classes at this limit) and its standard error,
#: 0.5 / sqrt(n_samples), is already below 5e-4; the default is 1000. A tampered count beyond it
#: would make the first prediction allocate terabytes, so reading refuses it, and saving refuses a
#: model that reading would refuse.
MAX_MC_SAMPLES = 10**6

# The most components of a mixture whose tensors a model file is checked for.
MAX_COMPONENTS = 4096


def posterior_tensors(model: BayesianTwoLayerClassifier) -> dict[str, np.ndarray]:
    from twolayer.network import flatten

    state = model.posterior_.to_dict()
    if _is_number(model.n_samples) and model.n_samples > MAX_MC_SAMPLES:
        raise ValueError(
            f"n_samples is {model.n_samples}, more than the {MAX_MC_SAMPLES} Monte Carlo samples a model file may "
            "hold; lower n_samples before saving"
        )
    if not np.array_equal(state["mean"], np.asarray(flatten(model.params_))):
        raise ValueError("the posterior's mean is not the model's weights; refit the model before saving it")
    tensors = _factor_tensors(state, "posterior")
    for c, component in enumerate(model.components_[1:], start=1):
        component_state = component.to_dict()
        tensors.update(_factor_tensors(component_state, f"component{c}"))
        tensors[f"component{c}.mean"] = np.asarray(component_state["mean"], dtype=np.float64)
    return tensors


def _factor_tensors(state: Mapping[str, Any], prefix: str) -> dict[str, np.ndarray]:
    factor = np.asarray(state["factor"], dtype=np.float64)
    if state["structure"] != "diagonal":
        factor = factor[np.tril_indices(factor.shape[0])]  # the Cholesky factor's lower triangle, row by row
    return {f"{prefix}.factor": factor, f"{prefix}.variance": np.asarray(state["variance"], dtype=np.float64)}


def bayesian_tensor_names(hyper: Mapping[str, Any]) -> set[str]:
    """The tensors of a Bayesian file beside the weights: the posterior's, and each further component's."""
    n_components = hyper.get("n_components", 1)
    count = n_components if isinstance(n_components, int) and not isinstance(n_components, bool) else 1
    names = {"posterior.factor", "posterior.variance"}
    # A tampered count names no more tensors than a file could hold; reading then refuses the count itself.
    for c in range(1, min(max(count, 1), MAX_COMPONENTS)):
        names |= {f"component{c}.mean", f"component{c}.factor", f"component{c}.variance"}
    return names


def _posterior_scalars(state: Mapping[str, Any]) -> dict[str, Any]:
    from twolayer.bayes.posterior import SCALARS

    return {
        **{key: state[key] for key in SCALARS},
        "prior_precision": [float(v) for v in state["prior_precision"]],
        # JSON has no NaN: a group the structure does not cover is null.
        "gamma_groups": [None if np.isnan(v) else float(v) for v in state["gamma_groups"]],
    }


def bayes_entry(model: BayesianTwoLayerClassifier) -> dict[str, Any]:
    entry = {
        "posterior": _posterior_scalars(model.posterior_.to_dict()),
        "evidence_curve": [float(v) for v in model.evidence_curve_],
        "restart_evidence": [[float(v) for v in cycle] for cycle in model.restart_evidence_],
        "alpha_curve": [[float(a) for a in alpha] for alpha in model.alpha_curve_],
        "n_cycles": int(model.n_cycles_),
        "loss": float(model.loss_),
        "best_loss": float(model.best_loss_ if model.best_loss_ is not None else model.loss_),
        # With the seed of the Monte Carlo predictive, drawn at fit time, the loaded
        # model's moderated probabilities are the fitted model's, bit for bit.
        "predict_seed": int(model.predict_seed_),
    }
    if len(model.components_) > 1:
        entry["components"] = [_posterior_scalars(c.to_dict()) for c in model.components_[1:]]
    return entry


# The hyperparameters that files from before the restarted evidence procedure and the mixtures lack, at the
# values that reproduce how those models were fitted.
_LEGACY_HYPERPARAMETERS = {
    "n_restarts": 0,
    "alpha_damping": 1.0,
    "alpha_hyperprior": 0.0,
    "n_components": 1,
    "mixture_weights": "equal",
}


def bayesian_network(
    check: _Checker,
    hyper: dict[str, Any],
    params: Params,
    classes: np.ndarray,
    loss_curve: list[float],
    counts: tuple[int, int],
    feature_names_in: list[str] | None,
) -> BayesianTwoLayerClassifier:
    """Rebuild a fitted BayesianTwoLayerClassifier from its weights, posterior factors and fitted values."""
    from twolayer.bayes import BayesianTwoLayerClassifier, LaplacePosterior
    from twolayer.network import flatten

    D, M = params.W1.shape
    K = classes.shape[0]
    hyper = {**_LEGACY_HYPERPARAMETERS, **hyper}
    entry = check.entry("bayes", dict)
    stored = entry.get("posterior")
    if not isinstance(stored, dict):
        raise check.fail("the 'bayes' entry has no 'posterior'")

    def number(where: Mapping[str, Any], key: str, kind: type = float) -> Any:
        value = where.get(key)
        # math.isfinite, unlike np.isfinite, takes an integer wider than int64.
        ok = _is_number(value) and math.isfinite(value)
        if not ok or (kind is int and (not isinstance(value, int) or not 0 <= value < 2**63)):
            raise check.fail(f"bayes entry {key!r} must be a finite {'count' if kind is int else 'number'}")
        return kind(value)

    def precisions(values: Any, key: str) -> list[float]:
        if not (
            isinstance(values, list) and len(values) == 4 and all(_is_number(v) and 0 < v < np.inf for v in values)
        ):
            raise check.fail(f"bayes entry {key!r} must be four positive numbers")
        return [float(v) for v in values]

    def posterior_state(stored: Mapping[str, Any], prefix: str, mean: np.ndarray) -> dict[str, Any]:
        structure = stored.get("structure")
        if structure not in ("full", "last_layer", "diagonal") or structure != hyper.get("structure", "full"):
            raise check.fail(f"the posterior's structure {structure!r} does not match the hyperparameters")
        W = D * M + M + M * K + K
        P = K * (M + 1) if structure == "last_layer" else W
        variance = check.tensor(f"{prefix}.variance", (P,), (np.float64,))
        if structure == "diagonal":
            factor = check.tensor(f"{prefix}.factor", (P,), (np.float64,))
            precision = factor.copy()
            positive = factor
        else:
            packed = check.tensor(f"{prefix}.factor", (P * (P + 1) // 2,), (np.float64,))
            factor = np.zeros((P, P))
            factor[np.tril_indices(P)] = packed
            with np.errstate(over="ignore", invalid="ignore"):  # refused below, naming the tensor
                precision = factor @ factor.T  # A = L L^T, equal to the fitted A up to rounding
            if not np.isfinite(precision).all():
                raise check.fail(f"tensor '{prefix}.factor' is too large: the precision L L^T it gives overflows")
            positive = np.diag(factor)
        if not (positive > 0).all() or not (variance > 0).all():
            raise check.fail("the posterior's factor and variances must be positive")
        gamma_groups = stored.get("gamma_groups")
        if not (
            isinstance(gamma_groups, list)
            and len(gamma_groups) == 4
            and all(v is None or _is_number(v) for v in gamma_groups)
        ):
            raise check.fail("bayes entry 'gamma_groups' must be four numbers or nulls")
        return {
            "mean": mean,
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
            "hessian": stored.get("hessian"),
            "activation": stored.get("activation"),
            "shape": [D, M, K],
        }

    state = posterior_state(stored, "posterior", np.asarray(flatten(params), dtype=np.float64))
    n_components = hyper.get("n_components")
    if not isinstance(n_components, int) or isinstance(n_components, bool) or n_components < 1:
        raise check.fail(f"hyperparameter n_components must be a positive count, not {n_components!r}")
    others = entry.get("components", [])
    if not (isinstance(others, list) and len(others) == n_components - 1 and all(isinstance(c, dict) for c in others)):
        raise check.fail(f"bayes entry 'components' must describe the {n_components - 1} further components")
    W = D * M + M + M * K + K
    component_states = []
    for c, scalars in enumerate(others, start=1):
        mean = check.tensor(f"component{c}.mean", (W,), (np.float64,))
        component_states.append(posterior_state(scalars, f"component{c}", mean))
    curves = {key: entry.get(key) for key in ("evidence_curve", "alpha_curve")}
    if not (isinstance(curves["evidence_curve"], list) and all(_is_number(v) for v in curves["evidence_curve"])):
        raise check.fail("bayes entry 'evidence_curve' must be a list of numbers")
    if not isinstance(curves["alpha_curve"], list):
        raise check.fail("bayes entry 'alpha_curve' must be a list")
    alpha_curve = [np.array(precisions(a, "alpha_curve")) for a in curves["alpha_curve"]]
    restart_evidence = entry.get("restart_evidence")  # absent from files of before the restarts
    if restart_evidence is not None and not (
        isinstance(restart_evidence, list)
        and len(restart_evidence) == len(curves["evidence_curve"])
        and all(isinstance(r, list) and r and all(_is_number(v) for v in r) for r in restart_evidence)
    ):
        raise check.fail("bayes entry 'restart_evidence' must be a list of numbers for each cycle")
    seed = entry.get("predict_seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise check.fail("bayes entry 'predict_seed' must be a non-negative integer")
    n_cycles = number(entry, "n_cycles", int)
    if not n_cycles == len(curves["evidence_curve"]) == len(alpha_curve):
        raise check.fail("bayes entry 'n_cycles' must be the length of the evidence and alpha curves")
    n_samples = hyper.get("n_samples")
    if _is_number(n_samples) and n_samples > MAX_MC_SAMPLES:
        raise check.fail(
            f"hyperparameter n_samples is {n_samples}, more than the {MAX_MC_SAMPLES} Monte Carlo samples a model "
            "file may ask for"
        )
    n_iter, t = counts
    try:
        return BayesianTwoLayerClassifier.from_posterior(
            LaplacePosterior.from_dict(state),
            classes,
            hyperparameters=hyper,
            predict_seed=seed,
            evidence_curve=curves["evidence_curve"],
            alpha_curve=alpha_curve,
            restart_evidence=restart_evidence,
            components=[LaplacePosterior.from_dict(c) for c in component_states],
            loss=number(entry, "loss"),
            best_loss=number(entry, "best_loss"),
            loss_curve=loss_curve,
            n_iter=n_iter,
            t=t,
            feature_names_in=feature_names_in,
        )
    except (TypeError, ValueError) as exc:
        raise check.fail(f"the stored model does not fit together ({exc})") from None
