"""The handbook reports on a generated history: planted patterns are found, and nothing else is.

Two histories are generated once per module into real SQLite files: one with the planted patterns
(a policy gap, an inconsistent agent, a subject without an SOP, an SOP answering a subject badly)
and a control in which each pattern stays just below its threshold. The reports use the real
packaged encoder and scikit-learn.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from sopilot.audit import Event, open_log
from sopilot.cli import main
from sopilot.core.errors import InputError
from sopilot.core.settings import Settings
from sopilot.reports import gaps as gaps_mod
from sopilot.reports import overrides as overrides_mod
from sopilot.reports.demo import write_demo
from sopilot.reports.history import tickets_from_events
from sopilot.reports.periods import parse_week, previous_week, weeks_until
from sopilot.reports.review import analyse_policies, policy_review
from sopilot.reports.tasks import list_tasks

END_WEEK = "2026-W48"


def _history(tmp_path_factory, name: str, plant: bool):
    data = tmp_path_factory.mktemp(name)
    settings = Settings.from_env({}, data_dir=data)
    planted = write_demo(settings, weeks=6, end_week=END_WEEK, seed=7, plant=plant)
    return settings, planted


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    return _history(tmp_path_factory, "planted", True)


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    return _history(tmp_path_factory, "control", False)


@pytest.fixture(scope="module")
def gap_week_report(planted):
    settings, manifest = planted
    return overrides_mod.override_report(settings, manifest.gap_week)


@pytest.fixture(scope="module")
def control_week_report(control):
    settings, manifest = control
    return overrides_mod.override_report(settings, manifest.gap_week)


@pytest.fixture(scope="module")
def gaps_planted(planted):
    settings, _ = planted
    return gaps_mod.gap_report(settings, weeks=6, until=END_WEEK)


@pytest.fixture(scope="module")
def gaps_control(control):
    settings, _ = control
    return gaps_mod.gap_report(settings, weeks=6, until=END_WEEK)


# ---- L.1 ------------------------------------------------------------------------------------------

def test_the_planted_policy_gap_is_found_with_its_task(gap_week_report, planted):
    _, manifest = planted
    gaps = gap_week_report.gaps
    assert [(g.policy, g.count) for g in gaps] == [(manifest.gap_policy, manifest.gap_count)]
    gap = gaps[0]
    assert len(gap.agents) >= 2
    assert {"gateway", "duplicate", "refunded duplicate", "limit"} & set(gap.key_phrases)
    assert gap.task is not None and gap.task.assignee == "Support Operations Manager"
    assert gap.task.subject["notify"] == "Head of Support"
    assert [n.assignee for n in gap_week_report.notifications] == ["Head of Support"]


def test_fewer_than_ten_similar_overrides_are_no_gap(gap_week_report, planted):
    _, manifest = planted
    near = [g for g in gap_week_report.groups if g.policy == manifest.near_miss_policy and g.count > 1]
    assert [g.count for g in near] == [manifest.near_miss_count]
    assert not near[0].gap


def test_the_inconsistent_agent_is_flagged_and_the_consistent_one_is_not(gap_week_report, planted):
    _, manifest = planted
    flagged = [(f.agent, f.policy) for f in gap_week_report.agents_flagged]
    assert flagged == [(manifest.inconsistent_agent, manifest.inconsistent_policy)]
    flag = gap_week_report.agents_flagged[0]
    assert flag.overrides == manifest.inconsistent_count
    assert flag.task.visibility == "private" and flag.task.assignee == "Team Lead"
    assert manifest.consistent_agent not in {f.agent for f in gap_week_report.agents_flagged}


def test_every_override_has_one_category_by_the_documented_rule(gap_week_report, planted):
    _, manifest = planted
    items = gap_week_report.items
    categories = gap_week_report.categories
    assert sum(categories.values()) == len(items)
    assert categories["Policy Gap"] == manifest.gap_count
    errors = [i for i in items if i.category == "Agent Error"]
    assert {i.agent for i in errors} == {manifest.inconsistent_agent, "george.adams"}
    assert [i.why for i in errors if i.agent == "george.adams"] == ["the text sent has placeholder_leak"]
    assert all(i.category == "Valid Exception" for i in items if i.agent == manifest.consistent_agent)


def test_other_weeks_hold_no_gap_and_no_flag(planted):
    settings, manifest = planted
    for week in manifest.weeks:
        if week == manifest.gap_week:
            continue
        report = overrides_mod.override_report(settings, week)
        assert report.gaps == () and report.agents_flagged == (), week
        assert report.categories["Policy Gap"] == 0


def test_the_control_history_raises_nothing(control_week_report):
    assert control_week_report.gaps == ()
    assert control_week_report.agents_flagged == ()
    assert control_week_report.notifications == ()
    assert control_week_report.categories["Valid Exception"] + control_week_report.categories["Agent Error"] == \
        len(control_week_report.items)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_weekly_findings_hold_for_other_histories(tmp_path, seed):
    for plant in (True, False):
        settings = Settings.from_env({}, data_dir=tmp_path / f"{seed}-{plant}")
        manifest = write_demo(settings, weeks=2, end_week=END_WEEK, seed=seed, plant=plant)
        report = overrides_mod.override_report(settings, manifest.gap_week)
        expected_gaps = [(manifest.gap_policy, manifest.gap_count)] if plant else []
        assert [(g.policy, g.count) for g in report.gaps] == expected_gaps
        assert [f.agent for f in report.agents_flagged] == ([manifest.inconsistent_agent] if plant else [])


def test_override_report_json_keeps_the_contract_shape(gap_week_report, planted):
    _, manifest = planted
    data = json.loads(json.dumps(gap_week_report.to_json()))
    assert data["week"] == manifest.gap_week
    assert data["overrides"] == len(gap_week_report.items)
    assert set(data["categories"]) == {"Policy Gap", "Agent Error", "Valid Exception"}
    assert {"policy", "count", "key_phrases", "task"} <= set(data["gaps"][0])
    assert {"agent", "reason"} <= set(data["agents_flagged"][0])
    markdown = gap_week_report.to_markdown()
    assert f"# Automation Policy Exception Report, {manifest.gap_week}" in markdown
    assert manifest.inconsistent_agent in markdown


def test_recording_raises_each_task_once_and_keeps_flags_private(planted):
    settings, manifest = planted
    first = overrides_mod.override_report(settings, manifest.gap_week, record=True)
    assert first.gaps[0].task.recorded
    before = open_log(settings).count()
    again = overrides_mod.override_report(settings, manifest.gap_week, record=True)
    assert open_log(settings).count() == before
    assert again.gaps[0].task.key == first.gaps[0].task.key
    public = list_tasks(settings)
    assert "training_review" not in {t.kind for t in public}
    private = list_tasks(settings, include_private=True)
    assert [t.subject["agent"] for t in private if t.kind == "training_review"] == [manifest.inconsistent_agent]
    assert {"policy_gap_review", "policy_gap_notification"} <= {t.kind for t in public}


def test_cli_prints_one_json_document_and_markdown(planted, capsys):
    settings, manifest = planted
    url = settings.audit_url
    assert main(["report", "overrides", "--week", manifest.gap_week, "--json", "--database", url]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["week"] == manifest.gap_week and data["gaps"][0]["policy"] == manifest.gap_policy
    assert main(["report", "policies", "--weeks", "6", "--until", END_WEEK, "--md", "--database", url]) == 0
    assert capsys.readouterr().out.startswith("# Policy review, 2026-W43..2026-W48")


def test_a_missing_database_is_refused_not_created(tmp_path, capsys):
    missing = tmp_path / "nowhere.db"
    assert main(["report", "policies", "--database", str(missing)]) == 2
    assert "no audit database there" in capsys.readouterr().err and not missing.exists()
    assert main(["report", "policies", "--weeks", "0"]) == 2
    assert "weeks must be at least 1" in capsys.readouterr().err


def test_a_malformed_week_is_refused_with_the_expected_form(capsys):
    assert main(["report", "overrides", "--week", "2026-48"]) == 2
    assert "write it as YYYY-Www" in capsys.readouterr().err
    with pytest.raises(InputError, match=re.escape("week '2026-W54' is not an ISO week")):
        parse_week("2026-W54")


# ---- L.2 ------------------------------------------------------------------------------------------

def test_the_subject_without_an_sop_becomes_an_sme_task_with_an_outline(gaps_planted, planted):
    _, manifest = planted
    found = gaps_planted.new_articles
    assert [c.count for c in found] == [manifest.kb_gap_count]
    cluster = found[0]
    assert {"vat", "tax", "tax id", "vat number", "invoices"} & set(cluster.key_phrases)
    assert cluster.task.assignee == "Subject Matter Expert"
    assert cluster.task.subject["outline"] == list(cluster.outline)
    outline = " ".join(cluster.outline).lower()
    assert "billing" in outline and "tax id" in outline
    assert not any("thank" in step.lower() for step in cluster.outline)


def test_the_badly_served_sop_is_flagged_for_the_content_team(gaps_planted, planted):
    _, manifest = planted
    reviews = gaps_planted.reviews
    assert [c.sop for c in reviews] == [manifest.kb_review_policy]
    assert gaps_mod.SOP_REVIEW_MIN < reviews[0].count <= manifest.kb_review_count
    assert reviews[0].task.assignee == "Content Team"


def test_smaller_clusters_raise_nothing(gaps_planted, gaps_control, planted):
    _, manifest = planted
    small = [c for c in gaps_planted.clusters if c.sop is None and c.count == manifest.kb_small_count]
    assert small and small[0].finding is None
    assert gaps_control.new_articles == () and gaps_control.reviews == ()
    data = json.loads(json.dumps(gaps_control.to_json()))
    assert data["new_articles"] == [] and data["sop_reviews"] == []


def test_gap_tasks_are_recorded_once(gaps_planted, planted):
    settings, _ = planted
    first = gaps_mod.record_gap_tasks(settings, gaps_planted)
    count = open_log(settings).count()
    again = gaps_mod.record_gap_tasks(settings, gaps_planted)
    assert open_log(settings).count() == count
    assert [c.task.key for c in first.clusters if c.task] == [c.task.key for c in again.clusters if c.task]
    kinds = sorted(t.kind for t in list_tasks(settings) if t.source == "L.2")
    assert kinds == ["kb_article_draft", "kb_article_review"]


# ---- §6 -------------------------------------------------------------------------------------------

def _event(kind, ticket_id, at, **fields):
    return Event(kind=kind, ticket_id=ticket_id, created_at=at, **fields)


def test_policy_review_figures_worked_by_hand(settings):
    at = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)
    escalate = {"policy": "A.1", "outcome": "escalate", "policy_version": "2023.10",
                "reasons": ["A.1 rule a1_escalate (§3 A.1, second rule)",
                            "amount $180.00 is above $150.00 (refund_auto_limit)"]}
    automate = {"policy": "A.1", "outcome": "automate", "policy_version": "2023.10",
                "reasons": ["A.1 rule a1_auto_refund (§3 A.1)", "priority Low is Low or Medium"]}
    events = [
        _event("suggestion_made", "T1", at, policy="A.1", outcome="escalate", decision=escalate),
        _event("reply_sent", "T1", at, policy="A.1", send_mode="as_is", agent="a"),
        _event("csat_recorded", "T1", at, detail={"score": 5}),
        _event("suggestion_made", "T2", at, policy="A.1", outcome="automate", decision=automate),
        _event("reply_sent", "T2", at, policy="A.1", send_mode="edited", agent="a"),
        _event("csat_recorded", "T2", at, detail={"score": 1}),
        _event("suggestion_made", "T3", at, policy="A.1", outcome="escalate", decision=escalate),
        _event("reply_overridden", "T3", at, policy="A.1", agent="b", justification="customer proved it"),
        _event("suggestion_made", "T4", at, policy="A.1", outcome="automate", decision=automate),
    ]
    review = analyse_policies(tickets_from_events(events), weeks_until("2026-W48", 1), settings)
    a1 = review.to_json()["policies"][0]
    assert (a1["policy"], a1["volume"], a1["outcomes"]) == ("A.1", 4, {"automate": 2, "escalate": 2,
                                                                        "manual_review": 0})
    assert a1["automation_rate"] == 0.5
    assert a1["escalation_causes"] == [{"rule": "a1_escalate", "thresholds": ["refund_auto_limit"], "count": 2}]
    assert (a1["resolved"], a1["acceptance_rate"], a1["edit_rate"], a1["override_rate"]) == (3, 0.333, 0.333, 0.333)
    assert a1["csat"] == {"answers": 2, "mean": 3.0, "low_share": 0.5}
    assert a1["csat_by_outcome"]["escalate"]["mean"] == 5.0 and a1["csat_by_outcome"]["automate"]["mean"] == 1.0
    assert a1["policy_versions"] == {"2023.10": 4}


def test_policy_review_on_the_demo_matches_the_audit_log(planted):
    settings, _ = planted
    review = policy_review(settings, weeks=6, until=END_WEEK)
    suggestions = {ev.ticket_id: ev for ev in open_log(settings).iter_all() if ev.kind == "suggestion_made"}
    by_policy = {p.policy: p for p in review.policies}
    for policy in ("A.1", "B.1", "C.1"):
        expected = sum(1 for ev in suggestions.values() if ev.policy == policy)
        assert by_policy[policy].volume == expected
    assert review.total.volume == len(suggestions)
    assert by_policy["B.1"].csat.answers > 0 and review.csat_by_outcome["escalate"].answers > 0


# ---- periods and the schedule -------------------------------------------------------------------

def test_the_monday_run_reports_on_the_week_that_ended():
    monday = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    assert previous_week(monday).label == "2026-W48"
    assert weeks_until("2026-W48", 2).label == "2026-W47..2026-W48"


def test_schedule_adds_a_monday_nine_o_clock_job(settings):
    apscheduler = pytest.importorskip("apscheduler.schedulers.background")
    from sopilot.reports.schedule import JOB_ID, schedule

    scheduler = apscheduler.BackgroundScheduler(timezone="UTC")
    job = schedule(scheduler, settings)
    assert job.id == JOB_ID
    fire = job.trigger.get_next_fire_time(None, dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC))
    assert (fire.weekday(), fire.hour, fire.minute) == (0, 9, 0)


# ---- the audit log's own events -----------------------------------------------------------------

def test_tickets_are_rebuilt_from_the_events_the_workspace_records(indexed_settings, tmp_path):
    import dataclasses

    from sopilot import audit
    from sopilot.reports.csat import record_csat
    from sopilot.reports.history import load_tickets
    from sopilot.suggest.pipeline import suggest

    settings = dataclasses.replace(indexed_settings, database_url=f"sqlite:///{tmp_path / 'audit.db'}")
    first = suggest({"message": "I was charged twice, $180 each time.", "sop_id": "A.1", "priority": "Low",
                     "amount": "180"}, settings)
    audit.record_suggestion(settings, first, agent="amara", ticket_id="RT-1")
    audit.record_override(settings, first, text="I have refunded the duplicate $180.", agent="amara",
                          ticket_id="RT-1", justification="Duplicate proven in the gateway logs.")
    record_csat(settings, ticket_id="RT-1", score=2, comment="Took too long.")
    second = suggest({"message": "How do I print a packing slip?"}, settings)
    audit.record_suggestion(settings, second, agent="ben", ticket_id="RT-2")
    audit.record_wrong_sop(settings, second, relevant="H.1", agent="ben", ticket_id="RT-2")
    audit.record_sent(settings, second, text=second.reply, agent="ben", ticket_id="RT-2")
    records = {r.key: r for r in load_tickets(settings)}
    one, two = records["RT-1"], records["RT-2"]
    assert (one.policy, one.outcome, one.resolution, one.agent) == ("A.1", "escalate", "overridden", "amara")
    assert one.justification == "Duplicate proven in the gateway logs." and "unauthorized_refund" in one.violations
    assert (one.matched, one.csat, one.csat_comment) == (True, 2, "Took too long.")
    assert (two.wrong_sop, two.resolution, two.final_reply) == (True, "as_is", second.reply)
    assert two.match_probability is not None
