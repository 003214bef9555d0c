"""Choosing what goes into a brief: the gate (who may appear), fit to each message, diversity.

The result is the brief's context: plain, JSON-ready data that every template and writer shares.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import __version__
from .model import Quote, Recipe, Story
from .text import redactor

DO_NO_HARM = [
    "Do not show, link to or describe the group's own videos, images or publications; quote the people who left.",
    "Protect identities: use the names as published, never add details that could identify a speaker or "
    "their family, and do not contact speakers through this brief.",
    "Content warnings travel with the quotes: read them before a session and prepare the group.",
    "A message can backfire with some audiences (sympathy for the speaker, curiosity about the group): "
    "test it with a small group first and watch for signs of harm.",
    "Keep the citations with the quotes, so that every word can be traced to its published source.",
]


@dataclass
class Options:
    include_synthetic: bool = False
    only_ids: list[str] = field(default_factory=list)
    date: str = ""


@dataclass
class Candidate:
    story: Story
    quotes: list[Quote]
    score: float


def gate(stories: list[Story], recipe: Recipe, options: Options) -> list[Story]:
    """Who may appear at all: approved; public (internal too in an internal brief); never restricted."""
    levels = {"public"} | ({"internal"} if recipe.level == "internal" else set())
    out = [s for s in stories if s.status == "approved" and s.sensitivity in levels
           and (options.include_synthetic or not s.synthetic)]
    if options.only_ids:
        wanted = set(options.only_ids)
        out = [s for s in out if s.id in wanted]
    return sorted(out, key=lambda s: s.id)


def fitting_quotes(story: Story, themes: list[str], include_graphic: bool) -> list[Quote]:
    allowed = [q for q in story.quotes if include_graphic or not q.graphic]
    on_theme = [q for q in allowed if set(q.themes) & set(themes)]
    if on_theme:
        return on_theme[:2]
    if not themes or set(story.themes) & set(themes):
        return [q for q in allowed if not q.themes][:2] or allowed[:1]
    return []


def choose(stories: list[Story], recipe: Recipe, query_scores: Callable[[str], dict[str, float]]) -> list[list[Candidate]]:
    """For each message, the best-fitting accounts; accounts already used elsewhere lose to fresh voices."""
    used_speakers: dict[str, int] = {}
    used_sources: dict[str, int] = {}
    used_origins: dict[str, int] = {}
    language = recipe.audience.get("language", "")
    chosen: list[list[Candidate]] = []
    for message in recipe.messages:
        scores = query_scores(message.query) if message.query else {}
        ranked = []
        for story in stories:
            overlap = len(set(message.themes) & set(story.all_themes()))
            fit = 3.0 * overlap + 2.0 * scores.get(story.id, 0.0)
            if fit <= 0:
                continue
            quotes = fitting_quotes(story, message.themes, recipe.include_graphic)
            if not quotes:
                continue
            speaker = story.speaker.get("alias", story.id)
            fit += 1.0 if language and story.language == language else 0.0
            fit -= 2.5 * used_speakers.get(speaker, 0)
            fit -= 0.75 * used_sources.get(story.source.get("snapshot", ""), 0)
            fit -= 0.5 * used_origins.get(story.speaker.get("origin", ""), 0) if story.speaker.get("origin") else 0
            ranked.append(Candidate(story, quotes, round(fit, 6)))
        ranked.sort(key=lambda c: (-c.score, c.story.id))   # stable tie-break: the id
        picked = ranked[: recipe.max_accounts_per_message]
        for c in picked:
            used_speakers[c.story.speaker.get("alias", c.story.id)] = used_speakers.get(c.story.speaker.get("alias", c.story.id), 0) + 1
            snap = c.story.source.get("snapshot", "")
            used_sources[snap] = used_sources.get(snap, 0) + 1
            origin = c.story.speaker.get("origin", "")
            used_origins[origin] = used_origins.get(origin, 0) + 1
        chosen.append(picked)
    return chosen


def credibility(story: Story) -> tuple[str, str]:
    """Why this messenger is credible, and what limits that credibility, from the record alone."""
    sp = story.speaker
    strengths = []
    if sp.get("joined") or sp.get("left"):
        strengths.append(f"was inside the group from {sp.get('joined', '?')} to {sp.get('left', '?')}")
    else:
        strengths.append("was inside the group")
    strengths.append(f"speaks from personal experience, as reported by {story.source.get('outlet') or story.source.get('via') or 'the source'}")
    limits = []
    now = sp.get("now", "").lower()
    if any(w in now for w in ("jail", "prison", "detain", "custody")):
        limits.append("speaks from detention, which may shape what is said")
    if story.source.get("via"):
        limits.append(f"second-hand: the account is quoted from {story.source['via']}")
    if "unnamed" in sp.get("alias", "").lower() or "anonymous" in sp.get("alias", "").lower():
        limits.append("not named in the source, so the account cannot be checked independently")
    if not story.source.get("outlet"):
        limits.append("the publishing outlet is not recorded")
    return "; ".join(strengths), "; ".join(limits) or "none recorded"


def citation_key(story: Story) -> tuple:
    s = story.source
    return (s.get("outlet", ""), s.get("title", ""), s.get("published", ""), s.get("snapshot", ""))


def build_context(recipe: Recipe, chosen: list[list[Candidate]], all_stories: list[Story], archive_files: list[tuple[str, bytes]],
                  options: Options) -> dict[str, Any]:
    """The brief as data. Curator notes never enter it; redacted names are replaced everywhere."""
    citations: dict[tuple, dict[str, Any]] = {}
    used: dict[str, Story] = {}
    messages = []
    for message, picked in zip(recipe.messages, chosen):
        testimony = []
        for c in picked:
            story = c.story
            used[story.id] = story
            key = citation_key(story)
            if key not in citations:
                s = story.source
                citations[key] = {"n": len(citations) + 1, "outlet": s.get("outlet", ""), "author": s.get("author", ""),
                                  "title": s.get("title", ""), "published": s.get("published", ""),
                                  "via": s.get("via", ""), "url": s.get("url", ""), "retrieved": s.get("retrieved", "")}
            rtl = story.language in ("ar", "fa", "he", "ur", "ps", "yi")
            testimony.append({
                "story_id": story.id, "title": story.title, "speaker": story.speaker.get("alias", ""),
                "role": story.speaker.get("role", ""), "origin": story.speaker.get("origin", ""),
                "joined": story.speaker.get("joined", ""), "left": story.speaker.get("left", ""),
                "now": story.speaker.get("now", ""), "language": story.language, "dir": "rtl" if rtl else "ltr",
                "quotes": [{"text": q.text, "speaker": q.speaker, "graphic": q.graphic} for q in c.quotes],
                "content_warnings": story.content_warnings, "citation": citations[key]["n"],
                "summary": story.body, "synthetic": story.synthetic,
            })
        messages.append({"text": message.text, "themes": message.themes, "query": message.query,
                         "testimony": testimony, "gap": not testimony})
    messengers = []
    for sid in sorted(used):
        story = used[sid]
        strengths, limits = credibility(story)
        messengers.append({"speaker": story.speaker.get("alias", ""), "role": story.speaker.get("role", ""),
                           "story_id": sid, "credible_because": strengths, "limits": limits,
                           "summary": story.body})
    warnings = sorted({w for s in used.values() for w in s.content_warnings})
    synthetic = any(s.synthetic for s in used.values())
    title = recipe.title + (" [SYNTHETIC TEST DATA]" if synthetic else "")
    fingerprint = hashlib.sha256()
    for rel, data in sorted(archive_files):
        fingerprint.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    context = {
        "title": title, "date": recipe.date or options.date, "level": recipe.level, "synthetic": synthetic,
        "goal": recipe.goal,
        "audience": {k: recipe.audience.get(k, "") for k in ("description", "country", "language", "age")}, "messages": messages, "messengers": messengers,
        "messenger_notes": recipe.messenger, "media": recipe.media, "action": recipe.action,
        "monitoring": recipe.monitoring,
        "do_no_harm": {"content_warnings": warnings, "graphic_included": recipe.include_graphic, "rules": DO_NO_HARM},
        "citations": sorted(citations.values(), key=lambda c: c["n"]),
        "gaps": [m["text"] for m in messages if m["gap"]],
        "provenance": {"recipe": recipe.source, "recipe_sha256": recipe.digest,
                       "archive_fingerprint": fingerprint.hexdigest(), "tool_version": __version__,
                       "date": recipe.date or options.date, "stories": sorted(used)},
    }
    redact = redactor(n for s in all_stories for n in s.redact)
    return redact(context)


def brief_date(recipe_date: str, source_date_epoch: Optional[str], today: str) -> str:
    if recipe_date:
        return recipe_date
    if source_date_epoch and source_date_epoch.isdigit():
        import datetime as dt

        return dt.datetime.fromtimestamp(int(source_date_epoch), dt.timezone.utc).date().isoformat()
    return today
