"""Export a results file to per-clip NumPy archives and to Parquet tables of contacts, streaming clip by clip."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from enrich.constants import FINGER_NAMES, HAND_NAMES, SIDES
from enrich.errors import MissingDependencyError
from enrich.loading import ResultsSource, opened
from enrich.records import ClipResult
from enrich.store import CONTACT_COLUMNS, SEGMENT_COLUMNS

_FIT_FIELDS = ("global_orient", "hand_pose", "betas", "transl", "joints3d", "frame_index", "observed")
_ROBOT_FIELDS = ("frame_index", "angles_rad", "residual_mm", "tip_error_mm", "root_rotation", "root_position_m")
_PARQUET_BATCH_ROWS = 65536  # rows per Parquet row group: bounded memory on the full set


def clip_arrays(record: ClipResult) -> dict[str, np.ndarray]:
    """The arrays of one clip's archive: metadata scalars, then per detected side ``<side>_keypoints2d`` and
    ``<side>_keypoints2d_frame_index`` (2D track rows), where fitted ``<side>_<MANO field>`` (fit rows) and,
    where retargeted, ``<side>_robot_<name>_<field>`` (angles_rad (T, DoF), frame_index, residual_mm, ...) with
    ``<side>_robot_<name>_joint_names``."""
    arrays: dict[str, np.ndarray] = {
        "video_id": np.array(record.video_id),
        "class_id": np.array(record.meta.class_id, np.int64),
        "template": np.array(record.meta.template),  # unicode arrays load without allow_pickle
        "label": np.array(record.meta.label),
        "n_frames": np.array(record.n_frames, np.int64),
    }
    for side in SIDES:
        track = record.hands.get(side)
        if track is None:
            continue
        arrays[f"{side}_keypoints2d"] = track.keypoints2d
        arrays[f"{side}_keypoints2d_frame_index"] = track.frame_index
        if track.fit is not None:
            arrays.update({f"{side}_{name}": getattr(track.fit, name) for name in _FIT_FIELDS})
        for robot, rt in track.robots.items():
            arrays.update({f"{side}_robot_{robot}_{name}": getattr(rt, name) for name in _ROBOT_FIELDS})
            arrays[f"{side}_robot_{robot}_joint_names"] = np.array(rt.joint_names)
    return arrays


def export_npz(results: ResultsSource, out_dir: str | Path, *, compress: bool = False) -> int:
    """Write ``<video_id>.npz`` per clip (see :func:`clip_arrays`) into ``out_dir``; returns the number written.

    Failed clips are written too (metadata only), so the archives mirror the file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save = np.savez_compressed if compress else np.savez
    n = 0
    with opened(results) as records:
        for record in records:
            save(out / f"{record.video_id}.npz", **clip_arrays(record))
            n += 1
    return n


def _contact_rows(record: ClipResult, table: str) -> dict[str, np.ndarray] | None:
    """One clip's contact frames or segments as columns (hands named as in ``Results.contacts``)."""
    if record.contacts is None:
        return None
    source = record.contacts.frames if table == "contacts" else record.contacts.segments
    columns = CONTACT_COLUMNS if table == "contacts" else SEGMENT_COLUMNS
    values = {name: np.asarray(getattr(source, name)) for name in columns}
    n = len(values["hand"])
    if n == 0:
        return None
    values["hand"] = np.asarray(HAND_NAMES, dtype=object)[values["hand"].astype(np.int64)]
    return {"video_id": np.full(n, record.video_id, dtype=object), **values}


