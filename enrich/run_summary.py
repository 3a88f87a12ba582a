"""What a run did, told at its end: counts and timings (:class:`RunSummary`) and what it cleaned or found
missing (:class:`RunWarnings`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from enrich.records import ClipResult
from enrich.store.rows import truncated_texts

SSV2_CLIPS = 220_847
SSV2_HEIGHT_PX = 240  # SSv2 videos are 240 px tall; a projection from other clips would mislead
NO_BOXES_NOTE = "no Something-Else boxes for this id: palm detector and tracking only"
NO_METADATA_NOTE = "not in the SSv2 metadata given: class -1, no template or label"
SHOWN_FAILURES = 10  # failures named in the summary; `enrich info FILE --show-failed N` lists more

# What a run cleaned or found missing, per kind: what it means, and the ClipBoxes.cleaned counts it sums.
WARNING_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "outside": ("boxes reaching outside the frame or the clip (clipped or dropped)",
                ("clipped_boxes", "outside_boxes", "boxes_beyond_clip")),
    "swapped": ("boxes with x2 < x1 or y2 < y1 (corners put in order)", ("swapped_boxes",)),
    "nonfinite": ("boxes with non-finite coordinates (dropped)", ("nonfinite_boxes",)),
    "no_boxes": ("no Something-Else boxes (palm detector and tracking only)", ()),
    "no_metadata": ("not in the SSv2 metadata given (class -1, no template)", ()),
    "truncated": ("text cut to fit the file", ()),
}  # fmt: skip
MISSING_NOTES = {"no_boxes": NO_BOXES_NOTE, "no_metadata": NO_METADATA_NOTE}  # ClipTask.missing -> clip note
SHOWN_IDS = 5
# Box-file problems dropped once when the Something-Else files are indexed (the index keeps no per-clip record).
BOX_FILE_WARNINGS = {"dropped_bad_coords": "with missing or non-finite coordinates (dropped when indexed)"}


@dataclass
class RunWarnings:
    """Per warning kind: clips, boxes involved, and the first few video ids."""

    clips: dict[str, int] = field(default_factory=dict)
    boxes: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    box_files: dict[str, int] = field(default_factory=dict)  # BOX_FILE_WARNINGS counts of the box index

    def add(self, result: ClipResult) -> None:
        if not result.ok:  # its failure says more
            return
        for kind, (_, fix_names) in WARNING_KINDS.items():
            n_boxes = sum(result.box_fixes.get(name, 0) for name in fix_names)
            if n_boxes:
                self._count(kind, result.video_id, n_boxes)
        for kind in result.missing:
            self._count(kind, result.video_id)
        if truncated_texts(result):
            self._count("truncated", result.video_id)

    def _count(self, kind: str, video_id: str, n_boxes: int = 0) -> None:
        self.clips[kind] = self.clips.get(kind, 0) + 1
        self.boxes[kind] = self.boxes.get(kind, 0) + n_boxes
        shown = self.examples.setdefault(kind, [])
        if len(shown) < SHOWN_IDS:
            shown.append(video_id)

    def lines(self) -> list[str]:
        """One line per kind seen, in WARNING_KINDS order; empty when the run cleaned nothing."""
        out = []
        for kind, (what, _) in WARNING_KINDS.items():
            n = self.clips.get(kind, 0)
            if not n:
                continue
            n_boxes = self.boxes.get(kind, 0)
            boxes = f", {n_boxes} box{'es' if n_boxes > 1 else ''}" if n_boxes else ""
            more = ", ..." if n > len(self.examples[kind]) else ""
            out.append(f"{what}: {n} clip{'s' if n > 1 else ''}{boxes} (e.g. {', '.join(self.examples[kind])}{more})")
        for key, what in BOX_FILE_WARNINGS.items():
            n = self.box_files.get(key, 0)
            if n:
                out.append(f"Something-Else box files: {n} box{'es' if n > 1 else ''} {what}")
        return out


def _ssv2_like(result: ClipResult) -> bool:
    tracks = result.tracks
    return tracks is not None and result.video_id.isdigit() and 0 < tracks.height <= SSV2_HEIGHT_PX


@dataclass
class RunSummary:
    clips: int = 0
    ok: int = 0
    failed: int = 0
    ssv2_like: int = 0  # ok clips that look like SSv2's (numeric id, <= 240 px tall): the projection needs all
    frames: int = 0
    hand_frames: int = 0
    frames_with_hand: int = 0
    box_frames: int = 0  # frames with a Something-Else hand box
    box_frames_found: int = 0  # ... where a detected hand matched the box
    decode_s: float = 0.0
    track_s: float = 0.0
    lift_s: float = 0.0
    wall_s: float = 0.0
    startup_s: float = 0.0  # of wall_s: starting workers and loading models, before the first clip could run
    skipped: int = 0  # already in the output (resume)
    failures: dict[str, str] = field(default_factory=dict)
    warnings: RunWarnings = field(default_factory=RunWarnings)
    interrupted: bool = False  # stopped early (stop event, or KeyboardInterrupt): resume to finish
    placed: bool = True  # False: stopped before the first commit, an existing output left as it was
    projects: bool = True  # False: not a run over videos (relift), no full-SSv2 projection

    def add(self, result: ClipResult) -> None:
        self.clips += 1
        self.warnings.add(result)
        if result.ok:
            self.ok += 1
            self.ssv2_like += _ssv2_like(result)
            self.frames += result.tracks.n_frames
            self.hand_frames += result.hand_frames
            self.frames_with_hand += result.frames_with_hand
            box_frames, found = result.hand_box_frames
            self.box_frames += box_frames
            self.box_frames_found += found
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
        """The summary (stdout): counts and timings; failures are in :meth:`failure_lines`."""
        out = [
            f"clips {self.clips}: ok {self.ok}, failed {self.failed}"
            + (f" ({self.skipped} already done, skipped)" if self.skipped else ""),
            f"frames {self.frames}, hand frames {self.hand_frames}, wall {self.wall_s:.1f} s",
            f"coverage: a hand in {_share(self.frames_with_hand, self.frames)} of frames"
            + (
                f"; a hand box matched by a confident hand (presence >= 0.5, as contacts use them) in "
                f"{_share(self.box_frames_found, self.box_frames)} of frames with a Something-Else hand box"
                if self.box_frames
                else ""
            ),
        ]
        if self.startup_s:
            out.append(f"start-up (workers, models): {self.startup_s:.1f} s")
        steady_s = self.wall_s - self.startup_s
        # no projection from failures, from other videos, or for a relift
        if self.projects and self.ok and self.ssv2_like == self.ok and steady_s > 0:
            rate = self.clips / steady_s
            out.append(
                f"throughput after start-up {rate:.2f} clips/s: the full SSv2 ({SSV2_CLIPS:,} clips) would take "
                f"{SSV2_CLIPS / rate / 3600:.1f} h with these workers"
            )
        if self.decode_s or self.track_s:
            out.append(f"decode + 2D: {self.ms_per_frame:.1f} ms/frame (one process)")
        if self.lift_s and self.hand_frames:
            out.append(f"MANO lift: {1000 * self.lift_s / self.hand_frames:.1f} ms per hand-frame")
        return out

    def failure_lines(self) -> list[str]:
        """The first failures, one line each (stderr)."""
        shown = [f"failed: {err}" for err in list(self.failures.values())[:SHOWN_FAILURES]]
        more = len(self.failures) - len(shown)
        return shown + ([f"failed: ... and {more} more"] if more else [])


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / max(whole, 1):.1f} %)"
