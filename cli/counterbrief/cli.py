"""The command line. Each command parses, calls the stages and prints; heavy imports stay inside commands."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import click

from . import __version__
from .errors import CounterbriefError, UsageProblem
from .safe import terminal_text

ARCHIVE_HELP = "Archive folder (default: $COUNTERBRIEF_ARCHIVE, the nearest archive above the current folder, or the bundled one)."


def _one_line(e: click.UsageError) -> click.UsageError:
    """click's usage error (a missing file, an unknown option) as one line, as ours are: what is
    wrong, then where to read how, instead of the usage, a hint and the error on three lines."""
    if e.ctx is None:
        return e
    line = click.UsageError(f"{e.format_message()} (see '{e.ctx.command_path} --help')")
    line.exit_code = e.exit_code
    return line


class Root(click.Group):
    """Turns our errors into one clean line and the right exit code, in one place."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:   # the options before the command
            raise _one_line(e) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:   # a command's own arguments and options
            raise _one_line(e) from None
        except CounterbriefError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            exc = click.ClickException(terminal_text(last_redaction(str(e))))
            exc.exit_code = e.exit_code
            raise exc from None
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly, as grep and rg do.
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            raise click.exceptions.Exit(0) from None
        except OSError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            where = f"{e.filename}: " if getattr(e, "filename", None) else ""
            raise click.ClickException(terminal_text(last_redaction(f"{where}{e.strerror or e}"))) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - the promise is one line, never a traceback
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise click.ClickException(terminal_text(last_redaction(
                f"internal error: {type(e).__name__}: {e}; run again with --debug and report the traceback"))) from None


