"""``twolayer train``: one workflow for the plain and the Bayesian network, kept whole in one module.

A run resolves its options, loads and splits the data, fits the estimator, measures it on the
training and held-out rows, writes the model (and the plot) atomically, and prints a summary. What
differs between the two networks (refused options, the estimator and its fit, the summary's
figures) is a :class:`Kind`: :class:`Plain` and :class:`Bayesian`, which read best beside the run.
What the run judges of its inputs and its outcome (extreme columns, divergence, the verdict on a run
that did not learn) is :mod:`twolayer.cli.verdicts`.

It is one module because it is the one ``train`` workflow with its plain and Bayesian kinds; the
options are in :mod:`~twolayer.cli.train_options`, the verdicts in :mod:`~twolayer.cli.verdicts`,
the multilabel summary in :mod:`~twolayer.cli.multilabel`.
"""

from __future__ import annotations

import argparse
import signal
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from twolayer.cli.common import (
    EXIT_OK,
    Command,
    busy,
    confusion_table,
    console,
    key_value_table,
    need_matplotlib,
    note,
    report_picture,
    split_record,
)
from twolayer.cli.dask_options import refuse_train_options
from twolayer.cli.device import refuse_device_options, torch_device
from twolayer.cli.multilabel import (
    check_multilabel_options,
    is_multilabel_run,
    label_table,
    labels_phrase,
    measure,
    multilabel_figures,
    multilabel_rows,
)
from twolayer.cli.progress import Display, Monitor, epochs_done, signals_stop
from twolayer.cli.train_options import (
    BAYES_DEFAULTS,
    NOT_BAYESIAN,
    OPTION_KEYS,
    TRAIN_DEFAULTS,
    add_train_arguments,
    check_run_record,
    hyperparameters,
    resolve_options,
    with_validation,
)
from twolayer.cli.verdicts import check_range, diverged_message, input_scale_hint, judge, standardisation
from twolayer.errors import DataError

__all__ = ["TRAIN", "Bayesian", "Kind", "Plain", "Run", "train"]

if TYPE_CHECKING:
    from twolayer.io.datasets import Dataset
    from twolayer.io.modelfile import Checkpoint
    from twolayer.report.metrics import ClassificationMetrics

# Why a whole-batch solver restarts its own state when a run is resumed.
_FRESH_STATE_ON_RESUME = {
    "lbfgs": "L-BFGS cannot be resumed exactly (SciPy keeps its curvature memory to itself)",
    "trust-ncg": "trust-ncg cannot be resumed exactly (SciPy keeps its trust radius to itself)",
    "newton-cg": "newton-cg cannot be resumed exactly (SciPy keeps its line search's memory to itself)",
    "scg": "scg cannot be resumed exactly (its scale parameter and search direction start afresh)",
}


def _fresh_state_note(solver: str) -> str:
    reason = _FRESH_STATE_ON_RESUME.get(solver, f"{solver} cannot be resumed exactly (its state restarts with fit)")
    return f"note: {reason}: the run continues from the checkpoint's weights with a fresh solver state"


@dataclass
class Run:
    """Everything a training run knows besides the estimator: what a checkpoint records."""

    options: dict[str, Any]
    data: Dataset
    source: str
    train_index: np.ndarray
    test_index: np.ndarray
    scaler_mean: np.ndarray | None
    scaler_scale: np.ndarray | None
    scaler_samples: int
    accuracy: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    first_epoch: int = 0
    started: float = 0.0

    @cached_property
    def fingerprint(self) -> str:
        """The data's fingerprint, which checkpoints and model files record."""
        return self.data.fingerprint()

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise with the scaler that the model file will hold (the identity without --scale)."""
        if self.scaler_mean is None or self.scaler_scale is None:
            return X
        from twolayer.io.modelfile import standard_scaler

        # The scaler's var_, the square of a scale beyond 1e154, overflows; transform never reads it.
        with np.errstate(over="ignore"):
            scaler = standard_scaler(self.scaler_mean, self.scaler_scale, self.scaler_samples)
        return np.asarray(scaler.transform(X))

    def pipeline(self, model: Any) -> Any:
        """The network behind the run's scaler: what the model file holds."""
        from twolayer.io.modelfile import scaled_model

        if self.scaler_mean is None or self.scaler_scale is None:
            return model
        with np.errstate(over="ignore"):  # var_, as in transform
            return scaled_model(model, self.scaler_mean, self.scaler_scale, self.scaler_samples)

    def seconds(self) -> float:
        """Training time so far, across resumes."""
        return self.elapsed + time.perf_counter() - self.started


