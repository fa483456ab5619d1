"""Parquet files, Feather files and Arrow IPC streams: the schema first, then only the columns needed.

These formats carry their column types, so nothing is sniffed: a column's
kind is its type's, and labels come from integers, booleans, whole floats or
text (``_whole_labels`` serves a ``.npz``'s labels too).
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from twolayer.errors import DataError
from twolayer.io.tables._columns import _Options
from twolayer.io.tables._features import _Features, _finish, _first, _indicator_column, _Place, _row_at, _text_cells
from twolayer.io.tables._messages import _first_line, _flag
from twolayer.io.tables._result import Column, Table
from twolayer.io.tables._source import _FORMAT_NAMES, _Input, _pyarrow, _seekable

_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def _arrow_kind(dtype: Any) -> str:
    pa = _pyarrow()
    types = pa.types
    if types.is_dictionary(dtype):
        return _arrow_kind(dtype.value_type)
    if types.is_integer(dtype) or types.is_floating(dtype) or types.is_decimal(dtype):
        return "numeric"
    if types.is_boolean(dtype):
        return "boolean"
    if types.is_string(dtype) or types.is_large_string(dtype) or getattr(types, "is_string_view", bool)(dtype):
        return "text"
    if types.is_null(dtype):
        return "numeric"  # no value at all: refused below as missing
    return str(dtype)


class _ArrowRead:
    """A Parquet, Feather or Arrow IPC source with its columns planned: its rows, whole or in
    batches, and each as a :class:`Table`."""

    def __init__(self, inp: _Input, fmt: str, options: _Options) -> None:
        self.inp, self.fmt, self.options = inp, fmt, options
        self.source = _ArrowSource(inp, fmt)
        schema = self.source.schema()
        names = [n for n in schema.names if not _PANDAS_INDEX.fullmatch(n)]
        if len(set(names)) != len(names):
            twice = next(n for n in names if names.count(n) > 1)
            raise DataError(f"{inp.source}: column {twice!r} appears twice")
        self.names = names
        self.plan = plan = options.plan(inp.source, names)
        self.kinds = kinds = {name: _arrow_kind(schema.field(name).type) for name in names}
        for j in plan.features:
            if kinds[names[j]] not in ("numeric", "boolean", "text"):
                flag = _flag(names[j])
                raise DataError(
                    f"{inp.source}: column {names[j]!r} holds {kinds[names[j]]} values, which are not features; "
                    f"leave it out with --drop {flag}"
                )
        self.read_target = plan.target is not None and options.require_target
        wanted = [names[j] for j in plan.features]
        wanted += [names[j] for j in (plan.target if self.read_target else None, plan.id) if j is not None]
        if self.read_target:
            wanted += [names[j] for j in plan.targets]
        self.wanted = list(dict.fromkeys(wanted))

    def tables(self, batch_rows: int | None = None) -> Iterator[tuple[int, Any]]:
        """The rows as (index of the first row, pyarrow table or record batch)."""
        start = 0
        parts = [self.source.read(self.wanted)] if batch_rows is None else self.source.batches(self.wanted, batch_rows)
        for part in parts:
            if part.num_rows:
                yield start, part
                start += part.num_rows
        if start == 0:
            raise DataError(f"{self.inp.source} has no rows")

    def result(self, table: Any, offset: int = 0) -> Table:
        """The :class:`Table` of rows read (the first of them the source's row ``offset``, from 0)."""
        pa = _pyarrow()
        names, plan, kinds, source = self.names, self.plan, self.kinds, self.inp.source

        def at(row: int, column: str) -> str:
            return f"{source}, row {row + offset + 1}, column {column!r}"

        arrays = []
        for j in plan.features:
            column = table.column(names[j])
            if kinds[names[j]] == "text":
                column = _text_cells(column, ())
            else:
                if pa.types.is_dictionary(column.type):
                    column = column.cast(column.type.value_type)
                # Integers past 2**53 round to the nearest float64, as NumPy's astype rounds them.
                column = column.cast(pa.float64(), safe=False)
            arrays.append(column)
        model = self.options.encoding
        encoded_names = list(model.names) if model is not None else [names[j] for j in plan.features]
        features = _Features(
            encoded_names, [names[j] for j in plan.features], arrays, [kinds[names[j]] for j in plan.features]
        )
        y = None
        if self.read_target and plan.targets:
            y = np.column_stack(
                [
                    _indicator_column(
                        _row_at(at, names[j]),
                        _arrow_labels(source, names[j], table.column(names[j]), offset),
                    )
                    for j in plan.targets
                ]
            )
        elif self.read_target:
            assert plan.target is not None
            y = _arrow_labels(source, names[plan.target], table.column(names[plan.target]), offset)
        ids = None
        if plan.id is not None:
            column = table.column(names[plan.id])
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            ids = np.asarray(column.to_numpy(zero_copy_only=False))
            if ids.dtype == object:
                ids = ids.astype(str)
        encoded = _finish(_Place(source, at), features, y, ids, self.options)
        columns = tuple(Column(name, plan.role(j), kinds[name]) for j, name in enumerate(names))
        return encoded.table(plan, names, columns, self.inp, "parquet" if self.fmt == "parquet" else "feather")


def _read_arrow(inp: _Input, fmt: str, options: _Options) -> Table:
    read = _ArrowRead(inp, fmt, options)
    ((_, table),) = read.tables()
    return read.result(table)


class _ArrowSource:
    """A Parquet file, Feather file or Arrow IPC stream: its schema, then only the columns needed."""

    def __init__(self, inp: _Input, fmt: str) -> None:
        self.inp = inp
        self.fmt = fmt
        self.what = _FORMAT_NAMES[fmt].split(" ", 1)[1]
        self.data = _seekable(inp)

    def _source(self) -> Any:
        if isinstance(self.data, io.BytesIO):
            self.data.seek(0)
        return self.data

    @contextlib.contextmanager
    def _refusals(self) -> Iterator[None]:
        pa = _pyarrow()
        try:
            yield
        except (pa.ArrowException, OSError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{self.inp.source} is not a readable {self.what} ({_first_line(exc)})") from None

    def schema(self) -> Any:
        pa = _pyarrow()
        with self._refusals():
            if self.fmt == "parquet":
                import pyarrow.parquet as pq  # type: ignore[import-untyped]

                return pq.read_schema(self._source())

            if self.fmt == "arrow-stream":
                with pa.ipc.open_stream(self._source()) as reader:
                    return reader.schema
            try:
                return pa.ipc.open_file(self._source()).schema
            except pa.ArrowInvalid:  # Feather's first version is no IPC file: read it whole
                return self.read(None).schema

    def read(self, columns: list[str] | None) -> Any:
        pa = _pyarrow()
        with self._refusals():
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                return pq.read_table(self._source(), columns=columns)
            if self.fmt == "arrow-stream":
                with pa.ipc.open_stream(self._source()) as reader:
                    table = reader.read_all()
                return table if columns is None else table.select(columns)
            import pyarrow.feather  # type: ignore[import-untyped]

            return pyarrow.feather.read_table(self._source(), columns=columns)

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[Any]:
        """The columns, ``batch_rows`` rows at a time, reading no more of the source than each needs."""
        pa = _pyarrow()
        with self._refusals():
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                yield from pq.ParquetFile(self._source()).iter_batches(batch_size=batch_rows, columns=columns)
                return
            if self.fmt == "arrow-stream":
                with pa.ipc.open_stream(self._source()) as reader:
                    for batch in reader:
                        part = pa.Table.from_batches([batch.select(columns)])
                        yield from part.to_batches(max_chunksize=batch_rows)
                return
            # A Feather file by path is mapped, not read: a batch costs only the pages it touches.
            data = pa.memory_map(self.data) if isinstance(self.data, str) else self._source()
            try:
                reader = pa.ipc.open_file(data)
            except pa.ArrowInvalid:  # Feather's first version is no IPC file: read it whole
                yield from self.read(columns).to_batches(max_chunksize=batch_rows)
                return
            for i in range(reader.num_record_batches):
                yield from pa.Table.from_batches([reader.get_batch(i).select(columns)]).to_batches(
                    max_chunksize=batch_rows
                )


def _arrow_labels(source: str, name: str, column: Any, offset: int = 0) -> np.ndarray:
    pa = _pyarrow()
    if column.null_count:
        row = _first(column.is_null())
        raise DataError(f"{source}, row {row + offset + 1}, column {name!r}: the label is missing")
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    kind = _arrow_kind(column.type)
    if kind == "text":
        return np.asarray(column.to_numpy(zero_copy_only=False)).astype(str)
    if pa.types.is_integer(column.type):
        try:
            return np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)
        except pa.ArrowInvalid:  # uint64 beyond int64: the numbers as text
            return np.asarray([str(v) for v in column.to_pylist()])
    if kind in ("numeric", "boolean"):
        values = np.asarray(column.to_numpy(zero_copy_only=False))
        return _whole_labels(source, values, f"column {name!r}, row ", offset)
    raise DataError(f"{source}: column {name!r} holds {kind} values; class labels must be integers or text")


def _whole_labels(source: str, y: np.ndarray, where: str, offset: int = 0) -> np.ndarray:
    """Integer labels from booleans and whole floats; anything else refused, naming the first bad one."""
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    y = y.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
    if bad.size:
        i = int(bad[0])
        place = f"{where}{i + offset + 1}" if where.endswith("row ") else f"{where}[{i}]"
        finite = np.isfinite(y[i])
        what = f"= {y[i].item()!r} is not a whole number" if finite else f"is {y[i].item()}"
        raise DataError(f"{source}: {place} {what}; class labels must be integers or strings")
    if np.abs(y).max(initial=0) > 2**53:
        raise DataError(f"{source}: labels beyond 2**53 held as floats are not exact; write them as integers")
    return y.astype(np.int64)
