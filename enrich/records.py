"""Records: every stage's input and output type, immutable. The ground floor of the package.

clip (``ClipSource`` -> ``Clip``, with ``ClipMeta`` and ``ClipBoxes``) -> the clip's hands (``ClipHands``: a
``HandTrack`` per hand, its 2D detections, then its MANO fit ``ManoTrack`` and ``RobotTrack``s; the camera; the
contacts ``ContactResult``) -> ``ClipResult``, which is also what a results file gives back. Stages take records
and return new ones (``dataclasses.replace``); nothing here imports anything but the constants and the errors.

Frame numbers are 0-based decoded-frame indices everywhere: Something-Else frame ``NNNN.jpg`` is ``NNNN - 1``.
Pixel coordinates are in the original frame (SSv2: 240 px high), x right, y down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from enrich.constants import HAND_LEFT, HAND_RIGHT, HAND_SLOT


@dataclass(frozen=True)
class ClipMeta:
    """SSv2 metadata of one clip; unknown fields stay at their defaults."""

    video_id: str
    class_id: int = -1  # official SSv2 class id (0..173), -1 when unknown
    template: str = ""  # "Putting [something] onto [something]"
    label: str = ""  # template filled with the placeholders
    placeholders: tuple[str, ...] = ()


# Fixes ``ClipBoxes.cleaned`` counts: one box can need several (swapped, then clipped)
BOX_FIXES: tuple[str, ...] = ("nonfinite_boxes", "swapped_boxes", "boxes_beyond_clip", "clipped_boxes", "outside_boxes")


@dataclass(frozen=True)
class ClipBoxes:
    """Something-Else boxes of one clip, one row per box."""

    video_id: str
    frame_index: np.ndarray  # (N,) int32, 0-based decoded frame
    slot: np.ndarray  # (N,) int16, HAND_SLOT for hands, else the object slot (standard_category "0001" -> 1)
    box_xyxy_px: np.ndarray  # (N, 4) float32, x1, y1, x2, y2 in pixels of the original frame
    slot_names: tuple[str, ...] = ()  # free-text category of object slot k at position k ("" when unseen)
    n_annotated_frames: int = 0  # frames listed in the annotation (frame_index < this)
    # set by ``cleaned``: the (n_frames, width, height) it checked against and its fix counts, so a second
    # stage given the same boxes does not clean them again
    cleaned_for: tuple[int | None, int | None, int | None] | None = None
    fixes: tuple[tuple[str, int], ...] = ()

    def hand_boxes(self, frame: int) -> np.ndarray:
        """(K, 4) hand boxes of one frame."""
        keep = (self.frame_index == frame) & (self.slot == HAND_SLOT)
        return self.box_xyxy_px[keep]

    def cleaned(
        self, n_frames: int | None = None, width: int | None = None, height: int | None = None
    ) -> tuple[ClipBoxes, dict[str, int]]:
        """The usable boxes and how many of each fix was needed (keys ``BOX_FIXES``).

        Non-finite boxes are dropped, swapped corners put in order, boxes outside frames [0, ``n_frames``)
        dropped, boxes clipped to the ``width`` x ``height`` frame, and boxes left with no area dropped. A
        ``None`` size skips its check (a box-only run knows no frame size). Boxes already cleaned for the
        same frame count and size come back as they are, with the counts of that cleaning."""
        if self.cleaned_for == (n_frames, width, height):
            return self, dict(self.fixes)
        xyxy = np.asarray(self.box_xyxy_px, np.float32).reshape(-1, 4)
        frame = np.asarray(self.frame_index)
        finite = np.isfinite(xyxy).all(axis=1)
        swapped = finite & ((xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1]))
        xyxy = np.concatenate([np.minimum(xyxy[:, :2], xyxy[:, 2:]), np.maximum(xyxy[:, :2], xyxy[:, 2:])], axis=1)
        keep = finite & ((frame >= 0) & (frame < n_frames) if n_frames is not None else True)
        changed = np.zeros(len(frame), bool)
        if width is not None and height is not None:
            clipped = np.clip(xyxy, 0.0, np.array([width, height, width, height], np.float32))
            changed = keep & np.any(clipped != xyxy, axis=1)
            xyxy = clipped
        has_area = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        counts = {
            "nonfinite_boxes": int(np.count_nonzero(~finite)),
            "swapped_boxes": int(np.count_nonzero(swapped)),
            "boxes_beyond_clip": int(np.count_nonzero(finite & ~keep)),
            "clipped_boxes": int(np.count_nonzero(changed & has_area)),
            "outside_boxes": int(np.count_nonzero(keep & ~has_area)),
        }
        keep &= has_area
        clean = replace(
            self, frame_index=frame[keep], slot=self.slot[keep], box_xyxy_px=xyxy[keep],
            cleaned_for=(n_frames, width, height), fixes=tuple(counts.items()),
        )  # fmt: skip
        return clean, counts

    @classmethod
    def empty(cls, video_id: str) -> ClipBoxes:
        return cls(
            video_id,
            np.zeros(0, np.int32),
            np.zeros(0, np.int16),
            np.zeros((0, 4), np.float32),
        )


@dataclass(frozen=True)
class ClipSource:
    """Where one clip's pixels are: a video file or a folder of 1-based ``NNNN.jpg`` frames."""

    video_id: str
    path: str
    kind: Literal["video", "frames"]


