"""The freshness probe's children, started with nothing but ``os`` imported.

The console script (``entry``) calls ``start`` before click or any module of its own is
imported, so the stat scan runs on the other core from the first millisecond; ``state.Probe``
uses the same ``spawn`` and adopts what was started here (``take``).
"""
from __future__ import annotations

import os

SPLIT_FROM_BYTES = 1_500_000   # a stat.bin this big (~40,000 files) is scanned by one child per core
STARTED: dict = {}            # root, home, folder, children: the probe started by the console script


def spawn(root: str, home: str, folder: str) -> list:
    """Fork the children that compare the archive at ``root`` with ``folder/stat.bin``: [(pid, fd)]."""
    try:
        size = os.stat(os.path.join(folder, "stat.bin")).st_size
    except OSError:
        size = 0
    parts = max(1, min(os.cpu_count() or 1, 4)) if size >= SPLIT_FROM_BYTES else 1
    children: list = []
    for part in range(parts):
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            reap(children)
            return []
        if pid == 0:   # a child: compare its share, send the verdict, leave without any exit handler
            code = 1
            try:
                os.close(read_end)
                for _, fd in children:
                    os.close(fd)
                from .state import compare_share   # imports only os, marshal, time and stat

                payload = compare_share(root, home, folder, part, parts)
                with os.fdopen(write_end, "wb") as out:
                    out.write(payload)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        children.append((pid, read_end))
    return children


def reap(children: list) -> None:
    for pid, fd in children:
        try:
            os.close(fd)
        except OSError:
            pass
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass


def _is_archive(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "stories")) and os.path.isfile(os.path.join(path, "vocabulary.yml"))


def locate(archive_opt, env):
    """(root, home, live index folder) for the archive the command line names, in the plain cases
    only (an archive with its own writable ``.counterbrief`` index); None for anything else."""
    given = archive_opt or env
    if given:
        root = given if _is_archive(given) else None
    else:
        root, here = None, os.getcwd()
        while True:
            if _is_archive(here):
                root = here
                break
            up = os.path.dirname(here)
            if up == here:
                break
            here = up
    if root is None:
        return None
    root = os.path.realpath(root)
    if "site-packages" in root.split(os.sep):
        return None
    home = os.path.join(root, ".counterbrief")
    if not (os.path.isdir(home) and os.access(home, os.W_OK)):
        return None
    try:
        with open(os.path.join(home, "current"), encoding="utf-8") as f:
            name = f.read().strip()
    except OSError:
        return None
    folder = os.path.join(home, name)
    if not name or not os.path.isdir(folder):
        return None
    return root, home, folder


def start(found) -> None:
    """Start the probe's children for ``locate``'s answer; the CLI adopts them (``take``)."""
    if not found or not hasattr(os, "fork") or os.environ.get("COUNTERBRIEF_NO_PROBE"):
        return
    root, home, folder = found
    STARTED.update(root=root, home=home, folder=folder, children=spawn(root, home, folder))


def take(root, home) -> list:
    """The children started for this archive (and index home), or [] (any others are reaped)."""
    if not STARTED:
        return []
    started = dict(STARTED)
    STARTED.clear()
    if started["root"] == str(root) and started["home"] == str(home):
        return started["children"]
    reap(started["children"])
    return []
