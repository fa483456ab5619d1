"""Tests for twolayer.io.modelfile: round trips, atomic writes, and files that must be refused."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy
from safetensors import safe_open
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from twolayer.classifier import TwoLayerClassifier
from twolayer.errors import DataError
from twolayer.io import container
from twolayer.io.modelfile import (
    Checkpoint,
    atomic_write,
    atomic_write_all,
    load,
    load_checkpoint,
    model_bytes,
    read,
    save,
    save_checkpoint,
)

# Tiny fits stop at max_iter on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DATA = Path(__file__).parent / "data"  # model files written by earlier versions


class Payload:
    """Unpickling this creates the folder ``marker``: proof that code from a file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def problem(labels: str = "int", n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, -1.0]
    codes = (X[:, 0] + X[:, 2] * 10 > -10).astype(int) + (X[:, 1] > 5)
    y = np.array(["low", "mid", "high"])[codes] if labels == "str" else codes * 7 - 3
    return X, y


def fitted(dtype: type = np.float64, labels: str = "int", **params: Any) -> tuple[TwoLayerClassifier, np.ndarray]:
    X, y = problem(labels)
    settings = {"n_hidden": 4, "max_iter": 5, "random_state": 0, **params}
    model = TwoLayerClassifier(**settings).fit(X.astype(dtype), y)
    return model, X


