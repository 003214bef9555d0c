"""The console script: start the freshness probe first, then import and run the CLI.

Importing click and the CLI takes ~35 ms; the probe's stat scan of a large archive takes longer,
so it is started here, from the command line read by hand, before anything heavy is imported.
If this reading guesses wrong (another archive than the CLI resolves), the CLI drops the probe
and starts its own: the guess only decides how early the check starts, never its verdict.
"""
from __future__ import annotations

import os
import sys

READS_INDEX = {"search", "show", "stats", "themes", "brief"}


def _command(argv: list[str]) -> tuple[str, str | None]:
    """(command name, --archive value) as click would read them; ("", None) when unsure."""
    archive, command, i = None, "", 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg == "--archive" and i + 1 < len(argv):
            archive = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--archive="):
            archive = arg.split("=", 1)[1]
        elif not arg.startswith("-") and not command:
            command = arg
        i += 1
    return command, archive


def _early(argv: list[str]) -> None:
    """Ask the watcher (and leave with its answer), else start the freshness probe."""
    command, archive = _command(argv)
    if command not in READS_INDEX:
        return
    from . import early

    found = early.locate(archive, os.environ.get("COUNTERBRIEF_ARCHIVE") or None)
    if found is None:
        return
    if os.path.exists(os.path.join(found[1], "watch.sock")):
        from .watch import ask

        code = ask(found[0], found[1], argv)
        if code is not None:
            os._exit(code)
    early.start(found)


def run() -> None:
    try:
        _early(sys.argv[1:])
    except Exception:  # noqa: BLE001 - the CLI reports a bad --archive itself, in its own words
        pass
    from .cli import run as cli_run

    cli_run()
