"""Tables on a Dask cluster: a file, folder or glob of Parquet or CSV files read as partitions, and
predictions written by the workers as partitioned Parquet.

What ``twolayer train --dask`` and ``twolayer predict --dask`` read and write; the command line
starts or connects the cluster and calls these functions with its client.

What DATA is
    One file, a folder (its files with a Parquet or CSV name, those starting with ``.`` or ``_``
    left out, as Spark's ``_SUCCESS`` is) or a glob (``"parts/*.parquet"``), resolved here to a
    list of files in natural order (``part-2`` before ``part-10``, as ``dask.dataframe.read_parquet``
    orders them), all of one kind: Parquet, or CSV (TSV and any delimiter, compressed or not; the
    same header in every file). The content decides the kind, as for one file in memory. The files
    must be readable at the same paths by the workers (a shared file system for a remote cluster).

How it is read
    With ``dask.dataframe.read_parquet`` (row groups gathered into partitions of about
    :data:`BLOCK_BYTES`) or ``dask.dataframe.read_csv`` (blocks of :data:`BLOCK_BYTES`, a whole file
    per partition when compressed or when a quoted field holds a line break), every cell of a CSV
    file as text, so that the conversion is the same as in memory. The columns are chosen by the
    in-memory rules (``twolayer.io.tables._columns._plan_columns``: ``--target``, ``--features``,
    ``--drop``, ``--id``) from the column names; the values are converted partition by partition on
    the workers by the in-memory rules as well: numbers as float64 (booleans 1 and 0), labels as
    integers when every one is an integer written the canonical way, else as text.

What is refused
    In training, text feature columns and missing feature cells (the in-memory encodings need the
    whole column); a NaN or infinite feature; a missing label. :func:`survey` passes over the
    partitions once and names the first problem by its file, its row in that file and its column.
    A prediction names it the same way, from the partition that meets it.

Predictions
    :func:`predict_partitions` brings each partition's predictions here in order, for one file or
    standard output; :func:`write_partitioned` has each worker write its partition's Parquet file
    (columns as :func:`twolayer.io.predictions.prediction_bytes` writes them) into a temporary
    folder beside OUT, renamed into place once every partition is written: a failed run leaves an
    old OUT as it was.

Dask is imported inside the functions that use it, never when this module is.

It is one module because the reading, the survey of the partitions and the writing of the
predictions share the partition functions and their messages, which run on the workers.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import stat
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twolayer.errors import DataError
from twolayer.io.atomic import _fsync_folder
from twolayer.io.encoding import FeatureEncoding
from twolayer.io.tables import BATCH_BYTES, MISSING_VALUES
from twolayer.io.tables._arrow import _PANDAS_INDEX, _arrow_kind
from twolayer.io.tables._columns import _Plan, _plan_columns
from twolayer.io.tables._delimited import _CANONICAL_INTEGER
from twolayer.io.tables._features import _text_cells
from twolayer.io.tables._messages import _first_line, _flag, _listed, _show
from twolayer.io.tables._result import _target_note
from twolayer.io.tables._sniff import _FALSE, _NUMBER, _TRUE, _guess_kind, _sniff
from twolayer.io.tables._source import _FORMAT_NAMES, _compute, _format_of, _open_input, _pyarrow

__all__ = [
    "BLOCK_BYTES",
    "ClusterTable",
    "Sources",
    "Survey",
    "check_prediction_output",
    "predict_partitions",
    "read_for_model",
    "read_for_training",
    "resolve_sources",
    "survey",
    "training_arrays",
    "write_partitioned",
    "writes_folder",
]

#: About how much of a file one partition holds.
BLOCK_BYTES = 64 << 20

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_CSV_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".dat")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zstd")
#: The column that ``read_csv`` adds with each row's file.
_PATH = "__twolayer_path__"
#: How a partition's file is named in a folder of predictions.
_PART = re.compile(r"part\.\d+\.parquet")
#: Predictions brought here at a time per worker while earlier ones are written.
_WINDOW_PER_WORKER = 2


# --------------------------------------------------------------------------
# DATA: a file, a folder or a glob
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """The files DATA names, all of one kind, and what they hold.

    Attributes
    ----------
    given : str
        DATA as the user wrote it.
    files : tuple of str
        The files as messages name them (as found: relative when DATA is).
    paths : tuple of str
        The same files as absolute paths, which the workers read.
    format : {"parquet", "csv"}
    names : tuple of str
        The columns, the same in every file (a pandas index column left out).
    kinds : mapping of str to str
        What each column holds: "numeric", "boolean", "text" or an Arrow type's name (Parquet's
        types; a CSV file's as its first rows suggest).
    rows : tuple of int or None
        The rows of each Parquet file (its footer says); None for CSV.
    delimiter : str or None
        The CSV files' delimiter, given or sniffed.
    compression : str or None
        The CSV files' compression ("gzip", "bz2", "xz", "zstd").
    whole_files : bool
        Whether a CSV file is one partition (compressed, or a quoted field holds a line break).
    """

    given: str
    files: tuple[str, ...]
    paths: tuple[str, ...]
    format: str
    names: tuple[str, ...]
    kinds: Mapping[str, str]
    rows: tuple[int, ...] | None = None
    delimiter: str | None = None
    compression: str | None = None
    whole_files: bool = False

    def describe(self) -> str:
        """``"3 Parquet files"``, ``"1 CSV file"``."""
        kind = "Parquet" if self.format == "parquet" else "CSV"
        return f"{len(self.files)} {kind} file{'s' if len(self.files) != 1 else ''}"

    def display(self, path: str) -> str:
        """The name messages give the file at absolute ``path``."""
        by_path = dict(zip(self.paths, self.files))
        return by_path.get(path, by_path.get(os.path.abspath(path), path))


def _natural_key(text: str) -> list[Any]:
    # dask.utils.natural_sort_key, without importing Dask: "part-2" before "part-10".
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _table_name(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in (*_PARQUET_SUFFIXES, *_CSV_SUFFIXES)


def _list_files(given: str) -> list[str]:
    if given in ("", "-") or not given.strip():
        raise DataError(
            "--dask reads files: DATA must be a file, a folder or a glob of Parquet or CSV files, "
            + ("not standard input" if given == "-" else "not empty")
        )
    path = Path(given)
    if path.is_dir():
        found = [
            os.path.join(given, entry.name)
            for entry in os.scandir(path)
            if entry.is_file() and not entry.name.startswith((".", "_")) and _table_name(Path(entry.name))
        ]
        if not found:
            raise DataError(f"{given}: the folder holds no Parquet or CSV files (named .parquet, .pq, .csv, .tsv, ...)")
    elif path.is_file():
        found = [given]
    elif glob.has_magic(given):
        found = [name for name in glob.glob(given) if os.path.isfile(name)]
        if not found:
            raise DataError(f"{given}: no file matches")
    else:
        raise DataError(f"no such file or folder: {given}")
    return sorted(found, key=_natural_key)


def resolve_sources(given: str, *, sep: str | None = None) -> Sources:
    """The files DATA names, their kind and their columns, read from their headers (no rows yet).

    Parameters
    ----------
    given : str
        A file, a folder or a glob.
    sep : str, optional
        The CSV files' delimiter (``--sep``); sniffed from the first file by default.

    Returns
    -------
    Sources

    Raises
    ------
    DataError
        No such file, no file matches, files of two kinds or of a kind other than Parquet and CSV,
        a file whose columns (or header) differ from the first's, a CSV file without a header.
    """
    files = _list_files(given)
    inputs = [_open_input(name) for name in files]
    formats = [_format_of(inp) for inp in inputs]
    for name, fmt in zip(files, formats):
        if fmt not in ("parquet", "csv"):
            raise DataError(
                f"{name}: {_FORMAT_NAMES[fmt]} is not read with --dask (Parquet and CSV files are); convert it to "
                "Parquet, or leave out --dask"
            )
    if len(set(formats)) > 1:
        parquet = files[formats.index("parquet")]
        text = files[formats.index("csv")]
        raise DataError(f"{given} holds Parquet and CSV files ({parquet}, {text}): give files of one kind")
    paths = tuple(os.path.abspath(name) for name in files)
    if formats[0] == "parquet":
        return _parquet_sources(given, files, paths)
    return _csv_sources(given, files, paths, inputs, sep)


def _parquet_sources(given: str, files: list[str], paths: tuple[str, ...]) -> Sources:
    pa = _pyarrow()
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    names: list[str] = []
    kinds: dict[str, str] = {}
    rows = []
    for k, (name, path) in enumerate(zip(files, paths)):
        try:
            metadata = pq.ParquetFile(path).metadata
            schema = metadata.schema.to_arrow_schema()
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{name} is not a readable Parquet file ({_first_line(exc)})") from None
        columns = [n for n in schema.names if not _PANDAS_INDEX.fullmatch(n)]
        if len(set(columns)) != len(columns):
            twice = next(n for n in columns if columns.count(n) > 1)
            raise DataError(f"{name}: column {twice!r} appears twice")
        these = {n: _arrow_kind(schema.field(n).type) for n in columns}
        if k == 0:
            names, kinds = columns, these
        elif set(columns) != set(names):
            lacks = [n for n in names if n not in these]
            extra = [n for n in columns if n not in kinds]
            what = f"lacks {_listed(lacks)}" if lacks else f"has {_listed(extra)} besides"
            raise DataError(f"{name}: its columns differ from those of {files[0]} (it {what})")
        else:
            for column in names:
                if these[column] != kinds[column]:
                    raise DataError(
                        f"{name}, column {column!r}: holds {these[column]} values, but in {files[0]} {kinds[column]}"
                    )
        rows.append(int(metadata.num_rows))
    return Sources(given, tuple(files), paths, "parquet", tuple(names), kinds, rows=tuple(rows))


def _csv_sources(given: str, files: list[str], paths: tuple[str, ...], inputs: list[Any], sep: str | None) -> Sources:
    first = _sniff(inputs[0], sep, None, "#")
    if not first.header:
        raise DataError(
            f"{files[0]}: its first row looks like data; --dask reads CSV files whose first row names the columns"
        )
    compression = inputs[0].compression
    multiline = first.multiline
    for name, inp in zip(files[1:], inputs[1:]):
        dialect = _sniff(inp, first.delimiter, None, "#")
        if list(dialect.names) != list(first.names) or not dialect.header:
            raise DataError(
                f"{name}: its header differs from that of {files[0]} (every CSV file of DATA must name the same "
                "columns in the same order)"
            )
        if inp.compression != compression:
            raise DataError(
                f"{name}: {inp.compression or 'not'} compressed, but {files[0]} {compression or 'not'}: give files "
                "compressed alike"
            )
        multiline = multiline or dialect.multiline
    kinds = {name: _guess_kind(first.sample, j) for j, name in enumerate(first.names)}
    return Sources(
        given,
        tuple(files),
        paths,
        "csv",
        tuple(first.names),
        kinds,
        delimiter=first.delimiter,
        compression=compression,
        whole_files=compression is not None or multiline,
    )


# --------------------------------------------------------------------------
# The columns, and the Dask dataframe of them
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """What a partition function needs to read one partition: sent to the workers with each task."""

    format: str
    features: tuple[str, ...]
    kinds: tuple[str, ...]  # per feature: "numeric", "boolean" or "text" (text: a model's encoding only)
    target: str | None
    target_kind: str | None
    id: str | None
    missing_allowed: bool = False
    for_model: bool = False  # read for a trained model (prediction), not for training

    @property
    def path_column(self) -> str | None:
        return _PATH if self.format == "csv" else None


@dataclass(frozen=True, eq=False)
class ClusterTable:
    """DATA as a lazy Dask dataframe of the columns chosen, and what each column is for.

    Attributes
    ----------
    sources : Sources
    frame : dask.dataframe.DataFrame
        The chosen columns (a CSV file's as text, with its file in a column of its own), not yet read.
    feature_names : tuple of str
        The feature columns, in the order of the inputs.
    target_name : str or None
    target_choice : str or None
        How the target was chosen (as ``Table.target_choice``).
    id_name : str or None
    encoding : FeatureEncoding or None
        A model's encoding of its columns (prediction only).
    """

    sources: Sources
    frame: Any
    spec: _Spec
    feature_names: tuple[str, ...]
    target_name: str | None
    target_choice: str | None
    id_name: str | None
    encoding: FeatureEncoding | None = None

    @property
    def n_partitions(self) -> int:
        return int(self.frame.npartitions)

    @property
    def n_features(self) -> int:
        """The network's inputs: the feature columns, or the model's encoding's inputs."""
        return self.encoding.n_inputs if self.encoding is not None else len(self.feature_names)

    @property
    def target_note(self) -> str | None:
        """Which column is the target and why, as in memory."""
        return _target_note(self.target_name, self.target_choice)


def read_for_training(
    sources: Sources,
    *,
    target: str | None = None,
    select: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    id_column: str | None = None,
) -> ClusterTable:
    """DATA's columns for a new model, as a lazy Dask dataframe (nothing is read but the headers).

    The in-memory rules choose the target, the identifier and the features; every feature must be
    numeric or boolean.

    Parameters
    ----------
    sources : Sources
    target, select, drop, id_column
        ``--target``, ``--features``, ``--drop`` and ``--id``.

    Returns
    -------
    ClusterTable

    Raises
    ------
    DataError
        An unknown column, no target, a text feature column (naming it and what to do).
    """
    plan = _plan_columns(sources.given, sources.names, target=target, features=select, drop=drop, id_column=id_column)
    names = sources.names
    features = tuple(names[j] for j in plan.features)
    for name in features:
        kind = sources.kinds[name]
        if kind == "text":
            flag = _flag(name)
            raise DataError(
                f"{sources.given}: column {name!r} holds text; --dask trains on numeric feature columns only (a "
                f"text column's encoding needs every row at once): --drop {flag}, or train without --dask"
            )
        if kind not in ("numeric", "boolean"):
            raise DataError(
                f"{sources.given}: column {name!r} holds {kind} values, which are not features; leave it out with "
                f"--drop {_flag(name)}"
            )
    assert plan.target is not None
    target_name = names[plan.target]
    target_kind = "text" if sources.format == "csv" else sources.kinds[target_name]
    if target_kind not in ("numeric", "boolean", "text"):
        raise DataError(
            f"{sources.given}: column {target_name!r} holds {target_kind} values; class labels must be integers or text"
        )
    id_name = names[plan.id] if plan.id is not None else None
    spec = _Spec(
        sources.format,
        features,
        tuple(sources.kinds[name] for name in features),
        target_name,
        target_kind,
        id_name,
    )
    frame = _frame(sources, _wanted(plan, names, with_target=True))
    return ClusterTable(sources, frame, spec, features, target_name, plan.target_choice, id_name)


def read_for_model(
    sources: Sources,
    *,
    features: Sequence[str] | None,
    encoding: FeatureEncoding | None = None,
    id_column: str | None = None,
) -> ClusterTable:
    """DATA's columns for a trained model: those it reads, by name, and the identifier.

    Parameters
    ----------
    sources : Sources
    features : sequence of str or None
        The model's feature names (its encoding's columns when it has one); None for a model that
        reads its features by position, which is refused.
    encoding : FeatureEncoding, optional
        The model's encoding: text columns are read as text, and missing cells are allowed where it
        fills them.
    id_column : str, optional

    Raises
    ------
    DataError
        A model without feature names, a column the model needs that the files lack, a text column
        where the model reads numbers.
    """
    if encoding is not None:
        features = list(encoding.names)
    if features is None:
        raise DataError(
            "the model reads its features by position (it was trained on unnamed columns); --dask matches columns "
            "by name: predict without --dask"
        )
    plan = _plan_columns(
        sources.given,
        sources.names,
        model_features=list(features),
        require_target=False,
        id_column=id_column,
    )
    names = sources.names
    chosen = tuple(names[j] for j in plan.features)
    wanted_kinds = dict(zip(encoding.names, encoding.kinds)) if encoding is not None else {}
    kinds = []
    for name in chosen:
        held = sources.kinds[name]
        wanted = wanted_kinds.get(name, "numeric")
        if wanted == "text":
            kinds.append("text")
            continue
        if held == "text" and sources.format == "parquet":
            raise DataError(f"{sources.given}: column {name!r} holds text, but the model reads numbers from it")
        if held not in ("numeric", "boolean", "text"):
            raise DataError(
                f"{sources.given}: column {name!r} holds {held} values, but the model reads numbers from it"
            )
        kinds.append("boolean" if held == "boolean" else "numeric")
    id_name = names[plan.id] if plan.id is not None else None
    spec = _Spec(
        sources.format,
        chosen,
        tuple(kinds),
        None,
        None,
        id_name,
        missing_allowed=encoding is not None and encoding.fills,
        for_model=True,
    )
    frame = _frame(sources, _wanted(plan, names, with_target=False))
    return ClusterTable(sources, frame, spec, chosen, None, None, id_name, encoding)


def _wanted(plan: _Plan, names: Sequence[str], *, with_target: bool) -> list[str]:
    wanted = [names[j] for j in plan.features]
    for j in (plan.target if with_target else None, plan.id):
        if j is not None:
            wanted.append(names[j])
    return list(dict.fromkeys(wanted))


def _frame(sources: Sources, columns: list[str]) -> Any:
    """The lazy Dask dataframe of ``columns`` of every file, in the files' order."""
    import dask.dataframe as dd

    try:
        if sources.format == "parquet":
            # Arrow types kept (a null stays apart from NaN), row groups gathered into partitions.
            return dd.read_parquet(list(sources.paths), columns=columns, dtype_backend="pyarrow", blocksize=BLOCK_BYTES)
        return dd.read_csv(
            list(sources.paths),
            sep=sources.delimiter,
            usecols=columns,
            dtype=dict.fromkeys(columns, str),
            keep_default_na=False,
            na_values=list(MISSING_VALUES),
            include_path_column=_PATH,
            blocksize=None if sources.whole_files else BLOCK_BYTES,
            compression=sources.compression,
        )
    except (ValueError, OSError, TypeError) as exc:
        raise DataError(f"{sources.given}: cannot be read with Dask ({_first_line(exc)})") from None


# --------------------------------------------------------------------------
# One partition: run on the workers
# --------------------------------------------------------------------------

#: A problem a partition holds: its row (from 0), the column, what is wrong, and the row's file
#: (CSV; None for Parquet, whose files are found from their row counts).
_Problem = tuple[int, str, str, "str | None"]


@dataclass(frozen=True)
class _Failed:
    """What a partition's task returns instead of its result when the partition holds a problem (a
    task that raised would have the workers log it): turned into a :class:`DataError` here."""

    partition: int
    problem: _Problem


def _column(part: Any, name: str) -> Any:
    pa = _pyarrow()
    array = pa.array(part[name])
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    return array


def _first_true(mask: Any) -> int | None:
    """The index of the first true value of a boolean Arrow array (nulls false), or None."""
    pc = _compute()
    mask = pc.fill_null(mask, False)
    if not pc.any(mask).as_py():
        return None
    return int(pc.index(mask, True).as_py())


def _path_of(part: Any, row: int) -> str | None:
    if _PATH not in part.columns or len(part) == 0:
        return None
    return str(part[_PATH].iloc[row])


def _numbers(array: Any, kind: str, fmt: str) -> tuple[Any, tuple[int, str] | None]:
    """A feature column as float64 (nulls kept), and its first unreadable cell: (row, what)."""
    pa, pc = _pyarrow(), _compute()
    if fmt == "parquet" or not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return array.cast(pa.float64(), safe=False), None
    text = pc.utf8_trim_whitespace(array)
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, type=text.type), text)
    if kind == "boolean":
        words = pa.array([*_TRUE, *_FALSE, "1", "0"], type=text.type)
        bad = _first_true(pc.invert(pc.is_in(text, words)))
        if bad is not None:
            return None, (bad, f"expected true or false, got {_show(str(text[bad].as_py()))}")
        ones = pc.is_in(text, pa.array([*_TRUE, "1"], type=text.type))
        return pc.if_else(pc.is_null(text), pa.scalar(None, pa.float64()), pc.cast(ones, pa.float64())), None
    bad = _first_true(pc.invert(pc.match_substring_regex(text, _NUMBER, ignore_case=True)))
    if bad is not None:
        return None, (bad, f"expected a number, got {_show(str(text[bad].as_py()))}")
    return pc.cast(text, pa.float64()), None


