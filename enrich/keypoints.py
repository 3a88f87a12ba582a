"""The 21 keypoints the lift compares with MediaPipe, defined on any MANO-layout hand model.

Each MediaPipe landmark is a point fixed to one bone of MANO's kinematic tree (its *anchor* joint's frame): the
wrist, thumb CMC and the four MCPs to the palm (joint 0), every other joint to the bone that ends at it, and each
fingertip to the distal bone. At rest the point sits at the model's own joint (or fingertip vertex) plus a
correction in the anchor's rest frame, scaled with the hand's size:

    keypoint_k = P[a_k] + G[a_k] @ (base_k(betas) + s(betas) * correction_k)

P, G: posed position and global rotation of joint a_k; base_k: rest offset of the model's own point from a_k
(linear in betas); s: wrist-to-middle-MCP length relative to the mean shape (linearised in betas).

MANO's joints come from its joint regressor and are not where MediaPipe puts its landmarks (its wrist sits
~1 cm off, the thumb CMC further); the corrections move them there. They are calibrated per hand model against
MediaPipe's detections and 3D ground truth (``python -m benchmarks.calibrate_keypoints``), one set for both
sides: the left hand's are the right's mirror image (x negated, as MANO's and the open model's left hands mirror
the right in x), stored per model file (keyed by its sha256): the open model's in enrich/data, a MANO file's
beside it (LOCAL_FILE_NAME; derived from MANO, so never committed).

Any other MANO-layout model gets the open model's corrections transferred: each is expressed in its anchor bone's
rest frame (bone direction, palm normal, their cross product; built with the hand's chirality) in units of the
wrist-to-middle-MCP length, and placed back in the target model's own frames at its own size (``transfer``), so
a shifted, rescaled or differently posed rest hand carries them the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# MediaPipe keypoint k -> MANO joint whose frame carries it
ANCHOR_MANO: np.ndarray = np.array([0, 0, 13, 14, 15, 0, 1, 2, 3, 0, 4, 5, 6, 0, 10, 11, 12, 0, 7, 8, 9], np.int64)
# MediaPipe keypoint k -> its MANO joint (0..15), or -1 - finger for a fingertip (thumb 0 .. pinky 4, MANO tip order)
_POINT_MANO: np.ndarray = np.array([0, 13, 14, 15, -1, 1, 2, 3, -2, 4, 5, 6, -3, 10, 11, 12, -4, 7, 8, 9, -5], np.int64)
SIZE_JOINTS = (0, 4)  # wrist -> middle MCP (MANO indices): the length the corrections scale with
CALIBRATION_FILE = Path(__file__).resolve().parent / "data" / "keypoint_corrections.json"  # shipped: open model
LOCAL_FILE_NAME = "enrich_keypoint_corrections.json"  # beside a user's MANO files (derived from MANO: not shipped)


@dataclass(frozen=True)
class KeypointDef:
    """Arrays of the definition for one side of one model (numpy, float64)."""

    anchor: np.ndarray  # (21,) MANO joint carrying each MediaPipe keypoint
    base0: np.ndarray  # (21, 3) rest offset from the anchor at betas = 0, metres
    base_dirs: np.ndarray  # (21, 3, 10) its change per unit of each beta
    correction_m: np.ndarray  # (21, 3) calibrated correction at the mean shape, anchor's rest frame, metres
    size_grad: np.ndarray  # (10,) d s / d betas, s = 1 at betas = 0

    def offsets(self, betas: np.ndarray) -> np.ndarray:
        """(21, 3) rest offsets from each anchor for one shape."""
        s = 1.0 + self.size_grad @ betas
        return self.base0 + self.base_dirs @ betas + s * self.correction_m

    def offsets_grad(self) -> np.ndarray:
        """(21, 3, 10) d offsets / d betas (exact: the offsets are linear in betas)."""
        return self.base_dirs + self.correction_m[..., None] * self.size_grad


def rest_points(j_template: np.ndarray, j_dirs: np.ndarray, tip_template: np.ndarray, tip_dirs: np.ndarray) -> tuple:
    """Model's own 21 points at rest in MediaPipe order: (21, 3) template and (21, 3, 10) shape directions."""
    is_joint = _POINT_MANO >= 0
    tip = (-1 - _POINT_MANO).clip(0)
    tmpl = np.where(is_joint[:, None], j_template[_POINT_MANO.clip(0)], tip_template[tip])
    dirs = np.where(is_joint[:, None, None], j_dirs[_POINT_MANO.clip(0)], tip_dirs[tip])
    return tmpl, dirs


