"""Tables from the files people have: CSV and TSV, compressed or not, Parquet, Feather, NPZ, standard input.

:func:`read_table` turns one source into a feature matrix ``X``, the labels
``y``, optionally an identifier per row, and what each column was taken for.
The parsing and conversion are pyarrow's (multi-threaded, in C++); this module
decides what the file is, which columns play which role, and says in one line
where and why a file cannot be used.

It is one long module because every section below (what it returns, messages,
choosing the columns, opening a source, the entry point, delimited text,
Parquet and Feather/Arrow, NPZ) works on the same private input and options
objects and exists only for :func:`read_table`.

What a source is
    The content decides where it can: a compressed file is recognised by its
    magic bytes (gzip, bzip2, zstd, xz), and so are Parquet (``PAR1``),
    Feather/Arrow IPC (``ARROW1``, or an IPC stream) and NPZ (a zip archive),
    whatever the file is called. Otherwise the extension (``.parquet``,
    ``.feather``, ``.arrow``, ``.npz``) says, and anything else is read as
    delimited text. ``"-"`` is standard input, read whole and recognised by
    its content in the same way; so is a pipe given by name (a shell's
    ``<(zcat data.csv.gz)``), which cannot be read twice. Other devices are
    refused.

Delimited text
    UTF-8 (a byte-order mark is skipped). The delimiter is given (``sep``) or
    sniffed from the first 64 KiB among comma, tab, semicolon and ``|``
    (quotes respected): of those that split the first row into two fields or
    more, the one whose count the most rows below share wins, then the one
    giving more fields, then tab for a ``.tsv`` or ``.tab`` file, then the
    first in that list. Fields may be quoted with ``"`` (doubled inside) and
    may hold the delimiter and line breaks. Lines that begin with the comment
    character (``#``) are skipped wherever they are, even inside a quoted
    field or when a data row starts with that character: pass
    ``comment=None`` to keep them. Blank lines are skipped. The first row is
    a header unless it has a number where the data have numbers: a first row
    with no number in the columns that hold only numbers below it is a header
    (``header`` overrides). Columns of a file without a header are called
    ``column_1``, ``column_2``, ... for choosing them, and their features are
    unnamed (matched by position, as for an ``.npz`` without names). A
    message names a place by the file's line (as an editor counts them,
    comment and blank lines included) and by the data row (the first row
    below the header is data row 1).

Roles of the columns
    The target is the column ``target`` names; by default the first column
    named ``target``, ``label``, ``class`` or ``y`` (in that order of
    preference, any case), else the last column (not the identifier);
    :attr:`Table.target_choice` says which rule chose it. ``features`` keeps
    only the columns it names or matches (:func:`fnmatch.fnmatchcase` globs:
    ``"pixel_*"``), in its order; ``drop`` leaves out those it names or
    matches. ``id_column`` is never a feature: its values are kept, as text,
    in :attr:`Table.ids`. Columns not used are not converted, so a text
    column that is dropped costs nothing and raises nothing.

Values
    A column is numeric, boolean or text as a whole, never per cell. Numbers
    become float64; ``true``/``false`` (also ``True``, ``TRUE``, ...) become
    1 and 0. A feature column of a delimited file holding more words than
    numbers is text; one holding mostly numbers and a word is a typo, refused
    where it is. The labels of a delimited file are read as text exactly as
    written (surrounding spaces removed) and become integers only when every
    label is an integer written the canonical way (no sign ``+``, no leading
    zero, within int64): ``"007"`` and ``"7"`` are different classes and
    ``"08"`` stays ``"08"``. NaN and infinity written as numbers are refused
    where they are.

Missing cells and text features
    A missing cell is an empty one, or one that reads ``NA``, ``N/A``,
    ``n/a``, ``NULL``, ``null`` or ``None`` (a null in Parquet and Feather,
    NaN in a ``.npz``). What becomes of it is the policy ``missing`` (see
    :data:`~twolayer.io.encoding.MISSING_POLICIES`): ``"error"`` refuses the
    first one, naming its file, line, row and column; ``"drop"`` leaves its
    row out; ``"mean"``, ``"median"`` and ``"most-frequent"`` fill it from
    the training column. A text feature becomes one input per category. Both
    are a :class:`~twolayer.io.encoding.FeatureEncoding`, fitted on the rows
    read for a new model, or a model's own (``encoding``): then a category
    the model never saw gives that column's inputs all zero, and is counted
    in :attr:`Table.unseen`. A text feature whose every value differs is
    encoded all the same, with a warning (:attr:`Table.warnings`) that it
    looks like an identifier.

Every refusal is a :class:`~twolayer.errors.DataError` with one line that
names the file, the place and what was expected.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import fnmatch
import io
import lzma
import os
import re
import shlex
import stat
import sys
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from twolayer.errors import DataError, format_bytes
from twolayer.io.encoding import MISSING_POLICIES, ColumnKind, FeatureEncoding, fit_encoding, id_like_columns
from twolayer.resources import available_memory

__all__ = [
    "BATCH_BYTES",
    "MISSING_VALUES",
    "STDIN",
    "TARGET_NAMES",
    "Column",
    "Table",
    "iter_table",
    "read_table",
]

#: The names a column gets chosen as the target by, in order of preference (any case).
TARGET_NAMES = ("target", "label", "class", "y")

#: The cells of a delimited file that mean "no value" in a numeric column.
MISSING_VALUES = ("", "NA", "N/A", "n/a", "NULL", "null", "None")

#: The source name that means standard input.
STDIN = "-"

_TRUE = ("true", "True", "TRUE")
_FALSE = ("false", "False", "FALSE")
_DELIMITERS = (",", "\t", ";", "|")
_SAMPLE_BYTES = 1 << 16
_LONGEST_SAMPLE = 1 << 23  # a first line longer than this is read in the main pass, not sniffed
_SNIFF_ROWS = 200
_CHUNK = 1 << 20

# What a number looks like in a cell: what pyarrow reads as one, and no more
# (Python's float() also reads "1_000" and " 4 "; a table should not).
_NUMBER = r"^\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*$|^\s*[+-]?(?:nan|inf|infinity)\s*$"
_NUMBER_RE = re.compile(_NUMBER, re.IGNORECASE)
# A label that is an integer written the one way int() writes it back.
_CANONICAL_INTEGER = r"^(?:0|-?[1-9][0-9]{0,18})$"
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
)
_FORMAT_MAGIC = (
    (b"PAR1", "parquet"),
    (b"ARROW1", "feather"),
    (b"FEA1", "feather"),
    (b"\xff\xff\xff\xff", "arrow-stream"),
    (b"PK\x03\x04", "npz"),
    (b"PK\x05\x06", "npz"),
    (b"\x93NUMPY", "npz"),
)
_COMPRESSED_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd", ".xz": "xz"}
_FORMAT_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".dat": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".feather": "feather",
    ".arrow": "feather",
    ".ipc": "feather",
    ".arrows": "arrow-stream",
    ".npz": "npz",
}
_FORMATS = ("csv", "parquet", "feather", "npz")
_FORMAT_NAMES = {
    "csv": "delimited text",
    "parquet": "a Parquet file",
    "feather": "a Feather/Arrow file",
    "arrow-stream": "an Arrow IPC stream",
    "npz": "a .npz archive",
}


# --------------------------------------------------------------------------
# What read_table returns
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a source and what it was taken for.

    Attributes
    ----------
    name : str
        As the source names it (``column_1``, ... for a file without a header).
    role : {"feature", "target", "id", "unused"}
        A feature of ``X``, the labels, the identifier, or left out (dropped,
        not selected, or not needed by a model).
    kind : {"numeric", "boolean", "text"} or None
        What the column holds as a whole; ``None`` for an unused column of a
        delimited file, which is never converted. A text feature is one-hot
        encoded (:attr:`Table.encoding`).
    """

    name: str
    role: str
    kind: str | None


