"""Request Tracker 5 over REST2 (httpx): read what happened on a ticket, write the suggestion back.

For a new ticket or new correspondence from a requestor, the connector asks the copilot for a
suggestion and writes it back as an internal comment (decision, team, SLA, citations, the guarded
reply); an escalation moves the ticket to the named team's queue when RT has a queue of that name.
Correspondence written by anyone else is the agent's reply: it is read back as feedback on the
ticket's latest suggestion (sent as is, or edited, with the guard's verdict on the exact text).
Our own comments are transactions too: they are never answered.

Two triggers feed `handle(transaction_id)`: the RT scrip's webhook notice (scripts/rt-webhook-initialdata.pl)
or `new_transactions` over `POST /REST/2.0/transactions`; the caller makes both idempotent.
Every call to RT has a timeout and bounded retries with backoff; a failure is raised as `HelpdeskError`,
never swallowed.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping
from typing import Any, Protocol

from sopilot.core.errors import SopilotError
from sopilot.helpdesk.comment import comment_text


class HelpdeskError(SopilotError):
    """The helpdesk could not be read or written after the retries."""


class Copilot(Protocol):
    """What the connector needs from the service: suggestions and feedback, both recorded."""

    def suggest(self, ticket: Mapping[str, Any], *, agent: str, ticket_id: str) -> tuple[str, Mapping[str, Any]]:
        """Run and record a suggestion; return (suggestion_id, the suggest document)."""

    def feedback(self, *, ticket_id: str, text: str, agent: str) -> Mapping[str, Any] | None:
        """Record what an agent sent on the ticket against its latest suggestion (None: no suggestion)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    """What the connector did with one transaction."""

    transaction_id: int
    ticket_id: int | None
    action: str
    """`suggested`, `feedback`, or `ignored`."""
    suggestion_id: str | None = None
    moved_to: str | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return dataclasses.asdict(self)


_TEAM_WORDS = re.compile(r"""\b(the|team|department|dept)\b|[^a-z0-9 ]""", re.VERBOSE)


def _queue_key(name: str) -> str:
    """A queue or team name compared loosely: 'Billing Specialist team' ~ 'Billing Specialist'."""
    return " ".join(_TEAM_WORDS.sub(" ", name.casefold()).split())


