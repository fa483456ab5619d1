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
    1 and 0. The labels of a delimited file are read as text exactly as
    written (surrounding spaces removed) and become integers only when every
    label is an integer written the canonical way (no sign ``+``, no leading
    zero, within int64): ``"007"`` and ``"7"`` are different classes and
    ``"08"`` stays ``"08"``. For now, a missing cell in a feature (empty,
    ``NA``, ``N/A``, ``n/a``, ``NULL``, ``null``, ``None``) and a text
    feature are errors: the first names the first missing cell (file, line,
    data row, column), the second suggests leaving the column out or, when
    every value is different, naming it as the identifier. NaN and infinity
    written as numbers are refused where they are.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from twolayer.errors import DataError

__all__ = [
    "MISSING_VALUES",
    "STDIN",
    "TARGET_NAMES",
    "Column",
    "Table",
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
        delimited file, which is never converted.
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
        The features, all finite; booleans are 0 and 1.
    y : ndarray of shape (N,) or None
        The labels: int64, or str as written when any label is not a
        canonical integer. ``None`` when they were not asked for.
    ids : ndarray of shape (N,) or None
        The identifier column's values (as text for a delimited file), or
        ``None`` without ``id_column``.
    feature_names : tuple of str or None
        The names of the ``D`` columns of ``X``; ``None`` when the source
        names none (no header, a ``.npz`` without ``feature_names``).
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
    if sep is not None and (len(sep) != 1 or sep in '"\r\n'):
        raise ValueError(f"sep must be one character other than a quote or a line break, got {sep!r}")
    if comment is not None and (len(comment) != 1 or comment in '"\r\n'):
        raise ValueError(f"comment must be one character other than a quote or a line break, got {comment!r}")
    if model_features is not None and (features is not None or drop is not None):
        raise ValueError("features and drop choose a new model's columns; with model_features they must be None")
    if file_format is not None and file_format not in _FORMATS:
        raise ValueError(f"file_format must be one of {', '.join(_FORMATS)}, got {file_format!r}")
    for name, value in (("features", features), ("drop", drop)):
        if isinstance(value, str):
            raise ValueError(f"{name} must be a sequence of names or globs, not one string ({value!r})")

    name = os.fspath(source)
    inp = _open_input(name)
    fmt = file_format or _format_of(inp)
    options = _Options(
        target=target,
        features=features,
        drop=drop,
        id_column=id_column,
        require_target=require_target,
        model_features=model_features,
        default_target=default_target,
    )
    if fmt == "npz":
        return _read_npz(inp, options)
    if fmt in ("parquet", "feather", "arrow-stream"):
        return _read_arrow(inp, fmt, options)
    return _read_delimited(inp, options, sep=sep, header=header, comment=comment)


@dataclass(frozen=True)
class _Options:
    target: str | None
    features: Sequence[str] | None
    drop: Sequence[str] | None
    id_column: str | None
    require_target: bool
    model_features: Sequence[str] | int | None
    default_target: str | None

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
        return _Dialect(delimiter, False, names, 0, 0, multiline)
    for j, name in enumerate(first):
        if name == "":
            raise DataError(f"{inp.source}, line {first_end[0]}: the header's column {j + 1} has no name")
    seen: set[str] = set()
    for name in first:
        if name in seen:
            raise DataError(f"{inp.source}, line {first_end[0]}: column {name!r} appears twice in the header")
        seen.add(name)
    return _Dialect(delimiter, True, first, first_end[1], first_end[0], multiline)


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
            body = _Body(stream, self.comment)
            return pa_csv.read_csv(
                body,
                read_options=pa_csv.ReadOptions(column_names=dialect.names, encoding="utf8"),
                parse_options=pa_csv.ParseOptions(
                    delimiter=dialect.delimiter,
                    quote_char='"',
                    double_quote=True,
                    newlines_in_values=self.multiline,
                    ignore_empty_lines=True,
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types=dict(types),
                    include_columns=[n for n in dialect.names if n in types],
                    null_values=list(MISSING_VALUES),
                    true_values=list(_TRUE),
                    false_values=list(_FALSE),
                    strings_can_be_null=strings_can_be_null,
                    quoted_strings_can_be_null=False,
                    check_utf8=True,
                ),
            )

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


def _read_delimited(
    inp: _Input, options: _Options, *, sep: str | None, header: bool | None, comment: str | None
) -> Table:
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
            f"{inp.source} has a single column ({_show(names[0])}): expected feature columns and a target column; {why}"
        )
    plan = options.plan(inp.source, names, named=dialect.header)
    file = _DelimitedFile(inp, dialect, comment)

    read_target = plan.target is not None and options.require_target
    types: dict[str, Any] = {names[j]: pa.float64() for j in plan.features}
    if read_target:
        assert plan.target is not None
        types[names[plan.target]] = pa.string()
    if plan.id is not None:
        types[names[plan.id]] = pa.string()
    kinds = {names[j]: "numeric" for j in plan.features}

    # A feature column is read as float64 first; a column pyarrow cannot read so
    # is looked at on its own: booleans are read again as such, anything else is refused.
    while True:
        try:
            table = file.read(types)
            break
        except pa.ArrowInvalid as exc:
            column = _failed_column(exc, names)
            if column is not None and column in kinds and kinds[column] == "numeric":
                kinds[column] = _classify(file, column, exc)
                types[column] = pa.bool_()
                continue
            error = _arrow_csv_error(file, exc, column)
            if error is None and not file.multiline:
                # No row is too short or too long for Python's parser: a quoted field
                # beyond the sniffed lines holds a line break.
                file.multiline = True
                continue
            raise (error or _unreadable(file, exc)) from None

    n = table.num_rows
    if n == 0:
        raise DataError(f"{inp.source} has a header but no data rows")
    first_missing: tuple[int, int] | None = None
    for j in plan.features:
        column = table.column(names[j])
        if column.null_count:
            row = _first(column.is_null())
            if first_missing is None or row < first_missing[0]:
                first_missing = (row, j)
    if first_missing is not None:
        row, j = first_missing
        cell = file.cell(row, names[j])
        got = "an empty cell" if not cell or not cell.strip() else _show(cell.strip())
        raise DataError(
            f"{file.at(row, names[j])}: expected a number, got {got} (the first missing cell; {file.row_note(row)})"
        )
    X = _matrix([table.column(names[j]) for j in plan.features])
    _check_finite(X, lambda row, k: file.at(row, names[plan.features[k]]), file.row_note)

    y = None
    if read_target:
        assert plan.target is not None
        y = _text_labels(file, names[plan.target], table.column(names[plan.target]))
    ids = _strings(table.column(names[plan.id])) if plan.id is not None else None

    columns = []
    for j, name in enumerate(names):
        role = plan.role(j)
        kind = kinds.get(name)
        if role == "target":
            kind = None if y is None else ("numeric" if y.dtype.kind == "i" else "text")
        elif role == "id":
            kind = "text"
        columns.append(Column(name, role, kind))
    return Table(
        X=X,
        y=y,
        ids=ids,
        feature_names=plan.feature_names(names),
        target_name=names[plan.target] if plan.target is not None else None,
        target_choice=plan.target_choice,
        id_name=names[plan.id] if plan.id is not None else None,
        columns=tuple(columns),
        source=inp.source,
        format="csv",
        compression=inp.compression,
        delimiter=dialect.delimiter,
        header=dialect.header,
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


def _text_labels(file: _DelimitedFile, name: str, column: Any) -> np.ndarray:
    """Labels as written; integers only when every one is written as int() writes it back."""
    pa = _pyarrow()
    pc = _compute()
    trimmed = pc.utf8_trim_whitespace(column)
    empty = pc.equal(trimmed, "")
    if pc.any(empty).as_py():
        row = _first(empty)
        raise DataError(f"{file.at(row, name)}: the label is empty ({file.row_note(row)})")
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
    """A feature column that is not all numbers: "boolean", or a DataError that says what it holds."""
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
    cells = np.asarray(trimmed.to_numpy(zero_copy_only=False), dtype=object)
    bad = np.flatnonzero(~np.asarray(is_number.to_numpy(zero_copy_only=False), dtype=bool))
    if n_numbers and n_numbers >= n_present - n_numbers and bad.size:
        row = int(bad[0])
        raise DataError(
            f"{file.at(row, column)}: expected a number, got {_show(str(cells[row]))} ({file.row_note(row)})"
        )
    if n_numbers == n_present:
        # Every cell looks like a number, yet pyarrow read one as none: its word stands.
        raise DataError(f"{file.inp.source}, column {column!r}: not readable as numbers ({_first_line(failure)})")
    texts = [str(c) for c in cells if c is not None]
    examples = ", ".join(_show(v, 20) for v in dict.fromkeys(texts[:50]).keys() if v)
    distinct = len(set(texts))
    flag = _flag(column)
    advice = f"leave it out with --drop {flag}"
    if len(cells) > 1 and distinct == len(cells):
        advice += f"; its {distinct} values are all different, like an identifier's: name it with --id {flag}"
    raise DataError(
        f"{file.inp.source}: column {column!r} holds text ({examples}), and text features are not supported yet: "
        f"{advice}"
    )


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


def _read_arrow(inp: _Input, fmt: str, options: _Options) -> Table:
    pa = _pyarrow()
    source = _ArrowSource(inp, fmt)
    schema = source.schema()
    names = [n for n in schema.names if not _PANDAS_INDEX.fullmatch(n)]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise DataError(f"{inp.source}: column {twice!r} appears twice")
    plan = options.plan(inp.source, names)
    kinds = {name: _arrow_kind(schema.field(name).type) for name in names}
    for j in plan.features:
        if kinds[names[j]] not in ("numeric", "boolean"):
            # Read only the column to refuse: its values make the message.
            _refuse_arrow_column(inp.source, names[j], kinds[names[j]], source.read([names[j]]).column(0))
    read_target = plan.target is not None and options.require_target
    wanted = [names[j] for j in plan.features]
    wanted += [names[j] for j in (plan.target if read_target else None, plan.id) if j is not None]
    table = source.read(list(dict.fromkeys(wanted)))
    if table.num_rows == 0:
        raise DataError(f"{inp.source} has no rows")

    def at(row: int, column: str) -> str:
        return f"{inp.source}, row {row + 1}, column {column!r}"

    missing = [
        (_first(table.column(names[j]).is_null()), j) for j in plan.features if table.column(names[j]).null_count
    ]
    if missing:
        row, j = min(missing)
        raise DataError(f"{at(row, names[j])}: expected a number, got a missing value (the first missing cell)")
    features = []
    for j in plan.features:
        column = table.column(names[j])
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        # Integers past 2**53 round to the nearest float64, as NumPy's astype rounds them.
        features.append(column.cast(pa.float64(), safe=False) if kinds[names[j]] == "numeric" else column)
    X = _matrix(features)
    _check_finite(X, lambda row, k: at(row, names[plan.features[k]]))

    y = None
    if read_target:
        assert plan.target is not None
        y = _arrow_labels(inp.source, names[plan.target], table.column(names[plan.target]))
    ids = None
    if plan.id is not None:
        column = table.column(names[plan.id])
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        ids = np.asarray(column.to_numpy(zero_copy_only=False))
        if ids.dtype == object:
            ids = ids.astype(str)
    columns = tuple(Column(name, plan.role(j), kinds[name]) for j, name in enumerate(names))
    return Table(
        X=X,
        y=y,
        ids=ids,
        feature_names=plan.feature_names(names),
        target_name=names[plan.target] if plan.target is not None else None,
        target_choice=plan.target_choice,
        id_name=names[plan.id] if plan.id is not None else None,
        columns=columns,
        source=inp.source,
        format="parquet" if fmt == "parquet" else "feather",
        compression=inp.compression,
    )


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


def _refuse_arrow_column(source: str, name: str, kind: str, column: Any) -> None:
    flag = _flag(name)
    if kind != "text":
        raise DataError(
            f"{source}: column {name!r} holds {kind} values, which are not features; leave it out with --drop {flag}"
        )
    values = [v for v in column.to_pylist() if v is not None]
    examples = ", ".join(_show(str(v), 20) for v in list(dict.fromkeys(values))[:3])
    advice = f"leave it out with --drop {flag}"
    if len(column) > 1 and len(set(values)) == len(column):
        advice += f"; its {len(values)} values are all different, like an identifier's: name it with --id {flag}"
    raise DataError(
        f"{source}: column {name!r} holds text ({examples}), and text features are not supported yet: {advice}"
    )


def _arrow_labels(source: str, name: str, column: Any) -> np.ndarray:
    pa = _pyarrow()
    if column.null_count:
        row = _first(column.is_null())
        raise DataError(f"{source}, row {row + 1}, column {name!r}: the label is missing")
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
        return _whole_labels(source, np.asarray(column.to_numpy(zero_copy_only=False)), f"column {name!r}, row ")
    raise DataError(f"{source}: column {name!r} holds {kind} values; class labels must be integers or text")


def _whole_labels(source: str, y: np.ndarray, where: str) -> np.ndarray:
    """Integer labels from booleans and whole floats; anything else refused, naming the first bad one."""
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    y = y.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)))
    if bad.size:
        i = int(bad[0])
        place = f"{where}{i + 1}" if where.endswith("row ") else f"{where}[{i}]"
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
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        what = "NaN" if np.isnan(X[i, j]) else "infinity"
        raise DataError(f"{source}: X[{i}, {j}] is {what}; every feature must be a finite number")

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
    if plan.features != list(range(X.shape[1])):
        X = X[:, plan.features]
    columns = tuple(Column(name, plan.role(j), "numeric") for j, name in enumerate(all_names))
    if y is not None:
        columns += (Column("y", "target", "numeric" if y.dtype.kind == "i" else "text"),)
    return Table(
        X=X,
        y=y,
        ids=ids,
        feature_names=plan.feature_names(all_names),
        target_name="y" if y is not None else None,
        target_choice=None,
        id_name=all_names[plan.id] if plan.id is not None else None,
        columns=columns,
        source=source,
        format="npz",
        compression=inp.compression,
    )
