"""Reading SOP files of every supported format into text whose structure the sectioner can see.

Markdown and plain text are decoded by their byte-order mark (UTF-8, UTF-16 and UTF-32, also
UTF-16 without a mark), else as UTF-8. Word files are read through python-docx by their
structure and written out as Markdown: `Title` and `Heading N` styles (or an outline level)
become headings, list paragraphs keep the numbers Word shows (numbering.xml, with restarts and
nested levels) or a bullet, bold and italic runs become `**…**` and `_…_`, tables become Markdown
tables. PDF files are read through pdfplumber from fonts and positions (see `ingest/pdf.py`).

Every problem with a file, whatever the parser underneath raises, is a `DocumentError` naming
the file, what is wrong and what to do, so ingest skips that file and goes on: a missing or
unreadable file, a symbolic-link loop, a file over the size limit, undecodable text, a corrupt
Word container, a password-protected or scanned PDF.
"""

from __future__ import annotations

import codecs
import dataclasses
import errno
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

from sopilot.ingest.repair import repair

from sopilot.core.errors import DocumentError

TEXT_SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text"}
BINARY_SUFFIXES = {".docx": "markdown", ".pdf": "markdown or text"}
SUPPORTED = tuple(sorted({*TEXT_SUFFIXES, *BINARY_SUFFIXES}))
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
"""Largest file read when no limit is given (the `max_document_mb` setting)."""

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Document:
    """One SOP file as repaired text."""

    source: str
    """File name, as cited to agents."""
    path: Path
    text: str
    syntax: str
    """`markdown` (headings with #) or `text` (headings are short standalone lines)."""


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "is a symbolic link that loops back on itself: point it at a real file or remove it"
    if exc.errno in {errno.EACCES, errno.EPERM}:
        return "cannot be read (permission denied): give the user running sopilot read access, or move it away"
    if exc.errno == errno.ENOENT:
        return "does not exist (a broken symbolic link?): check the path"
    if exc.errno == errno.EISDIR:
        return "is a directory, not a file"
    return f"cannot be read ({exc.strerror or exc}): check the file"


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, within the size limit; every OS failure as a named `DocumentError`."""
    try:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise DocumentError(path.name, (
                f"is {size / 1048576:.1f} MB, over the {max_bytes / 1048576:g} MB limit: split it into smaller "
                "documents, or raise SOPILOT_MAX_DOCUMENT_MB"))
        with open(path, "rb") as handle:
            return handle.read(max_bytes + 1)
    except OSError as exc:
        raise DocumentError(path.name, _os_reason(exc)) from None


def _utf16_without_bom(data: bytes) -> str | None:
    """Text written as UTF-16 without a byte-order mark: NULs in every other byte of ASCII letters."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    for zeros, encoding in ((odd, "utf-16-le"), (even, "utf-16-be")):
        if zeros.count(0) >= 0.6 * len(zeros) and (even if zeros is odd else odd).count(0) == 0:
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    return None


