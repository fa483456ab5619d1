"""
The evidence chooses the weight decay
=====================================

How strongly should a network's weights be pulled towards zero? The usual
answer is to hold out data and try several strengths. The evidence framework
(PRML §5.7.2, after MacKay 1992) answers from the training data alone: read
the weight decay :math:`\\alpha` as the precision of a Gaussian prior
:math:`p(w \\mid \\alpha) = \\mathcal N(w \\mid 0, \\alpha^{-1} I)`, and choose
the :math:`\\alpha` under which the data are most probable,

.. math::

    \\ln p(\\mathcal D \\mid \\alpha) \\simeq -\\tilde E(w_{\\text{MAP}})
    - \\frac12 \\ln |A| + \\frac{W}{2} \\ln \\alpha + \\text{const},

with :math:`A = H + \\alpha I` the curvature of
:math:`\\tilde E = E + \\frac{\\alpha}{2} \\lVert w \\rVert^2` at the MAP
weights (the Laplace approximation, PRML eq. 5.175).

This example computes the evidence over a grid of :math:`\\alpha` on two
moons, with :func:`twolayer.bayes.map_estimate` and
:func:`twolayer.bayes.posterior_from_curvature`, and sets it beside the error
on a large held-out set that the evidence never sees.
"""

# %%
# Data and network
# ----------------
#
# 200 noisy moons to train on, 2000 more from the same distribution to judge
# by; 8 tanh hidden units. With so few points the weight decay matters: too
# little and the boundary chases the noise, too much and it cannot bend.

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons

from twolayer import BayesianTwoLayerClassifier, curvature, network
from twolayer.bayes import LaplacePosterior, MapFit, map_estimate, posterior_from_curvature

X, y = make_moons(n_samples=200, noise=0.3, random_state=0)
X_test, y_test = make_moons(n_samples=2000, noise=0.3, random_state=1)
T = np.eye(2)[y]  # 1-of-K targets
n_hidden = 8
W = network.n_params(2, n_hidden, 2)
print(f"{len(X)} training points, {len(X_test)} held out; W = {W} weights")

# %%
# The evidence at each alpha
# --------------------------
#
# For each :math:`\alpha` of the grid:
#
# 1. :func:`~twolayer.bayes.map_estimate` minimises :math:`\tilde E` by
#    L-BFGS. The error surface has several minima, so it starts from three
#    initial weight vectors (the same three for every :math:`\alpha`);
# 2. :func:`twolayer.curvature.gauss_newton` gives the curvature :math:`H` of
#    the data error there (the Gauss–Newton matrix, positive semi-definite);
# 3. :func:`~twolayer.bayes.posterior_from_curvature` forms
#    :math:`A = H + \alpha I`, factorises it and returns the
#    :class:`~twolayer.bayes.LaplacePosterior` with its ``log_evidence`` and
#    :math:`\gamma = \sum_i \lambda_i / (\lambda_i + \alpha)`, the number of
#    well-determined parameters (PRML eq. 5.179);
#
# and of the three fits the one of largest evidence is kept (the evidence
# compares basins as well as values of :math:`\alpha`). The held-out error
# is that of the MAP network's most probable class.

alphas = np.logspace(-2, 2, 17)  # four per decade, the grid of alpha_search="grid"
inits = [network.init_params(2, n_hidden, 2, random_state=seed) for seed in range(3)]


def laplace_fit(alpha: float) -> tuple[MapFit, LaplacePosterior]:
    """The MAP fit of largest evidence among the starts, and its Laplace posterior."""
    best: tuple[MapFit, LaplacePosterior] | None = None
    for init in inits:
        fit = map_estimate(X, T, alpha, init=init)
        G = curvature.gauss_newton(fit.params, X, T)
        posterior = posterior_from_curvature(fit.params, G, alpha, fit.data_error, hessian="gauss_newton")
        if best is None or posterior.log_evidence > best[1].log_evidence:
            best = (fit, posterior)
    assert best is not None
    return best


