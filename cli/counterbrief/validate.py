"""Judging stories: schema, vocabulary, snapshots, verbatim quotes, ids. Returns problems, never prints."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import load
from .errors import CounterbriefError, Problem
from .model import (DECISIONS, PLACEHOLDER_SUMMARY, SENSITIVITIES, STATUSES, Archive, Quote, Story, Theme,
                    approvers)
from .redact import Redactor, name_words, read_archive
from .text import find_all_verbatim, normalise

ISO_639_1 = set("""aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig
ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml
mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg
si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh
yi yo za zh zu""".split())

SPEAKING_FROM = ("detention", "exile", "home", "unknown")
REGRET = ("yes", "no", "unclear")
# A quote that opens on one of these (or a lowercase letter) starts mid-sentence: it needs context.
CONJUNCTIONS = {"and", "but", "or", "so", "because", "then", "which", "that", "et", "mais", "ou", "donc", "car",
                "puis", "qui", "que"}
_DATE = {"type": ["string", "integer"]}
_TEXT = {"type": "string"}
_LIST = {"type": "array", "items": {"type": "string", "minLength": 1}}
_REVIEW = {"type": "array", "items": {   # appended by counterbrief approve/reject/withdraw
    "type": "object", "required": ["by", "at", "decision"],
    "properties": {"by": {"type": "string", "minLength": 1}, "at": _DATE, "decision": {"enum": list(DECISIONS)},
                   "reason": _TEXT, "sensitivity": {"enum": list(SENSITIVITIES)}},
    "additionalProperties": False}}

STORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "speaker", "group", "language", "themes", "source", "sensitivity", "status"],
    "properties": {
        "id": {"type": "string", "pattern": r"^[a-z0-9]+(-[a-z0-9]+)*$"},
        "title": _TEXT,
        "speaker": {
            "type": "object", "required": ["alias"],
            "properties": {"alias": {"type": "string", "minLength": 1}, "role": _TEXT, "origin": _TEXT,
                           "joined": _DATE, "left": _DATE, "now": _TEXT,
                           # the messenger profile: written by a curator from the source, never guessed
                           "involvement": _TEXT, "speaking_from": {"enum": list(SPEAKING_FROM)},
                           "expresses_regret": {"enum": [*REGRET, True, False]}},
            "additionalProperties": False,
        },
        "group": {"type": "string", "minLength": 1},
        "language": {"type": "string"},
        "themes": {**_LIST, "minItems": 1},
        "source": {
            "type": "object", "required": ["snapshot"],
            "properties": {"outlet": _TEXT, "title": _TEXT, "author": _TEXT, "published": _DATE, "url": _TEXT,
                           "via": _TEXT, "retrieved": _DATE, "snapshot": {"type": "string", "minLength": 1},
                           "content_warning": _TEXT, "via_author": _TEXT, "via_title": _TEXT, "via_published": _DATE},
            "additionalProperties": False,
        },
        "quotes": {"type": "array", "items": {
            "type": "object", "required": ["text"],
            "properties": {"text": {"type": "string", "minLength": 1}, "speaker": _TEXT, "themes": _LIST,
                           "graphic": {"type": "boolean"}, "context": _TEXT, "frames_group_claim": {"type": "boolean"}},
            "additionalProperties": False,
        }},
        "content_warnings": _LIST,
        "corroboration": _LIST,
        "places": _LIST,   # where the account's events happened: the brief's trauma point comes from these
        "sensitivity": {"enum": list(SENSITIVITIES)},
        "status": {"enum": list(STATUSES)},
        "synthetic": {"type": "boolean"},
        "redact": _LIST,
        "notes": {"type": ["string", "null"]},
        "review": _REVIEW,
    },
    "additionalProperties": False,
}

_TYPE_WORDS = {"array": ("a list", "write it as [a, b]"), "string": ("text", "write it as text, quoted if it has a colon"),
               "object": ("a set of fields", "indent its fields below it"), "boolean": ("true or false", "write true or false"),
               "integer": ("a number", "write a number")}
_DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else ""


def _line(lines: dict[str, int], path: list) -> Optional[int]:
    parts = [str(p) for p in path]
    while parts:
        key = ".".join(parts)
        if key in lines:
            return lines[key]
        parts.pop()
    return lines.get("", None)


def schema_problems(data: dict, lines: dict[str, int], shown: str) -> list[Problem]:
    import jsonschema

    validator = jsonschema.Draft202012Validator(STORY_SCHEMA)
    out = []
    for err in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(err.absolute_path)
        name = ".".join(str(p) for p in path) or "front matter"
        kind = err.validator
        if kind == "required":
            missing = err.message.split("'")[1]
            full = f"{name}.{missing}" if path else missing
            msg = f"missing required field '{full}'; add it (see STORY-FORMAT in the README)"
        elif kind == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            hints = [h for h in (did_you_mean(x, err.schema["properties"]) for x in extra) if h]
            where = f" in '{name}'" if path else ""
            msg = f"unknown field{'s' if len(extra) > 1 else ''} {', '.join(repr(x) for x in extra)}{where}; " + (
                hints[0] if hints else "remove it or add it to the format")
            path = path + [extra[0]]
        elif kind == "type":
            want = err.validator_value if isinstance(err.validator_value, str) else err.validator_value[0]
            words, fix = _TYPE_WORDS.get(want, (want, ""))
            msg = f"'{name}' must be {words}; {fix}"
        elif kind == "enum":
            hint = did_you_mean(str(err.instance), err.validator_value)
            msg = f"'{name}' is {err.instance!r}, not one of {', '.join(err.validator_value)}" + (f"; {hint}" if hint else "")
        elif kind == "pattern" and path == ["id"]:
            msg = f"id {err.instance!r} is not a lowercase slug; use a-z, 0-9 and hyphens, e.g. '{_slug(err.instance)}'"
        elif kind in ("minItems", "minLength"):
            msg = f"'{name}' is empty; give at least one value"
        else:
            msg = f"'{name}': {err.message}"
        out.append(Problem(shown, _line(lines, path), msg))
    return out


def _slug(value: str) -> str:
    from .text import slugify

    return slugify(str(value)) or "my-story"


def load_vocabulary(archive: Archive) -> tuple[dict[str, Theme], list[Problem]]:
    shown = "vocabulary.yml"
    try:
        data, lines = load.load_yaml_file(archive.vocabulary_path, shown)
    except CounterbriefError as e:
        return {}, [Problem(shown, e.line, f"{e.problem}" + (f"; {e.fix}" if e.fix else ""))]
    if not isinstance(data, list):
        return {}, [Problem(shown, 1, "the vocabulary must be a list of themes; start each with '- id: ...'")]
    themes: dict[str, Theme] = {}
    problems = []
    for i, item in enumerate(data):
        line = lines.get(str(i))
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item.get("id"):
            problems.append(Problem(shown, line, "a theme needs an 'id'; write '- id: some-theme' with a label"))
            continue
        tid = item["id"]
        if tid in themes:
            problems.append(Problem(shown, line, f"theme '{tid}' is defined twice; keep one"))
            continue
        syn = item.get("synonyms") or []
        if not isinstance(syn, list):
            problems.append(Problem(shown, lines.get(f"{i}.synonyms", line), f"synonyms of '{tid}' must be a list; write [a, b]"))
            syn = []
        themes[tid] = Theme(tid, str(item.get("label") or tid), str(item.get("definition") or ""),
                            [str(s) for s in syn])
    return themes, problems


def usable_vocabulary(archive: Archive, strict: bool = False) -> tuple[dict[str, Theme], list[Problem]]:
    """The vocabulary for a command that works with it: one clear error if it cannot be used.

    An unreadable vocabulary is never silently an empty one (every story would then fail with
    "unknown theme"); ``strict`` refuses any problem at all (a brief is handed on).
    """
    themes, problems = load_vocabulary(archive)
    if problems and (strict or not themes):
        raise CounterbriefError(str(problems[0]), fix="fix vocabulary.yml (counterbrief check)")
    return themes, problems


class _Judged:
    """What a reading of the archive found wrong, split by severity."""

    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


@dataclass
class Loaded(_Judged):
    """What the archive holds that can be used, and what is wrong with the rest."""

    archive: Archive
    stories: list[Story] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    vocabulary: dict[str, Theme] = field(default_factory=dict)
    bad_files: int = 0

    def by_id(self) -> dict[str, Story]:
        return {s.id: s for s in self.stories}


class SnapshotCache:
    """Normalised snapshot texts, read once per run however many stories share them.

    At most ``budget`` characters of text are kept (the most recently used snapshots): fifty
    stories with fifty 20 MB snapshots must not hold a gigabyte. Stories are checked in file
    order, and stories that share a snapshot are usually neighbours.
    """

    def __init__(self, archive: Archive, budget: int = 3 * load.MAX_SNAPSHOT_BYTES):
        self.archive = archive
        self.budget = budget
        self._texts: dict[Path, tuple[Optional[str], str]] = {}   # in order of use, oldest first
        self._held = 0

    def get(self, rel: str) -> tuple[Optional[str], str]:
        """(normalised text, "") or (None, why it cannot be used)."""
        why = _bad_path(rel)
        if why:
            return None, f"snapshot path {why}; write a path such as sources/my-source.txt"
        root = self.archive.root.resolve()
        try:
            path = (root / rel).resolve()
        except (OSError, ValueError, RuntimeError):   # e.g. a link loop
            path = root / rel
        if not path.is_relative_to(root):
            return None, f"snapshot '{rel}' is outside the archive; keep snapshots in sources/"
        found = self._texts.pop(path, None)
        if found is None:
            found = self._read(path, rel, root)
            self._held += len(found[0] or "")
        self._texts[path] = found   # now the most recently used
        while self._held > self.budget and len(self._texts) > 1:
            oldest = next(iter(self._texts))
            self._held -= len(self._texts.pop(oldest)[0] or "")
        return found

    @staticmethod
    def _read(path: Path, rel: str, root: Path) -> tuple[Optional[str], str]:
        try:
            return normalise(load.read_text(path, load.MAX_SNAPSHOT_BYTES, "snapshot", rel, root)), ""
        except CounterbriefError as e:
            if e.problem == "snapshot not found":
                return None, f"snapshot '{rel}' not found; copy the source text to {rel} or fix source.snapshot"
            return None, f"snapshot '{rel}': {e.problem}" + (f"; {e.fix}" if e.fix else "")


def _bad_path(rel: str) -> str:
    """Why a relative path from a story cannot name a file on any system ("" when it can)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in rel):
        return f"{rel!r} holds a control character"
    parts = rel.split("/")
    if len(rel.encode("utf-8", "surrogatepass")) > 1024 or any(len(p.encode("utf-8", "surrogatepass")) > 255 for p in parts):
        return f"'{rel[:60]}...' is too long (over 255 bytes in one name)"
    return ""


