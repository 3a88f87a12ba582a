"""The MediaPipe hand models run directly, and the geometry of their regions of interest.

The hand-landmark and palm-detection models are the TFLite files inside the ``mediapipe==0.10.21`` wheel, run
directly with ai-edge-litert so that the regions of interest are ours. Crops follow MediaPipe's convention: a
square, rotated rectangle (centre, side, rotation) mapped onto the model input; a crop point ``q`` in [0, 1]^2
lands on image pixel ``centre + side * R(rotation) @ (q - 0.5)``.
"""

from __future__ import annotations

import math
from importlib.util import find_spec
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from enrich.constants import N_KEYPOINTS
from enrich.stderr import native_stderr_silenced

LANDMARK_INPUT_PX = 224
PALM_INPUT_PX = 192
LANDMARK_MODEL = "modules/hand_landmark/hand_landmark_full.tflite"
PALM_MODEL = "modules/palm_detection/palm_detection_full.tflite"
Z_NORMALISATION = 0.4  # MediaPipe's TensorsToLandmarks normalize_z for the hand model

# MediaPipe HandLandmarksToRect: landmarks that define the hand's extent (no fingertips) and its direction.
ROI_LANDMARKS = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])
WRIST, INDEX_MCP, MIDDLE_MCP, RING_MCP = 0, 5, 9, 13
LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT_Y = 2.0, -0.1
# MediaPipe palm_detection_detection_to_roi: palm box -> whole-hand region.
PALM_ROI_SCALE, PALM_ROI_SHIFT_Y = 2.6, -0.5
PALM_WRIST_KP, PALM_MIDDLE_KP = 0, 2
PALM_NMS_IOU = 0.3


def _model_path(relative: str) -> str:
    """A model file inside the installed mediapipe package, found without importing it: its import (solutions,
    drawing utilities, protobufs) takes 0.6-1 s per process and per worker, and only two files are needed."""
    spec = find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "mediapipe is not installed: pip install mediapipe==0.10.21 (it carries the hand models)"
        )
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: mediapipe==0.10.21 is the last wheel that carries the hand models")
    return str(path)


def _palm_anchors() -> np.ndarray:
    """(2016, 2) anchor centres in [0, 1] for palm_detection_full (SSD, strides 8/16/16/16, fixed size)."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = PALM_INPUT_PX // stride
        yy, xx = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grid = np.stack([(xx + 0.5) / cells, (yy + 0.5) / cells], -1).reshape(-1, 1, 2)
        centres.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(centres).astype(np.float32)


class HandModels:
    """The two MediaPipe TFLite models, loaded once per process (or worker).

    Crops are warped straight into the landmark model's input tensor: one uint8 warp and one lookup-table pass
    (scale to [0, 1], gamma-lift if dark) per crop, no float copies."""

    def __init__(self, num_threads: int = 1, dark_crop_mean: float = 0.0) -> None:
        self.dark_crop_mean = dark_crop_mean
        self.landmark_crops = 0  # crops run so far: the 2D stage's cost in model calls
        self.palm_runs = 0
        with native_stderr_silenced():  # TFLite's "INFO: Created ... XNNPACK delegate" lines, one per model
            self.landmark = Interpreter(_model_path(LANDMARK_MODEL), num_threads=num_threads)
            self.landmark.allocate_tensors()  # batch 1
            self.palm = Interpreter(_model_path(PALM_MODEL), num_threads=num_threads)
            self.palm.allocate_tensors()
        self._landmark_in = self.landmark.get_input_details()[0]["index"]
        self._landmark_out = [o["index"] for o in self.landmark.get_output_details()]
        self._palm_in = self.palm.get_input_details()[0]["index"]
        outs = {o["shape"][-1]: o["index"] for o in self.palm.get_output_details()}
        self._palm_boxes_out, self._palm_scores_out = outs[18], outs[1]
        self._anchors = _palm_anchors()
        self._canvas = np.zeros((1, PALM_INPUT_PX, PALM_INPUT_PX, 3), np.float32)
        self._canvas_fit = (0, 0)  # resized frame size the canvas's zero padding was laid out for

    def landmarks(
        self, frame_rgb: np.ndarray, rois: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The regions ``rois`` of one frame -> screen (N, 21, 3) in crop px, presence (N,), raw handedness (N,)
        (P of MediaPipe's label "Left", which assumes a mirrored image), world (N, 21, 3) metres.

        One invocation per crop: batches are no cheaper per crop on CPU, and resizing the input re-plans the model."""
        outs = [self._landmarks_one(frame_rgb, roi) for roi in rois]
        screen, presence, handed, world = (np.stack([o[k] for o in outs]) if outs else np.zeros(0) for k in range(4))
        return (
            screen.reshape(-1, N_KEYPOINTS, 3),
            presence.reshape(-1),
            handed.reshape(-1),
            world.reshape(-1, N_KEYPOINTS, 3),
        )

    def _landmarks_one(self, frame_rgb: np.ndarray, roi: np.ndarray) -> list[np.ndarray]:
        self.landmark_crops += 1
        model_input = self.landmark.tensor(self._landmark_in)()  # a view of the input tensor, written in place
        to_input(crop(frame_rgb, roi), self.dark_crop_mean, model_input[0])
        del model_input  # the interpreter refuses to run while a view of its buffers is alive
        self.landmark.invoke()
        return [self.landmark.get_tensor(i) for i in self._landmark_out]

    def palms(self, frame_rgb: np.ndarray, min_score: float) -> list[tuple[float, np.ndarray, np.ndarray]]:
        """Palm detections as (score, box_xyxy_px (4,), keypoints_px (7, 2)), after weighted NMS."""
        self.palm_runs += 1
        h, w = frame_rgb.shape[:2]
        scale = PALM_INPUT_PX / max(w, h)
        rw, rh = round(w * scale), round(h * scale)
        off_x, off_y = (PALM_INPUT_PX - rw) // 2, (PALM_INPUT_PX - rh) // 2
        if (rw, rh) != self._canvas_fit:  # letterbox padding: zeroed once per frame size, not per run
            self._canvas[:] = 0
            self._canvas_fit = (rw, rh)
        to_input(cv2.resize(frame_rgb, (rw, rh)), 0.0, self._canvas[0, off_y : off_y + rh, off_x : off_x + rw])
        self.palm.set_tensor(self._palm_in, self._canvas)
        self.palm.invoke()
        raw = self.palm.get_tensor(self._palm_boxes_out)[0]
        logits = self.palm.get_tensor(self._palm_scores_out)[0][:, 0]
        score = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
        keep = score >= min_score
        if not keep.any():
            return []
        raw, score, anchors = raw[keep], score[keep], self._anchors[keep]
        centre = raw[:, :2] / PALM_INPUT_PX + anchors
        size = raw[:, 2:4] / PALM_INPUT_PX
        kps = raw[:, 4:].reshape(-1, 7, 2) / PALM_INPUT_PX + anchors[:, None]
        to_px = np.array([off_x, off_y], np.float32)

        def px(norm: np.ndarray) -> np.ndarray:
            return (norm * PALM_INPUT_PX - to_px) / scale

        boxes = np.concatenate([px(centre - size / 2), px(centre + size / 2)], 1)
        return _weighted_nms(score, boxes, px(kps))


