"""Pictures of a trained network: learning curves, confusion matrix, decision regions, spectra, calibration.

Figures are drawn with matplotlib's object-oriented API on a
:class:`matplotlib.figure.Figure` rendered by the Agg canvas: no ``pyplot``,
so no global figure state and no window, whatever backend the user's
matplotlib is configured with. matplotlib is an optional dependency (the
``plot`` extra); the command line imports this module only when a plot is
asked for, so that it starts fast.

This module draws and nothing else: it imports nothing of ``twolayer``, and
the model enters only as a function from features to class indices.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "PNG_SIGNATURE",
    "ReliabilityLike",
    "draw_confusion_matrix",
    "draw_decision_regions",
    "draw_extreme_eigenvalues",
    "draw_learning_curves",
    "draw_probability_contours",
    "draw_reliability_diagram",
    "draw_spectrum",
    "probability_grid",
    "region_grid",
    "reliability_figure",
    "reliability_png",
    "report_figure",
    "report_png",
    "spectrum_figure",
    "spectrum_png",
    "symlog_bins",
    "to_png",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Class k is drawn in colour k of "tab10" (then "tab20" beyond ten classes),
# the same colour in the regions as in the points on top of them.
_MAX_CLASSES_TAB10 = 10


def _class_colours(n_classes: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n_classes <= _MAX_CLASSES_TAB10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(n_classes)]


def draw_learning_curves(
    ax: Axes, loss: Sequence[float], accuracy: Sequence[float] | None = None, *, unit: str = "epoch"
) -> Axes | None:
    """Draw the training loss per epoch and, on a second scale, the held-out accuracy.

    Parameters
    ----------
    ax : matplotlib Axes
        Where to draw the loss (left scale).
    loss : sequence of float
        The training loss after each epoch (``loss_curve_``).
    accuracy : sequence of float, optional
        The held-out accuracy after each epoch, drawn on a twin axis.
    unit : str, default "epoch"
        What one step of the curve is (the label of the horizontal axis):
        "iteration" for the whole-batch solvers.

    Returns
    -------
    matplotlib Axes or None
        The twin axis of the accuracy, or ``None`` when there is none.
    """
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, np.asarray(loss, dtype=float), color="tab:blue", label="training loss")
    ax.set_xlabel(unit)
    ax.set_ylabel("training loss", color="tab:blue")
    ax.set_title("Learning curves")
    if accuracy is None or len(accuracy) == 0:
        return None
    twin = ax.twinx()
    twin.plot(
        np.arange(1, len(accuracy) + 1),
        np.asarray(accuracy, dtype=float),
        color="tab:orange",
        label="held-out accuracy",
    )
    twin.set_ylabel("held-out accuracy", color="tab:orange")
    twin.set_ylim(0.0, 1.02)
    return twin


def draw_confusion_matrix(ax: Axes, matrix: np.ndarray, classes: Sequence[object]) -> None:
    """Draw a confusion matrix with its counts written in the cells.

    Parameters
    ----------
    ax : matplotlib Axes
    matrix : ndarray of shape (K, K)
        ``matrix[i, j]`` counts patterns of true class ``i`` predicted as ``j``
        (scikit-learn's convention).
    classes : sequence
        The ``K`` class labels, in the order of the rows.
    """
    matrix = np.asarray(matrix)
    K = len(classes)
    if matrix.shape != (K, K):
        raise ValueError(f"matrix must have shape ({K}, {K}) for {K} classes, got {matrix.shape}")
    ax.imshow(matrix, cmap="Blues", vmin=0)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(K):
        for j in range(K):
            # white on the dark cells so that every count stays legible
            colour = "white" if matrix[i, j] > threshold else "black"
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", color=colour, fontsize="small")
    labels = [str(c) for c in classes]
    ax.set_xticks(range(K), labels, rotation=45 if max(map(len, labels)) > 3 else 0, ha="right")
    ax.set_yticks(range(K), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix")


def _plane(X: np.ndarray, resolution: int, margin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A grid over two-feature data: its coordinates and its points as rows."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision regions need two features, got X of shape {X.shape}")
    low, high = X.min(axis=0), X.max(axis=0)
    pad = margin * np.where(high > low, high - low, 1.0)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def probability_grid(
    predict_proba: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    *,
    resolution: int = 100,
    margin: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate class probabilities on a grid that covers two-feature data.

    Parameters
    ----------
    predict_proba : callable
        Maps an array of shape (P, 2) to probabilities of shape (P, K).
    X : ndarray of shape (N, 2)
    resolution, margin
        As for :func:`region_grid`.

    Returns
    -------
    xx, yy : ndarray of shape (resolution, resolution)
    proba : ndarray of shape (resolution, resolution, K)
    """
    xx, yy, grid = _plane(X, resolution, margin)
    proba = np.asarray(predict_proba(grid), dtype=float)
    if proba.ndim != 2 or proba.shape[0] != grid.shape[0]:
        raise ValueError(f"predict_proba must return shape ({grid.shape[0]}, K), got {proba.shape}")
    return xx, yy, proba.reshape(*xx.shape, proba.shape[1])


def region_grid(
    predict_index: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    *,
    resolution: int = 200,
    margin: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a classifier on a grid that covers two-feature data.

    Parameters
    ----------
    predict_index : callable
        Maps an array of shape (P, 2) to the predicted class index of each row.
    X : ndarray of shape (N, 2)
        The data the grid must cover.
    resolution : int, default 200
        Grid points along each axis.
    margin : float, default 0.1
        Extra room on each side, as a fraction of the data's range.

    Returns
    -------
    xx, yy : ndarray of shape (resolution, resolution)
        The grid coordinates (``numpy.meshgrid``).
    index : ndarray of shape (resolution, resolution), int
        The predicted class index at each grid point.
    """
    xx, yy, grid = _plane(X, resolution, margin)
    index = np.asarray(predict_index(grid)).reshape(xx.shape)
    return xx, yy, index


def draw_decision_regions(
    ax: Axes,
    predict_index: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y_index: np.ndarray,
    classes: Sequence[object],
    *,
    feature_names: Sequence[str] | None = None,
    resolution: int = 200,
) -> None:
    """Shade the plane by predicted class and draw the data on top.

    Parameters
    ----------
    ax : matplotlib Axes
    predict_index : callable
        Maps an array of shape (P, 2) to class indices in ``range(len(classes))``.
    X : ndarray of shape (N, 2)
        The data, in the units the classifier takes.
    y_index : ndarray of shape (N,), int
        The true class index of each pattern.
    classes : sequence
        The class labels, for the legend.
    feature_names : sequence of two str, optional
        Axis labels.
    resolution : int, default 200
        Grid points along each axis.
    """
    from matplotlib.colors import ListedColormap

    K = len(classes)
    colours = _class_colours(K)
    xx, yy, index = region_grid(predict_index, X, resolution=resolution)
    # One flat colour per class: levels at the half-integers separate the indices.
    ax.contourf(xx, yy, index, levels=np.arange(K + 1) - 0.5, cmap=ListedColormap(colours), alpha=0.3)
    _scatter_classes(ax, X, y_index, classes, colours)
    ax.legend(loc="best", fontsize="small", title="class")
    names = feature_names if feature_names is not None else ("feature 1", "feature 2")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("Decision regions")


def _scatter_classes(
    ax: Axes,
    X: np.ndarray,
    y_index: np.ndarray,
    classes: Sequence[object],
    colours: Sequence[tuple[float, float, float, float]],
) -> None:
    y_index = np.asarray(y_index)
    for k, label in enumerate(classes):
        members = y_index == k
        if members.any():
            ax.scatter(
                X[members, 0],
                X[members, 1],
                s=12,
                color=colours[k],
                edgecolors="black",
                linewidths=0.3,
                label=str(label),
            )


#: PRML Fig. 5.23's levels of p(C_2 | x) for two classes.
TWO_CLASS_LEVELS: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9)
#: Levels of the largest probability for more classes (below 1/K it cannot fall).
TOP_CLASS_LEVELS: tuple[float, ...] = (0.5, 0.7, 0.9)


def draw_probability_contours(
    ax: Axes,
    predict_proba: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y_index: np.ndarray,
    classes: Sequence[object],
    *,
    feature_names: Sequence[str] | None = None,
    title: str = "",
    resolution: int = 100,
) -> np.ndarray:
    """Draw contours of the predicted probabilities over two-feature data, the data on top.

    With two classes the contours are those of :math:`p(C_2 \\mid x)` at 0.1,
    0.3, 0.5, 0.7 and 0.9, the decision boundary 0.5 drawn thicker (PRML Fig.
    5.23); with more, those of the largest probability at 0.5, 0.7 and 0.9,
    over the regions of the predicted class.

    Parameters
    ----------
    ax : matplotlib Axes
    predict_proba : callable
        Maps an array of shape (P, 2) to probabilities of shape (P, K).
    X : ndarray of shape (N, 2)
    y_index : ndarray of shape (N,), int
        The true class index of each pattern.
    classes : sequence
        The ``K`` class labels, for the legend.
    feature_names : sequence of two str, optional
    title : str
    resolution : int, default 100

    Returns
    -------
    ndarray of shape (resolution, resolution)
        The gridded quantity whose contours are drawn (:math:`p(C_2 \\mid x)`
        or the largest probability).
    """
    from matplotlib.colors import ListedColormap

    K = len(classes)
    colours = _class_colours(K)
    xx, yy, proba = probability_grid(predict_proba, X, resolution=resolution)
    if proba.shape[2] != K:
        raise ValueError(f"predict_proba returned {proba.shape[2]} columns for {K} classes")
    index = np.argmax(proba, axis=2)
    ax.contourf(xx, yy, index, levels=np.arange(K + 1) - 0.5, cmap=ListedColormap(colours), alpha=0.15)
    if K == 2:
        field, levels = proba[:, :, 1], TWO_CLASS_LEVELS
        what = f"p({classes[1]} | x)"
    else:
        field, levels = proba.max(axis=2), TOP_CLASS_LEVELS
        what = "largest probability"
    widths = [2.0 if level == 0.5 else 0.8 for level in levels]
    lines = ax.contour(xx, yy, field, levels=list(levels), colors="black", linewidths=widths)
    ax.clabel(lines, fmt="%.1f", fontsize="x-small")
    _scatter_classes(ax, np.asarray(X, dtype=float), y_index, classes, colours)
    ax.legend(loc="best", fontsize="small", title="class")
    names = feature_names if feature_names is not None else ("feature 1", "feature 2")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(f"{title}: contours of {what}" if title else f"Contours of {what}")
    return np.asarray(field)


def report_figure(
    *,
    loss: Sequence[float],
    accuracy: Sequence[float] | None,
    matrix: np.ndarray | None,
    classes: Sequence[object],
    regions: tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, np.ndarray] | None = None,
    contours: tuple[Mapping[str, Callable[[np.ndarray], np.ndarray]], np.ndarray, np.ndarray] | None = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
    unit: str = "epoch",
) -> Figure:
    """The figure of a training run: learning curves, confusion matrix, decision regions or contours.

    Parameters
    ----------
    loss, accuracy : sequences of float
        As for :func:`draw_learning_curves`; an empty ``loss`` leaves the panel out.
    matrix : ndarray of shape (K, K) or None
        The confusion matrix; ``None`` leaves the panel out.
    classes : sequence
        The class labels.
    regions : (predict_index, X, y_index), optional
        For two-feature data: the panel of decision regions.
    contours : (predictors, X, y_index), optional
        For two-feature data: one panel of probability contours
        (:func:`draw_probability_contours`) per entry of ``predictors``, a
        mapping from a panel title to a ``predict_proba`` function (a
        Bayesian network's MAP and moderated predictions, side by side).
    feature_names : sequence of str, optional
        Axis labels for the regions.
    title : str, optional
        A title over the whole figure.
    unit : str, default "epoch"
        The step of the learning curves (see :func:`draw_learning_curves`).

    Returns
    -------
    matplotlib.figure.Figure
        Attached to an Agg canvas, ready for :func:`to_png`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [
        name
        for name, present in (
            ("curves", len(loss) > 0),
            ("matrix", matrix is not None),
            ("regions", regions is not None),
        )
        if present
    ]
    if contours is not None:
        panels += [f"contours:{name}" for name in contours[0]]
    if not panels:
        raise ValueError("nothing to plot: no learning curves, confusion matrix or decision regions")
    fig = Figure(figsize=(5.0 * len(panels), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        if panel == "curves":
            draw_learning_curves(ax, loss, accuracy, unit=unit)
        elif panel == "matrix":
            assert matrix is not None
            draw_confusion_matrix(ax, matrix, classes)
        elif panel.startswith("contours:"):
            assert contours is not None
            predictors, X, y_index = contours
            name = panel.removeprefix("contours:")
            draw_probability_contours(
                ax, predictors[name], X, y_index, classes, feature_names=feature_names, title=name
            )
        else:
            assert regions is not None
            predict_index, X, y_index = regions
            draw_decision_regions(ax, predict_index, X, y_index, classes, feature_names=feature_names)
    if title:
        fig.suptitle(title)
    return fig


def to_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (nothing is written: the caller chooses how)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def report_png(**kwargs: object) -> bytes:
    """:func:`report_figure` rendered to PNG bytes; takes the same keyword arguments."""
    return to_png(report_figure(**kwargs))  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Eigenvalue spectra
# --------------------------------------------------------------------------


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
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for row, (name, values) in enumerate(known.items()):
        ax.scatter(
            values,
            np.full(values.shape, row),
            marker="|",
            s=400,
            linewidths=1.5,
            color=colours[row % len(colours)],
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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not spectra:
        raise ValueError("no spectrum to draw")
    finite = [np.asarray(v, dtype=float) for v in spectra.values()]
    finite = [v[np.isfinite(v)] for v in finite]
    if linthresh is None:
        linthresh = _default_linthresh(np.concatenate(finite))
    if full:
        fig = Figure(figsize=(5.5 * len(spectra), 4.5), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(spectra), squeeze=False)[0]
        colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
        for k, (ax, (name, values)) in enumerate(zip(axes, spectra.items())):
            draw_spectrum(ax, values, linthresh=linthresh, title=name, colour=colours[k % len(colours)])
    else:
        fig = Figure(figsize=(9.0, 1.2 + 0.9 * len(spectra)), layout="constrained")
        FigureCanvasAgg(fig)
        draw_extreme_eigenvalues(fig.add_subplot(), spectra, linthresh=linthresh)
    if title:
        fig.suptitle(title)
    return fig


def spectrum_png(spectra: Mapping[str, np.ndarray], **kwargs: object) -> bytes:
    """:func:`spectrum_figure` rendered to PNG bytes; takes the same arguments."""
    return to_png(spectrum_figure(spectra, **kwargs))  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------


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
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for k, (label, curve) in enumerate(curves.items()):
        filled = np.asarray(curve.count) > 0
        colour = colours[k % len(colours)]
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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    draw_reliability_diagram(top, curves, counts_ax=bottom)
    top.set_xlabel("")
    if title:
        fig.suptitle(title)
    return fig


def reliability_png(curves: Mapping[str, ReliabilityLike], **kwargs: object) -> bytes:
    """:func:`reliability_figure` rendered to PNG bytes; takes the same arguments."""
    return to_png(reliability_figure(curves, **kwargs))  # type: ignore[arg-type]
