"""A run: clips in, one results file out.

Stages are plain functions from records to new records (``read_clip`` -> ``track_clip`` -> ``lift_clip`` ->
``estimate_contacts``). ``ClipProcessor`` holds what a worker loads once (the models) and turns one ``ClipTask``
into a ``ClipResult`` without touching the output. Where tasks run is an ``Executor``'s choice: this process
(``InProcess``, the default) or ``enrich.executors`` (local worker processes, Ray), which receive a factory for
the per-worker processor. The run loop hands results to a single ``ResultsWriter``, which commits each clip as it
finishes; resuming reads the committed clips (the completion records) of the output. A run stops early, cleanly,
when its ``stop`` event is set (the CLI sets it on SIGINT/SIGTERM): no new clips start, the clips in progress
finish and are committed, and the file is closed.
"""

from __future__ import annotations

import json
import platform
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Protocol

from enrich.constants import SSV2_FPS
from enrich.contacts import ContactConfig, box_only_contacts, estimate_contacts
from enrich.errors import ClipError, ConfigMismatchError, UsageError
from enrich.inputs import BoxIndex, Metadata, read_clip
from enrich.lift import HandFitter, LiftConfig, hand_model_info, lift_clip
from enrich.records import ClipBoxes, ClipHands, ClipMeta, ClipResult, ClipSource, ClipTask
from enrich.run_summary import BOX_FILE_WARNINGS, MISSING_NOTES, RunSummary
from enrich.store import Results, ResultsWriter, check_output
from enrich.store.schema import VIDEO_ID_BYTES, check_writable, replace_keeping_mode
from enrich.threads import limit_threads
from enrich.track2d import HandModels, Track2DConfig, track_clip


@dataclass(frozen=True)
class RunConfig:
    """Everything that changes a run's results; stored in the output file."""

    track2d: Track2DConfig = field(default_factory=Track2DConfig)
    lift: LiftConfig | None = field(default_factory=LiftConfig)  # None: 2D tracks only
    hand_model: str | None = None  # MANO folder or file; None: $ENRICH_HAND_MODEL, models/mano/, the open model
    contacts: ContactConfig = field(default_factory=ContactConfig)
    frames_fps: float = SSV2_FPS  # frame folders carry no rate; Something-Else assumes 12 fps

    def to_dict(self) -> dict:
        lift = self.lift.to_dict() if self.lift is not None else None
        return {
            "track2d": self.track2d.to_dict(),
            "lift": lift,
            "contacts": self.contacts.to_dict(),
            "frames_fps": self.frames_fps,
        }


def _checked_boxes(
    boxes: ClipBoxes | None, clip_frames: int, width: int, height: int
) -> tuple[ClipBoxes | None, tuple[str, ...], dict[str, int]]:
    """The clip's usable boxes, a note when some had to be fixed or dropped, and the fix counts."""
    if boxes is None:
        return None, (), {}
    boxes, fixes = boxes.cleaned(clip_frames, width, height)
    done = [f"{n} {name.replace('_', ' ')}" for name, n in fixes.items() if n]
    if not done:
        return boxes, (), fixes
    return boxes, (f"Something-Else boxes fixed for the {width}x{height} frame: {', '.join(done)}",), fixes


