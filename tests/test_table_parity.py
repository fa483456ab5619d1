"""One table in every format gives one model and one set of predictions (issue 15); the estimator
takes pandas frames (NumPy and Arrow dtypes) and pyarrow Tables as it takes the same numbers in
an array."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather
import pyarrow.parquet
import pytest
import sklearn.datasets
from safetensors.numpy import load_file

from test_cli import assert_one_line_error, run
from twolayer import TwoLayerClassifier, cli
from twolayer.io.modelfile import read

quiet_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FORMATS = ("csv", "tsv.gz", "parquet", "feather", "npz")

_WINE = sklearn.datasets.load_wine()
NAMES: tuple[str, ...] = tuple(str(name) for name in _WINE.feature_names)  # one holds a '/': any name goes
X_WINE: np.ndarray = np.asarray(_WINE.data, dtype=np.float64)
Y_WINE: np.ndarray = np.asarray(_WINE.target, dtype=np.int64)


def write(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """``columns`` (feature columns and, when present, ``target``, in order) in the format ``path`` names."""
    name = path.name
    if name.endswith(".npz"):
        features = [c for c in columns if c != "target"]
        arrays: dict[str, np.ndarray] = {
            "X": np.column_stack([columns[c] for c in features]),
            "feature_names": np.array(features),
        }
        if "target" in columns:
            arrays["y"] = columns["target"]
        np.savez(path, **arrays)  # type: ignore[arg-type]
    elif name.endswith((".parquet", ".feather")):
        table = pa.table(columns)
        if name.endswith(".parquet"):
            pyarrow.parquet.write_table(table, path)
        else:
            pyarrow.feather.write_feather(table, path)
    else:
        sep = "\t" if ".tsv" in name else ","
        values = list(columns.values())
        # repr() writes the shortest text that reads back as the same float64: the numbers in the
        # text are the numbers in the binary formats, bit for bit.
        lines = [sep.join(columns)] + [sep.join(repr(v[i].item()) for v in values) for i in range(len(values[0]))]
        text = "\n".join(lines) + "\n"
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(text.encode()))
        else:
            path.write_text(text)
    return path


def wine_columns(order: tuple[str, ...] = NAMES, *, target: bool = True) -> dict[str, np.ndarray]:
    columns = {name: X_WINE[:, NAMES.index(name)] for name in order}
    if target:
        columns["target"] = Y_WINE
    return columns


def train(data: Path, out: Path) -> None:
    code = cli.main(
        ["train", str(data), "--out", str(out), "--seed", "0", "--epochs", "20", "--hidden", "8", "--quiet"]
    )
    assert code == 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """The wine table written in each format, and the model trained on it: format -> (table, model)."""
    folder = tmp_path_factory.mktemp("parity")
    result = {}
    for fmt in FORMATS:
        table = write(folder / f"wine.{fmt}", wine_columns())
        train(table, folder / f"wine-{fmt.replace('.', '-')}.safetensors")
        result[fmt] = (table, folder / f"wine-{fmt.replace('.', '-')}.safetensors")
    return result


def predictions(capsys: pytest.CaptureFixture[str], model: Path, data: Path, out: Path) -> pa.Table:
    """What ``twolayer predict --proba`` writes for ``data``, read back from Parquet (full precision)."""
    code, _, err = run(capsys, "predict", model, data, "--proba", "--out", out)
    assert code == 0, err
    return pyarrow.parquet.read_table(out)


# ---------------------------------------------------------------------------
# the command line: one table, every format
# ---------------------------------------------------------------------------


def test_every_format_trains_the_same_weights(trained: dict[str, tuple[Path, Path]]) -> None:
    weights = {fmt: load_file(str(model)) for fmt, (_, model) in trained.items()}
    reference = weights["csv"]
    assert set(reference) >= {"W1", "b1", "W2", "b2", "scaler.mean", "scaler.scale"}
    for fmt, tensors in weights.items():
        assert tensors.keys() == reference.keys(), fmt
        for key, value in tensors.items():
            assert value.dtype == reference[key].dtype, (fmt, key)
            np.testing.assert_array_equal(value, reference[key], err_msg=f"{fmt}: {key}")
    for fmt, (_, model) in trained.items():
        loaded = read(model)
        assert loaded.feature_names == NAMES, fmt  # the NPZ's names too, in the table's order
        np.testing.assert_array_equal(loaded.classes, [0, 1, 2])
        assert loaded.classes.dtype == np.int64, fmt  # the text table's labels "0", "1", "2" are integers


def test_every_format_predicts_the_same(
    trained: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    model = trained["csv"][1]
    reference = predictions(capsys, model, trained["csv"][0], tmp_path / "csv.parquet")
    assert reference.column_names == ["prediction", "proba_0", "proba_1", "proba_2"]
    # What the model file predicts for the same numbers in Python: the command line gave the
    # network each column where it was trained to expect it.
    expected = read(model).model.predict(X_WINE)
    np.testing.assert_array_equal(reference.column("prediction").to_numpy(), expected)
    for fmt, (table, _) in trained.items():
        got = predictions(capsys, model, table, tmp_path / f"{fmt}.parquet")
        assert got.equals(reference), fmt
    for fmt, (_, other) in trained.items():  # and every format's model predicts alike
        got = predictions(capsys, other, trained["csv"][0], tmp_path / f"by-{fmt}.parquet")
        assert got.equals(reference), fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_columns_in_another_order_with_extras_predict_the_same(
    trained: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str
) -> None:
    model = trained["csv"][1]
    reference = predictions(capsys, model, trained["csv"][0], tmp_path / "reference.parquet")
    columns = wine_columns(tuple(reversed(NAMES)), target=False)
    shuffled = {"extra": np.arange(len(Y_WINE), dtype=np.float64)}
    for i, (name, values) in enumerate(columns.items()):
        shuffled[name] = values
        if i == 5:
            shuffled["unused"] = np.full(len(Y_WINE), 1e6)  # would change every prediction if it were read
    data = write(tmp_path / f"shuffled.{fmt}", shuffled)
    assert predictions(capsys, model, data, tmp_path / "predicted.parquet").equals(reference)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_missing_column_is_named_and_nothing_is_written(
    trained: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str], tmp_path: Path, fmt: str
) -> None:
    data = write(tmp_path / f"partial.{fmt}", wine_columns(tuple(n for n in NAMES if n != "flavanoids")))
    out = tmp_path / "p.csv"
    code, _, err = run(capsys, "predict", trained["csv"][1], data, "--out", out)
    assert_one_line_error(code, err, f"partial.{fmt}", "'flavanoids'")
    assert not out.exists()


# ---------------------------------------------------------------------------
# the estimator on data frames
# ---------------------------------------------------------------------------

FRAMES: dict[str, Callable[[pd.DataFrame], Any]] = {
    "pandas": lambda df: df,
    # magnesium and proline become int64[pyarrow], the other columns double[pyarrow]
    "pandas-arrow": lambda df: df.convert_dtypes(dtype_backend="pyarrow"),
    "pandas-nullable": lambda df: df.convert_dtypes(),  # pandas' own masked Float64 and Int64
    "pyarrow-table": lambda df: pa.Table.from_pandas(df, preserve_index=False),
}


def wine_frame(dtype: type[np.floating[Any]]) -> pd.DataFrame:
    return pd.DataFrame(X_WINE.astype(dtype), columns=list(NAMES))


def as_float32(df: pd.DataFrame, kind: str) -> Any:
    if kind == "pandas-arrow":
        return df.astype(pd.ArrowDtype(pa.float32()))
    if kind == "pandas-nullable":
        return df.astype("Float32")
    return FRAMES[kind](df)


def fitted(X: Any, y: Any = Y_WINE) -> TwoLayerClassifier:
    return TwoLayerClassifier(n_hidden=5, max_iter=5, random_state=0).fit(X, y)


def reorder(frame: Any, names: list[str]) -> Any:
    return frame.select(names) if isinstance(frame, pa.Table) else frame[names]


def assert_same_model(model: TwoLayerClassifier, reference: TwoLayerClassifier, frame: Any, X: np.ndarray) -> None:
    for got, want in zip(model.coefs_ + model.intercepts_, reference.coefs_ + reference.intercepts_, strict=True):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(model.predict(frame), reference.predict(X))
    np.testing.assert_array_equal(model.predict_proba(frame), reference.predict_proba(X))


@quiet_convergence
@pytest.mark.parametrize("kind", FRAMES)
def test_a_frame_fits_and_predicts_as_its_numbers(kind: str) -> None:
    frame = FRAMES[kind](wine_frame(np.float64))
    model = fitted(frame)
    assert_same_model(model, fitted(X_WINE), frame, X_WINE)
    assert list(model.feature_names_in_) == list(NAMES)


@quiet_convergence
@pytest.mark.parametrize("kind", FRAMES)
def test_a_float32_frame_trains_in_float32(kind: str) -> None:
    # The estimator's promise, "float32 input trains and predicts in float32", holds for float32
    # columns of every kind: scikit-learn alone would widen Arrow and nullable ones to float64.
    frame = as_float32(wine_frame(np.float32), kind)
    model = fitted(frame)
    assert model.coefs_[0].dtype == np.float32
    assert_same_model(model, fitted(X_WINE.astype(np.float32)), frame, X_WINE.astype(np.float32))


@quiet_convergence
@pytest.mark.parametrize("kind", FRAMES)
def test_a_frame_with_another_float_mix_trains_in_float64(kind: str) -> None:
    # float32 beside an integer column is float64, as NumPy's own promotion of the two says.
    mixed = FRAMES[kind](pd.DataFrame({"a": np.array([1.5, 2.5, 3.5, 4.5], np.float32), "b": [1, 2, 3, 4]}))
    assert fitted(mixed, [0, 1, 0, 1]).coefs_[0].dtype == np.float64


@quiet_convergence
@pytest.mark.parametrize("kind", FRAMES)
def test_a_frame_with_its_columns_moved_is_refused(kind: str) -> None:
    # scikit-learn's check of feature_names_in_: columns are matched by position, so a frame whose
    # names are in another order (or has others) is refused rather than silently misread.
    frame = FRAMES[kind](wine_frame(np.float64))
    model = fitted(frame)
    with pytest.raises(ValueError, match="same order as they were in fit"):
        model.predict(reorder(frame, list(reversed(NAMES))))
    with pytest.raises(ValueError, match="Feature names seen at fit time, yet now missing"):
        model.predict(reorder(frame, list(NAMES[1:])))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        model.predict(X_WINE)


@quiet_convergence
def test_labels_from_arrow_are_the_labels_as_strings() -> None:
    names = np.asarray(_WINE.target_names)[Y_WINE]
    reference = fitted(X_WINE, names)
    frame = FRAMES["pyarrow-table"](wine_frame(np.float64))
    for y in (pd.Series(names).convert_dtypes(dtype_backend="pyarrow"), pa.chunked_array([names])):
        model = fitted(frame, y)
        np.testing.assert_array_equal(model.classes_, reference.classes_)
        np.testing.assert_array_equal(model.predict(frame), reference.predict(X_WINE))
