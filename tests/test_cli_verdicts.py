"""Honest verdicts of ``twolayer train``: no "converged" for a run that learned nothing, errors in CLI terms,
and model files that hold no wall-clock time unless asked to (``--provenance``)."""

from __future__ import annotations

import datetime
import re
import socket
from pathlib import Path

import numpy as np
import pytest

import twolayer
from test_cli import assert_one_line_error, run
from twolayer.io.modelfile import read
from twolayer.training.solvers import SOLVERS

# Python parameter names that the command line must translate into its options.
PYTHON_NAMES = ("learning_rate_init", "alpha=", "n_hidden", "max_iter")


def assert_cli_terms(text: str) -> None:
    for name in PYTHON_NAMES:
        assert name not in text, text


def warning_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def training_row(out: str) -> str:
    match = re.search(r"│ training\s+│ (.*?)\s+│", out)
    assert match, out
    return match.group(1)


# --------------------------------------------------------------------------
# Diverged and useless runs
# --------------------------------------------------------------------------


def test_a_huge_learning_rate_is_not_called_converged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.st"
    code, out, err = run(capsys, "train", "digits", "--learning-rate", "1e6", "--epochs", "20", "--out", model)
    assert code == 0, err
    assert "converged" not in out and "converged" not in err
    assert "diverged" in training_row(out)
    (warning,) = warning_lines(err)
    assert "--learning-rate" in warning and "smaller" in warning
    assert_cli_terms(err)
    assert f"wrote model {model} (diverged: see the warning above)" in out
    info = read(model).info
    assert info["stopped"] == "diverged" and "--learning-rate" in info["warning"]


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_huge_weight_decay_is_blamed_on_alpha(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], solver: str
) -> None:
    # The penalty overflows: an error (nothing written) or, where a solver stays finite, a
    # warning beside the model; either way about --alpha, in the command line's words.
    model = tmp_path / "m.st"
    code, out, err = run(
        capsys, "train", "iris", "--alpha", "1e300", "--solver", solver, "--epochs", "5", "--out", model
    )
    if code == 2:
        *progress, error = err.splitlines()  # the run's intro and progress lines, then one line
        assert_one_line_error(code, error + "\n", "--alpha 1e+300", "overflow", "try a smaller --alpha")
        assert "Nothing was written" in error and not model.exists()
        assert not any("error" in line for line in progress)
    else:
        assert code == 0, err
        (warning,) = warning_lines(err)
        assert "--alpha 1e+300" in warning and "try a smaller --alpha" in warning
        assert "converged" not in out
    assert "--learning-rate" not in err
    assert_cli_terms(err)


def test_a_weight_decay_that_holds_the_weights_at_zero_is_at_chance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Finite, but the decay outweighs the data: the network predicts the class frequencies.
    code, out, err = run(capsys, "train", "iris", "--alpha", "1e5", "--solver", "lbfgs", "--epochs", "50")
    assert code == 0, err
    (warning,) = warning_lines(err)
    assert "no better than always predicting the most frequent class" in warning
    assert "--alpha" in warning
    assert "converged" not in training_row(out) and "no better than chance" in training_row(out)


def test_a_run_that_learns_gets_no_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "train", "iris", "--epochs", "60", "--out", tmp_path / "m.st")
    assert code == 0, err
    assert warning_lines(err) == [] and "see the warning" not in out
    assert "warning" not in read(tmp_path / "m.st").info


def test_quiet_keeps_the_verdict_in_the_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.st"
    code, out, err = run(
        capsys, "train", "digits", "--learning-rate", "1e6", "--epochs", "5", "--out", model, "--quiet"
    )
    assert code == 0 and out == "" and err == ""
    assert read(model).info["stopped"] == "diverged"


def test_a_non_finite_divergence_names_the_cli_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["iris", "--solver", "sgd", "--learning-rate", "1e30", "--epochs", "5", "--quiet"]
    code, _, err = run(capsys, "train", *argv, "--out", tmp_path / "m")
    assert_one_line_error(code, err, "diverged", "--learning-rate 1e+30", "Nothing was written")
    assert_cli_terms(err)


# --------------------------------------------------------------------------
# The same bytes for the same run; provenance on request
# --------------------------------------------------------------------------

SMALL_RUN = ["iris", "--epochs", "3", "--hidden", "4", "--quiet"]


def test_identical_runs_write_identical_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.st", "b.st"):
        code, _, err = run(capsys, "train", *SMALL_RUN, "--out", tmp_path / name)
        assert code == 0, err
    assert (tmp_path / "a.st").read_bytes() == (tmp_path / "b.st").read_bytes()
    info = read(tmp_path / "a.st").info
    assert "seconds" not in info and "provenance" not in info


def test_provenance_records_time_host_version_and_seconds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    code, _, err = run(capsys, "train", *SMALL_RUN, "--out", tmp_path / "m.st", "--provenance")
    assert code == 0, err
    after = datetime.datetime.now(datetime.timezone.utc)
    provenance = read(tmp_path / "m.st").info["provenance"]
    assert set(provenance) == {"time", "host", "twolayer", "seconds"}
    assert provenance["time"].endswith("Z")
    when = datetime.datetime.fromisoformat(provenance["time"])
    assert when.utcoffset() == datetime.timedelta(0) and before <= when <= after
    assert provenance["host"] == socket.gethostname()
    assert provenance["twolayer"] == twolayer.__version__
    assert isinstance(provenance["seconds"], float) and np.isfinite(provenance["seconds"])
    assert provenance["seconds"] >= 0


def test_a_batch_larger_than_the_data_is_noted_in_cli_terms(capsys: pytest.CaptureFixture[str]) -> None:
    # The estimator's warning names batch_size; the command line says it with its option.
    code, _, err = run(capsys, "train", "iris", "--batch-size", "500", "--epochs", "2", "--hidden", "4")
    assert code == 0, err
    assert "note: --batch-size 500 is larger than the 120 training rows; using 120" in err
    assert "batch_size" not in err


def test_a_seed_beyond_32_bits_is_refused_by_its_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "iris", "--seed", "10000000000")
    assert_one_line_error(code, err, "argument --seed", "4294967295")
    assert "random_state" not in err
