"""Something-Else boxes: the JSON parts (several GB) streamed once with ijson into a compact HDF5 index
(``index_boxes``); ``BoxIndex`` reads one clip's rows on demand; ``clean_boxes`` fits a clip's boxes to its frame."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import h5py
import ijson
import numpy as np

from enrich.constants import HAND_SLOT
from enrich.errors import BoxFileError
from enrich.inputs.common import PathLike, first_byte, id_sort_key, one_line
from enrich.records import ClipBoxes

INDEX_FORMAT = "enrich-box-index"
INDEX_VERSION = 1
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_FRAME_NAME = re.compile(r"(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)
_FLUSH_BOXES = 1 << 20  # rows buffered in Python lists before they are appended to the HDF5 datasets
_CHUNK_ROWS = 8192  # HDF5 chunk: reading one clip decompresses one or two chunks
_MAX_SLOT = np.iinfo(np.int16).max

# Problem and total counters of an index; every key is always present (0 when nothing was found).
COUNT_KEYS: tuple[str, ...] = (
    "clips",  # clips in the index
    "frames",  # frame entries read
    "boxes",  # boxes kept
    "hand_boxes",  # of which hands
    "swapped_boxes",  # x2 < x1 or y2 < y1: stored as given, put in order by ClipBoxes.cleaned
    "dropped_bad_coords",  # box2d or a coordinate missing or not finite (one that is not a number: BoxFileError)
    "dropped_unknown_category",  # standard_category neither "hand" nor a slot number
    "frames_without_labels",  # frame with no or empty ``labels``
    "frames_name_fallback",  # frame ``name`` did not parse: list position used as frame index
    "duplicate_frames",  # two frame entries of one clip with the same frame index (both kept)
    "frames_not_listed",  # frames inside a clip's annotated span that have no entry (unknown, not empty)
    "bad_frames",  # always 0 now: a frame entry that is not a JSON object is a BoxFileError (kept for old indexes)
    "bad_clips",  # always 0 now: a clip value that is not a list is a BoxFileError
    "duplicate_clips",  # id seen again (in a later part or the same file): the later entry wins
)


@dataclass(slots=True)  # one per clip held until the end of indexing: keep it small
class _ClipRow:
    offset: int
    count: int
    n_annotated_frames: int
    n_listed_frames: int
    slot_names: tuple[str, ...]


class _Counter:
    """Counts problems; shared by all clips of one indexing run."""

    def __init__(self) -> None:
        self.n = dict.fromkeys(COUNT_KEYS, 0)

    def add(self, key: str, k: int = 1) -> None:
        self.n[key] += k


def _parse_slot(standard_category: Any) -> int | None:
    """``"hand"`` -> HAND_SLOT, ``"0003"`` -> 3, anything else -> None."""
    if standard_category == "hand":
        return HAND_SLOT
    if isinstance(standard_category, str) and standard_category.isdigit():
        slot = int(standard_category)
        return slot if slot <= _MAX_SLOT else None
    return None


def _parse_xyxy(box2d: Any) -> tuple[float, float, float, float] | None:
    """Finite x1, y1, x2, y2 or None; accepts numbers and numeric strings."""
    try:  # unrolled: this runs once per box (tens of millions)
        x1, y1, x2, y2 = float(box2d["x1"]), float(box2d["y1"]), float(box2d["x2"]), float(box2d["y2"])
    except (KeyError, TypeError, ValueError):
        return None
    finite = math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)
    return (x1, y1, x2, y2) if finite else None


def _frame_index(frame: dict, position: int, counter: _Counter) -> int:
    """0-based frame from ``name`` ("<id>/NNNN.jpg" -> NNNN - 1); list position when it does not parse."""
    name = frame.get("name")
    match = _FRAME_NAME.search(name) if isinstance(name, str) else None
    if match and int(match.group(1)) >= 1:
        return int(match.group(1)) - 1
    counter.add("frames_name_fallback")
    return position


class _BoxWriter:
    """Appends per-box rows to resizable HDF5 datasets, buffering ~1M rows to keep h5py calls few."""

    def __init__(self, h5: h5py.File) -> None:
        group = h5.create_group("boxes")
        opts: dict[str, Any] = {
            "maxshape": (None,),
            "compression": "gzip",
            "compression_opts": 1,
            "shuffle": True,
        }
        self.frame_ds = group.create_dataset("frame_index", (0,), np.int32, chunks=(_CHUNK_ROWS,), **opts)
        self.slot_ds = group.create_dataset("slot", (0,), np.int16, chunks=(_CHUNK_ROWS,), **opts)
        opts["maxshape"] = (None, 4)
        self.box_ds = group.create_dataset("box_xyxy_px", (0, 4), np.float32, chunks=(_CHUNK_ROWS, 4), **opts)
        self._new_buffers()
        self.n_written = 0

    def _new_buffers(self) -> None:
        # typed arrays: 4 bytes a value instead of a Python object each
        self.frames = array("i")
        self.slots = array("h")
        self.coords = array("f")

    @property
    def n_rows(self) -> int:
        return self.n_written + len(self.frames)

    def end_clip(self) -> None:
        # flush only between clips, so that a clip's rows are still buffered while it is summarised
        if len(self.frames) >= _FLUSH_BOXES:
            self.flush()

    def hand_count(self, start: int) -> int:
        """Hand rows added since row ``start`` (which must still be buffered)."""
        return self.slots[start - self.n_written :].count(HAND_SLOT)

    def flush(self) -> None:
        n_new = len(self.frames)
        if not n_new:
            return
        end = self.n_written + n_new
        for ds in (self.frame_ds, self.slot_ds, self.box_ds):
            ds.resize(end, axis=0)
        self.frame_ds[self.n_written : end] = np.frombuffer(self.frames, np.int32)
        self.slot_ds[self.n_written : end] = np.frombuffer(self.slots, np.int16)
        self.box_ds[self.n_written : end] = np.frombuffer(self.coords, np.float32).reshape(-1, 4)
        self.n_written = end
        self._new_buffers()


class _SchemaError(ValueError):
    """Where a clip's value leaves the Something-Else schema: the key, and what was found there."""


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(type(value), repr(value))


