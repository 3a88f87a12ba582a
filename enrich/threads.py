"""Thread pools: one thread per library in every worker, so N workers on N cores do not run N x N threads."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

# Numeric libraries size their thread pools once, when they load (OpenMP in torch, OpenBLAS in numpy): a worker
# must be spawned with these already set, or N workers on N cores each run N threads and thrash.
THREAD_ENV_VARS: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
ONE_THREAD_ENV: dict[str, str] = dict.fromkeys(THREAD_ENV_VARS, "1")


@contextlib.contextmanager
def one_thread_environment() -> Iterator[None]:
    """``os.environ`` with every numeric library at one thread while a worker is spawned; restored after."""
    saved = {name: os.environ.get(name) for name in THREAD_ENV_VARS}
    os.environ.update(ONE_THREAD_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def limit_threads() -> None:
    """This process: one thread in torch (intra- and inter-op; torch reads no variable for inter-op), in OpenCV
    (its own pool for warps and resizes) and in the BLAS/OpenMP pools already loaded (numpy's OpenBLAS spins a
    second thread through the lift's small solves: measured 30 % slower per hand-frame)."""
    import cv2
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):  # inter-op work already ran here: its pool is fixed
        torch.set_num_interop_threads(1)
    cv2.setNumThreads(1)
    threadpool_limits(1)  # called, not entered: the limit stays for the life of the process
