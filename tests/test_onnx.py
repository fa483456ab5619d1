"""ONNX export (twolayer.to_onnx, the skl2onnx converter, ``twolayer export``), checked by running the graphs in onnxruntime."""

from __future__ import annotations

import csv
import dataclasses
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pyarrow.parquet as pq
import pytest
import skl2onnx
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import twolayer
from twolayer import BayesianTwoLayerClassifier, TwoLayerClassifier, cli
from twolayer.activations import ACTIVATIONS
from twolayer.io.modelfile import read
from twolayer.io.onnx import ONNX_ACTIVATIONS, register_skl2onnx, to_onnx

TOL32 = 1e-6  # onnxruntime in float32 against predict_proba
TOL64 = 1e-12


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    return X, y


def session(model: Any) -> onnxruntime.InferenceSession:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])


def run_graph(model: Any, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The graph's label and probabilities, checking that its outputs are named as skl2onnx names a classifier's."""
    s = session(model)
    assert [o.name for o in s.get_outputs()] == ["label", "probabilities"]
    label, proba = s.run(None, feeds)
    return np.asarray(label), np.asarray(proba)


def fit_quietly(estimator: Any, X: np.ndarray, y: np.ndarray) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs are all a graph needs
        return estimator.fit(X, y)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err


# --------------------------------------------------------------------------
# Networks and pipelines
# --------------------------------------------------------------------------


@pytest.mark.parametrize("activation", sorted(ONNX_ACTIVATIONS))
def test_every_activation_exports(digits: tuple[np.ndarray, np.ndarray], activation: str) -> None:
    X, y = digits
    assert set(ONNX_ACTIVATIONS) == set(ACTIVATIONS)  # every built-in activation has an ONNX form
    X32 = X.astype(np.float32)
    clf = fit_quietly(TwoLayerClassifier(n_hidden=16, activation=activation, max_iter=20, random_state=0), X32, y)
    label, proba = run_graph(to_onnx(clf), {"X": X32})
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, clf.predict_proba(X32), rtol=0, atol=TOL32)
    np.testing.assert_array_equal(label, clf.predict(X32))
    # in float64, a float64 network's graph is its predict_proba to rounding
    clf64 = fit_quietly(TwoLayerClassifier(n_hidden=16, activation=activation, max_iter=5, random_state=0), X, y)
    _, proba = run_graph(to_onnx(clf64, dtype="float64"), {"X": X})
    np.testing.assert_allclose(proba, clf64.predict_proba(X), rtol=0, atol=TOL64)


def test_model_file_from_train_exports_with_its_scaler(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = digits
    path = tmp_path / "m.safetensors"
    code, _, err = run_cli(capsys, "train", "digits", "--epochs", "5", "--hidden", "16", "--quiet", "--out", path)
    assert code == 0, err
    model_file = read(path)
    model = model_file.model  # a Pipeline of the StandardScaler and the network
    assert model_file.encoding is None and len(model.steps) == 2
    X32 = X.astype(np.float32)
    expected = model.predict_proba(X32)
    for exported in (to_onnx(model), to_onnx(model_file), to_onnx(path)):
        label, proba = run_graph(exported, {"X": X32})
        np.testing.assert_allclose(proba, expected, rtol=0, atol=TOL32)
        np.testing.assert_array_equal(label, model.predict(X32))
    # the scaler is in the graph: without it the probabilities would be the bare network's on raw pixels
    assert np.abs(model[-1].predict_proba(X32) - expected).max() > 1e-2


@pytest.fixture(scope="module")
def bayesian(digits: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    X, y = digits
    return {
        structure: fit_quietly(
            make_pipeline(
                StandardScaler(),
                BayesianTwoLayerClassifier(
                    n_hidden=8, structure=structure, method="probit", max_cycles=3, random_state=0
                ),
            ),
            X,
            y,
        )
        for structure in ("full", "diagonal", "last_layer")
    }


def test_bayesian_network_exports_its_map_network(
    bayesian: dict[str, Any], digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = digits
    model = bayesian["full"]
    map_proba = model[-1].predict_proba_map(model[0].transform(X))
    label, proba = run_graph(to_onnx(model), {"X": X.astype(np.float32)})
    np.testing.assert_allclose(proba, map_proba, rtol=0, atol=TOL32)
    np.testing.assert_array_equal(label, model.classes_[np.argmax(map_proba, axis=1)])
    # not the moderated predictive, which the model predicts with
    assert np.abs(model.predict_proba(X) - map_proba).max() > 1e-3


@pytest.mark.parametrize("structure", ["full", "diagonal", "last_layer"])
def test_bayesian_probit_predictive_exports(
    bayesian: dict[str, Any], digits: tuple[np.ndarray, np.ndarray], structure: str
) -> None:
    X, _ = digits
    model = bayesian[structure]
    X = X[::4]  # the graph's covariances cost K W^2 per row
    expected = model.predict_proba(X)  # method="probit"
    label, proba = run_graph(to_onnx(model, predictive="probit"), {"X": X.astype(np.float32)})
    np.testing.assert_allclose(proba, expected, rtol=0, atol=TOL32)
    np.testing.assert_array_equal(label, model.predict(X))
    _, proba = run_graph(to_onnx(model, predictive="probit", dtype=np.float64), {"X": X})
    np.testing.assert_allclose(proba, expected, rtol=0, atol=TOL64)


def test_skl2onnx_converts_a_pipeline_with_other_steps(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    X32 = X.astype(np.float32)
    names = np.array([f"digit {v}" for v in y])  # string labels, as skl2onnx gives them back
    pipe = fit_quietly(
        make_pipeline(StandardScaler(), PCA(20, random_state=0), TwoLayerClassifier(n_hidden=16, max_iter=10)),
        X32,
        names,
    )
    expected = pipe.predict_proba(X32)
    register_skl2onnx()
    register_skl2onnx()  # a second registration changes nothing
    converted = skl2onnx.to_onnx(pipe, X32[:1], options={TwoLayerClassifier: {"zipmap": False}})
    label, proba = run_graph(converted, {session(converted).get_inputs()[0].name: X32})
    np.testing.assert_allclose(proba, expected, rtol=0, atol=TOL32)
    np.testing.assert_array_equal(label, pipe.predict(X32))
    # skl2onnx's default ZipMap: a dict of probabilities by class per row
    s = session(skl2onnx.to_onnx(pipe, X32[:1]))
    _, rows = s.run(None, {s.get_inputs()[0].name: X32[:5]})
    np.testing.assert_allclose([[row[c] for c in pipe.classes_] for row in rows], expected[:5], atol=TOL32)
    # twolayer.to_onnx goes through the converter for such a pipeline
    label, proba = run_graph(twolayer.to_onnx(pipe), {"X": X32})
    np.testing.assert_allclose(proba, expected, rtol=0, atol=TOL32)


def test_skl2onnx_converts_a_bayesian_pipeline_with_the_probit_option(
    bayesian: dict[str, Any], digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = digits
    model = bayesian["diagonal"]
    register_skl2onnx()
    options = {BayesianTwoLayerClassifier: {"zipmap": False, "predictive": "probit"}}
    converted = skl2onnx.to_onnx(model, X[:1].astype(np.float64), options=options)
    _, proba = run_graph(converted, {session(converted).get_inputs()[0].name: X})
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=TOL64)


def test_what_does_not_export_is_refused(
    digits: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = digits
    tanh = ACTIVATIONS["tanh"]
    monkeypatch.setitem(ACTIVATIONS, "tanh_copy", tanh._replace(name="tanh_copy"))
    clf = fit_quietly(TwoLayerClassifier(n_hidden=3, activation="tanh_copy", max_iter=2), X[:100], y[:100])
    with pytest.raises(ValueError, match="activation 'tanh_copy' has no ONNX form; the activations that export"):
        to_onnx(clf)
    clf = fit_quietly(TwoLayerClassifier(n_hidden=3, max_iter=2), X[:100], y[:100].astype(np.float64))
    label, _ = run_graph(to_onnx(clf), {"X": X[:100].astype(np.float32)})  # whole numbers: int64 labels
    assert label.dtype == np.int64 and (label == clf.predict(X[:100])).all()
    clf.classes_ = clf.classes_ + 0.5  # labels that are neither integers nor strings
    with pytest.raises(ValueError, match="only integer or string class labels"):
        to_onnx(clf)
    clf = fit_quietly(TwoLayerClassifier(n_hidden=3, max_iter=2), X[:100], y[:100])
    with pytest.raises(ValueError, match="predictive='probit' needs a BayesianTwoLayerClassifier"):
        to_onnx(clf, predictive="probit")
    with pytest.raises(ValueError, match="predictive must be one of map, probit"):
        to_onnx(clf, predictive="mc")
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        to_onnx(clf, dtype=np.int64)
    with pytest.raises(NotFittedError):
        to_onnx(TwoLayerClassifier())
    with pytest.raises(TypeError, match="to_onnx takes a fitted TwoLayerClassifier"):
        to_onnx(make_pipeline(StandardScaler(), PCA(2)).fit(X))


# --------------------------------------------------------------------------
# A model file trained from a table with text columns and missing cells
# --------------------------------------------------------------------------


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


HEADER = ["id", "size", "colour", "weight", "shape", "class"]


def training_rows() -> list[list[str]]:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(150):
        colour, shape = str(rng.choice(["red", "green", "blue"])), str(rng.choice(["round", "square"]))
        size = rng.normal(3 if colour == "red" else 5, 1)
        weight = rng.normal(10, 2) + 3 * (shape == "round")
        label = "yes" if size + (weight - 10) / 2 + (colour == "blue") > 4.5 else "no"
        row = [f"r{i}", f"{size:.3f}", colour, f"{weight:.2f}", shape, label]
        # empty and NA cells in numeric and text columns
        if i % 7 == 0:
            row[1] = ""
        if i % 11 == 0:
            row[2] = ""
        if i % 13 == 0:
            row[3] = "NA"
        if i % 17 == 0:
            row[4] = "NA"
        rows.append(row)
    return rows


# New rows: an unseen category, empty and NA cells in each kind of column, and complete rows.
NEW_ROWS = [
    ["a", "4.1", "purple", "9", "round"],
    ["b", "", "", "", "square"],
    ["c", "2.5", "red", "12.5", ""],
    ["d", "6", "blue", "NA", "NA"],
    ["e", "3.3", "green", "8.25", "round"],
]


def feeds(rows: list[list[str]], dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """One (N, 1) input per column: floats (NaN for a missing cell) and the text cells as written."""

    def number(cell: str) -> float:
        return float(cell) if cell not in ("", "NA") else np.nan

    columns = list(zip(*rows))
    return {
        "size": np.array([[number(c)] for c in columns[1]], dtype=dtype),
        "colour": np.array([[c] for c in columns[2]], dtype=object),
        "weight": np.array([[number(c)] for c in columns[3]], dtype=dtype),
        "shape": np.array([[c] for c in columns[4]], dtype=object),
    }


def trained_from_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], missing: str
) -> tuple[Path, Callable[[list[list[str]]], dict[str, list[Any]]]]:
    """A model trained through the command line on a CSV, and a function giving predict --proba's columns on rows."""
    data = write_csv(tmp_path / "data.csv", HEADER, training_rows())
    model = tmp_path / "m.safetensors"
    argv = ["train", data, "--missing", missing, "--id", "id", "--epochs", "30", "--hidden", "5", "--quiet"]
    code, _, err = run_cli(capsys, *argv, "--out", model)
    assert code == 0, err

    def predicted(rows: list[list[str]]) -> dict[str, list[Any]]:
        new = write_csv(tmp_path / "new.csv", HEADER[:-1], rows)
        out = tmp_path / "predictions.parquet"
        code, _, err = run_cli(capsys, "predict", model, new, "--proba", "--id", "id", "--out", out)
        assert code == 0, err
        return pq.read_table(out).to_pydict()

    return model, predicted


def test_model_file_with_text_columns_and_missing_cells(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, predicted = trained_from_table(tmp_path, capsys, "median")
    encoding = read(model).encoding
    assert encoding is not None and encoding.kinds == ("numeric", "text", "numeric", "text")
    expected = predicted(NEW_ROWS)
    proba = np.column_stack([expected["proba_no"], expected["proba_yes"]])
    graph = to_onnx(model)
    assert [(i.name, i.type, i.shape) for i in session(graph).get_inputs()] == [
        ("size", "tensor(float)", [None, 1]),
        ("colour", "tensor(string)", [None, 1]),
        ("weight", "tensor(float)", [None, 1]),
        ("shape", "tensor(string)", [None, 1]),
    ]
    label, got = run_graph(graph, feeds(NEW_ROWS))
    np.testing.assert_allclose(got, proba, rtol=0, atol=TOL32)
    assert label.tolist() == expected["prediction"]
    _, got = run_graph(to_onnx(model, dtype="float64"), feeds(NEW_ROWS, np.float64))
    np.testing.assert_allclose(got, proba, rtol=0, atol=TOL32)  # the CLI's network computes in float32
    # the fills and the one-hot matter: a filled cell is not zero, an unseen category is not a known one
    changed = feeds(NEW_ROWS)
    changed["size"][1, 0] = 0.0
    changed["colour"][0, 0] = "red"
    _, other = run_graph(graph, changed)
    assert np.abs(other[:2] - proba[:2]).min() > 1e-4


def test_a_model_that_fills_nothing_gives_nan_for_a_missing_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, predicted = trained_from_table(tmp_path, capsys, "drop")
    complete = [0, 4]  # predict refuses the others: a missing cell, under --missing drop
    expected = predicted([NEW_ROWS[i] for i in complete])
    _, proba = run_graph(to_onnx(model), feeds(NEW_ROWS))
    np.testing.assert_allclose(
        proba[complete], np.column_stack([expected["proba_no"], expected["proba_yes"]]), rtol=0, atol=TOL32
    )
    assert np.isnan(proba[[1, 2, 3]]).all()


def test_a_column_named_as_an_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, _ = trained_from_table(tmp_path, capsys, "median")
    model_file = read(model)
    assert model_file.encoding is not None
    names = ("probabilities", *model_file.encoding.names[1:])
    renamed = dataclasses.replace(model_file, encoding=dataclasses.replace(model_file.encoding, names=names))
    with pytest.raises(ValueError, match="feature column 'probabilities' would be an input named as an output"):
        to_onnx(renamed)


# --------------------------------------------------------------------------
# twolayer export
# --------------------------------------------------------------------------


def test_export_writes_a_graph_onnxruntime_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], digits: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = digits
    model = tmp_path / "m.safetensors"
    code, _, err = run_cli(capsys, "train", "digits", "--epochs", "3", "--hidden", "8", "--quiet", "--out", model)
    assert code == 0, err
    out = tmp_path / "m.onnx"
    code, stdout, err = run_cli(capsys, "export", model, "--onnx", out)
    assert code == 0 and err == "", err
    assert f"wrote {out}" in stdout and "X (float32, N x 64)" in stdout
    _, proba = run_graph(out.read_bytes(), {"X": X.astype(np.float32)})
    np.testing.assert_allclose(proba, read(model).model.predict_proba(X.astype(np.float32)), atol=TOL32)

    before = model.read_bytes()
    code, _, err = run_cli(capsys, "export", model, "--onnx", model)
    assert_one_line_error(code, err, f"--onnx {model}: is the same file as MODEL")
    assert model.read_bytes() == before

    code, _, err = run_cli(capsys, "export", model, "--onnx", out, "--predictive", "probit")
    assert_one_line_error(code, err, "--predictive probit", "is not a Bayesian model")

    not_a_model = tmp_path / "data.csv"
    not_a_model.write_text("a,b\n1,2\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "export", not_a_model, "--onnx", tmp_path / "x.onnx")
    assert_one_line_error(code, err, f"{not_a_model}", "not a twolayer model file")
    assert not (tmp_path / "x.onnx").exists()


def test_export_of_a_bayesian_model_says_what_the_graph_computes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "b.safetensors"
    argv = ["train", "iris", "--bayes", "--hidden", "3", "--max-cycles", "2", "--quiet", "--out", model]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    code, _, err = run_cli(capsys, "export", model, "--onnx", tmp_path / "map.onnx")
    assert code == 0 and "MAP network's probabilities" in err and err.count("\n") == 1, err
    code, _, err = run_cli(capsys, "export", model, "--onnx", tmp_path / "p.onnx", "--predictive", "probit", "--quiet")
    assert code == 0 and err == "", err
    session((tmp_path / "p.onnx").read_bytes())


def test_export_without_the_onnx_package_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    code, _, err = run_cli(capsys, "export", tmp_path / "m.safetensors", "--onnx", tmp_path / "m.onnx")
    assert_one_line_error(code, err, "pip install 'twolayer[onnx]'")
    with pytest.raises(ImportError, match=r"pip install 'twolayer\[onnx\]'"):
        to_onnx(TwoLayerClassifier())
