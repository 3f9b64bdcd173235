"""Every format read by its structure, and every bad file skipped with a named reason (exit 2).

The shipped Markdown SOPs are rendered to Word (real heading styles, numbering.xml lists,
tables) and to untagged PDF (fonts and positions only) by tests/fixtures/docs/render.py; each
rendering must section exactly as the Markdown does.
"""

from __future__ import annotations

import codecs
import difflib
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import pytest
from sopilot.ingest.catalog import load_catalog
from sopilot.ingest.documents import load_document
from sopilot.ingest.sections import parse_sops

from sopilot.cli import main
from tests.conftest import KNOWLEDGE
from tests.fixtures.docs.render import markdown_to_docx, markdown_to_pdf

MARKDOWN_SOPS = ("support-automation-handbook.md", "customer-operations-sop-pack.md", "customer-service-and-support.md")
RETURNS = ("# Returns Policy\n\n## R.1: Sub-Category: Late Return\n\n- **Procedure:**\n  1. Check the order date.\n"
           "  2. Offer store credit when the order is older than 30 days.\n")


def _words(text: str) -> str:
    return " ".join(re.sub(r"[*_`|#>•:\-–]+", " ", text).split()).lower()


def _shape(sops):
    return [(s.sop_id, s.title, s.category, s.version, s.effective_date, s.answerable,
             [(c.kind, c.heading) for c in s.sections]) for s in sops]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """Each shipped Markdown SOP file as .docx and .pdf."""
    out = tmp_path_factory.mktemp("rendered")
    found: dict[str, dict[str, Path]] = {}
    for name in MARKDOWN_SOPS:
        markdown = (KNOWLEDGE / name).read_text(encoding="utf-8")
        stem = Path(name).stem
        found[name] = {"docx": markdown_to_docx(markdown, out / f"{stem}.docx"),
                       "pdf": markdown_to_pdf(markdown, out / f"{stem}.pdf")}
    return found


@pytest.mark.parametrize("fmt", ["docx", "pdf"])
@pytest.mark.parametrize("name", MARKDOWN_SOPS)
def test_word_and_pdf_renderings_section_exactly_as_the_markdown(rendered, name, fmt):
    catalog = load_catalog(KNOWLEDGE / "catalog.yaml")
    want = parse_sops(load_document(KNOWLEDGE / name), catalog.entry(name))
    got = parse_sops(load_document(rendered[name][fmt]), catalog.entry(name))
    assert _shape(got) == _shape(want)
    for mine, theirs in zip(got, want, strict=True):
        for a, b in zip(mine.sections, theirs.sections, strict=True):
            ratio = difflib.SequenceMatcher(None, _words(a.text), _words(b.text)).ratio()
            assert ratio >= 0.98, (mine.sop_id, a.heading, ratio)


def test_numbered_steps_and_tables_survive_word_and_pdf(rendered):
    for fmt in ("docx", "pdf"):
        text = load_document(rendered["support-automation-handbook.md"][fmt]).text
        assert "  1. The system will verify the transaction against the payment gateway API" in text
        assert "  2. It will check for identical transaction IDs" in text
        table = load_document(rendered["customer-service-and-support.md"][fmt]).text
        row = r"^\| Critical \| System down, data loss \| 15 mins \| CTO/Founder \|$"
        assert re.search(row, table.replace("**", ""), re.M), fmt


def test_a_word_list_keeps_words_numbers_even_when_word_restarts_them(tmp_path):
    markdown = ("# Loyalty Points\n\n## Procedure\n\n1. Look up the member.\n2. Add the points.\n\n"
                "## Escalation\n\n1. Call the loyalty desk.\n2. Log the call.\n")
    path = markdown_to_docx(markdown, tmp_path / "loyalty points.docx")
    text = load_document(path).text
    assert "1. Look up the member.\n2. Add the points." in text
    assert "1. Call the loyalty desk.\n2. Log the call." in text
    (sop,) = parse_sops(load_document(path), load_catalog(KNOWLEDGE / "catalog.yaml").entry(path.name))
    assert sop.kinds == ("procedure", "escalation")


def _encrypted_pdf(path: Path, source: Path, *, user_password: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(str(source)).pages:
        writer.add_page(page)
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    with open(path, "wb") as handle:
        writer.write(handle)
    return path


def _junk_content_types(path: Path, source: Path) -> Path:
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as broken:
        for item in original.infolist():
            data = original.read(item)
            broken.writestr(item, b"<Types junk" if item.filename == "[Content_Types].xml" else data)
    return path


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    target = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE, target)
    return target


