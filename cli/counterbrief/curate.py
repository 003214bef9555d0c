"""The curator's writes: a new archive (init) and a new account (add). Nothing is ever overwritten."""
from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


from . import load
from .errors import CounterbriefError, UsageProblem
from .model import PLACEHOLDER_SUMMARY, Archive, Theme
from .redact import read_archive
from .sources import Extracted, meta_path, provenance_yaml, read_source
from .text import find_verbatim, normalise, slugify

CURATOR_README = """\
# Our counterbrief archive

One account per file in `stories/` (YAML front matter, then a summary in our own words), the
source text each quote is checked against in `sources/`, the theme vocabulary in
`vocabulary.yml`, brief recipes in `recipes/`, and our own brief templates in `templates/`.

- `counterbrief add --source article.txt ...` adds an account as a draft.
- `counterbrief check` must pass before a change is shared: every quote is verbatim in its snapshot.
- Only `status: approved` and `sensitivity: public` accounts reach a brief by default.
- Names under `redact:` never appear in any output; `notes:` never reach a brief.
- `counterbrief review` lists what waits for review; `counterbrief approve ID --by NAME` records an approval.
- `counterbrief.yml` marks this folder as an archive (keep it in git) and holds its settings.
- `.counterbrief/` is the search index: derived, git-ignored, never edited by hand.
"""

MARKER_TEXT = """\
# This file marks the folder as a counterbrief archive: keep it in git, so that a clone is found
# as the archive it is even where git dropped an empty stories/ folder. It also holds settings.

# How many different reviewers must approve an account (counterbrief approve ID --by NAME)
# before it is approved; counterbrief check enforces it. 0 lets status be set by hand.
reviewers_required: 1
"""


