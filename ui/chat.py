"""Chat page: a ticket in; the matched SOP, the guard's decision and a guarded reply out.

A message starts a ticket, or continues the open one: a follow-up is added to the ticket's
message and the facts set in the side panel stay. The pipeline (`sopilot.suggest.pipeline`) answers every
time: on a new message (streaming its draft), and again at once when the agent changes a fact or
the policy, or an Emergency Stop changes, so the decision card is always the guard's. The agent's
own edit of the reply is checked by the guard as it changes. Sending, sending an edit and
overriding are recorded in the audit log; a reply the guard blocks can only go out through an
override with a written justification (handbook §4, §7).
"""

from __future__ import annotations

import re

import streamlit as st

from sopilot.core.errors import SopilotError, UserError
from sopilot.ui import components

STATE = "chat"
OUTCOME_BADGES = {"automate": ("Automate", "green", ":material/bolt:"),
                  "escalate": ("Escalate", "orange", ":material/call_split:"),
                  "manual_review": ("Manual review", "red", ":material/person_search:")}
# A list bullet or a Markdown tick box in front of a step: the checkbox replaces it.
_STEP_MARK = re.compile(r"^\s*(?:[-*•]\s+)?(?:\[[ xX]\]\s*)?")


def _state() -> dict:
    """This browser session's chat: its turns, the open ticket and the facts the agent set."""
    if STATE not in st.session_state:
        st.session_state[STATE] = {"turns": [], "n": 0, "message": None, "suggestion": None, "facts": {},
                                   "policy": None, "policy_set": False, "stopped": frozenset(), "error": None,
                                   "sent": None}
    return st.session_state[STATE]


def _new_ticket() -> None:
    state = _state()
    state.update(turns=[], n=state["n"] + 1, message=None, suggestion=None, facts={}, policy=None,
                 policy_set=False, error=None, sent=None)


def _agent() -> str | None:
    return (st.session_state.get("agent") or "").strip() or None


# ---- asking the pipeline ------------------------------------------------------------------------

def _ticket(state: dict, message: str | None = None) -> dict:
    """The open ticket (CONTRACT §5): its message, the facts the agent set, and the policy in force."""
    ticket: dict = {"message": message or state["message"]}
    ticket.update({name: value for name, value in state["facts"].items() if value not in (None, "")})
    suggestion = state["suggestion"]
    policy = state["policy"] if state["policy_set"] else suggestion.sop_id if suggestion else None
    if policy:
        ticket["sop_id"] = policy
    return ticket


def _ask(prompt: str, settings, retriever) -> None:
    """Run the pipeline on the open ticket plus `prompt`, streaming its draft into the page."""
    from sopilot.suggest.pipeline import suggest_stream

    state = _state()
    message = prompt if state["message"] is None else f"{state['message']}\n\n{prompt}"
    ticket = _ticket(state, message)
    if not state["policy_set"]:
        ticket.pop("sop_id", None)  # a follow-up may be about another SOP: retrieval chooses again
    with st.chat_message("assistant"), components.edge():
        stream = suggest_stream(ticket, settings, retriever=retriever, record=True, agent=_agent())
        text = st.write_stream(stream)
    state.update(message=message, suggestion=stream.suggestion, stopped=settings.stopped, error=None, sent=None)
    state["turns"] += [{"role": "user", "text": prompt},
                       {"role": "assistant", "text": text, "suggestion": stream.suggestion}]


def _redo(settings) -> None:
    """Ask the pipeline again for the open ticket as it now stands (facts, policy, Emergency Stop)."""
    from sopilot.suggest.pipeline import suggest

    state = _state()
    try:
        state["suggestion"] = suggest(_ticket(state), settings, retriever=components.retriever(settings))
        state.update(error=None, sent=None)
    except SopilotError as exc:
        state["error"] = str(exc)
    state["stopped"] = settings.stopped


def _set_fact(name: str, key: str, settings) -> None:
    _state()["facts"][name] = st.session_state[key]
    _redo(settings)


