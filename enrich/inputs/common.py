"""What the input readers share."""

from __future__ import annotations

import os
from typing import IO

PathLike = str | os.PathLike[str]


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) as one space: error messages stay one line."""
    return " ".join(str(text).split())


def id_sort_key(video_id: str) -> tuple[int, int, str]:
    return (0, int(video_id), video_id) if video_id.isdigit() else (1, 0, video_id)


def first_byte(f: IO[bytes]) -> bytes:
    """First non-whitespace byte (b"" for an empty file); rewinds the file."""
    head = f.read(4096).lstrip()
    f.seek(0)
    return head[:1]
