"""Tests for twolayer.report.plots: what is drawn is the data given, and the PNGs are valid images."""

from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="matplotlib is the optional 'plot' extra")

import matplotlib.image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

from twolayer.report import plots


def axes() -> tuple[Figure, object]:
    fig = Figure()
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(plots.PNG_SIGNATURE)
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_learning_curves_draw_the_given_numbers() -> None:
    _, ax = axes()
    loss = [2.0, 1.0, 0.5, 0.4]
    accuracy = [0.3, 0.6, 0.8, 0.9]
    twin = plots.draw_learning_curves(ax, loss, accuracy)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(line.get_ydata(), loss)
    assert twin is not None
    (acc_line,) = twin.get_lines()
    np.testing.assert_array_equal(acc_line.get_ydata(), accuracy)
    _, ax2 = axes()
    assert plots.draw_learning_curves(ax2, loss, None) is None


def test_confusion_matrix_writes_each_count_in_its_cell() -> None:
    _, ax = axes()
    matrix = np.array([[5, 1, 0], [2, 7, 0], [0, 3, 11]])
    plots.draw_confusion_matrix(ax, matrix, ["a", "b", "c"])
    written = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text()) for t in ax.texts}
    assert written == {(i, j): int(matrix[i, j]) for i in range(3) for j in range(3)}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        plots.draw_confusion_matrix(ax, matrix, ["a", "b"])


def test_region_grid_follows_the_classifier() -> None:
    # A known rule: class 1 right of x = 0.3, class 0 left of it.
    X = np.array([[-1.0, -2.0], [1.0, 2.0]])
    xx, yy, index = plots.region_grid(lambda P: (P[:, 0] > 0.3).astype(int), X, resolution=31, margin=0.0)
    assert xx.shape == yy.shape == index.shape == (31, 31)
    assert xx.min() == -1.0 and xx.max() == 1.0 and yy.min() == -2.0 and yy.max() == 2.0
    np.testing.assert_array_equal(index, (xx > 0.3).astype(int))
    with pytest.raises(ValueError, match="two features"):
        plots.region_grid(lambda P: P[:, 0], np.zeros((3, 3)))


def test_decision_regions_draw_every_class() -> None:
    _, ax = axes()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y_index = (X[:, 1] > 0).astype(int)
    plots.draw_decision_regions(
        ax, lambda P: (P[:, 1] > 0).astype(int), X, y_index, ["low", "high"], feature_names=["u", "v"], resolution=20
    )
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["low", "high"]
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatters) == 2
    points = np.vstack([c.get_offsets() for c in scatters])
    assert sorted(map(tuple, points)) == sorted(map(tuple, X))
    assert ax.get_xlabel() == "u" and ax.get_ylabel() == "v"


@pytest.mark.parametrize("with_regions", [False, True])
def test_report_png_is_a_valid_image(with_regions: bool) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 2))
    regions = (lambda P: (P[:, 0] > 0).astype(int), X, (X[:, 0] > 0).astype(int)) if with_regions else None
    fig = plots.report_figure(
        loss=[1.0, 0.5],
        accuracy=[0.5, 0.9],
        matrix=np.array([[3, 1], [0, 4]]),
        classes=[0, 1],
        regions=regions,
        title="test",
    )
    n_panels = 3 if with_regions else 2
    assert len([ax for ax in fig.axes if ax.get_title()]) == n_panels
    image = decode(plots.to_png(fig))
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[1] == 100 * 5 * n_panels  # 5 inches per panel at 100 dpi
    assert image.std() > 0  # something was drawn


def test_report_needs_something_to_draw() -> None:
    with pytest.raises(ValueError, match="nothing to plot"):
        plots.report_figure(loss=[], accuracy=None, matrix=None, classes=[0, 1])
    png = plots.report_png(loss=[], accuracy=None, matrix=np.eye(2, dtype=int), classes=["x", "y"])
    assert decode(png).shape[1] == 500


# --------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------


def test_symlog_bins_are_geometric_beyond_the_linear_region() -> None:
    # Beyond linthresh the symlog scale is log10, so equal widths there are
    # equal ratios: edges from 1 to 1e4 in 8 bins are 10**(k/2).
    edges = plots.symlog_bins(np.array([1.0, 1e4, 30.0]), linthresh=1e-3, n_bins=8)
    np.testing.assert_allclose(edges, 10.0 ** (np.arange(9) / 2), rtol=1e-12)
    # Symmetric values give edges symmetric about zero, through the linear part.
    edges = plots.symlog_bins(np.array([-1e2, 1e2]), linthresh=1.0, n_bins=6)
    np.testing.assert_allclose(edges, -edges[::-1], atol=1e-12)
    assert np.all(np.diff(edges) > 0) and edges[0] == -1e2 and edges[-1] == 1e2
    assert abs(edges[3]) < 1e-12  # an even number of bins puts an edge at zero
    # A single value still gets bins around it.
    single = plots.symlog_bins(np.array([5.0, 5.0]), linthresh=1.0, n_bins=4)
    assert single[0] <= 5.0 <= single[-1] and np.all(np.diff(single) > 0)
    with pytest.raises(ValueError, match="finite"):
        plots.symlog_bins(np.array([1.0, np.nan]), linthresh=1.0)
    with pytest.raises(ValueError, match="linthresh"):
        plots.symlog_bins(np.array([1.0]), linthresh=0.0)


