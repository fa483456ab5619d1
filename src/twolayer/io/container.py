"""The container of model files and checkpoints: safetensors tensors, JSON metadata and a digest, read without trust.

A file is one safetensors file. Its metadata (safetensors allows string to
string) holds ``format`` (``"twolayer.model"`` or ``"twolayer.checkpoint"``),
``format_version``, ``sha256`` and the format's entries, each as JSON.

Trust: reading parses the safetensors header and JSON and nothing else.
Nothing is unpickled and no code from the file runs; every entry is checked
(names, types, shapes, dtypes, finiteness, the digest) before an estimator is
built, so a truncated, corrupted, foreign or newer file gives one clear
:class:`~twolayer.errors.DataError`. The digest detects accidental damage;
it is not a signature.

Limits: nothing a file declares is believed before it is checked, so that no
file costs more than its own size. Only a regular file is opened (a device,
FIFO or folder is refused, without waiting on it); its header may be at most
:data:`MAX_HEADER_BYTES` long and its JSON, like each metadata entry, at most
:data:`MAX_JSON_DEPTH` deep (checked without recursion before it is parsed);
the header must name a twolayer format before any tensor is read; the
tensors it declares must end where the file ends; and the file may be at most
:data:`MAX_FILE_BYTES` and must fit the memory available. Every count, size
and shape recorded in the metadata is then checked against the tensors
before anything is allocated from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from typing import Any, BinaryIO, TypeGuard

import numpy as np

from twolayer.errors import DataError, format_bytes
from twolayer.resources import available_memory

__all__ = [
    "CHECKPOINT_FORMAT",
    "FORMAT_VERSION",
    "MAX_FILE_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "MODEL_FORMAT",
    "MULTILABEL_VERSION",
]

MODEL_FORMAT = "twolayer.model"
CHECKPOINT_FORMAT = "twolayer.checkpoint"
FORMAT_VERSION = 3  # the newest version this package reads and writes
NETWORK_VERSION = 1  # plain networks: readable by every version of twolayer
BAYESIAN_VERSION = 2
# Multilabel (sigmoid-output) networks: a reader of version 2 or older would ignore the 'output'
# entry and compute softmax probabilities, wrong without a word; a newer version makes it refuse.
MULTILABEL_VERSION = 3

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}

# Limits on what a file may declare, checked before anything it declares is believed. Each is far
# above what a real file holds, so that a damaged or hostile file costs no more than reading it.

#: The longest JSON header read: the safetensors library's own limit, which it would refuse anyway.
#: A real header holds only the metadata (hyperparameters, labels, feature names, one number per epoch
#: of the loss curve, the command line's list of held-out rows): kilobytes, or a few megabytes for a
#: data set of a million rows.
MAX_HEADER_BYTES = 100_000_000
#: The deepest nesting of the header and of each metadata entry. twolayer writes at most four levels
#: (class weights as pairs inside the hyperparameters) and the command line's info a few more; Python's
#: json module recurses once per level and fails with RecursionError near a thousand, so anything
#: deeper is refused before it is parsed.
MAX_JSON_DEPTH = 64
#: The largest file read: 2**34 bytes, two billion float64 weights. A ten-million-weight network is
#: 80 MB, its checkpoint (weights, best weights, Adam's two moments) 320 MB; a sparse or hostile file
#: claiming terabytes is refused before it is read. Reading also refuses a file larger than the
#: memory available.
MAX_FILE_BYTES = 1 << 34
# Reading holds the file's bytes, the tensors copied out of them, and one tensor's bytes for the
# digest: about three times the file at the peak.
_READ_COPIES = 3


# --------------------------------------------------------------------------
# The container: tensors + JSON metadata + digest
# --------------------------------------------------------------------------


def _json_default(value: object) -> object:
    # NumPy scalars appear in training states and hyperparameters; they are
    # stored as the Python numbers they equal.
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"cannot store a {type(value).__name__} in a model file's metadata")


def _dumps(value: object) -> str:
    return json.dumps(value, default=_json_default, sort_keys=True)


def _digest(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(json.dumps([name, little.dtype.str, list(array.shape)]).encode())
        digest.update(little.tobytes())
    digest.update(json.dumps(sorted((k, v) for k, v in metadata.items() if k != "sha256")).encode())
    return digest.hexdigest()


def _pack(
    file_format: str,
    tensors: Mapping[str, np.ndarray],
    entries: Mapping[str, object],
    *,
    version: int = NETWORK_VERSION,
) -> bytes:
    import safetensors.numpy

    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    metadata = {"format": file_format, "format_version": str(version)}
    metadata.update({key: _dumps(value) for key, value in entries.items()})
    metadata["sha256"] = _digest(arrays, metadata)
    return _sorted_metadata(safetensors.numpy.save(arrays, metadata=metadata))


def _sorted_metadata(data: bytes) -> bytes:
    """``data`` with its header's metadata in sorted key order, so that a model saves to the same bytes.

    safetensors writes the metadata from a hash map whose order changes from call
    to call (the tensors it sorts itself). The header is length-prefixed JSON and
    the tensors' offsets count from its end, so it can be written again whole,
    padded with spaces to 8 bytes as safetensors pads it.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    header["__metadata__"] = dict(sorted(header.get("__metadata__", {}).items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def _what_it_looks_like(data: bytes) -> str:
    if data[:1] == b"\x80" or data[:2] in (b"(d", b"(l", b"}q", b"]q", b"cc"):
        return "; it looks like a Python pickle, which twolayer never loads"
    if data[:4] == b"PK\x03\x04":
        return "; it is a zip archive (a .npz or a PyTorch pickle?), which twolayer does not load as a model"
    if data[:6] == b"\x93NUMPY":
        return "; it is a NumPy .npy array"
    if data and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in data[:64]):
        return "; it looks like a text file"
    return ""


def _unpack(
    path: str | os.PathLike[str], file_format: str, kind: str
) -> tuple[dict[str, np.ndarray], dict[str, Any], int]:
    """Read and check a container: its tensors, its decoded metadata and its format version."""
    import safetensors
    import safetensors.numpy

    source = os.fspath(path)
    data, header = _read(source, file_format, kind)
    try:
        tensors = safetensors.numpy.load(data)
    except (safetensors.SafetensorError, KeyError, TypeError, ValueError) as exc:
        # KeyError: a dtype safetensors knows but NumPy does not (bfloat16, float8).
        detail = str(exc) if not isinstance(exc, KeyError) else f"unsupported dtype {exc.args[0]}"
        for prefix in ("Error while deserializing header: ", "Error while deserializing: "):
            detail = detail.removeprefix(prefix)
        raise _not_a(source, kind, detail, data[:64]) from None
    raw: dict[str, str] = header.get("__metadata__") or {}  # text, as _read checked
    version_text = raw.get("format_version", "")
    # ASCII digits only: str.isdigit accepts "²", which int() refuses.
    if not re.fullmatch(r"[0-9]{1,9}", version_text) or int(version_text) < 1:
        raise DataError(f"{source}: format_version {version_text!r} is not a version number")
    if int(version_text) > FORMAT_VERSION:
        raise DataError(
            f"{source} was written by a newer twolayer (format version {version_text}; this version reads up to "
            f"{FORMAT_VERSION}): upgrade twolayer to load it"
        )
    if raw.get("sha256") != _digest(tensors, raw):
        raise DataError(f"{source} is corrupted: its contents do not match the sha256 digest stored in it")
    metadata: dict[str, Any] = {}
    for key, text in raw.items():
        if key in ("format", "format_version", "sha256"):
            continue
        try:
            metadata[key] = _loads(text)
        except ValueError as exc:
            raise DataError(f"{source}: metadata entry {key!r} is not valid JSON ({exc})") from None
    return tensors, metadata, int(version_text)


def _not_a(source: str, kind: str, detail: str, start: bytes) -> DataError:
    looks_like = _what_it_looks_like(start) or "; it may be truncated or corrupted"
    return DataError(f"{source} is not a {kind}: not a valid safetensors file ({detail}){looks_like}")


def _open(source: str, kind: str) -> BinaryIO:
    """``source`` open for reading, refused unless it is a regular file.

    It is opened without blocking, so that a FIFO (which would wait for a
    writer) is refused, like a device (``/dev/zero`` never ends), by the
    type of what was opened rather than of what the path named a moment
    before.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(source, flags)
    except FileNotFoundError:
        raise DataError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise DataError(f"{source} is a folder, not a {kind}") from None
    except OSError as exc:
        raise DataError(f"cannot read {source}: {exc.strerror or exc}") from None
    except ValueError:  # a NUL in the name
        raise DataError(f"cannot read {source!r}: the name holds a NUL character") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise DataError(f"{source} is a folder, not a {kind}")
        raise DataError(f"{source} is {_file_type(mode)}, not a regular file, so it cannot be a {kind}")
    return os.fdopen(fd, "rb")


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _read_exactly(handle: BinaryIO, size: int) -> bytes:
    # Never more than ``size``: a file that grew while being read is cut, and
    # its header then disagrees with it.
    data = handle.read(size)
    return data if data is not None else b""


def _read(source: str, file_format: str, kind: str) -> tuple[bytes, dict[str, Any]]:
    """The bytes of a container and its parsed header, each size it declares checked before it is read.

    The header's length must be at most :data:`MAX_HEADER_BYTES` and fit
    the file; its JSON at most :data:`MAX_JSON_DEPTH` deep; its metadata
    must name ``file_format`` (a foreign file's tensors are never read); and
    the tensors it declares must end exactly where the file ends. Only then
    is the rest read, never more than the file's size, and only a file of
    at most :data:`MAX_FILE_BYTES` that fits the memory available.
    """
    with _open(source, kind) as handle:
        size = os.fstat(handle.fileno()).st_size
        start = _read_exactly(handle, 8)
        if len(start) < 8:
            raise _not_a(source, kind, f"{len(start)} bytes, too short for a safetensors header", start)
        header_size = int.from_bytes(start, "little")
        if header_size > MAX_HEADER_BYTES:
            raise _not_a(
                source,
                kind,
                f"its header claims {header_size} bytes, more than the {MAX_HEADER_BYTES} allowed",
                start + _read_exactly(handle, 56),
            )
        if 8 + header_size > size:
            raise _not_a(
                source,
                kind,
                f"its header claims {header_size} bytes but the file has {size - 8} after the length",
                start + _read_exactly(handle, 56),
            )
        text = _read_exactly(handle, header_size)
        if len(text) < header_size:
            raise _not_a(source, kind, "the file ended inside its header", start + text)
        header = _parse_header(source, kind, start + text)
        _check_format(source, header, file_format, kind)
        end = _data_end(header)
        if end is not None and 8 + header_size + end != size:
            declared = 8 + header_size + end
            what = "it is truncated" if size < declared else f"{size - declared} bytes follow its tensors"
            raise _not_a(source, kind, f"its header declares {declared} bytes but the file has {size}; {what}", start)
        if size > MAX_FILE_BYTES:
            raise DataError(
                f"{source} is {format_bytes(size)}, more than the {format_bytes(MAX_FILE_BYTES)} a {kind} may be"
            )
        available = available_memory()
        if available is not None and _READ_COPIES * size > available:
            raise DataError(
                f"{source} is {format_bytes(size)}: reading it needs about {format_bytes(_READ_COPIES * size)} "
                f"but {format_bytes(available)} of memory is available"
            )
        # Read whole, from the start, in one piece (safetensors takes the file as one bytes object);
        # the header checked above must be the one read now.
        handle.seek(0)
        data = _read_exactly(handle, size)
    if len(data) != size or data[: 8 + header_size] != start + text:
        raise _not_a(source, kind, "the file changed while it was read", start)
    return data, header


def _parse_header(source: str, kind: str, data: bytes) -> dict[str, Any]:
    try:
        header = _loads(data[8:].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _not_a(source, kind, f"its header is not valid JSON: {exc}", data[:64]) from None
    if not isinstance(header, dict):
        raise _not_a(source, kind, "its header is not a JSON object", data[:64])
    return header


def _check_format(source: str, header: Mapping[str, Any], file_format: str, kind: str) -> None:
    """Refuse a file whose metadata is not text or names another format, before its tensors are read."""
    raw = header.get("__metadata__") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise DataError(f"{source} is not a {kind}: its metadata is not text")
    found = raw.get("format")
    if found == file_format:
        return
    if found == CHECKPOINT_FORMAT:
        raise DataError(
            f"{source} is a training checkpoint, not a model file; finish the run with "
            f"'twolayer train --resume {source}'"
        )
    if found == MODEL_FORMAT:
        raise DataError(f"{source} is a model file, not a checkpoint")
    raise DataError(f"{source} is a safetensors file but not a {kind} (its metadata names no twolayer format)")


def _data_end(header: Mapping[str, Any]) -> int | None:
    """Where the tensors the header declares end, counted from the header's end; None if the header is malformed.

    A malformed header is left to safetensors, which names what is wrong
    with it; the file is then read (no more than its size) for that.
    """
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in offsets)
        ):
            return None
        end = max(end, offsets[1])
    return end


# A JSON string: a quote, then characters other than a quote or backslash, or a backslash and any
# character, then a quote (written out so the engine does not backtrack).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_CHUNK = 1 << 20


def _json_depth(text: str) -> int:
    """The deepest nesting of brackets in ``text`` outside its strings, found without recursion.

    Up to the first place where ``text`` stops being valid JSON, strings are
    found exactly as a JSON parser finds them, so the depth reached there is
    the depth a parser would recurse to before it failed.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii")
    codes = np.frombuffer(brackets, dtype=np.uint8)
    deepest = depth = 0
    for first in range(0, codes.size, _DEPTH_CHUNK):
        chunk = codes[first : first + _DEPTH_CHUNK]
        running = depth + np.cumsum(np.where((chunk == ord("[")) | (chunk == ord("{")), 1, -1))
        deepest = max(deepest, int(running.max()))
        depth = int(running[-1])
    return deepest


def _loads(text: str) -> Any:
    """``json.loads`` of text from a file, refusing nesting deeper than :data:`MAX_JSON_DEPTH` before it parses.

    Raises
    ------
    ValueError
        For text that is not JSON (``json.JSONDecodeError``), too deep, or
        with an integer too long to convert.
    """
    depth = _json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"it is nested {depth} deep, more than the {MAX_JSON_DEPTH} allowed")
    try:
        return json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        raise ValueError(exc.msg) from None


# The longest integer kept exact: 128 bits (39 digits) hold every integer twolayer writes, the
# shuffling generator's state included. A longer one is read as the float it is near (infinity
# past 1e308), as float("...") reads any length where int() refuses more than 4300 digits, so that
# it is refused by the checks of numbers and counts instead of failing in a conversion later.
_EXACT_INT_DIGITS = 39


def _json_int(text: str) -> int | float:
    return int(text) if len(text.lstrip("-")) <= _EXACT_INT_DIGITS else float(text)


# --------------------------------------------------------------------------
# Checking what was read
# --------------------------------------------------------------------------


class _Checker:
    """Named checks on a decoded file; every failure is one DataError naming the file and the entry."""

    def __init__(self, source: str, tensors: dict[str, np.ndarray], metadata: dict[str, Any]) -> None:
        self.source = source
        self.tensors = tensors
        self.metadata = metadata

    def fail(self, message: str) -> DataError:
        return DataError(f"{self.source}: {message}")

    def entry(self, key: str, types: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if key not in self.metadata:
            if optional:
                return None
            raise self.fail(f"the metadata has no {key!r} entry")
        value = self.metadata[key]
        if value is None and optional:
            return None
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            raise self.fail(f"metadata entry {key!r} has the wrong type ({type(value).__name__})")
        return value

    def tensor(
        self, name: str, shape: tuple[int, ...], dtypes: tuple[type, ...], *, because: str | None = None
    ) -> np.ndarray:
        """The tensor ``name``, checked: present, of ``shape`` (else the message says ``because``), finite."""
        if name not in self.tensors:
            raise self.fail(f"tensor {name!r} is missing")
        array = self.tensors[name]
        if array.shape != shape:
            if because is not None:
                raise self.fail(f"{name} has shape {array.shape} but {because}")
            raise self.fail(f"tensor {name!r} has shape {array.shape}, expected {shape}")
        if array.dtype.type not in dtypes:
            raise self.fail(
                f"tensor {name!r} has dtype {array.dtype}, expected {' or '.join(d.__name__ for d in dtypes)}"
            )
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise self.fail(f"tensor {name!r} holds NaN or infinity")
        return array

    def no_other_tensors(self, expected: set[str]) -> None:
        extra = sorted(set(self.tensors) - expected)
        if extra:
            raise self.fail(f"unexpected tensor {extra[0]!r}")

    def classes(self) -> np.ndarray:
        classes = self.entry("classes", list)
        if len(classes) < 2:
            raise self.fail(f"a classifier has at least two classes; the file lists {len(classes)}")
        if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
            if not all(_INT64_MIN <= c <= _INT64_MAX for c in classes):
                raise self.fail("the classes must be integers within the range of int64")
            array = np.array(classes, dtype=np.int64)
        elif all(isinstance(c, str) for c in classes):
            array = np.array(classes, dtype=str)
        else:
            raise self.fail("the classes must be all integers or all strings")
        if np.unique(array).size != array.size or not np.array_equal(np.sort(array), array):
            raise self.fail("the classes must be distinct and sorted")
        return array

    def count(self, where: Mapping[str, Any], key: str, what: str, *, positive: bool = False) -> int:
        """``where[key]``, a non-negative (or positive) integer within int64, where NumPy keeps counts."""
        value = where.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not int(positive) <= value <= _INT64_MAX:
            kind = "positive" if positive else "non-negative"
            raise self.fail(f"{what} must be a {kind} integer (at most 2**63 - 1)")
        return value

    def names(self, key: str) -> tuple[str, ...] | None:
        """The entry ``key``, a list of distinct strings, or None; its length is the caller's to check."""
        names = self.entry(key, list, optional=True)
        if names is None:
            return None
        if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise self.fail(f"{key!r} must be distinct strings")
        return tuple(names)

    def curve(self, curves: Mapping[str, Any], key: str) -> list[float] | None:
        values = curves.get(key)
        if values is None:
            return None
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise self.fail(f"curves[{key!r}] must be a list of numbers")
        return [float(v) for v in values]


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _is_number(value: object) -> TypeGuard[int | float]:
    """Whether a decoded JSON value is a number (a bool is not); ints are at most 39 digits, see ``_json_int``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


# --------------------------------------------------------------------------
# Hyperparameters as JSON
# --------------------------------------------------------------------------


def _hyperparameters_to_json(params: Mapping[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for key, value in params.items():
        if key == "callback":
            continue  # a function: neither storable nor part of the model
        if key == "random_state" and not (value is None or isinstance(value, (int, np.integer))):
            value = None  # a generator object: the fitted weights no longer need it
        if key == "class_weight" and isinstance(value, Mapping):
            # JSON keys are strings; pairs keep the classes' type.
            value = {"pairs": [[k.item() if isinstance(k, np.generic) else k, float(w)] for k, w in value.items()]}
        if key == "alpha_grid" and value is not None:
            value = [float(v) for v in np.ravel(np.asarray(value, dtype=np.float64))]
        stored[key] = value
    return stored


def _hyperparameters_from_json(check: _Checker, stored: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in stored.items():
        if key not in known:
            raise check.fail(f"unknown hyperparameter {key!r}")
        if key == "alpha_grid" and isinstance(value, list):
            if not all(_is_number(v) for v in value):
                raise check.fail("hyperparameter 'alpha_grid' must be a list of numbers")
        elif isinstance(value, (dict, list)) and key != "class_weight":
            raise check.fail(f"hyperparameter {key!r} has the wrong type")
        if key == "class_weight" and value is not None and not isinstance(value, str):
            pairs = value.get("pairs") if isinstance(value, dict) else None
            if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and isinstance(p[0], (int, str)) and _is_number(p[1]) for p in pairs
            ):
                raise check.fail("hyperparameter 'class_weight' is malformed")
            value = {k: float(w) for k, w in pairs}
        params[key] = value
    return params


def package_version() -> str:
    """The version of twolayer writing a file."""
    from twolayer import __version__

    return __version__
