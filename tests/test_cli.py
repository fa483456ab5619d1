"""End-to-end tests of the ``twolayer`` command, through main(argv) and a real subprocess."""

from __future__ import annotations

import csv
import importlib
import io
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import train_test_split

import twolayer
from twolayer import cli, network
from twolayer.cli.progress import Display
from twolayer.io.datasets import BUILTINS, load_builtin
from twolayer.io.modelfile import load, load_checkpoint, read
from twolayer.report import spectrum

TINY = ["--epochs", "3", "--hidden", "4"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *expected: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    for text in expected:
        assert text in err, err


def predictions_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def table_value(output: str, key: str) -> str:
    match = re.search(rf"{re.escape(key)}\s*│\s*(\S+)", output)
    assert match, output
    return match.group(1)


class Payload:
    """Unpickling this creates the folder ``marker``: proof that code from a file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------
# Train, evaluate, predict
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_train_evaluate_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    model_path = tmp_path / "m.safetensors"
    code, out, err = run(capsys, "train", name, *TINY, "--out", model_path)
    assert code == 0, err
    assert "Summary" in out and "Confusion matrix" in out and f"wrote model {model_path}" in out
    data = load_builtin(name)
    model = load(model_path)
    file = read(model_path)
    assert file.feature_names == data.feature_names and file.info is not None

    # The summary's test accuracy, against the split recomputed independently.
    _, test = train_test_split(np.arange(data.n_samples), test_size=0.2, stratify=data.y, random_state=0)
    accuracy = float(np.mean(model.predict(data.X[test]) == data.y[test]))
    assert file.info["test_accuracy"] == accuracy
    assert table_value(out, "test accuracy") == f"{accuracy:.4f}"
    assert file.info["epochs"] == 3 and len(file.loss_curve) == 3 and len(file.validation_curve or []) == 3

    code, out, err = run(capsys, "evaluate", model_path, name)
    assert code == 0, err
    assert table_value(out, "accuracy") == f"{np.mean(model.predict(data.X) == data.y):.4f}"
    assert "precision" in out and "Confusion matrix" in out

    code, out, err = run(capsys, "predict", model_path, name, "--proba")
    assert code == 0, err
    rows = predictions_csv(out)
    assert [r["prediction"] for r in rows] == [str(v) for v in model.predict(data.X).tolist()]
    proba = model.predict_proba(data.X)
    columns = [f"proba_{c}" for c in file.classes.tolist()]
    got = np.array([[float(r[c]) for c in columns] for r in rows])
    np.testing.assert_allclose(got, proba, rtol=1e-5, atol=1e-12)


def test_default_dataset_is_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "--epochs", "1", "--hidden", "2", "--out", tmp_path / "m.st")
    assert code == 0, err
    assert read(tmp_path / "m.st").n_features == 64 and "digits: 1797 samples" in err


@pytest.fixture
def moons_csv(tmp_path: Path) -> Path:
    data = load_builtin("moons")
    labels = np.array(["left", "right"])[data.y]
    rows = [[i, x1, side, x2] for i, ((x1, x2), side) in enumerate(zip(data.X.tolist(), labels))]
    return write_csv(tmp_path / "moons.csv", ["id", "x1", "side", "x2"], rows)


def test_csv_train_evaluate_predict_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], moons_csv: Path
) -> None:
    model_path = tmp_path / "m.st"
    # "id" is a (numeric) feature here: everything but the target is
    code, _, err = run(capsys, "train", moons_csv, "--target", "side", *TINY, "--out", model_path)
    assert code == 0, err
    file = read(model_path)
    assert file.feature_names == ("id", "x1", "x2") and file.target_name == "side"
    assert file.classes.tolist() == ["left", "right"]

    code, out, err = run(capsys, "evaluate", model_path, moons_csv)  # finds "side" by the stored name
    assert code == 0, err
    assert "left" in out and "right" in out

    code, reference, err = run(capsys, "predict", model_path, moons_csv)
    assert code == 0, err
    # Reordered columns, an extra text column and no target: the same predictions.
    with open(moons_csv, newline="") as handle:
        original = list(csv.DictReader(handle))
    shuffled = write_csv(
        tmp_path / "new.csv",
        ["note", "x2", "x1", "id"],
        [["hello, world", r["x2"], r["x1"], r["id"]] for r in original],
    )
    out_path = tmp_path / "predictions.csv"
    code, out, err = run(capsys, "predict", model_path, shuffled, "--out", out_path)
    assert code == 0, err
    assert out_path.read_text() == reference and "wrote 400 predictions" in out

    missing = write_csv(tmp_path / "missing.csv", ["x2", "id"], [[r["x2"], r["id"]] for r in original])
    code, _, err = run(capsys, "predict", model_path, missing)
    assert_one_line_error(code, err, "missing column 'x1'", "missing.csv")


def test_npz_train_evaluate_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = load_builtin("wine")
    np.savez(tmp_path / "wine.npz", X=data.X, y=data.y)
    model_path = tmp_path / "m.st"
    code, _, err = run(capsys, "train", tmp_path / "wine.npz", *TINY, "--dtype", "float64", "--out", model_path)
    assert code == 0, err
    file = read(model_path)
    assert file.feature_names is None and file.dtype == "float64"
    code, out, err = run(capsys, "evaluate", model_path, tmp_path / "wine.npz")
    assert code == 0, err
    np.savez(tmp_path / "x_only.npz", X=data.X)
    code, out, err = run(capsys, "predict", model_path, tmp_path / "x_only.npz")
    assert code == 0, err
    assert [r["prediction"] for r in predictions_csv(out)] == load(model_path).predict(data.X).tolist()
    np.savez(tmp_path / "narrow.npz", X=data.X[:, :5])
    code, _, err = run(capsys, "predict", model_path, tmp_path / "narrow.npz")
    assert_one_line_error(code, err, "the model expects 13 features, got 5")


def test_no_scale_model_is_a_bare_classifier(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "blobs", *TINY, "--no-scale", "--solver", "lbfgs", "--out", tmp_path / "m")
    assert code == 0, err
    assert isinstance(load(tmp_path / "m"), twolayer.TwoLayerClassifier)


# --------------------------------------------------------------------------
# Bad input: one line, exit 2, nothing written
# --------------------------------------------------------------------------


def _bad_csv(tmp: Path, text: str) -> str:
    path = tmp / "bad.csv"
    path.write_text(text)
    return str(path)


BAD_TRAIN: list[tuple[str, Callable[[Path], list[str]], list[str]]] = [
    ("missing file", lambda t: [str(t / "nope.csv")], ["no such file", "nope.csv"]),
    ("unknown built-in", lambda t: ["mnist"], ["unknown dataset 'mnist'", "digits"]),
    ("unknown column", lambda t: [_bad_csv(t, "a,b\n1,x\n2,y\n"), "--target", "label"], ["no column 'label'"]),
    (
        "non-numeric cell",
        lambda t: [_bad_csv(t, "a,b,t\n1,2,x\n3,four,y\n")],
        ["line 3, column 'b': expected a number, got 'four'"],
    ),
    ("NaN", lambda t: [_bad_csv(t, "a,b,t\n1,2,x\n3,nan,y\n")], ["line 3, column 'b': NaN is not allowed"]),
    ("infinity", lambda t: [_bad_csv(t, "a,b,t\n1,-inf,x\n3,1,y\n")], ["line 2, column 'b': infinity"]),
    ("one class", lambda t: [_bad_csv(t, "a,t\n1,x\n2,x\n3,x\n")], ["single class ('x')"]),
    ("singleton class", lambda t: [_bad_csv(t, "a,t\n1,x\n2,x\n3,y\n")], ["class 'y' has a single sample"]),
    ("test too small", lambda t: ["digits", "--test-size", "0.001"], ["leaves 2 samples held out", "10 classes"]),
    ("zero hidden", lambda t: ["--hidden", "0"], ["argument --hidden: expected a positive integer, got '0'"]),
    ("test size", lambda t: ["--test-size", "1.5"], ["argument --test-size: expected a fraction"]),
    ("epochs", lambda t: ["--epochs", "ten"], ["argument --epochs: expected a positive integer, got 'ten'"]),
    ("solver", lambda t: ["--solver", "newton"], ["argument --solver: invalid choice: 'newton'"]),
    ("batch", lambda t: ["--batch-size", "-5"], ["argument --batch-size"]),
    ("seed", lambda t: ["--seed", "-1"], ["argument --seed: expected a non-negative integer"]),
    ("learning rate", lambda t: ["--learning-rate", "nan"], ["argument --learning-rate: expected a positive"]),
    ("unknown option", lambda t: ["--epoch", "3"], ["unrecognized arguments: --epoch"]),
    ("no folder", lambda t: ["iris", "--plot", str(t / "no" / "p.png")], ["--plot", "does not exist"]),
    (
        "diverges",
        lambda t: ["iris", "--solver", "sgd", "--learning-rate", "1e30", "--epochs", "5", "--quiet"],
        ["diverged", "Nothing was written"],
    ),
    ("resume missing", lambda t: ["--resume", str(t / "none.ckpt")], ["no such file"]),
]


@pytest.mark.parametrize(("case", "argv", "expected"), BAD_TRAIN, ids=[c[0] for c in BAD_TRAIN])
def test_bad_train_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    case: str,
    argv: Callable[[Path], list[str]],
    expected: list[str],
) -> None:
    out_path = tmp_path / "model.st"
    code, out, err = run(capsys, "train", *argv(tmp_path), "--out", out_path, "--checkpoint", tmp_path / "c.ckpt")
    assert_one_line_error(code, err, *expected)
    assert out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["bad.csv"])


@pytest.fixture
def moons_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "moons.st"
    code, _, err = run(capsys, "train", "moons", *TINY, "--out", path)
    assert code == 0, err
    return path


def test_bad_evaluate_and_predict_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], moons_model: Path) -> None:
    code, _, err = run(capsys, "evaluate", moons_model, "iris")
    assert_one_line_error(code, err, "missing columns 'x1', 'x2'")
    code, _, err = run(capsys, "evaluate", tmp_path / "nothing.st", "moons")
    assert_one_line_error(code, err, "no such file")
    labels = write_csv(tmp_path / "l.csv", ["x1", "x2", "t"], [[0.1, 0.2, 0], [0.3, 0.4, 5]])
    code, _, err = run(capsys, "evaluate", moons_model, labels)
    assert_one_line_error(code, err, "labels '5' are not among the model's classes")
    truncated = tmp_path / "truncated.st"
    truncated.write_bytes(moons_model.read_bytes()[:100])
    code, _, err = run(capsys, "predict", truncated, "moons", "--out", tmp_path / "p.csv")
    assert_one_line_error(code, err, "truncated.st is not a twolayer model file")
    assert not (tmp_path / "p.csv").exists()
    code, _, err = run(capsys, "predict", moons_model, "moons", "--out", tmp_path / "none" / "p.csv")
    assert_one_line_error(code, err, "does not exist")


def test_planted_payloads_never_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "payload-ran"
    evil_model = tmp_path / "model.safetensors"
    evil_model.write_bytes(pickle.dumps({"W1": Payload(marker)}))
    code, _, err = run(capsys, "evaluate", evil_model, "moons")
    assert_one_line_error(code, err, "pickle")
    evil_data = tmp_path / "data.npz"
    np.savez(evil_data, X=np.array([[Payload(marker)]], dtype=object), y=np.array([0]))
    code, _, err = run(capsys, "train", evil_data, "--out", tmp_path / "m.st")
    assert_one_line_error(code, err, "holds Python objects")
    assert not marker.exists()
    assert not (tmp_path / "m.st").exists()


# --------------------------------------------------------------------------
# Atomic writes through the command
# --------------------------------------------------------------------------


def test_failed_runs_leave_the_old_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, moons_model: Path
) -> None:
    before = moons_model.read_bytes()
    code, _, err = run(capsys, "train", "nothing-like-this", "--out", moons_model)
    assert code == 2
    assert moons_model.read_bytes() == before

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)  # fails after the new bytes are in the temporary file
    code, _, err = run(capsys, "train", "circles", *TINY, "--out", moons_model, "--quiet")
    monkeypatch.undo()
    assert_one_line_error(code, err, "No space left on device", str(moons_model))
    assert moons_model.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moons.st"]
    assert read(moons_model).feature_names == ("x1", "x2")


# --------------------------------------------------------------------------
# Checkpoints, Ctrl-C and resuming
# --------------------------------------------------------------------------


def interrupt_at(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    """Deliver a real SIGINT to this process once the given epoch is displayed."""
    original = Display.update

    def update(self: Display, done: int, loss: float, accuracy: float) -> None:
        original(self, done, loss, accuracy)
        if done == epoch:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(Display, "update", update)


RUN = ["moons", "--epochs", "12", "--hidden", "6", "--batch-size", "64"]


def assert_same_model(a: Path, b: Path) -> None:
    first, second = read(a), read(b)
    for p, q in zip(first.classifier.params_, second.classifier.params_):
        np.testing.assert_array_equal(p, q)
    assert first.loss_curve == second.loss_curve
    assert first.validation_curve == second.validation_curve
    assert first.info is not None and second.info is not None
    assert first.info["test_accuracy"] == second.info["test_accuracy"]


def test_ctrl_c_then_resume_equals_uninterrupted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever handler the test started with (a shell's background job starts with SIGINT ignored).
    handler_before = signal.getsignal(signal.SIGINT)
    code, _, err = run(capsys, "train", *RUN, "--out", tmp_path / "whole.st")
    assert code == 0, err

    interrupt_at(monkeypatch, 5)
    checkpoint = tmp_path / "run.ckpt"
    code, out, err = run(capsys, "train", *RUN, "--out", tmp_path / "resumed.st", "--checkpoint", checkpoint)
    monkeypatch.undo()
    assert code == 130 and out == ""
    assert "interrupted at epoch 5" in err and f"--resume {checkpoint}" in err and "Traceback" not in err
    assert not (tmp_path / "resumed.st").exists()  # no half-trained model
    assert load_checkpoint(checkpoint).epoch == 5
    assert signal.getsignal(signal.SIGINT) is handler_before  # handler restored

    code, _out, err = run(capsys, "train", "--resume", checkpoint)  # --out and the rest come from the checkpoint
    assert code == 0, err
    assert "resuming at epoch 5" in err
    assert_same_model(tmp_path / "whole.st", tmp_path / "resumed.st")
    assert load_checkpoint(checkpoint).epoch == 12


def test_periodic_checkpoint_resumes_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run killed after its epoch-4 checkpoint (a copy of it is kept here)
    # resumes to the result of the run that went on.
    import twolayer.io.modelfile

    checkpoint = tmp_path / "c.ckpt"
    original = twolayer.io.modelfile.save_checkpoint

    def save_and_copy(path: Path, state: twolayer.io.modelfile.Checkpoint) -> None:
        original(path, state)
        if state.epoch == 4:
            shutil.copy(path, tmp_path / "at4.ckpt")

    monkeypatch.setattr(twolayer.io.modelfile, "save_checkpoint", save_and_copy)
    code, _, err = run(
        capsys, "train", *RUN, "--out", tmp_path / "whole.st", "--checkpoint", checkpoint, "--checkpoint-every", "4"
    )
    monkeypatch.undo()
    assert code == 0, err
    code, _, err = run(capsys, "train", "--resume", tmp_path / "at4.ckpt", "--out", tmp_path / "resumed.st")
    assert code == 0, err
    assert_same_model(tmp_path / "whole.st", tmp_path / "resumed.st")


def test_resume_extends_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # --epochs is the total: a finished 5-epoch run resumed to 12 equals a 12-epoch run.
    code, _, err = run(capsys, "train", *RUN, "--out", tmp_path / "whole.st")
    assert code == 0, err
    code, _, err = run(capsys, "train", *RUN, "--epochs", "5", "--checkpoint", tmp_path / "c.ckpt")
    assert code == 0, err
    code, _, err = run(
        capsys, "train", "--resume", tmp_path / "c.ckpt", "--epochs", "12", "--out", tmp_path / "extended.st"
    )
    assert code == 0, err
    assert_same_model(tmp_path / "whole.st", tmp_path / "extended.st")


def test_resume_refuses_changed_settings_and_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkpoint = tmp_path / "c.ckpt"
    code, _, err = run(capsys, "train", *RUN, "--epochs", "2", "--checkpoint", checkpoint)
    assert code == 0, err
    before = checkpoint.read_bytes()
    code, _, err = run(capsys, "train", "--resume", checkpoint, "--hidden", "7")
    assert checkpoint.read_bytes() == before
    assert_one_line_error(code, err, "--hidden 7 differs from the checkpoint's 6")
    code, _, err = run(capsys, "train", "circles", "--resume", checkpoint)
    assert_one_line_error(code, err, "circles is not the data the checkpoint")
    code, _, err = run(capsys, "train", "--resume", checkpoint, "--out", tmp_path / "m.st")
    assert code == 0, err  # 2 epochs of 2 done: nothing to train, the model is written
    assert "nothing left to train" in err and read(tmp_path / "m.st").info["epochs"] == 2
    assert load_checkpoint(checkpoint).epoch == 2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_resume_refuses_a_foreign_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A valid checkpoint file, but not one of `twolayer train`: no record of the run.
    from twolayer.classifier import TwoLayerClassifier
    from twolayer.io.modelfile import Checkpoint, save_checkpoint

    data = load_builtin("moons")
    model = TwoLayerClassifier(n_hidden=2, max_iter=1).fit(data.X, data.y)
    path = tmp_path / "other.ckpt"
    save_checkpoint(
        path,
        Checkpoint(
            state=model.get_training_state(),
            hyperparameters=model.get_params(),
            scaler_mean=None,
            scaler_scale=None,
            train_index=np.arange(300),
            test_index=np.arange(300, 400),
            epoch=1,
            run={"source": "moons"},
        ),
    )
    code, _, err = run(capsys, "train", "--resume", path, "--out", tmp_path / "m.st")
    assert_one_line_error(code, err, "not a checkpoint of 'twolayer train'")
    assert not (tmp_path / "m.st").exists()


def test_ctrl_c_without_checkpoint_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_at(monkeypatch, 2)
    code, _, err = run(capsys, "train", *RUN, "--out", tmp_path / "m.st")
    assert code == 130 and "nothing written" in err
    assert list(tmp_path.iterdir()) == []


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    src = str(Path(twolayer.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.slow  # a fresh interpreter
def test_real_process_train_and_predict(tmp_path: Path) -> None:
    model_path = tmp_path / "m.st"
    trained = subprocess.run(
        [sys.executable, "-m", "twolayer", "train", "iris", *TINY, "--out", model_path],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        check=False,
    )
    assert trained.returncode == 0, trained.stderr
    assert "test accuracy" in trained.stdout and "epoch 3/3" in trained.stderr
    predicted = subprocess.run(
        [sys.executable, "-m", "twolayer", "predict", model_path, "iris"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        check=False,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert predictions_csv(predicted.stdout)[0].keys() == {"prediction"}
    failed = subprocess.run(
        [sys.executable, "-m", "twolayer", "evaluate", model_path, "irs"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        check=False,
    )
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and "did you mean 'iris'" in failed.stderr


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------


def assert_png(path: Path) -> tuple[int, ...]:
    import matplotlib.image

    assert path.read_bytes().startswith(PNG_SIGNATURE)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.std() > 0
    return image.shape


def test_plots_are_valid_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str], moons_model: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra")
    code, _, err = run(capsys, "train", "iris", *TINY, "--plot", tmp_path / "iris.png")
    assert code == 0, err
    two_panels = assert_png(tmp_path / "iris.png")
    code, out, err = run(capsys, "plot", moons_model, "moons", "--out", tmp_path / "regions.png")
    assert code == 0, err
    assert out == f"wrote plot {tmp_path / 'regions.png'}\n"
    three_panels = assert_png(tmp_path / "regions.png")
    assert three_panels[1] > two_panels[1]  # the decision regions add a panel
    code, _out, err = run(capsys, "plot", moons_model, "--out", tmp_path / "stored.png")
    assert code == 0, err
    assert assert_png(tmp_path / "stored.png")[1] == two_panels[1]  # curves + the stored confusion matrix
    code, _, err = run(capsys, "plot", moons_model, "--out", tmp_path / "no" / "x.png")
    assert_one_line_error(code, err, "does not exist")


@pytest.mark.parametrize("bayes", [False, True])
def test_a_plot_that_cannot_be_written_leaves_the_old_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, bayes: bool
) -> None:
    # The model and the plot are staged in full before either replaces its old file.
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra")
    from twolayer.errors import DataError
    from twolayer.io import atomic

    model, plot = tmp_path / "m.safetensors", tmp_path / "m.png"
    extra = ["--bayes"] if bayes else []
    code, _, err = run(capsys, "train", "iris", *TINY, *extra, "--out", model, "--plot", plot)
    assert code == 0, err
    before = (model.read_bytes(), plot.read_bytes())
    stage = atomic._stage

    def disk_full_for_pngs(target: Path, data: bytes) -> Path:
        if target.suffix == ".png":
            raise DataError(f"cannot write {target}: No space left on device")
        return stage(target, data)

    monkeypatch.setattr(atomic, "_stage", disk_full_for_pngs)
    code, _, err = run(capsys, "train", "iris", *TINY, *extra, "--seed", "7", "--quiet", "--out", model, "--plot", plot)
    assert_one_line_error(code, err, "m.png", "No space left on device")
    assert (model.read_bytes(), plot.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png", "m.safetensors"]


# --------------------------------------------------------------------------
# gradcheck, derive, datasets, help
# --------------------------------------------------------------------------


def test_gradcheck_passes_and_fails(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, "gradcheck", "--features", "3", "--hidden", "4", "--classes", "3", "--samples", "5")
    assert code == 0
    assert "PASSED" in out and "W1" in out and "b2" in out
    correct = network.gradient

    def wrong(*args: object, **kwargs: object) -> network.Params:
        g = correct(*args, **kwargs)  # type: ignore[arg-type]
        return network.Params(g.W1, g.b1, g.W2 * 1.001, g.b2)

    monkeypatch.setattr(network, "gradient", wrong)
    code, out, _ = run(capsys, "gradcheck", "--features", "3", "--hidden", "4", "--classes", "3", "--samples", "5")
    assert code == 1 and "FAILED" in out and "W2[" in out


def test_derive(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sympy", reason="sympy is the optional 'derive' extra")
    code, out, _ = run(capsys, "derive", "--classes", "2")
    assert code == 0, out
    assert "PASSED" in out and "softmax derivative" in out and "fails, as it should" in out
    import twolayer.teaching.derivation

    def broken(**kwargs: object) -> list[twolayer.teaching.derivation.Step]:
        return [twolayer.teaching.derivation.Step("a step", "x = y", holds=False, detail="counterexample x=1, y=2")]

    monkeypatch.setattr(twolayer.teaching.derivation, "verify_derivation", broken)
    code, out, _ = run(capsys, "derive")
    assert code == 1 and "FAIL" in out and "counterexample x=1, y=2" in out


def test_datasets_lists_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "datasets")
    assert code == 0
    for name in BUILTINS:
        data = load_builtin(name)
        assert re.search(rf"{name}\s*│\s*{data.n_samples}\s*│\s*{data.n_features}\s*│", out), name


@pytest.mark.parametrize("command", [c.name for c in cli.COMMANDS])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and f"usage: twolayer {command}" in out


def test_no_command_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert_one_line_error(code, err, "choose a command")
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"twolayer {twolayer.__version__}"


# --------------------------------------------------------------------------
# Progress display
# --------------------------------------------------------------------------


def test_plain_progress_lines_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "iris", "--epochs", "40", "--hidden", "3")
    assert code == 0
    epochs = [int(m) for m in re.findall(r"^epoch\s+(\d+)/40", err, flags=re.MULTILINE)]
    assert epochs == [1, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    code, out, err = run(capsys, "train", "iris", "--epochs", "2", "--hidden", "3", "--quiet")
    assert code == 0 and out == "" and err == ""


def test_plain_progress_ends_with_the_last_epoch() -> None:
    # Training that converges between two progress lines still shows where it stopped.
    stream = io.StringIO()
    with Display(100, 0, quiet=False, stream=stream) as display:
        for epoch in range(1, 38):
            display.update(epoch, 1.0, 0.5)
    shown = [int(m) for m in re.findall(r"^epoch\s+(\d+)/100", stream.getvalue(), flags=re.MULTILINE)]
    assert shown == [1, 10, 20, 30, 37]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    stream = FakeTerminal()
    with Display(20, 0, quiet=False, stream=stream) as display:
        for epoch in range(1, 21):
            display.update(epoch, 1.0 / epoch, 0.5)
    shown = stream.getvalue()
    assert "20/20" in shown and "loss 0.05" in shown and "held-out acc 0.5000" in shown


# --------------------------------------------------------------------------
# twolayer curvature
# --------------------------------------------------------------------------


def table_row(output: str, label: str) -> list[str]:
    """The cells after the label in the rich table row that starts with ``label``."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃").split("│")]
        if len(cells) > 1 and cells[0] == label:
            return cells[1:]
    raise AssertionError(f"no row {label!r} in\n{output}")


