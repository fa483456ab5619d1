"""Tests for twolayer.io.tables.read_table: every format and compression, sniffing, columns, and bad input."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import twolayer
from twolayer.errors import DataError
from twolayer.io.datasets import load_dataset
from twolayer.io.tables import Column, Table, read_table

# One table, written in every format below; each must read back as X and y here.
TABLE = pa.table(
    {
        "x1": [0.5, -1.25, 3.0, 2.5, 1e-3, -7.0],
        "x2": [1, 2, 3, 4, 5, 6],
        "label": ["cat", "dog", "cat", "dog, the big one", "cat", "dog"],
    }
)
X = np.column_stack([TABLE["x1"].to_numpy(), TABLE["x2"].to_numpy()]).astype(np.float64)
Y = TABLE["label"].to_pylist()


def csv_bytes(delimiter: str = ",") -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(TABLE, sink, pa_csv.WriteOptions(delimiter=delimiter))
    return sink.getvalue()


def zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return bytes(sink.getvalue().to_pybytes())


def write_parquet(path: Path) -> None:
    pq.write_table(TABLE, path)


def write_feather(path: Path) -> None:
    feather.write_feather(TABLE, path)


def write_arrow_stream(path: Path) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, TABLE.schema) as writer:
        writer.write_table(TABLE)


def write_npz(path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, X=X, y=np.array(Y), feature_names=np.array(["x1", "x2"]))


def writer(data: Callable[[], bytes]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(data())

    return write


# name -> (file name, how to write it, format, compression, delimiter)
FORMATS: dict[str, tuple[str, Callable[[Path], None], str, str | None, str | None]] = {
    "csv": ("t.csv", writer(csv_bytes), "csv", None, ","),
    "tsv": ("t.tsv", writer(lambda: csv_bytes("\t")), "csv", None, "\t"),
    "semicolons": ("t.csv", writer(lambda: csv_bytes(";")), "csv", None, ";"),
    "pipes": ("t.txt", writer(lambda: csv_bytes("|")), "csv", None, "|"),
    "gzip": ("t.csv.gz", writer(lambda: gzip.compress(csv_bytes())), "csv", "gzip", ","),
    "bz2": ("t.csv.bz2", writer(lambda: bz2.compress(csv_bytes())), "csv", "bz2", ","),
    "zstd": ("t.csv.zst", writer(lambda: zstd(csv_bytes())), "csv", "zstd", ","),
    "xz": ("t.tsv.xz", writer(lambda: lzma.compress(csv_bytes("\t"))), "csv", "xz", "\t"),
    "parquet": ("t.parquet", write_parquet, "parquet", None, None),
    "feather": ("t.feather", write_feather, "feather", None, None),
    "arrow stream": ("t.arrows", write_arrow_stream, "feather", None, None),
    "npz": ("t.npz", write_npz, "npz", None, None),
}


def assert_the_table(table: Table) -> None:
    np.testing.assert_array_equal(table.X, X)
    assert table.X.dtype == np.float64
    assert table.y is not None and table.y.tolist() == Y
    assert table.feature_names == ("x1", "x2")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


def refused(path: Path, *expected: str, **options: object) -> str:
    with pytest.raises(DataError) as excinfo:
        read_table(path, **options)  # type: ignore[arg-type]
    message = one_line_error(excinfo)
    for text in expected:
        assert text in message, message
    return message


def standard_input(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))


# --------------------------------------------------------------------------
# Formats, compression, sniffing
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_reads_the_same_table(tmp_path: Path, name: str) -> None:
    filename, write_file, fmt, compression, delimiter = FORMATS[name]
    path = tmp_path / filename
    write_file(path)
    table = read_table(path)
    assert_the_table(table)
    assert (table.format, table.compression, table.delimiter) == (fmt, compression, delimiter)


@pytest.mark.parametrize("name", ["csv", "semicolons", "gzip", "xz", "parquet", "feather", "npz"])
def test_the_content_says_what_a_file_is_without_an_extension(tmp_path: Path, name: str) -> None:
    _, write_file, fmt, compression, _ = FORMATS[name]
    path = tmp_path / "export"
    write_file(path)
    table = read_table(path)
    assert_the_table(table)
    assert (table.format, table.compression) == (fmt, compression)


def test_the_content_wins_over_a_wrong_extension(tmp_path: Path) -> None:
    path = tmp_path / "really-parquet.csv"
    write_parquet(path)
    assert read_table(path).format == "parquet"


@pytest.mark.parametrize("name", ["csv", "zstd", "parquet", "npz"])
def test_standard_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    filename, write_file, fmt, _, _ = FORMATS[name]
    write_file(tmp_path / filename)
    standard_input(monkeypatch, (tmp_path / filename).read_bytes())
    table = read_table("-")
    assert_the_table(table)
    assert table.format == fmt and table.source == "standard input"


def test_standard_input_through_load_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    standard_input(monkeypatch, b"a,b,t\n1,2,x\n3,4,y\n")
    data = load_dataset("-")
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    assert data.source == "standard input" and data.y is not None and data.y.tolist() == ["x", "y"]


def test_a_tie_between_tab_and_comma_goes_by_the_extension(tmp_path: Path) -> None:
    text = "x\ty,z\n1\t2,3\n4\t5,6\n"  # two fields a row split at tabs, and two split at commas
    table = read_table(write(tmp_path / "d.tsv", text))
    assert table.delimiter == "\t" and table.feature_names == ("x",)
    assert table.y is not None and table.y.tolist() == ["2,3", "5,6"]
    # As a .csv the first column is 'x<tab>y', which holds text: one input per value.
    as_csv = read_table(write(tmp_path / "d.csv", text))
    assert as_csv.delimiter == "," and as_csv.columns[0] == Column("x\ty", "feature", "text")
    assert as_csv.feature_names == ("x\ty=1\t2", "x\ty=4\t5")


def test_given_separator(tmp_path: Path) -> None:
    path = write(tmp_path / "d.txt", "a:b:t\n1:2:x\n3:4:y\n")
    table = read_table(path, sep=":")
    np.testing.assert_array_equal(table.X, [[1, 2], [3, 4]])
    refused(write(tmp_path / "e.csv", "a,b,t\n1,2,x\n"), "split at ';' it has one", sep=";")
    with pytest.raises(ValueError, match="sep must be one character"):
        read_table(path, sep="::")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_is_read_once(tmp_path: Path) -> None:
    # What a shell's <(zcat data.csv.gz) hands over: a pipe that cannot be opened twice.
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    feeder = threading.Thread(target=lambda: pipe.write_bytes(gzip.compress(csv_bytes())))
    feeder.start()
    try:
        table = read_table(pipe)
    finally:
        feeder.join(timeout=10)
    assert_the_table(table)
    assert table.compression == "gzip"


def test_damaged_compression_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(csv_bytes() * 50)[:60])
    refused(path, "d.csv.gz: the gzip data is damaged or cut short")


def test_damaged_parquet_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    write_parquet(path)
    path.write_bytes(path.read_bytes()[:40])
    refused(path, "d.parquet is not a readable Parquet file")


# --------------------------------------------------------------------------
# Delimited text: header, comments, quoting
# --------------------------------------------------------------------------


def test_a_file_without_a_header(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.csv", "1,2.5,0\n3,4,1\n5,6,0\n"))
    assert table.header is False and table.feature_names is None
    np.testing.assert_array_equal(table.X, [[1, 2.5], [3, 4], [5, 6]])
    assert table.y is not None and table.y.tolist() == [0, 1, 0]
    assert table.target_name == "column_3" and table.target_choice == "last"
    # The columns have names to choose them by.
    assert read_table(tmp_path / "d.csv", target="column_1").X.tolist() == [[2.5, 0], [4, 1], [6, 0]]


def test_header_detection_and_its_override(tmp_path: Path) -> None:
    # Text above numbers is a header; a number where the data have numbers is not.
    assert read_table(write(tmp_path / "a.csv", "height,weight,kind\n1,2,x\n3,4,y\n")).header is True
    assert read_table(write(tmp_path / "b.csv", "1,2,x\n3,4,y\n")).header is False
    # Column names that are numbers in a text column still make a header.
    assert read_table(write(tmp_path / "c.csv", "f,g,2021\n1,2,x\n3,4,y\n")).header is True
    forced = read_table(tmp_path / "b.csv", header=True)
    assert forced.feature_names == ("1", "2") and forced.n_samples == 1


def test_comment_lines_anywhere(tmp_path: Path) -> None:
    text = "# exported by a tool\n# on a day\na,b,t\n1,2,x\n# a note between rows\n3,4,y\n"
    table = read_table(write(tmp_path / "d.csv", text))
    np.testing.assert_array_equal(table.X, [[1, 2], [3, 4]])
    # Kept when comments are off: then "# exported by a tool" is the one-column header.
    refused(tmp_path / "d.csv", "has a single column", comment=None)


def test_comment_lines_count_in_line_numbers(tmp_path: Path) -> None:
    text = "# note\na,b,t\n1,2,x\n# here\n\n3,four,y\n5,6,z\n"
    refused(
        write(tmp_path / "d.csv", text),
        "d.csv, line 6, column 'b': expected a number, got 'four' (data row 2 below the header)",
    )


def test_quoted_fields_hold_delimiters_quotes_and_line_breaks(tmp_path: Path) -> None:
    text = 'a;b;label\n1;2;"x; y"\n3;4;"say ""hi"""\n5;6;"two\nlines"\n'
    table = read_table(write(tmp_path / "d.csv", text))
    assert table.delimiter == ";"
    assert table.y is not None and table.y.tolist() == ["x; y", 'say "hi"', "two\nlines"]


