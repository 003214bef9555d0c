"""End to end: the installed `counterbrief` command, run as a user would, in an empty folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import FIXTURE, REPO

EXE = shutil.which("counterbrief", path=os.path.dirname(sys.executable)) or shutil.which("counterbrief")
pytestmark = pytest.mark.skipif(EXE is None, reason="counterbrief is not installed")


def cb(*args, cwd, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "COUNTERBRIEF_ARCHIVE"}
    env.update(env_extra or {})
    return subprocess.run([EXE, *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_installed_check_passes_on_the_bundled_archive_from_an_empty_folder(tmp_path):
    result = cb("check", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["errors"] == [] and data["checked"] == 3


@pytest.mark.parametrize("sid", ["abu-hajer-al-maghribi", "abu-abdullah-al-maghribi", "cbs-defector-turkey-2017"])
def test_installed_show_prints_each_seed_account(tmp_path, sid):
    result = cb("show", sid, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"id        {sid}" in result.stdout or f"id  {sid}" in result.stdout or sid in result.stdout
    assert "Source:" in result.stdout


def test_installed_check_reports_a_bad_file_and_keeps_the_good_ones(tmp_path):
    archive = tmp_path / "a"
    shutil.copytree(FIXTURE, archive)
    (archive / "stories" / "broken.md").write_text("---\ntitle: [\n---\n")
    result = cb("--archive", archive, "check", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["stories/broken.md:2: bad YAML: did not find expected node content; "
                                          "check the indentation, colons and quoting on this line"]
    assert "Traceback" not in result.stderr
    assert cb("--archive", archive, "show", "synthetic-ar-dawla", cwd=tmp_path).returncode == 0


def test_importing_the_cli_loads_no_heavy_library():
    code = ("import sys, counterbrief.cli; heavy = [m for m in ('whoosh', 'jinja2', 'yaml', 'weasyprint', 'docx', "
            "'jsonschema', 'markdown', 'nh3') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"


def test_help_lists_every_command_with_one_line(tmp_path):
    result = cb("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("init", "add", "check", "show", "stats", "themes"):
        assert f"  {command} " in result.stdout


def test_add_in_a_terminal_asks_for_what_is_missing(tmp_path):
    """Run `add` on a pseudo-terminal, answer its prompts, and find the story written."""
    import pty
    import select as _select

    archive = tmp_path / "a"
    shutil.copytree(FIXTURE, archive)
    source = tmp_path / "article.txt"
    source.write_text("SYNTHETIC. He said: \"We were lied to about everything.\" Then he left.\n")
    # alias, title, themes, a quote, Enter (no more quotes), Enter for outlet, headline, author, date and
    # address (nothing found to offer), then the summary
    answers = iter(["Abu Prompted", "Asked for in a terminal", "regret", "We were lied to about everything.",
                    "", "", "", "", "", "", "A summary typed at the prompt."])
    pid, fd = pty.fork()
    if pid == 0:  # the child: counterbrief on the terminal
        os.execv(EXE, [EXE, "--archive", str(archive), "add", "--source", str(source)])
    seen = b""
    mark = 0
    deadline = time.time() + 60
    while time.time() < deadline:
        ready, _, _ = _select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        # A prompt shown since the last answer (an empty answer echoes only white space).
        if seen[mark:].strip() and seen.rstrip().endswith((b":", b"]:", b"[y/N]:")):
            os.write(fd, (next(answers) + "\n").encode())
            seen += b"\n"
            mark = len(seen)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    story = (archive / "stories" / "abu-prompted.md").read_text()
    assert "Asked for in a terminal" in story and "status: draft" in story and "A summary typed at the prompt." in story


def test_installed_search_writes_all_its_output_and_the_right_exit_code(tmp_path):
    sys.path.insert(0, str(REPO / "bench"))
    import synth

    root = synth.make_archive(tmp_path / "big", 300)
    result = cb("--archive", root, "search", "*", "--format", "jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 300 and len({r["id"] for r in rows}) == 300
    piped = subprocess.run(["bash", "-c", 'set -o pipefail; "$0" --archive "$1" search "*" --format jsonl | head -1',
                            EXE, root], capture_output=True, text=True, timeout=300)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr   # a reader that stops early is no error
    assert json.loads(piped.stdout)["id"] == rows[0]["id"]
    bad = cb("--archive", root, "search", '"unclosed', cwd=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.splitlines() == ["Error: unclosed phrase in query '\"unclosed'; close it with a second \""]
