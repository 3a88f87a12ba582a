"""2D stage: MediaPipe hand landmarks on regions from Something-Else boxes, tracking, or the palm detector.

The models and the geometry of their crops are in ``enrich.landmark_models``; this module decides, frame by
frame, which regions to run them on, and links what they find into tracks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from enrich.constants import ROI_BOX, ROI_PALM, ROI_SCAN, ROI_TRACK
from enrich.hand_search import EdgeScan, edge_angle, motion_boxes, thumbnail
from enrich.landmark_models import (
    HandModels,
    iou_xyxy,
    is_mirrored,
    mirrored,
    overlap_of_smaller,
    project_landmarks,
    project_world,
    roi_from_box,
    roi_from_landmarks,
    roi_from_palm,
)
from enrich.records import Clip, ClipBoxes, ClipHands
from enrich.tracklets import Detection, link_detections


@dataclass(frozen=True)
class Track2DConfig:
    """Knobs of the 2D stage; stored with every results file."""

    box_scales: tuple[float, ...] = (1.5, 2.0, 1.2)  # crop side / longer side of a Something-Else hand box
    box_search_crops: int = 8  # at most this many crops (scales x turns) tried on a box no tracked hand explains
    box_turns_first: bool = True  # all four turns at the first scale before the next scale
    box_mirror: bool = True  # each box region also mirrored (the next crop tried)
    box_retry_crops: int = 1  # ... and on a box missed in the previous frame (its best regions there first)
    box_retry_stride_frames: int = 2  # a box missed twice running is searched again only every n-th frame
    min_presence: float = 0.5  # MediaPipe's own hand-presence threshold
    min_presence_box: float = 0.2  # a crop from a hand box, or a hand centred in one (leave-one-clip-out)
    min_presence_track: float = 0.2  # a hand tracked from a neighbouring frame's hand, outside hand boxes
    min_hand_side: float = 0.1  # keypoint extent / frame height a hand outside hand boxes needs (0: off)
    confirm_presence: float = 0.5  # outside hand boxes, a hand below this presence needs the same hand in a
    # neighbouring frame: false hands are isolated, true ones track (0: off)
    redetect_crops: int = 12  # crops around a neighbouring frame's hand that its tracking crop lost (0: off)
    palm_min_score: float = 0.5
    palm_stride_frames: int = 3  # run the palm detector on every n-th frame that has no other region
    palm_in_annotated_frames: bool = False  # also where Something-Else annotators saw no hand (frame listed, no box)
    scan_stride_frames: int = 6  # crops on the frame edges on every n-th frame the palm detector finds nothing (0: off)
    scan_sizes: tuple[float, ...] = (0.9,)  # edge crop sides / frame height (leave-one-clip-out)
    scan_min_change: float = 40.0  # an edge crop runs again once its region changed this much (mean grey levels;
    # leave-one-clip-out, cheapest within a box per clip: a hand that moves in is the motion crops' to find)
    min_presence_scan: float = 0.8  # a hand found by an edge crop, where nothing else says so (leave-one-clip-out)
    watch_size: float = 0.65  # a crop of this side / frame height at the bottom centre, straight and mirrored,
    # where SSv2 hands come in most: tried more often than the other edge crops, in clips without hand boxes
    # (with boxes, the frames past the annotation are few and the run's cost is at its limit; 0: off; all three
    # leave-one-clip-out)
    watch_stride_frames: int = 2  # ... on every n-th frame the palm detector finds nothing, changed or not (a
    # hand already there when it last looked moves too little to count as change, and its next pose may show)
    watch_first_presence: float = 0.1  # ... the mirrored crop only if the straight one reaches this presence
    motion_crops: int = 4  # where the palm detector finds nothing, box crops on the largest moving region (0: off)
    motion_first_presence: float = 0.03  # ... the rest only if the first (likeliest) crop reaches this presence
    # (leave-one-clip-out, cheapest within a box per clip; most moving regions are no hand)
    refine: bool = True  # re-crop a box/palm detection around its own landmarks, MediaPipe-style
    track_backward: bool = True  # also track back from later frames: into missed boxes, or any frame without boxes
    max_hands: int = 2
    dark_crop_mean: float = 0.3  # crops darker than this mean intensity are gamma-lifted to it (0 = off)
    num_threads: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


# --- per frame ---


def _run(
    models: HandModels, frame_rgb: np.ndarray, rois: list[np.ndarray], sources: list[int], frame: int
) -> list[Detection]:
    if not rois:
        return []
    screen, presence, handed_raw, world = models.landmarks(frame_rgb, rois)
    return [
        Detection(
            frame=frame,
            keypoints2d=project_landmarks(screen[i], roi),
            world_landmarks=project_world(world[i], roi),
            presence=float(presence[i]),
            # The raw score is P(label "Left"); MediaPipe's labels assume a mirrored selfie, and SSv2 is not
            # mirrored, so it is the probability of a true right hand (of a left one in a crop we mirrored).
            p_right=1.0 - float(handed_raw[i]) if is_mirrored(roi) else float(handed_raw[i]),
            roi=roi,
            roi_source=sources[i],
        )
        for i, roi in enumerate(rois)
    ]


def _follow(det: Detection) -> np.ndarray:
    """MediaPipe's crop around a hand's landmarks, mirrored as the crop that found it."""
    roi = roi_from_landmarks(det.keypoints2d)
    return mirrored(roi) if is_mirrored(det.roi) else roi


def _refine(models: HandModels, frame_rgb: np.ndarray, det: Detection, config: Track2DConfig) -> Detection:
    """Second pass on MediaPipe's own landmark-derived crop (with ``config.refine``); keeps whichever pass is more
    confident. Run even after a confident first pass: on a box crop, the first pass can be sure of the wrong hand
    (hand-graph-cnn 00330: presence 0.98, side and 3D wrong, 42.9 mm PA-MPJPE; after the second pass 10.9 mm)."""
    if not config.refine:
        return det
    again = _run(models, frame_rgb, [_follow(det)], [det.roi_source], det.frame)[0]
    return again if again.presence >= det.presence else det


def box_hypotheses(box: np.ndarray, width: int, height: int, config: Track2DConfig) -> list[np.ndarray]:
    """Regions to try, likeliest first: rotations from the edge prior outwards and scales around the box (all
    turns of a scale before the next scale, or all scales of a turn first), each straight and mirrored."""
    first = edge_angle(box, width, height)
    turns = (0.0, math.pi / 2, -math.pi / 2, math.pi)
    if config.box_turns_first:
        rois = [roi_from_box(box, scale, first + turn) for scale in config.box_scales for turn in turns]
    else:
        rois = [roi_from_box(box, scale, first + turn) for turn in turns for scale in config.box_scales]
    return [r for roi in rois for r in ((roi, mirrored(roi)) if config.box_mirror else (roi,))]


@dataclass(frozen=True)
class BoxMiss:
    """An annotated box where no hand was found; the same box in the next frame starts from it."""

    box_xyxy_px: np.ndarray  # (4,)
    presence: np.ndarray  # (n_hypotheses,) latest presence per box hypothesis, -1 where never tried
    frames: int  # consecutive frames this box has been missed (searched or not)


def _search_order(prior: BoxMiss | None, n_hypotheses: int) -> np.ndarray:
    """Hypothesis indices to try: likeliest first, or, on a box missed before, best previous presence first."""
    if prior is None:
        return np.arange(n_hypotheses)
    return np.argsort(-prior.presence, kind="stable")  # untried (-1) last, in the default order


def _search_box(
    models: HandModels,
    frame_rgb: np.ndarray,
    box: np.ndarray,
    frame: int,
    config: Track2DConfig,
    prior: BoxMiss | None,
) -> tuple[Detection, np.ndarray]:
    """Untracked box: try regions until one clears the box threshold; otherwise the best one.

    Returns the detection and the presence per hypothesis (-1 where not tried), merged with ``prior``'s."""
    rois = box_hypotheses(box, frame_rgb.shape[1], frame_rgb.shape[0], config)
    presence = prior.presence.copy() if prior is not None else np.full(len(rois), -1.0, np.float32)
    n_crops = config.box_retry_crops if prior is not None else config.box_search_crops
    best: Detection | None = None
    for k in _search_order(prior, len(rois))[:n_crops]:
        det = _run(models, frame_rgb, [rois[k]], [ROI_BOX], frame)[0]
        presence[k] = det.presence
        if best is None or det.presence > best.presence:
            best = det
        if best.presence >= config.min_presence_box:
            break
    found = best.presence >= config.min_presence_box
    return (_refine(models, frame_rgb, best, config) if found else best), presence


