"""Calibration of the Bayesian networks against the MAP network and a deep ensemble (issue 19).

Held-out log-loss, expected calibration error and Brier score over five
training seeds on two moons (200 points, noise 0.3, one fixed 3000-point test
set), the digits, wine and breast cancer (each split by seed, a third held
out, standardised on the training part). Contestants:

- ``MAP``: ``TwoLayerClassifier(solver="lbfgs", alpha=1.0)``, the network at
  the Bayesian estimator's starting alpha;
- ``ensemble``: the mean of five such MAP networks from other initial weights;
- ``Laplace (before)``: ``BayesianTwoLayerClassifier`` with the settings of
  the procedure before issue 19 (one tied alpha, one start, no hyperprior);
- ``Laplace (default)``: the estimator's defaults (the last layer's posterior,
  one alpha each for ``W2`` and ``b2`` under the Gamma hyperprior, three
  restarts a cycle), and its own MAP network;
- ``Laplace (whole network)``: ``structure="full"`` (the default before), one
  alpha for every weight, and its own MAP network; ``(whole network,
  per-group)``: the same with one alpha per group;
- ``mixture K=5``: five such components, evidence and equal weights.

Run ``python benchmarks/calibration.py [DATASET ...]``; it prints a Markdown
table per data set (timings are not measured). Single-threaded BLAS is enough.

``--last-layer`` runs the last layer's Laplace posterior instead (``structure="last_layer"``, with
per-group precisions for ``W2`` and ``b2`` and with one tied), each beside its own MAP network.

``--hmc`` runs the exact-posterior comparison instead: for each seed the
whole network's posterior (``structure="full"``, one alpha), its MAP network,
and the exact posterior predictive at its evidence-chosen alpha (every weight
and bias under that prior),
sampled by NUTS (``tests/hmc_oracle.py``: NumPyro on JAX, four chains of 500
draws after 500 warm-up steps). It needs the test extra.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from twolayer.bayes import BayesianTwoLayerClassifier
from twolayer.bayes.choices import SINGLE_START_PROCEDURE
from twolayer.classifier import TwoLayerClassifier
from twolayer.report.calibration import calibration_summary

SEEDS = (120, 121, 122, 123, 124)
BEFORE = SINGLE_START_PROCEDURE
HIDDEN = {"moons": 12, "digits": 8, "wine": 8, "breast_cancer": 8}


def split(name: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if name == "moons":
        X, y = make_moons(200, noise=0.3, random_state=seed)
        Xt, yt = make_moons(3000, noise=0.3, random_state=1)
        return X, y, Xt, yt
    loader = {"digits": load_digits, "wine": load_wine, "breast_cancer": load_breast_cancer}[name]
    X, y = loader(return_X_y=True)
    X, Xt, y, yt = train_test_split(X, y, test_size=1 / 3, random_state=seed, stratify=y)
    scaler = StandardScaler().fit(X)
    return scaler.transform(X), y, scaler.transform(Xt), yt


def scores(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> tuple[float, float, float]:
    s = calibration_summary(y, proba, classes=classes)
    return float(s["log_loss"]), float(s["ece"]), float(s["brier"])


def run(name: str) -> dict[str, list[tuple[float, float, float]]]:
    results: dict[str, list[tuple[float, float, float]]] = {}
    M = HIDDEN[name]
    for seed in SEEDS:
        X, y, Xt, yt = split(name, seed)
        classes = np.unique(y)

        def add(key: str, proba: np.ndarray, yt: np.ndarray = yt, classes: np.ndarray = classes) -> None:
            results.setdefault(key, []).append(scores(yt, proba, classes))

        maps = [
            TwoLayerClassifier(n_hidden=M, solver="lbfgs", alpha=1.0, max_iter=1000, random_state=r).fit(X, y)
            for r in range(5)
        ]
        add("MAP", maps[0].predict_proba(Xt))
        add("ensemble of 5 MAP", np.mean([m.predict_proba(Xt) for m in maps], axis=0))
        add(
            "Laplace (before)",
            BayesianTwoLayerClassifier(n_hidden=M, random_state=0, **BEFORE).fit(X, y).predict_proba(Xt),
        )
        default = BayesianTwoLayerClassifier(n_hidden=M, random_state=0).fit(X, y)
        add("Laplace (default)", default.predict_proba(Xt))
        add("MAP of the default", default.predict_proba_map(Xt))
        whole = BayesianTwoLayerClassifier(n_hidden=M, random_state=0, structure="full").fit(X, y)
        add("Laplace (whole network)", whole.predict_proba(Xt))
        add("MAP of the whole network's", whole.predict_proba_map(Xt))
        grouped = BayesianTwoLayerClassifier(n_hidden=M, random_state=0, structure="full", per_group=True).fit(X, y)
        add("Laplace (whole network, per-group)", grouped.predict_proba(Xt))
        mixture = BayesianTwoLayerClassifier(n_hidden=M, random_state=0, n_components=5).fit(X, y)
        add("mixture K=5, evidence weights", mixture.predict_proba(Xt))
        mixture.mixture_weights_ = np.full(5, 0.2)
        add("mixture K=5, equal weights", mixture.predict_proba(Xt))
        print(f"  {name} seed {seed} done", file=sys.stderr, flush=True)
    return results


def run_hmc(name: str) -> dict[str, list[tuple[float, float, float]]]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from hmc_oracle import hmc_predictive

    results: dict[str, list[tuple[float, float, float]]] = {}
    M = HIDDEN[name]
    for seed in SEEDS:
        X, y, Xt, yt = split(name, seed)
        classes = np.unique(y)
        # The exact posterior of the whole network under one alpha: the whole network's posterior is its match.
        default = BayesianTwoLayerClassifier(n_hidden=M, random_state=0, structure="full").fit(X, y)
        alpha = float(default.alpha_[0])
        exact = hmc_predictive(X, np.searchsorted(classes, y), Xt, n_hidden=M, alpha=alpha, n_classes=len(classes))
        for key, proba in (
            ("MAP of the whole network's", default.predict_proba_map(Xt)),
            ("Laplace (whole network)", default.predict_proba(Xt)),
            ("HMC at its alpha", exact.proba),
        ):
            results.setdefault(key, []).append(scores(yt, proba, classes))
        print(
            f"  {name} seed {seed}: alpha {alpha:.3g}, HMC split-R-hat {exact.r_hat:.3f}, "
            f"{exact.divergences} divergences",
            file=sys.stderr,
            flush=True,
        )
    return results


def run_last_layer(name: str) -> dict[str, list[tuple[float, float, float]]]:
    """The last layer's Laplace posterior: per-group precisions for W2 and b2 (per_group="auto"), or one tied."""
    results: dict[str, list[tuple[float, float, float]]] = {}
    M = HIDDEN[name]
    for seed in SEEDS:
        X, y, Xt, yt = split(name, seed)
        classes = np.unique(y)
        for label, per_group in (("per group", "auto"), ("tied", False)):
            model = BayesianTwoLayerClassifier(
                n_hidden=M, random_state=0, structure="last_layer", per_group=per_group
            ).fit(X, y)
            results.setdefault(f"last layer, {label}", []).append(scores(yt, model.predict_proba(Xt), classes))
            results.setdefault(f"its MAP ({label})", []).append(scores(yt, model.predict_proba_map(Xt), classes))
            print(f"  {name} seed {seed} {label}: alpha {np.round(model.alpha_, 3).tolist()}", file=sys.stderr)
    return results


def table(name: str, results: dict[str, list[tuple[float, float, float]]]) -> str:
    lines = [
        f"### {name} (n_hidden={HIDDEN[name]}, 5 seeds: mean ± standard deviation)",
        "",
        "| model | log-loss | ECE | Brier |",
        "|---|---:|---:|---:|",
    ]
    for key, rows in results.items():
        a = np.array(rows)
        cells = " | ".join(f"{m:.4f} ± {s:.4f}" for m, s in zip(a.mean(axis=0), a.std(axis=0), strict=True))
        lines.append(f"| {key} | {cells} |")
    return "\n".join(lines)


def main(args: list[str]) -> None:
    warnings.simplefilter("ignore", ConvergenceWarning)
    hmc, last_layer = "--hmc" in args, "--last-layer" in args
    names = [a for a in args if a not in ("--hmc", "--last-layer")]
    for name in names or list(HIDDEN):
        results = run_hmc(name) if hmc else run_last_layer(name) if last_layer else run(name)
        print(table(name, results), "\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
