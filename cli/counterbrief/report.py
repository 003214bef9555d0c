"""Read-only views of the archive as plain data: a story record, stats, the vocabulary with counts."""
from __future__ import annotations

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


def _sorted(counts: dict) -> dict[str, int]:
    return dict(sorted(((k, n) for k, n in counts.items() if k and n), key=lambda kv: (-kv[1], kv[0])))


def stats(archive_root: str, tally: dict, bad_files: int, vocabulary: Iterable[str]) -> dict[str, Any]:
    """Counts for the archive at a glance, from the search index's tally of its stories
    (``facets.archive_tally``; redacted names were removed before indexing)."""
    return {
        "archive": archive_root,
        "stories": tally["stories"],
        "bad_files": bad_files,
        "usable": tally["usable"],
        "quotes": tally["quotes"],
        "by": {
            "theme": _sorted(tally["theme"]),
            "group": _sorted(tally["group"]),
            "origin": _sorted(tally["origin"]),
            "year": _sorted(tally["year"]),
            "language": _sorted(tally["language"]),
            "status": _sorted(tally["status"]),
            "sensitivity": _sorted(tally["sensitivity"]),
        },
        "gaps": [t for t in vocabulary if not tally["usable_theme"].get(t)],
    }


def themes(vocabulary: dict, tally: dict) -> list[dict[str, Any]]:
    """The vocabulary with how many stories, and how many usable ones, carry each theme."""
    counts, usable = tally["theme"], tally["usable_theme"]
    return [{"id": t.id, "label": t.label, "definition": t.definition, "synonyms": t.synonyms,
             "stories": counts.get(t.id, 0), "usable": usable.get(t.id, 0)} for t in vocabulary.values()]
