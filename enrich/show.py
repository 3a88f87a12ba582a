"""Overlay drawing: a clip's stored results over its pixels, as a video or a PNG contact sheet.

Each rendered frame is the original frame scaled by ``scale`` (SSv2 frames are 240 px high: too small for text),
with the projected hand mesh (tint), the Something-Else boxes, the 2D skeletons, contact highlights, and a side
panel on the right holding the text and two orthographic views (side, top) of the fitted 3D joints.
Everything is drawn with cv2 (matplotlib per frame is far too slow for videos).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from enrich.constants import FINGERTIPS, HAND_NAMES, HAND_SLOT, SIDES
from enrich.errors import ClipError, ShowError
from enrich.loading import hand_models_of, mesh_vertices
from enrich.records import ClipBoxes, ClipResult, ContactFrames, RobotTrack
from enrich.robot import RobotHand, load_robot, retarget_track
from enrich.robot.draw import CameraView, camera_points, link_segments, project_px
from enrich.store import open_results

# MediaPipe hand skeleton: thumb, index, middle, ring, pinky chains and the palm.
SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16), (0, 17), (13, 17), (17, 18), (18, 19), (19, 20),
)  # fmt: skip

# Colours are RGB (frames are RGB throughout; cv2 does not care about channel order).
SIDE_COLOURS: dict[str, tuple[int, int, int]] = {"left": (255, 140, 0), "right": (0, 200, 255)}
HAND_BOX_COLOUR = (255, 255, 255)
OBJECT_BOX_COLOUR = (255, 230, 0)
CONTACT_COLOUR = (255, 0, 60)
TEXT_COLOUR = (235, 235, 235)
PANEL_BG = (30, 30, 30)

DEFAULT_SCALE = 2
MESH_ALPHA = 0.35  # share of the side colour in the tinted mesh region
KEYPOINT_RADIUS = 3
TIP_RING_RADIUS = 8
BOX_THICKNESS, CONTACT_BOX_THICKNESS = 1, 4
PANEL_WIDTH = 220  # px at any scale: holds the text and the 3D views
ROBOT_BACKDROP = 0.45  # the frame behind the robot hands, dimmed to this share
ROBOT_COLOURS: dict[str, tuple[int, int, int]] = {"left": (255, 200, 120), "right": (140, 235, 255)}
VIEW_SPAN_M = 0.30  # metres across one 3D view
FONT = cv2.FONT_HERSHEY_SIMPLEX
SUBPIXEL_BITS = 4  # cv2 drawing with fractional coordinates: points are multiplied by 2**4

# Fixed rotations of camera-frame points (x right, y down, z forward) into the views (x right, y down on screen).
VIEWS: dict[str, np.ndarray] = {
    "side (from right)": np.array([[0, 0, -1], [0, 1, 0], [1, 0, 0]], np.float64),  # depth runs right to left
    "top (from above)": np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.float64),  # depth runs up the view
}


# ------------------------------------------------------------------------------------------- geometry


def _rows_by_frame(frame_index: np.ndarray) -> dict[int, int]:
    return {int(f): i for i, f in enumerate(frame_index)}


def project(points: np.ndarray, focal_px: float, width: int, height: int) -> np.ndarray:
    """(..., 3) camera-frame metres -> (..., 2) pixels of the original frame (pinhole, centre principal point)."""
    z = np.maximum(points[..., 2:3], 1e-6)  # points behind the camera would flip; the fit never puts them there
    return points[..., :2] / z * focal_px + np.array([width / 2, height / 2])


# ------------------------------------------------------------------------------------------- drawing


def _fixed(points_px: np.ndarray) -> np.ndarray:
    return np.round(points_px * (1 << SUBPIXEL_BITS)).astype(np.int32)


def _tint_mesh(img: np.ndarray, faces_px: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Blend ``colour`` into every pixel covered by a face (a flat tint: no depth order needed)."""
    mask = np.zeros(img.shape[:2], np.uint8)
    for face in _fixed(faces_px):  # one call per face: fillPoly on many polygons leaves their overlaps unfilled
        cv2.fillConvexPoly(mask, face, 255, cv2.LINE_8, SUBPIXEL_BITS)
    inside = mask > 0
    img[inside] = (img[inside] * (1 - MESH_ALPHA) + np.array(colour) * MESH_ALPHA).astype(np.uint8)


