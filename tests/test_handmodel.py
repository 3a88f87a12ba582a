"""Hand models: the open model's files, the shared forward, real-MANO loading (chumpy-free) and file validation.

Real MANO cannot be used here (licence-gated), so MANO-format files are written from the open model's arrays with
chumpy-style pickled objects, a sparse J_regressor and protocol 2, like the official files.
"""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from enrich import handmodel, model_files, openhand
from enrich.handmodel import (
    MEDIAPIPE_FROM_MANO,
    HandModel,
    HandModelError,
    find_hand_model_files,
    load_hand_model,
    load_hand_models,
)

MIRROR = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
AA_MIRROR = torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64)  # axis-angle under a mirror across x
FINGERS_MP = {
    "thumb": [1, 2, 3, 4],
    "index": [5, 6, 7, 8],
    "middle": [9, 10, 11, 12],
    "ring": [13, 14, 15, 16],
    "pinky": [17, 18, 19, 20],
}


@pytest.fixture(scope="module")
def open_models() -> dict[str, HandModel]:
    return {
        side: load_hand_model(openhand.DEFAULT_DIR / openhand.FILE_NAMES[side], side, dtype=torch.float64)
        for side in ("right", "left")
    }


def _params(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "global_orient": torch.randn(batch, 3, generator=g, dtype=torch.float64),
        "hand_pose": 0.4 * torch.randn(batch, 45, generator=g, dtype=torch.float64),
        "betas": torch.randn(batch, 10, generator=g, dtype=torch.float64),
        "transl": 0.3 * torch.randn(batch, 3, generator=g, dtype=torch.float64),
    }


# ----------------------------------------------------------------------------------------------------
# The open model's files
# ----------------------------------------------------------------------------------------------------


def test_regenerating_the_open_model_reproduces_the_shipped_files(tmp_path: Path) -> None:
    written = openhand.write_models(tmp_path)
    for side, name in openhand.FILE_NAMES.items():
        shipped = openhand.DEFAULT_DIR / name
        new, old = pickle.loads(written[side].read_bytes()), pickle.loads(shipped.read_bytes())
        assert list(new) == list(old)
        for key in old:
            if isinstance(old[key], np.ndarray):
                assert new[key].dtype == old[key].dtype and np.array_equal(new[key], old[key]), key
            else:
                assert new[key] == old[key], key
        assert hashlib.sha256(written[side].read_bytes()).digest() == hashlib.sha256(shipped.read_bytes()).digest()


def test_open_model_layout_is_manos() -> None:
    for side, name in openhand.FILE_NAMES.items():
        path = openhand.DEFAULT_DIR / name
        assert path.stat().st_size < 400_000
        d = pickle.loads(path.read_bytes())
        n_v = len(d["v_template"])
        assert 300 <= n_v <= 800
        assert d["f"].shape[1] == 3 and d["J_regressor"].shape == (16, n_v) and d["weights"].shape == (n_v, 16)
        assert d["shapedirs"].shape == (n_v, 3, 10) and d["posedirs"].shape == (n_v, 3, 135)
        assert not d["posedirs"].any()
        assert list(d["kintree_table"][0, 1:]) == [0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]
        assert np.allclose(d["hands_components"] @ d["hands_components"].T, np.eye(45)) and not d["hands_mean"].any()
        assert np.allclose(d["weights"].sum(axis=1), 1.0) and np.allclose(d["J_regressor"].sum(axis=1), 1.0)
        assert d["model_name"] == "enrich-open-hand" and len(d["tip_vertex_ids"]) == 5
        assert np.allclose(d["J_regressor"] @ d["v_template"], d["J"], atol=1e-7)
        # closed surface, consistently wound: every directed edge appears once and its reverse once
        f = d["f"].astype(np.int64)
        edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        keys = edges[:, 0] * n_v + edges[:, 1]
        assert len(np.unique(keys)) == len(keys)
        assert np.array_equal(np.sort(keys), np.sort(edges[:, 1] * n_v + edges[:, 0]))
        v = d["v_template"].astype(np.float64)
        volume = np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6.0
        assert 2e-4 < volume < 6e-4, (side, volume)  # m^3: outward winding, an adult hand's few hundred ml


