"""One HDF5 file per run: per-clip table plus per-hand-frame rows, columnar, kill safe.

Layout (see docs/format.md): ``/clips/<column>`` holds one row per clip in commit order, ``/hands/<column>``
one row per detected hand-frame; a clip's hand rows are contiguous (``hand_offset``, ``hand_count``),
sorted by side then frame.

Kill safety: the file is created complete (all datasets, all attributes) under a temporary name, moved into
place, then reopened directly in HDF5 SWMR-write mode. SWMR orders metadata writes so that the bytes on
disk always form a consistent file, which is what survives a SIGKILL. Each clip is appended as
hand rows -> clip columns -> flush -> ``status`` -> flush; a reader trusts only rows whose ``status`` is
non-zero (0 is the fill value of a row that was resized but never committed). A killed writer leaves the
superblock's "open for SWMR write" flag set, so plain ``h5py.File(path, "r")`` refuses the file;
:func:`open_results` falls back to a SWMR read and :func:`recover` rewrites a clean copy.

The file being written is uncompressed: in SWMR mode HDF5 never reuses the space of a rewritten compressed
chunk (a reader may still be reading it), so per-clip flushes of compressed chunks grew files about 5x.
Uncompressed chunks are rewritten in place, and the bytes of committed rows never change. A clean
:meth:`ResultsWriter.close` (and :func:`recover`) then copies the committed rows into a compressed file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import importlib.metadata
import json
import os
import socket
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from enrich.records import N_KEYPOINTS, ROI_SOURCES, SIDES, TRACK_ARRAYS, ClipMeta, ClipTracks, HandTrack2D, ManoTrack

SCHEMA_VERSION = 3  # 2 added the MANO lift (/mano rows, betas, focal length); 3 contacts and segments
N_BETAS = 10
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
_HAND_CHUNK_ROWS = 256  # 64 KiB of keypoints2d
_GZIP_LEVEL = 4
_READ_BLOCK_CLIPS = 1024  # clips per bulk read when iterating
_COPY_BLOCK_CLIPS = 8192  # clips per bulk copy in recover / compression
# add() got ~0.1 ms slower per 1000 commits on one open file (3 ms at the start, 10 ms after 60k clips)
_REOPEN_EVERY_COMMITS = 2000
_LIBVER = ("v110", "v110")  # SWMR needs the 1.10 format; capping it keeps files readable by HDF5 >= 1.10


def _utf8(n_bytes: int) -> np.dtype:
    return h5py.string_dtype("utf-8", n_bytes)


@dataclass(frozen=True)
class _Column:
    dtype: np.dtype
    row_shape: tuple[int, ...] = ()
    units: str = ""


CLIP_COLUMNS: dict[str, _Column] = {
    "video_id": _Column(_utf8(VIDEO_ID_BYTES)),
    "status": _Column(np.dtype(np.int8), units="0 uncommitted, 1 ok, 2 failed"),
    "n_frames": _Column(np.dtype(np.int32), units="frames"),
    "fps": _Column(np.dtype(np.float32), units="frames/s"),
    "width": _Column(np.dtype(np.int16), units="px"),
    "height": _Column(np.dtype(np.int16), units="px"),
    "hand_offset": _Column(np.dtype(np.int64), units="row in /hands"),
    "hand_count": _Column(np.dtype(np.int32), units="rows in /hands"),
    "mano_offset": _Column(np.dtype(np.int64), units="row in /mano"),
    "mano_count": _Column(np.dtype(np.int32), units="rows in /mano"),
    "betas": _Column(np.dtype(np.float32), (len(SIDES), N_BETAS), "MANO shape per side (left, right); 0 = none"),
    "focal_px": _Column(np.dtype(np.float32), units="px, pinhole focal length of the lift, centre = frame centre"),
    "contact_offset": _Column(np.dtype(np.int64), units="row in /contacts"),
    "contact_count": _Column(np.dtype(np.int32), units="rows in /contacts"),
    "segment_offset": _Column(np.dtype(np.int64), units="row in /segments"),
    "segment_count": _Column(np.dtype(np.int32), units="rows in /segments"),
    "match_offset": _Column(np.dtype(np.int64), units="row in /box_matches"),
    "match_count": _Column(np.dtype(np.int32), units="rows in /box_matches"),
    "class_id": _Column(np.dtype(np.int16), units="SSv2 class id, -1 unknown"),
    **{name: _Column(_utf8(n_bytes)) for name, n_bytes in TEXT_BYTES.items()},
}

HAND_COLUMNS: dict[str, _Column] = {
    "side": _Column(np.dtype(np.int8), units="index into SIDES"),
    "frame_index": _Column(np.dtype(np.int32), units="0-based decoded frame"),
    "keypoints2d": _Column(np.dtype(np.float32), (N_KEYPOINTS, 3), "x px, y px, relative z (x scale)"),
    "world_landmarks": _Column(np.dtype(np.float32), (N_KEYPOINTS, 3), "m"),
    "presence": _Column(np.dtype(np.float32), units="probability"),
    "handedness": _Column(np.dtype(np.float32), units="P(right hand)"),
    "roi_source": _Column(np.dtype(np.int8), units="index into ROI_SOURCES"),
    "roi": _Column(np.dtype(np.float32), (5,), "centre x px, centre y px, width px, height px, rotation rad"),
    "lift_status": _Column(np.dtype(np.int8), units="0 lifted, 1 dropped as inconsistent with its track, 2 split it"),
}

MANO_COLUMNS: dict[str, _Column] = {
    "side": _Column(np.dtype(np.int8), units="index into SIDES"),
    "frame_index": _Column(np.dtype(np.int32), units="0-based decoded frame"),
    "global_orient": _Column(np.dtype(np.float32), (3,), "axis-angle rad, camera frame"),
    "hand_pose": _Column(np.dtype(np.float32), (45,), "axis-angle rad per joint, relative to the flat hand"),
    "transl": _Column(np.dtype(np.float32), (3,), "m, camera frame (OpenCV axes)"),
    "joints3d": _Column(np.dtype(np.float32), (N_KEYPOINTS, 3), "m, camera frame, MediaPipe order"),
    "residual_2d_px": _Column(np.dtype(np.float32), units="px, -1 where unobserved"),
    "residual_3d_mm": _Column(np.dtype(np.float32), units="mm, -1 where unobserved"),
    "observed": _Column(np.dtype(np.int8), units="1 = the 2D stage saw the hand"),
    "interpolated": _Column(np.dtype(np.int8), units="1 = filled across a short gap"),
    "segment": _Column(np.dtype(np.int16), units="segment of the track (long gaps split it)"),
    "reliable": _Column(np.dtype(np.int8), units="1 = observed, confident and on the image (docs/format.md)"),
}
_MANO_FIELDS = tuple(name for name in MANO_COLUMNS if name != "side")

CONTACT_COLUMNS: dict[str, _Column] = {
    "frame_index": _Column(np.dtype(np.int32), units="0-based decoded frame"),
    "hand": _Column(np.dtype(np.int8), units="0 left, 1 right, 2 unknown (box-only)"),
    "object_slot": _Column(np.dtype(np.int16), units="Something-Else standard_category number"),
    "probability": _Column(np.dtype(np.float32), units="per-frame contact probability, before smoothing"),
    "in_contact": _Column(np.dtype(np.int8), units="1 = inside a contact segment"),
    "fingers": _Column(np.dtype(np.uint8), units="bit k: finger k (thumb..pinky) touches the box"),
    "evidence": _Column(np.dtype(np.uint8), units="bits: 1 keypoints, 2 box-only, 4 co-motion"),
    "min_tip_distance": _Column(np.dtype(np.float32), units="hand sizes, nearest fingertip to the box; NaN box-only"),
    "box_overlap": _Column(np.dtype(np.float32), units="share of the hand's extent inside the object box"),
    "gap_hand": _Column(np.dtype(np.float32), units="hand sizes, hand to object box gap (<0 overlap)"),
    "co_motion_logit": _Column(np.dtype(np.float32), units="co-motion log-likelihood ratio"),
}
SEGMENT_COLUMNS: dict[str, _Column] = {
    "hand": _Column(np.dtype(np.int8), units="0 left, 1 right, 2 unknown (box-only)"),
    "object_slot": _Column(np.dtype(np.int16), units="Something-Else standard_category number"),
    "start": _Column(np.dtype(np.int32), units="first frame, 0-based"),
    "end": _Column(np.dtype(np.int32), units="last frame, inclusive"),
    "fingers": _Column(np.dtype(np.uint8), units="OR of the segment's finger bits"),
}
MATCH_COLUMNS: dict[str, _Column] = {
    "frame_index": _Column(np.dtype(np.int32), units="0-based decoded frame with a Something-Else hand box"),
    "match": _Column(np.dtype(np.int8), units="0 left, 1 right, 2 no detected hand matched the box"),
}

# Per-frame row groups: group -> (columns, clip column of the first row, clip column of the row count)
ROW_GROUPS: dict[str, tuple[dict[str, _Column], str, str]] = {
    "hands": (HAND_COLUMNS, "hand_offset", "hand_count"),
    "mano": (MANO_COLUMNS, "mano_offset", "mano_count"),
    "contacts": (CONTACT_COLUMNS, "contact_offset", "contact_count"),
    "segments": (SEGMENT_COLUMNS, "segment_offset", "segment_count"),
    "box_matches": (MATCH_COLUMNS, "match_offset", "match_count"),
}


def _n_rows(rows: dict[str, np.ndarray]) -> int:
    return len(next(iter(rows.values())))


class FormatError(ValueError):
    """The file is not an enrich results file this version can read."""


class WriterLockedError(RuntimeError):
    """Another process is writing (or recovering) the same results file."""


def package_version() -> str:
    try:
        import enrich

        return str(enrich.__version__)  # type: ignore[attr-defined]
    except AttributeError:
        pass
    try:
        return importlib.metadata.version("enrich")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


# ----------------------------------------------------------------------------------------------- text


def fit_utf8(text: str, n_bytes: int) -> tuple[bytes, bool]:
    """UTF-8 bytes of ``text`` cut to at most ``n_bytes`` on a character boundary; True when cut."""
    raw = text.replace("\x00", "").encode("utf-8")  # NUL would end the fixed-length string early
    if len(raw) <= n_bytes:
        return raw, False
    return raw[:n_bytes].decode("utf-8", "ignore").encode("utf-8"), True


def _fit_placeholders(placeholders: tuple[str, ...], n_bytes: int) -> tuple[bytes, bool]:
    """JSON list that fits: drop trailing placeholders rather than store broken JSON."""
    items = list(placeholders)
    while True:
        raw = json.dumps(items, ensure_ascii=False).encode("utf-8")
        if len(raw) <= n_bytes:
            return raw, len(items) < len(placeholders)
        items.pop()


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# ----------------------------------------------------------------------------------------------- file


def _chunk_rows(column: _Column) -> int:
    row_bytes = column.dtype.itemsize * int(np.prod(column.row_shape, dtype=np.int64))
    return int(np.clip(_CLIP_CHUNK_BYTES // row_bytes, 32, _CLIP_CHUNK_ROWS_MAX))


def _filters(column: _Column) -> dict[str, Any]:
    """Compression of the final file: gzip, byte shuffle on numbers, a checksum per chunk."""
    return {
        "compression": "gzip",
        "compression_opts": _GZIP_LEVEL,
        "shuffle": column.dtype.kind != "S" and column.dtype.itemsize > 1,
        "fletcher32": True,
    }


def _create_column(group: h5py.Group, name: str, column: _Column, chunk_rows: int, compressed: bool) -> None:
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


def _create_file(path: Path, attrs: dict[str, Any], *, compressed: bool) -> None:
    """Create an empty results file with every dataset and attribute (SWMR cannot add them later).

    ``compressed=False`` for a file to append to (see the module docstring), True for a finished one.
    """
    with h5py.File(path, "w", libver=_LIBVER) as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        clips = f.create_group("clips")
        for name, column in CLIP_COLUMNS.items():
            _create_column(clips, name, column, _chunk_rows(column), compressed)
        clips["status"].attrs["codes"] = json.dumps(STATUS_NAMES)
        for group_name, (columns, _, _) in ROW_GROUPS.items():
            group = f.create_group(group_name)
            for name, column in columns.items():
                _create_column(group, name, column, _HAND_CHUNK_ROWS, compressed)
        for group_name in ("hands", "mano"):
            f[group_name]["side"].attrs["codes"] = json.dumps(SIDES)
        f["hands/roi_source"].attrs["codes"] = json.dumps(ROI_SOURCES)


def _open_swmr_write(path: Path) -> h5py.File:
    """Open straight into SWMR-write mode: there is never a moment with a plain write open on disk."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_V110)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDWR | h5py.h5f.ACC_SWMR_WRITE, fapl)
    return h5py.File(fid)


