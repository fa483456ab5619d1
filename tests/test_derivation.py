"""Tests of twolayer.teaching.derivation.

The symbolic network is compared numerically with twolayer.network, the
counterexamples are re-checked with NumPy and central differences, and the
checking machinery must refute deliberately wrong claims, not only accept
right ones.
"""

from __future__ import annotations

import dataclasses
import re
from fractions import Fraction

import numpy as np
import pytest
import sympy

from twolayer import network as nw
from twolayer.teaching import derivation as dv
from twolayer.teaching import identities, symbolic_network

EXPECTED_NAMES = [
    "softmax derivative, k = j",
    "softmax derivative, k != j",
    "cross-entropy through the softmax",
    "collecting terms",
    "the homework's penultimate line",
    "output error without sum_l t_l = 1",
    "output error",
    "tanh derivative",
    "second-layer derivative",
    "hidden error",
    "first-layer derivative",
    "agreement with network.gradient",
    "logistic sigmoid derivative",
    "binary cross-entropy through the sigmoid",
    "sigmoid output curvature",
    "agreement with network.gradient, sigmoid outputs",
]
REFUTED = {"the homework's penultimate line", "output error without sum_l t_l = 1"}


@pytest.fixture(scope="module")
def steps() -> dict[str, dv.Step]:
    result = dv.verify_derivation()  # K = 2, 3, 4; D = M = 2
    return {s.name: s for s in result}


def test_the_steps_cover_the_derivation_in_order():
    result = dv.verify_derivation(classes=(2,), n_features=1, n_hidden=1)  # D = M = 1, K = 2
    assert [s.name for s in result] == EXPECTED_NAMES
    assert all(isinstance(s, dv.Step) and s.claim and s.latex and s.detail for s in result)
    assert all(s.as_expected for s in result), [s for s in result if not s.as_expected]


@pytest.mark.slow  # the whole derivation proved for K = 2, 3 and 4
def test_every_true_step_holds(steps):
    for name, step in steps.items():
        if name in REFUTED:
            continue
        assert step.expected and step.holds, step
        assert step.as_expected
        assert step.detail.startswith(("proved", "D="))
    for family in ("K=2", "K=3", "K=4"):
        assert family in steps["output error"].detail
        assert family in steps["first-layer derivative"].detail
        assert f"{family}, sigmoid" in steps["binary cross-entropy through the sigmoid"].detail
    # every pair (k, l) for K = 2, 3, 4: the off-diagonal zeros are claims too
    assert "all 29 cases" in steps["sigmoid output curvature"].detail


@pytest.mark.slow  # the whole derivation proved for K = 2, 3 and 4
def test_the_agreement_with_network_gradient_is_numerical(steps):
    detail = steps["agreement with network.gradient"].detail
    assert "K=4" in detail  # the largest K asked for
    assert float(re.search(r"= ([0-9.e+-]+) \(within", detail).group(1)) <= 1e-12


def parse_counterexample(detail: str):
    """The symbol values and both sides' values from a refuted step's detail."""
    assert detail.startswith("counterexample (K="), detail
    K, k = map(int, re.search(r"\(K=(\d+), k=(\d+)\)", detail).groups())
    values = {name: Fraction(v) for name, v in re.findall(r"(\w+)=(-?\d+(?:/\d+)?)(?=[,:])", detail)}
    lhs = float(re.search(r"lhs = (\S+),", detail).group(1))
    rhs = float(re.search(r"rhs = (\S+)$", detail).group(1))
    a = np.array([float(values[f"a2_{l}"]) for l in range(1, K + 1)])
    t = np.array([float(values[f"t_{l}"]) for l in range(1, K + 1)])
    return K, k - 1, a, t, lhs, rhs


def dE_da(a: np.ndarray, t: np.ndarray, k: int, eps: float = 1e-6) -> float:
    """dE/da_k by central differences of E = -sum_l t_l ln softmax(a)_l (PRML eq. 5.69)."""

    def E(a):
        return -float(t @ (a - np.log(np.sum(np.exp(a)))))

    step = np.zeros_like(a)
    step[k] = eps
    return (E(a + step) - E(a - step)) / (2 * eps)