def _add_clip(frames: Any, writer: _BoxWriter, counter: _Counter) -> _ClipRow:
    """Append one clip's boxes; returns its table row. _SchemaError where the clip leaves the schema."""
    if not isinstance(frames, list):
        raise _SchemaError(f"its value is {_kind(frames)}, not a list of frames")
    offset = writer.n_rows
    slot_names: dict[int, str] = {}
    seen_frames: set[int] = set()
    for position, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise _SchemaError(f"frame [{position}] is {_kind(frame)}, not an object")
        counter.add("frames")
        index = _frame_index(frame, position, counter)
        if index in seen_frames:
            counter.add("duplicate_frames")
        seen_frames.add(index)
        labels = frame.get("labels")
        if not isinstance(labels, list) or not labels:
            counter.add("frames_without_labels")
            continue
        try:
            _add_labels(labels, index, writer, slot_names, counter)
        except _SchemaError as e:
            raise _SchemaError(f"frame [{position}] {frame.get('name', '')!s}: {e}") from None
    n_boxes = writer.n_rows - offset
    counter.add("boxes", n_boxes)
    counter.add("hand_boxes", writer.hand_count(offset))
    span = max(seen_frames) + 1 if seen_frames else 0
    counter.add("frames_not_listed", span - len(seen_frames))
    names = tuple(slot_names.get(k, "") for k in range(max(slot_names) + 1)) if slot_names else ()
    writer.end_clip()
    return _ClipRow(offset, n_boxes, span, len(seen_frames), names)


def _add_labels(labels: list, frame: int, writer: _BoxWriter, slot_names: dict[int, str], counter: _Counter) -> None:
    """Append one frame's boxes. The hot loop (once per box): buffers bound locally, no per-box calls."""
    frames_out, slots_out, coords_out = writer.frames, writer.slots, writer.coords
    for label in labels:
        if not isinstance(label, dict):
            raise _SchemaError(f"a label is {_kind(label)}, not an object")
        if not isinstance(label.get("category", ""), str):
            raise _SchemaError(f"key 'category' is {_kind(label['category'])}, not a string")
        slot = _parse_slot(label.get("standard_category"))
        if slot is None:
            if not isinstance(label.get("standard_category", ""), str):
                raise _SchemaError(f"key 'standard_category' is {_kind(label['standard_category'])}, not a string")
            counter.add("dropped_unknown_category")
            continue
        xyxy = _parse_xyxy(label.get("box2d"))
        if xyxy is None:
            _check_box2d(label.get("box2d"))
            counter.add("dropped_bad_coords")  # missing or non-finite: dropped, counted, warned about
            continue
        x1, y1, x2, y2 = xyxy
        if x2 < x1 or y2 < y1:
            counter.add("swapped_boxes")  # stored as given: ClipBoxes.cleaned fixes (and counts) it per clip
        frames_out.append(frame)
        slots_out.append(slot)
        coords_out.extend((x1, y1, x2, y2))
        if slot != HAND_SLOT and slot not in slot_names:
            slot_names[slot] = str(label.get("category") or "")


