"""Predictions out: a table of named columns as CSV, TSV, Parquet or Feather, whole or in batches.

``twolayer predict`` writes one row per input row: the identifier column first (when ``--id``
names one), the input's feature columns when asked (``--keep-columns``), the predicted class and,
with ``--proba``, one probability per class. The format follows the output's extension or
``--format``; standard output gets text (CSV unless TSV is asked for).

The text formats are written as Python's :mod:`csv` writes them (quoting only where a value
needs it, probabilities to 6 significant digits, as a reader of the file expects to see them),
but a column at a time: the text of a million probabilities is built by NumPy and pyarrow in a
few dozen array operations rather than a million calls to :func:`format`. The columnar formats
are written by pyarrow, with each column's type kept (integer labels stay integers,
probabilities float64).

:class:`PredictionWriter` writes the table in batches, for input too large to predict at once:
each batch is formatted and written before the next is read, and the file appears at its path
whole, or not at all (:func:`twolayer.io.atomic.staged`). :func:`prediction_bytes` is the
same writer writing one batch to memory.

It is one module because the per-format encoders exist only for :class:`PredictionWriter` and share
its batch checks.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from twolayer.io.atomic import staged

__all__ = ["PREDICTION_FORMATS", "PredictionWriter", "prediction_bytes", "prediction_format"]

#: The formats predictions are written in, by the extensions that name them.
PREDICTION_FORMATS: Mapping[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "tsv": (".tsv", ".tab"),
    "parquet": (".parquet", ".pq"),
    "feather": (".feather", ".arrow"),
}

_DELIMITERS = {"csv": ",", "tsv": "\t"}

#: Rows formatted together: the arrays of one block stay in the processor's cache, which makes
#: the block's many small array operations several times faster than over a million rows at once.
_BLOCK_ROWS = 65536

#: Rows per record batch in a Feather file, as pyarrow's own ``write_feather`` chunks them.
_FEATHER_CHUNK = 65536


def prediction_format(path: str | os.PathLike[str] | None, given: str | None = None) -> str:
    """The format to write: ``given`` if any, else the one ``path``'s extension names, else CSV.

    Standard output (``path`` ``None`` or ``"-"``) is CSV unless ``given`` says otherwise.
    """
    if given is not None:
        if given not in PREDICTION_FORMATS:
            raise ValueError(f"format must be one of {', '.join(PREDICTION_FORMATS)}, got {given!r}")
        return given
    if path is None or os.fspath(path) == "-":
        return "csv"
    suffix = Path(path).suffix.lower()
    return next((fmt for fmt, suffixes in PREDICTION_FORMATS.items() if suffix in suffixes), "csv")


def prediction_bytes(columns: Mapping[str, Sequence[object] | np.ndarray], fmt: str) -> bytes:
    """The bytes of a file holding ``columns`` (equal lengths, in order) in the format ``fmt``.

    What :class:`PredictionWriter` writes for ``columns`` given as one batch.

    Parameters
    ----------
    columns : mapping of str to array-like
        The table's columns by name, in the order they are written; each one-dimensional.
    fmt : {"csv", "tsv", "parquet", "feather"}

    Returns
    -------
    bytes

    Raises
    ------
    ValueError
        When ``fmt`` is not a format, or the columns are not one-dimensional and of one length.
    """
    _check_format(fmt)
    names, arrays = _batch(columns)
    buffer = io.BytesIO()
    encoder = _encoder(fmt, _Sink(buffer.write), None)
    encoder.write(names, arrays)
    encoder.finish(names)
    return buffer.getvalue()


class PredictionWriter:
    """Writes a table of predictions in batches to a file, which appears whole or not at all.

    ::

        with PredictionWriter("predictions.parquet", "parquet") as writer:
            for block in blocks:
                writer.write({"id": ids, "prediction": labels, "proba_a": p_a, "proba_b": p_b})

    Every batch has the same column names, in the same order; the file holds the batches' rows
    one after the other, as if the concatenated columns had been written at once: a CSV or TSV
    file is byte for byte that of :func:`prediction_bytes` of the whole table, a Parquet or
    Feather file holds the same table (one Parquet row group per batch).

    To a file, the rows go to a temporary file beside it, which is renamed over ``path`` when
    the ``with`` block ends without an exception (:func:`twolayer.io.atomic.staged`); when it
    raises, the temporary file is removed and whatever was at ``path`` is left as it was.
    Standard output gets each batch as it is written (and so keeps what was written before an
    error): CSV and TSV through :data:`sys.stdout`, Parquet and Feather through its binary
    buffer.

    Parameters
    ----------
    path : path-like or None
        The file to write; ``None`` or ``"-"`` for standard output. Its folder must exist, and
        it must not be a folder, a device, a FIFO or a socket.
    fmt : {"csv", "tsv", "parquet", "feather"}
        The format (see :func:`prediction_format`).
    columns : mapping of str to dtype, or sequence of str, optional
        The columns, declared before any batch: their names in order, or their names and the
        NumPy types of their values (float, integer, bool or str). Every batch must then have
        these names. Declared types are the Parquet and Feather file's column types (each
        batch's values are converted to them, where they convert without loss); without them
        the first batch's types are (integers as int64, floats as float64, text as strings).
        A run that writes no batch, or only batches of no rows, still writes a valid file with
        the table's header: the names come from ``columns`` or the first batch, the Parquet
        and Feather types from ``columns`` or a batch of no rows; a column of unknown type is
        of Arrow's null type, and with no names at all the file has no columns. Text files use
        the names alone.

    Attributes
    ----------
    path : Path or None
        The destination, ``None`` for standard output.
    fmt : str
        The format.

    Raises
    ------
    ValueError
        When ``fmt`` is not a format, or ``columns`` repeats a name or gives an unsupported type.
    twolayer.errors.DataError
        On entering the ``with`` block, when ``path`` cannot be written; on writing, when the
        disk refuses the data (naming ``path`` and the reason).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        fmt: str,
        columns: Mapping[str, npt.DTypeLike] | Sequence[str] | None = None,
    ) -> None:
        _check_format(fmt)
        self.path = None if path is None or os.fspath(path) == "-" else Path(path)
        self.fmt = fmt
        self._names: list[str] | None = None
        self._types: dict[str, np.dtype[Any]] | None = None
        if columns is not None:
            if isinstance(columns, str):
                raise ValueError(f"columns must be the column names, not one string ({columns!r})")
            self._names = [str(name) for name in columns]
            if len(set(self._names)) < len(self._names):
                raise ValueError(f"columns repeats a name: {self._names}")
            if isinstance(columns, Mapping):
                self._types = {name: _declared_type(name, dtype) for name, dtype in columns.items()}
        self._rows = 0
        self._state = "new"
        self._staging: Any = None
        self._sink: _Sink | None = None
        self._encoder: _Encoder | None = None

    @property
    def rows(self) -> int:
        """The number of rows written so far."""
        return self._rows

    def __enter__(self) -> PredictionWriter:
        if self._state != "new":
            raise RuntimeError("a PredictionWriter writes one table: make a new one for another")
        if self.path is not None:
            self._staging = staged(self.path)
            handle = self._staging.__enter__()
            self._sink = _Sink(handle.write)
        elif self.fmt in _DELIMITERS:
            self._sink = _Sink(_text_to_stdout, flush=lambda: sys.stdout.flush())
        else:
            sys.stdout.flush()  # text written before goes out before the binary file
            self._sink = _Sink(sys.stdout.buffer.write, flush=lambda: sys.stdout.buffer.flush())
        try:
            self._encoder = _encoder(self.fmt, self._sink, self._types)
        except BaseException as exc:
            self._close_staging(exc)
            raise
        self._state = "open"
        return self

    def write(self, columns: Mapping[str, Sequence[object] | np.ndarray]) -> None:
        """Write one batch of rows: ``columns`` by name, in the table's order, of equal lengths.

        Parameters
        ----------
        columns : mapping of str to array-like
            The batch's columns, each one-dimensional; the names and their order must be those
            of ``columns`` given to the writer, or else of the first batch. A batch of no rows
            writes nothing.

        Raises
        ------
        ValueError
            When the names differ from the table's or the columns are not one-dimensional and
            of one length; also when a value does not convert to its column's type in a Parquet
            or Feather file.
        twolayer.errors.DataError
            When the file cannot be written (a full disk, say).
        """
        if self._state != "open" or self._encoder is None:
            raise RuntimeError("PredictionWriter.write needs the writer open: use 'with PredictionWriter(...) as w'")
        names, arrays = _batch(columns)
        if self._names is None:
            self._names = names
        elif names != self._names:
            raise ValueError(f"columns must be {self._names}, in that order, as in every batch; got {names}")
        self._encoder.write(names, arrays)
        self._rows += len(arrays[0]) if arrays else 0

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._state = "closed"
        assert self._encoder is not None
        if exc is None:
            try:
                self._encoder.finish(self._names or [])
            except BaseException as failure:
                self._encoder.abandon()
                self._close_staging(failure)
                raise
            self._close_staging(None)
        else:
            self._encoder.abandon()
            self._close_staging(exc)

    def _close_staging(self, exc: BaseException | None) -> None:
        """End the temporary file: renamed into place without ``exc``, removed with it."""
        staging, self._staging = self._staging, None
        if staging is None:
            return
        if exc is None:
            staging.__exit__(None, None, None)
        else:
            staging.__exit__(type(exc), exc, exc.__traceback__)


