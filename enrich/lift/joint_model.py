"""The keypoints-only MANO forward the fit evaluates, its rest arrays, and the keypoint corrections it applies."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from smplx.lbs import batch_rodrigues

from enrich import keypoints
from enrich.constants import N_MANO_JOINTS
from enrich.handmodel import MEDIAPIPE_FROM_MANO, HandModel, load_hand_models
from enrich.lift import solver

MANO21_FROM_MP = np.argsort(MEDIAPIPE_FROM_MANO)  # MediaPipe-ordered points -> [16 joints + 5 tips] order


class JointModel:
    """Keypoints-only forward of a MANO-layout model: the 21 MediaPipe-defined keypoints of enrich.keypoints (with
    ``calibrated=False``: the 16 joints and 5 fingertip vertices, agreeing with the smplx forward, tested), cheap
    enough to evaluate hundreds of times per track. Also holds the numpy skeleton the LM solver uses.

    The kinematic chain is walked one depth level at a time (wrist, then the 5 first, second and third finger
    joints together): 3 batched matrix products instead of smplx's 15 sequential ones, which is what makes a
    track's forward + backward cost about a millisecond."""

    def __init__(
        self,
        hand: HandModel,
        device: str = "cpu",
        dtype: torch.dtype = torch.float32,
        calibrated: bool = True,
        correction_m: np.ndarray | None = None,
    ) -> None:
        """``calibrated``: apply keypoint corrections (keypoint_corrections: this file's own calibration, else the
        open model's transferred; none: its own joints and fingertip vertices); ``correction_m`` (21, 3): use these
        instead (calibration)."""
        m = hand.mano
        J_reg = m.J_regressor.to(device, dtype)  # (16, V)
        self.parents = m.parents.to(device)
        self.J_template = J_reg @ m.v_template.to(device, dtype)  # (16, 3)
        self.J_shapedirs = torch.einsum("jv,vcl->jcl", J_reg, m.shapedirs.to(device, dtype))  # (16, 3, 10)
        correction, self.keypoint_source = keypoint_corrections(hand) if calibrated else (None, "none")
        if correction_m is not None:
            correction, self.keypoint_source = correction_m, "given"
        j_template, j_dirs, tip_template, tip_dirs = rest_arrays(hand)
        self.keypoints = keypoints.build(j_template, j_dirs, tip_template, tip_dirs, correction)
        self.skeleton = solver.skeleton(m.parents.cpu().numpy(), j_template, j_dirs, self.keypoints)
        kd = self.keypoints
        self.kp_anchor = torch.as_tensor(kd.anchor, dtype=torch.long, device=device)
        self.kp_base0 = torch.as_tensor(kd.base0 + kd.correction_m, dtype=dtype, device=device)  # (21, 3)
        self.kp_dirs = torch.as_tensor(kd.offsets_grad(), dtype=dtype, device=device)  # (21, 3, 10)
        parents = m.parents.cpu().numpy()
        # joints grouped by depth in the chain: each level's parents are all in the previous level
        levels = [[0]]
        while len(sum(levels, [])) < N_MANO_JOINTS:
            levels.append([j for j in range(1, N_MANO_JOINTS) if parents[j] in levels[-1]])
        self.levels = [torch.as_tensor(lv, dtype=torch.long, device=device) for lv in levels]
        self.level_parent = [
            torch.as_tensor([levels[i - 1].index(parents[j]) for j in lv], dtype=torch.long, device=device)
            for i, lv in enumerate(levels)
            if i
        ]
        level_order = np.concatenate(levels)  # joint stored at each position of the level-ordered stack
        self.mano_from_level = torch.as_tensor(np.argsort(level_order), dtype=torch.long, device=device)
        self.device, self.dtype = device, dtype

    def rest21(self, betas: np.ndarray) -> np.ndarray:
        """(21, 3) rest keypoints in [16 joints + 5 tips] order, numpy, for initialisation."""
        kd = self.keypoints
        rest = self.skeleton.j_template + self.skeleton.j_dirs @ np.asarray(betas, np.float64)
        return (rest[kd.anchor] + kd.offsets(np.asarray(betas, np.float64)))[MANO21_FROM_MP]

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """betas (10,) -> (16, 3) rest joints."""
        return self.J_template + torch.einsum("jcl,l->jc", self.J_shapedirs, betas)

    def __call__(
        self, global_orient: torch.Tensor, hand_pose: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor
    ) -> torch.Tensor:
        """global_orient (B, 3), hand_pose (B, 45), betas (10,), transl (B, 3) -> keypoints (B, 21, 3), MediaPipe
        order (enrich.keypoints: each a point fixed to one bone)."""
        b = global_orient.shape[0]
        pose = torch.cat([global_orient, hand_pose], 1).reshape(-1, 3)
        rot = batch_rodrigues(pose).reshape(b, N_MANO_JOINTS, 3, 3)
        rest = self.rest_joints(betas)
        rots, pos = [rot[:, :1]], [rest[:1].expand(b, 1, 3)]
        for lv, par in zip(self.levels[1:], self.level_parent, strict=True):
            offset = rest[lv] - rest[self.parents[lv]]  # (L, 3) bone vectors at rest
            parent_rot = rots[-1][:, par]  # (B, L, 3, 3)
            pos.append(pos[-1][:, par] + (parent_rot @ offset[..., None])[..., 0])
            rots.append(parent_rot @ rot[:, lv])
        world_rot = torch.cat(rots, 1)[:, self.mano_from_level]  # (B, 16, 3, 3), MANO order
        joints = torch.cat(pos, 1)[:, self.mano_from_level]  # (B, 16, 3)
        offsets = self.kp_base0 + torch.einsum("kcl,l->kc", self.kp_dirs, betas)  # (21, 3)
        a = self.kp_anchor
        return joints[:, a] + (world_rot[:, a] @ offsets[..., None])[..., 0] + transl[:, None]


