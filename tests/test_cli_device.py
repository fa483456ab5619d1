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
