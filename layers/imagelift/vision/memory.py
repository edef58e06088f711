"""How much freed memory the classifier's process keeps: glibc's malloc, told not to grow its mmap threshold.

Every photo allocates and frees large buffers (the decode, P-Net's pyramid levels and their activations, the YOLO
input), each a different size. glibc serves blocks from 128 KiB up with ``mmap`` and returns them to the system on
``free``, but after the first such free it raises that threshold to the block's size (up to 32 MiB), so later
blocks come from the heap, which keeps its freed top for the next photo and fragments: the classifier's anonymous
memory grew from 55 to about 190 MB over 78 photos. Fixing the threshold (``mallopt(M_MMAP_THRESHOLD)``, which
also turns the adjustment off) keeps every large block returning to the system when it is freed
(bench/results/vision_cold_start.json: peak RSS and per-photo CPU time with and without it).
"""

from __future__ import annotations

import ctypes
import platform

M_MMAP_THRESHOLD = -3
"""glibc's mallopt parameter number (malloc.h)."""


def fix_mmap_threshold(threshold_bytes: int) -> bool:
    """Set glibc's mmap threshold to ``threshold_bytes`` for the rest of the process; False (and nothing done)
    when ``threshold_bytes`` is 0 or the C library is not glibc."""
    if threshold_bytes <= 0 or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, int(threshold_bytes)) == 1
