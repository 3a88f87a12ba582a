"""The built-in robot hands (Shadow, Allegro, LEAP): model files and keypoint specs, and ``load_robot``.

Each spec says which robot frames stand in for MediaPipe's keypoints. The wrist is the bottom centre of the
palm and the MCPs the finger joints that bend the finger forward, as on the human hand, so that the palm
frame (wrist, index/middle/ring MCP) and the wrist->tip vectors mean the same on every hand. Fingertip points
sit a few mm inside the tip's end, as the Shadow model's tip sites do. Allegro and LEAP have no little finger
(keypoints 17-20 are absent) and box or mesh collision shapes: their fingers get spheres along their
midlines, keypoint to keypoint.
The scale (robot size / human size) is measured per track by the retargeting; limits come from the models.
"""

from __future__ import annotations

from pathlib import Path

from enrich.robot.model import KeypointSpec, RobotHand, RobotModelError
from enrich.robot.parse import load_mjcf, load_urdf

ASSETS = Path(__file__).resolve().parent / "assets"

SHADOW_SPEC = KeypointSpec(
    root_body="robot0:palm",
    points={
        0: "robot0:palm", 1: "robot0:thbase", 2: "robot0:thhub", 3: "robot0:thdistal", 4: "robot0:S_thtip",
        5: "robot0:ffproximal", 6: "robot0:ffmiddle", 7: "robot0:ffdistal", 8: "robot0:S_fftip",
        9: "robot0:mfproximal", 10: "robot0:mfmiddle", 11: "robot0:mfdistal", 12: "robot0:S_mftip",
        13: "robot0:rfproximal", 14: "robot0:rfmiddle", 15: "robot0:rfdistal", 16: "robot0:S_rftip",
        17: "robot0:lfproximal", 18: "robot0:lfmiddle", 19: "robot0:lfdistal", 20: "robot0:S_lftip",
    },
)  # fmt: skip

# Allegro (Wonik, Menagerie's wonik_allegro): fingers along the palm's +z, index at +y, palm 95 mm long.
# Joint 0 of a finger spreads it, joint 1 bends it at the knuckle (the MCP), 2 and 3 are PIP and DIP.
ALLEGRO_SPEC = KeypointSpec(
    root_body="palm",
    points={
        0: "palm", 1: "th_proximal", 2: "th_medial", 3: "th_distal", 4: "th_tip",
        5: "ff_proximal", 6: "ff_medial", 7: "ff_distal", 8: "ff_tip",
        9: "mf_proximal", 10: "mf_medial", 11: "mf_distal", 12: "mf_tip",
        13: "rf_proximal", 14: "rf_medial", 15: "rf_distal", 16: "rf_tip",
    },
    offsets_m={
        0: (0.0, 0.0, -0.095),  # bottom of the palm's collision box
        4: (0.0, 0.0, 0.047),  # thumb tip capsule: ends at 55 mm, 12 mm radius
        8: (0.0, 0.0, 0.033), 12: (0.0, 0.0, 0.033), 16: (0.0, 0.0, 0.033),  # finger tips end at 41 mm
    },
    link_radius_m=0.011,  # the links' collision boxes are 20 x 27 mm across
)  # fmt: skip

# LEAP (CMU, Menagerie's leap_hand): fingers along the palm's +x, index at +y, thumb out along +y near the
# wrist. A finger's first joint (mcp) bends it, the second (rot) spreads it, then PIP and DIP.
LEAP_SPEC = KeypointSpec(
    root_body="palm",
    points={
        0: "palm", 1: "th_bs", 2: "th_px", 3: "th_ds", 4: "th_ds",
        5: "if_bs", 6: "if_md", 7: "if_ds", 8: "if_ds",
        9: "mf_bs", 10: "mf_md", 11: "mf_ds", 12: "mf_ds",
        13: "rf_bs", 14: "rf_md", 15: "rf_ds", 16: "rf_ds",
    },
    # LEAP's joint frames sit at the servo horns, 14.5 mm to the side of the finger's midline (along the
    # flexion axis, body z): the points are moved onto the midline
    offsets_m={
        0: (-0.100, -0.0369, -0.0187),  # bottom of the palm, below the middle finger's midline
        2: (0.0, 0.0, -0.0142), 3: (0.0, 0.0, -0.0142),
        4: (0.0, -0.054, -0.0142),  # thumb tip mesh: ends at 62 mm along the distal link
        **{k: (0.0, 0.0, 0.0145) for k in (5, 6, 7, 9, 10, 11, 13, 14, 15)},
        8: (0.0, -0.042, 0.0145), 12: (0.0, -0.042, 0.0145), 16: (0.0, -0.042, 0.0145),  # tips end at 50 mm
    },
    link_radius_m=0.010,  # the links' collision boxes are about 20 x 26 mm across
)  # fmt: skip

# Built-in robots: name -> (model file, keypoint spec). Others load from the user's MJCF/URDF with their own spec.
BUILTIN: dict[str, tuple[Path, KeypointSpec]] = {
    "shadow": (ASSETS / "shadow_hand" / "shadow_hand_right.xml", SHADOW_SPEC),
    "allegro": (ASSETS / "wonik_allegro" / "right_hand.xml", ALLEGRO_SPEC),
    "leap": (ASSETS / "leap_hand" / "right_hand.xml", LEAP_SPEC),
}

# Retargeting settings per built-in robot (RetargetConfig fields): the joint-acceleration weight of the temporal
# stage (rad -> m) and the close-pinch cap, chosen over a grid for joint jerk within 1.2x the MANO track's and
# the pinch kept on each data set, by leave-one-clip-out nested cross-validation on the 13 SSv2 clips and the samples
# (benchmarks/choose_robot_smoothing.py, RESULTS.md).
RETARGET_SETTINGS: dict[str, dict[str, float]] = {
    "shadow": {"accel_weight_m_per_rad": 0.02, "pinch_rel_cap": 1.0},
    "allegro": {"accel_weight_m_per_rad": 0.03, "pinch_rel_cap": 2.0},
    "leap": {"accel_weight_m_per_rad": 0.04, "pinch_rel_cap": 2.0},
}


def load_robot(name_or_path: str | Path, spec: KeypointSpec | None = None) -> RobotHand:
    """A built-in robot by name (shadow, allegro, leap), or a user's MJCF (.xml) / URDF (.urdf) with its spec."""
    if str(name_or_path) in BUILTIN:
        path, dflt = BUILTIN[str(name_or_path)]
        return load_mjcf(path, spec or dflt, name=str(name_or_path))
    path = Path(name_or_path)
    if spec is None:
        raise RobotModelError(f"robot model {path}: not a built-in robot ({', '.join(BUILTIN)}); give a KeypointSpec")
    if path.suffix.lower() == ".urdf":
        return load_urdf(path, spec)
    return load_mjcf(path, spec)
