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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from sopilot.core.sop import SOP, Section
from sopilot.ingest.catalog import DocumentEntry, split_front_matter
from sopilot.ingest.documents import Document
from sopilot.core.errors import DocumentError

_NUMBERED_SOP = re.compile(r"^([A-Z])\.(\d+)\s*:\s*(?:Sub-Category\s*:\s*)?(.+)$")
_CATEGORY = re.compile(r"^Category\s+([A-Z0-9]+)\s*:\s*(.+)$", re.I)
_SOP_TITLE = re.compile(r"^SOP\s*:\s*(.+)$", re.I)
_NUMBERED_HEADING = re.compile(r"^\d+\.\s+\S")
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_BOOKMARK = re.compile(r"^\s*\[bookmark:[^\]]*\]\s*")
_BOLD_LABEL = re.compile(r"^\s*(?:[-*]\s+|>\s*)?\*\*([^*]+?)\s*:?\s*\*\*\s*:?\s*(.*)$")
_RULE_START = re.compile(r"^\s*(?:[-*]\s+)?\*\*IF\b", re.I)
_KEY_VALUE = re.compile(
    r"^\s*(?:[-*]\s+)?(?:\*\*|_)?\s*(Document Version|Version|Effective Date|Last Updated|Updated)"
    r"\s*(?:\*\*)?\s*:\s*(?:\*\*)?\s*(.+?)\s*_?\s*$",
    re.I,
)
_LIST_VALUES = re.compile(r"^\s*(?:[-*]\s+)?\*\*Category\*\*\s*:\s*(.+)$", re.I)
_NUMBERED_STEP = re.compile(r"^\s*(?:\d+[.)]|Step\s+\d+)")
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
    text = re.sub(r"\(.*?\)", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "untitled"


def _clean_heading(text: str) -> str:
    text = _BOOKMARK.sub("", text).strip()
    text = re.sub(r"^\*\*(.*)\*\*$", r"\1", text).strip()
    return text.replace("**", "").rstrip(":").strip()


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", _clean_heading(text)).casefold()


def _iso_date(value: str) -> str | None:
    value = value.strip().strip("`_* ")
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _stems(text: str) -> set[str]:
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", text).lower()
    return {re.sub(r"(es|s)$", "", w) for w in re.findall(r"[a-z]+", words.replace("(s)", "s")) if len(w) > 2}


@dataclasses.dataclass
class _Heading:
    text: str
    level: int
    line: int


@dataclasses.dataclass
class _Open:
    """An SOP being read."""

    sop_id: str
    title: str
    category: str | None
    start: int
    default_kind: str
    units: list[list] = dataclasses.field(default_factory=list)  # [kind, heading, lines, start]
    label_level: int = 99


def _headings(lines: list[str], syntax: str) -> dict[int, _Heading]:
    """Find the heading lines of a document (1-based line numbers)."""
    found: dict[int, _Heading] = {}
    for i, line in enumerate(lines, start=1):
        if syntax == "markdown":
            m = _MD_HEADING.match(line)
            if m:
                found[i] = _Heading(_clean_heading(m.group(2)), len(m.group(1)), i)
            continue
        text = _clean_heading(line)
        before = lines[i - 2].strip() if i >= 2 else ""
        after = lines[i].strip() if i < len(lines) else ""
        if _SOP_TITLE.match(text) or _NUMBERED_SOP.match(text) or _CATEGORY.match(text):
            found[i] = _Heading(text, 1, i)
        elif (
            text and not before and not after and "\t" not in line and len(text.split()) <= 6
            and text[0].isupper() and not text.endswith((".", ",", ";", ":", "?"))
            and not re.match(r"^(Step\s+\d|SQL\b|[-*•]|\[)", text)
            and (len(text.split()) <= 3 or _NUMBERED_HEADING.match(text))
        ):
            found[i] = _Heading(text, 2, i)
    return found


def parse_sops(document: Document, entry: DocumentEntry) -> list[SOP]:
    """Split one document into SOPs; raise `DocumentError` when it holds none."""
    front, body, _ = split_front_matter(document.text, document.source)
    if front is not None:
        merged = entry.model_dump(exclude_unset=True) | front.model_dump(exclude_unset=True)
        entry = DocumentEntry.model_validate(merged)
    lines = body.split("\n")
    headings = _headings(lines, document.syntax)
    catalog_ids = {_norm(k): v for k, v in entry.sops.items()}
    sop_titles = [h for h in headings.values() if _SOP_TITLE.match(h.text)]
    numbered = [h for h in headings.values() if _NUMBERED_SOP.match(h.text)]
    listed = [h for h in headings.values() if _norm(h.text) in catalog_ids]
    first_heading = next(iter(headings.values()), None)
    doc_title = _SOP_TITLE.sub(r"\1", first_heading.text) if first_heading else document.path.stem
    single = bool(entry.sop_id) or not (numbered or listed or len(sop_titles) > 1)

    versions: list[tuple[int, str]] = []
    dates: list[tuple[int, str | None]] = []
    categories_listed: list[str] = []
    for i, line in enumerate(lines, start=1):
        kv = _KEY_VALUE.match(line.replace("**:", ":**") if "**:" in line else line)
        if kv:
            key, value = kv.group(1).lower(), kv.group(2).strip().strip("`*_ ")
            if "version" in key:
                versions.append((i, value))
            else:
                dates.append((i, _iso_date(value)))
        cm = _LIST_VALUES.match(line)
        if cm:
            categories_listed = [v.strip(" `") for v in cm.group(1).split("|") if v.strip(" `")]

    def near(values: list[tuple[int, str | None]], line: int) -> str | None:
        before = [v for i, v in values if i <= line]
        return before[-1] if before else (values[0][1] if values else None)

    def listed_category(title: str) -> str | None:
        title_stems = _stems(title)
        for value in categories_listed:
            if _stems(value) and _stems(value) <= title_stems:
                return value
        return None

    sops: dict[str, _Open] = {}
    order: list[str] = []
    current: _Open | None = None
    category: str | None = None

    def open_sop(sop_id: str, title: str, line: int) -> _Open:
        nonlocal current
        if sop_id in sops:  # a second heading of the same SOP (e.g. a preamble and its definitions)
            current = sops[sop_id]
        else:
            kind = section_kind(title) or "overview"
            current = _Open(sop_id=sop_id, title=title, category=category or listed_category(title),
                            start=line, default_kind=kind)
            sops[sop_id] = current
            order.append(sop_id)
        current.units.append([section_kind(title) or current.default_kind, title, [], line + 1])
        current.label_level = 99
        return current

    if single:
        sop_id = entry.sop_id or (f"{entry.id_prefix}.{slug(doc_title)}" if entry.id_prefix else slug(doc_title))
        open_sop(sop_id, entry.title or doc_title, 1)
        current.units[-1][0] = "overview"

    for i, line in enumerate(lines, start=1):
        heading = headings.get(i)
        if heading is not None and not single:
            text = heading.text
            m_num, m_sop, m_cat = _NUMBERED_SOP.match(text), _SOP_TITLE.match(text), _CATEGORY.match(text)
            if m_num:
                open_sop(f"{m_num.group(1)}.{m_num.group(2)}", m_num.group(3).strip(), i)
                continue
            if _norm(text) in catalog_ids:
                title = _SOP_TITLE.sub(r"\1", re.sub(r"^\d+\.\s+", "", text)).strip()
                if _NUMBERED_HEADING.match(text):
                    category = None
                open_sop(catalog_ids[_norm(text)], title, i)
                continue
            if m_sop:
                title = m_sop.group(1).strip()
                open_sop(f"{entry.id_prefix}.{slug(title)}" if entry.id_prefix else slug(title), title, i)
                continue
            if m_cat:
                category, current = m_cat.group(2).strip(), None
                continue
            if heading.level == 1 or (doc_title and _norm(doc_title) in _norm(text)) or _NUMBERED_HEADING.match(text):
                current = None
                if _NUMBERED_HEADING.match(text):
                    category = None
                continue
        if current is None:
            continue
        if heading is not None:
            if single and first_heading is not None and i == first_heading.line:
                continue
            if heading.level > current.label_level:
                kind = current.units[-1][0]  # a sub-heading stays in its section (e.g. steps of a procedure)
            else:
                kind = section_kind(heading.text)
                current.label_level = heading.level
            current.units.append([kind or slug(heading.text).replace("-", "_"), heading.text, [], i + 1])
            continue
        if _KEY_VALUE.match(line.replace("**:", ":**")) or _LIST_VALUES.match(line):
            continue
        label = _BOLD_LABEL.match(line)
        if label and not _RULE_START.match(line):
            name, rest = _clean_heading(label.group(1)), label.group(2).strip()
            kind = section_kind(name)
            if kind and (not rest or name.lower() in _LABELS_WITH_TEXT):
                current.units.append([kind, name, [rest] if rest else [], i if rest else i + 1])
                continue
        if _RULE_START.match(line) and current.units and current.units[-1][0] == "automation_rules":
            if any(_RULE_START.match(x) for x in current.units[-1][2]):
                current.units.append(["automation_rules", _clean_heading(line.strip(" -*")), [], i])
        if re.match(r"^\s*(---+|\*\*\*+|___+)\s*$", line):
            continue
        current.units[-1][2].append(line)

    result: list[SOP] = []
    default_category = entry.category or _clean_heading(doc_title)
    for sop_id in order:
        sop = sops[sop_id]
        sections = []
        for kind, heading_text, unit_lines, start in sop.units:
            while unit_lines and not unit_lines[0].strip():
                unit_lines.pop(0)
                start += 1
            while unit_lines and not unit_lines[-1].strip():
                unit_lines.pop()
            if kind == "metadata" or not unit_lines or not any(re.search(r"\w", x) for x in unit_lines):
                continue
            if kind == sop.default_kind == "overview" and sum(bool(_NUMBERED_STEP.match(x)) for x in unit_lines) >= 3:
                kind = "procedure"
            sections.append(Section(kind=kind, heading=heading_text, text="\n".join(unit_lines).strip("\n"),
                                    line_start=start, line_end=start + len(unit_lines) - 1))
        if not sections:
            continue
        result.append(SOP(
            sop_id=sop_id, title=entry.titles.get(sop_id, sop.title), category=sop.category or default_category, source=document.source,
            version=near(versions, sop.start), effective_date=near(dates, sop.start),
            answerable=entry.answerable, sections=tuple(sections),
        ))
    if not result:
        raise DocumentError(document.source, "contains no SOP text: add headings and procedure steps")
    return result
