"""A run: clips in, one results file out.

Stages are plain functions (``read_clip`` -> ``track_clip``); ``ClipProcessor`` holds what a worker loads once
(the models) and turns one clip into a ``ClipResult`` without touching the output. The run loop hands results
to a single ``ResultsWriter``, which commits each clip as it finishes.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from enrich.contacts import ContactConfig, box_only_contacts, estimate_contacts
from enrich.inputs import BoxIndex, ClipSource, Metadata, clip_boxes_to_frame, read_clip
from enrich.lift import HandFitter, LiftConfig, hand_model_info, lift_clip
from enrich.records import ClipBoxes, ClipError, ClipMeta, ClipTracks
from enrich.store import ClipRecord, Results, ResultsWriter
from enrich.track2d import HandModels, Track2DConfig, track_clip

SSV2_CLIPS = 220_847


@dataclass(frozen=True)
class RunConfig:
    """Everything that changes a run's results; stored in the output file."""

    track2d: Track2DConfig = field(default_factory=Track2DConfig)
    lift: LiftConfig | None = field(default_factory=LiftConfig)  # None: 2D tracks only
    hand_model: str | None = None  # MANO folder or file; None: $ENRICH_HAND_MODEL, models/mano/, the open model
    contacts: ContactConfig = field(default_factory=ContactConfig)
    frames_fps: float = 12.0  # frame folders carry no rate; Something-Else assumes 12 fps

    def to_dict(self) -> dict:
        lift = self.lift.to_dict() if self.lift is not None else None
        return {
            "track2d": self.track2d.to_dict(),
            "lift": lift,
            "contacts": self.contacts.to_dict(),
            "frames_fps": self.frames_fps,
        }


@dataclass
class ClipResult:
    meta: ClipMeta
    source: str
    tracks: ClipTracks | None = None
    error: str = ""
    notes: list[str] = field(default_factory=list)
    decode_s: float = 0.0
    track_s: float = 0.0
    lift_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.tracks is not None

    @property
    def hand_frames(self) -> int:
        return sum(len(t) for t in self.tracks.hands.values()) if self.tracks else 0


def _checked_boxes(boxes: ClipBoxes | None, width: int, height: int, notes: list[str]) -> ClipBoxes | None:
    if boxes is None:
        return None
    boxes, n_fixed = clip_boxes_to_frame(boxes, width, height)
    if n_fixed:
        notes.append(f"{n_fixed} Something-Else boxes reached outside the {width}x{height} frame: clipped or dropped")
    return boxes


