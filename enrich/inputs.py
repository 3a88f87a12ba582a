"""Inputs of the pipeline: Something-Else boxes, SSv2 metadata, and the clips themselves.

Boxes: the Something-Else JSON (several GB in four parts) is streamed with ijson into a compact HDF5
index (``index_boxes``); ``BoxIndex`` reads one clip's rows from it on demand.
Metadata: SSv2 labels / train / validation files; class ids always come from the official 174-class list
shipped in ``enrich/data/ssv2_labels.txt``.
Clips: ``discover_clips`` finds videos or 12 fps JPEG folders, ``read_clip`` decodes one clip at a time.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal

import av
import cv2
import h5py
import ijson
import numpy as np

from enrich.records import HAND_SLOT, Clip, ClipBoxes, ClipError, ClipMeta

PathLike = str | os.PathLike[str]

# ----------------------------------------------------------------------------------------------------
# Something-Else boxes
# ----------------------------------------------------------------------------------------------------

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
    "swapped_boxes",  # x2 < x1 or y2 < y1: corners swapped, box kept
    "dropped_bad_coords",  # box2d or a coordinate missing, not a number, or not finite
    "dropped_unknown_category",  # standard_category neither "hand" nor a slot number
    "frames_without_labels",  # frame with no or empty ``labels``
    "frames_name_fallback",  # frame ``name`` did not parse: list position used as frame index
    "duplicate_frames",  # two frame entries of one clip with the same frame index (both kept)
    "frames_not_listed",  # frames inside a clip's annotated span that have no entry (unknown, not empty)
    "bad_frames",  # frame entry that is not a JSON object (skipped)
    "bad_clips",  # clip value that is not a list (skipped)
    "duplicate_clips",  # id seen again (in a later part or the same file): the later entry wins
)


class BoxFileError(ValueError):
    """A box file (JSON part or index) that cannot be read; one-line message naming the file and cause."""


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


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


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


def _add_clip(frames: Any, writer: _BoxWriter, counter: _Counter) -> _ClipRow | None:
    """Append one clip's boxes; returns its table row (None when the clip value is not a list)."""
    if not isinstance(frames, list):
        counter.add("bad_clips")
        return None
    offset = writer.n_rows
    slot_names: dict[int, str] = {}
    seen_frames: set[int] = set()
    for position, frame in enumerate(frames):
        if not isinstance(frame, dict):
            counter.add("bad_frames")
            continue
        counter.add("frames")
        index = _frame_index(frame, position, counter)
        if index in seen_frames:
            counter.add("duplicate_frames")
        seen_frames.add(index)
        labels = frame.get("labels")
        if not isinstance(labels, list) or not labels:
            counter.add("frames_without_labels")
            continue
        _add_labels(labels, index, writer, slot_names, counter)
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
        slot = _parse_slot(label.get("standard_category")) if isinstance(label, dict) else None
        if slot is None:
            counter.add("dropped_unknown_category")
            continue
        xyxy = _parse_xyxy(label.get("box2d"))
        if xyxy is None:
            counter.add("dropped_bad_coords")
            continue
        x1, y1, x2, y2 = xyxy
        if x2 < x1 or y2 < y1:
            counter.add("swapped_boxes")
            x1, x2 = min(x1, x2), max(x1, x2)
            y1, y2 = min(y1, y2), max(y1, y2)
        frames_out.append(frame)
        slots_out.append(slot)
        coords_out.extend((x1, y1, x2, y2))
        if slot != HAND_SLOT and slot not in slot_names:
            slot_names[slot] = str(label.get("category") or "")


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


def _first_byte(f: IO[bytes]) -> bytes:
    """First non-whitespace byte (b"" for an empty file); rewinds the file."""
    head = f.read(4096).lstrip()
    f.seek(0)
    return head[:1]