class _ParquetTable:
    """Appends column batches to one Parquet file, a row group per ``_PARQUET_BATCH_ROWS`` rows."""

    def __init__(self, path: Path, columns: dict[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        fields = [pa.field("video_id", pa.string())]
        for name, column in columns.items():
            if name == "hand":
                fields.append(pa.field(name, pa.string()))
            elif name == "in_contact":
                fields.append(pa.field(name, pa.bool_()))  # as Results.contacts gives it
            else:
                fields.append(pa.field(name, pa.from_numpy_dtype(column.dtype)))
        self.schema = pa.schema(fields)
        self._writer = pq.ParquetWriter(path, self.schema)
        self._pending: list[dict[str, np.ndarray]] = []
        self._n_pending = 0

    def add(self, rows: dict[str, np.ndarray]) -> None:
        self._pending.append(rows)
        self._n_pending += len(rows["video_id"])
        if self._n_pending >= _PARQUET_BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        arrays = [
            self._pa.array(np.concatenate([rows[f.name] for rows in self._pending]), type=f.type) for f in self.schema
        ]
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self.schema))
        self._pending, self._n_pending = [], 0

    def close(self) -> None:
        self.flush()
        self._writer.close()


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise MissingDependencyError("Parquet export needs pyarrow: pip install pyarrow") from None


def export_contacts_parquet(results: ResultsSource, out_dir: str | Path) -> dict[str, int]:
    """Write ``contacts.parquet`` and ``segments.parquet`` into ``out_dir``: every clip's rows of
    ``Results.contacts`` / ``Results.segments`` with a leading ``video_id`` column, in file order.

    Streams clip by clip; returns the row count per table. Needs pyarrow.
    """
    _require_pyarrow()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "contacts": _ParquetTable(out / "contacts.parquet", CONTACT_COLUMNS),
        "segments": _ParquetTable(out / "segments.parquet", SEGMENT_COLUMNS),
    }
    counts = dict.fromkeys(tables, 0)
    try:
        with opened(results) as records:
            _write_contacts(records, tables, counts)
    finally:
        for table in tables.values():
            table.close()
    return counts


def _write_contacts(records: Iterable[ClipResult], tables: dict[str, _ParquetTable], counts: dict[str, int]) -> None:
    for record in records:
        for name, table in tables.items():
            rows = _contact_rows(record, name)
            if rows is not None:
                table.add(rows)
                counts[name] += len(rows["video_id"])


def _robot_rows(record: ClipResult, robot: str) -> dict[str, np.ndarray] | None:
    """One clip's rows of a robot: video_id, hand, frame_index, residual_mm, per-finger tip errors, one column
    per joint (radians, named as the robot's joints)."""
    parts = []
    for side in SIDES:
        hand = record.hands.get(side)
        rt = hand.robots.get(robot) if hand is not None else None
        if rt is None or len(rt) == 0:
            continue
        n = len(rt)
        columns: dict[str, np.ndarray] = {
            "video_id": np.full(n, record.video_id, dtype=object),
            "hand": np.full(n, side, dtype=object),
            "frame_index": np.asarray(rt.frame_index, np.int32),
            "residual_mm": np.asarray(rt.residual_mm, np.float32),
        }
        tip_error_mm = rt.tip_error_mm.astype(np.float32)
        columns.update({f"{f}_tip_error_mm": tip_error_mm[:, k] for k, f in enumerate(FINGER_NAMES)})
        columns.update({name: rt.angles_rad[:, j].astype(np.float32) for j, name in enumerate(rt.joint_names)})
        parts.append(columns)
    if not parts:
        return None
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def export_robots_parquet(results: ResultsSource, out_dir: str | Path) -> dict[str, int]:
    """Write ``robot_<name>.parquet`` per robot retargeted into the results (``enrich retarget``): one row per
    (clip, hand, frame) with the joint angles as columns; returns the row count per robot. Needs pyarrow."""
    _require_pyarrow()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, _ParquetTable] = {}
    counts: dict[str, int] = {}
    try:
        with opened(results) as records:
            for record in records:
                names = {name for hand in record.hands.values() for name in hand.robots}
                for name in sorted(names):
                    rows = _robot_rows(record, name)
                    if rows is None:
                        continue
                    if name not in tables:  # columns from the first rows: the robot's joints
                        columns = {k: v for k, v in rows.items() if k != "video_id"}
                        tables[name], counts[name] = _ParquetTable(out / f"robot_{name}.parquet", columns), 0
                    tables[name].add(rows)
                    counts[name] += len(rows["video_id"])
    finally:
        for table in tables.values():
            table.close()
    return counts
