"""Choosing what goes into a brief: the gate (who may appear), fit to each message, diversity.

The result is the brief's context: plain, JSON-ready data that every template and writer shares.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from . import __version__
from .model import Message, Quote, Recipe, Story
from .safe import clean_context

# Standing rules, in every facilitator edition. The points derived from the content used come first.
DO_NO_HARM = [
    "Do not show, play, link to or share the group's own videos, images or publications. Describe them "
    "only as far as the people who left do in this brief, and add no detail.",
    "Protect identities: use the names as published, never add details that could identify a speaker or "
    "their family, and do not contact speakers through this brief.",
    "A message can backfire with some audiences (sympathy for the speaker, curiosity about the group): "
    "test it with a small group first and watch for signs of harm.",
    "Keep the citations with the quotes, so that every word can be traced to its published source.",
]

# Words that make a quote about pay, status, power or privilege (glamorisation risk) or about violence.
# A keyword list per language (matched at word starts, case-folded), and the themes that mean the same.
# A word ending in "$" must match whole; the others are stems (matched at a word's start).
GLAMOUR_WORDS = {
    "en": ["income", "pay$", "paid$", "salar", "money", "wage", "car$", "cars$", "power", "status", "rank$", "ranks$",
           "privilege", "emir", "more important", "luxur", "wealth", "rich$"],
    "fr": ["revenu", "salaire", "payé", "argent", "voiture", "pouvoir", "statut", "rang$", "privilège", "émir",
           "plus important", "riche"],
    "ar": ["راتب", "رواتب", "مال", "اموال", "سياره", "سيارات", "سلطه", "نفوذ", "امتياز", "امير", "امراء"],
}
GLAMOUR_THEMES = {"media-privilege", "corruption-hypocrisy"}
VIOLENCE_WORDS = {
    "en": ["kill", "execut", "behead", "massacre", "shot$", "shoot", "murder", "tortur", "slaughter", "dead$"],
    "fr": ["tuer", "tué", "tue$", "exécut", "décapit", "massacr", "meurtr", "tortur", "abattu"],
    "ar": ["قتل", "يقتل", "ذبح", "اعدام", "مجزره", "تعذيب"],
}
VIOLENCE_THEMES = {"brutality-against-muslims", "suppression-of-dissent"}
# Places named in the accounts used (their quotes, summaries, roles): people from there may carry trauma.
PLACES = {"Syria": ("syria", "syrian"), "Iraq": ("iraq", "iraqi"), "Jordan": ("jordan", "jordanian"),
          "Morocco": ("morocco", "moroccan"), "Turkey": ("turkey", "turkish"), "Libya": ("libya", "libyan"),
          "Egypt": ("egypt", "egyptian"), "Lebanon": ("lebanon", "lebanese"), "Tunisia": ("tunisia", "tunisian"),
          "Nigeria": ("nigeria", "nigerian"), "Afghanistan": ("afghanistan", "afghan"), "Yemen": ("yemen", "yemeni"),
          "Somalia": ("somalia", "somali"), "Mali": ("mali", "malian"), "France": ("france", "french"),
          "Belgium": ("belgium", "belgian")}

SAFEGUARDING_DEFAULT = (
    "The recipe gives no safeguarding plan: agree one with the host organisation before the session. "
    "Name its designated safeguarding lead and how to reach them during the session. If a participant "
    "discloses harm or shows a sign of risk (support for violence, contact with recruiters, distress), do not "
    "investigate or promise secrecy: note what was said in their own words and refer it the same day to the "
    "safeguarding lead, following the local referral procedure.")

# What participants read on the handout when the recipe gives no ground_rules / safeguarding.participants.
GROUND_RULES_DEFAULT = [
    "Listen to each other with respect: disagree with ideas, not with people.",
    "Speak for yourself. You never have to answer: you can always pass.",
    "You can step out at any time if something upsets you.",
    "What people say here stays here. The one exception: if someone may be in danger, the facilitator "
    "has to pass it on, to keep them safe.",
    "Please do not search for or share the group's videos or images, during or after the session: "
    "the words of the people who left are enough.",
]
HELP_DEFAULT = ("If anything in this session worries you, or if someone is trying to draw you or a friend into a "
                "group like this, talk to the facilitator after the session or to an adult you trust. Asking for "
                "help is always OK.")
HANDOUT_TITLE_DEFAULT = "What people who left the group say"

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
    """One account in one message: the quotes taken from it (and their numbers, from 1)."""

    story: Story
    quotes: list[Quote]
    score: float
    numbers: list[int] = field(default_factory=list)
    pinned: list[bool] = field(default_factory=list)


def levels(recipe: Recipe) -> set[str]:
    """Sensitivities a brief may show: public; internal too in an internal brief; restricted never."""
    return {"public"} | ({"internal"} if recipe.level == "internal" else set())


def allowed(story: Story, recipe: Recipe, options: Options) -> bool:
    """The gate, checked again on every story read from disk (the index may lag a file edit)."""
    return (story.status == "approved" and story.sensitivity in levels(recipe)
            and (options.include_synthetic or not story.synthetic)
            and (not options.only_ids or story.id in options.only_ids))


def quote_eligible(story: Story, quote: Quote, message: Message, include_graphic: bool) -> bool:
    """May this quote back this message without a pin? Its themes (else the story's) must meet the
    message's; graphic quotes only when asked for; a quote repeating the group's own claim only when pinned."""
    if quote.graphic and not include_graphic:
        return False
    if quote.frames_group_claim:
        return False
    return not message.themes or bool(set(story.quote_themes(quote)) & set(message.themes))


def parse_pin(pin: str) -> tuple[str, int]:
    sid, _, n = pin.partition("#")
    return sid, int(n) if n.isdigit() else 0


def choose(profiles: list[dict], recipe: Recipe, options: Options,
           query_scores: Callable[[str], dict[str, float]],
           load_story: Callable[[dict], Optional[Story]],
           warnings: Optional[list[str]] = None) -> list[list[Candidate]]:
    """For each message, the quotes that prove it, grouped by account; no quote twice in a brief.

    Pinned quotes (``quotes: [ID#N]``) come first, in their order, still gated and verified. Then
    every quote is a candidate on its own: its themes (``quote_meta`` in the index: its own, else
    the story's) must meet the message's, and it is ranked by that fit, the message's query, the
    audience's language, and diversity (speakers, sources and origins used by earlier messages lose
    to fresh ones). Ranking reads no file; only the accounts picked are read and checked again.
    """
    warn = warnings.append if warnings is not None else (lambda _m: None)
    by_id = {p["id"]: p for p in profiles}
    by_theme: dict[str, list[tuple[int, int]]] = {}     # theme -> (profile index, quote number)
    for i, p in enumerate(profiles):
        for n, qm in enumerate(p.get("quote_meta") or [], 1):
            for t in qm["themes"]:
                by_theme.setdefault(t, []).append((i, n))
    used_quotes: dict[tuple[str, int], int] = {}       # (story id, quote number) -> message number
    used: dict[tuple[str, str], int] = {}
    language = recipe.audience.get("language", "")
    chosen: list[list[Candidate]] = []
    for m_index, message in enumerate(recipe.messages, 1):
        picked: dict[str, Candidate] = {}

        def take(story: Story, n: int, score: float, pinned: bool) -> None:
            c = picked.setdefault(story.id, Candidate(story, [], score))
            c.quotes.append(story.quotes[n - 1])
            c.numbers.append(n)
            c.pinned.append(pinned)
            used_quotes[(story.id, n)] = m_index

        for pin in message.quotes:
            sid, n = parse_pin(pin)
            p = by_id.get(sid)
            story = load_story(p) if p is not None else None
            if story is None or not allowed(story, recipe, options):
                warn(f"message {m_index}: pinned quote {pin} is not usable in a {recipe.level} brief "
                     "(no approved account with that id that passes check); left out")
                continue
            if not 1 <= n <= len(story.quotes):
                warn(f"message {m_index}: pinned quote {pin} does not exist ({sid} has {len(story.quotes)} quotes); left out")
                continue
            if story.quotes[n - 1].graphic and not recipe.include_graphic:
                warn(f"message {m_index}: pinned quote {pin} is marked graphic; left out (include_graphic: true lets it in)")
                continue
            if (sid, n) in used_quotes:
                warn(f"message {m_index}: pinned quote {pin} is already used by message {used_quotes[(sid, n)]}; not repeated")
                continue
            take(story, n, 0.0, True)

        scores = query_scores(message.query) if message.query else {}
        wanted = set(message.themes)
        # Only quotes that can back the message are scored: those on one of its themes, or, for a
        # message with a query and no themes, those of the accounts the query finds.
        if wanted:
            overlap_of: dict[tuple[int, int], int] = {}
            for t in wanted:
                for pq in by_theme.get(t, ()):
                    overlap_of[pq] = overlap_of.get(pq, 0) + 1
        else:
            overlap_of = {(i, n): 0 for i, p in enumerate(profiles) if scores.get(p["id"], 0.0) > 0
                          for n in range(1, len(p.get("quote_meta") or []) + 1)}
        bases: dict[int, float] = {}
        ranked = []
        for (i, n), overlap in overlap_of.items():
            p = profiles[i]
            qm = p["quote_meta"][n - 1]
            if (p["id"], n) in used_quotes or qm.get("group_claim") or (qm["graphic"] and not recipe.include_graphic):
                continue
            base = bases.get(i)
            if base is None:
                base = 2.0 * scores.get(p["id"], 0.0) + (1.0 if language and p["language"] == language else 0.0)
                base -= 2.5 * used.get(("speaker", p["speaker"]), 0)
                base -= 0.75 * used.get(("source", p["snapshot"]), 0)
                base -= 0.5 * used.get(("origin", p["origin"]), 0) if p["origin"] else 0.0
                bases[i] = base
            # Sorted as is: best fit first, then the story id, then the quote number (a stable tie-break).
            ranked.append((-round(3.0 * overlap + base, 6), p["id"], n, i))
        ranked.sort()
        # First pass: one quote from each of the best accounts; second: a second quote from those taken.
        for second_pass in (False, True):
            for neg_fit, sid, n, i in ranked:
                p = profiles[i]
                if not second_pass and len(picked) >= recipe.max_accounts_per_message:
                    break
                if (sid, n) in used_quotes:
                    continue
                have = picked.get(sid)
                if second_pass:
                    if have is None or len(have.quotes) >= 2 or all(have.pinned):
                        continue
                elif have is not None:
                    continue
                story = load_story(p)
                if (story is None or not allowed(story, recipe, options) or n > len(story.quotes)
                        or not quote_eligible(story, story.quotes[n - 1], message, recipe.include_graphic)):
                    continue
                take(story, n, -neg_fit, False)
        for c in picked.values():
            for key in (("speaker", c.story.speaker.get("alias", "")), ("source", c.story.source.get("snapshot", "")),
                        ("origin", c.story.speaker.get("origin", ""))):
                used[key] = used.get(key, 0) + 1
        chosen.append(list(picked.values()))
    return chosen


# ----------------------------------------------------------------------------- credibility

NOT_ASSESSED = "not assessed by a curator"
_KUNYA = re.compile(r"^(abu|abou|umm|oum)\b|^(أبو|ابو|أم|ام)\s", re.IGNORECASE)


def credibility(story: Story) -> dict[str, Any]:
    """Why this messenger is credible and what limits it, from the curator's profile and the provenance.

    An empty field says "not assessed by a curator": never "none", which would claim an assessment.
    """
    sp, src = story.speaker, story.source
    inside = f"was inside {story.group}"   # the role is printed beside the name
    if sp.get("joined") or sp.get("left"):
        inside += f", from {sp.get('joined', '?')} to {sp.get('left', '?')}"
    teller = src.get("outlet") or src.get("via") or "the source"
    strengths = [inside, f"speaks from personal experience, as reported by {teller}"]
    where = {"detention": "detention, which may shape what is said (a deal, a sentence, an audience of jailers)",
             "exile": "exile", "home": "home", "unknown": "unknown: the source does not say"}
    regret = {"yes": "yes", "no": "no: do not present this speaker as remorseful or as a role model",
              "unclear": "unclear: do not present this speaker as remorseful"}
    provenance = []
    if src.get("via"):
        provenance.append(f"second-hand: {src.get('outlet') or 'the publishing outlet'} reports {src['via']}'s interview")
    alias = sp.get("alias", "")
    if _KUNYA.search(alias):
        provenance.append("known only by a kunya (a nom de guerre), which cannot be checked")
    elif any(w in alias.lower() for w in ("unnamed", "anonymous", "not named")):
        provenance.append("not named in the source, so the account cannot be checked independently")
    if not src.get("outlet"):
        provenance.append("the publishing outlet is not recorded")
    if not src.get("published"):
        provenance.append("the publication date is not recorded")
    profile = [
        {"label": "What they did inside", "text": sp.get("involvement") or NOT_ASSESSED},
        {"label": "Speaks from", "text": where.get(sp.get("speaking_from", ""), NOT_ASSESSED)},
        {"label": "Expresses regret", "text": regret.get(sp.get("expresses_regret", ""), NOT_ASSESSED)},
        {"label": "Corroboration", "text": ". ".join(c.rstrip(". ") for c in story.corroboration) or NOT_ASSESSED},
        {"label": "Provenance", "text": "; ".join(provenance) or "first-hand report by a named outlet"},
    ]
    limits = [f"{row['label'].lower()}: {row['text']}" for row in profile
              if row["label"] != "Provenance" and (row["text"] == NOT_ASSESSED or row["label"] == "What they did inside")]
    if sp.get("speaking_from") == "detention":
        limits.append("speaks from detention")
    if sp.get("expresses_regret") in ("no", "unclear"):
        limits.append("expresses no clear regret" if sp["expresses_regret"] == "unclear" else "expresses no regret")
    limits.extend(provenance)
    return {"credible_because": "; ".join(strengths), "limits": "; ".join(limits), "profile": profile}


def citation_key(story: Story) -> tuple:
    s = story.source
    return (s.get("outlet", ""), s.get("title", ""), s.get("published", ""), s.get("snapshot", ""))


# ----------------------------------------------------------------------------- the facilitator pack

def min_age(age: str) -> Optional[int]:
    """The youngest age an audience's age band admits, when it can be told ("16-24" -> 16)."""
    text = age.lower()
    m = re.search(r"under\s*(\d+)", text)
    if m:
        return int(m.group(1)) - 1
    m = re.search(r"\d+", text)
    if m:
        return int(m.group(0))
    if any(w in text for w in ("child", "teen", "pupil", "minor", "adolescent", "secondary", "school")):
        return 11
    if "adult" in text:
        return 18
    return None


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    return text[0].lower() + text[1:] if first[:1].isupper() and first[1:].islower() else text


def default_questions(message: str, speakers: list[str]) -> list[str]:
    # "unnamed ISIS defector" reads as "the unnamed ISIS defector"; a name stays as it is.
    names = [("the " + s if s[:1].islower() else s) for s in speakers]
    who = " and ".join(names) if names else "the former members quoted here"
    claim = _lower_first(message.rstrip("."))
    return [f"What in the words of {who} shows that {claim}?",
            f"Why would the group want people to believe the opposite of \u201c{message.rstrip('.')}\u201d?",
            "How could you check a claim like this, and who would you ask, before believing or sharing it?"]


def default_session(recipe: Recipe, messages: list[dict], under_18: Optional[bool]) -> dict[str, Any]:
    per = 15
    steps = ["Before: read the whole brief, the content warnings and the do-no-harm points; name the "
             "safeguarding lead" + (" (required: the audience includes under-18s)" if under_18 else "") + ".",
             "Opening (10 min): read the ground rules on the handout together (respect, the right to pass, what "
             "stays in the room and what must be passed on), the purpose of the session, and the evaluation items "
             "before it starts."]
    for m in messages:
        count = sum(len(t["quotes"]) for t in m["testimony"])
        numbers = [q["n"] for t in m["testimony"] for q in t["quotes"]]
        which = (f"quote {numbers[0]}" if count == 1 else f"quotes {numbers[0]}-{numbers[-1]}") if count else ""
        steps.append(f"Message {m['n']} ({per} min): \u201c{m['text']}\u201d. Read "
                     + (f"{which} and its context" if count == 1 else f"{which} and their context")
                     + " aloud, then the discussion questions." if count else
                     f"\u201c{m['text']}\u201d has no testimony yet: drop it from the session.")
    steps.append("Closing (10 min): the call to action, the evaluation items again, and where to get help "
                 "after the session.")
    minutes = 20 + per * sum(1 for m in messages if m["testimony"])
    return {"length": f"{minutes} minutes", "group_size": "8-15", "steps": steps, "suggested": True}


def default_evaluation(messages: list[dict]) -> list[dict[str, str]]:
    items = [{"statement": m["text"].rstrip(".") + ".", "scale": "1-5 agree", "suggested": True}
             for m in messages if m["testimony"]]
    items.append({"statement": "I know whom to talk to if someone I know is being drawn towards the group.",
                  "scale": "1-5 agree", "suggested": True})
    return items


def _words_in(text: str, language: str, words: dict[str, list[str]]) -> list[str]:
    from .text import arabic_normalise

    folded = arabic_normalise(text.lower()) if language == "ar" else text.lower()
    found = []
    for w in words.get(language, words["en"]):
        stem = w.rstrip("$")
        pattern = (re.escape(stem) if language == "ar" else
                   r"(?<!\w)" + re.escape(stem) + (r"(?!\w)" if w.endswith("$") else ""))
        if re.search(pattern, folded):
            found.append(stem)
    return found


def do_no_harm_points(recipe: Recipe, messages: list[dict], used: dict[str, Story],
                      citations: list[dict], under_18: Optional[bool]) -> list[dict[str, str]]:
    """Do-no-harm points derived from the content used; each names the quote or message it comes from.

    Glamorisation and violence are found by keyword lists per language (GLAMOUR_WORDS,
    VIOLENCE_WORDS) and by the quote's themes (GLAMOUR_THEMES, VIOLENCE_THEMES).
    """
    points: list[dict[str, str]] = []
    violent: list[str] = []
    age_text = recipe.audience.get("age", "")
    youngest = min_age(age_text) if age_text else None
    young = bool(under_18) or (youngest is not None and youngest < 25 and "adult" not in age_text.lower())
    glamour_from: list[str] = []
    glamour_why: list[str] = []
    glamour_themes: set[str] = set()
    for m in messages:
        for t in m["testimony"]:
            story = used[t["story_id"]]
            for q in t["quotes"]:
                # The whole quote, never a cut one: the redactor at the end must see whole names.
                where = f"message {m['n']}, quote {q['n']} ({t['speaker']}): \u201c{q['text']}\u201d"
                glamour = _words_in(q["text"], story.language, GLAMOUR_WORDS)
                themes = sorted(set(q["themes"]) & GLAMOUR_THEMES)
                if glamour or themes:
                    glamour_from.append(where)
                    glamour_why += [w for w in (f"\u201c{w}\u201d" for w in glamour) if w not in glamour_why]
                    glamour_themes.update(themes)
                violence = _words_in(q["text"] + " " + q["context"], story.language, VIOLENCE_WORDS)
                vthemes = sorted(set(q["themes"]) & VIOLENCE_THEMES)
                if q["graphic"] or violence or vthemes:
                    why = ", ".join([*(["marked graphic"] if q["graphic"] else []), *(f"\u201c{w}\u201d" for w in violence),
                                     *(f"theme {x}" for x in vthemes)])
                    violent.append(f"{where} ({why})")
    if glamour_from:
        points.insert(0, {"kind": "glamorisation", "from": "; ".join(glamour_from), "text": (
            f"Glamorisation risk ({', '.join([*glamour_why, *(f'theme {x}' for x in sorted(glamour_themes))])}): talk of pay, status or power can make the group attractive"
            + (", above all to young people looking for money, respect or a role" if young else "")
            + ". Frame it as the bait the group uses, and set it beside what the accounts say joining cost.")})
    if violent:
        points.insert(0, {"kind": "violence", "from": "; ".join(violent), "text": (
            ("Violence: 1 quote speaks of killing. Say so before reading it, read it yourself" if len(violent) == 1 else
             f"Violence: {len(violent)} quotes speak of killing. Say so before reading them, read them yourself")
            + " rather than asking a participant to, add no detail, and let anyone step out.")})
    for sid in sorted(used):
        story = used[sid]
        if story.content_warnings:
            msgs = [str(m["n"]) for m in messages if any(t["story_id"] == sid for t in m["testimony"])]
            points.append({"kind": "content-warning", "from": f"{story.speaker.get('alias', sid)} (message{'s' if len(msgs) > 1 else ''} {', '.join(msgs)})",
                           "text": f"The account carries content warnings ({', '.join(story.content_warnings)}); its summary "
                                   "in this brief describes that violence. The summary is for the facilitator: do not read it aloud."})
    for c in citations:
        if c.get("content_warning"):
            points.append({"kind": "source", "from": f"source [{c['n']}]",
                           "text": f"Do not show the source page on screen or hand out its link: {c['content_warning']}."})
    points += trauma_points(recipe, messages, used)
    age = recipe.audience.get("age", "")
    if under_18:
        points.append({"kind": "age", "from": f"audience age {age}", "text": (
            "The audience includes under-18s: a safeguarding plan is required (see Safeguarding and referral)"
            + ("." if recipe.safeguarding else "; the recipe has none, so agree one before the session."))})
    elif under_18 is None:
        points.append({"kind": "age", "from": "audience", "text": (
            "The audience's age is not given: if anyone under 18 may attend, a safeguarding plan is required; "
            "add the age band (audience.age) and safeguarding: to the recipe.")})
    if not recipe.include_graphic:
        points.append({"kind": "graphic", "from": "recipe", "text": "Quotes marked graphic are left out of this brief."})
    return points


def _place_forms(place: str) -> set[str]:
    """The words that name a place: itself, and the country and adjective PLACES knows for it."""
    low = place.strip().lower()
    forms = {low}
    for country, words in PLACES.items():
        if any(re.search(rf"\b{w}\b", low) for w in (country.lower(), *words)):
            forms |= {country.lower(), *words}
    return forms


def _place_name(place: str) -> str:
    """A known country's name for its adjective or name as written ("Jordanian" -> "Jordan"); else as written."""
    low = place.strip().lower()
    for country, words in PLACES.items():
        if low in (country.lower(), *words):
            return country
    return place.strip()


def trauma_points(recipe: Recipe, messages: list[dict], used: dict[str, Story]) -> list[dict[str, str]]:
    """Trauma for participants from the places where the accounts' events happened: the curator's
    ``places:`` of each story used, and its speaker's ``origin``. A place only mentioned in passing
    in the text is not one of them, so story text is not scanned. Each point names the messages and
    quotes of the accounts it comes from; an account without ``places:`` is named as not assessed."""
    country = recipe.audience.get("country", "").strip().lower()
    found: dict[str, list[str]] = {}          # place -> "speaker, message 1 (quote 2)" entries
    origins: set[str] = set()
    unknown: list[str] = []
    for sid in sorted(used):
        story = used[sid]
        speaker = story.speaker.get("alias", sid)
        quotes = [q["n"] for m in messages for t in m["testimony"] if t["story_id"] == sid for q in t["quotes"]]
        msgs = sorted({m["n"] for m in messages for t in m["testimony"] if t["story_id"] == sid})
        ref = (f"{speaker}, message{'s' if len(msgs) > 1 else ''} {', '.join(map(str, msgs))} "
               f"(quote{'s' if len(quotes) > 1 else ''} {', '.join(map(str, quotes))})")
        if story.places is None:
            unknown.append(ref)
        for place in story.places or []:
            found.setdefault(_place_name(place), []).append(ref)
        if story.speaker.get("origin"):
            found.setdefault(_place_name(story.speaker["origin"]), []).append(f"{ref}, the speaker's origin")
            origins.add(_place_name(story.speaker["origin"]))

    def how(place: str) -> str:
        events = [r for r in found[place] if not r.endswith("the speaker's origin")]
        return (f"events in the account{'s' if len(events) > 1 else ''} used took place there"
                + (", or a speaker comes from there" if place in origins else "") if events
                else "a speaker used comes from there")

    home = [p for p in found if country and country in _place_forms(p)]
    points = []
    for place in home:
        points.append({"kind": "trauma", "from": f"{place}: " + "; ".join(found[place]), "text": (
            f"{place} is the audience's country and {how(place)}: participants may know people who joined, were "
            "harmed or were killed. Ask before the session whether anyone is directly affected, and have support "
            "ready.")})
    others = [p for p in found if p not in home]
    if others:
        points.append({"kind": "trauma", "from": "; ".join(f"{p}: {'; '.join(found[p])}" for p in others), "text": (
            "; ".join(f"{p}: {how(p)}" for p in others) + ". Participants from these places, or with family there, may be personally affected: ask before the "
            "session, and have support ready.")})
    if unknown:
        points.append({"kind": "trauma", "from": "; ".join(unknown), "text": (
            f"Where the events of {'these accounts' if len(unknown) > 1 else 'this account'} took place is not "
            "assessed by a curator (no places: in the story): read the summary before the session for places that "
            "may touch your participants.")})
    return points


def handout_title(recipe: Recipe) -> str:
    """The title participants see: the recipe's handout_title, else the recipe's title without the part
    that says whom the brief is for ("Why they left — a brief for youth workers" -> "Why they left")."""
    if recipe.handout_title:
        return recipe.handout_title
    head = re.split(r"\s+[\u2014\u2013-]\s+|:\s+", recipe.title, maxsplit=1)[0].strip()
    if not head or re.search(r"\b(brief|facilitator|trainer|teachers?|workers?)\b", head, re.IGNORECASE):
        return HANDOUT_TITLE_DEFAULT
    return head


def blank_placeholders(text: str) -> str:
    """For participants: a ``[fill in: what]`` left in the recipe becomes a line to write on by hand."""
    from .recipe import PLACEHOLDER

    def blank(m: re.Match) -> str:
        what = re.sub(r"^\[\s*fill in\s*:?\s*|\s*\]$", "", m.group(0), flags=re.IGNORECASE)
        return "________________" + (f" ({what})" if what else "")
    return PLACEHOLDER.sub(blank, text)


def group_claim_note(q: dict) -> str:
    return (f"Quote {q['n']} repeats the group's own claim in the speaker's words. Say so before reading it, and do "
            "not debate whether the claim is true: ask who made it, what it was used to justify, and who gains when "
            "nobody may question it.")


def build_context(recipe: Recipe, chosen: list[list[Candidate]], redact: Callable[[Any], Any],
                  archive_files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """The brief as data (the facilitator edition). Curator notes never enter it; redacted names are
    replaced everywhere. ``handout`` cuts it down to what participants may see."""
    from .recipe import placeholders

    citations: dict[tuple, dict[str, Any]] = {}
    used: dict[str, Story] = {}
    messages = []
    quote_n = 0      # quotes and messages are numbered through the brief, the same in both editions
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
                                  "via": s.get("via", ""), "url": s.get("url", ""), "retrieved": s.get("retrieved", ""),
                                  "content_warning": s.get("content_warning", ""), "via_author": s.get("via_author", ""),
                                  "via_title": s.get("via_title", ""), "via_published": s.get("via_published", "")}
            rtl = story.language in RTL_LANGUAGES
            marks = QUOTE_MARKS.get(story.language, ("\u201c", "\u201d"))
            numbers = list(range(quote_n + 1, quote_n + 1 + len(c.quotes)))
            quote_n += len(c.quotes)
            testimony.append({
                "story_id": story.id, "title": story.title, "speaker": story.speaker.get("alias", ""),
                "role": story.speaker.get("role", ""), "origin": story.speaker.get("origin", ""),
                "joined": story.speaker.get("joined", ""), "left": story.speaker.get("left", ""),
                "now": story.speaker.get("now", ""), "language": story.language, "dir": "rtl" if rtl else "ltr",
                "quote_open": marks[0], "quote_close": marks[1],
                "quotes": [{"n": qn, "text": q.text, "speaker": q.speaker, "graphic": q.graphic, "context": q.context,
                            "ref": f"{story.id}#{n}", "pinned": pinned, "themes": story.quote_themes(q),
                            "group_claim": q.frames_group_claim}
                           for q, n, pinned, qn in zip(c.quotes, c.numbers, c.pinned, numbers)],
                "content_warnings": story.content_warnings, "citation": citations[key]["n"],
                "summary": story.body, "synthetic": story.synthetic,
            })
        questions = message.questions or default_questions(message.text, [t["speaker"] for t in testimony])
        claims = [q for t in testimony for q in t["quotes"] if q["group_claim"]]
        notes = list(message.facilitator_notes) or [group_claim_note(q) for q in claims]
        messages.append({"n": (sum(1 for m in messages if not m["gap"]) + 1) if testimony else None,
                         "text": message.text, "themes": message.themes, "query": message.query,
                         "testimony": testimony, "gap": not testimony, "questions": questions,
                         "questions_suggested": not message.questions, "facilitator_notes": notes,
                         "facilitator_notes_suggested": bool(notes) and not message.facilitator_notes})
    messengers = []
    for sid in sorted(used):
        story = used[sid]
        cred = credibility(story)
        messengers.append({"speaker": story.speaker.get("alias", ""), "role": story.speaker.get("role", ""),
                           "story_id": sid, **cred, "summary": story.body, "language": story.language,
                           "dir": "rtl" if story.language in RTL_LANGUAGES else "ltr"})
    warnings = sorted({w for s in used.values() for w in s.content_warnings})
    synthetic = any(s.synthetic for s in used.values())
    title = recipe.title + (" [SYNTHETIC TEST DATA]" if synthetic else "")
    fingerprint = hashlib.sha256()
    for rel, data in sorted(archive_files):
        fingerprint.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    age = recipe.audience.get("age", "")
    youngest = min_age(age) if age else None
    under_18 = None if youngest is None else youngest < 18
    citation_list = sorted(citations.values(), key=lambda c: c["n"])
    backed = [m for m in messages if m["testimony"]]
    audience_words = recipe.audience.get("description") or "the audience"
    session = dict(recipe.session) if recipe.session else default_session(recipe, messages, under_18)
    session.setdefault("suggested", False)
    if not session.get("steps"):
        session["steps"] = default_session(recipe, messages, under_18)["steps"]
    for k, v in default_session(recipe, messages, under_18).items():
        if k in ("length", "group_size") and not session.get(k):
            session[k] = v + " (suggested)"
    evaluation = ([{**e, "suggested": False} for e in recipe.evaluation] if recipe.evaluation
                  else default_evaluation(messages))
    evaluation = [{"id": f"E{n}", **e} for n, e in enumerate(evaluation, 1)]
    first = backed[0]["text"] if backed else messages[0]["text"]
    context = {
        "title": title, "date": recipe.date, "level": recipe.level, "synthetic": synthetic, "edition": "facilitator",
        "goal": recipe.goal or (f"Help {_lower_first(audience_words)} weigh what former members say against the group's "
                                "claims: " + "; ".join(_lower_first(m["text"]) for m in backed or messages) + "."),
        "audience": {k: recipe.audience.get(k, "") for k in ("description", "country", "language", "age")},
        "messages": messages, "messengers": messengers,
        "messenger_notes": recipe.messenger,
        "media": recipe.media or ("Printed quotes, read aloud in a facilitated discussion; no clips, images or links "
                                  "from the group."),
        "action": recipe.action or (f"Ask participants how they would check a claim like \u201c{first}\u201d before "
                                    "believing or sharing it, and tell them whom to talk to if someone tries to draw them in."),
        "monitoring": recipe.monitoring or ("Note participants' questions and reactions after each message, above all "
                                            "distress or sympathy for the group; compare the evaluation items before "
                                            "and after the session."),
        "suggested": sorted(k for k, v in (("goal", recipe.goal), ("media", recipe.media), ("action", recipe.action),
                                           ("monitoring", recipe.monitoring)) if not v),
        "session": session,
        "safeguarding": {"text": recipe.safeguarding or SAFEGUARDING_DEFAULT, "given": bool(recipe.safeguarding),
                         "required": bool(under_18), "missing": bool(under_18) and not recipe.safeguarding,
                         "referral": list(recipe.referral), "participants": recipe.help_line or HELP_DEFAULT,
                         "participants_suggested": not recipe.help_line,
                         "placeholders": [found for _, found in placeholders(recipe)]},
        "handout_title": handout_title(recipe) + (" [SYNTHETIC TEST DATA]" if synthetic else ""),
        "ground_rules": list(recipe.ground_rules) or GROUND_RULES_DEFAULT,
        "ground_rules_suggested": not recipe.ground_rules,
        "evaluation": evaluation,
        "do_no_harm": {"content_warnings": warnings, "graphic_included": recipe.include_graphic, "rules": DO_NO_HARM,
                       "points": do_no_harm_points(recipe, messages, used, citation_list, under_18)},
        "citations": citation_list,
        "gaps": [m["text"] for m in messages if m["gap"]],
        "provenance": {"recipe": recipe.source, "recipe_sha256": recipe.digest,
                       "archive_fingerprint": fingerprint.hexdigest(), "tool_version": __version__,
                       "date": recipe.date, "stories": sorted(used)},
    }
    # Redacted before control characters are dropped (safe.py): a name written backwards after a
    # right-to-left override is found only while the override is there. The redactor reads what
    # outputs drop as nothing, so no name split by one of them is joined again after it.
    return clean_context(redact(context))


# What a participant may see: the messages, the quotes with their context and citations, the questions.
HANDOUT_TESTIMONY = ("story_id", "speaker", "role", "language", "dir", "quote_open", "quote_close", "quotes",
                     "content_warnings", "citation", "synthetic")


def handout(context: dict[str, Any]) -> dict[str, Any]:
    """The participant handout: a subset of the (already redacted) facilitator context, so nothing
    new enters it. Monitoring, messenger limits, do-no-harm, safeguarding plan and referral contacts,
    evaluation, summaries, facilitator notes and every other facilitator note are left out, not
    hidden. It adds only what the context holds for participants: the handout title, the ground
    rules and where to get help. Messages and quotes keep the facilitator pack's numbers."""
    messages = [{"n": m["n"], "text": m["text"], "gap": m["gap"], "questions": m["questions"],
                 "testimony": [{k: t[k] for k in HANDOUT_TESTIMONY} for t in m["testimony"]]}
                for m in context["messages"] if not m["gap"]]
    for m in messages:
        for t in m["testimony"]:
            t["quotes"] = [{k: q[k] for k in ("n", "text", "speaker", "context", "ref")} for q in t["quotes"]]
    return {"title": context["handout_title"], "date": context["date"], "level": context["level"],
            "synthetic": context["synthetic"], "edition": "handout", "ground_rules": context["ground_rules"],
            "help": blank_placeholders(context["safeguarding"]["participants"]), "messages": messages,
            # A source page with a content warning is not handed out: its address stays in the facilitator pack.
            "citations": [{**c, "url": "", "url_withheld": bool(c["content_warning"] and c["url"])}
                          if c["content_warning"] else {**c, "url_withheld": False} for c in context["citations"]],
            "provenance": context["provenance"]}


def brief_date(recipe_date: str, source_date_epoch: Optional[str], today: str) -> str:
    if recipe_date:
        return recipe_date
    if source_date_epoch and source_date_epoch.isdigit():
        import datetime as dt

        return dt.datetime.fromtimestamp(int(source_date_epoch), dt.timezone.utc).date().isoformat()
    return today
