"""Pictures of calibration: the reliability diagram above the distribution of the confidence.

The numbers come from :mod:`twolayer.report.calibration`; any object with the
attributes of :class:`ReliabilityLike` can be drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import numpy as np

from twolayer.report.plots.canvas import SERIES_COLOURS, new_figure, to_png

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ReliabilityLike", "draw_reliability_diagram", "reliability_figure", "reliability_png"]


class ReliabilityLike(Protocol):
    """What a reliability diagram needs (:class:`twolayer.report.calibration.ReliabilityCurve` has it)."""

    @property
    def bin_edges(self) -> np.ndarray: ...  # (B + 1,)
    @property
    def confidence(self) -> np.ndarray: ...  # (B,), NaN where a bin is empty
    @property
    def accuracy(self) -> np.ndarray: ...  # (B,), NaN where a bin is empty
    @property
    def count(self) -> np.ndarray: ...  # (B,)


def draw_reliability_diagram(ax: Axes, curves: Mapping[str, ReliabilityLike], *, counts_ax: Axes | None = None) -> None:
    """Draw accuracy against confidence per bin for each curve, and the diagonal of perfect calibration.

    Parameters
    ----------
    ax : matplotlib Axes
    curves : mapping of str to reliability curves
        Each label (its legend entry) and its bins. Empty bins are left out;
        a point below the diagonal is over-confident.
    counts_ax : matplotlib Axes, optional
        Where to draw the number of patterns in each bin (the distribution of
        the confidence), as steps over the bin edges.

    References
    ----------
    M. H. DeGroot and S. E. Fienberg, *The Statistician* 32 (1983); C. Guo et
    al., "On calibration of modern neural networks", ICML 2017, Fig. 1.
    """
    if not curves:
        raise ValueError("no reliability curve to draw")
    ax.plot([0.0, 1.0], [0.0, 1.0], color="grey", linestyle="--", linewidth=1.0, label="perfectly calibrated")
    for k, (label, curve) in enumerate(curves.items()):
        filled = np.asarray(curve.count) > 0
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        ax.plot(
            np.asarray(curve.confidence)[filled],
            np.asarray(curve.accuracy)[filled],
            marker="o",
            markersize=4,
            color=colour,
            label=label,
        )
        if counts_ax is not None:
            counts_ax.stairs(np.asarray(curve.count), np.asarray(curve.bin_edges), color=colour, label=label)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("confidence (largest probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    ax.legend(loc="upper left", fontsize="small")
    if counts_ax is not None:
        counts_ax.set_xlim(0.0, 1.0)
        counts_ax.set_yscale("log")
        counts_ax.set_xlabel("confidence (largest probability)")
        counts_ax.set_ylabel("patterns")


def reliability_figure(curves: Mapping[str, ReliabilityLike], *, title: str | None = None) -> Figure:
    """A reliability diagram above the distribution of the confidence.

    Parameters
    ----------
    curves : mapping of str to reliability curves
        As for :func:`draw_reliability_diagram`.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Attached to an Agg canvas, ready for :func:`to_png`.
    """
    fig = new_figure(5.5, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    draw_reliability_diagram(top, curves, counts_ax=bottom)
    top.set_xlabel("")
    if title:
        fig.suptitle(title)
    return fig


def reliability_png(curves: Mapping[str, ReliabilityLike], **kwargs: object) -> bytes:
    """:func:`reliability_figure` rendered to PNG bytes; takes the same arguments."""
    return to_png(reliability_figure(curves, **kwargs))  # type: ignore[arg-type]
