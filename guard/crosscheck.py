"""Cross-check of the policy file against the handbook text it encodes.

Each threshold in `policies.yaml` quotes the handbook text it comes from and names the
sub-category (`A.1`) whose text must contain it. If someone edits the handbook ($150.00 → $200.00)
and not the policy file, or the other way round, ingest reports an error naming the policy file key
and the document section. A dollar amount that appears in such a section but matches no threshold
is reported too, so editing one of two occurrences is caught as well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from sopilot.guard.policy import Policies

from sopilot.core.money import find_amounts

_INLINE_MATH = re.compile(r"\$\s*\\(leq|le|geq|ge|lt|gt)\s*([\d.,]+)\s*\$")
_MATH = {"leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "lt": "<", "gt": ">"}
_LETTER_ID = re.compile(r"^[A-Z]\.\d+$")


def _normalise(text: str) -> str:
    """The document as prose: Markdown escapes, emphasis and inline math removed, whitespace collapsed."""
    text = _INLINE_MATH.sub(lambda m: f"{_MATH[m.group(1)]} {m.group(2)}", text)
    text = re.sub(r"\\([$%#&_*\[\]()<>])", r"\1", text)
    text = text.replace("**", "").replace("__", "")
    return re.sub(r"[ \t\u00a0]+", " ", text)


def _section(text: str, section_id: str) -> str | None:
    """The lines from the heading that names `section_id` ("A.1:") to the next heading."""
    heading = re.compile(rf"^\s*#.*(?<![\w.]){re.escape(section_id)}\s*:", re.MULTILINE)
    match = heading.search(text)
    if match is None:
        return None
    rest = text[match.end():]
    following = re.search(r"^\s*#", rest, re.MULTILINE)
    return text[match.start():match.end() + (following.start() if following else len(rest))]


def _contains(section: str, quote: str) -> bool:
    pattern = rf"(?<![\w.]){re.escape(_normalise(quote).strip())}(?!\w)"
    return re.search(pattern, section) is not None


def check_thresholds(policies: Policies, documents: Mapping[str, str]) -> list[str]:
    """Errors where the policy file's thresholds and the documents disagree (empty when they agree).

    Args:
        policies: the loaded policy file.
        documents: file name (or path) → text. Documents the policy file does not cite are ignored, and a
            cited document that is not given is skipped (an ingest of other files does not re-check it).
    """
    texts = {Path(name).name: _normalise(text) for name, text in documents.items()}
    where = policies.source.name
    errors: list[str] = []
    declared: dict[tuple[str, str], set[Decimal]] = {}
    reported: set[tuple[str, str]] = set()
    for threshold in policies.thresholds.values():
        text = texts.get(threshold.document)
        if text is None:
            continue
        key = f"{where}: thresholds.{threshold.name} = {threshold.value}"
        section = _section(text, threshold.section)
        if section is None:
            errors.append(f"{key} cites §{threshold.section} of {threshold.document}, but the document has no "
                          f"section {threshold.section}: restore the heading or update the threshold")
            continue
        if threshold.unit == "usd":
            declared.setdefault((threshold.document, threshold.section), set()).add(threshold.value)
        if not _contains(section, threshold.quote):
            stated = sorted({str(m) for m in find_amounts(section)}) if threshold.unit == "usd" else []
            now = f" (it states {', '.join(stated)})" if stated else ""
            reported.add((threshold.document, threshold.section))
            errors.append(f"{key} expects {threshold.quote!r} in {threshold.document} §{threshold.section}, but the "
                          f"document no longer says it{now}: update the threshold in {where} or the document")
    for (document, section_id), values in declared.items():
        if (document, section_id) in reported:
            continue
        section = _section(texts[document], section_id) or ""
        for money in find_amounts(section):
            if money.amount not in values:
                names = [t.name for t in policies.thresholds.values()
                         if t.document == document and t.section == section_id and t.unit == "usd"]
                errors.append(f"{document} §{section_id} states {money}, which matches no threshold of {where} "
                              f"(thresholds.{', thresholds.'.join(names)}): update one of them")
    for sop_id in policies.policies:
        text = texts.get(policies.document)
        if text is not None and _LETTER_ID.match(sop_id) and _section(text, sop_id) is None:
            errors.append(f"{where}: policies.{sop_id} has no section {sop_id} in {policies.document}")
    return list(dict.fromkeys(errors))
