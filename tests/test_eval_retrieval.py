import json
import re

import pytest
from sopilot.eval.baselines import credit
from sopilot.eval.retrieval import auc, evaluate_retrieval, read_queries

from sopilot.cli import main
from sopilot.cli.evaluate import run_eval_retrieval
from sopilot.core.errors import InputError
from sopilot.core.settings import ROOT
from sopilot.core.sop import SOP, Section

METRICS = ["hit@1", "recall@3", "recall@5", "mrr@10", "ndcg@10"]
SMALL = [
    {"query": "customer charged twice for the March invoice, 89 dollars", "relevant": ["A.1", "tel.billing-dispute"]},
    {"query": "forgot my password and the account is locked", "relevant": ["B.1"]},
    {"query": "whole site is down for every user", "relevant": ["B.2"]},
    {"query": "package arrived broken, screen cracked", "relevant": ["C.1"]},
    {"query": "please delete all my personal data under GDPR", "relevant": ["F.2"]},
    {"query": "roaming not working abroad", "relevant": ["tel.roaming"]},
    {"query": "label ahead of the documents", "relevant": ["Z.9"]},
    {"query": "can you recommend a good pizza place near your office?", "relevant": [], "form": "short"},
]
ANSWERABLE = [q for q in SMALL if q["relevant"]]


@pytest.fixture
def small_queries(tmp_path):
    path = tmp_path / "queries.jsonl"
    path.write_text("\n".join(json.dumps(q) for q in SMALL) + "\n\n", encoding="utf-8")
    return path


def test_json_shape_report_and_chart(small_queries, indexed_settings, tmp_path, capsys):
    report_dir = tmp_path / "reports"
    code = run_eval_retrieval(queries=str(small_queries), k=10, as_json=True, settings=indexed_settings,
                              report_dir=report_dir)
    out, err = capsys.readouterr()
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    data = json.loads(out)
    assert list(data)[:len(METRICS) + 5] == ["n", *METRICS, "retriever", "baselines", "missed", "report"]
    assert data["n"] == len(ANSWERABLE)
    assert data["embedding_model"] == "all-MiniLM-L6-v2"
    no_match = data["no_match"]
    assert (no_match["answerable"], no_match["no_match"]) == (len(ANSWERABLE), 1)
    assert 0.0 <= no_match["auc"] <= 1.0 and no_match["caught"] in (0, 1)
    assert [t[0] for t in no_match["trade_off"]] == [round(0.05 * i, 2) for i in range(1, 20)]
    assert data["by_form"]["unlabelled"]["n"] == len(ANSWERABLE)
    assert data["by_language"]["en"]["n"] == len(ANSWERABLE)
    assert data["retriever"] == "hybrid"
    assert set(data["baselines"]) == {"bm25", "dense", "tutorial"}
    for block in [data, *data["baselines"].values()]:
        assert all(0.0 <= block[m] <= 1.0 for m in METRICS)
    assert data["hit@1"] <= (len(SMALL) - 1) / len(SMALL)
    assert any(m["query"] == "label ahead of the documents" and m["relevant"] == ["Z.9"] for m in data["missed"])
    assert all(set(m) == {"query", "relevant", "retrieved"} and len(m["retrieved"]) <= 3 for m in data["missed"])
    assert "'Z.9' (1)" in err
    report = report_dir / "retrieval.md"
    assert data["report"] == str(report)
    text = report.read_text(encoding="utf-8")
    assert f"`sopilot eval retrieval --queries {small_queries} --k 10 --report-dir {report_dir}`" in text
    assert "| tutorial |" in text and "label ahead of the documents" in text
    assert "## No match: the calibrated match probability" in text and "| threshold |" in text
    assert (report_dir / "retrieval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_without_json(small_queries, indexed_settings, tmp_path, capsys):
    code = run_eval_retrieval(queries=str(small_queries), k=5, as_json=False, settings=indexed_settings,
                              report_dir=tmp_path)
    out, _ = capsys.readouterr()
    assert code == 0
    assert re.search(r"^hybrid \(configured\)\s+\d\.\d{4}", out, re.M)
    assert re.search(r"^tutorial\s+\d\.\d{4}", out, re.M)
    assert f"report: {tmp_path / 'retrieval.md'}" in out


@pytest.mark.parametrize(("line", "message"), [
    pytest.param('{"query": "x", "relevant": ["A.1"]', "not valid JSON", id="broken json"),
    pytest.param('["A.1"]', "expected a JSON object", id="not an object"),
    pytest.param('{"relevant": ["A.1"]}', '"query" must be a non-empty string', id="no query"),
    pytest.param('{"query": "x", "relevant": "A.1"}', '"relevant" must be a list of sop_id strings',
                 id="relevant a string"),
    pytest.param('{"query": "x", "relevant": [""]}', '"relevant" must be a list of sop_id strings', id="blank id"),
    pytest.param('{"query": "x", "relevant": [], "language": 3}', '"form" and "language" must be strings',
                 id="language not a string"),
])
def test_malformed_line_exits_2_naming_the_line(line, message, tmp_path, indexed_settings, monkeypatch, capsys):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(SMALL[0]) + "\n\n" + line + "\n", encoding="utf-8")
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(indexed_settings.data_dir))
    code = main(["eval", "retrieval", "--queries", str(path), "--json", "--report-dir", str(tmp_path / "r")])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert f"{path}:3: {message}" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_empty_and_missing_files_are_input_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no queries"):
        read_queries(empty)
    with pytest.raises(InputError, match=re.escape(f"cannot read query file {str(tmp_path / 'nope.jsonl')!r}")):
        read_queries(tmp_path / "nope.jsonl")


