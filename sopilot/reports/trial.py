"""Handbook §6 "tested in a staging environment": what a proposed policy change would change, before it applies.

A proposed policy file is compared with the policy set in force (`guard.versions.diff_policies`),
then tried two ways. On the labelled guard cases, both sets decide every case: the report gives
each set's agreement with the labels and every case whose decision changes, with whether the
change agrees with its label. On the recorded tickets of the last `weeks` weeks, each ticket's
facts are decided again under the version that decided it then and under the proposal: the report
counts the transitions (`A.1 escalate → automate`), lists examples, and says for how many of the
changed tickets the agent had overridden the old decision (a change that follows what agents
already did) or accepted it (a change against it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sopilot.core.errors import SopilotError
from sopilot.reports.history import load_tickets
from sopilot.reports.periods import Period, weeks_until

EXAMPLES = 5


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChangedCase:
    """A labelled case the proposal decides differently."""

    line: int
    before: dict[str, Any]
    after: dict[str, Any]
    agrees_before: bool
    agrees_after: bool

    def to_json(self) -> dict[str, Any]:
        """Every field."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Transition:
    """Recorded tickets whose decision moves from one outcome to another under the proposal."""

    policy: str | None
    before: str
    after: str
    count: int
    overridden_before: int
    """How many of them the agent had overridden (the proposal follows the agents)."""
    accepted_before: int
    """How many of them the agent had sent as suggested (the proposal goes against what was accepted)."""
    examples: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        """Every field."""
        return {**dataclasses.asdict(self), "examples": list(self.examples)}


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChangeTrial:
    """The trial of a proposed policy file."""

    proposed: str
    current: str
    diff: Any
    cases: str
    cases_n: int
    passed_before: int
    passed_after: int
    changed_cases: tuple[ChangedCase, ...]
    period: Period
    replayed: int
    changed_tickets: int
    transitions: tuple[Transition, ...]

    def to_json(self) -> dict[str, Any]:
        """The diff, the labelled cases' result and the replay of recorded tickets."""
        return {"proposed": self.proposed, "current": self.current, "diff": self.diff.to_json(),
                "guard_cases": {"file": self.cases, "n": self.cases_n, "passed_before": self.passed_before,
                                "passed_after": self.passed_after,
                                "changed": [c.to_json() for c in self.changed_cases]},
                "recorded_tickets": {"period": self.period.to_json(), "replayed": self.replayed,
                                     "changed": self.changed_tickets,
                                     "transitions": [t.to_json() for t in self.transitions]}}

    def to_markdown(self) -> str:
        """Diff, cases and replay for the change advisory board."""
        lines = [f"# Trial of {self.proposed} against {self.current}", "", self.diff.to_markdown(),
                 f"## Labelled guard cases ({self.cases})", "",
                 f"Agreement with the labels: {self.passed_before}/{self.cases_n} now, {self.passed_after}/"
                 f"{self.cases_n} with the proposal; {len(self.changed_cases)} cases decided differently.", ""]
        if self.changed_cases:
            lines += ["| line | now | proposed | label agrees now | label agrees proposed |", "|---|---|---|---|---|"]
            lines += [f"| {c.line} | {c.before['policy']} {c.before['outcome']} | {c.after['policy']} "
                      f"{c.after['outcome']} | {'yes' if c.agrees_before else 'no'} | "
                      f"{'yes' if c.agrees_after else 'no'} |" for c in self.changed_cases]
        lines += ["", f"## Recorded tickets, {self.period.label}", "",
                  f"{self.changed_tickets} of {self.replayed} tickets would be decided differently.", ""]
        if self.transitions:
            lines += ["| policy | now | proposed | tickets | agent had overridden | agent had accepted |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {t.policy} | {t.before} | {t.after} | {t.count} | {t.overridden_before} | "
                      f"{t.accepted_before} |" for t in self.transitions]
        return "\n".join(lines) + "\n"


