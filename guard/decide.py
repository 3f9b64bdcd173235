"""`decide(ticket, policies) -> Decision`: the deterministic outcome of a ticket under its policy.

Precedence, in the handbook's spirit "when in doubt, never automate":

1. an escalation rule whose conditions hold wins (the first in file order);
2. an automation rule wins only if its conditions hold *and* every other rule is known not to
   hold: a fact that could still trigger an escalation blocks automation;
3. otherwise a `manual_review` rule that holds (a gap the handbook leaves, see DECISIONS.md), or
   the Policy Exception queue of handbook §4.

An Emergency Stop (handbook §7) turns `automate` into `manual_review`. The customer's message is
never read for instructions; without `sop_id` the policy comes from the optional `classify`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import Any

from sopilot.guard.conditions import Evaluation, evaluate
from sopilot.guard.facts import Ticket, normalize_sop_id, parse_ticket
from sopilot.guard.grant import NO_GRANT, Grant
from sopilot.guard.policy import MONEY_TYPES, Policies, Policy, Rule

from sopilot.core.money import USD, Money, cents, format_amount

Classifier = Callable[[str], "str | None"]

EXCEPTION_QUEUE = "Policy Exception queue"
_REVIEW_ACTION = (f"Route the ticket to the {EXCEPTION_QUEUE} for manual review by a senior support agent "
                  "(handbook §4).")
_INSTRUCTION = re.compile(
    r"system\s+override|ignore\s+(?:all\s+|any\s+)?(?:previous|prior|above|earlier)\s+instructions|"
    r"disregard\s+(?:the\s+|all\s+|your\s+)?(?:rules|policy|policies|instructions)|you\s+are\s+now\b|"
    r"developer\s+mode|auto-?approved|admin\s+override|override\s+(?:the\s+)?(?:policy|rules|guard)|"
    r"\bsystem\s*:|\bjailbreak",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Remuneration:
    """What the customer gets: `type`, and an amount in `currency` when it is known."""

    type: str
    """refund, service_credit, replacement, none, or pending (a team or reviewer decides)."""
    amount: Decimal | None = None
    currency: str | None = None

    def to_json(self) -> dict[str, Any]:
        """docs/interface.md §6 form: the amount as a string with two decimals, or null."""
        return {"type": self.type, "amount": None if self.amount is None else format_amount(self.amount),
                "currency": self.currency}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Allowance:
    """What a reply may confirm without approval; empty means no remuneration at all."""

    kinds: frozenset[str] = frozenset()
    """`money` (refund or credit) and/or `replacement`."""
    limit: Decimal | None = None
    """Largest dollar amount a reply may name; None: no specific amount can be confirmed."""
    percent: Decimal | None = None
    """Largest percentage a reply may name for a credit."""
    prorated: bool = False
    """The refund is pro-rated, so a reply may not promise a full one."""


NO_ALLOWANCE = Allowance()


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """The guard's decision (docs/interface.md §6 without the reply verdict)."""

    policy: str | None
    """The sop_id decided under, or None when no policy could be identified."""
    outcome: str
    """automate, escalate or manual_review."""
    action: str
    escalate_to: str | None
    approval_required: bool
    sla: str | None
    remuneration: Remuneration
    reasons: tuple[str, ...]
    """Why: the rule id and handbook section, then each test with its observed value and limit."""
    rule: str | None = None
    """The id of the rule that decided, if one did."""
    allowance: Allowance = NO_ALLOWANCE
    grant: Grant = NO_GRANT
    """Every commitment a reply may make under this decision (the reply check is an allow-list)."""
    reply_template: str | None = None
    """The rule's customer-facing sentence, rendered by `guard.reply.compose_reply`."""
    policy_version: str | None = None
    """The version of the policy set that decided (`policy_version` in knowledge/policies.yaml), so a report
    can say which rules were in force for each decision."""

    def to_json(self) -> dict[str, Any]:
        """The decision fields of docs/interface.md §6, in its order, then the policy set's version."""
        return {"policy": self.policy, "outcome": self.outcome, "action": self.action,
                "escalate_to": self.escalate_to, "approval_required": self.approval_required, "sla": self.sla,
                "remuneration": self.remuneration.to_json(), "reasons": list(self.reasons),
                "policy_version": self.policy_version}


