"""The interactive `add`: each answer is checked as it is typed, and asked again until it is right.

Themes are listed first and a wrong one gets a "did you mean"; each quote is checked verbatim
against the source at once, and when it is not there the nearest passage is shown to compare;
the metadata found in a saved page or PDF is offered as the default for outlet, title, author,
date and URL. Prompts go to standard error, so standard output keeps only the result.
"""
from __future__ import annotations

from typing import Optional

import click

from .curate import NewStory, nearest_passage
from .text import find_verbatim, normalise


def _shown(text: str) -> str:
    """Text for the curator's terminal, as every command prints it (cli.echo): protected names
    redacted, control characters made visible. A page's or a PDF's title, the source text and the
    vocabulary are untrusted."""
    from .cli import last_redaction
    from .safe import terminal_text

    return terminal_text(last_redaction(text))


def _refuse(text: str) -> click.UsageError:
    return click.UsageError(_shown(text))


def _ask(text: str, check=None, default: Optional[str] = None, required: bool = True) -> str:
    """One prompt; ``check`` returns the cleaned value or raises click.UsageError (shown, then asked again)."""
    def proc(value: str) -> str:
        value = value.strip()
        if not value and required:
            raise click.UsageError("an answer is needed here")
        return check(value) if (check and value) else value

    shown_default = default if default else ("" if not required else None)
    if default:   # shown as it would be printed; Enter still takes the value found
        text = f"{text} [{_shown(default)}]"
    return click.prompt(text, default=shown_default, show_default=False, value_proc=proc, err=True)


def dialogue(new: NewStory, vocabulary: dict) -> None:
    """Ask for what the options did not give, filling ``new`` in place."""
    from .validate import _valid_date, did_you_mean

    extracted = new.source()
    found = extracted.defaults()
    say = lambda line="": click.echo(_shown(line), err=True)  # noqa: E731
    words = len(extracted.text.split())
    say(f"source: {new.source_name} ({extracted.provenance.get('extractor', '')}; {words} words)")
    for key, label in (("source_title", "title"), ("outlet", "site"), ("author", "by"), ("published", "date"),
                       ("url", "address")):
        if key in found:
            say(f"  found {label}: {found[key]}")
    if not new.alias:
        new.alias = _ask("Speaker's name as published")
    if not new.title:
        new.title = _ask("Title of the account")
    if not new.themes:
        say("The themes to choose from (id, label)")
        width = max(len(t) for t in vocabulary) if vocabulary else 0
        for theme in vocabulary.values():
            say(f"  {theme.id.ljust(width)}  {theme.label}")

        def themes_ok(value: str) -> str:
            ids = [t for t in (p.strip() for p in value.replace(" ", ",").split(",")) if t]
            for t in ids:
                if t not in vocabulary:
                    hint = did_you_mean(t, vocabulary)
                    raise _refuse(f"unknown theme '{t}'" + (f"; {hint}" if hint else "; use an id listed above"))
            return ",".join(ids)

        new.themes = _ask("Themes (ids, comma-separated)", themes_ok).split(",")
    flat = normalise(extracted.text)

    def quote_ok(value: str) -> str:
        if not find_verbatim(value, flat):
            near = nearest_passage(value, extracted.text)
            raise _refuse(f"not verbatim in {new.source_name}"
                                   + (f"; the nearest passage is: \"{near}\"" if near else "")
                                   + "; copy it exactly from the source")
        return value

    if not new.quotes:
        while True:
            n = len(new.quotes) + 1
            quote = _ask(f"Quote {n} (verbatim from the source" + ("; Enter to finish)" if n > 1 else ")"),
                         quote_ok, required=n == 1)
            if not quote:
                break
            new.quotes.append(quote)

    def date_ok(value: str) -> str:
        if not _valid_date(value):
            raise _refuse(f"'{value}' is not a date; write 2014, 2014-06 or 2014-06-30")
        return value

    def url_ok(value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise _refuse(f"'{value}' is not a web address; start it with https://")
        return value

    for attr, text, check in (("outlet", "Outlet that published it", None),
                              ("source_title", "Headline of the source", None),
                              ("author", "Author or correspondent", None),
                              ("published", "Date published (YYYY, YYYY-MM or YYYY-MM-DD)", date_ok),
                              ("url", "Web address", url_ok)):
        if not getattr(new, attr):
            setattr(new, attr, _ask(text, check, default=found.get(attr, ""), required=False))
    if not new.summary:
        new.summary = _ask("Summary in your own words (Enter to write it later)", required=False)
