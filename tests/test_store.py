"""Results file: round trip, reader API, truncation, schema check, and real SIGKILL of a writing process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from enrich.records import N_KEYPOINTS, SIDES, ClipMeta, ClipTracks, HandTrack2D, ManoTrack
from enrich.store import (
    TEXT_BYTES,
    ClipRecord,
    FormatError,
    Results,
    ResultsWriter,
    WriterLockedError,
    fit_utf8,
    open_results,
    recover,
)

REPO = Path(__file__).resolve().parents[1]
V1_CLIP_COLUMNS = {
    "video_id",
    "status",
    "n_frames",
    "fps",
    "width",
    "height",
    "hand_offset",
    "hand_count",
    "class_id",
    "template",
    "label",
    "placeholders",
    "error",
    "note",
    "source",
}
CONFIG = {"detector": {"min_presence": 0.5}, "sides": list(SIDES), "path": "/data/ssv2"}
PROVENANCE = {"inputs": ["/data/ssv2/videos"], "boxes": "/data/something_else/annotations.json"}


# ----------------------------------------------------------------------------------------------- synthetic


def synthetic_track(rng: np.random.Generator, side: str, n_frames: int) -> HandTrack2D:
    frames = np.sort(rng.choice(n_frames, size=int(rng.integers(1, n_frames + 1)), replace=False))
    t = len(frames)
    return HandTrack2D(
        side=side,
        frame_index=frames.astype(np.int32),
        keypoints2d=rng.normal(100, 50, (t, N_KEYPOINTS, 3)).astype(np.float32),
        world_landmarks=rng.normal(0, 0.05, (t, N_KEYPOINTS, 3)).astype(np.float32),
        presence=rng.random(t).astype(np.float32),
        handedness=rng.random(t).astype(np.float32),
        roi_source=rng.integers(0, 3, t).astype(np.int8),
        roi=rng.normal(100, 30, (t, 5)).astype(np.float32),
    )


def synthetic_fit(rng: np.random.Generator, side: str, frames: np.ndarray) -> ManoTrack:
    """A MANO fit over the track's span: its frames observed, the frames between them interpolated."""
    span = np.arange(frames[0], frames[-1] + 1, dtype=np.int32)
    t = len(span)
    residual = rng.random(t).astype(np.float32)
    observed = np.isin(span, frames)
    return ManoTrack(
        side=side,
        frame_index=span,
        global_orient=rng.normal(0, 1, (t, 3)).astype(np.float32),
        hand_pose=rng.normal(0, 0.3, (t, 45)).astype(np.float32),
        betas=rng.normal(0, 1, 10).astype(np.float32),
        transl=rng.normal(0, 0.3, (t, 3)).astype(np.float32),
        joints3d=rng.normal(0, 0.1, (t, N_KEYPOINTS, 3)).astype(np.float32),
        residual_2d_px=np.where(observed, residual, -1).astype(np.float32),
        residual_3d_mm=np.where(observed, 10 * residual, -1).astype(np.float32),
        observed=observed,
        interpolated=~observed,
        segment=np.zeros(t, np.int16),
    )


def synthetic_clip(i: int) -> tuple[ClipMeta, ClipTracks | None, str]:
    """Clip ``i`` (deterministic): both hands, left only, none or right only; every 6th one failed."""
    rng = np.random.default_rng(i)
    vid = str(100000 + i)
    meta = ClipMeta(
        vid,
        class_id=i % 174,
        template="Putting [something] onto [something]",
        label=f"Putting pen {i} onto book",
        placeholders=(f"pen {i}", "book"),
    )
    if i % 6 == 5:
        return meta, None, f"clip {vid}: cannot decode"
    n_frames = int(rng.integers(20, 60))
    sides = [("left", "right"), ("left",), (), ("right",)][i % 4]
    hands = {side: synthetic_track(rng, side, n_frames) for side in sides}
    if i % 2 == 0:  # half the clips carry a MANO lift
        for side, track in hands.items():
            track.fit = synthetic_fit(rng, side, track.frame_index)
    return meta, ClipTracks(vid, n_frames, 427, 240, 12.0, hands, focal_px=427.0 if i % 2 == 0 else 0.0), ""


def add_synthetic(writer: ResultsWriter, i: int) -> None:
    meta, tracks, error = synthetic_clip(i)
    if error:
        writer.add(meta, None, status="failed", error=error, source=f"/v/{meta.video_id}.webm")
    else:
        writer.add(
            meta,
            tracks,
            note="no Something-Else boxes" if i % 3 == 0 else "",
            source=f"/v/{meta.video_id}.webm",
        )


