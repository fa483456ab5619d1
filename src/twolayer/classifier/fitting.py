"""How :class:`~twolayer.classifier.TwoLayerClassifier` drives the trainers of :mod:`twolayer.training`.

The estimator checks its hyperparameters and data, encodes the labels as class
indices :math:`k_n` and the sample and class weights as pattern weights
:math:`s_n`; this module turns those into what a trainer reads, the
:class:`~twolayer.training.optim.TrainingData` (pattern weights rescaled to
mean one, :math:`\\lambda = \\alpha / S`), the settings and, for early
stopping, the validation split (or the caller's own validation set) and its score. Each ``*_run`` function does
all of that first and hands back the training itself as a ``Run``, so
that the estimator can store the fitted attributes however the run ends.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import _check_sample_weight

from twolayer import network
from twolayer.classifier.chunked import logits
from twolayer.estimator import seed_sequence
from twolayer.network import Params
from twolayer.training import optim

if TYPE_CHECKING:
    from twolayer.classifier.classifier import TwoLayerClassifier

__all__ = [
    "OPTIMIZER_KEYS",
    "Run",
    "ValidationSet",
    "accuracy",
    "batch_size",
    "fresh_state",
    "full_batch_run",
    "minibatch_run",
    "minibatch_settings",
    "pattern_weights",
    "prepare_optimizer",
    "record_score",
    "start_record",
    "training_data",
    "validation_rows",
]

#: ``run(on_epoch) -> (reason, message)``: the training, ready to start (see :func:`minibatch_run`).
Run = Callable[[optim.EpochHook], tuple[str, str]]

#: ``(X_val, k_val, s_val)``: a validation set of the caller's own, checked and encoded as the
#: training data are (class indices, or 0/1 targets for a multilabel model; weights or None).
ValidationSet = tuple[Any, np.ndarray, np.ndarray | None]

#: The hyperparameters that shape an optimiser: a warm start continues the
#: stored optimiser exactly when these are unchanged, and starts a fresh one
#: (keeping the weights, as scikit-learn does) when any differs.
OPTIMIZER_KEYS = {
    "sgd": ("learning_rate_init", "momentum", "nesterovs_momentum", "learning_rate", "power_t"),
    "adam": ("learning_rate_init", "beta_1", "beta_2", "epsilon"),
}


def pattern_weights(
    model: TwoLayerClassifier, y: np.ndarray, k: np.ndarray, sample_weight: Any, X: Any
) -> np.ndarray | None:
    """The pattern weights :math:`s_n`: sample weight times class weight.

    Parameters
    ----------
    model : TwoLayerClassifier
        Its ``class_weight`` and ``classes_`` are read.
    y : ndarray of shape (N,)
        The labels.
    k : ndarray of shape (N,)
        Their class indices :math:`k_n`.
    sample_weight : array-like of shape (N,) or None
    X : ndarray or sparse matrix of shape (N, D)
        The patterns (to check the length of ``sample_weight``).

    Returns
    -------
    ndarray of shape (N,) (float64) or None
        None when there are neither sample nor class weights (all ones).
    """
    s = None
    if sample_weight is not None:
        s = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True, copy=True)
    if model.class_weight is not None:
        cw = compute_class_weight(model.class_weight, classes=model.classes_, y=y)
        s = cw[k] if s is None else s * cw[k]
    if s is not None:
        if not np.all(np.isfinite(s)):
            raise ValueError("sample_weight times class_weight must be finite")
        if not np.any(s > 0):
            raise ValueError("the sample weights (times the class weights) are all zero; at least one must be positive")
    return s


def fresh_state(
    model: TwoLayerClassifier, n_features: int, dtype: Any, class_totals: np.ndarray | None
) -> optim.TrainingState:
    """Initial weights by Glorot's rule, output biases shifted to the log class prior.

    With ``class_totals`` (the pattern weight of each class), the output
    biases start at :math:`b_k + \\ln \\pi_k - \\overline{\\ln \\pi}`, so the
    untrained network already predicts the class frequencies :math:`\\pi_k`
    (the best constant model) wherever its hidden units are quiet, instead
    of a random class. Balanced classes leave the biases unchanged; a class
    of zero weight starts at :math:`\\ln 10^{-12}` below the others.
    ``partial_fit``, which sees one batch of a stream, passes None.

    Parameters
    ----------
    model : TwoLayerClassifier
        Its ``n_hidden``, ``classes_`` and ``random_state`` are read.
    n_features : int
        :math:`D`.
    dtype : numpy dtype
        The working dtype of the weights.
    class_totals : ndarray of shape (K,) or None
        The total pattern weight of each class.

    Returns
    -------
    TrainingState
        The weights, the shuffling generator and the seed of the validation split.
    """
    seeds = seed_sequence(model.random_state).spawn(3)  # initial weights, shuffling, validation split
    params = network.init_params(
        n_features, model.n_hidden, len(model.classes_), random_state=np.random.default_rng(seeds[0]), dtype=dtype
    )
    if class_totals is not None:
        log_prior = np.log(np.maximum(class_totals / np.sum(class_totals), 1e-12))
        params.b2[...] += (log_prior - np.mean(log_prior)).astype(dtype)
    return optim.TrainingState(
        theta=np.ascontiguousarray(network.flatten(params)),
        rng=np.random.default_rng(seeds[1]),
        split_seed=int(seeds[2].generate_state(1)[0]),
    )


def minibatch_settings(
    model: TwoLayerClassifier, batch_size: int, *, early_stopping: bool, incremental: bool = False
) -> optim.MinibatchSettings:
    """The minibatch loop's settings from the estimator's hyperparameters, with the batch size decided."""
    return optim.MinibatchSettings(
        activation=model.activation,
        batch_size=batch_size,
        shuffle=bool(model.shuffle),
        max_iter=int(model.max_iter),
        tol=float(model.tol),
        n_iter_no_change=_patience(model.n_iter_no_change),
        early_stopping=early_stopping,
        incremental=incremental,
        verbose=bool(model.verbose),
    )


def prepare_optimizer(model: TwoLayerClassifier, state: optim.TrainingState) -> None:
    """Give ``state`` the optimiser of ``model.solver`` and a shuffling generator for a minibatch fit.

    The stored optimiser goes on (its moments, steps and learning rate) when
    its hyperparameters are those of ``model``; otherwise a fresh one
    replaces it, keeping the weights, as scikit-learn's warm start does.
    """
    settings = {key: getattr(model, key) for key in OPTIMIZER_KEYS[model.solver]}
    if state.optimizer is None or state.optimizer.name != model.solver or state.optimizer_settings != settings:
        state.optimizer = optim.make_optimizer(model.solver, state.theta.shape[0], state.theta.dtype, settings)
        state.optimizer_settings = settings
    if state.rng is None:
        state.rng = np.random.default_rng(seed_sequence(model.random_state).spawn(3)[1])


def start_record(state: optim.TrainingState, *, scored: bool, early_stopping: bool) -> None:
    """Ready the record a training keeps: the validation scores when a set is scored, and the best loss.

    A warm start keeps the scores so far. With early stopping the loop
    watches the validation score instead of the loss, and ``best_loss`` is
    None (as ``MLPClassifier``'s ``best_loss_``).
    """
    if scored and state.validation_scores is None:
        state.validation_scores, state.best_validation_score = [], -math.inf
    if early_stopping:
        state.best_loss = None
    elif state.best_loss is None:
        state.best_loss = math.inf


def batch_size(model: TwoLayerClassifier, n: int, *, stacklevel: int) -> int:
    """The minibatch size for ``n`` training patterns, warning when ``batch_size`` exceeds them.

    ``stacklevel`` makes the warning point at the caller of ``fit``.
    """
    if model.batch_size == "auto":
        return min(200, n)
    if int(model.batch_size) > n:
        warnings.warn(
            f"batch_size={model.batch_size} is larger than the {n} training patterns; using {n}",
            UserWarning,
            stacklevel=stacklevel,
        )
    return min(int(model.batch_size), n)


def minibatch_run(
    model: TwoLayerClassifier,
    state: optim.TrainingState,
    X: Any,
    k: np.ndarray,
    s: np.ndarray | None,
    *,
    incremental: bool,
    finite: bool = True,
    validation: ValidationSet | None = None,
    data: optim.TrainingData | None = None,
) -> Run:
    """Prepare an ``sgd`` or ``adam`` fit: the optimiser, the validation split, the data and settings.

    Parameters
    ----------
    model : TwoLayerClassifier
        The estimator whose hyperparameters and ``classes_`` are read.
    state : TrainingState
        The state to train; given an optimiser (kept when its
        hyperparameters are unchanged), a shuffling generator and, with early
        stopping, a validation record.
    X : ndarray or scipy CSR matrix of shape (N, D)
    k : ndarray of shape (N,), or (N, K)
        Class indices :math:`k_n \\in \\{0, \\dots, K - 1\\}`; for a
        multilabel model (``model._output == "sigmoid"``) the 0/1 targets
        :math:`t_{nk}` in the working dtype.
    s : ndarray of shape (N,) or None
        Pattern weights :math:`s_n`; None for all ones.
    incremental : bool
        One epoch for ``partial_fit``.
    finite : bool
        Whether the rows of ``X`` are known to be finite (see
        :attr:`TrainingData.checked <twolayer.training.optim.TrainingData>`).
    validation : ValidationSet, optional
        The caller's validation set: every row of ``X`` then trains, early
        stopping watches this set's accuracy instead of a split's, and
        without early stopping its accuracy is still recorded each epoch.
    data : TrainingData, optional
        The training data made already (a cluster's blocks,
        :mod:`twolayer.classifier.on_cluster`); ``X``, ``k`` and ``s`` are then not read.

    Returns
    -------
    Run
        Runs :func:`twolayer.training.optim.train_minibatch`.
    """
    prepare_optimizer(model, state)
    rows: np.ndarray | None = None
    validation_score: Callable[[Params], float] | None = None
    if validation is not None:
        validation_score = accuracy(model, *validation)
    elif model.early_stopping:
        rows, validation_score = _validation_split(model, state, X, k, s, finite)
    start_record(state, scored=validation_score is not None, early_stopping=bool(model.early_stopping))
    # Without early stopping the loop does not score; a validation set of one's own is scored after each epoch.
    recorded = None if model.early_stopping else validation_score
    if data is None:
        data = training_data(X, k, s, model.alpha, rows, output=model._output)
        data.checked = finite
    # batch_size, minibatch_run, _fit_validated, _fit, fit, scikit-learn's _fit_context, the caller of fit
    batch = batch_size(model, data.n, stacklevel=7)
    minibatch = minibatch_settings(model, batch, early_stopping=bool(model.early_stopping), incremental=incremental)
    n_classes = len(model.classes_)

    def run(on_epoch: optim.EpochHook) -> tuple[str, str]:
        hook = on_epoch if recorded is None else _recording(model, recorded, on_epoch)
        reason = optim.train_minibatch(
            state, data, minibatch, n_classes=n_classes, validation_score=validation_score, on_epoch=hook
        )
        return reason, "the loss was still changing"

    return run


def full_batch_run(
    model: TwoLayerClassifier,
    state: optim.TrainingState,
    X: Any,
    k: np.ndarray,
    s: np.ndarray | None,
    validation: ValidationSet | None = None,
    data: optim.TrainingData | None = None,
) -> Run:
    """Prepare an ``lbfgs`` or second-order fit on every pattern.

    Parameters
    ----------
    model : TwoLayerClassifier
        The estimator whose hyperparameters and ``classes_`` are read.
    state : TrainingState
        The state to train; its optimiser is dropped (the full-batch solvers
        keep none between calls).
    X : ndarray or scipy CSR matrix of shape (N, D)
    k : ndarray of shape (N,), or (N, K)
        Class indices :math:`k_n \\in \\{0, \\dots, K - 1\\}`, or the 0/1
        targets of a multilabel model, as for :func:`minibatch_run`.
    s : ndarray of shape (N,) or None
        Pattern weights :math:`s_n`; None for all ones.
    validation : ValidationSet, optional
        The caller's validation set, whose accuracy is recorded after every
        iteration (the full-batch solvers do not stop early).
    data : TrainingData, optional
        The training data made already (a cluster's blocks); ``X``, ``k`` and ``s`` are then not read.

    Returns
    -------
    Run
        Runs :func:`twolayer.training.optim.train_lbfgs` or
        :func:`twolayer.training.optim.train_second_order` with ``method=model.solver``.
    """
    recorded = None if validation is None else accuracy(model, *validation)
    start_record(state, scored=recorded is not None, early_stopping=False)  # full-batch solvers never stop early
    if data is None:
        data = training_data(X, k, s, model.alpha, None, output=model._output)
    settings = optim.LbfgsSettings(
        activation=model.activation,
        max_iter=int(model.max_iter),
        max_fun=int(model.max_fun),
        tol=float(model.tol),
        verbose=bool(model.verbose),
    )
    solver, n_classes = model.solver, len(model.classes_)

    def run(on_epoch: optim.EpochHook) -> tuple[str, str]:
        state.optimizer, state.optimizer_settings = None, {}
        hook = on_epoch if recorded is None else _recording(model, recorded, on_epoch)
        if solver == "lbfgs":
            return optim.train_lbfgs(state, data, settings, n_classes=n_classes, on_epoch=hook)
        return optim.train_second_order(state, data, settings, method=solver, n_classes=n_classes, on_epoch=hook)

    return run


def _recording(
    model: TwoLayerClassifier, score: Callable[[Params], float], on_epoch: optim.EpochHook
) -> optim.EpochHook:
    """``on_epoch`` after the validation score of the epoch's weights joins the record (no early stopping)."""
    D, M, K = int(model.n_features_in_), int(model.n_hidden), len(model.classes_)

    def hook(state: optim.TrainingState) -> bool:
        record_score(model, state, score(network.unflatten(state.theta, D, M, K)))
        return on_epoch(state)

    return hook


def record_score(model: TwoLayerClassifier, state: optim.TrainingState, value: float) -> None:
    """Add an epoch's validation score to the record of a training that does not stop early (see :func:`minibatch_run`)."""
    if state.validation_scores is None:
        state.validation_scores = []
    state.validation_scores.append(value)
    best = -math.inf if state.best_validation_score is None else state.best_validation_score
    state.best_validation_score = max(best, value)
    if model.verbose:
        print(f"Validation score: {value:f}")


def accuracy(
    model: TwoLayerClassifier, X_val: Any, k_val: np.ndarray, s_val: np.ndarray | None
) -> Callable[[Params], float]:
    """The held-out accuracy of a network on ``X_val``: the score early stopping watches.

    Parameters
    ----------
    model : TwoLayerClassifier
        Its ``activation`` is read.
    X_val : ndarray or scipy CSR matrix of shape (V, D)
    k_val : ndarray of shape (V,), or (V, K)
        Class indices, or the 0/1 targets of a multilabel model: then the
        score is the subset accuracy (every label of a pattern right), as
        ``MLPClassifier``'s.
    s_val : ndarray of shape (V,) or None
        Weights of the patterns in the average; None for all ones.

    Returns
    -------
    callable
        ``score(params) -> float``, higher is better.
    """
    multilabel = k_val.ndim == 2

    def score(params: Params) -> float:
        a2 = logits(params, X_val, model.activation)
        if multilabel:  # y_k > 1/2 exactly where a_k > 0
            right = np.all((a2 > 0) == (k_val > 0.5), axis=1)
        else:
            right = np.argmax(a2, axis=1) == k_val
        return float(np.average(right, weights=s_val))

    return score


def _patience(n_iter_no_change: float) -> int:
    """``n_iter_no_change`` as the count the loop compares with; ``numpy.inf`` (never stop early) as one never reached."""
    return sys.maxsize if math.isinf(n_iter_no_change) else int(n_iter_no_change)


def training_data(
    X: Any, k: np.ndarray, s: np.ndarray | None, alpha: float, rows: np.ndarray | None, *, output: str = "softmax"
) -> optim.TrainingData:
    """The training rows with their weights rescaled to mean one, and :math:`\\lambda = \\alpha / S`.

    Parameters
    ----------
    X : ndarray or scipy CSR matrix of shape (N, D)
    k : ndarray of shape (N,), or (N, K) for sigmoid outputs
        Class indices :math:`k_n`, or the 0/1 targets.
    s : ndarray of shape (N,) or None
        Pattern weights :math:`s_n`; None for all ones.
    alpha : float
        The weight decay :math:`\\alpha`.
    rows : ndarray or None
        The training rows; None for all.
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity the data train.

    Returns
    -------
    TrainingData
        Equal weights become no weights (exactly the unweighted problem, with
        :math:`S` their sum); others are :math:`\\bar w_n = s_n N / S` over the
        :math:`N` training rows.
    """
    n = X.shape[0] if rows is None else rows.shape[0]
    if s is None:
        return optim.TrainingData(X=X, k=k, w=None, lam=float(alpha) / n, rows=rows, output=output)
    s_train = s if rows is None else s[rows]
    S = float(np.sum(s_train))
    if not S > 0:
        raise ValueError("the training patterns' sample weights are all zero; at least one must be positive")
    if np.all(s_train == s_train[0]):  # equal weights: exactly the unweighted problem
        return optim.TrainingData(X=X, k=k, w=None, lam=float(alpha) / S, rows=rows, output=output)
    w = (s * (n / S)).astype(X.dtype)
    return optim.TrainingData(X=X, k=k, w=w, lam=float(alpha) / S, rows=rows, output=output)


def validation_rows(
    model: TwoLayerClassifier, state: optim.TrainingState, n: int, k: np.ndarray, s: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Early stopping's split of ``n`` rows, stratified and seeded once per state.

    The same rows wherever the data are (on a device too): the split reads
    only the labels and the state's seed. For a multilabel model it is not
    stratified (as ``MLPClassifier``'s).

    Parameters
    ----------
    model : TwoLayerClassifier
        Its ``validation_fraction`` and ``random_state`` are read.
    state : TrainingState
        Its ``split_seed`` (drawn from ``random_state`` when None).
    n : int
        The number of rows.
    k : ndarray of shape (n,), or (n, K)
        Class indices, or the 0/1 targets of a multilabel model.
    s : ndarray of shape (n,) or None
        Pattern weights.

    Returns
    -------
    train : ndarray
        The training rows, sorted.
    val : ndarray
        The held-out rows, in the split's order.
    s_val : ndarray or None
        The pattern weights of the held-out rows.
    """
    multilabel = k.ndim == 2
    if state.split_seed is None:
        state.split_seed = int(seed_sequence(model.random_state).spawn(3)[2].generate_state(1)[0])
    train, val = train_test_split(
        np.arange(n),
        test_size=model.validation_fraction,
        random_state=state.split_seed,
        stratify=None if multilabel else k,
    )
    if val.shape[0] < 2:
        raise ValueError("the validation set is too small: increase validation_fraction or the data")
    s_val = None if s is None else s[val]
    if s_val is not None and not np.any(s_val > 0):
        raise ValueError("the validation set's sample weights are all zero; change random_state or validation_fraction")
    return np.sort(train), val, s_val


def _validation_split(
    model: TwoLayerClassifier,
    state: optim.TrainingState,
    X: Any,
    k: np.ndarray,
    s: np.ndarray | None,
    finite: bool = True,
) -> tuple[np.ndarray, Callable[[Params], float]]:
    """The training rows (sorted) and the held-out accuracy, from :func:`validation_rows`.

    For a multilabel model the accuracy is the subset accuracy: every label of a pattern right.
    """
    train, val, s_val = validation_rows(model, state, X.shape[0], k, s)
    if not finite:  # the training rows are checked as the epoch gathers them, these are not
        optim.check_finite(X, np.sort(val))
    return train, accuracy(model, X[val], k[val], s_val)
