"""The report of a gradient check: one record per derivative, per parameter block and per direction.

:func:`twolayer.teaching.gradcheck.check_gradient` fills these in; they only
hold numbers and say how they compare, and ``str(report)`` prints the table a
student reads. The relative error and its floor are defined in the docstring
of :mod:`twolayer.teaching.gradcheck`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BlockCheck", "DirectionalCheck", "EntryCheck", "GradCheckReport"]


@dataclass(frozen=True)
class EntryCheck:
    """One derivative, analytic against numerical.

    Attributes
    ----------
    block : str
        ``"W1"``, ``"b1"``, ``"W2"`` or ``"b2"``.
    index : tuple of int
        The entry's index within its block (``W1[i, j]`` is
        :math:`\\partial E / \\partial w^{(1)}_{j+1, i+1}`).
    analytic : float
        The value returned by the gradient function.
    numerical : float
        The central difference.
    rel_error : float
        :math:`|a - n| / \\max(|a| + |n|, \\text{floor})`.
    passed : bool
        Whether ``rel_error <= rtol``.
    """

    block: str
    index: tuple[int, ...]
    analytic: float
    numerical: float
    rel_error: float
    passed: bool

    @property
    def label(self) -> str:
        """The entry as it would be indexed in Python, e.g. ``W2[0, 1]``."""
        return f"{self.block}[{', '.join(str(i) for i in self.index)}]"


@dataclass(frozen=True)
class BlockCheck:
    """The check of one parameter block.

    Attributes
    ----------
    name : str
        ``"W1"``, ``"b1"``, ``"W2"`` or ``"b2"``.
    shape : tuple of int
        The block's shape.
    entries : tuple of EntryCheck
        Every checked entry, in index order (all of the block's entries unless
        the check was limited by ``max_params``); never empty.
    """

    name: str
    shape: tuple[int, ...]
    entries: tuple[EntryCheck, ...]

    @property
    def n_total(self) -> int:
        """The number of entries in the block."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def n_checked(self) -> int:
        """How many of the block's entries were compared."""
        return len(self.entries)

    @property
    def worst(self) -> EntryCheck:
        """The checked entry with the largest relative error (NaN counts as largest)."""
        return max(self.entries, key=lambda e: float(np.nan_to_num(e.rel_error, nan=np.inf)))

    @property
    def max_rel_error(self) -> float:
        """The largest relative error among the checked entries."""
        return self.worst.rel_error

    @property
    def mismatches(self) -> tuple[EntryCheck, ...]:
        """Every checked entry whose relative error exceeds ``rtol`` (or is NaN)."""
        return tuple(e for e in self.entries if not e.passed)

    @property
    def passed(self) -> bool:
        """Whether every checked entry agrees."""
        return not self.mismatches


@dataclass(frozen=True)
class DirectionalCheck:
    """One directional derivative along a random unit vector ``v``.

    Attributes
    ----------
    analytic : float
        :math:`\\nabla E \\cdot (w_+ - w_-) / 2\\epsilon`, where
        :math:`w_\\pm = w \\pm \\epsilon v` as rounded to float64; this is
        :math:`\\nabla E \\cdot v` up to that rounding, which would otherwise
        count as disagreement.
    numerical : float
        :math:`[E(w_+) - E(w_-)] / 2\\epsilon`.
    rel_error : float
        As for :class:`EntryCheck`.
    passed : bool
        Whether ``rel_error <= rtol``.
    """

    analytic: float
    numerical: float
    rel_error: float
    passed: bool


@dataclass(frozen=True)
class GradCheckReport:
    """The outcome of :func:`~twolayer.teaching.gradcheck.check_gradient`.

    Attributes
    ----------
    blocks : tuple of BlockCheck
        One per parameter block, in the order W1, b1, W2, b2.
    directions : tuple of DirectionalCheck
        The random directional checks.
    error : float
        :math:`E(w)` at the checked point (a sum over patterns).
    eps, rtol, atol : float
        The step and the tolerances used (``atol`` as resolved when it was
        left to its default).
    activation : str
        The hidden-unit activation.
    n_features, n_hidden, n_classes, n_samples : int
        ``D``, ``M``, ``K`` and ``N``.
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity whose error was checked.
    """

    blocks: tuple[BlockCheck, ...]
    directions: tuple[DirectionalCheck, ...]
    error: float
    eps: float
    rtol: float
    atol: float
    activation: str
    n_features: int
    n_hidden: int
    n_classes: int
    n_samples: int
    output: str = "softmax"

    @property
    def floor(self) -> float:
        """The magnitude below which derivatives are compared absolutely, ``atol / rtol``."""
        return self.atol / self.rtol

    @property
    def passed(self) -> bool:
        """Whether every checked entry and every directional derivative agrees."""
        return all(b.passed for b in self.blocks) and all(d.passed for d in self.directions)

    @property
    def mismatches(self) -> tuple[EntryCheck, ...]:
        """Every disagreeing entry, block by block."""
        return tuple(m for b in self.blocks for m in b.mismatches)

    @property
    def max_rel_error(self) -> float:
        """The largest relative error of any entry or direction checked."""
        errors = [b.max_rel_error for b in self.blocks] + [d.rel_error for d in self.directions]
        # NaN (a non-finite gradient) must win over every number.
        return float("nan") if any(np.isnan(errors)) else float(max(errors))

    def table(self, max_mismatches: int = 10) -> str:
        """A plain-text table of the check, one row per block.

        Parameters
        ----------
        max_mismatches : int, default 10
            How many disagreeing entries to list per block; the rest are counted.

        Returns
        -------
        str
            Several lines, without a trailing newline.
        """
        lines = [
            (
                f"Gradient check: D={self.n_features} M={self.n_hidden} K={self.n_classes} "
                f"N={self.n_samples}, activation {self.activation}, "
                + ("sigmoid outputs (binary cross-entropy), " if self.output == "sigmoid" else "")
                + f"E(w) = {self.error:.10g}"
            ),
            (
                f"central differences (PRML eq. 5.69) with eps = {self.eps:.3g}; "
                f"rel. error = |a - n| / max(|a| + |n|, {self.floor:.3g}), tolerance {self.rtol:.3g}"
            ),
            "",
        ]
        header = ("block", "shape", "checked", "max rel. error", "worst entry", "analytic", "numerical", "")
        rows = [header]
        for b in self.blocks:
            w = b.worst
            rows.append(
                (
                    b.name,
                    str(b.shape),
                    f"{b.n_checked}/{b.n_total}",
                    f"{b.max_rel_error:.2e}",
                    w.label,
                    f"{w.analytic:.12g}",
                    f"{w.numerical:.12g}",
                    "ok" if b.passed else f"FAIL ({len(b.mismatches)})",
                )
            )
        if self.directions:
            worst_dir = max(self.directions, key=lambda d: float(np.nan_to_num(d.rel_error, nan=np.inf)))
            failed = sum(not d.passed for d in self.directions)
            rows.append(
                (
                    "v",
                    "random",
                    str(len(self.directions)),
                    f"{worst_dir.rel_error:.2e}",
                    "grad . v",
                    f"{worst_dir.analytic:.12g}",
                    f"{worst_dir.numerical:.12g}",
                    "ok" if failed == 0 else f"FAIL ({failed})",
                )
            )
        widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
        for r in rows:
            lines.append("  ".join(cell.ljust(wd) for cell, wd in zip(r, widths)).rstrip())

        lines.append("")
        if self.passed:
            lines.append(f"PASSED: max rel. error {self.max_rel_error:.2e} <= {self.rtol:.3g}")
        else:
            n_entries = len(self.mismatches)
            n_dirs = sum(not d.passed for d in self.directions)
            lines.append(
                f"FAILED: {n_entries} {'entry' if n_entries == 1 else 'entries'} and "
                f"{n_dirs} {'direction' if n_dirs == 1 else 'directions'} disagree"
            )
            for b in self.blocks:
                for m in b.mismatches[:max_mismatches]:
                    lines.append(
                        f"  {m.label}: analytic {m.analytic:.12g}, numerical {m.numerical:.12g}, "
                        f"rel. error {m.rel_error:.2e}"
                    )
                if len(b.mismatches) > max_mismatches:
                    lines.append(f"  ... and {len(b.mismatches) - max_mismatches} more in {b.name}")
            for n, d in enumerate(self.directions):
                if not d.passed:
                    lines.append(
                        f"  direction {n}: grad . v {d.analytic:.12g}, numerical {d.numerical:.12g}, "
                        f"rel. error {d.rel_error:.2e}"
                    )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()
