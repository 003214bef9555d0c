"""Choosing what goes into a brief: the gate (who may appear), fit to each message, diversity.

The result is the brief's context: plain, JSON-ready data that every template and writer shares.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import __version__
from .model import Quote, Recipe, Story

DO_NO_HARM = [
    "Do not show, link to or describe the group's own videos, images or publications; quote the people who left.",
    "Protect identities: use the names as published, never add details that could identify a speaker or "
    "their family, and do not contact speakers through this brief.",
    "Content warnings travel with the quotes: read them before a session and prepare the group.",
    "A message can backfire with some audiences (sympathy for the speaker, curiosity about the group): "
    "test it with a small group first and watch for signs of harm.",
    "Keep the citations with the quotes, so that every word can be traced to its published source.",
]


RTL_LANGUAGES = ("ar", "fa", "he", "ur", "ps", "yi")
# Quotation marks as each language prints them (Arabic and French use guillemets).
QUOTE_MARKS = {"ar": ("\u00ab", "\u00bb"), "fa": ("\u00ab", "\u00bb"), "ur": ("\u00ab", "\u00bb"),
               "fr": ("\u00ab\u00a0", "\u00a0\u00bb")}


@dataclass
class Options:
    include_synthetic: bool = False
    only_ids: list[str] = field(default_factory=list)


@dataclass
class Candidate:
    story: Story
    quotes: list[Quote]
    score: float


def levels(recipe: Recipe) -> set[str]:
    """Sensitivities a brief may show: public; internal too in an internal brief; restricted never."""
    return {"public"} | ({"internal"} if recipe.level == "internal" else set())


def allowed(story: Story, recipe: Recipe, options: Options) -> bool:
    """The gate, checked again on every story read from disk (the index may lag a file edit)."""
    return (story.status == "approved" and story.sensitivity in levels(recipe)
            and (options.include_synthetic or not story.synthetic)
            and (not options.only_ids or story.id in options.only_ids))


def fitting_quotes(story: Story, themes: list[str], include_graphic: bool) -> list[Quote]:
    allowed_quotes = [q for q in story.quotes if include_graphic or not q.graphic]
    on_theme = [q for q in allowed_quotes if set(q.themes) & set(themes)]
    if on_theme:
        return on_theme[:2]
    if not themes or set(story.themes) & set(themes):
        return [q for q in allowed_quotes if not q.themes][:2] or allowed_quotes[:1]
    return []


def choose(profiles: list[dict], recipe: Recipe, options: Options,
           query_scores: Callable[[str], dict[str, float]],
           load_story: Callable[[dict], Optional[Story]]) -> list[list[Candidate]]:
    """For each message, the best-fitting accounts; accounts already used elsewhere lose to fresh voices.

    ``profiles`` are the index's metadata of the gated accounts (id, all_themes, language,
    speaker, snapshot, origin): ranking reads no file. Only the accounts picked are read from
    disk and checked again, and one whose file no longer passes is passed over for the next.
    """
    used: dict[tuple[str, str], int] = {}
    language = recipe.audience.get("language", "")
    chosen: list[list[Candidate]] = []
    for message in recipe.messages:
        scores = query_scores(message.query) if message.query else {}
        ranked = []
        for p in profiles:
            fit = 3.0 * len(set(message.themes) & set(p["all_themes"])) + 2.0 * scores.get(p["id"], 0.0)
            if fit <= 0:
                continue
            fit += 1.0 if language and p["language"] == language else 0.0
            fit -= 2.5 * used.get(("speaker", p["speaker"]), 0)
            fit -= 0.75 * used.get(("source", p["snapshot"]), 0)
            fit -= 0.5 * used.get(("origin", p["origin"]), 0) if p["origin"] else 0.0
            ranked.append((round(fit, 6), p["id"], p))
        ranked.sort(key=lambda r: (-r[0], r[1]))   # stable tie-break: the id
        picked: list[Candidate] = []
        for fit, _, p in ranked:
            if len(picked) >= recipe.max_accounts_per_message:
                break
            story = load_story(p)
            if story is None or not allowed(story, recipe, options):
                continue
            quotes = fitting_quotes(story, message.themes, recipe.include_graphic)
            if quotes:
                picked.append(Candidate(story, quotes, fit))
        for c in picked:
            for key in (("speaker", c.story.speaker.get("alias", "")), ("source", c.story.source.get("snapshot", "")),
                        ("origin", c.story.speaker.get("origin", ""))):
                used[key] = used.get(key, 0) + 1
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


def build_context(recipe: Recipe, chosen: list[list[Candidate]], redact: Callable[[Any], Any],
                  archive_files: list[tuple[str, bytes]]) -> dict[str, Any]:
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
            rtl = story.language in RTL_LANGUAGES
            marks = QUOTE_MARKS.get(story.language, ("\u201c", "\u201d"))
            testimony.append({
                "story_id": story.id, "title": story.title, "speaker": story.speaker.get("alias", ""),
                "role": story.speaker.get("role", ""), "origin": story.speaker.get("origin", ""),
                "joined": story.speaker.get("joined", ""), "left": story.speaker.get("left", ""),
                "now": story.speaker.get("now", ""), "language": story.language, "dir": "rtl" if rtl else "ltr",
                "quote_open": marks[0], "quote_close": marks[1],
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
                           "summary": story.body, "language": story.language,
                           "dir": "rtl" if story.language in RTL_LANGUAGES else "ltr"})
    warnings = sorted({w for s in used.values() for w in s.content_warnings})
    synthetic = any(s.synthetic for s in used.values())
    title = recipe.title + (" [SYNTHETIC TEST DATA]" if synthetic else "")
    fingerprint = hashlib.sha256()
    for rel, data in sorted(archive_files):
        fingerprint.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    context = {
        "title": title, "date": recipe.date, "level": recipe.level, "synthetic": synthetic,
        "goal": recipe.goal,
        "audience": {k: recipe.audience.get(k, "") for k in ("description", "country", "language", "age")}, "messages": messages, "messengers": messengers,
        "messenger_notes": recipe.messenger, "media": recipe.media, "action": recipe.action,
        "monitoring": recipe.monitoring,
        "do_no_harm": {"content_warnings": warnings, "graphic_included": recipe.include_graphic, "rules": DO_NO_HARM},
        "citations": sorted(citations.values(), key=lambda c: c["n"]),
        "gaps": [m["text"] for m in messages if m["gap"]],
        "provenance": {"recipe": recipe.source, "recipe_sha256": recipe.digest,
                       "archive_fingerprint": fingerprint.hexdigest(), "tool_version": __version__,
                       "date": recipe.date, "stories": sorted(used)},
    }
    return redact(context)


def brief_date(recipe_date: str, source_date_epoch: Optional[str], today: str) -> str:
    if recipe_date:
        return recipe_date
    if source_date_epoch and source_date_epoch.isdigit():
        import datetime as dt

        return dt.datetime.fromtimestamp(int(source_date_epoch), dt.timezone.utc).date().isoformat()
    return today
