"""twolayer: the two-layer tanh-softmax network, exactly.

The mathematics lives in :mod:`twolayer.network` (the error and its gradient)
and :mod:`twolayer.curvature` (second derivatives); the scikit-learn estimator,
model files and the command-line tool are built on top of them. Names below are
imported on first use, so ``import twolayer.network`` stays light.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "Params": "twolayer.network",
    "TwoLayerClassifier": "twolayer.classifier",
    "from_sklearn": "twolayer.classifier",
    "save": "twolayer.io.modelfile",
    "load": "twolayer.io.modelfile",
    "BayesianTwoLayerClassifier": "twolayer.bayes",
    "read_table": "twolayer.io.tables",
    "iter_table": "twolayer.io.tables",
    "to_onnx": "twolayer.io.onnx",
}

# Modules that moved into the layered packages, by their old names. ``import
# twolayer.optim`` gives the very module ``twolayer.training.optim`` (not a copy),
# so code written against the old names, settings it assigns included, keeps working.
_MOVED = {
    "twolayer.optim": "twolayer.training.optim",
    "twolayer.second_order": "twolayer.training.second_order",
    "twolayer.gradcheck": "twolayer.teaching.gradcheck",
    "twolayer.derivation": "twolayer.teaching.derivation",
    "twolayer.modelfile": "twolayer.io.modelfile",
    "twolayer.datasets": "twolayer.io.datasets",
    "twolayer.plots": "twolayer.report.plots",
    "twolayer.calibration": "twolayer.report.calibration",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds a moved module under its old name and hands back the module at its new place."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(_MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        pass  # the module ran when it was imported under its new name


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())

__all__ = [
    "BayesianTwoLayerClassifier",
    "Params",
    "TwoLayerClassifier",
    "__version__",
    "from_sklearn",
    "iter_table",
    "load",
    "read_table",
    "save",
    "to_onnx",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'twolayer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
