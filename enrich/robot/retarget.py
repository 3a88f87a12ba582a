"""Retargeting of a MANO track to a robot hand's joint angles (vector optimisation, all frames at once).

In the style of DexMV / AnyTeleop / dex-retargeting (their method, this code): the robot's keypoint vectors
(wrist to fingertips and PIPs, thumb tip to the other tips, between neighbouring tips) are matched to the
human hand's, expressed in the palm frame and scaled to the robot's size. Thumb-to-finger vectors gain weight,
and their length becomes a target of its own, as the human's pinch closes (DexPilot's pinch weighting).
Collision spheres on the fingers keep fingers out of each other (the pinching tips excepted: their
distance is the target), and coupled joints (fixed tendons) stay coupled.

Two stages, both within the joint limits (box-projected Gauss-Newton):
1. frame by frame, each frame warm-started from the previous frame's solution (or, where that is worse, from
   a cold solve of the frame: a wrong basin is not carried along);
2. all frames of the track at once with a penalty on joint acceleration (a banded system over T x DoF).
The wrist's position and orientation are not robot joints here: they are kept as the palm frame's pose in the
camera (``root_rotation``, ``root_position_m``), for an arm to follow. Left hands are mirrored onto the
(right) robot model: their angles drive the mirror image of the robot, a left hand.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.linalg import solveh_banded

from enrich.records import ManoTrack, RobotTrack
from enrich.robot.builtin import RETARGET_SETTINGS
from enrich.robot.model import TIPS, RobotHand, positions

MIRROR = np.diag([-1.0, 1.0, 1.0])  # camera x -> -x: a left hand becomes a right hand
PIPS: tuple[int, ...] = (3, 6, 10, 14, 18)  # per finger, the joint two below the tip (thumb: IP)
ADJACENT_TIPS: tuple[tuple[int, int], ...] = ((8, 12), (12, 16), (16, 20))
HELD_STIFFNESS = 1e6  # stage 2: added to the diagonal of angles held at a limit


@dataclass(frozen=True)
class RetargetConfig:
    """Weights are per metre of vector error (residuals are metres); angles enter through ``*_m_per_rad``."""

    tip_weight: float = 1.0  # wrist -> fingertip vectors
    pip_weight: float = 0.5  # wrist -> PIP vectors: the finger's bend, not just where its tip is
    pinch_weight: float = 0.5  # thumb tip -> finger tip vectors, always
    pinch_boost: float = 6.0  # added to thumb -> finger vectors and distances as the human's pinch closes
    pinch_near_m: float = 0.015  # human thumb-finger tip distance at which the boost is full
    pinch_far_m: float = 0.04  # ... and from which it is zero
    pinch_rel_cap: float = 1.0  # the distance term's weight grows as 1 / distance below pinch_near_m, to this x
    spread_weight: float = 0.3  # between neighbouring fingertips
    collision_weight: float = 20.0  # per metre of sphere overlap: 1 mm of overlap weighs as 2 cm of vector error
    coupling_weight_m_per_rad: float = 0.05  # coupled joints (fixed tendons), per radian of mismatch
    rest_weight_m_per_rad: float = 0.0005  # pull to the rest pose for what the vectors leave open
    accel_weight_m_per_rad: float = 0.01  # stage 2: per rad/frame^2 of joint acceleration (built-in robots: own)
    cold_iters: int = 12  # cold solves of every frame from the rest pose (all frames at once)
    first_frame_iters: int = 8  # more, for the first frame of a segment (nothing to warm-start it)
    warm_iters: int = 1  # per frame, from the previous frame's solution (stage 2 does the polishing)
    switch_ratio: float = 0.5  # leave the warm start for the cold solve only when that costs this much less
    joint_iters: int = 20  # stage 2 (the cost still falls after 8: a collision or a limit bends its path)


def default_config(robot: RobotHand) -> RetargetConfig:
    """The configuration a robot is retargeted with unless one is given: a built-in robot's own joint-acceleration
    weight and close-pinch cap (chosen by cross-validation, benchmarks/choose_robot_smoothing.py)."""
    return replace(RetargetConfig(), **RETARGET_SETTINGS.get(robot.name, {}))


@dataclass
class _Problem:
    """Per-frame targets of one track, in the robot's palm frame."""

    pairs: np.ndarray  # (V, 2) keypoint indices a, b: vector x_b - x_a
    targets: np.ndarray  # (T, V, 3) metres
    weights: np.ndarray  # (T, V)
    pinch_pairs: np.ndarray  # (P, 2) thumb tip, finger tip
    pinch_dist_m: np.ndarray  # (T, P) scaled human distance
    pinch_weights: np.ndarray  # (T, P)


