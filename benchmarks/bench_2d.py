"""Hand coverage and speed of the 2D stage, with and without Something-Else boxes, against MediaPipe Hands.

On the 13 real SSv2 clips of ../shared/data/ssv2_something_else, enrich runs twice: with the clip's
Something-Else boxes and with them withheld (as for the ~40,000 SSv2 clips without annotation and for user
videos). Both are scored against the Something-Else hand boxes:

- recall: an annotated hand box counts as found when a detected hand has at least half of its 21 keypoints
  inside the box;
- precision: of the detections in annotated frames, the share that lie in some hand box (half the keypoints
  inside the box grown by 10 % per side, for annotation slack); a detection in no hand box is a false one.

The hand videos of ../shared/data/hand_videos (no annotation) are scored by frames with a hand: the bare-hand
video has a hand in all 621 frames, the apple video in none.

Every method decodes the frames itself (timed); all run pinned to one core and take turns clip by clip, in an
order that rotates per repeat; per-clip times are medians over repeats. enrich runs in a worker process per
code tree: this one and, with ``--against TREE`` (a checkout of another commit, e.g. ``git archive`` of main),
that tree's, so a change is measured against its baseline under the same machine load.

    python -m benchmarks.bench_2d [--repeats 3] [--against ../base] [--pipeline] [--no-videos] [--append]

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

from benchmarks.common import REPO, median, pin_one_core, record_results, require_shared_data
from enrich.inputs import ClipSource, discover_clips, load_boxes, read_clip
from enrich.records import ClipBoxes

MIN_INSIDE = 0.5  # share of keypoints inside the annotated box for a match
PRECISION_MARGIN = 0.1  # a detection "in" a hand box: half its keypoints inside the box grown by this per side
ANNOTATIONS = "ssv2_something_else/annotations.json"
MEDIAPIPE = "mediapipe"
HAND_VIDEOS = "hand_videos"


def inside_fraction(keypoints_px: np.ndarray, box: np.ndarray, margin: float = 0.0) -> float:
    pad = margin * (box[2:] - box[:2])
    lo, hi = box[:2] - pad, box[2:] + pad
    xy = keypoints_px[:, :2]
    return float(np.mean(np.all((xy >= lo) & (xy <= hi), axis=1)))


@dataclass
class ClipScore:
    boxes: int = 0
    found: int = 0
    detections: int = 0  # in annotated frames
    true_detections: int = 0  # ... that lie in some hand box
    frames: int = 0
    frames_with_hand: int = 0


def score_clip(hands_per_frame: list[list[np.ndarray]], boxes: ClipBoxes | None) -> ClipScore:
    s = ClipScore(frames=len(hands_per_frame), frames_with_hand=sum(bool(h) for h in hands_per_frame))
    annotated = boxes.n_annotated_frames if boxes is not None else 0
    for t, hands in enumerate(hands_per_frame):
        hand_boxes = boxes.hand_boxes(t) if boxes is not None else np.zeros((0, 4))
        s.boxes += len(hand_boxes)
        s.found += sum(any(inside_fraction(k, box) >= MIN_INSIDE for k in hands) for box in hand_boxes)
        if t < annotated:
            s.detections += len(hands)
            s.true_detections += sum(
                any(inside_fraction(k, box, PRECISION_MARGIN) >= MIN_INSIDE for box in hand_boxes) for k in hands
            )
    return s


@dataclass
class Score:
    clips: dict[str, ClipScore] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per clip, median over repeats
    crops: int = 0  # landmark crops and palm runs over all repeats (enrich only)
    palms: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # --pipeline: per stage, over all repeats

    def total(self, key: str) -> int:
        return sum(getattr(c, key) for c in self.clips.values())


# --- the 2D stage of one code tree, in its own process ---


def serve(pipeline: bool) -> None:
    """Worker: one JSON request per stdin line (a clip, with or without its boxes), one JSON answer per line.

    ``pipeline``: time the whole per-clip pipeline of one process (decode, 2D, lift, contacts), not the 2D stage."""
    from enrich.track2d import HandModels, Track2DConfig, track_clip  # the tree on PYTHONPATH

    data = require_shared_data()
    index = load_boxes([data / ANNOTATIONS])
    if pipeline:
        from enrich.pipeline import ClipProcessor, RunConfig
        from enrich.records import ClipMeta, ClipTask

        processor = ClipProcessor(RunConfig())
        config, models = processor.config.track2d, processor.models
    else:
        config = Track2DConfig()
        models = HandModels(config.num_threads, config.dark_crop_mean)
    print(json.dumps({"config": config.to_dict()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        use_boxes = request.pop("boxes")
        src = ClipSource(**request)
        boxes = index.get(src.video_id) if use_boxes and src.video_id in index else None
        crops, palms = models.landmark_crops, models.palm_runs
        t0 = time.perf_counter()
        if pipeline:
            result = processor(ClipTask(src, boxes, ClipMeta(src.video_id)))
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

    def run(self, src: ClipSource, boxes: bool) -> dict:
        request = {"video_id": src.video_id, "path": src.path, "kind": src.kind, "boxes": boxes}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


@dataclass(frozen=True)
class Method:
    name: str
    worker: Worker | None  # None: MediaPipe Hands
    boxes: bool = False


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


def run_method(method: Method, src: ClipSource, score: Score | None) -> tuple[float, list]:
    if method.worker is None:
        return mediapipe_hands(src)
    answer = method.worker.run(src, method.boxes)
    if score is not None:
        score.crops += answer["crops"]
        score.palms += answer["palms"]
        for stage, seconds in answer["stages"].items():
            score.stage_seconds[stage] = score.stage_seconds.get(stage, 0.0) + seconds
    return answer["seconds"], [[np.array(k) for k in hands] for hands in answer["hands"]]


def _tree_label(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return f"enrich@{out.stdout.strip() or tree.name}"


# --- report ---


def _pct(num: int, den: int) -> str:
    return f"{num}/{den} ({100 * num / den:.1f} %)" if den else "-"


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.3f}" if den else "-"


def _rows(scores: dict[str, Score], repeats: int) -> list[str]:
    rows = []
    for name, s in scores.items():
        frames = s.total("frames")
        ms = 1000 * sum(s.seconds.values()) / frames
        calls = f"{s.crops / (frames * repeats):.2f} / {s.palms / (frames * repeats):.2f}" if s.crops else "-"
        rows.append(
            f"| {name} | {_pct(s.total('found'), s.total('boxes'))} | "
            f"{_pct(s.total('true_detections'), s.total('detections'))} | "
            f"{_pct(s.total('frames_with_hand'), frames)} | {calls} | {ms:.1f} |"
        )
    return rows


def _per_clip_table(scores: dict[str, Score], clips: list[str]) -> list[str]:
    names = list(scores)
    first = scores[names[0]].clips
    head = ["clip", "frames", "hand boxes", *[f"recall, {n}" for n in names], *[f"precision, {n}" for n in names]]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for vid in clips:
        per = [scores[n].clips[vid] for n in names]
        recall = [str(c.found) for c in per]
        prec = [f"{c.true_detections}/{c.detections}" if c.detections else "-" for c in per]
        lines.append("| " + " | ".join([vid, str(first[vid].frames), str(first[vid].boxes), *recall, *prec]) + " |")
    return lines


def _video_lines(data: Path, methods: list[Method]) -> list[str]:
    """Frames with a hand in the hand videos (no annotation; a "boxes" run is the same as a no-box run there)."""
    shown = [m for m in methods if not m.boxes]
    lines = ["| hand video | frames | " + " | ".join(f"frames with a hand, {m.name}" for m in shown) + " |"]
    lines.append("|---" * (2 + len(shown)) + "|")
    for path in sorted((data / HAND_VIDEOS).iterdir()):
        src = ClipSource(path.stem, str(path), "video")
        runs = [run_method(m, src, None)[1] for m in shown]
        counts = [str(sum(bool(h) for h in hands)) for hands in runs]
        lines.append(f"| {path.name} | {len(runs[0])} | " + " | ".join(counts) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--against", type=Path, help="another checkout of enrich to measure in the same run")
    ap.add_argument("--clips", nargs="*", help="only these video ids (default: all 13)")
    ap.add_argument("--pipeline", action="store_true", help="time enrich's whole per-clip pipeline, not its 2D stage")
    ap.add_argument("--no-videos", action="store_true", help="skip the hand videos")
    ap.add_argument("--append", action="store_true", help="record in benchmarks/RESULTS.md (replaces its section)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.pipeline)
        return
    data = require_shared_data()
    core = pin_one_core()  # the workers inherit it
    load_before = os.getloadavg()
    trees = {"enrich": REPO, **({_tree_label(args.against): args.against.resolve()} if args.against else {})}
    workers = {label: Worker(tree, args.pipeline) for label, tree in trees.items()}
    methods = [
        *(Method(f"{label}, boxes", w, True) for label, w in workers.items()),
        *(Method(f"{label}, no boxes", w, False) for label, w in workers.items()),
        Method(MEDIAPIPE, None),
    ]
    index = load_boxes([data / ANNOTATIONS])
    sources = discover_clips([], data / "ssv2_something_else/frames")
    sources = [s for s in sources if not args.clips or s.video_id in args.clips]
    scores = {m.name: Score() for m in methods}
    for src in sources:
        boxes = index.get(src.video_id)
        runs: dict[str, list[tuple[float, list]]] = {m.name: [] for m in methods}
        for rep in range(args.repeats):
            k = rep % len(methods)
            for m in methods[k:] + methods[:k]:
                runs[m.name].append(run_method(m, src, scores[m.name]))
        for name, results in runs.items():
            scores[name].clips[src.video_id] = score_clip(results[0][1], boxes)
            scores[name].seconds[src.video_id] = median([r[0] for r in results])
    video_lines = [] if args.no_videos else _video_lines(data, methods)
    load_after = os.getloadavg()
    for w in workers.values():
        w.close()
    ms = {name: 1000 * sum(s.seconds.values()) / s.total("frames") for name, s in scores.items()}
    ratios = [f"{m.name} / {MEDIAPIPE}: {ms[m.name] / ms[MEDIAPIPE]:.2f}" for m in methods if m.worker is not None]
    configs = [f"{name}: {w.config}" for name, w in workers.items()]
    n_rep = args.repeats
    stages = [
        f"{name}: " + ", ".join(f"{st} {1000 * sec / (sc.total('frames') * n_rep):.1f}" for st, sec in per.items())
        for name, sc in scores.items()
        if (per := sc.stage_seconds)
    ]
    timed = "whole per-clip pipeline in one process (decode, 2D, lift, contacts)" if args.pipeline else "2D stage"
    first = scores[methods[0].name]
    body = "\n".join(
        [
            f"{len(sources)} real SSv2 clips, {first.total('frames')} frames, {first.total('boxes')} annotated hand"
            f" boxes; one core (#{core}) shared in turn by all methods, median of {args.repeats} rotating repeats per"
            f" clip; times include decoding. Timed for enrich: its {timed}. 'no boxes': the Something-Else boxes"
            " withheld from enrich, scored against them all the same.",
            f"Machine load (1-min load average of the 2-core machine, others' jobs included): {load_before[0]:.2f}"
            f" at the start, {load_after[0]:.2f} at the end; compare ratios, not absolute times.",
            "",
            "| method | recall: hand boxes found (>= 50 % keypoints inside) | precision: detections in a hand box "
            "(annotated frames) | frames with a hand | landmark crops / palm runs per frame | ms/frame |",
            "|---|---|---|---|---|---|",
            *_rows(scores, args.repeats),
            "",
            "Time ratios: " + "; ".join(ratios) + ".",
            *(["", "Stage times, ms/frame (means over all repeats): " + "; ".join(stages) + "."] if stages else []),
            "",
            "Per clip (hand boxes found; detections in a hand box / detections in annotated frames; first repeat):",
            "",
            *_per_clip_table(scores, [s.video_id for s in sources]),
            *(["", *video_lines] if video_lines else []),
            "",
            "Configs: " + "; ".join(configs),
        ]
    )
    print(body)
    if args.append:
        what = "Whole pipeline, one process" if args.pipeline else "2D stage"
        record_results(f"{what}: hand coverage with and without boxes vs MediaPipe Hands (bench_2d.py)", body)


if __name__ == "__main__":
    main()
