"""Accuracy, smoothness, image consistency and speed of the MANO lift (open hand model unless --hand-model).

1. Real 3D accuracy: hand-graph-cnn's 20 real images and InterHand2.6M's 4 (each a one-frame clip; the hand
   box is the tight box of the projected ground truth, as Something-Else annotators draw it; true intrinsics).
   PA-MPJPE of the lifted joints against MediaPipe's own world landmarks, measured on the same detections.
2. Temporal: synthetic sequences from the hand model through the camera, with 2D and world-landmark noise at
   the level measured on the bundled real SSv2 clips; the track fit against an independent per-frame fit.
3. Image consistency: median 2D error of the fitted keypoints on the bundled SSv2 clips.
4. Speed: lift ms per hand-frame against the 2D stage's ms per frame, both on one core in this run.

    python -m benchmarks.bench_lift [--append] [--hand-model DIR]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from benchmarks.common import REPO, append_results, median, pin_one_core, require_shared_data
from enrich.handmodel import find_hand_model_files, load_hand_model
from enrich.inputs import discover_clips, load_boxes, read_clip
from enrich.lift import HandFitter, JointModel, LiftConfig, fit_track, intrinsics, joint_axes, lift_clip
from enrich.records import HAND_SLOT, Clip, ClipBoxes, ClipTracks, HandTrack2D, ManoTrack
from enrich.track2d import HandModels, Track2DConfig, track_clip

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

    def __call__(self, track: HandTrack2D, K: np.ndarray, temporal: bool = True) -> ManoTrack | None:
        return fit_track(track, self.models[track.side], K, self.config, temporal=temporal)

    def clip(self, tracks: ClipTracks, K: np.ndarray) -> ClipTracks:
        """The pipeline's lift of a clip (a lone, uncertain hand may change side)."""
        return lift_clip(tracks, self.fitter, K)


def _one_frame(image_rgb: np.ndarray, box: np.ndarray, models: HandModels) -> HandTrack2D | None:
    clip = Clip("gt", image_rgb[None], 1.0, "")
    boxes = ClipBoxes("gt", np.zeros(1, np.int32), np.full(1, HAND_SLOT, np.int16), box[None].astype(np.float32))
    hands = track_clip(clip, boxes, models, Track2DConfig()).hands
    return max(hands.values(), key=lambda h: float(h.presence[0]), default=None)


