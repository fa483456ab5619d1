"""A validation set of one's own: ``fit(X, y, X_val=..., y_val=...)`` and ``twolayer train --validation``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.datasets import load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from twolayer import TwoLayerClassifier, cli
from twolayer.io.datasets import load_dataset
from twolayer.io.modelfile import read


def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def multilabel() -> tuple[np.ndarray, np.ndarray]:
    X, Y = make_multilabel_classification(n_samples=200, n_features=8, n_classes=3, random_state=0)
    return (X - X.mean(axis=0)) / X.std(axis=0), Y


def quiet(model: TwoLayerClassifier, *args, **kwargs) -> TwoLayerClassifier:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(*args, **kwargs)


def held_out_rows(model: TwoLayerClassifier, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The training and held-out rows of an early-stopped fit's own split (drawn as fitting.py draws it)."""
    seed = model.get_training_state()["split_seed"]
    train, val = train_test_split(
        np.arange(y.shape[0]),
        test_size=model.validation_fraction,
        random_state=seed,
        stratify=None if y.ndim == 2 else y,
    )
    return np.sort(train), val


@pytest.mark.parametrize("solver", ["adam", "sgd"])
@pytest.mark.parametrize("data", [iris, multilabel])
def test_own_set_of_the_split_rows_trains_exactly_as_the_split(solver, data):
    # Iris is balanced and the stratified split keeps it so (40 + 10 of each class): the output
    # biases start alike whether they see all rows or the training rows.
    X, y = data()
    params = {"n_hidden": 6, "solver": solver, "early_stopping": True, "learning_rate_init": 0.05, "random_state": 3}
    split = quiet(TwoLayerClassifier(**params, max_iter=200), X, y)
    assert split.n_iter_ < 200  # stopped early
    train, val = held_out_rows(split, y)
    own = quiet(TwoLayerClassifier(**params, max_iter=200), X[train], y[train], X_val=X[val], y_val=y[val])
    assert own.n_iter_ == split.n_iter_
    assert own.validation_scores_ == split.validation_scores_
    assert own.best_validation_score_ == split.best_validation_score_
    assert own.loss_curve_ == split.loss_curve_
    for a, b in zip(own.coefs_ + own.intercepts_, split.coefs_ + split.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_the_chosen_set_decides_when_training_stops():
    X, y = iris()
    params = {"n_hidden": 6, "early_stopping": True, "learning_rate_init": 0.05, "random_state": 0, "max_iter": 300}
    right = quiet(TwoLayerClassifier(**params), X, y, X_val=X[::3], y_val=y[::3])
    wrong = quiet(TwoLayerClassifier(**params), X, y, X_val=X[::3], y_val=(y[::3] + 1) % 3)
    # Labels the network can never match: the first epoch's score stays the best, and after
    # n_iter_no_change + 1 = 11 epochs more without improvement training stops.
    assert wrong.validation_scores_[0] == wrong.best_validation_score_
    assert wrong.n_iter_ == 12
    assert right.n_iter_ > wrong.n_iter_
    assert right.best_validation_score_ > 0.9 > wrong.best_validation_score_
    # Each ends with the weights of its best epoch on its own set.
    assert right.score(X[::3], y[::3]) == right.best_validation_score_
    assert wrong.score(X[::3], (y[::3] + 1) % 3) == wrong.best_validation_score_
    # And every row of X trained: no random fraction was held out.
    assert right.t_ == right.n_iter_ * X.shape[0]


@pytest.mark.parametrize("solver", ["adam", "lbfgs", "trust-ncg"])
def test_without_early_stopping_the_scores_are_recorded_and_training_is_unchanged(solver):
    X, y = iris()
    params = {"n_hidden": 5, "solver": solver, "random_state": 0, "max_iter": 15}
    plain = quiet(TwoLayerClassifier(**params), X[50:], y[50:])
    assert plain.validation_scores_ is None and plain.best_validation_score_ is None
    watched = quiet(TwoLayerClassifier(**params), X[50:], y[50:], X_val=X[60:120], y_val=y[60:120])
    assert watched.loss_curve_ == plain.loss_curve_
    for a, b in zip(watched.coefs_ + watched.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert len(watched.validation_scores_) == watched.n_iter_
    assert watched.validation_scores_[-1] == watched.score(X[60:120], y[60:120])  # the last weights are kept
    assert watched.best_validation_score_ == max(watched.validation_scores_)


def test_a_callback_sees_the_epochs_score():
    X, y = iris()
    seen = []
    model = TwoLayerClassifier(
        n_hidden=4, max_iter=5, random_state=0, callback=lambda m: seen.append(list(m.validation_scores_))
    )
    quiet(model, X, y, X_val=X[:20], y_val=y[:20])
    assert [len(s) for s in seen] == [1, 2, 3, 4, 5]


def test_multilabel_scores_are_subset_accuracy():
    X, Y = multilabel()
    model = quiet(
        TwoLayerClassifier(n_hidden=8, max_iter=20, random_state=0), X[:150], Y[:150], X_val=X[150:], y_val=Y[150:]
    )
    assert model.validation_scores_[-1] == model.score(X[150:], Y[150:])
    assert model.validation_scores_[-1] == np.mean(np.all(model.predict(X[150:]) == Y[150:], axis=1))


def test_validation_fraction_zero_is_allowed_with_an_own_set():
    X, y = iris()
    model = TwoLayerClassifier(n_hidden=4, early_stopping=True, validation_fraction=0.0, max_iter=5, random_state=0)
    quiet(model, X, y, X_val=X[:30], y_val=y[:30])
    assert len(model.validation_scores_) == model.n_iter_
    with pytest.raises(ValueError, match=r"validation_fraction must be above 0 .* unless fit is given X_val"):
        model.fit(X, y)


def test_class_weight_weights_the_validation_score():
    X, y = iris()
    # Class 2 weighs nothing: the score is the accuracy on classes 0 and 1 of the set alone.
    model = quiet(
        TwoLayerClassifier(n_hidden=4, max_iter=5, random_state=0, class_weight={0: 1.0, 1: 1.0, 2: 0.0}),
        X,
        y,
        X_val=X[::2],
        y_val=y[::2],
    )
    kept = y[::2] != 2
    assert model.validation_scores_[-1] == pytest.approx(model.score(X[::2][kept], y[::2][kept]), abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"X_val": "X"}, "X_val was given without y_val"),
        ({"y_val": "y"}, "y_val was given without X_val"),
        ({"X_val": "X3", "y_val": "y"}, r"X_val must have the 4 features \(columns\) of X.*\(20, 3\)"),
        ({"X_val": "X", "y_val": "y19"}, r"y_val must have one entry per row of X_val \(20\)"),
        ({"X_val": "X", "y_val": "y_unknown"}, r"y_val holds labels \[7\] that are not among the classes of y"),
        ({"X_val": "X", "y_val": "Y"}, "y_val must hold one label per row, as y does"),
        ({"X_val": "X_nan", "y_val": "y"}, "X_val: .*NaN"),
    ],
)
def test_refusals_name_the_parameter(kwargs, message):
    X, y = iris()
    values = {
        "X": X[:20],
        "X3": X[:20, :3],
        "X_nan": np.where(np.arange(4) == 1, np.nan, X[:20]),
        "y": y[:20],
        "y19": y[:19],
        "y_unknown": np.where(np.arange(20) == 3, 7, y[:20]),
        "Y": np.eye(3, dtype=int)[y[:20]],
    }
    with pytest.raises(ValueError, match=message):
        TwoLayerClassifier(n_hidden=3, max_iter=2).fit(X, y, **{k: values[v] for k, v in kwargs.items()})


