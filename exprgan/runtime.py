"""Process settings that make a CPU run faster without changing what it computes."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory(threshold: int = 1 << 30) -> bool:
    """Have glibc's ``malloc`` serve blocks up to ``threshold`` bytes from its heap and keep what is
    freed there for the next tensor, instead of mapping and unmapping them from the OS.

    By default a large tensor (over 32 MiB at most) is a fresh mapping, and its pages fault in one
    by one (7 us a 4 KiB page on the developers' VM): a batch of 32 faces at 256 px was slower per
    face than one face, and the 51 MB gradient of the classifier's first layer cost a tenth of a
    64 px training batch. The price is a process that keeps its peak memory. Called by the
    ``exprgan`` command; returns False where there is no glibc (macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, threshold))
