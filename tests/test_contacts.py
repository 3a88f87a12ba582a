"""Hand–object contacts: bad boxes, smoothing, hand-box matching, fingers, box-only fallback, stats."""

from __future__ import annotations

import numpy as np
import pytest

from enrich.constants import EVIDENCE_BOX_ONLY, EVIDENCE_CO_MOTION, EVIDENCE_KEYPOINTS, HAND_SLOT, HAND_UNKNOWN
from enrich.contact_hands import fill_gaps
from enrich.contacts import ContactConfig, box_only_contacts, estimate_contacts, hysteresis_segments
from enrich.inputs import official_class_names
from enrich.records import ClipBoxes, ClipHands, ClipMeta, HandTrack
from enrich.stats import contact_stats, pretending_pairs

W, H = 400, 240


def make_boxes(rows: list[tuple[int, int, tuple[float, float, float, float]]], n_annotated: int = 0) -> ClipBoxes:
    frame = np.array([r[0] for r in rows], np.int32)
    slot = np.array([r[1] for r in rows], np.int16)
    xyxy = np.array([r[2] for r in rows], np.float32).reshape(-1, 4)
    return ClipBoxes("x", frame, slot, xyxy, n_annotated_frames=n_annotated)


def carry_clip(n: int = 30, touch: range = range(10, 20)) -> ClipBoxes:
    """A hand comes from the left, grabs a still object at frame 10, carries it right, lets go at 19, leaves."""
    rows = []
    obj_x = 230.0  # where the hand will hold it: no jump at the grasp
    for t in range(n):
        if t < touch.start:
            hx = 200.0 - 8.0 * (touch.start - t)  # approaching: hand moves, object still
        elif t in touch:
            hx = 200.0 + 6.0 * (t - touch.start)
            obj_x = hx + 30.0  # carried: object moves with the hand
        else:
            hx = 200.0 + 6.0 * (touch.stop - 1 - touch.start) - 10.0 * (t - touch.stop + 1)  # withdrawing
        rows.append((t, HAND_SLOT, (hx - 40, 100, hx + 40, 180)))
        rows.append((t, 0, (obj_x - 10, 120, obj_x + 50, 170)))
    return make_boxes(rows, n_annotated=n)


def hand_track(side: str, frames: list[int], keypoints: np.ndarray) -> HandTrack:
    n = len(frames)
    kp = np.concatenate([keypoints, np.zeros((n, 21, 1))], axis=2).astype(np.float32)
    return HandTrack(
        side,
        np.array(frames, np.int32),
        kp,
        np.zeros((n, 21, 3), np.float32),
        np.ones(n, np.float32),
        np.full(n, 1.0 if side == "right" else 0.0, np.float32),
        np.zeros(n, np.int8),
        np.zeros((n, 5), np.float32),
    )


def hand_keypoints(centre: tuple[float, float], scale: float = 40.0) -> np.ndarray:
    """(21, 2) a flat hand: wrist below, five fingers pointing up, tips at the top."""
    cx, cy = centre
    kp = np.zeros((21, 2))
    kp[0] = (cx, cy + scale)
    for f in range(5):
        x = cx + (f - 2) * scale * 0.3
        for j in range(4):
            kp[1 + 4 * f + j] = (x, cy + scale * (0.3 - 0.35 * j))
    return kp


# ---------------------------------------------------------------------------------------------------
# smoothing
# ---------------------------------------------------------------------------------------------------


def test_hysteresis_flicker_does_not_split_and_blip_is_dropped() -> None:
    cfg = ContactConfig(p_on=0.5, p_off=0.05, max_gap_frames=2, min_duration_frames=3)
    p = np.full(30, 0.01)
    p[5:15] = 0.9
    p[9] = 0.01  # one-frame flicker inside the contact
    p[22:24] = 0.9  # two-frame blip, shorter than min duration
    assert hysteresis_segments(p, cfg) == [(5, 14)]


