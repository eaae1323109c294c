"""Keep freed tensor memory for reuse instead of handing it back to the kernel (glibc).

glibc serves every allocation above 32 MiB with a fresh ``mmap`` and unmaps it on
``free``, so a training step whose activations are that large (the tiny CLIP on 64
clips x 8 frames) faults in and zeroes the same buffers again on every step: about a
fifth of a step went to the kernel. :func:`keep_freed_memory` tells glibc to serve
large blocks from the heap and not to trim it, so freed buffers are reused; the
process keeps its peak memory until it exits.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1  # mallopt takes an int: trim only when 2 GiB lie free at the top


def keep_freed_memory() -> bool:
    """Whether glibc now keeps freed large blocks (False elsewhere, e.g. macOS or musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM) == 1
    if not ok:
        log.debug("mallopt refused; large blocks stay mmapped")
    return ok