def assert_same_clip(results: Results, i: int) -> None:
    check_record(results[str(100000 + i)], i)


def check_record(rec: ClipRecord, i: int) -> None:
    """``rec`` holds exactly synthetic clip ``i``."""
    meta, tracks, error = synthetic_clip(i)
    assert rec.meta == meta
    assert rec.source == f"/v/{meta.video_id}.webm"
    if error:
        assert (rec.status, rec.error, rec.hands) == ("failed", error, {})
        return
    assert (rec.status, rec.error) == ("ok", "")
    assert (rec.n_frames, rec.width, rec.height, rec.fps) == (tracks.n_frames, 427, 240, 12.0)
    assert rec.note == ("no Something-Else boxes" if i % 3 == 0 else "")
    assert sorted(rec.hands) == sorted(tracks.hands)
    for side, want in tracks.hands.items():
        got = rec.hands[side]
        assert got.side == side
        for name in (
            "frame_index",
            "keypoints2d",
            "world_landmarks",
            "presence",
            "handedness",
            "roi_source",
            "roi",
        ):
            a, b = getattr(got, name), getattr(want, name)
            assert a.dtype == b.dtype, name
            np.testing.assert_array_equal(a, b, err_msg=f"clip {i} {side} {name}")
        assert (got.fit is None) == (want.fit is None)
        if want.fit is not None:
            for name in (
                "frame_index",
                "global_orient",
                "hand_pose",
                "betas",
                "transl",
                "joints3d",
                "residual_2d_px",
                "residual_3d_mm",
                "observed",
                "interpolated",
                "segment",
            ):
                np.testing.assert_array_equal(getattr(got.fit, name), getattr(want.fit, name), err_msg=f"{i} {name}")
            assert got.mano["hand_pose"].shape == (len(want.fit), 45) and got.mano["betas"].shape == (10,)
            np.testing.assert_array_equal(got.joints3d, want.fit.joints3d)
    assert rec.focal_px == tracks.focal_px


def write_file(path: Path, n: int) -> None:
    with ResultsWriter(path, CONFIG, PROVENANCE) as w:
        for i in range(n):
            add_synthetic(w, i)


# ----------------------------------------------------------------------------------------------- round trip


def test_round_trip_arrays_metadata_and_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("enrich.store._REOPEN_EVERY_COMMITS", 5)  # the writer reopens the file twice
    path = tmp_path / "r.h5"
    write_file(path, 12)
    with h5py.File(path, "r") as f:  # closed cleanly: a plain reader opens it
        assert f["hands/keypoints2d"].dtype == np.float32
    with open_results(path) as res:
        assert res.video_ids == [str(100000 + i) for i in range(12)]
        assert len(res) == 12
        for i in range(12):
            assert_same_clip(res, i)
        records = list(res)
        assert [rec.video_id for rec in records] == res.video_ids
        for i, rec in enumerate(records):
            check_record(rec, i)


