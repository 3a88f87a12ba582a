"""Local scaling: clips/s with 1 and 2 worker processes on the same clips, and peak memory per worker.

Copies of the bundled clips (real decoding, detection, lift and contacts) under new ids. Throughput is
reported over the whole run (with worker start-up) and in steady state (from the first finished clip to the
last); peak RSS is the largest of the worker processes (ru_maxrss of the children).

    python -m benchmarks.bench_scale [--copies 6] [--append]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path

from benchmarks.common import REPO, append_results
from enrich.executors import LocalPool
from enrich.inputs import discover_clips, load_boxes
from enrich.pipeline import ClipProcessor, Inputs, RunConfig


def _inputs(root: Path, copies: int) -> Inputs:
    samples = REPO / "samples"
    videos = root / "videos"
    videos.mkdir()
    for k in range(copies):
        for clip in (samples / "videos").iterdir():
            shutil.copy(clip, videos / f"{1000 * (k + 1) + int(clip.stem)}{clip.suffix}")
    return Inputs(discover_clips([videos]), boxes=load_boxes([samples / "something_else.json"], cache_dir=root))


def measure(inputs: Inputs, workers: int) -> dict[str, float]:
    config = RunConfig()
    tasks = [inputs.task(src) for src in inputs.sources]
    start = time.perf_counter()
    done = []
    for _ in LocalPool(partial(ClipProcessor, config), workers).run(tasks):
        done.append(time.perf_counter())
    wall = done[-1] - start
    steady = (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 else float("nan")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"clips": len(done), "wall_s": wall, "clips_per_s": len(done) / wall, "steady": steady, "peak_mb": peak_mb}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=6, help="copies of the 2 bundled videos")
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = _inputs(Path(tmp), args.copies)
        one, two = measure(inputs, 1), measure(inputs, 2)
    lines = [
        f"{one['clips']} clips (copies of the bundled webm and mp4 clips; decode, 2D, lift, contacts).",
        "",
        "| workers | wall s | clips/s (whole run) | clips/s (steady state) | peak RSS of a worker, MB |",
        "|---|---|---|---|---|",
        *[
            f"| {n} | {m['wall_s']:.1f} | {m['clips_per_s']:.3f} | {m['steady']:.3f} | {m['peak_mb']:.0f} |"
            for n, m in ((1, one), (2, two))
        ],
        "",
        f"Speed-up with 2 workers: {two['clips_per_s'] / one['clips_per_s']:.2f}x over the whole run, "
        f"{two['steady'] / one['steady']:.2f}x in steady state (target 1.8x).",
    ]
    print("\n".join(lines))
    if args.append:
        append_results("Local scaling: 1 vs 2 workers (bench_scale.py)", "\n".join(lines))


if __name__ == "__main__":
    main()
