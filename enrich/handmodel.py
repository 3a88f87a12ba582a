"""One hand-model API over real MANO and the project's open hand model.

Both kinds of file hold MANO's layout (``v_template``, ``f``, ``J_regressor``, ``weights``, ``kintree_table``,
``shapedirs``, ``posedirs``, ``hands_components``, ``hands_mean``) and both run through ``smplx.MANO``, built from
the loaded arrays (``data_struct``), so one code path serves both:

- real MANO (``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``, licence-gated, never committed) is read without chumpy: chumpy
  objects in the pickle are replaced by a stand-in that keeps their pickled state, and their array is taken from it.
  The known sign error of MANO_LEFT's ``shapedirs[:, 0, :]`` (smplx issue 48) is corrected on load;
- the open model (``models/open_hand_*.pkl``, ``python -m enrich.openhand``) loads as it is.

Pose convention, for both models: ``hand_pose`` is the full 45-d axis-angle of the 15 finger joints relative to the
FLAT hand (smplx ``MANO(use_pca=False, flat_hand_mean=True)``: zero pose is the flat template, MANO's mean pose is
not added). ``global_orient`` rotates the hand about its wrist joint, then ``transl`` shifts it, exactly as smplx
does. Outputs are in metres, in the frame those parameters put the hand in (the camera frame when fitted to it).

Rest pose, both models (MANO's axes), right hand: fingers along -x, thumb toward +z, back of the hand toward +y,
palm toward -y. A left hand is the right one mirrored in x (fingers along +x, thumb still toward +z), and a left
pose mirrors a right one as axis-angle (x, y, z) -> (x, -y, -z) per joint, translation (x, y, z) -> (-x, y, z).

Pickles can run code when loaded: only globals from numpy, scipy.sparse, chumpy (stand-in) and a few harmless
builtins are accepted (enrich.model_pickle), but still load only files you trust. Files are found by
enrich.model_files.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
import smplx
import torch
from smplx.utils import Struct

from enrich import openhand
from enrich.constants import N_BETAS, N_HAND_POSE, SIDES
from enrich.errors import HandModelError
from enrich.model_files import ENV_VAR as ENV_VAR  # the file-finding names, importable from here as before
from enrich.model_files import MANO_FILE_NAMES as MANO_FILE_NAMES
from enrich.model_files import MODELS_DIR as MODELS_DIR
from enrich.model_files import OPEN_FILE_NAMES as OPEN_FILE_NAMES
from enrich.model_files import PathLike, find_hand_model_files
from enrich.model_pickle import read_model_data

# Extended joint list: 16 MANO joints (0 wrist, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring, 13-15 thumb) then
# 5 fingertip vertices (16 thumb, 17 index, 18 middle, 19 ring, 20 pinky). MEDIAPIPE_FROM_MANO[k] is the entry of
# that list that is MediaPipe keypoint k (0 wrist, 1-4 thumb CMC MCP IP TIP, 5-8 index MCP PIP DIP TIP,
# 9-12 middle, 13-16 ring, 17-20 pinky).
MEDIAPIPE_FROM_MANO: np.ndarray = np.array(
    [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20], dtype=np.int64
)
MANO_TIP_VERTEX_IDS: tuple[int, ...] = (744, 320, 443, 554, 671)  # smplx's MANO fingertips: thumb .. pinky
MANO_N_VERTICES = 778
MANO_PARENTS: tuple[int, ...] = openhand.MANO_PARENTS
_REQUIRED_KEYS = ("v_template", "f", "J_regressor", "weights", "kintree_table", "shapedirs", "posedirs")
_HAND_KEYS = ("hands_components", "hands_mean")
_SIDE_MIN_OFFSET_M = 1e-3  # palm-side cue must leave the knuckle plane by at least this much to decide the side
_MIRROR_TOL_M = 1e-3  # mean vertex distance under which a left template counts as the mirror of a right one


@dataclass(frozen=True)
class HandModelInfo:
    name: str  # "MANO" or "enrich-open-hand"
    side: str  # "left" or "right", decided from the geometry
    path: str
    sha256: str  # of the file as read
    n_vertices: int


# ----------------------------------------------------------------------------------------------------
# Validation and side
# ----------------------------------------------------------------------------------------------------


def _dense(value: Any, path: Path, key: str) -> np.ndarray:
    try:
        # C order whatever the source (csc toarray() is Fortran-ordered), so both models compute identically
        if scipy.sparse.issparse(value):
            return np.ascontiguousarray(value.toarray(), dtype=np.float64)
        return np.ascontiguousarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HandModelError(path, f"'{key}': expected a numeric array, found {type(value).__name__}") from exc


def _check_layout(data: Mapping[str, Any], path: Path) -> dict[str, np.ndarray]:
    """MANO-layout arrays (float64 / int64, J_regressor dense) after checking keys and shapes."""
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise HandModelError(path, f"expected MANO keys {', '.join(_REQUIRED_KEYS)}; missing {', '.join(missing)}")
    v = _dense(data["v_template"], path, "v_template")
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 4:
        raise HandModelError(path, f"expected v_template of shape (V, 3), found {v.shape}")
    n_v = len(v)
    jreg = _dense(data["J_regressor"], path, "J_regressor")
    kintree = np.asarray(data["kintree_table"])
    n_j = jreg.shape[0] if jreg.ndim == 2 else -1
    if n_j != len(MANO_PARENTS) or kintree.shape != (2, len(MANO_PARENTS)):
        body = " (SMPL-family body models have 24+ joints and 6890+ vertices)" if n_j >= 22 or n_v >= 6890 else ""
        raise HandModelError(
            path,
            f"expected a MANO hand model with 16 joints, found J_regressor {jreg.shape}, kintree_table "
            f"{kintree.shape} and {n_v} vertices{body}",
        )
    parents = [int(p) for p in kintree[0, 1:].astype(np.int64)]
    if parents != list(MANO_PARENTS[1:]):
        wanted = list(MANO_PARENTS[1:])
        raise HandModelError(path, f"expected MANO's kinematic tree (parents of joints 1-15 {wanted}), found {parents}")
    if jreg.shape[1] != n_v:
        raise HandModelError(path, f"expected J_regressor of shape (16, {n_v}), found {jreg.shape}")
    weights = _dense(data["weights"], path, "weights")
    if weights.shape != (n_v, 16):
        raise HandModelError(path, f"expected weights of shape ({n_v}, 16), found {weights.shape}")
    shapedirs = _dense(data["shapedirs"], path, "shapedirs")
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (n_v, 3) or shapedirs.shape[2] < N_BETAS:
        raise HandModelError(path, f"expected shapedirs of shape ({n_v}, 3, {N_BETAS}), found {shapedirs.shape}")
    posedirs = _dense(data["posedirs"], path, "posedirs")
    if posedirs.shape != (n_v, 3, 135):
        raise HandModelError(path, f"expected posedirs of shape ({n_v}, 3, 135), found {posedirs.shape}")
    faces = np.asarray(data["f"])
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise HandModelError(path, f"expected integer faces f of shape (F, 3), found {faces.shape} {faces.dtype}")
    faces = faces.astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= n_v):
        raise HandModelError(path, f"expected face indices in [0, {n_v}), found [{faces.min()}, {faces.max()}]")
    missing = [k for k in _HAND_KEYS if k not in data]
    if missing:
        raise HandModelError(path, f"expected MANO hand keys {', '.join(_HAND_KEYS)}; missing {', '.join(missing)}")
    components = _dense(data["hands_components"], path, "hands_components")
    mean = _dense(data["hands_mean"], path, "hands_mean").reshape(-1)
    if components.ndim != 2 or components.shape[1] != N_HAND_POSE or mean.shape != (N_HAND_POSE,):
        raise HandModelError(
            path, f"expected hands_components (K, 45) and hands_mean (45,), found {components.shape} and {mean.shape}"
        )
    return {
        "v_template": v,
        "f": faces,
        "J_regressor": jreg,
        "weights": weights,
        "kintree_table": kintree.astype(np.int64),
        "shapedirs": shapedirs[:, :, :N_BETAS].copy(),
        "posedirs": posedirs,
        "hands_components": components,
        "hands_mean": mean,
    }


def _palm_offset(joints: np.ndarray, palm_cue: np.ndarray) -> float:
    """Signed distance (m) of a palm-side cue from the knuckle plane, along (wrist->middle MCP) x (pinky->index MCP).

    That normal points to the back of a right hand and to the palm of a left one, so a cue on the palm side gives
    a negative offset for a right hand and a positive one for a left hand.
    """
    forward = joints[4] - joints[0]
    lateral = joints[1] - joints[7]
    normal = np.cross(forward, lateral)
    return float(np.dot(palm_cue, normal / np.linalg.norm(normal)))


def _side_from_geometry(joints: np.ndarray, flexed_joints: np.ndarray | None, path: Path) -> str:
    """'right' or 'left' from the rest joints (16, 3) and, when the file has a mean pose, the joints in it.

    The knuckle plane alone has no handedness; what breaks the mirror symmetry is which side the palm is on.
    With a non-flat mean pose (real MANO: a relaxed grasp) the palm is where the fingers curl to (mean motion of
    the DIP joints). Without one (the open model) it is the side of the thumb's CMC joint, which sits palmar of the
    knuckle plane in a real hand and in the open model.
    """
    forward = np.linalg.norm(joints[4] - joints[0])
    if not 0.02 < forward < 0.5:
        raise HandModelError(path, f"expected a hand in metres (wrist to middle knuckle 0.02-0.5), found {forward:.4g}")
    if flexed_joints is not None:
        dips = [3, 6, 9, 12]
        cue, what = (flexed_joints[dips] - joints[dips]).mean(axis=0), "the mean pose's finger flexion"
    else:
        cue, what = joints[13] - joints[0], "the thumb base"
    offset = _palm_offset(joints, cue)
    if abs(offset) < _SIDE_MIN_OFFSET_M:
        raise HandModelError(
            path, f"expected a left or right hand, cannot tell: {what} lies in the knuckle plane ({offset:.2g} m)"
        )
    return "right" if offset < 0 else "left"


def _signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    return float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0)


def _fix_left_shapedirs(arrays: dict[str, np.ndarray], path: Path, reference_right: PathLike | None) -> None:
    """Correct MANO_LEFT's shapedirs[:, 0, :] in place (smplx issue 48).

    The official left file carries the right hand's shapedirs unchanged although its template is mirrored in x, so
    equal betas give differently shaped hands. With the right file: flip when the left x-component equals the
    right's (sum |difference| < 1) rather than its negation. Without it: decide from shape component 0 (overall
    size in MANO), whose x and z scalings must agree in sign; this is a heuristic and warns.
    """
    sd = arrays["shapedirs"]
    if reference_right is not None:
        try:
            right = _check_layout(read_model_data(reference_right), Path(reference_right))
        except HandModelError as exc:
            warnings.warn(f"{path}: reference right-hand file unusable ({exc}); deciding the fix alone", stacklevel=4)
        else:
            mirrored = right["v_template"] * np.array([-1.0, 1.0, 1.0])
            if right["v_template"].shape == arrays["v_template"].shape and (
                np.linalg.norm(mirrored - arrays["v_template"], axis=1).mean() < _MIRROR_TOL_M
            ):
                same = np.abs(sd[:, 0, :] - right["shapedirs"][:, 0, :]).sum()
                negated = np.abs(sd[:, 0, :] + right["shapedirs"][:, 0, :]).sum()
                if same < 1.0 and negated >= 1.0:
                    sd[:, 0, :] *= -1.0
                elif negated >= 1.0:
                    warnings.warn(
                        f"{path}: shapedirs neither equal nor mirror those of {reference_right}; left unchanged",
                        stacklevel=4,
                    )
                return
            warnings.warn(
                f"{path}: template is not the mirror of {reference_right}'s; deciding the left fix alone", stacklevel=4
            )
    v = arrays["v_template"]
    x = np.c_[v - v.mean(axis=0), np.ones(len(v))]
    coef, *_ = np.linalg.lstsq(x, sd[:, :, 0], rcond=None)
    scale = np.diag(coef[:3])  # d(displacement_i)/d(coordinate_i) of component 0
    if abs(scale[0]) < 0.3 * abs(scale).max() or abs(scale[2]) < 0.3 * abs(scale).max():
        warnings.warn(
            f"{path}: left MANO without its right-hand file, and shape component 0 is not size-like; "
            "shapedirs left unchanged (pass reference_right to decide the smplx issue-48 fix exactly)",
            stacklevel=4,
        )
        return
    if scale[0] * scale[2] < 0:
        sd[:, 0, :] *= -1.0
    warnings.warn(
        f"{path}: left MANO without its right-hand file; the smplx issue-48 shapedirs fix was decided from shape "
        f"component 0 ({'applied' if scale[0] * scale[2] < 0 else 'not needed'}); pass reference_right to check it",
        stacklevel=4,
    )


# ----------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------


class HandModel(torch.nn.Module):
    """A MANO-layout hand (real MANO or the open model) as a differentiable layer; holds no parameters.

    Attributes: ``info`` (HandModelInfo), ``side``, ``faces`` (F, 3) int64 numpy, wound counter-clockwise seen
    from outside, ``tip_vertex_ids`` (thumb, index, middle, ring, pinky), ``mano`` (the smplx.MANO doing the work).
    """

    def __init__(self, mano: smplx.MANO, info: HandModelInfo, faces: np.ndarray, tip_vertex_ids: tuple[int, ...]):
        super().__init__()
        self.mano = mano
        self.info = info
        self.side = info.side
        self.faces = faces
        self.tip_vertex_ids = tip_vertex_ids
        self.register_buffer("faces_tensor", torch.as_tensor(faces, dtype=torch.long), persistent=False)
        self.register_buffer("_tips", torch.as_tensor(tip_vertex_ids, dtype=torch.long), persistent=False)
        self.register_buffer("_order", torch.as_tensor(MEDIAPIPE_FROM_MANO), persistent=False)

    @property
    def n_vertices(self) -> int:
        return self.info.n_vertices

    def extra_repr(self) -> str:
        return f"{self.info.name} {self.side}, {self.info.n_vertices} vertices, {self.info.path}"

    def forward(
        self,
        global_orient: torch.Tensor,
        hand_pose: torch.Tensor,
        betas: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed hand.

        Parameters
        ----------
        global_orient: (B, 3) axis-angle, radians: rotation of the whole hand about its wrist joint
        hand_pose: (B, 45) axis-angle of joints 1..15 (MANO order), relative to the flat hand
        betas: (B, 10) or (1, 10) shape coefficients, ~ N(0, 1); None: the mean shape
        transl: (B, 3) metres, added after the rotation; None: no shift

        Returns
        -------
        vertices: (B, V, 3) metres
        joints21: (B, 21, 3) metres, MediaPipe order (MEDIAPIPE_FROM_MANO), same frame as the vertices
        """
        batch = global_orient.shape[0]
        if global_orient.shape != (batch, 3) or hand_pose.shape != (batch, N_HAND_POSE):
            raise ValueError(
                f"expected global_orient (B, 3) and hand_pose (B, 45), got {tuple(global_orient.shape)} "
                f"and {tuple(hand_pose.shape)}"
            )
        like = {"dtype": global_orient.dtype, "device": global_orient.device}
        if betas is None:
            betas = torch.zeros(batch, N_BETAS, **like)
        elif betas.shape == (1, N_BETAS) and batch != 1:
            betas = betas.expand(batch, -1)  # smplx needs one shape row per pose
        if betas.shape != (batch, N_BETAS):
            raise ValueError(f"expected betas (B, 10) or (1, 10) with B = {batch}, got {tuple(betas.shape)}")
        if transl is not None and transl.shape != (batch, 3):
            raise ValueError(f"expected transl (B, 3) with B = {batch}, got {tuple(transl.shape)}")
        out = self.mano(betas=betas, global_orient=global_orient, hand_pose=hand_pose, transl=transl)
        vertices = out.vertices
        extended = torch.cat([out.joints, vertices.index_select(1, self._tips)], dim=1)  # (B, 21, 3), MANO + tips
        return vertices, extended.index_select(1, self._order)

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """(B, 21, 3) joints of the flat hand for betas (B, 10), metres, model frame, MediaPipe order."""
        zeros = torch.zeros(betas.shape[0], 3 + N_HAND_POSE, dtype=betas.dtype, device=betas.device)
        return self.forward(zeros[:, :3], zeros[:, 3:], betas)[1]


