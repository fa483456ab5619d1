"""Training progress on standard error, the estimator's callback, and the signals that stop a run cleanly."""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from twolayer.cli.common import console
from twolayer.report import metrics

if TYPE_CHECKING:
    import numpy as np
    from typing_extensions import Self

    from twolayer.classifier import TwoLayerClassifier


def epochs_done(model: TwoLayerClassifier) -> int:
    # n_iter_ counts the epochs of the latest fit only (as in scikit-learn);
    # the loss curve runs across warm starts, one entry per epoch.
    return len(model.loss_curve_)


class Display:
    """Progress on standard error: a rich bar on a terminal, a plain line every few epochs otherwise.

    The time left is estimated from the epochs after the first of this run:
    the first also pays for one-time work (numba compiling the kernels, BLAS
    warming up), often many times an epoch, and counting it would promise
    minutes for a run of seconds. rich's bar does the same: its speed counts
    the progress after its first sample, over the time since that sample.
    ``clock`` (seconds, monotonic) is for tests.
    """

    def __init__(
        self,
        total: int,
        first_epoch: int,
        *,
        quiet: bool,
        stream: TextIO | None = None,
        unit: str = "epoch",
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.total = total
        self.unit = unit  # "iteration" for the whole-batch solvers
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interactive = not quiet and self.stream.isatty()
        self.every = max(1, math.ceil((total - first_epoch) / 10))
        self.first_epoch = first_epoch
        self.clock = clock
        self.started = clock()
        self._first_done: float | None = None  # when this run's first epoch ended
        self._progress: Any = None
        self._task: Any = None
        self._pending: tuple[int, float, float] | None = None

    def __enter__(self) -> Self:
        if self.interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn(self.unit),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("held-out acc {task.fields[accuracy]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                console=console(self.stream),
            )
            self._progress.__enter__()
            self._task = self._progress.add_task(
                "train", total=self.total, completed=self.first_epoch, loss="-", accuracy="-"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)
        elif self._pending is not None and exc[0] is None:
            self._print(*self._pending, last=True)  # training stopped between two lines: show where

    def update(self, epoch: int, loss: float, accuracy: float) -> None:
        if self.quiet:
            return
        if self._first_done is None:
            self._first_done = self.clock()
        if self._progress is not None:
            self._progress.update(self._task, completed=epoch, loss=f"{loss:.4g}", accuracy=f"{accuracy:.4f}")
            return
        done = epoch - self.first_epoch
        if done == 1 or done % self.every == 0 or epoch == self.total:
            self._print(epoch, loss, accuracy)
        else:
            self._pending = (epoch, loss, accuracy)

    def time_left(self, epoch: int) -> float | None:
        """Seconds left after ``epoch``, at the pace of the epochs since this run's first; None before two."""
        steady = epoch - self.first_epoch - 1  # epochs ended since the first
        if self._first_done is None or steady < 1:
            return None
        return (self.clock() - self._first_done) / steady * (self.total - epoch)

    def _print(self, epoch: int, loss: float, accuracy: float, *, last: bool = False) -> None:
        self._pending = None
        elapsed = self.clock() - self.started
        left = None if last else self.time_left(epoch)
        width = len(str(self.total))
        timing = f"{elapsed:.1f}s elapsed" + ("" if left is None else f", about {left:.1f}s left")
        print(
            f"{self.unit} {epoch:>{width}}/{self.total}  loss {loss:.4g}  held-out accuracy {accuracy:.4f}  {timing}",
            file=self.stream,
            flush=True,
        )


class Monitor:
    """The estimator's callback: progress, held-out accuracy, periodic checkpoints, Ctrl-C."""

    def __init__(
        self,
        accuracy: list[float],
        X_test: np.ndarray,
        y_test: np.ndarray,
        display: Display,
        checkpoint: Callable[[TwoLayerClassifier], None] | None,
        every: int,
    ) -> None:
        self.accuracy = accuracy
        self.X_test = X_test
        self.y_test = y_test
        self.display = display
        self.checkpoint = checkpoint
        self.every = every
        self.interrupted = False
        self.signal: int | None = None  # the signal that asked training to stop
        self.diverged_at: int | None = None

    def __call__(self, model: TwoLayerClassifier) -> bool:
        epoch = epochs_done(model)
        loss = float(model.loss_curve_[-1])
        if not math.isfinite(loss):
            self.diverged_at = epoch  # nothing useful can follow: stop, and write nothing
            return True
        # to_numpy(): the weights of a fit on a device, brought here for the held-out rows (itself otherwise).
        accuracy = metrics.accuracy(self.y_test, model.to_numpy().predict(self.X_test))
        self.accuracy.append(accuracy)
        self.display.update(epoch, loss, accuracy)
        if self.checkpoint is not None and epoch % self.every == 0 and not self.interrupted:
            self.checkpoint(model)
        return self.interrupted


# The signals that stop training cleanly: Ctrl-C, and what `kill`, `timeout`, job schedulers
# (SIGTERM) and a closed terminal (SIGHUP) send. SIGHUP does not exist on Windows.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def signals_stop(monitor: Monitor) -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP ask the monitor to stop after this epoch; a second signal aborts at once.

    The first signal is recorded in ``monitor.signal``; the run then ends as
    after its last epoch, writes its checkpoint and exits with 128 plus the
    signal's number, as a shell reports a command a signal ended. A second
    Ctrl-C raises KeyboardInterrupt; a second SIGTERM or SIGHUP exits at once
    with that status (the outputs are written atomically, so nothing is left
    half-written). The previous handlers are restored on leaving.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can be handled only in the main thread
        return

    def handler(signum: int, frame: object) -> None:
        if monitor.interrupted:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        monitor.interrupted = True
        monitor.signal = signum

    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)
