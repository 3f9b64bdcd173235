"""Tickets as the reports see them, rebuilt from the audit log's events.

The audit log holds one row per event (suggestion, sent reply, override, wrong-SOP mark, CSAT
score). A report needs one record per ticket: the automated decision (the latest suggestion's),
what the agent did with it, the final text sent, the justification of an override, the guard's
verdict on that exact text, whether the SOP was marked wrong, the match probability, and the
latest CSAT score. The decision is the latest recorded (a suggestion, or a decision recomputed
after a fact changed). Events are grouped by `ticket_id`, else by suggestion id, else each
suggestion stands alone. A ticket is *resolved* once a reply was sent or an override recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from sopilot.reports.periods import Period

Resolution = Literal["as_is", "edited", "overridden"]

DECISION_KINDS = frozenset({"suggestion_made", "decision_changed"})
"""Events that carry the ticket's current automated decision (the latest one counts)."""
WRONG_SOP_KINDS = frozenset({"wrong_sop", "sop_marked_wrong", "wrong_sop_marked"})
"""Event kinds by which agents mark the suggested SOP as wrong (the audit log's name for it may vary)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TicketRecord:
    """One ticket's history in the audit log."""

    key: str
    """The ticket id, or the suggestion id / event id when the ticket had none."""
    ticket_id: str | None
    at: dt.datetime
    """When the first suggestion was made (the ticket's time for the reports)."""
    message: str
    ticket: Mapping[str, Any]
    policy: str | None
    outcome: str | None
    decision: Mapping[str, Any]
    sop_ids: tuple[str, ...]
    matched: bool
    """Whether retrieval found an SOP the suggestion could rest on."""
    match_probability: float | None
    policy_version: str | None
    resolution: Resolution | None
    """What the agent did: sent the suggestion as is, edited it, or overrode the decision (None: open)."""
    agent: str | None
    """Who resolved the ticket (or, while it is open, who asked for the suggestion)."""
    final_reply: str | None
    justification: str | None
    verdict: str | None
    """The guard's verdict on the exact text sent ("pass", "blocked"), when recorded."""
    violations: tuple[str, ...]
    wrong_sop: bool
    csat: int | None
    csat_comment: str | None

    @property
    def resolved(self) -> bool:
        """A reply went out (as is, edited or overriding the decision)."""
        return self.resolution is not None

    @property
    def overridden(self) -> bool:
        """An agent overrode the automated decision."""
        return self.resolution == "overridden"


def _get(mapping: Mapping[str, Any] | None, *path: str) -> Any:
    value: Any = mapping or {}
    for name in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(name)
    return value


def _probability(ev) -> float | None:
    for value in (_get(ev.detail, "match_probability"), _get(ev.detail, "retrieval", "match_probability"),
                  _get(ev.decision, "match_probability")):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _matched(ev) -> bool:
    for value in (_get(ev.detail, "matched"), _get(ev.detail, "retrieval", "matched")):
        if isinstance(value, bool):
            return value
    return ev.policy is not None


def _group_key(ev) -> str:
    if ev.ticket_id:
        return str(ev.ticket_id)
    suggestion = getattr(ev, "suggestion_id", None) or _get(ev.detail, "suggestion_id")
    return f"suggestion-{suggestion}" if suggestion else f"event-{ev.id}"


def tickets_from_events(events: Iterable[Any]) -> list[TicketRecord]:
    """One record per ticket, in the order of their first suggestion.

    Events that belong to no suggestion (Emergency Stops, report tasks) are skipped; a sent reply,
    override, mark or score whose ticket was never suggested is skipped too, as the reports are about
    automated decisions.
    """
    groups: dict[str, list[Any]] = {}
    for ev in events:
        if ev.kind in ("emergency_stop_changed", "ops_task_created"):
            continue
        groups.setdefault(_group_key(ev), []).append(ev)
    records = []
    for key, evs in groups.items():
        suggestions = [e for e in evs if e.kind == "suggestion_made"]
        if not suggestions:
            continue
        first = suggestions[0]
        last = [e for e in evs if e.kind in DECISION_KINDS][-1]
        record = {"resolution": None, "agent": last.agent, "final_reply": None, "justification": None,
                  "verdict": None, "violations": (), "wrong_sop": False, "csat": None, "csat_comment": None}
        for ev in evs:
            if ev.kind == "reply_sent":
                record.update(resolution="edited" if ev.send_mode == "edited" else "as_is", agent=ev.agent,
                              final_reply=ev.reply, verdict=ev.verdict, violations=tuple(ev.violations),
                              justification=None)
            elif ev.kind == "reply_overridden":
                record.update(resolution="overridden", agent=ev.agent, final_reply=ev.reply, verdict=ev.verdict,
                              violations=tuple(ev.violations), justification=ev.justification)
            elif ev.kind in WRONG_SOP_KINDS or _get(ev.detail, "wrong_sop") is True:
                record["wrong_sop"] = True
            elif ev.kind == "csat_recorded":
                record.update(csat=_get(ev.detail, "score"), csat_comment=_get(ev.detail, "comment"))
        created = first.created_at or dt.datetime.now(dt.UTC)
        records.append(TicketRecord(
            key=key, ticket_id=first.ticket_id, at=created if created.tzinfo else created.replace(tzinfo=dt.UTC),
            message=str((first.ticket or {}).get("message") or ""), ticket=dict(first.ticket or {}),
            policy=last.policy, outcome=last.outcome, decision=dict(last.decision or {}), sop_ids=tuple(last.sop_ids),
            matched=_matched(last), match_probability=_probability(last),
            policy_version=_get(last.decision, "policy_version") or _get(last.detail, "policy_version"),
            **record))
    return records


LATE_EVENTS = dt.timedelta(days=30)
"""How long after a period's end its tickets' later events (a reply, a CSAT answer) are still read."""


def _within(events: Iterable[Any], start: dt.datetime, end: dt.datetime) -> Iterable[Any]:
    for ev in events:
        created = ev.created_at
        if created is not None and created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        if created is None or start <= created < end:
            yield ev


def load_tickets(settings, period: Period | None = None) -> list[TicketRecord]:
    """The tickets of the configured audit log whose first suggestion falls in `period` (None: all).

    Events are streamed, and only those from the period's start to `LATE_EVENTS` after its end are
    kept, so memory follows the period, not the whole log.
    """
    from sopilot import audit

    events: Iterable[Any] = audit.open_log(settings).iter_all()
    if period is not None:
        events = _within(events, period.start, period.end + LATE_EVENTS)
    records = tickets_from_events(events)
    return [r for r in records if period is None or r.at in period]