@dataclass(frozen=True)
class Outcome:
    """A fitted run, measured: what the summary and the files are made of."""

    model: Any
    predictor: Any
    classes: np.ndarray
    train: ClassificationMetrics
    test: ClassificationMetrics
    test_proba: np.ndarray
    seconds: float


class Kind(ABC):
    """What differs between the plain and the Bayesian network; each method is one difference."""

    defaults: Mapping[str, Any]
    option_keys: tuple[str, ...]
    files: tuple[str, ...]  # the options that name files written
    records_held_out_accuracy: bool
    shown_only: tuple[str, ...] = ()  # figures the summary prints but the model file does not record
    confusion_title: str

    def __init__(self, device: Any = None) -> None:
        self.device = device  # a torch.device (--device), or None: NumPy on the host

    def refuse(self, args: argparse.Namespace) -> None:
        """Raise DataError for options given that this network cannot use; by default every option is usable."""
        return

    def fit_where(self, model: Any, X: np.ndarray, y: np.ndarray, **held_out: Any) -> None:
        """``model.fit`` on the host, or on ``device`` with the fitted arrays brought back after it."""
        if self.device is None:
            model.fit(X, y, **held_out)
        else:
            _fit_on_device(model, X, y, self.device, **held_out)

    def check(self, options: Mapping[str, Any]) -> None:
        """Raise DataError for options that contradict one another; by default none do."""
        return

    @abstractmethod
    def build(self, options: Mapping[str, Any]) -> Any:
        """The unfitted estimator."""

    @abstractmethod
    def intro(self, run: Run) -> str:
        """The line on standard error before training."""

    @abstractmethod
    def fit(self, model: Any, run: Run, X_train: np.ndarray, y_train: np.ndarray, quiet: bool) -> int | None:
        """Fit the model; return the number of the signal that interrupted training (nothing but the
        checkpoint is then written), or None when it ran its course."""

    @abstractmethod
    def figures(self, outcome: Outcome, run: Run) -> dict[str, Any]:
        """What the summary adds to the common figures, as the model file's info records it."""

    @abstractmethod
    def title(self, run: Run) -> str:
        """The plot's title."""

    @abstractmethod
    def rows(self, outcome: Outcome, figures: Mapping[str, Any], run: Run) -> list[tuple[str, str]]:
        """The summary's rows after "data": the network, its training and its figures."""


