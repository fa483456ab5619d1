"""Fuzzing the command line (issue 16): whatever the data file holds and whatever the options say,
``twolayer`` ends with exit 0, or with exit 2 and one line on standard error, never a traceback, and
every file that existed before is byte-identical unless it is the named output of a successful run.

Each example runs the real command in this process (``twolayer.cli.main``) in a folder of its own.
The default runs are small enough for every CI run; the ``slow`` variants try many more examples.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twolayer import cli
from twolayer.io.modelfile import read

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TRAIN = ["--epochs", "2", "--hidden", "2", "--quiet"]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@contextlib.contextmanager
def folder() -> Iterator[Path]:
    """A fresh working folder for one example (hypothesis runs many examples in one test)."""
    before = os.getcwd()
    with tempfile.TemporaryDirectory() as name:
        os.chdir(name)
        try:
            yield Path(name)
        finally:
            os.chdir(before)


def run(argv: Sequence[str]) -> tuple[int, str]:
    """Run ``twolayer`` in-process; any exception other than a clean exit propagates and fails the test."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(list(argv))
    return code, err.getvalue()


def check_outcome(
    code: int, err: str, before: dict[str, bytes], after: dict[str, bytes], outputs: Sequence[str]
) -> None:
    """The property: exit 0, or exit 2 with one line; old files unchanged but for a successful run's outputs."""
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("twolayer "), err
        assert "Traceback" not in err
    for name, content in before.items():
        if code == 0 and name in outputs:
            continue
        assert after.get(name) == content, f"{name} changed (exit {code}: {err.strip()})"
    if code == 2:
        assert set(after) == set(before), f"a refused run wrote {set(after) - set(before)}"


# --------------------------------------------------------------------------
# Data files
# --------------------------------------------------------------------------

_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["1e300", "-1e300", "3.5e38", "1e-320", "0", "-0", "007", "08", "+1", "1_000", "0x10"]),
)
_TEXT = st.one_of(
    st.sampled_from(["", " ", "NA", "nan", "NaN", "true", "False", "a", "b", '"q,uoted"', '""', "#", "é", "\t"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
)
_CELL = st.one_of(_NUMBERS, _NUMBERS, _TEXT)


@st.composite
def tables(draw: Callable[..., object]) -> str:
    """The text of a delimited file: a header or none, a few columns, cells of every kind."""
    n_columns = draw(st.integers(1, 5))
    n_rows = draw(st.integers(0, 25))
    sep = draw(st.sampled_from([",", ",", ";", "\t"]))
    lines = []
    if draw(st.booleans()):
        lines.append(sep.join(draw(st.lists(_TEXT, min_size=n_columns, max_size=n_columns))))  # type: ignore[arg-type]
    for _ in range(n_rows):
        width = n_columns if draw(st.integers(0, 9)) else draw(st.integers(0, n_columns + 2))
        lines.append(sep.join(draw(st.lists(_CELL, min_size=width, max_size=width))))  # type: ignore[arg-type]
    ending = draw(st.sampled_from(["\n", "\r\n", ""]))
    return ending.join(lines) + ending


@st.composite
def learnable_tables(draw: Callable[..., object]) -> str:
    """A well-formed numeric CSV with a few corrupted cells: the case a real export is likely to be."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))  # type: ignore[arg-type]
    n = draw(st.integers(4, 30))
    X = rng.normal(size=(n, 3)) * draw(st.sampled_from([1.0, 1e-200, 1e200, 1e300]))  # type: ignore[operator]
    y = rng.integers(0, 2, size=n)
    cells = [[repr(float(v)) for v in row] + [str(c)] for row, c in zip(X, y)]
    for _ in range(draw(st.integers(0, 3))):  # type: ignore[arg-type]
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, 3))
        cells[i][j] = draw(_CELL)  # type: ignore[index, assignment]
    return "\n".join(["a,b,c,label", *(",".join(row) for row in cells)]) + "\n"


def train_on(text: str) -> None:
    with folder() as here:
        (here / "data.csv").write_text(text, encoding="utf-8")
        (here / "old.st").write_bytes(b"an older file that must survive")
        before = snapshot(here)
        code, err = run(["train", "data.csv", *TRAIN, "--out", "model.st"])
        after = snapshot(here)
        check_outcome(code, err, before, after, ["model.st"])
        if code == 0:
            read(here / "model.st")  # what a successful run wrote is a model file that reads back


@FAST
@given(tables())
def test_train_on_any_table(text: str) -> None:
    train_on(text)


@FAST
@given(learnable_tables())
def test_train_on_a_nearly_good_table(text: str) -> None:
    train_on(text)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a small model trained on columns a, b, c (labels 0 and 1)."""
    here = tmp_path_factory.mktemp("model")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    rows = [f"{a:.17g},{b:.17g},{c:.17g},{int(a > 0)}" for a, b, c in X]
    (here / "data.csv").write_text("a,b,c,label\n" + "\n".join(rows) + "\n")
    assert cli.main(["train", str(here / "data.csv"), *TRAIN, "--out", str(here / "model.st")]) == 0
    return (here / "model.st").read_bytes()


def predict_on(model: bytes, text: str, command: str) -> None:
    with folder() as here:
        (here / "model.st").write_bytes(model)
        (here / "data.csv").write_text(text, encoding="utf-8")
        before = snapshot(here)
        argv = [command, "model.st", "data.csv"] + (["--out", "p.csv"] if command == "predict" else [])
        code, err = run(argv)
        check_outcome(code, err, before, snapshot(here), ["p.csv"])


@FAST
@given(text=tables(), command=st.sampled_from(["predict", "evaluate"]))
def test_predict_and_evaluate_any_table(model: bytes, text: str, command: str) -> None:
    predict_on(model, text, command)


# --------------------------------------------------------------------------
# Option values
# --------------------------------------------------------------------------

_VALUE = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "1", "-1", "1e6", "1e300", "1e-300", "0.5", "", " ", "x", "1e10", "10000000000"]),
)
_OPTIONS = {
    "--hidden": st.one_of(_VALUE, st.sampled_from(["1", "3", "1000000000"])),
    "--epochs": st.one_of(_VALUE, st.sampled_from(["1", "2", "3"])),
    "--batch-size": _VALUE,
    "--learning-rate": st.one_of(_VALUE, st.sampled_from(["1e6", "1e3", "0.01"])),
    "--alpha": st.one_of(_VALUE, st.sampled_from(["1e300", "1e30", "0"])),
    "--tol": _VALUE,
    "--test-size": st.one_of(_VALUE, st.sampled_from(["0.1", "0.5", "0.9", "0.99"])),
    "--seed": _VALUE,
    "--solver": st.sampled_from(["sgd", "adam", "lbfgs", "scg", "trust-ncg", "newton-cg", "gd", "x"]),
    "--activation": st.sampled_from(["tanh", "relu", "logistic", "identity", "x"]),
    "--dtype": st.sampled_from(["float32", "float64", "float16"]),
    "--n-iter-no-change": _VALUE,
    "--class-weight": st.sampled_from(["balanced", "none", "x"]),
    "--target": st.sampled_from(["a", "label", "nope", ""]),
}