def ordinal(n: int, word: str) -> str:
    return word if n == 1 else f"{n}{ {2: 'nd', 3: 'rd'}.get(n, 'th') } {word}"


def assert_printed(printed: str, exact: float, scale: float, what: str) -> None:
    # Six significant digits are printed.
    assert abs(float(printed) - exact) <= 5e-6 * abs(exact) + 1e-12 * scale, f"{what}: printed {printed}, exact {exact}"


CURVATURE_CASES = [
    # (full spectrum?, extra train options): the full path with the defaults;
    # Lanczos alone on class-weighted patterns without weight decay.
    pytest.param(True, [], id="full-spectrum"),
    pytest.param(False, ["--class-weight", "balanced", "--alpha", "0"], id="lanczos-weighted-alpha0"),
]


@pytest.mark.parametrize(("full", "options"), CURVATURE_CASES)
def test_curvature_equals_numpy_eigenvalues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, full: bool, options: list[str]
) -> None:
    from twolayer import curvature

    # Unequal classes, so that balanced class weights differ from one.
    moons = load_builtin("moons")
    keep = np.flatnonzero((moons.y == 0) | (np.arange(moons.n_samples) % 3 == 0))
    np.savez(tmp_path / "uneven.npz", X=moons.X[keep], y=moons.y[keep])
    data_path = tmp_path / "uneven.npz"
    model_path = tmp_path / "m.st"
    code, _, err = run(capsys, "train", data_path, *TINY, "--dtype", "float64", *options, "--out", model_path)
    assert code == 0, err
    if not full:
        monkeypatch.setattr(spectrum, "FULL_SPECTRUM_MAX_PARAMS", 0)
    k = 4
    code, out, err = run(capsys, "curvature", model_path, data_path, "--k", k)
    assert code == 0, err
    assert ("full (numpy.linalg.eigvalsh)" in out) == full

    # The same matrices built explicitly, from the file's weights and scaler.
    file = read(model_path)
    classifier = file.classifier
    scaler = file.model[0]
    X = (moons.X[keep] - scaler.mean_) / scaler.scale_
    y = moons.y[keep]
    T = np.eye(2)[y]
    weights = None
    if "balanced" in options:
        weights = (y.size / (2 * np.bincount(y)))[y]
    params = network.Params(*(np.asarray(p, dtype=np.float64) for p in classifier.params_))
    D, M, K = 2, 4, 2
    W = network.n_params(D, M, K)
    # The directions along which the error is flat: a common shift of b2, and
    # without weight decay also of each row of W2.
    flat = [np.concatenate([np.zeros(W - K), np.ones(K) / np.sqrt(K)])]
    if classifier.alpha == 0:
        for j in range(M):
            W2 = np.zeros((M, K))
            W2[j] = 1 / np.sqrt(K)
            flat.append(network.flatten(network.Params(np.zeros((D, M)), np.zeros(M), W2, np.zeros(K))))
    for column, build in enumerate((curvature.hessian, curvature.gauss_newton)):
        A = build(params, X, T, weights, activation=classifier.activation, alpha=classifier.alpha)
        eigenvalues = np.linalg.eigvalsh(A)
        scale = np.max(np.abs(eigenvalues))
        for v in flat:
            assert np.linalg.norm(A @ v) <= 1e-10 * scale
        rest = np.delete(eigenvalues, np.argsort(np.abs(eigenvalues))[: len(flat)])
        for i in range(k):
            assert_printed(table_row(out, ordinal(i + 1, "largest"))[column], rest[-1 - i], scale, f"largest {i + 1}")
            assert_printed(table_row(out, ordinal(i + 1, "smallest"))[column], rest[i], scale, f"smallest {i + 1}")
        negative = int(np.sum(eigenvalues < -1e-9 * scale))
        printed = table_row(out, "negative")[column]
        if full:
            assert printed == f"{negative} of {W}"
        elif negative < k:
            assert printed.startswith(f"{negative} (estimated")
        else:
            assert printed.startswith(f"at least {k}")
        condition = table_row(out, "condition number")[column]
        if rest[0] < 0:
            assert condition == "none: indefinite"
        else:
            assert float(condition) == pytest.approx(rest[-1] / rest[0], rel=1e-3)
    assert f"{len(flat)} direction" in out