class RTClient:
    """REST2 calls with a timeout and bounded retries (idempotent reads and our own writes)."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 5.0, retries: int = 3) -> None:
        import httpx

        if not base_url:
            raise HelpdeskError("no Request Tracker configured: set SOPILOT_RT_URL (e.g. http://127.0.0.1:8765)")
        if not token:
            raise HelpdeskError("no RT auth token: set SOPILOT_RT_TOKEN (RT: Logged in as → Settings → Auth Tokens)")
        self.rest = base_url.rstrip("/") + "/REST/2.0"
        self.retries = max(0, retries)
        self._http = httpx.Client(timeout=timeout, headers={"Authorization": f"token {token}",
                                                            "Content-Type": "application/json"})

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """One REST2 call; retried on network errors and 5xx, never on 4xx."""
        import httpx

        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(2.0, 0.2 * 2 ** (attempt - 1)))
            try:
                response = self._http.request(method, self.rest + path, json=json, params=params)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise HelpdeskError(f"RT refused {method} {path}: HTTP {response.status_code} {response.text[:200]}")
            return response.json() if response.content else None
        raise HelpdeskError(f"RT {method} {path} failed after {self.retries + 1} attempts: {last}")

    def transaction(self, transaction_id: int) -> dict[str, Any]:
        """The transaction (Type, Creator, Object, …)."""
        return self.call("GET", f"/transaction/{int(transaction_id)}")

    def content(self, transaction_id: int) -> str:
        """The plain-text body of a transaction (its first text/plain attachment with content)."""
        listing = self.call("GET", f"/transaction/{int(transaction_id)}/attachments",
                            params={"fields": "ContentType,Content", "per_page": 20})
        for item in (listing or {}).get("items", []):
            if str(item.get("ContentType", "")).startswith("text/plain") and item.get("Content"):
                return str(item["Content"]).strip()
        return ""

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """The ticket's fields."""
        return self.call("GET", f"/ticket/{int(ticket_id)}")

    def comment(self, ticket_id: int, text: str, subject: str) -> None:
        """Add an internal comment (never mailed to the requestor)."""
        self.call("POST", f"/ticket/{int(ticket_id)}/comment",
                  json={"Subject": subject, "Content": text, "ContentType": "text/plain"})

    def queues(self) -> dict[str, str]:
        """Queue names of RT, keyed loosely (see `_queue_key`)."""
        listing = self.call("GET", "/queues/all", params={"fields": "Name", "per_page": 100})
        return {_queue_key(q["Name"]): q["Name"] for q in (listing or {}).get("items", []) if q.get("Name")}

    def move(self, ticket_id: int, queue: str) -> None:
        """Move the ticket to `queue`."""
        self.call("PUT", f"/ticket/{int(ticket_id)}", json={"Queue": queue})

    def latest_transaction_id(self) -> int:
        """The id of the newest transaction (polling starts after it)."""
        found = self.call("POST", "/transactions", params={"per_page": 1, "orderby": "id", "order": "DESC"},
                          json=[{"field": "id", "operator": ">", "value": 0}])
        items = (found or {}).get("items", [])
        return int(items[0]["id"]) if items else 0

    def transactions_after(self, last_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
        """Ticket transactions with an id above `last_id`, oldest first."""
        found = self.call("POST", "/transactions", params={"fields": "Type,ObjectId", "per_page": limit,
                                                            "orderby": "id", "order": "ASC"},
                          json=[{"field": "id", "operator": ">", "value": int(last_id)},
                                {"field": "ObjectType", "value": "RT::Ticket"}])
        return list((found or {}).get("items", []))


class RTConnector:
    """Turns RT transactions into recorded suggestions and feedback."""

    def __init__(self, client: RTClient, copilot: Copilot) -> None:
        self.client = client
        self.copilot = copilot
        self.last_seen = 0
        self._queues: dict[str, str] | None = None

    def handle(self, transaction_id: int) -> Outcome:
        """Process one transaction: a requestor's words get a suggestion, an agent's reply is feedback."""
        txn = self.client.transaction(transaction_id)
        kind = txn.get("Type")
        obj = txn.get("Object") or {}
        if obj.get("type") != "ticket":
            return Outcome(transaction_id=transaction_id, ticket_id=None, action="ignored", reason="not a ticket")
        ticket_id = int(obj["id"])
        if kind not in ("Create", "Correspond"):
            return Outcome(transaction_id=transaction_id, ticket_id=ticket_id, action="ignored",
                           reason=f"{kind} transactions are not customer words")
        ticket = self.client.ticket(ticket_id)
        text = self.client.content(transaction_id)
        creator = str((txn.get("Creator") or {}).get("id", ""))
        requestors = {str(r.get("id", "")).casefold() for r in ticket.get("Requestor") or []}
        helpdesk_id = f"rt:{ticket_id}"
        if kind == "Correspond" and creator.casefold() not in requestors:
            recorded = self.copilot.feedback(ticket_id=helpdesk_id, text=text, agent=creator or "rt")
            return Outcome(transaction_id=transaction_id, ticket_id=ticket_id,
                           action="feedback" if recorded else "ignored",
                           suggestion_id=(recorded or {}).get("suggestion_id"),
                           reason="" if recorded else "an agent's reply on a ticket without a suggestion")
        if not text:
            return Outcome(transaction_id=transaction_id, ticket_id=ticket_id, action="ignored", reason="no text")
        subject = str(ticket.get("Subject") or "")
        message = f"{subject}\n\n{text}" if subject and subject.casefold() not in text.casefold() else text
        suggestion_id, document = self.copilot.suggest({"message": message, "ticket_id": helpdesk_id},
                                                       agent="rt", ticket_id=helpdesk_id)
        self.client.comment(ticket_id, comment_text(document, suggestion_id), subject=f"sopilot: {subject}"[:200])
        moved = self._escalate(ticket_id, ticket, document)
        return Outcome(transaction_id=transaction_id, ticket_id=ticket_id, action="suggested",
                       suggestion_id=suggestion_id, moved_to=moved)

    def _escalate(self, ticket_id: int, ticket: Mapping[str, Any], document: Mapping[str, Any]) -> str | None:
        decision = document.get("guard") or {}
        team = decision.get("escalate_to")
        if decision.get("outcome") != "escalate" or not team:
            return None
        if self._queues is None or _queue_key(team) not in self._queues:
            self._queues = self.client.queues()
        queue = self._queues.get(_queue_key(team))
        if queue is None:
            return None
        self.client.move(ticket_id, queue)
        return queue

    def new_transactions(self) -> list[int]:
        """Ids of the Create and Correspond transactions since the last call (the first call starts from now)."""
        if self.last_seen == 0:
            self.last_seen = self.client.latest_transaction_id()
            return []
        found = []
        for item in self.client.transactions_after(self.last_seen):
            self.last_seen = max(self.last_seen, int(item["id"]))
            if item.get("Type") in ("Create", "Correspond"):
                found.append(int(item["id"]))
        return found
