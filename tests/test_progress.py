"""The progress display's plain lines and their time estimate, on a fake clock (nothing here is timed)."""

from __future__ import annotations

import io
import re

from twolayer.cli.progress import Display


class FakeClock:
    """Seconds that pass only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def time_left(stream: io.StringIO) -> dict[int, float | None]:
    """Each printed epoch and its estimate of the seconds left (None where the line has none)."""
    shown: dict[int, float | None] = {}
    for line in stream.getvalue().splitlines():
        epoch = re.match(r"epoch\s+(\d+)/", line)
        assert epoch, line
        left = re.search(r"about ([\d.]+)s left", line)
        shown[int(epoch.group(1))] = float(left.group(1)) if left else None
    return shown


def test_the_estimate_leaves_out_the_first_epoch() -> None:
    # The first epoch pays for compiling the kernels: 60 s here, then 1 s per epoch. An
    # estimate that counted it promised minutes for the 8 s that remain after epoch 2.
    clock, stream = FakeClock(), io.StringIO()
    with Display(10, 0, quiet=False, stream=stream, clock=clock) as display:
        clock.now += 60.0
        display.update(1, 1.0, 0.5)
        for epoch in range(2, 11):
            clock.now += 1.0
            display.update(epoch, 1.0, 0.5)
    shown = time_left(stream)
    assert shown[1] is None  # one epoch tells nothing of the pace
    assert shown[2] == 8.0 and shown[5] == 5.0 and shown[9] == 1.0
    assert shown[10] == 0.0
    assert "61.0s elapsed" in stream.getvalue()  # the elapsed time is all of it


def test_the_estimate_follows_the_pace_since_the_first_epoch() -> None:
    clock, stream = FakeClock(), io.StringIO()
    with Display(20, 0, quiet=False, stream=stream, clock=clock) as display:
        for epoch in range(1, 11):
            clock.now += 30.0 if epoch == 1 else (1.0 if epoch <= 5 else 3.0)
            display.update(epoch, 1.0, 0.5)
    shown = time_left(stream)
    # After epoch 10: epochs 2-10 took 4 x 1 + 5 x 3 = 19 s, 19 / 9 s each, for 10 more.
    assert shown[10] == round(19 / 9 * 10, 1)


def test_a_resumed_run_estimates_from_its_own_epochs() -> None:
    # Resumed at epoch 40: its first epoch (41) compiles again and is left out in turn.
    clock, stream = FakeClock(), io.StringIO()
    with Display(50, 40, quiet=False, stream=stream, clock=clock) as display:
        clock.now += 45.0
        display.update(41, 1.0, 0.5)
        for epoch in range(42, 51):
            clock.now += 2.0
            display.update(epoch, 1.0, 0.5)
    shown = time_left(stream)
    assert shown[41] is None and shown[42] == 16.0 and shown[50] == 0.0


def test_quiet_prints_nothing() -> None:
    clock, stream = FakeClock(), io.StringIO()
    with Display(10, 0, quiet=True, stream=stream, clock=clock) as display:
        for epoch in range(1, 11):
            clock.now += 1.0
            display.update(epoch, 1.0, 0.5)
    assert stream.getvalue() == ""
