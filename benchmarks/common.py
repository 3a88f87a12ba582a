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


RESULTS_INTRO = (
    "# Benchmark results\n\nOne section per benchmark: its latest run, with the date, the commit and the machine. "
    "Each script replaces its own section; earlier runs are in git history (`git log -p benchmarks/RESULTS.md`).\n"
)


def split_sections(text: str) -> tuple[str, dict[str, str]]:
    """RESULTS.md as (intro, {title: section text}) in file order; '## ' lines inside code blocks are body."""
    intro, sections, title, fenced = [], {}, None, False
    for line in text.splitlines(keepends=True):
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("## "):
            title = line[3:].strip()
            sections[title] = ""
        if title is None:
            intro.append(line)
        else:
            sections[title] += line
    return "".join(intro), sections


def record_results(title: str, body: str) -> None:
    """Put one dated section in benchmarks/RESULTS.md: it replaces the section of the same title, if any."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"## {title}\n\n{stamp}, commit {commit()}, {machine()}\n\n{body.strip()}\n\n"
    intro, sections = split_sections(RESULTS_MD.read_text() if RESULTS_MD.exists() else RESULTS_INTRO)
    sections[title] = section
    RESULTS_MD.write_text(intro.rstrip("\n") + "\n\n" + "".join(sections.values()).rstrip("\n") + "\n")


SYNTHETIC_NOTE = "Synthetic clips with random arrays (so compression is pessimistic)."


def record_block(title: str, lines: list[str], note: str = SYNTHETIC_NOTE) -> None:
    """Record a fixed-width report (a note, then the lines as a code block) in RESULTS.md."""
    record_results(title, note + "\n\n```\n" + "\n".join(lines) + "\n```")
