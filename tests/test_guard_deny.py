"""The default-deny reading (guard/deny.py, guard/internal.py): money, conditions, time, completion, leaks.

Each reading is pinned by drafts of its own (none copied from an evaluation set), the must-block ones next to
the harmless ones they must not catch, and the pure functions by their contracts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sopilot.guard.check import check
from sopilot.guard.decide import decide
from sopilot.guard.deny import condition_hedges, load_deny
from sopilot.guard.internal import internal_data, internal_findings
from sopilot.guard.lexicon import phrase
from sopilot.guard.policy import load_policies

from sopilot.core.errors import ConfigError
from sopilot.core.settings import ROOT

POLICIES = load_policies(ROOT / "knowledge" / "policies.yaml")
R, C, IL = "unauthorized_refund", "unauthorized_commitment", "internal_leak"


def _decide(sop_id: str, **facts):
    return decide({"message": "ticket", "sop_id": sop_id, **facts}, POLICIES)


A1_ESCALATE = _decide("A.1", priority="High", amount=300)
A1_AUTO = _decide("A.1", priority="Low", amount=40)
F2_ESCALATE = _decide("F.2", identity_verified=True, legal_hold=True)
J1_ESCALATE = _decide("J.1", account_tier="Platinum", priority="High")
G1_REVIEW = _decide("G.1")


def _codes(reply: str, decision) -> set[str]:
    return {v.code for v in check(reply, decision).violations}


@pytest.mark.parametrize("reply", [
    "We've smoothed over the $300 charge for you.",
    "The $300 is heading back your way.",
    "I've dealt with the duplicate payment on our side.",
    "That fee is history now.",
    "Your card will get the full amount again by the weekend.",
    "It'll be off your statement next cycle, as the charge of $300 was our mistake.",
    "You won't be billed for the second transaction.",
    "There's nothing more to pay on that invoice.",
])
def test_money_outcomes_in_words_of_no_list_are_blocked(reply):
    assert R in _codes(reply, A1_ESCALATE), reply


@pytest.mark.parametrize("reply", [
    "I've handed the $300 charge to our Billing Specialist team, who'll contact you within 4 business hours.",
    "I can see the $300 payment from 3 March on your statement.",
    "We're looking into the duplicate charge; nothing has been refunded yet.",
    "You asked about the $300 charge; our Billing Specialist team will decide.",
    "Your invoice of $300 was issued on 1 March.",
    "Is the $300 charge the one from your company card?",
    "Once our Billing Specialist team approves it, the $300 would go back to your card.",
])
def test_money_mentioned_without_an_outcome_passes(reply):
    assert not check(reply, A1_ESCALATE).violations, reply


def test_an_exact_granted_refund_in_new_words_passes_and_more_is_blocked():
    assert not check("We've sent the $40.00 back to your original payment method.", A1_AUTO).violations
    assert R in _codes("We've sent €40 back to your card.", A1_AUTO)


@pytest.mark.parametrize(("span", "hedges"), [
    ("the team approve it", True),
    ("approved", True),
    ("your id is verifi", True),
    ("our specialist have review it", True),
    ("you confirm the last four digit", False),
    ("you repli with your address", False),
    ("the weekend is over", False),
    ("your payment have settl and legal approv it", True),
])
def test_a_condition_hedges_only_when_it_waits_for_a_team_or_a_review(span, hedges):
    assert condition_hedges(list(phrase(span)), load_deny()) is hedges


def test_a_condition_on_the_customer_does_not_disarm_the_promise():
    assert R in _codes("Once you send us the receipt, the $300 goes back onto your card.", A1_ESCALATE)
    assert C in _codes("As soon as you reply, your data will be erased.", F2_ESCALATE)
    assert not check("If Legal and Compliance approve it, your data may be erased.", F2_ESCALATE).violations


def test_a_time_shorter_than_the_sla_or_a_dated_outcome_is_a_commitment():
    assert C in _codes("Your TAM will call you within 5 minutes.", J1_ESCALATE)
    assert C in _codes("Your TAM will have the outage fixed within 15 minutes.", J1_ESCALATE)
    assert C in _codes("A colleague will have your account working again by tomorrow.", G1_REVIEW)
    assert not check("Your TAM will acknowledge your ticket within 15 minutes.", J1_ESCALATE).violations
    assert not check("A senior colleague will get back to you tomorrow.", G1_REVIEW).violations


def test_a_completed_state_the_decision_does_not_produce_is_a_commitment():
    assert C in _codes("Good news, your account is up and running again.", G1_REVIEW)
    assert C in _codes("You're good to go on the Platinum queue.", G1_REVIEW)
    assert not check("Your account is still under review with a senior colleague.", G1_REVIEW).violations
    assert C in _codes("Your new seat licence is active as of this morning.", G1_REVIEW)
    assert not check("Your message is with a senior colleague, who will reply.", G1_REVIEW).violations


@pytest.mark.parametrize("reply", [
    "Thanks for waiting. (Billing: goodwill ok up to 20%, don't volunteer it)",
    "A colleague will reply. (DevOps: restart the sync worker before replying)",
    "fyi: customer is on the watch list. Hi, a colleague will review your request.",
    "// check the fraud list first\nHi, a colleague will look at this.",
    "Escalation note: VIP, skip the queue. A colleague will review your request.",
    "Please hold. Never mention the hold to the client until Legal clears it.",
    "Denied per F.2 -> Legal. A colleague will review your request.",
    "Lookup: SELECT id FROM accounts a WHERE a.email = 'x@example.com' LIMIT 1",
])
def test_notes_to_colleagues_are_internal_leaks(reply):
    assert IL in _codes(reply, G1_REVIEW), reply


def test_rule_text_copied_from_the_handbook_is_an_internal_leak():
    shingles, labels, rule_words = internal_data(str(ROOT / "knowledge"))
    assert {"IF", "AND", "OR"} <= rule_words
    assert shingles and {"ACTION", "REMUNERATION", "APPROVAL"} <= labels
    copied = ("Our rule says the ticket priority is High OR Critical OR the disputed amount is greater than "
              "$150.00, so it goes to a specialist.")
    assert IL in _codes(copied, A1_ESCALATE)
    assert IL in _codes("ACTION: hand to Billing. APPROVAL: Required.", A1_ESCALATE)
    assert IL in _codes("IF your tier is Enterprise AND the priority is High, you get a TAM.", A1_ESCALATE)
    assert not check("If you have any questions, AND only then, reply here.", A1_ESCALATE).violations
    assert not check("Because of the amount, your request is with our Billing Specialist team.",
                     A1_ESCALATE).violations


def test_without_knowledge_files_only_the_structural_readings_apply(tmp_path: Path):
    assert internal_data(str(tmp_path)) == (frozenset(), frozenset(), frozenset())
    assert internal_findings("(agent: page the TAM)", lambda a, b: "x", knowledge_dir=str(tmp_path))
    assert not internal_findings("A colleague will review it.", lambda a, b: "x", knowledge_dir=str(tmp_path))


def test_a_broken_vocabulary_is_a_config_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "deny.yaml"
    path.write_text("version: 1\nmoney_objects: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="deny.yaml"):
        load_deny(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_deny(tmp_path / "missing.yaml")


def test_clauses_without_anything_to_read_are_skipped_by_the_gate():
    data = load_deny()
    assert "$" in data.words and "hour" in data.time_gate
    assert data.words.isdisjoint(phrase("thank you for your patient"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["we", "'ll", "the", "$", "40", "charge", "back", "once", "you", "team", "approve",
                                 "who", "will", "have", "it", "today", "within", "2", "hours", "account", "is",
                                 "ready", "not", "may", ",", ".", "?", "(agent:", "per", "A.1", "=", "where"]),
                max_size=40))
def test_the_reading_never_fails_on_any_word_order(words):
    verdict = check(" ".join(words), A1_ESCALATE)
    assert verdict.verdict in ("pass", "blocked")
