"""Opening a source: a file, a pipe or standard input, its compression and its format.

The content decides the format before any reader runs, so this sits below
the readers and chooses among them; it also loads pyarrow, on first use
only (a built-in dataset never needs it).
"""

from __future__ import annotations

import io
import lzma
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from twolayer.errors import DataError
from twolayer.io.tables._messages import _first_line, _reading

#: The source name that means standard input.
STDIN = "-"


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


def _pyarrow() -> Any:
    # pyarrow loads in a fraction of a second; a built-in dataset never needs it.
    import pyarrow  # type: ignore[import-untyped]

    return pyarrow


def _compute() -> Any:
    import pyarrow.compute  # type: ignore[import-untyped]

    return pyarrow.compute


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
