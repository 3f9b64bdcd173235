"""The service's operations, apart from HTTP: suggest, feedback, guard, retrieve, stops, policies, audit.

Each takes the caller's `Identity` and records audit events that name it. Suggestions are stored
under their `suggestion_id` (`sopilot.service.store`), so feedback can be checked against the
decision it answers: the guard re-checks the exact text an agent sent, against the policy the
suggestion was decided under, and that verdict is what the audit log keeps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Literal, cast

from sopilot import audit
from sopilot.core.errors import InputError, NotFoundError, PermissionDenied
from sopilot.core.settings import Settings
from sopilot.identity import Identity, allowed
from sopilot.service.store import ServiceStore, StoredSuggestion, open_store

FeedbackAction = Literal["sent", "edited", "overridden", "wrong_sop"]
FEEDBACK_ACTIONS: tuple[str, ...] = ("sent", "edited", "overridden", "wrong_sop")


_DOING = {"read": "read policies, stops or checks", "suggest": "ask for suggestions", "send": "record a sent reply",
          "override": "override a decision", "stop": "stop or restart a policy", "audit": "read the audit log",
          "manage_keys": "manage API keys"}


def require(identity: Identity, action: str) -> None:
    """Raise `PermissionDenied` (403) unless the identity's role may take `action`."""
    if not allowed(identity.role, action):
        allowed_roles = [r for r in ("agent", "senior", "lead", "admin") if allowed(r, action)]
        raise PermissionDenied(f"{identity.name!r} ({identity.role}) may not {_DOING.get(action, action)} "
                               f"(handbook §7): only {', '.join(allowed_roles)} may")


def _codes(decision: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(v.get("code", "")) for v in decision.get("violations", []) if isinstance(v, Mapping))


def _suggestion_event(document: Mapping[str, Any], ticket: Mapping[str, Any], *, agent: str, suggestion_id: str,
                      ticket_id: str | None) -> audit.Event:
    decision = document.get("guard") or {}
    draft = document.get("draft") or {}
    retrieval = document.get("retrieval") or {}
    sop_ids = tuple(dict.fromkeys(h.get("sop_id") for h in retrieval.get("hits", []) if h.get("sop_id")))
    detail: dict[str, Any] = {"suggestion_id": suggestion_id}
    if draft.get("fallback_reason"):
        detail["fallback_reason"] = draft["fallback_reason"]
    return audit.Event(kind="suggestion_made", ticket_id=ticket_id, ticket=ticket,
                       sop_ids=sop_ids or tuple(filter(None, [retrieval.get("sop_id")])),
                       policy=decision.get("policy"), outcome=decision.get("outcome"), decision=decision,
                       verdict=decision.get("verdict"), violations=_codes(decision), producer=draft.get("producer"),
                       model=draft.get("model"), prompt_version=document.get("prompt_version"),
                       latency_ms=document.get("latency_ms"), agent=agent, reply=document.get("reply"),
                       detail=detail)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Feedback:
    """One recorded feedback event, with the guard's verdict on its exact text."""

    suggestion_id: str
    action: str
    event: str
    agent: str
    ticket_id: str | None
    policy: str | None
    text: str | None
    verdict: str | None
    violations: tuple[Mapping[str, Any], ...]
    justification: str | None
    sop_id: str | None
    audit_id: int | None
    at: str | None

    def to_json(self) -> dict[str, Any]:
        """The `POST /v1/suggestions/{id}/feedback` answer."""
        data = dataclasses.asdict(self)
        data["violations"] = [dict(v) for v in self.violations]
        return data


