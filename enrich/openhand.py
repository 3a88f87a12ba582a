"""The project's open hand model: a MANO-layout hand built from published hand proportions (not MANO).

``python -m enrich.openhand`` writes ``models/open_hand_right.pkl`` and ``models/open_hand_left.pkl``. The files
are pickled dicts with MANO's keys and array shapes (only the vertex count differs), so ``smplx.MANO`` and
``enrich.handmodel`` run them through the same code as the real MANO files. Generation is deterministic: the same
numpy gives byte-identical files (fixed pickle protocol, fixed dtypes, no randomness).

Geometry (right hand, rest pose = MANO's flat hand), metres, MANO's axes:

- fingers point along -x (the wrist is at +x), the thumb side is +z, the back of the hand faces +y and the palm
  faces -y; the origin is the middle-finger MCP joint (MANO's template also has its origin near there);
- the left hand is the mirror image (x -> -x, face winding reversed), with the same vertex order.

Mesh: one closed tube per digit (rings of 8 vertices around each joint, one ring mid-segment, a rounded tip with
the fingertip vertex on the finger axis at the end, a buried cap at the base) and one closed palm slab (rings of 12
vertices). Each piece is closed and outward-wound; digits overlap the palm at the knuckles (no boolean union), so
"inside" means inside any piece.

Skinning: a vertex on a joint's ring is split 50/50 between the two bones meeting there; mid-segment, tip and palm
vertices follow one bone. No pose correctives: ``posedirs`` is all zeros (stored as int8, the values are exact).
The joint regressor averages each joint's ring, and every ring is centred on its joint for any shape, so
``J_regressor @ (v_template + shapedirs @ betas)`` reproduces the joints of that shape exactly.

Proportions (adult, sexes pooled, rounded typical values, not transcribed from tables): joint-to-joint segment
lengths are in the phalanx proportions reported by Buryanov & Kotiuk (2010), "Proportions of hand segments",
Int. J. Morphol. 28(3):755-758; hand length (wrist joint to middle fingertip, 0.185 m) and breadth at the metacarpal
heads (~0.084 m) are near the pooled means of the U.S. Army hand survey, Greiner (1991), "Hand anthropometry of
U.S. Army personnel", Natick TR-92/011. Finger and palm widths are typical adult values. This is a plausible
average hand, not a statistical model.

Shape space (10 betas in MANO's layout; each is a linear displacement, scaled so beta ~ N(0, 1) spans a plausible
adult population; spreads are approximate):

0. overall size: every length x 6 % (hand length SD ~ 5 % within a sex, ~ 6 % pooling both; Greiner 1991)
1. palm breadth: lateral (z) palm and knuckle spacing x 4 % (breadth variation left after size)
2. palm length: proximal-distal (x) palm dimensions x 3 %
3. finger length: index to little finger phalanges x 3.5 %
4. thumb length: thumb segments x 5 %
5. digit thickness: finger and thumb radii x 6 %
6. palm thickness: x 7 %
7. index-to-ring ratio (2D:4D): index +2.5 %, ring -2.5 % (2D:4D SD ~ 0.03, Manning et al. 1998)
8. little-finger length: x 5 %
9. thumb base position: the CMC joint 3 mm distal and 1.5 mm lateral
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enrich.constants import N_BETAS
from enrich.constants import N_MANO_JOINTS as N_JOINTS

MODEL_NAME = "enrich-open-hand"
MODEL_VERSION = 1
PICKLE_PROTOCOL = 2  # what the official MANO files use; readable with encoding="latin1"
N_POSE_BASIS = 135  # 15 joints x 9 entries of (R - I), MANO's posedirs width
MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
FILE_NAMES: dict[str, str] = {"right": "open_hand_right.pkl", "left": "open_hand_left.pkl"}
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "models"

_RING_DIGIT = 8  # vertices around a digit
_RING_PALM = 12  # vertices around the palm
_FLAT_DIGIT = 0.88  # digit thickness (palm-to-back) / width
_PALM_BOX = 0.5  # superellipse exponent of the palm cross-section (1 = ellipse, smaller = boxier)
_PALM_OBLIQUE = -0.2  # the palm's distal edge runs proximally toward the little finger: dx = -0.2 dz
_CAP_ANGLE_RAD = np.deg2rad(50.0)  # second ring of the rounded fingertip


@dataclass(frozen=True)
class _Digit:
    name: str
    joints: tuple[int, int, int]  # MANO joint ids, proximal to distal
    base_mm: tuple[float, float, float]  # MCP centre (fingers) or CMC centre (thumb), x y z
    azimuth_deg: float  # direction in the palm plane, from -x toward +z (the thumb side)
    elevation_deg: float  # toward +y (the back of the hand); negative tilts toward the palm
    lengths_mm: tuple[float, float, float]  # joint to joint, joint to joint, last joint to the fingertip end
    radii_mm: tuple[float, float, float, float]  # half-width at the three joints and at the tip


# Tables in millimetres (converted to metres once, in _base_params), digits in MANO joint order. The thumb's CMC
# sits 10 mm palmar of the knuckle plane, as in a real hand: handmodel.py tells right from left by that offset.
_DIGITS: tuple[_Digit, ...] = (
    # name, MANO joints, base x y z, azimuth, elevation, segment lengths, radii
    _Digit("index", (1, 2, 3), (3, 0, 25), 5.0, 0.0, (41, 24, 20), (10.0, 9.3, 8.2, 7.4)),
    _Digit("middle", (4, 5, 6), (0, 2, 0), 0.0, 0.0, (46, 29, 22), (10.2, 9.7, 8.5, 7.7)),
    _Digit("pinky", (7, 8, 9), (16, -3, -38), -9.0, 0.0, (33, 19, 19), (8.6, 8.0, 7.1, 6.5)),
    _Digit("ring", (10, 11, 12), (6, 0, -19), -4.0, 0.0, (43, 27, 21), (9.6, 9.0, 8.0, 7.2)),
    _Digit("thumb", (13, 14, 15), (64, -10, 22), 42.0, -3.0, (44, 31, 26), (13.5, 11.2, 10.0, 8.8)),
)
TIP_ORDER: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")  # order of tip_vertex_ids

_WRIST_MM = (88.0, 0.0, 0.0)  # wrist joint to middle MCP 88 mm + middle finger 97 mm = hand length 185 mm
# Palm cross-sections from the wrist end to the knuckles, mm:
# (name, half-width along z, half-thickness along y, centre y, centre z); the wrist ring is centred on the wrist.
_PALM: tuple[tuple[str, float, float, float, float], ...] = (
    ("stub", 28, 12, 0, 0),  # _STUB_MM proximal of the wrist joint
    ("wrist", 29, 13, 0, 0),
    ("third", 36, 15, -3, -2),
    ("two_thirds", 40, 15, -3, -4),
    ("knuckles", 42, 13, -2, -6),  # at the middle MCP: breadth 84 mm
    ("rim", 39, 10, -1, -6),  # _RIM_MM distal of it
)
_STUB_MM = 10.0
_RIM_MM = 8.0
_MM = 1e-3


def _base_params() -> dict[str, float]:
    """Every quantity the geometry depends on, in metres; the geometry is linear in these."""
    p: dict[str, float] = {}
    p["wrist.x"], p["wrist.y"], p["wrist.z"] = (c * _MM for c in _WRIST_MM)
    p["palm.stub"], p["palm.rim"] = _STUB_MM * _MM, _RIM_MM * _MM
    for name, half_w, half_t, cy, cz in _PALM:
        p[f"palm.{name}.half_width"], p[f"palm.{name}.half_thick"] = half_w * _MM, half_t * _MM
        if name != "wrist":
            p[f"palm.{name}.centre_y"], p[f"palm.{name}.centre_z"] = cy * _MM, cz * _MM
    for d in _DIGITS:
        p[f"{d.name}.base_x"], p[f"{d.name}.base_y"], p[f"{d.name}.base_z"] = (c * _MM for c in d.base_mm)
        for i, length in enumerate(d.lengths_mm):
            p[f"{d.name}.len{i}"] = length * _MM
        for i, radius in enumerate(d.radii_mm):
            p[f"{d.name}.r{i}"] = radius * _MM
    return p


def _scaled(p0: Mapping[str, float], fraction: float, keep: Callable[[str], bool]) -> dict[str, float]:
    """Displacement multiplying the selected parameters by (1 + fraction)."""
    return {k: fraction * v for k, v in p0.items() if keep(k)}


def _shape_deltas(p0: Mapping[str, float]) -> list[dict[str, float]]:
    """Parameter displacement per unit beta, components 0..9 (see the module docstring)."""
    fingers = ("index", "middle", "ring", "pinky")
    palm_x = {"wrist.x", "palm.stub", "palm.rim"} | {f"{d.name}.base_x" for d in _DIGITS}

    def is_len(k: str, names: tuple[str, ...]) -> bool:
        return k.split(".")[0] in names and ".len" in k

    deltas = [
        _scaled(p0, 0.060, lambda k: True),
        _scaled(p0, 0.040, lambda k: k.endswith((".base_z", ".half_width", ".centre_z"))),
        _scaled(p0, 0.030, lambda k: k in palm_x),
        _scaled(p0, 0.035, lambda k: is_len(k, fingers)),
        _scaled(p0, 0.050, lambda k: is_len(k, ("thumb",))),
        _scaled(p0, 0.060, lambda k: k.split(".")[0] in fingers + ("thumb",) and ".r" in k),
        _scaled(p0, 0.070, lambda k: k.endswith(".half_thick")),
        {**_scaled(p0, 0.025, lambda k: is_len(k, ("index",))), **_scaled(p0, -0.025, lambda k: is_len(k, ("ring",)))},
        _scaled(p0, 0.050, lambda k: is_len(k, ("pinky",))),
        {"thumb.base_x": -0.003, "thumb.base_z": 0.0015},
    ]
    assert len(deltas) == N_BETAS
    return deltas


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _digit_frame(d: _Digit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(axis, e1, e2): the digit's pointing direction, then e1 = e2 x axis (thumb side) and e2 (back of hand)."""
    az, el = np.deg2rad(d.azimuth_deg), np.deg2rad(d.elevation_deg)
    axis = np.array([-np.cos(el) * np.cos(az), np.sin(el), np.cos(el) * np.sin(az)])
    up = np.array([0.0, 1.0, 0.0])
    e2 = _unit(up - up.dot(axis) * axis)
    return axis, np.cross(e2, axis), e2


