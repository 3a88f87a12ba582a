"""Contact statistics of a results file: tables per SSv2 class (CSV or Parquet) and PNG plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from enrich.contacts import (
    EVIDENCE_MANIPULATED,
    EVIDENCE_SURFACE,
    FINGER_NAMES,
    ContactResult,
    contact_stats,
    pretending_pairs,
)
from enrich.records import ClipMeta
from enrich.store import Results

ROLES: tuple[str, str, str] = ("manipulated", "other", "surface")

TOP_CLASSES = 30  # classes shown in the per-class plot (most clips first)


def results_stats(results: Results) -> dict[str, pd.DataFrame]:
    """contact_stats over every ok clip that went through the contact stage, plus the tables by slot role
    (``"per_class_roles"``, ``"pretending_roles"``)."""
    clips = [(rec.meta, rec.n_frames, rec.contacts) for rec in results if rec.status == "ok" and rec.contacts]
    tables = contact_stats(clips)
    tables.update(role_tables(clips))
    return tables


def _role_frames(result: ContactResult) -> dict[str, int]:
    """Frames in contact with the manipulated object, with another object, with a surface (any hand)."""
    f = result.frames
    role = np.where(f.evidence & EVIDENCE_SURFACE, 2, np.where(f.evidence & EVIDENCE_MANIPULATED, 0, 1))
    out = {}
    for k, name in enumerate(ROLES):
        out[f"{name}_contact_frames"] = len(np.unique(f.frame_index[f.in_contact & (role == k)]))
    return out


def role_tables(
    per_clip: list[tuple[ClipMeta, int, ContactResult]], class_names: tuple[str, ...] | None = None
) -> dict[str, pd.DataFrame]:
    """Per class: the share of frames in contact with the manipulated object, with other objects and with
    surfaces (box covering most of the frame), each with the number of clips behind it; and each Pretending
    class beside its real counterparts. Surfaces kept apart, a hand resting on a table does not count as
    handling the object."""
    rows = [{"class_id": m.class_id, "template": m.template, "n_frames": n, **_role_frames(r)} for m, n, r in per_clip]
    clips = pd.DataFrame(rows)
    if clips.empty:
        return {"per_class_roles": pd.DataFrame(), "pretending_roles": pd.DataFrame()}
    per_class = []
    for (cid, template), g in clips.groupby(["class_id", "template"], sort=True):
        row = {"class_id": cid, "template": template, "clips": len(g), "frames": int(g.n_frames.sum())}
        for name in ROLES:
            row[f"{name}_contact_share"] = g[f"{name}_contact_frames"].sum() / max(g.n_frames.sum(), 1)
            row[f"clips_with_{name}_contact"] = int(np.count_nonzero(g[f"{name}_contact_frames"] > 0))
        per_class.append(row)
    table = pd.DataFrame(per_class)
    if class_names is None:
        from enrich.inputs import official_class_names

        class_names = official_class_names()
    return {"per_class_roles": table, "pretending_roles": _pretending_roles(table, class_names)}


def _pretending_roles(per_class: pd.DataFrame, class_names: tuple[str, ...]) -> pd.DataFrame:
    """Each Pretending class present beside its real counterparts (pooled), manipulated-object contact only."""
    by_id = per_class.set_index("class_id")
    out = []
    for (pid, pname), g in pretending_pairs(class_names).groupby(["pretend_id", "pretend"], sort=True):
        real = by_id.loc[by_id.index.intersection(g["real_id"])]
        if pid not in by_id.index and real.empty:
            continue
        p = by_id.loc[pid] if pid in by_id.index else None
        out.append(
            {
                "pretend": pname,
                "real": "; ".join(g["real"]),
                "pretend_clips": int(p["clips"]) if p is not None else 0,
                "pretend_manipulated_contact_share": p["manipulated_contact_share"] if p is not None else np.nan,
                "pretend_surface_contact_share": p["surface_contact_share"] if p is not None else np.nan,
                "real_clips": int(real["clips"].sum()),
                "real_manipulated_contact_share": _pooled(real, "manipulated_contact_share"),
                "real_surface_contact_share": _pooled(real, "surface_contact_share"),
            }
        )
    return pd.DataFrame(out)


def _pooled(table: pd.DataFrame, column: str) -> float:
    """Frame-weighted mean of a share column; NaN without rows."""
    if table.empty:
        return float("nan")
    return float(np.average(table[column], weights=table["frames"]))


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
