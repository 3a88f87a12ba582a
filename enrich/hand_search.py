"""Where to look for a hand when neither a Something-Else box nor a tracked hand says where it is.

In SSv2 the hand is usually the thing that moves: ``motion_boxes`` are the regions moving at a frame.

SSv2 hands are often large and cut by the frame edge (close to the camera, entering from below or the side):
the palm detector, which needs a visible palm, misses them, but the landmark model finds them in a crop that
sits on the edge with the fingers pointing into the frame. ``edge_rois`` are those crops.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from enrich.landmark_models import mirrored

# (edge, positions along it as a share of its length, crop rotation: fingers pointing away from the edge)
_EDGES = (
    ("bottom", (0.25, 0.5, 0.75), 0.0),
    ("left", (0.35, 0.7), math.pi / 2),
    ("right", (0.35, 0.7), -math.pi / 2),
)
EDGE_INSET = 0.3  # crop centre's distance from the edge, as a share of the crop side: a third of the crop is outside


def edge_rois(width: int, height: int, sizes: tuple[float, ...], mirror: bool = False) -> list[np.ndarray]:
    """Square crops (centre x, y, side, side, rotation) on the bottom, left and right edges; ``sizes`` are crop
    sides as shares of the frame height. Bottom-centre first: the commonest place of a hand entering SSv2. With
    ``mirror`` each crop is followed by its mirror image (the landmark model scores the two differently)."""
    rois = []
    for size in sizes:
        side = size * height
        for edge, positions, angle in _EDGES:
            for f in positions:
                if edge == "bottom":
                    centre = (f * width, height - EDGE_INSET * side)
                elif edge == "left":
                    centre = (EDGE_INSET * side, f * height)
                else:
                    centre = (width - EDGE_INSET * side, f * height)
                rois.append(np.array([*centre, side, side, angle], np.float32))
    rois = sorted(rois, key=lambda r: abs(float(r[0]) - width / 2) + abs(float(r[1]) - height))
    return [r for roi in rois for r in ((roi, mirrored(roi)) if mirror else (roi,))]


# A hand cut by the frame edge enters from that edge: its fingers point away from it (crop angle, rad).
EDGE_ANGLES = {"bottom": 0.0, "left": math.pi / 2, "right": -math.pi / 2, "top": math.pi}


def edge_angle(box: np.ndarray, width: int, height: int, tol_px: float = 2.0) -> float:
    """Likeliest crop rotation for a box: fingers away from the frame edge it touches, else upright."""
    touches = {
        "bottom": box[3] >= height - tol_px,
        "left": box[0] <= tol_px,
        "right": box[2] >= width - tol_px,
        "top": box[1] <= tol_px,
    }
    return next((EDGE_ANGLES[e] for e, hit in touches.items() if hit), 0.0)


THUMB_PX = 64  # side of the grey thumbnail the change test compares (a 240 px frame: ~4 px per thumbnail pixel)


def thumbnail(frame_rgb: np.ndarray) -> np.ndarray:
    """(64, 64) int16 grey thumbnail of a frame: what the change test compares."""
    grey = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB_PX, THUMB_PX), interpolation=cv2.INTER_AREA).astype(np.int16)


class EdgeScan:
    """The edge crops of one clip, each run again only where its region changed since it last found nothing.

    The landmark model is deterministic: on the same pixels an edge crop that saw no hand sees none again. A hand
    entering the frame changes the region it enters; a still background does not. Saves most edge crops on clips
    where nothing moves at the edges (often: no hand at all)."""

    def __init__(
        self,
        width: int,
        height: int,
        sizes: tuple[float, ...],
        min_change: float,
        mirror: bool = False,
        keep: int = 0,
        first_presence: float = 0.0,
    ) -> None:
        self.rois = edge_rois(width, height, sizes, mirror)[: keep or None]  # keep: the likeliest crops only
        self.min_change = min_change
        # with ``mirror``, a crop's mirror image runs only if the crop reached this presence: most regions hold no
        # hand, and the likelier view says so
        self.first_presence = first_presence if mirror else 0.0
        self._cells = [_thumb_cells(roi, width, height) for roi in self.rois]
        self._last: list[np.ndarray | None] = [None] * len(self.rois)

    @classmethod
    def bottom_centre(cls, width: int, height: int, size: float, first_presence: float) -> EdgeScan:
        """The bottom-centre crop and its mirror image (that only past ``first_presence``), run whether or not
        their region changed: where SSv2 hands most often come in, small and dark, a hand already there when the
        crop last looked moves too little to pass a change test."""
        return cls(width, height, (size,), 0.0, mirror=True, keep=2, first_presence=first_presence)

    def mirror_to_skip(self, i: int, presence: float) -> int | None:
        """Index of crop ``i``'s mirror image (the crop after it, with ``mirror``) when crop ``i``, a straight
        view, stayed below ``first_presence``: the mirror image is then not worth running. None otherwise."""
        return i + 1 if i % 2 == 0 and presence < self.first_presence else None

    def due(self, thumb: np.ndarray) -> list[int]:
        """Indices of the crops, likeliest first, that never ran or whose region changed by at least
        ``min_change`` grey levels (mean absolute difference) since they last found nothing."""
        out = []
        for i, ((y0, y1), (x0, x1)) in enumerate(self._cells):
            last = self._last[i]
            if last is None or float(np.abs(thumb[y0:y1, x0:x1] - last[y0:y1, x0:x1]).mean()) >= self.min_change:
                out.append(i)
        return out

    def ran(self, i: int, thumb: np.ndarray, found: bool) -> None:
        """Record a run: a crop that found nothing waits for its region to change; one that found a hand stays due
        (if tracking loses the hand, the crop that found it looks again)."""
        self._last[i] = None if found else thumb


def _thumb_cells(roi: np.ndarray, width: int, height: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Thumbnail rows and columns an axis-aligned edge crop covers, clipped to the frame."""
    half = float(abs(roi[2])) / 2
    rows = [round(THUMB_PX * min(max(v, 0.0), 1.0)) for v in ((roi[1] - half) / height, (roi[1] + half) / height)]
    cols = [round(THUMB_PX * min(max(v, 0.0), 1.0)) for v in ((roi[0] - half) / width, (roi[0] + half) / width)]
    return (rows[0], max(rows[1], rows[0] + 1)), (cols[0], max(cols[1], cols[0] + 1))


