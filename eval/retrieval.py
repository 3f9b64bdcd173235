"""`sopilot eval retrieval`: the configured retriever and its baselines on a labelled query set.

Every system ranks every query to depth max(k, 10), so `mrr@10` and `ndcg@10` are always
defined; the metrics are `eval.metrics.DEFAULT_METRICS`. A query is *missed* when the configured
retriever's top result is not relevant: that is the SOP a ticket would be classified under.
Relevant ids that the index does not hold are allowed (a label can run ahead of the documents)
but counted and reported, because no system can ever find them. Nothing is sampled, so the same
index and query file always give the same numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from sopilot.eval.baselines import BASELINES, Search, baseline, ranking_of
from sopilot.eval.metrics import DEFAULT_METRICS, evaluate, score
from sopilot.core.jsonl import read_jsonl
from sopilot.core.errors import InputError
from sopilot.core.settings import Settings

CONFIGURED = "hybrid"
"""The name the configured retriever is reported under."""
SYSTEMS: tuple[str, ...] = (CONFIGURED, *BASELINES)
MIN_DEPTH = 10
MISSED_SHOWN = 3
"""Hits listed for each missed query."""

Progress = Callable[[int, int, str], None]
"""Called as (queries done, total over all systems, system being run)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Query:
    """One labelled query of the file."""

    line: int
    query: str
    relevant: tuple[str, ...]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Missed:
    """A query whose top result from the configured retriever is not relevant."""

    query: str
    relevant: tuple[str, ...]
    retrieved: tuple[str, ...]
    """The configured retriever's top sop_ids."""
    line: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalResult:
    """Scores of every system on one query file, and what describes the run."""

    n: int
    scores: dict[str, dict[str, float]]
    """System → metric → mean over the queries (4 digits)."""
    latency_ms: dict[str, float]
    """System → mean milliseconds per query (building the tutorial index not included)."""
    missed: list[Missed]
    unknown: dict[str, int]
    """Relevant ids the index does not hold → number of queries naming them."""
    queries_path: str
    k: int
    """Retrieval depth every system ran at."""
    metrics: tuple[str, ...]
    index_version: str | None
    embedding_model: str
    config: dict
    """The configured retriever's `RetrievalConfig`."""
    date: str
    """UTC time of the run, ISO 8601."""
    retriever: str = CONFIGURED

    def to_json(self, report: str | None = None) -> dict:
        """The document `eval retrieval --json` prints (CONTRACT §4): the configured retriever on top."""
        return {"n": self.n, **self.scores[self.retriever], "retriever": self.retriever,
                "baselines": {name: values for name, values in self.scores.items() if name != self.retriever},
                "missed": [{"query": m.query, "relevant": list(m.relevant), "retrieved": list(m.retrieved)}
                           for m in self.missed],
                "report": report}


def read_queries(path: str | Path) -> list[Query]:
    """Labelled queries from a JSON Lines file (`-` = stdin); a bad line raises `InputError` naming it."""
    name = str(path)
    example = '{"query": "customer charged twice", "relevant": ["A.1"]}'
    queries: list[Query] = []
    for number, row in read_jsonl(path, "query file", example=example):
        query, relevant = row.get("query"), row.get("relevant")
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"{name}:{number}: \"query\" must be a non-empty string, as in {example}")
        if (not isinstance(relevant, list) or not relevant
                or not all(isinstance(r, str) and r.strip() for r in relevant)):
            raise InputError(f"{name}:{number}: \"relevant\" must be a non-empty list of sop_id strings, "
                             f"as in {example}")
        queries.append(Query(line=number, query=query, relevant=tuple(dict.fromkeys(r.strip() for r in relevant))))
    if not queries:
        raise InputError(f"{name} holds no queries: write one {example} per line")
    return queries


def _systems(names: Sequence[str] | None) -> list[str]:
    wanted = list(dict.fromkeys(names or SYSTEMS))
    unknown = [n for n in wanted if n not in SYSTEMS]
    if unknown:
        raise InputError(f"unknown system(s) {unknown}: use any of {list(SYSTEMS)}")
    return [CONFIGURED, *[n for n in wanted if n != CONFIGURED]]


def evaluate_retrieval(queries_path: str | Path, settings: Settings, k: int = 10,
                       systems: Sequence[str] | None = None, progress: Progress | None = None) -> EvalResult:
    """Run the configured retriever and the chosen baselines over a labelled query file.

    Args:
        queries_path: JSON Lines of `{"query": …, "relevant": [sop_id, …]}` (`-` = stdin).
        settings: where the index is; the configured retriever is `retriever.hybrid.load(settings)`.
        k: retrieval depth; at least 10 is used so that the @10 metrics are defined.
        systems: any of `SYSTEMS` (default all); the configured retriever always runs.
        progress: called after each query of each system.

    Returns:
        The scores per system, the missed queries and what describes the run.
    """
    from sopilot.ingest.store import Store, connect
    from sopilot.retriever.hybrid import load

    if k < 1:
        raise InputError(f"k must be greater than 0. Currently, k is {k}")
    names = _systems(systems)
    queries = read_queries(queries_path)
    retriever = load(settings)
    depth = max(k, MIN_DEPTH)
    qrels = {str(q.line): set(q.relevant) for q in queries}
    total = len(queries) * len(names)
    scores: dict[str, dict[str, float]] = {}
    latency: dict[str, float] = {}
    runs: dict[str, dict[str, list[str]]] = {}
    done = 0
    for name in names:
        search: Search = ranking_of(retriever) if name == CONFIGURED else baseline(name, retriever, settings)
        try:
            run: dict[str, list[str]] = {}
            started = time.perf_counter()
            for query in queries:
                run[str(query.line)] = search(query.query, depth)
                done += 1
                if progress is not None:
                    progress(done, total, name)
            latency[name] = round(1000 * (time.perf_counter() - started) / len(queries), 1)
        finally:
            if hasattr(search, "close"):
                search.close()
        runs[name] = run
        scores[name] = evaluate(run, qrels, DEFAULT_METRICS)
    configured = runs[CONFIGURED]
    missed = [Missed(query=q.query, relevant=q.relevant, retrieved=tuple(configured[str(q.line)][:MISSED_SHOWN]),
                     line=q.line)
              for q in queries if score(configured[str(q.line)], q.relevant, "hit@1") == 0.0]
    known = set(retriever.sops)
    unknown = Counter(r for q in queries for r in q.relevant if r not in known)
    return EvalResult(
        n=len(queries), scores=scores, latency_ms=latency, missed=missed, unknown=dict(sorted(unknown.items())),
        queries_path=str(queries_path), k=depth, metrics=DEFAULT_METRICS,
        index_version=Store(connect(settings), settings.collection).active_version(),
        embedding_model=settings.embedding_model or "all-MiniLM-L6-v2 (packaged)",
        config=dataclasses.asdict(retriever.config),
        date=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
    )