@dataclass(frozen=True)
class Clip:
    """Decoded pixels of one clip."""

    video_id: str
    frames_rgb: np.ndarray  # (T, H, W, 3) uint8
    fps: float
    source: str  # path it was read from

    @property
    def n_frames(self) -> int:
        return int(self.frames_rgb.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames_rgb.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames_rgb.shape[2])


@dataclass(frozen=True)
class ManoTrack:
    """MANO fit of one hand track: T rows, observed frames plus interpolated short gaps."""

    side: str
    frame_index: np.ndarray  # (T,) int32, 0-based decoded frame
    global_orient: np.ndarray  # (T, 3) axis-angle, camera frame
    hand_pose: np.ndarray  # (T, 45) axis-angle per joint, relative to the flat hand
    betas: np.ndarray  # (10,) one shape per track
    transl: np.ndarray  # (T, 3) metres, camera frame (smplx's transl)
    joints3d: np.ndarray  # (T, 21, 3) metres, camera frame, MediaPipe order
    residual_2d_px: np.ndarray  # (T,) mean reprojection error of the fitted keypoints, -1 where unobserved
    residual_3d_mm: np.ndarray  # (T,) mean root-relative error against the scaled world landmarks, -1 where unobserved
    observed: np.ndarray  # (T,) bool: the 2D stage saw the hand in this frame
    interpolated: np.ndarray  # (T,) bool: filled across a short gap
    segment: np.ndarray  # (T,) int16: long gaps (and inconsistent detections) split a track into segments 0, 1, ...
    reliable: np.ndarray | None = None  # (T,) bool: the fit of this frame is trustworthy (see the lift); None: all 0
    detection_status: np.ndarray | None = None  # (T2D,) int8 per 2D detection: 0 used, 1 dropped, 2 split; None: 0
    objective: float = float("nan")  # final value of the fit's objective (per frame); not stored
    focal_px: float = 0.0  # focal length of the camera the fit is in (the lift's estimate when it was free); not stored

    def __post_init__(self) -> None:
        if self.reliable is None:  # frozen: the default is filled in once, here
            object.__setattr__(self, "reliable", np.zeros(len(self.frame_index), bool))

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])

    def params(self) -> dict[str, np.ndarray]:
        """MANO parameters for ``smplx.MANO(use_pca=False, flat_hand_mean=True)``; betas (10,) for all rows."""
        return {
            "global_orient": self.global_orient,
            "hand_pose": self.hand_pose,
            "betas": self.betas,
            "transl": self.transl,
        }


@dataclass(frozen=True)
class RobotTrack:
    """Joint angles of one robot hand retargeted from one MANO track (T rows, the fit's frames)."""

    robot: str  # robot model name ("shadow")
    side: str
    joint_names: tuple[str, ...]
    frame_index: np.ndarray  # (T,) int32, 0-based decoded frame (the fit's)
    angles_rad: np.ndarray  # (T, DoF) float32, within the joint limits
    residual_mm: np.ndarray  # (T,) float32, mean error of the wrist->tip and thumb->tip vectors (robot scale)
    tip_error_mm: np.ndarray  # (T, 5) float32, wrist->tip vector error per finger; NaN where the robot has none
    root_rotation: np.ndarray  # (T, 3, 3) float32, palm frame -> camera frame (det -1 for mirrored left hands)
    root_position_m: np.ndarray  # (T, 3) float32, the palm origin, robot wrist on the human wrist, camera frame
    scale: float  # robot size / human size: human vectors are multiplied by this
    mirrored: bool  # a left hand retargeted onto the mirror image of a right-hand model

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])


