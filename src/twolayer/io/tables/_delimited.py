"""Reading delimited text with pyarrow, whole or in batches, once its dialect is known.

pyarrow reads fast but names a failure by a block of bytes: this module reads
a column again to tell booleans and text that the sample took for numbers
from a typo among numbers, and finds the row again with Python's parser to
name its line, row and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

import numpy as np

from twolayer.errors import DataError
from twolayer.io.tables._columns import _Options
from twolayer.io.tables._features import _Features, _finish, _first, _indicator_column, _Place, _row_at, _text_cells
from twolayer.io.tables._messages import _first_line, _show
from twolayer.io.tables._result import Column, Table
from twolayer.io.tables._sniff import (
    _CHUNK,
    _FALSE,
    _NUMBER,
    _TRUE,
    MISSING_VALUES,
    _chunks,
    _Dialect,
    _guess_kind,
    _Lines,
    _rows,
    _sniff,
)
from twolayer.io.tables._source import _compute, _Input, _pyarrow

# A label that is an integer written the one way int() writes it back.
_CANONICAL_INTEGER = r"^(?:0|-?[1-9][0-9]{0,18})$"


class _Body:
    """The data rows for pyarrow: the content after the header, comment lines left out.

    The filter costs one search per megabyte when no line starts with the
    comment character.
    """

    def __init__(self, stream: BinaryIO, comment: str | None) -> None:
        self._stream = stream
        self._marker = comment.encode("utf-8") if comment is not None else None
        self._line_start = True
        self._skipping = False
        self._pending = bytearray()
        self._done = False
        self.closed = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def _filtered(self, raw: bytes) -> bytes:
        marker = self._marker
        if marker is None:
            return raw
        if not self._skipping and not (self._line_start and raw.startswith(marker)) and b"\n" + marker not in raw:
            self._line_start = raw.endswith(b"\n")
            return raw
        out = bytearray()
        i, n = 0, len(raw)
        while i < n:
            if self._skipping:
                j = raw.find(b"\n", i)
                if j < 0:
                    return bytes(out)
                i, self._skipping, self._line_start = j + 1, False, True
            elif self._line_start and raw.startswith(marker, i):
                self._skipping = True
            else:
                j = raw.find(b"\n", i)
                if j < 0:
                    out += raw[i:]
                    self._line_start = False
                    return bytes(out)
                out += raw[i : j + 1]
                i, self._line_start = j + 1, True
        return bytes(out)

    def read(self, size: int = -1) -> bytes:
        if not self._pending and not self._done and size > 0:
            # The usual case, a block that holds no comment: handed on as read, with no copy.
            raw = bytes(self._stream.read(size))
            filtered = self._filtered(raw)
            if len(filtered) == size or not raw:
                self._done = not raw
                return filtered
            self._pending += filtered
        while not self._done and (size < 0 or len(self._pending) < size):
            raw = bytes(self._stream.read(_CHUNK))
            if not raw:
                self._done = True
                break
            self._pending += self._filtered(raw)
        if size < 0 or size >= len(self._pending):
            out, self._pending = bytes(self._pending), bytearray()
        else:
            out = bytes(self._pending[:size])
            del self._pending[:size]
        return out


class _DelimitedFile:
    """A delimited file once sniffed: reading columns with pyarrow, and finding rows again for messages."""

    def __init__(self, inp: _Input, dialect: _Dialect, comment: str | None) -> None:
        self.inp = inp
        self.dialect = dialect
        self.comment = comment
        self.multiline = dialect.multiline

    def read(self, types: dict[str, Any], *, strings_can_be_null: bool = False) -> Any:
        """The columns named in ``types``, converted to those types (pyarrow raises where one cannot be)."""
        import pyarrow.csv as pa_csv  # type: ignore[import-untyped]

        dialect = self.dialect
        with self.inp.open() as stream:
            head = bytes(stream.read(dialect.start))
            if len(head) < dialect.start:  # pragma: no cover - the content changed since it was sniffed
                raise DataError(f"{self.inp.source} changed while it was read")
            return pa_csv.read_csv(
                _Body(stream, self.comment),
                read_options=pa_csv.ReadOptions(column_names=dialect.names, encoding="utf8"),
                parse_options=self._parse_options(),
                convert_options=self._convert_options(types, strings_can_be_null=strings_can_be_null),
            )

    def _parse_options(self) -> Any:
        import pyarrow.csv as pa_csv

        return pa_csv.ParseOptions(
            delimiter=self.dialect.delimiter,
            quote_char='"',
            double_quote=True,
            newlines_in_values=self.multiline,
            ignore_empty_lines=True,
        )

    def _convert_options(self, types: dict[str, Any], *, strings_can_be_null: bool) -> Any:
        import pyarrow.csv as pa_csv

        return pa_csv.ConvertOptions(
            column_types=dict(types),
            include_columns=[n for n in self.dialect.names if n in types],
            null_values=list(MISSING_VALUES),
            true_values=list(_TRUE),
            false_values=list(_FALSE),
            strings_can_be_null=strings_can_be_null,
            quoted_strings_can_be_null=False,
            check_utf8=True,
        )

    def batches(self, types: dict[str, Any], batch_bytes: int) -> Iterator[Any]:
        """The columns named in ``types`` as record batches of about ``batch_bytes`` of text each."""
        import pyarrow.csv as pa_csv

        dialect = self.dialect
        with self.inp.open() as stream:
            head = bytes(stream.read(dialect.start))
            if len(head) < dialect.start:  # pragma: no cover - the content changed since it was sniffed
                raise DataError(f"{self.inp.source} changed while it was read")
            reader = pa_csv.open_csv(
                _Body(stream, self.comment),
                read_options=pa_csv.ReadOptions(column_names=dialect.names, encoding="utf8", block_size=batch_bytes),
                parse_options=self._parse_options(),
                convert_options=self._convert_options(types, strings_can_be_null=False),
            )
            yield from reader

    def data_rows(self) -> Iterator[tuple[int, list[str]]]:
        """Every data row (its end line and cells), parsed again by Python's csv module: for messages only."""
        with self.inp.open() as stream:
            lines = _Lines(self.inp.source, _chunks(stream), self.comment)
            for line, row in _rows(lines, self.dialect.delimiter):
                if line > self.dialect.header_line:
                    yield line, row

    def where(self, row: int) -> tuple[int, list[str]] | None:
        """The line a data row (0-based) ends on and its cells, when Python's parser finds it too."""
        for r, (line, cells) in enumerate(self.data_rows()):
            if r == row:
                return line, cells
        return None

    def at(self, row: int, column: str | None = None) -> str:
        """``'<file>, line L, column C'`` for a data row (0-based)."""
        found = self.where(row)
        place = f", line {found[0]}" if found else f", data row {row + 1}"
        return f"{self.inp.source}{place}" + (f", column {column!r}" if column is not None else "")

    def row_note(self, row: int) -> str:
        below = "below the header" if self.dialect.header else "of a file without a header"
        return f"data row {row + 1} {below}"

    def cell(self, row: int, column: str) -> str | None:
        found = self.where(row)
        j = self.dialect.names.index(column)
        if found is None or len(found[1]) <= j:
            return None
        return found[1][j]


