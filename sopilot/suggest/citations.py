"""Citations: the exact SOP sections a reply rests on, and the token-budgeted context given to the LLM.

A citation is a whole section of an indexed SOP (its source file, line range and text as indexed),
so an agent can check every statement of a suggested reply against the document. The LLM's
context is built from the same sections in priority order (the automation rule that decided, the
response template, the procedure); sections that do not fit `llm_context_tokens` are dropped
whole, and when even the first one does not fit, it keeps only its leading whole steps: a step is
never cut in the middle.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

EXCEPTIONS_SOP = "hb.exceptions"
"""The handbook's §4: the Policy Exception queue, cited whenever a ticket goes to manual review."""

_STEP = re.compile(r"^(\s*)(?:\d+[.)]\s|Step\s+\d+|[-*•]\s|\*\*IF\b|\|)", re.IGNORECASE)
_MARKUP = re.compile(r"[*_`]+")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Citation:
    """One SOP section (or its leading steps) that a reply rests on."""

    sop_id: str
    title: str
    section: str
    """The section kind: procedure, automation_rules, response_template, …"""
    heading: str
    source: str
    line_start: int
    line_end: int
    text: str
    partial: bool = False
    """Only the section's leading whole steps are included (the token budget was too small)."""
    verified: bool = False
    """The text was found at exactly these lines of the source file (see `locate`)."""

    def to_json(self) -> dict[str, Any]:
        """The citation as in `suggest --json`."""
        return {"sop_id": self.sop_id, "title": self.title, "section": self.section, "heading": self.heading,
                "source": self.source, "lines": [self.line_start, self.line_end], "text": self.text,
                "partial": self.partial, "verified": self.verified}


def cite(sop, section) -> Citation:
    """The citation of a whole section of `sop`."""
    return Citation(sop_id=sop.sop_id, title=sop.title, section=section.kind, heading=section.heading,
                    source=sop.source, line_start=section.line_start, line_end=section.line_end, text=section.text)


@functools.lru_cache(maxsize=32)
def _file_lines(path: str, _mtime_ns: int) -> tuple[str, ...]:
    return tuple(line.strip() for line in Path(path).read_text(encoding="utf-8", errors="replace").split("\n"))


def _match(lines: tuple[str, ...], wanted: list[str], start: int) -> int | None:
    """The index of the last line when `wanted` (blank lines aside) runs from `start`, else None."""
    i = start
    for number, line in enumerate(wanted):
        while number and i < len(lines) and not lines[i]:
            i += 1
        if i >= len(lines) or lines[i] != line:
            return None
        i += 1
    return i - 1


def locate(citation: Citation, directory: Path) -> Citation:
    """The citation with the line range where its text really stands in `directory/source`.

    The index's line numbers are what ingest recorded; reading the file confirms them (or moves
    them to the nearest place the text stands) so an agent who opens the file finds these exact
    lines. A file that is missing or no longer holds the text leaves the citation unverified.
    """
    path = directory / citation.source
    try:
        lines = _file_lines(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError):
        return citation
    wanted = [line.strip() for line in citation.text.split("\n") if line.strip()]
    if not wanted:
        return citation
    starts = [i for i, line in enumerate(lines) if line == wanted[0]]
    for start in sorted(starts, key=lambda i: abs(i + 1 - citation.line_start)):
        end = _match(lines, wanted, start)
        if end is not None:
            return dataclasses.replace(citation, line_start=start + 1, line_end=end + 1, verified=True)
    return citation


def _plain(text: str) -> str:
    return " ".join(_MARKUP.sub("", text).split()).casefold()


def rule_section(sop, decision) -> Any | None:
    """The automation-rule section of `sop` whose ACTION (and SLA, team) the decision carries, if any."""
    if sop is None or decision.rule is None:
        return None
    best, best_score = None, 0
    for section in sop.sections:
        if section.kind != "automation_rules":
            continue
        text = _plain(section.text)
        score = 3 * (_plain(decision.action) in text)
        score += bool(decision.sla) and _plain(f"SLA: {decision.sla}") in text
        score += bool(decision.escalate_to) and _plain(decision.escalate_to) in text
        if score > best_score:
            best, best_score = section, score
    return best if best_score >= 2 else None


def decision_citations(sop, decision, sops: Mapping[str, Any]) -> list[Citation]:
    """What a decision rests on: its automation rule, and the Policy Exception section for a manual review."""
    found = []
    section = rule_section(sop, decision)
    if section is not None:
        found.append(cite(sop, section))
    if decision.outcome == "manual_review" and EXCEPTIONS_SOP in sops:
        exceptions = sops[EXCEPTIONS_SOP]
        found += [cite(exceptions, s) for s in exceptions.sections[:1]]
    return found


def context_sections(sop, decision) -> list:
    """The sections of `sop` worth giving the LLM, most important first."""
    if sop is None:
        return []
    ordered = []
    rule = rule_section(sop, decision)
    if rule is not None:
        ordered.append(rule)
    ordered += [s for s in sop.sections if s.kind == "response_template"]
    ordered += [s for s in sop.sections if s.kind == "procedure"]
    return list(dict.fromkeys(ordered))


def steps(text: str) -> list[str]:
    """The text split into whole steps: a numbered or bulleted line with its continuation lines."""
    lines = text.split("\n")
    top = min((len(m.group(1)) for line in lines if (m := _STEP.match(line))), default=None)
    units: list[list[str]] = []
    fenced = False
    for line in lines:
        match = None if fenced else _STEP.match(line)
        if match and top is not None and len(match.group(1)) <= top or not units:
            units.append([line])
        else:
            units[-1].append(line)
        if line.strip().startswith("```"):
            fenced = not fenced
    return ["\n".join(unit) for unit in units]


def _block(citation: Citation) -> str:
    return f"[{citation.heading or citation.section}] ({citation.source}, lines {citation.line_start}-" \
           f"{citation.line_end})\n{citation.text}"


def fit(citations: Iterable[Citation], budget: int, count: Callable[[str], int]) -> list[Citation]:
    """The citations that fit `budget` tokens (as rendered by `render_context`), in the order given.

    A citation that does not fit is dropped whole; if nothing has been kept yet, its leading whole
    steps are kept instead (marked `partial`).
    """
    kept: list[Citation] = []
    used = 0
    for citation in citations:
        cost = count(_block(citation)) + 2
        if used + cost <= budget:
            kept.append(citation)
            used += cost
            continue
        if kept:
            continue
        taken: list[str] = []
        for step in steps(citation.text):
            trial = dataclasses.replace(citation, text="\n".join([*taken, step]), partial=True)
            if used + count(_block(trial)) + 2 > budget:
                break
            taken.append(step)
        if taken:
            partial = dataclasses.replace(citation, text="\n".join(taken), partial=True)
            kept.append(partial)
            used += count(_block(partial)) + 2
    return kept


def render_context(citations: Iterable[Citation]) -> str:
    """The SOP context block of the prompt."""
    blocks = [_block(c) for c in citations]
    return "\n\n".join(blocks) if blocks else "(no SOP matched this ticket)"
