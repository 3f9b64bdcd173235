"""Hybrid retrieval over the shipped knowledge base, embedded and through a `chroma run` server."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from sopilot.retriever.fusion import normalized_sum, ranking, rrf
from sopilot.retriever.query import QueryNormalizer, defined_abbreviations

from sopilot.cli import main
from sopilot.core.errors import InputError
from tests.conftest import free_port


@pytest.mark.parametrize(("query", "sop_id"), [
    pytest.param("customer double charged $180, can I refund?", "A.1", id="amount and refund"),
    pytest.param("add 3 more seats to their plan, all licences in use", "ops.licenses", id="licences"),
    pytest.param("partner engineer wants write access to debug", "K.2", id="partner access"),
    pytest.param("customer wants an export of all their account data", "F.1", id="subject access"),
    pytest.param("recharged the wrong plan by mistake, txn id 8812", "tel.wrong-recharge", id="telecom"),
])
def test_the_matching_sop_ranks_first(retriever, query, sop_id):
    hits = retriever.search(query, k=5)
    assert hits[0].sop_id == sop_id
    assert len({h.sop_id for h in hits}) == len(hits) == 5


def test_a_hit_hands_over_the_whole_sop(retriever):
    hit = retriever.search("add additional licenses for new users", k=1)[0]
    assert hit.sop_id == "ops.licenses"
    assert hit.sop.text_of("procedure").count("\n") == 8
    assert "Ask for confirmation to proceed" in hit.sop.text_of("response_template")
    assert 0.0 < hit.dense <= 1.0 and hit.score == 1.0


def test_the_authoring_template_is_never_retrieved(retriever):
    for query in ("SOP authoring template owner approver macro", "[Name / title — keeps this SOP current]"):
        assert "sop.template" not in [h.sop_id for h in retriever.search(query, k=10)]


def test_category_filter_keeps_only_that_category(retriever):
    hits = retriever.search("refund", k=5, category="billing & payment")
    assert {h.sop_id for h in hits} <= {"A.1", "A.2"} and hits


@pytest.mark.parametrize(("kwargs", "message"), [
    pytest.param({"k": 0}, "k must be greater than 0. Currently, k is 0", id="k zero"),
    pytest.param({"category": "Gardening"}, "unknown category 'Gardening': use one of", id="unknown category"),
])
def test_bad_arguments_are_named(retriever, kwargs, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        retriever.search("refund", **kwargs)


def test_queries_are_normalised_from_the_documents_own_vocabulary():
    normalizer = QueryNormalizer(["The Technical Account Manager (TAM) handles the subscription refund.",
                                  "Escalate to the Data Protection Officer (DPO)."])
    assert normalizer.correct("subscriptoin") == "subscription"
    assert normalizer.correct("refnd") == "refund"
    assert normalizer.correct("zebra") == "zebra"
    assert "Technical Account Manager" in normalizer.normalize("ping the TAM")
    assert "amount" in normalizer.normalize("charged USD 180 twice")


def test_abbreviations_are_found_where_documents_define_them():
    found = defined_abbreviations(["Page the Security Incident Response Team (SIRT) now.",
                                   "Network Operations Center (NOC) investigates.", "Call (555) now."])
    assert found["sirt"] == "Security Incident Response Team" and found["noc"] == "Network Operations Center"
    assert "555" not in found


def test_rrf_worked_by_hand():
    scores = rrf({"a": ["x", "y"], "b": ["y", "z"]}, k=1)
    assert scores == pytest.approx({"x": 1 / 2, "y": 1 / 3 + 1 / 2, "z": 1 / 3})
    assert ranking(scores) == ["y", "x", "z"]


def test_normalized_sum_worked_by_hand():
    fused = normalized_sum({"d": {"x": 0.9, "y": 0.5}, "l": {"y": 4.0, "z": 2.0}}, weights={"d": 1.0, "l": 0.5})
    assert fused == pytest.approx({"x": 1.0, "y": 0.5, "z": 0.0})


def test_batch_ranks_every_line_in_order(indexed_settings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(indexed_settings.data_dir))
    queries = tmp_path / "q.jsonl"
    queries.write_text("\n".join(json.dumps({"query": q}) for q in
                                 ["password reset link", "shipping status of my order", "roaming not working"]))
    assert main(["retrieve", "--batch", str(queries), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["query"] for x in lines] == ["password reset link", "shipping status of my order", "roaming not working"]
    assert [x["hits"][0]["sop_id"] for x in lines] == ["B.1", "H.1", "tel.roaming"]
    assert all(len(x["hits"]) == 10 for x in lines)


def test_batch_with_a_malformed_line_names_it(indexed_settings, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(indexed_settings.data_dir))
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "refund"}\n{"query": oops}\n')
    assert main(["retrieve", "--batch", str(queries), "--json"]) == 2
    assert "q.jsonl:2: not valid JSON" in capsys.readouterr().err


def test_retrieve_before_any_ingest_says_what_to_do(settings, capsys, monkeypatch):
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(settings.data_dir))
    assert main(["retrieve", "refund", "--json"]) == 2
    assert "run `sopilot ingest` first" in capsys.readouterr().err


@pytest.fixture
def chroma_server(tmp_path: Path):
    """A real `chroma run` server on 127.0.0.1, stopped after the test."""
    port = free_port()
    chroma = Path(os.sys.executable).with_name("chroma")
    process = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("chroma run did not start") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.server
def test_a_chroma_server_serves_the_same_retrieval(chroma_server, tmp_path, retriever):
    from sopilot.ingest.pipeline import ingest
    from sopilot.retriever.hybrid import load

    from sopilot.core.settings import Settings

    settings = Settings.from_env({}, data_dir=tmp_path / "client", chroma_url=chroma_server)
    first = ingest(None, settings, progress=False)
    assert ingest(None, settings, progress=False).version == first.version
    remote = load(settings)
    assert not (tmp_path / "client" / "chroma").exists()
    for query in ("customer charged twice for one invoice", "engineer left the company, revoke access",
                  "who do I notify for a critical outage?"):
        assert [h.sop_id for h in remote.search(query, k=5)] == [h.sop_id for h in retriever.search(query, k=5)]


def test_an_unreachable_chroma_server_is_reported(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SOPILOT_CHROMA_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["retrieve", "refund"]) == 1
    assert "cannot reach the Chroma server" in capsys.readouterr().err


def test_the_encoders_whole_words_are_known_to_the_normaliser(tmp_path, retriever):
    from types import SimpleNamespace

    from sopilot.retriever.hybrid import vocabulary_words

    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"vocab": {"[CLS]": 0, "stuck": 1, "##ing": 2,
                                                                            "contractor": 3, "42": 4}}}),
                                             encoding="utf-8")
    assert vocabulary_words(SimpleNamespace(path=tmp_path)) == {"stuck", "contractor"}
    assert vocabulary_words(SimpleNamespace(path=tmp_path / "absent")) == frozenset()
    assert vocabulary_words(object()) == frozenset()
    assert retriever.normalizer.normalize("contractor stuck, refnd please") == "contractor stuck, refund please"
