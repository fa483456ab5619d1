"""Pictures of eigenvalue spectra: histograms on a symmetric-log axis, or the extreme values alone.

The eigenvalues are computed elsewhere (:mod:`twolayer.report.spectrum` and
:mod:`twolayer.curvature`); this module only draws them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from twolayer.report.plots.canvas import SERIES_COLOURS, new_figure, to_png

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["draw_extreme_eigenvalues", "draw_spectrum", "spectrum_figure", "spectrum_png", "symlog_bins"]


def _default_linthresh(values: np.ndarray) -> float:
    # Eight decades below the largest magnitude: small enough that the weight
    # decay's cluster (about alpha) stands apart from the exact zeros, large
    # enough that round-off (about 1e-16 of the largest) stays in the middle.
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    return largest * 1e-8 if largest > 0 else 1.0


def _symlog_axis(ax: Axes, low: float, high: float, linthresh: float, *, max_ticks: int = 9) -> None:
    """A symmetric-log x axis with at most about ``max_ticks`` labelled decades (every one crowds)."""
    ax.set_xscale("symlog", linthresh=linthresh)
    first = math.ceil(math.log10(linthresh))
    top = max(abs(low), abs(high), linthresh)
    decades = list(range(first, math.floor(math.log10(top)) + 1))
    sides = int(low < -linthresh) + int(high > linthresh)
    stride = max(1, math.ceil(len(decades) * max(sides, 1) / max(max_ticks - 1, 1)))
    chosen = decades[::-1][::stride][::-1]  # keep the largest decade
    ticks = [0.0]
    if high > linthresh:
        ticks += [10.0**e for e in chosen]
    if low < -linthresh:
        ticks = [-(10.0**e) for e in reversed(chosen)] + ticks
    ax.set_xticks(ticks)
    ax.set_xticks([], minor=True)


def symlog_bins(values: np.ndarray, linthresh: float, n_bins: int = 60) -> np.ndarray:
    """Histogram bin edges of equal width on matplotlib's symmetric-log scale.

    Parameters
    ----------
    values : ndarray
        The numbers to bin (finite).
    linthresh : float
        The half-width of the linear region around zero, as for
        ``ax.set_xscale("symlog", linthresh=...)``.
    n_bins : int, default 60

    Returns
    -------
    ndarray of shape (n_bins + 1,)
        Increasing edges from ``min(values)`` to ``max(values)`` (widened a
        little around a single value), equally spaced after the symlog
        transform, so that on a symlog axis every bar has the same width.
    """
    from matplotlib.scale import SymmetricalLogTransform

    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError("symlog_bins needs a non-empty array of finite values")
    if not linthresh > 0:
        raise ValueError(f"linthresh must be positive, got {linthresh!r}")
    transform = SymmetricalLogTransform(10, linthresh, 1.0)
    low, high = transform.transform(np.array([values.min(), values.max()]))
    single = not high > low
    if single:  # one distinct value: a little room on each side
        low, high = low - 1e-3 * max(1.0, abs(low)), high + 1e-3 * max(1.0, abs(high))
    edges = np.asarray(transform.inverted().transform(np.linspace(low, high, n_bins + 1)))
    if not single:  # the round trip through the transform may miss the ends by round-off
        edges[0], edges[-1] = values.min(), values.max()
    return edges


def draw_spectrum(
    ax: Axes,
    eigenvalues: np.ndarray,
    *,
    linthresh: float | None = None,
    title: str = "",
    colour: str = "tab:blue",
    n_bins: int = 60,
) -> np.ndarray:
    """Draw a histogram of eigenvalues on a symmetric-log axis, counts on a log axis.

    Parameters
    ----------
    ax : matplotlib Axes
    eigenvalues : ndarray of shape (W,)
        The whole spectrum.
    linthresh : float, optional
        The linear region around zero; by default eight decades below the
        largest magnitude.
    title : str
        The panel's title (the number of eigenvalues is added).
    colour : str
    n_bins : int, default 60

    Returns
    -------
    ndarray of shape (n_bins,)
        The count in each bin, as drawn (they sum to ``W``).
    """
    values = np.asarray(eigenvalues, dtype=float)
    threshold = _default_linthresh(values) if linthresh is None else float(linthresh)
    edges = symlog_bins(values, threshold, n_bins)
    counts = np.histogram(values, bins=edges)[0]
    filled = counts > 0
    ax.bar(
        edges[:-1][filled],
        counts[filled],
        width=np.diff(edges)[filled],
        align="edge",
        color=colour,
        edgecolor="black",
        linewidth=0.3,
    )
    _symlog_axis(ax, float(values.min()), float(values.max()), threshold)
    if counts.max() > 20:
        ax.set_yscale("log")  # a bulk of thousands beside single outliers
    else:
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    negative = int(np.sum(values < 0))
    ax.set_xlabel(f"eigenvalue (symlog, linear within ±{threshold:.1g})")
    ax.set_ylabel("count")
    ax.set_title(f"{title} ({values.size} eigenvalues, {negative} below zero)".strip())
    return np.asarray(counts)


def draw_extreme_eigenvalues(
    ax: Axes,
    extremes: Mapping[str, np.ndarray],
    *,
    linthresh: float | None = None,
) -> None:
    """Draw the known eigenvalues of each matrix as a row of marks on a symmetric-log axis.

    For matrices too large for the whole spectrum: only the ends found by
    Lanczos are known, and the gap between them is left empty on purpose.

    Parameters
    ----------
    ax : matplotlib Axes
    extremes : mapping of str to ndarray
        Each matrix's name and the eigenvalues known (NaN entries, values
        that did not converge, are left out).
    linthresh : float, optional
        As for :func:`draw_spectrum`.
    """
    known = {name: np.asarray(v, dtype=float)[np.isfinite(np.asarray(v, dtype=float))] for name, v in extremes.items()}
    everything = np.concatenate(list(known.values()) or [np.zeros(0)])
    if everything.size == 0:
        raise ValueError("no eigenvalue to draw: none converged")
    threshold = _default_linthresh(everything) if linthresh is None else float(linthresh)
    for row, (name, values) in enumerate(known.items()):
        ax.scatter(
            values,
            np.full(values.shape, row),
            marker="|",
            s=400,
            linewidths=1.5,
            color=SERIES_COLOURS[row % len(SERIES_COLOURS)],
            label=name,
        )
    _symlog_axis(ax, float(everything.min()), float(everything.max()), threshold)
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_yticks(range(len(known)), list(known))
    ax.set_ylim(-0.75, len(known) - 0.25)
    ax.set_xlabel(f"eigenvalue (symlog, linear within ±{threshold:.1g})")
    ax.set_title("Extreme eigenvalues found by Lanczos (the interior is not computed)")


def spectrum_figure(
    spectra: Mapping[str, np.ndarray],
    *,
    full: bool,
    linthresh: float | None = None,
    title: str | None = None,
) -> Figure:
    """The spectra of several symmetric matrices, side by side.

    Parameters
    ----------
    spectra : mapping of str to ndarray
        Each matrix's name (``"Hessian"``, ``"Gauss-Newton"``) and its
        eigenvalues: the whole spectrum when ``full``, else the extreme
        values known (NaN for any that did not converge).
    full : bool
        A histogram per matrix (:func:`draw_spectrum`) when True; one panel
        of the extreme values (:func:`draw_extreme_eigenvalues`) when False.
    linthresh : float, optional
        The same linear region for every panel; by default eight decades
        below the largest magnitude of all the matrices.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Attached to an Agg canvas, ready for :func:`to_png`.
    """
    if not spectra:
        raise ValueError("no spectrum to draw")
    finite = [np.asarray(v, dtype=float) for v in spectra.values()]
    finite = [v[np.isfinite(v)] for v in finite]
    if linthresh is None:
        linthresh = _default_linthresh(np.concatenate(finite))
    if full:
        fig = new_figure(5.5 * len(spectra), 4.5)
        axes = fig.subplots(1, len(spectra), squeeze=False)[0]
        for k, (ax, (name, values)) in enumerate(zip(axes, spectra.items())):
            draw_spectrum(ax, values, linthresh=linthresh, title=name, colour=SERIES_COLOURS[k % len(SERIES_COLOURS)])
    else:
        fig = new_figure(9.0, 1.2 + 0.9 * len(spectra))
        draw_extreme_eigenvalues(fig.add_subplot(), spectra, linthresh=linthresh)
    if title:
        fig.suptitle(title)
    return fig


def spectrum_png(spectra: Mapping[str, np.ndarray], **kwargs: object) -> bytes:
    """:func:`spectrum_figure` rendered to PNG bytes; takes the same arguments."""
    return to_png(spectrum_figure(spectra, **kwargs))  # type: ignore[arg-type]