def _brief(result) -> dict[str, Any]:
    data = result.to_json()
    return {"policy": data["policy"], "outcome": data["outcome"], "verdict": data["verdict"],
            "remuneration": data["remuneration"], "reasons": data["reasons"]}


def try_change(settings, proposed: str | Path, *, weeks: int = 4, until: str | None = None,
               cases: str | Path = "eval/guard_cases.jsonl", now=None) -> ChangeTrial:
    """Try the policy file `proposed` on the labelled guard cases and on the last `weeks` weeks of tickets.

    Raises:
        InputError: the proposal or the cases file cannot be read; ConfigError: the proposal is invalid.
    """
    from sopilot.eval.guard import parse_case, read_rows
    from sopilot.guard import guard_ticket
    from sopilot.guard.cases import compare
    from sopilot.guard.versions import diff_policies, policies_in_force, resolve

    new = resolve(str(proposed), settings.knowledge_dir)
    current = policies_in_force(None, settings.knowledge_dir)
    changed_cases = []
    passed_before = passed_after = 0
    rows = read_rows(cases, "cases file")
    for number, row in rows:
        ticket, reply, expect = parse_case(row, f"{cases} line {number}")
        before = guard_ticket(ticket, current, reply=reply)
        after = guard_ticket(ticket, new, reply=reply)
        ok_before, ok_after = not compare(expect, before), not compare(expect, after)
        passed_before += ok_before
        passed_after += ok_after
        b, a = _brief(before), _brief(after)
        if (b["policy"], b["outcome"], b["verdict"], b["remuneration"]) != \
                (a["policy"], a["outcome"], a["verdict"], a["remuneration"]):
            changed_cases.append(ChangedCase(line=number, before=b, after=a, agrees_before=ok_before,
                                             agrees_after=ok_after))

    period = weeks_until(until, weeks, now=now)
    records = load_tickets(settings, period)
    versions: dict[str | None, Any] = {}
    tally: dict[tuple, list] = {}
    replayed = 0
    for record in records:
        facts = dict(record.ticket)
        if not facts.get("message"):
            continue
        if record.policy and not facts.get("sop_id"):
            facts["sop_id"] = record.policy
        if record.policy_version not in versions:
            versions[record.policy_version] = (resolve(record.policy_version, settings.knowledge_dir)
                                               if record.policy_version else policies_in_force(record.at,
                                                                                                settings.knowledge_dir))
        try:
            before = guard_ticket(facts, versions[record.policy_version]).decision
            after = guard_ticket(facts, new).decision
        except SopilotError:  # a recorded ticket the guard cannot read any more is skipped, not fatal
            continue
        replayed += 1
        if (before.outcome, before.rule, before.remuneration) == (after.outcome, after.rule, after.remuneration):
            continue
        key = (record.policy, before.outcome, after.outcome)
        tally.setdefault(key, []).append((record, before, after))
    transitions = []
    for (policy, old, new_outcome), items in sorted(tally.items(), key=lambda kv: (-len(kv[1]), str(kv[0]))):
        transitions.append(Transition(
            policy=policy, before=old, after=new_outcome, count=len(items),
            overridden_before=sum(r.overridden for r, _, _ in items),
            accepted_before=sum(r.resolution == "as_is" for r, _, _ in items),
            examples=tuple({"ticket_id": r.key, "before": list(b.reasons), "after": list(a.reasons),
                            "agent": r.resolution} for r, b, a in items[:EXAMPLES])))
    return ChangeTrial(proposed=str(proposed), current=current.version or current.source.name,
                       diff=diff_policies(current, new), cases=str(cases), cases_n=len(rows),
                       passed_before=passed_before, passed_after=passed_after, changed_cases=tuple(changed_cases),
                       period=period, replayed=replayed, changed_tickets=sum(t.count for t in transitions),
                       transitions=tuple(transitions))
