"""Synthetic archives for tests and benchmarks: generated text, every story marked synthetic.

Never written into the bundled archive: callers pass a temporary folder.
"""
from __future__ import annotations

import itertools
import random
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WORDS_EN = ("the group fighters commander emir city border video camera prison money car family village mosque "
            "checkpoint smuggler market school brother promise truth lies fear order punishment court media "
            "soldiers salary weapons training recruits propaganda executed executing prisoners argued arguing "
            "dissent corruption privilege hardship bombing hunger escape regret mistake joined left believed "
            "watched filmed paid ordered refused questioned disappeared returned").split()
WORDS_FR = ("le groupe combattants étrangers émir ville frontière vidéo prison argent famille village promesse "
            "vérité mensonge peur ordre punition médias soldats salaire armes recrues propagande exécutés "
            "corruption privilèges fuite regret erreur rejoint quitté cru").split()
WORDS_AR = ("الدولة المقاتلون الأمير المدينة الحدود الفيديو السجن المال العائلة القرية الوعد الحقيقة الكذب "
            "الخوف الأمر العقاب الإعلام الجنود الراتب السلاح التجنيد الدعاية قتلوا أعدموا الفساد الهروب "
            "الندم الخطأ انضممت غادرت").split()
THEMES = ["infighting", "brutality-against-muslims", "corruption-hypocrisy", "harsh-living-conditions",
          "propaganda-deception", "suppression-of-dissent", "false-promises", "recruitment", "regret", "exit-journey"]


def _lexicon(topic: list[str], size: int = 3000, seed: int = 11) -> tuple[list[str], list[float]]:
    """A Zipf-distributed vocabulary, as real text has: pseudo-words, with the topic words spread
    over ranks 40-400, so that a topic word appears in some accounts, not all."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ren", "sa", "tu", "vel", "dor", "ash", "ni", "qua", "ber", "fen", "zo", "im"]
    words = []
    while len(words) < size:
        w = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if w not in words:
            words.append(w)
    step = max(1, 360 // max(1, len(topic)))
    for i, t in enumerate(topic):
        words.insert(40 + i * step, t)
    weights = [1 / (rank + 1) ** 1.07 for rank in range(len(words))]
    return words, list(itertools.accumulate(weights))


_LEXICONS: dict[str, tuple[list[str], list[float]]] = {}


def _sentence(rng: random.Random, words, n: int) -> str:
    key = words[0]
    if key not in _LEXICONS:
        _LEXICONS[key] = _lexicon(list(words))
    vocab, weights = _LEXICONS[key]
    return " ".join(rng.choices(vocab, cum_weights=weights, k=n)).capitalize() + "."


def make_archive(root: Path, n: int, seed: int = 7, words_per_story: int = 400, per_snapshot: int = 50) -> Path:
    """Write an archive of n synthetic stories (~words_per_story words each) at root, their quotes in
    snapshots shared by ``per_snapshot`` stories (1: one source file per story, the other common layout)."""
    rng = random.Random(seed)
    for sub in ("stories", "sources", "recipes", "templates"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "vocabulary.yml", root / "vocabulary.yml")
    (root / "counterbrief.yml").write_text("reviewers_required: 0\n", encoding="utf-8")   # as every real archive has
    snapshot_lines: list[str] = []
    for i in range(n):
        lang = "en" if i % 10 < 8 else ("fr" if i % 10 == 8 else "ar")
        words = {"en": WORDS_EN, "fr": WORDS_FR, "ar": WORDS_AR}[lang]
        quotes = [_sentence(rng, words, 12) for _ in range(3)]
        body = "\n\n".join(" ".join(_sentence(rng, words, 12) for _ in range(words_per_story // 60)) for _ in range(5))
        snap = f"sources/synthetic-{i // per_snapshot:05d}.txt"
        snapshot_lines += quotes
        themes = rng.sample(THEMES, 2)
        status = "approved" if i % 4 else "draft"
        quote_yaml = "\n".join(f"  - text: \"{q}\"\n    themes: [{themes[0]}]" for q in quotes)
        (root / "stories" / f"synthetic-{i:06d}.md").write_text(f"""---
id: synthetic-{i:06d}
title: Synthetic account {i}
speaker:
  alias: Synthetic speaker {i}
  role: fighter
  origin: Country {i % 17}
  joined: {2012 + i % 4}
  left: {2015 + i % 4}
group: ISIS
language: {lang}
themes: [{', '.join(themes)}]
source:
  outlet: Synthetic Outlet {i % 23}
  published: {2014 + i % 8}-0{1 + i % 9}
  snapshot: {snap}
quotes:
{quote_yaml}
sensitivity: public
status: {status}
synthetic: true
---
{body}
""", encoding="utf-8")
        if (i + 1) % per_snapshot == 0 or i == n - 1:
            (root / snap).write_text("SYNTHETIC SOURCE\n" + "\n".join(snapshot_lines) + "\n", encoding="utf-8")
            snapshot_lines = []
    return root
