"""Structure-aware sectioning: a document becomes SOPs, an SOP becomes sections.

SOP boundaries are read from what headings *say*, not from their level: real handbooks mix
`##` … `#####`, wrap headings in `**` and repeat their title for every part. A heading starts
an SOP when it carries its own number (`A.1: Sub-Category: …`), reads `SOP: …`, or is named in
the catalog. Category headings (`Category A: …`), document and part titles, and peer numbered
headings (`4. Exception Handling`) end the current SOP. Any other heading inside an SOP, and
bold labels such as `**Automation Rules:**` or `**Response Template (Licenses):**`, start a
section; every `IF …` rule is a unit of its own so a rule is never split from its action.
Document versions and effective dates are taken from the nearest statement before the SOP
(or the document's trailing metadata block).

Markdown headings come from markdown-it-py's block tokens, which carry line numbers: ATX and
setext headings are both found, and a `# comment` inside a code fence is code, not a heading.
Plain text (and text extracted from files without structure) has no markup; there a heading is
a short standalone line, or a line that says `SOP: …`, `A.1: …` or `Category …:`.

Parsing runs in named steps: `_merge_front_matter`, `_outline` (headings and code lines),
`_read_facts` (versions, dates, listed categories), `_plan` (one SOP or several), then
`_Reader` walks the lines and `_build` turns what it collected into `SOP` values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re

from sopilot.ingest.catalog import DocumentEntry, split_front_matter
from sopilot.ingest.documents import Document

from sopilot.core.errors import DocumentError
from sopilot.core.sop import SOP, Section

_NUMBERED_SOP = re.compile(r"""
    ^([A-Z]) \. (\d+) \s*:\s*          # the SOP number:          "A.1:"
    (?:Sub-Category \s*:\s*)?          # an optional label:       "Sub-Category:"
    (.+)$                              # the title:               "Overcharge / Duplicate Charge"
""", re.X)
_CATEGORY = re.compile(r"""
    ^Category \s+ ([A-Z0-9]+) \s*:\s*  # "Category A:"
    (.+)$                              # "Billing & Payment Issues"
""", re.X | re.I)
_SOP_TITLE = re.compile(r"""
    ^SOP \s*:\s* (.+)$                 # "SOP: Billing Dispute"
""", re.X | re.I)
_NUMBERED_HEADING = re.compile(r"""
    ^\d+ \. \s+ \S                     # a numbered part of a document: "4. Exception Handling"
""", re.X)
_NUMBER_PREFIX = re.compile(r"""
    ^\d+ \. \s+                        # the number of a numbered heading: "4. "
""", re.X)
_BOOKMARK = re.compile(r"""
    ^\s* \[bookmark: [^\]]* \] \s*     # a Word export's anchor: "[bookmark: section-0]1. Scope"
""", re.X)
_WRAPPED_BOLD = re.compile(r"""
    ^\*\* (.*) \*\*$                   # a whole heading in bold: "**C.1: Sub-Category: …**"
""", re.X)
_BOLD_LABEL = re.compile(r"""
    ^\s* (?:[-*]\s+ | >\s*)?           # an optional bullet or quote marker: "- " or "> "
    \*\* ([^*]+?) \s*:?\s* \*\*        # the bold label:                       "**Automation Rules:**"
    \s*:?\s* (.*)$                     # what follows on the line:             "Not Required."
""", re.X)
_RULE_START = re.compile(r"""
    ^\s* (?:[-*]\s+)? \*\*IF\b         # an automation rule: "- **IF** the ticket priority is …"
""", re.X | re.I)
_KEY_VALUE = re.compile(r"""
    ^\s* (?:[-*]\s+)? (?:\*\*|_)? \s*  # optional bullet, bold or italic: "- **", "_"
    (Document\ Version | Version | Effective\ Date | Last\ Updated | Updated)
    \s* (?:\*\*)? \s*:\s* (?:\*\*)? \s*
    (.+?) \s* _? \s*                   # the value: "**Document Version:** 2.1", "_Last updated: 2025-09-24_"
    (?: $ | (?= \s \*\*[^*]+ (?: :\*\* | \*\*\s*: ) ) )  # to the end, or to a next label: "1.0 **Last Updated:** …"