def test_curvature_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, moons_model: Path
) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra")
    code, out, err = run(capsys, "curvature", moons_model, "moons", "--k", "3", "--plot", tmp_path / "full.png")
    assert code == 0, err
    assert f"wrote plot {tmp_path / 'full.png'}" in out
    histograms = assert_png(tmp_path / "full.png")
    monkeypatch.setattr(spectrum, "FULL_SPECTRUM_MAX_PARAMS", 0)
    code, out, err = run(capsys, "curvature", moons_model, "moons", "--k", "3", "--plot", tmp_path / "ends.png")
    assert code == 0, err
    assert "Lanczos values only" in out
    assert assert_png(tmp_path / "ends.png")[:2] != histograms[:2]  # one panel of marks, not two histograms


def test_bad_curvature_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], moons_model: Path) -> None:
    code, _, err = run(capsys, "curvature", moons_model, "moons", "--k", "30")
    assert_one_line_error(code, err, "--k 30", "22 parameters", "at most 16")
    code, _, err = run(capsys, "curvature", moons_model, "moons", "--k", "0")
    assert_one_line_error(code, err, "argument --k: expected a positive integer")
    code, _, err = run(capsys, "curvature", moons_model)
    assert code == 2 and "DATA" in err
    code, _, err = run(capsys, "curvature", moons_model, "iris")
    assert_one_line_error(code, err, "missing columns 'x1', 'x2'")
    code, _, err = run(capsys, "curvature", tmp_path / "none.st", "moons")
    assert_one_line_error(code, err, "no such file")
    np.savez(tmp_path / "unlabelled.npz", X=load_builtin("moons").X)
    code, _, err = run(capsys, "curvature", moons_model, tmp_path / "unlabelled.npz")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    code, out, err = run(capsys, "curvature", moons_model, "moons", "--plot", tmp_path / "no" / "s.png")
    assert_one_line_error(code, err, "--plot", "does not exist")
    assert out == ""