def _features(part: Any, spec: _Spec) -> tuple[dict[str, np.ndarray], _Problem | None]:
    """The partition's feature columns (float64 with NaN where missing; a text column as objects with
    None), and its first problem in row order: an unreadable, non-finite or (unless allowed) missing cell."""
    pc = _compute()
    columns: dict[str, np.ndarray] = {}
    found: list[tuple[int, int, str]] = []
    for k, (name, kind) in enumerate(zip(spec.features, spec.kinds)):
        array = _column(part, name)
        if kind == "text":
            cells = _text_cells(array, ())
            columns[name] = np.asarray(cells.to_numpy(zero_copy_only=False), dtype=object)
            row = None if spec.missing_allowed else _first_true(pc.is_null(cells))
            if row is not None:
                found.append((row, k, "expected a value, got a missing cell"))
            continue
        values, bad = _numbers(array, kind, spec.format)
        if bad is not None:
            found.append((bad[0], k, bad[1]))
            continue
        row = _first_true(pc.invert(pc.is_finite(values)))
        if row is not None:
            value = values[row].as_py()
            found.append((row, k, f"{'NaN' if value != value else 'infinity'} is not allowed"))
        if not spec.missing_allowed:
            row = _first_true(pc.is_null(values))
            if row is not None:
                found.append((row, k, _MISSING_FOR_MODEL if spec.for_model else _MISSING))
        columns[name] = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    if not found:
        return columns, None
    row, k, what = min(found)
    return columns, (row, spec.features[k], what, _path_of(part, row))