class _DelimitedRead:
    """A delimited file sniffed and its columns planned: its rows as pyarrow tables, whole or in
    batches, and each as a :class:`Table`."""

    def __init__(
        self, inp: _Input, options: _Options, *, sep: str | None, header: bool | None, comment: str | None
    ) -> None:
        pa = _pyarrow()
        dialect = _sniff(inp, sep, header, comment)
        names = dialect.names
        if len(names) < 2 and options.model_features is None:
            why = (
                f"split at {sep!r} it has one"
                if sep is not None
                else "no comma, tab, semicolon or | separates them (name the separator with --sep)"
            )
            raise DataError(
                f"{inp.source} has a single column ({_show(names[0])}): expected feature columns and a target "
                f"column; {why}"
            )
        self.inp, self.options, self.dialect, self.names = inp, options, dialect, names
        self.plan = plan = options.plan(inp.source, names, named=dialect.header)
        self.file = _DelimitedFile(inp, dialect, comment)
        # The names the encoding knows the features by: a model's, when it matched them by position.
        model = options.encoding
        self.encoded_names = list(model.names) if model is not None else [names[j] for j in plan.features]
        model_kinds = dict(zip(self.encoded_names, model.kinds)) if model is not None else {}

        self.read_target = plan.target is not None and options.require_target
        self.kinds: dict[str, str] = {}
        for j, name in zip(plan.features, self.encoded_names):
            self.kinds[names[j]] = "text" if model_kinds.get(name) == "text" else _guess_kind(dialect.sample, j)
        self.types: dict[str, Any] = {name: _ARROW_TYPES[kind]() for name, kind in self.kinds.items()}
        if self.read_target:
            assert plan.target is not None
            for j in plan.targets or (plan.target,):
                self.types[names[j]] = pa.string()
        if plan.id is not None:
            self.types[names[plan.id]] = pa.string()

    def tables(self, batch_bytes: int | None = None) -> Iterator[tuple[int, Any]]:
        """The rows as (index of the first row, pyarrow table): the whole file at once, or in batches.

        A column pyarrow cannot read as its sample suggested is looked at on its
        own: booleans and text are read again as such, a typo among numbers is
        refused. Reading starts again then, and rows already handed on are skipped.
        """
        pa = _pyarrow()
        file, kinds, types = self.file, self.kinds, self.types
        done = 0
        while True:
            try:
                start = 0
                parts = [file.read(types)] if batch_bytes is None else file.batches(types, batch_bytes)
                for part in parts:
                    stop = start + part.num_rows
                    if stop > done:
                        yield done, part.slice(done - start)
                        done = stop
                    start = stop
                break
            except pa.ArrowInvalid as exc:
                column = _failed_column(exc, self.names)
                if column is not None and kinds.get(column) in ("numeric", "boolean"):
                    kind = _classify(file, column, exc)
                    if kind != kinds[column]:
                        kinds[column] = kind
                        types[column] = _ARROW_TYPES[kind]()
                        continue
                error = _arrow_csv_error(file, exc, column)
                if error is None and not file.multiline:
                    # No row is too short or too long for Python's parser: a quoted field
                    # beyond the sniffed lines holds a line break.
                    file.multiline = True
                    continue
                raise (error or _unreadable(file, exc)) from None
        if done == 0:
            raise DataError(f"{self.inp.source} has a header but no data rows")

    def result(self, table: Any, offset: int = 0) -> Table:
        """The :class:`Table` of rows read (the first of them the file's data row ``offset``, from 0)."""
        pa = _pyarrow()
        names, plan, kinds, file = self.names, self.plan, self.kinds, self.file
        arrays = []
        for j in plan.features:
            column = table.column(names[j])
            if kinds[names[j]] == "text":
                column = _text_cells(column, MISSING_VALUES)
            elif kinds[names[j]] == "boolean":
                column = column.cast(pa.float64())
            arrays.append(column)
        features = _Features(
            self.encoded_names, [names[j] for j in plan.features], arrays, [kinds[names[j]] for j in plan.features]
        )
        place = _Place(
            self.inp.source,
            lambda row, column: file.at(row + offset, column),
            lambda row: file.row_note(row + offset),
            lambda row, column: file.cell(row + offset, column),
        )
        y = None
        if self.read_target and plan.targets:
            y = np.column_stack(
                [
                    _indicator_column(
                        _row_at(place.at, names[j]),
                        _text_labels(place, names[j], table.column(names[j])),
                    )
                    for j in plan.targets
                ]
            )
        elif self.read_target:
            assert plan.target is not None
            y = _text_labels(place, names[plan.target], table.column(names[plan.target]))
        ids = _strings(table.column(names[plan.id])) if plan.id is not None else None
        encoded = _finish(place, features, y, ids, self.options)

        columns = []
        for j, name in enumerate(names):
            role = plan.role(j)
            what = kinds.get(name)
            if role == "target":
                what = None if y is None else ("numeric" if y.dtype.kind == "i" else "text")
                if y is not None and plan.targets:
                    what = "boolean"  # 0/1 or true/false, one label of a multilabel target
            elif role == "id":
                what = "text"
            columns.append(Column(name, role, what))
        return encoded.table(
            plan, names, columns, self.inp, "csv", delimiter=self.dialect.delimiter, header=self.dialect.header
        )


