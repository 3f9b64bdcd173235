"""Fit the match calibration: a logistic regression over the retriever's signals, validated out of fold.

`python -m sopilot.eval.calibrate [FILE.jsonl ...]` (default: eval/queries.jsonl and
eval/tickets.jsonl) searches every labelled query with the configured retriever, takes the
signals of the SOPs at the first `RANKS` ranks (label: that SOP is relevant; a no-match query
has none), and fits scikit-learn's `LogisticRegression` on standardised features. Quality is
reported out of fold (5 folds grouped by query, fixed seed): the AUC of the top hit's probability,
answerable against no-match queries, and the same for "top hit relevant". The threshold suggested
is the highest that still keeps `KEEP_ANSWERABLE` of the answerable English queries matched out of
fold. The fit on all rows is written to `retriever/calibration.json` under the encoder's name.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sopilot.eval.retrieval import Query, auc, read_queries
from sopilot.retriever.calibration import DEFAULT_FILE, FEATURES

from sopilot.core.settings import ROOT, Settings

RANKS = 3
FOLDS = 5
SEED = 42
KEEP_ANSWERABLE = 0.95


@dataclasses.dataclass(frozen=True, kw_only=True)
class Fit:
    """The fitted coefficients and their out-of-fold quality."""

    entry: dict
    oof_auc: float
    oof_auc_top_correct: float
    threshold: float
    caught: tuple[int, int]
    """(no-match queries below the threshold out of fold, no-match queries)."""


def _rows(retriever, queries: Sequence[Query]):
    rows, labels, groups, top = [], [], [], []
    for query in queries:
        found = retriever.retrieve(query.query, k=RANKS)
        for rank, (hit, row) in enumerate(zip(found.hits, found.signals.rows, strict=False)):
            rows.append(row)
            labels.append(int(hit.sop_id in query.relevant))
            groups.append(query.line if not hasattr(query, "_set") else query.line)
            top.append(rank == 0)
    return rows, labels, groups, top


def fit(retriever, queries: Sequence[Query], model: str, sources: Sequence[str]) -> Fit:
    """Fit on `queries` (line numbers must be unique across files); return the entry for the JSON file."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    rows, labels, groups, top = _rows(retriever, queries)
    x, y, g, is_top = np.asarray(rows, float), np.asarray(labels), np.asarray(groups), np.asarray(top)
    oof = np.zeros(len(y))
    for train, test in GroupKFold(n_splits=FOLDS, shuffle=True, random_state=SEED).split(x, y, g):
        scaler = StandardScaler().fit(x[train])
        model_ = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced")
        model_.fit(scaler.transform(x[train]), y[train])
        oof[test] = model_.predict_proba(scaler.transform(x[test]))[:, 1]
    by_line = {q.line: q for q in queries}
    top_p = {int(line): float(p) for line, p, t in zip(g, oof, is_top, strict=True) if t}
    answerable = [top_p[q.line] for q in queries if q.relevant and q.line in top_p]
    english = sorted(top_p[q.line] for q in queries if q.relevant and q.language == "en" and q.line in top_p)
    negatives = [top_p[q.line] for q in queries if not q.relevant and q.line in top_p]
    correct = [top_p[int(line)] for line, label, t in zip(g, y, is_top, strict=True) if t and label]
    wrong = [top_p[int(line)] for line, label, t in zip(g, y, is_top, strict=True) if t and not label]
    threshold = english[int((1 - KEEP_ANSWERABLE) * len(english))] if english else 0.5
    threshold = float(np.floor(threshold * 1000) / 1000)
    scaler = StandardScaler().fit(x)
    final = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced").fit(scaler.transform(x), y)
    entry: dict[str, Any] = {"features": list(FEATURES), "mean": [round(float(v), 6) for v in scaler.mean_],
             "scale": [round(float(v), 6) for v in scaler.scale_],
             "coef": [round(float(v), 6) for v in final.coef_[0]], "intercept": round(float(final.intercept_[0]), 6),
             "fitted_on": list(sources), "examples": int(len(y)), "oof_auc": auc(answerable, negatives) or 0.0,
             "suggested_threshold": threshold}
    del by_line
    return Fit(entry=entry, oof_auc=entry["oof_auc"], oof_auc_top_correct=auc(correct, wrong) or 0.0,
               threshold=threshold, caught=(sum(p < threshold for p in negatives), len(negatives)))


def main(argv: list[str] | None = None) -> int:
    """Fit and write the calibration of the configured encoder."""
    from sopilot.retriever.hybrid import load

    paths = list(sys.argv[1:] if argv is None else argv) or [str(ROOT / "eval" / "queries.jsonl"),
                                                             str(ROOT / "eval" / "tickets.jsonl")]
    queries: list[Query] = []
    for number, path in enumerate(paths):
        queries += [dataclasses.replace(q, line=number * 100_000 + q.line) for q in read_queries(path)]
    settings = Settings.from_env()
    retriever = load(settings)
    result = fit(retriever, queries, retriever.embedder.name, [Path(p).name for p in paths])
    data = json.loads(DEFAULT_FILE.read_text(encoding="utf-8")) if DEFAULT_FILE.is_file() else {"models": {}}
    data["models"][retriever.embedder.name] = result.entry
    DEFAULT_FILE.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{retriever.embedder.name}: out-of-fold AUC {result.oof_auc} (answerable vs no match), "
          f"{result.oof_auc_top_correct} (top hit right vs wrong); threshold {result.threshold} keeps "
          f"{KEEP_ANSWERABLE:.0%} of answerable English matched and catches {result.caught[0]} of "
          f"{result.caught[1]} no-match out of fold; written to {DEFAULT_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
