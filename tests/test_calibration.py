"""Tests of twolayer.report.calibration against a hand-worked example, a brute-force loop and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss

from twolayer.report.calibration import (
    calibration_summary,
    expected_calibration_error,
    reliability_curve,
)


def random_proba(N: int, K: int, seed: int, sharpness: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = sharpness * rng.normal(size=(N, K))
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def brute_force_ece(y: np.ndarray, P: np.ndarray, n_bins: int) -> float:
    """ECE by looping over bins with explicit interval tests (edges[b], edges[b+1]]."""
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for b in range(n_bins):
        inside = [
            n for n in range(P.shape[0]) if (edges[b] < P[n].max() <= edges[b + 1]) or (b == 0 and P[n].max() == 0)
        ]
        if inside:
            conf = np.mean([P[n].max() for n in inside])
            acc = np.mean([float(np.argmax(P[n]) == y[n]) for n in inside])
            total += len(inside) / P.shape[0] * abs(acc - conf)
    return total


def test_hand_worked_example():
    # Four patterns, two classes, two bins (0, .5] and (.5, 1]:
    #   p = (.9,.1) true 0: conf .9 correct   p = (.8,.2) true 1: conf .8 wrong
    #   p = (.4,.6) true 1: conf .6 correct   p = (.5,.5) true 0: conf .5 (bin 0), argmax 0 correct
    # bin 1: conf (.9+.8+.6)/3 = .7667, acc 2/3; bin 0: conf .5, acc 1.
    # ECE = 3/4 |2/3 - .7667| + 1/4 |1 - .5| = .075 + .125 = .2
    P = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    y = np.array([0, 1, 1, 0])
    assert expected_calibration_error(y, P, n_bins=2) == pytest.approx(0.2, abs=1e-12)
    curve = reliability_curve(y, P, n_bins=2)
    np.testing.assert_array_equal(curve.count, [1, 3])
    np.testing.assert_allclose(curve.confidence, [0.5, 2.3 / 3])
    np.testing.assert_allclose(curve.accuracy, [1.0, 2 / 3])


@pytest.mark.parametrize("K, n_bins", [(2, 5), (3, 10), (10, 15)])
def test_ece_matches_brute_force(K, n_bins):
    P = random_proba(300, K, seed=K)
    y = np.random.default_rng(K + 1).integers(0, K, size=300)
    assert expected_calibration_error(y, P, n_bins=n_bins) == pytest.approx(brute_force_ece(y, P, n_bins), abs=1e-12)


@pytest.mark.parametrize("n_bins", [5, 10, 20])
def test_reliability_curve_matches_sklearn(n_bins):
    # sklearn's calibration_curve bins a binary problem's positive-class probability; feeding it
    # "was the prediction correct" against the top-label confidence is the top-label diagram.
    K = 4
    P = random_proba(500, K, seed=7, sharpness=1.5)
    y = np.random.default_rng(8).integers(0, K, size=500)
    curve = reliability_curve(y, P, n_bins=n_bins)
    correct = (np.argmax(P, axis=1) == y).astype(int)
    prob_true, prob_pred = calibration_curve(correct, P.max(axis=1), n_bins=n_bins)
    filled = curve.count > 0
    np.testing.assert_allclose(curve.accuracy[filled], prob_true, rtol=1e-12)
    np.testing.assert_allclose(curve.confidence[filled], prob_pred, rtol=1e-12)
    assert np.all(np.isnan(curve.accuracy[~filled]))
    assert curve.count.sum() == 500


def test_calibrated_probabilities_give_small_ece_and_overconfidence_large():
    # Labels drawn from the predicted probabilities are calibrated by construction; sharpening
    # the same probabilities makes them over-confident.
    rng = np.random.default_rng(3)
    P = random_proba(20000, 3, seed=4, sharpness=1.0)
    y = np.array([rng.choice(3, p=p) for p in P])
    calibrated = expected_calibration_error(y, P, n_bins=10)
    sharp = P**4 / np.sum(P**4, axis=1, keepdims=True)
    assert calibrated < 0.02, calibrated
    assert expected_calibration_error(y, sharp, n_bins=10) > 0.1


def test_summary_matches_sklearn_metrics_and_string_labels():
    K = 3
    P = random_proba(200, K, seed=11)
    classes = np.array(["ant", "bee", "cat"])
    index = np.random.default_rng(12).integers(0, K, size=200)
    y = classes[index]
    summary = calibration_summary(y, P, classes=classes, n_bins=10)
    assert summary["log_loss"] == pytest.approx(log_loss(y, P, labels=classes), rel=1e-12)
    assert summary["accuracy"] == pytest.approx(np.mean(classes[np.argmax(P, axis=1)] == y))
    assert summary["ece"] == pytest.approx(expected_calibration_error(index, P, n_bins=10), abs=1e-15)
    assert summary["ece"] <= summary["mce"] + 1e-15
    assert summary["n"] == 200
    # For two classes the multiclass Brier score is twice scikit-learn's binary one.
    P2 = random_proba(100, 2, seed=13)
    y2 = np.random.default_rng(14).integers(0, 2, size=100)
    assert calibration_summary(y2, P2)["brier"] == pytest.approx(2 * brier_score_loss(y2, P2[:, 1]), rel=1e-12)


def test_classes_order_is_respected():
    # Columns in a non-sorted label order: the summary must follow the columns, not sorted labels.
    P = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert calibration_summary(["b", "a"], P, classes=["b", "a"])["accuracy"] == 1.0
    assert calibration_summary(["a", "b"], P, classes=["b", "a"])["accuracy"] == 0.0


def test_inputs_are_not_modified():
    P = random_proba(50, 3, seed=1)
    y = np.random.default_rng(2).integers(0, 3, size=50)
    P0, y0 = P.copy(), y.copy()
    calibration_summary(y, P)
    reliability_curve(y, P)
    np.testing.assert_array_equal(P, P0)
    np.testing.assert_array_equal(y, y0)


@pytest.mark.parametrize(
    "y, P, kwargs, match",
    [
        ([0, 1], [[0.5, 0.5]], {}, "y_true must have shape"),
        ([0], [[0.7, 0.7]], {}, "sum to one"),
        ([0], [[1.2, -0.2]], {}, "non-negative"),
        ([0], [1.0], {}, "shape \\(N, K\\)"),
        (["a"], [[0.5, 0.5]], {}, "pass classes="),
        ([2], [[0.5, 0.5]], {}, "outside 0..1"),
        (["z"], [[0.5, 0.5]], {"classes": ["a", "b"]}, "not in classes"),
        ([0], [[0.5, 0.5]], {"classes": ["a"]}, "classes must list the 2"),
        (["a"], [[0.5, 0.5]], {"classes": ["a", "a"]}, "classes must be distinct"),
        ([0], [[0.5, 0.5]], {"n_bins": 0}, "n_bins"),
    ],
)
def test_bad_input_is_named(y, P, kwargs, match):
    with pytest.raises(ValueError, match=match):
        calibration_summary(y, P, **kwargs)
