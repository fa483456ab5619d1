"""The options of ``twolayer train``: their defaults, their arguments, and how a resumed run keeps them."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from twolayer.cli.common import (
    activations,
    add_table_arguments,
    fraction,
    non_negative_float,
    non_negative_int,
    note,
    positive_float,
    positive_int,
    seed,
)
from twolayer.cli.dask_options import add_dask_arguments
from twolayer.errors import DataError

if TYPE_CHECKING:
    from twolayer.io.datasets import Dataset

# The defaults of `twolayer train`: Adam on a network small enough that the
# bundled digits reach about 97% held-out accuracy.
TRAIN_DEFAULTS: dict[str, Any] = {
    "hidden": 64,
    "activation": "tanh",
    "solver": "adam",
    "epochs": 100,
    "batch_size": "auto",
    "learning_rate": 3e-3,
    "alpha": 1e-4,
    "tol": 1e-4,
    "n_iter_no_change": 10,
    "class_weight": "none",
    "seed": 0,
    "dtype": "float32",
    "test_size": 0.2,
    "scale": True,
    "checkpoint_every": 10,
}

# `twolayer train --bayes`: the defaults of BayesianTwoLayerClassifier where
# they differ from TRAIN_DEFAULTS (a weaker start for the evidence is no help:
# the fixed point moves alpha by orders of magnitude in a few cycles).
BAYES_DEFAULTS: dict[str, Any] = {
    "hidden": 20,
    "alpha": 1.0,
    "epochs": 1000,
    "tol": 1e-6,
    "alpha_search": "fixed_point",
    "per_group": "auto",
    "structure": "last_layer",
    "hessian": "gauss_newton",
    "predictive": "mc",
    "mc_samples": 1000,
    "max_cycles": 10,
    "restarts": 3,
}
# Options of `train` that a Bayesian network has no use for.
NOT_BAYESIAN = {
    "solver": "the MAP network is trained by L-BFGS",
    "batch_size": "the MAP network is trained on the whole batch",
    "learning_rate": "the MAP network is trained by L-BFGS",
    "n_iter_no_change": "L-BFGS stops at --tol",
    "checkpoint": "the evidence procedure cannot be checkpointed",
    "checkpoint_every": "the evidence procedure cannot be checkpointed",
    "resume": "the evidence procedure cannot be checkpointed",
}

# How the data's columns were chosen and read. A run records them; a checkpoint written before they
# existed lacks them and is read as if none was given.
TABLE_KEYS = ("features", "drop", "id", "sep", "missing")

# What a run records of its options (and a checkpoint must hold, TABLE_KEYS aside).
OPTION_KEYS = (*TRAIN_DEFAULTS, "target", *TABLE_KEYS, "epochs", "out", "plot", "checkpoint", "checkpoint_every")

# Options that decide the weights: a resumed run must keep them.
_RUN_DEFINING = (
    "target",
    *TABLE_KEYS,
    "hidden",
    "activation",
    "solver",
    "batch_size",
    "learning_rate",
    "alpha",
    "tol",
    "n_iter_no_change",
    "class_weight",
    "seed",
    "dtype",
    "test_size",
    "scale",
)


def _seed(text: str) -> int:
    # The split is drawn by scikit-learn's train_test_split, whose random_state is 32 bits.
    value = seed(text)
    if value > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {2**32 - 1}, got {text!r}")
    return value


def _batch_size(text: str) -> int | str:
    return "auto" if text == "auto" else positive_int(text)


def _default(name: str) -> str:
    return f"(default: {TRAIN_DEFAULTS[name]})"


def _bayes_default(name: str) -> str:
    return f"(default: {BAYES_DEFAULTS[name]})"


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from twolayer.bayes.choices import ALPHA_SEARCHES, HESSIANS, METHODS, STRUCTURES
    from twolayer.io.encoding import MISSING_POLICIES
    from twolayer.training.solvers import SOLVERS

    # Training options default to None so that --resume can tell what was
    # given; TRAIN_DEFAULTS fills in the rest.
    p.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="a built-in dataset (see 'twolayer datasets'), a table (CSV/TSV, compressed or not, Parquet, "
        "Feather, or a .npz with arrays X and y), or '-' for standard input (default: digits)",
    )
    p.add_argument(
        "--target",
        nargs="+",
        metavar="NAME",
        help="the column holding the labels (default: one named target, label, class or y, else the last); "
        "with --multilabel, the columns holding the labels, each 0/1 or true/false",
    )
    p.add_argument(
        "--multilabel",
        action="store_true",
        help="several labels per row: K sigmoid outputs with the binary cross-entropy, one per --target column",
    )
    columns = p.add_argument_group("the table's columns")
    columns.add_argument(
        "--features", nargs="+", metavar="COLUMN", help="use only these columns as features (names or globs)"
    )
    columns.add_argument("--drop", nargs="+", metavar="COLUMN", help="leave these columns out (names or globs)")
    add_table_arguments(columns)
    columns.add_argument(
        "--missing",
        choices=MISSING_POLICIES,
        help="what becomes of a missing feature cell: refuse it (error, the default), drop its row, or fill "
        "it with the training column's mean, median or most frequent value (stored in the model, so that "
        "predict fills the same way)",
    )
    columns.add_argument(
        "--describe",
        action="store_true",
        help="list each column of DATA with its kind and role (feature, target, identifier, unused), then stop",
    )
    model = p.add_argument_group("the network and its training")
    model.add_argument("--hidden", type=positive_int, metavar="M", help=f"hidden units {_default('hidden')}")
    model.add_argument("--activation", choices=activations(), help=f"hidden-unit activation {_default('activation')}")
    model.add_argument(
        "--solver",
        choices=SOLVERS,
        help="optimiser: minibatch adam or sgd; on the whole batch lbfgs, or with exact Hessian-vector "
        "products trust-ncg, newton-cg (truncated Newton) or scg (Moller's scaled conjugate "
        f"gradient) {_default('solver')}",
    )
    model.add_argument(
        "--epochs",
        type=positive_int,
        metavar="N",
        help=f"total epochs (iterations for the whole-batch solvers), counted across --resume {_default('epochs')}",
    )
    model.add_argument(
        "--batch-size",
        type=_batch_size,
        metavar="B",
        help=f"minibatch size, or 'auto' for min(200, N) {_default('batch_size')}",
    )
    model.add_argument(
        "--learning-rate",
        type=positive_float,
        metavar="ETA",
        help=f"initial step size of sgd and adam {_default('learning_rate')}",
    )
    model.add_argument(
        "--alpha", type=non_negative_float, help=f"L2 penalty (weight decay) on the weights {_default('alpha')}"
    )
    model.add_argument(
        "--tol",
        type=non_negative_float,
        help=f"stop when the loss improves by less than this for --n-iter-no-change epochs {_default('tol')}",
    )
    model.add_argument("--n-iter-no-change", type=positive_int, metavar="N", help=f"{_default('n_iter_no_change')}")
    model.add_argument(
        "--class-weight",
        choices=("none", "balanced"),
        help=f"weight the classes equally ('balanced') or the patterns {_default('class_weight')}",
    )
    model.add_argument(
        "--seed", type=_seed, help=f"seeds the split, the initial weights and the shuffling {_default('seed')}"
    )
    model.add_argument("--dtype", choices=("float32", "float64"), help=f"working precision {_default('dtype')}")
    model.add_argument(
        "--device",
        metavar="DEVICE",
        help="train on this PyTorch device, cpu or cuda[:N] (needs PyTorch and SCIPY_ARRAY_API=1; default: NumPy "
        "on the host)",
    )
    model.add_argument(
        "--test-size",
        type=fraction,
        metavar="F",
        help=f"fraction held out (stratified) for testing {_default('test_size')}",
    )
    model.add_argument(
        "--validation",
        metavar="FILE",
        help="hold out FILE's rows instead of a --test-size split of DATA: every row of DATA trains, and FILE "
        "(read with DATA's columns and their encoding) is the held-out set of the accuracy curve, the summary's "
        "test figures and, for adam and sgd, early stopping (training stops when FILE's accuracy has not "
        "improved by --tol for --n-iter-no-change epochs, and keeps the best weights)",
    )
    model.add_argument(
        "--scale",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="standardise the features (mean 0, variance 1 on the training split), stored in the "
        "model (default: --scale)",
    )
    bayes = p.add_argument_group(
        "the Bayesian network (--bayes)",
        "With --bayes the network is a twolayer.bayes.BayesianTwoLayerClassifier (PRML 5.7): the MAP network is "
        "trained by L-BFGS in float64 (--epochs iterations per training, default 1000; --tol default 1e-6), the "
        "prior precision alpha is chosen by the evidence (--alpha is where the fixed point starts, default 1), and "
        "predictions are moderated by the Laplace posterior. --hidden defaults to 20. Minibatch options, class "
        "weights and checkpoints do not apply.",
    )
    bayes.add_argument("--bayes", action="store_true", help="train a Bayesian network")
    bayes.add_argument(
        "--alpha-search",
        choices=ALPHA_SEARCHES,
        help="MacKay's re-estimation, or the largest evidence over a grid of alphas (1e-2 to 1e2) "
        f"(default: {BAYES_DEFAULTS['alpha_search']})",
    )
    bayes.add_argument(
        "--per-group",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one prior precision for each group the posterior covers (W1, b1, W2, b2; fixed point only), or "
        "--no-per-group for one (default: per group for the last-layer posterior, one otherwise)",
    )
    bayes.add_argument(
        "--structure",
        choices=STRUCTURES,
        help=f"the posterior's covariance {_bayes_default('structure')}",
    )
    bayes.add_argument("--hessian", choices=HESSIANS, help=f"the posterior's curvature {_bayes_default('hessian')}")
    bayes.add_argument(
        "--predictive",
        choices=METHODS,
        help=f"Monte Carlo or the probit approximation of the moderated predictive {_bayes_default('predictive')}",
    )
    bayes.add_argument(
        "--mc-samples",
        type=positive_int,
        metavar="S",
        help=f"Monte Carlo samples per prediction {_bayes_default('mc_samples')}",
    )
    bayes.add_argument(
        "--max-cycles",
        type=positive_int,
        metavar="C",
        help=f"the most train / re-estimate cycles of the fixed point {_bayes_default('max_cycles')}",
    )
    bayes.add_argument(
        "--restarts",
        type=non_negative_int,
        metavar="R",
        help="fresh initial weights trained beside the previous cycle's in each cycle, the fit of largest evidence "
        f"kept (each cycle costs 1 + R trainings) {_bayes_default('restarts')}",
    )
    out = p.add_argument_group("files")
    out.add_argument("--out", metavar="PATH", help="write the trained model here (safetensors)")
    out.add_argument(
        "--plot",
        metavar="PICTURE",
        help="write learning curves, confusion matrix (and, for two features, decision regions) to this file (.png, .pdf or .svg)",
    )
    out.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="keep a resumable checkpoint here, written every --checkpoint-every epochs, at the end "
        "and when Ctrl-C, SIGTERM or SIGHUP stops the run (exit status 128 plus the signal's number: 130, "
        "143, 129) (default with --resume: the resumed file)",
    )
    out.add_argument("--checkpoint-every", type=positive_int, metavar="K", help=f"{_default('checkpoint_every')}")
    out.add_argument(
        "--resume",
        metavar="PATH",
        help="continue from a checkpoint up to --epochs in total; with adam and sgd the result equals "
        "an uninterrupted run bit for bit (the whole-batch solvers continue from the weights with "
        "a fresh solver state)",
    )
    out.add_argument(
        "--overwrite",
        action="store_true",
        help="let a fresh run replace the file at --checkpoint (without it, an existing checkpoint is kept "
        "and the run refused: continue it with --resume)",
    )
    out.add_argument(
        "--provenance",
        action="store_true",
        help="record in the model file when (UTC), on which host, by which twolayer version and in how many "
        "seconds it was trained; without it the file holds no time or host, so identical runs write "
        "identical bytes",
    )
    add_dask_arguments(p, command="train")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")


def resolve_options(
    args: argparse.Namespace,
    keys: Sequence[str],
    defaults: Mapping[str, Any],
    stored: dict[str, Any] | None,
    resume: str | None,
) -> dict[str, Any]:
    """The run's options: those given, else the checkpoint's when resuming, else the defaults."""
    given = {key: getattr(args, key) for key in keys}
    validation = getattr(args, "validation", None)
    if validation is not None:
        _check_validation(args, resume)
    if stored is None:
        options = {key: (defaults.get(key) if value is None else value) for key, value in given.items()}
        if validation is not None:  # absent otherwise, so that runs without it record what they did before
            options["validation"] = validation
        return options
    options = dict.fromkeys(TABLE_KEYS) | dict(stored)
    for key in _RUN_DEFINING:
        if given[key] is not None and given[key] != stored.get(key):
            flag = "--" + key.replace("_", "-")
            shown = (
                f"{flag} {given[key]}" if not isinstance(given[key], bool) else (flag if given[key] else "--no-" + key)
            )
            raise DataError(
                f"{shown} differs from the checkpoint's {stored.get(key)!r}; a resumed run keeps the settings it "
                "started with (drop the option, or start afresh without --resume)"
            )
    for key in ("epochs", "out", "plot", "checkpoint_every"):
        if given[key] is not None:
            options[key] = given[key]
    options["checkpoint"] = given["checkpoint"] if given["checkpoint"] is not None else resume
    return options


# What `twolayer train` records in a checkpoint besides the training state.
_RUN_RECORD: dict[str, type | tuple[type, ...]] = {
    "options": dict,
    "source": str,
    "fingerprint": str,
    "scaler_samples": int,
    "accuracy": list,
    "elapsed": (int, float),
}


def check_run_record(path: str, record: dict[str, Any]) -> None:
    """A checkpoint written by another program may lack what resuming needs: say so in one line."""
    for key, kind in _RUN_RECORD.items():
        if not isinstance(record.get(key), kind):
            raise DataError(f"{path}: not a checkpoint of 'twolayer train' (its record has no valid {key!r})")
    missing = [key for key in OPTION_KEYS if key not in record["options"] and key not in TABLE_KEYS]
    if missing:
        raise DataError(f"{path}: not a checkpoint of 'twolayer train' (the option {missing[0]!r} is not recorded)")


def _check_validation(args: argparse.Namespace, resume: str | None) -> None:
    """``--validation`` replaces the --test-size split, and a checkpoint records only DATA's split."""
    if getattr(args, "test_size", None) is not None:
        raise DataError("--test-size does not apply with --validation (FILE's rows are the held-out set)")
    for flag, value in (("--resume", resume), ("--checkpoint", getattr(args, "checkpoint", None))):
        if value is not None:
            raise DataError(f"--validation cannot be combined with {flag} (a checkpoint records a split of DATA alone)")