def test_a_line_break_in_a_quoted_field_beyond_the_sniffed_lines(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i + 1},x\n" for i in range(12_000))  # more than the 64 KiB sniffed
    table = read_table(write(tmp_path / "d.csv", "a,b,t\n" + rows + '7,8,"two\nlines"\n'))
    assert table.n_samples == 12_001
    assert table.y is not None and table.y[-1] == "two\nlines"


def test_crlf_and_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffa,b,t\r\n1,2,x\r\n3,4,y\r\n".encode())
    table = read_table(path)
    assert table.feature_names == ("a", "b") and table.y is not None and table.y.tolist() == ["x", "y"]


# --------------------------------------------------------------------------
# Values: labels, booleans
# --------------------------------------------------------------------------


def test_labels_are_strings_exactly_as_written(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.csv", "a,t\n1,007\n2,7\n3,08\n4,7\n"))
    assert table.y is not None and table.y.tolist() == ["007", "7", "08", "7"]
    assert np.unique(table.y).size == 3  # "007" and "7" are two classes


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["7", "-3", "0"], [7, -3, 0]),  # canonical integers: int64
        (["+7", "3"], ["+7", "3"]),
        (["-0", "1"], ["-0", "1"]),
        (["1.0", "2"], ["1.0", "2"]),
        (["9223372036854775807", "-9223372036854775808"], [2**63 - 1, -(2**63)]),
        (["9223372036854775808", "1"], ["9223372036854775808", "1"]),  # beyond int64: text, no OverflowError
        (["123456789012345678901234567890", "1"], ["123456789012345678901234567890", "1"]),
    ],
)
def test_integer_labels_only_when_written_canonically(
    tmp_path: Path, labels: list[str], expected: list[object]
) -> None:
    text = "a,t\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels))
    table = read_table(write(tmp_path / "d.csv", text))
    assert table.y is not None and table.y.tolist() == expected
    assert table.y.dtype.kind == ("i" if isinstance(expected[0], int) else "U")


