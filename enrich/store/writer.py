"""Writing a results file: :class:`ResultsWriter` commits one clip at a time, kill safe.

Kill safety: the file is created complete (all datasets, all attributes) under a temporary name, moved into
place at its first commit (or a clean close), reopened directly in HDF5 SWMR-write mode: until the new run has a
clip to show, a kill, an error or Ctrl-C leaves the path as it was (no file, or the file ``--overwrite`` replaces).
SWMR orders metadata writes so that the bytes on disk always form a consistent file, which is what survives a
SIGKILL. Each clip is appended as
per-frame rows -> clip columns -> flush -> ``status`` -> flush; a reader trusts only rows whose ``status`` is
non-zero (0 is the fill value of a row that was resized but never committed). A killed writer leaves the
superblock's "open for SWMR write" flag set, so plain ``h5py.File(path, "r")`` refuses the file;
:func:`~enrich.store.open_results` falls back to a SWMR read and :func:`~enrich.store.recover` rewrites a clean copy.

The file being written is uncompressed: in SWMR mode HDF5 never reuses the space of a rewritten compressed
chunk (a reader may still be reading it), so per-clip flushes of compressed chunks grew files about 5x.
Uncompressed chunks are rewritten in place, and the bytes of committed rows never change. A clean
:meth:`ResultsWriter.close` (and :func:`~enrich.store.recover`) then copies the committed rows into a compressed file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from enrich.records import ClipResult
from enrich.store.checks import can_append
from enrich.store.compact import rewrite
from enrich.store.reader import Results
from enrich.store.rows import clip_row, clip_rows, decode_text
from enrich.store.schema import (
    CLIP_COLUMNS,
    ROW_GROUPS,
    STATUS_FAILED,
    STATUS_OK,
    WriterLock,
    count_rows,
    create_file,
    open_swmr_write,
    root_attrs,
)

# add() got ~0.1 ms slower per 1000 commits on one open file (3 ms at the start, 10 ms after 60k clips)
_REOPEN_EVERY_COMMITS = 2000


class ResultsWriter:
    """Appends clips to a new results file; every :meth:`add` is committed and flushed before it returns."""

    def __init__(self, path: str | os.PathLike[str], config: dict[str, Any], provenance: dict[str, Any]) -> None:
        self.path = Path(path)
        self._lock = WriterLock(self.path)
        try:
            tmp = self.path.with_name(self.path.name + ".tmp")
            create_file(tmp, root_attrs(config, provenance), compressed=False)
            self._pending: Path | None = tmp  # nothing at the path (an existing file stays) until the first commit
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
        self._pending = None
        self._lock = WriterLock(self.path)
        try:
            drop = set(drop)
            if drop:
                with Results(self.path) as before:
                    drop.intersection_update(before.video_ids)
            if drop or not can_append(self.path):
                rewrite(self.path, self.path, compressed=False, drop=drop)
            with Results(self.path) as done:  # clean now: every row committed, no trailing rows
                n_rows = done.group_rows()
                ids, n_clips = set(done.video_ids), len(done)
            self._start(ids, n_clips, n_rows)
        except BaseException:
            self._lock.release()
            raise
        return self

    def _start(self, ids: set[str], n_clips: int, n_rows: dict[str, int]) -> None:
        self._ids = ids
        self._n_clips = n_clips
        self.count_rows = dict(n_rows)
        self._commits_since_open = 0
        self._open()

    def _place(self) -> None:
        """Move the file being written into place (an open HDF5 handle follows the rename)."""
        if self._pending is not None:
            os.replace(self._pending, self.path)
            self._pending = None

    def _open(self) -> None:
        self._file = open_swmr_write(self._pending or self.path)
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

    def add(self, result: ClipResult) -> None:
        """Commit and flush one clip: an ok one with its tracks, or a failed one with its error."""
        if result.tracks is not None and result.tracks.video_id != result.video_id:
            raise ValueError(f"clip {result.video_id}: tracks are for clip {result.tracks.video_id}")
        row = clip_row(result)
        rows = clip_rows(result)
        for group, (_, _, count) in ROW_GROUPS.items():
            row[count] = np.array([count_rows(rows[group])], np.int32)
        code = STATUS_OK if result.ok else STATUS_FAILED
        self.append_block(row, rows, np.array([code], np.int8))

    def append_block(
        self, clips: dict[str, np.ndarray], rows: dict[str, dict[str, np.ndarray]], status: np.ndarray
    ) -> None:
        """Commit a block of clips: ``clips`` has every clip column but status and the row offsets.

        One clip per call from :meth:`add`; the benchmark calls it with many clips to build big files fast.
        """
        ids = [decode_text(raw) for raw in clips["video_id"].tolist()]
        seen = self._ids.intersection(ids)
        if seen or len(set(ids)) != len(ids):
            raise ValueError(f"video ids already in {self.path}: {sorted(seen) or 'repeated within block'}")
        n_new = len(ids)
        clips = dict(clips)
        for group, (_, offset, count) in ROW_GROUPS.items():
            if int(clips[count].sum()) != count_rows(rows[group]):
                raise ValueError(f"{count} does not add up to the {group} rows given")
            starts = np.concatenate([[0], np.cumsum(clips[count][:-1], dtype=np.int64)])
            clips[offset] = (self.count_rows[group] + starts).astype(np.int64)
        lo, hi = self._n_clips, self._n_clips + n_new
        for group, datasets in self._groups.items():  # 1. per-frame rows
            start, n_rows = self.count_rows[group], count_rows(rows[group])
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
        self._place()
        self._ids.update(ids)
        self._n_clips = hi
        self.count_rows = {group: self.count_rows[group] + count_rows(rows[group]) for group in ROW_GROUPS}
        self._commits_since_open += 1
        if self._commits_since_open >= _REOPEN_EVERY_COMMITS:
            self._reopen()

    @property
    def placed(self) -> bool:
        """Whether the file is at its path (False only while a new file waits to replace an existing one)."""
        return self._pending is None

    def close(self, compress: bool = True) -> None:
        """Close; with ``compress``, also rewrite the file compressed (about 2x smaller, takes a while).

        A clean close (``compress``) moves a new file with no clip yet into place; an unclean one (after an
        error or an interrupt) drops it and leaves the file it was to replace untouched."""
        if getattr(self, "_file", None) is None:
            return
        self._file.close()  # a clean close clears the SWMR flag: plain readers can open it again
        self._file = None
        try:
            if self._pending is not None and not compress:
                self._pending.unlink()
                return
            self._place()
            if compress:
                rewrite(self.path, self.path, compressed=True)
        finally:
            self._lock.release()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(compress=exc_type is None)  # after an error (Ctrl-C...) leave quickly; recover() compresses
