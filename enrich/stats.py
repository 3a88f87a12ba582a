"""Contact statistics of a results file: tables per SSv2 class (CSV or Parquet) and PNG plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from enrich.contacts import FINGER_NAMES, contact_stats
from enrich.store import Results

TOP_CLASSES = 30  # classes shown in the per-class plot (most clips first)


def results_stats(results: Results) -> dict[str, pd.DataFrame]:
    """contact_stats over every ok clip that went through the contact stage."""
    per_clip = ((rec.meta, rec.n_frames, rec.contacts) for rec in results if rec.status == "ok" and rec.contacts)
    return contact_stats(per_clip)


def write_stats(results: Results, out_dir: Path, fmt: str = "csv", plots: bool = True) -> dict[str, pd.DataFrame]:
    """Write per_clip, per_class and pretending tables (``fmt``: csv or parquet) and, with ``plots``, PNGs."""
    tables = results_stats(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        frame = table.drop(columns=[c for c in table.columns if table[c].map(type).eq(list).any()])
        if fmt == "parquet":
            frame.to_parquet(out_dir / f"{name}.parquet")  # needs pyarrow or fastparquet
        else:
            frame.to_csv(out_dir / f"{name}.csv", index=False)
    if plots and len(tables["per_class"]):
        plot_per_class(tables["per_class"], out_dir / "per_class.png")
    return tables


def plot_per_class(per_class: pd.DataFrame, path: Path) -> None:
    """Three panels per class: share of frames in contact, segments per clip, finger usage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = per_class.sort_values("clips", ascending=False).head(TOP_CLASSES).iloc[::-1]
    labels = [f"{t[:48]} ({n})" for t, n in zip(top["template"], top["clips"], strict=True)]
    fig, axes = plt.subplots(1, 3, figsize=(16, 0.35 * len(top) + 2), sharey=True)
    axes[0].barh(labels, top["contact_frame_share"], color="tab:blue")
    axes[0].set_xlabel("share of frames in contact")
    axes[1].barh(labels, top["segments_per_clip"], color="tab:orange")
    axes[1].set_xlabel("contact segments per clip")
    rows = np.arange(len(top))
    height = 0.8 / len(FINGER_NAMES)
    for k, name in enumerate(FINGER_NAMES):  # one bar per finger: the shares overlap, they do not add up
        offset = (k - (len(FINGER_NAMES) - 1) / 2) * height
        axes[2].barh(rows + offset, top[f"finger_{name}"].fillna(0), height=height, label=name)
    axes[2].set_xlim(0, 1)
    axes[2].set_xlabel("finger usage (share of keypoint contact rows touching)")
    axes[2].legend(loc="lower right", fontsize="small")
    fig.suptitle("Hand-object contacts per SSv2 class (clips in brackets)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
