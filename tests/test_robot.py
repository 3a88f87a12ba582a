"""Robot hand models and retargeting: kinematics, limits, recovery of known robot poses, residuals."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import enrich
from enrich.records import ManoTrack
from enrich.robot import KeypointSpec, RobotModelError, load_robot, retarget_track, robot_keypoints_camera
from enrich.robot.draw import MujocoView  # before any mujoco import: it picks the headless GL backend
from enrich.robot.model import TIPS
from enrich.robot.parse import load_urdf
from enrich.robot.retarget import MIRROR


@pytest.fixture(scope="module")
def shadow() -> enrich.robot.RobotHand:
    return load_robot("shadow")


def smooth_poses(robot: enrich.robot.RobotHand, n: int, seed: int) -> np.ndarray:
    """(n, J) slow joint trajectories inside the limits (away from them, so they are recoverable), fingers
    not spread sideways (so they do not pass through each other, which retargeting avoids)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)[:, None]
    phase, freq = rng.uniform(0, 2 * np.pi, robot.dof), rng.uniform(0.5, 1.5, robot.dof)
    mid, half = (robot.lower + robot.upper) / 2, (robot.upper - robot.lower) / 2
    q = mid + 0.6 * half * np.sin(2 * np.pi * freq * t + phase)
    spread = [j for j, name in enumerate(robot.joint_names) if name[-3:] in ("FJ3", "FJ4")]
    q[:, spread] = 0.0
    for row in robot.coupling:  # coupled joints as the robot moves them: c_a q_a + c_b q_b = 0
        a, b = np.argsort(-np.abs(row))[:2][::-1]
        q[:, b] = -row[a] * q[:, a] / row[b]
    return q


def track_from_points(points_m: np.ndarray, side: str = "right", segment: np.ndarray | None = None) -> ManoTrack:
    n = points_m.shape[0]
    return ManoTrack(
        side=side,
        frame_index=np.arange(n, dtype=np.int32),
        global_orient=np.zeros((n, 3)),
        hand_pose=np.zeros((n, 45)),
        betas=np.zeros(10),
        transl=np.zeros((n, 3)),
        joints3d=points_m,
        residual_2d_px=np.zeros(n),
        residual_3d_mm=np.zeros(n),
        observed=np.ones(n, bool),
        interpolated=np.zeros(n, bool),
        segment=np.zeros(n, np.int16) if segment is None else segment,
    )


def camera_points(robot: enrich.robot.RobotHand, q: np.ndarray, size: float, seed: int) -> np.ndarray:
    """The robot's keypoints at q, shrunk to a human's size and placed in front of a camera."""
    rot = Rotation.from_rotvec(np.random.default_rng(seed).normal(size=3)).as_matrix()
    return size * robot.keypoints(q) @ rot.T + np.array([0.05, -0.02, 0.6])


def test_shadow_kinematics_follow_the_mjcf(shadow: enrich.robot.RobotHand) -> None:
    assert shadow.dof == 22 and shadow.has_point.all()
    assert len(shadow.coupling) == 4  # the distal joints of the four fingers follow the middle ones
    rest = shadow.keypoints(shadow.rest_pose()[None])[0]
    # index tip at rest: knuckle (0.033, 0, 0.095) + proximal 0.045 + middle 0.025 + tip site 0.026 along z
    np.testing.assert_allclose(rest[8], [0.033, 0.0, 0.191], atol=1e-9)
    q = shadow.rest_pose()
    q[shadow.joint_names.index("robot0:FFJ2")] = np.pi / 2  # index MCP flexed 90 deg: the finger points to -y
    np.testing.assert_allclose(shadow.keypoints(q[None])[0, 8], [0.033, -0.096, 0.095], atol=1e-6)


def test_point_jacobians_match_finite_differences(shadow: enrich.robot.RobotHand) -> None:
    q = smooth_poses(shadow, 3, 0)
    bodies, offsets = shadow.point_body, shadow.point_offset
    x, jac = shadow.points(q, bodies, offsets)
    eps = 1e-6
    for j in range(shadow.dof):
        dq = np.zeros_like(q)
        dq[:, j] = eps
        numeric = (shadow.points(q + dq, bodies, offsets)[0] - x) / eps
        np.testing.assert_allclose(jac[..., j], numeric, atol=1e-5)