def load_hand_model(
    path: PathLike,
    side: str,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    reference_right: PathLike | None = None,
) -> HandModel:
    """Load one side of a MANO-layout hand model (real MANO .pkl/.npz or the open model).

    ``side`` is what the caller needs; the file's own side is decided from its geometry, never from its name, and a
    mismatch raises HandModelError. ``reference_right``: the matching right-hand file, used to decide the MANO_LEFT
    shapedirs fix exactly (without it a heuristic decides and warns). Every problem with the file raises
    HandModelError naming the file.
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    path = Path(path)
    data = read_model_data(path)
    arrays = _check_layout(data, path)
    name = openhand.MODEL_NAME if data.get("model_name") == openhand.MODEL_NAME else "MANO"
    n_v = len(arrays["v_template"])

    if "tip_vertex_ids" in data:
        tips = tuple(int(i) for i in np.asarray(data["tip_vertex_ids"]).reshape(-1))
    elif n_v == MANO_N_VERTICES:
        tips = MANO_TIP_VERTEX_IDS
    else:
        raise HandModelError(
            path, f"expected tip_vertex_ids in the file or MANO's {MANO_N_VERTICES} vertices, found {n_v} vertices"
        )
    if len(tips) != 5 or min(tips) < 0 or max(tips) >= n_v:
        raise HandModelError(path, f"expected 5 fingertip vertex ids in [0, {n_v}), found {tips}")

    faces = arrays["f"]
    if _signed_volume(arrays["v_template"], faces) < 0:
        faces = faces[:, ::-1].copy()  # outward winding whatever the file's convention (MANO_LEFT's may be inward)

    mano = _smplx_mano(arrays, side == "right", dtype).to(device)
    with torch.no_grad():
        zeros = torch.zeros(1, 3 + N_HAND_POSE, dtype=dtype, device=device)
        rest = (
            mano(
                betas=torch.zeros(1, N_BETAS, dtype=dtype, device=device),
                global_orient=zeros[:, :3],
                hand_pose=zeros[:, 3:],
            )
            .joints[0]
            .double()
            .cpu()
            .numpy()
        )
        flexed = None
        if np.linalg.norm(arrays["hands_mean"]) > 0.1:
            mean_pose = torch.as_tensor(arrays["hands_mean"], dtype=dtype, device=device)[None]
            flexed = (
                mano(
                    betas=torch.zeros(1, N_BETAS, dtype=dtype, device=device),
                    global_orient=zeros[:, :3],
                    hand_pose=mean_pose,
                )
                .joints[0]
                .double()
                .cpu()
                .numpy()
            )
    found = _side_from_geometry(rest, flexed, path)
    if found != side:
        raise HandModelError(path, f"expected a {side} hand model, found a {found} hand (decided from its geometry)")

    if name == "MANO" and side == "left":
        sd_before = arrays["shapedirs"].copy()
        _fix_left_shapedirs(arrays, path, reference_right)
        if not np.array_equal(sd_before, arrays["shapedirs"]):
            mano = _smplx_mano(arrays, False, dtype).to(device)

    info = HandModelInfo(
        name=name, side=side, path=str(path), sha256=hashlib.sha256(path.read_bytes()).hexdigest(), n_vertices=n_v
    )
    return HandModel(mano, info, faces, tips).to(device)


def _smplx_mano(arrays: Mapping[str, np.ndarray], is_right: bool, dtype: torch.dtype) -> smplx.MANO:
    """smplx.MANO over in-memory arrays: full 45-d axis-angle pose, flat-hand zero pose, no stored parameters."""
    struct = Struct(**arrays)
    # smplx prints a warning about 10 shape coefficients for every MANO; model_path is unused with a data_struct.
    with contextlib.redirect_stdout(io.StringIO()):
        return smplx.MANO(
            model_path="",
            is_rhand=is_right,
            data_struct=struct,
            use_pca=False,
            flat_hand_mean=True,
            num_pca_comps=N_HAND_POSE,
            num_betas=N_BETAS,
            create_betas=False,
            create_global_orient=False,
            create_body_pose=False,
            create_transl=False,
            create_hand_pose=False,
            dtype=dtype,
        )


def load_hand_models(
    source: PathLike | None = None, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> dict[str, HandModel]:
    """Both sides of the model ``find_hand_model_files(source)`` picks: {"right": ..., "left": ...}."""
    files = find_hand_model_files(source)
    return {
        "right": load_hand_model(files["right"], "right", device=device, dtype=dtype),
        "left": load_hand_model(files["left"], "left", device=device, dtype=dtype, reference_right=files["right"]),
    }
