"""Brief recipes: read from YAML (with the line of every field) or made from command-line options."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Optional

from . import load
from .errors import CounterbriefError
from .model import Message, Recipe, Story, Theme
from .render import TEMPLATE_NAME

FIELDS = {"title", "date", "level", "goal", "audience", "messages", "max_accounts_per_message", "messenger", "media",
          "action", "monitoring", "include_graphic", "template", "session", "safeguarding", "evaluation",
          "handout_title", "ground_rules"}
MESSAGE_FIELDS = {"text", "themes", "query", "quotes", "questions", "facilitator_notes"}
SAFEGUARDING = {"plan", "referral", "participants"}
# What a recipe writes where a real contact must go: counterbrief never invents one. check warns,
# brief warns and brief --strict refuses while one is left in the safeguarding section.
PLACEHOLDER = re.compile(r"\[\s*fill in\b[^\]]*\]", re.IGNORECASE)
SESSION = {"length", "group_size", "steps"}
PIN = re.compile(r"^([a-z0-9]+(?:-[a-z0-9]+)*)#([1-9][0-9]*)$")
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
    data, lines = load.load_yaml_file(path, shown)   # first: it refuses a file over the size limit
    raw = path.read_bytes()

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
        extra = sorted(set(m) - MESSAGE_FIELDS)
        if extra:
            hint = did_you_mean(extra[0], MESSAGE_FIELDS)
            fail(f"{key}.{extra[0]}", f"unknown field '{extra[0]}' in message {i + 1}",
                 hint or f"a message has {', '.join(sorted(MESSAGE_FIELDS))}")
        query = m.get("query") or ""
        if not ids and not query:
            fail(key, f"message {i + 1} has neither themes nor a query", "add themes: [...] or query: words")
        pins = m.get("quotes") or []
        if not isinstance(pins, list):
            fail(f"{key}.quotes", f"quotes of message {i + 1} must be a list", "write quotes: [story-id#1, story-id#3]")
        for j, pin in enumerate(pins):
            if not isinstance(pin, str) or not PIN.match(pin.strip()):
                fail(f"{key}.quotes.{j}", f"pinned quote {pin!r} in message {i + 1} is not STORY_ID#N",
                     "write the story's id, '#', and the quote's number counting from 1, e.g. my-story#2")
        questions = _text_list(m.get("questions"), f"{key}.questions", f"questions of message {i + 1}", fail)
        notes = m.get("facilitator_notes")
        notes = _text_list([notes] if isinstance(notes, str) else notes, f"{key}.facilitator_notes",
                           f"facilitator_notes of message {i + 1}", fail)
        messages.append(Message(m["text"], ids, str(query), [p.strip() for p in pins], questions, lines.get(key),
                                [lines.get(f"{key}.quotes.{j}", lines.get(f"{key}.quotes")) for j in range(len(pins))],
                                notes))
    per = data.get("max_accounts_per_message", 3)
    if not isinstance(per, int) or isinstance(per, bool) or not 1 <= per <= 20:
        fail("max_accounts_per_message", f"max_accounts_per_message is {per!r}", "write a number from 1 to 20")
    include_graphic = data.get("include_graphic", False)
    if not isinstance(include_graphic, bool):
        fail("include_graphic", "include_graphic must be true or false", "write include_graphic: false")
    session = data.get("session") or {}
    if not isinstance(session, dict):
        fail("session", "session must be a set of fields", "indent length:, group_size:, steps: below it")
    bad = sorted(set(session) - SESSION)
    if bad:
        fail(f"session.{bad[0]}", f"unknown session field '{bad[0]}'", f"use {', '.join(sorted(SESSION))}")
    steps = _text_list(session.get("steps"), "session.steps", "session steps", fail)
    evaluation = data.get("evaluation") or []
    if not isinstance(evaluation, list):
        fail("evaluation", "evaluation must be a list", "write '- {statement: ..., scale: 1-5 agree}' items")
    items = []
    for j, item in enumerate(evaluation):
        if not isinstance(item, dict) or not isinstance(item.get("statement"), str) or not item["statement"].strip():
            fail(f"evaluation.{j}", f"evaluation item {j + 1} has no statement",
                 "write '- {statement: The group tells the truth., scale: 1-5 agree}'")
        items.append({"statement": item["statement"].strip(), "scale": str(item.get("scale") or "1-5 agree")})
    safeguarding = data.get("safeguarding") or {}
    if isinstance(safeguarding, str):
        safeguarding = {"plan": safeguarding}
    if not isinstance(safeguarding, dict):
        fail("safeguarding", "safeguarding must be text or a set of fields",
             "write safeguarding: TEXT, or plan:, referral: [...] and participants: indented below it")
    bad = sorted(set(safeguarding) - SAFEGUARDING)
    if bad:
        hint = did_you_mean(bad[0], SAFEGUARDING)
        fail(f"safeguarding.{bad[0]}", f"unknown safeguarding field '{bad[0]}'", hint or f"use {', '.join(sorted(SAFEGUARDING))}")
    for sub in ("plan", "participants"):
        if safeguarding.get(sub) is not None and not isinstance(safeguarding[sub], str):
            fail(f"safeguarding.{sub}", f"safeguarding.{sub} must be text", f"write {sub}: ... or {sub}: >- and indented lines")
    referral = safeguarding.get("referral")
    referral = _text_list([referral] if isinstance(referral, str) else referral, "safeguarding.referral",
                          "safeguarding.referral", fail)
    rules = data.get("ground_rules")
    rules = _text_list([rules] if isinstance(rules, str) else rules, "ground_rules", "ground_rules", fail)
    for key in ("goal", "messenger", "media", "action", "monitoring", "template", "handout_title"):
        if data.get(key) is not None and not isinstance(data[key], str):
            fail(key, f"{key} must be text", f"write {key}: ... on one line, or {key}: >- and indented lines")
    template = data.get("template")
    if template is not None and not TEMPLATE_NAME.match(template):
        # A name, looked up in templates/ and the built-in templates: never a path to a story, a source or any file.
        fail("template", f"template {template!r} is not a template name",
             "write a name such as 'template: brief' (the file templates/brief.FORMAT.j2); "
             "a .j2 file elsewhere can be given only on the command line, with --template")
    return Recipe(
        title=data["title"].strip(), messages=messages, date=str(data.get("date") or ""), level=level,
        goal=data.get("goal") or "", audience={k: str(v) for k, v in audience.items() if v is not None},
        max_accounts_per_message=per, messenger=data.get("messenger") or "", media=data.get("media") or "",
        action=data.get("action") or "", monitoring=data.get("monitoring") or "", include_graphic=include_graphic,
        template=data.get("template") or "brief", source=path.name, digest=hashlib.sha256(raw).hexdigest(),
        session={"length": str(session.get("length") or ""), "group_size": str(session.get("group_size") or ""),
                 "steps": steps} if session else {},
        safeguarding=(safeguarding.get("plan") or "").strip(), referral=referral,
        help_line=(safeguarding.get("participants") or "").strip(), evaluation=items,
        handout_title=(data.get("handout_title") or "").strip(), ground_rules=rules,
    )


def _text_list(value, key: str, what: str, fail) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        fail(key, f"{what} must be a list of text", "write one '- ...' line per item")
    return [v.strip() for v in value]


def theme_message(theme: Theme) -> str:
    """A message written from a theme's definition (its first clause), not its label."""
    text = re.sub(r"\s*\([^)]*\)", "", theme.definition.strip())
    text = re.split(r"(?<=[.;])\s|,?\s+for example\b", text, maxsplit=1)[0].rstrip(".;, ")
    return text or theme.label


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
        messages.append(Message(theme_message(vocabulary[tid]), [tid], query))
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


