"""Hybrid retrieval: dense (Chroma, cosine) and lexical (BM25) rankings of SOPs, fused.

Each SOP is indexed as several vectors (its procedure, each automation rule, its response
template, …), so a query about one rule finds the SOP even when the rest of it is about
something else: densely an SOP scores as its best chunk. Lexically an SOP is scored as one
document (all its chunks with their headers), which rewards SOPs whose title words recur. The
dense side reads the query as typed; the lexical side reads it normalised (typos corrected to
the knowledge base's vocabulary, abbreviations expanded, amounts named). Scores are min-max
normalised and summed with weights (measured against reciprocal-rank fusion by
`sopilot eval retrieval`; see README). A hit is one SOP, carrying its best chunk and the whole SOP.

A learned ranker (`retriever.rank`) may re-order the fusion's first SOPs from generic features
of the same search; it does so only where it beat the fusion out of fold when it was fitted
(`python -m sopilot.eval.calibrate`), else the fusion's order stands. `gather` collects every
signal of one search and `rank` orders it, so evaluation can rank one search many ways.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sopilot.retriever.calibration import RANK_SIGNALS, Calibration, Signals, load_calibration
from sopilot.retriever.fusion import normalized_sum, ranking, rrf
from sopilot.retriever.knowledge import IndexedChunk, rebuild_sops
from sopilot.retriever.language import detect_language
from sopilot.retriever.query import QueryNormalizer
from sopilot.retriever.rank import Ranker, load_ranker
from sopilot.retriever.rank_features import Evidence, PieceEvidence
from sopilot.retriever.ticket import QUOTED_WEIGHT, Piece, ReadTicket, read_ticket, split_pieces

from sopilot.core.errors import ConfigError, InputError
from sopilot.core.sop import SOP

AGGREGATES = ("max", "mean", "weighted")
CONDITION_LINE = re.compile(r"""
    ^\s* (?:[-*•]\s+)? (?:\*\*)? (?: IF\b | Trigger\b )   # "- **IF** the ticket priority is …", "- **Trigger**: …"
""", re.VERBOSE)
"""A line that states when an SOP applies: an automation rule's `IF`, or a `Trigger:` label."""


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
    """Chunks asked of the vector store per query (per piece of a long ticket)."""
    aggregate: str = "weighted"
    """How the pieces of a long ticket combine per SOP: `max`, `mean` or `weighted` (weighted mean of similarities)."""
    read: bool = True
    """Read the ticket first (strip quotes, signatures, agent turns; split into pieces), else search the raw text."""
    piece_tokens: int = 128
    """Largest piece of a long ticket, in word pieces (the encoder reads 256 or 384)."""
    learned: bool = True
    """Re-order the fusion's first SOPs by the learned ranker when one is fitted for the encoder (`retriever.rank`)."""

    def __post_init__(self) -> None:
        if self.fusion not in {"rrf", "score"}:
            raise InputError(f"fusion must be 'rrf' or 'score', not {self.fusion!r}")
        if self.aggregate not in AGGREGATES:
            raise InputError(f"aggregate must be one of {list(AGGREGATES)}, not {self.aggregate!r}")
        if self.candidates < 1:
            raise InputError(f"candidates must be greater than 0. Currently, candidates is {self.candidates}")


