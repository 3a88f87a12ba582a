"""Levenberg-Marquardt fit of one hand track: analytic Jacobians in numpy, a banded solve over frames.

Variables per frame: axis-angle of MANO's 16 joints (global orientation first) and the translation; per track:
10 betas. Residuals per frame: robust 2D reprojection (weighted by presence), depth of the scale-normalised world
landmarks, pose prior, soft joint limits, a soft depth range; per track: the shape prior. Smoothness is a
heavy-tailed acceleration prior on the variables themselves (each rotation weighted by the fingertip travel it
causes), so frames couple only to their neighbours' same variables: the normal matrix is banded (two frames
either side, diagonal coupling) with a 10-column border for the betas, solved by banded Cholesky and a Schur
complement. Cost is linear in the track's length.

A rotation's Jacobian uses the perturbation R -> R exp(d) with d = Jr(w) dw: a point x downstream of joint j
moves by (G_j Jr(w_j) dw) x (x - P_j).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError, cho_solve_banded, cholesky_banded

from enrich.constants import N_BETAS
from enrich.constants import N_MANO_JOINTS as N_JOINTS
from enrich.keypoints import KeypointDef
from enrich.lift.problem import Problem

N_FRAME = 3 * N_JOINTS + 3  # per-frame variables: 16 rotations, translation
DEPTH_RANGE_M = (0.105, 1.95)  # inside 0.1-2 m with a margin: a hand closer or further is not an SSv2 hand
SIGMA_DEPTH_RANGE_M = 0.001
LAMBDA_DOWN, LAMBDA_UP = 2.0, 3.0  # damping divided after a taken step, multiplied after a rejected one


@dataclass(frozen=True)
class Skeleton:
    """What the solver needs of one side's model (numpy, float64)."""

    parents: np.ndarray  # (16,)
    levels: tuple[np.ndarray, ...]  # joints by depth in the chain; each level's parents are in the previous one
    j_template: np.ndarray  # (16, 3) rest joints at betas = 0
    j_dirs: np.ndarray  # (16, 3, 10)
    keypoints: KeypointDef
    pair_kp: np.ndarray  # (P,) keypoint k of each (keypoint, joint) pair where rotating joint j moves keypoint k
    pair_joint: np.ndarray  # (P,) joint j of the pair


def skeleton(parents: np.ndarray, j_template: np.ndarray, j_dirs: np.ndarray, keypoints: KeypointDef) -> Skeleton:
    levels = [np.array([0])]
    while sum(len(lv) for lv in levels) < N_JOINTS:
        levels.append(np.array([j for j in range(1, N_JOINTS) if parents[j] in levels[-1]]))
    pairs = []
    for k, a in enumerate(keypoints.anchor):
        j = int(a)
        while j >= 0:
            pairs.append((k, j))
            j = int(parents[j]) if j else -1
    pk, pj = np.array(pairs).T
    return Skeleton(np.asarray(parents), tuple(levels), j_template, j_dirs, keypoints, pk, pj)


# --- rotations ---


def _skew(v: np.ndarray) -> np.ndarray:
    z = np.zeros(v.shape[:-1])
    x, y, w = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([z, -w, y, w, z, -x, -y, x, z], -1).reshape(*v.shape, 3)