def one_line(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message, message
    return message


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("labels", ["int", "str"])
def test_classifier_round_trip(tmp_path: Path, dtype: type, labels: str) -> None:
    model, X = fitted(dtype, labels, class_weight="balanced")
    path = tmp_path / "m.safetensors"
    save(model, path, feature_names=["a", "b", "c"], target_name="label")
    loaded = load(path)
    assert isinstance(loaded, TwoLayerClassifier)
    for before, after in zip(model.params_, loaded.params_):
        assert after.dtype == dtype
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(loaded.predict_proba(X.astype(dtype)), model.predict_proba(X.astype(dtype)))
    assert loaded.classes_.tolist() == model.classes_.tolist()
    assert type(loaded.classes_.tolist()[0]) is type(model.classes_.tolist()[0])
    expected = {k: v for k, v in model.get_params().items() if k != "callback"}
    assert {k: v for k, v in loaded.get_params().items() if k != "callback"} == expected
    assert loaded.loss_curve_ == model.loss_curve_ and loaded.n_iter_ == model.n_iter_
    info = read(path)
    assert info.feature_names == ("a", "b", "c") and info.target_name == "label"
    assert info.dtype == np.dtype(dtype).name and info.n_features == 3


def test_class_weight_dict_keeps_class_types(tmp_path: Path) -> None:
    model, _ = fitted(class_weight={-3: 1.0, 4: 2.0, 11: 0.5})
    save(model, tmp_path / "m.safetensors")
    assert load(tmp_path / "m.safetensors").class_weight == {-3: 1.0, 4: 2.0, 11: 0.5}


def test_pipeline_round_trip(tmp_path: Path) -> None:
    X, y = problem()
    pipe = Pipeline([("s", StandardScaler()), ("c", TwoLayerClassifier(n_hidden=3, max_iter=200, random_state=1))])
    pipe.fit(X, y)
    save(pipe, tmp_path / "p.safetensors", validation_curve=[0.5, 0.75])
    loaded = load(tmp_path / "p.safetensors")
    assert isinstance(loaded, Pipeline)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    assert read(tmp_path / "p.safetensors").validation_curve == [0.5, 0.75]


def test_file_is_plain_safetensors(tmp_path: Path) -> None:
    # Any safetensors reader sees the weights under their names, and JSON metadata.
    model, _ = fitted()
    path = tmp_path / "m.safetensors"
    save(model, path)
    with safe_open(str(path), framework="numpy") as f:
        names = set(f.keys())
        metadata = f.metadata()
        W1 = f.get_tensor("W1")
    assert names == {"W1", "b1", "W2", "b2"}
    np.testing.assert_array_equal(W1, model.coefs_[0])
    assert metadata["format"] == "twolayer.model" and metadata["format_version"] == "1"
    assert json.loads(metadata["classes"]) == [-3, 4, 11]
    assert json.loads(metadata["hyperparameters"])["n_hidden"] == 4


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, X = fitted()
    save(model, tmp_path / "m.safetensors")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle was used while loading a model file")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    np.testing.assert_array_equal(load(tmp_path / "m.safetensors").predict(X), model.predict(X))


def test_save_refuses_what_cannot_be_loaded(tmp_path: Path) -> None:
    _model, _ = fitted()
    with pytest.raises(TypeError, match="TwoLayerClassifier"):
        save(StandardScaler().fit(np.ones((2, 2))), tmp_path / "x.safetensors")
    broken, _ = fitted()
    broken.params_.W2[0, 0] = np.nan  # a diverged fit
    with pytest.raises(ValueError, match="not finite"):
        save(broken, tmp_path / "x.safetensors")
    X, _ = problem()
    floats = TwoLayerClassifier(n_hidden=2, max_iter=2).fit(X, (X[:, 0] > 0).astype(float))
    with pytest.raises(TypeError, match="integer or string"):
        save(floats, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


# --------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    atomic_write(path, b"old")
    atomic_write(path, b"new contents")
    assert path.read_bytes() == b"new contents"
    assert leftovers(tmp_path) == []
    assert (path.stat().st_mode & 0o777) == (0o666 & ~_umask())


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@pytest.mark.parametrize("failing", ["fsync", "replace", "interrupt"])
def test_old_file_survives_a_failed_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    model, X = fitted()
    path = tmp_path / "m.safetensors"
    save(model, path)
    before = path.read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        if failing == "interrupt":
            raise KeyboardInterrupt
        raise OSError(28, "No space left on device")

    # the failure strikes after the new bytes were written to the temporary file
    monkeypatch.setattr(os, "replace" if failing == "replace" else "fsync", fail)
    other, _ = fitted(labels="str")
    if failing == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            save(other, path)
    else:
        with pytest.raises(DataError, match="No space left on device"):
            save(other, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    np.testing.assert_array_equal(load(path).predict(X), model.predict(X))


@pytest.mark.parametrize("failing", ["fsync", "interrupt", "folder"])
def test_atomic_write_all_writes_every_file_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    first, second = tmp_path / "model.bin", tmp_path / "plot.png"
    atomic_write_all([(first, b"old model"), (second, b"old plot")])
    assert (first.read_bytes(), second.read_bytes()) == (b"old model", b"old plot")
    real_fsync = os.fsync
    calls = []

    def fsync_failing_the_second(fd: int) -> None:  # the first file is already staged by then
        calls.append(fd)
        if len(calls) == 2:
            if failing == "interrupt":
                raise KeyboardInterrupt
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    if failing == "folder":
        second_target = tmp_path / "gone" / "plot.png"
        with pytest.raises(DataError, match="does not exist"):
            atomic_write_all([(first, b"new model"), (second_target, b"new plot")])
    else:
        monkeypatch.setattr(os, "fsync", fsync_failing_the_second)
        with pytest.raises(KeyboardInterrupt if failing == "interrupt" else DataError):
            atomic_write_all([(first, b"new model"), (second, b"new plot")])
        monkeypatch.undo()
    assert (first.read_bytes(), second.read_bytes()) == (b"old model", b"old plot")
    assert leftovers(tmp_path) == []
    atomic_write_all([(first, b"new model"), (second, b"new plot")])
    assert (first.read_bytes(), second.read_bytes()) == (b"new model", b"new plot")
    assert leftovers(tmp_path) == []


def test_atomic_write_all_names_what_a_failed_rename_left_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "model.bin", tmp_path / "plot.png"
    real_replace, calls = os.replace, []

    def replace_failing_the_second(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_failing_the_second)
    with pytest.raises(
        DataError, match=r"cannot write .*plot.png: Input/output error \(.*model.bin already replaced\)"
    ):
        atomic_write_all([(first, b"model"), (second, b"plot")])
    monkeypatch.undo()
    assert first.read_bytes() == b"model" and not second.exists()
    assert leftovers(tmp_path) == []


def test_model_bytes_are_what_save_writes(tmp_path: Path) -> None:
    model, X = fitted()
    path = tmp_path / "m.safetensors"
    save(model, path, info={"note": "x"})
    data = model_bytes(model, info={"note": "x"})
    (tmp_path / "n.safetensors").write_bytes(data)
    assert path.read_bytes() == data  # the header's metadata is sorted: the same model, the same bytes
    saved, made = read(path), read(tmp_path / "n.safetensors")
    assert made.info == saved.info == {"note": "x"}
    for a, b in zip(saved.classifier.params_, made.classifier.params_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(made.model.predict(X), model.predict(X))


def test_a_model_saves_to_the_same_bytes_every_time(tmp_path: Path) -> None:
    # safetensors' own metadata order changes from call to call (a hash map); ten saves of one
    # model with many entries, non-ASCII and escaped text among them, must agree byte for byte.
    model, X = fitted(labels="str")
    info = {"note": 'grüße "quoted"\n\u2028', "run": "7"}
    names = ["α", "b\tc", "d"]
    files = {model_bytes(model, info=info, feature_names=names) for _ in range(10)}
    assert len(files) == 1
    data = files.pop()
    size = int.from_bytes(data[:8], "little")
    assert size % 8 == 0  # padded as safetensors pads it, so the tensors stay aligned
    metadata = json.loads(data[8 : 8 + size])["__metadata__"]
    assert list(metadata) == sorted(metadata)
    # safetensors and our reader both still read it, and see what was saved
    assert {"W1", "b1", "W2", "b2"} <= set(safetensors.numpy.load(data))
    (tmp_path / "m.safetensors").write_bytes(data)
    back = read(tmp_path / "m.safetensors")
    assert back.info == info and list(back.feature_names) == names
    np.testing.assert_array_equal(back.model.predict(X), model.predict(X))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_atomic_write_never_replaces_what_is_not_a_regular_file(tmp_path: Path) -> None:
    # The rename would turn a FIFO (or a device: /dev/null, for every program) into a plain file.
    # A FIFO in the test's folder stands for the device, which no test may write to.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    for target in (fifo, link):
        with pytest.raises(DataError, match=f"cannot write {target}: it is a FIFO, which a new file would replace"):
            atomic_write(target, b"data")
    model, _ = fitted()
    with pytest.raises(DataError, match="FIFO"):
        save(model, fifo)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and link.is_symlink()
    assert leftovers(tmp_path) == []


def test_atomic_write_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        atomic_write(tmp_path / "no" / "f.bin", b"x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        atomic_write(tmp_path / "dir", b"x")


# --------------------------------------------------------------------------
# Files that must be refused
# --------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    model, _ = fitted()
    path = tmp_path / "m.safetensors"
    save(model, path, feature_names=["a", "b", "c"])
    return path


@pytest.mark.parametrize("keep", [0, 5, 8, 40, 200, -1])
def test_truncated_file(saved: Path, keep: int) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(DataError) as excinfo:
        load(saved)
    message = one_line(excinfo)
    assert str(saved) in message and "not a twolayer model file" in message


def test_flipped_byte_in_the_weights(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0x10  # inside b2, the last tensor's data
    saved.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupted"):
        load(saved)


def test_edited_metadata(saved: Path) -> None:
    data = saved.read_bytes()
    edited = data.replace(b'\\"a\\"', b'\\"z\\"', 1)  # rename a feature, keeping the JSON valid
    assert edited != data
    saved.write_bytes(edited)
    with pytest.raises(DataError, match="corrupted"):
        load(saved)


def test_pickle_renamed_to_a_model_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"W1": Payload(marker)}))
    with pytest.raises(DataError) as excinfo:
        load(path)
    assert "pickle" in one_line(excinfo)
    assert not marker.exists()
    # the payload is live: unpickling the same bytes runs it
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_other_files_are_refused(tmp_path: Path) -> None:
    npz = tmp_path / "data.safetensors"
    with open(npz, "wb") as handle:
        np.savez(handle, X=np.ones(3))
    with pytest.raises(DataError, match="zip archive"):
        load(npz)
    text = tmp_path / "predictions.safetensors"
    text.write_text("prediction,proba_0\n0,0.9\n")
    with pytest.raises(DataError, match="looks like a text file"):
        load(text)
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(safetensors.numpy.save({"w": np.ones(2)}, metadata={"hello": "world"}))
    with pytest.raises(DataError, match="not a twolayer model file"):
        load(foreign)
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "missing.safetensors")
    with pytest.raises(DataError, match="is a folder"):
        load(tmp_path)


def repack(path: Path, edit: Any) -> None:
    """Rewrite a file with edited contents and a digest that matches them.

    The digest guards against accidents, not tampering: a crafted file with a
    correct digest must still be refused by the checks of its contents.
    """
    tensors = safetensors.numpy.load(path.read_bytes())
    with safe_open(str(path), framework="numpy") as f:
        metadata = dict(f.metadata())
    edit(tensors, metadata)
    metadata["sha256"] = container._digest(tensors, metadata)
    path.write_bytes(safetensors.numpy.save(tensors, metadata=metadata))


def test_repack_without_edits_loads(saved: Path) -> None:
    repack(saved, lambda t, m: None)  # the crafting helper itself makes loadable files
    assert read(saved).feature_names == ("a", "b", "c")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t, m: m.update(format_version="4"), "newer twolayer (format version 4; this version reads up to 3)"),
        (lambda t, m: m.update(kind='"bayesian"'), "kind 'bayesian' is not a kind of model of format version 1"),
        (lambda t, m: m.update(format_version="x"), "is not a version number"),
        (lambda t, m: m.update(format="twolayer.checkpoint"), "is a training checkpoint"),
        (lambda t, m: m.update(classes="[1, 2]"), "W2 has shape (4, 3) but the file lists 2 classes"),
        (lambda t, m: m.update(classes='[1, "a", 2]'), "all integers or all strings"),
        (lambda t, m: m.update(classes="[3, 2, 1]"), "distinct and sorted"),
        (lambda t, m: m.update(classes="[1]"), "at least two classes"),
        (lambda t, m: m.update(feature_names='["a", "b"]'), "W1 has shape (3, 4) but the file names 2 features"),
        (lambda t, m: m.update(feature_names='["a", "b", "a"]'), "'feature_names' must be distinct strings"),
        # A wrong W1 is a shape problem, named as one, not a problem of the feature names.
        (lambda t, m: t.update(W1=np.zeros((5, 4))), "W1 has shape (5, 4) but the file names 3 features"),
        (lambda t, m: t.update(W2=np.zeros((5, 3))), "W2 has shape (5, 3) but W1 has shape (3, 4): W2 needs 4 rows"),
        (lambda t, m: t.update(b2=np.zeros(2)), "b2 has shape (2,) but the file lists 3 classes"),
        (lambda t, m: m.update(classes=json.dumps([-(2**63) - 1, 0, 1])), "integers within the range of int64"),
        (lambda t, m: m.update(classes="[1" + "0" * 5000 + ", 2, 3]"), "all integers or all strings"),
        (
            lambda t, m: m.update(hyperparameters='{"n_hidden": 4, "activation": "tanh", "evil": 1}'),
            "unknown hyperparameter 'evil'",
        ),
        (lambda t, m: m.update(hyperparameters='{"n_hidden": 5, "activation": "tanh"}'), "n_hidden is 5"),
        (lambda t, m: m.update(hyperparameters='{"n_hidden": 4, "activation": "os.system"}'), "unknown activation"),
        (lambda t, m: m.update(dtype='"float16"'), "is not float32 or float64"),
        (lambda t, m: m.update(curves='{"loss": ["x"]}'), "curves['loss'] must be a list of numbers"),
        (lambda t, m: m.update(training="{}"), "training n_iter must be a non-negative integer"),
        (lambda t, m: m.update(training='{"n_iter": 3, "t": 1e400}'), "training t must be a non-negative integer"),
        (
            lambda t, m: m.update(training=json.dumps({"n_iter": 3, "t": 2**63})),
            "training t must be a non-negative integer (at most 2**63 - 1)",
        ),
        (lambda t, m: m.update(info="[" * 65 + "]" * 65), "'info' is not valid JSON (it is nested 65 deep"),
        (
            lambda t, m: m.update(
                hyperparameters=json.dumps({**json.loads(m["hyperparameters"]), "class_weight": {"pairs": [[1, "x"]]}})
            ),
            "hyperparameter 'class_weight' is malformed",
        ),
        (lambda t, m: m.update(classes="[1, 2"), "'classes' is not valid JSON"),
        (lambda t, m: t.update(W1=np.full_like(t["W1"], np.nan)), "'W1' holds NaN or infinity"),
        (
            lambda t, m: t.update(b1=t["b1"][:2]),
            "b1 has shape (2,) but W1 has shape (3, 4): one bias per hidden unit, 4",
        ),
        (lambda t, m: t.update(W2=t["W2"].astype(np.float32)), "'W2' has dtype float32, expected float64"),
        (lambda t, m: t.update(extra=np.zeros(1)), "unexpected tensor 'extra'"),
        (lambda t, m: t.pop("b2"), "tensor 'b2' is missing"),
    ],
)
def test_inconsistent_contents_are_refused(saved: Path, edit: Any, expected: str) -> None:
    repack(saved, edit)
    with pytest.raises(DataError) as excinfo:
        read(saved)
    message = one_line(excinfo)
    assert expected in message and str(saved) in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t, m: t.update({"scaler.mean": np.zeros(4)}),
            "scaler.mean has shape (4,) but W1 has shape (3, 2), 3 features",
        ),
        (
            lambda t, m: t.update({"scaler.scale": np.ones(2)}),
            "scaler.scale has shape (2,) but W1 has shape (3, 2), 3 features",
        ),
        (lambda t, m: m.update(scaler='{"n_samples_seen": 0}'), "the scaler's n_samples_seen must be a positive"),
        (
            lambda t, m: m.update(scaler=json.dumps({"n_samples_seen": 2**63})),
            "the scaler's n_samples_seen must be a positive",
        ),
    ],
)
def test_inconsistent_scaler_is_refused(tmp_path: Path, edit: Any, expected: str) -> None:
    path = tmp_path / "pipeline.safetensors"
    path.write_bytes((DATA / "format1_pipeline.safetensors").read_bytes())
    repack(path, edit)
    with pytest.raises(DataError) as excinfo:
        read(path)
    message = one_line(excinfo)
    assert expected in message and str(path) in message


