"""Which PDF reader keeps an SOP's structure: headings, numbered steps and tables.

The shipped Markdown SOPs are rendered to untagged PDFs (tests/fixtures/docs/render.py), read
back by each candidate and sectioned; the result is compared with the sections of the Markdown.

    .venv/bin/python bench/bench_pdf.py            # pymupdf is measured when importable

Candidates: pypdf's plain text and its layout mode (text only: headings must be guessed from
line shapes), pdfplumber (characters with font and size: read by ingest/pdf.py), and pymupdf
(spans with font and size, fed to the same reconstruction). Printed per candidate: SOPs whose
id, title, category, version and section list equal the Markdown's, sections found, numbered-step
lines kept inside their procedure, table rows kept, and seconds.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sopilot.ingest.catalog import load_catalog  # noqa: E402
from sopilot.ingest.documents import Document, load_document  # noqa: E402
from sopilot.ingest.pdf import Line, Span, Table, to_markdown  # noqa: E402
from sopilot.ingest.sections import parse_sops  # noqa: E402

from tests.fixtures.docs.render import markdown_to_pdf  # noqa: E402

DOCUMENTS = ("support-automation-handbook", "customer-operations-sop-pack", "customer-service-and-support")
_STEP = re.compile(r"^\s*\d+\.\s", re.M)
_ROW = re.compile(r"^\|.*\|$", re.M)


def _pypdf(path: Path, mode: str) -> tuple[str, str]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return "\n\n".join(p.extract_text(extraction_mode=mode) or "" for p in reader.pages), "text"


def _pdfplumber(path: Path) -> tuple[str, str]:
    return load_document(path).text, "markdown"


def _pymupdf(path: Path) -> tuple[str, str]:
    import pymupdf

    blocks = []
    with pymupdf.open(str(path)) as document:
        for number, page in enumerate(document, start=1):
            tables = page.find_tables().tables
            boxes = [t.bbox for t in tables]
            placed = [(t.bbox[1], Table(page=number, top=t.bbox[1],
                                        rows=tuple(tuple(c or "" for c in r) for r in t.extract()))) for t in tables]
            for block in page.get_text("dict")["blocks"]:
                for line in block.get("lines", []):
                    x0, top, x1, bottom = line["bbox"]
                    if any(b[0] <= (x0 + x1) / 2 <= b[2] and b[1] <= (top + bottom) / 2 <= b[3] for b in boxes):
                        continue
                    spans = tuple(Span(text=s["text"], bold=bool(s["flags"] & 16), italic=bool(s["flags"] & 2),
                                       size=s["size"]) for s in line["spans"])
                    placed.append((top, Line(page=number, top=top, bottom=bottom, x0=x0, x1=x1, spans=spans)))
            blocks += [b for _, b in sorted(placed, key=lambda p: p[0])]
    return to_markdown(blocks), "markdown"


def _shape(sops):
    return [(s.sop_id, s.title, s.category, s.version, [(c.kind, c.heading) for c in s.sections]) for s in sops]


def main() -> int:
    """Print one line of figures per candidate reader."""
    catalog = load_catalog(ROOT / "knowledge" / "catalog.yaml")
    candidates = {"pypdf": lambda p: _pypdf(p, "plain"), "pypdf layout": lambda p: _pypdf(p, "layout"),
                  "pdfplumber": _pdfplumber}
    try:
        import pymupdf  # noqa: F401

        candidates["pymupdf"] = _pymupdf
    except ImportError:
        print("pymupdf not installed: not measured", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        reference, pdfs = {}, {}
        for name in DOCUMENTS:
            md = ROOT / "knowledge" / f"{name}.md"
            reference[name] = parse_sops(load_document(md), catalog.entry(md.name))
            pdfs[name] = markdown_to_pdf(md.read_text(encoding="utf-8"), Path(tmp) / f"{name}.pdf")
        total_sops = sum(len(v) for v in reference.values())
        total_sections = sum(len(s.sections) for v in reference.values() for s in v)
        ref_steps = sum(len(_STEP.findall(s.text_of("procedure"))) for v in reference.values() for s in v)
        ref_rows = sum(len(_ROW.findall(c.text)) for v in reference.values() for s in v for c in s.sections)
        print(f"reference: {total_sops} SOPs, {total_sections} sections, {ref_steps} numbered steps, "
              f"{ref_rows} table rows")
        for label, read in candidates.items():
            same = sections = steps = rows = 0
            started = time.perf_counter()
            for name, path in pdfs.items():
                text, syntax = read(path)
                document = Document(source=f"{name}.md", path=path, text=text, syntax=syntax)
                try:
                    sops = parse_sops(document, catalog.entry(f"{name}.md"))
                except Exception:  # a candidate whose text holds no SOP at all scores zero
                    sops = []
                want = {s[0]: s for s in _shape(reference[name])}
                for got in _shape(sops):
                    same += want.get(got[0]) == got
                    wanted = set(want[got[0]][4]) if got[0] in want else set()
                    sections += len(wanted & set(got[4]))
                steps += sum(len(_STEP.findall(s.text_of("procedure"))) for s in sops)
                rows += sum(len(_ROW.findall(c.text)) for s in sops for c in s.sections)
            seconds = time.perf_counter() - started
            print(f"{label:13} SOPs identical {same}/{total_sops}  sections {sections}/{total_sections}  "
                  f"steps in procedures {steps}/{ref_steps}  table rows {rows}/{ref_rows}  {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
