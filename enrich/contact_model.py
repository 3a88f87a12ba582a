"""The fitted contact model: per-row features, two small logistic models, an HMM with duration priors,
surface slots and finger sets. Pure functions on arrays; contacts.py builds the rows and calls these.

* **Features** (all in hand sizes or shares, so they do not depend on the frame size):
  proximity (gap, penetration, overlap both ways), object-box motion and hand–object co-motion (the
  Gaussian log-likelihood ratio of contacts.py), the object's displacement from where it starts and where
  it ends (a touched object has moved or will move), the object's size change against the hand's (moving
  together in depth changes both scales alike); with keypoints also fingertip distance, the share of tips and
  keypoints inside the box (occlusion of the object by the hand), finger curl and thumb–index aperture from
  MediaPipe's metric 3D landmarks (grasp shape) and the nearest fingertip's depth relative to the wrist.
* **Per-frame model**: logistic regression (standardised features, L2), contact against free, one for
  box-only rows and one for keypoint rows; with the training prior taken out its log-odds is the emission of
* **a three-phase HMM** decoded with Viterbi: before (approach) -> contact <-> after (release). Contact and
  after are chains of ``min_*_frames`` states, so a contact lasts at least ``min_contact_frames`` and a
  release at least ``min_free_frames`` (a flicker cannot split a segment); the last state of each chain
  leaves at the rate that gives the mean duration of that phase in training (geometric tail). A second
  logistic model splits the free emission into before and after from the object's motion structure (has it
  moved yet, will it move again): a hand still over the box once the object has come to rest is a release,
  not a contact.
* **Surfaces**: a slot whose box covers most of the frame (a table, a seat, a mat) is not the manipulated
  object; its rows carry ``ROLE_SURFACE`` and are decoded on their own. Proximity means nothing there (the
  hand is always "inside" the box), a still hand over a still surface says nothing either way, and no
  labelled touch of a surface exists to calibrate more: only co-motion (the surface moving with the hand)
  speaks, without the bias chosen for objects.
* **Fingers**: a finger touches when its tip is within ``tip_radius_hand`` of the box in 2D and, with 3D
  landmarks, it is not curled into the palm (a curled finger's 2D tip lies over the object without touching);
  a lone digit with the other four folded away is the index (``finger_bits``). A lone digit on the box also
  adds a fixed log-odds to its keypoint row's contact score (``lone_digit_prior``, not fitted): one fingertip at
  the edge of a box looks like an approach to the fitted model, and the labels hold a single poke. With
  ``segment_fingers`` every contact row of a segment, box-only rows included, carries the segment's commonest set.

The parameters live in enrich/data/contact_model.json, written by benchmarks/train_contacts.py (fitted on the
33 Real2Sim phase clips and benchmarks/data/contact_labels.csv; choices by leave-one-clip-out, the reported
figures from nested leave-one-clip-out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from enrich.constants import FINGERTIPS_IDX
from enrich.contact_hmm import (  # noqa: F401 - re-exported: contacts.py, the trainer and tests decode through here
    AFTER,
    BEFORE,
    CONTACT,
    PHASES,
    HmmParams,
    log_transitions,
    mask_runs,
    viterbi_masks,
    viterbi_segments,
)
from enrich.contact_roles import (  # noqa: F401 - re-exported: contacts.py and tests read roles from here
    ROLE_MANIPULATED,
    ROLE_NAMES,
    ROLE_OTHER,
    ROLE_SURFACE,
    placeholder_is_target,
    slot_roles,
    unboxed_manipulated,
)

MODEL_PATH = Path(__file__).parent / "data" / "contact_model.json"

BOX_FEATURES: tuple[str, ...] = (
    "gap_pos",  # hand extent to object box gap, hand sizes, 0 when they overlap (clipped at 3)
    "penetration",  # overlap depth, hand sizes (clipped at 2)
    "overlap",  # share of the hand extent inside the object box
    "obj_in_hand",  # share of the object box inside the hand extent
    "co_motion",  # co-motion log-LR / cap, in [-1, 1]
    "obj_speed",  # log1p(object box speed / jitter), windowed
    "hand_speed",  # log1p(hand speed / jitter), windowed
    "obj_moved_before",  # log1p(object displacement from its first box / hand size)
    "obj_moves_after",  # log1p(object displacement to its last box / hand size)
    "scale_co_motion",  # -|d log(object size) - d log(hand size)| windowed, where the object's size changes
    "rel_speed",  # log1p(|hand velocity - object velocity| / jitter), windowed: approach and release move apart
    "gap_rate",  # windowed change of the gap per frame (hand sizes): < 0 approaching, > 0 leaving
    "since_motion_start",  # (t - first frame the object moves) / 6, clipped to [-2, 2]; 0 if it never moves
    "until_motion_end",  # (last frame the object moves - t) / 6, clipped to [-2, 2]; 0 if it never moves
    "overlap_before",  # the overlap 3 frames earlier (0 where the hand was not seen): context for onsets
    "overlap_after",  # the overlap 3 frames later: context for releases
    "obj_speed_before",  # the object's windowed speed 3 frames earlier
    "obj_speed_after",  # ... and 3 frames later
)
CONTEXT_FRAMES = 3
MOVING_JITTERS = 1.0  # windowed object speed above one box jitter per frame: the object is moving
STRUCTURE_SCALE_FRAMES = 6.0  # half a second
KEYPOINT_FEATURES: tuple[str, ...] = BOX_FEATURES + (
    "tip_distance",  # nearest fingertip to the box, hand sizes (0 inside), clipped at 2
    "tips_inside",  # share of the five fingertips inside the box
    "keypoints_inside",  # share of the 21 keypoints inside the box: the hand covering the object
    "curl",  # mean finger curl (0 straight .. ~0.6 folded), 3D landmarks
    "aperture",  # thumb tip to index tip, 3D, in wrist-to-middle-MCP lengths
    "tip_depth",  # relative depth of the fingertip nearest the box against the wrist, hand sizes
    "lone_digit",  # 1 where one fingertip reaches the box and the other four are folded clear: a poke (not fitted)
)
SURFACE_FEATURES: frozenset[str] = frozenset({"co_motion"})


FINGER_CHAINS = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16], [17, 18, 19, 20]])
MOTION_JITTER_HAND = 0.03  # per-frame box-centre jitter in hand sizes (ContactConfig.motion_noise_hand)
WINDOW = 2  # frames either side for windowed speeds
REACH_SLACK_HAND = 0.25  # a gap (hand sizes) up to this is within the boxes' drawing slack of a touch
ANNOTATION_SLACK_HAND = 0.05  # beyond it, each 0.05 hand sizes costs one unit of log-odds (ContactConfig)
LONE_DIGIT_CLEAR_HAND = 0.5  # the other four tips at least this far from the box (hand sizes): a lone digit
LONE_DIGIT_REACH_HAND = 0.1  # a lone fingertip this close to the box (about a fingertip's width) is on it
LONE_DIGIT_LOGIT = 2.0  # log-odds a lone digit on the box adds (ContactConfig.fingertips_inside_logit's prior)


# ------------------------------------------------------------------------------------------------------
# parameters
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Logistic:
    """Logistic regression, contact against free: logit = bias + ((x - mean) / scale) @ weights.

    The bias has the training prior's log-odds taken out, so the logit is a log-likelihood ratio (the HMM's
    transitions carry the priors). ``phase``, where fitted, tells the two free phases apart (after against
    before, among free rows: has the object moved already, will it move yet): approach and release look
    different, and the HMM has a state for each."""

    features: tuple[str, ...]  # the columns used, a subset of KEYPOINT_FEATURES (BOX_FEATURES is its head)
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weights: np.ndarray  # (F,)
    bias: float
    phase: Logistic | None = None  # after against before among free rows, its prior taken out like bias's
    phase_prior: float = 0.0  # log-odds of after against before in training (added back for the split)

    def columns(self, x: np.ndarray) -> np.ndarray:
        """The model's columns of a full feature matrix (BOX_FEATURES or KEYPOINT_FEATURES wide)."""
        return np.asarray(x, np.float64)[:, [KEYPOINT_FEATURES.index(f) for f in self.features]]

    def logit(self, x: np.ndarray) -> np.ndarray:
        """(M,) contact log-likelihood ratio of full feature rows."""
        z = (self.columns(x) - self.mean) / self.scale
        return self.bias + np.nan_to_num(z, nan=0.0) @ self.weights

    def scores(self, x: np.ndarray, surface: bool = False) -> np.ndarray:
        """(M, 3) phase log-likelihoods up to a per-row constant: before and after share the free one."""
        lr = self.row_logit(x, surface)
        zero = np.zeros_like(lr)
        if self.phase is None or surface:  # on a surface only co-motion speaks (module notes)
            return np.column_stack([zero, lr, zero])
        # free = before + after: each gets log P(phase | free, x) / P(phase | free), so where the split says
        # nothing (its prior) both are 0 as without it
        split = self.phase.logit(x) + self.phase_prior
        p_after = 1.0 / (1.0 + np.exp(-self.phase_prior))
        after = -np.logaddexp(0.0, -split) - np.log(p_after)
        before = -np.logaddexp(0.0, split) - np.log1p(-p_after)
        return np.column_stack([before, lr, after])

    def surface_logit(self, x: np.ndarray) -> np.ndarray:
        """(M,) the log-LR on a surface: co-motion's term alone, measured from 0 (no motion evidence), not from
        the training mean (see the module notes)."""
        z = self.columns(x) / self.scale
        keep = np.array([f in SURFACE_FEATURES for f in self.features])
        return np.nan_to_num(z[:, keep], nan=0.0) @ self.weights[keep]

    def row_logit(self, x: np.ndarray, surface: bool) -> np.ndarray:
        """(M,) log-LR of rows; beyond reach, the gap itself speaks (see reach_penalty); a lone digit on an
        object's box adds its prior (see lone_digit_prior; on a surface only co-motion speaks)."""
        if surface:
            return self.surface_logit(x) - reach_penalty(x)
        return self.logit(x) - reach_penalty(x) + lone_digit_prior(x)

    def to_dict(self) -> dict:
        return {
            "features": list(self.features),
            "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(),
            "weights": self.weights.round(6).tolist(),
            "bias": round(float(self.bias), 6),
            **({"phase": self.phase.to_dict(), "phase_prior": round(self.phase_prior, 6)} if self.phase else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Logistic:
        arr = {k: np.asarray(d[k], np.float64) for k in ("mean", "scale", "weights")}
        phase = cls.from_dict(d["phase"]) if "phase" in d else None
        return cls(tuple(d["features"]), arr["mean"], arr["scale"], arr["weights"], float(d["bias"]), phase,
                   float(d.get("phase_prior", 0.0)))  # fmt: skip


@dataclass(frozen=True)
class ContactModel:
    box: Logistic
    keypoints: Logistic
    hmm_box: HmmParams
    hmm_keypoints: HmmParams
    tip_radius_hand: float = 0.15  # finger touches within this 2D distance of the box (hand sizes)
    curl_max: float = 1.0  # ... and with a curl below this (3D); 1.0: no curl test
    segment_fingers: bool = False  # every contact row of a segment gets the segment's commonest finger set
    surface_share: float = 0.5  # a slot whose median box covers this share of the frame is a surface

    @classmethod
    def from_dict(cls, d: dict) -> ContactModel:
        return cls(
            Logistic.from_dict(d["box"]),
            Logistic.from_dict(d["keypoints"]),
            HmmParams.from_dict(d["hmm_box"]),
            HmmParams.from_dict(d["hmm_keypoints"]),
            **{k: float(d[k]) for k in ("tip_radius_hand", "curl_max", "surface_share") if k in d},
            segment_fingers=bool(d.get("segment_fingers", False)),
        )


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> ContactModel:
    """The shipped model (or one at ``path``); read once per process."""
    with open(path or MODEL_PATH, encoding="utf-8") as f:
        return ContactModel.from_dict(json.load(f))


# ------------------------------------------------------------------------------------------------------
# features
# ------------------------------------------------------------------------------------------------------


def reach_penalty(x: np.ndarray) -> np.ndarray:
    """(M,) log-odds taken off rows whose hand is beyond reach of the box: contact needs the hand (its
    keypoints dilated by a finger radius, or its box) to meet the object, up to the boxes' drawing slack. A fitted
    linear term cannot learn this from the few such rows in training (it weighs the gap like any other cue),
    so the physical bound is kept as a prior: ``(gap - REACH_SLACK_HAND) / ANNOTATION_SLACK_HAND``."""
    gap = np.asarray(x, np.float64)[:, KEYPOINT_FEATURES.index("gap_pos")]
    return np.maximum(gap - REACH_SLACK_HAND, 0.0) / ANNOTATION_SLACK_HAND


def lone_digit_prior(x: np.ndarray) -> np.ndarray:
    """(M,) log-odds added to keypoint rows where a lone digit reaches the box, the other four folded clear of
    it: a poke or a push with one finger. The fitted keypoint model sees one fingertip at the edge of a box and
    the rest of the hand outside it, which is how a hand approaching an object looks too, and the labels hold a
    single poke, so no fold could learn this; like reach_penalty it is a geometric prior, not fitted. It fires
    on no labelled free frame of the 13 labelled clips. Box-only rows (no fingertips) get 0."""
    x = np.asarray(x, np.float64)
    col = KEYPOINT_FEATURES.index("lone_digit")
    if x.ndim != 2 or x.shape[1] <= col:
        return np.zeros(len(x))
    return LONE_DIGIT_LOGIT * np.nan_to_num(x[:, col], nan=0.0)


def _windowed_mean(x: np.ndarray, k: int = WINDOW) -> np.ndarray:
    """Mean over t-k..t+k of the finite values; NaN where none."""
    padded = np.concatenate([np.full(k, np.nan), x, np.full(k, np.nan)])
    win = np.lib.stride_tricks.sliding_window_view(padded, 2 * k + 1)
    known = np.isfinite(win)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known.any(axis=1), np.where(known, win, 0.0).sum(axis=1) / known.sum(axis=1), np.nan)


def _centre(boxes: np.ndarray) -> np.ndarray:
    return 0.5 * (boxes[..., :2] + boxes[..., 2:])


def _log_size(boxes: np.ndarray) -> np.ndarray:
    wh = np.maximum(boxes[..., 2:] - boxes[..., :2], 1.0)
    return 0.5 * np.log(wh[..., 0] * wh[..., 1])


def box_features(
    frames: np.ndarray,
    extent: np.ndarray,
    box: np.ndarray,
    obj_dense: np.ndarray,
    v_hand_dense: np.ndarray,
    size_dense: np.ndarray,
    gap: np.ndarray,
    overlap: np.ndarray,
    co_motion_scaled: np.ndarray,
) -> np.ndarray:
    """(M, len(BOX_FEATURES)) for the rows at ``frames`` (0-based) of one (hand, slot) pair.

    extent/box (M, 4) hand extent and object box; obj_dense (n, 4) the object's boxes (NaN where absent);
    v_hand_dense (n, 2) hand step velocity px/frame; size_dense (n,) hand size px (filled);
    gap (M,) hand sizes; overlap (M,) share; co_motion_scaled (M,) in [-1, 1]."""
    size = size_dense[frames]
    v_obj = np.full_like(v_hand_dense, np.nan)
    c_obj = _centre(obj_dense)
    v_obj[1:] = c_obj[1:] - c_obj[:-1]
    jitter = MOTION_JITTER_HAND * size_dense
    obj_speed = _windowed_mean(np.hypot(*v_obj.T) / jitter)[frames]
    hand_speed = _windowed_mean(np.hypot(*v_hand_dense.T) / jitter)[frames]
    seen = np.flatnonzero(np.all(np.isfinite(obj_dense), axis=1))
    first, last = c_obj[seen[0]], c_obj[seen[-1]]
    moved_before = np.hypot(*(c_obj[frames] - first).T) / size
    moves_after = np.hypot(*(last - c_obj[frames]).T) / size
    obj_in_hand = _inside_share_boxes(box, extent)
    scale = _scale_co_motion(frames, extent, obj_dense)
    rel_speed = _windowed_mean(np.hypot(*(v_hand_dense - v_obj).T) / jitter)[frames]
    gap_dense = np.full(len(obj_dense), np.nan)
    gap_dense[frames] = gap
    d_gap = np.full(len(obj_dense), np.nan)
    d_gap[1:] = np.diff(gap_dense)
    gap_rate = np.clip(np.nan_to_num(_windowed_mean(d_gap)[frames], nan=0.0), -1.0, 1.0)
    since, until = _motion_structure(frames, _windowed_mean(np.hypot(*v_obj.T) / jitter))
    context = _context(frames, overlap, np.log1p(np.nan_to_num(_windowed_mean(np.hypot(*v_obj.T) / jitter), nan=0.0)))
    return np.column_stack(
        [
            np.clip(np.maximum(gap, 0.0), 0.0, 3.0),
            np.clip(np.maximum(-gap, 0.0), 0.0, 2.0),
            overlap,
            obj_in_hand,
            co_motion_scaled,
            np.log1p(np.nan_to_num(obj_speed, nan=0.0)),
            np.log1p(np.nan_to_num(hand_speed, nan=0.0)),
            np.log1p(moved_before),
            np.log1p(moves_after),
            scale,
            np.log1p(np.nan_to_num(rel_speed, nan=0.0)),
            gap_rate,
            since,
            until,
            *context,
        ]
    )


def _context(frames: np.ndarray, overlap: np.ndarray, obj_speed_dense: np.ndarray) -> list[np.ndarray]:
    """Overlap and object speed CONTEXT_FRAMES before and after each row (0 outside the clip / rows)."""
    n = len(obj_speed_dense)
    dense = np.zeros(n)
    dense[frames] = overlap
    k = CONTEXT_FRAMES
    before, after = np.clip(frames - k, 0, n - 1), np.clip(frames + k, 0, n - 1)
    return [dense[before], dense[after], obj_speed_dense[before], obj_speed_dense[after]]


def _motion_structure(frames: np.ndarray, obj_speed_jitters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the rows lie against the object's motion: contact starts just before the object first moves
    and ends just after it last moves (the clip's approach / contact / release structure)."""
    moving = np.flatnonzero(np.nan_to_num(obj_speed_jitters, nan=0.0) > MOVING_JITTERS)
    if len(moving) == 0:
        return np.zeros(len(frames)), np.zeros(len(frames))
    since = np.clip((frames - moving[0]) / STRUCTURE_SCALE_FRAMES, -2.0, 2.0)
    until = np.clip((moving[-1] - frames) / STRUCTURE_SCALE_FRAMES, -2.0, 2.0)
    return since, until


def _inside_share_boxes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of each box a (M, 4) inside box b (M, 4)."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    return iw * ih / np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-9)


def _scale_co_motion(frames: np.ndarray, extent: np.ndarray, obj_dense: np.ndarray) -> np.ndarray:
    """Where the object's box scale changes, does the hand's change alike (moving together in depth)?
    0 when the object's scale is steady (no evidence), negative when the two disagree."""
    n = len(obj_dense)
    hand_ls = np.full(n, np.nan)
    hand_ls[frames] = _log_size(extent)
    obj_ls = _log_size(np.where(np.isfinite(obj_dense), obj_dense, 0.0))
    obj_ls[~np.all(np.isfinite(obj_dense), axis=1)] = np.nan
    d_obj, d_hand = np.full(n, np.nan), np.full(n, np.nan)
    d_obj[1:], d_hand[1:] = np.diff(obj_ls), np.diff(hand_ls)
    changing = np.abs(d_obj) > 0.03  # ~3 % per frame: beyond box jitter
    score = np.where(changing, -np.abs(d_obj - d_hand), 0.0)
    return np.nan_to_num(_windowed_mean(np.where(np.isfinite(score), score, np.nan)), nan=0.0)[frames]


def keypoint_features(
    keypoints_px: np.ndarray,
    world_m: np.ndarray | None,
    depth_px: np.ndarray | None,
    box: np.ndarray,
    size_px: np.ndarray,
    tip_distance_hand: np.ndarray,
) -> np.ndarray:
    """(M, 7) keypoint-only features (the tail of KEYPOINT_FEATURES).

    keypoints_px (M, 21, 2); world_m (M, 21, 3) MediaPipe metric landmarks or None; depth_px (M, 21)
    MediaPipe's relative z or None; box (M, 4); tip_distance_hand (M, 5) signed (<0 inside)."""
    inside = np.all((keypoints_px >= box[:, None, :2]) & (keypoints_px <= box[:, None, 2:]), axis=2)
    tips_inside = np.mean(tip_distance_hand <= 0.0, axis=1)
    curl = finger_curl(world_m).mean(axis=1) if world_m is not None else np.zeros(len(box))
    aperture = _aperture(world_m) if world_m is not None else np.zeros(len(box))
    if depth_px is not None:
        nearest = np.argmin(tip_distance_hand, axis=1)
        rows = np.arange(len(box))
        tip_depth = (depth_px[rows, FINGERTIPS_IDX[nearest]] - depth_px[:, 0]) / size_px
    else:
        tip_depth = np.zeros(len(box))
    return np.column_stack(
        [
            np.clip(np.maximum(tip_distance_hand.min(axis=1), 0.0), 0.0, 2.0),
            tips_inside,
            inside.mean(axis=1),
            curl,
            aperture,
            np.clip(np.nan_to_num(tip_depth, nan=0.0), -2.0, 2.0),
            lone_digit(tip_distance_hand).astype(np.float64),
        ]
    )


def lone_digit(tip_distance_hand: np.ndarray) -> np.ndarray:
    """(M,) bool: one fingertip within LONE_DIGIT_REACH_HAND of the box, the other four at least
    LONE_DIGIT_CLEAR_HAND from it (the geometry finger_bits reads as the index finger)."""
    tips = np.sort(np.asarray(tip_distance_hand, np.float64).reshape(-1, 5), axis=1)
    return (tips[:, 0] <= LONE_DIGIT_REACH_HAND) & (tips[:, 1] >= LONE_DIGIT_CLEAR_HAND)


def finger_curl(world_m: np.ndarray | None) -> np.ndarray:
    """(M, 5) curl per finger: 1 - (base-to-tip distance) / (length along the joints); 0 straight."""
    if world_m is None:
        return np.zeros((0, 5))
    chain = world_m[:, FINGER_CHAINS]  # (M, 5, 4, 3)
    along = np.linalg.norm(np.diff(chain, axis=2), axis=3).sum(axis=2)
    direct = np.linalg.norm(chain[:, :, 3] - chain[:, :, 0], axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(1.0 - direct / along, nan=0.0)


def _aperture(world_m: np.ndarray) -> np.ndarray:
    palm = np.linalg.norm(world_m[:, 9] - world_m[:, 0], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.clip(np.nan_to_num(np.linalg.norm(world_m[:, 4] - world_m[:, 8], axis=1) / palm, nan=0.0), 0, 3)


# ------------------------------------------------------------------------------------------------------
# fingers and surfaces
# ------------------------------------------------------------------------------------------------------


THUMB, INDEX = 0, 1


def finger_bits(
    tip_distance_hand: np.ndarray, curl: np.ndarray | None, tip_radius_hand: float, curl_max: float = 1.0
) -> np.ndarray:
    """(M,) uint8 finger sets from fingertip geometry against the object box.

    A finger touches when its tip is within the radius of the box and, with 3D landmarks, it is extended
    (curl below ``curl_max``): an extended finger reaching the object beats a curled one whose 2D tip merely
    projects into the box. At least one finger touches in a contact: the nearest extended tip (the nearest tip
    when all are curled). A lone digit reaching the object with the other four folded well clear of it is a
    point or a poke, which is the index finger: MediaPipe names that digit the thumb when the palm is hidden
    (the back of the hand, or a hand cut by the frame edge), and a thumb alone on an object with the four
    fingers folded away is rare."""
    tips = np.asarray(tip_distance_hand, np.float64).reshape(-1, 5)
    extended = np.ones(tips.shape, bool)
    if curl is not None and len(curl) and curl_max < 1.0:
        extended = np.asarray(curl) < curl_max
    touching = (tips <= tip_radius_hand) & extended
    rows = np.arange(len(tips))
    reach = np.where(extended | ~extended.any(axis=1, keepdims=True), tips, np.inf)
    touching[rows, np.argmin(reach, axis=1)] = True  # a contact touches with some finger: the nearest reaching
    others_clear = np.all(tips[:, 1:] >= LONE_DIGIT_CLEAR_HAND, axis=1)
    lone_thumb = touching[:, THUMB] & (touching.sum(axis=1) == 1) & others_clear
    touching[lone_thumb, THUMB], touching[lone_thumb, INDEX] = False, True
    return (touching * (1 << np.arange(5))).sum(axis=1).astype(np.uint8)


def segment_fingers(bits: np.ndarray) -> int:
    """One finger set for a contact segment: the commonest non-empty per-frame set (per-frame sets flicker with
    the keypoints' noise; the fingers on an object seldom change within one contact). Ties: the larger set."""
    sets, n = np.unique(np.asarray(bits, np.int64)[np.asarray(bits) > 0], return_counts=True)
    if len(sets) == 0:
        return 0
    size = np.array([bin(int(b)).count("1") for b in sets])
    return int(sets[np.lexsort((size, n))[-1]])
