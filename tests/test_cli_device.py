"""``twolayer train --device`` (issue 18): the network trained on a PyTorch device, the rest of the run on the host.

PyTorch's CPU device stands for a GPU here (the code path is the same); the reference is the same
command without ``--device``, whose NumPy loop shares none of the device's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from test_cli import assert_one_line_error, run
from twolayer.io.modelfile import read

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


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--device", "cuda:99"], "--device cuda:99: no such device"),
        (["--device", "tpu"], "--device tpu: expected cpu or cuda[:N]"),
        (["--device", "cpu", "--bayes"], "--bayes does not apply with --device"),
        (["--device", "cpu", "--checkpoint", "c.ckpt"], "--checkpoint does not apply with --device"),
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