def canonical_frames(points: np.ndarray) -> np.ndarray:
    """(..., 3, 3) hand frames from (..., 21, 3) keypoints: columns forward (wrist -> middle MCP), side
    (ring MCP -> index MCP, orthogonalised), normal. Right-handed for a right hand."""
    fwd = points[..., 9, :] - points[..., 0, :]
    fwd = fwd / np.linalg.norm(fwd, axis=-1, keepdims=True)
    side = points[..., 5, :] - points[..., 13, :]  # ring, not little MCP: it moves less with the palm's arch
    side = side - fwd * np.sum(side * fwd, axis=-1, keepdims=True)
    side = side / np.linalg.norm(side, axis=-1, keepdims=True)
    return np.stack([fwd, side, np.cross(fwd, side)], axis=-1)


def hand_length_m(points: np.ndarray) -> np.ndarray:
    """(...,) wrist -> middle MCP -> PIP -> DIP -> tip length."""
    chain = points[..., [0, 9, 10, 11, 12], :]
    return np.linalg.norm(np.diff(chain, axis=-2), axis=-1).sum(-1)


def _vector_pairs(robot: RobotHand) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V, 2) pairs, their kind (0 tip, 1 pip, 2 thumb-finger, 3 spread) and the pinch pairs (P, 2)."""
    have = robot.has_point
    pairs, kinds = [], []
    for tip in TIPS:
        if have[tip]:
            pairs.append((0, tip)), kinds.append(0)
    for pip in PIPS:
        if have[pip]:
            pairs.append((0, pip)), kinds.append(1)
    pinch = [(4, tip) for tip in TIPS[1:] if have[4] and have[tip]]
    for p in pinch:
        pairs.append(p), kinds.append(2)
    for a, b in ADJACENT_TIPS:
        if have[a] and have[b]:
            pairs.append((a, b)), kinds.append(3)
    return np.array(pairs), np.array(kinds), np.array(pinch).reshape(-1, 2)


def _pinch_ramp(dist_m: np.ndarray, cfg: RetargetConfig) -> np.ndarray:
    return np.clip((cfg.pinch_far_m - dist_m) / (cfg.pinch_far_m - cfg.pinch_near_m), 0.0, 1.0)


def _problem(local_m: np.ndarray, human_local_m: np.ndarray, robot: RobotHand, cfg: RetargetConfig) -> _Problem:
    """Targets from the human's keypoints in the palm frame, scaled (local_m) and unscaled (human_local_m)."""
    pairs, kinds, pinch = _vector_pairs(robot)
    targets = local_m[:, pairs[:, 1]] - local_m[:, pairs[:, 0]]
    base = np.array([cfg.tip_weight, cfg.pip_weight, cfg.pinch_weight, cfg.spread_weight])[kinds]
    weights = np.broadcast_to(base, targets.shape[:2]).copy()
    human_pinch_m = np.linalg.norm(human_local_m[:, pinch[:, 1]] - human_local_m[:, pinch[:, 0]], axis=-1)
    boost = cfg.pinch_boost * _pinch_ramp(human_pinch_m, cfg)
    weights[:, kinds == 2] += boost
    scaled_pinch = np.linalg.norm(local_m[:, pinch[:, 1]] - local_m[:, pinch[:, 0]], axis=-1)
    # a close pinch is judged by its relative error: 1.5 mm off a 1 cm pinch is as wrong as 3 mm off 2 cm
    rel = np.clip(cfg.pinch_near_m / np.maximum(human_pinch_m, 1e-6), 1.0, cfg.pinch_rel_cap)
    return _Problem(pairs, targets, weights, pinch, scaled_pinch, boost * rel)


