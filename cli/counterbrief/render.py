"""Rendering the brief's context through Jinja2 templates: the only module that uses Jinja2.

Every template runs in Jinja2's sandbox with StrictUndefined (a misspelled field fails instead
of rendering blank); HTML templates autoescape; Markdown from story text is converted and then
sanitised with nh3, so no script, event handler, javascript: link, iframe or remote image survives.
"""
from __future__ import annotations

import contextlib
import re
import textwrap
import traceback
from pathlib import Path
from typing import Any, Optional

from .errors import CounterbriefError
from .safe import clean_control
from .text import citation

EXTENSIONS = {"md": "md", "html": "html", "pdf": "html", "txt": "txt"}
ALLOWED_TAGS = {"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "a", "span", "code", "h3", "h4"}
ALLOWED_ATTRIBUTES = {"*": {"lang", "dir"}, "a": {"href", "title"}}


def sanitise(html: str) -> str:
    """Keep harmless structure only; keep lang/dir, which nh3 drops by default."""
    import nh3

    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow")


def markdown_html(text: str) -> str:
    import markdown

    return sanitise(markdown.markdown(text or "", extensions=[], output_format="html"))


def markdown_plain(text: str) -> str:
    import html

    import nh3

    text = html.unescape(nh3.clean(markdown_html(text), tags=set()))
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n") if p.strip())


# Bounds on what a template may build. A brief template lays out the brief's data: it needs no
# numbers in the millions, no million-item loops, no text larger than the brief. These limits end
# the known spellings early with a clear line; the writer's child process (write.py) bounds time
# and memory for every other spelling.
MAX_TEXT = 2_000_000         # characters (or items) of one value a template builds
MAX_OUTPUT = 10_000_000      # characters of output, or 4 times the brief's data if that is more
MAX_RANGE = 10_000           # items of range()
MAX_LOOP_STEPS = 1_000_000   # iterations of every for loop of one rendering, added up
MAX_INT_BITS = 4_096         # size of an integer a template computes
RENDER_SECONDS = 20          # wall time of one rendering (a big brief renders in well under a second)
TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class TemplateLimit(Exception):
    """A template went past one of the bounds above."""


def _too_big(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value.bit_length() > MAX_INT_BITS
    return isinstance(value, (str, bytes, list, tuple, dict, set)) and len(value) > MAX_TEXT


def _check_arguments(what: str, args, kwargs) -> None:
    """Refuse before the work: numbers past MAX_TEXT (a width, a count), and lists of texts that
    together are past it (what join, sum or format would then build)."""
    for a in (*args, *kwargs.values()):
        if isinstance(a, (list, tuple)) and len(a) <= MAX_TEXT and \
                sum(len(x) for x in a if isinstance(x, str)) > MAX_TEXT:
            raise TemplateLimit(f"{what} is given texts of over {MAX_TEXT:,} characters in all")
        if isinstance(a, int) and not isinstance(a, bool) and abs(a) > MAX_TEXT:
            raise TemplateLimit(f"{what} is given the number {a if a.bit_length() < 64 else 'with ' + str(a.bit_length()) + ' bits'}, "
                                f"over the limit of {MAX_TEXT:,}")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[^a-zA-Z%]*")   # %(name)-999.5s: digits after the name
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")


def _check_format(what: str, text: str, args) -> None:
    """Refuse a format string whose widths or precisions (``%999999999d``, ``{:>999999999}``,
    ``%*d`` with a huge argument) would pad a text past MAX_TEXT, before it is built."""
    specs = _PERCENT_SPEC.findall(text) + _BRACE_SPEC.findall(text)
    if any(int(n) > MAX_TEXT for spec in specs for n in re.findall(r"\d+", spec)):
        raise TemplateLimit(f"{what} pads a text to over {MAX_TEXT:,} characters")
    values = list(args.values()) if isinstance(args, dict) else list(args) if isinstance(args, (list, tuple)) else [args]
    _check_arguments(what, values, {})


def _check_growth(what: str, name: str, args) -> None:
    """Refuse a replace or an indent whose result would be past MAX_TEXT, before it is built."""
    texts = [a for a in args if isinstance(a, str)]
    if name == "replace" and len(texts) >= 3:
        s, old, new = texts[:3]
        count = s.count(old) if old else len(s) + 1
        grown = len(s) + count * (len(new) - len(old))
    elif name == "indent" and texts:
        width = args[1] if len(args) > 1 and args[0] is texts[0] else 4
        grown = len(texts[0]) + (texts[0].count("\n") + 1) * (width if isinstance(width, int) else len(str(width)))
    else:
        return
    if grown > MAX_TEXT:
        raise TemplateLimit(f"{what} builds a value of {grown:,} characters, over the limit of {MAX_TEXT:,}")


def _checked_result(what: str, value: Any) -> Any:
    if _too_big(value):
        raise TemplateLimit(f"{what} builds a value of {len(value) if hasattr(value, '__len__') else 'too many'} "
                            f"{'bits' if isinstance(value, int) else 'characters'}, over the limit of {MAX_TEXT:,}")
    return value


def _environment(search_path: list[Path]):
    from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, nodes
    from jinja2.compiler import CodeGenerator
    from jinja2.exceptions import TemplateNotFound
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
    from markupsafe import Markup

    class TemplatesOnly(FileSystemLoader):
        """Serves only .j2 files that are really inside its folder: no story, no source, no link out."""

        def get_source(self, environment, template):
            if not template.endswith(".j2"):
                raise TemplateNotFound(template)
            source, filename, uptodate = super().get_source(environment, template)
            root = Path(self.searchpath[0]).resolve()
            real = Path(filename).resolve()
            if not real.is_relative_to(root) or not real.name.endswith(".j2") or not real.is_file():
                raise TemplateNotFound(template)
            return source, filename, uptodate

    class BoundedLoops(CodeGenerator):
        """Every for loop iterates through environment.bounded_iter, which counts the steps; every
        '~' passes its result through environment.bounded_join, which measures it."""

        def visit_For(self, node, frame):
            node.iter = nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None)
            super().visit_For(node, frame)

        def visit_Concat(self, node, frame):
            self.write("environment.bounded_join(")
            super().visit_Concat(node, frame)
            self.write(")")

    class Bounded(ImmutableSandboxedEnvironment):
        """Jinja2's sandbox (lists and dicts read-only), with the size of what a template builds and
        the steps it takes bounded."""

        code_generator_class = BoundedLoops
        intercepted_binops = frozenset({"*", "**", "+", "%", "//"})
        loop_steps = 0

        def bounded_iter(self, iterable):
            for item in iterable:
                self.loop_steps += 1
                if self.loop_steps > MAX_LOOP_STEPS:
                    raise TemplateLimit(f"its loops ran over {MAX_LOOP_STEPS:,} steps")
                yield item

        def bounded_join(self, value):
            return _checked_result("'~'", value)

        def call_binop(self, context, operator, left, right):
            what = f"'{operator}'"
            if operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
                if abs(left) > 1 and (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
                    raise TemplateLimit(f"{what} builds a number over {MAX_INT_BITS:,} bits")
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(n, int) and hasattr(seq, "__len__") and not isinstance(seq, int):
                        if len(seq) * n > MAX_TEXT:
                            raise TemplateLimit(f"{what} builds a value of {len(seq) * n:,} characters or items, "
                                                f"over the limit of {MAX_TEXT:,}")
                if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise TemplateLimit(f"{what} builds a number over {MAX_INT_BITS:,} bits")
            if operator == "+" and hasattr(left, "__len__") and hasattr(right, "__len__"):
                if len(left) + len(right) > MAX_TEXT:
                    raise TemplateLimit(f"{what} builds a value of {len(left) + len(right):,} characters or items, "
                                        f"over the limit of {MAX_TEXT:,}")
            if operator == "%" and isinstance(left, str):
                _check_format(what, left, right)
            return _checked_result(what, super().call_binop(context, operator, left, right))

        def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - Jinja2's own signature
            what = getattr(__obj, "__name__", "a call")
            _check_arguments(what, args, kwargs)
            text = getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None)   # the sandbox wraps str.format
            if what == "replace" and isinstance(text, str):
                _check_growth(what, what, [text, *args])
            if what in ("format", "format_map") and isinstance(text, str):
                _check_format(what, text, [*args, *kwargs.values(), *(a for a in args if isinstance(a, dict))])
            return _checked_result(what, SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs))

    def bounded_range(*args):
        _check_arguments("range", args, {})
        values = range(*args)
        if len(values) > MAX_RANGE:
            raise TemplateLimit(f"range() of {len(values):,} items, over the limit of {MAX_RANGE:,}")
        return values

    bounded_range.__name__ = "range"

    def guarded(name, func):
        import functools

        @functools.wraps(func)
        def filter_(*args, **kwargs):
            _check_arguments(f"the filter '{name}'", args, kwargs)
            _check_growth(f"the filter '{name}'", name, [*args, *kwargs.values()])
            if name == "format" and args and isinstance(args[0], str):
                _check_format(f"the filter '{name}'", args[0], [*args[1:], *kwargs.values()])
            return _checked_result(f"the filter '{name}'", func(*args, **kwargs))
        return filter_

    env = Bounded(
        loader=ChoiceLoader([TemplatesOnly(str(p)) for p in search_path]),
        autoescape=lambda name: bool(name) and (name.endswith(".html.j2") or name.endswith(".html")),
        undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=False,
    )
    env.globals["range"] = bounded_range
    env.globals.pop("lipsum", None)   # placeholder text has no place in a brief, and lipsum(n) is unbounded
    env.filters["md"] = lambda text: Markup(markdown_html(text))
    env.filters["plain"] = markdown_plain
    env.filters["citation"] = citation
    env.filters["wrap"] = lambda text, width=78: "\n".join(textwrap.fill(p, width) for p in str(text).split("\n\n"))
    env.filters = {name: guarded(name, f) for name, f in env.filters.items()}
    return env


