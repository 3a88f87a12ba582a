"""SSv2 metadata: labels / train / validation files and the official 174-class list shipped in
``enrich/data/ssv2_labels.txt`` (class ids always come from it)."""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import ijson

from enrich.errors import MetadataError
from enrich.inputs.common import PathLike, first_byte, one_line
from enrich.records import ClipMeta

LABELS_PATH = Path(__file__).resolve().parent.parent / "data" / "ssv2_labels.txt"
N_CLASSES = 174
MetadataKind = Literal["labels_json", "entries_json", "label_map"]


class LabelMismatchWarning(UserWarning):
    """A label file disagrees with the official SSv2 class list (e.g. Something-Else's own split ids)."""


def template_key(template: str) -> str:
    """Normalised template for lookup: brackets removed, whitespace collapsed, case folded.

    "Putting [something] onto [something]" and "Putting something onto something" give the same key.
    """
    return " ".join(template.replace("[", "").replace("]", "").split()).casefold()


def official_class_names() -> tuple[str, ...]:
    """The 174 official SSv2 class names (bracket-free templates); position = class id."""
    return _read_label_map(LABELS_PATH)


def _read_label_map(path: Path) -> tuple[str, ...]:
    with open(path, encoding="utf-8") as f:
        return tuple(line.strip() for line in f if line.strip())


def fill_template(template: str, placeholders: Iterable[str]) -> str:
    """Fill the ``[...]`` slots in order: ("cup", "plate") make "Putting cup onto plate".

    Slots without a placeholder stay as they are.
    """
    items = iter(placeholders)
    return re.sub(r"\[[^\]]*\]", lambda m: next(items, m.group(0)), template)


class Metadata(Mapping[str, ClipMeta]):
    """SSv2 clip metadata by video id, plus the official class list used for class ids."""

    def __init__(self, clips: dict[str, ClipMeta], class_names: tuple[str, ...]) -> None:
        self.clips = clips
        self.class_names = class_names
        self._class_ids = {template_key(name): i for i, name in enumerate(class_names)}

    def class_id(self, template: str) -> int:
        """Official class id of a template (with or without brackets), -1 when unknown."""
        return self._class_ids.get(template_key(template), -1)

    def __getitem__(self, video_id: str) -> ClipMeta:
        return self.clips[video_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.clips)

    def __len__(self) -> int:
        return len(self.clips)


def detect_metadata_kind(path: PathLike) -> MetadataKind:
    """``{...}``: labels JSON, ``[...]``: train/validation entries, anything else: 174-line label map."""
    with open(path, "rb") as f:
        first = first_byte(f)
    if first == b"{":
        return "labels_json"
    if first == b"[":
        return "entries_json"
    return "label_map"


def _check_label_map(path: Path, names: tuple[str, ...], official: tuple[str, ...]) -> None:
    """Warn when a user label map is not the official list (ids are still taken from the official list)."""
    if len(names) != len(official):
        warnings.warn(
            f"{path}: {len(names)} labels, the official SSv2 list has {len(official)}; using the official class ids",
            LabelMismatchWarning,
            stacklevel=3,
        )
        return
    pairs = enumerate(zip(names, official, strict=True))
    wrong = [i for i, (a, b) in pairs if template_key(a) != template_key(b)]
    if wrong:
        i = wrong[0]
        warnings.warn(
            f"{path}: {len(wrong)} of {len(names)} lines differ from the official SSv2 list "
            f"(line {i}: {names[i]!r}, official {official[i]!r}); using the official class ids",
            LabelMismatchWarning,
            stacklevel=3,
        )


def _check_labels_json(path: Path, labels: Any, metadata: Metadata) -> None:
    """Warn when a labels JSON's ids are not the official ids (Something-Else's split files are not)."""
    if not isinstance(labels, dict):
        raise MetadataError(f"{path}: labels JSON must map templates to ids")
    unknown = [t for t in labels if metadata.class_id(t) < 0]
    wrong = [t for t in labels if metadata.class_id(t) >= 0 and str(labels[t]) != str(metadata.class_id(t))]
    if unknown:
        warnings.warn(
            f"{path}: {len(unknown)} templates are not SSv2 classes (e.g. {unknown[0]!r})",
            LabelMismatchWarning,
            stacklevel=3,
        )
    if wrong:
        t = wrong[0]
        warnings.warn(
            f"{path}: {len(wrong)} of {len(labels)} class ids are not the official SSv2 ids "
            f"(e.g. {t!r}: {labels[t]}, official {metadata.class_id(t)}); using the official ids",
            LabelMismatchWarning,
            stacklevel=3,
        )


def _entry_meta(entry: Any, metadata: Metadata) -> ClipMeta | None:
    """ClipMeta of one train/validation/test entry; None when it has no id."""
    if not isinstance(entry, dict) or entry.get("id") is None:
        return None
    template = str(entry.get("template") or "")
    placeholders = tuple(str(p) for p in entry.get("placeholders") or ())
    label = entry.get("label")
    return ClipMeta(
        video_id=str(entry["id"]).strip(),
        class_id=metadata.class_id(template) if template else -1,
        template=template,
        label=str(label) if label else fill_template(template, placeholders),
        placeholders=placeholders,
    )


def _read_entries(path: Path, metadata: Metadata) -> None:
    skipped, unknown_templates = 0, set()
    with open(path, "rb") as f:
        try:
            for entry in ijson.items(f, "item"):
                meta = _entry_meta(entry, metadata)
                if meta is None:
                    skipped += 1
                    continue
                if meta.template and meta.class_id < 0:
                    unknown_templates.add(meta.template)
                metadata.clips[meta.video_id] = meta  # a later file wins for a repeated id
        except ijson.JSONError as e:
            raise MetadataError(f"{path}: invalid JSON ({one_line(str(e).splitlines()[0])})") from e
    if skipped:
        warnings.warn(f"{path}: skipped {skipped} entries without an id", stacklevel=3)
    if unknown_templates:
        warnings.warn(
            f"{path}: {len(unknown_templates)} templates are not SSv2 classes "
            f"(e.g. {sorted(unknown_templates)[0]!r}); their class_id is -1",
            LabelMismatchWarning,
            stacklevel=3,
        )


def load_metadata(paths: PathLike | Iterable[PathLike]) -> Metadata:
    """Read SSv2 metadata files; the kind of each file is detected from its content.

    - train/validation/test JSON (list of ``{id, label, template, placeholders}``): gives ClipMeta per clip;
      ``class_id`` = official id of the template, ``label`` = the entry's filled label (the template filled
      in when absent). A later file wins for a repeated id.
    - labels JSON (``{"Template without brackets": "id"}``) or a 174-line label map: checked against the
      official list shipped with the package; any disagreement is a LabelMismatchWarning and the official
      ids are used.
    """
    path_list = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    metadata = Metadata({}, official_class_names())
    for path in path_list:
        kind = detect_metadata_kind(path)
        if kind == "entries_json":
            _read_entries(path, metadata)
        elif kind == "labels_json":
            with open(path, encoding="utf-8") as f:
                try:
                    labels = json.load(f)  # 174 entries at most
                except json.JSONDecodeError as e:
                    raise MetadataError(f"{path}: invalid JSON ({e})") from e
            _check_labels_json(path, labels, metadata)
        else:
            _check_label_map(path, _read_label_map(path), metadata.class_names)
    return metadata


