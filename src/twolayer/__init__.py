"""twolayer: the two-layer tanh-softmax network, exactly.

The mathematics lives in :mod:`twolayer.network` (the error and its gradient)
and :mod:`twolayer.curvature` (second derivatives); the scikit-learn estimator,
model files and the command-line tool are built on top of them. Names below are
imported on first use, so ``import twolayer.network`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "Params": "twolayer.network",
    "TwoLayerClassifier": "twolayer.classifier",
    "from_sklearn": "twolayer.classifier",
    "save": "twolayer.modelfile",
    "load": "twolayer.modelfile",
    "BayesianTwoLayerClassifier": "twolayer.bayes",
}

__all__ = [
    "BayesianTwoLayerClassifier",
    "Params",
    "TwoLayerClassifier",
    "__version__",
    "from_sklearn",
    "load",
    "save",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'twolayer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
