"""Opening a results file without hanging on a damaged one.

HDF5 trusts a file's superblock: a file cut short (a full disk, a copy stopped half-way) opened for a SWMR read
retries every metadata read up to 100 times with growing sleeps, which looked like a hang. So before opening, the
superblock's end-of-file address is checked against the file's size, a SWMR read is tried only for a file whose
superblock says a SWMR writer had it open (a killed or running run), and then with few read retries unless a
writer holds the file's lock.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

import h5py

from enrich.errors import FormatError

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_SWMR_WRITE_FLAG = 0x04  # superblock v3 file consistency flags: opened by a SWMR writer, not closed since
_READ_ATTEMPTS_NO_WRITER = 2  # nothing is writing: a metadata checksum that fails twice is damage, not a race


@dataclass(frozen=True)
class Superblock:
    version: int
    flags: int
    end_of_file: int  # absolute: base address + the stored end-of-file address


def read_superblock(path: Path) -> Superblock | None:
    """The superblock at byte 0 (where enrich writes it), or None when there is none to read there."""
    with open(path, "rb") as f:
        head = f.read(96)
    if not head.startswith(_SIGNATURE) or len(head) < 13:
        return None
    version = head[8]
    if version in (2, 3):
        size_of_offsets, flags, base_at = head[9], head[11], 12
    elif version in (0, 1):
        size_of_offsets, flags, base_at = head[13], int.from_bytes(head[20:24], "little"), 24 + 4 * version
    else:
        return None
    if size_of_offsets not in (2, 4, 8) or len(head) < base_at + 3 * size_of_offsets:
        return None

    def address(k: int) -> int:
        at = base_at + k * size_of_offsets
        return int.from_bytes(head[at : at + size_of_offsets], "little")

    return Superblock(version, flags, address(0) + address(2))


def check_not_truncated(path: Path) -> Superblock | None:
    """Refuse (one line) a file shorter than its superblock says; returns the superblock."""
    block = read_superblock(path)
    size = path.stat().st_size
    if block is not None and size < block.end_of_file:
        raise FormatError(
            f"{path}: truncated or damaged results file ({size:,} bytes of the {block.end_of_file:,} its header "
            "names: a full disk or a copy cut short); its clips cannot be read, run again into a new file"
        )
    return block


def damaged(path: Path, cause: BaseException | str) -> FormatError:
    return FormatError(f"{path}: truncated or damaged results file ({' '.join(str(cause).split())})")


def _writer_running(path: Path) -> bool:
    """Whether a process holds the file's writer lock (``<file>.lock``) now."""
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops the shared lock taken above
    return False


def _set_read_attempts(fapl: h5py.h5p.PropFAID, attempts: int) -> None:
    """H5Pset_metadata_read_attempts (h5py does not wrap it) from the HDF5 library h5py is linked with."""
    with contextlib.suppress(OSError, AttributeError):  # not found: HDF5's default retries
        ctypes.CDLL(h5py.h5p.__file__).H5Pset_metadata_read_attempts(ctypes.c_int64(fapl.id), ctypes.c_uint(attempts))


def open_swmr_read(path: Path) -> h5py.File:
    """A SWMR read of a file a SWMR writer had open; few retries when no writer holds it."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    if not _writer_running(path):
        _set_read_attempts(fapl, _READ_ATTEMPTS_NO_WRITER)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl)
    return h5py.File(fid)


def swmr_writer_flag(block: Superblock | None) -> bool:
    return block is not None and block.version >= 3 and bool(block.flags & _SWMR_WRITE_FLAG)