def _read_delimited(
    inp: _Input, options: _Options, *, sep: str | None, header: bool | None, comment: str | None
) -> Table:
    read = _DelimitedRead(inp, options, sep=sep, header=header, comment=comment)
    ((_, table),) = read.tables()
    return read.result(table)


def _arrow_type(name: str) -> Callable[[], Any]:
    return lambda: getattr(_pyarrow(), name)()


_ARROW_TYPES = {"numeric": _arrow_type("float64"), "boolean": _arrow_type("bool_"), "text": _arrow_type("string")}


def _text_labels(place: _Place, name: str, column: Any) -> np.ndarray:
    """Labels as written; integers only when every one is written as int() writes it back."""
    pa = _pyarrow()
    pc = _compute()
    trimmed = pc.utf8_trim_whitespace(column)
    empty = pc.equal(trimmed, "")
    if pc.any(empty).as_py():
        row = _first(empty)
        raise DataError(f"{place.at(row, name)}: the label is empty{place.tail(row)}")
    if pc.all(pc.match_substring_regex(trimmed, _CANONICAL_INTEGER)).as_py():
        try:
            return np.asarray(pc.cast(trimmed, pa.int64()).to_numpy(), dtype=np.int64)
        except pa.ArrowInvalid:  # beyond int64: they stay text
            pass
    return np.asarray(trimmed.to_numpy(zero_copy_only=False)).astype(str)


