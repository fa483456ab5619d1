"""twolayer.report.evaluation.Evaluation: figures accumulated batch by batch, against the one-shot functions."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support

from twolayer.report.calibration import calibration_summary, reliability_curve
from twolayer.report.evaluation import Evaluation, PerClassScores
from twolayer.report.metrics import classification_metrics, per_class_scores


def random_problem(seed: int, N: int, K: int, sharpness: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Softmax probabilities, text classes in a non-sorted order, and labels drawn uniformly."""
    rng = np.random.default_rng(seed)
    logits = sharpness * rng.normal(size=(N, K))
    P = np.exp(logits - logits.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    classes = np.array([f"class {k}" for k in range(K)])[rng.permutation(K)]
    return P, classes[rng.integers(0, K, size=N)], classes


def batchings(y: np.ndarray, seed: int) -> Iterator[tuple[str, list[np.ndarray]]]:
    """Ways to cut the rows into batches: each a list of row indices per batch."""
    N = y.size
    rows = np.arange(N)
    rng = np.random.default_rng(seed)
    yield "one batch", [rows]
    cuts = np.sort(rng.integers(0, N + 1, size=12))  # repeated cuts give empty batches
    yield "uneven, some empty", np.split(rows, cuts)
    yield "one row each", [rows[i : i + 1] for i in range(N)]
    # Each batch holds one class only, so every batch lacks all the others.
    yield "one class each", [rows[y == c] for c in dict.fromkeys(y.tolist())]


def fed(classes: np.ndarray, n_bins: int, P: np.ndarray, y: np.ndarray, batches: list[np.ndarray]) -> Evaluation:
    evaluation = Evaluation(classes, n_bins)
    for rows in batches:
        evaluation.update(P[rows], y[rows])
    return evaluation


def same_figures(evaluation: Evaluation, P: np.ndarray, y: np.ndarray, classes: np.ndarray, n_bins: int) -> None:
    """Assert ``evaluation`` gives, bit for bit, what the one-shot functions give for all of ``P`` and ``y``."""
    metrics = classification_metrics(P, y, classes)
    assert evaluation.n_samples == metrics.n_samples == y.size
    assert evaluation.accuracy == metrics.accuracy
    assert evaluation.log_loss == metrics.log_loss
    assert evaluation.confusion_matrix.tolist() == metrics.confusion_matrix
    scores, expected = evaluation.per_class_scores(), per_class_scores(y, metrics.predicted, classes)
    for field in ("precision", "recall", "f1", "support"):
        np.testing.assert_array_equal(getattr(scores, field), getattr(expected, field), strict=True)
    assert evaluation.calibration_summary() == calibration_summary(y, P, classes=classes, n_bins=n_bins)
    curve, one_shot = evaluation.reliability_curve(), reliability_curve(y, P, classes=classes, n_bins=n_bins)
    for field in ("bin_edges", "confidence", "accuracy", "count"):
        np.testing.assert_array_equal(getattr(curve, field), getattr(one_shot, field), strict=True)


@pytest.mark.parametrize(
    "seed, N, K, n_bins, dtype",
    [
        (0, 300, 3, 15, np.float64),
        (1, 257, 2, 4, np.float64),
        (2, 400, 10, 30, np.float64),
        (3, 300, 4, 10, np.float32),
    ],
)
def test_any_batching_gives_the_one_shot_figures_bit_for_bit(
    seed: int, N: int, K: int, n_bins: int, dtype: Any
) -> None:
    P, y, classes = random_problem(seed, N, K)
    P = P.astype(dtype)
    for name, batches in batchings(y, seed):
        assert sum(rows.size for rows in batches) == N, name
        same_figures(fed(classes, n_bins, P, y, batches), P, y, classes, n_bins)


def test_hand_worked_example_in_batches() -> None:
    # The example of test_calibration: a confidence of 0.5 on the bin edge, a tie of argmax.
    P = np.array([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    y = np.array([0, 1, 1, 0])
    evaluation = Evaluation(np.array([0, 1]), n_bins=2)
    for rows in ([3], [], [0, 2], [1]):
        evaluation.update(P[rows].reshape(-1, 2), y[rows])
    assert evaluation.calibration_summary()["ece"] == pytest.approx(0.2, abs=1e-15)
    np.testing.assert_array_equal(evaluation.reliability_curve().count, [1, 3])
    same_figures(evaluation, P, y, np.array([0, 1]), 2)


def test_figures_against_scikit_learn_and_sums_written_out() -> None:
    P, y, classes = random_problem(5, 500, 4, sharpness=1.5)
    evaluation = fed(classes, 10, P, y, np.array_split(np.arange(500), 7))
    index = np.array([list(classes).index(label) for label in y])
    order = np.argsort(classes)  # scikit-learn takes the columns of proba in the sorted order of the labels
    assert evaluation.log_loss == pytest.approx(log_loss(y, P[:, order], labels=classes[order]), rel=1e-12)
    predicted = classes[np.argmax(P, axis=1)]
    np.testing.assert_array_equal(evaluation.confusion_matrix, confusion_matrix(y, predicted, labels=classes))
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=classes, zero_division=0)
    scores = evaluation.per_class_scores()
    np.testing.assert_allclose(scores.precision, precision, rtol=1e-15)
    np.testing.assert_allclose(scores.recall, recall, rtol=1e-15)
    np.testing.assert_allclose(scores.f1, f1, rtol=1e-15)
    np.testing.assert_array_equal(scores.support, support)
    summary = evaluation.calibration_summary()
    brier = math.fsum(math.fsum((P[n, k] - (k == index[n])) ** 2 for k in range(4)) for n in range(500)) / 500
    assert summary["brier"] == pytest.approx(brier, rel=1e-14)
    assert summary["log_loss"] == pytest.approx(
        -math.fsum(math.log(P[n, index[n]]) for n in range(500)) / 500, rel=1e-14
    )
    curve = evaluation.reliability_curve()
    confidence, edges = P.max(axis=1), np.linspace(0, 1, 11)
    for b in range(10):
        inside = (edges[b] < confidence) & (confidence <= edges[b + 1])
        assert curve.count[b] == inside.sum()
        if inside.any():
            assert curve.confidence[b] == pytest.approx(math.fsum(confidence[inside]) / inside.sum(), rel=1e-15)
            assert curve.accuracy[b] == np.mean(predicted[inside] == y[inside])


def test_the_order_of_the_rows_changes_no_bit() -> None:
    # Exact sums: a float64 running sum would change in its last bits when the rows are shuffled.
    P, y, classes = random_problem(6, 5000, 5)
    evaluation = fed(classes, 15, P, y, [np.arange(5000)])
    shuffled = fed(classes, 15, P, y, np.array_split(np.random.default_rng(7).permutation(5000), 3))
    assert shuffled.calibration_summary() == evaluation.calibration_summary()
    assert shuffled.log_loss == evaluation.log_loss
    np.testing.assert_array_equal(shuffled.reliability_curve().confidence, evaluation.reliability_curve().confidence)


def test_the_mean_of_one_row_repeated_is_that_row() -> None:
    # More rows than one internal chunk; the mean is rounded once, so it is the row's own value.
    row = np.array([[0.1, 0.7, 0.2]])
    N = 3 * 2**16 + 5
    evaluation = Evaluation(np.array(["x", "y", "z"]), n_bins=10)
    evaluation.update(np.repeat(row, N, axis=0), np.full(N, "z"))
    evaluation.update(row, np.array(["z"]))
    assert evaluation.n_samples == N + 1
    term = float(-np.log(np.array([0.2]))[0])
    assert evaluation.log_loss == term
    summary = evaluation.calibration_summary()
    assert summary["log_loss"] == term
    assert summary["brier"] == float(np.sum((row - [0, 0, 1]) ** 2))
    assert summary["accuracy"] == 0.0
    assert evaluation.reliability_curve().confidence[6] == 0.7
    assert summary["ece"] == summary["mce"] == 0.7


def test_log_loss_clipping() -> None:
    # A confident mistake and a confident hit. ClassificationMetrics.log_loss clips to [eps, 1 - eps]
    # as scikit-learn does (eps of the dtype); the calibration summary clips at the smallest normal float.
    P = np.array([[1.0, 0.0], [1.0, 0.0]])
    y = np.array(["a", "b"])
    for dtype in (np.float64, np.float32):
        eps = float(np.finfo(dtype).eps)
        evaluation = Evaluation(np.array(["a", "b"]), n_bins=5)
        evaluation.update(P[:1].astype(dtype), y[:1])
        evaluation.update(P.astype(dtype), y)
        expected = (-2 * math.log(1 - eps) - math.log(eps)) / 3
        assert evaluation.log_loss == pytest.approx(expected, rel=1e-15)
        assert evaluation.log_loss == pytest.approx(log_loss(np.r_[y[:1], y], np.r_[P[:1], P].astype(dtype)), rel=1e-6)
        tiny = float(np.finfo(np.float64).tiny)
        assert evaluation.calibration_summary()["log_loss"] == pytest.approx(-math.log(tiny) / 3, rel=1e-15)


def test_empty_batches_count_nothing_and_no_patterns_is_refused() -> None:
    evaluation = Evaluation(np.array([3, 1, 2]))
    evaluation.update(np.empty((0, 3)), np.empty(0, dtype=int))
    assert evaluation.n_samples == 0
    for figure in ("accuracy", "log_loss", "confusion_matrix"):
        with pytest.raises(ValueError, match="no patterns to evaluate"):
            getattr(evaluation, figure)
    for method in (evaluation.per_class_scores, evaluation.reliability_curve, evaluation.calibration_summary):
        with pytest.raises(ValueError, match="no patterns to evaluate"):
            method()
    evaluation.update(np.array([[0.2, 0.5, 0.3]]), np.array([1]))
    assert evaluation.accuracy == 1.0
    assert evaluation.confusion_matrix.tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]


@pytest.mark.parametrize(
    "proba, y, match",
    [
        ([[0.5, 0.5]], ["z"], r"y holds labels that are not in classes: \['z'\]"),
        ([[0.5, 0.5]], [1], r"y holds labels that are not in classes: \[1\]"),
        ([[0.5, 0.5, 0.0]], ["a"], "proba has 3 columns, but there are 2 classes"),
        ([[0.5, 0.5]], ["a", "b"], r"y must have shape \(1,\) to match proba"),
        ([[0.5, 0.6]], ["a"], "sum to one"),
        ([[np.nan, 0.5]], ["a"], "finite, non-negative"),
        ([0.5, 0.5], ["a"], r"shape \(N, K\)"),
    ],
)
def test_a_bad_batch_is_refused_and_changes_nothing(proba: Any, y: Any, match: str) -> None:
    evaluation = Evaluation(np.array(["a", "b"]), n_bins=4)
    evaluation.update(np.array([[0.7, 0.3], [0.4, 0.6]]), np.array(["a", "a"]))
    before = evaluation.calibration_summary(), evaluation.log_loss, evaluation.confusion_matrix
    with pytest.raises(ValueError, match=match):
        evaluation.update(proba, y)
    assert (evaluation.calibration_summary(), evaluation.log_loss) == before[:2]
    np.testing.assert_array_equal(evaluation.confusion_matrix, before[2])
    assert evaluation.n_samples == 2


@pytest.mark.parametrize(
    "classes, n_bins, match",
    [
        (["a", "b", "a"], 10, "classes must be distinct; 'a' is listed twice"),
        (["a"], 10, "at least two classes, got 1"),
        ([["a", "b"]], 10, "one-dimensional"),
        (["a", "b"], 0, "n_bins must be a positive integer, got 0"),
        (["a", "b"], 2.5, "n_bins must be a positive integer"),
    ],
)
def test_bad_classes_or_bins_are_named(classes: Any, n_bins: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Evaluation(classes, n_bins)


def test_inputs_are_neither_kept_nor_modified() -> None:
    P, y, classes = random_problem(8, 50, 3)
    P0, y0, classes0 = P.copy(), y.copy(), classes.copy()
    evaluation = Evaluation(classes, n_bins=5)
    evaluation.update(P, y)
    np.testing.assert_array_equal(P, P0)
    np.testing.assert_array_equal(y, y0)
    classes[0] = "changed"
    np.testing.assert_array_equal(evaluation.classes, classes0)
    evaluation.confusion_matrix[0, 0] = 10**6  # a copy
    assert evaluation.confusion_matrix.sum() == 50


def state_bytes(obj: object) -> int:
    """The bytes of the arrays an object holds, through the objects it holds."""
    total = 0
    for value in vars(obj).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            total += state_bytes(value)
    return total


def test_memory_does_not_grow_with_the_rows() -> None:
    P, y, classes = random_problem(9, 20_000, 4)
    few, many = Evaluation(classes, n_bins=20), Evaluation(classes, n_bins=20)
    few.update(P[:10], y[:10])
    many.update(P, y)
    assert state_bytes(many) == state_bytes(few) < 4096


def test_per_class_scores_from_a_confusion_matrix() -> None:
    # Class 0: 3 right, 1 taken for 1; class 1: 2 right, 2 taken for 0; class 2 never true nor predicted.
    scores = PerClassScores.from_confusion([[3, 1, 0], [2, 2, 0], [0, 0, 0]])
    np.testing.assert_allclose(scores.precision, [3 / 5, 2 / 3, 0])
    np.testing.assert_allclose(scores.recall, [3 / 4, 2 / 4, 0])
    np.testing.assert_allclose(scores.f1, [6 / 9, 4 / 7, 0])
    np.testing.assert_array_equal(scores.support, [4, 4, 0])
    with pytest.raises(ValueError, match="square"):
        PerClassScores.from_confusion([[1, 2]])


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    N=st.integers(1, 60),
    K=st.integers(2, 5),
    n_bins=st.integers(1, 12),
    sharpness=st.sampled_from([0.1, 2.0, 50.0]),
)
def test_batching_never_changes_a_bit(data: st.DataObject, N: int, K: int, n_bins: int, sharpness: float) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1))
    P, y, classes = random_problem(seed, N, K, sharpness)
    cuts = sorted(data.draw(st.lists(st.integers(0, N), max_size=8)))
    same_figures(fed(classes, n_bins, P, y, np.split(np.arange(N), cuts)), P, y, classes, n_bins)
