"""The project's errors. Every error a user can cause derives from :class:`EnrichError`, whose message is one
line naming the file or clip and the cause; the CLI prints it and exits with ``exit_code``. Anything else is a
bug and keeps its traceback. Each also derives from the built-in error it refines (``ValueError`` ...), so
``except ValueError`` callers keep working.
"""

from __future__ import annotations

import os

EXIT_OK, EXIT_CLIPS_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGINT, EXIT_SIGTERM = 130, 143  # 128 + the signal number, as shells report a process ended by it

# The one source of the exit codes' meanings: the README's table is this one (tests/test_reliability2.py).
EXIT_CODES: dict[str, str] = {
    f"{EXIT_OK}": "done; every clip of this run is ok (or, with `--resume`, none was left to run)",
    f"{EXIT_CLIPS_FAILED}": "done, but some clips failed: the summary names the first 10, "
    "`enrich info FILE --show-failed N` lists them",
    f"{EXIT_USAGE}": "bad usage or bad input: missing inputs, box files off the Something-Else schema, an output "
    "that exists, is write-protected or cannot be written, a damaged results file (nothing was processed, "
    "or the command stopped before writing)",
    f"{EXIT_SIGINT} / {EXIT_SIGTERM}": "stopped by SIGINT (Ctrl-C) / SIGTERM; the finished clips are in the file, "
    "`--resume` goes on (stopped before the first clip: the output is as it was)",
}


def exit_code_table() -> str:
    """EXIT_CODES as the README's Markdown table."""
    rows = [f"| {code} | {meaning} |" for code, meaning in EXIT_CODES.items()]
    return "\n".join(["| exit | meaning |", "|-----:|---------|", *rows])


class EnrichError(Exception):
    """Base of every user-facing error: bad usage or bad input, told in one line."""

    exit_code: int = EXIT_USAGE


class UsageError(EnrichError, ValueError):
    """Arguments that cannot work together, or a value out of range."""


class MissingFileError(EnrichError, FileNotFoundError):
    """A file or folder the command needs does not exist."""


class UnwritableError(EnrichError, PermissionError):
    """An output (file or folder) that cannot be written: read-only, or in a folder that cannot hold it."""


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


class RobotModelError(EnrichError, ValueError):
    """A robot model that cannot be used; one line naming the file and the cause."""


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


class LeRobotExportError(EnrichError, ValueError):
    """A LeRobot export that cannot be written (bad output folder, no robot tracks)."""


class ShowError(EnrichError, ValueError):
    """A clip that cannot be shown; one line naming the clip and the cause."""

    def __init__(self, video_id: str, cause: str) -> None:
        super().__init__(f"clip {video_id}: {cause}")


class StoppedError(EnrichError):
    """A stop signal (SIGINT, SIGTERM) before the command wrote anything; ``exit_code`` is the signal's."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
