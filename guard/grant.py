"""What a decision grants, as typed data: the only commitments a reply may make.

The reply check is an allow-list: every commitment a draft makes (money, an action on the
customer's account, an approval) must be covered by the decision's `Grant`, whatever the outcome.
A grant is built from the deciding rule's `remuneration` and `grants` in knowledge/policies.yaml and
the ticket's facts (the ceiling is the disputed amount, the hours are the hours requested, ...).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any, Literal

from sopilot.core.money import USD, format_amount

RemunerationKind = Literal["refund", "service_credit", "replacement", "none"]
LIMITS = ("access_level", "access_hours", "role", "plan_months", "financial_access")
"""The limits a rule's `grants.limits` may take from ticket facts."""

_MONEY_KINDS: dict[str, frozenset[str]] = {
    "refund": frozenset({"refund", "credit"}),
    "service_credit": frozenset({"credit"}),
    "replacement": frozenset({"replacement"}),
    "none": frozenset(),
}


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Grant:
    """The commitments a decision covers; anything else a reply promises is blocked."""

    remuneration: RemunerationKind = "none"
    """The remuneration granted without approval (a pending or team-decided one is `none`)."""
    ceiling: Decimal | None = None
    """Largest amount a reply may name, in `currency`; None: no amount can be stated."""
    currency: str = USD
    percent: Decimal | None = None
    """Largest share of a fee a reply may name (a credit of 10 % of the monthly fee)."""
    prorated: bool = False
    """A pro-rated refund: a reply may not promise a full one."""
    actions: frozenset[str] = frozenset()
    """Ids of the actions (guard/lexicon.yaml) the decision performs, e.g. `password_reset`."""
    access_level: str | None = None
    access_hours: Decimal | None = None
    role: str | None = None
    plan_months: int | None = None
    financial_access: bool = False

    @property
    def money_kinds(self) -> frozenset[str]:
        """The kinds of money commitment covered: a refund grant covers refund and credit wording."""
        return _MONEY_KINDS[self.remuneration]

    def to_json(self) -> dict[str, Any]:
        """The grant as JSON (amounts as two-decimal strings)."""
        return {"remuneration": self.remuneration,
                "ceiling": None if self.ceiling is None else format_amount(self.ceiling),
                "currency": self.currency, "percent": None if self.percent is None else f"{self.percent:f}",
                "prorated": self.prorated, "actions": sorted(self.actions), "access_level": self.access_level,
                "access_hours": None if self.access_hours is None else f"{self.access_hours:f}",
                "role": self.role, "plan_months": self.plan_months, "financial_access": self.financial_access}


NO_GRANT = Grant()
