import math
import random
import re

import pytest
from sopilot.eval.metrics import DEFAULT_METRICS, evaluate, parse_metric, score

from sopilot.core.errors import InputError

L2, L3, L5 = math.log2(2), math.log2(3), math.log2(5)


@pytest.mark.parametrize(("ranking", "relevant", "metric", "expected"), [
    pytest.param(["A.1", "B.1"], {"A.1"}, "hit@1", 1.0, id="hit@1 relevant first"),
    pytest.param(["B.1", "A.1"], {"A.1"}, "hit@1", 0.0, id="hit@1 relevant second"),
    pytest.param(["B.1", "A.1"], {"A.1"}, "hit@2", 1.0, id="hit@2 relevant second"),
    pytest.param([], {"A.1"}, "hit@5", 0.0, id="hit empty ranking"),
    pytest.param(["A.1", "B.1", "C.1"], {"A.1", "C.1"}, "recall@3", 1.0, id="recall both found"),
    pytest.param(["A.1", "B.1", "C.1"], {"A.1", "C.1"}, "recall@2", 0.5, id="recall one of two in top 2"),
    pytest.param(["B.1", "C.1", "D.1"], {"A.1"}, "recall@3", 0.0, id="recall none found"),
    pytest.param(["A.1", "A.1", "B.1"], {"A.1", "B.1"}, "recall@2", 1.0, id="recall repeated id counts once"),
    pytest.param(["B.1", "C.1", "A.1"], {"A.1"}, "mrr@10", 1 / 3, id="mrr third"),
    pytest.param(["B.1", "C.1", "A.1"], {"A.1"}, "mrr@2", 0.0, id="mrr beyond cutoff"),
    pytest.param(["B.1", "A.1", "C.1"], {"A.1", "C.1"}, "mrr@10", 0.5, id="mrr first relevant counts"),
    pytest.param(["A.1"], {"A.1"}, "ndcg@10", 1.0, id="ndcg perfect"),
    pytest.param(["B.1", "A.1"], {"A.1"}, "ndcg@10", (1 / L3) / (1 / L2), id="ndcg relevant second"),
    pytest.param(["B.1", "A.1", "C.1", "D.1"], {"A.1", "D.1"}, "ndcg@10", (1 / L3 + 1 / L5) / (1 / L2 + 1 / L3),
                 id="ndcg two relevant at 2 and 4"),
    pytest.param(["A.1", "B.1", "C.1"], {"A.1", "X.9", "Y.9"}, "ndcg@2", (1 / L2) / (1 / L2 + 1 / L3),
                 id="ndcg ideal truncated at k"),
    pytest.param(["A.1"], set(), "ndcg@10", 0.0, id="no relevant ids scores 0"),
    pytest.param(["A.1"], set(), "recall@5", 0.0, id="no relevant ids recall 0"),
])
def test_metric_by_hand(ranking, relevant, metric, expected):
    assert score(ranking, relevant, metric) == pytest.approx(expected)


def test_evaluate_means_and_rounds():
    runs = {"q1": ["A.1", "B.1"], "q2": ["B.1", "C.1", "A.1"], "q3": []}
    qrels = {"q1": {"A.1"}, "q2": {"A.1"}, "q3": {"A.1"}}
    result = evaluate(runs, qrels, ["hit@1", "mrr@10", "recall@3"])
    assert result == {"hit@1": round(1 / 3, 4), "mrr@10": round((1 + 1 / 3) / 3, 4), "recall@3": round(2 / 3, 4)}
    assert list(result) == ["hit@1", "mrr@10", "recall@3"]


def test_evaluate_query_missing_from_runs_scores_zero():
    assert evaluate({}, {"q1": {"A.1"}}, ["hit@1"]) == {"hit@1": 0.0}


def test_default_metrics_are_the_contract_ones():
    assert evaluate({"q": ["A.1"]}, {"q": {"A.1"}}) == {m: 1.0 for m in DEFAULT_METRICS}
    assert DEFAULT_METRICS == ("hit@1", "recall@3", "recall@5", "mrr@10", "ndcg@10")


@pytest.mark.parametrize("name", [
    pytest.param("precision@5", id="unknown metric"),
    pytest.param("recall", id="no cutoff"),
    pytest.param("recall@0", id="zero cutoff"),
    pytest.param("recall@-1", id="negative cutoff"),
])
def test_bad_metric_name_lists_valid_ones(name):
    with pytest.raises(InputError, match=re.escape(f"unknown metric {name!r}: use one of hit@k, recall@k, mrr@k, "
                                                   "ndcg@k with k a positive integer, e.g. 'recall@5'")):
        parse_metric(name)


def test_empty_qrels_is_an_error():
    with pytest.raises(InputError, match="no queries to evaluate"):
        evaluate({}, {})


@pytest.mark.filterwarnings("ignore:unsafe cast")
def test_agrees_with_ranx_on_random_rankings():
    ranx = pytest.importorskip("ranx")
    rng = random.Random(42)
    docs = [f"{letter}.{n}" for letter in "ABCDEFGH" for n in (1, 2)]
    runs, qrels = {}, {}
    for i in range(300):
        qid = f"q{i}"
        ranking = rng.sample(docs, rng.randint(1, 12))
        relevant = set(rng.sample(docs, rng.randint(1, 3)))
        runs[qid], qrels[qid] = ranking, relevant
    ours = evaluate(runs, qrels, ["hit@1", "recall@5", "mrr@10", "ndcg@10"])
    theirs = ranx.evaluate(
        ranx.Qrels({q: {d: 1 for d in rel} for q, rel in qrels.items()}),
        ranx.Run({q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in runs.items()}),
        ["hit_rate@1", "recall@5", "mrr@10", "ndcg@10"],
    )
    assert ours == pytest.approx({"hit@1": theirs["hit_rate@1"], "recall@5": theirs["recall@5"],
                                  "mrr@10": theirs["mrr@10"], "ndcg@10": theirs["ndcg@10"]}, abs=1e-4)
