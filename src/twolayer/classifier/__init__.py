"""The scikit-learn estimator :class:`TwoLayerClassifier` and :func:`from_sklearn`.

:mod:`~twolayer.classifier.classifier` is the estimator,
:mod:`~twolayer.classifier.fitting` how its ``fit`` prepares and runs the
trainers, :mod:`~twolayer.classifier.chunked` the network over many rows,
:mod:`~twolayer.classifier.state` its training state as plain values (what
checkpoints hold), and :mod:`~twolayer.classifier.mlp` the conversion to and
from scikit-learn's ``MLPClassifier``. The solver names live in
:mod:`twolayer.training.solvers`, which imports nothing. Every public name is
re-exported here.
"""

from twolayer.classifier.classifier import TwoLayerClassifier, from_sklearn
from twolayer.classifier.mlp import SKLEARN_SOLVERS
from twolayer.classifier.state import STATE_FORMAT, STATE_VERSION
from twolayer.training.solvers import FULL_BATCH_SOLVERS, MINIBATCH_SOLVERS, SOLVERS

__all__ = [
    "FULL_BATCH_SOLVERS",
    "MINIBATCH_SOLVERS",
    "SKLEARN_SOLVERS",
    "SOLVERS",
    "STATE_FORMAT",
    "STATE_VERSION",
    "TwoLayerClassifier",
    "from_sklearn",
]