class Plain(Kind):
    """:class:`twolayer.classifier.TwoLayerClassifier`, trained epoch by epoch with progress and checkpoints.

    ``device`` (a ``torch.device``, from ``--device``) trains there: see :mod:`twolayer.cli.device`.
    """

    defaults = TRAIN_DEFAULTS
    option_keys = OPTION_KEYS
    files = ("out", "plot", "checkpoint")
    records_held_out_accuracy = True
    confusion_title = "Confusion matrix (held-out test set)"

    def refuse(self, args: argparse.Namespace) -> None:
        for key in BAYES_DEFAULTS:
            if key not in TRAIN_DEFAULTS and getattr(args, key) is not None:
                raise DataError(f"--{key.replace('_', '-')} applies to a Bayesian network: add --bayes")

    def build(self, options: Mapping[str, Any]) -> Any:
        from twolayer.classifier import TwoLayerClassifier

        return TwoLayerClassifier(**hyperparameters(dict(options)))

    def intro(self, run: Run) -> str:
        data = run.data
        assert data.y is not None
        what = f"{data.source}: {data.n_samples} samples, {data.n_features} features, {labels_phrase(data.y)}"
        resumed = f", resuming at epoch {run.first_epoch}" if run.first_epoch else ""
        return f"training on {what}; {run.train_index.size} for training, {run.test_index.size} held out{resumed}"

    @staticmethod
    def unit(options: Mapping[str, Any]) -> str:
        from twolayer.training.solvers import MINIBATCH_SOLVERS

        return "epoch" if options["solver"] in MINIBATCH_SOLVERS else "iteration"

    def fit(self, model: Any, run: Run, X_train: np.ndarray, y_train: np.ndarray, quiet: bool) -> int | None:
        from sklearn.exceptions import ConvergenceWarning

        from twolayer.training.optim import TrainingDiverged
        from twolayer.training.solvers import MINIBATCH_SOLVERS

        options, data = run.options, run.data
        assert data.y is not None
        total, first_epoch = options["epochs"], run.first_epoch
        X_test = run.transform(data.X[run.test_index])
        y_test = data.y[run.test_index]
        display = Display(total, first_epoch, quiet=quiet, unit=self.unit(options))
        every = options["checkpoint_every"] if options["checkpoint"] is not None else 0
        monitor = Monitor(
            run.accuracy, X_test, y_test, display, (lambda m: _write_checkpoint(m, run)) if every else None, every or 1
        )
        batch, n = options["batch_size"], X_train.shape[0]
        if batch != "auto" and int(batch) > n and options["solver"] in MINIBATCH_SOLVERS:
            # Said here in the command line's words; the estimator would warn of its batch_size.
            note(f"note: --batch-size {batch} is larger than the {n} training rows; using {n}", quiet=quiet)
            model.set_params(batch_size=n)
        if total - first_epoch > 0:
            model.set_params(max_iter=total - first_epoch, callback=monitor, warm_start=first_epoch > 0)
            try:
                with display, signals_stop(monitor), warnings.catch_warnings(), _extremes_quiet():
                    # Reaching --epochs is the plan, not a problem to warn about;
                    # overflow on the way to divergence is reported below, once.
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    held_out = {"X_val": X_test, "y_val": y_test} if "validation" in options else {}
                    self.fit_where(model, X_train, y_train, **held_out)
            except TrainingDiverged as exc:
                cause = getattr(exc, "cause", None)
                epoch = epochs_done(model) + 1
                raise DataError(diverged_message(epoch, run, X_train, cause)) from None
        elif not quiet:
            note(f"the checkpoint is at epoch {first_epoch}, --epochs is {total}: nothing left to train")
        model.set_params(callback=None, max_iter=total, warm_start=False)
        done = epochs_done(model)
        if monitor.diverged_at is not None or not all(np.isfinite(p).all() for p in model.params_):
            raise DataError(diverged_message(monitor.diverged_at or done, run, X_train, None))
        if monitor.signal is None:
            return None
        by = "" if monitor.signal == signal.SIGINT else f" by {signal.Signals(monitor.signal).name}"
        if options["checkpoint"] is not None:
            _write_checkpoint(model, run)
            note(
                f"interrupted at epoch {done}{by}; checkpoint written to {options['checkpoint']}; continue with "
                f"'twolayer train --resume {options['checkpoint']}'"
            )
        else:
            note(f"interrupted at epoch {done}{by}; nothing written (give --checkpoint to be able to resume)")
        return monitor.signal

    def figures(self, outcome: Outcome, run: Run) -> dict[str, Any]:
        done = epochs_done(outcome.model)
        stopped = "reached --epochs" if done >= run.options["epochs"] else f"converged, --tol {run.options['tol']}"
        return {"epochs": done, "stopped": stopped}

    def title(self, run: Run) -> str:
        return f"{run.source}: {run.options['hidden']} hidden units, {run.options['solver']}"

    def rows(self, outcome: Outcome, figures: Mapping[str, Any], run: Run) -> list[tuple[str, str]]:
        options = run.options
        training = f"{options['solver']}, {figures['epochs']} {self.unit(options)}s ({figures['stopped']})"
        return [
            ("network", _network_row(outcome, run)),
            ("training", f"{training}, {outcome.seconds:.1f} s"),
            ("train accuracy", f"{outcome.train.accuracy:.4f}"),
            ("test accuracy", f"{outcome.test.accuracy:.4f}"),
            ("test log-loss", f"{outcome.test.log_loss:.4f}"),
        ]