def test_big_unsigned_labels_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "t": pa.array([2**64 - 1, 1], pa.uint64())}), path)
    table = read_table(path)
    assert table.y is not None and table.y.tolist() == [str(2**64 - 1), "1"]


def test_booleans_are_zero_and_one(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.csv", "a,flag,t\n1,true,x\n2,False,y\n3,TRUE,x\n"))
    np.testing.assert_array_equal(table.X, [[1, 1], [2, 0], [3, 1]])
    assert Column("flag", "feature", "boolean") in table.columns
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "flag": [True, False], "t": ["x", "y"]}), path)
    np.testing.assert_array_equal(read_table(path).X, [[1, 1], [2, 0]])


# --------------------------------------------------------------------------
# Missing cells and text columns
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,t\n1,2,x\n3,NA,y\n4,,z\n", "line 3, column 'b': expected a number, got 'NA' (the first missing cell; "),
        ("a,b,t\n1,,x\n,2,y\n", "line 2, column 'b': expected a number, got an empty cell (the first missing cell"),
        ("a,b,t\n1,2,x\n,4,y\n", "line 3, column 'a'"),
        ("1,2,x\n3,null,y\n", "line 2, column 'column_2': expected a number, got 'null'"),
    ],
)
def test_the_first_missing_cell_is_named(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "d.csv", text)
    message = refused(path, expected, str(path))
    assert "data row" in message


