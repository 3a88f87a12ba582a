"""Robot tracks in results files: enrich retarget, reading them back, export, show --robot, merge and rewrite."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

import enrich
from enrich.cli import main
from enrich.errors import UsageError
from enrich.retarget_file import clip_robot_tracks, model_info, retarget_results
from enrich.robot import RetargetConfig, load_robot, retarget_track
from enrich.store import add_robot_group, merge, recover


@pytest.fixture(scope="module")
def retargeted(sample_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's sample results with a shadow robot group, by the CLI."""
    path = tmp_path_factory.mktemp("retarget") / "samples_robot.h5"
    shutil.copy(sample_results, path)
    assert main(["retarget", str(path), "--robot", "shadow", "-q"]) == 0
    return path


def test_retarget_stores_what_the_solver_gives(retargeted: Path, sample_results: Path) -> None:
    robot = load_robot("shadow")
    with enrich.open_results(retargeted) as results, enrich.open_results(sample_results) as before:
        assert results.attrs["schema_version"] == 4 and before.attrs["schema_version"] == 3
        info = results.robots["shadow"]
        assert info.joint_names == robot.joint_names and info.sha256 == robot.sha256
        np.testing.assert_array_equal(info.lower_rad, robot.lower)
        np.testing.assert_array_equal(info.upper_rad, robot.upper)
        n_tracks = 0
        for clip, original in zip(results, before, strict=True):
            assert clip.video_id == original.video_id
            for side, hand in clip.hands.items():
                if hand.fit is None:
                    assert not hand.robots
                    continue
                rt = hand.robot("shadow")
                expected = retarget_track(original.hands[side].fit, robot)
                np.testing.assert_array_equal(rt.frame_index, hand.fit.frame_index)
                np.testing.assert_allclose(rt.angles_rad, expected.angles_rad, atol=1e-6)
                np.testing.assert_allclose(rt.residual_mm, expected.residual_mm, rtol=1e-5)
                assert rt.angles_rad.shape == (len(hand.fit), robot.dof) and rt.mirrored == (side == "left")
                q = rt.angles_rad.astype(np.float64)
                assert ((q >= info.lower_rad) & (q <= info.upper_rad)).all()
                n_tracks += 1
                # the rest of the clip is as it was
                np.testing.assert_array_equal(hand.keypoints2d, original.hands[side].keypoints2d)
    assert n_tracks >= 3
    with h5py.File(retargeted, "r") as f:
        group = f["robots/shadow"]
        assert group.attrs["units"] == "rad" and group["angles_rad"].shape[1] == robot.dof
        assert int(group["clip_count"][:].sum()) == group["angles_rad"].shape[0]


def test_retarget_again_replaces_and_keeps_other_robots(retargeted: Path, tmp_path: Path) -> None:
    path = tmp_path / "two.h5"
    shutil.copy(retargeted, path)
    twin = dataclasses.replace(load_robot("shadow"), name="shadow_soft")
    soft = RetargetConfig(accel_weight_m_per_rad=0.05)
    retarget_results(path, twin, config=soft)
    retarget_results(path, "shadow")  # replaces the shadow group, keeps shadow_soft
    with enrich.open_results(path) as results, enrich.open_results(retargeted) as once:
        assert set(results.robots) == {"shadow", "shadow_soft"}
        assert results.robots["shadow_soft"].config["accel_weight_m_per_rad"] == 0.05
        for clip, first in zip(results, once, strict=True):
            for side, hand in clip.hands.items():
                if "shadow" in first.hands[side].robots:
                    a, b = hand.robot("shadow"), first.hands[side].robot("shadow")
                    np.testing.assert_array_equal(a.angles_rad, b.angles_rad)  # replaced, not appended
                    assert hand.robot("shadow_soft").angles_rad.shape == a.angles_rad.shape


