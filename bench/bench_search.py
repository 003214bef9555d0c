"""Search benchmark: synthetic archives in a temp folder, figures printed as a Markdown table.

    python bench/bench_search.py [--sizes 2000 20000] [--runs 5]

Each figure is min / median over --runs runs, and the rg reference is measured in the same run,
so the ratio is comparable even on a noisy machine.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

QUERY = "propaganda executed"
EXE = shutil.which("counterbrief", path=os.path.dirname(sys.executable)) or "counterbrief"
# What any click + whoosh search process pays before it does any work: start-up and imports.
FLOOR = [sys.executable, "-c", "import click, whoosh.index, whoosh.searching, whoosh.qparser, whoosh.highlight, "
         "whoosh.collectors, whoosh.sorting, whoosh.codec.whoosh3"]


def timed(cmd, **kw) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def stats(values) -> str:
    return f"{min(values) * 1000:.0f} / {statistics.median(values) * 1000:.0f} ms"


def du(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def bench(n: int, runs: int, build_runs: int) -> list[str]:
    from counterbrief import load
    from counterbrief.search import Index, SearchRequest, search
    from counterbrief.validate import load_vocabulary

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = synth.make_archive(Path(tmp) / "a", n)
        archive = load.find_archive(root, None, Path("/"))
        builds = []
        for _ in range(build_runs):
            t = time.perf_counter()
            Index(archive).fresh(rebuild=True)
            builds.append(time.perf_counter() - t)
        rows.append(f"| {n:,} | full build (in process) | {min(builds):.1f} / {statistics.median(builds):.1f} s "
                    f"| {n / min(builds):.0f} stories/s | |")
        cmd = [EXE, "--archive", str(root), "search", QUERY, "--facets"]
        rg = ["rg", "-l", "-i", "-w", "propaganda", str(root / "stories")]
        ours, ref, edited, floor = [], [], [], []
        story = root / "stories" / "synthetic-000001.md"
        original = story.read_text()
        timed(cmd)   # the index is fresh and the files are in the page cache before the first timed run
        for i in range(runs):  # interleaved, so all three see the same machine
            ours.append(timed(cmd))
            ref.append(timed(rg))
            floor.append(timed(FLOOR))
            story.write_text(original.replace("Synthetic account 1\n", f"Synthetic account 1 edit{i}\n", 1))
            edited.append(timed(cmd))
        rows.append(f"| {n:,} | `search` whole process, unchanged archive (snippets + facets) | {stats(ours)} "
                    f"| rg -l -i -w: {stats(ref)} | **{statistics.median(ours) / statistics.median(ref):.2f}x** |")
        rows.append(f"| {n:,} | floor: a Python process that only imports click and whoosh's search modules "
                    f"| {stats(floor)} | rg -l -i -w: {stats(ref)} | {statistics.median(floor) / statistics.median(ref):.2f}x |")
        rows.append(f"| {n:,} | `search` right after one story changed | {stats(edited)} | unchanged: "
                    f"{stats(ours)} | **{statistics.median(edited) / statistics.median(ours):.2f}x** "
                    f"({statistics.median(edited) / statistics.median(ref):.2f}x rg) |")
        idx = Index(archive)
        idx.fresh()
        vocab, _ = load_vocabulary(archive)
        lat = []
        for _ in range(runs * 3):
            t = time.perf_counter()
            search(idx, SearchRequest(query=QUERY, facets=True), vocab)
            lat.append(time.perf_counter() - t)
        rows.append(f"| {n:,} | query in process (warm; highlights + facets) | {stats(lat)} | | |")
        rows.append(f"| {n:,} | index size | {du(idx.home):.0f} MB | stories on disk: "
                    f"{du(root / 'stories'):.0f} MB | |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--build-runs", type=int, default=2)
    args = ap.parse_args()
    helps = [timed([EXE, "--help"]) for _ in range(args.runs * 2)]
    print("| stories | what | counterbrief (min / median) | reference | ratio |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| - | `counterbrief --help` | {stats(helps)} | | |")
    for n in args.sizes:
        for row in bench(n, args.runs, args.build_runs):
            print(row, flush=True)


if __name__ == "__main__":
    main()
