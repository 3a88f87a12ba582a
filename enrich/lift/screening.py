"""A 2D track's layout for the fit: detections screened for consistency, segments of consecutive frames, the
observations per fitted frame."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from enrich.records import HandTrack

# --- layout of a track: segments of consecutive frames ---


# what the lift did with each detection of a 2D track (ManoTrack.detection_status; stored as hands/lift_status)
DETECTION_USED, DETECTION_DROPPED, DETECTION_SPLIT = 0, 1, 2
OUTLIER_RATIO = 1.6  # a detection this many times larger or smaller than its neighbours, in the image and in depth
OUTLIER_JUMP = 3.0  # or this many hand sizes off its constant-velocity path (per sqrt of frames), is inconsistent
OUTLIER_NEIGHBOURS = 3  # detections compared on each side
MIN_SPLIT_RUN = 3  # a run of this many inconsistent detections is a hand of its own: it starts a new segment


def spread(points: np.ndarray) -> np.ndarray:
    """(T,) RMS distance of (T, 21, D) points from their centroid (x, y only)."""
    xy = points[..., :2]
    return np.sqrt(((xy - xy.mean(1, keepdims=True)) ** 2).sum(-1).mean(1)).clip(1e-6)


def screen_detections(track: HandTrack, max_gap_frames: int) -> np.ndarray:
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
        spread(image),
        spread(image) / spread(np.nan_to_num(track.world_landmarks.astype(np.float64))),
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


def observations(
    track: HandTrack, rows: np.ndarray, frame_size: tuple[int, int] | None = None
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


def triples(segment: np.ndarray) -> np.ndarray:
    t = np.arange(1, len(segment) - 1)
    keep = (segment[t - 1] == segment[t]) & (segment[t + 1] == segment[t])
    return np.stack([t[keep] - 1, t[keep], t[keep] + 1], 1) if keep.any() else np.zeros((0, 3), np.int64)