def is_stopped(policy_id: str | None, stopped: Collection[str]) -> bool:
    """Whether `policy_id` is under Emergency Stop: listed itself, by its category ("A", "tel") or by "*"."""
    if not policy_id or not stopped:
        return False
    return policy_id in stopped or policy_id.split(".")[0] in stopped or "*" in stopped


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _usd(money: Money | None) -> Decimal | None:
    return money.amount if money is not None and money.is_usd else None


def _remuneration(rule: Rule, ticket: Ticket) -> tuple[Remuneration, Allowance]:
    spec = rule.remuneration
    if spec.type in MONEY_TYPES:
        amount = cap = None
        if spec.amount_of:
            amount = _usd(getattr(ticket, spec.amount_of))
        elif spec.percent is not None and spec.of:
            base = _usd(getattr(ticket, spec.of))
            amount = None if base is None else base * spec.percent / 100
        if spec.cap:
            cap = _usd(getattr(ticket, spec.cap))
        amount = None if amount is None else cents(amount)
        allowance = (Allowance(kinds=frozenset({"money"}), limit=amount if amount is not None else cap,
                               percent=spec.percent, prorated=spec.prorated) if spec.automatic else NO_ALLOWANCE)
        return Remuneration(type=spec.type, amount=amount, currency=USD), allowance
    allowance = Allowance(kinds=frozenset({"replacement"})) if spec.type == "replacement" and spec.automatic \
        else NO_ALLOWANCE
    return Remuneration(type=spec.type), allowance


def _grant(rule: Rule, ticket: Ticket, remuneration: Remuneration, allowance: Allowance) -> Grant:
    """What a reply may commit to under `rule`: the automatic remuneration, and the rule's actions with limits."""
    kind = remuneration.type if allowance.kinds and remuneration.type in ("refund", "service_credit", "replacement") \
        else "none"
    limits: dict[str, Any] = {}
    for name, fact in rule.limits.items():
        value = getattr(ticket, fact)
        limits[name] = value.amount if isinstance(value, Money) else value
    if "plan_months" in limits and limits["plan_months"] is not None:
        limits["plan_months"] = int(limits["plan_months"])
    if "financial_access" in limits:
        limits["financial_access"] = bool(limits["financial_access"])
    return Grant(remuneration=kind, ceiling=allowance.limit, percent=allowance.percent, prorated=allowance.prorated,
                 actions=rule.actions if rule.outcome == "automate" else frozenset(), **limits)


def _from_rule(policy: Policy, rule: Rule, ticket: Ticket, reasons: list[str]) -> Decision:
    remuneration, allowance = _remuneration(rule, ticket)
    return Decision(policy=policy.id, outcome=rule.outcome, action=rule.action, escalate_to=rule.escalate_to,
                    approval_required=rule.approval_required, sla=rule.sla, remuneration=remuneration,
                    reasons=_unique(reasons), rule=rule.id, allowance=allowance,
                    grant=_grant(rule, ticket, remuneration, allowance), reply_template=rule.reply)


def _review(policy_id: str | None, reasons: list[str], *, policy: Policy | None = None,
            rule: Rule | None = None) -> Decision:
    return Decision(policy=policy_id, outcome="manual_review", action=rule.action if rule else _REVIEW_ACTION,
                    escalate_to=EXCEPTION_QUEUE, approval_required=True, sla=None,
                    remuneration=Remuneration(type="pending"), reasons=_unique(reasons),
                    rule=rule.id if rule else None, reply_template=rule.reply if rule else None)


