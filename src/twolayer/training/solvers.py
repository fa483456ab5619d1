"""The names of the solvers, in a module that imports nothing.

The estimators check ``solver`` against these names, and the command line
offers them as choices: reading them here costs no import of NumPy, SciPy or
scikit-learn, so that a parser can be built before any of those loads.
"""

from __future__ import annotations

__all__ = ["FULL_BATCH_SOLVERS", "MINIBATCH_SOLVERS", "SECOND_ORDER_METHODS", "SOLVERS"]

#: The minibatch solvers (:func:`twolayer.training.minibatch.train_minibatch`).
MINIBATCH_SOLVERS = ("adam", "sgd")
#: The full-batch solvers with exact Hessian-vector products (:func:`twolayer.training.full_batch.train_second_order`).
SECOND_ORDER_METHODS = ("newton-cg", "trust-ncg", "scg")
#: The solvers on the whole batch: SciPy's L-BFGS-B and the second-order methods.
FULL_BATCH_SOLVERS = ("lbfgs", *SECOND_ORDER_METHODS)
#: Every solver the estimator takes, in the order the command line lists them.
SOLVERS = (*MINIBATCH_SOLVERS, *FULL_BATCH_SOLVERS)
