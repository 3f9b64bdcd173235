"""The policy file's thresholds against the handbook text: an edited handbook is caught, naming both places."""

from __future__ import annotations

from pathlib import Path

import pytest
from sopilot.guard.crosscheck import check_thresholds
from sopilot.guard.policy import load_policies

from sopilot.core.settings import ROOT

POLICIES = load_policies(ROOT / "knowledge" / "policies.yaml")
HANDBOOK = ROOT / "knowledge" / "support-automation-handbook.md"
NAME = "support-automation-handbook.md"


@pytest.fixture
def handbook() -> str:
    return HANDBOOK.read_text(encoding="utf-8")


def test_shipped_handbook_agrees(handbook):
    assert check_thresholds(POLICIES, {NAME: handbook}) == []


def test_raw_markdown_escapes_are_read_as_the_author_meant(handbook):
    raw = handbook.replace("$150.00", r"\$150.00").replace("≤ 2  months", r"$\leq 2$  months")
    assert check_thresholds(POLICIES, {f"knowledge/{NAME}": raw}) == []


def test_handbook_edited_to_200_dollars_is_caught(handbook, tmp_path: Path):
    edited = tmp_path / NAME
    edited.write_text(handbook.replace("$150.00", "$200.00"), encoding="utf-8")
    errors = check_thresholds(POLICIES, {edited.name: edited.read_text(encoding="utf-8")})
    assert len(errors) == 1
    assert "policies.yaml: thresholds.refund_auto_limit = 150.00" in errors[0]
    assert f"'$150.00' in {NAME} §A.1" in errors[0] and "it states $200.00" in errors[0]


def test_one_of_two_occurrences_edited_is_caught(handbook):
    edited = handbook.replace("greater than $150.00", "greater than $200.00")
    (error,) = check_thresholds(POLICIES, {NAME: edited})
    assert error.startswith(f"{NAME} §A.1 states $200.00") and "thresholds.refund_auto_limit" in error


@pytest.mark.parametrize(("old", "new", "key"), [
    pytest.param("14-day cooling-off period", "30-day cooling-off period", "cooling_off_days", id="cooling-off"),
    pytest.param("< 99.9%", "< 99.5%", "uptime_credit_below_pct", id="uptime"),
    pytest.param("**10%**", "**15%**", "credit_pct", id="credit"),
    pytest.param("> 24 month tenure", "> 36 month tenure", "tenure_auto_months", id="tenure"),
    pytest.param("max 4 hours", "max 8 hours", "partner_access_max_hours", id="partner access"),
])
def test_other_thresholds(handbook, old, new, key):
    assert old in handbook
    (error,) = check_thresholds(POLICIES, {NAME: handbook.replace(old, new)})
    assert f"thresholds.{key}" in error and NAME in error


def test_missing_section_is_reported(handbook):
    errors = check_thresholds(POLICIES, {NAME: handbook.replace("##### A.1: Sub-Category", "##### Sub-Category")})
    assert any("has no section A.1" in e and "thresholds.refund_auto_limit" in e for e in errors)


def test_documents_the_policy_file_does_not_cite_are_ignored():
    assert check_thresholds(POLICIES, {"telecom-sops.txt": "Refund $999 at will"}) == []