def test_hysteresis_low_run_needs_a_high_frame() -> None:
    cfg = ContactConfig(p_on=0.5, p_off=0.05, min_duration_frames=1)
    p = np.full(20, 0.01)
    p[2:8] = 0.3  # above p_off, never above p_on: not contact
    p[10:16] = 0.3
    p[13] = 0.8  # the whole run joins, before and after the high frame
    assert hysteresis_segments(p, cfg) == [(10, 15)]


def test_hysteresis_nan_frames_are_no_contact() -> None:
    p = np.full(12, np.nan)
    assert hysteresis_segments(p, ContactConfig()) == []


# ---------------------------------------------------------------------------------------------------
# box-only model
# ---------------------------------------------------------------------------------------------------


def test_box_only_carry_is_one_segment_near_the_true_range() -> None:
    res = box_only_contacts(carry_clip(), W, H)
    assert len(res.segments) == 1
    start, end = int(res.segments.start[0]), int(res.segments.end[0])
    assert abs(start - 10) <= 1 and abs(end - 19) <= 1
    assert set(res.segments.hand.tolist()) == {HAND_UNKNOWN}
    assert np.all(res.frames.evidence & EVIDENCE_BOX_ONLY)
    assert not np.any(res.frames.evidence & EVIDENCE_KEYPOINTS)
    assert np.all(res.hand_box_match == 2)  # box present, no detected hand to match


def test_box_only_hand_passing_over_still_object_is_not_contact() -> None:
    rows = []
    for t in range(20):
        hx = 100 + 10 * t  # hand sweeps across the object, which never moves
        rows += [(t, HAND_SLOT, (hx - 40, 100, hx + 40, 180)), (t, 0, (180, 120, 240, 170))]
    res = box_only_contacts(make_boxes(rows), W, H)
    assert len(res.segments) == 0
    assert np.any(res.frames.box_overlap > 0)  # the boxes did overlap: rejected by co-motion
    assert np.all(res.frames.evidence[res.frames.co_motion_logit < 0] & EVIDENCE_CO_MOTION)


def test_no_contact_from_missing_object_box() -> None:
    clip = carry_clip()
    keep = ~((clip.slot == 0) & (clip.frame_index >= 12) & (clip.frame_index <= 16))
    boxes = make_boxes(
        [
            (int(f), int(s), tuple(b))
            for f, s, b in zip(clip.frame_index[keep], clip.slot[keep], clip.box_xyxy_px[keep], strict=True)
        ]
    )
    res = box_only_contacts(boxes, W, H)
    missing = (res.frames.frame_index >= 12) & (res.frames.frame_index <= 16)
    assert not np.any(missing)  # no rows at all for the frames without the object box
    assert res.counts["missing_object_frames"] == 5
    covered = {t for s, e in zip(res.segments.start, res.segments.end, strict=True) for t in range(s, e + 1)}
    assert not covered & set(range(12, 17))


def test_object_slot_in_only_some_frames() -> None:
    clip = carry_clip()
    extra = [(t, 1, (350.0, 10.0, 390.0, 40.0)) for t in range(0, 5)]  # slot 1 boxed in 5 frames, far away
    rows = [
        (int(f), int(s), tuple(b)) for f, s, b in zip(clip.frame_index, clip.slot, clip.box_xyxy_px, strict=True)
    ] + extra
    res = box_only_contacts(make_boxes(rows), W, H)
    slot1 = res.frames.object_slot == 1
    assert sorted(res.frames.frame_index[slot1].tolist()) == [0, 1, 2, 3, 4]
    assert not np.any(res.frames.in_contact[slot1])
    assert res.counts["missing_object_frames"] == 25
    assert set(res.segments.object_slot.tolist()) == {0}


