"""`enrich export --format lerobot`: a LeRobot v3.0 dataset from the samples, checked against the format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import enrich
from enrich.cli import main
from enrich.lerobot import CONTACT_NAMES, FRAME_SIZE, VIDEO_KEY, export_lerobot, letterbox, task_text
from enrich.records import ClipMeta
from enrich.robot import load_robot

FRAME_COLUMNS = {"observation.state", "action", "observation.contact", "clip_frame_index", "timestamp", "frame_index",
                 "episode_index", "index", "task_index"}  # fmt: skip


@pytest.fixture(scope="module")
def dataset(sample_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("pyarrow")
    out = tmp_path_factory.mktemp("lerobot") / "allegro"
    assert main(["export", str(sample_results), "--format", "lerobot", "--robot", "allegro", "-o", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def rolled(sample_results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same export with 1 kB parquet files: every episode starts a new data and episodes file."""
    pytest.importorskip("pyarrow")
    out = tmp_path_factory.mktemp("lerobot") / "rolled"
    export_lerobot(sample_results, out, "allegro", data_file_mb=0.001)
    return out


def read_parts(root: Path, folder: str) -> tuple:
    """All parquet files of a folder in (chunk, file) order, concatenated, and the (chunk, file) of each row."""
    pd = pytest.importorskip("pandas")
    files = sorted((root / folder).glob("chunk-*/file-*.parquet"))
    parts = [pd.read_parquet(f) for f in files]
    where = [
        (int(f.parent.name[6:]), int(f.stem[5:]))
        for f, part in zip(files, parts, strict=True)
        for _ in range(len(part))
    ]
    return pd.concat(parts, ignore_index=True), where


def test_task_fills_the_template() -> None:
    meta = ClipMeta("1", template="Pushing [something] from left to right", label="pushing pen from left to right",
                    placeholders=("pen",))  # fmt: skip
    assert task_text(meta) == "Pushing pen from left to right"
    two = ClipMeta("2", template="Putting [something] onto [something else]", placeholders=("cup", "plate"))
    assert task_text(two) == "Putting cup onto plate"


def test_dataset_follows_the_format(dataset: Path, sample_results: Path) -> None:
    pd = pytest.importorskip("pandas")
    info = json.loads((dataset / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "allegro"
    robot = load_robot("allegro")
    features = info["features"]
    assert features["observation.state"]["shape"] == [robot.dof + 9] == features["action"]["shape"]
    assert features["observation.state"]["names"][: robot.dof] == list(robot.joint_names)
    assert features[VIDEO_KEY]["dtype"] == "video" and features[VIDEO_KEY]["shape"] == [*FRAME_SIZE, 3]
    assert features["observation.contact"]["names"] == list(CONTACT_NAMES)
    assert len(list((dataset / "data").glob("chunk-*/file-*.parquet"))) == 1  # the samples fit one 100 MB file
    data = pd.read_parquet(dataset / "data/chunk-000/file-000.parquet")
    assert set(data.columns) == FRAME_COLUMNS == set(features) - {VIDEO_KEY}
    assert len(data) == info["total_frames"] and (data["index"].to_numpy() == np.arange(len(data))).all()
    episodes = pd.read_parquet(dataset / "meta/episodes/chunk-000/file-000.parquet")
    tasks = pd.read_parquet(dataset / "meta/tasks.parquet")
    assert len(episodes) == info["total_episodes"] and len(tasks) == info["total_tasks"]
    assert (episodes["episode_index"].to_numpy() == np.arange(len(episodes))).all()
    stats = json.loads((dataset / "meta/stats.json").read_text())
    assert set(stats) >= {"observation.state", "action", VIDEO_KEY} and len(stats["action"]["mean"]) == robot.dof + 9
    av = pytest.importorskip("av")
    with enrich.open_results(sample_results) as results:
        fitted = {(c.video_id, s) for c in results for s, h in c.hands.items() if h.fit is not None and len(h.fit)}
        assert set(zip(episodes["video_id"], episodes["hand"], strict=True)) == fitted  # one episode per track
        for ep in episodes.itertuples(index=False):
            rows = data[data["episode_index"] == ep.episode_index]
            assert len(rows) == ep.length == ep.dataset_to_index - ep.dataset_from_index
            assert (rows["frame_index"].to_numpy() == np.arange(ep.length)).all()
            assert tasks.index[rows["task_index"].iloc[0]] == ep.tasks[0]
            record = results[ep.video_id]
            rt = record.hands[ep.hand].fit
            np.testing.assert_array_equal(rows["clip_frame_index"], rt.frame_index)
            np.testing.assert_allclose(rows["timestamp"], np.arange(ep.length) / info["fps"], atol=1e-6)
            state = np.stack(rows["observation.state"].to_numpy())
            np.testing.assert_array_equal(np.stack(rows["action"].to_numpy())[:-1], state[1:])
            assert ((state[:, : robot.dof] >= robot.lower - 1e-6) & (state[:, : robot.dof] <= robot.upper + 1e-6)).all()
            chunk, file = divmod(ep.episode_index, 1000)
            video = dataset / f"videos/{VIDEO_KEY}/chunk-{chunk:03d}/file-{file:03d}.mp4"
            with av.open(str(video)) as container:
                decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
            assert len(decoded) == ep.length and decoded[0].shape == (*FRAME_SIZE, 3)


def test_letterbox_keeps_the_picture() -> None:
    frames = np.random.default_rng(0).integers(0, 255, (2, 240, 320, 3), dtype=np.uint8)
    boxed = letterbox(frames)
    assert boxed.shape == (2, *FRAME_SIZE, 3)
    left = (FRAME_SIZE[1] - 320) // 2
    np.testing.assert_array_equal(boxed[:, :, left : left + 320], frames)
    assert boxed[:, :, :left].max() == 0


def test_export_rolls_over_into_files_and_keeps_rows(dataset: Path, rolled: Path) -> None:
    """Written clip by clip into files of a bounded size, as LeRobot rolls them: the same frames and episodes,
    each episode's rows in the data file its metadata names, and statistics aggregated from the episodes'
    equal to those of all frames (mean, std, min, max)."""
    whole, _ = read_parts(dataset, "data")
    data, data_file = read_parts(rolled, "data")
    episodes, meta_file = read_parts(rolled, "meta/episodes")
    assert len(set(data_file)) == len(episodes) > 1 and len(set(meta_file)) == len(episodes)
    for column in whole.columns:
        np.testing.assert_array_equal(np.stack(data[column].to_numpy()), np.stack(whole[column].to_numpy()))
    for i, where in enumerate(meta_file):
        ep = episodes.iloc[i]
        rows = [k for k, w in enumerate(data_file) if w == (ep["data/chunk_index"], ep["data/file_index"])]
        assert rows == list(range(ep["dataset_from_index"], ep["dataset_to_index"]))
        assert where == (ep["meta/episodes/chunk_index"], ep["meta/episodes/file_index"])
    stats = json.loads((rolled / "meta/stats.json").read_text())["observation.state"]
    state = np.stack(data["observation.state"].to_numpy()).astype(np.float64)
    np.testing.assert_allclose(stats["mean"], state.mean(0), atol=1e-6)
    np.testing.assert_allclose(stats["std"], state.std(0), atol=1e-6)
    np.testing.assert_allclose(stats["min"], state.min(0), atol=1e-6)
    np.testing.assert_allclose(stats["max"], state.max(0), atol=1e-6)
    assert stats["count"] == [len(data)]
