"""Read-only views of the archive as plain data: a story record, stats, the vocabulary."""
from __future__ import annotations

from collections import Counter
from typing import Any

from .model import Story
from .text import redactor
from .validate import Loaded


def story_record(story: Story, redact, include_notes: bool = False) -> dict[str, Any]:
    """The whole record as JSON-ready data, redacted. Notes only for curators who ask."""
    record = {
        "id": story.id, "title": story.title, "speaker": story.speaker, "group": story.group,
        "language": story.language, "themes": story.themes, "source": story.source,
        "quotes": [{"text": q.text, "speaker": q.speaker, "themes": q.themes, "graphic": q.graphic} for q in story.quotes],
        "content_warnings": story.content_warnings, "sensitivity": story.sensitivity, "status": story.status,
        "synthetic": story.synthetic, "summary": story.body,
    }
    if include_notes:
        record["notes"] = story.notes
    record = redact(record)
    record["id"] = story.id
    return record


def _count(values) -> dict[str, int]:
    counts = Counter(v for v in values if v)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def stats(loaded: Loaded) -> dict[str, Any]:
    """Counts for the archive at a glance; names listed for redaction never appear, even as an origin."""
    redact = redactor(n for s in loaded.stories for n in s.redact)
    return redact(_stats(loaded))


def _stats(loaded: Loaded) -> dict[str, Any]:
    stories = loaded.stories
    usable = [s for s in stories if s.usable]
    gaps = [t for t in loaded.vocabulary if not any(t in s.all_themes() for s in usable)]
    return {
        "archive": str(loaded.archive.root),
        "stories": len(stories),
        "bad_files": loaded.bad_files,
        "usable": len(usable),
        "quotes": sum(len(s.quotes) for s in stories),
        "by": {
            "theme": _count(t for s in stories for t in s.themes),
            "group": _count(s.group for s in stories),
            "origin": _count(s.speaker.get("origin", "unknown") for s in stories),
            "year": _count(s.year or "unknown" for s in stories),
            "language": _count(s.language for s in stories),
            "status": _count(s.status for s in stories),
            "sensitivity": _count(s.sensitivity for s in stories),
        },
        "gaps": gaps,
    }


def themes(loaded: Loaded) -> list[dict[str, Any]]:
    counts = Counter(t for s in loaded.stories for t in s.all_themes())
    usable = Counter(t for s in loaded.stories if s.usable for t in s.all_themes())
    return [{"id": t.id, "label": t.label, "definition": t.definition, "synonyms": t.synonyms,
             "stories": counts.get(t.id, 0), "usable": usable.get(t.id, 0)} for t in loaded.vocabulary.values()]