def _set_policy(key: str, settings) -> None:
    _state().update(policy=st.session_state[key], policy_set=True)
    _redo(settings)


# ---- the answer ---------------------------------------------------------------------------------

def decision_card(decision: dict, *, title: str | None = None, key: str = "decision") -> None:
    """The guard's decision: outcome, team, SLA, approval, remuneration and the reasons that decided it."""
    label, color, icon = OUTCOME_BADGES.get(decision["outcome"], (decision["outcome"], "gray", None))
    with st.container(border=True, key=key):
        head, badge = st.columns([3, 1])
        head.markdown(f"**Decision** · {decision.get('policy') or 'no policy'}" + (f" · {title}" if title else ""))
        badge.badge(label, color=color, icon=icon)
        team, sla, approval = st.columns(3)
        team.markdown(f"**Team**  \n{decision.get('escalate_to') or '—'}")
        sla.markdown(f"**SLA**  \n{decision.get('sla') or '—'}")
        approval.markdown(f"**Approval**  \n{'required' if decision.get('approval_required') else 'not required'}")
        st.markdown(f"**Action:** {decision['action']}")
        money = decision.get("remuneration") or {}
        if money.get("type") not in (None, "none"):
            amount = f" {money['amount']} {money['currency']}" if money.get("amount") else ""
            st.markdown(f"**Remuneration:** {money['type'].replace('_', ' ')}{amount}")
        st.markdown("**Why**\n" + "\n".join(f"- {reason}" for reason in decision.get("reasons", [])))


def _checklist(sop, key: str) -> None:
    """The SOP's procedure as ticks, one per whole step (split as the citations are)."""
    from sopilot.suggest.citations import steps

    sections = [section for section in sop.sections if section.kind == "procedure"]
    if not sections:
        st.caption("This SOP states no procedure steps: follow the decision.")
        return
    for number, section in enumerate(sections):
        if len(sections) > 1:
            st.markdown(f"*{section.heading}*")
        for index, step in enumerate(steps(section.text)):
            first, _, rest = step.strip().partition("\n")
            label = _STEP_MARK.sub("", first).strip()
            if not label:
                continue
            st.checkbox(label, key=f"{key}_{number}_{index}")
            if rest.strip():
                st.code(rest.strip().strip("`").strip(), language=None, wrap_lines=True)


def _citations(suggestion) -> None:
    """Each citation expands to the SOP lines it quotes, with its file and line range."""
    for citation in suggestion.citations:
        part = " (leading steps)" if citation.partial else ""
        with st.expander(f"{citation.sop_id} · {citation.heading or citation.section}{part} · {citation.source}, "
                         f"lines {citation.line_start}–{citation.line_end}", icon=":material/format_quote:"):
            st.code(citation.text, language=None, wrap_lines=True)


def _answer(suggestion, key: str, retriever) -> None:
    """One answer: notes, the matched SOP with its checklist, the decision card, the citations."""
    from sopilot.guard.decide import EXCEPTION_QUEUE

    for note in suggestion.notes:
        st.caption(f":material/info: {note}")
    sop = retriever.sops.get(suggestion.sop_id) if suggestion.sop_id else None
    if sop is None:
        st.warning(f"No SOP matches this ticket: it goes to the **{EXCEPTION_QUEUE}** for manual review by a "
                   "senior support agent (handbook §4).", icon=":material/help:")
    else:
        st.markdown(f"**Matched SOP: {sop.sop_id} · {sop.title}**  \n{sop.category} · `{sop.source}`")
        with st.container(border=True):
            st.caption("Procedure")
            _checklist(sop, key)
    decision_card(suggestion.guard.to_json(), title=sop.title if sop else None, key=f"decision_{key}")
    if suggestion.citations:
        st.caption("Sources")
        _citations(suggestion)


# ---- side panel: the ticket's facts ----------------------------------------------------------------

