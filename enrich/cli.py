"""``enrich`` command line: a thin layer over the Python API.

Imports are lazy: ``enrich --help`` and ``enrich info FILE`` start without torch, pandas or matplotlib. Every user
error is an :class:`~enrich.errors.EnrichError`, printed as one line on stderr by :func:`main` with its exit code
(README, "Errors and exit codes"); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from enrich import interrupts
from enrich.cli_run import cmd_contacts, cmd_lift, cmd_run
from enrich.constants import SSV2_FPS
from enrich.errors import EXIT_OK, EXIT_SIGINT, EXIT_USAGE, EnrichError, MissingDependencyError, UnwritableError

DEFAULT_OUTPUT = Path("outputs/enriched.h5")


def _out_folder(path: str) -> Path:
    """An output folder: made when missing; a file in its place, or a folder that cannot be made, is one line."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UnwritableError(f"{out} is a file, not a folder: choose a folder for the output files")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UnwritableError(f"{out}: cannot make the output folder ({e.strerror or e})") from None
    return out


def _require_parquet(fmt: str) -> None:
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise MissingDependencyError("Parquet output needs pyarrow: pip install pyarrow (or use --format csv/npz)")


def cmd_stats(args: argparse.Namespace) -> int:
    from enrich.store import open_results

    _require_parquet(args.format)
    _out_folder(args.out)

    with open_results(args.file) as results:
        from enrich.stats import write_stats

        tables = write_stats(results, Path(args.out), args.format, plots=not args.no_plots)
    for name in ("per_class", "pretending"):
        print(f"\n{name}:")
        print(tables[name].to_string(max_rows=40, max_colwidth=48) if len(tables[name]) else "(no clips with contacts)")
    print(f"\nwrote {args.out}/")
    return EXIT_OK


def cmd_merge(args: argparse.Namespace) -> int:
    from enrich.store import check_output, check_output_folder, merge

    check_output(args.output, overwrite=args.overwrite)
    check_output_folder(args.output)
    n_clips = merge(args.output, args.shards)
    print(f"wrote {args.output}: {n_clips} clips from {len(args.shards)} shards")
    return EXIT_OK


def cmd_retarget(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from enrich.retarget_file import retarget_results
    from enrich.store import check_output, check_output_folder, check_writable, open_results

    with open_results(args.file) as results:
        n_clips = len(results)
    if args.output and Path(args.output).absolute() != Path(args.file).absolute():
        check_output(args.output, overwrite=args.overwrite)
    check_writable(Path(args.output or args.file))
    check_output_folder(args.output or args.file)
    for i, robot in enumerate(args.robot):  # the first robot writes OUTPUT, the others add to it
        source, output = (args.file, args.output) if i == 0 else (args.output or args.file, None)
        bar = tqdm(total=n_clips, unit="clip", disable=args.quiet, dynamic_ncols=True, desc=robot)
        try:
            n_clips, n_tracks, skipped = retarget_results(source, robot, output, progress=lambda _, b=bar: b.update(1))
        finally:
            bar.close()
        for line in skipped:
            print(f"skipped: {line}", file=sys.stderr)
        print(f"wrote {args.output or args.file}: {n_tracks} {robot} hand tracks over {n_clips} clips")
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    from enrich.show import show
    from enrich.store import check_output_folder

    check_output_folder(args.output)  # like the other commands: missing folders are made
    show(args.file, args.video_id, args.source, args.output, boxes_paths=args.boxes, robot=args.robot)
    print(f"wrote {args.output}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from enrich.store import open_results

    _require_parquet(args.format)
    with open_results(args.file) as results:
        out = _out_folder(args.out)
        from enrich.export import export_contacts_parquet, export_npz, export_robots_parquet

        if args.format == "lerobot":
            from enrich.lerobot import export_lerobot_datasets

            export_lerobot_datasets(results, out, args.robot or ["shadow"])
            return EXIT_OK
        if args.format == "npz":
            print(f"wrote {export_npz(results, out)} clips to {out}/")
        else:
            export_contacts_parquet(results, out)
            print(f"wrote {out}/contacts.parquet and {out}/segments.parquet")
            for robot, n in export_robots_parquet(results, out).items():
                print(f"wrote {out}/robot_{robot}.parquet: {n} rows")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from enrich.store import open_results

    with open_results(args.file) as results:
        attrs = results.attrs
        print(f"{args.file}: schema {attrs['schema_version']}, enrich {attrs['package_version']}")
        paths = attrs["provenance"].get("hand_model_paths", {})
        for side, model in (attrs["config"].get("hand_model") or {}).items():
            print(f"  hand model ({side}): {model['name']} sha256 {model['sha256'][:16]}... {paths.get(side, '')}")
        for name, robot in results.robots.items():
            print(f"  robot {name}: {robot.dof} joints, model {robot.model_file} sha256 {robot.sha256[:16]}...")
        counts = results.summary()
        for key, value in counts.items():
            print(f"  {key}: {value}")
        print(f"  coverage: a hand in {_share(counts['frames_with_hand'], counts['frames'])} of frames", end="")
        if counts["hand_box_frames"]:
            found = _share(counts["hand_box_frames_found"], counts["hand_box_frames"])
            print(f"; a confident hand (presence >= 0.5) matched the hand box in {found} of frames with one", end="")
        print()
        for vid, err in list(results.failed.items())[: args.show_failed]:
            print(f"  failed {vid}: {err}")
    return EXIT_OK


def _share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / max(whole, 1):.1f} %)"


