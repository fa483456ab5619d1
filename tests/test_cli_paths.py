"""The command line never destroys its inputs (issue 16): outputs are checked before any work.

Each refused command must exit 2 with one line on standard error, no
traceback, and leave every file that existed before byte-identical.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_cli import assert_one_line_error, run
from twolayer.io.modelfile import load_checkpoint

TINY = ["--epochs", "3", "--hidden", "4", "--quiet"]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every regular file under ``folder`` (symbolic links as their target's name), by relative path."""
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            files[name] = b"-> " + os.readlink(path).encode()
        elif path.is_file():
            files[name] = path.read_bytes()
    return files


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with data.csv, a model trained on it (model.st) and its checkpoint at epoch 3 (run.ckpt)."""
    folder = tmp_path_factory.mktemp("trained")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    lines = ["a,b,label"] + [f"{a:.6f},{b:.6f},{c}" for (a, b), c in zip(X, y)]
    (folder / "data.csv").write_text("\n".join(lines) + "\n")
    code = run_plain(
        "train", folder / "data.csv", *TINY, "--out", folder / "model.st", "--checkpoint", folder / "run.ckpt"
    )
    assert code == 0
    return folder


def run_plain(*argv: object) -> int:
    from twolayer import cli

    return cli.main([str(a) for a in argv])


@pytest.fixture
def work(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the trained folder, as the working directory.

    A rename onto a device is made to fail: run as root against code that
    lets ``--out /dev/null`` through, the test must fail without turning the
    machine's /dev/null into a plain file (which the old code did).
    """
    for path in trained.iterdir():
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.chdir(tmp_path)
    replace = os.replace

    def guarded_replace(src: str, dst: str) -> None:
        if os.path.realpath(dst).startswith("/dev/"):
            raise AssertionError(f"a command tried to replace the device {dst}")
        replace(src, dst)

    monkeypatch.setattr(os, "replace", guarded_replace)
    return tmp_path


def refused(capsys: pytest.CaptureFixture[str], folder: Path, argv: list[str], *expected: str) -> None:
    before = snapshot(folder)
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, err, *expected)
    assert snapshot(folder) == before
    assert out == ""