def _stream_clips(path: Path) -> Iterator[tuple[str, Any]]:
    """(video id, frame list) pairs of one JSON part file; BoxFileError on anything that does not parse."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed in the finally below, after the generator is exhausted
    except OSError as e:
        raise BoxFileError(f"{path}: cannot open: {_one_line(str(e.strerror or e))}") from e
    try:
        first = _first_byte(f)
        if first != b"{":
            cause = "empty file" if not first else f"top level is not a JSON object (starts with {first!r})"
            raise BoxFileError(f"{path}: {cause}")
        reader = _ByteCounter(f)
        try:
            yield from ijson.kvitems(reader, "", use_float=True)
        except (ijson.JSONError, UnicodeDecodeError) as e:
            first_line = _one_line(str(e).splitlines()[0] if str(e) else type(e).__name__)
            where = f"bytes {reader.start}-{reader.end}"
            raise BoxFileError(f"{path}: invalid JSON ({first_line}) within {where}") from e
    finally:
        f.close()


def _write_table(h5: h5py.File, rows: dict[str, _ClipRow]) -> None:
    ids = sorted(rows, key=_id_sort_key)
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


def index_boxes(json_paths: Iterable[PathLike], out_path: PathLike) -> dict[str, int]:
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
                for video_id, frames in _stream_clips(path):
                    row = _add_clip(frames, writer, counter)
                    if row is None:
                        continue
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
                raise BoxFileError(f"{self.path}: cannot open box index: {_one_line(str(e))}") from e
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


def clip_boxes_to_frame(boxes: ClipBoxes, width: int, height: int) -> tuple[ClipBoxes, int]:
    """Clip boxes to the ``width`` x ``height`` frame and drop boxes with no area left.

    Returns the new boxes and how many boxes were changed or dropped.
    """
    xyxy = boxes.box_xyxy_px
    limits = np.array([width, height, width, height], np.float32)
    clipped = np.clip(xyxy, 0.0, limits)
    keep = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    changed = np.any(clipped != xyxy, axis=1)
    n_affected = int(np.count_nonzero(changed | ~keep))
    out = replace(
        boxes,
        frame_index=boxes.frame_index[keep],
        slot=boxes.slot[keep],
        box_xyxy_px=clipped[keep],
    )
    return out, n_affected


# ----------------------------------------------------------------------------------------------------
# SSv2 metadata
# ----------------------------------------------------------------------------------------------------

LABELS_PATH = Path(__file__).resolve().parent / "data" / "ssv2_labels.txt"
N_CLASSES = 174
MetadataKind = Literal["labels_json", "entries_json", "label_map"]


class LabelMismatchWarning(UserWarning):
    """A label file disagrees with the official SSv2 class list (e.g. Something-Else's own split ids)."""


def template_key(template: str) -> str:
    """Normalised template for lookup: brackets removed, whitespace collapsed, case folded.

    "Putting [something] onto [something]" and "Putting something onto something" give the same key.
    """
    return " ".join(template.replace("[", "").replace("]", "").split()).casefold()


def official_class_names() -> tuple[str, ...]:
    """The 174 official SSv2 class names (bracket-free templates); position = class id."""
    return _read_label_map(LABELS_PATH)


def _read_label_map(path: Path) -> tuple[str, ...]:
    with open(path, encoding="utf-8") as f:
        return tuple(line.strip() for line in f if line.strip())


def fill_template(template: str, placeholders: Iterable[str]) -> str:
    """Fill the ``[...]`` slots in order: ("cup", "plate") make "Putting cup onto plate".

    Slots without a placeholder stay as they are.
    """
    items = iter(placeholders)
    return re.sub(r"\[[^\]]*\]", lambda m: next(items, m.group(0)), template)


class Metadata(Mapping[str, ClipMeta]):
    """SSv2 clip metadata by video id, plus the official class list used for class ids."""

    def __init__(self, clips: dict[str, ClipMeta], class_names: tuple[str, ...]) -> None:
        self.clips = clips
        self.class_names = class_names
        self._class_ids = {template_key(name): i for i, name in enumerate(class_names)}

    def class_id(self, template: str) -> int:
        """Official class id of a template (with or without brackets), -1 when unknown."""
        return self._class_ids.get(template_key(template), -1)

    def __getitem__(self, video_id: str) -> ClipMeta:
        return self.clips[video_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.clips)

    def __len__(self) -> int:
        return len(self.clips)


def detect_metadata_kind(path: PathLike) -> MetadataKind:
    """``{...}``: labels JSON, ``[...]``: train/validation entries, anything else: 174-line label map."""
    with open(path, "rb") as f:
        first = _first_byte(f)
    if first == b"{":
        return "labels_json"
    if first == b"[":
        return "entries_json"
    return "label_map"


def _check_label_map(path: Path, names: tuple[str, ...], official: tuple[str, ...]) -> None:
    """Warn when a user label map is not the official list (ids are still taken from the official list)."""
    if len(names) != len(official):
        warnings.warn(
            f"{path}: {len(names)} labels, the official SSv2 list has {len(official)}; using the official class ids",
            LabelMismatchWarning,
            stacklevel=3,
        )
        return
    pairs = enumerate(zip(names, official, strict=True))
    wrong = [i for i, (a, b) in pairs if template_key(a) != template_key(b)]
    if wrong:
        i = wrong[0]
        warnings.warn(
            f"{path}: {len(wrong)} of {len(names)} lines differ from the official SSv2 list "
            f"(line {i}: {names[i]!r}, official {official[i]!r}); using the official class ids",
            LabelMismatchWarning,
            stacklevel=3,
        )


def _check_labels_json(path: Path, labels: Any, metadata: Metadata) -> None:
    """Warn when a labels JSON's ids are not the official ids (Something-Else's split files are not)."""
    if not isinstance(labels, dict):
        raise ValueError(f"{path}: labels JSON must map templates to ids")
    unknown = [t for t in labels if metadata.class_id(t) < 0]
    wrong = [t for t in labels if metadata.class_id(t) >= 0 and str(labels[t]) != str(metadata.class_id(t))]
    if unknown:
        warnings.warn(
            f"{path}: {len(unknown)} templates are not SSv2 classes (e.g. {unknown[0]!r})",
            LabelMismatchWarning,
            stacklevel=3,
        )
    if wrong:
        t = wrong[0]
        warnings.warn(
            f"{path}: {len(wrong)} of {len(labels)} class ids are not the official SSv2 ids "
            f"(e.g. {t!r}: {labels[t]}, official {metadata.class_id(t)}); using the official ids",
            LabelMismatchWarning,
            stacklevel=3,
        )


def _entry_meta(entry: Any, metadata: Metadata) -> ClipMeta | None:
    """ClipMeta of one train/validation/test entry; None when it has no id."""
    if not isinstance(entry, dict) or entry.get("id") is None:
        return None
    template = str(entry.get("template") or "")
    placeholders = tuple(str(p) for p in entry.get("placeholders") or ())
    label = entry.get("label")
    return ClipMeta(
        video_id=str(entry["id"]).strip(),
        class_id=metadata.class_id(template) if template else -1,
        template=template,
        label=str(label) if label else fill_template(template, placeholders),
        placeholders=placeholders,
    )


def _read_entries(path: Path, metadata: Metadata) -> None:
    skipped, unknown_templates = 0, set()
    with open(path, "rb") as f:
        try:
            for entry in ijson.items(f, "item"):
                meta = _entry_meta(entry, metadata)
                if meta is None:
                    skipped += 1
                    continue
                if meta.template and meta.class_id < 0:
                    unknown_templates.add(meta.template)
                metadata.clips[meta.video_id] = meta  # a later file wins for a repeated id
        except ijson.JSONError as e:
            raise ValueError(f"{path}: invalid JSON ({_one_line(str(e).splitlines()[0])})") from e
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} entries without an id", stacklevel=3)
    if unknown_templates:
        warnings.warn(
            f"{path}: {len(unknown_templates)} templates are not SSv2 classes "
            f"(e.g. {sorted(unknown_templates)[0]!r}); their class_id is -1",
            LabelMismatchWarning,
            stacklevel=3,
        )


