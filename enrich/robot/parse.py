"""Robot hand models read from MJCF or URDF files into :class:`~enrich.robot.model.RobotHand` (plain XML parsing).

MJCF: the tree below the spec's root body, hinge joints with their default classes, capsules as collision
spheres, fixed tendons with a near-zero range as joint couplings. URDF: revolute joints, spheres at the keypoints.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from enrich.robot.model import FINGER_KEYPOINTS, FINGERS, TIPS, Body, Joint, KeypointSpec, RobotHand, RobotModelError

COUPLING_MAX_RANGE = 0.01  # a fixed tendon whose allowed range is narrower than this couples its joints


def _floats(text: str | None, n: int, default: tuple[float, ...]) -> np.ndarray:
    if text is None:
        return np.array(default, float)
    try:
        vals = np.array([float(v) for v in text.split()], float)
    except ValueError:
        vals = np.zeros(0)  # not numbers: said below, in one line
    if vals.size != n:
        raise RobotModelError(f"expected {n} numbers, got {text!r}")
    return vals


def _mjcf_rotation(el: ET.Element, degrees: bool, eulerseq: str) -> np.ndarray:
    """Orientation of an MJCF element (quat, euler, axisangle, xyaxes, zaxis) as a matrix."""
    if el.get("quat") is not None:
        w, x, y, z = _floats(el.get("quat"), 4, (1, 0, 0, 0))
        return Rotation.from_quat([x, y, z, w]).as_matrix()
    if el.get("euler") is not None:
        # MuJoCo: lowercase = axes that move with the frame (scipy's uppercase, intrinsic)
        seq = "".join(c.upper() if c.islower() else c.lower() for c in eulerseq)
        return Rotation.from_euler(seq, _floats(el.get("euler"), 3, (0, 0, 0)), degrees=degrees).as_matrix()
    if el.get("axisangle") is not None:
        v = _floats(el.get("axisangle"), 4, (0, 0, 1, 0))
        angle = np.deg2rad(v[3]) if degrees else v[3]
        return Rotation.from_rotvec(v[:3] / np.linalg.norm(v[:3]) * angle).as_matrix()
    if el.get("xyaxes") is not None:
        v = _floats(el.get("xyaxes"), 6, (1, 0, 0, 0, 1, 0))
        x = v[:3] / np.linalg.norm(v[:3])
        y = v[3:] - x * (x @ v[3:])
        y /= np.linalg.norm(y)
        return np.stack([x, y, np.cross(x, y)], axis=1)
    if el.get("zaxis") is not None:
        z = _floats(el.get("zaxis"), 3, (0, 0, 1))
        z = z / np.linalg.norm(z)
        axis = np.cross([0, 0, 1], z)
        angle = np.arctan2(np.linalg.norm(axis), z[2])
        if np.linalg.norm(axis) < 1e-12:
            return np.eye(3) if z[2] > 0 else Rotation.from_rotvec([np.pi, 0, 0]).as_matrix()
        return Rotation.from_rotvec(axis / np.linalg.norm(axis) * angle).as_matrix()
    return np.eye(3)


def _read_mjcf(path: Path) -> ET.Element:
    """The MJCF tree with <include> files spliced in."""
    root = ET.parse(path).getroot()
    for parent in list(root.iter()):
        for i, child in enumerate(list(parent)):
            if child.tag == "include":
                inc = _read_mjcf(path.parent / child.get("file", ""))
                parent.remove(child)
                for k, sub in enumerate(list(inc)):
                    parent.insert(i + k, sub)
    return root


def _joint_defaults(root: ET.Element) -> dict[str, dict[str, str]]:
    """Joint attributes per default class (flattened through nested classes)."""
    out: dict[str, dict[str, str]] = {}

    def walk(el: ET.Element, inherited: dict[str, str]) -> None:
        mine = dict(inherited)
        joint = el.find("joint")
        if joint is not None:
            mine.update(joint.attrib)
        out[el.get("class", "main")] = mine
        for sub in el.findall("default"):
            walk(sub, mine)

    for top in root.findall("default"):
        walk(top, {})
    return out


def _sha256(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def load_mjcf(path: str | Path, spec: KeypointSpec, name: str | None = None) -> RobotHand:
    """A robot hand from an MJCF file: the tree below ``spec.root_body``, its hinge joints and capsules."""
    path = Path(path)
    try:
        root = _read_mjcf(path)
    except (OSError, ET.ParseError) as e:
        raise RobotModelError(f"robot model {path}: cannot read ({e})") from e
    comp = root.find("compiler")
    degrees = comp is None or comp.get("angle", "degree") == "degree"
    eulerseq = comp.get("eulerseq", "xyz") if comp is not None else "xyz"
    start = next((b for b in root.iter("body") if b.get("name") == spec.root_body), None)
    if start is None:
        raise RobotModelError(f"robot model {path}: no body named {spec.root_body!r}")
    defaults = _joint_defaults(root)
    bodies: list[Body] = []
    joints: list[Joint] = []
    frames: dict[str, tuple[int, np.ndarray]] = {}  # body or site name -> (body, offset)
    capsules: list[tuple[int, np.ndarray, np.ndarray, float]] = []  # body, end a, end b, radius

    def walk(el: ET.Element, parent: int, cls: str) -> None:
        b = len(bodies)
        is_root = parent < 0
        pos = np.zeros(3) if is_root else _floats(el.get("pos"), 3, (0, 0, 0))
        rot = np.eye(3) if is_root else _mjcf_rotation(el, degrees, eulerseq)
        body = Body(el.get("name", f"body{b}"), parent, pos, rot)
        bodies.append(body)
        frames[body.name] = (b, np.zeros(3))
        cls = el.get("childclass", cls)
        for child in el:
            if child.tag == "joint" and not is_root:
                _add_joint(child, b, defaults.get(child.get("class", cls), defaults.get("main", {})), degrees)
            elif child.tag == "site" and child.get("name"):
                frames[child.get("name")] = (b, _floats(child.get("pos"), 3, (0, 0, 0)))
            elif child.tag == "geom" and child.get("type") == "capsule":
                capsules.append((b, *_capsule_ends(child, degrees, eulerseq)))
        for child in el.findall("body"):
            walk(child, b, cls)

    def _add_joint(el: ET.Element, b: int, dflt: dict[str, str], deg: bool) -> None:
        attrs = {**dflt, **el.attrib}
        kind = attrs.get("type", "hinge")
        if kind != "hinge":
            raise RobotModelError(f"robot model {path}: joint {attrs.get('name')!r} is {kind}; only hinges work")
        lo, hi = _floats(attrs.get("range"), 2, (-np.pi, np.pi))
        if deg:
            lo, hi = np.deg2rad(lo), np.deg2rad(hi)
        axis = _floats(attrs.get("axis"), 3, (0, 0, 1))
        joints.append(
            Joint(
                attrs.get("name", f"joint{len(joints)}"),
                b,
                axis / np.linalg.norm(axis),
                _floats(attrs.get("pos"), 3, (0, 0, 0)),
                float(lo),
                float(hi),
            )
        )
        bodies[b].joints.append(len(joints) - 1)

    walk(start, -1, start.get("childclass", "main"))
    coupling, value = _couplings(root, [j.name for j in joints])
    files = [path] + sorted({path.parent / f.get("file", "") for f in root.iter("include")}) + _mesh_files(root, path)
    return _assemble(
        name or path.stem,
        path,
        _sha256([f for f in files if f.is_file()]),
        bodies,
        joints,
        frames,
        capsules,
        spec,
        coupling,
        value,
    )


def _capsule_ends(geom: ET.Element, degrees: bool, eulerseq: str) -> tuple[np.ndarray, np.ndarray, float]:
    size = [float(v) for v in geom.get("size", "0.01").split()]
    if geom.get("fromto") is not None:
        v = _floats(geom.get("fromto"), 6, (0,) * 6)
        return v[:3], v[3:], size[0]
    centre = _floats(geom.get("pos"), 3, (0, 0, 0))
    half = _mjcf_rotation(geom, degrees, eulerseq)[:, 2] * (size[1] if len(size) > 1 else 0.0)
    return centre - half, centre + half, size[0]


def _couplings(root: ET.Element, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rows c, values m with c . q = m, from fixed tendons over two joints with a near-zero range."""
    rows, vals = [], []
    for ten in root.iter("fixed"):
        rng = _floats(ten.get("range"), 2, (-np.inf, np.inf))
        parts = ten.findall("joint")
        if len(parts) != 2 or not rng[1] - rng[0] < COUPLING_MAX_RANGE:
            continue
        if not all(p.get("joint") in names for p in parts):
            continue
        row = np.zeros(len(names))
        for p in parts:
            row[names.index(p.get("joint"))] = float(p.get("coef", "1"))
        scale = np.abs(row).max()
        rows.append(row / scale)
        vals.append(0.5 * (rng[0] + rng[1]) / scale)
    return np.array(rows).reshape(-1, len(names)), np.array(vals)


