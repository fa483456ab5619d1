"""The datasets known by name: what each is and how to make it.

``digits``, ``iris``, ``wine`` and ``breast_cancer`` are read offline from
scikit-learn's installation; ``moons``, ``circles`` and ``blobs`` are generated
with a fixed seed so that each name always means the same data. Each maker
returns ``(X, y, feature_names)``; :func:`twolayer.io.datasets.load_builtin`
wraps them into a :class:`~twolayer.io.datasets.Dataset`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["BUILTINS", "Builtin", "Loaded"]

#: What a maker returns: ``X`` (N, D) float64, ``y`` (N,), the D feature names.
Loaded = tuple[np.ndarray, np.ndarray, tuple[str, ...]]


@dataclass(frozen=True)
class Builtin:
    """A dataset known by name: what it is and how to make it."""

    name: str
    description: str
    make: Callable[[], Loaded]


def _bundled(loader_name: str, *, named_classes: bool) -> Callable[[], Loaded]:
    # scikit-learn's bundled datasets are read from its installation: no
    # network. The import waits until a dataset is asked for, so that the
    # command line starts fast.
    def make() -> Loaded:
        import sklearn.datasets

        bunch = getattr(sklearn.datasets, loader_name)()
        X = np.asarray(bunch.data, dtype=np.float64)
        target = np.asarray(bunch.target, dtype=np.int64)
        # Class names where they say something ("setosa", "malignant"), so
        # that tables read well and string labels are exercised end to end.
        y = np.asarray(bunch.target_names)[target] if named_classes else target
        return X, y, tuple(str(name) for name in bunch.feature_names)

    return make


def _generated(maker_name: str, **kwargs: object) -> Callable[[], Loaded]:
    def make() -> Loaded:
        import sklearn.datasets

        # A fixed seed: "moons" is one dataset, the same in every run, so a
        # model can be evaluated later on the very data it was trained on.
        X, y = getattr(sklearn.datasets, maker_name)(random_state=0, **kwargs)
        X = np.asarray(X, dtype=np.float64)
        return X, np.asarray(y, dtype=np.int64), tuple(f"x{i + 1}" for i in range(X.shape[1]))

    return make


#: The built-in data sets by name (``twolayer train digits``): what each is and how it is made.
BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("digits", "handwritten digits, 8x8 pixels", _bundled("load_digits", named_classes=False)),
        Builtin("iris", "Fisher's iris flowers", _bundled("load_iris", named_classes=True)),
        Builtin("wine", "wine cultivars, by chemistry", _bundled("load_wine", named_classes=True)),
        Builtin(
            "breast_cancer",
            "breast tumours (Wisconsin)",
            _bundled("load_breast_cancer", named_classes=True),
        ),
        Builtin("moons", "two half moons, noise 0.25", _generated("make_moons", n_samples=400, noise=0.25)),
        Builtin(
            "circles",
            "a ring around a disc",
            _generated("make_circles", n_samples=400, noise=0.1, factor=0.5),
        ),
        Builtin(
            "blobs",
            "three Gaussian blobs",
            _generated("make_blobs", n_samples=450, centers=3, n_features=2, cluster_std=1.5),
        ),
    )
}