def test_multilabel_refuses_labels_of_another_shape():
    X, Y = multilabel()
    model = TwoLayerClassifier(n_hidden=3, max_iter=2)
    with pytest.raises(ValueError, match="y_val must be an indicator matrix of 0 and 1 with the 3 label columns"):
        model.fit(X, Y, X_val=X[:10], y_val=Y[:10, :2])
    with pytest.raises(ValueError, match="y_val must be an indicator matrix"):
        model.fit(X, Y, X_val=X[:10], y_val=2 * Y[:10])


def test_feature_names_must_match():
    X, y = iris()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    other = frame.rename(columns={"d": "e"})
    with pytest.raises(ValueError, match=r"X_val: .*feature names"):
        TwoLayerClassifier(n_hidden=3, max_iter=2).fit(frame, y, X_val=other[:10], y_val=y[:10])


def test_a_pipeline_routes_the_set_to_the_network():
    X, y = iris()
    params = {"n_hidden": 5, "early_stopping": True, "learning_rate_init": 0.05, "random_state": 0, "max_iter": 100}
    direct = quiet(TwoLayerClassifier(**params), X, y, X_val=X[::4], y_val=(y[::4] + 1) % 3)
    with sklearn.config_context(enable_metadata_routing=True):
        network = TwoLayerClassifier(**params).set_fit_request(X_val=True, y_val=True)
        # An identity step: a pipeline does not transform X_val through its earlier steps.
        pipe = Pipeline([("identity", FunctionTransformer()), ("net", network)])
        quiet(pipe, X, y, X_val=X[::4], y_val=(y[::4] + 1) % 3)
    routed = pipe.named_steps["net"]
    assert routed.validation_scores_ == direct.validation_scores_
    assert routed.n_iter_ == direct.n_iter_
    # Without routing, scikit-learn's step__parameter way reaches it too.
    plain = Pipeline([("identity", FunctionTransformer()), ("net", TwoLayerClassifier(**params))])
    quiet(plain, X, y, net__X_val=X[::4], net__y_val=(y[::4] + 1) % 3)
    assert plain.named_steps["net"].validation_scores_ == direct.validation_scores_