_MISSING = (
    "expected a number, got a missing cell; --dask trains on complete rows only: fill or drop such rows first, or "
    "train without --dask and choose --missing"
)
_MISSING_FOR_MODEL = (
    "expected a number, got a missing cell; the model fills no cells: train it with --missing mean, median or "
    "most-frequent (without --dask) to predict such rows"
)


def _matrix(columns: Mapping[str, np.ndarray], spec: _Spec, encoding: FeatureEncoding | None, source: str) -> Any:
    if encoding is not None:
        return encoding.transform(columns, source=source)
    n = len(next(iter(columns.values()))) if columns else 0
    X = np.empty((n, len(spec.features)), dtype=np.float64)
    for j, name in enumerate(spec.features):
        X[:, j] = columns[name]
    return X


def _labels(part: Any, spec: _Spec) -> tuple[np.ndarray | None, np.ndarray | None, _Problem | None]:
    """The partition's labels: as integers where they can be (else None), as text, and the first problem."""
    pa, pc = _pyarrow(), _compute()
    assert spec.target is not None
    array = _column(part, spec.target)
    name = spec.target
    if spec.format == "csv" or spec.target_kind == "text":
        if spec.format == "csv":
            array = pc.utf8_trim_whitespace(array)
            missing = pc.or_(pc.is_null(array), pc.equal(array, ""))
            what = "the label is empty"
        else:
            missing, what = pc.is_null(array), "the label is missing"
        row = _first_true(missing)
        if row is not None:
            return None, None, (row, name, what, _path_of(part, row))
        text = np.asarray(array.to_numpy(zero_copy_only=False)).astype(str)
        whole = None
        if spec.format == "csv" and pc.all(pc.match_substring_regex(array, _CANONICAL_INTEGER)).as_py():
            try:
                whole = np.asarray(pc.cast(array, pa.int64()).to_numpy(), dtype=np.int64)
            except pa.ArrowInvalid:  # beyond int64: they stay text
                whole = None
        return whole, text, None
    row = _first_true(pc.is_null(array))
    if row is not None:
        return None, None, (row, name, "the label is missing", _path_of(part, row))
    if pa.types.is_integer(array.type) or pa.types.is_boolean(array.type):
        try:
            whole = np.asarray(array.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
        except pa.ArrowInvalid:  # uint64 beyond int64: the numbers as text
            values = array.to_pylist()
            return None, np.asarray([str(v) for v in values]), None
        return whole, whole.astype(str), None
    y = np.asarray(array.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)) | (np.abs(y) > 2**53))
    if bad.size:
        i = int(bad[0])
        value = float(y[i])
        if not np.isfinite(value):
            what = f"the label is {value}; class labels must be integers or text"
        elif value != round(value):
            what = f"the label {value!r} is not a whole number; class labels must be integers or text"
        else:
            what = f"the label {value!r} is beyond 2**53, where floats are not exact; write the labels as integers"
        return None, None, (i, name, what, None)
    whole = y.astype(np.int64)
    return whole, whole.astype(str), None


