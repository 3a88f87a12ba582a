"""The Allegro and LEAP hands beside Shadow: kinematics against MuJoCo, retargeting recovers their motions,
pinches are kept, and they are stored and read back like Shadow (``hand.robot("allegro")``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_robot import camera_points, track_from_points

import enrich
from enrich.robot import load_robot, retarget_track, robot_keypoints_camera
from enrich.robot.builtin import BUILTIN, RETARGET_SETTINGS

# per robot, the joints that spread a finger sideways (held still: spread fingers may pass through each other)
SPREAD = {"allegro": ("ffj0", "mfj0", "rfj0"), "leap": ("if_rot", "mf_rot", "rf_rot")}


@pytest.fixture(scope="module", params=["allegro", "leap"])
def hand(request: pytest.FixtureRequest) -> enrich.robot.RobotHand:
    return load_robot(request.param)


def finger_poses(robot: enrich.robot.RobotHand, n: int, seed: int) -> np.ndarray:
    """(n, J) slow joint trajectories well inside the limits, fingers not spread."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)[:, None]
    phase, freq = rng.uniform(0, 2 * np.pi, robot.dof), rng.uniform(0.5, 1.5, robot.dof)
    mid, half = (robot.lower + robot.upper) / 2, (robot.upper - robot.lower) / 2
    q = mid + 0.5 * half * np.sin(2 * np.pi * freq * t + phase)
    q[:, [robot.joint_names.index(j) for j in SPREAD[robot.name]]] = 0.0
    return q


def test_builtin_hands_have_their_fingers_and_limits(hand: enrich.robot.RobotHand) -> None:
    assert hand.dof == 16 and hand.fingers == (0, 1, 2, 3)  # no little finger
    assert hand.has_point[:17].all() and not hand.has_point[17:].any()
    assert (hand.lower < hand.upper).all() and hand.sphere_body.size >= 30
    rest = hand.keypoints(hand.rest_pose()[None])[0]
    palm_m = np.linalg.norm(rest[9] - rest[0])
    assert 0.08 < palm_m < 0.13  # wrist at the palm's bottom: a palm as long as a (large) human one


def test_kinematics_follow_mujoco(hand: enrich.robot.RobotHand) -> None:
    mujoco = pytest.importorskip("mujoco")
    model = mujoco.MjModel.from_xml_path(str(BUILTIN[hand.name][0]))
    data = mujoco.MjData(model)
    q = finger_poses(hand, 3, 1)
    origins = hand.body_origins(q)
    for i in range(len(q)):
        for j, name in enumerate(hand.joint_names):
            data.qpos[model.joint(name).qposadr[0]] = q[i, j]
        mujoco.mj_kinematics(model, data)
        palm = model.body("palm").id
        rot, origin = data.xmat[palm].reshape(3, 3), data.xpos[palm]
        for b, body in enumerate(hand.bodies):
            np.testing.assert_allclose(rot.T @ (data.body(body.name).xpos - origin), origins[i, b], atol=1e-9)


def test_retargeting_recovers_the_hands_motion(hand: enrich.robot.RobotHand) -> None:
    q_true = finger_poses(hand, 16, 2)
    pts = camera_points(hand, q_true, 0.8, 3)
    pts[:, 17:] = pts[:, 13:17]  # a human track has a little finger; these robots ignore it
    rt = retarget_track(track_from_points(pts), hand)
    q = rt.angles_rad.astype(np.float64)
    assert ((q >= hand.lower) & (q <= hand.upper)).all()
    assert rt.scale == pytest.approx(1 / 0.8, rel=1e-6)
    assert np.median(rt.residual_mm) < 4.0
    cam = robot_keypoints_camera(hand, rt)
    np.testing.assert_allclose(cam[:, 0], pts[:, 0], atol=1e-6)
    err_mm = np.linalg.norm(cam[:, 8] - cam[:, 0] - (pts[:, 8] - pts[:, 0]) / 0.8, axis=-1) * 1e3
    assert np.median(err_mm) < 8.0  # the index tip where the (scaled) human's is


def test_pinch_is_kept(hand: enrich.robot.RobotHand) -> None:
    q_true = finger_poses(hand, 10, 4)
    pts = camera_points(hand, q_true, 0.8, 5)
    pts[:, 17:] = pts[:, 13:17]
    gap = pts[:, 8] - pts[:, 4]
    pts[:, 4] = pts[:, 8] - 0.02 * gap / np.linalg.norm(gap, axis=-1, keepdims=True)
    rt = retarget_track(track_from_points(pts), hand)
    kp = hand.keypoints(rt.angles_rad.astype(np.float64))
    rel = np.abs(np.linalg.norm(kp[:, 8] - kp[:, 4], axis=-1) / (0.02 * rt.scale) - 1)
    assert np.median(rel) < 0.1 and np.mean(rel < 0.15) >= 0.8  # a thumb tip moved alone is not always reachable


def test_left_hand_is_mirrored(hand: enrich.robot.RobotHand) -> None:
    q_true = finger_poses(hand, 8, 6)
    pts = camera_points(hand, q_true, 0.8, 7)
    pts[:, 17:] = pts[:, 13:17]
    right = retarget_track(track_from_points(pts), hand)
    left = retarget_track(track_from_points(pts @ np.diag([-1.0, 1.0, 1.0]), "left"), hand)
    assert left.mirrored and np.abs(left.angles_rad - right.angles_rad).max() < 1e-3
    assert np.allclose(np.linalg.det(left.root_rotation.astype(np.float64)), -1.0, atol=1e-4)  # the mirror
    mirror = np.diag([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(
        robot_keypoints_camera(hand, left)[:, :17], robot_keypoints_camera(hand, right)[:, :17] @ mirror, atol=2e-3
    )


def test_three_hands_stored_and_exported(sample_results: Path, tmp_path: Path) -> None:
    """`enrich retarget --robot shadow allegro leap`: each robot's tracks come back by name, in NPZ and Parquet."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    from enrich.cli import main

    path = tmp_path / "three.h5"
    assert main(["retarget", str(sample_results), "--robot", "shadow", "allegro", "leap", "-o", str(path), "-q"]) == 0
    assert main(["export", str(path), "-o", str(tmp_path / "npz")]) == 0
    assert main(["export", str(path), "--format", "parquet", "-o", str(tmp_path / "pq")]) == 0
    with enrich.open_results(path) as results:
        assert set(results.robots) == {"shadow", "allegro", "leap"}
        leap_own = RETARGET_SETTINGS["leap"]["accel_weight_m_per_rad"]
        assert results.robots["leap"].config["accel_weight_m_per_rad"] == leap_own  # the robot's own smoothing
        hand = results["2"].hands["right"]
        for name in ("allegro", "leap"):
            rt, robot = hand.robot(name), load_robot(name)
            assert rt.joint_names == robot.joint_names and rt.angles_rad.shape == (len(hand.fit), 16)
            np.testing.assert_array_equal(rt.angles_rad, retarget_track(hand.fit, robot).angles_rad)
            assert np.isnan(rt.tip_error_mm[:, 4]).all() and np.isfinite(rt.tip_error_mm[:, :4]).all()
            archive = np.load(tmp_path / "npz" / "2.npz")
            np.testing.assert_array_equal(archive[f"right_robot_{name}_angles_rad"], rt.angles_rad)
            table = pd.read_parquet(tmp_path / "pq" / f"robot_{name}.parquet")
            mine = table[(table["video_id"] == "2") & (table["hand"] == "right")]
            np.testing.assert_array_equal(mine[list(rt.joint_names)].to_numpy(), rt.angles_rad)