@st.composite
def option_lists(draw: Callable[..., object]) -> list[str]:
    chosen = draw(st.lists(st.sampled_from(sorted(_OPTIONS)), max_size=4, unique=True))
    argv: list[str] = []
    for name in chosen:  # type: ignore[attr-defined]
        argv += [name, draw(_OPTIONS[name])]  # type: ignore[list-item]
    return argv


def train_with(options: list[str]) -> None:
    with folder() as here:
        rng = np.random.default_rng(2)
        X = rng.normal(size=(24, 3))
        rows = [f"{a:.17g},{b:.17g},{c:.17g},{int(a > 0)}" for a, b, c in X]
        (here / "data.csv").write_text("a,b,c,label\n" + "\n".join(rows) + "\n")
        before = snapshot(here)
        # Fewer epochs than asked for would change what is fuzzed; a cap keeps each example short.
        argv = ["train", "data.csv", "--quiet", "--out", "model.st", *options]
        if "--epochs" not in options:
            argv += ["--epochs", "2"]
        if "--hidden" not in options:
            argv += ["--hidden", "2"]
        code, err = run(argv)
        check_outcome(code, err, before, snapshot(here), ["model.st"])


def _affordable(options: list[str]) -> bool:
    """Leave out runs that are valid but long: many epochs of a wide network are not what is fuzzed here."""
    values = dict(zip(options[::2], options[1::2]))
    try:
        epochs = int(values.get("--epochs", "2"))
        hidden = int(values.get("--hidden", "2"))
    except ValueError:
        return True
    return not (1 <= epochs and 1 <= hidden and epochs * min(hidden, 10**6) > 2000)


@FAST
@given(option_lists())
def test_train_with_any_options(options: list[str]) -> None:
    if _affordable(options):
        train_with(options)


@pytest.mark.slow
@LONG
@given(tables())
def test_train_on_any_table_long(text: str) -> None:
    train_on(text)


@pytest.mark.slow
@LONG
@given(option_lists())
def test_train_with_any_options_long(options: list[str]) -> None:
    if _affordable(options):
        train_with(options)