def write_new(path: Path, text: str) -> None:
    """Create a file that must not exist yet (O_EXCL), whole or not at all."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    try:
        os.link(tmp, path)  # fails if path exists: never overwrites, even racing another add
    except FileExistsError:
        raise CounterbriefError(f"{path.name} exists already", path, fix="choose another id; nothing was overwritten") from None
    finally:
        tmp.unlink(missing_ok=True)


def init_archive(dest: Path, bundled: Path, force: bool = False) -> list[Path]:
    """Make a new archive at dest. Returns the files written; existing files are always kept."""
    if dest.exists() and not dest.is_dir():
        raise UsageProblem(f"{dest} is a file", fix="give a folder for the new archive")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        what = "an archive" if load.archive_state(dest) == "" else "a folder that is not empty"
        raise UsageProblem(f"{dest} is {what}", fix="choose a new folder, or add --force to fill in what is missing (existing files are kept)")
    for sub in ("stories", "sources", "recipes", "templates"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    files = {
        "vocabulary.yml": (bundled / "vocabulary.yml").read_text(encoding="utf-8"),
        # The bundled recipe pins quotes of bundled stories, which a new archive does not hold.
        "recipes/example.yml": re.sub(r"(?m)^ +quotes: \[[^\]]*\]\n", "",
                                      (bundled / "recipes" / "why-they-left-amman.yml").read_text(encoding="utf-8")),
        ".gitignore": ".counterbrief/\n",
        "README.md": CURATOR_README,
        load.MARKER: MARKER_TEXT,
        # git keeps no empty folder: these keep stories/ and sources/ in a fresh clone.
        "stories/.gitkeep": "", "sources/.gitkeep": "", "templates/.gitkeep": "",
    }
    written = []
    for rel, text in files.items():
        target = dest / rel
        if not target.exists():
            write_new(target, text)
            written.append(target)
    return written


@dataclass
class NewStory:
    """What `add` collects, before it becomes a file."""

    source_file: Optional[Path]   # None: standard input (then ``extracted`` holds it)
    alias: str
    title: str
    themes: list[str]
    quotes: list[str]
    id: str = ""
    group: str = "ISIS"
    language: str = "en"
    role: str = ""
    origin: str = ""
    joined: str = ""
    left: str = ""
    now: str = ""
    outlet: str = ""
    source_title: str = ""
    author: str = ""
    published: str = ""
    url: str = ""
    via: str = ""
    retrieved: str = ""
    content_warnings: list[str] = field(default_factory=list)
    sensitivity: str = "internal"
    summary: str = ""
    extracted: Optional[Extracted] = None   # the source's text and provenance, read once

    def source(self) -> Extracted:
        if self.extracted is None:
            self.extracted = read_source(self.source_file)
        return self.extracted

    @property
    def source_name(self) -> str:
        return "standard input" if self.source_file is None else str(self.source_file)


def default_id(new: NewStory) -> str:
    """The alias (transliterated) and the outlet; where nothing of the alias survives, the outlet
    (or the source's title) and the date; at worst 'story' and the date."""
    if len(slugify(new.alias).replace("-", "")) >= 2:
        return slugify(new.alias + " " + (new.outlet or new.source_title))
    when = new.published or _dt.date.today().isoformat()
    return slugify(f"{new.outlet or new.source_title or 'story'} {when}") or slugify(f"story {when}")


def nearest_passage(quote: str, source_text: str, width: int = 0) -> str:
    """The stretch of the source most like a quote that is not verbatim in it (for the curator to compare)."""
    import difflib

    words = source_text.split()
    q = quote.split()
    if not words or not q:
        return ""
    size = max(1, min(len(words), width or len(q)))
    target = " ".join(q).lower()
    best, best_at = -1.0, 0
    step = max(1, size // 4)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    for start in range(0, max(1, len(words) - size + 1), step):
        matcher.set_seq1(" ".join(words[start:start + size]).lower())
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        ratio = matcher.ratio()
        if ratio > best:
            best, best_at = ratio, start
    # Refine around the best window, one word at a time.
    for start in range(max(0, best_at - step), min(len(words) - size, best_at + step) + 1):
        matcher.set_seq1(" ".join(words[start:start + size]).lower())
        ratio = matcher.ratio()
        if ratio > best:
            best, best_at = ratio, start
    return " ".join(words[best_at:best_at + size])


def plan_story(archive: Archive, new: NewStory, vocabulary: dict[str, Theme]) -> tuple[str, Path, Path, str]:
    """Check everything before anything is written. Returns (id, story path, snapshot path, story text)."""
    import yaml

    from .validate import ISO_639_1, did_you_mean

    sid = new.id or default_id(new)
    if not sid or slugify(sid) != sid:
        raise UsageProblem(f"id '{sid}' is not a lowercase slug", fix="use a-z, 0-9 and hyphens, e.g. --id abu-example")
    protected = read_archive(load.story_paths(archive), archive.rel).require()   # fail closed here too
    if protected.finds(sid):
        raise UsageProblem("the id made for this account holds a name listed under redact in this archive",
                           fix=f"give a neutral id, e.g. --id {neutral_id(archive, new, protected)}; nothing was written")
    extracted = new.source()
    story_path = archive.stories_dir / f"{sid}.md"
    snapshot_path = archive.root / "sources" / f"{sid}{extracted.suffix}"
    if story_path.exists():
        raise UsageProblem(f"a story with id '{sid}' exists already ({archive.rel(story_path)})",
                           fix="give another --id; nothing was written")
    for path in (snapshot_path, meta_path(snapshot_path)):
        if path.exists():
            raise UsageProblem(f"{archive.rel(path)} exists already", fix="give another --id; nothing was written")
    if not new.quotes:
        raise UsageProblem("no quote given", fix="add at least one --quote, copied exactly from the source")
    flat = normalise(extracted.text)
    for q in new.quotes:
        if not find_verbatim(q, flat):
            near = nearest_passage(q, extracted.text)
            raise UsageProblem(f"quote not found verbatim in {new.source_name}: \"{q[:60]}\""
                               + (f" (nearest: \"{near[:80]}\")" if near else ""),
                               fix="copy it exactly from the source text; nothing was written")
    for t in new.themes:
        if t not in vocabulary:
            hint = did_you_mean(t, vocabulary)
            raise UsageProblem(f"unknown theme '{t}'", fix=hint or "use an id from 'counterbrief themes'")
    if not new.themes:
        raise UsageProblem("no theme given", fix="add at least one --theme from 'counterbrief themes'")
    if new.language not in ISO_639_1:
        raise UsageProblem(f"language '{new.language}' is not an ISO 639-1 code", fix="use two letters such as en, fr, ar")
    speaker = {"alias": new.alias, "role": new.role, "origin": new.origin, "joined": new.joined,
               "left": new.left, "now": new.now}
    source = {"outlet": new.outlet, "title": new.source_title, "author": new.author, "published": new.published,
              "url": new.url, "via": new.via, "retrieved": new.retrieved, "snapshot": archive.rel(snapshot_path)}
    front = {
        "id": sid, "title": new.title,
        "speaker": {k: v for k, v in speaker.items() if v},
        "group": new.group, "language": new.language, "themes": list(new.themes),
        "source": {k: v for k, v in source.items() if v},
        "quotes": [{"text": q} for q in new.quotes],
        "content_warnings": list(new.content_warnings),
        "sensitivity": new.sensitivity, "status": "draft", "synthetic": False, "redact": [], "notes": "",
    }
    text = "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=100) + "---\n" + (
        new.summary.strip() or PLACEHOLDER_SUMMARY) + "\n"
    return sid, story_path, snapshot_path, text


def neutral_id(archive: Archive, new: NewStory, protected=None) -> str:
    """An id that says nothing about the speaker: the outlet and year, numbered until it is free;
    'account' and the year when the outlet or title holds a name ``protected`` finds."""
    year = str(new.published)[:4]
    base = slugify(f"{new.outlet or new.source_title or 'account'} {year}") or "account"
    if protected is not None and protected.finds(base):
        base = slugify(f"account {year}") or "account"
    n = 1
    while (archive.stories_dir / f"{base}-{n}.md").exists():
        n += 1
    return f"{base}-{n}"


def add_story(archive: Archive, new: NewStory, vocabulary: dict[str, Theme]) -> Path:
    """Write the snapshot and the story, or neither.

    The new files are judged by the same check as the rest of the archive; a story it would
    reject (a bad date, a bad URL, ...) is removed again with its snapshot, and the first
    problem is raised.
    """
    from .validate import SnapshotCache, check_story

    sid, story_path, snapshot_path, text = plan_story(archive, new, vocabulary)
    snapshot_path.parent.mkdir(parents=True, exist_ok=True)
    archive.stories_dir.mkdir(parents=True, exist_ok=True)
    extracted = new.source()
    sidecar = meta_path(snapshot_path)
    write_new(snapshot_path, extracted.text)
    try:
        write_new(sidecar, provenance_yaml(archive.rel(snapshot_path), extracted.provenance))
        write_new(story_path, text)
        story, problems = check_story(story_path, archive, vocabulary, SnapshotCache(archive))
    except BaseException:
        snapshot_path.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise
    if story is None:
        story_path.unlink(missing_ok=True)
        snapshot_path.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        first = next(p for p in problems if p.severity == "error")
        raise UsageProblem(f"the new story would not pass check: {first.message}",
                           fix="correct the option; nothing was written")
    return story_path


