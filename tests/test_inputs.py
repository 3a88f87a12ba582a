"""Tests of enrich.inputs on the bundled samples, ../shared/data (skipped when absent) and small tmp files."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import warnings
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

import enrich
from enrich.constants import HAND_SLOT
from enrich.errors import ClipError
from enrich.inputs import (
    BoxFileError,
    BoxIndex,
    ClipSource,
    LabelMismatchWarning,
    detect_metadata_kind,
    discover_clips,
    fill_template,
    index_boxes,
    load_boxes,
    load_metadata,
    official_class_names,
    read_clip,
    template_key,
    video_id_from_path,
)
from enrich.inputs import boxes as box_inputs
from enrich.records import ClipBoxes

SE_ANNOTATIONS = ("ssv2_something_else", "annotations.json")
REAL2SIM = ("ssv2_real2sim", "something_else_annots.json")
SHARED_FRAMES = ("ssv2_something_else", "frames")


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def box(x1: object, y1: object, x2: object, y2: object, cat: str = "hand", std: object = "hand") -> dict:
    return {"box2d": {"x1": x1, "y1": y1, "x2": x2, "y2": y2}, "category": cat, "standard_category": std}


def rgb_jpeg(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def assert_one_line_error(excinfo: pytest.ExceptionInfo, video_id: str, *needles: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(f"clip {video_id}: ")
    for needle in needles:
        assert needle in message, message


# ----------------------------------------------------------------------------------------------------
# Something-Else boxes
# ----------------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_annotations_json_counts(shared_data: Path, tmp_path: Path) -> None:
    counts = index_boxes([shared_data.joinpath(*SE_ANNOTATIONS)], tmp_path / "i.h5")
    assert (counts["clips"], counts["frames"], counts["hand_boxes"]) == (13, 555, 338)
    problems = {k: v for k, v in counts.items() if k not in ("clips", "frames", "boxes", "hand_boxes")}
    assert not any(problems.values()), problems
    index = BoxIndex(tmp_path / "i.h5")
    assert index.video_ids[:3] == ("2", "4", "862")  # numeric order
    assert sum(int(np.count_nonzero(index.get(v).slot == HAND_SLOT)) for v in index.video_ids) == 338


@pytest.mark.shared
def test_real2sim_variant_counts(shared_data: Path, tmp_path: Path) -> None:
    counts = index_boxes([shared_data.joinpath(*REAL2SIM)], tmp_path / "i.h5")
    assert (counts["clips"], counts["frames"], counts["hand_boxes"]) == (64, 2887, 1807)
    # 15606 lists 0001-0021 then 0030-0033: the names, not the list positions, give the frame
    assert counts["frames_not_listed"] == 8
    boxes = BoxIndex(tmp_path / "i.h5").get("15606")
    assert boxes.n_annotated_frames == 33
    assert set(np.unique(boxes.frame_index)) == set(range(21)) | {29, 30, 31, 32}


@pytest.mark.shared
def test_frame_index_from_name_22983(shared_data: Path, tmp_path: Path) -> None:
    index = load_boxes(shared_data.joinpath(*SE_ANNOTATIONS), cache_dir=tmp_path)
    boxes = index.get("22983")
    n_jpegs = len(list(shared_data.joinpath(*SHARED_FRAMES, "22983").glob("*.jpg")))
    assert (boxes.n_annotated_frames, n_jpegs) == (52, 64)
    assert boxes.frame_index.min() == 0 and boxes.frame_index.max() == 51


def test_sample_boxes_match_json(samples_dir: Path, tmp_path: Path) -> None:
    raw = json.loads((samples_dir / "something_else.json").read_text())
    index = load_boxes(samples_dir / "something_else.json", cache_dir=tmp_path)
    assert index.video_ids == ("2", "13201", "80962")
    for video_id, frames in raw.items():
        rows = [
            (
                int(f["name"].split("/")[1][:4]) - 1,
                -1 if b["standard_category"] == "hand" else int(b["standard_category"]),
                [b["box2d"][k] for k in ("x1", "y1", "x2", "y2")],
            )
            for f in frames
            for b in f["labels"]
        ]
        got = index.get(video_id)
        assert got.frame_index.dtype == np.int32 and got.slot.dtype == np.int16
        assert got.box_xyxy_px.dtype == np.float32 and got.box_xyxy_px.shape == (len(rows), 4)
        np.testing.assert_array_equal(got.frame_index, [r[0] for r in rows])
        np.testing.assert_array_equal(got.slot, [r[1] for r in rows])
        np.testing.assert_allclose(got.box_xyxy_px, [r[2] for r in rows], rtol=1e-6)
        assert got.n_annotated_frames == len(frames)
    assert index.get("2").slot_names == ("pillow",)
    assert "2" in index and "3" not in index and index.get("3") is None


def test_index_cache_is_reused(samples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    part = shutil.copy(samples_dir / "something_else.json", tmp_path / "part.json")
    cache = tmp_path / "cache"
    first = load_boxes([part], cache_dir=cache)
    stamp = first.path.stat().st_mtime_ns

    def no_reindex(*args: object) -> None:
        raise AssertionError("re-parsed although the cache is valid")

    monkeypatch.setattr(box_inputs, "index_boxes", no_reindex)
    second = load_boxes([part], cache_dir=cache)
    assert second.path == first.path and second.path.stat().st_mtime_ns == stamp
    monkeypatch.undo()
    os.utime(part, ns=(stamp + 10**9, stamp + 10**9))  # a changed part file must be re-indexed
    third = load_boxes([part], cache_dir=cache)
    assert third.path != first.path
    assert len(list(cache.glob("*.h5"))) == 2
    assert load_boxes(third.path).video_ids == first.video_ids  # an index file opens directly


def test_tolerates_bad_boxes(tmp_path: Path) -> None:
    frames = [
        {
            "name": "5/0001.jpg",
            "labels": [box(30, 40, 10, 20), box(1, 2, 3, 4, "cup", "0000")],
        },  # swapped hand
        {
            "name": "5/0002.jpg",
            "labels": [{"box2d": {"x1": 1, "y1": 2, "x2": 3}, "standard_category": "hand"}],
        },
        {
            "name": "5/0003.jpg",
            "labels": [box("nan", 1, 2, 3), box(1, 2, 3, 4, "person", "person"), {"category": "x"}],
        },
        {"name": "5/0004.jpg"},  # no labels key
        {"name": "5/0005.jpg", "labels": []},
        {"name": "garbage", "labels": [box(5, 6, 7, 8, "cup", "0002")]},  # position 5 -> frame 5
        {"name": "5/0007.jpg"},  # no labels key
        {"labels": [box("1.5", 2, 3, 4)]},  # no name: position 7; numeric string accepted
    ]
    counts = index_boxes([write_json(tmp_path / "p.json", {"5": frames})], tmp_path / "i.h5")
    expected = {
        "clips": 1,
        "frames": 8,
        "boxes": 4,
        "hand_boxes": 2,
        "swapped_boxes": 1,
        "dropped_bad_coords": 2,
        "dropped_unknown_category": 2,
        "frames_without_labels": 3,
        "frames_name_fallback": 2,
        "bad_frames": 0,
        "bad_clips": 0,
        "frames_not_listed": 0,
        "duplicate_frames": 0,
        "duplicate_clips": 0,
    }
    assert counts == expected
    got = BoxIndex(tmp_path / "i.h5").get("5")
    np.testing.assert_array_equal(got.frame_index, [0, 0, 5, 7])
    np.testing.assert_array_equal(got.slot, [HAND_SLOT, 0, 2, HAND_SLOT])
    np.testing.assert_array_equal(got.box_xyxy_px[0], [30, 40, 10, 20])  # as annotated; cleaned per clip
    np.testing.assert_array_equal(got.box_xyxy_px[3], [1.5, 2, 3, 4])
    assert got.slot_names == ("cup", "", "cup") and got.n_annotated_frames == 8
    clean, fixes = got.cleaned(8)
    np.testing.assert_array_equal(clean.hand_boxes(0), [[10, 20, 30, 40]])
    assert fixes["swapped_boxes"] == 1


def test_duplicate_id_later_part_wins(tmp_path: Path) -> None:
    a = write_json(tmp_path / "a.json", {"1": [{"name": "1/0001.jpg", "labels": [box(0, 0, 1, 1)]}]})
    b = write_json(tmp_path / "b.json", {"1": [{"name": "1/0003.jpg", "labels": [box(0, 0, 9, 9)]}]})
    with pytest.warns(UserWarning, match="duplicated clip ids"):
        counts = index_boxes([a, b], tmp_path / "i.h5")
    assert counts["duplicate_clips"] == 1 and counts["clips"] == 1
    got = BoxIndex(tmp_path / "i.h5").get("1")
    np.testing.assert_array_equal(got.frame_index, [2])
    np.testing.assert_array_equal(got.box_xyxy_px, [[0, 0, 9, 9]])


def test_parts_merge(samples_dir: Path, tmp_path: Path) -> None:
    raw = json.loads((samples_dir / "something_else.json").read_text())
    parts = [write_json(tmp_path / f"{v}.json", {v: raw[v]}) for v in ("80962", "2", "13201")]
    index = load_boxes(parts, cache_dir=tmp_path / "c")
    whole = load_boxes(samples_dir / "something_else.json", cache_dir=tmp_path / "c")
    assert index.video_ids == whole.video_ids == ("2", "13201", "80962")
    for v in index.video_ids:
        np.testing.assert_array_equal(index.get(v).box_xyxy_px, whole.get(v).box_xyxy_px)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "premature EOF"),  # the sample file cut in half
        (b'{"1": [}', "unallowed token"),
        (b"", "empty file"),
        (b'[{"1": 2}]', "not a JSON object"),
        (b'{"1": []} trailing', "trailing garbage"),
    ],
)
def test_invalid_box_file(samples_dir: Path, tmp_path: Path, content: bytes | None, needle: str) -> None:
    data = (samples_dir / "something_else.json").read_bytes()
    bad = tmp_path / "bad part.json"
    bad.write_bytes(data[: len(data) // 2] if content is None else content)
    with pytest.raises(BoxFileError) as excinfo:
        load_boxes([bad], cache_dir=tmp_path / "cache")
    message = str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)
    assert str(bad) in message and needle in message and "\n" not in message
    assert not list((tmp_path / "cache").glob("*"))  # no partial index left behind


def test_foreign_hdf5_is_not_an_index(samples_dir: Path, tmp_path: Path) -> None:
    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5["x"] = np.zeros(3)
    with pytest.raises(BoxFileError, match="not an enrich-box-index"):
        load_boxes(tmp_path / "other.h5")
    with pytest.raises(BoxFileError, match="must be given alone"):
        load_boxes([tmp_path / "other.h5", samples_dir / "something_else.json"], cache_dir=tmp_path)


def test_missing_box_file(tmp_path: Path) -> None:
    with pytest.raises(BoxFileError, match="no such file"):
        load_boxes(tmp_path / "nope.json", cache_dir=tmp_path)


def test_box_index_pickles(samples_dir: Path, tmp_path: Path) -> None:
    index = load_boxes(samples_dir / "something_else.json", cache_dir=tmp_path)
    clone = pickle.loads(pickle.dumps(index))
    np.testing.assert_array_equal(clone.get("80962").box_xyxy_px, index.get("80962").box_xyxy_px)
    assert clone.counts == index.counts and clone.counts["hand_boxes"] > 0


def test_boxes_cleaned_to_the_frame() -> None:
    xyxy = np.array(
        [[10, 10, 20, 20], [-5, 230, 30, 250], [400, 0, 500, 10], [0, 0, 320, 240], [30, 40, 20, 30], [np.nan] * 4],
        np.float32,
    )
    frames = np.array([0, 1, 2, 3, 3, 9], np.int32)
    boxes = ClipBoxes("1", frames, np.array([-1, 0, 1, -1, 2, 1], np.int16), xyxy, ("a", "b"), 4)
    out, fixes = boxes.cleaned(4, 320, 240)
    assert fixes == {
        "nonfinite_boxes": 1,
        "swapped_boxes": 1,  # (30, 40, 20, 30) -> (20, 30, 30, 40), kept
        "boxes_beyond_clip": 0,  # the frame-9 box is non-finite: counted once, there
        "clipped_boxes": 1,
        "outside_boxes": 1,  # entirely right of the frame
    }
    np.testing.assert_array_equal(out.frame_index, [0, 1, 3, 3])
    np.testing.assert_array_equal(out.slot, [-1, 0, -1, 2])
    np.testing.assert_array_equal(
        out.box_xyxy_px, [[10, 10, 20, 20], [0, 230, 30, 240], [0, 0, 320, 240], [20, 30, 30, 40]]
    )
    assert out.slot_names == ("a", "b") and out.n_annotated_frames == 4
    beyond, fixes = boxes.cleaned(2, 320, 240)  # frames 2 and 3 lie beyond a 2-frame clip
    assert fixes["boxes_beyond_clip"] == 3 and beyond.frame_index.tolist() == [0, 1]
    empty, fixes = ClipBoxes.empty("2").cleaned(10, 10, 10)
    assert not any(fixes.values()) and empty.box_xyxy_px.shape == (0, 4)


# ----------------------------------------------------------------------------------------------------
# SSv2 metadata
# ----------------------------------------------------------------------------------------------------


def official_from_file() -> list[str]:
    return (Path(enrich.__file__).parent / "data" / "ssv2_labels.txt").read_text(encoding="utf-8").splitlines()


def test_shipped_label_list() -> None:
    lines = official_from_file()
    assert len(lines) == 174 and all(lines)
    assert lines[0] == "Approaching something with your camera"
    assert lines[5] == "Closing something" and lines[41] == "Moving something away from the camera"
    assert official_class_names() == tuple(lines)
    assert len({template_key(n) for n in lines}) == 174


@pytest.mark.shared
def test_shipped_label_list_is_the_mmaction2_file(shared_data: Path) -> None:
    source = shared_data / "ssv2_labels" / "mmaction2_sthv2_label_map.txt"
    assert (Path(enrich.__file__).parent / "data" / "ssv2_labels.txt").read_bytes() == source.read_bytes()


def test_entries_json(samples_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meta = load_metadata([samples_dir / "ssv2_metadata.json"])
    lines = official_from_file()
    assert sorted(meta) == ["13201", "2", "80962"]
    m = meta["2"]
    assert m.class_id == lines.index("Pretending to pick something up")
    assert m.template == "Pretending to pick [something] up"
    assert m.label == "pretending to pick a pillow up" and m.placeholders == ("pillow",)
    assert meta["13201"].class_id == lines.index("Pretending to sprinkle air onto something")
    assert meta["80962"].class_id == lines.index("Poking something so it slightly moves")
    assert meta.class_id("Poking [something] so it slightly moves") == meta["80962"].class_id


def test_entry_without_label_or_template(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "e.json",
        [
            {"id": 7, "template": "Putting [something] onto [something]", "placeholders": ["cup", "plate"]},
            {"id": "8"},  # test-set style: id only
            {"label": "no id"},
            {
                "id": "9",
                "template": "Juggling [something]",
                "placeholders": ["balls"],
                "label": "juggling balls",
            },
        ],
    )
    with pytest.warns(UserWarning) as record:
        meta = load_metadata(path)
    messages = [str(w.message) for w in record]
    assert any("skipped 1 entries without an id" in m for m in messages), messages
    assert any("1 templates are not SSv2 classes (e.g. 'Juggling [something]')" in m for m in messages)
    assert meta["7"].label == "Putting cup onto plate"
    assert meta["7"].class_id == official_from_file().index("Putting something onto something")
    assert meta["8"].class_id == -1 and meta["8"].label == "" and meta["9"].class_id == -1


def test_official_labels_json_and_label_map_no_warning(tmp_path: Path) -> None:
    lines = official_from_file()
    labels = write_json(tmp_path / "labels.json", {name: str(i) for i, name in enumerate(lines)})
    label_map = tmp_path / "map.txt"
    label_map.write_text("\n".join(lines) + "\n")
    assert detect_metadata_kind(labels) == "labels_json" and detect_metadata_kind(label_map) == "label_map"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meta = load_metadata([labels, label_map])
    assert len(meta) == 0 and meta.class_names == tuple(lines)


def test_label_map_in_other_order_warns(tmp_path: Path) -> None:
    lines = official_from_file()
    label_map = tmp_path / "map.txt"
    label_map.write_text("\n".join([lines[1], lines[0], *lines[2:]]))
    with pytest.warns(LabelMismatchWarning, match="2 of 174 lines differ"):
        meta = load_metadata(label_map)
    assert meta.class_id("Approaching [something] with your camera") == 0  # still the official id


@pytest.mark.shared
def test_something_else_labels_json_warns(shared_data: Path, samples_dir: Path) -> None:
    labels = shared_data / "ssv2_something_else" / "dataset_splits" / "compositional" / "labels.json"
    assert detect_metadata_kind(labels) == "labels_json"
    with pytest.warns(LabelMismatchWarning, match="not the official SSv2 ids"):
        meta = load_metadata([labels, samples_dir / "ssv2_metadata.json"])
    assert meta["2"].class_id == official_from_file().index("Pretending to pick something up")


@pytest.mark.shared
def test_fewshot_split_templates_all_known(shared_data: Path) -> None:
    path = shared_data / "ssv2_something_else" / "dataset_splits" / "fewshot" / "base_validation_set.json"
    assert detect_metadata_kind(path) == "entries_json"
    meta = load_metadata(path)
    assert len(meta) == 12467 and all(0 <= m.class_id < 174 for m in meta.values())
    assert meta["80962"].label == "poking frog so it slightly moves"


def test_template_helpers() -> None:
    assert template_key("Putting [something] onto  [Something]") == template_key("putting something onto something")
    assert fill_template("Putting [something] onto [something]", ["cup"]) == "Putting cup onto [something]"


# ----------------------------------------------------------------------------------------------------
# Clip discovery
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("123.webm", "123"),
        ("121896_with_masks.webm", "121896"),
        ("clip_7.mp4", "clip_7"),
        ("0042.mkv", "42"),
        ("a/b/99.AVI", "99"),
        ("frames/80962", "80962"),
        ("12a_3.webm", "12a_3"),
    ],
)
def test_video_id_from_path(name: str, expected: str) -> None:
    assert video_id_from_path(name) == expected


def test_discover_clips(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("10.webm", "9.mp4", "b.mkv", "notes.txt"):
        (videos / name).write_bytes(b"")
    (tmp_path / "frames" / "3").mkdir(parents=True)
    (tmp_path / "frames" / ".hidden").mkdir()
    listing = tmp_path / "list.txt"
    listing.write_text("# clips\nother/121896_x.avi\n\n")
    found = discover_clips([str(videos), str(listing)], frames_root=str(tmp_path / "frames"))
    assert [(s.video_id, s.kind) for s in found] == [
        ("3", "frames"),
        ("9", "video"),
        ("10", "video"),
        ("121896", "video"),
        ("b", "video"),
    ]
    assert found[3].path == str(tmp_path / "other" / "121896_x.avi")  # relative to the list file


def test_discover_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "2.webm").write_bytes(b"")
    (tmp_path / "2_copy.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="duplicate video id 2"):
        discover_clips([str(tmp_path)])


def test_discover_missing_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        discover_clips([str(tmp_path / "nope")])


def test_discover_samples(samples_dir: Path) -> None:
    found = discover_clips([str(samples_dir / "videos")], str(samples_dir / "frames"))
    assert [(s.video_id, s.kind, Path(s.path).name) for s in found] == [
        ("2", "video", "2.webm"),
        ("13201", "video", "13201.mp4"),
        ("80962", "frames", "80962"),
    ]


# ----------------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("video_id", "name", "n_frames", "width_px"), [("2", "2.webm", 48, 427), ("13201", "13201.mp4", 49, 320)]
)
def test_read_video_samples(samples_dir: Path, video_id: str, name: str, n_frames: int, width_px: int) -> None:
    clip = read_clip(ClipSource(video_id, str(samples_dir / "videos" / name), "video"))
    assert clip.frames_rgb.dtype == np.uint8
    assert (clip.n_frames, clip.height, clip.width, clip.frames_rgb.shape[3]) == (n_frames, 240, width_px, 3)
    assert clip.fps == 12.0 and clip.video_id == video_id


@pytest.mark.shared
@pytest.mark.parametrize(("video_id", "name"), [("2", "2.webm"), ("13201", "13201.mp4")])
def test_video_samples_match_source_jpegs(shared_data: Path, samples_dir: Path, video_id: str, name: str) -> None:
    clip = read_clip(ClipSource(video_id, str(samples_dir / "videos" / name), "video"))
    jpegs = sorted(shared_data.joinpath(*SHARED_FRAMES, video_id).glob("*.jpg"))
    ref = np.stack([rgb_jpeg(p) for p in jpegs]).astype(np.int16)
    assert clip.n_frames == len(jpegs)
    diff = np.abs(clip.frames_rgb.astype(np.int16) - ref).mean()
    diff_bgr = np.abs(clip.frames_rgb[..., ::-1].astype(np.int16) - ref).mean()
    diff_shifted = np.abs(clip.frames_rgb[1:].astype(np.int16) - ref[:-1]).mean()
    assert diff < 4.0 and diff < diff_bgr and diff < diff_shifted  # right picture, channel order, frame order


def test_read_frame_folder(samples_dir: Path) -> None:
    folder = samples_dir / "frames" / "80962"
    clip = read_clip(ClipSource("80962", str(folder), "frames"), frames_fps=12.0)
    assert (clip.n_frames, clip.height, clip.width) == (58, 240, 427) and clip.fps == 12.0
    np.testing.assert_array_equal(clip.frames_rgb[0], rgb_jpeg(folder / "0001.jpg"))
    np.testing.assert_array_equal(clip.frames_rgb[57], rgb_jpeg(folder / "0058.jpg"))


@pytest.mark.shared
def test_read_vp8_webm_with_suffix(shared_data: Path) -> None:
    (src,) = discover_clips([str(shared_data / "ssv2_videos" / "121896_with_masks.webm")])
    clip = read_clip(src)
    assert (src.video_id, clip.n_frames, clip.width, clip.height, clip.fps) == ("121896", 132, 427, 240, 12.0)


def cut(path: Path, out: Path, fraction: float) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def test_video_errors(samples_dir: Path, tmp_path: Path) -> None:
    webm, mp4 = samples_dir / "videos" / "2.webm", samples_dir / "videos" / "13201.mp4"
    garbage = tmp_path / "5.webm"
    garbage.write_bytes(b"not a video" * 100)
    cases = [
        (tmp_path / "missing.webm", "missing file"),
        (garbage, "unreadable video"),
        (
            cut(webm, tmp_path / "half.webm", 0.5),
            "truncated or corrupt: decoded 20 frames, container says 48",
        ),
        (cut(mp4, tmp_path / "half.mp4", 0.5), "unreadable video"),  # moov atom at the end is gone
        (cut(webm, tmp_path / "header.webm", 0.01), "no frames decoded"),
        (samples_dir / "something_else.json", "unreadable video"),
    ]
    for path, needle in cases:
        with pytest.raises(ClipError) as excinfo:
            read_clip(ClipSource("77", str(path), "video"))
        assert excinfo.value.video_id == "77"
        assert_one_line_error(excinfo, "77", needle)


@pytest.fixture
def frames_copy(samples_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the first 6 frames of 80962."""
    dst = tmp_path / "80962"
    dst.mkdir()
    for i in range(1, 7):
        shutil.copy(samples_dir / "frames" / "80962" / f"{i:04d}.jpg", dst)
    return dst