def iou_xyxy(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-9)


def overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    """Share of the smaller box inside the larger: a partial view of a hand lies within the whole view."""
    inter = np.prod(np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None))
    smaller = min(np.prod(a[2:] - a[:2]), np.prod(b[2:] - b[:2]))
    return float(inter / max(smaller, 1e-9))


def _weighted_nms(score: np.ndarray, boxes: np.ndarray, kps: np.ndarray) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """MediaPipe's WEIGHTED suppression: overlapping candidates are averaged, weighted by score."""
    order = np.argsort(-score)
    score, boxes, kps = score[order], boxes[order], kps[order]
    alive = np.ones(len(score), bool)
    result = []
    for i in range(len(score)):
        if not alive[i]:
            continue
        group = alive & (iou_xyxy(boxes[i], boxes) > PALM_NMS_IOU)
        weight = score[group] / score[group].sum()
        result.append(
            (
                float(score[i]),
                (boxes[group] * weight[:, None]).sum(0),
                (kps[group] * weight[:, None, None]).sum(0),
            )
        )
        alive &= ~group
    return result


# --- regions of interest: (5,) float32 = centre x px, centre y px, width px, height px, rotation rad ---


def _rotation(start_xy: np.ndarray, end_xy: np.ndarray) -> float:
    """MediaPipe's rotation that turns the start->end vector to point up in the crop."""
    angle = math.pi / 2 - math.atan2(-(end_xy[1] - start_xy[1]), end_xy[0] - start_xy[0])
    return math.remainder(angle, 2 * math.pi)


def _rot(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]], np.float32)


def _square_roi(centre_px: np.ndarray, size_px: np.ndarray, angle: float, scale: float, shift_y: float) -> np.ndarray:
    """RectTransformationCalculator: shift along the rotated y axis, square on the long side, scale."""
    centre = centre_px + _rot(angle) @ np.array([0.0, shift_y * size_px[1]], np.float32)
    side = float(max(size_px)) * scale
    return np.array([centre[0], centre[1], side, side, angle], np.float32)


