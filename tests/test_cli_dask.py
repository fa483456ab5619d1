"""``train --dask`` and ``predict --dask`` (issue 17): a folder or glob of Parquet or CSV files, read and
trained on by a Dask cluster of worker processes, and predictions written by the workers as
partitioned Parquet.

One local cluster serves the module (its address given to ``--dask``); one run starts its own with
``--dask local:2``. The reference is the same command in memory on the files put together.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ds = pytest.importorskip("pyarrow.dataset")

from test_cli import assert_one_line_error, run  # noqa: E402
from twolayer import cli  # noqa: E402
from twolayer.io.datasets import load_builtin  # noqa: E402
from twolayer.io.modelfile import read  # noqa: E402

# The three files hold unequal shares of the rows, so that a partition's rows are not a guess.
SPLITS = (50, 70, 58)
TRAINING = ("--id", "key", "--solver", "lbfgs", "--epochs", "25", "--hidden", "8", "--dtype", "float64", "--quiet")


def _write(folder: Path, table: pa.Table, fmt: str) -> None:
    folder.mkdir()
    start = 0
    for k, n in enumerate(SPLITS):
        part = table.slice(start, n)
        if fmt == "parquet":
            pq.write_table(part, folder / f"part-{k}.parquet", row_group_size=20)
        else:
            part.to_pandas().to_csv(folder / f"part-{k}.csv", index=False)
        start += n


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``parts/`` (3 Parquet files), ``csv/`` (the same rows as 3 CSV files), ``all.parquet`` (them
    together), and ``nan/``: ``parts/`` with a NaN in the second file's fifth row."""
    root = tmp_path_factory.mktemp("dask")
    wine = load_builtin("wine")  # 178 rows, 13 features, 3 classes
    assert wine.feature_names is not None
    columns = {"key": pa.array([f"r{i}" for i in range(wine.n_samples)])}
    columns.update({name: pa.array(wine.X[:, j]) for j, name in enumerate(wine.feature_names)})
    columns["target"] = pa.array(wine.y)
    table = pa.table(columns)
    pq.write_table(table, root / "all.parquet")
    _write(root / "parts", table, "parquet")
    _write(root / "csv", table, "csv")
    ash = wine.X[:, wine.feature_names.index("ash")].copy()
    ash[SPLITS[0] + 4] = np.nan
    _write(root / "nan", table.set_column(table.schema.get_field_index("ash"), "ash", pa.array(ash)), "parquet")
    return root


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """The scheduler of a cluster of two worker processes, shared by the module's runs."""
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # not 8787, which another cluster may hold
        silence_logs=logging.CRITICAL,
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def models(data: Path) -> dict[str, Path]:
    """The network trained on ``parts/`` by ``--dask local:2``, and in memory on ``all.parquet`` (every
    row training: ``--validation`` is the held-out set)."""
    out = {"dask": data / "dask.st", "memory": data / "memory.st"}
    assert cli.main(["train", str(data / "parts"), "--dask", "local:2", *TRAINING, "--out", str(out["dask"])]) == 0
    all_rows = str(data / "all.parquet")
    assert cli.main(["train", all_rows, "--validation", all_rows, *TRAINING, "--out", str(out["memory"])]) == 0
    return out


def assert_same_network(a: Path, b: Path) -> None:
    first, second = read(str(a)), read(str(b))
    for p, q in zip(first.classifier.params_, second.classifier.params_):
        # The same sums over the rows, added in another order: rounding apart.
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(first.model[0].mean_, second.model[0].mean_, rtol=1e-12)
    np.testing.assert_allclose(first.model[0].scale_, second.model[0].scale_, rtol=1e-12)


def test_a_folder_trains_the_network_that_memory_trains_on_its_rows(models: dict[str, Path]) -> None:
    assert_same_network(models["dask"], models["memory"])
    info = read(str(models["dask"])).info
    assert info is not None
    assert (info["n_train"], info["files"]) == (sum(SPLITS), 3)