def _check_box2d(box2d: Any) -> None:
    """_SchemaError unless ``box2d`` is absent or an object whose coordinates are numbers or numeric strings."""
    if box2d is None:
        return
    if not isinstance(box2d, dict):
        raise _SchemaError(f"key 'box2d' is {_kind(box2d)}, not an object")
    for key in ("x1", "y1", "x2", "y2"):
        value = box2d.get(key)
        if value is None:
            continue
        try:
            if isinstance(value, bool):
                raise TypeError
            float(value)
        except (TypeError, ValueError):
            raise _SchemaError(f"key 'box2d.{key}' is {_kind(value)}, not a number") from None


class _ByteCounter:
    """File wrapper that remembers how far ijson has read, to place parse errors in the file."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.start = 0
        self.end = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.start, self.end = self.end, self.end + len(data)
        return data


def _stream_clips(path: Path, bar: Any = None) -> Iterator[tuple[str, Any]]:
    """(video id, frame list) pairs of one JSON part file; BoxFileError on anything that does not parse.
    ``bar``: a tqdm bar advanced by the bytes read (closed at the end)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed in the finally below, after the generator is exhausted
    except OSError as e:
        raise BoxFileError(f"{path}: cannot open: {one_line(str(e.strerror or e))}") from e
    try:
        first = first_byte(f)
        if first != b"{":
            cause = "empty file" if not first else f"top level is not a JSON object (starts with {first!r})"
            raise BoxFileError(f"{path}: {cause}")
        reader = _ByteCounter(f)
        try:
            for item in ijson.kvitems(reader, "", use_float=True):
                if bar is not None and reader.end > bar.n:
                    bar.update(reader.end - bar.n)
                yield item
        except (ijson.JSONError, UnicodeDecodeError) as e:
            first_line = one_line(str(e).splitlines()[0] if str(e) else type(e).__name__)
            where = f"bytes {reader.start}-{reader.end}"
            raise BoxFileError(f"{path}: invalid JSON ({first_line}) within {where}") from e
    finally:
        f.close()
        if bar is not None:
            bar.close()


def _write_table(h5: h5py.File, rows: dict[str, _ClipRow]) -> None:
    ids = sorted(rows, key=id_sort_key)
    width = max((len(v.encode()) for v in ids), default=1)
    group = h5.create_group("clips")
    group.create_dataset("video_id", data=np.array([v.encode() for v in ids], dtype=f"S{width}"))
    group.create_dataset("offset", data=np.array([rows[v].offset for v in ids], np.int64))
    group.create_dataset("count", data=np.array([rows[v].count for v in ids], np.int32))
    group.create_dataset("n_annotated_frames", data=np.array([rows[v].n_annotated_frames for v in ids], np.int32))
    group.create_dataset("n_listed_frames", data=np.array([rows[v].n_listed_frames for v in ids], np.int32))
    names = [json.dumps(list(rows[v].slot_names)) for v in ids]
    group.create_dataset("slot_names_json", data=names, dtype=h5py.string_dtype())


