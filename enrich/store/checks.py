"""Checks before writing a results file: is the output safe to write, its folder writable, a file appendable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from enrich.errors import FormatError, OutputExistsError, UnwritableError, UsageError
from enrich.store.reader import Results
from enrich.store.schema import (
    CLIP_COLUMNS,
    ROW_GROUPS,
    SCHEMA_VERSION,
    STATUS_UNCOMMITTED,
    check_schema,
    check_writable,
)


def check_output(path: str | os.PathLike[str], *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to write where data could be lost: a file that is not an enrich results file is never written
    into, and an existing results file only with ``resume`` (append to it) or ``overwrite`` (replace it)."""
    path = Path(path)
    if resume and overwrite:
        raise UsageError("--resume and --overwrite contradict each other: choose one")
    if not path.exists():
        return
    if resume or overwrite:
        check_writable(path)
    try:
        with Results(path, allow_2d_only=True) as existing:
            n_clips = len(existing)
    except FormatError as e:
        raise FormatError(f"{e}; refusing to write into it: choose another output or remove it") from None
    if not (resume or overwrite):
        raise OutputExistsError(
            f"{path} exists ({n_clips} clips): add --resume to continue it, --overwrite to replace it "
            "(the old file stays until the new run commits its first clip), or choose another output"
        )


def check_output_folder(path: str | os.PathLike[str]) -> None:
    """The folder that is to hold ``path`` exists (made when missing) and takes a new file; else one line."""
    folder = Path(path).absolute().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UnwritableError(f"{path}: cannot write in {folder} ({e.strerror or e})") from None


def can_append(path: Path) -> bool:
    """Closed cleanly, uncompressed and holding no uncommitted rows: can be appended to as is."""
    try:
        f = h5py.File(path, "r")
    except OSError:
        return False
    with f:
        check_schema(f, path)
        if int(f.attrs["schema_version"]) != SCHEMA_VERSION or f["hands/keypoints2d"].compression is not None:
            return False
        status = f["clips/status"][:]
        lengths = {f["clips"][name].shape[0] for name in CLIP_COLUMNS}
        if lengths != {len(status)} or not np.all(status != STATUS_UNCOMMITTED):
            return False
        for group, (columns, offset, count) in ROW_GROUPS.items():
            if any(name not in f[group] for name in columns):  # written before a column was added: rewrite
                return False
            row_lengths = {f[group][name].shape[0] for name in columns}
            end = int(f["clips"][offset][-1] + f["clips"][count][-1]) if len(status) else 0
            if row_lengths != {end}:
                return False
        return True
