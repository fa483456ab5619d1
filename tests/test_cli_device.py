"""``twolayer train --device`` (issue 18): the network trained on a PyTorch device, the rest of the run on the host.

PyTorch's CPU device stands for a GPU here (the code path is the same); the reference is the same
command without ``--device``, whose NumPy loop shares none of the device's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from test_cli import BAYES_TINY, RUN, assert_one_line_error, assert_same_model, run
from twolayer.io.modelfile import load_checkpoint, read

TRAINING = ("digits", "--epochs", "3", "--dtype", "float64", "--seed", "1")


def test_a_run_on_the_cpu_device_trains_the_host_network(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    on_device, on_host = tmp_path / "device.st", tmp_path / "host.st"
    code, out, err = run(capsys, "train", *TRAINING, "--device", "cpu", "--out", on_device)
    assert code == 0, err
    assert "held-out accuracy" in err  # the progress line's accuracy, from the weights brought back each epoch
    assert f"wrote model {on_device}" in out
    code, _, err = run(capsys, "train", *TRAINING, "--quiet", "--out", on_host)
    assert code == 0, err
    device_file, host_file = read(str(on_device)), read(str(on_host))
    for p, q in zip(device_file.classifier.params_, host_file.classifier.params_):
        assert isinstance(p, np.ndarray)
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-12)  # the same sums, added in another order
    assert device_file.info is not None and host_file.info is not None
    assert device_file.info["test_accuracy"] == host_file.info["test_accuracy"]


def test_a_validation_file_stops_the_device_run_where_it_stops_the_host_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] + X[:, 1] ** 2 + 0.5 * rng.normal(size=400) > 1).astype(int)
    for name, rows in (("train.csv", slice(0, 300)), ("valid.csv", slice(300, 400))):
        lines = ["a,b,c,d,label", *(",".join([*map(repr, x), str(t)]) for x, t in zip(X[rows], y[rows]))]
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    common = (tmp_path / "train.csv", "--validation", tmp_path / "valid.csv", "--epochs", "200", "--dtype", "float64")
    common = (*common, "--seed", "3", "--n-iter-no-change", "3", "--quiet")
    on_device, on_host = tmp_path / "device.st", tmp_path / "host.st"
    code, _, err = run(capsys, "train", *common, "--device", "cpu", "--out", on_device)
    assert code == 0, err
    code, _, err = run(capsys, "train", *common, "--out", on_host)
    assert code == 0, err
    device_file, host_file = read(str(on_device)), read(str(on_host))
    device_model, host_model = device_file.classifier, host_file.classifier
    assert device_model.n_iter_ == host_model.n_iter_ < 200  # early stopping ended both runs, at the same epoch
    np.testing.assert_allclose(device_model.validation_scores_, host_model.validation_scores_, atol=1e-12)
    for p, q in zip(device_model.params_, host_model.params_):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)  # the best epoch's weights, kept on both


def test_a_device_checkpoint_resumes_exactly_on_the_device_and_closely_on_the_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The epoch-4 checkpoint of a device run (a copy of it is kept here) holds the weights and Adam's
    # moments of epoch 4, brought from the device for it: resumed on the device it gives the run that
    # went on, bit for bit; resumed on the host (NumPy's sums, in another order), the same to rounding.
    pytest.importorskip("torch")
    import shutil

    import twolayer.io.modelfile

    checkpoint = tmp_path / "c.ckpt"
    original = twolayer.io.modelfile.save_checkpoint
    epochs: list[int] = []

    def save_and_copy(path: Path, state: twolayer.io.modelfile.Checkpoint) -> None:
        original(path, state)
        epochs.append(state.epoch)
        if state.epoch == 4:
            shutil.copy(path, tmp_path / "at4.ckpt")

    monkeypatch.setattr(twolayer.io.modelfile, "save_checkpoint", save_and_copy)
    device = ("--device", "cpu", "--dtype", "float64", "--quiet")
    code, _, err = run(
        capsys, "train", *RUN, *device, "--out", tmp_path / "whole.st", "--checkpoint", checkpoint,
        "--checkpoint-every", "4",
    )  # fmt: skip
    monkeypatch.undo()
    assert code == 0, err
    assert sorted(set(epochs)) == [4, 8, 12]  # every fourth epoch, and the end
    at4 = load_checkpoint(tmp_path / "at4.ckpt")
    assert at4.epoch == 4 and at4.state["n_iter"] == 4
    assert np.any(at4.state["adam_m"] != 0)  # the optimiser's moments of epoch 4, not those at the start
    code, _, err = run(capsys, "train", "--resume", tmp_path / "at4.ckpt", *device, "--out", tmp_path / "resumed.st")
    assert code == 0, err
    assert_same_model(tmp_path / "whole.st", tmp_path / "resumed.st")
    code, _, err = run(capsys, "train", "--resume", tmp_path / "at4.ckpt", "--quiet", "--out", tmp_path / "host.st")
    assert code == 0, err
    for p, q in zip(read(tmp_path / "whole.st").classifier.params_, read(tmp_path / "host.st").classifier.params_):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)


def test_a_device_checkpoint_written_on_ctrl_c_holds_the_epoch_it_stopped_at(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from test_cli import interrupt_at

    device = ("--device", "cpu", "--dtype", "float64")
    code, _, err = run(capsys, "train", *RUN, *device, "--quiet", "--out", tmp_path / "whole.st")
    assert code == 0, err
    interrupt_at(monkeypatch, 5)
    checkpoint = tmp_path / "run.ckpt"
    code, out, err = run(capsys, "train", *RUN, *device, "--out", tmp_path / "resumed.st", "--checkpoint", checkpoint)
    monkeypatch.undo()
    assert code == 130 and out == "" and "interrupted at epoch 5" in err
    assert load_checkpoint(checkpoint).epoch == 5
    code, _, err = run(capsys, "train", "--resume", checkpoint, *device, "--quiet")
    assert code == 0, err
    assert_same_model(tmp_path / "whole.st", tmp_path / "resumed.st")


def test_a_bayesian_network_on_the_cpu_device_is_the_host_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    on_device, on_host = tmp_path / "device.st", tmp_path / "host.st"
    # MAP fits to convergence; the probit predictive, smooth in the posterior (Monte Carlo draws through
    # an eigendecomposition may turn with a change in the 8th digit: tests/test_bayes_on_device.py has those).
    common = ("moons", *BAYES_TINY, "--seed", "2", "--tol", "1e-10", "--predictive", "probit", "--quiet")
    code, _, err = run(capsys, "train", *common, "--device", "cpu", "--out", on_device)
    assert code == 0, err
    code, _, err = run(capsys, "train", *common, "--out", on_host)
    assert code == 0, err
    device_file, host_file = read(str(on_device)), read(str(on_host))
    assert device_file.bayesian and host_file.bayesian
    device_model, host_model = device_file.classifier, host_file.classifier
    np.testing.assert_allclose(device_model.log_evidence_, host_model.log_evidence_, rtol=1e-8)
    np.testing.assert_allclose(device_model.alpha_, host_model.alpha_, rtol=1e-6)
    for p, q in zip(device_model.params_, host_model.params_):
        assert isinstance(p, np.ndarray)
        # L-BFGS stops where the gradient is below --tol; sums in another order stop it a step apart.
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-6)
    X = np.random.default_rng(0).normal(size=(50, 2))
    np.testing.assert_allclose(device_model.predict_proba(X), host_model.predict_proba(X), rtol=0, atol=1e-6)
    assert device_file.info is not None and host_file.info is not None
    assert device_file.info["test_log_loss"] == pytest.approx(host_file.info["test_log_loss"], abs=1e-6)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--device", "cuda:99"], "--device cuda:99: no such device"),
        (["--device", "tpu"], "--device tpu: expected cpu or cuda[:N]"),
        (["--device", "cpu", "--dask", "local:2"], "--dask does not apply with --device"),
    ],
)
def test_a_device_that_cannot_be_used_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str], options: list[str], expected: str
) -> None:
    pytest.importorskip("torch")
    code, _, err = run(capsys, "train", "digits", *options)
    assert_one_line_error(code, err, expected)


def test_without_scipys_array_api_it_says_how_to_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCIPY_ARRAY_API")
    code, _, err = run(capsys, "train", "digits", "--device", "cpu")
    assert_one_line_error(code, err, "--device needs SCIPY_ARRAY_API=1", "SCIPY_ARRAY_API=1 twolayer train")


def test_a_whole_batch_checkpoint_on_the_device_holds_its_iterate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # L-BFGS on the device: the epoch-4 checkpoint holds iteration 4's weights, as the host's does.
    pytest.importorskip("torch")
    import twolayer.io.modelfile

    original = twolayer.io.modelfile.save_checkpoint
    thetas: dict[str, np.ndarray] = {}

    def keep_epoch_4(where: str) -> Any:
        def save(path: Path, state: twolayer.io.modelfile.Checkpoint) -> None:
            original(path, state)
            if state.epoch == 4:
                thetas[where] = np.array(state.state["theta"])

        return save

    common = ("moons", "--solver", "lbfgs", "--hidden", "5", "--epochs", "8", "--seed", "1", "--dtype", "float64")
    common = (*common, "--checkpoint-every", "4", "--quiet")
    for where, extra in (("host", ()), ("device", ("--device", "cpu"))):
        monkeypatch.setattr(twolayer.io.modelfile, "save_checkpoint", keep_epoch_4(where))
        code, _, err = run(capsys, "train", *common, *extra, "--checkpoint", tmp_path / f"{where}.ckpt")
        assert code == 0, err
    np.testing.assert_allclose(thetas["device"], thetas["host"], rtol=0, atol=1e-8)
