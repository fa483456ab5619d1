"""twolayer.io.encoding against scikit-learn's SimpleImputer and OneHotEncoder used directly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder

from twolayer.errors import DataError
from twolayer.io.encoding import MISSING_POLICIES, FeatureEncoding, fit_encoding, id_like_columns, missing_mask

NAN = float("nan")


def table() -> tuple[dict[str, np.ndarray], dict[str, str]]:
    columns = {
        "age": np.array([30.0, NAN, 50.0, 41.0, NAN, 22.0]),
        "colour": np.array(["red", "blue", None, "red", "green", "red"], dtype=object),
        "height": np.array([1.7, 1.8, 1.6, NAN, 1.9, 1.75]),
    }
    return columns, {"age": "numeric", "colour": "text", "height": "numeric"}


@pytest.mark.parametrize("policy", ["mean", "median", "most-frequent"])
def test_filling_matches_simple_imputer_and_one_hot_encoder(policy: str) -> None:
    columns, kinds = table()
    encoding = fit_encoding(columns, kinds, policy)  # type: ignore[arg-type]
    got = encoding.transform(columns)

    strategy = policy.replace("-", "_")
    numeric = np.column_stack([columns["age"], columns["height"]])
    filled = SimpleImputer(strategy=strategy).fit_transform(numeric)
    text = SimpleImputer(strategy="most_frequent", missing_values=None).fit_transform(columns["colour"].reshape(-1, 1))
    one_hot = OneHotEncoder(sparse_output=False).fit_transform(text)
    expected = np.column_stack([filled[:, 0], one_hot, filled[:, 1]])
    np.testing.assert_array_equal(got, expected)
    assert encoding.input_names == ["age", "colour=blue", "colour=green", "colour=red", "height"]
    assert encoding.n_inputs == got.shape[1] == 5


def test_json_round_trip_gives_the_same_transform() -> None:
    columns, kinds = table()
    encoding = fit_encoding(columns, kinds, "median")  # type: ignore[arg-type]
    record = json.loads(json.dumps(encoding.to_json()))
    again = FeatureEncoding.from_json(record)
    assert again == encoding
    np.testing.assert_array_equal(again.transform(columns), encoding.transform(columns))


def test_unseen_categories_encode_as_zeros_and_are_counted() -> None:
    columns, kinds = table()
    encoding = fit_encoding(columns, kinds, "mean")  # type: ignore[arg-type]
    new = {
        "height": np.array([1.7, 1.7]),
        "age": np.array([1.0, 2.0]),
        "colour": np.array(["purple", "red"], dtype=object),
    }
    X = encoding.transform(new)  # columns in another order, matched by name
    np.testing.assert_array_equal(X[0, 1:4], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(X[1, 1:4], [0.0, 0.0, 1.0])
    assert encoding.unseen_categories(new) == {"colour": 1}


def test_error_policy_names_the_first_empty_cell() -> None:
    columns, kinds = table()
    with pytest.raises(DataError, match=r"data.csv: row 2, column 'age' is empty; choose --missing"):
        fit_encoding(columns, kinds, "error", source="data.csv", row_offset=1)  # type: ignore[arg-type]
    # Row order first: a later column's empty cell in an earlier row is the one named.
    columns["height"][0] = NAN
    with pytest.raises(DataError, match=r"data.csv: row 2, column 'height' is empty"):
        fit_encoding(columns, kinds, "error", source="data.csv", row_offset=2)  # type: ignore[arg-type]
    columns["height"][0] = 1.7
    complete = {name: values[[0, 5]] for name, values in columns.items()}
    encoding = fit_encoding(complete, kinds, "error")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"new.csv: row 2, column 'age' is empty"):
        encoding.transform(columns, source="new.csv", row_offset=1)


def test_drop_policy_keeps_complete_rows() -> None:
    columns, kinds = table()
    encoding = fit_encoding(columns, kinds, "drop")  # type: ignore[arg-type]
    keep = encoding.complete_rows(columns)
    np.testing.assert_array_equal(keep, [True, False, False, False, False, True])
    X = encoding.transform({name: values[keep] for name, values in columns.items()})
    assert X.shape == (2, 5) and np.isfinite(X).all()


def test_missing_column_and_empty_column_are_named() -> None:
    columns, kinds = table()
    encoding = fit_encoding(columns, kinds, "mean")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="needs column\\(s\\) 'colour'"):
        encoding.transform({"age": columns["age"], "height": columns["height"]}, source="x.csv")
    with pytest.raises(DataError, match="column 'e' has no values"):
        fit_encoding({"e": np.array([NAN, NAN])}, {"e": "numeric"}, "mean")


@pytest.mark.parametrize(
    "record",
    [
        None,
        {"missing": "mean"},
        {"columns": [{"name": "a", "kind": "numeric", "fill": None, "categories": None}], "missing": "mean"},
        {"columns": [{"name": "a", "kind": "text", "fill": "x", "categories": []}], "missing": "mean"},
        {"columns": [{"name": "a", "kind": "numeric", "fill": 1.0, "categories": None}], "missing": "sometimes"},
        {"columns": [{"name": 3, "kind": "numeric", "fill": 1.0, "categories": None}], "missing": "mean"},
        {"columns": [{"name": "a", "kind": "numeric", "fill": 1.0, "categories": None}] * 2, "missing": "mean"},
    ],
)
def test_malformed_records_are_refused(record: object) -> None:
    with pytest.raises(DataError, match=r"model\.st: the feature encoding is malformed"):
        FeatureEncoding.from_json(record, source="model.st")


def test_id_like_text_columns() -> None:
    ids = np.array([f"id{i}" for i in range(30)], dtype=object)
    colours = np.array(["a", "b"] * 15, dtype=object)
    found = id_like_columns(
        {"id": ids, "c": colours, "n": np.arange(30.0)}, {"id": "text", "c": "text", "n": "numeric"}
    )
    assert found == ["id"]
    assert id_like_columns({"id": ids[:5]}, {"id": "text"}) == []  # too few rows to tell


def test_missing_mask() -> None:
    np.testing.assert_array_equal(missing_mask(np.array([1.0, NAN])), [False, True])
    np.testing.assert_array_equal(missing_mask(np.array(["a", None, NAN], dtype=object)), [False, True, True])
    assert set(MISSING_POLICIES) == {"error", "drop", "mean", "median", "most-frequent"}