def _ids(part: Any, spec: _Spec) -> np.ndarray | None:
    if spec.id is None:
        return None
    pc = _compute()
    array = _column(part, spec.id)
    if spec.format == "csv":
        return np.asarray(pc.utf8_trim_whitespace(array).to_numpy(zero_copy_only=False)).astype(str)
    ids = np.asarray(array.to_numpy(zero_copy_only=False))
    return ids.astype(str) if ids.dtype == object else ids


def _extent(part: Any) -> tuple[str | None, int]:
    """A partition's file (CSV) and rows."""
    return _path_of(part, 0), len(part)


def _survey_partition(part: Any, spec: _Spec) -> tuple[Any, ...]:
    """Per partition, in one pass: its file and rows, its first problem, whether its labels are all
    integers, its distinct labels, and the moments of its features (count, mean, squared deviations, extremes)."""
    path, n = _extent(part)
    columns, problem = _features(part, spec)
    whole, text, label_problem = _labels(part, spec)
    if label_problem is not None and (problem is None or label_problem[0] < problem[0]):
        problem = label_problem
    if problem is not None:
        return path, n, problem, None, None, None
    assert text is not None
    as_int = whole is not None
    distinct = np.unique(whole) if whole is not None else np.unique(text)
    moments = None
    if n:
        X = _matrix(columns, spec, None, path or "")
        mean = X.mean(axis=0)
        moments = (mean, ((X - mean) ** 2).sum(axis=0), X.min(axis=0), X.max(axis=0))
    return path, n, None, as_int, distinct, moments


