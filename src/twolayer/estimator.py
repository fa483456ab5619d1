"""What both estimators share: hyperparameter checks, seeding, label encoding and the fitted network.

:class:`~twolayer.classifier.TwoLayerClassifier` and
:class:`~twolayer.bayes.BayesianTwoLayerClassifier` are both a
:class:`BaseTwoLayerClassifier`: a scikit-learn classifier whose model is the
two-layer network :math:`y = \\operatorname{softmax}(h(X W_1 + b_1) W_2 + b_2)`.
This module writes once what they do alike: checking hyperparameters (the
activation against the live registry :data:`twolayer.network.ACTIVATIONS`, so
that an activation registered at run time is accepted), turning
``random_state`` into a :class:`numpy.random.SeedSequence`, encoding labels as
class indices :math:`k_n \\in \\{0, \\dots, K - 1\\}`, and setting the fitted
attributes that scikit-learn's ``MLPClassifier`` has (``classes_``,
``coefs_``, ``intercepts_``, ``params_``, ``loss_curve_``, ...), with its
names and meanings.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets

from twolayer import network
from twolayer.network import Params

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _sklearn_validate_data

    #: The keyword of :func:`validate_data` that leaves non-finite values to the caller.
    NO_FINITE_CHECK: dict[str, bool] = {"ensure_all_finite": False}
except ImportError:  # pragma: no cover - older scikit-learn
    _sklearn_validate_data = None
    NO_FINITE_CHECK = {"force_all_finite": False}

__all__ = [
    "NO_FINITE_CHECK",
    "BaseTwoLayerClassifier",
    "check_activation",
    "check_choice",
    "check_number",
    "check_positive_int",
    "check_positive_number",
    "seed_sequence",
    "validate_data",
]


def validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data`` (the estimator method before scikit-learn 1.6)."""
    if _sklearn_validate_data is None:  # pragma: no cover - older scikit-learn
        return estimator._validate_data(*args, **kwargs)
    return _sklearn_validate_data(estimator, *args, **kwargs)


# --------------------------------------------------------------------------
# Hyperparameter checks
# --------------------------------------------------------------------------


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int, if it is an integer of at least one (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_number(
    name: str,
    value: Any,
    low: float,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float, if it is a finite real number (not a bool) in the interval from ``low`` to ``high``."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open or high == math.inf else ']'}"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return float(value)


def check_positive_number(name: str, value: Any) -> float:
    """``value`` as a float, if it is a positive finite real number (not a bool)."""
    try:
        return check_number(name, value, 0.0, low_open=True)
    except ValueError:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}") from None


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value``, if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_activation(activation: Any) -> str:
    """The name of a registered activation: looked up in :data:`twolayer.network.ACTIVATIONS` as it is now."""
    return network.get_activation(activation).name


def seed_sequence(random_state: Any, *, check_only: bool = False) -> np.random.SeedSequence:
    """A :class:`numpy.random.SeedSequence` from None, an int, a SeedSequence, a RandomState or a Generator.

    A RandomState or Generator is advanced by one draw (the seed), unless
    ``check_only``, which only checks that ``random_state`` is one of these.
    """
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.SeedSequence):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}")
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        if check_only:
            return np.random.SeedSequence()
        return np.random.SeedSequence(int(random_state.randint(np.iinfo(np.int32).max)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence() if check_only else np.random.SeedSequence(int(random_state.integers(2**63)))
    raise ValueError(f"random_state must be None, an int, a numpy RandomState or Generator; got {random_state!r}")


# --------------------------------------------------------------------------
# The shared estimator
# --------------------------------------------------------------------------


class BaseTwoLayerClassifier(ClassifierMixin, BaseEstimator):
    """The skeleton of a two-layer network classifier; not used directly.

    Subclasses have the hyperparameters ``n_hidden`` and ``activation`` and
    fit the network's parameters; this class encodes their labels and sets
    the fitted attributes below.

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
        The class labels, sorted; class index ``k`` is ``classes_[k]``.
    coefs_ : list of two ndarrays
        ``[W1, W2]`` of shapes ``(D, M)`` and ``(M, K)``, ``MLPClassifier``'s layout.
    intercepts_ : list of two ndarrays
        ``[b1, b2]``.
    params_ : twolayer.network.Params
        The same arrays as :class:`~twolayer.network.Params`.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, n_iter_, t_
        The training record, as ``MLPClassifier`` keeps it.
    n_layers_ : int
        3, as ``MLPClassifier`` counts layers.
    n_outputs_ : int
        ``K``, the number of softmax outputs (2 for two classes).
    out_activation_ : str
        "softmax".
    """

    n_hidden: int
    activation: str

    def _class_indices(self, y: Any, *, classes: Any = None, reset: bool = True) -> np.ndarray:
        """Check the labels ``y`` and return the class index :math:`k_n` of each.

        With ``reset``, ``classes_`` is set first: the sorted distinct labels
        of ``classes`` when given, otherwise of ``y``, at least two of them.
        Labels outside ``classes_`` are refused unless ``classes_`` was just
        taken from ``y`` itself.
        """
        check_classification_targets(y)
        if reset:
            labels = np.unique(y) if classes is None else np.unique(classes)
            if labels.shape[0] < 2:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes; got 1 class ({labels[0]!r})"
                )
            self.classes_ = labels
        if not reset or classes is not None:
            unseen = np.setdiff1d(np.unique(y), self.classes_)
            if unseen.size:
                raise ValueError(f"y contains labels {unseen!r} not among classes_ {self.classes_!r}")
        return np.searchsorted(self.classes_, y).astype(np.intp, copy=False)

    def _set_inputs(self, n_features: int, feature_names: Sequence[str] | None) -> None:
        """``n_features_in_`` and, for named columns, ``feature_names_in_`` (removed otherwise)."""
        self.n_features_in_ = int(n_features)
        if feature_names is not None:
            self.feature_names_in_ = np.array(feature_names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _set_network(
        self,
        params: Params,
        *,
        n_iter: int,
        t: int,
        loss_curve: list[float],
        loss: float | None,
        best_loss: float | None,
        validation_scores: list[float] | None = None,
        best_validation_score: float | None = None,
    ) -> None:
        """Set the fitted network and its training record (``loss_`` only when ``loss`` is not None)."""
        self.params_ = params
        self.coefs_ = [params.W1, params.W2]
        self.intercepts_ = [params.b1, params.b2]
        self.n_iter_ = n_iter
        self.t_ = t
        self.loss_curve_ = loss_curve
        if loss is not None:
            self.loss_ = loss
        self.best_loss_ = best_loss
        self.validation_scores_ = validation_scores
        self.best_validation_score_ = best_validation_score
        self.n_layers_ = 3
        self.n_outputs_ = int(params.W2.shape[1])
        self.out_activation_ = "softmax"
