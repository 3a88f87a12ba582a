"""Accuracy, smoothness, image consistency and speed of the MANO lift (open hand model unless --hand-model).

Every figure is measured for the current defaults and for the landed baseline (torch L-BFGS, 60 iterations,
the model's own joints as keypoints, no outlier screening) in the same run, on the same detections.

1. Image fit on the 13 SSv2 clips of ../shared/data/ssv2_something_else: per-joint median distance between the
   projected fitted keypoints and MediaPipe's detections; fitted frames outside 0.1-2 m; unexplained depth jumps
   (consecutive observed frames whose wrist depth changes by > 35 % while the palm's pixel size changes < 10 %).
2. Real 3D accuracy: hand-graph-cnn's 20 real images and InterHand2.6M's 4 (each a one-frame clip; the hand
   box is the tight box of the projected ground truth, as Something-Else annotators draw it; true intrinsics).
   PA-MPJPE of the lifted joints against MediaPipe's own world landmarks, measured on the same detections, and
   per joint. The keypoint corrections are calibrated on these 20 images and the 13 clips:
   benchmarks/calibrate_keypoints.py reports the leave-one-out figures.
3. Temporal: synthetic sequences from the hand model through the camera, (a) with Gaussian 2D and world noise at
   the level measured on the real clips, (b) with real detection errors: MediaPipe's residual sequences from the
   real clips (temporally correlated, with its outliers) added to the synthetic projections. Track fit against an
   independent per-frame fit.
4. Reliability flag: PA-MPJPE (hand-graph-cnn) and per-frame error (sequences with real errors) of frames flagged
   reliable against the rest.
5. Speed, one core: ms per hand-frame on tracks of >= 20 frames, and per one-frame track (the 20 images).

    python -m benchmarks.bench_lift [--append] [--hand-model DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.common import median, pin_one_core, record_results, require_shared_data
from enrich.constants import HAND_SLOT
from enrich.handmodel import find_hand_model_files, load_hand_model
from enrich.inputs import discover_clips, load_boxes, read_clip
from enrich.lift import HandFitter, JointModel, LiftConfig, fit_track, intrinsics, joint_axes, lift_clip
from enrich.records import Clip, ClipBoxes, ClipHands, HandTrack, ManoTrack
from enrich.track2d import HandModels, Track2DConfig, track_clip

# the landed lift: torch L-BFGS, the model's own joints, no outlier screening
BASELINE = LiftConfig(solver="lbfgs", calibrated_keypoints=False, reject_outliers=False)

# InterHand2.6M per hand: thumb..pinky, each tip -> base, then the wrist; MediaPipe: wrist, then base -> tip.
MP_FROM_INTERHAND = np.array([20] + [4 * f + 3 - k for f in range(5) for k in range(4)])


def pa_mpjpe_mm(pred_m: np.ndarray, gt_m: np.ndarray) -> float:
    """Mean joint error after the best similarity transform (Umeyama), in mm."""
    p, g = pred_m - pred_m.mean(0), gt_m - gt_m.mean(0)
    u, s, vt = np.linalg.svd(g.T @ p)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1, 1, d]) @ vt
    scale = (s * [1, 1, d]).sum() / (p**2).sum()
    return float(1000 * np.linalg.norm(scale * p @ rot.T - g, axis=1).mean())


class Lifter:
    def __init__(self, source: str | None, config: LiftConfig) -> None:
        self.fitter = HandFitter(source, config)
        self.models = self.fitter.joint_models
        self.name = load_hand_model(find_hand_model_files(source)["right"], "right").info.name
        self.config = config

    def __call__(
        self, track: HandTrack, K: np.ndarray, temporal: bool = True, frame_size: tuple[int, int] = (427, 240)
    ) -> ManoTrack | None:
        return fit_track(track, self.models[track.side], K, self.config, temporal=temporal, frame_size=frame_size)

    def clip(self, tracks: ClipHands, K: np.ndarray | None = None) -> ClipHands:
        """The pipeline's lift of a clip (a lone, uncertain hand may change side); ``K`` None: as a user runs it."""
        return lift_clip(tracks, self.fitter, K)