def last_redaction(value):
    """The last pass over everything printed: the archive's protected names, whatever the text
    came from (a warning, an error, a problem line). The commands redact their data themselves;
    this catches what no command thought of. Nothing is done before an archive is chosen."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    if not obj or "archive" not in obj:
        return value
    if "output_redactor" not in obj:
        from .redact import output_redactor

        try:
            obj["output_redactor"] = output_redactor(obj["archive"])
        except Exception:  # noqa: BLE001 - the commands' own redaction stands; this pass is extra
            obj["output_redactor"] = None
    r = obj["output_redactor"]
    return r(value) if r else value


def echo(text: str = "", err: bool = False, highlight: bool = False) -> None:
    """Print a line for a reader: protected names redacted, every control character from the
    archive made visible (safe.py); then, with ``highlight``, the search hits coloured (the only
    escape sequences the tool prints)."""
    text = terminal_text(last_redaction(text))
    if highlight:
        from .safe import highlight as colour

        text = colour(text)
    click.echo(text, err=err, color=False if os.environ.get("NO_COLOR") else None)


def emit_json(data, indent: Optional[int] = 2) -> None:
    from .safe import json_text

    click.echo(json_text(json.dumps(last_redaction(data), ensure_ascii=False, indent=indent)))


@click.group(cls=Root, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--archive", type=click.Path(path_type=Path, file_okay=False), envvar="COUNTERBRIEF_ARCHIVE",
              help=ARCHIVE_HELP)
@click.option("-v", "--verbose", is_flag=True, help="Say which archive is used, and more.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("-q", "--quiet", is_flag=True, help="Say nothing on standard error but warnings and errors.")
@click.version_option(__version__, prog_name="counterbrief")
@click.pass_context
def main(ctx: click.Context, archive: Optional[Path], verbose: bool, debug: bool, quiet: bool) -> None:
    """Keep a curated archive of defector accounts and make counter-messaging briefs from it.

    \b
    Example:
        counterbrief brief recipes/why-they-left-amman.yml -o brief.pdf
    """
    from_env = ctx.get_parameter_source("archive") == click.core.ParameterSource.ENVIRONMENT
    ctx.obj = {"archive_opt": None if from_env else archive, "archive_env": archive if from_env else None,
               "verbose": verbose, "debug": debug, "quiet": quiet}


def _archive_after_command(ctx: click.Context, param, value):
    if value is not None:
        ctx.find_root().obj["archive_opt"] = value
    return value


def _flag_after_command(ctx: click.Context, param, value):
    if value:
        ctx.find_root().obj[param.name] = True
    return value


def global_options(f):
    """-v, --debug and -q after the command name too (`counterbrief check -v`)."""
    for flags, name, text in ((("-q", "--quiet"), "quiet", "Say nothing on standard error but warnings and errors."),
                              (("--debug",), "debug", "Show tracebacks instead of one-line errors."),
                              (("-v", "--verbose"), "verbose", "Say which archive is used, and more.")):
        f = click.option(*flags, name, is_flag=True, expose_value=False, callback=_flag_after_command,
                         help=text)(f)
    return f


def archive_option(f):
    """--archive after the command name too (`counterbrief check --archive DIR`), with the global options."""
    return global_options(click.option("--archive", type=click.Path(path_type=Path, file_okay=False),
                                       expose_value=False, callback=_archive_after_command, help=ARCHIVE_HELP,
                                       shell_complete=_complete_folder)(f))


def _complete_folder(ctx, param, incomplete):
    from click.shell_completion import CompletionItem

    return [CompletionItem(incomplete, type="dir")]


def _completions(ctx, candidates) -> list:
    """What shell completion may offer: slugs only (a file name with an escape sequence is never
    written into the user's shell line or listed on their terminal), and none that holds a
    protected name (the last pass's list: the index's, with the stories changed since)."""
    import re

    from .redact import output_redaction

    slugs = [c for c in candidates if re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", c)]
    if not slugs:
        return []
    protected = output_redaction(ctx.find_root().obj["archive"]).require()   # none while a list is unreadable
    return sorted(c for c in slugs if not protected.finds(c))


def _completion_archive(ctx):
    from . import load

    obj = ctx.find_root().obj if ctx.find_root().obj is not None else {}
    ctx.find_root().obj = obj
    if "archive" not in obj:
        root = ctx.find_root().params.get("archive") or os.environ.get("COUNTERBRIEF_ARCHIVE")
        obj["archive"] = load.find_archive(Path(root) if root else None, None, Path.cwd())
    return obj["archive"]


def _complete_story_id(ctx, param, incomplete):
    """Story ids for shell completion: the file names in stories/, read without parsing anything."""
    try:
        archive = _completion_archive(ctx)
        return _completions(ctx, (p.stem for p in archive.stories_dir.glob("*.md") if p.stem.startswith(incomplete)))
    except Exception:  # noqa: BLE001 - completion never prints an error into the user's shell line
        return []


def _complete_theme(ctx, param, incomplete):
    """Theme ids for shell completion, from vocabulary.yml."""
    from . import load

    try:
        archive = _completion_archive(ctx)
        data, _ = load.load_yaml_file(archive.vocabulary_path, "vocabulary.yml")
        return _completions(ctx, (str(t["id"]) for t in data
                                  if isinstance(t, dict) and str(t.get("id", "")).startswith(incomplete)))
    except Exception:  # noqa: BLE001
        return []


def _writable(archive) -> None:
    from .errors import UsageProblem

    if archive.bundled and not (archive.root / ".git").exists() and "site-packages" in str(archive.root):
        raise UsageProblem("the bundled archive is part of the installed package",
                           fix="run 'counterbrief init DIR' and work in that archive (--archive DIR)")


def term_width() -> int:
    """The terminal's width (COLUMNS, else the terminal's own, else 88), kept between 40 and 120 for reading."""
    import shutil

    return max(40, min(120, shutil.get_terminal_size((88, 24)).columns))


def info(text: str) -> None:
    """A line for the user on standard error that --quiet silences (progress, summaries, notices)."""
    if not click.get_current_context().find_root().obj.get("quiet"):
        echo(text, err=True)


def get_archive(ctx: click.Context):
    """The archive this command works on (resolved once, on first use)."""
    from . import load

    obj = ctx.find_root().obj
    if "archive" not in obj:
        env = obj["archive_env"]
        obj["archive"] = load.find_archive(obj["archive_opt"], str(env) if env else None, Path.cwd())
        if obj["archive"].fallback:
            # Said every time: a team archive silently turning into the bundled one is the worst case.
            info(f"no archive in {Path.cwd()} or above it: using the bundled archive ({obj['archive'].root}); "
                 "give --archive DIR, or run 'counterbrief init DIR'")
        elif obj["verbose"]:
            info(f"archive: {obj['archive'].root}" + (" (bundled)" if obj["archive"].bundled else ""))
    return obj["archive"]


# --------------------------------------------------------------------------- init / add

@main.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--force", is_flag=True, help="Fill in a folder that is not empty; existing files are kept.")
@global_options
def init(directory: Path, force: bool) -> None:
    """Create a new, empty archive in DIRECTORY.

    \b
    Example:
        counterbrief init our-archive && cd our-archive && counterbrief check
    """
    from .curate import init_archive
    from .load import bundled_root

    written = init_archive(directory, bundled_root(), force=force)
    echo(f"archive ready in {directory} ({len(written)} files written)")


@main.command()
@click.option("--source", "source_file", required=True,
              type=click.Path(path_type=Path, dir_okay=False, exists=True, allow_dash=True),
              help="The source the quotes come from: a saved web page (.html), a PDF, a text file, or - for "
                   "standard input; its text becomes the snapshot in sources/.")
@click.option("--id", "sid", default="", help="Story id (lowercase slug); made from the alias if not given.")
@click.option("--title", default="", help="A title for the account.")
@click.option("--alias", default="", help="The speaker's name as the source publishes it.")
@click.option("--role", default="", help="The speaker's role in the group.")
@click.option("--origin", default="", help="Where the speaker comes from, as the source says.")
@click.option("--joined", default="", help="Year or date joined.")
@click.option("--left", default="", help="Year or date left.")
@click.option("--now", default="", help="Where the speaker is now, if the source says.")
@click.option("--group", default="ISIS", show_default=True, help="The group.")
@click.option("--language", default="en", show_default=True, help="ISO 639-1 code of the account.")
@click.option("--theme", "themes", multiple=True, shell_complete=_complete_theme, help="A theme id (repeatable).")
@click.option("--quote", "quotes", multiple=True, help="A verbatim quote from the source (repeatable).")
@click.option("--outlet", default="", help="The outlet that published the source.")
@click.option("--source-title", default="", help="The source's headline.")
@click.option("--author", default="", help="Author or correspondent.")
@click.option("--published", default="", help="Publication date (YYYY, YYYY-MM or YYYY-MM-DD).")
@click.option("--url", default="", help="The source's web address.")
@click.option("--via", default="", help="The outlet the source cites, when it is second-hand.")
@click.option("--retrieved", default="", help="Date the source was retrieved.")
@click.option("--content-warning", "warnings", multiple=True, help="A content warning (repeatable).")
@click.option("--sensitivity", type=click.Choice(["public", "internal", "restricted"]), default="internal",
              show_default=True, help="Who may see it.")
@click.option("--summary", default="", help="A summary in your own words.")
@click.option("--edit", is_flag=True, help="Open the new story in $EDITOR.")
@archive_option
@click.pass_context
def add(ctx, source_file, sid, title, alias, role, origin, joined, left, now, group, language, themes, quotes,
        outlet, source_title, author, published, url, via, retrieved, warnings, sensitivity, summary, edit) -> None:
    """Add an account from a source text, as a draft.

    Every quote is checked verbatim against the source before anything is written; nothing is
    ever overwritten. In a terminal, what is missing is asked for.

    \b
    Example:
        counterbrief add --source article.txt --alias "Abu X" --title "..." \\
            --theme regret --quote "If they'd known the truth they wouldn't have joined"
    """
    from .curate import NewStory, add_story
    from .index import Index
    from .sources import read_source
    from .validate import SnapshotCache, check_story, usable_vocabulary

    archive = get_archive(ctx)
    _writable(archive)
    from_stdin = str(source_file) == "-"
    extracted = read_source(None, sys.stdin.buffer.read()) if from_stdin else read_source(source_file)
    vocabulary, _ = usable_vocabulary(archive)
    new = NewStory(source_file=None if from_stdin else source_file, alias=alias, title=title,
                   themes=[t for t in themes if t], quotes=list(quotes), id=sid, group=group, language=language,
                   role=role, origin=origin, joined=joined, left=left, now=now, outlet=outlet,
                   source_title=source_title, author=author, published=published, url=url, via=via,
                   retrieved=retrieved, content_warnings=list(warnings), sensitivity=sensitivity, summary=summary,
                   extracted=extracted)
    if not from_stdin and sys.stdin.isatty():
        from .ask import dialogue

        dialogue(new, vocabulary)
    else:
        # What the page or PDF says about itself fills what the options left empty.
        for key, value in extracted.defaults().items():
            if not getattr(new, key):
                setattr(new, key, value)
    missing = [f"--{n}" for n, v in (("alias", new.alias), ("title", new.title)) if not v]
    if missing:
        raise UsageProblem(f"missing {', '.join(missing)}", fix="give them as options, or run add in a terminal to be asked")
    with Index(archive)._lock():
        path = add_story(archive, new, vocabulary)
    echo(f"added {archive.rel(path)} (status: draft)")
    if edit:
        click.edit(filename=str(path))
        _, problems = check_story(path, archive, vocabulary, SnapshotCache(archive))
        for p in problems:   # the curator's own edit is kept; what check would say is shown
            echo(str(p), err=True)
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            from .present import count

            raise CounterbriefError(f"the edited story has {count(len(errors), 'error')} (above); it is kept as it is",
                                    archive.rel(path), fix="fix it, then run 'counterbrief check'")


# --------------------------------------------------------------------------- check / show / stats / themes

@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print {errors, warnings} as JSON.")
@archive_option
@click.pass_context
def check(ctx, paths, as_json) -> None:
    """Validate the archive (stories and recipes), or only the named files.

    Checks YAML and fields, ids, themes, snapshots and that every quote is verbatim in its
    snapshot, and that every recipe would make a brief. Prints one line per problem; exits 1
    if there is any error.

    \b
    Example:
        counterbrief check stories/abu-hajer-al-maghribi.md
    """
    from . import load
    from .recipe import recipe_problems
    from .validate import PinnedStories, check_archive

    archive = get_archive(ctx)
    only = None
    recipes = sorted(archive.recipes_dir.glob("*.yml")) if archive.recipes_dir.is_dir() else []
    if paths:
        only, recipes = [], []
        for p in paths:
            if p.is_dir():
                only += sorted(x for x in p.glob("*.md"))
            elif p.suffix in (".yml", ".yaml") and p.name != "vocabulary.yml":
                recipes.append(p)
            else:
                only.append(p)
    loaded = check_archive(archive, only=only)
    # Pinned quotes are judged against the whole archive, even when only some files were named;
    # only the pinned stories are read.
    loaded.problems += recipe_problems(recipes, loaded.vocabulary, archive.rel, PinnedStories(archive, loaded.vocabulary),
                                       {p.stem for p in load.story_paths(archive)},
                                       template_dirs=(archive.templates_dir, load.bundled_root() / "templates"))
    checked = len(only) if only is not None else loaded.good + loaded.bad_files
    if as_json:
        emit_json({"archive": str(archive.root), "checked": checked, "recipes": len(recipes),
                   "errors": [p.to_json() for p in loaded.errors],
                   "warnings": [p.to_json() for p in loaded.warnings]})
    else:
        from .present import count

        for p in loaded.problems:
            echo(str(p))
        info(f"checked {count(checked, 'story', 'stories')} and {count(len(recipes), 'recipe')} in {archive.root}: "
             f"{count(len(loaded.errors), 'error')}, {count(len(loaded.warnings), 'warning')}")
    if loaded.errors:
        ctx.exit(1)


@main.command()
@click.argument("story_id", shell_complete=_complete_story_id)
@click.option("--json", "as_json", is_flag=True, help="Print the whole record as JSON.")
@click.option("--notes", is_flag=True, help="Include curator notes (never shown otherwise).")
@archive_option
@click.pass_context
def show(ctx, story_id, as_json, notes) -> None:
    """Show one account: content warnings first, then who, summary, quotes and source.

    \b
    Example:
        counterbrief show cbs-defector-turkey-2017
    """
    from . import load, present
    from .errors import UsageProblem
    from .report import story_record
    from .validate import SnapshotCache, check_story, did_you_mean

    archive = get_archive(ctx)
    path = load.story_path(archive, story_id)
    if not os.path.lexists(path):   # a FIFO or a link out is named by check_story, below
        from .redact import showable_ids

        hint = did_you_mean(story_id, showable_ids(archive))
        raise UsageProblem(f"no story '{story_id}'", fix=hint or "list ids with 'counterbrief search \"*\"'")
    # Redaction is archive-wide: the fresh index knows every story's names, so one file is read, not all.
    def compute(index):
        redact = index.redactor()   # first: a redact list that cannot be read stops here
        # Kept only if the index matches the files (fresh_answer), so the index's word on this file holds.
        story, problems = check_story(path, archive, index.vocabulary(), SnapshotCache(archive),
                                      vouched=index.vouches_for(archive.rel(path)))
        if story is not None and story.status == "withdrawn":
            last = (story.review or [{}])[-1]
            raise UsageProblem(f"story '{story_id}' was withdrawn" + (f" on {str(last['at'])[:10]}" if last.get("at") else ""),
                               fix=f"it appears in no output; its file and record are kept in {archive.rel(path)}")
        if story is None:
            raise UsageProblem(redact.text(f"story '{story_id}' has errors: {problems[0]}"),
                               fix="fix it, then run counterbrief check")
        if redact.finds(story.id):
            raise UsageProblem(f"story '{story_id}' has an id that holds a name listed under redact",
                               fix="rename it (counterbrief check says more)")
        return story_record(story, redact, include_notes=notes)

    record = fresh_answer(ctx, compute)
    if as_json:
        emit_json(record)
    else:
        echo(present.show(record, term_width()))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@archive_option
@click.pass_context
def stats(ctx, as_json) -> None:
    """Counts by theme, group, origin, year, language, status and sensitivity, and the gaps.

    Counts come from the search index (brought up to date first); themes include quote themes.

    \b
    Example:
        counterbrief stats --json
    """
    from . import present, report
    from .facets import archive_tally

    def compute(index):
        redact = index.redactor()
        bad = index.bad_count()
        return redact(report.stats(str(index.archive.root), archive_tally(index), bad, index.vocabulary())), bad

    data, bad = fresh_answer(ctx, compute)
    if bad:
        echo(f"warning: {bad} story file(s) with errors left out; run 'counterbrief check' to see them", err=True)
    emit_json(data) if as_json else echo(present.stats(data))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the vocabulary as JSON.")
@archive_option
@click.pass_context
def themes(ctx, as_json) -> None:
    """The theme vocabulary: labels, definitions, synonyms and how many accounts carry each.

    \b
    Example:
        counterbrief themes
    """
    from . import present, report
    from .facets import archive_tally

    rows = fresh_answer(ctx, lambda index: index.redactor()(report.themes(index.vocabulary(), archive_tally(index))))
    emit_json(rows) if as_json else echo(present.themes(rows, term_width()))


# --------------------------------------------------------------------------- review

@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the queue as JSON.")
@archive_option
@click.pass_context
def review(ctx, as_json) -> None:
    """The review queue: drafts and reviewed accounts, with what check says about each.

    \b
    Example:
        counterbrief review
        counterbrief approve abu-example-cbs-news --by Amina --public
    """
    from . import present
    from .review import queue
    from .validate import usable_vocabulary

    archive = get_archive(ctx)
    vocabulary, _ = usable_vocabulary(archive)
    data = queue(archive, vocabulary)
    emit_json(data) if as_json else echo(present.review_queue(data, term_width()))


def _decide(ctx: click.Context, *args) -> None:
    """Record one review decision (review.decide) in a writable archive and say what it did."""
    from .review import decide

    archive = get_archive(ctx)
    _writable(archive)
    echo(_said(decide(archive, *args)))


def _said(decision) -> str:
    from .present import count

    if decision.decision == "approved":
        tally = f"{count(len(decision.approvals), 'approval')} of {decision.required} needed"
        return f"{decision.id}: {decision.status}, {decision.sensitivity} ({tally})"
    if decision.decision == "restored":
        return (f"{decision.id}: draft again; it needs {count(decision.required, 'approval')} before it reaches "
                "a brief (approvals before it left do not count)")
    return f"{decision.id}: {decision.status}; out of search, show, stats and briefs, its file and record kept"


@main.command()
@click.argument("story_id", shell_complete=_complete_story_id)
@click.option("--by", "by", required=True, help="Your name, as the record should keep it.")
@click.option("--public", "sensitivity", flag_value="public", help="Approve it for public briefs.")
@click.option("--internal", "sensitivity", flag_value="internal", help="Approve it for internal briefs only.")
@click.option("--reason", default="", help="A note for the record (optional).")
@archive_option
@click.pass_context
def approve(ctx, story_id, by, sensitivity, reason) -> None:
    """Approve an account: records who and when, and sets status (and sensitivity if given).

    Where the archive's counterbrief.yml says reviewers_required: 2, the first approval makes the
    account 'reviewed' and a second, different reviewer's makes it 'approved'.

    \b
    Example:
        counterbrief approve abu-example-cbs-news --by Amina --public
    """
    _decide(ctx, story_id, "approved", by, reason, sensitivity)


@main.command()
@click.argument("story_id", shell_complete=_complete_story_id)
@click.option("--by", "by", required=True, help="Your name, as the record should keep it.")
@click.option("--reason", required=True, help="Why, for the curator who added it.")
@archive_option
@click.pass_context
def reject(ctx, story_id, by, reason) -> None:
    """Reject an account: status rejected, with who, when and why in its record.

    A rejected account leaves search, stats and briefs; its file stays for the curator to mend
    (then set status: draft).

    \b
    Example:
        counterbrief reject abu-example-cbs-news --by Amina --reason "quote 2 is the reporter's words"
    """
    _decide(ctx, story_id, "rejected", by, reason)


@main.command()
@click.argument("story_id", shell_complete=_complete_story_id)
@click.option("--reason", required=True, help="Why (a speaker's request, a safety concern).")
@click.option("--by", "by", default=None, help="Your name (default: your login name).")
@archive_option
@click.pass_context
def withdraw(ctx, story_id, reason, by) -> None:
    """Withdraw an account from every output at once, keeping its file and record.

    \b
    Example:
        counterbrief withdraw abu-example-cbs-news --reason "the speaker asked us to"
    """
    import getpass

    _decide(ctx, story_id, "withdrawn", by or getpass.getuser(), reason)


@main.command()
@click.argument("story_id", shell_complete=_complete_story_id)
@click.option("--by", "by", required=True, help="Your name, as the record should keep it.")
@click.option("--reason", required=True, help="Why it may come back (e.g. the speaker agreed again).")
@archive_option
@click.pass_context
def restore(ctx, story_id, by, reason) -> None:
    """Bring back a rejected or withdrawn account as a draft, to be reviewed again.

    Approvals given before it was rejected or withdrawn do not count: it needs the archive's
    approvals again before it reaches a brief.

    \b
    Example:
        counterbrief restore abu-example-cbs-news --by Amina --reason "the speaker agreed again"
    """
    _decide(ctx, story_id, "restored", by, reason)


# --------------------------------------------------------------------------- index / search

def new_index(ctx: click.Context):
    """The archive's search index object; what it has to say goes to stderr (whoosh is imported
    only when the index is opened or written: stats and show read small files)."""
    from .index import Index

    return Index(get_archive(ctx), notice=lambda line: echo(line, err=True))


def open_index(ctx: click.Context, rebuild: bool = False, scan: Optional[dict] = None):
    """The archive's index, brought up to date; progress on stderr when it is a terminal."""
    index = new_index(ctx)
    bar = None

    quiet = ctx.find_root().obj.get("quiet")
    labels = {"checking": "checking stories", "indexing": "indexing", "saving": "saving the index",
              "saved": "index saved"}

    def progress(done: int, total: int, phase: str = "indexing") -> None:
        nonlocal bar
        if bar is None and total >= 600 and not quiet and sys.stderr.isatty():
            bar = click.progressbar(length=total, label=labels.get(phase, phase), file=sys.stderr)
            bar.__enter__()
        if bar is not None:
            label = labels.get(phase, phase).ljust(16)
            if label != bar.label or done > bar.pos:
                bar.label = label   # the save is long and moves no count: its label says what is happening
                bar.update(max(0, done - bar.pos))
                bar.render_progress()

    try:
        report = index.fresh(progress=progress, rebuild=rebuild, scan=scan)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    redaction = index.redaction() if report.skipped else None
    if redaction is not None and not redaction.unreadable:   # otherwise the one line is the refusal
        for problem in report.skipped:
            echo(redaction.redactor.text(f"skipped {problem}"), err=True)
    return index, report


