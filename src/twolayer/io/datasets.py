"""Data for the command line: the built-in datasets and the user's files.

A dataset is a feature matrix ``X`` of shape ``(N, D)`` (float64, finite), a
label vector ``y`` of shape ``(N,)`` (integers or strings) and, when the
source has them, the names of the feature columns. Sources are

* the built-ins (:mod:`twolayer.io.builtin_datasets`): ``digits``, ``iris``,
  ``wine`` and ``breast_cancer`` as shipped with scikit-learn (read offline),
  and ``moons``, ``circles`` and ``blobs``, generated with a fixed seed so
  that each name always means the same data;
* a file, or ``-`` for standard input, read by :func:`twolayer.io.tables.read_table`:
  delimited text (CSV, TSV, any delimiter; header or not; comments), gzip,
  bzip2, zstd or xz compressed, Parquet, Feather/Arrow, or a ``.npz`` archive
  with arrays ``X`` and ``y`` (and optionally ``feature_names``), read
  without unpickling anything. The content says which where the extension
  does not.

Every problem with the user's input raises :class:`DataError` with one line
that names the file, the place (line, row and column, or array and index) and
what was expected; the command line prints it and exits with status 2.

This module reads files and nothing else: of ``twolayer`` it imports only the
error type, the list of built-ins and the table reader.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from twolayer.errors import DataError
from twolayer.io.builtin_datasets import BUILTINS, Builtin
from twolayer.io.encoding import FeatureEncoding
from twolayer.io.tables import BATCH_BYTES, STDIN, Column, Table, iter_table, read_table
from twolayer.io.tables._columns import _plan_columns
from twolayer.io.tables._messages import _suggest
from twolayer.io.tables._result import _target_note, _targets_note

__all__ = [
    "BUILTINS",
    "Builtin",
    "ColumnDescription",
    "DataError",
    "Dataset",
    "check_classes",
    "describe_columns",
    "load_batches",
    "load_builtin",
    "load_dataset",
    "read_csv",
    "read_npz",
]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Features and labels read from one source.

    Attributes
    ----------
    X : ndarray of shape (N, D), float64
        The network's inputs, all finite (a text column one-hot encoded,
        missing cells filled, as :attr:`encoding` says).
    y : ndarray of shape (N,) or (N, K), or None
        The labels: int64, or str when any label is not an integer written
        the canonical way (``"007"`` stays ``"007"``). ``None`` when the
        source holds no target (allowed only for prediction). For a
        multilabel target (several target columns), an int64 indicator
        matrix, one 0/1 column per target column.
    feature_names : tuple of str or None
        The names of the ``D`` feature columns, or ``None`` when the source
        has none (a ``.npz`` without ``feature_names``, a file without a
        header); unnamed features are matched by position.
    target_name : str or None
        The name of the target column, when it has one.
    source : str
        The built-in name or file path the data came from, for messages.
    ids : ndarray of shape (N,) or None
        The identifier column's values, when one was named.
    id_name : str or None
        The identifier column's name.
    columns : tuple of Column
        Every column of a file, with its role and kind; empty for a built-in.
    target_choice : str or None
        How the target column was chosen (see ``Table.target_choice``).
    encoding, n_dropped, warnings, unseen, raw
        As :class:`twolayer.io.tables.Table` has them: how the feature columns
        became ``X`` (``None``: as read), the rows dropped for a missing cell,
        warnings for the user, unseen categories per column, and the feature
        columns as read (when asked for).
    target_names : tuple of str or None
        The target columns of a multilabel target, in the order of ``y``'s
        columns; ``None`` for one target column.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: tuple[str, ...] | None
    target_name: str | None
    source: str
    ids: np.ndarray | None = None
    id_name: str | None = None
    columns: tuple[Column, ...] = ()
    target_choice: str | None = None
    encoding: FeatureEncoding | None = None
    n_dropped: int = 0
    warnings: tuple[str, ...] = ()
    unseen: dict[str, int] = field(default_factory=dict)
    raw: dict[str, np.ndarray] | None = None
    target_names: tuple[str, ...] | None = None

    @property
    def n_samples(self) -> int:
        """The number of patterns ``N``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """The number of features ``D``."""
        return int(self.X.shape[1])

    @property
    def target_note(self) -> str | None:
        """One line that says which column is the target and why (``None`` for a built-in or a ``.npz``)."""
        return _targets_note(self.target_names) or _target_note(self.target_name, self.target_choice)

    def fingerprint(self) -> str:
        """A SHA-256 digest of ``X`` and ``y``: a checkpoint resumes only on the same data."""
        digest = hashlib.sha256()
        digest.update(repr(self.X.shape).encode())
        digest.update(np.ascontiguousarray(self.X, dtype=np.float64).tobytes())
        if self.y is not None:
            digest.update(repr([str(v) for v in self.y.tolist()]).encode())
        return digest.hexdigest()

    @classmethod
    def from_table(cls, table: Table) -> Dataset:
        """The dataset a :class:`~twolayer.io.tables.Table` holds."""
        return cls(
            X=table.X,
            y=table.y,
            feature_names=table.feature_names,
            target_name=table.target_name,
            source=table.source,
            ids=table.ids,
            id_name=table.id_name,
            columns=table.columns,
            target_choice=table.target_choice,
            encoding=table.encoding,
            n_dropped=table.n_dropped,
            warnings=table.warnings,
            unseen=table.unseen,
            raw=table.raw,
            target_names=table.target_names,
        )


