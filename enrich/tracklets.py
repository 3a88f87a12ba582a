"""Link per-frame hand detections into at most one left and one right track per clip.

Detections are first chained frame to frame by position (Hungarian assignment on keypoint distance), then each
chain takes a side by its presence-weighted handedness vote, so a few frames of flipped handedness do not
split a hand. Two chains that overlap in time never share a side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from enrich.constants import SIDES
from enrich.records import HandTrack

MAX_GAP_FRAMES = 6  # a chain survives this many frames without a detection (0.5 s at 12 fps)
MAX_JUMP_HAND_SIZES = 1.5  # farther than this (mean keypoint distance / hand size) starts a new chain
_EPS = 1e-4


@dataclass
class Detection:
    frame: int
    keypoints2d: np.ndarray  # (21, 3) x px, y px, z px
    world_landmarks: np.ndarray  # (21, 3) metres
    presence: float
    p_right: float  # probability of a right hand, already corrected for MediaPipe's mirroring
    roi: np.ndarray  # (5,)
    roi_source: int

    @property
    def size_px(self) -> float:
        return float(max(np.ptp(self.keypoints2d[:, :2], axis=0).max(), 1.0))


@dataclass
class _Chain:
    dets: list[Detection]

    @property
    def last(self) -> Detection:
        return self.dets[-1]

    @property
    def frames(self) -> set[int]:
        return {d.frame for d in self.dets}

    @property
    def right_evidence(self) -> float:
        """Presence-weighted sum of handedness log-odds (> 0: right)."""
        p = np.clip([d.p_right for d in self.dets], _EPS, 1 - _EPS)
        w = np.array([d.presence for d in self.dets])
        return float((w * np.log(p / (1 - p))).sum())


def _distance(chain: _Chain, det: Detection) -> float:
    last = chain.last
    mean_px = float(np.linalg.norm(last.keypoints2d[:, :2] - det.keypoints2d[:, :2], axis=1).mean())
    return mean_px / max(last.size_px, det.size_px)


def _chain(detections: list[Detection]) -> list[_Chain]:
    chains: list[_Chain] = []
    by_frame: dict[int, list[Detection]] = {}
    for d in detections:
        by_frame.setdefault(d.frame, []).append(d)
    for frame in sorted(by_frame):
        dets = by_frame[frame]
        live = [c for c in chains if frame - c.last.frame <= MAX_GAP_FRAMES]
        taken: set[int] = set()
        if live:
            cost = np.array([[_distance(c, d) for d in dets] for c in live])
            for ci, di in zip(*linear_sum_assignment(cost), strict=True):
                if cost[ci, di] <= MAX_JUMP_HAND_SIZES:
                    live[ci].dets.append(dets[di])
                    taken.add(di)
        chains += [_Chain([d]) for i, d in enumerate(dets) if i not in taken]
    return chains


def _assign_sides(chains: list[_Chain]) -> dict[str, list[Detection]]:
    """Strongest evidence first; a chain whose side is taken at its frames goes to the other side."""
    used: dict[str, set[int]] = {s: set() for s in SIDES}
    out: dict[str, list[Detection]] = {s: [] for s in SIDES}
    for chain in sorted(chains, key=lambda c: -abs(c.right_evidence)):
        preferred = "right" if chain.right_evidence > 0 else "left"
        other = "left" if preferred == "right" else "right"
        frames = chain.frames
        side = preferred if not used[preferred] & frames else other if not used[other] & frames else preferred
        dets = [d for d in chain.dets if d.frame not in used[side]]
        used[side] |= {d.frame for d in dets}
        out[side] += dets
    return out


def _to_track(side: str, dets: list[Detection]) -> HandTrack:
    dets = sorted(dets, key=lambda d: d.frame)
    return HandTrack(
        side=side,
        frame_index=np.array([d.frame for d in dets], np.int32),
        keypoints2d=np.stack([d.keypoints2d for d in dets]).astype(np.float32),
        world_landmarks=np.stack([d.world_landmarks for d in dets]).astype(np.float32),
        presence=np.array([d.presence for d in dets], np.float32),
        handedness=np.array([d.p_right for d in dets], np.float32),
        roi_source=np.array([d.roi_source for d in dets], np.int8),
        roi=np.stack([d.roi for d in dets]).astype(np.float32),
    )


def link_detections(detections: list[Detection]) -> dict[str, HandTrack]:
    """Per-frame detections (any order) -> {"left": track, "right": track}, sides without hands omitted."""
    sides = _assign_sides(_chain(detections))
    return {side: _to_track(side, dets) for side, dets in sides.items() if dets}
