"""Robot hands from MANO tracks: robot models (MJCF/URDF, numpy kinematics), retargeting, drawing.

Imports only ``enrich.records``, numpy and scipy (MuJoCo, optional, only to render).
"""

from enrich.records import RobotTrack
from enrich.robot.builtin import BUILTIN, load_robot
from enrich.robot.model import FINGERS, KeypointSpec, RobotHand, RobotModelError
from enrich.robot.retarget import RetargetConfig, default_config, retarget_track, robot_keypoints_camera

__all__ = [
    "BUILTIN",
    "FINGERS",
    "KeypointSpec",
    "RetargetConfig",
    "RobotHand",
    "RobotModelError",
    "RobotTrack",
    "default_config",
    "load_robot",
    "retarget_track",
    "robot_keypoints_camera",
]