DENSE_ONLY = RetrievalConfig(lexical_weight=0.0, learned=False)
LEXICAL_ONLY = RetrievalConfig(dense_weight=0.0, learned=False)
FUSION_ONLY = RetrievalConfig(learned=False)
"""The hand-weighted fusion without the learned ranker (the ranker's baseline)."""


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
    """Cosine similarity of the best chunk (aggregated over the pieces of a long ticket)."""
    sop: SOP = dataclasses.field(repr=False, compare=False)
    lexical: float = 0.0
    """BM25 score of the SOP for the normalised query."""
    match_probability: float = 0.0
    """Calibrated probability that this SOP is one the ticket may rest on (`retriever.calibration`)."""

    def to_json(self) -> dict:
        """The hit as in docs/interface.md §3."""
        return {"sop_id": self.sop_id, "title": self.title, "category": self.category, "section": self.section,
                "source": self.source, "score": round(self.score, 4), "text": self.text,
                "lines": [self.line_start, self.line_end], "confidence": round(self.dense, 4),
                "match_probability": round(self.match_probability, 4)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Retrieval:
    """What one search found, and how it read the ticket (docs/interface.md §3)."""

    query: str
    hits: tuple[Hit, ...]
    matched: bool
    """The best SOP is a match a suggestion may rest on (its probability reaches the threshold)."""
    match_probability: float
    language: str
    """ISO 639-1 code of the ticket's language."""
    read_as: str
    """The text searched (translated to English when a translator was given and the ticket is not English)."""
    form: str
    translated: bool = False
    signals: Signals | None = dataclasses.field(default=None, repr=False, compare=False)
    """The features the match probability was computed from (for calibration)."""

    @property
    def best(self) -> Hit | None:
        """The best hit when it is a match, else None (the ticket matches no SOP)."""
        return self.hits[0] if self.matched and self.hits else None

    def to_json(self) -> dict:
        """The `retrieve --json` document."""
        return {"query": self.query, "hits": [h.to_json() for h in self.hits], "matched": self.matched,
                "match_probability": round(self.match_probability, 4), "language": self.language,
                "read_as": self.read_as, "form": self.form}


Translate = Callable[[str, str], str | None]
"""(text, ISO 639-1 language) → the text in English, or None when it cannot be translated."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Gathered:
    """Everything one search found before it is ranked: the reading and every signal (see `Retriever.gather`)."""

    query: str
    reading: ReadTicket
    language: str
    translated: bool
    normalized: str
    evidence: Evidence
    runs: Mapping[str, Mapping[str, float]]
    """The rankings the fusion combined (`dense`, `lexical`), SOP → score."""
    chunks: Mapping[str, Mapping[str, str]]
    """Per ranking, SOP → the chunk that represents it."""
    order: tuple[str, ...]
    """The fusion's ranking."""
    category: str | None
    tokens: tuple[str, ...] = ()
    """The normalised ticket's lexical tokens."""


class Retriever:
    """Ranks the SOPs of the active index version for a query."""

    def __init__(self, collection, chunks: list[IndexedChunk], embedder, config: RetrievalConfig | None = None,
                 calibration: Calibration | None = None, match_threshold: float = 0.5,
                 ranker: Ranker | None = None) -> None:
        from sopilot.retriever.lexical import Lexical

        self.collection = collection
        self.embedder = embedder
        self.config = config or RetrievalConfig()
        self.calibration = calibration
        self.match_threshold = match_threshold
        weighs_rank = calibration is not None and RANK_SIGNALS[0] in calibration.features
        self.ranker = ranker if ranker is not None and (ranker.reorder or weighs_rank) else None
        """The learned ranker, when it orders the SOPs or informs the match probability (else not computed)."""
        self.chunks = [c for c in chunks if c.metadata.get("answerable", True)]
        self.by_id = {c.chunk_id: c for c in self.chunks}
        self.sops = rebuild_sops(chunks)
        self.categories = sorted({c.metadata["category"] for c in self.chunks})
        self.sop_ids = sorted({c.sop_id for c in self.chunks})
        by_sop: dict[str, list[IndexedChunk]] = {s: [] for s in self.sop_ids}
        for chunk in self.chunks:
            by_sop[chunk.sop_id].append(chunk)
        self.lexical = Lexical([s + "\n" + "\n".join(c.text for c in by_sop[s]) for s in self.sop_ids])
        self.lexical_title = Lexical([self.sops[s].title for s in self.sop_ids])
        self.lexical_conditions = Lexical(["\n".join(line for c in by_sop[s] for line in c.body.split("\n")
                                                     if CONDITION_LINE.match(line)) for s in self.sop_ids])
        self._first_chunk: dict[str, str] = {}
        for chunk in self.chunks:
            self._first_chunk.setdefault(chunk.sop_id, chunk.chunk_id)
        self._position = {s: i for i, s in enumerate(self.sop_ids)}
        self.normalizer = QueryNormalizer((c.text for c in self.chunks), known_words=vocabulary_words(embedder))
        self._n_all = len(chunks)

    def with_config(self, config: RetrievalConfig) -> Retriever:
        """The same index searched another way (for evaluation)."""
        clone = object.__new__(Retriever)
        clone.__dict__.update(self.__dict__)
        clone.config = config
        return clone

    def with_ranker(self, ranker: Ranker | None, calibration: Calibration | None = None) -> Retriever:
        """The same index ranked by another learned ranker (None: the fusion), with its own calibration."""
        clone = object.__new__(Retriever)
        clone.__dict__.update(self.__dict__)
        clone.ranker = ranker
        clone.calibration = calibration
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

    def _dense(self, pieces: Sequence[Piece],
               category: str | None) -> tuple[dict[str, float], dict[str, str], tuple[PieceEvidence, ...]]:
        """Per SOP, its best chunk's similarity to each piece, aggregated over the pieces.

        No `where` filter unless a category is asked for: the never-answerable chunks are few and
        simply dropped here, while a filtered HNSW query costs 50-300 ms at 10,000-50,000 chunks.
        """
        vectors = self.embedder.embed_queries([p.text for p in pieces])
        asked = min(self.config.candidates, self._n_all)
        found = self.collection.query(query_embeddings=[v.tolist() for v in vectors],
                                      where={"category": category} if category else None,
                                      n_results=asked, include=["distances"])
        per_piece: list[PieceEvidence] = []
        best_chunk: dict[str, tuple[float, str]] = {}
        for ids, distances, piece in zip(found["ids"], found["distances"], pieces, strict=True):
            seen: list[tuple[str, str, float]] = []
            for cid, distance in zip(ids, distances, strict=True):
                chunk = self.by_id.get(cid)
                if chunk is None:
                    continue
                similarity = 1.0 - float(distance)
                seen.append((chunk.sop_id, chunk.metadata["section"], similarity))
                if similarity * piece.weight > best_chunk.get(chunk.sop_id, (-2.0, ""))[0]:
                    best_chunk[chunk.sop_id] = (similarity * piece.weight, cid)
            per_piece.append(PieceEvidence.of(seen, piece.weight))
        return _aggregate([dict(p.best) for p in per_piece], [p.weight for p in pieces], self.config.aggregate), \
            {s: c for s, (_, c) in best_chunk.items()}, tuple(per_piece)

    def _bm25(self, index, query: str, category: str | None, context: str = "") -> dict[str, float]:
        scores = index.scores(query)
        if context:
            scores = scores + QUOTED_WEIGHT * index.scores(context)
        found: dict[str, float] = {}
        for position in scores.nonzero()[0]:
            sop_id = self.sop_ids[int(position)]
            if category and self.sops[sop_id].category != category:
                continue
            found[sop_id] = float(scores[position])
        return found

    def _lexical(self, query: str, category: str | None, context: str = "") -> tuple[dict[str, float], dict[str, str]]:
        found = self._bm25(self.lexical, query, category, context)
        return found, {s: self._first_chunk[s] for s in found}

    def read(self, query: str) -> ReadTicket:
        """How the ticket is read before it is searched (see `retriever.ticket`)."""
        if not self.config.read:
            return ReadTicket(form="short", read_as=query, pieces=(Piece(text=query, weight=1.0),))
        return read_ticket(query, budget=min(self.config.piece_tokens, self.embedder.max_word_pieces - 2),
                           count=self.embedder.count_tokens)

    def search(self, query: str, *, k: int = 5, category: str | None = None) -> list[Hit]:
        """The top `k` SOPs for `query`, best first."""
        return list(self.retrieve(query, k=k, category=category).hits)

    def retrieve(self, query: str, *, k: int = 5, category: str | None = None,
                 translate: Translate | None = None) -> Retrieval:
        """Read the ticket, rank the SOPs, and say whether the best one is a match.

        Args:
            query: what the agent typed or pasted (a query, an email, a thread, a chat, a note).
            k: hits returned.
            category: only SOPs of this category (case-insensitive, prefix allowed).
            translate: when given, a ticket not in English is translated before it is searched.
        """
        if k < 1:
            raise InputError(f"k must be greater than 0. Currently, k is {k}")
        return self.rank(self.gather(query, category=category, translate=translate), k=k)

    def gather(self, query: str, *, category: str | None = None, translate: Translate | None = None) -> Gathered:
        """Read the ticket and collect every signal of the search, fused but not yet ranked by the ranker.

        Split from `rank` so that evaluation can rank one search by many fitted rankers.
        """
        if not query or not query.strip():
            raise InputError("the query is empty: type what the customer needs")
        category = self.resolve_category(category)
        reading = self.read(query)
        language = detect_language(reading.read_as, self.normalizer.counts)
        translated = False
        if translate is not None and language != "en":
            english = translate(reading.read_as, language)
            if english and english.strip():
                reading = ReadTicket(form=reading.form, read_as=english.strip(),
                                     pieces=tuple(Piece(text=p, weight=1.0) for p in
                                                  split_pieces(english, self.config.piece_tokens,
                                                               self.embedder.count_tokens)) or
                                     (Piece(text=english, weight=1.0),))
                translated = True
        normalized = self.normalizer.normalize(reading.read_as) if self.config.normalize_query else reading.read_as
        runs: dict[str, Mapping[str, float]] = {}
        chunks: dict[str, Mapping[str, str]] = {}
        pieces: tuple[PieceEvidence, ...] = ()
        if self.config.dense_weight > 0:
            runs["dense"], chunks["dense"], pieces = self._dense(reading.pieces, category)
        lexical_run, chunks["lexical"] = self._lexical(normalized, category, reading.context)
        if self.config.lexical_weight > 0:
            runs["lexical"] = lexical_run
        weights = {"dense": self.config.dense_weight, "lexical": self.config.lexical_weight}
        if self.config.fusion == "rrf":
            fused = rrf({n: ranking(r) for n, r in runs.items()}, weights=weights, k=self.config.rrf_k)
        else:
            fused = normalized_sum(runs, weights=weights)
        order = ranking(fused)
        learned = self.ranker is not None and self.config.learned
        depth = self.ranker.depth if learned and self.ranker else 0
        tokens = self.lexical.tokens(normalized)
        evidence = Evidence(
            pieces=pieces, dense=runs.get("dense", {}), lexical=lexical_run,
            title=self._bm25(self.lexical_title, normalized, category) if learned else {},
            conditions=self._bm25(self.lexical_conditions, normalized, category) if learned else {},
            fused=fused, fused_weight=sum(weights[n] for n in runs),
            coverage={s: self.lexical.coverage_of(tokens, self._position[s]) for s in order[:depth]})
        return Gathered(query=query, reading=reading, language=language, translated=translated,
                        normalized=normalized, evidence=evidence, runs=runs, chunks=chunks, order=tuple(order),
                        category=category, tokens=tuple(tokens))

    def rank(self, gathered: Gathered, *, k: int = 5) -> Retrieval:
        """Rank what `gather` found (by the learned ranker when there is one) and say whether it is a match."""
        evidence, runs, chunks = gathered.evidence, gathered.runs, gathered.chunks
        fused = evidence.fused
        order = list(gathered.order)
        rank_scores: dict[str, float] = {}
        if self.ranker is not None and self.config.learned:
            order, rank_scores = self.ranker.rerank(evidence, order)
        dense = runs.get("dense", {})
        signals = Signals.of(order=order, fused=fused, dense=dense, lexical=evidence.lexical,
                             total_weight=evidence.fused_weight,
                             english=gathered.language == "en" or gathered.translated,
                             coverage=self.lexical.coverage_of(list(gathered.tokens)),
                             sop_coverage={s: evidence.coverage[s] if s in evidence.coverage else
                                           self.lexical.coverage_of(list(gathered.tokens), self._position[s])
                                           for s in order[:k]}, rank_scores=rank_scores)
        probabilities = self.calibration.probabilities(signals, k) if self.calibration else [0.0] * min(k, len(order))
        if rank_scores and self.ranker is not None and self.ranker.reorder:
            score = {s: 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, v)))) for s, v in rank_scores.items()}
        else:
            peak = max(fused.values(), default=1.0) or 1.0
            score = {s: v / peak for s, v in fused.items()}
        hits = []
        for rank, sop_id in enumerate(order[:k]):
            cid = chunks.get("dense", {}).get(sop_id) or chunks["lexical"].get(sop_id) or self._first_chunk[sop_id]
            chunk = self.by_id[cid]
            meta = chunk.metadata
            hits.append(Hit(sop_id=sop_id, title=meta["title"], category=meta["category"], section=meta["section"],
                            source=meta["source"], score=score.get(sop_id, 0.0), text=chunk.body, chunk_id=cid,
                            line_start=meta["line_start"], line_end=meta["line_end"],
                            dense=dense.get(sop_id, 0.0), sop=self.sops[sop_id],
                            lexical=evidence.lexical.get(sop_id, 0.0),
                            match_probability=probabilities[rank] if rank < len(probabilities) else 0.0))
        probability = hits[0].match_probability if hits else 0.0
        reading = gathered.reading
        return Retrieval(query=gathered.query, hits=tuple(hits),
                         matched=bool(hits) and probability >= self.match_threshold,
                         match_probability=probability, language=gathered.language, read_as=reading.read_as,
                         form=reading.form, translated=gathered.translated, signals=signals)


