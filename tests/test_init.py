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
