"""Hands and boxes for the contact stage: box checks, object tracks, hand streams (keypoint tracks and
Something-Else hand boxes, matched to each other) and the 2D geometry of hands against boxes.

Pure functions on arrays; enrich/contacts.py turns these into contact rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from enrich.constants import HAND_SLOT, HAND_UNKNOWN, PALM_IDX, SIDES
from enrich.records import ClipBoxes, ClipHands

MATCH_NONE, MATCH_UNMATCHED = -1, 2  # hand_box_match codes besides 0 left / 1 right

# ------------------------------------------------------------------------------------------------------
# box checks
# ------------------------------------------------------------------------------------------------------


def sanitize_boxes(
    boxes: ClipBoxes, n_frames: int, width: int | None, height: int | None, counts: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame, slot, xyxy) of the usable boxes (``ClipBoxes.cleaned``), counting the fixes into ``counts``."""
    clean, fixes = boxes.cleaned(n_frames, width, height)
    for key, n in fixes.items():
        counts[key] += n
    return clean.frame_index.astype(np.int64), clean.slot.astype(np.int64), clean.box_xyxy_px.astype(np.float64)


def object_tracks(
    frame: np.ndarray, slot: np.ndarray, xyxy: np.ndarray, n_frames: int, counts: dict[str, int]
) -> dict[int, np.ndarray]:
    """slot -> (n_frames, 4) boxes, NaN where the slot has no box in that frame."""
    out: dict[int, np.ndarray] = {}
    for s in np.unique(slot[slot != HAND_SLOT]):
        rows = np.flatnonzero(slot == s)
        track = np.full((n_frames, 4), np.nan)
        first = np.unique(frame[rows], return_index=True)[1]  # first box of each frame
        counts["duplicate_object_boxes"] += len(rows) - len(first)
        track[frame[rows[first]]] = xyxy[rows[first]]
        out[int(s)] = track
        counts["object_boxes"] += len(first)
    return out


# ------------------------------------------------------------------------------------------------------
# hands: keypoint tracks and hand boxes as "hand streams"
# ------------------------------------------------------------------------------------------------------


@dataclass
class HandStream:
    """One hand over the frames where it is seen: its extent, size and centre per frame."""

    hand: int
    frame_index: np.ndarray  # (M,) int
    extent_xyxy: np.ndarray  # (M, 4) hand box, or the keypoints' bounding box
    keypoints: np.ndarray | None  # (M, 21, 2) px, or None for box-only
    box_centre: np.ndarray | None = None  # (M, 2) px: centre of the matched Something-Else hand box, NaN if none
    world_m: np.ndarray | None = None  # (M, 21, 3) MediaPipe metric landmarks (grasp shape), keypoint streams
    depth_px: np.ndarray | None = None  # (M, 21) MediaPipe relative depth (x's scale), keypoint streams
    side_continued: bool = False  # box-only stream whose side comes from the track it continues

    @property
    def size_px(self) -> np.ndarray:
        wh = np.maximum(self.extent_xyxy[:, 2:] - self.extent_xyxy[:, :2], 1.0)
        return np.sqrt(wh[:, 0] * wh[:, 1])  # sqrt(area): same measure for boxes and keypoints

    @property
    def centre_px(self) -> np.ndarray:
        if self.keypoints is not None:
            return self.keypoints[:, PALM_IDX].mean(axis=1)  # the palm moves rigidly; fingers do not
        return 0.5 * (self.extent_xyxy[:, :2] + self.extent_xyxy[:, 2:])


def keypoint_streams(
    tracks: ClipHands | None, n_frames: int, min_presence: float, counts: dict[str, int]
) -> list[HandStream]:
    streams = []
    for code, side in enumerate(SIDES):
        track = tracks.hands.get(side) if tracks is not None else None
        if track is None or len(track) == 0:
            continue
        kp = np.asarray(track.keypoints2d, np.float64)[:, :, :2]
        ok = (np.asarray(track.presence) >= min_presence) & np.all(np.isfinite(kp), axis=(1, 2))
        counts["low_presence_hand_frames"] += int(np.count_nonzero(~ok))
        ok &= (track.frame_index >= 0) & (track.frame_index < n_frames)
        kp = kp[ok]
        extent = np.concatenate([kp.min(axis=1), kp.max(axis=1)], axis=1)
        world = np.asarray(track.world_landmarks, np.float64)[ok]
        depth = np.asarray(track.keypoints2d, np.float64)[ok, :, 2]
        frames = np.asarray(track.frame_index)[ok].astype(np.int64)
        streams.append(HandStream(code, frames, extent, kp, world_m=world, depth_px=depth))
        counts["keypoint_hand_frames"] += int(np.count_nonzero(ok))
    return streams


def inside_share(keypoints: np.ndarray, box: np.ndarray) -> float:
    inside = np.all((keypoints >= box[:2]) & (keypoints <= box[2:]), axis=1)
    return float(np.mean(inside))


