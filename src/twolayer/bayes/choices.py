"""The Bayesian network's option names, in a module that imports nothing but the standard library.

The command line builds its parser from these without loading SciPy or
scikit-learn; :class:`~twolayer.bayes.BayesianTwoLayerClassifier` and
:func:`~twolayer.bayes.laplace` validate against the same tuples.
"""

from types import MappingProxyType

__all__ = [
    "ALPHA_SEARCHES",
    "HESSIANS",
    "METHODS",
    "MIXTURE_WEIGHTS",
    "SINGLE_START_PROCEDURE",
    "STRUCTURES",
    "per_group_precisions",
]

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
#: The estimator's settings that reproduce the evidence procedure of before the restarts (one start, no
#: hyperprior, full steps, one alpha over the whole network, ten cycles) exactly, for comparisons.
SINGLE_START_PROCEDURE = MappingProxyType(
    {
        "n_restarts": 0,
        "alpha_damping": 1.0,
        "alpha_hyperprior": 0.0,
        "per_group": False,
        "structure": "full",
        "max_cycles": 10,
    }
)


def per_group_precisions(per_group: object, structure: str, alpha_search: str) -> bool:
    """Whether the fixed point re-estimates one precision per group: ``per_group`` with "auto" resolved.

    "auto" is per group for the last-layer posterior (its ``W2`` and ``b2``:
    the output biases, a handful of numbers, then keep the hyperprior's
    scale instead of taking the weights') and one precision for the other
    structures, where per-group precisions over the whole network measured
    worse (BENCHMARKS.md, "Calibration"); a grid holds one precision.

    Parameters
    ----------
    per_group : bool or "auto"
    structure : str
        One of :data:`twolayer.bayes.choices.STRUCTURES`.
    alpha_search : str
        One of :data:`twolayer.bayes.choices.ALPHA_SEARCHES`.

    Returns
    -------
    bool
    """
    if per_group == "auto":
        return structure == "last_layer" and alpha_search == "fixed_point"
    return bool(per_group)
