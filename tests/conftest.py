"""Shared fixtures: archives written into tmp_path, all of their stories marked synthetic."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "archive"

SOURCE_TEXT = (
    "SYNTHETIC TEST SOURCE. The defector said: \u201cThey kill anyone who disagrees.\u201d "
    "He added that the videos were staged. \"We were lied to about everything,\" he said. "
    "He paid a smuggler to leave.\n"
)


class ArchiveMaker:
    """Writes a small archive and synthetic stories into a temporary folder."""

    def __init__(self, root: Path):
        self.root = root
        for sub in ("stories", "sources", "recipes", "templates"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "vocabulary.yml", root / "vocabulary.yml")
        # As 'counterbrief init' makes it (with the default setting): every real archive has one.
        (root / "counterbrief.yml").write_text("reviewers_required: 0\n", encoding="utf-8")
        (root / "sources" / "src.txt").write_text(SOURCE_TEXT, encoding="utf-8")

    def settle(self, seconds: int = 60) -> None:
        """Date every file of the archive ``seconds`` back: an index written within a clock tick of
        a file's change records that file as one to look at again (racy), and a test that expects
        the next command to find the index fresh writes its files "before" that."""
        import os
        import time

        stamp = time.time_ns() - seconds * 10**9
        for path in self.root.rglob("*"):
            if ".counterbrief" not in path.parts and path.is_file():
                os.utime(path, ns=(stamp, stamp))

    def story(self, sid: str, body: str = "A synthetic summary.", raw: str | None = None, **fields) -> Path:
        path = self.root / "stories" / f"{sid}.md"
        if raw is not None:
            path.write_text(raw, encoding="utf-8")
            return path
        data = {
            "id": sid,
            "title": f"Synthetic story {sid}",
            "speaker": {"alias": f"Speaker {sid}", "role": "fighter"},
            "group": "ISIS",
            "language": "en",
            "themes": ["suppression-of-dissent"],
            "source": {"outlet": "Test Outlet", "published": "2016", "snapshot": "sources/src.txt"},
            "quotes": [{"text": "They kill anyone who disagrees."}],
            "sensitivity": "public",
            "status": "approved",
            "synthetic": True,
        }
        data.update(fields)
        path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + "---\n" + body + "\n",
                        encoding="utf-8")
        return path


@pytest.fixture
def make_archive(tmp_path):
    return ArchiveMaker(tmp_path / "archive")


@pytest.fixture
def fixture_archive(tmp_path):
    """A copy of tests/fixtures/archive (English, French and Arabic synthetic stories)."""
    dest = tmp_path / "fixture-archive"
    shutil.copytree(FIXTURE, dest, ignore=shutil.ignore_patterns(".counterbrief"))
    return dest