class Bayesian(Kind):
    """:class:`twolayer.bayes.BayesianTwoLayerClassifier`: the evidence procedure, whole batch, float64.

    ``device`` (a ``torch.device``, from ``--device``) fits there: see :mod:`twolayer.cli.device`.
    """

    defaults: Mapping[str, Any] = MappingProxyType({**TRAIN_DEFAULTS, **BAYES_DEFAULTS, "dtype": "float64"})
    option_keys = (*OPTION_KEYS, *BAYES_DEFAULTS)
    files = ("out", "plot")
    records_held_out_accuracy = False
    shown_only = ("test_accuracy_map",)
    confusion_title = "Confusion matrix (held-out test set, moderated)"

    def refuse(self, args: argparse.Namespace) -> None:
        for key, reason in NOT_BAYESIAN.items():
            if getattr(args, key) is not None:
                raise DataError(f"--{key.replace('_', '-')} does not apply to --bayes ({reason})")
        if args.class_weight not in (None, "none"):
            raise DataError(
                "--class-weight does not apply to --bayes (the evidence is that of the unweighted patterns)"
            )
        if args.dtype == "float32":
            raise DataError("--dtype float32 does not apply to --bayes (a Bayesian network works in float64)")

    def check(self, options: Mapping[str, Any]) -> None:
        if options["alpha"] <= 0:
            raise DataError("--alpha must be positive with --bayes (it is a prior precision)")
        if options["per_group"] is True and options["alpha_search"] == "grid":  # --per-group given
            raise DataError("--per-group needs --alpha-search fixed_point (a grid holds one alpha)")

    def build(self, options: Mapping[str, Any]) -> Any:
        from twolayer.bayes import BayesianTwoLayerClassifier

        return BayesianTwoLayerClassifier(
            n_hidden=options["hidden"],
            activation=options["activation"],
            alpha=options["alpha"],
            alpha_search=options["alpha_search"],
            per_group=options["per_group"],
            hessian=options["hessian"],
            structure=options["structure"],
            max_cycles=options["max_cycles"],
            n_restarts=options["restarts"],
            max_iter=options["epochs"],
            tol=options["tol"],
            method=options["predictive"],
            n_samples=options["mc_samples"],
            random_state=options["seed"],
        )

    def intro(self, run: Run) -> str:
        from twolayer.bayes.choices import per_group_precisions

        options, data = run.options, run.data
        assert data.y is not None
        what = f"{data.source}: {data.n_samples} samples, {data.n_features} features, {np.unique(data.y).size} classes"
        search = (
            "MacKay's fixed point"
            + (
                ", one alpha per group"
                if per_group_precisions(options["per_group"], options["structure"], options["alpha_search"])
                else ""
            )
            if options["alpha_search"] == "fixed_point"
            else "the largest evidence over a grid"
        )
        return (
            f"training a Bayesian network on {what}; {run.train_index.size} for training, {run.test_index.size} "
            f"held out; alpha by {search} ({options['structure']} Laplace posterior, {options['hessian']} curvature)"
        )

    def fit(self, model: Any, run: Run, X_train: np.ndarray, y_train: np.ndarray, quiet: bool) -> int | None:
        from sklearn.exceptions import ConvergenceWarning

        from twolayer.training.optim import TrainingDiverged

        what = f"the evidence procedure: MAP fits and Laplace posteriors on {X_train.shape[0]} patterns"
        with warnings.catch_warnings(record=True) as caught, _extremes_quiet(), busy(what, quiet=quiet):
            warnings.simplefilter("always", ConvergenceWarning)
            try:
                self.fit_where(model, X_train, y_train)
            except TrainingDiverged as exc:
                raise DataError(
                    diverged_message(None, run, X_train, getattr(exc, "cause", None), bayesian=True)
                ) from None
            except ValueError as exc:
                hint = input_scale_hint(run, X_train)
                raise DataError(f"the Bayesian network cannot be trained: {exc}{hint}") from None
        for warning in caught:
            if issubclass(warning.category, ConvergenceWarning):
                note(f"note: {warning.message}", quiet=quiet)
            else:  # not ours to judge: pass it on
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return None

    def figures(self, outcome: Outcome, run: Run) -> dict[str, Any]:
        from twolayer.cli.common import map_proba
        from twolayer.report.calibration import calibration_summary

        assert run.data.y is not None
        X_test, y_test = run.data.X[run.test_index], run.data.y[run.test_index]
        model, classes = outcome.model, outcome.classes
        moderated = calibration_summary(y_test, outcome.test_proba, classes=classes)
        at_map = calibration_summary(y_test, map_proba(outcome.predictor, X_test), classes=classes)
        return {
            "bayesian": True,
            "epochs": int(model.n_iter_),
            "cycles": int(model.n_cycles_),
            "alpha": [float(a) for a in model.alpha_],
            "gamma": float(model.gamma_),
            "log_evidence": float(model.log_evidence_),
            "test_log_loss_map": at_map["log_loss"],
            "test_ece": moderated["ece"],
            "test_ece_map": at_map["ece"],
            "test_accuracy_map": at_map["accuracy"],
        }

    def title(self, run: Run) -> str:
        return f"{run.source}: Bayesian network, {run.options['hidden']} hidden units, alpha by the evidence"

    def rows(self, outcome: Outcome, figures: Mapping[str, Any], run: Run) -> list[tuple[str, str]]:
        from twolayer.bayes import GROUPS
        from twolayer.network import n_params

        options, model = run.options, outcome.model
        alpha = figures["alpha"]
        groups = ", ".join(f"{g} {a:.4g}" for g, a in zip(GROUPS, alpha))
        W = n_params(run.data.n_features, options["hidden"], outcome.classes.size)
        posterior = f"{options['structure']} Laplace posterior, {options['hessian']} curvature"
        return [
            ("network", f"{_network_row(outcome, run)}, Bayesian ({posterior})"),
            (
                "training",
                f"{model.n_cycles_} trainings, {model.n_iter_} L-BFGS iterations in all, {outcome.seconds:.1f} s",
            ),
            ("alpha", f"{alpha[0]:.4g} (all weights and biases)" if len(set(alpha)) == 1 else groups),
            ("gamma", f"{model.gamma_:.4g} well-determined parameters of {W}"),
            ("log evidence", f"{model.log_evidence_:.6g}"),
            ("train accuracy", f"{outcome.train.accuracy:.4f}"),
            ("test accuracy", f"{outcome.test.accuracy:.4f} (MAP network {figures['test_accuracy_map']:.4f})"),
            ("test log-loss", f"{outcome.test.log_loss:.4f} (MAP network {figures['test_log_loss_map']:.4f})"),
            ("test ECE", f"{figures['test_ece']:.4f} (MAP network {figures['test_ece_map']:.4f}), 15 bins"),
        ]