def test_missing_cells_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "b": [1.0, None, 2.0], "t": ["x", "y", "x"]}), path)
    refused(path, "d.parquet, row 2, column 'b': expected a number, got a missing value")
    pq.write_table(pa.table({"a": [1.0, 2.0], "t": ["x", None]}), path)
    refused(path, "row 2, column 't': the label is missing")


def one_hot(values: list[str | None]) -> tuple[np.ndarray, list[str]]:
    """scikit-learn's own one-hot encoding of one column (missing cells all zero), and its categories."""
    from sklearn.preprocessing import OneHotEncoder

    column = np.array(values, dtype=object).reshape(-1, 1)
    present = column[[v is not None for v in values]]
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(present)
    filled = np.where(column == None, "\0", column)  # noqa: E711 - an elementwise comparison
    return encoder.transform(filled), [str(c) for c in encoder.categories_[0]]


def test_a_text_column_becomes_one_input_per_category(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "colour,a,t\nred,1,x\n red ,2,y\nblue,3,x\n")
    table = read_table(path)
    encoded, categories = one_hot(["red", "red", "blue"])
    np.testing.assert_array_equal(table.X, np.column_stack([encoded, [1, 2, 3]]))
    assert table.feature_names == (*(f"colour={c}" for c in categories), "a")
    assert table.columns[0] == Column("colour", "feature", "text")
    assert table.encoding is not None and table.encoding.kinds == ("text", "numeric")
    assert table.warnings == ()  # repeated values: not an identifier
    np.testing.assert_array_equal(read_table(path, drop=["colour"]).X, [[1], [2], [3]])


def test_an_identifier_in_disguise_gets_a_warning(tmp_path: Path) -> None:
    rows = "".join(f"person{i},{i},{i % 2}\n" for i in range(30))
    path = write(tmp_path / "d.csv", "name,a,t\n" + rows)
    table = read_table(path)
    assert table.n_features == 31  # 30 names and a
    (warning,) = table.warnings
    assert "column 'name' holds text whose values are all different" in warning
    assert "--id name" in warning and "--drop name" in warning
    table = read_table(path, id_column="name")
    assert table.ids is not None and table.ids.tolist()[:2] == ["person0", "person1"]
    assert table.feature_names == ("a",) and table.id_name == "name" and table.warnings == ()


