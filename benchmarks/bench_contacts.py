"""Hand–object contacts against human phase annotations, and what keypoints change on real clips.

Part 1 (box-only, no pixels): ../shared/data/ssv2_real2sim: 33 SSv2 clips with human approach / action / leave
frame ranges and their Something-Else boxes. The action phase counts as contact with the manipulated object:
slot 0 ("0000", the first placeholder, the thing moved in every class here: picking up, pulling, pushing,
putting X behind / in front of / next to / onto Y), or the lowest slot present when a clip has no slot 0.
Frame-level precision / recall / F1 over the frames inside the annotated phases (frames past the
Something-Else annotation count as predicted no-contact), and per-clip onset / offset errors (first / last
predicted contact frame against the first / last action frame).

Baseline (same script): a frame is contact when its hand box overlaps any object box (intersection area > 0),
no smoothing, no slot rule.

Honesty check: the defaults in ContactConfig come from geometry, not from this data. To show what picking
constants here would be worth, a leave-one-clip-out run picks the best (p_on, p_off, motion_noise) of a
small grid on 32 clips and scores the held-out one; pooled over all 33.

Part 2 (pixels): the 13 clips of ../shared/data/ssv2_something_else through the real 2D stage; per
(frame, object slot) contact decisions with keypoints against box-only. There is no human contact ground
truth there: it reports agreement and how many box-only contacts the keypoints reject, not accuracy.

    python -m benchmarks.bench_contacts [--append] [--no-pixels]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import append_results, median, require_shared_data
from enrich.contacts import EVIDENCE_KEYPOINTS, ContactConfig, ContactResult, box_only_contacts, estimate_contacts
from enrich.inputs import BoxIndex, load_boxes
from enrich.records import HAND_SLOT, ClipBoxes


@dataclass
class Phases:
    video_id: str
    action_id: int
    annotated: set[int]  # 0-based frames inside approach / action / leave
    action: set[int]


def _range(text: str) -> set[int]:
    if text.strip() == "-":
        return set()
    a, b = (int(x) for x in text.split("-"))
    return set(range(a - 1, b))  # 1-based inclusive -> 0-based


def read_phases(path: Path) -> list[Phases]:
    table = pd.read_csv(path, dtype=str)
    out = []
    for r in table.itertuples():
        action = _range(r.action)
        annotated = _range(r.approach) | action | _range(r.leave)
        out.append(Phases(r.video_id, int(r.action_id), annotated, action))
    return out


def manipulated_slot(boxes: ClipBoxes) -> int:
    slots = sorted(set(boxes.slot.tolist()) - {HAND_SLOT})
    return 0 if 0 in slots else (slots[0] if slots else 0)


def contact_frames(result: ContactResult, slot: int | None) -> set[int]:
    seg = result.segments
    keep = np.ones(len(seg), bool) if slot is None else seg.object_slot == slot
    return {t for s, e in zip(seg.start[keep], seg.end[keep], strict=True) for t in range(int(s), int(e) + 1)}


def baseline_frames(boxes: ClipBoxes, slot: int | None) -> set[int]:
    """Hand box overlaps an object box (any slot, or the given one) with intersection area > 0."""
    out = set()
    for t in np.unique(boxes.frame_index):
        here = boxes.frame_index == t
        hands = boxes.box_xyxy_px[here & (boxes.slot == HAND_SLOT)]
        is_obj = (boxes.slot == slot) if slot is not None else (boxes.slot != HAND_SLOT)
        objs = boxes.box_xyxy_px[here & is_obj]
        for h, o in itertools.product(hands, objs):
            if min(h[2], o[2]) > max(h[0], o[0]) and min(h[3], o[3]) > max(h[1], o[1]):
                out.add(int(t))
    return out


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    onset: list[int] | None = None
    offset: list[int] | None = None
    missed_clips: int = 0

    def add(self, pred: set[int], ph: Phases) -> None:
        pred = pred & ph.annotated
        self.tp += len(pred & ph.action)
        self.fp += len(pred - ph.action)
        self.fn += len(ph.action - pred)
        self.onset = self.onset or []
        self.offset = self.offset or []
        if pred and ph.action:
            self.onset.append(min(pred) - min(ph.action))
            self.offset.append(max(pred) - max(ph.action))
        elif ph.action:
            self.missed_clips += 1

    @property
    def precision(self) -> float:
        return self.tp / max(self.tp + self.fp, 1)

    @property
    def recall(self) -> float:
        return self.tp / max(self.tp + self.fn, 1)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / max(p + r, 1e-12)

    def row(self, name: str) -> str:
        on = median([abs(x) for x in self.onset or []])
        off = median([abs(x) for x in self.offset or []])
        return (
            f"| {name} | {self.precision:.3f} | {self.recall:.3f} | {self.f1:.3f} | {on:.1f} | {off:.1f} | "
            f"{self.tp}/{self.fp}/{self.fn} | {self.missed_clips} |"
        )


HEADER = [
    "| method | precision | recall | F1 | median abs onset err (frames) | median abs offset err | TP/FP/FN "
    "| clips missed |",
    "|---|---|---|---|---|---|---|---|",
]


def _n_frames(ph: Phases, boxes: ClipBoxes) -> int:
    return max(max(ph.annotated) + 1, boxes.n_annotated_frames)


def score_config(phases: list[Phases], boxes: dict[str, ClipBoxes], config: ContactConfig, slot_rule: bool) -> Score:
    score = Score()
    for ph in phases:
        b = boxes[ph.video_id]
        result = box_only_contacts(b, None, None, config, n_frames=_n_frames(ph, b))
        score.add(contact_frames(result, manipulated_slot(b) if slot_rule else None), ph)
    return score


GRID = {"p_on": (0.5, 0.73, 0.88), "p_off": (0.02, 0.05, 0.12, 0.27), "motion_noise_hand": (0.02, 0.03, 0.05)}


def leave_one_out(phases: list[Phases], boxes: dict[str, ClipBoxes]) -> tuple[Score, list[str], pd.DataFrame]:
    """Pick the grid point with the best F1 on all clips but one, score that one; pool the held-out scores."""
    configs = [replace(ContactConfig(), **dict(zip(GRID, v, strict=True))) for v in itertools.product(*GRID.values())]
    # per config, per clip (tp, fp, fn): the held-out choice then needs no recomputation
    per = np.zeros((len(configs), len(phases), 3))
    for i, cfg in enumerate(configs):
        for j, ph in enumerate(phases):
            s = score_config([ph], boxes, cfg, slot_rule=True)
            per[i, j] = (s.tp, s.fp, s.fn)
    pooled = Score()
    chosen = []
    for j, ph in enumerate(phases):
        rest = per.sum(axis=1) - per[:, j]
        f1 = 2 * rest[:, 0] / np.maximum(2 * rest[:, 0] + rest[:, 1] + rest[:, 2], 1)
        best = configs[int(np.argmax(f1))]
        chosen.append(f"{best.p_on}/{best.p_off}/{best.motion_noise_hand}")
        b = boxes[ph.video_id]
        result = box_only_contacts(b, None, None, best, n_frames=_n_frames(ph, b))
        pooled.add(contact_frames(result, manipulated_slot(b)), ph)
    tot = per.sum(axis=1)
    grid = pd.DataFrame([{k: getattr(c, k) for k in GRID} for c in configs])
    grid["F1"] = 2 * tot[:, 0] / (2 * tot[:, 0] + tot[:, 1] + tot[:, 2])
    grid["precision"] = tot[:, 0] / np.maximum(tot[:, 0] + tot[:, 1], 1)
    return pooled, chosen, grid


def part_boxes(data: Path, cache: Path) -> str:
    root = data / "ssv2_real2sim"
    phases = read_phases(root / "phase_annots.csv")
    index: BoxIndex = load_boxes([root / "something_else_annots.json"], cache_dir=cache)
    boxes = {ph.video_id: index.get(ph.video_id) for ph in phases}
    config = ContactConfig()
    t0 = time.perf_counter()
    ours = score_config(phases, boxes, config, slot_rule=True)
    seconds = time.perf_counter() - t0
    ours_any = score_config(phases, boxes, config, slot_rule=False)
    base_any, base_slot = Score(), Score()
    for ph in phases:
        base_any.add(baseline_frames(boxes[ph.video_id], None), ph)
        base_slot.add(baseline_frames(boxes[ph.video_id], manipulated_slot(boxes[ph.video_id])), ph)
    loo, chosen, grid = leave_one_out(phases, boxes)
    n_frames = sum(len(p.annotated) for p in phases)
    is_default = (grid.p_on == config.p_on) & (grid.p_off == config.p_off)
    default_f1 = grid.loc[is_default & (grid.motion_noise_hand == config.motion_noise_hand), "F1"]
    lines = [
        f"{len(phases)} clips, {n_frames} phase-annotated frames, {sum(len(p.action) for p in phases)} action frames;"
        f" box-only (no pixels), {1000 * seconds / len(phases):.1f} ms/clip.",
        "",
        *HEADER,
        base_any.row("baseline: hand box overlaps any object box"),
        base_slot.row("baseline, manipulated slot only"),
        ours.row("enrich box-only, manipulated slot (defaults)"),
        ours_any.row("enrich box-only, any slot (defaults)"),
        loo.row("enrich, constants picked leave-one-clip-out"),
        "",
        f"Defaults: {config.to_dict()}",
        f"Grid F1 over {len(grid)} (p_on, p_off, motion_noise) points: min {grid.F1.min():.3f}, median"
        f" {grid.F1.median():.3f}, max {grid.F1.max():.3f}; defaults {float(default_f1.iloc[0]):.3f}."
        f" Leave-one-out picks (p_on/p_off/noise): {pd.Series(chosen).value_counts().to_dict()}.",
        "Signed onset errors (pred - human): " + str(sorted(ours.onset or [])),
        "Signed offset errors: " + str(sorted(ours.offset or [])),
    ]
    return "\n".join(lines)


def part_pixels(data: Path, cache: Path, lift: bool) -> str:
    from enrich.inputs import discover_clips, read_clip
    from enrich.track2d import HandModels, Track2DConfig, track_clip

    root = data / "ssv2_something_else"
    index = load_boxes([root / "annotations.json"], cache_dir=cache)
    t2d = Track2DConfig()
    models = HandModels(t2d.num_threads, t2d.dark_crop_mean)
    fitter = None
    if lift:
        from enrich.lift import HandFitter, LiftConfig, lift_clip

        fitter = HandFitter(None, LiftConfig())
    rows = []
    for src in discover_clips([], root / "frames"):
        boxes = index.get(src.video_id) or ClipBoxes.empty(src.video_id)
        clip = read_clip(src)
        tracks = track_clip(clip, boxes, models, t2d)
        if fitter is not None:
            tracks = lift_clip(tracks, fitter)
        t0 = time.perf_counter()
        kp = estimate_contacts(tracks, boxes, clip.n_frames, clip.width, clip.height)
        ms = 1000 * (time.perf_counter() - t0)
        bo = box_only_contacts(boxes, clip.width, clip.height, n_frames=clip.n_frames)
        rows.append(_compare(src.video_id, kp, bo, ms))
    table = pd.DataFrame(rows)
    tot = table.drop(columns="clip").sum()
    lines = [
        "No human contact ground truth on these clips: agreement only. Per (frame, object slot), contact with any",
        "hand. 'judgeable' = box-only row whose frame also has a keypoint hand (its hand box matched).",
        "",
        "| clip | hand boxes matched / all | box-only contact (frame,slot) | keypoint contact | agree (judgeable) "
        "| box-only contacts keypoints reject | keypoint-only contacts | ms/clip |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in [*table.to_dict("records"), {"clip": "all", **tot.to_dict()}]:
        lines.append(
            f"| {r['clip']} | {r['matched']}/{r['hand_boxes']} | {r['box_contact']} | {r['kp_contact']} | "
            f"{r['agree']}/{r['judgeable']} | {r['rejected']} | {r['kp_only']} | {r['ms']:.0f} |"
        )
    lines += [
        "",
        "Checked by eye (boxes and keypoints drawn on the frames, after the keypoint-path fixes of commit",
        "'Contacts with keypoints: box-to-box co-motion...'): 22983 frames 10/25 (hand holding the charger) and",
        "44862 frame 36 (hand gripping the glass) are real contacts both modes now find; 80962 frames 15/18 (a",
        "finger poking the frog) are real contacts only keypoints find; clip 4 (hand pushing a foam piece on the",
        "mat, three nested object boxes) is where keypoints add most contacts, with the piece's slots. The remaining",
        "disagreements have no ground truth here.",
    ]
    return "\n".join(lines)


def _contact_pairs(result: ContactResult, keypoints_only: bool = False) -> tuple[set, set]:
    f = result.frames
    keep = (f.evidence & EVIDENCE_KEYPOINTS) > 0 if keypoints_only else np.ones(len(f), bool)
    seen = set(zip(f.frame_index[keep].tolist(), f.object_slot[keep].tolist(), strict=True))
    on = set(zip(f.frame_index[keep & f.in_contact].tolist(), f.object_slot[keep & f.in_contact].tolist(), strict=True))
    return seen, on


def _compare(video_id: str, kp: ContactResult, bo: ContactResult, ms: float) -> dict:
    _, bo_on = _contact_pairs(bo)
    bo_seen, _ = _contact_pairs(bo)
    kp_seen, kp_on = _contact_pairs(kp, keypoints_only=True)
    judgeable = bo_seen & kp_seen
    agree = sum(((p in bo_on) == (p in kp_on)) for p in judgeable)
    return {
        "clip": video_id,
        "hand_boxes": kp.counts["hand_boxes"],
        "matched": kp.counts["hand_boxes_matched"],
        "box_contact": len(bo_on),
        "kp_contact": len(kp_on),
        "agree": agree,
        "judgeable": len(judgeable),
        "rejected": len((bo_on & judgeable) - kp_on),
        "kp_only": len((kp_on & judgeable) - bo_on),
        "ms": ms,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", action="store_true", help="append the results to benchmarks/RESULTS.md")
    ap.add_argument("--no-pixels", action="store_true", help="skip part 2 (the 2D stage on 13 clips)")
    ap.add_argument("--lift", action="store_true", help="also run the MANO lift in part 2 (not used by contacts)")
    args = ap.parse_args()
    data = require_shared_data()
    with tempfile.TemporaryDirectory() as tmp:
        body = "### Box-only against human phases (ssv2_real2sim)\n\n" + part_boxes(data, Path(tmp))
        if not args.no_pixels:
            body += "\n\n### Keypoints vs box-only (ssv2_something_else, 13 clips)\n\n"
            body += part_pixels(data, Path(tmp), args.lift)
    print(body)
    if args.append:
        append_results("Hand–object contacts (bench_contacts.py)", body)


if __name__ == "__main__":
    main()
