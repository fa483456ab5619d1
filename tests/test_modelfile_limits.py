"""Model files that cannot be trusted never crash the reader (issue 16).

Each hostile or damaged file below is refused before anything it declares is
believed: through the command line (``twolayer predict`` and ``evaluate``,
``twolayer train --resume``) with exit status 2, one line on standard error
naming the file, no traceback, and every file that was there before
byte-identical; through the Python API with a :class:`DataError` (a
``ValueError``) of one sentence.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

from twolayer.classifier import TwoLayerClassifier
from twolayer.cli import main
from twolayer.errors import DataError
from twolayer.io import container
from twolayer.io.bayesian import MAX_MC_SAMPLES
from twolayer.io.container import MAX_HEADER_BYTES, MAX_JSON_DEPTH
from twolayer.io.modelfile import load, load_checkpoint, model_bytes, read, save

DATA = Path(__file__).parent / "data"
BAYESIAN = DATA / "format2_bayesian.safetensors"  # 3 unnamed features, classes a, b, c, n_samples 50

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# --------------------------------------------------------------------------
# Files to corrupt
# --------------------------------------------------------------------------


def named_model() -> TwoLayerClassifier:
    """A small fitted network on features a, b, c (no training: the weights are given)."""
    rng = np.random.default_rng(0)
    W1, b1, W2, b2 = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(4, 2)), rng.normal(size=2)
    from twolayer.network import Params

    return TwoLayerClassifier.from_params(Params(W1, b1, W2, b2), np.array([0, 1]), hyperparameters={"n_hidden": 4})


def edited(data: bytes, edit: Callable[[dict[str, np.ndarray], dict[str, str]], None]) -> bytes:
    """``data`` with its tensors and metadata edited and a digest that matches them.

    The digest guards against accidents, not tampering: a crafted file with a correct digest must
    still be refused by the checks of what it holds.
    """
    tensors = {name: np.array(array) for name, array in safetensors.numpy.load(data).items()}
    size = int.from_bytes(data[:8], "little")
    metadata = dict(json.loads(data[8 : 8 + size])["__metadata__"])
    edit(tensors, metadata)
    metadata["sha256"] = container._digest(tensors, metadata)
    return safetensors.numpy.save(tensors, metadata=metadata)


def raw_file(header: str | bytes, body: bytes = b"") -> bytes:
    """A file of the safetensors layout with any header at all: its length, the header, the body."""
    text = header.encode() if isinstance(header, str) else header
    return len(text).to_bytes(8, "little") + text + body


def model_header(extra: str = "", tensors: str = "") -> str:
    """A header naming the twolayer model format, with ``extra`` entries in its metadata and ``tensors``."""
    metadata = '"__metadata__":{"format":"twolayer.model","format_version":"1"' + extra + "}"
    return "{" + metadata + (("," + tensors) if tensors else "") + "}"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_metadata(data: bytes) -> bytes:
    return edited(data, lambda t, m: m.update(info=nested(100_000)))


def nested_header(data: bytes) -> bytes:
    return raw_file(model_header(tensors='"x":' + nested(100_000)))


def wrong_w1(data: bytes) -> bytes:
    return edited(data, lambda t, m: t.update(W1=np.zeros((5, 4))))


def tampered_n_samples(data: bytes) -> bytes:
    def edit(t: dict[str, np.ndarray], m: dict[str, str]) -> None:
        m["hyperparameters"] = json.dumps({**json.loads(m["hyperparameters"]), "n_samples": 10**13})

    return edited(data, edit)


def huge_header_length(data: bytes) -> bytes:
    return (MAX_HEADER_BYTES + 1).to_bytes(8, "little") + data[8:]


def header_longer_than_file(data: bytes) -> bytes:
    return (len(data)).to_bytes(8, "little") + data[8:]


def truncated(data: bytes) -> bytes:
    return data[:-9]


def trailing(data: bytes) -> bytes:
    return data + b"\0" * 16


# (the change, which model it is made to, what the one line says)
CORRUPTIONS = [
    pytest.param(
        nested_metadata, "named", "metadata entry 'info' is not valid JSON (it is nested 100000 deep", id="nested-entry"
    ),
    pytest.param(nested_header, "named", "its header is not valid JSON: it is nested 100001 deep", id="nested-header"),
    pytest.param(wrong_w1, "named", "W1 has shape (5, 4) but the file names 3 features", id="wrong-W1"),
    pytest.param(tampered_n_samples, "bayesian", "hyperparameter n_samples is 10000000000000", id="n-samples"),
    pytest.param(huge_header_length, "named", f"more than the {MAX_HEADER_BYTES} allowed", id="header-length"),
    pytest.param(header_longer_than_file, "named", "bytes but the file has", id="header-past-end"),
    pytest.param(truncated, "named", "it is truncated", id="truncated"),
    pytest.param(trailing, "named", "16 bytes follow its tensors", id="trailing-bytes"),
]


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("originals")
    save(named_model(), folder / "named.safetensors", feature_names=["a", "b", "c"])
    return {"named": (folder / "named.safetensors").read_bytes(), "bayesian": BAYESIAN.read_bytes()}


def data_csv(kind: str) -> str:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 3))
    if kind == "named":
        labels: list[Any] = [0, 1, 0, 1, 0, 1]
        header = "a,b,c,y"
    else:
        labels = ["a", "b", "c", "a", "b", "c"]
        header = "x0,x1,x2,y"
    rows = [",".join([*(f"{v:.6f}" for v in x), str(label)]) for x, label in zip(X, labels, strict=True)]
    return "\n".join([header, *rows]) + "\n"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], folder: Path, name: str) -> str:
    """Run the command; check exit 2, one line naming ``name``, no traceback, and no file changed."""
    before = snapshot(folder)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and name in lines[0], err
    assert snapshot(folder) == before
    return lines[0]


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize(("corrupt", "kind", "expected"), CORRUPTIONS)
def test_command_line_refuses_hostile_model_files(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    originals: dict[str, bytes],
    command: str,
    corrupt: Callable[[bytes], bytes],
    kind: str,
    expected: str,
) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(corrupt(originals[kind]))
    data = tmp_path / "data.csv"
    data.write_text(data_csv(kind))
    line = refused(capsys, [command, str(model), str(data)], tmp_path, str(model))
    assert expected in line


def test_the_uncorrupted_files_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], originals: dict[str, bytes]
) -> None:
    # The cases above fail for the corruption, not for the files or the data around it.
    for kind, content in originals.items():
        model = tmp_path / f"{kind}.safetensors"
        model.write_bytes(content)
        data = tmp_path / f"{kind}.csv"
        data.write_text(data_csv(kind))
        for command in ("predict", "evaluate"):
            assert main([command, str(model), str(data)]) == 0, capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_as_the_model_is_refused_unread(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # /dev/zero never ends: reading it whole ran out of memory. It is only ever read here.
    data = tmp_path / "data.csv"
    data.write_text(data_csv("named"))
    line = refused(capsys, ["predict", "/dev/zero", str(data)], tmp_path, "/dev/zero")
    assert "is a character device, not a regular file" in line
    with pytest.raises(DataError, match="character device"):
        read("/dev/zero")


def call_without_hanging(fifo: Path, function: Callable[[], Any]) -> Any:
    """``function()``, which must not wait on the FIFO ``fifo``; if it does, a writer is opened and
    closed so that it sees an empty file and the test fails on its result instead of hanging."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the test's thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():  # blocked in open(): a writer lets it through to end of file
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_as_the_model_or_checkpoint_is_refused_without_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    data = tmp_path / "data.csv"
    data.write_text(data_csv("named"))
    with pytest.raises(DataError, match=r"is a FIFO \(named pipe\), not a regular file"):
        call_without_hanging(fifo, lambda: read(fifo))
    with pytest.raises(DataError, match="FIFO"):
        call_without_hanging(fifo, lambda: load_checkpoint(fifo))
    before = snapshot(tmp_path)
    code = call_without_hanging(fifo, lambda: main(["predict", str(fifo), str(data)]))
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and str(fifo) in err, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and snapshot(tmp_path) == before