@pytest.mark.slow  # the whole derivation proved for K = 2, 3 and 4
def test_the_homeworks_slip_is_refuted_with_one_hot_targets(steps):
    step = steps["the homework's penultimate line"]
    assert step.expected is False and step.holds is False and step.as_expected
    K, k, a, t, lhs, rhs = parse_counterexample(step.detail)
    assert sorted(t) == [0.0] * (K - 1) + [1.0]  # a genuine 1-of-K target
    y = np.exp(a) / np.sum(np.exp(a))
    assert lhs == pytest.approx(dE_da(a, t, k), rel=1e-7)  # the true derivative ...
    assert lhs == pytest.approx(y[k] - t[k], rel=1e-9)
    assert rhs == pytest.approx(t @ y - t[k], rel=1e-9)  # ... and the slip's value
    assert abs(lhs - rhs) > 1e-3


@pytest.mark.slow  # the whole derivation proved for K = 2, 3 and 4
def test_the_output_error_needs_targets_that_sum_to_one(steps):
    step = steps["output error without sum_l t_l = 1"]
    assert step.holds is False and step.as_expected
    _, k, a, t, lhs, rhs = parse_counterexample(step.detail)
    assert t.sum() != 1.0
    y = np.exp(a) / np.sum(np.exp(a))
    assert lhs == pytest.approx(dE_da(a, t, k), rel=1e-7)
    assert rhs == pytest.approx(y[k] - t[k], rel=1e-9)
    assert steps["output error"].holds  # with the constraint it is right


# --- the machinery refutes wrong claims -------------------------------------------------------


@pytest.fixture(scope="module")
def net() -> dv.SymbolicNetwork:
    return dv.symbolic_network(2, 2, 3)


def one_hot(net):
    return lambda rng: net.sample(rng, one_hot=True)


def test_a_wrong_output_error_is_refuted(net):
    k = 1
    step = dv.check_claim(
        "wrong output error",
        "dE/da_k = y_k + t_k",
        [
            dv.Identity(
                sympy.diff(net.E_of_a2, net.a2[k]),
                net.y_of_a2[k] + net.t[k],
                "K=3: k=2",
                net.targets_sum_to_one,
                one_hot(net),
            )
        ],
    )
    assert not step.holds and not step.as_expected
    assert step.detail.startswith("counterexample (K=3, k=2)")
    # The same machinery, given the right formula, proves it.
    right = dv.check_claim(
        "output error",
        "dE/da_k = y_k - t_k",
        [
            dv.Identity(
                sympy.diff(net.E_of_a2, net.a2[k]),
                net.y_of_a2[k] - net.t[k],
                "K=3: k=2",
                net.targets_sum_to_one,
                one_hot(net),
            )
        ],
    )
    assert right.holds and right.detail.startswith("proved")


def test_a_wrong_tanh_derivative_is_refuted():
    a = sympy.Symbol("a", real=True)
    h = dv.tanh_from_exp(a)
    wrong = dv.check_claim("tanh'", "h' = 1 + h^2", [dv.Identity(sympy.diff(h, a), 1 + h**2)])
    assert not wrong.holds
    value = Fraction(re.search(r"a=(-?\d+(?:/\d+)?)", wrong.detail).group(1))
    assert float(re.search(r"lhs = (\S+),", wrong.detail).group(1)) == pytest.approx(1 - np.tanh(float(value)) ** 2)
    right = dv.check_claim("tanh'", "h' = 1 - h^2", [dv.Identity(sympy.diff(h, a), 1 - h**2)])
    assert right.holds


@pytest.mark.parametrize(
    "wrong",
    [
        # The factor h'(a_j) forgotten.
        lambda net, j, i: sympy.Add(*(net.w2[k][j] * (net.y[k] - net.t[k]) for k in range(3))) * net.x[i],
        # h'(a_j) written as 1 - z_j instead of 1 - z_j^2.
        lambda net, j, i: (
            (1 - net.z[j]) * sympy.Add(*(net.w2[k][j] * (net.y[k] - net.t[k]) for k in range(3))) * net.x[i]
        ),
        # The second-layer weights not transposed: w2_jk for w2_kj (j and k both run over 1..2 here).
        lambda net, j, i: (
            (1 - net.z[j] ** 2)
            * sympy.Add(*(net.w2[k][j % 2 + 1] * (net.y[k] - net.t[k]) for k in range(3)))
            * net.x[i]
        ),
    ],
)
def test_wrong_first_layer_formulas_are_refuted(net, wrong):
    identities = [
        dv.Identity(
            sympy.diff(net.E, net.w1[j - 1][i]), wrong(net, j, i), f"j={j}, i={i}", net.targets_sum_to_one, one_hot(net)
        )
        for j in (1, 2)
        for i in (0, 1, 2)
    ]
    step = dv.check_claim("wrong first layer", "...", identities)
    assert not step.holds and step.detail.startswith("counterexample")