# HandTrack's per-frame arrays, in its field order
TRACK_ARRAYS = ("frame_index", "keypoints2d", "world_landmarks", "presence", "handedness", "roi_source", "roi")


@dataclass(frozen=True)
class HandTrack:
    """One hand of one clip: its 2D detections (T rows, frame_index increasing), the lift's fit of them (``fit``,
    over its own frames) and that fit retargeted to robot hands (``robots``)."""

    side: str  # "left" or "right" (true anatomical side; SSv2 is not mirrored)
    frame_index: np.ndarray  # (T,) int32
    keypoints2d: np.ndarray  # (T, 21, 3) float32: x px, y px, MediaPipe's relative z (x's scale)
    world_landmarks: np.ndarray  # (T, 21, 3) float32, metres, MediaPipe's hand-centred frame, image axes
    presence: np.ndarray  # (T,) float32, landmark model's hand-presence score in [0, 1]
    handedness: np.ndarray  # (T,) float32, probability that the hand is a right hand
    roi_source: np.ndarray  # (T,) int8, index into ROI_SOURCES
    roi: np.ndarray  # (T, 5) float32: centre x px, centre y px, width px, height px, rotation rad
    fit: ManoTrack | None = None  # the lift of this track (its own frame_index: observed + interpolated)
    robots: dict[str, RobotTrack] = field(default_factory=dict)  # retargeted robot hands, by robot name

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])

    def rows(self, index: slice | np.ndarray) -> HandTrack:
        """The same hand over the selected rows (per-frame arrays only; the fit is not carried over)."""
        return HandTrack(self.side, **{name: getattr(self, name)[index] for name in TRACK_ARRAYS})

    def with_fit(self, fit: ManoTrack | None) -> HandTrack:
        """The same track with ``fit`` as its lift (and no robot tracks: they were retargeted from the old one)."""
        return replace(self, fit=fit, robots={})  # robot tracks follow the fit: a new fit drops them

    def robot(self, name: str) -> RobotTrack:
        """The fit retargeted to robot ``name``: angles_rad (T, DoF), frame_index (T,), residual_mm (T,), ..."""
        if name not in self.robots:
            have = ", ".join(sorted(self.robots)) or "none"
            raise KeyError(f"{self.side} hand: no {name!r} robot track (retargeted: {have}); run enrich retarget")
        return self.robots[name]

    @property
    def mano(self) -> dict[str, np.ndarray] | None:
        """global_orient (T', 3), hand_pose (T', 45), betas (10,), transl (T', 3) over ``fit.frame_index``."""
        return self.fit.params() if self.fit is not None else None

    @property
    def joints3d(self) -> np.ndarray | None:
        """(T', 21, 3) metres, camera frame, MediaPipe order, over ``fit.frame_index``."""
        return self.fit.joints3d if self.fit is not None else None


@dataclass(frozen=True)
class ContactFrames:
    """One row per (frame, hand, object slot) where the hand is seen and the slot has a box; N rows."""

    frame_index: np.ndarray  # (N,) int32, 0-based decoded frame
    hand: np.ndarray  # (N,) int8: 0 left, 1 right, 2 unknown (box-only)
    object_slot: np.ndarray  # (N,) int16: Something-Else standard_category number
    probability: np.ndarray  # (N,) float32: per-frame contact probability (before temporal smoothing)
    in_contact: np.ndarray  # (N,) bool: inside a contact segment (after hysteresis, gaps, min duration)
    fingers: (
        np.ndarray
    )  # (N,) uint8: bit k = constants.FINGER_NAMES[k] touches the box (0 when not in contact / box-only)
    evidence: np.ndarray  # (N,) uint8: evidence bits (enrich.contacts.EVIDENCE_*)
    min_tip_distance: np.ndarray  # (N,) float32: nearest fingertip to the box, hand sizes (0 inside); NaN box-only
    box_overlap: np.ndarray  # (N,) float32: share of the hand's box (or keypoints' box) inside the object box
    gap_hand: np.ndarray  # (N,) float32: hand extent to object box gap, hand sizes (<0: penetration depth)
    co_motion_logit: np.ndarray  # (N,) float32: co-motion log-likelihood ratio (0 when unknown)

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])

    @classmethod
    def empty(cls) -> ContactFrames:
        return cls(**{k: np.zeros(0, dt) for k, dt in CONTACT_FRAME_DTYPES.items()})


CONTACT_FRAME_DTYPES: dict[str, type] = {
    "frame_index": np.int32,
    "hand": np.int8,
    "object_slot": np.int16,
    "probability": np.float32,
    "in_contact": np.bool_,
    "fingers": np.uint8,
    "evidence": np.uint8,
    "min_tip_distance": np.float32,
    "box_overlap": np.float32,
    "gap_hand": np.float32,
    "co_motion_logit": np.float32,
}