def test_frame_folder_copy_reads(frames_copy: Path) -> None:
    (frames_copy / "DONE").write_bytes(b"")  # marker files are ignored
    assert read_clip(ClipSource("80962", str(frames_copy), "frames")).n_frames == 6


@pytest.mark.parametrize("case", ["gap", "unreadable", "truncated", "size", "zero_based", "empty", "missing", "dup"])
def test_frame_folder_errors(frames_copy: Path, case: str) -> None:
    needle = {
        "gap": "missing frame 0005.jpg",
        "unreadable": "unreadable frame 0003.jpg",
        "truncated": "unreadable frame 0004.jpg",
        "size": "frame 0006.jpg is 100x50 px, 0001.jpg is 427x240 px",
        "zero_based": "starts at 0000.jpg",
        "empty": "empty frame folder",
        "missing": "missing frame folder",
        "dup": "two files for frame 2",
    }[case]
    if case == "gap":
        (frames_copy / "0005.jpg").unlink()
    elif case == "unreadable":
        (frames_copy / "0003.jpg").write_bytes(b"\x00" * 500)
    elif case == "truncated":
        data = (frames_copy / "0004.jpg").read_bytes()
        (frames_copy / "0004.jpg").write_bytes(data[: len(data) // 2])
    elif case == "size":
        cv2.imwrite(str(frames_copy / "0006.jpg"), np.zeros((50, 100, 3), np.uint8))
    elif case == "zero_based":
        shutil.copy(frames_copy / "0001.jpg", frames_copy / "0000.jpg")
    elif case == "empty":
        for p in frames_copy.iterdir():
            p.unlink()
    elif case == "missing":
        shutil.rmtree(frames_copy)
    elif case == "dup":
        shutil.copy(frames_copy / "0002.jpg", frames_copy / "02.jpg")
    with pytest.raises(ClipError) as excinfo:
        read_clip(ClipSource("80962", str(frames_copy), "frames"))
    assert_one_line_error(excinfo, "80962", needle)