def _fact_widget(name: str, spec, prefill, key: str, **callback) -> None:
    """One CONTRACT §5 fact, as a widget suited to its type (`spec` is the guard's FieldSpec)."""
    from sopilot.guard.facts import CANONICAL_ROLES

    label = name.replace("_", " ").capitalize()
    if spec.kind in ("priority", "enum", "role", "bool"):
        if spec.kind == "bool":
            options, shown = [None, True, False], {None: "—", True: "yes", False: "no"}
        else:
            options, shown = [None, *(CANONICAL_ROLES if spec.kind == "role" else spec.choices)], {None: "—"}
        if prefill not in options:
            options.append(prefill)
        st.selectbox(label, options, index=options.index(prefill), key=key, format_func=lambda v: shown.get(v, str(v)),
                     accept_new_options=spec.kind == "role", **callback)
    elif spec.kind == "int":
        st.number_input(label, min_value=0, step=1, value=prefill, key=key, placeholder="unknown", **callback)
    else:
        st.text_input(label, value="" if prefill is None else str(prefill), key=key, placeholder="unknown",
                      help="Such as $180.00, USD 180 or 180 dollars" if spec.kind == "money" else None, **callback)


def _facts_panel(state: dict, settings, policies) -> None:
    """Priority, amount and the facts the matched policy tests, prefilled as the guard reads the ticket."""
    from sopilot.guard.facts import FIELDS, parse_ticket

    st.subheader("Ticket facts", anchor=False)
    suggestion = state["suggestion"]
    if suggestion is None:
        st.caption("For the open ticket: priority, amount and the facts its policy tests. Change one and the "
                   "decision follows at once.")
        return
    n = state["n"]
    chosen = state["policy"] if state["policy_set"] else suggestion.sop_id
    options = [None, *policies.policies]
    if chosen not in options:
        options.insert(1, chosen)
    key = f"policy_{n}"
    st.selectbox("Policy", options, index=options.index(chosen), key=key, on_change=_set_policy,
                 args=(key, settings), format_func=lambda p: "— no SOP matched —" if p is None else
                 f"{p} · {policies.policies[p].title}" if p in policies.policies else p)
    read = None
    try:
        read = parse_ticket(_ticket(state))
    except UserError as exc:
        state["error"] = str(exc)
    if state["error"]:
        st.error(state["error"], icon=":material/error:")
    policy = policies.get(chosen)
    names = ["priority", "amount", *sorted((policy.facts if policy else set()) - {"priority", "amount"})]
    for name in names:
        key = f"fact_{n}_{name}"
        prefill = state["facts"].get(name) if read is None else getattr(read, name, None)
        _fact_widget(name, FIELDS[name], prefill, key, on_change=_set_fact, args=(name, key, settings))
    if read is not None and read.notes:
        st.caption(" · ".join(read.notes))


# ---- the reply panel ------------------------------------------------------------------------------

def _send(settings, suggestion, text: str, done: str) -> None:
    from sopilot import audit

    with components.edge(stop=False):
        event = audit.record_sent(settings, suggestion, text=text, agent=_agent())
        _state()["sent"] = f"{done} Recorded in the audit log as event {event.id} ({event.send_mode})."


