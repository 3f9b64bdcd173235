"""Handbook L.1, the Automation Policy Exception Report: the week's overrides, grouped and categorised.

Every override of the week (a ticket whose automated decision an agent overrode, with the
mandatory justification of §7) is grouped with the similar justifications *of the same policy*
(see `sopilot.reports.text`), and each group is named by its c-TF-IDF key phrases. Then each
override gets one category, by this rule, in this order:

1. **Policy Gap**: its reason is shared by at least `GAP_MIN_OVERRIDES` (10, the handbook's
   "10+ similar overrides for the same reason") overrides of that policy in the week, written by
   at least `GAP_MIN_AGENTS` (2) agents. One agent repeating a reason is that agent's habit; many
   agents independently meeting the same case is a case the policy does not cover. Each such group
   raises a task for the Support Operations Manager and a notification to the Head of Support.
2. **Agent Error**: the text sent leaks what no authority excuses (an unfilled placeholder or
   internal material, as found by the guard on that exact text), or the agent's own reasons for
   that policy that week are *inconsistent*: at least `INCONSISTENT_MIN_OVERRIDES` (4) overrides
   whose justifications are on average less alike than one group's (`report_similarity`) and of
   which no single reason covers more than half. Inconsistency flags the agent, privately, for a
   training review by their Team Lead (no ticket is created: the handbook forbids public shaming).
3. **Valid Exception**: a documented, isolated exception (§4: "in exceptional circumstances").

A promised refund or commitment the decision did not allow is *not* an error by itself: that is
what an override is for, and its justification is what the report weighs.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any, Literal

from sopilot.reports import tasks as T
from sopilot.reports.history import TicketRecord, load_tickets
from sopilot.reports.periods import Period, parse_week

Category = Literal["Policy Gap", "Agent Error", "Valid Exception"]
CATEGORIES: tuple[Category, ...] = ("Policy Gap", "Agent Error", "Valid Exception")

GAP_MIN_OVERRIDES = 10
"""Handbook L.1: "10+ similar overrides for the same reason" is a policy gap."""
GAP_MIN_AGENTS = 2
INCONSISTENT_MIN_OVERRIDES = 4
TEXT_DEFECTS = frozenset({"placeholder_leak", "internal_leak"})
"""Violations on an override's text that its authority does not excuse."""
NO_POLICY = "(no policy)"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Override:
    """One overridden decision and how the report reads it."""

    ticket_id: str
    at: str
    policy: str
    outcome: str | None
    """The automated decision that was overridden."""
    agent: str | None
    justification: str
    violations: tuple[str, ...]
    group: int
    """Index into the report's `groups` (similar justifications of the same policy)."""
    category: Category
    why: str

    def to_json(self) -> dict[str, Any]:
        """Every field."""
        return {**dataclasses.asdict(self), "violations": list(self.violations)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReasonGroup:
    """Similar justifications for overriding one policy."""

    id: int
    policy: str
    count: int
    agents: tuple[str, ...]
    key_phrases: tuple[str, ...]
    examples: tuple[str, ...]
    """The most typical justifications (closest to the group's centre)."""
    ticket_ids: tuple[str, ...]
    gap: bool
    task: T.Task | None = None

    def to_json(self) -> dict[str, Any]:
        """docs/interface.md §8 gap fields (`policy`, `count`, `key_phrases`, `task`) and the rest."""
        return {"policy": self.policy, "count": self.count, "key_phrases": list(self.key_phrases),
                "task": self.task.to_json() if self.task else None, "group": self.id, "agents": list(self.agents),
                "examples": list(self.examples), "ticket_ids": list(self.ticket_ids)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class AgentFlag:
    """An agent whose override reasons disagree with each other (a private training-review flag)."""

    agent: str
    policy: str
    overrides: int
    mean_similarity: float
    reason: str
    justifications: tuple[str, ...]
    task: T.Task | None = None

    def to_json(self) -> dict[str, Any]:
        """docs/interface.md §8 fields (`agent`, `reason`) and the evidence."""
        return {"agent": self.agent, "reason": self.reason, "policy": self.policy, "overrides": self.overrides,
                "mean_similarity": round(self.mean_similarity, 3), "justifications": list(self.justifications),
                "task": self.task.to_json() if self.task else None}


@dataclasses.dataclass(frozen=True, kw_only=True)
class OverrideReport:
    """The weekly Automation Policy Exception Report."""

    week: str
    period: Period
    items: tuple[Override, ...]
    groups: tuple[ReasonGroup, ...]
    agents_flagged: tuple[AgentFlag, ...]
    notifications: tuple[T.Task, ...]
    similarity: float

    @property
    def gaps(self) -> tuple[ReasonGroup, ...]:
        """The groups that are policy gaps."""
        return tuple(g for g in self.groups if g.gap)

    @property
    def categories(self) -> dict[str, int]:
        """How many overrides fall in each category (every category listed)."""
        counts = Counter(item.category for item in self.items)
        return {name: counts.get(name, 0) for name in CATEGORIES}

    def to_json(self) -> dict[str, Any]:
        """docs/interface.md §8: week, overrides, gaps, agents_flagged, categories; then the detail."""
        return {"week": self.week, "overrides": len(self.items), "gaps": [g.to_json() for g in self.gaps],
                "agents_flagged": [a.to_json() for a in self.agents_flagged], "categories": self.categories,
                "period": self.period.to_json(), "similarity": self.similarity,
                "notifications": [n.to_json() for n in self.notifications],
                "groups": [g.to_json() for g in self.groups], "items": [i.to_json() for i in self.items]}

    def to_markdown(self) -> str:
        """The report for people: categories, gaps with their tasks, flagged agents, every override."""
        lines = [f"# Automation Policy Exception Report, {self.week}", "",
                 f"{len(self.items)} overrides from {self.period.start:%Y-%m-%d} to "
                 f"{self.period.end:%Y-%m-%d} (exclusive). Handbook L.1.", "",
                 "| category | overrides |", "|---|---|"]
        lines += [f"| {name} | {count} |" for name, count in self.categories.items()]
        lines += ["", "## Policy gaps", ""]
        if not self.gaps:
            lines.append(f"None: no reason was shared by {GAP_MIN_OVERRIDES} or more overrides of one policy.")
        for gap in self.gaps:
            lines += [f"### {gap.policy}: {gap.count} overrides by {len(gap.agents)} agents", "",
                      f"Key phrases: {', '.join(gap.key_phrases)}", ""]
            lines += [f"> {example}" for example in gap.examples]
            if gap.task:
                lines += ["", f"Task `{gap.task.key}` for the {gap.task.assignee}"
                              f"{' (recorded)' if gap.task.recorded else ''}; the {T.HEAD_OF_SUPPORT} is notified."]
            lines.append("")
        if not self.gaps:
            lines.append("")
        lines += ["## Agents for a training review (private: for their Team Lead)", ""]
        if not self.agents_flagged:
            lines.append("None.")
        lines += [f"- **{flag.agent}** ({flag.policy}): {flag.reason}" for flag in self.agents_flagged]
        lines += ["", "## Reasons by policy", "", "| policy | overrides | agents | key phrases |", "|---|---|---|---|"]
        lines += [f"| {g.policy} | {g.count} | {len(g.agents)} | {', '.join(g.key_phrases)} |" for g in self.groups]
        lines += ["", "## Every override", "", "| ticket | policy | decision | agent | category | justification |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {i.ticket_id} | {i.policy} | {i.outcome} | {i.agent} | {i.category} | "
                  f"{i.justification.replace('|', '/')} |" for i in self.items]
        return "\n".join(lines) + "\n"


def analyse_overrides(records: list[TicketRecord], period: Period, settings) -> OverrideReport:
    """Group, categorise and turn into tasks the overrides among `records` that fall in `period`."""
    from sopilot.reports import text

    overrides = [r for r in records if r.overridden and r.at in period and (r.justification or "").strip()]
    similarity = settings.report_similarity
    by_policy: dict[str, list[TicketRecord]] = {}
    for record in overrides:
        by_policy.setdefault(record.policy or NO_POLICY, []).append(record)

    group_members: list[tuple[str, list[int]]] = []
    vectors_of: dict[str, Any] = {}
    label_of: dict[str, list[int]] = {}
    for policy, items in sorted(by_policy.items()):
        vectors = text.embed([r.justification or "" for r in items], settings)
        vectors_of[policy] = vectors
        labels = text.cluster(vectors, similarity)
        offset = len(group_members)
        for label in sorted(set(labels)):
            group_members.append((policy, [i for i, lab in enumerate(labels) if lab == label]))
        label_of[policy] = [offset + lab for lab in labels]
    phrases = text.key_phrases({gid: [by_policy[p][i].justification or "" for i in members]
                                for gid, (p, members) in enumerate(group_members)})

    groups: list[ReasonGroup] = []
    for gid, (policy, members) in enumerate(group_members):
        items = [by_policy[policy][i] for i in members]
        agents = tuple(sorted({r.agent or "(unknown)" for r in items}))
        typical = text.central(vectors_of[policy][members], 3)
        gap = len(items) >= GAP_MIN_OVERRIDES and len(agents) >= GAP_MIN_AGENTS
        task = None
        if gap:
            task = T.Task(key=T.task_key("L.1", period.label, policy, *sorted(r.key for r in items)),
                          kind="policy_gap_review", assignee=T.SUPPORT_OPERATIONS_MANAGER, source="L.1",
                          policy=None if policy == NO_POLICY else policy,
                          title=f"Review {policy}: {len(items)} similar overrides in {period.label} "
                                f"({', '.join(phrases[gid][:3])}); draft a new policy or amend it",
                          subject={"week": period.label, "count": len(items), "agents": list(agents),
                                   "key_phrases": phrases[gid], "examples": [items[i].justification for i in typical],
                                   "ticket_ids": [r.key for r in items], "notify": T.HEAD_OF_SUPPORT,
                                   "approval": "not required (notification only)"})
        groups.append(ReasonGroup(id=gid, policy=policy, count=len(items), agents=agents,
                                  key_phrases=tuple(phrases[gid]),
                                  examples=tuple(items[i].justification or "" for i in typical),
                                  ticket_ids=tuple(r.key for r in items), gap=gap, task=task))

    flags: list[AgentFlag] = []
    for policy, items in sorted(by_policy.items()):
        by_agent: dict[str, list[int]] = {}
        for index, record in enumerate(items):
            if record.agent:
                by_agent.setdefault(record.agent, []).append(index)
        for agent, indices in sorted(by_agent.items()):
            if len(indices) < INCONSISTENT_MIN_OVERRIDES:
                continue
            mean = text.mean_similarity(vectors_of[policy][indices])
            largest = max(Counter(label_of[policy][i] for i in indices).values())
            if mean >= similarity or largest * 2 > len(indices):
                continue
            reasons = tuple(items[i].justification or "" for i in indices)
            reason = (f"{len(indices)} overrides of {policy} in {period.label} with reasons that disagree "
                      f"(average similarity {mean:.2f}, below {similarity:.2f}; the most repeated reason covers "
                      f"{largest} of {len(indices)})")
            task = T.Task(key=T.task_key("L.1-agent", period.label, policy, agent), kind="training_review",
                          assignee=T.TEAM_LEAD, source="L.1", visibility="private",
                          policy=None if policy == NO_POLICY else policy,
                          title=f"Training review for {agent}: inconsistent override reasons on {policy}",
                          subject={"agent": agent, "week": period.label, "justifications": list(reasons),
                                   "ticket_ids": [items[i].key for i in indices],
                                   "approval": "required for a training mandate"})
            flags.append(AgentFlag(agent=agent, policy=policy, overrides=len(indices), mean_similarity=mean,
                                   reason=reason, justifications=reasons, task=task))

    flagged = {(f.agent, f.policy) for f in flags}
    result: list[Override] = []
    for policy, items in sorted(by_policy.items()):
        for index, record in enumerate(items):
            group = groups[label_of[policy][index]]
            defects = sorted(TEXT_DEFECTS & set(record.violations))
            category: Category
            if group.gap:
                category, why = "Policy Gap", (f"one of {group.count} similar overrides of {policy} by "
                                               f"{len(group.agents)} agents")
            elif defects:
                category, why = "Agent Error", f"the text sent has {', '.join(defects)}"
            elif (record.agent, policy) in flagged:
                category, why = "Agent Error", f"{record.agent}'s reasons for overriding {policy} are inconsistent"
            else:
                category, why = "Valid Exception", "a documented exception shared by no policy-gap group"
            result.append(Override(ticket_id=record.key, at=record.at.isoformat(), policy=policy,
                                   outcome=record.outcome, agent=record.agent,
                                   justification=record.justification or "", violations=record.violations,
                                   group=group.id, category=category, why=why))
    result.sort(key=lambda o: (o.at, o.ticket_id))

    notifications: tuple[T.Task, ...] = ()
    gap_groups = [g for g in groups if g.gap]
    if gap_groups:
        notifications = (T.Task(key=T.task_key("L.1-notify", period.label, *(g.task.key for g in gap_groups if g.task)),
                                kind="policy_gap_notification", assignee=T.HEAD_OF_SUPPORT, source="L.1",
                                title=f"{len(gap_groups)} policy gap(s) in {period.label}: "
                                      + "; ".join(f"{g.policy} ({g.count})" for g in gap_groups),
                                subject={"week": period.label,
                                         "tasks": [g.task.key for g in gap_groups if g.task]}),)
    return OverrideReport(week=period.label, period=period, items=tuple(result), groups=tuple(groups),
                          agents_flagged=tuple(flags), notifications=notifications, similarity=similarity)


def record_report_tasks(settings, report: OverrideReport) -> OverrideReport:
    """Record the report's tasks, notification and private flags (once each); return it with them marked."""
    recorded = {t.key: t for t in T.record_tasks(settings, [
        *(g.task for g in report.groups if g.task), *(f.task for f in report.agents_flagged if f.task),
        *report.notifications])}
    groups = tuple(dataclasses.replace(g, task=recorded[g.task.key]) if g.task else g for g in report.groups)
    flags = tuple(dataclasses.replace(f, task=recorded[f.task.key]) if f.task else f for f in report.agents_flagged)
    notes = tuple(recorded[n.key] for n in report.notifications)
    return dataclasses.replace(report, groups=groups, agents_flagged=flags, notifications=notes)


def override_report(settings, week: str | None = None, *, record: bool = False, now=None) -> OverrideReport:
    """`sopilot report overrides`: the Automation Policy Exception Report of one ISO week.

    Args:
        settings: where the audit log is, and the grouping similarity.
        week: the ISO week (`2026-W48`); None: the current week.
        now: the current time (tests); None: now.
        record: also record the tasks, notification and flags in the audit log (what the Monday run does).
    """
    period = parse_week(week, now=now)
    report = analyse_overrides(load_tickets(settings, period), period, settings)
    return record_report_tasks(settings, report) if record else report
