"""Classification metrics and the stratified split, against sums written out pattern by pattern."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twolayer.errors import DataError
from twolayer.report.metrics import accuracy, classification_metrics, per_class_scores, stratified_split


def random_predictions(seed: int, n: int = 40, k: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.ones(k), size=n)
    classes = np.array(["a", "b", "c"][:k])
    y = classes[rng.integers(0, k, size=n)]
    return proba, y, classes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_metrics_pattern_by_pattern(seed: int) -> None:
    proba, y, classes = random_predictions(seed)
    got = classification_metrics(proba, y, classes)
    index = {c: k for k, c in enumerate(classes)}
    predicted = [classes[int(np.argmax(p))] for p in proba]
    assert list(got.predicted) == predicted
    assert got.n_samples == len(y)
    assert got.accuracy == sum(p == t for p, t in zip(predicted, y)) / len(y)
    log_loss = -sum(math.log(p[index[t]]) for p, t in zip(proba, y)) / len(y)
    assert got.log_loss == pytest.approx(log_loss, rel=1e-12)
    confusion = [[0] * len(classes) for _ in classes]
    for t, p in zip(y, predicted):
        confusion[index[t]][index[p]] += 1
    assert got.confusion_matrix == confusion


def test_per_class_scores_by_counting() -> None:
    proba, y, classes = random_predictions(3)
    predicted = classification_metrics(proba, y, classes).predicted
    scores = per_class_scores(y, predicted, classes)
    for k, c in enumerate(classes):
        true_positive = np.sum((predicted == c) & (y == c))
        precision = true_positive / max(np.sum(predicted == c), 1)
        recall = true_positive / max(np.sum(y == c), 1)
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        assert scores.precision[k] == pytest.approx(precision)
        assert scores.recall[k] == pytest.approx(recall)
        assert scores.f1[k] == pytest.approx(f1)
        assert scores.support[k] == np.sum(y == c)


def test_classification_metrics_follow_the_columns_of_unsorted_classes() -> None:
    # Columns labelled "b" then "a": the true class's probability is read from its own column
    # (scikit-learn's log_loss would read the columns as sorted labels, and warn).
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    got = classification_metrics(proba, np.array(["b", "a", "a"]), np.array(["b", "a"]))
    assert got.log_loss == pytest.approx(-(math.log(0.9) + math.log(0.7) + math.log(0.4)) / 3, rel=1e-15)
    assert got.accuracy == 2 / 3
    assert got.confusion_matrix == [[1, 0], [1, 1]]
    assert list(got.predicted) == ["b", "a", "b"]


def test_classification_metrics_clip_as_scikit_learn_for_the_dtype() -> None:
    proba = np.array([[1.0, 0.0], [0.0, 1.0]])
    for dtype in (np.float64, np.float32):
        eps = float(np.finfo(dtype).eps)
        got = classification_metrics(proba.astype(dtype), np.array([0, 0]), np.array([0, 1]))
        assert got.log_loss == pytest.approx(-(math.log(1 - eps) + math.log(eps)) / 2, rel=1e-15)


def test_labels_outside_the_classes_are_named() -> None:
    proba, y, classes = random_predictions(4, n=5)
    y[2] = "z"
    with pytest.raises(ValueError, match=r"y holds labels that are not in classes: \['z'\]"):
        classification_metrics(proba, y, classes)
    # scikit-learn's scores left such rows out of the counts, silently.
    with pytest.raises(ValueError, match=r"predicted holds labels that are not in classes: \['z'\]"):
        per_class_scores(classes[:1].repeat(5), y, classes)
    with pytest.raises(ValueError, match=r"y holds labels that are not in classes: \['z'\]"):
        per_class_scores(y, classes[:1].repeat(5), classes)
    with pytest.raises(ValueError, match="one shape"):
        per_class_scores(y, y[:4], classes)


def test_accuracy() -> None:
    assert accuracy(np.array([1, 2, 3, 4]), np.array([1, 0, 3, 0])) == 0.5


def test_stratified_split() -> None:
    y = np.repeat([0, 1, 2], [30, 20, 10])
    train, test = stratified_split(y, 0.2, 0, source="s")
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(60))
    assert test.size == math.ceil(0.2 * 60)
    assert list(np.bincount(y[test])) == [6, 4, 2]  # each class in proportion
    again = stratified_split(y, 0.2, 0, source="s")
    assert np.array_equal(again[0], train)
    assert not np.array_equal(stratified_split(y, 0.2, 1, source="s")[1], test)


def test_stratified_split_refuses_what_it_cannot_split() -> None:
    with pytest.raises(DataError, match="s: class '7' has a single sample"):
        stratified_split(np.array([0, 0, 7, 1, 1]), 0.5, 0, source="s")
    with pytest.raises(DataError, match=r"--test-size 0\.01 leaves 1 samples held out, fewer than the 3 classes of s"):
        stratified_split(np.repeat([0, 1, 2], 10), 0.01, 0, source="s", option="--test-size")
    with pytest.raises(DataError, match=r"test_size 0\.99 leaves 0 samples left for training"):
        stratified_split(np.repeat([0, 1], 10), 0.99, 0, source="s")
