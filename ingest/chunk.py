"""Sections → chunks sized for the embedding model, each with a contextual header.

A chunk never exceeds the token budget (all-MiniLM-L6-v2 reads 256 word pieces and silently
drops the rest), and is split only between lines, so a step is never cut in half. The header
(SOP title, category and section) is part of the embedded text, so even a chunk of bare
steps knows which SOP it belongs to. Chunk ids hash content and metadata: the same document
gives the same ids, which makes re-ingest idempotent and lets unchanged chunks keep their
embeddings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable

from sopilot.core.sop import SOP, Section

SKIPPED_KINDS = frozenset({"disclaimer"})
"""Document boilerplate kept for citation but not retrieved: it speaks for no single SOP."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Chunk:
    """One retrievable unit: header + body, with the metadata every hit carries."""

    chunk_id: str
    text: str
    """What is embedded and indexed: header, then body."""
    body: str
    metadata: dict[str, str | int | float | bool]


def header(sop: SOP, section: Section) -> str:
    """The contextual header embedded with every chunk of a section.

    The sop_id is left out: to the embedding model "(A.1)" is noise (measured: hit@1 +0.008 without
    it); the lexical index adds ids itself.
    """
    label = section.kind.replace("_", " ")
    if section.heading and section.heading.lower() not in {label, sop.title.lower()}:
        label = f"{label}: {section.heading}"
    return f"{sop.title} | {sop.category} | {label}"


def _split_long_line(line: str, budget: int, count: Callable[[str], int]) -> list[str]:
    pieces, current = [], ""
    for word in re.split(r"(?<=[.;:!?])\s+|\s+(?=\S)", line):
        candidate = f"{current} {word}".strip()
        if current and count(candidate) > budget:
            pieces.append(current)
            current = word
        else:
            current = candidate
    return pieces + ([current] if current else [])


def _pack(lines: list[tuple[int, str]], budget: int, count: Callable[[str], int]) -> list[list[tuple[int, str]]]:
    groups: list[list[tuple[int, str]]] = [[]]
    for number, line in lines:
        pieces = [line] if count(line) <= budget else _split_long_line(line, budget, count)
        for piece in pieces:
            if groups[-1] and count("\n".join([x for _, x in groups[-1]] + [piece])) > budget:
                groups.append([])
            groups[-1].append((number, piece))
    return [g for g in groups if g]


def chunk_id(text: str, metadata: dict) -> str:
    """Content hash of a chunk's text and sorted metadata."""
    payload = json.dumps([text, sorted(metadata.items())], ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def chunk_sop(sop: SOP, *, budget: int, count: Callable[[str], int]) -> list[Chunk]:
    """All chunks of one SOP, in document order."""
    chunks: list[Chunk] = []
    for order, section in enumerate(sop.sections):
        if section.kind in SKIPPED_KINDS:
            continue
        head = header(sop, section)
        body_budget = max(16, budget - count(head) - 1)
        lines = [(section.line_start + i, x.rstrip()) for i, x in enumerate(section.text.split("\n")) if x.strip()]
        for part, group in enumerate(_pack(lines, body_budget, count)):
            body = "\n".join(x for _, x in group)
            metadata: dict[str, str | int | float | bool] = {
                "sop_id": sop.sop_id, "title": sop.title, "category": sop.category,
                "section": section.kind, "heading": section.heading, "source": sop.source,
                "line_start": group[0][0], "line_end": group[-1][0],
                "order": order, "part": part, "answerable": sop.answerable,
            }
            if sop.version:
                metadata["version"] = sop.version
            if sop.effective_date:
                metadata["effective_date"] = sop.effective_date
            text = f"{head}\n{body}"
            chunks.append(Chunk(chunk_id=chunk_id(text, metadata), text=text, body=body, metadata=metadata))
    return chunks