def test_open_model_proportions_and_left_is_the_mirror() -> None:
    right, left = openhand.build_model("right"), openhand.build_model("left")
    assert np.array_equal(left["v_template"], right["v_template"] * np.float32([-1, 1, 1]))
    assert np.array_equal(left["shapedirs"][:, 0], -right["shapedirs"][:, 0])
    assert np.array_equal(left["f"], right["f"][:, ::-1])
    v, joints = right["v_template"], right["J"]
    tips = v[right["tip_vertex_ids"]]
    hand_length = np.linalg.norm(tips[2] - joints[0])  # wrist to middle fingertip
    assert 0.175 < hand_length < 0.195
    knuckles = v[(np.abs(v[:, 0] - joints[4, 0]) < 0.006) & (v[:, 2] < 0.05)]  # band at the knuckles, thumb excluded
    assert 0.075 < np.ptp(knuckles[:, 2]) < 0.095  # hand breadth
    # rest pose axes: fingers toward -x, thumb toward +z, palm toward -y (thumb base palmar of the knuckles)
    assert (tips[1:, 0] < joints[0, 0] - 0.13).all()
    assert tips[0, 2] > joints[1, 2] + 0.03
    assert joints[13, 1] < joints[[1, 4, 7, 10], 1].min() - 0.005


def test_shape_space_is_linear_and_the_regressor_follows_it() -> None:
    d = openhand.build_model("left")
    rng = np.random.default_rng(3)
    for betas in rng.normal(size=(4, 10)):
        vertices, joints = openhand.shaped_hand(betas, "left")
        linear = d["v_template"] + d["shapedirs"] @ betas
        assert np.abs(linear - vertices).max() < 1e-6
        assert np.abs(d["J_regressor"] @ linear - joints).max() < 1e-6


def test_betas_span_a_plausible_population() -> None:
    lengths = []
    for b0 in (-2.0, -1.0, 0.0, 1.0, 2.0):
        vertices, joints = openhand.shaped_hand(np.r_[b0, np.zeros(9)])
        lengths.append(np.linalg.norm(vertices[openhand.build_model("right")["tip_vertex_ids"][2]] - joints[0]))
    assert np.all(np.diff(lengths) > 0)
    assert 0.04 < (lengths[3] - lengths[2]) / lengths[2] < 0.08  # one SD of adult hand length
    for k in range(1, 10):  # every other component moves the mesh a little (a few mm per SD)
        moved = np.abs(openhand.build_model("right")["shapedirs"][:, :, k]).max()
        assert 5e-4 < moved < 6e-3, k


# ----------------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------------


def test_zero_pose_gives_the_rest_joints_in_mediapipe_order(open_models: dict[str, HandModel]) -> None:
    model = open_models["right"]
    betas = _params(3)["betas"]
    zeros = torch.zeros(3, 48, dtype=torch.float64)
    vertices, joints = model(zeros[:, :3], zeros[:, 3:], betas)
    assert torch.equal(joints, model.rest_joints(betas))
    mano16 = torch.as_tensor(openhand.build_model("right")["J_regressor"], dtype=torch.float64) @ vertices
    assert torch.allclose(joints[:, 0], mano16[:, 0]) and torch.allclose(joints[:, 5], mano16[:, 1])  # wrist, index
    assert torch.allclose(joints[:, 1], mano16[:, 13]) and torch.allclose(joints[:, 17], mano16[:, 7])  # thumb, pinky
    assert torch.equal(joints[:, 4], vertices[:, model.tip_vertex_ids[0]])  # thumb tip is MediaPipe 4
    for name, chain in FINGERS_MP.items():
        dist = torch.linalg.norm(joints[:, chain] - joints[:, :1], dim=-1)
        assert (dist.diff(dim=1) > 0).all(), name  # each keypoint farther from the wrist than the previous
        bones = torch.linalg.norm(joints[:, chain].diff(dim=1), dim=-1)
        assert ((bones > 0.012) & (bones < 0.06)).all(), name  # metres
    # right hand, MANO axes: index to pinky knuckles run from +z (thumb side) to -z
    assert (joints[:, [5, 9, 13, 17], 2].diff(dim=1) < 0).all()
    assert sorted(MEDIAPIPE_FROM_MANO.tolist()) == list(range(21))


