"""Finite but extreme input through the real CLI: every solver trains, or the refusal names the column and value.

A column near 1e300 used to overflow the scaler's variance into NaN, which the
first epoch then reported as "Input X contains NaN" of a file that holds none;
a value beyond float32's range became infinity in the cast to the working dtype.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_cli import assert_one_line_error, run
from twolayer.io.modelfile import read
from twolayer.training.solvers import SOLVERS


def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    """A CSV with columns x1, x2, ... and y; repr() writes each float so that it reads back exactly."""
    names = [f"x{j + 1}" for j in range(X.shape[1])]
    lines = [",".join([*names, "y"])]
    lines += [",".join([*(repr(float(v)) for v in row), str(label)]) for row, label in zip(X, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def problem(seed: int = 0, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """Three features; the label is the sign of the first, the others are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] > 0).astype(int)


def huge_csv(tmp_path: Path, column: int = 2, factor: float = 1e300, name: str = "huge.csv") -> Path:
    X, y = problem()
    X[:, column] *= factor
    return write_csv(tmp_path / name, X, y)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_solver_trains_and_predicts_on_values_near_1e300(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], solver: str, dtype: str
) -> None:
    data = huge_csv(tmp_path)
    model = tmp_path / "m.st"
    code, out, err = run(
        capsys, "train", data, "--solver", solver, "--dtype", dtype, "--epochs", "5", "--hidden", "4", "--out", model
    )
    assert code == 0, err
    assert "NaN" not in err and "Traceback" not in err
    assert f"wrote model {model}" in out
    classifier = read(model).classifier
    assert all(np.isfinite(p).all() for p in classifier.params_)
    code, out, err = run(capsys, "evaluate", model, data)
    assert code == 0, err
    assert "Traceback" not in err


def test_standardising_huge_values_is_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A column multiplied by a power of two is standardised to the same bits: the huge
    # column trains exactly the network of an ordinary one.
    X, y = problem()
    ordinary = write_csv(tmp_path / "ordinary.csv", X, y)
    X[:, 2] = np.ldexp(X[:, 2], 996)  # about 1e300, exactly
    huge = write_csv(tmp_path / "huge.csv", X, y)
    for data, out in ((ordinary, "a.st"), (huge, "b.st")):
        code, _, err = run(capsys, "train", data, "--epochs", "4", "--hidden", "4", "--out", tmp_path / out, "--quiet")
        assert code == 0, err
    first, second = read(tmp_path / "a.st").classifier, read(tmp_path / "b.st").classifier
    for p, q in zip(first.params_, second.params_):
        np.testing.assert_array_equal(p, q)


def test_a_column_of_tiny_values_is_not_taken_for_a_constant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Values near 1e-300 square to zero: the scaler saw no variance and standardised the
    # only informative column to zeros.
    X, y = problem(n=200)
    X[:, 0] *= 1e-300
    data = write_csv(tmp_path / "tiny.csv", X, y)
    code, _, err = run(
        capsys, "train", data, "--solver", "lbfgs", "--epochs", "50", "--hidden", "4", "--out", tmp_path / "m.st"
    )
    assert code == 0, err
    assert read(tmp_path / "m.st").info["test_accuracy"] >= 0.9
    assert "warning" not in err


def test_beyond_float32_without_scaling_is_refused_by_column_and_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = huge_csv(tmp_path, column=1, factor=1e39)
    before = data.read_bytes()
    code, _, err = run(capsys, "train", data, "--no-scale", "--epochs", "2", "--out", tmp_path / "m.st")
    assert_one_line_error(code, err, "column 'x2' holds", "e+39", "float32", "--dtype float64")
    assert "NaN" not in err and "infinity" not in err
    assert data.read_bytes() == before and not (tmp_path / "m.st").exists()


def test_beyond_float32_trains_once_standardised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = huge_csv(tmp_path, column=1, factor=1e39)
    code, _, err = run(capsys, "train", data, "--epochs", "2", "--hidden", "4", "--out", tmp_path / "m.st", "--quiet")
    assert code == 0, err


def test_a_column_whose_standardisation_overflows_float64_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # +-1.7e308 around a mean near 1e307: x - mean is beyond float64, in training and in every prediction.
    X, y = problem()
    X[:, 1] = np.where(np.arange(X.shape[0]) % 3 == 0, -1.7e308, 1.7e308)
    data = write_csv(tmp_path / "edge.csv", X, y)
    code, _, err = run(capsys, "train", data, "--epochs", "2", "--out", tmp_path / "m.st")
    assert_one_line_error(code, err, "column 'x2' holds -1.7e+308", "standardising it overflows float64")
    assert "NaN" not in err


def test_unscaled_huge_values_train_and_the_verdict_names_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Unscaled, the 1e300 column saturates every hidden unit: the run works but learns
    # nothing of use, and says so.
    data = huge_csv(tmp_path)
    code, out, err = run(
        capsys, "train", data, "--no-scale", "--dtype", "float64", "--epochs", "5", "--out", tmp_path / "m.st"
    )
    assert code == 0, err
    assert "warning:" in err and "--no-scale" in err and "column 'x3'" in err
    assert "NaN" not in err and "converged" not in out


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_estimator_takes_finite_values_near_the_top_of_float64() -> None:
    # scikit-learn's finiteness check sums the rows: on finite data it must not warn (an error under
    # pytest) of an overflow the data does not have, nor report a NaN that is not there.
    from twolayer.classifier import TwoLayerClassifier

    X = np.array([[1.7e308, -1.7e308], [1.6e308, 1.0], [-1.0, 1.5e308], [0.0, 0.0]])
    model = TwoLayerClassifier(n_hidden=2, solver="lbfgs", max_iter=5, random_state=0)
    try:
        model.fit(X, [0, 1, 0, 1])
    except ValueError as exc:  # refusing such inputs is allowed; blaming a NaN is not
        assert "NaN" not in str(exc), exc
