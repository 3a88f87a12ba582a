"""Shared fixtures: the bundled samples and the optional ../shared/data test data."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
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
def sample_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled samples through the whole pipeline once per test session (one worker); read-only for tests."""
    from enrich.cli import main

    out = tmp_path_factory.mktemp("sample_results") / "enriched.h5"
    assert main(["run", "-q", "-o", str(out), "--workers", "1"]) == 0
    return out


def sample_copies(root: Path, samples_dir: Path, n: int) -> Path:
    """``n`` copies of the bundled webm clip under new ids 101..: real decoding and detection, short clips."""
    videos = root / "videos"
    videos.mkdir()
    for i in range(n):
        shutil.copy(samples_dir / "videos/2.webm", videos / f"{101 + i}.webm")
    return videos


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The bundled samples (samples/NOTICE)."""
    return REPO / "samples"


# The clip columns of schema 1 (2D tracks only), before the MANO lift and contacts were added.
V1_CLIP_COLUMNS = {"video_id", "status", "n_frames", "fps", "width", "height", "hand_offset", "hand_count",
                   "class_id", "template", "label", "placeholders", "error", "note", "source"}  # fmt: skip


def downgrade_to_schema_1(path: Path) -> None:
    """Make a results file look like one written before the lift: 2D groups and columns only."""
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 1
        for group in set(f) - {"clips", "hands"}:
            del f[group]
        for name in set(f["clips"]) - V1_CLIP_COLUMNS:
            del f["clips"][name]