def load_metadata(paths: PathLike | Iterable[PathLike]) -> Metadata:
    """Read SSv2 metadata files; the kind of each file is detected from its content.

    - train/validation/test JSON (list of ``{id, label, template, placeholders}``): gives ClipMeta per clip;
      ``class_id`` = official id of the template, ``label`` = the entry's filled label (the template filled
      in when absent). A later file wins for a repeated id.
    - labels JSON (``{"Template without brackets": "id"}``) or a 174-line label map: checked against the
      official list shipped with the package; any disagreement is a LabelMismatchWarning and the official
      ids are used.
    """
    path_list = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    metadata = Metadata({}, official_class_names())
    for path in path_list:
        kind = detect_metadata_kind(path)
        if kind == "entries_json":
            _read_entries(path, metadata)
        elif kind == "labels_json":
            with open(path, encoding="utf-8") as f:
                try:
                    labels = json.load(f)  # 174 entries at most
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}: invalid JSON ({e})") from e
            _check_labels_json(path, labels, metadata)
        else:
            _check_label_map(path, _read_label_map(path), metadata.class_names)
    return metadata


# ----------------------------------------------------------------------------------------------------
# Clips
# ----------------------------------------------------------------------------------------------------

VIDEO_EXTS = frozenset({".webm", ".mp4", ".avi", ".mkv"})
_FRAME_FILE = re.compile(r"(\d+)\.jpe?g", re.IGNORECASE)
_MIN_DECODED_FRACTION = 0.9  # fewer decoded frames than this share of the container's duration = truncated