def test_bad_boxes_are_fixed_or_dropped_and_counted() -> None:
    rows = [
        (0, HAND_SLOT, (180, 180, 100, 100)),  # swapped corners
        (0, 0, (150, 120, 210, 170)),
        (1, 0, (500, 300, 600, 400)),  # entirely outside the frame
        (2, 0, (-20, 100, 50, 150)),  # partly outside: clipped
        (3, 0, (np.nan, 1, 2, 3)),  # not finite
        (40, 0, (10, 10, 20, 20)),  # beyond the clip
    ]
    res = estimate_contacts(None, make_boxes(rows), 10, W, H)
    c = res.counts
    assert (c["swapped_boxes"], c["outside_boxes"], c["clipped_boxes"]) == (1, 1, 1)
    assert (c["nonfinite_boxes"], c["boxes_beyond_clip"]) == (1, 1)
    assert c["object_boxes"] == 2 and c["hand_boxes"] == 1
    row = res.frames.frame_index == 0
    assert np.count_nonzero(row) == 1 and res.frames.box_overlap[row][0] > 0  # swapped hand box still used


def test_box_only_without_frame_size_skips_clipping() -> None:
    rows = [(0, HAND_SLOT, (380, 100, 460, 180)), (0, 0, (420, 120, 470, 170))]
    res = box_only_contacts(make_boxes(rows), None, None)
    assert res.counts["clipped_boxes"] == 0 and len(res.frames) == 1
    clipped = box_only_contacts(make_boxes(rows), W, H)
    assert clipped.counts["outside_boxes"] == 1 and len(clipped.frames) == 0


def test_frames_beyond_annotation_give_no_rows() -> None:
    clip = carry_clip(n=20)  # annotated frames 0..19
    kp = np.stack([hand_keypoints((200.0, 140.0)) for _ in range(10)])
    tracks = ClipHands("x", 30, W, H, 12.0, {"right": hand_track("right", list(range(20, 30)), kp)})
    res = estimate_contacts(tracks, clip, 30, W, H)
    assert res.counts["hand_frames_beyond_annotation"] == 10
    assert not np.any(res.frames.frame_index >= 20)
    assert res.hand_box_match.shape == (30,) and np.all(res.hand_box_match[20:] == -1)


def test_empty_boxes_and_no_tracks() -> None:
    res = estimate_contacts(None, ClipBoxes.empty("x"), 5, W, H)
    assert len(res.frames) == 0 and len(res.segments) == 0
    assert res.hand_box_match.tolist() == [-1] * 5


# ---------------------------------------------------------------------------------------------------
# keypoints
# ---------------------------------------------------------------------------------------------------


def test_two_hands_one_box_matches_the_hand_inside_it() -> None:
    n = 4
    left_kp = np.stack([hand_keypoints((100.0, 140.0)) for _ in range(n)])
    right_kp = np.stack([hand_keypoints((300.0, 140.0)) for _ in range(n)])
    tracks = ClipHands(
        "x",
        n,
        W,
        H,
        12.0,
        {"left": hand_track("left", list(range(n)), left_kp), "right": hand_track("right", list(range(n)), right_kp)},
    )
    rows = [(t, HAND_SLOT, (255, 90, 345, 190)) for t in range(n)]  # around the right hand only
    res = estimate_contacts(tracks, make_boxes(rows), n, W, H)
    assert res.hand_box_match.tolist() == [1] * n
    assert res.counts["hand_boxes_matched"] == n and res.counts["hand_boxes_unmatched"] == 0
    moved = [(t, HAND_SLOT, (55, 90, 145, 190)) for t in range(n)]  # now around the left hand
    assert estimate_contacts(tracks, make_boxes(moved), n, W, H).hand_box_match.tolist() == [0] * n


