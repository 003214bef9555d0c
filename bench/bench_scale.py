"""Scale benchmark: build, check, search, stats, show and briefs on synthetic archives of
2,000 to 100,000 stories, in two layouts (sources shared by 50 stories; one source per story),
printed as a Markdown table. Not a test: the 100,000-story run takes the best part of an hour.

    python bench/bench_scale.py --sizes 2000 20000 --runs 7
    python bench/bench_scale.py --sizes 100000 --runs 5 --layouts shared per-story

Every figure is min / median of --runs whole processes; each search row is interleaved in one
loop with rg, the floor process and (if ``watchdog`` is installed) the watcher, so the ratios
compare runs on the same machine state. Peak memory is sampled from /proc every 20 ms
(bench/memwatch.py): the largest process, and all processes of the command together.
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
import memwatch  # noqa: E402
import synth  # noqa: E402

QUERY = "propaganda executed"
EXE = shutil.which("counterbrief", path=os.path.dirname(sys.executable)) or "counterbrief"
LAYOUTS = {"shared": 50, "per-story": 1}


def floor_cmd(root: Path) -> list[str]:
    """What any click + whoosh command that checks freshness pays: start-up, imports, one stat per file."""
    return [sys.executable, "-c",
            "import os, sys, click, whoosh.index, whoosh.searching, whoosh.qparser, whoosh.highlight, "
            "whoosh.collectors, whoosh.sorting, whoosh.codec.whoosh3\n"
            "for sub in ('stories', 'sources'):\n"
            "    with os.scandir(os.path.join(sys.argv[1], sub)) as it:\n"
            "        for e in it:\n"
            "            e.stat()\n", str(root)]


def timed(cmd, **kw) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def ms(values) -> str:
    return f"{min(values) * 1000:.0f} / {statistics.median(values) * 1000:.0f} ms"


def ratio(a, b) -> str:
    return f"{statistics.median(a) / statistics.median(b):.2f}x"


def watcher_available() -> bool:
    try:
        import watchdog  # noqa: F401
        return True
    except ImportError:
        return False


def bench(n: int, layout: str, runs: int, briefs: bool) -> list[str]:
    rows = []
    tag = f"| {n:,} | {layout} |"
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        root = synth.make_archive(Path(tmp) / "a", n, per_snapshot=LAYOUTS[layout])
        cb = [EXE, "--archive", str(root)]
        env = {**os.environ, "COUNTERBRIEF_NO_WATCH": "1"}
        build = memwatch.run([*cb, "index", "--rebuild"], env=env)
        assert build["returncode"] == 0, build["stderr"]
        rows.append(f"{tag} full build | {build['seconds']:.1f} s ({n / build['seconds']:.0f} stories/s) "
                    f"| peak {build['largest_mb']:.0f} MB largest process, {build['all_mb']:.0f} MB all processes | |")
        if layout == "shared":
            check = memwatch.run([*cb, "check"], env=env)
            rows.append(f"{tag} `check` | {check['seconds']:.1f} s | peak {check['largest_mb']:.0f} MB largest, "
                        f"{check['all_mb']:.0f} MB all | |")
        search = [*cb, "search", QUERY, "--facets"]
        rg = ["rg", "-l", "-i", "-w", "propaganda", str(root / "stories")]
        floor = floor_cmd(root)
        story = root / "stories" / "synthetic-000001.md"
        original = story.read_text()
        watch = watcher_available()
        if watch:
            subprocess.run([*cb, "watch", "--stop"], capture_output=True)
        timed(search, env=env)
        ours, ref, flo, edited, w_ours, w_edited = [], [], [], [], [], []
        for i in range(runs):
            ours.append(timed(search, env=env))
            ref.append(timed(rg))
            flo.append(timed(floor))
            story.write_text(original.replace("Synthetic account 1\n", f"Synthetic account 1 edit{i}\n", 1))
            edited.append(timed(search, env=env))
        if watch:
            subprocess.Popen([*cb, "watch", "--idle", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
            for _ in range(600):
                if subprocess.run([*cb, "watch", "--status"], capture_output=True).returncode == 0:
                    break
                time.sleep(0.5)
            timed(search)
            for i in range(runs):
                w_ours.append(timed(search))
                ref.append(timed(rg))
                story.write_text(original.replace("Synthetic account 1\n", f"Synthetic account 1 w{i}\n", 1))
                w_edited.append(timed(search))
        rows.append(f"{tag} `search` (snippets + facets), unchanged | {ms(ours)} | rg {ms(ref)}; floor {ms(flo)} "
                    f"| **{ratio(ours, flo)} floor**, {ratio(ours, ref)} rg |")
        rows.append(f"{tag} `search` right after one edit | {ms(edited)} | unchanged {ms(ours)} "
                    f"| {ratio(edited, ours)} |")
        if watch:
            rows.append(f"{tag} `search` with the watcher, unchanged | {ms(w_ours)} | rg {ms(ref)} "
                        f"| **{ratio(w_ours, ref)} rg** |")
            rows.append(f"{tag} `search` with the watcher, right after one edit | {ms(w_edited)} "
                        f"| unchanged {ms(w_ours)} | **{ratio(w_edited, w_ours)}** |")
        if briefs:
            for name, cmd in (("stats", [*cb, "stats"]), ("show", [*cb, "show", "synthetic-000002"])):
                t, f = [], []
                for _ in range(runs):   # interleaved with the floor process: a command below it is floor-bound
                    t.append(timed(cmd, env=env))
                    f.append(timed(floor))
                line = f"{tag} `{name}` | {ms(t)} | floor {ms(f)} ({ratio(t, f)});"
                if watch:
                    tw = [timed(cmd) for _ in range(runs)]
                    line += f" with the watcher: {ms(tw)} |"
                else:
                    line += " |"
                rows.append(line + " |")
            recipe = root / "recipes" / "three.yml"
            recipe.write_text(
                "title: Benchmark brief\ndate: '2026-12-01'\naudience: {language: en}\nmax_accounts_per_message: 3\n"
                "messages:\n" + "".join(f"  - text: Message {i + 1}\n    themes: [{synth.THEMES[i]}]\n"
                                        f"    query: propaganda\n" for i in range(3)))
            for fmt in ("md", "pdf"):
                out = Path(tmp) / f"brief.{fmt}"
                cmd = [*cb, "brief", str(recipe), "--include-synthetic", "-o", str(out)]
                t = [timed(cmd, env=env) for _ in range(max(3, runs // 2 + 1))]
                mem = memwatch.run(cmd, env=env)
                line = f"{tag} brief, 3 messages, {fmt} | {ms(t)} | peak {mem['largest_mb']:.0f} MB |"
                if watch:
                    tw = [timed(cmd) for _ in range(max(3, runs // 2 + 1))]
                    line += f" with the watcher: {ms(tw)}"
                rows.append(line + " |")
        if watch:
            subprocess.run([*cb, "watch", "--stop"], capture_output=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=list(LAYOUTS))
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print("| stories | layout | what | counterbrief (min / median) | reference | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in args.sizes:
        for layout in args.layouts:
            for row in bench(n, layout, args.runs, briefs=layout == "shared"):
                print(row, flush=True)


if __name__ == "__main__":
    main()
