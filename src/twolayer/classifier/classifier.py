"""The scikit-learn estimator :class:`TwoLayerClassifier`.

A thin layer over :mod:`twolayer.network` (the mathematics) and
:mod:`twolayer.training.optim` (the solvers), on the skeleton that both
estimators share (:mod:`twolayer.estimator`): it checks hyperparameters and
data, encodes the labels as class indices, has
:mod:`twolayer.classifier.fitting` prepare and run a solver, and stores the
fitted attributes that scikit-learn's ``MLPClassifier`` has, with the same
names and meanings, so that pipelines, grid search and cross-validation work
unchanged. Most of its length is the numpydoc of its 25 parameters and
attributes; the code itself is what an estimator keeps.

It is longer than the house's modules should be: the parameter constraints, the bookkeeping that
makes ``coefs_`` the weights and the validation set are the parts to move out next (the training
runs already live in :mod:`~twolayer.classifier.fitting`).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from twolayer import cluster, network
from twolayer.classifier import fitting, on_device
from twolayer.classifier.chunked import chunked, logits
from twolayer.classifier.memory import fit_estimate
from twolayer.classifier.mlp import SKLEARN_SOLVERS, from_sklearn, to_mlp
from twolayer.classifier.state import STATE_FORMAT, STATE_VERSION, state_from_dict, state_from_record, state_to_dict
from twolayer.errors import InsufficientMemory
from twolayer.estimator import (
    NO_FINITE_CHECK,
    RANDOM_STATE_CONSTRAINT,
    BaseTwoLayerClassifier,
    activation_constraint,
    check_activation,
    validate_data,
)
from twolayer.network import Params
from twolayer.resources import check_memory, covered
from twolayer.training import optim
from twolayer.training.on_device import to_host
from twolayer.training.solvers import MINIBATCH_SOLVERS, SOLVERS

__all__ = [
    "MINIBATCH_SOLVERS",
    "SKLEARN_SOLVERS",
    "SOLVERS",
    "STATE_FORMAT",
    "STATE_VERSION",
    "TwoLayerClassifier",
    "from_sklearn",
]


#: The ``stacklevel`` of a warning from ``_fit_validated`` that points at the caller of ``fit`` or
#: ``partial_fit``: past ``_fit``, the method, and scikit-learn's ``_fit_context`` around it.
_CALLER_OF_FIT = 5


def _shallow_copy(model: Any) -> Any:
    """A shallow copy of a fitted estimator: its attributes shared, so that replacing one leaves the other alone."""
    import copy

    return copy.copy(model)


#: The dtypes the estimator works in: float64 unless the input is float32.
_DTYPES = (np.float64, np.float32)


def _column_dtypes(X: Any) -> list[np.dtype[Any]] | None:
    # The NumPy dtype of each column of a pandas DataFrame (NumPy, Arrow-backed or nullable
    # dtypes) or a pyarrow Table, or None for anything else or a column without one. Duck-typed,
    # so that neither pandas nor pyarrow is imported for an array.
    if isinstance(X, np.ndarray) or sp.issparse(X):
        return None
    frame: Any = X
    if hasattr(frame, "columns") and hasattr(frame, "dtypes") and hasattr(frame.dtypes, "tolist"):  # pandas
        dtypes: list[np.dtype[Any]] = []
        for dtype in frame.dtypes.tolist():
            numpy_dtype = dtype if isinstance(dtype, np.dtype) else getattr(dtype, "numpy_dtype", None)
            if not isinstance(numpy_dtype, np.dtype):  # categorical, sparse, pandas' own strings
                return None
            dtypes.append(numpy_dtype)
        return dtypes
    if type(frame).__module__.startswith("pyarrow") and hasattr(getattr(frame, "schema", None), "types"):
        try:
            return [np.dtype(t.to_pandas_dtype()) for t in frame.schema.types]
        except (NotImplementedError, TypeError):  # dictionary-encoded and other types NumPy lacks
            return None
    return None


def _input_dtypes(X: Any) -> Any:
    """The ``dtype`` argument for validating ``X``: float32 for float32 columns of any kind.

    scikit-learn keeps a float32 array or NumPy-typed float32 frame in float32, but converts
    Arrow-backed and nullable pandas columns, and a pyarrow Table, to the first dtype accepted,
    float64, whatever their own; so the same numbers would train in another precision by the
    container they came in. Columns whose NumPy types promote to float32 (float32 beside
    float16, bool or 8- and 16-bit integers, as in a NumPy-typed frame) are float32 here too;
    anything else is left to scikit-learn.
    """
    dtypes = _column_dtypes(X)
    if dtypes and np.result_type(*dtypes) == np.float32:
        return np.float32
    return _DTYPES


def _same_array(a: Any, b: np.ndarray) -> bool:
    """Whether ``a`` is the array ``b`` itself (a view of the same memory, laid out alike), not only equal to it."""
    return (
        isinstance(a, np.ndarray)
        and a.dtype == b.dtype
        and a.shape == b.shape
        and a.strides == b.strides
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )


def _label_log_proba(params: Params, X: np.ndarray, activation: str) -> np.ndarray:
    """:math:`\\ln \\sigma(a_k)` of each label, finite, and consistent with the probabilities' rounding.

    Where :math:`a \\le 0` the log-sigmoid :math:`a - \\ln(1 + e^{a})` (no underflow to
    :math:`-\\infty`); where :math:`a > 0` the logarithm of :math:`\\sigma(a) \\ge 1/2`, finite
    too, and exactly 0 where :math:`\\sigma(a)` rounds to 1, so that the log-probabilities
    order the labels as the probabilities do (a saturated label ties in both).
    """
    a2 = network.hidden_and_output(params, X, activation=activation)[1]
    negative = np.minimum(a2, 0.0)
    positive = np.maximum(a2, 0.0)
    upper = np.log(1.0 / (1.0 + np.exp(-positive)))  # ln sigma(a) for a > 0
    lower = negative - np.log1p(np.exp(negative))  # ln sigma(a) for a <= 0
    return np.where(a2 > 0, upper, lower)


def _is_minibatch(estimator: TwoLayerClassifier) -> bool:
    if estimator.solver not in MINIBATCH_SOLVERS:
        raise AttributeError(
            f"partial_fit is only available for solver in {MINIBATCH_SOLVERS}, not {estimator.solver!r}"
        )
    return True


class TwoLayerClassifier(BaseTwoLayerClassifier):
    """A two-layer network classifier: ``n_hidden`` units, softmax outputs, cross-entropy.

    The network of PRML §5.1 with one hidden layer,
    :math:`y = \\operatorname{softmax}(h(X W_1 + b_1) W_2 + b_2)`, trained to
    minimise the regularised cross-entropy

    .. math::

        \\tilde E(w) = \\sum_n s_n E_n(w) + \\frac{\\alpha}{2} \\lVert w \\rVert^2,

    with the decay on the weights and not the biases (PRML eq. 5.112). Every
    number of classes, two included, goes through the softmax of the network.
    The parameters have ``MLPClassifier``'s names, defaults and meanings
    except where said below.

    Parameters
    ----------
    n_hidden : int, default 100
        The number of hidden units :math:`M` (``hidden_layer_sizes=(M,)``).
    activation : {"tanh", "logistic", "relu", "identity"}, default "tanh"
        The hidden-unit activation :math:`h`.
    solver : {"adam", "sgd", "lbfgs", "trust-ncg", "newton-cg", "scg"}, default "adam"
        ``adam`` and ``sgd`` take minibatch steps; ``lbfgs`` is SciPy's
        L-BFGS-B on the whole batch. The others (not in ``MLPClassifier``)
        use exact curvature on the whole batch: truncated Newton with a trust
        region (``trust-ncg``) or a line search (``newton-cg``), or Møller's
        scaled conjugate gradient (``scg``), each through
        :mod:`twolayer.training.second_order` with the exact Hessian-vector product of
        :mod:`twolayer.curvature` (PRML §5.4.6).
    alpha : float, default 1e-4
        The weight-decay coefficient :math:`\\alpha` of :math:`\\tilde E`, the
        same for every solver and batch size. A minibatch step over ``B`` of
        ``N`` patterns follows :math:`\\tfrac{1}{B} \\sum_{\\text{batch}} \\nabla E_n + \\tfrac{\\alpha}{N} w`,
        whose average over an epoch is :math:`\\nabla \\tilde E / N`, the
        direction L-BFGS follows. (``MLPClassifier`` divides ``alpha`` by the
        batch size instead, so its minibatch solvers regularise ``N / B``
        times harder than its L-BFGS: ``alpha=a`` there matches
        ``alpha=a * N / B`` here for ``sgd`` and ``adam``.)
    batch_size : int or "auto", default "auto"
        Patterns per minibatch; "auto" is ``min(200, N)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        The schedule of SGD's step size (see :class:`twolayer.training.optimizers.SGD`).
    learning_rate_init : float, default 1e-3
    power_t : float, default 0.5
    max_iter : int, default 200
        Epochs for ``sgd`` and ``adam``, iterations for the full-batch
        solvers, in each call to ``fit``.
    shuffle : bool, default True
    random_state : int, RandomState, Generator or None, default None
        Seeds the initial weights, the shuffling and the validation split;
        an int makes fits bit-for-bit repeatable.
    tol : float, default 1e-4
        For ``sgd`` and ``adam``, the improvement of the loss (or validation
        score) that counts; for the full-batch solvers, the largest gradient
        component of :math:`\\tilde E / S` at which they stop.
    verbose : bool, default False
    warm_start : bool, default False
        Continue from the current weights, ``coefs_`` and ``intercepts_``;
        ``y`` must then have the classes of the earlier fit, all of them (as
        in ``MLPClassifier``; a ``ValueError`` otherwise). Unlike
        ``MLPClassifier``, the optimiser's state (velocities, Adam's moments
        and step count, the learning rate, the no-improvement counter, the
        shuffling generator and the validation split) carries over too, so
        that training split over several calls equals one long call bit for
        bit. If the optimiser's hyperparameters were changed in between, a
        fresh optimiser starts from the current weights. L-BFGS restarts its
        curvature memory at every call (SciPy cannot hand it over), so its
        continuation is not exact. Weights set by hand (see ``coefs_``) are
        where the next call starts; if they have another number of hidden
        units, set ``n_hidden`` to it and a fresh optimiser starts from them.
    momentum : float, default 0.9
    nesterovs_momentum : bool, default True
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified), stop when
        its accuracy stops improving, and end with the best weights seen
        (PRML §5.5.2). Only ``sgd`` and ``adam`` use it. ``fit(X, y,
        X_val=..., y_val=...)`` watches a validation set of one's own instead.
    validation_fraction : float in [0, 1), default 0.1
        The held-out fraction of early stopping; it must be above 0 when
        ``early_stopping`` is on and ``fit`` has no ``X_val``, and is not
        read otherwise.
    beta_1, beta_2, epsilon : float, default 0.9, 0.999, 1e-8
        Adam's parameters.
    n_iter_no_change : int or numpy.inf, default 10
        The epochs without an improvement of ``tol`` after which ``sgd``
        and ``adam`` stop (or ``learning_rate="adaptive"`` divides its step
        by 5); ``numpy.inf`` never stops early.
    max_fun : int, default 15000
        The most function evaluations of ``lbfgs`` (the other solvers ignore it).
    class_weight : dict, "balanced" or None, default None
        Weights of the classes (``MLPClassifier`` has none); "balanced" uses
        ``N / (K * count(class))``, computed from the unweighted counts.
    callback : callable or None, default None
        ``callback(model) -> bool | None``, called after every epoch (every
        L-BFGS iteration) once ``loss_curve_``, ``validation_scores_`` and
        ``n_iter_`` are updated; returning True stops training at once,
        without a ``ConvergenceWarning``. Inside the call, ``params_`` holds
        the weights of that epoch and :meth:`get_training_state` the state
        to continue from. (With ``early_stopping``, the fitted model ends
        with the best weights, as at any end of training; the training
        state keeps the running ones.)

    Attributes
    ----------
    classes_ : ndarray of shape (K,)
    coefs_ : list of two ndarrays
        ``[W1, W2]`` of shapes ``(D, M)`` and ``(M, K)``, ``MLPClassifier``'s
        layout. The weights themselves, not a copy: ``predict``,
        ``predict_proba``, ``decision_function``, ``partial_fit`` and a
        warm-start ``fit`` all read them, so assigning a new list or array or
        editing one in place (pruning, transplanting) takes effect, and their
        shapes and dtypes (float32 or float64) are checked when they are read.
        With early stopping the training state also keeps the running weights
        and the best ones, so that a warm start continues exactly; edited
        weights replace both.
    intercepts_ : list of two ndarrays
        ``[b1, b2]`` of shapes ``(M,)`` and ``(K,)``; the same holds.
    params_ : twolayer.network.Params
        ``coefs_`` and ``intercepts_`` as :class:`~twolayer.network.Params`:
        the same arrays (a read-only property).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on a DataFrame with string column names.
    loss_ : float
        :math:`\\tilde E / S` of the last epoch or iteration, :math:`S` the
        total pattern weight (``N`` without weights): for L-BFGS exactly
        ``MLPClassifier``'s L-BFGS loss for the same weights and data; for
        minibatch solvers the data term summed over the epoch's batches (each
        at the weights it saw) plus the decay of the epoch's final weights.
    best_loss_ : float or None
        The least ``loss_`` so far; None with early stopping.
    loss_curve_ : list of float
        ``loss_`` after every epoch or iteration, for every solver.
    validation_scores_ : list of float or None
        Held-out accuracy after every epoch, with early stopping; with an
        ``X_val`` given to ``fit``, the accuracy on it after every epoch (or
        iteration), with early stopping or without, for every solver.
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs (iterations) run by the last call to ``fit`` or ``partial_fit``.
    t_ : int
        Patterns processed over all calls (for L-BFGS, ``N`` per function
        evaluation).
    n_layers_ : int
        3, as ``MLPClassifier`` counts layers.
    n_outputs_ : int
        ``K``, the number of softmax outputs (2 for two classes).
    out_activation_ : str
        "softmax".

    Notes
    -----
    **Pattern weights.** ``sample_weight`` times the weight of each pattern's
    class gives :math:`s_n`. Weights count patterns: an integer weight is the
    same as repeating the pattern, and the error is normalised by the total
    weight :math:`S = \\sum_n s_n` in place of ``N``, which is what
    ``MLPClassifier`` (1.7 and later) does for its L-BFGS loss. In a minibatch
    step the weights are rescaled to mean one, so a step follows
    :math:`\\tfrac{1}{B} \\sum_{\\text{batch}} \\tfrac{N}{S} s_n \\nabla E_n + \\tfrac{\\alpha}{S} w`,
    an unbiased estimate of :math:`\\nabla \\tilde E / S`. (``MLPClassifier``
    divides each batch by the batch's own weight sum, which weights a
    pattern by its batch-mates.) A weight of zero removes its pattern.

    **Precision.** float32 input trains and predicts in float32 with every
    solver: SciPy's L-BFGS-B works in float64, so its points are rounded to
    float32 before each error and gradient, computed in float32, and the
    gradient is widened for SciPy. float64 stays float64; any other input is
    converted to float64. A data frame is float32 when its columns are, NumPy,
    Arrow-backed or nullable alike, and so is a pyarrow Table. A warm start
    keeps the dtype of the first fit.

    **Divergence.** A non-finite error stops training with
    :class:`twolayer.errors.TrainingDiverged` (a ``ValueError``) naming the
    learning rate; the model keeps the weights of the last finished epoch.

    **Memory.** ``fit`` estimates what the solver will allocate (see
    :mod:`twolayer.classifier.memory`) before it allocates anything, and
    raises :class:`twolayer.errors.InsufficientMemory` (a ``MemoryError``
    naming ``n_hidden`` or ``batch_size``) when that exceeds the memory
    available, or warns with :class:`twolayer.errors.HighMemoryWarning` past
    half of it; :meth:`check_fit_memory` checks the same ahead of time.

    **Log-probabilities** come from the log-softmax
    :math:`a_k - \\operatorname{logsumexp}(a)`, finite where
    ``MLPClassifier.predict_log_proba`` returns :math:`-\\infty`.

    References
    ----------
    C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), §5.1-5.3
    (the network and backpropagation), §5.2.4 (optimisation), §5.5.1-5.5.2
    (weight decay, early stopping).
    """

    _training: optim.TrainingState  # set by fit, set_training_state and from_params

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "n_hidden": [Interval(Integral, 1, None, closed="left")],
        "activation": [activation_constraint()],
        "solver": [StrOptions(set(SOLVERS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions(set(optim.LEARNING_RATE_SCHEDULES))],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": RANDOM_STATE_CONSTRAINT,
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "callback": [callable, None],
    }

    def __init__(
        self,
        n_hidden: int = 100,
        activation: str = "tanh",
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: float = 10,
        max_fun: int = 15000,
        class_weight: dict[Any, float] | str | None = None,
        callback: Callable[[TwoLayerClassifier], bool | None] | None = None,
    ) -> None:
        self.n_hidden = n_hidden
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.class_weight = class_weight
        self.callback = callback

    # ------------------------------------------------------------------
    # fitting
    # ------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self, X: Any, y: Any, sample_weight: Any = None, *, X_val: Any = None, y_val: Any = None
    ) -> TwoLayerClassifier:
        """Fit the network to ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like or scipy sparse matrix of shape (N, D)
        y : array-like of shape (N,), or (N, K)
            Class labels; or an indicator matrix of 0/1 (K labels per pattern,
            any number of them set), which trains K independent sigmoid outputs
            with the binary cross-entropy (multilabel, as ``MLPClassifier``).
        sample_weight : array-like of shape (N,), optional
            Non-negative pattern weights (see Notes of the class).
        X_val : array-like or scipy sparse matrix of shape (V, D), optional
            A validation set of one's own, in place of a random
            ``validation_fraction`` of ``X``: every row of ``X`` then trains.
            It must have the features of ``X`` (the same number, and the same
            names when ``X`` has them) and is taken as it is: a
            :class:`~sklearn.pipeline.Pipeline` that routes it here does not
            pass it through its earlier steps (scale it as they would).
            Requires ``y_val``.
        y_val : array-like of shape (V,), or (V, K)
            The labels of ``X_val``, each among the classes of ``y`` (not
            every class need occur); for a multilabel ``y``, an indicator
            matrix with its K columns. Requires ``X_val``.

        Returns
        -------
        self

        Notes
        -----
        **A validation set of one's own.** With ``early_stopping=True`` and
        ``sgd`` or ``adam``, training stops when the accuracy on ``X_val``
        (the subset accuracy for a multilabel model) has not improved by
        ``tol`` for ``n_iter_no_change`` epochs, and ends with the best
        weights, exactly as with a random split (``validation_fraction`` is
        then not read, and may be 0). Without early stopping, and for the
        full-batch solvers, which never stop early, the accuracy on ``X_val``
        is still recorded after every epoch (iteration) in
        ``validation_scores_`` and its best in ``best_validation_score_``
        (``MLPClassifier`` leaves both None without early stopping; a
        validation set passed on purpose is there to be watched), while
        training stops on the loss and ends with the last weights. The
        accuracy is weighted by ``class_weight`` (as a split's is by the
        pattern weights); there is no sample weight for ``X_val``.

        ``fit`` requests ``X_val`` and ``y_val`` as metadata: with
        ``sklearn.set_config(enable_metadata_routing=True)``, call
        ``set_fit_request(X_val=True, y_val=True)`` and a
        :class:`~sklearn.pipeline.Pipeline` (or another router) passes them
        from its own ``fit`` to this one; without routing, pass them to a
        pipeline as ``<step>__X_val`` and ``<step>__y_val``. Either way they
        reach the network untransformed.
        """
        return self._fit(X, y, sample_weight, incremental=False, classes=None, X_val=X_val, y_val=y_val)

    @available_if(_is_minibatch)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None) -> TwoLayerClassifier:
        """One epoch of the minibatch solver over ``X``, continuing from the current state.

        The epoch starts from ``coefs_`` and ``intercepts_``: those of the
        last call, or weights set in between (on an estimator never fitted
        too, as ``MLPClassifier`` does). ``y`` need not hold every class.

        Parameters
        ----------
        X : array-like or scipy sparse matrix of shape (N, D)
        y : array-like of shape (N,)
        classes : array-like, optional
            Every class label; required on the first call.
        sample_weight : array-like of shape (N,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any,
        *,
        incremental: bool,
        classes: Any,
        X_val: Any = None,
        y_val: Any = None,
    ) -> TwoLayerClassifier:
        if (X_val is None) != (y_val is None):
            given, missing = ("X_val", "y_val") if y_val is None else ("y_val", "X_val")
            raise ValueError(
                f"{given} was given without {missing}: a validation set needs both its patterns and labels"
            )
        self._check_hyperparameters(own_validation=X_val is not None)
        xp = on_device.device_namespace(X)  # y and sample_weight follow X wherever they are
        if xp is None and (cluster.is_dask(X) or cluster.is_dask(y)):
            if incremental:
                raise TypeError(
                    "partial_fit takes one block in memory (NumPy); for a Dask collection call fit, which streams "
                    "its blocks, or dask_ml.wrappers.Incremental, which passes them one by one"
                )
            return self._fit_on_cluster(X, y, sample_weight, X_val, y_val)
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        if incremental and isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight='balanced' is not supported by partial_fit: compute the weights once "
                "with sklearn.utils.class_weight.compute_class_weight and pass them as a dict"
            )
        if xp is not None:  # trained where X is, as below step for step (warm starts and partial_fit too)
            return on_device.fit(
                self, X, y, sample_weight, xp, incremental=incremental, classes=classes, X_val=X_val, y_val=y_val
            )
        continuing = (incremental or self.warm_start) and hasattr(self, "_training")
        # Weights set by hand on an estimator never fitted: a warm start or partial_fit starts from
        # them, as MLPClassifier's does.
        seeded = (
            (incremental or self.warm_start)
            and not continuing
            and hasattr(self, "coefs_")
            and hasattr(self, "intercepts_")
        )
        dtype = self._training.theta.dtype if continuing else None
        # A fresh minibatch fit checks that X is finite in its first epoch, row by row as it
        # gathers the batches, instead of in a pass of its own over X (see optim.TrainingData);
        # if a row is not, the estimator is put back as it was before this call.
        # Only where that gather runs: dense input, shuffled or split batches, numba installed.
        deferred = (
            not continuing
            and self.solver in MINIBATCH_SOLVERS
            and not sp.issparse(X)
            and (self.shuffle or self.early_stopping)
            and optim.checks_rows_as_it_gathers()
        )
        before = dict(self.__dict__)
        # A matrix of labels (several columns) is multilabel; a column vector stays one label.
        # (Read from the shape alone: y may be an array-like that refuses NumPy's functions.)
        shape = np.shape(y) if isinstance(y, (list, tuple)) else tuple(getattr(y, "shape", ()))
        multi_output = len(shape) == 2 and shape[1] != 1
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=("csr", "csc"),
            dtype=dtype if dtype is not None else _input_dtypes(X),
            order="C",
            reset=not continuing,
            multi_output=multi_output,
            **(NO_FINITE_CHECK if deferred else {}),
        )
        if sp.issparse(X):
            X = sp.csr_matrix(X)  # row gathers need CSR
        try:
            return self._fit_validated(
                X,
                y,
                sample_weight,
                incremental=incremental,
                classes=classes,
                continuing=continuing,
                seeded=seeded,
                finite=not deferred,
                X_val=X_val,
                y_val=y_val,
            )
        except (optim.NonFiniteInput, InsufficientMemory):  # refused before training: as it was
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _fit_validated(
        self,
        X: Any,
        y: np.ndarray,
        sample_weight: Any,
        *,
        incremental: bool,
        classes: Any,
        continuing: bool,
        seeded: bool,
        finite: bool,
        X_val: Any = None,
        y_val: Any = None,
    ) -> TwoLayerClassifier:
        k = self._encoded_targets(y, X.dtype, incremental=incremental, classes=classes, continuing=continuing)
        validation = None if X_val is None else self._validation_set(X, y, X_val, y_val)
        # Checked before the weights are allocated (a warm start's exist already).
        existing = self._training.theta.nbytes if continuing else 0
        self._check_memory(
            X.shape[0],
            X.shape[1],
            len(self.classes_),
            X.dtype,
            sp.issparse(X),
            existing=existing,
            stacklevel=7,
            split=validation is None,
        )  # check_memory, _check_memory, _fit_validated, _fit, fit, scikit-learn's _fit_context, the caller
        s = fitting.pattern_weights(self, y, k, sample_weight, X)

        if continuing:
            self._training = self._continue_from_weights(self._training, X.shape[1])
        else:
            # The log-prior shift of the output biases is for a softmax; sigmoid outputs start unshifted.
            prior = None if incremental or k.ndim == 2 else np.bincount(k, weights=s, minlength=len(self.classes_))
            self._training = fitting.fresh_state(self, X.shape[1], X.dtype, prior)
            if seeded:
                weights = self._weights_to_continue_from(self.n_hidden)
                np.copyto(self._training.theta, network.flatten(weights), casting="same_kind")
        state = self._training
        self._publish(state, final=False)
        if self.solver in MINIBATCH_SOLVERS:
            run = fitting.minibatch_run(
                self, state, X, k, s, incremental=incremental, finite=finite, validation=validation
            )
        else:
            run = fitting.full_batch_run(self, state, X, k, s, validation)
        return self._train(state, run)

    def _encoded_targets(
        self, y: np.ndarray, dtype: Any, *, incremental: bool, classes: Any, continuing: bool
    ) -> np.ndarray:
        """The labels checked against the earlier fit (if training goes on) and encoded for training.

        Class indices, or the 0/1 targets of a multilabel ``y`` in ``dtype``;
        ``classes_`` and ``out_activation_`` are set unless the training goes on.
        Shared by the NumPy and the device fits (:mod:`twolayer.classifier.on_device`).
        """
        if incremental and not continuing and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        if continuing and incremental and classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={np.unique(classes)!r} differs from classes_={self.classes_!r} of the earlier calls"
            )
        multilabel = y.ndim == 2
        if continuing and multilabel != (self._output == "sigmoid"):
            raise ValueError(
                "y is a multilabel indicator matrix but the earlier fit was not, or the other way round; "
                "fit without warm_start to change the kind of target"
            )
        if continuing and not incremental:
            self._check_warm_start_classes(y)
        if multilabel:
            k = self._label_targets(y, dtype, reset=not continuing)
        else:
            k = self._class_indices(y, classes=None if continuing else classes, reset=not continuing)
        if not continuing:
            self.out_activation_ = "logistic" if multilabel else "softmax"
        return k

    def _train(
        self, state: optim.TrainingState, run: fitting.Run, *, publish: Callable[[], None] | None = None
    ) -> TwoLayerClassifier:
        """Run the prepared training, publish its weights however it ends, and warn when it did not converge.

        ``publish``, for training on a device, sets the fitted attributes from
        the device's weights itself (after each epoch too); the callback then
        runs alone after each epoch.
        """
        on_epoch = self._on_epoch if publish is None else self._callback
        try:
            with covered():  # checked as a whole before (the solvers' Hessian products included)
                reason, message = run(on_epoch)
        finally:
            if publish is None:
                self._publish(state, final=True)
            else:
                publish()
        if reason == "max_iter":
            warnings.warn(
                f"{self.solver}: the maximum of {self.max_iter} {'epochs' if self.solver in MINIBATCH_SOLVERS else 'iterations'} "
                f"(max_iter) was reached before the optimisation converged ({message}); increase max_iter or tol",
                ConvergenceWarning,
                stacklevel=_CALLER_OF_FIT + 1,
            )
        elif reason == "failed":
            warnings.warn(
                f"{self.solver} stopped without converging: {message}",
                ConvergenceWarning,
                stacklevel=_CALLER_OF_FIT + 1,
            )
        return self

    def _fit_on_cluster(self, X: Any, y: Any, sample_weight: Any, X_val: Any, y_val: Any) -> TwoLayerClassifier:
        """``fit`` on Dask collections: the data checked, encoded and trained on as blocks of the cluster.

        See :mod:`twolayer.classifier.on_cluster`. A random validation split of
        blocks is not made: early stopping needs ``X_val`` and ``y_val`` (in memory).
        """
        from twolayer.classifier import on_cluster

        if self.early_stopping and X_val is None:
            raise ValueError(
                "early_stopping=True on a Dask collection needs a validation set of your own (X_val, y_val): "
                "no random split of the blocks is made"
            )
        continuing = self.warm_start and hasattr(self, "_training")
        before = dict(self.__dict__)
        try:
            prepared = on_cluster.prepare(
                self,
                X,
                y,
                sample_weight,
                dtype=self._training.theta.dtype if continuing else None,
                reset=not continuing,
            )
            if continuing and prepared.n_features != self.n_features_in_:
                raise ValueError(
                    f"X has {prepared.n_features} features, but {type(self).__name__} is expecting "
                    f"{self.n_features_in_} features as input"
                )
            if not continuing:
                self._set_inputs(prepared.n_features, prepared.feature_names)
            validation = None
            if X_val is not None:
                stand_in = np.empty((0, prepared.n_features), dtype=prepared.dtype)
                validation = self._validation_set(stand_in, self.classes_, X_val, y_val, class_counts=prepared.counts)
        except Exception:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        if continuing:
            self._training = self._continue_from_weights(self._training, prepared.n_features)
        else:
            prior = None if self._output == "sigmoid" else prepared.class_totals
            self._training = fitting.fresh_state(self, prepared.n_features, prepared.dtype, prior)
        state = self._training
        self._publish(state, final=False)
        if self.solver in MINIBATCH_SOLVERS:
            run = fitting.minibatch_run(
                self, state, None, prepared.data.k, None, incremental=False, validation=validation, data=prepared.data
            )
        else:
            run = fitting.full_batch_run(self, state, None, prepared.data.k, None, validation, data=prepared.data)
        return self._train(state, run)

    def _on_epoch(self, state: optim.TrainingState) -> bool:
        self._publish(state, final=False)
        return self._callback(state)

    def _callback(self, state: optim.TrainingState) -> bool:
        """The user's ``callback(self)`` after an epoch; True stops."""
        if self.callback is None:
            return False
        return bool(self.callback(self))

    def _publish(self, state: optim.TrainingState, *, final: bool) -> None:
        """Set the fitted attributes from the training state.

        ``coefs_`` and ``intercepts_`` are views of the running weights, the
        one copy of them that training updates (a callback sees each epoch's);
        at the end of an early-stopped training, a copy of the best weights,
        so that the running ones can go on exactly in a warm start
        (``_continue_from_weights`` tells the copy from weights set since).
        """
        D, M, K = self.n_features_in_, self.n_hidden, len(self.classes_)
        if final and self.early_stopping and state.best_theta is not None:
            params = network.unflatten(state.best_theta.copy(), D, M, K)
        else:
            params = network.unflatten(state.theta, D, M, K)
        self._set_network(
            params,
            n_iter=state.n_iter,
            t=state.t,
            loss_curve=state.loss_curve,
            loss=state.loss,
            best_loss=state.best_loss,
            validation_scores=state.validation_scores,
            best_validation_score=state.best_validation_score,
            output=self._output,
        )

    # --- pieces of fit --------------------------------------------------

    def _check_hyperparameters(self, *, own_validation: bool = False) -> None:
        """Check the hyperparameters: scikit-learn's constraints, then what they cannot say.

        Parameters
        ----------
        own_validation : bool, default False
            Whether ``fit`` was given a validation set (``X_val``), so that no
            ``validation_fraction`` is held out.

        Raises
        ------
        sklearn.utils._param_validation.InvalidParameterError
            A ``ValueError`` naming a hyperparameter outside its constraint.
        ValueError
            For ``validation_fraction=0`` with ``early_stopping`` and no ``X_val``.
        """
        self._check_constraints()
        if self.early_stopping and not own_validation and not self.validation_fraction > 0:
            raise ValueError(
                f"validation_fraction must be above 0 with early_stopping=True (it is the share of the data held "
                f"out to decide when to stop, unless fit is given X_val and y_val), got {self.validation_fraction!r}"
            )

    def _label_targets(self, y: np.ndarray, dtype: Any, *, reset: bool) -> np.ndarray:
        """Check a multilabel indicator ``y`` (N, K) and return it as 0/1 targets in ``dtype``.

        With ``reset``, ``classes_`` becomes ``arange(K)`` (as ``MLPClassifier``'s); otherwise
        ``y`` must have ``len(classes_)`` columns.

        Raises
        ------
        ValueError
            When ``y`` is not an indicator matrix of 0/1 (or booleans), or has the wrong
            number of columns, or when ``class_weight`` is set (a weight per class has
            no meaning where a pattern has several labels).
        """
        # scikit-learn calls any two-valued integer matrix an indicator; the targets t_nk are 0 and 1.
        if type_of_target(y) != "multilabel-indicator" or not np.isin(np.unique(y), (0, 1)).all():
            raise ValueError(
                f"y of shape {y.shape} is not a multilabel indicator matrix: a 2-D y must hold only 0 and 1 "
                f"(one column per label), got {type_of_target(y)!r} targets"
            )
        if self.class_weight is not None:
            raise ValueError("class_weight is not supported for multilabel y (an indicator matrix); use sample_weight")
        K = y.shape[1]
        if reset:
            self.classes_ = np.arange(K)
        elif K != len(self.classes_):
            raise ValueError(f"y has {K} labels (columns) but the earlier fit had {len(self.classes_)}")
        return np.ascontiguousarray(y, dtype=dtype)

    def _validation_set(
        self, X: Any, y: np.ndarray, X_val: Any, y_val: Any, *, class_counts: np.ndarray | None = None
    ) -> fitting.ValidationSet:
        """``X_val`` and ``y_val`` checked against the training data, and encoded as it is.

        ``X_val`` in the working dtype (CSR when sparse), its labels as class
        indices (0/1 targets for a multilabel model), and the weight of each
        of its patterns' class under ``class_weight`` (None without), from
        the labels ``y`` or, for data on a cluster, their ``class_counts``.

        Raises
        ------
        ValueError
            Naming ``X_val`` or ``y_val`` and what was expected of it.
        """
        n_features = X.shape[1]
        shape = tuple(getattr(X_val, "shape", None) or np.shape(X_val))
        if len(shape) != 2 or shape[1] != n_features:
            raise ValueError(
                f"X_val must have the {n_features} features (columns) of X, one row per pattern; got shape {shape}"
            )
        try:
            X_val = validate_data(self, X_val, accept_sparse=("csr", "csc"), dtype=X.dtype, order="C", reset=False)
        except ValueError as exc:
            raise ValueError(f"X_val: {exc}") from None
        if sp.issparse(X_val):
            X_val = sp.csr_matrix(X_val)
        t_val = np.asarray(y_val)
        n_val = X_val.shape[0]
        multilabel = self._output == "sigmoid"
        if not multilabel and t_val.ndim == 2 and t_val.shape[1] == 1:  # a column of labels
            t_val = t_val.ravel()
        if t_val.shape[:1] != (n_val,):
            raise ValueError(f"y_val must have one entry per row of X_val ({n_val}); got shape {t_val.shape}")
        K = len(self.classes_)
        if multilabel:
            if t_val.ndim != 2 or t_val.shape[1] != K or not np.isin(t_val, (0, 1)).all():
                raise ValueError(
                    f"y_val must be an indicator matrix of 0 and 1 with the {K} label columns of y (y is "
                    f"multilabel); got shape {t_val.shape}"
                )
            return X_val, np.ascontiguousarray(t_val, dtype=X.dtype), None
        if t_val.ndim != 1:
            raise ValueError(
                f"y_val must hold one label per row, as y does (y is not a multilabel indicator matrix); "
                f"got shape {t_val.shape}"
            )
        try:
            unseen = np.setdiff1d(np.unique(t_val), self.classes_)
        except TypeError:  # labels that do not compare with the classes (numbers beside strings)
            unseen = np.unique(t_val.astype(str))
        if unseen.size:
            raise ValueError(
                f"y_val holds labels {unseen.tolist()!r} that are not among the classes of y {self.classes_.tolist()!r}"
            )
        k_val = np.searchsorted(self.classes_, t_val).astype(np.intp, copy=False)
        s_val = None
        if self.class_weight is not None:
            if class_counts is None:
                s_val = compute_class_weight(self.class_weight, classes=self.classes_, y=y)[k_val]
            else:
                from twolayer.classifier.on_cluster import class_weights

                s_val = class_weights(self, class_counts)[k_val]
            if not np.any(s_val > 0):
                raise ValueError(
                    "the class_weight of every label in y_val is zero; the validation set would weigh nothing"
                )
        return X_val, k_val, s_val

    def _check_warm_start_classes(self, y: Any) -> None:
        """A warm-start ``fit`` needs the classes of the earlier fit, every one of them (as ``MLPClassifier``)."""
        if np.ndim(y) == 2:  # multilabel: the number of labels is checked by _label_targets
            return
        check_classification_targets(y)
        labels = np.unique(y)
        if set(labels.tolist()) != set(self.classes_.tolist()):
            # The wording is MLPClassifier's, which callers may match on.
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the previous call to fit. "
                f"Previously got {self.classes_}, `y` has {labels}"
            )

    def _weights_to_continue_from(self, n_hidden: int) -> Params:
        """``coefs_`` and ``intercepts_`` checked for a training that continues from them with ``n_hidden`` units."""
        try:
            return self._network_weights(n_hidden=n_hidden)
        except ValueError as exc:
            raise ValueError(
                f"{exc}; a warm start or partial_fit continues from coefs_ and intercepts_ (set n_hidden to "
                "their number of hidden units, or warm_start=False to start afresh)"
            ) from None

    def _continue_from_weights(self, state: optim.TrainingState, n_features: int) -> optim.TrainingState:
        """The training state to go on from, holding ``coefs_`` and ``intercepts_`` as they are now.

        Untouched since they were published, the public weights are the running
        weights themselves (views of ``state.theta``) or, after early stopping,
        a copy of the best ones; the state then goes on as it stands, so that a
        continuation is exact. Weights set or edited since replace the running
        weights, and the best weights and score of early stopping, which
        belonged to other weights. Weights with another number of hidden units
        (``n_hidden`` set to it) start a state of their own, with a fresh
        optimiser and the training record so far.

        Parameters
        ----------
        state : TrainingState
            The estimator's training state; changed in place unless it is replaced.
        n_features : int
            ``D``.

        Returns
        -------
        TrainingState
        """
        D, M, K = int(n_features), int(self.n_hidden), len(self.classes_)
        params = self._weights_to_continue_from(M)
        dtype = state.theta.dtype
        unset_best = -math.inf if state.validation_scores is not None else None
        if state.theta.shape[0] != network.n_params(D, M, K):
            theta = np.ascontiguousarray(network.flatten(params), dtype=dtype)
            return dataclasses.replace(
                state,
                theta=theta,
                optimizer=None,
                optimizer_settings={},
                best_theta=None,
                best_validation_score=unset_best,
            )
        running = network.unflatten(state.theta, D, M, K)
        if all(_same_array(p, r) for p, r in zip(params, running)):
            return state
        # After a fit on a device (or inside its callback) the public weights are the device's
        # copies of the running or the best weights: equal to them, they are no edit.
        flat = np.concatenate([to_host(p).astype(dtype, copy=False).ravel() for p in params])
        shown = state.best_theta if (self.early_stopping and state.best_theta is not None) else state.theta
        if np.array_equal(flat, shown) or np.array_equal(flat, state.theta):
            return state
        np.copyto(state.theta, flat)
        if state.best_theta is not None:
            state.best_theta, state.best_validation_score = None, unset_best
        return state

    def check_fit_memory(
        self, n_samples: int, n_features: int, n_classes: int, *, dtype: Any = np.float64, sparse: bool = False
    ) -> None:
        """Refuse a fit that would not fit in memory before anything is allocated; warn past half of it.

        ``fit`` checks this itself; a caller that prepares much before
        fitting (a command line that prints what it will do) can check first.
        The estimate (:func:`twolayer.classifier.memory.fit_estimate`) follows
        the solver's arrays: weights, gradient and optimiser state, a batch's
        working arrays, and for the second-order solvers the Hessian products
        over every pattern.

        Parameters
        ----------
        n_samples, n_features, n_classes : int
            The training patterns, their features and the classes.
        dtype : numpy dtype, default float64
            The working dtype (that of ``X``).
        sparse : bool, default False
            Whether ``X`` is sparse.

        Raises
        ------
        twolayer.errors.InsufficientMemory
            A ``MemoryError`` naming the estimate, the memory available and
            the parameters to lower (``n_hidden``, ``batch_size``).

        Warns
        -----
        twolayer.errors.HighMemoryWarning
            When the estimate exceeds half of the memory available.
        """
        self._check_hyperparameters()
        self._check_memory(n_samples, n_features, n_classes, dtype, sparse, existing=0, stacklevel=4)

    def _check_memory(
        self, N: int, D: int, K: int, dtype: Any, sparse: bool, *, existing: int, stacklevel: int, split: bool = True
    ) -> None:
        nbytes, parts, lower, switch = fit_estimate(
            n_samples=N,
            n_features=D,
            n_hidden=self.n_hidden,
            n_classes=K,
            dtype=dtype,
            solver=self.solver,
            batch_size=self.batch_size,
            early_stopping=bool(self.early_stopping),
            validation_fraction=float(self.validation_fraction) if split else 0.0,
            sparse=sparse,
        )
        check_memory(nbytes - existing, "training", lower, parts=parts, switch=switch, stacklevel=stacklevel)

    # ------------------------------------------------------------------
    # prediction
    # ------------------------------------------------------------------

    def _check_X(self, X: Any) -> Any:
        check_is_fitted(self)
        return validate_data(self, X, accept_sparse=("csr", "csc"), dtype=_input_dtypes(X), reset=False)

    def decision_function(self, X: Any) -> np.ndarray:
        """The output activations :math:`a_k` (logits); for two classes :math:`a_1 - a_0`.

        A multilabel network gives every :math:`a_k`, two labels included.

        Returns
        -------
        ndarray of shape (N, K), or (N,) for two classes
        """
        xp = on_device.check_namespace(self, X, "decision_function")
        if xp is not None:  # computed where X is, returned there
            return on_device.predict(self, X, xp, "decision_function")
        if cluster.is_dask(X):  # a lazy Dask array of the same blocks of rows
            from twolayer.classifier.on_cluster import lazy_predict

            return lazy_predict(self, X, "decision_function")
        X = self._check_X(X)
        a2 = logits(self.params_, X, self.activation)
        return a2[:, 1] - a2[:, 0] if a2.shape[1] == 2 and self._output == "softmax" else a2

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """:math:`\\ln y_k`, from the log-softmax (log-sigmoid for multilabel): finite for every finite input.

        Returns
        -------
        ndarray of shape (N, K)
        """
        xp = on_device.check_namespace(self, X, "predict_log_proba")
        if xp is not None:  # computed where X is, returned there
            return on_device.predict(self, X, xp, "predict_log_proba")
        if cluster.is_dask(X):  # a lazy Dask array of the same blocks of rows
            from twolayer.classifier.on_cluster import lazy_predict

            return lazy_predict(self, X, "predict_log_proba")
        X = self._check_X(X)
        if self._output == "sigmoid":
            return chunked(self.params_, X, lambda p, Xc: _label_log_proba(p, Xc, self.activation))
        return chunked(self.params_, X, lambda p, Xc: network.log_forward(p, Xc, activation=self.activation))

    def predict_proba(self, X: Any) -> np.ndarray:
        """The class probabilities :math:`y_k` (PRML eq. 5.9 with softmax outputs).

        For a multilabel network, the probability of each label, independently
        (rows need not sum to one).

        Returns
        -------
        ndarray of shape (N, K)
        """
        xp = on_device.check_namespace(self, X, "predict_proba")
        if xp is not None:  # computed where X is, returned there
            return on_device.predict(self, X, xp, "predict_proba")
        if cluster.is_dask(X):  # a lazy Dask array of the same blocks of rows
            from twolayer.classifier.on_cluster import lazy_predict

            return lazy_predict(self, X, "predict_proba")
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each pattern; for a multilabel network, its labels.

        Returns
        -------
        ndarray of shape (N,), or (N, K) of 0/1 for a multilabel network
            (label ``k`` set where :math:`y_k > 1/2`, as ``MLPClassifier``'s).
        """
        xp = on_device.check_namespace(self, X, "predict")
        if xp is not None:  # computed where X is, returned there
            return on_device.predict(self, X, xp, "predict")
        if cluster.is_dask(X):  # a lazy Dask array of the same blocks of rows
            from twolayer.classifier.on_cluster import lazy_predict

            return lazy_predict(self, X, "predict")
        X = self._check_X(X)
        a2 = logits(self.params_, X, self.activation)
        if self._output == "sigmoid":
            return (a2 > 0).astype(np.int64)  # sigma(a) > 1/2 exactly where a > 0
        return self.classes_[np.argmax(a2, axis=1)]

    # ------------------------------------------------------------------
    # training state, conversion, tags
    # ------------------------------------------------------------------

    def get_training_state(self) -> dict[str, Any]:
        """Everything needed to continue fitting exactly, as plain values.

        Arrays are NumPy arrays (``theta``, the running weights in
        ``network.flatten`` order; ``best_theta``; ``velocity`` or
        ``adam_m``/``adam_v``); everything else is a JSON-serialisable scalar,
        list, string or dict (counters, ``loss_curve``, the learning rate, the
        shuffling generator's ``bit_generator.state``, ``classes`` as a list).
        Callable inside a ``callback``: the state after that epoch. Weights
        set or edited in ``coefs_`` and ``intercepts_`` since the last
        training are taken into the state first, as a warm start takes them.

        ``set_training_state`` on a new estimator with the same
        hyperparameters, then ``fit`` with ``warm_start=True``, continues bit
        for bit for ``sgd`` and ``adam`` (``n_iter`` alone differs, counting
        each call's epochs as scikit-learn does); ``lbfgs`` restarts SciPy's
        curvature memory.

        Returns
        -------
        dict
        """
        check_is_fitted(self)
        self._training = self._continue_from_weights(self._training, self.n_features_in_)
        state = state_to_dict(
            self._training,
            solver=self.solver,
            n_hidden=self.n_hidden,
            activation=self.activation,
            n_features_in=self.n_features_in_,
            classes=self.classes_,
            feature_names_in=getattr(self, "feature_names_in_", None),
        )
        if self._output != "softmax":  # absent: softmax, as in states saved before multilabel models
            state["output"] = self._output
        return state

    def set_training_state(self, state: dict[str, Any]) -> TwoLayerClassifier:
        """Restore a :meth:`get_training_state` dict; the estimator is then fitted.

        The estimator must have the ``solver``, ``n_hidden`` and ``activation``
        the state was saved with. A following ``fit`` with ``warm_start=True``
        (or ``partial_fit``) continues exactly where the saved run stopped.

        Returns
        -------
        self
        """
        # A state comes from a file: its hyperparameters are checked now, not by the fit that follows.
        self._check_hyperparameters()
        expected = {key: getattr(self, key) for key in ("solver", "n_hidden", "activation")}
        training, classes, n_features, feature_names = state_from_dict(state, expected)
        self.classes_ = classes
        self.out_activation_ = (
            "logistic" if network.check_output(state.get("output", "softmax")) == "sigmoid" else "softmax"
        )
        self._set_inputs(n_features, feature_names)
        self._training = training
        self._publish(training, final=True)
        return self

    @classmethod
    def from_params(
        cls,
        params: Params,
        classes: Any,
        *,
        hyperparameters: dict[str, Any] | None = None,
        loss: float | None = None,
        loss_curve: Sequence[float] = (),
        best_loss: float | None = None,
        validation_scores: Sequence[float] | None = None,
        best_validation_score: float | None = None,
        n_iter: int = 0,
        t: int = 0,
        feature_names_in: Sequence[str] | None = None,
        output: str = "softmax",
    ) -> TwoLayerClassifier:
        """A fitted estimator with the given weights, without training (a model file's way back).

        A warm start from it continues from these weights with a fresh optimiser.

        Parameters
        ----------
        params : Params
            ``W1`` (D, M), ``b1`` (M,), ``W2`` (M, K), ``b2`` (K,), float32 or
            float64 (the dtype the estimator then works in); copied.
        classes : array-like of shape (K,)
            The class labels, sorted and distinct, in the order of the network's outputs.
        hyperparameters : dict, optional
            The estimator's parameters (``get_params``); ``n_hidden`` must be ``M``.
        loss, loss_curve, best_loss, validation_scores, best_validation_score, n_iter, t
            The training record, as the fitted attributes of the same names
            (with a trailing underscore) hold it.
        feature_names_in : sequence of str, optional
            The names of the D input columns.
        output : {"softmax", "sigmoid"}, default "softmax"
            The output nonlinearity: "sigmoid" makes a multilabel model (its
            ``classes`` are then ``arange(K)`` as a multilabel fit sets them).

        Returns
        -------
        TwoLayerClassifier
        """
        network.check_output(output)
        model = cls(**dict(hyperparameters or {}))
        check_activation(model.activation)
        W1, b1, W2, b2 = (np.asarray(p) for p in params)
        D, M = W1.shape
        K = W2.shape[1]
        if b1.shape != (M,) or W2.shape[0] != M or b2.shape != (K,):
            raise ValueError(
                f"params must hold W1 (D, M), b1 (M,), W2 (M, K), b2 (K,); got {[p.shape for p in params]}"
            )
        if M != model.n_hidden:
            raise ValueError(f"the weights have {M} hidden units but n_hidden is {model.n_hidden!r}")
        labels = np.asarray(classes)
        if labels.shape != (K,) or not np.array_equal(np.unique(labels), labels):
            raise ValueError(f"classes must be the {K} sorted, distinct labels of the network's outputs")
        training = state_from_record(
            network.flatten(Params(W1, b1, W2, b2)),
            loss=loss,
            loss_curve=loss_curve,
            best_loss=best_loss,
            validation_scores=validation_scores,
            best_validation_score=best_validation_score,
            n_iter=n_iter,
            t=t,
        )
        model.classes_ = labels
        model.out_activation_ = "logistic" if output == "sigmoid" else "softmax"
        model._set_inputs(D, feature_names_in)
        model._training = training
        model._publish(training, final=True)
        return model

    def to_sklearn(self) -> MLPClassifier:
        """The same network as a fitted ``MLPClassifier`` (same ``predict_proba``).

        For two classes the softmax over logits :math:`(a_0, a_1)` becomes
        ``MLPClassifier``'s single logistic output :math:`\\sigma(a_1 - a_0)`.
        The hyperparameters are copied (``alpha`` by value, although the two
        estimators' minibatch solvers read it differently; see the class).

        Returns
        -------
        sklearn.neural_network.MLPClassifier
        """
        return to_mlp(self)

    @property
    def _first_layer_weights(self) -> Any:
        """``coefs_[0]``: the array whose namespace and device a prediction's input must share (dispatch on)."""
        return self.coefs_[0]

    def to_numpy(self) -> TwoLayerClassifier:
        """A copy whose weights are NumPy arrays on the host (after a fit on a device, say); self when they are.

        Returns
        -------
        TwoLayerClassifier
        """
        if all(isinstance(a, np.ndarray) for a in (*self.coefs_, *self.intercepts_)):
            return self
        copy = _shallow_copy(self)
        copy.coefs_ = [to_host(a) for a in self.coefs_]
        copy.intercepts_ = [to_host(a) for a in self.intercepts_]
        return copy

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags
