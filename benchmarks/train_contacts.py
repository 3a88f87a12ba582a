"""Fit the contact model (enrich/contact_model.py) and write enrich/data/contact_model.json.

Data (the whole list; nothing else is used):
- box-only model: the 33 clips of ../shared/data/ssv2_real2sim/phase_annots.csv with their Something-Else
  boxes (something_else_annots.json). Rows: the manipulated slot (contact_model.slot_roles) against every hand
  box; target 1 in the human "action" phase, 0 in "approach" / "leave", unused outside the phases.
- keypoint model and finger radius: benchmarks/data/contact_labels.csv (docs/contact_labels.md) on the 13 clips of
  ../shared/data/ssv2_something_else, through the real 2D stage (MediaPipe). Rows with ``sure`` 0 are unused;
  surface slots are left out of fitting (on a surface only co-motion speaks, see contact_model.py).

Choice: every hyper-parameter (L2 strength, HMM emission scale and bias, minimum durations, finger radius) is
chosen by leave-one-clip-out: each clip is scored by a model fitted on the others, pooled F1 over clips
decides. The reported figures are those held-out scores (benchmarks/bench_contacts.py recomputes them through
the shipped code path). The final parameters are then fitted on all clips.

    python -m benchmarks.train_contacts [--write]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from benchmarks.common import require_shared_data
from enrich import contact_model as cm
from enrich.constants import EVIDENCE_KEYPOINTS, EVIDENCE_SURFACE, HAND_SLOT
from enrich.contacts import ContactConfig, feature_rows
from enrich.inputs import load_boxes, official_class_names
from enrich.records import ClipBoxes, ClipTracks

LABELS = Path(__file__).parent / "data" / "contact_labels.csv"
SAMPLES_METADATA = Path(__file__).parent.parent / "samples" / "ssv2_metadata.json"
SIDE_CODE = {"left": 0, "right": 1}
FEATURE_CONFIG = ContactConfig(method="hysteresis")  # feature rows need no fitted model

_PROXIMITY = ("gap_pos", "penetration", "overlap", "obj_in_hand")
_MOTION = ("co_motion", "obj_speed", "hand_speed", "rel_speed")
_DISPLACEMENT = ("obj_moved_before", "obj_moves_after")
_STRUCTURE = ("scale_co_motion", "gap_rate", "since_motion_start", "until_motion_end")
_CONTEXT = ("overlap_before", "overlap_after", "obj_speed_before", "obj_speed_after")
# candidate feature sets, chosen leave-one-clip-out like every other knob
BOX_SUBSETS: dict[str, tuple[str, ...]] = {
    "proximity+motion": _PROXIMITY + _MOTION,
    "+displacement": _PROXIMITY + _MOTION + _DISPLACEMENT,
    "+displacement+structure": _PROXIMITY + _MOTION + _DISPLACEMENT + _STRUCTURE,
    "+displacement+context": _PROXIMITY + _MOTION + _DISPLACEMENT + _CONTEXT,
}
KEYPOINT_SUBSETS: dict[str, tuple[str, ...]] = {
    "box+tips": ("tip_distance", "tips_inside", "keypoints_inside"),
    "box+tips+grasp+depth": ("tip_distance", "tips_inside", "keypoints_inside", "curl", "aperture", "tip_depth"),
}  # appended to the chosen box set
L2_GRID = (3.0, 30.0)
SCALE_GRID = (0.5, 1.0)
BIAS_GRID = (-0.5, 0.0, 0.5, 1.0, 1.5)
MIN_GRID = ((2, 2), (3, 3))  # (min contact, min free) frames
GAP_GRID = (0,)
BEFORE_FLOOR_GRID = (0.0, 12.0, 36.0)  # frames: the phase clips' approaches are short (rows start with the hand)
TIP_RADIUS_GRID = (0.05, 0.1, 0.15, 0.25, 0.4)
CURL_GRID = (1.0, 0.45, 0.3)


@dataclass
class ClipData:
    """Feature rows of one clip with a dense target per row group: 1 contact, 0 free, -1 unused."""

    video_id: str
    n_frames: int
    boxes: ClipBoxes
    tracks: ClipTracks | None
    width: int | None
    height: int | None
    rows: list[dict]
    targets: list[np.ndarray]  # per row group, at rows[i]["frames"]: contact_model.BEFORE/CONTACT/AFTER, -1 unused
    scored: list[bool]  # per row group: counts in the score (manipulated slot / labelled pair)
    frame_truth: np.ndarray | None = None  # (n,) phase clips: 1 action, 0 approach/leave, -1 outside
    template: str = ""  # SSv2 template when known (tells the manipulated slot from places and surfaces)


# ------------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------------


def phase_clips(data: Path, cache: Path) -> list[ClipData]:
    from benchmarks.bench_contacts import _n_frames, read_phases

    root = data / "ssv2_real2sim"
    index = load_boxes([root / "something_else_annots.json"], cache_dir=cache)
    names = official_class_names()
    out = []
    for ph in read_phases(root / "phase_annots.csv"):
        boxes = index.get(ph.video_id)
        n = _n_frames(ph, boxes)
        template = names[ph.action_id]
        rows = feature_rows(None, boxes, n, None, None, FEATURE_CONFIG, template)
        manipulated = _manipulated(boxes, None, None, template)
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


def _manipulated(boxes: ClipBoxes, width: int | None, height: int | None, template: str) -> int:
    obj = boxes.slot != HAND_SLOT
    share = cm.ContactModel.surface_share
    roles = cm.slot_roles(boxes.slot[obj], boxes.box_xyxy_px[obj], width, height, share, template)
    return next((s for s, r in roles.items() if r == cm.ROLE_MANIPULATED), -99)


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


def _tracks(root: Path, results: Path | None, wanted: set[str], cache: Path) -> list[tuple[str, ClipTracks]]:
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


# ------------------------------------------------------------------------------------------------------
# fitting
# ------------------------------------------------------------------------------------------------------


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, features: tuple[str, ...]) -> cm.Logistic:
    """L2-regularised logistic regression (contact against free) on standardised features; the stored bias
    is the log-likelihood ratio's (the training prior's log-odds taken out): the HMM carries the priors."""
    y = (y == cm.CONTACT).astype(np.float64)
    x = x[:, [cm.KEYPOINT_FEATURES.index(f) for f in features]]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z1 = np.column_stack([(x - mean) / scale, np.ones(len(x))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = z1 @ w
        grad = z1.T @ (1.0 / (1.0 + np.exp(-s)) - y)
        grad[:-1] += l2 * w[:-1]
        return float(np.sum(np.logaddexp(0.0, s) - y * s) + 0.5 * l2 * np.sum(w[:-1] ** 2)), grad

    w = minimize(loss, np.zeros(z1.shape[1]), jac=True, method="L-BFGS-B").x
    prior = np.log(max(y.mean(), 1e-6) / max(1.0 - y.mean(), 1e-6))
    return cm.Logistic(features, mean, scale, w[:-1], float(w[-1] - prior))


def training_rows(clips: list[ClipData], keypoints: bool) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for c in clips:
        for r, y in zip(c.rows, c.targets, strict=True):
            is_kp = bool(r["evidence"][0] & EVIDENCE_KEYPOINTS)
            surface = bool(r["evidence"][0] & EVIDENCE_SURFACE)
            if is_kp != keypoints or surface:
                continue
            xs.append(r["features"][y >= 0])
            ys.append(y[y >= 0])
    n_feat = len(cm.KEYPOINT_FEATURES if keypoints else cm.BOX_FEATURES)
    return np.concatenate(xs + [np.zeros((0, n_feat))]), np.concatenate(ys + [np.zeros(0)])


def mean_runs(clips: list[ClipData]) -> tuple[float, float, float]:
    """Mean before, contact and after durations (frames): frames in the phase over the runs that end in
    another phase. Runs cut by the end of the clip or of the rows still count their frames (the maximum-
    likelihood mean of a geometric duration with censoring): a release usually lasts to the clip's end."""
    frames = dict.fromkeys((cm.BEFORE, cm.CONTACT, cm.AFTER), 0)
    exits = dict.fromkeys((cm.BEFORE, cm.CONTACT, cm.AFTER), 0)
    for c in clips:
        for y in c.targets:
            known = y[y >= 0]
            for value in frames:
                runs = cm._runs(known == value)
                frames[value] += sum(e - s + 1 for s, e in runs)
                exits[value] += sum(1 for _, e in runs if e + 1 < len(known))
    return tuple(frames[v] / max(exits[v], 1) for v in (cm.BEFORE, cm.CONTACT, cm.AFTER))  # type: ignore[return-value]


