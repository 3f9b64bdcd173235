"""Policy versions (handbook §6): the set in force on a ticket's day, archives, diffs, and trying a change."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from sopilot.guard import guard_ticket
from sopilot.guard.versions import (
    ARCHIVE_DIR,
    archive_current,
    diff_policies,
    document_versions,
    policies_in_force,
    policy_versions,
    resolve,
    ticket_date,
)
from sopilot.ingest.documents import discover

from sopilot.cli import main
from sopilot.core.errors import ConfigError, InputError
from sopilot.core.settings import ROOT, Settings

KNOWLEDGE = ROOT / "knowledge"
CURRENT = (KNOWLEDGE / "policies.yaml").read_text(encoding="utf-8")


def _proposal(version: str = "2026.12", effective: str = "2026-12-01", limit: str = "250.00") -> str:
    text = CURRENT.replace('policy_version: "2023.10"', f'policy_version: "{version}"')
    text = text.replace("effective_date: 2023-10-26", f"effective_date: {effective}")
    changed = text.replace('value: "150.00"', f'value: "{limit}"', 1)
    assert changed != text and 'policy_version: "2023.10"' in CURRENT
    return changed


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    """A knowledge dir whose current set (2026.12, limit $250) replaced the shipped one (archived)."""
    folder = tmp_path / "knowledge"
    (folder / ARCHIVE_DIR).mkdir(parents=True)
    (folder / ARCHIVE_DIR / "policies-2023.10.yaml").write_text(CURRENT, encoding="utf-8")
    (folder / "policies.yaml").write_text(_proposal(), encoding="utf-8")
    return folder


def test_the_shipped_policy_file_names_its_version():
    (only,) = policy_versions(KNOWLEDGE)
    assert (only.version, only.effective_date, only.current) == ("2023.10", dt.date(2023, 10, 26), True)


def test_a_ticket_is_decided_under_the_set_in_force_on_its_day(knowledge):
    ticket = {"message": "charged twice", "sop_id": "A.1", "priority": "Low", "amount": "$200"}
    november = policies_in_force(ticket_date({**ticket, "created_at": "2026-11-20T10:00:00Z"}), knowledge)
    december = policies_in_force(ticket_date({**ticket, "created_at": "2026-12-02"}), knowledge)
    assert (november.version, december.version) == ("2023.10", "2026.12")
    assert guard_ticket(ticket, november).decision.outcome == "escalate"
    assert guard_ticket(ticket, december).decision.outcome == "automate"
    assert policies_in_force(dt.date(2020, 1, 1), knowledge).version == "2023.10"


def test_a_bad_ticket_date_is_refused():
    with pytest.raises(InputError, match=re.escape("created_at='last week' is not an ISO 8601 date")):
        ticket_date({"created_at": "last week"})


def test_diff_names_the_changed_threshold_only(knowledge):
    diff = diff_policies(resolve("2023.10", knowledge), resolve("current", knowledge))
    assert [(c.kind, c.where, c.before, c.after) for c in diff.changes] == \
        [("changed", "thresholds.refund_auto_limit", "150.00 usd", "250.00 usd")]
    assert "| changed | `thresholds.refund_auto_limit` | 150.00 usd | 250.00 usd |" in diff.to_markdown()


def test_cli_diff_and_versions(knowledge, monkeypatch, capsys):
    monkeypatch.setenv("SOPILOT_KNOWLEDGE_DIR", str(knowledge))
    assert main(["policy", "diff", "2023.10", "2026.12", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["a"], data["b"], len(data["changes"])) == ("2023.10", "2026.12", 1)
    assert main(["policy", "versions", "--on", "2026-11-30", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["in_force"] == "2023.10" and [v["version"] for v in data["versions"]] == ["2023.10", "2026.12"]
    assert data["documents"] == []
    assert main(["policy", "diff", "2023.10", "1999.1"]) == 2
    assert "unknown policy version '1999.1': use one of ['2023.10', '2026.12']" in capsys.readouterr().err


def test_two_files_with_one_version_are_refused(knowledge):
    (knowledge / ARCHIVE_DIR / "copy.yaml").write_text(_proposal(effective="2026-06-01"), encoding="utf-8")
    with pytest.raises(ConfigError, match="have the same version '2026.12'"):
        policy_versions(knowledge)


def test_a_file_without_a_version_is_refused(tmp_path):
    (tmp_path / "policies.yaml").write_text(CURRENT.replace('policy_version: "2023.10"\n', ""), encoding="utf-8")
    with pytest.raises(ConfigError, match="has no 'policy_version'"):
        policy_versions(tmp_path)


def test_archive_keeps_the_current_set_once(knowledge):
    path = archive_current(knowledge)
    assert path.name == "policies-2026.12.yaml" and path.read_text(encoding="utf-8") == _proposal()
    assert archive_current(knowledge) == path
    (knowledge / "policies.yaml").write_text(_proposal(limit="300.00"), encoding="utf-8")
    with pytest.raises(ConfigError, match="already holds a different policy set '2026.12'"):
        archive_current(knowledge)


def test_ingest_never_reads_the_archive(knowledge):
    (knowledge / "faq.md").write_text("# FAQ\n\nSome text.\n", encoding="utf-8")
    assert [p.name for p in discover([knowledge])] == ["faq.md"]
    assert not any(ARCHIVE_DIR in str(p) for p in discover([KNOWLEDGE]))


def test_a_proposed_change_is_tried_on_the_cases_and_the_recorded_tickets(tmp_path):
    from sopilot.reports.demo import write_demo
    from sopilot.reports.trial import try_change

    settings = Settings.from_env({}, data_dir=tmp_path / "data")
    write_demo(settings, weeks=2, end_week="2026-W48", seed=3)
    proposal = tmp_path / "proposal.yaml"
    proposal.write_text(_proposal(), encoding="utf-8")
    trial = try_change(settings, proposal, weeks=2, until="2026-W48", cases=ROOT / "eval" / "guard_cases.jsonl")
    assert [c.where for c in trial.diff.changes] == ["thresholds.refund_auto_limit"]
    assert trial.changed_cases and {c.before["policy"] for c in trial.changed_cases} == {"A.1"}
    assert all((c.before["outcome"], c.after["outcome"]) == ("escalate", "automate") for c in trial.changed_cases)
    assert trial.passed_after < trial.passed_before
    assert {(t.policy, t.before, t.after) for t in trial.transitions} == {("A.1", "escalate", "automate")}
    (move,) = trial.transitions
    assert move.count == trial.changed_tickets > 0 and move.overridden_before > 0
    assert trial.replayed > 100


def test_documents_state_their_versions_and_effective_dates(tmp_path):
    (tmp_path / "handbook.md").write_text("# Handbook\n\n**Document Version:** 2.1\n\n**Effective Date:** October 26, "
                                          "2023\n\ntext\n\n- **Version**: `1.0`\n", encoding="utf-8")
    assert [d.to_json() for d in document_versions(tmp_path)] == [
        {"file": "handbook.md", "line": 3, "version": "2.1", "effective_date": "2023-10-26"},
        {"file": "handbook.md", "line": 9, "version": "1.0", "effective_date": None}]
    shipped = {(d.file, d.version) for d in document_versions(KNOWLEDGE)}
    assert ("support-automation-handbook.md", "2.1") in shipped


def test_a_suggestion_is_decided_under_the_set_in_force_on_the_tickets_day(indexed_settings, knowledge, tmp_path):
    import dataclasses

    from sopilot.suggest.pipeline import suggest

    settings = dataclasses.replace(indexed_settings, knowledge_dir=knowledge,
                                   database_url=f"sqlite:///{tmp_path / 'audit.db'}")
    ticket = {"message": "I was charged twice, $200 each time.", "sop_id": "A.1", "priority": "Low", "amount": "200"}
    before = suggest({**ticket, "created_at": "2026-11-20T09:00:00Z"}, settings)
    after = suggest({**ticket, "created_at": "2026-12-02T09:00:00Z"}, settings)
    assert (before.guard.decision.outcome, after.guard.decision.outcome) == ("escalate", "automate")
