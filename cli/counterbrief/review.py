"""Review as commands: the queue, and approve / reject / withdraw with a record in the story itself.

A decision changes ``status`` (and on approval ``sensitivity`` when asked) and appends one entry
to the story's ``review:`` list: who, when (UTC), the decision and the reason. Only those lines
are rewritten; every other byte of the file stays as the curator wrote it. The new file is
parsed again before it replaces the old one, atomically and under the index's lock, so the next
search sees it and a concurrent index update never reads half a decision.
"""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from . import load
from .errors import CounterbriefError, UsageProblem
from .model import HIDDEN_STATUSES, PLACEHOLDER_SUMMARY, Archive, approvers


@dataclass
class Decision:
    """What a decision did, for the command line to say."""

    id: str
    path: Path
    decision: str
    status: str
    sensitivity: str
    approvals: list[str]
    required: int


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def story_path(archive: Archive, story_id: str) -> Path:
    from .validate import did_you_mean

    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", story_id):
        raise UsageProblem(f"'{story_id}' is not a story id", fix="give the id, e.g. abu-example-cbs-news (see 'counterbrief review')")
    path = archive.stories_dir / f"{story_id}.md"
    if not path.is_file():
        from .redact import showable_ids

        raise UsageProblem(f"no story '{story_id}'", fix=did_you_mean(story_id, showable_ids(archive))
                           or "see 'counterbrief review'")
    return path


# --------------------------------------------------------------------------- the queue

def queue(archive: Archive, vocabulary) -> dict[str, Any]:
    """Drafts and reviewed accounts, each with what check says about it; counts of the hidden ones."""
    from .validate import SnapshotCache, check_story

    from .redact import read_archive

    snapshots = SnapshotCache(archive)
    paths = load.story_paths(archive)
    redact = read_archive(paths, archive.rel).require()   # titles and check's lines may quote a protected name
    waiting, hidden = [], {s: 0 for s in HIDDEN_STATUSES}
    for path in paths:
        shown = archive.rel(path)
        try:
            data = load.parse_story_file(path, shown, archive.root).data   # never a file outside the archive
            status = data.get("status")
        except CounterbriefError:
            data, status = {}, None
        if status in hidden:
            hidden[status] += 1
            continue
        if status not in ("draft", "reviewed", None):
            continue
        _, problems = check_story(path, archive, vocabulary, snapshots)
        waiting.append({
            "id": path.stem, "file": shown, "title": redact.text(str(data.get("title") or "")), "status": status,
            "sensitivity": data.get("sensitivity"), "approved_by": approvers(data.get("review") or []),
            "required": max(1, archive.reviewers_required),
            "errors": [redact.text(str(p)) for p in problems if p.severity == "error"],
            "warnings": [redact.text(str(p)) for p in problems if p.severity == "warning"],
        })
    return {"archive": str(archive.root), "waiting": waiting, **hidden}


# --------------------------------------------------------------------------- decisions

def decide(archive: Archive, story_id: str, decision: str, by: str, reason: str = "",
           sensitivity: Optional[str] = None, when: Optional[str] = None) -> Decision:
    """Record one decision on one story, under the index lock; returns what it did."""
    from .index import Index

    if not by.strip():
        raise UsageProblem("a reviewer's name is empty", fix="give --by NAME")
    if decision != "approved" and not reason.strip():
        raise UsageProblem(f"a {decision[:-2] if decision.endswith('ed') else decision} needs a reason",
                           fix="give --reason TEXT")
    path = story_path(archive, story_id)
    # One line each in the record: a name or reason typed over several lines is joined, and a
    # control character pasted with it dropped (check would call the record an error, and the
    # account would leave every output the moment it was approved).
    from .safe import clean_control

    by, reason = " ".join(clean_control(by).split()), " ".join(clean_control(reason).split())
    with Index(archive)._lock():
        return _decide_locked(archive, path, decision, by, reason, sensitivity, when or now_utc())


