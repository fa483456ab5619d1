"""Path safety: what a command may write, checked before it does any work.

Every ``twolayer`` command names its inputs (DATA, MODEL, the checkpoint it
resumes) and its outputs (``--out``, ``--plot``, ``--checkpoint``) and calls
:func:`check_outputs` before it reads a row or trains an epoch. An output may
be a new path in a writable folder or an existing regular file, and nothing
else:

* never the same file as an input of the same command (compared by resolved
  path and by :func:`os.path.samefile`, so hard links and symbolic links to an
  input count as the input), unless the command updates that input in place
  on purpose (``train --resume X`` rewrites the checkpoint ``X``);
* never the same file as another output;
* never an existing directory, device (``/dev/null``, ``/dev/full``), FIFO
  or socket: files are written by renaming a finished temporary file over the
  old one (:mod:`twolayer.io.atomic`), which would turn any of these into a
  plain file;
* never a symbolic link: the rename would replace the link itself with a
  plain file and leave its target as it was, which is neither what writing
  "to the link" means nor safe to guess at. The message names the target, to
  be given instead. (Symbolic links among the folders above the file are
  fine.)
* never empty, nor ``-`` (standard output is a stream, not a file; a command
  that can write to standard output maps ``-`` to it before calling here);
* a picture (``--plot``) must end in ``.png``, ``.pdf`` or ``.svg``: its format
  follows the extension (:func:`figure_format`), and any other name is refused
  rather than given bytes of a format it does not say.

An input that does not exist is not checked: it cannot be damaged, and a
built-in dataset's name (``digits``) is not a path. Reading it fails later,
with its own message.

:func:`check_fresh_checkpoint` keeps a fresh ``train --checkpoint X`` from
replacing a checkpoint that ``--resume`` could continue. Each check raises
:class:`~twolayer.errors.DataError` with one line naming the option and the
path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Mapping
from pathlib import Path

from twolayer.errors import DataError

__all__ = ["FIGURE_SUFFIXES", "PathArg", "check_fresh_checkpoint", "check_outputs", "figure_format"]

PathArg = str | os.PathLike[str] | None  # a path as a caller gives it; None for an option not given

# What an existing path that is not a regular file is, in words.
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


#: A picture's file format by its extension (the formats :func:`twolayer.report.plots.render` draws).
FIGURE_SUFFIXES: Mapping[str, str] = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def figure_format(path: str | os.PathLike[str]) -> str:
    """The format a picture at ``path`` is drawn in: ``"png"``, ``"pdf"`` or ``"svg"``, from its extension.

    Raises
    ------
    ValueError
        For any other extension (:func:`check_outputs` refuses such a name first).
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        raise ValueError(f"{os.fspath(path)}: a picture's name ends in {', '.join(FIGURE_SUFFIXES)}")
    return FIGURE_SUFFIXES[suffix]


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)  # hard links, and names the resolved path does not unify
    except OSError:  # one of them does not exist: a new file is no existing one
        return False


def _check_name(label: str, path: str) -> None:
    if not path.strip():
        raise DataError(f"{label} is empty: name a file" + (" or a built-in dataset" if label == "DATA" else ""))


