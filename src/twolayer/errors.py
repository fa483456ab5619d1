"""The package's exception types, at the bottom of the house so that every layer can raise them.

Each is a :class:`ValueError`, so code that caught ``ValueError`` before these
types existed still catches them. The command line turns :class:`DataError`,
:class:`NonFiniteInput` and :class:`TrainingDiverged` into one line on
standard error and exit status 2 (see :mod:`twolayer.cli`).
"""

from __future__ import annotations

__all__ = ["DataError", "NonFiniteInput", "TrainingDiverged"]


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