def test_a_wrong_second_layer_formula_is_refuted(net):
    # z_{j+1} for z_j: an off-by-one in the hidden index.
    identities = [
        dv.Identity(
            sympy.diff(net.E, net.w2[k][j]),
            (net.y[k] - net.t[k]) * net.z[(j + 1) % 3],
            f"k={k + 1}, j={j}",
            net.targets_sum_to_one,
            one_hot(net),
        )
        for k in range(3)
        for j in range(3)
    ]
    assert not dv.check_claim("wrong second layer", "...", identities).holds


def test_what_cannot_be_proved_is_not_claimed():
    # sin^2 + cos^2 = 1 is true but outside the rational method: reported as not proved.
    a = sympy.Symbol("a", real=True)
    step = dv.check_claim("trig", "sin^2 + cos^2 = 1", [dv.Identity(sympy.sin(a) ** 2 + sympy.cos(a) ** 2, 1)])
    assert not step.holds and step.detail.startswith("not proved")


@pytest.mark.parametrize("broken", ["softmax", "sigmoid"])
def test_the_agreement_steps_catch_a_wrong_gradient(monkeypatch, broken):
    right = nw.gradient

    def wrong(params, X, T, sample_weight=None, *, activation="tanh", output="softmax"):
        g = right(params, X, T, sample_weight, activation=activation, output=output)
        return g._replace(b1=2 * g.b1) if output == broken else g

    monkeypatch.setattr(nw, "gradient", wrong)
    steps = {s.name: s for s in dv.verify_derivation(classes=(2,), n_features=1, n_hidden=1)}
    softmax_step = steps["agreement with network.gradient"]
    sigmoid_step = steps["agreement with network.gradient, sigmoid outputs"]
    assert (softmax_step.holds, sigmoid_step.holds) == (broken != "softmax", broken != "sigmoid")
    assert "above" in (sigmoid_step if broken == "sigmoid" else softmax_step).detail


@pytest.fixture(scope="module")
def sigmoid_net() -> dv.SymbolicNetwork:
    return dv.symbolic_network(1, 1, 3, output="sigmoid")


def any_targets(net):
    return lambda rng: net.sample(rng, one_hot=False)


def test_the_sigmoid_output_error_needs_no_constraint_and_the_softmax_one_does(sigmoid_net):
    k = 1
    step = {s.name: s for s in dv.verify_derivation(classes=(3,), n_features=1, n_hidden=1)}
    assert step["binary cross-entropy through the sigmoid"].holds
    assert not step["output error without sum_l t_l = 1"].holds  # the same claim, softmax: refuted
    # A counterexample with targets that do not sum to one, re-checked with NumPy.
    wrong = dv.check_claim(
        "sigmoid error with the softmax's collected terms",
        "dE/da_k = y_k sum_l t_l - t_k",
        [
            dv.Identity(
                sympy.diff(sigmoid_net.E_of_a2, sigmoid_net.a2[k]),
                sigmoid_net.y_of_a2[k] * sum(sigmoid_net.t) - sigmoid_net.t[k],
                "K=3: k=2",
                sample=any_targets(sigmoid_net),
            )
        ],
    )
    assert not wrong.holds and wrong.detail.startswith("counterexample")
    a = float(Fraction(re.search(r"a2_2=(-?\d+(?:/\d+)?)", wrong.detail).group(1)))
    t = float(Fraction(re.search(r"t_2=(-?\d+(?:/\d+)?)", wrong.detail).group(1)))
    lhs = float(re.search(r"lhs = (\S+),", wrong.detail).group(1))
    assert lhs == pytest.approx(1 / (1 + np.exp(-a)) - t, rel=1e-9)


def test_a_softmax_curvature_for_sigmoid_outputs_is_refuted(sigmoid_net):
    # -y_k y_l off the diagonal is the softmax's Lambda; the sigmoid's is zero there.
    y = sigmoid_net.y_of_a2
    step = dv.check_claim(
        "wrong curvature",
        "d2E/da_1 da_2 = -y_1 y_2",
        [dv.Identity(sympy.diff(sigmoid_net.E_of_a2, sigmoid_net.a2[0], sigmoid_net.a2[1]), -y[0] * y[1], "K=3: 1, 2")],
    )
    assert not step.holds and step.detail.startswith("counterexample")
    wrong_derivative = dv.check_claim(
        "wrong sigmoid derivative",
        "dy/da = y (1 + y)",
        [dv.Identity(sympy.diff(y[0], sigmoid_net.a2[0]), y[0] * (1 + y[0]))],
    )
    assert not wrong_derivative.holds