def test_every_bad_file_is_a_named_skip_and_the_rest_is_ingested(knowledge, settings, tmp_path, capsys, monkeypatch,
                                                                  rendered, embedder):
    pdf = rendered["customer-operations-sop-pack.md"]["pdf"]
    _encrypted_pdf(knowledge / "locked.pdf", pdf, user_password="secret")
    _junk_content_types(knowledge / "junk-types.docx", rendered["customer-service-and-support.md"]["docx"])
    (knowledge / "loop.md").symlink_to(knowledge / "loop.md")
    (knowledge / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    (knowledge / "huge.md").write_text(RETURNS + "x" * (2 * 1024 * 1024), encoding="utf-8")
    (knowledge / "odd.txt").write_bytes(b"SOP: Odd\n\nProcedure\n\nStep 1: \xff\xfe\xfa")
    monkeypatch.setenv("SOPILOT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SOPILOT_KNOWLEDGE_DIR", str(knowledge))
    monkeypatch.setenv("SOPILOT_MAX_DOCUMENT_MB", "1")
    assert main(["ingest", "--json"]) == 2
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    reasons = {s["source"]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"locked.pdf", "junk-types.docx", "loop.md", "dangling.md", "huge.md", "odd.txt"}
    assert "protected by a password" in reasons["locked.pdf"]
    assert "cannot be opened as a Word document" in reasons["junk-types.docx"]
    assert "symbolic link that loops" in reasons["loop.md"]
    assert "does not exist" in reasons["dangling.md"]
    assert "over the 1 MB limit" in reasons["huge.md"] and "SOPILOT_MAX_DOCUMENT_MB" in reasons["huge.md"]
    assert "is not valid UTF-8" in reasons["odd.txt"]
    assert {"A.1", "ops.licenses", "tel.roaming", "cs.support"} <= set(report["sop_ids"])
    assert "Traceback" not in captured.err
    assert "read " in captured.err and "embedding" in captured.err  # progress on stderr, also with --json


def test_a_pdf_encrypted_without_a_user_password_is_read(rendered, tmp_path):
    locked = _encrypted_pdf(tmp_path / "pack.pdf", rendered["customer-operations-sop-pack.md"]["pdf"],
                            user_password="")
    entry = load_catalog(KNOWLEDGE / "catalog.yaml").entry("customer-operations-sop-pack.md")
    assert [s.sop_id for s in parse_sops(load_document(locked), entry)] == [
        "ops.licenses", "ops.mobile-feature", "ops.bulk-change", "ops.glossary"]


@pytest.mark.parametrize(("encoding", "bom"), [
    pytest.param("utf-16-le", codecs.BOM_UTF16_LE, id="UTF-16 LE with BOM"),
    pytest.param("utf-16-be", codecs.BOM_UTF16_BE, id="UTF-16 BE with BOM"),
    pytest.param("utf-16-le", b"", id="UTF-16 LE without BOM"),
    pytest.param("utf-32-le", codecs.BOM_UTF32_LE, id="UTF-32 with BOM"),
    pytest.param("utf-8", codecs.BOM_UTF8, id="UTF-8 with BOM"),
])
def test_text_in_unicode_encodings_is_read(tmp_path, encoding, bom):
    path = tmp_path / "returns.md"
    path.write_bytes(bom + (RETURNS + "Café crème — naïve.\n").encode(encoding))
    document = load_document(path)
    assert "Café crème — naïve." in document.text
    (sop,) = parse_sops(document, load_catalog(KNOWLEDGE / "catalog.yaml").entry(path.name))
    assert sop.sop_id == "R.1" and sop.kinds == ("procedure",)


def test_an_unreadable_file_is_skipped_with_permission_denied(tmp_path):
    """Run as an unprivileged user: root reads any file, so the check needs a user who cannot."""
    folder = Path(tempfile.mkdtemp(prefix="sopilot-perm-", dir="/tmp"))
    try:
        (folder / "returns.md").write_text(RETURNS, encoding="utf-8")
        secret = folder / "secret.md"
        secret.write_text(RETURNS.replace("R.1", "R.2"), encoding="utf-8")
        secret.chmod(0o000)
        folder.chmod(0o755)
        (folder / "returns.md").chmod(0o644)
        from sopilot.ingest.pipeline import parse_paths

        from sopilot.core.settings import Settings

        settings = Settings.from_env({}, data_dir=tmp_path / "data", knowledge_dir=folder)
        switched = os.geteuid() == 0
        if switched:
            os.seteuid(65534)  # nobody
        try:
            parsed = parse_paths([folder], settings)
        finally:
            if switched:
                os.seteuid(0)
        assert [(s.source, s.reason.split(":")[0]) for s in parsed.skipped] == [
            ("secret.md", "cannot be read (permission denied)")]
        assert [s.sop_id for s in parsed.sops] == ["R.1"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_code_fence_comment_is_no_heading_and_setext_headings_are(tmp_path):
    path = tmp_path / "scripts.md"
    path.write_text("Script Runbook\n==============\n\nProcedure\n---------\n\n1. Run the export.\n\n```bash\n"
                    "# R.9: Sub-Category: not an SOP\nexport --all\n```\n\n2. Check the log.\n", encoding="utf-8")
    (sop,) = parse_sops(load_document(path), load_catalog(KNOWLEDGE / "catalog.yaml").entry(path.name))
    assert (sop.sop_id, sop.title) == ("script-runbook", "Script Runbook")
    assert [(s.kind, s.heading) for s in sop.sections] == [("procedure", "Procedure")]
    assert "# R.9: Sub-Category: not an SOP" in sop.sections[0].text and "----" not in sop.sections[0].text
