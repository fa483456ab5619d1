"""The package's lazily imported public names resolve to the objects of their modules."""

from __future__ import annotations

import importlib

import pytest

import twolayer


def test_all_lists_exactly_the_lazy_names():
    assert set(twolayer.__all__) == set(twolayer._LAZY) | {"__version__"}


@pytest.mark.parametrize("name", sorted(twolayer._LAZY))
def test_lazy_name_resolves(name):
    module = importlib.import_module(twolayer._LAZY[name])
    assert getattr(twolayer, name) is getattr(module, name)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        twolayer.nonexistent  # noqa: B018


# The modules that moved into the layered packages, with a public name each defined before the move.
OLD_NAMES = {
    "twolayer.optim": ("twolayer.training.optim", "train_lbfgs"),
    "twolayer.second_order": ("twolayer.training.second_order", "minimize_newton"),
    "twolayer.gradcheck": ("twolayer.teaching.gradcheck", "check_gradient"),
    "twolayer.derivation": ("twolayer.teaching.derivation", "verify_derivation"),
    "twolayer.modelfile": ("twolayer.io.modelfile", "atomic_write"),
    "twolayer.datasets": ("twolayer.io.datasets", "DataError"),
    "twolayer.plots": ("twolayer.report.plots", "draw_learning_curves"),
    "twolayer.calibration": ("twolayer.report.calibration", "calibration_summary"),
}


@pytest.mark.parametrize("old", sorted(OLD_NAMES))
def test_a_moved_module_answers_to_its_old_name(old):
    new, name = OLD_NAMES[old]
    module = importlib.import_module(old)
    # the very module, not a copy: a setting assigned through the old name reaches the new one
    assert module is importlib.import_module(new)
    from_import = __import__(old, fromlist=[name])  # what `from old import name` runs
    assert getattr(from_import, name) is getattr(importlib.import_module(new), name)


def test_the_error_types_are_shared_across_layers():
    from twolayer import errors
    from twolayer.io import datasets, modelfile
    from twolayer.training import optim

    assert datasets.DataError is modelfile.DataError is errors.DataError
    assert optim.TrainingDiverged is errors.TrainingDiverged
    assert optim.NonFiniteInput is errors.NonFiniteInput
