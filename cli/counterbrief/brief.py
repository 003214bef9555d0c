"""The brief pipeline: gate and rank from the index → read and re-check the picked stories → context."""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from .model import Recipe, Story, Theme
from .select import Options, brief_date, build_context, choose, levels, parse_pin


def build(index, vocabulary: dict[str, Theme], recipe: Recipe, options: Options,
          source_date_epoch: Optional[str] = None, warnings: Optional[list[str]] = None) -> dict[str, Any]:
    """The brief's context, from ``index`` (a search.Index) as it is: ``cli.fresh_answer`` decides
    whether it was fresh enough to keep. Reads files but writes nothing. Selection problems (a
    pinned quote that cannot be used) are appended to ``warnings``."""
    from .search import gated_profiles, query_scores as search_scores
    from .validate import SnapshotCache, check_story

    archive = index.archive
    redact = index.redactor()   # first: a redact list that cannot be read stops the brief here
    recipe.date = brief_date(recipe.date, source_date_epoch, dt.date.today().isoformat())
    scores_cache: dict[str, dict[str, float]] = {}

    def query_scores(query: str) -> dict[str, float]:
        """The message's query over the archive, scaled 0..1 (best hit = 1)."""
        if query not in scores_cache:
            scores_cache[query] = search_scores(index, query, vocabulary)   # from columns, no stored fields
        return scores_cache[query]

    # Only the accounts a message can take are decoded (``choose`` looks at no other): those with a
    # quote on one of the messages' themes, those the query of a message without themes finds, and
    # the pinned ones. The gate itself is unchanged and comes first.
    themes = {t for m in recipe.messages for t in m.themes}
    ids = {parse_pin(pin)[0] for m in recipe.messages for pin in m.quotes}
    for m in recipe.messages:
        if not m.themes and m.query:
            ids.update(query_scores(m.query))
    profiles = gated_profiles(index, levels(recipe), options.include_synthetic, themes=themes, ids=ids)
    if options.only_ids:
        profiles = [p for p in profiles if p["id"] in options.only_ids]
    profiles.sort(key=lambda p: p["id"])

    snapshots = SnapshotCache(archive)
    stories: dict[str, Optional[Story]] = {}

    def load_story(profile: dict) -> Optional[Story]:
        if profile["path"] not in stories:
            story, _ = check_story(archive.root / profile["path"], archive, vocabulary, snapshots)
            stories[profile["path"]] = story
        return stories[profile["path"]]

    chosen = choose(profiles, recipe, options, query_scores, load_story, warnings)
    used = sorted({c.story.path for picked in chosen for c in picked})
    files = [(archive.rel(p), p.read_bytes()) for p in used]
    if archive.vocabulary_path.is_file():
        files.append(("vocabulary.yml", archive.vocabulary_path.read_bytes()))
    return build_context(recipe, chosen, redact, files)