def check_story(path: Path, archive: Archive, vocabulary: dict[str, Theme],
                snapshots: SnapshotCache, ids: Optional[dict[str, str]] = None,
                vouched: bool = False) -> tuple[Optional[Story], list[Problem]]:
    """Read and judge one story file. A story comes back only when it has no errors.

    ``ids`` maps each id seen so far in this run to its file, to report duplicates. ``vouched``:
    this very file passed check with the archive as it is (the fresh index says so), so its schema
    and its quotes against the snapshot are not judged again (show, on 100,000 accounts, would
    otherwise import jsonschema and read the snapshot for nothing).
    """
    shown = archive.rel(path)
    try:
        # A file of stories/ is read only if it is (or links to) a regular file inside the archive;
        # a file the user names outside stories/ (check ~/drafts/x.md) is read as given.
        in_stories = load.inside(path.parent, archive.stories_dir.resolve())
        parsed = load.parse_story_file(path, shown, archive.root if in_stories else None)
    except CounterbriefError as e:
        return None, [Problem(shown, e.line, e.problem + (f"; {e.fix}" if e.fix else ""))]
    data, lines = parsed.data, parsed.lines
    problems = []
    if ids is not None and isinstance(data.get("id"), str):
        other = ids.setdefault(data["id"], shown)
        if other != shown:
            problems.append(Problem(shown, lines.get("id"), f"duplicate id '{data['id']}', also used by {other}; "
                                    "give each story its own id"))
    if not vouched:
        problems += schema_problems(data, lines, shown)
    if problems:
        return None, problems
    at = lambda key: lines.get(key)  # noqa: E731

    def err(key, msg, severity="error"):
        problems.append(Problem(shown, at(key), msg, severity))

    if data["id"] != path.stem:
        err("id", f"id '{data['id']}' differs from the file name '{path.name}'; rename the file to {data['id']}.md or change the id")
    if data["language"] not in ISO_639_1:
        err("language", f"language '{data['language']}' is not an ISO 639-1 code; use two letters such as en, fr, ar")
    for i, t in enumerate(data["themes"]):
        if t not in vocabulary:
            hint = did_you_mean(t, vocabulary)
            err(f"themes.{i}", f"unknown theme '{t}'; " + (hint or "add it to vocabulary.yml or use a listed id"))
    for key, value in (("speaker.joined", data["speaker"].get("joined")), ("speaker.left", data["speaker"].get("left")),
                       ("source.published", data["source"].get("published")), ("source.retrieved", data["source"].get("retrieved")),
                       ("source.via_published", data["source"].get("via_published"))):
        if value is not None and not _valid_date(value):
            err(key, f"'{key}' is {value!r}, not a date; write a year (2014), a year-month (2014-06) or a date (2014-06-30)")
    url = data["source"].get("url")
    if url and not re.match(r"^https?://", url):
        err("source.url", f"source.url '{url}' is not a web address; start it with https://")
    approved_by = approvers(data.get("review") or [])
    if data["status"] == "approved" and len(approved_by) < archive.reviewers_required:
        err("status", f"approved with {len(approved_by)} of the {archive.reviewers_required} different reviewers' "
            f"approvals this archive requires (counterbrief.yml); set status: reviewed, or have another reviewer "
            f"run 'counterbrief approve {data['id']} --by NAME'")
    problems += control_problems(data, lines, parsed.body, path, shown)
    problems += _list_below(parsed, shown)
    redact = data.get("redact") or []
    protect = Redactor.from_names(redact)
    for i, name in enumerate(redact):
        if not name_words(name):
            err(f"redact.{i}", f"redact entry {i + 1} has no letters or digits, so it protects nothing; "
                "write the name as published")
    if protect.finds(data["id"]):
        err("id", "the id holds a name listed under redact, and ids are shown everywhere; "
            "rename the file and its id to something neutral (e.g. the outlet and year)")
    quotes = []
    if vouched:
        snapshot, verbatim = None, []
    else:
        snapshot, why = snapshots.get(data["source"]["snapshot"])
        if snapshot is None:
            err("source.snapshot", why)
        verbatim = find_all_verbatim([q["text"] for q in data.get("quotes") or []], snapshot) if snapshot is not None else []
    for i, q in enumerate(data.get("quotes") or []):
        for t in q.get("themes") or []:
            if t not in vocabulary:
                hint = did_you_mean(t, vocabulary)
                err(f"quotes.{i}.themes", f"unknown theme '{t}' in quote {i + 1}; " + (hint or "add it to vocabulary.yml"))
        if snapshot is not None and not verbatim[i]:
            short = q["text"] if len(q["text"]) <= 60 else q["text"][:57] + "..."
            err(f"quotes.{i}.text", f"quote {i + 1} is not verbatim in {data['source']['snapshot']}: \"{short}\"; "
                "copy it exactly from the snapshot")
        if protect.finds(q["text"]):
            err(f"quotes.{i}.text", f"quote {i + 1} holds a name listed under redact; it will show as [redacted]",
                "warning")
        context = (q.get("context") or "").strip()
        if not context and _mid_sentence(q["text"]):
            err(f"quotes.{i}.text", f"quote {i + 1} starts mid-sentence (\"{' '.join(q['text'].split()[:3])} ...\") "
                "and has no context; add context: one line saying who or what it refers to", "warning")
        if not context and q.get("frames_group_claim"):
            err(f"quotes.{i}.text", f"quote {i + 1} repeats the group's own claim (frames_group_claim) and has no "
                "context; add context: one line that frames it, or a brief prints it only when pinned", "warning")
        quotes.append(Quote(q["text"], q.get("speaker") or data["speaker"]["alias"], list(q.get("themes") or []),
                            bool(q.get("graphic", False)), at(f"quotes.{i}.text"), context,
                            bool(q.get("frames_group_claim", False))))
    if not quotes:
        err("id", "no quotes; a brief cannot use this account until it has a verbatim quote", "warning")
    if PLACEHOLDER_SUMMARY in parsed.body:
        err("id", "the summary is still the placeholder 'add' wrote; write it in your own words below the "
            "front matter (an account cannot be approved until then)", "warning")
    if any(p.severity == "error" for p in problems):
        return None, problems
    story = Story(
        id=data["id"], path=path, title=data.get("title") or f"Account of {data['speaker']['alias']}",
        speaker={k: _yes_no(v) for k, v in data["speaker"].items() if v is not None and v != ""},
        group=data["group"], language=data["language"], themes=list(data["themes"]),
        source={k: str(v) for k, v in data["source"].items() if v not in (None, "")},
        quotes=quotes, sensitivity=data["sensitivity"], status=data["status"], body=parsed.body,
        content_warnings=list(data.get("content_warnings") or []), synthetic=bool(data.get("synthetic", False)),
        redact=list(redact), notes=data.get("notes") or "", lines=lines, review=list(data.get("review") or []),
        corroboration=list(data.get("corroboration") or []), places=None if data.get("places") is None else list(data["places"]),
    )
    return story, problems


