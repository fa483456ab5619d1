"""
The Hessian's eigenvalues during training
=========================================

The Hessian :math:`\\nabla\\nabla \\tilde E` of a network's error says how the
error curves around the current weights: a positive eigenvalue is a direction
in which the error rises on both sides, a negative one a direction in which it
falls. At a minimum every eigenvalue is at least zero; far from one, many are
negative, and gradient descent is walking over a landscape of saddles.

This example trains a small network on the handwritten digits and computes the
**exact** Hessian at several points on the way with
:func:`twolayer.curvature.hessian` (PRML §5.4.5: closed-form blocks, no
finite differences), then every eigenvalue with :func:`numpy.linalg.eigvalsh`,
and draws the spectra with :func:`twolayer.report.plots.draw_spectrum`.
"""

# %%
# A network small enough for the whole spectrum
# ---------------------------------------------
#
# 8 hidden units between 64 pixels and 10 classes make
# :math:`W = 65 \cdot 8 + 9 \cdot 10` weights: a Hessian of :math:`W \times W`
# that takes a fraction of a second to build and to diagonalise. The pixels
# are standardised (mean 0, variance 1), so that the tanh units start in their
# linear range.

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from twolayer import TwoLayerClassifier, curvature, network
from twolayer.network import Params
from twolayer.report.plots import draw_spectrum
from twolayer.report.spectrum import known_eigenvectors

X, y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)
T = np.eye(10)[y]  # 1-of-K targets
n_hidden, alpha = 8, 1e-2
print(f"N = {X.shape[0]} patterns, W = {network.n_params(X.shape[1], n_hidden, 10)} weights")

# %%
# Snapshots of the weights
# ------------------------
#
# :class:`~twolayer.classifier.TwoLayerClassifier` calls ``callback(model)``
# after every epoch, with ``params_`` holding that epoch's weights; the
# callback below copies them at a few epochs and stops Adam after the last one
# (returning ``True`` ends training without a convergence warning). Then the
# same model, given ``solver="trust-ncg"`` and ``warm_start=True``, runs
# truncated Newton from Adam's weights down to a true minimum of
#
# .. math:: \tilde E(w) = E(w) + \frac{\alpha}{2} \lVert w \rVert^2 .
#
# The starting point is a draw of :func:`twolayer.network.init_params`, the
# initialisation the classifier uses (Glorot's uniform rule).

snapshot_epochs = (1, 10, 30, 100)
snapshots: dict[str, Params] = {
    "initial weights": network.init_params(X.shape[1], n_hidden, 10, random_state=0),
}


def keep_snapshots(model: TwoLayerClassifier) -> bool:
    epoch = len(model.loss_curve_)
    if epoch in snapshot_epochs:
        snapshots[f"Adam, epoch {epoch}"] = Params(*(np.array(p) for p in model.params_))
    return epoch >= snapshot_epochs[-1]


model = TwoLayerClassifier(
    n_hidden=n_hidden, alpha=alpha, learning_rate_init=0.01, max_iter=1000, random_state=0, callback=keep_snapshots
)
model.fit(X, y)
print(f"Adam: {model.n_iter_} epochs, loss {model.loss_:.4f}")

model.set_params(solver="trust-ncg", warm_start=True, max_iter=200, tol=1e-7, callback=None)
model.fit(X, y)
snapshots["minimum (trust-ncg)"] = Params(*(np.array(p) for p in model.params_))
print(f"then trust-ncg: {model.n_iter_} Newton iterations, loss {model.loss_:.6f}")

# %%
# The spectra
# -----------
#
# ``curvature.hessian(..., alpha=alpha)`` is the Hessian of :math:`\tilde E`:
# that of the summed cross-entropy plus :math:`\alpha` on the diagonal of the
# weights (the biases are not decayed). The eigenvalues span many decades of
# both signs, so ``draw_spectrum`` bins them on a symmetric-log axis: linear
# near zero, logarithmic beyond.

hessians = {name: curvature.hessian(params, X, T, alpha=alpha) for name, params in snapshots.items()}
# One BLAS thread: a matrix of a few hundred rows is too small for threads to pay (the estimators
# limit themselves alike), and two threads on a busy pair of cores can be many times slower.
with threadpool_limits(limits=1, user_api="blas"):
    spectra = {name: np.linalg.eigvalsh(H) for name, H in hessians.items()}
largest = max(float(np.max(np.abs(values))) for values in spectra.values())
linthresh = 1e-6 * largest  # one linear region for every panel, so that they compare
zero = 1e-10 * largest  # below this in magnitude an eigenvalue is zero but for rounding


def below_zero(values: np.ndarray) -> int:
    """How many eigenvalues are negative beyond rounding."""
    return int(np.sum(values < -zero))