def test_zero_hands_and_single_side(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    write_file(path, 4)
    with open_results(path) as res:
        assert set(res["100000"].hands) == {"left", "right"}
        assert set(res["100001"].hands) == {"left"}
        assert res["100002"].hands == {}
        assert res["100002"].status == "ok"
        assert set(res["100003"].hands) == {"right"}
        tracks = res["100001"].tracks
        want = synthetic_clip(1)[1]
        assert (tracks.video_id, tracks.n_frames, tracks.width, tracks.height) == (
            "100001",
            want.n_frames,
            427,
            240,
        )
        np.testing.assert_array_equal(tracks.hands["left"].roi, want.hands["left"].roi)


def test_unknown_id_raises_key_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    write_file(path, 2)
    with open_results(path) as res:
        assert "100001" in res
        assert "424242" not in res
        with pytest.raises(KeyError, match="424242"):
            res["424242"]


def test_attrs_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    write_file(path, 1)
    res = open_results(path)  # usable without `with`
    attrs = res.attrs
    res.close()
    assert attrs["schema_version"] == 3
    assert attrs["config"] == CONFIG
    assert attrs["provenance"]["inputs"] == PROVENANCE["inputs"]
    assert attrs["provenance"]["boxes"] == PROVENANCE["boxes"]
    assert attrs["provenance"]["host"]
    assert isinstance(attrs["package_version"], str) and attrs["package_version"]
    assert attrs["created"].startswith(str(time.gmtime().tm_year))


def test_summary_and_failed(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    n = 13
    write_file(path, n)
    clips = [synthetic_clip(i) for i in range(n)]
    ok = [t for _, t, e in clips if not e]
    per_side = {s: sum(len(t.hands[s]) for t in ok if s in t.hands) for s in SIDES}
    with open_results(path) as res:
        summary = res.summary()
        failed = res.failed
    assert summary == {
        "clips": n,
        "ok": len(ok),
        "failed": n - len(ok),
        "frames": sum(t.n_frames for t in ok),
        "hand_frames": sum(per_side.values()),
        "clips_without_hands": sum(1 for t in ok if not t.hands),
        "mano_frames": sum(len(h.fit) for t in ok for h in t.hands.values() if h.fit is not None),
        "hand_frames_left": per_side["left"],
        "clips_with_left": sum(1 for t in ok if "left" in t.hands),
        "hand_frames_right": per_side["right"],
        "clips_with_right": sum(1 for t in ok if "right" in t.hands),
    }
    assert failed == {m.video_id: e for m, _, e in clips if e}
    assert len(failed) == 2


def test_overlong_error_is_cut_to_valid_utf8(tmp_path: Path) -> None:
    error = "décodage impossible " + "é" * 300  # 2-byte characters: a byte cut lands mid-character
    path = tmp_path / "r.h5"
    with ResultsWriter(path, {}, {}) as w:
        w.add(ClipMeta("7"), None, status="failed", error=error, note="boxes missing")
    with open_results(path) as res:
        rec = res["7"]
    raw = rec.error.encode("utf-8")
    assert len(raw) <= TEXT_BYTES["error"]
    assert len(raw) >= TEXT_BYTES["error"] - 1
    assert error.startswith(rec.error)
    assert rec.note == "boxes missing; truncated: error"
    assert fit_utf8("ab", 2) == (b"ab", False)
    assert fit_utf8("aé", 2) == (b"a", True)


def test_long_placeholders_keep_valid_json(tmp_path: Path) -> None:
    meta = ClipMeta("8", placeholders=tuple("x" * 100 for _ in range(10)))
    path = tmp_path / "r.h5"
    with ResultsWriter(path, {}, {}) as w:
        w.add(meta, ClipTracks("8", 10, 427, 240, 12.0))
    with open_results(path) as res:
        rec = res["8"]
    assert 0 < len(rec.meta.placeholders) < 10
    assert rec.meta.placeholders == meta.placeholders[: len(rec.meta.placeholders)]
    assert rec.note == "truncated: placeholders"


def test_bad_input_is_refused(tmp_path: Path) -> None:
    meta, tracks, _ = synthetic_clip(0)
    with ResultsWriter(tmp_path / "r.h5", {}, {}) as w:
        w.add(meta, tracks)
        with pytest.raises(ValueError, match="already"):
            w.add(meta, tracks)
        with pytest.raises(ValueError, match="1..32"):
            w.add(ClipMeta("9" * 33), None, status="failed", error="x")
        with pytest.raises(ValueError, match="needs tracks"):
            w.add(ClipMeta("10"), None)
        bad = HandTrack2D(**{**tracks.hands["left"].__dict__, "roi": np.zeros((1, 4), np.float32)})
        with pytest.raises(ValueError, match="roi has shape"):
            w.add(ClipMeta("11"), ClipTracks("11", 50, 427, 240, 12.0, {"left": bad}))
        assert len(w) == 1
        with pytest.raises(WriterLockedError):
            ResultsWriter(tmp_path / "r.h5", {}, {})
        w.add(ClipMeta("12"), ClipTracks("12", 5, 427, 240, 12.0))  # a refused add leaves the writer usable
    with open_results(tmp_path / "r.h5") as res:
        assert res.video_ids == ["100000", "12"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    write_file(path, 1)
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 4
    with pytest.raises(FormatError, match="schema_version 4"):
        open_results(path)
    with h5py.File(path, "w") as f:
        f["x"] = 1
    with pytest.raises(FormatError, match="not an enrich results file"):
        open_results(path)


def test_schema_1_file_names_the_upgrade(tmp_path: Path) -> None:
    """A 2D-only file from before the lift: a clear message, but the 2D tracks stay readable for `enrich lift`."""
    path = tmp_path / "old.h5"
    write_file(path, 3)
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 1
        for group in set(f) - {"clips", "hands"}:
            del f[group]
        for name in set(f["clips"]) - V1_CLIP_COLUMNS:
            del f["clips"][name]
    with pytest.raises(FormatError, match="enrich lift"):
        open_results(path)
    with Results(path, allow_2d_only=True) as res:
        assert len(res) == 3
        rec = res["100000"]
        assert rec.hands and all(h.fit is None for h in rec.hands.values())


def test_compressed_after_close_not_while_written(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    with ResultsWriter(path, {}, {}) as w:
        add_synthetic(w, 0)
        assert w._file["hands/keypoints2d"].compression is None  # rewritten chunks stay in place
    with h5py.File(path, "r") as f:
        assert f["hands/keypoints2d"].compression == "gzip"
        assert f["clips/label"].compression == "gzip"
    with open_results(path) as res:
        assert_same_clip(res, 0)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.lock"))


def test_file_being_written_does_not_grow_with_rewrites(tmp_path: Path) -> None:
    """HDF5 in SWMR mode never reuses the space of a rewritten compressed chunk: ~5x growth if compressed."""
    empty, path = tmp_path / "empty.h5", tmp_path / "r.h5"
    ResultsWriter(empty, {}, {}).close(compress=False)
    w = ResultsWriter(path, {}, {})
    for i in range(120):
        add_synthetic(w, i)
    w.close(compress=False)
    with h5py.File(path, "r") as f:
        row_bytes = {g: sum(d.dtype.itemsize * int(np.prod(d.shape[1:])) for d in f[g].values()) for g in f}
        raw = sum(row_bytes[g] * f[g][next(iter(f[g]))].shape[0] for g in f)
        assert f["hands/keypoints2d"].compression is None
    chunk_slack = 1_000_000  # last, partly filled chunk of each dataset
    assert path.stat().st_size - empty.stat().st_size < 1.2 * raw + chunk_slack


def test_error_inside_with_closes_fast_and_readable(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    with pytest.raises(KeyboardInterrupt), ResultsWriter(path, {}, {}) as w:
        add_synthetic(w, 0)
        raise KeyboardInterrupt
    with h5py.File(path, "r") as f:  # closed cleanly, left uncompressed
        assert f["hands/keypoints2d"].compression is None
    with open_results(path) as res:
        assert res.video_ids == ["100000"]


def test_recover_and_resume_clean_file(tmp_path: Path) -> None:
    path, copy = tmp_path / "r.h5", tmp_path / "copy.h5"
    write_file(path, 5)
    assert recover(path, copy) == 5
    with ResultsWriter.resume(copy) as w:
        assert w.video_ids == {str(100000 + i) for i in range(5)}
        for i in range(5, 8):
            add_synthetic(w, i)
    with open_results(copy) as res:
        assert res.video_ids == [str(100000 + i) for i in range(8)]
        for i in range(8):
            assert_same_clip(res, i)


# ----------------------------------------------------------------------------------------------- SIGKILL

_CHILD = """
import sys, time
sys.path[:0] = [{repo!r}, {tests!r}]
from test_store import CONFIG, PROVENANCE, add_synthetic
import enrich.store
from enrich.store import ResultsWriter
copy_block = enrich.store._copy_block
def copy_block_and_report(*args):
    print("copying", flush=True)  # close() is writing the compressed copy: the parent kills now
    time.sleep(1)
    return copy_block(*args)
enrich.store._copy_block = copy_block_and_report
enrich.store._REOPEN_EVERY_COMMITS = 5  # let kills land around the writer's periodic reopen too
pause_after, close_after = {pause_after}, {close_after}
w = ResultsWriter({path!r}, CONFIG, PROVENANCE)
print("ready", flush=True)
i = 0
while True:
    if i == pause_after:
        print("paused", flush=True)
        time.sleep(60)
    if i == close_after:
        print("closing", flush=True)
        w.close()
        print("closed", flush=True)
        time.sleep(60)
    add_synthetic(w, i)
    print(i, flush=True)
    i += 1
"""


def _start_writer(path: Path, pause_after: int, close_after: int = -1) -> subprocess.Popen[str]:
    """A child that adds synthetic clips, pausing (or closing) after some; -1: never."""
    code = _CHILD.format(
        repo=str(REPO), tests=str(REPO / "tests"), path=str(path), pause_after=pause_after, close_after=close_after
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def _kill(child: subprocess.Popen[str], lines_read: tuple[str, ...] = ()) -> list[int]:
    """SIGKILL the writer; the clips it reported as committed (including lines already read)."""
    os.kill(child.pid, signal.SIGKILL)
    out, _ = child.communicate()
    assert child.returncode == -signal.SIGKILL
    return [int(line) for line in [*lines_read, *out.split()] if line.isdigit()]


def _check_killed_file(path: Path, reported: list[int], mid_write: bool) -> None:
    """A kill between clips may not add one; a kill mid-write may add one committed but unreported clip."""
    if not mid_write:  # (mid-write, the kill may also land in the writer's reopen, with the file clean)
        with pytest.raises(OSError, match="h5clear"):  # the killed SWMR writer left its flag set
            h5py.File(path, "r")
    with open_results(path) as res:
        n = len(res)
        assert reported == list(range(len(reported)))
        assert n == len(reported) or (mid_write and n == len(reported) + 1)
        assert res.video_ids == [str(100000 + i) for i in range(n)]
        for i in range(n):
            assert_same_clip(res, i)
    assert recover(path) == n
    with h5py.File(path, "r") as f:  # clean again, compressed, holding exactly the committed rows
        assert f["hands/roi"].compression == "gzip"
        assert f["clips/status"].shape == (n,)
        assert f["hands/side"].shape[0] == f["clips/hand_count"][:].sum()
    with open_results(path) as res:
        assert res.video_ids == [str(100000 + i) for i in range(n)]
        for i in range(n):
            assert_same_clip(res, i)


@pytest.mark.parametrize("pause_after", [0, 1, 7, random.Random().randint(2, 30)])
def test_sigkill_between_clips(tmp_path: Path, pause_after: int) -> None:
    path = tmp_path / "killed.h5"
    child = _start_writer(path, pause_after)
    assert child.stdout is not None
    lines = [child.stdout.readline().strip() for _ in range(pause_after + 1)]
    assert lines[-1] == "paused"
    with open_results(path) as live:  # a reader can follow the running writer
        assert len(live) == pause_after
    reported = _kill(child, tuple(lines))
    assert len(reported) == pause_after
    _check_killed_file(path, reported, mid_write=False)


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_mid_write(tmp_path: Path, attempt: int) -> None:
    path = tmp_path / "killed.h5"
    child = _start_writer(path, pause_after=-1)  # writes until killed
    time.sleep(random.uniform(0.05, 0.6))
    reported = _kill(child)
    _check_killed_file(path, reported, mid_write=True)
    with ResultsWriter.resume(path) as w:  # and the run can go on where it stopped
        n = len(w)
        add_synthetic(w, n)
    with open_results(path) as res:
        assert res.video_ids[-1] == str(100000 + n)
        assert_same_clip(res, n)


def test_killed_file_attrs_and_lock_released(tmp_path: Path) -> None:
    path = tmp_path / "killed.h5"
    child = _start_writer(path, pause_after=3)
    assert child.stdout is not None
    while child.stdout.readline().strip() != "paused":
        pass
    with pytest.raises(WriterLockedError):  # the live writer holds the lock: no recover under its feet
        recover(path)
    _kill(child)
    with open_results(path) as res:
        assert res.attrs["config"] == CONFIG
        assert res.attrs["provenance"]["inputs"] == PROVENANCE["inputs"]
    assert recover(path) == 3  # the kernel dropped the dead writer's lock


def test_sigkill_while_compressing_on_close(tmp_path: Path) -> None:
    path = tmp_path / "killed.h5"
    child = _start_writer(path, pause_after=-1, close_after=300)
    assert child.stdout is not None
    lines = [child.stdout.readline().strip()]
    while lines[-1] != "copying":
        lines.append(child.stdout.readline().strip())
    reported = _kill(child, tuple(lines))
    assert len(reported) == 300
    assert (tmp_path / "killed.h5.rewrite.tmp").exists()  # the kill did land mid-copy
    with h5py.File(path, "r") as f:  # the original, closed cleanly before the copy began
        assert f["hands/roi"].compression is None
    with open_results(path) as res:
        assert res.video_ids == [str(100000 + i) for i in range(300)]
        assert_same_clip(res, 299)
    assert recover(path) == 300
    assert not (tmp_path / "killed.h5.rewrite.tmp").exists()
