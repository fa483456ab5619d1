"""
Newton, scaled conjugate gradients, L-BFGS and Adam
===================================================

Backpropagation gives the gradient; what to do with it is the optimiser's
business. :class:`~twolayer.classifier.TwoLayerClassifier` offers the
minibatch methods of scikit-learn's ``MLPClassifier`` (``adam``, ``sgd``),
its whole-batch quasi-Newton method (``lbfgs``), and three methods that use
the network's exact curvature through the Hessian-vector product of
:mod:`twolayer.curvature` (PRML §5.4.6, Pearlmutter's
:math:`\\mathcal{R}` operator): truncated Newton with a line search
(``newton-cg``) or a trust region (``trust-ncg``), and Møller's scaled
conjugate gradient (``scg``), which takes its step length from the curvature
along the search direction instead of a line search.

This example trains one network on the handwritten digits with four of them,
from the same initial weights, and compares their progress per iteration and
per pass through the data.
"""

# %%
# The problem
# -----------
#
# The 1797 digits, standardised, with 10 hidden units and a weight decay of
# :math:`\alpha = 1`:
#
# .. math:: \tilde E(w) = \sum_n E_n(w) + \frac{\alpha}{2} \lVert w \rVert^2 .
#
# Every run starts from the same draw of :func:`twolayer.network.init_params`,
# handed to the estimator with
# :meth:`TwoLayerClassifier.from_params <twolayer.classifier.TwoLayerClassifier.from_params>`
# and ``warm_start=True``, so that the curves differ by the solver alone.

from __future__ import annotations

from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import OptimizeResult
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from twolayer import TwoLayerClassifier, network
from twolayer.training import second_order

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)
classes = np.unique(y)
N, D = X.shape
n_hidden, alpha, tol = 10, 1.0, 1e-4
init = network.init_params(D, n_hidden, len(classes), random_state=0)
print(f"N = {N}, D = {D}, M = {n_hidden}, K = {len(classes)}: W = {network.n_params(D, n_hidden, len(classes))}")

# %%
# Four solvers
# ------------
#
# The whole-batch solvers stop when the largest component of the gradient of
# :math:`\tilde E / N` falls below ``tol``; Adam (minibatches of 200, step
# 0.01) when an epoch no longer lowers the loss by ``tol``. ``loss_curve_``
# holds :math:`\tilde E / N` after every iteration (every epoch for Adam),
# and a callback records ``t_``, the patterns processed so far, after each.

solvers = {
    "adam": {"learning_rate_init": 0.01},
    "lbfgs": {},
    "newton-cg": {},
    "scg": {},
}
models: dict[str, TwoLayerClassifier] = {}
patterns_seen: dict[str, list[int]] = {}
for solver, extra in solvers.items():
    seen: list[int] = []
    model = TwoLayerClassifier.from_params(
        init,
        classes,
        hyperparameters={
            "n_hidden": n_hidden,
            "solver": solver,
            "alpha": alpha,
            "tol": tol,
            "max_iter": 3000,
            "random_state": 0,
            "warm_start": True,
            "callback": lambda m, seen=seen: seen.append(m.t_),
            **extra,
        },
    )
    model.fit(X, y)
    models[solver], patterns_seen[solver] = model, seen
    print(
        f"{solver:10s} {model.n_iter_:5d} iterations, final loss {model.loss_:.5f}, "
        f"training accuracy {model.score(X, y):.4f}"
    )

# %%
# Per iteration
# -------------
#
# Counted in iterations, Newton's method wins: each of its steps goes
# (approximately) to the minimum of the local quadratic model of the error,
# and it needs the fewest iterations by far; L-BFGS and SCG take more than
# twice as many. For Adam an iteration is an epoch, a pass over every minibatch, and
# the noise of its steps keeps it at a higher loss. But an iteration of
# ``newton-cg`` hides an inner loop of conjugate gradients, each step of it a
# Hessian-vector product.

fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
for solver, model in models.items():
    ax.semilogy(np.arange(1, len(model.loss_curve_) + 1), model.loss_curve_, label=solver)
ax.set_xscale("log")
ax.set_xlabel("iteration (epoch for adam)")
ax.set_ylabel(r"$\tilde E / N$")
ax.set_title("Training loss per iteration")
ax.legend()
plt.show()

