"""Loading results for training: clip selection by metadata, hand and fit quality, and a torch Dataset of MANO
hand sequences.

Both stream over a results file block by block (``Results.__iter__``), so they work on the full SSv2 set
(220,847 clips) without reading the file whole.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from enrich.constants import SIDES
from enrich.records import ClipResult, HandTrack, ManoTrack
from enrich.store import Results, open_results

# An open ``Results``, a results path, or any iterable of records (e.g. another selection).
ResultsSource = Results | str | os.PathLike[str] | Iterable[ClipResult]


@contextlib.contextmanager
def opened(results: ResultsSource) -> Iterator[Iterable[ClipResult]]:
    """Records of ``results``; a path is opened here and closed afterwards, anything else is left as is."""
    if isinstance(results, str | os.PathLike):
        with open_results(results) as opened:
            yield opened
    else:
        yield results


def fit_median_residual_2d(fit: ManoTrack) -> float:
    """Median 2D reprojection error (px) over the fit's observed frames; inf when none was observed."""
    values = fit.residual_2d_px[fit.observed]
    return float(np.median(values)) if len(values) else float("inf")


def fit_observed_fraction(fit: ManoTrack) -> float:
    """Share of the fit's rows (observed + interpolated frames) where the 2D stage saw the hand."""
    return float(np.mean(fit.observed)) if len(fit) else 0.0


def track_passes(
    track: HandTrack,
    *,
    hand: str | None = None,
    max_residual_2d_px: float | None = None,
    min_observed: float | None = None,
) -> bool:
    """Whether one hand track meets the side and fit-quality conditions (``None``: no condition).

    A quality condition needs a MANO fit: a track without one fails any quality condition.
    """
    if hand is not None and track.side != hand:
        return False
    if max_residual_2d_px is None and min_observed is None:
        return True
    fit = track.fit
    if fit is None:
        return False
    if max_residual_2d_px is not None and not fit_median_residual_2d(fit) <= max_residual_2d_px:
        return False
    return min_observed is None or fit_observed_fraction(fit) >= min_observed


def _has_contact_segment(record: ClipResult) -> bool:
    return record.contacts is not None and len(record.contacts.segments.hand) > 0


def select(
    results: ResultsSource,
    *,
    class_ids: Collection[int] | None = None,
    template: str | None = None,
    hand: str | None = None,
    in_contact: bool | None = None,
    max_residual_2d_px: float | None = None,
    min_observed: float | None = None,
    include_failed: bool = False,
) -> Iterator[ClipResult]:
    """Stream the clips of ``results`` (an open ``Results``, a path or an iterable of records) that meet every
    given condition.

    - ``class_ids``: SSv2 class id in the collection.
    - ``template``: case-insensitive substring of the SSv2 template ("pretending to").
    - ``in_contact``: True keeps clips with at least one contact segment (any hand, including box-only
      "unknown" hands), False clips with none (or no contact stage). This is a clip-level condition.
    - ``hand`` ("left"/"right"), ``max_residual_2d_px`` (median 2D reprojection error over the fit's observed
      frames) and ``min_observed`` (share of the fit's frames observed) apply per track, together: a clip passes
      when at least one of its tracks meets all of them. Quality conditions need a MANO fit.
    - Failed clips are skipped unless ``include_failed``.

    Clips come in file order, read in blocks; cheap clip-level tests run before the per-track ones.
    """
    if hand is not None and hand not in SIDES:
        raise ValueError(f"hand must be one of {SIDES} or None, not {hand!r}")
    wanted_ids = None if class_ids is None else {int(c) for c in class_ids}
    needle = None if template is None else template.lower()
    per_track = {"hand": hand, "max_residual_2d_px": max_residual_2d_px, "min_observed": min_observed}
    any_track_filter = any(v is not None for v in per_track.values())
    with opened(results) as records:
        for record in records:
            if not include_failed and record.status != "ok":
                continue
            if wanted_ids is not None and record.meta.class_id not in wanted_ids:
                continue
            if needle is not None and needle not in record.meta.template.lower():
                continue
            if in_contact is not None and _has_contact_segment(record) != in_contact:
                continue
            if any_track_filter and not any(track_passes(t, **per_track) for t in record.hands.values()):
                continue
            yield record


# ----------------------------------------------------------------------------------------------- dataset


def _window_starts(n_rows: int, window: int | None, stride: int) -> range:
    """Row offsets of the windows of one track: one whole-track item, or every full window (none if too short)."""
    if window is None:
        return range(0, 1) if n_rows > 0 else range(0)
    return range(0, n_rows - window + 1, stride) if n_rows >= window else range(0)


def _item(video_id: str, class_id: int, fit: ManoTrack, start: int, window: int | None) -> dict[str, Any]:
    stop = len(fit) if window is None else start + window
    rows = slice(start, stop)
    return {
        "global_orient": torch.from_numpy(np.ascontiguousarray(fit.global_orient[rows], np.float32)),
        "hand_pose": torch.from_numpy(np.ascontiguousarray(fit.hand_pose[rows], np.float32)),
        "betas": torch.from_numpy(np.ascontiguousarray(fit.betas, np.float32)),
        "transl": torch.from_numpy(np.ascontiguousarray(fit.transl[rows], np.float32)),
        "joints3d": torch.from_numpy(np.ascontiguousarray(fit.joints3d[rows], np.float32)),
        "observed": torch.from_numpy(np.ascontiguousarray(fit.observed[rows], bool)),
        "frame_index": torch.from_numpy(np.ascontiguousarray(fit.frame_index[rows], np.int64)),
        "video_id": video_id,
        "side": fit.side,
        "class_id": class_id,
        "start": int(fit.frame_index[start]),  # first frame of the item (0-based decoded frame)
    }


