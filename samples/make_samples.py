"""Rebuild the bundled samples from ../shared/data (see samples/NOTICE for sources and licences).

Usage: python samples/make_samples.py [SHARED_DATA_DIR]

- clip 2     -> videos/2.webm     (VP9, yuv420p, crf 30, 12 fps, every source frame, source resolution)
- clip 13201 -> videos/13201.mp4  (H.264, yuv420p, crf 23, 12 fps, every source frame, source resolution)
- clip 80962 -> frames/80962/NNNN.jpg (copied byte for byte)
- something_else.json: those three ids' entries from annotations.json, unchanged
- ssv2_metadata.json: their entries from the few-shot split files, in the official train/validation format

Each encoded video is decoded again and checked against the source JPEGs (frame count, size, mean abs
difference).
"""

from __future__ import annotations

import json
import shutil
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

SAMPLES_DIR = Path(__file__).resolve().parent
DEFAULT_SHARED = SAMPLES_DIR.parents[1] / "shared" / "data"
FPS = 12
VIDEO_IDS = ("2", "13201", "80962")
ENCODINGS = {  # video id -> (file name, encoder, encoder options)
    "2": ("2.webm", "libvpx-vp9", {"crf": "30", "b": "0", "row-mt": "0"}),
    "13201": ("13201.mp4", "libx264", {"crf": "23", "preset": "medium"}),
}
FRAMES_ID = "80962"
MAX_MEAN_ABS_DIFF = 6.0  # grey levels; a wrong frame order or colour swap is far above this


def source_frames(frames_dir: Path) -> list[Path]:
    return sorted(frames_dir.glob("*.jpg"))


def encode(jpgs: list[Path], out: Path, codec: str, options: dict[str, str]) -> None:
    first = cv2.imread(str(jpgs[0]))
    height_px, width_px = first.shape[:2]
    # bitexact + one thread: the same bytes on every run (no random container ids, no thread races)
    with av.open(str(out), "w", container_options={"fflags": "+bitexact"}) as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width_px, height_px, "yuv420p"
        stream.thread_count = 1
        stream.options = {**options, "flags": "+bitexact", "threads": "1"}
        for i, jpg in enumerate(jpgs):
            rgb = cv2.cvtColor(cv2.imread(str(jpg)), cv2.COLOR_BGR2RGB)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def check(out: Path, jpgs: list[Path]) -> float:
    """Decode ``out`` again; mean abs difference to the JPEGs (raises when counts or sizes differ)."""
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if len(decoded) != len(jpgs):
        raise RuntimeError(f"{out.name}: decoded {len(decoded)} frames, source has {len(jpgs)}")
    diffs = []
    for rgb, jpg in zip(decoded, jpgs, strict=True):
        ref = cv2.cvtColor(cv2.imread(str(jpg)), cv2.COLOR_BGR2RGB)
        if rgb.shape != ref.shape:
            raise RuntimeError(f"{out.name}: frame size {rgb.shape} != source {ref.shape}")
        diffs.append(np.abs(rgb.astype(np.int16) - ref.astype(np.int16)).mean())
    mean_diff = float(np.mean(diffs))
    if mean_diff > MAX_MEAN_ABS_DIFF:
        raise RuntimeError(f"{out.name}: mean abs difference {mean_diff:.2f} > {MAX_MEAN_ABS_DIFF}")
    return mean_diff


def write_boxes(shared: Path) -> None:
    with open(shared / "ssv2_something_else" / "annotations.json", encoding="utf-8") as f:
        boxes = json.load(f)  # small test file (330 kB); the full set must be streamed instead
    subset = {vid: boxes[vid] for vid in VIDEO_IDS}
    with open(SAMPLES_DIR / "something_else.json", "w", encoding="utf-8") as f:
        json.dump(subset, f)


def write_metadata(shared: Path) -> None:
    found: dict[str, dict] = {}
    for split in sorted((shared / "ssv2_something_else" / "dataset_splits" / "fewshot").glob("*.json")):
        with open(split, encoding="utf-8") as f:
            entries = json.load(f)
        if isinstance(entries, list):
            found.update({e["id"]: e for e in entries if e["id"] in VIDEO_IDS})
    missing = set(VIDEO_IDS) - set(found)
    if missing:
        raise RuntimeError(f"no split entry for {sorted(missing)}")
    keys = ("id", "label", "template", "placeholders")  # official key order
    entries = [{k: found[vid][k] for k in keys} for vid in VIDEO_IDS]
    with open(SAMPLES_DIR / "ssv2_metadata.json", "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1)


def main(shared: Path) -> None:
    frames_root = shared / "ssv2_something_else" / "frames"
    (SAMPLES_DIR / "videos").mkdir(exist_ok=True)
    for vid, (name, codec, options) in ENCODINGS.items():
        jpgs, out = source_frames(frames_root / vid), SAMPLES_DIR / "videos" / name
        encode(jpgs, out, codec, options)
        diff = check(out, jpgs)
        size_b = out.stat().st_size
        print(f"{out.relative_to(SAMPLES_DIR)}: {len(jpgs)} frames, {size_b} B, mean abs diff {diff:.2f}")
    dst = SAMPLES_DIR / "frames" / FRAMES_ID
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(frames_root / FRAMES_ID, dst)
    write_boxes(shared)
    write_metadata(shared)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SHARED)
