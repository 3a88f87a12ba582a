"""Clips: ``discover_clips`` finds videos or 12 fps JPEG frame folders, ``read_clip`` decodes one clip at a time."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from enrich.constants import SSV2_FPS
from enrich.errors import ClipError, MissingFileError, UsageError
from enrich.inputs.common import PathLike, id_sort_key, one_line
from enrich.records import Clip, ClipSource

VIDEO_EXTS = frozenset({".webm", ".mp4", ".avi", ".mkv"})
_FRAME_FILE = re.compile(r"(\d+)\.jpe?g", re.IGNORECASE)
_MIN_DECODED_FRACTION = 0.9  # fewer decoded frames than this share of the container's duration = truncated


VIDEO_ID_BYTES = 32  # the results file's video_id column (enrich.store.schema.VIDEO_ID_BYTES)
_ID_HASH_CHARS = 8


def short_id(stem: str) -> str:
    """``stem`` when it fits the file's video id (32 UTF-8 bytes); else its first bytes, ``~`` and 8 hex digits
    of its SHA-1, 32 bytes in all: stable, unique in practice, and still recognisable."""
    raw = stem.replace("\x00", "").encode("utf-8")
    if 0 < len(raw) <= VIDEO_ID_BYTES:
        return stem
    digest = hashlib.sha1(raw).hexdigest()[:_ID_HASH_CHARS]
    head = raw[: VIDEO_ID_BYTES - _ID_HASH_CHARS - 1].decode("utf-8", "ignore")  # cut on a character boundary
    return f"{head}~{digest}"


def video_id_from_path(path: PathLike) -> str:
    """Video id of a file or frame folder: "123.webm" -> "123", "121896_with_masks.webm" -> "121896".

    Other stems are kept whole ("clip_7.mp4" -> "clip_7"), shortened by :func:`short_id` when longer than
    32 UTF-8 bytes. Numeric ids are normalised like Something-Else's keys (``str(int(id))``: no leading zeros).
    """
    stem = Path(path).stem if Path(path).suffix.lower() in VIDEO_EXTS else Path(path).name
    head = stem.split("_", 1)[0]
    if stem.isdigit():
        return short_id(str(int(stem)))
    if "_" in stem and head.isdigit():
        return short_id(str(int(head)))
    return short_id(stem)


def _videos_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS]


def _listed_paths(list_file: Path) -> list[Path]:
    """Paths in a text list (one per line; blank and ``#`` lines skipped; relative to the list's folder)."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UsageError(f"{list_file}: neither a video ({', '.join(sorted(VIDEO_EXTS))}) nor a text list") from e
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line).expanduser()
            out.append(p if p.is_absolute() else list_file.parent / p)
    return out


def _expand_input(item: Path, *, allow_list: bool = True) -> list[Path]:
    """Video files named by one input: the file itself, a folder's videos, or a list file's entries."""
    if item.is_dir():
        return _videos_in(item)
    if not item.exists() and allow_list:  # named on the command line: a typo, said before any model loads
        raise MissingFileError(f"input {item} does not exist")
    if item.suffix.lower() in VIDEO_EXTS:
        return [item]  # listed in a text list and missing: a ClipError in read_clip, the run goes on
    if not item.exists():
        raise MissingFileError(f"input {item} does not exist")
    if not allow_list:
        raise UsageError(f"{item}: listed path is not a video or a folder of videos")
    return [v for p in _listed_paths(item) for v in _expand_input(p, allow_list=False)]


def _frame_folders(frames_root: Path) -> list[Path]:
    if not frames_root.is_dir():
        raise MissingFileError(f"frames root {frames_root} is not a folder")
    return [p for p in frames_root.iterdir() if p.is_dir() and not p.name.startswith(".")]


def _absolute(path: Path) -> str:
    return os.path.abspath(path)  # normalised, '..' removed, without resolving symlinks


def discover_clips(inputs: Iterable[PathLike], frames_root: PathLike | None = None) -> list[ClipSource]:
    """Clips named by ``inputs`` (videos, folders of videos, text lists of those) and under ``frames_root``.

    Sorted by numeric video id (non-numeric ids after, by name). Two sources with one id raise ValueError.
    Paths are absolute (symlinks kept: their names may carry the ids), so a results file names its sources
    wherever it is read from.
    """
    videos = (v for item in inputs for v in _expand_input(Path(item)))
    sources = [ClipSource(video_id_from_path(v), _absolute(v), "video") for v in videos]
    if frames_root is not None:
        folders = _frame_folders(Path(frames_root))
        sources += [ClipSource(video_id_from_path(d), _absolute(d), "frames") for d in folders]
    by_id: dict[str, ClipSource] = {}
    for src in sources:
        if src.video_id in by_id:
            raise UsageError(f"duplicate video id {src.video_id}: {by_id[src.video_id].path} and {src.path}")
        by_id[src.video_id] = src
    return [by_id[v] for v in sorted(by_id, key=id_sort_key)]


