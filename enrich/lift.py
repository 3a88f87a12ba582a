"""Lift stage: 2D hand tracks -> MANO sequences, all frames of a track fitted at once.

Camera: pinhole with OpenCV axes (x right, y down, z forward), metres. Default intrinsics: focal length
``focal_scale * max(width, height)`` px and the principal point at the image centre.

Per track: short gaps are interpolated and flagged, long gaps split it into segments that share one shape.
Initialisation: rotations by analytic inverse kinematics on MediaPipe's world landmarks, then the model's own
posed joints placed onto the image landmarks (depth from size, refined by linear PnP where the two agree).
Objective: a negative log-likelihood with σ's in physical units: robust 2D reprojection weighted by presence, the
depth of the scale-normalised world landmarks (the image is sharper across the line of sight), pose prior and
soft joint limits, a shape prior counted per frame, and heavy-tailed joint accelerations.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation, Slerp
from smplx.lbs import batch_rodrigues

from enrich import keypoints, lift_solver
from enrich.constants import N_BETAS, N_MANO_JOINTS
from enrich.handmodel import MEDIAPIPE_FROM_MANO, HandModel, load_hand_models
from enrich.records import ClipTracks, HandTrack2D, ManoTrack

MANO21_FROM_MP = np.argsort(MEDIAPIPE_FROM_MANO)  # MediaPipe-ordered points -> [16 joints + 5 tips] order


@dataclass(frozen=True)
class LiftConfig:
    """Weights and limits of the fit; stored with every results file."""

    focal_scale: float = 1.0  # default focal length = focal_scale * max(width, height) px
    sigma_log_focal: float = 4.0  # with no camera given, the clip's focal length is estimated about the default
    # with this prior σ of its log (0: the default is used as is; 4.0 chosen by benchmarks/choose_focal_prior.py)
    sigma_2d_px: float = 2.5  # keypoint noise per axis (measured on SSv2 clips: ~2.3 px); robust beyond
    world_term: str = "joints"  # "bones": world-landmark bone directions; "joints": scale-normalised positions
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
    max_iterations: int = 10  # LM iterations at most; it stops earlier once a step gains < 1e-4 of the loss
    rigid_iterations: int = 0  # L-BFGS iterations on orientation and translation alone
    iterations: int = 60  # L-BFGS iterations on everything
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)


def intrinsics(width: int, height: int, focal_scale: float) -> np.ndarray:
    """(3, 3) default pinhole matrix for a frame of ``width`` x ``height`` px."""
    f = focal_scale * max(width, height)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float64)


class JointModel:
    """Keypoints-only forward of a MANO-layout model: the 21 MediaPipe-defined keypoints of enrich.keypoints (with
    ``calibrated=False``: the 16 joints and 5 fingertip vertices, agreeing with the smplx forward, tested), cheap
    enough to evaluate hundreds of times per track. Also holds the numpy skeleton the LM solver uses.

    The kinematic chain is walked one depth level at a time (wrist, then the 5 first, second and third finger
    joints together): 3 batched matrix products instead of smplx's 15 sequential ones, which is what makes a
    track's forward + backward cost about a millisecond."""

    def __init__(
        self,
        hand: HandModel,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        calibrated: bool = True,
        correction_m: np.ndarray | None = None,
    ) -> None:
        """``calibrated``: apply keypoint corrections (keypoint_corrections: this file's own calibration, else the
        open model's transferred; none: its own joints and fingertip vertices); ``correction_m`` (21, 3): use these
        instead (calibration)."""
        m = hand.mano
        J_reg = m.J_regressor.to(device, dtype)  # (16, V)
        self.parents = m.parents.to(device)
        self.J_template = J_reg @ m.v_template.to(device, dtype)  # (16, 3)
        self.J_shapedirs = torch.einsum("jv,vcl->jcl", J_reg, m.shapedirs.to(device, dtype))  # (16, 3, 10)
        correction, self.keypoint_source = keypoint_corrections(hand) if calibrated else (None, "none")
        if correction_m is not None:
            correction, self.keypoint_source = correction_m, "given"
        j_template, j_dirs, tip_template, tip_dirs = _rest_arrays(hand)
        self.keypoints = keypoints.build(j_template, j_dirs, tip_template, tip_dirs, correction)
        self.skeleton = lift_solver.skeleton(m.parents.cpu().numpy(), j_template, j_dirs, self.keypoints)
        kd = self.keypoints
        self.kp_anchor = torch.as_tensor(kd.anchor, dtype=torch.long, device=device)
        self.kp_base0 = torch.as_tensor(kd.base0 + kd.correction_m, dtype=dtype, device=device)  # (21, 3)
        self.kp_dirs = torch.as_tensor(kd.offsets_grad(), dtype=dtype, device=device)  # (21, 3, 10)
        parents = m.parents.cpu().numpy()
        # joints grouped by depth in the chain: each level's parents are all in the previous level
        levels = [[0]]
        while len(sum(levels, [])) < N_MANO_JOINTS:
            levels.append([j for j in range(1, N_MANO_JOINTS) if parents[j] in levels[-1]])
        self.levels = [torch.as_tensor(lv, dtype=torch.long, device=device) for lv in levels]
        self.level_parent = [
            torch.as_tensor([levels[i - 1].index(parents[j]) for j in lv], dtype=torch.long, device=device)
            for i, lv in enumerate(levels)
            if i
        ]
        level_order = np.concatenate(levels)  # joint stored at each position of the level-ordered stack
        self.mano_from_level = torch.as_tensor(np.argsort(level_order), dtype=torch.long, device=device)
        self.device, self.dtype = device, dtype

    def rest21(self, betas: np.ndarray) -> np.ndarray:
        """(21, 3) rest keypoints in [16 joints + 5 tips] order, numpy, for initialisation."""
        kd = self.keypoints
        rest = self.skeleton.j_template + self.skeleton.j_dirs @ np.asarray(betas, np.float64)
        return (rest[kd.anchor] + kd.offsets(np.asarray(betas, np.float64)))[MANO21_FROM_MP]

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """betas (10,) -> (16, 3) rest joints."""
        return self.J_template + torch.einsum("jcl,l->jc", self.J_shapedirs, betas)

    def __call__(
        self, global_orient: torch.Tensor, hand_pose: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor
    ) -> torch.Tensor:
        """global_orient (B, 3), hand_pose (B, 45), betas (10,), transl (B, 3) -> keypoints (B, 21, 3), MediaPipe
        order (enrich.keypoints: each a point fixed to one bone)."""
        b = global_orient.shape[0]
        pose = torch.cat([global_orient, hand_pose], 1).reshape(-1, 3)
        rot = batch_rodrigues(pose).reshape(b, N_MANO_JOINTS, 3, 3)
        rest = self.rest_joints(betas)
        rots, pos = [rot[:, :1]], [rest[:1].expand(b, 1, 3)]
        for lv, par in zip(self.levels[1:], self.level_parent, strict=True):
            offset = rest[lv] - rest[self.parents[lv]]  # (L, 3) bone vectors at rest
            parent_rot = rots[-1][:, par]  # (B, L, 3, 3)
            pos.append(pos[-1][:, par] + (parent_rot @ offset[..., None])[..., 0])
            rots.append(parent_rot @ rot[:, lv])
        world_rot = torch.cat(rots, 1)[:, self.mano_from_level]  # (B, 16, 3, 3), MANO order
        joints = torch.cat(pos, 1)[:, self.mano_from_level]  # (B, 16, 3)
        offsets = self.kp_base0 + torch.einsum("kcl,l->kc", self.kp_dirs, betas)  # (21, 3)
        a = self.kp_anchor
        return joints[:, a] + (world_rot[:, a] @ offsets[..., None])[..., 0] + transl[:, None]


