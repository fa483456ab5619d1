"""The command line's memory guards: one line, exit status 2, the option to change, nothing written.

Every run goes through ``twolayer.cli.main`` in-process with
:func:`twolayer.resources.available_memory` patched to a known amount, so the
sentences do not depend on the machine and nothing large is ever allocated.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from twolayer import cli, resources
from twolayer.bayes.memory import fit_estimate as bayes_fit_estimate
from twolayer.classifier import SOLVERS, TwoLayerClassifier
from twolayer.classifier.memory import fit_estimate
from twolayer.cli.parser import MEMORY_OPTIONS
from twolayer.errors import DataError

GiB = 1 << 30
DIGITS_TRAIN_ROWS = 1437  # 80% of the 1797 digits


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The available memory the guards see: 16 GiB unless a test sets ``memory[0]``."""
    amount = [16 * GiB]
    monkeypatch.setattr(resources, "available_memory", lambda: amount[0])
    return amount


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def error_line(code: int, err: str) -> str:
    """The one error line of a refused run (after the run's own notes, if not quiet)."""
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n"), err
    return errors[0]


def test_a_billion_hidden_units_are_refused_at_once_with_the_option_to_lower(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int]
) -> None:
    argv = ["train", "--hidden", "1000000000", "--quiet", "--out", tmp_path / "m.st", "--plot", tmp_path / "m.png"]
    tracemalloc.start()
    try:
        code, out, err = run(capsys, *argv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20  # refused before anything of the network's size was allocated
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("twolayer train: error: training needs about 3.6 TiB (weights, gradient, Adam state, ")
    assert err.endswith("but 16.0 GiB is available; lower --hidden or --batch-size\n"), err
    assert "n_hidden" not in err and "batch_size" not in err
    assert list(tmp_path.iterdir()) == []


def test_the_refusal_is_the_one_error_line_when_not_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int]
) -> None:
    code, _, err = run(capsys, "train", "--hidden", "1000000000", "--out", tmp_path / "m.st")
    assert "lower --hidden or --batch-size" in error_line(code, err)
    assert list(tmp_path.iterdir()) == []


def test_huge_monte_carlo_samples_are_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("twolayer.bayes.estimator.map_estimate", lambda *a, **k: pytest.fail("training started"))
    code, _, err = run(capsys, "train", "--bayes", "--mc-samples", "10000000000", "--out", tmp_path / "m.st")
    line = error_line(code, err)
    assert "prediction needs about" in line and line.endswith("lower --mc-samples, or use --predictive probit")
    assert "n_samples" not in line and "method" not in line
    assert list(tmp_path.iterdir()) == []


def test_a_bayesian_network_too_large_names_hidden_and_structure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int]
) -> None:
    memory[0] = GiB
    code, _, err = run(capsys, "train", "--bayes", "--hidden", "3000", "--quiet", "--out", tmp_path / "m.st")
    line = error_line(code, err)
    assert line.startswith("twolayer train: error: the Bayesian network's fit needs about ")
    assert line.endswith("but 1.0 GiB is available; lower --hidden, or use --structure diagonal")
    assert list(tmp_path.iterdir()) == []


def test_the_second_order_solvers_point_at_lbfgs(capsys: pytest.CaptureFixture[str], memory: list[int]) -> None:
    memory[0] = GiB
    code, _, err = run(capsys, "train", "--solver", "trust-ncg", "--hidden", "100000", "--quiet")
    assert error_line(code, err).endswith("lower --hidden, or use --solver lbfgs")


def test_past_half_the_memory_the_estimate_is_a_note_and_the_run_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int]
) -> None:
    needed = fit_estimate(
        n_samples=DIGITS_TRAIN_ROWS, n_features=64, n_hidden=8, n_classes=10, dtype=np.float32, solver="adam"
    )[0]
    memory[0] = int(1.5 * needed)
    code, _, err = run(capsys, "train", "--hidden", "8", "--epochs", "1", "--out", tmp_path / "m.st")
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("twolayer train: note: training needs about")]
    assert len(notes) == 1, err
    assert "more than half of the" in notes[0] and notes[0].endswith("(lower --hidden or --batch-size to need less)")
    assert (tmp_path / "m.st").exists()
    code, _, err = run(capsys, "train", "--hidden", "8", "--epochs", "1")  # again, in the same process
    assert sum(line.startswith("twolayer train: note: training needs") for line in err.splitlines()) == 1, err
    code, _, err = run(capsys, "train", "--hidden", "8", "--epochs", "1", "--quiet")
    assert code == 0 and err == "", err