# --------------------------------------------------------------------------
# Built-in datasets
# --------------------------------------------------------------------------


def load_builtin(name: str) -> Dataset:
    """Load a built-in dataset by name.

    Parameters
    ----------
    name : str
        One of :data:`BUILTINS`.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        For an unknown name, listing the known ones.
    """
    builtin = BUILTINS.get(name)
    if builtin is None:
        raise DataError(
            f"unknown dataset {name!r}: the built-ins are {', '.join(BUILTINS)}{_suggest(name, list(BUILTINS))}"
        )
    X, y, names = builtin.make()
    return Dataset(X=X, y=y, feature_names=names, target_name="target", source=name)


def _builtin_columns(
    data: Dataset,
    features: Sequence[str] | int | None,
    select: Sequence[str] | None,
    drop: Sequence[str] | None,
) -> Dataset:
    if features is None and select is None and drop is None:
        return data
    assert data.feature_names is not None
    plan = _plan_columns(
        data.source,
        data.feature_names,
        target_in_columns=False,
        features=select,
        drop=drop,
        model_features=features,
    )
    names = tuple(data.feature_names[j] for j in plan.features)
    return Dataset(data.X[:, plan.features], data.y, names, data.target_name, data.source)


# --------------------------------------------------------------------------
# Files, through the table reader
# --------------------------------------------------------------------------


def read_csv(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    features: Sequence[str] | int | None = None,
    require_target: bool = True,
    default_target: str | None = None,
) -> Dataset:
    """Read a delimited text file (comma, tab, semicolon or ``|``, sniffed), whatever its name.

    :func:`twolayer.io.tables.read_table` with ``file_format="csv"``, as a
    :class:`Dataset`; ``features`` is its ``model_features``: ``None`` (every
    column but the target), a model's feature names (exactly these columns,
    order and extra columns do not matter), or a model's number of features
    (columns by position, the last one the target when there is one more).

    Raises
    ------
    DataError
        A missing or unreadable file, a bad header, a row of the wrong length,
        an unknown column, a non-numeric or missing cell (with its line and
        column), NaN or infinity (where), an empty label.
    """
    table = read_table(
        path,
        target=target,
        model_features=features,
        require_target=require_target,
        default_target=default_target,
        file_format="csv",
    )
    return Dataset.from_table(table)