def decode_text(data: bytes, source: str) -> str:
    """Decode a text file by its byte-order mark, else as UTF-8; explain what cannot be decoded."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise DocumentError(source, f"starts with a {encoding.upper()} byte-order mark but is not valid "
                                            f"{encoding.upper()} (byte {exc.start}): re-save it as UTF-8") from None
    if b"\x00" in data[:8192]:
        text = _utf16_without_bom(data)
        if text is not None:
            return text
        raise DocumentError(source, "is a binary file, not text: save it as Markdown, plain text, .docx or .pdf")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(source, f"is not valid UTF-8 (byte {exc.start}): re-save it with UTF-8 encoding") from None


def _read_text(path: Path, max_bytes: int) -> str:
    return decode_text(_read_bytes(path, max_bytes), path.name)


# --- Word ------------------------------------------------------------------------------------------


def _roman(number: int) -> str:
    values = ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l"), (40, "xl"),
              (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i"))
    out = ""
    for value, letters in values:
        while number >= value:
            out, number = out + letters, number - value
    return out


def _format_number(fmt: str, number: int) -> str:
    if fmt in {"lowerLetter", "upperLetter"}:
        letter = chr(ord("a") + (number - 1) % 26)
        return letter.upper() if fmt == "upperLetter" else letter
    if fmt in {"lowerRoman", "upperRoman"}:
        return _roman(number).upper() if fmt == "upperRoman" else _roman(number)
    return str(number)


class _Numbering:
    """Word's list numbering: which number or bullet each list paragraph shows."""

    def __init__(self, document) -> None:
        from docx.oxml.ns import qn

        self._qn = qn
        self.levels: dict[str, dict[int, tuple[str, str, int]]] = {}
        self.nums: dict[str, tuple[str, dict[int, int]]] = {}
        self.counters: dict[str, dict[int, int]] = {}
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return
        for abstract in root.findall(qn("w:abstractNum")):
            levels = {}
            for lvl in abstract.findall(qn("w:lvl")):
                fmt = lvl.find(qn("w:numFmt"))
                text = lvl.find(qn("w:lvlText"))
                start = lvl.find(qn("w:start"))
                levels[int(lvl.get(qn("w:ilvl"), "0"))] = (
                    fmt.get(qn("w:val")) if fmt is not None else "decimal",
                    text.get(qn("w:val")) if text is not None else "%1.",
                    int(start.get(qn("w:val"))) if start is not None else 1,
                )
            self.levels[abstract.get(qn("w:abstractNumId"))] = levels
        for num in root.findall(qn("w:num")):
            abstract_id = num.find(qn("w:abstractNumId"))
            overrides = {}
            for override in num.findall(qn("w:lvlOverride")):
                start = override.find(qn("w:startOverride"))
                if start is not None:
                    overrides[int(override.get(qn("w:ilvl"), "0"))] = int(start.get(qn("w:val")))
            if abstract_id is not None:
                self.nums[num.get(qn("w:numId"))] = (abstract_id.get(qn("w:val")), overrides)

    def _num_pr(self, paragraph) -> tuple[str, int] | None:
        qn = self._qn
        num_id = ilvl = None
        elements = [paragraph._p.pPr]
        style = paragraph.style
        while style is not None:
            elements.append(style.element.pPr)
            style = style.base_style
        for p_pr in elements:
            num_pr = p_pr.find(qn("w:numPr")) if p_pr is not None else None
            if num_pr is None:
                continue
            if num_id is None and num_pr.find(qn("w:numId")) is not None:
                num_id = num_pr.find(qn("w:numId")).get(qn("w:val"))
            if ilvl is None and num_pr.find(qn("w:ilvl")) is not None:
                ilvl = int(num_pr.find(qn("w:ilvl")).get(qn("w:val")))
        if num_id is None or num_id == "0" or num_id not in self.nums:
            return None
        return num_id, ilvl or 0

    def marker(self, paragraph) -> tuple[str, int] | None:
        """(marker, level) of a list paragraph: "3." or "b)" as Word shows it, "-" for a bullet; else None."""
        found = self._num_pr(paragraph)
        if found is None:
            return None
        num_id, level = found
        abstract_id, overrides = self.nums[num_id]
        levels = self.levels.get(abstract_id, {})
        fmt, text, start = levels.get(level, ("decimal", f"%{level + 1}.", 1))
        if fmt == "bullet":
            return "-", level
        if fmt == "none":
            return "", level
        counters = self.counters.setdefault(num_id, {})
        counters[level] = counters.get(level, overrides.get(level, start) - 1) + 1
        for deeper in [k for k in counters if k > level]:
            del counters[deeper]
        for lvl in range(level + 1):
            lvl_fmt, _, lvl_start = levels.get(lvl, ("decimal", "", 1))
            value = counters.get(lvl, overrides.get(lvl, lvl_start))
            text = text.replace(f"%{lvl + 1}", _format_number(lvl_fmt, value))
        return text.strip() or "-", level


def _runs_markdown(items) -> str:
    """Text of runs with bold as **…** and italic as _…_, spaces kept outside the markers."""
    groups: list[list] = []
    for run in items:
        text = run.text
        if not text:
            continue
        style_font = run.style.font if getattr(run, "style", None) is not None else None
        bold = bool(run.bold or (run.bold is None and style_font is not None and style_font.bold))
        italic = bool(run.italic or (run.italic is None and style_font is not None and style_font.italic))
        if groups and groups[-1][:2] == [bold, italic]:
            groups[-1][2] += text
        else:
            groups.append([bold, italic, text])
    out = []
    for bold, italic, text in groups:
        core = text.strip()
        mark = ("**" if bold else "") + ("_" if italic else "")
        if not core or not mark:
            out.append(text)
            continue
        out.append(f"{text[: len(text) - len(text.lstrip())]}{mark}{core}{mark[::-1]}{text[len(text.rstrip()):]}")
    return "".join(out)