def _inputs(part: Any, spec: _Spec, mean: np.ndarray | None, scale: np.ndarray | None, dtype: Any) -> np.ndarray:
    """A surveyed partition's inputs, standardised as the model's scaler will (``(x - mean) / scale``)."""
    columns, _ = _features(part, spec)
    X = _matrix(columns, spec, None, "")
    if mean is not None and scale is not None:
        X -= mean
        X /= scale
    return X.astype(dtype, copy=False)


def _targets(part: Any, spec: _Spec, as_int: bool, dtype: Any) -> np.ndarray:
    """A surveyed partition's labels, all of the type the survey decided."""
    whole, text, _ = _labels(part, spec)
    if as_int:
        assert whole is not None
        return whole
    assert text is not None
    return text.astype(dtype)


# --------------------------------------------------------------------------
# The survey of the training data
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Survey:
    """What one pass over the training partitions found: their rows, the labels, the features' moments.

    Attributes
    ----------
    lengths : tuple of int
        The rows of each partition.
    labels_as_int : bool
        Whether every label is an integer (as in memory: canonical integers of a CSV file).
    label_dtype : numpy dtype
        int64, or a string type wide enough for every label.
    classes : ndarray
        The distinct labels, sorted, of that type.
    mean, variance, low, high : ndarray of shape (D,)
        Each feature's mean, variance (divided by N), least and largest value.
    """

    lengths: tuple[int, ...]
    labels_as_int: bool
    label_dtype: np.dtype[Any]
    classes: np.ndarray
    mean: np.ndarray
    variance: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def n_rows(self) -> int:
        return int(sum(self.lengths))

    def standardisation(self) -> tuple[np.ndarray, np.ndarray]:
        """StandardScaler's ``mean_`` and ``scale_`` of the features (a constant column's scale is 1)."""
        n = float(self.n_rows)
        eps = np.finfo(np.float64).eps
        # scikit-learn's test of a constant feature: a variance within rounding of zero.
        constant = self.variance <= n * eps * self.variance + (n * self.mean * eps) ** 2
        scale = np.sqrt(self.variance)
        scale[constant] = 1.0
        return self.mean.copy(), scale

    def check_range(
        self, mean: np.ndarray | None, scale: np.ndarray | None, dtype: Any, names: Sequence[str], source: str
    ) -> None:
        """Refuse, naming the column and value, a feature the working dtype cannot hold (standardised, if so).

        Raises
        ------
        DataError
        """
        limit = float(np.finfo(dtype).max)
        with np.errstate(over="ignore", invalid="ignore"):
            if mean is not None and scale is not None:
                if not np.isfinite(self.variance).all():
                    j = int(np.flatnonzero(~np.isfinite(self.variance))[0])
                    raise DataError(
                        f"{source}, column {names[j]!r}: its variance overflows float64 (values up to "
                        f"{max(abs(self.low[j]), abs(self.high[j])):g}); rescale that column, or give --no-scale"
                    )
                z_low, z_high = (self.low - mean) / scale, (self.high - mean) / scale
            else:
                z_low, z_high = self.low, self.high
        bad = np.flatnonzero(~((np.abs(z_high) <= limit) & (np.abs(z_low) <= limit)))
        if bad.size:
            j = int(bad[0])
            value = self.high[j] if not abs(z_high[j]) <= limit else self.low[j]
            name = np.dtype(dtype).name
            raise DataError(
                f"{source}, column {names[j]!r} holds {value:g}, beyond {name}'s range (about {limit:.3g})"
                + (" even standardised" if mean is not None else "")
                + "; use --dtype float64"
            )