@dataclass
class _Geometry:
    """What the cost needs of angles q (B, J) alone: the keypoints and their Jacobians, and the normal
    equations of the collision, coupling and rest terms. It does not depend on the frame's targets, so the
    solution of one frame is the warm start of the next without another forward kinematics."""

    x: np.ndarray  # (B, K, 3) the keypoints the vectors use
    jac: np.ndarray  # (B, K, 3, J)
    cost: np.ndarray  # (B,)
    grad: np.ndarray  # (B, J) J^T r
    hess: np.ndarray  # (B, J, J) J^T J

    def take(self, rows: np.ndarray) -> _Geometry:
        return _Geometry(self.x[rows], self.jac[rows], self.cost[rows], self.grad[rows], self.hess[rows])

    def where(self, ok: np.ndarray, other: _Geometry) -> _Geometry:
        """Rows of ``other`` where ok (B,), of self elsewhere."""
        pairs = zip(self._parts(), other._parts(), strict=True)
        return _Geometry(*(np.where(ok.reshape(-1, *([1] * (a.ndim - 1))), b, a) for a, b in pairs))

    def _parts(self) -> tuple[np.ndarray, ...]:
        return self.x, self.jac, self.cost, self.grad, self.hess

    @staticmethod
    def cat(parts: list[_Geometry]) -> _Geometry:
        return _Geometry(*(np.concatenate(a) for a in zip(*(g._parts() for g in parts), strict=True)))


