"""PDF SOPs read back into Markdown from fonts, sizes and positions.

An exported PDF keeps no headings, only glyphs: a heading is a line set larger than the body
text, a label such as **Automation Rules:** is a bold run, a list item starts with a bullet or a
number, and a paragraph is lines closer together than paragraphs are. Read that way (pdfplumber
gives every character with its font, size and position; ruled tables come from its table finder),
a PDF yields the same Markdown structure as the document it was exported from, so the sectioner
reads PDFs, Word files and Markdown alike. pdfplumber was chosen by measurement (bench/bench_pdf.py):
on the shipped SOPs rendered to PDF it kept every SOP and section, where pypdf's text (with or
without layout mode) has no sizes or weights to find headings by; pymupdf keeps them as well but is
AGPL-licensed, which an Apache-2.0 product cannot ship.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from collections.abc import Iterable, Iterator

_BULLET = re.compile(r"""
    ^(?: [•◦▪‣∙·] \s* | [-–*] \s+ )     # a bullet glyph: "• Automation Rules:", "- Confirm …"
""", re.X)
_PAGE_NUMBER = re.compile(r"""
    ^(?: Page \s+ )? \d{1,4} (?: \s+ (?: of | / ) \s+ \d{1,4} )?$   # a running footer: "3", "Page 3 of 12"
""", re.X | re.I)
_NUMBER = re.compile(r"""
    ^(?:\d{1,3}|[a-z]) [.)] \s         # a list number: "1. The system will verify …", "a) …"
""", re.X)
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.I)
_ITALIC_FONT = re.compile(r"italic|oblique", re.I)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Span:
    """A run of text in one font on one line."""

    text: str
    bold: bool
    italic: bool
    size: float


@dataclasses.dataclass(frozen=True, kw_only=True)
class Line:
    """One printed line: where it stands and its runs."""

    page: int
    top: float
    bottom: float
    x0: float
    x1: float
    spans: tuple[Span, ...]

    @property
    def text(self) -> str:
        """The line's text without formatting."""
        return "".join(s.text for s in self.spans)

    @property
    def size(self) -> float:
        """The size most of the line's characters are set in."""
        weights: collections.Counter[float] = collections.Counter()
        for span in self.spans:
            weights[round(span.size * 2) / 2] += len(span.text.strip())
        return weights.most_common(1)[0][0] if weights else 0.0

    @property
    def bold(self) -> bool:
        """True when every visible character is bold."""
        return all(s.bold for s in self.spans if s.text.strip())


@dataclasses.dataclass(frozen=True, kw_only=True)
class Table:
    """A ruled table: its rows of cell texts, placed where it stands on its page."""

    page: int
    top: float
    rows: tuple[tuple[str, ...], ...]


Block = Line | Table


def _markdown_runs(spans: Iterable[Span]) -> str:
    """Text with bold runs as **…** and italic runs as _…_, spaces kept outside the markers."""
    groups: list[list] = []
    for span in spans:
        if groups and (groups[-1][0], groups[-1][1]) == (span.bold, span.italic):
            groups[-1][2] += span.text
        else:
            groups.append([span.bold, span.italic, span.text])
    out = []
    for bold, italic, text in groups:
        core = text.strip()
        if not core:
            out.append(text)
            continue
        lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()):]
        mark = ("**" if bold else "") + ("_" if italic else "")
        out.append(f"{lead}{mark}{core}{mark[::-1]}{trail}")
    return "".join(out)


def _body_size(lines: list[Line]) -> float:
    weights: collections.Counter[float] = collections.Counter()
    for line in lines:
        weights[line.size] += len(line.text.strip())
    return weights.most_common(1)[0][0] if weights else 0.0


def _is_heading(line: Line, body: float) -> bool:
    text = line.text.strip()
    return bool(text) and line.size >= body + 1.0 and len(text) <= 200 and not _BULLET.match(text)


def has_headings(blocks: list[Block]) -> bool:
    """True when some line is set larger than the body text (else the PDF is read as plain text)."""
    lines = [b for b in blocks if isinstance(b, Line) and b.text.strip()]
    body = _body_size(lines)
    return any(_is_heading(ln, body) for ln in lines)


def _clusters(values: list[float], tolerance: float) -> list[float]:
    """Representative x positions of list markers, nearby ones merged (one per indentation level)."""
    found: list[float] = []
    for value in sorted(values):
        if not found or value - found[-1] > tolerance:
            found.append(value)
    return found


def _wrapped(previous: Line, text: str, right: float) -> bool:
    """True when `text` went on a new line only because its first word did not fit on the line before.

    A line that stops short of the right margin by more than that word's width was broken on purpose.
    """
    first_word = text.split(" ", 1)[0]
    width = (len(first_word) + 1) * 0.6 * previous.size
    return previous.x1 + width >= right


def _join(previous: str, content: str) -> str:
    """A wrapped line joined to the one before; a bold run broken by the wrap is made one again."""
    if previous.endswith("**") and content.startswith("**"):
        return previous[:-2] + " " + content[2:]
    return previous + " " + content