def survey(table: ClusterTable, client: Any) -> Survey:
    """One pass over the training partitions on the cluster: checks, labels and the features' moments.

    Parameters
    ----------
    table : ClusterTable
        From :func:`read_for_training`.
    client : distributed.Client

    Returns
    -------
    Survey

    Raises
    ------
    DataError
        The first problem in the files' order (an unreadable, NaN, infinite or missing feature cell,
        a missing or fractional label), naming its file, row and column; no rows; a single class.
    """
    import dask

    task = dask.delayed(_survey_partition, pure=True)
    parts = [task(part, table.spec) for part in table.frame.to_delayed()]
    results = _gather(client, client.compute(parts), table.sources.given)
    extents = [(r[0], r[1]) for r in results]
    for p, result in enumerate(results):
        if result[2] is not None:
            raise DataError(_place(table.sources, extents, p, result[2]))
    lengths = tuple(int(r[1]) for r in results)
    N = sum(lengths)
    if N == 0:
        raise DataError(f"{table.sources.given} has no rows")
    as_int = all(r[3] for r in results if r[1])
    distinct = [r[4] for r in results if r[1]]
    if as_int:
        classes = np.unique(np.concatenate(distinct).astype(np.int64))
        dtype: np.dtype[Any] = np.dtype(np.int64)
    else:
        classes = np.unique(np.concatenate([d.astype(str) for d in distinct]))
        dtype = classes.dtype
    if classes.size < 2:
        raise DataError(
            f"{table.sources.given}: the target {table.target_name!r} holds a single class ({classes[0].item()!r}); "
            "a classifier needs at least two"
        )
    moments = [(r[1], *r[5]) for r in results if r[5] is not None]
    counts = np.array([m[0] for m in moments], dtype=np.float64)
    means = np.array([m[1] for m in moments])
    mean = (counts[:, None] * means).sum(axis=0) / N
    # Chan et al.'s combination of the partitions' squared deviations about their own means.
    with np.errstate(over="ignore", invalid="ignore"):
        squares = sum(m[2] for m in moments) + (counts[:, None] * (means - mean) ** 2).sum(axis=0)
    low = np.min([m[3] for m in moments], axis=0)
    high = np.max([m[4] for m in moments], axis=0)
    return Survey(lengths, as_int, dtype, classes, mean, squares / N, low, high)


def training_arrays(
    table: ClusterTable,
    found: Survey,
    *,
    mean: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    dtype: Any = np.float64,
) -> tuple[Any, Any]:
    """The inputs (standardised, when ``mean`` and ``scale`` are given) and labels as lazy Dask arrays.

    One block of rows per non-empty partition, of the lengths the survey counted; each block is
    computed on the workers from its partition when the training reads it.

    Returns
    -------
    X : dask array of shape (N, D), ``dtype``
    y : dask array of shape (N,), int64 or str
    """
    import dask
    import dask.array as da

    inputs = dask.delayed(_inputs, pure=True)
    targets = dask.delayed(_targets, pure=True)
    D = len(table.feature_names)
    xs, ys = [], []
    for part, n in zip(table.frame.to_delayed(), found.lengths):
        if n == 0:
            continue
        xs.append(da.from_delayed(inputs(part, table.spec, mean, scale, dtype), shape=(n, D), dtype=dtype))
        ys.append(
            da.from_delayed(
                targets(part, table.spec, found.labels_as_int, found.label_dtype), shape=(n,), dtype=found.label_dtype
            )
        )
    return da.concatenate(xs), da.concatenate(ys)


# --------------------------------------------------------------------------
# Naming a place, and failures of the cluster's reading
# --------------------------------------------------------------------------