def test_spectrum_histogram_counts_every_eigenvalue() -> None:
    _, ax = axes()
    rng = np.random.default_rng(2)
    values = np.concatenate([-np.exp(rng.normal(size=30)), np.zeros(3), np.exp(rng.normal(2, 3, size=400))])
    counts = plots.draw_spectrum(ax, values, linthresh=1e-6, title="H", n_bins=40)
    assert counts.sum() == values.size
    edges = plots.symlog_bins(values, 1e-6, 40)
    np.testing.assert_array_equal(counts, np.histogram(values, bins=edges)[0])
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == sorted(c for c in counts if c > 0)  # one bar per filled bin, as tall as its count
    assert ax.get_xscale() == "symlog" and ax.get_yscale() == "log"  # hundreds beside ones
    assert "433 eigenvalues, 30 below zero" in ax.get_title()


def test_extreme_eigenvalues_leave_out_what_did_not_converge() -> None:
    _, ax = axes()
    plots.draw_extreme_eigenvalues(ax, {"A": np.array([5.0, np.nan, -2.0]), "B": np.array([1.0, 0.5])})
    offsets = [c.get_offsets() for c in ax.collections]
    assert sorted(offsets[0][:, 0]) == [-2.0, 5.0] and set(offsets[0][:, 1]) == {0}
    assert sorted(offsets[1][:, 0]) == [0.5, 1.0] and set(offsets[1][:, 1]) == {1}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B"]
    with pytest.raises(ValueError, match="none converged"):
        plots.draw_extreme_eigenvalues(ax, {"A": np.array([np.nan])})


@pytest.mark.parametrize("full", [True, False])
def test_spectrum_png_is_a_valid_image(full: bool) -> None:
    rng = np.random.default_rng(3)
    spectra = {"Hessian": rng.normal(size=50) * 10.0, "Gauss-Newton": np.abs(rng.normal(size=50))}
    fig = plots.spectrum_figure(spectra, full=full, title="spectra")
    assert len([ax for ax in fig.axes if ax.get_title()]) == (2 if full else 1)
    image = decode(plots.spectrum_png(spectra, full=full))
    assert image.ndim == 3 and image.std() > 0
    with pytest.raises(ValueError, match="no spectrum"):
        plots.spectrum_figure({}, full=full)


# --------------------------------------------------------------------------
# Probability contours and reliability diagrams
# --------------------------------------------------------------------------


def logistic_proba(P: np.ndarray) -> np.ndarray:
    """A known two-class rule: p(class 1 | x) = sigmoid(2 x_1 - x_2)."""
    p1 = 1.0 / (1.0 + np.exp(-(2.0 * P[:, 0] - P[:, 1])))
    return np.column_stack([1.0 - p1, p1])


def test_probability_contours_follow_the_given_probabilities() -> None:
    _, ax = axes()
    X = np.array([[-2.0, -1.0], [2.0, 1.0], [0.0, 0.5]])
    field = plots.draw_probability_contours(
        ax, logistic_proba, X, np.array([0, 1, 1]), ["a", "b"], title="MAP", resolution=25
    )
    xx, yy, proba = plots.probability_grid(logistic_proba, X, resolution=25)
    np.testing.assert_allclose(field, 1.0 / (1.0 + np.exp(-(2.0 * xx - yy))), rtol=1e-12)
    np.testing.assert_array_equal(proba[:, :, 1], field)
    assert "MAP" in ax.get_title() and "p(b | x)" in ax.get_title()
    levels = [float(t.get_text()) for t in ax.texts]  # the contour labels
    assert set(levels) <= set(plots.TWO_CLASS_LEVELS) and 0.5 in levels
    # More classes: contours of the largest probability.
    _, ax3 = axes()

    def three(P: np.ndarray) -> np.ndarray:
        logits = np.column_stack([P[:, 0], P[:, 1], -P[:, 0]])
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    field3 = plots.draw_probability_contours(ax3, three, X, np.array([0, 1, 2]), [0, 1, 2], resolution=20)
    assert field3.min() >= 1 / 3 - 1e-12 and "largest probability" in ax3.get_title()
    with pytest.raises(ValueError, match="3 classes"):
        plots.draw_probability_contours(ax3, logistic_proba, X, np.array([0, 1, 2]), [0, 1, 2], resolution=5)


