"""Predictions out: a table of named columns as CSV, TSV, Parquet or Feather bytes.

``twolayer predict`` writes one row per input row: the identifier column first (when ``--id``
names one), the input's feature columns when asked (``--keep-columns``), the predicted class and,
with ``--proba``, one probability per class. The format follows the output's extension or
``--format``; standard output gets text (CSV unless TSV is asked for). The text formats are written
with Python's :mod:`csv` (quoting only where a value needs it, probabilities to 6 significant
digits, as a reader of the file expects to see them); the columnar ones by pyarrow, with each
column's type kept (integer labels stay integers, probabilities float64).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["PREDICTION_FORMATS", "prediction_bytes", "prediction_format"]

#: The formats predictions are written in, by the extensions that name them.
PREDICTION_FORMATS: Mapping[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "tsv": (".tsv", ".tab"),
    "parquet": (".parquet", ".pq"),
    "feather": (".feather", ".arrow"),
}


def prediction_format(path: str | os.PathLike[str] | None, given: str | None = None) -> str:
    """The format to write: ``given`` if any, else the one ``path``'s extension names, else CSV.

    Standard output (``path`` ``None`` or ``"-"``) is CSV unless ``given`` says otherwise.
    """
    if given is not None:
        if given not in PREDICTION_FORMATS:
            raise ValueError(f"format must be one of {', '.join(PREDICTION_FORMATS)}, got {given!r}")
        return given
    if path is None or os.fspath(path) == "-":
        return "csv"
    suffix = Path(path).suffix.lower()
    return next((fmt for fmt, suffixes in PREDICTION_FORMATS.items() if suffix in suffixes), "csv")


def _cell(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value.item() if isinstance(value, np.generic) else value)


def prediction_bytes(columns: Mapping[str, Sequence[object] | np.ndarray], fmt: str) -> bytes:
    """The bytes of a file holding ``columns`` (equal lengths, in order) in the format ``fmt``.

    Parameters
    ----------
    columns : mapping of str to array-like
        The table's columns by name, in the order they are written.
    fmt : {"csv", "tsv", "parquet", "feather"}

    Returns
    -------
    bytes
    """
    if fmt in ("csv", "tsv"):
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter="," if fmt == "csv" else "\t", lineterminator="\n")
        writer.writerow(list(columns))
        values = [np.asarray(v) for v in columns.values()]
        for row in zip(*values):
            writer.writerow([_cell(v) for v in row])
        return buffer.getvalue().encode("utf-8")
    import pyarrow as pa  # type: ignore[import-untyped]

    table = pa.table({name: pa.array(np.asarray(values).tolist()) for name, values in columns.items()})
    sink = pa.BufferOutputStream()
    if fmt == "parquet":
        import pyarrow.parquet as pq  # type: ignore[import-untyped]

        pq.write_table(table, sink)
    elif fmt == "feather":
        import pyarrow.feather as feather  # type: ignore[import-untyped]

        feather.write_feather(table, sink)
    else:
        raise ValueError(f"fmt must be one of {', '.join(PREDICTION_FORMATS)}, got {fmt!r}")
    return bytes(sink.getvalue().to_pybytes())