SAME_HAND_IOU = 0.5  # two detections whose keypoint boxes overlap this much are one hand, however posed
SAME_HAND_CONTAINED = 0.8  # ... or one of whose keypoint boxes lies this much inside the other


def _keypoint_box(det: Detection) -> np.ndarray:
    xy = det.keypoints2d[:, :2]
    return np.concatenate([xy.min(0), xy.max(0)])


def _same_hand(a: Detection, b: Detection) -> bool:
    """Close keypoints, or keypoint boxes that overlap: one hand seen twice (e.g. once as a left hand and once,
    from another crop, as a right hand with its fingers swapped), never two hands."""
    size = max(a.size_px, b.size_px)
    if float(np.linalg.norm(a.keypoints2d[:, :2] - b.keypoints2d[:, :2], axis=1).mean()) < 0.35 * size:
        return True
    box_a, box_b = _keypoint_box(a), _keypoint_box(b)
    if float(iou_xyxy(box_a, box_b[None])[0]) >= SAME_HAND_IOU:
        return True
    return overlap_of_smaller(box_a, box_b) >= SAME_HAND_CONTAINED


def _dedupe(dets: list[Detection], max_hands: int) -> list[Detection]:
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.presence):
        if not any(_same_hand(d, k) for k in kept):
            kept.append(d)
    return kept[:max_hands]