log_evidence, gamma, test_error, test_log_loss = [], [], [], []
for alpha in alphas:
    fit, posterior = laplace_fit(alpha)
    proba = network.forward(fit.params, X_test)
    log_evidence.append(posterior.log_evidence)
    gamma.append(posterior.gamma)
    test_error.append(float(np.mean(np.argmax(proba, axis=1) != y_test)))
    test_log_loss.append(float(-np.mean(np.log(proba[np.arange(len(y_test)), y_test]))))
    print(
        f"alpha {alpha:8.3g}: ln p(D | alpha) {posterior.log_evidence:8.2f}, gamma {posterior.gamma:5.1f} of {W}, "
        f"held-out error {test_error[-1]:.3f}"
    )

# %%
# MacKay's re-estimation
# ----------------------
#
# A grid is not the only way to the top. Setting the derivative of the
# evidence to zero gives :math:`\alpha = \gamma / \lVert w_{\text{MAP}} \rVert^2`
# (PRML eq. 5.178), which suggests alternating: train at :math:`\alpha`,
# re-estimate :math:`\alpha`, train again. That is what
# :class:`~twolayer.bayes.BayesianTwoLayerClassifier` does by default
# (``alpha_search="fixed_point"``); with the whole network's posterior and one
# :math:`\alpha` (``structure="full"``), as in the grid above, its choice is
# marked in the figure.

bayes = BayesianTwoLayerClassifier(
    n_hidden=n_hidden, structure="full", n_restarts=1, method="probit", random_state=0
).fit(X, y)
print(
    f"fixed point: alpha = {bayes.alpha_[0]:.3g} after {bayes.n_cycles_} cycles, "
    f"ln p(D | alpha) = {bayes.log_evidence_:.2f}, gamma = {bayes.gamma_:.1f}, "
    f"held-out error {np.mean(bayes.predict(X_test) != y_test):.3f}"
)

# %%
# Evidence against held-out error
# -------------------------------
#
# The top panel is the evidence; the middle one what the held-out data say of
# the same networks; the bottom one :math:`\gamma`. Small :math:`\alpha`
# leaves nearly every weight determined by the data and the network overfits;
# large :math:`\alpha` leaves only a few, and the network is too stiff to
# bend around the moons. The evidence peaks between, close to where the
# held-out error and log-loss are least, though it never looked at those
# data: the Occam factor :math:`-\frac12 \ln |A| + \frac W2 \ln \alpha`
# charges the fit for every well-determined parameter.

best = int(np.argmax(log_evidence))
held_out_best = int(np.argmin(test_log_loss))
fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True, layout="constrained")
top.semilogx(alphas, log_evidence, marker="o")
top.axvline(alphas[best], color="tab:blue", linestyle=":", label=f"largest evidence, alpha = {alphas[best]:.3g}")
top.axvline(bayes.alpha_[0], color="tab:red", linestyle="--", label=f"fixed point, alpha = {bayes.alpha_[0]:.3g}")
top.set_ylabel(r"$\ln p(\mathcal{D} \mid \alpha)$")
top.set_title("Log evidence of the training data")
top.legend(fontsize="small")

middle.semilogx(alphas, test_error, marker="o", color="tab:orange", label="error rate")
middle.set_ylabel("held-out error rate", color="tab:orange")
twin = middle.twinx()
twin.semilogx(alphas, test_log_loss, marker="s", markersize=4, color="tab:green", label="log-loss")
twin.set_ylabel("held-out log-loss", color="tab:green")
middle.axvline(alphas[best], color="tab:blue", linestyle=":")
middle.axvline(alphas[held_out_best], color="tab:green", linestyle="-.", linewidth=1)
middle.set_title(f"On {len(X_test)} held-out points (least log-loss at alpha = {alphas[held_out_best]:.3g})")

bottom.semilogx(alphas, gamma, marker="o", color="tab:purple")
bottom.axhline(W, color="grey", linestyle="--", linewidth=1, label=f"W = {W}")
bottom.set_ylabel(r"$\gamma$")
bottom.set_xlabel(r"prior precision (weight decay) $\alpha$")
bottom.set_title("Well-determined parameters")
bottom.legend(fontsize="small")
plt.show()

# %%
# The two answers, side by side:

print(f"largest evidence:    alpha = {alphas[best]:.3g}, held-out log-loss {test_log_loss[best]:.4f}")
print(f"least held-out loss: alpha = {alphas[held_out_best]:.3g}, held-out log-loss {test_log_loss[held_out_best]:.4f}")
