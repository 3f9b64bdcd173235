"""Reading SOP files of every supported format into plain text.

Markdown and plain text are read as UTF-8; Word files through python-docx (headings become
Markdown headings, tables tab-separated rows) and PDF files through pypdf. Every problem with a
file is raised as `DocumentError` naming the file and what to do, so ingest can skip it and go on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from sopilot.ingest.repair import repair
from sopilot.core.errors import DocumentError

TEXT_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text"}
BINARY_SUFFIXES = {".docx": "markdown", ".pdf": "text"}
SUPPORTED = tuple(sorted({*TEXT_SUFFIXES, *BINARY_SUFFIXES}))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Document:
    """One SOP file as repaired text."""

    source: str
    """File name, as cited to agents."""
    path: Path
    text: str
    syntax: str
    """`markdown` (headings with #) or `text` (headings are short standalone lines)."""


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise DocumentError(path.name, "is a binary file, not text: save it as Markdown, plain text, .docx or .pdf")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(
            path.name, f"is not valid UTF-8 (byte {exc.start}): re-save it with UTF-8 encoding"
        ) from None


def _read_docx(path: Path) -> str:
    import docx  # python-docx; imported here because most knowledge bases have no Word files
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise DocumentError(path.name, f"cannot be opened as a Word document ({exc}): re-save it as .docx") from None
    lines: list[str] = []
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = docx.text.paragraph.Paragraph(child, document)
            text = paragraph.text.strip()
            if not text:
                lines.append("")
                continue
            style = (paragraph.style.name or "") if paragraph.style is not None else ""
            if style == "Title":
                lines += [f"# {text}", ""]
            elif style.startswith("Heading"):
                level = "".join(ch for ch in style if ch.isdigit()) or "1"
                lines += [f"{'#' * (int(level) + 1)} {text}", ""]
            elif "List" in style:
                lines.append(f"- {text}")
            else:
                lines += [text, ""]
        elif tag == "tbl":
            table = docx.table.Table(child, document)
            for row in table.rows:
                lines.append("\t".join(cell.text.strip() for cell in row.cells))
            lines.append("")
    return "\n".join(lines)


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, OSError, KeyError) as exc:
        raise DocumentError(path.name, f"cannot be read as PDF ({exc}): export it again as PDF or as text") from None
    return "\n\n".join(pages)


def load_document(path: Path) -> Document:
    """Read one SOP file; raise `DocumentError` when it cannot be used."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text, syntax = _read_text(path), TEXT_SUFFIXES[suffix]
    elif suffix == ".docx":
        text, syntax = _read_docx(path), BINARY_SUFFIXES[suffix]
    elif suffix == ".pdf":
        text, syntax = _read_pdf(path), BINARY_SUFFIXES[suffix]
    else:
        raise DocumentError(
            path.name, f"has unsupported type {suffix or '(no extension)'!r}: use one of {', '.join(SUPPORTED)}"
        )
    text = repair(text)
    if not text.strip():
        raise DocumentError(path.name, "is empty: add the SOP's text or remove the file")
    return Document(source=path.name, path=path, text=text, syntax=syntax)


def discover(paths: list[Path]) -> list[Path]:
    """Expand directories into the files they hold (sorted), keeping files as given."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                            and p.suffix.lower() not in {".yaml", ".yml"})
        elif path.exists():
            found.append(path)
        else:
            raise DocumentError(str(path), "does not exist: check the path")
    return found