# --------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------


def test_checkpoint_resumes_bit_for_bit(tmp_path: Path) -> None:
    X, y = problem()
    params = {"n_hidden": 5, "random_state": 3, "solver": "adam", "batch_size": 16}
    whole = TwoLayerClassifier(max_iter=7, **params).fit(X, y)
    first = TwoLayerClassifier(max_iter=3, **params).fit(X, y)
    path = tmp_path / "c.ckpt"
    train_index, test_index = np.arange(0, 50), np.arange(50, 60)
    save_checkpoint(
        path,
        Checkpoint(
            state=first.get_training_state(),
            hyperparameters=first.get_params(),
            scaler_mean=np.zeros(3),
            scaler_scale=np.ones(3),
            train_index=train_index,
            test_index=test_index,
            epoch=3,
            run={"note": ["any", "json", 1.5]},
        ),
    )
    checkpoint = load_checkpoint(path)
    resumed = TwoLayerClassifier(**checkpoint.hyperparameters).set_training_state(checkpoint.state)
    resumed.set_params(warm_start=True, max_iter=4).fit(X, y)
    for a, b in zip(whole.params_, resumed.params_):
        np.testing.assert_array_equal(a, b)
    assert resumed.loss_curve_ == whole.loss_curve_
    np.testing.assert_array_equal(checkpoint.train_index, train_index)
    np.testing.assert_array_equal(checkpoint.test_index, test_index)
    assert checkpoint.epoch == 3 and checkpoint.run == {"note": ["any", "json", 1.5]}
    np.testing.assert_array_equal(checkpoint.scaler_scale, np.ones(3))


