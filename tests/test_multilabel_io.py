"""Multilabel targets read from tables, split, and scored: several target columns become an (N, K) 0/1 matrix."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score, hamming_loss, log_loss, precision_recall_fscore_support

from twolayer.errors import DataError
from twolayer.io.datasets import load_dataset
from twolayer.io.tables import read_table
from twolayer.report import metrics


def write(tmp_path, text, name="t.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_several_target_columns_become_a_label_matrix(tmp_path):
    path = write(tmp_path, "a,b,red,blue\n1,2,1,false\n2,1,true,1\n0,3,False,TRUE\n")
    table = read_table(path, targets=["blue", "red"])
    np.testing.assert_array_equal(table.y, [[0, 1], [1, 1], [1, 0]])
    assert table.y.dtype == np.int64
    assert table.target_names == ("blue", "red") and table.target_name is None
    assert table.feature_names == ("a", "b")
    assert [c.role for c in table.columns] == ["feature", "feature", "target", "target"]
    assert table.target_note == "target columns: 'blue', 'red' (one 0/1 label each)"
    data = load_dataset(str(path), targets=["red", "blue"])
    assert data.target_names == ("red", "blue") and data.y.shape == (3, 2)


def test_parquet_booleans_and_integers(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "r": [True, False], "s": [0, 1]}), path)
    table = read_table(path, targets=["r", "s"])
    np.testing.assert_array_equal(table.y, [[1, 0], [0, 1]])
    pq.write_table(pa.table({"a": [1.0, 2.0], "r": [True, False], "s": [0, 2]}), path)
    with pytest.raises(DataError, match=r"row 2, column 's'.*2 is not a label of a multilabel target"):
        read_table(path, targets=["r", "s"])


@pytest.mark.parametrize(
    ("text", "targets", "message"),
    [
        ("a,r,s\n1,0,yes\n", ["r", "s"], r"line 2, column 's'.*'yes' is not a label"),
        ("a,r,s\n1,0,1\n", ["r", "r"], "named twice"),
        ("a,r,s\n1,0,1\n", ["r", "x"], "no column 'x'"),
    ],
)
def test_bad_label_columns_are_named(tmp_path, text, targets, message):
    with pytest.raises(DataError, match=message):
        read_table(write(tmp_path, text), targets=targets)


def test_targets_and_target_together_or_a_builtin_are_refused(tmp_path):
    path = write(tmp_path, "a,r,s\n1,0,1\n")
    with pytest.raises(ValueError, match="not both"):
        read_table(path, target="r", targets=["r", "s"])
    with pytest.raises(DataError, match="built-in dataset with one target"):
        load_dataset("iris", targets=["a", "b"])
    np.savez(tmp_path / "d.npz", X=np.ones((2, 2)), y=np.array([0, 1]))
    with pytest.raises(DataError, match="--target applies to tables with named columns"):
        read_table(tmp_path / "d.npz", targets=["a", "b"])


def test_a_models_label_columns_are_read_by_name(tmp_path):
    path = write(tmp_path, "s,a,r,b\n1,5,0,6\n0,7,1,8\n")
    table = read_table(path, model_features=["a", "b"], targets=["r", "s"])
    np.testing.assert_array_equal(table.X, [[5, 6], [7, 8]])
    np.testing.assert_array_equal(table.y, [[0, 1], [1, 0]])
    with pytest.raises(DataError, match="is a feature of the model, not a target"):
        read_table(path, model_features=["a", "b"], targets=["r", "a"])


def test_split_of_a_label_matrix_is_seeded_and_plain():
    Y = np.random.default_rng(0).integers(0, 2, size=(50, 3))
    train, test = metrics.stratified_split(Y, 0.2, 3, source="s")
    assert test.size == 10 and np.array_equal(np.sort(np.concatenate([train, test])), np.arange(50))
    again = metrics.stratified_split(Y, 0.2, 3, source="s")
    np.testing.assert_array_equal(again[1], test)
    with pytest.raises(DataError, match="no samples on one side"):
        metrics.stratified_split(Y[:1], 0.5, 0, source="s")


def test_multilabel_metrics_match_scikit_learn():
    rng = np.random.default_rng(1)
    Y = rng.integers(0, 2, size=(40, 4))
    Y[:, 3] = 0  # a label that never applies: precision, recall and F1 are 0, not NaN
    proba = rng.random((40, 4))
    predicted = (proba > 0.5).astype(int)
    m = metrics.multilabel_metrics(proba, Y)
    assert m.accuracy == pytest.approx(accuracy_score(Y, predicted))
    assert metrics.accuracy(Y, predicted) == pytest.approx(accuracy_score(Y, predicted))  # subset, not per entry
    assert m.hamming_loss == pytest.approx(hamming_loss(Y, predicted))
    expected = sum(log_loss(Y[:, k], proba[:, k], labels=[0, 1]) for k in range(4))
    assert m.log_loss == pytest.approx(expected)
    p, r, f, s = precision_recall_fscore_support(Y, predicted, average=None, zero_division=0)
    for ours, theirs in zip((m.scores.precision, m.scores.recall, m.scores.f1, m.scores.support), (p, r, f, s)):
        np.testing.assert_allclose(ours, theirs)
    from sklearn.metrics import multilabel_confusion_matrix

    np.testing.assert_array_equal(m.confusion_matrix, multilabel_confusion_matrix(Y, predicted))
    with pytest.raises(ValueError, match="labels 0 and 1"):
        metrics.multilabel_metrics(proba, Y * 2)
    with pytest.raises(ValueError, match="one shape"):
        metrics.hamming_loss(Y, predicted[:, :2])
