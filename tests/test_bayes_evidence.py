"""The restarted evidence procedure, its hyperprior and settling, and the mixture of Laplace posteriors.

The moons protocol of issue 19: ``make_moons(200, noise=0.3)`` with training
seeds 120-124. Fits are cached per module; the five-seed checks are marked slow.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning

from twolayer import network as nw
from twolayer.bayes import BayesianTwoLayerClassifier, map_estimate, posterior_from_curvature
from twolayer.bayes.choices import SINGLE_START_PROCEDURE, per_group_precisions
from twolayer.curvature import gauss_newton
from twolayer.io import models
from twolayer.prior import group_ids

SEEDS = (120, 121, 122, 123, 124)
FAST_SEEDS = (120, 124)
N_HIDDEN = 6
LEGACY = SINGLE_START_PROCEDURE


def _moons(seed: int) -> tuple[np.ndarray, np.ndarray]:
    return make_moons(200, noise=0.3, random_state=seed)


_FITS: dict[tuple[int, bool | str, str, int], BayesianTwoLayerClassifier] = {}
STRUCTURES = ["last_layer", "full"]  # the default posterior (the last layer's), and the whole network's


def _fitted(
    seed: int, per_group: bool | str, structure: str = "last_layer", n_hidden: int = N_HIDDEN
) -> BayesianTwoLayerClassifier:
    """The default procedure (three restarts, the hyperprior) on one seed, fitted once per module."""
    key = (seed, per_group, structure, n_hidden)
    if key not in _FITS:
        X, y = _moons(seed)
        model = BayesianTwoLayerClassifier(n_hidden=n_hidden, per_group=per_group, structure=structure, random_state=0)
        _FITS[key] = model.fit(X, y)
    return _FITS[key]


def _single_start_evidence(
    model: BayesianTwoLayerClassifier, seed: int, start: int, monkeypatch: pytest.MonkeyPatch
) -> float:
    """The evidence the procedure reaches from one of its starts alone: its first weights, or restart ``start``."""
    X, y = _moons(seed)
    single = BayesianTwoLayerClassifier(**{**model.get_params(), "n_restarts": 0})
    if start == 0:
        return float(single.fit(X, y).log_evidence_)
    # The restarts' weights are drawn from the children of the first component's seed (random_state=0).
    child = np.random.SeedSequence(0).spawn(2)[0].spawn(int(model.n_restarts))[start - 1]
    init = nw.init_params(2, int(model.n_hidden), 2, random_state=np.random.default_rng(child))
    with monkeypatch.context() as patch:
        patch.setattr(nw, "init_params", lambda *args, **kwargs: init)
        return float(single.fit(X, y).log_evidence_)


def _restarts_beat_every_single_start(seeds: tuple[int, ...], monkeypatch: pytest.MonkeyPatch, structure: str) -> None:
    for seed in seeds:
        # Issue 19's protocol: 12 hidden units, the default per-group choice.
        model = _fitted(seed, per_group="auto", structure=structure, n_hidden=12)
        singles = [_single_start_evidence(model, seed, s, monkeypatch) for s in range(int(model.n_restarts) + 1)]
        # Two runs that end in the same basin stop at fixed points equal to alpha_tol, where the evidence is
        # stationary: they agree to far below 0.01 nats; the basins differ by tens of nats. The choice among
        # the starts is made cycle by cycle, which is no guarantee: with 6 hidden units and the last layer's
        # posterior, moons seed 124 ends 1.2 nats below its third start's own run (docs/evidence.md).
        assert model.log_evidence_ >= max(singles) - 1e-2, (seed, model.log_evidence_, singles)


@pytest.mark.parametrize("structure", STRUCTURES)
def test_restarted_evidence_is_at_least_every_single_start_fast(monkeypatch, structure):
    _restarts_beat_every_single_start(FAST_SEEDS, monkeypatch, structure)


@pytest.mark.slow
@pytest.mark.parametrize("structure", STRUCTURES)
def test_restarted_evidence_is_at_least_every_single_start_on_five_seeds(monkeypatch, structure):
    _restarts_beat_every_single_start(SEEDS, monkeypatch, structure)


def _settles(seeds: tuple[int, ...], per_group: bool, structure: str) -> None:
    for seed in seeds:
        model = _fitted(seed, per_group, structure)  # filterwarnings=error: a ConvergenceWarning fails here
        assert model.n_cycles_ < model.max_cycles
        target = model.posterior_.reestimated_prior_precision(
            tie=not per_group, hyperprior=model.alpha_hyperprior, centre=model.alpha
        )
        np.testing.assert_allclose(target, model.alpha_, rtol=model.alpha_tol)
        # nowhere near the bounds the unregularised per-group re-estimation ran to (1e-4 and 1e6 for W2, b2)
        assert np.all(model.alpha_ > 1e-3) and np.all(model.alpha_ < 1e3), (seed, model.alpha_)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("per_group", [False, True], ids=["tied", "per-group"])
def test_alpha_fixed_point_settles_fast(per_group, structure):
    _settles(FAST_SEEDS, per_group, structure)


@pytest.mark.slow
@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("per_group", [False, True], ids=["tied", "per-group"])
def test_alpha_fixed_point_settles_on_five_seeds(per_group, structure):
    _settles(SEEDS, per_group, structure)


def test_every_restart_evidence_is_recorded_and_the_best_is_kept():
    model = _fitted(120, per_group=True)
    assert len(model.restart_evidence_) == model.n_cycles_ == len(model.evidence_curve_)
    for evidence, chosen in zip(model.restart_evidence_, model.evidence_curve_, strict=True):
        assert evidence.shape == (model.n_restarts + 1,)
        assert chosen == np.max(evidence)
    assert model.log_evidence_ == model.evidence_curve_[-1]


def test_the_hyperprior_update_is_the_map_of_evidence_plus_gamma_log_density():
    """The update under the Gamma hyperprior: (gamma + nu) / (||w||^2 + nu / alpha0), gamma from the posterior."""
    X, y = _moons(121)
    T = np.eye(2)[y]
    alpha = np.array([0.7, 1.3, 0.2, 2.0])
    fit = map_estimate(X, T, alpha, init=nw.init_params(2, 4, 2, random_state=np.random.default_rng(0)))
    H = gauss_newton(fit.params, X, T)
    post = posterior_from_curvature(fit.params, H, alpha, fit.data_error, hessian="gauss_newton")
    nu, centre = 5.0, 1.0
    new = post.reestimated_prior_precision(hyperprior=nu, centre=centre)
    ids = group_ids(2, 4, 2)
    norms = np.bincount(ids, weights=post.mean**2, minlength=4)
    gamma = np.bincount(ids, minlength=4) - alpha * np.bincount(ids, weights=post.marginal_variance, minlength=4)
    # Gamma(1 + nu/2, rate nu / (2 centre)): d ln p / d alpha = (nu/2) / alpha - nu / (2 centre), which adds
    # nu to gamma and nu / centre to ||w||^2 in the stationarity condition gamma / alpha = ||w||^2
    np.testing.assert_allclose(new, (gamma + nu) / (norms + nu / centre), rtol=1e-12)
    # a group with no well-determined parameters and no weights stays at the hyperprior's mode
    assert (0.0 + nu) / (0.0 + nu / centre) == centre
    # no hyperprior: MacKay's update, bit for bit
    np.testing.assert_array_equal(post.reestimated_prior_precision(hyperprior=0.0), post.reestimated_prior_precision())


def _old_procedure(X: np.ndarray, y: np.ndarray, n_hidden: int, seed: int) -> tuple[np.ndarray, float, list[float]]:
    """The procedure as it was before restarts: train from one start, re-estimate one alpha, warm start, repeat."""
    T = np.eye(2)[y]
    init_seed = np.random.SeedSequence(seed).spawn(2)[0]
    params = nw.init_params(2, n_hidden, 2, random_state=np.random.default_rng(init_seed))
    alpha = np.ones(4)
    curve = []
    for _ in range(10):
        fit = map_estimate(X, T, alpha, init=params)
        W1, b1, W2, b2 = fit.params  # centred along the softmax's flat directions, as the estimator does
        w = nw.Params(W1, b1, W2 - W2.mean(axis=1, keepdims=True), b2 - b2.mean())
        post = posterior_from_curvature(w, gauss_newton(w, X, T), alpha, nw.error(w, X, T), hessian="gauss_newton")
        curve.append(post.log_evidence)
        params = post.params
        new = post.reestimated_prior_precision(tie=True)
        if np.all(np.abs(new - alpha) <= 1e-2 * alpha):
            break
        alpha = new
    return post.mean, post.log_evidence, curve


def test_legacy_settings_reproduce_the_procedure_before_restarts_exactly():
    X, y = _moons(122)
    mean, evidence, curve = _old_procedure(X, y, 5, seed=3)
    model = BayesianTwoLayerClassifier(n_hidden=5, random_state=3, **LEGACY).fit(X, y)
    np.testing.assert_array_equal(model.posterior_.mean, mean)
    assert model.log_evidence_ == evidence and model.evidence_curve_ == curve


def test_one_component_is_the_single_posterior_estimator_exactly():
    X, y = _moons(123)
    single = BayesianTwoLayerClassifier(n_hidden=5, n_restarts=1, random_state=4).fit(X, y)
    mixture = BayesianTwoLayerClassifier(n_hidden=5, n_restarts=1, n_components=1, random_state=4).fit(X, y)
    assert len(mixture.components_) == 1 and mixture.components_[0] is mixture.posterior_
    np.testing.assert_array_equal(mixture.mixture_weights_, [1.0])
    np.testing.assert_array_equal(mixture.predict_proba(X), single.predict_proba(X))
    np.testing.assert_array_equal(
        mixture.predict_proba(X),
        single.posterior_.predict_proba(X, n_samples=single.n_samples, random_state=single.predict_seed_),
    )
    # the first component of a larger mixture is trained from the same seeds as the single estimator
    larger = BayesianTwoLayerClassifier(n_hidden=5, n_restarts=1, n_components=3, random_state=4).fit(X, y)
    assert any(np.array_equal(c.mean, single.posterior_.mean) for c in larger.components_)


@pytest.mark.parametrize("weights", ["equal", "evidence"])
def test_mixture_predictive_is_the_weighted_mixture_of_its_components(weights):
    X, y = _moons(124)
    model = BayesianTwoLayerClassifier(
        n_hidden=4, n_restarts=0, n_components=3, mixture_weights=weights, method="probit", random_state=1
    ).fit(X, y)
    evidence = model.component_evidence_
    assert list(evidence) == sorted(evidence, reverse=True) and model.posterior_ is model.components_[0]
    expected_weights = np.full(3, 1 / 3) if weights == "equal" else np.exp(evidence - np.logaddexp.reduce(evidence))
    np.testing.assert_allclose(model.mixture_weights_, expected_weights, rtol=1e-12)
    proba = sum(w * c.predict_proba(X, method="probit") for w, c in zip(model.mixture_weights_, model.components_))
    np.testing.assert_allclose(model.predict_proba(X), proba, rtol=1e-12, atol=1e-15)


def test_mixture_round_trips_through_a_model_file_bit_for_bit(tmp_path: Path):
    X, y = _moons(120)
    model = BayesianTwoLayerClassifier(n_hidden=4, n_restarts=1, n_components=3, random_state=2).fit(X, y)
    path = tmp_path / "mixture.safetensors"
    models.save(model, path)
    loaded = models.load(path)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    np.testing.assert_array_equal(loaded.mixture_weights_, model.mixture_weights_)
    for a, b in zip(loaded.components_, model.components_, strict=True):
        np.testing.assert_array_equal(a.mean, b.mean)
        np.testing.assert_array_equal(a.marginal_variance, b.marginal_variance)
        assert a.log_evidence == b.log_evidence
    for a, b in zip(loaded.restart_evidence_, model.restart_evidence_, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_file_from_before_restarts_and_mixtures_reads_as_one_component_fitted_the_old_way():
    loaded = models.read(Path(__file__).parent / "data" / "format2_bayesian.safetensors")
    model = loaded.classifier
    assert "n_components" not in loaded.hyperparameters
    assert len(model.components_) == 1 and model.n_components == 1
    assert (model.n_restarts, model.alpha_hyperprior, model.alpha_damping) == (0, 0.0, 1.0)
    assert [r.tolist() for r in model.restart_evidence_] == [[v] for v in model.evidence_curve_]


def test_a_last_layer_posterior_reestimates_the_output_layer_and_keeps_the_hidden_layers_alpha():
    # Its evidence says nothing of the first layer's prior: tied or per group, W1 and b1 keep alpha.
    # The per-group update of each output group is gamma_g / ||w_g||^2 under the hyperprior, recomputed here.
    X, y = _moons(121)
    for per_group in (False, True):
        model = BayesianTwoLayerClassifier(
            n_hidden=4, structure="last_layer", per_group=per_group, alpha=0.7, random_state=0
        ).fit(X, y)
        assert model.alpha_[0] == model.alpha_[1] == 0.7
        post = model.posterior_
        ids = group_ids(*post.shape)
        norms = np.bincount(ids, weights=post.mean**2, minlength=4)
        nu, centre = model.alpha_hyperprior, model.alpha
        if per_group:
            expected = [(post.gamma_groups[g] + nu) / (norms[g] + nu / centre) for g in (2, 3)]
        else:
            expected = [(post.gamma + nu) / (norms[2] + norms[3] + nu / centre)] * 2
        np.testing.assert_allclose(model.alpha_[2:], expected, rtol=model.alpha_tol)


@pytest.mark.parametrize(
    ("structure", "alpha_search", "per_group"),
    [("last_layer", "fixed_point", True), ("full", "fixed_point", False), ("diagonal", "fixed_point", False)],
)
def test_per_group_auto_is_per_group_for_the_last_layer_only(structure, alpha_search, per_group):
    assert per_group_precisions("auto", structure, alpha_search) is per_group
    X, y = _moons(122)
    kw = {"n_hidden": 3, "structure": structure, "alpha_search": alpha_search, "random_state": 0, "max_cycles": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # four cycles: on purpose
        auto = BayesianTwoLayerClassifier(**kw).fit(X, y)
        explicit = BayesianTwoLayerClassifier(**kw, per_group=per_group).fit(X, y)
    np.testing.assert_array_equal(auto.alpha_, explicit.alpha_)
    assert auto.log_evidence_ == explicit.log_evidence_


def test_per_group_refuses_other_values():
    X, y = _moons(122)
    with pytest.raises(TypeError, match="per_group must be True, False or 'auto'"):
        BayesianTwoLayerClassifier(per_group="yes").fit(X, y)
    for per_group in (True, np.True_):
        with pytest.raises(ValueError, match="per_group=True needs alpha_search='fixed_point'"):
            BayesianTwoLayerClassifier(per_group=per_group, alpha_search="grid").fit(X, y)
    assert per_group_precisions("auto", "last_layer", "grid") is False  # a grid holds one alpha
