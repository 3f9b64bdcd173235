"""One guard run: decide the ticket, check the draft, choose the reply that may be shown."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from sopilot.guard.check import Verdict, check
from sopilot.guard.decide import Classifier, Decision, decide
from sopilot.guard.facts import Ticket
from sopilot.guard.policy import Policies
from sopilot.guard.reply import SAFE_REPLY, compose_reply


@dataclasses.dataclass(frozen=True, kw_only=True)
class GuardResult:
    """A decision, the verdict on the draft, and the reply that may be shown (docs/interface.md §6)."""

    decision: Decision
    verdict: Verdict
    reply: str
    """The draft when it passed; otherwise the compliant reply built from the decision."""

    def to_json(self) -> dict[str, Any]:
        """The docs/interface.md §6 document, in its order, then the version of the policy set that decided."""
        decision = self.decision.to_json()
        version = decision.pop("policy_version")
        return {**decision, "verdict": self.verdict.verdict,
                "violations": [v.to_json() for v in self.verdict.violations], "reply": self.reply,
                "policy_version": version}


def guard_ticket(ticket: Ticket | Mapping[str, Any], policies: Policies, *, reply: str | None = None,
                 classify: Classifier | None = None, stopped: Collection[str] = frozenset()) -> GuardResult:
    """Decide `ticket` and check the draft `reply` (None: no draft, verdict `pass`, the built reply)."""
    return guard_decision(decide(ticket, policies, classify=classify, stopped=stopped), reply)


def guard_decision(decision: Decision, reply: str | None) -> GuardResult:
    """Check the draft `reply` against a decision already made, and choose the reply that may be shown."""
    verdict = Verdict(verdict="pass") if reply is None else check(reply, decision)
    if reply is not None and verdict.passed:
        return GuardResult(decision=decision, verdict=verdict, reply=reply)
    replacement = compose_reply(decision)
    if not check(replacement, decision).passed:  # never show a reply the guard itself would block
        replacement = SAFE_REPLY
    return GuardResult(decision=decision, verdict=verdict, reply=replacement)