def _place(sources: Sources, extents: Sequence[tuple[str | None, int]], p: int, problem: _Problem) -> str:
    """The message of ``problem`` in partition ``p``: its file, its row there and its column."""
    row, column, what, path = problem
    if sources.format == "csv":
        before = sum(n for q_path, n in extents[:p] if q_path == path)
        name = sources.display(path) if path is not None else sources.given
        return f"{name}, data row {before + row + 1}, column {column!r}: {what}"
    whole = sum(n for _, n in extents[:p]) + row
    assert sources.rows is not None
    starts = np.concatenate([[0], np.cumsum(sources.rows)])
    k = int(np.searchsorted(starts, whole, side="right")) - 1
    k = min(max(k, 0), len(sources.files) - 1)
    return f"{sources.files[k]}, row {whole - int(starts[k]) + 1}, column {column!r}: {what}"


def _located(table: ClusterTable, client: Any, failure: _Failed) -> DataError:
    """The DataError of a problem a prediction met: the earlier partitions counted to find its row."""
    import dask

    p = failure.partition
    extents: list[tuple[str | None, int]] = []
    if p:
        task = dask.delayed(_extent, pure=True)
        parts = table.frame.to_delayed()[:p]
        extents = list(_gather(client, client.compute([task(part) for part in parts]), table.sources.given))
    return DataError(_place(table.sources, extents, p, failure.problem))


def _gather(client: Any, futures: Any, given: str) -> list[Any]:
    """The futures' results; a failure of the reading (a file that is not what its header promised, a
    worker that died) becomes one line naming DATA."""
    try:
        return list(client.gather(futures))
    except DataError:
        raise
    except Exception as exc:  # pandas', pyarrow's and the scheduler's own exceptions, from the workers
        raise _failure(given, exc) from None


def _failure(given: str, exc: Exception) -> DataError:
    kind = type(exc).__name__
    if kind == "KilledWorker":
        return DataError(
            f"{given}: a worker died reading it ({_first_line(exc)}): give the workers more memory (--dask-memory) "
            "or use smaller files"
        )
    return DataError(f"{given}: cannot be read on the cluster ({kind}: {_first_line(exc)})")


# --------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------

#: How a caller turns a partition's inputs into the columns of its predictions: ``(X, ids, source)``.
Predict = Callable[[np.ndarray, "np.ndarray | None", str], Mapping[str, Any]]


