"""The results file's schema: its columns (dtype, row shape, units), row groups and version, and the file-level
operations every part of the store shares: create, open, check, lock.

Layout (see docs/format.md): ``/clips/<column>`` holds one row per clip in commit order; each per-frame row
group (``/hands``, ``/mano``, ``/contacts``, ``/segments``, ``/box_matches``) holds one row per hand-frame (or
contact row ...), a clip's rows contiguous at ``<group>_offset`` / ``<group>_count`` of its clip row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import importlib.metadata
import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from enrich.constants import N_BETAS, N_KEYPOINTS, ROI_SOURCES, SIDES
from enrich.errors import FormatError, MissingFileError, UnwritableError, WriterLockedError
from enrich.store.superblock import check_not_truncated, damaged, open_swmr_read, swmr_writer_flag

SCHEMA_VERSION = 3  # 2 added the MANO lift (/mano rows, betas, focal length); 3 contacts and segments
ROBOT_SCHEMA_VERSION = 4  # a version-3 file plus /robots/<name> groups (enrich retarget); runs still write 3


STATUS_UNCOMMITTED, STATUS_OK, STATUS_FAILED = 0, 1, 2


STATUS_NAMES: tuple[str, str, str] = ("uncommitted", "ok", "failed")  # index = stored code


VIDEO_ID_BYTES = 32


# Fixed-length UTF-8 widths in bytes (SWMR forbids variable-length strings); longer text is truncated.
TEXT_BYTES: dict[str, int] = {
    "template": 256,
    "label": 512,
    "placeholders": 512,  # JSON list of strings
    "error": 256,
    "note": 256,
    "source": 256,
}


# A lookup reads (and, in a finished file, decompresses) one chunk per dataset: small chunks keep it cheap
# (measured in benchmarks/bench_store.py); wide text columns get fewer rows per chunk.
_CLIP_CHUNK_BYTES = 16 * 1024  # 4096 rows of int32, 64 rows of 256-byte text


_CLIP_CHUNK_ROWS_MAX = 4096


HAND_CHUNK_ROWS = 256  # 64 KiB of keypoints2d


_GZIP_LEVEL = 4


READ_BLOCK_CLIPS = 1024  # clips per bulk read when iterating


COPY_BLOCK_CLIPS = 8192  # clips per bulk copy in recover / compression


_LIBVER = ("v110", "v110")  # SWMR needs the 1.10 format; capping it keeps files readable by HDF5 >= 1.10


def _utf8(n_bytes: int) -> np.dtype:
    return h5py.string_dtype("utf-8", n_bytes)


@dataclass(frozen=True)
class Column:
    dtype: np.dtype
    row_shape: tuple[int, ...] = ()
    units: str = ""


CLIP_COLUMNS: dict[str, Column] = {
    "video_id": Column(_utf8(VIDEO_ID_BYTES)),
    "status": Column(np.dtype(np.int8), units="0 uncommitted, 1 ok, 2 failed"),
    "n_frames": Column(np.dtype(np.int32), units="frames"),
    "fps": Column(np.dtype(np.float32), units="frames/s"),
    "width": Column(np.dtype(np.int16), units="px"),
    "height": Column(np.dtype(np.int16), units="px"),
    "hand_offset": Column(np.dtype(np.int64), units="row in /hands"),
    "hand_count": Column(np.dtype(np.int32), units="rows in /hands"),
    "mano_offset": Column(np.dtype(np.int64), units="row in /mano"),
    "mano_count": Column(np.dtype(np.int32), units="rows in /mano"),
    "betas": Column(np.dtype(np.float32), (len(SIDES), N_BETAS), "MANO shape per side (left, right); 0 = none"),
    "focal_px": Column(np.dtype(np.float32), units="px, pinhole focal length of the lift, centre = frame centre"),
    "contact_offset": Column(np.dtype(np.int64), units="row in /contacts"),
    "contact_count": Column(np.dtype(np.int32), units="rows in /contacts"),
    "segment_offset": Column(np.dtype(np.int64), units="row in /segments"),
    "segment_count": Column(np.dtype(np.int32), units="rows in /segments"),
    "match_offset": Column(np.dtype(np.int64), units="row in /box_matches"),
    "match_count": Column(np.dtype(np.int32), units="rows in /box_matches"),
    "class_id": Column(np.dtype(np.int16), units="SSv2 class id, -1 unknown"),
    **{name: Column(_utf8(n_bytes)) for name, n_bytes in TEXT_BYTES.items()},
}


HAND_COLUMNS: dict[str, Column] = {
    "side": Column(np.dtype(np.int8), units="index into SIDES"),
    "frame_index": Column(np.dtype(np.int32), units="0-based decoded frame"),
    "keypoints2d": Column(np.dtype(np.float32), (N_KEYPOINTS, 3), "x px, y px, relative z (x scale)"),
    "world_landmarks": Column(np.dtype(np.float32), (N_KEYPOINTS, 3), "m"),
    "presence": Column(np.dtype(np.float32), units="probability"),
    "handedness": Column(np.dtype(np.float32), units="P(right hand)"),
    "roi_source": Column(np.dtype(np.int8), units="index into ROI_SOURCES"),
    "roi": Column(np.dtype(np.float32), (5,), "centre x px, centre y px, width px, height px, rotation rad"),
    "lift_status": Column(np.dtype(np.int8), units="0 lifted, 1 dropped as inconsistent with its track, 2 split it"),
}


MANO_COLUMNS: dict[str, Column] = {
    "side": Column(np.dtype(np.int8), units="index into SIDES"),
    "frame_index": Column(np.dtype(np.int32), units="0-based decoded frame"),
    "global_orient": Column(np.dtype(np.float32), (3,), "axis-angle rad, camera frame"),
    "hand_pose": Column(np.dtype(np.float32), (45,), "axis-angle rad per joint, relative to the flat hand"),
    "transl": Column(np.dtype(np.float32), (3,), "m, camera frame (OpenCV axes)"),
    "joints3d": Column(np.dtype(np.float32), (N_KEYPOINTS, 3), "m, camera frame, MediaPipe order"),
    "residual_2d_px": Column(np.dtype(np.float32), units="px, -1 where unobserved"),
    "residual_3d_mm": Column(np.dtype(np.float32), units="mm, -1 where unobserved"),
    "observed": Column(np.dtype(np.int8), units="1 = the 2D stage saw the hand"),
    "interpolated": Column(np.dtype(np.int8), units="1 = filled across a short gap"),
    "segment": Column(np.dtype(np.int16), units="segment of the track (long gaps split it)"),
    "reliable": Column(np.dtype(np.int8), units="1 = observed, confident and on the image (docs/format.md)"),
}


MANO_FIELDS = tuple(name for name in MANO_COLUMNS if name != "side")


CONTACT_COLUMNS: dict[str, Column] = {
    "frame_index": Column(np.dtype(np.int32), units="0-based decoded frame"),
    "hand": Column(np.dtype(np.int8), units="0 left, 1 right, 2 unknown (box-only)"),
    "object_slot": Column(np.dtype(np.int16), units="Something-Else standard_category number"),
    "probability": Column(np.dtype(np.float32), units="per-frame contact probability, before smoothing"),
    "in_contact": Column(np.dtype(np.int8), units="1 = inside a contact segment"),
    "fingers": Column(np.dtype(np.uint8), units="bit k: finger k (thumb..pinky) touches the box"),
    "evidence": Column(
        np.dtype(np.uint8),
        units="bits: 1 keypoints, 2 box-only, 4 co-motion, 8 surface, 16 manipulated, 32 side continued",
    ),
    "min_tip_distance": Column(np.dtype(np.float32), units="hand sizes, nearest fingertip to the box; NaN box-only"),
    "box_overlap": Column(np.dtype(np.float32), units="share of the hand's extent inside the object box"),
    "gap_hand": Column(np.dtype(np.float32), units="hand sizes, hand to object box gap (<0 overlap)"),
    "co_motion_logit": Column(np.dtype(np.float32), units="co-motion log-likelihood ratio"),
}


SEGMENT_COLUMNS: dict[str, Column] = {
    "hand": Column(np.dtype(np.int8), units="0 left, 1 right, 2 unknown (box-only)"),
    "object_slot": Column(np.dtype(np.int16), units="Something-Else standard_category number"),
    "start": Column(np.dtype(np.int32), units="first frame, 0-based"),
    "end": Column(np.dtype(np.int32), units="last frame, inclusive"),
    "fingers": Column(np.dtype(np.uint8), units="OR of the segment's finger bits"),
}


MATCH_COLUMNS: dict[str, Column] = {
    "frame_index": Column(np.dtype(np.int32), units="0-based decoded frame with a Something-Else hand box"),
    "match": Column(np.dtype(np.int8), units="0 left, 1 right, 2 no detected hand matched the box"),
}


# Per-frame row groups: group -> (columns, clip column of the first row, clip column of the row count)
ROW_GROUPS: dict[str, tuple[dict[str, Column], str, str]] = {
    "hands": (HAND_COLUMNS, "hand_offset", "hand_count"),
    "mano": (MANO_COLUMNS, "mano_offset", "mano_count"),
    "contacts": (CONTACT_COLUMNS, "contact_offset", "contact_count"),
    "segments": (SEGMENT_COLUMNS, "segment_offset", "segment_count"),
    "box_matches": (MATCH_COLUMNS, "match_offset", "match_count"),
}


def count_rows(rows: dict[str, np.ndarray]) -> int:
    return len(next(iter(rows.values())))


def package_version() -> str:
    """The installed enrich's version, from its metadata (the store does not import the package above it)."""
    try:
        return importlib.metadata.version("enrich")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def _chunk_rows(column: Column) -> int:
    row_bytes = column.dtype.itemsize * int(np.prod(column.row_shape, dtype=np.int64))
    return int(np.clip(_CLIP_CHUNK_BYTES // row_bytes, 32, _CLIP_CHUNK_ROWS_MAX))


def _filters(column: Column) -> dict[str, Any]:
    """Compression of the final file: gzip, byte shuffle on numbers, a checksum per chunk."""
    return {
        "compression": "gzip",
        "compression_opts": _GZIP_LEVEL,
        "shuffle": column.dtype.kind != "S" and column.dtype.itemsize > 1,
        "fletcher32": True,
    }


def create_column(group: h5py.Group, name: str, column: Column, chunk_rows: int, compressed: bool) -> None:
    ds = group.create_dataset(
        name,
        shape=(0, *column.row_shape),
        maxshape=(None, *column.row_shape),
        chunks=(chunk_rows, *column.row_shape),
        dtype=column.dtype,
        **(_filters(column) if compressed else {}),
    )
    if column.units:
        ds.attrs["units"] = column.units


def create_file(path: Path, attrs: dict[str, Any], *, compressed: bool) -> None:
    """Create an empty results file with every dataset and attribute (SWMR cannot add them later).

    ``compressed=False`` for a file to append to (see the module docstring), True for a finished one.
    """
    with h5py.File(path, "w", libver=_LIBVER) as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        clips = f.create_group("clips")
        for name, column in CLIP_COLUMNS.items():
            create_column(clips, name, column, _chunk_rows(column), compressed)
        clips["status"].attrs["codes"] = json.dumps(STATUS_NAMES)
        for group_name, (columns, _, _) in ROW_GROUPS.items():
            group = f.create_group(group_name)
            for name, column in columns.items():
                create_column(group, name, column, HAND_CHUNK_ROWS, compressed)
        for group_name in ("hands", "mano"):
            f[group_name]["side"].attrs["codes"] = json.dumps(SIDES)
        f["hands/roi_source"].attrs["codes"] = json.dumps(ROI_SOURCES)


def open_swmr_write(path: Path) -> h5py.File:
    """Open straight into SWMR-write mode: there is never a moment with a plain write open on disk."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_V110)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl)
    return h5py.File(fid)


def open_read(path: Path) -> h5py.File:
    """Plain read; a file left by a killed (or running) SWMR writer needs a SWMR read. A damaged file is one line
    (:mod:`enrich.store.superblock`), never a wait."""
    if not path.exists():
        raise MissingFileError(f"no results file at {path}")
    if path.is_dir() or not h5py.is_hdf5(path):
        raise FormatError(f"{path} is not an enrich results file (not HDF5)")
    block = check_not_truncated(path)
    try:
        return h5py.File(path, "r")
    except OSError as plain_error:
        if not swmr_writer_flag(block):
            raise damaged(path, plain_error) from None
        try:
            return open_swmr_read(path)
        except OSError:
            raise FormatError(f"{path} cannot be read as HDF5: {plain_error}") from None


def check_schema(f: h5py.File, path: Path, *, allow_2d_only: bool = False) -> None:
    version = f.attrs.get("schema_version")
    if version is None or "clips" not in f or "hands" not in f:
        raise FormatError(f"{path} is not an enrich results file (no schema_version attribute)")
    if int(version) == 1 and not allow_2d_only:
        raise FormatError(
            f"{path} has results schema_version 1 (2D tracks only, before the MANO lift); "
            f"add the MANO stage with `enrich lift {path}`, which rewrites it as schema_version {SCHEMA_VERSION}"
        )
    if int(version) not in (1, 2, SCHEMA_VERSION, ROBOT_SCHEMA_VERSION):
        raise FormatError(
            f"{path} has results schema_version {int(version)}; this enrich ({package_version()}) "
            f"reads schema_version {SCHEMA_VERSION} and {ROBOT_SCHEMA_VERSION}: use a matching enrich version"
        )


class WriterLock:
    """Advisory lock on ``<file>.lock``: one writer or recover per file; released by the kernel on kill."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UnwritableError(f"{path}: cannot write in its folder ({e.strerror}: {self.path})") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise WriterLockedError(f"{path} is being written by another process (lock {self.path})") from None
        except OSError:
            pass  # file system without flock (some network mounts): run unlocked rather than not at all

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)


def check_writable(path: Path) -> None:
    """Refuse to replace or append to a write-protected file (``chmod 444``), root or not."""
    if path.exists() and not path.stat().st_mode & 0o222:
        raise UnwritableError(f"{path} is write-protected (mode {path.stat().st_mode & 0o777:o}): not changing it")


def replace_keeping_mode(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``; a file replaced there leaves its permissions to the new one."""
    if out.exists():
        shutil.copymode(out, tmp)
    os.replace(tmp, out)


def root_attrs(config: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    provenance = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": now,
        "h5py": h5py.version.version,
        "hdf5": h5py.version.hdf5_version,
        **provenance,
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "package_version": package_version(),
        "config": json.dumps(config, sort_keys=True, default=str),
        "provenance": json.dumps(provenance, sort_keys=True, default=str),
        "created": now,
    }


def expand_rows(offsets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row indices ``offsets[k] .. offsets[k] + counts[k] - 1`` for every k, concatenated."""
    counts = counts.astype(np.int64)
    starts = offsets.astype(np.int64) - (np.cumsum(counts) - counts)
    return np.repeat(starts, counts) + np.arange(int(counts.sum()), dtype=np.int64)


def empty_column(column: Column) -> np.ndarray:
    return np.zeros((0, *column.row_shape), column.dtype)
