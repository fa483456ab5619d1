"""Tests for twolayer.io.datasets: built-ins, CSV and NPZ reading, and every bad input."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from twolayer.io.datasets import (
    BUILTINS,
    DataError,
    Dataset,
    check_classes,
    load_builtin,
    load_dataset,
    read_csv,
    read_npz,
)

# name -> (N, D, K), from the datasets' documentation (UCI / scikit-learn user guide)
KNOWN_SIZES = {
    "digits": (1797, 64, 10),
    "iris": (150, 4, 3),
    "wine": (178, 13, 3),
    "breast_cancer": (569, 30, 2),
    "moons": (400, 2, 2),
    "circles": (400, 2, 2),
    "blobs": (450, 2, 3),
}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


class Payload:
    """Unpickling this creates ``marker``: proof that code from a file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


# --------------------------------------------------------------------------
# Built-ins
# --------------------------------------------------------------------------


def test_every_builtin_is_listed() -> None:
    assert set(BUILTINS) == set(KNOWN_SIZES)


@pytest.mark.parametrize("name", sorted(KNOWN_SIZES))
def test_builtin_sizes_and_types(name: str) -> None:
    data = load_builtin(name)
    N, D, K = KNOWN_SIZES[name]
    assert data.X.shape == (N, D) and data.X.dtype == np.float64
    assert data.y is not None and data.y.shape == (N,)
    assert np.unique(data.y).size == K
    assert data.feature_names is not None and len(data.feature_names) == D
    assert np.isfinite(data.X).all()
    assert data.source == name


def test_builtin_labels() -> None:
    # Named classes where scikit-learn ships names; digits keep their integers.
    assert set(load_builtin("iris").y.tolist()) == {"setosa", "versicolor", "virginica"}
    assert set(load_builtin("breast_cancer").y.tolist()) == {"malignant", "benign"}
    assert load_builtin("digits").y.dtype == np.int64


@pytest.mark.parametrize("name", ["moons", "circles", "blobs"])
def test_generated_builtins_are_the_same_every_time(name: str) -> None:
    a, b = load_builtin(name), load_builtin(name)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.fingerprint() == b.fingerprint()


def test_unknown_builtin_names_the_choices() -> None:
    with pytest.raises(DataError) as excinfo:
        load_dataset("digts")
    message = one_line_error(excinfo)
    assert "unknown dataset 'digts'" in message and "did you mean 'digits'" in message
    for name in BUILTINS:
        assert name in message


def test_builtin_selected_by_feature_names() -> None:
    iris = load_builtin("iris")
    assert iris.feature_names is not None
    names = [iris.feature_names[2], iris.feature_names[0]]
    data = load_dataset("iris", features=names)
    np.testing.assert_array_equal(data.X, iris.X[:, [2, 0]])
    with pytest.raises(DataError, match="missing column 'petal size'"):
        load_dataset("iris", features=["petal size"])
    with pytest.raises(DataError, match="expects 3 features, got 4"):
        load_dataset("iris", features=3)
    with pytest.raises(DataError, match="--target applies to files"):
        load_dataset("iris", target="species")


# --------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------


