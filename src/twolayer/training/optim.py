"""Optimisers and training loops for the two-layer network: every public name in one place.

The estimators (:mod:`twolayer.classifier`, :mod:`twolayer.bayes`) validate
data and hyperparameters; the training package trains. It minimises the
regularised error of PRML eqs. 5.112 and 5.122–5.123,

.. math::

    \\tilde E(w) = \\sum_n s_n E_n(w) + \\sum_g \\frac{\\alpha_g}{2} \\lVert w_g \\rVert^2,

where :math:`E_n` is the cross-entropy of pattern :math:`n` (PRML eq. 5.24),
:math:`s_n` its weight and :math:`w_g` the parameter groups ``W1``, ``b1``,
``W2``, ``b2`` (:mod:`twolayer.prior`); a single ``alpha`` decays the weights
``W1`` and ``W2`` and leaves the biases free, :math:`\\alpha_g = (\\alpha, 0,
\\alpha, 0)`. Every solver follows the same function. Write
:math:`S = \\sum_n s_n` (``S = N`` without weights) and :math:`\\bar w_n = s_n N / S`
for the weights rescaled to mean one; then

- L-BFGS minimises :math:`\\tilde E / S`, with gradient
  :math:`\\tfrac{1}{N} \\sum_n \\bar w_n \\nabla E_n + \\lambda_g w_g`, where
  :math:`\\lambda_g = \\alpha_g / S` (``TrainingData.lam``);
- a minibatch solver steps along
  :math:`g = \\tfrac{1}{B} \\sum_{n \\in \\text{batch}} \\bar w_n \\nabla E_n + \\lambda_g w_g`
  for a batch of ``B`` patterns, whose average over an epoch of equal batches
  is :math:`\\nabla \\tilde E / S`, the L-BFGS direction.

Weights thus count patterns: an integer weight is the same as repeating the
pattern, and ``alpha`` always means "per ``S`` patterns", whatever the batch size.

The optimisers update one flat parameter vector in place; :func:`twolayer.network.unflatten`
gives ``W1, b1, W2, b2`` as views of it, so the products read the weights
without copies.

Where each idea lives:

- :mod:`twolayer.training.objective`: :func:`objective` and the decay per group;
- :mod:`twolayer.training.batch`: the fast batch gradient and :func:`check_finite`;
- :mod:`twolayer.training.kernels`: the compiled loops and the :data:`FUSED` switch;
- :mod:`twolayer.training.optimizers`: :class:`SGD`, :class:`Adam`;
- :mod:`twolayer.training.state`: :class:`TrainingState`, :class:`TrainingData`, the settings;
- :mod:`twolayer.training.minibatch`: :func:`train_minibatch`;
- :mod:`twolayer.training.full_batch`: :func:`train_lbfgs`, :func:`train_second_order`;
- :mod:`twolayer.training.diagnosis`: :class:`Diverged`, the divergence that names its likely
  cause (the weight decay, the inputs' scale, the learning rate), :func:`likely_cause`.

The switches :data:`FUSED`, :data:`UFUNC_CHUNK` and :data:`CHECK_ROWS` live in
the modules that read them; reading or setting them here reads or sets them there.

References
----------
C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), §5.2.4
(gradient descent, minibatches), §5.3 (backpropagation), §5.5.1 (weight decay),
§5.7 (eqs. 5.122–5.123, one precision per group).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from twolayer.errors import NonFiniteInput, TrainingDiverged
from twolayer.training import batch, full_batch, kernels, optimizers
from twolayer.training.batch import check_finite
from twolayer.training.diagnosis import CAUSES, Diverged, largest_input, likely_cause
from twolayer.training.full_batch import SECOND_ORDER_METHODS, SMALL_PROBLEM, train_lbfgs, train_second_order
from twolayer.training.kernels import checks_rows_as_it_gathers
from twolayer.training.minibatch import train_minibatch
from twolayer.training.objective import objective
from twolayer.training.optimizers import LEARNING_RATE_SCHEDULES, SGD, Adam, Optimizer, Segments, make_optimizer
from twolayer.training.state import (
    EpochHook,
    LbfgsSettings,
    MinibatchSettings,
    Snapshot,
    TrainingData,
    TrainingState,
)

__all__ = [
    "CAUSES",
    "LEARNING_RATE_SCHEDULES",
    "SECOND_ORDER_METHODS",
    "SGD",
    "SMALL_PROBLEM",
    "Adam",
    "Diverged",
    "EpochHook",
    "LbfgsSettings",
    "MinibatchSettings",
    "NonFiniteInput",
    "Optimizer",
    "Segments",
    "Snapshot",
    "TrainingData",
    "TrainingDiverged",
    "TrainingState",
    "check_finite",
    "checks_rows_as_it_gathers",
    "largest_input",
    "likely_cause",
    "make_optimizer",
    "objective",
    "train_lbfgs",
    "train_minibatch",
    "train_second_order",
]


def _forwarded(module: types.ModuleType, name: str) -> property:
    """A switch of ``module``, read and set through this module."""

    def get(_: types.ModuleType) -> Any:
        return getattr(module, name)

    def set_(_: types.ModuleType, value: Any) -> None:
        setattr(module, name, value)

    return property(get, set_, doc=f"``{module.__name__}.{name}``")


class _Facade(types.ModuleType):
    """This module, with the switches forwarded: ``optim.FUSED = False`` sets ``kernels.FUSED``."""

    FUSED = _forwarded(kernels, "FUSED")
    UFUNC_CHUNK = _forwarded(optimizers, "UFUNC_CHUNK")
    CHECK_ROWS = _forwarded(batch, "CHECK_ROWS")
    SMALL_PROBLEM = _forwarded(full_batch, "SMALL_PROBLEM")


sys.modules[__name__].__class__ = _Facade