def test_forward_kinematics_match_mujoco(shadow: enrich.robot.RobotHand) -> None:
    mujoco = pytest.importorskip("mujoco")
    model = mujoco.MjModel.from_xml_path(shadow.source)
    data = mujoco.MjData(model)
    q = smooth_poses(shadow, 4, 1)
    kp = shadow.keypoints(q)
    spec = enrich.robot.builtin.SHADOW_SPEC
    for i in range(len(q)):
        data.qpos[:] = 0
        for j, name in enumerate(shadow.joint_names):
            data.qpos[model.joint(name).qposadr[0]] = q[i, j]
        mujoco.mj_kinematics(model, data)
        palm = model.body(spec.root_body).id
        rot, origin = data.xmat[palm].reshape(3, 3), data.xpos[palm]
        for k, name in spec.points.items():
            world = data.site(name).xpos if name.startswith("robot0:S_") else data.body(name).xpos
            np.testing.assert_allclose(rot.T @ (world - origin), kp[i, k], atol=1e-9)


@pytest.mark.parametrize("side", ["right", "left"])
def test_retargeting_recovers_a_robot_motion(shadow: enrich.robot.RobotHand, side: str) -> None:
    q_true = smooth_poses(shadow, 24, 2)
    pts = camera_points(shadow, q_true, 0.9, 3)
    if side == "left":
        pts = pts @ MIRROR  # a left hand: the mirror image of the same motion
    rt = retarget_track(track_from_points(pts, side), shadow)
    assert rt.angles_rad.shape == (24, shadow.dof) and rt.mirrored == (side == "left")
    assert rt.scale == pytest.approx(1 / 0.9, rel=1e-6)
    q = rt.angles_rad.astype(np.float64)
    assert ((q >= shadow.lower) & (q <= shadow.upper)).all()
    assert np.median(rt.residual_mm) < 3.0 and np.nanmax(rt.tip_error_mm) < 10.0
    # the robot placed back in the camera lands on the (unscaled) human hand's wrist and points its fingers alike
    cam = robot_keypoints_camera(shadow, rt)
    np.testing.assert_allclose(cam[:, 0], pts[:, 0], atol=1e-6)
    direction = (cam[:, 12] - cam[:, 0]) / np.linalg.norm(cam[:, 12] - cam[:, 0], axis=-1, keepdims=True)
    human = (pts[:, 12] - pts[:, 0]) / np.linalg.norm(pts[:, 12] - pts[:, 0], axis=-1, keepdims=True)
    assert np.all(np.sum(direction * human, axis=-1) > 0.98)


def test_pinch_distance_is_kept(shadow: enrich.robot.RobotHand) -> None:
    """A human pinch (thumb and index tips 1.8 cm apart) comes out at the scaled distance on the robot."""
    q_true = smooth_poses(shadow, 12, 4)
    pts = camera_points(shadow, q_true, 0.9, 5)
    gap = pts[:, 8] - pts[:, 4]
    pinch = pts.copy()
    pinch[:, 4] = pts[:, 8] - 0.018 * gap / np.linalg.norm(gap, axis=-1, keepdims=True)  # thumb tip near the index
    rt = retarget_track(track_from_points(pinch), shadow)
    kp = shadow.keypoints(rt.angles_rad.astype(np.float64))
    robot_gap_m = np.linalg.norm(kp[:, 8] - kp[:, 4], axis=-1)
    np.testing.assert_allclose(robot_gap_m, 0.018 * rt.scale, rtol=0.15)


def test_limits_hold_for_poses_beyond_them(shadow: enrich.robot.RobotHand) -> None:
    q = np.tile(shadow.rest_pose(), (6, 1))
    flex = [shadow.joint_names.index(n) for n in ("robot0:FFJ2", "robot0:MFJ2")]
    unbounded = copy.deepcopy(shadow)
    q_far = q.copy()
    q_far[:, flex] = -0.6  # hyperextended: below the lower limit 0
    for joint in unbounded.joints:
        joint.lower, joint.upper = -np.pi, np.pi
    pts = camera_points(unbounded, q_far, 1.0, 6)
    rt = retarget_track(track_from_points(pts), shadow)
    angles = rt.angles_rad.astype(np.float64)
    assert ((angles >= shadow.lower) & (angles <= shadow.upper)).all()
    assert np.all(angles[:, flex] == 0.0)  # pinned at the limit it would cross
    assert np.median(rt.tip_error_mm[:, 1]) > 20  # and the residual says the pose was out of reach