def _fresh_last_pass(ctx: click.Context, index) -> None:
    """The index was just found to match the archive: its list of protected names is the whole
    archive's, so the last pass over output (``last_redaction``) takes it without a scan of its own."""
    obj = ctx.find_root().obj
    if "output_redactor" not in obj:
        try:
            obj["output_redactor"] = index.redaction().redactor
        except Exception:  # noqa: BLE001 - the last pass then reads the lists itself
            pass


WARM_INDEX = None   # while `counterbrief watch` answers a command: the watcher, whose index is kept fresh


def fresh_answer(ctx: click.Context, compute):
    """compute(index), answered from an index that matches the archive's files.

    The freshness check (a stat of every file) starts first, in a child process, and runs while
    this process imports whoosh and computes the answer on the live index; the answer is kept only
    if the check says that index matches the files. Otherwise the index is brought up to date
    (with its progress bar and skipped-file lines) and the answer computed again. An error raised
    on a stale index is not trusted either. ``compute`` must not print or write: the caller does
    that with what it returns.
    """
    from .errors import is_damage
    from .state import take_probe

    warm = WARM_INDEX.warm(get_archive(ctx)) if WARM_INDEX is not None else None
    if warm is not None:   # the watcher has taken in every change made before this command
        index, report = warm
        redaction = index.redaction() if report.skipped else None
        if redaction is not None and not redaction.unreadable:   # otherwise the one line is the refusal
            _fresh_last_pass(ctx, index)
            for problem in report.skipped:
                echo(redaction.redactor.text(f"skipped {problem}"), err=True)
        answer = compute(index)
        _fresh_last_pass(ctx, index)
        return answer
    probe = take_probe(get_archive(ctx))   # started by the console script before click, if it could
    scan = None
    try:
        if probe.started:
            index = new_index(ctx)
            try:
                answer, failure = compute(index), None
            except Exception as e:  # noqa: BLE001 - our errors and a damaged index are judged below
                if not isinstance(e, CounterbriefError) and not is_damage(e):
                    raise
                answer, failure = None, e
            verdict = probe.verdict()
            if verdict is not None and verdict.covers(index.opened, index.opened_signature):
                if failure is None:
                    _fresh_last_pass(ctx, index)
                    return answer
                if not is_damage(failure):
                    raise failure
            scan = verdict.scan if verdict else None
    finally:
        probe.close()
    index, _ = open_index(ctx, scan=scan)
    try:
        answer = compute(index)
        _fresh_last_pass(ctx, index)
        return answer
    except Exception as e:  # noqa: BLE001
        if not is_damage(e):
            raise
        # A damaged index (found on reading it) is rebuilt, with one line, and asked again. If it
        # was replaced while being read (another process rebuilt it), it is only asked again.
        from .state import current_folder

        if index.opened is None or current_folder(index.home) == index.opened:
            echo(f"{index.home}: the search index was unreadable; rebuilding it", err=True)
            index, _ = open_index(ctx, rebuild=True)
        else:
            index, _ = open_index(ctx)
        return compute(index)