MOTION_GAP_FRAMES = 2  # compare a frame with the frames this far before and after it
MOTION_MIN_DIFF = 20  # grey levels (of 255) a pixel must differ by from both
MOTION_MIN_SIDE = 0.05  # a moving region's area must reach this share of the frame height, squared


def motion_boxes(frames_rgb: np.ndarray, t: int, max_boxes: int = 1) -> list[np.ndarray]:
    """Boxes (x0, y0, x1, y1 px) of the largest regions moving at frame ``t``, largest first: where a hand that
    no detector sees may be, in SSv2 the thing that moves. A pixel moves if it differs from both the frame before
    and the frame after (the moving thing where it is now, not where it was); at the clip's ends, from either."""
    n = len(frames_rgb)
    grey = [_grey(frames_rgb[u]) for u in (max(t - MOTION_GAP_FRAMES, 0), t, min(t + MOTION_GAP_FRAMES, n - 1))]
    before, after = np.abs(grey[1] - grey[0]), np.abs(grey[1] - grey[2])
    inner = 0 < t < n - 1 and t - MOTION_GAP_FRAMES >= 0 and t + MOTION_GAP_FRAMES < n
    diff = np.minimum(before, after) if inner else np.maximum(before, after)
    mask = cv2.morphologyEx((diff > MOTION_MIN_DIFF).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
    min_area = (MOTION_MIN_SIDE * frames_rgb.shape[1]) ** 2
    big = sorted((s for s in stats[1:] if s[4] >= min_area), key=lambda s: -s[4])[:max_boxes]
    return [np.array([s[0], s[1], s[0] + s[2], s[1] + s[3]], np.float32) for s in big]


def _grey(frame_rgb: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY), (5, 5), 0).astype(np.int16)
