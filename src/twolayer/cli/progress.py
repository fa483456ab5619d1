"""Training progress on standard error, the estimator's callback, and Ctrl-C."""

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
    """Progress on standard error: a rich bar on a terminal, a plain line every few epochs otherwise."""

    def __init__(
        self, total: int, first_epoch: int, *, quiet: bool, stream: TextIO | None = None, unit: str = "epoch"
    ) -> None:
        self.total = total
        self.unit = unit  # "iteration" for the whole-batch solvers
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interactive = not quiet and self.stream.isatty()
        self.every = max(1, math.ceil((total - first_epoch) / 10))
        self.first_epoch = first_epoch
        self.started = time.perf_counter()
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
        if self._progress is not None:
            self._progress.update(self._task, completed=epoch, loss=f"{loss:.4g}", accuracy=f"{accuracy:.4f}")
            return
        done = epoch - self.first_epoch
        if done == 1 or done % self.every == 0 or epoch == self.total:
            self._print(epoch, loss, accuracy)
        else:
            self._pending = (epoch, loss, accuracy)

    def _print(self, epoch: int, loss: float, accuracy: float, *, last: bool = False) -> None:
        self._pending = None
        done = max(epoch - self.first_epoch, 1)
        elapsed = time.perf_counter() - self.started
        left = elapsed / done * (self.total - epoch)
        width = len(str(self.total))
        timing = f"{elapsed:.1f}s elapsed" + ("" if last else f", about {left:.1f}s left")
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
        self.diverged_at: int | None = None

    def __call__(self, model: TwoLayerClassifier) -> bool:
        epoch = epochs_done(model)
        loss = float(model.loss_curve_[-1])
        if not math.isfinite(loss):
            self.diverged_at = epoch  # nothing useful can follow: stop, and write nothing
            return True
        accuracy = metrics.accuracy(self.y_test, model.predict(self.X_test))
        self.accuracy.append(accuracy)
        self.display.update(epoch, loss, accuracy)
        if self.checkpoint is not None and epoch % self.every == 0 and not self.interrupted:
            self.checkpoint(model)
        return self.interrupted


@contextlib.contextmanager
def sigint_stops(monitor: Monitor) -> Iterator[None]:
    """Ctrl-C asks the monitor to stop after this epoch; a second Ctrl-C aborts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can be handled only in the main thread
        return

    def handler(signum: int, frame: object) -> None:
        if monitor.interrupted:
            raise KeyboardInterrupt
        monitor.interrupted = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