def rodrigues_and_jr(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation matrices and right Jacobians (..., 3, 3) of axis-angle vectors (..., 3)."""
    theta = np.linalg.norm(w, axis=-1)[..., None, None]
    small = theta < 1e-6
    t = np.where(small, 1.0, theta)
    a = np.where(small, 1 - theta**2 / 6, np.sin(t) / t)
    b = np.where(small, 0.5 - theta**2 / 24, (1 - np.cos(t)) / t**2)
    c = np.where(small, 1 / 6 - theta**2 / 120, (t - np.sin(t)) / t**3)
    k = _skew(w)
    kk = k @ k
    eye = np.eye(3)
    return eye + a * k + b * kk, eye - b * k + c * kk


# --- forward and Jacobian ---


@dataclass
class _State:
    joints_kp: np.ndarray  # (N, 21, 3) keypoints, camera frame
    d_frame: np.ndarray  # (N, 21, 3, 51) d keypoints / d per-frame variables
    d_betas: np.ndarray  # (N, 21, 3, 10)
    glob: np.ndarray  # (N, 16, 3, 3) global rotation of each joint


def forward(sk: Skeleton, w: np.ndarray, transl: np.ndarray, betas: np.ndarray, jac: bool = True) -> _State:
    """w (N, 16, 3), transl (N, 3), betas (10,) -> keypoints in MediaPipe order and their Jacobians."""
    n = len(w)
    rot, jr = rodrigues_and_jr(w)
    rest = sk.j_template + sk.j_dirs @ betas
    glob = np.empty((n, N_JOINTS, 3, 3))
    pos = np.empty((n, N_JOINTS, 3))
    glob[:, 0], pos[:, 0] = rot[:, 0], rest[0] + transl
    d_pos = np.empty((n, N_JOINTS, 3, N_BETAS))
    d_pos[:, 0] = sk.j_dirs[0]
    for lv in sk.levels[1:]:
        par = sk.parents[lv]
        glob[:, lv] = glob[:, par] @ rot[:, lv]
        pos[:, lv] = pos[:, par] + np.einsum("nlij,lj->nli", glob[:, par], rest[lv] - rest[par])
        if jac:
            d_pos[:, lv] = d_pos[:, par] + glob[:, par] @ (sk.j_dirs[lv] - sk.j_dirs[par])
    kd = sk.keypoints
    a = kd.anchor
    offsets = kd.offsets(betas)
    kp = pos[:, a] + np.einsum("nkij,kj->nki", glob[:, a], offsets)
    if not jac:
        return _State(kp, np.empty(0), np.empty(0), glob)
    d_betas = d_pos[:, a] + glob[:, a] @ kd.offsets_grad()
    cols = glob @ jr  # (N, 16, 3 xyz, 3 cols): G_j Jr(w_j) e_i
    lever = kp[:, sk.pair_kp] - pos[:, sk.pair_joint]  # (N, P, 3)
    # (G Jr e_i) x lever, for every pair, column and axis: (N, P, 3 xyz, 3 cols)
    c = cols[:, sk.pair_joint]
    lx, ly, lz = (lever[..., i, None] for i in range(3))
    d_pair = np.stack(
        [
            c[..., 1, :] * lz - c[..., 2, :] * ly,
            c[..., 2, :] * lx - c[..., 0, :] * lz,
            c[..., 0, :] * ly - c[..., 1, :] * lx,
        ],
        2,
    )
    d_frame = np.zeros((n, 21, 3, N_JOINTS, 3))
    d_frame[:, sk.pair_kp, :, sk.pair_joint] = d_pair.transpose(1, 0, 2, 3)
    d_frame = np.concatenate([d_frame.reshape(n, 21, 3, 3 * N_JOINTS), np.broadcast_to(np.eye(3), (n, 21, 3, 3))], -1)
    return _State(kp, d_frame, d_betas, glob)


# --- the problem ---


def _rho(sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-Huber of a squared normalised residual and the IRLS weight 2 rho'(sq) (1 near zero)."""
    root = np.sqrt(1 + sq / 2)
    return 2 * (root - 1), 1 / root


def _size(kp: np.ndarray, bones: np.ndarray) -> np.ndarray:
    return np.linalg.norm(kp[:, bones[:, 1]] - kp[:, bones[:, 0]], axis=-1).sum(1).clip(1e-6)


def _limit_residual(w: np.ndarray, p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(N, 15, 3) signed distance outside the limits / σ, and its sign as d residual / d component."""
    comps = np.einsum("jab,njb->nja", p.axes, w[:, 1:])
    lo, hi = p.limits[..., 0], p.limits[..., 1]
    below, above = comps < lo, comps > hi
    r = np.where(below, comps - lo, np.where(above, comps - hi, 0.0)) / p.weights.sigma_limit_rad
    return r, (below | above) / p.weights.sigma_limit_rad


def _terms(
    sk: Skeleton, p: Problem, w: np.ndarray, transl: np.ndarray, betas: np.ndarray, st: _State, log_focal: float
) -> dict:
    """Residuals (normalised) and their per-row robust losses."""
    c = p.weights
    kp = st.joints_kp
    z = kp[..., 2:].clip(1e-3)
    uv = kp[..., :2] / z * p.K[[0, 1], [0, 1]] * np.exp(log_focal) + p.K[:2, 2]
    r2d = (uv - p.image) / c.sigma_2d_px
    sq2d = (r2d**2).sum(-1)
    size = _size(kp, p.bones)
    rel = (kp - kp[:, :1]) / size[:, None, None] * p.size_ref
    r3d = (rel - p.world_rel)[..., 2:] if c.world_depth_only else rel - p.world_rel
    r3d = r3d / c.sigma_world_m
    sq3d = (r3d**2).sum(-1)
    acc = w.reshape(len(w), -1)
    acc = np.concatenate([acc, transl], 1)
    t = p.triples
    ra = (acc[t[:, 0]] - 2 * acc[t[:, 1]] + acc[t[:, 2]]) / p.accel_sigma if len(t) else np.zeros((0, N_FRAME))
    rlim, _ = _limit_residual(w, p)
    depth = kp[:, 0, 2]
    rdepth = (np.minimum(depth - DEPTH_RANGE_M[0], 0) + np.maximum(depth - DEPTH_RANGE_M[1], 0)) / SIGMA_DEPTH_RANGE_M
    loss2d, irls2d = _rho(sq2d)
    loss3d, irls3d = _rho(sq3d)
    lossa, irlsa = _rho(ra**2) if c.robust_accel else (0.5 * ra**2, np.ones_like(ra))
    n = len(w)
    loss = (
        (p.conf * loss2d).sum()
        + (p.conf * loss3d).sum()
        + lossa.sum()
        + 0.5 * (w[:, 1:] ** 2).sum() / c.sigma_pose_rad**2
        + 0.5 * (rlim**2).sum()
        + 0.5 * (rdepth**2).sum()
        + n * 0.5 * (betas**2).sum() / c.sigma_shape**2
        + (n * 0.5 * log_focal**2 / c.sigma_log_focal**2 if c.sigma_log_focal else 0.0)
    )
    return {
        "loss": float(loss),
        "uv": uv,
        "z": z,
        "r2d": r2d,
        "w2d": p.conf * irls2d,
        "r3d": r3d,
        "w3d": p.conf * irls3d,
        "size": size,
        "ra": ra,
        "wa": irlsa,
        "rdepth": rdepth,
    }


def _normal_equations(
    sk: Skeleton, p: Problem, w: np.ndarray, betas: np.ndarray, st: _State, tm: dict, log_focal: float
) -> tuple:
    """Gauss-Newton blocks: A (N, 51, 51) per frame, accel weights (M, 51), B (N, 51, E), C (E, E), gradients; E
    track-wide variables: the 10 betas, then the log focal length when it is free."""
    c = p.weights
    n = len(w)
    fx, fy = p.K[0, 0] * np.exp(log_focal), p.K[1, 1] * np.exp(log_focal)
    kp, z = st.joints_kp, tm["z"][..., 0]
    # d uv / d keypoint: (N, 21, 2, 3)
    dproj = np.zeros((n, 21, 2, 3))
    dproj[..., 0, 0], dproj[..., 1, 1] = fx / z, fy / z
    dproj[..., 0, 2], dproj[..., 1, 2] = -fx * kp[..., 0] / z**2, -fy * kp[..., 1] / z**2
    full = np.concatenate([st.d_frame, st.d_betas], -1)  # (N, 21, 3, 61)
    j2d = dproj @ full
    if c.sigma_log_focal:  # d uv / d log f = uv - principal point; the world terms do not see the focal length
        j2d = np.concatenate([j2d, (tm["uv"] - p.K[:2, 2])[..., None]], -1)
        full = np.concatenate([full, np.zeros((*full.shape[:-1], 1))], -1)
    j2d = j2d.reshape(n, 42, -1) / c.sigma_2d_px
    r2d = tm["r2d"].reshape(n, 42)
    w2d = np.repeat(tm["w2d"], 2, axis=1)
    scale = p.size_ref / tm["size"] / c.sigma_world_m  # the fitted size counts as fixed within a step
    dims = [2] if c.world_depth_only else [0, 1, 2]
    j3d = ((full[:, :, dims] - full[:, :1, dims]) * scale[:, None, None, None]).reshape(n, 21 * len(dims), -1)
    r3d = tm["r3d"].reshape(n, -1)
    w3d = np.repeat(tm["w3d"], len(dims), axis=1)
    jac = np.concatenate([j2d, j3d], 1)
    res = np.concatenate([r2d, r3d], 1)
    wts = np.concatenate([w2d, w3d], 1)
    jw = jac * wts[..., None]
    H = np.swapaxes(jw, 1, 2) @ jac  # (N, 61, 61)
    g = np.einsum("nrv,nr->nv", jw, res)
    A, B, C = H[:, :N_FRAME, :N_FRAME].copy(), H[:, :N_FRAME, N_FRAME:], H[:, N_FRAME:, N_FRAME:].sum(0)
    gx, gb = g[:, :N_FRAME].copy(), g[:, N_FRAME:].sum(0)
    # pose prior (joints 1..15), limits, depth range: per-frame and diagonal or 3x3
    pose_idx = np.arange(3, 3 * N_JOINTS)
    A[:, pose_idx, pose_idx] += 1 / c.sigma_pose_rad**2
    gx[:, 3 : 3 * N_JOINTS] += w[:, 1:].reshape(n, -1) / c.sigma_pose_rad**2
    rlim, active = _limit_residual(w, p)
    rows = p.axes[None] * active[..., None]  # (N, 15, 3, 3): d residual / d w_j
    A_lim = np.einsum("njai,njak->njik", rows, rows)
    g_lim = np.einsum("njai,nja->nji", rows, rlim)
    for j in range(15):
        s = slice(3 + 3 * j, 6 + 3 * j)
        A[:, s, s] += A_lim[:, j]
        gx[:, s] += g_lim[:, j]
    dz = st.d_frame[:, 0, 2] / SIGMA_DEPTH_RANGE_M  # (N, 51)
    out = (tm["rdepth"] != 0)[:, None]
    A += np.einsum("ni,nj->nij", dz * out, dz)
    gx += dz * (tm["rdepth"][:, None])
    C[:N_BETAS, :N_BETAS] += n * np.eye(N_BETAS) / c.sigma_shape**2
    gb[:N_BETAS] += n * betas / c.sigma_shape**2
    if c.sigma_log_focal:
        C[N_BETAS, N_BETAS] += n / c.sigma_log_focal**2
        gb[N_BETAS] += n * log_focal / c.sigma_log_focal**2
    # accelerations: weight of each variable's second difference, and its gradient
    wa = tm["wa"] / p.accel_sigma**2 if len(p.triples) else np.zeros((0, N_FRAME))
    ga = tm["wa"] * tm["ra"] / p.accel_sigma if len(p.triples) else np.zeros((0, N_FRAME))
    for col, coef in enumerate((1.0, -2.0, 1.0)):
        gx[p.triples[:, col]] += coef * ga  # a frame is in one column of one triple at most: no repeated index
    return A, wa, B, C, gx, gb


@functools.lru_cache(maxsize=64)
def _band_index(n: int) -> tuple:
    """Rows and columns of the upper triangles of the diagonal blocks in the full matrix, and within a block."""
    r, c = np.triu_indices(N_FRAME)
    t = np.arange(n)[:, None]
    rows_d, cols_d = t * N_FRAME + r, t * N_FRAME + c
    return rows_d, cols_d, r, c


def _solve(A: np.ndarray, wa: np.ndarray, triples: np.ndarray, B: np.ndarray, C: np.ndarray, gx, gb, lam: float):
    """Damped step (dx (N, 51), db (10,)) or None when the damped matrix is not positive definite."""
    n = len(A)
    size = n * N_FRAME
    u = min(2 * N_FRAME, size - 1)
    ab = np.zeros((u + 1, size))
    diag_blocks = A.copy()
    diag = np.zeros((n, N_FRAME))
    for col, coef in enumerate((1.0, -2.0, 1.0)):
        diag[triples[:, col]] += coef**2 * wa
    idx = np.arange(N_FRAME)
    diag_blocks[:, idx, idx] += diag
    dvals = np.einsum("nii->ni", diag_blocks)
    diag_blocks[:, idx, idx] += lam * dvals + 1e-9
    rows, cols, r, c = _band_index(n)
    ab[u + rows - cols, cols] = diag_blocks[:, r, c]
    # off-diagonal couplings (diagonal matrices): (t-1, t) and (t, t+1) by -2 w, (t-1, t+1) by w
    for (ca, cb), coef in (((0, 1), -2.0), ((1, 2), -2.0), ((0, 2), 1.0)):
        ta, tb = triples[:, ca], triples[:, cb]
        ii = ta[:, None] * N_FRAME + idx
        jj = tb[:, None] * N_FRAME + idx
        ab[u + ii - jj, jj] += coef * wa  # distinct (row, column) pairs within one pair of columns
    try:
        factor = cholesky_banded(ab, lower=False, check_finite=False)
    except LinAlgError:
        return None
    Bf = B.reshape(size, B.shape[-1])
    rhs = np.concatenate([gx.reshape(size, 1), Bf], 1)
    z = cho_solve_banded((factor, False), rhs, check_finite=False)
    zg, zb = z[:, 0], z[:, 1:]
    S = C + lam * np.diag(np.diag(C)) - Bf.T @ zb
    try:
        db = np.linalg.solve(S, -gb + Bf.T @ zg)
    except np.linalg.LinAlgError:
        return None
    dx = -zg - zb @ db
    return dx.reshape(n, N_FRAME), db


@dataclass(frozen=True)
class SolverSettings:
    max_iterations: int = 30
    rel_tolerance: float = 1e-4  # stop when a step lowers the loss by less than this fraction
    fit_betas: bool = True


def solve(
    sk: Skeleton, p: Problem, w: np.ndarray, transl: np.ndarray, betas: np.ndarray, settings: SolverSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int, float]:
    """Levenberg-Marquardt from the given start -> (w, transl, betas, loss, iterations, log focal length over
    K's: 0 unless p.weights.sigma_log_focal frees it)."""
    log_f = 0.0
    st = forward(sk, w, transl, betas)
    tm = _terms(sk, p, w, transl, betas, st, log_f)
    lam = 1e-3
    it = 0
    while it < settings.max_iterations:
        it += 1
        A, wa, B, C, gx, gb = _normal_equations(sk, p, w, betas, st, tm, log_f)
        if not settings.fit_betas:
            B, C, gb = np.zeros_like(B), np.eye(len(gb)), np.zeros_like(gb)
        improved = False
        while lam < 1e8:
            step = _solve(A, wa, p.triples, B, C, gx, gb, lam)
            if step is None:
                lam *= 10
                continue
            dx, db = step
            w_new = w + dx[:, : 3 * N_JOINTS].reshape(-1, N_JOINTS, 3)
            t_new, b_new = transl + dx[:, 3 * N_JOINTS :], betas + db[:N_BETAS]
            f_new = log_f + (float(db[N_BETAS]) if len(db) > N_BETAS else 0.0)
            st_new = forward(sk, w_new, t_new, b_new, jac=False)  # the Jacobian only once the step is taken
            tm_new = _terms(sk, p, w_new, t_new, b_new, st_new, f_new)
            if tm_new["loss"] <= tm["loss"]:
                gain = tm["loss"] - tm_new["loss"]
                st = forward(sk, w_new, t_new, b_new)
                w, transl, betas, log_f, old, tm = w_new, t_new, b_new, f_new, tm, tm_new
                lam = max(lam / LAMBDA_DOWN, 1e-7)
                improved = True
                break
            lam *= LAMBDA_UP
        if not improved or gain <= settings.rel_tolerance * max(old["loss"], 1e-9):
            break
    return w, transl, betas, tm["loss"], it, log_f
