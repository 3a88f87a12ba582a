"""Inputs of the pipeline: Something-Else boxes (``boxes``), SSv2 metadata (``metadata``), clips (``clips``).

Each reader turns files into records (``enrich.records``) and raises a one-line :class:`~enrich.errors.EnrichError`
naming the file or clip on bad input.
"""

from enrich.errors import BoxFileError, MetadataError
from enrich.inputs.boxes import BoxIndex, default_cache_dir, index_boxes, is_box_index, load_boxes
from enrich.inputs.clips import VIDEO_EXTS, discover_clips, read_clip, video_id_from_path
from enrich.inputs.metadata import (
    N_CLASSES,
    LabelMismatchWarning,
    Metadata,
    detect_metadata_kind,
    fill_template,
    load_metadata,
    official_class_names,
    template_key,
)
from enrich.records import ClipSource

__all__ = [
    "N_CLASSES", "VIDEO_EXTS", "BoxFileError", "BoxIndex", "ClipSource", "LabelMismatchWarning", "Metadata",
    "MetadataError", "default_cache_dir", "detect_metadata_kind", "discover_clips", "fill_template", "index_boxes",
    "is_box_index", "load_boxes", "load_metadata", "official_class_names", "read_clip", "template_key",
    "video_id_from_path",
]  # fmt: skip