def template_location(template: str, fmt: str, archive_templates: Path, builtin: Path) -> tuple[list[Path], str]:
    """(search path, template name) for a template NAME, or for a .j2 file given on the command line.

    A name (``brief``, ``handout``) is looked up as NAME.FORMAT.j2 in the archive's templates/,
    then in the built-in templates. Anything ending in .j2 is a file path, which only the
    ``--template`` option gives: a recipe's ``template:`` is a name (``recipe.load_recipe``).
    Nothing else is a template: not a story, a source, or a file outside those folders.
    """
    ext = EXTENSIONS[fmt]
    if template.endswith(".j2"):
        given = Path(template)
        if not given.is_file() or not given.resolve().name.endswith(".j2"):
            raise CounterbriefError("template not found (a template file is a .j2 file)", given,
                                    fix="give an existing .j2 file or a template name like 'brief'")
        return [given.resolve().parent], given.resolve().name
    if not TEMPLATE_NAME.match(template):
        raise CounterbriefError(f"'{template}' is not a template name", fix=(
            f"give a name like 'brief' (the file templates/NAME.{ext}.j2) or, with --template, a .j2 file"))
    name = f"{template}.{ext}.j2"
    path = [p for p in (archive_templates, builtin) if p.is_dir()]
    if not any(_inside(p / name, p) for p in path):
        raise CounterbriefError(f"no template '{template}' for {fmt}", fix=f"add templates/{name} or use --template brief")
    return path, name


