"""Robot hand kinematics read from MJCF or URDF, in plain numpy (no simulator needed to retarget).

A ``RobotHand`` is the kinematic tree below one root body (the palm): hinge joints with axes and limits, the
points that stand in for MediaPipe's 21 hand keypoints, collision spheres on the fingers, and linear joint
couplings (MJCF fixed tendons with a near-zero range, e.g. the Shadow hand's coupled distal joints).
Forward kinematics and the point Jacobians are batched over frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from enrich.constants import FINGER_NAMES, FINGERTIPS
from enrich.errors import RobotModelError  # noqa: F401  (re-exported: enrich.robot's public error)

FINGERS: tuple[str, ...] = FINGER_NAMES
# MediaPipe keypoints of each finger, base to tip
FINGER_KEYPOINTS: tuple[tuple[int, ...], ...] = tuple(tuple(range(1 + 4 * f, 5 + 4 * f)) for f in range(5))
TIPS: tuple[int, ...] = FINGERTIPS


@dataclass(frozen=True)
class KeypointSpec:
    """Which robot frames stand in for MediaPipe keypoints: {keypoint index: (body or site name, offset m)}.

    Needed: the wrist (0), index, middle and ring MCP (5, 9, 13: the palm frame), and the tip of every
    finger the robot has. Others (PIP, DIP) make the retargeting hold the finger's shape too.
    """

    root_body: str
    points: dict[int, str]
    offsets_m: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    # collision spheres of this radius along each finger's midline, keypoint to keypoint, in place of the model's
    # capsules (for models whose collision geometry is boxes or meshes); None: three spheres per capsule
    link_radius_m: float | None = None


@dataclass
class Body:
    name: str
    parent: int  # index into the body list, -1 for the root
    pos: np.ndarray  # (3,) in the parent's frame
    rot: np.ndarray  # (3, 3) parent-from-body
    joints: list[int] = field(default_factory=list)  # hinge joints of this body, applied in order


@dataclass
class Joint:
    name: str
    body: int
    axis: np.ndarray  # (3,) unit, body frame
    anchor: np.ndarray  # (3,) body frame
    lower: float
    upper: float

    def __post_init__(self) -> None:
        x, y, z = self.axis
        k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
        self._k, self._k2 = k, k @ k

    def rotations(self, angle: np.ndarray) -> np.ndarray:
        """(B, 3, 3) rotations by angle (B,) about the axis (Rodrigues)."""
        s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
        return np.eye(3) + s * self._k + (1 - c) * self._k2


@dataclass
class RobotHand:
    """Kinematic tree of a robot hand below its palm; all lengths in metres, angles in radians."""

    name: str
    source: str  # model file path
    sha256: str  # of the model file and the mesh/include files it names, in a stable order
    bodies: list[Body]
    joints: list[Joint]
    point_body: np.ndarray  # (21,) int, body of each MediaPipe keypoint, -1 where the robot has none
    point_offset: np.ndarray  # (21, 3) metres, in that body's frame
    sphere_body: np.ndarray  # (S,) int, collision spheres on the fingers
    sphere_offset: np.ndarray  # (S, 3)
    sphere_radius_m: np.ndarray  # (S,)
    sphere_finger: np.ndarray  # (S,) int, index into FINGERS
    sphere_is_tip: np.ndarray  # (S,) bool, on the body that holds the finger's tip point
    coupling: np.ndarray  # (C, J) rows c with c . q = coupling_value
    coupling_value: np.ndarray  # (C,)
    _ancestors: np.ndarray = field(init=False, repr=False)  # (B, J) bool: joint j moves body b

    def __post_init__(self) -> None:
        anc = np.zeros((len(self.bodies), len(self.joints)), bool)
        for b, body in enumerate(self.bodies):
            if body.parent >= 0:
                anc[b] = anc[body.parent]
            anc[b, body.joints] = True
        self._ancestors = anc
        self._plan_levels()

    def _plan_levels(self) -> None:
        """Bodies grouped by depth, so forward kinematics runs one level of all fingers at a time."""
        depth = np.zeros(len(self.bodies), int)
        for b, body in enumerate(self.bodies):
            depth[b] = depth[body.parent] + 1 if body.parent >= 0 else 0
        self._levels = []
        for d in range(1, depth.max() + 1 if len(self.bodies) else 1):
            ids = np.flatnonzero(depth == d)
            parents = np.array([self.bodies[b].parent for b in ids])
            slots = []
            for k in range(max(len(self.bodies[b].joints) for b in ids)):
                sel = np.array([i for i, b in enumerate(ids) if len(self.bodies[b].joints) > k], int)
                slots.append((sel, np.array([self.bodies[ids[i]].joints[k] for i in sel], int)))
            rots = np.stack([self.bodies[b].rot for b in ids])
            poss = np.stack([self.bodies[b].pos for b in ids])
            self._levels.append((ids, parents, rots, poss, slots))
        self._axis = np.array([j.axis for j in self.joints]).reshape(-1, 3)
        self._anchor = np.array([j.anchor for j in self.joints]).reshape(-1, 3)
        self._k = np.array([j._k for j in self.joints]).reshape(-1, 3, 3)
        self._k2 = self._k @ self._k

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def dof(self) -> int:
        return len(self.joints)

    @property
    def lower(self) -> np.ndarray:
        return np.array([j.lower for j in self.joints])

    @property
    def upper(self) -> np.ndarray:
        return np.array([j.upper for j in self.joints])

    @property
    def has_point(self) -> np.ndarray:
        """(21,) bool: MediaPipe keypoints the robot has a counterpart for."""
        return self.point_body >= 0

    @property
    def fingers(self) -> tuple[int, ...]:
        """Indices into FINGERS of the fingers the robot has (a tip point)."""
        return tuple(f for f, tip in enumerate(TIPS) if self.point_body[tip] >= 0)

    def rest_pose(self) -> np.ndarray:
        """(J,) zero angles clipped into the limits: the pose the keypoint layout is measured in."""
        return np.clip(np.zeros(self.dof), self.lower, self.upper)

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Body frames and joint axes for angles q (B, J).

        Returns body rotations (B, nb, 3, 3), body origins (B, nb, 3), joint world axes (B, J, 3) and joint
        anchors (B, J, 3), all in the root (palm) frame.
        """
        n = q.shape[0]
        s, c = np.sin(q)[..., None, None], np.cos(q)[..., None, None]
        joint_rot = np.eye(3) + s * self._k + (1 - c) * self._k2  # (B, J, 3, 3), Rodrigues
        rot = np.empty((n, len(self.bodies), 3, 3))
        pos = np.empty((n, len(self.bodies), 3))
        rot[:, 0], pos[:, 0] = self.bodies[0].rot, self.bodies[0].pos
        axes = np.empty((n, self.dof, 3))
        anchors = np.empty((n, self.dof, 3))
        for ids, parents, fixed_rot, fixed_pos, slots in self._levels:
            r = rot[:, parents] @ fixed_rot
            p = pos[:, parents] + (rot[:, parents] @ fixed_pos[:, :, None])[..., 0]
            for sel, jid in slots:
                rs, anchor = r[:, sel], self._anchor[jid][:, :, None]
                axes[:, jid] = (rs @ self._axis[jid][:, :, None])[..., 0]
                anchors[:, jid] = p[:, sel] + (rs @ anchor)[..., 0]
                r[:, sel] = rs @ joint_rot[:, jid]
                p[:, sel] = anchors[:, jid] - (r[:, sel] @ anchor)[..., 0]
            rot[:, ids], pos[:, ids] = r, p
        return rot, pos, axes, anchors

    def points(self, q: np.ndarray, bodies: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points fixed to bodies (K,) at offsets (K, 3): positions (B, K, 3) and Jacobians (B, K, 3, J)."""
        fk = self.forward(q)
        x = positions(fk, bodies, offsets)
        return x, self.jacobians(fk, x, bodies)

    def jacobians(self, fk: tuple[np.ndarray, ...], x: np.ndarray, bodies: np.ndarray) -> np.ndarray:
        """(B, K, 3, J) d x_k / d q_j = a_j x (x_k - o_j) for points x (B, K, 3) on bodies (K,), 0 for the
        joints that do not move body k."""
        _, _, axes, anchors = fk
        lever = x[:, :, None, :] - anchors[:, None, :, :]  # (B, K, J, 3)
        ax = axes[:, None]
        jac = np.empty(lever.shape[:2] + (3, lever.shape[2]))
        jac[:, :, 0] = ax[..., 1] * lever[..., 2] - ax[..., 2] * lever[..., 1]
        jac[:, :, 1] = ax[..., 2] * lever[..., 0] - ax[..., 0] * lever[..., 2]
        jac[:, :, 2] = ax[..., 0] * lever[..., 1] - ax[..., 1] * lever[..., 0]
        return jac * self._ancestors[bodies][None, :, None, :]

    def keypoints(self, q: np.ndarray) -> np.ndarray:
        """(B, 21, 3) metres in the palm frame; NaN where the robot has no counterpart."""
        out = np.full((q.shape[0], 21, 3), np.nan)
        have = self.has_point
        out[:, have] = self.points(q, self.point_body[have], self.point_offset[have])[0]
        return out

    def body_origins(self, q: np.ndarray) -> np.ndarray:
        """(B, nb, 3) body origins in the palm frame (for drawing the robot's own links)."""
        return self.forward(q)[1]


def positions(fk: tuple[np.ndarray, ...], bodies: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(B, K, 3) points fixed to bodies (K,) at offsets (K, 3), from ``RobotHand.forward``'s frames."""
    rot, pos = fk[0], fk[1]
    return pos[:, bodies] + (rot[:, bodies] @ offsets[:, :, None])[..., 0]
