"""Retargeting MANO tracks to robot hands (Shadow, Allegro, LEAP): limits, vector errors, pinches, smoothness, speed.

On the 13 real SSv2 clips in ../shared/data and the bundled samples, with their MANO fits made by this
checkout's ``enrich run`` (or given with --results). Per variant of the retargeting, over all hand tracks:

- joint-limit violations of the stored (float32) angles;
- wrist->fingertip vector error per finger after scaling to the robot (median, p90, mm);
- thumb-index pinch: where the human's tip distance is under 3 cm, |robot - scaled human| / scaled human;
- jerk (third difference per frame, within runs of consecutive frames): robot joint angles against the MANO
  track's hand_pose (both rad/frame^3, RMS per angle), and robot fingertips against the scaled human
  fingertips in the same palm frame (mm/frame^3);
- fingers through fingers: frames where collision spheres of two fingers overlap by more than 2 mm;
- ms per frame on one core, wall and on-CPU (the benchmark machine is shared).

Variants in the same run, per robot: the full method; stage 1 only (per frame, warm-started, no temporal
stage: the baseline); with --ablations also no pinch weighting and a quarter of the collision weight.
Targets (issue 21), per robot: 0 limit violations, pinch within 15 % on >= 90 % of close-pinch frames,
<= 5 ms CPU per frame, joint jerk <= 1.2x MANO's; each is reported met or not.

    python -m benchmarks.bench_robot [--append] [--results A.h5 B.h5] [--robots shadow allegro leap] [--ablations]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks.common import REPO, pin_one_core, record_block, require_shared_data
from enrich.records import ManoTrack
from enrich.robot import RetargetConfig, default_config, load_robot, retarget_track
from enrich.robot.model import FINGERS, TIPS, RobotHand
from enrich.robot.retarget import finger_overlap_mm, human_in_palm_frame

PINCH_M = 0.03
PINCH_TOLERANCE = 0.15


@dataclass
class Tally:
    frames: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # on-CPU time of this process: the machine is shared, wall time waits for others
    violations: int = 0
    tip_err_mm: list[np.ndarray] = field(default_factory=list)  # (T, 5) per track
    pinch_rel: list[np.ndarray] = field(default_factory=list)
    robot_jerk: list[np.ndarray] = field(default_factory=list)  # third differences, rad
    mano_jerk: list[np.ndarray] = field(default_factory=list)
    robot_tip_jerk: list[np.ndarray] = field(default_factory=list)  # mm
    human_tip_jerk: list[np.ndarray] = field(default_factory=list)
    residual_mm: list[np.ndarray] = field(default_factory=list)
    overlap_mm: list[np.ndarray] = field(default_factory=list)  # deepest finger-through-finger overlap per frame


def third_differences(values: np.ndarray, frame_index: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """(N, ...) third differences over runs of 4 consecutive frames of one segment."""
    t = np.arange(values.shape[0] - 3)
    ok = (frame_index[t + 3] - frame_index[t] == 3) & (segment[t] == segment[t + 3])
    d3 = values[3:] - 3 * values[2:-1] + 3 * values[1:-2] - values[:-3]
    return d3[ok]


def measure(tally: Tally, fit: ManoTrack, robot: RobotHand, cfg: RetargetConfig) -> None:
    start, cpu = time.perf_counter(), time.process_time()
    rt = retarget_track(fit, robot, cfg)
    tally.seconds += time.perf_counter() - start
    tally.cpu_seconds += time.process_time() - cpu
    tally.frames += len(rt)
    q = rt.angles_rad.astype(np.float64)
    tally.violations += int(((q < robot.lower) | (q > robot.upper)).sum())
    tally.tip_err_mm.append(rt.tip_error_mm)
    tally.residual_mm.append(rt.residual_mm)
    tally.overlap_mm.append(finger_overlap_mm(robot, q))
    _, scaled_m, _, scale = human_in_palm_frame(fit, robot)
    kp = robot.keypoints(q)
    human_pinch_m = np.linalg.norm(fit.joints3d[:, 8] - fit.joints3d[:, 4], axis=-1)
    robot_pinch_m = np.linalg.norm(kp[:, 8] - kp[:, 4], axis=-1)
    pinch = human_pinch_m < PINCH_M
    tally.pinch_rel.append(np.abs(robot_pinch_m[pinch] - scale * human_pinch_m[pinch]) / (scale * human_pinch_m[pinch]))
    fi, seg = fit.frame_index, fit.segment
    tally.robot_jerk.append(third_differences(q, fi, seg).ravel())
    tally.mano_jerk.append(third_differences(np.asarray(fit.hand_pose, np.float64), fi, seg).ravel())
    tips = [TIPS[f] for f in robot.fingers]  # Allegro and LEAP: no little finger
    tally.robot_tip_jerk.append(np.linalg.norm(third_differences(kp[:, tips], fi, seg), axis=-1).ravel() * 1e3)
    tally.human_tip_jerk.append(np.linalg.norm(third_differences(scaled_m[:, tips], fi, seg), axis=-1).ravel() * 1e3)


def rms(parts: list[np.ndarray]) -> float:
    v = np.concatenate(parts) if parts else np.zeros(0)
    return float(np.sqrt(np.mean(v**2))) if v.size else float("nan")


def report(name: str, tally: Tally) -> list[str]:
    tips = np.concatenate(tally.tip_err_mm)
    pinch = np.concatenate(tally.pinch_rel)
    overlap = np.concatenate(tally.overlap_mm)
    lines = [
        f"{name}: {tally.frames} frames, {tally.seconds / max(tally.frames, 1) * 1e3:.2f} ms/frame wall, "
        f"{tally.cpu_seconds / max(tally.frames, 1) * 1e3:.2f} CPU, "
        f"joint-limit violations {tally.violations}, residual median "
        f"{np.median(np.concatenate(tally.residual_mm)):.1f} mm",
        "  wrist->tip vector error mm (median / p90): "
        + ", ".join(
            f"{f} {np.nanmedian(tips[:, k]):.1f}/{np.nanpercentile(tips[:, k], 90):.1f}" for k, f in enumerate(FINGERS)
        ),
        f"  thumb-index pinch (human < 3 cm, {pinch.size} frames): within 15 % in "
        f"{np.mean(pinch <= PINCH_TOLERANCE) * 100 if pinch.size else float('nan'):.0f} %, "
        f"median error {np.median(pinch) * 100 if pinch.size else float('nan'):.1f} %, "
        f"p90 {np.percentile(pinch, 90) * 100 if pinch.size else float('nan'):.1f} %",
        f"  fingers through fingers (sphere overlap > 2 mm, pinching tips excepted): "
        f"{np.mean(overlap > 2) * 100:.1f} % "
        f"of frames, deepest {overlap.max():.1f} mm",
        f"  jerk RMS: robot joints {rms(tally.robot_jerk):.4f} vs MANO hand_pose {rms(tally.mano_jerk):.4f} rad/frame3 "
        f"(ratio {rms(tally.robot_jerk) / rms(tally.mano_jerk):.2f}); robot tips {rms(tally.robot_tip_jerk):.2f} vs "
        f"scaled human tips {rms(tally.human_tip_jerk):.2f} mm/frame3 "
        f"(ratio {rms(tally.robot_tip_jerk) / rms(tally.human_tip_jerk):.2f})",
    ]
    return lines


def targets(tally: Tally) -> str:
    """The issue's targets for one robot's full method: met or not, with the figures."""
    pinch = np.concatenate(tally.pinch_rel)
    within = float(np.mean(pinch <= PINCH_TOLERANCE)) if pinch.size else float("nan")
    cpu_ms = tally.cpu_seconds / max(tally.frames, 1) * 1e3
    ratio = rms(tally.robot_jerk) / rms(tally.mano_jerk)
    checks = [
        (f"limit violations {tally.violations}", tally.violations == 0),
        (f"pinch within 15 % on {within * 100:.0f} % (>= 90 %)", within >= 0.9),
        (f"{cpu_ms:.2f} ms CPU/frame (<= 5)", cpu_ms <= 5.0),
        (f"jerk ratio {ratio:.2f} (<= 1.2)", ratio <= 1.2),
    ]
    return "  targets: " + "; ".join(f"{text} {'met' if ok else 'NOT met'}" for text, ok in checks)


def make_results(out_dir: Path) -> dict[str, Path]:
    """MANO fits of the 13 SSv2 clips and the samples, by this checkout's pipeline."""
    data = require_shared_data() / "ssv2_something_else"
    runs = {
        "SSv2 13 clips": ["--frames", str(data / "frames"), "--boxes", str(data / "annotations.json")],
        "samples": [],
    }
    paths = {}
    for name, args in runs.items():
        path = out_dir / (name.split()[0].lower() + ".h5")
        cmd = [sys.executable, "-m", "enrich.cli", "run", *args, "-o", str(path), "--workers", "1"]
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
        paths[name] = path
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--append", action="store_true", help="record in benchmarks/RESULTS.md (replaces its section)")
    ap.add_argument("--results", nargs="*", type=Path, help="results files with MANO fits (default: run them)")
    ap.add_argument("--robots", nargs="+", default=["shadow", "allegro", "leap"], help="built-in robot hands")
    ap.add_argument("--ablations", action="store_true", help="also no pinch weighting and weaker collisions")
    args = ap.parse_args()
    import enrich

    with tempfile.TemporaryDirectory() as tmp:
        sets = {p.name: p for p in args.results} if args.results else make_results(Path(tmp))
        core = pin_one_core()
        threadpool_limits(1)  # one core: a BLAS pool of spinning threads would be charged to this process
        lines = [f"core {core}"]
        fits_by_set = {}
        for set_name, path in sets.items():
            with enrich.open_results(path) as results:
                fits_by_set[set_name] = [
                    h.fit for clip in results for h in clip.hands.values() if h.fit is not None and len(h.fit) > 0
                ]
        for robot_name in args.robots:
            robot = load_robot(robot_name)
            full = default_config(robot)  # the robot's own settings (choose_robot_smoothing.py)
            variants = {"full": full, "stage 1 only (baseline)": replace(full, joint_iters=0)}
            if args.ablations:
                variants["no pinch weighting"] = replace(full, pinch_boost=0.0)
                variants["weaker collisions (weight 5)"] = replace(full, collision_weight=5.0)
                variants["former smoothing (accel weight 0.01)"] = replace(full, accel_weight_m_per_rad=0.01)
            lines.append(
                f"\n## robot {robot_name} ({robot.dof} joints, model sha256 {robot.sha256[:12]}, "
                f"accel weight {full.accel_weight_m_per_rad}, pinch cap {full.pinch_rel_cap})"
            )
            for set_name, fits in fits_by_set.items():
                lines.append(f"\n{set_name}: {len(fits)} hand tracks")
                for name, cfg in variants.items():
                    tally = Tally()
                    for fit in fits:
                        measure(tally, fit, robot, cfg)
                    lines += report(name, tally)
                    if name == "full":
                        lines.append(targets(tally))
    print("\n".join(lines))
    if args.append:
        note = (
            "Retargeting MANO fits (open hand model, this checkout's `enrich run`) to the vendored Shadow, "
            "Allegro and LEAP hands (Allegro and LEAP: four fingers, the little finger's rows are NaN). "
            "Errors are after scaling the human hand to the robot's size (one scale per track); the pinch is "
            "the thumb-index tip distance against the scaled human's where the human's is under 3 cm."
        )
        record_block("Robot retargeting: Shadow, Allegro, LEAP hands (bench_robot.py)", lines, note)


if __name__ == "__main__":
    main()