def _file_stamp(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _bar(path: Path, shown: bool) -> Any:
    """A progress bar in bytes of one part (parts are GBs: indexing takes minutes), or None."""
    if not shown:
        return None
    from tqdm import tqdm

    return tqdm(total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, dynamic_ncols=True)


def index_boxes(json_paths: Iterable[PathLike], out_path: PathLike, *, progress: bool = False) -> dict[str, int]:
    """Stream Something-Else JSON part files into an HDF5 index at ``out_path``; returns COUNT_KEYS counts.

    Parts are merged; an id that appears again (in a later part, or twice in one file) replaces the earlier
    entry (its rows stay in the file, unreferenced) and is counted in ``duplicate_clips`` with a warning.
    The index is written to a temporary file and renamed, so a failed run leaves no partial index behind.
    """
    paths = [Path(p) for p in json_paths]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    counter = _Counter()
    try:
        with h5py.File(tmp, "w") as h5:
            writer = _BoxWriter(h5)
            rows: dict[str, _ClipRow] = {}
            for path in paths:
                for video_id, frames in _stream_clips(path, _bar(path, progress)):
                    try:
                        row = _add_clip(frames, writer, counter)
                    except _SchemaError as e:
                        raise BoxFileError(f"{path}: clip {video_id}: {e} (not the Something-Else schema)") from None
                    if video_id in rows:
                        counter.add("duplicate_clips")
                    rows[video_id] = row
            writer.flush()
            _write_table(h5, rows)
            counter.n["clips"] = len(rows)
            h5.attrs["format"] = INDEX_FORMAT
            h5.attrs["version"] = INDEX_VERSION
            h5.attrs["counts_json"] = json.dumps(counter.n)
            h5.attrs["sources_json"] = json.dumps([_file_stamp(p) for p in paths])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    if counter.n["duplicate_clips"]:
        warnings.warn(
            f"{counter.n['duplicate_clips']} duplicated clip ids in {[str(p) for p in paths]}; "
            "the later entry was kept",
            stacklevel=2,
        )
    return counter.n


class BoxIndex:
    """Read-only view of an index file; ``get`` reads one clip's rows.

    Safe to pickle and to use after fork: the HDF5 file is reopened in each process.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._h5: h5py.File | None = None
        self._pid = -1
        h5 = self._file()
        if h5.attrs.get("format") != INDEX_FORMAT or int(h5.attrs.get("version", -1)) != INDEX_VERSION:
            raise BoxFileError(f"{self.path}: not an {INDEX_FORMAT} v{INDEX_VERSION} file")
        clips = h5["clips"]
        self.video_ids: tuple[str, ...] = tuple(v.decode() for v in clips["video_id"][()])
        self._row = {v: i for i, v in enumerate(self.video_ids)}
        self._offset = clips["offset"][()]
        self._count = clips["count"][()]
        self._n_annotated = clips["n_annotated_frames"][()]
        self.counts: dict[str, int] = json.loads(h5.attrs["counts_json"])
        self.sources: list[dict[str, Any]] = json.loads(h5.attrs["sources_json"])

    def _file(self) -> h5py.File:
        # h5py handles must not cross fork(): reopen in each process
        if self._h5 is None or self._pid != os.getpid():
            try:
                self._h5 = h5py.File(self.path, "r")
            except OSError as e:
                raise BoxFileError(f"{self.path}: cannot open box index: {one_line(str(e))}") from e
            self._pid = os.getpid()
        return self._h5

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._row

    def __len__(self) -> int:
        return len(self.video_ids)

    def get(self, video_id: str) -> ClipBoxes | None:
        """Boxes of one clip, or None when the clip is not annotated."""
        row = self._row.get(video_id)
        if row is None:
            return None
        h5 = self._file()
        start = int(self._offset[row])
        end = start + int(self._count[row])
        names = json.loads(h5["clips/slot_names_json"][row])
        return ClipBoxes(
            video_id=video_id,
            frame_index=h5["boxes/frame_index"][start:end],
            slot=h5["boxes/slot"][start:end],
            box_xyxy_px=h5["boxes/box_xyxy_px"][start:end],
            slot_names=tuple(names),
            n_annotated_frames=int(self._n_annotated[row]),
        )

    def close(self) -> None:
        if self._h5 is not None and self._pid == os.getpid():
            self._h5.close()
        self._h5 = None

    def __enter__(self) -> BoxIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"], state["_pid"] = None, -1
        return state


def is_box_index(path: PathLike) -> bool:
    """True when ``path`` is an HDF5 file (an index written by ``index_boxes``), by its signature."""
    with open(path, "rb") as f:
        return f.read(len(_HDF5_MAGIC)) == _HDF5_MAGIC


def default_cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "enrich"


def _cache_path(paths: list[Path], cache_dir: Path) -> Path:
    key = json.dumps([INDEX_VERSION, [_file_stamp(p) for p in paths]])
    return cache_dir / f"boxes-{hashlib.sha256(key.encode()).hexdigest()[:16]}.h5"


def load_boxes(paths: PathLike | Iterable[PathLike], cache_dir: PathLike | None = None) -> BoxIndex:
    """Open boxes from one index file, or from Something-Else JSON part files (indexed once, then cached).

    The cache key is the parts' absolute paths, sizes and mtimes: editing or replacing a part re-indexes.
    ``cache_dir`` defaults to ``$XDG_CACHE_HOME/enrich`` (``~/.cache/enrich``).
    """
    path_list = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    if not path_list:
        raise BoxFileError("no box files given")
    for p in path_list:
        if not p.is_file():
            raise BoxFileError(f"{p}: no such file")
    kinds = [is_box_index(p) for p in path_list]
    if any(kinds):
        if len(path_list) != 1:
            raise BoxFileError(f"{path_list[kinds.index(True)]}: an index file must be given alone")
        return BoxIndex(path_list[0])
    cached = _cache_path(path_list, Path(cache_dir) if cache_dir is not None else default_cache_dir())
    if not cached.is_file():
        index_boxes(path_list, cached)
    return BoxIndex(cached)
