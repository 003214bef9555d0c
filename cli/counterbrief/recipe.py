"""Brief recipes: read from YAML (with the line of every field) or made from command-line options."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from . import load
from .errors import CounterbriefError
from .model import Message, Recipe, Theme

FIELDS = {"title", "date", "level", "goal", "audience", "messages", "max_accounts_per_message", "messenger", "media",
          "action", "monitoring", "include_graphic", "template"}
AUDIENCE = {"description", "country", "language", "age"}


def resolve_theme(word: str, vocabulary: dict[str, Theme]) -> Optional[str]:
    """A theme id from its id, label or one of its synonyms (synonyms count in recipes too)."""
    key = word.strip().lower()
    for theme in vocabulary.values():
        if key in (theme.id, theme.label.lower(), *(s.lower() for s in theme.synonyms)):
            return theme.id
    return None


def load_recipe(path: Path, vocabulary: dict[str, Theme]) -> Recipe:
    from .validate import did_you_mean

    shown = str(path)
    if not path.is_file():
        raise CounterbriefError("recipe not found", shown, fix="give the path of a recipe .yml file")
    raw = path.read_bytes()
    data, lines = load.load_yaml_file(path, shown)

    def fail(key: str, problem: str, fix: str):
        raise CounterbriefError(problem, shown, lines.get(key), fix)

    if not isinstance(data, dict):
        raise CounterbriefError("a recipe is a set of fields", shown, 1, "start with 'title: ...' and 'messages:'")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        hint = did_you_mean(unknown[0], FIELDS)
        fail(unknown[0], f"unknown field '{unknown[0]}'", hint or f"known fields: {', '.join(sorted(FIELDS))}")
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        fail("title", "the recipe has no title", "add 'title: ...'")
    level = data.get("level", "public")
    if level not in ("public", "internal"):
        fail("level", f"level is {level!r}", "write level: public or level: internal (restricted never leaves the archive)")
    audience = data.get("audience") or {}
    if not isinstance(audience, dict):
        fail("audience", "audience must be a set of fields", "indent description:, country:, language:, age: below it")
    bad = sorted(set(audience) - AUDIENCE)
    if bad:
        fail(f"audience.{bad[0]}", f"unknown audience field '{bad[0]}'", f"use {', '.join(sorted(AUDIENCE))}")
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        fail("messages", "the recipe has no messages", "add 'messages:' with at least one '- text: ...' and its themes")
    messages = []
    for i, m in enumerate(raw_messages):
        key = f"messages.{i}"
        if not isinstance(m, dict) or not isinstance(m.get("text"), str):
            fail(key, f"message {i + 1} has no text", "write '- text: the message' with 'themes: [...]' below it")
        themes = m.get("themes") or []
        if isinstance(themes, str):
            fail(f"{key}.themes", f"themes of message {i + 1} must be a list", "write themes: [a, b]")
        ids = []
        for j, word in enumerate(themes):
            tid = resolve_theme(str(word), vocabulary)
            if tid is None:
                hint = did_you_mean(str(word), vocabulary)
                fail(f"{key}.themes.{j}", f"unknown theme '{word}' in message {i + 1}", hint or "use an id from 'counterbrief themes'")
            ids.append(tid)
        query = m.get("query") or ""
        if not ids and not query:
            fail(key, f"message {i + 1} has neither themes nor a query", "add themes: [...] or query: words")
        messages.append(Message(m["text"], ids, str(query)))
    per = data.get("max_accounts_per_message", 3)
    if not isinstance(per, int) or isinstance(per, bool) or not 1 <= per <= 20:
        fail("max_accounts_per_message", f"max_accounts_per_message is {per!r}", "write a number from 1 to 20")
    include_graphic = data.get("include_graphic", False)
    if not isinstance(include_graphic, bool):
        fail("include_graphic", "include_graphic must be true or false", "write include_graphic: false")
    for key in ("goal", "messenger", "media", "action", "monitoring", "template"):
        if data.get(key) is not None and not isinstance(data[key], str):
            fail(key, f"{key} must be text", f"write {key}: ... on one line, or {key}: >- and indented lines")
    return Recipe(
        title=data["title"].strip(), messages=messages, date=str(data.get("date") or ""), level=level,
        goal=data.get("goal") or "", audience={k: str(v) for k, v in audience.items() if v is not None},
        max_accounts_per_message=per, messenger=data.get("messenger") or "", media=data.get("media") or "",
        action=data.get("action") or "", monitoring=data.get("monitoring") or "", include_graphic=include_graphic,
        template=data.get("template") or "brief", source=path.name, digest=hashlib.sha256(raw).hexdigest(),
    )


def adhoc_recipe(vocabulary: dict[str, Theme], themes: list[str], query: str, title: str, audience: str,
                 language: str, level: str, include_graphic: bool, per_message: int) -> Recipe:
    """A recipe from command-line options: one message per theme, or one for the query."""
    from .errors import UsageProblem
    from .validate import did_you_mean

    messages = []
    for word in themes:
        tid = resolve_theme(word, vocabulary)
        if tid is None:
            hint = did_you_mean(word, vocabulary)
            raise UsageProblem(f"unknown theme '{word}'", fix=hint or "use an id from 'counterbrief themes'")
        messages.append(Message(vocabulary[tid].label, [tid], query))
    if not messages and query:
        messages.append(Message(query, [], query))
    if not messages:
        raise UsageProblem("nothing to brief on", fix="give a recipe file, or --theme and/or --query")
    audience_map = {k: v for k, v in (("description", audience), ("language", language)) if v}
    recipe = Recipe(title=title or "Counter-messaging brief", messages=messages, level=level, audience=audience_map,
                    include_graphic=include_graphic, max_accounts_per_message=per_message, source="command line")
    spec: dict[str, Any] = {"themes": themes, "query": query, "title": title, "audience": audience,
                            "language": language, "level": level, "include_graphic": include_graphic,
                            "per_message": per_message}
    recipe.digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return recipe


def recipe_problems(paths: list[Path], vocabulary: dict[str, Theme], shown) -> list:
    """check's view of recipes: one Problem per recipe that would not make a brief."""
    from .errors import Problem

    problems = []
    for path in paths:
        try:
            load_recipe(path, vocabulary)
        except CounterbriefError as e:
            problems.append(Problem(shown(path), e.line, e.problem + (f"; {e.fix}" if e.fix else "")))
    return problems
