"""Handbook §8, the feedback loop: CSAT scores per ticket, low-score feedback flagged for the Team Lead.

A score (1 to 5) arrives from the service (`record_csat`, one ticket) or from a survey tool's CSV
export (`import_csv`). It becomes a `csat_recorded` event on the ticket's record in the audit log,
so the ticket's history shows it; a score at or below `csat_low_score` (default 2) also raises a
`csat_review` task for the Team Lead carrying the customer's words. A CSV file is checked whole
before anything is written: one bad row and nothing is imported, and the message names the row,
the column and what to write instead. A score already recorded (same ticket, score, comment and
time, or a retried post without a time) is not recorded again.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from pathlib import Path
from typing import Any

from sopilot.core.errors import InputError
from sopilot.reports import tasks as T

MIN_SCORE, MAX_SCORE = 1, 5
MAX_COMMENT = 5000
"""Longest comment kept (characters); survey free text beyond it is cut, and the cut is recorded."""
MAX_ROWS = 200_000
REQUIRED_COLUMNS = ("ticket_id", "score")
OPTIONAL_COLUMNS = ("comment", "at", "agent")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CsatScore:
    """One survey answer."""

    ticket_id: str
    score: int
    comment: str | None = None
    at: dt.datetime | None = None
    """When the customer answered (None: now)."""
    source: str = "api"

    def to_json(self) -> dict[str, Any]:
        """Every field, the time in ISO 8601."""
        return {**dataclasses.asdict(self), "at": self.at.isoformat() if self.at else None}


@dataclasses.dataclass(frozen=True, kw_only=True)
class CsatResult:
    """What recording scores did."""

    recorded: int
    duplicates: int
    low: int
    tasks: tuple[T.Task, ...]

    def to_json(self) -> dict[str, Any]:
        """Counts and the Team Lead's review tasks."""
        return {"recorded": self.recorded, "duplicates": self.duplicates, "low": self.low,
                "tasks": [t.to_json() for t in self.tasks]}


def validate(ticket_id: Any, score: Any, *, comment: Any = None, at: Any = None, where: str = "CSAT") -> CsatScore:
    """A checked score.

    Raises:
        InputError: the ticket id is empty, the score is not a whole number from 1 to 5, or the time is not ISO 8601.
    """
    ticket = str(ticket_id or "").strip()
    if not ticket:
        raise InputError(f"{where}: ticket_id is empty: give the id of the ticket the survey was about")
    try:
        number = float(str(score).strip())
        if not number.is_integer():
            raise ValueError(score)
        value = int(number)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: score {score!r} is not a whole number: write {MIN_SCORE} to {MAX_SCORE}") from None
    if not MIN_SCORE <= value <= MAX_SCORE:
        raise InputError(f"{where}: score {value} is out of range: write {MIN_SCORE} to {MAX_SCORE}")
    moment = None
    if isinstance(at, dt.datetime):
        moment = at
    elif at not in (None, ""):
        try:
            moment = dt.datetime.fromisoformat(str(at).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"{where}: at {at!r} is not an ISO 8601 time: write it as 2026-11-23T10:00:00Z") from None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    text = None if comment in (None, "") else str(comment).strip()[:MAX_COMMENT] or None
    return CsatScore(ticket_id=ticket, score=value, comment=text, at=moment)


def csat_events(score: CsatScore, *, low_score: int, policy: str | None = None, agent: str | None = None):
    """The audit event of one score, and the Team Lead's task when it is low."""
    from sopilot import audit

    event = audit.Event(kind="csat_recorded", ticket_id=score.ticket_id, policy=policy, created_at=score.at,
                        detail={"score": score.score, "comment": score.comment, "source": score.source,
                                "resolving_agent": agent, "answered_at": score.at.isoformat() if score.at else None})
    task = None
    if score.score <= low_score:
        task = T.Task(key=T.task_key("§8", score.ticket_id, score.score, score.comment or "",
                                     score.at.isoformat() if score.at else ""),
                      kind="csat_review", assignee=T.TEAM_LEAD, source="§8", policy=policy, ticket_id=score.ticket_id,
                      title=f"Low CSAT ({score.score}/5) on ticket {score.ticket_id}",
                      subject={"score": score.score, "comment": score.comment, "agent": agent})
    return event, task


def _ticket_context(settings, ticket_ids: set[str]) -> dict[str, tuple[str | None, str | None]]:
    from sopilot.reports.history import load_tickets

    return {r.key: (r.policy, r.agent) for r in load_tickets(settings) if r.key in ticket_ids}


def record_scores(settings, scores: list[CsatScore]) -> CsatResult:
    """Record checked scores (one transaction), skipping those already recorded; flag the low ones."""
    from sopilot import audit

    log = audit.open_log(settings)
    seen = {(ev.ticket_id, ev.detail.get("score"), ev.detail.get("comment"), ev.detail.get("answered_at"))
            for ev in log.iter_all() if ev.kind == "csat_recorded"}
    context = _ticket_context(settings, {s.ticket_id for s in scores})
    events, tasks, duplicates = [], [], 0
    for score in scores:
        identity = (score.ticket_id, score.score, score.comment, score.at.isoformat() if score.at else None)
        if identity in seen:
            duplicates += 1
            continue
        seen.add(identity)
        policy, agent = context.get(score.ticket_id, (None, None))
        event, task = csat_events(score, low_score=settings.csat_low_score, policy=policy, agent=agent)
        events.append(event)
        if task:
            tasks.append(task)
    if events:
        log.record(*events)
    recorded_tasks = T.record_tasks(settings, tasks)
    return CsatResult(recorded=len(events), duplicates=duplicates, low=len(tasks), tasks=tuple(recorded_tasks))


def record_csat(settings, *, ticket_id: str, score: int, comment: str | None = None,
                at: dt.datetime | str | None = None) -> CsatResult:
    """Record one CSAT answer (the service's `POST` of a survey result); a low score is flagged for the Team Lead.

    Raises:
        InputError: the ticket id, score or time is invalid (the message says what to send).
    """
    return record_scores(settings, [validate(ticket_id, score, comment=comment, at=at)])


def read_csv(path: str | Path, *, text: str | None = None) -> list[CsatScore]:
    """Every row of a CSAT CSV (`ticket_id,score[,comment][,at][,agent]`), checked before any is recorded.

    Raises:
        InputError: unreadable file, missing columns, or a bad row (named by its line).
    """
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read CSAT file {str(path)!r}: {exc}. Give a UTF-8 CSV with a header row "
                             "ticket_id,score,comment,at") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(f"CSAT file {str(path)!r} lacks the column(s) {missing}: the header row must name "
                         f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)}); it has {header}")
    scores: list[CsatScore] = []
    for row in reader:
        if len(scores) >= MAX_ROWS:
            raise InputError(f"CSAT file {str(path)!r} has more than {MAX_ROWS} rows: split it and import each part")
        row = {(k or "").strip(): v for k, v in row.items()}
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        where = f"{path} line {reader.line_num}"
        scores.append(dataclasses.replace(validate(row.get("ticket_id"), row.get("score"), comment=row.get("comment"),
                                                   at=row.get("at"), where=where), source="csv"))
    return scores


def import_csv(settings, path: str | Path) -> CsatResult:
    """`sopilot report csat-import FILE.csv`: check every row, then record them all (or none)."""
    return record_scores(settings, read_csv(path))