def _mesh_files(root: ET.Element, path: Path) -> list[Path]:
    comp = root.find("compiler")
    meshdir = path.parent / (comp.get("meshdir", "") if comp is not None else "")
    return sorted({meshdir / m.get("file") for m in root.iter("mesh") if m.get("file")})


def load_urdf(
    path: str | Path, spec: KeypointSpec, name: str | None = None, sphere_radius_m: float = 0.008
) -> RobotHand:
    """A robot hand from a URDF: revolute/continuous joints below ``spec.root_body`` (a link name).

    URDF collision shapes are not read: the fingers get spheres of ``sphere_radius_m`` at their keypoints.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise RobotModelError(f"robot model {path}: cannot read ({e})") from e
    children: dict[str, list[ET.Element]] = {}
    for j in root.findall("joint"):
        children.setdefault(j.find("parent").get("link"), []).append(j)
    if spec.root_body not in {link.get("name") for link in root.findall("link")}:
        raise RobotModelError(f"robot model {path}: no link named {spec.root_body!r}")
    bodies: list[Body] = [Body(spec.root_body, -1, np.zeros(3), np.eye(3))]
    joints: list[Joint] = []
    frames: dict[str, tuple[int, np.ndarray]] = {spec.root_body: (0, np.zeros(3))}
    stack = [(spec.root_body, 0)]
    while stack:
        link, b_parent = stack.pop()
        for j in children.get(link, []):
            origin = j.find("origin")
            xyz = _floats(origin.get("xyz") if origin is not None else None, 3, (0, 0, 0))
            rpy = _floats(origin.get("rpy") if origin is not None else None, 3, (0, 0, 0))
            child = j.find("child").get("link")
            b = len(bodies)
            bodies.append(Body(child, b_parent, xyz, Rotation.from_euler("xyz", rpy).as_matrix()))
            frames[child] = (b, np.zeros(3))
            kind = j.get("type")
            if kind in ("revolute", "continuous"):
                limit = j.find("limit")
                lo = float(limit.get("lower", -np.pi)) if limit is not None and kind == "revolute" else -np.pi
                hi = float(limit.get("upper", np.pi)) if limit is not None and kind == "revolute" else np.pi
                axis = _floats(j.find("axis").get("xyz") if j.find("axis") is not None else None, 3, (1, 0, 0))
                joints.append(Joint(j.get("name"), b, axis / np.linalg.norm(axis), np.zeros(3), lo, hi))
                bodies[b].joints.append(len(joints) - 1)
            elif kind != "fixed":
                raise RobotModelError(f"robot model {path}: joint {j.get('name')!r} is {kind}; only revolute work")
            stack.append((child, b))
    hand = _assemble(
        name or path.stem,
        path,
        _sha256([path]),
        bodies,
        joints,
        frames,
        [],
        spec,
        np.zeros((0, len(joints))),
        np.zeros(0),
    )
    return _keypoint_spheres(hand, sphere_radius_m)


def _assemble(
    name: str, path: Path, sha: str, bodies: list[Body], joints: list[Joint],
    frames: dict[str, tuple[int, np.ndarray]], capsules: list[tuple[int, np.ndarray, np.ndarray, float]],
    spec: KeypointSpec, coupling: np.ndarray, value: np.ndarray,
) -> RobotHand:  # fmt: skip
    point_body = np.full(21, -1)
    point_offset = np.zeros((21, 3))
    for k, frame in spec.points.items():
        if frame not in frames:
            raise RobotModelError(f"robot model {path}: keypoint {k} names {frame!r}, which is not a body or site")
        point_body[k], off = frames[frame]
        point_offset[k] = off + np.array(spec.offsets_m.get(k, (0.0, 0.0, 0.0)))
    missing = [k for k in (0, 5, 9, 13) if point_body[k] < 0]
    if missing:
        raise RobotModelError(f"robot model {path}: the keypoint spec needs keypoints {missing} (wrist and MCPs)")
    hand = RobotHand(
        name,
        str(path),
        sha,
        bodies,
        joints,
        point_body,
        point_offset,
        np.zeros(0, int),
        np.zeros((0, 3)),
        np.zeros(0),
        np.zeros(0, int),
        np.zeros(0, bool),
        coupling,
        value,
    )
    finger_of, tip_body = _finger_of_bodies(hand)
    if spec.link_radius_m is not None:
        spheres = _midline_spheres(hand, spec.link_radius_m)
    else:
        spheres = [(b, c, r) for b, a, e, r in capsules if finger_of[b] >= 0 for c in (a, 0.5 * (a + e), e)]
    sb = np.array([b for b, _, _ in spheres], int)
    hand.sphere_body, hand.sphere_offset = sb, np.array([c for _, c, _ in spheres]).reshape(-1, 3)
    hand.sphere_radius_m, hand.sphere_finger = np.array([r for _, _, r in spheres]), finger_of[sb]
    hand.sphere_is_tip = np.array([tip_body[f] == b for f, b in zip(finger_of[sb], sb, strict=True)], bool)
    return hand


def _midline_spheres(hand: RobotHand, radius_m: float) -> list[tuple[int, np.ndarray, float]]:
    """Spheres of one radius along each finger's midline, keypoint to keypoint (base to tip), at most one
    diameter apart (a sphere of the same size reaches at most 2.7 mm past the surface between two), for
    models whose own collision shapes are boxes or meshes. Each sphere rides on the body, of those from the
    segment's proximal to its distal keypoint, in whose frame it moves least over random poses (LEAP's
    knuckle segment spans its spread joint)."""
    rng = np.random.default_rng(0)
    q = np.vstack([hand.rest_pose(), rng.uniform(hand.lower, hand.upper, (32, hand.dof))])
    rot, pos, _, _ = hand.forward(q)
    kp = hand.keypoints(q)
    out: list[tuple[int, np.ndarray, float]] = []
    for f in hand.fingers:
        ks = [k for k in FINGER_KEYPOINTS[f] if hand.point_body[k] >= 0]
        for i, (a, b) in enumerate(zip(ks[:-1], ks[1:], strict=True)):
            chain = _chain(hand, int(hand.point_body[a]), int(hand.point_body[b]))
            n = max(1, int(np.ceil(np.linalg.norm(kp[0, b] - kp[0, a]) / (2 * radius_m))))
            for s in np.linspace(0.0, 1.0, n + 1)[(1 if i else 0) :]:  # a joint's sphere once
                x = (1 - s) * kp[:, a] + s * kp[:, b]
                local = np.einsum("tcji,tcj->tci", rot[:, chain], x[:, None] - pos[:, chain])  # (T, C, 3)
                c = int(np.argmin(local.std(axis=0).max(axis=1)))
                out.append((chain[c], local[0, c], radius_m))
    return out


def _chain(hand: RobotHand, top: int, bottom: int) -> list[int]:
    """Bodies from ``bottom`` up to its ancestor ``top``, both included."""
    chain = [bottom]
    while chain[-1] != top and chain[-1] >= 0:
        chain.append(hand.bodies[chain[-1]].parent)
    return chain if chain[-1] == top else [bottom]


def _finger_of_bodies(hand: RobotHand) -> tuple[np.ndarray, dict[int, int]]:
    """Per body, the finger whose tip it carries alone (-1: palm or shared); and each finger's tip body."""
    carriers = np.zeros((len(hand.bodies), len(FINGERS)), bool)
    tip_body: dict[int, int] = {}
    for f, tip in enumerate(TIPS):
        b = int(hand.point_body[tip])
        if b < 0:
            continue
        tip_body[f] = b
        while b >= 0:
            carriers[b, f] = True
            b = hand.bodies[b].parent
    finger_of = np.where(carriers.sum(1) == 1, carriers.argmax(1), -1)
    return finger_of, tip_body


def _keypoint_spheres(hand: RobotHand, radius_m: float) -> RobotHand:
    finger_of, tip_body = _finger_of_bodies(hand)
    keep = [k for f in hand.fingers for k in FINGER_KEYPOINTS[f][1:] if hand.point_body[k] >= 0]
    hand.sphere_body = hand.point_body[keep]
    hand.sphere_offset = hand.point_offset[keep]
    hand.sphere_radius_m = np.full(len(keep), radius_m)
    hand.sphere_finger = finger_of[hand.sphere_body]
    hand.sphere_is_tip = np.array(
        [tip_body.get(int(f)) == b for f, b in zip(hand.sphere_finger, hand.sphere_body, strict=True)]
    )
    return hand