def with_validation(data: Dataset, path: str) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """DATA's rows followed by those of ``--validation FILE``, and which are for training and which held out.

    FILE is read as a trained model reads its data: the columns of DATA (by
    name where they have names), encoded as DATA's were (the categories and
    fill values of DATA's columns), and the target column of DATA.

    Parameters
    ----------
    data : Dataset
        DATA, as loaded for training.
    path : str
        FILE.

    Returns
    -------
    Dataset
        DATA with FILE's rows appended.
    ndarray, ndarray
        The training rows (all of DATA's) and the held-out rows (FILE's).

    Raises
    ------
    DataError
        FILE cannot be read with DATA's columns, or holds a label DATA has not.
    """
    from twolayer.io.datasets import load_dataset

    assert data.y is not None
    features: list[str] | int = data.n_features
    if data.encoding is not None:
        features = list(data.encoding.names)
    elif data.feature_names is not None:
        features = list(data.feature_names)
    several = data.target_names is not None
    held = load_dataset(
        path,
        features=features,
        encoding=data.encoding,
        default_target=None if several else data.target_name,
        targets=list(data.target_names) if data.target_names is not None else None,
        id_column=data.id_name,
    )
    for warning in held.warnings:
        note(f"warning: --validation {warning}")
    for column, rows in held.unseen.items():
        note(f"note: --validation {path}: {rows} rows hold a value of {column!r} that DATA does not (inputs all zero)")
    assert held.y is not None
    y_held = held.y.astype(str) if data.y.dtype.kind in "UO" and held.y.dtype.kind not in "UO" else held.y
    if not several:
        labels = np.unique(y_held)
        # Labels of another kind (text beside numbers) are none of DATA's classes.
        unknown = np.setdiff1d(labels, np.unique(data.y)) if labels.dtype.kind == data.y.dtype.kind else labels
        if unknown.size:
            shown = ", ".join(repr(v.item()) for v in unknown[:5])
            raise DataError(f"--validation {path}: the labels {shown} are not among the classes of {data.source}")
    ids = None if data.ids is None or held.ids is None else np.concatenate([data.ids, held.ids])
    both = dataclasses.replace(
        data,
        X=np.concatenate([data.X, held.X.astype(data.X.dtype, copy=False)]),
        y=np.concatenate([data.y, y_held]),
        ids=ids,
        raw=None,
        source=f"{data.source} with --validation {path}",
    )
    n, total = data.n_samples, both.n_samples
    return both, np.arange(n), np.arange(n, total)


def hyperparameters(options: dict[str, Any]) -> dict[str, Any]:
    from twolayer.training.solvers import MINIBATCH_SOLVERS

    if options.get("validation") is not None and options["solver"] in MINIBATCH_SOLVERS:
        # --validation is the held-out set of early stopping (the whole-batch solvers have none).
        return {**_hyperparameters(options), "early_stopping": True}
    return _hyperparameters(options)


def _hyperparameters(options: dict[str, Any]) -> dict[str, Any]:
    return {
        "n_hidden": options["hidden"],
        "activation": options["activation"],
        "solver": options["solver"],
        "alpha": options["alpha"],
        "batch_size": options["batch_size"],
        "learning_rate_init": options["learning_rate"],
        "max_iter": options["epochs"],
        "random_state": options["seed"],
        "tol": options["tol"],
        "n_iter_no_change": options["n_iter_no_change"],
        "class_weight": None if options["class_weight"] == "none" else options["class_weight"],
    }
