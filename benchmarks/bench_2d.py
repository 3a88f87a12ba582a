"""Recall and speed of the 2D stage against MediaPipe Hands (solutions API), measured in the same run.

On the 13 real SSv2 clips of ../shared/data/ssv2_something_else: an annotated hand box counts as found when a
detected hand has at least half of its 21 keypoints inside the box. Both methods decode the frames themselves
(timed), run pinned to one core, and alternate order per repeat; per-clip times are medians over repeats.

    python benchmarks/bench_2d.py [--repeats 3] [--append]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field

import mediapipe as mp
import numpy as np

from benchmarks.common import append_results, median, pin_one_core, require_shared_data
from enrich.inputs import ClipSource, discover_clips, load_boxes, read_clip
from enrich.records import ClipBoxes
from enrich.track2d import HandModels, Track2DConfig, track_clip

MIN_INSIDE = 0.5  # share of keypoints inside the annotated box for a match


def inside_fraction(keypoints_px: np.ndarray, box: np.ndarray, margin: float = 0.0) -> float:
    pad = margin * (box[2:] - box[:2])
    lo, hi = box[:2] - pad, box[2:] + pad
    xy = keypoints_px[:, :2]
    return float(np.mean(np.all((xy >= lo) & (xy <= hi), axis=1)))


@dataclass
class Score:
    boxes: int = 0
    found: int = 0
    found_margin: int = 0  # with the box grown by 10 % per side, for annotation slack
    frames: int = 0
    hand_frames: int = 0
    seconds: list[float] = field(default_factory=list)

    def add(self, hands_per_frame: list[list[np.ndarray]], boxes: ClipBoxes | None) -> None:
        self.frames += len(hands_per_frame)
        self.hand_frames += sum(len(h) for h in hands_per_frame)
        for t, hands in enumerate(hands_per_frame):
            for box in boxes.hand_boxes(t) if boxes is not None else []:
                self.boxes += 1
                self.found += any(inside_fraction(k, box) >= MIN_INSIDE for k in hands)
                self.found_margin += any(inside_fraction(k, box, 0.1) >= MIN_INSIDE for k in hands)


def ours(src: ClipSource, boxes: ClipBoxes | None, models: HandModels, config: Track2DConfig) -> tuple[float, list]:
    t0 = time.perf_counter()
    clip = read_clip(src)
    tracks = track_clip(clip, boxes, models, config)
    elapsed = time.perf_counter() - t0
    per_frame: list[list[np.ndarray]] = [[] for _ in range(clip.n_frames)]
    for track in tracks.hands.values():
        for i, t in enumerate(track.frame_index):
            per_frame[t].append(track.keypoints2d[i])
    return elapsed, per_frame


def baseline(src: ClipSource) -> tuple[float, list]:
    """MediaPipe Hands as users run it on video: tracking mode, two hands, full model."""
    t0 = time.perf_counter()
    clip = read_clip(src)
    per_frame = []
    with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1) as hands:
        for frame in clip.frames_rgb:
            result = hands.process(frame)
            found = result.multi_hand_landmarks or []
            per_frame.append([np.array([[p.x * clip.width, p.y * clip.height] for p in h.landmark]) for h in found])
    return time.perf_counter() - t0, per_frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--append", action="store_true", help="append the results to benchmarks/RESULTS.md")
    args = ap.parse_args()
    data = require_shared_data()
    core = pin_one_core()
    config = Track2DConfig()
    models = HandModels(config.num_threads, config.dark_crop_mean)
    index = load_boxes([data / "ssv2_something_else/annotations.json"])
    sources = discover_clips([], data / "ssv2_something_else/frames")
    scores = {"enrich": Score(), "mediapipe": Score()}
    crops0, palms0 = models.landmark_crops, models.palm_runs
    for src in sources:
        boxes = index.get(src.video_id)
        runs: dict[str, list[tuple[float, list]]] = {"enrich": [], "mediapipe": []}
        for rep in range(args.repeats):
            order = ["enrich", "mediapipe"] if rep % 2 == 0 else ["mediapipe", "enrich"]
            for name in order:
                runs[name].append(ours(src, boxes, models, config) if name == "enrich" else baseline(src))
        for name, results in runs.items():
            scores[name].add(results[0][1], boxes)
            scores[name].seconds.append(median([r[0] for r in results]))
    frames = scores["enrich"].frames
    crops_per_frame = (models.landmark_crops - crops0) / (frames * args.repeats)
    palms_per_frame = (models.palm_runs - palms0) / (frames * args.repeats)
    negatives = {
        "clip 3201": next(s for s in sources if s.video_id == "3201"),
        "no_hands_apple_cotracker.mp4": ClipSource(
            "apple", str(data / "hand_videos/no_hands_apple_cotracker.mp4"), "video"
        ),
    }
    neg_lines = []
    for label, src in negatives.items():
        boxes = index.get(src.video_id) if src.video_id in index else None
        _, ours_hands = ours(src, boxes, models, config)
        _, mp_hands = baseline(src)
        neg_lines.append(f"| {label} | {sum(map(len, ours_hands))} | {sum(map(len, mp_hands))} |")
    rows = []
    for name, s in scores.items():
        ms = 1000 * sum(s.seconds) / s.frames
        rows.append(
            f"| {name} | {s.found}/{s.boxes} ({100 * s.found / s.boxes:.1f} %) | "
            f"{s.found_margin}/{s.boxes} ({100 * s.found_margin / s.boxes:.1f} %) | {s.hand_frames} | {ms:.1f} |"
        )
    ms_ours = 1000 * sum(scores["enrich"].seconds) / frames
    ms_mp = 1000 * sum(scores["mediapipe"].seconds) / frames
    body = "\n".join(
        [
            f"13 real SSv2 clips, {frames} frames, {scores['enrich'].boxes} annotated hand boxes; one core (#{core}),"
            f" median of {args.repeats} alternating repeats per clip; times include decoding.",
            "",
            "| method | boxes found (>= 50 % keypoints inside) | with 10 % box margin | hand-frames | ms/frame |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"enrich / mediapipe time ratio: {ms_ours / ms_mp:.2f}; enrich ran {crops_per_frame:.2f} landmark crops and"
            f" {palms_per_frame:.2f} palm detections per frame. Config: {config.to_dict()}",
            "",
            "| no-hand clip | enrich hand-frames | mediapipe hand-frames |",
            "|---|---|---|",
            *neg_lines,
        ]
    )
    print(body)
    if args.append:
        append_results("2D stage: recall and speed vs MediaPipe Hands (bench_2d.py)", body)


if __name__ == "__main__":
    main()
