"""The regularised error that every trainer minimises, and its decay on a flat vector.

:func:`objective` is the reference, from :mod:`twolayer.network`'s error;
``_Layout`` gives the trainers the decay of each parameter group of a
flat vector: its penalty, its gradient and the optimiser's segments.
"""

from __future__ import annotations

import itertools

import numpy as np

from twolayer import network
from twolayer.network import Params
from twolayer.prior import Decay, decay_per_group, is_weight_decay
from twolayer.training.optimizers import Segments

__all__ = ["objective"]


def objective(
    params: Params,
    X: np.ndarray,
    T: np.ndarray,
    sample_weight: np.ndarray | None = None,
    *,
    alpha: Decay = 0.0,
    activation: str = "tanh",
    output: str = "softmax",
) -> float:
    """The regularised error per unit of pattern weight, :math:`\\tilde E / S`.

    This is what ``loss_`` reports and what every solver minimises:

    .. math::

        \\frac{1}{S} \\Bigl( \\sum_n s_n E_n(w) + \\frac{\\alpha}{2}
        (\\lVert W_1 \\rVert^2 + \\lVert W_2 \\rVert^2) \\Bigr),
        \\qquad S = \\sum_n s_n,

    which equals scikit-learn's ``MLPClassifier`` L-BFGS loss for the same
    weights, data and sample weights.

    Parameters
    ----------
    params : Params
    X : ndarray of shape (N, D)
    T : ndarray of shape (N, K)
        1-of-K targets.
    sample_weight : ndarray of shape (N,), optional
        :math:`s_n`; ones when omitted.
    alpha : float, 4 floats or mapping, default 0
        The weight-decay coefficient :math:`\\alpha` on ``W1`` and ``W2``, or
        one per group (``W1``, ``b1``, ``W2``, ``b2``), the penalty then
        :math:`\\sum_g \\tfrac{\\alpha_g}{2} \\lVert w_g \\rVert^2`
        (see :func:`twolayer.prior.decay_per_group`).
    activation : str, default "tanh"
    output : {"softmax", "sigmoid"}, default "softmax"
        The output nonlinearity; ``T`` then holds K independent 0/1 targets
        per row and the error is the binary cross-entropy.

    Returns
    -------
    float

    References
    ----------
    PRML eq. 5.24 (the error), eq. 5.112 (weight decay) and eqs. 5.122–5.123 (one
    precision per group).
    """
    E = network.error(params, X, T, sample_weight, activation=activation, output=output)
    S = float(X.shape[0]) if sample_weight is None else float(np.sum(sample_weight))
    decay = decay_per_group(alpha)
    blocks = [np.asarray(p, dtype=np.float64) for p in params]
    if is_weight_decay(decay):
        W1, _, W2, _ = blocks
        penalty = 0.5 * decay[0] * (float(np.vdot(W1, W1)) + float(np.vdot(W2, W2)))  # eq. 5.112
    else:
        penalty = 0.5 * sum(a_g * float(np.vdot(w_g, w_g)) for a_g, w_g in zip(decay, blocks))  # eqs. 5.122–5.123
    return (E + penalty) / S


class _Layout:
    """The four parameter groups of a flat vector and the decay on each (PRML eqs. 5.112, 5.122–5.123).

    ``decay`` is ``TrainingData.lam``: one number for the weights ``W1``
    and ``W2`` (biases free) or four, one per group.
    """

    def __init__(self, n_features: int, n_hidden: int, n_classes: int, decay: Decay = 0.0) -> None:
        D, M, K = n_features, n_hidden, n_classes
        self.dims = (D, M, K)
        self.decay = decay_per_group(decay)
        self.weight_decay = is_weight_decay(self.decay)
        ends = np.cumsum([0, D * M, M, M * K, K])
        self.blocks = tuple(slice(int(a), int(b)) for a, b in itertools.pairwise(ends))  # W1 | b1 | W2 | b2
        # For an optimiser step with lam = 1: each block's own decay.
        self.segments: Segments = tuple(zip(self.blocks, self.decay))

    def penalty(self, theta: np.ndarray) -> float:
        """:math:`\\sum_g \\tfrac{\\lambda_g}{2} \\lVert w_g \\rVert^2`, each norm accumulated in the working dtype.

        One decay on the weights is summed as :math:`\\tfrac{\\lambda}{2} (\\lVert W_1 \\rVert^2
        + \\lVert W_2 \\rVert^2)`, so that a plain ``lam`` and its four groups
        :math:`(\\lambda, 0, \\lambda, 0)` give the same bits.
        """
        norms = [float(np.dot(theta[block], theta[block])) if lam else 0.0 for block, lam in self.segments]
        if self.weight_decay:
            return 0.5 * self.decay[0] * (norms[0] + norms[2])
        return 0.5 * sum(lam * norm for lam, norm in zip(self.decay, norms))

    def add_decay(self, theta: np.ndarray, grad: np.ndarray, tmp: np.ndarray) -> None:
        """``grad += lambda_g * w_g`` on every decayed group (the gradient of the penalty).

        ``tmp`` is scratch of ``theta``'s size.
        """
        for block, lam in self.segments:
            if lam != 0.0:
                scaled = np.multiply(theta[block], lam, out=tmp[block])
                grad[block] += scaled