class _Residuals:
    """The cost's residuals of a batch of frames, as Gauss-Newton normal equations (cost, J^T r, J^T J)."""

    def __init__(self, robot: RobotHand, cfg: RetargetConfig) -> None:
        self.robot, self.cfg = robot, cfg
        pairs, _, pinch = _vector_pairs(robot)
        used = np.unique(np.concatenate([pairs.ravel(), pinch.ravel()]))  # the keypoints the vectors need
        self.kp_slot = np.full(21, -1)
        self.kp_slot[used] = np.arange(used.size)
        self.kp_body, self.kp_offset = robot.point_body[used], robot.point_offset[used]
        self.rest = robot.rest_pose()
        self.lower, self.upper = robot.lower, robot.upper
        self.coll_pairs, self.coll_rsum = self._collision_pairs()
        # coupling and rest terms are linear in q: constant J^T J
        wc, wr = cfg.coupling_weight_m_per_rad, cfg.rest_weight_m_per_rad
        self.lin_jac = np.vstack([wc * robot.coupling, wr * np.eye(robot.dof)])
        self.lin_target = np.concatenate([wc * robot.coupling_value, wr * self.rest])
        self.lin_hess = self.lin_jac.T @ self.lin_jac

    def _collision_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Sphere pairs of the thumb and any finger, or of neighbouring fingers (a finger reaches one further
        away only through its neighbour), except the pinching tips and pairs overlapping at rest."""
        r = self.robot
        i, j = np.triu_indices(r.sphere_body.size, 1)
        fi, fj = r.sphere_finger[i], r.sphere_finger[j]
        thumb = (fi == 0) | (fj == 0)
        keep = (fi != fj) & (thumb | (np.abs(fi - fj) == 1))
        keep &= ~(thumb & r.sphere_is_tip[i] & r.sphere_is_tip[j])
        i, j = i[keep], j[keep]
        rsum = r.sphere_radius_m[i] + r.sphere_radius_m[j]
        x = r.points(self.rest[None], r.sphere_body, r.sphere_offset)[0][0]
        clear = np.linalg.norm(x[i] - x[j], axis=-1) >= rsum
        return np.stack([i[clear], j[clear]], 1), rsum[clear]

    def _collisions(self, fk: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Overlap residuals of the sphere pairs that overlap in some frame of the batch (others are zero);
        Jacobians only of the spheres in those pairs."""
        cfg, robot = self.cfg, self.robot
        x = positions(fk, robot.sphere_body, robot.sphere_offset)
        ci, cj = self.coll_pairs[:, 0], self.coll_pairs[:, 1]
        c_vec = x[:, ci] - x[:, cj]
        hit = np.flatnonzero((np.einsum("bpi,bpi->bp", c_vec, c_vec) < self.coll_rsum**2).any(axis=0))
        ci, cj, c_vec = ci[hit], cj[hit], c_vec[:, hit]
        c_dist = np.linalg.norm(c_vec, axis=-1) + 1e-9
        overlap = np.maximum(self.coll_rsum[hit] - c_dist, 0.0)
        spheres, slot = np.unique(np.concatenate([ci, cj]), return_inverse=True)
        jac = robot.jacobians(fk, x[:, spheres], robot.sphere_body[spheres])
        si, sj = slot[: ci.size], slot[ci.size :]
        active = (overlap > 0)[..., None] * (-cfg.collision_weight / c_dist[..., None])
        return cfg.collision_weight * overlap, active * _dot3(c_vec, jac[:, si] - jac[:, sj])

    def geometry(self, q: np.ndarray) -> _Geometry:
        """Keypoints, Jacobians and the target-free terms at angles q (B, J)."""
        fk = self.robot.forward(q)
        x = positions(fk, self.kp_body, self.kp_offset)
        jac = self.robot.jacobians(fk, x, self.kp_body)
        r_coll, j_coll = self._collisions(fk)
        r_lin = q @ self.lin_jac.T - self.lin_target
        jt = j_coll.transpose(0, 2, 1)
        cost = np.sum(r_coll * r_coll, axis=1) + np.sum(r_lin * r_lin, axis=1)
        grad = (jt @ r_coll[..., None])[..., 0] + r_lin @ self.lin_jac
        return _Geometry(x, jac, cost, grad, jt @ j_coll + self.lin_hess)

    def normal(self, g: _Geometry, prob: _Problem, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cost (B,), J^T r (B, J) and J^T J (B, J, J) of frames ``rows`` with geometry g (B rows)."""
        x, jac = g.x, g.jac
        n, nj = jac.shape[0], jac.shape[-1]
        a, b = self.kp_slot[prob.pairs[:, 0]], self.kp_slot[prob.pairs[:, 1]]
        w = prob.weights[rows][..., None]
        r_vec = (w * (x[:, b] - x[:, a] - prob.targets[rows])).reshape(n, -1)
        j_vec = (w[..., None] * (jac[:, b] - jac[:, a])).reshape(n, -1, nj)
        pa, pb = self.kp_slot[prob.pinch_pairs[:, 0]], self.kp_slot[prob.pinch_pairs[:, 1]]
        d_vec = x[:, pb] - x[:, pa]
        dist = np.linalg.norm(d_vec, axis=-1) + 1e-9
        pw = prob.pinch_weights[rows]
        r = np.concatenate([r_vec, pw * (dist - prob.pinch_dist_m[rows])], axis=1)
        j = np.concatenate([j_vec, pw[..., None] * _dot3(d_vec / dist[..., None], jac[:, pb] - jac[:, pa])], axis=1)
        jt = j.transpose(0, 2, 1)
        return np.sum(r * r, axis=1) + g.cost, (jt @ r[..., None])[..., 0] + g.grad, jt @ j + g.hess


def _dot3(v: np.ndarray, jac: np.ndarray) -> np.ndarray:
    """(B, P, J): v (B, P, 3) dotted with point Jacobians (B, P, 3, J)."""
    return (v[..., None, :] @ jac)[..., 0, :]


def _lm(
    res: _Residuals, q: np.ndarray, prob: _Problem, rows: np.ndarray, iters: int, geom: _Geometry | None = None
) -> tuple[np.ndarray, np.ndarray, _Geometry]:
    """Levenberg-Marquardt on independent frames ``rows`` from q (B, J) within the limits (geom: q's geometry,
    if known); returns q, the costs and q's geometry.

    Joints at a limit that the gradient pushes outward are held for the step (an active set), so that clipping
    does not bend the other joints' step."""
    geom = geom or res.geometry(q)
    cost, grad, hess = res.normal(geom, prob, rows)
    mu = np.full(len(q), 1e-4)
    eye = np.eye(q.shape[1])
    for _ in range(iters):
        held = ((q <= res.lower) & (grad > 0)) | ((q >= res.upper) & (grad < 0))
        free = (~held).astype(float)
        h = hess * free[:, :, None] * free[:, None, :] + (mu[:, None, None] + held[:, :, None]) * eye
        step = np.linalg.solve(h, -(grad * free)[..., None])[..., 0]
        q_new = np.clip(q + step, res.lower, res.upper)
        geom_new = res.geometry(q_new)
        cost_new, grad_new, hess_new = res.normal(geom_new, prob, rows)
        ok = cost_new < cost
        q, cost, geom = np.where(ok[:, None], q_new, q), np.where(ok, cost_new, cost), geom.where(ok, geom_new)
        grad, hess = np.where(ok[:, None], grad_new, grad), np.where(ok[:, None, None], hess_new, hess)
        mu = np.where(ok, mu * 0.3, mu * 10.0)
    return q, cost, geom


def _solve_frames(res: _Residuals, prob: _Problem, segment: np.ndarray, cfg: RetargetConfig) -> np.ndarray:
    """Stage 1: each frame from the better of the previous frame's solution (warm start) and a cold solve of
    the frame from the rest pose (all frames at once), which brings a frame back out of a wrong basin."""
    n = len(segment)
    cold, _, cold_geom = _lm(res, np.tile(res.rest, (n, 1)), prob, np.arange(n), cfg.cold_iters)
    q = np.empty_like(cold)
    prev: _Geometry | None = None
    for t in range(n):
        if t == 0 or segment[t] != segment[t - 1]:
            one, _, prev = _lm(res, cold[t : t + 1], prob, np.array([t]), cfg.first_frame_iters, cold_geom.take([t]))
            q[t] = one[0]
            continue
        start = _Geometry.cat([prev, cold_geom.take([t])])
        both, cost, geom = _lm(res, np.stack([q[t - 1], cold[t]]), prob, np.array([t, t]), cfg.warm_iters, start)
        k = 1 if cost[1] < cfg.switch_ratio * cost[0] else 0
        q[t], prev = both[k], geom.take([k])
    return q


def _accel_matrix(frame_index: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """(T, T) D^T D for second differences over consecutive frames of one segment."""
    n = frame_index.size
    d = []
    for t in range(1, n - 1):
        consecutive = frame_index[t + 1] - frame_index[t - 1] == 2
        if consecutive and segment[t - 1] == segment[t] == segment[t + 1]:
            row = np.zeros(n)
            row[t - 1 : t + 2] = (1.0, -2.0, 1.0)
            d.append(row)
    dm = np.array(d).reshape(-1, n)
    return dm.T @ dm


def _banded(blocks: np.ndarray, accel: np.ndarray, lam: float, mu: float) -> np.ndarray:
    """Upper banded form of blockdiag(blocks) + lam * accel (x) I + mu I, for solveh_banded."""
    n_t, nj, _ = blocks.shape
    u = 2 * nj
    ab = np.zeros((u + 1, n_t * nj))
    ia, ib = np.triu_indices(nj)
    cols = (np.arange(n_t)[:, None] * nj + ib[None, :]).ravel()
    ab[np.tile(u + ia - ib, n_t), cols] = blocks[:, ia, ib].ravel()
    for k in range(3):
        diag = np.diagonal(accel, k)  # (T - k,)
        ab[u - k * nj, k * nj :] += lam * np.repeat(diag, nj)
    ab[u] += mu
    return ab


def _total_cost(cost: np.ndarray, q: np.ndarray, accel: np.ndarray, lam: float) -> float:
    """The frames' costs (B,) plus the acceleration penalty of angles q (B, J)."""
    return float(cost.sum() + lam * np.sum(q * (accel @ q)))


def _solve_all(res: _Residuals, q: np.ndarray, prob: _Problem, accel: np.ndarray, iters: int) -> np.ndarray:
    """Levenberg-Marquardt over all frames at once with the acceleration penalty, within the limits: angles at a
    limit that the gradient pushes outward are held for the step (as in ``_lm``), the others' step is clipped."""
    lam = res.cfg.accel_weight_m_per_rad**2
    rows = np.arange(q.shape[0])
    cost, grad, hess = res.normal(res.geometry(q), prob, rows)
    total, mu = _total_cost(cost, q, accel, lam), 1e-3
    for _ in range(iters):
        g = grad + lam * (accel @ q)
        held = ((q <= res.lower) & (g > 0)) | ((q >= res.upper) & (g < 0))
        ab = _banded(hess, accel, lam, mu)
        ab[-1] += HELD_STIFFNESS * held.ravel()  # a held angle's step is ~0 (then 0): the system stays banded
        step = -solveh_banded(ab, np.where(held, 0.0, g).ravel(), check_finite=False).reshape(q.shape)
        q_new = np.clip(np.where(held, q, q + step), res.lower, res.upper)
        cost_new, grad_new, hess_new = res.normal(res.geometry(q_new), prob, rows)
        total_new = _total_cost(cost_new, q_new, accel, lam)
        if total_new < total:
            q, grad, hess, total, mu = q_new, grad_new, hess_new, total_new, mu * 0.5
        else:
            mu *= 4.0
    return q


def _inside_limits_f32(q: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """float32 angles that stay within the float64 limits after rounding."""
    out = np.clip(q, lower, upper).astype(np.float32)
    low = out.astype(np.float64) < lower
    out[low] = np.nextafter(out[low], np.float32(np.inf))
    high = out.astype(np.float64) > upper
    out[high] = np.nextafter(out[high], np.float32(-np.inf))
    return out


def human_in_palm_frame(track: ManoTrack, robot: RobotHand) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The human keypoints in the robot's palm frame (T, 21, 3), unscaled and scaled, the palm -> camera
    rotation (T, 3, 3) and the scale (robot size / human size, one per track)."""
    pts = np.asarray(track.joints3d, np.float64)
    mirrored = track.side == "left"
    if mirrored:
        pts = pts @ MIRROR
    robot_rest = robot.keypoints(robot.rest_pose()[None])[0]
    frame_r = canonical_frames(robot_rest)
    frame_h = canonical_frames(pts)
    rel = pts - pts[:, :1]
    # camera -> canonical -> palm: x_palm = frame_r @ frame_h^T @ x_cam
    to_palm = frame_r[None] @ frame_h.transpose(0, 2, 1)
    local = np.einsum("tij,tkj->tki", to_palm, rel)
    scale = float(hand_length_m(robot_rest) / np.median(hand_length_m(pts)))
    palm_to_cam = to_palm.transpose(0, 2, 1)
    if mirrored:
        palm_to_cam = MIRROR @ palm_to_cam
    return local, local * scale, palm_to_cam, scale


def retarget_track(track: ManoTrack, robot: RobotHand, cfg: RetargetConfig | None = None) -> RobotTrack:
    """Joint angles of ``robot`` following the MANO track, one row per fit frame."""
    cfg = cfg or default_config(robot)
    n = len(track)
    if n == 0 or not np.all(np.isfinite(track.joints3d)):
        raise ValueError(f"{track.side} track: {'no frames' if n == 0 else 'non-finite joints3d'} to retarget")
    human_m, local_m, palm_to_cam, scale = human_in_palm_frame(track, robot)
    prob = _problem(local_m, human_m, robot, cfg)
    res = _Residuals(robot, cfg)
    q = _solve_frames(res, prob, np.asarray(track.segment), cfg)
    q = _solve_all(res, q, prob, _accel_matrix(track.frame_index, track.segment), cfg.joint_iters)
    angles = _inside_limits_f32(q, res.lower, res.upper)
    tip_err, residual = vector_errors_mm(robot, angles.astype(np.float64), local_m)
    # the palm frame placed so that the robot's wrist point (fixed in it) lies on the human wrist
    wrist_palm = robot.keypoints(robot.rest_pose()[None])[0, 0]
    palm_cam = np.asarray(track.joints3d, np.float64)[:, 0] - palm_to_cam @ wrist_palm
    return RobotTrack(
        robot=robot.name,
        side=track.side,
        joint_names=robot.joint_names,
        frame_index=np.asarray(track.frame_index, np.int32),
        angles_rad=angles,
        residual_mm=residual.astype(np.float32),
        tip_error_mm=tip_err.astype(np.float32),
        root_rotation=palm_to_cam.astype(np.float32),
        root_position_m=palm_cam.astype(np.float32),
        scale=scale,
        mirrored=track.side == "left",
    )


def vector_errors_mm(robot: RobotHand, q: np.ndarray, local_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: wrist->tip vector error per finger (T, 5, NaN where missing) and the mean over wrist->tip
    and thumb->finger-tip vectors (T,), in mm, against the scaled human keypoints in the palm frame."""
    kp = robot.keypoints(q)
    tips = np.array(TIPS)
    tip_err = np.linalg.norm((kp[:, tips] - kp[:, :1]) - (local_m[:, tips] - local_m[:, :1]), axis=-1) * 1e3
    thumb = np.linalg.norm((kp[:, tips[1:]] - kp[:, 4:5]) - (local_m[:, tips[1:]] - local_m[:, 4:5]), axis=-1) * 1e3
    both = np.concatenate([tip_err, thumb], axis=1)
    return tip_err, np.nanmean(both, axis=1)


def finger_overlap_mm(robot: RobotHand, q: np.ndarray, cfg: RetargetConfig | None = None) -> np.ndarray:
    """(T,) deepest overlap (mm) of the collision spheres that retargeting keeps apart, per frame (0: none)."""
    pairs = _Residuals(robot, cfg or RetargetConfig()).coll_pairs
    rsum = robot.sphere_radius_m[pairs[:, 0]] + robot.sphere_radius_m[pairs[:, 1]]
    x = positions(robot.forward(q), robot.sphere_body, robot.sphere_offset)
    gap = np.linalg.norm(x[:, pairs[:, 0]] - x[:, pairs[:, 1]], axis=-1)
    return np.maximum(rsum - gap, 0.0).max(axis=1, initial=0.0) * 1e3


def robot_keypoints_camera(robot: RobotHand, rt: RobotTrack) -> np.ndarray:
    """(T, 21, 3) robot keypoints in the camera frame (robot size, wrist on the human wrist; NaN where none)."""
    kp = robot.keypoints(rt.angles_rad.astype(np.float64))
    return np.einsum("tij,tkj->tki", rt.root_rotation.astype(np.float64), kp) + rt.root_position_m[:, None, :]
