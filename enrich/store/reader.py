"""Reading a results file: :class:`Results` (by video id, in commit order, summaries, contact tables)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from enrich.constants import HAND_NAMES, SIDES
from enrich.errors import UnknownClipError
from enrich.records import ClipResult
from enrich.store.robots import RobotGroupReader, RobotModelInfo, with_robots
from enrich.store.rows import clip_result, decode_text
from enrich.store.schema import (
    CLIP_COLUMNS,
    CONTACT_COLUMNS,
    READ_BLOCK_CLIPS,
    ROW_GROUPS,
    SEGMENT_COLUMNS,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_UNCOMMITTED,
    check_schema,
    expand_rows,
    open_read,
)
from enrich.store.superblock import damaged


class Results:
    """Read access to a results file; opening reads only the video_id and status columns.

    The committed clips are those present at open (a running writer's later clips need a new open). Like any
    h5py handle, do not carry an open ``Results`` across ``fork()``: open one per process.
    """

    def __init__(self, path: str | os.PathLike[str], *, allow_2d_only: bool = False) -> None:
        self.path = Path(path)
        self._file = open_read(self.path)
        try:
            check_schema(self._file, self.path, allow_2d_only=allow_2d_only)
            present = [name for name in CLIP_COLUMNS if name in self._file["clips"]]  # schema 1 lacks the MANO ones
            self._clips = {name: self._file["clips"][name] for name in present}  # look up once
            self._groups = {
                g: {name: self._file[g][name] for name in cols if name in self._file[g]}  # older files lack some
                for g, (cols, _, _) in ROW_GROUPS.items()
                if g in self._file
            }
            self._robots = RobotGroupReader.open_all(self._file)
            status = self._clips["status"][:]
            n = min(len(status), self._clips["video_id"].shape[0])  # a kill can leave columns of unequal length
            self._rows = np.flatnonzero(status[:n] != STATUS_UNCOMMITTED)
            self._status = status[self._rows]
            raw_ids = self._clips["video_id"][:n][self._rows]
        except (OSError, RuntimeError, KeyError) as e:  # h5py's words for bytes that are not what they claim
            self._file.close()
            raise damaged(self.path, e) from None
        except BaseException:
            self._file.close()
            raise
        self.video_ids: list[str] = [decode_text(raw) for raw in raw_ids.tolist()]
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

    @property
    def robots(self) -> dict[str, RobotModelInfo]:
        """Robot hands retargeted into this file (``enrich retarget``): name -> joint names, limits, model."""
        return {name: group.info for name, group in self._robots.items()}

    @property
    def robot_groups_h5(self) -> Any:
        """The h5py ``/robots`` group (for whole-group copies in maintenance)."""
        return self._file["robots"]

    @property
    def stored_attrs(self) -> dict[str, Any]:
        """The root attributes exactly as stored (JSON text undecoded), for copies that keep them byte for byte."""
        return dict(self._file.attrs)

    @property
    def committed_rows(self) -> np.ndarray:
        """Clip-table rows of the committed clips, increasing (a killed run can leave uncommitted rows between)."""
        return self._rows

    @property
    def groups(self) -> tuple[str, ...]:
        """Per-frame row groups present (older schemas lack some)."""
        return tuple(self._groups)

    def clip_table(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Clip columns present in the file over clip-table rows [lo, hi), as stored."""
        return {name: ds[lo:hi] for name, ds in self._clips.items()}

    def group_table(self, group: str, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Columns of one per-frame row group over rows [lo, hi), as stored."""
        return {name: ds[lo:hi] for name, ds in self._groups[group].items()}

    def group_rows(self) -> dict[str, int]:
        """Rows in each per-frame group (committed or not)."""
        return {group: next(iter(ds.values())).shape[0] for group, ds in self._groups.items()}

    def keys(self) -> list[str]:
        """Committed video ids in commit order."""
        return list(self.video_ids)

    def __len__(self) -> int:
        return len(self.video_ids)

    def __contains__(self, video_id: object) -> bool:
        return video_id in self._row_of

    def __getitem__(self, video_id: str) -> ClipResult:
        row = self._row_of.get(video_id)
        if row is None:
            raise UnknownClipError(f"video id {video_id!r} is not in {self.path}")
        return self._read_rows(row, row + 1)[0]

    def __iter__(self) -> Iterator[ClipResult]:
        """Every committed clip in commit order, read in blocks."""
        rows = self._rows
        for start in range(0, len(rows), READ_BLOCK_CLIPS):
            block = rows[start : start + READ_BLOCK_CLIPS]
            yield from self._read_rows(int(block[0]), int(block[-1]) + 1)

    @property
    def failed(self) -> dict[str, str]:
        """video_id -> error of every failed clip."""
        rows = self._rows[self._status == STATUS_FAILED]
        if len(rows) == 0:
            return {}
        errors = self._clips["error"][rows[0] : rows[-1] + 1][rows - rows[0]]
        ids = np.asarray(self.video_ids, dtype=object)[self._status == STATUS_FAILED]
        return {vid: decode_text(raw) for vid, raw in zip(ids.tolist(), errors.tolist(), strict=True)}

    def summary(self) -> dict[str, int]:
        """Counts over committed clips: clips, ok, failed, frames, hand_frames and per side; coverage (frames with
        a hand; frames with a Something-Else hand box, and of those where a detected hand matched it)."""
        ok = self._status == STATUS_OK
        n_frames = self._column("n_frames")
        offsets, counts = self._column("hand_offset"), self._column("hand_count").astype(np.int64)
        end = int((offsets + counts).max()) if len(counts) else 0
        rows = expand_rows(offsets, counts)
        side = self._groups["hands"]["side"][:end][rows]
        clip_of_row = np.repeat(np.arange(len(counts)), counts)
        frame = self._groups["hands"]["frame_index"][:end][rows].astype(np.int64)
        n_max = int(n_frames.max()) + 1 if len(n_frames) else 1
        result = {
            "clips": len(self),
            "ok": int(ok.sum()),
            "failed": int((~ok).sum()),
            "frames": int(n_frames[ok].sum()),
            "hand_frames": int(counts.sum()),
            "clips_without_hands": int((counts[ok] == 0).sum()),
            "mano_frames": int(self._column("mano_count").sum()) if "mano_count" in self._clips else 0,
            "frames_with_hand": len(np.unique(clip_of_row * n_max + frame)),
            **self._box_coverage(),
        }
        for index, name in enumerate(SIDES):
            mine = side == index
            result[f"hand_frames_{name}"] = int(mine.sum())
            result[f"clips_with_{name}"] = len(np.unique(clip_of_row[mine]))
        return result

    def _box_coverage(self) -> dict[str, int]:
        """Frames with a hand box and, of those, where a detected hand matched it (0 where /box_matches is absent)."""
        if "match_count" not in self._clips or "box_matches" not in self._groups:
            return {"hand_box_frames": 0, "hand_box_frames_found": 0}
        offsets, counts = self._column("match_offset"), self._column("match_count")
        end = int((offsets + counts.astype(np.int64)).max()) if len(counts) else 0
        match = self._groups["box_matches"]["match"][:end][expand_rows(offsets, counts)]
        return {"hand_box_frames": len(match), "hand_box_frames_found": int(np.count_nonzero(match <= 1))}

    def _column(self, name: str) -> np.ndarray:
        """One clip column over committed rows (reads the column's whole extent)."""
        if len(self._rows) == 0:
            return np.zeros(0, CLIP_COLUMNS[name].dtype)
        return self._clips[name][: self._rows[-1] + 1][self._rows]

    def _read_rows(self, lo: int, hi: int) -> list[ClipResult]:
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
            records.append(clip_result({name: values[i] for name, values in cols.items()}, per_group))
        if self._robots:
            per_robot = {name: group.clip_tracks(lo + keep) for name, group in self._robots.items()}
            records = [with_robots(r, {name: t[k] for name, t in per_robot.items()}) for k, r in enumerate(records)]
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
        table = _table({name: getattr(result.frames, name) for name in CONTACT_COLUMNS}) if result else None
        return _named_hands(table if table is not None else _table(columns=list(CONTACT_COLUMNS)))

    def segments(self, video_id: str) -> pd.DataFrame:
        """Contact segments of one clip: hand, object_slot, start, end (inclusive frames), fingers (bitmask)."""
        result = self[video_id].contacts
        table = _table({name: getattr(result.segments, name) for name in SEGMENT_COLUMNS}) if result else None
        return _named_hands(table if table is not None else _table(columns=list(SEGMENT_COLUMNS)))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_results(path: str | os.PathLike[str]) -> Results:
    """Open a results file, including one left by a killed or still-running writer."""
    return Results(path)


def _table(data: dict | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    import pandas as pd  # only contact tables need pandas: `enrich info` starts without it

    return pd.DataFrame(data, columns=columns)


def _named_hands(table: pd.DataFrame) -> pd.DataFrame:
    table["hand"] = [HAND_NAMES[int(h)] for h in table["hand"]]
    return table