def to_markdown(blocks: list[Block]) -> str:
    """Markdown of a PDF's blocks in reading order: headings, paragraphs, list items and tables."""
    lines = [b for b in blocks if isinstance(b, Line) and b.text.strip()]
    body = _body_size(lines)
    heading_sizes = sorted({ln.size for ln in lines if _is_heading(ln, body)}, reverse=True)
    level_of = {size: min(level, 6) for level, size in enumerate(heading_sizes, start=1)}
    markers = [ln.x0 for ln in lines if _BULLET.match(ln.text.strip()) or _NUMBER.match(ln.text.strip())]
    indents = _clusters(markers, tolerance=max(body, 1.0) * 0.6)
    right = max((ln.x1 for ln in lines), default=0.0)
    out: list[str] = []
    previous: Line | None = None
    heading_at: int | None = None
    list_base: int | None = None
    for block in blocks:
        if isinstance(block, Table):
            out += ["", *_table_markdown(block.rows), ""]
            previous, heading_at, list_base = None, None, None
            continue
        text = block.text.strip()
        if not text or _PAGE_NUMBER.match(text):
            continue
        prev = previous if previous is not None and previous.page == block.page else None
        if _is_heading(block, body):
            if heading_at is not None and prev is not None and prev.size == block.size \
                    and block.top - prev.bottom < 0.5 * block.size:
                out[heading_at] += " " + text
            else:
                out += ["", "#" * level_of[block.size] + " " + text, ""]
                heading_at = len(out) - 2
            previous, list_base = block, None
            continue
        heading_at = None
        content = _markdown_runs(block.spans).strip()
        marker = _BULLET.match(text) or _NUMBER.match(text)
        close = prev is not None and block.top - prev.bottom < 0.35 * max(block.size, 1.0) \
            and not _is_heading(prev, body) and _wrapped(prev, text, right)
        if close and not marker and out and out[-1]:
            out[-1] = _join(out[-1], content)
        elif marker:
            level = _nearest(indents, block.x0)
            list_base = level if list_base is None else min(list_base, level)
            if _BULLET.match(text):
                content = "- " + content.replace(text[0], "", 1).strip()
            out.append("  " * (level - list_base) + content)
        else:
            if previous is not None and not close:
                out.append("")
            out.append(content)
            list_base = None
        previous = block
    return "\n".join(out).strip("\n") + "\n"


def _nearest(values: list[float], value: float) -> int:
    return min(range(len(values)), key=lambda i: abs(values[i] - value)) if values else 0


def _table_markdown(rows: tuple[tuple[str, ...], ...]) -> list[str]:
    def cell(text: str) -> str:
        return " ".join((text or "").split()).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    if lines:
        lines.insert(1, "| " + " | ".join("---" for _ in rows[0]) + " |")
    return lines


def _spans_of(chars: list[dict]) -> Iterator[Span]:
    """Runs of characters in one font, with a space wherever the gap between glyphs shows one."""
    run: list[str] = []
    font = None
    last_x1 = None
    for char in chars:
        key = (char.get("fontname", ""), round(char.get("size", 0.0) * 2) / 2)
        gap = last_x1 is not None and char["x0"] - last_x1 > 0.2 * char.get("size", 10.0)
        if font is not None and key != font:
            yield Span(text="".join(run), bold=bool(_BOLD_FONT.search(font[0])),
                       italic=bool(_ITALIC_FONT.search(font[0])), size=font[1])
            run = []
        if gap and (run or font is not None) and char["text"] != " " and not (run and run[-1] == " "):
            run.append(" ")
        run.append(char["text"])
        font, last_x1 = key, char["x1"]
    if run and font is not None:
        yield Span(text="".join(run), bold=bool(_BOLD_FONT.search(font[0])),
                   italic=bool(_ITALIC_FONT.search(font[0])), size=font[1])


def read_blocks(pdf) -> list[Block]:
    """Lines and ruled tables of an open `pdfplumber.PDF`, in reading order (page, then top to bottom)."""
    blocks: list[Block] = []
    for number, page in enumerate(pdf.pages, start=1):
        tables = page.find_tables()
        boxes = [t.bbox for t in tables]
        placed: list[tuple[float, Block]] = [
            (t.bbox[1], Table(page=number, top=t.bbox[1], rows=tuple(tuple(c or "" for c in r) for r in t.extract())))
            for t in tables
        ]
        for line in page.extract_text_lines(return_chars=True, strip=False):
            middle_y = (line["top"] + line["bottom"]) / 2
            middle_x = (line["x0"] + line["x1"]) / 2
            if any(x0 <= middle_x <= x1 and top <= middle_y <= bottom for x0, top, x1, bottom in boxes):
                continue
            spans = tuple(_spans_of(sorted(line["chars"], key=lambda c: c["x0"])))
            placed.append((line["top"], Line(page=number, top=line["top"], bottom=line["bottom"],
                                             x0=line["x0"], x1=line["x1"], spans=spans)))
        blocks += [b for _, b in sorted(placed, key=lambda p: p[0])]
    return blocks