def test_csv_string_target_last(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,b,label\n1,2.5,cat\n-3e-1, 4 ,dog\n\n5,6,cat\n")
    data = read_csv(path)
    np.testing.assert_array_equal(data.X, [[1.0, 2.5], [-0.3, 4.0], [5.0, 6.0]])
    assert data.y.tolist() == ["cat", "dog", "cat"]
    assert data.feature_names == ("a", "b") and data.target_name == "label"


def test_csv_integer_target_stays_integer(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "x,y\n0.5,1\n0.25,-2\n")
    data = read_csv(path)
    assert data.y.dtype == np.int64 and data.y.tolist() == [1, -2]


def test_csv_named_target_in_the_middle(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,class,b\n1,x,2\n3,y,4\n")
    data = load_dataset(str(path), target="class")
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    assert data.feature_names == ("a", "b") and data.y.tolist() == ["x", "y"]


def test_csv_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffa,t\n1,0\n2,1\n".encode())
    assert read_csv(path).feature_names == ("a",)


def test_csv_columns_matched_by_name(tmp_path: Path) -> None:
    # A model trained on (a, b): order and extra columns do not matter.
    path = write(tmp_path / "d.csv", "id,b,note,a,label\n7,2,hello,1,u\n8,4,,3,v\n")
    data = read_csv(path, features=["a", "b"])
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    assert data.y.tolist() == ["u", "v"]
    unlabelled = read_csv(path, features=["a", "b"], require_target=False)
    assert unlabelled.y is None
    np.testing.assert_array_equal(unlabelled.X, data.X)


def test_csv_missing_named_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "alpha,c\n1,2\n")
    with pytest.raises(DataError) as excinfo:
        read_csv(path, features=["alpha", "beta"], require_target=False)
    message = one_line_error(excinfo)
    assert "missing column 'beta'" in message and "d.csv" in message


def test_csv_positional_features(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "p,q,r\n1,2,0\n3,4,1\n")
    with_target = read_csv(path, features=2)
    np.testing.assert_array_equal(with_target.X, [[1, 2], [3, 4]])
    assert with_target.y.tolist() == [0, 1]
    without_target = read_csv(path, features=3, require_target=False)
    assert without_target.X.shape == (2, 3)
    with pytest.raises(DataError, match="has 3 columns; the model expects 5 features"):
        read_csv(path, features=5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,t\n1,2,x\n3,oops,y\n", "line 3, column 'b': expected a number, got 'oops'"),
        ("a,b,t\n1,,x\n", "line 2, column 'b': expected a number, got an empty cell"),
        ("a,b,t\n1,2,x\n3,1_000,y\n", "line 3, column 'b': expected a number, got '1_000'"),
        ("a,b,t\n1,2,x\n\n\nnan,2,y\n", "line 5, column 'a': NaN is not allowed"),
        ("a,b,t\n1,-inf,x\n2,inf,y\n", "line 2, column 'b': infinity is not allowed (and 1 more"),
        ("a,b,t\n1,2,x\n3,4\n", "line 3: 2 fields, but the header has 3"),
        ("a,a,t\n1,2,x\n", "column 'a' appears twice"),
        ("a,,t\n1,2,x\n", "column 2 has no name"),
        ("", "is empty"),
        ("a,b,t\n", "no data rows"),
        # A semicolon-separated file is read (its delimiter is sniffed); one with no delimiter at all is not.
        ("abc\n1\n2\n", "has a single column ('abc')"),
        ("a,b,t\n1,2,\n", "line 2, column 't': the label is empty"),
    ],
)
def test_csv_bad_input(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as excinfo:
        read_csv(path)
    message = one_line_error(excinfo)
    assert expected in message, message
    assert str(path) in message


def test_csv_unknown_target_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,label\n1,x\n")
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(path), target="lable")
    message = one_line_error(excinfo)
    assert "no column 'lable'" in message and "did you mean 'label'" in message


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,t\n\xff\xfe,1\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_csv(path)


def test_missing_files_and_bad_suffixes(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no such file: .*nothere\.csv"):
        load_dataset(str(tmp_path / "nothere.csv"))
    with pytest.raises(DataError, match=r"no such file: .*nothere\.npz"):
        load_dataset(str(tmp_path / "nothere.npz"))
    # Any extension is read by its content: a .txt of comma-separated values is a table.
    other = write(tmp_path / "d.txt", "a,b\n1,2\n3,4\n")
    np.testing.assert_array_equal(load_dataset(str(other)).X, [[1], [3]])
    binary = tmp_path / "d.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(DataError, match=r"d\.bin is neither delimited text nor a table format"):
        load_dataset(str(binary))
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DataError, match="is a directory"):
        load_dataset(str(folder))


def test_fewer_than_two_classes(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,label\n1,spam\n2,spam\n")
    data = read_csv(path)
    with pytest.raises(DataError) as excinfo:
        check_classes(data)
    message = one_line_error(excinfo)
    assert "single class ('spam')" in message and "'label'" in message
    check_classes(load_builtin("iris"))  # three classes: no error


# --------------------------------------------------------------------------
# NPZ
# --------------------------------------------------------------------------


def test_npz_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3)).astype(np.float32)
    y = np.array(["a", "b"] * 10)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y, feature_names=np.array(["u", "v", "w"]))
    data = load_dataset(str(path))
    np.testing.assert_array_equal(data.X, X.astype(np.float64))
    assert data.X.dtype == np.float64
    assert data.y.tolist() == y.tolist() and data.feature_names == ("u", "v", "w")
    picked = load_dataset(str(path), features=["w", "u"])
    np.testing.assert_array_equal(picked.X, X[:, [2, 0]].astype(np.float64))


