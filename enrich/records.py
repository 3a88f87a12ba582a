"""Small typed records passed between stages: clip -> 2D tracks -> (later) MANO -> contacts.

Frame numbers are 0-based decoded-frame indices everywhere: Something-Else frame ``NNNN.jpg`` is ``NNNN - 1``.
Pixel coordinates are in the original frame (SSv2: 240 px high), x right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from enrich.contacts import ContactResult

SIDES: tuple[str, str] = ("left", "right")
# Where a detection's region of interest came from; the stored ``roi_source`` is the index in this tuple.
ROI_SOURCES: tuple[str, str, str] = ("box", "track", "palm")
ROI_BOX, ROI_TRACK, ROI_PALM = 0, 1, 2
HAND_SLOT = -1  # ``slot`` of a Something-Else hand box; objects use their standard_category number
N_KEYPOINTS = 21


class ClipError(Exception):
    """A clip that cannot be processed; the message is one line naming the clip and the cause."""

    def __init__(self, video_id: str, cause: str) -> None:
        self.video_id = video_id
        self.cause = cause
        super().__init__(f"clip {video_id}: {cause}")


@dataclass(frozen=True)
class ClipMeta:
    """SSv2 metadata of one clip; unknown fields stay at their defaults."""

    video_id: str
    class_id: int = -1  # official SSv2 class id (0..173), -1 when unknown
    template: str = ""  # "Putting [something] onto [something]"
    label: str = ""  # template filled with the placeholders
    placeholders: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClipBoxes:
    """Something-Else boxes of one clip, one row per box."""

    video_id: str
    frame_index: np.ndarray  # (N,) int32, 0-based decoded frame
    slot: np.ndarray  # (N,) int16, HAND_SLOT for hands, else the object slot (standard_category "0001" -> 1)
    box_xyxy_px: np.ndarray  # (N, 4) float32, x1, y1, x2, y2 in pixels of the original frame
    slot_names: tuple[str, ...] = ()  # free-text category of object slot k at position k ("" when unseen)
    n_annotated_frames: int = 0  # frames listed in the annotation (frame_index < this)

    def hand_boxes(self, frame: int) -> np.ndarray:
        """(K, 4) hand boxes of one frame."""
        keep = (self.frame_index == frame) & (self.slot == HAND_SLOT)
        return self.box_xyxy_px[keep]

    @classmethod
    def empty(cls, video_id: str) -> ClipBoxes:
        return cls(
            video_id,
            np.zeros(0, np.int32),
            np.zeros(0, np.int16),
            np.zeros((0, 4), np.float32),
        )


@dataclass
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


@dataclass
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

    def __post_init__(self) -> None:
        if self.reliable is None:
            self.reliable = np.zeros(len(self.frame_index), bool)

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


# HandTrack2D's per-frame arrays, in its field order
TRACK_ARRAYS = ("frame_index", "keypoints2d", "world_landmarks", "presence", "handedness", "roi_source", "roi")


@dataclass
class HandTrack2D:
    """One hand of one clip over the frames where it was detected (T rows, frame_index increasing)."""

    side: str  # "left" or "right" (true anatomical side; SSv2 is not mirrored)
    frame_index: np.ndarray  # (T,) int32
    keypoints2d: np.ndarray  # (T, 21, 3) float32: x px, y px, MediaPipe's relative z (x's scale)
    world_landmarks: np.ndarray  # (T, 21, 3) float32, metres, MediaPipe's hand-centred frame, image axes
    presence: np.ndarray  # (T,) float32, landmark model's hand-presence score in [0, 1]
    handedness: np.ndarray  # (T,) float32, probability that the hand is a right hand
    roi_source: np.ndarray  # (T,) int8, index into ROI_SOURCES
    roi: np.ndarray  # (T, 5) float32: centre x px, centre y px, width px, height px, rotation rad
    fit: ManoTrack | None = None  # the lift of this track (its own frame_index: observed + interpolated)

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])

    def rows(self, index: slice | np.ndarray) -> HandTrack2D:
        """The same hand over the selected rows (per-frame arrays only; the fit is not carried over)."""
        return HandTrack2D(self.side, **{name: getattr(self, name)[index] for name in TRACK_ARRAYS})

    @property
    def mano(self) -> dict[str, np.ndarray] | None:
        """global_orient (T', 3), hand_pose (T', 45), betas (10,), transl (T', 3) over ``fit.frame_index``."""
        return self.fit.params() if self.fit is not None else None

    @property
    def joints3d(self) -> np.ndarray | None:
        """(T', 21, 3) metres, camera frame, MediaPipe order, over ``fit.frame_index``."""
        return self.fit.joints3d if self.fit is not None else None


@dataclass
class ClipTracks:
    """Output of the 2D stage for one clip."""

    video_id: str
    n_frames: int
    width: int
    height: int
    fps: float
    hands: dict[str, HandTrack2D] = field(default_factory=dict)  # keys from SIDES
    focal_px: float = 0.0  # pinhole focal length the lift used (principal point: frame centre); 0 = not lifted
    contacts: ContactResult | None = None  # hand-object contacts against the Something-Else boxes