@main.command()
@click.option("--rebuild", is_flag=True, help="Start the index over instead of updating it.")
@archive_option
@click.pass_context
def index(ctx, rebuild) -> None:
    """Bring the search index up to date (search does this by itself).

    \b
    Example:
        counterbrief index --rebuild
    """
    from .present import count

    idx, report = open_index(ctx, rebuild=rebuild)
    if report.total < 0:
        info(f"index in {idx.home} is up to date")
        return
    what = "rebuilt" if report.rebuilt else "updated"
    info(f"index {what} in {idx.home}: {count(report.indexed, 'story', 'stories')} indexed, {report.removed} removed, "
         f"{len(report.skipped)} skipped with errors; {count(report.total, 'story', 'stories')} searchable")


@main.command()
@click.argument("query", nargs=-1)
@click.option("--theme", "themes", multiple=True, shell_complete=_complete_theme, help="Only accounts with this theme (repeatable).")
@click.option("--group", help="Only accounts about this group.")
@click.option("--language", help="Only accounts in this language (ISO 639-1).")
@click.option("--status", type=click.Choice(["draft", "reviewed", "approved"]), help="Only accounts with this status.")
@click.option("--usable", is_flag=True, help="Only approved, public accounts (what a brief may use).")
@click.option("--limit", type=click.IntRange(1, 10000), help="Hits per page (default 10; all for csv/jsonl).")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True, help="Page of hits.")
@click.option("--facets", is_flag=True, help="Also count hits by theme, group, language and year.")
@click.option("--sort", type=click.Choice(["score", "date", "id"]), default="score", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "jsonl", "csv"]), default="table",
              show_default=True, help="csv and jsonl export the matching accounts' metadata.")