# --------------------------------------------------------------------------
# Batches and sinks
# --------------------------------------------------------------------------


def _check_format(fmt: str) -> None:
    if fmt not in PREDICTION_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(PREDICTION_FORMATS)}, got {fmt!r}")


def _batch(columns: Mapping[str, Sequence[object] | np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """The names and arrays of a batch, checked: one-dimensional, of one length."""
    names = [str(name) for name in columns]
    arrays = [np.asarray(values) for values in columns.values()]
    # pyarrow takes numbers in the machine's byte order only (an .npz file may hold either).
    arrays = [v if v.dtype.isnative else v.astype(v.dtype.newbyteorder("=")) for v in arrays]
    for name, values in zip(names, arrays):
        if values.ndim != 1:
            raise ValueError(f"columns[{name!r}] must be one-dimensional, got shape {values.shape}")
    lengths = {len(values) for values in arrays}
    if len(lengths) > 1:
        shown = ", ".join(f"{name!r}: {len(values)}" for name, values in zip(names, arrays))
        raise ValueError(f"columns must all have the same length, got {shown}")
    return names, arrays


def _declared_type(name: str, dtype: npt.DTypeLike) -> np.dtype[Any]:
    declared = np.dtype(dtype)
    if declared.kind not in "fiubU":
        raise ValueError(f"columns[{name!r}] must be a float, integer, bool or str type, got {declared}")
    return declared


def _text_to_stdout(data: Any) -> None:
    # Through the text layer, wherever standard output points (a terminal, a pipe, a test's capture).
    sys.stdout.write(bytes(data).decode("utf-8"))


class _Sink:
    """Where an encoder's bytes go: a file, standard output or memory.

    pyarrow's writers take it as a Python file object; they only ever write to it.
    """

    closed = False

    def __init__(self, write: Callable[[Any], object], flush: Callable[[], object] | None = None) -> None:
        self._write = write
        self._flush = flush
        self._position = 0

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if size:
            self._write(data)
            self._position += size
        return size

    def flush(self) -> None:
        if self._flush is not None:
            self._flush()

    def tell(self) -> int:
        return self._position

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass  # what lies beneath belongs to the writer, which closes it

    def discard(self) -> None:
        """Drop everything written from now on: after a failure, closing pyarrow's writers
        still writes their files' ends, to a file that is being removed."""
        self._write = lambda data: None
        self._flush = None


class _Encoder:
    """Turns batches of columns into one format's bytes, written to a sink as they come."""

    def write(self, names: list[str], arrays: list[np.ndarray]) -> None:
        raise NotImplementedError

    def finish(self, names: list[str]) -> None:
        """Write what ends the file (the header, when no batch wrote it)."""
        raise NotImplementedError

    def abandon(self) -> None:
        """Stop after a failure, writing nothing more."""


def _encoder(fmt: str, sink: _Sink, types: Mapping[str, np.dtype[Any]] | None) -> _Encoder:
    if fmt in _DELIMITERS:
        return _TextEncoder(sink, _DELIMITERS[fmt])
    return _ArrowEncoder(sink, fmt, types)


# --------------------------------------------------------------------------
# CSV and TSV
# --------------------------------------------------------------------------


class _TextEncoder(_Encoder):
    def __init__(self, sink: _Sink, delimiter: str) -> None:
        self.sink = sink
        self.delimiter = delimiter
        self.header_written = False

    def write(self, names: list[str], arrays: list[np.ndarray]) -> None:
        if not self.header_written:
            self.sink.write(_header(names, self.delimiter))
            self.header_written = True
        n = len(arrays[0]) if arrays else 0
        for start in range(0, n, _BLOCK_ROWS):
            self.sink.write(_text_rows([values[start : start + _BLOCK_ROWS] for values in arrays], self.delimiter))
        self.sink.flush()

    def finish(self, names: list[str]) -> None:
        if not self.header_written:
            self.sink.write(_header(names, self.delimiter))
            self.header_written = True
            self.sink.flush()


def _header(names: Sequence[str], delimiter: str) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(names)
    return buffer.getvalue().encode("utf-8")


def _text_rows(arrays: list[np.ndarray], delimiter: str) -> Any:
    """The CSV or TSV lines of the rows of ``arrays``, as a buffer of UTF-8."""
    pc = _compute()
    texts = [_field_texts(values, delimiter, len(arrays) == 1) for values in arrays]
    rows = texts[0] if len(texts) == 1 else pc.binary_join_element_wise(*texts, _text_scalar(delimiter))
    rows = pc.binary_join_element_wise(rows, _text_scalar(""), _text_scalar("\n"))
    _, offsets, data = rows.buffers()
    ends = np.frombuffer(offsets, dtype=np.int64)[rows.offset : rows.offset + len(rows) + 1]
    return data[int(ends[0]) : int(ends[-1])]


def _field_texts(values: np.ndarray, delimiter: str, only_column: bool) -> Any:
    """The CSV or TSV fields of ``values``: their texts, quoted where they need it."""
    texts = _cell_texts(values)
    if values.dtype.kind in "fiub":
        # Digits, signs, points, "e", "inf", "True", "False" are never quoted; NaN is an empty field.
        return _lone_empty(texts) if only_column and values.dtype.kind == "f" else texts
    return _quoted(texts, delimiter, only_column)


def _cell_texts(values: np.ndarray) -> Any:
    """Each value's text, as ``str(value)`` (floats as ``f"{value:.6g}"``): a large_string array."""
    pa, pc = _pyarrow(), _compute()
    kind = values.dtype.kind
    if kind == "f":
        return _float_texts(values.astype(np.float64, copy=False))
    if kind in "iu":
        return pc.cast(pa.array(values), pa.large_string())
    if kind == "b":
        return pc.if_else(pa.array(values), _text_scalar("True"), _text_scalar("False"))
    if kind == "U":
        return _strings(values, pa.large_string())
    if kind == "O" and values.size:
        try:
            inferred = pa.array(values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            inferred = None
        if inferred is not None and inferred.type == pa.string() and inferred.null_count == 0:
            return inferred.cast(pa.large_string())
    return pa.array([_cell(value) for value in values], type=pa.large_string())


def _cell(value: object) -> str:
    if value is None:
        return ""  # a missing cell of a kept input column, as it was read
    if isinstance(value, (float, np.floating)):
        return "" if value != value else f"{float(value):.6g}"
    return str(value.item() if isinstance(value, np.generic) else value)


def _quoted(texts: Any, delimiter: str, only_column: bool) -> Any:
    """``texts`` quoted where Python's csv module quotes them (QUOTE_MINIMAL, doubling quotes)."""
    pa, pc = _pyarrow(), _compute()
    if texts.type != pa.large_string():
        texts = texts.cast(pa.large_string())
    special = _special_characters(delimiter)
    data = texts.buffers()[2]
    if data is not None and data.size:
        # Every character the csv module quotes for is ASCII, which UTF-8 never uses inside
        # another character: a scan of the bytes says whether any value can need quoting.
        codes = np.frombuffer(data, dtype=np.uint8)
        if np.isin(codes, np.frombuffer(special.encode("ascii"), dtype=np.uint8)).any():
            pattern = "[" + "".join(f"\\x{{{ord(c):02x}}}" for c in special) + "]"
            needs = pc.match_substring_regex(texts, pattern)
            doubled = pc.replace_substring(texts, '"', '""')
            enclosed = pc.binary_join_element_wise(_text_scalar('"'), doubled, _text_scalar('"'), _text_scalar(""))
            texts = pc.if_else(needs, enclosed, texts)
    return _lone_empty(texts) if only_column else texts


def _lone_empty(texts: Any) -> Any:
    """A row of one empty field would be an empty line, which readers skip: the csv module writes it as ``""``."""
    pc = _compute()
    return pc.if_else(pc.equal(texts, _text_scalar("")), _text_scalar('""'), texts)


@functools.cache
def _special_characters(delimiter: str) -> str:
    """The characters that make Python's csv module quote a field, found by asking it (the set
    differs between Python versions); all ASCII, which ``_quoted`` relies on."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    found = ""
    for code in range(128):
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([f"a{chr(code)}b", "c"])
        if buffer.getvalue().startswith('"'):
            found += chr(code)
    return found


def _text_scalar(text: str) -> Any:
    pa = _pyarrow()
    return pa.scalar(text, type=pa.large_string())


def _float_texts(x: np.ndarray) -> Any:
    """``f"{v:.6g}"`` of each float64 ``v`` of ``x``, and an empty field for NaN (a missing cell
    of a kept input column): a large_string array. Python's own formatting is exact by definition
    and writes some four million values a second."""
    pa = _pyarrow()
    return pa.array(["" if v != v else f"{v:.6g}" for v in x.tolist()], type=pa.large_string())


# --------------------------------------------------------------------------
# Parquet and Feather
# --------------------------------------------------------------------------


class _ArrowEncoder(_Encoder):
    """Batches as Parquet row groups or Feather (Arrow IPC file) record batches.

    The file's schema is the declared types', else the first batch's; later batches are cast
    to it."""

    def __init__(self, sink: _Sink, fmt: str, types: Mapping[str, np.dtype[Any]] | None) -> None:
        self.sink = sink
        self.fmt = fmt
        self.types = types
        self.writer: Any = None
        self.schema: Any = None

    def write(self, names: list[str], arrays: list[np.ndarray]) -> None:
        pa = _pyarrow()
        columns = [_arrow_array(values) for values in arrays]
        if self.schema is None:
            if self.types is not None:
                self.open(pa.schema([(name, _arrow_type(self.types[name])) for name in names]))
            else:
                self.open(pa.schema([(name, column.type) for name, column in zip(names, columns)]))
        columns = [_conform(name, column, field.type) for name, column, field in zip(names, columns, self.schema)]
        table = pa.Table.from_arrays(columns, schema=self.schema)
        if table.num_rows:
            if self.fmt == "parquet":
                self.writer.write_table(table)
            else:
                self.writer.write_table(table, max_chunksize=_FEATHER_CHUNK)
            self.sink.flush()

    def open(self, schema: Any) -> None:
        pa = _pyarrow()
        self.schema = schema
        if self.fmt == "parquet":
            import pyarrow.parquet as pq  # type: ignore[import-untyped]

            self.writer = pq.ParquetWriter(self.sink, schema)
        else:
            # Compressed as pyarrow's write_feather compresses Feather files.
            compression = "lz4" if pa.Codec.is_available("lz4_frame") else None
            options = pa.ipc.IpcWriteOptions(compression=compression)
            self.writer = pa.ipc.new_file(self.sink, schema, options=options)

    def finish(self, names: list[str]) -> None:
        pa = _pyarrow()
        if self.schema is None:
            types = self.types or {}
            self.open(pa.schema([(name, _arrow_type(types[name]) if name in types else pa.null()) for name in names]))
        self.writer.close()
        self.sink.flush()

    def abandon(self) -> None:
        self.sink.discard()
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # a writer that failed half-way may not close; its file is gone anyway
                pass


def _arrow_array(values: np.ndarray) -> Any:
    """``values`` as pyarrow would type their Python values: int64, float64, bool, string."""
    pa = _pyarrow()
    kind = values.dtype.kind
    if kind == "f":
        return pa.array(values.astype(np.float64, copy=False))
    if kind in "iu":
        if kind == "u" and values.dtype.itemsize == 8 and values.size and values.max() > np.iinfo(np.int64).max:
            return pa.array(values)  # past int64, as pyarrow types such Python integers
        return pa.array(values.astype(np.int64, copy=False))
    if kind == "b":
        return pa.array(values)
    if kind == "U":
        return _strings(values, pa.string())
    return pa.array(values.tolist())


def _strings(values: np.ndarray, type: Any) -> Any:
    """A NumPy string array as an Arrow one of ``type``, each string whole."""
    pa, pc = _pyarrow(), _compute()
    strings = pa.array(values, type=type)
    # pyarrow ends a NumPy string at its first NUL character, where str() keeps what follows.
    if np.array_equal(np.char.str_len(values), pc.utf8_length(strings).to_numpy(zero_copy_only=False)):
        return strings
    return pa.array(values.tolist(), type=type)


def _arrow_type(dtype: np.dtype[Any]) -> Any:
    pa = _pyarrow()
    return {"f": pa.float64(), "i": pa.int64(), "u": pa.int64(), "b": pa.bool_(), "U": pa.string()}[dtype.kind]


def _conform(name: str, column: Any, wanted: Any) -> Any:
    pa = _pyarrow()
    if column.type == wanted:
        return column
    try:
        return column.cast(wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ValueError(
            f"columns[{name!r}] holds {column.type} values, which do not convert to the file's {wanted}: {exc}"
        ) from None


def _pyarrow() -> Any:
    # pyarrow loads in a fraction of a second; only writing predictions needs it here.
    import pyarrow

    return pyarrow


def _compute() -> Any:
    import pyarrow.compute  # type: ignore[import-untyped]

    return pyarrow.compute