def vocabulary_words(embedder) -> frozenset[str]:
    """The encoder's whole alphabetic words (its WordPiece vocabulary, `tokenizer.json` in its folder).

    They are words of the language, so the query normaliser never "corrects" them to a knowledge-base
    word one or two edits away (contractor → contract, stuck → stock) while real typos, which the
    vocabulary lacks, are still corrected. An encoder without such a file gives none.
    """
    folder = getattr(embedder, "path", None)
    file = Path(folder) / "tokenizer.json" if folder else None
    if file is None or not file.is_file():
        return frozenset()
    vocabulary = json.loads(file.read_text(encoding="utf-8")).get("model", {}).get("vocab", {})
    words = vocabulary if isinstance(vocabulary, dict) else [entry[0] for entry in vocabulary]
    return frozenset(w for w in words if isinstance(w, str) and w.isalpha())


def _aggregate(per_piece: list[dict[str, float]], weights: list[float], how: str) -> dict[str, float]:
    """One similarity per SOP from its similarity to each piece.

    An SOP that a piece's candidates did not reach gets that piece's lowest similarity seen.
    """
    if len(per_piece) == 1:
        return dict(per_piece[0])
    sops = set().union(*per_piece)
    floors = [min(p.values(), default=0.0) for p in per_piece]
    out: dict[str, float] = {}
    for sop in sops:
        values = [p.get(sop, floor) for p, floor in zip(per_piece, floors, strict=True)]
        if how == "max":
            out[sop] = max(v * w for v, w in zip(values, weights, strict=True)) / max(weights)
        elif how == "mean":
            out[sop] = sum(values) / len(values)
        else:
            out[sop] = sum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)
    return out


