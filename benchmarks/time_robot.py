"""CPU time of the retargeting per frame for each built-in robot, against another checkout in the same run.

Each code tree (this one and, with ``--against TREE``, e.g. a ``git archive`` of main) runs in a worker
process of its own, pinned to the same core; the workers take turns robot by robot, in an order that rotates
per repeat, each timing one pass of ``retarget_track`` (the robot's default settings) over all hand tracks of
the results files. Figures: on-CPU ms per frame (the machine is shared: wall time waits for other jobs),
median over the repeats, and the ratio to the other tree's median.

    python -m benchmarks.time_robot --results ssv2.h5 samples.h5 [--against ../base] [--repeats 5] [--append]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import REPO, median, pin_one_core, record_block

ROBOTS = ("shadow", "allegro", "leap")


def worker(paths: list[str]) -> None:
    """Read robot names on stdin; for each, retarget all tracks once and print the CPU ms per frame."""
    from threadpoolctl import threadpool_limits

    import enrich
    from enrich.robot import default_config, load_robot, retarget_track

    threadpool_limits(1)
    fits = []
    for path in paths:
        with enrich.open_results(path) as results:
            fits += [h.fit for c in results for h in c.hands.values() if h.fit is not None and len(h.fit) > 0]
    robots = {name: load_robot(name) for name in ROBOTS}
    print(json.dumps({"enrich": enrich.__file__}), flush=True)
    for line in sys.stdin:
        robot = robots[line.strip()]
        cfg, frames, cpu = default_config(robot), 0, time.process_time()
        for fit in fits:
            frames += len(retarget_track(fit, robot, cfg))
        print(json.dumps({"ms": (time.process_time() - cpu) / frames * 1e3, "frames": frames}), flush=True)


def start(tree: Path, paths: list[Path], core: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = ["taskset", "-c", str(core), sys.executable, str(Path(__file__).resolve()), "--worker", *map(str, paths)]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tree)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", nargs="+", type=Path, required=True, help="results files with MANO fits")
    ap.add_argument("--against", type=Path, help="another checkout of enrich to time in the same run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--append", action="store_true", help="record in benchmarks/RESULTS.md (replaces its section)")
    args = ap.parse_args()
    core = pin_one_core()
    trees = {"this checkout": REPO, **({f"{args.against.name}": args.against.resolve()} if args.against else {})}
    procs = {name: start(tree, [p.resolve() for p in args.results], core) for name, tree in trees.items()}
    where = {name: json.loads(p.stdout.readline())["enrich"] for name, p in procs.items()}
    times: dict[tuple[str, str], list[float]] = {}
    frames = 0
    names = list(trees)
    for r in range(args.repeats):
        for robot in ROBOTS:
            for name in names[r % len(names) :] + names[: r % len(names)]:
                procs[name].stdin.write(robot + "\n")
                procs[name].stdin.flush()
                out = json.loads(procs[name].stdout.readline())
                times.setdefault((name, robot), []).append(out["ms"])
                frames = out["frames"]
    for p in procs.values():
        p.stdin.close()
        p.wait()
    load = os.getloadavg()[0]
    lines = [f"core {core}; {frames} frames per pass; {args.repeats} repeats; 1-min load average at the end {load:.2f}"]
    lines += [f"{name}: enrich from {where[name]}" for name in names]
    for robot in ROBOTS:
        med = {name: median(times[(name, robot)]) for name in names}
        row = ", ".join(f"{name} {med[name]:.2f}" for name in names)
        ratio = f" (ratio {med[names[0]] / med[names[1]]:.2f})" if len(names) > 1 else ""
        lines.append(f"{robot}: CPU ms per frame, median: {row}{ratio}; target <= 5: "
                     f"{'met' if med[names[0]] <= 5.0 else 'NOT met'}")  # fmt: skip
    print("\n".join(lines))
    if args.append:
        note = (
            "On-CPU time of `retarget_track` per frame (each robot's default settings) over the hand tracks of the "
            "13 SSv2 clips and the samples, this checkout against the code before this change, in worker "
            "processes pinned to one core and taking turns; medians over the repeats."
        )
        record_block("Robot retargeting speed, all three robots in one run (time_robot.py)", lines, note)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
    else:
        main()