def test_text_in_parquet_and_its_categories(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    colour = pa.array(["u", "v", "u", None]).dictionary_encode()  # a category column as pandas writes it
    pq.write_table(pa.table({"name": ["a", "b", "c", "d"], "colour": colour, "x": [1.0, 2.0, 3.0, 4.0]}), path)
    table = read_table(path, target="x", missing="most-frequent")
    names, _ = one_hot(["a", "b", "c", "d"])
    colours, _ = one_hot(["u", "v", "u", "u"])  # the missing cell takes the most frequent category
    np.testing.assert_array_equal(table.X, np.column_stack([names, colours]))
    assert table.feature_names == ("name=a", "name=b", "name=c", "name=d", "colour=u", "colour=v")
    refused(path, "d.parquet, row 4, column 'colour': expected a value, got a missing value", target="x")


def test_a_mistyped_number_is_named_not_the_column(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,b,t\n1,2,x\n3,4,y\n5,6O,x\n")
    refused(path, "line 4, column 'b': expected a number, got '6O' (data row 3 below the header)")


def test_parquet_columns_by_type(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    when = pa.array([0, 1], pa.timestamp("s"))
    pq.write_table(pa.table({"name": ["a", "b"], "when": when, "x": [1.0, 2.0], "t": [0, 1]}), path)
    refused(path, "column 'when' holds timestamp[", "values, which are not features", "--drop when", drop=["name"])
    assert read_table(path, drop=["name", "when"]).X.tolist() == [[1.0], [2.0]]
    # A category column as pandas writes it (dictionary-encoded) is text; so are its labels.
    category = pa.array(["u", "v"]).dictionary_encode()
    pq.write_table(pa.table({"x": [1.0, 2.0], "colour": category, "label": category}), path)
    assert read_table(path).columns[1] == Column("colour", "feature", "text")
    assert read_table(path, drop=["colour"]).y.tolist() == ["u", "v"]  # type: ignore[union-attr]


def test_the_index_pandas_writes_into_parquet_is_no_feature(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "b", "a"]}, index=[10, 20, 30])
    frame.to_parquet(tmp_path / "d.parquet")
    table = read_table(tmp_path / "d.parquet")
    assert table.feature_names == ("x",) and table.X.tolist() == [[1.0], [2.0], [3.0]]


def test_a_dropped_text_column_is_never_read(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", 'a,notes,t\n1,"anything, at all",x\n2,,y\n')
    assert read_table(path, drop=["notes"]).feature_names == ("a",)


# --------------------------------------------------------------------------
# Columns: target, features, drop, id
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "target", "choice"),
    [
        ("a,Class,b", "Class", "named"),  # any case
        ("y,label,b", "label", "named"),  # label is preferred over y
        ("target,label,b", "target", "named"),
        ("a,b,c", "c", "last"),
    ],
)
def test_the_default_target(tmp_path: Path, header: str, target: str, choice: str) -> None:
    table = read_table(write(tmp_path / "d.csv", f"{header}\n1,2,3\n4,5,6\n"))
    assert table.target_name == target and table.target_choice == choice
    assert table.target_note is not None and repr(target) in table.target_note
    assert target not in (table.feature_names or ())


def test_the_identifier_is_never_the_default_target(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.csv", "x,t,id\n1,5,a\n2,6,b\n"), id_column="id")
    assert table.target_name == "t" and table.feature_names == ("x",)


def test_features_and_drop_by_name_and_glob(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "px_1,px_2,px_3,other,label\n1,2,3,4,a\n5,6,7,8,b\n")
    assert read_table(path, features=["px_*"]).feature_names == ("px_1", "px_2", "px_3")
    picked = read_table(path, features=["other", "px_*"], drop=["px_2"])
    assert picked.feature_names == ("other", "px_1", "px_3")
    np.testing.assert_array_equal(picked.X, [[4, 1, 3], [8, 5, 7]])
    assert read_table(path, drop=["px_?"]).feature_names == ("other",)
    roles = {c.name: c.role for c in picked.columns}
    assert roles == {"px_1": "feature", "px_2": "unused", "px_3": "feature", "other": "feature", "label": "target"}
    refused(path, "no column is named or matches 'qx_*' (features)", features=["qx_*"])
    refused(path, "no column is named or matches 'oter' (to drop)", "did you mean 'other'", drop=["oter"])
    refused(path, "column 'label' is the target; it cannot also be a feature", features=["label"])
    refused(path, "no feature columns are left", drop=["*"])


def test_a_name_is_taken_as_written_before_as_a_glob(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "x[0],x0,label\n1,2,a\n3,4,b\n")
    assert read_table(path, features=["x[0]"]).feature_names == ("x[0]",)


def test_a_numeric_id_column_keeps_its_text(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.csv", "id,x,label\n007,1,a\n8,2,b\n"), id_column="id")
    assert table.ids is not None and table.ids.tolist() == ["007", "8"]
    assert table.feature_names == ("x",)
    assert Column("id", "id", "text") in table.columns
    refused(tmp_path / "d.csv", "no column 'ID'", id_column="ID")


def test_an_id_column_in_parquet_and_npz(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"id": [10, 20], "x": [1.0, 2.0], "t": ["a", "b"]}), path)
    table = read_table(path, id_column="id")
    assert table.ids is not None and table.ids.tolist() == [10, 20] and table.feature_names == ("x",)
    npz = tmp_path / "d.npz"
    write_npz(npz)
    table = read_table(npz, id_column="x2")
    assert table.feature_names == ("x1",) and table.ids is not None and table.ids.tolist() == X[:, 1].tolist()


