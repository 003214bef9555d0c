"""The brief pipeline: load → gate → score (with the search index) → choose → context."""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Optional

from .model import Archive, Recipe
from .select import Options, brief_date, build_context, choose, gate
from .validate import Loaded


def query_scorer(archive: Archive, loaded: Loaded, notice: Optional[Callable[[str], None]]):
    """Scores of a message's query over the whole archive, 0..1 (best hit = 1)."""
    cache: dict[str, dict[str, float]] = {}

    def scores(query: str) -> dict[str, float]:
        if query not in cache:
            from .search import Index, SearchRequest, search

            index = Index(archive, notice=notice)
            index.fresh()
            result = search(index, SearchRequest(query=query, limit=None, facets=False, snippets=False),
                            loaded.vocabulary)
            best = max((h["score"] or 0 for h in result.hits), default=0) or 1
            cache[query] = {h["id"]: (h["score"] or 0) / best for h in result.hits}
        return cache[query]

    return scores


def build(loaded: Loaded, recipe: Recipe, options: Options, source_date_epoch: Optional[str] = None,
          notice: Optional[Callable[[str], None]] = None) -> dict[str, Any]:
    options.date = brief_date(recipe.date, source_date_epoch, dt.date.today().isoformat())
    recipe.date = options.date
    candidates = gate(loaded.stories, recipe, options)
    chosen = choose(candidates, recipe, query_scorer(loaded.archive, loaded, notice))
    used = {c.story.path for picked in chosen for c in picked}
    files = [(loaded.archive.rel(p), p.read_bytes()) for p in sorted(used)]
    if loaded.archive.vocabulary_path.is_file():
        files.append(("vocabulary.yml", loaded.archive.vocabulary_path.read_bytes()))
    return build_context(recipe, chosen, loaded.stories, files, options)
