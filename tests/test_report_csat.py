"""CSAT per ticket (handbook §8): recorded on the ticket's record, low scores flagged, CSV checked whole."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from sopilot.audit import Event, open_log, recent
from sopilot.cli import main
from sopilot.core.errors import InputError
from sopilot.reports.csat import import_csv, read_csv, record_csat
from sopilot.reports.history import load_tickets
from sopilot.reports.tasks import list_tasks

AT = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)


@pytest.fixture
def ticketed(settings):
    open_log(settings).record(
        Event(kind="suggestion_made", ticket_id="T-1", created_at=AT, policy="A.1", outcome="automate",
              ticket={"message": "charged twice"}, agent="amara"),
        Event(kind="reply_sent", ticket_id="T-1", created_at=AT, policy="A.1", send_mode="as_is", agent="amara"),
        Event(kind="suggestion_made", ticket_id="T-2", created_at=AT, policy="B.1", outcome="escalate",
              ticket={"message": "cannot log in"}, agent="ben"))
    return settings


def test_a_low_score_is_attached_to_the_ticket_and_flagged_for_the_team_lead(ticketed):
    result = record_csat(ticketed, ticket_id="T-1", score=1, comment="Nobody answered my question.", at=AT)
    assert (result.recorded, result.low) == (1, 1)
    events = recent(ticketed, ticket_id="T-1", kind="csat_recorded")
    assert [(e.detail["score"], e.detail["comment"], e.policy) for e in events] == \
        [(1, "Nobody answered my question.", "A.1")]
    tasks = list_tasks(ticketed, assignee="Team Lead")
    assert [(t.kind, t.ticket_id, t.subject["comment"], t.subject["agent"]) for t in tasks] == \
        [("csat_review", "T-1", "Nobody answered my question.", "amara")]
    record = next(r for r in load_tickets(ticketed) if r.key == "T-1")
    assert (record.csat, record.csat_comment) == (1, "Nobody answered my question.")


def test_a_good_score_is_recorded_without_a_flag(ticketed):
    result = record_csat(ticketed, ticket_id="T-2", score="5")
    assert (result.recorded, result.low, result.tasks) == (1, 0, ())
    assert list_tasks(ticketed) == []


@pytest.mark.parametrize(("score", "message"), [
    pytest.param(0, "score 0 is out of range: write 1 to 5", id="zero"),
    pytest.param("4.5", "score '4.5' is not a whole number", id="fraction"),
    pytest.param("great", "score 'great' is not a whole number", id="word"),
])
def test_a_bad_score_is_refused(ticketed, score, message):
    with pytest.raises(InputError, match=re.escape(message)):
        record_csat(ticketed, ticket_id="T-1", score=score)


def test_csv_import_records_every_row_once(ticketed, tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text("ticket_id,score,comment,at\nT-1,2,Too slow,2026-11-25T09:00:00Z\nT-2,4,,2026-11-25T10:00:00Z\n",
                    encoding="utf-8")
    first = import_csv(ticketed, path)
    assert (first.recorded, first.duplicates, first.low) == (2, 0, 1)
    again = import_csv(ticketed, path)
    assert (again.recorded, again.duplicates, again.low) == (0, 2, 0)
    assert len(recent(ticketed, kind="csat_recorded")) == 2
    assert len(list_tasks(ticketed, assignee="Team Lead")) == 1


def test_a_bad_row_imports_nothing_and_names_its_line(ticketed, tmp_path, capsys):
    path = tmp_path / "survey.csv"
    path.write_text("ticket_id,score\nT-1,5\nT-2,7\n", encoding="utf-8")
    assert main(["report", "csat-import", str(path), "--json", "--database", ticketed.audit_url]) == 2
    assert f"{path} line 3: score 7 is out of range" in capsys.readouterr().err
    assert recent(ticketed, kind="csat_recorded") == []


def test_a_csv_without_the_columns_says_which_are_needed(tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text("id,rating\nT-1,5\n", encoding="utf-8")
    with pytest.raises(InputError, match=re.escape("lacks the column(s) ['ticket_id', 'score']")):
        read_csv(path)


def test_cli_import_prints_one_json_document(ticketed, tmp_path, capsys):
    path = tmp_path / "survey.csv"
    path.write_text("ticket_id,score,comment\nT-2,1,Wrong answer\n", encoding="utf-8")
    assert main(["report", "csat-import", str(path), "--json", "--database", ticketed.audit_url]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["recorded"], data["low"], data["tasks"][0]["assignee"]) == (1, 1, "Team Lead")
