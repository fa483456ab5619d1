"""Shared test settings: the ``slow`` marker. The shared oracles live in ``oracles.py`` beside this file."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: research-grade or process-level tests (large problems, subprocesses); "
        "`make test` runs them, `pytest -m 'not slow'` leaves them out while editing",
    )
