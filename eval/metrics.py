"""Retrieval metrics over rankings of SOP ids, with binary relevance, named like ranx (`"recall@5"`).

A ranking is the list of distinct sop_ids in order of first appearance among the hits (docs/interface.md
§3); a repeated id is ignored after its first appearance, so a system cannot score twice for one
SOP. The definitions are ranx's, so numbers can be checked against it (tests do):

- `hit@k`: 1 if any relevant id is in the top k (ranx `hit_rate`), so `hit@1` = top result relevant;
- `recall@k`: |relevant ∩ top k| / |relevant|;
- `mrr@k`: 1 / rank of the first relevant id in the top k, else 0;
- `ndcg@k`: Σ 1/log2(rank+1) over relevant ids in the top k, divided by the same sum for an ideal
  ranking (all relevant ids first).

A query with no relevant ids scores 0 on every metric.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence

from sopilot.core.errors import InputError

DEFAULT_METRICS: tuple[str, ...] = ("hit@1", "recall@3", "recall@5", "mrr@10", "ndcg@10")
"""The metrics `sopilot eval retrieval` reports (docs/interface.md §4)."""

ROUNDING_DIGITS = 4


def _top(ranking: Sequence[str], k: int) -> list[str]:
    """The first `k` distinct ids of a ranking."""
    return list(dict.fromkeys(ranking))[:k]


def hit_at_k(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """1.0 if a relevant id is among the top `k`, else 0.0."""
    return float(any(doc in relevant for doc in _top(ranking, k)))


def recall_at_k(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Share of the relevant ids found in the top `k`."""
    if not relevant:
        return 0.0
    return sum(doc in relevant for doc in _top(ranking, k)) / len(set(relevant))


def mrr_at_k(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Reciprocal rank of the first relevant id in the top `k` (0.0 when there is none)."""
    for rank, doc in enumerate(_top(ranking, k), start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranking: Sequence[str], relevant: Collection[str], k: int) -> float:
    """Normalised discounted cumulative gain of the top `k` with binary gains."""
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(set(relevant)), k) + 1))
    if ideal == 0.0:
        return 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(_top(ranking, k), start=1) if doc in relevant)
    return dcg / ideal


METRICS: dict[str, Callable[[Sequence[str], Collection[str], int], float]] = {
    "hit": hit_at_k,
    "recall": recall_at_k,
    "mrr": mrr_at_k,
    "ndcg": ndcg_at_k,
}

_NAME = re.compile(r"^([a-z]+)@(\d+)$")


def parse_metric(name: str) -> tuple[Callable[[Sequence[str], Collection[str], int], float], int]:
    """The function and cutoff a metric name such as `"recall@5"` stands for."""
    match = _NAME.match(name.strip().lower()) if isinstance(name, str) else None
    if match is None or match.group(1) not in METRICS or int(match.group(2)) < 1:
        valid = ", ".join(f"{m}@k" for m in METRICS)
        raise InputError(f"unknown metric {name!r}: use one of {valid} with k a positive integer, e.g. 'recall@5'")
    return METRICS[match.group(1)], int(match.group(2))


def score(ranking: Sequence[str], relevant: Collection[str], metric: str) -> float:
    """One metric for one query."""
    function, k = parse_metric(metric)
    return function(ranking, relevant, k)


def evaluate(runs: Mapping[str, Sequence[str]], qrels: Mapping[str, Collection[str]],
             metrics: Sequence[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Mean of each metric over the queries of `qrels`, rounded to 4 digits.

    Args:
        runs: query id → ranking (distinct sop_ids, best first); a query missing here ranks nothing.
        qrels: query id → the relevant sop_ids.
        metrics: metric names such as `"hit@1"` or `"ndcg@10"`.

    Returns:
        Metric name → mean score, in the order asked.
    """
    parsed = [(name, *parse_metric(name)) for name in metrics]
    if not qrels:
        raise InputError("no queries to evaluate: the qrels are empty")
    totals = {name: 0.0 for name, _, _ in parsed}
    for qid, relevant in qrels.items():
        ranking = runs.get(qid, ())
        relevant = set(relevant)
        for name, function, k in parsed:
            totals[name] += function(ranking, relevant, k)
    return {name: round(total / len(qrels), ROUNDING_DIGITS) for name, total in totals.items()}