def plain_checkpoint(tmp_path: Path, train_index: np.ndarray, test_index: np.ndarray) -> Path:
    """A checkpoint of a small fitted network at epoch 5, with no scaler, and its path."""
    model, _ = fitted()
    path = tmp_path / "c.ckpt"
    save_checkpoint(
        path,
        Checkpoint(
            state=model.get_training_state(),
            hyperparameters=model.get_params(),
            scaler_mean=None,
            scaler_scale=None,
            train_index=train_index,
            test_index=test_index,
            epoch=5,
        ),
    )
    return path


def test_checkpoint_is_not_a_model_and_back(tmp_path: Path, saved: Path) -> None:
    path = plain_checkpoint(tmp_path, train_index=np.arange(3), test_index=np.arange(3, 5))
    with pytest.raises(DataError, match="--resume"):
        load(path)
    with pytest.raises(DataError, match="is a model file, not a checkpoint"):
        load_checkpoint(saved)
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="corrupted"):
        load_checkpoint(path)


def test_checkpoint_with_overlapping_split_is_refused(tmp_path: Path) -> None:
    path = plain_checkpoint(tmp_path, train_index=np.arange(4), test_index=np.arange(3, 5))
    with pytest.raises(DataError, match="overlap"):
        load_checkpoint(path)


