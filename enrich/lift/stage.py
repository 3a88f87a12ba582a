"""Lift stage: 2D hand tracks -> MANO sequences, all frames of a track fitted at once.

Camera: pinhole with OpenCV axes (x right, y down, z forward), metres. Default intrinsics: focal length
``focal_scale * max(width, height)`` px and the principal point at the image centre.

Per track: short gaps are interpolated and flagged, long gaps split it into segments that share one shape.
Initialisation: rotations by analytic inverse kinematics on MediaPipe's world landmarks, then the model's own
posed joints placed onto the image landmarks (depth from size, refined by linear PnP where the two agree).
Objective: a negative log-likelihood with σ's in physical units: robust 2D reprojection weighted by presence, the
depth of the scale-normalised world landmarks (the image is sharper across the line of sight), pose prior and
soft joint limits, a shape prior counted per frame, and heavy-tailed joint accelerations.
"""

from __future__ import annotations

from dataclasses import asdict, replace

import numpy as np
import torch

from enrich.constants import N_BETAS
from enrich.handmodel import load_hand_models
from enrich.lift.anatomy import along_view_rays
from enrich.lift.config import LiftConfig, intrinsics
from enrich.lift.initial import initial_params
from enrich.lift.joint_model import JointModel, keypoint_corrections
from enrich.lift.lbfgs import fit_lbfgs
from enrich.lift.lm import fit_lm
from enrich.lift.problem import TrackRows, track_problem
from enrich.lift.screening import (
    DETECTION_DROPPED,
    DETECTION_SPLIT,
    layout,
    observations,
    screen_detections,
    spread,
)
from enrich.records import ClipHands, HandTrack, ManoTrack


def fit_track(
    track: HandTrack,
    model: JointModel,
    K: np.ndarray,
    config: LiftConfig,
    temporal: bool = True,
    frame_size: tuple[int, int] | None = None,
    fit_focal: bool = False,
) -> ManoTrack | None:
    """Fit one 2D track (all frames at once). None when no frame carries a usable observation.
    ``frame_size``: (width, height) px, so keypoints MediaPipe placed outside the frame count less. ``fit_focal``:
    estimate the focal length about K's (prior config.sigma_log_focal; LM solver); the fit's focal_px says which."""
    status = np.zeros(len(track), np.int8)
    if config.reject_outliers:
        status = screen_detections(track, config.max_gap_frames)
    kept = status != DETECTION_DROPPED
    track = track.rows(kept)
    frames, segment, rows = layout(track.frame_index, config.max_gap_frames, status[kept] == DETECTION_SPLIT)
    image, world, conf = observations(track, rows, frame_size)
    world = along_view_rays(world, image, K) if config.view_rays else world
    seen = conf.sum(1) > 0
    usable = np.isin(segment, np.unique(segment[seen]))  # a segment with no usable frame is dropped
    frames, segment, rows, image, world, conf, seen = (
        a[usable] for a in (frames, segment, rows, image, world, conf, seen)
    )
    if not seen.any():
        return None
    segment = np.unique(segment, return_inverse=True)[1].astype(np.int16)  # renumber after dropping segments
    rest21 = model.rest21(np.zeros(N_BETAS))  # the mean shape's: initial values, scales, axes, limits
    init = initial_params(model, rest21, image, world, conf, seen, segment, K)
    problem = track_problem(image, world, conf, K, segment, rest21, track.side, config, temporal, fit_focal)
    solve = fit_lbfgs if config.uses_lbfgs else fit_lm
    fit = solve(TrackRows(track.side, frames, segment, rows, seen), init, model, problem, config)
    return replace(fit, detection_status=status, reliable=reliability(fit, track, rows, K))


RELIABLE_MIN_PRESENCE = 0.5
# calibrated on hand-graph-cnn's 20 dev images (the one wrong fit: 0.44 and 69 mm; the others <= 0.05 and 14 mm)
RELIABLE_MAX_RESIDUAL = 0.08  # mean 2D residual over the hand's image size (RMS spread of its keypoints)
RELIABLE_MAX_RESIDUAL_3D_MM = 25.0  # mean disagreement with the scale-normalised world landmarks


