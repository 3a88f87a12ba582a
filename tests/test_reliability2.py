"""The second round of abuse (issue 17): signals from the first instruction on, write-protected and damaged
files, names that do not fit, bad box files, exit codes that match the README, and quiet output. Real CLI runs
on the bundled samples, real signals to real processes, real files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import h5py
import pytest
from conftest import REPO

import enrich
from enrich import interrupts
from enrich.cli import main
from enrich.errors import exit_code_table

NO_LIFT = ["-q", "--no-lift", "--workers", "1"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def one_clip(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    """Sample clip 2 through the 2D stage and contacts (no lift), read-only."""
    out = tmp_path_factory.mktemp("one_clip2") / "one.h5"
    boxes = ["--boxes", str(samples_dir / "something_else.json")]
    assert main(["run", str(samples_dir / "videos/2.webm"), *boxes, *NO_LIFT, "-o", str(out)]) == 0
    return out


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _enrich(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    """`enrich ARGS` as the console script runs it (python -m enrich: the same entry point)."""
    cmd = [sys.executable, "-m", "enrich", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout, **kw)


# ------------------------------------------------------------------------------------------ 1, 14: signals


def _popen(args: list[str], ignore_sigint: bool = False) -> subprocess.Popen[str]:
    def child_setup() -> None:  # bash starts a background job with SIGINT ignored
        if ignore_sigint:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(
        [sys.executable, "-m", "enrich", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
        start_new_session=True, preexec_fn=child_setup,
    )  # fmt: skip


@pytest.mark.slow
def test_sigint_at_any_moment_exits_130_and_leaves_the_overwrite_target(
    tmp_path: Path, samples_dir: Path, one_clip: Path
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(3):
        shutil.copy(samples_dir / "videos/2.webm", videos / f"{101 + i}.webm")
    before = one_clip.read_bytes()
    # the 0.1 s is measured from the shell (RESULTS-style, see the report); here 0.3 s leaves a loaded
    # test machine time to start Python: before its first instruction no process can handle a signal
    delays_s = (0.3, 0.5, 1.0, 2.0, 5.0)
    runs = []
    for k, delay in enumerate(delays_s):
        out = tmp_path / f"out{k}.h5"
        shutil.copy(one_clip, out)
        args = ["run", str(videos), "-o", str(out), *NO_LIFT, "--overwrite"]
        runs.append((delay, out, args, _popen(args, ignore_sigint=k % 2 == 0), time.monotonic()))
    for delay, _, _, proc, t0 in sorted(runs, key=lambda r: r[0]):
        time.sleep(max(0.0, t0 + delay - time.monotonic()))
        os.killpg(proc.pid, signal.SIGINT)
    for delay, out, _, proc, _ in runs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (delay, err)
        assert "Traceback" not in err and not out.with_name(out.name + ".lock").exists(), (delay, err)
        last = err.strip().splitlines()[-1]
        if "stopped before the first clip" in last:
            assert out.read_bytes() == before, delay  # --overwrite: the old file byte for byte
        else:  # stopped between clips, or after the last one (a fast machine): the file says which
            assert "resume with:" in last or last.endswith("is complete"), (delay, err)
    _, out, args, _, _ = runs[-1]
    resumed = [a for a in args if a != "--overwrite"] + ["--resume"]
    assert main(resumed) == 0
    with enrich.open_results(out) as results:  # every clip once (resume keeps the old clip 2 only if kept)
        assert sorted(set(results.video_ids) - {"2"}) == ["101", "102", "103"]
        assert len(results.video_ids) == len(set(results.video_ids))


@pytest.mark.slow
def test_a_second_sigint_says_so_in_its_own_line(tmp_path: Path, samples_dir: Path) -> None:
    out = tmp_path / "x.h5"
    proc = _popen(["run", str(samples_dir / "videos/2.webm"), "-o", str(out), *NO_LIFT])
    assert proc.stderr is not None
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)
    while "finishing the clips in progress" not in (line := proc.stderr.readline()):
        assert line, "no word after the first SIGINT"
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.stderr.read()
    proc.wait(timeout=60)
    # 130, or ended by the SIGINT itself (Python re-raises an unhandled one at exit): a shell reports 130 for both
    assert proc.returncode in (130, -signal.SIGINT) and "Traceback" not in err, (proc.returncode, err)
    assert "SIGINT again: dropping the clips in progress" in err


# ------------------------------------------------------------------------------------------ 2, 3: files kept


def test_write_protected_file_is_not_replaced_and_modes_are_kept(
    tmp_path: Path, one_clip: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "f.h5"
    shutil.copy(one_clip, f)
    f.chmod(0o444)
    before = f.read_bytes()
    for command in (["retarget", str(f)], ["lift", str(f)], ["run", str(samples_dir / "videos/2.webm"), "-o", str(f),
                                                            *NO_LIFT, "--overwrite"]):  # fmt: skip
        assert main(command) == 2, command
        assert "write-protected" in _one_line(capsys.readouterr().err)
        assert f.read_bytes() == before and f.stat().st_mode & 0o777 == 0o444
    f.chmod(0o640)
    assert main(["retarget", str(f), "-q"]) == 0
    assert f.stat().st_mode & 0o777 == 0o640  # replaced in place: its permissions stay


def test_lift_in_place_keeps_the_robot_hands(
    tmp_path: Path, one_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "f.h5"
    shutil.copy(one_clip, f)
    assert main(["lift", str(f), "-q"]) == 0
    assert main(["retarget", str(f), "-q"]) == 0
    with enrich.open_results(f) as results:
        assert "shadow" in results.robots and results.attrs["schema_version"] == 4
    capsys.readouterr()
    assert main(["lift", str(f), "-q"]) == 0
    assert "retargeted shadow again" in capsys.readouterr().out
    with enrich.open_results(f) as results:
        assert "shadow" in results.robots and results.attrs["schema_version"] == 4


# ------------------------------------------------------------------------------------------ 4, 5: no hang


@pytest.mark.slow
def test_ray_without_a_cluster_is_one_line_and_leaves_no_file(tmp_path: Path, samples_dir: Path) -> None:
    out = tmp_path / "r.h5"
    env = {k: v for k, v in ENV.items() if k != "RAY_ADDRESS"}
    clip = str(samples_dir / "videos/2.webm")
    args = ["run", clip, "-o", str(out), *NO_LIFT, "--executor", "ray", "--address", "auto"]
    done = subprocess.run([sys.executable, "-m", "enrich", *args], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and "cannot reach a Ray cluster" in _one_line(done.stderr)
    assert not out.exists() and not out.with_name("r.h5.tmp").exists()
    done = subprocess.run([sys.executable, "-m", "enrich", *args[:-4]], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr  # a plain rerun is not refused


def _killed_writer_copy(src: Path, dst: Path) -> None:
    """``src`` as a killed run leaves it: opened by a SWMR writer that never closed it."""
    shutil.copy(src, dst)
    code = f"""
