"""Pictures of a trained network: learning curves, confusion matrix, decision regions, spectra, calibration.

One module per kind of picture, every name offered here as well:

* :mod:`~twolayer.report.plots.training`: learning curves, the confusion
  matrix, and the figure of a training run (:func:`report_figure`);
* :mod:`~twolayer.report.plots.regions`: decision regions and probability
  contours over two-feature data;
* :mod:`~twolayer.report.plots.spectra`: eigenvalue histograms on a
  symmetric-log axis;
* :mod:`~twolayer.report.plots.reliability`: the reliability diagram;
* :mod:`~twolayer.report.plots.canvas`: what they share (a figure on an Agg
  canvas, PNG, PDF or SVG bytes, colours).

Figures are drawn with matplotlib's object-oriented API on the Agg canvas: no
``pyplot``, so no global figure state and no window, whatever backend the
user's matplotlib is configured with. matplotlib is an optional dependency
(the ``plot`` extra), imported only when a picture is drawn, so importing this
package stays cheap; the command line imports it only when a plot is asked for.

These modules draw and nothing else: they import nothing of ``twolayer``
outside this package, and the model enters only as a function from features
to class indices or probabilities.
"""

from __future__ import annotations

from twolayer.report.plots.canvas import FIGURE_FORMATS, PNG_SIGNATURE, render, to_png
from twolayer.report.plots.regions import (
    TOP_CLASS_LEVELS,
    TWO_CLASS_LEVELS,
    draw_decision_regions,
    draw_probability_contours,
    probability_grid,
    region_grid,
)
from twolayer.report.plots.reliability import (
    ReliabilityLike,
    draw_reliability_diagram,
    reliability_figure,
    reliability_png,
)
from twolayer.report.plots.spectra import (
    draw_extreme_eigenvalues,
    draw_spectrum,
    spectrum_figure,
    spectrum_png,
    symlog_bins,
)
from twolayer.report.plots.training import draw_confusion_matrix, draw_learning_curves, report_figure, report_png

__all__ = [
    "FIGURE_FORMATS",
    "PNG_SIGNATURE",
    "TOP_CLASS_LEVELS",
    "TWO_CLASS_LEVELS",
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
    "render",
    "report_figure",
    "report_png",
    "spectrum_figure",
    "spectrum_png",
    "symlog_bins",
    "to_png",
]