@archive_option
@click.pass_context
def search(ctx, query, themes, group, language, status, usable, limit, page, facets, sort, as_json, fmt) -> None:
    """Search the archive: words, "phrases", AND/OR/NOT, theme:, group:, lang:, status:, year:2014..2016.

    English, French and Arabic words match their other forms (executed ~ executing,
    étrangers ~ etrangers, الدولة ~ الدَّوْلَة), and a theme's synonyms find the theme.
    '*' with filters lists everything that matches them.

    \b
    Examples:
        counterbrief search "kill argues" --facets
        counterbrief search propaganda --theme regret --usable --format csv > hits.csv
    """
    from . import present
    from .search import SearchRequest, search as run_search

    fmt = "json" if as_json else fmt
    export = fmt in ("csv", "jsonl")
    req = SearchRequest(query=" ".join(query), themes=list(themes), group=group, language=language, status=status,
                        usable=usable, limit=limit if (limit or not export) else None, page=page, sort=sort,
                        facets=facets or fmt == "json", snippets=not export)
    if req.limit is None and not export:
        req.limit = 10
    result = fresh_answer(ctx, lambda index: run_search(index, req, index.vocabulary()))
    if fmt == "json":
        emit_json(present.search_json(result))
    elif fmt == "jsonl":
        for hit in result.hits:
            emit_json(present.export_row(hit), indent=None)
    elif fmt == "csv":
        click.echo(present.search_csv(result.hits), nl=False)
    else:
        color = not os.environ.get("NO_COLOR") and sys.stdout.isatty()
        # Wrapped with the [[hit]] marks as plain text, then made safe, then coloured (safe.highlight).
        echo(present.search_table(result, width=term_width()), highlight=color)


