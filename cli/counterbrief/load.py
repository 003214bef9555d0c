"""Reading the archive from disk: finding it, splitting front matter, YAML with line numbers.

Nothing here judges a story beyond "can it be read"; validate.py does the rest.
"""
from __future__ import annotations

import datetime as _dt
import errno
import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .errors import CounterbriefError, UsageProblem
from .model import Archive
from .state import inside  # noqa: F401 - the rule the freshness scan follows too

if TYPE_CHECKING:
    from .state import Scan

MAX_STORY_BYTES = 1_000_000
MAX_SNAPSHOT_BYTES = 20_000_000
FRONT = "---"


# --------------------------------------------------------------------------- archive

def bundled_root() -> Path:
    """The archive shipped with the package: the folder of the mapped package ``counterbrief._bundled``.

    Found from its import spec, which works for plain and editable installs alike and costs a
    fraction of importing importlib.resources on every command.
    """
    import importlib.util

    spec = importlib.util.find_spec("counterbrief._bundled")
    return Path(next(iter(spec.submodule_search_locations)))


MARKER = "counterbrief.yml"


def is_archive(path: Path) -> bool:
    """A usable archive: the marker file (git keeps it, so a clone whose empty stories/ was dropped
    is still found) or, for archives made before the marker, stories/ beside vocabulary.yml."""
    return archive_state(path) == ""


def archive_state(path: Path) -> Optional[str]:
    """None: no archive here. "": an archive. Otherwise what makes this archive-looking folder incomplete."""
    try:
        marker = (path / MARKER).is_file()
        vocabulary = (path / "vocabulary.yml").is_file()
        stories = (path / "stories").is_dir()
        sources = (path / "sources").is_dir()
    except OSError:
        return None
    if marker:
        # A missing stories/ is an empty one (git keeps no empty folder); nothing is created here.
        return "" if vocabulary else f"it has {MARKER} but no vocabulary.yml"
    if vocabulary and stories:
        return ""
    if vocabulary:
        return "it has vocabulary.yml but no stories/ folder"
    if stories and sources:
        return "it has stories/ and sources/ but no vocabulary.yml"
    return None


def _incomplete(folder: Path, why: str, origin: str = "") -> UsageProblem:
    where = f"{origin} {folder}" if origin else str(folder)
    return UsageProblem(f"{where} looks like a counterbrief archive but is incomplete: {why}",
                        fix=f"run 'counterbrief init --force {folder}' to fill in what is missing (existing files are kept)")


def find_archive(explicit: Optional[Path], env: Optional[str], cwd: Path) -> Archive:
    """--archive, then COUNTERBRIEF_ARCHIVE, then the nearest archive at or above cwd, then the bundled one.

    A folder at or above cwd that looks like an archive but is incomplete is an error, never a
    reason to fall back: the bundled archive is used only when nothing here looks like one, and
    the returned Archive then says so (``fallback``) for the command line to tell the user.
    """
    for given, origin in ((explicit, "--archive"), (Path(env) if env else None, "COUNTERBRIEF_ARCHIVE")):
        if given is None:
            continue
        if not given.is_dir():
            raise UsageProblem(f"{origin} {given} is not a folder",
                               fix=f"give the folder that holds {MARKER} or stories/ and vocabulary.yml")
        state = archive_state(given)
        if state is None:
            raise UsageProblem(f"{origin} {given} is not a counterbrief archive (no {MARKER}, stories/ or vocabulary.yml)",
                               fix=f"run 'counterbrief init {given}' or point {origin} at an archive")
        if state:
            raise _incomplete(given, state, origin)
        return _with_settings(Archive(given.resolve(), bundled=_same(given, bundled_root())))
    for folder in (cwd, *cwd.parents):
        state = archive_state(folder)
        if state == "":
            return _with_settings(Archive(folder.resolve(), bundled=_same(folder, bundled_root())))
        if state:
            raise _incomplete(folder, state)
    return _with_settings(Archive(bundled_root().resolve(), bundled=True, fallback=True))


def _with_settings(archive: Archive) -> Archive:
    try:
        archive.reviewers_required = archive_settings(archive)["reviewers_required"]
    except CounterbriefError as e:   # a bad setting stops every command: it decides what may be used
        raise UsageProblem(e.problem, e.path, e.line, e.fix) from None
    return archive