@dataclass(frozen=True, eq=False)
class Table:
    """Features, labels and identifiers read from one source.

    Attributes
    ----------
    X : ndarray of shape (N, D), float64
        The network's inputs, all finite: numeric columns as they are,
        booleans 0 and 1, a text column one input per category; missing cells
        filled (or their rows dropped) as :attr:`encoding` says.
    y : ndarray of shape (N,) or None
        The labels: int64, or str as written when any label is not a
        canonical integer. ``None`` when they were not asked for.
    ids : ndarray of shape (N,) or None
        The identifier column's values (as text for a delimited file), or
        ``None`` without ``id_column``.
    feature_names : tuple of str or None
        The names of the ``D`` columns of ``X``: the feature columns' names,
        or with an encoding its input names (``colour=red``); ``None`` when
        the source names none (no header, a ``.npz`` without
        ``feature_names``) and there is no encoding.
    target_name : str or None
        The target column's name (``"y"`` for a ``.npz``), or ``None``.
    target_choice : {"given", "model", "named", "last"} or None
        How the target was chosen: named by the caller, the name a model
        remembers, a column named like a target (:data:`TARGET_NAMES`), or the
        last column. ``None`` when there is no target column (and for a ``.npz``).
    id_name : str or None
        The identifier column's name.
    columns : tuple of Column
        Every column of the source in its order, with its role and kind.
    source : str
        The path, or ``"standard input"``, for messages.
    format : {"csv", "parquet", "feather", "npz"}
        What the content was read as.
    compression : {"gzip", "bz2", "zstd", "xz"} or None
        The compression the content was found in.
    delimiter : str or None
        A delimited file's delimiter, given or sniffed.
    header : bool or None
        Whether a delimited file's first row named the columns.
    encoding : FeatureEncoding or None
        How the feature columns became ``X``: fitted here for a new model, or
        the model's own. ``None`` when every feature is a number and no cell
        is missing under the policy ``"error"``: ``X`` is the columns as read.
    n_dropped : int
        The rows left out for an empty feature cell (``missing="drop"``).
    warnings : tuple of str
        What the caller should tell the user: a text feature whose values
        are all different, like an identifier's.
    unseen : dict of str to int
        With a model's encoding: per text column, the rows holding a category
        the model never saw (their inputs for that column are all zero).
    raw : dict of str to ndarray or None
        With ``keep_raw``: the feature columns as read (float64 with NaN, or
        objects with ``None`` for a missing cell), by name.
    """

    X: np.ndarray
    y: np.ndarray | None
    ids: np.ndarray | None
    feature_names: tuple[str, ...] | None
    target_name: str | None
    target_choice: str | None
    id_name: str | None
    columns: tuple[Column, ...]
    source: str
    format: str
    compression: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    encoding: FeatureEncoding | None = None
    n_dropped: int = 0
    warnings: tuple[str, ...] = ()
    unseen: dict[str, int] = field(default_factory=dict)
    raw: dict[str, np.ndarray] | None = None

    @property
    def n_samples(self) -> int:
        """The number of rows ``N``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """The number of features ``D``."""
        return int(self.X.shape[1])

    @property
    def target_note(self) -> str | None:
        """One line that says which column is the target and why, for the command line to print."""
        return _target_note(self.target_name, self.target_choice)


def _target_note(target_name: str | None, target_choice: str | None) -> str | None:
    """Say which column is the target and which rule chose it, or ``None`` when no rule did."""
    reasons = {
        "given": "as asked",
        "model": "the model's target column",
        "named": "named like a target",
        "last": "the last column; name another with --target",
    }
    if target_name is None or target_choice not in reasons:
        return None
    return f"target column: {target_name!r} ({reasons[target_choice]})"


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------


def _suggest(name: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: str, limit: int = 40) -> str:
    """A cell as a message shows it: quoted, on one line whatever it holds, cut at ``limit``."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _listed(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _flag(name: str) -> str:
    """A column name as it would be typed after an option, on one line whatever it holds."""
    quoted = shlex.quote(name)
    return quoted if quoted.isprintable() else repr(name)