def _centre(det: Detection) -> np.ndarray:
    return det.keypoints2d[:, :2].mean(0)


def _inside(box: np.ndarray, point: np.ndarray) -> bool:
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def _in_a_box(det: Detection, boxes_xyxy_px: np.ndarray) -> bool:
    """Whether the hand is centred in one of the boxes: an annotator saw a hand there."""
    return any(_inside(box, _centre(det)) for box in boxes_xyxy_px)


def _track(models: HandModels, frame_rgb: np.ndarray, frame: int, hands: list[Detection]) -> list[Detection]:
    rois = [roi_from_landmarks(p.keypoints2d) for p in hands]
    return _run(models, frame_rgb, rois, [ROI_TRACK] * len(rois), frame)


def _redetect(
    models: HandModels, frame_rgb: np.ndarray, frame: int, lost: Detection, config: Track2DConfig
) -> Detection | None:
    """A neighbouring frame's hand that its tracking crop lost: box crops (scales, turns, mirrored) around its
    keypoint box, as for a Something-Else box, until one clears the tracking threshold."""
    rois = [lost.roi, *box_hypotheses(_keypoint_box(lost), frame_rgb.shape[1], frame_rgb.shape[0], config)]
    for roi in rois[: config.redetect_crops]:  # first the crop that found it there: hands move little per frame
        det = _run(models, frame_rgb, [roi], [ROI_TRACK], frame)[0]
        if det.presence >= config.min_presence_track:
            return _refine(models, frame_rgb, det, config)
    return None


def _track_or_redetect(
    models: HandModels, frame_rgb: np.ndarray, frame: int, hands: list[Detection], config: Track2DConfig
) -> list[Detection]:
    """Each hand of a neighbouring frame tracked into this one; one that the tracking crop loses is searched for
    around where it was."""
    tracked = _track(models, frame_rgb, frame, hands)
    for i, (hand, det) in enumerate(zip(hands, tracked, strict=True)):
        if det.presence < config.min_presence_track and config.redetect_crops > 0:
            tracked[i] = _redetect(models, frame_rgb, frame, hand, config) or det
    return tracked


def _palm_hands(models: HandModels, frame_rgb: np.ndarray, frame: int, config: Track2DConfig) -> list[Detection]:
    palms = models.palms(frame_rgb, config.palm_min_score)[: config.max_hands]
    rois = [roi_from_palm(box, kps) for _, box, kps in palms]
    found = _run(models, frame_rgb, rois, [ROI_PALM] * len(rois), frame)
    return [_refine(models, frame_rgb, d, config) for d in found]


