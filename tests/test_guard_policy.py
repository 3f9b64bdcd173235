"""The policy file loads, covers the handbook, and broken files fail with errors that name the problem."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sopilot.guard.policy import load_policies

from sopilot.core.errors import ConfigError
from sopilot.core.settings import ROOT

CONF = Path(__file__).parent / "conf"
POLICY_FILE = ROOT / "knowledge" / "policies.yaml"
P = pytest.param


def test_shipped_policy_file_covers_the_handbook():
    policies = load_policies(POLICY_FILE)
    fact_dependent = ["A.1", "A.2", "B.1", "C.1", "D.1", "F.1", "F.2", "I.1", "I.2", "J.1", "K.2"]
    for sop_id in fact_dependent:
        assert policies.get(sop_id).rules, sop_id
    for sop_id in ["B.2", "D.2", "E.1", "E.2", "G.1", "G.2", "H.1", "H.2", "J.2", "K.1", "L.1", "L.2"]:
        policy = policies.get(sop_id)
        assert policy.rules or policy.fallback, sop_id
    for rule in (r for p in policies.policies.values() for r in p.rules):
        assert rule.cite.startswith("§3") or "telecom" in rule.cite, rule.id
    assert policies.thresholds["refund_auto_limit"].value == 150
    assert {"cooling_off_days", "tenure_auto_months", "tenure_short_months", "plan_auto_max_months",
            "uptime_credit_below_pct", "uptime_severe_below_pct", "credit_pct", "credit_severe_pct",
            "partner_access_max_hours"} <= set(policies.thresholds)


def test_every_threshold_is_documented():
    for threshold in load_policies(POLICY_FILE).thresholds.values():
        assert threshold.help and threshold.quote and threshold.section, threshold.name


def test_policy_file_is_cached_until_it_changes(tmp_path):
    copy = tmp_path / "policies.yaml"
    shutil.copy(POLICY_FILE, copy)
    first = load_policies(copy)
    assert load_policies(copy) is first
    copy.write_text(copy.read_text(encoding="utf-8").replace('value: "150.00"', 'value: "120.00"'), encoding="utf-8")
    assert load_policies(copy).thresholds["refund_auto_limit"].value == 120


@pytest.mark.parametrize(("fixture", "message"), [
    P("unknown_key", "policies.A.1.rules[0].outcom: unknown key", id="unknown key"),
    P("unknown_fact", "unknown fact 'amout'; valid facts: priority, amount", id="unknown fact"),
    P("unknown_threshold", "unknown threshold 'refund_limit'; defined: refund_auto_limit", id="unknown threshold"),
    P("wrong_unit", "threshold 'cooling_off_days' is in days, but amount is usd", id="threshold in the wrong unit"),
    P("bad_operator", "op 'lt' does not apply to under_warranty (bool); use one of eq, ne", id="operator"),
    P("priority_value", "value 'Hihg' is not a valid priority: use one of Low, Medium, High, Critical",
      id="priority value"),
    P("escalate_without_team", "an escalate rule needs 'escalate_to' (the team) and 'sla'", id="escalate without team"),
    P("duplicate_rule", "rule id 'a1_escalate' is already used in A.1", id="duplicate rule id"),
    P("outcome", "outcome: Input should be 'automate', 'escalate' or 'manual_review' (got 'approve')", id="outcome"),
    P("money_untested", "automatic remuneration uses amount, which the rule's 'when' does not test",
      id="money amount not tested"),
    P("reply_field", "reply template uses ammount; available: amount", id="reply placeholder"),
    P("grant_action", "grants.actions 'pasword_reset' are not actions of guard/lexicon.yaml; use one of",
      id="granted action not in the lexicon"),
    P("grant_limit", "grants.limits.access_level: the rule's 'when' does not test access", id="limit fact not tested"),
    P("syntax", "not valid YAML at line 5, column 1", id="YAML syntax"),
    P("threshold_value", "thresholds.refund_auto_limit: value -150.00 is out of range for usd",
      id="negative threshold"),
])
def test_broken_policy_files_name_the_problem(fixture, message):
    path = CONF / f"policies_bad_{fixture}.yaml"
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        load_policies(path)
    assert str(info.value).startswith(path.name)
    assert "\n" not in str(info.value)


def test_missing_policy_file_says_what_to_set(tmp_path):
    with pytest.raises(ConfigError, match="SOPILOT_KNOWLEDGE_DIR"):
        load_policies(tmp_path / "policies.yaml")