def test_npz_label_types(tmp_path: Path) -> None:
    X = np.zeros((3, 1))
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=np.array([1.0, 0.0, 2.0]))
    labels = read_npz(path).y
    assert labels.dtype == np.int64 and labels.tolist() == [1, 0, 2]
    np.savez(path, X=X, y=np.array([True, False, True]))
    assert read_npz(path).y.tolist() == [1, 0, 1]
    np.savez(path, X=X, y=np.array([1.0, 0.5, 2.0]))
    with pytest.raises(DataError, match=r"y\[1\] = 0.5 is not a whole number"):
        read_npz(path)


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        ({"y": np.zeros(3)}, "has no array 'X'; it holds y"),
        ({"X": np.zeros((3, 2))}, "has no array 'y'"),
        ({"X": np.zeros(3), "y": np.zeros(3)}, "X has shape (3,); expected a matrix"),
        ({"X": np.zeros((3, 2)), "y": np.zeros(4)}, "y has shape (4,); expected (3,)"),
        (
            {"X": np.array([[1.0, 2.0], [3.0, np.nan]]), "y": np.zeros(2)},
            "X[1, 1]: expected a number, got 'NaN' (the first missing cell); to train anyway, choose --missing",
        ),
        ({"X": np.array([[1.0, np.inf]]), "y": np.zeros(1)}, "X[0, 1] is infinity"),
        ({"X": np.array([["a", "b"]]), "y": np.zeros(1)}, "X has dtype <U1; expected numbers"),
        ({"X": np.zeros((2, 2)), "y": np.zeros(2), "feature_names": np.array(["a"])}, "feature_names must be 2"),
    ],
)
def test_npz_bad_input(tmp_path: Path, arrays: dict[str, np.ndarray], expected: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(DataError) as excinfo:
        read_npz(path)
    message = one_line_error(excinfo)
    assert expected in message and str(path) in message


def test_npz_payload_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.npz"
    np.savez(path, X=np.array([[Payload(marker)]], dtype=object), y=np.array([0]))
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(path))
    assert "holds Python objects" in one_line_error(excinfo)
    assert not marker.exists()
    # The payload is live: loading the same archive the unsafe way runs it.
    live = tmp_path / "live-marker"
    np.savez(path, X=np.array([[Payload(live)]], dtype=object), y=np.array([0]))
    np.load(path, allow_pickle=True)["X"]
    assert live.exists()


def test_pickle_renamed_to_npz_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"X": Payload(marker)}))
    with pytest.raises(DataError, match="pickled Python objects"):
        load_dataset(str(path))
    assert not marker.exists()


def test_damaged_npz(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((50, 4)), y=np.arange(50))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError) as excinfo:
        read_npz(path)
    assert "d.npz" in one_line_error(excinfo)
    single = tmp_path / "single.npz"
    with open(single, "wb") as handle:
        np.save(handle, np.ones(3))
    with pytest.raises(DataError, match="single array"):
        read_npz(single)


def test_fingerprint_tells_datasets_apart() -> None:
    a = load_builtin("moons")
    changed_label = a.y.copy()
    changed_label[0] = 1 - changed_label[0]
    b = Dataset(a.X, changed_label, a.feature_names, a.target_name, a.source)
    c = Dataset(a.X * (1 + 1e-12), a.y, a.feature_names, a.target_name, a.source)
    assert len({a.fingerprint(), b.fingerprint(), c.fingerprint()}) == 3


def test_the_built_ins_keep_their_import_path():
    from twolayer.io import builtin_datasets, datasets

    assert datasets.BUILTINS is builtin_datasets.BUILTINS
    assert datasets.Builtin is builtin_datasets.Builtin
    assert {"BUILTINS", "Builtin"} <= set(datasets.__all__)
