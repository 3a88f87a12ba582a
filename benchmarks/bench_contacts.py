"""Hand–object contacts against human phase annotations, and what keypoints change on real clips.

Part 1 (box-only, no pixels): ../shared/data/ssv2_real2sim: 33 SSv2 clips with human approach / action / leave
frame ranges and their Something-Else boxes. The action phase counts as contact with the manipulated object:
slot 0 ("0000", the first placeholder, the thing moved in every class here: picking up, pulling, pushing,
putting X behind / in front of / next to / onto Y), or the lowest slot present when a clip has no slot 0. The fitted
model is scored on the template's direct object even where the clip never boxes it (757: contacts.py's rows on the
hand's own extent, ``EVIDENCE_HELD``).
Frame-level precision / recall / F1 over the frames inside the annotated phases (frames past the
Something-Else annotation count as predicted no-contact), and per-clip onset / offset errors (first / last
predicted contact frame against the first / last action frame).

Baseline (same script): a frame is contact when its hand box overlaps any object box (intersection area > 0),
no smoothing, no slot rule.

Honesty check: the defaults in ContactConfig come from geometry, not from this data. To show what picking
constants here would be worth, a leave-one-clip-out run picks the best (p_on, p_off, motion_noise) of a
small grid on 32 clips and scores the held-out one; pooled over all 33.

Part 2 (pixels): the 13 clips of ../shared/data/ssv2_something_else through the real 2D stage; per
(frame, object slot) contact decisions with keypoints against box-only: agreement between the modes.

The fitted model (enrich/contact_model.py), reported first: box-only on the 33 phase clips with every clip
scored by a model fitted on the other 32 (the knobs as chosen leave-one-clip-out by train_contacts.py), with
the per-clip F1 against the overlap rule's; and with pixels against benchmarks/data/contact_labels.csv
(docs/contact_labels.md), each clip scored by a keypoint model fitted on the others: frame F1 per (hand,
object), exact finger sets, the poke in 80962, the seat in 13201.

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

from benchmarks import train_contacts as tc
from benchmarks.common import record_results, require_shared_data
from benchmarks.contact_data import (
    HEADER,
    SIDE_CODE,
    Phases,
    Score,
    baseline_frames,
    contact_frames,
    f1_of_counts,
    known_templates,
    label_bits,
    manipulated_slot,
    n_frames_of,
    phase_clips,
    pixel_clips,
    read_labels,
    read_phases,
    scored_slot,
)
from enrich.constants import EVIDENCE_KEYPOINTS
from enrich.contacts import ContactConfig, box_only_contacts, estimate_contacts
from enrich.inputs import BoxIndex, load_boxes
from enrich.records import ClipBoxes, ContactResult


def score_config(phases: list[Phases], boxes: dict[str, ClipBoxes], config: ContactConfig, slot_rule: bool) -> Score:
    score = Score()
    for ph in phases:
        b = boxes[ph.video_id]
        result = box_only_contacts(b, None, None, config, n_frames=n_frames_of(ph, b))
        score.add(contact_frames(result, manipulated_slot(b) if slot_rule else None), ph)
    return score


GRID = {"p_on": (0.5, 0.73, 0.88), "p_off": (0.02, 0.05, 0.12, 0.27), "motion_noise_hand": (0.02, 0.03, 0.05)}


def leave_one_out(phases: list[Phases], boxes: dict[str, ClipBoxes]) -> tuple[Score, list[str], pd.DataFrame]:
    """Pick the grid point with the best F1 on all clips but one, score that one; pool the held-out scores."""
    rule = ContactConfig(method="hysteresis")
    configs = [replace(rule, **dict(zip(GRID, v, strict=True))) for v in itertools.product(*GRID.values())]
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
        result = box_only_contacts(b, None, None, best, n_frames=n_frames_of(ph, b))
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
    config = ContactConfig(method="hysteresis")  # the unfitted rule; the fitted model is scored above
    t0 = time.perf_counter()
    ours = score_config(phases, boxes, config, slot_rule=True)
    seconds = time.perf_counter() - t0
    ours_any = score_config(phases, boxes, config, slot_rule=False)
    shipped = score_config(phases, boxes, ContactConfig(), slot_rule=True)
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
        ours.row("enrich unfitted rule (hysteresis), manipulated slot"),
        ours_any.row("enrich unfitted rule (hysteresis), any slot"),
        loo.row("enrich unfitted rule, constants picked leave-one-clip-out"),
        shipped.row("shipped fitted model, IN-SAMPLE (fitted on these clips: not a result)"),
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

    templates = known_templates(data)

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
        template = templates.get(src.video_id, "")
        kp = estimate_contacts(tracks, boxes, clip.n_frames, clip.width, clip.height, template=template)
        ms = 1000 * (time.perf_counter() - t0)
        bo = box_only_contacts(boxes, clip.width, clip.height, n_frames=clip.n_frames, template=template)
        rows.append(_compare(src.video_id, kp, bo, ms))
    table = pd.DataFrame(rows)
    tot = table.drop(columns="clip").sum()
    lines = [
        "Agreement between the two modes. Per (frame, object slot), contact with any",
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
        "Both modes use the shipped fitted model and the templates known for 2, 13201 and 80962; 2D only (no lift,",
        "so a few sides differ from `enrich run`). Accuracy against the human labels is in 'Fitted model with",
        "pixels against the contact labels' above.",
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


# ------------------------------------------------------------------------------------------------------
# the fitted model (enrich/contact_model.py): leave-one-clip-out on the phase clips, and on the pixel labels
# ------------------------------------------------------------------------------------------------------


def _shipped() -> tuple[object, dict]:
    import json

    from enrich import contact_model as cm

    return cm.load_model(), json.loads(cm.MODEL_PATH.read_text(encoding="utf-8"))["notes"]


def _kind(nested_choices: dict) -> str:
    if nested_choices:
        return "nested leave-one-clip-out (outer folds)"
    return "leave-one-clip-out with the shipped choice (NOT nested: the choice saw every clip)"


def clip_f1(pred: set[int], ph: Phases) -> float:
    s = Score()
    s.add(pred, ph)
    return s.f1


def part_model_boxes(data: Path, cache: Path) -> str:
    """Nested leave-one-clip-out through the shipped code path: each clip scored by a model fitted on the other
    32 with the choice train_contacts.py made by leave-one-clip-out on those 32 (stored in the model's notes)."""
    from enrich import contact_model as cm

    model, notes = _shipped()
    nested = notes.get("nested_box_only_phase_clips", {"choices": {}})  # absent: the shipped choice, not nested
    clips = phase_clips(data, cache)
    phases = {p.video_id: p for p in read_phases(data / "ssv2_real2sim" / "phase_annots.csv")}
    outer, old, base = Score(), Score(), Score()
    wins = 0
    per_clip: list[str] = []
    t0 = time.perf_counter()
    for j, clip in enumerate(clips):
        choice = tc.Choice(**nested["choices"].get(clip.video_id, notes["box_choice"]))
        features = tc.feature_set(choice.features, False)
        logistic, means = tc.fold_models(clips, j, choice.l2, features, False, choice.phase_split)
        fold = cm.ContactModel(logistic, model.keypoints, tc.hmm_of(choice, means), model.hmm_keypoints)
        ph, b = phases[clip.video_id], clip.boxes
        result = box_only_contacts(b, None, None, n_frames=clip.n_frames, model=fold, template=clip.template)
        pred = contact_frames(result, scored_slot(b, None, None, clip.template))
        outer.add(pred, ph)
        hyst = box_only_contacts(b, None, None, ContactConfig(method="hysteresis"), n_frames=clip.n_frames)
        old.add(contact_frames(hyst, manipulated_slot(b)), ph)
        overlap = baseline_frames(b, None)
        base.add(overlap, ph)
        wins += clip_f1(pred, ph) >= clip_f1(overlap, ph)
        per_clip.append(f"{clip.video_id} {clip_f1(pred, ph):.2f}/{clip_f1(overlap, ph):.2f}")
    seconds = time.perf_counter() - t0
    chosen = pd.Series([str(tuple(c.values())[:4]) for c in nested["choices"].values()]).value_counts().to_dict()
    chosen = chosen or "NONE STORED: every fold uses the shipped choice (leave-one-clip-out, NOT nested)"
    return "\n".join(
        [
            f"{len(clips)} clips; each scored by a model fitted on the other {len(clips) - 1} with the choice made by"
            f" leave-one-clip-out on those {len(clips) - 1} (nested; {1000 * seconds / len(clips):.0f} ms/clip"
            f" including the fit). Outer choices (features, L2, scale, bias): {chosen}. Shipped (chosen on all 33,"
            f" fitted on all 33): {notes['box_choice']}.",
            "",
            *HEADER,
            base.row("baseline: hand box overlaps any object box"),
            old.row("unfitted rule: naive-Bayes log-odds + hysteresis"),
            outer.row(f"fitted model + HMM, {_kind(nested['choices'])}"),
            "",
            f"Per-clip F1 at least the overlap rule's: {wins}/{len(clips)} clips (clip model/overlap: "
            + ", ".join(per_clip)
            + ").",
            "Signed onset errors (pred - human): " + str(sorted(outer.onset or [])),
            "Signed offset errors: " + str(sorted(outer.offset or [])),
        ]
    )


@dataclass
class PairScore:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        self.tp += int(np.sum(pred & truth))
        self.fp += int(np.sum(pred & ~truth))
        self.fn += int(np.sum(~pred & truth))

    @property
    def f1(self) -> float:
        return f1_of_counts(self.tp, self.fp, self.fn)

    def text(self) -> str:
        p = self.tp / max(self.tp + self.fp, 1)
        r = self.tp / max(self.tp + self.fn, 1)
        return f"{p:.3f} | {r:.3f} | {self.f1:.3f} | {self.tp}/{self.fp}/{self.fn}"


def _predicted(result: ContactResult, lab: pd.DataFrame, strict_side: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per label row: (in contact as predicted for the labelled hand and slot, finger bits predicted)."""
    f = result.frames
    on = {}
    for t, h, k, c, b in zip(f.frame_index.tolist(), f.hand.tolist(), f.object_slot.tolist(),
                             f.in_contact.tolist(), f.fingers.tolist(), strict=True):  # fmt: skip
        if c:
            on.setdefault((t, k), []).append((h, b))
    pred, bits = np.zeros(len(lab), bool), np.zeros(len(lab), np.int64)
    for i, (t, k, side) in enumerate(zip(lab.frame_index, lab.object_slot, lab.hand, strict=True)):
        hands = [(h, b) for h, b in on.get((t, k), []) if not strict_side or h == SIDE_CODE.get(side, -9)]
        pred[i] = bool(hands)
        bits[i] = hands[0][1] if hands else 0
    return pred, bits


def _overlap_rule(boxes: ClipBoxes, lab: pd.DataFrame) -> np.ndarray:
    out = np.zeros(len(lab), bool)
    for i, (t, k) in enumerate(zip(lab.frame_index, lab.object_slot, strict=True)):
        out[i] = t in baseline_frames(boxes, k)
    return out


def part_labels(data: Path, cache: Path, results: Path | None = None) -> str:
    """Pixels on the labelled clips: frame F1 per (hand, object), fingers, the poke, the seat."""
    from enrich import contact_model as cm

    model, notes = _shipped()
    nested = notes.get("nested_keypoints_labels", {}).get("choices", {})  # absent: shipped choice, not nested
    labels = read_labels()
    clips = pixel_clips(data, cache, labels, results)
    duplicates = poke_index = poke_frames = 0
    scores = {k: PairScore() for k in ("overlap", "hysteresis", "loco_strict", "loco_any")}
    fingers_right = fingers_total = fingers_with_row = 0
    notes_out = []
    for j, clip in enumerate(clips):
        choice = tc.Choice(**nested.get(clip.video_id, notes["keypoint_choice"]))
        features = tc.feature_set(choice.features, True, model.box.features)
        logistic, _ = tc.fold_models(clips, j, choice.l2, features, True, choice.phase_split)
        radius, curl, segment, _ = tc.select_fingers([c for i, c in enumerate(clips) if i != j], labels)
        hmm = tc.hmm_of(choice, tc._durations(model.hmm_box))
        fold = cm.ContactModel(model.box, logistic, model.hmm_box, hmm, radius, curl, segment_fingers=segment)
        args = (clip.tracks, clip.boxes, clip.n_frames, clip.width, clip.height)
        res = estimate_contacts(*args, model=fold, template=clip.template)
        hyst = estimate_contacts(*args, ContactConfig(method="hysteresis"))
        lab = labels[(labels.video_id == clip.video_id) & (labels.sure == 1)].reset_index(drop=True)
        truth = lab.in_contact.to_numpy().astype(bool)
        strict, bits = _predicted(res, lab, strict_side=True)
        scores["loco_strict"].add(strict, truth)
        scores["loco_any"].add(_predicted(res, lab, strict_side=False)[0], truth)
        scores["hysteresis"].add(_predicted(hyst, lab, strict_side=True)[0], truth)
        scores["overlap"].add(_overlap_rule(clip.boxes, lab), truth)
        shipped = estimate_contacts(*args, template=clip.template)
        for r in (res, shipped):
            key = np.column_stack([r.frames.frame_index, r.frames.hand, r.frames.object_slot])
            duplicates += len(key) - len(np.unique(key, axis=0))
        if clip.video_id == "80962":  # the poke: the index finger (bit 1) alone, on the labelled contact frames
            poke_frames, poke_index = int(truth.sum()), int(np.sum(truth & strict & (bits == 0b00010)))
        judged = truth & (lab.fingers != "").to_numpy()
        want = lab.fingers.map(label_bits).to_numpy()
        fingers_total += int(judged.sum())
        fingers_with_row += int((judged & strict).sum())
        fingers_right += int((judged & strict & (bits == want)).sum())
        if clip.video_id in ("80962", "13201"):
            seg = res.segments
            notes_out.append(
                f"{clip.video_id}: segments (hand, slot, start-end): "
                + (
                    ", ".join(
                        f"({h}, {k}, {s}-{e})"
                        for h, k, s, e in zip(seg.hand, seg.object_slot, seg.start, seg.end, strict=True)
                    )
                    or "none"
                )  # fmt: skip
            )
    lines = [
        f"{len(clips)} labelled clips (benchmarks/data/contact_labels.csv, rows with sure = 1), real 2D stage;"
        " nested leave-one-clip-out: each clip scored by a keypoint model fitted on the other clips with the choice"
        " made by leave-one-clip-out on those (stored in the model's notes), finger radius / curl / per-segment"
        f" sets chosen on the other clips; shipped keypoint choice {notes['keypoint_choice']}; the box model is"
        " the shipped one (fitted on the phase clips only).",
        "",
        "| method | precision | recall | F1 | TP/FP/FN |",
        "|---|---|---|---|---|",
        f"| overlap rule (hand box overlaps the slot's box, any hand) | {scores['overlap'].text()} |",
        f"| unfitted rule (hysteresis), labelled hand | {scores['hysteresis'].text()} |",
        f"| fitted model, {_kind(nested)}, labelled hand | {scores['loco_strict'].text()} |",
        f"| fitted model, {_kind(nested)}, any hand | {scores['loco_any'].text()} |",
        "",
        f"Finger set exactly right on {fingers_right}/{fingers_total} labelled contact frames with fingers"
        f" ({fingers_right / max(fingers_total, 1):.0%}); {fingers_right}/{fingers_with_row} of those the model"
        " also puts in contact for the labelled hand.",
        f"80962's poke attributed to the index finger alone on {poke_index}/{poke_frames} of its labelled contact"
        f" frames ({poke_index / max(poke_frames, 1):.0%}).",
        f"Duplicate (frame, hand, slot) rows over the {len(clips)} clips (fold models and the shipped model):"
        f" {duplicates}.",
        *notes_out,
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", action="store_true", help="record in benchmarks/RESULTS.md (replaces its section)")
    ap.add_argument("--no-pixels", action="store_true", help="skip part 2 (the 2D stage on 13 clips)")
    ap.add_argument("--lift", action="store_true", help="also run the MANO lift in part 2 (not used by contacts)")
    ap.add_argument("--model-only", action="store_true", help="only the fitted model's parts")
    ap.add_argument("--results", type=Path, help="an `enrich run` output of the 13 clips to reuse (else run here)")
    args = ap.parse_args()
    data = require_shared_data()
    with tempfile.TemporaryDirectory() as tmp:
        body = "### Fitted model, box-only, leave-one-clip-out (ssv2_real2sim)\n\n" + part_model_boxes(data, Path(tmp))
        body += "\n\n### Fitted model with pixels against the contact labels\n\n"
        body += part_labels(data, Path(tmp), args.results)
        if args.model_only:
            print(body)
            if args.append:
                record_results("Hand–object contacts, fitted model (bench_contacts.py)", body)
            return
        body += "\n\n### Box-only against human phases (ssv2_real2sim)\n\n" + part_boxes(data, Path(tmp))
        if not args.no_pixels:
            body += "\n\n### Keypoints vs box-only (ssv2_something_else, 13 clips)\n\n"
            body += part_pixels(data, Path(tmp), args.lift)
    print(body)
    if args.append:
        record_results("Hand–object contacts (bench_contacts.py)", body)


if __name__ == "__main__":
    main()
