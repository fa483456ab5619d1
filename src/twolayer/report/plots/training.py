"""Pictures of a training run: learning curves, the confusion matrix, and the figure that sets them
beside the decision regions or probability contours."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from twolayer.report.plots.canvas import new_figure, to_png
from twolayer.report.plots.regions import draw_decision_regions, draw_probability_contours

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["draw_confusion_matrix", "draw_learning_curves", "report_figure", "report_png"]


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
    steps = np.arange(1, len(loss) + 1)  # epochs or iterations, as ``unit`` says
    ax.plot(steps, np.asarray(loss, dtype=float), color="tab:blue", label="training loss")
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
    fig = new_figure(5.0 * len(panels), 4.5)
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


def report_png(**kwargs: object) -> bytes:
    """:func:`report_figure` rendered to PNG bytes; takes the same keyword arguments."""
    return to_png(report_figure(**kwargs))  # type: ignore[arg-type]