def archive_settings(archive: Archive) -> dict[str, Any]:
    """The settings in the archive's marker file (defaults when it has none)."""
    settings: dict[str, Any] = {"reviewers_required": 0}
    path = archive.root / MARKER
    if not path.is_file():
        return settings
    data, lines = load_yaml_file(path, MARKER)
    if data is None:
        return settings
    if not isinstance(data, dict):
        raise CounterbriefError("the marker file is not a mapping of settings", MARKER, 1,
                                fix="write one 'setting: value' per line, e.g. reviewers_required: 2")
    required = data.get("reviewers_required", 0)
    if not isinstance(required, int) or isinstance(required, bool) or not 0 <= required <= 9:
        raise CounterbriefError(f"reviewers_required is {required!r}, not a number from 0 to 9", MARKER,
                                lines.get("reviewers_required"), fix="write e.g. reviewers_required: 2")
    settings["reviewers_required"] = required
    return settings


def settings_now(archive: Archive) -> Archive:
    """The archive with its settings as counterbrief.yml says them now (the watcher, and a build
    that checks the file did not change while it was read): the same object when they are
    unchanged, or when the file cannot be read as settings (every command refuses that itself, in
    find_archive, before it reads the index)."""
    try:
        required = archive_settings(archive)["reviewers_required"]
    except CounterbriefError:
        return archive
    return archive if required == archive.reviewers_required else replace(archive, reviewers_required=required)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def story_paths(archive: Archive) -> list[Path]:
    """Every entry of stories/ named *.md, sorted so output and problem order never depend on the file system.

    Entries that are not readable stories (folders, FIFOs, devices, links out of the archive or in
    a loop) are listed too: reading them fails with one line for that entry (``read_text``), so
    ``check`` reports them and the index skips them with that line.
    """
    try:
        with os.scandir(archive.stories_dir) as it:
            # '.#x.md' is an editor's lock (a dangling link) while x.md is edited, not a story.
            return sorted(Path(e.path) for e in it if e.name.endswith(".md") and not e.name.startswith(".#"))
    except OSError:
        return []


SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def story_path(archive: Archive, story_id: str) -> Path:
    """The file of a story id; an id is a slug, so it can name no file outside stories/."""
    if not SLUG.fullmatch(story_id):
        raise UsageProblem(f"{story_id[:80]!r} is not a story id", fix="an id is a lowercase slug (a-z, 0-9, hyphens), "
                           "e.g. 'jordanian-defector-cbs-2017'")
    return archive.stories_dir / f"{story_id}.md"


# --------------------------------------------------------------------------- reading

class NotAFile(CounterbriefError):
    """The entry is no regular file (a folder, FIFO, device, socket, broken link or link loop): it has no content."""


def open_regular(path: Path, root: Optional[Path] = None) -> tuple[int, os.stat_result]:
    """Open a regular file for reading: (fd, its stat). Raises CounterbriefError otherwise.

    Opened without blocking (a FIFO never hangs us) and judged by ``fstat`` of what was opened,
    so a file swapped after a check is judged as it is. With ``root``, a path that leads (through
    links) outside it is refused before it is opened: a story or snapshot may be a link, but only
    to a file inside the archive.
    """
    if root is not None and not inside(path, root):
        if not os.path.islink(path):
            raise CounterbriefError("outside the archive", fix="copy the file into the archive to use it")
        raise CounterbriefError("a link to a file outside the archive", fix="copy the file into the archive instead")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if os.path.islink(path):
            raise NotAFile("a broken link", fix="replace the link by the file, or remove it") from None
        raise CounterbriefError("not found", fix="check the path") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotAFile("a link loop", fix="replace the link by the file, or remove it") from None
        if e.errno == errno.ENAMETOOLONG:
            raise CounterbriefError("a path too long for the file system", fix="use a shorter name") from None
        raise CounterbriefError(f"cannot be read ({e.strerror})", fix="check the file and its permissions") from None
    except ValueError:   # a NUL in the path
        raise CounterbriefError("a path with a NUL character", fix="use a plain file name") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "a socket"
        raise NotAFile(f"{kind}, not a regular file", fix="only regular files are read; move it out")
    return fd, st


def read_text(path: Path, limit: int, what: str, shown: str, root: Optional[Path] = None) -> str:
    """Read a UTF-8 regular file, refusing anything else and files over ``limit`` bytes with a clear error.

    With ``root``, the file (links followed) must be inside that folder.
    """
    try:
        fd, st = open_regular(path, root)
    except CounterbriefError as e:
        raise CounterbriefError(f"{what} is {e.problem}" if e.problem != "not found" else f"{what} not found",
                                shown, fix=e.fix) from None
    fix = ("keep the story short and put long text in its source snapshot" if what == "story"
           else "keep only the part of the text that is needed")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > limit:
            raise CounterbriefError(f"{what} is {st.st_size / 1e6:.1f} MB, over the {limit / 1e6:g} MB limit",
                                    shown, fix=fix)
        data = f.read(limit + 1)   # the size may have grown since fstat: never read more than the limit
    if len(data) > limit:
        raise CounterbriefError(f"{what} is over the {limit / 1e6:g} MB limit", shown, fix=fix)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise CounterbriefError(f"not UTF-8 text (byte 0x{data[e.start]:02x})", shown, line,
                                fix="re-save the file as UTF-8") from None