def read_npz(
    path: str | os.PathLike[str],
    *,
    features: Sequence[str] | int | None = None,
    require_target: bool = True,
) -> Dataset:
    """Read a NumPy ``.npz`` archive with arrays ``X`` and ``y``, without unpickling anything.

    :func:`twolayer.io.tables.read_table` with ``file_format="npz"``, as a
    :class:`Dataset`: ``X`` of shape (N, D) with numbers, ``y`` of shape (N,)
    with integers (whole floats and booleans are taken as integers) or
    strings, and optionally ``feature_names``, D strings. ``features`` is as
    for :func:`read_csv`.

    Raises
    ------
    DataError
        A missing or damaged file, a pickled array, a missing ``X`` or ``y``,
        wrong shapes or dtypes, NaN or infinity (where).
    """
    table = read_table(path, model_features=features, require_target=require_target, file_format="npz")
    return Dataset.from_table(table)


# --------------------------------------------------------------------------
# Any source
# --------------------------------------------------------------------------


def load_dataset(
    source: str,
    *,
    target: str | None = None,
    features: Sequence[str] | int | None = None,
    require_target: bool = True,
    default_target: str | None = None,
    select: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    id_column: str | None = None,
    sep: str | None = None,
    missing: str | None = None,
    encoding: FeatureEncoding | None = None,
    keep_raw: bool = False,
    targets: Sequence[str] | None = None,
) -> Dataset:
    """Load a built-in by name, or a table from a file or standard input (``"-"``).

    Parameters
    ----------
    source : str
        A name from :data:`BUILTINS`, a file path, or ``"-"``.
    target : str, optional
        The target column of a file. Default: a column named ``target``,
        ``label``, ``class`` or ``y``, else the last (for a model: the
        column ``default_target`` names, else the last one the model does
        not read).
    features : sequence of str, int or None
        The feature columns a trained model needs, by name or by count;
        ``None`` for a new model (training).
    require_target : bool, default True
        Whether the labels must be present.
    default_target : str, optional
        The target column when ``target`` is not given and the file has a
        column of this name (a model remembers the name of its target).
    select : sequence of str, optional
        For a new model: the feature columns, by name or glob (``--features``).
    drop : sequence of str, optional
        For a new model: columns, by name or glob, left out of the features (``--drop``).
    id_column : str, optional
        A column that identifies the rows, never a feature (``--id``).
    sep : str, optional
        The delimiter of delimited text, one character (``--sep``); default sniffed.
    missing : str, optional
        For a new model: what becomes of a missing feature cell (``--missing``;
        default ``"error"``).
    encoding : FeatureEncoding, optional
        A model's encoding of its feature columns; ``features`` must then be
        its column names.
    keep_raw : bool, default False
        Keep the feature columns as read (``Dataset.raw``).
    targets : sequence of str, optional
        Several target columns of a file, in place of ``target``: a multilabel
        target, ``y`` an (N, K) matrix of 0 and 1 (see
        :func:`twolayer.io.tables.read_table`).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Anything wrong with the source, in one line.
    ValueError
        ``select`` or ``drop`` together with ``features``; ``sep`` not one character.
    """
    if _is_builtin(source):
        _no_targets(source, targets)
        return _builtin(source, features, select, drop, target, id_column, sep, encoding, keep_raw)
    _check_file(source)
    table = read_table(
        source,
        target=target,
        features=select,
        drop=drop,
        id_column=id_column,
        sep=sep,
        require_target=require_target,
        model_features=features,
        default_target=default_target,
        missing=missing,
        encoding=encoding,
        keep_raw=keep_raw,
        targets=targets,
    )
    return Dataset.from_table(table)


def load_batches(
    source: str,
    *,
    features: Sequence[str] | int,
    encoding: FeatureEncoding | None = None,
    target: str | None = None,
    require_target: bool = True,
    default_target: str | None = None,
    id_column: str | None = None,
    sep: str | None = None,
    keep_raw: bool = False,
    batch_bytes: int = BATCH_BYTES,
    targets: Sequence[str] | None = None,
) -> Iterator[Dataset]:
    """:func:`load_dataset` for a trained model, a batch of rows at a time (a built-in in one).

    The parameters are :func:`load_dataset`'s; ``batch_bytes`` is
    :func:`twolayer.io.tables.iter_table`'s. A problem is raised when the
    batch that holds it is reached, so a caller writes nothing for good
    until the last batch is through.

    Yields
    ------
    Dataset
        The next rows.
    """
    if _is_builtin(source):
        _no_targets(source, targets)
        yield _builtin(source, features, None, None, target, id_column, sep, encoding, keep_raw)
        return
    _check_file(source)
    for table in iter_table(
        source,
        model_features=features,
        encoding=encoding,
        target=target,
        id_column=id_column,
        sep=sep,
        require_target=require_target,
        default_target=default_target,
        keep_raw=keep_raw,
        batch_bytes=batch_bytes,
        targets=targets,
    ):
        yield Dataset.from_table(table)


