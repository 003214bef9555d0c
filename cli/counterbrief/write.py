"""Writers: one per output format, found in WRITERS. Each turns the brief's context into bytes;
``write_atomic`` puts them on disk whole or not at all.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import CounterbriefError, UsageProblem
from .render import render

SUFFIXES = {".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf", ".docx": "docx",
            ".json": "json", ".txt": "txt"}
BINARY = {"pdf", "docx"}


@dataclass
class Templates:
    name: str
    archive_dir: Path
    builtin_dir: Path
    fonts_dir: Path
    redact: Any   # the brief's redact.Redactor, for what the template itself writes (no default: never forgotten)


def format_for(output: Path | None, fmt: str | None) -> str:
    if fmt:
        return fmt
    if output is None:
        return "md"
    found = SUFFIXES.get(output.suffix.lower())
    if found is None:
        raise UsageProblem(f"cannot tell the format of {output.name}",
                           fix=f"name it with one of {', '.join(sorted(SUFFIXES))} or give --format")
    return found


def _text(fmt: str):
    def writer(context: dict[str, Any], t: Templates) -> bytes:
        text = render(context, t.name, fmt, t.archive_dir, t.builtin_dir, t.redact)
        # Templates stay readable with loose whitespace; the reader gets at most one blank line.
        text = re.sub(r"\n{3,}", "\n\n", text)
        if fmt == "md":   # as a viewer that shows its raw HTML and styles would show it
            page = own_page(t, fmt, lambda: __import__("markdown").markdown(text, output_format="html"))
            if page is not None:
                _laid_out(page, t, browser=True)
        return text.encode("utf-8")
    return writer


def own_page(t: Templates, fmt: str, page: Callable[[], str]) -> Optional[str]:
    """The page (``page()``: the HTML, or the HTML a viewer makes of a Markdown brief) when the
    brief's template is not one this package ships, refused if it would show or do in a browser
    more than the checks read (redact.page_unchecked; for a PDF, WeasyPrint's own page, only code
    and SVG text); None for a built-in template."""
    from .redact import page_unchecked
    from .render import template_file

    file, builtin = template_file(t.name, fmt, t.archive_dir, t.builtin_dir)
    if builtin:
        return None
    text = page()
    where = page_unchecked(text, browser=fmt != "pdf")
    if where:
        what = "Markdown" if fmt == "md" else "page"
        raise CounterbriefError(f"the template's {what} has {where}, which no check can read as a reader will see "
                                "it; nothing was written", file,
                                fix=f"a brief's {what} is plain HTML and CSS for print: take that out of the template")
    return text


def write_json(context: dict[str, Any], t: Templates) -> bytes:
    from .safe import json_text

    return (json_text(json.dumps(context, ensure_ascii=False, indent=2)) + "\n").encode("utf-8")


# What a data: URI may hold, told by its bytes and not by the type it claims (WeasyPrint reads an
# image of any type as SVG when it can): a PNG, JPEG, GIF or WebP picture. Not a font: a font's
# own table could draw one letter as another, a name from other letters.
_PICTURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


def _picture(url: str) -> bool:
    import base64
    import binascii
    from urllib.parse import unquote_to_bytes

    header, _, payload = url[5:].partition(",")
    try:
        data = (base64.b64decode(unquote_to_bytes(payload)) if header.lower().rstrip().endswith(";base64")
                else unquote_to_bytes(payload))
    except (binascii.Error, ValueError):
        return False
    return data.startswith(_PICTURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _local_fetcher(fonts_dir: Path, refused: list[str]):
    """WeasyPrint's URL fetcher, limited to the package's own font files and data: URIs that hold
    a picture (PNG, JPEG, GIF, WebP).

    Nothing else is fetched, whatever the template or the archive holds: no remote image or
    stylesheet, no file: URL outside the fonts folder (``file:///etc/passwd`` as an image, a
    stylesheet or an attachment). Every URL refused is added to ``refused``. WeasyPrint 70 takes a
    ``URLFetcher`` object; WeasyPrint 60-69 a function beside ``default_url_fetcher``.
    """
    from weasyprint import urls

    def allowed(url: str) -> bool:
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        scheme = url.split(":", 1)[0].lower()
        if scheme == "data":   # a picture; not a stylesheet, a font, an SVG's text or a file to attach
            return _picture(url)
        if scheme != "file":
            return False
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return False
        try:
            path = Path(url2pathname(parts.path)).resolve()
            return path.is_relative_to(fonts_dir.resolve()) and path.is_file()
        except (OSError, ValueError):
            return False

    def refuse(url: str):
        refused.append(url)
        raise ValueError(f"refused: {url[:200]}")

    if hasattr(urls, "URLFetcher"):   # WeasyPrint >= 70
        class LocalOnly(urls.URLFetcher):
            def fetch(self, url, headers=None):
                if not allowed(url):
                    refuse(url)
                return super().fetch(url, headers)

        return LocalOnly(timeout=5, allowed_protocols={"file", "data"}, allow_redirects=False)

    def fetch(url):   # WeasyPrint < 70
        if not allowed(url):
            refuse(url)
        return urls.default_url_fetcher(url, timeout=5)
    return fetch


@contextlib.contextmanager
def _quiet_stderr():
    """Standard error closed to the C libraries (Pango, HarfBuzz) while a page is laid out: what
    they print about a template's odd sizes is not the user's one line."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