def _rest_arrays(hand: HandModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rest joints (16, 3) and their shape directions (16, 3, 10), fingertip vertices (5, 3) and theirs (5, 3, 10)."""
    m = hand.mano
    tips = torch.as_tensor(np.asarray(hand.tip_vertex_ids), dtype=torch.long)
    J_reg = m.J_regressor.double()
    j_template = (J_reg @ m.v_template.double()).cpu().numpy()
    j_dirs = torch.einsum("jv,vcl->jcl", J_reg, m.shapedirs.double()).cpu().numpy()
    return j_template, j_dirs, m.v_template[tips].double().cpu().numpy(), m.shapedirs[tips].double().cpu().numpy()


def _rest_points(hand: HandModel) -> np.ndarray:
    """(21, 3) the model's own rest points in MediaPipe order at the mean shape."""
    return keypoints.rest_points(*_rest_arrays(hand))[0]


@functools.lru_cache(maxsize=2)
def _open_model_keypoints(side: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The open model's rest points and its shipped corrections for one side: the source of transferred ones."""
    hand = load_hand_models(None)[side]
    return _rest_points(hand), keypoints.load_corrections(hand.info.sha256)


def keypoint_corrections(hand: HandModel) -> tuple[np.ndarray | None, str]:
    """(21, 3) corrections for any MANO-layout model and where they come from: the file's own calibration (by its
    sha256: the open model's shipped one, or LOCAL_FILE_NAME beside a MANO file), else the open model's
    transferred in bone frames relative to hand size (keypoints.transfer); (None, "none") if there are none."""
    model_dir = Path(hand.info.path).parent if hand.info.path else None
    own = keypoints.load_corrections(hand.info.sha256, model_dir)
    if own is not None:
        return own, f"calibrated for this file ({hand.info.name})"
    source_points, source = _open_model_keypoints(hand.info.side)
    if source is None:
        return None, "none"
    return keypoints.transfer(source, source_points, _rest_points(hand), hand.info.side), (
        "transferred from enrich-open-hand (bone frames, relative to hand size)"
    )


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


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def joint_axes(rest21: np.ndarray, side: str) -> np.ndarray:
    """(15, 3, 3) rows = flexion axis, palm normal, bone direction of joints 1..15 at rest.

    rest21: (21, 3) rest points in [16 joints + 5 tips] order. A positive rotation about the flexion axis bends
    the bone towards the palm; the palm normal comes from the hand's chirality, so it holds for either side."""
    wrist, index, middle, pinky = rest21[0], rest21[1], rest21[4], rest21[7]
    f = _unit(middle - wrist)
    s = _unit((index - pinky) - np.dot(index - pinky, f) * f)  # towards the thumb
    palm = np.cross(s, f) if side == "right" else np.cross(f, s)
    bones = _unit(rest21[_CHILD] - rest21[1:16])
    flex = _unit(np.cross(bones, palm))
    return np.stack([flex, np.cross(flex, bones), bones], 1)  # orthonormal rows


def _limits() -> np.ndarray:
    """(15, 3, 2) lo/hi in MANO joint order 1..15."""
    fingers = [np.array(_FINGER_LIMITS)] * 4
    return np.concatenate(fingers + [np.array(_THUMB_LIMITS)], 0)


# --- initialisation ---


def _rotvec_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., 3) minimal rotation vectors turning directions a into b."""
    a, b = _unit(a), _unit(b)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1, keepdims=True)
    cos = np.sum(a * b, axis=-1, keepdims=True)
    return _unit(axis) * np.arctan2(sin, cos)


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
        local[:, j - 1] = _rotvec_between(np.broadcast_to(rest_bone, in_parent.shape), in_parent)
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


# --- layout of a track: segments of consecutive frames ---


# what the lift did with each detection of a 2D track (ManoTrack.detection_status; stored as hands/lift_status)
DETECTION_USED, DETECTION_DROPPED, DETECTION_SPLIT = 0, 1, 2
OUTLIER_RATIO = 1.6  # a detection this many times larger or smaller than its neighbours, in the image and in depth
OUTLIER_JUMP = 3.0  # or this many hand sizes off its constant-velocity path (per sqrt of frames), is inconsistent
OUTLIER_NEIGHBOURS = 3  # detections compared on each side
MIN_SPLIT_RUN = 3  # a run of this many inconsistent detections is a hand of its own: it starts a new segment


def _spread(points: np.ndarray) -> np.ndarray:
    """(T,) RMS distance of (T, 21, D) points from their centroid (x, y only)."""
    xy = points[..., :2]
    return np.sqrt(((xy - xy.mean(1, keepdims=True)) ** 2).sum(-1).mean(1)).clip(1e-6)


def screen_detections(track: HandTrack2D, max_gap_frames: int) -> np.ndarray:
    """(T,) DETECTION_* per detection: one inconsistent with the track so far is dropped, or, when a run of
    MIN_SPLIT_RUN or more agree with each other, starts a new segment.

    Inconsistent: its image size differs from the last accepted detections' median by more than OUTLIER_RATIO and
    so does its depth proxy (image size over the world landmarks' size across the line of sight, which a turning
    hand does not change: the pose explains such a change of image size, depth does not), or its centre jumps
    more than OUTLIER_JUMP hand sizes off the path the last two predict (per sqrt of the frames between). The
    track is walked forward and backward from its most confident detection among the first five, so a bad first
    detection is caught too."""
    n = len(track)
    status = np.zeros(n, np.int8)
    if n < 2:
        return status
    image = np.nan_to_num(track.keypoints2d[..., :2].astype(np.float64))
    cue = _Cues(
        _spread(image),
        _spread(image) / _spread(np.nan_to_num(track.world_landmarks.astype(np.float64))),
        image.mean(1),
        track.frame_index.astype(np.int64),
    )
    anchor = int(np.argmax(np.nan_to_num(track.presence[:5])))
    for step in (1, -1):
        ref, t = [anchor], anchor + step
        while 0 <= t < n:
            if abs(cue.frames[t] - cue.frames[ref[-1]]) > max_gap_frames + 1:
                ref, t = [t], t + step  # a long gap starts a new segment anyway
                continue
            if cue.consistent(t, ref[-OUTLIER_NEIGHBOURS:]):
                ref, t = ref + [t], t + step
                continue
            run, e = [t], t + step
            while 0 <= e < n and not cue.consistent(e, ref[-OUTLIER_NEIGHBOURS:]) and cue.consistent(e, run[-3:]):
                run, e = run + [e], e + step
            if len(run) >= MIN_SPLIT_RUN:
                status[run[0] if step > 0 else run[0] + 1] = DETECTION_SPLIT  # the first row of the new segment
                ref = run
            else:
                status[run] = DETECTION_DROPPED
            t = e
    return status


@dataclass(frozen=True)
class _Cues:
    size: np.ndarray  # (T,) px
    depth: np.ndarray  # (T,) image size over world size: proportional to 1 / depth
    centre: np.ndarray  # (T, 2) px
    frames: np.ndarray  # (T,)

    def consistent(self, t: int, ref: list[int]) -> bool:
        size = np.median(self.size[ref])
        off_size = abs(np.log(self.size[t] / size)) > np.log(OUTLIER_RATIO)
        off_depth = abs(np.log(self.depth[t] / np.median(self.depth[ref]))) > np.log(OUTLIER_RATIO)
        frames_apart = max(int(np.abs(self.frames[ref] - self.frames[t]).min()), 1)
        limit = OUTLIER_JUMP * size * np.sqrt(frames_apart)
        return not ((off_size and off_depth) or np.linalg.norm(self.centre[t] - self._predicted(t, ref)) > limit)

    def _predicted(self, t: int, ref: list[int]) -> np.ndarray:
        """Centre expected at row t: constant velocity from the last two accepted rows (up to 3 frames ahead)."""
        if len(ref) < 2:
            return self.centre[ref[-1]]
        last, prev = ref[-1], ref[-2]
        ahead = np.clip((self.frames[t] - self.frames[last]) / (self.frames[last] - self.frames[prev]), -3, 3)
        return self.centre[last] + ahead * (self.centre[last] - self.centre[prev])


def layout(
    frame_index: np.ndarray, max_gap_frames: int, breaks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames to fit -> (frames (N,), segment id (N,), row of the 2D track or -1 (N,)).

    A gap of up to ``max_gap_frames`` missing frames is filled; a longer one starts a new segment, and so does a
    row where ``breaks`` (one bool per row) is set."""
    frames, segment, rows = [], [], []
    seg = 0
    for i, f in enumerate(frame_index):
        if i and (f - frame_index[i - 1] > max_gap_frames + 1 or (breaks is not None and breaks[i])):
            seg += 1
        elif i:
            gap = range(int(frame_index[i - 1]) + 1, int(f))
            frames += list(gap)
            segment += [seg] * len(gap)
            rows += [-1] * len(gap)
        frames.append(int(f))
        segment.append(seg)
        rows.append(i)
    return np.array(frames, np.int32), np.array(segment, np.int16), np.array(rows, np.int64)


OFF_FRAME_WEIGHT = 0.2  # MediaPipe extrapolates a keypoint outside the frame: a guess, weighted as such


def _observations(
    track: HandTrack2D, rows: np.ndarray, frame_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """image px (N, 21, 2), world m (N, 21, 3), confidence (N, 21); zero confidence where unseen or not finite,
    OFF_FRAME_WEIGHT of it for a keypoint outside a frame of ``frame_size`` (width, height) px."""
    n = len(rows)
    image, world, conf = np.zeros((n, 21, 2)), np.zeros((n, 21, 3)), np.zeros((n, 21))
    seen = rows >= 0
    image[seen] = track.keypoints2d[rows[seen], :, :2]
    world[seen] = track.world_landmarks[rows[seen]]
    conf[seen] = np.clip(np.nan_to_num(track.presence[rows[seen]].astype(np.float64)), 0, 1)[:, None]
    finite = np.isfinite(image).all(-1) & np.isfinite(world).all(-1)
    conf = np.where(finite, conf, 0.0)
    bad_frame = (conf > 0).sum(1) < 21  # a partly non-finite frame is not trusted at all
    conf[bad_frame] = 0.0
    image = np.nan_to_num(image)
    if frame_size is not None:
        inside = (image >= 0).all(-1) & (image[..., 0] <= frame_size[0]) & (image[..., 1] <= frame_size[1])
        conf = np.where(inside, conf, OFF_FRAME_WEIGHT * conf)
    return image, np.nan_to_num(world), conf


def along_view_rays(world_m: np.ndarray, image_px: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Turn each frame's world landmarks from the crop's view to the camera's: MediaPipe estimates them as seen
    along the ray through the hand, which is not the optical axis for a hand off the image centre."""
    centre = image_px.mean(1)
    rays = np.concatenate([(centre - K[:2, 2]) / K[[0, 1], [0, 1]], np.ones((len(centre), 1))], 1)
    rot = Rotation.from_rotvec(_rotvec_between(np.broadcast_to([0.0, 0.0, 1.0], rays.shape), rays)).as_matrix()
    return np.einsum("tij,tkj->tki", rot, world_m)


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


# --- the fit ---

# MediaPipe bones (parent, child): thumb chain, the other fingers' chains, wrist to each finger's base
_BONES = np.array(
    [(0, 1), (1, 2), (2, 3), (3, 4)]
    + [(b, b + 1) for f in range(5, 21, 4) for b in (f, f + 1, f + 2)]
    + [(0, f) for f in range(5, 21, 4)]
)


def _bone_length(points_mp: np.ndarray) -> np.ndarray:
    """(T,) summed bone lengths of (T, 21, 3) MediaPipe-ordered points."""
    return np.linalg.norm(points_mp[:, _BONES[:, 0]] - points_mp[:, _BONES[:, 1]], axis=-1).sum(1).clip(1e-6)


@dataclass
class _Problem:
    """Tensors of one track's fit (N rows over all its segments)."""

    image: torch.Tensor  # (N, 21, 2) px
    world_rel: torch.Tensor  # (N, 21, 3) m, wrist-relative
    world_dirs: torch.Tensor  # (N, 20, 3) unit bone directions of the world landmarks
    conf: torch.Tensor  # (N, 21)
    K: torch.Tensor  # (3, 3)
    world_size: torch.Tensor  # (N,) summed bone lengths of the world landmarks
    size_ref: float  # summed bone lengths of the model's mean hand, metres
    triples: torch.Tensor  # (M, 3) rows t-1, t, t+1 of one segment, for acceleration
    axes: torch.Tensor  # (15, 3, 3)
    limits: torch.Tensor  # (15, 3, 2)
    bones: torch.Tensor  # (20, 2)
    pose_scale: torch.Tensor  # (45,) radians per unit of the optimised pose variables


def _project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    z = points[..., 2:].clamp(min=1e-3)
    return points[..., :2] / z * torch.stack([K[0, 0], K[1, 1]]) + torch.stack([K[0, 2], K[1, 2]])


def _world_residual(joints: torch.Tensor, p: _Problem) -> torch.Tensor:
    """(N, 21, 3) shape difference between the fitted joints and MediaPipe's world landmarks, both root-relative and
    normalised to the model's mean hand size: the world landmarks give the hand's shape, not its size (on SSv2
    they come out ~0.6x an adult hand), and the size must not be able to shrink the residual away."""
    rel = joints - joints[:, :1]
    size = _bone_length_t(rel)
    return (rel / size[:, None, None] - p.world_rel / p.world_size[:, None, None]) * p.size_ref


def _bone_residual(joints: torch.Tensor, p: _Problem) -> torch.Tensor:
    """(N, 20, 3) metres: each fitted bone against the world landmarks' direction of that bone, at the fitted
    bone's length. Directions only: MediaPipe's world landmarks are neither metric nor consistent in their bone
    lengths (0.25-1x of an adult hand, bone by bone), but their directions carry the depth the image lacks."""
    vec = joints[:, p.bones[:, 1]] - joints[:, p.bones[:, 0]]
    return vec - vec.norm(dim=-1, keepdim=True) * p.world_dirs


def _bone_length_t(points_mp: torch.Tensor) -> torch.Tensor:
    bones = torch.as_tensor(_BONES, device=points_mp.device)
    return (points_mp[:, bones[:, 0]] - points_mp[:, bones[:, 1]]).norm(dim=-1).sum(1).clamp(min=1e-6)


def _limit_penalty(hand_pose: torch.Tensor, p: _Problem) -> torch.Tensor:
    comps = torch.einsum("jab,tjb->tja", p.axes, hand_pose.reshape(-1, 15, 3))  # flex, abduction, twist
    lo, hi = p.limits[..., 0], p.limits[..., 1]
    return (torch.relu(lo - comps) ** 2 + torch.relu(comps - hi) ** 2).sum()


TRANSL_UNIT_M = 0.01  # translation is optimised in cm, so all variables move on similar scales for L-BFGS


LEVER_UNIT_M = 0.05  # finger rotations are optimised as the fingertip travel they cause, in units of 5 cm


def _lever_scale(rest21: np.ndarray) -> np.ndarray:
    """(45,) radians per optimisation unit of each hand_pose entry: a DIP turns a 2 cm lever, an MCP a 9 cm one,
    so in radians L-BFGS sees gradients 5x apart; in fingertip travel they are alike."""
    tips = {1: 17, 4: 18, 7: 20, 10: 19, 13: 16}  # first joint of each finger -> its tip in rest21
    lever = np.zeros(15)
    for j in range(15):
        tip = tips[1 + 3 * (j // 3)]
        lever[j] = np.linalg.norm(rest21[tip] - rest21[j + 1])
    return np.repeat(LEVER_UNIT_M / np.maximum(lever, 0.01), 3)


def _hand_pose(params: dict[str, torch.Tensor], p: _Problem) -> torch.Tensor:
    return params["pose_u"] * p.pose_scale


def _joints(params: dict[str, torch.Tensor], model: JointModel, p: _Problem) -> torch.Tensor:
    return model(params["global_orient"], _hand_pose(params, p), params["betas"], params["transl_cm"] * TRANSL_UNIT_M)


def _robust(sq: torch.Tensor) -> torch.Tensor:
    """Pseudo-Huber of a squared normalised residual: sq / 2 (Gaussian NLL) when small, linear in |r| when large."""
    return 2 * (torch.sqrt(1 + sq / 2) - 1)


def _objective(params: dict[str, torch.Tensor], model: JointModel, p: _Problem, c: LiftConfig) -> torch.Tensor:
    """Negative log-likelihood of the track (σ's in physical units), per frame so L-BFGS sees O(1) values."""
    joints = _joints(params, model, p)
    n = joints.shape[0]
    r2d = ((_project(joints, p.K) - p.image) ** 2).sum(-1) / c.sigma_2d_px**2
    loss = (p.conf * _robust(r2d)).sum()
    if c.world_term == "bones":
        bone_conf = p.conf[:, p.bones].min(-1).values
        r3d = _bone_residual(joints, p)
    else:
        bone_conf = p.conf
        r3d = _world_residual(joints, p)
    # depth only: across the line of sight the image is sharper than the world landmarks and they disagree
    # (~10 % of the hand's size on SSv2), so there the world term would only pull the fit off the image
    r3d = r3d[..., 2:] if c.world_depth_only else r3d
    r3d = (r3d**2).sum(-1) / c.sigma_world_m**2
    loss = loss + (bone_conf * _robust(r3d)).sum()
    pose = _hand_pose(params, p)
    loss = loss + 0.5 * (pose**2).sum() / c.sigma_pose_rad**2
    loss = loss + 0.5 * _limit_penalty(pose, p) / c.sigma_limit_rad**2
    # the shape prior counts once per frame, not once per track: MediaPipe's errors in a hand's proportions repeat
    # frame after frame, so 40 frames are not 40 independent measurements of the shape
    loss = loss + n * 0.5 * (params["betas"] ** 2).sum() / c.sigma_shape**2
    if len(p.triples):
        a, b, d = p.triples.T
        acc = joints[a] - 2 * joints[b] + joints[d]
        sq = (acc**2).sum(-1) / c.sigma_accel_m**2
        # heavy-tailed: real hands move smoothly with occasional sharp changes (a grasp, a put-down), noise does not
        loss = loss + (_robust(sq) if c.robust_accel else 0.5 * sq).sum()
    return loss / n


def _triples(segment: np.ndarray) -> np.ndarray:
    t = np.arange(1, len(segment) - 1)
    keep = (segment[t - 1] == segment[t]) & (segment[t + 1] == segment[t])
    return np.stack([t[keep] - 1, t[keep], t[keep] + 1], 1) if keep.any() else np.zeros((0, 3), np.int64)


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


def _initial(
    model: JointModel,
    image: np.ndarray,
    world: np.ndarray,
    conf: np.ndarray,
    seen: np.ndarray,
    segment: np.ndarray,
    K: np.ndarray,
) -> dict[str, np.ndarray]:
    """IK on the world landmarks for the rotations, then the model's own posed joints placed onto the image."""
    rest21 = model.rest21(np.zeros(N_BETAS))
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


def fit_track(
    track: HandTrack2D,
    model: JointModel,
    K: np.ndarray,
    config: LiftConfig,
    temporal: bool = True,
    frame_size: tuple[int, int] | None = None,
    fit_focal: bool = False,
) -> ManoTrack | None:
    """Fit one 2D track (all frames at once). None when no frame carries a usable observation.
    ``frame_size``: (width, height) px, so keypoints MediaPipe placed outside the frame count less. ``fit_focal``:
    estimate the focal length about K's (prior config.sigma_log_focal; LM solver); the fit's focal_px says which."""
    status = np.zeros(len(track), np.int8)
    if config.reject_outliers:
        status = screen_detections(track, config.max_gap_frames)
    kept = status != DETECTION_DROPPED
    track = track.rows(kept)
    frames, segment, rows = layout(track.frame_index, config.max_gap_frames, status[kept] == DETECTION_SPLIT)
    image, world, conf = _observations(track, rows, frame_size)
    world = along_view_rays(world, image, K) if config.view_rays else world
    seen = conf.sum(1) > 0
    usable = np.isin(segment, np.unique(segment[seen]))  # a segment with no usable frame is dropped
    frames, segment, rows, image, world, conf, seen = (
        a[usable] for a in (frames, segment, rows, image, world, conf, seen)
    )
    if not seen.any():
        return None
    segment = np.unique(segment, return_inverse=True)[1].astype(np.int16)  # renumber after dropping segments
    init = _initial(model, image, world, conf, seen, segment, K)
    dev, dt = model.device, model.dtype
    tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=dt, device=dev)  # noqa: E731
    rest21 = model.rest21(np.zeros(N_BETAS))
    problem = _Problem(
        image=tensor(image),
        world_rel=tensor(world - world[:, :1]),
        world_dirs=tensor(_unit(world[:, _BONES[:, 1]] - world[:, _BONES[:, 0]])),
        conf=tensor(conf),
        K=tensor(K),
        world_size=tensor(_bone_length(world)),
        size_ref=float(_bone_length(rest21[MEDIAPIPE_FROM_MANO][None])[0]),
        triples=torch.as_tensor(_triples(segment) if temporal else np.zeros((0, 3)), dtype=torch.long, device=dev),
        axes=tensor(joint_axes(rest21, track.side)),
        limits=tensor(_limits()),
        bones=torch.as_tensor(_BONES, dtype=torch.long, device=dev),
        pose_scale=tensor(_lever_scale(rest21)),
    )
    init["pose_u"] = init.pop("hand_pose") / _lever_scale(rest21)
    init["transl_cm"] = init.pop("transl") / TRANSL_UNIT_M
    params = {k: tensor(v).requires_grad_() for k, v in init.items()}
    params["betas"] = torch.zeros(N_BETAS, dtype=dt, device=dev, requires_grad=True)
    if config.solver == "lm" and config.device == "cpu":
        fit = _fit_lm(track.side, frames, segment, rows, seen, init, model, problem, config, fit_focal)
    else:
        _minimise(params, model, problem, config)
        fit = _result(track.side, frames, segment, rows, seen, params, model, problem)
        with torch.no_grad():
            fit = replace(fit, objective=float(_objective(params, model, problem, config)), focal_px=float(K[0, 0]))
    return replace(fit, detection_status=status, reliable=reliability(fit, track, rows, K))


def _accel_sigma(rest21: np.ndarray, sigma_m: float) -> np.ndarray:
    """(51,) acceleration σ of each per-frame LM variable: a rotation's σ is the joint σ over its lever (the joint
    to its fingertip; the wrist to the middle fingertip for the global rotation), the translation's is the joint σ."""
    lever = np.zeros(16)
    lever[0] = np.linalg.norm(rest21[18] - rest21[0])
    lever[1:] = LEVER_UNIT_M / _lever_scale(rest21)[::3]
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


def _fit_lm(
    side: str,
    frames: np.ndarray,
    segment: np.ndarray,
    rows: np.ndarray,
    seen: np.ndarray,
    init: dict[str, np.ndarray],
    model: JointModel,
    problem: _Problem,
    config: LiftConfig,
    fit_focal: bool = False,
) -> ManoTrack:
    """The LM path of fit_track: numpy problem from the torch one, solve, result."""
    rest21 = model.rest21(np.zeros(N_BETAS))
    to_np = lambda t: t.detach().cpu().numpy().astype(np.float64)  # noqa: E731
    world_rel = to_np(problem.world_rel) / to_np(problem.world_size)[:, None, None] * problem.size_ref
    lp = lift_solver.Problem(
        image=to_np(problem.image),
        conf=to_np(problem.conf),
        world_rel=world_rel,
        K=to_np(problem.K),
        size_ref=problem.size_ref,
        bones=_BONES,
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
    w = np.concatenate([glob[:, None], (init["pose_u"] * _lever_scale(rest21)).reshape(-1, 15, 3)], 1)
    transl = init["transl_cm"] * TRANSL_UNIT_M
    settings = lift_solver.SolverSettings(max_iterations=config.max_iterations)
    w, transl, betas, loss, _, log_f = lift_solver.solve(model.skeleton, lp, w, transl, np.zeros(N_BETAS), settings)
    kp = lift_solver.forward(model.skeleton, w, transl, betas, jac=False).joints_kp
    focal = lp.K[[0, 1], [0, 1]] * np.exp(log_f)
    uv = kp[..., :2] / kp[..., 2:].clip(1e-3) * focal + lp.K[:2, 2]
    err2d = np.linalg.norm(uv - lp.image, axis=-1).mean(-1)
    rel = kp - kp[:, :1]
    rel = rel / _bone_length(kp)[:, None, None] * problem.size_ref
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


RELIABLE_MIN_PRESENCE = 0.5
# calibrated on hand-graph-cnn's 20 dev images (the one wrong fit: 0.44 and 69 mm; the others <= 0.05 and 14 mm)
RELIABLE_MAX_RESIDUAL = 0.08  # mean 2D residual over the hand's image size (RMS spread of its keypoints)
RELIABLE_MAX_RESIDUAL_3D_MM = 25.0  # mean disagreement with the scale-normalised world landmarks


def reliability(fit: ManoTrack, track: HandTrack2D, rows: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(T,) bool: observed, MediaPipe sure a hand is there, the fit sits on the image for the hand's size and
    agrees with MediaPipe's 3D shape."""
    seen_rows = rows[fit.observed]
    size = _spread(np.nan_to_num(track.keypoints2d[seen_rows, :, :2].astype(np.float64)))
    presence = np.nan_to_num(track.presence[seen_rows].astype(np.float64))
    ok = (presence >= RELIABLE_MIN_PRESENCE) & (fit.residual_2d_px[fit.observed] <= RELIABLE_MAX_RESIDUAL * size)
    ok &= fit.residual_3d_mm[fit.observed] <= RELIABLE_MAX_RESIDUAL_3D_MM
    out = np.zeros(len(fit), bool)
    out[fit.observed] = ok
    return out


def _minimise(params: dict[str, torch.Tensor], model: JointModel, p: _Problem, c: LiftConfig) -> None:
    if c.rigid_iterations:  # placement alone first: the articulation from IK is close, the placement less so
        _lbfgs([params["global_orient"], params["transl_cm"]], params, model, p, c, c.rigid_iterations)
    _lbfgs(list(params.values()), params, model, p, c, c.iterations)


def _lbfgs(
    variables: list[torch.Tensor],
    params: dict[str, torch.Tensor],
    model: JointModel,
    p: _Problem,
    c: LiftConfig,
    iterations: int,
) -> None:
    opt = torch.optim.LBFGS(
        variables,
        max_iter=iterations,
        max_eval=int(1.25 * iterations) + 1,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-9,
        history_size=20,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _objective(params, model, p, c)
        loss.backward()
        return loss

    opt.step(closure)


def _result(
    side: str,
    frames: np.ndarray,
    segment: np.ndarray,
    rows: np.ndarray,
    seen: np.ndarray,
    params: dict[str, torch.Tensor],
    model: JointModel,
    p: _Problem,
) -> ManoTrack:
    with torch.no_grad():
        joints = _joints(params, model, p)
        err2d = (_project(joints, p.K) - p.image).norm(dim=-1).mean(-1).cpu().numpy()
        err3d = 1000 * _world_residual(joints, p).norm(dim=-1).mean(-1).cpu().numpy()
    out = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in params.items()}
    out["transl"] = out.pop("transl_cm") * np.float32(TRANSL_UNIT_M)
    out["hand_pose"] = (out.pop("pose_u") * p.pose_scale.cpu().numpy()).astype(np.float32)
    return ManoTrack(
        side=side,
        frame_index=frames,
        global_orient=out["global_orient"],
        hand_pose=out["hand_pose"],
        betas=out["betas"],
        transl=out["transl"],
        joints3d=joints.cpu().numpy().astype(np.float32),
        residual_2d_px=np.where(seen, err2d, -1.0).astype(np.float32),
        residual_3d_mm=np.where(seen, err3d, -1.0).astype(np.float32),
        observed=seen,
        interpolated=rows < 0,
        segment=segment,
    )


# --- the stage ---


class HandFitter:
    """What a worker loads once for the lift: both sides of one hand model, as joints-only models."""

    def __init__(self, source: str | None, config: LiftConfig) -> None:
        hands = load_hand_models(source, device=config.device)
        self.joint_models = {
            side: JointModel(model, device=config.device, calibrated=config.calibrated_keypoints)
            for side, model in hands.items()
        }
        self.config = config
        torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])  # pay torch's one-off optimiser import here


def hand_model_info(source: str | None, calibrated_keypoints: bool = True) -> dict[str, dict]:
    """Name, sha256, path and vertex count of the hand model ``source`` resolves to, per side, and the keypoint
    corrections the lift applies to it (``keypoint_corrections``: their source, or "none")."""
    info = {}
    for side, model in load_hand_models(source).items():
        applied = keypoint_corrections(model)[1] if calibrated_keypoints else "none"
        info[side] = {**asdict(model.info), "keypoint_corrections": applied}
    return info


def lift_clip(tracks: ClipTracks, fitter: HandFitter, K: np.ndarray | None = None) -> ClipTracks:
    """A new ClipTracks whose hand tracks carry their fits (``track.fit``) and the focal length used; the input
    records are left as they were.

    A lone hand whose handedness vote is uncertain is fitted with both sides' models and takes the side whose
    model explains it better: MediaPipe's handedness is least reliable exactly on such partial hands.
    ``K``: the camera (3, 3), used as given; default: the documented intrinsics from the frame size, whose focal
    length the fit estimates (config.sigma_log_focal > 0): a track is many views of one hand of one size, and how
    its image foreshortens against MediaPipe's 3D landmarks tells the focal length. One camera per clip: the
    longest track's estimate; another hand is refitted with it."""
    fit_focal = K is None and fitter.config.sigma_log_focal > 0 and fitter.config.solver == "lm"
    K = intrinsics(tracks.width, tracks.height, fitter.config.focal_scale) if K is None else K
    hands = _fit_hands(tracks, fitter, K, fit_focal)
    fits = [h.fit for h in hands.values() if h.fit is not None]
    if not fit_focal or not fits:
        return replace(tracks, hands=hands, focal_px=float(K[0, 0]))
    focal = max(fits, key=lambda f: int(f.observed.sum())).focal_px
    if len(fits) > 1:
        K = K.copy()
        K[0, 0] = K[1, 1] = focal
        hands = {side: h if h.fit.focal_px == focal else _refit(h, fitter, K, tracks) for side, h in hands.items()}
    return replace(tracks, hands=hands, focal_px=float(focal))


def _refit(track: HandTrack2D, fitter: HandFitter, K: np.ndarray, tracks: ClipTracks) -> HandTrack2D:
    size = (tracks.width, tracks.height)
    return track.with_fit(fit_track(track, fitter.joint_models[track.side], K, fitter.config, frame_size=size))


def _fit_hands(tracks: ClipTracks, fitter: HandFitter, K: np.ndarray, fit_focal: bool) -> dict[str, HandTrack2D]:
    hands: dict[str, HandTrack2D] = {}
    size = (tracks.width, tracks.height)
    for side, track in tracks.hands.items():
        fit = fit_track(track, fitter.joint_models[side], K, fitter.config, frame_size=size, fit_focal=fit_focal)
        hands[side] = track.with_fit(fit)
        other = "left" if side == "right" else "right"
        if fit is None or other in tracks.hands or _side_certainty(track) >= fitter.config.side_certainty:
            continue
        flipped = replace(track, side=other, fit=None)
        flipped_fit = fit_track(
            flipped, fitter.joint_models[other], K, fitter.config, frame_size=size, fit_focal=fit_focal
        )
        if flipped_fit is not None and flipped_fit.objective < fit.objective:
            del hands[side]
            hands[other] = flipped.with_fit(flipped_fit)
    return hands


def _side_certainty(track: HandTrack2D) -> float:
    """|2 P(right) - 1| of the track's presence-weighted handedness: 0 undecided, 1 certain."""
    weight = np.clip(np.nan_to_num(track.presence.astype(np.float64)), 1e-6, None)
    return float(abs(2 * np.average(np.nan_to_num(track.handedness, nan=0.5), weights=weight) - 1))