def hash_file(path: Path, limit: int, root: Optional[Path] = None) -> bytes:
    """A digest that tells an edit from a touch, read in chunks; never more than ``limit`` bytes read.

    A file over ``limit`` is summarised by its size alone: nothing can use it while it stays that
    big, and it becomes usable only by shrinking, which changes its size. What is not a readable
    regular file (inside ``root``) gives a fixed digest of why.
    """
    import hashlib

    try:
        fd, st = open_regular(path, root)
    except CounterbriefError as e:
        return b"unreadable:" + e.problem.encode()
    with os.fdopen(fd, "rb") as f:
        if st.st_size > limit:
            return b"size:%d" % st.st_size
        digest = hashlib.sha1()
        left = limit + 1
        while left > 0:
            chunk = f.read(min(1 << 20, left))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest.digest()


@dataclass
class Parsed:
    """A story file split into its fields (with the line of each) and its body."""

    data: dict[str, Any]
    lines: dict[str, int] = field(default_factory=dict)
    body: str = ""
    body_line: Optional[int] = None   # the file line of the body's first line


def split_front_matter(text: str, shown: str) -> tuple[str, str, int]:
    """Return (yaml text, body, line number of the body's first line)."""
    if not text.strip():
        raise CounterbriefError("empty file", shown, 1,
                                fix="a story starts with '---', its YAML fields, and a closing '---'")
    lines = text.splitlines(keepends=True)
    if lines[0].rstrip() != FRONT:
        raise CounterbriefError("no YAML front matter", shown, 1,
                                fix="start the file with a line '---', the fields, then a closing '---'")
    for i, line in enumerate(lines[1:], start=1):
        if line.rstrip() in (FRONT, "..."):
            return "".join(lines[1:i]), "".join(lines[i + 1:]), i + 2
    raise CounterbriefError("front matter is never closed", shown, 1,
                            fix="add a line '---' after the last field")


def _loader():
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str, shown: str, first_line: int = 1) -> tuple[Any, dict[str, int]]:
    """Parse YAML, returning the data and the file line of every field path (``quotes.0.text``)."""
    import yaml

    if "&" in text:   # an alias needs an anchor: no '&', no alias to expand (and no second parse)
        _refuse_anchors(text, shown, first_line)
    loader = _loader()(text)
    node = None
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_shape(node, shown, first_line)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        # An unclosed bracket or quote is found only at the end of the text: point at where it opened.
        line = mark.line if mark else None
        lines = text.splitlines()
        if line is not None and line >= len(lines):
            line = e.context_mark.line if e.context_mark else line
            if line >= len(lines):
                line = max((i for i, t in enumerate(lines) if t.strip()), default=0)
        line = line + first_line if line is not None else None
        problem = (e.problem or e.context or "cannot be read").strip()
        raise CounterbriefError(f"bad YAML: {problem}", shown, line,
                                fix="check the indentation, colons and quoting on this line") from None
    except yaml.YAMLError as e:
        raise CounterbriefError(f"bad YAML: {e}", shown, fix="check the file's YAML syntax") from None
    except (ValueError, OverflowError) as e:   # a value YAML recognises but Python cannot build
        line = _unbuildable_line(loader, node) if node is not None else None
        raise CounterbriefError(f"bad YAML: a value cannot be read ({str(e).split(';')[0]})", shown,
                                line + first_line if line is not None else None,
                                fix="quote it to keep it as text, e.g. '2016-13-01', or correct it") from None
    except RecursionError:   # the pure-Python composer recurses once per level
        raise CounterbriefError(f"bad YAML: nested more than {MAX_YAML_DEPTH} levels deep", shown, first_line,
                                fix=_DEPTH_FIX) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        _mark_lines(node, "", lines, first_line, shown)
    return _plain(data), lines


# Counterbrief's files nest four levels at most (quotes.0.themes.0); the bound keeps every later
# walk (construction, line marks, the schema) far from Python's recursion limit.
MAX_YAML_DEPTH = 32
_DEPTH_FIX = "story, recipe and vocabulary fields nest a few levels at most; remove the extra brackets or indentation"


