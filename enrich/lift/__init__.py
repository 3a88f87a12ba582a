"""Lift stage: 2D hand tracks -> MANO sequences (``stage``), one job per module: ``config`` (settings, camera),
``joint_model`` (keypoints-only forward, keypoint corrections), ``anatomy`` (axes, limits, IK, placement),
``screening`` (detections screened, track layout, observations), ``initial`` (starting values), ``lm`` with
``solver`` (Levenberg-Marquardt, the default) and ``lbfgs`` (torch L-BFGS). Other code imports from here."""

from enrich.lift.anatomy import joint_axes
from enrich.lift.config import LiftConfig, intrinsics
from enrich.lift.joint_model import MANO21_FROM_MP, JointModel, keypoint_corrections
from enrich.lift.screening import DETECTION_DROPPED, DETECTION_SPLIT, DETECTION_USED, layout, screen_detections
from enrich.lift.stage import HandFitter, fit_track, hand_model_info, lift_clip

__all__ = [
    "DETECTION_DROPPED",
    "DETECTION_SPLIT",
    "DETECTION_USED",
    "MANO21_FROM_MP",
    "HandFitter",
    "JointModel",
    "LiftConfig",
    "fit_track",
    "hand_model_info",
    "intrinsics",
    "joint_axes",
    "keypoint_corrections",
    "layout",
    "lift_clip",
    "screen_detections",
]
