"""The exact posterior predictive of the two-layer network, sampled by NUTS (NumPyro on JAX).

An oracle for the Bayesian tests and the calibration benchmark: the network, its prior and its
likelihood are written here from scratch in JAX (nothing from ``twolayer``), and NumPyro's No-U-Turn
sampler draws weights from the exact posterior

    p(w | D, alpha)  ∝  exp(-E(w)) * prod_i N(w_i | 0, 1 / alpha)

with every weight and bias under the same Gaussian prior of precision ``alpha`` — the prior of
``BayesianTwoLayerClassifier`` with one tied ``alpha`` (``docs/curvature.md``). The predictive is
the average of the sampled networks' softmax outputs. The posterior of a network is multimodal
(hidden units can be permuted and their signs flipped, and there may be genuinely different fits);
the predictive does not change under the symmetries, so several chains in different symmetric
copies agree on it, which :func:`hmc_predictive` checks with the split-R̂ of the predictive
probabilities.

NumPyro and JAX are test extras (``pip install twolayer[test]``); importing this module without
them raises ImportError, which the tests turn into a skip that names them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import jax  # isort: skip

jax.config.update("jax_enable_x64", True)  # the oracle in float64, like the Laplace it judges

import jax.numpy as jnp  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from numpyro.diagnostics import split_gelman_rubin  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402


def _network_model(X: jnp.ndarray, y: jnp.ndarray | None, n_hidden: int, n_classes: int, alpha: float) -> None:
    D = X.shape[1]
    scale = 1.0 / np.sqrt(alpha)
    W1 = numpyro.sample("W1", dist.Normal(0.0, scale).expand([D, n_hidden]).to_event(2))
    b1 = numpyro.sample("b1", dist.Normal(0.0, scale).expand([n_hidden]).to_event(1))
    W2 = numpyro.sample("W2", dist.Normal(0.0, scale).expand([n_hidden, n_classes]).to_event(2))
    b2 = numpyro.sample("b2", dist.Normal(0.0, scale).expand([n_classes]).to_event(1))
    logits = jnp.tanh(X @ W1 + b1) @ W2 + b2
    numpyro.sample("y", dist.Categorical(logits=logits), obs=y)


@dataclass(frozen=True)
class HmcPredictive:
    """The sampled posterior predictive at the test points, and how well the chains agree on it."""

    proba: np.ndarray  # (N_test, K): the mean of the sampled networks' softmax outputs
    r_hat: float  # the largest split-R̂ over the predictive probabilities (1 when the chains agree)
    divergences: int  # NUTS's divergent transitions over all chains


def hmc_predictive(
    X: np.ndarray,
    y: np.ndarray,
    X_test: np.ndarray,
    *,
    n_hidden: int,
    alpha: float,
    n_classes: int | None = None,
    num_warmup: int = 500,
    num_samples: int = 500,
    num_chains: int = 4,
    seed: int = 0,
) -> HmcPredictive:
    """Sample the exact posterior of the network by NUTS and return its predictive at ``X_test``.

    ``y`` holds class indices 0..K-1; ``alpha`` is the prior precision of every weight and bias.
    The chains run vectorised in one process (two cores need no more).
    """
    K = int(n_classes if n_classes is not None else np.max(y) + 1)
    kernel = NUTS(_network_model, target_accept_prob=0.9)
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(
        jax.random.PRNGKey(seed),
        jnp.asarray(X, dtype=jnp.float64),
        jnp.asarray(y, dtype=jnp.int32),
        n_hidden,
        K,
        float(alpha),
        extra_fields=("diverging",),
    )
    draws = mcmc.get_samples(group_by_chain=True)  # each (chains, samples, ...)
    Xt = jnp.asarray(X_test, dtype=jnp.float64)
    hidden = jnp.tanh(jnp.einsum("nd,csdm->csnm", Xt, draws["W1"]) + draws["b1"][:, :, None, :])
    logits = jnp.einsum("csnm,csmk->csnk", hidden, draws["W2"]) + draws["b2"][:, :, None, :]
    proba = np.asarray(jax.nn.softmax(logits, axis=-1))  # (chains, samples, N_test, K)
    r_hat = float(np.nanmax(split_gelman_rubin(proba)))
    divergences = int(np.sum(np.asarray(mcmc.get_extra_fields()["diverging"])))
    return HmcPredictive(proba=proba.mean(axis=(0, 1)), r_hat=r_hat, divergences=divergences)
