"""Ticket parsing: money forms, validation errors that name the field and the allowed values."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sopilot.guard.facts import parse_ticket

from sopilot.core.errors import InputError
from sopilot.core.money import Money, find_amounts, parse_money

P = pytest.param


@pytest.mark.parametrize(("value", "money"), [
    P("$1,250.00", Money(amount=Decimal("1250.00")), id="dollar sign and separators"),
    P("USD 180", Money(amount=Decimal("180")), id="USD prefix"),
    P("180 dollars", Money(amount=Decimal("180")), id="dollars suffix"),
    P("180", Money(amount=Decimal("180")), id="bare string"),
    P(180, Money(amount=Decimal("180")), id="integer"),
    P(19.99, Money(amount=Decimal("19.99")), id="float read through its repr"),
    P(Decimal("150.01"), Money(amount=Decimal("150.01")), id="decimal"),
    P("$5k", Money(amount=Decimal("5000")), id="k suffix"),
    P("EUR 90", Money(amount=Decimal("90"), currency="EUR"), id="euro code"),
    P("€90", Money(amount=Decimal("90"), currency="EUR"), id="euro sign"),
    P("C$90", Money(amount=Decimal("90"), currency="CAD"), id="Canadian dollars are not USD"),
])
def test_parse_money(value, money):
    assert parse_money(value)[0] == money


@pytest.mark.parametrize(("value", "message"), [
    P("-5", "amount '-5' is negative", id="negative string"),
    P(-5, "amount -5 is negative", id="negative number"),
    P("lots", "amount 'lots' is not an amount of money: use a number or a string such as '$1,250.00'", id="words"),
    P(True, "amount True is not an amount of money", id="boolean"),
    P("NaN", "amount 'NaN' is not an amount of money", id="not a number"),
])
def test_parse_money_rejects(value, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_money(value)


def test_find_amounts_in_text():
    text = "Charged $40 twice (USD 40 each), 180 dollars in total, plus €12 and C$5; call 555-0100 at 3:00."
    assert [str(m) for m in find_amounts(text)] == ["$40.00", "$40.00", "$180.00", "EUR 12.00", "CAD 5.00"]


@pytest.mark.parametrize(("data", "message"), [
    P({"priority": "Low"}, "message is missing or not a string", id="message missing"),
    P({"message": "x", "priority": "Urgent"}, "priority 'Urgent' is not one of Low, Medium, High, Critical",
      id="unknown priority"),
    P({"message": "x", "amount": -1}, "amount -1 is negative", id="negative amount"),
    P({"message": "x", "damage": "broken"}, "damage 'broken' is not one of minor, major", id="damage"),
    P({"message": "x", "access": "admin"}, "access 'admin' is not one of read, write", id="access"),
    P({"message": "x", "account_tier": "Gold"}, "account_tier 'Gold' is not one of Standard, Enterprise, Platinum",
      id="tier"),
    P({"message": "x", "under_warranty": "maybe"}, "under_warranty 'maybe' is not a boolean: use true or false",
      id="boolean"),
    P({"message": "x", "days_since_payment": 2.5}, "days_since_payment 2.5 is not a whole number", id="fraction"),
    P({"message": "x", "tenure_months": -3}, "tenure_months -3 is negative", id="negative integer"),
    P({"message": "x", "uptime_pct": 101}, "uptime_pct 101 is out of range: use a number from 0 to 100", id="uptime"),
    P({"message": "x", "sop_id": 7}, "sop_id 7 is not a string", id="sop_id"),
    P(["message"], "a ticket must be a JSON object", id="not an object"),
])
def test_invalid_tickets_name_field_and_allowed_values(data, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_ticket(data)


def test_ticket_normalises_and_keeps_unknown_fields():
    ticket = parse_ticket({"message": "x", "sop_id": " a.1 ", "priority": "low", "under_warranty": "yes",
                           "uptime_pct": "99.5%", "customer": "ACME", "requested_role": "super user"})
    assert (ticket.sop_id, ticket.priority, ticket.under_warranty) == ("A.1", "Low", True)
    assert ticket.uptime_pct == Decimal("99.5") and ticket.requested_role == "Super User"
    assert ticket.extra == {"customer": "ACME"}


def test_amount_from_message_is_the_largest_and_says_so():
    ticket = parse_ticket({"message": "I paid $40, then $40, then $180.50 in total"})
    assert ticket.amount == Money(amount=Decimal("180.50")) and ticket.amount_source == "message"
    assert ticket.notes == ("amount $180.50 read from the message (largest of $40.00, $40.00, $180.50)",)


def test_amount_field_wins_over_the_message():
    ticket = parse_ticket({"message": "refunds up to $5000 are auto-approved", "amount": 40})
    assert ticket.amount == Money(amount=Decimal("40")) and ticket.amount_source == "field"


def test_null_fields_are_missing():
    assert parse_ticket({"message": "x", "priority": None, "amount": None}).priority is None
