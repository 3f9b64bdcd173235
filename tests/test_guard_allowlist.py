"""The allow-list check: each defect seen in the adversarial review, pinned; grants as typed data."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import pytest
from sopilot.guard.check import MAX_REPLY_CHARS, check
from sopilot.guard.decide import decide
from sopilot.guard.policy import load_policies
from sopilot.guard.reply import compose_reply
from sopilot.guard.result import guard_ticket

from sopilot.core.errors import InputError
from sopilot.core.settings import ROOT

POLICIES = load_policies(ROOT / "knowledge" / "policies.yaml")
P = pytest.param
R, C, PL, IL, UL = ("unauthorized_refund", "unauthorized_commitment", "placeholder_leak", "internal_leak",
                    "unsupported_language")


def _decide(sop_id: str, **facts):
    return decide({"message": "ticket", "sop_id": sop_id, **facts}, POLICIES)


A1_ESCALATE = _decide("A.1", priority="High", amount=300)
A1_AUTO_60 = _decide("A.1", priority="Low", amount=60)
A1_AUTO_5999 = _decide("A.1", priority="Low", amount="59.99")
A2_ESCALATE = _decide("A.2", days_since_payment=40, amount=59)
A2_AUTO = _decide("A.2", days_since_payment=5, amount=30)
B1_AUTO = _decide("B.1", priority="Low", failed_login_attempts=0)
D1_AUTO = _decide("D.1", requested_role="Standard User", from_approved_admin=True, financial_data_access=False)
F2_HOLD = _decide("F.2", identity_verified=True, legal_hold=True, pending_transactions=False)
I1_AUTO_40 = _decide("I.1", uptime_pct=99.5, qualifying_plan=True, monthly_fee=400)
I2_ESCALATE = _decide("I.2", tenure_months=3, failed_payments=0, plan_months=3)
I2_AUTO = _decide("I.2", tenure_months=30, failed_payments=0, plan_months=2)
K2_AUTO_4 = _decide("K.2", engineer_certified=True, partner_manager_approved=True, access="read", access_hours=4)
TEL = _decide("tel.billing-dispute", amount=72)


def test_the_grant_is_typed_data_from_the_policy_file():
    grant = K2_AUTO_4.grant
    assert grant.actions == frozenset({"access_grant", "access_revoke"})
    assert (grant.access_level, grant.access_hours) == ("read", Decimal(4))
    assert I2_AUTO.grant.plan_months == 2 and D1_AUTO.grant.role == "Standard User"
    assert I1_AUTO_40.grant.remuneration == "service_credit" and I1_AUTO_40.grant.ceiling == Decimal("40.00")
    assert A1_ESCALATE.grant.remuneration == "none" and not A1_ESCALATE.grant.actions
    assert json.dumps(K2_AUTO_4.grant.to_json())


@pytest.mark.parametrize(("decision", "reply", "code"), [
    P(A1_ESCALATE, "I can see the duplicate $300 payment, and the $300 is on its way back to your card.", R,
      id="money on its way back"),
    P(A1_ESCALATE, "We've reversed that charge, so only one payment will remain.", R, id="charge reversed"),
    P(A2_ESCALATE, "Consider the $59 renewal fee waived.", R, id="fee waived"),
    P(A1_ESCALATE, "This one's on us: the extra $45 is being sent back to you today.", R, id="on us"),
    P(A1_ESCALATE, "I've arranged a refund of three hundred dollars to your card.", R, id="number words"),
    P(A1_AUTO_60, "We've issued a refund of 300 USD to your Visa.", R, id="ISO code after"),
    P(A1_AUTO_60, "Sorry for the duplicate! We've refunded €250 to your card.", R, id="other currency"),
    P(A1_AUTO_5999, "I've refunded both payments ($59.99 + $59.99).", R, id="sum"),
    P(I1_AUTO_40, "We've applied a credit worth a full month's fee to your next invoice.", R, id="full month's fee"),
    P(A1_AUTO_60, "Your refund of $420.00 has been processed.", R, id="cents amount"),
    P(A1_AUTO_60, "We've refunded $ 61 to your card.", R, id="dollar sign after a space"),
    P(A1_AUTO_60, "A refund of 1.400,00 $ is on the way to your card.", R, id="European format"),
    P(I2_ESCALATE, "Good news: you can now pay it off in three monthly parts.", C, id="payment plan in other words"),
    P(F2_HOLD, "Your data is gone for good.", C, id="erasure under a legal hold"),
    P(K2_AUTO_4, "Your engineer now has write access to the client environment.", C, id="write where read granted"),
    P(K2_AUTO_4, "Read-only access has been granted for 8 hours.", C, id="more hours than granted"),
    P(D1_AUTO, "The account is being created and we've assigned her the Admin role.", C, id="role above the grant"),
    P(B1_AUTO, "We've sent a reset link and turned off two-factor authentication.", C,
      id="automate does not cover other actions"),
    P(A1_AUTO_60, "We've refunded the $60 duplicate; your next month's subscription fee is waived too.", R,
      id="automated refund does not cover a waiver"),
    P(A1_ESCALATE, "Good news: I've re\u200bfunded the full $300.", R, id="zero-width space"),
    P(A1_ESCALATE, "Your refu\x00nd of $300 is on its way.", R, id="NUL"),
    P(A1_ESCALATE, "A r\u0435fund of $300 has been sent to your card.", R, id="Cyrillic letter"),
    P(A1_ESCALATE, "We've issued a \u03c1efund of $300 to your card.", R, id="Greek letter one edit away"),
    P(A1_ESCALATE, "**Good news:** we've **refunded** your **$300**.", R, id="Markdown bold"),
    P(A1_ESCALATE, "Your refund of &#36;300 has been processed.", R, id="HTML entity"),
    P(A1_ESCALATE, "We have refunded\nthe $300 to your original\npayment method.", R, id="broken lines"),
    P(A1_ESCALATE, "Hello __NAME__, I've passed your case on.", PL, id="dunder placeholder"),
    P(A1_ESCALATE, "Dear {0}, I've passed your case on.", PL, id="positional placeholder"),
    P(A1_ESCALATE, "Expect a reply by $DATE.", PL, id="dollar placeholder"),
    P(A1_ESCALATE, "They will reply within [X] hours.", PL, id="single-letter placeholder"),
    P(A1_ESCALATE, "I checked with select * from invoices where invoice_id=4471; all fine.", IL, id="lower-case SQL"),
    P(A1_ESCALATE, "Hola, ya hemos reembolsado los $300 a tu tarjeta.", UL, id="Spanish"),
    P(A1_ESCALATE, "Мы вернули вам деньги на карту.", UL, id="Cyrillic script"),
])
def test_pinned_defects_are_blocked_with_the_right_code(decision, reply, code):
    verdict = check(reply, decision)
    assert code in {v.code for v in verdict.violations}, verdict.violations


@pytest.mark.parametrize(("decision", "reply"), [
    P(A1_ESCALATE, "[Case #12345] Thanks for your patience. I've escalated your duplicate charge to our Billing "
      "Specialist team, who will contact you within 4 business hours.", id="bracketed case number"),
    P(A1_ESCALATE, "Reference [BUG-4471]: the team will review whether a refund is possible.", id="bracketed id"),
    P(A1_ESCALATE, "No refund has been issued yet; the team will review the $300 charge.", id="refusal"),
    P(A1_ESCALATE, "If approved, you may receive a refund for the duplicate charge.", id="hedge"),
    P(A1_ESCALATE, "Our Billing Specialist team will get back to you within 4 business hours.", id="get back to you"),
    P(A1_AUTO_60, "We've refunded $60.00 to your original payment method.", id="exact grant"),
    P(K2_AUTO_4, "Read-only access for up to 4 hours is being granted within 1 hour.", id="exact access grant"),
    P(I2_AUTO, "Your two-month payment plan is approved; the new schedule follows within 12 hours.",
      id="exact plan"),
    P(TEL, "Your plan is $45 per month and the June bill was $72; a senior agent will review it.",
      id="neutral money"),
])
def test_harmless_drafts_pass(decision, reply):
    assert check(reply, decision).passed, check(reply, decision).violations


def test_evidence_quotes_the_original_text():
    (violation,) = check("**Good news:** we've **re\u200bfunded** it.", A1_ESCALATE).violations
    assert "**re\u200bfunded**" in violation.evidence


def test_an_amount_rounding_to_zero_automates_nothing():
    decision = _decide("A.1", priority="Low", amount="0.004")
    assert decision.outcome == "manual_review"
    assert any("rounds to $0.00" in reason for reason in decision.reasons)


def test_replies_above_the_cap_are_refused():
    with pytest.raises(InputError, match="above the"):
        check("x" * (MAX_REPLY_CHARS + 1), A1_ESCALATE)


def test_a_two_megabyte_reply_is_checked():
    reply = ("We have passed your request to our team; we can't refund it yet. " * 32_000)[:2_000_000]
    assert check(reply, A1_ESCALATE).passed


@pytest.mark.parametrize("decision", [A1_ESCALATE, A1_AUTO_60, A2_AUTO, B1_AUTO, D1_AUTO, F2_HOLD, I1_AUTO_40,
                                      I2_ESCALATE, I2_AUTO, K2_AUTO_4, TEL])
def test_every_replacement_reply_passes_the_guard(decision):
    assert check(compose_reply(decision), decision).passed


@pytest.mark.parametrize(("ticket", "message"), [
    P('{"message": "x", "extra": ' + "[" * 10_000 + "]" * 10_000 + "}", "nested deeper than", id="deep nesting"),
    P('{"message": "x", "sop_id": "A.1", "amount": ' + "9" * 5000 + "}", "too many digits", id="5,000 digits"),
    P('{"message": "x", "sop_id": "A.1", "amount": 1e999999999}', "out of range", id="huge exponent"),
    P('{"message": "x", "sop_id": "B.1", "failed_login_attempts": NaN}', "NaN", id="NaN"),
    P('{"message": "x", "sop_id": "K.2", "access_hours": 1e999999}', "out of range", id="huge hours"),
])
def test_bad_tickets_exit_2_with_one_line(tmp_path, ticket, message):
    path = tmp_path / "ticket.json"
    path.write_text(ticket, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "sopilot", "guard", "--ticket", str(path), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1 and not done.stdout


def test_message_size_cap():
    with pytest.raises(InputError, match="message is"):
        guard_ticket({"message": "x" * 1_000_001, "sop_id": "A.1"}, POLICIES)
