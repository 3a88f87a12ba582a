"""Slot roles for the contact stage: which Something-Else slot is the manipulated object, which are places
and surfaces, from the clip's SSv2 template and the boxes' sizes."""

from __future__ import annotations

import numpy as np

ROLE_MANIPULATED, ROLE_OTHER, ROLE_SURFACE = 0, 1, 2
ROLE_NAMES: tuple[str, str, str] = ("manipulated", "other", "surface")

# a placeholder right after one of these words is where something goes or what is acted on from afar
# ("onto [something]", "sprinkle air onto [something]"), not the thing the hand moves
_TARGET_WORDS = frozenset(
    [
        "onto",
        "on",
        "into",
        "in",
        "over",
        "under",
        "behind",
        "beside",
        "from",
        "off",
        "of",
        "out",
        "with",
        "against",
        "across",
        "along",
        "around",
        "through",
    ]
    + ["next to", "in front of", "on top of", "underneath", "towards", "toward", "at", "to"]
)


FILLS_VIEW_SHARE = 0.9


def placeholder_is_target(template: str) -> list[bool]:
    """Per placeholder of an SSv2 template ("[something]" or bare "something"): True when a preposition
    precedes it (a destination or a surface acted on), False for a direct object (the manipulated thing)."""
    words = template.replace("[", " ").replace("]", " ").replace(",", " ").split()
    out = []
    for i, w in enumerate(words):
        if w.lower() == "something":
            before = [x.lower() for x in words[max(i - 3, 0) : i]]
            out.append(any(" ".join(before[j:]) in _TARGET_WORDS for j in range(len(before))))
    return out


def slot_roles(
    slots: np.ndarray,
    boxes: np.ndarray,
    width: int | None,
    height: int | None,
    surface_share: float,
    template: str = "",
) -> dict[int, int]:
    """slot -> ROLE_*.

    Something-Else numbers the slots in the order of the template's placeholders. The manipulated slot is
    the first whose placeholder is a direct object ("Pretending to pick [something] up"), not a place
    ("Pretending to sprinkle air onto [something]"); without a template, the first slot that is not a surface.
    A slot whose median box covers ``surface_share`` of the frame is a surface unless it is the manipulated one
    (a pillow filling the view is still what the hand acts on); without a template, slot 0 is a surface only
    when it fills the view (``FILLS_VIEW_SHARE``: a seat, a table). Without a frame size, the frame is
    estimated from the boxes (SSv2 frames are 240 px high, at least 4:3)."""
    slots = np.asarray(slots)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if width is None or height is None:
        height = max(240.0, float(boxes[:, 3].max(initial=0.0)))
        width = max(4.0 / 3.0 * height, float(boxes[:, 2].max(initial=0.0)))
    area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 0.0), axis=1) / (float(width) * float(height))
    present = sorted(set(slots.tolist()))
    share = {int(k): float(np.median(area[slots == k])) for k in present}
    large = {k: a >= surface_share for k, a in share.items()}
    if not template and 0 in large:  # no template: slot 0 is the thing acted on unless it fills the view
        large[0] = share[0] >= FILLS_VIEW_SHARE
    target = placeholder_is_target(template) if template else []
    if target:
        direct = [int(k) for k in present if k < len(target) and not target[k]]
        manipulated = direct[0] if direct else None
    else:
        small = [int(k) for k in present if not large[k]]
        manipulated = small[0] if small else None
    roles = {int(k): ROLE_SURFACE if large[int(k)] else ROLE_OTHER for k in present}
    if manipulated is not None:
        roles[manipulated] = ROLE_MANIPULATED
    return roles


def unboxed_manipulated(template: str, boxed_slots: list[int]) -> int | None:
    """The manipulated slot (the template's first direct object) when the clip boxes other objects but never
    it: Something-Else leaves a thing unboxed while the hand holds and hides it ("Putting [something] onto
    [something]" with only the place boxed). None when it is boxed, when nothing is, without a template, or
    when the action is pretended (the hand may hold nothing)."""
    pretended = template.lower().startswith("pretending")
    target = placeholder_is_target(template) if template and not pretended else []
    direct = [k for k, is_target in enumerate(target) if not is_target]
    if not direct or not boxed_slots or direct[0] in boxed_slots:
        return None
    return direct[0]