def _refuse_anchors(text: str, shown: str, first_line: int) -> None:
    """Refuse YAML anchors and aliases, before anything is built from them.

    No counterbrief file needs them, and an alias of an alias of a list is how a few hundred
    bytes expand into gigabytes ("billion laughs"). Reading the events costs one parse, without
    expansion; only texts with an '&' are read this way.
    """
    import yaml

    loader = _loader()(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            anchor = getattr(event, "anchor", None)
            if isinstance(event, yaml.AliasEvent) or anchor is not None:
                what = f"alias *{anchor}" if isinstance(event, yaml.AliasEvent) else f"anchor &{anchor}"
                raise CounterbriefError(f"YAML {what} is not allowed", shown, event.start_mark.line + first_line,
                                        fix="write the value out in full; counterbrief files use no anchors or aliases")
    except yaml.YAMLError:
        return   # the real parse below reports it with its line
    finally:
        loader.dispose()


def _unbuildable_line(loader, root) -> Optional[int]:
    """The line of the first scalar that cannot be built (a date 2016-13-01, an integer of 5,000 digits)."""
    import yaml

    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            try:
                loader.construct_object(node)
            except (ValueError, OverflowError, yaml.YAMLError):
                return node.start_mark.line
        elif isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return None


def _check_shape(root, shown: str, first_line: int) -> None:
    """Refuse nesting deeper than MAX_YAML_DEPTH and any node reached twice (an alias), without recursion."""
    import yaml

    seen: set[int] = set()
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            raise CounterbriefError("YAML alias is not allowed", shown, node.start_mark.line + first_line,
                                    fix="write the value out in full; counterbrief files use no anchors or aliases")
        seen.add(id(node))
        if depth > MAX_YAML_DEPTH:
            raise CounterbriefError(f"bad YAML: nested more than {MAX_YAML_DEPTH} levels deep", shown,
                                    node.start_mark.line + first_line, fix=_DEPTH_FIX)
        if isinstance(node, yaml.MappingNode):
            stack.extend((n, depth + 1) for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((n, depth + 1) for n in node.value)


def _mark_lines(node, prefix: str, out: dict[str, int], first_line: int, shown: str = "") -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            name = f"{prefix}{key.value}"
            if name in seen:   # YAML would silently keep the last one: a second redact: would undo the first
                raise CounterbriefError(f"field '{name}' is given twice", shown, key.start_mark.line + first_line,
                                        fix="keep one, with every value in it")
            seen.add(name)
            out.setdefault(name, key.start_mark.line + first_line)
            _mark_lines(value, name + ".", out, first_line, shown)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            name = f"{prefix}{i}"
            out.setdefault(name, item.start_mark.line + first_line)
            _mark_lines(item, name + ".", out, first_line, shown)


def _plain(value: Any) -> Any:
    """Dates become ISO strings, so that the schema and the output see text, as the curator wrote it."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    return value


def parse_story_file(path: Path, shown: str, root: Optional[Path] = None) -> Parsed:
    """A story file's fields and body; with ``root``, only a file inside that folder is read."""
    text = read_text(path, MAX_STORY_BYTES, "story", shown, root)
    front, body, body_line = split_front_matter(text, shown)
    data, lines = load_yaml(front, shown, first_line=2)
    if not isinstance(data, dict):
        raise CounterbriefError("front matter is not a mapping of fields", shown, 2,
                                fix="write one 'field: value' per line between the '---' lines")
    return Parsed(data, lines, body.strip("\n"), body_line + len(body) - len(body.lstrip("\n")))


def load_yaml_file(path: Path, shown: str, limit: int = MAX_STORY_BYTES) -> tuple[Any, dict[str, int]]:
    return load_yaml(read_text(path, limit, "file", shown), shown)



# --------------------------------------------------------------------------- freshness scan

def scan_archive(archive: Archive) -> "Scan":
    """(size, mtime_ns) of every file the search index depends on, by archive-relative path: the
    names of ``state.listing``, each stat'd as ``state.stat_entry`` says (only stat calls: nothing
    is opened, so a FIFO cannot block)."""
    from .state import Scan, listing, observe_folders, stat_entry

    found = Scan()
    found.folders = observe_folders(archive.root)   # before the listing: see state.observe_folders
    for rel in listing(archive.root):
        try:
            st = stat_entry(archive.root, rel)
        except OSError:   # gone since the listing, or a link loop: reading it says so
            continue
        found[rel] = (st.st_size, st.st_mtime_ns)
    return found
