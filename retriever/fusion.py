"""Rank fusion: pure functions over rankings (lists of ids, best first)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def rrf(rankings: Mapping[str, Sequence[str]], *, weights: Mapping[str, float] | None = None,
        k: int = 60) -> dict[str, float]:
    """Weighted reciprocal-rank fusion: score(d) = Σ w_r / (k + rank_r(d)), ranks from 1."""
    if k < 1:
        raise ValueError(f"k must be at least 1. Currently, k is {k}")
    scores: dict[str, float] = {}
    for name, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 0.0)
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return scores


def normalized_sum(runs: Mapping[str, Mapping[str, float]], *, weights: Mapping[str, float]) -> dict[str, float]:
    """Weighted sum of min-max normalised scores; a document missing from a run scores 0 there."""
    fused: dict[str, float] = {}
    for name, run in runs.items():
        if not run:
            continue
        low, high = min(run.values()), max(run.values())
        span = (high - low) or 1.0
        for doc, score in run.items():
            fused[doc] = fused.get(doc, 0.0) + weights.get(name, 0.0) * (score - low) / span
    return fused


def ranking(scores: Mapping[str, float]) -> list[str]:
    """Ids by descending score, ties broken by id for reproducibility."""
    return sorted(scores, key=lambda d: (-scores[d], d))
