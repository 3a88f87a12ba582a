"""Where to look for a hand when neither a Something-Else box nor a tracked hand says where it is.

SSv2 hands are often large and cut by the frame edge (close to the camera, entering from below or the side):
the palm detector, which needs a visible palm, misses them, but the landmark model finds them in a crop that
sits on the edge with the fingers pointing into the frame. ``edge_rois`` are those crops.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# (edge, positions along it as a share of its length, crop rotation: fingers pointing away from the edge)
_EDGES = (
    ("bottom", (0.25, 0.5, 0.75), 0.0),
    ("left", (0.35, 0.7), math.pi / 2),
    ("right", (0.35, 0.7), -math.pi / 2),
)
EDGE_INSET = 0.3  # crop centre's distance from the edge, as a share of the crop side: a third of the crop is outside


def edge_rois(width: int, height: int, sizes: tuple[float, ...]) -> list[np.ndarray]:
    """Square crops (centre x, y, side, side, rotation) on the bottom, left and right edges; ``sizes`` are crop
    sides as shares of the frame height. Bottom-centre first: the commonest place of a hand entering SSv2."""
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
    return sorted(rois, key=lambda r: abs(float(r[0]) - width / 2) + abs(float(r[1]) - height))


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

    def __init__(self, width: int, height: int, sizes: tuple[float, ...], min_change: float) -> None:
        self.rois = edge_rois(width, height, sizes)
        self.min_change = min_change
        self._cells = [_thumb_cells(roi, width, height) for roi in self.rois]
        self._last: list[np.ndarray | None] = [None] * len(self.rois)

    def due(self, thumb: np.ndarray) -> list[int]:
        """Indices of the crops (likeliest first) whose region changed by at least ``min_change`` grey levels
        (mean absolute difference) since the crop last ran, or that never ran."""
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
