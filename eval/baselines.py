"""The systems `sopilot eval retrieval` compares: the configured hybrid retriever and three baselines.

- `bm25`: the same index searched lexically only (`LEXICAL_ONLY`);
- `dense`: the same index searched by embeddings only (`DENSE_ONLY`);
- `tutorial`: the common tutorial recipe, rebuilt here on purpose: every `.md`/`.txt` file of the
  knowledge dir read raw (no sections, no metadata, no contextual headers), cut by
  `RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)`, embedded with the same
  model, stored in a throw-away Chroma collection (cosine) and searched densely.

Every system answers with a ranking: distinct sop_ids, best first. Tutorial chunks carry no
sop_id, so each is credited to one SOP of the real index: the SOP *of the same source file* whose
section texts contain the most characters of the chunk's lines (after removing Markdown markup
and folding whitespace and case, so a long line split by our chunker still matches); a heading
line that names the SOP's title counts for that SOP, so a chunk of bare headings is credited to
the SOP it opens. Coverage
by characters, not by line count, lets the long distinctive lines of a chunk decide rather than
short labels such as "Procedure:" that every SOP shares; a tie goes to the SOP that comes first
in the document. A chunk that no SOP covers (a document title, a table of contents, a disclaimer)
is credited to none and adds nothing to the ranking, which is what a tutorial user would get from
it. The ranking is the credited sop_ids of the retrieved chunks in order of first appearance.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from sopilot.core.sop import SOP

Search = Callable[[str, int], list[str]]
"""A system under evaluation: (query, k) → up to `k` distinct sop_ids, best first."""

BASELINES: tuple[str, ...] = ("bm25", "dense", "tutorial")

TUTORIAL_SUFFIXES = (".md", ".txt")
TUTORIAL_CANDIDATES = 60
"""Chunks fetched per query, so that `k` distinct SOPs are usually among them (as the hybrid does)."""

_MARKUP = re.compile(r"[*#_`>|]+|^\s*(?:[-•]|\d+[.)])\s+")
_SPACE = re.compile(r"\s+")


def _norm(line: str) -> str:
    return _SPACE.sub(" ", _MARKUP.sub(" ", line)).strip().casefold()


def ranking_of(retriever) -> Search:
    """The ranking of a `retriever.hybrid.Retriever` as it is configured."""

    def search(query: str, k: int) -> list[str]:
        return [hit.sop_id for hit in retriever.search(query, k=k)]

    return search


def bm25(retriever) -> Search:
    """The same index, lexical side only."""
    from sopilot.retriever.hybrid import LEXICAL_ONLY

    return ranking_of(retriever.with_config(LEXICAL_ONLY))


def dense(retriever) -> Search:
    """The same index, dense side only."""
    from sopilot.retriever.hybrid import DENSE_ONLY

    return ranking_of(retriever.with_config(DENSE_ONLY))


def credit(chunk: str, source: str, sops: Mapping[str, SOP]) -> str | None:
    """The sop_id whose sections in `source` cover most characters of `chunk`, or None."""
    lines = [n for n in (_norm(x) for x in chunk.splitlines()) if n]
    best, best_cover = None, 0
    for sop in sorted((s for s in sops.values() if s.source == source),
                      key=lambda s: min((x.line_start for x in s.sections), default=0)):
        pool = " ".join(_norm(line) for section in sop.sections for line in section.text.splitlines())
        title = _norm(sop.title)
        cover = sum(len(line) for line in lines if line in pool or (title and title in line))
        if cover > best_cover:
            best, best_cover = sop.sop_id, cover
    return best


class Tutorial:
    """The tutorial recipe over the raw knowledge files; call it as a `Search`, then `close()` it."""

    def __init__(self, knowledge_dir: Path, sops: Mapping[str, SOP], embedder, *,
                 chunk_size: int = 1000, chunk_overlap: int = 200) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
        texts: list[str] = []
        self.credits: list[str | None] = []
        for path in sorted(Path(knowledge_dir).iterdir()):
            if not path.is_file() or path.suffix.lower() not in TUTORIAL_SUFFIXES:
                continue
            for chunk in splitter.split_text(path.read_text(encoding="utf-8", errors="replace")):
                texts.append(chunk)
                self.credits.append(credit(chunk, path.name, sops))
        self.embedder = embedder
        self.client = chromadb.EphemeralClient(settings=ChromaSettings(anonymized_telemetry=False))
        self.collection = self.client.create_collection(f"tutorial-{uuid.uuid4().hex}", embedding_function=None,
                                                        configuration={"hnsw": {"space": "cosine"}})
        if texts:
            vectors = embedder.embed_batch(texts)
            rows: list[Sequence[float] | Sequence[int]] = [list(map(float, v)) for v in vectors]
            self.collection.add(ids=[str(i) for i in range(len(texts))], documents=texts, embeddings=rows)
        self.size = len(texts)

    def __call__(self, query: str, k: int) -> list[str]:
        """Dense top chunks for `query`, as credited sop_ids in order of first appearance."""
        if not self.size:
            return []
        vector = self.embedder.embed_batch([query])[0]
        queries: list[Sequence[float] | Sequence[int]] = [list(map(float, vector))]
        found = self.collection.query(query_embeddings=queries,
                                      n_results=min(max(TUTORIAL_CANDIDATES, k), self.size), include=[])
        credited = (self.credits[int(i)] for i in found["ids"][0])
        return list(dict.fromkeys(c for c in credited if c is not None))[:k]

    def close(self) -> None:
        """Drop the throw-away collection."""
        self.client.delete_collection(self.collection.name)


def baseline(name: str, retriever, settings) -> Search:
    """One baseline by name, built over the same knowledge as `retriever` (close `Tutorial` after use)."""
    if name == "bm25":
        return bm25(retriever)
    if name == "dense":
        return dense(retriever)
    if name == "tutorial":
        from sopilot.ingest.embed import get_embedder

        return Tutorial(settings.knowledge_dir, retriever.sops, get_embedder(settings.embedding_model))
    from sopilot.core.errors import InputError

    raise InputError(f"unknown baseline {name!r}: use one of {list(BASELINES)}")