def _paragraph_runs(paragraph):
    from docx.text.hyperlink import Hyperlink

    for item in paragraph.iter_inner_content():
        if isinstance(item, Hyperlink):
            yield from item.runs
        else:
            yield item


def _heading_level(paragraph) -> int | None:
    """1 for a Title, N+1 for Heading N (also from an outline level), else None."""
    from docx.oxml.ns import qn

    style = paragraph.style
    name = (style.name or "") if style is not None else ""
    if name == "Title":
        return 1
    if name.lower().startswith("heading"):
        digits = "".join(ch for ch in name if ch.isdigit())
        return min(6, int(digits or "1") + 1)
    while style is not None:
        p_pr = style.element.pPr
        outline = p_pr.find(qn("w:outlineLvl")) if p_pr is not None else None
        if outline is not None:
            return min(6, int(outline.get(qn("w:val"))) + 2)
        style = style.base_style
    return None


def _table_markdown(table) -> list[str]:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell is repeated once per grid column
                continue
            seen.add(id(cell._tc))
            text = " ".join(_runs_markdown(_paragraph_runs(p)).strip() for p in cell.paragraphs)
            cells.append(" ".join(text.split()).replace("|", "\\|"))
        rows.append("| " + " | ".join(cells) + " |")
    if rows:
        width = rows[0].count(" | ") + 1
        rows.insert(1, "| " + " | ".join("---" for _ in range(width)) + " |")
    return rows


def _style_depth(style: str) -> int:
    """The nesting Word's numbered list styles carry in their name: "List Bullet 2" is one level in."""
    last = style.rsplit(" ", 1)[-1]
    return int(last) - 1 if style.startswith("List") and last.isdigit() else 0


def _check_container(path: Path, max_bytes: int) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise DocumentError(path.name, "cannot be opened as a Word document (it is not a .docx zip container): "
                                       "open it in Word and save it again as .docx") from None
    if total > 20 * max_bytes:
        raise DocumentError(path.name, (
            f"unpacks to {total / 1048576:.0f} MB, over 20 times the {max_bytes / 1048576:g} MB limit: "
            "split it into smaller documents, or raise SOPILOT_MAX_DOCUMENT_MB"))


def _read_docx(path: Path, max_bytes: int) -> tuple[str, str]:
    import docx  # python-docx; imported here because most knowledge bases have no Word files
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    _read_bytes(path, max_bytes)
    _check_container(path, max_bytes)
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises zip, XML and key errors of several kinds for one broken file
        raise DocumentError(path.name, (
            f"cannot be opened as a Word document ({type(exc).__name__}: {exc}): open it in Word and save it "
            "again as .docx")) from None
    numbering = _Numbering(document)
    lines: list[str] = []
    list_base: int | None = None
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "tbl":
            lines += ["", *_table_markdown(Table(child, document)), ""]
            list_base = None
            continue
        if tag != "p":
            continue
        paragraph = Paragraph(child, document)
        text = _runs_markdown(_paragraph_runs(paragraph)).strip()
        if not text:
            lines.append("")
            continue
        level = _heading_level(paragraph)
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
        marker = numbering.marker(paragraph) if level is None else None
        if level is not None:
            lines += ["", "#" * level + " " + text.replace("**", ""), ""]
            list_base = None
        elif marker is not None or "List" in style:
            symbol, depth = marker if marker is not None else ("-", 0)
            depth += _style_depth(style)
            list_base = depth if list_base is None else min(list_base, depth)
            lines.append("  " * (depth - list_base) + (f"{symbol} {text}" if symbol else text))
        elif "Quote" in style:
            lines += [f"> {text}", ""]
            list_base = None
        else:
            lines += [text, ""]
            list_base = None
    return "\n".join(lines), "markdown"


# --- PDF -------------------------------------------------------------------------------------------


