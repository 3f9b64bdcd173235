"""Audit page: the recent events of the audit log, filtered by policy, outcome, kind and ticket; exports.

Besides the events (CSV), an auditor takes the remuneration ledger (every automated refund and
credit with its ticket id, handbook §5) and the evaluation takes the agents' wrong-SOP marks.
"""

from __future__ import annotations

import io
import json

import streamlit as st
from sopilot.ui import components

ALL = "All"
LIMITS = (50, 200, 1000)


def _table(events) -> list[dict]:
    return [{"time": ev.created_at, "kind": ev.kind, "ticket_id": ev.ticket_id, "policy": ev.policy,
             "outcome": ev.outcome,
             "verdict": ev.verdict, "violations": ", ".join(ev.violations), "send": ev.send_mode,
             "producer": ev.model or ev.producer, "agent": ev.agent, "justification": ev.justification,
             "stopped": ev.detail.get("stopped"), "ticket": (ev.ticket or {}).get("message"), "reply": ev.reply}
            for ev in events]


def render() -> None:
    """The Audit page."""
    from sopilot import audit

    settings = components.settings()
    st.title("Audit log", anchor=False)
    st.caption("Every suggestion, blocked draft, sent reply, override and Emergency Stop change (handbook §5, §7).")
    policy_ids = components.policy_ids(settings)
    cols = st.columns(5)
    policy = cols[0].selectbox("Policy", [ALL, *policy_ids], key="audit_policy", accept_new_options=True)
    outcome = cols[1].selectbox("Outcome", [ALL, *components.outcomes()], key="audit_outcome")
    kind = cols[2].selectbox("Event", [ALL, *audit.KINDS], key="audit_kind")
    ticket = cols[3].text_input("Ticket id", key="audit_ticket", placeholder="all tickets")
    limit = cols[4].selectbox("Show", LIMITS, key="audit_limit", format_func=lambda n: f"newest {n}")
    with components.edge():
        events = audit.recent(settings, limit=limit, policy=None if policy == ALL else policy,
                              outcome=None if outcome == ALL else outcome, kind=None if kind == ALL else kind,
                              ticket_id=(ticket or "").strip() or None)
        everything = list(audit.open_log(settings).iter_all())
    ledger = io.StringIO()
    entries = audit.write_ledger(audit.ledger(everything), "csv", ledger)
    labels = audit.labelled_examples(everything)
    left, right = st.columns(2)
    left.download_button(f"Remuneration ledger ({entries} automated refunds and credits)", ledger.getvalue(),
                         file_name="sopilot-ledger.csv", mime="text/csv", icon=":material/receipt_long:",
                         key="audit_ledger")
    right.download_button(f"Wrong-SOP labels ({len(labels)} queries, for sopilot eval)",
                          "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in labels),
                          file_name="sopilot-labels.jsonl", mime="application/json", icon=":material/label:",
                          key="audit_labels")
    if not events:
        st.info("No events match: suggestions, sent replies, overrides and Emergency Stop changes appear here.")
        return
    st.dataframe(_table(events), hide_index=True, width="stretch")
    buffer = io.StringIO()
    count = audit.write_export(events, "csv", buffer)
    st.download_button(f"Export {count} events as CSV", buffer.getvalue(), file_name="sopilot-audit.csv",
                       mime="text/csv", icon=":material/download:", key="audit_export")


if __name__ == "__main__":
    render()