@dataclass(frozen=True)
class ContactSegments:
    """Contact intervals, S rows; start and end are inclusive 0-based frames."""

    hand: np.ndarray  # (S,) int8
    object_slot: np.ndarray  # (S,) int16
    start: np.ndarray  # (S,) int32
    end: np.ndarray  # (S,) int32, inclusive
    fingers: np.ndarray  # (S,) uint8: OR of the rows' finger bits

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @property
    def n_frames(self) -> np.ndarray:
        return self.end - self.start + 1


@dataclass(frozen=True)
class ContactResult:
    frames: ContactFrames
    segments: ContactSegments
    hand_box_match: np.ndarray  # (n_frames,) int8: -1 no hand box, 0 left, 1 right, 2 box not matched (box-only)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ClipHands:
    """The hands of one clip: the 2D stage makes it (its tracks), the lift adds their fits and the focal length it
    used, the contact stage its contacts; each returns a new one."""

    video_id: str
    n_frames: int
    width: int
    height: int
    fps: float
    hands: dict[str, HandTrack] = field(default_factory=dict)  # keys from SIDES
    focal_px: float = 0.0  # pinhole focal length the lift used (principal point: frame centre); 0 = not lifted
    contacts: ContactResult | None = None  # hand-object contacts against the Something-Else boxes


@dataclass(frozen=True)
class ClipTask:
    """Everything a worker needs for one clip; small and picklable (no pixels)."""

    src: ClipSource
    boxes: ClipBoxes | None
    meta: ClipMeta
    notes: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # inputs this clip lacks, as run-warning kinds: "no_boxes", "no_metadata"


@dataclass(frozen=True)
class ClipResult:
    """One clip through the pipeline, and what a results file gives back for it.

    ``tracks`` is None for a failed clip (``error`` says why). ``notes`` are warnings of the run (boxes cleaned,
    text truncated ...); ``box_fixes`` counts the box fixes (``ClipBoxes.cleaned``) for the run's summary.
    Timings and ``box_fixes`` are not stored."""

    meta: ClipMeta
    source: str = ""
    tracks: ClipHands | None = None
    error: str = ""
    notes: tuple[str, ...] = ()
    box_fixes: Mapping[str, int] = field(default_factory=dict)
    missing: tuple[str, ...] = ()  # ClipTask.missing, for the run's summary (not stored)
    decode_s: float = 0.0
    track_s: float = 0.0
    lift_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.tracks is not None and not self.error

    @property
    def status(self) -> str:
        return "ok" if self.ok else "failed"

    @property
    def video_id(self) -> str:
        return self.meta.video_id

    @property
    def note(self) -> str:
        return "; ".join(self.notes)

    @property
    def hands(self) -> dict[str, HandTrack]:
        """Detected sides only; ``.fit`` holds each one's MANO lift."""
        return self.tracks.hands if self.tracks is not None else {}

    @property
    def contacts(self) -> ContactResult | None:
        return self.tracks.contacts if self.tracks is not None else None

    @property
    def n_frames(self) -> int:
        return self.tracks.n_frames if self.tracks is not None else 0

    @property
    def fps(self) -> float:
        return self.tracks.fps if self.tracks is not None else 0.0

    @property
    def width(self) -> int:
        return self.tracks.width if self.tracks is not None else 0

    @property
    def height(self) -> int:
        return self.tracks.height if self.tracks is not None else 0

    @property
    def focal_px(self) -> float:
        """Pinhole focal length of the lift (principal point at the frame centre); 0: no lift."""
        return self.tracks.focal_px if self.tracks is not None else 0.0

    @property
    def hand_frames(self) -> int:
        return sum(len(t) for t in self.hands.values())

    @property
    def frames_with_hand(self) -> int:
        """Frames where the 2D stage found at least one hand (a frame with both hands counts once)."""
        frames = [t.frame_index for t in self.hands.values()]
        return len(np.unique(np.concatenate(frames))) if frames else 0

    @property
    def hand_box_frames(self) -> tuple[int, int]:
        """(frames with a Something-Else hand box, of those where a detected hand matched the box)."""
        match = self.contacts.hand_box_match if self.contacts is not None else np.zeros(0, np.int8)
        return int(np.count_nonzero(match >= 0)), int(np.count_nonzero(np.isin(match, (HAND_LEFT, HAND_RIGHT))))
