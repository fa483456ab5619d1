"""Atomic writes: a file is replaced whole or not at all, and a failed run leaves every old file as it was.

Each new file is written in full to a temporary file in the target's folder,
flushed to disk, and only then renamed over the target (``os.replace``, atomic
on POSIX and Windows); the folder is flushed too, so that the rename survives a
power cut. :func:`atomic_write_all` stages every file of one run before any
replaces its old version. :func:`staged` does the same for a file written
piece by piece (a stream of predictions too large to hold whole): it yields the
open temporary file and renames it into place only when the writing finished
without an error. A destination that exists and is not a regular file (a
device, FIFO or socket, or a folder) is refused: renaming over it would
replace it.
"""

from __future__ import annotations

import io
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from twolayer.errors import DataError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["atomic_write", "atomic_write_all", "staged"]


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable. Not every platform can open a folder
    # (Windows cannot); there the rename is as durable as the OS makes it.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file is either the old one or the new one.

    The bytes go to a temporary file in the same folder (a rename is atomic
    only within one file system), which is flushed and ``fsync``-ed before
    ``os.replace`` puts it in place. If anything fails, or the process is
    interrupted, before the rename, the temporary file is removed and
    ``path`` is untouched. The new file gets the usual permissions (0666
    less the umask).

    Parameters
    ----------
    path : path-like
        The destination; its folder must exist.
    data : bytes
        The complete contents.

    Raises
    ------
    DataError
        When the file cannot be written, naming it and the reason; also
        when ``path`` is a folder, a device, a FIFO or a socket.
    """
    atomic_write_all([(path, data)])


def atomic_write_all(files: Sequence[tuple[str | os.PathLike[str], bytes]]) -> None:
    """Write several files as :func:`atomic_write` does, none of them unless all can be.

    Every file is first written in full to its temporary file and
    ``fsync``-ed; only when all are on disk are they renamed into place, in
    order. A failure while writing (a full disk, a folder that vanished)
    removes every temporary file and leaves every destination as it was: a
    run that writes a model and its plot never leaves a new model beside an
    old plot, or the reverse. (The renames themselves, within each
    destination's folder, are the only step left that could fail between
    two files; the error then names the files already replaced.)

    Parameters
    ----------
    files : sequence of (path-like, bytes)
        The destinations and their complete contents.

    Raises
    ------
    DataError
        When a file cannot be written, naming it and the reason.
    """
    pending: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            pending.append((_stage(Path(path), data), Path(path)))
        replaced: list[str] = []
        for temporary, target in pending:
            try:
                os.replace(temporary, target)
            except OSError as exc:
                already = f" ({', '.join(replaced)} already replaced)" if replaced else ""
                raise DataError(f"cannot write {target}: {exc.strerror or exc}{already}") from None
            replaced.append(str(target))
    except BaseException:
        for temporary, _ in pending:
            _remove(temporary)
        raise
    for folder in {target.parent for _, target in pending}:
        _fsync_folder(folder)


def _refuse_special(target: Path) -> None:
    """Refuse a target that exists and is not a regular file: the rename would replace a device
    (``/dev/null`` made a regular file, for everyone), a FIFO or a socket with a file."""
    try:
        mode = target.stat().st_mode  # through a symbolic link: what the link leads to
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode):
        return
    kinds = (
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    )
    what = next((name for test, name in kinds if test(mode)), "not a regular file")
    raise DataError(f"cannot write {target}: it is {what}, which a new file would replace")


class _TemporaryFile(io.FileIO):
    """The temporary file's descriptor: a failed write names the destination, not the temporary file."""

    def __init__(self, fd: int, target: Path) -> None:
        super().__init__(fd, "wb", closefd=True)
        self.target = target

    def write(self, data: ReadableBuffer, /) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            raise DataError(f"cannot write {self.target}: {exc.strerror or exc}") from None


def _create_temporary(target: Path) -> tuple[Path, io.BufferedWriter]:
    """A new, empty temporary file beside ``target``, open for writing, and its path.

    ``target`` is checked first: its folder must exist, and it must not be a folder,
    a device, a FIFO or a socket. Writes to the file raise :class:`DataError` naming
    ``target``.
    """
    folder = target.parent
    if not folder.is_dir():
        raise DataError(f"cannot write {target}: the folder {folder} does not exist")
    if target.is_dir():
        raise DataError(f"cannot write {target}: it is a folder")
    _refuse_special(target)
    temporary = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        return temporary, io.BufferedWriter(_TemporaryFile(fd, target))
    except BaseException:
        os.close(fd)
        _remove(temporary)
        raise


def _commit(handle: io.BufferedWriter, target: Path) -> None:
    """Flush ``handle``'s data to the disk and close it; a failure is a :class:`DataError` naming ``target``."""
    try:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
    except OSError as exc:
        raise DataError(f"cannot write {target}: {exc.strerror or exc}") from None


def _abandon(handle: io.BufferedWriter, temporary: Path) -> None:
    """Close ``handle`` without caring whether its last data reach the file, and remove the file."""
    try:
        handle.close()  # may try to flush what a failed write left in the buffer, and fail again
    except (OSError, DataError):
        pass
    _remove(temporary)


def _remove(temporary: Path) -> None:
    try:
        os.unlink(temporary)
    except FileNotFoundError:
        pass


def _stage(target: Path, data: bytes) -> Path:
    """``data`` in a new, fsync-ed temporary file beside ``target``; its path."""
    temporary, handle = _create_temporary(target)
    try:
        handle.write(data)
        _commit(handle, target)
    except BaseException:
        _abandon(handle, temporary)
        raise
    return temporary


@contextmanager
def staged(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A file written piece by piece that appears at ``path`` whole, or not at all.

    The checks of :func:`atomic_write` come first: ``path``'s folder must exist,
    and ``path`` must not be a folder, a device, a FIFO or a socket. The block
    then writes to a new temporary file in that folder. When the block ends
    without an exception, the file is flushed and ``fsync``-ed and renamed over
    ``path`` (``path`` is checked again just before, as a long run gives a FIFO
    time to appear there); when it raises, or the process is interrupted, the
    temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : path-like
        The destination; its folder must exist.

    Yields
    ------
    BinaryIO
        The temporary file, open for writing bytes. A failed write raises
        :class:`DataError` naming ``path`` and the reason (a full disk, say).

    Raises
    ------
    DataError
        When the file cannot be created, written or renamed into place, naming
        ``path`` and the reason; also when ``path`` is a folder, a device, a
        FIFO or a socket.

    Examples
    --------
    >>> with staged(tmp / "out.csv") as handle:  # doctest: +SKIP
    ...     for block in blocks:
    ...         handle.write(block)
    """
    target = Path(path)
    temporary, handle = _create_temporary(target)
    try:
        yield handle
        _commit(handle, target)
        _refuse_special(target)
        try:
            os.replace(temporary, target)
        except OSError as exc:
            raise DataError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        _abandon(handle, temporary)
        raise
    _fsync_folder(target.parent)