# --------------------------------------------------------------------------- brief

@main.command()
@click.argument("recipe_file", required=False, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--theme", "themes", multiple=True, shell_complete=_complete_theme, help="Without a recipe: one message per theme (repeatable).")
@click.option("--query", default="", help="Without a recipe: a full-text query for the message(s).")
@click.option("--id", "ids", multiple=True, shell_complete=_complete_story_id, help="Use only these accounts (repeatable).")
@click.option("--title", default="", help="Without a recipe: the brief's title.")
@click.option("--audience", default="", help="Without a recipe: who the brief is for.")
@click.option("--language", default="", help="Without a recipe: the audience's language (ISO 639-1).")
@click.option("--level", type=click.Choice(["public", "internal"]), help="public (default) or internal.")
@click.option("--include-graphic", is_flag=True, default=None, help="Let quotes marked graphic in.")
@click.option("--include-synthetic", is_flag=True, help="Let synthetic test data in (tests and benchmarks only).")
@click.option("--per-message", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Without a recipe: accounts per message.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="Output file; format from its suffix.")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "pdf", "docx", "json", "txt"]),
              help="Output format (default: from -o, else md).")
@click.option("--template", default=None, help="A template name (from the archive's templates/) or a .j2 path.")
@click.option("--strict", is_flag=True,
              help="Fail (exit 1) when a message has no usable account, an under-18 audience has no safeguarding "
                   "plan, or the safeguarding section still holds a [fill in: ...] placeholder.")
