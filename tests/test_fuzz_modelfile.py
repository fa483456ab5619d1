"""Fuzzing model files (issue 16): whatever a model file has become, ``twolayer predict`` and
``twolayer evaluate`` end with exit 0, or with exit 2 and one line on standard error, never another
exception, and the model and data files are byte-identical afterwards.

The files are real ones (a network with a scaler and named features, fitted once per module, and a
Bayesian network written by format version 2), then truncated, bit-flipped,
given inserted or deleted bytes, or with their JSON header mutated: entries replaced by values of
the wrong type, deeply nested or oversized JSON, tensors' dtypes, shapes and offsets changed. Half
of the header mutations come with a digest that matches them, as a deliberate forger would write,
so that they reach the checks of the contents rather than stopping at the digest.

The default runs take a few seconds; the ``slow`` variant tries many more examples.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from twolayer.classifier import TwoLayerClassifier
from twolayer.cli import main
from twolayer.io import container
from twolayer.io.modelfile import model_bytes

# No example database: tests write only under their temporary folders. Derandomized, so that every
# run of the suite tries the same examples and a failure in CI is one that a rerun reproduces; to
# explore further, run with derandomize=False (hypothesis then draws new examples each time).
FAST = settings(
    max_examples=50,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = settings(FAST, max_examples=800)

BAYESIAN = Path(__file__).parent / "data" / "format2_bayesian.safetensors"


# --------------------------------------------------------------------------
# The real files
# --------------------------------------------------------------------------


def run(argv: list[str]) -> tuple[int, str]:
    """``twolayer`` in this process; any exception but a clean exit propagates and fails the test."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def csv_text(header: str, X: np.ndarray, y: list[Any]) -> str:
    rows = [",".join([*(f"{v:.6f}" for v in x), str(label)]) for x, label in zip(X, y, strict=True)]
    return "\n".join([header, *rows]) + "\n"


class Originals(dict[str, tuple[bytes, str]]):
    """The files by kind; shown by name only when hypothesis reports a failing example."""

    def __repr__(self) -> str:
        return f"Originals({sorted(self)})"


@pytest.fixture(scope="module")
def originals() -> Originals:
    """Each kind of model file: its bytes and a CSV of data it predicts (with the labels, for evaluate).

    The network is fitted and saved through the API, so that its bytes are the same in every run
    (a file from ``twolayer train`` records the seconds it took) and the derandomized examples are
    the same examples: a pipeline of a scaler and a network, with named features and target.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2)) * [1.0, 5.0] + [0.0, 2.0]
    y = [int(a + b / 5 > 0.4) for a, b in X]
    network = Pipeline(
        [("scaler", StandardScaler()), ("classifier", TwoLayerClassifier(n_hidden=3, max_iter=20, random_state=0))]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a few epochs are enough to have weights
        network.fit(X, y)
    bayes_X = rng.normal(size=(8, 3))
    return Originals(
        network=(model_bytes(network, feature_names=["a", "b"], target_name="label"), csv_text("a,b,label", X, y)),
        bayesian=(BAYESIAN.read_bytes(), csv_text("x0,x1,x2,y", bayes_X, ["a", "b", "c", "a", "b", "c", "a", "b"])),
    )


# --------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------


def split(data: bytes) -> tuple[dict[str, Any], bytes]:
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]), data[8 + size :]


def join(header: dict[str, Any], body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


def resign(header: dict[str, Any], original: bytes) -> None:
    """Give ``header`` the digest of its metadata and the original file's tensors (which are unchanged)."""
    metadata = header.get("__metadata__")
    if isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values()):
        metadata["sha256"] = container._digest(safetensors.numpy.load(original), metadata)


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, 1, -1, 2**63, 2**63 - 1, -(2**63) - 1, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=20,
)


