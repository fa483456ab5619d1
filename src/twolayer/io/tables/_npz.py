"""NPZ archives: the arrays ``X``, ``y`` and optionally ``feature_names``, loaded without unpickling.

An archive has neither text nor column types to read: its checks are on the
arrays' shapes and dtypes, and only a missing cell (NaN), a policy for
them or a model's encoding sends ``X`` through :mod:`~twolayer.io.tables._features`.
"""

from __future__ import annotations

import zipfile
from typing import Any, BinaryIO

import numpy as np

from twolayer.errors import DataError
from twolayer.io.tables._arrow import _whole_labels
from twolayer.io.tables._columns import _Options
from twolayer.io.tables._features import _Features, _finish, _Place
from twolayer.io.tables._messages import _reading
from twolayer.io.tables._result import Column, Table
from twolayer.io.tables._source import _Input, _pyarrow, _seekable


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
    if options.target is not None or options.targets is not None:
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
    """The columns of an unencoded ``X`` as ``Table.raw`` holds them, when asked for."""
    if not options.keep_raw:
        return None
    labels = names or tuple(f"column_{k + 1}" for k in range(X.shape[1]))
    return {name: X[:, k] for k, name in enumerate(labels)}
