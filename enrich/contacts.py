"""Hand–object contacts per clip: which hand touches which Something-Else object slot, with which fingers, when.

Default (``ContactConfig.method == "hmm"``): the rows below feed the fitted model of enrich/contact_model.py
(features, logistic emissions, a before/contact/after HMM, slot roles, finger sets). The unfitted model below
stays as ``method="hysteresis"`` (the baseline in benchmarks/bench_contacts.py); its cues are computed either way.

Unfitted model (no weights fitted to data; every constant is a physical or annotation scale, see ``ContactConfig``):

* Each (frame, hand, object slot) gets a contact log-odds that is a sum of log-likelihood ratios (naive Bayes,
  i.e. a logistic model with unit weights):
  - **proximity**: contact needs the hand to reach the object, so the 2D hand extent must meet the object box.
    Overlap is necessary but not sufficient (a hand in front of an object overlaps it too), so it adds 0;
    a gap of ``g`` hand sizes adds ``-g / annotation_slack`` (boxes drawn around touching things may miss each
    other by about the annotation slack, not by more).
    With keypoints the hand extent is the 21 keypoints dilated by a finger radius (a cheap hand-mesh proxy);
    without them, the Something-Else hand box.
  - **co-motion**: a held or pushed object moves with the hand, a free one stays put. Per frame step, with hand
    and object box velocities ``v_h``, ``v_o`` (hand sizes per frame) and jitter ``sigma`` (box jitter, plus the
    keypoints' measured noise when the hand velocity comes from keypoints), the Gaussian
    log-likelihood ratio of "object moves with the hand" against "object at rest" is
    ``(|v_o|^2 - |v_o - v_h|^2) / (2 sigma^2)``. It is averaged over a short window (frame steps are not
    independent, so summing would over-count) and capped so that one cue cannot overrule the other.
    When both are still it is ~0: no evidence either way.
  - **depth**: not used. Something-Else objects have no depth, and the lift's absolute hand depth carries the
    hand-size prior's uncertainty (docs/format.md), so a depth test would compare an uncertain number with
    nothing.
* **Hysteresis** (Canny-style, non-causal): a run of frames with p > ``p_off`` is contact when some frame in it
  has p > ``p_on``. So the approach before an object starts moving joins the contact once the motion proves it,
  and still holding (no evidence) does not end it. Gaps of up to ``max_gap_frames`` are bridged, and segments
  shorter than ``min_duration_frames`` are dropped.

Rows: exactly one per (frame, hand, slot) where the hand is seen (keypoints or hand box) **and** the slot has a box
in that frame (where a side's keypoints are seen, a box continuing that side is not used; several unknown-side
boxes in one frame keep the likeliest row). A missing object box gives no row (never a contact invented from a
missing box); such frames are counted. One exception, a whole clip: when the template's direct object ("Putting
[something] onto [something]") has no box in any frame while other objects are boxed, Something-Else left it
unboxed because the hand holds and hides it; its slot then gets rows with the hand's own extent for the object's
box (``EVIDENCE_HELD``), decoded like any manipulated slot (the model is not fitted on such rows).
Hands: 0 left, 1 right (2D tracks, matched to the Something-Else hand boxes), 2 unknown: a hand box no detected
hand was matched to (box-only mode). Box-only hands keep side "unknown": the side of a hand box cannot be told
from a box, and guessing it from its position would be wrong whenever arms cross.

Frames are 0-based decoded-frame indices; Something-Else frame NNNN is NNNN - 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from enrich import contact_hands as ch
from enrich import contact_model as cm
from enrich.constants import (
    EVIDENCE_BOX_ONLY,
    EVIDENCE_CO_MOTION,
    EVIDENCE_HELD,
    EVIDENCE_KEYPOINTS,
    EVIDENCE_MANIPULATED,
    EVIDENCE_SIDE_CONTINUED,
    EVIDENCE_SURFACE,
    FINGERTIPS_IDX,
    HAND_LEFT,
    HAND_RIGHT,
    HAND_SLOT,
    SSV2_FPS,
)
from enrich.errors import UsageError
from enrich.records import (
    BOX_FIXES,
    CONTACT_FRAME_DTYPES,
    ClipBoxes,
    ClipHands,
    ContactFrames,
    ContactResult,
    ContactSegments,
)

COUNT_KEYS: tuple[str, ...] = (
    "hand_boxes",  # Something-Else hand boxes used (after the checks below)
    "object_boxes",  # object boxes used
    *BOX_FIXES,  # what ClipBoxes.cleaned fixed or dropped (once per clip, by whichever stage saw them first)
    "duplicate_object_boxes",  # a slot boxed twice in one frame: the first kept
    "frames_multiple_hand_boxes",  # frames with more than one hand box
    "hand_boxes_matched",  # hand boxes matched to a detected hand (left/right)
    "hand_boxes_unmatched",  # hand boxes left to the box-only path
    "keypoint_hand_frames",  # detected hand-frames used (presence >= min_presence)
    "low_presence_hand_frames",  # detected hand-frames skipped for low presence
    "hand_frames_beyond_annotation",  # hand-frames at or after the annotated range: no object boxes, no rows
    "continued_boxes_shadowed",  # unmatched boxes continuing a side whose keypoints are seen there: not used
    "merged_rows",  # rows of one (frame, hand, slot) beyond the first (unknown-side boxes): the likeliest kept
    "missing_object_frames",  # (hand-frame, slot) pairs where the clip has the slot but not in that frame
    "rows",  # contact rows
    "contact_rows",  # of which in contact
    "segments",  # contact segments
)


@dataclass(frozen=True)
class ContactConfig:
    """Every knob that changes contact results; all scales are physical/annotation ones, none fitted."""

    prior_logit: float = 0.0  # log-odds of contact for a hand meeting an object box before motion evidence
    annotation_slack_hand: float = 0.05  # box-gap scale (hand sizes): gap g adds -g / slack to the log-odds
    finger_radius_hand: float = 0.08  # keypoint dilation (hand sizes, ~9 mm on an 11 cm hand size)
    # keypoints only: log-odds added when all five fingertips are inside the object box (scaled by the share
    # inside). A hand wrapped around an object puts its fingertips in the object's box; a hand merely passing
    # in front of it rarely puts all five there. Without it a still, held object has no positive evidence.
    fingertips_inside_logit: float = 2.0
    motion_noise_hand: float = 0.03  # per-frame jitter of a box centre (hand sizes): sigma of co-motion
    keypoint_noise_px: float = 2.5  # MediaPipe keypoint noise per axis on SSv2 (LiftConfig.sigma_2d_px, measured)
    co_motion_window: int = 2  # frames either side averaged in the co-motion cue
    co_motion_cap_logit: float = 4.0  # |co-motion log-LR| cap, so one cue cannot overrule the other
    p_on: float = 0.5  # hysteresis: a segment needs a frame where evidence favours contact
    p_off: float = 0.05  # ... and lasts while contact is not clearly refuted
    max_gap_frames: int = 2  # gaps this short are bridged (a flicker does not split a segment)
    min_duration_frames: int = 3  # shorter segments are dropped (0.25 s at 12 fps)
    match_min_inside: float = 0.5  # share of a hand's keypoints inside a hand box to match it
    min_presence: float = 0.5  # detected hand-frames below this presence are not used
    fps: float = SSV2_FPS  # for durations in seconds
    # "hmm": the fitted model of enrich/contact_model.py (features, logistic emissions, Viterbi with duration
    # priors); "hysteresis": the unfitted naive-Bayes log-odds above with hysteresis (kept as the baseline)
    method: str = "hmm"
    model_path: str = ""  # contact model JSON; "" = the one shipped in enrich/data

    def to_dict(self) -> dict:
        return asdict(self)


def _co_motion(
    v_hand: np.ndarray, v_obj: np.ndarray, size_px: np.ndarray, config: ContactConfig, keypoints: np.ndarray
) -> np.ndarray:
    """(n_frames,) windowed co-motion log-LR; NaN where no frame step in the window has both velocities.

    keypoints (n_frames,) bool: the hand's step velocity came from palm keypoints (more noise) at that step."""
    vh, vo = v_hand / size_px[:, None], v_obj / size_px[:, None]
    var = np.full(len(size_px), config.motion_noise_hand**2)
    # palm centre = mean of 5 keypoints, differenced: jitter var 2 * noise^2 / 5, in hand sizes
    var = var + np.where(keypoints, 2.0 * config.keypoint_noise_px**2 / 5.0 / size_px**2, 0.0)
    step = (np.sum(vo**2, axis=1) - np.sum((vo - vh) ** 2, axis=1)) / (2 * var)
    k = config.co_motion_window
    # steps t-k+1 .. t+k, i.e. the motion between frames t-k and t+k
    padded = np.concatenate([np.full(k - 1 if k > 0 else 0, np.nan), step, np.full(k, np.nan)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * k if k > 0 else 1)[: len(step)]
    known = np.isfinite(windows)
    total = np.where(known, windows, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / known.sum(axis=1)
    cap = config.co_motion_cap_logit
    return np.where(known.any(axis=1), np.clip(mean, -cap, cap), np.nan)


@dataclass
class _Rows:
    """Per-row cue values of one (stream, slot) pair, before smoothing."""

    frames: np.ndarray
    logit: np.ndarray
    fingers: np.ndarray
    evidence: np.ndarray
    tip_distance: np.ndarray
    overlap: np.ndarray
    gap: np.ndarray
    co_motion: np.ndarray
    features: np.ndarray  # (M, F): contact_model.BOX_FEATURES, or KEYPOINT_FEATURES for keypoint rows
    tips: np.ndarray | None = None  # (M, 5) signed fingertip-to-box distances, hand sizes; keypoint rows
    curl: np.ndarray | None = None  # (M, 5) finger curl from the 3D landmarks; keypoint rows
    scores: np.ndarray | None = None  # (M, 3) phase log-likelihoods of the fitted model (method "hmm")


def _stream_slot_rows(
    stream: ch.HandStream,
    obj: np.ndarray,
    n_frames: int,
    config: ContactConfig,
    counts: dict[str, int],
    role: int = cm.ROLE_MANIPULATED,
    model: cm.ContactModel | None = None,
) -> _Rows | None:
    """Cue values for the stream's frames where the object has a box."""
    has_obj = np.all(np.isfinite(obj[stream.frame_index]), axis=1)
    counts["missing_object_frames"] += int(np.count_nonzero(~has_obj))
    if not has_obj.any():
        return None
    size = stream.size_px
    v_hand = ch.step_velocity(stream.frame_index, stream.centre_px, n_frames)
    from_keypoints = np.full(n_frames, stream.keypoints is not None)
    if stream.box_centre is not None:  # box-to-box motion where the hand box was matched in both frames
        v_box = ch.step_velocity(stream.frame_index, stream.box_centre, n_frames)
        use_box = np.all(np.isfinite(v_box), axis=1)
        v_hand[use_box], from_keypoints[use_box] = v_box[use_box], False
    v_obj = np.full((n_frames, 2), np.nan)
    v_obj[1:] = 0.5 * ((obj[1:, :2] + obj[1:, 2:]) - (obj[:-1, :2] + obj[:-1, 2:]))
    size_dense = np.full(n_frames, np.nan)
    size_dense[stream.frame_index] = size
    size_dense = ch.fill_gaps(size_dense)  # scale steps by the nearest hand size
    co = _co_motion(v_hand, v_obj, size_dense, config, from_keypoints)[stream.frame_index[has_obj]]
    frames, box, size = stream.frame_index[has_obj], obj[stream.frame_index[has_obj]], size[has_obj]
    extent = stream.extent_xyxy[has_obj]
    if stream.keypoints is not None:
        dist = ch.point_box_distance(stream.keypoints[has_obj], box) / size[:, None]
        gap = dist.min(axis=1) - config.finger_radius_hand  # keypoints dilated by a finger radius
        tips = dist[:, FINGERTIPS_IDX]
        tip_distance = np.maximum(tips.min(axis=1), 0.0)
        touching = tips <= config.finger_radius_hand + config.annotation_slack_hand
        fingers = (touching * (1 << np.arange(5))).sum(axis=1).astype(np.uint8)
        evidence = np.full(len(frames), EVIDENCE_KEYPOINTS, np.uint8)
        enclosed = config.fingertips_inside_logit * np.mean(tips <= 0.0, axis=1)
    else:
        gap = ch.box_gap(extent, box) / size
        tip_distance = np.full(len(frames), np.nan)
        fingers = np.zeros(len(frames), np.uint8)
        evidence = np.full(len(frames), EVIDENCE_BOX_ONLY, np.uint8)
        enclosed = np.zeros(len(frames))
    evidence |= np.where(np.isfinite(co), EVIDENCE_CO_MOTION, 0).astype(np.uint8)
    evidence |= np.uint8(EVIDENCE_SURFACE if role == cm.ROLE_SURFACE else 0)
    evidence |= np.uint8(EVIDENCE_MANIPULATED if role == cm.ROLE_MANIPULATED else 0)
    evidence |= np.uint8(EVIDENCE_SIDE_CONTINUED if stream.side_continued else 0)
    co = np.nan_to_num(co, nan=0.0)
    overlap = ch.overlap_share(extent, box)
    features = cm.box_features(
        frames, extent, box, obj, v_hand, size_dense, gap, overlap, co / config.co_motion_cap_logit
    )
    if stream.keypoints is not None:
        sel = has_obj
        world = stream.world_m[sel] if stream.world_m is not None else None
        depth = stream.depth_px[sel] if stream.depth_px is not None else None
        kp_features = cm.keypoint_features(stream.keypoints[sel], world, depth, box, size, tips)
        features = np.concatenate([features, kp_features], axis=1)
    tips_out = tips if stream.keypoints is not None else None
    curl = cm.finger_curl(world) if stream.keypoints is not None and world is not None else None
    scores = None
    if model is None:
        logit = config.prior_logit - np.maximum(gap, 0.0) / config.annotation_slack_hand + co + enclosed
    else:
        logistic = model.keypoints if stream.keypoints is not None else model.box
        surface = role == cm.ROLE_SURFACE
        scores, logit = logistic.scores(features, surface), logistic.row_logit(features, surface)
        if tips_out is not None:
            fingers = cm.finger_bits(tips_out, curl, model.tip_radius_hand, model.curl_max)
    return _Rows(frames, logit, fingers, evidence, tip_distance, overlap, gap, co, features, tips_out, curl, scores)


# ------------------------------------------------------------------------------------------------------
# temporal smoothing
# ------------------------------------------------------------------------------------------------------


def hysteresis_segments(probability: np.ndarray, config: ContactConfig) -> list[tuple[int, int]]:
    """(start, end inclusive) contact intervals of a dense per-frame probability (NaN = no row).

    Runs above ``p_off`` that hold a frame above ``p_on`` are contact; gaps <= ``max_gap_frames`` are
    bridged; segments shorter than ``min_duration_frames`` are dropped.
    """
    p = np.nan_to_num(np.asarray(probability, np.float64), nan=0.0)
    runs = [(s, e) for s, e in ch.runs(p > config.p_off) if np.any(p[s : e + 1] > config.p_on)]
    merged: list[tuple[int, int]] = []
    for s, e in runs:
        if merged and s - merged[-1][1] - 1 <= config.max_gap_frames:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return [(int(s), int(e)) for s, e in merged if e - s + 1 >= config.min_duration_frames]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# ------------------------------------------------------------------------------------------------------
# public entry points
# ------------------------------------------------------------------------------------------------------


def estimate_contacts(
    tracks: ClipHands | None,
    boxes: ClipBoxes,
    n_frames: int,
    width: int | None,
    height: int | None,
    config: ContactConfig = ContactConfig(),  # noqa: B008 - frozen dataclass, safe as a default
    model: cm.ContactModel | None = None,
    template: str = "",
) -> ContactResult:
    """Contacts of one clip from its 2D hand tracks (may be None) and Something-Else boxes.

    ``model`` overrides the one named by ``config`` (method "hmm"; used to score held-out clips).
    ``template``: the clip's SSv2 template, which tells the manipulated slot from places and surfaces.

    Hand boxes matched to a detected hand use its keypoints; the others fall back to box-only rows
    (hand 2, ``EVIDENCE_BOX_ONLY``, or the side of the track they continue). Never raises on bad boxes:
    they are fixed or dropped and counted.
    """
    model = model if model is not None and config.method == "hmm" else _model(config)
    rows, match, counts = _clip_rows(tracks, boxes, n_frames, width, height, config, model, template)
    return _assemble(rows, match, max(int(n_frames), 0), config, counts, model)


def feature_rows(
    tracks: ClipHands | None,
    boxes: ClipBoxes,
    n_frames: int,
    width: int | None,
    height: int | None,
    config: ContactConfig = ContactConfig(),  # noqa: B008
    template: str = "",
) -> list[dict[str, np.ndarray | int]]:
    """The contact model's inputs, one dict per (hand stream, slot): hand, slot, frames, features, evidence.
    Needs no fitted model (benchmarks/train_contacts.py fits one from these)."""
    rows, _, _ = _clip_rows(tracks, boxes, n_frames, width, height, config, None, template)
    return [
        {
            "hand": h,
            "slot": k,
            "frames": r.frames,
            "features": r.features,
            "evidence": r.evidence,
            "tips": r.tips,
            "curl": r.curl,
        }
        for h, k, r in rows
    ]


def _clip_rows(
    tracks: ClipHands | None,
    boxes: ClipBoxes,
    n_frames: int,
    width: int | None,
    height: int | None,
    config: ContactConfig,
    model: cm.ContactModel | None,
    template: str = "",
) -> tuple[list[tuple[int, int, _Rows]], np.ndarray, dict[str, int]]:
    counts = dict.fromkeys(COUNT_KEYS, 0)
    n_frames = max(int(n_frames), 0)
    frame, slot, xyxy = ch.sanitize_boxes(boxes, n_frames, width, height, counts)
    objects = ch.object_tracks(frame, slot, xyxy, n_frames, counts)
    is_hand = slot == HAND_SLOT
    hand_frames, hand_xyxy = frame[is_hand], xyxy[is_hand]
    counts["hand_boxes"] = len(hand_frames)
    counts["frames_multiple_hand_boxes"] = int(np.count_nonzero(np.bincount(hand_frames, minlength=1) > 1))
    streams = ch.keypoint_streams(tracks, n_frames, config.min_presence, counts)
    box_side, match = ch.match_hand_boxes(hand_frames, hand_xyxy, streams, n_frames, config.match_min_inside)
    ch.attach_box_centres(streams, hand_frames, hand_xyxy, box_side)
    counts["hand_boxes_matched"] = int(np.count_nonzero(box_side >= 0))
    counts["hand_boxes_unmatched"] = int(np.count_nonzero(box_side < 0))
    continued = ch.continued_sides(hand_frames, box_side)
    for side in (HAND_LEFT, HAND_RIGHT):
        mine = (box_side < 0) & (continued == side)
        # where that side's keypoints are seen, they speak for the hand: one row per (frame, hand, slot)
        seen = np.concatenate([s.frame_index for s in streams if s.hand == side] + [np.zeros(0, np.int64)])
        shadowed = mine & np.isin(hand_frames, seen)
        counts["continued_boxes_shadowed"] += int(np.count_nonzero(shadowed))
        mine &= ~shadowed
        if mine.any():
            streams.append(ch.HandStream(side, hand_frames[mine], hand_xyxy[mine], None, side_continued=True))
    rest = (box_side < 0) & (continued < 0)
    streams += ch.box_streams(hand_frames[rest], hand_xyxy[rest])
    annotated = boxes.n_annotated_frames or (int(frame.max()) + 1 if len(frame) else 0)
    for s in streams:
        counts["hand_frames_beyond_annotation"] += int(np.count_nonzero(s.frame_index >= annotated))
    surface = model.surface_share if model is not None else cm.ContactModel.surface_share
    roles = cm.slot_roles(slot[slot != HAND_SLOT], xyxy[slot != HAND_SLOT], width, height, surface, template)
    rows = [
        (s.hand, k, r)
        for s in streams
        for k, obj in objects.items()
        if (r := _stream_slot_rows(s, obj, n_frames, config, counts, roles[k], model)) is not None
    ]
    held = cm.unboxed_manipulated(template, sorted(objects))
    if held is not None:  # the thing moved was never boxed: the hand's own extent stands for it (module notes)
        for s in streams:
            own = np.full((n_frames, 4), np.nan)
            own[s.frame_index] = s.extent_xyxy
            own[annotated:] = np.nan  # no object row past the annotated range, as for boxes
            r = _stream_slot_rows(s, own, n_frames, config, counts, cm.ROLE_MANIPULATED, model)
            if r is not None:
                r.evidence |= np.uint8(EVIDENCE_HELD)
                r.fingers = np.zeros_like(r.fingers)  # which fingers hold a hidden thing: unknown, not all five
                rows.append((s.hand, held, r))
    return rows, match, counts


def _model(config: ContactConfig) -> cm.ContactModel | None:
    if config.method == "hysteresis":
        return None
    if config.method != "hmm":
        raise UsageError(f"ContactConfig.method must be 'hmm' or 'hysteresis', not {config.method!r}")
    return cm.load_model(config.model_path or None)


def box_only_contacts(
    boxes: ClipBoxes,
    width: int | None = None,
    height: int | None = None,
    config: ContactConfig = ContactConfig(),  # noqa: B008
    n_frames: int | None = None,
    model: cm.ContactModel | None = None,
    template: str = "",
) -> ContactResult:
    """Contacts from the Something-Else boxes alone (no pixels); frame size may be unknown (no clipping).

    ``n_frames`` defaults to the annotated range (``boxes.n_annotated_frames``, else the last boxed frame + 1).
    """
    if n_frames is None:
        last = int(np.max(boxes.frame_index)) + 1 if len(boxes.frame_index) else 0
        n_frames = max(boxes.n_annotated_frames, last)
    return estimate_contacts(None, boxes, n_frames, width, height, config, model, template)


def _assemble(
    rows: list[tuple[int, int, _Rows]],
    match: np.ndarray,
    n_frames: int,
    config: ContactConfig,
    counts: dict,
    model: cm.ContactModel | None = None,
) -> ContactResult:
    """Smooth per (hand, slot), mark rows in contact, OR fingers into segments."""
    if not rows:
        empty = ContactSegments(*(np.zeros(0, dt) for dt in (np.int8, np.int16, np.int32, np.int32, np.uint8)))
        return ContactResult(ContactFrames.empty(), empty, match, counts)
    keys = sorted({(h, k) for h, k, _ in rows})
    in_contact = [np.zeros(len(r.frames), bool) for _, _, r in rows]
    seg_rows: list[tuple[int, int, int, int, int]] = []
    for h, k in keys:
        dense = np.full(n_frames, -np.inf)
        mine = [i for i, (hh, kk, _) in enumerate(rows) if (hh, kk) == (h, k)]
        for i in mine:  # several unknown-side boxes in one frame: the most likely one speaks
            dense[rows[i][2].frames] = np.maximum(dense[rows[i][2].frames], rows[i][2].logit)
        covered = np.zeros(n_frames, bool)
        if model is None:
            segments = hysteresis_segments(_sigmoid(dense), config)
        else:
            with_keypoints = any(rows[i][2].evidence[0] & EVIDENCE_KEYPOINTS for i in mine)
            hmm = model.hmm_keypoints if with_keypoints else model.hmm_box
            if rows[mine[0]][2].evidence[0] & EVIDENCE_SURFACE:  # the bias was chosen for objects: on a
                hmm = replace(hmm, emission_bias=min(hmm.emission_bias, 0.0))  # surface only motion speaks
            segments = cm.viterbi_segments(_dense_scores([rows[i][2] for i in mine], dense, n_frames), hmm)
        for s, e in segments:
            covered[s : e + 1] = True
        for i in mine:
            in_contact[i] = covered[rows[i][2].frames]
        for s, e in segments:
            inside = [(rows[i][2], (rows[i][2].frames >= s) & (rows[i][2].frames <= e)) for i in mine]
            if model is not None and model.segment_fingers:  # box-only rows of the segment carry its set too
                bits = cm.segment_fingers(np.concatenate([r.fingers[m] for r, m in inside]))
                for r, m in inside:
                    r.fingers = np.where(m, np.uint8(bits), r.fingers).astype(np.uint8)
            else:
                bits = int(np.bitwise_or.reduce(np.concatenate([r.fingers[m] for r, m in inside]), initial=0))
            seg_rows.append((h, k, s, e, bits))
    frames = _frames_table(rows, in_contact, counts)
    seg = np.array(seg_rows, np.int64).reshape(-1, 5)
    segments_out = ContactSegments(
        seg[:, 0].astype(np.int8), seg[:, 1].astype(np.int16), seg[:, 2].astype(np.int32),
        seg[:, 3].astype(np.int32), seg[:, 4].astype(np.uint8),
    )  # fmt: skip
    counts["rows"] = len(frames)
    counts["contact_rows"] = int(np.count_nonzero(frames.in_contact))
    counts["segments"] = len(segments_out)
    return ContactResult(frames, segments_out, match, counts)


def _dense_scores(rows: list[_Rows], dense_logit: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames, 3) phase scores; where several rows share a frame, the one most in favour of contact."""
    out = np.full((n_frames, 3), np.nan)
    for r in rows:
        best = r.logit >= dense_logit[r.frames]
        out[r.frames[best]] = r.scores[best]
    return out


def _frames_table(
    rows: list[tuple[int, int, _Rows]], in_contact: list[np.ndarray], counts: dict[str, int]
) -> ContactFrames:
    cols: dict[str, list[np.ndarray]] = {k: [] for k in CONTACT_FRAME_DTYPES}
    for (h, k, r), contact in zip(rows, in_contact, strict=True):
        n = len(r.frames)
        cols["frame_index"].append(r.frames)
        cols["hand"].append(np.full(n, h))
        cols["object_slot"].append(np.full(n, k))
        cols["probability"].append(_sigmoid(r.logit))
        cols["in_contact"].append(contact)
        cols["fingers"].append(np.where(contact, r.fingers, 0))
        cols["evidence"].append(r.evidence)
        cols["min_tip_distance"].append(r.tip_distance)
        cols["box_overlap"].append(r.overlap)
        cols["gap_hand"].append(r.gap)
        cols["co_motion_logit"].append(r.co_motion)
    table = {k: np.concatenate(v).astype(CONTACT_FRAME_DTYPES[k]) for k, v in cols.items()}
    logit = np.concatenate([r.logit for _, _, r in rows])
    # one row per (frame, hand, slot): several unknown-side boxes in a frame keep the likeliest (as in decoding)
    order = np.lexsort((-logit, table["object_slot"], table["hand"], table["frame_index"]))
    key = np.column_stack([table[k][order] for k in ("frame_index", "hand", "object_slot")])
    first = np.concatenate([[True], np.any(key[1:] != key[:-1], axis=1)]) if len(key) else np.zeros(0, bool)
    counts["merged_rows"] = int(np.count_nonzero(~first))
    return ContactFrames(**{k: v[order[first]] for k, v in table.items()})
