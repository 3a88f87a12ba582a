"""The torch L-BFGS path of the fit (solver="lbfgs" or a device other than cpu): tensors, objective, result."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from enrich.constants import N_BETAS
from enrich.lift.anatomy import BONES, TRANSL_UNIT_M, unit
from enrich.lift.config import LiftConfig
from enrich.lift.joint_model import JointModel
from enrich.lift.problem import Problem, TrackRows
from enrich.records import ManoTrack


@dataclass
class TorchProblem:
    """problem.Problem's arrays as tensors of the model's device and dtype, plus the world bone directions."""

    image: torch.Tensor  # (N, 21, 2) px
    world_rel: torch.Tensor  # (N, 21, 3) wrist-relative, scale-normalised to size_ref
    world_dirs: torch.Tensor  # (N, 20, 3) unit bone directions of the world landmarks
    conf: torch.Tensor  # (N, 21)
    K: torch.Tensor  # (3, 3)
    size_ref: float  # summed bone lengths of the model's mean hand, metres
    triples: torch.Tensor  # (M, 3) rows t-1, t, t+1 of one segment, for acceleration
    axes: torch.Tensor  # (15, 3, 3)
    limits: torch.Tensor  # (15, 3, 2)
    bones: torch.Tensor  # (20, 2)
    pose_scale: torch.Tensor  # (45,) radians per unit of the optimised pose variables


def torch_problem(p: Problem, model: JointModel) -> TorchProblem:
    tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=model.dtype, device=model.device)  # noqa: E731
    index = lambda a: torch.as_tensor(a, dtype=torch.long, device=model.device)  # noqa: E731
    return TorchProblem(
        image=tensor(p.image),
        world_rel=tensor(p.world_rel),
        world_dirs=tensor(unit(p.world_rel[:, BONES[:, 1]] - p.world_rel[:, BONES[:, 0]])),
        conf=tensor(p.conf),
        K=tensor(p.K),
        size_ref=p.size_ref,
        triples=index(p.triples),
        axes=tensor(p.axes),
        limits=tensor(p.limits),
        bones=index(p.bones),
        pose_scale=tensor(p.pose_scale),
    )


def _project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    z = points[..., 2:].clamp(min=1e-3)
    return points[..., :2] / z * torch.stack([K[0, 0], K[1, 1]]) + torch.stack([K[0, 2], K[1, 2]])


def _world_residual(joints: torch.Tensor, p: TorchProblem) -> torch.Tensor:
    """(N, 21, 3) shape difference between the fitted joints and MediaPipe's world landmarks, both root-relative and
    normalised to the model's mean hand size: the world landmarks give the hand's shape, not its size (on SSv2
    they come out ~0.6x an adult hand), and the size must not be able to shrink the residual away."""
    rel = joints - joints[:, :1]
    size = _bone_length_t(rel)
    return rel / size[:, None, None] * p.size_ref - p.world_rel


def _bone_residual(joints: torch.Tensor, p: TorchProblem) -> torch.Tensor:
    """(N, 20, 3) metres: each fitted bone against the world landmarks' direction of that bone, at the fitted
    bone's length. Directions only: MediaPipe's world landmarks are neither metric nor consistent in their bone
    lengths (0.25-1x of an adult hand, bone by bone), but their directions carry the depth the image lacks."""
    vec = joints[:, p.bones[:, 1]] - joints[:, p.bones[:, 0]]
    return vec - vec.norm(dim=-1, keepdim=True) * p.world_dirs


def _bone_length_t(points_mp: torch.Tensor) -> torch.Tensor:
    bones = torch.as_tensor(BONES, device=points_mp.device)
    return (points_mp[:, bones[:, 0]] - points_mp[:, bones[:, 1]]).norm(dim=-1).sum(1).clamp(min=1e-6)


def _limit_penalty(hand_pose: torch.Tensor, p: TorchProblem) -> torch.Tensor:
    comps = torch.einsum("jab,tjb->tja", p.axes, hand_pose.reshape(-1, 15, 3))  # flex, abduction, twist
    lo, hi = p.limits[..., 0], p.limits[..., 1]
    return (torch.relu(lo - comps) ** 2 + torch.relu(comps - hi) ** 2).sum()


def _hand_pose(params: dict[str, torch.Tensor], p: TorchProblem) -> torch.Tensor:
    return params["pose_u"] * p.pose_scale


def _joints(params: dict[str, torch.Tensor], model: JointModel, p: TorchProblem) -> torch.Tensor:
    return model(params["global_orient"], _hand_pose(params, p), params["betas"], params["transl_cm"] * TRANSL_UNIT_M)


def _robust(sq: torch.Tensor) -> torch.Tensor:
    """Pseudo-Huber of a squared normalised residual: sq / 2 (Gaussian NLL) when small, linear in |r| when large."""
    return 2 * (torch.sqrt(1 + sq / 2) - 1)


def _objective(params: dict[str, torch.Tensor], model: JointModel, p: TorchProblem, c: LiftConfig) -> torch.Tensor:
    """Negative log-likelihood of the track (σ's in physical units), per frame so L-BFGS sees O(1) values."""
    joints = _joints(params, model, p)
    n = joints.shape[0]
    r2d = ((_project(joints, p.K) - p.image) ** 2).sum(-1) / c.sigma_2d_px**2
    loss = (p.conf * _robust(r2d)).sum()
    if c.world_term == "bones":
        bone_conf = p.conf[:, p.bones].min(-1).values
        r3d = _bone_residual(joints, p)
    else:
        bone_conf = p.conf
        r3d = _world_residual(joints, p)
    # depth only: across the line of sight the image is sharper than the world landmarks and they disagree
    # (~10 % of the hand's size on SSv2), so there the world term would only pull the fit off the image
    r3d = r3d[..., 2:] if c.world_depth_only else r3d
    r3d = (r3d**2).sum(-1) / c.sigma_world_m**2
    loss = loss + (bone_conf * _robust(r3d)).sum()
    pose = _hand_pose(params, p)
    loss = loss + 0.5 * (pose**2).sum() / c.sigma_pose_rad**2
    loss = loss + 0.5 * _limit_penalty(pose, p) / c.sigma_limit_rad**2
    # the shape prior counts once per frame, not once per track: MediaPipe's errors in a hand's proportions repeat
    # frame after frame, so 40 frames are not 40 independent measurements of the shape
    loss = loss + n * 0.5 * (params["betas"] ** 2).sum() / c.sigma_shape**2
    if len(p.triples):
        a, b, d = p.triples.T
        acc = joints[a] - 2 * joints[b] + joints[d]
        sq = (acc**2).sum(-1) / c.sigma_accel_m**2
        # heavy-tailed: real hands move smoothly with occasional sharp changes (a grasp, a put-down), noise does not
        loss = loss + (_robust(sq) if c.robust_accel else 0.5 * sq).sum()
    return loss / n


def _minimise(params: dict[str, torch.Tensor], model: JointModel, p: TorchProblem, c: LiftConfig) -> None:
    if c.rigid_iterations:  # placement alone first: the articulation from IK is close, the placement less so
        _lbfgs([params["global_orient"], params["transl_cm"]], params, model, p, c, c.rigid_iterations)
    _lbfgs(list(params.values()), params, model, p, c, c.iterations)


def _lbfgs(
    variables: list[torch.Tensor],
    params: dict[str, torch.Tensor],
    model: JointModel,
    p: TorchProblem,
    c: LiftConfig,
    iterations: int,
) -> None:
    opt = torch.optim.LBFGS(
        variables,
        max_iter=iterations,
        max_eval=int(1.25 * iterations) + 1,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-7,
        tolerance_change=1e-9,
        history_size=20,
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _objective(params, model, p, c)
        loss.backward()
        return loss

    opt.step(closure)


def fit_lbfgs(
    span: TrackRows, init: dict[str, np.ndarray], model: JointModel, problem: Problem, config: LiftConfig
) -> ManoTrack:
    """The L-BFGS path of fit_track: solve from ``init`` (initial.initial_params), then the fit's record. The
    variables are scaled (pose in fingertip travel, translation in cm) so L-BFGS sees similar gradients."""
    p = torch_problem(problem, model)
    tensor = lambda a: torch.as_tensor(a, dtype=model.dtype, device=model.device).requires_grad_()  # noqa: E731
    params = {
        "global_orient": tensor(init["global_orient"]),
        "pose_u": tensor(init["hand_pose"] / problem.pose_scale),
        "transl_cm": tensor(init["transl"] / TRANSL_UNIT_M),
        "betas": tensor(np.zeros(N_BETAS)),
    }
    _minimise(params, model, p, config)
    with torch.no_grad():
        loss = float(_objective(params, model, p, config))
        joints = _joints(params, model, p)
        err2d = (_project(joints, p.K) - p.image).norm(dim=-1).mean(-1).cpu().numpy()
        err3d = 1000 * _world_residual(joints, p).norm(dim=-1).mean(-1).cpu().numpy()
    out = {k: v.detach().cpu().numpy() for k, v in params.items()}
    out["transl"] = out.pop("transl_cm") * TRANSL_UNIT_M
    out["hand_pose"] = out.pop("pose_u") * problem.pose_scale
    fit = span.mano_track(out, joints.cpu().numpy(), err2d, err3d)
    return replace(fit, objective=loss, focal_px=float(problem.K[0, 0]))