@click.option("--edition", type=click.Choice(["facilitator", "handout"]), default="facilitator", show_default=True,
              help="facilitator: everything; handout: what participants may see (ground rules, messages, quotes, "
                   "questions, where to get help).")
@click.option("--evaluation", "evaluation_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the evaluation items (pre/post) as CSV to this file.")
@archive_option
@click.pass_context
def brief(ctx, recipe_file, themes, query, ids, title, audience, language, level, include_graphic, include_synthetic,
          per_message, output, fmt, template, strict, edition, evaluation_file) -> None:
    """Render a counter-messaging brief from a recipe (or from --theme/--query).

    Only approved, public accounts are used (internal ones too with --level internal);
    restricted accounts, curator notes and redacted names never appear. The same archive and
    recipe give the same bytes every time. The facilitator edition holds everything; the
    handout holds only what participants may see (refused for an internal brief).

    \b
    Examples:
        counterbrief brief recipes/why-they-left-amman.yml -o brief.pdf
        counterbrief brief recipes/why-they-left-amman.yml --edition handout -o handout.pdf
        counterbrief brief recipes/why-they-left-amman.yml -o brief.pdf --evaluation items.csv
        counterbrief brief --theme regret --theme suppression-of-dissent --format html -o regret.html
    """
    from . import brief as pipeline
    from .errors import UsageProblem
    from .load import bundled_root, story_path
    from .recipe import adhoc_recipe, load_recipe
    from .select import Options
    from .validate import usable_vocabulary
    from .write import BINARY, WRITERS, Templates, format_for, prewarm, write_atomic

    fmt = format_for(output, fmt)
    if fmt in BINARY and output is None:
        raise UsageProblem(f"{fmt} is a binary format", fix=f"give -o FILE.{fmt}")
    if output is not None and not output.resolve().parent.is_dir():   # before any work is done
        raise UsageProblem(f"{output.parent}: folder does not exist", fix="create it or choose another -o path")
    if WARM_INDEX is None:   # a PDF's writer imports WeasyPrint on the other core meanwhile (not in the watcher)
        prewarm(fmt)
    archive = get_archive(ctx)
    vocabulary, _ = usable_vocabulary(archive, strict=True)
    if recipe_file is not None:
        if themes or query:
            raise UsageProblem("give a recipe or --theme/--query, not both", fix="put the messages in the recipe")
        recipe = load_recipe(recipe_file, vocabulary)
    else:
        recipe = adhoc_recipe(vocabulary, list(themes), query, title, audience, language, level or "public",
                              bool(include_graphic), per_message)
    if level:
        recipe.level = level
    if include_graphic:
        recipe.include_graphic = True
    if edition == "handout" and recipe.level == "internal":
        raise UsageProblem("an internal brief has no participant handout",
                           fix="make the handout from a public recipe, or use --edition facilitator")
    if evaluation_file is not None and not evaluation_file.resolve().parent.is_dir():
        raise UsageProblem(f"{evaluation_file.parent}: folder does not exist", fix="create it or choose another path")
    missing = sorted(i for i in ids if not story_path(archive, i).is_file())
    if missing:
        raise UsageProblem(f"no story '{missing[0]}'", fix="check the id with 'counterbrief show'")
    from .render import EXTENSIONS, template_location

    if fmt in EXTENSIONS:   # a format written through a template: found before any work, as the output folder is
        template_location(template or recipe.template, fmt, archive.templates_dir, bundled_root() / "templates")
    options = Options(include_synthetic=include_synthetic, only_ids=list(ids))
    selection: list[str] = []
    context, redact = fresh_answer(ctx, lambda index: (
        pipeline.build(index, vocabulary, recipe, options, os.environ.get("SOURCE_DATE_EPOCH"), selection),
        index.redactor()))
    for problem in dict.fromkeys(selection):
        echo(f"warning: {problem}", err=True)
    for gap in context["gaps"]:
        echo(f"warning: no usable account for the message \"{gap}\"", err=True)
    if context["safeguarding"]["missing"]:
        echo(f"warning: the audience ({context['audience']['age']}) includes under-18s and the recipe has no "
             "safeguarding: plan; the brief says so", err=True)
    still = context["safeguarding"]["placeholders"]
    if still:
        echo(f"warning: the safeguarding section still holds {len(still)} placeholder(s) ({'; '.join(still)}); "
             "replace each with the real contact before the session", err=True)
    if strict and context["gaps"]:
        raise CounterbriefError(f"{len(context['gaps'])} message(s) have no usable account; nothing was written",
                                recipe_file, fix="add or approve accounts for them, or run without --strict")
    if strict and context["safeguarding"]["missing"]:
        raise CounterbriefError("the audience includes under-18s and the recipe has no safeguarding plan; nothing was "
                                "written", recipe_file, fix="add 'safeguarding:' (what to do on a disclosure, referral "
                                "contacts) to the recipe")
    if strict and still:
        raise CounterbriefError(f"the safeguarding section still holds the placeholder {still[0]}; nothing was written",
                                recipe_file, fix="replace every [fill in: ...] under safeguarding: with the real contact "
                                "(name, phone, hours) of your safeguarding lead or local service; counterbrief never "
                                "invents one")
    evaluation = None
    if evaluation_file is not None:   # from the facilitator's context; written once the brief is
        from .write import evaluation_csv

        evaluation = (evaluation_csv(context), len(context["evaluation"]))
    if edition == "handout":
        from .select import handout

        context = handout(context)
    from importlib.resources import files

    templates = Templates(template or recipe.template, archive.templates_dir, bundled_root() / "templates",
                          Path(str(files("counterbrief") / "fonts")), redact)
    data = WRITERS[fmt](context, templates)
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        from .present import count

        write_atomic(output, data)
        info(f"wrote {output} ({fmt}, {edition}, "
             f"{count(sum(len(m['testimony']) for m in context['messages']), 'testimony', 'testimonies')}, "
             f"{count(len(context['citations']), 'source')})")
    if evaluation is not None:
        write_atomic(evaluation_file, evaluation[0])
        echo(f"wrote {evaluation_file} ({evaluation[1]} evaluation items)", err=True)


