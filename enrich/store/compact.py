"""Row-level copies between results files: rewrite a file (compress, drop clips), copy committed clips with
their per-frame rows in bulk blocks, carry robot groups over. Used by recover, merge, retarget and the writer."""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from pathlib import Path

import h5py
import numpy as np

from enrich.store.reader import Results
from enrich.store.robots import ROBOTS_GROUP
from enrich.store.schema import (
    CLIP_COLUMNS,
    COPY_BLOCK_CLIPS,
    ROBOT_SCHEMA_VERSION,
    ROW_GROUPS,
    SCHEMA_VERSION,
    create_file,
    expand_rows,
    replace_keeping_mode,
)


def rewrite(path: Path, out: Path, *, compressed: bool, drop: Collection[str] = ()) -> int:
    """Copy the committed rows of ``path`` (less the clips whose ids are in ``drop``) into a new file, then
    atomically put it at ``out``. Returns the number of clips copied."""
    tmp = out.with_name(out.name + ".rewrite.tmp")
    try:
        with Results(path) as src:
            rows = src.committed_rows
            if drop:
                rows = rows[~np.isin(np.asarray(src.video_ids, dtype=object), list(drop))]
            attrs = src.stored_attrs
            if int(attrs["schema_version"]) == ROBOT_SCHEMA_VERSION:
                attrs["schema_version"] = SCHEMA_VERSION  # robot groups are not carried: retarget again after
            create_file(tmp, attrs, compressed=compressed)
            with h5py.File(tmp, "r+") as dst:
                copy_rows(src, dst, rows, dict.fromkeys(ROW_GROUPS, 0))
        replace_keeping_mode(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # only left when the copy failed
    return len(rows)


def copy_rows(src: Results, dst: h5py.File, rows: np.ndarray, n_rows: dict[str, int]) -> dict[str, int]:
    """Append clip rows ``rows`` (increasing) of ``src`` and their per-frame rows to ``dst`` in bulk blocks;
    ``n_rows`` are ``dst``'s row counts per group before, the counts after are returned."""
    for start in range(0, len(rows), COPY_BLOCK_CLIPS):
        n_rows = _copy_block(src, dst, rows[start : start + COPY_BLOCK_CLIPS], n_rows)
    return n_rows


def _copy_block(src: Results, dst: h5py.File, rows: np.ndarray, n_rows: dict[str, int]) -> dict[str, int]:
    """Append clip rows ``rows`` (increasing) and their per-frame rows to ``dst``; returns its row counts."""
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    cols = {name: values[rows - lo] for name, values in src.clip_table(lo, hi).items()}
    for name, column in CLIP_COLUMNS.items():  # columns an older schema lacks start empty
        cols.setdefault(name, np.zeros((len(rows), *column.row_shape), column.dtype))
    out = dict(n_rows)
    for group, (_, offset, count) in ROW_GROUPS.items():
        counts = cols[count].astype(np.int64) if group in src.groups else np.zeros(len(rows), np.int64)
        take = expand_rows(cols[offset], counts)
        cols[offset] = n_rows[group] + np.concatenate([[0], np.cumsum(counts[:-1])]).astype(np.int64)
        if len(take):
            r_lo, r_hi = int(take.min()), int(take.max()) + 1
            values = {name: v[take - r_lo] for name, v in src.group_table(group, r_lo, r_hi).items()}
            for name, column in ROW_GROUPS[group][0].items():  # columns an older file lacks: their fill value
                values.setdefault(name, np.zeros((len(take), *column.row_shape), column.dtype))
            _append_rows(dst[group], values, n_rows[group])
        out[group] = n_rows[group] + len(take)
    _append_rows(dst["clips"], cols, dst["clips/status"].shape[0])
    return out


def _append_rows(group: h5py.Group, columns: dict[str, np.ndarray], start: int) -> None:
    for name, values in columns.items():
        group[name].resize(start + len(values), axis=0)
        group[name][start:] = values


def copy_robot_groups(src: Results, dst: h5py.File, rows: np.ndarray, skip: str) -> None:
    """Carry ``src``'s other robot groups over: their rows as stored, their per-clip offsets re-indexed to
    the copied clip rows ``rows`` (the committed ones)."""
    if not src.robots or set(src.robots) == {skip}:
        return
    source = src.robot_groups_h5
    target = dst.require_group(ROBOTS_GROUP)
    for name in src.robots:
        if name == skip:
            continue
        group = source[name]
        copied = target.create_group(name)
        for key, value in group.attrs.items():
            copied.attrs[key] = value
        for key, ds in group.items():
            if key in ("clip_offset", "clip_count"):
                values = ds[:]
                inside = rows < len(values)
                picked = np.zeros(len(rows), values.dtype)
                picked[inside] = values[rows[inside]]
                copied.create_dataset(key, data=picked, compression="gzip")
            else:
                group.copy(ds, copied, name=key)  # chunks copied as stored (no decompression)