def _motion_hands(
    models: HandModels, frame_rgb: np.ndarray, frame: int, config: Track2DConfig, moving: list[np.ndarray]
) -> list[Detection]:
    """Box crops (turns, mirrored) on each moving region, as on a Something-Else box, until one clears the
    edge-crop threshold: nothing but motion says a hand is there."""
    found: list[Detection] = []
    for box in moving:
        rois = box_hypotheses(box, frame_rgb.shape[1], frame_rgb.shape[0], config)[: config.motion_crops]
        for k, roi in enumerate(rois):
            det = _run(models, frame_rgb, [roi], [ROI_SCAN], frame)[0]
            if det.presence >= config.min_presence_scan:
                det = _refine(models, frame_rgb, det, config)
                if not any(_same_hand(det, f) for f in found):
                    found.append(det)
                break
            if k == 0 and det.presence < config.motion_first_presence:
                break  # most moving regions are no hand, and their likeliest crop says so
    return found


def _scan_hands(
    models: HandModels,
    frame_rgb: np.ndarray,
    frame: int,
    config: Track2DConfig,
    scans: tuple[EdgeScan, ...],
    moving: list[np.ndarray],
) -> list[Detection]:
    """Crops on the moving regions, then, of each edge scan in turn, edge crops whose region changed since they
    last found nothing, likeliest first; stops once ``max_hands`` hands are found."""
    found = _motion_hands(models, frame_rgb, frame, config, moving)[: config.max_hands]
    if len(found) >= config.max_hands or not scans:
        return found
    thumb = thumbnail(frame_rgb)
    for scan in scans:
        skip = set()
        for i in scan.due(thumb):
            if i in skip:
                continue
            det = _run(models, frame_rgb, [scan.rois[i]], [ROI_SCAN], frame)[0]
            hit = det.presence >= config.min_presence_scan
            scan.ran(i, thumb, hit)
            if (mirror := scan.mirror_to_skip(i, det.presence)) is not None:
                skip.add(mirror)
            if hit and not any(_same_hand(det, f) for f in found):
                found.append(_refine(models, frame_rgb, det, config))
                if len(found) >= config.max_hands:
                    return found
    return found


def unexplained_boxes(
    boxes: np.ndarray, previous: list[Detection], tracked: list[Detection], min_presence: float
) -> list[np.ndarray]:
    """Boxes that no tracked hand explains. A hand tracked from ``previous`` into ``tracked`` (same order) with
    at least ``min_presence`` explains the first box its last or its new centre lies in, and only that one:
    MediaPipe's tracking crop is a better region than any box search."""
    free = [i for i, d in enumerate(tracked) if d.presence >= min_presence]
    out = []
    for box in boxes:
        hit = next((i for i in free if _inside(box, _centre(previous[i])) or _inside(box, _centre(tracked[i]))), None)
        if hit is None:
            out.append(box)
        else:
            free.remove(hit)  # an index: Detections hold arrays and cannot be compared with ==
    return out


def _prior_miss(box: np.ndarray, missed: list[BoxMiss], min_iou: float = 0.5) -> BoxMiss | None:
    """Last frame's miss of the same box (overlapping it), if any."""
    if not missed:
        return None
    iou = iou_xyxy(box, np.stack([m.box_xyxy_px for m in missed]))
    best = int(np.argmax(iou))
    return missed[best] if iou[best] >= min_iou else None


def _skip_search(prior: BoxMiss | None, config: Track2DConfig) -> bool:
    """A box missed on two or more frames running is searched only every n-th frame: backward tracking fills the
    frames in between once the hand is found."""
    if prior is None or prior.frames < 2 or not config.track_backward:
        return False
    return (prior.frames - 1) % max(config.box_retry_stride_frames, 1) != 0


