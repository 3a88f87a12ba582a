"""Peak memory of the LeRobot export as the dataset grows: the samples' clips exported N times over.

Each (tree, N) runs in a fresh process that exports the samples' records repeated N times (``export_lerobot``
takes any iterable of records) and reports its peak resident memory; with ``--against TREE`` (another checkout,
e.g. a ``git archive`` of main) the same in that tree, in the same run. A streaming export's peak does not
grow with N.

    python -m benchmarks.lerobot_memory --results samples.h5 [--against ../base] [--sizes 2 20] [--append]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import REPO, record_block


def worker(path: str, times: int, out: str) -> None:
    import resource

    import enrich
    from enrich.lerobot import export_lerobot

    with enrich.open_results(path) as results:
        records = list(results)
    counts = export_lerobot([r for _ in range(times) for r in records], out, "allegro")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**counts, "peak_mb": peak_mb, "enrich": enrich.__file__}))


def run(tree: Path, results: Path, times: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(results), str(times), f"{tmp}/ds"]
        out = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True, help="results file of the samples")
    ap.add_argument("--against", type=Path, help="another checkout of enrich to measure in the same run")
    ap.add_argument("--sizes", nargs="+", type=int, default=[2, 20], help="how many times the clips are exported")
    ap.add_argument("--append", action="store_true", help="record in benchmarks/RESULTS.md (replaces its section)")
    args = ap.parse_args()
    trees = {"this checkout": REPO, **({args.against.name: args.against.resolve()} if args.against else {})}
    lines = []
    for name, tree in trees.items():
        for n in args.sizes:
            r = run(tree, args.results.resolve(), n)
            lines.append(f"{name}: samples x{n}: {r['episodes']} episodes, {r['frames']} frames, peak RSS "
                         f"{r['peak_mb']:.0f} MB (enrich from {r['enrich']})")  # fmt: skip
    print("\n".join(lines))
    if args.append:
        note = "Peak resident memory of `export_lerobot` (Allegro) over the samples' records repeated N times."
        record_block("LeRobot export memory as the dataset grows (lerobot_memory.py)", lines, note)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