@main.command()
@click.option("--idle", type=click.FloatRange(min=1), default=3600, show_default=True,
              help="Stop after this many seconds without a command.")
@click.option("--status", is_flag=True, help="Say whether a watcher answers for this archive; exit 1 if none.")
@click.option("--stop", is_flag=True, help="Stop the watcher of this archive.")
@archive_option
@click.pass_context
def watch(ctx, idle, status, stop) -> None:
    """Keep the index up to date as files change, and answer search, show, stats, themes and brief.

    Runs until stopped (Ctrl-C, --stop) or idle for --idle seconds. Every command asks it
    first over a socket in the index folder that only you can open, and runs by itself as
    usual when there is no watcher. Needs a platform with Unix sockets (Linux, macOS).

    \b
    Example:
        counterbrief watch --idle 7200 &
        counterbrief search propaganda      # answered by the watcher
        counterbrief watch --stop
    """
    import socket

    from . import watch as w
    from .errors import UsageProblem
    from .state import index_home

    archive = get_archive(ctx)
    home = str(index_home(archive))
    if not hasattr(socket, "AF_UNIX"):
        raise UsageProblem("watch needs Unix sockets, which this platform lacks",
                           fix="run commands without a watcher; they check the archive themselves")
    if Path(home) != archive.root / ".counterbrief":
        raise UsageProblem(f"{archive.root} keeps its index outside the archive (it is read-only or installed)",
                           fix="run watch on an archive you can write to (counterbrief init DIR)")
    if status or stop:
        reply = w.request(home, {"op": "stop" if stop else "status"}, timeout=10)
        if reply is None:
            echo(f"no watcher for {archive.root}", err=True)
            ctx.exit(1)
        if stop:
            for _ in range(100):   # until it has removed its socket
                if w.request(home, {"op": "status"}, timeout=1) is None:
                    break
                import time

                time.sleep(0.05)
            echo(f"stopped the watcher of {archive.root} (pid {reply.get('pid')})", err=True)
        else:
            echo(f"watcher pid {reply['pid']} for {reply['archive']}: {reply['answered']} commands answered, "
                 f"stops after {reply['idle_left']:.0f} s idle", err=True)
        return
    server = w.Server(archive, idle)
    try:
        server.serve(ready=lambda: echo(f"watching {archive.root}; socket {w.socket_path(home)}", err=True))
    except RuntimeError:
        raise UsageProblem(f"a watcher already answers for {archive.root}",
                           fix="'counterbrief watch --stop' stops it") from None
    except KeyboardInterrupt:
        pass


def run() -> None:
    """The console script: the click command, then a quick exit.

    Once the command is done and its output flushed, nothing is left to clean up (files are
    written atomically and closed, index writers committed, worker pools joined), so the process
    leaves with os._exit instead of tearing down every loaded module: ~12 ms of a 165 ms search
    with whoosh loaded.
    """
    try:
        main.main(prog_name="counterbrief")
        code = 0
    except SystemExit as e:
        code = e.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:   # the reader went away (| head): nothing more to say
        pass
    os._exit(code)


if __name__ == "__main__":  # python -m counterbrief.cli, used by tests
    run()
