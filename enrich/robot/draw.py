"""What to draw of a robot hand: its links as 3D segments (numpy), or a MuJoCo offscreen render (optional).

Both show the robot as the camera sees the human hand it follows: the palm turned by the track's
``root_rotation``; a mirrored (left) track is drawn as the mirror image of the right-hand model.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from enrich.records import RobotTrack
from enrich.robot.model import RobotHand

MIRROR = np.diag([-1.0, 1.0, 1.0])
# MuJoCo picks its GL backend once, when first imported: headless EGL unless the user chose one (e.g. osmesa)
if not os.environ.get("MUJOCO_GL"):
    os.environ["MUJOCO_GL"] = "egl"


def import_mujoco() -> tuple[Any, str]:
    """The mujoco module, or None and why not (not installed, or no headless GL backend loads)."""
    try:
        import mujoco
    except ImportError:
        return None, "MuJoCo is not installed (pip install -e '.[robot]')"
    except Exception as e:  # a GL backend that fails to load raises from the import
        return None, f"MuJoCo cannot load a headless GL backend ({type(e).__name__}: {e})"
    return mujoco, ""


def link_segments(robot: RobotHand, q: np.ndarray) -> np.ndarray:
    """(B, S, 2, 3) the robot's links in its palm frame: parent -> child body origins, then each body ->
    the keypoints on it (fingertip sites); zero-length links left out."""
    origins = robot.body_origins(q)
    pairs = [(b.parent, i) for i, b in enumerate(robot.bodies) if b.parent >= 0]
    starts = origins[:, [a for a, _ in pairs]]
    ends = origins[:, [c for _, c in pairs]]
    kp = robot.keypoints(q)
    on_body = [(int(robot.point_body[k]), k) for k in range(21) if robot.point_body[k] >= 0]
    starts = np.concatenate([starts, origins[:, [b for b, _ in on_body]]], axis=1)
    ends = np.concatenate([ends, kp[:, [k for _, k in on_body]]], axis=1)
    seg = np.stack([starts, ends], axis=2)
    keep = np.linalg.norm(seg[0, :, 1] - seg[0, :, 0], axis=-1) > 1e-6
    return seg[:, keep]


def camera_oriented(points_palm: np.ndarray, rt: RobotTrack, row: int) -> np.ndarray:
    """Palm-frame points (..., 3) turned as the camera sees the hand (no translation: centred views)."""
    return points_palm @ rt.root_rotation[row].astype(np.float64).T


class MujocoView:
    """Offscreen MuJoCo renders of a robot hand, oriented like the camera's view of the human hand.

    ``MujocoView.open(robot, size)`` returns None with the reason when MuJoCo is not installed or no
    headless GL backend (EGL, OSMesa) works; callers fall back to drawing ``link_segments``.
    """

    def __init__(self, robot: RobotHand, size: int, mujoco: object, model: object) -> None:
        self.robot, self.size, self._mj, self.model = robot, size, mujoco, model
        mj = mujoco
        self.data = mj.MjData(model)
        self.renderer = mj.Renderer(model, size, size)
        self._qpos = [model.joint(name).qposadr[0] for name in robot.joint_names]
        mj.mj_kinematics(model, self.data)
        root = model.body(robot.bodies[0].name).id
        top = root
        while model.body_parentid[top] != 0:
            top = model.body_parentid[top]
        self._top = top
        # palm pose in the top body's frame at rest (joints above the palm at 0)
        r_top, p_top = self.data.xmat[top].reshape(3, 3), self.data.xpos[top]
        r_palm, p_palm = self.data.xmat[root].reshape(3, 3), self.data.xpos[root]
        self._palm_in_top = (r_top.T @ r_palm, r_top.T @ (p_palm - p_top))

    @classmethod
    def open(cls, robot: RobotHand, size: int) -> tuple[MujocoView | None, str]:
        mujoco, why = import_mujoco()
        if mujoco is None:
            return None, why
        try:
            model = mujoco.MjModel.from_xml_path(robot.source)
            view = cls(robot, size, mujoco, model)
            view.render(robot.rest_pose(), np.eye(3))
        except Exception as e:  # no EGL/OSMesa device, or a model MuJoCo rejects
            return None, f"MuJoCo offscreen rendering failed ({type(e).__name__}: {e})"
        return view, ""

    def render(self, q: np.ndarray, palm_to_camera: np.ndarray) -> np.ndarray:
        """(size, size, 3) uint8 RGB: the robot at angles q, its palm turned by ``palm_to_camera``."""
        mj, model, data = self._mj, self.model, self.data
        mirrored = np.linalg.det(palm_to_camera) < 0
        rot = MIRROR @ palm_to_camera if mirrored else palm_to_camera
        # world = camera frame turned so that z is up: (x, y, z)_cam -> (x, z, -y)
        cam_to_world = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
        r_palm = cam_to_world @ rot
        r_pt, p_pt = self._palm_in_top
        r_top = r_palm @ r_pt.T
        p_top = -r_top @ p_pt  # the palm origin at the world origin
        quat = np.empty(4)
        mj.mju_mat2Quat(quat, r_top.ravel())
        model.body_pos[self._top], model.body_quat[self._top] = p_top, quat
        data.qpos[:] = 0
        data.qpos[self._qpos] = q
        mj.mj_kinematics(model, data)
        cam = mj.MjvCamera()
        cam.lookat[:] = r_palm @ np.array([0.0, 0.0, 0.09])  # mid-hand
        cam.distance, cam.azimuth, cam.elevation = 0.42, 90.0, 0.0  # looking along world +y: the camera's view
        self.renderer.update_scene(data, cam)
        img = self.renderer.render().copy()
        return img[:, ::-1] if mirrored else img


def camera_points(robot: RobotHand, rt: RobotTrack, row: int, points_palm: np.ndarray) -> np.ndarray:
    """Palm-frame points (..., 3) in the camera frame at the human hand's size: the robot placed by the track's
    root pose, shrunk by its scale about the wrist, so that it lies over the human hand in the picture."""
    rot = rt.root_rotation[row].astype(np.float64)
    wrist_cam = rot @ robot.keypoints(robot.rest_pose()[None])[0, 0] + rt.root_position_m[row]
    cam = points_palm @ rot.T + rt.root_position_m[row]
    return wrist_cam + (cam - wrist_cam) / rt.scale


def project_px(points_cam: np.ndarray, focal_px: float, width: int, height: int) -> np.ndarray:
    """(..., 2) pixels of camera-frame points (pinhole, principal point at the frame centre)."""
    z = np.maximum(points_cam[..., 2:3], 1e-6)
    return points_cam[..., :2] / z * focal_px + np.array([width / 2, height / 2])


class CameraView:
    """MuJoCo renders of the robot as the clip's camera sees it: a pinhole of the clip's focal length, the robot
    at the human hand's place, turned as it is, and drawn at its size (a robot of ``scale`` times the hand's size
    placed ``scale`` times as far along the same rays projects exactly as the shrunk robot would)."""

    def __init__(self, robot: RobotHand, width: int, height: int, focal_px: float, mujoco: object) -> None:
        mj = mujoco
        self.robot, self.width, self.height, self._mj = robot, width, height, mj
        self.model = mj.MjModel.from_xml_path(robot.source)
        self.model.vis.global_.offwidth = max(width, int(self.model.vis.global_.offwidth))
        self.model.vis.global_.offheight = max(height, int(self.model.vis.global_.offheight))
        self.model.vis.global_.fovy = float(np.rad2deg(2 * np.arctan(height / (2 * focal_px))))
        self.model.vis.map.znear = 0.001
        for rgba in (self.model.mat_rgba, self.model.geom_rgba):  # black robots stand out on a dimmed frame
            rgba[:, :3] = 0.35 + 0.65 * rgba[:, :3]
        self.data = mj.MjData(self.model)
        self.renderer = mj.Renderer(self.model, height, width)
        self._palm = MujocoView.__new__(MujocoView)  # reuse its palm-in-top-body bookkeeping
        MujocoView.__init__(self._palm, robot, 8, mj, self.model)

    @classmethod
    def open(cls, robot: RobotHand, width: int, height: int, focal_px: float) -> tuple[CameraView | None, str]:
        mujoco, why = import_mujoco()
        if mujoco is None:
            return None, why
        try:
            view = cls(robot, width, height, focal_px, mujoco)
        except Exception as e:  # no EGL/OSMesa device, or a model MuJoCo rejects
            return None, f"MuJoCo offscreen rendering failed ({type(e).__name__})"
        return view, ""

    def render(self, rt: RobotTrack, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB and (H, W) bool mask of the robot of track row ``row`` in the camera's view."""
        mj, model, data = self._mj, self.model, self.data
        rot = rt.root_rotation[row].astype(np.float64)
        wrist_cam = rot @ self.robot.keypoints(self.robot.rest_pose()[None])[0, 0] + rt.root_position_m[row]
        palm_cam = rt.root_position_m[row] + (rt.scale - 1.0) * wrist_cam  # scale times as far along the rays
        mirrored = np.linalg.det(rot) < 0
        if mirrored:  # render the right-hand model in the mirrored camera; the image flips back below
            rot, palm_cam = MIRROR @ rot, MIRROR @ palm_cam
        cam_to_world = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # camera looks along world +y, z up
        r_palm = cam_to_world @ rot
        r_pt, p_pt = self._palm._palm_in_top
        r_top = r_palm @ r_pt.T
        quat = np.empty(4)
        mj.mju_mat2Quat(quat, r_top.ravel())
        model.body_pos[self._palm._top] = cam_to_world @ palm_cam - r_top @ p_pt
        model.body_quat[self._palm._top] = quat
        data.qpos[:] = 0
        data.qpos[self._palm._qpos] = rt.angles_rad[row].astype(np.float64)
        mj.mj_kinematics(model, data)
        cam = mj.MjvCamera()
        cam.lookat[:], cam.distance, cam.azimuth, cam.elevation = (0.0, 1.0, 0.0), 1.0, 90.0, 0.0  # at the origin
        self.renderer.update_scene(data, cam)
        rgb = self.renderer.render().copy()
        self.renderer.enable_segmentation_rendering()
        self.renderer.update_scene(data, cam)
        mask = self.renderer.render()[..., 0] >= 0
        self.renderer.disable_segmentation_rendering()
        return (rgb[:, ::-1], mask[:, ::-1]) if mirrored else (rgb, mask)