def roi_from_box(box_xyxy_px: np.ndarray, scale: float, angle: float = 0.0) -> np.ndarray:
    """Square region around a Something-Else hand box (which encloses the whole hand)."""
    centre = (box_xyxy_px[:2] + box_xyxy_px[2:]) / 2
    side = float(max(box_xyxy_px[2:] - box_xyxy_px[:2])) * scale
    return np.array([centre[0], centre[1], side, side, angle], np.float32)


def roi_from_landmarks(keypoints_px: np.ndarray) -> np.ndarray:
    """MediaPipe's HandLandmarksToRect followed by its tracking transform (x2.0, shift -0.1)."""
    xy = keypoints_px[:, :2]
    towards = ((xy[INDEX_MCP] + xy[RING_MCP]) / 2 + xy[MIDDLE_MCP]) / 2
    angle = _rotation(xy[WRIST], towards)
    pts = xy[ROI_LANDMARKS]
    mid = (pts.min(0) + pts.max(0)) / 2
    local = (pts - mid) @ _rot(angle)  # rotate by -angle: row vectors times R
    lo, hi = local.min(0), local.max(0)
    centre = _rot(angle) @ ((lo + hi) / 2) + mid
    return _square_roi(centre, hi - lo, angle, LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT_Y)


def roi_from_palm(box_xyxy_px: np.ndarray, keypoints_px: np.ndarray) -> np.ndarray:
    angle = _rotation(keypoints_px[PALM_WRIST_KP], keypoints_px[PALM_MIDDLE_KP])
    centre = (box_xyxy_px[:2] + box_xyxy_px[2:]) / 2
    return _square_roi(centre, box_xyxy_px[2:] - box_xyxy_px[:2], angle, PALM_ROI_SCALE, PALM_ROI_SHIFT_Y)


def mirrored(roi: np.ndarray) -> np.ndarray:
    """The same region seen flipped left-right (negative width): the landmark model is not mirror-symmetric,
    and a hand it misses in one view it often finds in the other."""
    out = np.array(roi, np.float32)
    out[2] = -out[2]
    return out


def is_mirrored(roi: np.ndarray) -> bool:
    return bool(roi[2] < 0)


def crop_to_image(roi: np.ndarray) -> np.ndarray:
    """(2, 3) affine from landmark-input pixels to image pixels (a negative width mirrors the crop)."""
    lin = _rot(float(roi[4])) @ np.diag(roi[2:4]).astype(np.float32) / np.float32(LANDMARK_INPUT_PX)
    offset = roi[:2] - lin @ np.full(2, LANDMARK_INPUT_PX / 2, np.float32)
    return np.concatenate([lin, offset[:, None]], 1)


def crop(frame_rgb: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """(224, 224, 3) uint8: the rotated square ``roi`` of the frame (one warp, no float copy)."""
    return cv2.warpAffine(
        frame_rgb,
        crop_to_image(roi),
        (LANDMARK_INPUT_PX, LANDMARK_INPUT_PX),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


_UNIT_LUT = np.arange(256, dtype=np.float32) / np.float32(255)


def input_lut(mean_01: float, target_mean: float) -> np.ndarray:
    """(256,) float32 map from uint8 to model input in [0, 1]; a dark crop (mean below ``target_mean``) is
    gamma-lifted so its mean reaches the target: SSv2 is full of dim, underexposed hands."""
    if not 0.01 < mean_01 < target_mean:
        return _UNIT_LUT
    return _UNIT_LUT ** np.float32(math.log(target_mean) / math.log(mean_01))


def to_input(crop_u8: np.ndarray, target_mean: float, out: np.ndarray) -> np.ndarray:
    """Write a uint8 crop into ``out`` (224, 224, 3) float32 as the model input, in one table lookup."""
    mean_01 = sum(cv2.mean(crop_u8)[:3]) / (3 * 255.0)
    written = cv2.LUT(crop_u8, input_lut(mean_01, target_mean), dst=out)
    if written is not out:  # OpenCV allocates anew when ``out`` does not fit its layout (e.g. strided)
        out[...] = written
    return out


def project_landmarks(screen_crop_px: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """(21, 3) crop-pixel landmarks -> x px, y px in the image, z in px (x's scale, wrist-relative)."""
    affine = crop_to_image(roi)
    xy = screen_crop_px[:, :2] @ affine[:, :2].T + affine[:, 2]
    z = screen_crop_px[:, 2] * (abs(roi[2]) / LANDMARK_INPUT_PX) / Z_NORMALISATION
    return np.concatenate([xy, z[:, None]], 1).astype(np.float32)


def project_world(world_m: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """Rotate the model's world landmarks from the crop's axes to the image's axes (metres); a mirrored crop's
    are mirrored back first."""
    out = world_m.copy()
    if is_mirrored(roi):
        out[:, 0] = -out[:, 0]
    out[:, :2] = out[:, :2] @ _rot(float(roi[4])).T
    return out
