"""What ``twolayer train`` judges of its data and its run: inputs near float64's limits, divergence, verdicts.

Training is the estimator's; this module says, in the command line's words, what went wrong or
what the run is worth: the standardisation of extreme columns (:func:`standardisation`), the
refusal of values the working dtype cannot hold (:func:`check_range`), the one line for a diverged
run naming its likely cause and option (:func:`diverged_message`), and the verdict on a run that
ended without learning (:func:`judge`), which the summary gives instead of "converged".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from twolayer.cli.common import label
from twolayer.errors import DataError

if TYPE_CHECKING:
    from twolayer.cli.train import Outcome, Run

__all__ = [
    "SATURATING",
    "Verdict",
    "check_range",
    "column_name",
    "diverged_message",
    "input_scale_hint",
    "judge",
    "largest_input",
    "standardisation",
]


def standardisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """StandardScaler's mean and scale of the columns of ``X``, also for values near float64's limits.

    The variance squares deviations, which overflow beyond about 1e154 (and
    underflow below 1e-154, making a column look constant). A column whose
    largest magnitude lies outside :math:`[2^{-256}, 2^{256}]` is therefore
    divided by a power of two near it (exact: only the exponents change), its
    mean and scale are computed, and both are multiplied back. Other columns
    are not touched, so that their figures are the very bits of
    StandardScaler's.
    """
    from sklearn.preprocessing import StandardScaler

    magnitude = np.maximum(X.max(axis=0), -X.min(axis=0))
    extreme = (magnitude > 2.0**256) | ((magnitude > 0) & (magnitude < 2.0**-256))
    if not extreme.any():
        scaler = StandardScaler().fit(X)
        return scaler.mean_, scaler.scale_
    factor = np.ones(X.shape[1])
    # 2**(e - 1) for |x| < 2**e: the divided column lies in [-2, 2), and 2**1023 is finite.
    factor[extreme] = np.ldexp(1.0, np.frexp(magnitude[extreme])[1] - 1)
    scaler = StandardScaler().fit(X / factor)
    return scaler.mean_ * factor, scaler.scale_ * factor


def check_range(run: Run, dtype: Any) -> None:
    """Refuse, naming the column and the value, data that the working dtype cannot hold once standardised.

    Every row counts, held-out ones too (they are predicted for the summary).
    Standardising is increasing in each column, so its extremes are those of
    the column's largest and smallest values.
    """
    X = run.data.X
    if X.size == 0:
        return
    high, low = X.max(axis=0), X.min(axis=0)
    scaled = run.scaler_mean is not None and run.scaler_scale is not None
    with np.errstate(over="ignore", invalid="ignore"):
        z_high = (high - run.scaler_mean) / run.scaler_scale if scaled else high
        z_low = (low - run.scaler_mean) / run.scaler_scale if scaled else low
    limit = float(np.finfo(dtype).max)
    bad = np.flatnonzero(~((np.abs(z_high) <= limit) & (np.abs(z_low) <= limit)))
    if bad.size == 0:
        return
    j = int(bad[0])
    raw, z = (high[j], z_high[j]) if not abs(z_high[j]) <= limit else (low[j], z_low[j])
    held = f"{run.source}, column {column_name(run, j)} holds {raw:g}"
    if not math.isfinite(z):
        raise DataError(
            f"{held}: standardising it overflows float64 (its distance from the column's mean is beyond "
            f"{np.finfo(np.float64).max:.3g}); rescale that column, or give --no-scale"
        )
    name = np.dtype(dtype).name
    if scaled:
        raise DataError(f"{held}, beyond {name}'s range (about {limit:.3g}) even standardised; use --dtype float64")
    raise DataError(
        f"{held}, beyond {name}'s range (about {limit:.3g}); use --dtype float64, or drop --no-scale to standardise it"
    )


def column_name(run: Run, j: int) -> str:
    """Column ``j`` as a message names it: its quoted name, or its number (from 0) in a file without names."""
    names = run.data.feature_names
    return repr(names[j]) if names is not None else str(j)


def largest_input(run: Run, X: np.ndarray) -> tuple[float, str]:
    """The largest magnitude of the (transformed) training inputs, and its column (see :func:`column_name`)."""
    if X.size == 0:
        return 0.0, ""
    magnitude = np.maximum(X.max(axis=0), -X.min(axis=0)).astype(np.float64)
    j = int(np.argmax(magnitude))
    return float(magnitude[j]), column_name(run, j)


# Inputs beyond this magnitude drive tanh units to saturation at any initial weight the
# network draws (about 1/sqrt(D)): such a network cannot learn from them.
SATURATING = 1e3


def input_scale_hint(run: Run, X_train: np.ndarray) -> str:
    """A clause for an error when unscaled inputs are large enough to be its likely cause, else nothing."""
    value, column = largest_input(run, X_train)
    if run.options["scale"] or value <= SATURATING:
        return ""
    return f" (the inputs are unscaled and reach {value:.3g} in column {column}: drop --no-scale)"


def diverged_message(
    epoch: int | None, run: Run, X_train: np.ndarray, cause: str | None, *, bayesian: bool = False
) -> str:
    """The one line for a run whose loss stopped being finite: where, the likely cause in the CLI's terms, what to do.

    ``cause`` is the training layer's diagnosis (a Python parameter's name,
    see :mod:`twolayer.training.diagnosis`), or None to make it here.
    """
    from twolayer.training.optim import likely_cause
    from twolayer.training.solvers import MINIBATCH_SOLVERS

    options = run.options
    solver = "L-BFGS" if bayesian else options["solver"]
    minibatch = solver in MINIBATCH_SOLVERS
    value, column = largest_input(run, X_train)
    alpha, lr, dtype = options["alpha"], options["learning_rate"], X_train.dtype
    lam = alpha / max(int(run.train_index.size), 1)
    if cause is None:
        cause = likely_cause(lam, dtype, value, lr if solver == "sgd" else None, minibatch)
    stepper = "the MAP network's L-BFGS" if bayesian else f"--solver {solver}"
    reasons = {
        "alpha": (
            f"the weight decay --alpha {alpha:g} is too strong ({lam:.3g} per training pattern): its penalty and "
            f"steps overflow {dtype.name}",
            "try a smaller --alpha",
        ),
        "X": (
            f"the inputs reach {value:.3g} (column {column}), too large for the network's products in {dtype.name}",
            "drop --no-scale" if not options["scale"] else "rescale that column",
        ),
        "learning_rate_init": (f"the steps of --learning-rate {lr:g} overshoot", "try a smaller --learning-rate"),
        "solver": (
            f"{stepper} stepped to non-finite weights",
            "check the inputs' scale" if bayesian else "try another --solver",
        ),
    }
    reason, advice = reasons.get(cause, reasons["solver"])
    unit = "epoch" if options["solver"] in MINIBATCH_SOLVERS else "iteration"
    where = "training diverged" + (f" in {unit} {epoch}" if epoch and not bayesian else "")
    return f"{where}: the loss is no longer finite because {reason}. Nothing was written; {advice}"


@dataclass(frozen=True)
class Verdict:
    """A run that ended without learning: what the summary says instead of "converged", and the warning."""

    label: str
    warning: str


def judge(outcome: Outcome, run: Run, X_train: np.ndarray, *, plain: bool) -> Verdict | None:
    """A diverged or useless run's verdict, or None for a run that learned something.

    Its training loss ended above that of a network that ignores its inputs
    and predicts the class frequencies (the start the output biases are
    given): "diverged" when the loss rose on the way or ended far above, "did
    not learn" otherwise. Or its held-out accuracy is no better than always
    predicting the training split's most frequent class: "no better than
    chance". The warning adds the likely option to change.
    """
    from twolayer.training.solvers import MINIBATCH_SOLVERS

    data, options = run.data, run.options
    assert data.y is not None
    classes, counts = np.unique(data.y[run.train_index], return_counts=True)
    majority = classes[int(np.argmax(counts))]
    baseline = float(np.mean(data.y[run.test_index] == majority))
    if options.get("class_weight") == "balanced":
        constant = math.log(classes.size)  # weighted, every class counts alike
    else:
        p = counts / counts.sum()
        constant = float(-np.sum(p * np.log(p)))
    # A whole-batch solver that stopped before its first iteration has an empty curve but a final loss.
    curve = [float(v) for v in outcome.model.loss_curve_] if plain else []
    final = float(outcome.model.loss_) if plain and outcome.model.loss_ is not None else None
    rose = len(curve) >= 2 and curve[-1] > curve[0]
    if final is not None and final > constant + 1e-3 * max(constant, 1.0):
        # Rising, or ten times the start the output biases were given: the steps blew the loss up.
        verdict = "diverged" if rose or final > 10 * constant else "did not learn"
        start = f"rose from {curve[0]:.4g} to" if rose else "ended at"
        what = (
            f"the training loss {start} {final:.4g}, above the {constant:.4g} of always predicting the class "
            "frequencies"
        )
    elif outcome.test.accuracy <= baseline:
        verdict = "no better than chance"
        what = (
            f"held-out accuracy {outcome.test.accuracy:.4f} is no better than always predicting the most frequent "
            f"class ({label(majority)}), which scores {baseline:.4f}"
        )
    else:
        return None
    lr, alpha = options["learning_rate"], options["alpha"]
    lam = alpha / max(int(run.train_index.size), 1)
    value, column = largest_input(run, X_train)
    if lam >= 1.0:
        advice = (
            f"the weight decay --alpha {alpha:g} outweighs the data ({lam:.3g} per training pattern); "
            "try a smaller --alpha"
        )
    elif not options["scale"] and value > SATURATING:
        advice = (
            f"the inputs are unscaled and reach {value:.3g} (column {column}), saturating the hidden units; "
            "drop --no-scale"
        )
    elif plain and options["solver"] in MINIBATCH_SOLVERS and (rose or lr >= 0.1):
        advice = f"the steps of --learning-rate {lr:g} are too long; try a smaller --learning-rate"
    else:
        return Verdict(
            verdict,
            f"warning: {what}; try more --epochs or --hidden, or check that the features predict the target",
        )
    return Verdict(verdict, f"warning: {what}; likely cause: {advice}")