# --------------------------------------------------------------------------
# The second-order solvers
# --------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["trust-ncg", "newton-cg", "scg"])
def test_second_order_solvers_train_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str], solver: str) -> None:
    argv = ["train", "moons", "--hidden", "4", "--solver", solver, "--dtype", "float64"]
    code, out, err = run(capsys, *argv, "--epochs", "4", "--out", tmp_path / "whole.st")
    assert code == 0, err
    assert f"{solver}, 4 iterations" in out or (f"{solver}, " in out and "iterations (converged" in out)
    assert re.search(r"^iteration\s+1/4", err, flags=re.MULTILINE)
    whole = read(tmp_path / "whole.st")
    assert whole.hyperparameters["solver"] == solver
    # The loss decreases from the first iteration to the last.
    assert whole.loss_curve[-1] < whole.loss_curve[0]

    code, _, err = run(capsys, *argv, "--epochs", "2", "--checkpoint", tmp_path / "c.ckpt", "--quiet")
    assert code == 0, err
    code, _, err = run(
        capsys, "train", "--resume", tmp_path / "c.ckpt", "--epochs", "4", "--out", tmp_path / "resumed.st"
    )
    assert code == 0, err
    assert f"note: {solver} cannot be resumed exactly" in err and "fresh solver state" in err
    resumed = read(tmp_path / "resumed.st")
    assert resumed.loss_curve[:2] == whole.loss_curve[:2]  # the same first two iterations, then a fresh start
    assert len(resumed.loss_curve) <= 4 and resumed.loss_curve[-1] <= resumed.loss_curve[1]


