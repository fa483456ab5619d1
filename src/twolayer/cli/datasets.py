"""``twolayer datasets``: the built-in datasets."""

from __future__ import annotations

import argparse

import numpy as np

from twolayer.cli.common import EXIT_OK, Command, console

__all__ = ["DATASETS", "datasets"]


def _add_datasets_arguments(p: argparse.ArgumentParser) -> None:
    pass


def datasets(args: argparse.Namespace) -> int:
    from rich.table import Table

    from twolayer.io.datasets import BUILTINS, load_builtin

    table = Table(title="Built-in datasets", title_justify="left")
    for column, justify in (
        ("name", "left"),
        ("samples", "right"),
        ("features", "right"),
        ("classes", "right"),
        ("description", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, builtin in BUILTINS.items():
        data = load_builtin(name)
        assert data.y is not None
        table.add_row(name, str(data.n_samples), str(data.n_features), str(np.unique(data.y).size), builtin.description)
    console().print(table)
    print("DATA may also be a .csv file (a header row, numeric features, the target last or --target NAME)")
    print("or a .npz file (arrays X and y, optionally feature_names).")
    return EXIT_OK


DATASETS = Command("datasets", "list the built-in datasets with their sizes", _add_datasets_arguments, datasets)
