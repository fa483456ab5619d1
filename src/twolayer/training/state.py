"""What a training run reads and keeps: its data, settings and resumable state."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twolayer.prior import Decay
from twolayer.training.optimizers import Optimizer

__all__ = ["EpochHook", "LbfgsSettings", "MinibatchSettings", "Snapshot", "TrainingData", "TrainingState"]

# on_epoch(state) -> True to stop: the estimator's hook, called after each epoch.
EpochHook = Callable[["TrainingState"], bool]

# The weights and the optimiser's state (None: a fresh optimiser) at an epoch's start.
Snapshot = tuple[np.ndarray, "dict[str, Any] | None"]


@dataclass
class TrainingState:
    """Everything a training run needs to continue exactly where it stopped.

    ``theta`` is the current (running) flat weight vector; ``best_theta`` the
    weights of the best validation score when early stopping. Counters follow
    scikit-learn: ``n_iter`` counts the epochs (iterations) of the current
    call, ``t`` the patterns processed over all calls. ``loss`` is the latest
    loss (``loss_curve[-1]``, or a full-batch solver's final value when it
    made no iteration).
    """

    theta: np.ndarray
    optimizer: Optimizer | None = None
    optimizer_settings: dict[str, Any] = field(default_factory=dict)
    n_iter: int = 0
    t: int = 0
    loss: float | None = None
    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] | None = None
    best_loss: float | None = math.inf
    best_validation_score: float | None = None
    no_improvement_count: int = 0
    best_theta: np.ndarray | None = None
    rng: np.random.Generator | None = None
    split_seed: int | None = None

    def snapshot(self, reuse: Snapshot | None = None) -> Snapshot:
        """Copies of the weights and optimiser state, to restore after divergence.

        ``reuse``, an earlier snapshot of this state, lends its buffers, so that
        an epoch's snapshot allocates nothing. A fresh optimiser's moments are
        zero and are not copied: restoring resets it. (Each new copy of a weight
        vector's size is a page-faulting allocation.)
        """
        if reuse is None:
            theta = self.theta.copy()
        else:
            theta = reuse[0]
            np.copyto(theta, self.theta)
        opt = self.optimizer
        if opt is None or opt.fresh:
            return theta, None
        return theta, opt.state(into=None if reuse is None else reuse[1])

    def restore(self, snapshot: Snapshot) -> None:
        theta, opt = snapshot
        np.copyto(self.theta, theta)
        if self.optimizer is not None:
            if opt is None:
                self.optimizer.reset()
            else:
                self.optimizer.load_state(opt)


@dataclass
class TrainingData:
    """The training patterns as the loops read them.

    Attributes
    ----------
    X : ndarray (C-contiguous) or scipy CSR matrix of shape (N_all, D)
        Every pattern, in the working dtype.
    k : ndarray of shape (N_all,), or (N_all, K) for sigmoid outputs
        The class index :math:`k_n \\in \\{0, \\dots, K - 1\\}` of each
        pattern (its target is the 1-of-K code :math:`t_{nk_n} = 1`); for
        sigmoid outputs, the targets :math:`t_{nk} \\in \\{0, 1\\}` themselves
        (an indicator matrix, C-contiguous, in the working dtype).
    w : ndarray of shape (N_all,) or None
        Pattern weights rescaled to mean one over the training rows
        (:math:`\\bar w_n = s_n N / S`); None for unit weights.
    lam : float, 4 floats or mapping
        The decay per step, :math:`\\lambda = \\alpha / S`: one number on the
        weights ``W1`` and ``W2`` (biases free, PRML eq. 5.112), or one
        :math:`\\lambda_g = \\alpha_g / S` per group ``W1``, ``b1``, ``W2``,
        ``b2`` (eqs. 5.122–5.123; see :func:`twolayer.prior.decay_per_group`). A number
        and its four groups :math:`(\\lambda, 0, \\lambda, 0)` train alike, bit
        for bit.
    rows : ndarray or None
        The indices of the training rows (the others are held out for
        validation); None for all rows.
    checked : bool
        Whether the training rows of a dense ``X`` are known to be finite.
        When False, the first epoch checks each row as it gathers it into
        its batch and raises :class:`NonFiniteInput` naming the first bad
        entry, which spares input validation a separate pass over all of ``X``.
    output : {"softmax", "sigmoid"}
        The output nonlinearity (:data:`twolayer.network.OUTPUTS`): 1-of-K
        classes, or K independent labels with the binary cross-entropy.
    """

    X: Any
    k: np.ndarray
    w: np.ndarray | None
    lam: Decay
    rows: np.ndarray | None = None
    checked: bool = True
    output: str = "softmax"

    @property
    def n(self) -> int:
        return self.X.shape[0] if self.rows is None else self.rows.shape[0]


@dataclass(frozen=True)
class MinibatchSettings:
    """The hyperparameters of the minibatch loop, named as the estimator names them."""

    activation: str
    batch_size: int
    shuffle: bool
    max_iter: int
    tol: float
    n_iter_no_change: int
    early_stopping: bool
    incremental: bool = False
    verbose: bool = False


@dataclass(frozen=True)
class LbfgsSettings:
    """The hyperparameters of the L-BFGS run.

    ``tol`` is L-BFGS-B's ``gtol`` (the largest gradient component at which it
    stops); ``ftol``, its relative-reduction test, keeps SciPy's default when None.
    """

    activation: str
    max_iter: int
    max_fun: int
    tol: float
    verbose: bool = False
    ftol: float | None = None


def _dims(theta: np.ndarray, data: TrainingData, n_classes: int) -> tuple[int, int, int]:
    D = data.X.shape[1]
    K = n_classes
    M = (theta.shape[0] - K) // (D + 1 + K)  # W = (D + 1) M + (M + 1) K
    return D, M, K