def test_model_columns_exclude_a_new_selection(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "a,b,t\n1,2,x\n")
    with pytest.raises(ValueError, match="with model_features they must be None"):
        read_table(path, features=["a"], model_features=["a"])
    with pytest.raises(ValueError, match="not one string"):
        read_table(path, features="a")


def test_model_columns_with_an_id(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "key,b,note,a\nk1,2,hello,1\nk2,4,,3\n")
    table = read_table(path, model_features=["a", "b"], id_column="key", require_target=False)
    np.testing.assert_array_equal(table.X, [[1, 2], [3, 4]])
    assert table.ids is not None and table.ids.tolist() == ["k1", "k2"] and table.y is None
    refused(path, "column 'a' is a feature of the model, not an identifier", model_features=["a"], id_column="a")


def test_load_dataset_passes_the_column_choices(tmp_path: Path) -> None:
    path = write(tmp_path / "d.tsv", "id\tpx_1\tpx_2\tnote\tlabel\nr1\t1\t2\thi\ta\nr2\t3\t4\tho\tb\n")
    data = load_dataset(str(path), select=["px_*"], id_column="id")
    np.testing.assert_array_equal(data.X, [[1, 2], [3, 4]])
    assert data.ids is not None and data.ids.tolist() == ["r1", "r2"] and data.id_name == "id"
    assert data.target_note == "target column: 'label' (named like a target)"
    dropped = load_dataset(str(path), drop=["note", "px_2"], id_column="id")
    assert dropped.feature_names == ("px_1",)
    assert load_dataset("iris", drop=["petal*"]).feature_names == ("sepal length (cm)", "sepal width (cm)")
    with pytest.raises(DataError, match="--id applies to files"):
        load_dataset("iris", id_column="x")


def test_read_table_is_public() -> None:
    assert twolayer.read_table is read_table


# --------------------------------------------------------------------------
# Any text at all: a table or one line
# --------------------------------------------------------------------------

_CELLS = st.one_of(
    st.sampled_from(["", " ", "NA", "nan", "-inf", "true", "False", "x", '"a,b"', '""', '"', "#", "007", "1_0", "\r"]),
    st.floats().map(repr),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=4),
)


@st.composite
def delimited_text(draw: st.DrawFn) -> str:
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    rows = draw(st.lists(st.lists(_CELLS, max_size=5), max_size=8))
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return "".join(sep.join(row) + ending for row in rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=delimited_text(), compress=st.booleans())
def test_any_text_is_a_table_or_one_line(tmp_path: Path, text: str, compress: bool) -> None:
    data = text.encode("utf-8", "surrogatepass")
    path = tmp_path / "any"
    path.write_bytes(gzip.compress(data) if compress else data)
    for require_target in (True, False):
        try:
            table = read_table(path, require_target=require_target)
        except DataError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
        else:
            assert table.X.dtype == np.float64 and np.isfinite(table.X).all()
            assert table.y is None or table.y.shape == (table.n_samples,)


# --------------------------------------------------------------------------
# Missing cells under each policy, and a model's encoding on new rows
# --------------------------------------------------------------------------

GAPPY = "id,age,colour,smoker,t\na,30,red,true,x\nb,,blue,false,y\nc,50,,true,x\nd,41,red,,y\ne,NA,red,false,x\n"


@pytest.mark.parametrize("policy", ["mean", "median", "most-frequent"])
def test_filling_agrees_with_simple_imputer(tmp_path: Path, policy: str) -> None:
    from sklearn.impute import SimpleImputer

    table = read_table(write(tmp_path / "d.csv", GAPPY), id_column="id", missing=policy)
    strategy = policy.replace("-", "_")
    nan = np.nan
    numbers = np.array([[30, 1], [nan, 0], [50, 1], [41, nan], [nan, 0]], dtype=float)
    filled = SimpleImputer(strategy=strategy).fit_transform(numbers)
    text = np.array([["red"], ["blue"], [None], ["red"], ["red"]], dtype=object)
    colours = SimpleImputer(strategy="most_frequent", missing_values=None).fit_transform(text)[:, 0]
    encoded, categories = one_hot(list(colours))
    np.testing.assert_allclose(table.X, np.column_stack([filled[:, 0], encoded, filled[:, 1]]))
    assert table.feature_names == ("age", *(f"colour={c}" for c in categories), "smoker")
    assert table.n_dropped == 0 and table.ids is not None and table.ids.tolist() == list("abcde")