def test_unknown_system_lists_valid_ones(small_queries, indexed_settings):
    with pytest.raises(InputError, match=re.escape("unknown system(s) ['bm42']: use any of "
                                                   "['hybrid', 'bm25', 'dense', 'tutorial']")):
        evaluate_retrieval(small_queries, indexed_settings, systems=["bm42"])


def test_library_call_with_progress(small_queries, indexed_settings):
    calls = []
    result = evaluate_retrieval(small_queries, indexed_settings, k=3, systems=["bm25"],
                                progress=lambda done, total, system: calls.append((done, total, system)))
    assert list(result.scores) == ["hybrid", "bm25"]
    assert result.k == 10
    assert calls[-1] == (len(SMALL) + len(ANSWERABLE), len(SMALL) + len(ANSWERABLE), "bm25")
    assert result.unknown == {"Z.9": 1}


def _sop(sop_id, title, source, *texts):
    sections = tuple(Section(kind="procedure", heading="Procedure", text=t, line_start=10 * i, line_end=10 * i + 5)
                     for i, t in enumerate(texts, start=1))
    return SOP(sop_id=sop_id, title=title, category="C", source=source, version=None, effective_date=None,
               answerable=True, sections=sections)


SOPS = {s.sop_id: s for s in [
    _sop("A.1", "Overcharge / Duplicate Charge", "h.md", "1. Verify the transaction against the payment gateway.",
         "Initiate an automated refund to the original payment method."),
    _sop("A.2", "Subscription Cancellation & Refund", "h.md", "1. Verify the subscription plan",
         "and the date of the last payment, then cancel it."),
    _sop("X.1", "Elsewhere", "other.md", "Initiate an automated refund to the original payment method."),
]}


@pytest.mark.parametrize(("chunk", "expected"), [
    pytest.param("- **Procedure:**\n  1. Verify the transaction against the payment gateway.\n"
                 "  - **ACTION:** Initiate an automated refund to the original payment method.", "A.1",
                 id="lines of one SOP"),
    pytest.param("2. Verify the subscription plan and the date of the last payment, then cancel it.\n"
                 "Initiate an automated refund", "A.2", id="line split by our chunker still matches"),
    pytest.param("##### A.2: Sub-Category: Subscription Cancellation & Refund", "A.2", id="bare heading names the SOP"),
    pytest.param("# Global Handbook\n\n**Document Version:** 2.1", None, id="text of no SOP"),
])
def test_tutorial_chunk_credited_to_sop_covering_most_characters(chunk, expected):
    assert credit(chunk, "h.md", SOPS) == expected


def test_tutorial_chunk_credited_only_within_its_file():
    assert credit("Initiate an automated refund to the original payment method.", "other.md", SOPS) == "X.1"


def test_no_match_lines_are_read_and_kept_apart(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"query": "pizza?", "relevant": [], "form": "chat", "language": "IT"}\n', encoding="utf-8")
    [query] = read_queries(path)
    assert (query.relevant, query.form, query.language) == ((), "chat", "it")


@pytest.mark.parametrize(("positives", "negatives", "expected"), [
    pytest.param([0.9, 0.8], [0.1, 0.2], 1.0, id="separated"),
    pytest.param([0.1], [0.9], 0.0, id="reversed"),
    pytest.param([0.5, 0.9], [0.5], 0.75, id="a tie counts half"),
    pytest.param([0.5], [], None, id="no negatives"),
])
def test_auc_worked_by_hand(positives, negatives, expected):
    assert auc(positives, negatives) == expected


def test_tickets_set_covers_every_form_language_and_sop(indexed_settings, retriever):
    tickets = read_queries(ROOT / "eval" / "tickets.jsonl")
    assert len(tickets) >= 150
    assert {q.form for q in tickets} >= {"email", "thread", "chat", "note", "messy", "short"}
    assert sum(not q.relevant for q in tickets) >= 15
    assert sum(q.language != "en" for q in tickets) >= 15
    answerable = {s for s, sop in retriever.sops.items() if sop.answerable}
    assert answerable <= {r for q in tickets for r in q.relevant}


def test_hybrid_at_least_as_good_as_tutorial_on_shipped_queries(indexed_settings):
    result = evaluate_retrieval(ROOT / "eval" / "queries.jsonl", indexed_settings, systems=["tutorial"])
    assert result.n >= 200
    assert result.unknown == {}
    assert result.scores["hybrid"]["hit@1"] >= result.scores["tutorial"]["hit@1"]
