"""Predictions written whole or in batches: the text the csv module would write, tables pyarrow
reads back, and files that appear whole or not at all."""

from __future__ import annotations

import csv
import io
import itertools
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from twolayer.errors import DataError
from twolayer.io import atomic
from twolayer.io.predictions import PREDICTION_FORMATS, PredictionWriter, prediction_bytes

TEXT = ("csv", "tsv")
COLUMNAR = ("parquet", "feather")

# Every character the csv module treats specially, and some it does not, in every position.
AWKWARD = ["", "plain", "a,b", 'say "hi"', '"', '""', "line\nbreak", "cr\rlf\r\n", "tab\there", " lead", "trail ",
           "é€😀", "nul\x00inside", "x\x0by", ",", "\n", "\t", ";'", "a\u2028b", "\x85", "\\"]  # fmt: skip


def reference_text(columns: Mapping[str, Sequence[object] | np.ndarray], fmt: str) -> bytes:
    """The table as Python's csv module writes it, each value as str() (floats to 6 significant
    digits), a missing value (None, NaN) as an empty field."""

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{float(value):.6g}"
        return str(value.item() if isinstance(value, np.generic) else value)

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
    writer.writerow(list(columns))
    for row in zip(*(np.asarray(values) for values in columns.values())):
        writer.writerow([cell(v) for v in row])
    return buffer.getvalue().encode("utf-8")


