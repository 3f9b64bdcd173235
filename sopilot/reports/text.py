"""Grouping similar texts and naming the groups: sentence embeddings, average-link clustering, c-TF-IDF.

Texts are embedded with the encoder the knowledge base uses (`sopilot.ingest.embed.get_embedder`,
L2-normalised, so cosine similarity is a dot product). Groups come from scikit-learn's
agglomerative clustering with *average* linkage on cosine distance, cut at `1 - similarity`: every
group's members are, on average, at least `similarity` alike, the result does not depend on
the order of the texts or on a seed, and a text like no other stays alone rather than being forced
into a group. Key phrases are class-based TF-IDF (Grootendorst's c-TF-IDF, the BERTopic
weighting): each group is one class; a phrase scores by the share of the group's texts that use
it, times `log(1 + A / f)`, with `A` the mean number of words per class and `f` the phrase's
frequency over every class, so words common to every group (`customer`, `refund`) sink.
numpy and scikit-learn are imported inside the functions: importing the reports stays light.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any


@functools.lru_cache(maxsize=2)
def _embedder(configured: str):
    from sopilot.ingest.embed import get_embedder

    return get_embedder(configured)


def embed(texts: Sequence[str], settings) -> Any:
    """Unit-length embeddings of `texts` (numpy array, one row per text)."""
    import numpy as np

    if not texts:
        return np.zeros((0, 1), dtype="float32")
    unique = list(dict.fromkeys(texts))  # replies built from templates repeat: embed each text once
    vectors = np.asarray(_embedder(settings.embedding_model).embed_batch(unique), dtype="float32")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.where(norms == 0, 1, norms)
    row = {text: index for index, text in enumerate(unique)}
    return vectors[[row[text] for text in texts]]


def cluster(vectors: Any, similarity: float) -> list[int]:
    """Group labels (0, 1, …; groups numbered by size, largest first, ties by first member).

    Args:
        vectors: unit-length rows.
        similarity: the least average cosine similarity within a group (0 < similarity < 1).
    """
    import numpy as np

    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [0]
    from sklearn.cluster import AgglomerativeClustering

    distance = np.clip(1.0 - vectors @ vectors.T, 0.0, 2.0)
    np.fill_diagonal(distance, 0.0)
    raw = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                  distance_threshold=1.0 - similarity).fit_predict(distance)
    members: dict[int, list[int]] = {}
    for index, label in enumerate(raw):
        members.setdefault(int(label), []).append(index)
    order = sorted(members.values(), key=lambda m: (-len(m), m[0]))
    labels = [0] * n
    for new, indices in enumerate(order):
        for index in indices:
            labels[index] = new
    return labels


def mean_similarity(vectors: Any) -> float:
    """Average cosine similarity over distinct pairs (1.0 for fewer than two texts)."""
    n = len(vectors)
    if n < 2:
        return 1.0
    sims = vectors @ vectors.T
    return float((sims.sum() - sims.trace()) / (n * (n - 1)))


def central(vectors: Any, k: int) -> list[int]:
    """Indices of the `k` rows closest to the group's centroid, closest first (the group's typical texts)."""
    import numpy as np

    if len(vectors) == 0:
        return []
    centroid = vectors.mean(axis=0)
    scores = vectors @ centroid
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def key_phrases(classes: Mapping[Any, Sequence[str]], *, top: int = 5) -> dict[Any, list[str]]:
    """The `top` c-TF-IDF phrases (one or two words) of each class of texts.

    A phrase inside a better-scoring phrase already chosen (`gateway` after `gateway logs`) is
    skipped, so the list names different things.
    """
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    names = [name for name, texts in classes.items() if any(t.strip() for t in texts)]
    if not names:
        return {name: [] for name in classes}
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words="english", lowercase=True,
                                 token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9'-]+\b")
    try:
        vectorizer.fit([t for name in names for t in classes[name]])
    except ValueError:  # nothing but stop words
        return {name: [] for name in classes}
    vocabulary = vectorizer.get_feature_names_out()
    per_class = []
    totals = np.zeros(len(vocabulary))
    for name in names:
        counts = vectorizer.transform(classes[name])
        doc_share = (counts > 0).sum(axis=0).A1 / max(1, counts.shape[0])
        frequency = counts.sum(axis=0).A1
        per_class.append((doc_share, frequency))
        totals = totals + frequency
    words = [sum(len(t.split()) for t in classes[name]) for name in names]
    mean_words = sum(words) / len(words)
    result: dict[Any, list[str]] = {name: [] for name in classes}
    for name, (doc_share, _frequency) in zip(names, per_class, strict=True):
        scores = [(doc_share[i] * math.log(1 + mean_words / totals[i]), vocabulary[i])
                  for i in range(len(vocabulary)) if doc_share[i] > 0]
        scores.sort(key=lambda item: (-item[0], -len(item[1]), item[1]))
        chosen: list[str] = []
        for _score, phrase in scores:
            if any(phrase in other.split() or f" {phrase} " in f" {other} " for other in chosen):
                continue
            chosen = [c for c in chosen if f" {c} " not in f" {phrase} "] + [phrase]
            if len(chosen) >= top:
                break
        result[name] = chosen
    return result


def sentences(text: str) -> list[str]:
    """A reply split into its sentences and list items (line breaks and full stops end them)."""
    found = []
    for line in text.splitlines():
        line = line.strip().lstrip("-*•0123456789.) ").strip()
        if not line:
            continue
        start = 0
        for index, char in enumerate(line):
            if char in ".!?" and (index + 1 == len(line) or line[index + 1] == " "):
                piece = line[start:index + 1].strip()
                if len(piece.split()) >= 3:
                    found.append(piece)
                start = index + 1
        rest = line[start:].strip()
        if len(rest.split()) >= 3:
            found.append(rest)
    return found
