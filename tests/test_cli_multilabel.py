"""Multilabel on the command line: ``train --multilabel --target C1 C2 ...``, then ``predict`` and ``evaluate``.

The figures printed are compared with scikit-learn's metrics on the model's own predictions, and the
refusals must be one line each.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import accuracy_score, f1_score, hamming_loss

from test_cli import assert_one_line_error, run, table_value
from twolayer.io import modelfile

LABELS = ("red", "green", "blue")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A CSV of 5 features and three label columns, written 0/1, true/false and TRUE/False."""
    X, Y = make_multilabel_classification(n_samples=150, n_features=5, n_classes=3, random_state=0)
    path = tmp_path_factory.mktemp("multilabel") / "labels.csv"
    lines = ["f1,f2,f3,f4,f5," + ",".join(LABELS)]
    for x, y in zip(X, Y):
        written = ["true" if y[0] else "false", str(y[1]), "TRUE" if y[2] else "False"]
        lines.append(",".join(str(int(v)) for v in x) + "," + ",".join(written))
    path.write_text("\n".join(lines) + "\n")
    return path, X.astype(float), Y


def train_model(capsys: pytest.CaptureFixture[str], data: Path, out: Path, *more: str) -> str:
    code, stdout, err = run(
        capsys,
        "train",
        data,
        "--multilabel",
        "--target",
        *LABELS,
        "--hidden",
        "8",
        "--epochs",
        "40",
        "--out",
        out,
        *more,
    )
    assert code == 0, err
    return stdout


def test_train_prints_multilabel_figures_and_records_the_label_names(capsys, labelled, tmp_path):
    data, _, Y = labelled
    out = train_model(capsys, data, tmp_path / "m.st")
    assert "3 labels" in out and "sigmoid outputs" in out
    for key in ("test subset accuracy", "test Hamming loss", "train subset accuracy"):
        float(table_value(out, key))
    assert "Per label" in out and all(name in out for name in LABELS)
    model_file = modelfile.read(tmp_path / "m.st")
    assert model_file.info["target_names"] == list(LABELS)
    np.testing.assert_array_equal(model_file.classes, np.arange(3))
    assert model_file.classifier.out_activation_ == "logistic"
    # the held-out rows: a plain seeded split (a label matrix cannot be stratified), of 20 % by default
    assert len(model_file.info["split"]["test_rows"]) == 30
    # the recorded figures are scikit-learn's on the held-out rows
    test = np.asarray(model_file.info["split"]["test_rows"])
    X = np.loadtxt(data, delimiter=",", skiprows=1, usecols=range(5))
    predicted = model_file.model.predict(X[test])
    assert model_file.info["test_accuracy"] == pytest.approx(accuracy_score(Y[test], predicted))
    assert model_file.info["test_hamming_loss"] == pytest.approx(hamming_loss(Y[test], predicted))
    f1 = f1_score(Y[test], predicted, average=None, zero_division=0)
    assert [model_file.info["test_label_f1"][name] for name in LABELS] == pytest.approx(list(f1))


def test_predict_writes_one_column_per_label_and_evaluate_scores_them(capsys, labelled, tmp_path):
    data, _, Y = labelled
    model = tmp_path / "m.st"
    train_model(capsys, data, model, "--quiet")
    code, out, err = run(capsys, "predict", model, data, "--proba")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == [*LABELS, *(f"proba_{name}" for name in LABELS)]
    predicted = np.array([[int(row[name]) for name in LABELS] for row in rows])
    proba = np.array([[float(row[f"proba_{name}"]) for name in LABELS] for row in rows])
    np.testing.assert_array_equal(predicted, (proba > 0.5).astype(int))
    assert np.abs(proba.sum(axis=1) - 1).max() > 0.05  # independent labels, not a softmax

    code, out, err = run(capsys, "evaluate", model, data)
    assert code == 0, err
    assert float(table_value(out, "subset accuracy")) == pytest.approx(accuracy_score(Y, predicted), abs=1e-4)
    assert float(table_value(out, "Hamming loss")) == pytest.approx(hamming_loss(Y, predicted), abs=1e-4)
    f1 = f1_score(Y, predicted, average=None, zero_division=0)
    for name, value in zip(LABELS, f1):
        line = next(line for line in out.splitlines() if f" {name} " in line and "│" in line)
        assert f"{value:.4f}" in line


def test_predict_without_label_columns(capsys, labelled, tmp_path):
    data, _, _ = labelled
    model = tmp_path / "m.st"
    train_model(capsys, data, model, "--quiet")
    features_only = tmp_path / "features.csv"
    lines = data.read_text().splitlines()
    features_only.write_text("\n".join(",".join(line.split(",")[:5]) for line in lines) + "\n")
    code, out, err = run(capsys, "predict", model, features_only)
    assert code == 0, err
    assert out.splitlines()[0] == ",".join(LABELS)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--multilabel", "--target", "red"], ["--multilabel needs two or more --target columns", "red alone"]),
        (["--multilabel"], ["--multilabel needs two or more --target columns", "no --target"]),
        (["--multilabel", "--bayes", "--target", "red", "blue"], ["--multilabel does not apply to --bayes"]),
        (["--target", "red", "blue"], ["several target columns need --multilabel"]),
        (["--multilabel", "--target", "red", "f1"], ["'f1'", "not a label of a multilabel target"]),
        (["--multilabel", "--target", "red", "red"], ["'red' is named twice"]),
        (["--multilabel", "--target", "red", "nope"], ["no column 'nope'"]),
    ],
)
def test_refusals_are_one_line(capsys, labelled, tmp_path, argv, expected):
    data, _, _ = labelled
    code, _, err = run(capsys, "train", data, *argv, "--epochs", "2", "--out", tmp_path / "m.st")
    assert_one_line_error(code, err, *expected)
    assert not (tmp_path / "m.st").exists()


def test_a_single_target_still_trains_a_softmax(capsys, labelled, tmp_path):
    data, _, _ = labelled
    code, out, err = run(capsys, "train", data, "--target", "green", "--epochs", "5", "--out", tmp_path / "m.st")
    assert code == 0, err
    assert "softmax outputs" in out and "2 classes" in out
    assert modelfile.read(tmp_path / "m.st").target_name == "green"


def test_gradcheck_and_derive_cover_the_sigmoid_outputs(capsys):
    code, out, _ = run(capsys, "gradcheck", "--multilabel", "--classes", "2", "--samples", "4")
    assert code == 0 and "sigmoid outputs" in out and "PASSED" in out
    pytest.importorskip("sympy", reason="sympy is the optional 'derive' extra")
    code, out, _ = run(capsys, "derive", "--classes", "2")
    assert code == 0, out
    for name in ("logistic sigmoid derivative", "binary cross-entropy through the sigmoid", "sigmoid output curvature"):
        assert name in out
