"""Tests of :mod:`twolayer.io.paths`: what a command may write, checked before any work."""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np
import pytest

from twolayer.errors import DataError
from twolayer.io.checkpoints import Checkpoint, save_checkpoint
from twolayer.io.paths import FIGURE_SUFFIXES, PathArg, check_fresh_checkpoint, check_outputs, figure_format


def refused(
    *expected: str,
    inputs: Mapping[str, PathArg],
    outputs: Mapping[str, PathArg],
    figures: Collection[str] = (),
    rewrites: Mapping[str, str] | None = None,
) -> str:
    with pytest.raises(DataError) as info:
        check_outputs(inputs, outputs, figures=figures, rewrites=rewrites)
    message = str(info.value)
    assert "\n" not in message
    for text in expected:
        assert text in message, message
    return message


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    path.write_text("x,y\n1,0\n2,1\n")
    return path


def test_new_and_regular_outputs_pass(tmp_path: Path, data: Path) -> None:
    existing = tmp_path / "old.st"
    existing.write_bytes(b"old")
    check_outputs(
        {"DATA": data, "MODEL": None},
        {"--out": tmp_path / "new.st", "--plot": tmp_path / "p.png", "--checkpoint": existing},
        figures=("--plot",),
    )


def test_builtin_names_and_missing_inputs_are_not_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "digits" is a built-in, not a file: an output of that name destroys nothing.
    monkeypatch.chdir(tmp_path)
    check_outputs({"DATA": "digits"}, {"--out": "digits"})


def test_output_same_as_input(tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refused("--out", str(data), "same file as DATA", inputs={"DATA": data}, outputs={"--out": data})
    # Another spelling of the same path.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    refused("same file as DATA", inputs={"DATA": "data.csv"}, outputs={"--out": "./sub/../data.csv"})


def test_output_hard_link_to_input(tmp_path: Path, data: Path) -> None:
    link = tmp_path / "hard.csv"
    os.link(data, link)
    refused("--plot", "same file as MODEL", inputs={"MODEL": data}, outputs={"--plot": link}, figures=())


def test_input_through_a_symlink(tmp_path: Path, data: Path) -> None:
    # The input is named through a link; the output names the file itself.
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    refused("same file as DATA", inputs={"DATA": link}, outputs={"--out": data})


def test_two_outputs_the_same_file(tmp_path: Path) -> None:
    refused(
        "--plot",
        "same file as --out",
        inputs={},
        outputs={"--out": tmp_path / "x.png", "--plot": tmp_path / "x.png"},
    )


def test_rewrite_allows_the_named_input_only(tmp_path: Path, data: Path) -> None:
    checkpoint = tmp_path / "c.ckpt"
    checkpoint.write_bytes(b"ckpt")
    inputs = {"DATA": data, "--resume": checkpoint}
    check_outputs(inputs, {"--checkpoint": checkpoint}, rewrites={"--checkpoint": "--resume"})
    refused("--out", "same file as --resume", inputs=inputs, outputs={"--out": checkpoint})
    refused(
        "--checkpoint",
        "same file as DATA",
        inputs=inputs,
        outputs={"--checkpoint": data},
        rewrites={"--checkpoint": "--resume"},
    )


def test_folder_device_fifo_socket(tmp_path: Path) -> None:
    refused("--out", "is a folder", inputs={}, outputs={"--out": tmp_path})
    refused("--out /dev/null", "character device", inputs={}, outputs={"--out": "/dev/null"})
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refused("FIFO", inputs={}, outputs={"--out": fifo})
    # AF_UNIX paths are limited to about 100 bytes: bind with a short relative name.
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with socket.socket(socket.AF_UNIX) as server:
            server.bind("s")
            refused("socket", inputs={}, outputs={"--out": tmp_path / "s"})
    finally:
        os.chdir(cwd)


def test_symlinked_output_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "target.st"
    target.write_bytes(b"old")
    link = tmp_path / "link.st"
    link.symlink_to(target)
    refused("--out", "symbolic link", str(target), inputs={}, outputs={"--out": link})
    # A dangling link too: the rename would replace the link, not create its target.
    dangling = tmp_path / "dangling.st"
    dangling.symlink_to(tmp_path / "nowhere.st")
    refused("symbolic link", inputs={}, outputs={"--out": dangling})


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_names(tmp_path: Path, name: str) -> None:
    refused("DATA is empty", inputs={"DATA": name}, outputs={})
    refused("--out is empty", inputs={}, outputs={"--out": name})


def test_dash_is_not_a_file() -> None:
    refused("--out -", "standard output", inputs={}, outputs={"--out": "-"})


@pytest.mark.parametrize("name", ["x.jpg", "x", "x.png.csv", "x.eps"])
def test_plot_must_name_a_picture_format(tmp_path: Path, name: str) -> None:
    refused(
        "--plot",
        "PNG, PDF or SVG",
        ".png, .pdf, .svg",
        inputs={},
        outputs={"--plot": tmp_path / name},
        figures=("--plot",),
    )
    with pytest.raises(ValueError, match="ends in"):
        figure_format(tmp_path / name)


@pytest.mark.parametrize(("name", "fmt"), [("x.png", "png"), ("x.PNG", "png"), ("x.pdf", "pdf"), ("x.Svg", "svg")])
def test_plot_format_follows_the_extension(tmp_path: Path, name: str, fmt: str) -> None:
    check_outputs({}, {"--plot": tmp_path / name}, figures=("--plot",))
    assert figure_format(tmp_path / name) == fmt


def test_figure_suffixes_are_the_formats_drawn() -> None:
    from twolayer.report.plots import FIGURE_FORMATS

    assert sorted(FIGURE_SUFFIXES.values()) == sorted(FIGURE_FORMATS)


def test_missing_or_read_only_folder(tmp_path: Path) -> None:
    refused("does not exist", inputs={}, outputs={"--out": tmp_path / "no" / "x.st"})
    if os.geteuid() != 0:  # root writes anywhere
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o500)
        try:
            refused("not writable", inputs={}, outputs={"--out": folder / "x.st"})
        finally:
            folder.chmod(0o700)


def _checkpoint(path: Path, epoch: int) -> None:
    """A real checkpoint (the reader checks the training state) that says it is at ``epoch``."""
    from twolayer.classifier import TwoLayerClassifier

    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    model = TwoLayerClassifier(n_hidden=2, solver="lbfgs", max_iter=500, random_state=0).fit(X, np.array([0, 1, 1]))
    save_checkpoint(
        path,
        Checkpoint(
            state=model.get_training_state(),
            hyperparameters=model.get_params(),
            scaler_mean=None,
            scaler_scale=None,
            train_index=np.array([0, 1]),
            test_index=np.array([2]),
            epoch=epoch,
            run={"source": "moons"},
        ),
    )


def test_fresh_checkpoint_keeps_an_existing_one(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    check_fresh_checkpoint(path)  # nothing there yet
    _checkpoint(path, 215)
    with pytest.raises(DataError) as info:
        check_fresh_checkpoint(path)
    message = str(info.value)
    assert f"--checkpoint {path} holds a checkpoint at epoch 215 of a run on moons" in message
    assert "--resume" in message and "--overwrite" in message
    check_fresh_checkpoint(path, overwrite=True)
    check_fresh_checkpoint(path, resumed=path)


def test_fresh_checkpoint_keeps_any_other_file(tmp_path: Path) -> None:
    path = tmp_path / "c.ckpt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="is not a twolayer checkpoint; give --overwrite"):
        check_fresh_checkpoint(path)
    check_fresh_checkpoint(None)