def _extremes_quiet() -> Any:
    """NumPy's overflow and invalid-value warnings off, for fitting and predicting on finite extreme values.

    scikit-learn's input check sums the rows before it looks at them one by
    one, and that sum overflows (a RuntimeWarning, not an error) for finite
    values near float64's limit; on the way to a divergence the network's
    products overflow too, which is reported once, as a divergence.
    """
    return np.errstate(over="ignore", invalid="ignore")


def _fit_on_device(model: Any, X: np.ndarray, y: np.ndarray, device: Any, **held_out: Any) -> None:
    """``model.fit`` with ``X`` (and a ``--validation`` file's ``X_val``) on the PyTorch ``device``; the
    fitted arrays (weights, and a Bayesian network's posteriors) are brought back to the host after it."""
    import sklearn
    import torch

    if "X_val" in held_out:
        held_out = {**held_out, "X_val": torch.asarray(held_out["X_val"], device=device)}
    try:
        with sklearn.config_context(array_api_dispatch=True):
            model.fit(torch.asarray(X, device=device), y, **held_out)
    finally:
        if hasattr(model, "coefs_"):  # the host's copies of the fitted arrays replace the device's
            model.__dict__.update(model.to_numpy().__dict__)


def _network_row(outcome: Outcome, run: Run) -> str:
    D, M, K = run.data.n_features, run.options["hidden"], outcome.classes.size
    outputs = "sigmoid outputs" if getattr(outcome.model, "out_activation_", "") == "logistic" else "softmax outputs"
    return f"{D}-{M}-{K}, {run.options['activation']} hidden units, {outputs}, {run.options['dtype']}"


