"""Results file: round trip, reader API, truncation, schema check, and real SIGKILL of a writing process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import downgrade_to_schema_1

from enrich.constants import N_KEYPOINTS, SIDES
from enrich.records import (
    ClipHands,
    ClipMeta,
    ClipResult,
    ContactFrames,
    ContactResult,
    ContactSegments,
    HandTrack,
    ManoTrack,
)
from enrich.store import (
    TEXT_BYTES,
    FormatError,
    Results,
    ResultsWriter,
    WriterLockedError,
    fit_utf8,
    merge,
    open_results,
    recover,
)
from enrich.store.schema import create_file, root_attrs

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"detector": {"min_presence": 0.5}, "sides": list(SIDES), "path": "/data/ssv2"}
PROVENANCE = {"inputs": ["/data/ssv2/videos"], "boxes": "/data/something_else/annotations.json"}


# ----------------------------------------------------------------------------------------------- synthetic


def synthetic_track(rng: np.random.Generator, side: str, n_frames: int) -> HandTrack:
    frames = np.sort(rng.choice(n_frames, size=int(rng.integers(1, n_frames + 1)), replace=False))
    t = len(frames)
    return HandTrack(
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


def synthetic_clip(i: int) -> tuple[ClipMeta, ClipHands | None, str]:
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
        hands = {side: track.with_fit(synthetic_fit(rng, side, track.frame_index)) for side, track in hands.items()}
    return meta, ClipHands(vid, n_frames, 427, 240, 12.0, hands, focal_px=427.0 if i % 2 == 0 else 0.0), ""


def add_synthetic(writer: ResultsWriter, i: int) -> None:
    meta, tracks, error = synthetic_clip(i)
    source = f"/v/{meta.video_id}.webm"
    if error:
        writer.add(ClipResult(meta, source, error=error))
    else:
        writer.add(ClipResult(meta, source, tracks, notes=("no Something-Else boxes",) if i % 3 == 0 else ()))


def assert_same_clip(results: Results, i: int) -> None:
    check_record(results[str(100000 + i)], i)


def check_record(rec: ClipResult, i: int) -> None:
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
    monkeypatch.setattr("enrich.store.writer._REOPEN_EVERY_COMMITS", 5)  # the writer reopens the file twice
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
        "frames_with_hand": sum(len({int(f) for h in t.hands.values() for f in h.frame_index}) for t in ok),
        "hand_box_frames": sum(int((t.contacts.hand_box_match >= 0).sum()) for t in ok if t.contacts),
        "hand_box_frames_found": sum(int(np.isin(t.contacts.hand_box_match, (0, 1)).sum()) for t in ok if t.contacts),
    }
    assert 0 < summary["frames_with_hand"] <= summary["hand_frames"]
    assert failed == {m.video_id: e for m, _, e in clips if e}
    assert len(failed) == 2


def test_overlong_error_is_cut_to_valid_utf8(tmp_path: Path) -> None:
    error = "décodage impossible " + "é" * 300  # 2-byte characters: a byte cut lands mid-character
    path = tmp_path / "r.h5"
    with ResultsWriter(path, {}, {}) as w:
        w.add(ClipResult(ClipMeta("7"), error=error, notes=("boxes missing",)))
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
        w.add(ClipResult(meta, tracks=ClipHands("8", 10, 427, 240, 12.0)))
    with open_results(path) as res:
        rec = res["8"]
    assert 0 < len(rec.meta.placeholders) < 10
    assert rec.meta.placeholders == meta.placeholders[: len(rec.meta.placeholders)]
    assert rec.note == "truncated: placeholders"


def test_bad_input_is_refused(tmp_path: Path) -> None:
    meta, tracks, _ = synthetic_clip(0)
    with ResultsWriter(tmp_path / "r.h5", {}, {}) as w:
        w.add(ClipResult(meta, tracks=tracks))
        with pytest.raises(ValueError, match="already"):
            w.add(ClipResult(meta, tracks=tracks))
        with pytest.raises(ValueError, match="1..32"):
            w.add(ClipResult(ClipMeta("9" * 33), error="x"))
        with pytest.raises(ValueError, match="tracks are for clip"):
            w.add(ClipResult(ClipMeta("10"), tracks=tracks))
        bad = HandTrack(**{**tracks.hands["left"].__dict__, "roi": np.zeros((1, 4), np.float32)})
        with pytest.raises(ValueError, match="roi has shape"):
            w.add(ClipResult(ClipMeta("11"), tracks=ClipHands("11", 50, 427, 240, 12.0, {"left": bad})))
        assert len(w) == 1
        with pytest.raises(WriterLockedError):
            ResultsWriter(tmp_path / "r.h5", {}, {})
        w.add(
            ClipResult(ClipMeta("12"), tracks=ClipHands("12", 5, 427, 240, 12.0))
        )  # a refused add leaves the writer usable
    with open_results(tmp_path / "r.h5") as res:
        assert res.video_ids == ["100000", "12"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    write_file(path, 1)
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 5  # 4 is a file with robot groups
    with pytest.raises(FormatError, match="schema_version 5"):
        open_results(path)
    with h5py.File(path, "w") as f:
        f["x"] = 1
    with pytest.raises(FormatError, match="not an enrich results file"):
        open_results(path)


def test_schema_1_file_names_the_upgrade(tmp_path: Path) -> None:
    """A 2D-only file from before the lift: a clear message, but the 2D tracks stay readable for `enrich lift`."""
    path = tmp_path / "old.h5"
    write_file(path, 3)
    downgrade_to_schema_1(path)
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
    create_file(empty, root_attrs({}, {}), compressed=False)  # what a writer starts from
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
import enrich.store.compact, enrich.store.writer
from enrich.store import ResultsWriter
copy_block = enrich.store.compact._copy_block
def copy_block_and_report(*args):
    print("copying", flush=True)  # close() is writing the compressed copy: the parent kills now
    time.sleep(1)
    return copy_block(*args)
enrich.store.compact._copy_block = copy_block_and_report
enrich.store.writer._REOPEN_EVERY_COMMITS = 5  # let kills land around the writer's periodic reopen too
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


@pytest.mark.parametrize("pause_after", [0, 1, 7, 23])
@pytest.mark.slow
def test_sigkill_between_clips(tmp_path: Path, pause_after: int) -> None:
    path = tmp_path / "killed.h5"
    child = _start_writer(path, pause_after)
    assert child.stdout is not None
    lines = [child.stdout.readline().strip() for _ in range(pause_after + 1)]
    assert lines[-1] == "paused"
    if pause_after == 0:  # nothing committed: nothing at the path yet, and a kill leaves it so
        assert not path.exists()
        assert _kill(child, tuple(lines)) == [] and not path.exists()
        return
    with open_results(path) as live:  # a reader can follow the running writer
        assert len(live) == pause_after
    reported = _kill(child, tuple(lines))
    assert len(reported) == pause_after
    _check_killed_file(path, reported, mid_write=False)


@pytest.mark.parametrize("attempt", range(3))
@pytest.mark.slow
def test_sigkill_mid_write(tmp_path: Path, attempt: int) -> None:
    path = tmp_path / "killed.h5"
    child = _start_writer(path, pause_after=-1)  # writes until killed
    time.sleep(random.Random(attempt).uniform(0.05, 0.6))  # seeded: a failure can be replayed
    reported = _kill(child)
    if not path.exists():  # killed before its first commit: nothing was placed
        assert reported == []
        return
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


@pytest.mark.slow
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


# ----------------------------------------------------------------------------------------------- merge, drop


def synthetic_contacts(i: int, n_frames: int) -> ContactResult:
    """A small deterministic ContactResult for clip ``i`` (rows in all three contact groups)."""

    rng = np.random.default_rng(1000 + i)
    n, n_seg = int(rng.integers(1, 8)), int(rng.integers(0, 3))
    frames = ContactFrames(
        frame_index=np.sort(rng.integers(0, n_frames, n)).astype(np.int32),
        hand=rng.integers(0, 3, n).astype(np.int8),
        object_slot=rng.integers(0, 5, n).astype(np.int16),
        probability=rng.random(n).astype(np.float32),
        in_contact=rng.random(n) < 0.5,
        fingers=rng.integers(0, 32, n).astype(np.uint8),
        evidence=rng.integers(0, 8, n).astype(np.uint8),
        min_tip_distance=rng.random(n).astype(np.float32),
        box_overlap=rng.random(n).astype(np.float32),
        gap_hand=rng.normal(0, 1, n).astype(np.float32),
        co_motion_logit=rng.normal(0, 1, n).astype(np.float32),
    )
    start = rng.integers(0, n_frames, n_seg).astype(np.int32)
    segments = ContactSegments(
        hand=rng.integers(0, 2, n_seg).astype(np.int8),
        object_slot=rng.integers(0, 5, n_seg).astype(np.int16),
        start=start,
        end=start + 1,
        fingers=rng.integers(0, 32, n_seg).astype(np.uint8),
    )
    return ContactResult(frames, segments, rng.integers(-1, 3, n_frames).astype(np.int8))


def write_clips(path: Path, clips: list[int], config: dict | None = None, provenance: dict | None = None) -> None:
    """Synthetic clips ``clips``; every third ok clip also carries contacts."""
    with ResultsWriter(path, config or CONFIG, provenance or PROVENANCE) as w:
        for i in clips:
            meta, tracks, error = synthetic_clip(i)
            if tracks is not None and i % 3 == 1:
                tracks = replace(tracks, contacts=synthetic_contacts(i, tracks.n_frames))
                w.add(ClipResult(meta, f"/v/{meta.video_id}.webm", tracks))
            else:
                add_synthetic(w, i)


def _columns(path: Path) -> dict[str, dict[str, np.ndarray]]:
    with h5py.File(path, "r") as f:
        return {g: {name: ds[:] for name, ds in f[g].items()} for g in f if isinstance(f[g], h5py.Group)}


def test_merge_of_shards_equals_one_file(tmp_path: Path) -> None:
    parts = [list(range(0, 7)), list(range(7, 8)), list(range(8, 20))]
    shards = [tmp_path / f"shard{k}.h5" for k in range(3)]
    for k, (path, clips) in enumerate(zip(shards, parts, strict=True)):
        write_clips(path, clips, provenance={**PROVENANCE, "shard": f"{k}/3"})
    whole, merged = tmp_path / "whole.h5", tmp_path / "merged.h5"
    write_clips(whole, list(range(20)))
    assert merge(merged, shards) == 20
    with open_results(merged) as res:
        assert res.video_ids == [str(100000 + i) for i in range(20)]
        for i, rec in enumerate(res):
            if i % 3 != 1:  # check_record knows clips without contacts
                check_record(rec, i)  # every array, MANO fits included
        want = synthetic_contacts(7, synthetic_clip(7)[1].n_frames)  # a shard of one clip, with contacts
        got = res["100007"].contacts
        np.testing.assert_array_equal(got.frames.probability, want.frames.probability)
        np.testing.assert_array_equal(got.segments.start, want.segments.start)
        np.testing.assert_array_equal(got.hand_box_match, np.where(want.hand_box_match >= 0, want.hand_box_match, -1))
        attrs = res.attrs
        assert attrs["config"] == CONFIG and attrs["schema_version"] == 3
        assert attrs["provenance"]["shards"] == [str(p.resolve()) for p in shards]
        assert [s["provenance"]["shard"] for s in attrs["provenance"]["shard_provenance"]] == ["0/3", "1/3", "2/3"]
        assert [s["clips"] for s in attrs["provenance"]["shard_provenance"]] == [7, 1, 12]
    a, b = _columns(whole), _columns(merged)  # bit for bit the same columns, offsets rebased
    assert a.keys() == b.keys()
    for group in a:
        assert a[group].keys() == b[group].keys()
        for name in a[group]:
            np.testing.assert_array_equal(a[group][name], b[group][name], err_msg=f"{group}/{name}")
    with h5py.File(merged, "r") as f:  # compressed like a finished file
        assert f["hands/keypoints2d"].compression == "gzip" and f["mano/hand_pose"].compression == "gzip"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["merged.h5", "whole.h5", *(p.name for p in shards)])


def test_merge_reads_committed_clips_of_killed_shard(tmp_path: Path) -> None:
    done, killed = tmp_path / "a.h5", tmp_path / "b.h5"
    write_clips(done, [0, 1, 2])
    w = ResultsWriter(killed, CONFIG, PROVENANCE)
    for i in (3, 4):
        add_synthetic(w, i)
    w._file.close()  # as if killed: no compress, lock left
    w._lock.release()
    assert merge(tmp_path / "m.h5", [done, killed]) == 5
    with open_results(tmp_path / "m.h5") as res:
        for i in range(5):
            assert_same_clip(res, i)


def test_merge_refuses_duplicate_ids(tmp_path: Path) -> None:
    a, b, out = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "m.h5"
    write_clips(a, [0, 1, 2, 3])
    write_clips(b, [2, 3, 4])
    with pytest.raises(ValueError, match=r"2 video ids .*100002 \(.*a\.h5, .*b\.h5\); 100003") as info:
        merge(out, [a, b])
    assert "\n" not in str(info.value)
    assert not out.exists() and not (tmp_path / "m.h5.merge.tmp").exists()


def test_merge_refuses_config_or_schema_mismatch(tmp_path: Path) -> None:
    a, b, c, out = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "c.h5", tmp_path / "m.h5"
    write_clips(a, [0, 1])
    write_clips(b, [2, 3], config={**CONFIG, "detector": {"min_presence": 0.6}})
    write_clips(c, [4], provenance={"host": "elsewhere"})  # provenance may differ
    with pytest.raises(ValueError, match=r"cannot merge .*b\.h5 with .*a\.h5: .*differs in detector"):
        merge(out, [a, c, b])
    with h5py.File(c, "r+") as f:
        f.attrs["schema_version"] = 2
    with pytest.raises(FormatError, match=r"schema_version: .*a\.h5 3, .*c\.h5 2"):
        merge(out, [a, c])
    assert not out.exists()
    with pytest.raises(ValueError, match="output is one of the shards"):
        merge(a, [a, c])


def test_resume_with_drop_removes_clips_and_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    write_clips(path, list(range(12)))
    drop = {str(100000 + i) for i in (0, 5, 6, 10)}  # first, a failed one, a lifted one, one with contacts
    with open_results(path) as res:
        want = res.summary()
        dropped = [res[vid] for vid in sorted(drop)]
    hand_rows = sum(len(t) for rec in dropped for t in rec.hands.values())
    mano_rows = sum(len(t.fit) for rec in dropped for t in rec.hands.values() if t.fit is not None)
    contact_rows = len(synthetic_contacts(10, synthetic_clip(10)[1].n_frames).frames)
    with h5py.File(path, "r") as f:
        n_contacts = f["contacts/frame_index"].shape[0]
    with ResultsWriter.resume(path, drop=[*drop, "not-in-file"]) as w:
        assert w.video_ids == {str(100000 + i) for i in range(12)} - drop
        with open_results(path) as res:
            assert res.video_ids == [str(100000 + i) for i in range(12) if str(100000 + i) not in drop]
            for vid in res.video_ids:
                assert_same_clip(res, int(vid) - 100000)
            got = res.summary()
        assert got["hand_frames"] == want["hand_frames"] - hand_rows
        assert got["mano_frames"] == want["mano_frames"] - mano_rows
        with h5py.File(path, "r", swmr=True) as f:  # no orphan rows left behind
            assert f["hands/side"].shape[0] == got["hand_frames"]
            assert f["mano/side"].shape[0] == got["mano_frames"]
            assert f["contacts/frame_index"].shape[0] == n_contacts - contact_rows
        for i in (0, 5, 6, 10):
            add_synthetic(w, i)  # dropped ids can be added again
    with open_results(path) as res:
        assert sorted(res.video_ids) == [str(100000 + i) for i in range(12)]
        got = res.summary()
        for i in range(12):
            assert_same_clip(res, i)
    box_frames = synthetic_contacts(10, synthetic_clip(10)[1].n_frames).hand_box_match  # clip 10 is back without it
    assert got.pop("hand_box_frames") == want.pop("hand_box_frames") - int((box_frames >= 0).sum())
    matched = int(np.isin(box_frames, (0, 1)).sum())
    assert got.pop("hand_box_frames_found") == want.pop("hand_box_frames_found") - matched
    assert got == want


def test_resume_dropping_nothing_keeps_file(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    write_clips(path, [0, 1, 2])
    ResultsWriter.resume(path).close(compress=False)  # uncompressed, closed cleanly: appendable as is
    inode = path.stat().st_ino
    with ResultsWriter.resume(path, drop=["absent"]) as w:  # appendable as is: no rewrite
        assert path.stat().st_ino == inode
        w.close(compress=False)
    with ResultsWriter.resume(path, drop=()) as w:
        assert path.stat().st_ino == inode and len(w) == 3