def recipe_problems(paths: list[Path], vocabulary: dict[str, Theme], shown,
                    stories: Optional[dict[str, Story]] = None, story_ids: Optional[set[str]] = None,
                    template_dirs: tuple = ()) -> list:
    """check's view of recipes: one Problem per recipe that would not make a brief (a template named
    that is in none of ``template_dirs`` included), and one per pinned quote that does not exist or
    cannot be used at the recipe's level (``stories``: the archive's good stories by id;
    ``story_ids``: every story file's id, good or bad)."""
    from .errors import Problem
    from .validate import control_problems

    problems = []
    for path in paths:
        try:
            recipe = load_recipe(path, vocabulary)
        except CounterbriefError as e:
            problems.append(Problem(shown(path), e.line, e.problem + (f"; {e.fix}" if e.fix else "")))
            continue
        data, lines = load.load_yaml_file(path, str(path))
        if template_dirs and not any(_has_template(d, recipe.template) for d in template_dirs):
            problems.append(Problem(shown(path), lines.get("template"), f"no template '{recipe.template}' in templates/ "
                                    f"or built in; add templates/{recipe.template}.html.j2 (and .md.j2, .txt.j2) "
                                    "or write template: brief"))
        problems += control_problems(data, lines, "", path, shown(path))   # as in stories: outputs drop them
        for where, found in placeholders(recipe):
            key = {"plan": "safeguarding.plan" if isinstance(data.get("safeguarding"), dict) else "safeguarding",
                   "participants": "safeguarding.participants"}.get(where, where)
            problems.append(Problem(shown(path), lines.get(key, lines.get("safeguarding")), placeholder_problem(where, found),
                                    "warning"))
        if stories is not None:
            problems += pin_problems(recipe, stories, story_ids or set(stories), shown(path))
    return problems