def _open_read(path: Path) -> h5py.File:
    """Plain read; a file left by a killed (or running) SWMR writer needs a SWMR read."""
    if not path.exists():
        raise FileNotFoundError(f"no results file at {path}")
    try:
        return h5py.File(path, "r")
    except OSError as plain_error:
        try:
            return h5py.File(path, "r", swmr=True)
        except OSError:
            raise plain_error from None


def _check_schema(f: h5py.File, path: Path, *, allow_2d_only: bool = False) -> None:
    version = f.attrs.get("schema_version")
    if version is None or "clips" not in f or "hands" not in f:
        raise FormatError(f"{path} is not an enrich results file (no schema_version attribute)")
    if int(version) == 1 and not allow_2d_only:
        raise FormatError(
            f"{path} has results schema_version 1 (2D tracks only, before the MANO lift); "
            f"add the MANO stage with `enrich lift {path}`, which rewrites it as schema_version {SCHEMA_VERSION}"
        )
    if int(version) not in (1, 2, SCHEMA_VERSION):
        raise FormatError(
            f"{path} has results schema_version {int(version)}; this enrich ({package_version()}) "
            f"reads schema_version {SCHEMA_VERSION}: use a matching enrich version"
        )


class _WriterLock:
    """Advisory lock on ``<file>.lock``: one writer or recover per file; released by the kernel on kill."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".lock")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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


def _root_attrs(config: dict[str, Any], provenance: dict[str, Any]) -> dict[str, Any]:
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


# ----------------------------------------------------------------------------------------------- write


def _clip_rows(video_id: str, tracks: ClipTracks | None) -> dict[str, dict[str, np.ndarray]]:
    """Rows of one clip per row group: hands and mano (sides in SIDES order, frames increasing), contacts."""
    hands = tracks.hands if tracks is not None else {}
    unknown = set(hands) - set(SIDES)
    if unknown:
        raise ValueError(f"clip {video_id}: hands keys {sorted(unknown)} not in {SIDES}")
    out = _contact_rows(tracks.contacts if tracks is not None else None)
    for group in ("hands", "mano"):
        columns = ROW_GROUPS[group][0]
        parts: dict[str, list[np.ndarray]] = {name: [_empty(column)] for name, column in columns.items()}
        for side_index, side in enumerate(SIDES):
            track = hands.get(side)
            arrays = _checked_track(video_id, side, track) if group == "hands" and track else None
            if group == "mano" and track is not None and track.fit is not None:
                arrays = _checked_fit(video_id, side, track.fit)
            if arrays:
                parts["side"].append(np.full(len(arrays["frame_index"]), side_index, np.int8))
                for name, values in arrays.items():
                    parts[name].append(values)
        out[group] = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    return out


def _contact_rows(contacts: Any) -> dict[str, dict[str, np.ndarray]]:
    """Rows of a clip's ContactResult in the contacts, segments and box_matches groups (empty when None)."""
    sources = {"contacts": None, "segments": None, "box_matches": None}
    if contacts is not None:
        frames = np.flatnonzero(contacts.hand_box_match >= 0).astype(np.int32)
        sources = {
            "contacts": contacts.frames,
            "segments": contacts.segments,
            "box_matches": {"frame_index": frames, "match": contacts.hand_box_match[frames]},
        }
    out = {}
    for group, source in sources.items():
        columns = ROW_GROUPS[group][0]
        if source is None:
            out[group] = {name: _empty(column) for name, column in columns.items()}
            continue
        get = source.get if isinstance(source, dict) else lambda name, s=source: getattr(s, name)
        out[group] = {name: np.asarray(get(name)).astype(column.dtype) for name, column in columns.items()}
    return out


