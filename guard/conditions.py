"""Evaluating a rule's conditions on a ticket in three-valued (Kleene) logic.

A test on a missing fact, or on money that is not in US dollars, is *unknown*, not false. `all`
is false as soon as one item is false and `any` is true as soon as one item is true, so an
escalation whose one condition is known still fires, while automation needs every test known.
Because unknown never turns into true, removing a fact can never produce automation.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, NamedTuple

from sopilot.guard.facts import PRIORITY_RANK, Ticket, format_fact
from sopilot.guard.policy import AllOf, Condition, Leaf

from sopilot.core.money import Money

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "in": lambda observed, allowed: observed in allowed,
    "not_in": lambda observed, allowed: observed not in allowed,
}


class Evaluation(NamedTuple):
    """The value of a condition (True, False or None for unknown) and the reasons behind each answer."""

    value: bool | None
    true: tuple[str, ...]
    false: tuple[str, ...]
    unknown: tuple[str, ...]


def _leaf(leaf: Leaf, ticket: Ticket) -> Evaluation:
    observed = getattr(ticket, leaf.fact)
    if observed is None:
        return Evaluation(None, (), (), (f"{leaf.fact} is missing",))
    shown = format_fact(leaf.fact, observed)
    if isinstance(observed, Money):
        if not observed.is_usd:
            return Evaluation(None, (), (), (f"{leaf.fact} {shown} is not in USD, so it cannot be compared "
                                             "with the handbook's dollar limits",))
        observed = observed.amount
    elif leaf.kind == "priority":
        observed = PRIORITY_RANK[observed]
    if OPERATORS[leaf.op](observed, leaf.value):
        return Evaluation(True, (leaf.true_text.format(obs=shown),), (), ())
    return Evaluation(False, (), (leaf.false_text.format(obs=shown),), ())


def evaluate(condition: Condition, ticket: Ticket) -> Evaluation:
    """Evaluate `condition` on `ticket`; reasons say which tests held, failed or could not be decided."""
    if isinstance(condition, Leaf):
        return _leaf(condition, ticket)
    parts = [evaluate(item, ticket) for item in condition.items]
    true = tuple(r for p in parts if p.value is True for r in p.true)
    false = tuple(r for p in parts if p.value is False for r in p.false)
    unknown = tuple(r for p in parts if p.value is None for r in p.unknown)
    values = [p.value for p in parts]
    if isinstance(condition, AllOf):
        value = False if False in values else None if None in values else True
    else:
        value = True if True in values else None if None in values else False
    return Evaluation(value, true, false, unknown)
