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
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from twolayer.errors import DataError

__all__ = ["CHECKPOINT_FORMAT", "FORMAT_VERSION", "MODEL_FORMAT"]

MODEL_FORMAT = "twolayer.model"
CHECKPOINT_FORMAT = "twolayer.checkpoint"
FORMAT_VERSION = 2  # the newest version this package reads and writes
NETWORK_VERSION = 1  # plain networks: readable by every version of twolayer
BAYESIAN_VERSION = 2

_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


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
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise DataError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise DataError(f"{source} is a folder, not a {kind}") from None
    except OSError as exc:
        raise DataError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        tensors = safetensors.numpy.load(data)
    except safetensors.SafetensorError as exc:
        detail = str(exc)
        for prefix in ("Error while deserializing header: ", "Error while deserializing: "):
            detail = detail.removeprefix(prefix)
        looks_like = _what_it_looks_like(data) or "; it may be truncated or corrupted"
        raise DataError(f"{source} is not a {kind}: not a valid safetensors file ({detail}){looks_like}") from None
    # safetensors has checked the header; read its metadata (str -> str).
    header_size = int.from_bytes(data[:8], "little")
    raw = json.loads(data[8 : 8 + header_size]).get("__metadata__") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise DataError(f"{source} is not a {kind}: its metadata is not text")
    found = raw.get("format")
    if found != file_format:
        if found == CHECKPOINT_FORMAT:
            raise DataError(
                f"{source} is a training checkpoint, not a model file; finish the run with "
                f"'twolayer train --resume {source}'"
            )
        if found == MODEL_FORMAT:
            raise DataError(f"{source} is a model file, not a checkpoint")
        raise DataError(f"{source} is a safetensors file but not a {kind} (its metadata names no twolayer format)")
    version_text = raw.get("format_version", "")
    if not version_text.isdigit() or int(version_text) < 1:
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
            metadata[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: metadata entry {key!r} is not valid JSON ({exc.msg})") from None
    return tensors, metadata, int(version_text)


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

    def tensor(self, name: str, shape: tuple[int, ...], dtypes: tuple[type, ...]) -> np.ndarray:
        if name not in self.tensors:
            raise self.fail(f"tensor {name!r} is missing")
        array = self.tensors[name]
        if array.shape != shape:
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
            array = np.array(classes, dtype=np.int64)
        elif all(isinstance(c, str) for c in classes):
            array = np.array(classes, dtype=str)
        else:
            raise self.fail("the classes must be all integers or all strings")
        if np.unique(array).size != array.size or not np.array_equal(np.sort(array), array):
            raise self.fail("the classes must be distinct and sorted")
        return array

    def names(self, key: str, length: int) -> tuple[str, ...] | None:
        names = self.entry(key, list, optional=True)
        if names is None:
            return None
        if len(names) != length or not all(isinstance(n, str) for n in names) or len(set(names)) != length:
            raise self.fail(f"{key!r} must be {length} distinct strings")
        return tuple(names)

    def curve(self, curves: Mapping[str, Any], key: str) -> list[float] | None:
        values = curves.get(key)
        if values is None:
            return None
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
        ):
            raise self.fail(f"curves[{key!r}] must be a list of numbers")
        return [float(v) for v in values]


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
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise check.fail("hyperparameter 'alpha_grid' must be a list of numbers")
        elif isinstance(value, (dict, list)) and key != "class_weight":
            raise check.fail(f"hyperparameter {key!r} has the wrong type")
        if key == "class_weight" and value is not None and not isinstance(value, str):
            pairs = value.get("pairs") if isinstance(value, dict) else None
            if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise check.fail("hyperparameter 'class_weight' is malformed")
            value = {k: float(w) for k, w in pairs}
        params[key] = value
    return params


def package_version() -> str:
    """The version of twolayer writing a file."""
    from twolayer import __version__

    return __version__