def test_residual_marks_a_bad_frame(shadow: enrich.robot.RobotHand) -> None:
    pts = camera_points(shadow, smooth_poses(shadow, 20, 7), 1.0, 8)
    pts[10, 8] += 3 * (pts[10, 8] - pts[10, 7])  # a broken index tip in one frame: the last bone 4x as long
    rt = retarget_track(track_from_points(pts), shadow)
    assert int(np.argmax(rt.residual_mm)) == 10
    assert rt.residual_mm[10] > 3 * np.median(rt.residual_mm)


def test_segments_are_not_smoothed_across(shadow: enrich.robot.RobotHand) -> None:
    """Two segments of different motions: the first frame of the second lands on its own pose."""
    q = np.concatenate([np.tile(shadow.rest_pose(), (8, 1)), smooth_poses(shadow, 8, 9)[:1].repeat(8, 0)])
    segment = np.repeat(np.array([0, 1], np.int16), 8)
    rt = retarget_track(track_from_points(camera_points(shadow, q, 1.0, 10), segment=segment), shadow)
    assert rt.residual_mm[8] < 3.0


def test_urdf_hand_and_bad_specs(tmp_path: Path) -> None:
    """A two-finger URDF: keypoints from its links, revolute limits, and clear errors for wrong specs."""
    links = ["palm", "idx_mcp", "idx_pip", "idx_tip", "mid_mcp", "mid_pip", "mid_tip", "rng_mcp"]
    joints = [
        ("j_idx1", "palm", "idx_mcp", "0.02 0 0.09", "revolute"),
        ("j_idx2", "idx_mcp", "idx_pip", "0 0 0.04", "revolute"),
        ("j_idx3", "idx_pip", "idx_tip", "0 0 0.04", "fixed"),
        ("j_mid1", "palm", "mid_mcp", "0 0 0.095", "revolute"),
        ("j_mid2", "mid_mcp", "mid_pip", "0 0 0.045", "revolute"),
        ("j_mid3", "mid_pip", "mid_tip", "0 0 0.045", "fixed"),
        ("j_rng", "palm", "rng_mcp", "-0.03 0 0.08", "fixed"),
    ]
    body = "".join(f'<link name="{n}"/>' for n in links)
    for name, parent, child, xyz, kind in joints:
        body += (
            f'<joint name="{name}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
            f'<origin xyz="{xyz}" rpy="0 0 0"/><axis xyz="1 0 0"/><limit lower="0" upper="1.5"/></joint>'
        )
    path = tmp_path / "two.urdf"
    path.write_text(f'<robot name="two">{body}</robot>')
    spec = KeypointSpec("palm", {0: "palm", 5: "idx_mcp", 8: "idx_tip", 9: "mid_mcp", 12: "mid_tip", 13: "rng_mcp"})
    hand = load_urdf(path, spec)
    assert hand.dof == 4 and hand.fingers == (1, 2)
    np.testing.assert_allclose(hand.keypoints(hand.rest_pose()[None])[0, 8], [0.02, 0, 0.17], atol=1e-12)
    q = hand.rest_pose()
    q[0] = np.pi / 2  # about +x: the index points to -y
    np.testing.assert_allclose(hand.keypoints(q[None])[0, 8], [0.02, -0.08, 0.09], atol=1e-12)
    with pytest.raises(RobotModelError, match="needs keypoints"):
        load_urdf(path, KeypointSpec("palm", {0: "palm", 8: "idx_tip"}))
    with pytest.raises(RobotModelError, match="not a body or site"):
        load_urdf(path, KeypointSpec("palm", {**spec.points, 4: "no_such_link"}))
    with pytest.raises(RobotModelError, match="not a built-in robot"):
        load_robot(path)


def test_sample_fits_retarget_within_limits(sample_results: Path, shadow: enrich.robot.RobotHand) -> None:
    results = enrich.open_results(sample_results)
    fits = [h.fit for clip in results for h in clip.hands.values() if h.fit is not None]
    assert fits
    for fit in fits:
        rt = retarget_track(fit, shadow)
        q = rt.angles_rad.astype(np.float64)
        assert ((q >= shadow.lower) & (q <= shadow.upper)).all()
        assert np.isfinite(rt.residual_mm).all() and (rt.residual_mm > 0).all()
        assert np.isfinite(rt.tip_error_mm[:, [TIPS.index(t) for t in TIPS]]).all()


