"""Read-only views of the archive as plain data: a story record, stats, the vocabulary with counts."""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from .model import Story


def story_record(story: Story, redact, include_notes: bool = False) -> dict[str, Any]:
    """The whole record as JSON-ready data, redacted. Notes only for curators who ask."""
    record = {
        "id": story.id, "title": story.title, "speaker": story.speaker, "group": story.group,
        "language": story.language, "themes": story.themes, "source": story.source,
        "quotes": [{"text": q.text, "speaker": q.speaker, "themes": q.themes, "graphic": q.graphic, "context": q.context,
                    "frames_group_claim": q.frames_group_claim} for q in story.quotes],
        "corroboration": story.corroboration,
        "content_warnings": story.content_warnings, "sensitivity": story.sensitivity, "status": story.status,
        "synthetic": story.synthetic, "summary": story.body,
        "review": [dict(r) for r in story.review],   # who approved, rejected or withdrew it, when and why
    }
    if include_notes:
        record["notes"] = story.notes
    record = redact(record)
    record["id"] = story.id
    return record


def _count(values) -> dict[str, int]:
    counts = Counter(v for v in values if v)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def stats(archive_root: str, profiles: list[dict], bad_files: int, vocabulary: Iterable[str]) -> dict[str, Any]:
    """Counts for the archive at a glance, from the search index's per-story profiles (fields of
    ``search.PROFILE_FIELDS``; redacted names were removed before indexing)."""
    usable = [p for p in profiles if _usable(p)]
    covered = {t for p in usable for t in p["themes"]}
    return {
        "archive": archive_root,
        "stories": len(profiles),
        "bad_files": bad_files,
        "usable": len(usable),
        "quotes": sum(p["quotes"] for p in profiles),
        "by": {
            "theme": _count(t for p in profiles for t in p["themes"]),
            "group": _count(p["group"] for p in profiles),
            "origin": _count(p["origin"] or "unknown" for p in profiles),
            "year": _count(p["year"] or "unknown" for p in profiles),
            "language": _count(p["language"] for p in profiles),
            "status": _count(p["status"] for p in profiles),
            "sensitivity": _count(p["sensitivity"] for p in profiles),
        },
        "gaps": [t for t in vocabulary if t not in covered],
    }


def themes(vocabulary: dict, profiles: list[dict]) -> list[dict[str, Any]]:
    """The vocabulary with how many stories, and how many usable ones, carry each theme."""
    counts = Counter(t for p in profiles for t in p["themes"])
    usable = Counter(t for p in profiles if _usable(p) for t in p["themes"])
    return [{"id": t.id, "label": t.label, "definition": t.definition, "synonyms": t.synonyms,
             "stories": counts.get(t.id, 0), "usable": usable.get(t.id, 0)} for t in vocabulary.values()]


def _usable(p: dict) -> bool:
    return p["status"] == "approved" and p["sensitivity"] == "public" and not p["synthetic"]