def one_frame(image_rgb: np.ndarray, box: np.ndarray, models: HandModels) -> HandTrack | None:
    clip = Clip("gt", image_rgb[None], 1.0, "")
    boxes = ClipBoxes("gt", np.zeros(1, np.int32), np.full(1, HAND_SLOT, np.int16), box[None].astype(np.float32))
    hands = track_clip(clip, boxes, models, Track2DConfig()).hands
    return max(hands.values(), key=lambda h: float(h.presence[0]), default=None)


def tight_box(gt_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    uv = gt_m[:, :2] / gt_m[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
    return np.concatenate([uv.min(0), uv.max(0)])


def _score(
    name: str, image: np.ndarray, gt_m: np.ndarray, K: np.ndarray, models: HandModels, lift: Lifter, base: Lifter
) -> dict:
    """One image as a one-frame clip: the lift as a user runs it (no camera: the lift's default or estimate), the
    baseline the same way, and the lift with the image's true camera (reference)."""
    track = one_frame(image, tight_box(gt_m, K), models)
    if track is None:
        return {"name": name, "found": False}
    out: dict = {"name": name, "found": True}
    tracks = ClipHands("gt", 1, image.shape[1], image.shape[0], 1.0, {track.side: track})
    for key, lifter, camera in (("lift", lift, None), ("base", base, None), ("true", lift, K)):
        t0 = time.perf_counter()
        lifted = lifter.clip(tracks, camera)
        out[f"{key}_ms"] = 1000 * (time.perf_counter() - t0)
        fitted = next(iter(lifted.hands.values()))
        kp = fitted.fit.joints3d[0].astype(np.float64)
        out[f"{key}_mm"], out[f"{key}_joints"] = pa_mpjpe_mm(kp, gt_m), pa_per_joint_mm(kp, gt_m)
        if key == "lift":
            out["side"], out["reliable"] = fitted.side, bool(fitted.fit.reliable[0])
            out["focal_ratio"] = lifted.focal_px / K[0, 0]
    world = track.world_landmarks[0].astype(np.float64)
    out["mediapipe_mm"], out["mp_joints"] = pa_mpjpe_mm(world, gt_m), pa_per_joint_mm(world, gt_m)
    return out


def hgc_samples(data: Path) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """hand-graph-cnn's real-world images: (index, RGB image, 3D ground truth (21, 3) m, camera (3, 3) of the
    256 px crop)."""
    root = data / "hand3d_gt/hand_graph_cnn_realworld"
    for s in json.loads((root / "ground_truth.json").read_text())["samples"]:
        fx, fy, u0, v0 = s["cam_param"]
        x, y, w, _ = s["bbox"]
        r = 256 / w
        K = np.array([[fx * r, 0, (u0 - x) * r], [0, fy * r, (v0 - y) * r], [0, 0, 1]])
        image = cv2.cvtColor(cv2.imread(str(root / f"images/{s['index']:05d}.jpg")), cv2.COLOR_BGR2RGB)
        yield s["index"], image, np.array(s["pose_gt_cm"]) / 100, K


def real_3d(data: Path, models: HandModels, lift: Lifter, base: Lifter) -> list[dict]:
    return [_score(f"hgc {index:05d}", image, gt, K, models, lift, base) for index, image, gt, K in hgc_samples(data)]


def interhand(data: Path, models: HandModels, lift: Lifter, base: Lifter) -> list[dict]:
    root = data / "hand3d_gt/interhand2.6m_mmpose"
    meta = json.loads((root / "test_interhand2.6m_data.json").read_text())
    joints = json.loads((root / "test_interhand2.6m_joint_3d.json").read_text())
    cams = json.loads((root / "test_interhand2.6m_camera.json").read_text())
    rows = []
    for im in meta["images"]:
        cam = cams[str(im["capture"])]
        c = im["camera"]
        rot, pos = np.array(cam["camrot"][c]), np.array(cam["campos"][c])
        K = np.array(
            [[cam["focal"][c][0], 0, cam["princpt"][c][0]], [0, cam["focal"][c][1], cam["princpt"][c][1]], [0, 0, 1]]
        )
        entry = joints[str(im["capture"])][str(im["frame_idx"])]
        world = np.array(entry["world_coord"])
        valid = np.array(entry["joint_valid"]).reshape(-1).astype(bool)
        image = cv2.cvtColor(cv2.imread(str(root / Path(im["file_name"]).name)), cv2.COLOR_BGR2RGB)
        for hand, offset in (("right", 0), ("left", 21)):
            idx = offset + MP_FROM_INTERHAND
            if not valid[idx].all():
                continue
            gt_m = (rot @ (world[idx] - pos).T).T / 1000
            rows.append(_score(f"ih {Path(im['file_name']).stem} {hand}", image, gt_m, K, models, lift, base))
    return rows


# --- temporal, on synthetic sequences ---


def measured_noise(tracks: list[HandTrack]) -> tuple[float, float]:
    """Per-axis noise of real tracks (2D px, world m) from second differences, robustly (MAD); an upper bound,
    as real motion adds to it."""
    e2d, e3d = [], []
    for t in tracks:
        ok = np.flatnonzero((t.frame_index[2:] - t.frame_index[:-2]) == 2)
        for arr, out in ((t.keypoints2d[..., :2], e2d), (t.world_landmarks, e3d)):
            out.append((arr[ok + 1] - (arr[ok] + arr[ok + 2]) / 2).reshape(-1))
    sigma = [1.4826 * np.median(np.abs(np.concatenate(e))) / np.sqrt(1.5) for e in (e2d, e3d)]
    return float(sigma[0]), float(sigma[1])


def synthetic_sequence(model: JointModel, side: str, n_frames: int, seed: int) -> dict[str, torch.Tensor]:
    """Smooth, anatomically plausible motion: flexion waves per joint, a slow wrist turn and a drift in depth."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_frames)[:, None] / 12.0
    axes = joint_axes(model.rest21(np.zeros(10)), side)  # (15, 3, 3): flex, palm, bone
    freq, phase = rng.uniform(0.2, 0.8, (1, 15)), rng.uniform(0, 2 * np.pi, (1, 15))
    flex = 0.6 + 0.5 * np.sin(2 * np.pi * freq * t + phase)
    abduct = 0.1 * np.sin(2 * np.pi * 0.3 * t + phase)
    pose = flex[..., None] * axes[:, 0] + abduct[..., None] * axes[:, 1] * 0.5
    pose[:, 12:] *= 0.5  # the thumb moves less
    orient = np.stack(
        [
            np.pi + 0.4 * np.sin(2 * np.pi * 0.25 * t[:, 0]),
            0.3 * np.sin(2 * np.pi * 0.15 * t[:, 0]),
            0.2 * np.cos(2 * np.pi * 0.2 * t[:, 0]),
        ],
        1,
    )
    transl = np.stack(
        [
            0.05 * np.sin(2 * np.pi * 0.2 * t[:, 0]),
            0.03 * np.cos(2 * np.pi * 0.3 * t[:, 0]),
            0.45 + 0.05 * np.sin(2 * np.pi * 0.1 * t[:, 0]),
        ],
        1,
    )
    betas = rng.normal(0, 0.5, 10) * (np.arange(10) < 4)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    return {
        "global_orient": f(orient),
        "hand_pose": f(pose.reshape(n_frames, 45)),
        "betas": f(betas),
        "transl": f(transl),
    }


def _observe(joints: np.ndarray, K: np.ndarray, side: str, sigma: tuple[float, float], seed: int) -> HandTrack:
    rng = np.random.default_rng(seed)
    n = len(joints)
    uv = joints[..., :2] / joints[..., 2:] * K[[0, 1], [0, 1]] + K[:2, 2] + rng.normal(0, sigma[0], (n, 21, 2))
    world = joints - joints.mean(1, keepdims=True) + rng.normal(0, sigma[1], (n, 21, 3))
    kp = np.concatenate([uv, np.zeros((n, 21, 1))], -1).astype(np.float32)
    return HandTrack(
        side,
        np.arange(n, dtype=np.int32),
        kp,
        world.astype(np.float32),
        np.full(n, 0.95, np.float32),
        np.full(n, float(side == "right"), np.float32),
        np.zeros(n, np.int8),
        np.zeros((n, 5), np.float32),
    )


def temporal_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """pred, gt (T, 21, 3) metres -> MPJPE, root-relative MPJPE, acceleration error, jitter (mm), lag (frames)."""
    acc = lambda x: x[2:] - 2 * x[1:-1] + x[:-2]  # noqa: E731
    rel = lambda x: x - x[:, :1]  # noqa: E731
    shifts = range(-3, 4)
    errs = [
        np.linalg.norm(pred[max(s, 0) : len(pred) + min(s, 0)] - gt[max(-s, 0) : len(gt) + min(-s, 0)], axis=-1).mean()
        for s in shifts
    ]
    return {
        "mpjpe_mm": 1000 * float(np.linalg.norm(pred - gt, axis=-1).mean()),
        "rel_mpjpe_mm": 1000 * float(np.linalg.norm(rel(pred) - rel(gt), axis=-1).mean()),
        "accel_err_mm": 1000 * float(np.linalg.norm(acc(pred) - acc(gt), axis=-1).mean()),
        "jitter_mm": 1000 * float(np.linalg.norm(np.diff(pred, 3, axis=0), axis=-1).mean()),
        "lag_frames": float(list(shifts)[int(np.argmin(errs))]),
    }


def temporal(lift: Lifter, sigma: tuple[float, float], n_sequences: int) -> dict[str, dict[str, float]]:
    K = intrinsics(427, 240, lift.config.focal_scale)
    out: dict[str, list[dict[str, float]]] = {"track fit": [], "per-frame fit": []}
    for seq in range(n_sequences):
        side = ("right", "left")[seq % 2]
        model = lift.models[side]
        params = synthetic_sequence(model, side, 48, seed=seq)
        with torch.no_grad():
            gt = model(params["global_orient"], params["hand_pose"], params["betas"], params["transl"]).numpy()
        track = _observe(gt, K, side, sigma, seed=100 + seq)
        whole = lift(track, K).joints3d
        per_frame = np.concatenate(
            [lift(track.rows(slice(i, i + 1)), K, temporal=False).joints3d for i in range(len(track))]
        )
        out["track fit"].append(temporal_metrics(whole.astype(np.float64), gt))
        out["per-frame fit"].append(temporal_metrics(per_frame.astype(np.float64), gt))
    return {k: {m: float(np.mean([r[m] for r in v])) for m in v[0]} for k, v in out.items()}


# --- real detection errors ---


def real_errors(clips: list[ClipHands], lift: Lifter, length: int) -> list[np.ndarray]:
    """(length, 21, 2) windows of MediaPipe's 2D errors on real clips (detection minus the fitted projection),
    in units of the hand's image size (RMS spread of its keypoints): errors with their real temporal correlation."""
    out = []
    for ct in clips:
        K = intrinsics(ct.width, ct.height, 1.0)
        for track in ct.hands.values():
            if len(track) < length or np.any(np.diff(track.frame_index[:length]) != 1):
                continue
            fit = lift(track, K, frame_size=(ct.width, ct.height))
            rows = np.searchsorted(fit.frame_index, track.frame_index[:length])
            if rows[-1] >= len(fit.frame_index) or not fit.observed[rows].all():
                continue  # the fit stops early (screening split the track) or misses a frame
            kp = fit.joints3d[rows].astype(np.float64)
            uv = kp[..., :2] / kp[..., 2:] * K[0, 0] + K[:2, 2]
            image = track.keypoints2d[:length, :, :2].astype(np.float64)
            out.append((image - uv) / _spread_px(image)[:, None, None])
    return out


def _spread_px(image: np.ndarray) -> np.ndarray:
    return np.sqrt(((image - image.mean(1, keepdims=True)) ** 2).sum(-1).mean(1))


def temporal_real_errors(lift: Lifter, errors: list[np.ndarray], sigma_world_m: float) -> dict:
    """Synthetic motion seen through real 2D detection errors (scaled to the synthetic hand's image size)."""
    K = intrinsics(427, 240, lift.config.focal_scale)
    out: dict[str, list[dict[str, float]]] = {"track fit": [], "per-frame fit": []}
    frame_err = {"reliable": [], "unreliable": []}
    for seq, err in enumerate(errors):
        side = ("right", "left")[seq % 2]
        model = lift.models[side]
        params = synthetic_sequence(model, side, len(err), seed=50 + seq)
        with torch.no_grad():
            gt = model(params["global_orient"], params["hand_pose"], params["betas"], params["transl"]).numpy()
        track = _observe(gt, K, side, (0.0, sigma_world_m), seed=200 + seq)
        uv = track.keypoints2d[..., :2].astype(np.float64)
        track.keypoints2d[..., :2] = uv + err * _spread_px(uv)[:, None, None]
        whole = lift(track, K)
        per_frame = np.concatenate(
            [lift(track.rows(slice(i, i + 1)), K, temporal=False).joints3d for i in range(len(track))]
        )
        out["track fit"].append(temporal_metrics(whole.joints3d.astype(np.float64), gt))
        out["per-frame fit"].append(temporal_metrics(per_frame.astype(np.float64), gt))
        e = 1000 * np.linalg.norm(whole.joints3d - gt, axis=-1).mean(-1)
        frame_err["reliable"] += e[whole.reliable].tolist()
        frame_err["unreliable"] += e[~whole.reliable].tolist()
    means = {k: {m: float(np.mean([r[m] for r in v])) for m in v[0]} for k, v in out.items()}
    return {"metrics": means, "frame_err": frame_err}


# --- the 13 SSv2 clips: image fit, depth, outliers, speed ---


def detect_clips(data: Path, models: HandModels) -> tuple[list[ClipHands], float]:
    """2D tracks of the 13 clips and the 2D stage's ms per frame."""
    index = load_boxes([data / "ssv2_something_else/annotations.json"])
    clips, t2d, frames = [], 0.0, 0
    for src in discover_clips([], data / "ssv2_something_else/frames"):
        t0 = time.perf_counter()
        clip = read_clip(src)
        hands = track_clip(clip, index.get(src.video_id), models, Track2DConfig()).hands
        t2d += time.perf_counter() - t0
        frames += clip.n_frames
        clips.append(ClipHands(src.video_id, clip.n_frames, clip.width, clip.height, clip.fps, hands))
    return clips, 1000 * t2d / frames


def _palm_px(image: np.ndarray) -> np.ndarray:
    """(T,) mean pixel distance from the wrist to the four MCPs."""
    return np.linalg.norm(image[:, [5, 9, 13, 17]] - image[:, :1], axis=-1).mean(1)


def image_fit(clips: list[ClipHands], lift: Lifter) -> dict:
    """The pipeline's lift of each clip as a user runs it (no camera), scored against MediaPipe's detections with
    the camera the lift reports (focal_px)."""
    residuals, depth_out, jumps, long_ms, long_frames, all_ms, all_frames = [], 0, [], 0.0, 0, 0.0, 0
    status = np.zeros(3, int)
    reliable = observed = 0
    by_flag: dict[bool, list[np.ndarray]] = {True: [], False: []}
    for ct in clips:
        t0 = time.perf_counter()
        lifted = lift.clip(ct)
        ms = 1000 * (time.perf_counter() - t0)
        K = intrinsics(ct.width, ct.height, 1.0)
        K[0, 0] = K[1, 1] = lifted.focal_px
        fits = [(h, h.fit) for h in lifted.hands.values() if h.fit is not None]
        n = sum(len(fit) for _, fit in fits)
        all_ms, all_frames = all_ms + ms, all_frames + n
        if fits and min(len(fit) for _, fit in fits) >= 20:
            long_ms, long_frames = long_ms + ms, long_frames + n
        for track, fit in fits:
            obs = fit.observed
            rows = np.searchsorted(track.frame_index, fit.frame_index[obs])
            kp = fit.joints3d[obs].astype(np.float64)
            uv = kp[..., :2] / kp[..., 2:] * K[0, 0] + K[:2, 2]
            image = track.keypoints2d[rows, :, :2].astype(np.float64)
            res = np.linalg.norm(uv - image, axis=-1)
            residuals.append(res)
            for flag in (True, False):
                by_flag[flag].append(res[fit.reliable[obs] == flag].reshape(-1))
            z = fit.joints3d[:, 0, 2]
            depth_out += int(((z < 0.1) | (z > 2.0)).sum())
            palm, zo, fo = _palm_px(image), kp[:, 0, 2], fit.frame_index[obs]
            for i in np.flatnonzero(np.diff(fo) == 1):
                dz = abs(zo[i + 1] / zo[i] - 1)
                dp = abs(palm[i + 1] / palm[i] - 1)
                if dz > 0.35 and dp < 0.10:
                    jumps.append(f"{ct.video_id}:{fo[i]}-{fo[i + 1]}")
            if fit.detection_status is not None:
                status += np.bincount(fit.detection_status, minlength=3)[:3]
            reliable, observed = reliable + int(fit.reliable.sum()), observed + int(obs.sum())
    res = np.concatenate(residuals)
    return {
        "per_joint_px": np.median(res, 0),
        "overall_px": float(np.median(res)),
        "hand_frames": all_frames,
        "depth_out": depth_out,
        "jumps": jumps,
        "ms_long": long_ms / max(long_frames, 1),
        "ms_all": all_ms / max(all_frames, 1),
        "status": status,
        "reliable": (reliable, observed),
        "reliable_px": {k: median(np.concatenate(v).tolist()) for k, v in by_flag.items()},
    }


JOINT_NAMES = (
    "wrist",
    *[f"{f} {j}" for f, js in (("thumb", ("CMC", "MCP", "IP", "tip")),) for j in js],
    *[f"{f} {j}" for f in ("index", "middle", "ring", "little") for j in ("MCP", "PIP", "DIP", "tip")],
)


def pa_per_joint_mm(pred_m: np.ndarray, gt_m: np.ndarray) -> np.ndarray:
    """(21,) per-joint error after the best similarity transform, mm."""
    p, g = pred_m - pred_m.mean(0), gt_m - gt_m.mean(0)
    u, s, vt = np.linalg.svd(g.T @ p)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1, 1, d]) @ vt
    scale = (s * [1, 1, d]).sum() / (p**2).sum()
    return 1000 * np.linalg.norm(scale * p @ rot.T - g, axis=1)


