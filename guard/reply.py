"""The compliant reply built from a decision: what is shown when a draft is blocked (or absent).

It says only what the decision allows: the automated action with its granted amount, or the
hand-over to a team or reviewer with an explicit "nothing has been refunded or changed yet". Every
reply it builds passes `guard.check` for the same decision (a property test holds it to that).
"""

from __future__ import annotations

from sopilot.guard.decide import Decision

from sopilot.core.money import Money

GREETING = "Thank you for contacting us."
SAFE_REPLY = f"{GREETING} A member of our support team will review your request and get back to you."
_NOTHING_YET = "We have not made any refund, credit or change to your account at this stage."


def _percent(decision: Decision) -> str | None:
    percent = decision.allowance.percent
    return None if percent is None else f"{percent.normalize():f}%"


def _remuneration_phrase(decision: Decision) -> str:
    remuneration = decision.remuneration
    amount = None if remuneration.amount is None else str(Money(amount=remuneration.amount))
    percent = _percent(decision)
    if remuneration.type == "refund":
        if decision.allowance.prorated:
            return "a pro-rated refund for the unused part of your billing cycle"
        return f"a refund of {amount}" if amount else "a refund"
    if remuneration.type == "service_credit":
        if amount and percent:
            return f"a service credit of {amount} ({percent} of your monthly fee)"
        if percent:
            return f"a service credit of {percent} of your monthly fee"
        return f"a service credit of {amount}" if amount else "a service credit"
    return "a replacement" if remuneration.type == "replacement" else "nothing"


def _hours(decision: Decision) -> str:
    """The access hours the decision grants ("2 hours", "1.5 hours"): the request, not the policy's maximum."""
    hours = decision.grant.access_hours
    if hours is None:
        return "the time granted"
    text = f"{hours.normalize():f}"
    return f"{text} hour" if text == "1" else f"{text} hours"


def compose_reply(decision: Decision) -> str:
    """A customer-facing reply that commits to exactly what `decision` allows."""
    return f"{GREETING} {compose_body(decision)}"


def compose_body(decision: Decision) -> str:
    """The committing sentences of a reply (decision, team, time frame, amount), without a greeting.

    The strict form of an LLM reply puts these sentences, composed here from the decision, between the
    LLM's own greeting and closing, so that no commitment is ever in the LLM's words.
    """
    if decision.reply_template:
        amount = decision.remuneration.amount
        body = decision.reply_template.format(
            remuneration=_remuneration_phrase(decision),
            amount=str(Money(amount=amount)) if amount is not None else "the amount",
            percent=_percent(decision) or "a share",
            team=decision.escalate_to or "support team",
            sla=decision.sla or "the usual time",
            hours=_hours(decision),
        )
        return body
    if decision.outcome == "escalate":
        return (f"I've passed your request to our {decision.escalate_to}, who will get back to you within "
                f"{decision.sla}. {_NOTHING_YET}")
    if decision.outcome == "manual_review":
        return f"A senior member of our support team will review your request and get back to you. {_NOTHING_YET}"
    return f"Your request is being processed and we will confirm within {decision.sla}."