def read_table(data: bytes | Path, fmt: str) -> pa.Table:
    source = pa.BufferReader(data) if isinstance(data, bytes) else str(data)
    return pq.read_table(source) if fmt == "parquet" else feather.read_table(source)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def table_of(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A table like predict's: identifiers, kept features, labels, probabilities."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet([0.3, 1.0, 3.0], n)
    return {
        "id": np.array([AWKWARD[i % len(AWKWARD)] + str(i) for i in range(n)]),
        "x,1": rng.normal(size=n) * 10.0 ** rng.integers(-7, 9, n),
        "prediction": proba.argmax(axis=1).astype(np.int64),
        "label": np.array(["setosa", "versi,color", 'vir"ginica'])[proba.argmax(axis=1)],
        "proba_0": proba[:, 0],
        "proba_1": proba[:, 1],
        "proba_2": proba[:, 2],
    }


def batches(columns: Mapping[str, np.ndarray], cuts: Sequence[int]) -> list[dict[str, np.ndarray]]:
    return [{name: values[a:b] for name, values in columns.items()} for a, b in itertools.pairwise(cuts)]


# --------------------------------------------------------------------------
# The text formats: what the csv module writes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", TEXT)
def test_text_is_what_the_csv_module_writes(fmt: str) -> None:
    n = 6 * len(AWKWARD)
    rng = np.random.default_rng(1)
    columns = {
        'name, "quoted"\n': np.array(AWKWARD * 6),
        "tab\tname": np.array(AWKWARD * 6, dtype=object),
        "float": rng.normal(size=n) * 10.0 ** rng.integers(-12, 12, n),
        "float32": rng.random(n).astype(np.float32),
        "int": rng.integers(-(2**62), 2**62, n),
        "uint8": rng.integers(0, 255, n).astype(np.uint8),
        "bool": rng.random(n) < 0.5,
        "mixed": np.array([1, "a,b", 2.5, None, b"x,y", np.float32(0.1)] * (n // 6), dtype=object),
        "special": np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300] * (n // 6)),
    }
    assert prediction_bytes(columns, fmt) == reference_text(columns, fmt)
    for name, values in columns.items():  # one column: an empty value is written ""
        assert prediction_bytes({name: values}, fmt) == reference_text({name: values}, fmt), name


def test_quoting_reads_back_through_the_csv_module() -> None:
    columns = {"id": np.array(AWKWARD), "n": np.arange(len(AWKWARD))}
    rows = list(csv.reader(io.StringIO(prediction_bytes(columns, "csv").decode("utf-8"), newline="")))
    assert rows[0] == ["id", "n"]
    assert [row[0] for row in rows[1:]] == AWKWARD
    assert prediction_bytes({"v": np.array(['a,"b"', "c"])}, "csv") == b'v\n"a,""b"""\nc\n'


def test_floats_are_written_to_six_significant_digits_and_nan_empty() -> None:
    values = np.array([0.5, 123456.5, 999999.5, 1e-5, 1.23456789e21, -0.0, np.inf, -np.inf, np.nan, 5e-324])
    lines = prediction_bytes({"v": values, "n": np.arange(values.size)}, "csv").decode("ascii").split("\n")
    assert lines[1:-1] == [f"{'' if np.isnan(v) else format(v, '.6g')},{k}" for k, v in enumerate(values.tolist())]
    assert lines[9] == ",8"  # a missing cell kept from the input stays empty


# --------------------------------------------------------------------------
# Batches: the same file as the whole table at once
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(PREDICTION_FORMATS))
def test_batches_make_the_file_of_the_whole_table(tmp_path: Path, fmt: str) -> None:
    columns = table_of(1000)
    whole = prediction_bytes(columns, fmt)
    cuts = [0, 0, 1, 1, 250, 999, 1000, 1000]  # batches of no rows among them
    target = tmp_path / f"p.{fmt}"
    with PredictionWriter(target, fmt) as writer:
        for batch in batches(columns, cuts):
            writer.write(batch)
        assert writer.rows == 1000
        assert not target.exists()  # not before the block ends
    assert leftovers(tmp_path) == []
    if fmt in TEXT:
        assert target.read_bytes() == whole == reference_text(columns, fmt)
        with PredictionWriter(tmp_path / f"one.{fmt}", fmt) as writer:
            writer.write(columns)
        assert (tmp_path / f"one.{fmt}").read_bytes() == whole
    else:
        got = read_table(target, fmt)
        assert got.equals(read_table(whole, fmt))
        assert got.column_names == list(columns)
        assert got.to_pydict() == {name: values.tolist() for name, values in columns.items()}
    if fmt == "parquet":
        assert pq.ParquetFile(target).metadata.num_row_groups == 4  # one per batch with rows


@pytest.mark.parametrize("fmt", COLUMNAR)
def test_columnar_files_keep_the_column_types(tmp_path: Path, fmt: str) -> None:
    columns = {
        "id": np.array(["a", "b\x00c", "é"]),
        "prediction": np.array([3, 1, 2], dtype=np.int32),
        "labels": np.array([2**63 + 1, 5, 6], dtype=np.uint64),
        "proba": np.array([0.25, 0.5, 1.0], dtype=np.float32),
        "flag": np.array([True, False, True]),
    }
    target = tmp_path / f"p.{fmt}"
    with PredictionWriter(target, fmt) as writer:
        writer.write(columns)
    got = read_table(target, fmt)
    assert [str(t) for t in got.schema.types] == ["string", "int64", "uint64", "double", "bool"]
    assert got.to_pydict() == {name: values.tolist() for name, values in columns.items()}
    if fmt == "feather":
        assert pa.ipc.open_file(str(target)).read_all().equals(got)  # an Arrow IPC file: Feather v2


@pytest.mark.parametrize("fmt", list(PREDICTION_FORMATS))
def test_a_run_with_no_rows_still_writes_the_header(tmp_path: Path, fmt: str) -> None:
    declared = {"id": str, "prediction": np.int64, "proba_a": np.float64}
    # no batch at all, the columns declared with their types
    with PredictionWriter(tmp_path / f"declared.{fmt}", fmt, columns=declared):
        pass
    # only batches of no rows: their arrays' types
    empty = {"id": np.array([], dtype=str), "prediction": np.array([], dtype=np.int64), "proba_a": np.array([])}
    with PredictionWriter(tmp_path / f"empty.{fmt}", fmt) as writer:
        writer.write(empty)
        writer.write(empty)
        assert writer.rows == 0
    # names alone: the text header, and columns of unknown type
    with PredictionWriter(tmp_path / f"names.{fmt}", fmt, columns=list(declared)):
        pass
    if fmt in TEXT:
        header = "id,prediction,proba_a\n" if fmt == "csv" else "id\tprediction\tproba_a\n"
        for name in ("declared", "empty", "names"):
            assert (tmp_path / f"{name}.{fmt}").read_text() == header
        assert prediction_bytes(empty, fmt) == header.encode()
    else:
        for name in ("declared", "empty"):
            got = read_table(tmp_path / f"{name}.{fmt}", fmt)
            assert got.num_rows == 0
            assert got.schema == pa.schema([("id", pa.string()), ("prediction", pa.int64()), ("proba_a", pa.float64())])
        assert read_table(prediction_bytes(empty, fmt), fmt).schema == got.schema
        names = read_table(tmp_path / f"names.{fmt}", fmt)
        assert names.column_names == list(declared) and names.num_rows == 0


@pytest.mark.parametrize("fmt", list(PREDICTION_FORMATS))
def test_either_byte_order(tmp_path: Path, fmt: str) -> None:
    # An .npz file written on another machine gives arrays in the other byte order.
    native = {"id": np.array(["r1", "r2"]), "n": np.array([1, -2]), "p": np.array([0.5, 1e-9])}
    swapped = {name: values.astype(values.dtype.newbyteorder("S")) for name, values in native.items()}
    assert all(not values.dtype.isnative for values in swapped.values())
    with PredictionWriter(tmp_path / f"p.{fmt}", fmt) as writer:
        writer.write(swapped)
    if fmt in TEXT:
        assert (tmp_path / f"p.{fmt}").read_bytes() == reference_text(native, fmt)
    else:
        assert read_table(tmp_path / f"p.{fmt}", fmt).to_pydict() == {k: v.tolist() for k, v in native.items()}


@pytest.mark.parametrize("fmt", COLUMNAR)
def test_declared_types_are_the_files(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"p.{fmt}"
    with PredictionWriter(target, fmt, columns={"prediction": np.int64, "proba": np.float64}) as writer:
        writer.write({"prediction": np.array([1, 2], dtype=np.int8), "proba": np.array([1, 0])})
    got = read_table(target, fmt)
    assert got.schema == pa.schema([("prediction", pa.int64()), ("proba", pa.float64())])
    assert got.to_pydict() == {"prediction": [1, 2], "proba": [1.0, 0.0]}


# --------------------------------------------------------------------------
# Standard output
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", TEXT)
@pytest.mark.parametrize("path", [None, "-"])
def test_text_to_standard_output(capsys: pytest.CaptureFixture[str], fmt: str, path: str | None) -> None:
    columns = table_of(300)
    with PredictionWriter(path, fmt) as writer:
        for batch in batches(columns, [0, 100, 100, 300]):
            writer.write(batch)
    out, err = capsys.readouterr()
    assert out == prediction_bytes(columns, fmt).decode("utf-8") and err == ""
    assert not Path("-").exists()


@pytest.mark.parametrize("fmt", COLUMNAR)
def test_binary_to_standard_output(capsysbinary: pytest.CaptureFixture[bytes], fmt: str) -> None:
    columns = table_of(300)
    print("before", end="")  # text already written reaches the stream first
    with PredictionWriter(None, fmt) as writer:
        for batch in batches(columns, [0, 120, 300]):
            writer.write(batch)
    out, _ = capsysbinary.readouterr()
    assert out.startswith(b"before")
    assert read_table(out[len(b"before") :], fmt).equals(read_table(prediction_bytes(columns, fmt), fmt))


def test_standard_output_after_an_error_is_not_a_whole_file(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # A file cut short is seen to be: the Parquet footer or Feather end is not written.
    columns = table_of(100)
    for fmt in COLUMNAR:
        with pytest.raises(RuntimeError):
            with PredictionWriter(None, fmt) as writer:
                writer.write(columns)
                raise RuntimeError("reading the data failed")
        out, _ = capsysbinary.readouterr()
        assert out
        with pytest.raises(pa.ArrowInvalid):
            read_table(out, fmt)


# --------------------------------------------------------------------------
# The file appears whole or not at all
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(PREDICTION_FORMATS))
def test_an_error_midway_leaves_the_old_file(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"p.{fmt}"
    target.write_bytes(b"the previous predictions")
    columns = table_of(200)
    with pytest.raises(RuntimeError, match="reading the data failed"):
        with PredictionWriter(target, fmt) as writer:
            writer.write(batches(columns, [0, 100])[0])
            assert leftovers(tmp_path) != []  # the rows so far are in a temporary file beside it
            raise RuntimeError("reading the data failed")
    assert target.read_bytes() == b"the previous predictions"
    assert leftovers(tmp_path) == []
    # and a new file is never made
    with pytest.raises(KeyboardInterrupt):
        with PredictionWriter(tmp_path / f"new.{fmt}", fmt) as writer:
            writer.write(columns)
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_a_batch_that_does_not_fit_the_file_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "p.parquet"
    with pytest.raises(ValueError, match=r"columns\['prediction'\] holds string values"):
        with PredictionWriter(target, "parquet") as writer:
            writer.write({"prediction": np.array([1, 2])})
            writer.write({"prediction": np.array(["a", "b"])})
    assert list(tmp_path.iterdir()) == []


def test_a_failed_flush_to_disk_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "p.csv"
    target.write_text("old")

    def fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    with pytest.raises(DataError, match=f"^cannot write {target}: Input/output error$"):
        with PredictionWriter(target, "csv") as writer:
            writer.write({"a": np.arange(3)})
    assert target.read_text() == "old" and leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs resource limits and FIFOs (POSIX)")
def test_a_full_disk_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    # A file-size limit makes the disk "full" after 64 KiB, in a process of its own.
    target = tmp_path / "p.csv"
    target.write_text("old")
    script = textwrap.dedent(
        f"""
        import resource, signal, numpy as np
        from twolayer.errors import DataError
        from twolayer.io.predictions import PredictionWriter
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        try:
            with PredictionWriter({str(target)!r}, "csv") as writer:
                for _ in range(10):
                    writer.write({{"p": np.random.default_rng(0).random(10_000)}})
        except DataError as exc:
            print(exc)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"cannot write {target}: File too large"
    assert target.read_text() == "old" and leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_never_replaces_a_fifo(tmp_path: Path, fmt: str) -> None:
    # A FIFO in the test's folder stands for a device such as /dev/null, which no test may write to.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    for target in (fifo, link):
        with pytest.raises(DataError, match=f"^cannot write {target}: it is a FIFO, which a new file would replace$"):
            with PredictionWriter(target, fmt) as writer:
                writer.write({"a": np.arange(3)})
    # one that appears while the rows are written is refused at the end
    late = tmp_path / f"late.{fmt}"
    with pytest.raises(DataError, match="it is a FIFO"):
        with PredictionWriter(late, fmt) as writer:
            writer.write({"a": np.arange(3)})
            os.mkfifo(late)
    for path in (fifo, late):
        assert stat.S_ISFIFO(os.stat(path).st_mode)
    assert link.is_symlink() and leftovers(tmp_path) == []


def test_refuses_a_folder_and_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="it is a folder"):
        with PredictionWriter(tmp_path, "csv"):
            pass
    with pytest.raises(DataError, match="does not exist"):
        with PredictionWriter(tmp_path / "no" / "p.csv", "csv"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_staged_renames_on_success_and_removes_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    with atomic.staged(target) as handle:
        handle.write(b"first ")
        handle.write(b"second")
        assert not target.exists() and len(leftovers(tmp_path)) == 1
    assert target.read_bytes() == b"first second" and leftovers(tmp_path) == []
    with pytest.raises(ZeroDivisionError):
        with atomic.staged(target) as handle:
            handle.write(b"never")
            _ = 1 / 0
    assert target.read_bytes() == b"first second" and leftovers(tmp_path) == []


# --------------------------------------------------------------------------
# Misuse
# --------------------------------------------------------------------------


def test_misuse_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt must be one of csv, tsv, parquet, feather, got 'xlsx'"):
        PredictionWriter(tmp_path / "p.xlsx", "xlsx")
    with pytest.raises(ValueError, match="fmt must be one of"):
        prediction_bytes({"a": [1]}, "xlsx")
    with pytest.raises(ValueError, match="repeats a name"):
        PredictionWriter(None, "csv", columns=["a", "a"])
    with pytest.raises(ValueError, match="not one string"):
        PredictionWriter(None, "csv", columns="abc")
    with pytest.raises(ValueError, match=r"columns\['a'\] must be a float, integer, bool or str type"):
        PredictionWriter(None, "csv", columns={"a": "datetime64[s]"})
    with pytest.raises(RuntimeError, match="needs the writer open"):
        PredictionWriter(tmp_path / "p.csv", "csv").write({"a": [1]})
    target = tmp_path / "p.csv"
    with pytest.raises(ValueError, match=r"columns must be \['a', 'b'\], in that order"):
        with PredictionWriter(target, "csv", columns=["a", "b"]) as writer:
            writer.write({"b": [1], "a": [2]})
    with pytest.raises(ValueError, match=r"columns must be \['a'\], in that order"):
        with PredictionWriter(target, "csv") as writer:
            writer.write({"a": [1]})
            writer.write({"a": [1], "b": [2]})
    with pytest.raises(ValueError, match=r"same length, got 'a': 2, 'b': 1"):
        prediction_bytes({"a": [1, 2], "b": [3]}, "csv")
    with pytest.raises(ValueError, match=r"columns\['a'\] must be one-dimensional, got shape \(2, 2\)"):
        prediction_bytes({"a": np.eye(2)}, "parquet")
    assert list(tmp_path.iterdir()) == []
    writer = PredictionWriter(target, "csv")
    with writer:
        pass
    with pytest.raises(RuntimeError, match="writes one table"):
        with writer:
            pass
