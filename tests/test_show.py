"""Overlay drawing: what is drawn where, on the bundled samples (one pipeline run per module)."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import enrich
from enrich.cli import main
from enrich.inputs import ClipSource, load_boxes, read_clip
from enrich.show import (
    DEFAULT_SCALE,
    SIDE_COLOURS,
    hand_models_of,
    render_frames,
    sheet_indices,
    show,
    write_contact_sheet,
)

VID = "2"
SCALE = DEFAULT_SCALE
WIDTH_HEIGHT = (427, 240)  # clip 2, checked in the fixture


@pytest.fixture(scope="module")
def results_path(sample_results: Path) -> Path:
    return sample_results


@pytest.fixture(scope="module")
def clip(results_path: Path, samples_dir: Path) -> dict:
    with enrich.open_results(results_path) as results:
        record = results[VID]
        contacts = record.tracks.contacts.frames
        models = hand_models_of(results)
    frames = read_clip(ClipSource(VID, record.source, "video")).frames_rgb
    assert (frames.shape[2], frames.shape[1]) == WIDTH_HEIGHT
    with load_boxes([samples_dir / "something_else.json"]) as index:
        boxes = index.get(VID)
    rendered = render_frames(record, frames, boxes, models, contacts)
    return {"record": record, "frames": frames, "boxes": boxes, "models": models, "contacts": contacts,
            "rendered": rendered}  # fmt: skip


def _upscaled(frame: np.ndarray) -> np.ndarray:
    return cv2.resize(frame, (frame.shape[1] * SCALE, frame.shape[0] * SCALE), interpolation=cv2.INTER_LINEAR)


def _pixels(keypoints_px: np.ndarray, width: int, height: int) -> np.ndarray:
    """(K, 2) rendered pixel of each keypoint inside the original frame (fitted keypoints may leave it)."""
    xy = np.round(keypoints_px * SCALE).astype(int)
    return xy[(xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < width * SCALE) & (xy[:, 1] < height * SCALE)]


def _share_coloured(img: np.ndarray, keypoints_px: np.ndarray, colour: tuple[int, int, int]) -> float:
    """Share of the in-frame keypoints whose rendered pixel has exactly ``colour``."""
    xy = _pixels(keypoints_px, *WIDTH_HEIGHT)
    assert len(xy) > 10
    return float(np.mean(np.all(img[xy[:, 1], xy[:, 0]] == colour, axis=1)))


def test_keypoints_drawn_in_side_colour(clip: dict) -> None:
    right = clip["record"].hands["right"]
    assert clip["rendered"].shape[0] == len(clip["frames"])
    for row, f in enumerate(right.frame_index[:: max(1, len(right) // 8)]):
        kp = right.keypoints2d[row * max(1, len(right) // 8), :, :2]
        assert _share_coloured(clip["rendered"][f], kp, SIDE_COLOURS["right"]) >= 0.9
        assert _share_coloured(_upscaled(clip["frames"][f]), kp, SIDE_COLOURS["right"]) < 0.1
        assert _share_coloured(clip["rendered"][f], kp, SIDE_COLOURS["left"]) == 0


def test_mesh_region_is_tinted(clip: dict) -> None:
    c = clip
    plain = render_frames(c["record"], c["frames"], None, None, None)
    meshed = render_frames(c["record"], c["frames"], None, c["models"], None)
    right = c["record"].hands["right"]
    f = int(right.fit.frame_index[len(right.fit) // 2])
    changed = np.any(meshed[f] != plain[f], axis=2)
    assert changed.sum() > 1000  # a hand 40+ px across at scale 2
    ys, xs = np.nonzero(changed)
    kp = right.keypoints2d[list(right.frame_index).index(f), :, :2] * SCALE
    centre = np.array([xs.mean(), ys.mean()])
    assert np.all(centre > kp.min(axis=0) - 20) and np.all(centre < kp.max(axis=0) + 20)  # on the hand
    colour = np.array(SIDE_COLOURS["right"], float)
    dist = lambda img: np.abs(img[changed].astype(float) - colour).sum(axis=1).mean()  # noqa: E731
    assert dist(meshed[f]) < dist(plain[f])  # pulled towards the right-hand colour


def test_contact_box_highlighted(clip: dict) -> None:
    c = clip
    hot = np.flatnonzero(c["contacts"].in_contact)
    assert len(hot)  # clip 2: the right hand holds object 0
    without = render_frames(c["record"], c["frames"], c["boxes"], None, None)
    f, slot = int(c["contacts"].frame_index[hot[0]]), int(c["contacts"].object_slot[hot[0]])
    box = c["boxes"].box_xyxy_px[(c["boxes"].frame_index == f) & (c["boxes"].slot == slot)][0] * SCALE
    x1, y1, _, y2 = box.round().astype(int)
    edge = (slice(y1 + 5, y2 - 5), x1 + 1)  # just inside the left edge: thick only when in contact
    assert not np.array_equal(c["rendered"][f][edge], without[f][edge])


def test_contact_sheet(clip: dict, tmp_path: Path) -> None:
    rendered, frames = clip["rendered"], clip["frames"]
    path = write_contact_sheet(rendered, tmp_path / "sheet.png", n=12)
    sheet = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    h, w = rendered.shape[1:3]
    assert sheet.shape == (3 * h, 4 * w, 3)  # 12 tiles: 4 columns, 3 rows
    right = clip["record"].hands["right"]
    rows = {int(f): i for i, f in enumerate(right.frame_index)}
    checked = 0
    for k, f in enumerate(sheet_indices(len(rendered), 12)):
        tile = sheet[k // 4 * h : (k // 4 + 1) * h, k % 4 * w : (k % 4 + 1) * w]
        assert np.array_equal(tile, rendered[f])  # lossless and in order
        if f in rows:
            kp = right.keypoints2d[rows[f], :, :2]
            assert _share_coloured(tile, kp, SIDE_COLOURS["right"]) >= 0.9
            assert _share_coloured(_upscaled(frames[f]), kp, SIDE_COLOURS["right"]) < 0.1
            checked += 1
    assert checked >= 3


def test_show_writes_a_decodable_mp4(results_path: Path, samples_dir: Path, tmp_path: Path) -> None:
    out = show(results_path, VID, None, tmp_path / "2.mp4", [str(samples_dir / "something_else.json")])
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with enrich.open_results(results_path) as results:
        record = results[VID]
    assert len(decoded) == record.n_frames
    assert decoded[0].shape == (record.height * SCALE, record.width * SCALE + 220 + (record.width * SCALE) % 2, 3)


def test_show_errors(results_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="clip nope: not in"):
        show(results_path, "nope", None, tmp_path / "x.png")
    with pytest.raises(ValueError, match="clip 2: no pixels found"):
        show(results_path, VID, str(tmp_path / "missing.webm"), tmp_path / "x.png")
    bad = tmp_path / "999.webm"
    bad.write_bytes(b"not a video")
    failed = tmp_path / "failed.h5"
    main(["run", "-q", str(bad), "-o", str(failed), "--workers", "1"])
    with pytest.raises(ValueError, match=r"clip 999: failed in the run \(.+\)"):
        show(failed, "999", None, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
