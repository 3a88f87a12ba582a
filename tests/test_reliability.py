"""Never lose a results file, never show a traceback: existing outputs, interrupts, user errors, exit codes,
end-of-run warnings, stored paths, and the small things of issue 10 (real CLI runs on the bundled samples)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from conftest import REPO, sample_copies

import enrich
from enrich.cli import main
from enrich.records import ClipResult
from enrich.store import ResultsWriter

NO_LIFT = ["-q", "--no-lift", "--workers", "1"]


def _samples_args(samples_dir: Path) -> list[str]:
    return [
        "--boxes", str(samples_dir / "something_else.json"), "--metadata", str(samples_dir / "ssv2_metadata.json"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def one_clip(tmp_path_factory: pytest.TempPathFactory, samples_dir: Path) -> Path:
    """Sample clip 2 through the 2D stage and contacts (no lift): a small real results file, read-only."""
    out = tmp_path_factory.mktemp("one_clip") / "one.h5"
    assert main(["run", str(samples_dir / "videos/2.webm"), *_samples_args(samples_dir), *NO_LIFT, "-o", str(out)]) == 0
    return out


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("INFO:")]
    assert len(lines) == 1, err
    return lines[0]


def _ids(path: Path) -> list[str]:
    with enrich.open_results(path) as results:
        return results.video_ids


# ------------------------------------------------------------------------------------------ existing outputs


def test_existing_output_is_refused_without_resume_or_overwrite(
    tmp_path: Path, one_clip: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.h5"
    shutil.copy(one_clip, out)
    before = out.read_bytes()
    code = main(["run", str(samples_dir / "videos/13201.mp4"), *NO_LIFT, "-o", str(out)])
    line = _one_error_line(capsys)
    assert code == 2 and "--resume" in line and "--overwrite" in line and str(out) in line
    assert out.read_bytes() == before  # A's clips are still there
    code = main(["run", str(samples_dir / "videos/13201.mp4"), *NO_LIFT, "-o", str(out), "--resume", "--overwrite"])
    assert code == 2 and "contradict" in _one_error_line(capsys)


def test_overwrite_replaces_only_once_the_new_run_commits(tmp_path: Path, one_clip: Path, samples_dir: Path) -> None:
    out = tmp_path / "a.h5"
    shutil.copy(one_clip, out)
    with enrich.open_results(one_clip) as old:
        config, first = old.attrs["config"], old["2"]
    writer = ResultsWriter(out, config, {})  # what --overwrite opens: nothing committed yet
    assert _ids(out) == ["2"]  # a kill now loses nothing
    writer.close(compress=False)  # an interrupt before the first clip
    assert _ids(out) == ["2"] and not out.with_name("a.h5.tmp").exists()
    with ResultsWriter(out, config, {}) as writer:
        writer.add(ClipResult(first.meta, "", error="clip 2: replaced"))
        with enrich.open_results(out) as new:  # in place at its first commit
            assert new.failed == {"2": "clip 2: replaced"}
    code = main(["run", str(samples_dir / "videos/13201.mp4"), *NO_LIFT, "-o", str(out), "--overwrite"])
    assert code == 0 and _ids(out) == ["13201"]


def test_a_file_that_is_not_results_is_never_written_into(
    tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str], one_clip: Path
) -> None:
    victim = tmp_path / "victim.json"
    victim.write_text('{"my": "notes"}')
    clip = str(samples_dir / "videos/2.webm")
    for command in (
        ["run", clip, *NO_LIFT, "-o", str(victim)],
        ["run", clip, *NO_LIFT, "-o", str(victim), "--overwrite"],
        ["run", clip, *NO_LIFT, "-o", str(victim), "--resume"],
        ["contacts", "--boxes", str(samples_dir / "something_else.json"), "-q", "-o", str(victim), "--overwrite"],
        ["merge", str(victim), str(one_clip), "--overwrite"],
        ["index-boxes", str(samples_dir / "something_else.json"), "-o", str(victim)],
    ):
        assert main(command) == 2, command
        line = _one_error_line(capsys)
        assert "not an enrich results file" in line or "not a box index" in line
        assert victim.read_text() == '{"my": "notes"}'


# ------------------------------------------------------------------------------------------ interrupts


def _start(out: Path, videos: Path, workers: int, *extra: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "enrich.cli", "run", str(videos), "-o", str(out), *NO_LIFT[:2]]
    cmd += ["--workers", str(workers), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)  # fmt: skip


def _wait_for_commits(proc: subprocess.Popen[str], out: Path, n_clips: int) -> None:
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            with enrich.open_results(out) as results:
                if len(results) >= n_clips:
                    return
        except (OSError, ValueError):
            continue  # being created
    raise AssertionError(f"no {n_clips} clips committed: {proc.communicate()}")


def _check_stopped_cleanly(out: Path, err: str) -> str:
    """No traceback, no lock left, a cleanly closed file; the last line says how to resume."""
    assert "Traceback" not in err, err
    assert not out.with_name(out.name + ".lock").exists()
    with h5py.File(out, "r"):  # a plain open works: the SWMR writer closed the file
        pass
    return err.strip().splitlines()[-1]


@pytest.mark.slow
def test_sigint_with_two_workers_commits_finished_clips_and_says_how_to_resume(
    tmp_path: Path, samples_dir: Path
) -> None:
    videos, out = sample_copies(tmp_path, samples_dir, 8), tmp_path / "out.h5"
    proc = _start(out, videos, workers=2)
    _wait_for_commits(proc, out, 1)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    last = _check_stopped_cleanly(out, err)
    n_done = len(_ids(out))
    assert 1 <= n_done < 8 and f"{n_done} clips done in {out} ({n_done} this run)" in last
    resume = ["enrich", "run", str(videos), "-o", str(out), "-q", "--no-lift", "--workers", "2", "--resume"]
    assert last.endswith(f"resume with: {shlex.join(resume)}")


@pytest.mark.slow
def test_sigterm_twice_drops_the_clip_in_progress_and_the_printed_command_resumes(
    tmp_path: Path, samples_dir: Path
) -> None:
    videos, out = sample_copies(tmp_path, samples_dir, 3), tmp_path / "out.h5"
    proc = _start(out, videos, workers=1)
    _wait_for_commits(proc, out, 1)
    proc.terminate()
    assert proc.stderr is not None
    while "finishing the clips in progress" not in (line := proc.stderr.readline()):
        assert line, "no word after SIGTERM"
    proc.terminate()  # a second signal: leave now
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert proc.returncode == 143
    last = _check_stopped_cleanly(out, err)
    assert f"{len(_ids(out))} clips done" in last
    command = shlex.split(last.split("resume with: ", 1)[1])
    assert command[0] == "enrich" and command[-1] == "--resume"
    assert main(command[1:]) == 0  # the printed command finishes the run
    assert sorted(_ids(out)) == ["101", "102", "103"]


@pytest.mark.slow
def test_interrupt_before_the_first_clip_leaves_the_file_to_overwrite_as_it_was(
    tmp_path: Path, samples_dir: Path, one_clip: Path
) -> None:
    out = tmp_path / "a.h5"
    shutil.copy(one_clip, out)
    before = out.read_bytes()
    proc = _start(out, sample_copies(tmp_path, samples_dir, 2), 1, "--overwrite")
    new = out.with_name("a.h5.tmp")  # the new run's file, waiting for its first clip
    deadline = time.monotonic() + 60
    while not new.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert out.read_bytes() == before and not new.exists()
    assert f"stopped before the first clip; {out} is unchanged" in _check_stopped_cleanly(out, err)


# ------------------------------------------------------------------------------------------ errors and exit codes


@pytest.mark.parametrize("command", ["info", "stats", "lift", "export"])
def test_unreadable_results_file_is_one_line(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    not_hdf5 = tmp_path / "notes.json"
    not_hdf5.write_text("{}")
    for path, cause in ((tmp_path / "nothere.h5", "no results file"), (not_hdf5, "not an enrich results file")):
        assert main([command, str(path)]) == 2
        assert cause in _one_error_line(capsys)


def test_resume_onto_a_broken_file_and_unknown_clip_are_one_line(
    tmp_path: Path, one_clip: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["run", str(samples_dir / "videos/2.webm"), *NO_LIFT, "-o", str(broken), "--resume"]) == 2
    assert str(broken) in _one_error_line(capsys)
    assert main(["show", str(one_clip), "999", "-o", str(tmp_path / "x.png")]) == 2
    assert "999" in _one_error_line(capsys)


def test_second_writer_on_a_locked_file_is_one_line(
    tmp_path: Path, one_clip: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "busy.h5"
    shutil.copy(one_clip, out)
    with ResultsWriter.resume(out):  # another run holds the file
        code = main(["run", str(samples_dir / "videos/13201.mp4"), *NO_LIFT, "-o", str(out), "--resume"])
    assert code == 2 and "being written by another process" in _one_error_line(capsys)


@pytest.mark.parametrize(
    "bad", [["--shard", "abc"], ["--shard", "4/4"], ["--workers", "0"], ["--workers", "-1"], ["--timeout", "0"]]
)
def test_bad_arguments_are_refused_in_one_line(bad: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", *bad])
    assert exit_.value.code == 2
    line = _one_error_line(capsys)
    assert bad[0] in line and "invalid literal" not in line


def test_failed_clips_exit_1_and_cleaning_is_summarised(
    tmp_path: Path, samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(samples_dir / "videos/2.webm", videos / "2.webm")
    shutil.copy(samples_dir / "videos/2.webm", videos / "7.webm")  # no boxes for 7
    (videos / "5.webm").write_bytes(os.urandom(3000))  # fails
    frames = json.loads((samples_dir / "something_else.json").read_text())["2"]
    frames[0]["labels"][0]["box2d"].update(x1=-30.0, x2=900.0)  # outside the 427 px frame
    box = frames[1]["labels"][0]["box2d"]
    box["x1"], box["x2"] = box["x2"], box["x1"]  # flipped
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"2": frames}))
    metadata = tmp_path / "meta.json"
    meta = json.loads((samples_dir / "ssv2_metadata.json").read_text())[:1]
    meta[0]["label"] = "a pillow " * 80  # 720 bytes: longer than the label column
    metadata.write_text(json.dumps(meta))
    out = tmp_path / "out.h5"
    code = main(["run", str(videos), "--boxes", str(boxes), "--metadata", str(metadata), *NO_LIFT, "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "failed: clip 5:" in captured.err and "failed:" not in captured.out  # failures: stderr only
    err = captured.err
    assert "1 of 3 clips failed" in err and f"enrich info {out}" in err
    assert "outside the frame or the clip (clipped or dropped): 1 clip, 1 box (e.g. 2)" in err
    assert "x2 < x1 or y2 < y1 (corners put in order): 1 clip, 1 box (e.g. 2)" in err
    assert "no Something-Else boxes (palm detector and tracking only): 1 clip (e.g. 7)" in err
    assert "text cut to fit the file: 1 clip (e.g. 2)" in err
    with enrich.open_results(out) as results:
        assert "truncated: label" in results["2"].note and "1 swapped boxes" in results["2"].note


# ------------------------------------------------------------------------------------------ paths, small things


def test_sources_are_stored_absolute_and_show_works_from_elsewhere(
    tmp_path: Path, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "clips").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(samples_dir / "videos/2.webm", work / "clips/2.webm")
    monkeypatch.chdir(work)
    assert main(["run", "clips/2.webm", *NO_LIFT, "-o", "out.h5"]) == 0
    monkeypatch.chdir(elsewhere)
    with enrich.open_results(work / "out.h5") as results:
        assert results["2"].source == str(work / "clips/2.webm")
    assert main(["show", str(work / "out.h5"), "2", "-o", "clip.png"]) == 0
    assert (elsewhere / "clip.png").stat().st_size > 0


def test_results_is_a_mapping_of_video_ids(one_clip: Path) -> None:
    with enrich.open_results(one_clip) as results:
        assert len(results) == 1 and "2" in results and "3" not in results
        assert list(results.keys()) == results.video_ids == ["2"]
        assert [clip.video_id for clip in results] == ["2"]
    readme = (REPO / "README.md").read_text()
    assert "video_ids" in readme and "len(results)" in readme


def test_per_clip_table_names_its_clips_and_the_legend_leaves_the_bars_free(tmp_path: Path, one_clip: Path) -> None:
    import pandas as pd

    from enrich.stats import per_class_figure, results_stats

    assert main(["stats", str(one_clip), "-o", str(tmp_path / "stats")]) == 0
    per_clip = pd.read_csv(tmp_path / "stats/per_clip.csv", dtype={"video_id": str})
    assert list(per_clip["video_id"]) == ["2"]
    with enrich.open_results(one_clip) as results:
        per_class = results_stats(results)["per_class"]
    fig = per_class_figure(per_class)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    finger_axes = fig.axes[2]
    legend = finger_axes.get_legend().get_window_extent(renderer)
    bars = [patch.get_window_extent(renderer) for patch in finger_axes.patches if patch.get_width() > 0]
    assert bars and not any(legend.overlaps(bar) for bar in bars)


def test_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from enrich.track2d import Track2DConfig

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = Track2DConfig()
    assert "(default: no limit)" in text and "auto: cuda when available, else cpu" in text
    assert f"crops tried per untracked box ({defaults.box_search_crops})" in text
    assert f"no other region ({defaults.palm_stride_frames})" in text


def test_help_and_info_start_without_torch_pandas_or_matplotlib(one_clip: Path) -> None:
    code = f"""
import sys
from enrich.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
assert main(["info", {str(one_clip)!r}]) == 0
print("HEAVY", sorted(m for m in ("torch", "pandas", "matplotlib") if m in sys.modules))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "clips: 1" in done.stdout and "HEAVY []" in done.stdout


def test_opencv_is_pinned_to_the_installed_release() -> None:
    """mediapipe leaves OpenCV open; a pin stops pip backtracking through releases that need numpy 2."""
    from importlib.metadata import version

    from packaging.requirements import Requirement

    text = (REPO / "pyproject.toml").read_text()
    spec = next(line.strip().strip('",') for line in text.splitlines() if '"opencv-contrib-python' in line)
    requirement = Requirement(spec)
    assert "<" in str(requirement.specifier)  # an upper bound: pip never tries a newer release
    assert requirement.specifier.contains(version("opencv-contrib-python"))