def _yes_no(value) -> str:
    """YAML reads an unquoted yes/no as true/false: keep the word the curator wrote."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _mid_sentence(text: str) -> bool:
    words = text.strip().lstrip("\"'\u201c\u2018\u00ab\u2026. ").split()
    if not words:
        return False
    first = words[0]
    return first[0].islower() or first.lower().strip(",;:") in CONJUNCTIONS


def _list_below(parsed: "load.Parsed", shown: str) -> list[Problem]:
    """A 'redact:' list written below the front matter: summary text that every output would print,
    though its names are protected all the same (redact.declared_names reads it)."""
    from .redact import BODY_KEY

    below = BODY_KEY.search(parsed.body)
    if not below:
        return []
    line = parsed.body_line + parsed.body.count("\n", 0, below.start()) if parsed.body_line else None
    return [Problem(shown, line, "a 'redact:' list below the front matter is summary text, not a field; move it "
                    "above the closing '---' (until then its names are protected, and the story is left out)")]


def control_problems(data: dict, lines: dict[str, int], body: str, path: Path, shown: str) -> list[Problem]:
    """Control characters in any field or in the summary, one line per field (safe.UNSAFE says which).

    An error for C0/C1 controls and DEL (a NUL or an ESC has no place in an account; outputs drop
    them; a DOCX cannot hold them); a warning for the bidirectional controls, which pasted Arabic
    text may carry but which can make a line read as something else (outputs drop them too).
    """
    from .safe import BIDI_CONTROLS, UNSAFE, control_characters, describe

    found = []

    def walk(value, where: list) -> None:
        if isinstance(value, str):
            if UNSAFE.search(value):
                chars = [ch for _, ch in control_characters(value)]
                if chars:
                    found.append((".".join(str(w) for w in where), _line(lines, where), chars))
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, where + [k])
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, where + [i])

    walk(data, [])
    if UNSAFE.search(body):
        # Only now is the file read again, for the line: the summary starts after the front matter.
        try:
            text = load.read_text(path, load.MAX_STORY_BYTES, "story", shown)
            start = text.rindex(body) if body in text else 0
        except (CounterbriefError, ValueError):
            text, start = body, 0
        by_line: dict[int, list[str]] = {}
        for n, ch in control_characters(text[start:start + len(body)]):
            by_line.setdefault(n + text.count("\n", 0, start) + 1, []).append(ch)
        found += [("summary", line, chars) for line, chars in sorted(by_line.items())]
    problems = []
    for field_name, line, chars in found:
        bidi = [c for c in chars if BIDI_CONTROLS.match(c)]
        other = [c for c in chars if not BIDI_CONTROLS.match(c)]
        if other:
            problems.append(Problem(shown, line, f"control character {describe(other[0])} in {field_name}"
                                    + (f" ({len(other)} in all)" if len(other) > 1 else "")
                                    + "; delete it: no output carries it, and a DOCX cannot hold it"))
        if bidi:
            problems.append(Problem(shown, line, f"bidirectional control {describe(bidi[0])} in {field_name}"
                                    + (f" ({len(bidi)} in all)" if len(bidi) > 1 else "")
                                    + "; it can make the text read as something else, and outputs drop it: delete it",
                                    "warning"))
    return problems


def _valid_date(value) -> bool:
    import datetime as dt

    text = str(value)
    if not _DATE_RE.match(text):
        return False
    parts = [int(p) for p in text.split("-")] + [1, 1]
    try:
        dt.date(parts[0], parts[1], parts[2])
    except ValueError:
        return False
    return True


_CHECK_STATE: dict = {}


def _check_init(archive: Archive, vocabulary) -> None:
    _CHECK_STATE.update(archive=archive, vocabulary=vocabulary, snapshots=SnapshotCache(archive))


def _declared(path: Path) -> tuple[list[str], str]:
    """(names the file protects, "") or ([], why its list cannot be read)."""
    from .redact import protected_names

    names, why = protected_names(path)
    return names or [], why


def _check_one(path: Path) -> tuple:
    """(problems, ok, the id the file declares, its line, (names, why unreadable)): the story stays here."""
    st = _CHECK_STATE
    seen: dict[str, str] = {}
    story, problems = check_story(path, st["archive"], st["vocabulary"], st["snapshots"], seen)
    sid = next(iter(seen), None)
    line = None
    if sid is not None:   # the line of the id, for a duplicate found by the parent
        line = story.lines.get("id") if story else load.parse_story_file(path, str(path)).lines.get("id")
    declared = (list(story.redact), "") if story is not None and story.redact else _declared(path)
    snapshot = (story.source.get("snapshot", ""), story.lines.get("source.snapshot")) if story else ("", None)
    return problems, story is not None, sid, line, declared, snapshot


def _declared_one(path: Path) -> tuple[list[str], str]:
    return _declared(path)


@dataclass
class Checked(_Judged):
    """What ``check`` reports, without keeping the stories: counts and problems."""

    archive: Archive
    vocabulary: dict[str, Theme] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    good: int = 0
    bad_files: int = 0


def check_archive(archive: Archive, only: Optional[list[Path]] = None) -> Checked:
    """``load_archive`` for ``check``: the same problems in the same order, judged as a stream over
    every core, keeping no story, so memory stays bounded whatever the archive's size."""
    from .parallel import ordered_map

    vocabulary, problems = load_vocabulary(archive)
    result = Checked(archive, vocabulary=vocabulary, problems=problems)
    ids: dict[str, str] = {}
    good: list[tuple] = []   # (shown, id, its line, snapshot, its line) of the stories that passed
    names: list[str] = []
    unreadable: dict[str, str] = {}
    paths = only if only is not None else load.story_paths(archive)
    for path, (found, ok, sid, id_line, (declared, why), snapshot) in zip(
            paths, ordered_map(_check_one, paths, _check_init, (archive, vocabulary))):
        shown = archive.rel(path)
        if sid is not None:
            other = ids.setdefault(sid, shown)
            if other != shown:   # rare: judged again here, as load_archive judges a duplicate
                _, found = check_story(path, archive, vocabulary, SnapshotCache(archive), {sid: other})
                ok = False
        result.problems.extend(found)
        if ok:
            good.append((shown, sid, id_line, *snapshot))
        else:
            result.bad_files += 1
        if only is None:
            names += declared
            if why:
                unreadable[shown] = why
    if only is not None:   # every story's list counts, even when only some files are checked
        every = load.story_paths(archive)
        for path, (declared, why) in zip(every, ordered_map(_declared_one, every, _check_init, (archive, vocabulary))):
            names += declared
            if why:
                unreadable[archive.rel(path)] = why
    kept = judge_redaction(result, Redactor.from_names(names), unreadable, good)
    result.good += sum(kept)
    return result


