"""From a table's feature columns to the network's inputs: missing cells filled, text columns one-hot.

A table as people export it has numeric columns, text (and boolean) columns, and empty cells. The
network takes a matrix of finite numbers. :class:`FeatureEncoding` is the map between the two,
fitted on the training rows and stored in the model file as JSON (never pickled), so that
``predict`` and ``evaluate`` fill and encode new rows exactly as training did:

* missing cells, by the policy ``missing``: ``"error"`` (refuse, naming the first empty cell),
  ``"drop"`` (train on complete rows only), or filled with the training column's ``"mean"``,
  ``"median"`` or ``"most-frequent"`` value, computed by scikit-learn's :class:`SimpleImputer`. A
  text column has no mean or median: under those two policies its empty cells take its most
  frequent value;
* a text column becomes one input per category seen in training (scikit-learn's
  :class:`OneHotEncoder`); a category never seen in training sets none of them (all zeros), so a
  trained model predicts on new categories without failing, and the caller can say how many rows
  had one (:meth:`FeatureEncoding.unseen_categories`).

The fitted state is the fill values and the category lists, nothing more: loading rebuilds the
scikit-learn transformers by fitting them to one row made of those values, which gives exactly the
stored statistics (the mean, median and mode of one value are that value) without touching their
private attributes.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from twolayer.errors import DataError

__all__ = [
    "MISSING_POLICIES",
    "ColumnKind",
    "FeatureEncoding",
    "fit_encoding",
    "id_like_columns",
    "missing_mask",
]

#: What to do with empty cells (``--missing``).
MISSING_POLICIES: tuple[str, ...] = ("error", "drop", "mean", "median", "most-frequent")
ColumnKind = Literal["numeric", "text"]

# The SimpleImputer strategy of each filling policy, for numeric and for text columns.
_STRATEGY = {
    "mean": ("mean", "most_frequent"),
    "median": ("median", "most_frequent"),
    "most-frequent": ("most_frequent", "most_frequent"),
}
# Below this many rows a column of distinct text values is as likely a small table's labels as an ID.
_ID_LIKE_MIN_ROWS = 20


def missing_mask(values: np.ndarray) -> np.ndarray:
    """Which cells of one column are empty: NaN in a numeric column, ``None`` (or NaN) in a text one."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        pandas = sys.modules.get("pandas")  # a table from pandas may hold its own NA (nullable dtypes)
        if pandas is not None:
            return np.asarray(pandas.isna(values), dtype=bool)
        return np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in values], dtype=bool)
    return np.zeros(values.shape, dtype=bool)


def _as_column(values: np.ndarray, kind: ColumnKind) -> np.ndarray:
    """A column in the type its transformer takes: float64 with NaN, or objects with ``None``."""
    if kind == "numeric":
        return np.asarray(values, dtype=np.float64)
    column = np.asarray(values, dtype=object)
    return np.array([None if m else str(v) for v, m in zip(column, missing_mask(column))], dtype=object)


def _first_missing(columns: Mapping[str, np.ndarray]) -> tuple[int, str] | None:
    """The first empty cell (row index, column name), reading row by row, left to right."""
    first: tuple[int, str] | None = None
    for name, values in columns.items():
        rows = np.flatnonzero(missing_mask(values))
        if rows.size and (first is None or rows[0] < first[0]):
            first = (int(rows[0]), name)
    return first


