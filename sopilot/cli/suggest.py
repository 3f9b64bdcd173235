"""`sopilot suggest --ticket FILE [--json]`: one guarded suggestion, recorded in the audit log."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from sopilot.core.jsonl import read_text
from sopilot.core.settings import Settings
from sopilot.eval.guard import parse_json
from sopilot.suggest.pipeline import suggest, validate_ticket


def _read_ticket(path: str) -> Mapping[str, Any]:
    data = parse_json(read_text(path, "ticket file"), f"ticket file {path!r}")
    if isinstance(data, dict) and isinstance(data.get("ticket"), dict):
        data = data["ticket"]
    return validate_ticket(data)


def suggest_command(*, ticket: str, as_json: bool, settings: Settings) -> int:
    """`sopilot suggest --ticket FILE [--json]`: one guarded suggestion, recorded in the audit log."""
    suggestion = suggest(_read_ticket(ticket), settings, record=True)
    if as_json:
        sys.stdout.write(json.dumps(suggestion.to_json(), ensure_ascii=False, default=str) + "\n")
        return 0
    decision = suggestion.guard.to_json()
    print(suggestion.reply)
    print("", file=sys.stderr)
    print(f"policy {decision.get('policy') or '(none)'} → {decision['outcome']}"
          + (f" ({decision['escalate_to']})" if decision.get("escalate_to") else "")
          + f" · draft: {suggestion.draft.producer}" + (f" {suggestion.draft.model}" if suggestion.draft.model else "")
          + f" · verdict: {decision['verdict']} · {suggestion.latency_ms:.0f} ms", file=sys.stderr)
    for note in suggestion.notes:
        print(f"note: {note}", file=sys.stderr)
    if suggestion.blocked_reason:
        print(f"blocked: {suggestion.blocked_reason}", file=sys.stderr)
    for c in suggestion.citations:
        print(f"source: {c.sop_id} [{c.section}] {c.source}:{c.line_start}-{c.line_end}", file=sys.stderr)
    return 0
