"""Contact statistics over many clips: per clip, per SSv2 class, "Pretending" classes against their real
counterparts; tables (CSV or Parquet) and PNG plots."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from enrich.constants import (
    EVIDENCE_KEYPOINTS,
    EVIDENCE_MANIPULATED,
    EVIDENCE_SURFACE,
    FINGER_NAMES,
    HAND_NAMES,
    SSV2_FPS,
)
from enrich.contact_roles import ROLE_NAMES
from enrich.records import ClipMeta, ContactResult
from enrich.store import Results

if TYPE_CHECKING:
    from matplotlib.figure import Figure


TOP_CLASSES = 30  # classes shown in the per-class plot (most clips first)


_PRETEND = re.compile(r"^Pretending (?:or [a-z ]+? )?to (?:be )?(\w+)(.*)$")


def _gerunds(verb: str) -> list[str]:
    """Candidate -ing forms: take -> taking, put -> putting, pick -> picking, tearing -> tearing."""
    if verb.endswith("ing"):
        return [verb]
    out = [verb + "ing"]
    if verb.endswith("e") and not verb.endswith("ee"):
        out.append(verb[:-1] + "ing")
    if len(verb) >= 3 and verb[-1] not in "aeiouwxy" and verb[-2] in "aeiou" and verb[-3] not in "aeiou":
        out.append(verb + verb[-1] + "ing")
    return out


def pretending_pairs(class_names: Iterable[str]) -> pd.DataFrame:
    """Each "Pretending ... to VERB REST" class with its real counterparts, from the official label list.

    "Pretending to pick something up" -> "Picking something up": strip "Pretending [or ...] to [be] ", turn
    the verb into its -ing form (plain, e dropped, final consonant doubled) and capitalise. The real class is
    the exact match; else the longest class that is a word prefix of it ("Pretending to close something
    without actually closing it" -> "Closing something"); else every class starting with the verb and its
    object ("Pretending to poke something" -> all "Poking something ..."). "air" counts as "something"
    ("spread air onto something" -> "Spreading something onto something"). Unmatched classes get no row.
    """
    names = list(class_names)
    ids = {n: i for i, n in enumerate(names)}
    out = []
    for i, name in enumerate(names):
        m = _PRETEND.match(name)
        if not m:
            continue
        verb, rest = m.group(1), m.group(2).replace(" air ", " something ")
        real = _real_counterparts(verb, rest, names)
        for r in real:
            out.append({"pretend_id": i, "pretend": name, "real_id": ids[r], "real": r})
    return pd.DataFrame(out, columns=["pretend_id", "pretend", "real_id", "real"])


def _real_counterparts(verb: str, rest: str, names: list[str]) -> list[str]:
    reals = [n for n in names if not n.startswith("Pretending")]
    for g in _gerunds(verb):
        phrase = (g + rest).capitalize()
        if phrase in reals:
            return [phrase]
        prefixes = [n for n in reals if phrase.startswith(n + " ") or phrase.startswith(n + ",")]
        if prefixes:
            return [max(prefixes, key=len)]
    for g in _gerunds(verb):
        head = (g + " " + rest.split()[0] if rest.split() else g).capitalize()
        starts = [n for n in reals if n == head or n.startswith(head + " ")]
        if starts:
            return starts
    return []


def _clip_summary(meta: ClipMeta, n_frames: int, result: ContactResult, fps: float) -> dict:
    seg = result.segments
    covered = np.zeros(max(n_frames, 1), bool)
    for s, e in zip(seg.start, seg.end, strict=True):
        covered[s : e + 1] = True
    rows = result.frames
    contact = rows.in_contact
    keypoint_contact = contact & ((rows.evidence & EVIDENCE_KEYPOINTS) > 0)
    finger_frames = [int(np.count_nonzero(keypoint_contact & ((rows.fingers >> k) & 1).astype(bool))) for k in range(5)]
    sides = {HAND_NAMES[h] for h in seg.hand.tolist()}
    hands = "none" if not sides else ("both" if {"left", "right"} <= sides else "/".join(sorted(sides)))
    return {
        "video_id": meta.video_id,
        "class_id": meta.class_id,
        "template": meta.template,
        "n_frames": n_frames,
        "contact_frames": int(np.count_nonzero(covered[:n_frames])),
        "segments": len(seg),
        "duration_frames": seg.n_frames.tolist(),
        "onset_fraction": float(seg.start.min() / n_frames) if len(seg) and n_frames else np.nan,
        "keypoint_contact_rows": int(np.count_nonzero(keypoint_contact)),
        **{f"finger_{name}": finger_frames[k] for k, name in enumerate(FINGER_NAMES)},
        "hands": hands,
    }


def contact_stats(
    per_clip: Iterable[tuple[ClipMeta, int, ContactResult]],
    class_names: Iterable[str] | None = None,
    fps: float = SSV2_FPS,
) -> dict[str, pd.DataFrame]:
    """Per-class contact statistics (``"per_class"``), per clip (``"per_clip"``) and Pretending vs real
    (``"pretending"``). ``class_names`` defaults to the official SSv2 list (enrich/data/ssv2_labels.txt).

    per_class: clips, contact_frame_share (frames inside a segment / frames), segments_per_clip,
    mean_duration_frames / _s (over segments), onset_fraction (first contact frame / clip frames, mean over
    clips with contact), finger_<name> (share of keypoint contact rows with that finger touching), and
    hands_<left|right|both|unknown|none> (share of clips whose segments use those hands).
    """
    clips = pd.DataFrame([_clip_summary(m, n, r, fps) for m, n, r in per_clip])
    if clips.empty:
        return {"per_clip": clips, "per_class": pd.DataFrame(), "pretending": pd.DataFrame()}
    per_class = _per_class(clips, fps)
    if class_names is None:
        from enrich.inputs.metadata import official_class_names

        class_names = official_class_names()
    return {"per_clip": clips, "per_class": per_class, "pretending": _pretending_table(per_class, class_names)}


def _per_class(clips: pd.DataFrame, fps: float) -> pd.DataFrame:
    rows = []
    for (cid, template), g in clips.groupby(["class_id", "template"], sort=True):
        durations = np.concatenate([np.asarray(d, float) for d in g["duration_frames"]] + [np.zeros(0)])
        kp_rows = max(int(g["keypoint_contact_rows"].sum()), 0)
        row = {
            "class_id": cid,
            "template": template,
            "clips": len(g),
            "clips_with_contact": int(np.count_nonzero(g["segments"] > 0)),
            "contact_frame_share": g["contact_frames"].sum() / max(g["n_frames"].sum(), 1),
            "segments_per_clip": g["segments"].mean(),
            "mean_duration_frames": durations.mean() if len(durations) else np.nan,
            "mean_duration_s": durations.mean() / fps if len(durations) else np.nan,
            "onset_fraction": g["onset_fraction"].mean(),
        }
        for name in FINGER_NAMES:
            row[f"finger_{name}"] = g[f"finger_{name}"].sum() / kp_rows if kp_rows else np.nan
        for hands in ("left", "right", "both", "unknown", "none"):
            row[f"hands_{hands}"] = float(np.mean(g["hands"] == hands))
        rows.append(row)
    return pd.DataFrame(rows)


def _pretending_table(per_class: pd.DataFrame, class_names: Iterable[str]) -> pd.DataFrame:
    """One row per Pretending class present, against its real counterparts pooled."""
    pairs = pretending_pairs(class_names)
    by_id = per_class.set_index("class_id")
    out = []
    for (pid, pname), g in pairs.groupby(["pretend_id", "pretend"], sort=True):
        real = by_id.loc[by_id.index.intersection(g["real_id"])]
        if pid not in by_id.index and real.empty:
            continue
        p = by_id.loc[pid] if pid in by_id.index else None
        out.append(
            {
                "pretend_id": pid,
                "pretend": pname,
                "real": "; ".join(g["real"]),
                "pretend_clips": int(p["clips"]) if p is not None else 0,
                "real_clips": int(real["clips"].sum()),
                "pretend_contact_rate": p["clips_with_contact"] / p["clips"] if p is not None else np.nan,
                "real_contact_rate": real["clips_with_contact"].sum() / real["clips"].sum() if len(real) else np.nan,
                "pretend_segments_per_clip": p["segments_per_clip"] if p is not None else np.nan,
                "real_segments_per_clip": _pooled(real, "segments_per_clip", "clips"),
                "pretend_contact_frame_share": p["contact_frame_share"] if p is not None else np.nan,
                "real_contact_frame_share": _pooled(real, "contact_frame_share", "clips"),
            }
        )
    return pd.DataFrame(out)


def _pooled(table: pd.DataFrame, column: str, weight: str = "frames") -> float:
    """Mean of a per-class column weighted by ``weight`` (clips or frames); NaN without rows."""
    if table.empty:
        return float("nan")
    return float(np.average(table[column], weights=table[weight]))


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
    for k, name in enumerate(ROLE_NAMES):
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
        for name in ROLE_NAMES:
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
    """Three panels per class (``per_class_figure``) as a PNG."""
    import matplotlib.pyplot as plt

    fig = per_class_figure(per_class)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def per_class_figure(per_class: pd.DataFrame) -> Figure:
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
    # above the panel, not over the bars (a class's bars can reach any corner)
    axes[2].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(FINGER_NAMES), fontsize="small")
    fig.suptitle("Hand-object contacts per SSv2 class (clips in brackets)")
    fig.tight_layout()
    return fig