def _missing_columns_error(source: str, missing: Sequence[str], available: Sequence[str]) -> DataError:
    """The error for a model's columns that the data lack, naming (up to five of) them."""
    listed = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    hint = _suggest(missing[0], available) if len(missing) == 1 else ""
    noun = "column" if len(missing) == 1 else "columns"
    return DataError(f"{source}: missing {noun} {listed}, which the model needs{hint}")


@contextlib.contextmanager
def _reading(source: str, what: str) -> Iterator[None]:
    """Turn the operating system's refusals to read ``source`` into one-line DataErrors."""
    try:
        yield
    except FileNotFoundError:
        raise DataError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise DataError(f"{source} is a directory, not {what}") from None
    except OSError as exc:
        raise DataError(f"cannot read {source}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------
# Choosing the columns: the same rules for every format
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    features: list[int]
    target: int | None
    target_choice: str | None
    id: int | None
    named: bool

    def role(self, j: int) -> str:
        if j == self.target:
            return "target"
        if j == self.id:
            return "id"
        return "feature" if j in self.features else "unused"

    def feature_names(self, names: Sequence[str]) -> tuple[str, ...] | None:
        return tuple(names[j] for j in self.features) if self.named else None


def _column(source: str, names: Sequence[str], name: str) -> int:
    if name in names:
        return list(names).index(name)
    raise DataError(f"{source} has no column {name!r}{_suggest(name, names)}; its columns are {_listed(names)}")


def _matches(source: str, names: Sequence[str], pattern: str, what: str) -> list[int]:
    # A name is taken as written before it is taken as a glob: "x[0]" names the column x[0].
    if pattern in names:
        return [list(names).index(pattern)]
    found = [j for j, name in enumerate(names) if fnmatch.fnmatchcase(name, pattern)]
    if not found:
        raise DataError(
            f"{source}: no column is named or matches {pattern!r} ({what}){_suggest(pattern, names)}; "
            f"its columns are {_listed(names)}"
        )
    return found


def _default_target(names: Sequence[str], exclude: int | None) -> int | None:
    lowered = [name.lower() for name in names]
    for wanted in TARGET_NAMES:
        for j, name in enumerate(lowered):
            if name == wanted and j != exclude:
                return j
    return None


def _plan_columns(
    source: str,
    names: Sequence[str],
    *,
    named: bool = True,
    target_in_columns: bool = True,
    target: str | None = None,
    features: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    id_column: str | None = None,
    model_features: Sequence[str] | int | None = None,
    require_target: bool = True,
    default_target: str | None = None,
) -> _Plan:
    """Decide which column is the target, which the identifier, which the features (see :func:`read_table`).

    ``target_in_columns=False`` is for sources whose labels are not among
    ``names`` (a ``.npz``'s ``y``, a built-in's target).
    """
    id_index = _column(source, names, id_column) if id_column is not None else None

    if model_features is not None:
        return _plan_for_model(
            source,
            names,
            named=named,
            target_in_columns=target_in_columns,
            target=target,
            id_index=id_index,
            model_features=model_features,
            require_target=require_target,
            default_target=default_target,
        )

    target_index: int | None = None
    choice: str | None = None
    if target_in_columns:
        if target is not None:
            target_index, choice = _column(source, names, target), "given"
        else:
            target_index = _default_target(names, id_index) if named else None
            choice = "named"
            if target_index is None:
                others = [j for j in range(len(names)) if j != id_index]
                target_index, choice = (others[-1], "last") if others else (None, None)
        if target_index is not None and target_index == id_index:
            raise DataError(f"{source}: column {names[target_index]!r} cannot be both the target and the identifier")
    if target_index is None and target_in_columns and require_target:
        raise DataError(f"{source}: no target column; name it with --target")

    reserved = {target_index, id_index}
    if features is None:
        chosen = [j for j in range(len(names)) if j not in reserved]
    else:
        chosen = []
        for pattern in features:
            found = _matches(source, names, pattern, "features")
            if len(found) == 1 and names[found[0]] == pattern and found[0] in reserved:
                role = "target" if found[0] == target_index else "identifier"
                raise DataError(f"{source}: column {pattern!r} is the {role}; it cannot also be a feature")
            chosen += [j for j in found if j not in reserved and j not in chosen]
    if drop is not None:
        dropped: set[int] = set()
        for pattern in drop:
            dropped.update(_matches(source, names, pattern, "to drop"))
        chosen = [j for j in chosen if j not in dropped]
    if not chosen:
        raise DataError(f"{source}: no feature columns are left; its columns are {_listed(names)}")
    return _Plan(chosen, target_index, choice, id_index, named)


def _plan_for_model(
    source: str,
    names: Sequence[str],
    *,
    named: bool,
    target_in_columns: bool,
    target: str | None,
    id_index: int | None,
    model_features: Sequence[str] | int,
    require_target: bool,
    default_target: str | None,
) -> _Plan:
    by_name = not isinstance(model_features, int) and named
    model_reads = tuple(model_features) if by_name and not isinstance(model_features, int) else ()
    expected = model_features if isinstance(model_features, int) else len(model_features)
    if id_index is not None and names[id_index] in model_reads:
        raise DataError(f"{source}: column {names[id_index]!r} is a feature of the model, not an identifier")
    others = [j for j in range(len(names)) if j != id_index]

    target_index: int | None = None
    choice: str | None = None
    if target_in_columns:
        if target is not None:
            target_index, choice = _column(source, names, target), "given"
        elif default_target is not None and default_target in names and default_target not in model_reads:
            target_index, choice = list(names).index(default_target), "model"
            if target_index == id_index:
                target_index, choice = None, None
        elif not by_name:
            # Matched by position: one column more than the model needs is the target, the last one.
            if len(others) not in (expected, expected + 1):
                raise DataError(
                    f"{source} has {len(others)} columns; the model expects {expected} features "
                    "(and, optionally, the target last)"
                )
            if len(others) == expected + 1:
                target_index, choice = others[-1], "last"
        elif others and names[others[-1]] not in model_reads:
            target_index, choice = others[-1], "last"
    if target_index is not None and target_index == id_index:
        raise DataError(f"{source}: column {names[target_index]!r} cannot be both the target and the identifier")
    if target_index is not None and names[target_index] in model_reads:
        raise DataError(f"{source}: column {names[target_index]!r} is a feature of the model, not a target")
    if target_index is None and target_in_columns and require_target:
        raise DataError(f"{source}: no target column; name it with --target")

    if by_name:
        index = {name: j for j, name in enumerate(names)}
        missing = [f for f in model_reads if f not in index]
        if missing:
            raise _missing_columns_error(source, missing, names)
        return _Plan([index[f] for f in model_reads], target_index, choice, id_index, named)
    # Unnamed on one side: match by position, and the count must agree.
    columns = [j for j in others if j != target_index]
    if len(columns) != expected:
        raise DataError(f"{source}: the model expects {expected} features, got {len(columns)}")
    return _Plan(columns, target_index, choice, id_index, named)


# --------------------------------------------------------------------------
# Opening a source: files, standard input, compression, the format
# --------------------------------------------------------------------------


def _pyarrow() -> Any:
    # pyarrow loads in a fraction of a second; a built-in dataset never needs it.
    import pyarrow  # type: ignore[import-untyped]

    return pyarrow


def _stdin_bytes() -> bytes:
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # pragma: no cover - a text-only replacement of sys.stdin
        return sys.stdin.read().encode("utf-8")
    return bytes(stream.read())


class _Decompressed:
    """A decompressing stream whose failures (damaged or cut-short data) are one-line DataErrors."""

    def __init__(self, stream: Any, raw: BinaryIO, source: str, compression: str) -> None:
        self._stream = stream
        self._raw = raw
        self._source = source
        self._compression = compression
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        pa = _pyarrow()
        try:
            return bytes(self._stream.read(size) if size >= 0 else self._stream.read())
        except (OSError, EOFError, lzma.LZMAError, pa.ArrowException) as exc:
            raise DataError(
                f"{self._source}: the {self._compression} data is damaged or cut short ({_first_line(exc)})"
            ) from None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self._stream.close()
        self._raw.close()  # lzma leaves the file it reads from open

    def __enter__(self) -> _Decompressed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class _Input:
    """A source that can be opened again from its start: a file, or standard input held in memory."""

    source: str
    path: str | None
    data: bytes | None
    compression: str | None
    suffix: str

    def raw(self) -> BinaryIO:
        if self.data is not None:
            return io.BytesIO(self.data)
        assert self.path is not None
        with _reading(self.source, "a table"):
            return open(self.path, "rb")

    def open(self) -> Any:
        """The content from its start, decompressed: a binary stream with ``read`` and ``close``."""
        raw = self.raw()
        if self.compression is None:
            return raw
        if self.compression == "xz":
            return _Decompressed(lzma.open(raw, "rb"), raw, self.source, self.compression)
        pa = _pyarrow()
        return _Decompressed(pa.CompressedInputStream(raw, self.compression), raw, self.source, self.compression)

    def read_all(self) -> bytes:
        with self.open() as stream:
            return bytes(stream.read())


def _open_input(source: str) -> _Input:
    if source == STDIN:
        data = _stdin_bytes()
        return _Input("standard input", None, data, _compression(data[:8]), "")
    with _reading(source, "a table"), open(source, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and handle.isatty()):
            # A pipe (a shell's <(zcat data.csv.gz)) cannot be read twice: it is held in memory, as standard input is.
            data = handle.read()
            return _Input(source, None, data, _compression(data[:8]), _suffix(source))
        if not stat.S_ISREG(mode):
            # A device such as /dev/zero would never end.
            raise DataError(f"{source} is a device, not a file with a table")
        head = handle.read(8)
    return _Input(source, source, None, _compression(head), _suffix(source))


def _suffix(source: str) -> str:
    """The extension that names a format: ``.csv`` of ``data.csv.gz``."""
    suffixes = [s.lower() for s in Path(source).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED_SUFFIXES:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _compression(head: bytes) -> str | None:
    return next((name for magic, name in _MAGIC if head.startswith(magic)), None)


def _format_of(inp: _Input) -> str:
    with inp.open() as stream:
        head = bytes(stream.read(8))
    by_content = next((name for magic, name in _FORMAT_MAGIC if head.startswith(magic)), None)
    return by_content or _FORMAT_SUFFIXES.get(inp.suffix, "csv")


def _seekable(inp: _Input) -> Any:
    """What pyarrow's Parquet and Feather readers (and numpy) read: the path, or the content in memory."""
    if inp.path is not None and inp.compression is None:
        return inp.path
    return io.BytesIO(inp.read_all())


# --------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------


def read_table(
    source: str | os.PathLike[str],
    *,
    target: str | None = None,
    features: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    id_column: str | None = None,
    sep: str | None = None,
    header: bool | None = None,
    comment: str | None = "#",
    require_target: bool = True,
    model_features: Sequence[str] | int | None = None,
    default_target: str | None = None,
    file_format: str | None = None,
    missing: str | None = None,
    encoding: FeatureEncoding | None = None,
    keep_raw: bool = False,
) -> Table:
    """Read a table of features (and labels) from a file or standard input.

    The module's description gives the rules: what a source is, how a
    delimited file is sniffed, which column plays which role, how values are
    converted and what is refused.

    Parameters
    ----------
    source : path-like
        A file, or ``"-"`` for standard input.
    target : str, optional
        The target column. Default: the first column named ``target``,
        ``label``, ``class`` or ``y`` (any case), else the last column.
        Refused for a ``.npz`` (its labels are the array ``y``).
    features : sequence of str, optional
        The feature columns, by name or glob, in this order (each column
        once); the target and the identifier are never features. Default:
        every other column.
    drop : sequence of str, optional
        Columns, by name or glob, to leave out of the features.
    id_column : str, optional
        A column that identifies the rows: never a feature, kept as
        :attr:`Table.ids`.
    sep : str, optional
        The delimiter of a delimited file, one character. Default: sniffed.
    header : bool, optional
        Whether a delimited file's first row names the columns. Default:
        decided from the content.
    comment : str or None, default "#"
        Lines of a delimited file that begin with this character are
        skipped; ``None`` keeps every line.
    require_target : bool, default True
        When False the labels are not read (``y`` is ``None``) and a source
        without a target is accepted, as for prediction.
    model_features : sequence of str or int, optional
        The columns a trained model reads, instead of ``features`` and
        ``drop``: its feature names (exactly these columns in this order; any
        others ignored; a missing one is an error naming it), or its number
        of features when it has no names (columns by position). The last
        column is then the target only if the model does not read it (by
        position: only if there is one column more than the model needs).
    default_target : str, optional
        With ``model_features``: the target when ``target`` is not given and
        the source has a column of this name (the model remembers it).
    file_format : {"csv", "parquet", "feather", "npz"}, optional
        Read the content as this format whatever it looks like.
    missing : {"error", "drop", "mean", "median", "most-frequent"}, optional
        For a new model: what becomes of a missing feature cell. Default
        ``"error"``.
    encoding : FeatureEncoding, optional
        A trained model's encoding: its columns are read (by name, or by
        position when either side has no names) and encoded as in training.
        Implies ``model_features=encoding.names``.
    keep_raw : bool, default False
        Keep the feature columns as read in :attr:`Table.raw`.

    Returns
    -------
    Table

    Raises
    ------
    DataError
        Anything wrong with the source, in one line that names the file and,
        where there is one, the line, row and column.
    ValueError
        For parameters that contradict each other or are malformed (``sep``
        of more than one character, ``features`` with ``model_features``).
    """
    _check_characters(sep, comment)
    if model_features is not None and (features is not None or drop is not None):
        raise ValueError("features and drop choose a new model's columns; with model_features they must be None")
    if file_format is not None and file_format not in _FORMATS:
        raise ValueError(f"file_format must be one of {', '.join(_FORMATS)}, got {file_format!r}")
    if missing is not None and missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    if encoding is not None:
        if missing is not None:
            raise ValueError("missing chooses a new model's policy; with encoding (a model's) it must be None")
        if model_features is None:
            model_features = list(encoding.names)
        elif isinstance(model_features, int) or list(model_features) != list(encoding.names):
            raise ValueError("model_features must be encoding.names (or None)")
    for name, value in (("features", features), ("drop", drop)):
        if isinstance(value, str):
            raise ValueError(f"{name} must be a sequence of names or globs, not one string ({value!r})")

    inp = _open_input(os.fspath(source))
    fmt = file_format or _format_of(inp)
    options = _Options(
        target,
        features,
        drop,
        id_column,
        require_target,
        model_features,
        default_target,
        missing or "error",
        encoding,
        keep_raw,
    )
    if fmt == "npz":
        return _read_npz(inp, options)
    if fmt in ("parquet", "feather", "arrow-stream"):
        return _read_arrow(inp, fmt, options)
    return _read_delimited(inp, options, sep=sep, header=header, comment=comment)


def _check_characters(sep: str | None, comment: str | None) -> None:
    for name, value in (("sep", sep), ("comment", comment)):
        if value is not None and (len(value) != 1 or value in '"\r\n'):
            raise ValueError(f"{name} must be one character other than a quote or a line break, got {value!r}")


#: How much of a source :func:`iter_table` reads at a time by default.
BATCH_BYTES = 1 << 20


def iter_table(
    source: str | os.PathLike[str],
    *,
    model_features: Sequence[str] | int | None = None,
    encoding: FeatureEncoding | None = None,
    target: str | None = None,
    id_column: str | None = None,
    sep: str | None = None,
    header: bool | None = None,
    comment: str | None = "#",
    require_target: bool = True,
    default_target: str | None = None,
    file_format: str | None = None,
    keep_raw: bool = False,
    batch_bytes: int = BATCH_BYTES,
) -> Iterator[Table]:
    """Read a table for a trained model in batches of rows, holding one batch at a time.

    What :func:`read_table` does with ``model_features`` or ``encoding``, a
    batch at a time: memory stays flat however long the source. Every batch
    has the same columns and roles; a message names a row by its place in
    the whole source. Labels are decided batch by batch (integers where
    every label of the batch is a canonical integer), so compare them as
    text. A ``.npz``, an xz-compressed Parquet or Feather file and standard
    input are read whole first, as they cannot be read in parts.

    Parameters
    ----------
    source, model_features, encoding, target, id_column, sep, header, comment, require_target, default_target, \
file_format, keep_raw
        As for :func:`read_table`; one of ``model_features`` and ``encoding`` is required.
    batch_bytes : int, default 16 MiB
        About how much of the source a batch holds: bytes of text, or of
        float64 features in a columnar file.

    Yields
    ------
    Table
        The next rows.

    Raises
    ------
    DataError
        As :func:`read_table`, once the batch holding the problem is reached
        (some, such as a missing column, before the first).
    """
    if model_features is None and encoding is None:
        raise ValueError("iter_table reads for a model: give model_features or encoding")
    if batch_bytes < 1:
        raise ValueError(f"batch_bytes must be positive, got {batch_bytes}")
    _check_characters(sep, comment)
    if encoding is not None and model_features is None:
        model_features = list(encoding.names)
    inp = _open_input(os.fspath(source))
    fmt = file_format or _format_of(inp)
    options = _Options(
        target, None, None, id_column, require_target, model_features, default_target, "error", encoding, keep_raw
    )
    if fmt == "npz":
        yield _read_npz(inp, options)
    elif fmt in ("parquet", "feather", "arrow-stream"):
        arrow = _ArrowRead(inp, fmt, options)
        rows = max(1, batch_bytes // (8 * max(1, len(arrow.wanted))))
        for offset, part in arrow.tables(rows):
            yield arrow.result(part, offset)
    else:
        delimited = _DelimitedRead(inp, options, sep=sep, header=header, comment=comment)
        for offset, part in delimited.tables(batch_bytes):
            yield delimited.result(part, offset)


@dataclass(frozen=True)
class _Options:
    target: str | None
    features: Sequence[str] | None
    drop: Sequence[str] | None
    id_column: str | None
    require_target: bool
    model_features: Sequence[str] | int | None
    default_target: str | None
    missing: str
    encoding: FeatureEncoding | None
    keep_raw: bool

    def plan(self, source: str, names: Sequence[str], *, named: bool = True, target_in_columns: bool = True) -> _Plan:
        return _plan_columns(
            source,
            names,
            named=named,
            target_in_columns=target_in_columns,
            target=self.target,
            features=self.features,
            drop=self.drop,
            id_column=self.id_column,
            model_features=self.model_features,
            require_target=self.require_target,
            default_target=self.default_target,
        )


def _compute() -> Any:
    import pyarrow.compute  # type: ignore[import-untyped]

    return pyarrow.compute


# --------------------------------------------------------------------------
# From feature columns to X: the same for every format
# --------------------------------------------------------------------------


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
            target_name=names[plan.target] if plan.target is not None else None,
            target_choice=plan.target_choice,
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


# --------------------------------------------------------------------------
# Delimited text
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    delimiter: str
    header: bool
    names: list[str]
    start: int  # bytes before the first data row (BOM, comments, blank lines and the header)
    header_line: int  # the physical line the header ends on; 0 without one
    multiline: bool  # whether a quoted field of the sample holds a line break (pyarrow then reads more slowly)
    sample: tuple[tuple[str, ...], ...] = ()  # the first data rows, to guess each column's kind from


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return
        yield bytes(chunk)


class _Lines:
    """The decoded lines of a byte stream, comment lines skipped, counting physical lines and bytes."""

    def __init__(self, source: str, chunks: Iterable[bytes], comment: str | None) -> None:
        self.source = source
        self.chunks = chunks
        self.comment = comment
        self.line = 0  # physical lines consumed
        self.offset = 0  # bytes consumed

    def raw_lines(self) -> Iterator[bytes]:
        rest = b""
        for chunk in self.chunks:
            data = rest + chunk
            lines = data.split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield line + b"\n"
        if rest:
            yield rest

    def __iter__(self) -> Iterator[str]:
        for raw in self.raw_lines():
            self.line += 1
            self.offset += len(raw)
            if self.line == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{self.source} is not UTF-8 text (line {self.line}, byte {exc.start + 1} of the line: {exc.reason})"
                ) from None
            if self.comment is not None and text.startswith(self.comment):
                continue
            yield text


def _rows(lines: _Lines, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows and the physical line each ends on."""
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{lines.source}, line {lines.line}: not valid delimited text ({exc})") from None
        if row:  # a blank line, as pyarrow skips it
            yield lines.line, row


def _sample(inp: _Input) -> bytes:
    """The first complete lines of the content: at least 64 KiB of them when there are as many."""
    data = b""
    at_end = False
    with inp.open() as stream:
        # A decompressor may hand back less than asked before its end: read until enough, or the end.
        while not at_end and (len(data) < _SAMPLE_BYTES or b"\n" not in data) and len(data) < _LONGEST_SAMPLE:
            more = bytes(stream.read(_SAMPLE_BYTES))
            data += more
            at_end = not more
    if not at_end and b"\n" in data:
        data = data[: data.rfind(b"\n") + 1]
    return data


def _not_text(inp: _Input) -> DataError:
    return DataError(
        f"{inp.source} is neither delimited text nor a table format this reads "
        "(CSV/TSV, Parquet, Feather/Arrow, NPZ; optionally gzip, bzip2, zstd or xz compressed)"
    )


def _sniff(inp: _Input, sep: str | None, header: bool | None, comment: str | None) -> _Dialect:
    sample = _sample(inp)
    if b"\x00" in sample and inp.suffix not in _FORMAT_SUFFIXES:
        raise _not_text(inp)
    try:
        lines = list(_Lines(inp.source, [sample], comment))
    except DataError:
        if inp.suffix in _FORMAT_SUFFIXES or inp.path is None:
            raise
        raise _not_text(inp) from None

    delimiter = sep if sep is not None else _sniff_delimiter(inp, lines)
    tracked = _Lines(inp.source, [sample], comment)
    rows: list[list[str]] = []
    first_end = (0, 0)
    for line, row in _rows(tracked, delimiter):
        if not rows:
            first_end = (line, tracked.offset)
        rows.append(row)
        if len(rows) > _SNIFF_ROWS:
            break
    if not rows:
        raise DataError(f"{inp.source} is empty: expected a header row and data rows")

    multiline = any("\n" in cell or "\r" in cell for row in rows for cell in row)
    first = [cell.strip() for cell in rows[0]]
    has_header = header if header is not None else _looks_like_header(first, rows[1:])
    if not has_header:
        names = [f"column_{k + 1}" for k in range(len(first))]
        return _Dialect(delimiter, False, names, 0, 0, multiline, tuple(tuple(row) for row in rows))
    for j, name in enumerate(first):
        if name == "":
            raise DataError(f"{inp.source}, line {first_end[0]}: the header's column {j + 1} has no name")
    seen: set[str] = set()
    for name in first:
        if name in seen:
            raise DataError(f"{inp.source}, line {first_end[0]}: column {name!r} appears twice in the header")
        seen.add(name)
    body = tuple(tuple(row) for row in rows[1:])
    return _Dialect(delimiter, True, first, first_end[1], first_end[0], multiline, body)


def _sniff_delimiter(inp: _Input, lines: list[str]) -> str:
    preferred = ("\t",) if inp.suffix in (".tsv", ".tab") else ()
    order = [*preferred, *(d for d in _DELIMITERS if d not in preferred)]
    best: tuple[float, int, int] | None = None
    chosen = order[0] if preferred else ","
    for rank, delimiter in enumerate(order):
        counts = []
        try:
            for row in csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, strict=False):
                if row and (len(row) > 1 or row[0].strip()):
                    counts.append(len(row))
                if len(counts) > _SNIFF_ROWS:
                    break
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        agreement = sum(c == counts[0] for c in counts) / len(counts)
        score = (agreement, counts[0], -rank)
        if best is None or score > best:
            best, chosen = score, delimiter
    return chosen


def _is_number(cell: str) -> bool:
    return bool(_NUMBER_RE.match(cell))


def _looks_like_header(first: list[str], body: list[list[str]]) -> bool:
    if not body:
        # One row: data only if every cell is a number.
        return not all(_is_number(cell) for cell in first)
    numeric = [
        j
        for j in range(len(first))
        if any(len(row) > j and row[j].strip() for row in body)
        and all(_is_number(row[j]) for row in body if len(row) > j and row[j].strip() not in MISSING_VALUES)
    ]
    if not numeric:
        return True  # text throughout: a first row of names is the usual case
    return not any(_is_number(first[j]) for j in numeric)


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
            self.types[names[plan.target]] = pa.string()
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
        if self.read_target:
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


def _guess_kind(sample: Sequence[Sequence[str]], j: int) -> str:
    """What the sniffed rows say column ``j`` holds: "text" when most of its cells are words, "boolean"
    when they are all true or false, else "numeric" (pyarrow's reading then decides)."""
    cells = [row[j].strip() for row in sample if len(row) > j]
    present = [c for c in cells if c not in MISSING_VALUES]
    if not present:
        return "numeric"
    if all(c in _TRUE or c in _FALSE for c in present):
        return "boolean"
    numbers = sum(1 for c in present if _is_number(c))
    return "text" if numbers < len(present) - numbers else "numeric"


def _arrow_type(name: str) -> Callable[[], Any]:
    return lambda: getattr(_pyarrow(), name)()


_ARROW_TYPES = {"numeric": _arrow_type("float64"), "boolean": _arrow_type("bool_"), "text": _arrow_type("string")}


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


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


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


def _check_finite(X: np.ndarray, at: Callable[[int, int], str], note: Callable[[int], str] | None = None) -> None:
    finite = np.isfinite(X)
    if finite.all():
        return
    row, k = (int(v) for v in np.argwhere(~finite)[0])
    what = "NaN" if np.isnan(X[row, k]) else "infinity"
    others = int(np.count_nonzero(~finite[:, k])) - 1
    notes = [f"and {others} more non-finite cells in this column"] if others else []
    if note is not None:
        notes.append(note(row))
    tail = f" ({'; '.join(notes)})" if notes else ""
    raise DataError(f"{at(row, k)}: {what} is not allowed{tail}")


# --------------------------------------------------------------------------
# Parquet and Feather/Arrow
# --------------------------------------------------------------------------


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
        if self.read_target:
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


# --------------------------------------------------------------------------
# NPZ archives
# --------------------------------------------------------------------------


def _npz_array(source: str, archive: Any, key: str) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except ValueError as exc:
        if "pickle" in str(exc).lower() or "object arrays" in str(exc).lower():
            raise DataError(
                f"{source}: array {key!r} holds Python objects, which load only by unpickling; refusing to load it"
            ) from None
        raise DataError(f"{source}: array {key!r} cannot be read ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{source}: array {key!r} is damaged ({exc})") from None


def _npz_labels(source: str, y: np.ndarray) -> np.ndarray:
    if y.dtype.kind in "iu":
        if y.dtype == np.uint64 and y.size and y.max() > np.iinfo(np.int64).max:
            return y.astype(str)
        return y.astype(np.int64)
    if y.dtype.kind == "U":
        return y.astype(str)
    if y.dtype.kind in "bf":
        return _whole_labels(source, y, "y")
    raise DataError(f"{source}: y has dtype {y.dtype}; expected integers or strings")


def _npz_arrays(
    source: str, handle: BinaryIO, require_target: bool
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    try:
        loaded = np.load(handle, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(f"{source} holds pickled Python objects, not arrays; refusing to load it") from None
        raise DataError(f"{source} is not a .npz archive ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{source} is not a readable .npz archive ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{source} holds a single array (.npy); expected a .npz archive with arrays X and y")
    with loaded as archive:
        keys = set(archive.files)
        if "X" not in keys:
            raise DataError(f"{source} has no array 'X'; it holds {', '.join(sorted(keys)) or 'nothing'}")
        X = _npz_array(source, archive, "X")
        y = _npz_array(source, archive, "y") if "y" in keys and require_target else None
        names = _npz_array(source, archive, "feature_names") if "feature_names" in keys else None
    if require_target and y is None:
        raise DataError(f"{source} has no array 'y' with the labels")
    return X, y, names


def _read_npz(inp: _Input, options: _Options) -> Table:
    source = inp.source
    if options.target is not None:
        raise DataError(
            f"--target applies to tables with named columns; {source} is a .npz archive (its labels are 'y')"
        )
    # numpy leaks the file it opens when the archive is damaged; opening it here closes it whatever happens.
    with _reading(source, "a .npz file"):
        seekable = _seekable(inp)
        with open(seekable, "rb") if isinstance(seekable, str) else seekable as handle:
            X, y, names = _npz_arrays(source, handle, options.require_target)

    if X.ndim != 2:
        raise DataError(f"{source}: X has shape {X.shape}; expected a matrix (N samples, D features)")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{source}: X has shape {X.shape}; expected at least one sample and one feature")
    if X.dtype.kind not in "biuf":
        raise DataError(f"{source}: X has dtype {X.dtype}; expected numbers")
    X = X.astype(np.float64)
    # NaN is how numpy marks a missing value: it is one, for the policy to decide on.
    bad = np.argwhere(np.isinf(X))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise DataError(f"{source}: X[{i}, {j}] is infinity; every feature must be a finite number")

    feature_names = None
    if names is not None:
        if names.dtype.kind != "U" or names.shape != (X.shape[1],):
            raise DataError(f"{source}: feature_names must be {X.shape[1]} strings, one per column of X")
        feature_names = tuple(str(n) for n in names.tolist())
        if len(set(feature_names)) != len(feature_names):
            raise DataError(f"{source}: feature_names has a repeated name")

    if y is not None:
        if y.shape != (X.shape[0],):
            raise DataError(f"{source}: y has shape {y.shape}; expected ({X.shape[0]},), one label per row of X")
        y = _npz_labels(source, y)

    named = feature_names is not None
    all_names = list(feature_names) if feature_names is not None else [f"column_{k + 1}" for k in range(X.shape[1])]
    plan = options.plan(source, all_names, named=named, target_in_columns=False)
    ids = X[:, plan.id] if plan.id is not None else None
    if ids is not None and np.isnan(ids).any():
        raise DataError(
            f"{source}: X[{int(np.flatnonzero(np.isnan(ids))[0])}, {plan.id}] is NaN; an identifier is needed"
        )
    if plan.features != list(range(X.shape[1])):
        X = X[:, plan.features]
    encoded = None
    missing = np.isnan(X)
    if options.encoding is not None or options.missing != "error" or missing.any():
        pa = _pyarrow()
        labels = [all_names[j] for j in plan.features]
        position = {all_names[j]: j for j in plan.features}
        model = options.encoding
        features = _Features(
            list(model.names) if model is not None else labels,
            labels,
            [pa.array(X[:, k], mask=missing[:, k]) for k in range(X.shape[1])],
            ["numeric"] * X.shape[1],
        )
        place = _Place(source, lambda row, label: f"{source}: X[{row}, {position[label]}]", cell=lambda r, c: "NaN")
        encoded = _finish(place, features, y, ids, options)
        X, y, ids = encoded.X, encoded.y, encoded.ids
    columns = tuple(Column(name, plan.role(j), "numeric") for j, name in enumerate(all_names))
    if y is not None:
        columns += (Column("y", "target", "numeric" if y.dtype.kind == "i" else "text"),)
    return Table(
        X=X,
        y=y,
        ids=ids,
        feature_names=encoded.feature_names(plan.feature_names(all_names))
        if encoded is not None
        else plan.feature_names(all_names),
        target_name="y" if y is not None else None,
        target_choice=None,
        id_name=all_names[plan.id] if plan.id is not None else None,
        columns=columns,
        source=source,
        format="npz",
        compression=inp.compression,
        encoding=encoded.encoding if encoded is not None else None,
        n_dropped=encoded.n_dropped if encoded is not None else 0,
        raw=encoded.raw if encoded is not None else _plain_raw(X, plan.feature_names(all_names), options),
    )


def _plain_raw(X: np.ndarray, names: tuple[str, ...] | None, options: _Options) -> dict[str, np.ndarray] | None:
    """The columns of an unencoded ``X`` as :attr:`Table.raw` holds them, when asked for."""
    if not options.keep_raw:
        return None
    labels = names or tuple(f"column_{k + 1}" for k in range(X.shape[1]))
    return {name: X[:, k] for k, name in enumerate(labels)}
