"""One cache of what a suggestion needs, loaded once per process: the retriever, the policies, the LLM.

The retriever holds the embedding model and the index, and takes seconds to build, so the CLI,
the app and the service share this one cache. A long-running process must still notice a new
index version written by another process's ingest: `retriever()` compares the cached version
with the active one (a cheap read of the index pointer) and reloads between requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sopilot.core.errors import SopilotError
from sopilot.core.settings import Settings
from sopilot.guard.policy import Policies, policies_for
from sopilot.retriever.match import best_match

if TYPE_CHECKING:
    from sopilot.retriever.hybrid import Retriever

_LOCK = threading.Lock()
_RETRIEVERS: dict[tuple, tuple[str | None, Retriever]] = {}


def _key(settings: Settings) -> tuple:
    return (str(settings.data_dir), settings.chroma_url, settings.collection, settings.embedding_model)


def _active_version(settings: Settings) -> str | None:
    from sopilot.ingest.store import active_version

    return active_version(settings)


def retriever(settings: Settings) -> Retriever:
    """The retriever over the active index version, loaded once per process and version."""
    from sopilot.retriever.hybrid import load

    key = _key(settings)
    version = _active_version(settings)
    with _LOCK:
        cached = _RETRIEVERS.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    loaded = load(settings)
    with _LOCK:
        _RETRIEVERS[key] = (version, loaded)
    return loaded


def forget(settings: Settings) -> None:
    """Drop the cached retriever, so the next request reads the index afresh."""
    with _LOCK:
        _RETRIEVERS.pop(_key(settings), None)


def policies(settings: Settings) -> Policies:
    """The policy file of the configured knowledge dir (cached by `load_policies` per file version)."""
    return policies_for(settings)


def llm(settings: Settings) -> Any:
    """The configured LLM client, or None when the offline composer drafts replies."""
    from sopilot.suggest import llm as llm_module

    return llm_module.from_settings(settings)


def classifier(settings: Settings) -> Callable[[str], str | None]:
    """The guard's policy classifier for tickets without `sop_id`: the best match, loaded on first use.

    A ticket that names its policy never loads the index or the model; when the index cannot be
    read, the classifier answers None and the guard routes the ticket to manual review.
    """

    def classify(message: str) -> str | None:
        try:
            found = retriever(settings)
        except SopilotError:
            return None
        match = best_match(found.search(message, k=1), settings.match_threshold)
        return match.sop_id if match else None

    return classify


def warm(settings: Settings) -> None:
    """Load everything a suggestion needs now rather than on the first ticket."""
    found = retriever(settings)
    found.embedder.embed_query("warm up")
    policies(settings)
    if llm(settings) is not None:
        from sopilot.prompts.template import load_prompt
        from sopilot.suggest.llm import count_tokens

        load_prompt("reply")
        count_tokens("warm up")
