"""The minibatch loop: epochs of SGD or Adam steps, early stopping, divergence and input checks."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from twolayer import network
from twolayer.cluster import RowBlocks
from twolayer.errors import NonFiniteInput
from twolayer.network import Params
from twolayer.training.batch import _batch_error_and_gradient, _non_finite_input, _Workspace, check_finite
from twolayer.training.blocked import BlockedMinibatch
from twolayer.training.diagnosis import diverged
from twolayer.training.kernels import _kernels
from twolayer.training.objective import _Layout
from twolayer.training.optimizers import Optimizer
from twolayer.training.state import EpochHook, MinibatchSettings, TrainingData, TrainingState, _dims

__all__ = ["reached_plateau", "track_improvement", "train_minibatch"]


def train_minibatch(
    state: TrainingState,
    data: TrainingData,
    settings: MinibatchSettings,
    *,
    n_classes: int,
    validation_score: Callable[[Params], float] | None = None,
    on_epoch: EpochHook | None = None,
) -> str:
    """Run epochs of minibatch steps until a stopping rule fires.

    Each epoch visits every training row once, in batches of
    ``settings.batch_size`` (a fresh permutation from ``state.rng`` when
    shuffling), stepping along
    :math:`\\tfrac{1}{B} \\sum_{\\text{batch}} \\bar w_n \\nabla E_n + \\lambda w`.
    After the epoch: the loss (the data term summed over its batches, each
    at the weights it saw, plus the decay of the epoch's final weights,
    divided by ``S``) joins ``loss_curve``;
    with early stopping the validation score joins ``validation_scores`` and
    the best weights are kept; the learning-rate schedule and the
    no-improvement counter move as scikit-learn's do; then ``on_epoch(state)``
    runs, and returning True stops.

    Parameters
    ----------
    state : TrainingState
        Updated in place; ``state.optimizer`` must be set.
    data : TrainingData
    settings : MinibatchSettings
    n_classes : int
    validation_score : callable, optional
        ``validation_score(params) -> float``, higher is better; required
        when ``settings.early_stopping``.
    on_epoch : callable, optional

    Returns
    -------
    str
        Why training stopped: ``"converged"``, ``"max_iter"``, ``"callback"``
        or ``"incremental"`` (the one epoch of ``partial_fit``).

    Raises
    ------
    Diverged
        (a :class:`~twolayer.errors.TrainingDiverged`) When the error becomes
        non-finite, naming the likely cause (:mod:`twolayer.training.diagnosis`);
        ``state`` then holds the weights and optimiser state of the last
        finished epoch. Finite inputs whose products overflow are such a
        cause, never :class:`NonFiniteInput`.
    NonFiniteInput
        When ``data.checked`` is False and a training row is not finite;
        the weights and optimiser state are restored as for divergence (the
        shuffling generator has moved on).

    References
    ----------
    PRML §5.2.4 (sequential and minibatch gradient descent), §5.5.2 (early stopping).
    """
    optimizer = state.optimizer
    if optimizer is None:
        raise ValueError("train_minibatch needs state.optimizer")
    run: _Minibatch | BlockedMinibatch = (
        BlockedMinibatch(state, data, settings, n_classes)
        if isinstance(data.X, RowBlocks)
        else _Minibatch(state, data, settings, n_classes)
    )
    state.n_iter = 0
    snapshot = None
    for _ in range(settings.max_iter):
        snapshot = state.snapshot(reuse=snapshot)
        # Overflow is caught by the finiteness checks of the epoch and reported as divergence.
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                loss = run.epoch()
        except NonFiniteInput:
            state.restore(snapshot)
            raise
        if loss is None:
            state.restore(snapshot)
            if isinstance(data.X, np.ndarray) and not data.checked:
                check_finite(data.X, data.rows)  # the error may come from a row the epoch had not reached
            raise diverged(
                f"training diverged in epoch {len(state.loss_curve) + 1}: the error became non-finite",
                data.lam,
                state.theta.dtype,
                data.X,
                data.rows,
                sgd_learning_rate=optimizer.learning_rate if optimizer.name == "sgd" else None,
                learning_rate=optimizer.learning_rate_init,
                minibatch=True,
                suffix=" The weights of the last finished epoch were kept.",
            )
        state.n_iter += 1
        state.t += data.n
        state.loss = loss
        state.loss_curve.append(loss)
        if settings.verbose:
            print(f"Iteration {state.n_iter}, loss = {loss:.8f}")
        _track_improvement(state, settings, run.params, validation_score)
        optimizer.epoch_end(state.t)
        converged = reached_plateau(state, settings, optimizer)
        if on_epoch is not None and on_epoch(state):
            return "callback"
        if converged:
            return "converged"
        if settings.incremental:
            return "incremental"
    return "max_iter"


class _Minibatch:
    """One fit's buffers for the minibatch loop, and its epoch.

    Everything of the size of a batch or of the weights is allocated here,
    once; an epoch then allocates only the permutation and per-batch vectors
    of length ``B``.
    """

    def __init__(self, state: TrainingState, data: TrainingData, settings: MinibatchSettings, n_classes: int) -> None:
        theta = state.theta
        D, M, K = _dims(theta, data, n_classes)
        self.state, self.data, self.settings = state, data, settings
        self.params = network.unflatten(theta, D, M, K)  # views: the optimiser's steps show through
        self.grad = np.empty_like(theta)
        self.grad_params = network.unflatten(self.grad, D, M, K)
        self.layout = _Layout(D, M, K, data.lam)
        self.n = data.n
        self.B = int(min(max(settings.batch_size, 1), self.n))
        self.dense = isinstance(data.X, np.ndarray)
        self.contiguous = self.dense and data.rows is None and not settings.shuffle  # batches are slices of X
        kernels = _kernels()
        # The compiled gather copies without casting or bounds checks: only rows of the working dtype.
        self.compiled_gather = (
            self.dense
            and not self.contiguous
            and kernels is not None
            and kernels.gather is not None
            and data.X.dtype == theta.dtype
            and data.X.flags.c_contiguous
        )
        self.ws = _Workspace(
            self.B, D, M, K, theta.dtype, gather=self.dense and not self.contiguous, output=data.output
        )
        self.order = np.empty(self.n, dtype=np.intp)

    def _shuffle(self) -> None:
        """The epoch's order of the training rows (indices into ``data.X``)."""
        state, data, order = self.state, self.data, self.order
        if self.settings.shuffle:
            if state.rng is None:
                raise ValueError("shuffling needs state.rng")
            order[...] = state.rng.permutation(self.n)
        else:
            order[...] = np.arange(self.n)
        if data.rows is not None:
            order[...] = data.rows[order]

    def epoch(self) -> float | None:
        """One pass over the training rows; the epoch's loss, or None on a non-finite error."""
        total = self.batches()
        if total is None or not np.isfinite(self.state.theta).all():
            return None
        return total / self.n + self.layout.penalty(self.state.theta)  # (data term + decay at the epoch's end) / S

    def batches(self) -> float | None:
        """Steps over every training row in the epoch's order: :math:`\\sum_n \\bar w_n E_n`, each at the weights it saw.

        None on a non-finite error.
        """
        data, ws, theta, grad = self.data, self.ws, self.state.theta, self.grad
        optimizer, layout = self.state.optimizer, self.layout
        assert optimizer is not None  # train_minibatch checked it
        activation, order, B, n = self.settings.activation, self.order, self.B, self.n
        rows_buffer = ws.X  # the gathered dense rows; None where batches are slices of X or sparse
        self._shuffle()
        # Unchecked rows are checked as they are gathered (the compiled gather copies and
        # tests), or else all at once before the epoch.
        kernels = _kernels() if self.compiled_gather else None
        if self.dense and not data.checked and not self.compiled_gather:
            check_finite(data.X, data.rows)
        total = 0.0  # sum over batches of sum_n w_n E_n
        for start in range(0, n, B):
            stop = min(start + B, n)
            b = stop - start
            if self.contiguous:
                Xb, kb = data.X[start:stop], data.k[start:stop]
                wb = None if data.w is None else data.w[start:stop]
            else:
                idx = order[start:stop]
                # Gather into reusable buffers: no copy of X per epoch, no allocation per batch.
                # mode="clip" (the indices are valid) because take buffers `out` under "raise".
                if kernels is not None:
                    assert rows_buffer is not None  # a compiled gather implies a dense gather
                    Xb = rows_buffer[:b]
                    bad = kernels.gather(data.X, idx, Xb)
                    if bad >= 0:  # only possible while the rows are unchecked
                        raise _non_finite_input(data.X, int(idx[bad]))
                else:
                    Xb = (
                        data.X[idx]
                        if rows_buffer is None
                        else np.take(data.X, idx, axis=0, out=rows_buffer[:b], mode="clip")
                    )
                if ws.T is not None:  # sigmoid outputs: the target rows themselves
                    kb = np.take(data.k, idx, axis=0, out=ws.T[:b], mode="clip")
                else:
                    kb = np.take(data.k, idx, out=ws.k[:b], mode="clip")
                wb = None if data.w is None else np.take(data.w, idx, out=ws.w[:b], mode="clip")
            total += _batch_error_and_gradient(
                self.params, Xb, kb, wb, 1.0 / b, activation, ws, self.grad_params, data.output
            )
            if not math.isfinite(total):
                return None
            optimizer.step(theta, grad, 1.0, layout.segments)  # along (1/B) sum w_n grad E_n + lam_g w_g
        data.checked = True  # every training row has been gathered
        return total