def detect_frame(
    models: HandModels,
    frame_rgb: np.ndarray,
    frame: int,
    hand_boxes_px: np.ndarray,
    previous: list[Detection],
    missed: list[BoxMiss],
    run_palm: bool,
    config: Track2DConfig,
    scans: tuple[EdgeScan, ...] = (),
    moving: list[np.ndarray] | None = None,
) -> tuple[list[Detection], list[BoxMiss]]:
    """Hands of one frame from (a) annotated boxes, (b) last frame's hands (or crops around them), (c) the palm
    detector, (d) crops on ``moving`` regions, (e) edge crops of ``scans``.

    ``missed`` are last frame's boxes where no hand was found: the same box again gets a shorter search, best
    previous region first, and after two misses only every few frames. Returns the hands and this frame's misses."""
    missed_now: list[BoxMiss] = []
    if len(hand_boxes_px):  # every hand of the last frame: one crop each
        tracked = _track(models, frame_rgb, frame, previous)
    else:  # ... and, without boxes to search, a few more around a hand that crop loses
        tracked = _track_or_redetect(models, frame_rgb, frame, previous, config)
    dets: list[Detection] = list(tracked)
    # Only a confident track (MediaPipe's own threshold) explains a box: a weak one (kept down to the box
    # threshold) drifts, crop after crop, off the hand it follows, so its box is searched again.
    for box in unexplained_boxes(hand_boxes_px, previous, tracked, config.min_presence):
        prior = _prior_miss(box, missed)
        if _skip_search(prior, config):
            missed_now.append(BoxMiss(box, prior.presence, prior.frames + 1))
            continue
        det, presence = _search_box(models, frame_rgb, box, frame, config, prior)
        dets.append(det)
        if det.presence < config.min_presence_box:
            missed_now.append(BoxMiss(box, presence, prior.frames + 1 if prior is not None else 1))
    if not dets and run_palm:
        dets = _palm_hands(models, frame_rgb, frame, config)
    if not any(d.presence >= config.min_presence for d in dets) and (scans or moving):
        dets = _scan_hands(models, frame_rgb, frame, config, scans, moving or [])
    kept = [d for d in dets if d.presence >= _threshold(d, hand_boxes_px, frame_rgb.shape[0], config)]
    return _dedupe(kept, config.max_hands), missed_now


def _threshold(det: Detection, hand_boxes_px: np.ndarray, height_px: int, config: Track2DConfig) -> float:
    """Presence a detection needs: the box threshold for a crop from a box or a hand centred in one (an annotator
    saw a hand there); outside boxes none for a hand too small to be one (a frog, a knob: SSv2 hands are close to
    the camera), then the tracking, edge-crop or MediaPipe's own threshold by the crop's source."""
    if det.roi_source == ROI_BOX or _in_a_box(det, hand_boxes_px):
        return config.min_presence_box
    if det.size_px < config.min_hand_side * height_px:
        return math.inf
    if det.roi_source == ROI_TRACK:
        return config.min_presence_track
    return config.min_presence_scan if det.roi_source == ROI_SCAN else config.min_presence


def _every(since: int, needs: bool, stride: int) -> tuple[bool, int]:
    """Whether a search runs at this frame, and the frames since it last ran: every ``stride``-th frame of a
    stretch of frames that need it, starting with the first."""
    since = since + 1 if needs else stride
    run = needs and since >= stride
    return run, 0 if run else since


def _forward(clip: Clip, boxes: ClipBoxes, models: HandModels, config: Track2DConfig) -> list[list[Detection]]:
    per_frame: list[list[Detection]] = []
    previous: list[Detection] = []
    missed: list[BoxMiss] = []
    since_palm, since_scan = config.palm_stride_frames, config.scan_stride_frames
    edges = EdgeScan(clip.width, clip.height, config.scan_sizes, config.scan_min_change)
    watch = EdgeScan.bottom_centre(clip.width, clip.height, config.watch_size, config.watch_first_presence)
    since_watch = config.watch_stride_frames
    watching = config.watch_size > 0 and boxes.n_annotated_frames == 0
    for t in range(clip.n_frames):
        hand_boxes = boxes.hand_boxes(t)
        annotated = t < boxes.n_annotated_frames and not config.palm_in_annotated_frames
        if annotated and not len(hand_boxes):  # annotators saw no hand here: nothing to track or search
            previous, missed = [], []
            per_frame.append(previous)
            continue
        needs_palm = not len(hand_boxes) and not previous  # an annotated frame got here with a hand box
        run_palm, since_palm = _every(since_palm, needs_palm, config.palm_stride_frames)
        run_scan, since_scan = _every(
            since_scan, needs_palm and config.scan_stride_frames > 0, config.scan_stride_frames
        )
        run_watch, since_watch = _every(since_watch, needs_palm and watching, config.watch_stride_frames)
        scans = (*((watch,) if run_watch else ()), *((edges,) if run_scan else ()))
        moving = motion_boxes(clip.frames_rgb, t) if run_palm and config.motion_crops > 0 else []
        previous, missed = detect_frame(
            models, clip.frames_rgb[t], t, hand_boxes, previous, missed, run_palm, config, scans, moving
        )
        per_frame.append(previous)
    return per_frame


