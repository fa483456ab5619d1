"""Tests of twolayer.teaching.gradcheck.

The numerical gradient is compared with HIPS autograd applied to the oracle
error of ``tests/oracles.py`` (PRML eqs. 5.9 and 5.24 alone), so the differencing is checked
against something that shares none of its code. The check itself must pass on
the correct gradient and must fail, naming the entry and both numbers, on
gradients that are wrong in the ways backpropagation goes wrong.
"""

from __future__ import annotations

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from oracles import ACTIVATIONS, error, logits, rel_err
from test_cli import assert_one_line_error, run
from twolayer import network as nw
from twolayer.network import Params
from twolayer.teaching import gradcheck as gc
from twolayer.teaching import gradcheck_report

SHAPES = [(1, 1, 2, 1), (1, 2, 3, 4), (4, 3, 2, 7), (3, 5, 6, 20)]  # (D, M, K, N)


def problem(D, M, K, N, seed=0):
    rng = np.random.default_rng(seed)
    params, X, T = gc.random_problem(D, M, K, N, random_state=rng)
    s = rng.uniform(0.5, 2.0, size=N)
    return params, X, T, s


def correct(params, X, T, s, activation):
    return nw.gradient(params, X, T, s, activation=activation)


# --- the numerical gradient itself, against autograd ------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", SHAPES)
def test_numerical_gradient_matches_autograd(shape, activation):
    D, M, K, _ = shape
    params, X, T, s = problem(*shape, seed=1)
    numerical = gc.numerical_gradient(params, X, T, s, activation=activation)
    expected = autograd.grad(error)(np.concatenate([p.ravel() for p in params]), X, T, s, D, M, K, activation)
    got = np.concatenate([g.ravel() for g in numerical])
    assert all(g.dtype == np.float64 and g.shape == p.shape for g, p in zip(numerical, params))
    # Central differences in float64 with eps = 1e-6 agree to about 1e-9 (PRML eq. 5.69).
    assert rel_err(got, expected) < 1e-7, (got, expected)


# --- the check passes on the correct gradient -------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [*SHAPES, (8, 12, 4, 300)])
def test_correct_gradient_passes(shape, activation):
    report = gc.check_random_network(*shape, random_state=2, activation=activation)
    assert report.passed, str(report)
    assert [b.name for b in report.blocks] == ["W1", "b1", "W2", "b2"]
    D, M, K, _ = shape
    assert [b.shape for b in report.blocks] == [(D, M), (M,), (M, K), (K,)]
    assert all(b.n_checked == b.n_total for b in report.blocks)  # every entry by default
    assert len(report.directions) == 3
    assert report.max_rel_error <= report.rtol
    assert (report.n_features, report.n_hidden, report.n_classes, report.n_samples) == shape
    assert report.mismatches == ()


def test_correct_gradient_passes_with_weights_and_soft_targets():
    params, X, _, s = problem(3, 4, 3, 9, seed=3)
    T = np.random.default_rng(3).dirichlet(np.ones(3), size=9)  # rows sum to one
    report = gc.check_gradient(params, X, T, s, random_state=0, n_directions=5)
    assert report.passed, str(report)
    assert len(report.directions) == 5


def test_a_tiny_network_agrees_to_high_accuracy():
    # D = M = 1, K = 2, N = 1: every derivative is well above the floor, so
    # the plain relative error must be small, not only within tolerance.
    report = gc.check_random_network(1, 1, 2, 1, random_state=0)
    assert report.passed
    assert report.max_rel_error < 1e-8


def test_float32_inputs_are_checked_in_float64():
    params, X, T, _ = problem(2, 3, 3, 6, seed=4)
    p32 = Params(*(p.astype(np.float32) for p in params))
    report = gc.check_gradient(p32, X.astype(np.float32), T.astype(np.float32), random_state=0)
    # The float32 values, widened exactly, are the float64 problem checked.
    widened = Params(*(p.astype(np.float64) for p in p32))
    expected = gc.check_gradient(widened, X.astype(np.float32).astype(np.float64), T, random_state=0)
    assert report.passed, str(report)
    assert report == expected
    assert report.max_rel_error < 1e-8  # well inside tolerance: no float32 rounding anywhere


def test_exact_zeros_have_zero_relative_error_even_without_a_floor():
    # A feature that is zero everywhere: its weights change nothing, so both
    # the analytic and the numerical derivatives are exactly 0.
    params, X, T, s = problem(3, 2, 2, 5, seed=5)
    X[:, 1] = 0.0
    report = gc.check_gradient(params, X, T, s, atol=1.0, n_directions=0)
    zeros = [e for e in report.blocks[0].entries if e.index[0] == 1]
    assert len(zeros) == 2
    for e in zeros:
        assert e.analytic == 0.0 and e.numerical == 0.0
    report0 = gc.check_gradient(params, X, T, s, atol=0.0, n_directions=0)
    assert report0.floor == 0.0
    for e in report0.blocks[0].entries:
        if e.index[0] == 1:
            assert e.rel_error == 0.0 and e.passed


