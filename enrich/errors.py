"""The project's errors. Every error a user can cause derives from :class:`EnrichError`, whose message is one
line naming the file or clip and the cause; the CLI prints it and exits with ``exit_code``. Anything else is a
bug and keeps its traceback. Each also derives from the built-in error it refines (``ValueError`` ...), so
``except ValueError`` callers keep working.
"""

from __future__ import annotations

import os

EXIT_OK, EXIT_CLIPS_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal number, as shells report a process ended by it


class EnrichError(Exception):
    """Base of every user-facing error: bad usage or bad input, told in one line."""

    exit_code: int = EXIT_USAGE


class UsageError(EnrichError, ValueError):
    """Arguments that cannot work together, or a value out of range."""


class MissingFileError(EnrichError, FileNotFoundError):
    """A file or folder the command needs does not exist."""


class OutputExistsError(EnrichError, FileExistsError):
    """The output exists and the command was not told what to do with it (``--resume``, ``--overwrite``)."""


class UnknownClipError(EnrichError, KeyError):
    """A video id that is not in the results file."""

    def __str__(self) -> str:  # KeyError's str() quotes its message
        return str(self.args[0]) if self.args else ""


class ClipError(EnrichError):
    """A clip that cannot be processed; the message is one line naming the clip and the cause."""

    def __init__(self, video_id: str, cause: str) -> None:
        self.video_id = video_id
        self.cause = cause
        super().__init__(f"clip {video_id}: {cause}")


class BoxFileError(EnrichError, ValueError):
    """A box file (JSON part or index) that cannot be read; one-line message naming the file and cause."""


class MetadataError(EnrichError, ValueError):
    """An SSv2 metadata file that cannot be read."""


class HandModelError(EnrichError, ValueError):
    """A hand-model file that cannot be used; the message is one line: the file, what was expected, what was found."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class FormatError(EnrichError, ValueError):
    """The file is not an enrich results file this version can read."""


class ConfigMismatchError(EnrichError, ValueError):
    """Results that cannot be combined: resuming or merging runs of different configurations, duplicate ids."""


class MissingDependencyError(EnrichError, ImportError):
    """An optional package a command needs is not installed; the message names the pip command."""


class WriterLockedError(EnrichError, RuntimeError):
    """Another process is writing (or recovering) the same results file."""


class ShowError(EnrichError, ValueError):
    """A clip that cannot be shown; one line naming the clip and the cause."""

    def __init__(self, video_id: str, cause: str) -> None:
        super().__init__(f"clip {video_id}: {cause}")
