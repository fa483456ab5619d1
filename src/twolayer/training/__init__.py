"""Training: the optimisers, the minibatch and L-BFGS loops, and the second-order solvers.

Everything here minimises the regularised error of :mod:`twolayer.network`;
the estimators in :mod:`twolayer.classifier` and :mod:`twolayer.bayes` call it.
"""