import os
from pathlib import Path
from enrich.store.schema import open_swmr_write
f = open_swmr_write(Path({str(dst)!r})); f.flush(); os._exit(0)
"""
    subprocess.run([sys.executable, "-c", code], env=ENV, check=True, timeout=60)


def test_truncated_or_zero_filled_results_file_is_one_line_at_once(
    tmp_path: Path, one_clip: Path, samples_dir: Path
) -> None:
    killed = tmp_path / "killed.h5"
    _killed_writer_copy(one_clip, killed)
    data, flagged = one_clip.read_bytes(), killed.read_bytes()
    damaged = {
        "cut_2048.h5": data[:2048],
        "cut_half.h5": data[: len(data) // 2],
        "zero_tail.h5": data[:3000] + bytes(len(data) - 3000),
        "killed_cut.h5": flagged[:3000],
        "killed_zero_tail.h5": flagged[:3000] + bytes(len(flagged) - 3000),
        "zeros.h5": bytes(len(data)),
    }
    for name, content in damaged.items():
        (tmp_path / name).write_bytes(content)
        t0 = time.monotonic()
        done = _enrich("info", str(tmp_path / name), timeout=30)
        assert time.monotonic() - t0 < 10  # a hang fails here; the target (< 2 s) is met with room on a quiet core
        line = _one_line(done.stderr)
        assert done.returncode == 2 and name in line, (name, line)
        assert "truncated or damaged" in line or "not HDF5" in line, line
    code = main(["run", str(samples_dir / "videos/2.webm"), "-o", str(tmp_path / "cut_half.h5"), *NO_LIFT, "--resume"])
    assert code == 2


# ------------------------------------------------------------------------------------------ 6, 8: names, inputs


def test_any_file_name_is_a_video_id(tmp_path: Path, samples_dir: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    long_name = "bare_hand_open_close_dexretargeting_and_more"
    shutil.copy(samples_dir / "videos/2.webm", videos / f"{long_name}.webm")
    shutil.copy(samples_dir / "videos/2.webm", videos / "other.webm")
    out = tmp_path / "x.h5"
    assert main(["run", str(videos), "-o", str(out), *NO_LIFT]) == 0
    with enrich.open_results(out) as results:
        ids = results.video_ids
        assert len(ids) == 2 and "other" in ids
        short = next(i for i in ids if i != "other")
        assert short.startswith(long_name[:20]) and "~" in short and len(short.encode()) <= 32
        assert results[short].source.endswith(f"{long_name}.webm")
    assert "first bytes" in (REPO / "docs/format.md").read_text() and "~" in (REPO / "docs/format.md").read_text()


def test_missing_input_is_exit_2_before_any_model_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.h5"
    assert main(["run", str(tmp_path / "missing.webm"), "-o", str(out), *NO_LIFT]) == 2
    assert "missing.webm does not exist" in _one_line(capsys.readouterr().err)
    assert not out.exists()


# ------------------------------------------------------------------------------------------ 7: one line


def test_unwritable_outputs_are_one_line_and_show_makes_folders(
    tmp_path: Path, one_clip: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine")
    clip = str(samples_dir / "videos/2.webm")
    for command in (
        ["run", clip, *NO_LIFT, "-o", "/proc/enrich_nowhere/x.h5"],
        ["run", clip, *NO_LIFT, "-o", str(afile / "x.h5")],
        ["export", str(one_clip), "-o", str(afile)],
        ["stats", str(one_clip), "-o", str(afile), "--no-plots"],
        ["show", str(one_clip), "2", "-o", str(afile / "x.png")],
    ):
        assert main(command) == 2, command
        _one_line(capsys.readouterr().err)
    assert afile.read_text() == "mine"
    png = tmp_path / "nodir/sub/x.png"
    assert main(["show", str(one_clip), "2", "-o", str(png)]) == 0 and png.stat().st_size > 0


def test_parquet_without_pyarrow_is_one_line(
    tmp_path: Path, one_clip: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    for command in ("stats", "export"):
        assert main([command, str(one_clip), "-o", str(tmp_path / command), "--format", "parquet"]) == 2
        assert "pip install pyarrow" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------------ 9, 10, 11: inputs


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ({"box2d": "x", "standard_category": "hand", "category": "hand"}, "box2d"),
        ({"box2d": {"x1": 1, "y1": 2, "x2": 3, "y2": 4}, "standard_category": "0000", "category": 5}, "category"),
        ({"box2d": {"x1": "left", "y1": 2, "x2": 3, "y2": 4}, "standard_category": "hand"}, "box2d.x1"),
    ],
)
def test_box_files_off_the_schema_are_refused_naming_clip_and_key(
    label: dict, key: str, tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    part = tmp_path / "part.json"
    part.write_text(json.dumps({"2": [{"name": "2/0001.jpg", "labels": [label]}]}))
    out = tmp_path / "x.h5"
    code = main(["run", str(samples_dir / "videos/2.webm"), "--boxes", str(part), "-o", str(out), *NO_LIFT])
    line = _one_line(capsys.readouterr().err)
    assert code == 2 and "clip 2" in line and f"'{key}'" in line and not out.exists()


def test_index_boxes_refuses_a_clip_that_is_not_a_frame_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"2": {"frames": []}}))
    assert main(["index-boxes", str(wrong), "-o", str(tmp_path / "i.h5"), "-q"]) == 2
    assert "clip 2" in _one_line(capsys.readouterr().err) and not (tmp_path / "i.h5").exists()


def test_index_boxes_shows_progress(tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["index-boxes", str(samples_dir / "something_else.json"), "-o", str(tmp_path / "i.h5")]) == 0
    assert "something_else.json: 100%" in capsys.readouterr().err


def test_clips_missing_from_the_metadata_are_warned_about(
    tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps([m for m in json.loads((samples_dir / "ssv2_metadata.json").read_text())
                                if m["id"] != "2"]))  # fmt: skip
    out = tmp_path / "x.h5"
    assert main(["run", str(samples_dir / "videos/2.webm"), "--metadata", str(meta), "-o", str(out), *NO_LIFT]) == 0
    assert "not in the SSv2 metadata given (class -1, no template): 1 clip (e.g. 2)" in capsys.readouterr().err
    with enrich.open_results(out) as results:
        assert "not in the SSv2 metadata" in results["2"].note


def test_resume_names_what_differs_and_accepts_what_does_not(
    tmp_path: Path, one_clip: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.h5"
    shutil.copy(one_clip, out)
    boxes = ["--boxes", str(samples_dir / "something_else.json")]
    run = ["run", str(samples_dir / "videos/2.webm"), *boxes, "-o", str(out), *NO_LIFT, "--resume"]
    assert main([run[0], str(samples_dir / "videos/13201.mp4"), *run[1:], "--min-presence", "0.9"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "track2d.min_presence" in line and "0.9" in line
    assert main(run) == 0  # identical: nothing to do, said once, no workers started
    captured = capsys.readouterr()
    assert "nothing to do" in captured.out and "wrote" not in captured.out and "clips/s" not in captured.out


# ------------------------------------------------------------------------------------------ 12, 13: what is printed


def test_quiet_logs_no_projection_from_failures_or_other_videos(tmp_path: Path, samples_dir: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "5.webm").write_bytes(os.urandom(3000))
    done = _enrich("run", str(videos / "5.webm"), "-o", str(tmp_path / "a.h5"), *NO_LIFT[1:])
    assert done.returncode == 1 and "full SSv2" not in done.stdout
    assert "failed:" not in done.stdout and "failed: clip 5" in done.stderr
    shutil.copy(samples_dir / "videos/2.webm", videos / "my_own_clip.webm")
    done = _enrich("run", str(videos / "my_own_clip.webm"), "-o", str(tmp_path / "b.h5"), *NO_LIFT[1:])
    assert done.returncode == 0 and "full SSv2" not in done.stdout
    assert "XNNPACK" not in done.stderr and "INFO" not in done.stderr


def test_version_help_and_hints(one_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"enrich {enrich.__version__}"
    for command, words in (("info", "results file"), ("merge", "shard results files"), ("index-boxes", "part files")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert words in " ".join(capsys.readouterr().out.split())
    gone = str(tmp_path / "gone.webm")
    assert main(["show", str(one_clip), "2", "--source", gone, "-o", str(tmp_path / "a.png")]) == 2
    moved = tmp_path / "moved.h5"
    with h5py.File(one_clip, "r") as f:
        source = f["clips/source"][0].decode()
    assert source.endswith("2.webm")
    shutil.copy(one_clip, moved)
    with h5py.File(moved, "r+") as f:
        f["clips/source"][0] = b"/nowhere/2.webm"
    capsys.readouterr()
    assert main(["show", str(moved), "2", "-o", str(tmp_path / "b.png")]) == 2
    assert "--source" in _one_line(capsys.readouterr().err)


def test_exit_codes_of_the_readme_are_those_of_enrich_errors() -> None:
    assert exit_code_table() in (REPO / "README.md").read_text()


def test_a_second_interrupt_inside_a_callback_prints_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    """Python only prints an exception raised in a weakref callback or a finaliser ("Exception ignored in"):
    the second signal's KeyboardInterrupt landing there is dropped quietly, as STOP already ends the command."""

    def raise_interrupt(_: object) -> None:
        raise KeyboardInterrupt

    class Owner:
        pass

    with interrupts.handled() as stop:
        stop.set()
        stop.leaving = True
        owner = Owner()
        ref = weakref.ref(owner, raise_interrupt)
        del owner  # the callback raises inside CPython's unraisable path
        assert ref() is None
        assert "Traceback" not in capfd.readouterr().err
    assert not interrupts.STOP.is_set() and not interrupts.STOP.leaving
