"""``train --dask`` and ``predict --dask``: the same commands, with DATA read and the work done on a Dask cluster.

``train --dask`` resolves DATA to its files (:mod:`twolayer.io.dask_tables`), starts or connects the
cluster (:mod:`twolayer.cli.dask_options`), passes over the partitions once to check them and to
find the labels and the features' means and variances (the scaler of ``--scale``), and fits a
:class:`twolayer.classifier.TwoLayerClassifier` on the lazy Dask arrays, which trains on the
workers' blocks (:mod:`twolayer.classifier.on_cluster`); with ``--bayes``, a
:class:`twolayer.bayes.BayesianTwoLayerClassifier`, whose evidence procedure (MAP fits, curvature,
posterior and evidence) sums over the same blocks (:mod:`twolayer.bayes.on_cluster`). Every row of
DATA trains; ``--validation FILE`` is the held-out set, in memory, as without ``--dask``. The model
file is written as without ``--dask``.

``predict --dask`` reads DATA with the model's columns on the workers; an ``--out`` folder (or a
``.parquet`` name, when DATA has several partitions) gets one Parquet file per partition, written by
the workers; a file or standard output gets the partitions' predictions in order, written here.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from twolayer.cli.common import EXIT_OK, busy, confusion_table, console, key_value_table, note
from twolayer.cli.dask_options import connected, refuse_predict_options, refuse_train_options
from twolayer.cli.multilabel import check_multilabel_options, measure
from twolayer.cli.progress import epochs_done
from twolayer.cli.train_options import OPTION_KEYS, TRAIN_DEFAULTS, hyperparameters, resolve_options
from twolayer.errors import DataError

if TYPE_CHECKING:
    from twolayer.io.dask_tables import ClusterTable, Survey

__all__ = ["predict_on_cluster", "train_on_cluster"]


def train_on_cluster(args: argparse.Namespace) -> int:
    """``twolayer train DATA --dask WHERE``: see the module's description."""
    from twolayer.io.dask_tables import read_for_training, resolve_sources, survey, training_arrays
    from twolayer.io.modelfile import atomic_write_all, model_bytes, scaled_model
    from twolayer.io.paths import check_outputs

    refuse_train_options(args)
    check_multilabel_options(args)  # leaves --target one name
    bayesian = _bayesian_kind() if args.bayes else None
    if bayesian is not None:
        bayesian.refuse(args)
        options = resolve_options(args, bayesian.option_keys, bayesian.defaults, None, None)
        bayesian.check(options)
    else:
        options = resolve_options(args, OPTION_KEYS, TRAIN_DEFAULTS, None, None)
    quiet = bool(args.quiet)
    sources = resolve_sources(args.data, sep=options["sep"])
    inputs = {"DATA": args.data, "--validation": options.get("validation")}
    inputs.update({f"DATA ({name})": name for name in sources.files})
    check_outputs(inputs, {"--out": options["out"]})
    table = read_for_training(
        sources, target=options["target"], select=options["features"], drop=options["drop"], id_column=options["id"]
    )
    dtype = np.float32 if options["dtype"] == "float32" else np.float64
    with connected(args.dask, memory=args.dask_memory, timeout=args.dask_timeout) as cluster:
        with busy("reading the partitions", quiet=quiet):
            found = survey(table, cluster.client)
        mean = scale = None
        if options["scale"]:
            mean, scale = found.standardisation()
        found.check_range(mean, scale, dtype, table.feature_names, sources.given)
        X, y = training_arrays(table, found, mean=mean, scale=scale, dtype=dtype)
        held = _validation(options.get("validation"), table, found, mean, scale)
        note(_intro(table, found, cluster.description), quiet=quiet)
        model, seconds = _fit(options, X, y, held, quiet, bayesian)

    predictor = scaled_model(model, mean, scale, found.n_rows) if mean is not None and scale is not None else model
    classes = np.asarray(model.classes_)
    if bayesian is not None:
        done, stopped = int(model.n_iter_), f"{model.n_cycles_} trainings of the evidence procedure"
    else:
        done = epochs_done(model)
        stopped = "reached --epochs" if done >= options["epochs"] else f"converged, --tol {options['tol']}"
    summary: dict[str, Any] = {
        "data": sources.given,
        "n_train": found.n_rows,
        "files": len(sources.files),
        "partitions": table.n_partitions,
        "epochs": done,
        "stopped": stopped,
        "train_loss": float(model.loss_),
    }
    if bayesian is not None:
        summary.update(
            {
                "bayesian": True,
                "cycles": int(model.n_cycles_),
                "alpha": [float(a) for a in model.alpha_],
                "gamma": float(model.gamma_),
                "log_evidence": float(model.log_evidence_),
            }
        )
    test = None
    if held is not None:
        with np.errstate(over="ignore", invalid="ignore"):
            test = measure(np.asarray(predictor.predict_proba(held[2])), held[1], classes)
        summary.update(
            {
                "validation": options["validation"],
                "n_test": int(held[1].shape[0]),
                "test_accuracy": test.accuracy,
                "test_log_loss": test.log_loss,
                "test_confusion_matrix": test.confusion_matrix,
            }
        )
    if args.provenance:
        from twolayer.cli.train import _provenance

        summary["provenance"] = _provenance(seconds)
    if options["out"] is not None:
        written = model_bytes(
            predictor, feature_names=list(table.feature_names), target_name=table.target_name, info=summary
        )
        atomic_write_all([(options["out"], written)])
    if not quiet:
        _print_summary(options, table, found, cluster.description, model, classes, summary, test, seconds)
    return EXIT_OK