def test_digest_covers_every_tensor_and_entry() -> None:
    # Independent of the implementation's order of hashing: any change to any
    # tensor byte, name or metadata value changes the digest.
    tensors = {"a": np.arange(3.0), "b": np.ones((2, 2), dtype=np.float32)}
    metadata = {"format": "f", "x": "1"}
    base = container._digest(tensors, metadata)
    assert base == container._digest({"b": tensors["b"], "a": tensors["a"]}, dict(reversed(metadata.items())))
    changed = [
        container._digest({**tensors, "a": np.array([0.0, 1.0, 2.5])}, metadata),
        container._digest({"A": tensors["a"], "b": tensors["b"]}, metadata),
        container._digest({**tensors, "b": tensors["b"].astype(np.float64)}, metadata),
        container._digest(tensors, {**metadata, "x": "2"}),
        container._digest(tensors, {**metadata, "y": "1"}),
    ]
    assert len({base, *changed}) == 6
    assert container._digest(tensors, {**metadata, "sha256": "anything"}) == base
    assert len(base) == len(hashlib.sha256().hexdigest())


# --------------------------------------------------------------------------
# Bayesian networks (format version 2)
# --------------------------------------------------------------------------


def bayesian(labels: str = "int", **params: Any) -> tuple[Any, np.ndarray]:
    from twolayer.bayes import BayesianTwoLayerClassifier

    X, y = problem(labels)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    settings = {"n_hidden": 3, "max_cycles": 3, "n_samples": 200, "random_state": 0, **params}
    return BayesianTwoLayerClassifier(**settings).fit(X, y), X


