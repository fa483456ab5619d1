"""``predict`` reads its input a batch at a time: peak memory does not grow with the file (issue 15)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from test_cli import run

# The peak resident memory of one run of the command, in bytes, reported by the process itself.
MEASURE = (
    "import resource, sys\n"
    "from twolayer.cli.parser import main\n"
    "status = main(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, file=sys.stderr)\n"
    "sys.exit(status)\n"
)


def block(rows: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 8)).round(6)
    return "".join(",".join(map(str, x)) + f",{'yes' if x[0] + x[1] > 0 else 'no'}\n" for x in X).encode()


def write_csv(path: Path, repeats: int, body: bytes) -> int:
    with path.open("wb") as handle:
        handle.write(b"x0,x1,x2,x3,x4,x5,x6,x7,label\n")
        for _ in range(repeats):
            handle.write(body)
    return path.stat().st_size


def peak_memory(model: Path, data: Path, out: Path | None) -> int:
    """The peak memory of ``predict`` (to ``out``), or without ``out`` of ``evaluate``."""
    command = (
        ["predict", str(model), str(data), "--out", str(out), "--proba"] if out else ["evaluate", str(model), str(data)]
    )
    argv = [sys.executable, "-c", MEASURE, *command]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_memory_stays_flat_as_the_file_grows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    monkeypatch.chdir(tmp_path)
    body = block(20_000, 0)  # about 1.4 MB of text
    write_csv(tmp_path / "train.csv", 1, body)
    code, _, err = run(capsys, "train", "train.csv", "--epochs", "2", "--hidden", "8", "--quiet", "--out", "m.st")
    assert code == 0, err
    shorter = write_csv(tmp_path / "short.csv", 40, body)
    longer = write_csv(tmp_path / "long.csv", 160, body)  # four times as long: 3.2 million rows
    predicting = command == "predict"
    grown = peak_memory(
        tmp_path / "m.st", tmp_path / "long.csv", tmp_path / "long.parquet" if predicting else None
    ) - peak_memory(tmp_path / "m.st", tmp_path / "short.csv", tmp_path / "short.parquet" if predicting else None)
    # Read whole, the extra rows would cost at least their float64 features (3.2e6 * 0.75 * 8 * 8 bytes,
    # about 150 MB) and the parsed table as much again; in batches, nothing that grows with the file.
    extra_text = longer - shorter
    assert grown < extra_text / 10, f"peak memory grew by {grown / 2**20:.0f} MiB for {extra_text / 2**20:.0f} MiB more"
    if not predicting:
        return
    import pyarrow.parquet as pq

    predictions = pq.read_table(tmp_path / "long.parquet")
    assert predictions.num_rows == 160 * 20_000
    assert predictions.column_names == ["prediction", "proba_no", "proba_yes"]


def test_evaluate_in_batches_says_what_it_says_reading_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import twolayer.io.datasets

    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "data.csv", 3, block(500, 1))
    code, _, err = run(capsys, "train", "data.csv", "--epochs", "2", "--hidden", "4", "--quiet", "--out", "m.st")
    assert code == 0, err
    code, whole, err = run(capsys, "evaluate", "m.st", "data.csv")
    assert code == 0, err
    monkeypatch.setitem(twolayer.io.datasets.load_batches.__kwdefaults__, "batch_bytes", 2048)  # about 30 rows
    code, batched, err = run(capsys, "evaluate", "m.st", "data.csv")
    assert code == 0, err
    assert batched == whole and "1500 samples" in whole.replace("\n", " ")


def test_a_refusal_in_a_later_batch_leaves_no_file_and_the_old_one_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import twolayer.io.datasets
    from test_cli import assert_one_line_error

    monkeypatch.chdir(tmp_path)
    body = block(300, 2)
    write_csv(tmp_path / "train.csv", 1, body)
    code, _, err = run(capsys, "train", "train.csv", "--epochs", "1", "--hidden", "2", "--quiet", "--out", "m.st")
    assert code == 0, err
    data = tmp_path / "new.csv"
    write_csv(data, 5, body)
    with data.open("a") as handle:
        handle.write("1,2,3,4,5,6,7,oops,no\n")  # the 1501st row, far past the first batch
    monkeypatch.setitem(twolayer.io.datasets.load_batches.__kwdefaults__, "batch_bytes", 4096)
    for name in ("p.csv", "p.parquet"):
        code, _, err = run(capsys, "predict", "m.st", str(data), "--out", name)
        assert_one_line_error(code, err, "line 1502, column 'x7': expected a number, got 'oops'")
        assert not (tmp_path / name).exists()
    (tmp_path / "p.csv").write_text("old predictions\n")
    code, _, err = run(capsys, "predict", "m.st", str(data), "--out", "p.csv")
    assert code == 2 and (tmp_path / "p.csv").read_text() == "old predictions\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.st", "new.csv", "p.csv", "train.csv"]
