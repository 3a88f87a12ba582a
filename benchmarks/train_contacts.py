"""Fit the contact model (enrich/contact_model.py) and write enrich/data/contact_model.json.

Data (the whole list; nothing else is used):
- box-only model: the 33 clips of ../shared/data/ssv2_real2sim/phase_annots.csv with their Something-Else
  boxes (something_else_annots.json). Rows: the manipulated slot (contact_model.slot_roles) against every hand
  box; target 1 in the human "action" phase, 0 in "approach" / "leave", unused outside the phases.
- keypoint model and finger radius: benchmarks/data/contact_labels.csv (docs/contact_labels.md) on the 13 clips of
  ../shared/data/ssv2_something_else, through the real 2D stage (MediaPipe). Rows with ``sure`` 0 are unused;
  surface slots are left out of fitting (on a surface only co-motion speaks, see contact_model.py).

Choice: every knob (feature set, HMM emission bias, whether a second model splits the free phases; for the
keypoint model also L2 strength and emission scale, fixed for the box model: BOX_L2, BOX_SCALE) is chosen by
leave-one-clip-out: each clip is scored by a model fitted on the others, the best pooled F1 over clips decides
(``--one-se``: the simplest choice within one standard error, which picked the fewest features on nearly every
fold and scored 0.01 lower outer F1). The reported figures are nested: each clip
is scored by a model whose choice was made by leave-one-clip-out on the other clips (benchmarks/bench_contacts.py
recomputes them through the shipped code path). The final parameters are then chosen and fitted on all clips.
Minimum durations (2/2 frames) and the features splitting the free phases (PHASE_FEATURES) are fixed, not knobs.
One BLAS thread: 2 to 10 minutes on 2 shared cores.

    python -m benchmarks.train_contacts --results <enrich run of the 13 clips> [--write]
    python -m benchmarks.train_contacts --box-only   # the box model's nested figures alone, per clip (~7 min)
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
from threadpoolctl import threadpool_limits

from benchmarks.common import require_shared_data
from benchmarks.contact_data import (
    SIDE_CODE,
    ClipData,
    f1_of_counts,
    label_bits,
    per_clip_against_overlap,
    phase_clips,
    pixel_clips,
    read_labels,
)
from enrich import contact_model as cm
from enrich.constants import EVIDENCE_HELD, EVIDENCE_KEYPOINTS, EVIDENCE_SURFACE

_PROXIMITY = ("gap_pos", "penetration", "overlap", "obj_in_hand")
_MOTION = ("co_motion", "obj_speed", "hand_speed", "rel_speed")
_DISPLACEMENT = ("obj_moved_before", "obj_moves_after")
_CONTEXT = ("overlap_before", "overlap_after", "obj_speed_before", "obj_speed_after")
# candidate feature sets, chosen leave-one-clip-out like every other knob
BOX_SUBSETS: dict[str, tuple[str, ...]] = {
    "overlap+motion": ("gap_pos", "penetration", "overlap", "co_motion", "obj_speed"),  # the overlap rule + 2 cues
    "proximity+motion": _PROXIMITY + _MOTION,
    "+displacement+context": _PROXIMITY + _MOTION + _DISPLACEMENT + _CONTEXT,
}
KEYPOINT_SUBSETS: dict[str, tuple[str, ...]] = {
    "box+tips": ("tip_distance", "tips_inside", "keypoints_inside"),
    "box+tips+grasp+depth": ("tip_distance", "tips_inside", "keypoints_inside", "curl", "aperture", "tip_depth"),
}  # appended to the chosen box set
# the free phases told apart (contact_model.Logistic.phase): the object's motion structure, fixed (not a knob)
PHASE_FEATURES = ("obj_moved_before", "obj_moves_after", "since_motion_start", "until_motion_end", "gap_rate")
L2_GRID = (3.0, 30.0)
SCALE_GRID = (1.0, 0.5)
# the box model fixes these two (fewer knobs, issue 20): L2 30 and scale 1 were the choice of 32 of the 33 outer
# folds with them on the grid, and nested outer F1 without them was 0.9435 against 0.9427 with them
BOX_L2, BOX_SCALE = 30.0, 1.0
BIAS_GRID = (0.0, 0.5, 1.0, 1.5, 2.0)
MIN_FRAMES = (2, 2)  # min contact, min free frames: a sixth of a second, fixed (not a knob)
TIP_RADIUS_GRID = (0.05, 0.1, 0.15, 0.25, 0.4)
CURL_GRID = (1.0, 0.45, 0.3)


# ------------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------------


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


def fit_model(x: np.ndarray, y: np.ndarray, l2: float, features: tuple[str, ...], split: bool = True) -> cm.Logistic:
    """Contact against free on ``features``, and after against before among the free rows on PHASE_FEATURES
    (same L2), its prior log-odds stored apart (contact_model.Logistic.scores adds it back)."""
    contact = fit_logistic(x, y, l2, features)
    free = (y == cm.BEFORE) | (y == cm.AFTER)
    after = np.where(y[free] == cm.AFTER, cm.CONTACT, cm.BEFORE)  # fit_logistic's positive class is CONTACT
    if not split or not free.any() or np.all(after == after[0]):
        return contact
    phase = fit_logistic(x[free], after, l2, PHASE_FEATURES)
    share = float(np.mean(after == cm.CONTACT))
    return replace(contact, phase=phase, phase_prior=float(np.log(share / (1.0 - share))))


def training_rows(clips: list[ClipData], keypoints: bool) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for c in clips:
        for r, y in zip(c.rows, c.targets, strict=True):
            is_kp = bool(r["evidence"][0] & EVIDENCE_KEYPOINTS)
            surface = bool(r["evidence"][0] & EVIDENCE_SURFACE)
            held = bool(r["evidence"][0] & EVIDENCE_HELD)  # the hand standing for an unboxed object: not fitted
            if is_kp != keypoints or surface or held:
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
                runs = cm.mask_runs(known == value)
                frames[value] += sum(e - s + 1 for s, e in runs)
                exits[value] += sum(1 for _, e in runs if e + 1 < len(known))
    return tuple(frames[v] / max(exits[v], 1) for v in (cm.BEFORE, cm.CONTACT, cm.AFTER))  # type: ignore[return-value]


def decode(clip: ClipData, box: cm.Logistic, kp: cm.Logistic | None, hmm_box: cm.HmmParams, hmm_kp: cm.HmmParams,
           pairs: list[tuple[float, float]] | None = None) -> list[np.ndarray]:  # fmt: skip
    """Per row group, the decoded contact masks at its frames (what contacts._assemble does), (B, m) for B
    (emission scale, bias) pairs at once: those of the keypoint groups when ``kp`` is given, else of the box
    groups (default: the HMM's own pair). Groups that are not scored are left undecoded (all False)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, r in enumerate(clip.rows):
        groups.setdefault((r["hand"], r["slot"]), []).append(i)
    varied = hmm_kp if kp is not None else hmm_box
    pairs = pairs or [(varied.emission_scale, varied.emission_bias)]
    out = [np.zeros((len(pairs), len(r["frames"])), bool) for r in clip.rows]
    for members in groups.values():
        if not any(clip.scored[i] for i in members):
            continue
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
        hmm = hmm_kp if with_kp else hmm_box
        scales, biases = np.array(pairs, np.float64).T
        if with_kp != (kp is not None):  # box rows under a keypoint search keep the box model's own pair
            scales, biases = np.full(len(pairs), hmm.emission_scale), np.full(len(pairs), hmm.emission_bias)
        if clip.rows[members[0]]["evidence"][0] & EVIDENCE_SURFACE:  # on a surface only motion speaks
            biases = np.minimum(biases, 0.0)
        covered = cm.viterbi_masks(scores, hmm, scales, biases)
        for i in members:
            out[i] = covered[:, clip.rows[i]["frames"]]
    return out


def counts(clip: ClipData, masks: list[np.ndarray], n_pairs: int = 1) -> np.ndarray:
    """(B, 3) (tp, fp, fn) over scored row groups and known targets for each of the B decodings; phase clips per
    frame as bench_contacts scores them (any hand on the manipulated slot; action frames without a hand row are
    misses)."""
    if clip.frame_truth is not None:
        pred = np.zeros((n_pairs, clip.n_frames), bool)
        for m, r, s in zip(masks, clip.rows, clip.scored, strict=True):
            if s:
                pred[:, r["frames"]] |= m
        y = clip.frame_truth
        return np.stack([np.sum(pred & (y == 1), 1), np.sum(pred & (y == 0), 1), np.sum(~pred & (y == 1), 1)], 1)
    out = np.zeros((n_pairs, 3), np.int64)
    for m, y, s in zip(masks, clip.targets, clip.scored, strict=True):
        if not s:
            continue
        k = y >= 0
        on, hit = y[k] == cm.CONTACT, m[:, k]
        out += np.stack([np.sum(hit & on, 1), np.sum(hit & ~on, 1), np.sum(~hit & on, 1)], 1)
    return out


def f1(c: np.ndarray) -> float:
    """F1 of (tp, fp, fn) counts."""
    return f1_of_counts(c[0], c[1], c[2])


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
    phase_split: bool = True  # the free emission split into before and after (fit_model)


def feature_set(choice_features: str, keypoints: bool, box_features: tuple[str, ...] = ()) -> tuple[str, ...]:
    return box_features + KEYPOINT_SUBSETS[choice_features] if keypoints else BOX_SUBSETS[choice_features]


def fold_models(
    clips: list[ClipData], held: int, l2: float, features: tuple[str, ...], keypoints: bool, split: bool = True
) -> tuple[cm.Logistic, tuple[float, float, float]]:
    train = [c for j, c in enumerate(clips) if j != held]
    x, y = training_rows(train, keypoints)
    return fit_model(x, y, l2, features, split), mean_runs(train)


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


class Folds:
    """Models fitted on all clips but a held-out set, cached (the nested procedure asks for each pair twice),
    and the decoded counts of a clip under choices that differ only in the HMM's emission scale and bias (one
    fit, one decoding pass for all). The keypoint model takes its phase durations from the box model's (the 33
    phase clips): durations are the clip's structure, not the observation's."""

    def __init__(self, clips: list[ClipData], keypoints: bool, box: cm.Logistic | None = None,
                 hmm_box: cm.HmmParams | None = None) -> None:  # fmt: skip
        self.clips, self.keypoints, self.box, self.hmm_box = clips, keypoints, box, hmm_box
        self._fits: dict[tuple[frozenset[int], str, float, bool], cm.Logistic] = {}
        self._means: dict[frozenset[int], tuple[float, float, float]] = {}
        self._rows: tuple = (None, None, None)  # (held set, features, targets)

    def fit(self, held: frozenset[int], name: str, l2: float, split: bool) -> tuple[
            cm.Logistic, tuple[float, float, float]]:  # fmt: skip
        key = (held, name, l2, split)
        if key not in self._fits:
            if self._rows[0] != held:  # the grid asks for one held-out set at a time: keep its rows only
                train = [c for k, c in enumerate(self.clips) if k not in held]
                self._rows = (held, *training_rows(train, self.keypoints))
                if held not in self._means:
                    self._means[held] = mean_runs(train)
            features = feature_set(name, self.keypoints, self.box.features if self.box is not None else ())
            self._fits[key] = fit_model(self._rows[1], self._rows[2], l2, features, split)
        return self._fits[key], self._means[held]

    def counts(self, j: int, held: frozenset[int], choices: list[Choice]) -> np.ndarray:
        """(B, 3) (tp, fp, fn) of clip j decoded by the model fitted without the clips in ``held`` under each of
        the B ``choices`` (the same but for emission scale and bias)."""
        logistic, means = self.fit(held, choices[0].features, choices[0].l2, choices[0].phase_split)
        clip, pairs = self.clips[j], [(c.emission_scale, c.emission_bias) for c in choices]
        if self.keypoints:
            hmm = hmm_of(choices[0], _durations(self.hmm_box))
            return counts(clip, decode(clip, self.box, logistic, self.hmm_box, hmm, pairs), len(pairs))
        hmm = hmm_of(choices[0], means)
        return counts(clip, decode(clip, logistic, None, hmm, hmm, pairs), len(pairs))


def candidates(keypoints: bool) -> list[Choice]:
    """The grid, simplest first: fewer features, stronger L2, no bias, unscaled emissions."""
    subsets = KEYPOINT_SUBSETS if keypoints else BOX_SUBSETS
    grid = [
        Choice(n, l2, sc, b, *MIN_FRAMES, phase_split=split)
        for n in subsets
        for l2 in (L2_GRID if keypoints else (BOX_L2,))
        for b in BIAS_GRID
        for sc in (SCALE_GRID if keypoints else (BOX_SCALE,))
        for split in (False, True)
    ]
    return sorted(
        grid,
        key=lambda c: (len(subsets[c.features]), c.phase_split, -c.l2, abs(c.emission_bias), abs(c.emission_scale - 1)),
    )


def _clip_f1(per: np.ndarray) -> np.ndarray:
    """(n,) F1 of each clip's (tp, fp, fn); NaN for clips without positives (no F1 to speak of)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(per[:, 0] + per[:, 2] > 0, 2 * per[:, 0] / (2 * per[:, 0] + per[:, 1] + per[:, 2]), np.nan)


ONE_SE_RULE = [False]  # main(--one-se) turns the one-standard-error rule on (default: the best pooled F1 wins)


def _fit_key(c: Choice) -> tuple:
    """What a choice shares with others decoded in the same pass: all but the emission scale and bias."""
    return c.features, c.l2, c.min_contact, c.min_free, c.max_gap, c.before_floor, c.phase_split


def per_clip_counts(folds: Folds, clips: list[int], grid: list[Choice], outer: frozenset[int]) -> dict[
        Choice, np.ndarray]:  # fmt: skip
    """Per choice, (len(clips), 3) counts of each clip decoded by a model fitted without it and ``outer``."""
    groups: dict[tuple, list[Choice]] = {}
    for c in grid:
        groups.setdefault(_fit_key(c), []).append(c)
    per: dict[Choice, np.ndarray] = {}
    for members in groups.values():
        arr = np.array([folds.counts(i, outer | {i}, members) for i in clips])  # (clips, B, 3)
        per.update({c: arr[:, k] for k, c in enumerate(members)})
    return per


def choose(folds: Folds, train: list[int], grid: list[Choice], outer: frozenset[int] = frozenset()) -> tuple[
        Choice, pd.DataFrame]:  # fmt: skip
    """Leave-one-clip-out over ``train`` (each clip decoded by a model fitted without it and without ``outer``).

    One-standard-error rule: the simplest choice (``grid`` is ordered simplest first) whose pooled F1 is within
    one standard error of the best's, the error from the per-clip F1 differences: a choice that wins by less
    than the clips disagree is noise."""
    per = per_clip_counts(folds, train, grid, outer)
    pooled = {c: f1(p.sum(axis=0)) for c, p in per.items()}
    best = max(grid, key=lambda c: pooled[c])
    top = _clip_f1(per[best])

    def close(c: Choice) -> bool:
        diff = top - _clip_f1(per[c])
        diff = diff[np.isfinite(diff)]
        se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0
        return pooled[c] >= pooled[best] - se

    chosen = next(c for c in grid if close(c)) if ONE_SE_RULE[0] else best
    table = pd.DataFrame(
        [{**asdict(c), "F1": pooled[c], **dict(zip(("tp", "fp", "fn"), per[c].sum(axis=0), strict=True))} for c in grid]
    )
    return chosen, table


def nested(folds: Folds, grid: list[Choice]) -> tuple[np.ndarray, list[Choice]]:
    """Nested leave-one-clip-out: for each clip, the choice made by leave-one-clip-out on the others, a model
    with that choice fitted on the others, scored on the clip. Returns (n, 3) held-out counts and the choices.
    The inner folds run held-out pair by held-out pair: a fit without clips {i, j} serves clip i's inner fold
    in outer fold j and clip j's in outer fold i."""
    n = len(folds.clips)
    out, chosen = np.zeros((n, 3)), []
    for j in range(n):
        choice, _ = choose(folds, [i for i in range(n) if i != j], grid, frozenset({j}))
        out[j] = folds.counts(j, frozenset({j}), [choice])[0]
        chosen.append(choice)
    return out, chosen


def _durations(hmm: cm.HmmParams) -> tuple[float, float, float]:
    return hmm.mean_before_frames, hmm.mean_contact_frames, hmm.mean_after_frames


def fit_all(
    clips: list[ClipData], choice: Choice, keypoints: bool, box_features: tuple[str, ...] = ()
) -> tuple[cm.Logistic, cm.HmmParams]:
    x, y = training_rows(clips, keypoints)
    logistic = fit_model(x, y, choice.l2, feature_set(choice.features, keypoints, box_features), choice.phase_split)
    return logistic, hmm_of(choice, mean_runs(clips))


def finger_rows(clips: list[ClipData], labels: pd.DataFrame, radius: float, curl_max: float,
                segment: bool = False) -> tuple[int, int]:  # fmt: skip
    """(exact finger sets, labelled contact frames with fingers) over the rows of the labelled hand and slot:
    the finger rule applied to every such frame, whatever the contact decision. Box-only rows of that hand
    (a detection below the contacts' presence threshold, a box continuing the track) are scored too, with no
    set of their own, as ``enrich`` gives them: without ``segment`` they are wrong, with it they carry the
    run's set. ``segment``: each run of labelled contact frames gets the commonest set of all the pair's rows
    inside it (contact_model.segment_fingers, as contacts._assemble pools them); the labels are those of the
    training clips, so this uses nothing of a held-out clip."""
    right = total = 0
    ok = labels[(labels.in_contact == 1) & (labels.sure == 1)]
    for c in clips:
        mine = ok[ok.video_id == c.video_id]
        for hand, slot in {(r["hand"], r["slot"]) for r in c.rows if r["hand"] in SIDE_CODE.values()}:
            pair = mine[(mine.object_slot == slot) & (mine.hand.map(SIDE_CODE) == hand)]
            judged = pair[pair.fingers != ""]
            if judged.empty:
                continue
            rows = [r for r in c.rows if (r["hand"], r["slot"]) == (hand, slot)]
            frames = np.concatenate([r["frames"] for r in rows])
            bits = np.concatenate([
                cm.finger_bits(r["tips"], r["curl"], radius, curl_max) if r["tips"] is not None
                else np.zeros(len(r["frames"]), np.uint8)
                for r in rows
            ])  # fmt: skip
            if segment:
                bits = _segment_sets(frames, bits, pair.frame_index.to_numpy())
            want = dict(zip(judged.frame_index, judged.fingers.map(label_bits), strict=True))
            for t, b in zip(frames.tolist(), bits.tolist(), strict=True):
                if t in want:
                    total += 1
                    right += int(b == want[t])
    return right, total


def _segment_sets(frames: np.ndarray, bits: np.ndarray, contact_frames: np.ndarray) -> np.ndarray:
    """Per run of consecutive contact frames, the run's commonest set on the rows inside it."""
    dense = np.zeros(int(max(frames.max(initial=0), contact_frames.max(initial=0))) + 2, bool)
    dense[contact_frames] = True
    out = bits.copy()
    for s, e in cm.mask_runs(dense):
        inside = (frames >= s) & (frames <= e)
        out[inside] = cm.segment_fingers(bits[inside])
    return out


def select_fingers(clips: list[ClipData], labels: pd.DataFrame) -> tuple[float, float, bool, pd.DataFrame]:
    """Finger radius, curl limit and per-segment sets on a grid; the best exact-set share wins (reported with
    the leave-one-clip-out share of the same rule in bench_contacts.py). Ties: the first, simplest point."""
    table = []
    for segment, radius, curl in itertools.product((False, True), TIP_RADIUS_GRID, CURL_GRID):
        right, total = finger_rows(clips, labels, radius, curl, segment)
        table.append({"segment": segment, "tip_radius_hand": radius, "curl_max": curl, "right": right, "total": total})
    t = pd.DataFrame(table)
    t["share"] = t.right / t.total.clip(lower=1)
    best = t.iloc[int(t.share.values.argmax())]
    return float(best.tip_radius_hand), float(best.curl_max), bool(best.segment), t


def model_dict(box: cm.Logistic, hmm_box: cm.HmmParams, kp: cm.Logistic, hmm_kp: cm.HmmParams, radius: float,
               curl: float, segment: bool, notes: dict) -> dict:  # fmt: skip
    return {
        "box": box.to_dict(),
        "keypoints": kp.to_dict(),
        "hmm_box": asdict(hmm_box),
        "hmm_keypoints": asdict(hmm_kp),
        "tip_radius_hand": radius,
        "curl_max": curl,
        "segment_fingers": segment,
        "surface_share": cm.ContactModel.surface_share,
        "notes": notes,
    }


def _summary(clips: list[ClipData], outer: np.ndarray, chosen: list[Choice]) -> dict:
    """The outer figures and each held-out clip's choice (bench_contacts.py scores those folds again through
    the shipped code path)."""
    tot = outer.sum(axis=0)
    return {
        "f1": round(f1(tot), 4),
        "precision": round(float(tot[0] / max(tot[0] + tot[1], 1)), 4),
        "recall": round(float(tot[0] / max(tot[0] + tot[2], 1)), 4),
        "choices": {c.video_id: asdict(ch) for c, ch in zip(clips, chosen, strict=True)},
    }


def train(data: Path, cache: Path, results: Path | None = None) -> tuple[dict, dict]:
    """Nested leave-one-clip-out figures first (the honest ones), then the choice by leave-one-clip-out on all
    clips and the final fit on all of them (what is shipped)."""
    phases = phase_clips(data, cache)
    box_folds, box_cands = Folds(phases, keypoints=False), candidates(keypoints=False)
    box_outer, box_chosen = nested(box_folds, box_cands)
    box_choice, box_grid = choose(box_folds, list(range(len(phases))), box_cands)
    box, hmm_box = fit_all(phases, box_choice, keypoints=False)
    labels = read_labels()
    pixels = pixel_clips(data, cache, labels, results)
    kp_folds, kp_cands = Folds(pixels, keypoints=True, box=box, hmm_box=hmm_box), candidates(keypoints=True)
    kp_outer, kp_chosen = nested(kp_folds, kp_cands)
    kp_choice, kp_grid = choose(kp_folds, list(range(len(pixels))), kp_cands)
    kp, _ = fit_all(pixels, kp_choice, keypoints=True, box_features=box.features)
    hmm_kp = hmm_of(kp_choice, _durations(hmm_box))
    radius, curl, segment, finger_grid = select_fingers(pixels, labels)
    rule = "one-standard-error rule, simplest first" if ONE_SE_RULE[0] else "best pooled F1"
    notes = {
        "data": ["ssv2_real2sim/phase_annots.csv (33 clips)", "ssv2_real2sim/something_else_annots.json",
                 "benchmarks/data/contact_labels.csv", "ssv2_something_else (frames, annotations.json)"],
        "procedure": f"choices by leave-one-clip-out on all clips ({rule}), final fit on all clips; the free"
                     " phases split by PHASE_FEATURES; nested_* are the outer figures of nested leave-one-clip-out",
        "box_choice": asdict(box_choice),
        "keypoint_choice": asdict(kp_choice),
        "nested_box_only_phase_clips": _summary(phases, box_outer, box_chosen),
        "nested_keypoints_labels": _summary(pixels, kp_outer, kp_chosen),
    }  # fmt: skip
    report = {"box_grid": box_grid, "kp_grid": kp_grid, "finger_grid": finger_grid}
    return model_dict(box, hmm_box, kp, hmm_kp, radius, curl, segment, notes), report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help=f"write {cm.MODEL_PATH}")
    ap.add_argument("--out", type=Path, default=cm.MODEL_PATH, help="where --write writes the model")
    ap.add_argument("--one-se", action="store_true", help="the one-standard-error rule (default: the best pooled F1)")
    ap.add_argument("--results", type=Path, help="an `enrich run` output of the 13 clips (else 2D + lift run here)")
    ap.add_argument("--box-only", action="store_true", help="only the box model's nested figures (writes nothing)")
    args = ap.parse_args()
    data = require_shared_data()
    ONE_SE_RULE[0] = args.one_se
    # one BLAS thread: the fits are small, and a pool of spinning threads made L-BFGS ten times slower on a
    # shared machine (the nested run did not finish)
    threadpool_limits(1)
    if args.box_only:
        with tempfile.TemporaryDirectory() as tmp:
            phases = phase_clips(data, Path(tmp))
        outer, chosen = nested(Folds(phases, keypoints=False), candidates(keypoints=False))
        print(json.dumps({k: v for k, v in _summary(phases, outer, chosen).items() if k != "choices"}))
        print(per_clip_against_overlap(phases, outer))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model, report = train(data, Path(tmp), args.results)
    for name, table in report.items():
        print(name, "\n", table.sort_values(table.columns[-1] if name == "finger_grid" else "F1").tail(8).to_string())
    print(json.dumps(model["notes"], indent=1))
    if args.write:
        args.out.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
