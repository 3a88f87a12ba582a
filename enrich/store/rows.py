"""Records to rows and back: one clip's ``ClipResult`` as a row of every clip column plus its per-frame rows
per group (checked: shapes, finite values, increasing frames), and stored rows back into a ``ClipResult``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from enrich.constants import N_BETAS, SIDES
from enrich.records import (
    TRACK_ARRAYS,
    ClipHands,
    ClipMeta,
    ClipResult,
    ContactFrames,
    ContactResult,
    ContactSegments,
    HandTrack,
    ManoTrack,
)
from enrich.store.schema import (
    CLIP_COLUMNS,
    CONTACT_COLUMNS,
    HAND_COLUMNS,
    MANO_COLUMNS,
    MANO_FIELDS,
    ROW_GROUPS,
    SEGMENT_COLUMNS,
    STATUS_NAMES,
    TEXT_BYTES,
    VIDEO_ID_BYTES,
    empty_column,
)


def fit_utf8(text: str, n_bytes: int) -> tuple[bytes, bool]:
    """UTF-8 bytes of ``text`` cut to at most ``n_bytes`` on a character boundary; True when cut."""
    raw = text.replace("\x00", "").encode("utf-8")  # NUL would end the fixed-length string early
    if len(raw) <= n_bytes:
        return raw, False
    return raw[:n_bytes].decode("utf-8", "ignore").encode("utf-8"), True


def _fit_placeholders(placeholders: tuple[str, ...], n_bytes: int) -> tuple[bytes, bool]:
    """JSON list that fits: drop trailing placeholders rather than store broken JSON."""
    items = list(placeholders)
    while True:
        raw = json.dumps(items, ensure_ascii=False).encode("utf-8")
        if len(raw) <= n_bytes:
            return raw, len(items) < len(placeholders)
        items.pop()


def decode_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def clip_rows(result: ClipResult) -> dict[str, dict[str, np.ndarray]]:
    """Rows of one clip per row group: hands and mano (sides in SIDES order, frames increasing), contacts."""
    video_id, tracks, hands = result.video_id, result.tracks, result.hands
    unknown = set(hands) - set(SIDES)
    if unknown:
        raise ValueError(f"clip {video_id}: hands keys {sorted(unknown)} not in {SIDES}")
    out = _contact_rows(tracks.contacts if tracks is not None else None)
    for group in ("hands", "mano"):
        columns = ROW_GROUPS[group][0]
        parts: dict[str, list[np.ndarray]] = {name: [empty_column(column)] for name, column in columns.items()}
        for side_index, side in enumerate(SIDES):
            track = hands.get(side)
            arrays = _checked_track(video_id, side, track) if group == "hands" and track else None
            if group == "mano" and track is not None and track.fit is not None:
                arrays = _checked_fit(video_id, side, track.fit)
            if arrays:
                parts["side"].append(np.full(len(arrays["frame_index"]), side_index, np.int8))
                for name, values in arrays.items():
                    parts[name].append(values)
        out[group] = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    return out


def _contact_rows(contacts: ContactResult | None) -> dict[str, dict[str, np.ndarray]]:
    """Rows of a clip's ContactResult in the contacts, segments and box_matches groups (empty when None)."""
    sources = {"contacts": None, "segments": None, "box_matches": None}
    if contacts is not None:
        frames = np.flatnonzero(contacts.hand_box_match >= 0).astype(np.int32)
        sources = {
            "contacts": contacts.frames,
            "segments": contacts.segments,
            "box_matches": {"frame_index": frames, "match": contacts.hand_box_match[frames]},
        }
    out = {}
    for group, source in sources.items():
        columns = ROW_GROUPS[group][0]
        if source is None:
            out[group] = {name: empty_column(column) for name, column in columns.items()}
            continue
        get = source.get if isinstance(source, dict) else lambda name, s=source: getattr(s, name)
        out[group] = {name: np.asarray(get(name)).astype(column.dtype) for name, column in columns.items()}
    return out


def _checked_fit(video_id: str, side: str, fit: ManoTrack) -> dict[str, np.ndarray]:
    n = len(fit)
    arrays = {}
    for name in MANO_FIELDS:
        column = MANO_COLUMNS[name]
        values = np.asarray(getattr(fit, name)).astype(column.dtype)
        if values.shape != (n, *column.row_shape):
            raise ValueError(
                f"clip {video_id} {side}: MANO {name} has shape {values.shape}, want {(n, *column.row_shape)}"
            )
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise ValueError(f"clip {video_id} {side}: MANO {name} is not finite")
        arrays[name] = values
    return arrays


def _checked_track(video_id: str, side: str, track: HandTrack) -> dict[str, np.ndarray]:
    if track.side != side:
        raise ValueError(f"clip {video_id}: track stored under {side!r} says side={track.side!r}")
    n = len(track)
    arrays = {}
    for name in TRACK_ARRAYS:
        column = HAND_COLUMNS[name]
        values = np.asarray(getattr(track, name), dtype=column.dtype)
        if values.shape != (n, *column.row_shape):
            raise ValueError(f"clip {video_id} {side}: {name} has shape {values.shape}, want {(n, *column.row_shape)}")
        arrays[name] = values
    if n > 1 and not np.all(np.diff(arrays["frame_index"]) > 0):
        raise ValueError(f"clip {video_id} {side}: frame_index is not strictly increasing")
    status = track.fit.detection_status if track.fit is not None else None
    arrays["lift_status"] = np.zeros(n, np.int8) if status is None else np.asarray(status, np.int8).reshape(n)
    return arrays


