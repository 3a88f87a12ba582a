"""The fitted contact model: HMM decoding, slot roles, finger sets, the shipped parameters, and the samples
against the human contact labels (benchmarks/data/contact_labels.csv)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from enrich import contact_model as cm
from enrich.constants import (
    EVIDENCE_HELD,
    EVIDENCE_MANIPULATED,
    EVIDENCE_SIDE_CONTINUED,
    EVIDENCE_SURFACE,
    HAND_SLOT,
)
from enrich.contacts import box_only_contacts, estimate_contacts
from enrich.records import ClipBoxes, ClipHands, HandTrack

REPO_LABELS = cm.MODEL_PATH.parents[2] / "benchmarks" / "data" / "contact_labels.csv"
HMM = cm.HmmParams(min_contact_frames=3, min_free_frames=3, mean_before_frames=20, mean_contact_frames=20,
                   mean_after_frames=40)  # fmt: skip


def scores(logit: np.ndarray) -> np.ndarray:
    logit = np.asarray(logit, float)
    zero = np.where(np.isnan(logit), np.nan, 0.0)
    return np.column_stack([zero, logit, zero])


# ---------------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------------


def test_viterbi_finds_the_evidence_run_and_drops_a_blip() -> None:
    lr = np.full(40, -2.0)
    lr[10:25] = 2.0
    lr[33] = 3.0  # one frame: shorter than the minimum contact, and not worth two transitions
    assert cm.viterbi_segments(scores(lr), HMM) == [(10, 24)]


def test_viterbi_bridges_a_flicker_inside_a_contact() -> None:
    lr = np.full(40, -2.0)
    lr[5:30] = 2.0
    lr[17] = -2.0  # one doubtful frame: a release would have to last min_free_frames
    assert cm.viterbi_segments(scores(lr), HMM) == [(5, 29)]


def test_viterbi_no_contact_where_the_pair_has_no_row() -> None:
    lr = np.full(30, 3.0)
    lr[10:14] = np.nan  # hand unseen: contact impossible there
    segs = cm.viterbi_segments(scores(lr), HMM)
    assert all(not (s <= t <= e) for s, e in segs for t in range(10, 14))
    assert cm.viterbi_segments(scores(np.full(10, np.nan)), HMM) == []


def test_viterbi_a_clip_may_start_in_contact_but_for_the_minimum() -> None:
    lr = np.full(30, -3.0)
    lr[:2] = 0.5  # two weak frames at the start: a contact would have to take a clearly free third one
    assert cm.viterbi_segments(scores(lr), HMM) == []
    lr[:6] = 3.0
    assert cm.viterbi_segments(scores(lr), HMM) == [(0, 5)]


def test_viterbi_many_scales_and_biases_at_once_decode_as_one_at_a_time() -> None:
    """The trainer decodes a sequence under every (emission scale, bias) of its grid in one pass."""
    lr = np.sin(np.arange(50) / 4.0) * 3.0 + np.random.default_rng(0).normal(0.0, 1.5, 50)
    lr[20:23] = np.nan
    pairs = [(1.0, 0.0), (0.5, 1.5), (1.0, -2.0), (0.25, 4.0)]
    masks = cm.viterbi_masks(scores(lr), HMM, *zip(*pairs, strict=True))
    for mask, (scale, bias) in zip(masks, pairs, strict=True):
        one = cm.HmmParams(**{**HMM.__dict__, "emission_scale": scale, "emission_bias": bias})
        assert cm.mask_runs(mask) == cm.viterbi_segments(scores(lr), one)
    assert len({m.tobytes() for m in masks}) > 1  # the pairs do decode differently


# ---------------------------------------------------------------------------------------------------
# slot roles and fingers
# ---------------------------------------------------------------------------------------------------


def test_placeholders_after_a_preposition_are_places() -> None:
    assert cm.placeholder_is_target("Putting [something] onto [something]") == [False, True]
    assert cm.placeholder_is_target("Pretending to sprinkle air onto [something]") == [True]
    assert cm.placeholder_is_target("Pulling [something] out of [something]") == [False, True]
    assert cm.placeholder_is_target("Poking [something] so it slightly moves") == [False]


def test_unboxed_direct_object_is_found_only_when_others_are_boxed() -> None:
    onto = "Putting [something] onto [something]"
    assert cm.unboxed_manipulated(onto, [1]) == 0  # only the place is boxed: the moved thing is in the hand
    assert cm.unboxed_manipulated(onto, [0, 1]) is None
    assert cm.unboxed_manipulated(onto, []) is None  # nothing boxed at all: no annotation to lean on
    assert cm.unboxed_manipulated("", [1]) is None
    assert cm.unboxed_manipulated("Pretending to sprinkle air onto [something]", [1]) is None
    assert cm.unboxed_manipulated("Pretending to put [something] onto [something]", [1]) is None


def test_slot_roles_from_template_and_box_size() -> None:
    full = [0, 0, 400, 240]
    small = [100, 100, 150, 150]
    slots, boxes = np.array([0, 1]), np.array([small, full])
    assert cm.slot_roles(slots, boxes, 400, 240, 0.5) == {0: cm.ROLE_MANIPULATED, 1: cm.ROLE_SURFACE}
    # a pillow filling the view is what the hand acts on when the template says so
    only = np.array([0])
    assert cm.slot_roles(only, np.array([full]), 400, 240, 0.5, "Pretending to pick [something] up") == {
        0: cm.ROLE_MANIPULATED
    }
    # ... and a seat filling the view after "onto" is a surface, with nothing manipulated
    assert cm.slot_roles(only, np.array([full]), 400, 240, 0.5, "Pretending to sprinkle air onto [something]") == {
        0: cm.ROLE_SURFACE
    }
    # without a frame size the frame is estimated from the boxes (240 high, at least 4:3)
    assert cm.slot_roles(slots, boxes, None, None, 0.5)[1] == cm.ROLE_SURFACE


def test_finger_bits_radius_curl_and_nearest() -> None:
    tips = np.array([[0.0, 0.02, 0.5, 0.6, 0.7], [0.9, 0.3, 0.8, 0.9, 0.9]])
    curl = np.array([[0.1, 0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1, 0.1]])
    bits = cm.finger_bits(tips, curl, tip_radius_hand=0.05)
    assert bits.tolist() == [0b00011, 0b00010]  # thumb+index; else the nearest tip alone (index)
    curled = curl.copy()
    curled[0, 1] = 0.6
    assert cm.finger_bits(tips, curled, 0.05, curl_max=0.45).tolist() == [0b00001, 0b00010]


def test_finger_bits_extended_beats_curled_and_a_lone_digit_is_the_index() -> None:
    tips = np.array([[0.03, 0.04, 0.5, 0.6, 0.7]])
    curl = np.array([[0.6, 0.1, 0.1, 0.1, 0.1]])  # the thumb's tip projects into the box, curled
    assert cm.finger_bits(tips, curl, 0.05, curl_max=0.45).tolist() == [0b00010]
    poke = np.array([[0.0, 0.9, 1.2, 1.4, 1.4], [0.0, 0.3, 1.2, 1.4, 1.4]])  # one digit out, four folded away
    assert cm.finger_bits(poke, None, 0.05).tolist() == [0b00010, 0b00001]  # a point; a thumb beside a finger


def test_a_lone_digit_on_the_box_adds_its_prior_to_keypoint_rows_only() -> None:
    tips = np.array([[0.08, 0.9, 1.2, 1.4, 1.4], [0.08, 0.2, 1.2, 1.4, 1.4], [0.3, 0.9, 1.2, 1.4, 1.4]])
    assert cm.lone_digit(tips).tolist() == [True, False, False]  # a poke; two fingers on it; a digit short of it
    x = np.zeros((3, len(cm.KEYPOINT_FEATURES)))
    x[:, -1] = cm.lone_digit(tips)
    np.testing.assert_allclose(cm.lone_digit_prior(x), [cm.LONE_DIGIT_LOGIT, 0.0, 0.0])
    model = cm.Logistic(("overlap",), np.zeros(1), np.ones(1), np.ones(1), 0.0)
    np.testing.assert_allclose(model.row_logit(x, False), [cm.LONE_DIGIT_LOGIT, 0.0, 0.0])
    np.testing.assert_allclose(model.row_logit(x, True), 0.0)  # on a surface only co-motion speaks
    assert not cm.lone_digit_prior(np.zeros((3, len(cm.BOX_FEATURES)))).any()  # box rows have no fingertips


def test_segment_fingers_commonest_set() -> None:
    assert cm.segment_fingers(np.array([2, 2, 6, 0, 1, 2])) == 2
    assert cm.segment_fingers(np.array([3, 31, 0])) == 31  # a tie: the larger set
    assert cm.segment_fingers(np.zeros(3, np.uint8)) == 0


def test_shipped_model_is_readable_and_consistent() -> None:
    model = cm.load_model()
    raw = json.loads(cm.MODEL_PATH.read_text(encoding="utf-8"))
    for part in (model.box, model.keypoints):
        assert set(part.features) <= set(cm.KEYPOINT_FEATURES)
        assert part.weights.shape == part.mean.shape == part.scale.shape == (len(part.features),)
        assert np.all(np.isfinite(part.weights)) and np.all(part.scale > 0)
    assert set(model.box.features) <= set(cm.BOX_FEATURES)
    assert raw["notes"]["box_choice"] and raw["notes"]["keypoint_choice"]  # how the knobs were chosen


def test_phase_split_scores_release_against_approach_and_survives_json() -> None:
    """The free emission split into before and after: 0 for both where the split says only its prior, after
    above before where the object has already moved; a surface row keeps the plain free emission."""
    col = cm.KEYPOINT_FEATURES.index("obj_moved_before")
    one = np.ones(1)
    phase = cm.Logistic(("obj_moved_before",), np.zeros(1), one, 2.0 * one, 0.0)
    model = cm.Logistic(("overlap",), np.zeros(1), one, one, 0.0, phase, np.log(3.0))
    x = np.zeros((2, len(cm.BOX_FEATURES)))
    x[1, col] = 1.0
    s = model.scores(x)
    np.testing.assert_allclose(s[0, [cm.BEFORE, cm.AFTER]], 0.0, atol=1e-12)  # the prior only
    assert s[1, cm.AFTER] > 0.0 > s[1, cm.BEFORE]
    np.testing.assert_allclose(model.scores(x, surface=True)[:, [cm.BEFORE, cm.AFTER]], 0.0)
    again = cm.Logistic.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_allclose(again.scores(x), s, atol=1e-6)


# ---------------------------------------------------------------------------------------------------
# wiring in contacts.py
# ---------------------------------------------------------------------------------------------------


def _boxes(rows: list[tuple[int, int, tuple[float, float, float, float]]], n: int) -> ClipBoxes:
    frame = np.array([r[0] for r in rows], np.int32)
    slot = np.array([r[1] for r in rows], np.int16)
    xyxy = np.array([r[2] for r in rows], np.float32).reshape(-1, 4)
    return ClipBoxes("x", frame, slot, xyxy, n_annotated_frames=n)


def test_hand_hovering_over_a_surface_is_no_contact_and_flagged() -> None:
    n = 30
    rows = [(t, 0, (0, 0, 400, 240)) for t in range(n)]  # a seat filling the frame
    rows += [(t, HAND_SLOT, (120 + 2 * t, 60, 220 + 2 * t, 160)) for t in range(n)]
    res = box_only_contacts(_boxes(rows, n), 400, 240, template="Pretending to sprinkle air onto [something]")
    assert np.all(res.frames.evidence & EVIDENCE_SURFACE)
    assert len(res.segments) == 0


def test_carried_object_is_manipulated_and_in_contact() -> None:
    n, rows = 30, []
    for t in range(n):
        hx = 100 + 6 * max(t - 10, 0) if t >= 10 else 40 + 6 * t  # reaches, grabs at 10, carries
        ox = hx + 30 if t >= 10 else 130
        rows += [(t, HAND_SLOT, (hx - 40, 100, hx + 40, 180)), (t, 0, (ox - 10, 120, ox + 50, 170))]
    res = box_only_contacts(_boxes(rows, n), 400, 240)
    assert np.all(res.frames.evidence & EVIDENCE_MANIPULATED)
    assert len(res.segments) == 1
    assert 8 <= int(res.segments.start[0]) <= 12 and int(res.segments.end[0]) >= n - 3


def test_unmatched_hand_boxes_continue_the_matched_side() -> None:
    n = 20
    kp = np.zeros((10, 21, 3), np.float32)
    kp[:, :, 0] = np.linspace(110, 170, 21)
    kp[:, :, 1] = np.linspace(90, 170, 21)
    track = HandTrack("left", np.arange(10, dtype=np.int32), kp, np.zeros((10, 21, 3), np.float32),
                        np.ones(10, np.float32), np.zeros(10, np.float32), np.zeros(10, np.int8),
                        np.zeros((10, 5), np.float32))  # fmt: skip
    rows = [(t, HAND_SLOT, (100, 80, 180, 180)) for t in range(n)]  # one hand box all along
    rows += [(t, 0, (300, 100, 350, 150)) for t in range(n)]
    tracks = ClipHands("x", n, 400, 240, 12.0, {"left": track})
    res = estimate_contacts(tracks, _boxes(rows, n), n, 400, 240)
    later = res.frames.frame_index >= 10
    assert np.all(res.frames.hand == 0)  # the track was lost at 10, the boxes stay the left hand
    assert np.all(res.frames.evidence[later] & EVIDENCE_SIDE_CONTINUED)
    assert not np.any(res.frames.evidence[~later] & EVIDENCE_SIDE_CONTINUED)


def test_a_hidden_held_object_gets_rows_on_the_hand_without_a_finger_set() -> None:
    n = 20
    kp = np.zeros((n, 21, 3), np.float32)
    kp[:, :, 0] = np.linspace(110, 170, 21) + 4 * np.arange(n)[:, None]  # the hand carries it to the right
    kp[:, :, 1] = np.linspace(90, 170, 21)
    track = HandTrack("left", np.arange(n, dtype=np.int32), kp, np.zeros((n, 21, 3), np.float32),
                      np.ones(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.int8),
                      np.zeros((n, 5), np.float32))  # fmt: skip
    rows = [(t, 1, (300, 100, 350, 150)) for t in range(n)]  # only the place it goes onto is boxed
    tracks = ClipHands("x", n, 400, 240, 12.0, {"left": track})
    res = estimate_contacts(tracks, _boxes(rows, n), n, 400, 240, template="Putting [something] onto [something]")
    held = res.frames.object_slot == 0
    assert np.count_nonzero(held) == n and np.all(res.frames.evidence[held] & EVIDENCE_HELD)
    assert np.all(res.frames.fingers[held] == 0) and np.all(res.segments.fingers[res.segments.object_slot == 0] == 0)


# ---------------------------------------------------------------------------------------------------
# the samples through the whole pipeline, against the human labels
# ---------------------------------------------------------------------------------------------------


def test_samples_agree_with_the_contact_labels(sample_results) -> None:
    from enrich.store import Results

    labels = pd.read_csv(REPO_LABELS, dtype={"video_id": str, "fingers": str}, keep_default_na=False)
    side = {"left": 0, "right": 1}
    results = Results(sample_results)
    tp = fp = fn = 0
    for video_id in ("2", "13201", "80962"):
        f = results[video_id].contacts.frames
        key = np.column_stack([f.frame_index, f.hand, f.object_slot])
        assert len(np.unique(key, axis=0)) == len(key), video_id  # one row per (frame, hand, slot): 80962
        on = {(t, h, k) for t, h, k, c in zip(f.frame_index, f.hand, f.object_slot, f.in_contact, strict=True) if c}
        lab = labels[(labels.video_id == video_id) & (labels.sure == 1)]
        for t, k, hand, truth in zip(lab.frame_index, lab.object_slot, lab.hand, lab.in_contact, strict=True):
            pred = (t, side.get(hand, -1), k) in on
            tp, fp, fn = tp + (pred and truth), fp + (pred and not truth), fn + (truth and not pred)
        if video_id == "80962":  # the poke: one fingertip on the frog (a lone digit, the index), the rest folded
            poke = [(t, b) for t, h, b, c in zip(f.frame_index, f.hand, f.fingers, f.in_contact, strict=True)
                    if c and h == 0 and 16 <= t <= 19]  # fmt: skip
            assert len(poke) == 4 and all(b == 0b00010 for _, b in poke), poke
        if video_id == "13201":  # the seat fills the frame; the fingers hover
            assert np.all(f.evidence & EVIDENCE_SURFACE) and not np.any(f.in_contact)
    assert 2 * tp / (2 * tp + fp + fn) >= 0.8, (tp, fp, fn)


@pytest.mark.shared
def test_box_only_real_clip_fitted_model(shared_data, tmp_path) -> None:
    from enrich.inputs import load_boxes

    index = load_boxes([shared_data / "ssv2_real2sim/something_else_annots.json"], cache_dir=tmp_path)
    res = box_only_contacts(index.get("8675"), template="Pulling [something] from left to right")
    seg = res.segments  # a training clip of the shipped model: this checks the wiring, not accuracy
    main = seg.object_slot == 0
    assert np.count_nonzero(main) == 1  # human action frames 16-44 (1-based)
    assert abs(int(seg.start[main][0]) - 15) <= 3 and abs(int(seg.end[main][0]) - 43) <= 3


@pytest.mark.shared
def test_box_only_unboxed_object_stands_on_the_hand(shared_data, tmp_path) -> None:
    from enrich.inputs import load_boxes

    index = load_boxes([shared_data / "ssv2_real2sim/something_else_annots.json"], cache_dir=tmp_path)
    res = box_only_contacts(index.get("757"), template="Putting [something] onto [something]")
    f, seg = res.frames, res.segments  # 757 boxes only the place (slot 1); the thing put is in the hand
    held = f.object_slot == 0
    assert held.any() and np.all((f.evidence[held] & EVIDENCE_HELD) > 0)
    assert not np.any(f.evidence[~held] & EVIDENCE_HELD)
    main = seg.object_slot == 0
    assert np.count_nonzero(main) == 1  # human action frames 14-22 (1-based)
    assert abs(int(seg.start[main][0]) - 13) <= 2 and abs(int(seg.end[main][0]) - 21) <= 3