fig, axes = plt.subplots(2, 3, figsize=(13, 7.5), layout="constrained", sharex=True)
for ax, (name, values) in zip(axes.flat, spectra.items()):
    draw_spectrum(ax, values, linthresh=linthresh, title=name, n_bins=50)
    ax.set_title(f"{name}\n{below_zero(values)} of {values.size} below zero", fontsize="medium")
for ax in axes[0]:
    ax.set_xlabel("")
plt.show()

# %%
# What changes
# ------------
#
# At the initial weights the spectrum is nearly symmetric: about as many
# directions curve down as up. Training does three things at once, which the
# summary below follows:
#
# * the negative eigenvalues shrink in size and number; at the minimum found
#   by Newton's method none is left but the rounding-level values of the
#   flat directions (a minimum of :math:`\tilde E` has a positive
#   semi-definite Hessian);
# * the largest eigenvalue falls as the outputs saturate: the output
#   curvature :math:`\Lambda_n = \operatorname{diag}(y_n) - y_n y_n^\top`
#   vanishes for a pattern classified with confidence;
# * a cluster stays at zero: the softmax is unchanged when the same vector is
#   added to every output unit's incoming weights, which leaves :math:`M + 1`
#   directions flat in the data term. The decay lifts :math:`M` of them to
#   exactly :math:`\alpha`; the shift of the output biases, which are not
#   decayed, stays at zero.

names = list(spectra)
negatives = [below_zero(spectra[n]) for n in names]
most_negative = [float(spectra[n].min()) for n in names]
top = [float(spectra[n].max()) for n in names]
for name, count, low, high in zip(names, negatives, most_negative, top):
    print(f"{name:22s} largest {high:9.3f}   smallest {low:10.3g}   {count:4d} below zero")

position = np.arange(len(names))
labels = [n.replace(", ", "\n").replace(" (", "\n(") for n in names]
# The most negative eigenvalue only where there is one beyond rounding (NaN leaves a gap).
negative_ends = [-low if count else np.nan for low, count in zip(most_negative, negatives)]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.9), layout="constrained")
left.semilogy(position, top, marker="o", label="largest eigenvalue")
left.semilogy(position, np.abs(negative_ends), marker="s", label="|most negative eigenvalue|")
left.set_xticks(position, labels, fontsize="small")
left.set_ylabel("eigenvalue magnitude")
left.set_title("The ends of the spectrum")
left.legend(fontsize="small")
right.bar(position, negatives, color="tab:grey")
right.set_xticks(position, labels, fontsize="small")
right.set_ylabel("count")
right.set_title("Eigenvalues below zero")
plt.show()

# %%
# The directions known in advance
# -------------------------------
#
# :func:`twolayer.report.spectrum.known_eigenvectors` builds those
# :math:`M + 1` directions: a common shift of ``b2`` (eigenvalue
# :math:`\alpha_{b2} = 0` here) and the same vector added to every column of
# ``W2``, one per hidden unit (eigenvalue :math:`\alpha`). They are
# eigenvectors of the Hessian at *every* point, whatever the weights and the
# data, as the residual :math:`\lVert H q - \lambda q \rVert` shows; so the
# spectrum holds the value :math:`\alpha` at least :math:`M` times, and zero
# at least once.

known = known_eigenvectors(X.shape[1], n_hidden, 10, alpha_W2=alpha, alpha_b2=0.0)
for name, H in hessians.items():
    residual = np.linalg.norm(H @ known.vectors - known.vectors * known.values, axis=0).max()
    norm = float(np.max(np.abs(spectra[name])))  # the 2-norm of a symmetric matrix
    print(f"{name:22s} max ||H q - lambda q|| = {residual:.1e}   (||H|| = {norm:.0f})")

at_minimum = spectra["minimum (trust-ncg)"]
at_alpha = int(np.sum(np.isclose(at_minimum, alpha, rtol=1e-9, atol=0)))
print(f"eigenvalues within 1e-9 of alpha = {alpha} at the minimum: {at_alpha} (M = {n_hidden})")
print(f"smallest eigenvalue there: {at_minimum.min():.1e} (the shift of b2: zero up to rounding)")

# %%
# More than :math:`M` of them: a few pixels of the digits are blank in every
# image (after standardising, an input that is always zero). The weights
# from such an input never touch the error, so the data term is flat along
# each of them too and the decay alone curves it, at :math:`\alpha` again:
# :math:`M` more directions per blank pixel.

blank = int(np.sum(X.std(axis=0) == 0))
print(f"{blank} blank pixels: M + {blank} M = {n_hidden + blank * n_hidden} directions at alpha")
