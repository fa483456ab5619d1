"""The shared oracles of ``oracles.py`` cover the package and agree with a closed form."""

from __future__ import annotations

import autograd
import numpy as np
import pytest

from oracles import ACTIVATIONS, AUTOGRAD_ACTIVATIONS, error, rel_err
from twolayer import network


def test_every_registered_activation_has_an_oracle() -> None:
    # A new registry entry must come with an independent autograd form, or no test can check it.
    assert set(AUTOGRAD_ACTIVATIONS) == set(network.ACTIVATIONS)


# Values worked by hand: tanh(1) = (e^2 - 1) / (e^2 + 1), sigma(-2) = 1 / (1 + e^2).
HAND = {
    "tanh": ([-1.0, 0.0, 1.0], [-0.7615941559557649, 0.0, 0.7615941559557649]),
    "logistic": ([-2.0, 0.0, 2.0], [0.11920292202211755, 0.5, 0.8807970779778823]),
    "relu": ([-1.5, 0.0, 2.5], [0.0, 0.0, 2.5]),
    "identity": ([-1.5, 0.0, 2.5], [-1.5, 0.0, 2.5]),
}


@pytest.mark.parametrize("activation", sorted(HAND))
def test_each_oracle_activation_is_its_formula(activation: str) -> None:
    a, expected = HAND[activation]
    np.testing.assert_allclose(AUTOGRAD_ACTIVATIONS[activation](np.array(a)), expected, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_the_oracle_error_is_ln_k_at_zero_weights(activation: str) -> None:
    # With every weight zero each softmax output is 1/K, so E = N ln K whatever h is (h(0) feeds a zero W2).
    D, M, K, N = 3, 2, 4, 5
    T = np.eye(K)[[0, 1, 2, 3, 0]]
    theta = np.zeros(network.n_params(D, M, K))
    X = np.random.default_rng(0).normal(size=(N, D))
    assert error(theta, X, T, None, D, M, K, activation) == pytest.approx(N * np.log(K), rel=1e-14)
    # ... and the decay adds alpha/2 ||w||^2 for W1 and W2 only: here theta is one everywhere.
    ones = np.ones_like(theta)
    grad = autograd.grad(lambda t: error(t, X, T, None, D, M, K, activation, alpha=(1.0, 0.0, 1.0, 0.0)))(ones)
    plain = autograd.grad(lambda t: error(t, X, T, None, D, M, K, activation))(ones)
    decay = np.concatenate([np.ones(D * M), np.zeros(M), np.ones(M * K), np.zeros(K)])
    np.testing.assert_allclose(grad - plain, decay, atol=1e-12)


def test_rel_err_is_scale_free() -> None:
    assert rel_err([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert rel_err([1e-9, 2e-9], [1e-9, 2.2e-9]) == pytest.approx(0.2 / 2.2)
