"""The Bayesian two-layer network: Laplace approximation, evidence, moderated predictions.

One module per idea: :mod:`~twolayer.bayes.posterior` (the Laplace posterior
and the evidence, from explicit inputs), :mod:`~twolayer.bayes.predictive`
(the softmax integrated over the Gaussian of the output activations),
:mod:`~twolayer.bayes.map` (the MAP network under a grouped prior),
:mod:`~twolayer.bayes.fitted` (:func:`laplace`: the posterior of a fitted classifier) and
:mod:`~twolayer.bayes.estimator` (the scikit-learn estimator that chooses the
prior by the evidence). The grouped prior itself is :mod:`twolayer.prior`.
Every public name is re-exported here, so ``from twolayer.bayes import laplace``
works; each is imported on first use, so that ``twolayer.bayes.choices`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twolayer.bayes.choices import ALPHA_SEARCHES, HESSIANS, METHODS, MIXTURE_WEIGHTS, STRUCTURES
    from twolayer.bayes.estimator import BayesianTwoLayerClassifier
    from twolayer.bayes.fitted import laplace
    from twolayer.bayes.map import MapFit, map_estimate
    from twolayer.bayes.posterior import LaplacePosterior, posterior_from_curvature
    from twolayer.bayes.predictive import predictive_mc, predictive_probit
    from twolayer.prior import GROUPS, PriorPrecision, as_prior_precision, group_sizes

# public name -> the module that defines it
_LAZY = {
    **dict.fromkeys(
        ("ALPHA_SEARCHES", "HESSIANS", "METHODS", "MIXTURE_WEIGHTS", "STRUCTURES"), "twolayer.bayes.choices"
    ),
    "BayesianTwoLayerClassifier": "twolayer.bayes.estimator",
    "laplace": "twolayer.bayes.fitted",
    **dict.fromkeys(("MapFit", "map_estimate"), "twolayer.bayes.map"),
    **dict.fromkeys(("LaplacePosterior", "posterior_from_curvature"), "twolayer.bayes.posterior"),
    **dict.fromkeys(("predictive_mc", "predictive_probit"), "twolayer.bayes.predictive"),
    **dict.fromkeys(("GROUPS", "PriorPrecision", "as_prior_precision", "group_sizes"), "twolayer.prior"),
}

__all__ = [
    "ALPHA_SEARCHES",
    "GROUPS",
    "HESSIANS",
    "METHODS",
    "MIXTURE_WEIGHTS",
    "STRUCTURES",
    "BayesianTwoLayerClassifier",
    "LaplacePosterior",
    "MapFit",
    "PriorPrecision",
    "as_prior_precision",
    "group_sizes",
    "laplace",
    "map_estimate",
    "posterior_from_curvature",
    "predictive_mc",
    "predictive_probit",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'twolayer.bayes' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