class ClipProcessor:
    """One worker's state: models loaded once, then any number of clips."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        self.models = HandModels(config.track2d.num_threads, config.track2d.dark_crop_mean)
        self.fitter = HandFitter(config.hand_model, config.lift) if config.lift is not None else None

    def __call__(self, task: ClipTask) -> ClipResult:
        result = ClipResult(task.meta, task.src.path, notes=task.notes, missing=task.missing)
        t0 = time.perf_counter()
        try:
            clip = read_clip(task.src, frames_fps=self.config.frames_fps)
            decode_s = time.perf_counter() - t0
            boxes, fixed, box_fixes = _checked_boxes(task.boxes, clip.n_frames, clip.width, clip.height)
            t1 = time.perf_counter()
            tracks = track_clip(clip, boxes, self.models, self.config.track2d)
            t2 = time.perf_counter()
            if self.fitter is not None:
                tracks = lift_clip(tracks, self.fitter)
            lift_s = time.perf_counter() - t2 if self.fitter is not None else 0.0
            if boxes is not None:
                contacts = estimate_contacts(
                    tracks,
                    boxes,
                    clip.n_frames,
                    clip.width,
                    clip.height,
                    self.config.contacts,
                    template=task.meta.template,
                )
                tracks = replace(tracks, contacts=contacts)
        except ClipError as e:
            return replace(result, error=str(e))
        except Exception as e:  # a bad clip must not end the run: record it with its cause
            return replace(result, error=str(ClipError(task.src.video_id, f"{type(e).__name__}: {e}")))
        return replace(
            result,
            tracks=tracks,
            notes=task.notes + fixed,
            box_fixes=box_fixes,
            decode_s=decode_s,
            track_s=t2 - t1,
            lift_s=lift_s,
        )


class Executor(Protocol):
    """Where clips run: turns tasks into results, in any order (each result names its clip)."""

    def run(self, tasks: Iterable[ClipTask]) -> Iterator[ClipResult]: ...


ProcessorFactory = Callable[[], Callable[[ClipTask], ClipResult]]


class InProcess:
    """One worker: this process. ``startup_s``: the time its last run spent loading the models.

    ``one_thread``: run torch, OpenCV and BLAS on one thread in this process from the run's start (the per-hand
    problems are small: more threads cost more than they give, and oversubscribe a shared node); False leaves the
    process as it is."""

    def __init__(self, make_processor: ProcessorFactory, one_thread: bool = True) -> None:
        self.make_processor, self.one_thread = make_processor, one_thread
        self.processor: Callable[[ClipTask], ClipResult] | None = None
        self.startup_s = 0.0

    def run(self, tasks: Iterable[ClipTask]) -> Iterator[ClipResult]:
        t0 = time.perf_counter()
        if self.one_thread:
            limit_threads()
        self.processor = self.processor or self.make_processor()
        self.startup_s = time.perf_counter() - t0
        for task in tasks:
            yield self.processor(task)


@dataclass
class Inputs:
    """What a run reads; ``boxes`` and ``metadata`` may be absent."""

    sources: list[ClipSource]
    boxes: BoxIndex | None = None
    metadata: Metadata | None = None
    provenance: dict = field(default_factory=dict)

    def task(self, src: ClipSource) -> ClipTask:
        """One clip's task: its boxes and metadata looked up (read lazily: 220k clips never sit in memory)."""
        meta = self.metadata.get(src.video_id) if self.metadata is not None else None
        missing: tuple[str, ...] = ("no_metadata",) if self.metadata is not None and meta is None else ()
        boxes = None
        if self.boxes is not None:
            boxes = self.boxes.get(src.video_id)
            if boxes is None:
                missing += ("no_boxes",)
        notes = tuple(MISSING_NOTES[kind] for kind in missing)
        return ClipTask(src, boxes, meta or ClipMeta(src.video_id), notes, missing)


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


def _run_attrs(config: RunConfig, provenance_: dict, fitter: HandFitter | None = None) -> tuple[dict, dict]:
    """The stored config and provenance of a run: the config names the hand model by name and sha256
    (comparable across machines, so shards merge), the provenance says where it was. A ``fitter`` already
    loaded says so itself; otherwise the model files are read once here."""
    if config.lift is None:
        return {**config.to_dict(), "hand_model": None}, provenance_
    if fitter is not None:
        info = fitter.model_info
    else:
        info = hand_model_info(config.hand_model, config.lift.calibrated_keypoints)
    model = {side: {k: v for k, v in m.items() if k != "path"} for side, m in info.items()}
    paths = {side: m["path"] for side, m in info.items()}
    stored = config.to_dict()
    # never claim corrections that were not applied (e.g. a model with none to apply)
    applied = any(m["keypoint_corrections"] != "none" for m in info.values())
    stored["lift"] = {**stored["lift"], "calibrated_keypoints": applied}
    return {**stored, "hand_model": model}, {**provenance_, "hand_model_paths": paths}


