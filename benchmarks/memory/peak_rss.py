"""Run a command and report its peak memory: python benchmarks/memory/peak_rss.py JSON -- CMD...

Samples, every 100 ms, the memory of the command's process and of every process under
it (decode workers included) and prints the peak of their sum (proportional set sizes:
pages a forked worker shares with its parent count once) and each process's peak
resident set (the main process's and the largest), with the CPU line and the command.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil

from clipsearch.bench.common import cpu_line

MB = 1024 * 1024


def watch(cmd: list[str]) -> dict[str, object]:
    started = time.perf_counter()
    child = subprocess.Popen(cmd)
    main = psutil.Process(child.pid)
    peak_total = peak_main = 0
    peaks: dict[int, int] = {}
    while child.poll() is None:
        try:
            procs = [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            break
        total = 0
        for proc in procs:
            try:
                memory = proc.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            total += memory.pss
            peaks[proc.pid] = max(peaks.get(proc.pid, 0), memory.rss)
        peak_total = max(peak_total, total)
        peak_main = max(peak_main, peaks.get(child.pid, 0))
        time.sleep(0.1)
    return {
        "command": " ".join(cmd),
        "exit_code": child.wait(),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_pss_mb_all_processes": round(peak_total / MB),
        "peak_rss_mb_main": round(peak_main / MB),
        "peak_rss_mb_largest_process": round(max(peaks.values(), default=0) / MB),
        "processes_seen": len(peaks),
    }


if __name__ == "__main__":
    if "--" not in sys.argv[2:]:
        sys.exit("usage: peak_rss.py OUT.json -- CMD [ARGS...]")
    out = Path(sys.argv[1])
    cmd = sys.argv[sys.argv.index("--") + 1 :]
    print(cpu_line())
    report = watch(cmd)
    report["cpu"] = cpu_line()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    sys.exit(int(report["exit_code"] != 0))
