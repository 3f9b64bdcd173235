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
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from sopilot.eval.baselines import BASELINES, Search, baseline, ranking_of
from sopilot.eval.metrics import DEFAULT_METRICS, evaluate, score
from sopilot.retriever.hybrid import Retrieval

from sopilot.core.errors import InputError
from sopilot.core.jsonl import read_jsonl
from sopilot.core.settings import Settings

CONFIGURED = "hybrid"
"""The name the configured retriever is reported under."""
SYSTEMS: tuple[str, ...] = (CONFIGURED, *BASELINES)
MIN_DEPTH = 10
BREAKDOWN_METRICS = ("hit@1", "recall@5", "mrr@10")
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
    """Every sop_id that counts as a correct answer; empty when no SOP covers the query."""
    form: str = ""
    language: str = "en"


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoMatch:
    """How well the match probability tells answerable queries from those no SOP covers."""

    threshold: float
    answerable: int
    no_match: int
    auc: float | None
    """Area under the ROC curve of the top hit's match probability (None without both kinds)."""
    caught: int
    """No-match queries the retriever reported `matched: false`."""
    matched_answerable: float
    """Share of answerable queries reported `matched: true`."""
    matched_answerable_english: float
    top_correct_matched: float
    """Share of answerable queries whose top SOP is relevant and reported matched."""
    trade_off: tuple[tuple[float, float, float], ...]
    """(threshold, share of no-match caught, share of answerable English matched) on a grid."""

    def to_json(self) -> dict:
        """As in the `eval retrieval --json` document."""
        return {"threshold": self.threshold, "answerable": self.answerable, "no_match": self.no_match,
                "auc": self.auc, "caught": self.caught, "matched_answerable": self.matched_answerable,
                "matched_answerable_english": self.matched_answerable_english,
                "top_correct_matched": self.top_correct_matched,
                "trade_off": [list(t) for t in self.trade_off]}


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
    by_form: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    """Form → n and metrics of the configured retriever over the answerable queries of that form."""
    by_language: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    no_match: NoMatch | None = None
    language_errors: tuple[tuple[int, str, str], ...] = ()
    """(line, labelled language, detected language) where they differ."""

    def to_json(self, report: str | None = None) -> dict:
        """The document `eval retrieval --json` prints (docs/interface.md §4): the configured retriever on top."""
        return {"n": self.n, **self.scores[self.retriever], "retriever": self.retriever,
                "baselines": {name: values for name, values in self.scores.items() if name != self.retriever},
                "missed": [{"query": m.query, "relevant": list(m.relevant), "retrieved": list(m.retrieved)}
                           for m in self.missed],
                "report": report, "embedding_model": self.embedding_model, "by_form": self.by_form,
                "by_language": self.by_language,
                "no_match": self.no_match.to_json() if self.no_match else None,
                "language_errors": [{"line": n, "labelled": a, "detected": b} for n, a, b in self.language_errors]}


