"""Running at scale: worker processes, a clip that hangs, shards, and SIGKILL + resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import sample_copies

import enrich
from enrich.executors import LocalPool
from enrich.inputs import ClipSource, discover_clips, load_boxes, load_metadata
from enrich.pipeline import ClipProcessor, InProcess, Inputs, RunConfig, run, shard
from enrich.records import ClipMeta, ClipResult, ClipTask


class ThreadProbe:
    """A worker's processor: the real one on a real clip, then the thread pools the worker runs with."""

    def __init__(self) -> None:
        self.processor = ClipProcessor(RunConfig(lift=None))

    def __call__(self, task: ClipTask) -> ClipResult:
        import cv2
        import threadpoolctl
        import torch

        result = self.processor(task)
        pools = {info["internal_api"]: info["num_threads"] for info in threadpoolctl.threadpool_info()}
        facts = {**pools, "torch": torch.get_num_threads(), "torch_interop": torch.get_num_interop_threads()}
        facts["opencv"] = cv2.getNumThreads()
        return replace(result, notes=tuple(f"{name}={n}" for name, n in sorted(facts.items())))


@pytest.mark.slow
def test_each_worker_runs_one_thread_per_library(samples_dir: Path) -> None:
    before = os.environ.get("OMP_NUM_THREADS")
    tasks = [ClipTask(ClipSource(v, str(samples_dir / "frames" / "80962"), "frames"), None, ClipMeta(v)) for v in "ab"]
    results = list(LocalPool(ThreadProbe, workers=2).run(tasks))
    assert sorted(r.video_id for r in results) == ["a", "b"] and all(r.ok for r in results)
    for result in results:
        facts = dict(note.split("=") for note in result.notes)
        assert {"openmp", "openblas", "torch", "torch_interop", "opencv"} <= set(facts)  # torch and numpy were loaded
        assert set(facts.values()) == {"1"}, facts
    assert os.environ.get("OMP_NUM_THREADS") == before  # the parent's own environment is left as it was


def test_in_process_runs_one_thread_per_library(samples_dir: Path) -> None:
    task = ClipTask(ClipSource("a", str(samples_dir / "frames" / "80962"), "frames"), None, ClipMeta("a"))
    (result,) = InProcess(ThreadProbe).run([task])
    assert result.ok
    facts = dict(note.split("=") for note in result.notes)
    assert {"openblas", "torch", "opencv"} <= set(facts) and set(facts.values()) == {"1"}, facts


def _same_clips(a: Path, b: Path) -> None:
    """Same clips (any order), same statuses, identical per-frame arrays."""
    with enrich.open_results(a) as ra, enrich.open_results(b) as rb:
        assert sorted(ra.video_ids) == sorted(rb.video_ids)
        assert len(set(ra.video_ids)) == len(ra.video_ids)
        for vid in ra.video_ids:
            x, y = ra[vid], rb[vid]
            assert (x.status, sorted(x.hands)) == (y.status, sorted(y.hands))
            for side in x.hands:
                np.testing.assert_array_equal(x.hands[side].keypoints2d, y.hands[side].keypoints2d)
                np.testing.assert_array_equal(x.hands[side].joints3d, y.hands[side].joints3d)
            assert ra.segments(vid).equals(rb.segments(vid))


@pytest.mark.slow
def test_two_workers_write_the_same_clips_as_one(tmp_path: Path, samples_dir: Path, sample_results: Path) -> None:
    inputs = Inputs(
        discover_clips([samples_dir / "videos"], samples_dir / "frames"),
        boxes=load_boxes([samples_dir / "something_else.json"], cache_dir=tmp_path),
        metadata=load_metadata([samples_dir / "ssv2_metadata.json"]),  # the templates name the manipulated slot
    )
    two = tmp_path / "two.h5"  # against the session's one-process run of the same samples
    summary = run(inputs, two, RunConfig(), executor=LocalPool(partial(ClipProcessor, RunConfig()), workers=2))
    assert summary.ok == 3
    assert 0 < summary.startup_s < summary.wall_s  # both workers loaded their models before any clip ran
    rate = 3 / (summary.wall_s - summary.startup_s)
    assert f"start-up (workers, models): {summary.startup_s:.1f} s" in summary.lines()
    assert any(f"throughput after start-up {rate:.2f} clips/s" in line for line in summary.lines())
    _same_clips(sample_results, two)