def template_file(template: str, fmt: str, archive_templates: Path, builtin: Path) -> tuple[Path, bool]:
    """The file a brief's template is read from, and whether it is one this package ships
    (reviewed with its code), not one from the archive's templates/ or a --template file: those
    get the stricter page checks (write.own_page)."""
    path, name = template_location(template, fmt, archive_templates, builtin)
    for folder in path:   # the loader's order: the first folder holding the name is used
        if _inside(folder / name, folder):
            return folder / name, folder.resolve() == builtin.resolve()
    return path[0] / name, False


def _inside(file: Path, folder: Path) -> bool:
    """A regular file inside ``folder`` once links are followed: a link out of templates/ is no template."""
    try:
        return file.is_file() and file.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def render(context: dict[str, Any], template: str, fmt: str, archive_templates: Path, builtin: Path,
           redact) -> str:
    """Render the brief's context to text (md, html, txt; html also feeds the PDF).

    Rendered piece by piece, so that output past MAX_OUTPUT stops the template before it is built.
    The context comes redacted; ``redact`` (a redact.Redactor) then takes the protected names out of
    what the template itself wrote too: its literal text, the strings it computes.
    """
    import json

    import jinja2
    from jinja2.sandbox import SecurityError

    path, name = template_location(template, fmt, archive_templates, builtin)
    env = _environment(path)
    if EXTENSIONS[fmt] == "md":   # Markdown's autoescape: what a value prints is shown, never fetched or run
        from .safe import markdown_text

        env.finalize = markdown_text
    limit = max(MAX_OUTPUT, 4 * len(json.dumps(context, ensure_ascii=False)))
    shown = name
    try:
        tpl = env.get_template(name)
        shown = tpl.filename or name
        pieces, size = [], 0
        with _time_limit(RENDER_SECONDS):
            for piece in tpl.generate(**context):
                size += len(piece)
                if size > limit:
                    raise TemplateLimit(f"its output is over {limit:,} characters")
                pieces.append(piece)
            text = _redacted("".join(pieces), EXTENSIONS[fmt], redact, shown)
        return clean_control(text)   # whatever the template itself wrote: no control character
    except jinja2.TemplateNotFound as e:
        raise CounterbriefError(f"template not found: {e.name}", name,
                                fix="a template includes only .j2 files from its own folder") from None
    except jinja2.TemplateSyntaxError as e:
        raise CounterbriefError(f"template error: {e.message}", e.filename or name, e.lineno,
                                fix="fix the template syntax") from None
    except (TemplateLimit, RecursionError, OverflowError, MemoryError) as e:
        file, line = _template_frame(e, name)
        why = {RecursionError: "it recursed too deep", MemoryError: "it ran out of the memory a brief may use",
               OverflowError: f"a number grew too large ({e})"}.get(type(e), str(e))
        raise CounterbriefError(f"template stopped: {why}", file or shown, line,
                                fix="a template lays out the brief's data; build nothing that large") from None
    except (jinja2.UndefinedError, SecurityError, TypeError, ValueError, ArithmeticError, LookupError) as e:
        file, line = _template_frame(e, name)
        raise CounterbriefError(f"template error: {e}", file or name, line,
                                fix="use only the brief's fields (see docs/brief-json.md)") from None


