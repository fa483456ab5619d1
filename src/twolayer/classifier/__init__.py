"""The scikit-learn estimator :class:`TwoLayerClassifier` and :func:`from_sklearn`.

:mod:`~twolayer.classifier.classifier` is the estimator,
:mod:`~twolayer.classifier.state` its training state as plain values (what
checkpoints hold), and :mod:`~twolayer.classifier.mlp` the conversion to and
from scikit-learn's ``MLPClassifier``. Every public name is re-exported here.
"""

from twolayer.classifier.classifier import (
    _FULL_BATCH_SOLVERS,  # noqa: F401  (a test of the command line reads it)
    MINIBATCH_SOLVERS,
    SOLVERS,
    TwoLayerClassifier,
    from_sklearn,
)
from twolayer.classifier.mlp import SKLEARN_SOLVERS
from twolayer.classifier.state import STATE_FORMAT, STATE_VERSION

__all__ = [
    "MINIBATCH_SOLVERS",
    "SKLEARN_SOLVERS",
    "SOLVERS",
    "STATE_FORMAT",
    "STATE_VERSION",
    "TwoLayerClassifier",
    "from_sklearn",
]
