"""The package's exception types, at the bottom of the house so that every layer can raise them.

Each is a :class:`ValueError`, so code that caught ``ValueError`` before these
types existed still catches them, except :class:`InsufficientMemory`, a
:class:`MemoryError` (what the allocation it prevents would have raised). The
command line turns :class:`DataError`, :class:`NonFiniteInput`,
:class:`TrainingDiverged` and :class:`InsufficientMemory` into one line on
standard error and exit status 2 (see :mod:`twolayer.cli`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DataError",
    "HighMemoryWarning",
    "InsufficientMemory",
    "MemoryEstimate",
    "NonFiniteInput",
    "TrainingDiverged",
    "format_bytes",
]


class DataError(ValueError):
    """A problem with the user's input, told in one line.

    The message names the file (or built-in), the place and what was expected
    against what was found. :mod:`twolayer.io.modelfile` raises it for model
    files that cannot be trusted.
    """


class TrainingDiverged(ValueError):
    """Training met a non-finite error; the last finite weights were kept."""


class NonFiniteInput(ValueError):
    """A training pattern has a NaN or infinite feature; the message names its row and column."""


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units with one decimal: "74.5 GiB", "512.0 KiB", "12 bytes"."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def _or(words: Sequence[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


@dataclass(frozen=True)
class MemoryEstimate:
    """What an operation would allocate, against what is available, and how to need less.

    Attributes
    ----------
    needed : int
        The estimated bytes.
    available : int
        The bytes available when it was checked.
    what : str
        What the memory is for ("training").
    parts : str
        What it is made of ("weights, Adam state, a batch of 200 working arrays"); may be empty.
    lower : tuple of str
        Parameters whose smaller values need less memory ("n_hidden").
    switch : tuple of (str, str)
        Parameters with a value that needs less, e.g. ``(("structure", "diagonal"),)``.
    """

    needed: int
    available: int
    what: str
    parts: str = ""
    lower: tuple[str, ...] = ()
    switch: tuple[tuple[str, str], ...] = ()

    def need(self) -> str:
        """ "training needs about 74.5 GiB (weights, ...)"."""
        parts = f" ({self.parts})" if self.parts else ""
        return f"{self.what} needs about {format_bytes(self.needed)}{parts}"

    def remedy(self, names: Mapping[str, str] | None = None, values: Mapping[str, str] | None = None) -> str:
        """ "lower n_hidden or batch_size, or use structure='diagonal'"; empty when there is nothing to change.

        Parameters
        ----------
        names : mapping of str to str, optional
            How to write a parameter, e.g. ``{"n_hidden": "--hidden"}``; by
            default its own name.
        values : mapping of str to str, optional
            How to write a switch, e.g. ``{"structure": "--structure diagonal"}``;
            by default ``structure='diagonal'``.

        Returns
        -------
        str
        """
        names = dict(names or {})
        values = dict(values or {})
        remedies = []
        if self.lower:
            remedies.append("lower " + _or([names.get(p, p) for p in self.lower]))
        for parameter, value in self.switch:
            remedies.append("use " + values.get(parameter, f"{names.get(parameter, parameter)}={value!r}"))
        return ", or ".join(remedies)

    def refusal(self, names: Mapping[str, str] | None = None, values: Mapping[str, str] | None = None) -> str:
        """The sentence of :class:`InsufficientMemory`, parameters written as :meth:`remedy` says."""
        remedy = self.remedy(names, values)
        return f"{self.need()} but {format_bytes(self.available)} is available" + (f"; {remedy}" if remedy else "")

    def warning(self, names: Mapping[str, str] | None = None, values: Mapping[str, str] | None = None) -> str:
        """The sentence of :class:`HighMemoryWarning`, parameters written as :meth:`remedy` says."""
        remedy = self.remedy(names, values)
        return f"{self.need()}, more than half of the {format_bytes(self.available)} available" + (
            f" ({remedy} to need less)" if remedy else ""
        )


class InsufficientMemory(MemoryError):
    """An operation would need more memory than is available, so it was not started.

    Raised before the allocation by :func:`twolayer.resources.check_memory`.
    ``str()`` is one sentence naming the *Python* parameters to change, e.g.
    "training needs about 74.5 GiB (weights, Adam state, a batch of 200
    working arrays) but 21.3 GiB is available; lower n_hidden or batch_size".
    ``estimate.refusal(names)`` writes them otherwise (the command line names
    its options).

    Parameters
    ----------
    estimate : MemoryEstimate
    """

    def __init__(self, estimate: MemoryEstimate) -> None:
        self.estimate = estimate
        super().__init__(estimate.refusal())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.estimate,))

    @property
    def needed(self) -> int:
        """The estimated bytes."""
        return self.estimate.needed

    @property
    def available(self) -> int:
        """The bytes available."""
        return self.estimate.available

    @property
    def what(self) -> str:
        """What the memory is for."""
        return self.estimate.what

    @property
    def parameters(self) -> tuple[str, ...]:
        """The Python parameters whose change needs less memory."""
        return self.estimate.lower + tuple(p for p, _ in self.estimate.switch)


class HighMemoryWarning(UserWarning):
    """An operation is about to use more than half of the memory available; it may still fit.

    Parameters
    ----------
    estimate : MemoryEstimate
    """

    def __init__(self, estimate: MemoryEstimate) -> None:
        self.estimate = estimate
        super().__init__(estimate.warning())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.estimate,))
