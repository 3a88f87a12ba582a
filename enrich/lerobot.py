"""Export robot hand tracks as a LeRobot dataset (format v3.0, as ``lerobot.datasets.LeRobotDataset`` reads it).

One episode per (clip, hand track with a robot track): its frames are the track's fitted frames, in order.

- ``observation.images.camera``: the clip's frames at those indices, letterboxed into 432x240 (SSv2 clips
  are 240 px high and of several widths), one H.264 mp4 per episode
  (``videos/observation.images.camera/chunk-CCC/file-FFF.mp4``);
- ``observation.state``: the robot's joint angles (rad), then the wrist pose in the camera frame: the palm
  origin (m) and the first two columns of the palm -> camera rotation (6D rotation). A left hand drives the
  mirror image of the (right-hand) robot: its third axis is -(x × y), the episode's ``hand`` says so;
- ``action``: the state of the next frame of the episode (the pose to move to; the last frame repeats its own);
- ``observation.contact``: per frame, whether the hand is in contact with an object (inside a contact
  segment), the highest per-frame contact probability over the objects, and which fingers touch (0/1 each);
- ``clip_frame_index``: the frame of the clip (frames with no fit are not in the episode: gaps show here);
- ``task``: the SSv2 template with its placeholders filled ("Pushing pen from left to right").

Tables: ``data/chunk-CCC/file-FFF.parquet`` (frames) and ``meta/episodes/chunk-CCC/file-FFF.parquet``, written
as the clips come and rolled over into the next file at ``data_file_mb`` as LeRobot does (the file index runs
into the next chunk folder after 1000 files), ``meta/tasks.parquet``, ``meta/info.json``, ``meta/stats.json``
(aggregated from the episodes' statistics, as LeRobot aggregates them). Memory stays bounded at any dataset
size: one clip's frames, the write buffers and the task list. Needs pyarrow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from enrich.constants import FINGER_NAMES, SIDES
from enrich.errors import ClipError, LeRobotExportError
from enrich.loading import ResultsSource, opened
from enrich.records import ClipMeta, ClipResult, ClipSource, RobotTrack
from enrich.robot import RobotHand, load_robot, retarget_track

CODEBASE_VERSION = "v3.0"
CHUNK_SIZE = 1000  # files per chunk folder, as LeRobot writes them
VIDEO_KEY = "observation.images.camera"
VIDEO_CODEC = "libx264"  # LeRobot decodes H.264 (and AV1, HEVC) with PyAV or torchcodec
WRIST_NAMES = ("wrist_x_m", "wrist_y_m", "wrist_z_m", "wrist_r11", "wrist_r21", "wrist_r31", "wrist_r12", "wrist_r22",
               "wrist_r32")  # fmt: skip
CONTACT_NAMES = ("in_contact", "probability", *(f"{f}_touches" for f in FINGER_NAMES))
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
FRAME_SIZE = (240, 432)  # (height, width) of the dataset's frames: SSv2 clips, 240 px high, letterboxed into it
DATA_FILE_MB = 100  # LeRobot's default data_files_size_in_mb: a parquet file is closed before it grows past this
BUFFER_ROWS = 20_000  # rows gathered before they go to the parquet file as one row group



def task_text(meta: ClipMeta) -> str:
    """The SSv2 template with its placeholders filled in order ("Pushing [something] from left to right" +
    ["pen"] -> "Pushing pen from left to right"); the label where there is no template."""
    if not meta.template:
        return meta.label[:1].upper() + meta.label[1:]
    parts = iter(meta.placeholders)
    return re.sub(r"\[[^\]]*\]", lambda m: next(parts, m.group(0)), meta.template)


def wrist_state(rt: RobotTrack) -> np.ndarray:
    """(T, 9) palm origin (m) and the first two columns of the palm -> camera rotation, camera frame."""
    rot = np.asarray(rt.root_rotation, np.float32)
    return np.concatenate([rt.root_position_m, rot[:, :, 0], rot[:, :, 1]], axis=1).astype(np.float32)


def contact_features(record: ClipResult, side: str, frame_index: np.ndarray) -> np.ndarray:
    """(T, 7) per frame of the track: in contact (0/1), highest contact probability, fingers touching (0/1)."""
    out = np.zeros((len(frame_index), len(CONTACT_NAMES)), np.float32)
    if record.contacts is None:
        return out
    rows = record.contacts.frames
    mine = np.asarray(rows.hand) == SIDES.index(side)
    slot = {int(f): i for i, f in enumerate(frame_index)}
    for f, p, c, bits in zip(rows.frame_index[mine], rows.probability[mine], rows.in_contact[mine],
                             rows.fingers[mine], strict=True):  # fmt: skip
        i = slot.get(int(f))
        if i is None:
            continue
        out[i, 0] = max(out[i, 0], float(c))
        out[i, 1] = max(out[i, 1], float(p))
        for k in range(len(FINGER_NAMES)):
            out[i, 2 + k] = max(out[i, 2 + k], float((int(bits) >> k) & 1))
    return out


def _read_frames(record: ClipResult) -> np.ndarray:
    from enrich.inputs import read_clip

    path = Path(record.source)
    if not record.source or not path.exists():
        raise ClipError(record.video_id, f"no pixels found at {record.source or '(no stored source)'}")
    clip = read_clip(
        ClipSource(record.video_id, str(path), "frames" if path.is_dir() else "video"), frames_fps=record.fps
    )
    return clip.frames_rgb


def letterbox(frames_rgb: np.ndarray, size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """Frames scaled to fit ``size`` (height, width), aspect kept, centred on black: one frame size for
    the whole dataset (SSv2 clips differ in width), as training code batches them."""
    import cv2

    h, w = frames_rgb.shape[1:3]
    scale = min(size[0] / h, size[1] / w)
    nh, nw = min(size[0], round(h * scale)), min(size[1], round(w * scale))
    out = np.zeros((len(frames_rgb), *size, 3), np.uint8)
    top, left = (size[0] - nh) // 2, (size[1] - nw) // 2
    for i, rgb in enumerate(frames_rgb):
        out[i, top : top + nh, left : left + nw] = rgb if (nh, nw) == (h, w) else cv2.resize(rgb, (nw, nh))
    return out


def _write_video(frames_rgb: np.ndarray, path: Path, fps: float) -> None:
    """H.264 mp4, yuv420p, a key frame every 2 frames as LeRobot's encoder sets for fast seeking."""
    from fractions import Fraction

    import av

    h, w = frames_rgb.shape[1:3]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(VIDEO_CODEC, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"g": "2", "crf": "23", "preset": "veryfast"}
        for rgb in frames_rgb:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        out.mux(stream.encode())


