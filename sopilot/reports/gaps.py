"""Handbook L.2, knowledge-base gaps: clusters of resolved tickets that the SOPs served badly.

A resolved ticket is a *candidate* when retrieval matched no SOP, matched below
`low_match_probability`, its decision was overridden, or an agent marked the SOP as wrong. The
candidates' customer messages are grouped as in the L.1 report (`sopilot.reports.text`). For
each group:

- if most of its tickets matched no SOP, it is a subject without an article; more than
  `NO_SOP_MIN` (20, the handbook's "> 20 resolved tickets") makes a task for the subject-matter
  expert, carrying the group's key phrases and an outline drawn from the agents' final replies;
- otherwise it belongs to the SOP most of its tickets were decided under; groups of one SOP whose
  centres are at least `report_similarity` alike are one subject (two phrasings of one problem);
  more than `SOP_REVIEW_MIN` (50) flags that SOP for the content team (clarity, accuracy,
  discoverability).

The outline: the final replies are cut into sentences, similar sentences grouped, and a group
becomes a step when it appears in at least a third of the replies but in less than a fifth of the
replies outside the cluster (so greetings and sign-offs, which every reply has, drop out); steps
are ordered by where they stand in the replies, each worded by its most typical sentence.
The weekly run looks back over a quarter each week, so a finding raises its task once per quarter
(a content-team flag per SOP; an article task per subject, named by its three key phrases).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any

from sopilot.reports import tasks as T
from sopilot.reports.history import TicketRecord, load_tickets
from sopilot.reports.periods import Period, weeks_until

NO_SOP_MIN = 20
"""Handbook L.2: a cluster of more than 20 resolved tickets without an article gets one drafted."""
SOP_REVIEW_MIN = 50
"""Handbook L.2: a cluster of more than 50 resolved tickets for an existing article gets it reviewed."""
DEFAULT_WEEKS = 13
"""The window analysed by default: one quarter (§6 reviews policies quarterly)."""
STEP_MIN_SHARE = 1 / 3
BOILERPLATE_SHARE = 1 / 5
BACKGROUND_REPLIES = 200


@dataclasses.dataclass(frozen=True, kw_only=True)
class GapCluster:
    """Similar poorly served tickets."""

    id: int
    count: int
    sop: str | None
    """The SOP most of them were decided under, or None when most matched none."""
    reasons: dict[str, int]
    """Why they are candidates: no_match, low_probability, overridden, wrong_sop (a ticket may have several)."""
    key_phrases: tuple[str, ...]
    examples: tuple[str, ...]
    outline: tuple[str, ...]
    ticket_ids: tuple[str, ...]
    finding: str | None
    """`no_sop` (more than 20 without an SOP), `review_sop` (more than 50 for one SOP), or None."""
    task: T.Task | None = None

    def to_json(self) -> dict[str, Any]:
        """Every field."""
        return {"cluster": self.id, "count": self.count, "sop": self.sop, "finding": self.finding,
                "reasons": self.reasons, "key_phrases": list(self.key_phrases), "examples": list(self.examples),
                "outline": list(self.outline), "ticket_ids": list(self.ticket_ids),
                "task": self.task.to_json() if self.task else None}


@dataclasses.dataclass(frozen=True, kw_only=True)
class GapReport:
    """The knowledge-base gap analysis of one period."""

    period: Period
    resolved: int
    candidates: int
    clusters: tuple[GapCluster, ...]
    similarity: float
    low_match_probability: float

    @property
    def new_articles(self) -> tuple[GapCluster, ...]:
        """Clusters that need a new article (SME tasks)."""
        return tuple(c for c in self.clusters if c.finding == "no_sop")

    @property
    def reviews(self) -> tuple[GapCluster, ...]:
        """Clusters that flag an existing SOP for the content team."""
        return tuple(c for c in self.clusters if c.finding == "review_sop")

    def to_json(self) -> dict[str, Any]:
        """Period, counts, the two kinds of findings, and every cluster of more than one ticket."""
        return {"period": self.period.to_json(), "resolved": self.resolved, "candidates": self.candidates,
                "similarity": self.similarity, "low_match_probability": self.low_match_probability,
                "new_articles": [c.to_json() for c in self.new_articles],
                "sop_reviews": [c.to_json() for c in self.reviews],
                "clusters": [c.to_json() for c in self.clusters if c.count > 1]}

    def to_markdown(self) -> str:
        """Findings first (tasks with phrases and outline), then the clusters table."""
        lines = [f"# Knowledge-base gaps, {self.period.label}", "",
                 f"{self.candidates} of {self.resolved} resolved tickets were poorly served (no SOP, match "
                 f"probability below {self.low_match_probability:.2f}, overridden, or wrong SOP). Handbook L.2.", "",
                 f"## New articles needed (clusters of more than {NO_SOP_MIN} tickets without an SOP)", ""]
        if not self.new_articles:
            lines += ["None.", ""]
        for c in self.new_articles:
            lines += [f"### {c.count} tickets: {', '.join(c.key_phrases)}", "", f"> {c.examples[0]}" if c.examples
                      else "", "", "Outline from the agents' replies:", ""]
            lines += [f"{i}. {step}" for i, step in enumerate(c.outline, start=1)] or ["(no recurring steps)"]
            if c.task:
                lines += ["", f"Task `{c.task.key}` for the {c.task.assignee}"
                              f"{' (recorded)' if c.task.recorded else ''}."]
            lines.append("")
        lines += [f"## SOPs to review (clusters of more than {SOP_REVIEW_MIN} tickets for one SOP)", ""]
        if not self.reviews:
            lines += ["None.", ""]
        for c in self.reviews:
            lines += [f"- **{c.sop}**: {c.count} tickets ({', '.join(f'{k} {v}' for k, v in c.reasons.items())}); "
                      f"key phrases: {', '.join(c.key_phrases)}"]
        lines += ["", "## Clusters", "", "| tickets | SOP | key phrases | finding |", "|---|---|---|---|"]
        lines += [f"| {c.count} | {c.sop or '(none)'} | {', '.join(c.key_phrases)} | {c.finding or ''} |"
                  for c in self.clusters if c.count > 1]
        return "\n".join(lines) + "\n"


def _quarter(period: Period) -> str:
    """The quarter a period ends in (`2026-Q4`): a weekly run raises one task per finding per quarter."""
    last = period.end - dt.timedelta(days=1)
    return f"{last.year}-Q{(last.month - 1) // 3 + 1}"


def _reasons(record: TicketRecord, low: float) -> list[str]:
    found = []
    if not record.matched or record.policy is None:
        found.append("no_match")
    elif record.match_probability is not None and record.match_probability < low:
        found.append("low_probability")
    if record.overridden:
        found.append("overridden")
    if record.wrong_sop:
        found.append("wrong_sop")
    return found


def _outline(replies: list[str], background: list[str], settings) -> list[str]:
    import numpy as np

    from sopilot.reports import text

    pieces: list[tuple[int, float, str]] = []
    for number, reply in enumerate(replies):
        parts = text.sentences(reply)
        pieces += [(number, index / max(1, len(parts) - 1), part) for index, part in enumerate(parts)]
    if not pieces:
        return []
    back_pieces = [(number, part) for number, reply in enumerate(background) for part in text.sentences(reply)]
    everything = text.embed([p[2] for p in pieces] + [p[1] for p in back_pieces], settings)
    vectors, back_all = everything[:len(pieces)], everything[len(pieces):]
    labels = text.cluster(vectors, settings.report_similarity)
    rows_of: dict[int, list[int]] = {}
    for row, (number, _) in enumerate(back_pieces):
        rows_of.setdefault(number, []).append(row)
    back_vectors = [back_all[rows] for rows in rows_of.values()]
    steps = []
    for label in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == label]
        if len({pieces[i][0] for i in members}) < STEP_MIN_SHARE * len(replies):
            continue
        best = members[text.central(vectors[members], 1)[0]]
        if back_vectors:
            probe = vectors[best]
            hits = sum(float(np.max(v @ probe)) >= settings.report_similarity for v in back_vectors)
            share = hits / len(back_vectors)
            if share >= BOILERPLATE_SHARE:
                continue
        position = sum(pieces[i][1] for i in members) / len(members)
        steps.append((position, pieces[best][2]))
    return [sentence for _, sentence in sorted(steps)]


def _sop_of(items: list[TicketRecord]) -> str | None:
    """The SOP most of the tickets were decided under, or None when most matched no SOP."""
    unmatched = sum(1 for r in items if not r.matched or r.policy is None)
    policies = Counter(r.policy for r in items if r.matched and r.policy)
    return None if unmatched * 2 > len(items) or not policies else policies.most_common(1)[0][0]


def _merge_same_sop(groups: list[list[int]], records: list[TicketRecord], vectors, similarity: float
                    ) -> dict[int, list[int]]:
    """Join groups of the same SOP whose centres are at least `similarity` alike (largest first).

    Average linkage keeps apart two phrasings of one subject ("the SMS code never arrives", "no
    two-factor text"); their centres, which average the wording away, are alike. Only groups of one
    SOP are joined: what counts for the content team is the tickets one article serves badly.
    """
    import numpy as np

    merged: list[list[int]] = []
    for members in sorted(groups, key=lambda m: (-len(m), m[0])):
        sop = _sop_of([records[i] for i in members])
        centre = vectors[members].mean(axis=0)
        target = None
        if sop is not None:
            for other in merged:
                if _sop_of([records[i] for i in other]) != sop:
                    continue
                theirs = vectors[other].mean(axis=0)
                if float(centre @ theirs) / float(np.linalg.norm(centre) * np.linalg.norm(theirs)) >= similarity:
                    target = other
                    break
        if target is None:
            merged.append(list(members))
        else:
            target.extend(members)
    merged.sort(key=lambda m: (-len(m), min(m)))
    return {label: sorted(members) for label, members in enumerate(merged)}


def analyse_gaps(records: list[TicketRecord], period: Period, settings) -> GapReport:
    """Cluster the period's poorly served resolved tickets and turn the large clusters into tasks."""
    from sopilot.reports import text

    low = settings.low_match_probability
    resolved = [r for r in records if r.resolved and r.at in period]
    candidates = [(r, _reasons(r, low)) for r in resolved]
    candidates = [(r, why) for r, why in candidates if why]
    vectors = text.embed([r.message or "" for r, _ in candidates], settings)
    labels = text.cluster(vectors, settings.report_similarity)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(label, []).append(index)
    members_of = _merge_same_sop([groups[label] for label in sorted(groups)],
                                 [candidates[i][0] for i in range(len(candidates))], vectors,
                                 settings.report_similarity)
    phrases = text.key_phrases({label: [candidates[i][0].message for i in members]
                                for label, members in members_of.items()})
    in_cluster = {label: {candidates[i][0].key for i in members} for label, members in members_of.items()}
    clusters = []
    for label, members in sorted(members_of.items()):
        items = [candidates[i][0] for i in members]
        reasons = Counter(why for i in members for why in candidates[i][1])
        sop = _sop_of(items)
        finding = ("no_sop" if sop is None and len(items) > NO_SOP_MIN else
                   "review_sop" if sop is not None and len(items) > SOP_REVIEW_MIN else None)
        typical = text.central(vectors[members], 3)
        outline: list[str] = []
        task = None
        if finding == "no_sop":
            background = [r.final_reply for r in resolved if r.final_reply and r.key not in in_cluster[label]]
            outline = _outline([r.final_reply for r in items if r.final_reply], background[:BACKGROUND_REPLIES],
                               settings)
            nearest = Counter(r.sop_ids[0] for r in items if r.sop_ids).most_common(3)
            task = T.Task(key=T.task_key("L.2-new", _quarter(period), *sorted(phrases[label][:3])),
                          kind="kb_article_draft", assignee=T.SUBJECT_MATTER_EXPERT, source="L.2",
                          title=f"Draft a knowledge-base article: {', '.join(phrases[label][:3])} "
                                f"({len(items)} resolved tickets without an SOP)",
                          subject={"count": len(items), "key_phrases": phrases[label], "outline": outline,
                                   "examples": [items[i].message for i in typical],
                                   "nearest_sops": [s for s, _ in nearest], "ticket_ids": [r.key for r in items]})
        elif finding == "review_sop":
            task = T.Task(key=T.task_key("L.2-review", _quarter(period), sop),
                          kind="kb_article_review", assignee=T.CONTENT_TEAM, source="L.2", policy=sop,
                          title=f"Review {sop} for clarity, accuracy and discoverability: {len(items)} resolved "
                                f"tickets about {', '.join(phrases[label][:3])} were served badly",
                          subject={"count": len(items), "reasons": dict(reasons), "key_phrases": phrases[label],
                                   "examples": [items[i].message for i in typical],
                                   "ticket_ids": [r.key for r in items]})
        clusters.append(GapCluster(id=label, count=len(items), sop=sop, reasons=dict(sorted(reasons.items())),
                                   key_phrases=tuple(phrases[label]),
                                   examples=tuple(items[i].message for i in typical), outline=tuple(outline),
                                   ticket_ids=tuple(r.key for r in items), finding=finding, task=task))
    return GapReport(period=period, resolved=len(resolved), candidates=len(candidates), clusters=tuple(clusters),
                     similarity=settings.report_similarity, low_match_probability=low)


def gap_report(settings, *, weeks: int = DEFAULT_WEEKS, until: str | None = None, record: bool = False,
               now=None) -> GapReport:
    """`sopilot report gaps`: the knowledge-base gaps of a run of ISO weeks.

    Args:
        settings: where the audit log and the knowledge dir are.
        weeks: how many ISO weeks to analyse.
        until: the last of them (`2026-W48`); None: the current week.
        now: the current time (tests); None: now.
        record: also record the SME tasks and content-team flags in the audit log (the weekly run does).
    """
    period = weeks_until(until, weeks, now=now)
    report = analyse_gaps(load_tickets(settings, period), period, settings)
    return record_gap_tasks(settings, report) if record else report


def record_gap_tasks(settings, report: GapReport) -> GapReport:
    """Record the report's SME tasks and content-team flags (once each); return it with them marked."""
    recorded = {t.key: t for t in T.record_tasks(settings, [c.task for c in report.clusters if c.task])}
    return dataclasses.replace(report, clusters=tuple(dataclasses.replace(c, task=recorded[c.task.key]) if c.task
                                                      else c for c in report.clusters))