""", re.X | re.I)
_LIST_VALUES = re.compile(r"""
    ^\s* (?:[-*]\s+)? \*\*Category\*\* \s*:\s*
    (.+)$                              # "- **Category**: `Licenses` | `MobileFeature` | `BulkChange`"
""", re.X | re.I)
_NUMBERED_STEP = re.compile(r"""
    ^\s* (?: \d+[.)] | Step\s+\d+ )    # a step: "3. Check …", "2) Check …", "Step 4: Escalate …"
""", re.X)
_NOT_A_TEXT_HEADING = re.compile(r"""
    ^(?: Step\s+\d | SQL\b | [-*•] | \[ )   # step lines, SQL labels, bullets, placeholders: "Step 1: …", "[Name]"
""", re.X)
_THEMATIC_BREAK = re.compile(r"""
    ^\s* (?: ---+ | \*\*\*+ | ___+ ) \s*$   # a horizontal rule: "---"
""", re.X)
_PARENTHESISED = re.compile(r"""
    \( .*? \)                          # "(for better RAG retrieval)"
""", re.X)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_WORD = re.compile(r"[a-z]+")
_CAMEL = re.compile(r"""
    ([a-z]) ([A-Z])                    # a camel-case joint: "MobileFeature"
""", re.X)
_PLURAL = re.compile(r"(es|s)$")
_SPACES = re.compile(r"\s+")
_HAS_WORD = re.compile(r"\w")

_LABELS_WITH_TEXT = ("disclaimer", "final disclaimer", "purpose", "scope", "note")
_DATE_FORMATS = ("%Y-%m-%d", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%d/%m/%Y", "%Y/%m/%d")

KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("response template", "macro", "canned repl"), "response_template"),
    (("automation rule",), "automation_rules"),
    (("procedure", "process step", "steps taken", "steps"), "procedure"),
    (("escalation",), "escalation"),
    (("glossary", "definition", "entities"), "glossary"),
    (("purpose", "scope", "introduction", "overview", "guiding principle"), "overview"),
    (("disclaimer",), "disclaimer"),
    (("metadata",), "metadata"),
    (("responsibilit", "owner", "approver"), "responsibilities"),
    (("kpi", "quality", "sla", "response target"), "quality"),
)


def section_kind(label: str) -> str | None:
    """Map a section label to its canonical kind, or None when it names none."""
    lowered = label.lower()
    for needles, kind in KINDS:
        if any(n in lowered for n in needles):
            return kind
    return None


def slug(text: str) -> str:
    """Lower-case, hyphen-separated identifier of a title."""
    text = _PARENTHESISED.sub("", text.lower())
    return _NOT_SLUG.sub("-", text).strip("-") or "untitled"


def _clean_heading(text: str) -> str:
    text = _BOOKMARK.sub("", text).strip()
    text = _WRAPPED_BOLD.sub(r"\1", text).strip()
    return text.replace("**", "").rstrip(":").strip()


def _norm(text: str) -> str:
    return _SPACES.sub(" ", _clean_heading(text)).casefold()


def _iso_date(value: str) -> str | None:
    value = value.strip().strip("`_* ")
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _stems(text: str) -> set[str]:
    words = _CAMEL.sub(r"\1 \2", text).lower().replace("(s)", "s")
    return {_PLURAL.sub("", w) for w in _WORD.findall(words) if len(w) > 2}


def _key_value(line: str) -> re.Match[str] | None:
    return _KEY_VALUE.match(line.replace("**:", ":**") if "**:" in line else line)


# --- step 1: front matter -------------------------------------------------------------------------


def _merge_front_matter(document: Document, entry: DocumentEntry) -> tuple[DocumentEntry, list[str]]:
    """The catalog entry with the document's own front matter over it, and the body's lines."""
    front, body, _ = split_front_matter(document.text, document.source)
    if front is not None:
        merged = entry.model_dump(exclude_unset=True) | front.model_dump(exclude_unset=True)
        entry = DocumentEntry.model_validate(merged)
    return entry, body.split("\n")


# --- step 2: the outline --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Heading:
    text: str
    level: int
    line: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Outline:
    """Where the headings are, and which lines are code or heading markup rather than text."""

    headings: dict[int, _Heading]
    """1-based line number → heading, in document order."""
    code: frozenset[int] = frozenset()
    """Lines inside code blocks: kept as text, never read as labels or rules."""
    markup: frozenset[int] = frozenset()
    """Setext underlines and continuation lines of a heading: neither heading nor text."""


@functools.cache
def _markdown_parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def _markdown_outline(lines: list[str]) -> _Outline:
    tokens = _markdown_parser().parse("\n".join(lines))
    headings: dict[int, _Heading] = {}
    code: set[int] = set()
    markup: set[int] = set()
    for index, token in enumerate(tokens):
        if token.map is None:
            continue
        first, end = token.map[0] + 1, token.map[1]
        if token.type == "heading_open":
            inline = tokens[index + 1].content.replace("\n", " ")
            headings[first] = _Heading(_clean_heading(inline), int(token.tag[1]), first)
            markup.update(range(first + 1, end + 1))
        elif token.type in {"fence", "code_block"}:
            code.update(range(first, end + 1))
    return _Outline(headings=dict(sorted(headings.items())), code=frozenset(code), markup=frozenset(markup))


def _is_text_heading(text: str, line: str, before: str, after: str) -> bool:
    """A short standalone line that reads as a title: "Procedure", "4. Escalation"."""
    words = len(text.split())
    return bool(
        text and not before and not after and "\t" not in line and words <= 6
        and text[0].isupper() and not text.endswith((".", ",", ";", ":", "?"))
        and not _NOT_A_TEXT_HEADING.match(text)
        and (words <= 3 or _NUMBERED_HEADING.match(text))
    )


def _text_outline(lines: list[str]) -> _Outline:
    headings: dict[int, _Heading] = {}
    for i, line in enumerate(lines, start=1):
        text = _clean_heading(line)
        before = lines[i - 2].strip() if i >= 2 else ""
        after = lines[i].strip() if i < len(lines) else ""
        if _SOP_TITLE.match(text) or _NUMBERED_SOP.match(text) or _CATEGORY.match(text):
            headings[i] = _Heading(text, 1, i)
        elif _is_text_heading(text, line, before, after):
            headings[i] = _Heading(text, 2, i)
    return _Outline(headings=headings)


def _outline(lines: list[str], syntax: str) -> _Outline:
    """The headings of a document, from Markdown tokens or from the shape of plain-text lines."""
    return _markdown_outline(lines) if syntax == "markdown" else _text_outline(lines)


# --- step 3: document facts -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Facts:
    """Versions, effective dates and listed categories stated anywhere in the document."""

    versions: tuple[tuple[int, str | None], ...]
    dates: tuple[tuple[int, str | None], ...]
    categories: tuple[str, ...]

    @staticmethod
    def near(values: tuple[tuple[int, str | None], ...], line: int) -> str | None:
        """The last value stated before `line`, else the first one (a trailing metadata block)."""
        before = [v for i, v in values if i <= line]
        return before[-1] if before else (values[0][1] if values else None)

    def listed_category(self, title: str) -> str | None:
        """A category of the document's metadata list whose words all occur in the title."""
        title_stems = _stems(title)
        for value in self.categories:
            if _stems(value) and _stems(value) <= title_stems:
                return value
        return None


def _read_facts(lines: list[str]) -> _Facts:
    versions: list[tuple[int, str | None]] = []
    dates: list[tuple[int, str | None]] = []
    categories: list[str] = []
    for i, line in enumerate(lines, start=1):
        kv = _key_value(line)
        if kv:
            key, value = kv.group(1).lower(), kv.group(2).strip().strip("`*_ ")
            if "version" in key:
                versions.append((i, value))
            else:
                dates.append((i, _iso_date(value)))
        listed = _LIST_VALUES.match(line)
        if listed:
            categories = [v.strip(" `") for v in listed.group(1).split("|") if v.strip(" `")]
    return _Facts(versions=tuple(versions), dates=tuple(dates), categories=tuple(categories))


# --- step 4: one SOP or several -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Plan:
    """How a document divides: its title, and whether it is one SOP or names several."""

    title: str
    first_heading: _Heading | None
    single: bool
    catalog_ids: dict[str, str]
    """Normalised heading text → sop_id, from the catalog."""


def _plan(document: Document, entry: DocumentEntry, outline: _Outline) -> _Plan:
    headings = list(outline.headings.values())
    catalog_ids = {_norm(k): v for k, v in entry.sops.items()}
    sop_titles = [h for h in headings if _SOP_TITLE.match(h.text)]
    numbered = [h for h in headings if _NUMBERED_SOP.match(h.text)]
    listed = [h for h in headings if _norm(h.text) in catalog_ids]
    first = headings[0] if headings else None
    title = _SOP_TITLE.sub(r"\1", first.text) if first else document.path.stem
    single = bool(entry.sop_id) or not (numbered or listed or len(sop_titles) > 1)
    return _Plan(title=title, first_heading=first, single=single, catalog_ids=catalog_ids)


# --- step 5: reading the lines --------------------------------------------------------------------


@dataclasses.dataclass
class _Unit:
    """A section being read: its kind, label, lines and first line number."""

    kind: str
    heading: str
    lines: list[str]
    start: int


@dataclasses.dataclass
class _Open:
    """An SOP being read."""

    sop_id: str
    title: str
    category: str | None
    start: int
    default_kind: str
    units: list[_Unit] = dataclasses.field(default_factory=list)
    label_level: int = 99


class _Reader:
    """Walks a document's lines once, opening SOPs at their headings and sections inside them."""

    def __init__(self, entry: DocumentEntry, plan: _Plan, facts: _Facts) -> None:
        self.entry, self.plan, self.facts = entry, plan, facts
        self.sops: dict[str, _Open] = {}
        self.current: _Open | None = None
        self.category: str | None = None
        if plan.single:
            prefix = entry.id_prefix
            sop_id = entry.sop_id or (f"{prefix}.{slug(plan.title)}" if prefix else slug(plan.title))
            self._open(sop_id, entry.title or plan.title, 1).units[-1].kind = "overview"

    def _id_of_title(self, title: str) -> str:
        return f"{self.entry.id_prefix}.{slug(title)}" if self.entry.id_prefix else slug(title)

    def _open(self, sop_id: str, title: str, line: int) -> _Open:
        if sop_id in self.sops:  # a second heading of the same SOP (e.g. a preamble and its definitions)
            current = self.sops[sop_id]
        else:
            current = _Open(sop_id=sop_id, title=title, start=line, default_kind=section_kind(title) or "overview",
                            category=self.category or self.facts.listed_category(title))
            self.sops[sop_id] = current
        current.units.append(_Unit(section_kind(title) or current.default_kind, title, [], line + 1))
        current.label_level = 99
        self.current = current
        return current

    def boundary(self, heading: _Heading) -> bool:
        """Open or close an SOP at a heading that marks one; True when the heading was consumed."""
        text = heading.text
        numbered, named = _NUMBERED_SOP.match(text), _SOP_TITLE.match(text)
        if numbered:
            self._open(f"{numbered.group(1)}.{numbered.group(2)}", numbered.group(3).strip(), heading.line)
        elif _norm(text) in self.plan.catalog_ids:
            title = _SOP_TITLE.sub(r"\1", _NUMBER_PREFIX.sub("", text)).strip()
            if _NUMBERED_HEADING.match(text):
                self.category = None
            self._open(self.plan.catalog_ids[_norm(text)], title, heading.line)
        elif named:
            title = named.group(1).strip()
            self._open(self._id_of_title(title), title, heading.line)
        elif category := _CATEGORY.match(text):
            self.category, self.current = category.group(2).strip(), None
        elif heading.level == 1 or self._is_part_title(text) or _NUMBERED_HEADING.match(text):
            self.current = None
            if _NUMBERED_HEADING.match(text):
                self.category = None
        else:
            return False
        return True

    def _is_part_title(self, text: str) -> bool:
        """A heading that repeats the document's title ("… Handbook - Part 2") ends the SOP before it."""
        return bool(self.plan.title) and _norm(self.plan.title) in _norm(text)

    @staticmethod
    def section_heading(current: _Open, heading: _Heading) -> None:
        """A heading inside an SOP starts a section; a deeper one stays in its section (steps of a procedure)."""
        kind: str | None
        if heading.level > current.label_level:
            kind = current.units[-1].kind
        else:
            kind = section_kind(heading.text)
            current.label_level = heading.level
        current.units.append(_Unit(kind or slug(heading.text).replace("-", "_"), heading.text, [], heading.line + 1))

    @staticmethod
    def text_line(current: _Open, number: int, line: str) -> None:
        """A line of text: a bold section label, the start of another rule, or content."""
        units = current.units
        if _key_value(line) or _LIST_VALUES.match(line):
            return
        label = _BOLD_LABEL.match(line)
        rule = _RULE_START.match(line)
        if label and not rule:
            name, rest = _clean_heading(label.group(1)), label.group(2).strip()
            kind = section_kind(name)
            if kind and (not rest or name.lower() in _LABELS_WITH_TEXT):
                units.append(_Unit(kind, name, [rest] if rest else [], number if rest else number + 1))
                return
        if rule and units[-1].kind == "automation_rules" and any(_RULE_START.match(x) for x in units[-1].lines):
            units.append(_Unit("automation_rules", _clean_heading(line.strip(" -*")), [], number))
        if _THEMATIC_BREAK.match(line):
            return
        units[-1].lines.append(line)

    def read(self, lines: list[str], outline: _Outline) -> None:
        """Feed every line of the document through the reader."""
        first = self.plan.first_heading
        for number, line in enumerate(lines, start=1):
            if number in outline.markup:
                continue
            heading = outline.headings.get(number)
            if heading is not None and not self.plan.single and self.boundary(heading):
                continue
            current = self.current
            if current is None:
                continue
            if number in outline.code:
                current.units[-1].lines.append(line)
            elif heading is not None:
                if not (self.plan.single and first is not None and number == first.line):
                    self.section_heading(current, heading)
            else:
                self.text_line(current, number, line)


# --- step 6: SOPs ---------------------------------------------------------------------------------


def _section(unit: _Unit, default_kind: str) -> Section | None:
    """The finished section of a unit, or None when it holds no words (or only metadata)."""
    lines, start = list(unit.lines), unit.start
    while lines and not lines[0].strip():
        lines.pop(0)
        start += 1
    while lines and not lines[-1].strip():
        lines.pop()
    if unit.kind == "metadata" or not any(_HAS_WORD.search(x) for x in lines):
        return None
    kind = unit.kind
    if kind == default_kind == "overview" and sum(bool(_NUMBERED_STEP.match(x)) for x in lines) >= 3:
        kind = "procedure"
    return Section(kind=kind, heading=unit.heading, text="\n".join(lines).strip("\n"),
                   line_start=start, line_end=start + len(lines) - 1)


def _build(reader: _Reader, document: Document) -> list[SOP]:
    entry, facts = reader.entry, reader.facts
    default_category = entry.category or _clean_heading(reader.plan.title)
    result: list[SOP] = []
    for sop in reader.sops.values():
        sections = tuple(s for s in (_section(u, sop.default_kind) for u in sop.units) if s is not None)
        if not sections:
            continue
        result.append(SOP(
            sop_id=sop.sop_id, title=entry.titles.get(sop.sop_id, sop.title),
            category=sop.category or default_category, source=document.source,
            version=facts.near(facts.versions, sop.start), effective_date=facts.near(facts.dates, sop.start),
            answerable=entry.answerable, sections=sections,
        ))
    return result


def parse_sops(document: Document, entry: DocumentEntry) -> list[SOP]:
    """Split one document into SOPs; raise `DocumentError` when it holds none."""
    entry, lines = _merge_front_matter(document, entry)
    outline = _outline(lines, document.syntax)
    reader = _Reader(entry, _plan(document, entry, outline), _read_facts(lines))
    reader.read(lines, outline)
    result = _build(reader, document)
    if not result:
        raise DocumentError(document.source, "contains no SOP text: add headings and procedure steps")
    return result
