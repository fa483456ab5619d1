"""What every figure here shares: a figure on an Agg canvas, its PNG, PDF or SVG bytes, the colours of a series.

Figures are drawn with matplotlib's object-oriented API on a
:class:`matplotlib.figure.Figure` rendered by the Agg canvas: no ``pyplot``,
so no global figure state and no window, whatever backend the user's
matplotlib is configured with.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FIGURE_FORMATS", "PNG_SIGNATURE", "SERIES_COLOURS", "class_colours", "new_figure", "render", "to_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: The file formats a figure is rendered to: a raster for screens, two vector formats for papers.
#: Each is drawn by a backend that ships with matplotlib, so none needs more than the ``plot`` extra.
FIGURE_FORMATS: tuple[str, ...] = ("png", "pdf", "svg")

#: The colours of curves or histograms drawn side by side, in order (then again from the first).
SERIES_COLOURS: tuple[str, ...] = ("tab:blue", "tab:orange", "tab:green", "tab:red")

# Class k is drawn in colour k of "tab10" (then "tab20" beyond ten classes),
# the same colour in the regions as in the points on top of them.
_MAX_CLASSES_TAB10 = 10


def class_colours(n_classes: int) -> list[tuple[float, float, float, float]]:
    """One RGBA colour per class index, the same in every picture."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n_classes <= _MAX_CLASSES_TAB10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(n_classes)]


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` by ``height`` inches, constrained layout, on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def render(fig: Figure, fmt: str = "png", *, dpi: int = 100) -> bytes:
    """Render a figure to the bytes of a PNG, PDF or SVG file (nothing is written: the caller chooses how).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, as :func:`new_figure` makes it.
    fmt : {"png", "pdf", "svg"}
        The file format (one of :data:`FIGURE_FORMATS`).
    dpi : int
        Resolution of the PNG; the vector formats place their raster parts at it too.

    Returns
    -------
    bytes
        The whole file.
    """
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FIGURE_FORMATS)}, got {fmt!r}")
    from matplotlib import rc_context

    buffer = io.BytesIO()
    # The same figure gives the same bytes: the PDF and SVG backends otherwise stamp the time of
    # drawing, and the SVG one names its shared paths by random ids unless given a salt.
    metadata = {"png": None, "pdf": {"CreationDate": None}, "svg": {"Date": None}}[fmt]
    with rc_context({"svg.hashsalt": "twolayer"}):
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata)
    return buffer.getvalue()


def to_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (nothing is written: the caller chooses how)."""
    return render(fig, "png", dpi=dpi)