def _redacted(text: str, kind: str, redact, shown: str) -> str:
    """What the template wrote, with the protected names taken out of its own text too. A page
    (HTML, and the PDF's page) is redacted where that leaves its markup as it is; a name still on it
    (split by tags, in an id, in a stylesheet) refuses the brief: a name is never shown. A Markdown
    brief is redacted whole, then read as a viewer shows it (its raw HTML too) and refused likewise."""
    if not redact:
        return text
    if kind == "txt":
        return redact.text(text)
    from .redact import page_leak, redact_html

    if kind == "md":
        import markdown

        text = redact.text(text)
        where = page_leak(markdown.markdown(text, output_format="html"), redact)
    else:
        text = redact_html(text, redact)
        where = page_leak(text, redact)
    if where:
        raise CounterbriefError(f"the brief would show a name a story protects ({where}); nothing was written", shown,
                                fix="take the name out of the template (or what it joins into one) and run again")
    return text


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Raise TemplateLimit in the template's own code once ``seconds`` have passed (SIGALRM, so
    only in the main thread of a platform that has it; the writer's child process bounds the rest)."""
    import signal
    import threading

    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise TemplateLimit(f"it ran over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _template_frame(exc: BaseException, name: str) -> tuple[Optional[str], Optional[int]]:
    """Jinja2 rewrites tracebacks so template frames carry the template's file and line."""
    found: tuple[Optional[str], Optional[int]] = (None, None)
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename.endswith(".j2") or filename.endswith(name):
            found = (filename, lineno)
    return found
