"""Recall and speed of the 2D stage against MediaPipe Hands (solutions API), measured in the same run.

On the 13 real SSv2 clips of ../shared/data/ssv2_something_else: an annotated hand box counts as found when a
detected hand has at least half of its 21 keypoints inside the box. Every method decodes the frames itself
(timed); all run pinned to one core and take turns clip by clip, in an order that rotates per repeat; per-clip
times are medians over repeats. The 2D stage runs in a worker process per code tree: this one and, with
``--against TREE`` (a checkout of another commit, e.g. made with ``git worktree add``), that tree's, so a change
is measured against its baseline under the same machine load.

    python -m benchmarks.bench_2d [--repeats 3] [--against ../wt-base] [--pipeline] [--append]

``--pipeline`` times enrich's whole per-clip pipeline (decode, 2D, lift, contacts; enrich.pipeline.ClipProcessor)
in one process against MediaPipe Hands alone, with the stage times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import mediapipe as mp
import numpy as np

from benchmarks.common import REPO, append_results, median, pin_one_core, require_shared_data
from enrich.inputs import BoxIndex, ClipSource, discover_clips, load_boxes, read_clip
from enrich.records import ClipBoxes

MIN_INSIDE = 0.5  # share of keypoints inside the annotated box for a match
ANNOTATIONS = "ssv2_something_else/annotations.json"
MEDIAPIPE = "mediapipe"


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
    seconds: list[float] = field(default_factory=list)  # per clip, median over repeats
    found_per_clip: list[int] = field(default_factory=list)
    crops: int = 0  # landmark crops and palm runs over all repeats (enrich only)
    palms: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # --pipeline: per stage, over all repeats

    def add(self, hands_per_frame: list[list[np.ndarray]], boxes: ClipBoxes | None) -> None:
        self.frames += len(hands_per_frame)
        self.hand_frames += sum(len(h) for h in hands_per_frame)
        found = 0
        for t, hands in enumerate(hands_per_frame):
            for box in boxes.hand_boxes(t) if boxes is not None else []:
                self.boxes += 1
                found += any(inside_fraction(k, box) >= MIN_INSIDE for k in hands)
                self.found_margin += any(inside_fraction(k, box, 0.1) >= MIN_INSIDE for k in hands)
        self.found += found
        self.found_per_clip.append(found)


# --- the 2D stage of one code tree, in its own process ---


def serve(pipeline: bool) -> None:
    """Worker: one JSON request per stdin line (a clip), one JSON answer per stdout line.

    ``pipeline``: time the whole per-clip pipeline of one process (decode, 2D, lift, contacts), not the 2D stage."""
    from enrich.track2d import HandModels, Track2DConfig, track_clip  # the tree on PYTHONPATH

    data = require_shared_data()
    index = load_boxes([data / ANNOTATIONS])
    if pipeline:
        from enrich.pipeline import ClipProcessor, RunConfig
        from enrich.records import ClipMeta

        processor = ClipProcessor(RunConfig())
        config, models = processor.config.track2d, processor.models
    else:
        config = Track2DConfig()
        models = HandModels(config.num_threads, config.dark_crop_mean)
    print(json.dumps({"config": config.to_dict()}), flush=True)
    for line in sys.stdin:
        src = ClipSource(**json.loads(line))
        boxes = index.get(src.video_id) if src.video_id in index else None
        crops, palms = models.landmark_crops, models.palm_runs
        t0 = time.perf_counter()
        if pipeline:
            try:  # records-based processor (one ClipTask); trees before the refactor took the task's fields
                from enrich.records import ClipTask

                result = processor(ClipTask(src, boxes, ClipMeta(src.video_id)))
            except ImportError:
                result = processor(src, boxes, ClipMeta(src.video_id), [])
            if not result.ok:
                raise SystemExit(result.error)
            tracks = result.tracks
            stages = {"decode": result.decode_s, "2D": result.track_s, "lift, contacts": result.lift_s}
        else:
            tracks, stages = track_clip(read_clip(src), boxes, models, config), {}
        elapsed = time.perf_counter() - t0
        per_frame: list[list[list]] = [[] for _ in range(tracks.n_frames)]
        for track in tracks.hands.values():
            for i, t in enumerate(track.frame_index):
                per_frame[t].append(track.keypoints2d[i, :, :2].tolist())
        answer = {"seconds": elapsed, "hands": per_frame, "stages": stages, "crops": models.landmark_crops - crops}
        print(json.dumps({**answer, "palms": models.palm_runs - palms}), flush=True)


class Worker:
    """The 2D stage of the code tree ``tree`` (this script's serve(), that tree's ``enrich``)."""

    def __init__(self, tree: Path, pipeline: bool) -> None:
        one_thread = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        env = {**os.environ, **one_thread, "PYTHONPATH": str(tree)}  # one core: one thread everywhere
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", *(["--pipeline"] if pipeline else [])],
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.config = self._read()["config"]

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"2D worker exited with code {self.proc.wait()}")
        return json.loads(line)

    def run(self, src: ClipSource) -> dict:
        self.proc.stdin.write(json.dumps({"video_id": src.video_id, "path": src.path, "kind": src.kind}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def mediapipe_hands(src: ClipSource) -> tuple[float, list]:
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


def run_method(name: str, src: ClipSource, workers: dict[str, Worker], scores: dict[str, Score]) -> tuple:
    if name == MEDIAPIPE:
        return mediapipe_hands(src)
    answer = workers[name].run(src)
    scores[name].crops += answer["crops"]
    scores[name].palms += answer["palms"]
    for stage, seconds in answer["stages"].items():
        scores[name].stage_seconds[stage] = scores[name].stage_seconds.get(stage, 0.0) + seconds
    return answer["seconds"], [[np.array(k) for k in hands] for hands in answer["hands"]]


def _tree_label(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"enrich@{out.stdout.strip() or tree.name}"


# --- report ---


def _rows(scores: dict[str, Score], repeats: int) -> list[str]:
    rows = []
    for name, s in scores.items():
        ms = 1000 * sum(s.seconds) / s.frames
        model_calls = (
            f"{s.crops / (s.frames * repeats):.2f} / {s.palms / (s.frames * repeats):.2f}" if name != MEDIAPIPE else "-"
        )
        rows.append(
            f"| {name} | {s.found}/{s.boxes} ({100 * s.found / s.boxes:.1f} %) | "
            f"{s.found_margin}/{s.boxes} ({100 * s.found_margin / s.boxes:.1f} %) | {s.hand_frames} | {model_calls} "
            f"| {ms:.1f} |"
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--against", type=Path, help="another checkout of enrich to measure in the same run")
    ap.add_argument("--clips", nargs="*", help="only these video ids (default: all 13)")
    ap.add_argument("--pipeline", action="store_true", help="time enrich's whole per-clip pipeline, not its 2D stage")
    ap.add_argument("--append", action="store_true", help="append the results to benchmarks/RESULTS.md")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.pipeline)
        return
    data = require_shared_data()
    core = pin_one_core()  # the workers inherit it
    load_before = os.getloadavg()
    trees = {"enrich": REPO, **({_tree_label(args.against): args.against.resolve()} if args.against else {})}
    workers = {name: Worker(tree, args.pipeline) for name, tree in trees.items()}
    index = load_boxes([data / ANNOTATIONS])
    sources = discover_clips([], data / "ssv2_something_else/frames")
    sources = [s for s in sources if not args.clips or s.video_id in args.clips]
    methods = [*workers, MEDIAPIPE]
    scores = {name: Score() for name in methods}
    frames, boxes_per_clip = [], []
    for src in sources:
        boxes = index.get(src.video_id)
        runs: dict[str, list[tuple[float, list]]] = {name: [] for name in methods}
        for rep in range(args.repeats):
            for name in methods[rep % len(methods) :] + methods[: rep % len(methods)]:
                runs[name].append(run_method(name, src, workers, scores))
        for name, results in runs.items():
            scores[name].add(results[0][1], boxes)
            scores[name].seconds.append(median([r[0] for r in results]))
        frames.append(len(runs[MEDIAPIPE][0][1]))
        boxes_per_clip.append(sum(len(boxes.hand_boxes(t)) for t in range(frames[-1])) if boxes is not None else 0)
    neg_lines = _negatives(data, index, methods, workers)
    load_after = os.getloadavg()
    for w in workers.values():
        w.close()
    ms = {name: 1000 * sum(s.seconds) / s.frames for name, s in scores.items()}
    ratios = [f"{a} / {b}: {ms[a] / ms[b]:.2f}" for i, a in enumerate(methods) for b in methods[i + 1 :]]
    configs = [f"{name}: {w.config}" for name, w in workers.items()]
    stages = [
        f"{name}: " + ", ".join(f"{st} {1000 * sec / (sc.frames * args.repeats):.1f}" for st, sec in per.items())
        for name, sc in scores.items()
        if (per := sc.stage_seconds)
    ]
    timed = (
        "enrich's whole per-clip pipeline in one process (decode, 2D, lift, contacts)"
        if args.pipeline
        else ("enrich's 2D stage (decode and 2D)")
    )
    body = "\n".join(
        [
            f"{len(sources)} real SSv2 clips, {sum(frames)} frames, {scores['enrich'].boxes} annotated hand boxes;"
            f" one core (#{core}) shared in turn by all methods, median of {args.repeats} rotating repeats per clip;"
            f" times include decoding. Timed for enrich: {timed}.",
            f"Machine load (1-min load average of the 2-core machine, others' jobs included): {load_before[0]:.2f}"
            f" at the start, {load_after[0]:.2f} at the end; compare ratios, not absolute times.",
            "",
            "| method | boxes found (>= 50 % keypoints inside) | with 10 % box margin | hand-frames "
            "| landmark crops / palm runs per frame | ms/frame |",
            "|---|---|---|---|---|---|",
            *_rows(scores, args.repeats),
            "",
            "Time ratios: " + "; ".join(ratios) + ".",
            *(["", "Stage times, ms/frame (means over all repeats): " + "; ".join(stages) + "."] if stages else []),
            "",
            "Per clip (found boxes from the first repeat; ms/frame medians over repeats):",
            "",
            *_per_clip_table(scores, sources, frames, boxes_per_clip),
            "",
            "| no-hand clip | " + " | ".join(f"{n} hand-frames" for n in methods) + " |",
            "|---" * (1 + len(methods)) + "|",
            *neg_lines,
            "",
            "Configs: " + "; ".join(configs),
        ]
    )
    print(body)
    if args.append:
        what = "Whole pipeline, one process" if args.pipeline else "2D stage"
        append_results(f"{what}: recall and speed vs MediaPipe Hands (bench_2d.py)", body)


def _per_clip_table(
    scores: dict[str, Score], sources: list[ClipSource], frames: list[int], boxes_per_clip: list[int]
) -> list[str]:
    names = list(scores)
    head = ["clip", "frames", "hand boxes", *[f"found, {n}" for n in names], *[f"ms/frame, {n}" for n in names]]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for i, src in enumerate(sources):
        found = [str(scores[n].found_per_clip[i]) for n in names]
        ms = [f"{1000 * scores[n].seconds[i] / frames[i]:.1f}" for n in names]
        lines.append("| " + " | ".join([src.video_id, str(frames[i]), str(boxes_per_clip[i]), *found, *ms]) + " |")
    return lines


def _negatives(
    data: Path,
    index: BoxIndex,
    methods: list[str],
    workers: dict[str, Worker],
) -> list[str]:
    """Hand-frames on clips without hands (fewer is better): 3201 (annotated) and a video without annotation."""
    negatives = {
        "clip 3201": ClipSource("3201", str(data / "ssv2_something_else/frames/3201"), "frames"),
        "no_hands_apple_cotracker.mp4": ClipSource(
            "apple", str(data / "hand_videos/no_hands_apple_cotracker.mp4"), "video"
        ),
    }
    lines = []
    for label, src in negatives.items():
        scratch = {name: Score() for name in methods}  # crops of these runs are not counted
        counts = [sum(map(len, run_method(name, src, workers, scratch)[1])) for name in methods]
        lines.append(f"| {label} | " + " | ".join(map(str, counts)) + " |")
    return lines


if __name__ == "__main__":
    main()
