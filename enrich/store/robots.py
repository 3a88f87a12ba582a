"""Robot-hand row groups: ``/robots/<name>``, one row per retargeted hand-frame, added by ``enrich retarget``.

A group holds its robot's description as attributes (joint names and order, units, limits, model file and
sha256, the retargeting configuration) and per clip-table row the clip's rows (``clip_offset``,
``clip_count``), so it can be added to a finished file without touching ``/clips``. A file with robot groups
has ``schema_version`` 4 (see docs/format.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import h5py
import numpy as np

from enrich.constants import SIDES
from enrich.records import ClipResult, RobotTrack
from enrich.store.schema import HAND_CHUNK_ROWS, ROBOT_SCHEMA_VERSION, Column, create_column, expand_rows

ROBOTS_GROUP = "robots"
__all__ = ["ROBOT_SCHEMA_VERSION", "ROBOTS_GROUP", "RobotGroupReader", "RobotGroupWriter", "RobotModelInfo"]
N_FINGERS = 5


def robot_columns(dof: int) -> dict[str, Column]:
    """The row columns of a robot with ``dof`` joints."""
    f32 = np.dtype(np.float32)
    return {
        "side": Column(np.dtype(np.int8), units="index into SIDES"),
        "frame_index": Column(np.dtype(np.int32), units="0-based decoded frame (the MANO fit's rows)"),
        "angles_rad": Column(f32, (dof,), "rad, joint order of the group's joint_names, within its limits"),
        "residual_mm": Column(f32, units="mm, mean wrist->tip and thumb->tip vector error, robot scale"),
        "tip_error_mm": Column(f32, (N_FINGERS,), "mm, wrist->tip vector error per finger (NaN: none)"),
        "root_rotation": Column(f32, (3, 3), "palm frame -> camera frame (det -1: mirrored left hand)"),
        "root_position_m": Column(f32, (3,), "m, palm origin (at the human wrist), camera frame"),
        "scale": Column(f32, units="robot size / human size of the track"),
    }


@dataclass(frozen=True)
class RobotModelInfo:
    """What a robot group says about its robot (group attributes)."""

    name: str
    joint_names: tuple[str, ...]
    lower_rad: np.ndarray  # (DoF,)
    upper_rad: np.ndarray  # (DoF,)
    model_file: str
    sha256: str
    config: dict[str, Any]

    @property
    def dof(self) -> int:
        return len(self.joint_names)


def _write_info(group: h5py.Group, info: RobotModelInfo) -> None:
    group.attrs["robot"] = info.name
    group.attrs["joint_names"] = json.dumps(list(info.joint_names))
    group.attrs["units"] = "rad"
    group.attrs["lower_rad"] = np.asarray(info.lower_rad, np.float64)
    group.attrs["upper_rad"] = np.asarray(info.upper_rad, np.float64)
    group.attrs["model_file"] = info.model_file
    group.attrs["sha256"] = info.sha256
    group.attrs["config"] = json.dumps(info.config, sort_keys=True, default=str)
    group.attrs["sides"] = json.dumps(SIDES)


def read_info(group: h5py.Group) -> RobotModelInfo:
    a = group.attrs
    return RobotModelInfo(
        name=str(a["robot"]),
        joint_names=tuple(json.loads(a["joint_names"])),
        lower_rad=np.asarray(a["lower_rad"], np.float64),
        upper_rad=np.asarray(a["upper_rad"], np.float64),
        model_file=str(a["model_file"]),
        sha256=str(a["sha256"]),
        config=json.loads(a["config"]),
    )


def track_rows(rt: RobotTrack) -> dict[str, np.ndarray]:
    """One robot track as rows of its group."""
    n = len(rt)
    return {
        "side": np.full(n, SIDES.index(rt.side), np.int8),
        "frame_index": np.asarray(rt.frame_index, np.int32),
        "angles_rad": np.asarray(rt.angles_rad, np.float32),
        "residual_mm": np.asarray(rt.residual_mm, np.float32),
        "tip_error_mm": np.asarray(rt.tip_error_mm, np.float32),
        "root_rotation": np.asarray(rt.root_rotation, np.float32),
        "root_position_m": np.asarray(rt.root_position_m, np.float32),
        "scale": np.full(n, rt.scale, np.float32),
    }


def tracks_from_rows(rows: dict[str, np.ndarray], info: RobotModelInfo) -> dict[str, RobotTrack]:
    """A clip's rows of one robot group back as robot tracks, by side."""
    out = {}
    for index, side in enumerate(SIDES):
        mine = rows["side"] == index if rows else np.zeros(0, bool)
        if not mine.any():
            continue
        out[side] = RobotTrack(
            robot=info.name,
            side=side,
            joint_names=info.joint_names,
            frame_index=rows["frame_index"][mine],
            angles_rad=rows["angles_rad"][mine],
            residual_mm=rows["residual_mm"][mine],
            tip_error_mm=rows["tip_error_mm"][mine],
            root_rotation=rows["root_rotation"][mine],
            root_position_m=rows["root_position_m"][mine],
            scale=float(rows["scale"][mine][0]),
            mirrored=side == "left",
        )
    return out


