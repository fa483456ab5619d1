"""
Calibration on the digits: MAP against moderated
================================================

A classifier is *calibrated* when its probabilities can be taken at their
word: of the patterns it classifies with confidence 0.8, four in five are
right. A reliability diagram shows it at a glance: sort the held-out patterns
into bins by their confidence (the largest predicted probability), and plot
each bin's accuracy against its mean confidence. A calibrated classifier lies
on the diagonal; below it is over-confident, above it under-confident.

This example draws the diagrams of three predictions on a held-out third of
the handwritten digits, with :func:`twolayer.report.calibration.reliability_curve`
and :func:`twolayer.report.plots.draw_reliability_diagram`: a plain
:class:`~twolayer.classifier.TwoLayerClassifier`, and the MAP and the
moderated predictions of a :class:`~twolayer.bayes.BayesianTwoLayerClassifier`.
"""

# %%
# Data
# ----
#
# A stratified third of the 1797 digits is held out; the pixels are
# standardised on the training part only, so that nothing of the held-out
# third leaks into training.

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from twolayer import BayesianTwoLayerClassifier, TwoLayerClassifier
from twolayer.report.calibration import calibration_summary, reliability_curve
from twolayer.report.plots import draw_reliability_diagram

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=1 / 3, stratify=y, random_state=0)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
print(f"{len(X_train)} training digits, {len(X_test)} held out")

# %%
# Three predictions
# -----------------
#
# * a plain network, 8 hidden units, trained by L-BFGS with a weight decay of
#   1 on the weights (the Bayesian network's starting :math:`\alpha`);
# * the Bayesian network of the same size, its :math:`\alpha` re-estimated
#   from the evidence, predicting with its MAP weights (``predict_proba_map``);
# * the same network's moderated predictive (``predict_proba``): the softmax
#   averaged over the Laplace posterior of the weights, by 500 Monte Carlo
#   draws of the output activations.

plain = TwoLayerClassifier(n_hidden=8, solver="lbfgs", alpha=1.0, max_iter=1000, random_state=0)
plain.fit(X_train, y_train)
# The whole network's posterior under one alpha (structure="full"): the default, the last layer's, is
# far less under-confident here (BENCHMARKS.md, "Calibration").
bayes = BayesianTwoLayerClassifier(n_hidden=8, structure="full", n_restarts=0, n_samples=500, random_state=0)
bayes.fit(X_train, y_train)
print(f"evidence: alpha = {bayes.alpha_[0]:.3g} after {bayes.n_cycles_} cycles, gamma = {bayes.gamma_:.1f}")

probabilities = {
    "plain network (alpha = 1)": plain.predict_proba(X_test),
    "Bayesian, MAP": bayes.predict_proba_map(X_test),
    "Bayesian, moderated": bayes.predict_proba(X_test),
}

# %%
# The reliability diagrams
# ------------------------
#
# ``reliability_curve`` sorts the confidences into ten equal bins and returns
# each bin's mean confidence, accuracy and count; ``draw_reliability_diagram``
# draws the curves, and below them (``counts_ax``) how many patterns fall in
# each bin, on a log scale: most digits are classified with a confidence near
# one, and the bins to the left hold a few patterns each.

curves = {name: reliability_curve(y_test, proba, classes=bayes.classes_) for name, proba in probabilities.items()}
fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 7.5), sharex=True, height_ratios=[3, 1], layout="constrained")
draw_reliability_diagram(top, curves, counts_ax=bottom)
top.set_xlabel("")
top.set_title(f"Reliability on {len(X_test)} held-out digits")
plt.show()

# %%
# The numbers
# -----------
#
# :func:`~twolayer.report.calibration.calibration_summary` gives the accuracy,
# the log-loss :math:`-\frac1N \sum_n \ln p_{n, t_n}`, the Brier score, and
# the expected calibration error
# :math:`\mathrm{ECE} = \sum_b \frac{n_b}{N} \lvert \mathrm{acc}_b - \mathrm{conf}_b \rvert`
# over 15 bins, with the largest gap of any bin (MCE).

print(f"{'':28s} {'accuracy':>9s} {'log-loss':>9s} {'Brier':>7s} {'ECE':>7s} {'MCE':>7s}")
for name, proba in probabilities.items():
    s = calibration_summary(y_test, proba, classes=bayes.classes_)
    print(f"{name:28s} {s['accuracy']:9.4f} {s['log_loss']:9.4f} {s['brier']:7.4f} {s['ece']:7.4f} {s['mce']:7.4f}")

# %%
# What the diagram says
# ---------------------
#
# The plain network sits close to the diagonal: with a weight decay of 1 a
# network of this size is not badly over-confident on the digits. The
# Bayesian MAP network, under the (stronger) prior the evidence chose, leans
# a little above it. The moderated predictive lies well *above* the diagonal:
# it is right more often than it claims, that is under-confident, and its
# log-loss is the larger for it. This is a known limit of the Laplace approximation on nearly separable
# data (``BENCHMARKS.md``, section *Calibration*, measures it over five
# splits): most training digits are fitted with outputs near 0 and 1, where
# the output curvature :math:`\Lambda_n = \operatorname{diag}(y_n) - y_n y_n^\top`
# vanishes, so those patterns hardly constrain the Gaussian posterior. It
# comes out broader than the true posterior, and averaging the softmax over
# it blurs every prediction.
#
# The mean confidence against the accuracy makes the same point in two
# numbers per prediction:

for name, proba in probabilities.items():
    confidence = float(np.mean(np.max(proba, axis=1)))
    accuracy = float(np.mean(bayes.classes_[np.argmax(proba, axis=1)] == y_test))
    print(f"{name:28s} mean confidence {confidence:.4f}, accuracy {accuracy:.4f}")