def test_fingers_from_keypoints_inside_the_box_and_keypoint_evidence() -> None:
    n = 12
    kp = np.stack([hand_keypoints((200.0 + 5 * t, 140.0)) for t in range(n)])
    tips = kp[0, [4, 8, 12, 16, 20]]
    # object box holding only the thumb and index tips, carried along with the hand
    obj = [(t, 0, (tips[0, 0] - 3 + 5 * t, tips[0, 1] - 15, tips[1, 0] + 3 + 5 * t, tips[0, 1] + 3)) for t in range(n)]
    tracks = ClipHands("x", n, W, H, 12.0, {"right": hand_track("right", list(range(n)), kp)})
    res = estimate_contacts(tracks, make_boxes(obj), n, W, H)
    assert len(res.segments) == 1 and res.segments.hand.tolist() == [1]
    assert res.segments.fingers.tolist() == [0b00011]
    assert np.all(res.frames.evidence & EVIDENCE_KEYPOINTS)
    assert np.all(res.frames.fingers[res.frames.in_contact] == 0b00011)
    assert np.all(res.frames.min_tip_distance == 0)


def test_keypoints_reject_a_box_only_contact() -> None:
    """The hand box overlaps the object and they move together, but the keypoints stay clear of it."""
    n = 12
    kp = np.stack([hand_keypoints((150.0 + 5 * t, 140.0)) for t in range(n)])
    rows = []
    for t in range(n):
        rows.append((t, HAND_SLOT, (100 + 5 * t, 80, 240 + 5 * t, 200)))  # loose box reaching into the object
        rows.append((t, 0, (220 + 5 * t, 120, 300 + 5 * t, 170)))
    boxes = make_boxes(rows)
    assert len(box_only_contacts(boxes, W, H).segments) == 1
    tracks = ClipHands("x", n, W, H, 12.0, {"right": hand_track("right", list(range(n)), kp)})
    res = estimate_contacts(tracks, boxes, n, W, H)
    assert len(res.segments) == 0
    assert np.all(res.frames.hand == 1)  # the box went to the right hand: no box-only rows left
    assert np.all(res.frames.min_tip_distance > 0.5)


def _pairs_unique(res) -> bool:
    f = res.frames
    key = np.column_stack([f.frame_index, f.hand, f.object_slot])
    return len(np.unique(key, axis=0)) == len(key)


def test_one_row_per_pair_when_a_box_continues_a_seen_hand() -> None:
    """The left hand's box stops matching its keypoints (they drift out of it) while one hand box runs on: the
    box continues the left side, but the keypoints still speak for that hand there (80962 frames 19, 24, 25)."""
    n = 12
    kp = np.stack([hand_keypoints((150.0 + (60.0 if t >= 6 else 0.0), 140.0)) for t in range(n)])
    rows = [(t, HAND_SLOT, (100, 80, 200, 200)) for t in range(n)]
    rows += [(t, 0, (140, 60, 260, 130)) for t in range(n)]
    tracks = ClipHands("x", n, W, H, 12.0, {"left": hand_track("left", list(range(n)), kp)})
    res = estimate_contacts(tracks, make_boxes(rows), n, W, H)
    assert res.counts["hand_boxes_unmatched"] == 6 and res.counts["continued_boxes_shadowed"] == 6
    assert _pairs_unique(res) and len(res.frames) == n
    assert np.all(res.frames.evidence & EVIDENCE_KEYPOINTS)


def test_one_row_per_pair_with_two_unknown_hand_boxes() -> None:
    n = 6
    rows = [(t, HAND_SLOT, (100, 100, 160, 160)) for t in range(n)]  # touching the object
    rows += [(t, HAND_SLOT, (300, 100, 360, 160)) for t in range(n)]  # far from it
    rows += [(t, 0, (150, 110, 200, 150)) for t in range(n)]
    res = box_only_contacts(make_boxes(rows), W, H)
    assert _pairs_unique(res) and len(res.frames) == n and res.counts["merged_rows"] == n
    assert np.all(res.frames.gap_hand < 0)  # the row kept is the touching hand's


