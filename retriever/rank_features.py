"""Generic features of one (ticket, SOP) pair, for the learned ranker (`retriever.rank`).

A feature never names an SOP or a word: it says how strongly the ticket resembles the SOP by
each signal the retriever already computes, so a ranker fitted on one knowledge base transfers
to another. The signals are those of one search, nothing more (no extra encoder calls):

- dense: the SOP's best chunk against each piece of the ticket, aggregated over the pieces (the
  weighted mean the fusion uses, and the best piece); the mean of its two best chunks (an SOP
  that matches in several places); its best chunk of each kind of section (title and overview,
  procedure, automation rules, response template), where the kind the match comes from tells
  something a bare similarity does not; its rank and its distance from the best SOP;
- lexical: BM25 of the whole SOP, of its title alone and of its condition lines (the `IF …`
  rules and `Trigger:` lines, which state when an SOP applies), each against the normalised
  ticket, as logs and relative to the best SOP of the query; the share of the ticket's words
  the SOP uses;
- the current fusion's own score, so the ranker starts from what the hand-weighted sum knew.

Every value is relative within the query or bounded, so tickets of different lengths compare.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

SECTION_GROUPS: Mapping[str, str] = {
    "overview": "overview", "glossary": "overview", "metadata": "overview",
    "procedure": "procedure", "escalation": "procedure", "responsibilities": "procedure", "quality": "procedure",
    "automation_rules": "rules", "response_template": "template",
}
"""Section kind (ingest.sections.KINDS) → the group its chunks count towards; other kinds count to none."""
GROUPS: tuple[str, ...] = ("overview", "procedure", "rules", "template")

FEATURES: tuple[str, ...] = (
    "dense", "dense_piece_max", "dense_top2", "dense_overview", "dense_procedure", "dense_rules", "dense_template",
    "dense_norm", "dense_gap", "dense_rank",
    "bm25_log", "bm25_rel", "bm25_rank", "bm25_title_log", "bm25_title_rel", "bm25_conditions_log",
    "coverage", "fused", "fused_gap",
)
"""Every feature this module computes, in the order of a row; a ranker uses a named subset."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class PieceEvidence:
    """What the dense search found for one piece of the ticket, per SOP."""

    weight: float
    best: Mapping[str, float]
    """SOP → similarity of its best chunk."""
    second: Mapping[str, float]
    """SOP → similarity of its second-best chunk (absent when only one chunk was found)."""
    by_group: Mapping[str, Mapping[str, float]]
    """Section group → SOP → similarity of its best chunk of that group."""
    floor: float
    """The lowest similarity among the piece's candidates: what an SOP not reached is taken to score."""

    @classmethod
    def of(cls, found: Iterable[tuple[str, str, float]], weight: float) -> PieceEvidence:
        """From (sop_id, section kind, similarity) of the piece's candidate chunks."""
        best: dict[str, float] = {}
        second: dict[str, float] = {}
        by_group: dict[str, dict[str, float]] = {g: {} for g in GROUPS}
        floor = math.inf
        for sop, kind, similarity in found:
            floor = min(floor, similarity)
            if similarity > best.get(sop, -math.inf):
                if sop in best:
                    second[sop] = best[sop]
                best[sop] = similarity
            elif similarity > second.get(sop, -math.inf):
                second[sop] = similarity
            group = SECTION_GROUPS.get(kind)
            if group is not None and similarity > by_group[group].get(sop, -math.inf):
                by_group[group][sop] = similarity
        return cls(weight=weight, best=best, second=second, by_group=by_group,
                   floor=0.0 if floor == math.inf else floor)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Evidence:
    """Every signal of one search that the features are computed from."""

    pieces: tuple[PieceEvidence, ...]
    dense: Mapping[str, float]
    """SOP → the aggregated dense similarity the fusion used."""
    lexical: Mapping[str, float]
    """SOP → BM25 of the whole SOP."""
    title: Mapping[str, float]
    """SOP → BM25 of its title."""
    conditions: Mapping[str, float]
    """SOP → BM25 of its condition lines."""
    fused: Mapping[str, float]
    fused_weight: float
    """The sum of the fusion's weights (the largest fused score possible)."""
    coverage: Mapping[str, float]
    """SOP → share of the ticket's words it uses (for the candidates at least)."""


def _rank_of(scores: Mapping[str, float]) -> dict[str, int]:
    return {s: i for i, s in enumerate(sorted(scores, key=lambda s: (-scores[s], s)))}


def _aggregate(pieces: Sequence[PieceEvidence], sop: str, values: Sequence[Mapping[str, float]]) -> float:
    """Weighted mean over the pieces; a piece that did not reach the SOP counts its floor."""
    total = sum(p.weight for p in pieces) or 1.0
    return sum(p.weight * v.get(sop, p.floor) for p, v in zip(pieces, values, strict=True)) / total


def rows(evidence: Evidence, candidates: Sequence[str]) -> list[tuple[float, ...]]:
    """One row of `FEATURES` per candidate SOP, in the order given."""
    pieces = evidence.pieces
    dense, lexical = evidence.dense, evidence.lexical
    dense_rank, lexical_rank = _rank_of(dense), _rank_of(lexical)
    dense_low, dense_high = min(dense.values(), default=0.0), max(dense.values(), default=0.0)
    dense_span = (dense_high - dense_low) or 1.0
    lexical_high = max(lexical.values(), default=0.0)
    title_high = max(evidence.title.values(), default=0.0)
    weight = evidence.fused_weight or 1.0
    fused_high = max(evidence.fused.values(), default=0.0)
    unranked = float(len(dense_rank) + 1)
    wanted = set(candidates)
    top2 = [{s: (v + p.second.get(s, v)) / 2 for s, v in p.best.items() if s in wanted} for p in pieces]
    out: list[tuple[float, ...]] = []
    for sop in candidates:
        similarity = dense.get(sop, dense_low)
        group = {g: _aggregate(pieces, sop, [p.by_group[g] for p in pieces]) for g in GROUPS}
        bm25 = lexical.get(sop, 0.0)
        title = evidence.title.get(sop, 0.0)
        out.append((
            similarity,
            max((p.best.get(sop, p.floor) for p in pieces), default=0.0),
            _aggregate(pieces, sop, top2),
            group["overview"], group["procedure"], group["rules"], group["template"],
            (similarity - dense_low) / dense_span,
            dense_high - similarity,
            math.log1p(dense_rank.get(sop, unranked)),
            math.log1p(bm25),
            bm25 / lexical_high if lexical_high > 0 else 0.0,
            math.log1p(lexical_rank.get(sop, float(len(lexical_rank) + 1))),
            math.log1p(title),
            title / title_high if title_high > 0 else 0.0,
            math.log1p(evidence.conditions.get(sop, 0.0)),
            evidence.coverage.get(sop, 0.0),
            evidence.fused.get(sop, 0.0) / weight,
            (fused_high - evidence.fused.get(sop, 0.0)) / weight,
        ))
    return out