def test_a_failing_retarget_leaves_the_file_untouched(sample_results: Path, tmp_path: Path) -> None:
    path = tmp_path / "keep.h5"
    shutil.copy(sample_results, path)
    before = path.read_bytes()
    calls = []

    def broken(clip: enrich.records.ClipResult) -> list:
        calls.append(clip.video_id)
        if len(calls) == 2:
            raise RuntimeError("killed halfway")
        return []

    with pytest.raises(RuntimeError, match="killed halfway"):
        add_robot_group(path, None, model_info(load_robot("shadow"), RetargetConfig()), broken)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.h5"]  # no temporary or lock file left


def test_a_broken_fit_is_skipped_with_its_clip_named(sample_results: Path) -> None:
    with enrich.open_results(sample_results) as results:
        clip = results["2"]
    hand = clip.hands["right"]
    joints = hand.fit.joints3d.copy()
    joints[3, 8] = np.nan
    broken_hand = dataclasses.replace(hand, fit=dataclasses.replace(hand.fit, joints3d=joints))
    broken = dataclasses.replace(clip, tracks=dataclasses.replace(clip.tracks, hands={"right": broken_hand}))
    skipped: list[str] = []
    assert clip_robot_tracks(broken, load_robot("shadow"), RetargetConfig(), skipped) == []
    assert len(skipped) == 1 and skipped[0].startswith("clip 2: right hand") and "non-finite" in skipped[0]
    with pytest.raises(ValueError, match="^clip 2: right track: non-finite"):
        clip_robot_tracks(broken, load_robot("shadow"), RetargetConfig())


def test_merge_refuses_and_rewrites_drop_robot_groups(retargeted: Path, sample_results: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="hold robot tracks"):
        merge(tmp_path / "merged.h5", [retargeted])
    out = tmp_path / "recovered.h5"
    recover(retargeted, out)
    with enrich.open_results(out) as results:
        assert results.robots == {} and results.attrs["schema_version"] == 3
        assert all(not hand.robots for clip in results for hand in clip.hands.values())


def test_export_carries_robot_angles(retargeted: Path, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    assert main(["export", str(retargeted), "-o", str(tmp_path)]) == 0
    assert main(["export", str(retargeted), "--format", "parquet", "-o", str(tmp_path)]) == 0
    table = pd.read_parquet(tmp_path / "robot_shadow.parquet")
    with enrich.open_results(retargeted) as results:
        rt = results["2"].hands["right"].robot("shadow")
    archive = np.load(tmp_path / "2.npz")
    np.testing.assert_array_equal(archive["right_robot_shadow_angles_rad"], rt.angles_rad)
    assert tuple(archive["right_robot_shadow_joint_names"]) == rt.joint_names
    mine = table[(table["video_id"] == "2") & (table["hand"] == "right")]
    np.testing.assert_array_equal(mine["frame_index"], rt.frame_index)
    np.testing.assert_array_equal(mine[list(rt.joint_names)].to_numpy(), rt.angles_rad)


def test_cli_show_draws_the_stored_robot(retargeted: Path, tmp_path: Path) -> None:
    from enrich.show import DEFAULT_SCALE, PANEL_WIDTH

    out = tmp_path / "robot.png"
    assert main(["show", str(retargeted), "2", "--robot", "shadow", "-o", str(out)]) == 0
    plain = tmp_path / "plain.png"
    assert main(["show", str(retargeted), "2", "-o", str(plain)]) == 0
    sheet, without = cv2.imread(str(out)), cv2.imread(str(plain))
    with enrich.open_results(retargeted) as results:
        frame_w = results["2"].width * DEFAULT_SCALE
    width = frame_w + PANEL_WIDTH
    tiles = round(sheet.shape[1] / (width + frame_w))
    assert sheet.shape[1] == tiles * (width + frame_w) and without.shape[1] == tiles * width
    panel = sheet[:, width : width + frame_w]  # the first tile's robot panel: frame 0, right hand seen
    # the robot (rendered or drawn) over the dimmed frame: brighter than the dimmed frame can be
    assert (panel[40:].max(axis=-1) > 140).sum() > 300  # below the text lines
    assert main(["show", str(retargeted), "2", "--robot", "nosuchhand", "-o", str(tmp_path / "x.png")]) == 2