@pytest.mark.shared
def test_one_row_per_pair_on_every_dev_clip_box_only(shared_data, tmp_path) -> None:
    from enrich.inputs import load_boxes

    for name in ("ssv2_real2sim/something_else_annots.json", "ssv2_something_else/annotations.json"):
        index = load_boxes([shared_data / name], cache_dir=tmp_path)
        for video_id in index.video_ids:
            assert _pairs_unique(box_only_contacts(index.get(video_id))), video_id


# ---------------------------------------------------------------------------------------------------
# real Something-Else boxes
# ---------------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_real_boxes_box_only(shared_data, tmp_path) -> None:
    from enrich.inputs import load_boxes

    index = load_boxes([shared_data / "ssv2_real2sim/something_else_annots.json"], cache_dir=tmp_path)
    boxes = index.get("471")  # Putting something next to something; human action frames 23-38 (1-based)
    res = box_only_contacts(boxes)
    seg = res.segments
    main = seg.object_slot == 0
    assert np.count_nonzero(main) == 1
    assert abs(int(seg.start[main][0]) - 22) <= 1 and abs(int(seg.end[main][0]) - 37) <= 2
    assert res.counts["rows"] == len(res.frames) > 0


# ---------------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------------


def test_pretending_pairs_from_the_official_list() -> None:
    pairs = pretending_pairs(official_class_names())
    got = dict(zip(pairs.pretend, pairs.real, strict=True))
    assert got["Pretending to pick something up"] == "Picking something up"
    assert got["Pretending to put something onto something"] == "Putting something onto something"
    assert got["Pretending to take something out of something"] == "Taking something out of something"
    assert got["Pretending to close something without actually closing it"] == "Closing something"
    assert (pairs.real.str.startswith("Pretending")).sum() == 0


def test_contact_stats_tables() -> None:
    real = box_only_contacts(carry_clip(), W, H)
    none = box_only_contacts(ClipBoxes.empty("y"), W, H, n_frames=30)
    names = official_class_names()
    pick, fake = names.index("Picking something up"), names.index("Pretending to pick something up")
    per_clip = [
        (ClipMeta("1", pick, "Picking [something] up"), 30, real),
        (ClipMeta("2", pick, "Picking [something] up"), 30, real),
        (ClipMeta("3", fake, "Pretending to pick [something] up"), 30, none),
    ]
    tables = contact_stats(per_clip)
    cls = tables["per_class"].set_index("class_id")
    seg = real.segments
    assert cls.loc[pick, "clips"] == 2 and cls.loc[fake, "clips"] == 1
    assert cls.loc[pick, "segments_per_clip"] == 1.0 and cls.loc[fake, "segments_per_clip"] == 0.0
    assert cls.loc[pick, "mean_duration_frames"] == pytest.approx(float(seg.n_frames[0]))
    assert cls.loc[pick, "mean_duration_s"] == pytest.approx(seg.n_frames[0] / 12.0)
    assert cls.loc[pick, "onset_fraction"] == pytest.approx(seg.start[0] / 30)
    assert cls.loc[pick, "hands_unknown"] == 1.0 and cls.loc[fake, "hands_none"] == 1.0
    pre = tables["pretending"].set_index("pretend_id")
    assert pre.loc[fake, "real"] == "Picking something up"
    assert pre.loc[fake, "pretend_contact_rate"] == 0.0 and pre.loc[fake, "real_contact_rate"] == 1.0
    assert pre.loc[fake, "real_segments_per_clip"] == 1.0


def test_hand_size_gaps_take_the_nearest_earlier_size_or_at_the_start_the_first() -> None:
    """The co-motion scale: a frame without the hand takes its last size, frames before its first sighting the
    first size; a clip without any size stays without."""
    nan = np.nan
    filled = fill_gaps(np.array([nan, nan, 2.0, nan, 5.0, nan]))
    np.testing.assert_array_equal(filled, [2.0, 2.0, 2.0, 2.0, 5.0, 5.0])
    assert np.isnan(fill_gaps(np.full(3, nan))).all()
