"""``enrich`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import fields
from functools import partial
from pathlib import Path

from tqdm import tqdm

from enrich.contacts import ContactConfig
from enrich.executors import LocalPool
from enrich.handmodel import HandModelError
from enrich.inputs import BoxFileError, discover_clips, index_boxes, load_boxes, load_metadata
from enrich.lift import LiftConfig
from enrich.pipeline import (
    ClipProcessor,
    InProcess,
    Inputs,
    RunConfig,
    RunSummary,
    box_only_run,
    provenance,
    relift,
    run,
    shard,
)
from enrich.records import ClipResult
from enrich.store import Results, merge, open_results
from enrich.track2d import Track2DConfig

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
DEFAULT_OUTPUT = Path("outputs/enriched.h5")


def _sample_inputs() -> tuple[list[str], str, list[str], list[str]]:
    """The bundled samples: videos, a frame folder, their Something-Else boxes and SSv2 metadata."""
    if not SAMPLES_DIR.is_dir():
        raise SystemExit(f"enrich: no inputs given and no bundled samples at {SAMPLES_DIR} (install from a checkout)")
    return (
        [str(SAMPLES_DIR / "videos")],
        str(SAMPLES_DIR / "frames"),
        [str(SAMPLES_DIR / "something_else.json")],
        [str(SAMPLES_DIR / "ssv2_metadata.json")],
    )


def _track2d_config(args: argparse.Namespace) -> Track2DConfig:
    overrides = {
        f.name: getattr(args, f.name) for f in fields(Track2DConfig) if getattr(args, f.name, None) is not None
    }
    return Track2DConfig(**overrides)


def _build_inputs(args: argparse.Namespace) -> Inputs:
    clip_inputs, frames, boxes, metadata = args.inputs, args.frames, args.boxes or [], args.metadata or []
    if not clip_inputs and frames is None:
        clip_inputs, frames, default_boxes, default_meta = _sample_inputs()
        boxes, metadata = boxes or default_boxes, metadata or default_meta
    sources = discover_clips(clip_inputs, frames)
    if args.shard:
        index, count = (int(v) for v in args.shard.split("/"))
        sources = shard(sources, index, count)
    if args.limit:
        sources = sources[: args.limit]
    return Inputs(
        sources=sources,
        boxes=load_boxes(boxes) if boxes else None,
        metadata=load_metadata(metadata) if metadata else None,
        provenance=provenance(clip_inputs + ([frames] if frames else []), boxes, metadata),
    )


def cmd_run(args: argparse.Namespace) -> int:
    try:
        inputs = _build_inputs(args)
    except (BoxFileError, ValueError, FileNotFoundError) as e:
        print(f"enrich: {e}", file=sys.stderr)
        return 2
    lift = None if args.no_lift else LiftConfig(device=args.device)
    config = RunConfig(track2d=_track2d_config(args), lift=lift, hand_model=args.hand_model, frames_fps=args.frames_fps)
    executor = _executor(args, config)
    resume = args.resume or args.retry_failed

    def job(report: Callable) -> RunSummary:
        return run(
            inputs, args.output, config, report, executor=executor, resume=resume, retry_failed=args.retry_failed
        )

    try:
        return _with_progress(len(inputs.sources), args, job)
    except ValueError as e:  # e.g. resuming a file written with another configuration
        print(f"enrich: {e}", file=sys.stderr)
        return 2


def _executor(args: argparse.Namespace, config: RunConfig) -> object:
    if args.executor == "ray":
        from enrich.executor_ray import RayExecutor

        return RayExecutor(
            partial(ClipProcessor, config), address=args.address, workers=args.workers, timeout_s=args.timeout
        )
    if args.workers > 1 or args.timeout:
        return LocalPool(partial(ClipProcessor, config), args.workers, args.timeout)
    return InProcess(partial(ClipProcessor, config))


def _with_progress(n_clips: int, args: argparse.Namespace, job: Callable[[Callable], RunSummary]) -> int:
    """Run ``job(on_result)`` under a progress bar (clips/s, ETA); print the summary."""
    bar = tqdm(total=n_clips, unit="clip", disable=args.quiet, dynamic_ncols=True)

    def report(result: ClipResult) -> None:
        bar.update(1)
        if not result.ok:
            tqdm.write(f"failed: {result.error}", file=sys.stderr)

    try:
        summary = job(report)
    except HandModelError as e:
        print(f"enrich: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(f"wrote {args.output}")
    print("\n".join(summary.lines()))
    return 0


def cmd_lift(args: argparse.Namespace) -> int:
    config = RunConfig(lift=LiftConfig(device=args.device), hand_model=args.hand_model)
    with Results(args.file, allow_2d_only=True) as results:
        n_clips = len(results)
    args.output = args.output or args.file
    return _with_progress(n_clips, args, lambda report: relift(args.file, args.output, config, report))


def cmd_contacts(args: argparse.Namespace) -> int:
    """Box-only contacts for every clip in the box files: no pixels needed."""
    try:
        boxes = load_boxes(args.boxes)
        metadata = load_metadata(args.metadata) if args.metadata else None
    except (BoxFileError, ValueError, FileNotFoundError) as e:
        print(f"enrich: {e}", file=sys.stderr)
        return 2
    prov = provenance([], args.boxes, args.metadata or [])
    return _with_progress(
        len(boxes.video_ids),
        args,
        lambda report: box_only_run(boxes, metadata, args.output, ContactConfig(), prov, report),
    )


def cmd_stats(args: argparse.Namespace) -> int:
    from enrich.stats import write_stats

    with open_results(args.file) as results:
        tables = write_stats(results, Path(args.out), args.format, plots=not args.no_plots)
    for name in ("per_class", "pretending"):
        print(f"\n{name}:")
        print(tables[name].to_string(max_rows=40, max_colwidth=48) if len(tables[name]) else "(no clips with contacts)")
    print(f"\nwrote {args.out}/")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    try:
        n_clips = merge(args.output, args.shards)
    except (ValueError, OSError) as e:
        print(f"enrich: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {n_clips} clips from {len(args.shards)} shards")
    return 0


def cmd_retarget(args: argparse.Namespace) -> int:
    from enrich.retargeting import retarget_results
    from enrich.robot import RobotModelError

    with open_results(args.file) as results:
        n_clips = len(results)
    bar = tqdm(total=n_clips, unit="clip", disable=args.quiet, dynamic_ncols=True)
    try:
        n_clips, n_tracks, skipped = retarget_results(
            args.file, args.robot, args.output, progress=lambda _: bar.update(1)
        )
    except (RobotModelError, ValueError, OSError) as e:
        print(f"enrich: {e}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(f"wrote {args.output or args.file}: {n_tracks} {args.robot} hand tracks over {n_clips} clips")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from enrich.show import show

    try:
        show(args.file, args.video_id, args.source, args.output, boxes_paths=args.boxes, robot=args.robot)
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"enrich: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from enrich.export import export_contacts_parquet, export_npz, export_robots_parquet

    out = Path(args.out)
    with open_results(args.file) as results:
        try:
            if args.format == "npz":
                print(f"wrote {export_npz(results, out)} clips to {out}/")
            else:
                export_contacts_parquet(results, out)
                print(f"wrote {out}/contacts.parquet and {out}/segments.parquet")
                for robot, n in export_robots_parquet(results, out).items():
                    print(f"wrote {out}/robot_{robot}.parquet: {n} rows")
        except (ImportError, RuntimeError, ValueError) as e:
            print(f"enrich: {e}", file=sys.stderr)
            return 2
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    with open_results(args.file) as results:
        attrs = results.attrs
        print(f"{args.file}: schema {attrs['schema_version']}, enrich {attrs['package_version']}")
        paths = attrs["provenance"].get("hand_model_paths", {})
        for side, model in (attrs["config"].get("hand_model") or {}).items():
            print(f"  hand model ({side}): {model['name']} sha256 {model['sha256'][:16]}... {paths.get(side, '')}")
        for name, robot in results.robots.items():
            print(f"  robot {name}: {robot.dof} joints, model {robot.model_file} sha256 {robot.sha256[:16]}...")
        for key, value in results.summary().items():
            print(f"  {key}: {value}")
        for vid, err in list(results.failed.items())[: args.show_failed]:
            print(f"  failed {vid}: {err}")
    return 0


def cmd_index_boxes(args: argparse.Namespace) -> int:
    try:
        counts = index_boxes(args.parts, args.output)
    except BoxFileError as e:
        print(f"enrich: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return 0


def _add_track2d_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("2D stage")
    g.add_argument("--min-presence", dest="min_presence", type=float, help="hand-presence threshold (0.5)")
    g.add_argument("--min-presence-box", dest="min_presence_box", type=float, help="threshold inside a hand box")
    g.add_argument("--box-search-crops", dest="box_search_crops", type=int, help="crops tried per untracked box")
    g.add_argument("--palm-stride", dest="palm_stride_frames", type=int, help="palm detector every n-th free frame")
    g.add_argument("--threads", dest="num_threads", type=int, help="TFLite threads per process (1)")


def _add_lift_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("MANO lift")
    g.add_argument(
        "--hand-model",
        help="folder with MANO_RIGHT.pkl/MANO_LEFT.pkl (default: $ENRICH_HAND_MODEL, "
        "models/mano/, else the open model)",
    )
    g.add_argument("--device", default="cuda" if _cuda() else "cpu", help="torch device for the fit")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="enrich", description="3D hands and contacts for Something-Something V2")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="enrich clips into one HDF5 file (no inputs: the bundled samples)")
    r.add_argument("inputs", nargs="*", help="videos (.webm/.mp4/...), folders of videos, or text lists of them")
    r.add_argument("--frames", help="ROOT of 12 fps frame folders ROOT/<id>/0001.jpg")
    r.add_argument("--boxes", nargs="+", help="Something-Else JSON part files, or an index from index-boxes")
    r.add_argument("--metadata", nargs="+", help="SSv2 labels JSON, train/validation JSON, or 174-line label map")
    r.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), help=f"results file ({DEFAULT_OUTPUT})")
    r.add_argument("--frames-fps", type=float, default=12.0, help="rate of frame folders (12)")
    r.add_argument("--limit", type=int, help="first N clips only")
    r.add_argument("--shard", help="i/N: only shard i of N (a stable partition by video id, for job arrays)")
    r.add_argument("--resume", action="store_true", help="keep the clips already in OUTPUT, process the rest")
    r.add_argument("--retry-failed", action="store_true", help="resume, and run the failed clips again")
    r.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (the cores)")
    r.add_argument("--timeout", type=float, help="seconds a clip may take before its worker is replaced")
    r.add_argument("--executor", choices=("local", "ray"), default="local")
    r.add_argument("--address", help="Ray cluster address (with --executor ray; default: start a local one)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_track2d_flags(r)
    _add_lift_flags(r)
    r.add_argument("--no-lift", action="store_true", help="2D tracks only, no MANO stage")
    r.set_defaults(func=cmd_run)

    lf = sub.add_parser("lift", help="redo the MANO stage from a results file's 2D tracks (no decoding)")
    lf.add_argument("file")
    lf.add_argument("-o", "--output", help="new results file (default: replace FILE when done)")
    lf.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_lift_flags(lf)
    lf.set_defaults(func=cmd_lift)

    c = sub.add_parser("contacts", help="box-only contacts from Something-Else boxes alone (no video needed)")
    c.add_argument("--boxes", nargs="+", required=True, help="Something-Else JSON part files, or an index")
    c.add_argument("--metadata", nargs="+", help="SSv2 labels / train / validation JSON or label map")
    c.add_argument("-o", "--output", default="outputs/contacts_box_only.h5")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_contacts)

    st = sub.add_parser("stats", help="contact statistics per SSv2 class: tables (CSV/Parquet) and PNG plots")
    st.add_argument("file")
    st.add_argument("-o", "--out", default="outputs/stats", help="output folder (outputs/stats)")
    st.add_argument("--format", choices=("csv", "parquet"), default="csv")
    st.add_argument("--no-plots", action="store_true")
    st.set_defaults(func=cmd_stats)

    m = sub.add_parser("merge", help="combine shard results files (from --shard i/N) into one")
    m.add_argument("output")
    m.add_argument("shards", nargs="+")
    m.set_defaults(func=cmd_merge)

    sh = sub.add_parser("show", help="draw a clip's keypoints, mesh, boxes and contacts over its frames")
    sh.add_argument("file")
    sh.add_argument("video_id")
    sh.add_argument("--source", help="the clip's video or frame folder (default: the path stored in FILE)")
    sh.add_argument("--boxes", nargs="+", help="Something-Else boxes to draw")
    sh.add_argument("-o", "--output", required=True, help=".mp4 for a video, .png for a contact sheet")
    sh.add_argument("--robot", help="draw this robot hand beside the clip (stored by `enrich retarget`, else computed)")
    sh.set_defaults(func=cmd_show)

    rt = sub.add_parser("retarget", help="retarget every MANO track to a robot hand's joint angles (adds /robots)")
    rt.add_argument("file")
    rt.add_argument("--robot", default="shadow", help="built-in robot hand (shadow)")
    rt.add_argument("-o", "--output", help="new results file (default: replace FILE when done)")
    rt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    rt.set_defaults(func=cmd_retarget)

    ex = sub.add_parser("export", help="per-clip NPZ (MANO, robot arrays) or contact and robot tables as Parquet")
    ex.add_argument("file")
    ex.add_argument("--format", choices=("npz", "parquet"), default="npz")
    ex.add_argument("-o", "--out", default="outputs/export", help="output folder (outputs/export)")
    ex.set_defaults(func=cmd_export)

    i = sub.add_parser("info", help="summarise a results file")
    i.add_argument("file")
    i.add_argument("--show-failed", type=int, default=20, help="list up to N failed clips (20)")
    i.set_defaults(func=cmd_info)

    b = sub.add_parser("index-boxes", help="index Something-Else JSON parts once into a compact file")
    b.add_argument("parts", nargs="+")
    b.add_argument("-o", "--output", required=True)
    b.set_defaults(func=cmd_index_boxes)
    return p


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `enrich info FILE | head` ends quietly
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
