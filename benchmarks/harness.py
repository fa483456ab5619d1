"""Timing, the registry of sections, and the tables they report.

A *section* is one question the benchmark answers ("how long is a float32
epoch?"); it is a function ``section(ctx) -> list[Table]`` registered with
:func:`section`. ``run.py`` runs the registered sections in order, so a later
issue adds a row of the report by adding one decorated function (in a module listed in
``run.py``'s ``SECTION_MODULES``), nothing else.

Timing follows three rules, because the machines this runs on are small and
shared:

- **Interleave.** Every repeat runs every contestant once, in an order rotated
  from repeat to repeat, so a slow minute of the machine falls on all of them
  rather than on whichever happened to run then.
- **Repeat and report the median with the spread** (min and max), never a
  single number.
- **Warm up first.** Each contestant runs once on a little data before the
  clock starts (imports, JIT compilation, BLAS thread start-up, first-touch
  allocation are paid there, not in the timed repeats).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

SETTLE_SECONDS = 0.2


# --------------------------------------------------------------------------
# Contestants and interleaved timing
# --------------------------------------------------------------------------


@dataclass
class Contestant:
    """One thing to time: ``run()`` does one timed unit of work (one epoch).

    ``run`` may return a dict of facts about the work it did (the epoch's mean
    loss, the dtype it trained in): the last repeat's are reported beside the
    times, as a check that every contestant did the same job.
    ``max_repeats`` lets a slow peer run fewer repeats than the others.
    """

    name: str
    run: Callable[[], dict[str, Any] | None]
    warmup: Callable[[], object] | None = None
    max_repeats: int | None = None
    note: str = ""


@dataclass
class Skipped:
    """A contestant that cannot run here because it is not installed (a peer's library is absent).

    Only absence is a reason to skip: a contestant that is installed but raises
    is a :class:`ContestantFailed`, which stops the run.
    """

    name: str
    reason: str


class ContestantFailed(RuntimeError):
    """An installed contestant raised while being set up, warmed up or timed.

    The run stops (``run.py`` exits non-zero and writes no report): a report
    that quietly lost a peer would read as if the peer had never been there.
    ``error`` is the exception the contestant raised.
    """

    def __init__(self, name: str, stage: str, error: BaseException) -> None:
        super().__init__(f"contestant {name!r} failed in its {stage}: {type(error).__name__}: {error}")
        self.name = name
        self.stage = stage
        self.error = error


@dataclass
class Timing:
    """The seconds of every repeat of one contestant, and what it reported."""

    name: str
    seconds: list[float]
    facts: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def low(self) -> float:
        return min(self.seconds)

    @property
    def high(self) -> float:
        return max(self.seconds)


def log(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the report."""
    print(message, file=sys.stderr, flush=True)


def time_interleaved(
    contestants: Sequence[Contestant | Skipped], repeats: int, *, what: str = ""
) -> tuple[dict[str, Timing], list[Skipped]]:
    """Warm every contestant up, then time ``repeats`` interleaved rounds.

    Returns the timings by name, and the contestants passed in as
    :class:`Skipped` (not installed). A contestant whose warm-up or timed run
    raises stops everything with :class:`ContestantFailed` naming it.
    """
    skipped = [c for c in contestants if isinstance(c, Skipped)]
    ready: list[Contestant] = []
    for c in contestants:
        if isinstance(c, Skipped):
            continue
        if c.warmup is not None:
            log(f"  {what} warm-up: {c.name}")
            try:
                c.warmup()
            except Exception as exc:
                raise ContestantFailed(c.name, "warm-up", exc) from exc
        ready.append(c)
    timings = {c.name: Timing(c.name, [], note=c.note) for c in ready}
    for r in range(repeats):
        shift = r % len(ready) if ready else 0
        order = ready[shift:] + ready[:shift]  # rotate: nobody always goes first
        for c in order:
            if c.max_repeats is not None and r >= c.max_repeats:
                continue
            gc.collect()
            # Let the previous contestant's idle threads stop spinning (OpenBLAS
            # workers busy-wait for a while after each call) before the clock starts.
            time.sleep(SETTLE_SECONDS)
            t0 = time.perf_counter()
            try:
                facts = c.run()
            except Exception as exc:
                raise ContestantFailed(c.name, f"timed repeat {r + 1}", exc) from exc
            seconds = time.perf_counter() - t0
            timings[c.name].seconds.append(seconds)
            if facts:
                timings[c.name].facts = dict(facts)
            log(f"  {what} repeat {r + 1}/{repeats}: {c.name:<28} {seconds:8.3f} s")
    return timings, skipped


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------


@dataclass
class Table:
    """A titled table of strings, rendered as Markdown (also for the console)."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    # Raw numbers for --json and for the targets table: {key: value}.
    data: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.rows:
            lines.append("| " + " | ".join(self.columns) + " |")
            lines.append("|" + "|".join("---" for _ in self.columns) + "|")
            lines += ["| " + " | ".join(row) + " |" for row in self.rows]
            lines.append("")
        lines += [f"- {note}" for note in self.notes]
        if self.notes:
            lines.append("")
        return "\n".join(lines)


def fmt_seconds(s: float) -> str:
    """Seconds with three significant figures, in the unit that reads best."""
    if s >= 1.0:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


def fmt_timing(t: Timing, scale: float = 1.0) -> str:
    """``median [min–max]`` (with ``n`` when there was more than one repeat)."""
    if len(t.seconds) == 1:
        return fmt_seconds(t.median * scale) + " (1 run)"
    return (
        f"{fmt_seconds(t.median * scale)} "
        f"[{fmt_seconds(t.low * scale)}–{fmt_seconds(t.high * scale)}, n={len(t.seconds)}]"
    )


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}×"


# --------------------------------------------------------------------------
# The registry of sections
# --------------------------------------------------------------------------


@dataclass
class Section:
    """One registered section: its name (for ``--only``), title and function."""

    name: str
    title: str
    func: Callable[[Any], list[Table]]


SECTIONS: dict[str, Section] = {}


def section(name: str, title: str) -> Callable[[Callable[[Any], list[Table]]], Callable[[Any], list[Table]]]:
    """Register ``func(ctx) -> list[Table]`` as a section; order of registration is run order."""

    def register(func: Callable[[Any], list[Table]]) -> Callable[[Any], list[Table]]:
        if name in SECTIONS:
            raise ValueError(f"section {name!r} registered twice")
        SECTIONS[name] = Section(name, title, func)
        return func

    return register