@dataclass(frozen=True)
class ClipSource:
    """Where one clip's pixels are: a video file or a folder of 1-based ``NNNN.jpg`` frames."""

    video_id: str
    path: str
    kind: Literal["video", "frames"]


def video_id_from_path(path: PathLike) -> str:
    """Video id of a file or frame folder: "123.webm" -> "123", "121896_with_masks.webm" -> "121896".

    Other stems are kept whole ("clip_7.mp4" -> "clip_7").

    Numeric ids are normalised like Something-Else's keys (``str(int(id))``: no leading zeros).
    """
    stem = Path(path).stem if Path(path).suffix.lower() in VIDEO_EXTS else Path(path).name
    head = stem.split("_", 1)[0]
    if stem.isdigit():
        return str(int(stem))
    if "_" in stem and head.isdigit():
        return str(int(head))
    return stem


def _id_sort_key(video_id: str) -> tuple[int, int, str]:
    return (0, int(video_id), video_id) if video_id.isdigit() else (1, 0, video_id)


def _videos_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS]


def _listed_paths(list_file: Path) -> list[Path]:
    """Paths in a text list (one per line; blank and ``#`` lines skipped; relative to the list's folder)."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{list_file}: neither a video ({', '.join(sorted(VIDEO_EXTS))}) nor a text list") from e
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
    if item.suffix.lower() in VIDEO_EXTS:
        return [item]  # a missing file becomes a ClipError in read_clip, not a failure of the whole run
    if not item.exists():
        raise FileNotFoundError(f"input {item} does not exist")
    if not allow_list:
        raise ValueError(f"{item}: listed path is not a video or a folder of videos")
    return [v for p in _listed_paths(item) for v in _expand_input(p, allow_list=False)]


def _frame_folders(frames_root: Path) -> list[Path]:
    if not frames_root.is_dir():
        raise FileNotFoundError(f"frames root {frames_root} is not a folder")
    return [p for p in frames_root.iterdir() if p.is_dir() and not p.name.startswith(".")]


def discover_clips(inputs: Iterable[PathLike], frames_root: PathLike | None = None) -> list[ClipSource]:
    """Clips named by ``inputs`` (videos, folders of videos, text lists of those) and under ``frames_root``.

    Sorted by numeric video id (non-numeric ids after, by name). Two sources with one id raise ValueError.
    """
    sources = [ClipSource(video_id_from_path(v), str(v), "video") for item in inputs for v in _expand_input(Path(item))]
    if frames_root is not None:
        sources += [ClipSource(video_id_from_path(d), str(d), "frames") for d in _frame_folders(Path(frames_root))]
    by_id: dict[str, ClipSource] = {}
    for src in sources:
        if src.video_id in by_id:
            raise ValueError(f"duplicate video id {src.video_id}: {by_id[src.video_id].path} and {src.path}")
        by_id[src.video_id] = src
    return [by_id[v] for v in sorted(by_id, key=_id_sort_key)]


def read_clip(src: ClipSource, *, frames_fps: float = 12.0) -> Clip:
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
        raise ClipError(vid, f"unreadable video {src.path}: {_one_line(e.strerror or str(e))}") from e
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
        raise ClipError(vid, f"truncated or corrupt after frame {len(frames)}: {_one_line(cause)}") from e
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