def _draw_boxes(img: np.ndarray, boxes: ClipBoxes, frame: int, scale: float, contact_slots: set[int]) -> None:
    keep = boxes.frame_index == frame
    for slot, box in zip(boxes.slot[keep].tolist(), boxes.box_xyxy_px[keep], strict=True):
        hot = slot != HAND_SLOT and slot in contact_slots
        colour = HAND_BOX_COLOUR if slot == HAND_SLOT else CONTACT_COLOUR if hot else OBJECT_BOX_COLOUR
        x1, y1, x2, y2 = (np.asarray(box) * scale).round().astype(int).tolist()
        cv2.rectangle(img, (x1, y1), (x2, y2), colour, CONTACT_BOX_THICKNESS if hot else BOX_THICKNESS)
        name = "hand" if slot == HAND_SLOT else _slot_name(boxes, slot)
        label = f"{name} in contact" if hot else name
        cv2.putText(img, label, (x1 + 2, max(y1 - 4, 10)), FONT, 0.4, colour, 1, cv2.LINE_AA)


def _draw_skeleton(img: np.ndarray, kp_px: np.ndarray, colour: tuple[int, int, int], tips_in_contact: int) -> None:
    pts = [tuple(p) for p in _fixed(kp_px).tolist()]
    for a, b in SKELETON:
        cv2.line(img, pts[a], pts[b], colour, 2, cv2.LINE_AA, SUBPIXEL_BITS)
    for bit, tip in enumerate(FINGERTIPS):  # rings under the dots: they must not hide nearby joints
        if tips_in_contact >> bit & 1:
            cv2.circle(img, pts[tip], TIP_RING_RADIUS << SUBPIXEL_BITS, CONTACT_COLOUR, 2, cv2.LINE_AA, SUBPIXEL_BITS)
    for p in pts:
        cv2.circle(img, p, KEYPOINT_RADIUS << SUBPIXEL_BITS, colour, -1, cv2.LINE_AA, SUBPIXEL_BITS)


def _draw_view(joints: dict[str, np.ndarray], rotation: np.ndarray, size: int, title: str) -> np.ndarray:
    """Orthographic view of each side's (21, 3) joints, centred on their mean, ``VIEW_SPAN_M`` across."""
    view = np.full((size, size, 3), PANEL_BG, np.uint8)
    cv2.rectangle(view, (0, 0), (size - 1, size - 1), (90, 90, 90), 1)
    cv2.putText(view, title, (4, 14), FONT, 0.4, TEXT_COLOUR, 1, cv2.LINE_AA)
    if joints:
        centre = np.concatenate(list(joints.values())).mean(axis=0)
        for side, j in joints.items():
            xy = (j - centre) @ rotation.T * (size / VIEW_SPAN_M) + size / 2
            pts = [tuple(p) for p in _fixed(xy[:, :2]).tolist()]
            for a, b in SKELETON:
                cv2.line(view, pts[a], pts[b], SIDE_COLOURS[side], 2, cv2.LINE_AA, SUBPIXEL_BITS)
    return view


