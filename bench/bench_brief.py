"""Brief benchmark: a brief of 10 messages from a synthetic archive, in every format.

    python bench/bench_brief.py [--stories 20000] [--runs 3]

Prints min / median wall time of the whole `counterbrief brief` process per format, on an index
that is already fresh (the first run builds it and is not counted).
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

import yaml

sys.path.insert(0, str(Path(__file__).parent))
import synth  # noqa: E402

EXE = shutil.which("counterbrief", path=os.path.dirname(sys.executable)) or "counterbrief"
THEMES = synth.THEMES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = synth.make_archive(Path(tmp) / "a", args.stories)
        recipe = root / "recipes" / "ten.yml"
        recipe.write_text(yaml.safe_dump({
            "title": "Benchmark brief", "date": "2026-12-01", "audience": {"language": "en"},
            "max_accounts_per_message": 3,
            "messages": [{"text": f"Message {i + 1}", "themes": [THEMES[i]], "query": "propaganda"} for i in range(10)],
        }))
        base = [EXE, "--archive", str(root), "brief", str(recipe), "--include-synthetic"]
        subprocess.run([EXE, "--archive", str(root), "index"], check=True, capture_output=True)
        print(f"| format | `brief`, 10 messages, {args.stories:,} stories (min / median of {args.runs}) | output size |")
        print("| --- | --- | --- |")
        for fmt in ("md", "txt", "json", "html", "pdf", "docx"):
            out = Path(tmp) / f"brief.{fmt}"
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                subprocess.run([*base, "-o", str(out)], check=True, capture_output=True)
                times.append(time.perf_counter() - t)
            print(f"| {fmt} | {min(times) * 1000:.0f} / {statistics.median(times) * 1000:.0f} ms "
                  f"| {out.stat().st_size / 1024:.0f} KiB |", flush=True)


if __name__ == "__main__":
    main()
