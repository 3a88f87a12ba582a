"""RayExecutor on a real local Ray head (``ray start --head`` on 127.0.0.1): same results as in-process, and
clips lost with their actor or past the timeout are retried or recorded as failed. Skipped without ``ray``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from ray import cloudpickle  # noqa: E402  (Ray's own copy)

from enrich.executor_ray import RayExecutor, _ClipActor  # noqa: E402
from enrich.inputs import ClipSource, discover_clips, load_boxes, load_metadata  # noqa: E402
from enrich.pipeline import ClipProcessor, Inputs, RunConfig, run  # noqa: E402
from enrich.records import ClipHands, ClipMeta, ClipResult, ClipTask  # noqa: E402
from enrich.store import Results  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A 2-CPU Ray head on 127.0.0.1 in its own process group and temp dir; stopped by its process group (not
    ``ray stop``, which would stop every Ray cluster of this user on the machine)."""
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray_cli is None:
        pytest.skip("the ray command is not installed")
    temp_dir = tempfile.mkdtemp(prefix="ray-")  # short: Ray's unix socket paths must stay < 108 characters
    port = _free_port()
    args = [ray_cli, "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1"]
    args += ["--num-cpus", "2", "--disable-usage-stats", "--include-dashboard", "false"]
    args += ["--dashboard-port", str(_free_port()), "--dashboard-agent-listen-port", str(_free_port())]
    args += ["--object-store-memory", str(200 * 1024**2), "--temp-dir", temp_dir]
    log = open(Path(temp_dir) / "ray_start.log", "w+")  # noqa: SIM115 - closed in teardown
    # token auth off for this private head and its driver (with a ~/.ray/auth_token left by another Ray, Ray
    # would switch it on for one side only)
    auth_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    head = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "Ray runtime started" not in Path(log.name).read_text():
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start failed:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        head.terminate()  # the blocking ``ray start`` stops its own processes on SIGTERM
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # anything of this head left in its group
        head.wait()
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)
        if auth_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = auth_mode


@pytest.fixture(scope="module")
def sample_inputs(samples_dir: Path) -> Inputs:
    return Inputs(
        discover_clips([samples_dir / "videos"], samples_dir / "frames"),
        boxes=load_boxes([samples_dir / "something_else.json"]),
        metadata=load_metadata([samples_dir / "ssv2_metadata.json"]),
    )


@pytest.mark.slow
def test_ray_run_matches_in_process(ray_head: str, sample_inputs: Inputs, tmp_path: Path, sample_results: Path) -> None:
    config = RunConfig()
    ref, out = sample_results, tmp_path / "ray.h5"  # the session's in-process run of the same samples
    t1 = time.perf_counter()
    summary = run(
        sample_inputs, out, config, executor=RayExecutor(partial(ClipProcessor, config), address=ray_head, workers=2)
    )
    t2 = time.perf_counter()
    print(f"Ray (2 actors, incl. model loading) {t2 - t1:.1f} s")
    assert (summary.ok, summary.failed) == (3, 0)
    assert not ray.is_initialized()  # the executor disconnected from the cluster it joined
    with Results(ref) as a, Results(out) as b:
        assert sorted(a.video_ids) == sorted(b.video_ids) == ["13201", "2", "80962"]
        for vid in a.video_ids:
            ra, rb = a[vid], b[vid]
            assert (ra.status, ra.error, ra.note, ra.source) == (rb.status, rb.error, rb.note, rb.source)
            assert (ra.n_frames, ra.width, ra.height, ra.meta) == (rb.n_frames, rb.width, rb.height, rb.meta)
            assert ra.hands.keys() == rb.hands.keys() and ra.hands
            for side, ha in ra.hands.items():
                hb = rb.hands[side]
                np.testing.assert_array_equal(ha.frame_index, hb.frame_index)
                np.testing.assert_array_equal(ha.keypoints2d, hb.keypoints2d)
                assert ha.fit is not None and hb.fit is not None
                np.testing.assert_array_equal(ha.fit.frame_index, hb.fit.frame_index)
                np.testing.assert_allclose(ha.fit.joints3d, hb.fit.joints3d, rtol=0, atol=1e-4)
            sa, sb = ra.contacts.segments, rb.contacts.segments
            for name in ("hand", "object_slot", "start", "end", "fingers"):
                np.testing.assert_array_equal(getattr(sa, name), getattr(sb, name), err_msg=f"{vid} {name}")


class _FlakyActor(_ClipActor):
    """No models: a clip's id says what to do: "die" (kill the worker process; "die_once" only on the first try,
    remembered in a marker file), "hang", or anything else: a one-frame ok result."""

    def __init__(self, config: RunConfig, cwd: str) -> None:
        self.cwd = cwd

    def process(self, task: ClipTask) -> ClipResult:
        vid = task.meta.video_id
        marker = Path(task.src.path)
        if vid == "die" or (vid == "die_once" and not marker.exists()):
            marker.touch()
            os._exit(3)
        if vid == "hang":
            time.sleep(600)
        return ClipResult(task.meta, task.src.path, tracks=ClipHands(vid, 1, 8, 8, 12.0), notes=task.notes)


@pytest.mark.slow
def test_lost_and_hung_clips(ray_head: str, tmp_path: Path) -> None:
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    ids = ["a", "die_once", "die", "hang", "b", "c", "d"]
    tasks = [ClipTask(ClipSource(v, str(tmp_path / v), "video"), None, ClipMeta(v), (f"note {v}",)) for v in ids]
    executor = RayExecutor(partial(ClipProcessor, RunConfig(lift=None)), address=ray_head, workers=2, timeout_s=3)
    executor._actor_cls = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_FlakyActor)
    t0 = time.perf_counter()
    results = {r.meta.video_id: r for r in executor.run(tasks)}
    print(f"7 clips with 2 worker deaths + 1 hang: {time.perf_counter() - t0:.1f} s")
    assert sorted(results) == sorted(ids)
    assert {v for v, r in results.items() if r.ok} == {"a", "die_once", "b", "c", "d"}
    assert "died twice" in results["die"].error and "\n" not in results["die"].error
    assert "timed out after 3 s" in results["hang"].error
    assert results["die"].notes == ("note die",)
    assert not ray.is_initialized()
