"""The archive's records as plain dataclasses. No I/O here."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

SENSITIVITIES = ("public", "internal", "restricted")
STATUSES = ("draft", "reviewed", "approved", "rejected", "withdrawn")
# Kept on disk with their record, left out of every output (search, show, stats, briefs).
HIDDEN_STATUSES = ("rejected", "withdrawn")
PLACEHOLDER_SUMMARY = "Summary in the curator's own words: to be written."   # what add writes until a curator does
DECISIONS = ("approved", "rejected", "withdrawn", "restored")   # restored: back to draft, to be reviewed again


def approvers(review: list) -> list[str]:
    """The different people who approved an account since it was last rejected or withdrawn."""
    names: list[str] = []
    for entry in review or []:
        if not isinstance(entry, dict):
            continue
        if entry.get("decision") in ("rejected", "withdrawn", "restored"):
            names = []
        elif entry.get("decision") == "approved" and entry.get("by") and str(entry["by"]) not in names:
            names.append(str(entry["by"]))
    return names


@dataclass
class Quote:
    text: str
    speaker: str
    themes: list[str] = field(default_factory=list)
    graphic: bool = False
    line: Optional[int] = None
    context: str = ""                 # one line in the curator's words: who "they" are, what happened
    frames_group_claim: bool = False  # the words repeat the group's own claims: never printed unframed


@dataclass
class Story:
    id: str
    path: Path
    title: str
    speaker: dict[str, str]
    group: str
    language: str
    themes: list[str]
    source: dict[str, str]
    quotes: list[Quote]
    sensitivity: str
    status: str
    body: str
    content_warnings: list[str] = field(default_factory=list)
    synthetic: bool = False
    redact: list[str] = field(default_factory=list)
    notes: str = ""
    corroboration: list[str] = field(default_factory=list)
    places: Optional[list[str]] = None   # where the account's events happened (curator's); None: not assessed
    extra: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    review: list[dict[str, Any]] = field(default_factory=list)   # who decided what, when (counterbrief approve)

    @property
    def usable(self) -> bool:
        """Approved and public: what a brief takes by default."""
        return self.status == "approved" and self.sensitivity == "public" and not self.synthetic

    def quote_themes(self, quote: Quote) -> list[str]:
        """A quote's own themes, falling back to the story's: what selection matches messages against."""
        return list(quote.themes) or list(self.themes)

    def all_themes(self) -> list[str]:
        seen = list(self.themes)
        for q in self.quotes:
            seen.extend(t for t in q.themes if t not in seen)
        return seen


@dataclass
class Theme:
    id: str
    label: str
    definition: str = ""
    synonyms: list[str] = field(default_factory=list)


@dataclass
class Archive:
    root: Path
    bundled: bool = False
    fallback: bool = False    # the bundled archive, used because nothing at or above the cwd is an archive
    reviewers_required: int = 0   # from counterbrief.yml: different approvals an approved account needs

    @property
    def stories_dir(self) -> Path:
        return self.root / "stories"

    @property
    def vocabulary_path(self) -> Path:
        return self.root / "vocabulary.yml"

    @property
    def recipes_dir(self) -> Path:
        return self.root / "recipes"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    def rel(self, path: Path) -> str:
        """A path as the user should read it: relative to the archive when inside it."""
        try:   # the folder is resolved, not the file: a link is named as it is, never as its target
            return str((path.parent.resolve() / path.name).relative_to(self.root.resolve()))
        except (ValueError, OSError, RuntimeError):
            return str(path)


@dataclass
class Message:
    text: str
    themes: list[str] = field(default_factory=list)
    query: str = ""
    quotes: list[str] = field(default_factory=list)      # pins: "STORY_ID#N", N counting from 1
    questions: list[str] = field(default_factory=list)   # discussion questions
    line: Optional[int] = None
    pin_lines: list[Optional[int]] = field(default_factory=list)
    facilitator_notes: list[str] = field(default_factory=list)   # facilitator edition only


@dataclass
class Recipe:
    """What a brief is for and what it says: a recipe file, or options given on the command line."""

    title: str
    messages: list[Message]
    date: str = ""
    level: str = "public"
    goal: str = ""
    audience: dict[str, str] = field(default_factory=dict)
    max_accounts_per_message: int = 3
    messenger: str = ""
    media: str = ""
    action: str = ""
    monitoring: str = ""
    include_graphic: bool = False
    template: str = "brief"
    session: dict[str, Any] = field(default_factory=dict)        # length, group_size, steps
    safeguarding: str = ""    # the facilitator's plan (safeguarding: TEXT, or safeguarding.plan)
    referral: list[str] = field(default_factory=list)   # safeguarding.referral: contacts, for the facilitator
    help_line: str = ""       # safeguarding.participants: where participants get help (the handout prints it)
    handout_title: str = ""
    ground_rules: list[str] = field(default_factory=list)
    evaluation: list[dict[str, str]] = field(default_factory=list)  # [{statement, scale}]
    source: str = ""          # the recipe file's name, or "command line"
    digest: str = ""          # sha256 of the recipe as given