def decode(clip: ClipData, box: cm.Logistic, kp: cm.Logistic | None, hmm_box: cm.HmmParams,
           hmm_kp: cm.HmmParams) -> list[np.ndarray]:  # fmt: skip
    """Per row group, the decoded contact mask at its frames (what contacts._assemble does)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(clip.rows):
        groups.setdefault((r["hand"], r["slot"]), []).append(i)
    out: list[np.ndarray] = [np.zeros(0, bool)] * len(clip.rows)
    for members in groups.values():
        dense = np.full(clip.n_frames, -np.inf)
        scores = np.full((clip.n_frames, 3), np.nan)
        with_kp = False
        for i in members:
            r = clip.rows[i]
            is_kp = bool(r["evidence"][0] & EVIDENCE_KEYPOINTS) and kp is not None
            with_kp |= is_kp
            model = kp if is_kp else box
            surface = bool(r["evidence"][0] & EVIDENCE_SURFACE)
            logit, sc = model.row_logit(r["features"], surface), model.scores(r["features"], surface)
            best = logit >= dense[r["frames"]]
            dense[r["frames"][best]] = logit[best]
            scores[r["frames"][best]] = sc[best]
        covered = np.zeros(clip.n_frames, bool)
        hmm = hmm_kp if with_kp else hmm_box
        if clip.rows[members[0]]["evidence"][0] & EVIDENCE_SURFACE:
            hmm = replace(hmm, emission_bias=min(hmm.emission_bias, 0.0))
        for s, e in cm.viterbi_segments(scores, hmm):
            covered[s : e + 1] = True
        for i in members:
            out[i] = covered[clip.rows[i]["frames"]]
    return out


def counts(clip: ClipData, masks: list[np.ndarray]) -> np.ndarray:
    """(tp, fp, fn) over scored row groups and known targets; phase clips per frame as bench_contacts scores
    them (any hand on the manipulated slot; action frames without a hand row are misses)."""
    if clip.frame_truth is not None:
        pred = np.zeros(clip.n_frames, bool)
        for m, r, s in zip(masks, clip.rows, clip.scored, strict=True):
            if s:
                pred[r["frames"][m]] = True
        y = clip.frame_truth
        return np.array([np.sum(pred & (y == 1)), np.sum(pred & (y == 0)), np.sum(~pred & (y == 1))])
    tp = fp = fn = 0
    for m, y, s in zip(masks, clip.targets, clip.scored, strict=True):
        if not s:
            continue
        k = y >= 0
        tp += int(np.sum(m[k] & (y[k] == cm.CONTACT)))
        fp += int(np.sum(m[k] & (y[k] != cm.CONTACT)))
        fn += int(np.sum(~m[k] & (y[k] == cm.CONTACT)))
    return np.array([tp, fp, fn])


def f1(c: np.ndarray) -> float:
    return float(2 * c[0] / max(2 * c[0] + c[1] + c[2], 1))


# ------------------------------------------------------------------------------------------------------
# leave-one-clip-out selection
# ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    features: str  # a key of BOX_SUBSETS / KEYPOINT_SUBSETS
    l2: float
    emission_scale: float
    emission_bias: float
    min_contact: int
    min_free: int
    max_gap: int = 0
    before_floor: float = 0.0  # the before phase's mean duration is at least this (frames)


def feature_set(choice_features: str, keypoints: bool, box_features: tuple[str, ...] = ()) -> tuple[str, ...]:
    return box_features + KEYPOINT_SUBSETS[choice_features] if keypoints else BOX_SUBSETS[choice_features]


def fold_models(
    clips: list[ClipData], held: int, l2: float, features: tuple[str, ...], keypoints: bool
) -> tuple[cm.Logistic, tuple[float, float, float]]:
    train = [c for j, c in enumerate(clips) if j != held]
    x, y = training_rows(train, keypoints)
    return fit_logistic(x, y, l2, features), mean_runs(train)


def hmm_of(choice: Choice, means: tuple[float, float, float]) -> cm.HmmParams:
    before, on, after = means
    return cm.HmmParams(
        choice.min_contact,
        choice.min_free,
        max(before, choice.before_floor),
        on,
        after,
        choice.emission_bias,
        choice.emission_scale,
        choice.max_gap,
    )


def select(clips: list[ClipData], keypoints: bool, box: cm.Logistic | None = None,
           hmm_box: cm.HmmParams | None = None) -> tuple[Choice, pd.DataFrame]:  # fmt: skip
    """Every grid point scored leave-one-clip-out (pooled tp/fp/fn of held-out clips); the best F1 wins.

    The keypoint model takes its phase durations from the box model's (the 33 phase clips): durations are
    the clip's structure, not the observation's, and the labelled rows end where the hand leaves the view."""
    table = []
    per_point: dict[Choice, np.ndarray] = {}
    subsets = KEYPOINT_SUBSETS if keypoints else BOX_SUBSETS
    for name, l2 in itertools.product(subsets, L2_GRID):
        features = feature_set(name, keypoints, box.features if box is not None else ())
        fits = [fold_models(clips, j, l2, features, keypoints) for j in range(len(clips))]
        grid = itertools.product(SCALE_GRID, BIAS_GRID, MIN_GRID, GAP_GRID, BEFORE_FLOOR_GRID)
        for scale, bias, (mc, mf), gap, floor in grid:
            choice = Choice(name, l2, scale, bias, mc, mf, gap, floor)
            total = np.zeros(3)
            for j, clip in enumerate(clips):
                logistic, means = fits[j]
                hmm = hmm_of(choice, _durations(hmm_box) if keypoints else means)
                if keypoints:
                    masks = decode(clip, box, logistic, hmm_box, hmm)
                else:
                    masks = decode(clip, logistic, None, hmm, hmm)
                total += counts(clip, masks)
            per_point[choice] = total
            table.append({**asdict(choice), "F1": f1(total), "tp": total[0], "fp": total[1], "fn": total[2]})
    best = max(per_point, key=lambda c: f1(per_point[c]))
    return best, pd.DataFrame(table)


def _durations(hmm: cm.HmmParams) -> tuple[float, float, float]:
    return hmm.mean_before_frames, hmm.mean_contact_frames, hmm.mean_after_frames


def fit_all(
    clips: list[ClipData], choice: Choice, keypoints: bool, box_features: tuple[str, ...] = ()
) -> tuple[cm.Logistic, cm.HmmParams]:
    x, y = training_rows(clips, keypoints)
    logistic = fit_logistic(x, y, choice.l2, feature_set(choice.features, keypoints, box_features))
    return logistic, hmm_of(choice, mean_runs(clips))


FINGER_LETTERS = "TIMRP"


def label_bits(letters: str) -> int:
    return sum(1 << FINGER_LETTERS.index(ch) for ch in letters)


def finger_rows(clips: list[ClipData], labels: pd.DataFrame, radius: float, curl_max: float) -> tuple[int, int]:
    """(exact finger sets, labelled contact frames with fingers) over keypoint rows of the labelled hand and
    slot: the finger rule applied to every such frame, whatever the contact decision."""
    right = total = 0
    lab = labels[(labels.in_contact == 1) & (labels.fingers != "") & (labels.sure == 1)]
    for c in clips:
        mine = lab[lab.video_id == c.video_id]
        for r in c.rows:
            if r["tips"] is None or r["hand"] not in SIDE_CODE.values():
                continue
            want = mine[(mine.object_slot == r["slot"]) & (mine.hand.map(SIDE_CODE) == r["hand"])]
            want = dict(zip(want.frame_index, want.fingers.map(label_bits), strict=True))
            bits = cm.finger_bits(r["tips"], r["curl"], radius, curl_max)
            for t, b in zip(r["frames"].tolist(), bits.tolist(), strict=True):
                if t in want:
                    total += 1
                    right += int(b == want[t])
    return right, total


def select_fingers(clips: list[ClipData], labels: pd.DataFrame) -> tuple[float, float, pd.DataFrame]:
    """Finger radius and curl limit: two numbers on a grid; the best exact-set share wins (reported with the
    leave-one-clip-out share of the same rule in bench_contacts.py)."""
    table = []
    for radius, curl in itertools.product(TIP_RADIUS_GRID, CURL_GRID):
        right, total = finger_rows(clips, labels, radius, curl)
        table.append({"tip_radius_hand": radius, "curl_max": curl, "right": right, "total": total})
    t = pd.DataFrame(table)
    t["share"] = t.right / t.total.clip(lower=1)
    best = t.iloc[int(t.share.values.argmax())]
    return float(best.tip_radius_hand), float(best.curl_max), t


def model_dict(box: cm.Logistic, hmm_box: cm.HmmParams, kp: cm.Logistic, hmm_kp: cm.HmmParams, radius: float,
               curl: float, notes: dict) -> dict:  # fmt: skip
    return {
        "box": box.to_dict(),
        "keypoints": kp.to_dict(),
        "hmm_box": asdict(hmm_box),
        "hmm_keypoints": asdict(hmm_kp),
        "tip_radius_hand": radius,
        "curl_max": curl,
        "surface_share": cm.ContactModel.surface_share,
        "notes": notes,
    }


def train(data: Path, cache: Path, results: Path | None = None) -> tuple[dict, dict]:
    phases = phase_clips(data, cache)
    box_choice, box_grid = select(phases, keypoints=False)
    box, hmm_box = fit_all(phases, box_choice, keypoints=False)
    labels = read_labels()
    pixels = pixel_clips(data, cache, labels, results)
    kp_choice, kp_grid = select(pixels, keypoints=True, box=box, hmm_box=hmm_box)
    kp, hmm_kp = fit_all(pixels, kp_choice, keypoints=True, box_features=box.features)
    hmm_kp = hmm_of(kp_choice, _durations(hmm_box))
    radius, curl, finger_grid = select_fingers(pixels, labels)
    best_box = box_grid.F1.max()
    best_kp = kp_grid.F1.max()
    notes = {
        "data": ["ssv2_real2sim/phase_annots.csv (33 clips)", "ssv2_real2sim/something_else_annots.json",
                 "benchmarks/data/contact_labels.csv", "ssv2_something_else (frames, annotations.json)"],
        "box_choice": asdict(box_choice),
        "keypoint_choice": asdict(kp_choice),
        "loco_f1_box_only_phase_clips": round(float(best_box), 4),
        "loco_f1_keypoints_labels": round(float(best_kp), 4),
    }  # fmt: skip
    report = {"box_grid": box_grid, "kp_grid": kp_grid, "finger_grid": finger_grid}
    return model_dict(box, hmm_box, kp, hmm_kp, radius, curl, notes), report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"write {cm.MODEL_PATH}")
    ap.add_argument("--results", type=Path, help="an `enrich run` output of the 13 clips (else 2D + lift run here)")
    args = ap.parse_args()
    data = require_shared_data()
    with tempfile.TemporaryDirectory() as tmp:
        model, report = train(data, Path(tmp), args.results)
    for name, table in report.items():
        print(name, "\n", table.sort_values(table.columns[-1] if name == "finger_grid" else "F1").tail(8).to_string())
    print(json.dumps(model["notes"], indent=1))
    if args.write:
        cm.MODEL_PATH.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {cm.MODEL_PATH}")


if __name__ == "__main__":
    main()
