"""
Checking a gradient by central differences
==========================================

Backpropagation is easy to get almost right. A wrong sign, a dropped factor or
a sum over the wrong index still gives a vector of the right shape, and
training with it often still lowers the error, only more slowly, so nothing
looks broken. The remedy (PRML §5.3.3) is to compare every derivative with a
central difference,

.. math::

    \\frac{\\partial E}{\\partial w_i} \\approx
    \\frac{E(w + \\epsilon e_i) - E(w - \\epsilon e_i)}{2 \\epsilon},

whose error is :math:`O(\\epsilon^2)`.

This example writes backpropagation out by hand, as one would in a homework,
and checks it with :func:`twolayer.teaching.gradcheck.check_gradient`: once
as derived correctly, once with the homework's slip in the output error, and
once with the derivative of tanh left out. The check passes the first and
catches the other two, entry by entry.
"""

# %%
# Backpropagation by hand
# -----------------------
#
# For one pattern the network computes :math:`a_j = \sum_i w^{(1)}_{ji} x_i`,
# :math:`z_j = \tanh(a_j)`, :math:`a_k = \sum_j w^{(2)}_{kj} z_j` and
# :math:`y_k = \operatorname{softmax}_k(a)`, and the error is
# :math:`E = -\sum_k t_k \ln y_k`. Backpropagation needs two kinds of
# :math:`\delta`:
#
# * the output errors :math:`\delta_k = \partial E / \partial a_k = y_k - t_k`
#   (PRML eq. 5.18, which uses :math:`\sum_l t_l = 1`);
# * the hidden errors
#   :math:`\delta_j = h'(a_j) \sum_k w^{(2)}_{kj} \delta_k` with
#   :math:`h'(a_j) = 1 - z_j^2` for tanh (PRML eq. 5.56);
#
# and then every derivative is a :math:`\delta` times the input of its weight,
# :math:`\partial E / \partial w_{ji} = \delta_j z_i` (eq. 5.53). The function
# below does exactly this, with rows as patterns, in the weight layout of
# :class:`twolayer.network.Params`. Two switches plant the two mistakes:
#
# ``homework_slip``
#     the penultimate line of the homework this project started from wrote
#     :math:`\partial E / \partial a_k = \sum_l t_l y_l - t_k` in place of
#     :math:`y_k \sum_l t_l - t_k`. With 1-of-K targets the sum picks out the
#     output of the *true* class, the same for every :math:`k`;
# ``drop_tanh_prime``
#     forgets the factor :math:`h'(a_j)` in the hidden errors, as if the
#     hidden units were linear.

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from twolayer import network
from twolayer.network import Params
from twolayer.teaching.gradcheck import BLOCKS, GradCheckReport, check_gradient, numerical_gradient, random_problem


def hand_gradient(
    params: Params,
    X: np.ndarray,
    T: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    activation: str = "tanh",
    homework_slip: bool = False,
    drop_tanh_prime: bool = False,
) -> Params:
    """dE/dw of the summed cross-entropy by backpropagation, written out for tanh and softmax."""
    assert activation == "tanh" and sample_weight is None  # all this example needs
    W1, b1, W2, b2 = params
    z = np.tanh(X @ W1 + b1)  # (N, M)  z_j = h(a_j)
    a2 = z @ W2 + b2  # (N, K)  a_k
    y = np.exp(a2 - a2.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)  # (N, K)  y_k = softmax_k(a)
    if homework_slip:
        delta2 = np.sum(T * y, axis=1, keepdims=True) - T  # sum_l t_l y_l - t_k: the slip
    else:
        delta2 = y - T  # delta_k = y_k - t_k
    back = delta2 @ W2.T  # (N, M)  sum_k w_kj delta_k
    delta1 = back if drop_tanh_prime else (1.0 - z**2) * back  # delta_j = h'(a_j) sum_k w_kj delta_k
    return Params(X.T @ delta1, delta1.sum(axis=0), z.T @ delta2, delta2.sum(axis=0))


# %%
# A small random problem
# ----------------------
#
# :func:`~twolayer.teaching.gradcheck.random_problem` draws a network (here
# :math:`D = 4` inputs, :math:`M = 5` hidden units, :math:`K = 3` classes) and
# 10 patterns with 1-of-K targets. The network is small enough to check every
# one of its :math:`W = (D + 1) M + (M + 1) K` derivatives.

params, X, T = random_problem(4, 5, 3, 10, random_state=0)
print(f"E(w) = {network.error(params, X, T):.6f} over {X.shape[0]} patterns, W = {network.flatten(params).size}")