def test_a_folder_as_the_model_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "models.safetensors"
    folder.mkdir()
    data = tmp_path / "data.csv"
    data.write_text(data_csv("named"))
    line = refused(capsys, ["evaluate", str(folder), str(data)], tmp_path, str(folder))
    assert "folder" in line


# --------------------------------------------------------------------------
# Checkpoints given to --resume
# --------------------------------------------------------------------------


def checkpoint_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, bytes]:
    """A real checkpoint of a two-epoch run on a small CSV: the data's path and the checkpoint's bytes."""
    data = tmp_path / "train.csv"
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 2))
    rows = [f"{x:.5f},{z:.5f},{int(x + z > 0)}" for x, z in X]
    data.write_text("u,v,y\n" + "\n".join(rows) + "\n")
    checkpoint = tmp_path / "run.ckpt"
    code = main(["train", str(data), "--epochs", "2", "--hidden", "2", "--quiet", "--checkpoint", str(checkpoint)])
    assert code == 0, capsys.readouterr().err
    content = checkpoint.read_bytes()
    checkpoint.unlink()
    return data, content


def state_edit(key: str, value: Any) -> Callable[[dict[str, np.ndarray], dict[str, str]], None]:
    def edit(t: dict[str, np.ndarray], m: dict[str, str]) -> None:
        state = json.loads(m["state"])
        state[key] = value
        m["state"] = json.dumps(state)

    return edit


