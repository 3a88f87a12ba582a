"""Hand anatomy for the fit: joint axes and limits, bones, analytic inverse kinematics, camera placement, and
the scales the optimisers work in."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# --- limits: rest-pose anatomy gives each joint a flexion, abduction and twist axis ---

# (lo, hi) radians for flexion, abduction, twist, per MANO joint 1..15 (index, middle, pinky, ring: MCP, PIP, DIP;
# thumb: CMC, MCP, IP). The thumb's axes are only roughly anatomical, so its limits are loose.
_FINGER_LIMITS = (
    ((-0.4, 1.7), (-0.4, 0.4), (-0.2, 0.2)),
    ((-0.1, 2.0), (-0.1, 0.1), (-0.1, 0.1)),
    ((-0.3, 1.5), (-0.1, 0.1), (-0.1, 0.1)),
)
_THUMB_LIMITS = (
    ((-1.0, 1.0), (-1.0, 1.0), (-1.0, 1.0)),
    ((-0.6, 1.3), (-0.5, 0.5), (-0.5, 0.5)),
    ((-0.6, 1.5), (-0.3, 0.3), (-0.3, 0.3)),
)
# child of each MANO joint 1..15 in the 21 points [16 joints, tips thumb, index, middle, ring, pinky]
_CHILD = np.array([2, 3, 17, 5, 6, 18, 8, 9, 20, 11, 12, 19, 14, 15, 16])


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def joint_axes(rest21: np.ndarray, side: str) -> np.ndarray:
    """(15, 3, 3) rows = flexion axis, palm normal, bone direction of joints 1..15 at rest.

    rest21: (21, 3) rest points in [16 joints + 5 tips] order. A positive rotation about the flexion axis bends
    the bone towards the palm; the palm normal comes from the hand's chirality, so it holds for either side."""
    wrist, index, middle, pinky = rest21[0], rest21[1], rest21[4], rest21[7]
    f = unit(middle - wrist)
    s = unit((index - pinky) - np.dot(index - pinky, f) * f)  # towards the thumb
    palm = np.cross(s, f) if side == "right" else np.cross(f, s)
    bones = unit(rest21[_CHILD] - rest21[1:16])
    flex = unit(np.cross(bones, palm))
    return np.stack([flex, np.cross(flex, bones), bones], 1)  # orthonormal rows


def joint_limits() -> np.ndarray:
    """(15, 3, 2) lo/hi in MANO joint order 1..15."""
    fingers = [np.array(_FINGER_LIMITS)] * 4
    return np.concatenate(fingers + [np.array(_THUMB_LIMITS)], 0)


# --- inverse kinematics and placement, for the initial values ---


def rotvec_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3) minimal rotation vectors turning directions a into b."""
    a, b = unit(a), unit(b)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True)
    return unit(axis) * np.arctan2(sin, cos)


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(T, 3, 3) rotations R minimising |R src - dst| for centred point sets src (P, 3), dst (T, P, 3) (batched SVD)."""
    s = src - src.mean(0)
    d = dst - dst.mean(1, keepdims=True)
    u, _, vt = np.linalg.svd(np.einsum("pi,tpj->tij", s, d))
    v, ut = np.swapaxes(vt, -1, -2), np.swapaxes(u, -1, -2)
    flip = np.ones((len(dst), 3))
    flip[:, 2] = np.sign(np.linalg.det(v @ ut))
    return (v * flip[:, None]) @ ut