def _under_policy(policy: Policy, ticket: Ticket, preamble: list[str]) -> Decision:
    if not policy.rules:
        why = policy.fallback or f"{policy.id} has no automation rule that ticket facts can decide"
        return _review(policy.id, [*preamble, why], policy=policy)
    results: list[tuple[Rule, Evaluation]] = [(rule, evaluate(rule.when, ticket)) for rule in policy.rules]
    head = [*preamble, *(ticket.notes if "amount" in policy.facts else ())]
    for rule, result in results:
        if rule.outcome == "escalate" and result.value is True:
            return _from_rule(policy, rule, ticket, [*head, f"{policy.id} rule {rule.id} ({rule.cite})", *result.true])
    others = [(r, e) for r, e in results if r.outcome != "automate"]
    for rule, result in results:
        if rule.outcome != "automate" or result.value is not True:
            continue
        blocking = [(r, e) for r, e in others if e.value is not False]
        if not blocking:
            reasons = [*head, f"{policy.id} rule {rule.id} ({rule.cite})", *result.true,
                       *(reason for _, e in others for reason in e.false)]
            return _from_rule(policy, rule, ticket, reasons)
        blocker, evaluation = blocking[0]
        return _review(policy.id, [*head, f"{policy.id} rule {rule.id} would automate, but rule {blocker.id} "
                                          f"({blocker.cite}) cannot be ruled out", *evaluation.unknown],
                       policy=policy)
    for rule, result in results:
        if rule.outcome == "manual_review" and result.value is True:
            return _review(policy.id, [*head, f"{policy.id} rule {rule.id} ({rule.cite}): {rule.note or rule.action}",
                                       *result.true], policy=policy, rule=rule)
    unknown = [reason for _, e in results for reason in e.unknown]
    near = [reason for r, e in results if r.outcome == "automate" for reason in e.false]
    why = f"no rule of {policy.id} matches the ticket's facts"
    if unknown:
        why += "; facts the rules need are missing or unusable"
    return _review(policy.id, [*head, why, *unknown, *near, *([policy.fallback] if policy.fallback else [])],
                   policy=policy)


def decide(ticket: Ticket | Mapping[str, Any], policies: Policies, *, classify: Classifier | None = None,
           stopped: Collection[str] = frozenset()) -> Decision:
    """Decide a ticket under its policy (pure: no I/O besides calling `classify`).

    Args:
        ticket: a `Ticket`, or a docs/interface.md §5 mapping that is validated first (`InputError` if bad).
        policies: the loaded policy file.
        classify: optional `(message) -> sop_id | None`, used only when the ticket has no `sop_id`.
        stopped: policy ids (or category prefixes such as "A", or "*") under Emergency Stop.
    """
    decision = _decide(ticket, policies, classify=classify, stopped=stopped)
    if policies.version is None:
        return decision
    return dataclasses.replace(decision, policy_version=policies.version)


def _decide(ticket: Ticket | Mapping[str, Any], policies: Policies, *, classify: Classifier | None,
            stopped: Collection[str]) -> Decision:
    if not isinstance(ticket, Ticket):
        ticket = parse_ticket(ticket)
    preamble: list[str] = []
    match = _INSTRUCTION.search(ticket.message)
    if match:
        preamble.append(f"the message contains instruction-like text ({match.group(0)!r}); customer text never "
                        "changes a decision")
    sop_id = ticket.sop_id
    if sop_id is None:
        if classify is None:
            return _review(None, [*preamble, "no sop_id given and no classifier available: the policy is unknown"])
        try:
            found = classify(ticket.message)
        except Exception as exc:  # the guard must stay correct when retrieval fails
            return _review(None, [*preamble, f"no sop_id given and the classifier failed ({type(exc).__name__}: "
                                             f"{exc})"])
        if not found:
            return _review(None, [*preamble, "no sop_id given and the message matches no policy confidently"])
        sop_id = normalize_sop_id(found)
        preamble.append(f"policy {sop_id} classified from the message (no sop_id given)")
    policy = policies.get(sop_id)
    if policy is None:
        return _review(sop_id, [*preamble, f"no policy rules for {sop_id!r}: the handbook gives it no automation"])
    decision = _under_policy(policy, ticket, preamble)
    money = decision.remuneration
    if (decision.outcome == "automate" and money.type in MONEY_TYPES and money.amount is not None
            and money.amount <= 0):
        return _review(policy.id, [*decision.reasons, f"the {money.type.replace('_', ' ')} rounds to $0.00: there is "
                                                      "nothing to automate"], policy=policy)
    if decision.outcome == "automate" and is_stopped(policy.id, stopped):
        stop = (f"{policy.id} is under Emergency Stop (SOPILOT_STOPPED_POLICIES): its automation reverts to manual "
                "review (handbook §7)")
        return _review(policy.id, [*decision.reasons, stop], policy=policy)
    return decision
