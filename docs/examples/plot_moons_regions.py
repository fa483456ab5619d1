"""
Decision regions on two moons
=============================

The smallest interesting problem for a two-layer network: two interleaved half
moons, which no straight line separates. A logistic regression (a network with
no hidden layer) can only cut the plane in two with a line; a handful of tanh
hidden units bend that line into the S the data need.

This example trains :class:`~twolayer.classifier.TwoLayerClassifier` with
three sizes of hidden layer, draws the decision regions each one learns with
:func:`twolayer.report.plots.draw_decision_regions`, and follows the training
loss and the held-out accuracy epoch by epoch (``loss_curve_`` and
``validation_scores_``).
"""

# %%
# The data
# --------
#
# 400 points from :func:`sklearn.datasets.make_moons` with some noise, half
# for training and half held out. The inputs are already of order one, so they
# need no scaling (tanh units saturate when their inputs are large, and the
# gradient through a saturated unit vanishes).

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split

from twolayer import TwoLayerClassifier
from twolayer.report.plots import draw_decision_regions, draw_learning_curves

X, y = make_moons(n_samples=400, noise=0.25, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, stratify=y, random_state=0)
print(f"{len(X_train)} training points, {len(X_test)} held out, classes {np.unique(y)}")

# %%
# Three networks
# --------------
#
# With :math:`M` hidden units the network computes
# :math:`y = \operatorname{softmax}(\tanh(x W_1 + b_1) W_2 + b_2)`: each hidden
# unit contributes one soft step, :math:`\tanh(w_j^\top x + w_{j0})`, across a
# line of the plane, and the output layer adds those steps up. One unit gives
# one line; a few already make the S-shaped boundary. Training stops when the
# loss has not improved by ``tol`` for ``n_iter_no_change`` epochs. ``fit`` with
# ``X_val``/``y_val`` records the accuracy on the held-out half after every
# epoch in ``validation_scores_``, beside the training loss
# :math:`\tilde E / N` in ``loss_curve_``.

sizes = (1, 6, 32)
models: dict[int, TwoLayerClassifier] = {}
for n_hidden in sizes:
    model = TwoLayerClassifier(
        n_hidden=n_hidden,
        solver="adam",
        learning_rate_init=0.02,
        batch_size=32,
        max_iter=2000,
        n_iter_no_change=20,  # stop once 20 epochs in a row lower the loss by less than tol
        alpha=1e-4,
        random_state=0,
    )
    model.fit(X_train, y_train, X_val=X_test, y_val=y_test)
    models[n_hidden] = model
    print(
        f"M = {n_hidden:2d}: {model.n_iter_} epochs, final training loss {model.loss_:.4f}, "
        f"held-out accuracy {model.score(X_test, y_test):.3f}"
    )

# %%
# The decision regions
# --------------------
#
# Each panel shades the plane by the class the network predicts and draws the
# training points on top. ``draw_decision_regions`` takes the model as a plain
# function from points to class indices, so any classifier would do.

fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 4.0), layout="constrained")
for ax, (n_hidden, model) in zip(axes, models.items()):
    draw_decision_regions(
        ax,
        lambda P, m=model: np.searchsorted(m.classes_, m.predict(P)),
        X_train,
        np.searchsorted(model.classes_, y_train),
        model.classes_,
        feature_names=("$x_1$", "$x_2$"),
    )
    ax.set_title(f"M = {n_hidden}: held-out accuracy {model.score(X_test, y_test):.2f}")
plt.show()

# %%
# Learning curves
# ---------------
#
# :func:`~twolayer.report.plots.draw_learning_curves` draws the loss on the
# left scale and the held-out accuracy on the right one. The single unit's
# loss levels off quickly at the best a straight line can do. The larger
# networks first fall to about that same level and linger there: a plateau
# of the error surface, near a saddle point, where the hidden units still
# work together as one line. Then the units take on different roles, the
# boundary bends, and the loss falls again; the held-out accuracy gains a few
# points as it does. Adam's steps follow noisy minibatch gradients, hence
# the jitter (and the occasional spike) of the curves.

fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.6), layout="constrained")
for ax, (n_hidden, model) in zip(axes, models.items()):
    draw_learning_curves(ax, model.loss_curve_, model.validation_scores_)
    ax.set_title(f"M = {n_hidden}")
plt.show()

# %%
# One number per curve, for the record: the epoch of the best held-out
# accuracy and the accuracy there.

for n_hidden, model in models.items():
    scores = np.asarray(model.validation_scores_)
    print(f"M = {n_hidden:2d}: best held-out accuracy {scores.max():.3f} at epoch {int(scores.argmax()) + 1}")