FITS_3D = (
    ("mediapipe", "MediaPipe world landmarks", "none (crop)"),
    ("base", "baseline", "as a user runs it"),
    ("lift", "lift", "as a user runs it"),
    ("true", "lift", "true (reference)"),
)


def _table(rows: list[dict]) -> list[str]:
    """One table: MediaPipe, the baseline and the lift as a user runs them (no camera: the choice-making figure),
    the lift with the true camera for reference; then one line per image."""
    found = [r for r in rows if r["found"]]
    lines = []
    if found:
        mp = [r["mediapipe_mm"] for r in found]
        lines += [
            f"over {len(found)}/{len(rows)} detected:",
            "",
            "| fit | camera | mean mm | median mm | median / MediaPipe's | better than MediaPipe on |",
            "|---|---|---|---|---|---|",
        ]
        for key, name, camera in FITS_3D:
            mm = [r[f"{key}_mm"] for r in found]
            better = np.mean([a < b for a, b in zip(mm, mp, strict=True)])
            lines.append(
                f"| {name} | {camera} | {np.mean(mm):.2f} | {median(mm):.2f} | {median(mm) / median(mp):.2f} | "
                + ("–" if key == "mediapipe" else f"{100 * better:.0f} %")
                + " |"
            )
        ratio = [r["focal_ratio"] for r in found]
        lines += ["", f"Lift's focal length over the true one, as a user runs it: median {median(ratio):.2f}.", ""]
    lines += [
        f"- {r['name']} ({r['side']}): MediaPipe {r['mediapipe_mm']:.1f} mm, baseline {r['base_mm']:.1f} mm, "
        f"lift {r['lift_mm']:.1f} mm (true camera {r['true_mm']:.1f}){'' if r['reliable'] else ' (flagged unreliable)'}"
        for r in found
    ]
    lines += [f"- {r['name']}: no hand detected" for r in rows if not r["found"]]
    return lines


