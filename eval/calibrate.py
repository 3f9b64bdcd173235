"""Fit the learned ranker and the match calibration, both validated out of fold.

`python -m sopilot.eval.calibrate [FILE.jsonl ...]` (default: eval/queries.jsonl and
eval/tickets.jsonl) searches every labelled query once with the configured retriever and keeps
what the search found (`Retriever.gather`). Then, in 5 folds grouped by query and stratified so
that every file (and the non-English tickets) is in every fold, fixed seed:

1. the ranker (`retriever.rank`): a logistic regression over the generic features of the first
   `RANK_DEPTH` SOPs of the fusion (`retriever.rank_features`; label: the SOP is relevant), fitted
   on the other folds and applied to the held-out one. Its out-of-fold hit@1, recall@5 and MRR@10
   per file are compared with the fusion's on the same queries; the ranker re-orders at run time
   only when it is at least as good on every metric of every file and better on hit@1 in total
   by more than `MIN_GAIN` queries (`reorder` in `retriever/ranker.json`); otherwise its score
   only informs the match probability;
2. the match calibration (`retriever.calibration`): the signals of the SOPs at the first `RANKS`
   ranks of each held-out query, ranked by the ranker of its fold (so its score is out of fold,
   as it is for a ticket never seen), and a logistic regression fitted on them in the same folds.
   Reported: the out-of-fold AUC of the top hit's probability, answerable against no-match
   queries, and how many no-match queries fall below the threshold that keeps
   `KEEP_ANSWERABLE` of the answerable English queries matched.

The fits on all rows are written to `retriever/ranker.json` and `retriever/calibration.json`
under the encoder's name.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sopilot.eval.metrics import evaluate
from sopilot.eval.retrieval import Query, auc, read_queries
from sopilot.retriever.calibration import DEFAULT_FILE, FEATURES, RANK_SIGNALS
from sopilot.retriever.rank import DEFAULT_FILE as RANKER_FILE
from sopilot.retriever.rank import Ranker
from sopilot.retriever.rank_features import rows as feature_rows

from sopilot.core.settings import ROOT, Settings

RANKS = 3
FOLDS = 5
SEED = 42
KEEP_ANSWERABLE = 0.95
RANK_DEPTH = 20
"""SOPs of the fusion the ranker is fitted on and re-orders."""
RANKER_FEATURES: tuple[str, ...] = (
    "dense", "dense_piece_max", "dense_top2", "dense_overview", "dense_procedure", "dense_rules", "dense_template",
    "dense_norm", "dense_gap", "dense_rank", "bm25_log", "bm25_rel", "bm25_rank", "bm25_title_log",
    "bm25_title_rel", "bm25_conditions_log", "coverage", "fused", "fused_gap")
RANKER_C = 0.1
"""Inverse regularisation strength of the ranker (stronger than scikit-learn's default: few labels per SOP)."""

def calibration_features(reorder: bool) -> tuple[str, ...]:
    """The signals the calibration weighs: the ranker's score and margin only where the ranker orders.

    Where the fusion keeps the order, the ranking's score and margin are the fused ones already
    among `FEATURES` (and the ranker's scores added nothing out of fold: see the retrieval notes).
    """
    return FEATURES + RANK_SIGNALS if reorder else FEATURES

MIN_GAIN = 3
"""Queries by which the ranker's hit@1 must beat the fusion's, all files together, to re-order."""
RANK_METRICS = ("hit@1", "recall@5", "mrr@10")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Fit:
    """The fitted calibration coefficients and their out-of-fold quality."""

    entry: dict
    oof_auc: float
    oof_auc_top_correct: float
    threshold: float
    caught: tuple[int, int]
    """(no-match queries below the threshold out of fold, no-match queries)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RankerFit:
    """The fitted ranker, its out-of-fold rankings and how they compare with the fusion's."""

    entry: dict
    ranker: Ranker
    fold_rankers: dict[int, Ranker]
    """Query line → the ranker fitted without that query's fold."""
    oof: dict[str, dict[str, float]]
    """`<file>`, `<file> (en)` (its English queries) and each with `/fusion` → metric → out-of-fold mean
    over the answerable queries."""
    reorder: bool
    wins: int
    """Answerable queries whose top SOP the ranker got right and the fusion wrong (out of fold)."""
    losses: int


def folds(queries: Sequence[Query], strata: Sequence[str]) -> list[tuple[list[int], list[int]]]:
    """(train, test) positions: 5 folds grouped by query, stratified by file, language and answerability."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    labels = np.unique(np.asarray(strata), return_inverse=True)[1]
    splitter = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    return [(list(a), list(b)) for a, b in splitter.split(np.zeros(len(queries)), labels,
                                                         [q.line for q in queries])]


def _ranker_rows(gathered, query: Query, features: Sequence[str]):
    from sopilot.retriever.rank_features import FEATURES as ALL

    head = list(gathered.order[:RANK_DEPTH])
    columns = [ALL.index(f) for f in features]
    return [[row[i] for i in columns] for row in feature_rows(gathered.evidence, head)], \
        [int(s in query.relevant) for s in head]


def fit_ranker_on(rows: Sequence[Sequence[float]], labels: Sequence[int], model: str,
                  features: Sequence[str] = RANKER_FEATURES) -> Ranker:
    """A pointwise, class-balanced logistic regression over standardised `features` (the columns of `rows`)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = np.asarray(rows, float), np.asarray(labels)
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    fitted = LogisticRegression(C=RANKER_C, max_iter=2000, class_weight="balanced").fit((x - scaler.mean_) / scale, y)
    return Ranker(model=model, features=tuple(features), mean=tuple(round(float(v), 6) for v in scaler.mean_),
                  scale=tuple(round(float(v), 6) for v in scale),
                  coef=tuple(round(float(v), 6) for v in fitted.coef_[0]), depth=RANK_DEPTH)


def fit_ranker(gathered: dict[int, Any], queries: Sequence[Query], files: dict[int, str], model: str,
               splits: list[tuple[list[int], list[int]]]) -> RankerFit:
    """Fit the ranker in `splits` (positions in `queries`), compare it with the fusion out of fold, fit on all."""
    data = {q.line: _ranker_rows(gathered[q.line], q, RANKER_FEATURES) for q in queries}
    oof_rank: dict[str, list[str]] = {}
    fold_rankers: dict[int, Ranker] = {}
    for train, test in splits:
        x = [r for i in train for r in data[queries[i].line][0]]
        y = [v for i in train for v in data[queries[i].line][1]]
        ranker = fit_ranker_on(x, y, model)
        for i in test:
            line = queries[i].line
            fold_rankers[line] = ranker
            oof_rank[str(line)] = ranker.rerank(gathered[line].evidence, gathered[line].order)[0]
    oof: dict[str, dict[str, float]] = {}
    wins = losses = 0
    sets: dict[str, list[Query]] = {}
    for name in sorted(set(files.values())):
        sets[name] = [q for q in queries if q.relevant and files[q.line] == name]
        english = [q for q in sets[name] if q.language == "en"]
        if len(english) < len(sets[name]):
            sets[f"{name} (en)"] = english
    for name, group in sets.items():
        qrels = {str(q.line): set(q.relevant) for q in group}
        fusion = {str(q.line): list(gathered[q.line].order) for q in group}
        learned = {key: oof_rank[key] for key in qrels}
        oof[name] = evaluate(learned, qrels, RANK_METRICS)
        oof[f"{name}/fusion"] = evaluate(fusion, qrels, RANK_METRICS)
        if name.endswith(" (en)"):
            continue
        for key, relevant in qrels.items():
            ranker_right, fusion_right = learned[key][0] in relevant, fusion[key][0] in relevant
            wins += ranker_right and not fusion_right
            losses += fusion_right and not ranker_right
    names = sorted(set(files.values()))
    reorder = all(oof[n][m] >= oof[f"{n}/fusion"][m] for n in sets for m in RANK_METRICS) and \
        wins - losses > MIN_GAIN
    x = [r for q in queries for r in data[q.line][0]]
    y = [v for q in queries for v in data[q.line][1]]
    final = dataclasses.replace(fit_ranker_on(x, y, model), reorder=reorder)
    fold_rankers = {line: dataclasses.replace(r, reorder=reorder) for line, r in fold_rankers.items()}
    entry = {"features": list(final.features), "mean": list(final.mean), "scale": list(final.scale),
             "coef": list(final.coef), "depth": final.depth, "reorder": reorder,
             "fitted_on": names, "examples": len(y), "oof": oof}
    return RankerFit(entry=entry, ranker=final, fold_rankers=fold_rankers, oof=oof, reorder=reorder,
                     wins=wins, losses=losses)


def _calibration_rows(retriever, gathered: dict[int, Any], queries: Sequence[Query],
                      rankers: dict[int, Ranker] | None, features: Sequence[str]):
    rows, labels, groups, top = [], [], [], []
    for query in queries:
        ranked = retriever.with_ranker(rankers.get(query.line) if rankers else None, None)
        found = ranked.rank(gathered[query.line], k=RANKS)
        for rank, hit in enumerate(found.hits[:len(found.signals.rows)]):
            rows.append(list(found.signals.row(rank))[:len(features)])
            labels.append(int(hit.sop_id in query.relevant))
            groups.append(query.line)
            top.append(rank == 0)
    return rows, labels, groups, top


def fit(retriever, queries: Sequence[Query], model: str, sources: Sequence[str], *,
        gathered: dict[int, Any] | None = None, rankers: dict[int, Ranker] | None = None,
        splits: list[tuple[list[int], list[int]]] | None = None) -> Fit:
    """Fit the calibration on `queries` (line numbers unique across files); return the entry for the JSON file.

    `rankers` maps a query's line to the ranker that ranks it (fitted without it); None: the
    retriever's own ranking.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if gathered is None:
        gathered = {q.line: retriever.gather(q.query) for q in queries}
    rankers = rankers if rankers is not None else ({q.line: retriever.ranker for q in queries}
                                                   if retriever.ranker else None)
    if splits is None:
        splits = folds(queries, [f"{bool(q.relevant)}/{q.language == 'en'}" for q in queries])
    features = calibration_features(any(r.reorder for r in rankers.values()) if rankers else False)
    rows, labels, groups, top = _calibration_rows(retriever, gathered, queries, rankers, features)
    x, y, g, is_top = np.asarray(rows, float), np.asarray(labels), np.asarray(groups), np.asarray(top)
    oof = np.zeros(len(y))
    for _, test in splits:
        held = np.isin(g, [queries[i].line for i in test])
        train = ~held
        scaler = StandardScaler().fit(x[train])
        model_ = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced")
        model_.fit(scaler.transform(x[train]), y[train])
        oof[held] = model_.predict_proba(scaler.transform(x[held]))[:, 1]
    top_p = {int(line): float(p) for line, p, t in zip(g, oof, is_top, strict=True) if t}
    answerable = [top_p[q.line] for q in queries if q.relevant and q.line in top_p]
    english = sorted(top_p[q.line] for q in queries if q.relevant and q.language == "en" and q.line in top_p)
    negatives = [top_p[q.line] for q in queries if not q.relevant and q.line in top_p]
    correct = [top_p[int(line)] for line, label, t in zip(g, y, is_top, strict=True) if t and label]
    wrong = [top_p[int(line)] for line, label, t in zip(g, y, is_top, strict=True) if t and not label]
    threshold = english[int((1 - KEEP_ANSWERABLE) * len(english))] if english else 0.5
    threshold = float(np.floor(threshold * 1000) / 1000)
    scaler = StandardScaler().fit(x)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    final = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced").fit((x - scaler.mean_) / scale, y)
    entry: dict[str, Any] = {"features": list(features),
                             "mean": [round(float(v), 6) for v in scaler.mean_],
                             "scale": [round(float(v), 6) for v in scale],
                             "coef": [round(float(v), 6) for v in final.coef_[0]],
                             "intercept": round(float(final.intercept_[0]), 6),
                             "fitted_on": list(sources), "examples": int(len(y)),
                             "oof_auc": auc(answerable, negatives) or 0.0, "suggested_threshold": threshold}
    return Fit(entry=entry, oof_auc=entry["oof_auc"], oof_auc_top_correct=auc(correct, wrong) or 0.0,
               threshold=threshold, caught=(sum(p < threshold for p in negatives), len(negatives)))


def _write(path: Path, model: str, entry: dict) -> None:
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"models": {}}
    data["models"][model] = entry
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Fit and write the ranker and the calibration of the configured encoder."""
    from sopilot.retriever.hybrid import FUSION_ONLY, load

    paths = list(sys.argv[1:] if argv is None else argv) or [str(ROOT / "eval" / "queries.jsonl"),
                                                             str(ROOT / "eval" / "tickets.jsonl")]
    queries: list[Query] = []
    files: dict[int, str] = {}
    for number, path in enumerate(paths):
        for q in read_queries(path):
            queries.append(dataclasses.replace(q, line=number * 100_000 + q.line))
            files[number * 100_000 + q.line] = Path(path).name
    settings = Settings.from_env()
    retriever = load(settings).with_config(FUSION_ONLY)
    model = retriever.embedder.name
    # Gathered with every feature the ranker needs (a ranker present), but in the fusion's order.
    probe = Ranker(model=model, features=("fused",), mean=(0.0,), scale=(1.0,), coef=(1.0,), depth=RANK_DEPTH,
                   reorder=False)
    gatherer = retriever.with_config(dataclasses.replace(FUSION_ONLY, learned=True)).with_ranker(probe, None)
    gathered = {q.line: gatherer.gather(q.query) for q in queries}
    splits = folds(queries, [f"{files[q.line]}/{q.language == 'en'}/{bool(q.relevant)}" for q in queries])
    ranked = fit_ranker(gathered, queries, files, model, splits)
    learned = gatherer.with_ranker(ranked.ranker, None)
    result = fit(learned, queries, model, sorted(set(files.values())), gathered=gathered,
                 rankers=ranked.fold_rankers, splits=splits)
    _write(RANKER_FILE, model, ranked.entry)
    _write(DEFAULT_FILE, model, result.entry)
    for name in (n for n in ranked.oof if not n.endswith("/fusion")):
        print(f"{name}: ranker out of fold " + ", ".join(f"{m} {ranked.oof[name][m]}" for m in RANK_METRICS) +
              "; fusion " + ", ".join(f"{m} {ranked.oof[name + '/fusion'][m]}" for m in RANK_METRICS),
              file=sys.stderr)
    print(f"{model}: ranker top SOP right where the fusion's is wrong {ranked.wins}, the reverse {ranked.losses}: "
          f"{'the ranker re-orders' if ranked.reorder else 'the fusion keeps the order'}; written to {RANKER_FILE}",
          file=sys.stderr)
    print(f"{model}: out-of-fold AUC {result.oof_auc} (answerable vs no match), "
          f"{result.oof_auc_top_correct} (top hit right vs wrong); threshold {result.threshold} keeps "
          f"{KEEP_ANSWERABLE:.0%} of answerable English matched and catches {result.caught[0]} of "
          f"{result.caught[1]} no-match out of fold; written to {DEFAULT_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
