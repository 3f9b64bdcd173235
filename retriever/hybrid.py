"""Hybrid retrieval: dense (Chroma, cosine) and lexical (BM25) rankings of SOPs, fused.

Each SOP is indexed as several vectors (its procedure, each automation rule, its response
template, …), so a query about one rule finds the SOP even when the rest of it is about
something else: densely an SOP scores as its best chunk. Lexically an SOP is scored as one
document (all its chunks with their headers), which rewards SOPs whose title words recur. The
dense side reads the query as typed; the lexical side reads it normalised (typos corrected to
the knowledge base's vocabulary, abbreviations expanded, amounts named). Scores are min-max
normalised and summed with weights (measured against reciprocal-rank fusion by
`sopilot eval retrieval`; see README). A hit is one SOP, carrying its best chunk and the whole SOP.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

from sopilot.core.sop import SOP
from sopilot.retriever.fusion import normalized_sum, ranking, rrf
from sopilot.retriever.knowledge import IndexedChunk, rebuild_sops
from sopilot.retriever.query import QueryNormalizer
from sopilot.core.errors import InputError


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetrievalConfig:
    """How rankings are made and fused; `sopilot eval retrieval` compares variants."""

    dense_weight: float = 1.0
    lexical_weight: float = 0.5
    fusion: str = "score"
    """`rrf` (weighted reciprocal rank) or `score` (weighted sum of min-max normalised scores)."""
    rrf_k: int = 60
    normalize_query: bool = True
    candidates: int = 200
    """Chunks asked of the vector store per query."""

    def __post_init__(self) -> None:
        if self.fusion not in {"rrf", "score"}:
            raise InputError(f"fusion must be 'rrf' or 'score', not {self.fusion!r}")
        if self.candidates < 1:
            raise InputError(f"candidates must be greater than 0. Currently, candidates is {self.candidates}")


DENSE_ONLY = RetrievalConfig(lexical_weight=0.0)
LEXICAL_ONLY = RetrievalConfig(dense_weight=0.0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Hit:
    """One SOP matching a query, with the chunk that matched best."""

    sop_id: str
    title: str
    category: str
    section: str
    source: str
    score: float
    text: str
    chunk_id: str
    line_start: int
    line_end: int
    dense: float
    """Cosine similarity of the best chunk: the confidence that any SOP matches at all."""
    sop: SOP = dataclasses.field(repr=False, compare=False)

    def to_json(self) -> dict:
        """The hit as in CONTRACT §3."""
        return {"sop_id": self.sop_id, "title": self.title, "category": self.category, "section": self.section,
                "source": self.source, "score": round(self.score, 4), "text": self.text,
                "lines": [self.line_start, self.line_end], "confidence": round(self.dense, 4)}


class Retriever:
    """Ranks the SOPs of the active index version for a query."""

    def __init__(self, collection, chunks: list[IndexedChunk], embedder, config: RetrievalConfig | None = None) -> None:
        from sopilot.retriever.lexical import Lexical

        self.collection = collection
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self.chunks = [c for c in chunks if c.metadata.get("answerable", True)]
        self.by_id = {c.chunk_id: c for c in self.chunks}
        self.sops = rebuild_sops(chunks)
        self.categories = sorted({c.metadata["category"] for c in self.chunks})
        self.sop_ids = sorted({c.sop_id for c in self.chunks})
        self.lexical = Lexical([s + "\n" + "\n".join(c.text for c in self.chunks if c.sop_id == s)
                                for s in self.sop_ids])
        self._first_chunk: dict[str, str] = {}
        for chunk in self.chunks:
            self._first_chunk.setdefault(chunk.sop_id, chunk.chunk_id)
        self.normalizer = QueryNormalizer(c.text for c in self.chunks)

    def with_config(self, config: RetrievalConfig) -> Retriever:
        """The same index searched another way (for evaluation)."""
        clone = object.__new__(Retriever)
        clone.__dict__.update(self.__dict__)
        clone.config = config
        return clone

    def resolve_category(self, category: str | None) -> str | None:
        """The indexed category a user-typed name refers to (case-insensitive, prefix allowed)."""
        if not category:
            return None
        wanted = category.casefold().strip()
        exact = [c for c in self.categories if c.casefold() == wanted]
        prefix = [c for c in self.categories if c.casefold().startswith(wanted)]
        if exact or len(prefix) == 1:
            return (exact or prefix)[0]
        raise InputError(f"unknown category {category!r}: use one of {self.categories}")

    def _dense(self, query: str, category: str | None) -> tuple[dict[str, float], dict[str, str]]:
        where: dict = {"answerable": True}
        if category:
            where = {"$and": [where, {"category": category}]}
        vector = self.embedder.embed_query(query)
        found = self.collection.query(query_embeddings=[vector.tolist()], where=where,
                                      n_results=min(self.config.candidates, len(self.chunks)),
                                      include=["distances"])
        best: dict[str, float] = {}
        best_chunk: dict[str, str] = {}
        for cid, distance in zip(found["ids"][0], found["distances"][0], strict=True):
            chunk = self.by_id.get(cid)
            if chunk is None:
                continue
            similarity = 1.0 - float(distance)
            if similarity > best.get(chunk.sop_id, -2.0):
                best[chunk.sop_id], best_chunk[chunk.sop_id] = similarity, cid
        return best, best_chunk

    def _lexical(self, query: str, category: str | None) -> tuple[dict[str, float], dict[str, str]]:
        scores = self.lexical.scores(query)
        found: dict[str, float] = {}
        for index in scores.nonzero()[0]:
            sop_id = self.sop_ids[int(index)]
            if category and self.sops[sop_id].category != category:
                continue
            found[sop_id] = float(scores[index])
        return found, {s: self._first_chunk[s] for s in found}

    def search(self, query: str, *, k: int = 5, category: str | None = None) -> list[Hit]:
        """The top `k` SOPs for `query`, best first."""
        if k < 1:
            raise InputError(f"k must be greater than 0. Currently, k is {k}")
        if not query or not query.strip():
            raise InputError("the query is empty: type what the customer needs")
        category = self.resolve_category(category)
        normalized = self.normalizer.normalize(query) if self.config.normalize_query else query
        runs: dict[str, Mapping[str, float]] = {}
        chunks: dict[str, dict[str, str]] = {}
        if self.config.dense_weight > 0:
            runs["dense"], chunks["dense"] = self._dense(query, category)
        if self.config.lexical_weight > 0:
            runs["lexical"], chunks["lexical"] = self._lexical(normalized, category)
        weights = {"dense": self.config.dense_weight, "lexical": self.config.lexical_weight}
        if self.config.fusion == "rrf":
            fused = rrf({n: ranking(r) for n, r in runs.items()}, weights=weights, k=self.config.rrf_k)
        else:
            fused = normalized_sum(runs, weights=weights)
        top = ranking(fused)[:k]
        dense = runs.get("dense", {})
        peak = max(fused.values(), default=1.0) or 1.0
        hits = []
        for sop_id in top:
            cid = chunks.get("dense", {}).get(sop_id) or chunks["lexical"][sop_id]
            chunk = self.by_id[cid]
            meta = chunk.metadata
            hits.append(Hit(sop_id=sop_id, title=meta["title"], category=meta["category"], section=meta["section"],
                            source=meta["source"], score=fused[sop_id] / peak, text=chunk.body, chunk_id=cid,
                            line_start=meta["line_start"], line_end=meta["line_end"],
                            dense=dense.get(sop_id, 0.0), sop=self.sops[sop_id]))
        return hits


def load(settings, config: RetrievalConfig | None = None) -> Retriever:
    """The retriever over the active index version (embedded Chroma or a server, per settings)."""
    from sopilot.ingest.embed import get_embedder
    from sopilot.ingest.store import Store, connect

    store = Store(connect(settings), settings.collection)
    collection = store.active()
    chunks = [IndexedChunk(chunk_id=i, text=t, metadata=m) for i, t, m in store.iter_chunks()]
    return Retriever(collection, chunks, get_embedder(settings.embedding_model), config)