def rng_out_of_range(t: dict[str, np.ndarray], m: dict[str, str]) -> None:
    state = json.loads(m["state"])
    state["rng_state"]["state"]["state"] = 10**39  # more than PCG64's 128 bits
    m["state"] = json.dumps(state)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t, m: m.update(run=nested(100_000)),
            "metadata entry 'run' is not valid JSON (it is nested 100000 deep",
        ),
        (state_edit("classes_dtype", "<U1000000000"), "classes_dtype '<U1000000000' is not a dtype of its classes"),
        (state_edit("n_hidden", 3), "has shape (12,) but the training state has 17 weights (D=2, M=3, K=2)"),
        (state_edit("n_iter", 1e400), "the training state's n_iter must be a non-negative integer"),
        (rng_out_of_range, "rng_state is not the state of the shuffling generator"),
        (
            lambda t, m: t.update({"scaler.mean": np.zeros(5)}),
            "scaler.mean has shape (5,) but the training state has 2",
        ),
    ],
)
def test_resume_refuses_hostile_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, expected: str
) -> None:
    data, content = checkpoint_bytes(tmp_path, capsys)
    checkpoint = tmp_path / "run.ckpt"
    checkpoint.write_bytes(edited(content, edit))
    line = refused(capsys, ["train", str(data), "--resume", str(checkpoint), "--quiet"], tmp_path, str(checkpoint))
    assert expected in line
    with pytest.raises(DataError) as excinfo:
        load_checkpoint(checkpoint)
    assert expected in str(excinfo.value)


def test_an_unedited_checkpoint_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, content = checkpoint_bytes(tmp_path, capsys)
    checkpoint = tmp_path / "run.ckpt"
    checkpoint.write_bytes(edited(content, lambda t, m: None))
    assert main(["train", str(data), "--resume", str(checkpoint), "--quiet"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "sgd", "dtype": np.float32},
        {"solver": "sgd", "nesterovs_momentum": False, "learning_rate": "invscaling"},
        {"solver": "adam", "early_stopping": True},
        {"solver": "lbfgs"},
    ],
    ids=["sgd-float32", "sgd-invscaling", "adam-early-stopping", "lbfgs"],
)
@pytest.mark.parametrize("labels", ["int", "str", "object", "bool"])
def test_the_checks_take_every_real_training_state(tmp_path: Path, params: dict[str, Any], labels: str) -> None:
    # The checks of a checkpoint's state must refuse no state that training really writes.
    from twolayer.io.modelfile import Checkpoint, save_checkpoint

    rng = np.random.default_rng(4)
    dtype = params.pop("dtype", np.float64)
    X = rng.normal(size=(40, 2)).astype(dtype)
    codes = (X[:, 0] > 0).astype(int)
    y: Any = {
        "int": codes * 5 - 2,
        "str": np.array(["no", "yes!"])[codes],
        "object": np.array(["no", "yes!"], dtype=object)[codes],
        "bool": codes.astype(bool),
    }[labels]
    model = TwoLayerClassifier(n_hidden=3, max_iter=3, random_state=0, **params).fit(X, y)
    path = tmp_path / "run.ckpt"
    checkpoint = Checkpoint(
        state=model.get_training_state(),
        hyperparameters=model.get_params(),
        scaler_mean=np.zeros(2),
        scaler_scale=np.ones(2),
        train_index=np.arange(30),
        test_index=np.arange(30, 40),
        epoch=3,
    )
    save_checkpoint(path, checkpoint)
    loaded = load_checkpoint(path)
    resumed = TwoLayerClassifier(**loaded.hyperparameters).set_training_state(loaded.state)
    np.testing.assert_array_equal(resumed.predict_proba(X), model.predict_proba(X))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_given_to_resume_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, _ = checkpoint_bytes(tmp_path, capsys)
    line = refused(capsys, ["train", str(data), "--resume", "/dev/zero", "--quiet"], tmp_path, "/dev/zero")
    assert "character device" in line


