"""Results-file benchmark: build a full-size synthetic run, then time open, per-clip lookup and add().

The bulk of the file is written through ``ResultsWriter._append`` in blocks of clips (the same commit path
that ``add`` uses, one flush pair per block instead of per clip) so that 220,847 clips take well under a
minute; then a few hundred clips go through the public ``add`` one by one to time it, and ``close`` rewrites
the file compressed. Lookups are timed on the final (compressed) file, first with the file evicted from the
OS page cache, then again warm.

    python benchmarks/bench_store.py [--clips 220847] [--out /tmp/enrich_bench_store.h5]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.common import record_block
from enrich.constants import N_KEYPOINTS
from enrich.records import ClipHands, ClipMeta, ClipResult, HandTrack
from enrich.store import CLIP_COLUMNS, HAND_COLUMNS, MANO_COLUMNS, ROW_GROUPS, Results, ResultsWriter, open_results

SSV2_CLIPS = 220_847
BLOCK_CLIPS = 4096
FRAMES_MEAN = 45
P_ONE_HAND, P_TWO_HANDS, P_FAILED = 0.60, 0.05, 0.005
P_DETECTED = 0.8  # share of a clip's frames in which a present hand is detected
TEMPLATE = "Putting [something] onto [something]"


def _hand_rows(rng: np.random.Generator, n_frames: int, n_sides: int) -> dict[str, np.ndarray]:
    """Rows of ``n_sides`` hands of one clip (side-major, frames increasing)."""
    parts = []
    for side in range(2 - n_sides, 2):  # one hand: right; two: left then right
        frames = np.flatnonzero(rng.random(n_frames) < P_DETECTED).astype(np.int32)
        parts.append((np.full(len(frames), side, np.int8), frames))
    side = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int8)
    frames = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int32)
    t = len(frames)
    return {
        "side": side,
        "frame_index": frames,
        "keypoints2d": rng.normal(150, 40, (t, N_KEYPOINTS, 3)).astype(np.float32),
        "world_landmarks": rng.normal(0, 0.04, (t, N_KEYPOINTS, 3)).astype(np.float32),
        "presence": rng.random(t).astype(np.float32),
        "handedness": rng.random(t).astype(np.float32),
        "roi_source": rng.integers(0, 3, t).astype(np.int8),
        "roi": rng.normal(150, 30, (t, 5)).astype(np.float32),
    }


def _mano_rows(rng: np.random.Generator, hands: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A MANO row for every hand row (the lift fits every detected hand-frame)."""
    t = len(hands["side"])
    rows = {"side": hands["side"], "frame_index": hands["frame_index"]}
    for name, column in MANO_COLUMNS.items():
        if name not in rows:
            rows[name] = rng.normal(0, 0.1, (t, *column.row_shape)).astype(column.dtype)
    return rows


def synthetic_block(rng: np.random.Generator, first: int, n: int) -> tuple[dict, dict, np.ndarray]:
    """Clip columns, per-frame rows (hands, mano) and status codes of clips ``first .. first + n - 1``."""
    n_frames = rng.integers(FRAMES_MEAN - 15, FRAMES_MEAN + 16, n).astype(np.int32)
    draw = rng.random(n)
    failed = draw < P_FAILED
    n_sides = np.where(draw < P_FAILED + P_TWO_HANDS, 2, np.where(draw < P_FAILED + P_TWO_HANDS + P_ONE_HAND, 1, 0))
    n_sides[failed] = 0
    per_clip = [_hand_rows(rng, int(f), int(s)) for f, s in zip(n_frames, n_sides, strict=True)]
    hands = {name: np.concatenate([rows[name] for rows in per_clip]) for name in HAND_COLUMNS}
    mano = _mano_rows(rng, hands)
    ids = np.arange(first, first + n)

    def text(name: str, values: list[str]) -> np.ndarray:
        return np.array([v.encode() for v in values], CLIP_COLUMNS[name].dtype)

    clips = {
        "video_id": text("video_id", [str(i) for i in ids]),
        "error": text("error", ["clip: cannot decode" if f else "" for f in failed]),
        "note": text("note", ["no Something-Else boxes" if i % 3 else "" for i in ids]),
        "source": text("source", [f"/data/ssv2/20bn-something-something-v2/{i}.webm" for i in ids]),
        "placeholders": text("placeholders", [f'["pen {i % 97}", "book"]' for i in ids]),
        "n_frames": n_frames,
        "fps": np.full(n, 12.0, np.float32),
        "width": np.full(n, 427, np.int16),
        "height": np.full(n, 240, np.int16),
        "hand_count": np.array([len(rows["side"]) for rows in per_clip], np.int32),
        "mano_count": np.array([len(rows["side"]) for rows in per_clip], np.int32),
        "betas": rng.normal(0, 1, (n, 2, 10)).astype(np.float32),
        "focal_px": np.full(n, 427.0, np.float32),
        "class_id": (ids % 174).astype(np.int16),
        "template": text("template", [TEMPLATE] * n),
        "label": text("label", [f"Putting pen {i % 97} onto book" for i in ids]),
    }
    rows = {"hands": hands, "mano": mano}
    for group, (columns, _, count) in ROW_GROUPS.items():  # no contacts in the synthetic clips: empty groups
        if group not in rows:
            rows[group] = {name: np.zeros((0, *c.row_shape), c.dtype) for name, c in columns.items()}
            clips[count] = np.zeros(n, np.int32)
    return clips, rows, np.where(failed, 2, 1).astype(np.int8)