# --------------------------------------------------------------------------
# twolayer train DATA --validation FILE
# --------------------------------------------------------------------------


def iris_tables(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    """Iris with a text column, as a training table (two rows in three) and a validation table (the rest)."""
    X, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    frame["colour"] = np.array(["red", "blue"])[np.arange(150) % 2]
    frame["species"] = np.array(["setosa", "versicolor", "virginica"])[y]
    held = frame.iloc[::3]
    # Columns in another order: FILE is read by DATA's column names.
    held[["species", "d", "colour", "c", "b", "a"]].to_csv(tmp_path / "val.csv", index=False)
    frame.drop(index=frame.index[::3]).to_csv(tmp_path / "train.csv", index=False)
    return tmp_path / "train.csv", tmp_path / "val.csv", held


def train_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_holds_out_the_validation_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, val, held = iris_tables(tmp_path)
    out = tmp_path / "m.safetensors"
    code, _, err = train_cli(capsys, "train", train, "--validation", val, "--epochs", "40", "--out", out, "--quiet")
    assert code == 0, err
    model_file = read(out)
    info = model_file.info
    assert info is not None
    assert (info["n_train"], info["n_test"]) == (100, 50)  # every row of DATA trains, FILE's are held out
    encoding = model_file.encoding
    assert encoding is not None
    rows = load_dataset(str(val), features=list(encoding.names), encoding=encoding, target="species")
    predicted = model_file.model.predict(rows.X)
    assert info["test_accuracy"] == pytest.approx(np.mean(predicted == held["species"].to_numpy()), abs=1e-12)
    assert model_file.validation_curve is not None and len(model_file.validation_curve) == info["epochs"]


def test_train_stops_early_on_the_validation_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train, val, held = iris_tables(tmp_path)
    wrong = held.copy()
    # Each row labelled with the next species: labels no network can match.
    wrong["species"] = held["species"].map({"setosa": "versicolor", "versicolor": "virginica", "virginica": "setosa"})
    wrong.to_csv(tmp_path / "wrong.csv", index=False)
    out = tmp_path / "m.safetensors"
    argv = ("train", train, "--epochs", "200", "--out", out, "--quiet")
    assert train_cli(capsys, *argv, "--validation", tmp_path / "wrong.csv")[0] == 0
    stopped = read(out).info
    assert train_cli(capsys, *argv, "--validation", val)[0] == 0
    right = read(out).info
    assert stopped is not None and right is not None
    assert stopped["epochs"] < right["epochs"] <= 200
    # The whole-batch solvers have no early stopping: FILE is the held-out set all the same.
    code, _, err = train_cli(
        capsys, "train", train, "--validation", val, "--solver", "lbfgs", "--epochs", "5", "--quiet"
    )
    assert code == 0, err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--test-size", "0.3"], "--test-size does not apply with --validation"),
        (["--checkpoint", "{tmp}/c.ckpt"], "--validation cannot be combined with --checkpoint"),
    ],
)
def test_train_refuses_options_that_contradict_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
) -> None:
    train, val, _ = iris_tables(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    code, _, err = train_cli(capsys, "train", train, "--validation", val, *argv)
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    assert expected in err


def test_train_refuses_a_validation_file_of_other_labels_or_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, _, held = iris_tables(tmp_path)
    dragons = held.assign(species="dragon")
    dragons.to_csv(tmp_path / "dragons.csv", index=False)
    code, _, err = train_cli(capsys, "train", train, "--validation", tmp_path / "dragons.csv")
    assert code == 2 and err.count("\n") == 1, err
    assert "--validation" in err and "'dragon'" in err and "not among the classes" in err
    held.drop(columns="d").to_csv(tmp_path / "narrow.csv", index=False)
    code, _, err = train_cli(capsys, "train", train, "--validation", tmp_path / "narrow.csv")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "'d'" in err, err


def test_the_validation_file_is_an_input_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_cli import assert_one_line_error, run

    monkeypatch.chdir(tmp_path)
    rows = "".join(f"{i % 7},{(i * 3) % 5},{i % 2}\n" for i in range(40))
    (tmp_path / "train.csv").write_text("a,b,label\n" + rows)
    (tmp_path / "val.csv").write_text("a,b,label\n" + rows)
    before = (tmp_path / "val.csv").read_bytes()
    code, _, err = run(capsys, "train", "train.csv", "--validation", "val.csv", "--epochs", "1", "--out", "val.csv")
    assert_one_line_error(code, err, "val.csv")
    assert (tmp_path / "val.csv").read_bytes() == before