def _joint_table(rows: list[dict]) -> list[str]:
    found = [r for r in rows if r["found"]]
    mp, lift = np.mean([r["mp_joints"] for r in found], 0), np.mean([r["lift_joints"] for r in found], 0)
    base = np.mean([r["base_joints"] for r in found], 0)
    lines = [
        "Per joint, as a user runs it:",
        "",
        "| joint | MediaPipe mm | baseline mm | lift mm |",
        "|---|---|---|---|",
    ]
    lines += [f"| {n} | {a:.1f} | {b:.1f} | {c:.1f} |" for n, a, b, c in zip(JOINT_NAMES, mp, base, lift, strict=True)]
    worse = [n for n, a, c in zip(JOINT_NAMES, mp, lift, strict=True) if c > a]
    lines.append("")
    lines.append(f"Joints where the lift is worse than MediaPipe on average: {', '.join(worse) or 'none'}.")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hand-model", help="MANO folder (default: the open model)")
    ap.add_argument("--sequences", type=int, default=6)
    ap.add_argument("--append", action="store_true")
    ap.add_argument("--note", default="", help="a line to add to the report (e.g. how busy the machine was)")
    args = ap.parse_args()
    data = require_shared_data()
    core = pin_one_core()
    torch.set_num_threads(1)
    _one_blas_thread()
    config = LiftConfig()
    lift = Lifter(args.hand_model, config)
    base = Lifter(args.hand_model, BASELINE)
    models = HandModels(1, Track2DConfig().dark_crop_mean)
    clips, ms_2d = detect_clips(data, models)
    image_fit(clips[:2], lift), image_fit(clips[:2], base)  # warm-up: first calls pay one-off costs
    fits = {"lift": image_fit(clips, lift), "baseline": image_fit(clips, base)}
    tracks = [t for ct in clips for t in ct.hands.values()]
    sigma = measured_noise(tracks)
    hgc, ih = real_3d(data, models, lift, base), interhand(data, models, lift, base)
    temp = temporal(lift, sigma, args.sequences)
    errors = real_errors(clips, lift, 40)
    temp_real = temporal_real_errors(lift, errors, sigma[1])
    hgc_found = [r for r in hgc if r["found"]]
    one_frame = {k: median([r[f"{k}_ms"] for r in hgc_found]) for k in ("lift", "base")}
    body = "\n".join(
        [
            f"Hand model: {lift.name}; one core (#{core}); config {config.to_dict()}",
            f"Baseline (landed main): { ({k: v for k, v in BASELINE.to_dict().items() if v != config.to_dict()[k]}) }",
            *([args.note] if args.note else []),
            "",
            *_image_lines(fits),
            "",
            "**Real 3D accuracy, PA-MPJPE** (hand-graph-cnn real-world set, 20 images; a user has no camera: the "
            "lift runs as `enrich run` does, the true camera is a reference only):",
            *_table(hgc),
            "",
            *_joint_table(hgc),
            "",
            "InterHand2.6M (4 images, each hand with valid joints):",
            *_table(ih),
            "",
            *_temporal_lines(
                f"{args.sequences} synthetic 48-frame sequences; Gaussian noise measured on the "
                f"13 clips: 2D {sigma[0]:.2f} px, world {1000 * sigma[1]:.1f} mm per axis",
                temp,
            ),
            "",
            *_temporal_lines(
                f"{len(errors)} synthetic 40-frame sequences with real 2D detection errors (MediaPipe's "
                "residual sequences from the real clips, scaled to the hand's size)",
                temp_real["metrics"],
            ),
            "",
            *_reliability_lines(hgc_found, temp_real["frame_err"], fits["lift"]),
            "",
            _speed_line(fits, one_frame, ms_2d),
        ]
    )
    print(body)
    if args.append:
        record_results("MANO lift: accuracy, smoothness, consistency, speed (bench_lift.py)", body)


