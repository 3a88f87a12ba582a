"""Native libraries that talk on file descriptor 2: their chatter silenced where it is known to be noise."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 goes to /dev/null inside (TFLite's "INFO: Created TensorFlow Lite XNNPACK delegate for
    CPU." on every interpreter, inside the progress bar); Python's own ``sys.stderr`` writes are flushed first."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
