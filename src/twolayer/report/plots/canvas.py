"""What every figure here shares: a figure on an Agg canvas, its PNG bytes, the colours of a series.

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

__all__ = ["PNG_SIGNATURE", "SERIES_COLOURS", "class_colours", "new_figure", "to_png"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

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


def to_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes (nothing is written: the caller chooses how)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
