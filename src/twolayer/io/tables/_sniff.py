"""Delimited text before it is read: its lines, its delimiter, its header, what each column holds.

Python's csv module on a sample, the first complete lines of at least 64 KiB
when there are as many: the dialect found here is what
:mod:`~twolayer.io.tables._delimited` then has pyarrow read the whole file
with, and the physical lines counted here are how messages name a place.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from twolayer.errors import DataError
from twolayer.io.tables._source import _FORMAT_SUFFIXES, _Input

#: The cells of a delimited file that mean "no value" in a numeric column.
MISSING_VALUES = ("", "NA", "N/A", "n/a", "NULL", "null", "None")


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