def _no_targets(source: str, targets: Sequence[str] | None) -> None:
    if targets is not None:
        raise DataError(f"--target applies to files; {source!r} is a built-in dataset with one target")


def _is_builtin(source: str) -> bool:
    return source != STDIN and source in BUILTINS and not Path(source).exists()


def _builtin(
    source: str,
    features: Sequence[str] | int | None,
    select: Sequence[str] | None,
    drop: Sequence[str] | None,
    target: str | None,
    id_column: str | None,
    sep: str | None,
    encoding: FeatureEncoding | None,
    keep_raw: bool,
) -> Dataset:
    for option, value in (("--target", target), ("--id", id_column), ("--sep", sep)):
        if value is not None:
            raise DataError(f"{option} applies to files; {source!r} is a built-in dataset")
    if encoding is not None and encoding.kinds.count("numeric") != len(encoding.kinds):
        raise DataError(f"the model reads text columns, which the built-in dataset {source!r} does not have")
    data = _builtin_columns(load_builtin(source), features, select, drop)
    if keep_raw and data.feature_names is not None:
        data = replace(data, raw={name: data.X[:, j] for j, name in enumerate(data.feature_names)})
    return data


def _check_file(source: str) -> None:
    """Refuse a source that is neither standard input nor an existing path, saying what it might have meant."""
    path = Path(source)
    if source == STDIN or path.exists():
        return
    if path.suffix or os.sep in source or (os.altsep and os.altsep in source):
        raise DataError(f"no such file: {source}")
    raise DataError(
        f"unknown dataset {source!r}: not a built-in ({', '.join(BUILTINS)}){_suggest(source, list(BUILTINS))} "
        "and not a file"
    )


def check_classes(data: Dataset) -> None:
    """Require at least two classes, as training a classifier does (any labels of a multilabel target).

    Raises
    ------
    DataError
        When ``y`` is missing or holds a single class, naming it.
    """
    if data.y is None:
        raise DataError(f"{data.source} has no labels to train on")
    if data.y.ndim == 2:
        return  # a multilabel target: each column is 0 or 1, and one label alone is a problem too
    classes = np.unique(data.y)
    if classes.size < 2:
        column = f"the target {data.target_name!r}" if data.target_name else "the labels"
        raise DataError(
            f"{data.source}: {column} holds a single class ({classes[0].item()!r}); a classifier needs at least two"
        )


@dataclass(frozen=True)
class ColumnDescription:
    """One row of ``train --describe``: a column, its kind and role, its missing cells and its inputs."""

    name: str
    kind: str
    role: str
    missing: str
    inputs: str


def describe_columns(data: Dataset) -> list[ColumnDescription]:
    """What each column of a table is and what it becomes, for ``train --describe``.

    ``data`` must have been read with ``keep_raw=True`` (and a filling
    policy, so that missing cells are counted rather than refused).
    """
    from twolayer.io.encoding import missing_mask

    raw = data.raw or {}
    encoding = data.encoding
    categories = dict(zip(encoding.names, encoding.categories)) if encoding is not None else {}
    rows = []
    for column in data.columns:
        role = {"id": "identifier"}.get(column.role, column.role)
        missing, inputs = "", ""
        if column.name in raw:
            missing = str(int(np.count_nonzero(missing_mask(raw[column.name]))))
            cats = categories.get(column.name)
            inputs = f"{len(cats)} (one per category)" if cats else "1"
        rows.append(ColumnDescription(column.name, column.kind or "", role, missing, inputs))
    return rows
