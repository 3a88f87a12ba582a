"""Named constants shared by every stage, defined once: sides, MediaPipe's landmark indices, MANO sizes.

MediaPipe hand landmarks (21): 0 wrist; thumb 1 CMC, 2 MCP, 3 IP, 4 tip; then per finger (index 5-8, middle
9-12, ring 13-16, pinky 17-20) MCP, PIP, DIP, tip.
"""

from __future__ import annotations

import numpy as np

SIDES: tuple[str, str] = ("left", "right")  # stored side codes: index in this tuple
HAND_NAMES: tuple[str, str, str] = ("left", "right", "unknown")  # contact ``hand`` codes; 2 = box-only
HAND_LEFT, HAND_RIGHT, HAND_UNKNOWN = 0, 1, 2

# Contact rows' ``evidence`` bits
EVIDENCE_KEYPOINTS = 1  # proximity from the 2D keypoints (dilated by a finger radius)
EVIDENCE_BOX_ONLY = 2  # proximity from the Something-Else hand box alone; side unknown
EVIDENCE_CO_MOTION = 4  # hand and object velocities were both known in the co-motion window
EVIDENCE_SURFACE = 8  # the slot is a surface (box covering most of the frame): not the manipulated object
EVIDENCE_MANIPULATED = 16  # the slot is the clip's manipulated object (first non-surface slot)
EVIDENCE_SIDE_CONTINUED = 32  # box-only row whose side comes from the hand track it continues
EVIDENCE_HELD = 64  # the manipulated object has no box in the clip: the hand's own extent stands for it

# Where a detection's region of interest came from; the stored ``roi_source`` is the index in this tuple.
ROI_SOURCES: tuple[str, ...] = ("box", "track", "palm", "scan")
ROI_BOX, ROI_TRACK, ROI_PALM, ROI_SCAN = 0, 1, 2, 3  # scan: a crop on the frame edge (enrich.hand_search)

HAND_SLOT = -1  # ``slot`` of a Something-Else hand box; objects use their standard_category number

SSV2_FPS = 12.0  # SSv2 videos and Something-Else frame folders; frame folders carry no rate of their own

N_KEYPOINTS = 21  # MediaPipe hand landmarks
N_BETAS = 10  # MANO shape parameters used everywhere (files may hold more; the rest are dropped)
N_HAND_POSE = 45  # MANO hand_pose: 15 joints x axis-angle
N_MANO_JOINTS = 16  # MANO's kinematic tree: root + 15

MP_WRIST = 0
MP_INDEX_MCP, MP_MIDDLE_MCP, MP_RING_MCP, MP_PINKY_MCP = 5, 9, 13, 17

FINGER_NAMES: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")  # contact ``fingers`` bit k
FINGERTIPS: tuple[int, ...] = (4, 8, 12, 16, 20)  # landmark of each finger's tip, in FINGER_NAMES order
# Wrist and MCPs: the rigid part of the hand (its velocity, its size, the lift's palm)
PALM: tuple[int, ...] = (MP_WRIST, MP_INDEX_MCP, MP_MIDDLE_MCP, MP_RING_MCP, MP_PINKY_MCP)
FINGERTIPS_IDX = np.array(FINGERTIPS)
PALM_IDX = np.array(PALM)