def read_queries(path: str | Path) -> list[Query]:
    """Labelled queries from a JSON Lines file (`-` = stdin); a bad line raises `InputError` naming it."""
    name = str(path)
    example = '{"query": "customer charged twice", "relevant": ["A.1"]}'
    queries: list[Query] = []
    for number, row in read_jsonl(path, "query file", example=example):
        query, relevant = row.get("query"), row.get("relevant")
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"{name}:{number}: \"query\" must be a non-empty string, as in {example}")
        if not isinstance(relevant, list) or not all(isinstance(r, str) and r.strip() for r in relevant):
            raise InputError(f"{name}:{number}: \"relevant\" must be a list of sop_id strings (empty when no SOP "
                             f"covers the query), as in {example}")
        form, language = row.get("form", ""), row.get("language", "en")
        if not isinstance(form, str) or not isinstance(language, str) or not language.strip():
            raise InputError(f"{name}:{number}: \"form\" and \"language\" must be strings "
                             '(e.g. "form": "email", "language": "en")')
        queries.append(Query(line=number, query=query, relevant=tuple(dict.fromkeys(r.strip() for r in relevant)),
                             form=form, language=language.strip().lower()))
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
    answerable = [q for q in queries if q.relevant]
    if not answerable:
        raise InputError(f"{queries_path} labels no query with a relevant SOP: ranking metrics need at least one")
    qrels = {str(q.line): set(q.relevant) for q in answerable}
    total = len(queries) + len(answerable) * (len(names) - 1)
    scores: dict[str, dict[str, float]] = {}
    latency: dict[str, float] = {}
    runs: dict[str, dict[str, list[str]]] = {}
    found: dict[str, Retrieval] = {}
    done = 0
    for name in names:
        search: Search = ranking_of(retriever) if name == CONFIGURED else baseline(name, retriever, settings)
        try:
            run: dict[str, list[str]] = {}
            started = time.perf_counter()
            for query in (queries if name == CONFIGURED else answerable):
                if name == CONFIGURED:
                    found[str(query.line)] = retriever.retrieve(query.query, k=depth)
                    run[str(query.line)] = [h.sop_id for h in found[str(query.line)].hits]
                else:
                    run[str(query.line)] = search(query.query, depth)
                done += 1
                if progress is not None:
                    progress(done, total, name)
            latency[name] = round(1000 * (time.perf_counter() - started) / len(queries), 1)
        finally:
            if hasattr(search, "close"):
                search.close()
        runs[name] = {key: value for key, value in run.items() if key in qrels}
        scores[name] = evaluate(runs[name], qrels, DEFAULT_METRICS)
    configured = runs[CONFIGURED]
    missed = [Missed(query=q.query, relevant=q.relevant, retrieved=tuple(configured[str(q.line)][:MISSED_SHOWN]),
                     line=q.line)
              for q in answerable if score(configured[str(q.line)], q.relevant, "hit@1") == 0.0]
    known = set(retriever.sops)
    unknown = Counter(r for q in queries for r in q.relevant if r not in known)
    by_form = _breakdown(answerable, configured, lambda q: q.form or "unlabelled")
    by_language = _breakdown(answerable, configured, lambda q: q.language)
    language_errors = tuple((q.line, q.language, found[str(q.line)].language) for q in queries
                            if q.language and found[str(q.line)].language != q.language)
    return EvalResult(
        n=len(answerable), scores=scores, latency_ms=latency, missed=missed, unknown=dict(sorted(unknown.items())),
        queries_path=str(queries_path), k=depth, metrics=DEFAULT_METRICS,
        index_version=Store(connect(settings), settings.collection).active_version(),
        embedding_model=retriever.embedder.name,
        config=dataclasses.asdict(retriever.config) | {"match_threshold": retriever.match_threshold,
                                                       "ranker": _ranker_state(retriever)},
        date=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        by_form=by_form, by_language=by_language, language_errors=language_errors,
        no_match=no_match_report(queries, found, configured, retriever.match_threshold),
    )


def _ranker_state(retriever) -> str:
    """How the configured retriever orders the SOPs: by the learned ranker, or by the fusion (and why)."""
    if retriever.ranker is not None and retriever.ranker.reorder and retriever.config.learned:
        return "learned (re-orders the fusion's first SOPs)"
    return "none, the fusion orders (a ranker re-orders only where it beat the fusion out of fold: ranker.json)"


def _breakdown(queries: Sequence[Query], run: dict[str, list[str]], key: Callable[[Query], str]) -> dict:
    groups: dict[str, list[Query]] = {}
    for query in queries:
        groups.setdefault(key(query), []).append(query)
    return {name: {"n": len(group), **evaluate({str(q.line): run[str(q.line)] for q in group},
                                               {str(q.line): set(q.relevant) for q in group}, BREAKDOWN_METRICS)}
            for name, group in sorted(groups.items())}


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """Area under the ROC curve: the chance a positive outscores a negative (ties count half)."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 4)


def no_match_report(queries: Sequence[Query], found: dict[str, Retrieval], run: dict[str, list[str]],
                    threshold: float) -> NoMatch:
    """The no-match figures at `threshold`, and the trade-off on a grid of thresholds."""
    answerable = [q for q in queries if q.relevant]
    english = [q for q in answerable if q.language == "en"]
    negatives = [q for q in queries if not q.relevant]
    probability = {key: r.match_probability for key, r in found.items()}

    def share(group: Sequence[Query], t: float) -> float:
        return round(sum(probability[str(q.line)] >= t for q in group) / len(group), 4) if group else 0.0

    caught = sum(probability[str(q.line)] < threshold for q in negatives)
    correct = [q for q in answerable if run[str(q.line)][:1] and run[str(q.line)][0] in q.relevant]
    grid = tuple((t, round(1 - share(negatives, t), 4) if negatives else 0.0, share(english, t))
                 for t in (round(0.05 * i, 2) for i in range(1, 20)))
    return NoMatch(threshold=threshold, answerable=len(answerable), no_match=len(negatives),
                   auc=auc([probability[str(q.line)] for q in answerable],
                           [probability[str(q.line)] for q in negatives]),
                   caught=caught, matched_answerable=share(answerable, threshold),
                   matched_answerable_english=share(english, threshold),
                   top_correct_matched=round(sum(probability[str(q.line)] >= threshold for q in correct)
                                             / len(answerable), 4) if answerable else 0.0,
                   trade_off=grid)

