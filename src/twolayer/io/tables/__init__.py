"""Tables from the files people have: CSV and TSV, compressed or not, Parquet, Feather, NPZ, standard input.

:func:`read_table` turns one source into a feature matrix ``X``, the labels
``y``, optionally an identifier per row, and what each column was taken for.
The parsing and conversion are pyarrow's (multi-threaded, in C++); this package
decides what the file is, which columns play which role, and says in one line
where and why a file cannot be used.

The entry points are here; the work is in one private module per step, each
there only for them: what they return (``_result``), how a refusal is worded
(``_messages``), choosing the columns, the same for every format
(``_columns``), opening a source and finding its format (``_source``), from
feature columns to ``X``, also the same for every format (``_features``),
delimited text (``_sniff``, then ``_delimited``), Parquet and Feather/Arrow
(``_arrow``), and NPZ archives (``_npz``).

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
    The target is the column ``target`` names (or, for a multilabel target,
    the columns ``targets`` names: one 0/1 label each); by default the first column
    named ``target``, ``label``, ``class`` or ``y`` (in that order of
    preference, any case), else the last column (not the identifier);
    ``Table.target_choice`` says which rule chose it. ``features`` keeps
    only the columns it names or matches (:func:`fnmatch.fnmatchcase` globs:
    ``"pixel_*"``), in its order; ``drop`` leaves out those it names or
    matches. ``id_column`` is never a feature: its values are kept, as text,
    in ``Table.ids``. Columns not used are not converted, so a text
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
    in ``Table.unseen``. A text feature whose every value differs is
    encoded all the same, with a warning (``Table.warnings``) that it
    looks like an identifier.

Every refusal is a :class:`~twolayer.errors.DataError` with one line that
names the file, the place and what was expected.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from twolayer.io.encoding import MISSING_POLICIES, FeatureEncoding
from twolayer.io.tables._arrow import _ArrowRead, _read_arrow
from twolayer.io.tables._columns import TARGET_NAMES, _Options
from twolayer.io.tables._delimited import _DelimitedRead, _read_delimited
from twolayer.io.tables._npz import _read_npz
from twolayer.io.tables._result import Column, Table
from twolayer.io.tables._sniff import MISSING_VALUES
from twolayer.io.tables._source import _FORMATS, STDIN, _format_of, _open_input

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

# The results' classes are public here, where users import them; their module is private. Naming
# this package as their home gives them one documented place (the API reference, reprs, errors).
Column.__module__ = Table.__module__ = __name__


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
    targets: Sequence[str] | None = None,
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
        ``Table.ids``.
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
        Keep the feature columns as read in ``Table.raw``.
    targets : sequence of str, optional
        Several target columns, in place of ``target``: a multilabel target,
        each column holding 0 and 1 (or ``true`` and ``false``, any case, or
        booleans). ``y`` is then an int64 matrix of shape (N, K), one column
        per name in this order, and ``Table.target_names`` their names.
        Refused for a ``.npz``.

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
    targets = _check_targets(target, targets)
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
        targets,
    )
    if fmt == "npz":
        return _read_npz(inp, options)
    if fmt in ("parquet", "feather", "arrow-stream"):
        return _read_arrow(inp, fmt, options)
    return _read_delimited(inp, options, sep=sep, header=header, comment=comment)


def _check_targets(target: str | None, targets: Sequence[str] | None) -> tuple[str, ...] | None:
    if targets is None:
        return None
    if isinstance(targets, str) or not targets:
        raise ValueError(f"targets must be a non-empty sequence of column names, got {targets!r}")
    if target is not None:
        raise ValueError("give target (one column) or targets (several), not both")
    return tuple(targets)


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
    targets: Sequence[str] | None = None,
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
file_format, keep_raw, targets
        As for :func:`read_table`; one of ``model_features`` and ``encoding`` is required.
    batch_bytes : int, default 1 MiB
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
    targets = _check_targets(target, targets)
    if encoding is not None and model_features is None:
        model_features = list(encoding.names)
    inp = _open_input(os.fspath(source))
    fmt = file_format or _format_of(inp)
    options = _Options(
        target,
        None,
        None,
        id_column,
        require_target,
        model_features,
        default_target,
        "error",
        encoding,
        keep_raw,
        targets,
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