def test_global_orient_rotates_about_the_wrist_and_transl_shifts(open_models: dict[str, HandModel]) -> None:
    model = open_models["right"]
    p = _params(2)
    rotvec = np.array([[0.3, -1.1, 0.5], [0.0, np.pi / 2, 0.0]])
    _, still = model(torch.zeros(2, 3, dtype=torch.float64), p["hand_pose"], p["betas"])
    _, turned = model(torch.as_tensor(rotvec), p["hand_pose"], p["betas"])
    rot = torch.as_tensor(Rotation.from_rotvec(rotvec).as_matrix())
    wrist = still[:, :1]
    assert torch.allclose(turned[:, 0], still[:, 0], atol=1e-12)
    assert torch.allclose(turned - wrist, (still - wrist) @ rot.transpose(1, 2), atol=1e-9)
    shift = torch.tensor([[0.1, -0.2, 0.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    moved_v, moved = model(torch.as_tensor(rotvec), p["hand_pose"], p["betas"], shift)
    assert torch.allclose(moved, turned + shift[:, None], atol=1e-12)


def test_betas_zero_row_broadcasts_and_bad_shapes_fail(open_models: dict[str, HandModel]) -> None:
    model = open_models["right"]
    p = _params(4)
    one = p["betas"][:1]
    _, broadcast = model(p["global_orient"], p["hand_pose"], one)
    _, explicit = model(p["global_orient"], p["hand_pose"], one.expand(4, -1).clone())
    assert torch.equal(broadcast, explicit)
    with pytest.raises(ValueError, match="hand_pose"):
        model(p["global_orient"], p["hand_pose"][:, :44])
    with pytest.raises(ValueError, match="betas"):
        model(p["global_orient"], p["hand_pose"], p["betas"][:2])


def test_left_model_mirrors_the_right_for_mirrored_parameters(open_models: dict[str, HandModel]) -> None:
    p = _params(5, seed=1)
    v_r, j_r = open_models["right"](**p)
    mirrored = {
        "global_orient": p["global_orient"] * AA_MIRROR,
        "hand_pose": (p["hand_pose"].view(5, 15, 3) * AA_MIRROR).view(5, 45),
        "betas": p["betas"],
        "transl": p["transl"] * MIRROR,
    }
    v_l, j_l = open_models["left"](**mirrored)
    assert torch.allclose(v_l, v_r * MIRROR, atol=1e-10) and torch.allclose(j_l, j_r * MIRROR, atol=1e-10)
    assert not torch.allclose(j_l, j_r, atol=1e-3)


def test_flexion_toward_the_palm_is_positive_z_rotation_for_the_right_hand(open_models: dict[str, HandModel]) -> None:
    pose = torch.zeros(1, 45, dtype=torch.float64)
    pose[0, 3 * 3 + 2] = 1.0  # middle MCP (MANO joint 4), +1 rad about z
    _, flexed = open_models["right"](torch.zeros(1, 3, dtype=torch.float64), pose)
    rest = open_models["right"].rest_joints(torch.zeros(1, 10, dtype=torch.float64))
    assert flexed[0, 12, 1] < rest[0, 12, 1] - 0.05  # middle fingertip moves toward -y, the palm side


# ----------------------------------------------------------------------------------------------------
# Real-MANO loader path, chumpy-free
# ----------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def fake_chumpy() -> Iterator[type]:
    """A stand-in `chumpy` package, importable only inside the block, whose Ch pickles like the real one (a state
    dict with the array under 'x')."""
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x: np.ndarray) -> None:
            self.x = x

        def __getstate__(self) -> dict[str, object]:
            return {
                "x": self.x,
                "_dirty_vars": set(),
                "_itr": None,
                "_make_dense": False,
                "_make_sparse": False,
                "_depends_on_deps": {},
            }

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    package.ch = module
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = package, module
    try:
        yield Ch
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]


def _mano_layout(side: str, ch: type, *, left_bug: bool = False) -> dict[str, object]:
    """The open model of ``side`` as the official MANO pickles store things (chumpy, sparse, float64, uint32)."""
    d = openhand.build_model(side)
    shapedirs = d["shapedirs"].astype(np.float64)
    if left_bug:  # smplx issue 48: MANO_LEFT ships the right hand's shapedirs
        shapedirs = openhand.build_model("right")["shapedirs"].astype(np.float64)
    kintree = d["kintree_table"].astype(np.uint32)  # root parent stored as 2**32 - 1
    return {
        "hands_components": d["hands_components"].astype(np.float64),
        "f": d["f"].astype(np.uint32),
        "J_regressor": scipy.sparse.csc_matrix(d["J_regressor"].astype(np.float64)),
        "kintree_table": kintree,
        "J": ch(d["J"].astype(np.float64)),
        "bs_style": "lbs",
        "hands_coeffs": np.zeros((2, 45)),
        "weights": ch(d["weights"].astype(np.float64)),
        "posedirs": ch(d["posedirs"].astype(np.float64)),
        "hands_mean": d["hands_mean"].astype(np.float64),
        "v_template": ch(d["v_template"].astype(np.float64)),
        "shapedirs": ch(shapedirs),
        "bs_type": "lrotmin",
        "tip_vertex_ids": d["tip_vertex_ids"],  # not in real MANO (778 vertices use smplx's ids); ours has 444
    }


@pytest.fixture
def mano_dir(tmp_path: Path) -> Path:
    """MANO_RIGHT.pkl and a MANO_LEFT.pkl with the issue-48 bug, written while a fake chumpy is importable."""
    with fake_chumpy() as ch:
        for side, name, bug in (("right", "MANO_RIGHT.pkl", False), ("left", "MANO_LEFT.pkl", True)):
            with open(tmp_path / name, "wb") as fh:
                pickle.dump(_mano_layout(side, ch, left_bug=bug), fh, protocol=2)
    return tmp_path


def test_mano_pickles_load_without_chumpy_and_match_the_open_model(
    mano_dir: Path, open_models: dict[str, HandModel]
) -> None:
    assert "chumpy" not in sys.modules
    with pytest.raises(ModuleNotFoundError):  # a plain unpickle needs chumpy: the loader must do without it
        pickle.loads((mano_dir / "MANO_RIGHT.pkl").read_bytes(), encoding="latin1")
    models = load_hand_models(mano_dir, dtype=torch.float64)
    assert models["right"].info.name == "MANO" and models["left"].info.side == "left"
    assert models["right"].info.sha256 == hashlib.sha256((mano_dir / "MANO_RIGHT.pkl").read_bytes()).hexdigest()
    p = _params(4, seed=2)
    for side in ("right", "left"):
        got, want = models[side](**p), open_models[side](**p)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1]), side
        assert np.array_equal(models[side].faces, open_models[side].faces)