def _reply_panel(state: dict, settings, policies) -> None:
    """The guarded reply, editable and re-checked as it changes, and the three ways to send it."""
    from sopilot.guard import guard_ticket
    from sopilot import audit

    st.subheader("Suggested reply", anchor=False)
    suggestion = state["suggestion"]
    if suggestion is None:
        st.caption("The guarded reply to the customer appears here, with the guard's verdict on every edit.")
        return
    draft, decision, n = suggestion.draft, suggestion.guard.to_json(), state["n"]
    st.caption(f"Drafted by {'model ' + draft.model if draft.producer == 'llm' else 'the offline composer'}"
               + (f" (the LLM failed: {draft.fallback_reason})" if draft.fallback_reason else ""))
    if suggestion.blocked_reason:
        st.warning(f"The guard blocked the draft ({suggestion.blocked_reason}); its compliant reply replaces it.",
                   icon=":material/shield:")
    key = f"reply_{n}_{abs(hash(suggestion.reply))}"
    text = st.text_area("Reply to the customer (editable)", value=suggestion.reply, key=key, height=230)
    edited = text.strip() != suggestion.reply.strip()
    blocked = False
    if edited:
        with components.edge(stop=False):
            result = guard_ticket(_ticket(state), policies, reply=text, stopped=settings.stopped)
            blocked = not result.verdict.passed
            if blocked:
                st.error("The guard blocks this edit:\n" + "\n".join(
                    f"- `{v.code}`: {v.message} (“{v.evidence}”)" for v in result.verdict.violations),
                    icon=":material/block:")
                st.markdown("**Compliant alternative**")
                st.code(result.reply, language=None, wrap_lines=True)
            else:
                st.success("The guard passes your edit.", icon=":material/verified_user:")
    st.caption("Copy")
    st.code(text, language=None, wrap_lines=True)
    as_is, send_edit = st.columns(2)
    if as_is.button("Send as is", key=f"send_{n}", icon=":material/send:", width="stretch"):
        _send(settings, suggestion, suggestion.reply, "Sent the suggested reply.")
    refused = "The guard blocks this edit: fix it, or override with a written justification." if blocked else None
    if send_edit.button("Send edited", key=f"send_edit_{n}", icon=":material/edit_note:", width="stretch",
                        disabled=not edited or blocked, help=refused):
        if blocked:  # the button is disabled; a stale click from the browser still must not send
            st.error(refused, icon=":material/block:")
        else:
            _send(settings, suggestion, text, "Sent your edit.")
    with st.expander("Override", expanded=blocked, icon=":material/gavel:"):
        st.caption("Send this reply against the guard's decision. Handbook §4 and §7: every override needs a "
                   "business justification; it is logged and audited weekly.")
        why = st.text_area("Justification", key=f"why_{n}")
        if st.button("Override and send", key=f"override_{n}"):
            with components.edge(stop=False):
                event = audit.record_override(settings, suggestion, text=text, justification=why or "",
                                              agent=_agent())
                state["sent"] = f"Overridden and sent. Recorded in the audit log as event {event.id}."
    if state["sent"]:
        st.success(state["sent"], icon=":material/task_alt:")


# ---- the page -----------------------------------------------------------------------------------

def render() -> None:
    """The Chat page."""
    settings = components.settings()
    state = _state()
    prompt = st.chat_input("Paste the customer's message or ask a policy question", key="prompt")
    with components.edge():
        retriever = components.retriever(settings)
        policies = components.policies(settings)
    if state["suggestion"] is not None and settings.stopped != state["stopped"]:
        _redo(settings)
    with st.sidebar:
        st.text_input("Agent", key="agent", placeholder="your name, for the audit log")
        st.button("New ticket", on_click=_new_ticket, icon=":material/add_comment:", key="new_ticket")
        _facts_panel(state, settings, policies)
    chat, reply = st.columns([3, 2], gap="large")
    with chat:
        st.title("sopilot", anchor=False)
        if not state["turns"] and not prompt:
            st.caption("Paste what the customer wrote, or ask a policy question such as “customer double charged "
                       "$180, can I refund?”. You get the SOP, the policy decision and a guarded reply.")
        last = len(state["turns"]) - 1
        for index, turn in enumerate(state["turns"]):
            with st.chat_message(turn["role"]):
                if turn["role"] == "user":
                    st.markdown(turn["text"])
                    continue
                current = state["suggestion"] if index == last else turn["suggestion"]
                _answer(current, f"step_{state['n']}_{index}", retriever)
                with st.expander("Draft as it was written", icon=":material/draft:"):
                    st.text(turn["text"])
        if prompt:
            with st.chat_message("user"):
                st.markdown(prompt)
            _ask(prompt, settings, retriever)
            st.rerun()
    with reply:
        _reply_panel(state, settings, policies)


if __name__ == "__main__":
    render()