# --------------------------------------------------------------------------
# Bayesian networks and calibration
# --------------------------------------------------------------------------


def brute_force_ece(y_index: np.ndarray, proba: np.ndarray, n_bins: int) -> float:
    """Top-label ECE, one bin at a time: bin b holds confidences in (b/B, (b+1)/B], bin 0 also 0."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y_index
    total = 0.0
    for b in range(n_bins):
        low, high = b / n_bins, (b + 1) / n_bins
        members = [n for n in range(len(confidence)) if low < confidence[n] <= high or (b == 0 and confidence[n] == 0)]
        if members:
            gap = np.mean(correct[members]) - np.mean(confidence[members])
            total += len(members) / len(confidence) * abs(gap)
    return total


BAYES_TINY = ["--bayes", "--hidden", "3", "--max-cycles", "2", "--mc-samples", "200", "--restarts", "1"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_train_bayes_evaluate_predict_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra")
    model_path = tmp_path / "bayes.st"
    code, out, err = run(capsys, "train", "moons", *BAYES_TINY, "--out", model_path, "--plot", tmp_path / "t.png")
    assert code == 0, err
    assert "training a Bayesian network on moons" in err and "fixed point" in err
    file = read(model_path)
    model = file.model
    network = file.classifier
    assert file.bayesian and file.format_version == 2 and file.dtype == "float64"
    assert network.n_hidden == 3 and network.max_cycles == 2 and network.n_samples == 200
    # --restarts 1: each cycle trained from its warm start and one fresh start.
    assert network.n_restarts == 1 and all(e.shape == (2,) for e in network.restart_evidence_)
    # The summary reports the fitted evidence quantities of the stored model.
    # The default last-layer posterior: the output layer's two precisions chosen, the hidden layer's kept.
    alphas = ", ".join(f"{g} {a:.4g}" for g, a in zip(("W1", "b1", "W2", "b2"), network.alpha_))
    assert alphas in " ".join(out.split()) and network.alpha_[0] == 1.0 != network.alpha_[2]
    assert table_value(out, "gamma") == f"{network.gamma_:.4g}"
    assert table_value(out, "log evidence") == f"{network.log_evidence_:.6g}"
    assert file.info is not None and file.info["alpha"] == network.alpha_.tolist()
    # Held-out figures against the split and the ECE recomputed here.
    data = load_builtin("moons")
    _, test = train_test_split(np.arange(data.n_samples), test_size=0.2, stratify=data.y, random_state=0)
    proba = model.predict_proba(data.X[test])
    accuracy = float(np.mean(data.y[test] == np.argmax(proba, axis=1)))
    assert table_value(out, "test accuracy") == f"{accuracy:.4f}"
    assert table_value(out, "test ECE") == f"{brute_force_ece(data.y[test], proba, 15):.4f}"
    scaled_test = model[0].transform(data.X[test])
    map_ece = brute_force_ece(data.y[test], network.predict_proba_map(scaled_test), 15)
    assert f"(MAP network {map_ece:.4f}), 15 bins" in out
    four_panels = assert_png(tmp_path / "t.png")

    # evaluate: the calibration of the moderated and the MAP probabilities, and a reliability diagram.
    code, out, err = run(capsys, "evaluate", model_path, "moons", "--bins", "7", "--plot", tmp_path / "r.png")
    assert code == 0, err
    moderated, at_map = model.predict_proba(data.X), network.predict_proba_map(model[0].transform(data.X))
    ece = table_row(out, "expected calibration error")
    assert ece == [f"{brute_force_ece(data.y, moderated, 7):.4f}", f"{brute_force_ece(data.y, at_map, 7):.4f}"]
    brier = np.mean(np.sum((moderated - np.eye(2)[data.y]) ** 2, axis=1))
    assert table_row(out, "Brier score")[0] == f"{brier:.4f}"
    assert "moderated" in out and "MAP network" in out and f"wrote plot {tmp_path / 'r.png'}" in out
    assert_png(tmp_path / "r.png")

    # predict: the moderated probabilities.
    code, out, err = run(capsys, "predict", model_path, "moons", "--proba")
    assert code == 0, err
    got = np.array([[float(r["proba_0"]), float(r["proba_1"])] for r in predictions_csv(out)])
    np.testing.assert_allclose(got, moderated, rtol=1e-5, atol=1e-12)

    # plot: for two features, the MAP and the moderated contours side by side.
    code, _, err = run(capsys, "plot", model_path, "moons", "--out", tmp_path / "c.png")
    assert code == 0, err
    assert assert_png(tmp_path / "c.png")[1] == four_panels[1]  # curves, matrix, MAP, moderated


def test_evaluate_reports_calibration(tmp_path: Path, capsys: pytest.CaptureFixture[str], moons_model: Path) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra")
    code, out, err = run(capsys, "evaluate", moons_model, "moons", "--plot", tmp_path / "r.png")
    assert code == 0, err
    data = load_builtin("moons")
    proba = load(moons_model).predict_proba(data.X)
    assert table_row(out, "expected calibration error") == [f"{brute_force_ece(data.y, proba, 15):.4f}"]
    assert "Calibration (15 bins" in out and "MAP network" not in out
    assert_png(tmp_path / "r.png")
    code, out, err = run(capsys, "evaluate", moons_model, "moons", "--plot", tmp_path / "no" / "r.png")
    assert_one_line_error(code, err, "--plot", "does not exist")
    assert out == ""
    code, _, err = run(capsys, "evaluate", moons_model, "moons", "--bins", "0")
    assert_one_line_error(code, err, "argument --bins")
    # The held-out rows alone: the summary's test accuracy again.
    code, out, err = run(capsys, "evaluate", moons_model, "moons", "--rows", "test")
    assert code == 0, err
    assert "the test rows (80 samples)" in out
    assert table_value(out, "accuracy") == f"{read(moons_model).info['test_accuracy']:.4f}"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_curvature_of_a_bayesian_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from twolayer import curvature

    model_path = tmp_path / "bayes.st"
    code, _, err = run(capsys, "train", "moons", *BAYES_TINY, "--per-group", "--no-scale", "--out", model_path)
    assert code == 0, err
    code, out, err = run(capsys, "curvature", model_path, "moons", "--k", "3")
    assert code == 0, err
    network = read(model_path).classifier
    data = load_builtin("moons")
    params = network.params_
    # The prior's Hessian: each group's precision on its parameters, biases included.
    decay = np.concatenate([np.full(p.size, a) for p, a in zip(params, network.alpha_)])
    assert "none: the prior penalises every parameter" in out
    for column, build in enumerate((curvature.hessian, curvature.gauss_newton)):
        eigenvalues = np.linalg.eigvalsh(build(params, data.X, np.eye(2)[data.y]) + np.diag(decay))
        scale = np.max(np.abs(eigenvalues))
        for i in range(3):
            assert_printed(table_row(out, ordinal(i + 1, "largest"))[column], eigenvalues[-1 - i], scale, "largest")
            assert_printed(table_row(out, ordinal(i + 1, "smallest"))[column], eigenvalues[i], scale, "smallest")


BAD_BAYES = [
    (["--solver", "adam"], "--solver does not apply to --bayes"),
    (["--dtype", "float32"], "--dtype float32 does not apply to --bayes"),
    (["--checkpoint", "c.ckpt"], "--checkpoint does not apply to --bayes"),
    (["--class-weight", "balanced"], "--class-weight does not apply to --bayes"),
    (["--alpha", "0"], "--alpha must be positive with --bayes"),
    (["--per-group", "--alpha-search", "grid"], "--per-group needs --alpha-search fixed_point"),
    (["--structure", "wide"], "argument --structure: invalid choice"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD_BAYES, ids=[b[1][:30] for b in BAD_BAYES])
def test_bad_bayes_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    code, out, err = run(capsys, "train", "moons", "--bayes", *argv, "--out", tmp_path / "m.st")
    assert_one_line_error(code, err, expected)
    assert out == "" and list(tmp_path.iterdir()) == []


def test_bayes_options_need_bayes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "moons", "--structure", "diagonal", "--out", tmp_path / "m.st")
    assert_one_line_error(code, err, "--structure applies to a Bayesian network: add --bayes")
    assert list(tmp_path.iterdir()) == []


def test_curvature_on_the_training_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str], moons_model: Path) -> None:
    from twolayer import curvature

    code, out, err = run(capsys, "curvature", moons_model, "moons", "--k", "2", "--rows", "train")
    assert code == 0, err
    assert "the train rows (320 samples)" in out
    # The training rows recomputed independently, as the summary test does.
    data = load_builtin("moons")
    train, _ = train_test_split(np.arange(data.n_samples), test_size=0.2, stratify=data.y, random_state=0)
    file = read(moons_model)
    X = file.model[0].transform(data.X[train])
    params = network.Params(*(np.asarray(p, dtype=np.float64) for p in file.classifier.params_))
    H = curvature.hessian(params, X, np.eye(2)[data.y[train]], alpha=file.classifier.alpha)
    eigenvalues = np.linalg.eigvalsh(H)
    scale = np.max(np.abs(eigenvalues))
    assert_printed(table_row(out, "largest")[0], eigenvalues[-1], scale, "largest")
    code, out, _ = run(capsys, "curvature", moons_model, "moons", "--k", "2", "--rows", "test")
    assert code == 0 and "the test rows (80 samples)" in out

    code, _, err = run(capsys, "curvature", moons_model, "circles", "--rows", "train")
    assert_one_line_error(code, err, "--rows train: circles is not the data")
    from twolayer.io.modelfile import save

    save(file.model, tmp_path / "bare.st")  # through the Python API: no record of a split
    code, _, err = run(capsys, "curvature", tmp_path / "bare.st", "moons", "--rows", "test")
    assert_one_line_error(code, err, "does not record its train/test split")


@pytest.mark.slow  # a fresh interpreter
def test_the_train_parser_loads_neither_scipy_nor_scikit_learn() -> None:
    # `twolayer train --help` answers at once: its choices come from modules that import nothing heavy.
    code = (
        "import argparse, sys; from twolayer.cli.train_options import add_train_arguments; "
        "add_train_arguments(argparse.ArgumentParser()); "
        "print(sorted(m for m in ('scipy', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]", done.stdout


def test_the_bayes_package_still_exports_every_name() -> None:
    import twolayer.bayes as bayes

    for name in bayes.__all__:  # each is the object of the module that defines it
        assert getattr(bayes, name) is getattr(importlib.import_module(bayes._LAZY[name]), name), name
    assert sorted(bayes.__all__) == sorted(bayes._LAZY)


@pytest.mark.parametrize(
    ("options", "per_group"),
    [([], True), (["--no-per-group"], False), (["--structure", "full"], False)],
)
def test_per_group_follows_the_posterior_unless_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], per_group: bool
) -> None:
    code, _, err = run(capsys, "train", "moons", *BAYES_TINY, *options, "--quiet", "--out", tmp_path / "m.st")
    assert code == 0, err
    network = read(tmp_path / "m.st").classifier
    assert network.per_group == ("auto" if "--no-per-group" not in options else False)
    output_alphas = network.alpha_[2:]
    assert bool(output_alphas[0] != output_alphas[1]) == per_group  # W2 and b2 re-estimated apart, or tied
