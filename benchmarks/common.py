"""Helpers shared by the benchmarks: where the data is, what machine this is, and the results log."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"


def require_shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise SystemExit(f"benchmark needs the shared test data at {SHARED_DATA}")
    return SHARED_DATA


def pin_one_core() -> int:
    """Run this process (and threads it starts) on one core, as the targets are stated per core."""
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return f"{cpu}, {os.cpu_count()} cores visible, Python {platform.python_version()}, {platform.system()}"


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--", "enrich"],
            capture_output=True,
            text=True,
        )
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def append_results(title: str, body: str) -> None:
    """Append one dated section to benchmarks/RESULTS.md."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"\n## {title}\n\n{stamp}, commit {commit()}, {machine()}\n\n{body.strip()}\n"
    if not RESULTS_MD.exists():
        RESULTS_MD.write_text("# Benchmark results\n\nAppended by the scripts in `benchmarks/`; newest last.\n")
    with RESULTS_MD.open("a") as f:
        f.write(section)


SYNTHETIC_NOTE = "Synthetic clips with random arrays (so compression is pessimistic)."


def append_block(title: str, lines: list[str], note: str = SYNTHETIC_NOTE) -> None:
    """Append a fixed-width report (a note, then the lines as a code block) to RESULTS.md."""
    append_results(title, note + "\n\n```\n" + "\n".join(lines) + "\n```")