# --- the symbolic network is the network of twolayer.network ---------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 2), (2, 3, 4)])
def test_symbolic_network_equals_the_numerical_one(shape):
    D, M, K = shape
    net = dv.symbolic_network(D, M, K)
    rng = np.random.default_rng(0)
    params = nw.init_params(D, M, K, random_state=rng)
    x = rng.normal(size=D)
    t = np.eye(K)[1]
    values = {net.x[i]: x[i - 1] for i in range(1, D + 1)}
    for j in range(1, M + 1):
        values[net.w1[j - 1][0]] = params.b1[j - 1]  # the bias w_j0
        values.update({net.w1[j - 1][i]: params.W1[i - 1, j - 1] for i in range(1, D + 1)})
    for k in range(1, K + 1):
        values[net.w2[k - 1][0]] = params.b2[k - 1]
        values.update({net.w2[k - 1][j]: params.W2[j - 1, k - 1] for j in range(1, M + 1)})
    values.update(dict(zip(net.t, t)))
    y = [float(yk.xreplace(values)) for yk in net.y]
    np.testing.assert_allclose(y, nw.forward(params, x[None, :])[0], rtol=1e-13)
    assert float(net.E.xreplace(values)) == pytest.approx(nw.error(params, x[None, :], t[None, :]), rel=1e-13)
    assert net.targets_sum_to_one == {net.t[-1]: 1 - sum(net.t[:-1])}


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_symbolic_sigmoid_network_equals_the_numerical_one(output):
    D, M, K = 2, 2, 3
    net = dv.symbolic_network(D, M, K, output=output)
    assert net.output == output
    rng = np.random.default_rng(1)
    params = nw.init_params(D, M, K, random_state=rng)
    x = rng.normal(size=D)
    t = np.array([1.0, 0.0, 1.0])  # two labels on: a multilabel row
    values = {net.x[i]: x[i - 1] for i in range(1, D + 1)}
    for j in range(1, M + 1):
        values[net.w1[j - 1][0]] = params.b1[j - 1]
        values.update({net.w1[j - 1][i]: params.W1[i - 1, j - 1] for i in range(1, D + 1)})
    for k in range(1, K + 1):
        values[net.w2[k - 1][0]] = params.b2[k - 1]
        values.update({net.w2[k - 1][j]: params.W2[j - 1, k - 1] for j in range(1, M + 1)})
    values.update(dict(zip(net.t, t)))
    y = [float(yk.xreplace(values)) for yk in net.y]
    np.testing.assert_allclose(y, nw.forward(params, x[None, :], output=output)[0], rtol=1e-13)
    E = float(net.E.xreplace(values))
    assert E == pytest.approx(nw.error(params, x[None, :], t[None, :], output=output), rel=1e-13)


def test_samples_respect_the_targets():
    net = dv.symbolic_network(1, 1, 4)
    rng = np.random.default_rng(0)
    for _ in range(10):
        values = net.sample(rng, one_hot=True)
        assert sorted(values[t] for t in net.t) == [0, 0, 0, 1]
    general = net.sample(rng, one_hot=False)
    assert all(0 <= general[t] <= 1 for t in net.t)


# --- the rest ---------------------------------------------------------------------------------


def test_steps_are_frozen():
    step = dv.Step("n", "c", True, "d")
    assert step.expected and step.as_expected and step.latex == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.holds = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dv.verify_derivation(classes=(1,)), "classes"),
        (lambda: dv.verify_derivation(classes=()), "classes"),
        (lambda: dv.verify_derivation(classes=(2.5,)), "classes"),
        (lambda: dv.symbolic_network(0, 1, 2), "n_features"),
        (lambda: dv.symbolic_network(1, 1, -2), "n_classes"),
        (lambda: dv.symbolic_network(1, 1, 2, output="relu"), "output"),
        (lambda: dv.check_claim("empty", "nothing", []), "no identities"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_names_keep_their_import_path():
    # The network and the deciding machinery live in their own modules; derivation still offers them.
    for module in (identities, symbolic_network):
        for name in module.__all__:
            if name != "Sample":
                assert getattr(dv, name) is getattr(module, name)
                assert name in dv.__all__
    assert set(dv.__all__) <= set(dir(dv))