class ClipProcessor:
    """One worker's state: models loaded once, then any number of clips."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.models = HandModels(config.track2d.num_threads, config.track2d.dark_crop_mean)
        self.fitter = HandFitter(config.hand_model, config.lift) if config.lift is not None else None

    def __call__(self, src: ClipSource, boxes: ClipBoxes | None, meta: ClipMeta, notes: list[str]) -> ClipResult:
        result = ClipResult(meta, src.path, notes=list(notes))
        t0 = time.perf_counter()
        try:
            clip = read_clip(src, frames_fps=self.config.frames_fps)
            result.decode_s = time.perf_counter() - t0
            boxes = _checked_boxes(boxes, clip.width, clip.height, result.notes)
            t1 = time.perf_counter()
            result.tracks = track_clip(clip, boxes, self.models, self.config.track2d)
            t2 = time.perf_counter()
            result.track_s = t2 - t1
            if self.fitter is not None:
                result.tracks = lift_clip(result.tracks, self.fitter)
            result.lift_s = time.perf_counter() - t2
            if boxes is not None:
                result.tracks.contacts = estimate_contacts(
                    result.tracks, boxes, clip.n_frames, clip.width, clip.height, self.config.contacts
                )
        except ClipError as e:
            result.error = str(e)
        except Exception as e:  # a bad clip must not end the run: record it with its cause
            result.error = str(ClipError(src.video_id, f"{type(e).__name__}: {e}"))
        return result


@dataclass
class Inputs:
    """What a run reads; ``boxes`` and ``metadata`` may be absent."""

    sources: list[ClipSource]
    boxes: BoxIndex | None = None
    metadata: Metadata | None = None
    provenance: dict = field(default_factory=dict)

    def clip_inputs(self, src: ClipSource) -> tuple[ClipBoxes | None, ClipMeta, list[str]]:
        meta = self.metadata.get(src.video_id) if self.metadata is not None else None
        notes: list[str] = []
        boxes = None
        if self.boxes is not None:
            boxes = self.boxes.get(src.video_id)
            if boxes is None:
                notes.append("no Something-Else boxes for this id: palm detector and tracking only")
        return boxes, meta or ClipMeta(src.video_id), notes


@dataclass
class RunSummary:
    clips: int = 0
    ok: int = 0
    failed: int = 0
    frames: int = 0
    hand_frames: int = 0
    decode_s: float = 0.0
    track_s: float = 0.0
    lift_s: float = 0.0
    wall_s: float = 0.0
    skipped: int = 0  # already in the output (resume)
    failures: dict[str, str] = field(default_factory=dict)

    def add(self, result: ClipResult) -> None:
        self.clips += 1
        if result.ok:
            self.ok += 1
            self.frames += result.tracks.n_frames
            self.hand_frames += result.hand_frames
            self.decode_s += result.decode_s
            self.track_s += result.track_s
            self.lift_s += result.lift_s
        else:
            self.failed += 1
            self.failures[result.meta.video_id] = result.error

    @property
    def ms_per_frame(self) -> float:
        return 1000 * (self.decode_s + self.track_s) / max(self.frames, 1)

    def lines(self) -> list[str]:
        out = [
            f"clips {self.clips}: ok {self.ok}, failed {self.failed}"
            + (f" ({self.skipped} already done, skipped)" if self.skipped else ""),
            f"frames {self.frames}, hand frames {self.hand_frames}, wall {self.wall_s:.1f} s",
        ]
        if self.clips and self.wall_s > 0:
            rate = self.clips / self.wall_s
            out.append(
                f"throughput {rate:.2f} clips/s: the full SSv2 ({SSV2_CLIPS:,} clips) would take "
                f"{SSV2_CLIPS / rate / 3600:.1f} h with these workers"
            )
        if self.decode_s or self.track_s:
            out.append(f"decode + 2D: {self.ms_per_frame:.1f} ms/frame (one process)")
        if self.lift_s:
            out.append(f"MANO lift: {1000 * self.lift_s / max(self.hand_frames, 1):.1f} ms per hand-frame")
        return out + [f"failed: {err}" for err in self.failures.values()]


def provenance(inputs: Iterable[str], boxes: Iterable[str], metadata: Iterable[str]) -> dict:
    return {
        "inputs": [str(Path(p).resolve()) for p in inputs],
        "boxes": [str(Path(p).resolve()) for p in boxes],
        "metadata": [str(Path(p).resolve()) for p in metadata],
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "python": sys.version.split()[0],
        "argv": sys.argv,
    }


def _run_attrs(config: RunConfig, provenance_: dict) -> tuple[dict, dict]:
    """The stored config and provenance of a run, reading the hand model once: the config names it by name and
    sha256 (comparable across machines, so shards merge), the provenance says where it was."""
    if config.lift is None:
        return {**config.to_dict(), "hand_model": None}, provenance_
    info = hand_model_info(config.hand_model)
    model = {side: {k: v for k, v in m.items() if k != "path"} for side, m in info.items()}
    paths = {side: m["path"] for side, m in info.items()}
    return {**config.to_dict(), "hand_model": model}, {**provenance_, "hand_model_paths": paths}


def shard(sources: list[ClipSource], index: int, count: int) -> list[ClipSource]:
    """Clips of shard ``index`` of ``count``: a partition by a stable hash of the video id, so every job of an
    array gets the same split whatever order or subset of inputs it lists."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: need 0 <= i < N")
    return [s for s in sources if zlib.crc32(s.video_id.encode()) % count == index]


def _open_writer(
    out: Path, stored: dict, provenance_: dict, resume: bool, retry_failed: bool
) -> tuple[ResultsWriter, set[str]]:
    """A new writer, or with ``resume`` the existing file's (same configuration required) and the ids to skip."""
    if not (resume and out.exists()):
        return ResultsWriter(out, stored, provenance_), set()
    with Results(out) as done:
        before = done.attrs["config"]
        failed_ids = set(done.failed) if retry_failed else set()
        skip = set(done.video_ids) - failed_ids
    if json.dumps(before, sort_keys=True) != json.dumps(stored, sort_keys=True):
        changed = sorted(k for k in set(before) | set(stored) if before.get(k) != stored.get(k))
        raise ValueError(f"cannot resume {out}: its configuration differs in {', '.join(changed)}; use a new output")
    return ResultsWriter.resume(out, drop=failed_ids), skip


def write_result(writer: ResultsWriter, result: ClipResult) -> None:
    writer.add(
        result.meta,
        result.tracks,
        status="ok" if result.ok else "failed",
        error=result.error,
        note="; ".join(result.notes),
        source=result.source,
    )