# Properties WeasyPrint ignores that change nothing a reader sees of the text: interaction,
# scrolling, colour printing and rendering hints. Any other ignored CSS refuses an own HTML page.
_HARMLESS_CSS = {
    "transition", "transition-property", "transition-duration", "transition-delay", "transition-timing-function",
    "cursor", "scroll-behavior", "scroll-margin", "scroll-padding", "scroll-snap-type", "scroll-snap-align",
    "print-color-adjust", "-webkit-print-color-adjust", "color-adjust", "user-select", "-webkit-user-select",
    "-moz-user-select", "-ms-user-select", "pointer-events", "touch-action", "will-change", "accent-color",
    "caret-color", "-webkit-tap-highlight-color", "-webkit-font-smoothing", "-moz-osx-font-smoothing",
    "text-rendering", "resize", "appearance", "-webkit-appearance", "-moz-appearance", "aspect-ratio",
    "-webkit-text-size-adjust", "-moz-text-size-adjust", "text-size-adjust", "-ms-text-size-adjust"}


@contextlib.contextmanager
def _css_ignored(found: list[str], enabled: bool = True):
    """The declarations and rules WeasyPrint logs as ignored while this runs (prefixed ones,
    ``-webkit-…``, at its debug level), added to ``found``."""
    import logging

    if not enabled:
        yield
        return

    class Catch(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            named = re.match(r"Ignored `([\w-]+)\s*:", message)
            if named and named.group(1).lower() in _HARMLESS_CSS:
                return
            if message.startswith(("Ignored", "Unsupported", "Invalid", "Unknown", "Parse error", "Expected",
                                   "Unable", "In counter style")):
                found.append(message)

    logger = logging.getLogger("weasyprint")
    handler, level, propagate = Catch(logging.DEBUG), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False   # the debug lines are for this check, not for the user's log
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


_LAYOUT_ERRORS = (ArithmeticError, ValueError, TypeError, LookupError, RuntimeError, RecursionError)


def _unlaid(e: BaseException, t: Templates) -> CounterbriefError:
    return CounterbriefError(f"the template's page could not be laid out ({type(e).__name__}: {str(e)[:120]})",
                             t.name, fix="check the template's styles: sizes and positions a page can hold")


def _laid_out(html: str, t: Templates, browser: bool = False):
    """The page laid out by WeasyPrint (a Document), with the brief's fonts and nothing fetched but
    them; refused if it would show a protected name as laid out (redact.layout_leak) or fetch
    anything else. For a page a browser will show (``browser``), CSS that WeasyPrint ignores is
    refused too: the check cannot read what it does."""
    import warnings

    from .redact import TRANSFORMED, layout_leak

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from weasyprint import CSS, HTML
        from weasyprint.text.fonts import FontConfiguration

    fonts = FontConfiguration()
    regular = (t.fonts_dir / "DejaVuSans.ttf").as_uri()
    bold = (t.fonts_dir / "DejaVuSans-Bold.ttf").as_uri()
    refused: list[str] = []
    fetcher = _local_fetcher(t.fonts_dir, refused)
    css = CSS(string=f"""
        @font-face {{ font-family: "counterbrief sans"; src: url("{regular}"); font-weight: normal; }}
        @font-face {{ font-family: "counterbrief sans"; src: url("{bold}"); font-weight: bold; }}
        body, blockquote, h1, h2, h3 {{ font-family: "counterbrief sans"; }}
    """, font_config=fonts, url_fetcher=fetcher)
    ignored: list[str] = []
    try:
        with _quiet_stderr(), _css_ignored(ignored, enabled=browser):
            # Tagged PDF (PDF/UA-1): headings, lists and reading order survive for screen readers.
            document = HTML(string=html, base_url=str(t.fonts_dir), url_fetcher=fetcher).render(
                stylesheets=[css], font_config=fonts, pdf_variant="pdf/ua-1")
    except _LAYOUT_ERRORS as e:
        raise _unlaid(e, t) from None
    if browser and ignored:   # a browser may read what WeasyPrint, and so the check, does not
        raise CounterbriefError(f"the template's page has CSS the check cannot read ({ignored[0][:120]}); "
                                "nothing was written", t.name,
                                fix="use CSS for print that WeasyPrint reads (see its documentation), or remove it")
    if refused:
        raise CounterbriefError(f"template '{t.name}' asks the brief to fetch {refused[0][:120]}",
                                fix="a brief fetches nothing but its own fonts and embedded pictures: remove that URL")
    if document.metadata.attachments or any(link[0] == "attachment" for page in document.pages for link in page.links):
        raise CounterbriefError(f"template '{t.name}' asks the brief to attach a file",
                                fix="a brief attaches nothing: remove the attachment link from the template")
    where = layout_leak(document, t.redact)
    if where == TRANSFORMED:
        raise CounterbriefError("the template's page moves text with a CSS transform, which the check of protected "
                                "names cannot follow; nothing was written", t.name,
                                fix="lay the text out without transform: (margins, padding, positions are read)")
    if where:
        raise CounterbriefError(f"the brief would show a name a story protects ({where}, as laid out); "
                                "nothing was written", t.name,
                                fix="take the name out of the template (or what its styles build into one) and run again")
    return document


def write_pdf(context: dict[str, Any], t: Templates) -> bytes:
    html = render(context, t.name, "pdf", t.archive_dir, t.builtin_dir, t.redact)
    own_page(t, "pdf", lambda: html)
    document = _laid_out(html, t)
    try:
        with _quiet_stderr():
            return document.write_pdf(pdf_variant="pdf/ua-1") or b""
    except _LAYOUT_ERRORS as e:
        raise _unlaid(e, t) from None


def write_html(context: dict[str, Any], t: Templates) -> bytes:
    """An HTML brief. A page from a template this package does not ship is also laid out as a
    browser would (by WeasyPrint) and read as laid out, so styles cannot rebuild a protected name."""
    html = render(context, t.name, "html", t.archive_dir, t.builtin_dir, t.redact)
    if own_page(t, "html", lambda: html) is not None:
        _laid_out(html, t, browser=True)
    return html.encode("utf-8")


def write_docx(context: dict[str, Any], t: Templates) -> bytes:
    from .docx_writer import brief_docx

    return _reproducible_zip(brief_docx(context))


def _reproducible_zip(data: bytes) -> bytes:
    """Same content, same bytes: fixed timestamps and order in the DOCX's zip."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, src.read(name))
    return out.getvalue()


EVALUATION_COLUMNS = ["item_id", "statement", "scale", "scale_min", "scale_max", "anchors", "source", "pre", "post"]


def evaluation_csv(context: dict[str, Any]) -> bytes:
    """The brief's evaluation items as CSV, one row per item, to print as a questionnaire or load
    into a spreadsheet or survey tool: a stable item id (E1, E2...), the statement, its scale (and its
    ends as numbers and words when the scale reads "1-5 agree"), and empty ``pre`` and ``post``
    columns for the facilitator to fill with the group's result before and after the session. A cell
    that a spreadsheet would run as a formula is quoted (safe.csv_cell)."""
    import csv

    from .safe import csv_cell as cell

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(EVALUATION_COLUMNS)
    for item in context["evaluation"]:
        low, high, anchors = _scale_ends(item["scale"])
        w.writerow([item["id"], cell(item["statement"]), cell(item["scale"]), low, high, cell(anchors),
                    "suggested by counterbrief" if item.get("suggested") else "recipe", "", ""])
    return out.getvalue().encode("utf-8")


def _scale_ends(scale: str) -> tuple[str, str, str]:
    """("1", "5", "1 = strongly disagree, 5 = strongly agree") for "1-5 agree"; empty when it cannot be told."""
    import re

    m = re.match(r"^\s*(\d+)\s*(?:-|\u2013|to)\s*(\d+)\s*(.*)$", scale)
    if not m:
        return "", "", ""
    low, high, word = m.group(1), m.group(2), m.group(3).strip().lower()
    anchors = {"agree": ("strongly disagree", "strongly agree"), "true": ("not at all true", "completely true"),
               "likely": ("very unlikely", "very likely"), "confident": ("not at all confident", "very confident")}
    ends = anchors.get(word)
    return low, high, f"{low} = {ends[0]}, {high} = {ends[1]}" if ends else ""


# Bounds on making one brief, whatever the template does (render.py stops the known spellings
# early, with a clearer line, and bounds the rendering itself to render.RENDER_SECONDS): the
# writer runs in a child process that may use this much time and this much memory beyond what
# the command had already. The largest brief a recipe can ask for (20 messages of 20 accounts,
# a 368-page PDF) took 47 s and 290 MB here, on a loaded machine.
WRITE_SECONDS = 300
WRITE_MEMORY = 1 << 30


def bounded(writer: Callable[[dict[str, Any], Templates], bytes]) -> Callable[[dict[str, Any], Templates], bytes]:
    """The writer, given the context with every control character dropped (safe.py), run in a
    forked child bounded by WRITE_SECONDS and WRITE_MEMORY where the platform can fork."""
    import functools

    @functools.wraps(writer)
    def run(context: dict[str, Any], t: Templates) -> bytes:
        from .safe import clean_context

        return _in_child(writer, clean_context(context), t)
    return run


def _in_child(writer, context: dict[str, Any], t: Templates) -> bytes:
    """The writer's temporary files (WeasyPrint copies the fonts into a folder it removes only in a
    finaliser, which a child leaving with os._exit, or killed, never runs) go into a private folder
    that is removed however the writer ends."""
    import shutil

    scratch = tempfile.mkdtemp(prefix="counterbrief-")
    try:
        return _fork_writer(writer, context, t, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fork_writer(writer, context: dict[str, Any], t: Templates, scratch: str) -> bytes:
    import pickle

    if not hasattr(os, "fork"):
        saved, tempfile.tempdir = tempfile.tempdir, scratch
        try:
            return writer(context, t)
        finally:
            tempfile.tempdir = saved
    warm = _take_warm(writer, context, t, scratch)
    if warm is not None:
        pid, read_end = warm
    else:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:   # the child: limit itself, write, send the bytes or the error, leave without exit handlers
            try:
                os.close(read_end)
                _child_writes(writer, context, t, scratch, write_end)
            finally:
                os._exit(1)
        os.close(write_end)
    data, timed_out = _read_child(read_end, pid)
    what = f"making the brief with template '{t.name}'"
    if timed_out:
        raise CounterbriefError(f"{what} took over {WRITE_SECONDS} s and was stopped",
                                fix="a template lays out the brief's data; remove whatever loops or recurses that long")
    try:
        result = pickle.loads(data)
    except Exception:  # noqa: BLE001 - the child died (memory limit, CPU limit, a signal)
        result = ("memory",)
    if result[0] == "ok":
        return result[1]
    if result[0] == "error":
        raise CounterbriefError(result[1], result[2], result[3], result[4])
    if result[0] == "memory":
        raise CounterbriefError(f"{what} needed over {WRITE_MEMORY >> 20} MB of memory and was stopped",
                                fix="a template lays out the brief's data; build nothing that large")
    # One line without --debug; with it, the child's traceback shows as the cause.
    raise RuntimeError(f"{result[1]} (in the writer's child process)") from ChildTraceback(result[2])


def _child_writes(writer, context: dict[str, Any], t: Templates, scratch: str, write_end: int) -> None:
    """In a writer's child: limit itself, write, send the bytes or the error on ``write_end``, and
    leave at once (os._exit: no exit handler of the parent's runs twice)."""
    import pickle

    code = 1
    try:
        tempfile.tempdir = scratch
        _limit_self()
        try:
            result: tuple = ("ok", writer(context, t))
        except CounterbriefError as e:
            result = ("error", e.problem, None if e.path is None else str(e.path), e.line, e.fix)
        except MemoryError:
            result = ("memory",)
        except BaseException as e:  # noqa: BLE001 - reported by the parent as one line
            import traceback

            result = ("internal", f"{type(e).__name__}: {e}", traceback.format_exc())
        with os.fdopen(write_end, "wb") as out:
            out.write(pickle.dumps(result))
        code = 0
    finally:
        os._exit(code)


# A writer's child started early (``prewarm``): {writer: (pid, request pipe, result pipe)}.
_WARM: dict = {}
# What a writer imports that takes long: WeasyPrint ~0.7 s (more than the rest of a PDF brief's
# start-up), python-docx ~0.2 s.
_HEAVY = {"pdf": ("weasyprint", "weasyprint.text.fonts", "counterbrief.redact", "bidi"), "docx": ("docx",)}


def prewarm(fmt: str) -> None:
    """Start the writer's child for ``fmt`` now, so that it imports what it needs while this
    process selects the accounts: on a second core the brief is ready that much sooner. Only
    where the platform forks, for the formats with heavy imports. The child then waits for its
    work on a pipe; if none comes (the command failed first, or ended), it leaves without a word."""
    writer = _RAW.get(fmt)
    if fmt not in _HEAVY or writer is None or writer in _WARM or not hasattr(os, "fork"):
        return
    request_r, request_w = os.pipe()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            _close_all_but(request_r, result_w)   # no pipe of the parent's (a probe's) is held open by this child
            import pickle
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name in _HEAVY[fmt]:
                    try:
                        __import__(name)
                    except Exception:  # noqa: BLE001 - the writer reports it when it runs
                        pass
            with os.fdopen(request_r, "rb") as request:
                work = request.read()   # to the end: the parent's whole request, or nothing if none comes
            if work:
                context, t, scratch = pickle.loads(work)
                _child_writes(writer, context, t, scratch, result_w)
        finally:
            os._exit(0)
    os.close(request_r)
    os.close(result_w)
    _WARM[writer] = (pid, request_w, result_r)


def _close_all_but(*keep: int) -> None:
    try:
        fds = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _take_warm(writer, context: dict[str, Any], t: Templates, scratch: str) -> Optional[tuple[int, int]]:
    """The pre-warmed child of ``writer`` with its work sent: (pid, result pipe), or None (none was
    started, it died, or the work cannot be sent: the caller forks a child the plain way)."""
    import pickle

    warm = _WARM.pop(writer, None)
    if warm is None:
        return None
    pid, request_w, result_r = warm
    try:
        data = pickle.dumps((context, t, scratch))
        with os.fdopen(request_w, "wb") as request:
            request.write(data)
        return pid, result_r
    except Exception:  # noqa: BLE001 - pickling or a broken pipe: this child is not used
        os.close(result_r)
        try:
            os.close(request_w)
        except OSError:
            pass
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except OSError:
            pass
        return None


class ChildTraceback(Exception):
    """The traceback of an unexpected error in the writer's child process, as text."""


def _limit_self() -> None:
    """In the child: a ceiling on address space and on CPU time, where the platform has them."""
    try:
        import resource
    except ImportError:
        return
    try:
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = size + WRITE_MEMORY
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (OSError, ValueError):
        pass
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (WRITE_SECONDS + 1, WRITE_SECONDS + 5))
    except (OSError, ValueError):
        pass


def _read_child(fd: int, pid: int) -> tuple[bytes, bool]:
    """Everything the child sends, and whether it ran out of time (over WRITE_SECONDS it is killed;
    over its CPU limit the system stops it). Always reaps the child."""
    import select
    import signal
    import time

    chunks, timed_out, done = [], False, False
    deadline = time.monotonic() + WRITE_SECONDS
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        done = True
    finally:
        os.close(fd)
        if timed_out or not done:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == getattr(signal, "SIGXCPU", None):
        timed_out = True
    return b"".join(chunks), timed_out


_RAW: dict[str, Callable[[dict[str, Any], Templates], bytes]] = {
    "md": _text("md"), "html": write_html, "txt": _text("txt"), "json": write_json, "pdf": write_pdf,
    "docx": write_docx}
WRITERS: dict[str, Callable[[dict[str, Any], Templates], bytes]] = {fmt: bounded(w) for fmt, w in _RAW.items()}


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside the target, then rename: never a half-written brief."""
    folder = path.resolve().parent
    if not folder.is_dir():
        raise CounterbriefError("folder does not exist", folder, fix="create it or choose another -o path")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