class PinnedStories:
    """The archive's good stories by id, read one at a time as a recipe's pins ask for them."""

    def __init__(self, archive: Archive, vocabulary):
        self.archive, self.vocabulary, self._read = archive, vocabulary, {}
        self.snapshots = SnapshotCache(archive)

    def get(self, sid: str, default=None):
        if sid not in self._read:
            path = self.archive.stories_dir / f"{sid}.md"
            story = None
            if "/" not in sid and path.is_file():
                story, _ = check_story(path, self.archive, self.vocabulary, self.snapshots)
            self._read[sid] = story
        return self._read[sid] if self._read[sid] is not None else default

    def __iter__(self):
        return iter(())


def judge_redaction(result: _Judged, redactor: Redactor, unreadable: dict[str, str], stories) -> list[bool]:
    """The archive-wide part of judging an archive, for load_archive and check_archive alike.

    ``stories`` are the stories that passed on their own, as (file, id, id line, snapshot, snapshot
    line); returns whether each stays. Adds a problem for each story whose redact list cannot be
    read, each id or snapshot file name holding a protected name, each theme holding one; then
    redacts every problem's message, since check's lines may quote story text."""
    for shown, why in sorted(unreadable.items()):
        result.problems.append(Problem(shown, None, f"its redact list cannot be read ({why}); until it is fixed, "
                                       "every command but check refuses to print anything that could show the names"))
    kept = []
    for shown, sid, line, snapshot, snapshot_line in stories:
        if redactor.finds(sid):
            result.problems.append(Problem(shown, line, "the id holds a name another story lists under redact, and "
                                           "ids are shown everywhere; rename the file and its id to something neutral"))
        elif redactor.finds(snapshot):
            result.problems.append(Problem(shown, snapshot_line,
                                           "the snapshot's file name holds a name listed under redact, and file names "
                                           "are kept in the search index; rename the file and source.snapshot"))
        else:
            kept.append(True)
            continue
        result.bad_files += 1
        kept.append(False)
    for theme in result.vocabulary.values():
        if redactor.finds(" ".join([theme.id, theme.label, *theme.synonyms])):
            result.problems.append(Problem("vocabulary.yml", None, f"theme '{redactor.text(theme.id)}' "
                                           "holds a name listed under redact; reword it (a theme whose id holds one is "
                                           "left out of the index)"))
    for p in result.problems:
        p.message = redactor.text(p.message)
    return kept


def load_archive(archive: Archive, only: Optional[list[Path]] = None) -> Loaded:
    """Load and judge the archive (or only the named files). Good stories load beside bad ones."""
    vocabulary, problems = load_vocabulary(archive)
    result = Loaded(archive, vocabulary=vocabulary, problems=problems)
    snapshots = SnapshotCache(archive)
    ids: dict[str, str] = {}
    paths = only if only is not None else load.story_paths(archive)
    for path in paths:
        story, found = check_story(path, archive, vocabulary, snapshots, ids)
        result.problems.extend(found)
        if story is None:
            result.bad_files += 1
        else:
            result.stories.append(story)
    # Redaction is archive-wide: a name one story protects is protected in every other one too.
    # Every story's list counts, even when only some files are checked.
    redaction = read_archive(load.story_paths(archive), archive.rel)
    kept = judge_redaction(result, redaction.redactor, redaction.unreadable,
                           [(archive.rel(story.path), story.id, story.lines.get("id"), story.source.get("snapshot", ""),
                             story.lines.get("source.snapshot")) for story in result.stories])
    result.stories = [story for story, keep in zip(result.stories, kept) if keep]
    return result
