"""Merge benchmark: build full-size sharded output (220,847 synthetic clips in 100 shard files), then time
``enrich.store.merge`` of the shards into one compressed file.

Shards are written through the bulk ``ResultsWriter._append`` path with ``synthetic_block`` from
bench_store.py (hands and MANO rows; no contacts), then closed. By default each shard is closed with
``compress=False`` (as a killed or ``close(compress=False)`` run leaves it): the timed merge then reads
uncompressed shards and compresses once; ``--compress-shards`` closes them compressed instead, as a finished
``enrich run --shard i/N`` leaves them, so the merge also decompresses. The files go to a temporary folder
that is deleted at the end.

    python benchmarks/bench_merge.py [--clips 220847] [--shards 100] [--compress-shards] [--append]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_store import SSV2_CLIPS, synthetic_block
from benchmarks.common import record_block
from enrich.store import ResultsWriter, merge, open_results

BLOCK_CLIPS = 4096
CONFIG = {"bench": True}


def build_shards(folder: Path, n_clips: int, n_shards: int, compress: bool) -> list[Path]:
    rng = np.random.default_rng(0)
    bounds = np.linspace(0, n_clips, n_shards + 1).astype(int)
    paths = []
    for k in range(n_shards):
        path = folder / f"shard_{k:03d}.h5"
        writer = ResultsWriter(path, CONFIG, {"script": "benchmarks/bench_merge.py", "shard": f"{k}/{n_shards}"})
        for first in range(int(bounds[k]), int(bounds[k + 1]), BLOCK_CLIPS):
            writer.record_block(*synthetic_block(rng, first, min(BLOCK_CLIPS, int(bounds[k + 1]) - first)))
        writer.close(compress=compress)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=SSV2_CLIPS)
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--compress-shards", action="store_true", help="close the shards compressed")
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="where the temporary folder goes")
    parser.add_argument("--append", action="store_true", help="record in benchmarks/RESULTS.md (replaces its section)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="enrich_bench_merge_", dir=args.dir))
    try:
        t = time.perf_counter()
        shards = build_shards(folder, args.clips, args.shards, args.compress_shards)
        build_s = time.perf_counter() - t
        shards_mb = sum(p.stat().st_size for p in shards) / 1e6
        out = folder / "merged.h5"
        t = time.perf_counter()
        n_clips = merge(out, shards)
        merge_s = time.perf_counter() - t
        size_mb = out.stat().st_size / 1e6
        with open_results(out) as res:
            summary = res.summary()
            assert summary["clips"] == n_clips == args.clips
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    state = "compressed" if args.compress_shards else "uncompressed (close(compress=False))"
    lines = [
        f"shards          {args.shards} files, {shards_mb:.0f} MB, {state}; built in {build_s:.0f} s (with synthesis)",
        f"clips           {n_clips} ({summary['ok']} ok, {summary['failed']} failed)",
        f"rows            {summary['hand_frames']} hand-frames, {summary['mano_frames']} MANO frames",
        f"merge()         {merge_s:.1f} s ({n_clips / merge_s:.0f} clips/s, {shards_mb / merge_s:.0f} MB/s of shards)",
        f"output          {size_mb:.0f} MB compressed ({size_mb * 1e3 / n_clips:.1f} kB/clip)",
    ]
    print("\n".join(lines))
    if args.append:
        record_block(f"Merging {args.shards} shard files: {args.clips} clips (bench_merge.py)", lines)


if __name__ == "__main__":
    main()
