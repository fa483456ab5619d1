"""Pictures of a classifier over the plane of two-feature data: decision regions and probability contours.

The model enters only as a function from an array of points, shape (P, 2), to
class indices or to class probabilities.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from twolayer.report.plots.canvas import class_colours

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "TOP_CLASS_LEVELS",
    "TWO_CLASS_LEVELS",
    "draw_decision_regions",
    "draw_probability_contours",
    "probability_grid",
    "region_grid",
]


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
    colours = class_colours(K)
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
    colours = class_colours(K)
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