def _tight_box(gt_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    uv = gt_m[:, :2] / gt_m[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
    return np.concatenate([uv.min(0), uv.max(0)])


def _score(name: str, image: np.ndarray, gt_m: np.ndarray, K: np.ndarray, models: HandModels, lift: Lifter) -> dict:
    track = _one_frame(image, _tight_box(gt_m, K), models)
    if track is None:
        return {"name": name, "found": False}
    hands = lift.clip(ClipTracks("gt", 1, image.shape[1], image.shape[0], 1.0, {track.side: track}), K).hands
    track = next(iter(hands.values()))
    fit = track.fit
    return {
        "name": name,
        "found": True,
        "side": track.side,
        "mediapipe_mm": pa_mpjpe_mm(track.world_landmarks[0].astype(np.float64), gt_m),
        "lift_mm": pa_mpjpe_mm(fit.joints3d[0].astype(np.float64), gt_m),
    }


def real_3d(data: Path, models: HandModels, lift: Lifter) -> list[dict]:
    root = data / "hand3d_gt/hand_graph_cnn_realworld"
    rows = []
    for s in json.loads((root / "ground_truth.json").read_text())["samples"]:
        fx, fy, u0, v0 = s["cam_param"]
        x, y, w, _ = s["bbox"]
        r = 256 / w
        K = np.array([[fx * r, 0, (u0 - x) * r], [0, fy * r, (v0 - y) * r], [0, 0, 1]])
        image = cv2.cvtColor(cv2.imread(str(root / f"images/{s['index']:05d}.jpg")), cv2.COLOR_BGR2RGB)
        rows.append(_score(f"hgc {s['index']:05d}", image, np.array(s["pose_gt_cm"]) / 100, K, models, lift))
    return rows


def interhand(data: Path, models: HandModels, lift: Lifter) -> list[dict]:
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
            rows.append(_score(f"ih {Path(im['file_name']).stem} {hand}", image, gt_m, K, models, lift))
    return rows


# --- temporal, on synthetic sequences ---


def measured_noise(tracks: list[HandTrack2D]) -> tuple[float, float]:
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


def _observe(joints: np.ndarray, K: np.ndarray, side: str, sigma: tuple[float, float], seed: int) -> HandTrack2D:
    rng = np.random.default_rng(seed)
    n = len(joints)
    uv = joints[..., :2] / joints[..., 2:] * K[[0, 1], [0, 1]] + K[:2, 2] + rng.normal(0, sigma[0], (n, 21, 2))
    world = joints - joints.mean(1, keepdims=True) + rng.normal(0, sigma[1], (n, 21, 3))
    kp = np.concatenate([uv, np.zeros((n, 21, 1))], -1).astype(np.float32)
    return HandTrack2D(
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


# --- bundled SSv2 clips: image consistency and speed ---


def bundled(models: HandModels, lift: Lifter) -> tuple[list[HandTrack2D], dict[str, float]]:
    samples = REPO / "samples"
    boxes = load_boxes([samples / "something_else.json"])
    tracks, residuals = [], []
    t2d = tlift = 0.0
    frames = hand_frames = 0
    for src in discover_clips([samples / "videos"], samples / "frames"):
        t0 = time.perf_counter()
        clip = read_clip(src)
        hands = track_clip(clip, boxes.get(src.video_id), models, Track2DConfig()).hands
        t1 = time.perf_counter()
        K = intrinsics(clip.width, clip.height, lift.config.focal_scale)
        clip_tracks = ClipTracks(src.video_id, clip.n_frames, clip.width, clip.height, clip.fps, hands)
        for track in lift.clip(clip_tracks, K).hands.values():
            fit = track.fit
            residuals.append(fit.residual_2d_px[fit.observed])
            hand_frames += len(fit)
        t2d, tlift = t2d + t1 - t0, tlift + time.perf_counter() - t1
        frames += clip.n_frames
        tracks += hands.values()
    res = np.concatenate(residuals)
    return tracks, {
        "median_2d_px": float(np.median(res)),
        "p90_2d_px": float(np.percentile(res, 90)),
        "ms_per_frame_2d": 1000 * t2d / frames,
        "ms_per_hand_frame_lift": 1000 * tlift / hand_frames,
        "hand_frames": hand_frames,
    }


def _table(rows: list[dict]) -> list[str]:
    found = [r for r in rows if r["found"]]
    lines = [
        f"- {r['name']} ({r['side']}): MediaPipe {r['mediapipe_mm']:.1f} mm, lift {r['lift_mm']:.1f} mm" for r in found
    ]
    lines += [f"- {r['name']}: no hand detected" for r in rows if not r["found"]]
    if found:
        mp_mm, lift_mm = np.mean([r["mediapipe_mm"] for r in found]), np.mean([r["lift_mm"] for r in found])
        lines.insert(
            0,
            f"mean over {len(found)}/{len(rows)} detected: MediaPipe world landmarks {mp_mm:.2f} mm, "
            f"lift {lift_mm:.2f} mm (median {median([r['lift_mm'] for r in found]):.2f})",
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hand-model", help="MANO folder (default: the open model)")
    ap.add_argument("--sequences", type=int, default=6)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    data = require_shared_data()
    core = pin_one_core()
    torch.set_num_threads(1)
    config = LiftConfig()
    lift = Lifter(args.hand_model, config)
    models = HandModels(1, Track2DConfig().dark_crop_mean)
    tracks, ssv2 = bundled(models, lift)
    tracks, ssv2 = bundled(models, lift)  # second pass: timings without first-call warm-up
    sigma = measured_noise(tracks)
    hgc, ih = real_3d(data, models, lift), interhand(data, models, lift)
    temp = temporal(lift, sigma, args.sequences)
    track, frame = temp["track fit"], temp["per-frame fit"]
    change = lambda k: 100 * (track[k] - frame[k]) / frame[k]  # noqa: E731
    body = "\n".join(
        [
            f"Hand model: {lift.name}; one core (#{core}); config {config.to_dict()}",
            "",
            "**Real 3D accuracy, PA-MPJPE** (hand-graph-cnn real-world set, 20 images):",
            *_table(hgc),
            "",
            "InterHand2.6M (4 images, each hand with valid joints):",
            *_table(ih),
            "",
            f"**Temporal** ({args.sequences} synthetic 48-frame sequences; noise measured on the bundled clips: "
            f"2D {sigma[0]:.2f} px, world {1000 * sigma[1]:.1f} mm per axis):",
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
            "",
            f"**Image consistency** on the bundled SSv2 clips ({ssv2['hand_frames']} hand-frames): median 2D error "
            f"{ssv2['median_2d_px']:.2f} px, 90th percentile {ssv2['p90_2d_px']:.2f} px.",
            "",
            f"**Speed**: lift {ssv2['ms_per_hand_frame_lift']:.2f} ms per hand-frame; 2D stage (decode + detect) "
            f"{ssv2['ms_per_frame_2d']:.2f} ms per frame, same run.",
        ]
    )
    print(body)
    if args.append:
        append_results("MANO lift: accuracy, smoothness, consistency, speed (bench_lift.py)", body)


if __name__ == "__main__":
    main()
