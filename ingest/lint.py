"""The knowledge lint: what a support-operations lead should fix in the documents.

It lists placeholders left in a document (`[NUMBER]`, `{ticket_id}`), answerable SOPs that have
neither a procedure nor automation rules, and every threshold stated in the text (money,
percentages, durations) per SOP — the numbers the guard's policy file must agree with.
"""

from __future__ import annotations

import dataclasses
import re

from sopilot.core.sop import SOP

_PLACEHOLDER = re.compile(r"\[(?:[A-Z][A-Z0-9 _/-]{1,30})\]|\{[a-z_][a-z0-9_]{1,30}\}")
_MONEY = r"(?:\$|USD\s?)\s?\d[\d,]*(?:\.\d+)?"
_PERCENT = r"[<>≤≥]?\s?\d+(?:\.\d+)?\s?%"
_DURATION = (r"\d+(?:\.\d+)?(?:-|\s)(?:business\s+)?(?:hours?|days?|minutes?|mins?|months?|weeks?|years?)\b"
             r"|\d+-(?:hour|day|month|minute|week)\b")
THRESHOLD = re.compile(f"{_MONEY}|{_PERCENT}|{_DURATION}", re.I)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Finding:
    """One lint finding, with where it stands."""

    kind: str
    """`placeholder`, `no_procedure` or `threshold`."""
    sop_id: str
    source: str
    line: int
    text: str


def lint(sops: list[SOP]) -> list[Finding]:
    """Every finding for these SOPs, in document order."""
    findings: list[Finding] = []
    for sop in sops:
        if sop.answerable and not {"procedure", "automation_rules"} & set(sop.kinds):
            findings.append(Finding(kind="no_procedure", sop_id=sop.sop_id, source=sop.source,
                                    line=sop.sections[0].line_start, text=f"{sop.title} has no procedure steps"))
        for section in sop.sections:
            for offset, line in enumerate(section.text.split("\n")):
                number = section.line_start + offset
                for match in _PLACEHOLDER.finditer(line):
                    if not sop.answerable:
                        break
                    findings.append(Finding(kind="placeholder", sop_id=sop.sop_id, source=sop.source,
                                            line=number, text=match.group(0)))
                for match in THRESHOLD.finditer(line):
                    findings.append(Finding(kind="threshold", sop_id=sop.sop_id, source=sop.source,
                                            line=number, text=match.group(0).strip()))
    return findings