def _one_blas_thread() -> None:
    """numpy's BLAS started its threads for every core before the process was pinned to one: left alone, they spin
    against each other on that core (a 10x slowdown of the banded solves seen in one run)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def _speed_line(fits: dict[str, dict], one_frame: dict[str, float], ms_2d: float) -> str:
    lift, base = fits["lift"], fits["baseline"]
    return (
        f"**Speed** (one core): lift {lift['ms_long']:.2f} ms per hand-frame on clips whose tracks all have >= 20 "
        f"frames (baseline "
        f"{base['ms_long']:.2f}, ratio {lift['ms_long'] / base['ms_long']:.2f}), {lift['ms_all']:.2f} over all "
        f"tracks (baseline {base['ms_all']:.2f}); one-frame track {one_frame['lift']:.1f} ms median (baseline "
        f"{one_frame['base']:.1f}); 2D stage (decode + detect) {ms_2d:.2f} ms per frame, same run."
    )


def _image_lines(fits: dict[str, dict]) -> list[str]:
    lift, base = fits["lift"], fits["baseline"]
    names = [n.replace(" ", "&nbsp;") for n in JOINT_NAMES]
    lines = [
        f"**Image fit** on the 13 SSv2 clips ({lift['hand_frames']} hand-frames): median distance (px) between the "
        "projected fitted keypoints and MediaPipe's detections, per joint and overall:",
        "",
        "| fit | " + " | ".join(names) + " | overall |",
        "|---" * (len(names) + 2) + "|",
    ]
    for k, r in (("baseline", base), ("lift", lift)):
        lines.append(f"| {k} | " + " | ".join(f"{v:.1f}" for v in r["per_joint_px"]) + f" | {r['overall_px']:.2f} |")
    lines += [
        "",
        f"Fitted frames outside 0.1-2 m: lift {lift['depth_out']}, baseline {base['depth_out']}. Unexplained depth "
        f"jumps: lift {len(lift['jumps'])} {lift['jumps']}, baseline {len(base['jumps'])} {base['jumps']}. "
        f"Detections: {lift['status'][0]} lifted, {lift['status'][1]} dropped as inconsistent with their track, "
        f"{lift['status'][2]} starting a new segment.",
    ]
    return lines


def _temporal_lines(title: str, temp: dict[str, dict[str, float]]) -> list[str]:
    track, frame = temp["track fit"], temp["per-frame fit"]
    change = lambda k: 100 * (track[k] - frame[k]) / frame[k]  # noqa: E731
    return [
        f"**Temporal** ({title}):",
        "",
        "| fit | MPJPE mm | root-rel. MPJPE mm | accel. error mm/f² | jitter mm/f³ | lag frames |",
        "|---|---|---|---|---|---|",
        *[
            f"| {k} | {v['mpjpe_mm']:.1f} | {v['rel_mpjpe_mm']:.1f} | {v['accel_err_mm']:.2f} | "
            f"{v['jitter_mm']:.2f} | {v['lag_frames']:.1f} |"
            for k, v in temp.items()
        ],
        "",
        f"Track fit vs per-frame fit: acceleration error {change('accel_err_mm'):+.0f} %, "
        f"jitter {change('jitter_mm'):+.0f} %, MPJPE {change('mpjpe_mm'):+.0f} %.",
    ]


def _reliability_lines(hgc: list[dict], frame_err: dict[str, list[float]], ssv2: dict) -> list[str]:
    rel = [r["lift_mm"] for r in hgc if r["reliable"]]
    unrel = [r["lift_mm"] for r in hgc if not r["reliable"]]
    fmt = lambda v: f"{np.mean(v):.1f} mm (n={len(v)})" if v else "n=0"  # noqa: E731
    return [
        "**Reliability flag**: hand-graph-cnn PA-MPJPE of images flagged reliable "
        f"{fmt(rel)}, unreliable {fmt(unrel)}; per-frame MPJPE on the sequences with real errors: reliable "
        f"{fmt(frame_err['reliable'])}, unreliable {fmt(frame_err['unreliable'])}; on the 13 clips "
        f"{ssv2['reliable'][0]}/{ssv2['reliable'][1]} observed hand-frames "
        f"({100 * ssv2['reliable'][0] / max(ssv2['reliable'][1], 1):.0f} %) flagged reliable, median image distance "
        f"{ssv2['reliable_px'][True]:.2f} px on reliable frames, {ssv2['reliable_px'][False]:.2f} px on the rest.",
    ]


if __name__ == "__main__":
    main()
