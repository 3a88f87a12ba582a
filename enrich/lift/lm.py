"""The Levenberg-Marquardt path of the fit (the default on cpu): solve the numpy problem, the fit's record."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from enrich.constants import N_BETAS
from enrich.lift import solver as lift_solver
from enrich.lift.anatomy import bone_length
from enrich.lift.config import LiftConfig
from enrich.lift.joint_model import JointModel
from enrich.lift.problem import Problem, TrackRows
from enrich.records import ManoTrack


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
    span: TrackRows, init: dict[str, np.ndarray], model: JointModel, lp: Problem, config: LiftConfig
) -> ManoTrack:
    """The LM path of fit_track: solve from ``init`` (initial.initial_params), then the fit's record."""
    glob = _unwrap_rotvecs(init["global_orient"], span.segment)
    w = np.concatenate([glob[:, None], init["hand_pose"].reshape(-1, 15, 3)], 1)
    settings = lift_solver.SolverSettings(max_iterations=config.max_iterations)
    w, transl, betas, loss, _, log_f = lift_solver.solve(
        model.skeleton, lp, w, init["transl"], np.zeros(N_BETAS), settings
    )
    kp = lift_solver.forward(model.skeleton, w, transl, betas, jac=False).joints_kp
    focal = lp.K[[0, 1], [0, 1]] * np.exp(log_f)
    uv = kp[..., :2] / kp[..., 2:].clip(1e-3) * focal + lp.K[:2, 2]
    err2d = np.linalg.norm(uv - lp.image, axis=-1).mean(-1)
    rel = kp - kp[:, :1]
    rel = rel / bone_length(kp)[:, None, None] * lp.size_ref
    err3d = 1000 * np.linalg.norm(rel - lp.world_rel, axis=-1).mean(-1)
    params = {"global_orient": w[:, 0], "hand_pose": w[:, 1:].reshape(-1, 45), "betas": betas, "transl": transl}
    fit = span.mano_track(params, kp, err2d, err3d)
    return replace(fit, objective=loss / len(span.frame_index), focal_px=float(focal[0]))