def test_left_shapedirs_bug_is_fixed(mano_dir: Path, open_models: dict[str, HandModel]) -> None:
    right = load_hand_model(mano_dir / "MANO_RIGHT.pkl", "right", dtype=torch.float64)
    betas = torch.tensor([[2.0, -1.5, 1.0, 0.5, -1.0, 1.0, 0.0, 0.0, 1.0, -1.0]], dtype=torch.float64)
    want = right.rest_joints(betas) * MIRROR
    left = load_hand_model(
        mano_dir / "MANO_LEFT.pkl", "left", dtype=torch.float64, reference_right=mano_dir / "MANO_RIGHT.pkl"
    )
    assert torch.allclose(left.rest_joints(betas), want, atol=1e-10)
    with pytest.warns(UserWarning, match="issue-48"):  # no right file: decided from shape component 0, with a warning
        alone = load_hand_model(mano_dir / "MANO_LEFT.pkl", "left", dtype=torch.float64)
    assert torch.allclose(alone.rest_joints(betas), want, atol=1e-10)
    # the file itself is buggy: used as stored, the left hand would not mirror the right
    unfixed = handmodel._smplx_mano(
        handmodel._check_layout(handmodel.read_model_data(mano_dir / "MANO_LEFT.pkl"), mano_dir), False, torch.float64
    )
    zeros = torch.zeros(1, 48, dtype=torch.float64)
    raw = unfixed(betas=betas, global_orient=zeros[:, :3], hand_pose=zeros[:, 3:]).joints
    assert not torch.allclose(raw, want[:, [0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3]], atol=1e-3)


def test_correct_left_file_is_left_alone(tmp_path: Path, open_models: dict[str, HandModel]) -> None:
    with fake_chumpy() as ch:
        for side, name in (("right", "MANO_RIGHT.pkl"), ("left", "MANO_LEFT.pkl")):
            (tmp_path / name).write_bytes(pickle.dumps(_mano_layout(side, ch), protocol=2))
    left = load_hand_models(tmp_path, dtype=torch.float64)["left"]
    betas = torch.ones(1, 10, dtype=torch.float64)
    assert torch.equal(left.rest_joints(betas), open_models["left"].rest_joints(betas))