def _stats_of(v: np.ndarray) -> dict[str, Any]:
    """min, max, mean, std, count and quantiles per dimension of v (N, D), as LeRobot keeps them."""
    out = {"min": v.min(0), "max": v.max(0), "mean": v.mean(0), "std": v.std(0), "count": [len(v)]}
    out.update({f"q{round(q * 100):02d}": np.quantile(v, q, axis=0) for q in QUANTILES})
    return {k: np.asarray(x).tolist() for k, x in out.items()}


class _StatsSum:
    """Dataset statistics aggregated from the episodes' as LeRobot's ``aggregate_stats`` does (count-weighted
    mean, pooled variance, min of mins, max of maxes, count-weighted quantiles), in O(features) memory."""

    def __init__(self) -> None:
        self.acc: dict[str, dict[str, Any]] = {}

    def add(self, name: str, stats: dict[str, Any]) -> None:
        n = float(stats["count"][0])
        mean, std = np.asarray(stats["mean"]), np.asarray(stats["std"])
        parts = {"n": n, "sum": mean * n, "sq": (std**2 + mean**2) * n, "min": np.asarray(stats["min"]),
                 "max": np.asarray(stats["max"])}  # fmt: skip
        parts.update({k: np.asarray(v) * n for k, v in stats.items() if k[0] == "q" and k[1:].isdigit()})
        acc = self.acc.setdefault(name, {k: (np.inf if k == "min" else -np.inf if k == "max" else 0.0) for k in parts})
        for k, v in parts.items():
            acc[k] = np.minimum(acc[k], v) if k == "min" else np.maximum(acc[k], v) if k == "max" else acc[k] + v

    def result(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, a in self.acc.items():
            mean = a["sum"] / a["n"]
            std = np.sqrt(np.maximum(a["sq"] / a["n"] - mean**2, 0.0))
            stats = {"min": a["min"], "max": a["max"], "mean": mean, "std": std}
            stats.update({k: v / a["n"] for k, v in a.items() if k[0] == "q"})
            out[name] = {k: np.asarray(v).tolist() for k, v in stats.items()} | {"count": [int(a["n"])]}
        return out


class _RollingParquet:
    """Tables appended to ``<root>/<folder>/chunk-CCC/file-FFF.parquet``: gathered into row groups of
    BUFFER_ROWS, a new file where the current one would pass ``max_mb`` (LeRobot's rule, on the tables' arrow
    size, which is above their compressed size on disk), the file index running into the next chunk folder
    after CHUNK_SIZE files. What it holds: the buffer."""

    def __init__(self, root: Path, folder: str, max_mb: float) -> None:
        self.root, self.folder, self.max_bytes = root, folder, max_mb * 2**20
        self.chunk = self.file = self.file_bytes = 0
        self.buffer: list[Any] = []
        self.schema: Any = None
        self.writer: Any = None

    def place(self, nbytes: int) -> tuple[int, int]:
        """The (chunk, file) that rows of this many bytes go to, starting the next file where they would not fit."""
        if self.file_bytes and self.file_bytes + nbytes >= self.max_bytes:
            self.close()
            self.chunk, self.file = divmod(self.chunk * CHUNK_SIZE + self.file + 1, CHUNK_SIZE)
            self.file_bytes = 0
        return self.chunk, self.file

    def append(self, table: Any) -> None:
        self.schema = self.schema or table.schema
        self.buffer.append(table.cast(self.schema))
        self.file_bytes += table.nbytes
        if sum(t.num_rows for t in self.buffer) >= BUFFER_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.buffer:
            return
        if self.writer is None:
            path = self.root / f"{self.folder}/chunk-{self.chunk:03d}/file-{self.file:03d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(path, self.schema, compression="snappy")
        self.writer.write_table(pa.concat_tables(self.buffer))
        self.buffer = []

    def close(self) -> None:
        self._flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _image_stats(frames_rgb: np.ndarray) -> dict[str, Any]:
    """Per-channel statistics of the frames in [0, 1], shaped (3, 1, 1) as LeRobot keeps image stats."""
    px = frames_rgb[:: max(1, len(frames_rgb) // 20)].reshape(-1, 3).astype(np.float64) / 255.0
    stats = _stats_of(px)
    return {k: (np.asarray(v)[:, None, None].tolist() if k != "count" else [len(frames_rgb)]) for k, v in stats.items()}


def _features(robot: RobotHand, height: int, width: int, fps: float) -> dict[str, Any]:
    state_names = [*robot.joint_names, *WRIST_NAMES]
    vec = {"dtype": "float32", "shape": [len(state_names)], "names": state_names}
    scalar = {"shape": [1], "names": None}
    return {
        VIDEO_KEY: {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": height,
                "video.width": width,
                "video.codec": "h264",
                "video.pix_fmt": "yuv420p",
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        },  # fmt: skip
        "observation.state": dict(vec),
        "action": dict(vec),
        "observation.contact": {"dtype": "float32", "shape": [len(CONTACT_NAMES)], "names": list(CONTACT_NAMES)},
        "clip_frame_index": {"dtype": "int64", **scalar},
        "timestamp": {"dtype": "float32", **scalar},
        "frame_index": {"dtype": "int64", **scalar},
        "episode_index": {"dtype": "int64", **scalar},
        "index": {"dtype": "int64", **scalar},
        "task_index": {"dtype": "int64", **scalar},
    }


def _episode(record: ClipResult, side: str, rt: RobotTrack, frames_rgb: np.ndarray, ep: int, start: int,
             task: int) -> dict[str, np.ndarray]:  # fmt: skip
    """The frame rows of one episode."""
    n = len(rt)
    state = np.concatenate([rt.angles_rad.astype(np.float32), wrist_state(rt)], axis=1)
    action = np.concatenate([state[1:], state[-1:]])
    return {
        "observation.state": state,
        "action": action,
        "observation.contact": contact_features(record, side, rt.frame_index),
        "clip_frame_index": np.asarray(rt.frame_index, np.int64),
        "timestamp": (np.arange(n) / record.fps).astype(np.float32),
        "frame_index": np.arange(n, dtype=np.int64),
        "episode_index": np.full(n, ep, np.int64),
        "index": np.arange(start, start + n, dtype=np.int64),
        "task_index": np.full(n, task, np.int64),
    }


def _robot_track(record: ClipResult, side: str, robot: RobotHand) -> RobotTrack | None:
    """The stored robot track (``enrich retarget``), else retargeted here; None where the hand has no fit."""
    hand = record.hands.get(side)
    if hand is None or hand.fit is None or len(hand.fit) == 0:
        return None
    return hand.robots.get(robot.name) or retarget_track(hand.fit, robot)


def _table(columns: dict[str, np.ndarray]) -> Any:
    import pyarrow as pa

    arrays = {}
    for name, v in columns.items():
        if v.ndim == 2:  # fixed-size vectors: lists of float32, as LeRobot writes them
            arrays[name] = pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), v.shape[1]).cast(
                pa.list_(pa.from_numpy_dtype(v.dtype))
            )
        else:
            arrays[name] = pa.array(v)
    return pa.table(arrays)


def export_lerobot(
    results: ResultsSource,
    out_dir: str | Path,
    robot: str | RobotHand = "shadow",
    progress: Callable[[ClipResult], None] | None = None,
    skipped: list[str] | None = None,
    data_file_mb: float = DATA_FILE_MB,
) -> dict[str, int]:
    """Write one LeRobot v3.0 dataset of ``robot`` into ``out_dir`` (empty or new), clip by clip; returns its
    counts.

    A clip whose pixels cannot be read is left out with a one-line reason in ``skipped`` (raised without it).
    """
    robot = load_robot(robot) if isinstance(robot, str) else robot
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise LeRobotExportError(f"LeRobot export: {out} is not empty")
    tasks: dict[str, int] = {}
    data, meta = _RollingParquet(out, "data", data_file_mb), _RollingParquet(out, "meta/episodes", data_file_mb)
    stats = _StatsSum()
    n_episodes = n_frames = 0
    fps = None
    try:
        with opened(results) as records:
            for record in records:
                if progress is not None:
                    progress(record)
                tracks = _tracks(record, robot)
                if not tracks:
                    continue
                fps = fps or record.fps
                frames = _clip_frames(record, fps, skipped)
                if frames is None:
                    continue
                task = tasks.setdefault(task_text(record.meta), len(tasks))
                for side, rt in tracks.items():
                    rows = _episode(record, side, rt, frames, n_episodes, n_frames, task)
                    clip_frames = letterbox(frames[np.asarray(rt.frame_index)])
                    chunk, file = divmod(n_episodes, CHUNK_SIZE)
                    _write_video(clip_frames, out / f"videos/{VIDEO_KEY}/chunk-{chunk:03d}/file-{file:03d}.mp4", fps)
                    table = _table(rows)
                    where = data.place(table.nbytes)
                    data.append(table)
                    row = _episode_meta(record, side, rt, n_episodes, n_frames, (chunk, file), where, fps)
                    row["tasks"] = [task_text(record.meta)]
                    row.update(_episode_stats(rows, clip_frames, stats))
                    _append_meta(meta, row)
                    n_episodes, n_frames = n_episodes + 1, n_frames + len(rt)
    finally:
        data.close()
        meta.close()
    if not n_episodes:
        raise LeRobotExportError(f"LeRobot export: no {robot.name} hand tracks to export")
    _write_meta(out, robot, tasks, stats, n_episodes, n_frames, fps, data_file_mb)
    return {"episodes": n_episodes, "frames": n_frames, "tasks": len(tasks)}


def _tracks(record: ClipResult, robot: RobotHand) -> dict[str, RobotTrack]:
    if not record.ok:
        return {}
    return {s: rt for s in SIDES if (rt := _robot_track(record, s, robot)) is not None}


def _clip_frames(record: ClipResult, fps: float, skipped: list[str] | None) -> np.ndarray | None:
    """The clip's frames; None (the reason in ``skipped``, raised without it) where they cannot be used."""
    try:
        if record.fps != fps:
            why = f"{record.fps} fps, the dataset's is {fps} (one fps per LeRobot dataset)"
            raise LeRobotExportError(f"clip {record.video_id}: {why}")
        return _read_frames(record)
    except (ClipError, LeRobotExportError) as e:
        if skipped is None:
            raise
        skipped.append(str(e))
        return None


def _append_meta(meta: _RollingParquet, row: dict[str, Any]) -> None:
    """One episode's row of meta/episodes, which names the file it is in."""
    import pyarrow as pa

    names = ("meta/episodes/chunk_index", "meta/episodes/file_index")
    table = pa.Table.from_pylist([{**row, names[0]: 0, names[1]: 0}])  # its size does not depend on the two ints
    for name, index in zip(names, meta.place(table.nbytes), strict=True):
        table = table.set_column(table.schema.get_field_index(name), name, pa.array([index], pa.int64()))
    meta.append(table)


def _write_meta(out: Path, robot: RobotHand, tasks: dict[str, int], stats: _StatsSum, n_episodes: int,
                n_frames: int, fps: float | None, data_file_mb: float) -> None:  # fmt: skip
    import pandas as pd

    frame = pd.DataFrame({"task_index": list(tasks.values())}, index=pd.Index(list(tasks), name="task"))
    frame.to_parquet(out / "meta/tasks.parquet")
    (out / "meta/stats.json").write_text(json.dumps(stats.result(), indent=2))
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot.name,
        "total_episodes": n_episodes,
        "total_frames": n_frames,
        "total_tasks": len(tasks),
        "chunks_size": CHUNK_SIZE,
        "data_files_size_in_mb": data_file_mb,
        "video_files_size_in_mb": 500,
        "fps": fps,
        "splits": {"train": f"0:{n_episodes}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
        "features": _features(robot, *FRAME_SIZE, fps),
    }
    (out / "meta/info.json").write_text(json.dumps(info, indent=4))


def export_lerobot_datasets(results: ResultsSource, out: Path, robots: list[str]) -> None:
    """``enrich export --format lerobot``: one dataset per robot, ``out`` itself for one, ``out/<robot>`` for
    several; skipped clips and what was written are printed."""
    import sys

    for robot in robots:
        skipped: list[str] = []
        where = out if len(robots) == 1 else out / robot
        counts = export_lerobot(results, where, robot, skipped=skipped)
        for line in skipped:
            print(f"skipped: {line}", file=sys.stderr)
        print(f"wrote {where}/: LeRobot dataset of {robot}, {counts['episodes']} episodes, {counts['frames']} frames")


def _episode_meta(record: ClipResult, side: str, rt: RobotTrack, ep: int, start: int, video: tuple[int, int],
                  data: tuple[int, int], fps: float) -> dict[str, Any]:  # fmt: skip
    n = len(rt)
    return {
        "episode_index": ep,
        "length": n,
        "data/chunk_index": data[0],
        "data/file_index": data[1],
        "dataset_from_index": start,
        "dataset_to_index": start + n,
        f"videos/{VIDEO_KEY}/chunk_index": video[0],
        f"videos/{VIDEO_KEY}/file_index": video[1],
        f"videos/{VIDEO_KEY}/from_timestamp": 0.0,
        f"videos/{VIDEO_KEY}/to_timestamp": n / fps,
        "video_id": record.video_id,
        "hand": side,
        "mirrored": bool(rt.mirrored),
    }


def _episode_stats(rows: dict[str, np.ndarray], frames_rgb: np.ndarray, total: _StatsSum) -> dict[str, Any]:
    """Per-episode statistics as ``stats/<feature>/<stat>`` columns, as LeRobot keeps them; added to ``total``."""
    out: dict[str, Any] = {}
    per_feature = {name: _stats_of(np.asarray(v, np.float64).reshape(len(v), -1)) for name, v in rows.items()}
    per_feature[VIDEO_KEY] = _image_stats(frames_rgb)
    for name, stats in per_feature.items():
        total.add(name, stats)
        out.update({f"stats/{name}/{stat}": value for stat, value in stats.items()})
    return out