def _write_checkpoint(fitted: Any, run: Run) -> None:
    from twolayer.io.modelfile import Checkpoint, save_checkpoint

    options = run.options
    assert options["checkpoint"] is not None
    info = {
        "options": options,
        "source": run.source,
        "fingerprint": run.fingerprint,
        "scaler_samples": run.scaler_samples,
        "accuracy": list(run.accuracy),
        "elapsed": run.seconds(),
    }
    save_checkpoint(
        options["checkpoint"],
        Checkpoint(
            state=fitted.get_training_state(),
            hyperparameters=hyperparameters(options),
            scaler_mean=run.scaler_mean,
            scaler_scale=run.scaler_scale,
            train_index=run.train_index,
            test_index=run.test_index,
            epoch=epochs_done(fitted),
            run=info,
        ),
    )


def _new_run(options: dict[str, Any], data: Dataset, source: str) -> Run:
    from twolayer.report.metrics import stratified_split

    if options.get("validation") is not None:  # FILE's rows, after DATA's, are the held-out ones
        data, train_index, test_index = with_validation(data, options["validation"])
    else:
        assert data.y is not None
        train_index, test_index = stratified_split(
            data.y, options["test_size"], options["seed"], source=data.source, option="--test-size"
        )
    mean = scale = None
    if options["scale"]:
        mean, scale = standardisation(data.X[train_index])
    return Run(options, data, source, train_index, test_index, mean, scale, int(train_index.size))


def _provenance(seconds: float) -> dict[str, Any]:
    """When, where, by which version and in how long the model was trained (``--provenance``)."""
    import datetime
    import socket

    from twolayer import __version__

    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    return {
        "time": now.isoformat().replace("+00:00", "Z"),
        "host": socket.gethostname(),
        "twolayer": __version__,
        "seconds": round(seconds, 3),
    }