# ------------------------------------------------------------------------------------------- drawing


def _robot_pixels(panel: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.all(np.abs(panel.astype(int) - colour) < 30, axis=-1).sum())


def test_show_draws_the_robot_links_in_the_camera_view(sample_results: Path) -> None:
    from enrich.inputs import ClipSource, read_clip
    from enrich.show import PANEL_WIDTH, ROBOT_COLOURS, render_frames, robot_hands

    with enrich.open_results(sample_results) as results:
        record = results["2"]
    frames = read_clip(ClipSource("2", record.source, "video")).frames_rgb
    robots = robot_hands(record, "shadow", mujoco=False)
    rt = robots.tracks["right"]
    out = render_frames(record, frames, None, None, None, scale=1, robots=robots)
    assert out.shape[2] == 2 * frames.shape[2] + PANEL_WIDTH  # the robot panel is as large as the frame
    panel = out[:, :, -frames.shape[2] :]
    with_robot = set(rt.frame_index.tolist())
    colour = ROBOT_COLOURS["right"]
    counts = np.array([_robot_pixels(panel[f], colour) for f in range(len(out))])
    assert all(counts[f] > 50 for f in with_robot)
    assert all(counts[f] < 10 for f in range(len(out)) if f not in with_robot)
    # the drawing follows the angles: the frames where the robot moves most differ most in the panel
    a, b = int(rt.frame_index[0]), int(rt.frame_index[np.argmax(np.abs(rt.angles_rad - rt.angles_rad[0]).sum(1))])
    assert np.abs(panel[a].astype(int) - panel[b].astype(int)).mean() > 1.0


def test_mujoco_render_of_the_robot(shadow: enrich.robot.RobotHand) -> None:
    pytest.importorskip("mujoco")
    view, why = MujocoView.open(shadow, 96)
    if view is None:
        pytest.skip(why)
    upright = Rotation.from_rotvec([np.pi / 2, 0, 0]).as_matrix()  # fingers up in the image, palm to the camera
    open_hand = view.render(shadow.rest_pose(), upright)
    fist = shadow.rest_pose()
    for j, name in enumerate(shadow.joint_names):
        if name[-3:] in ("FJ2", "FJ1", "FJ0"):
            fist[j] = shadow.upper[j]
    closed = view.render(fist, upright)
    lit = [int((img.max(-1) > 60).sum()) for img in (open_hand, closed)]
    assert lit[0] > 300 and lit[1] > 200
    assert lit[1] < 0.85 * lit[0]  # curled fingers cover less of the view
    mirrored = view.render(shadow.rest_pose(), MIRROR @ upright)
    np.testing.assert_array_equal(mirrored, open_hand[:, ::-1])  # a left hand is the right one mirrored


def test_fingers_are_kept_out_of_each_other(shadow: enrich.robot.RobotHand) -> None:
    """A human little finger lying on the ring finger: the robot's little finger stops beside it."""
    from dataclasses import replace

    from enrich.robot import RetargetConfig
    from enrich.robot.retarget import finger_overlap_mm

    pts = camera_points(shadow, np.tile(shadow.rest_pose(), (6, 1)), 1.0, 11)
    pts[:, 18:21] = pts[:, 14:17] + 0.004 * (pts[:, 17:18] - pts[:, 13:14])  # little PIP..tip onto the ring's
    track = track_from_points(pts)
    kept = retarget_track(track, shadow)
    through = retarget_track(track, shadow, replace(RetargetConfig(), collision_weight=0.0))
    assert finger_overlap_mm(shadow, through.angles_rad.astype(np.float64)).max() > 6.0
    assert finger_overlap_mm(shadow, kept.angles_rad.astype(np.float64)).max() < 3.0


def test_robot_package_imports_only_records() -> None:
    from test_layout import import_graph

    graph = import_graph()
    for module, edges in graph.items():
        if module == "enrich.robot" or module.startswith("enrich.robot."):
            outside = {e for e in edges if not e.startswith("enrich.robot")}
            assert outside <= {"enrich.records", "enrich.constants", "enrich.errors"}, f"{module} imports {outside}"
