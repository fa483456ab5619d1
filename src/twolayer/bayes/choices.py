"""The Bayesian network's option names, in a module that imports nothing.

The command line builds its parser from these without loading SciPy or
scikit-learn; :class:`~twolayer.bayes.BayesianTwoLayerClassifier` and
:func:`~twolayer.bayes.laplace` validate against the same tuples.
"""

__all__ = ["ALPHA_SEARCHES", "HESSIANS", "METHODS", "MIXTURE_WEIGHTS", "STRUCTURES"]

#: The curvature of the data error in the posterior precision: exact, or the Gauss–Newton matrix.
HESSIANS = ("exact", "gauss_newton")
#: Which parameters the Laplace posterior covers, and how: all (dense), the second layer, the diagonal.
STRUCTURES = ("full", "last_layer", "diagonal")
#: How the predictive integral is computed: Monte Carlo over the output activations, or the probit rule.
METHODS = ("mc", "probit")
#: How the prior precisions are chosen: MacKay's fixed-point re-estimation, or the best evidence on a grid.
ALPHA_SEARCHES = ("fixed_point", "grid")
#: How a mixture of Laplace posteriors weighs its components: equally, or in proportion to their evidence.
MIXTURE_WEIGHTS = ("equal", "evidence")
