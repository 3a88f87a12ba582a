"""Contact sheets for labelling contacts by eye (docs/contact_labels.md): Something-Else boxes and the 2D
keypoints drawn on the annotated frames, several frames per PNG, each tile captioned with its 0-based frame.

    python -m benchmarks.label_sheets RESULTS.h5 FRAMES_ROOT ANNOTATIONS.json OUT_DIR [--per-sheet 12]

Colours: object slot 0 green, 1 orange, 2 magenta, 3 cyan; hand boxes white; left-hand keypoints blue, right
red; fingertips thumb..pinky yellow, white, cyan, magenta, green (bigger dots). Nothing here decides a label.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from enrich.constants import FINGERTIPS, HAND_SLOT
from enrich.inputs import load_boxes
from enrich.records import ClipBoxes, ClipResult
from enrich.store import Results

SLOT_BGR = [(0, 200, 0), (0, 140, 255), (255, 0, 255), (255, 255, 0)]
SIDE_BGR = {"left": (255, 80, 0), "right": (0, 0, 255)}
TIP_BGR = [(0, 255, 255), (255, 255, 255), (255, 255, 0), (255, 0, 255), (0, 255, 0)]
BONES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
         (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)]  # fmt: skip


def draw_frame(img: np.ndarray, boxes: ClipBoxes, record: ClipResult | None, t: int, scale: int) -> np.ndarray:
    out = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    here = boxes.frame_index == t
    for slot, b in zip(boxes.slot[here], boxes.box_xyxy_px[here], strict=True):
        colour = (255, 255, 255) if slot == HAND_SLOT else SLOT_BGR[int(slot) % len(SLOT_BGR)]
        p = (b * scale).astype(int)
        cv2.rectangle(out, tuple(p[:2]), tuple(p[2:]), colour, 1)
        cv2.putText(out, "h" if slot == HAND_SLOT else str(int(slot)), (p[0] + 2, p[1] + 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)  # fmt: skip
    for side, track in (record.hands if record is not None else {}).items():
        rows = np.flatnonzero(track.frame_index == t)
        if len(rows) == 0:
            continue
        kp = track.keypoints2d[rows[0], :, :2] * scale
        for a, b in BONES:
            cv2.line(out, tuple(kp[a].astype(int)), tuple(kp[b].astype(int)), SIDE_BGR[side], 1)
        for k, tip in enumerate(FINGERTIPS):
            cv2.circle(out, tuple(kp[tip].astype(int)), 2, TIP_BGR[k], -1)
        cv2.putText(out, side[0].upper(), tuple(kp[0].astype(int)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, SIDE_BGR[side], 1)
    cv2.putText(out, f"{boxes.video_id}:{t}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
    return out


def sheets(record: ClipResult | None, boxes: ClipBoxes, frames_dir: Path, out: Path, per_sheet: int) -> list[Path]:
    paths = sorted(frames_dir.glob("*.jpg"))
    n = boxes.n_annotated_frames or len(paths)
    written = []
    for start in range(0, n, per_sheet):
        frames = range(start, min(n, start + per_sheet))
        tiles = [draw_frame(cv2.imread(str(paths[t])), boxes, record, t, 1) for t in frames]
        h, w = max(x.shape[0] for x in tiles), max(x.shape[1] for x in tiles)
        pad = cv2.BORDER_CONSTANT
        tiles = [cv2.copyMakeBorder(x, 0, h - x.shape[0] + 2, 0, w - x.shape[1] + 2, pad) for x in tiles]
        tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % 4)
        grid = np.vstack([np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)])
        path = out / f"{boxes.video_id}_{start:03d}.png"
        cv2.imwrite(str(path), grid)
        written.append(path)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("frames", type=Path)
    ap.add_argument("annotations", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-sheet", type=int, default=12)
    ap.add_argument("--only", nargs="*", default=None, help="video ids")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    index = load_boxes([args.annotations], cache_dir=args.out)
    results = Results(args.results)
    for vid in sorted((p.name for p in args.frames.iterdir() if p.is_dir()), key=int):
        if args.only and vid not in args.only:
            continue
        record = results[vid] if vid in results else None  # noqa: SIM401 - Results has no get
        boxes = index.get(vid) or ClipBoxes.empty(vid)
        for p in sheets(record, boxes, args.frames / vid, args.out, args.per_sheet):
            print(p)


if __name__ == "__main__":
    main()