def test_inward_wound_faces_are_turned_outward(tmp_path: Path, open_models: dict[str, HandModel]) -> None:
    d = openhand.build_model("left")
    (tmp_path / "MANO_LEFT.pkl").write_bytes(pickle.dumps({**d, "f": d["f"][:, ::-1].copy()}, protocol=2))
    model = load_hand_model(tmp_path / "MANO_LEFT.pkl", "left")
    assert np.array_equal(model.faces, open_models["left"].faces)
    assert np.array_equal(model.faces, d["f"])


def test_npz_layout_loads(tmp_path: Path, open_models: dict[str, HandModel]) -> None:
    for side, name in (("right", "MANO_RIGHT.npz"), ("left", "MANO_LEFT.npz")):
        d = openhand.build_model(side)
        np.savez(tmp_path / name, **{k: v for k, v in d.items() if k != "model_name"})
    files = find_hand_model_files(tmp_path)
    assert files["right"].name == "MANO_RIGHT.npz"
    model = load_hand_model(files["left"], "left", dtype=torch.float64, reference_right=files["right"])
    p = _params(2)
    assert model.info.name == "MANO" and torch.equal(model(**p)[1], open_models["left"](**p)[1])


def test_side_comes_from_the_mean_pose_flexion_when_there_is_one(tmp_path: Path) -> None:
    d = openhand.build_model("right")
    curl = np.zeros((15, 3))
    curl[:12, 2] = 0.5  # fingers (not the thumb) flex about +z: toward the palm of a right hand
    joints = d["J_regressor"].astype(np.float64) @ d["v_template"].astype(np.float64)
    flat_thumb = joints.copy()
    # thumb base moved into the knuckle plane: no thumb cue left, only a flexion could decide
    flat_thumb[13] = joints[0] + 0.3 * (joints[4] - joints[0]) + 0.4 * (joints[1] - joints[7])
    path = tmp_path / "x.pkl"
    assert handmodel._side_from_geometry(joints, None, path) == "right"
    with pytest.raises(HandModelError, match="cannot tell"):
        handmodel._side_from_geometry(flat_thumb, None, path)
    for mean, side in ((curl, "right"), (-curl, "left")):  # curling toward the back means a mirrored hand
        (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps({**d, "hands_mean": mean.reshape(-1)}, protocol=2))
        if side == "right":
            assert load_hand_model(tmp_path / "MANO_RIGHT.pkl", "right").side == "right"
        else:
            with pytest.raises(HandModelError, match="found a left hand"):
                load_hand_model(tmp_path / "MANO_RIGHT.pkl", "right")


# ----------------------------------------------------------------------------------------------------
# Bad files
# ----------------------------------------------------------------------------------------------------