def _explains(box: np.ndarray, dets: list[Detection]) -> bool:
    return any(_inside(box, _centre(d)) for d in dets)


def _backward(
    clip: Clip, boxes: ClipBoxes, models: HandModels, config: Track2DConfig, per_frame: list[list[Detection]]
) -> None:
    """Track back in time from later detections: into annotated boxes the forward pass missed, and, in frames
    without annotation, to any hand of the next frame that this frame lacks (a hand found at frame 20 was likely
    there at frame 19). Frames where annotators listed no hand stay empty."""
    for t in range(clip.n_frames - 2, -1, -1):
        hand_boxes = boxes.hand_boxes(t)
        if len(hand_boxes) or t >= boxes.n_annotated_frames or config.palm_in_annotated_frames:
            _track_back(models, clip.frames_rgb[t], t, hand_boxes, per_frame, config)


def _track_back(
    models: HandModels,
    frame_rgb: np.ndarray,
    t: int,
    hand_boxes: np.ndarray,
    per_frame: list[list[Detection]],
    config: Track2DConfig,
) -> None:
    if len(hand_boxes):
        for box in hand_boxes:
            if _explains(box, per_frame[t]) or len(per_frame[t]) >= config.max_hands:
                continue
            later = [d for d in per_frame[t + 1] if _inside(box, _centre(d))]
            found = _track(models, frame_rgb, t, later[:1])
            per_frame[t] += [d for d in found if d.presence >= config.min_presence_box]
        return
    for later in per_frame[t + 1]:
        if len(per_frame[t]) >= config.max_hands or any(_same_hand(later, d) for d in per_frame[t]):
            continue
        found = _track_or_redetect(models, frame_rgb, t, [later], config)
        per_frame[t] += [
            d
            for d in found
            if d.presence >= _threshold(d, hand_boxes, frame_rgb.shape[0], config)
            and not any(_same_hand(d, e) for e in per_frame[t])
        ]


def _confirmed(per_frame: list[list[Detection]], boxes: ClipBoxes, min_alone: float) -> list[list[Detection]]:
    """Drops hands outside hand boxes below ``min_alone`` presence that no neighbouring frame has: a search crop
    that fires on a non-hand seldom tracks into the next frame, a real hand does."""

    def keep(t: int, det: Detection) -> bool:
        if det.presence >= min_alone or _in_a_box(det, boxes.hand_boxes(t)):
            return True
        near = [d for u in (t - 1, t + 1) if 0 <= u < len(per_frame) for d in per_frame[u]]
        return any(_same_hand(det, d) for d in near)

    return [[d for d in dets if keep(t, d)] for t, dets in enumerate(per_frame)]


def track_clip(clip: Clip, boxes: ClipBoxes | None, models: HandModels, config: Track2DConfig) -> ClipHands:
    """All frames of one clip -> at most one left and one right 2D track."""
    boxes = boxes if boxes is not None else ClipBoxes.empty(clip.video_id)
    per_frame = _forward(clip, boxes, models, config)
    if config.track_backward:
        _backward(clip, boxes, models, config, per_frame)
    per_frame = [_dedupe(dets, config.max_hands) for dets in per_frame]
    if config.confirm_presence > 0:
        per_frame = _confirmed(per_frame, boxes, config.confirm_presence)
    # The backward pass adds hands frame by frame; one hand must still end up in one track, on one side.
    hands = link_detections([d for dets in per_frame for d in dets])
    return ClipHands(clip.video_id, clip.n_frames, clip.width, clip.height, clip.fps, hands)