def _ring_offsets(n: int, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """(n,) multipliers of e1 and e2 around a ring; each sums to zero, so a ring's mean is its centre."""
    theta = 2.0 * np.pi * np.arange(n) / n
    c, s = np.cos(theta), np.sin(theta)
    return np.sign(c) * np.abs(c) ** exponent, np.sign(s) * np.abs(s) ** exponent


@dataclass
class _Mesh:
    vertices: np.ndarray  # (V, 3) float64
    joints: np.ndarray  # (16, 3) float64
    faces: np.ndarray  # (F, 3) int
    weights: np.ndarray  # (V, 16)
    j_regressor: np.ndarray  # (16, V)
    tip_vertex_ids: tuple[int, ...]  # in TIP_ORDER


class _Builder:
    """Appends closed tubes (rings + end caps) and records faces, skinning weights and joint rings."""

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []
        self.faces: list[tuple[int, int, int]] = []
        self.weights: list[dict[int, float]] = []
        self.joint_rings: dict[int, list[int]] = {}
        self.count = 0

    def add(self, pts: np.ndarray, weights: dict[int, float], joint: int | None = None) -> list[int]:
        ids = list(range(self.count, self.count + len(pts)))
        self.points.extend(pts)
        self.weights.extend([weights] * len(pts))
        self.count += len(pts)
        if joint is not None:
            self.joint_rings[joint] = ids
        return ids

    def tube(self, rings: list[list[int]], start_cap: int, end_cap: int) -> None:
        """Faces of a closed tube. Rings run along the tube axis; their angle increases from e1 toward e2 with
        (e1, e2, axis) right-handed, so this winding is counter-clockwise seen from outside."""
        first, last = rings[0], rings[-1]
        n = len(first)
        for a, b in zip(rings[:-1], rings[1:], strict=True):
            for i in range(n):
                j = (i + 1) % n
                self.faces += [(a[i], a[j], b[i]), (a[j], b[j], b[i])]
        for i in range(n):
            j = (i + 1) % n
            self.faces += [(first[j], first[i], start_cap), (last[i], last[j], end_cap)]


def _build(p: Mapping[str, float]) -> _Mesh:
    """The right hand for parameters ``p``; vertices and joints are linear in ``p``, the topology is fixed."""
    b = _Builder()
    joints = np.zeros((N_JOINTS, 3))
    wrist = np.array([p["wrist.x"], p["wrist.y"], p["wrist.z"]])
    joints[0] = wrist

    # Palm: a tube along -x from a short stub behind the wrist to a rim just past the knuckles.
    # Rings run from +x to -x; (e1, e2, -x) is right-handed, as tube() expects.
    e1, e2 = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    knuckle_x = p["middle.base_x"]
    station_x = {
        "stub": wrist[0] + p["palm.stub"],
        "wrist": wrist[0],
        "third": wrist[0] + (knuckle_x - wrist[0]) / 3.0,
        "two_thirds": wrist[0] + 2.0 * (knuckle_x - wrist[0]) / 3.0,
        "knuckles": knuckle_x,
        "rim": knuckle_x - p["palm.rim"],
    }
    cw, sw = _ring_offsets(_RING_PALM, _PALM_BOX)
    palm_rings: list[list[int]] = []
    for name, *_ in _PALM:
        if name == "wrist":
            centre = wrist
        else:
            centre = np.array([station_x[name], p[f"palm.{name}.centre_y"], p[f"palm.{name}.centre_z"]])
        pts = centre + np.outer(cw * p[f"palm.{name}.half_width"], e1) + np.outer(sw * p[f"palm.{name}.half_thick"], e2)
        if name in ("knuckles", "rim"):  # slanted distal edge: the little-finger side ends more proximally
            pts[:, 0] += _PALM_OBLIQUE * (pts[:, 2] - centre[2])
        palm_rings.append(b.add(pts, {0: 1.0}, joint=0 if name == "wrist" else None))
    first_c = np.array([station_x["stub"] + 0.5 * p["palm.stub"], p["palm.stub.centre_y"], p["palm.stub.centre_z"]])
    last_c = np.array([station_x["rim"] - 0.5 * p["palm.rim"], p["palm.rim.centre_y"], p["palm.rim.centre_z"]])
    start = b.add(first_c[None], {0: 1.0})[0]
    end = b.add(last_c[None], {0: 1.0})[0]
    b.tube(palm_rings, start, end)

    # Digits: rings at the three joints, mid-segment rings, a rounded tip, a cap buried in the palm.
    cd, sd = _ring_offsets(_RING_DIGIT, 1.0)
    tips: dict[str, int] = {}
    for d in _DIGITS:
        axis, f1, f2 = _digit_frame(d)
        base = np.array([p[f"{d.name}.base_x"], p[f"{d.name}.base_y"], p[f"{d.name}.base_z"]])
        l0, l1, l2 = (p[f"{d.name}.len{i}"] for i in range(3))
        r0, r1, r2, r3 = (p[f"{d.name}.r{i}"] for i in range(4))
        ja, jb, jc = d.joints
        parent = MANO_PARENTS[ja]
        cap_s = l0 + l1 + l2 - r3  # centre of the fingertip's round cap
        # (arc position along the axis, half-width, skinning weights, joint whose ring this is)
        stations: list[tuple[float, float, dict[int, float], int | None]] = [
            (-0.8 * r0, 0.85 * r0, {parent: 1.0}, None),
            (0.0, r0, {parent: 0.5, ja: 0.5}, ja),
            (0.5 * l0, 0.5 * (r0 + r1), {ja: 1.0}, None),
            (l0, r1, {ja: 0.5, jb: 0.5}, jb),
            (l0 + 0.5 * l1, 0.5 * (r1 + r2), {jb: 1.0}, None),
            (l0 + l1, r2, {jb: 0.5, jc: 0.5}, jc),
            (0.5 * (l0 + l1 + cap_s), 0.5 * (r2 + r3), {jc: 1.0}, None),
            (cap_s, r3, {jc: 1.0}, None),
            (cap_s + r3 * np.sin(_CAP_ANGLE_RAD), r3 * np.cos(_CAP_ANGLE_RAD), {jc: 1.0}, None),
        ]
        rings = []
        for s, half_w, w, joint in stations:
            centre = base + s * axis
            pts = centre + np.outer(cd * half_w, f1) + np.outer(sd * _FLAT_DIGIT * half_w, f2)
            rings.append(b.add(pts, w, joint))
            if joint is not None:
                joints[joint] = centre
        start = b.add((base - 1.3 * r0 * axis)[None], {parent: 1.0})[0]
        tip = b.add((base + (l0 + l1 + l2) * axis)[None], {jc: 1.0})[0]
        b.tube(rings, start, tip)
        tips[d.name] = tip

    n = b.count
    weights = np.zeros((n, N_JOINTS))
    for i, w in enumerate(b.weights):
        for j, value in w.items():
            weights[i, j] = value
    j_regressor = np.zeros((N_JOINTS, n))
    for j, ids in b.joint_rings.items():
        j_regressor[j, ids] = 1.0 / len(ids)
    return _Mesh(
        vertices=np.array(b.points),
        joints=joints,
        faces=np.array(b.faces, dtype=np.int64),
        weights=weights,
        j_regressor=j_regressor,
        tip_vertex_ids=tuple(tips[name] for name in TIP_ORDER),
    )


def _params_for(betas: np.ndarray) -> dict[str, float]:
    p0 = _base_params()
    p = dict(p0)
    for beta, delta in zip(np.asarray(betas, dtype=np.float64), _shape_deltas(p0), strict=True):
        for k, v in delta.items():
            p[k] += float(beta) * v
    return p


def shaped_hand(betas: np.ndarray, side: str = "right") -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and joints (16, 3), metres, built directly from the proportions for ``betas`` (10,).

    The reference the shipped files are checked against: ``v_template + shapedirs @ betas`` must equal these
    vertices and ``J_regressor`` must map them to these joints.
    """
    mesh = _build(_params_for(betas))
    mirror = _mirror(side)
    return mesh.vertices * mirror, mesh.joints * mirror


def _mirror(side: str) -> np.ndarray:
    if side not in FILE_NAMES:
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    return np.array([-1.0, 1.0, 1.0]) if side == "left" else np.ones(3)


def build_model(side: str) -> dict[str, object]:
    """The open model of one side as a dict in MANO's pickle layout (plus our own keys)."""
    mirror = _mirror(side)
    p0 = _base_params()
    rest = _build(p0)
    shapedirs = np.zeros((len(rest.vertices), 3, N_BETAS))
    for k, delta in enumerate(_shape_deltas(p0)):
        moved = _build({**p0, **{name: p0[name] + v for name, v in delta.items()}})
        shapedirs[:, :, k] = moved.vertices - rest.vertices  # exact: the geometry is linear in the parameters
    faces = rest.faces if side == "right" else rest.faces[:, ::-1]  # mirroring flips the winding back
    kintree = np.array([MANO_PARENTS, range(N_JOINTS)], dtype=np.int64)
    return {
        "v_template": (rest.vertices * mirror).astype(np.float32),
        "f": np.ascontiguousarray(faces, dtype=np.int32),
        "J_regressor": rest.j_regressor.astype(np.float32),
        "weights": rest.weights.astype(np.float32),
        "kintree_table": kintree,
        "J": (rest.joints * mirror).astype(np.float32),
        "shapedirs": (shapedirs * mirror[None, :, None]).astype(np.float32),
        "posedirs": np.zeros((len(rest.vertices), 3, N_POSE_BASIS), dtype=np.int8),
        "hands_components": np.eye(45, dtype=np.float32),
        "hands_mean": np.zeros(45, dtype=np.float32),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "tip_vertex_ids": np.array(rest.tip_vertex_ids, dtype=np.int64),
        "model_name": MODEL_NAME,
        "version": MODEL_VERSION,
        "units": "m",
        "notes": (
            "enrich open hand model (not MANO), MANO file layout. Rest pose: flat hand, fingers along -x, "
            "back of hand +y; right-hand thumb toward +z. posedirs are zeros (no pose correctives). "
            "Regenerate with: python -m enrich.openhand"
        ),
    }


def write_models(out_dir: Path = DEFAULT_DIR) -> dict[str, Path]:
    """Write both sides into ``out_dir``; returns {side: path}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for side, name in FILE_NAMES.items():
        path = out_dir / name
        path.write_bytes(pickle.dumps(build_model(side), protocol=PICKLE_PROTOCOL))
        paths[side] = path
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m enrich.openhand", description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_DIR, help="where to write (default: %(default)s)")
    args = parser.parse_args(argv)
    for side, path in write_models(args.out_dir).items():
        data = pickle.loads(path.read_bytes())
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(
            f"{side}: {path} ({path.stat().st_size / 1024:.0f} KiB, {len(data['v_template'])} vertices, "
            f"{len(data['f'])} faces) sha256 {digest}"
        )


if __name__ == "__main__":
    main()