def test_dropping_rows_keeps_labels_and_identifiers_aligned(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.csv", GAPPY), id_column="id", missing="drop")
    assert table.n_dropped == 4 and table.ids is not None and table.ids.tolist() == ["a"]
    assert table.y is not None and table.y.tolist() == ["x"]
    np.testing.assert_array_equal(table.X, [[30, 1, 1]])  # colour=red (the only category left), smoker
    everything_missing = write(tmp_path / "e.csv", "a,b,t\n1,,x\n,2,y\n")
    refused(everything_missing, "every row has a missing feature cell", missing="drop")


def test_the_error_policy_names_the_cell_and_the_way_through(tmp_path: Path) -> None:
    message = refused(write(tmp_path / "d.csv", GAPPY), "line 3, column 'age': expected a number, got an empty cell")
    assert "--missing drop, mean, median or most-frequent" in message


def test_a_model_encodes_new_rows_as_it_encoded_its_own(tmp_path: Path) -> None:
    trained = read_table(write(tmp_path / "d.csv", GAPPY), id_column="id", missing="mean")
    assert trained.encoding is not None
    # Columns in another order, one extra, a colour never seen, missing cells filled from training.
    new = "smoker,extra,colour,age\nfalse,9,green,\ntrue,9,blue,20\n"
    table = read_table(write(tmp_path / "n.csv", new), encoding=trained.encoding, require_target=False)
    mean_age, mean_smoker = np.mean([30, 50, 41]), np.mean([1, 0, 1, 0])
    blue_red = [[0, 0], [1, 0]]  # green is unseen: both colour inputs zero
    np.testing.assert_allclose(table.X, np.column_stack([[mean_age, 20], blue_red, [0, 1]]))
    assert table.unseen == {"colour": 1} and table.feature_names == trained.feature_names
    assert np.isclose(mean_smoker, 0.5)


def test_a_models_columns_must_be_what_they_were(tmp_path: Path) -> None:
    trained = read_table(write(tmp_path / "d.csv", "a,b,t\n1,2,x\n3,4,y\n"), missing="drop")
    assert trained.encoding is not None and trained.encoding.missing == "drop"
    text_where_numbers = write(tmp_path / "n.csv", "a,b\nlow,2\nhigh,3\n")
    refused(
        text_where_numbers,
        "column 'a' holds text ('low', 'high'), but the model reads numbers from it",
        encoding=trained.encoding,
        require_target=False,
    )
    gap = write(tmp_path / "g.csv", "b,a\n2,\n")
    message = refused(gap, "line 2, column 'a': expected a number", encoding=trained.encoding, require_target=False)
    assert "trained with --missing drop, which fills no cells" in message
    refused(write(tmp_path / "m.csv", "a\n1\n"), "missing column 'b'", encoding=trained.encoding, require_target=False)


def test_the_same_table_encodes_the_same_from_every_format(tmp_path: Path) -> None:
    table = pa.table(
        {
            "age": [30.0, None, 50.0, 41.0],
            "colour": ["red", "blue", None, "red"],
            "t": ["x", "y", "x", "y"],
        }
    )
    pa_csv.write_csv(table, tmp_path / "d.csv")
    pq.write_table(table, tmp_path / "d.parquet")
    feather.write_feather(table, tmp_path / "d.feather")
    read = [read_table(tmp_path / name, missing="median") for name in ("d.csv", "d.parquet", "d.feather")]
    for other in read[1:]:
        np.testing.assert_array_equal(other.X, read[0].X)
        assert other.encoding == read[0].encoding
    np.savez(tmp_path / "d.npz", X=np.array([[30.0], [np.nan], [50.0], [41.0]]), y=np.arange(4) % 2)
    npz = read_table(tmp_path / "d.npz", missing="median")
    np.testing.assert_array_equal(npz.X[:, 0], read[0].X[:, 0])


def test_a_boolean_column_with_a_gap_is_filled_as_a_number(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.csv", "flag,t\ntrue,x\nfalse,y\n,x\ntrue,y\n"), missing="mean")
    np.testing.assert_allclose(table.X[:, 0], [1, 0, 2 / 3, 1])
    assert table.columns[0].kind == "boolean"


def test_kept_columns_are_the_cells_as_read(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "d.csv", GAPPY), id_column="id", missing="mean", keep_raw=True)
    assert table.raw is not None and list(table.raw) == ["age", "colour", "smoker"]
    assert table.raw["colour"].tolist() == ["red", "blue", None, "red", "red"]
    assert np.isnan(table.raw["age"][1])


# --------------------------------------------------------------------------
# Reading for a model in batches
# --------------------------------------------------------------------------


def concatenated(batches: list[Table]) -> tuple[np.ndarray, list[str], list[str]]:
    X = np.vstack([b.X for b in batches])
    y = [str(v) for b in batches for v in (b.y.tolist() if b.y is not None else [])]
    ids = [str(v) for b in batches for v in (b.ids.tolist() if b.ids is not None else [])]
    return X, y, ids


def long_table(rows: int = 400) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "key": [f"k{i}" for i in range(rows)],
            "a": rng.normal(size=rows),
            "colour": [["red", "blue", None][i % 3] for i in range(rows)],
            "b": [None if i % 7 == 3 else float(i) for i in range(rows)],
            "label": [["007", "7"][i % 2] for i in range(rows)],
        }
    )


