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