def test_a_glob_of_csv_files_trains_the_same_network(
    data: Path, models: dict[str, Path], address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = data / "from_csv.st"
    code, _, err = run(capsys, "train", str(data / "csv" / "*.csv"), "--dask", address, *TRAINING, "--out", out)
    assert code == 0, err
    assert_same_network(out, models["memory"])


def test_predictions_are_one_parquet_file_per_partition_in_the_rows_order(
    data: Path, models: dict[str, Path], address: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "predictions"
    where = f"{out}{os.sep}"  # a new folder: its name ends with a separator
    code, stdout, err = run(
        capsys, "predict", models["dask"], data / "parts", "--dask", address, "--id", "key", "--proba", "--out", where
    )
    assert code == 0, err
    assert f"wrote {sum(SPLITS)} predictions" in stdout
    assert sorted(p.name for p in out.iterdir()) == [f"part.{k:05d}.parquet" for k in range(len(SPLITS))]
    written = ds.dataset(str(out), format="parquet").to_table()
    code, _, err = run(
        capsys, "predict", models["dask"], data / "all.parquet", "--id", "key", "--proba", "--out", tmp_path / "m.pq"
    )
    assert code == 0, err
    in_memory = pq.read_table(tmp_path / "m.pq")
    assert written.schema == in_memory.schema
    assert written.column("key").to_pylist() == [f"r{i}" for i in range(sum(SPLITS))]
    assert written.column("prediction").equals(in_memory.column("prediction"))
    for name in written.column_names[2:]:
        np.testing.assert_allclose(written.column(name).to_numpy(), in_memory.column(name).to_numpy(), atol=1e-12)


def test_a_nan_in_one_file_is_named_by_its_file_row_and_column(
    data: Path, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "train", data / "nan", "--dask", address, *TRAINING)
    assert_one_line_error(code, err, f"{data / 'nan' / 'part-1.parquet'}, row 5, column 'ash'", "NaN")


def test_a_failed_prediction_leaves_the_old_predictions_as_they_were(
    data: Path, models: dict[str, Path], address: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "predictions.parquet"  # a .parquet name, for DATA of several partitions: a folder
    code, _, err = run(capsys, "predict", models["dask"], data / "parts", "--dask", address, "--out", out)
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = run(capsys, "predict", models["dask"], data / "nan", "--dask", address, "--out", out)
    assert_one_line_error(code, err, "part-1.parquet, row 5, column 'ash'")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.parquet"]  # nothing left beside it


@pytest.mark.parametrize("where", ["parts", "."])
def test_an_out_that_is_or_holds_the_input_is_refused(
    data: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.chdir(data)
    code, _, err = run(capsys, "predict", models["dask"], "parts", "--dask", "local:2", "--out", where)
    assert_one_line_error(code, err, f"--out {where}", "destroy the input")
    assert sorted(os.listdir("parts")) == [f"part-{k}.parquet" for k in range(len(SPLITS))]


def test_an_unreachable_scheduler_fails_in_one_line_naming_it(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    code, _, err = run(capsys, "train", data / "parts", "--dask", address, "--dask-timeout", "0.5", *TRAINING)
    assert_one_line_error(code, err, f"--dask {address}", "no Dask scheduler answered")


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--test-size", "0.3"], "--test-size does not apply with --dask"),
        (["--missing", "mean"], "--missing mean does not apply with --dask"),
        (["--checkpoint", "c.ckpt"], "--checkpoint does not apply with --dask"),
    ],
)
def test_options_that_need_the_rows_in_memory_are_refused(
    data: Path, capsys: pytest.CaptureFixture[str], option: list[str], expected: str
) -> None:
    code, _, err = run(capsys, "train", data / "parts", "--dask", "local:2", *option)
    assert_one_line_error(code, err, expected)


def test_a_bayesian_network_on_the_cluster_has_the_evidence_of_memory(
    data: Path, address: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bayes = ("--id", "key", "--bayes", "--hidden", "3", "--epochs", "40", "--max-cycles", "2", "--quiet")
    on_cluster, in_memory = tmp_path / "cluster.st", tmp_path / "memory.st"
    code, _, err = run(capsys, "train", data / "parts", "--dask", address, *bayes, "--out", on_cluster)
    assert code == 0, err
    all_rows = str(data / "all.parquet")
    code, _, err = run(capsys, "train", all_rows, "--validation", all_rows, *bayes, "--out", in_memory)
    assert code == 0, err
    cluster_info, memory_info = read(str(on_cluster)).info, read(str(in_memory)).info
    assert cluster_info is not None and memory_info is not None
    assert cluster_info["bayesian"] and cluster_info["cycles"] == memory_info["cycles"]
    # The same procedure on the same rows: the evidence and alpha to the sums' rounding.
    assert cluster_info["log_evidence"] == pytest.approx(memory_info["log_evidence"], rel=1e-8)
    np.testing.assert_allclose(cluster_info["alpha"], memory_info["alpha"], rtol=1e-8)
    out = tmp_path / "moderated"
    code, stdout, err = run(
        capsys, "predict", on_cluster, data / "parts", "--dask", address, "--proba", "--out", f"{out}/"
    )
    assert code == 0, err
    assert f"wrote {sum(SPLITS)} predictions" in stdout
    written = ds.dataset(str(out), format="parquet").to_table()
    code, _, err = run(capsys, "predict", in_memory, all_rows, "--proba", "--out", tmp_path / "m.parquet")
    assert code == 0, err
    expected = pq.read_table(tmp_path / "m.parquet")
    for name in written.column_names[1:]:
        np.testing.assert_allclose(written.column(name).to_numpy(), expected.column(name).to_numpy(), atol=1e-7)


# dask's Parquet reader, run here rather than on a worker, calls a pandas method pandas 3.1 deprecates.
@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.reset_index")
def test_a_partition_is_predicted_in_batches_with_the_same_columns(
    data: Path, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker predicts its partition a batch at a time (here of 16 rows), so its memory is a batch's."""
    from twolayer.cli.evaluate import PredictionColumns
    from twolayer.io import dask_tables

    model_file = read(str(models["dask"]))
    sources = dask_tables.resolve_sources(str(data / "parts"))
    table = dask_tables.read_for_model(sources, features=model_file.feature_names, id_column="key")
    part = table.frame.partitions[1].compute()  # 70 rows, read here
    predict = PredictionColumns.of(model_file, True, table.id_name)
    whole = dask_tables._predict_partition(part, table.spec, table.encoding, predict, 1)
    monkeypatch.setattr(dask_tables, "BATCH_BYTES", 16 * 8 * table.n_features)
    batched = dask_tables._predict_partition(part, table.spec, table.encoding, predict, 1)
    assert list(batched) == list(whole) and len(batched["prediction"]) == SPLITS[1]
    for name in whole:
        np.testing.assert_array_equal(batched[name], whole[name])