def _intro(table: ClusterTable, found: Survey, where: str) -> str:
    sources = table.sources
    return (
        f"training on {sources.given}: {found.n_rows} rows in {sources.describe()} ({table.n_partitions} "
        f"partitions), {len(table.feature_names)} features, {found.classes.size} classes; on {where}"
    )


def _validation(
    path: str | None, table: ClusterTable, found: Survey, mean: np.ndarray | None, scale: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``--validation FILE`` in memory, read with DATA's columns: its inputs for the network (standardised
    by DATA's scaler), its labels of DATA's type, and its rows as read (for the model's own scaler)."""
    if path is None:
        return None
    from twolayer.io.datasets import load_dataset
    from twolayer.io.modelfile import standard_scaler

    held = load_dataset(
        path, features=list(table.feature_names), default_target=table.target_name, id_column=table.id_name
    )
    for warning in held.warnings:
        note(f"warning: --validation {warning}")
    assert held.y is not None
    y = held.y.astype(str) if found.label_dtype.kind == "U" and held.y.dtype.kind != "U" else held.y
    labels = np.unique(y)
    unknown = np.setdiff1d(labels, found.classes) if labels.dtype.kind == found.classes.dtype.kind else labels
    if unknown.size:
        shown = ", ".join(repr(v.item()) for v in unknown[:5])
        raise DataError(f"--validation {path}: the labels {shown} are not among the classes of {table.sources.given}")
    X = held.X
    if mean is not None and scale is not None:
        X = np.asarray(standard_scaler(mean, scale, found.n_rows).transform(X))
    return X, y, held.X


def _bayesian_kind() -> Any:
    """``train``'s Bayesian kind: the same options, checks and estimator as without ``--dask``."""
    from twolayer.cli.train import Bayesian

    return Bayesian()


def _fit(
    options: dict[str, Any],
    X: Any,
    y: Any,
    held: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    quiet: bool,
    bayesian: Any = None,
) -> tuple[Any, float]:
    """The network, fitted on the cluster's blocks, and the seconds its training took."""
    from sklearn.exceptions import ConvergenceWarning

    from twolayer.classifier import TwoLayerClassifier
    from twolayer.training.optim import TrainingDiverged

    if bayesian is not None:  # the held-out set is only measured: the evidence chooses alpha
        model, extra = bayesian.build(options), {}
    else:
        model = TwoLayerClassifier(**hyperparameters(options))
        extra = {"X_val": held[0], "y_val": held[1]} if held is not None else {}
    started = time.perf_counter()
    try:
        what = "the evidence procedure on the cluster" if bayesian is not None else "training on the cluster"
        with busy(what, quiet=quiet), warnings.catch_warnings():
            # Reaching --epochs is the plan, not a problem to warn about.
            warnings.simplefilter("ignore", ConvergenceWarning)
            with np.errstate(over="ignore", invalid="ignore"):
                model.fit(X, y, **extra)
    except TrainingDiverged:
        raise DataError(
            f"training diverged at epoch {epochs_done(model) + 1} (the loss is no longer finite): lower "
            "--learning-rate, or standardise the features (--scale)"
        ) from None
    if not all(np.isfinite(p).all() for p in model.params_):
        raise DataError("training diverged (the weights are no longer finite): lower --learning-rate")
    return model, time.perf_counter() - started


def _print_summary(
    options: dict[str, Any],
    table: ClusterTable,
    found: Survey,
    where: str,
    model: Any,
    classes: np.ndarray,
    summary: dict[str, Any],
    test: Any,
    seconds: float,
) -> None:
    sources = table.sources
    D, K = len(table.feature_names), classes.size
    unit = "epoch" if options["solver"] in ("adam", "sgd") else "iteration"
    rows = [
        (
            "data",
            f"{sources.given} ({found.n_rows} rows in {sources.describe()}, {table.n_partitions} partitions; "
            f"{D} features, {K} classes)",
        )
    ]
    if table.target_note is not None:
        rows.append(("target", table.target_note.removeprefix("target column: ")))
    if table.id_name is not None:
        rows.append(("identifier", f"{table.id_name!r} (not a feature)"))
    rows += [
        ("cluster", where),
        (
            "network",
            f"{D}-{options['hidden']}-{K}, {options['activation']} hidden units, softmax outputs, {options['dtype']}"
            + (
                f", Bayesian ({options['structure']} Laplace posterior, {options['hessian']} curvature)"
                if summary.get("bayesian")
                else ""
            ),
        ),
    ]
    if summary.get("bayesian"):
        alpha = summary["alpha"]
        rows += [
            ("training", f"{summary['stopped']}, {summary['epochs']} L-BFGS iterations in all, {seconds:.1f} s"),
            (
                "alpha",
                f"{alpha[0]:.4g} (all weights and biases)" if len(set(alpha)) == 1 else ", ".join(map(str, alpha)),
            ),
            ("gamma", f"{summary['gamma']:.4g} well-determined parameters"),
            ("log evidence", f"{summary['log_evidence']:.6g}"),
        ]
    else:
        rows.append(
            ("training", f"{options['solver']}, {summary['epochs']} {unit}s ({summary['stopped']}), {seconds:.1f} s")
        )
    rows.append(("train loss", f"{summary['train_loss']:.4f}"))
    if test is not None:
        rows += [
            ("test accuracy", f"{test.accuracy:.4f} (--validation {summary['validation']})"),
            ("test log-loss", f"{test.log_loss:.4f}"),
        ]
    out = console()
    out.print(key_value_table("Summary", rows))
    if test is not None:
        out.print(confusion_table(np.asarray(test.confusion_matrix), classes, "Confusion matrix (--validation)"))
    if options["out"] is not None:
        print(f"wrote model {options['out']}")


def predict_on_cluster(args: argparse.Namespace) -> int:
    """``twolayer predict MODEL DATA --dask WHERE``: see the module's description."""
    from twolayer.cli.evaluate import PredictionColumns
    from twolayer.io.dask_tables import (
        check_prediction_output,
        predict_partitions,
        read_for_model,
        resolve_sources,
        write_partitioned,
        writes_folder,
    )
    from twolayer.io.modelfile import read
    from twolayer.io.predictions import PredictionWriter, prediction_format

    refuse_predict_options(args)
    out = None if args.out == "-" else args.out
    sources = resolve_sources(args.data, sep=args.sep)
    model_file = read(args.model)
    if args.target is not None and args.target not in sources.names:
        raise DataError(f"{sources.given} has no column {args.target!r} (--target)")
    features = model_file.feature_names if model_file.encoding is None else None
    table = read_for_model(sources, features=features, encoding=model_file.encoding, id_column=args.id)
    folder = writes_folder(out, table.n_partitions)
    fmt = "parquet" if folder and args.format is None else prediction_format(out, args.format)
    if folder and fmt != "parquet":
        raise DataError(f"--format {fmt}: a folder of predictions is written as Parquet, one file per partition")
    if out is not None:
        check_prediction_output(out, sources, {"MODEL": args.model}, folder=folder)
    elif fmt not in ("csv", "tsv") and sys.stdout.isatty():
        raise DataError(f"--format {fmt} is binary: give --out FILE, or redirect standard output")
    maker = PredictionColumns.of(model_file, args.proba, table.id_name)
    with connected(args.dask, memory=args.dask_memory, timeout=args.dask_timeout) as cluster:
        if folder:
            assert out is not None
            with busy("predicting on the cluster"):
                written = write_partitioned(table, maker, out, cluster.client)
            rows, files = written.rows, written.files
        else:
            with (
                busy("predicting on the cluster") if out is not None else _nothing(),
                PredictionWriter(out, fmt) as writer,
            ):
                for columns in predict_partitions(table, maker, cluster.client):
                    writer.write(columns)
            rows, files = writer.rows, 1
    if out is not None:
        what = f"{files} Parquet file{'s' if files != 1 else ''}, one per partition" if folder else fmt
        print(f"wrote {rows} predictions to {out} ({what})")
    return EXIT_OK


def _nothing() -> Any:
    import contextlib

    return contextlib.nullcontext()
