"""Pictures of a trained network: learning curves, confusion matrix, decision regions.

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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "PNG_SIGNATURE",
    "draw_confusion_matrix",
    "draw_decision_regions",
    "draw_learning_curves",
    "region_grid",
    "report_figure",
    "report_png",
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
    ax: Axes, loss: Sequence[float], accuracy: Sequence[float] | None = None
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

    Returns
    -------
    matplotlib Axes or None
        The twin axis of the accuracy, or ``None`` when there is none.
    """
    epochs = np.arange(1, len(loss) + 1)
    ax.plot(epochs, np.asarray(loss, dtype=float), color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.set_title("Learning curves")
    if accuracy is None or len(accuracy) == 0:
        return None
    twin = ax.twinx()
    twin.plot(np.arange(1, len(accuracy) + 1), np.asarray(accuracy, dtype=float), color="tab:orange",
              label="held-out accuracy")
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
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision regions need two features, got X of shape {X.shape}")
    low, high = X.min(axis=0), X.max(axis=0)
    pad = margin * np.where(high > low, high - low, 1.0)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    xx, yy = np.meshgrid(xs, ys)
    grid = np.column_stack([xx.ravel(), yy.ravel()])
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
    y_index = np.asarray(y_index)
    for k, label in enumerate(classes):
        members = y_index == k
        if members.any():
            ax.scatter(X[members, 0], X[members, 1], s=12, color=colours[k], edgecolors="black",
                       linewidths=0.3, label=str(label))
    ax.legend(loc="best", fontsize="small", title="class")
    names = feature_names if feature_names is not None else ("feature 1", "feature 2")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title("Decision regions")


def report_figure(
    *,
    loss: Sequence[float],
    accuracy: Sequence[float] | None,
    matrix: np.ndarray | None,
    classes: Sequence[object],
    regions: tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, np.ndarray] | None = None,
    feature_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """The figure of a training run: learning curves, confusion matrix, decision regions.

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
    feature_names : sequence of str, optional
        Axis labels for the regions.
    title : str, optional
        A title over the whole figure.

    Returns
    -------
    matplotlib.figure.Figure
        Attached to an Agg canvas, ready for :func:`to_png`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [name for name, present in (("curves", len(loss) > 0), ("matrix", matrix is not None),
                                          ("regions", regions is not None)) if present]
    if not panels:
        raise ValueError("nothing to plot: no learning curves, confusion matrix or decision regions")
    fig = Figure(figsize=(5.0 * len(panels), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        if panel == "curves":
            draw_learning_curves(ax, loss, accuracy)
        elif panel == "matrix":
            assert matrix is not None
            draw_confusion_matrix(ax, matrix, classes)
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