def test_report_with_contours_has_a_panel_per_predictor() -> None:
    X = np.random.default_rng(4).normal(size=(20, 2))
    predictors = {"MAP network": logistic_proba, "moderated": lambda P: 0.5 + 0.5 * (logistic_proba(P) - 0.5)}
    fig = plots.report_figure(
        loss=[1.0, 0.5], accuracy=None, matrix=None, classes=[0, 1], contours=(predictors, X, (X[:, 0] > 0).astype(int))
    )
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "Learning curves" and titles[1].startswith("MAP network") and titles[2].startswith("moderated")


class Curve:
    def __init__(self, confidence: list[float], accuracy: list[float], count: list[int]) -> None:
        self.bin_edges = np.linspace(0.0, 1.0, len(count) + 1)
        self.confidence, self.accuracy, self.count = np.array(confidence), np.array(accuracy), np.array(count)


def test_reliability_diagram_draws_the_filled_bins() -> None:
    fig = Figure()
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1)
    curve = Curve([0.1, np.nan, 0.6, 0.9], [0.0, np.nan, 0.5, 1.0], [3, 0, 2, 5])
    plots.draw_reliability_diagram(top, {"model": curve}, counts_ax=bottom)
    diagonal, line = top.get_lines()
    np.testing.assert_array_equal(diagonal.get_xdata(), [0.0, 1.0])
    np.testing.assert_array_equal(line.get_xdata(), [0.1, 0.6, 0.9])  # the empty bin is left out
    np.testing.assert_array_equal(line.get_ydata(), [0.0, 0.5, 1.0])
    (steps,) = bottom.patches
    np.testing.assert_array_equal(steps.get_data().values, [3, 0, 2, 5])
    with pytest.raises(ValueError, match="no reliability curve"):
        plots.draw_reliability_diagram(top, {})
    image = decode(plots.reliability_png({"a": curve, "b": Curve([0.5] * 4, [0.5] * 4, [1] * 4)}, title="t"))
    assert image.ndim == 3 and image.std() > 0


def test_learning_curves_name_their_step() -> None:
    _, ax = axes()
    plots.draw_learning_curves(ax, [1.0, 0.5], unit="iteration")
    assert ax.get_xlabel() == "iteration"
    fig = plots.report_figure(loss=[1.0], accuracy=None, matrix=None, classes=[0, 1], unit="L-BFGS iteration")
    assert fig.axes[0].get_xlabel() == "L-BFGS iteration"


def test_every_picture_is_offered_by_the_plots_package() -> None:
    # One module per kind of picture; `from twolayer.report import plots` then `plots.X` reaches them all.
    import importlib

    seen = set()
    for name in ("canvas", "regions", "reliability", "spectra", "training"):
        module = importlib.import_module(f"twolayer.report.plots.{name}")
        for public in module.__all__:
            if hasattr(plots, public):
                assert getattr(plots, public) is getattr(module, public)
                seen.add(public)
    assert set(plots.__all__) <= seen


def test_the_plots_import_nothing_else_of_twolayer() -> None:
    # Drawing is kept apart from the mathematics: a picture takes numbers and functions.
    import ast
    from pathlib import Path

    folder = Path(plots.__file__).parent
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("twolayer"):
                assert node.module.startswith("twolayer.report.plots"), (path.name, node.module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("twolayer") for a in node.names), path.name


@pytest.mark.parametrize(("fmt", "signature"), [("png", b"\x89PNG\r\n\x1a\n"), ("pdf", b"%PDF-"), ("svg", b"<?xml")])
def test_render_writes_the_format_asked_for_the_same_bytes_each_time(fmt: str, signature: bytes) -> None:
    def draw() -> bytes:
        fig = plots.report_figure(loss=[1.0, 0.5, 0.25], accuracy=None, matrix=np.eye(2, dtype=int), classes=["x", "y"])
        return plots.render(fig, fmt)

    first = draw()
    assert first.startswith(signature)
    if fmt == "svg":
        assert b"<svg" in first
    # No time stamp and no random ids: a plot of the same run is the same file.
    assert draw() == first


def test_render_refuses_other_formats() -> None:
    fig = plots.report_figure(loss=[1.0], accuracy=None, matrix=None, classes=["x", "y"])
    with pytest.raises(ValueError, match="png, pdf, svg"):
        plots.render(fig, "jpg")