def _decide_locked(archive: Archive, path: Path, decision: str, by: str, reason: str,
                   sensitivity: Optional[str], when: str) -> Decision:
    import dataclasses

    from .validate import SnapshotCache, check_story, usable_vocabulary
    from .write import write_atomic

    shown = archive.rel(path)
    # unreadable YAML, a link out of the archive, a FIFO, over 1 MB: its one-line error, nothing read or written
    parsed = load.parse_story_file(path, shown, archive.root)
    raw = path.read_bytes()
    bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
    data, lines = parsed.data, parsed.lines
    status, current_sensitivity = data.get("status"), data.get("sensitivity")
    review = data.get("review") if isinstance(data.get("review"), list) else []
    if decision == "restored" and status not in HIDDEN_STATUSES:
        raise UsageProblem(f"{shown} is {status}, not rejected or withdrawn", fix="nothing to restore")
    if decision == "approved":
        if status in HIDDEN_STATUSES:
            raise UsageProblem(f"{shown} is {status}; restore it first, then review it again",
                               fix=f"counterbrief restore {path.stem} --by NAME --reason TEXT")
        # The story must pass check as it would stand, apart from the approvals it is about to get.
        vocabulary, _ = usable_vocabulary(archive)
        _, problems = check_story(path, dataclasses.replace(archive, reviewers_required=0), vocabulary,
                                  SnapshotCache(archive))
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            from .redact import read_archive

            redact = read_archive(load.story_paths(archive), archive.rel).require()   # fail closed, as review does
            raise CounterbriefError(redact.text(f"cannot approve an account with errors: {errors[0]}"),
                                    fix="fix it (counterbrief check), then approve it")
        if PLACEHOLDER_SUMMARY in parsed.body:
            raise UsageProblem(f"{shown}: the summary is still the placeholder 'add' wrote, and a brief would print it",
                               fix="write the summary in your own words below the front matter, then approve it")
        if by in approvers(review):
            raise UsageProblem(f"{by} has approved {path.stem} already",
                               fix="a different reviewer must give the next approval")
    elif decision == "withdrawn" and status == "withdrawn":
        raise UsageProblem(f"{shown} is withdrawn already", fix="nothing to do")
    entry: dict[str, Any] = {"by": by, "at": when, "decision": decision}
    if reason:
        entry["reason"] = reason
    new_sensitivity = sensitivity or current_sensitivity
    if decision == "approved":
        have = approvers(review + [entry])
        required = max(1, archive.reviewers_required)
        new_status = "approved" if len(have) >= required else "reviewed"
        if sensitivity and sensitivity != current_sensitivity:
            entry["sensitivity"] = sensitivity
    else:
        have, required = [], max(1, archive.reviewers_required)
        new_status = "draft" if decision == "restored" else decision   # restored: reviewed again from the start
    text = raw[len(bom):].decode("utf-8")
    changes = {"status": new_status}
    if new_sensitivity != current_sensitivity:
        changes["sensitivity"] = new_sensitivity
    new_text = rewrite_front_matter(text, lines, changes, entry, shown)
    # Parse what is about to be written: it must say exactly what was decided, and nothing else moved.
    check = load.load_yaml(load.split_front_matter(new_text, shown)[0], shown)[0]
    expected = dict(data, **changes, review=list(review) + [_plain(entry)])
    if check != expected or load.split_front_matter(new_text, shown)[1] != load.split_front_matter(text, shown)[1]:
        raise CounterbriefError("the decision could not be written without changing other fields", shown,
                                fix="put status:, sensitivity: and review: each at the start of a line; nothing was written")
    write_atomic(path, bom + new_text.encode("utf-8"))
    return Decision(path.stem, path, decision, new_status, new_sensitivity, have, required)


def _plain(entry: dict) -> dict:
    import yaml

    return load._plain(yaml.safe_load(yaml.safe_dump(entry)))


_SCALAR = re.compile(r"^(?P<key>[a-z_]+:[ \t]*)(?P<q>['\"]?)(?P<value>[A-Za-z]+)(?P=q)(?P<rest>[ \t]*(#.*)?)$")


def rewrite_front_matter(text: str, lines: dict[str, int], changes: dict[str, str], entry: dict, shown: str) -> str:
    """The story text with the top-level scalars in ``changes`` replaced and ``entry`` appended to
    ``review:``; every other line is kept byte for byte."""
    import yaml

    rows = text.splitlines(keepends=True)
    eol = "\r\n" if rows and rows[0].endswith("\r\n") else "\n"
    for key, value in changes.items():
        i = lines.get(key, 0) - 1
        body = rows[i].rstrip("\r\n") if i >= 0 else ""
        m = _SCALAR.match(body)
        if i < 0 or not m or not body.startswith(key + ":"):
            raise CounterbriefError(f"'{key}' is not a one-line field at the start of a line", shown,
                                    lines.get(key), fix=f"write it as '{key}: value'; nothing was written")
        rows[i] = f"{m['key']}{m['q']}{value}{m['q']}{m['rest']}" + rows[i][len(body):]
    item = yaml.safe_dump(entry, default_flow_style=True, width=1 << 30, allow_unicode=True, sort_keys=False).strip()
    close = next(i for i, row in enumerate(rows) if i > 0 and row.rstrip() in (load.FRONT, "..."))
    top = sorted(n - 1 for k, n in lines.items() if "." not in k and k)
    if "review" in lines:
        start = lines["review"] - 1
        after = [n for n in top if n > start]
        end = after[0] if after else close
        head = rows[start].rstrip("\r\n")
        if head.split("#")[0].strip() == "review:":
            # A block list: the new item goes after its last item, indented like them.
            while end > start + 1 and (not rows[end - 1].strip() or rows[end - 1].startswith("#")):
                end -= 1
            items = [r for r in rows[start + 1:end] if r.lstrip().startswith("- ")]
            indent = items[0][: len(items[0]) - len(items[0].lstrip())] if items else "  "
            rows[end:end] = [f"{indent}- {item}{eol}"]
        else:
            # `review: []` (or a flow list): the field is written again as a block list.
            try:
                old = yaml.safe_load(head.split(":", 1)[1]) or []
            except yaml.YAMLError:
                old = None
            if not isinstance(old, list):
                raise CounterbriefError("'review' is not a list on one line", shown, lines["review"],
                                        fix="write it as a block list ('review:' then '  - {...}' lines); nothing was written")
            dumped = [yaml.safe_dump(e, default_flow_style=True, width=1 << 30, allow_unicode=True,
                                     sort_keys=False).strip() for e in old]
            rows[start:start + 1] = [f"review:{eol}"] + [f"  - {d}{eol}" for d in dumped + [item]]
    else:
        rows[close:close] = [f"review:{eol}", f"  - {item}{eol}"]
    return "".join(rows)
