"""Text rules shared by every stage: what "verbatim" allows, and redaction."""
from __future__ import annotations

import re
from typing import Iterable

# STORY-FORMAT.md: verbatim allows only runs of white space, straight versus typographic
# quotes and apostrophes, and the case of the first letter.
_QUOTES = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
})
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text.translate(_QUOTES)).strip()


def find_verbatim(quote: str, snapshot_normalised: str) -> bool:
    """Is the quote in the (already normalised) snapshot, as STORY-FORMAT.md defines verbatim?"""
    q = normalise(quote)
    if not q:
        return False
    if q in snapshot_normalised:
        return True
    first = q[0]
    swapped = first.lower() if first.isupper() else first.upper()
    return swapped != first and (swapped + q[1:]) in snapshot_normalised


REDACTED = "[redacted]"


def redactor(names: Iterable[str]):
    """A function that replaces every listed name (any case) with [redacted]."""
    names = sorted({n.strip() for n in names if isinstance(n, str) and n.strip()}, key=len, reverse=True)
    if not names:
        return lambda s: s
    pattern = re.compile("|".join(re.escape(n) for n in names), re.IGNORECASE)

    def apply(value):
        if isinstance(value, str):
            return pattern.sub(REDACTED, value)
        if isinstance(value, list):
            return [apply(v) for v in value]
        if isinstance(value, dict):
            return {k: apply(v) for k, v in value.items()}
        return value

    return apply


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return re.sub(r"-{2,}", "-", slug)[:80].strip("-")