# --- the check fails on wrong gradients, and says where ----------------------------------------


def test_a_wrong_entry_is_named_with_both_numbers():
    params, X, T, s = problem(2, 3, 4, 5, seed=6)

    def off_by_a_bit(p, X, T, s, *, activation):
        g = nw.gradient(p, X, T, s, activation=activation)
        W2 = g.W2.copy()
        W2[0, 1] += 0.3
        return g._replace(W2=W2)

    report = gc.check_gradient(params, X, T, s, gradient_fn=off_by_a_bit, random_state=0)
    assert not report.passed
    assert [b.passed for b in report.blocks] == [True, True, False, True]
    (m,) = report.mismatches
    true_value = nw.gradient(params, X, T, s).W2[0, 1]
    assert (m.block, m.index, m.label) == ("W2", (0, 1), "W2[0, 1]")
    assert m.analytic == pytest.approx(true_value + 0.3, rel=1e-15)
    assert m.numerical == pytest.approx(true_value, rel=1e-7)
    # The documented definition of the relative error.
    assert m.rel_error == pytest.approx(
        abs(m.analytic - m.numerical) / max(abs(m.analytic) + abs(m.numerical), report.floor)
    )
    assert report.floor == pytest.approx(report.atol / report.rtol)
    assert report.blocks[2].worst == m
    assert report.max_rel_error == m.rel_error
    text = report.table()
    assert str(report) == text
    assert "FAILED" in text and "W2[0, 1]" in text
    assert f"{m.analytic:.12g}" in text and f"{m.numerical:.12g}" in text


def test_a_classic_backprop_bug_fails_in_the_first_layer_only():
    # tanh'(a) written as 1 - z instead of 1 - z^2: the second layer is still right.
    params, X, T, s = problem(3, 4, 3, 8, seed=7)

    def wrong_derivative(p, X, T, s, *, activation):
        z, _ = nw.hidden_and_output(p, X)
        delta2 = s[:, None] * (nw.forward(p, X) - T)
        delta1 = (1 - z) * (delta2 @ p.W2.T)
        return Params(X.T @ delta1, delta1.sum(0), z.T @ delta2, delta2.sum(0))

    report = gc.check_gradient(params, X, T, s, gradient_fn=wrong_derivative, random_state=0)
    assert not report.passed
    assert [b.passed for b in report.blocks] == [False, False, True, True]
    assert all(not d.passed for d in report.directions)
    text = report.table()
    for block in ("W1", "b1", "W2", "b2"):
        assert any(line.startswith(block) for line in text.splitlines())
    assert text.count("FAIL (") == 3  # W1, b1 and the directions


def test_the_directional_check_sees_entries_the_sample_missed():
    params, X, T, s = problem(6, 8, 3, 10, seed=8)

    def scaled_first_layer(p, X, T, s, *, activation):
        g = nw.gradient(p, X, T, s, activation=activation)
        return g._replace(W1=1.5 * g.W1)

    report = gc.check_gradient(
        params, X, T, s, gradient_fn=scaled_first_layer, max_params=4, n_directions=3, random_state=1
    )
    assert sum(b.n_checked for b in report.blocks) == 4
    assert all(not d.passed for d in report.directions)
    assert not report.passed


def test_a_nan_gradient_fails():
    params, X, T, s = problem(2, 2, 2, 3, seed=9)

    def nan_bias(p, X, T, s, *, activation):
        g = nw.gradient(p, X, T, s, activation=activation)
        return g._replace(b1=np.full_like(g.b1, np.nan))

    report = gc.check_gradient(params, X, T, s, gradient_fn=nan_bias, random_state=0)
    assert not report.passed
    assert np.isnan(report.max_rel_error)
    assert len(report.blocks[1].mismatches) == 2
    assert "nan" in report.table()


def test_atol_is_honoured():
    params, X, T, s = problem(2, 3, 2, 4, seed=10)

    def off(p, X, T, s, *, activation):
        g = nw.gradient(p, X, T, s, activation=activation)
        return g._replace(b2=g.b2 + 1e-3)

    assert not gc.check_gradient(params, X, T, s, gradient_fn=off, n_directions=0).passed
    # |a - n| = 1e-3 <= atol: agreement by the absolute criterion.
    loose = gc.check_gradient(params, X, T, s, gradient_fn=off, atol=2e-3, n_directions=0)
    assert loose.passed and loose.atol == 2e-3


# --- sampling and reproducibility ------------------------------------------------------------