class HandSequenceDataset(Dataset):
    """MANO sequences of hand tracks, one item per fitted track or per fixed-length window of one.

    ``source`` is a results path (items are read lazily, one clip per item, from a handle opened in the process
    that reads: safe with ``DataLoader(num_workers>0)``) or an iterable of ``ClipResult`` (e.g. from
    :func:`select`; their fits are kept in memory). ``filters`` are :func:`select`'s keywords; with a path they
    choose the clips, and the per-track ones (``hand``, ``max_residual_2d_px``, ``min_observed``) also choose the
    tracks. Tracks without a MANO fit are skipped.

    ``window=None`` gives whole tracks (variable T: use ``batch_size=1`` or your own ``collate_fn``); else every
    window of ``window`` fit rows at offsets 0, ``stride``, 2 * ``stride``, ... that fits (shorter tracks give
    none). Rows are the fit's frames (observed + interpolated); a long gap splits a track into segments, and a
    window may span one: ``frame_index`` says which frames the rows are.

    Items: global_orient (T, 3), hand_pose (T, 45), betas (10,), transl (T, 3), joints3d (T, 21, 3) float32;
    observed (T,) bool; frame_index (T,) int64; video_id, side (str); class_id, start (first frame) int.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | Iterable[ClipResult],
        *,
        window: int | None = None,
        stride: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> None:
        if window is not None and window < 1:
            raise ValueError(f"window must be >= 1 or None, not {window}")
        self.window = window
        self.stride = int(stride if stride is not None else (window or 1))
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, not {self.stride}")
        self.path: Path | None = None
        self._fits: dict[tuple[str, str], ManoTrack] = {}  # records mode only
        self._results: Results | None = None
        self._pid = -1  # process that opened ``_results``: a forked worker must open its own
        filters = dict(filters or {})
        if isinstance(source, str | os.PathLike):
            self.path = Path(source)
            records: Iterable[ClipResult] = select(self.path, **filters)
        else:
            records = select(source, **filters) if filters else source
        track_filter = {k: filters.get(k) for k in ("hand", "max_residual_2d_px", "min_observed")}
        self._build_index(records, track_filter)

    def _build_index(self, records: Iterable[ClipResult], track_filter: dict[str, Any]) -> None:
        """One pass over the clips: per item, its video id, side code, class id and row offset (numpy, light)."""
        video_ids: list[str] = []
        sides, class_ids, starts = [], [], []
        for record in records:
            for side, track in record.hands.items():
                if track.fit is None or not track_passes(track, **track_filter):
                    continue
                offsets = _window_starts(len(track.fit), self.window, self.stride)
                if len(offsets) and self.path is None:
                    self._fits[(record.video_id, side)] = track.fit
                video_ids.extend([record.video_id] * len(offsets))
                sides.extend([SIDES.index(side)] * len(offsets))
                class_ids.extend([record.meta.class_id] * len(offsets))
                starts.extend(offsets)
        self._video_ids = video_ids
        self._sides = np.asarray(sides, np.int8)
        self._class_ids = np.asarray(class_ids, np.int16)
        self._starts = np.asarray(starts, np.int32)

    def __len__(self) -> int:
        return len(self._video_ids)

    def index(self, i: int) -> tuple[str, str, int]:
        """(video_id, side, first row of the item in the track's fit)."""
        return self._video_ids[i], SIDES[int(self._sides[i])], int(self._starts[i])

    def _reader(self) -> Results:
        # h5py handles do not survive fork or pickling: open one per process, on first use
        if self._results is None or self._pid != os.getpid():
            assert self.path is not None
            self._results = open_results(self.path)
            self._pid = os.getpid()
        return self._results

    def _fit(self, video_id: str, side: str) -> ManoTrack:
        if self.path is None:
            return self._fits[(video_id, side)]
        fit = self._reader()[video_id].hands[side].fit
        if fit is None:
            raise KeyError(f"clip {video_id}: no MANO fit for the {side} hand in {self.path}")
        return fit

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} items")
        video_id, side, start = self.index(int(i) % len(self))
        return _item(video_id, int(self._class_ids[i]), self._fit(video_id, side), start, self.window)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_results"], state["_pid"] = None, -1  # never pickle an open file (spawned workers reopen it)
        return state

    def close(self) -> None:
        """Close this process's handle (a later item reopens it)."""
        if self._results is not None and self._pid == os.getpid():
            self._results.close()
        self._results = None


# --- the hand model a file was fitted with, and vertices on demand ---


def hand_models_of(results: Results) -> dict[str, Any] | None:
    """The hand models the file was fitted with (by recorded path, else the default), None when not found."""
    from enrich.handmodel import load_hand_models

    attrs = results.attrs
    recorded = attrs["config"].get("hand_model") or {}
    paths = attrs["provenance"].get("hand_model_paths") or {}
    candidates = [Path(paths["right"]).parent] if "right" in paths and Path(paths["right"]).exists() else []
    for source in [*candidates, None]:
        try:
            models = load_hand_models(source)
        except Exception:  # noqa: BLE001 - any unreadable model just means no mesh
            continue
        if all(recorded.get(s, {}).get("sha256") in (None, models[s].info.sha256) for s in SIDES):
            return models
    warnings.warn(f"{results.path}: the hand model it was fitted with is not found", stacklevel=2)
    return None


def mesh_vertices(track: HandTrack, model: Any) -> np.ndarray:
    """(T', V, 3) vertices of the stored fit over ``track.fit.frame_index``, camera frame, metres."""
    fit = track.fit
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        vertices, _ = model(
            as_t(fit.global_orient), as_t(fit.hand_pose), as_t(fit.betas).reshape(1, -1), as_t(fit.transl)
        )
    return vertices.numpy()
