"""The command line reads the tables people have (issue 15): delimiters, compression, standard
input, labels as written, and an identifier column carried into the predictions."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import pytest

from test_cli import assert_one_line_error, run

ROWS = [(0.1, 0.2, "007"), (1.1, 0.3, "7"), (0.5, 0.9, "007"), (1.5, 1.1, "7"), (0.2, 0.1, "007"), (1.2, 0.8, "7")] * 3


ROWS_XY = [(0.1 * i % 1.0, 0.37 * i % 1.0) for i in range(40)]


def write_table(path: Path, *, sep: str = ",", ids: bool = True) -> str:
    header = (["id"] if ids else []) + ["a", "b", "label"]
    lines = [sep.join(header)]
    for i, (a, b, c) in enumerate(ROWS):
        lines.append(sep.join(([f"row{i}"] if ids else []) + [str(a), str(b), c]))
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return text


@pytest.fixture
def model(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_table(tmp_path / "train.csv", ids=False)
    code, _, err = run(capsys, "train", "train.csv", "--epochs", "5", "--hidden", "3", "--quiet", "--out", "m.st")
    assert code == 0, err
    return tmp_path / "m.st"


def test_labels_stay_as_written_and_ids_lead_each_prediction(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_table(Path("new.tsv"), sep="\t")
    code, out, err = run(capsys, "predict", "m.st", "new.tsv", "--id", "id", "--proba")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "id,prediction,proba_007,proba_7"  # "007" and "7" are two classes
    assert [line.split(",")[0] for line in lines[1:]] == [f"row{i}" for i in range(len(ROWS))]
    assert {line.split(",")[1] for line in lines[1:]} <= {"007", "7"}


def test_compressed_semicolon_table_from_a_file_and_from_standard_input(
    model: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = write_table(Path("new.csv"), sep=";")
    Path("new.csv.gz").write_bytes(gzip.compress(text.encode()))
    code, from_file, err = run(capsys, "predict", "m.st", "new.csv.gz", "--id", "id")
    assert code == 0, err
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, from_stdin, err = run(capsys, "predict", "m.st", "-", "--id", "id", "--sep", ";")
    assert code == 0, err
    assert from_file == from_stdin and from_file.startswith("id,prediction\n")


def test_evaluate_reads_columns_in_any_order_with_extras(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["label,extra,b,id,a"] + [f"{c},9,{b},r{i},{a}" for i, (a, b, c) in enumerate(ROWS)]
    Path("shuffled.csv").write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "evaluate", "m.st", "shuffled.csv", "--id", "id")
    assert code == 0, err
    assert "accuracy" in out


@pytest.mark.parametrize(("value", "expected"), [("ab", "expected one character"), ('"', "not a quote")])
def test_bad_separator_is_one_line(model: Path, capsys: pytest.CaptureFixture[str], value: str, expected: str) -> None:
    write_table(Path("new.csv"))
    code, _, err = run(capsys, "predict", "m.st", "new.csv", "--sep", value)
    assert_one_line_error(code, err, "--sep", expected)


def test_missing_id_column_is_named(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_table(Path("new.csv"))
    code, _, err = run(capsys, "predict", "m.st", "new.csv", "--id", "key")
    assert_one_line_error(code, err, "new.csv", "key")


def test_train_with_an_id_column_and_dropped_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The id and the dropped column are never features: the model reads 'a' alone, and predict
    # carries the id of each row through.
    monkeypatch.chdir(tmp_path)
    write_table(Path("data.csv"))
    code, out, err = run(capsys, "train", "data.csv", "--id", "id", "--drop", "b", "--epochs", "3", "--out", "m.st")
    assert code == 0, err
    assert "'label' (named like a target)" in out and "'id' (not a feature)" in out
    from twolayer.io.modelfile import read

    assert read("m.st").feature_names == ("a",)
    code, out, err = run(capsys, "predict", "m.st", "data.csv", "--id", "id")
    assert code == 0, err
    assert out.splitlines()[1].startswith("row0,")


def test_train_features_by_glob_and_resume_keeps_the_selection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_table(Path("data.csv"), ids=False)
    argv = ["train", "data.csv", "--features", "[ab]", "--epochs", "2", "--quiet", "--checkpoint", "c.ckpt"]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    code, _, err = run(capsys, "train", "--resume", "c.ckpt", "--epochs", "4", "--quiet", "--out", "m.st")
    assert code == 0, err  # the recorded selection is used again: same columns, same data
    code, _, err = run(capsys, "train", "--resume", "c.ckpt", "--epochs", "5", "--quiet", "--drop", "b")
    assert_one_line_error(code, err, "--drop", "differs from the checkpoint")


@pytest.mark.parametrize("name", ["p.csv", "p.tsv", "p.parquet", "p.feather"])
def test_predictions_in_the_format_their_name_says(model: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    import pyarrow.csv
    import pyarrow.feather
    import pyarrow.parquet

    write_table(Path("new.csv"))
    code, _, err = run(capsys, "predict", "m.st", "new.csv", "--id", "id", "--proba", "--keep-columns", "--out", name)
    assert code == 0, err
    if name.endswith(".parquet"):
        table = pyarrow.parquet.read_table(name)
    elif name.endswith(".feather"):
        table = pyarrow.feather.read_table(name)
    else:
        delimiter = "\t" if name.endswith(".tsv") else ","
        options = pyarrow.csv.ConvertOptions(column_types={"prediction": pyarrow.string()})
        table = pyarrow.csv.read_csv(
            name, parse_options=pyarrow.csv.ParseOptions(delimiter=delimiter), convert_options=options
        )
    assert table.column_names == ["id", "a", "b", "prediction", "proba_007", "proba_7"]
    assert table.column("id").to_pylist() == [f"row{i}" for i in range(len(ROWS))]
    assert table.column("a").to_pylist() == pytest.approx([a for a, _, _ in ROWS])
    assert set(table.column("prediction").to_pylist()) <= {"007", "7"}  # labels as written, in every format
    proba = [table.column(c).to_pylist() for c in ("proba_007", "proba_7")]
    assert [p + q for p, q in zip(*proba)] == pytest.approx([1.0] * len(ROWS), abs=1e-5)


def test_format_overrides_the_name(model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_table(Path("new.csv"))
    code, _, err = run(capsys, "predict", "m.st", "new.csv", "--id", "id", "--format", "tsv", "--out", "p.txt")
    assert code == 0, err
    assert Path("p.txt").read_text().startswith("id\tprediction\nrow0\t")
    code, out, err = run(capsys, "predict", "m.st", "new.csv", "--format", "tsv", "--id", "id")
    assert code == 0, err
    assert out.startswith("id\tprediction\nrow0\t")


# --------------------------------------------------------------------------
# An export as people have one: an identifier, missing cells, a text column
# --------------------------------------------------------------------------

EXPORT = [("c1", "30", "red", "1.5", "yes"), ("c2", "", "blue", "2.5", "yes"), ("c3", "50", "", "NA", "no")]


def write_export(path: Path, rows: int = 30) -> None:
    lines = ["customer;age;colour;spend;bought"]
    for i in range(rows):
        key, age, colour, spend, bought = EXPORT[i % 3]
        lines.append(f"{key}-{i};{age};{colour};{spend};{bought}")
    path.write_text("\n".join(lines) + "\n")


def test_an_export_with_gaps_and_text_trains_and_predicts_by_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from twolayer.io.modelfile import read

    monkeypatch.chdir(tmp_path)
    write_export(Path("export.csv"))
    argv = ["train", "export.csv", "--id", "customer", "--epochs", "3", "--hidden", "3", "--out", "m.st"]
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, "export.csv, line 3, column 'age'", "--missing")
    assert not Path("m.st").exists()
    code, out, err = run(capsys, *argv, "--missing", "median")
    assert code == 0, err
    summary = " ".join(out.replace("│", " ").split())
    assert "4 inputs from 3 columns; text: colour (2 categories); missing cells: median" in summary
    model = read("m.st")
    assert model.encoding is not None and model.feature_names == ("age", "colour=blue", "colour=red", "spend")
    assert model.encoding.fill == (40.0, "blue", 2.0)  # the medians; blue ties red, and the first wins

    Path("new.csv").write_text("spend,colour,customer,age\n2.0,green,k1,\n1.0,red,k2,35\n")
    code, out, err = run(capsys, "predict", "m.st", "new.csv", "--id", "customer", "--keep-columns")
    assert code == 0, err
    assert "1 row holds a value of 'colour' that the model never saw" in err
    lines = out.splitlines()
    assert lines[0] == "customer,age,colour,spend,prediction"
    assert lines[1].startswith("k1,,green,2,") and lines[2].startswith("k2,35,red,1,")


def test_twolayer_load_predicts_on_the_table_itself_as_predict_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # twolayer.load puts the file's encoding (fills, one-hot) in front of the scaler and the network,
    # so the pipeline takes the table's own columns; the command line's predict is the reference.
    import numpy as np
    import pandas as pd

    import twolayer

    monkeypatch.chdir(tmp_path)
    write_export(Path("export.csv"))
    argv = ["export.csv", "--id", "customer", "--missing", "median", "--epochs", "3", "--hidden", "3", "--out", "m.st"]
    code, _, err = run(capsys, "train", *argv)
    assert code == 0, err
    new = "spend,colour,customer,age\n2.0,green,k1,\n1.0,red,k2,35\n,blue,k3,41\n3.5,,k4,20\n"
    Path("new.csv").write_text(new)
    code, _, err = run(capsys, "predict", "m.st", "new.csv", "--id", "customer", "--proba", "--out", "p.csv")
    assert code == 0, err
    expected = pd.read_csv("p.csv")[["proba_no", "proba_yes"]].to_numpy()
    pipeline = twolayer.load("m.st")
    assert [name for name, _ in pipeline.steps] == ["encoding", "scaler", "classifier"]
    table = pd.read_csv("new.csv")  # columns in another order, the identifier among them
    np.testing.assert_allclose(pipeline.predict_proba(table), expected, atol=5e-7)  # the CSV's six digits
    assert list(pipeline.predict(table)) == list(pd.read_csv("p.csv")["prediction"])
    # pandas' own NA (nullable dtypes) is an empty cell, filled as the file says, as NaN and None are.
    nullable = table.convert_dtypes()
    assert nullable["colour"].isna().sum() == 1
    np.testing.assert_allclose(pipeline.predict_proba(nullable), expected, atol=5e-7)
    assert len(pipeline[0].get_feature_names_out()) == pipeline[-1].n_features_in_  # one name per input
    # The pipeline saves back to the same file, encoding and all.
    twolayer.save(pipeline, "again.st")
    from twolayer.io.modelfile import read

    first, again = read("m.st"), read("again.st")
    assert again.encoding is not None and again.encoding.to_json() == first.encoding.to_json()
    np.testing.assert_array_equal(twolayer.load("again.st").predict_proba(table), pipeline.predict_proba(table))
    assert twolayer.to_onnx(pipeline).SerializeToString() == twolayer.to_onnx("m.st").SerializeToString()


def test_a_model_of_numeric_columns_loads_as_before_and_takes_an_array(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Filled numeric columns need no table: the loaded pipeline takes an array of them, as it always did.
    import numpy as np

    import twolayer

    monkeypatch.chdir(tmp_path)
    rows = [f"{x},{'' if i % 7 == 0 else y},{int(x > 0.5)}" for i, (x, y) in enumerate(ROWS_XY)]
    Path("n.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    code, _, err = run(capsys, "train", "n.csv", "--missing", "mean", "--epochs", "2", "--hidden", "2", "--out", "n.st")
    assert code == 0, err
    pipeline = twolayer.load("n.st")
    assert [name for name, _ in pipeline.steps] == ["scaler", "classifier"]
    assert pipeline.predict(np.array([[0.2, 0.3], [0.9, 0.1]])).shape == (2,)


def test_a_loaded_pipeline_that_fills_no_cells_refuses_an_empty_text_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    import twolayer

    monkeypatch.chdir(tmp_path)
    rows = [f"{age},{colour},{label}" for age, colour, label in [(30, "red", "yes"), (50, "blue", "no")] * 10]
    Path("complete.csv").write_text("age,colour,bought\n" + "\n".join(rows) + "\n")
    code, _, err = run(capsys, "train", "complete.csv", "--epochs", "2", "--hidden", "2", "--out", "m.st")
    assert code == 0, err
    pipeline = twolayer.load("m.st")  # trained with --missing error: nothing to fill
    assert pipeline.predict(pd.DataFrame({"age": [30.0], "colour": ["red"]})).shape == (1,)
    with pytest.raises(ValueError, match="row 1, column 'colour' is empty"):
        pipeline.predict(pd.DataFrame({"age": [30.0], "colour": [None]}))


def test_dropping_incomplete_rows_and_what_the_model_then_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_export(Path("export.csv"), rows=60)
    argv = ["export.csv", "--id", "customer", "--missing", "drop", "--drop", "colour", "spend", "--out", "m.st"]
    code, _, err = run(capsys, "train", *argv, "--epochs", "2", "--hidden", "2")
    assert code == 0, err
    assert "left out 20 rows with a missing feature cell" in err
    code, _, err = run(capsys, "predict", "m.st", "export.csv", "--id", "customer")
    assert_one_line_error(code, err, "line 3, column 'age'", "trained with --missing drop, which fills no cells")


def test_describe_lists_every_column_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_export(Path("export.csv"))
    code, out, err = run(capsys, "train", "export.csv", "--describe", "--out", "m.st")
    assert code == 0, err
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in out.splitlines()
        if line.startswith("│")
    }
    assert rows["customer"] == ["text", "feature", "0", "30 (one per category)"]
    assert rows["age"] == ["numeric", "feature", "10", "1"]
    assert rows["colour"] == ["text", "feature", "10", "2 (one per category)"]
    assert rows["bought"] == ["text", "target", "", ""]
    assert "column 'customer' holds text whose values are all different" in err and "--id customer" in err
    assert not Path("m.st").exists()


def test_resume_keeps_the_missing_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_export(Path("export.csv"))
    base = ["--epochs", "2", "--hidden", "2", "--quiet"]
    code, _, err = run(
        capsys, "train", "export.csv", "--id", "customer", "--missing", "mean", *base, "--checkpoint", "c.ck"
    )
    assert code == 0, err
    code, _, err = run(capsys, "train", "--resume", "c.ck", "--epochs", "3", "--quiet", "--out", "m.st")
    assert code == 0, err
    code, _, err = run(capsys, "train", "--resume", "c.ck", "--epochs", "4", "--quiet", "--missing", "median")
    assert_one_line_error(code, err, "--missing median", "differs from the checkpoint")


def test_a_tampered_encoding_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from safetensors.numpy import load_file, save_file

    monkeypatch.chdir(tmp_path)
    write_export(Path("export.csv"))
    code, _, err = run(
        capsys,
        "train",
        "export.csv",
        "--id",
        "customer",
        "--missing",
        "mean",
        "--epochs",
        "1",
        "--hidden",
        "2",
        "--quiet",
        "--out",
        "m.st",
    )
    assert code == 0, err
    from twolayer.io.modelfile import read

    assert read("m.st").encoding is not None
    tensors = load_file("m.st")
    from safetensors import safe_open

    with safe_open("m.st", "np") as handle:
        metadata = dict(handle.metadata())
    encoding = json.loads(metadata["encoding"])
    encoding["columns"][0]["fill"] = "NaN-ish"  # a text fill for a numeric column
    metadata["encoding"] = json.dumps(encoding)
    save_file(tensors, "bad.st", metadata=metadata)
    code, _, err = run(capsys, "predict", "bad.st", "export.csv", "--id", "customer")
    assert_one_line_error(code, err, "bad.st")


def test_the_readme_export_trains_and_predicts_by_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = Path(__file__).resolve().parents[1] / "examples"
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "train", str(examples / "customers.csv"), "--id", "customer_id")
    assert_one_line_error(code, err, "line 8, column 'monthly_usage': expected a number, got 'NA'")
    argv = ["train", str(examples / "customers.csv"), "--id", "customer_id", "--missing", "median", "--seed", "0"]
    code, _, err = run(capsys, *argv, "--quiet", "--out", "churn.st")
    assert code == 0, err
    code, out, err = run(capsys, "predict", "churn.st", str(examples / "new_customers.csv"), "--id", "customer_id")
    assert code == 0, err
    assert "1 row holds a value of 'region' that the model never saw" in err
    lines = out.splitlines()
    assert lines[0] == "customer_id,prediction"
    assert [line.split(",")[0] for line in lines[1:]] == [f"N-00{i}" for i in range(1, 6)]
    assert {line.split(",")[1] for line in lines[1:]} <= {"churns", "stays"}
