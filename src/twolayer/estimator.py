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
``coefs_``, ``intercepts_``, ``loss_curve_``, ...), with its names and
meanings.

The hyperparameters are declared as scikit-learn declares its own
(``_parameter_constraints``, checked by its machinery, so that a bad value
raises its ``InvalidParameterError``, a ``ValueError``); what those
declarations cannot say is checked here. ``coefs_`` and ``intercepts_`` are
the network's weights themselves: :attr:`BaseTwoLayerClassifier.params_`
reads them, and checks them, whenever it is read.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import array_api_compat
import numpy as np
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
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
    "RANDOM_STATE_CONSTRAINT",
    "BaseTwoLayerClassifier",
    "activation_constraint",
    "check_activation",
    "check_choice",
    "check_number",
    "check_positive_int",
    "check_positive_number",
    "seed_sequence",
    "validate_data",
]


def _host(a: Any) -> np.ndarray:
    """``a`` as a NumPy array: an array of another namespace or device (a fit on a GPU) is copied to the host."""
    if isinstance(a, np.ndarray) or not array_api_compat.is_array_api_obj(a) or array_api_compat.is_numpy_array(a):
        return np.asarray(a)
    from twolayer.training.on_device import to_host

    return to_host(a)


def validate_data(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data`` (the estimator method before scikit-learn 1.6)."""
    if _sklearn_validate_data is None:  # pragma: no cover - older scikit-learn
        return estimator._validate_data(*args, **kwargs)
    return _sklearn_validate_data(estimator, *args, **kwargs)


# --------------------------------------------------------------------------
# Hyperparameter checks
# --------------------------------------------------------------------------

#: The ``random_state`` both estimators take, as a ``_parameter_constraints`` entry: scikit-learn's
#: (None, a RandomState, a non-negative int; here of any size) and NumPy's newer Generator and SeedSequence.
RANDOM_STATE_CONSTRAINT: list[Any] = [
    Interval(numbers.Integral, 0, None, closed="left"),
    np.random.RandomState,
    np.random.Generator,
    np.random.SeedSequence,
    None,
]


def activation_constraint() -> StrOptions:
    """The ``activation`` constraint: the names in :data:`twolayer.network.ACTIVATIONS` when it is checked.

    The options are the registry's live key view, not a copy, so that an
    activation registered after the estimator class was defined is accepted.
    """
    return StrOptions(network.ACTIVATIONS.keys())


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
        ``[W1, W2]`` of shapes ``(D, M)`` and ``(M, K)``, ``MLPClassifier``'s
        layout, float32 or float64. These are the network's weights, not a
        copy of them: what predicts reads them, so a new list, a new array in
        the list or an edit in place all take effect (see :attr:`params_`).
    intercepts_ : list of two ndarrays
        ``[b1, b2]`` of shapes ``(M,)`` and ``(K,)``; the same holds.
    params_ : twolayer.network.Params
        ``coefs_`` and ``intercepts_`` as :class:`~twolayer.network.Params`
        (a read-only property: the same arrays, checked).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    loss_, best_loss_, loss_curve_, validation_scores_, best_validation_score_, n_iter_, t_
        The training record, as ``MLPClassifier`` keeps it.
    n_layers_ : int
        3, as ``MLPClassifier`` counts layers.
    n_outputs_ : int
        ``K``, the number of outputs (2 for two classes).
    out_activation_ : str
        "softmax"; "logistic" for a multilabel network (K independent sigmoid
        outputs), as ``MLPClassifier`` names it.
    """

    n_hidden: int
    activation: str
    #: scikit-learn's declaration of the hyperparameters (checked by ``_validate_params``).
    _parameter_constraints: ClassVar[dict[str, list[Any]]]

    def _check_constraints(self) -> None:
        """Check the hyperparameters against ``_parameter_constraints``, as scikit-learn does.

        scikit-learn's check is skipped where its configuration says so: inside
        a ``fit`` wrapped by its ``_fit_context``, which has just run it, and
        under ``sklearn.set_config(skip_parameter_validation=True)``. A bool
        is refused where a number is meant, although Python counts it as an
        int (scikit-learn's intervals accept it).

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            A ``ValueError`` naming the parameter, what it must be and what it is.
        """
        if not get_config()["skip_parameter_validation"]:
            self._validate_params()
        for name, constraints in self._parameter_constraints.items():
            value = getattr(self, name)
            intervals = [str(c) for c in constraints if isinstance(c, Interval)]
            if isinstance(value, bool) and intervals:
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be {' or '.join(intervals)}, "
                    f"not a bool. Got {value!r} instead."
                )

    @property
    def params_(self) -> Params:
        """``coefs_`` and ``intercepts_`` as :class:`~twolayer.network.Params`: the same arrays, checked.

        Raises
        ------
        AttributeError
            When the estimator is not fitted.
        ValueError
            When ``coefs_`` or ``intercepts_`` do not hold the weights of this
            model (see ``_network_weights``).
        """
        if not hasattr(self, "coefs_"):
            raise AttributeError(f"{type(self).__name__} has no params_: it is not fitted")
        return self._network_weights()

    def _network_weights(self, n_hidden: int | None = None) -> Params:
        """``coefs_`` and ``intercepts_`` as Params (the arrays themselves), checked against the model.

        ``W1`` must have shape ``(D, M)``, ``b1`` ``(M,)``, ``W2`` ``(M, K)``
        and ``b2`` ``(K,)`` with ``D = n_features_in_`` and ``K =
        len(classes_)``, and ``M = n_hidden`` when given (a training that
        continues from them), else that of ``W1``; each float32 or float64.
        An array-like that is not a NumPy array is converted.
        """
        coefs, intercepts = self.coefs_, self.intercepts_
        for name, value in (("coefs_", coefs), ("intercepts_", intercepts)):
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                found = f"{len(value)} items" if isinstance(value, (list, tuple)) else f"a {type(value).__name__}"
                raise ValueError(
                    f"{name} must be a list of two arrays (one per layer: coefs_ = [W1, W2], "
                    f"intercepts_ = [b1, b2]), got {found}"
                )
        names = ("coefs_[0]", "intercepts_[0]", "coefs_[1]", "intercepts_[1]")
        arrays = [_host(a) for a in (coefs[0], intercepts[0], coefs[1], intercepts[1])]
        for name, a in zip(names, arrays):
            if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
                raise ValueError(f"{name} must be an array of float64 or float32, got dtype {a.dtype}")
        D, K = int(self.n_features_in_), len(self.classes_)
        if n_hidden is not None:
            M, whence = int(n_hidden), f"n_hidden = {n_hidden}"
        else:
            M, whence = (int(arrays[0].shape[1]), "from coefs_[0]") if arrays[0].ndim == 2 else (-1, "")
        expected = ((D, M), (M,), (M, K), (K,))
        for name, a, shape in zip(names, arrays, expected):
            if a.shape != shape:
                layout = "W1 (D, M), b1 (M,), W2 (M, K), b2 (K,)"
                sizes = f"D = n_features_in_ = {D}, K = len(classes_) = {K}" + (
                    f", M = {M} ({whence})" if M >= 0 else ""
                )
                raise ValueError(f"{name} has shape {a.shape}, but the weights of this model are {layout} with {sizes}")
        return Params(*arrays)

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
        output: str = "softmax",
    ) -> None:
        """Set the fitted network and its training record (``loss_`` only when ``loss`` is not None).

        ``coefs_`` and ``intercepts_`` become lists of the arrays of ``params`` themselves;
        ``output`` is the network's output nonlinearity (:data:`twolayer.network.OUTPUTS`).
        """
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
        self.out_activation_ = "logistic" if network.check_output(output) == "sigmoid" else "softmax"

    @property
    def _output(self) -> str:
        """The fitted network's output nonlinearity: "sigmoid" for a multilabel network, else "softmax"."""
        return "sigmoid" if getattr(self, "out_activation_", "softmax") == "logistic" else "softmax"
