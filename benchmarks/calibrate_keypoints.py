"""Calibrate the keypoint corrections of enrich.keypoints for one hand model, and cross-validate them.

The corrections move each model point (joint or fingertip vertex, fixed to its bone) to where MediaPipe puts that
landmark. Data: MediaPipe's 2D detections on the 13 SSv2 clips of ../shared/data/ssv2_something_else and on the
20 hand-graph-cnn dev images (true intrinsics), plus those images' 3D ground truth (after the best similarity
transform, which sees along the line of sight where one view cannot); nothing else.

Block-coordinate descent: fit every track with the current corrections, then solve each keypoint's correction
(3 numbers in its anchor bone's rest frame, shared by both sides as mirror images) by robust linear least squares
on the reprojection errors, back-projected to metres at the hand's depth so near and far hands count alike, and
on the 3D errors; repeat. Cross-validation (leave one clip or image out, or --folds K groups of them) reports the
image residuals and hand-graph-cnn PA-MPJPE of each held-out unit under corrections calibrated without it.

    python -m benchmarks.calibrate_keypoints [--hand-model DIR] [--write] [--folds N]

--write stores the all-data corrections in enrich/data/keypoint_corrections.json (open model) or, for a MANO
folder, in DIR/enrich_keypoint_corrections.json (MANO-derived: never commit it).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_lift import hgc_samples, one_frame, pa_mpjpe_mm, tight_box
from benchmarks.common import pin_one_core, require_shared_data
from enrich import keypoints
from enrich.handmodel import find_hand_model_files, load_hand_model
from enrich.inputs import discover_clips, load_boxes, read_clip
from enrich.lift import JointModel, LiftConfig, fit_track, intrinsics
from enrich.lift import solver as lift_solver
from enrich.records import HandTrack
from enrich.track2d import HandModels, Track2DConfig, track_clip

SIGMA_CORRECTION_M = 0.01  # prior on each correction component
SIGMA_ROBUST_M = 0.004  # back-projected reprojection error beyond which a residual counts linearly
RELAX = 2.0
GT_WEIGHT = 5.0  # a hand-graph-cnn 3D keypoint counts as much as five 2D detections


@dataclass
class Unit:
    """One clip or one image: its tracks, camera and (images) 3D ground truth."""

    name: str
    tracks: list[HandTrack]
    K: np.ndarray
    frame_size: tuple[int, int]
    gt_m: np.ndarray | None = None


def load_units(data: Path, models: HandModels, cache: Path | None = None) -> list[Unit]:
    if cache is not None and cache.exists():
        import pickle

        return pickle.loads(cache.read_bytes())
    units = []
    index = load_boxes([data / "ssv2_something_else/annotations.json"])
    for src in discover_clips([], data / "ssv2_something_else/frames"):
        clip = read_clip(src)
        hands = track_clip(clip, index.get(src.video_id), models, Track2DConfig()).hands
        if hands:
            K = intrinsics(clip.width, clip.height, 1.0)
            units.append(Unit(f"clip {src.video_id}", list(hands.values()), K, (clip.width, clip.height)))
    for index, image, gt, K in hgc_samples(data):
        track = one_frame(image, tight_box(gt, K), models)
        if track is not None:
            units.append(Unit(f"hgc {index:05d}", [track], K, (image.shape[1], image.shape[0]), gt))
    if cache is not None:
        import pickle

        cache.write_bytes(pickle.dumps(units))
    return units


class Calibrator:
    def __init__(self, source: str | None, config: LiftConfig, gt_weight: float = 0.0) -> None:
        """``gt_weight``: weight of a 3D ground-truth keypoint against one 2D detection (0: MediaPipe's 2D only)."""
        self.gt_weight = gt_weight
        files = find_hand_model_files(source)
        self.hands = {side: load_hand_model(files[side], side) for side in ("left", "right")}
        self.config = config

    def models(self, correction_right_m: np.ndarray) -> dict[str, JointModel]:
        corr = {"right": correction_right_m, "left": correction_right_m * keypoints.MIRROR_X}
        return {side: JointModel(h, correction_m=corr[side]) for side, h in self.hands.items()}

    def fits(self, units: list[Unit], correction_right_m: np.ndarray) -> list[tuple]:
        models = self.models(correction_right_m)
        out = []
        for u in units:
            for track in u.tracks:
                fit = fit_track(track, models[track.side], u.K, self.config, frame_size=u.frame_size)
                if fit is not None:
                    out.append((u, track, fit, models[track.side]))
        return out

    def step(self, fits: list[tuple], correction_right_m: np.ndarray) -> np.ndarray:
        """One least-squares update of the corrections with the fits held fixed."""
        H = np.zeros((21, 3, 3))
        g = np.zeros((21, 3))
        for u, track, fit, model in fits:
            kp, glob, scale, image, conf = _geometry(track, fit, model)
            mirror = keypoints.MIRROR_X if track.side == "left" else np.ones(3)
            z = kp[..., 2]
            f = u.K[[0, 1], [0, 1]]
            uv = kp[..., :2] / z[..., None] * f + u.K[:2, 2]
            err_m = (uv - image) * z[..., None] / f  # back-projected to the hand's depth
            dproj = np.zeros(kp.shape[:2] + (2, 3))
            dproj[..., 0, 0], dproj[..., 1, 1] = 1, 1
            dproj[..., 0, 2], dproj[..., 1, 2] = -kp[..., 0] / z, -kp[..., 1] / z
            J = dproj @ glob[:, model.keypoints.anchor] * mirror * scale[:, None, None, None]  # (T, 21, 2, 3)
            robust = 1 / np.sqrt(1 + (err_m**2).sum(-1) / SIGMA_ROBUST_M**2 / 2)
            w = conf * robust
            H += np.einsum("tk,tkai,tkaj->kij", w, J, J)
            g += np.einsum("tk,tkai,tka->ki", w, J, err_m)
            if u.gt_m is not None and self.gt_weight > 0:  # 3D ground truth, after the best similarity transform
                scale_pa, rot, shift = _similarity(kp[0], u.gt_m)
                err3 = scale_pa * kp[0] @ rot.T + shift - u.gt_m  # (21, 3)
                J3 = scale_pa * rot @ glob[0, model.keypoints.anchor] * mirror * scale[0]  # (21, 3, 3)
                w3 = self.gt_weight / np.sqrt(1 + (err3**2).sum(-1) / SIGMA_ROBUST_M**2 / 2)
                H += np.einsum("k,kai,kaj->kij", w3, J3, J3)
                g += np.einsum("k,kai,ka->ki", w3, J3, err3)
        prior = np.eye(3) / SIGMA_CORRECTION_M**2 * (SIGMA_ROBUST_M**2)
        reg = H + prior
        delta = -np.linalg.solve(reg, g + correction_right_m @ prior)
        return correction_right_m + delta

    def calibrate(self, units: list[Unit], iterations: int) -> tuple[np.ndarray, list[float]]:
        """Block-coordinate descent; each update is over-relaxed (RELAX x the step), as the refitted poses absorb
        about half of a correction and plain steps creep."""
        corr = np.zeros((21, 3))
        moves = []
        for _ in range(iterations):
            new = self.step(self.fits(units, corr), corr)
            moves.append(float(1000 * np.abs(new - corr).max()))
            corr = corr + RELAX * (new - corr)
        return corr, moves


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Scale, rotation, shift minimising |s R src + t - dst| (Umeyama)."""
    p, g = src - src.mean(0), dst - dst.mean(0)
    u, sv, vt = np.linalg.svd(g.T @ p)
    d = np.sign(np.linalg.det(u @ vt))
    rot = u @ np.diag([1, 1, d]) @ vt
    scale = float((sv * [1, 1, d]).sum() / (p**2).sum())
    return scale, rot, dst.mean(0) - scale * src.mean(0) @ rot.T


def _geometry(track: HandTrack, fit, model: JointModel) -> tuple:
    """Observed rows of a fit: keypoints (T, 21, 3), global rotations, size scale, detections (T, 21, 2), conf."""
    obs = fit.observed
    w = np.concatenate([fit.global_orient[:, None], fit.hand_pose.reshape(-1, 15, 3)], 1).astype(np.float64)[obs]
    betas = fit.betas.astype(np.float64)
    st = lift_solver.forward(model.skeleton, w, fit.transl.astype(np.float64)[obs], betas, jac=False)
    rows = np.searchsorted(track.frame_index, fit.frame_index[obs])
    image = track.keypoints2d[rows, :, :2].astype(np.float64)
    conf = np.repeat(np.clip(track.presence[rows].astype(np.float64), 0, 1)[:, None], 21, 1)
    scale = np.full(len(rows), 1.0 + model.keypoints.size_grad @ betas)
    return st.joints_kp, st.glob, scale, image, conf


def evaluate(fits: list[tuple]) -> dict[str, np.ndarray]:
    """Per-joint image residuals (px) of every observed frame, and PA-MPJPE (mm) with per-joint errors."""
    res, pa = [], []
    for u, track, fit, model in fits:
        kp, _, _, image, _ = _geometry(track, fit, model)
        uv = kp[..., :2] / kp[..., 2:] * u.K[[0, 1], [0, 1]] + u.K[:2, 2]
        if u.gt_m is None:
            res.append(np.linalg.norm(uv - image, axis=-1))
        else:
            pa.append(pa_mpjpe_mm(kp[0], u.gt_m))
    return {"residual_px": np.concatenate(res) if res else np.zeros((0, 21)), "pa_mpjpe_mm": np.array(pa)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hand-model", help="MANO folder (default: the open model)")
    ap.add_argument("--iterations", type=int, default=6)
    ap.add_argument("--gt-weight", type=float, default=GT_WEIGHT, help="weight of the 3D ground truth (0: 2D only)")
    ap.add_argument("--folds", type=int, default=0, help="cross-validation folds (0: leave one unit out)")
    ap.add_argument("--no-calibrate", action="store_true", help="only cross-validate (the stored file stays)")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--cache", type=Path, help="pickle of the detections, reused when present")
    args = ap.parse_args()
    data = require_shared_data()
    pin_one_core()
    torch.set_num_threads(1)
    units = load_units(data, HandModels(1, Track2DConfig().dark_crop_mean), args.cache)
    cal = Calibrator(args.hand_model, LiftConfig(), args.gt_weight)
    t0 = time.perf_counter()
    if args.no_calibrate:
        right = cal.hands["right"].info
        corr = keypoints.load_corrections(right.sha256, Path(right.path).parent)
    else:
        corr, moves = cal.calibrate(units, args.iterations)
        print(f"all data: {time.perf_counter() - t0:.0f} s, largest change per iteration (mm): {np.round(moves, 2)}")
    print("corrections (mm, right hand, anchor rest frame):")
    print(np.round(1000 * corr, 1))
    if args.write and not args.no_calibrate:
        hand = cal.hands["right"]
        note = (
            f"calibrated by benchmarks/calibrate_keypoints.py on {len(units)} units, {args.iterations} iterations, "
            f"ground-truth weight {args.gt_weight}"
        )
        path = keypoints.CALIBRATION_FILE
        if args.hand_model:
            path = Path(args.hand_model) / keypoints.LOCAL_FILE_NAME
        for side, c in (("right", corr), ("left", corr * keypoints.MIRROR_X)):
            keypoints.save_corrections(cal.hands[side].info.sha256, hand.info.name, c, f"{note}; {side}", path)
        print(f"wrote {path}")
    k = args.folds or len(units)
    folds = [[u for i, u in enumerate(units) if i % k == f] for f in range(k)]  # clips and images in every fold
    held = []
    for fold in folds:
        c, _ = cal.calibrate([v for v in units if all(v is not u for u in fold)], args.iterations)
        held.append(evaluate(cal.fits(fold, c)))
        print(f"  held out {', '.join(u.name for u in fold)}", flush=True)
        _report("  cross-validated so far", {key: np.concatenate([h[key] for h in held]) for key in held[0]})
    cv = {key: np.concatenate([h[key] for h in held]) for key in held[0]}
    _report("leave-one-out" if k == len(units) else f"{k}-fold cross-validation (each unit held out once)", cv)
    _report("uncalibrated", evaluate(cal.fits(units, np.zeros((21, 3)))))
    _report("calibrated on all (in-sample)", evaluate(cal.fits(units, corr)))


def _report(name: str, r: dict[str, np.ndarray]) -> None:
    px, pa = r["residual_px"], r["pa_mpjpe_mm"]
    line = f"{name}:"
    if len(px):
        line += f" per-joint median px {np.round(np.median(px, 0), 1).tolist()}, overall {np.median(px):.2f} px;"
    if len(pa):
        line += f" hgc PA-MPJPE mean {pa.mean():.2f} mm, median {np.median(pa):.2f} mm (n={len(pa)})"
    print(line, flush=True)


if __name__ == "__main__":
    main()