# --------------------------------------------------------------------------
# The Python API
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("corrupt", "kind", "expected"), CORRUPTIONS)
@pytest.mark.parametrize("reader", [read, load])
def test_api_refuses_hostile_model_files(
    tmp_path: Path,
    originals: dict[str, bytes],
    reader: Callable[[Path], Any],
    corrupt: Callable[[bytes], bytes],
    kind: str,
    expected: str,
) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(corrupt(originals[kind]))
    with pytest.raises(DataError) as excinfo:
        reader(path)
    assert isinstance(excinfo.value, ValueError)
    message = str(excinfo.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_nesting_up_to_the_limit_is_read(tmp_path: Path, originals: dict[str, bytes]) -> None:
    path = tmp_path / "model.safetensors"
    deep = {"a": json.loads(nested(MAX_JSON_DEPTH - 1))}  # the object is one level more
    path.write_bytes(edited(originals["named"], lambda t, m: m.update(info=json.dumps(deep))))
    assert read(path).info == deep
    deeper = {"a": json.loads(nested(MAX_JSON_DEPTH))}
    path.write_bytes(edited(originals["named"], lambda t, m: m.update(info=json.dumps(deeper))))
    with pytest.raises(DataError, match=f"nested {MAX_JSON_DEPTH + 1} deep, more than the {MAX_JSON_DEPTH} allowed"):
        read(path)


def test_brackets_inside_strings_are_not_nesting(tmp_path: Path, originals: dict[str, bytes]) -> None:
    path = tmp_path / "model.safetensors"
    info = {"note": "[" * 1000 + '\\"{' * 1000}
    path.write_bytes(edited(originals["named"], lambda t, m: m.update(info=json.dumps(info))))
    assert read(path).info == info


def test_a_foreign_file_is_refused_before_its_tensors_are_read(tmp_path: Path) -> None:
    # The header says it is no twolayer file: its (here missing) tensors are never read.
    path = tmp_path / "foreign.safetensors"
    path.write_bytes(
        raw_file('{"__metadata__":{"hello":"world"},"w":{"dtype":"F64","shape":[1000000],"data_offsets":[0,8000000]}}')
    )
    with pytest.raises(DataError, match=r"not a twolayer model file \(its metadata names no twolayer format\)"):
        read(path)


def test_a_file_larger_than_memory_is_refused(
    tmp_path: Path, originals: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(originals["named"])
    monkeypatch.setattr(container, "available_memory", lambda: len(originals["named"]))
    with pytest.raises(DataError, match=r"reading it needs about .* of memory is available"):
        read(path)
    monkeypatch.setattr(container, "available_memory", lambda: None)  # unknown: nothing is checked
    read(path)


def test_a_file_larger_than_the_limit_is_refused_unread(
    tmp_path: Path, originals: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sparse file can claim terabytes on no disk at all; the limit is lowered here rather than such
    # a file made, since not every file system makes one sparse.
    path = tmp_path / "model.safetensors"
    path.write_bytes(originals["named"])
    monkeypatch.setattr(container, "MAX_FILE_BYTES", len(originals["named"]) - 1)
    with pytest.raises(DataError, match=re.escape(str(path)) + " is .* more than the .* a twolayer model file may be"):
        read(path)


def test_a_ten_million_weight_model_still_loads(tmp_path: Path) -> None:
    from twolayer.network import Params

    D, M, K = 1000, 10_000, 2
    rng = np.random.default_rng(3)
    params = Params(
        rng.standard_normal((D, M), dtype=np.float32),
        np.zeros(M, np.float32),
        rng.standard_normal((M, K), dtype=np.float32),
        np.zeros(K, np.float32),
    )
    model = TwoLayerClassifier.from_params(params, np.array([0, 1]), hyperparameters={"n_hidden": M})
    path = tmp_path / "big.safetensors"
    save(model, path)
    loaded = read(path)
    assert loaded.classifier.params_[0].shape == (D, M)
    np.testing.assert_array_equal(loaded.classifier.params_[0], params.W1)


def test_saving_refuses_more_monte_carlo_samples_than_reading_takes() -> None:
    file = read(BAYESIAN)
    file.classifier.set_params(n_samples=MAX_MC_SAMPLES + 1)
    with pytest.raises(ValueError, match="n_samples is 1000001, more than the 1000000"):
        model_bytes(file.classifier)
    file.classifier.set_params(n_samples=MAX_MC_SAMPLES)
    model_bytes(file.classifier)


def test_a_name_with_a_nul_is_refused() -> None:
    with pytest.raises(DataError, match="NUL"):
        read("model\0.safetensors")