def _expect_error(path: Path, side: str, *fragments: str) -> None:
    with pytest.raises(HandModelError) as info:
        load_hand_model(path, side)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "expected" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_bad_files_raise_clear_errors(tmp_path: Path) -> None:
    good = (openhand.DEFAULT_DIR / openhand.FILE_NAMES["right"]).read_bytes()
    d = pickle.loads(good)
    _expect_error(tmp_path / "missing.pkl", "right", "not found")
    (tmp_path / "truncated.pkl").write_bytes(good[: len(good) // 2])
    _expect_error(tmp_path / "truncated.pkl", "right", "truncated or corrupt")
    (tmp_path / "garbage.pkl").write_bytes(b"\x00\x01not a pickle at all")
    _expect_error(tmp_path / "garbage.pkl", "right", "could not unpickle")
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    _expect_error(tmp_path / "list.pkl", "right", "dict", "list")
    (tmp_path / "no_weights.pkl").write_bytes(pickle.dumps({k: v for k, v in d.items() if k != "weights"}))
    _expect_error(tmp_path / "no_weights.pkl", "right", "missing weights")
    no_pca = {k: v for k, v in d.items() if k != "hands_components"}
    (tmp_path / "no_pca.pkl").write_bytes(pickle.dumps(no_pca))
    _expect_error(tmp_path / "no_pca.pkl", "right", "missing hands_components")
    no_tips = {k: v for k, v in d.items() if k != "tip_vertex_ids"}
    (tmp_path / "no_tips.pkl").write_bytes(pickle.dumps(no_tips))
    _expect_error(tmp_path / "no_tips.pkl", "right", "tip_vertex_ids", "444 vertices")
    mm = {**d, "v_template": d["v_template"] * 1000, "shapedirs": d["shapedirs"] * 1000}
    (tmp_path / "millimetres.pkl").write_bytes(pickle.dumps(mm))
    _expect_error(tmp_path / "millimetres.pkl", "right", "metres")
    _expect_error(openhand.DEFAULT_DIR / openhand.FILE_NAMES["left"], "right", "expected a right hand", "found a left")
    _expect_error(openhand.DEFAULT_DIR / openhand.FILE_NAMES["right"], "left", "expected a left hand", "found a right")


def test_body_model_is_rejected(tmp_path: Path) -> None:
    n_v, n_j = 6890, 24  # SMPL's layout
    smpl = {
        "v_template": np.zeros((n_v, 3)),
        "f": np.zeros((13776, 3), np.uint32),
        "J_regressor": scipy.sparse.csc_matrix((n_j, n_v)),
        "weights": np.zeros((n_v, n_j)),
        "kintree_table": np.array([[2**32 - 1] + [0] * (n_j - 1), list(range(n_j))], np.int64),
        "shapedirs": np.zeros((n_v, 3, 10), np.float32),
        "posedirs": np.zeros((n_v, 3, 207), np.int8),
    }
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps(smpl, protocol=2))
    _expect_error(tmp_path / "SMPL_NEUTRAL.pkl", "right", "16 joints", "(24, 6890)", "body model")


def test_unknown_chumpy_objects_and_foreign_globals_are_refused(tmp_path: Path) -> None:
    ops = types.ModuleType("chumpy.ch_ops")

    class add:  # noqa: N801 - chumpy's own class name
        def __init__(self, a: object, b: object) -> None:
            self.a, self.b = a, b

    add.__module__, add.__qualname__ = "chumpy.ch_ops", "add"
    ops.add = add
    with fake_chumpy() as ch:
        sys.modules["chumpy.ch_ops"] = ops
        try:
            d = _mano_layout("right", ch)
            d["shapedirs"] = add(ch(np.zeros(3)), ch(np.ones(3)))
            (tmp_path / "ops.pkl").write_bytes(pickle.dumps(d, protocol=2))
        finally:
            del sys.modules["chumpy.ch_ops"]
    _expect_error(tmp_path / "ops.pkl", "right", "'shapedirs'", "chumpy.ch_ops.add")

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("this must never run",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    _expect_error(tmp_path / "evil.pkl", "right", "print (refused)")


# ----------------------------------------------------------------------------------------------------
# Finding the files
# ----------------------------------------------------------------------------------------------------


def test_find_hand_model_files_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(handmodel.ENV_VAR, raising=False)
    models = tmp_path / "models"
    (models / "mano").mkdir(parents=True)
    openhand.write_models(models)
    monkeypatch.setattr(model_files, "MODELS_DIR", models)
    assert find_hand_model_files() == {"right": models / "open_hand_right.pkl", "left": models / "open_hand_left.pkl"}
    (models / "mano" / "MANO_RIGHT.pkl").write_bytes(b"")
    with pytest.raises(HandModelError, match="MANO_LEFT.pkl or MANO_LEFT.npz is missing"):
        find_hand_model_files()  # half a MANO install is an error, not a silent fallback
    (models / "mano" / "MANO_LEFT.pkl").write_bytes(b"")
    assert find_hand_model_files()["left"] == models / "mano" / "MANO_LEFT.pkl"
    other = tmp_path / "elsewhere"
    openhand.write_models(other)
    monkeypatch.setenv(handmodel.ENV_VAR, str(other / "open_hand_left.pkl"))
    assert find_hand_model_files()["right"] == other / "open_hand_right.pkl"
    assert find_hand_model_files(models / "mano")["right"] == models / "mano" / "MANO_RIGHT.pkl"
    with pytest.raises(HandModelError, match="found neither"):
        find_hand_model_files(tmp_path)
    with pytest.raises(HandModelError, match="not found"):
        find_hand_model_files(tmp_path / "nowhere")
    (tmp_path / "hand.pkl").write_bytes(b"")
    with pytest.raises(HandModelError, match="another name"):
        find_hand_model_files(tmp_path / "hand.pkl")


def test_default_files_are_the_shipped_open_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(handmodel.ENV_VAR, raising=False)
    monkeypatch.setattr(model_files, "MODELS_DIR", openhand.DEFAULT_DIR)
    if model_files.mano_pair(openhand.DEFAULT_DIR / "mano"):
        pytest.skip("real MANO files installed in models/mano take precedence")
    models = load_hand_models()
    assert {m.info.name for m in models.values()} == {"enrich-open-hand"}
    assert models["left"].info.n_vertices == len(openhand.build_model("left")["v_template"])
