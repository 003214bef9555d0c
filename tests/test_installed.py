"""End to end: the installed `counterbrief` command, run as a user would, in an empty folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURE

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


@pytest.mark.parametrize("sid", ["abu-hajer-al-maghribi", "abu-abdullah-al-maghribi", "jordanian-defector-cbs-2017"])
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