def _pdf_failure(path: Path, exc: Exception) -> DocumentError:
    names: set[str] = set()
    seen: BaseException | None = exc
    for _ in range(6):  # pdfplumber wraps pdfminer's errors; look a few causes deep
        if seen is None:
            break
        names.add(type(seen).__name__)
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = seen.__cause__ or seen.__context__ or nested
    if "PDFPasswordIncorrect" in names:
        return DocumentError(path.name, "is protected by a password: save a copy without the password "
                                        "(or print it to PDF) and ingest that")
    if "PDFEncryptionError" in names:
        return DocumentError(path.name, f"uses an encryption sopilot cannot read ({exc}): save a copy without "
                                        "encryption and ingest that")
    return DocumentError(path.name, f"cannot be read as PDF ({type(exc).__name__}: {exc}): export it again as PDF "
                                    "or as text")


def _read_pdf(path: Path, max_bytes: int) -> tuple[str, str]:
    """Markdown rebuilt from fonts and positions; plain text when no line is set as a heading."""
    import pdfplumber
    from sopilot.ingest.pdf import has_headings, read_blocks, to_markdown

    data = _read_bytes(path, max_bytes)
    if not data.lstrip()[:5] == b"%PDF-":
        raise DocumentError(path.name, "cannot be read as PDF (it does not start with %PDF-): export it again "
                                       "as PDF or as text")
    try:
        with pdfplumber.open(path) as pdf:
            blocks = read_blocks(pdf)
    except Exception as exc:  # pdfminer raises many kinds for one damaged or protected file
        raise _pdf_failure(path, exc) from None
    text = to_markdown(blocks) if blocks else ""
    if not text.strip():
        raise DocumentError(path.name, "has no text layer (a scanned image?): export it with its text, or run "
                                       "OCR on it first")
    return text, "markdown" if has_headings(blocks) else "text"


_READERS: dict[str, Callable[[Path, int], tuple[str, str]]] = {".docx": _read_docx, ".pdf": _read_pdf}


def load_document(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Read one SOP file; raise `DocumentError` when it cannot be used."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text, syntax = _read_text(path, max_bytes), TEXT_SUFFIXES[suffix]
    elif suffix in _READERS:
        text, syntax = _READERS[suffix](path, max_bytes)
    else:
        raise DocumentError(
            path.name, f"has unsupported type {suffix or '(no extension)'!r}: use one of {', '.join(SUPPORTED)}"
        )
    if len(text) > max_bytes:
        raise DocumentError(path.name, (
            f"holds {len(text) / 1048576:.1f} MB of text, over the {max_bytes / 1048576:g} MB limit: split it "
            "into smaller documents, or raise SOPILOT_MAX_DOCUMENT_MB"))
    text = repair(text)
    if not text.strip():
        raise DocumentError(path.name, "is empty: add the SOP's text or remove the file")
    return Document(source=path.name, path=path, text=text, syntax=syntax)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Found:
    """The files a set of paths names, and those that cannot be used at all (with the reason)."""

    files: list[Path]
    problems: list[DocumentError]


def _is_candidate(path: Path) -> bool:
    return not path.name.startswith(".") and path.suffix.lower() not in {".yaml", ".yml"}


def find_files(paths: list[Path]) -> Found:
    """Expand directories into the files they hold (sorted), keeping files as given.

    Broken links and link loops are reported, never passed over in silence; sub-directories are
    not entered (a knowledge directory is flat).
    """
    files: list[Path] = []
    problems: list[DocumentError] = []
    for path in paths:
        try:
            if path.is_dir():
                for entry in sorted(path.iterdir()):
                    if not _is_candidate(entry):
                        continue
                    try:
                        entry.resolve(strict=True)
                    except OSError as exc:
                        problems.append(DocumentError(entry.name, _os_reason(exc)))
                        continue
                    except RuntimeError:  # Python < 3.13 reports a link loop this way
                        problems.append(DocumentError(entry.name, _os_reason(OSError(errno.ELOOP, "loop"))))
                        continue
                    if entry.is_file():
                        files.append(entry)
                continue
            path.resolve(strict=True)
            files.append(path)
        except RuntimeError:
            problems.append(DocumentError(str(path), _os_reason(OSError(errno.ELOOP, "loop"))))
        except OSError as exc:
            reason = "does not exist: check the path" if exc.errno == errno.ENOENT and not path.is_symlink() \
                else _os_reason(exc)
            problems.append(DocumentError(str(path), reason))
    return Found(files=files, problems=problems)


def discover(paths: list[Path]) -> list[Path]:
    """Expand directories into the files they hold; raise `DocumentError` for the first path that cannot be used."""
    found = find_files(paths)
    if found.problems:
        raise found.problems[0]
    return found.files
