"""The copilot as a helpdesk connector sees it: suggestions and feedback named after the helpdesk's people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopilot.identity import Identity
from sopilot.service.copilot import Copilot


class HelpdeskCopilot:
    """`sopilot.helpdesk.rt.Copilot` over the service's `Copilot`.

    A suggestion the helpdesk asked for is recorded as `"<source> webhook"`; an agent's reply is
    recorded under the helpdesk user who wrote it (`"rt:jane"`), with the role `agent`: a reply is
    sent, never an override.
    """

    def __init__(self, copilot: Copilot, *, source: str) -> None:
        self.copilot = copilot
        self.source = source

    def suggest(self, ticket: Mapping[str, Any], *, agent: str, ticket_id: str) -> tuple[str, Mapping[str, Any]]:
        """Run and record a suggestion; (suggestion_id, document)."""
        document = self.copilot.suggest(ticket, Identity(name=f"{self.source} webhook", role="agent"),
                                        ticket_id=ticket_id)
        return document["suggestion_id"], document

    def feedback(self, *, ticket_id: str, text: str, agent: str) -> Mapping[str, Any] | None:
        """Record an agent's reply as feedback on the ticket's latest suggestion."""
        recorded = self.copilot.feedback_for_ticket(ticket_id, Identity(name=f"{self.source}:{agent}", role="agent"),
                                                    text=text)
        return recorded.to_json() if recorded else None