class RobotGroupWriter:
    """Appends clips' robot rows to a new ``/robots/<name>`` group of an open (plain write) file.

    ``add(clip_row, tracks)`` in increasing clip-table rows; ``close()`` writes the per-clip offsets."""

    def __init__(self, f: h5py.File, info: RobotModelInfo, n_clip_rows: int, *, compressed: bool = True) -> None:
        self.group = f.require_group(ROBOTS_GROUP).create_group(info.name)
        _write_info(self.group, info)
        self.columns = robot_columns(info.dof)
        for name, column in self.columns.items():
            create_column(self.group, name, column, HAND_CHUNK_ROWS, compressed)
        self.group["side"].attrs["codes"] = json.dumps(SIDES)
        self.offsets = np.zeros(n_clip_rows, np.int64)
        self.counts = np.zeros(n_clip_rows, np.int32)
        self.n_rows = 0
        self._pending: list[dict[str, np.ndarray]] = []
        self._n_pending = 0

    def add(self, clip_row: int, tracks: list[RobotTrack]) -> None:
        rows = [track_rows(rt) for rt in sorted(tracks, key=lambda rt: SIDES.index(rt.side))]
        n = sum(len(r["side"]) for r in rows)
        self.offsets[clip_row] = self.n_rows + self._n_pending
        self.counts[clip_row] = n
        self._pending += rows
        self._n_pending += n
        if self._n_pending >= 16 * HAND_CHUNK_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        for name in self.columns:
            values = np.concatenate([r[name] for r in self._pending])
            ds = self.group[name]
            ds.resize(self.n_rows + len(values), axis=0)
            ds[self.n_rows :] = values
        self.n_rows += self._n_pending
        self._pending, self._n_pending = [], 0

    def close(self) -> None:
        self.flush()
        self.group.create_dataset("clip_offset", data=self.offsets, compression="gzip")
        self.group.create_dataset("clip_count", data=self.counts, compression="gzip")
        self.group["clip_offset"].attrs["units"] = f"row in /{ROBOTS_GROUP}/{self.group.name.rsplit('/', 1)[-1]}"
        self.group["clip_count"].attrs["units"] = "rows of the clip-table row"


@dataclass
class RobotGroupReader:
    """Read side of one robot group: its description, datasets and per-clip-row offsets."""

    info: RobotModelInfo
    datasets: dict[str, h5py.Dataset]
    offsets: np.ndarray  # (clip-table rows,) int64
    counts: np.ndarray  # (clip-table rows,) int64

    @classmethod
    def open_all(cls, f: h5py.File) -> dict[str, RobotGroupReader]:
        if ROBOTS_GROUP not in f:
            return {}
        out = {}
        for name, group in f[ROBOTS_GROUP].items():
            info = read_info(group)
            datasets = {col: group[col] for col in robot_columns(info.dof)}
            out[name] = cls(info, datasets, group["clip_offset"][:], group["clip_count"][:].astype(np.int64))
        return out

    def clip_tracks(self, clip_rows: np.ndarray) -> list[dict[str, RobotTrack]]:
        """Robot tracks of clip-table rows ``clip_rows`` (rows past the group's end have none), in one read."""
        inside = clip_rows < len(self.offsets)
        offsets = np.where(inside, self.offsets[np.minimum(clip_rows, len(self.offsets) - 1)], 0)
        counts = np.where(inside, self.counts[np.minimum(clip_rows, len(self.counts) - 1)], 0)
        if counts.sum() == 0:
            return [{} for _ in clip_rows]
        r_lo, r_hi = int(offsets[counts > 0].min()), int((offsets + counts).max())
        rows = {name: ds[r_lo:r_hi] for name, ds in self.datasets.items()}
        out = []
        for off, n in zip((offsets - r_lo).tolist(), counts.tolist(), strict=True):
            out.append(tracks_from_rows({k: v[off : off + n] for k, v in rows.items()}, self.info) if n else {})
        return out

    def n_rows(self) -> int:
        return int(expand_rows(self.offsets, self.counts).size)


def with_robots(result: ClipResult, robots: dict[str, dict[str, RobotTrack]]) -> ClipResult:
    """``result`` with robot tracks ({robot: {side: track}}) attached to its hands."""
    if result.tracks is None or not any(robots.values()):
        return result
    hands = {}
    for side, hand in result.tracks.hands.items():
        mine = {name: tracks[side] for name, tracks in robots.items() if side in tracks}
        hands[side] = replace(hand, robots={**hand.robots, **mine}) if mine else hand
    return replace(result, tracks=replace(result.tracks, hands=hands))
