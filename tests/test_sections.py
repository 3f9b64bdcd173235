"""Sectioning the shipped documents gives exactly the contract's SOPs, with their structure."""

from __future__ import annotations

import pytest
from sopilot.ingest.catalog import load_catalog
from sopilot.ingest.documents import load_document
from sopilot.ingest.pipeline import parse_paths
from sopilot.ingest.repair import repair
from sopilot.ingest.sections import parse_sops

from tests.conftest import KNOWLEDGE

CONTRACT_IDS = {
    "ops.licenses", "ops.mobile-feature", "ops.bulk-change", "ops.glossary",
    "A.1", "A.2", "B.1", "B.2", "C.1", "D.1", "D.2", "E.1", "E.2", "F.1", "F.2", "G.1", "G.2", "H.1", "H.2",
    "I.1", "I.2", "J.1", "J.2", "K.1", "K.2", "L.1", "L.2",
    "hb.definitions", "hb.exceptions", "hb.audit", "hb.review", "hb.overrides", "hb.feedback",
    "cs.support", "tel.billing-dispute", "tel.wrong-recharge", "tel.plan-benefits", "tel.roaming", "sop.template",
}


@pytest.fixture(scope="module")
def sops(settings_module):
    parsed = parse_paths([KNOWLEDGE], settings_module)
    assert parsed.skipped == []
    return {s.sop_id: s for s in parsed.sops}


@pytest.fixture(scope="module")
def settings_module(tmp_path_factory):
    from sopilot.core.settings import Settings

    return Settings.from_env({}, data_dir=tmp_path_factory.mktemp("sections"))


def test_shipped_documents_give_exactly_the_contract_sop_ids(sops):
    assert set(sops) == CONTRACT_IDS


@pytest.mark.parametrize(("sop_id", "title", "category"), [
    pytest.param("A.1", "Overcharge / Duplicate Charge", "Billing & Payment Issues", id="handbook part 1"),
    pytest.param("D.1", "New User Account Provisioning", "Access & Permissions Management", id="handbook part 2"),
    pytest.param("K.2", "Elevated Support Access for Partner Engineers", "Partner & Reseller Channel Support",
                 id="bold-wrapped heading in part 4"),
    pytest.param("ops.licenses", "Steps Taken to Add Additional License(s)", "Licenses",
                 id="category from the pack's metadata block"),
    pytest.param("ops.bulk-change", "Steps Taken for Bulk Data Change", "BulkChange", id="camel-case category"),
    pytest.param("tel.plan-benefits", "Plan Benefits Not Added", "Telecom Billing & Services", id="plain text SOP"),
    pytest.param("hb.definitions", "General Definitions", "General Policies", id="numbered general section"),
])
def test_titles_and_categories_come_from_the_documents(sops, sop_id, title, category):
    assert (sops[sop_id].title, sops[sop_id].category) == (title, category)


def test_each_part_of_the_handbook_keeps_its_own_version(sops):
    assert [sops[i].version for i in ("A.1", "D.1", "G.1", "J.1")] == ["2.1", "3.0", "3.0", "4.0"]
    assert sops["A.1"].effective_date == "2023-10-26"
    assert sops["ops.licenses"].version == "1.0" and sops["ops.licenses"].effective_date == "2025-09-24"


def test_every_automation_rule_is_its_own_section_with_its_action(sops):
    rules = [s for s in sops["C.1"].sections if s.kind == "automation_rules"]
    assert len(rules) == 3
    assert all("ACTION" in r.text and "SLA" in r.text for r in rules)
    assert "not** under warranty" in rules[2].text


def test_procedures_and_response_templates_are_paired(sops):
    licenses = sops["ops.licenses"]
    assert licenses.kinds == ("procedure", "response_template")
    assert licenses.text_of("procedure").startswith("1. Confirm the request details")
    assert "Ask for confirmation to proceed" in licenses.text_of("response_template")


def test_section_lines_point_at_the_source_text(sops):
    text = (KNOWLEDGE / "support-automation-handbook.md").read_text(encoding="utf-8").split("\n")
    rule = next(s for s in sops["A.1"].sections if "greater than $150.00" in s.text)
    assert "greater than $150.00" in text[rule.line_start - 1]


def test_part_titles_and_disclaimers_do_not_leak_into_policies(sops):
    for sop_id in ("C.1", "F.2", "I.2", "L.2"):
        body = "\n".join(s.text for s in sops[sop_id].sections)
        assert "Handbook - Part" not in body and "Document Version" not in body
    assert [s.kind for s in sops["hb.audit"].sections] == ["overview", "disclaimer"]


def test_the_authoring_template_is_never_answerable(sops):
    assert not sops["sop.template"].answerable
    assert all(s.answerable for i, s in sops.items() if i != "sop.template")


@pytest.mark.parametrize(("raw", "fixed"), [
    pytest.param("SOP Pack â€” RAG Source", "SOP Pack — RAG Source", id="UTF-8 read as cp1252"),
    pytest.param(r"less than or equal to \$150.00", "less than or equal to $150.00", id="escaped dollar"),
    pytest.param(r"plan is for  $\leq 2$  months", "plan is for  ≤ 2  months", id="inline math"),
    pytest.param("café — naïve", "café — naïve", id="correct text is untouched"),
])
def test_repair(raw, fixed):
    assert repair(raw) == fixed


def test_a_new_document_takes_ids_from_its_numbering(tmp_path):
    path = tmp_path / "returns.md"
    path.write_text("# Returns Policy\n\n## R.1: Sub-Category: Late Return\n\n- **Procedure:**\n"
                    "  1. Check the order date.\n\n## R.2: Exchange\n\n1. Offer an exchange.\n", encoding="utf-8")
    found = parse_sops(load_document(path), load_catalog(KNOWLEDGE / "catalog.yaml").entry(path.name))
    assert [(s.sop_id, s.title) for s in found] == [("R.1", "Late Return"), ("R.2", "Exchange")]


def test_front_matter_names_a_single_sop(tmp_path):
    path = tmp_path / "vip.md"
    path.write_text("---\nsop_id: vip.callback\ncategory: VIP\n---\n# VIP Callback\n\n## Procedure\n\n"
                    "1. Call back within one hour.\n", encoding="utf-8")
    (sop,) = parse_sops(load_document(path), load_catalog(KNOWLEDGE / "catalog.yaml").entry(path.name))
    assert (sop.sop_id, sop.category, sop.kinds) == ("vip.callback", "VIP", ("procedure",))