def _resumed_run(
    checkpoint: Checkpoint, path: str, options: dict[str, Any], data: Dataset, source: str
) -> tuple[Run, Any]:
    """The run and the network a checkpoint holds, once it is known to be of this data."""
    from twolayer.classifier import TwoLayerClassifier

    if checkpoint.run["fingerprint"] != data.fingerprint():  # before any training: refuse other data
        raise DataError(f"{source} is not the data the checkpoint {path} was trained on")
    run = Run(
        options,
        data,
        source,
        checkpoint.train_index,
        checkpoint.test_index,
        checkpoint.scaler_mean,
        checkpoint.scaler_scale,
        checkpoint.run["scaler_samples"],
        list(checkpoint.run["accuracy"]),
        float(checkpoint.run["elapsed"]),
        first_epoch=checkpoint.epoch,
    )
    top = max(int(run.train_index.max()), int(run.test_index.max()))
    if top >= data.n_samples:
        raise DataError(f"{path}: the split names row {top}, but {source} has {data.n_samples} rows")
    try:
        model = TwoLayerClassifier(**checkpoint.hyperparameters).set_training_state(checkpoint.state)
    except (TypeError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: the training state cannot be restored ({exc})") from None
    return run, model


def _check_files(args: argparse.Namespace, options: Mapping[str, Any], names: tuple[str, ...], source: str) -> None:
    from twolayer.io.paths import check_fresh_checkpoint, check_outputs

    outputs = {"--" + name: options[name] for name in names}
    check_outputs(
        {"DATA": source, "--resume": args.resume, "--validation": options.get("validation")},
        outputs,
        figures=("--plot",),
        rewrites={"--checkpoint": "--resume"},  # a resumed run keeps its checkpoint up to date
    )
    if "checkpoint" in names:
        check_fresh_checkpoint(options["checkpoint"], resumed=args.resume, overwrite=bool(args.overwrite))
    if options["plot"] is not None:
        need_matplotlib("--plot")


def train(args: argparse.Namespace) -> int:
    """``twolayer train``: the one workflow, with the differences of ``--bayes`` in its :class:`Kind`."""
    from twolayer.io.datasets import check_classes
    from twolayer.io.modelfile import atomic_write_all, load_checkpoint, model_bytes
    from twolayer.training.solvers import MINIBATCH_SOLVERS

    refuse_train_options(args)  # --dask's options without --dask, and what --dask cannot honour
    refuse_device_options(args)
    if args.dask is not None:
        from twolayer.cli.dask_runs import train_on_cluster

        return train_on_cluster(args)
    check_multilabel_options(args)  # leaves args.target one name, or a list of them with --multilabel
    device = torch_device(args.device) if args.device is not None else None
    kind: Kind = Bayesian(device) if args.bayes else Plain(device)
    kind.refuse(args)
    checkpoint_in = None
    if args.resume is not None:  # refused above for --bayes
        checkpoint_in = load_checkpoint(args.resume)
        check_run_record(args.resume, checkpoint_in.run)
    stored = checkpoint_in.run["options"] if checkpoint_in is not None else None
    options = resolve_options(args, kind.option_keys, kind.defaults, stored, args.resume)
    kind.check(options)
    # An empty DATA (an unset shell variable) is refused there, not taken for the default.
    if args.data is not None:
        source = args.data
    else:
        source = checkpoint_in.run["source"] if checkpoint_in is not None else "digits"
    _check_files(args, options, kind.files, source)

    quiet = bool(args.quiet)
    if args.describe:
        return _describe(source, options)
    data = _load(source, options, missing=options["missing"])
    for warning in data.warnings:
        note(f"warning: {warning}")
    if data.n_dropped:
        note(f"left out {data.n_dropped} rows with a missing feature cell (--missing drop)", quiet=quiet)
    check_classes(data)
    assert data.y is not None
    if checkpoint_in is None:
        run, model = _new_run(options, data, source), None
    else:
        run, model = _resumed_run(checkpoint_in, args.resume, options, data, source)
        if options["solver"] not in MINIBATCH_SOLVERS:
            note(_fresh_state_note(options["solver"]), quiet=quiet)
    data = run.data  # with --validation, DATA's rows and then FILE's
    assert data.y is not None
    model = kind.build(options) if model is None else model

    dtype = np.float32 if options["dtype"] == "float32" else np.float64
    check_range(run, dtype)  # before the cast below could turn a finite value into infinity
    X_train = run.transform(data.X[run.train_index]).astype(dtype)
    y_train = data.y[run.train_index]
    run.started = time.perf_counter()
    note(kind.intro(run), quiet=quiet)
    stopped_by = kind.fit(model, run, X_train, y_train, quiet)
    if stopped_by is not None:
        # As a shell reports a command that a signal ended: 130 for Ctrl-C (SIGINT),
        # 143 for SIGTERM, 129 for SIGHUP; the run stopped cleanly all the same.
        return 128 + stopped_by

    seconds = run.seconds()
    with _extremes_quiet():
        predictor = run.pipeline(model)
        classes = np.asarray(model.classes_)
        train_metrics = measure(predictor.predict_proba(data.X[run.train_index]), y_train, classes)
        test_proba = np.asarray(predictor.predict_proba(data.X[run.test_index]))
        test_metrics = measure(test_proba, data.y[run.test_index], classes)
        outcome = Outcome(model, predictor, classes, train_metrics, test_metrics, test_proba, seconds)
        figures = kind.figures(outcome, run)
    # The verdicts compare with the majority class, which a label matrix does not have.
    multilabel = data.target_names is not None
    verdict = None if multilabel else judge(outcome, run, X_train, plain=isinstance(kind, Plain))
    if verdict is not None and "stopped" in figures:
        figures["stopped"] = verdict.label  # never "converged"
    summary = {
        "data": source,
        "n_train": int(run.train_index.size),
        "n_test": int(run.test_index.size),
        "train_accuracy": train_metrics.accuracy,
        "test_accuracy": test_metrics.accuracy,
        "test_log_loss": test_metrics.log_loss,
        "test_confusion_matrix": test_metrics.confusion_matrix,
        "split": split_record(data, run.test_index, run.fingerprint),
        **{key: value for key, value in figures.items() if key not in kind.shown_only},
        **(multilabel_figures(test_metrics, data.target_names) if data.target_names is not None else {}),
    }
    if verdict is not None:
        summary["warning"] = verdict.warning.removeprefix("warning: ")
    # Wall-clock time and the host differ between identical runs: recorded only on request,
    # so that by default the same run writes the same bytes.
    if args.provenance:
        summary["provenance"] = _provenance(seconds)

    png = None
    if options["plot"] is not None:
        with _extremes_quiet():
            png = report_picture(
                predictor,
                classes,
                model.loss_curve_,
                run.accuracy,
                test_metrics.confusion_matrix,
                data,
                title=kind.title(run),
                path=options["plot"],
            )
    # Everything is computed: now write the model and the plot, atomically and both or neither.
    files = []
    if options["out"] is not None:
        held_out = run.accuracy if kind.records_held_out_accuracy else None
        written = model_bytes(
            predictor,
            feature_names=data.feature_names,
            target_name=data.target_name,
            validation_curve=held_out,
            info=summary,
            encoding=data.encoding,
        )
        files.append((options["out"], written))
    if png is not None:
        files.append((options["plot"], png))
    atomic_write_all(files)
    if options["checkpoint"] is not None:
        _write_checkpoint(model, run)

    if not quiet:
        D, K = data.n_features, classes.size
        split = f"{run.train_index.size} train / {run.test_index.size} test"
        rows = [("data", f"{source} ({split}, {D} features, {K} {'labels' if multilabel else 'classes'})")]
        if data.target_note is not None:  # which column was taken for the labels, and why
            rows.append(("target", data.target_note.removeprefix("target column: ").removeprefix("target columns: ")))
        if data.id_name is not None:
            rows.append(("identifier", f"{data.id_name!r} (not a feature)"))
        if data.encoding is not None:
            rows.append(("encoding", _encoding_description(data)))
        rows += kind.rows(outcome, figures, run)
        out = console()
        if data.target_names is not None:
            out.print(key_value_table("Summary", multilabel_rows(rows, train_metrics, test_metrics)))
            out.print(label_table(test_metrics.scores, data.target_names, "Per label (held-out test set)"))
        else:
            out.print(key_value_table("Summary", rows))
            out.print(confusion_table(np.asarray(test_metrics.confusion_matrix), classes, kind.confusion_title))
        if verdict is not None:
            note(verdict.warning)
        flagged = "" if verdict is None else f" ({verdict.label}: see the warning above)"
        for name, what in (("out", "model"), ("plot", "plot"), ("checkpoint", "checkpoint")):
            if options[name] is not None:
                print(f"wrote {what} {options[name]}{flagged if name == 'out' else ''}")
    return EXIT_OK


def _load(source: str, options: Mapping[str, Any], *, missing: str | None, keep_raw: bool = False) -> Dataset:
    """DATA with the columns the run's options choose."""
    from twolayer.io.datasets import load_dataset

    several = is_multilabel_run(options)
    return load_dataset(
        source,
        target=None if several else options["target"],
        targets=options["target"] if several else None,
        select=options["features"],
        drop=options["drop"],
        id_column=options["id"],
        sep=options["sep"],
        missing=missing,
        keep_raw=keep_raw,
    )


def _describe(source: str, options: Mapping[str, Any]) -> int:
    """``train --describe``: what each column of DATA is and what training would take it for."""
    from rich.table import Table

    from twolayer.io.datasets import describe_columns

    # A missing cell is counted, not refused: a description is what one asks for before choosing --missing.
    data = _load(source, options, missing=options["missing"] or "most-frequent", keep_raw=True)
    table = Table(title=f"Columns of {data.source}", title_justify="left")
    for heading in ("column", "kind", "role", "missing", "inputs"):
        table.add_column(heading, justify="left" if heading in ("column", "kind", "role") else "right")
    for row in describe_columns(data):
        table.add_row(row.name, row.kind, row.role, row.missing, row.inputs)
    out = console()
    out.print(table)
    if data.target_note is not None:
        out.print(data.target_note)
    for warning in data.warnings:
        note(f"warning: {warning}")
    return EXIT_OK


def _encoding_description(data: Dataset) -> str:
    """The summary's line on how the columns became the inputs: text columns and the missing-value policy."""
    assert data.encoding is not None
    encoding = data.encoding
    text = [f"{name} ({len(cats)} categories)" for name, cats in zip(encoding.names, encoding.categories) if cats]
    parts = [f"text: {', '.join(text)}" if text else "no text columns"]
    parts.append(f"missing cells: {encoding.missing}" + (f", {data.n_dropped} rows left out" if data.n_dropped else ""))
    return f"{encoding.n_inputs} inputs from {len(encoding.names)} columns; " + "; ".join(parts)


TRAIN = Command(
    "train",
    "train a network on a built-in dataset or a file, show a summary, write the model",
    add_train_arguments,
    train,
)
