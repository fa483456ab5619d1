"""The ``twolayer`` command: train, evaluate, predict, check.

Every subcommand is a :class:`Command`: a name, a one-line summary, a
function that adds its arguments to a parser and a function that runs it.
:data:`COMMANDS` lists them in the order of ``twolayer --help``; a new
subcommand is one more entry there. One module per command group:
:mod:`~twolayer.cli.train` (with :mod:`~twolayer.cli.train_options` and
:mod:`~twolayer.cli.progress`), :mod:`~twolayer.cli.evaluate` (``evaluate``,
``predict``, ``plot``), :mod:`~twolayer.cli.curvature`,
:mod:`~twolayer.cli.export` (``export``), :mod:`~twolayer.cli.teaching` (``gradcheck``, ``derive``) and
:mod:`~twolayer.cli.datasets`; :mod:`~twolayer.cli.common` holds what they
share and :mod:`~twolayer.cli.parser` the parser.

Conventions:

* results go to standard output; progress, notes and errors to standard error;
* a problem with the user's input (a file, a column, an option's value) is one
  line on standard error and exit status 2, with no traceback and no file
  written or damaged (:class:`~twolayer.errors.DataError`);
* exit status 1 means a check failed (``gradcheck``, ``derive``); 130 means
  training was interrupted with Ctrl-C;
* heavy modules (scikit-learn, rich, matplotlib, SymPy) are imported inside
  the subcommand that needs them, so that ``twolayer --help`` is quick.

The command line parses, calls and prints; it computes nothing of its own.
The estimators are :class:`twolayer.classifier.TwoLayerClassifier` and, with
``train --bayes``, :class:`twolayer.bayes.BayesianTwoLayerClassifier`; the
metrics and the train/test split come from :mod:`twolayer.report.metrics`,
the calibration measures from :mod:`twolayer.report.calibration`, and the
eigenvalues of ``twolayer curvature`` from :mod:`twolayer.report.spectrum`.
Inputs are standardised by a scikit-learn ``StandardScaler`` fitted on the
training split (``--scale``, the default), and the model file holds the
scaler and the network together.
"""

from __future__ import annotations

from typing import Any

# Names kept for code written before the command line became a package.
from twolayer.cli.common import EXIT_CHECK_FAILED as EXIT_CHECK_FAILED
from twolayer.cli.common import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from twolayer.cli.common import EXIT_OK as EXIT_OK
from twolayer.cli.common import EXIT_USAGE as EXIT_USAGE
from twolayer.cli.common import Command
from twolayer.cli.parser import COMMANDS, build_parser, main
from twolayer.cli.train_options import BAYES_DEFAULTS as BAYES_DEFAULTS
from twolayer.cli.train_options import TRAIN_DEFAULTS as TRAIN_DEFAULTS

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


def __getattr__(name: str) -> Any:
    # Names that moved below the command line, read where they live now (set
    # FULL_SPECTRUM_MAX_PARAMS on twolayer.report.spectrum, which uses it).
    if name in ("SOLVERS", "MINIBATCH_SOLVERS"):
        from twolayer.training import solvers

        return getattr(solvers, name)
    if name == "FULL_SPECTRUM_MAX_PARAMS":
        from twolayer.report import spectrum

        return spectrum.FULL_SPECTRUM_MAX_PARAMS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