def read_clip(src: ClipSource, *, frames_fps: float = SSV2_FPS) -> Clip:
    """Decode one clip to RGB uint8 (T, H, W, 3). Decoded frame i is Something-Else frame ``i + 1``.

    Videos: PyAV, fps from the stream's average rate.
    Frame folders: ``0001.jpg`` ... contiguous, at ``frames_fps``.
    Raises ClipError (one line naming the clip) for anything that cannot be decoded completely.
    """
    if src.kind == "video":
        frames_rgb, fps = _read_video(src)
    elif src.kind == "frames":
        frames_rgb, fps = _read_frames(src), float(frames_fps)
    else:
        raise ClipError(src.video_id, f"unknown source kind {src.kind!r}")
    return Clip(src.video_id, frames_rgb, fps, src.path)


def _stream_fps(stream: av.video.stream.VideoStream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return None


def _expected_frames(container: av.container.InputContainer, stream: Any, fps: float) -> int:
    """Frame count the container claims (0 when it does not say)."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        return round(float(stream.duration * stream.time_base) * fps)
    if container.duration:
        return round(container.duration / av.time_base * fps)
    return 0


def _read_video(src: ClipSource) -> tuple[np.ndarray, float]:
    vid = src.video_id
    path = Path(src.path)
    if not path.exists():
        raise ClipError(vid, f"missing file {src.path}")
    if path.is_dir():
        raise ClipError(vid, f"{src.path} is a folder, not a video")
    try:
        container = av.open(src.path)  # a pipe or device blocks here until it delivers; workers have timeouts
    except av.FFmpegError as e:
        raise ClipError(vid, f"unreadable video {src.path}: {one_line(e.strerror or str(e))}") from e
    with container:
        if not container.streams.video:
            raise ClipError(vid, f"no video stream in {src.path}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = _stream_fps(stream)
        if fps is None:
            raise ClipError(vid, f"unknown frame rate in {src.path}")
        frames = _decode_all(vid, container, stream)
        expected = _expected_frames(container, stream, fps)
    if not frames:
        raise ClipError(vid, f"no frames decoded from {src.path}")
    if len(frames) < _MIN_DECODED_FRACTION * expected - 1:
        raise ClipError(vid, f"truncated or corrupt: decoded {len(frames)} frames, container says {expected}")
    return _stack_same_size(vid, frames), fps


def _decode_all(vid: str, container: av.container.InputContainer, stream: Any) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    try:
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
    except (av.FFmpegError, ValueError) as e:
        cause = e.strerror if isinstance(e, av.FFmpegError) and e.strerror else str(e)
        raise ClipError(vid, f"truncated or corrupt after frame {len(frames)}: {one_line(cause)}") from e
    return frames


def _stack_same_size(vid: str, frames: list[np.ndarray]) -> np.ndarray:
    h, w = frames[0].shape[:2]
    for i, f in enumerate(frames):
        if f.shape[:2] != (h, w):  # a mid-stream resolution change; the pipeline needs one frame size
            raise ClipError(vid, f"decoded frame {i} is {f.shape[1]}x{f.shape[0]} px, frame 0 is {w}x{h} px")
    return np.stack(frames)


def _frame_files(vid: str, folder: Path) -> list[Path]:
    """``0001.jpg`` ... in order; ClipError on an empty folder, a gap, a repeated number, a 0-based start."""
    if not folder.is_dir():
        raise ClipError(vid, f"missing frame folder {folder}")
    numbered: dict[int, Path] = {}
    for p in folder.iterdir():
        match = _FRAME_FILE.fullmatch(p.name)
        if not match:
            continue  # e.g. a DONE marker
        number = int(match.group(1))
        if number in numbered:
            raise ClipError(vid, f"two files for frame {number}: {numbered[number].name} and {p.name}")
        numbered[number] = p
    if not numbered:
        raise ClipError(vid, f"empty frame folder {folder} (no NNNN.jpg)")
    if 0 in numbered:
        raise ClipError(vid, f"frame numbering starts at {numbered[0].name}; expected 1-based 0001.jpg")
    for number in range(1, len(numbered) + 1):
        if number not in numbered:
            digits = len(Path(next(iter(numbered.values()))).stem)
            raise ClipError(vid, f"missing frame {number:0{digits}d}.jpg in {folder}")
    return [numbered[k] for k in range(1, len(numbered) + 1)]


def _read_jpeg(vid: str, path: Path) -> np.ndarray:
    data = np.fromfile(path, np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ClipError(vid, f"unreadable frame {path.name}")  # also a cut-off file: imdecode gives None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_frames(src: ClipSource) -> np.ndarray:
    vid = src.video_id
    files = _frame_files(vid, Path(src.path))
    first = _read_jpeg(vid, files[0])
    out = np.empty((len(files), *first.shape), np.uint8)  # one allocation per clip
    out[0] = first
    for i, path in enumerate(files[1:], start=1):
        rgb = _read_jpeg(vid, path)
        if rgb.shape != first.shape:
            raise ClipError(
                vid,
                f"frame {path.name} is {rgb.shape[1]}x{rgb.shape[0]} px, "
                f"{files[0].name} is {first.shape[1]}x{first.shape[0]} px",
            )
        out[i] = rgb
    return out
