"""What the contact benchmark and the contact training both read: the human phases of the 33 Real2Sim clips,
the contact labels of the 13 Something-Else clips (benchmarks/data/contact_labels.csv), their feature rows, the
overlap rule and the frame scores. bench_contacts.py and train_contacts.py import this; it imports neither.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import median
from enrich import contact_model as cm
from enrich.constants import HAND_SLOT
from enrich.contacts import ContactConfig, feature_rows
from enrich.inputs import load_boxes, official_class_names
from enrich.records import ClipBoxes, ClipHands, ContactResult

LABELS = Path(__file__).parent / "data" / "contact_labels.csv"
SAMPLES_METADATA = Path(__file__).parent.parent / "samples" / "ssv2_metadata.json"
SIDE_CODE = {"left": 0, "right": 1}
FEATURE_CONFIG = ContactConfig(method="hysteresis")  # feature rows need no fitted model
FINGER_LETTERS = "TIMRP"


@dataclass
class Phases:
    video_id: str
    action_id: int
    annotated: set[int]  # 0-based frames inside approach / action / leave
    action: set[int]


def phase_range(text: str) -> set[int]:
    if text.strip() == "-":
        return set()
    a, b = (int(x) for x in text.split("-"))
    return set(range(a - 1, b))  # 1-based inclusive -> 0-based


def read_phases(path: Path) -> list[Phases]:
    table = pd.read_csv(path, dtype=str)
    out = []
    for r in table.itertuples():
        action = phase_range(r.action)
        annotated = phase_range(r.approach) | action | phase_range(r.leave)
        out.append(Phases(r.video_id, int(r.action_id), annotated, action))
    return out


def n_frames_of(ph: Phases, boxes: ClipBoxes) -> int:
    return max(max(ph.annotated) + 1, boxes.n_annotated_frames)


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


@dataclass
class ClipData:
    """Feature rows of one clip with a dense target per row group: 1 contact, 0 free, -1 unused."""

    video_id: str
    n_frames: int
    boxes: ClipBoxes
    tracks: ClipHands | None
    width: int | None
    height: int | None
    rows: list[dict]
    targets: list[np.ndarray]  # per row group, at rows[i]["frames"]: contact_model.BEFORE/CONTACT/AFTER, -1 unused
    scored: list[bool]  # per row group: counts in the score (manipulated slot / labelled pair)
    frame_truth: np.ndarray | None = None  # (n,) phase clips: 1 action, 0 approach/leave, -1 outside
    template: str = ""  # SSv2 template when known (tells the manipulated slot from places and surfaces)


def phase_clips(data: Path, cache: Path) -> list[ClipData]:
    root = data / "ssv2_real2sim"
    index = load_boxes([root / "something_else_annots.json"], cache_dir=cache)
    names = official_class_names()
    out = []
    for ph in read_phases(root / "phase_annots.csv"):
        boxes = index.get(ph.video_id)
        n = n_frames_of(ph, boxes)
        template = names[ph.action_id]
        rows = feature_rows(None, boxes, n, None, None, FEATURE_CONFIG, template)
        manipulated = scored_slot(boxes, None, None, template)
        targets, scored = [], []
        first, last = min(ph.action, default=n), max(ph.action, default=-1)
        for r in rows:
            f = r["frames"]
            y = np.where(f < first, cm.BEFORE, np.where(f > last, cm.AFTER, cm.CONTACT))
            y = np.where(np.isin(f, list(ph.annotated)), y, -1)
            keep = r["slot"] == manipulated
            targets.append(np.where(keep, y, -1))
            scored.append(bool(keep))
        truth = np.full(n, -1)
        truth[list(ph.annotated)] = 0
        truth[list(ph.action)] = 1
        out.append(ClipData(ph.video_id, n, boxes, None, None, None, rows, targets, scored, truth, template))
    return out


def f1_of_counts(tp: float, fp: float, fn: float) -> float:
    """F1 from frame counts, 2 tp / (2 tp + fp + fn); 0 when there is nothing to score."""
    return float(2 * tp / max(2 * tp + fp + fn, 1))


def per_clip_against_overlap(clips: list[ClipData], counts: np.ndarray) -> str:
    """Phase clips' per-clip F1 from (n, 3) (tp, fp, fn) counts against the overlap rule's (any slot)."""
    wins, text = 0, []
    for c, (tp, fp, fn) in zip(clips, counts, strict=True):
        rule = np.zeros(c.n_frames, bool)
        rule[sorted(baseline_frames(c.boxes, None))] = True
        y = c.frame_truth
        r_tp, r_fp, r_fn = np.sum(rule & (y == 1)), np.sum(rule & (y == 0)), np.sum(~rule & (y == 1))
        ours, theirs = f1_of_counts(tp, fp, fn), f1_of_counts(r_tp, r_fp, r_fn)
        wins += bool(ours >= theirs)
        text.append(f"{c.video_id} {ours:.2f}/{theirs:.2f} ({int(tp)}/{int(fp)}/{int(fn)})")
    head = f"per-clip F1 at least the overlap rule's: {wins}/{len(clips)} (model/overlap (tp/fp/fn)): "
    return head + ", ".join(text)


def scored_slot(boxes: ClipBoxes, width: int | None, height: int | None, template: str) -> int:
    """The slot the phases are about: the manipulated one (contact_model.slot_roles), or the template's direct
    object when the clip never boxes it (contact rows then stand on the hand's own extent); -99 when none."""
    obj = boxes.slot != HAND_SLOT
    share = cm.ContactModel.surface_share
    roles = cm.slot_roles(boxes.slot[obj], boxes.box_xyxy_px[obj], width, height, share, template)
    held = cm.unboxed_manipulated(template, sorted(roles))  # never boxed: the hand stands for it (contacts.py)
    return next((s for s, r in roles.items() if r == cm.ROLE_MANIPULATED), -99 if held is None else held)


def read_labels(path: Path = LABELS) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"video_id": str, "fingers": str}, keep_default_na=False)


