"""BM25 over stemmed words (bm25s), scoring every document for a query."""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset("""a an and are as at be been but by can could did do does for from had has have he her his how
i if in into is it its me my no not of on or our she so that the their them then there these they this to
was we were what when where which who why will with would you your""".split())


class Lexical:
    """A BM25 index over a list of texts."""

    def __init__(self, texts: list[str]) -> None:
        import bm25s
        import Stemmer

        self._stem = Stemmer.Stemmer("english").stemWords
        self._bm25 = bm25s.BM25()
        tokenized = [self.tokens(t) or ["_empty_"] for t in texts]
        self._bm25.index(tokenized, show_progress=False)
        self.size = len(texts)
        self._sets = [frozenset(t) for t in tokenized]
        self._all = frozenset().union(*self._sets) if self._sets else frozenset()

    def coverage(self, query: str, index: int | None = None) -> float:
        """Share of the query's words found in the indexed texts (or in text `index` alone)."""
        return self.coverage_of(self.tokens(query), index)

    def coverage_of(self, tokens: list[str], index: int | None = None) -> float:
        """`coverage` of a query already tokenised (a long ticket is tokenised once for every SOP)."""
        if not tokens:
            return 0.0
        pool = self._all if index is None else self._sets[index]
        return sum(t in pool for t in tokens) / len(tokens)

    def tokens(self, text: str) -> list[str]:
        """Lower-cased, stop-word-free, stemmed tokens."""
        return self._stem([t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS])

    def scores(self, query: str):
        """BM25 score of every indexed text for `query` (numpy array)."""
        import numpy as np

        tokens = [t for t in self.tokens(query) if t in self._bm25.vocab_dict]
        if not tokens:
            return np.zeros(self.size, dtype="float32")
        return self._bm25.get_scores(tokens)