def _panel(height: int, lines: list[tuple[str, tuple[int, int, int]]], joints: dict[str, np.ndarray]) -> np.ndarray:
    panel = np.full((height, PANEL_WIDTH, 3), PANEL_BG, np.uint8)
    y = 18
    for text, colour in lines:
        cv2.putText(panel, text, (6, y), FONT, 0.45, colour, 1, cv2.LINE_AA)
        y += 18
    size = min(PANEL_WIDTH, (height - y) // len(VIEWS))
    for title, rotation in VIEWS.items():
        if size > 20:  # too little room at small scales: text only
            panel[y : y + size, :size] = _draw_view(joints, rotation, size, title)
        y += size
    return panel


@dataclass
class RobotHands:
    """What the robot panel needs: the model, its tracks per side, whether to try MuJoCo, and once the frame
    size is known the MuJoCo camera view (None: drawn links, ``note`` says why)."""

    robot: RobotHand
    tracks: dict[str, RobotTrack]
    mujoco: bool = True
    view: CameraView | None = None
    note: str = ""


def _robot_links(panel: np.ndarray, robot: RobotHand, rt: RobotTrack, row: int, focal_px: float) -> None:
    """The robot's links in the camera's view (pinhole of the clip's focal length), drawn with cv2."""
    seg = link_segments(robot, rt.angles_rad[row : row + 1].astype(np.float64))[0]
    xy = project_px(camera_points(robot, rt, row, seg), focal_px, panel.shape[1], panel.shape[0])
    for a, b in _fixed(xy).tolist():
        cv2.line(panel, tuple(a), tuple(b), ROBOT_COLOURS[rt.side], 2, cv2.LINE_AA, SUBPIXEL_BITS)
    for q in _fixed(xy.reshape(-1, 2)).tolist():
        cv2.circle(panel, tuple(q), 2 << SUBPIXEL_BITS, TEXT_COLOUR, -1, cv2.LINE_AA, SUBPIXEL_BITS)


def _robot_panel(frame: np.ndarray, hands: RobotHands, rows: dict[str, int], focal_px: float) -> np.ndarray:
    """The frame, dimmed, with the robot hands over the human ones as the camera sees them (MuJoCo render, else
    the drawn links), at the human hand's size; a line says which drawing it is."""
    panel = (frame.astype(np.float32) * ROBOT_BACKDROP).astype(np.uint8)
    for side, row in rows.items():
        rt = hands.tracks[side]
        if hands.view is not None:
            rgb, mask = hands.view.render(rt, row)
            panel[mask] = rgb[mask]
        else:
            _robot_links(panel, hands.robot, rt, row, focal_px)
    how = "MuJoCo render" if hands.view is not None else f"drawn links ({hands.note})"
    cv2.putText(panel, f"{hands.robot.name}: {how}", (4, 14), FONT, 0.4, TEXT_COLOUR, 1, cv2.LINE_AA)
    for k, (side, row) in enumerate(sorted(rows.items())):
        text = f"{side} {hands.tracks[side].residual_mm[row]:.0f} mm"
        cv2.putText(panel, text, (4, 30 + 14 * k), FONT, 0.4, ROBOT_COLOURS[side], 1, cv2.LINE_AA)
    return panel


def robot_hands(record: ClipResult, robot_name: str, *, mujoco: bool = True) -> RobotHands:
    """The clip's stored tracks of ``robot_name``, or retargeted now where a fit has none stored."""
    robot = load_robot(robot_name)
    tracks = {}
    for side, hand in record.hands.items():
        if robot_name in hand.robots:
            tracks[side] = hand.robots[robot_name]
        elif hand.fit is not None and len(hand.fit):
            tracks[side] = retarget_track(hand.fit, robot)
    return RobotHands(robot, tracks, mujoco, None, "" if mujoco else "MuJoCo not asked for")


# ------------------------------------------------------------------------------------------- frames


def _contacts_by_frame(contacts: ContactFrames | None) -> dict[int, list[tuple[str, int, int]]]:
    """frame -> [(hand, object_slot, fingers)] of the rows inside a contact segment."""
    out: dict[int, list[tuple[str, int, int]]] = {}
    if contacts is None:
        return out
    hot = np.flatnonzero(contacts.in_contact)
    columns = (contacts.frame_index[hot], contacts.hand[hot], contacts.object_slot[hot], contacts.fingers[hot])
    for f, hand, slot, fingers in zip(*columns, strict=True):
        out.setdefault(int(f), []).append((HAND_NAMES[int(hand)], int(slot), int(fingers)))
    return out


def _slot_name(boxes: ClipBoxes | None, slot: int) -> str:
    """The object's Something-Else name ("pillow"), or "object <slot>" when the boxes carry none."""
    names = boxes.slot_names if boxes is not None else ()
    return names[slot] if 0 <= slot < len(names) and names[slot] else f"object {slot}"


def _finger_letters(bits: int) -> str:
    return "".join(letter for k, letter in enumerate("TIMRP") if bits >> k & 1)


def render_frames(
    record: ClipResult,
    frames_rgb: np.ndarray,
    boxes: ClipBoxes | None,
    hand_models: dict[str, Any] | None,
    contacts: ContactFrames | None,
    *,
    scale: int = DEFAULT_SCALE,
    robots: RobotHands | None = None,
) -> np.ndarray:
    """(T, H*scale, W*scale + PANEL_WIDTH [+ W*scale], 3) uint8 RGB: the clip's results drawn over its frames,
    and with ``robots`` the robot hands in the camera's view over a dimmed copy of the frame, on the right."""
    n, h, w = frames_rgb.shape[:3]
    hands = {side: record.hands[side] for side in SIDES if side in record.hands}
    kp_rows = {side: _rows_by_frame(t.frame_index) for side, t in hands.items()}
    fits = {side: t for side, t in hands.items() if t.fit is not None}
    fit_rows = {side: _rows_by_frame(t.fit.frame_index) for side, t in fits.items()}
    faces_px: dict[str, np.ndarray] = {}  # side -> (T', F, 3, 2) projected faces in output pixels
    if hand_models and record.focal_px > 0:
        for side, track in fits.items():
            verts_px = project(mesh_vertices(track, hand_models[side]), record.focal_px, w, h) * scale
            faces_px[side] = verts_px[:, np.asarray(hand_models[side].faces)]
    in_contact = _contacts_by_frame(contacts)
    robot_rows = {side: _rows_by_frame(rt.frame_index) for side, rt in robots.tracks.items()} if robots else {}
    focal_px = (record.focal_px or max(w, h)) * scale  # enrich run's focal when the clip was not lifted
    if robots is not None and robots.mujoco and robots.view is None:
        robots.view, robots.note = CameraView.open(robots.robot, w * scale, h * scale, focal_px)
    extra = w * scale if robots else 0
    out = np.empty((n, h * scale, w * scale + PANEL_WIDTH + extra, 3), np.uint8)
    for f in range(n):
        img = cv2.resize(frames_rgb[f], (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
        for side, faces in faces_px.items():
            if f in fit_rows[side]:
                _tint_mesh(img, faces[fit_rows[side][f]], SIDE_COLOURS[side])
        rows = in_contact.get(f, [])
        if boxes is not None:
            _draw_boxes(img, boxes, f, scale, {slot for _, slot, _ in rows})
        for side, track in hands.items():
            if f in kp_rows[side]:
                kp_px = track.keypoints2d[kp_rows[side][f], :, :2] * scale
                fingers = np.bitwise_or.reduce([m for hand, _, m in rows if hand == side] or [0])
                _draw_skeleton(img, kp_px, SIDE_COLOURS[side], int(fingers))
        joints = {s: t.fit.joints3d[fit_rows[s][f]] for s, t in fits.items() if f in fit_rows[s]}
        out[f, :, : w * scale] = img
        out[f, :, w * scale : w * scale + PANEL_WIDTH] = _panel(
            h * scale, _panel_lines(record, f, n, kp_rows, rows, boxes), joints
        )
        if robots is not None:
            at = {side: r[f] for side, r in robot_rows.items() if f in r}
            out[f, :, w * scale + PANEL_WIDTH :] = _robot_panel(out[f, :, : w * scale], robots, at, focal_px)
    return out


def _panel_lines(
    record: ClipResult,
    f: int,
    n: int,
    kp_rows: dict[str, dict[int, int]],
    rows: list[tuple[str, int, int]],
    boxes: ClipBoxes | None = None,
) -> list[tuple[str, tuple[int, int, int]]]:
    lines = [(f"clip {record.video_id}", TEXT_COLOUR), (f"frame {f} / {n - 1}", TEXT_COLOUR)]
    lines += [(f"{side} hand", SIDE_COLOURS[side]) for side in SIDES if f in kp_rows.get(side, {})]
    for hand, slot, fingers in rows:  # the finger set (T I M R P) where keypoints or the segment tell it
        with_fingers = f" ({_finger_letters(fingers)})" if fingers else ""
        lines.append((f"{hand} touches {_slot_name(boxes, slot)}{with_fingers}", CONTACT_COLOUR))
    return lines


# ------------------------------------------------------------------------------------------- output


def sheet_indices(n_frames: int, n: int) -> np.ndarray:
    """Evenly spaced frames of a contact sheet, first and last included."""
    return np.unique(np.linspace(0, n_frames - 1, min(n, n_frames)).round().astype(int))


def write_contact_sheet(frames: np.ndarray, path: str | Path, n: int = 12) -> Path:
    """PNG grid of ``sheet_indices`` frames at full size, ceil(sqrt(n)) columns, row-major."""
    picked = frames[sheet_indices(len(frames), n)]
    cols = math.ceil(math.sqrt(len(picked)))
    rows = math.ceil(len(picked) / cols)
    h, w = picked.shape[1:3]
    sheet = np.zeros((rows * h, cols * w, 3), np.uint8)
    for k, tile in enumerate(picked):
        r, c = divmod(k, cols)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = tile
    path = Path(path)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {path}")
    return path


def write_video(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """H.264 (yuv420p) video with PyAV; odd sizes are padded by a pixel (the chroma planes need even ones)."""
    h, w = frames.shape[1:3]
    frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps) or 12)
        stream.width, stream.height, stream.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


# ------------------------------------------------------------------------------------------- show


def _read_pixels(record: ClipResult, source: str | None) -> np.ndarray:
    from enrich.inputs import read_clip
    from enrich.records import ClipSource

    path = Path(source or record.source)
    if not str(path) or not path.exists():
        hint = "" if source else ": give the clip's video or frame folder with --source"
        raise ShowError(record.video_id, f"no pixels found at {str(path) or '(no stored source)'}{hint}")
    try:
        clip = read_clip(ClipSource(record.video_id, str(path), "frames" if path.is_dir() else "video"),
                         frames_fps=record.fps)  # fmt: skip
    except ClipError as e:
        raise ShowError(record.video_id, f"cannot read {path}: {e.cause}") from None
    if (clip.n_frames, clip.height, clip.width) != (record.n_frames, record.height, record.width):
        raise ShowError(
            record.video_id,
            f"{path} has {clip.n_frames} frames of {clip.width}x{clip.height}, the results "
            f"{record.n_frames} of {record.width}x{record.height}: not the clip that was enriched",
        )
    return clip.frames_rgb


def show(
    results_path: str | Path,
    video_id: str,
    source: str | None,
    out_path: str | Path,
    boxes_paths: list[str] | None = None,
    *,
    scale: int = DEFAULT_SCALE,
    robot: str | None = None,
) -> Path:
    """Render one clip's results over its pixels into ``out_path`` (.mp4 video or .png contact sheet); with
    ``robot`` ("shadow"), the robot hands beside them (stored tracks, else retargeted on the fly)."""
    out_path = Path(out_path)
    if out_path.suffix.lower() not in (".mp4", ".png"):
        raise ShowError(video_id, f"output {out_path} must end in .mp4 or .png")
    with open_results(results_path) as results:
        if video_id not in results:
            raise ShowError(video_id, f"not in {results_path}")
        record = results[video_id]
        if record.status != "ok":
            raise ShowError(video_id, f"failed in the run ({record.error}); nothing to show")
        frames = _read_pixels(record, source)
        contacts = record.tracks.contacts.frames if record.tracks and record.tracks.contacts else None
        models = hand_models_of(results)
    boxes = None
    if boxes_paths:
        from enrich.inputs import load_boxes

        with load_boxes(boxes_paths) as index:
            boxes = index.get(video_id)
    robots = robot_hands(record, robot) if robot else None
    rendered = render_frames(record, frames, boxes, models, contacts, scale=scale, robots=robots)
    if out_path.suffix.lower() == ".png":
        return write_contact_sheet(rendered, out_path)
    return write_video(rendered, out_path, record.fps)