def cmd_index_boxes(args: argparse.Namespace) -> int:
    from enrich.errors import BoxFileError
    from enrich.inputs import BoxIndex, index_boxes
    from enrich.store import check_output_folder

    if Path(args.output).exists():  # an index is rebuilt freely; anything else is never written over
        try:
            BoxIndex(args.output).close()
        except BoxFileError:
            raise BoxFileError(f"{args.output} exists and is not a box index: refusing to write over it") from None
    check_output_folder(args.output)
    counts = index_boxes(args.parts, args.output, progress=not args.quiet)
    print(f"wrote {args.output}: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return EXIT_OK


# ------------------------------------------------------------------------------------------------ arguments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not > 0")
    return value


def _shard_spec(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()) or int(index) >= int(count):
        raise argparse.ArgumentTypeError(f"{text!r} is not i/N with 0 <= i < N (e.g. 3/100)")
    return int(index), int(count)


def _defaults_of(module: str, class_name: str) -> dict[str, Any]:
    """A dataclass's literal field defaults, read from its source: help texts need them, not its imports."""
    spec = importlib.util.find_spec(module)
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                item.target.id: ast.literal_eval(item.value)
                for item in node.body
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None
                and isinstance(item.value, ast.Constant)
            }  # fmt: skip
    return {}


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line on stderr and exit 2, like every other user error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_track2d_flags(p: argparse.ArgumentParser) -> None:
    d = _defaults_of("enrich.track2d", "Track2DConfig")
    g = p.add_argument_group("2D stage")
    g.add_argument(
        "--min-presence", dest="min_presence", type=float, help=f"hand-presence threshold ({d['min_presence']})"
    )
    g.add_argument(
        "--min-presence-box",
        dest="min_presence_box",
        type=float,
        help=f"threshold inside a hand box ({d['min_presence_box']})",
    )
    g.add_argument(
        "--box-search-crops",
        dest="box_search_crops",
        type=_positive_int,
        help=f"crops tried per untracked box ({d['box_search_crops']})",
    )
    g.add_argument(
        "--palm-stride",
        dest="palm_stride_frames",
        type=_positive_int,
        help=f"palm detector every n-th frame with no other region ({d['palm_stride_frames']})",
    )
    g.add_argument(
        "--threads", dest="num_threads", type=_positive_int, help=f"TFLite threads per process ({d['num_threads']})"
    )


