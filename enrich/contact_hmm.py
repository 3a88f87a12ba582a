"""The contact model's sequence decoder: a three-phase HMM (before -> contact <-> after) with minimum durations,
decoded with Viterbi. One (hand, slot) sequence at a time in ``enrich run``; the trainer decodes a sequence under
many (emission scale, bias) pairs at once (``viterbi_masks``), which is what makes nested leave-one-clip-out
affordable. Pure functions on arrays; contact_model.py re-exports them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PHASES: tuple[str, str, str] = ("before", "contact", "after")
BEFORE, CONTACT, AFTER = 0, 1, 2


@dataclass(frozen=True)
class HmmParams:
    min_contact_frames: int = 3
    min_free_frames: int = 3  # a release lasts at least this long before the next contact
    mean_before_frames: float = 15.0
    mean_contact_frames: float = 20.0
    mean_after_frames: float = 20.0
    emission_bias: float = 0.0  # added to the contact score before decoding (chosen leave-one-clip-out)
    emission_scale: float = 1.0  # frames are not independent: a scale < 1 tempers the per-frame evidence
    max_gap_frames: int = 0  # a hand unseen for at most this many frames between two rows may still touch

    @classmethod
    def from_dict(cls, d: dict) -> HmmParams:
        return cls(**d)


def viterbi_segments(scores: np.ndarray, hmm: HmmParams) -> list[tuple[int, int]]:
    """(start, end inclusive) contact segments of one (hand, slot) sequence.

    scores (n, 3): per-frame phase log-likelihoods (Logistic.scores); rows of NaN where the pair has no row
    (contact impossible there, either free phase possible)."""
    mask = viterbi_masks(scores, hmm, [hmm.emission_scale], [hmm.emission_bias])[0]
    return mask_runs(mask)


def viterbi_masks(scores: np.ndarray, hmm: HmmParams, scales: Sequence[float], biases: Sequence[float]) -> np.ndarray:
    """(B, n) contact masks of one sequence decoded under B (emission scale, emission bias) pairs at once;
    ``hmm``'s own scale and bias are not used."""
    e0 = np.asarray(scores, np.float64).reshape(-1, 3)
    n, n_pairs = len(e0), len(scales)
    missing = ~np.all(np.isfinite(e0), axis=1)
    if n == 0 or missing.all():
        return np.zeros((n_pairs, n), bool)
    e = np.asarray(scales, np.float64)[:, None, None] * np.where(missing[:, None], 0.0, e0)[None]
    e[:, :, CONTACT] += np.asarray(biases, np.float64)[:, None]
    e[:, missing, CONTACT] = -np.inf
    for s, t in mask_runs(missing):
        if s > 0 and t < n - 1 and t - s + 1 <= hmm.max_gap_frames:
            e[:, s : t + 1] = 0.0  # a short unseen stretch inside the sequence: no evidence either way
    e = np.clip(e, -1e6, 50.0)
    a, b = max(int(hmm.min_free_frames), 1), max(int(hmm.min_contact_frames), 1)
    phase = np.array([BEFORE] + [CONTACT] * b + [AFTER] * a)  # state 0 before, 1..b contact, b+1..b+a after
    trans = log_transitions(a, b, hmm)
    emit = e[:, :, phase]  # (B, n, states)
    score = np.full((n_pairs, len(phase)), -np.inf)
    # a clip starts before a contact, in one (for at least the minimum), or idle: the after phase doubles as
    # "free with no contact due", so a clip without any touch is not forced through one
    score[:, [0, 1, b + 1]] = np.log(1.0 / 3.0)
    score = score + emit[:, 0]
    back = np.zeros((n, n_pairs, len(phase)), np.int64)
    for t in range(1, n):
        cand = score[:, :, None] + trans[None]  # (B, from, to)
        back[t] = np.argmax(cand, axis=1)
        score = np.take_along_axis(cand, back[t][:, None, :], axis=1)[:, 0] + emit[:, t]
    path = np.zeros((n_pairs, n), np.int64)
    path[:, -1] = np.argmax(score, axis=1)
    pairs = np.arange(n_pairs)
    for t in range(n - 1, 0, -1):
        path[:, t - 1] = back[t, pairs, path[:, t]]
    return phase[path] == CONTACT


def log_transitions(a: int, b: int, hmm: HmmParams) -> np.ndarray:
    """Log transitions: before (self loop) -> contact chain (b) -> after chain (a) -> contact again."""
    n_states = 1 + b + a
    trans = np.full((n_states, n_states), -np.inf)
    for i in list(range(1, b)) + list(range(b + 1, b + a)):
        trans[i, i + 1] = 0.0  # inside a chain: on to the next state
    leave = {  # a phase stays on average two frames past its minimum at least: leaving is never forced
        0: 1.0 / max(hmm.mean_before_frames, 2.0),
        b: 1.0 / max(hmm.mean_contact_frames - b + 1, 2.0),
        b + a: 1.0 / max(hmm.mean_after_frames - a + 1, 2.0),
    }
    nxt = {0: 1, b: b + 1, b + a: 1}
    for state, p in leave.items():
        trans[state, state], trans[state, nxt[state]] = np.log1p(-p), np.log(p)
    return trans


def mask_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return [(int(s), int(e)) for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True)]
