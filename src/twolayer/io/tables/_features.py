"""From feature columns to ``X``, the same for every format.

Each reader hands over its feature columns as pyarrow arrays and a way to
name a cell (``_Place``); from there the checks (no NaN or infinity),
the missing-cell policy, the encoding (:mod:`twolayer.io.encoding`) and
their messages are shared, so a CSV and a Parquet file with the same values
give the same ``X`` and the same refusals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twolayer.errors import DataError, format_bytes
from twolayer.io.encoding import ColumnKind, FeatureEncoding, fit_encoding, id_like_columns
from twolayer.io.tables._columns import _Options, _Plan
from twolayer.io.tables._messages import _flag, _show
from twolayer.io.tables._result import Column, Table
from twolayer.io.tables._source import _compute, _Input, _pyarrow
from twolayer.resources import available_memory


@dataclass(frozen=True)
class _Place:
    """How messages name a cell of one source.

    ``at(row, column)`` gives ``'<file>, line L, column C'`` (or the format's
    equivalent) for a 0-based data row; ``note(row)`` an afterthought such as
    ``'data row 3 below the header'``; ``cell(row, column)`` the cell as
    written, when the format has text to show.
    """

    source: str
    at: Callable[[int, str], str]
    note: Callable[[int], str] | None = None
    cell: Callable[[int, str], str | None] | None = None

    def tail(self, row: int, *more: str) -> str:
        notes = [*more, *([self.note(row)] if self.note is not None else [])]
        return f" ({'; '.join(notes)})" if notes else ""


@dataclass(frozen=True, eq=False)
class _Features:
    """The feature columns as read, before encoding.

    ``names`` are what the encoding calls them (a model's names when it
    matched them by position), ``labels`` what the source calls them (for
    messages); ``arrays`` are pyarrow arrays, float64 or string, with nulls
    where a cell is missing; ``kinds`` are "numeric", "boolean" or "text".
    """

    names: list[str]
    labels: list[str]
    arrays: list[Any]
    kinds: list[str]


@dataclass(frozen=True, eq=False)
class _Encoded:
    X: np.ndarray
    y: np.ndarray | None
    ids: np.ndarray | None
    encoding: FeatureEncoding | None
    n_dropped: int
    warnings: tuple[str, ...]
    unseen: dict[str, int]
    raw: dict[str, np.ndarray] | None

    def feature_names(self, plain: tuple[str, ...] | None) -> tuple[str, ...] | None:
        """The names of X's columns: the encoding's inputs, else the plain feature names."""
        return tuple(self.encoding.input_names) if self.encoding is not None else plain

    def table(
        self, plan: _Plan, names: Sequence[str], columns: Sequence[Column], inp: _Input, fmt: str, **layout: Any
    ) -> Table:
        """The :class:`Table` of these rows of ``inp``, its columns chosen by ``plan``."""
        return Table(
            X=self.X,
            y=self.y,
            ids=self.ids,
            feature_names=self.feature_names(plan.feature_names(names)),
            target_name=names[plan.target] if plan.target is not None and not plan.targets else None,
            target_choice=plan.target_choice,
            target_names=tuple(names[j] for j in plan.targets) if plan.targets else None,
            id_name=names[plan.id] if plan.id is not None else None,
            columns=tuple(columns),
            source=inp.source,
            format=fmt,
            compression=inp.compression,
            encoding=self.encoding,
            n_dropped=self.n_dropped,
            warnings=self.warnings,
            unseen=self.unseen,
            raw=self.raw,
            **layout,
        )


_TRUE_FALSE = {"1": 1, "0": 0, "true": 1, "false": 0}


def _row_at(at: Callable[[int, str], str], name: str) -> Callable[[int], str]:
    """``at`` for the column ``name``: the place of a 0-based row in it."""
    return lambda row: at(row, name)


def _indicator_column(at: Callable[[int], str], labels: np.ndarray) -> np.ndarray:
    """One label column of a multilabel target as int64 0 and 1: from 0/1, booleans or ``true``/``false``.

    ``labels`` are as a reader returns them (int64, or text); ``at(row)`` names a
    0-based row for the message that refuses anything else.
    """
    if labels.dtype.kind in "iu":
        bad = np.flatnonzero((labels != 0) & (labels != 1))
        values = labels.astype(np.int64)
    else:
        text = np.char.lower(np.char.strip(labels.astype(str)))
        bad = np.flatnonzero(~np.isin(text, list(_TRUE_FALSE)))
        values = np.isin(text, ["1", "true"]).astype(np.int64)
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{at(row)}: {labels[row].item()!r} is not a label of a multilabel target (expected 0 or 1, true or false)"
        )
    return values


def _text_cells(column: Any, missing_words: Sequence[str]) -> Any:
    """A string column trimmed, with its missing cells (and those reading one of ``missing_words``) null."""
    pa = _pyarrow()
    pc = _compute()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())
    trimmed = pc.utf8_trim_whitespace(column)
    words = pc.is_in(trimmed, pa.array(["", *missing_words], type=trimmed.type))
    return pc.if_else(words, pa.scalar(None, type=trimmed.type), trimmed)


def _null_mask(column: Any) -> np.ndarray:
    return np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _as_numpy(column: Any, kind: str) -> np.ndarray:
    """float64 with NaN for a missing cell, or objects with ``None``: what :mod:`twolayer.io.encoding` takes."""
    if kind == "text":
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _examples(column: Any, limit: int = 3) -> str:
    values = column.drop_null().slice(0, 200).to_pylist()
    return ", ".join(_show(str(v), 20) for v in list(dict.fromkeys(values))[:limit])


def _finish(
    place: _Place,
    features: _Features,
    y: np.ndarray | None,
    ids: np.ndarray | None,
    options: _Options,
) -> _Encoded:
    """Refuse non-finite numbers and (under the policy) missing cells, drop or fill, encode: ``X``."""
    pa = _pyarrow()
    pc = _compute()
    source = place.source
    arrays = list(features.arrays)
    model = options.encoding
    if model is not None:
        for name, label, kind, array in zip(features.names, features.labels, features.kinds, list(arrays)):
            wanted = dict(zip(model.names, model.kinds))[name]
            if wanted == "numeric" and kind == "text":
                raise DataError(
                    f"{source}: column {label!r} holds text ({_examples(array)}), but the model reads numbers from it"
                )
            if wanted == "text" and kind != "text":
                arrays[features.names.index(name)] = _text_cells(array, ())
        kinds = ["text" if k == "text" else "numeric" for k in model.kinds]
        policy = model.missing
    else:
        kinds = ["text" if k == "text" else "numeric" for k in features.kinds]
        policy = options.missing

    for label, kind, array in zip(features.labels, kinds, arrays):
        if kind != "numeric":
            continue
        bad = pc.invert(pc.fill_null(pc.is_finite(array), True))
        if pc.any(bad).as_py():
            row = _first(bad)
            what = "NaN" if np.isnan(array[row].as_py()) else "infinity"
            others = int(pc.sum(bad).as_py()) - 1
            more = [f"and {others} more non-finite cells in this column"] if others else []
            raise DataError(f"{place.at(row, label)}: {what} is not allowed{place.tail(row, *more)}")

    masks = [_null_mask(array) if array.null_count else None for array in arrays]
    fills = policy in ("mean", "median", "most-frequent")
    n_rows = len(arrays[0]) if arrays else 0
    n_dropped = 0
    if any(m is not None for m in masks) and not fills:
        if policy == "drop" and model is None:
            keep = ~np.logical_or.reduce([m for m in masks if m is not None])
            if not keep.any():
                raise DataError(f"{source}: every row has a missing feature cell, so --missing drop leaves none")
            n_dropped = int(n_rows - keep.sum())
            kept = pa.array(keep)
            arrays = [array.filter(kept) for array in arrays]
            y = y[keep] if y is not None else None
            ids = ids[keep] if ids is not None else None
            masks = [None] * len(arrays)
        else:
            row, k = min((int(np.flatnonzero(m)[0]), k) for k, m in enumerate(masks) if m is not None)
            label = features.labels[k]
            written = place.cell(row, label) if place.cell is not None else None
            if place.cell is None:
                got = "a missing value"
            else:
                got = "an empty cell" if not written or not written.strip() else _show(written.strip())
            if model is None:
                advice = "to train anyway, choose --missing drop, mean, median or most-frequent"
            else:
                advice = (
                    f"the model was trained with --missing {policy}, which fills no cells: "
                    "train it with --missing mean, median or most-frequent to predict such rows"
                )
            expected = "a value" if kinds[k] == "text" else "a number"
            raise DataError(
                f"{place.at(row, label)}: expected {expected}, got {got}{place.tail(row, 'the first missing cell')}; "
                f"{advice}"
            )

    plain = all(k == "numeric" for k in kinds) and not any(m is not None for m in masks)
    # The columns as NumPy arrays only where the encoding needs them: a table of numbers with no
    # gap under the "error" policy goes straight from pyarrow into X, without a second copy.
    needed = options.keep_raw or not plain or (model is None and policy != "error")
    raw = {name: _as_numpy(a, k) for name, a, k in zip(features.names, arrays, kinds)} if needed else {}
    warnings: list[str] = []
    encoding: FeatureEncoding | None = model
    if model is None and needed:
        named_kinds: dict[str, ColumnKind] = {n: "text" if k == "text" else "numeric" for n, k in zip(raw, kinds)}
        trivial = policy == "error" and all(k == "numeric" for k in kinds)
        encoding = None if trivial else fit_encoding(raw, named_kinds, policy, source=source)
        for name in id_like_columns(raw, named_kinds):
            label = features.labels[features.names.index(name)]
            flag = _flag(label)
            warnings.append(
                f"{source}: column {label!r} holds text whose values are all different, like an identifier's: "
                f"name it with --id {flag} or leave it out with --drop {flag}"
            )

    unseen = model.unseen_categories(raw) if model is not None and raw else {}
    if encoding is None or plain:
        X = _matrix(arrays)
    else:
        _check_room(source, encoding, len(arrays[0]) if arrays else 0)
        X = encoding.transform(raw, source=source)
    return _Encoded(
        X=X,
        y=y,
        ids=ids,
        encoding=encoding,
        n_dropped=n_dropped,
        warnings=tuple(warnings),
        unseen=unseen,
        raw=raw if options.keep_raw else None,
    )


def _check_room(source: str, encoding: FeatureEncoding, n_rows: int) -> None:
    """Refuse an encoded matrix that cannot fit, naming the text column that makes it big."""
    # The inputs, one column of each (the encoder's output before stacking) and the stacked copy.
    needed = 2 * n_rows * encoding.n_inputs * 8
    available = available_memory()
    if available is None or needed <= available:
        return
    widest = max(
        (k for k in range(len(encoding.names)) if encoding.categories[k] is not None),
        key=lambda k: len(encoding.categories[k] or ()),
        default=None,
    )
    hint = ""
    if widest is not None:
        name = encoding.names[widest]
        hint = f"; column {name!r} alone has {len(encoding.categories[widest] or ())} categories: --drop {_flag(name)}"
    raise DataError(
        f"{source}: the encoded features ({n_rows} rows by {encoding.n_inputs} inputs) need about "
        f"{format_bytes(needed)}, more than the {format_bytes(available)} available{hint}"
    )


def _matrix(columns: Sequence[Any]) -> np.ndarray:
    """Columns of one length (pyarrow numbers or booleans, no nulls) as one C-ordered float64 matrix.

    Filled a record batch (a block of rows) at a time: the block stays in the
    cache while its columns are written across it, which a whole column at a
    time into a row-major matrix does not.
    """
    pa = _pyarrow()
    table = pa.table(list(columns), names=[str(k) for k in range(len(columns))])
    X = np.empty((table.num_rows, len(columns)), dtype=np.float64)
    start = 0
    for batch in table.to_batches():
        stop = start + batch.num_rows
        for k in range(len(columns)):
            X[start:stop, k] = batch.column(k).to_numpy(zero_copy_only=False)
        start = stop
    return X


def _first(mask: Any) -> int:
    """The index of the first true value of a boolean pyarrow array (which has one)."""
    pa = _pyarrow()
    return int(_compute().index(mask, pa.scalar(True)).as_py())