def _track_improvement(
    state: TrainingState,
    settings: MinibatchSettings,
    params: Params,
    validation_score: Callable[[Params], float] | None,
) -> None:
    """Update the best loss or score and the no-improvement counter (as scikit-learn); keep the best weights."""
    score = _epoch_score(settings, params, validation_score)
    if track_improvement(state, settings, score):
        if state.best_theta is None:
            state.best_theta = state.theta.copy()
        else:
            np.copyto(state.best_theta, state.theta)


def _epoch_score(
    settings: MinibatchSettings, params: Params, validation_score: Callable[[Params], float] | None
) -> float | None:
    """The held-out score of the epoch's weights under early stopping; None without it."""
    if not settings.early_stopping:
        return None
    if validation_score is None:
        raise ValueError("early stopping needs a validation_score")
    return float(validation_score(params))


def reached_plateau(state: TrainingState, settings: MinibatchSettings, optimizer: Optimizer) -> bool:
    """Whether training stops after this epoch for want of improvement (as scikit-learn's MLPClassifier).

    After more than ``n_iter_no_change`` epochs without improvement, SGD's
    ``"adaptive"`` schedule first divides its learning rate (and the count
    starts again); any other optimiser, or SGD at its smallest rate, stops.
    """
    if state.no_improvement_count <= settings.n_iter_no_change:
        return False
    if optimizer.plateau():
        if settings.verbose:
            what = "Validation score" if settings.early_stopping else "Training loss"
            print(
                f"{what} did not improve more than tol={settings.tol} "
                f"for {settings.n_iter_no_change} consecutive epochs. Stopping."
            )
        return True
    state.no_improvement_count = 0
    if settings.verbose:
        print(f"Learning rate reduced to {optimizer.learning_rate}")
    return False


def track_improvement(state: TrainingState, settings: MinibatchSettings, score: float | None) -> bool:
    """The no-improvement counter and the best loss, or under early stopping the best held-out score.

    ``score`` is the epoch's held-out score under early stopping (None
    without it, when the epoch's training loss is what counts), as
    scikit-learn's MLPClassifier counts. Returns whether the score is the best
    so far, so that the caller keeps the epoch's weights in its own way (a copy
    on the host, a reference on a device).
    """
    if settings.early_stopping:
        if score is None:
            raise ValueError("early stopping needs the epoch's held-out score")
        scores = state.validation_scores if state.validation_scores is not None else []
        scores.append(score)
        state.validation_scores = scores
        best = -math.inf if state.best_validation_score is None else state.best_validation_score
        if settings.verbose:
            print(f"Validation score: {score:f}")
        state.no_improvement_count = state.no_improvement_count + 1 if score < best + settings.tol else 0
        if score > best:
            state.best_validation_score = score
            return True
        return False
    loss = state.loss_curve[-1]
    best = math.inf if state.best_loss is None else state.best_loss
    state.no_improvement_count = state.no_improvement_count + 1 if loss > best - settings.tol else 0
    if loss < best:
        state.best_loss = loss
    return False
