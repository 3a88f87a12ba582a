"""The Levenberg-Marquardt path of the fit (the default on cpu): the numpy problem from the torch one, solve, result."""

from __future__ import annotations

import numpy as np

from enrich.constants import N_BETAS
from enrich.lift import solver as lift_solver
from enrich.lift.anatomy import BONES, LEVER_UNIT_M, TRANSL_UNIT_M, bone_length, lever_scale
from enrich.lift.config import LiftConfig
from enrich.lift.joint_model import JointModel
from enrich.lift.lbfgs import TorchProblem
from enrich.records import ManoTrack


def _accel_sigma(rest21: np.ndarray, sigma_m: float) -> np.ndarray:
    """(51,) acceleration σ of each per-frame LM variable: a rotation's σ is the joint σ over its lever (the joint
    to its fingertip; the wrist to the middle fingertip for the global rotation), the translation's is the joint σ."""
    lever = np.zeros(16)
    lever[0] = np.linalg.norm(rest21[18] - rest21[0])
    lever[1:] = LEVER_UNIT_M / lever_scale(rest21)[::3]
    return np.concatenate([np.repeat(sigma_m / np.maximum(lever, 0.01), 3), np.full(3, sigma_m)])


def _unwrap_rotvecs(rotvec: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Rotation vectors that change continuously within each segment (w and w - 2 pi w/|w| are the same rotation),
    so second differences of the global orientation measure its angular acceleration."""
    out = rotvec.copy()
    for t in range(1, len(out)):
        if segment[t] != segment[t - 1]:
            continue
        theta = np.linalg.norm(out[t])
        if theta < 1e-9:
            continue
        alt = out[t] * (1 - 2 * np.pi / theta)
        if np.linalg.norm(alt - out[t - 1]) < np.linalg.norm(out[t] - out[t - 1]):
            out[t] = alt
    return out


def fit_lm(
    side: str,
    frames: np.ndarray,
    segment: np.ndarray,
    rows: np.ndarray,
    seen: np.ndarray,
    init: dict[str, np.ndarray],
    model: JointModel,
    rest21: np.ndarray,
    problem: TorchProblem,
    config: LiftConfig,
    fit_focal: bool = False,
) -> ManoTrack:
    """The LM path of fit_track: numpy problem from the torch one, solve, result. rest21: fit_track's (mean shape)."""
    to_np = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731
    world_rel = to_np(problem.world_rel) / to_np(problem.world_size)[:, None, None] * problem.size_ref
    lp = lift_solver.Problem(
        image=to_np(problem.image),
        conf=to_np(problem.conf),
        world_rel=world_rel,
        K=to_np(problem.K),
        size_ref=problem.size_ref,
        bones=BONES,
        triples=problem.triples.cpu().numpy().astype(np.int64),
        accel_sigma=_accel_sigma(rest21, config.sigma_accel_m),
        axes=to_np(problem.axes),
        limits=to_np(problem.limits),
        weights=lift_solver.Weights(
            config.sigma_2d_px,
            config.sigma_world_m,
            config.sigma_pose_rad,
            config.sigma_limit_rad,
            config.sigma_shape,
            config.robust_accel,
            config.world_depth_only,
            config.sigma_log_focal if fit_focal else 0.0,
        ),
    )
    glob = _unwrap_rotvecs(init["global_orient"], segment)
    w = np.concatenate([glob[:, None], (init["pose_u"] * lever_scale(rest21)).reshape(-1, 15, 3)], 1)
    transl = init["transl_cm"] * TRANSL_UNIT_M
    settings = lift_solver.SolverSettings(max_iterations=config.max_iterations)
    w, transl, betas, loss, _, log_f = lift_solver.solve(model.skeleton, lp, w, transl, np.zeros(N_BETAS), settings)
    kp = lift_solver.forward(model.skeleton, w, transl, betas, jac=False).joints_kp
    focal = lp.K[[0, 1], [0, 1]] * np.exp(log_f)
    uv = kp[..., :2] / kp[..., 2:].clip(1e-3) * focal + lp.K[:2, 2]
    err2d = np.linalg.norm(uv - lp.image, axis=-1).mean(-1)
    rel = kp - kp[:, :1]
    rel = rel / bone_length(kp)[:, None, None] * problem.size_ref
    err3d = 1000 * np.linalg.norm(rel - world_rel, axis=-1).mean(-1)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    fit = ManoTrack(
        side=side,
        frame_index=frames,
        global_orient=f32(w[:, 0]),
        hand_pose=f32(w[:, 1:].reshape(-1, 45)),
        betas=f32(betas),
        transl=f32(transl),
        joints3d=f32(kp),
        residual_2d_px=np.where(seen, err2d, -1.0).astype(np.float32),
        residual_3d_mm=np.where(seen, err3d, -1.0).astype(np.float32),
        observed=seen,
        interpolated=rows < 0,
        segment=segment,
        objective=loss / len(frames),
        focal_px=float(focal[0]),
    )
    return fit
