"""Errors and problems that name the file, the line, what is wrong and what to do."""
from __future__ import annotations

from dataclasses import dataclass, asdict
from pathlib import Path
from typing import Optional


def _where(path: Optional[Path | str], line: Optional[int]) -> str:
    if path is None:
        return ""
    return f"{path}:{line}: " if line else f"{path}: "


class CounterbriefError(Exception):
    """An error a user can act on. Prints as ``FILE:LINE: problem; fix``."""

    exit_code = 1

    def __init__(self, problem: str, path: Optional[Path | str] = None,
                 line: Optional[int] = None, fix: str = ""):
        self.path = path
        self.line = line
        self.problem = problem
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        tail = f"; {self.fix}" if self.fix else ""
        return f"{_where(self.path, self.line)}{self.problem}{tail}"


class UsageProblem(CounterbriefError):
    """A bad invocation, archive or query: exit 2."""

    exit_code = 2


class IndexUnreadable(CounterbriefError):
    """A file of the search index cannot be read: the caller rebuilds the index and asks again."""


def disk_full(e: BaseException) -> bool:
    import errno

    return isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


# Modules that read the search index: an exception raised inside one of them is damage, not a bug.
_READERS = ("whoosh", "counterbrief.facets", "counterbrief.schema")


def is_damage(e: BaseException) -> bool:
    """Did this exception come from reading a damaged search index (a whoosh file, a column,
    stored fields, ``redact.bin``)? The caller then rebuilds the index and asks again.

    Damaged files fail in many ways (struct errors, bad offsets, None lengths, mmap of an empty
    file): any exception raised while inside a module that reads the index counts. Kept here,
    without whoosh, so that a command can judge an error before it has imported the index.
    """
    if isinstance(e, IndexUnreadable):
        return True
    if isinstance(e, CounterbriefError) or disk_full(e) or not isinstance(e, Exception):
        return False
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__", "").startswith(_READERS):
            return True
        tb = tb.tb_next
    return False


@dataclass
class Problem:
    """One finding of ``check``: an error or a warning about one file."""

    file: str
    line: Optional[int]
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        label = "" if self.severity == "error" else "warning: "
        return f"{_where(self.file, self.line)}{label}{self.message}"

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("severity")
        return d
