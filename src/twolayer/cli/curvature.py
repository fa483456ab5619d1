"""``twolayer curvature``: the spectra of a model's Hessian and Gauss-Newton matrix on data.

The numbers come from :mod:`twolayer.report.spectrum`; this module chooses
the rows, prints the tables and writes the plot.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from twolayer.cli.common import (
    EXIT_OK,
    Command,
    add_model_data_arguments,
    busy,
    console,
    key_value_table,
    labelled_rows,
    positive_int,
    rows_description,
)
from twolayer.errors import DataError
from twolayer.report import spectrum as spectra

__all__ = ["CURVATURE", "curvature"]


def _add_curvature_arguments(p: argparse.ArgumentParser) -> None:
    add_model_data_arguments(p, data_required=True)
    p.epilog = (
        "The matrices are those of the error summed over the patterns used (divide by N for the mean "
        "loss). A trained model is at a minimum of its training rows only (--rows train): all of a built-in "
        "dataset's rows include those held out in training, and there the gradient is not zero."
    )
    p.add_argument(
        "--k",
        type=positive_int,
        default=6,
        metavar="N",
        help="eigenvalues to find at each end of each spectrum (default: 6)",
    )
    p.add_argument(
        "--max-products",
        type=positive_int,
        default=1000,
        metavar="P",
        help="the most matrix-vector products Lanczos may spend on each end of each spectrum (default: 1000)",
    )
    p.add_argument(
        "--rows",
        choices=("all", "train", "test"),
        default="all",
        help="all of DATA's rows, or only those the model was trained on (where a trained model is at a "
        "minimum) or held out; train and test need DATA to be the model's training data "
        "(default: all)",
    )
    p.add_argument(
        "--plot",
        metavar="PICTURE",
        help="write a picture of the spectra: histograms of every eigenvalue when the full spectrum is "
        f"computed (W <= {spectra.FULL_SPECTRUM_MAX_PARAMS}), the extreme values otherwise (.png, .pdf or .svg)",
    )


def _ordinal(n: int, word: str) -> str:
    if n == 1:
        return word
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix} {word}"


def _eigenvalue(value: float) -> str:
    return "not converged" if not math.isfinite(value) else f"{value:.6g}"


def _negative(count: spectra.NegativeCount, k: int) -> str:
    if count.kind == "exact":
        return f"{count.count} of {count.n_values}"
    if count.kind == "estimated":
        return f"{count.count} (estimated: the {k} smallest Lanczos values include one >= 0)"
    if count.kind == "unknown":
        return "unknown (Lanczos did not converge)"
    return f"at least {count.count} (estimated from {count.n_values} Lanczos values)"


def _condition(condition: spectra.Condition) -> str:
    return {
        "unknown": "unknown (Lanczos did not converge)",
        "indefinite": "none: indefinite",
        "singular": "infinite: singular",
    }.get(condition.kind, f"{condition.value:.4g}")


def _flat(known: spectra.KnownEigenvectors) -> str:
    if known.flat == 0:
        return "none: the prior penalises every parameter"
    what = "a common shift of b2" if known.flat == 1 else "common shifts of b2 and of the rows of W2, as alpha = 0"
    return (
        f"{known.flat} direction{'s' if known.flat > 1 else ''} along which E~ is constant ({what}): left "
        "out of the smallest eigenvalues and the condition number"
    )


def curvature(args: argparse.Namespace) -> int:
    from rich.table import Table
    from sklearn.pipeline import Pipeline

    from twolayer.bayes import GROUPS
    from twolayer.io.modelfile import atomic_write
    from twolayer.network import Params, n_params

    model_file, data, X, y = labelled_rows(args)
    classes = model_file.classes
    scaled = isinstance(model_file.model, Pipeline)
    if scaled:
        X = model_file.model[:-1].transform(X)  # the network sees what it was trained on
    X = np.asarray(X, dtype=np.float64)
    classifier = model_file.classifier
    params = Params(*(np.asarray(p, dtype=np.float64) for p in classifier.params_))
    D, M, K = data.n_features, classifier.n_hidden, classes.size
    W = n_params(D, M, K)
    most = spectra.max_eigenvalues_per_end(D, M, K)
    if args.k > most:
        raise DataError(
            f"--k {args.k}: this {D}-{M}-{K} network has {W} parameters, {M + 1} of them along known "
            f"eigenvectors; ask for at most {most} eigenvalues at each end"
        )
    T = spectra.one_hot(y, classes)
    class_weight = getattr(classifier, "class_weight", None)
    sample_weight = None
    if class_weight is not None:
        try:
            sample_weight = spectra.class_sample_weight(class_weight, y, classes)
        except ValueError as exc:
            raise DataError(f"{data.source}: the model's class weights cannot be applied to it ({exc})") from None
    if model_file.bayesian:
        group_alpha = spectra.prior_precision(classifier.alpha_, bayesian=True)
    else:
        group_alpha = spectra.prior_precision(classifier.alpha, bayesian=False)
    with busy(f"the Hessian and Gauss-Newton spectra of {W} parameters over {X.shape[0]} patterns"):
        result = spectra.curvature_spectra(
            params,
            X,
            T,
            sample_weight,
            activation=classifier.activation,
            prior_precision=group_alpha,
            k=args.k,
            max_products=args.max_products,
        )
    both = (result.hessian, result.gauss_newton)
    full = result.full
    if model_file.bayesian:
        prior = ", ".join(f"{name} {a:.4g}" for name, a in zip(GROUPS, group_alpha))
        error = f"E~ = E + sum_g alpha_g/2 |w_g|^2 summed over the patterns, the Bayesian network's prior: {prior}"
    else:
        error = (
            f"E~ = E + alpha/2 |w|^2 summed over the patterns, alpha = {group_alpha[0]:g} on W1 and W2 (biases free)"
        )

    png = None
    if args.plot is not None:
        from twolayer.io.paths import figure_format
        from twolayer.report import plots

        shown = {s.name: s.known_values for s in both}
        title = f"{args.model} on {data.source}: {D}-{M}-{K} network, W = {W}"
        png = plots.render(plots.spectrum_figure(shown, full=full, title=title), figure_format(args.plot))

    lanczos = []
    for s in both:
        found = s.n_converged
        text = f"{s.name}: {found} of {2 * args.k} converged in {s.products} products"
        if s.full is not None and found:
            text += f", within {s.lanczos_error():.1e} (relative) of the full spectrum"
        lanczos.append(text)
    weighted = f", patterns weighted by class_weight={class_weight!r}" if sample_weight is not None else ""
    limit = spectra.FULL_SPECTRUM_MAX_PARAMS
    rows = [
        ("model", f"{args.model}: {D}-{M}-{K} network, {classifier.activation} hidden units, W = {W} parameters"),
        (
            "data",
            rows_description(data.source, args.rows, y.size)
            + (", standardised by the model's scaler" if scaled else ""),
        ),
        ("error", error + weighted),
        ("gradient", f"|grad E~| = {result.gradient_norm:.4g}, largest component {result.gradient_max:.4g}"),
        ("flat", _flat(result.known)),
        (
            "spectrum",
            f"full (numpy.linalg.eigvalsh), W <= {limit}"
            if full
            else f"not computed (W > {limit}); Lanczos values only",
        ),
        ("Lanczos", "scipy eigsh on the R-operator products; " + "; ".join(lanczos)),
    ]
    if png is not None:
        rows.append(("plot", str(args.plot)))
    out = console()
    out.print(key_value_table("Curvature at the model's weights", rows))
    table = Table(title=f"Eigenvalues ({'full spectrum' if full else 'Lanczos'})", title_justify="left")
    table.add_column("", style="bold")
    for s in both:
        table.add_column(s.name, justify="right")
    for i in range(args.k):
        table.add_row(_ordinal(i + 1, "largest"), *(_eigenvalue(s.largest[i]) for s in both))
    for i in reversed(range(args.k)):
        table.add_row(_ordinal(i + 1, "smallest"), *(_eigenvalue(s.smallest[i]) for s in both))
    table.add_row("condition number", *(_condition(spectra.condition_number(s, W)) for s in both))
    table.add_row("negative", *(_negative(spectra.negative_count(s, W), args.k) for s in both))
    out.print(table)
    if png is not None:
        atomic_write(args.plot, png)
        print(f"wrote plot {args.plot}")
    return EXIT_OK


CURVATURE = Command(
    "curvature",
    "extreme eigenvalues, condition number and negative eigenvalues of the Hessian and the "
    "Gauss-Newton matrix of a model's error on data",
    _add_curvature_arguments,
    curvature,
)