@dataclass(frozen=True)
class FeatureEncoding:
    """The fitted map from a table's feature columns to the network's input matrix.

    Attributes
    ----------
    names : tuple of str
        The feature columns, in the order their inputs come.
    kinds : tuple of {"numeric", "text"}
        Each column's kind.
    missing : str
        The policy for empty cells (one of :data:`MISSING_POLICIES`).
    fill : tuple
        Per column, the value that fills its empty cells (a float, a string), or ``None`` under the
        ``"error"`` and ``"drop"`` policies.
    categories : tuple
        Per column, the categories of a text column in input order (a tuple of str), ``None`` for a
        numeric one.
    """

    names: tuple[str, ...]
    kinds: tuple[ColumnKind, ...]
    missing: str
    fill: tuple[float | str | None, ...]
    categories: tuple[tuple[str, ...] | None, ...]

    def __post_init__(self) -> None:
        n = len(self.names)
        if not (len(self.kinds) == len(self.fill) == len(self.categories) == n):
            raise ValueError("names, kinds, fill and categories must have one entry per column")
        if self.missing not in MISSING_POLICIES:
            raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {self.missing!r}")
        for name, kind, cats in zip(self.names, self.kinds, self.categories):
            if kind not in ("numeric", "text"):
                raise ValueError(f"column {name!r}: kind must be 'numeric' or 'text', got {kind!r}")
            if (kind == "text") != (cats is not None) or (cats is not None and not cats):
                raise ValueError(f"column {name!r}: a text column has categories, a numeric one none")
        if (self.missing in ("error", "drop")) != all(f is None for f in self.fill):
            raise ValueError("fill values are stored exactly when the policy fills cells")

    @property
    def input_names(self) -> list[str]:
        """The network's inputs: a numeric column's name, or ``column=category`` for each category."""
        names: list[str] = []
        for name, cats in zip(self.names, self.categories):
            names += [name] if cats is None else [f"{name}={c}" for c in cats]
        return names

    @property
    def n_inputs(self) -> int:
        """The network's number of inputs D."""
        return sum(1 if cats is None else len(cats) for cats in self.categories)

    @property
    def fills(self) -> bool:
        """Whether empty cells are filled (rather than refused or their rows dropped)."""
        return self.missing in _STRATEGY

    def _imputer(self, k: int) -> Any:
        from sklearn.impute import SimpleImputer

        strategy = _STRATEGY[self.missing][self.kinds[k] == "text"]
        one_row = np.array([[self.fill[k]]], dtype=object if self.kinds[k] == "text" else np.float64)
        missing_values: Any = None if self.kinds[k] == "text" else np.nan
        return SimpleImputer(strategy=strategy, missing_values=missing_values).fit(one_row)

    def _encoder(self, k: int) -> Any:
        from sklearn.preprocessing import OneHotEncoder

        cats = self.categories[k]
        assert cats is not None
        encoder = OneHotEncoder(categories=[list(cats)], handle_unknown="ignore", sparse_output=False)
        return encoder.fit(np.array([[cats[0]]], dtype=object))

    def first_missing(self, columns: Mapping[str, np.ndarray]) -> tuple[int, str] | None:
        """The first empty cell of the feature columns (row index, column name) in row order, or ``None``."""
        return _first_missing({name: np.asarray(columns[name]) for name in self.names})

    def complete_rows(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """A mask of the rows with no empty cell in the feature columns."""
        masks = [missing_mask(np.asarray(columns[name])) for name in self.names]
        n = len(next(iter(columns.values()))) if columns else 0
        return ~np.logical_or.reduce(masks) if masks else np.ones(n, dtype=bool)

    def unseen_categories(self, columns: Mapping[str, np.ndarray]) -> dict[str, int]:
        """Per text column, how many rows hold a category not seen in training (empty cells aside)."""
        counts: dict[str, int] = {}
        for name, cats in zip(self.names, self.categories):
            if cats is None:
                continue
            values = _as_column(np.asarray(columns[name]), "text")
            known = set(cats)
            unseen = sum(1 for v in values if v is not None and v not in known)
            if unseen:
                counts[name] = unseen
        return counts

    def transform(
        self, columns: Mapping[str, np.ndarray], *, source: str = "the data", row_offset: int = 1
    ) -> np.ndarray:
        """The input matrix of a table's rows.

        Parameters
        ----------
        columns : mapping of str to ndarray
            At least the feature columns, by name (others are ignored), equal lengths.
        source : str
            The file, named in messages.
        row_offset : int
            The number the user gives the first row (1 for the first data row; 2 when a header counts).

        Returns
        -------
        ndarray of shape (n_rows, n_inputs), float64

        Raises
        ------
        DataError
            For a missing feature column, or an empty cell when the policy does not fill.
        """
        absent = [name for name in self.names if name not in columns]
        if absent:
            raise DataError(f"{source}: the model needs column(s) {', '.join(map(repr, absent))}, which it lacks")
        if not self.fills:
            cell = self.first_missing(columns)
            if cell is not None:
                raise DataError(
                    f"{source}: row {cell[0] + row_offset}, column {cell[1]!r} is empty; the model was trained "
                    f"with --missing {self.missing}, which fills no cells"
                )
        parts = []
        for k, (name, kind) in enumerate(zip(self.names, self.kinds)):
            column = _as_column(np.asarray(columns[name]), kind).reshape(-1, 1)
            if self.fills:
                column = self._imputer(k).transform(column)
            parts.append(self._encoder(k).transform(column) if kind == "text" else column.astype(np.float64))
        n = len(next(iter(columns.values()))) if columns else 0
        return np.hstack(parts) if parts else np.zeros((n, 0))

    def column_transformer(self) -> Any:
        """The encoding as a fitted scikit-learn ``ColumnTransformer``, for a DataFrame's named columns.

        Each feature column goes through its own steps, in ``names``
        order: a text column through :class:`SimpleImputer` (when the policy
        fills) and :class:`OneHotEncoder` with this encoding's categories; a
        numeric one through :class:`SimpleImputer` or unchanged. Its output
        is :meth:`~twolayer.io.encoding.FeatureEncoding.transform`'s matrix,
        so that :func:`twolayer.load` can put it in front of the network and
        the pipeline predicts on the table itself.
        Under the ``"error"`` and ``"drop"`` policies an empty text cell is
        refused here (ValueError), an empty numeric one by the network's
        input check.

        Returns
        -------
        sklearn.compose.ColumnTransformer
            Fitted; it needs a pandas DataFrame with at least the columns ``names``.
        """
        import pandas as pd
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

        transformers: list[tuple[str, Any, list[str]]] = []
        for k, (name, kind, cats) in enumerate(zip(self.names, self.kinds, self.categories)):
            steps: list[Any] = []
            if kind == "text":
                refuse = None if self.fills else name  # the column named when an empty cell is refused
                steps.append(
                    FunctionTransformer(_text_cells, kw_args={"refuse_empty": refuse}, feature_names_out="one-to-one")
                )
            if self.fills:
                steps.append(self._imputer(k))  # fitted already; the ColumnTransformer refits a clone alike
            if cats is not None:
                steps.append(OneHotEncoder(categories=[list(cats)], handle_unknown="ignore", sparse_output=False))
            transformers.append((f"column{k}", make_pipeline(*steps) if steps else "passthrough", [name]))
        # One row of the fill values (or any category, any number): every step refits to exactly its stored state.
        row = {
            name: [fill if fill is not None else (cats[0] if cats is not None else 0.0)]
            for name, fill, cats in zip(self.names, self.fill, self.categories)
        }
        columns = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
        columns.fit(pd.DataFrame(row))
        columns.feature_encoding_ = self  # what twolayer.save and to_onnx store in its place
        return columns

    def to_json(self) -> dict[str, Any]:
        """The fitted state as plain JSON values, for the model file."""
        return {
            "columns": [
                {"name": name, "kind": kind, "fill": fill, "categories": None if cats is None else list(cats)}
                for name, kind, fill, cats in zip(self.names, self.kinds, self.fill, self.categories)
            ],
            "missing": self.missing,
        }

    @classmethod
    def from_json(cls, record: object, *, source: str = "the model file") -> FeatureEncoding:
        """Read back :meth:`to_json`'s record, checking every field (a model file may be tampered with).

        Raises
        ------
        DataError
            Naming ``source`` and what is malformed.
        """
        try:
            assert isinstance(record, dict)
            columns = record["columns"]
            assert isinstance(columns, list)
            names, kinds, fill, categories = [], [], [], []
            for column in columns:
                assert isinstance(column, dict) and isinstance(column["name"], str)
                names.append(column["name"])
                kinds.append(column["kind"])
                value = column["fill"]
                assert value is None or (isinstance(value, (int, float, str)) and not isinstance(value, bool))
                assert not isinstance(value, float) or np.isfinite(value)
                fill.append(value)
                cats = column["categories"]
                assert cats is None or (isinstance(cats, list) and all(isinstance(c, str) for c in cats))
                categories.append(None if cats is None else tuple(cats))
            assert len(set(names)) == len(names)
            return cls(tuple(names), tuple(kinds), record["missing"], tuple(fill), tuple(categories))
        except (AssertionError, KeyError, TypeError, ValueError):
            raise DataError(f"{source}: the feature encoding is malformed") from None


def _text_cells(X: Any, refuse_empty: str | None = None) -> np.ndarray:
    """A text column's cells as :meth:`FeatureEncoding.transform` reads them: strings, ``None`` where empty.

    ``refuse_empty`` names the column when the model fills no cells: an empty one is then refused.
    """
    column = _as_column(np.asarray(X).ravel(), "text")
    if refuse_empty is not None and any(v is None for v in column):
        row = next(i for i, v in enumerate(column) if v is None)
        raise ValueError(f"row {row + 1}, column {refuse_empty!r} is empty, and the model was trained to fill no cells")
    return column.reshape(-1, 1)


def fit_encoding(
    columns: Mapping[str, np.ndarray],
    kinds: Mapping[str, ColumnKind],
    missing: str = "error",
    *,
    source: str = "the data",
    row_offset: int = 1,
) -> FeatureEncoding:
    """Fit the encoding of the given feature columns on the training rows.

    Parameters
    ----------
    columns : mapping of str to ndarray
        The feature columns of the training rows, in input order: float64 with NaN for empty cells,
        or objects (strings, ``None`` for empty cells).
    kinds : mapping of str to {"numeric", "text"}
        Each column's kind.
    missing : str
        One of :data:`MISSING_POLICIES`. Under ``"drop"`` the caller keeps only
        :meth:`FeatureEncoding.complete_rows`; what is fitted here is the same either way.
    source, row_offset
        For messages, as in :meth:`FeatureEncoding.transform`.

    Returns
    -------
    FeatureEncoding

    Raises
    ------
    DataError
        Under ``"error"``, naming the first empty cell; for a column with no value at all.
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    names = tuple(columns)
    if missing == "error":
        first = _first_missing({name: _as_column(np.asarray(columns[name]), kinds[name]) for name in names})
        if first is not None:
            raise DataError(
                f"{source}: row {first[0] + row_offset}, column {first[1]!r} is empty; choose --missing drop, "
                "mean, median or most-frequent to train anyway"
            )
    fill: list[float | str | None] = []
    categories: list[tuple[str, ...] | None] = []
    for name in names:
        kind = kinds[name]
        column = _as_column(np.asarray(columns[name]), kind)
        empty = missing_mask(column)
        if empty.all():
            raise DataError(f"{source}: column {name!r} has no values; drop it (--drop {name})")
        if missing in _STRATEGY:
            strategy = _STRATEGY[missing][kind == "text"]
            imputer = SimpleImputer(strategy=strategy, missing_values=None if kind == "text" else np.nan)
            value = imputer.fit(column.reshape(-1, 1)).statistics_[0]
            fill.append(str(value) if kind == "text" else float(value))
        else:
            fill.append(None)
        if kind == "text":
            present = column[~empty].reshape(-1, 1)
            encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(present)
            categories.append(tuple(str(c) for c in encoder.categories_[0]))
        else:
            categories.append(None)
    return FeatureEncoding(names, tuple(kinds[n] for n in names), missing, tuple(fill), tuple(categories))


def id_like_columns(columns: Mapping[str, np.ndarray], kinds: Mapping[str, ColumnKind]) -> list[str]:
    """Text columns whose every value is distinct: an identifier, not a feature (one input per row).

    Only tables of at least a few dozen rows are judged; a small table's distinct labels prove nothing.
    """
    found = []
    for name, values in columns.items():
        column = np.asarray(values)
        if kinds.get(name) != "text" or column.size < _ID_LIKE_MIN_ROWS:
            continue
        present = [v for v, m in zip(column, missing_mask(np.asarray(column, dtype=object))) if not m]
        if len(set(present)) == len(present):
            found.append(name)
    return found