def _strings(column: Any) -> np.ndarray:
    pc = _compute()
    return np.asarray(pc.utf8_trim_whitespace(column).to_numpy(zero_copy_only=False)).astype(str)


_FAILED_COLUMN = re.compile(r"In CSV column #(\d+)")
_WRONG_COUNT = re.compile(r"Expected (\d+) columns, got (\d+)")


def _failed_column(exc: Exception, names: Sequence[str]) -> str | None:
    match = _FAILED_COLUMN.search(str(exc))
    if match is None or int(match.group(1)) >= len(names):
        return None
    return names[int(match.group(1))]


def _classify(file: _DelimitedFile, column: str, failure: Exception) -> str:
    """What a feature column that pyarrow could not read as it was asked holds: "boolean" or "text".

    A column of mostly numbers with a word among them is a typo, not text: a
    DataError names the first word.
    """
    pa = _pyarrow()
    pc = _compute()
    values = file.read({column: pa.string()}, strings_can_be_null=True).column(column)
    trimmed = pc.utf8_trim_whitespace(values)
    present = pc.invert(pc.is_null(trimmed))
    n_present = pc.sum(present).as_py() or 0
    if n_present and pc.all(pc.or_kleene(pc.is_null(trimmed), pc.is_in(trimmed, pa.array(_TRUE + _FALSE)))).as_py():
        return "boolean"
    is_number = pc.fill_null(pc.match_substring_regex(trimmed, _NUMBER, ignore_case=True), True)
    n_numbers = pc.sum(pc.and_(is_number, present)).as_py() or 0
    if n_numbers and n_numbers >= n_present - n_numbers and n_numbers < n_present:
        row = _first(pc.invert(is_number))
        raise DataError(
            f"{file.at(row, column)}: expected a number, got {_show(str(trimmed[row].as_py()))} ({file.row_note(row)})"
        )
    if n_numbers == n_present:
        # Every cell looks like a number, yet pyarrow read one as none: its word stands.
        raise DataError(f"{file.inp.source}, column {column!r}: not readable as numbers ({_first_line(failure)})")
    return "text"


def _unreadable(file: _DelimitedFile, exc: Exception) -> DataError:
    return DataError(f"{file.inp.source}: not readable as delimited text ({_first_line(exc)})")


def _arrow_csv_error(file: _DelimitedFile, exc: Exception, column: str | None) -> DataError | None:
    """The DataError for pyarrow's refusal; ``None`` for a row of the wrong width that Python's parser reads."""
    source = file.inp.source
    message = _first_line(exc)
    if "Empty CSV file" in message:
        return DataError(f"{source} has a header but no data rows")
    if "invalid UTF8" in message or "invalid utf8" in message.lower():
        where = f", column {column!r}" if column is not None else ""
        return DataError(f"{source}{where}: not UTF-8 text")
    if _WRONG_COUNT.search(message):
        width = len(file.dialect.names)
        for line, row in file.data_rows():
            if len(row) != width:
                against = "the header has" if file.dialect.header else "the first row has"
                return DataError(f"{source}, line {line}: {len(row)} fields, but {against} {width}")
        return None
    return _unreadable(file, exc)
