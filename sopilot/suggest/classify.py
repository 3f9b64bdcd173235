"""The policy classifier for tickets without `sop_id`: the retriever's best hit, when confident.

The guard stays importable and correct without it (no classifier means manual review); this
builds one lazily, so a ticket that names its policy never loads the index or the model.
"""

from __future__ import annotations

from collections.abc import Callable

from sopilot.core.errors import SopilotError
from sopilot.core.settings import Settings


def retrieval_classifier(settings: Settings) -> Callable[[str], str | None]:
    """A classifier that loads the retriever on first use and trusts hits above `min_confidence`."""
    state: dict = {}

    def classify(message: str) -> str | None:
        if "retriever" not in state:
            from sopilot.retriever.hybrid import load

            try:
                state["retriever"] = load(settings)
            except SopilotError:
                state["retriever"] = None
        retriever = state["retriever"]
        if retriever is None:
            return None
        hits = retriever.search(message, k=1)
        return hits[0].sop_id if hits and hits[0].dense >= settings.min_confidence else None

    return classify
