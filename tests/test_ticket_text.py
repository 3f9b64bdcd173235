"""Facts read from what agents paste and type, with where each came from."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal

import pytest
from sopilot.guard.facts import parse_ticket
from sopilot.guard.policy import load_policies
from sopilot.guard.ticket_text import LEXICON, lexicon, read_ticket_text, split_notes

from sopilot.core.errors import ConfigError
from sopilot.core.settings import KNOWLEDGE_DIR


def facts(text: str, **kw) -> dict:
    return {name: fact.value for name, fact in read_ticket_text(text, **kw).facts.items()}


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("user locked out after five failed logins, high priority",
                 {"failed_login_attempts": 5, "priority": "High"}, id="lockout note with number words"),
    pytest.param("I tried my password 3 times and now the account is locked (3 failed login attempts)",
                 {"failed_login_attempts": 3}, id="count after its number"),
    pytest.param("Been a customer for two years; can I get a 3-month payment plan? Card was declined twice.",
                 {"tenure_months": 24, "plan_months": 3, "failed_payments": 2}, id="years as months, twice"),
    pytest.param("Our uptime last month was 98.7% and we are on a qualifying plan paying $500/month",
                 {"uptime_pct": Decimal("98.7"), "qualifying_plan": True, "monthly_fee": "$500",
                  "amount": "USD 500"}, id="uptime credit facts"),
    pytest.param("The blender arrived cracked. It is still under warranty, I paid 10 days ago.",
                 {"damage": "major", "under_warranty": True, "days_since_payment": 10}, id="damaged product"),
    pytest.param("The device is not under warranty and has minor damage",
                 {"under_warranty": False, "damage": "minor"}, id="negated warranty"),
    pytest.param("out of warranty unfortunately", {"under_warranty": False}, id="a no phrase"),
    pytest.param("Please upgrade me to Super User. Request from an approved admin, no financial data.",
                 {"requested_role": "Super User", "from_approved_admin": True, "financial_data_access": False},
                 id="role request"),
    pytest.param("request from the admin: please reset my password", {}, id="an admin who asks is no role"),
    pytest.param("Certified partner engineer needs read-only access for 6 hours, partner manager approved",
                 {"engineer_certified": True, "partner_manager_approved": True, "access": "read",
                  "access_hours": Decimal("6")}, id="partner access"),
    pytest.param("the engineer is not certified and wants write access",
                 {"engineer_certified": False, "access": "write"}, id="uncertified write"),
    pytest.param("Platinum account, priority: medium", {"account_tier": "Platinum", "priority": "Medium"},
                 id="tier and priority"),
    pytest.param("no legal hold, no pending transactions, identity is verified",
                 {"legal_hold": False, "pending_transactions": False, "identity_verified": True}, id="erasure"),
    pytest.param("Identity has not been verified yet and there are pending transactions",
                 {"identity_verified": False, "pending_transactions": True}, id="not yet verified"),
    pytest.param("Partner engineer (certified) requests write access for 2 hours",
                 {"engineer_certified": True, "access": "write", "access_hours": Decimal("2")}, id="in brackets"),
    pytest.param("Invoice #4521 for ticket T-1234 was wrong", {}, id="ids are no counts"),
    pytest.param("I paid $40 for 2 items", {"amount": "USD 40"}, id="a price is no count of days"),
])
def test_reads_the_facts_policies_use(text, expected):
    assert facts(text) == expected


def test_every_fact_a_policy_tests_has_phrasings():
    policies = load_policies(KNOWLEDGE_DIR / "policies.yaml")
    used = set().union(*(p.facts for p in policies.policies.values())) - {"amount"}
    assert used - set(lexicon().facts) == set()


def test_agent_notes_are_set_by_the_agent_and_win():
    text = "My account is locked after 2 failed logins, this is urgent!\nNote: priority low, 4 failed logins"
    read = read_ticket_text(text)
    assert read.facts["priority"].value == "Low" and read.facts["priority"].source == "agent"
    assert read.facts["failed_login_attempts"].value == 4
    assert read.facts["failed_login_attempts"].label == "set by the agent"
    assert split_notes(text)[0] == "My account is locked after 2 failed logins, this is urgent!"
    customer = read_ticket_text("My account is locked after 2 failed logins")
    assert customer.facts["failed_login_attempts"].label == "read from the customer's words"
    from_field = read_ticket_text("locked out", agent_note="identity verified")
    assert from_field.facts["identity_verified"].source == "agent"


def test_a_fact_said_twice_keeps_the_later_and_says_so():
    read = read_ticket_text("3 failed logins. Actually it was 6 failed logins")
    assert read.facts["failed_login_attempts"].value == 6
    assert read.notes and "failed_login_attempts" in read.notes[0]


def test_what_is_read_is_accepted_by_the_guard_parser():
    text = ("Platinum account, high priority. Customer for 3 years, 2 failed payments, wants a 2 month payment "
            "plan; uptime 99.5%, $200 a month. Read-only access for 3 hours. Not under warranty.")
    ticket = parse_ticket({"message": text, **read_ticket_text(text).values()})
    assert (ticket.tenure_months, ticket.failed_payments, ticket.plan_months) == (36, 2, 2)
    assert ticket.uptime_pct == Decimal("99.5") and ticket.monthly_fee.amount == Decimal("200")
    assert ticket.account_tier == "Platinum" and ticket.under_warranty is False


def test_a_broken_phrasings_file_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "ticket_text.yaml"
    bad.write_text(LEXICON.read_text().replace("  failed_login_attempts:", "  failed_logins_typo:"))
    with pytest.raises(ConfigError, match=re.escape("unknown fact 'failed_logins_typo'")):
        read_ticket_text("x", path=bad)


def test_stays_light():
    code = ("import sys, sopilot.guard.ticket_text as t; t.read_ticket_text('five failed logins'); "
            "print([m for m in ('torch', 'numpy', 'chromadb', 'langchain') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
