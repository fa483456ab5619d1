"""Data for the command line: the built-in datasets and the user's files.

A dataset is a feature matrix ``X`` of shape ``(N, D)`` (float64, finite), a
label vector ``y`` of shape ``(N,)`` (integers or strings) and, when the
source has them, the names of the feature columns. Sources are

* the built-ins (:mod:`twolayer.io.builtin_datasets`): ``digits``, ``iris``,
  ``wine`` and ``breast_cancer`` as shipped with scikit-learn (read offline),
  and ``moons``, ``circles`` and ``blobs``, generated with a fixed seed so
  that each name always means the same data;
* a CSV file with a header row: numeric feature columns and a target column
  (the last one, or the one named by ``target``) that may hold strings;
* a ``.npz`` archive with arrays ``X`` and ``y`` (and optionally
  ``feature_names``), read without unpickling anything.

Every problem with the user's input raises :class:`DataError` with one line
that names the file, the place (line and column, or array and index) and what
was expected; the command line prints it and exits with status 2.

This module reads files and nothing else: of ``twolayer`` it imports only the
error type and the list of built-ins.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from twolayer.errors import DataError
from twolayer.io.builtin_datasets import BUILTINS, Builtin

__all__ = [
    "BUILTINS",
    "Builtin",
    "DataError",
    "Dataset",
    "check_classes",
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
        The features, all finite.
    y : ndarray of shape (N,) or None
        The labels: int64, or str when any label is not an integer. ``None``
        when the source holds no target (allowed only for prediction).
    feature_names : tuple of str or None
        The names of the ``D`` feature columns, or ``None`` when the source
        has none (a ``.npz`` without ``feature_names``); unnamed features are
        matched by position.
    target_name : str or None
        The name of the target column, when it has one.
    source : str
        The built-in name or file path the data came from, for messages.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: tuple[str, ...] | None
    target_name: str | None
    source: str

    @property
    def n_samples(self) -> int:
        """The number of patterns ``N``."""
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        """The number of features ``D``."""
        return int(self.X.shape[1])

    def fingerprint(self) -> str:
        """A SHA-256 digest of ``X`` and ``y``: a checkpoint resumes only on the same data."""
        digest = hashlib.sha256()
        digest.update(repr(self.X.shape).encode())
        digest.update(np.ascontiguousarray(self.X, dtype=np.float64).tobytes())
        if self.y is not None:
            digest.update(repr([str(v) for v in self.y.tolist()]).encode())
        return digest.hexdigest()


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


# --------------------------------------------------------------------------
# Selecting columns: shared by every source
# --------------------------------------------------------------------------


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: str, limit: int = 40) -> str:
    # repr() keeps the message on one line whatever the cell holds.
    return repr(value if len(value) <= limit else value[:limit] + "...")


def _missing_columns_error(source: str, missing: Sequence[str], available: Sequence[str]) -> DataError:
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


def _select(
    source: str,
    names: tuple[str, ...] | None,
    n_columns: int,
    features: Sequence[str] | int | None,
    exclude: int | None,
) -> tuple[list[int], tuple[str, ...] | None]:
    """Pick the feature columns: every column but ``exclude``, the named ones, or ``D`` by position."""
    if features is None:
        columns = [j for j in range(n_columns) if j != exclude]
        return columns, None if names is None else tuple(names[j] for j in columns)
    if not isinstance(features, int) and names is not None:
        index = {name: j for j, name in enumerate(names)}
        missing = [f for f in features if f not in index]
        if missing:
            raise _missing_columns_error(source, missing, names)
        return [index[f] for f in features], tuple(features)
    # Unnamed on one side: match by position, and the count must agree.
    expected = features if isinstance(features, int) else len(features)
    columns = [j for j in range(n_columns) if j != exclude]
    if len(columns) != expected:
        raise DataError(f"{source}: the model expects {expected} features, got {len(columns)}")
    return columns, None if names is None else tuple(names[j] for j in columns)


# --------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?[0-9]+")


def _labels(values: list[str]) -> np.ndarray:
    # Integers stay integers (a CSV cannot say so otherwise); anything else
    # is a string label, kept exactly as written.
    if all(_INTEGER.fullmatch(v) for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    return np.array(values, dtype=str)


def _numeric_column(path: str, name: str, cells: list[str], lines: list[int]) -> np.ndarray:
    try:
        if any("_" in c for c in cells):
            raise ValueError  # Python's float() reads "1_000"; a CSV should not
        column = np.array([float(c) for c in cells], dtype=np.float64)
    except ValueError:
        for cell, line in zip(cells, lines):
            try:
                if "_" in cell:
                    raise ValueError
                float(cell)
            except ValueError:
                got = "an empty cell" if cell == "" else _show(cell)
                raise DataError(f"{path}, line {line}, column {name!r}: expected a number, got {got}") from None
        raise  # pragma: no cover - every failing cell is reported above
    bad = np.flatnonzero(~np.isfinite(column))
    if bad.size:
        i = int(bad[0])
        what = "NaN" if np.isnan(column[i]) else "infinity"
        more = f" (and {bad.size - 1} more non-finite cells in this column)" if bad.size > 1 else ""
        raise DataError(f"{path}, line {lines[i]}, column {name!r}: {what} is not allowed{more}")
    return column


def read_csv(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    features: Sequence[str] | int | None = None,
    require_target: bool = True,
    default_target: str | None = None,
) -> Dataset:
    """Read a CSV file with a header row.

    Parameters
    ----------
    path : path-like
        The file: UTF-8 text, comma-separated, the first row naming the
        columns. Blank lines are skipped; cells are stripped of spaces.
    target : str, optional
        The target column. By default the last column, except when
        ``features`` names the columns to use and the target is absent.
    features : sequence of str, int or None
        ``None``: every column but the target is a feature. A sequence of
        names (a model's): exactly these columns in this order, any others
        ignored, so order and extra columns do not matter. An int ``D`` (a
        model trained without names): the columns by position, all of them
        when there are ``D``, all but the target when there are ``D + 1``.
    require_target : bool, default True
        When False the labels are not read (``y`` is ``None``) and a file
        without a target column is accepted, as for prediction.
    default_target : str, optional
        The target when ``target`` is not given and the file has a column of
        this name (a model remembers the name of its target column).

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        A missing or unreadable file, a bad header, a row of the wrong length,
        an unknown column, a non-numeric cell (with its line and column), NaN
        or infinity (where), an empty label.
    """
    source = os.fspath(path)
    with _reading(source, "a CSV file"):
        try:
            with open(source, encoding="utf-8-sig", newline="") as handle:
                reader = csv.reader(handle)
                # line_num after a row is read is the line it ends on: what an editor shows
                rows = [(reader.line_num, row) for row in reader]
        except UnicodeDecodeError as exc:
            raise DataError(f"{source} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
        except csv.Error as exc:
            raise DataError(f"{source}: not a valid CSV file ({exc})") from None

    rows = [(line, [cell.strip() for cell in row]) for line, row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{source} is empty: expected a header row and data rows")
    header_line, header = rows[0]
    body = rows[1:]
    for j, name in enumerate(header):
        if name == "":
            raise DataError(f"{source}, line {header_line}: the header's column {j + 1} has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{source}, line {header_line}: column {name!r} appears twice in the header")
        seen.add(name)
    if len(header) < 2 and features is None:
        raise DataError(
            f"{source}: the header has one column ({_show(header[0])}); expected feature columns and a "
            "target column separated by commas"
        )
    if not body:
        raise DataError(f"{source} has a header but no data rows")
    for line, row in body:
        if len(row) != len(header):
            raise DataError(f"{source}, line {line}: {len(row)} fields, but the header has {len(header)}")

    names = tuple(header)
    model_reads = () if features is None or isinstance(features, int) else tuple(features)
    if target is None and default_target in names and default_target not in model_reads:
        target = default_target
    if target is not None and target not in names:
        raise DataError(
            f"{source} has no column {target!r}{_suggest(target, names)}; its columns are {', '.join(names)}"
        )
    if target is not None:
        target_index: int | None = names.index(target)
    elif features is None:
        target_index = len(names) - 1
    elif isinstance(features, int):
        # Unnamed model: a file with one column more than it needs has a target (the last).
        if len(names) not in (features, features + 1):
            raise DataError(
                f"{source} has {len(names)} columns; the model expects {features} features "
                "(and, optionally, the target last)"
            )
        target_index = len(names) - 1 if len(names) == features + 1 else None
    else:
        # Named model: the last column is the target unless the model reads it.
        target_index = len(names) - 1 if names[-1] not in features else None
    if target_index is not None and names[target_index] in model_reads:
        raise DataError(f"{source}: column {names[target_index]!r} is a feature of the model, not a target")
    if target_index is None and require_target:
        raise DataError(f"{source}: no target column; name it with --target")

    columns, feature_names = _select(source, names, len(names), features, target_index)
    lines = [line for line, _ in body]
    X = np.empty((len(body), len(columns)), dtype=np.float64)
    for out, j in enumerate(columns):
        X[:, out] = _numeric_column(source, names[j], [row[j] for _, row in body], lines)

    y = None
    target_name = None if target_index is None else names[target_index]
    if target_index is not None and require_target:
        values = [row[target_index] for _, row in body]
        for value, line in zip(values, lines):
            if value == "":
                raise DataError(f"{source}, line {line}, column {target_name!r}: the label is empty")
        y = _labels(values)
    return Dataset(X=X, y=y, feature_names=feature_names, target_name=target_name, source=source)


# --------------------------------------------------------------------------
# NPZ archives
# --------------------------------------------------------------------------


def _npz_array(source: str, archive: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
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
        return y.astype(np.int64)
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind == "U":
        return y.astype(str)
    if y.dtype.kind == "f":
        finite = np.isfinite(y)
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise DataError(f"{source}: y[{i}] is {y[i].item()}; class labels must be integers or strings")
        fractional = np.flatnonzero(y != np.round(y))
        if fractional.size:
            i = int(fractional[0])
            raise DataError(
                f"{source}: y[{i}] = {y[i].item()!r} is not a whole number; class labels must be integers or strings"
            )
        return y.astype(np.int64)
    raise DataError(f"{source}: y has dtype {y.dtype}; expected integers or strings")


def _read_npz_arrays(
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


def read_npz(
    path: str | os.PathLike[str],
    *,
    features: Sequence[str] | int | None = None,
    require_target: bool = True,
) -> Dataset:
    """Read a NumPy ``.npz`` archive with arrays ``X`` and ``y``.

    The archive is opened with ``allow_pickle=False``: an array of Python
    objects (which only unpickling could rebuild) is refused, so loading runs
    no code from the file.

    Parameters
    ----------
    path : path-like
        The archive: ``X`` of shape (N, D) with numbers, ``y`` of shape (N,)
        with integers (whole floats and booleans are taken as integers) or
        strings, and optionally ``feature_names``, D strings.
    features : sequence of str, int or None
        As for :func:`read_csv`: names select columns when the archive has
        ``feature_names``; otherwise the number of columns must match.
    require_target : bool, default True
        When False ``y`` is not read (it is ``None``) and may be absent.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        A missing or damaged file, a pickled array, a missing ``X`` or ``y``,
        wrong shapes or dtypes, NaN or infinity (where).
    """
    source = os.fspath(path)
    # numpy leaks the file it opens when the archive is damaged; opening it
    # here closes it whatever happens.
    with _reading(source, "a .npz file"), open(source, "rb") as handle:
        X, y, names = _read_npz_arrays(source, handle, require_target)

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

    columns, selected = _select(source, feature_names, X.shape[1], features, None)
    X = X[:, columns] if columns != list(range(X.shape[1])) else X
    return Dataset(X=X, y=y, feature_names=selected, target_name="y" if y is not None else None, source=source)


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
) -> Dataset:
    """Load a built-in by name, or a ``.csv`` or ``.npz`` file by path.

    Parameters
    ----------
    source : str
        A name from :data:`BUILTINS` or a file path ending in ``.csv`` or
        ``.npz``.
    target : str, optional
        The target column of a CSV file (default: the last column).
    features : sequence of str, int or None
        The feature columns a model needs, by name or by count; ``None``
        takes every column but the target (for training).
    require_target : bool, default True
        Whether the labels must be present.
    default_target : str, optional
        For a CSV file: the target column when ``target`` is not given and
        the file has a column of this name.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Anything wrong with the source, in one line.
    """
    path = Path(source)
    suffix = path.suffix.lower()
    if source in BUILTINS and not path.exists():
        if target is not None:
            raise DataError(f"--target applies to CSV files; {source!r} is a built-in dataset")
        data = load_builtin(source)
        if features is None:
            return data
        columns, names = _select(source, data.feature_names, data.n_features, features, None)
        return Dataset(data.X[:, columns], data.y, names, data.target_name, source)
    if suffix == ".csv":
        return read_csv(
            path, target=target, features=features, require_target=require_target, default_target=default_target
        )
    if suffix == ".npz":
        if target is not None:
            raise DataError(f"--target applies to CSV files; {source} is a .npz archive (its labels are 'y')")
        return read_npz(path, features=features, require_target=require_target)
    if path.exists():
        raise DataError(f"{source}: unsupported file type {suffix or '(no suffix)'!r}; expected .csv or .npz")
    if suffix or os.sep in source or (os.altsep and os.altsep in source):
        raise DataError(f"no such file: {source}")
    raise DataError(
        f"unknown dataset {source!r}: not a built-in ({', '.join(BUILTINS)}){_suggest(source, list(BUILTINS))} "
        "and not a .csv or .npz file"
    )


def check_classes(data: Dataset) -> None:
    """Require at least two classes, as training a classifier does.

    Raises
    ------
    DataError
        When ``y`` is missing or holds a single class, naming it.
    """
    if data.y is None:
        raise DataError(f"{data.source} has no labels to train on")
    classes = np.unique(data.y)
    if classes.size < 2:
        column = f"the target {data.target_name!r}" if data.target_name else "the labels"
        raise DataError(
            f"{data.source}: {column} holds a single class ({classes[0].item()!r}); a classifier needs at least two"
        )