def _fitted_texts(result: ClipResult) -> dict[str, tuple[bytes, bool]]:
    """The clip's text columns (but the note) as stored, each with whether it had to be cut to fit."""
    meta = result.meta
    texts = {"error": result.error, "template": meta.template, "label": meta.label, "source": result.source}
    raw = {name: fit_utf8(text, TEXT_BYTES[name]) for name, text in texts.items()}
    raw["placeholders"] = _fit_placeholders(tuple(meta.placeholders), TEXT_BYTES["placeholders"])
    return raw


def truncated_texts(result: ClipResult) -> list[str]:
    """Names of the clip's text columns that are cut when stored (the note then says so)."""
    return [name for name, (_, was_cut) in _fitted_texts(result).items() if was_cut]


def clip_row(result: ClipResult) -> dict[str, np.ndarray]:
    """One-row arrays of every clip column except status and the row offsets and counts."""
    meta, tracks, note = result.meta, result.tracks, result.note
    raw_id = meta.video_id.encode("utf-8")
    if not raw_id or len(raw_id) > VIDEO_ID_BYTES:
        raise ValueError(f"video id {meta.video_id!r} must be 1..{VIDEO_ID_BYTES} UTF-8 bytes")
    raw = _fitted_texts(result)
    cut = [name for name, (_, was_cut) in raw.items() if was_cut]
    full_note = "; ".join(filter(None, [note, f"truncated: {', '.join(cut)}" if cut else ""]))
    raw["note"] = fit_utf8(full_note, TEXT_BYTES["note"])
    row = {"video_id": np.array([raw_id], CLIP_COLUMNS["video_id"].dtype)}
    row.update({name: np.array([value], CLIP_COLUMNS[name].dtype) for name, (value, _) in raw.items()})
    numbers: dict[str, float] = {"n_frames": 0, "fps": 0.0, "width": 0, "height": 0, "class_id": meta.class_id}
    numbers["focal_px"] = 0.0
    betas = np.zeros((1, len(SIDES), N_BETAS), np.float32)
    if tracks is not None:
        numbers.update(n_frames=tracks.n_frames, fps=tracks.fps, width=tracks.width, height=tracks.height)
        numbers["focal_px"] = tracks.focal_px
        for i, side in enumerate(SIDES):
            fit = tracks.hands[side].fit if side in tracks.hands else None
            if fit is not None:
                betas[0, i] = fit.betas
    row.update({name: np.array([value], CLIP_COLUMNS[name].dtype) for name, value in numbers.items()})
    row["betas"] = betas
    return row


def clip_result(row: dict[str, Any], groups: dict[str, dict[str, np.ndarray]]) -> ClipResult:
    video_id = decode_text(row["video_id"])
    meta = ClipMeta(
        video_id=video_id,
        class_id=int(row["class_id"]),
        template=decode_text(row["template"]),
        label=decode_text(row["label"]),
        placeholders=tuple(json.loads(decode_text(row["placeholders"]) or "[]")),
    )
    note = decode_text(row["note"])
    common = {
        "meta": meta,
        "source": decode_text(row["source"]),
        "error": decode_text(row["error"]),
        "notes": (note,) if note else (),
    }
    if STATUS_NAMES[int(row["status"])] != "ok":
        return ClipResult(**common)
    tracks = ClipHands(
        video_id,
        int(row["n_frames"]),
        int(row["width"]),
        int(row["height"]),
        float(row["fps"]),
        hands=_tracks(groups["hands"], groups.get("mano", {}), row.get("betas")),
        focal_px=float(row.get("focal_px", 0.0)),
        contacts=_contacts(groups, int(row["n_frames"])) if "contacts" in groups else None,
    )
    return ClipResult(**common, tracks=tracks)


def _contacts(groups: dict[str, dict[str, np.ndarray]], n_frames: int) -> ContactResult:
    frames = {name: values for name, values in groups["contacts"].items()} or {
        name: empty_column(column) for name, column in CONTACT_COLUMNS.items()
    }
    frames["in_contact"] = frames["in_contact"] > 0
    segments = groups["segments"] or {name: empty_column(column) for name, column in SEGMENT_COLUMNS.items()}
    match = np.full(n_frames, -1, np.int8)
    if groups["box_matches"]:
        inside = groups["box_matches"]["frame_index"] < n_frames
        match[groups["box_matches"]["frame_index"][inside]] = groups["box_matches"]["match"][inside]
    return ContactResult(ContactFrames(**frames), ContactSegments(**segments), match)


def _tracks(
    hands: dict[str, np.ndarray], mano: dict[str, np.ndarray], betas: np.ndarray | None
) -> dict[str, HandTrack]:
    tracks = {}
    for index, side in enumerate(SIDES):
        mine = hands["side"] == index if hands else np.zeros(0, bool)
        if not mine.any():
            continue
        fitted = mano["side"] == index if mano else np.zeros(0, bool)
        fit = None
        if fitted.any():
            values = {name: mano[name][fitted] for name in MANO_FIELDS if name in mano}  # older files: no reliable
            for flag in ("observed", "interpolated", "reliable"):
                values[flag] = values[flag] > 0 if flag in values else None
            status = hands["lift_status"][mine] if "lift_status" in hands else None
            fit = ManoTrack(side=side, betas=np.asarray(betas[index]), detection_status=status, **values)
        tracks[side] = HandTrack(side=side, **{name: hands[name][mine] for name in TRACK_ARRAYS}, fit=fit)
    return tracks