def _empty(column: _Column) -> np.ndarray:
    return np.zeros((0, *column.row_shape), column.dtype)


def _checked_fit(video_id: str, side: str, fit: ManoTrack) -> dict[str, np.ndarray]:
    n = len(fit)
    arrays = {}
    for name in _MANO_FIELDS:
        column = MANO_COLUMNS[name]
        values = np.asarray(getattr(fit, name)).astype(column.dtype)
        if values.shape != (n, *column.row_shape):
            raise ValueError(
                f"clip {video_id} {side}: MANO {name} has shape {values.shape}, want {(n, *column.row_shape)}"
            )
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(f"clip {video_id} {side}: MANO {name} is not finite")
        arrays[name] = values
    return arrays


def _expand(offsets: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row indices ``offsets[k] .. offsets[k] + counts[k] - 1`` for every k, concatenated."""
    counts = counts.astype(np.int64)
    starts = offsets.astype(np.int64) - (np.cumsum(counts) - counts)
    return np.repeat(starts, counts) + np.arange(int(counts.sum()), dtype=np.int64)


def _checked_track(video_id: str, side: str, track: HandTrack2D) -> dict[str, np.ndarray]:
    if track.side != side:
        raise ValueError(f"clip {video_id}: track stored under {side!r} says side={track.side!r}")
    n = len(track)
    arrays = {}
    for name in TRACK_ARRAYS:
        column = HAND_COLUMNS[name]
        values = np.asarray(getattr(track, name), dtype=column.dtype)
        if values.shape != (n, *column.row_shape):
            raise ValueError(f"clip {video_id} {side}: {name} has shape {values.shape}, want {(n, *column.row_shape)}")
        arrays[name] = values
    if n > 1 and not np.all(np.diff(arrays["frame_index"]) > 0):
        raise ValueError(f"clip {video_id} {side}: frame_index is not strictly increasing")
    status = track.fit.detection_status if track.fit is not None else None
    arrays["lift_status"] = np.zeros(n, np.int8) if status is None else np.asarray(status, np.int8).reshape(n)
    return arrays


class ResultsWriter:
    """Appends clips to a new results file; every :meth:`add` is committed and flushed before it returns."""

    def __init__(self, path: str | os.PathLike[str], config: dict[str, Any], provenance: dict[str, Any]) -> None:
        self.path = Path(path)
        self._lock = _WriterLock(self.path)
        try:
            tmp = self.path.with_name(self.path.name + ".tmp")
            _create_file(tmp, _root_attrs(config, provenance), compressed=False)
            os.replace(tmp, self.path)  # a kill before this leaves any previous file untouched
            self._start(set(), 0, dict.fromkeys(ROW_GROUPS, 0))
        except BaseException:
            self._lock.release()
            raise

    @classmethod
    def resume(cls, path: str | os.PathLike[str], drop: Iterable[str] = ()) -> ResultsWriter:
        """Reopen a results file (finished or left by a killed run) to append more clips.

        Unless the file is already an uncompressed, cleanly closed one, its committed clips are first copied
        into a fresh uncompressed file (which takes a while for a big file). Clips whose ids are in ``drop``
        (ids not in the file are ignored) are removed first, with all their per-frame rows, in that same bulk
        copy, so they can be added again (``--retry-failed``). Config and provenance stay those of the
        original run; ``writer.video_ids`` lists the clips already in.
        """
        self = cls.__new__(cls)
        self.path = Path(path)
        self._lock = _WriterLock(self.path)
        try:
            drop = set(drop)
            if drop:
                with Results(self.path) as before:
                    drop.intersection_update(before.video_ids)
            if drop or not _can_append(self.path):
                _rewrite(self.path, self.path, compressed=False, drop=drop)
            with Results(self.path) as done:  # clean now: every row committed, no trailing rows
                n_rows = {group: next(iter(ds.values())).shape[0] for group, ds in done._groups.items()}
                ids, n_clips = set(done.video_ids), len(done)
            self._start(ids, n_clips, n_rows)
        except BaseException:
            self._lock.release()
            raise
        return self

    def _start(self, ids: set[str], n_clips: int, n_rows: dict[str, int]) -> None:
        self._ids = ids
        self._n_clips = n_clips
        self._n_rows = dict(n_rows)
        self._commits_since_open = 0
        self._open()

    def _open(self) -> None:
        self._file = _open_swmr_write(self.path)
        self._clips = {name: self._file["clips"][name] for name in CLIP_COLUMNS}
        self._groups = {g: {name: self._file[g][name] for name in cols} for g, (cols, _, _) in ROW_GROUPS.items()}

    def _reopen(self) -> None:
        """Close and reopen: HDF5's in-memory state grows with every commit and slows every flush down."""
        self._file.close()  # the file is clean and complete in between: nothing for a kill to break
        self._open()
        self._commits_since_open = 0

    @property
    def video_ids(self) -> set[str]:
        return set(self._ids)

    def __len__(self) -> int:
        return self._n_clips

    def add(
        self,
        meta: ClipMeta,
        tracks: ClipTracks | None,
        *,
        status: str = "ok",
        error: str = "",
        note: str = "",
        source: str = "",
    ) -> None:
        """Commit and flush one clip: "ok" with tracks, or "failed" with an error (tracks may be None)."""
        if status not in ("ok", "failed"):
            raise ValueError(f"clip {meta.video_id}: status must be 'ok' or 'failed', got {status!r}")
        if status == "ok" and tracks is None:
            raise ValueError(f"clip {meta.video_id}: an ok clip needs tracks")
        if tracks is not None and tracks.video_id != meta.video_id:
            raise ValueError(f"clip {meta.video_id}: tracks are for clip {tracks.video_id}")
        row = _clip_row(meta, tracks, error=error, note=note, source=source)
        rows = _clip_rows(meta.video_id, tracks)
        for group, (_, _, count) in ROW_GROUPS.items():
            row[count] = np.array([_n_rows(rows[group])], np.int32)
        code = STATUS_OK if status == "ok" else STATUS_FAILED
        self._append(row, rows, np.array([code], np.int8))

    def _append(self, clips: dict[str, np.ndarray], rows: dict[str, dict[str, np.ndarray]], status: np.ndarray) -> None:
        """Commit a block of clips: ``clips`` has every clip column but status and the row offsets.

        One clip per call from :meth:`add`; the benchmark calls it with many clips to build big files fast.
        """
        ids = [_decode(raw) for raw in clips["video_id"].tolist()]
        seen = self._ids.intersection(ids)
        if seen or len(set(ids)) != len(ids):
            raise ValueError(f"video ids already in {self.path}: {sorted(seen) or 'repeated within block'}")
        n_new = len(ids)
        clips = dict(clips)
        for group, (_, offset, count) in ROW_GROUPS.items():
            if int(clips[count].sum()) != _n_rows(rows[group]):
                raise ValueError(f"{count} does not add up to the {group} rows given")
            starts = np.concatenate([[0], np.cumsum(clips[count][:-1], dtype=np.int64)])
            clips[offset] = (self._n_rows[group] + starts).astype(np.int64)
        lo, hi = self._n_clips, self._n_clips + n_new
        for group, datasets in self._groups.items():  # 1. per-frame rows
            start, n_rows = self._n_rows[group], _n_rows(rows[group])
            for name, ds in datasets.items():
                if n_rows:
                    ds.resize(start + n_rows, axis=0)
                    ds[start:] = rows[group][name]
        for name, ds in self._clips.items():  # 2. clip columns; status resized to fill value 0 = uncommitted
            ds.resize(hi, axis=0)
            if name != "status":
                ds[lo:hi] = clips[name]
        self._file.flush()  # everything but status is on disk before status says "committed"
        self._clips["status"][lo:hi] = status  # 3. commit
        self._file.flush()
        self._ids.update(ids)
        self._n_clips = hi
        self._n_rows = {group: self._n_rows[group] + _n_rows(rows[group]) for group in ROW_GROUPS}
        self._commits_since_open += 1
        if self._commits_since_open >= _REOPEN_EVERY_COMMITS:
            self._reopen()

    def close(self, compress: bool = True) -> None:
        """Close; with ``compress``, also rewrite the file compressed (about 2x smaller, takes a while)."""
        if getattr(self, "_file", None) is None:
            return
        self._file.close()  # a clean close clears the SWMR flag: plain readers can open it again
        self._file = None
        try:
            if compress:
                _rewrite(self.path, self.path, compressed=True)
        finally:
            self._lock.release()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(compress=exc_type is None)  # after an error (Ctrl-C...) leave quickly; recover() compresses


def _clip_row(
    meta: ClipMeta, tracks: ClipTracks | None, *, error: str, note: str, source: str
) -> dict[str, np.ndarray]:
    """One-row arrays of every clip column except status, hand_offset and hand_count."""
    raw_id = meta.video_id.encode("utf-8")
    if not raw_id or len(raw_id) > VIDEO_ID_BYTES:
        raise ValueError(f"video id {meta.video_id!r} must be 1..{VIDEO_ID_BYTES} UTF-8 bytes")
    texts = {"error": error, "template": meta.template, "label": meta.label, "source": source}
    raw = {name: fit_utf8(text, TEXT_BYTES[name]) for name, text in texts.items()}
    raw["placeholders"] = _fit_placeholders(tuple(meta.placeholders), TEXT_BYTES["placeholders"])
    cut = [name for name, (_, was_cut) in raw.items() if was_cut]
    full_note = "; ".join(filter(None, [note, f"truncated: {', '.join(cut)}" if cut else ""]))
    raw["note"] = fit_utf8(full_note, TEXT_BYTES["note"])
    row = {"video_id": np.array([raw_id], CLIP_COLUMNS["video_id"].dtype)}
    row.update({name: np.array([value], CLIP_COLUMNS[name].dtype) for name, (value, _) in raw.items()})
    numbers: dict[str, float] = {"n_frames": 0, "fps": 0.0, "width": 0, "height": 0, "class_id": meta.class_id}
    numbers["focal_px"] = 0.0
    betas = np.zeros((1, len(SIDES), N_BETAS), np.float32)
    if tracks is not None:
        numbers.update(n_frames=tracks.n_frames, fps=tracks.fps, width=tracks.width, height=tracks.height)
        numbers["focal_px"] = tracks.focal_px
        for i, side in enumerate(SIDES):
            fit = tracks.hands[side].fit if side in tracks.hands else None
            if fit is not None:
                betas[0, i] = fit.betas
    row.update({name: np.array([value], CLIP_COLUMNS[name].dtype) for name, value in numbers.items()})
    row["betas"] = betas
    return row


# ----------------------------------------------------------------------------------------------- read


@dataclass
class ClipRecord:
    """One committed clip as stored."""

    video_id: str
    status: str  # "ok" or "failed"
    error: str
    note: str
    n_frames: int
    fps: float
    width: int
    height: int
    source: str
    meta: ClipMeta
    hands: dict[str, HandTrack2D]  # only the sides that were detected; ``.fit`` holds the MANO lift
    focal_px: float = 0.0  # pinhole focal length of the lift (principal point at the frame centre); 0: no lift
    contacts: Any = None  # enrich.contacts.ContactResult, or None when the clip had no contact stage

    @property
    def tracks(self) -> ClipTracks:
        return ClipTracks(
            self.video_id,
            self.n_frames,
            self.width,
            self.height,
            self.fps,
            dict(self.hands),
            self.focal_px,
            self.contacts,
        )


class Results:
    """Read access to a results file; opening reads only the video_id and status columns.

    The committed clips are those present at open (a running writer's later clips need a new open). Like any
    h5py handle, do not carry an open ``Results`` across ``fork()``: open one per process.
    """

    def __init__(self, path: str | os.PathLike[str], *, allow_2d_only: bool = False) -> None:
        self.path = Path(path)
        self._file = _open_read(self.path)
        try:
            _check_schema(self._file, self.path, allow_2d_only=allow_2d_only)
            present = [name for name in CLIP_COLUMNS if name in self._file["clips"]]  # schema 1 lacks the MANO ones
            self._clips = {name: self._file["clips"][name] for name in present}  # look up once
            self._groups = {
                g: {name: self._file[g][name] for name in cols}
                for g, (cols, _, _) in ROW_GROUPS.items()
                if g in self._file
            }
            status = self._clips["status"][:]
            n = min(len(status), self._clips["video_id"].shape[0])  # a kill can leave columns of unequal length
            self._rows = np.flatnonzero(status[:n] != STATUS_UNCOMMITTED)
            self._status = status[self._rows]
            raw_ids = self._clips["video_id"][:n][self._rows]
        except BaseException:
            self._file.close()
            raise
        self.video_ids: list[str] = [_decode(raw) for raw in raw_ids.tolist()]
        self._row_of = dict(zip(self.video_ids, self._rows.tolist(), strict=True))

    @property
    def attrs(self) -> dict[str, Any]:
        a = self._file.attrs
        return {
            "schema_version": int(a["schema_version"]),
            "package_version": str(a["package_version"]),
            "config": json.loads(a["config"]),
            "provenance": json.loads(a["provenance"]),
            "created": str(a["created"]),
        }

    def __len__(self) -> int:
        return len(self.video_ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._row_of

    def __getitem__(self, video_id: str) -> ClipRecord:
        row = self._row_of.get(video_id)
        if row is None:
            raise KeyError(f"video id {video_id!r} is not in {self.path}")
        return self._read_rows(row, row + 1)[0]

    def __iter__(self) -> Iterator[ClipRecord]:
        """Every committed clip in commit order, read in blocks."""
        rows = self._rows
        for start in range(0, len(rows), _READ_BLOCK_CLIPS):
            block = rows[start : start + _READ_BLOCK_CLIPS]
            yield from self._read_rows(int(block[0]), int(block[-1]) + 1)

    @property
    def failed(self) -> dict[str, str]:
        """video_id -> error of every failed clip."""
        rows = self._rows[self._status == STATUS_FAILED]
        if len(rows) == 0:
            return {}
        errors = self._clips["error"][rows[0] : rows[-1] + 1][rows - rows[0]]
        ids = np.asarray(self.video_ids, dtype=object)[self._status == STATUS_FAILED]
        return {vid: _decode(raw) for vid, raw in zip(ids.tolist(), errors.tolist(), strict=True)}

    def summary(self) -> dict[str, int]:
        """Counts over committed clips: clips, ok, failed, frames, hand_frames and per side."""
        ok = self._status == STATUS_OK
        n_frames = self._column("n_frames")
        offsets, counts = self._column("hand_offset"), self._column("hand_count").astype(np.int64)
        end = int((offsets + counts).max()) if len(counts) else 0
        side = self._groups["hands"]["side"][:end][_expand(offsets, counts)]
        clip_of_row = np.repeat(np.arange(len(counts)), counts)
        result = {
            "clips": len(self),
            "ok": int(ok.sum()),
            "failed": int((~ok).sum()),
            "frames": int(n_frames[ok].sum()),
            "hand_frames": int(counts.sum()),
            "clips_without_hands": int((counts[ok] == 0).sum()),
            "mano_frames": int(self._column("mano_count").sum()) if "mano_count" in self._clips else 0,
        }
        for index, name in enumerate(SIDES):
            mine = side == index
            result[f"hand_frames_{name}"] = int(mine.sum())
            result[f"clips_with_{name}"] = len(np.unique(clip_of_row[mine]))
        return result

    def _column(self, name: str) -> np.ndarray:
        """One clip column over committed rows (reads the column's whole extent)."""
        if len(self._rows) == 0:
            return np.zeros(0, CLIP_COLUMNS[name].dtype)
        return self._clips[name][: self._rows[-1] + 1][self._rows]

    def _read_rows(self, lo: int, hi: int) -> list[ClipRecord]:
        """Committed clips among clip-table rows [lo, hi), with their hand rows, in a few bulk reads."""
        cols = {name: ds[lo:hi] for name, ds in self._clips.items()}
        keep = np.flatnonzero(cols["status"] != STATUS_UNCOMMITTED)
        if len(keep) == 0:
            return []
        blocks = {group: self._block(group, cols, keep) for group in self._groups}
        records = []
        for k, i in enumerate(keep):
            per_group = {}
            for group, (rows, starts, counts) in blocks.items():
                start, n = int(starts[k]), int(counts[k])
                per_group[group] = {name: values[start : start + n] for name, values in rows.items()}
            records.append(_record({name: values[i] for name, values in cols.items()}, per_group))
        return records

    def _block(
        self, group: str, cols: dict[str, np.ndarray], keep: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """One bulk read of a row group for clips ``keep``: rows, each clip's start in them, and its count."""
        _, offset, count = ROW_GROUPS[group]
        offsets, counts = cols[offset][keep], cols[count][keep].astype(np.int64)
        r_lo, r_hi = int(offsets.min()), int((offsets + counts).max())
        rows = {name: ds[r_lo:r_hi] for name, ds in self._groups[group].items()} if r_hi > r_lo else {}
        return rows, offsets - r_lo, counts

    def contacts(self, video_id: str) -> pd.DataFrame:
        """Per (frame, hand, object slot) contact rows of one clip: frame_index, hand ("left", "right",
        "unknown" for box-only), object_slot, probability, in_contact, fingers (bitmask, thumb = bit 0),
        evidence (bitmask) and the per-cue columns."""
        result = self[video_id].contacts
        table = pd.DataFrame({name: getattr(result.frames, name) for name in CONTACT_COLUMNS}) if result else None
        return _named_hands(table if table is not None else pd.DataFrame(columns=list(CONTACT_COLUMNS)))

    def segments(self, video_id: str) -> pd.DataFrame:
        """Contact segments of one clip: hand, object_slot, start, end (inclusive frames), fingers (bitmask)."""
        result = self[video_id].contacts
        table = pd.DataFrame({name: getattr(result.segments, name) for name in SEGMENT_COLUMNS}) if result else None
        return _named_hands(table if table is not None else pd.DataFrame(columns=list(SEGMENT_COLUMNS)))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record(row: dict[str, Any], groups: dict[str, dict[str, np.ndarray]]) -> ClipRecord:
    video_id = _decode(row["video_id"])
    meta = ClipMeta(
        video_id=video_id,
        class_id=int(row["class_id"]),
        template=_decode(row["template"]),
        label=_decode(row["label"]),
        placeholders=tuple(json.loads(_decode(row["placeholders"]) or "[]")),
    )
    return ClipRecord(
        video_id=video_id,
        status=STATUS_NAMES[int(row["status"])],
        error=_decode(row["error"]),
        note=_decode(row["note"]),
        n_frames=int(row["n_frames"]),
        fps=float(row["fps"]),
        width=int(row["width"]),
        height=int(row["height"]),
        source=_decode(row["source"]),
        meta=meta,
        focal_px=float(row.get("focal_px", 0.0)),
        hands=_tracks(groups["hands"], groups.get("mano", {}), row.get("betas")),
        contacts=_contacts(groups, int(row["n_frames"])) if "contacts" in groups else None,
    )


HAND_NAMES: tuple[str, str, str] = ("left", "right", "unknown")  # contact ``hand`` codes


def _named_hands(table: pd.DataFrame) -> pd.DataFrame:
    table["hand"] = [HAND_NAMES[int(h)] for h in table["hand"]]
    return table


def _contacts(groups: dict[str, dict[str, np.ndarray]], n_frames: int) -> Any:
    from enrich.contacts import ContactFrames, ContactResult, ContactSegments

    frames = {name: values for name, values in groups["contacts"].items()} or {
        name: _empty(column) for name, column in CONTACT_COLUMNS.items()
    }
    frames["in_contact"] = frames["in_contact"] > 0
    segments = groups["segments"] or {name: _empty(column) for name, column in SEGMENT_COLUMNS.items()}
    match = np.full(n_frames, -1, np.int8)
    if groups["box_matches"]:
        inside = groups["box_matches"]["frame_index"] < n_frames
        match[groups["box_matches"]["frame_index"][inside]] = groups["box_matches"]["match"][inside]
    return ContactResult(ContactFrames(**frames), ContactSegments(**segments), match)


def _tracks(
    hands: dict[str, np.ndarray], mano: dict[str, np.ndarray], betas: np.ndarray | None
) -> dict[str, HandTrack2D]:
    tracks = {}
    for index, side in enumerate(SIDES):
        mine = hands["side"] == index if hands else np.zeros(0, bool)
        if not mine.any():
            continue
        fitted = mano["side"] == index if mano else np.zeros(0, bool)
        fit = None
        if fitted.any():
            values = {name: mano[name][fitted] for name in _MANO_FIELDS if name in mano}  # older files: no reliable
            for flag in ("observed", "interpolated", "reliable"):
                values[flag] = values[flag] > 0 if flag in values else None
            status = hands["lift_status"][mine] if "lift_status" in hands else None
            fit = ManoTrack(side=side, betas=np.asarray(betas[index]), detection_status=status, **values)
        tracks[side] = HandTrack2D(side=side, **{name: hands[name][mine] for name in TRACK_ARRAYS}, fit=fit)
    return tracks


def open_results(path: str | os.PathLike[str]) -> Results:
    """Open a results file, including one left by a killed or still-running writer."""
    return Results(path)


# ----------------------------------------------------------------------------------------------- recover


def _can_append(path: Path) -> bool:
    """Closed cleanly, uncompressed and holding no uncommitted rows: can be appended to as is."""
    try:
        f = h5py.File(path, "r")
    except OSError:
        return False
    with f:
        _check_schema(f, path)
        if int(f.attrs["schema_version"]) != SCHEMA_VERSION or f["hands/keypoints2d"].compression is not None:
            return False
        status = f["clips/status"][:]
        lengths = {f["clips"][name].shape[0] for name in CLIP_COLUMNS}
        if lengths != {len(status)} or not np.all(status != STATUS_UNCOMMITTED):
            return False
        for group, (columns, offset, count) in ROW_GROUPS.items():
            row_lengths = {f[group][name].shape[0] for name in columns}
            end = int(f["clips"][offset][-1] + f["clips"][count][-1]) if len(status) else 0
            if row_lengths != {end}:
                return False
        return True


def recover(path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None) -> int:
    """Copy the committed clips of ``path`` into a clean, compressed file at ``out_path`` (default: ``path``).

    The copy is built under a temporary name and moved into place with ``os.replace``, so a kill during
    recovery leaves the original untouched. Refuses (:class:`WriterLockedError`) while a writer is running.
    Returns the number of clips kept.
    """
    path = Path(path)
    out = Path(out_path) if out_path is not None else path
    lock = _WriterLock(path)
    try:
        return _rewrite(path, out, compressed=True)
    finally:
        lock.release()


def _rewrite(path: Path, out: Path, *, compressed: bool, drop: Collection[str] = ()) -> int:
    """Copy the committed rows of ``path`` (less the clips whose ids are in ``drop``) into a new file, then
    atomically put it at ``out``. Returns the number of clips copied."""
    tmp = out.with_name(out.name + ".rewrite.tmp")
    try:
        with Results(path) as src:
            rows = src._rows
            if drop:
                rows = rows[~np.isin(np.asarray(src.video_ids, dtype=object), list(drop))]
            _create_file(tmp, dict(src._file.attrs), compressed=compressed)
            with h5py.File(tmp, "r+") as dst:
                _copy_rows(src, dst, rows, dict.fromkeys(ROW_GROUPS, 0))
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # only left when the copy failed
    return len(rows)


def _copy_rows(src: Results, dst: h5py.File, rows: np.ndarray, n_rows: dict[str, int]) -> dict[str, int]:
    """Append clip rows ``rows`` (increasing) of ``src`` and their per-frame rows to ``dst`` in bulk blocks;
    ``n_rows`` are ``dst``'s row counts per group before, the counts after are returned."""
    for start in range(0, len(rows), _COPY_BLOCK_CLIPS):
        n_rows = _copy_block(src, dst, rows[start : start + _COPY_BLOCK_CLIPS], n_rows)
    return n_rows


def _copy_block(src: Results, dst: h5py.File, rows: np.ndarray, n_rows: dict[str, int]) -> dict[str, int]:
    """Append clip rows ``rows`` (increasing) and their per-frame rows to ``dst``; returns its row counts."""
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    cols = {name: ds[lo:hi][rows - lo] for name, ds in src._clips.items()}
    for name, column in CLIP_COLUMNS.items():  # columns an older schema lacks start empty
        cols.setdefault(name, np.zeros((len(rows), *column.row_shape), column.dtype))
    out = dict(n_rows)
    for group, (_, offset, count) in ROW_GROUPS.items():
        counts = cols[count].astype(np.int64) if group in src._groups else np.zeros(len(rows), np.int64)
        take = _expand(cols[offset], counts)
        cols[offset] = n_rows[group] + np.concatenate([[0], np.cumsum(counts[:-1])]).astype(np.int64)
        if len(take):
            r_lo, r_hi = int(take.min()), int(take.max()) + 1
            values = {name: ds[r_lo:r_hi][take - r_lo] for name, ds in src._groups[group].items()}
            _append_rows(dst[group], values, n_rows[group])
        out[group] = n_rows[group] + len(take)
    _append_rows(dst["clips"], cols, dst["clips/status"].shape[0])
    return out


def _append_rows(group: h5py.Group, columns: dict[str, np.ndarray], start: int) -> None:
    for name, values in columns.items():
        group[name].resize(start + len(values), axis=0)
        group[name][start:] = values


# ----------------------------------------------------------------------------------------------- merge


def merge(out_path: str | os.PathLike[str], shard_paths: Sequence[str | os.PathLike[str]]) -> int:
    """Combine shard files (each a results file of ``enrich run --shard i/N``) into one new compressed file.

    Clips keep their order (shard by shard, commit order within a shard); arrays are copied in bulk blocks and
    the per-frame offsets rebased. A shard left by a killed run contributes its committed clips. The shards
    must share ``schema_version`` and ``config`` and hold disjoint video ids, else :class:`FormatError` /
    ``ValueError`` names the files. The merged file's provenance lists the shard paths (``shards``) and, per
    shard, its provenance, creation time, package version and clip count (``shard_provenance``). Built under
    ``<out>.merge.tmp`` and moved into place with ``os.replace``; returns the number of clips.
    """
    out = Path(out_path)
    paths = [Path(p) for p in shard_paths]
    if not paths:
        raise ValueError(f"merge into {out}: no shard files given")
    resolved = [p.resolve() for p in paths]
    twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if twice:
        raise ValueError(f"merge into {out}: shard files listed more than once: {', '.join(twice)}")
    if out.resolve() in resolved:
        raise ValueError(f"merge into {out}: the output is one of the shards; write to a new file")
    with contextlib.ExitStack() as stack:
        out_lock = _WriterLock(out)
        stack.callback(out_lock.release)
        for path in paths:
            lock = _shard_lock(path)  # refuses a shard whose run is still writing
            if lock is not None:
                stack.callback(lock.release)
        shards = [stack.enter_context(Results(path)) for path in paths]
        attrs = _merged_attrs(shards)
        _check_disjoint(shards)
        tmp = out.with_name(out.name + ".merge.tmp")
        try:
            _create_file(tmp, attrs, compressed=True)
            with h5py.File(tmp, "r+") as dst:
                n_rows = dict.fromkeys(ROW_GROUPS, 0)
                for src in shards:
                    n_rows = _copy_rows(src, dst, src._rows, n_rows)
            os.replace(tmp, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()  # only left when the merge failed
        return sum(len(src) for src in shards)


def _shard_lock(path: Path) -> _WriterLock | None:
    """The shard's writer lock (none where its folder is read-only); refuses a shard being written."""
    if not path.exists():
        raise FileNotFoundError(f"no results file at {path}")
    try:
        return _WriterLock(path)
    except WriterLockedError:
        raise WriterLockedError(f"cannot merge {path}: its run is still writing it (lock {path}.lock)") from None
    except OSError:
        return None


def _merged_attrs(shards: list[Results]) -> dict[str, Any]:
    """Root attributes of the merged file; refuses shards of different schema versions or configurations."""
    first = shards[0]
    versions = {int(src._file.attrs["schema_version"]) for src in shards}
    if len(versions) > 1:
        listed = ", ".join(f"{src.path} {int(src._file.attrs['schema_version'])}" for src in shards)
        raise FormatError(f"cannot merge shards of different schema_version: {listed}")
    config = json.loads(first._file.attrs["config"])
    for src in shards[1:]:
        other = json.loads(src._file.attrs["config"])
        if other != config:
            changed = sorted(k for k in set(config) | set(other) if config.get(k) != other.get(k))
            raise ValueError(
                f"cannot merge {src.path} with {first.path}: their configuration differs in {', '.join(changed)}"
            )
    shard_info = [
        {
            "path": str(src.path.resolve()),
            "clips": len(src),
            "created": str(src._file.attrs["created"]),
            "package_version": str(src._file.attrs["package_version"]),
            "provenance": json.loads(src._file.attrs["provenance"]),
        }
        for src in shards
    ]
    attrs = _root_attrs({}, {"shards": [info["path"] for info in shard_info], "shard_provenance": shard_info})
    attrs["schema_version"] = versions.pop()
    attrs["config"] = str(first._file.attrs["config"])  # as stored, byte for byte
    package_versions = {info["package_version"] for info in shard_info}
    if len(package_versions) == 1:  # the code that computed the results; else the merging one's
        attrs["package_version"] = package_versions.pop()
    return attrs


def _check_disjoint(shards: list[Results]) -> None:
    """Refuse video ids present in more than one shard, naming a few and their files."""
    ids = np.concatenate([np.asarray(src.video_ids, dtype=object) for src in shards])
    owner = np.repeat(np.arange(len(shards)), [len(src) for src in shards])
    unique, counts = np.unique(ids, return_counts=True) if len(ids) else (ids, np.zeros(0, int))
    repeated = unique[counts > 1]
    if len(repeated) == 0:
        return
    shown = []
    for vid in repeated[:3].tolist():
        files = ", ".join(str(shards[k].path) for k in owner[ids == vid].tolist())
        shown.append(f"{vid} ({files})")
    more = f" and {len(repeated) - 3} more" if len(repeated) > 3 else ""
    raise ValueError(f"cannot merge: {len(repeated)} video ids are in more than one shard: {'; '.join(shown)}{more}")