def test_sampling_checks_max_params_entries_with_every_block_covered():
    params, X, T, s = problem(6, 8, 3, 10, seed=11)
    report = gc.check_gradient(params, X, T, s, max_params=10, random_state=5)
    assert report.passed
    assert sum(b.n_checked for b in report.blocks) == 10
    assert all(b.n_checked >= 1 for b in report.blocks)
    for b in report.blocks:
        indices = [e.index for e in b.entries]
        assert indices == sorted(set(indices))  # distinct, in index order
    again = gc.check_gradient(params, X, T, s, max_params=10, random_state=5)
    assert again == report

    def checked(r):
        return [(e.block, e.index) for b in r.blocks for e in b.entries]

    others = [checked(gc.check_gradient(params, X, T, s, max_params=10, random_state=seed)) for seed in range(6, 10)]
    assert any(c != checked(report) for c in others)
    # More than there are: everything.
    every = gc.check_gradient(params, X, T, s, max_params=10_000, n_directions=0)
    assert all(b.n_checked == b.n_total for b in every.blocks)


def test_check_random_network_is_reproducible():
    a = gc.check_random_network(3, 4, 2, 6, random_state=3, max_params=6)
    b = gc.check_random_network(3, 4, 2, 6, random_state=3, max_params=6)
    assert a == b


def test_random_problem():
    params, X, T = gc.random_problem(3, 4, 5, 7, random_state=0)
    assert [p.shape for p in params] == [(3, 4), (4,), (4, 5), (5,)]
    assert X.shape == (7, 3) and T.shape == (7, 5)
    assert all(a.dtype == np.float64 for a in (*params, X, T))
    assert np.array_equal(T.sum(axis=1), np.ones(7)) and set(np.unique(T)) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="n_samples"):
        gc.random_problem(3, 4, 5, 0)


# --- the rest: purity, table, errors ----------------------------------------------------------


def test_inputs_are_not_modified():
    params, X, T, s = problem(2, 3, 2, 4, seed=12)
    copies = [a.copy() for a in (*params, X, T, s)]
    gc.check_gradient(params, X, T, s, random_state=0)
    gc.numerical_gradient(params, X, T, s)
    for before, after in zip(copies, (*params, X, T, s)):
        assert np.array_equal(before, after)