def test_an_unforeseen_memory_error_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise MemoryError("Unable to allocate 3.6 TiB for an array with shape (64, 1000000000) and data type float64")

    monkeypatch.setattr(TwoLayerClassifier, "fit", fail)
    code, _, err = run(capsys, "train", "--hidden", "4", "--epochs", "1", "--quiet")
    assert error_line(code, err) == (
        "twolayer train: error: out of memory (Unable to allocate 3.6 TiB for an array with shape "
        "(64, 1000000000) and data type float64)"
    )


def test_curvature_refused_writes_no_plot_and_names_no_python_parameter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int]
) -> None:
    model = tmp_path / "m.st"
    code, _, err = run(capsys, "train", "--hidden", "4", "--epochs", "2", "--quiet", "--out", model)
    assert code == 0, err
    memory[0] = 1 << 20
    code, _, err = run(capsys, "curvature", model, "digits", "--plot", tmp_path / "c.png")
    line = error_line(code, err)
    assert line.startswith("twolayer curvature: error: the spectra of a 64-4-10 network's curvature needs about ")
    # Its two dense matrices are most of it: nothing an option of curvature changes.
    assert line.endswith("but 1.0 MiB is available") and "rows of X" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.st"]


def test_predictions_of_a_bayesian_model_name_what_the_user_can_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int]
) -> None:
    model = tmp_path / "b.st"
    code, _, err = run(
        capsys, "train", "moons", "--bayes", "--hidden", "3", "--max-cycles", "1", "--mc-samples", "100", "--quiet",
        "--out", model,
    )  # fmt: skip
    assert code == 0, err
    memory[0] = 1 << 20
    code, _, err = run(capsys, "predict", model, "moons", "--out", tmp_path / "p.csv")
    line = error_line(code, err)
    assert line.startswith("twolayer predict: error: prediction needs about ")
    assert line.endswith(
        "lower the model's --mc-samples or the rows of DATA, or use a model trained with --predictive probit"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.st"]


def test_every_parameter_a_training_estimate_names_has_its_option() -> None:
    named: set[str] = set()
    for solver in SOLVERS:
        _, _, lower, switch = fit_estimate(
            n_samples=10, n_features=2, n_hidden=3, n_classes=2, dtype=np.float64, solver=solver
        )
        named |= set(lower) | set(switch)
    named |= {"n_hidden", "structure", "n_samples", "method"}  # the Bayesian network's
    assert (
        bayes_fit_estimate(
            n_samples=10, n_features=2, n_hidden=3, n_classes=2, structure="full", hessian="exact", alpha_search="grid"
        )[0]
        > 0
    )
    assert named <= set(MEMORY_OPTIONS["train"]), named - set(MEMORY_OPTIONS["train"])
    assert all(option.startswith("--") or "DATA" in option for option in MEMORY_OPTIONS["train"].values())


def test_curvature_names_the_rows_where_they_are_most_of_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int]
) -> None:
    model = tmp_path / "m.st"  # W = 5260 parameters: Lanczos alone, over the products of every row
    code, _, err = run(capsys, "train", "--hidden", "70", "--epochs", "1", "--quiet", "--out", model)
    assert code == 0, err
    memory[0] = 1 << 20
    code, _, err = run(capsys, "curvature", model, "digits", "--k", "2")
    assert error_line(code, err).endswith("; lower the rows of DATA (--rows train or test)")


def test_a_note_before_a_failure_leaves_the_error_alone_on_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "m.st"
    code, _, err = run(capsys, "train", "--hidden", "4", "--epochs", "1", "--quiet", "--out", model)
    assert code == 0, err

    def warn_then_fail(*args: object, **kwargs: object) -> None:
        resources.check_memory(0.75 * memory[0], "prediction", "the number of rows of X")  # past half: a note
        raise DataError("the data ran out")

    monkeypatch.setattr(TwoLayerClassifier, "predict_proba", warn_then_fail)
    code, _, err = run(capsys, "predict", model, "digits")
    assert code == 2 and err == "twolayer predict: error: the data ran out\n", err


def test_a_note_of_a_successful_run_off_a_terminal_comes_at_its_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], memory: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "m.st"
    code, _, err = run(capsys, "train", "--hidden", "4", "--epochs", "1", "--quiet", "--out", model)
    assert code == 0, err
    real = TwoLayerClassifier.predict_proba

    def warn_then_predict(self: TwoLayerClassifier, X: np.ndarray) -> np.ndarray:
        resources.check_memory(0.75 * memory[0], "prediction", "the number of rows of X")
        return real(self, X)

    monkeypatch.setattr(TwoLayerClassifier, "predict_proba", warn_then_predict)
    code, _, err = run(capsys, "predict", model, "digits", "--out", tmp_path / "p.csv")
    assert code == 0, err
    assert err.splitlines()[-1] == (
        "twolayer predict: note: prediction needs about 12.0 GiB, more than half of the 16.0 GiB available "
        "(lower the rows of DATA to need less)"
    ), err
