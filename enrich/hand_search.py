"""Where to look for a hand when neither a Something-Else box nor a tracked hand says where it is.

SSv2 hands are often large and cut by the frame edge (close to the camera, entering from below or the side):
the palm detector, which needs a visible palm, misses them, but the landmark model finds them in a crop that
sits on the edge with the fingers pointing into the frame. ``edge_rois`` are those crops.
"""

from __future__ import annotations

import math

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
