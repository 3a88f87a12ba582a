"""One HDF5 file per run: a table of clips plus per-frame row groups, columnar, kill safe.

``schema`` (columns, units, file-level operations) <- ``rows`` (records to rows and back) <- ``reader``
(:class:`Results`) <- ``maintenance`` (recover, rewrite, merge) <- ``writer`` (:class:`ResultsWriter`).
Only records come in and out; the store knows nothing of the stages.
"""

from enrich.errors import FormatError, WriterLockedError
from enrich.store.checks import check_output, check_output_folder
from enrich.store.maintenance import add_robot_group, merge, recover
from enrich.store.reader import Results, open_results
from enrich.store.robots import RobotModelInfo
from enrich.store.rows import fit_utf8
from enrich.store.schema import (
    CLIP_COLUMNS,
    CONTACT_COLUMNS,
    HAND_COLUMNS,
    MANO_COLUMNS,
    MATCH_COLUMNS,
    ROBOT_SCHEMA_VERSION,
    ROW_GROUPS,
    SCHEMA_VERSION,
    SEGMENT_COLUMNS,
    STATUS_NAMES,
    TEXT_BYTES,
    check_writable,
    package_version,
)
from enrich.store.writer import ResultsWriter

__all__ = [
    "CLIP_COLUMNS", "CONTACT_COLUMNS", "HAND_COLUMNS", "MANO_COLUMNS", "MATCH_COLUMNS", "ROBOT_SCHEMA_VERSION",
    "ROW_GROUPS", "SCHEMA_VERSION", "SEGMENT_COLUMNS", "STATUS_NAMES", "TEXT_BYTES", "FormatError", "Results",
    "ResultsWriter", "RobotModelInfo", "WriterLockedError", "add_robot_group", "check_output", "check_output_folder",
    "check_writable", "fit_utf8", "merge",
    "open_results", "package_version", "recover",
]  # fmt: skip