def reliability(fit: ManoTrack, track: HandTrack, rows: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(T,) bool: observed, MediaPipe sure a hand is there, the fit sits on the image for the hand's size and
    agrees with MediaPipe's 3D shape."""
    seen_rows = rows[fit.observed]
    size = spread(np.nan_to_num(track.keypoints2d[seen_rows, :, :2].astype(np.float64)))
    presence = np.nan_to_num(track.presence[seen_rows].astype(np.float64))
    ok = (presence >= RELIABLE_MIN_PRESENCE) & (fit.residual_2d_px[fit.observed] <= RELIABLE_MAX_RESIDUAL * size)
    ok &= fit.residual_3d_mm[fit.observed] <= RELIABLE_MAX_RESIDUAL_3D_MM
    out = np.zeros(len(fit), bool)
    out[fit.observed] = ok
    return out


# --- the stage ---


class HandFitter:
    """What a worker loads once for the lift: both sides of one hand model, as joints-only models."""

    def __init__(self, source: str | None, config: LiftConfig) -> None:
        hands = load_hand_models(source, device=config.device)
        self.joint_models = {
            side: JointModel(model, device=config.device, calibrated=config.calibrated_keypoints)
            for side, model in hands.items()
        }
        self.config = config
        # what hand_model_info says of these files, without reading them again (a relift stores it)
        self.model_info = {
            side: {**asdict(model.info), "keypoint_corrections": self.joint_models[side].keypoint_source}
            for side, model in hands.items()
        }
        if config.uses_lbfgs:  # pay torch's one-off optimiser import (~3 s: torch._dynamo) here, not in a clip
            torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])


def hand_model_info(source: str | None, calibrated_keypoints: bool = True) -> dict[str, dict]:
    """Name, sha256, path and vertex count of the hand model ``source`` resolves to, per side, and the keypoint
    corrections the lift applies to it (``keypoint_corrections``: their source, or "none")."""
    info = {}
    for side, model in load_hand_models(source).items():
        applied = keypoint_corrections(model)[1] if calibrated_keypoints else "none"
        info[side] = {**asdict(model.info), "keypoint_corrections": applied}
    return info


def lift_clip(tracks: ClipHands, fitter: HandFitter, K: np.ndarray | None = None) -> ClipHands:
    """A new ClipHands whose hand tracks carry their fits (``track.fit``) and the focal length used; the input
    records are left as they were.

    A lone hand whose handedness vote is uncertain is fitted with both sides' models and takes the side whose
    model explains it better: MediaPipe's handedness is least reliable exactly on such partial hands.
    ``K``: the camera (3, 3), used as given; default: the documented intrinsics from the frame size, whose focal
    length the fit estimates (config.sigma_log_focal > 0): a track is many views of one hand of one size, and how
    its image foreshortens against MediaPipe's 3D landmarks tells the focal length. One camera per clip: the
    longest track's estimate; another hand is refitted with it."""
    fit_focal = K is None and fitter.config.sigma_log_focal > 0 and fitter.config.solver == "lm"
    K = intrinsics(tracks.width, tracks.height, fitter.config.focal_scale) if K is None else K
    hands = _fit_hands(tracks, fitter, K, fit_focal)
    fits = [h.fit for h in hands.values() if h.fit is not None]
    if not fit_focal or not fits:
        return replace(tracks, hands=hands, focal_px=float(K[0, 0]))
    focal = max(fits, key=lambda f: int(f.observed.sum())).focal_px
    if len(fits) > 1:
        K = K.copy()
        K[0, 0] = K[1, 1] = focal
        hands = {side: h if h.fit.focal_px == focal else _refit(h, fitter, K, tracks) for side, h in hands.items()}
    return replace(tracks, hands=hands, focal_px=float(focal))


def _refit(track: HandTrack, fitter: HandFitter, K: np.ndarray, tracks: ClipHands) -> HandTrack:
    size = (tracks.width, tracks.height)
    return track.with_fit(fit_track(track, fitter.joint_models[track.side], K, fitter.config, frame_size=size))


def _fit_hands(tracks: ClipHands, fitter: HandFitter, K: np.ndarray, fit_focal: bool) -> dict[str, HandTrack]:
    hands: dict[str, HandTrack] = {}
    size = (tracks.width, tracks.height)
    for side, track in tracks.hands.items():
        fit = fit_track(track, fitter.joint_models[side], K, fitter.config, frame_size=size, fit_focal=fit_focal)
        hands[side] = track.with_fit(fit)
        other = "left" if side == "right" else "right"
        if fit is None or other in tracks.hands or _side_certainty(track) >= fitter.config.side_certainty:
            continue
        flipped = replace(track, side=other, fit=None)
        flipped_fit = fit_track(
            flipped, fitter.joint_models[other], K, fitter.config, frame_size=size, fit_focal=fit_focal
        )
        if flipped_fit is not None and flipped_fit.objective < fit.objective:
            del hands[side]
            hands[other] = flipped.with_fit(flipped_fit)
    return hands


def _side_certainty(track: HandTrack) -> float:
    """|2 P(right) - 1| of the track's presence-weighted handedness: 0 undecided, 1 certain."""
    weight = np.clip(np.nan_to_num(track.presence.astype(np.float64)), 1e-6, None)
    return float(abs(2 * np.average(np.nan_to_num(track.handedness, nan=0.5), weights=weight) - 1))
