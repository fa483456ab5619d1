"""What :func:`~twolayer.io.tables.read_table` returns: a :class:`Table`, with a :class:`Column` per column.

Apart from the readers because every format's reader builds one, and
:mod:`twolayer.io.datasets` describes a built-in dataset with the same
:class:`Column` records and target note.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twolayer.io.encoding import FeatureEncoding


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
    y : ndarray of shape (N,) or (N, K), or None
        The labels: int64, or str as written when any label is not a
        canonical integer. ``None`` when they were not asked for. With
        several target columns (``targets``, multilabel), an int64 indicator
        matrix of 0 and 1, one column per target column.
    ids : ndarray of shape (N,) or None
        The identifier column's values (as text for a delimited file), or
        ``None`` without ``id_column``.
    feature_names : tuple of str or None
        The names of the ``D`` columns of ``X``: the feature columns' names,
        or with an encoding its input names (``colour=red``); ``None`` when
        the source names none (no header, a ``.npz`` without
        ``feature_names``) and there is no encoding.
    target_name : str or None
        The target column's name (``"y"`` for a ``.npz``), or ``None`` (also
        with several target columns: see ``target_names``).
    target_choice : {"given", "model", "named", "last"} or None
        How the target was chosen: named by the caller, the name a model
        remembers, a column named like a target (``twolayer.io.tables.TARGET_NAMES``), or the
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
    target_names : tuple of str or None
        The target columns' names, in the order of ``y``'s columns, when
        several were read (multilabel); ``None`` otherwise.
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
    target_names: tuple[str, ...] | None = None

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
        return _targets_note(self.target_names) or _target_note(self.target_name, self.target_choice)


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


def _targets_note(target_names: tuple[str, ...] | None) -> str | None:
    """Say which columns are the labels of a multilabel target, or ``None`` when there are not several."""
    if not target_names:
        return None
    return f"target columns: {', '.join(repr(name) for name in target_names)} (one 0/1 label each)"
