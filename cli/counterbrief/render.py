"""Rendering the brief's context through Jinja2 templates: the only module that uses Jinja2.

Every template runs in Jinja2's sandbox with StrictUndefined (a misspelled field fails instead
of rendering blank); HTML templates autoescape; Markdown from story text is converted and then
sanitised with nh3, so no script, event handler, javascript: link, iframe or remote image survives.
"""
from __future__ import annotations

import textwrap
import traceback
from pathlib import Path
from typing import Any, Optional

from .errors import CounterbriefError
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


def _environment(search_path: list[Path]):
    from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment
    from markupsafe import Markup

    env = SandboxedEnvironment(
        loader=ChoiceLoader([FileSystemLoader(str(p)) for p in search_path]),
        autoescape=lambda name: bool(name) and (name.endswith(".html.j2") or name.endswith(".html")),
        undefined=StrictUndefined, keep_trailing_newline=True, trim_blocks=False,
    )
    env.filters["md"] = lambda text: Markup(markdown_html(text))
    env.filters["plain"] = markdown_plain
    env.filters["citation"] = citation
    env.filters["wrap"] = lambda text, width=78: "\n".join(textwrap.fill(p, width) for p in str(text).split("\n\n"))
    return env


def template_location(template: str, fmt: str, archive_templates: Path, builtin: Path) -> tuple[list[Path], str]:
    """(search path, template name) for a built-in name, an archive override, or a file path."""
    ext = EXTENSIONS[fmt]
    given = Path(template)
    if given.suffix == ".j2" or given.is_file():
        if not given.is_file():
            raise CounterbriefError("template not found", given, fix="give an existing .j2 file or a built-in name like 'brief'")
        return [given.resolve().parent], given.name
    name = f"{template}.{ext}.j2"
    path = [p for p in (archive_templates, builtin) if p.is_dir()]
    if not any((p / name).is_file() for p in path):
        raise CounterbriefError(f"no template '{template}' for {fmt}", fix=f"add templates/{name} or use --template brief")
    return path, name


def render(context: dict[str, Any], template: str, fmt: str, archive_templates: Path, builtin: Path) -> str:
    """Render the brief's context to text (md, html, txt; html also feeds the PDF)."""
    import jinja2
    from jinja2.sandbox import SecurityError

    path, name = template_location(template, fmt, archive_templates, builtin)
    env = _environment(path)
    try:
        tpl = env.get_template(name)
        return tpl.render(**context)
    except jinja2.TemplateSyntaxError as e:
        raise CounterbriefError(f"template error: {e.message}", e.filename or name, e.lineno,
                                fix="fix the template syntax") from None
    except (jinja2.UndefinedError, SecurityError, TypeError, ValueError) as e:
        file, line = _template_frame(e, name)
        raise CounterbriefError(f"template error: {e}", file or name, line,
                                fix="use only the brief's fields (see docs/brief-json.md)") from None


def _template_frame(exc: BaseException, name: str) -> tuple[Optional[str], Optional[int]]:
    """Jinja2 rewrites tracebacks so template frames carry the template's file and line."""
    found: tuple[Optional[str], Optional[int]] = (None, None)
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename.endswith(".j2") or filename.endswith(name):
            found = (filename, lineno)
    return found
