"""Ingest: bad files are skipped and named, the index is versioned and never half-written."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sopilot.ingest.pipeline import ingest
from sopilot.ingest.store import Store, connect

from sopilot.cli import main
from tests.conftest import KNOWLEDGE

GOOD = "# Returns Policy\n\n## R.1: Sub-Category: Late Return\n\n- **Procedure:**\n  1. Check the order date.\n"


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF with the given text lines (written by hand: no PDF library writes text)."""
    content = "BT /F1 12 Tf 72 720 Td 14 TL " + " ".join(f"({x}) Tj T*" for x in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    """A copy of the shipped knowledge base that a test may spoil."""
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


def test_ingesting_twice_leaves_the_same_index_and_embeds_nothing_new(settings):
    first = ingest(None, settings, progress=False)
    second = ingest(None, settings, progress=False)
    assert first.version == second.version
    assert (first.embedded, second.embedded) == (first.chunks, 0)
    store = Store(connect(settings), settings.collection)
    assert store.active().count() == first.chunks


def test_chunks_fit_the_embedding_model_and_carry_their_metadata(settings, embedder):
    ingest(None, settings, progress=False)
    chunks = list(Store(connect(settings), settings.collection).iter_chunks())
    assert max(embedder.count_tokens(text) for _, text, _ in chunks) <= settings.chunk_tokens
    for _, text, meta in chunks:
        assert {"sop_id", "title", "category", "section", "source"} <= set(meta)
        assert text.startswith(f"{meta['title']} | {meta['category']} | ")
    a1 = [m for _, _, m in chunks if m["sop_id"] == "A.1"]
    assert {m["version"] for m in a1} == {"2.1"} and {m["effective_date"] for m in a1} == {"2023-10-26"}


@pytest.mark.parametrize(("name", "content", "reason"), [
    pytest.param("empty.md", b"  \n\n", "is empty", id="empty file"),
    pytest.param("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file", id="binary file"),
    pytest.param("latin1.txt", "SOP: Café policy\n\nStep 1: ça va".encode("latin-1"), "is not valid UTF-8",
                 id="undecodable text"),
    pytest.param("sheet.xlsx", b"PK\x03\x04", "unsupported type '.xlsx'", id="unsupported type"),
    pytest.param("broken.docx", b"not a zip", "cannot be opened as a Word document", id="corrupt docx"),
    pytest.param("broken.pdf", b"%PDF-1.4 garbage", "cannot be read as PDF", id="corrupt pdf"),
    pytest.param("copy.md", b"# Copy\n\n## A.1: Sub-Category: Another Overcharge\n\n1. Do something.\n",
                 "sop_id 'A.1' is already defined in support-automation-handbook.md", id="duplicate sop_id"),
])
def test_a_bad_file_is_skipped_named_and_the_others_ingested(knowledge, settings, capsys, monkeypatch,
                                                             name, content, reason):
    (knowledge / name).write_bytes(content)
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SOPILOT_KNOWLEDGE_DIR", str(knowledge))
    assert main(["ingest", str(knowledge), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert [s["source"] for s in report["skipped"]] == [name]
    assert reason in report["skipped"][0]["reason"]
    assert {"A.1", "ops.licenses", "tel.roaming"} <= set(report["sop_ids"])


def test_word_and_pdf_sops_are_ingested_and_retrievable(knowledge, settings):
    import docx

    document = docx.Document()
    document.add_heading("Warranty Extension", level=1)
    document.add_heading("Procedure", level=2)
    document.add_paragraph("Confirm the serial number of the espresso machine.", style="List Number")
    document.add_paragraph("Offer the two-year warranty extension for 49 dollars.", style="List Number")
    document.save(knowledge / "warranty-extension.docx")
    (knowledge / "gift-cards.pdf").write_bytes(minimal_pdf([
        "SOP: Gift Card Balance", "", "Procedure", "", "Step 1: Ask for the gift card number.",
        "Step 2: Read the remaining balance from the voucher system.",
    ]))
    report = ingest([knowledge], settings.__class__.from_env({}, data_dir=settings.data_dir,
                                                             knowledge_dir=knowledge), progress=False)
    assert report.skipped == []
    ids = {s.sop_id for s in report.sops}
    assert {"warranty-extension", "gift-card-balance"} <= ids
    from sopilot.retriever.hybrid import load

    retriever = load(settings)
    assert retriever.search("espresso machine warranty extension price", k=1)[0].sop_id == "warranty-extension"
    assert retriever.search("how much is left on my gift card voucher", k=1)[0].sop_id == "gift-card-balance"


def test_nothing_readable_keeps_the_previous_index(settings, tmp_path):
    first = ingest(None, settings, progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.md").write_text("")
    from sopilot.core.errors import UserError

    with pytest.raises(UserError, match="nothing to ingest .*empty.md: is empty.*previous index"):
        ingest([bad], settings, progress=False)
    assert Store(connect(settings), settings.collection).active_version() == first.version


def test_a_crash_mid_ingest_leaves_the_previous_index_serving(settings, tmp_path):
    first = ingest(None, settings, progress=False)
    big = tmp_path / "big"
    shutil.copytree(KNOWLEDGE, big)
    for n in range(400):
        (big / f"synthetic-{n:03d}.md").write_text(
            f"# Synthetic {n}\n\n## Z.{n}: Sub-Category: Synthetic procedure {n}\n\n- **Procedure:**\n"
            + "".join(f"  {i}. Step {i} of synthetic procedure {n} about topic {n * 7 % 13}.\n" for i in range(1, 9)),
            encoding="utf-8")
    env = {**os.environ, "SOPILOT_DATA_DIR": str(settings.data_dir), "SOPILOT_KNOWLEDGE_DIR": str(big)}
    process = subprocess.Popen([sys.executable, "-m", "sopilot", "ingest", str(big)], env=env,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "embedding" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line or process.poll() is None, "ingest ended before it started embedding"
        time.sleep(1.0)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    store = Store(connect(settings), settings.collection)
    assert store.active_version() == first.version
    from sopilot.retriever.hybrid import load

    assert load(settings).search("customer was charged twice", k=1)[0].sop_id == "A.1"
    resumed = ingest([big], settings.__class__.from_env({}, data_dir=settings.data_dir, knowledge_dir=big),
                     progress=False)
    assert resumed.version != first.version and len(resumed.sops) == len(first.sops) + 400


def test_lint_finds_placeholders_missing_procedures_and_thresholds(capsys, monkeypatch, settings):
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(settings.data_dir))
    assert main(["lint", "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    placeholders = {(f["sop_id"], f["text"]) for f in findings if f["kind"] == "placeholder"}
    assert placeholders >= {("cs.support", "[NUMBER]"), ("cs.support", "[TIME]")}
    thresholds = {f["text"] for f in findings if f["kind"] == "threshold" and f["sop_id"] == "A.1"}
    assert {"$150.00", "24 hours", "72-hour", "4 business hours"} <= thresholds
    assert ("I.1", "99.9%") in {(f["sop_id"], f["text"].replace("< ", "").replace("<", ""))
                                for f in findings if f["kind"] == "threshold"}
    assert "ops.glossary" in {f["sop_id"] for f in findings if f["kind"] == "no_procedure"}