def _predict_partition(part: Any, spec: _Spec, encoding: FeatureEncoding | None, predict: Predict, p: int) -> Any:
    columns, problem = _features(part, spec)
    if problem is not None:
        return _Failed(p, problem)
    source = _path_of(part, 0) or f"partition {p}"
    X = _matrix(columns, spec, encoding, source)
    ids = _ids(part, spec)
    # In batches of the in-memory reader's size: a worker's memory holds a Bayesian network's
    # Jacobians and Monte Carlo draws for a batch, not for a partition of a million rows.
    step = max(1, BATCH_BYTES // (8 * max(1, X.shape[1])))
    if X.shape[0] <= step:
        return dict(predict(X, ids, source))
    pieces = [
        dict(predict(X[start : start + step], None if ids is None else ids[start : start + step], source))
        for start in range(0, X.shape[0], step)
    ]
    return {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}


def _write_partition(
    part: Any, spec: _Spec, encoding: FeatureEncoding | None, predict: Predict, p: int, path: str
) -> int | _Failed:
    """Predict one partition and write its Parquet file (flushed to disk); its rows."""
    from twolayer.io.predictions import prediction_bytes

    columns = _predict_partition(part, spec, encoding, predict, p)
    if isinstance(columns, _Failed):
        return columns
    data = prediction_bytes(columns, "parquet")
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return len(part)


def predict_partitions(table: ClusterTable, predict: Predict, client: Any) -> Iterator[Mapping[str, Any]]:
    """Each partition's predictions, computed on the workers and brought here in the files' order.

    A few partitions are in flight at a time (``_WINDOW_PER_WORKER`` per worker), so that memory
    here holds a few partitions' predictions however long DATA is.

    Parameters
    ----------
    table : ClusterTable
        From :func:`read_for_model`.
    predict : callable
        ``predict(X, ids, source)``: the columns of a partition's predictions (run on the workers;
        it must pickle).
    client : distributed.Client

    Yields
    ------
    mapping of str to ndarray
        The columns of the next partition.

    Raises
    ------
    DataError
        A problem in a partition, named by its file, row and column.
    """
    import dask

    shared = _share(client, predict)
    task = dask.delayed(_predict_partition, pure=True)
    parts = table.frame.to_delayed()
    window = max(2, _WINDOW_PER_WORKER * len(client.scheduler_info().get("workers", {})))
    pending: deque[Any] = deque()
    try:
        for p, part in enumerate(parts):
            pending.append(client.compute(task(part, table.spec, table.encoding, shared, p)))
            if len(pending) >= window:
                yield _result(table, client, pending.popleft())
        while pending:
            yield _result(table, client, pending.popleft())
    finally:
        for future in pending:
            future.cancel()


def _share(client: Any, predict: Predict) -> Any:
    """``predict`` (the model within it) sent to the cluster once, not with every partition's task.

    A task of its own, as :meth:`twolayer.cluster.RowBlocks.share` sends values: computed again if the
    worker holding it is lost.
    """
    return client.submit(_identity, predict, pure=False)


def _identity(value: Any) -> Any:
    return value


def _result(table: ClusterTable, client: Any, future: Any) -> Any:
    result = _gather(client, [future], table.sources.given)[0]
    if isinstance(result, _Failed):
        raise _located(table, client, result)
    return result


def writes_folder(out: str | None, n_partitions: int) -> bool:
    """Whether predictions to ``out`` are a folder of Parquet files, one per partition.

    A folder is written where ``out`` is one already, ends with a path separator, or is named
    ``.parquet`` (``.pq``, ``.parq``) and DATA has several partitions; otherwise one file (or standard
    output, ``None``) takes the partitions in order.
    """
    if out is None or out == "-":
        return False
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        return True
    return Path(out).suffix.lower() in _PARQUET_SUFFIXES and n_partitions > 1


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (resolved, so links count as what they lead to)."""
    a, b = os.path.realpath(path), os.path.realpath(folder)
    try:
        return os.path.commonpath([a, b]) == b
    except ValueError:  # different drives
        return False


def check_prediction_output(out: str, sources: Sources, inputs: Mapping[str, str | None], *, folder: bool) -> None:
    """Refuse, before any work, an OUT that is or holds an input, or a folder that is not one of predictions.

    Parameters
    ----------
    out : str
        ``--out``.
    sources : Sources
        DATA's files (and folder, when DATA is one).
    inputs : mapping of str to str or None
        Other inputs by how the user named them (``{"MODEL": path}``).
    folder : bool
        Whether OUT is written as a folder (:func:`writes_folder`).

    Raises
    ------
    DataError
        OUT is DATA's folder or one of its files, holds one of them or another input, lies inside
        DATA's folder, is a symbolic link, a folder holding other files than predictions, or not
        writable.
    """
    label = f"--out {out}"
    if not out.strip():
        raise DataError("--out is empty: name a file or folder")
    target = out.rstrip("/" + os.sep) or out
    if os.path.islink(target):
        raise DataError(f"{label}: is a symbolic link (to {os.path.realpath(target)}); name the place itself")
    if os.path.isdir(sources.given) and _inside(sources.given, target):
        what = "is" if os.path.realpath(sources.given) == os.path.realpath(target) else "holds"
        raise DataError(f"{label}: {what} DATA's folder {sources.given}; writing it would destroy the input")
    named = {f"DATA ({name})": path for name, path in zip(sources.files, sources.paths)}
    named.update({name: path for name, path in inputs.items() if path is not None and os.path.exists(path)})
    for name, path in named.items():
        if _inside(path, target):
            what = "is" if os.path.realpath(path) == os.path.realpath(target) else "holds"
            raise DataError(f"{label}: {what} the input {name}; writing it would destroy the input")
    if os.path.isdir(sources.given) and _inside(target, sources.given):
        raise DataError(
            f"{label}: lies inside DATA's folder {sources.given}, where its files would be read as data next "
            "time; name a place outside it"
        )
    parent = Path(target).parent
    if not parent.is_dir():
        raise DataError(f"{label}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise DataError(f"{label}: the folder {parent} is not writable")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        if not folder:
            raise DataError(f"{label}: is a folder")
        others = [entry.name for entry in os.scandir(target) if not _PART.fullmatch(entry.name)]
        if others:
            raise DataError(
                f"{label}: is a folder holding other files than predictions ({_listed(sorted(others), 3)}); name a "
                "new folder, or one written by 'twolayer predict --dask'"
            )
    elif not stat.S_ISREG(mode):
        raise DataError(f"{label}: is not a regular file or folder")


@dataclass(frozen=True)
class Written:
    """What :func:`write_partitioned` wrote: the rows, and one file per partition."""

    rows: int
    files: int


def write_partitioned(table: ClusterTable, predict: Predict, out: str, client: Any) -> Written:
    """Predictions as a folder of Parquet files, one per partition (``part.00000.parquet``, ...), in order.

    Each worker writes its partitions' files into a new folder beside ``out``; once every partition
    is written, that folder takes ``out``'s place (an old ``out``, folder or file, is moved aside and
    then removed). When a partition fails, the new folder is removed and ``out`` is left as it was.
    The workers must see ``out``'s folder at the same path (a shared file system for a remote cluster).

    Parameters
    ----------
    table : ClusterTable
    predict : callable
        As for :func:`predict_partitions`.
    out : str
        The folder, checked by :func:`check_prediction_output`.
    client : distributed.Client

    Returns
    -------
    Written

    Raises
    ------
    DataError
        A problem in a partition (named by its file, row and column), or a folder that cannot be written.
    """
    import dask

    target = Path(os.path.abspath(out.rstrip("/" + os.sep) or out))
    token = secrets.token_hex(6)
    staging = target.parent / f".{target.name}.{token}.tmp"
    try:
        staging.mkdir()
    except OSError as exc:
        raise DataError(f"cannot write {out}: {exc.strerror or exc}") from None
    try:
        parts = table.frame.to_delayed()
        width = max(5, len(str(len(parts) - 1)))
        shared = _share(client, predict)
        task = dask.delayed(_write_partition, pure=True)
        tasks = [
            task(part, table.spec, table.encoding, shared, p, str(staging / f"part.{p:0{width}d}.parquet"))
            for p, part in enumerate(parts)
        ]
        futures = client.compute(tasks)
        try:
            rows = _gather(client, futures, table.sources.given)
        except BaseException:
            client.cancel(futures)
            raise
        # The first problem in the files' order, whichever partition met its own first.
        failed = next((r for r in rows if isinstance(r, _Failed)), None)
        if failed is not None:
            raise _located(table, client, failed)
        _replace(staging, target, token)
    except BaseException:
        _remove(staging)
        raise
    return Written(sum(int(r) for r in rows), len(parts))


def _replace(staging: Path, target: Path, token: str) -> None:
    """Put the finished folder at ``target``: an old one moved aside first, removed once the new one is in."""
    old = None
    try:
        if os.path.lexists(target):
            old = target.parent / f".{target.name}.{token}.old"
            os.rename(target, old)
        os.rename(staging, target)
    except OSError as exc:
        if old is not None and not os.path.lexists(target):
            os.rename(old, target)
        raise DataError(f"cannot write {target}: {exc.strerror or exc}") from None
    if old is not None:
        _remove(old)
    _fsync_folder(target.parent)


def _remove(path: Path) -> None:
    """Remove a file or folder of ours; a worker that was still writing into it may leave a file, tried again."""
    for _ in range(3):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            continue
