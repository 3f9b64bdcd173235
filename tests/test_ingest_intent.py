"""Ingest changes what it was asked to: a full rebuild, an update of some documents, or a removal.

And a served SOP is never replaced by another document's claim to its sop_id.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sopilot.ingest.pipeline import ingest
from sopilot.ingest.store import Store

from sopilot.cli import main
from sopilot.core.settings import Settings
from tests.conftest import KNOWLEDGE
from tests.fixtures.docs.render import markdown_to_docx

LOYALTY = ("# Loyalty Points\n\n## Procedure\n\n1. Look up the member's loyalty account.\n"
           "2. Add the missing loyalty points for the purchase.\n3. Tell the member the new points balance.\n")
RETURNS = "# Returns\n\n## R.1: Sub-Category: Late Return\n\n- **Procedure:**\n  1. Check the order date.\n"
DRAFT = "# Returns Draft\n\n## R.1: Sub-Category: Late Return (draft)\n\n- **Procedure:**\n  1. Refund everything.\n"


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


@pytest.fixture
def env(knowledge, settings, monkeypatch) -> Settings:
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SOPILOT_KNOWLEDGE_DIR", str(knowledge))
    return Settings.from_env()


def _run(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(["ingest", *argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def _served(settings: Settings) -> dict[str, str]:
    return {meta["sop_id"]: meta["source"] for _, _, meta in Store.for_settings(settings).iter_chunks()}


def test_ingesting_one_document_adds_it_and_keeps_every_other_sop(env, capsys, tmp_path, embedder):
    assert _run(capsys)[0] == 0
    before = _served(env)
    upload = markdown_to_docx(LOYALTY, tmp_path / "loyalty points.docx")
    code, report, _ = _run(capsys, str(upload))
    assert code == 0
    assert report["mode"] == "update"
    assert [c["sop_id"] for c in report["added"]] == ["loyalty-points"]
    assert report["removed"] == [] and report["changed"] == []
    assert len(report["kept"]) == len(before) == 39
    assert _served(env) == {**before, "loyalty-points": "loyalty points.docx"}
    from sopilot.retriever.hybrid import load

    retriever = load(env)
    assert retriever.search("I was charged twice for the same invoice", k=1)[0].sop_id == "A.1"
    assert retriever.search("my loyalty points are missing after the purchase", k=1)[0].sop_id == "loyalty-points"


def test_updating_a_document_changes_only_its_sops(env, knowledge, capsys):
    assert _run(capsys)[0] == 0
    telecom = knowledge / "telecom-sops.txt"
    text = telecom.read_text(encoding="utf-8")
    telecom.write_text(text.replace("Step 3: Validate billing period and amount",
                                    "Step 3: Validate the billing period, amount and tax"), encoding="utf-8")
    code, report, err = _run(capsys, str(telecom))
    assert code == 0
    assert [c["sop_id"] for c in report["changed"]] == ["tel.billing-dispute"]
    assert report["added"] == [] and report["removed"] == [] and len(report["kept"]) == 38


def test_remove_takes_out_one_document_and_says_so(env, knowledge, capsys, tmp_path):
    (knowledge / "returns.md").write_text(RETURNS, encoding="utf-8")
    assert _run(capsys)[0] == 0
    code, report, _ = _run(capsys, "--remove", "returns.md")
    assert code == 0 and report["mode"] == "remove"
    assert report["removed"] == [{"sop_id": "R.1", "source": "returns.md"}]
    assert len(report["kept"]) == 39 and "R.1" not in _served(env)
    code, report, _ = _run(capsys, "--remove", "never-ingested.md")
    assert code == 2 and report["skipped"][0]["source"] == "never-ingested.md"
    assert "not in the index" in report["skipped"][0]["reason"]


def test_a_full_ingest_reports_documents_gone_from_the_knowledge_dir_as_removed(env, knowledge, capsys):
    (knowledge / "returns.md").write_text(RETURNS, encoding="utf-8")
    assert _run(capsys)[0] == 0
    (knowledge / "returns.md").unlink()
    code = main(["ingest"])
    err = capsys.readouterr().err
    assert code == 0
    assert "removed: R.1 (returns.md)" in err
    assert "added: none" in err and "changed: none" in err and "kept: 39 SOPs" in err


def test_a_served_sop_is_never_replaced_by_another_files_claim(env, knowledge, capsys):
    (knowledge / "returns.md").write_text(RETURNS, encoding="utf-8")
    assert _run(capsys)[0] == 0
    (knowledge / "a-returns-draft.md").write_text(DRAFT, encoding="utf-8")  # sorts before the owner
    code, report, _ = _run(capsys)
    assert code == 2
    assert [s["source"] for s in report["skipped"]] == ["a-returns-draft.md"]
    assert "'R.1' is already defined in returns.md" in report["skipped"][0]["reason"]
    assert _served(env)["R.1"] == "returns.md"
    assert main(["ingest", str(knowledge / "a-returns-draft.md")]) == 2
    assert "nothing to ingest (a-returns-draft.md: sop_id 'R.1' is already defined in returns.md" in \
        capsys.readouterr().err
    assert _served(env)["R.1"] == "returns.md"


def test_the_catalog_can_reassign_an_id_on_purpose(env, knowledge, capsys):
    (knowledge / "returns.md").write_text(RETURNS, encoding="utf-8")
    assert _run(capsys)[0] == 0
    (knowledge / "returns-v2.md").write_text(DRAFT.replace("R.1: Sub-Category: ", ""), encoding="utf-8")
    catalog = knowledge / "catalog.yaml"
    catalog.write_text(catalog.read_text(encoding="utf-8") + "  returns-v2.md:\n    sop_id: R.1\n", encoding="utf-8")
    code, report, _ = _run(capsys, str(knowledge / "returns-v2.md"))
    assert code == 0
    assert report["changed"] == [{"sop_id": "R.1", "source": "returns-v2.md"}]
    assert _served(env)["R.1"] == "returns-v2.md"


def test_a_served_document_that_breaks_keeps_serving_what_it_served(env, knowledge, capsys):
    assert _run(capsys)[0] == 0
    (knowledge / "telecom-sops.txt").write_bytes(b"SOP: Broken\n\xff\xfe\xfa not UTF-8")
    code, report, _ = _run(capsys)
    assert code == 2 and report["skipped"][0]["source"] == "telecom-sops.txt"
    assert {"tel.billing-dispute", "tel.roaming"} <= set(report["sop_ids"])
    assert report["removed"] == [] and len(report["kept"]) == 39


def test_the_library_api_says_the_same(env, knowledge, tmp_path):
    first = ingest(None, env)
    (tmp_path / "returns.md").write_text(RETURNS, encoding="utf-8")
    update = ingest([tmp_path / "returns.md"], env)
    assert update.mode == "update" and [c.sop_id for c in update.changes.added] == ["R.1"]
    assert set(update.sop_ids) == set(first.sop_ids) | {"R.1"}
    assert update.to_json()["sops"] == 40