def placeholders(recipe: Recipe) -> list[tuple[str, str]]:
    """(field, placeholder) for each ``[fill in: ...]`` still in the recipe's safeguarding section."""
    texts = [("plan", recipe.safeguarding), *((f"safeguarding.referral.{j}", r) for j, r in enumerate(recipe.referral)),
             ("participants", recipe.help_line)]
    return [(where, m.group(0)) for where, text in texts for m in PLACEHOLDER.finditer(text or "")]


def placeholder_problem(where: str, found: str) -> str:
    name = {"plan": "safeguarding", "participants": "safeguarding.participants"}.get(where, where)
    return (f"{name} still holds the placeholder {found}; replace it with the real contact before the session "
            "(counterbrief never invents one)")


def pin_problems(recipe: Recipe, stories: dict[str, Story], story_ids: set[str], shown: str) -> list:
    from .errors import Problem

    levels = {"public"} | ({"internal"} if recipe.level == "internal" else set())
    out = []
    for i, m in enumerate(recipe.messages, 1):
        for pin, line in zip(m.quotes, m.pin_lines):
            sid, _, n = pin.partition("#")
            story = stories.get(sid)
            where = f"pinned quote {pin} of message {i}"
            if story is None:
                out.append(Problem(shown, line, f"{where}: " + (
                    f"stories/{sid}.md has errors; fix it (counterbrief check) or pin another quote" if sid in story_ids
                    else f"no story '{sid}'; check the id with 'counterbrief show'")))
            elif not 1 <= int(n) <= len(story.quotes):
                out.append(Problem(shown, line, f"{where} does not exist: {sid} has {len(story.quotes)} quotes; "
                                   "count them from 1"))
            elif story.status != "approved" or story.sensitivity not in levels:
                out.append(Problem(shown, line, f"{where} is not usable in a {recipe.level} brief ({story.status}, "
                                   f"{story.sensitivity}); approve the story or pin another quote"))
            elif story.quotes[int(n) - 1].graphic and not recipe.include_graphic:
                out.append(Problem(shown, line, f"{where} is marked graphic and the recipe leaves graphic quotes "
                                   "out; pin another quote or set include_graphic: true"))
            else:
                if story.synthetic:
                    out.append(Problem(shown, line, f"{where} is synthetic test data; a brief uses it only with "
                                       "--include-synthetic", "warning"))
                quote = story.quotes[int(n) - 1]
                if quote.frames_group_claim and not m.facilitator_notes:
                    out.append(Problem(shown, line, f"{where} repeats the group's own claim (frames_group_claim) and "
                                       f"message {i} has no facilitator_notes; add one saying how to answer the claim"
                                       + ("" if quote.context else f", and context: to quote {n} of {sid}"),
                                       "warning"))
                themes = story.quote_themes(quote)
                if m.themes and not set(themes) & set(m.themes):
                    out.append(Problem(shown, line, f"{where} is about {', '.join(themes)}, not the message's "
                                       f"{', '.join(m.themes)}; pin a quote that proves the message, or retag it",
                                       "warning"))
    return out


def _has_template(folder: Path, name: str) -> bool:
    """A template file for some format, really inside ``folder`` (a link out of it does not count)."""
    try:
        root = folder.resolve()
        return any(p.is_file() and p.resolve().is_relative_to(root) for p in folder.glob(f"{name}.*.j2"))
    except OSError:
        return False