@pytest.mark.parametrize("name", ["d.csv", "d.csv.gz", "d.parquet", "d.feather", "d.arrows"])
def test_batches_read_what_the_whole_read_reads(tmp_path: Path, name: str) -> None:
    from twolayer.io.tables import iter_table

    table = long_table()
    path = tmp_path / name
    if name.startswith("d.csv"):
        sink = io.BytesIO()
        pa_csv.write_csv(table, sink)
        path.write_bytes(gzip.compress(sink.getvalue()) if name.endswith(".gz") else sink.getvalue())
    elif name.endswith(".parquet"):
        pq.write_table(table, path, row_group_size=50)
    elif name.endswith(".feather"):
        feather.write_feather(table, path, chunksize=64)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=64)
    trained = read_table(path, id_column="key", missing="mean")
    batches = list(iter_table(path, encoding=trained.encoding, id_column="key", batch_bytes=512))
    assert len(batches) > 3
    X, y, ids = concatenated(batches)
    np.testing.assert_array_equal(X, trained.X)
    assert y == [str(v) for v in trained.y.tolist()]  # type: ignore[union-attr]
    assert ids == [f"k{i}" for i in range(400)]


def test_a_problem_in_a_later_batch_is_named_by_its_place_in_the_file(tmp_path: Path) -> None:
    from twolayer.io.tables import iter_table

    rows = "".join(f"{i},{i % 2}\n" for i in range(300))
    path = write(tmp_path / "d.csv", "a,t\n" + rows + "x,1\n" + rows)
    batches = iter_table(path, model_features=["a"], batch_bytes=256)
    with pytest.raises(DataError, match=r"line 302, column 'a': expected a number, got 'x' \(data row 301 below"):
        list(batches)
    gap = write(tmp_path / "g.csv", "a,t\n" + rows + ",1\n")
    with pytest.raises(DataError, match=r"line 302, column 'a': expected a number, got an empty cell"):
        list(iter_table(gap, model_features=["a"], batch_bytes=256))


def test_a_quoted_line_break_beyond_the_sample_restarts_without_repeating_rows(tmp_path: Path) -> None:
    from twolayer.io.tables import iter_table

    rows = "".join(f"{i},t{i % 2}\n" for i in range(3000))  # more than the sniffed rows
    path = write(tmp_path / "d.csv", "a,t\n" + rows + '5,"two\nlines"\n' + rows)
    batches = list(iter_table(path, model_features=["a"], batch_bytes=1024))
    X, y, _ = concatenated(batches)
    assert X[:, 0].tolist() == [*range(3000), 5, *range(3000)]
    assert y[3000] == "two\nlines" and len(y) == 6001


def test_iter_table_is_for_a_model(tmp_path: Path) -> None:
    from twolayer.io.tables import iter_table

    with pytest.raises(ValueError, match="give model_features or encoding"):
        next(iter_table(write(tmp_path / "d.csv", "a,t\n1,x\n")))