def _clip_for_add(rng: np.random.Generator, vid: str) -> tuple[ClipMeta, ClipHands]:
    rows = _hand_rows(rng, FRAMES_MEAN, 1)
    fields = {name: rows[name] for name in HAND_COLUMNS if name != "side"}
    tracks = ClipHands(vid, FRAMES_MEAN, 427, 240, 12.0, {"right": HandTrack(side="right", **fields)})
    meta = ClipMeta(vid, 3, TEMPLATE, "Putting pen onto book", ("pen", "book"))
    return meta, tracks


def _ms(seconds: list[float]) -> str:
    return f"median {np.median(seconds) * 1e3:.2f} ms, p95 {np.percentile(seconds, 95) * 1e3:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=SSV2_CLIPS)
    parser.add_argument("--out", type=Path, default=Path("/tmp/enrich_bench_store.h5"))
    parser.add_argument("--adds", type=int, default=300, help="clips written one by one through add()")
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--append", action="store_true", help="record in benchmarks/RESULTS.md (replaces its section)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n_bulk = args.clips - args.adds

    t0 = time.perf_counter()
    writer = ResultsWriter(args.out, {"bench": True}, {"script": "benchmarks/bench_store.py"})
    for first in range(0, n_bulk, BLOCK_CLIPS):
        writer.record_block(*synthetic_block(rng, first, min(BLOCK_CLIPS, n_bulk - first)))
    t_bulk = time.perf_counter() - t0
    writer._reopen()  # as a run adding one clip at a time does every few thousand clips
    _sync(args.out)  # else add() would pay for the write-back of the bulk data
    add_s = []
    for i in range(n_bulk, args.clips):
        meta, tracks = _clip_for_add(rng, str(i))
        t = time.perf_counter()
        writer.add(ClipResult(meta, f"/data/{i}.webm", tracks))
        add_s.append(time.perf_counter() - t)
    live_mb = args.out.stat().st_size / 1e6
    t = time.perf_counter()
    writer.close()  # rewrites the file compressed
    close_s = time.perf_counter() - t

    _drop_from_page_cache(args.out)
    t = time.perf_counter()
    results = open_results(args.out)
    open_cold_s = time.perf_counter() - t
    picks = rng.choice(results.video_ids, size=min(args.lookups, len(results)), replace=False)
    cold_s, hand_frames = _lookups(results, picks)  # first touch of each chunk: read from disk
    warm_s, _ = _lookups(results, picks)  # same ids again: file pages in the OS cache
    t = time.perf_counter()
    summary = results.summary()
    summary_s = time.perf_counter() - t
    results.close()
    t = time.perf_counter()
    open_results(args.out).close()
    open_warm_s = time.perf_counter() - t

    size_mb = args.out.stat().st_size / 1e6
    per_clip = hand_frames / len(picks)
    lines = [
        f"file            {size_mb:.0f} MB  ({size_mb * 1e3 / args.clips:.1f} kB/clip)",
        f"clips           {summary['clips']} ({summary['ok']} ok, {summary['failed']} failed), "
        f"{summary['hand_frames']} hand-frames",
        f"bulk write      {n_bulk} clips in {t_bulk:.1f} s ({BLOCK_CLIPS} per commit, with synthesis)",
        f"add()           {_ms(add_s)} over {len(add_s)} clips (each commits and flushes twice)",
        f"close()         {close_s:.1f} s to compress {live_mb:.0f} MB ({live_mb * 1e3 / args.clips:.1f} kB/clip)",
        f"open_results    {open_cold_s * 1e3:.0f} ms cold, {open_warm_s * 1e3:.0f} ms warm",
        f"lookup cold     {_ms(cold_s)} over {len(picks)} random ids ({per_clip:.0f} hand-frames each)",
        f"lookup warm     {_ms(warm_s)} (same ids, file in the OS page cache)",
        f"summary()       {summary_s * 1e3:.0f} ms",
    ]
    print("\n".join(lines))
    if args.append:
        record_block(f"Results file at scale: {args.clips} clips (bench_store.py)", lines)


def _lookups(results: Results, video_ids: np.ndarray) -> tuple[list[float], int]:
    """Seconds per ``results[vid]`` (hand arrays come back as numpy arrays) and the hand-frames read."""
    seconds, hand_frames = [], 0
    for vid in video_ids:
        t = time.perf_counter()
        rec = results[vid]
        seconds.append(time.perf_counter() - t)
        hand_frames += sum(len(track) for track in rec.hands.values())
    return seconds, hand_frames


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _drop_from_page_cache(path: Path) -> None:
    """Evict the file from the OS page cache (no root needed) so the first reads hit the disk."""
    _sync(path)  # dirty pages cannot be dropped
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


if __name__ == "__main__":
    main()