BAYES_CASES = [
    pytest.param({}, id="full"),
    pytest.param({"structure": "last_layer", "per_group": True, "method": "probit"}, id="last-layer"),
    pytest.param(
        {"structure": "diagonal", "hessian": "exact", "alpha_search": "grid", "alpha_grid": [0.1, 1.0, 10.0]},
        id="diagonal-grid",
    ),
]


@pytest.mark.filterwarnings("ignore:a prior precision reached the bound")  # per-group precisions may run off
@pytest.mark.parametrize("params", BAYES_CASES)
def test_bayesian_round_trip(tmp_path: Path, params: dict[str, Any]) -> None:
    model, X = bayesian(**params)
    path = tmp_path / "b.safetensors"
    save(model, path, feature_names=["a", "b", "c"])
    file = read(path)
    loaded = file.model
    assert file.bayesian and file.format_version == 2 and type(loaded) is type(model)
    assert loaded.get_params() == {**model.get_params(), "alpha_grid": params.get("alpha_grid")}
    # The moderated predictions (Monte Carlo with the fitted seed, or probit) and the MAP ones, bit for bit.
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict_proba_map(X), model.predict_proba_map(X))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for name in (
        "alpha_",
        "gamma_",
        "log_evidence_",
        "n_cycles_",
        "n_negative_eigenvalues_",
        "loss_",
        "best_loss_",
        "loss_curve_",
        "evidence_curve_",
        "n_iter_",
        "t_",
    ):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name), err_msg=name)
    np.testing.assert_array_equal(loaded.gamma_groups_, model.gamma_groups_)  # NaN where not covered
    np.testing.assert_array_equal(np.array(loaded.alpha_curve_), np.array(model.alpha_curve_))
    before, after = model.posterior_, loaded.posterior_
    np.testing.assert_array_equal(after.marginal_variance, before.marginal_variance)
    np.testing.assert_array_equal(after.mean, before.mean)
    # The precision is rebuilt from its Cholesky factor: equal up to rounding.
    np.testing.assert_allclose(
        after.precision, before.precision, rtol=1e-13, atol=1e-13 * np.abs(before.precision).max()
    )