def match_hand_boxes(
    hand_frames: np.ndarray, hand_xyxy: np.ndarray, streams: list[HandStream], n_frames: int, min_inside: float
) -> tuple[np.ndarray, np.ndarray]:
    """Side (0/1) each hand box went to, -1 when none; and the per-frame match summary.

    Per frame: Hungarian assignment maximising the share of a hand's keypoints inside a box; a pair counts
    only above ``min_inside`` (ContactConfig.match_min_inside). The match tells the hands apart: both share
    category "hand".
    """
    box_side = np.full(len(hand_frames), -1, np.int64)
    where = {s.hand: {int(f): i for i, f in enumerate(s.frame_index)} for s in streams}
    by_hand = {s.hand: s for s in streams}
    for t in np.unique(hand_frames):
        rows = np.flatnonzero(hand_frames == t)
        hands = [h for h in by_hand if int(t) in where[h]]
        if not hands:
            continue
        share = np.array(
            [[inside_share(by_hand[h].keypoints[where[h][int(t)]], hand_xyxy[r]) for h in hands] for r in rows]
        )
        for i, j in zip(*linear_sum_assignment(-share), strict=True):
            if share[i, j] >= min_inside:
                box_side[rows[i]] = hands[j]
    summary = np.full(n_frames, MATCH_NONE, np.int8)
    for r in np.argsort(hand_frames, kind="stable")[::-1]:  # first box of each frame wins
        summary[hand_frames[r]] = box_side[r] if box_side[r] >= 0 else MATCH_UNMATCHED
    return box_side, summary


def attach_box_centres(
    streams: list[HandStream], hand_frames: np.ndarray, hand_xyxy: np.ndarray, box_side: np.ndarray
) -> None:
    """Give each keypoint stream the centre of the hand box it matched, frame by frame: co-motion is then
    measured between two boxes drawn by the same annotators, not between a box and keypoints whose frame-to-frame
    drift (a new crop every frame) is larger than their stated noise."""
    for stream in streams:
        where = {int(f): i for i, f in enumerate(stream.frame_index)}
        centre = np.full((len(stream.frame_index), 2), np.nan)
        for r in np.flatnonzero(box_side == stream.hand):
            centre[where[int(hand_frames[r])]] = 0.5 * (hand_xyxy[r, :2] + hand_xyxy[r, 2:])
        stream.box_centre = centre


def continued_sides(hand_frames: np.ndarray, box_side: np.ndarray) -> np.ndarray:
    """Side for unmatched hand boxes that continue a matched hand: -1 where none.

    In a run of consecutive frames with exactly one hand box each, the boxes are one hand; when the boxes
    matched in that run all went to the same side, the unmatched ones (the track was lost: a blurred or
    cut-off hand) are that hand too. Not a guess from position: only one hand is boxed throughout."""
    out = np.full(len(hand_frames), -1, np.int64)
    if len(hand_frames) == 0:
        return out
    n = int(hand_frames.max()) + 1
    single = np.bincount(hand_frames, minlength=n) == 1
    for s, e in runs(single):
        rows = np.flatnonzero((hand_frames >= s) & (hand_frames <= e))
        sides = set(box_side[rows][box_side[rows] >= 0].tolist())
        if len(sides) == 1:
            side = sides.pop()
            out[rows[box_side[rows] < 0]] = side
    return out


def box_streams(frames: np.ndarray, xyxy: np.ndarray) -> list[HandStream]:
    """Unmatched hand boxes as unknown-side streams; with k boxes in a frame, the i-th from the left is stream i."""
    if len(frames) == 0:
        return []
    order = np.lexsort((0.5 * (xyxy[:, 0] + xyxy[:, 2]), frames))
    frames, xyxy = frames[order], xyxy[order]
    rank = np.zeros(len(frames), np.int64)
    for i in range(1, len(frames)):
        rank[i] = rank[i - 1] + 1 if frames[i] == frames[i - 1] else 0
    return [HandStream(HAND_UNKNOWN, frames[rank == k], xyxy[rank == k], None) for k in range(rank.max() + 1)]


# ------------------------------------------------------------------------------------------------------
# cues
# ------------------------------------------------------------------------------------------------------


def box_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Signed gap between boxes (M, 4): distance apart, or minus the penetration depth when they overlap."""
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    overlap = (iw > 0) & (ih > 0)
    return np.where(overlap, -np.minimum(iw, ih), np.hypot(np.maximum(-iw, 0), np.maximum(-ih, 0)))


def point_box_distance(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(M, K) signed distance of points (M, K, 2) to boxes (M, 4): >0 outside, <0 depth inside."""
    lo, hi = boxes[:, None, :2], boxes[:, None, 2:]
    outside = np.hypot(*np.moveaxis(np.maximum(np.maximum(lo - points, points - hi), 0), -1, 0))
    depth = np.min(np.concatenate([points - lo, hi - points], axis=-1), axis=-1)
    return np.where(depth > 0, -depth, outside)


def overlap_share(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    area = np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-9)
    return iw * ih / area


def step_velocity(frames: np.ndarray, xy: np.ndarray, n_frames: int) -> np.ndarray:
    """(n_frames, 2) velocity from frame t-1 to t in px/frame; NaN unless both frames are present."""
    dense = np.full((n_frames, 2), np.nan)
    dense[frames] = xy
    v = np.full((n_frames, 2), np.nan)
    v[1:] = dense[1:] - dense[:-1]
    return v


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end inclusive) of the True runs."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return [(int(s), int(e)) for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True)]


def fill_gaps(values: np.ndarray) -> np.ndarray:
    """(T,) copy whose NaNs take the last value before them, or the first value after them at the start."""
    seen = ~np.isnan(values)
    if not seen.any():
        return values.copy()
    last = np.maximum.accumulate(np.where(seen, np.arange(len(values)), 0))
    out = values[last]
    first = int(np.argmax(seen))
    out[:first] = values[first]
    return out
