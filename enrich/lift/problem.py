"""One track's fit problem in numpy: its observations and priors, read by both solvers (lm.py, lbfgs.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from enrich.handmodel import MEDIAPIPE_FROM_MANO
from enrich.lift.anatomy import BONES, LEVER_UNIT_M, bone_length, joint_axes, joint_limits, lever_scale
from enrich.lift.config import LiftConfig
from enrich.lift.screening import triples
from enrich.records import ManoTrack


@dataclass(frozen=True)
class TrackRows:
    """The N rows a track's fit spans: observed frames and interpolated gaps, in segments."""

    side: str
    frame_index: np.ndarray  # (N,) int32, 0-based decoded frame
    segment: np.ndarray  # (N,) int16, 0, 1, ... (a long gap or an inconsistent detection starts a new one)
    rows: np.ndarray  # (N,) the 2D track's row of each frame, -1 where interpolated
    seen: np.ndarray  # (N,) bool: the frame carries a usable observation

    def mano_track(
        self, params: dict[str, np.ndarray], joints3d: np.ndarray, err2d_px: np.ndarray, err3d_mm: np.ndarray
    ) -> ManoTrack:
        """The fit's record: ``params`` global_orient (N, 3), hand_pose (N, 45), betas (10,), transl (N, 3) m;
        joints3d (N, 21, 3) m; per-row mean errors, stored as -1 where unobserved."""
        f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
        return ManoTrack(
            side=self.side,
            frame_index=self.frame_index,
            global_orient=f32(params["global_orient"]),
            hand_pose=f32(params["hand_pose"]),
            betas=f32(params["betas"]),
            transl=f32(params["transl"]),
            joints3d=f32(joints3d),
            residual_2d_px=f32(np.where(self.seen, err2d_px, -1.0)),
            residual_3d_mm=f32(np.where(self.seen, err3d_mm, -1.0)),
            observed=self.seen,
            interpolated=self.rows < 0,
            segment=self.segment,
        )


@dataclass(frozen=True)
class Weights:
    sigma_2d_px: float
    sigma_world_m: float
    sigma_pose_rad: float
    sigma_limit_rad: float
    sigma_shape: float
    robust_accel: bool
    world_depth_only: bool
    sigma_log_focal: float = 0.0  # prior σ of the log focal length about K's; 0: the focal length is fixed


@dataclass(frozen=True)
class Problem:
    """One track's observations and priors over its N rows (all segments)."""

    image: np.ndarray  # (N, 21, 2) px
    conf: np.ndarray  # (N, 21)
    world_rel: np.ndarray  # (N, 21, 3) world landmarks, wrist-relative, scale-normalised to size_ref
    K: np.ndarray  # (3, 3)
    size_ref: float  # summed bone lengths of the model's mean hand, metres
    bones: np.ndarray  # (20, 2) MediaPipe bones, for the fitted hand's size
    triples: np.ndarray  # (M, 3) rows t-1, t, t+1 inside one segment, for acceleration
    accel_sigma: np.ndarray  # (51,) acceleration σ of each per-frame LM variable (rad or m per frame^2)
    axes: np.ndarray  # (15, 3, 3) flexion, abduction, twist axes
    limits: np.ndarray  # (15, 3, 2)
    pose_scale: np.ndarray  # (45,) radians per unit of the L-BFGS pose variables (anatomy.lever_scale)
    weights: Weights


def accel_sigma(rest21: np.ndarray, sigma_m: float) -> np.ndarray:
    """(51,) acceleration σ of each per-frame LM variable: a rotation's σ is the joint σ over its lever (the joint
    to its fingertip; the wrist to the middle fingertip for the global rotation), the translation's is the joint σ."""
    lever = np.zeros(16)
    lever[0] = np.linalg.norm(rest21[18] - rest21[0])
    lever[1:] = LEVER_UNIT_M / lever_scale(rest21)[::3]
    return np.concatenate([np.repeat(sigma_m / np.maximum(lever, 0.01), 3), np.full(3, sigma_m)])


def weights(config: LiftConfig, fit_focal: bool) -> Weights:
    return Weights(
        config.sigma_2d_px,
        config.sigma_world_m,
        config.sigma_pose_rad,
        config.sigma_limit_rad,
        config.sigma_shape,
        config.robust_accel,
        config.world_depth_only,
        config.sigma_log_focal if fit_focal else 0.0,
    )


def track_problem(
    image: np.ndarray,
    world: np.ndarray,
    conf: np.ndarray,
    K: np.ndarray,
    segment: np.ndarray,
    rest21: np.ndarray,
    side: str,
    config: LiftConfig,
    temporal: bool = True,
    fit_focal: bool = False,
) -> Problem:
    """image (N, 21, 2) px, world (N, 21, 3) m, conf (N, 21), segment (N,); rest21: the model's rest points at the
    mean shape, which sets the reference size, the joint axes and the levers. ``temporal``: couple frames."""
    size_ref = float(bone_length(rest21[MEDIAPIPE_FROM_MANO][None])[0])
    world_rel = world - world[:, :1]
    return Problem(
        image=np.asarray(image, np.float64),
        conf=np.asarray(conf, np.float64),
        world_rel=world_rel / bone_length(world_rel)[:, None, None] * size_ref,
        K=np.asarray(K, np.float64),
        size_ref=size_ref,
        bones=BONES,
        triples=triples(segment) if temporal else np.zeros((0, 3), np.int64),
        accel_sigma=accel_sigma(rest21, config.sigma_accel_m),
        axes=joint_axes(rest21, side),
        limits=joint_limits(),
        pose_scale=lever_scale(rest21),
        weights=weights(config, fit_focal),
    )
