"""The Bayesian two-layer network: Laplace approximation, evidence, moderated predictions.

One module per idea: :mod:`~twolayer.bayes.posterior` (the Laplace posterior
and the evidence, from explicit inputs), :mod:`~twolayer.bayes.predictive`
(the softmax integrated over the Gaussian of the output activations),
:mod:`~twolayer.bayes.map` (the MAP network under a grouped prior),
:mod:`~twolayer.bayes.fitted` (:func:`laplace`: the posterior of a fitted classifier) and
:mod:`~twolayer.bayes.estimator` (the scikit-learn estimator that chooses the
prior by the evidence). The grouped prior itself is :mod:`twolayer.prior`.
Every public name is re-exported here, so ``from twolayer.bayes import laplace``
works.
"""

from twolayer.bayes.estimator import ALPHA_SEARCHES, BayesianTwoLayerClassifier
from twolayer.bayes.fitted import laplace
from twolayer.bayes.map import MapFit, map_estimate
from twolayer.bayes.posterior import HESSIANS, METHODS, STRUCTURES, LaplacePosterior, posterior_from_curvature
from twolayer.bayes.predictive import predictive_mc, predictive_probit
from twolayer.prior import GROUPS, PriorPrecision, as_prior_precision, group_sizes

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
