"""The Bayesian two-layer network: Laplace approximation, evidence, moderated predictions.

See :mod:`twolayer.bayes.posterior` for the mathematics; every public name is
re-exported here, so ``from twolayer.bayes import laplace`` keeps working.
"""

from twolayer.bayes.posterior import (
    ALPHA_SEARCHES,
    GROUPS,
    HESSIANS,
    METHODS,
    STRUCTURES,
    BayesianTwoLayerClassifier,
    LaplacePosterior,
    MapFit,
    PriorPrecision,
    as_prior_precision,
    group_sizes,
    laplace,
    map_estimate,
    posterior_from_curvature,
    predictive_mc,
    predictive_probit,
)

__all__ = [
    "ALPHA_SEARCHES",
    "GROUPS",
    "HESSIANS",
    "METHODS",
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
