"""The lift's settings (stored with every results file) and the default camera."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class LiftConfig:
    """Weights and limits of the fit; stored with every results file."""

    focal_scale: float = 1.0  # default focal length = focal_scale * max(width, height) px
    sigma_log_focal: float = 4.0  # with no camera given, the clip's focal length is estimated about the default
    # with this prior σ of its log (0: the default is used as is; 4.0 chosen by benchmarks/choose_focal_prior.py)
    sigma_2d_px: float = 2.5  # keypoint noise per axis (measured on SSv2 clips: ~2.3 px); robust beyond
    # L-BFGS path only (the LM path always uses "joints"): "bones": world-landmark bone directions; "joints":
    # scale-normalised positions
    world_term: str = "joints"
    sigma_world_m: float = 0.008  # error of a world-landmark bone (or joint), per axis
    world_depth_only: bool = True  # world landmarks constrain only what the image cannot: depth
    sigma_pose_rad: float = 1.0  # Gaussian prior on each hand_pose component about the flat hand
    sigma_limit_rad: float = 0.1  # soft joint limits: how far outside the range one σ is
    sigma_shape: float = 1.0  # betas are unit Gaussian by construction
    sigma_accel_m: float = 0.02  # joint acceleration per frame^2 at 12 fps (~3 m/s^2: manipulation)
    robust_accel: bool = True  # pseudo-Huber on accelerations, so sharp real motion is not smoothed away
    side_certainty: float = 0.5  # a lone hand with a handedness vote less certain than this: both models decide
    view_rays: bool = True  # turn world landmarks from the crop's line of sight to the camera's axes
    max_gap_frames: int = 6  # gaps up to this long are interpolated, longer ones split the track
    calibrated_keypoints: bool = True  # MediaPipe-defined keypoints (enrich.keypoints); False: the model's joints
    reject_outliers: bool = True  # drop (or split at) detections inconsistent with their track: screen_detections
    solver: str = "lm"  # "lm": Levenberg-Marquardt (numpy, CPU); "lbfgs": torch L-BFGS (any device other than cpu)
    max_iterations: int = 10  # LM path only: iterations at most; it stops earlier once a step gains < 1e-4 of the loss
    rigid_iterations: int = 0  # L-BFGS path only: iterations on orientation and translation alone
    iterations: int = 60  # L-BFGS path only: iterations on everything (the LM path reads max_iterations)
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def uses_lbfgs(self) -> bool:
        """Whether fits take the torch L-BFGS path (the LM path runs on the CPU only)."""
        return self.solver != "lm" or self.device != "cpu"


def intrinsics(width: int, height: int, focal_scale: float) -> np.ndarray:
    """(3, 3) default pinhole matrix for a frame of ``width`` x ``height`` px."""
    f = focal_scale * max(width, height)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float64)