def pixel_clips(data: Path, cache: Path, labels: pd.DataFrame, results: Path | None = None) -> list[ClipData]:
    """The labelled clips through the real 2D stage and the lift (which settles uncertain hand sides, as in
    ``enrich run``), with their feature rows. ``results``: an ``enrich run`` output of these clips to reuse
    instead of running the stages again."""
    root = data / "ssv2_something_else"
    index = load_boxes([root / "annotations.json"], cache_dir=cache)
    templates = known_templates(data)
    out = []
    for video_id, tracks in _tracks(root, results, set(labels.video_id), cache):
        boxes = index.get(video_id) or ClipBoxes.empty(video_id)
        n, w, h = tracks.n_frames, tracks.width, tracks.height
        template = templates.get(video_id, "")
        rows = feature_rows(tracks, boxes, n, w, h, FEATURE_CONFIG, template)
        lab = labels[labels.video_id == video_id]
        targets = [_phases(_label_target(r, lab)) for r in rows]
        scored = [bool(np.any(t >= 0)) for t in targets]
        out.append(ClipData(video_id, n, boxes, tracks, w, h, rows, targets, scored, None, template))
    return out


def known_templates(data: Path) -> dict[str, str]:
    """Templates of the labelled clips where the data says them: the bundled samples' metadata and the
    Something-Else few-shot split files (2, 13201 and 80962 of the 13; the rest stay unknown)."""
    import warnings

    from enrich.inputs import load_metadata

    splits = sorted((data / "ssv2_something_else" / "dataset_splits" / "fewshot").glob("*.json"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the split files' own class ids are not the official ones: known
        meta = load_metadata([*splits, SAMPLES_METADATA])
    return {v: m.template for v, m in meta.items()}


def _tracks(root: Path, results: Path | None, wanted: set[str], cache: Path) -> list[tuple[str, ClipHands]]:
    if results is not None:
        from enrich.store import Results

        stored = Results(results)
        return [(v, stored[v].tracks) for v in sorted(wanted, key=int) if v in stored]
    from enrich.inputs import discover_clips, read_clip
    from enrich.lift import HandFitter, LiftConfig, lift_clip
    from enrich.track2d import HandModels, Track2DConfig, track_clip

    index = load_boxes([root / "annotations.json"], cache_dir=cache)
    t2d = Track2DConfig()
    models, fitter = HandModels(t2d.num_threads, t2d.dark_crop_mean), HandFitter(None, LiftConfig())
    out = []
    for src in discover_clips([], root / "frames"):
        if src.video_id in wanted:
            boxes = index.get(src.video_id) or ClipBoxes.empty(src.video_id)
            tracks = track_clip(read_clip(src), boxes, models, t2d)
            tracks = lift_clip(tracks, fitter)
            out.append((src.video_id, tracks))
    return out


def _phases(y: np.ndarray) -> np.ndarray:
    """Binary labels (1 contact, 0 free, -1 unused) to phases: free before the first contact, after it."""
    contact = np.flatnonzero(y == 1)
    first = contact[0] if len(contact) else len(y)
    return np.where(y == 1, cm.CONTACT, np.where(y == 0, np.where(np.arange(len(y)) < first, cm.BEFORE, cm.AFTER), -1))


def _label_target(row: dict, lab: pd.DataFrame) -> np.ndarray:
    """1 where the label has this hand on this slot; 0 where it has not; -1 unsure or unlabelled.
    Unknown-side rows (hand 2) stand for the clip's acting hand: every labelled clip has one."""
    mine = lab[lab.object_slot == row["slot"]].set_index("frame_index")
    y = np.full(len(row["frames"]), -1)
    for i, t in enumerate(row["frames"].tolist()):
        if t not in mine.index or not mine.at[t, "sure"]:
            continue
        side_ok = row["hand"] == 2 or SIDE_CODE.get(mine.at[t, "hand"], -1) == row["hand"]
        y[i] = int(bool(mine.at[t, "in_contact"]) and side_ok)
    return y


def label_bits(letters: str) -> int:
    return sum(1 << FINGER_LETTERS.index(ch) for ch in letters)
