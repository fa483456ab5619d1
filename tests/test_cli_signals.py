"""SIGTERM and SIGHUP stop ``twolayer train`` as Ctrl-C does: after the epoch, with a complete checkpoint.

``timeout``, ``kill`` and job schedulers send SIGTERM, a closed terminal
SIGHUP. The run then exits with 128 plus the signal's number, as a shell
reports a command that the signal ended (143 for SIGTERM, 129 for SIGHUP, 130
for Ctrl-C), so that a script can tell an interrupted run from a finished or
failed one.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_cli import run, subprocess_env
from twolayer import cli
from twolayer.cli.progress import Display
from twolayer.io.modelfile import load_checkpoint

RUN = ["moons", "--epochs", "12", "--hidden", "6", "--batch-size", "64"]


class Unhandled(Exception):
    """What the guard handler raises: the signal reached it, not the run's own handler."""


@pytest.fixture
def guarded() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Unhandled` unless training handles them (instead of ending pytest)."""

    def guard(signum: int, frame: object) -> None:
        raise Unhandled(signal.Signals(signum).name)

    previous = {signum: signal.signal(signum, guard) for signum in (signal.SIGTERM, signal.SIGHUP)}
    yield
    for signum, action in previous.items():
        signal.signal(signum, action)


def signal_at(monkeypatch: pytest.MonkeyPatch, epoch: int, *signals: signal.Signals) -> None:
    """Deliver real signals to this process, one after the other, once the given epoch is displayed."""
    original = Display.update

    def update(self: Display, done: int, loss: float, accuracy: float) -> None:
        original(self, done, loss, accuracy)
        if done == epoch:
            for signum in signals:
                signal.raise_signal(signum)

    monkeypatch.setattr(Display, "update", update)


@pytest.mark.usefixtures("guarded")
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["TERM", "HUP"])
def test_a_signal_checkpoints_like_ctrl_c(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    signum: signal.Signals,
    status: int,
) -> None:
    guard = signal.getsignal(signum)
    checkpoint = tmp_path / "run.ckpt"
    signal_at(monkeypatch, 5, signum)
    code, out, err = run(capsys, "train", *RUN, "--out", tmp_path / "m.st", "--checkpoint", checkpoint)
    monkeypatch.undo()
    assert code == status and out == "", err
    assert f"interrupted at epoch 5 by {signum.name}" in err and f"--resume {checkpoint}" in err
    assert not (tmp_path / "m.st").exists()
    assert load_checkpoint(checkpoint).epoch == 5
    assert signal.getsignal(signum) is guard  # the handler before the run is back

    code, _, err = run(capsys, "train", "--resume", checkpoint, "--quiet")
    assert code == 0, err
    assert load_checkpoint(checkpoint).epoch == 12 and (tmp_path / "m.st").exists()


@pytest.mark.usefixtures("guarded")
def test_a_second_sigterm_exits_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first asks for a stop after the epoch; the second does not wait for it.
    signal_at(monkeypatch, 3, signal.SIGTERM, signal.SIGTERM)
    checkpoint = tmp_path / "run.ckpt"
    argv = ["train", *RUN, "--out", tmp_path / "m.st", "--checkpoint", checkpoint, "--checkpoint-every", "2"]
    with pytest.raises(SystemExit) as exited:
        cli.main([str(a) for a in argv])
    monkeypatch.undo()
    assert exited.value.code == 143
    assert not (tmp_path / "m.st").exists()
    assert load_checkpoint(checkpoint).epoch == 2  # the last periodic checkpoint, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt"]


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_a_real_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signum: signal.Signals, status: int
) -> None:
    # Ctrl-C, and what `timeout` and `kill` do; SIGHUP takes SIGTERM's path (tested in this process above).
    checkpoint = tmp_path / "c.ckpt"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "twolayer",
            "train",
            "digits",
            "--epochs",
            "100000",
            "--hidden",
            "8",
            "--checkpoint",
            checkpoint,
            "--checkpoint-every",
            "1",
            "--out",
            tmp_path / "m.st",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(),
        cwd=tmp_path,
    )
    assert process.stderr is not None
    seen = []
    try:
        for line in process.stderr:  # the first progress line: epoch 1 and its checkpoint are done
            seen.append(line)
            if line.startswith("epoch"):
                break
        process.send_signal(signum)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == status, "".join(seen) + err
    assert "Traceback" not in err and "interrupted at epoch" in err and "; checkpoint written to" in err
    assert not (tmp_path / "m.st").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ckpt"]  # no temporary file left behind
    state = load_checkpoint(checkpoint)
    assert 1 <= state.epoch < 100000 and state.run["options"]["hidden"] == 8

    # Complete, hence resumable: a few more epochs from where it stopped.
    code, _, err = run(capsys, "train", "--resume", checkpoint, "--epochs", state.epoch + 2, "--quiet")
    assert code == 0, err
    assert load_checkpoint(checkpoint).epoch == state.epoch + 2