def _add_lift_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("MANO lift")
    g.add_argument(
        "--hand-model",
        help="folder with MANO_RIGHT.pkl/MANO_LEFT.pkl (default: $ENRICH_HAND_MODEL, "
        "models/mano/, else the open model)",
    )
    g.add_argument("--device", default="auto", help="torch device for the fit (auto: cuda when available, else cpu)")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="enrich", description="3D hands and contacts for Something-Something V2")
    p.add_argument("--version", action="version", version=f"enrich {_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="enrich clips into one HDF5 file (no inputs: the bundled samples)")
    r.add_argument("inputs", nargs="*", help="videos (.webm/.mp4/...), folders of videos, or text lists of them")
    r.add_argument("--frames", help="ROOT of 12 fps frame folders ROOT/<id>/0001.jpg")
    r.add_argument("--boxes", nargs="+", help="Something-Else JSON part files, or an index from index-boxes")
    r.add_argument("--metadata", nargs="+", help="SSv2 labels JSON, train/validation JSON, or 174-line label map")
    r.add_argument("-o", "--output", default=str(DEFAULT_OUTPUT), help=f"results file ({DEFAULT_OUTPUT})")
    r.add_argument("--frames-fps", type=float, default=SSV2_FPS, help="rate of frame folders (12)")
    r.add_argument("--limit", type=_positive_int, help="first N clips only")
    r.add_argument(
        "--shard", type=_shard_spec, help="i/N: only shard i of N (a stable partition by video id, for job arrays)"
    )
    r.add_argument("--resume", action="store_true", help="keep the clips already in OUTPUT, process the rest")
    r.add_argument("--retry-failed", action="store_true", help="resume, and run the failed clips again")
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing OUTPUT (it stays until the new run commits its first clip)",
    )
    r.add_argument(
        "--workers", type=_positive_int, default=os.cpu_count() or 1, help="worker processes (default: the cores)"
    )
    r.add_argument(
        "--timeout",
        type=_positive_seconds,
        help="seconds a clip may take before its worker is replaced (default: no limit)",
    )
    r.add_argument("--executor", choices=("local", "ray"), default="local")
    r.add_argument("--address", help="Ray cluster address (with --executor ray; default: start a local one)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_track2d_flags(r)
    _add_lift_flags(r)
    r.add_argument("--no-lift", action="store_true", help="2D tracks only, no MANO stage")
    r.set_defaults(func=cmd_run)

    lf = sub.add_parser("lift", help="redo the MANO stage from a results file's 2D tracks (no decoding)")
    lf.add_argument("file", help="results file with 2D tracks (from enrich run)")
    lf.add_argument("-o", "--output", help="new results file (default: replace FILE when done)")
    lf.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    lf.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_lift_flags(lf)
    lf.set_defaults(func=cmd_lift)

    c = sub.add_parser("contacts", help="box-only contacts from Something-Else boxes alone (no video needed)")
    c.add_argument("--boxes", nargs="+", required=True, help="Something-Else JSON part files, or an index")
    c.add_argument("--metadata", nargs="+", help="SSv2 labels / train / validation JSON or label map")
    c.add_argument("-o", "--output", default="outputs/contacts_box_only.h5", help="(outputs/contacts_box_only.h5)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_contacts)

    st = sub.add_parser("stats", help="contact statistics per SSv2 class: tables (CSV/Parquet) and PNG plots")
    st.add_argument("file", help="results file (from enrich run or contacts)")
    st.add_argument("-o", "--out", default="outputs/stats", help="output folder (outputs/stats)")
    st.add_argument("--format", choices=("csv", "parquet"), default="csv")
    st.add_argument("--no-plots", action="store_true")
    st.set_defaults(func=cmd_stats)

    m = sub.add_parser("merge", help="combine shard results files (from --shard i/N) into one")
    m.add_argument("output", help="new results file")
    m.add_argument("shards", nargs="+", help="shard results files (from enrich run --shard i/N)")
    m.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    m.set_defaults(func=cmd_merge)

    sh = sub.add_parser("show", help="draw a clip's keypoints, mesh, boxes and contacts over its frames")
    sh.add_argument("file", help="results file")
    sh.add_argument("video_id", help="the clip's video id (enrich info FILE lists the failed ones)")
    sh.add_argument("--source", help="the clip's video or frame folder (default: the path stored in FILE)")
    sh.add_argument("--boxes", nargs="+", help="Something-Else boxes to draw")
    sh.add_argument("-o", "--output", required=True, help=".mp4 for a video, .png for a contact sheet")
    sh.add_argument("--robot", help="draw this robot hand beside the clip (stored by `enrich retarget`, else computed)")
    sh.set_defaults(func=cmd_show)

    rt = sub.add_parser("retarget", help="retarget every MANO track to a robot hand's joint angles (adds /robots)")
    rt.add_argument("file", help="results file with MANO tracks")
    rt.add_argument("--robot", nargs="+", default=["shadow"], help="built-in robot hands: shadow, allegro, leap")
    rt.add_argument("-o", "--output", help="new results file (default: replace FILE when done)")
    rt.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT")
    rt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    rt.set_defaults(func=cmd_retarget)

    ex = sub.add_parser("export", help="per-clip NPZ, contact and robot tables as Parquet, or a LeRobot dataset")
    ex.add_argument("file", help="results file")
    ex.add_argument("--format", choices=("npz", "parquet", "lerobot"), default="npz")
    ex.add_argument("--robot", nargs="+", help="lerobot: the robot hands, one dataset each (shadow)")
    ex.add_argument("-o", "--out", default="outputs/export", help="output folder (outputs/export)")
    ex.set_defaults(func=cmd_export)

    i = sub.add_parser("info", help="summarise a results file")
    i.add_argument("file", help="results file")
    i.add_argument("--show-failed", type=int, default=20, help="list up to N failed clips (20)")
    i.set_defaults(func=cmd_info)

    b = sub.add_parser("index-boxes", help="index Something-Else JSON parts once into a compact file")
    b.add_argument("parts", nargs="+", help="Something-Else JSON part files (bounding_box_annotations_part*.json)")
    b.add_argument("-o", "--output", required=True, help="index file to write (.h5)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_index_boxes)
    return p


def _version() -> str:
    import enrich

    return str(enrich.__version__)


def main(argv: list[str] | None = None) -> int:
    with interrupts.handled():  # already installed by the entry point; here for in-process callers
        return _main(sys.argv[1:] if argv is None else list(argv))


def _main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at exit
        return code
    except EnrichError as e:  # the user's to fix: one line, no traceback
        print(f"enrich: {' '.join(str(e).split())}", file=sys.stderr)
        return e.exit_code
    except (PermissionError, FileExistsError, NotADirectoryError, IsADirectoryError) as e:  # the file system's no
        print(f"enrich: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # outside a run's own handling (loading inputs, a second Ctrl-C while closing)
        print("enrich: interrupted", file=sys.stderr)
        return interrupts.STOP.exit_code if interrupts.STOP.is_set() else EXIT_SIGINT
    except BrokenPipeError:  # `enrich info FILE | head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    interrupts.install()
    sys.exit(main())