def json_text(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


# An entry's new text: a JSON value of any type, deep nesting, an oversized value, or not JSON at all.
ENTRY_TEXTS = st.one_of(
    JSON_VALUES.map(json_text),
    st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(min_value=1, max_value=200_000).map(lambda n: json.dumps("x" * n)),
    st.integers(min_value=1, max_value=20_000).map(lambda n: "1" * n),
    st.text(max_size=30),
)
METADATA_KEYS = [
    "format",
    "format_version",
    "kind",
    "classes",
    "feature_names",
    "feature_names_in",
    "target_name",
    "dtype",
    "hyperparameters",
    "scaler",
    "curves",
    "training",
    "info",
    "bayes",
    "sha256",
    "extra",
]


def decoded(text: str | None) -> Any:
    try:
        return None if text is None else json.loads(text)
    except ValueError:
        return None


@st.composite
def metadata_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """One metadata entry replaced, removed, or changed inside (one of its keys), digest matching or not."""
    header, body = split(data)
    metadata = header["__metadata__"]
    key = draw(st.sampled_from(METADATA_KEYS))
    how = draw(st.sampled_from(["replace", "remove", "inner"]))
    if how == "remove":
        metadata.pop(key, None)
    elif how == "inner" and isinstance(value := decoded(metadata.get(key)), dict) and value:
        inner = draw(st.sampled_from(sorted(value)))
        value[inner] = draw(JSON_VALUES)
        metadata[key] = json_text(value)
    else:
        metadata[key] = draw(ENTRY_TEXTS)
    if draw(st.booleans()):
        resign(header, data)
    return join(header, body)


@st.composite
def hyperparameter_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """One hyperparameter (the counts above all: n_hidden, n_samples, ...) set to any value, digest matching."""
    header, body = split(data)
    metadata = header["__metadata__"]
    hyper = json.loads(metadata["hyperparameters"])
    name = draw(st.sampled_from(sorted(hyper)))
    hyper[name] = draw(st.one_of(JSON_VALUES, st.sampled_from([0, 10**13, 2**63, 10**400, -1])))
    metadata["hyperparameters"] = json_text(hyper)
    resign(header, data)
    return join(header, body)


@st.composite
def tensor_entry_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """A tensor's dtype, shape or offsets in the header changed, or the header made something else."""
    header, body = split(data)
    names = sorted(k for k in header if k != "__metadata__")
    name = draw(st.sampled_from(names))
    field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "entry", "header"]))
    if field == "dtype":
        header[name]["dtype"] = draw(
            st.sampled_from(["F32", "F16", "BF16", "F8_E4M3", "I64", "U8", "BOOL", "C64", "?"])
        )
    elif field == "shape":
        header[name]["shape"] = draw(st.lists(st.integers(min_value=-1, max_value=2**40), max_size=4))
    elif field == "data_offsets":
        header[name]["data_offsets"] = draw(st.lists(st.integers(min_value=-1, max_value=2**64), max_size=3))
    elif field == "entry":
        header[name] = draw(JSON_VALUES)
    else:
        return join(draw(JSON_VALUES), body) if draw(st.booleans()) else b"\0" * 8 + body
    if draw(st.booleans()):
        resign(header, data)
    return join(header, body)