# %%
# The correct gradient passes
# ---------------------------
#
# ``check_gradient`` takes the gradient function to check as ``gradient_fn``.
# It reports, for each block of weights, the largest relative error
# :math:`|a - n| / \max(|a| + |n|, \text{floor})` between the analytic value :math:`a` and the
# numerical one :math:`n` (the floor keeps derivatives near zero from being
# judged on their rounding noise alone), and checks three random directional derivatives
# :math:`\nabla E \cdot v` as well. The tolerance is :math:`10^{-7}`: central
# differences in double precision agree with a correct gradient to about
# :math:`10^{-9}`.

variants = {
    "as derived": {},
    "homework slip": {"homework_slip": True},
    "tanh' dropped": {"drop_tanh_prime": True},
}
reports: dict[str, GradCheckReport] = {}
for name, switches in variants.items():
    reports[name] = check_gradient(
        params, X, T, random_state=0, gradient_fn=lambda *a, s=switches, **k: hand_gradient(*a, **k, **s)
    )

print(reports["as derived"])

# %%
# The homework's slip is caught
# -----------------------------
#
# The slip changes every output error, so every derivative of every block is
# wrong, and the directional derivatives disagree too. Yet the slipped
# gradient has the right shape, the right order of magnitude and often the
# right sign: nothing about it looks wrong until it is compared with the
# error it claims to be the derivative of. (With :math:`c` the true class,
# :math:`\sum_l t_l y_l - t_k = y_c - t_k`, which equals :math:`y_k - t_k`
# only for :math:`k = c`.)

print(reports["homework slip"].table(max_mismatches=3))

# %%
# So is the dropped factor
# ------------------------
#
# Leaving out :math:`h'(a_j)` only touches the first layer: the second
# layer's derivatives :math:`\delta_k z_j` never use it, and pass. The table
# points at the block where the mistake is.

print(reports["tanh' dropped"].table(max_mismatches=3))

# %%
# Every entry at a glance
# -----------------------
#
# The relative error of each derivative, for each version of the gradient,
# coloured by block. The correct gradient sits well below the tolerance (the
# dashed line), at the level of rounding; each mistake lifts the entries it
# touches by many orders of magnitude, to between a percent and one.

colours = dict(zip(BLOCKS, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
for column, report in enumerate(reports.values()):
    for b, block in enumerate(report.blocks):
        errors = np.array([max(e.rel_error, 1e-17) for e in block.entries])  # an exact 0 would leave the log axis
        jitter = np.linspace(-0.3, 0.3, errors.size) + 0.02 * (b - 1.5)
        ax.scatter(column + jitter, errors, s=14, color=colours[block.name], label=block.name if column == 0 else None)
ax.axhline(reports["as derived"].rtol, color="black", linestyle="--", linewidth=1, label="tolerance")
ax.set_yscale("log")
ax.set_xticks(range(len(reports)), [f"{name}\n({'passed' if r.passed else 'FAILED'})" for name, r in reports.items()])
ax.set_ylabel("relative error, analytic vs. numerical")
ax.set_title("Gradient check of three hand-written backpropagations")
ax.legend(loc="center right", fontsize="small")
plt.show()

# %%
# Choosing the step
# -----------------
#
# Why :math:`\epsilon = 10^{-6}`? The central difference has a truncation
# error of order :math:`\epsilon^2` and a rounding error of order
# :math:`u / \epsilon`, :math:`u \approx 10^{-16}` being the unit round-off of
# double precision. The first wins for large steps, the second for small ones,
# and the best step lies between, near :math:`u^{1/3}`. Measured on the
# correct gradient with :func:`~twolayer.teaching.gradcheck.numerical_gradient`:

exact = network.flatten(network.gradient(params, X, T))
steps = np.logspace(-12, -1, 23)
worst = []
for eps in steps:
    numeric = network.flatten(numerical_gradient(params, X, T, eps=eps))
    worst.append(np.max(np.abs(numeric - exact) / np.maximum(np.abs(numeric) + np.abs(exact), 1e-12)))

fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
ax.loglog(steps, worst, marker="o", markersize=3)
ax.axvline(1e-6, color="grey", linestyle=":", label=r"the default $\epsilon = 10^{-6}$")
ax.set_xlabel(r"step $\epsilon$")
ax.set_ylabel("largest relative error")
ax.set_title("Truncation error against rounding error")
ax.legend(fontsize="small")
plt.show()
print(f"best step {steps[int(np.argmin(worst))]:.1e}: largest relative error {min(worst):.1e}")