# %%
# Per pass through the data
# -------------------------
#
# A fairer clock counts passes through the data. One evaluation of the error
# and its gradient is one pass (forward and backward); so is an epoch of Adam.
# A Hessian-vector product by the :math:`\mathcal{R}` operator is a forward
# and a backward pass of its own beside the ordinary ones, about two passes.
# ``t_`` counts the error evaluations only, so for the curvature methods the
# low-level optimisers of :mod:`twolayer.training.second_order` are run again
# on the same objective (:func:`~twolayer.training.second_order.network_objective`),
# whose callbacks report ``nfev`` and ``nhev``, the evaluations and the
# Hessian-vector products. Their objective is :math:`\tilde E` summed over
# the patterns, hence the factors of :math:`N`; the estimator scales it by
# :math:`1 / N`, and the paths of the two differ slightly.

T = np.eye(len(classes))[np.searchsorted(classes, y)]
fun_and_grad, hessp = second_order.network_objective(X, T, n_hidden=n_hidden, alpha=alpha)
theta0 = np.asarray(network.flatten(init))


def recorder(trace: list[tuple[int, int, float]]) -> Callable[[OptimizeResult], None]:
    """A callback that keeps (evaluations, Hessian-vector products, loss per pattern) after each iteration."""

    def callback(info: OptimizeResult) -> None:
        trace.append((int(info.nfev), int(info.nhev), float(info.fun) / N))

    return callback


traces: dict[str, list[tuple[int, int, float]]] = {"newton-cg": [], "scg": []}
# One BLAS thread, as the estimator itself uses for a problem this small: the products here are
# too small for threads to pay, and one thread keeps the sums, and so the path, reproducible.
with threadpool_limits(limits=1, user_api="blas"):
    newton = second_order.minimize_newton(
        fun_and_grad,
        theta0,
        hessp=hessp,
        method="newton-cg",
        max_iter=3000,
        tol=tol * N,
        callback=recorder(traces["newton-cg"]),
    )
    scg = second_order.scaled_conjugate_gradient(
        fun_and_grad, theta0, hessp=hessp, max_iter=3000, tol=tol * N, callback=recorder(traces["scg"])
    )
for name, result in (("newton-cg", newton), ("scg", scg)):
    print(
        f"{name:10s} {result.nit:5d} iterations, {result.nfev:5d} evaluations, {result.nhev:5d} Hessian-vector "
        f"products, final loss {result.fun / N:.5f} (the estimator: {models[name].loss_:.5f})"
    )

fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
for solver in ("adam", "lbfgs"):
    model = models[solver]
    ax.semilogy(np.asarray(patterns_seen[solver]) / N, model.loss_curve_, label=solver)
for solver, trace in traces.items():
    nfev, nhev, loss = (np.array(column) for column in zip(*trace))
    ax.semilogy(nfev + 2 * nhev, loss, label=f"{solver} (a product counted as 2 passes)")
ax.set_xscale("log")
ax.set_xlabel("passes through the data")
ax.set_ylabel(r"$\tilde E / N$")
ax.set_title("Training loss per unit of work")
ax.legend(fontsize="small")
plt.show()

# %%
# The total bill, in passes:

for solver in ("adam", "lbfgs"):
    print(f"{solver:10s} {patterns_seen[solver][-1] / N:6.0f} passes")
for solver, trace in traces.items():
    nfev, nhev, _ = trace[-1]
    print(f"{solver:10s} {nfev + 2 * nhev:6d} passes ({nfev} evaluations + 2 x {nhev} products)")

# %%
# What to make of it
# ------------------
#
# Measured in work, the exact curvature is no free lunch: truncated Newton
# spends most of its passes inside conjugate gradients, and L-BFGS, which
# builds its curvature from the gradients it has seen anyway, reaches the
# same loss with less. SCG sits between: one Hessian-vector product per
# iteration and no line search. The curvature methods earn their keep
# elsewhere: when an accurate minimum is needed (the Laplace approximation of
# :mod:`twolayer.bayes` sits on it) and on badly conditioned problems, where
# the first-order methods crawl. Adam's strength is the other end: its
# first epochs make the largest progress per pass, and it scales to data
# that do not fit a whole-batch method at all.
