"""Run a command and report its wall time and peak resident memory: of the largest process and,
sampled every 20 ms from /proc (Linux), of all its processes together.

    python bench/memwatch.py counterbrief --archive A index --rebuild
"""
from __future__ import annotations

import os
import subprocess
import sys
import time


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(name))
    return tree


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss(root: int) -> tuple[int, int]:
    """(sum, largest) resident bytes of root and all its descendants, now."""
    tree = _children()
    todo, total, largest = [root], 0, 0
    while todo:
        pid = todo.pop()
        r = _rss(pid)
        total += r
        largest = max(largest, r)
        todo += tree.get(pid, [])
    return total, largest


def run(cmd: list[str], **kw) -> dict:
    """{'seconds', 'all_mb', 'largest_mb', 'returncode'} of one run of cmd."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    peak_all = peak_one = 0
    while proc.poll() is None:
        total, largest = tree_rss(proc.pid)
        peak_all, peak_one = max(peak_all, total), max(peak_one, largest)
        time.sleep(0.02)
    seconds = time.perf_counter() - t
    err = proc.stderr.read().decode(errors="replace")
    return {"seconds": seconds, "all_mb": peak_all / 1e6, "largest_mb": peak_one / 1e6,
            "returncode": proc.returncode, "stderr": err[-500:]}


if __name__ == "__main__":
    r = run(sys.argv[1:])
    print(f"{r['seconds']:.1f} s; peak {r['all_mb']:.0f} MB over all processes, {r['largest_mb']:.0f} MB largest; "
          f"exit {r['returncode']}")