def _commit(
    writer: ResultsWriter, result: ClipResult, summary: RunSummary, on_result: Callable[[ClipResult], None] | None
) -> None:
    write_result(writer, result)
    summary.add(result)
    if on_result is not None:
        on_result(result)


def run(
    inputs: Inputs,
    out_path: str | Path,
    config: RunConfig,
    on_result: Callable[[ClipResult], None] | None = None,
    *,
    executor: Executor | None = None,
    resume: bool = False,
    retry_failed: bool = False,
) -> RunSummary:
    """Process every clip and commit each to ``out_path`` as it finishes; returns the run's summary.

    ``executor``: where clips run (default: this process). ``resume``: keep the clips already in ``out_path``
    and process the rest; with ``retry_failed`` its failed clips are dropped and run again."""
    from enrich.executors import InProcess, Task

    summary = RunSummary()
    start = time.perf_counter()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer, skip = _open_writer(out, *_run_attrs(config, inputs.provenance), resume, retry_failed)
    summary.skipped = len(skip)
    with writer:
        executor = executor or InProcess(config)
        tasks = (Task(src, *inputs.clip_inputs(src)) for src in inputs.sources if src.video_id not in skip)
        for result in executor.run(tasks):
            _commit(writer, result, summary, on_result)
    summary.wall_s = time.perf_counter() - start
    return summary


class Executor(Protocol):
    def run(self, tasks: Iterable[Any]) -> Iterator[ClipResult]: ...


def relift(
    in_path: str | Path,
    out_path: str | Path,
    config: RunConfig,
    on_result: Callable[[ClipResult], None] | None = None,
) -> RunSummary:
    """Redo the MANO stage from the stored 2D tracks (no decoding, no detection) into ``out_path``.

    ``out_path`` may be ``in_path``: the new file is built beside it and moved into place when complete.
    Reads results files of schema 1 (2D only) too, which upgrades them."""
    if config.lift is None:
        raise ValueError("relift needs a lift configuration")
    summary = RunSummary()
    start = time.perf_counter()
    fitter = HandFitter(config.hand_model, config.lift)
    out = Path(out_path)
    tmp = out.with_name(out.name + ".relift.tmp")
    with Results(in_path, allow_2d_only=True) as src:
        relifted = {**src.attrs["provenance"], "relifted_from": str(Path(in_path).resolve())}
        lift_config, provenance = _run_attrs(config, relifted)
        stored = {**src.attrs["config"], **lift_config, "track2d": src.attrs["config"].get("track2d")}
        with ResultsWriter(tmp, stored, provenance) as writer:
            for record in src:
                _commit(writer, _relift_clip(record, fitter), summary, on_result)
    os.replace(tmp, out)
    summary.wall_s = time.perf_counter() - start
    return summary


def _relift_clip(record: ClipRecord, fitter: HandFitter) -> ClipResult:
    result = ClipResult(record.meta, record.source, error=record.error, notes=[record.note] if record.note else [])
    if record.status != "ok":
        return result
    t0 = time.perf_counter()
    tracks = record.tracks
    for track in tracks.hands.values():
        track.fit = None
    result.tracks = lift_clip(tracks, fitter)
    result.lift_s = time.perf_counter() - t0
    return result


def box_only_run(
    boxes: BoxIndex,
    metadata: Metadata | None,
    out_path: str | Path,
    config: ContactConfig,
    provenance_: dict,
    on_result: Callable[[ClipResult], None] | None = None,
) -> RunSummary:
    """Contacts from the Something-Else boxes alone for every clip in ``boxes``: no pixels, no decoding.

    Each clip spans its annotated frames, has no hand tracks, and its contacts are box-only (hand "unknown")."""
    summary = RunSummary()
    start = time.perf_counter()
    stored = {"contacts": config.to_dict(), "mode": "box-only", "hand_model": None}
    with ResultsWriter(out_path, stored, provenance_) as writer:
        for video_id in boxes.video_ids:
            clip_boxes = boxes.get(video_id)
            meta = (metadata.get(video_id) if metadata is not None else None) or ClipMeta(video_id)
            contacts = box_only_contacts(clip_boxes, config=config)
            n_frames = int(contacts.hand_box_match.shape[0])
            tracks = ClipTracks(video_id, n_frames, 0, 0, config.fps, {}, contacts=contacts)
            result = ClipResult(meta, "", tracks=tracks, notes=["box-only: contacts from Something-Else boxes"])
            _commit(writer, result, summary, on_result)
    summary.wall_s = time.perf_counter() - start
    return summary