def rest_arrays(hand: HandModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rest joints (16, 3) and their shape directions (16, 3, 10), fingertip vertices (5, 3) and theirs (5, 3, 10)."""
    m = hand.mano
    tips = torch.as_tensor(np.asarray(hand.tip_vertex_ids), dtype=torch.long)
    J_reg = m.J_regressor.double()
    j_template = (J_reg @ m.v_template.double()).cpu().numpy()
    j_dirs = torch.einsum("jv,vcl->jcl", J_reg, m.shapedirs.double()).cpu().numpy()
    return j_template, j_dirs, m.v_template[tips].double().cpu().numpy(), m.shapedirs[tips].double().cpu().numpy()


def rest_points(hand: HandModel) -> np.ndarray:
    """(21, 3) the model's own rest points in MediaPipe order at the mean shape."""
    return keypoints.rest_points(*rest_arrays(hand))[0]


@functools.lru_cache(maxsize=2)
def _open_model_keypoints(side: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The open model's rest points and its shipped corrections for one side: the source of transferred ones."""
    hand = load_hand_models(None)[side]
    return rest_points(hand), keypoints.load_corrections(hand.info.sha256)


def keypoint_corrections(hand: HandModel) -> tuple[np.ndarray | None, str]:
    """(21, 3) corrections for any MANO-layout model and where they come from: the file's own calibration (by its
    sha256: the open model's shipped one, or LOCAL_FILE_NAME beside a MANO file), else the open model's
    transferred in bone frames relative to hand size (keypoints.transfer); (None, "none") if there are none."""
    model_dir = Path(hand.info.path).parent if hand.info.path else None
    own = keypoints.load_corrections(hand.info.sha256, model_dir)
    if own is not None:
        return own, f"calibrated for this file ({hand.info.name})"
    source_points, source = _open_model_keypoints(hand.info.side)
    if source is None:
        return None, "none"
    return keypoints.transfer(source, source_points, rest_points(hand), hand.info.side), (
        "transferred from enrich-open-hand (bone frames, relative to hand size)"
    )