def build(
    j_template: np.ndarray,
    j_dirs: np.ndarray,
    tip_template: np.ndarray,
    tip_dirs: np.ndarray,
    correction_m: np.ndarray | None,
) -> KeypointDef:
    """Definition for one side from the model's rest joints (16, 3) + (16, 3, 10) and fingertip vertices (5, 3) +
    (5, 3, 10); ``correction_m`` (21, 3) as calibrated for this side, or None for zero."""
    tmpl, dirs = rest_points(j_template, j_dirs, tip_template, tip_dirs)
    base0 = tmpl - j_template[ANCHOR_MANO]
    base_dirs = dirs - j_dirs[ANCHOR_MANO]
    a, b = SIZE_JOINTS
    bone = j_template[b] - j_template[a]
    size_grad = (bone / np.linalg.norm(bone)) @ (j_dirs[b] - j_dirs[a]) / np.linalg.norm(bone)
    corr = np.zeros((21, 3)) if correction_m is None else np.asarray(correction_m, np.float64)
    return KeypointDef(ANCHOR_MANO.copy(), base0, base_dirs, corr, size_grad)


MIRROR_X = np.array([-1.0, 1.0, 1.0])  # right <-> left corrections


def load_corrections(model_sha256: str, model_dir: Path | None = None) -> np.ndarray | None:
    """(21, 3) corrections calibrated for the hand-model file with this sha256 (one file per side), from the shipped
    table or from LOCAL_FILE_NAME in ``model_dir``."""
    for path in (CALIBRATION_FILE, *([model_dir / LOCAL_FILE_NAME] if model_dir is not None else [])):
        entry = json.loads(path.read_text()).get(model_sha256) if path.exists() else None
        if entry is not None:
            return np.asarray(entry["correction_m"], np.float64).reshape(21, 3)
    return None


def save_corrections(model_sha256: str, model_name: str, correction_m: np.ndarray, note: str, path: Path) -> None:
    table = json.loads(path.read_text()) if path.exists() else {}
    table[model_sha256] = {
        "model": model_name,
        "note": note,
        "correction_m": np.round(np.asarray(correction_m), 5).tolist(),
    }
    path.write_text(json.dumps(table, indent=1) + "\n")


def _orth(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    v = v - np.dot(v, axis) * axis
    return v / max(float(np.linalg.norm(v)), 1e-12)


def bone_frames(points_mp: np.ndarray, side: str) -> tuple[np.ndarray, float]:
    """(16, 3, 3) rest frame (rows) of each MANO joint as an anchor and the hand size (wrist to middle MCP, m), from
    the model's own rest points (21, 3) in MediaPipe order. Third axes follow the chirality, so a left model's
    frames mirror a right one's."""
    sign = 1.0 if side == "right" else -1.0
    p = np.asarray(points_mp, np.float64)
    size = float(np.linalg.norm(p[9] - p[0]))
    f = (p[9] - p[0]) / size
    s = _orth(p[5] - p[17], f)
    normal = sign * np.cross(f, s)
    frames = np.zeros((16, 3, 3))
    frames[0] = [f, s, normal]
    for k, j in enumerate(_POINT_MANO):
        if j > 0:  # a finger joint: its bone runs to the next point of its finger in MediaPipe order
            b = p[k + 1] - p[k]
            b = b / max(float(np.linalg.norm(b)), 1e-12)
            a2 = _orth(normal, b)
            frames[j] = [b, a2, sign * np.cross(b, a2)]
    return frames, size


def transfer(correction_m: np.ndarray, source_points: np.ndarray, target_points: np.ndarray, side: str) -> np.ndarray:
    """(21, 3) corrections of a source model moved to a target model of the same side: same coordinates in the
    anchor bones' frames, relative to the hand's size."""
    src, src_size = bone_frames(source_points, side)
    tgt, tgt_size = bone_frames(target_points, side)
    a = ANCHOR_MANO
    q = np.einsum("kij,kj->ki", src[a], correction_m) / src_size
    return np.einsum("kji,kj->ki", tgt[a], q) * tgt_size
