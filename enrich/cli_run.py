"""``enrich run``, ``lift`` and ``contacts``: the commands that process clips, under a progress bar.

Stop signals are :mod:`enrich.interrupts`' (installed by the entry point before anything heavy loads); a run
checks them before its costly steps, so a Ctrl-C at any moment ends it with exit 130 and nothing changed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enrich import interrupts
from enrich.errors import EXIT_CLIPS_FAILED, EXIT_OK, StoppedError, UsageError

if TYPE_CHECKING:
    from enrich.pipeline import Inputs, RunConfig
    from enrich.run_summary import RunSummary
    from enrich.track2d import Track2DConfig

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"


def _sample_inputs() -> tuple[list[str], str, list[str], list[str]]:
    """The bundled samples: videos, a frame folder, their Something-Else boxes and SSv2 metadata."""
    if not SAMPLES_DIR.is_dir():
        raise UsageError(f"no inputs given and no bundled samples at {SAMPLES_DIR} (install from a checkout)")
    return (
        [str(SAMPLES_DIR / "videos")],
        str(SAMPLES_DIR / "frames"),
        [str(SAMPLES_DIR / "something_else.json")],
        [str(SAMPLES_DIR / "ssv2_metadata.json")],
    )


def _track2d_config(args: argparse.Namespace) -> Track2DConfig:
    from enrich.track2d import Track2DConfig

    overrides = {
        f.name: getattr(args, f.name) for f in fields(Track2DConfig) if getattr(args, f.name, None) is not None
    }
    return Track2DConfig(**overrides)


def _build_inputs(args: argparse.Namespace) -> Inputs:
    from enrich.inputs import discover_clips, load_boxes, load_metadata
    from enrich.pipeline import Inputs, check_video_ids, provenance, shard

    clip_inputs, frames, boxes, metadata = args.inputs, args.frames, args.boxes or [], args.metadata or []
    if not clip_inputs and frames is None:
        clip_inputs, frames, default_boxes, default_meta = _sample_inputs()
        boxes, metadata = boxes or default_boxes, metadata or default_meta
    sources = discover_clips(clip_inputs, frames)
    if args.shard:
        sources = shard(sources, *args.shard)
    if args.limit:
        sources = sources[: args.limit]
    check_video_ids(sources)
    return Inputs(
        sources=sources,
        boxes=load_boxes(boxes) if boxes else None,
        metadata=load_metadata(metadata) if metadata else None,
        provenance=provenance(clip_inputs + ([frames] if frames else []), boxes, metadata),
    )


def _check_stop(output: str) -> None:
    """A stop signal before the run started: leave now, nothing written."""
    if interrupts.STOP.is_set():
        raise StoppedError(
            f"{interrupts.STOP.name}: stopped before the first clip; {_unchanged(Path(output))}",
            interrupts.STOP.exit_code,
        )


def _unchanged(output: Path) -> str:
    return f"{output} is unchanged" if output.exists() else f"{output} was not written"


def _nothing_left(args: argparse.Namespace, inputs: Inputs) -> bool:
    """With --resume: whether the output already holds every clip of the inputs (then say so)."""
    from enrich.store import Results

    if not (args.resume or args.retry_failed) or not Path(args.output).exists():
        return False
    with Results(args.output) as done:
        left = {src.video_id for src in inputs.sources} - set(done.video_ids)
        failed = set(done.failed) & {src.video_id for src in inputs.sources}
    if left or (failed and args.retry_failed):
        return False
    more = f"; {len(failed)} failed (--retry-failed runs them again)" if failed else ""
    print(f"{args.output} already holds all {len(inputs.sources)} clips of these inputs: nothing to do{more}")
    return True


def cmd_run(args: argparse.Namespace) -> int:
    from enrich.store import check_output, check_output_folder

    resume = args.resume or args.retry_failed
    check_output(args.output, resume=resume, overwrite=args.overwrite)  # before any work
    check_output_folder(args.output)
    _check_stop(args.output)
    inputs = _build_inputs(args)
    if _nothing_left(args, inputs):
        return EXIT_OK
    _check_stop(args.output)
    from enrich.lift import LiftConfig
    from enrich.pipeline import RunConfig, run

    lift = None if args.no_lift else LiftConfig(device=_device(args.device))
    config = RunConfig(track2d=_track2d_config(args), lift=lift, hand_model=args.hand_model, frames_fps=args.frames_fps)
    executor = _executor(args, config)
    _check_stop(args.output)
    stop = interrupts.STOP
    summary = _with_progress(
        len(inputs.sources),
        args,
        lambda report: run(
            inputs,
            args.output,
            config,
            report,
            executor=executor,
            resume=resume,
            retry_failed=args.retry_failed,
            overwrite=args.overwrite,
            stop=stop,
        ),
    )
    if summary.interrupted:
        return _interrupted(args, summary, stop)
    code = _finish(args, summary)
    if stop.is_set():  # it came after the last clip was in: nothing is missing, but the run was stopped
        print(f"enrich: {stop.name} after the last clip: {args.output} is complete", file=sys.stderr)
        return stop.exit_code
    return code


def _executor(args: argparse.Namespace, config: RunConfig) -> object:
    from enrich.pipeline import ClipProcessor, InProcess

    if args.executor == "ray":
        from enrich.executor_ray import RayExecutor

        return RayExecutor(
            partial(ClipProcessor, config), address=args.address, workers=args.workers, timeout_s=args.timeout
        )
    if args.workers > 1 or args.timeout:
        from enrich.executors import LocalPool

        return LocalPool(partial(ClipProcessor, config), args.workers, args.timeout)
    return InProcess(partial(ClipProcessor, config))


def _interrupted(args: argparse.Namespace, summary: RunSummary, stop: interrupts.StopEvent) -> int:
    """One line: what the file holds and the command that goes on from there."""
    if not summary.placed:
        print(f"enrich: {stop.name}: stopped before the first clip; {_unchanged(Path(args.output))}", file=sys.stderr)
    else:
        done = summary.skipped + summary.clips
        print(
            f"enrich: {stop.name}: {done} clips done in {args.output} ({summary.clips} this run); "
            f"resume with: {_resume_command(args.argv)}",
            file=sys.stderr,
        )
    return stop.exit_code


def _resume_command(argv: list[str]) -> str:
    """The command line that was run, with --resume instead of --overwrite."""
    kept = [a for a in argv if a != "--overwrite"]
    if "--resume" not in kept and "--retry-failed" not in kept:
        kept.append("--resume")
    return shlex.join(["enrich", *kept])


def _with_progress(n_clips: int, args: argparse.Namespace, job: Callable[[Callable], RunSummary]) -> RunSummary:
    """Run ``job(on_result)`` under a progress bar (clips/s, ETA); each failure one line on stderr as it comes."""
    from tqdm import tqdm

    bar = tqdm(total=n_clips, unit="clip", disable=args.quiet, dynamic_ncols=True)

    def report(result: Any) -> None:
        bar.update(1)
        if not result.ok:
            tqdm.write(f"failed: {result.error}", file=sys.stderr)

    try:
        return job(report)
    finally:
        bar.close()


def _finish(args: argparse.Namespace, summary: RunSummary) -> int:
    """The summary on stdout; failures and warnings on stderr; exit 1 when a clip failed."""
    print(f"wrote {args.output}")
    print("\n".join(summary.lines()))
    warnings = summary.warnings.lines()
    if warnings:
        print("warnings (each clip's note in the file says more):", file=sys.stderr)
        print("\n".join(f"  {line}" for line in warnings), file=sys.stderr)
    if summary.failed:
        print("\n".join(summary.failure_lines()), file=sys.stderr)
        print(
            f"enrich: {summary.failed} of {summary.clips} clips failed "
            f"(`enrich info {args.output} --show-failed {summary.failed}` lists them)",
            file=sys.stderr,
        )
        return EXIT_CLIPS_FAILED
    return EXIT_OK


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cmd_lift(args: argparse.Namespace) -> int:
    from enrich.lift import LiftConfig
    from enrich.pipeline import RunConfig, relift
    from enrich.store import Results, check_output_folder, check_writable

    config = RunConfig(lift=LiftConfig(device=_device(args.device)), hand_model=args.hand_model)
    with Results(args.file, allow_2d_only=True) as results:
        n_clips, robots = len(results), list(results.robots)
    args.output = args.output or args.file
    check_writable(Path(args.output))
    check_output_folder(args.output)
    summary = _with_progress(
        n_clips, args, lambda report: relift(args.file, args.output, config, report, overwrite=args.overwrite)
    )
    code = _finish(args, summary)
    for robot in robots:  # retargeted from the old fits: retarget the new ones, never drop them unsaid
        from enrich.retarget_file import retarget_results

        _, n_tracks, _ = retarget_results(args.output, robot)
        print(f"retargeted {robot} again from the new MANO fits: {n_tracks} tracks in /robots/{robot}")
    return code


def cmd_contacts(args: argparse.Namespace) -> int:
    """Box-only contacts for every clip in the box files: no pixels needed."""
    from enrich.contacts import ContactConfig
    from enrich.inputs import load_boxes, load_metadata
    from enrich.pipeline import box_only_run, provenance
    from enrich.store import check_output, check_output_folder

    check_output(args.output, overwrite=args.overwrite)
    check_output_folder(args.output)
    boxes = load_boxes(args.boxes)
    metadata = load_metadata(args.metadata) if args.metadata else None
    prov = provenance([], args.boxes, args.metadata or [])
    summary = _with_progress(
        len(boxes.video_ids),
        args,
        lambda report: box_only_run(
            boxes, metadata, args.output, ContactConfig(), prov, report, overwrite=args.overwrite
        ),
    )
    return _finish(args, summary)
