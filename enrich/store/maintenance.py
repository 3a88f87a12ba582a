"""Whole-file operations: recover a killed run's file, merge shards, add a robot group. The row copies they share
live in ``compact``; the checks before writing in ``checks``."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from enrich.errors import (
    ConfigMismatchError,
    FormatError,
    MissingFileError,
    UsageError,
    WriterLockedError,
)
from enrich.records import ClipResult, RobotTrack
from enrich.store.compact import copy_robot_groups, copy_rows, rewrite
from enrich.store.reader import Results
from enrich.store.robots import RobotGroupWriter, RobotModelInfo
from enrich.store.schema import (
    ROBOT_SCHEMA_VERSION,
    ROW_GROUPS,
    WriterLock,
    check_writable,
    create_file,
    replace_keeping_mode,
    root_attrs,
)


def recover(path: str | os.PathLike[str], out_path: str | os.PathLike[str] | None = None) -> int:
    """Copy the committed clips of ``path`` into a clean, compressed file at ``out_path`` (default: ``path``).

    The copy is built under a temporary name and moved into place with ``os.replace``, so a kill during
    recovery leaves the original untouched. Refuses (:class:`WriterLockedError`) while a writer is running.
    Returns the number of clips kept.
    """
    path = Path(path)
    out = Path(out_path) if out_path is not None else path
    check_writable(out)
    lock = WriterLock(path)
    try:
        return rewrite(path, out, compressed=True)
    finally:
        lock.release()


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
        raise UsageError(f"merge into {out}: no shard files given")
    resolved = [p.resolve() for p in paths]
    twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if twice:
        raise UsageError(f"merge into {out}: shard files listed more than once: {', '.join(twice)}")
    if out.resolve() in resolved:
        raise UsageError(f"merge into {out}: the output is one of the shards; write to a new file")
    with contextlib.ExitStack() as stack:
        out_lock = WriterLock(out)
        stack.callback(out_lock.release)
        for path in paths:
            lock = _shard_lock(path)  # refuses a shard whose run is still writing
            if lock is not None:
                stack.callback(lock.release)
        shards = [stack.enter_context(Results(path)) for path in paths]
        with_robots = [str(src.path) for src in shards if src.robots]
        if with_robots:
            raise UsageError(
                f"merge into {out}: {', '.join(with_robots)} hold robot tracks (enrich retarget); "
                "merge the shards first, then retarget the merged file"
            )
        attrs = _merged_attrs(shards)
        _check_disjoint(shards)
        tmp = out.with_name(out.name + ".merge.tmp")
        try:
            create_file(tmp, attrs, compressed=True)
            with h5py.File(tmp, "r+") as dst:
                n_rows = dict.fromkeys(ROW_GROUPS, 0)
                for src in shards:
                    n_rows = copy_rows(src, dst, src.committed_rows, n_rows)
            os.replace(tmp, out)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()  # only left when the merge failed
        return sum(len(src) for src in shards)


def _shard_lock(path: Path) -> WriterLock | None:
    """The shard's writer lock (none where its folder is read-only); refuses a shard being written."""
    if not path.exists():
        raise MissingFileError(f"no results file at {path}")
    try:
        return WriterLock(path)
    except WriterLockedError:
        raise WriterLockedError(f"cannot merge {path}: its run is still writing it (lock {path}.lock)") from None
    except OSError:
        return None


def _merged_attrs(shards: list[Results]) -> dict[str, Any]:
    """Root attributes of the merged file; refuses shards of different schema versions or configurations."""
    first = shards[0]
    versions = {int(src.stored_attrs["schema_version"]) for src in shards}
    if len(versions) > 1:
        listed = ", ".join(f"{src.path} {int(src.stored_attrs['schema_version'])}" for src in shards)
        raise FormatError(f"cannot merge shards of different schema_version: {listed}")
    config = json.loads(first.stored_attrs["config"])
    for src in shards[1:]:
        other = json.loads(src.stored_attrs["config"])
        if other != config:
            changed = sorted(k for k in set(config) | set(other) if config.get(k) != other.get(k))
            raise ConfigMismatchError(
                f"cannot merge {src.path} with {first.path}: their configuration differs in {', '.join(changed)}"
            )
    shard_info = [
        {
            "path": str(src.path.resolve()),
            "clips": len(src),
            "created": str(src.stored_attrs["created"]),
            "package_version": str(src.stored_attrs["package_version"]),
            "provenance": json.loads(src.stored_attrs["provenance"]),
        }
        for src in shards
    ]
    attrs = root_attrs({}, {"shards": [info["path"] for info in shard_info], "shard_provenance": shard_info})
    attrs["schema_version"] = versions.pop()
    attrs["config"] = str(first.stored_attrs["config"])  # as stored, byte for byte
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
    raise ConfigMismatchError(
        f"cannot merge: {len(repeated)} video ids are in more than one shard: {'; '.join(shown)}{more}"
    )


ROBOT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def add_robot_group(
    path: str | os.PathLike[str],
    out_path: str | os.PathLike[str] | None,
    info: RobotModelInfo,
    tracks_of: Callable[[ClipResult], list[RobotTrack]],
    progress: Callable[[ClipResult], None] | None = None,
) -> tuple[int, int]:
    """A copy of ``path`` (committed clips, compressed) with robot group ``/robots/<info.name>`` built from
    ``tracks_of(clip)`` per clip, at ``out_path`` (default: ``path``). Other robot groups are kept; one of the
    same name is replaced. ``schema_version`` becomes 4.

    Built under ``<out>.retarget.tmp`` and moved into place with ``os.replace``: a kill leaves the original
    untouched. Refuses (:class:`WriterLockedError`) while a writer runs. Returns (clips, robot tracks).
    """
    if not ROBOT_NAME.match(info.name):
        raise UsageError(f"robot name {info.name!r}: use 1-64 letters, digits, '_', '.', '-'")
    path = Path(path)
    out = Path(out_path) if out_path is not None else path
    check_writable(out)
    lock = WriterLock(path)
    tmp = out.with_name(out.name + ".retarget.tmp")
    n_clips = n_tracks = 0
    try:
        with Results(path) as src:
            rows = src.committed_rows
            attrs = src.stored_attrs
            attrs["schema_version"] = ROBOT_SCHEMA_VERSION
            create_file(tmp, attrs, compressed=True)
            with h5py.File(tmp, "r+") as dst:
                copy_rows(src, dst, rows, dict.fromkeys(ROW_GROUPS, 0))
                copy_robot_groups(src, dst, rows, skip=info.name)
                writer = RobotGroupWriter(dst, info, len(rows))
                for k, clip in enumerate(src):
                    tracks = tracks_of(clip)
                    writer.add(k, tracks)
                    n_clips, n_tracks = n_clips + 1, n_tracks + len(tracks)
                    if progress is not None:
                        progress(clip)
                writer.close()
        replace_keeping_mode(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # only left when the copy failed
        lock.release()
    return n_clips, n_tracks
