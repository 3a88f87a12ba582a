"""Retarget a results file: every MANO track to a robot hand, stored as ``/robots/<name>`` (``enrich retarget``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from enrich.records import ClipResult, RobotTrack
from enrich.robot import RetargetConfig, RobotHand, default_config, load_robot, retarget_track
from enrich.store import RobotModelInfo, add_robot_group


def model_info(robot: RobotHand, config: RetargetConfig) -> RobotModelInfo:
    """What the results file records about the robot: joints, limits, model file and its sha256, config."""
    return RobotModelInfo(
        name=robot.name,
        joint_names=robot.joint_names,
        lower_rad=robot.lower,
        upper_rad=robot.upper,
        model_file=Path(robot.source).name,
        sha256=robot.sha256,
        config=asdict(config),
    )


def clip_robot_tracks(
    clip: ClipResult, robot: RobotHand, config: RetargetConfig, skipped: list[str] | None = None
) -> list[RobotTrack]:
    """Robot tracks of a clip's fitted hands; a track that cannot be retargeted is left out, with a one-line
    reason naming the clip appended to ``skipped``."""
    out = []
    for side, hand in clip.hands.items():
        if hand.fit is None or len(hand.fit) == 0:
            continue
        try:
            out.append(retarget_track(hand.fit, robot, config))
        except ValueError as e:
            if skipped is None:
                raise ValueError(f"clip {clip.video_id}: {e}") from None
            skipped.append(f"clip {clip.video_id}: {side} hand not retargeted ({e})")
    return out


def retarget_results(
    path: str | os.PathLike[str],
    robot: str | RobotHand = "shadow",
    out_path: str | os.PathLike[str] | None = None,
    config: RetargetConfig | None = None,
    progress: Callable[[ClipResult], None] | None = None,
) -> tuple[int, int, list[str]]:
    """Add (or replace) ``/robots/<robot>`` in the results file (or write the result to ``out_path``).

    ``robot`` is a built-in name ("shadow") or a :class:`RobotHand` loaded from the user's MJCF/URDF.
    Returns (clips, robot tracks, skipped tracks with their reasons).
    """
    hand = load_robot(robot) if isinstance(robot, str) else robot
    config = config or default_config(hand)
    skipped: list[str] = []
    n_clips, n_tracks = add_robot_group(
        path, out_path, model_info(hand, config), lambda clip: clip_robot_tracks(clip, hand, config, skipped), progress
    )
    return n_clips, n_tracks, skipped