def test_bayesian_file_holds_the_packed_factor(tmp_path: Path) -> None:
    model, _ = bayesian()
    path = tmp_path / "b.safetensors"
    save(model, path)
    with safe_open(str(path), framework="numpy") as f:
        metadata = f.metadata()
        packed = f.get_tensor("posterior.factor")
        names = set(f.keys())
    assert metadata["format_version"] == "2" and json.loads(metadata["kind"]) == "bayesian"
    assert names == {"W1", "b1", "W2", "b2", "posterior.factor", "posterior.variance"}
    A = model.posterior_.precision
    P = A.shape[0]
    assert packed.shape == (P * (P + 1) // 2,)
    # Row by row, the lower triangle of a Cholesky factor of A (checked against numpy's own).
    L = np.zeros((P, P))
    L[np.tril_indices(P)] = packed
    np.testing.assert_allclose(L, np.linalg.cholesky(A), rtol=1e-10, atol=1e-12)
    # A plain network is still written as version 1, which older versions of twolayer read.
    plain, _ = fitted()
    save(plain, tmp_path / "plain.safetensors")
    with safe_open(str(tmp_path / "plain.safetensors"), framework="numpy") as f:
        assert f.metadata()["format_version"] == "1" and "kind" not in f.metadata()


def test_bayesian_pipeline_with_string_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from twolayer.bayes import BayesianTwoLayerClassifier

    X, y = problem("str")
    pipe = Pipeline(
        [
            ("s", StandardScaler()),
            ("c", BayesianTwoLayerClassifier(n_hidden=2, max_cycles=2, n_samples=100, random_state=3)),
        ]
    )
    pipe.fit(X, y)
    save(pipe, tmp_path / "p.safetensors")

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("pickle was used while loading a model file")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    loaded = load(tmp_path / "p.safetensors")
    assert isinstance(loaded, Pipeline)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    assert loaded.classes_.tolist() == ["high", "low", "mid"]


@pytest.fixture(scope="module")
def bayesian_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    model, _ = bayesian()
    path = tmp_path_factory.mktemp("bayes") / "b.safetensors"
    save(model, path)
    return path.read_bytes()


@pytest.fixture
def saved_bayesian(tmp_path: Path, bayesian_bytes: bytes) -> Path:
    path = tmp_path / "b.safetensors"
    path.write_bytes(bayesian_bytes)  # one fit for every edit below
    return path


def _bayes_edit(key: str, value: Any) -> Any:
    def edit(t: dict[str, np.ndarray], m: dict[str, str]) -> None:
        entry = json.loads(m["bayes"])
        if key.startswith("posterior."):
            entry["posterior"][key.removeprefix("posterior.")] = value
        else:
            entry[key] = value
        m["bayes"] = json.dumps(entry)

    return edit


def _negate_first(t: dict[str, np.ndarray], m: dict[str, str]) -> None:
    factor = t["posterior.factor"].copy()
    factor[0] = -1.0  # the first diagonal entry of L
    t["posterior.factor"] = factor


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t, m: m.update(format_version="1"), "kind 'bayesian' is not a kind of model of format version 1"),
        (lambda t, m: m.update(kind='"oracle"'), "kind 'oracle'"),
        (lambda t, m: m.pop("bayes"), "no 'bayes' entry"),
        (lambda t, m: t.pop("posterior.variance"), "tensor 'posterior.variance' is missing"),
        (lambda t, m: t.update({"posterior.factor": t["posterior.factor"][:-1]}), "'posterior.factor' has shape"),
        (lambda t, m: t.update({"posterior.variance": -t["posterior.variance"]}), "must be positive"),
        (_negate_first, "must be positive"),
        (
            lambda t, m: (
                t.update({k: t[k].astype(np.float32) for k in ("W1", "b1", "W2", "b2")}) or m.update(dtype='"float32"')
            ),
            "a Bayesian network's weights are float64",
        ),
        (_bayes_edit("posterior.structure", "diagonal"), "structure 'diagonal' does not match"),
        (_bayes_edit("posterior.hessian", "exact"), "hessian 'exact' does not match"),
        (_bayes_edit("posterior.prior_precision", [1.0, 0.0, 1.0, 1.0]), "'prior_precision' must be four positive"),
        (_bayes_edit("posterior.gamma", None), "'gamma' must be a finite number"),
        (_bayes_edit("posterior.gamma_groups", [1.0, "x", 1.0, 1.0]), "'gamma_groups' must be four numbers"),
        (_bayes_edit("posterior.n_negative_eigenvalues", -1), "'n_negative_eigenvalues' must be a finite count"),
        (_bayes_edit("predict_seed", "0"), "'predict_seed' must be a non-negative integer"),
        (_bayes_edit("alpha_curve", [[1.0, 1.0]]), "'alpha_curve' must be four positive numbers"),
        (_bayes_edit("evidence_curve", None), "'evidence_curve' must be a list of numbers"),
        (
            lambda t, m: m.update(hyperparameters=json.dumps({**json.loads(m["hyperparameters"]), "solver": "adam"})),
            "unknown hyperparameter 'solver'",
        ),
        (
            lambda t, m: m.update(hyperparameters=json.dumps({**json.loads(m["hyperparameters"]), "n_samples": 0})),
            "does not fit together (n_samples must be a positive integer",
        ),
        # A tampered count of Monte Carlo samples would allocate terabytes at the first prediction.
        (
            lambda t, m: m.update(
                hyperparameters=json.dumps({**json.loads(m["hyperparameters"]), "n_samples": 10**13})
            ),
            "hyperparameter n_samples is 10000000000000, more than the 1000000 Monte Carlo samples",
        ),
        (_bayes_edit("alpha_curve", []), "'n_cycles' must be the length of the evidence and alpha curves"),
        (_bayes_edit("posterior.n_negative_eigenvalues", 10**30), "'n_negative_eigenvalues' must be a finite count"),
        (_bayes_edit("posterior.gamma", 10**30), None),  # a large number, but a number: it loads
        (_bayes_edit("loss", 10**400), "'loss' must be a finite number"),
    ],
)
def test_inconsistent_bayesian_files_are_refused(saved_bayesian: Path, edit: Any, expected: str | None) -> None:
    repack(saved_bayesian, edit)
    if expected is None:
        read(saved_bayesian)
        return
    with pytest.raises(DataError) as excinfo:
        read(saved_bayesian)
    message = one_line(excinfo)
    assert expected in message and str(saved_bayesian) in message


# --------------------------------------------------------------------------
# Files written by an earlier version of twolayer
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "bayesian"),
    [
        ("format1_float32.safetensors", 1, False),
        ("format1_pipeline.safetensors", 1, False),
        ("format2_bayesian.safetensors", 2, True),
        ("format2_bayesian_diagonal.safetensors", 2, True),
    ],
)
def test_files_of_earlier_versions_load_and_predict_as_they_did(name: str, version: int, bayesian: bool) -> None:
    # Each file was saved, once, by the twolayer of format versions 1 and 2 with the inputs and the
    # probabilities the model then gave in its `info` entry: the same bytes must give the same numbers.
    file = read(DATA / name)
    assert file.format_version == version and file.bayesian is bayesian
    X = np.array(file.info["X"])
    if file.dtype == "float32":
        X = X.astype(np.float32)
    np.testing.assert_array_equal(file.model.predict_proba(X), np.array(file.info["proba"], dtype=X.dtype))
    if "proba_map" in file.info:
        np.testing.assert_array_equal(file.classifier.predict_proba_map(X), np.array(file.info["proba_map"]))
        np.testing.assert_array_equal(file.classifier.alpha_, file.info["alpha"])
        assert file.classifier.log_evidence_ == file.info["log_evidence"]
