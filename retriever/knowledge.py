"""The indexed knowledge base held in memory: chunks, and SOPs rebuilt from them.

Chroma is the one source of truth: every process (one machine or many behind a Chroma server)
reads the active version's chunks, rebuilds each SOP's sections in document order for the reply
step, and builds the lexical index from the same text.
"""

from __future__ import annotations

import dataclasses

from sopilot.core.sop import SOP, Section


@dataclasses.dataclass(frozen=True, kw_only=True)
class IndexedChunk:
    """A chunk as stored: id, embedded text, body and metadata."""

    chunk_id: str
    text: str
    metadata: dict

    @property
    def sop_id(self) -> str:
        """The SOP the chunk belongs to."""
        return self.metadata["sop_id"]

    @property
    def body(self) -> str:
        """The chunk's text without its contextual header."""
        return self.text.split("\n", 1)[1] if "\n" in self.text else self.text


def rebuild_sops(chunks: list[IndexedChunk]) -> dict[str, SOP]:
    """SOPs with their sections in document order, from the chunks of one index version."""
    by_sop: dict[str, list[IndexedChunk]] = {}
    for chunk in chunks:
        by_sop.setdefault(chunk.sop_id, []).append(chunk)
    sops: dict[str, SOP] = {}
    for sop_id, group in by_sop.items():
        group.sort(key=lambda c: (c.metadata["order"], c.metadata["part"]))
        sections: list[Section] = []
        parts: dict[int, list[IndexedChunk]] = {}
        for chunk in group:
            parts.setdefault(chunk.metadata["order"], []).append(chunk)
        for members in parts.values():
            meta = members[0].metadata
            sections.append(Section(kind=meta["section"], heading=meta.get("heading", ""),
                                    text="\n".join(c.body for c in members),
                                    line_start=min(c.metadata["line_start"] for c in members),
                                    line_end=max(c.metadata["line_end"] for c in members)))
        meta = group[0].metadata
        sops[sop_id] = SOP(sop_id=sop_id, title=meta["title"], category=meta["category"], source=meta["source"],
                           version=meta.get("version"), effective_date=meta.get("effective_date"),
                           answerable=bool(meta.get("answerable", True)), sections=tuple(sections))
    return sops
