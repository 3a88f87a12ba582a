"""Initial values of a track's fit: IK on the world landmarks, placement on the image, gaps interpolated."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp

from enrich.constants import N_BETAS
from enrich.lift.anatomy import inverse_kinematics, translation_pnp
from enrich.lift.joint_model import MANO21_FROM_MP, JointModel


def _fill(values: np.ndarray, known: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Linear interpolation (nearest at the ends) of (N, D) values across unknown rows, per segment."""
    out = values.copy()
    idx = np.arange(len(values))
    for s in np.unique(segment):
        m = segment == s
        k = m & known
        for d in range(values.shape[1]):
            out[m, d] = np.interp(idx[m], idx[k], values[k, d])
    return out


def _fill_rotations(rotvec: np.ndarray, known: np.ndarray, segment: np.ndarray) -> np.ndarray:
    out = rotvec.copy()
    idx = np.arange(len(rotvec))
    for s in np.unique(segment):
        m, k = segment == s, (segment == s) & known
        if k.sum() == 1:
            out[m] = rotvec[k][0]
            continue
        slerp = Slerp(idx[k], Rotation.from_rotvec(rotvec[k]))
        out[m] = slerp(np.clip(idx[m], idx[k][0], idx[k][-1])).as_rotvec()
    return out


def _place(rel: np.ndarray, image: np.ndarray, conf: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame wrist (T, 3) of root-relative camera-oriented points rel (T, 21, 3) seen at image (T, 21, 2).

    Depth first from size (weak perspective: the spread of the points against the spread of their projections,
    always positive), then the linear PnP where it agrees with it; the linear solve alone goes behind the camera
    when the posed points do not match the image well."""
    f = K[0, 0]
    w = conf / np.maximum(conf.sum(1, keepdims=True), 1e-9)
    centre_3d, centre_2d = (w[..., None] * rel).sum(1), (w[..., None] * image).sum(1)
    spread_3d = np.sqrt((w * ((rel[..., :2] - centre_3d[:, None, :2]) ** 2).sum(-1)).sum(1))
    spread_2d = np.sqrt((w * ((image - centre_2d[:, None]) ** 2).sum(-1)).sum(1))
    z = f * spread_3d / np.maximum(spread_2d, 1e-6)  # depth of the centroid
    centroid = np.concatenate([(centre_2d - K[:2, 2]) / K[[0, 1], [0, 1]] * z[:, None], z[:, None]], 1)
    weak = centroid - centre_3d
    pnp = translation_pnp(rel, image, conf, K)
    depth_ok = np.abs(pnp[:, 2] + centre_3d[:, 2] - z) < 0.3 * z
    return np.where(depth_ok[:, None], pnp, weak)


def initial_params(
    model: JointModel,
    rest21: np.ndarray,
    image: np.ndarray,
    world: np.ndarray,
    conf: np.ndarray,
    seen: np.ndarray,
    segment: np.ndarray,
    K: np.ndarray,
) -> dict[str, np.ndarray]:
    """IK on the world landmarks for the rotations, then the model's own posed joints placed onto the image.
    rest21: the model's rest points at the mean shape (JointModel.rest21)."""
    glob, pose = inverse_kinematics(rest21, world[seen][:, MANO21_FROM_MP])
    with torch.no_grad():
        f = lambda a: torch.as_tensor(a, dtype=model.dtype, device=model.device)  # noqa: E731
        posed = model(f(glob), f(pose), f(np.zeros(N_BETAS)), f(np.zeros((len(glob), 3)))).cpu().numpy()
    wrist_cam = _place(posed - posed[:, :1], image[seen], conf[seen], K)
    n = len(seen)
    full = {"global_orient": np.zeros((n, 3)), "hand_pose": np.zeros((n, 45)), "transl": np.zeros((n, 3))}
    full["global_orient"][seen], full["hand_pose"][seen] = glob, pose
    full["transl"][seen] = wrist_cam - rest21[0]
    full["global_orient"] = _fill_rotations(full["global_orient"], seen, segment)
    full["hand_pose"] = _fill(full["hand_pose"], seen, segment)
    full["transl"] = _fill(full["transl"], seen, segment)
    return full
