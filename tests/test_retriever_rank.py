"""The learned ranker: its generic features, its validated coefficients file, and how it re-orders the fusion."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from sopilot.eval.calibrate import calibration_features, fit_ranker_on, folds
from sopilot.eval.retrieval import Query
from sopilot.retriever.calibration import FEATURES as SIGNALS
from sopilot.retriever.calibration import RANK_SIGNALS, Signals, load_calibration
from sopilot.retriever.hybrid import CONDITION_LINE, FUSION_ONLY
from sopilot.retriever.rank import DEFAULT_FILE as RANKER_FILE
from sopilot.retriever.rank import MAX_FEATURES, Ranker, RankerWarning, load_ranker
from sopilot.retriever.rank_features import FEATURES, Evidence, PieceEvidence, rows


def _evidence() -> Evidence:
    first = PieceEvidence.of([("A", "procedure", 0.6), ("A", "automation_rules", 0.5), ("B", "overview", 0.7),
                              ("C", "response_template", 0.2)], weight=1.0)
    second = PieceEvidence.of([("A", "procedure", 0.4), ("B", "overview", 0.3)], weight=0.5)
    return Evidence(pieces=(first, second), dense={"A": 0.55, "B": 0.6, "C": 0.2},
                    lexical={"A": 3.0, "C": 1.0}, title={"A": 1.0}, conditions={"A": 2.0},
                    fused={"A": 1.3, "B": 1.0, "C": 0.2}, fused_weight=1.5, coverage={"A": 0.5, "B": 0.25})


def test_piece_evidence_keeps_best_second_best_and_best_per_section_group():
    piece = PieceEvidence.of([("A", "procedure", 0.6), ("A", "automation_rules", 0.5), ("A", "quality", 0.55),
                              ("B", "glossary", 0.7), ("B", "disclaimer", 0.9)], weight=1.0)
    assert piece.best == {"A": 0.6, "B": 0.9} and piece.second == {"A": 0.55, "B": 0.7}
    assert piece.by_group["procedure"] == {"A": 0.6} and piece.by_group["rules"] == {"A": 0.5}
    assert piece.by_group["overview"] == {"B": 0.7} and piece.by_group["template"] == {}
    assert piece.floor == 0.5


def test_features_worked_by_hand():
    first = dict(zip(FEATURES, rows(_evidence(), ["A"])[0], strict=True))
    assert first == pytest.approx({
        "dense": 0.55, "dense_piece_max": 0.6,
        "dense_top2": (1.0 * 0.55 + 0.5 * 0.4) / 1.5,  # piece 1: (0.6 + 0.5) / 2; piece 2: one chunk
        "dense_overview": (1.0 * 0.2 + 0.5 * 0.3) / 1.5,  # no overview chunk: each piece's floor
        "dense_procedure": (0.6 + 0.5 * 0.4) / 1.5, "dense_rules": (0.5 + 0.5 * 0.3) / 1.5,
        "dense_template": (0.2 + 0.5 * 0.3) / 1.5,
        "dense_norm": 0.35 / 0.4, "dense_gap": 0.05, "dense_rank": math.log1p(1),
        "bm25_log": math.log1p(3.0), "bm25_rel": 1.0, "bm25_rank": 0.0, "bm25_title_log": math.log1p(1.0),
        "bm25_title_rel": 1.0, "bm25_conditions_log": math.log1p(2.0), "coverage": 0.5,
        "fused": 1.3 / 1.5, "fused_gap": 0.0})


def test_an_sop_no_lexical_run_reached_ranks_after_every_one_it_did():
    row = dict(zip(FEATURES, rows(_evidence(), ["B"])[0], strict=True))
    assert row["bm25_log"] == 0.0 and row["bm25_rel"] == 0.0 and row["bm25_rank"] == math.log1p(3)


def test_condition_lines_are_rules_and_triggers():
    assert CONDITION_LINE.match("  - **IF** the ticket priority is **Low OR Medium**:")
    assert CONDITION_LINE.match("-   **Trigger**: Issue cannot be resolved within [TIME]")
    assert not CONDITION_LINE.match("1. Confirm the request details (if relevant).")


def _ranker(reorder: bool = True, depth: int = 2) -> Ranker:
    """Scores by lexical evidence alone, so it disagrees with the fusion on the example."""
    return Ranker(model="m", features=("bm25_log",), mean=(0.0,), scale=(1.0,), coef=(1.0,), depth=depth,
                  reorder=reorder)


def test_the_ranker_reorders_only_the_head_of_the_fusion():
    order, scores = _ranker(depth=2).rerank(_evidence(), ["B", "A", "C"])
    assert order == ["A", "B", "C"] and set(scores) == {"A", "B"}
    assert scores["A"] == pytest.approx(math.log1p(3.0))


def test_a_ranker_that_did_not_beat_the_fusion_scores_but_keeps_its_order():
    order, scores = _ranker(reorder=False, depth=3).rerank(_evidence(), ["B", "A", "C"])
    assert order == ["B", "A", "C"] and scores["A"] > scores["C"] > scores["B"]


def _entry(**changes) -> dict:
    entry = {"features": ["dense", "fused"], "mean": [0.3, 0.5], "scale": [0.1, 0.2], "coef": [1.0, 2.0],
             "depth": 20, "reorder": True, "fitted_on": ["queries.jsonl"], "examples": 10}
    return entry | changes


def test_a_valid_ranker_file_loads(tmp_path):
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps({"models": {"m": _entry()}}), encoding="utf-8")
    ranker = load_ranker("m", path)
    assert ranker is not None and ranker.features == ("dense", "fused") and ranker.depth == 20


@pytest.mark.parametrize(("changes", "problem"), [
    pytest.param({"features": ["dense", "sop_id"]}, "unknown features", id="a feature that is not generic"),
    pytest.param({"coef": [1.0]}, "must each hold 2", id="shapes"),
    pytest.param({"scale": [0.0, 1.0]}, "greater than 0", id="zero scale"),
    pytest.param({"features": list(FEATURES) + ["dense"] * (MAX_FEATURES - len(FEATURES) + 1)}, "at most",
                 id="too many features"),
    pytest.param({"reorder": "sometimes"}, "reorder", id="reorder not a boolean"),
])
def test_an_invalid_ranker_file_falls_back_to_the_fusion_and_says_why(tmp_path, changes, problem):
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps({"models": {"m": _entry(**changes)}}), encoding="utf-8")
    with pytest.warns(RankerWarning, match=f"{path} is not a valid ranker .*{problem}.*fusion ranks instead"):
        assert load_ranker("m", path) is None


def test_a_missing_ranker_file_or_encoder_falls_back_to_the_fusion(tmp_path):
    with pytest.warns(RankerWarning, match="cannot read the ranker .*fusion ranks instead"):
        assert load_ranker("m", tmp_path / "absent.json") is None
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps({"models": {"m": _entry()}}), encoding="utf-8")
    with pytest.warns(RankerWarning, match="holds no ranker for the encoder 'other'"):
        assert load_ranker("other", path) is None
    path.write_text("{not json", encoding="utf-8")
    with pytest.warns(RankerWarning, match="not JSON"):
        assert load_ranker("x", path) is None


def test_the_shipped_ranker_records_its_out_of_fold_comparison(retriever):
    ranker = load_ranker(retriever.embedder.name)
    assert ranker is not None and len(ranker.features) <= MAX_FEATURES
    entry = json.loads(RANKER_FILE.read_text(encoding="utf-8"))
    oof = entry["models"][retriever.embedder.name]["oof"]
    for name in ("queries.jsonl", "tickets.jsonl"):
        assert {"hit@1", "recall@5", "mrr@10"} <= set(oof[name]) and name + "/fusion" in oof
    beats = all(oof[n][m] >= oof[n + "/fusion"][m] for n in oof if "/" not in n for m in oof[n])
    assert ranker.reorder <= beats, "the ranker may re-order only where it did not lose to the fusion out of fold"


def test_a_reordering_ranker_changes_the_retrievers_order_and_the_fusion_config_does_not(retriever):
    query = "customer wants an export of all their account data"
    fusion = [h.sop_id for h in retriever.with_ranker(None, retriever.calibration).search(query, k=5)]
    by_rank = Ranker(model="m", features=("bm25_rank",), mean=(0.0,), scale=(1.0,), coef=(1.0,), depth=5)
    learned = retriever.with_ranker(by_rank, retriever.calibration)
    reversed_head = [h.sop_id for h in learned.search(query, k=5)]
    assert reversed_head != fusion and set(reversed_head) <= set(learned.gather(query).order[:5])
    assert [h.sop_id for h in learned.with_config(FUSION_ONLY).search(query, k=5)] == fusion


def test_a_ranker_is_fitted_from_rows_and_labels():
    rows_ = [[0.9, 0.1], [0.2, 0.3], [0.8, 0.9], [0.1, 0.8], [0.7, 0.4], [0.3, 0.2]]
    ranker = fit_ranker_on(rows_, [1, 0, 1, 0, 1, 0], "m", ("dense", "fused"))
    assert ranker.coef[0] > 0 and ranker.depth >= 2 and len(ranker.features) == len(ranker.coef)


def test_folds_hold_every_file_and_never_split_a_query():
    queries = [Query(line=n * 100_000 + i, query=f"q{i}", relevant=("A",) if i % 4 else (),
                     language="en" if i % 2 else "de") for n in range(2) for i in range(40)]
    strata = [f"{q.line // 100_000}/{q.language}/{bool(q.relevant)}" for q in queries]
    seen: list[int] = []
    for train, test in folds(queries, strata):
        assert not set(train) & set(test)
        assert {queries[i].line // 100_000 for i in test} == {0, 1}
        seen += test
    assert sorted(seen) == list(range(len(queries)))


def test_the_calibration_weighs_the_rankers_signals_only_where_the_ranker_orders(tmp_path):
    assert calibration_features(False) == SIGNALS and calibration_features(True) == SIGNALS + RANK_SIGNALS
    signals = Signals.of(order=["A", "B"], fused={"A": 1.5, "B": 0.5}, dense={"A": 0.6, "B": 0.7},
                         lexical={"A": 3.0}, total_weight=1.5, english=True, rank_scores={"A": 2.0, "B": -1.0})
    assert signals.row(0)[-2:] == (2.0, 3.0) and len(signals.row(0)) == len(SIGNALS) + len(RANK_SIGNALS)
    path = tmp_path / "calibration.json"
    names = list(SIGNALS + RANK_SIGNALS)
    entry = {"features": names, "mean": [0.0] * len(names), "scale": [1.0] * len(names),
             "coef": [0.0] * (len(names) - 2) + [1.0, 0.0], "intercept": -2.0, "fitted_on": ["q"], "examples": 1,
             "oof_auc": 0.5, "suggested_threshold": 0.5}
    path.write_text(json.dumps({"models": {"m": entry}}), encoding="utf-8")
    calibration = load_calibration("m", path)
    assert calibration.probabilities(signals, 2) == pytest.approx([0.5, 1 / (1 + math.exp(3.0))])
    fusion_only = dataclasses.replace(signals, ranked=())
    assert calibration.probability(fusion_only.row(0)) == pytest.approx(1 / (1 + math.exp(2.0)))
