"""Shared fixtures: the bundled samples and the optional ../shared/data test data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data next to the repository (real SSv2 test data); skips the test when it is absent."""
    root = REPO.parent / "shared" / "data"
    if not root.is_dir():
        pytest.skip(f"shared test data not found at {root}")
    return root


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The bundled samples (samples/NOTICE)."""
    return REPO / "samples"