def inverse_kinematics(rest21: np.ndarray, observed21: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Analytic IK: rest (21, 3) and observed (T, 21, 3) points ([16 joints + tips] order, any translation)
    -> global_orient (T, 3), hand_pose (T, 45). Each bone is swung onto its observed direction; no twist."""
    palm = [0, 1, 4, 7, 10]
    glob = _kabsch(rest21[palm], observed21[:, palm])
    frames = {0: glob}
    local = np.zeros((observed21.shape[0], 15, 3))
    for j in range(1, 16):
        parent = 0 if j in (1, 4, 7, 10, 13) else j - 1
        rest_bone = rest21[_CHILD[j - 1]] - rest21[j]
        seen = observed21[:, _CHILD[j - 1]] - observed21[:, j]
        in_parent = np.einsum("tji,tj->ti", frames[parent], seen)  # parent^T @ seen
        local[:, j - 1] = rotvec_between(np.broadcast_to(rest_bone, in_parent.shape), in_parent)
        frames[j] = frames[parent] @ Rotation.from_rotvec(local[:, j - 1]).as_matrix()
    return Rotation.from_matrix(glob).as_rotvec(), local.reshape(-1, 45)


def translation_pnp(world_m: np.ndarray, image_px: np.ndarray, weight: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame position (T, 3) of the world landmarks' origin: linear least squares, orientation as given.

    world_m (T, 21, 3) camera-aligned metres, image_px (T, 21, 2), weight (T, 21)."""
    f, cx, cy = K[0, 0], K[0, 2], K[1, 2]
    du, dv = image_px[..., 0] - cx, image_px[..., 1] - cy
    zeros = np.zeros_like(du)
    rows_u = np.stack([np.full_like(du, f), zeros, -du], -1)
    rows_v = np.stack([zeros, np.full_like(dv, f), -dv], -1)
    A = np.concatenate([rows_u, rows_v], 1) * np.concatenate([weight, weight], 1)[..., None]
    rhs_u = du * world_m[..., 2] - f * world_m[..., 0]
    rhs_v = dv * world_m[..., 2] - f * world_m[..., 1]
    b = np.concatenate([rhs_u, rhs_v], 1) * np.concatenate([weight, weight], 1)
    return np.stack([np.linalg.lstsq(a, y, rcond=None)[0] for a, y in zip(A, b, strict=True)])


def along_view_rays(world_m: np.ndarray, image_px: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Turn each frame's world landmarks from the crop's view to the camera's: MediaPipe estimates them as seen
    along the ray through the hand, which is not the optical axis for a hand off the image centre."""
    centre = image_px.mean(1)
    rays = np.concatenate([(centre - K[:2, 2]) / K[[0, 1], [0, 1]], np.ones((len(centre), 1))], 1)
    rot = Rotation.from_rotvec(rotvec_between(np.broadcast_to([0.0, 0.0, 1.0], rays.shape), rays)).as_matrix()
    return np.einsum("tij,tkj->tki", rot, world_m)


# MediaPipe bones (parent, child): thumb chain, the other fingers' chains, wrist to each finger's base
BONES = np.array(
    [(0, 1), (1, 2), (2, 3), (3, 4)]
    + [(b, b + 1) for f in range(5, 21, 4) for b in (f, f + 1, f + 2)]
    + [(0, f) for f in range(5, 21, 4)]
)


def bone_length(points_mp: np.ndarray) -> np.ndarray:
    """(T,) summed bone lengths of (T, 21, 3) MediaPipe-ordered points."""
    return np.linalg.norm(points_mp[:, BONES[:, 0]] - points_mp[:, BONES[:, 1]], axis=-1).sum(1).clip(1e-6)


TRANSL_UNIT_M = 0.01  # translation is optimised in cm, so all variables move on similar scales for L-BFGS


LEVER_UNIT_M = 0.05  # finger rotations are optimised as the fingertip travel they cause, in units of 5 cm


def lever_scale(rest21: np.ndarray) -> np.ndarray:
    """(45,) radians per optimisation unit of each hand_pose entry: a DIP turns a 2 cm lever, an MCP a 9 cm one,
    so in radians L-BFGS sees gradients 5x apart; in fingertip travel they are alike."""
    tips = {1: 17, 4: 18, 7: 20, 10: 19, 13: 16}  # first joint of each finger -> its tip in rest21
    lever = np.zeros(15)
    for j in range(15):
        tip = tips[1 + 3 * (j // 3)]
        lever[j] = np.linalg.norm(rest21[tip] - rest21[j + 1])
    return np.repeat(LEVER_UNIT_M / np.maximum(lever, 0.01), 3)
