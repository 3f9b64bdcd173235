"""Handbook §6, the policy review report: per policy and period, how automation and agents fared.

For each policy (and for tickets without one): volume; the share decided `automate`, `escalate`
and `manual_review`; the escalation causes, by the rule that escalated and the thresholds its
reasons name; what agents did with the suggestions (accepted as is, edited, overridden, marked as
the wrong SOP; shares of the resolved tickets, the figures helpdesk copilots report per
procedure); CSAT (mean, answers, share of low scores) by policy and by outcome; the policy versions
that decided; and a weekly series for the charts of the Operations page. Rules and thresholds are
recognised by their ids in the decisions' reasons, using every policy version on disk.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Any

from sopilot.reports.history import TicketRecord, load_tickets
from sopilot.reports.periods import Period, week_label, weeks_until

OUTCOMES = ("automate", "escalate", "manual_review")
NO_POLICY = "(no policy)"
DEFAULT_WEEKS = 13


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Csat:
    """CSAT answers of a set of tickets."""

    answers: int
    mean: float | None
    low_share: float | None

    def to_json(self) -> dict[str, Any]:
        """Answers, mean (two places) and share of low scores."""
        return dataclasses.asdict(self)


def _csat(records: list[TicketRecord], low: int) -> Csat:
    scores = [r.csat for r in records if isinstance(r.csat, int)]
    return Csat(answers=len(scores), mean=round(sum(scores) / len(scores), 2) if scores else None,
                low_share=_share(sum(1 for s in scores if s <= low), len(scores)))


@dataclasses.dataclass(frozen=True, kw_only=True)
class PolicyStats:
    """One policy's figures for the period."""

    policy: str
    volume: int
    outcomes: dict[str, int]
    automation_rate: float | None
    escalation_causes: tuple[dict[str, Any], ...]
    """`{"rule", "thresholds", "count"}`, most frequent first."""
    resolved: int
    accepted: int
    edited: int
    overridden: int
    wrong_sop: int
    csat: Csat
    csat_by_outcome: dict[str, Csat]
    versions: dict[str, int]
    weekly: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        """Counts, rates (three places) and CSAT."""
        return {"policy": self.policy, "volume": self.volume, "outcomes": self.outcomes,
                "automation_rate": self.automation_rate,
                "escalation_rate": _share(self.outcomes.get("escalate", 0), self.volume),
                "manual_review_rate": _share(self.outcomes.get("manual_review", 0), self.volume),
                "escalation_causes": list(self.escalation_causes), "resolved": self.resolved,
                "acceptance_rate": _share(self.accepted, self.resolved),
                "edit_rate": _share(self.edited, self.resolved),
                "override_rate": _share(self.overridden, self.resolved),
                "wrong_sop_rate": _share(self.wrong_sop, self.resolved), "csat": self.csat.to_json(),
                "csat_by_outcome": {k: v.to_json() for k, v in self.csat_by_outcome.items()},
                "policy_versions": self.versions, "weekly": list(self.weekly)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class PolicyReview:
    """The §6 report."""

    period: Period
    policies: tuple[PolicyStats, ...]
    total: PolicyStats
    csat_by_outcome: dict[str, Csat]

    def to_json(self) -> dict[str, Any]:
        """Period, every policy, the total, and CSAT by outcome."""
        return {"period": self.period.to_json(), "policies": [p.to_json() for p in self.policies],
                "total": self.total.to_json(),
                "csat_by_outcome": {k: v.to_json() for k, v in self.csat_by_outcome.items()}}

    def to_markdown(self) -> str:
        """One table of figures per policy, then escalation causes and CSAT by outcome."""
        lines = [f"# Policy review, {self.period.label}", "", "Handbook §6: volume, automation and escalation per "
                 "policy, what agents did with the suggestions, and CSAT (§8).", "",
                 "| policy | tickets | automated | escalated | manual | accepted | edited | overridden | wrong SOP "
                 "| CSAT | answers |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for p in (*self.policies, self.total):
            j = p.to_json()
            lines.append(f"| {p.policy} | {p.volume} | {pct(j['automation_rate'])} | {pct(j['escalation_rate'])} | "
                         f"{pct(j['manual_review_rate'])} | {pct(j['acceptance_rate'])} | {pct(j['edit_rate'])} | "
                         f"{pct(j['override_rate'])} | {pct(j['wrong_sop_rate'])} | "
                         f"{'' if p.csat.mean is None else p.csat.mean} | {p.csat.answers} |")
        lines += ["", "## Escalation causes", "", "| policy | rule | thresholds | tickets |", "|---|---|---|---|"]
        for p in self.policies:
            lines += [f"| {p.policy} | {c['rule']} | {', '.join(c['thresholds'])} | {c['count']} |"
                      for c in p.escalation_causes]
        lines += ["", "## CSAT by outcome", "", "| outcome | mean | answers | low |", "|---|---|---|---|"]
        lines += [f"| {k} | {'' if v.mean is None else v.mean} | {v.answers} | {pct(v.low_share)} |"
                  for k, v in self.csat_by_outcome.items()]
        return "\n".join(lines) + "\n"


def _known_ids(knowledge_dir) -> tuple[set[str], set[str]]:
    from sopilot.guard.policy import load_policies
    from sopilot.guard.versions import policy_versions

    rules: set[str] = set()
    thresholds: set[str] = set()
    for version in policy_versions(knowledge_dir):
        policies = load_policies(version.path)
        thresholds |= set(policies.thresholds)
        rules |= {rule.id for policy in policies.policies.values() for rule in policy.rules}
    return rules, thresholds


def _cause(record: TicketRecord, rules: set[str], thresholds: set[str]) -> tuple[str, tuple[str, ...]]:
    reasons = [str(r) for r in record.decision.get("reasons") or []]
    rule = record.decision.get("rule")
    if not rule:
        words = " ".join(reasons[:1]).replace("(", " ").replace(")", " ").replace(",", " ").split()
        rule = next((w for w in words if w in rules), None)
    named = tuple(sorted({t for reason in reasons for t in thresholds if f"({t})" in reason}))
    if not named:  # a test on a category (priority, warranty), not on a limit: name the facts tested
        from sopilot.guard.facts import FIELDS

        named = tuple(sorted({reason.split()[0] for reason in reasons[1:] if reason.split()
                              and reason.split()[0] in FIELDS}))
    return rule or (reasons[0] if reasons else "(no reason recorded)"), named


def pct(value: float | None) -> str:
    """A share as a whole percentage (`42%`), empty when there is none."""
    return "" if value is None else f"{value:.0%}"


def _stats(policy: str, records: list[TicketRecord], rules: set[str], thresholds: set[str], low: int) -> PolicyStats:
    outcomes = Counter(r.outcome or "unknown" for r in records)
    causes = Counter(_cause(r, rules, thresholds) for r in records if r.outcome == "escalate")
    resolved = [r for r in records if r.resolved]
    by_week: dict[str, list[TicketRecord]] = defaultdict(list)
    for r in records:
        by_week[week_label(r.at)].append(r)
    weekly = tuple({"week": week, "volume": len(items),
                    "automation_rate": _share(sum(r.outcome == "automate" for r in items), len(items)),
                    "override_rate": _share(sum(r.overridden for r in items), sum(r.resolved for r in items)),
                    "csat": _csat(items, low).mean}
                   for week, items in sorted(by_week.items()))
    return PolicyStats(
        policy=policy, volume=len(records), outcomes={k: outcomes.get(k, 0) for k in OUTCOMES},
        automation_rate=_share(outcomes.get("automate", 0), len(records)),
        escalation_causes=tuple({"rule": rule, "thresholds": list(named), "count": n}
                                for (rule, named), n in sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))),
        resolved=len(resolved), accepted=sum(r.resolution == "as_is" for r in resolved),
        edited=sum(r.resolution == "edited" for r in resolved), overridden=sum(r.overridden for r in resolved),
        wrong_sop=sum(r.wrong_sop for r in resolved), csat=_csat(records, low),
        csat_by_outcome={k: _csat([r for r in records if r.outcome == k], low) for k in OUTCOMES},
        versions=dict(Counter(r.policy_version or "(not recorded)" for r in records)), weekly=weekly)


def analyse_policies(records: list[TicketRecord], period: Period, settings) -> PolicyReview:
    """The §6 figures of the tickets in `period`, per policy and in total."""
    rules, thresholds = _known_ids(settings.knowledge_dir)
    low = settings.csat_low_score
    inside = [r for r in records if r.at in period]
    by_policy: dict[str, list[TicketRecord]] = defaultdict(list)
    for r in inside:
        by_policy[r.policy or NO_POLICY].append(r)
    policies = tuple(_stats(p, items, rules, thresholds, low) for p, items in
                     sorted(by_policy.items(), key=lambda kv: (kv[0] == NO_POLICY, kv[0])))
    return PolicyReview(period=period, policies=policies, total=_stats("all", inside, rules, thresholds, low),
                        csat_by_outcome={k: _csat([r for r in inside if r.outcome == k], low) for k in OUTCOMES})


def policy_review(settings, *, weeks: int = DEFAULT_WEEKS, until: str | None = None, now=None) -> PolicyReview:
    """`sopilot report policies`: the `weeks` ISO weeks ending with `until` (None: the current week)."""
    period = weeks_until(until, weeks, now=now)
    return analyse_policies(load_tickets(settings, period), period, settings)