# The cases of issue 16, as its first bullets name them.
CASES = {
    "predict DATA --out DATA": (
        ["predict", "model.st", "data.csv", "--out", "data.csv"],
        "--out data.csv: is the same file as DATA",
    ),
    "train DATA --out DATA": (["train", "data.csv", *TINY, "--out", "data.csv"], "--out data.csv: is the same file"),
    "train DATA --plot DATA": (["train", "data.csv", *TINY, "--plot", "data.csv"], "--plot data.csv: is the same"),
    "train DATA --checkpoint DATA": (
        ["train", "data.csv", *TINY, "--checkpoint", "data.csv"],
        "--checkpoint data.csv: is the same file as DATA",
    ),
    "predict M --out M": (
        ["predict", "model.st", "data.csv", "--out", "model.st"],
        "--out model.st: is the same file as MODEL",
    ),
    "curvature M --plot M": (
        ["curvature", "model.st", "data.csv", "--k", "1", "--plot", "model.st"],
        "--plot model.st: is the same file as MODEL",
    ),
    "evaluate --plot DATA": (
        ["evaluate", "model.st", "data.csv", "--plot", "data.csv"],
        "--plot data.csv: is the same file as DATA",
    ),
    "plot M --out M": (["plot", "model.st", "--out", "model.st"], "--out model.st: is the same file as MODEL"),
    "train --resume X --out X": (
        ["train", "--resume", "run.ckpt", "--out", "run.ckpt"],
        "--out run.ckpt: is the same file as --resume",
    ),
    "train --out M --plot M": (
        ["train", "data.csv", *TINY, "--out", "same.png", "--plot", "same.png"],
        "--plot same.png: is the same file as --out",
    ),
    "fresh train --checkpoint over a checkpoint": (
        ["train", "data.csv", *TINY, "--checkpoint", "run.ckpt"],
        "--checkpoint run.ckpt holds a checkpoint at epoch 3 of a run on",
        "use --resume run.ckpt to continue or --overwrite to start again",
    ),
    "train --out a folder": (["train", "data.csv", *TINY, "--out", "."], "--out .: is a folder"),
    "train --out /dev/null": (["train", "data.csv", *TINY, "--out", os.devnull], "character device"),
    "predict --out /dev/null": (["predict", "model.st", "data.csv", "--out", os.devnull], "character device"),
    'train "" --out m': (["train", "", *TINY, "--out", "m"], "DATA is empty"),
    'train " " --out m': (["train", "  ", *TINY, "--out", "m"], "DATA is empty"),
    'evaluate M ""': (["evaluate", "model.st", ""], "DATA is empty"),
    'predict M ""': (["predict", "model.st", " "], "DATA is empty"),
    'curvature M ""': (["curvature", "model.st", ""], "DATA is empty"),
    'plot M "" --out p.png': (["plot", "model.st", "", "--out", "p.png"], "DATA is empty"),
    "train --plot x.jpg": (["train", "data.csv", *TINY, "--plot", "x.jpg"], "--plot x.jpg", ".png, .pdf, .svg"),
    "plot --out x": (["plot", "model.st", "--out", "x"], "--out x", ".png, .pdf, .svg"),
    "train --out -": (["train", "data.csv", *TINY, "--out", "-"], "--out -: standard output"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_before_any_work(work: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    argv, *expected = CASES[case]
    assert isinstance(argv, list)
    refused(capsys, work, argv, *(str(text) for text in expected))


def test_hard_link_to_the_data(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    os.link("data.csv", "alias.csv")
    refused(capsys, work, ["predict", "model.st", "data.csv", "--out", "alias.csv"], "same file as DATA")


@pytest.mark.parametrize("command", ["train", "predict"])
def test_symlinked_out_is_refused(work: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    # Writing would replace the link with a plain file and leave its target as it was: refused, naming the target.
    Path("elsewhere.st").write_bytes(b"kept")
    Path("link.st").symlink_to("elsewhere.st")
    argv = ["train", "data.csv", *TINY] if command == "train" else ["predict", "model.st", "data.csv"]
    refused(capsys, work, [*argv, "--out", "link.st"], "--out link.st: is a symbolic link", "elsewhere.st")
    assert Path("link.st").is_symlink()


def test_symlink_to_the_data_is_refused(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("link.csv").symlink_to("data.csv")
    refused(capsys, work, ["evaluate", "model.st", "data.csv", "--plot", "link.csv"], "symbolic link")


def test_happy_paths(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Overwriting one's own earlier outputs is what --out is for.
    code, _, err = run(capsys, "train", "data.csv", *TINY, "--out", "model.st", "--plot", "p.png")
    assert code == 0, err
    code, _, err = run(capsys, "train", "data.csv", *TINY, "--out", "model.st", "--plot", "p.png")
    assert code == 0, err
    # --overwrite starts a fresh run over an existing checkpoint; --resume continues it.
    code, _, err = run(capsys, "train", "data.csv", *TINY, "--epochs", "2", "--checkpoint", "run.ckpt", "--overwrite")
    assert code == 0, err
    assert load_checkpoint("run.ckpt").epoch == 2
    code, _, err = run(capsys, "train", "--resume", "run.ckpt", "--epochs", "4", "--quiet")
    assert code == 0, err
    assert load_checkpoint("run.ckpt").epoch == 4
    # predict --out - is standard output.
    code, out, err = run(capsys, "predict", "model.st", "data.csv", "--out", "-")
    assert code == 0, err
    assert out.startswith("prediction\n") and not Path("-").exists()
    code, out, err = run(capsys, "evaluate", "model.st", "data.csv", "--plot", "r.png")
    assert code == 0, err
    assert Path("r.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(("name", "signature"), [("p.png", b"\x89PNG"), ("p.pdf", b"%PDF-"), ("p.svg", b"<?xml")])
def test_pictures_take_the_format_their_extension_names(
    work: Path, capsys: pytest.CaptureFixture[str], name: str, signature: bytes
) -> None:
    # Each command that draws writes the format the name says, not PNG bytes under any name.
    runs = [
        ["train", "data.csv", *TINY, "--plot", name],
        ["evaluate", "model.st", "data.csv", "--plot", name],
        ["plot", "model.st", "--out", name],
        ["curvature", "model.st", "data.csv", "--plot", name],
    ]
    for argv in runs:
        Path(name).unlink(missing_ok=True)
        code, _, err = run(capsys, *argv)
        assert code == 0, (argv, err)
        assert Path(name).read_bytes().startswith(signature), argv


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_busy_shows_a_spinner_on_a_terminal_only() -> None:
    from twolayer.cli.common import busy

    shown = _Terminal()
    with busy("the spectra of 42 parameters", stream=shown):
        pass
    assert "the spectra of 42 parameters" in shown.getvalue()
    for stream, quiet in ((io.StringIO(), False), (_Terminal(), True)):  # a pipe or a log; --quiet
        with busy("the spectra", stream=stream, quiet=quiet):
            pass
        assert stream.getvalue() == ""
