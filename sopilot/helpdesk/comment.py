"""The internal note a helpdesk ticket receives: the guarded reply, the decision, team, SLA and sources.

Plain text, so it reads the same in Request Tracker's history, in an email notification and in a
sidebar. The first line carries the suggestion id, so an agent's later reply can be matched to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MARKER = "sopilot suggestion"


def comment_text(document: Mapping[str, Any], suggestion_id: str) -> str:
    """The note for one suggestion (`document` is the `POST /v1/suggest` answer)."""
    decision = document.get("guard") or document.get("decision") or {}
    lines = [f"{MARKER} {suggestion_id}",
             f"Decision: {decision.get('outcome', '?')} under policy {decision.get('policy') or '(none matched)'}"
             + (f" (rule {decision['rule']})" if decision.get("rule") else ""),
             f"Team: {decision.get('escalate_to') or 'this reply (no hand-off)'}",
             f"SLA: {decision.get('sla') or 'none stated: promise no time frame'}",
             f"Approval required: {'yes' if decision.get('approval_required') else 'no'}"]
    if decision.get("action"):
        lines.append(f"Action: {decision['action']}")
    for reason in decision.get("reasons", [])[:6]:
        lines.append(f"  - {reason}")
    if document.get("blocked_reason"):
        lines.append(f"The draft was blocked by the guard ({document['blocked_reason']}); the reply below replaces it.")
    lines += ["", "Suggested reply (checked by the guard):", "", str(document.get("reply", "")).strip(), ""]
    citations = document.get("citations") or []
    if citations:
        lines.append("Sources:")
        for c in citations[:8]:
            where = f"{c.get('source')}:{c.get('line_start')}-{c.get('line_end')}" if c.get("source") else ""
            lines.append(f"  - {c.get('sop_id')} [{c.get('section')}] {where}".rstrip())
    for note in document.get("notes", []):
        lines.append(f"Note: {note}")
    return "\n".join(lines).strip() + "\n"


def suggestion_id_in(text: str) -> str | None:
    """The suggestion id a note of ours carries, or None."""
    for line in text.splitlines():
        if line.startswith(MARKER + " "):
            return line[len(MARKER) + 1:].strip() or None
    return None