def load(settings, config: RetrievalConfig | None = None) -> Retriever:
    """The retriever over the active index version (embedded Chroma or a server, per settings).

    The index must have been built with the configured encoder: its version hashes the model
    name with the chunk ids, so a mismatch is seen here and named, rather than giving vectors of
    one model to queries of another.
    """
    from sopilot.ingest.embed import get_embedder
    from sopilot.ingest.store import Store, connect, version_of

    store = Store(connect(settings), settings.collection)
    collection = store.active()
    chunks = [IndexedChunk(chunk_id=i, text=t, metadata=m) for i, t, m in store.iter_chunks()]
    embedder = get_embedder(settings.embedding_model)
    if version_of([c.chunk_id for c in chunks], embedder.name) != store.active_version():
        raise ConfigError(f"the index {store.active_version()} was not built with the configured encoder "
                          f"{embedder.name!r}: run `sopilot ingest` to re-embed the knowledge base with it, or set "
                          "SOPILOT_EMBEDDING_MODEL to the model the index was built with.")
    return Retriever(collection, chunks, embedder, config,
                     calibration=load_calibration(embedder.name, getattr(settings, "calibration_file", None)),
                     match_threshold=getattr(settings, "match_threshold", 0.5),
                     ranker=load_ranker(embedder.name, getattr(settings, "ranker_file", None)))