def _check_output(label: str, path: str) -> None:
    _check_name(label, path)
    if path == "-":
        raise DataError(f"{label} -: standard output cannot take this file; name a file")
    if os.path.islink(path):
        raise DataError(
            f"{label} {path}: is a symbolic link (to {os.path.realpath(path)}); name the file itself, "
            "or remove the link"
        )
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise DataError(f"{label} {path}: cannot be examined ({exc.strerror})") from None
    if mode is not None and not stat.S_ISREG(mode):
        raise DataError(f"{label} {path}: is {_kind(mode)}, not a regular file")
    folder = Path(path).parent
    if not folder.is_dir():
        raise DataError(f"{label} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise DataError(f"{label} {path}: the folder {folder} is not writable")


def check_outputs(
    inputs: Mapping[str, PathArg],
    outputs: Mapping[str, PathArg],
    *,
    figures: Collection[str] = (),
    rewrites: Mapping[str, str] | None = None,
) -> None:
    """Refuse, before any work, outputs that could destroy an input or are not plain files.

    The rules are those of this module's description: every output is a new
    path or an existing regular file in a writable folder, not a symbolic
    link, not ``-``, distinct from every input and every other output; a name
    in ``figures`` ends in ``.png``, ``.pdf`` or ``.svg``. Inputs that do not exist are skipped.

    Parameters
    ----------
    inputs : mapping of str to path-like or None
        The files the command reads, keyed by how the user named them
        (``"DATA"``, ``"MODEL"``, ``"--resume"``); ``None`` for one not
        given. An empty or blank name is refused.
    outputs : mapping of str to path-like or None
        The files the command writes, keyed by option (``"--out"``);
        ``None`` for one not given.
    figures : collection of str, optional
        The outputs that are pictures, drawn in the format their extension names.
    rewrites : mapping of str to str, optional
        Output options that may be the same file as one input, which the
        command updates in place: ``{"--checkpoint": "--resume"}``.

    Raises
    ------
    DataError
        For the first rule broken, in one line naming the option and the path.

    Examples
    --------
    >>> check_outputs({"DATA": "data.csv"}, {"--out": "data.csv"})  # doctest: +SKIP
    Traceback (most recent call last):
    twolayer.errors.DataError: --out data.csv: is the same file as DATA; writing it would destroy the input
    """
    allowed = dict(rewrites or {})
    given_inputs = {label: os.fspath(path) for label, path in inputs.items() if path is not None}
    given_outputs = {label: os.fspath(path) for label, path in outputs.items() if path is not None}
    for label, path in given_inputs.items():
        _check_name(label, path)
    seen: dict[str, str] = {}
    for label, path in given_outputs.items():
        _check_output(label, path)
        for source, read in given_inputs.items():
            if allowed.get(label) != source and os.path.exists(read) and _same_file(path, read):
                raise DataError(
                    f"{label} {path}: is the same file as {source}"
                    + ("" if read == path else f" ({read})")
                    + "; writing it would destroy the input"
                )
        for other, earlier in seen.items():
            if _same_file(path, earlier):
                raise DataError(f"{label} {path}: is the same file as {other} ({earlier}); name different files")
        seen[label] = path
        # Last, so that an output naming an input is reported as such whatever its name.
        if label in figures and Path(path).suffix.lower() not in FIGURE_SUFFIXES:
            raise DataError(
                f"{label} {path}: a picture is written as PNG, PDF or SVG by its extension; "
                f"name a file ending in {', '.join(FIGURE_SUFFIXES)}"
            )


def check_fresh_checkpoint(
    path: PathArg, *, resumed: PathArg = None, overwrite: bool = False, option: str = "--checkpoint"
) -> None:
    """Refuse a fresh run whose checkpoint would replace an existing file.

    The natural mistake after a crash is to run the same command again
    without ``--resume``: that would replace the checkpoint of many epochs
    with one of a few. An existing file at ``path`` is therefore kept unless
    it is the checkpoint being resumed or ``overwrite`` is given.

    Parameters
    ----------
    path : path-like or None
        Where the run will keep its checkpoint; ``None`` for no checkpoint.
    resumed : path-like or None
        The checkpoint the run continues from, which it may rewrite.
    overwrite : bool, default False
        Replace whatever is at ``path`` (``train --overwrite``).
    option : str, default "--checkpoint"
        The option named in the message.

    Raises
    ------
    DataError
        When ``path`` exists, is not ``resumed`` and ``overwrite`` is not
        given: naming the epoch and the data of a checkpoint, or saying the
        file is not one.
    """
    from twolayer.io.checkpoints import load_checkpoint

    if path is None or overwrite or not os.path.lexists(path):
        return
    target = os.fspath(path)
    if resumed is not None and _same_file(target, os.fspath(resumed)):
        return
    try:
        checkpoint = load_checkpoint(target)
    except DataError:
        raise DataError(
            f"{option} {target}: exists and is not a twolayer checkpoint; give --overwrite to replace it"
        ) from None
    source = checkpoint.run.get("source")
    of_run = f" of a run on {source}" if isinstance(source, str) else ""
    raise DataError(
        f"{option} {target} holds a checkpoint at epoch {checkpoint.epoch}{of_run}; use --resume {target} "
        "to continue or --overwrite to start again"
    )