@pytest.mark.slow
def test_a_hanging_clip_times_out_and_the_run_goes_on(tmp_path: Path, samples_dir: Path) -> None:
    videos = sample_copies(tmp_path, samples_dir, 2)
    fifo = tmp_path / "150.webm"
    os.mkfifo(fifo)  # opening a FIFO with no writer blocks forever: a real hang in the decoder
    inputs = Inputs(discover_clips([videos, fifo]))
    out = tmp_path / "out.h5"
    summary = run(
        inputs,
        out,
        RunConfig(lift=None),
        executor=LocalPool(partial(ClipProcessor, RunConfig(lift=None)), 2, timeout_s=5),
    )
    assert (summary.ok, summary.failed) == (2, 1)
    with enrich.open_results(out) as results:
        assert "timed out" in results.failed["150"] and results.failed["150"].startswith("clip 150: ")
        assert results["101"].hands


def test_shards_partition_the_clips(tmp_path: Path) -> None:
    sources = [ClipSource(str(i), f"/v/{i}.webm", "video") for i in range(500)]
    parts = [shard(sources, i, 4) for i in range(4)]
    ids = [s.video_id for part in parts for s in part]
    assert sorted(ids) == sorted(s.video_id for s in sources)  # every clip once
    assert all(len(p) > 80 for p in parts)
    assert shard(sources[::-1], 2, 4) == parts[2][::-1]  # independent of the listing order
    with pytest.raises(ValueError, match="shard 4/4"):
        shard(sources, 4, 4)


def _run_cli(videos: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "enrich.cli", "run", str(videos), "-o", str(out), "-q", "--workers", "1", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_after(proc: subprocess.Popen, out: Path, n_clips: int) -> int:
    deadline, committed = time.monotonic() + 120, 0
    while committed < n_clips and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            with enrich.open_results(out) as results:
                committed = len(results)
        except (OSError, ValueError):
            continue
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return committed


@pytest.mark.slow
def test_killed_and_resumed_runs_end_like_an_uninterrupted_one(tmp_path: Path, samples_dir: Path) -> None:
    videos = sample_copies(tmp_path, samples_dir, 4)  # 2D only: the lift is not what a kill and a resume test
    whole = tmp_path / "whole.h5"
    assert _run_cli(videos, whole, "--no-lift").wait() == 0
    out = tmp_path / "killed.h5"
    assert _kill_after(_run_cli(videos, out, "--no-lift"), out, 1) >= 1  # killed after the first clip
    assert 1 <= _kill_after(_run_cli(videos, out, "--no-lift", "--resume"), out, 2) < 4  # and again mid-way
    assert _run_cli(videos, out, "--no-lift", "--resume").wait() == 0
    _same_clips(whole, out)


def test_retry_failed_reruns_only_the_failed_clips(tmp_path: Path, samples_dir: Path) -> None:
    videos = sample_copies(tmp_path, samples_dir, 2)
    (videos / "103.webm").write_bytes(b"not a video")
    out = tmp_path / "out.h5"
    assert _run_cli(videos, out, "--no-lift").wait() == 1  # a clip failed
    with enrich.open_results(out) as results:
        assert set(results.failed) == {"103"}
        first = results["101"].hands["right"].keypoints2d
    shutil.copy(samples_dir / "videos/2.webm", videos / "103.webm")  # the user repairs the file
    cmd = [sys.executable, "-m", "enrich.cli", "run", str(videos), "-o", str(out), "-q", "--workers", "1"]
    again = subprocess.run([*cmd, "--no-lift", "--retry-failed"], capture_output=True, text=True, check=True)
    assert "clips 1: ok 1, failed 0 (2 already done, skipped)" in again.stdout  # only the failed clip ran
    with enrich.open_results(out) as results:
        assert sorted(results.video_ids) == ["101", "102", "103"] and results.failed == {}
        assert results["103"].hands
        np.testing.assert_array_equal(results["101"].hands["right"].keypoints2d, first)