def shard(sources: list[ClipSource], index: int, count: int) -> list[ClipSource]:
    """Clips of shard ``index`` of ``count``: a partition by a stable hash of the video id, so every job of an
    array gets the same split whatever order or subset of inputs it lists."""
    if not 0 <= index < count:
        raise UsageError(f"shard {index}/{count}: need 0 <= i < N")
    return [s for s in sources if zlib.crc32(s.video_id.encode()) % count == index]


def _as_stored(value: object) -> object:
    """``value`` as the file stores it (JSON): tuples become lists, so a config compares equal to its stored self."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def config_differences(before: object, now: object, key: str = "") -> list[str]:
    """Dotted keys where two stored configurations differ, each with both values (``track2d.min_presence
    0.5 -> 0.6``)."""
    if isinstance(before, dict) and isinstance(now, dict):
        return [
            line
            for k in sorted(set(before) | set(now))
            for line in config_differences(before.get(k), now.get(k), f"{key}.{k}" if key else k)
        ]
    return [] if before == now else [f"{key} {json.dumps(before)} -> {json.dumps(now)}"]


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
    changed = config_differences(_as_stored(before), _as_stored(stored))
    if changed:
        shown = "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise ConfigMismatchError(f"cannot resume {out}: its configuration differs: {shown}; use a new output")
    return ResultsWriter.resume(out, drop=failed_ids), skip


def check_video_ids(sources: Iterable[ClipSource]) -> None:
    """Refuse, before any clip runs, an id the results file cannot key (1..VIDEO_ID_BYTES UTF-8 bytes)."""
    for src in sources:
        if not 0 < len(src.video_id.encode("utf-8")) <= VIDEO_ID_BYTES:
            raise UsageError(
                f"{src.path}: video id {src.video_id!r} must be 1..{VIDEO_ID_BYTES} UTF-8 bytes "
                "(ids from file names are shortened to fit; see docs/format.md)"
            )


def _commit(
    writer: ResultsWriter, result: ClipResult, summary: RunSummary, on_result: Callable[[ClipResult], None] | None
) -> None:
    writer.add(result)
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
    overwrite: bool = False,
    stop: threading.Event | None = None,
) -> RunSummary:
    """Process every clip and commit each to ``out_path`` as it finishes; returns the run's summary.

    ``executor``: where clips run (default: this process). An existing ``out_path`` is refused unless
    ``resume`` (keep its clips and process the rest; with ``retry_failed`` its failed clips are dropped and run
    again) or ``overwrite`` (replace it once the new run has committed a clip); a file that is not a results
    file is never written into. ``stop``: once set, no new clip starts, the clips in progress are committed and
    the run returns with ``summary.interrupted``; a KeyboardInterrupt drops the clips in progress instead."""
    summary = RunSummary()
    start = time.perf_counter()
    out = Path(out_path)
    check_output(out, resume=resume, overwrite=overwrite)
    check_video_ids(inputs.sources)
    if inputs.boxes is not None:
        summary.warnings.box_files = {key: int(inputs.boxes.counts.get(key, 0)) for key in BOX_FILE_WARNINGS}
    out.parent.mkdir(parents=True, exist_ok=True)
    writer, skip = _open_writer(out, *_run_attrs(config, inputs.provenance), resume, retry_failed)
    summary.skipped = len(skip)
    executor = executor or InProcess(partial(ClipProcessor, config))
    tasks = _Tasks(inputs, skip, stop)
    results = executor.run(iter(tasks))
    try:
        for result in results:
            _commit(writer, result, summary, on_result)
    except KeyboardInterrupt:
        summary.interrupted = True
    except BaseException:
        writer.close(compress=False)  # leave quickly; the committed clips stay readable
        raise
    finally:
        getattr(results, "close", lambda: None)()  # an executor's generator stops its workers now
    summary.interrupted |= tasks.cut_short
    writer.close(compress=not summary.interrupted)  # interrupted: leave now, uncompressed (resume appends)
    summary.placed = writer.placed
    summary.wall_s = time.perf_counter() - start
    summary.startup_s = getattr(executor, "startup_s", 0.0)
    return summary


@dataclass
class _Tasks:
    """The clips still to run, read lazily; they end early once ``stop`` is set (then ``cut_short``)."""

    inputs: Inputs
    skip: set[str]
    stop: threading.Event | None
    cut_short: bool = False

    def __iter__(self) -> Iterator[ClipTask]:
        for src in self.inputs.sources:
            if src.video_id in self.skip:
                continue
            if self.stop is not None and self.stop.is_set():
                self.cut_short = True
                return
            yield self.inputs.task(src)


def relift(
    in_path: str | Path,
    out_path: str | Path,
    config: RunConfig,
    on_result: Callable[[ClipResult], None] | None = None,
    *,
    overwrite: bool = False,
) -> RunSummary:
    """Redo the MANO stage from the stored 2D tracks (no decoding, no detection) into ``out_path``.

    ``out_path`` may be ``in_path``: the new file is built beside it and moved into place when complete; another
    existing ``out_path`` needs ``overwrite``. Reads results files of schema 1 (2D only) too, which upgrades them.
    Robot groups (``enrich retarget``) are not carried: they follow the old fits (``enrich lift`` retargets again)."""
    if config.lift is None:
        raise UsageError("relift needs a lift configuration")
    if Path(out_path).absolute() != Path(in_path).absolute():
        check_output(out_path, overwrite=overwrite)
    check_writable(Path(out_path))
    summary = RunSummary(projects=False)
    start = time.perf_counter()
    fitter = HandFitter(config.hand_model, config.lift)
    out = Path(out_path)
    tmp = out.with_name(out.name + ".relift.tmp")
    try:
        _relift_into(in_path, tmp, config, fitter, summary, on_result)
    except BaseException:  # an error or Ctrl-C: the input stays as it was, no half-built copy is left
        tmp.unlink(missing_ok=True)
        raise
    replace_keeping_mode(tmp, out)
    summary.wall_s = time.perf_counter() - start
    return summary


def _relift_into(
    in_path: str | Path,
    tmp: Path,
    config: RunConfig,
    fitter: HandFitter,
    summary: RunSummary,
    on_result: Callable[[ClipResult], None] | None,
) -> None:
    with Results(in_path, allow_2d_only=True) as src:
        relifted = {**src.attrs["provenance"], "relifted_from": str(Path(in_path).resolve())}
        lift_config, provenance = _run_attrs(config, relifted, fitter)
        stored = {**src.attrs["config"], **lift_config, "track2d": src.attrs["config"].get("track2d")}
        with ResultsWriter(tmp, stored, provenance) as writer:
            for record in src:
                _commit(writer, _relift_clip(record, fitter), summary, on_result)


def _relift_clip(record: ClipResult, fitter: HandFitter) -> ClipResult:
    if not record.ok or record.tracks is None:
        return record
    t0 = time.perf_counter()
    tracks = replace(record.tracks, hands={side: t.with_fit(None) for side, t in record.tracks.hands.items()})
    return replace(record, tracks=lift_clip(tracks, fitter), lift_s=time.perf_counter() - t0)


def box_only_run(
    boxes: BoxIndex,
    metadata: Metadata | None,
    out_path: str | Path,
    config: ContactConfig,
    provenance_: dict,
    on_result: Callable[[ClipResult], None] | None = None,
    *,
    overwrite: bool = False,
) -> RunSummary:
    """Contacts from the Something-Else boxes alone for every clip in ``boxes``: no pixels, no decoding.

    Each clip spans its annotated frames, has no hand tracks, and its contacts are box-only (hand "unknown")."""
    check_output(out_path, overwrite=overwrite)
    summary = RunSummary()
    start = time.perf_counter()
    stored = {"contacts": config.to_dict(), "mode": "box-only", "hand_model": None}
    with ResultsWriter(out_path, stored, provenance_) as writer:
        for video_id in boxes.video_ids:
            clip_boxes = boxes.get(video_id)
            meta = (metadata.get(video_id) if metadata is not None else None) or ClipMeta(video_id)
            contacts = box_only_contacts(clip_boxes, config=config, template=meta.template)
            n_frames = int(contacts.hand_box_match.shape[0])
            tracks = ClipHands(video_id, n_frames, 0, 0, config.fps, {}, contacts=contacts)
            result = ClipResult(meta, "", tracks=tracks, notes=("box-only: contacts from Something-Else boxes",))
            _commit(writer, result, summary, on_result)
    summary.wall_s = time.perf_counter() - start
    return summary
