"""The SOP and its sections: the unit the knowledge base is made of, shared by every layer.

Ingest builds them from documents, the retriever rebuilds them from the index, the composer and
the evaluation read them; so they live in the foundation rather than in any one of those parts.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class Section:
    """A coherent piece of one SOP: a procedure, one automation rule, a response template."""

    kind: str
    """Canonical kind: procedure, automation_rules, response_template, overview, glossary, …"""
    heading: str
    """The label as written in the document."""
    text: str
    line_start: int
    line_end: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class SOP:
    """One standard operating procedure with its sections and document facts."""

    sop_id: str
    title: str
    category: str
    source: str
    version: str | None
    effective_date: str | None
    answerable: bool
    sections: tuple[Section, ...]

    def text_of(self, *kinds: str) -> str:
        """The text of every section of the given kinds, in document order."""
        return "\n".join(s.text for s in self.sections if s.kind in kinds)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The section kinds present, in document order, without repeats."""
        return tuple(dict.fromkeys(s.kind for s in self.sections))