def test_table_has_a_row_per_block_and_the_settings():
    report = gc.check_random_network(2, 2, 3, 3, random_state=0, eps=1e-5)
    lines = report.table().splitlines()
    assert lines[0].startswith("Gradient check: D=2 M=2 K=3 N=3, activation tanh")
    assert "eps = 1e-05" in lines[1]
    for block, shape in zip(("W1", "b1", "W2", "b2"), ("(2, 2)", "(2,)", "(2, 3)", "(3,)")):
        (row,) = [line for line in lines if line.split()[:1] == [block]]
        assert shape in row and row.rstrip().endswith("ok")
    assert lines[-1].startswith("PASSED")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p, X, T, s: (p._replace(b1=p.b1[:-1]), X, T, s), "inconsistent parameter shapes"),
        (lambda p, X, T, s: (p._replace(W2=p.W2[None]), X, T, s), "W2 \\(M, K\\)"),
        (lambda p, X, T, s: (p[:3], X, T, s), "four arrays"),
        (lambda p, X, T, s: (p, X[:, :1], T, s), "X must have shape"),
        (lambda p, X, T, s: (p, X, T[:, :1], s), "T must have shape"),
        (lambda p, X, T, s: (p, X, T, s[:1]), "sample_weight must have shape"),
        (lambda p, X, T, s: (p, np.full_like(X, np.nan), T, s), "X contains NaN"),
        (lambda p, X, T, s: (p, "abc", T, s), "X must be a numeric array"),
    ],
)
def test_bad_input_is_named(change, message):
    args = change(*problem(2, 3, 2, 4, seed=13))
    with pytest.raises(ValueError, match=message):
        gc.check_gradient(*args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eps": 0.0}, "eps"),
        ({"eps": float("nan")}, "eps"),
        ({"rtol": 0.0}, "rtol"),
        ({"atol": -1.0}, "atol"),
        ({"max_params": 3}, "max_params"),
        ({"max_params": 4.5}, "max_params"),
        ({"n_directions": -1}, "n_directions"),
        ({"activation": "softsign"}, "activation"),
        ({"gradient_fn": lambda p, X, T, s, activation: p._replace(W1=p.W1.T)}, "gradient's W1"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    params, X, T, s = problem(2, 3, 2, 4, seed=14)
    with pytest.raises(ValueError, match=message):
        gc.check_gradient(params, X, T, s, **kwargs)


def test_the_report_types_keep_their_import_path():
    # Defined beside the report's table, importable where they always were.
    for name in ("EntryCheck", "BlockCheck", "DirectionalCheck", "GradCheckReport"):
        assert getattr(gc, name) is getattr(gradcheck_report, name)
        assert name in gc.__all__
    assert set(gc.__all__) <= set(dir(gc))


def test_one_class_is_refused_not_passed_on_zero_gradients():
    # A softmax over one output is the constant 1: the error and every derivative are zero,
    # so a check would compare zeros with zeros and pass whatever the gradient code did.
    params, X, T, s = problem(2, 3, 2, 4, seed=15)
    one_class = (params._replace(W2=params.W2[:, :1], b2=params.b2[:1]), X, T[:, :1], s)
    with pytest.raises(ValueError, match="K = 1 output"):
        gc.check_gradient(*one_class)
    with pytest.raises(ValueError, match="n_classes must be an integer of at least 2"):
        gc.check_random_network(2, 3, 1, 4, random_state=0)


def test_the_command_refuses_one_class_in_one_line(capsys):
    code, out, err = run(capsys, "gradcheck", "--classes", "1")
    assert_one_line_error(code, err, "--classes 1", "at least 2", "nothing to check")
    assert out == ""


# --- sigmoid outputs (multilabel) --------------------------------------------------------------


def sigmoid_error(theta, X, T, s, D, M, K, activation="tanh"):
    """The binary cross-entropy summed over outputs and patterns, written again in autograd's NumPy."""
    a = logits(theta, X, D, M, K, activation)
    per_pattern = -anp.sum(T * -anp.logaddexp(0.0, -a) + (1 - T) * -anp.logaddexp(0.0, a), axis=1)
    return anp.sum(s * per_pattern)


def test_random_multilabel_problem_has_indicator_rows_of_any_count():
    _, _, T = gc.random_problem(3, 4, 5, 40, random_state=0, output="sigmoid")
    assert T.shape == (40, 5) and set(np.unique(T)) == {0.0, 1.0}
    assert len(set(T.sum(axis=1))) > 2  # not 1-of-K: rows with 0, 1, 2, ... labels
    _, _, T1 = gc.random_problem(3, 4, 1, 10, random_state=0, output="sigmoid")  # one label is fine
    assert T1.shape == (10, 1)
    with pytest.raises(ValueError, match="n_classes must be a positive integer"):
        gc.random_problem(3, 4, 0, 10, output="sigmoid")
    with pytest.raises(ValueError, match="output must be one of"):
        gc.random_problem(3, 4, 2, 10, output="relu")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_multilabel_numerical_gradient_matches_autograd(activation):
    rng = np.random.default_rng(7)
    params, X, T = gc.random_problem(3, 4, 3, 6, random_state=rng, output="sigmoid")
    s = rng.uniform(0.5, 2.0, size=6)
    theta = nw.flatten(params)
    g_ag = autograd.grad(lambda th: sigmoid_error(th, X, T, s, 3, 4, 3, activation))(theta)
    g = gc.numerical_gradient(params, X, T, s, activation=activation, output="sigmoid")
    assert rel_err(nw.flatten(g), g_ag) < 1e-7


@pytest.mark.parametrize("K", [1, 3])
def test_multilabel_check_passes_on_the_sigmoid_gradient_and_fails_on_the_softmax_one(K):
    report = gc.check_random_network(3, 4, K, 8, random_state=1, output="sigmoid")
    assert report.passed and report.output == "sigmoid" and report.n_classes == K
    assert "sigmoid outputs (binary cross-entropy)" in report.table()

    def softmax_gradient(params, X, T, s, *, activation, output="softmax"):
        return nw.gradient(params, X, T, s, activation=activation)  # ignores the output it is asked for

    wrong = gc.check_random_network(3, 4, 3, 8, random_state=1, output="sigmoid", gradient_fn=softmax_gradient)
    assert not wrong.passed and {m.block for m in wrong.mismatches} >= {"W2", "b2"}


def test_multilabel_command_passes_and_catches_a_wrong_sigmoid_gradient(capsys, monkeypatch):
    args = ("gradcheck", "--multilabel", "--features", "3", "--hidden", "4", "--classes", "1", "--samples", "5")
    code, out, _ = run(capsys, *args)
    assert code == 0 and "PASSED" in out and "K=1" in out and "sigmoid outputs" in out
    correct_gradient = nw.gradient

    def wrong(*a, output="softmax", **kw):
        g = correct_gradient(*a, output=output, **kw)
        return g._replace(b2=g.b2 * 1.001) if output == "sigmoid" else g

    monkeypatch.setattr(nw, "gradient", wrong)
    code, out, _ = run(capsys, *args)
    assert code == 1 and "FAILED" in out and "b2[" in out
    code, out, _ = run(capsys, "gradcheck", "--features", "3", "--hidden", "4", "--samples", "5")
    assert code == 0  # the softmax check is untouched by the sigmoid bug
