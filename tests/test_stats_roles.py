"""Per-class statistics by slot role: manipulated objects apart from surfaces, Pretending beside real."""

from __future__ import annotations

import numpy as np

from enrich.constants import EVIDENCE_MANIPULATED, EVIDENCE_SURFACE
from enrich.records import ClipMeta, ContactFrames, ContactResult
from enrich.stats import results_stats, role_tables


def _result(rows: list[tuple[int, int, bool, int]]) -> ContactResult:
    """rows: (frame, slot, in_contact, evidence)."""
    f = ContactFrames.empty()
    cols = {k: np.zeros(len(rows), v.dtype) for k, v in vars(f).items()}
    cols["frame_index"] = np.array([r[0] for r in rows], np.int32)
    cols["object_slot"] = np.array([r[1] for r in rows], np.int16)
    cols["in_contact"] = np.array([r[2] for r in rows], bool)
    cols["evidence"] = np.array([r[3] for r in rows], np.uint8)
    return ContactResult(ContactFrames(**cols), None, np.zeros(0, np.int8))  # type: ignore[arg-type]


def test_surface_contact_is_counted_apart_from_the_object() -> None:
    rows = [(t, 0, t < 4, EVIDENCE_MANIPULATED) for t in range(10)]
    rows += [(t, 1, True, EVIDENCE_SURFACE) for t in range(10)]  # the hand rests on the table all along
    meta = ClipMeta("1", 5, "Closing [something]")
    t = role_tables([(meta, 10, _result(rows))], class_names=("x",) * 174)["per_class_roles"]
    row = t.iloc[0]
    assert row.manipulated_contact_share == 0.4 and row.surface_contact_share == 1.0
    assert row.other_contact_share == 0.0 and row.clips == 1 and row.clips_with_surface_contact == 1


def test_samples_pretending_classes_show_no_touch_of_the_seat(sample_results) -> None:
    from enrich.store import Results

    tables = results_stats(Results(sample_results))
    per = tables["per_class_roles"].set_index("template")
    sprinkle = per.loc["Pretending to sprinkle air onto [something]"]
    assert sprinkle.clips == 1 and sprinkle.manipulated_contact_share == 0.0  # the seat is a surface
    assert sprinkle.surface_contact_share == 0.0  # ... and the fingers hover over it
    pretend = tables["pretending_roles"]
    by_name = pretend.set_index("pretend")
    for name in ("Pretending to pick something up", "Pretending to sprinkle air onto something"):
        assert by_name.loc[name, "pretend_clips"] == 1  # the number of clips behind each figure is shown
    poke = pretend[pretend.real.str.startswith("Poking")]  # 80962's class, against "Pretending to poke ..."
    assert len(poke) and (poke.real_clips == 1).all() and (poke.pretend_clips == 0).all()
