"""glibc keeps freed large blocks on the heap once asked (training reuses its buffers)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, sys
from clipsearch.heap import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
def heap():
    with open("/proc/self/maps") as f:
        for line in f:
            if line.rstrip().endswith("[heap]"):
                lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
                return lo, hi
    return 0, 0
lo, hi = heap()
block = libc.malloc(64 << 20)
print(int(lo <= block < hi))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
@pytest.mark.parametrize(("mode", "on_heap"), [("keep", "1"), ("default", "0")])
def test_large_blocks_come_from_the_heap_once_kept(mode: str, on_heap: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == on_heap
