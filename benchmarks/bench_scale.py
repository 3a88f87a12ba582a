"""Whole-run throughput: the default `enrich run` (one worker per core), `--workers 1`, and MediaPipe Hands alone.

All three process the same frames in one benchmark run: ``--copies`` copies (default 3) of the 13 real SSv2
clips of ../shared/data/ssv2_something_else with their Something-Else boxes (about 1,700 frames), under new
ids. The two `enrich run` configurations are timed as users run them (a fresh `enrich` process each:
imports, worker start-up, decode, 2D, lift, contacts, writing); MediaPipe Hands (solutions API, video mode,
two hands, full model, the frames decoded by the same reader) runs in a fresh process too. Configurations
alternate within each repeat; walls are medians over repeats. Also timed: `enrich info` on the result.

    python -m benchmarks.bench_scale [--copies 3] [--repeats 1] [--append]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import median, record_results, require_shared_data

MEDIAPIPE_HANDS = """
import sys, mediapipe as mp
from enrich.inputs import discover_clips, read_clip
frames = 0
with mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=1) as hands:
    for src in discover_clips([], sys.argv[1]):
        clip = read_clip(src)
        for frame in clip.frames_rgb:
            hands.process(frame)
        frames += clip.n_frames
print(frames)
"""


def make_inputs(root: Path, copies: int) -> tuple[Path, Path, int]:
    """Frame folders (symlinks) and a Something-Else file for ``copies`` copies of the 13 clips."""
    data = require_shared_data() / "ssv2_something_else"
    boxes = json.loads((data / "annotations.json").read_text())
    frames_root, copied = root / "frames", {}
    frames_root.mkdir()
    n_frames = 0
    for k in range(1, copies + 1):
        for folder in sorted((data / "frames").iterdir()):
            new_id = f"{k}{int(folder.name):07d}"
            (frames_root / new_id).symlink_to(folder.resolve(), target_is_directory=True)
            if folder.name in boxes:
                copied[new_id] = boxes[folder.name]
            n_frames += len(list(folder.glob("*.jpg")))
    box_file = root / "boxes.json"
    box_file.write_text(json.dumps(copied))
    return frames_root, box_file, n_frames


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return time.perf_counter() - t0, out


def summary_number(out: str, pattern: str) -> float:
    found = re.search(pattern, out)
    return float(found.group(1)) if found else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    walls: dict[str, list[float]] = {"default": [], "workers 1": [], "MediaPipe Hands": []}
    details: dict[str, list[float]] = {"startup_s": [], "ms_2d": [], "ms_lift": [], "info_s": []}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frames_root, box_file, n_frames = make_inputs(root, args.copies)
        enrich_run = [sys.executable, "-m", "enrich.cli", "run", "--frames", str(frames_root), "--boxes", str(box_file)]
        for r in range(args.repeats):
            order = ["default", "workers 1", "MediaPipe Hands"]
            for name in order[r % 3 :] + order[: r % 3]:  # rotate who runs first
                out_h5 = root / f"{name.replace(' ', '_')}_{r}.h5"
                if name == "MediaPipe Hands":
                    wall, _ = timed([sys.executable, "-c", MEDIAPIPE_HANDS, str(frames_root)], env)
                else:
                    extra = ["--workers", "1"] if name == "workers 1" else []
                    wall, out = timed([*enrich_run, "-q", "-o", str(out_h5), *extra], env)
                    if name == "workers 1":
                        details["ms_2d"].append(summary_number(out, r"decode \+ 2D: ([\d.]+) ms/frame"))
                        details["ms_lift"].append(summary_number(out, r"MANO lift: ([\d.]+) ms per hand-frame"))
                    else:
                        details["startup_s"].append(summary_number(out, r"start-up \(workers, models\): ([\d.]+) s"))
                        for _ in range(3):
                            details["info_s"].append(
                                timed([sys.executable, "-m", "enrich.cli", "info", str(out_h5)], env)[0]
                            )
                walls[name].append(wall)
                print(f"repeat {r}: {name} {wall:.1f} s", flush=True)
    wall = {name: median(values) for name, values in walls.items()}
    per_repeat = ", ".join(f"{w / m:.2f}" for w, m in zip(walls["workers 1"], walls["MediaPipe Hands"], strict=True))
    lines = [
        f"{args.copies} copies of the 13 SSv2 clips: {n_frames} frames; {os.cpu_count()} cores; "
        f"median of {args.repeats} repeat(s), configurations alternating. Machine load (1-min load average, "
        f"others' jobs included): {load_before:.2f} at the start, {os.getloadavg()[0]:.2f} at the end.",
        "",
        "| run | wall s | ms per frame |",
        "|---|---|---|",
        *[f"| {name} | {w:.1f} | {1000 * w / n_frames:.1f} |" for name, w in wall.items()],
        "",
        f"- default / `--workers 1`: {wall['default'] / wall['workers 1']:.2f} (target <= 0.75)",
        f"- `--workers 1` / MediaPipe Hands: {wall['workers 1'] / wall['MediaPipe Hands']:.2f} (target <= 0.9); "
        f"per repeat {per_repeat}",
        f"- `--workers 1` summary: decode + 2D {median(details['ms_2d']):.1f} ms/frame (target <= 10), "
        f"lift {median(details['ms_lift']):.1f} ms per hand-frame",
        f"- default run's start-up (workers, models): {median(details['startup_s']):.1f} s",
        f"- `enrich info` on the result: {median(details['info_s']):.2f} s (target < 1)",
    ]
    print("\n".join(lines))
    if args.append:
        record_results("Whole-run throughput: default, --workers 1, MediaPipe Hands (bench_scale.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