class Copilot:
    """The operations of one service process, over one settings object."""

    def __init__(self, settings: Settings, *, store: ServiceStore | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings)
        # Past the cores, more pipelines at once only share them worse: a burst waits its turn instead.
        self._turns = threading.BoundedSemaphore(max(1, settings.service_concurrency))
        # SQLite lets one writer in at a time and its busy wait is unfair: under a burst some writers starved
        # for the whole busy timeout (30 s). Writes of this process therefore take turns here first.
        self._writes = threading.Lock() if settings.audit_url.startswith("sqlite") else contextlib.nullcontext()

    # ---- suggestions ---------------------------------------------------------------------------

    def suggest(self, ticket: Mapping[str, Any], identity: Identity, *, ticket_id: str | None = None
                ) -> dict[str, Any]:
        """The `suggest --json` document plus `suggestion_id`, stored and recorded under the caller's name."""
        require(identity, "suggest")
        from sopilot.suggest.pipeline import suggest

        with self._turns:
            suggestion = suggest(ticket, self.settings)
        return self._keep(suggestion, ticket, identity=identity, ticket_id=ticket_id)

    def _keep(self, suggestion, ticket: Mapping[str, Any], *, identity: Identity, ticket_id: str | None
              ) -> dict[str, Any]:
        """Store the suggestion and record it as the workspace does (`audit.record_suggestion`).

        `suggestion_made` carries the guard's verdict on the reply actually shown; when the guard
        replaced the draft, `reply_blocked` carries the draft and its blocked verdict.
        """
        suggestion_id = self.store.new_id()
        ticket_id = ticket_id or _ticket_id(ticket)
        document = {**suggestion.to_json(), "suggestion_id": suggestion_id, "ticket_id": ticket_id}
        with self._writes:
            self.store.put(suggestion_id=suggestion_id, agent=identity.name, ticket_id=ticket_id, ticket=ticket,
                           document=document)
            audit.record_suggestion(self.settings, suggestion, agent=identity.name, ticket_id=ticket_id,
                                    detail={"suggestion_id": suggestion_id})
        return document

    def stream(self, ticket: Mapping[str, Any], identity: Identity, *, ticket_id: str | None = None
               ) -> Iterator[tuple[str, Any]]:
        """(event, data) pairs for server-sent events: `reply` pieces of the guarded reply, then `suggestion`.

        The draft is produced and checked in full before the first piece is sent, so no text the
        guard has not passed ever leaves the service; the pieces are the passed reply, word by word.
        """
        document = self.suggest(ticket, identity, ticket_id=ticket_id)
        yield "meta", {"suggestion_id": document["suggestion_id"], "policy": document["guard"].get("policy"),
                       "outcome": document["guard"].get("outcome"), "verdict": document["guard"].get("verdict")}
        words = str(document.get("reply", "")).split(" ")
        for start in range(0, len(words), 8):
            piece = " ".join(words[start:start + 8])
            yield "reply", piece + (" " if start + 8 < len(words) else "")
        yield "suggestion", document

    # ---- feedback ------------------------------------------------------------------------------

    def feedback(self, suggestion_id: str, identity: Identity, *, action: str, text: str | None = None,
                 justification: str | None = None, sop_id: str | None = None) -> Feedback:
        """Record what became of a suggestion (docs/interface.md §7), with the guard's verdict on the exact text."""
        if action not in FEEDBACK_ACTIONS:
            raise InputError(f"unknown feedback action {action!r}: use one of {list(FEEDBACK_ACTIONS)}")
        require(identity, "override" if action == "overridden" else "send")
        stored = self.store.get(suggestion_id)
        document = stored.document
        decision = document.get("guard") or {}
        reply = str(document.get("reply", ""))
        if action == "edited" and not (text or "").strip():
            raise InputError('an "edited" feedback carries the final "text" the agent sent')
        if action == "overridden" and not (justification or "").strip():
            raise InputError('an "overridden" feedback needs a "justification" (handbook §7): say why')
        base = _suggestion_event(document, stored.ticket, agent=identity.name, suggestion_id=suggestion_id,
                                 ticket_id=stored.ticket_id)
        if action == "wrong_sop":
            kind: audit.EventKind = "wrong_sop" if "wrong_sop" in audit.KINDS else "suggestion_made"
            event = dataclasses.replace(base, kind=kind, reply=None, verdict=None, violations=(),
                                        detail={**base.detail, "feedback": "wrong_sop", "right_sop_id": sop_id,
                                                "justification": justification})
            with self._writes:
                recorded = audit.record(self.settings, event)[0]
            return self._answer(recorded, suggestion_id, action, identity, stored, None, (), justification, sop_id)
        final = text if text is not None and text.strip() else reply
        checked = self._check(stored, decision, final)
        verdict, violations = checked["verdict"], tuple(checked.get("violations", []))
        codes = tuple(str(v.get("code", "")) for v in violations)
        detail = {**base.detail, "violation_messages": [v.get("message") for v in violations]}
        if action == "overridden":
            if justification is None:  # checked above: an override always carries one
                raise InputError('an "overridden" feedback needs a "justification" (handbook §7): say why')
            event = dataclasses.replace(base, kind="reply_overridden", reply=final, verdict=verdict,
                                        violations=codes, justification=justification.strip(), detail=detail)
        else:
            mode: audit.SendMode = "as_is" if final.strip() == reply.strip() else "edited"
            event = dataclasses.replace(base, kind="reply_sent", reply=final, verdict=verdict, violations=codes,
                                        send_mode=mode, detail={**detail, "feedback": action})
        with self._writes:
            recorded = audit.record(self.settings, event)[0]
        return self._answer(recorded, suggestion_id, action, identity, stored, final, violations,
                            justification, sop_id)

    def feedback_for_ticket(self, ticket_id: str, identity: Identity, *, text: str) -> Feedback | None:
        """What an agent sent on a helpdesk ticket, as feedback on its latest suggestion (None: none)."""
        stored = self.store.latest_for_ticket(ticket_id)
        if stored is None:
            return None
        same = text.strip() == str(stored.document.get("reply", "")).strip()
        return self.feedback(stored.suggestion_id, identity, action="sent" if same else "edited", text=text)

    def _check(self, stored: StoredSuggestion, decision: Mapping[str, Any], text: str) -> dict[str, Any]:
        from sopilot.guard.facts import parse_ticket
        from sopilot.guard.result import guard_ticket

        policy = decision.get("policy")
        ticket = {**stored.ticket, "sop_id": policy} if policy else dict(stored.ticket)
        result = guard_ticket(parse_ticket(ticket), self._policies_for(ticket), reply=text,
                              classify=lambda _message: None, stopped=self.settings.stopped)
        return result.to_json()

    def _policies_for(self, ticket: Mapping[str, Any]):
        """The policy set in force on the ticket's day (its `created_at`; today without one), as the pipeline uses."""
        from sopilot.guard.versions import policies_in_force, ticket_date

        return policies_in_force(ticket_date(ticket), self.settings.knowledge_dir)

    @staticmethod
    def _answer(recorded, suggestion_id, action, identity, stored, text, violations, justification, sop_id
                ) -> Feedback:
        return Feedback(suggestion_id=suggestion_id, action=action, event=recorded.kind, agent=identity.name,
                        ticket_id=stored.ticket_id, policy=recorded.policy, text=text, verdict=recorded.verdict,
                        violations=tuple(violations), justification=justification, sop_id=sop_id,
                        audit_id=recorded.id, at=recorded.created_at.isoformat() if recorded.created_at else None)

    # ---- customer satisfaction -----------------------------------------------------------------

    def csat(self, ticket_id: str, score: int, identity: Identity, *, comment: str | None = None,
             at: str | None = None) -> dict[str, Any]:
        """Record one CSAT answer (handbook §8) through `sopilot.reports.csat.record_csat`."""
        require(identity, "send")
        from sopilot.reports.csat import record_csat

        with self._writes:
            return record_csat(self.settings, ticket_id=ticket_id, score=score, comment=comment, at=at).to_json()

    # ---- guard and retrieval -------------------------------------------------------------------

    def guard(self, ticket: Mapping[str, Any], reply: str | None, identity: Identity) -> dict[str, Any]:
        """The docs/interface.md §6 decision, as `sopilot guard --json` answers it."""
        require(identity, "read")
        from sopilot.eval.guard import parse_case
        from sopilot.guard.result import guard_ticket
        from sopilot.suggest import resources

        parsed, _, _ = parse_case({"ticket": dict(ticket)}, "ticket")
        result = guard_ticket(parsed, self._policies_for(ticket), reply=reply,
                              classify=resources.classifier(self.settings), stopped=self.settings.stopped)
        return result.to_json()

    def retrieve(self, query: str, k: int, identity: Identity) -> dict[str, Any]:
        """The docs/interface.md §3 document, as `sopilot retrieve --json` answers it."""
        require(identity, "read")
        if not query.strip():
            raise InputError('"query" is empty: give the ticket text or a few words to search for')
        from sopilot.suggest import resources

        return resources.retriever(self.settings).retrieve(query, k=k).to_json()

    # ---- policies and Emergency Stop -------------------------------------------------------------

    def policies(self, identity: Identity) -> dict[str, Any]:
        """Every policy with its rules (outcome, team, SLA) and whether it is stopped."""
        require(identity, "read")
        from sopilot.suggest import resources

        loaded = resources.policies(self.settings)
        stopped = self.settings.stopped
        return {"version": loaded.version, "policies": [
            {"id": p.id, "title": p.title, "cite": p.cite, "stopped": p.id in stopped, "facts": sorted(p.facts),
             "rules": [{"id": r.id, "outcome": r.outcome, "escalate_to": r.escalate_to, "sla": r.sla,
                        "approval_required": r.approval_required, "cite": r.cite} for r in p.rules]}
            for p in loaded.policies.values()]}

    def stops(self, identity: Identity) -> dict[str, Any]:
        """`{"stopped": {policy: {"reason", "by", "at"}}}`: who stopped each policy, why and when."""
        require(identity, "read")
        stopped = self.settings.stopped
        latest: dict[str, audit.Event] = {}
        for event in audit.recent(self.settings, limit=1000, kind="emergency_stop_changed"):
            if event.policy in stopped and event.policy not in latest:
                latest[event.policy] = event
        answer = {}
        for policy in sorted(stopped):
            last = latest.get(policy)
            if policy in self.settings.env_stopped:
                answer[policy] = {"reason": "stopped for this deployment by SOPILOT_STOPPED_POLICIES",
                                  "by": "configuration", "at": None}
            else:
                answer[policy] = {"reason": last.justification if last else None,
                                  "by": last.agent if last else None,
                                  "at": last.created_at.isoformat() if last and last.created_at else None}
        return {"stopped": answer}

    def set_stop(self, policy: str, stopped: bool, reason: str | None, identity: Identity) -> dict[str, Any]:
        """Switch the Emergency Stop of one policy (leads and admins), recorded with who and why."""
        require(identity, "stop")
        from sopilot.core.stops import set_stopped
        from sopilot.suggest import resources

        if resources.policies(self.settings).get(policy) is None:
            raise NotFoundError(f"no policy {policy[:60]!r}: GET /v1/policies lists them")
        if reason is None or not reason.strip():
            raise InputError('an Emergency Stop switch needs a "reason" (handbook §7): say why')
        if not stopped and policy in self.settings.env_stopped:
            raise InputError(f"{policy} is stopped by SOPILOT_STOPPED_POLICIES: lift it there and restart")
        set_stopped(self.settings.data_dir, policy, stopped)
        with self._writes:
            audit.record_emergency_stop(self.settings, policy=policy, stopped=stopped, agent=identity.name,
                                        justification=reason.strip())
        return {"policy": policy, "stopped": policy in self.settings.stopped, **self.stops(identity)}

    # ---- audit ---------------------------------------------------------------------------------

    def audit_export(self, identity: Identity, *, fmt: str, kind: str | None = None, policy: str | None = None,
                     ticket_id: str | None = None, agent: str | None = None, suggestion_id: str | None = None,
                     limit: int = 1000) -> str:
        """The audit events (oldest first) matching the filters, as CSV or JSON Lines via sopilot.audit's export."""
        require(identity, "audit")
        if kind is not None and kind not in audit.KINDS:
            raise InputError(f"unknown audit event kind {kind!r}: use one of {list(audit.KINDS)}")
        events = audit.recent(self.settings, limit=limit, policy=policy, kind=kind, ticket_id=ticket_id)
        events = [e for e in reversed(events) if (agent is None or e.agent == agent)
                  and (suggestion_id is None or (e.detail or {}).get("suggestion_id") == suggestion_id)]
        out = io.StringIO()
        audit.write_export(events, cast(audit.ExportFormat, fmt), out)  # write_export rejects other formats
        if fmt != "jsonl":
            return out.getvalue()
        lines = []
        for line in out.getvalue().split("\n"):
            if not line:
                continue
            row = json.loads(line)
            # docs/interface.md §7 names: event, at, text, suggestion_id (the export's own columns stay).
            row.setdefault("event", row.get("kind"))
            row.setdefault("at", row.get("created_at"))
            row.setdefault("text", row.get("reply"))
            row.setdefault("suggestion_id", (row.get("detail") or {}).get("suggestion_id"))
            lines.append(json.dumps(row, ensure_ascii=False))
        return "".join(f"{line}\n" for line in lines)


def _ticket_id(ticket: Mapping[str, Any]) -> str | None:
    value = ticket.get("ticket_id") or ticket.get("id")
    return str(value)[:200] if value not in (None, "") else None
