"""The Laplace posterior against the exact posterior: an HMC oracle (NUTS, NumPyro on JAX).

On a small two-moons problem with a weak prior the MAP network is over-confident away from the
data. The exact posterior predictive, sampled by NUTS from a network written independently in JAX
(``tests/hmc_oracle.py``), is the reference: the Laplace predictive (Gauss–Newton or exact
Hessian, Monte Carlo or probit), and the mixture of Laplace posteriors, must move most of the way
from the MAP network towards it, and the Laplace covariance must be the right size: scaling it by
4 or by 1/4 must take the predictive further from the exact one.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_moons

pytest.importorskip("numpyro", reason="the HMC oracle needs NumPyro and JAX (pip install twolayer[test])")

from hmc_oracle import HmcPredictive, hmc_predictive
from twolayer.bayes import BayesianTwoLayerClassifier, predictive_mc, predictive_probit

pytestmark = pytest.mark.slow  # one NUTS run of four chains, about 15 s with JAX's compilation

ALPHA = 0.1  # a weak prior: the MAP network is over-confident, so moderation has work to do
N_HIDDEN = 4


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """Mean over points of KL(p || q) between rows of class probabilities."""
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


@pytest.fixture(scope="module")
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, HmcPredictive]:
    X, y = make_moons(40, noise=0.3, random_state=3)
    held_out, _ = make_moons(400, noise=0.3, random_state=1)
    grid = np.mgrid[-3:4:0.5, -3:3.5:0.5].reshape(2, -1).T  # and away from the data, where moderation matters
    X_test = np.vstack([held_out, grid])
    exact = hmc_predictive(X, y, X_test, n_hidden=N_HIDDEN, alpha=ALPHA)
    return X, y, X_test, exact


def _laplace(X: np.ndarray, y: np.ndarray, **kwargs: object) -> BayesianTwoLayerClassifier:
    return BayesianTwoLayerClassifier(
        n_hidden=N_HIDDEN, alpha_search="grid", alpha_grid=[ALPHA], random_state=0, **{"structure": "full", **kwargs}
    ).fit(X, y)


def test_the_oracle_chains_agree(problem):
    *_, exact = problem
    assert exact.r_hat < 1.05
    assert exact.divergences <= 10
    np.testing.assert_allclose(exact.proba.sum(axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("hessian", ["gauss_newton", "exact"])
@pytest.mark.parametrize("n_components", [1, 3])
def test_laplace_and_mixture_move_towards_the_exact_predictive(problem, hessian, n_components):
    X, y, X_test, exact = problem
    model = _laplace(X, y, hessian=hessian, n_components=n_components)
    to_map = _kl(exact.proba, model.predict_proba_map(X_test))
    to_laplace = _kl(exact.proba, model.predict_proba(X_test))
    assert to_map > 0.1  # the MAP network is far from the exact predictive here ...
    assert to_laplace < 0.3 * to_map  # ... and the Laplace predictive most of the way to it


def test_probit_moderation_moves_towards_the_exact_predictive(problem):
    X, y, X_test, exact = problem
    model = _laplace(X, y, method="probit")
    assert _kl(exact.proba, model.predict_proba(X_test)) < 0.3 * _kl(exact.proba, model.predict_proba_map(X_test))


def test_the_laplace_covariance_has_the_right_size(problem):
    X, y, X_test, exact = problem
    mean, cov = _laplace(X, y).posterior_.logit_distribution(X_test)
    distance = {
        scale: _kl(exact.proba, predictive_mc(mean, scale * cov, n_samples=4000, random_state=0))
        for scale in (0.25, 1.0, 4.0)
    }
    assert distance[1.0] < distance[0.25]
    assert distance[1.0] < distance[4.0]
    assert _kl(exact.proba, predictive_probit(mean, cov)) < distance[4.0]