@st.composite
def tensor_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """A tensor's contents or shape changed, or a tensor dropped or added, digest matching: a forged model."""
    tensors = {name: np.array(array) for name, array in safetensors.numpy.load(data).items()}
    header, _ = split(data)
    metadata = dict(header["__metadata__"])
    name = draw(st.sampled_from(sorted(tensors)))
    array = tensors[name]
    how = draw(st.sampled_from(["shape", "value", "dtype", "drop", "add", "transpose"]))
    if how == "shape":
        shape = tuple(draw(st.lists(st.integers(min_value=0, max_value=6), min_size=0, max_size=3)))
        tensors[name] = np.zeros(shape, dtype=array.dtype)
    elif how == "value" and array.size:
        flat = array.reshape(-1).copy()
        values = (
            [np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0, 1e-320, 3e38]
            if array.dtype.kind == "f"
            else [-1, 0, 2**31, np.iinfo(array.dtype).max]
        )
        with np.errstate(over="ignore"):  # 1e300 in float32 is infinity: a value the reader must refuse
            flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(values))
        tensors[name] = flat.reshape(array.shape)
    elif how == "dtype":
        tensors[name] = array.astype(draw(st.sampled_from([np.float32, np.float16, np.int64, np.uint8, np.bool_])))
    elif how == "drop":
        tensors.pop(name)
    elif how == "add":
        tensors[draw(st.sampled_from(["extra", "W3", "posterior.factor", "scaler.mean"]))] = np.ones(3)
    else:
        tensors[name] = np.ascontiguousarray(array.T)
    metadata["sha256"] = container._digest(tensors, metadata)
    return safetensors.numpy.save(tensors, metadata=metadata)


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """Truncated, bit-flipped, with bytes inserted or deleted anywhere (the header's length included)."""
    how = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
    if how == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            out[draw(st.integers(0, len(out) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(out)
    at = draw(st.integers(0, len(data)))
    if how == "insert":
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    return data[:at] + data[at + draw(st.integers(1, 16)) :]


MUTATIONS: list[Callable[[bytes], st.SearchStrategy[bytes]]] = [
    byte_mutation,
    metadata_mutation,
    hyperparameter_mutation,
    tensor_entry_mutation,
    tensor_mutation,
]


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[str, Callable[[bytes], st.SearchStrategy[bytes]]]:
    return draw(st.sampled_from(["network", "bayesian"])), draw(st.sampled_from(MUTATIONS))


# --------------------------------------------------------------------------
# The property
# --------------------------------------------------------------------------


class Mutated(bytes):
    """A mutated file, shown in a failing example by its size and digest rather than its bytes."""

    def __repr__(self) -> str:
        return f"<{len(self)} bytes, sha256 {hashlib.sha256(self).hexdigest()[:16]}>"


def check_commands(folder: Path, content: bytes, data_text: str) -> None:
    """Run predict and evaluate on the file; exit 0, or 2 with one line; no file changed or added."""
    model, data = folder / "model.safetensors", folder / "data.csv"
    for stale in folder.iterdir():
        stale.unlink()
    model.write_bytes(content)
    data.write_text(data_text)
    for command in ("predict", "evaluate"):
        try:
            code, err = run([command, str(model), str(data)])
        except BaseException as exc:  # the property's failure: named, with where it was raised
            where = traceback.extract_tb(exc.__traceback__)[-1]
            raise AssertionError(
                f"twolayer {command} raised {type(exc).__name__}: {exc} ({where.filename}:{where.lineno})"
            ) from exc
        assert code in (0, 2), (command, code, err)
        if code == 2:
            lines = err.splitlines()
            assert len(lines) == 1, err
            assert lines[0].startswith(f"twolayer {command}: error: ") and "Traceback" not in err, err
        assert sorted(p.name for p in folder.iterdir()) == ["data.csv", "model.safetensors"]
        assert model.read_bytes() == content and data.read_text() == data_text


def fuzz(tmp_path: Path, originals: Originals, draw: st.DataObject) -> None:
    kind, mutation = draw.draw(corrupted())
    original, data_text = originals[kind]
    content = draw.draw(mutation(original).map(Mutated))
    check_commands(tmp_path, content, data_text)


@FAST
@given(draw=st.data())
def test_corrupted_model_files_exit_cleanly(tmp_path: Path, originals: Originals, draw: st.DataObject) -> None:
    fuzz(tmp_path, originals, draw)


@pytest.mark.slow
@LONG
@given(draw=st.data())
def test_corrupted_model_files_exit_cleanly_long(tmp_path: Path, originals: Originals, draw: st.DataObject) -> None:
    fuzz(tmp_path, originals, draw)


def test_the_unmutated_files_run(tmp_path: Path, originals: Originals) -> None:
    # Each file and its data work as they are: a refusal above is the mutation's doing.
    for content, data_text in originals.values():
        check_commands(tmp_path, content, data_text)
        for command in ("predict", "evaluate"):
            assert run([command, str(tmp_path / "model.safetensors"), str(tmp_path / "data.csv")])[0] == 0


@pytest.mark.parametrize("tensor", ["W2", "posterior.factor"])
def test_a_forged_posterior_that_overflows_is_one_line(tmp_path: Path, originals: Originals, tensor: str) -> None:
    # Finite values whose products overflow, digest matching: a one-line refusal, not NaN or a traceback.
    original, data_text = originals["bayesian"]
    tensors = {name: np.array(array) for name, array in safetensors.numpy.load(original).items()}
    header, _ = split(original)
    metadata = dict(header["__metadata__"])
    tensors[tensor].reshape(-1)[0] = 1e300 if tensor == "W2" else 1e-300
    metadata["sha256"] = container._digest(tensors, metadata)
    forged = safetensors.numpy.save(tensors, metadata=metadata)
    check_commands(tmp_path, forged, data_text)
    code, err = run(["predict", str(tmp_path / "model.safetensors"), str(tmp_path / "data.csv")])
    assert code == 2, err


@pytest.mark.parametrize("scale", [1e-308, 5e-324])
def test_a_scale_that_overflows_the_inputs_is_one_line(tmp_path: Path, originals: Originals, scale: float) -> None:
    # A positive scale passes the file's checks, but dividing by it overflows: one line, not a traceback.
    original, data_text = originals["network"]
    tensors = {name: np.array(array) for name, array in safetensors.numpy.load(original).items()}
    header, _ = split(original)
    metadata = dict(header["__metadata__"])
    tensors["scaler.scale"][1] = scale
    metadata["sha256"] = container._digest(tensors, metadata)
    check_commands(tmp_path, safetensors.numpy.save(tensors, metadata=metadata), data_text)
    code, err = run(["predict", str(tmp_path / "model.safetensors"), str(tmp_path / "data.csv")])
    assert code == 2 and "overflow" in err, err
