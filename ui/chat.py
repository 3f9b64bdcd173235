"""Chat page: explicit tickets in; the matched SOP, its alternatives, the guard's decision and a guarded reply out.

A ticket has an id (typed, or `T-…` made up by New ticket) and lives in the page's URL
(`?ws=…&ticket=…`) and in the audit database, so a reload, or another tab, finds the open tickets
again. A message joins the open ticket; one that looks like a different ticket (another SOP and a
fresh greeting) asks first. Facts are read from the customer's words and the agent's notes
(`sopilot.guard.ticket_text`) and shown with where they came from; a decision that would automate
on a fact only the customer stated waits for the agent to confirm it with one click. The top three
SOPs are offered with their match probability; taking another records the first as a wrong SOP.
The reply is checked by the guard as the agent types; a blocked edit is logged and its compliant
alternative is one click away with the agent's greeting and sign-off. Each action is one audit
event, with the signed-in person's name; override controls appear only for roles allowed to use them.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import TYPE_CHECKING, Literal

import streamlit as st
from sopilot.ui import components

from sopilot.core.errors import SopilotError, UserError

if TYPE_CHECKING:
    from sopilot.audit import Channel

STATE = "chat"
_BadgeColor = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray", "grey", "primary"]
OUTCOME_BADGES: dict[str, tuple[str, _BadgeColor, str | None]] = {
    "automate": ("Automate", "green", ":material/bolt:"),
    "escalate": ("Escalate", "orange", ":material/call_split:"),
    "manual_review": ("Manual review", "red", ":material/person_search:")}
# A list bullet or a Markdown tick box in front of a step: the checkbox replaces it.
_STEP_MARK = re.compile(r"^\s*(?:[-*•]\s+)?(?:\[[ xX]\]\s*)?")
_GREETING = re.compile(r"""^\s*(?:hi|hello|hey|dear|good\s(?:morning|afternoon|evening)|hola|bonjour|hallo|olá)\b
                       # "Hello, my card ..." opens a new conversation""", re.VERBOSE | re.IGNORECASE)
ALTERNATIVES = 3
# Typing pauses this long (ms) before the reply box hands its text to the guard.
DEBOUNCE_MS = 600
_LIVE_JS = """
export default function(component) {
  const { data } = component;
  const root = document;
  const wire = () => {
    const boxes = root.querySelectorAll('textarea[aria-label="' + data.label + '"]');
    boxes.forEach((box) => {
      if (box.dataset.sopilotLive) return;
      box.dataset.sopilotLive = "1";
      let timer = null;
      box.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          box.dispatchEvent(new KeyboardEvent("keydown", {key: "Enter", code: "Enter", ctrlKey: true,
                                                           metaKey: true, bubbles: true}));
        }, data.debounce);
      });
    });
  };
  wire();
  const observer = new MutationObserver(wire);
  observer.observe(root.body, {childList: true, subtree: true});
  return () => observer.disconnect();
}
"""


@st.cache_resource
def _live_check_component():
    """A script-only component: a pause in typing commits the reply box (as Ctrl+Enter does), so the guard runs."""
    import streamlit.components.v2 as v2

    return v2.component("sopilot_live_check", js=_LIVE_JS, isolate_styles=False)


def _live_check(label: str) -> None:
    try:
        _live_check_component()(key="live_check", data={"label": label, "debounce": DEBOUNCE_MS})
    except Exception:  # noqa: BLE001 - without a browser (tests) the box still checks when it loses focus
        pass


# ---- the ticket's state ------------------------------------------------------------------------------

def _blank(ticket_id: str) -> dict:
    return {"ticket_id": ticket_id, "turns": [], "message": None, "note": "", "facts": {}, "confirmed": [],
            "policy": None, "policy_set": False, "suggestion": None, "error": None, "sent": None, "pending": None,
            "stopped": None, "edit": None}


def _state() -> dict:
    """This browser session's open ticket (restored from the URL and the audit database on a reload)."""
    if STATE not in st.session_state:
        params = st.query_params
        st.session_state["workspace"] = params.get("ws") or uuid.uuid4().hex[:12]
        st.query_params["ws"] = st.session_state["workspace"]
        ticket_id = params.get("ticket")
        st.session_state[STATE] = _blank(ticket_id or _new_id())
        st.session_state["n"] = 0
        if ticket_id:
            _restore(ticket_id)
        st.query_params["ticket"] = st.session_state[STATE]["ticket_id"]
    return st.session_state[STATE]


def _new_id() -> str:
    return f"T-{uuid.uuid4().hex[:6].upper()}"


def _persisted(state: dict) -> dict:
    return {k: state[k] for k in ("ticket_id", "message", "note", "facts", "confirmed", "policy", "policy_set")} | {
        "turns": [t["text"] for t in state["turns"] if t["role"] == "user"], "agent": _agent()}


def _save(closed: bool = False) -> None:
    from sopilot.audit import workspace

    state = st.session_state[STATE]
    if state["message"] is None and not closed:
        return
    with components.edge(stop=False):
        workspace.save_ticket(components.settings(), workspace=st.session_state["workspace"],
                              ticket_id=state["ticket_id"], state=_persisted(state), agent=_agent(), closed=closed)


def _restore(ticket_id: str) -> None:
    """Open a saved ticket: its messages, facts and policy; the suggestion is asked for again."""
    from sopilot.audit import workspace

    settings = components.settings()
    saved = None
    with components.edge(stop=False):
        saved = workspace.load_ticket(settings, st.session_state["workspace"], ticket_id)
    state = _blank(ticket_id)
    if saved is not None:
        data = saved.state
        state.update({k: data.get(k, state[k]) for k in ("message", "note", "facts", "confirmed", "policy",
                                                          "policy_set")})
        state["turns"] = [{"role": "user", "text": t} for t in data.get("turns", [])]
        if data.get("agent") and not st.session_state.get("agent"):
            st.session_state["agent"] = data["agent"]
    st.session_state[STATE] = state
    st.query_params["ticket"] = ticket_id
    st.session_state["n"] = st.session_state.get("n", 0) + 1
    if state["message"]:
        _redo(settings, record=False)


def _new_ticket() -> None:
    _save()
    st.session_state[STATE] = _blank(_new_id())
    st.session_state["n"] = st.session_state.get("n", 0) + 1
    st.query_params["ticket"] = st.session_state[STATE]["ticket_id"]


def _open(ticket_id: str) -> None:
    _save()
    _restore(ticket_id)


def _close_ticket() -> None:
    _save(closed=True)
    _new_ticket()


def _rename(key: str) -> None:
    value = (st.session_state[key] or "").strip()
    if value:
        st.session_state[STATE]["ticket_id"] = value
        st.query_params["ticket"] = value
        _save()


def _agent() -> str | None:
    who = components.identity()
    if who is not None:
        return who.name
    return (st.session_state.get("agent") or "").strip() or None


def _action(*parts) -> str:
    """One id per agent action, so a rerun or a double click records it once."""
    state = st.session_state[STATE]
    text = "|".join(str(p) for p in (st.session_state.get("workspace"), state["ticket_id"], *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


# ---- facts and the pipeline --------------------------------------------------------------------------

def _reading(state: dict):
    from sopilot.guard.ticket_text import read_ticket_text

    return read_ticket_text(state["message"] or "", agent_note=state["note"] or "")


def _facts(state: dict) -> dict:
    """Name → (value, source): read from the text, overlaid by what the agent set in the panel."""
    facts = {name: (fact.value, fact.source, fact.evidence) for name, fact in _reading(state).facts.items()}
    for name, value in state["facts"].items():
        if value not in (None, ""):
            facts[name] = (value, "agent", "set in the panel")
    for name in state["confirmed"]:
        if name in facts and facts[name][1] == "customer":
            facts[name] = (facts[name][0], "agent", f"confirmed by the agent ({facts[name][2]})")
    return facts


def _ticket(state: dict) -> dict:
    """The open ticket (docs/interface.md §5): its message, every fact read or set, and the policy if chosen."""
    from sopilot.suggest.composer import customer_name

    ticket: dict = {"message": state["message"], "ticket_id": state["ticket_id"]}
    # An amount only the customer wrote stays in the message: the guard reads it there, and the reply never
    # restates it (it may be an injected "$5000"); once the agent sets or confirms it, it is a field.
    ticket.update({name: value for name, (value, source, _) in _facts(state).items()
                   if not (name == "amount" and source == "customer")})
    name = customer_name(_reading(state).customer)
    if name:
        ticket["customer_name"] = name
    if state["policy_set"] and state["policy"]:
        ticket["sop_id"] = state["policy"]
    return ticket


def _unconfirmed(state: dict, policies) -> list[str]:
    """Facts read only from the customer's words that an automated decision rests on."""
    suggestion = state["suggestion"]
    if suggestion is None or suggestion.guard.decision.outcome != "automate":
        return []
    policy = policies.get(suggestion.guard.decision.policy)
    tested = set(policy.facts if policy else ()) | {"amount"}
    return [name for name, (_, source, _) in _facts(state).items() if source == "customer" and name in tested]


def _redo(settings, *, record: bool = True, changed: dict | None = None) -> None:
    """Ask the pipeline for the open ticket as it now stands; log the decision if it changed."""
    from sopilot import audit
    from sopilot.suggest.pipeline import suggest

    state = st.session_state[STATE]
    before = state["suggestion"]
    try:
        with st.spinner("Reading the ticket, deciding and drafting…"):
            suggestion = suggest(_ticket(state), settings, retriever=components.retriever(settings))
        state.update(suggestion=suggestion, error=None, sent=None, edit=None, stopped=settings.stopped)
        if record:
            agent, ticket_id = _agent(), state["ticket_id"]
            provenance = {n: {"value": v, "source": s} for n, (v, s, _) in _facts(state).items()}
            audit.record_suggestion(settings, suggestion, agent=agent, ticket_id=ticket_id,
                                    detail={"facts": provenance})
            old = before.guard.to_json() if before is not None else None
            new = suggestion.guard.to_json()
            if old is not None and changed and any(old.get(k) != new.get(k) for k in (
                    "policy", "outcome", "escalate_to", "remuneration")):
                audit.record_decision_changed(settings, before, suggestion, changed=changed, agent=agent,
                                              ticket_id=ticket_id)
    except SopilotError as exc:
        state["error"] = str(exc)
    _save()


def _looks_like_another_ticket(state: dict, prompt: str, retriever) -> str | None:
    """Why `prompt` may be a different ticket (another SOP and a fresh greeting), or None."""
    current = state["suggestion"].sop_id if state["suggestion"] is not None else None
    if state["message"] is None or current is None or not _GREETING.match(prompt):
        return None
    hits = retriever.search(prompt, k=1)
    if hits and hits[0].sop_id != current:
        return f"it opens with a greeting and reads as {hits[0].sop_id} · {hits[0].sop.title}, not {current}"
    return None


def _take(prompt: str, settings, *, join: bool) -> None:
    state = st.session_state[STATE]
    if not join:
        _new_ticket()
        state = st.session_state[STATE]
    state["message"] = prompt if state["message"] is None else f"{state['message']}\n\n{prompt}"
    state["turns"].append({"role": "user", "text": prompt})
    state["pending"] = None
    if not state["policy_set"]:
        state["policy"] = None
    _redo(settings)


def _set_fact(name: str, key: str, settings) -> None:
    state = st.session_state[STATE]
    old = _facts(state).get(name, (None,))[0]
    state["facts"][name] = st.session_state[key]
    _redo(settings, changed={name: [old, st.session_state[key]]})


def _set_policy(policy: str | None, settings, *, wrong: bool) -> None:
    from sopilot import audit

    state = st.session_state[STATE]
    before = state["suggestion"]
    if wrong and before is not None and policy and policy != before.sop_id:
        with components.edge(stop=False):
            audit.record_wrong_sop(settings, before, relevant=policy, agent=_agent(), ticket_id=state["ticket_id"],
                                   action_id=_action("wrong", before.sop_id, policy))
    state.update(policy=policy, policy_set=True)
    st.session_state[f"policy_{st.session_state['n']}"] = policy
    _redo(settings, changed={"policy": [before.sop_id if before else None, policy]})


def _choose_policy(key: str, settings) -> None:
    _set_policy(st.session_state[key], settings, wrong=True)


def _confirm(names: list[str], settings) -> None:
    from sopilot import audit

    state = st.session_state[STATE]
    facts = _facts(state)
    with components.edge(stop=False):
        audit.record_facts_confirmed(settings, state["suggestion"], facts={n: facts[n][0] for n in names},
                                     agent=_agent(), ticket_id=state["ticket_id"],
                                     action_id=_action("confirm", *names))
    state["confirmed"] = sorted({*state["confirmed"], *names})
    _save()


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


def _alternatives(suggestion, settings, retriever) -> None:
    """The top SOPs with their match probability; taking another marks the first as the wrong SOP."""
    hits = list(suggestion.retrieval.hits[:ALTERNATIVES])
    if not hits:
        return
    st.caption("Other SOPs that may fit")
    for rank, hit in enumerate(hits):
        probability = getattr(hit, "match_probability", None)
        score = f"{probability:.0%} match" if isinstance(probability, int | float) else f"confidence {hit.dense:.2f}"
        left, right = st.columns([3, 1], vertical_alignment="center")
        chosen = hit.sop_id == suggestion.sop_id
        left.markdown(f"{'**' if chosen else ''}{hit.sop_id} · {hit.sop.title}{'**' if chosen else ''} · {score}")
        if not chosen:
            right.button("Use", key=f"alt_{st.session_state['n']}_{rank}", on_click=_set_policy,
                         args=(hit.sop_id, settings), kwargs={"wrong": True}, icon=":material/swap_horiz:",
                         width="stretch",
                         help=f"Answer with {hit.sop_id}; {suggestion.sop_id} is recorded as the wrong SOP, for "
                              "evaluation.")


def _answer(suggestion, key: str, settings, retriever) -> None:
    """The answer: notes, the matched SOP with its checklist, its alternatives, the decision card, the citations."""
    from sopilot.guard.decide import EXCEPTION_QUEUE

    for note in suggestion.notes:
        st.caption(f":material/info: {note}")
    read = suggestion.retrieval
    if read.read_as is not None:
        with st.expander(f"Read as ({read.language or '?'})", icon=":material/visibility:"):
            st.caption("What was searched, after quoted replies, signatures and greetings were set aside.")
            st.text(read.read_as)
    sop = retriever.sops.get(suggestion.sop_id) if suggestion.sop_id else None
    if sop is None:
        st.warning(f"No SOP matches this ticket: it goes to the **{EXCEPTION_QUEUE}** for manual review by a "
                   "senior support agent (handbook §4).", icon=":material/help:")
    else:
        st.markdown(f"**Matched SOP: {sop.sop_id} · {sop.title}**  \n{sop.category} · `{sop.source}`")
        with st.container(border=True):
            st.caption("Procedure")
            _checklist(sop, key)
    _alternatives(suggestion, settings, retriever)
    decision_card(suggestion.guard.to_json(), title=sop.title if sop else None, key=f"decision_{key}")
    if suggestion.citations:
        st.caption("Sources")
        _citations(suggestion)


# ---- side panel: who, which ticket, its facts ------------------------------------------------------------

def _sign_in_panel(settings) -> None:
    who = components.identity()
    if who is not None:
        st.markdown(f":material/badge: Signed in as **{who.name}** ({who.role})")
        st.button("Sign out", on_click=components.sign_out, key="sign_out")
        return
    with st.form("sign_in", border=False):
        key = st.text_input("Your sopilot key", type="password", key="sign_in_key",
                            help="Made by `sopilot keys create --name NAME --role agent|senior|lead|admin`. "
                                 "The audit log names you; overrides need a senior role.")
        if st.form_submit_button("Sign in", icon=":material/login:"):
            try:
                components.sign_in(settings, key or "")
                st.rerun()
            except UserError as exc:
                st.error(str(exc), icon=":material/lock:")
    st.text_input("Agent", key="agent", placeholder="your name, if not signed in")


def _tickets_panel(state: dict, settings) -> None:
    from sopilot.audit import workspace

    n = st.session_state["n"]
    st.text_input("Ticket id", value=state["ticket_id"], key=f"ticket_id_{n}", on_change=_rename,
                  args=(f"ticket_id_{n}",), help="The helpdesk's id; New ticket makes one up.")
    st.button("New ticket", on_click=_new_ticket, icon=":material/add_comment:", key="new_ticket",
              shortcut="Alt+N", width="stretch")
    st.button("Close ticket", on_click=_close_ticket, icon=":material/done_all:", key="close_ticket",
              disabled=state["message"] is None, width="stretch")
    tickets = []
    with components.edge(stop=False):
        tickets = workspace.open_tickets(settings, st.session_state["workspace"])
    others = [t for t in tickets if t.ticket_id != state["ticket_id"]]
    if others:
        st.caption("Open tickets")
        for t in others[:10]:
            first = (t.state.get("turns") or [""])[0]
            st.button(f"{t.ticket_id} · {first[:40]}", key=f"open_{t.ticket_id}", on_click=_open,
                      args=(t.ticket_id,), icon=":material/confirmation_number:", width="stretch")


def _fact_widget(name: str, spec, prefill, key: str, **callback) -> None:
    """One docs/interface.md §5 fact, as a widget suited to its type (`spec` is the guard's FieldSpec)."""
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
    """The facts the policy tests, each with where it came from, editable; the policy in force."""
    from sopilot.guard.facts import FIELDS
    from sopilot.guard.ticket_text import SOURCE_LABELS

    st.subheader("Ticket facts", anchor=False)
    suggestion = state["suggestion"]
    if suggestion is None:
        st.caption("Read from the ticket as you paste it: priority, amount and the facts its policy tests. "
                   "Start a line with “Note:” for your own facts. Change one and the decision follows at once.")
        return
    n = st.session_state["n"]
    chosen = state["policy"] if state["policy_set"] else suggestion.sop_id
    options = [None, *policies.policies]
    if chosen not in options:
        options.insert(1, chosen)
    key = f"policy_{n}"
    st.selectbox("Policy", options, index=options.index(chosen), key=key,
                 on_change=_choose_policy, args=(key, settings),
                 format_func=lambda p: "— no SOP matched —" if p is None else
                 f"{p} · {policies.policies[p].title}" if p in policies.policies else p)
    if state["error"]:
        st.error(state["error"], icon=":material/error:")
    facts = _facts(state)
    policy = policies.get(chosen)
    names = ["priority", "amount", *sorted((policy.facts if policy else set()) - {"priority", "amount"})]
    for name in names:
        key = f"fact_{n}_{name}"
        value, source, evidence = facts.get(name, (None, None, None))
        if isinstance(value, str) and FIELDS[name].kind == "money":
            value = value.replace("USD ", "$")
        _fact_widget(name, FIELDS[name], value, key, on_change=_set_fact, args=(name, key, settings))
        if source:
            icon = ":material/person:" if source == "agent" else ":material/format_quote:"
            st.caption(f"{icon} {SOURCE_LABELS[source]} · “{evidence}”")
    st.text_area("Agent note", key=f"note_{n}", value=state["note"], height=68,
                 on_change=_set_note, args=(f"note_{n}", settings),
                 help="Facts you know from your own checks (“identity verified”, “priority high”).")


def _set_note(key: str, settings) -> None:
    state = st.session_state[STATE]
    state["note"] = st.session_state[key] or ""
    _redo(settings, changed={"note": state["note"]})


# ---- the reply panel ------------------------------------------------------------------------------

REPLY_LABEL = "Reply to the customer (editable)"


def _suggested_text(suggestion, settings) -> str:
    from sopilot.suggest.composer import sign

    return sign(suggestion.reply, settings.agent_signature, _agent())


def _mark_sent(settings, suggestion, text: str, channel: Channel) -> None:
    from sopilot import audit

    state = st.session_state[STATE]
    with components.edge(stop=False):
        from sopilot.guard.result import guard_decision

        if not guard_decision(suggestion.guard.decision, text).verdict.passed:
            raise UserError("the guard blocks this reply: fix it, or override with a written justification")
        number = components.helpdesk_ticket(settings, state["ticket_id"])
        if channel == "inserted_into_ticket" and number is not None:
            components.insert_reply(settings, number, text)
        event = audit.record_sent(settings, suggestion, text=text, agent=_agent(), ticket_id=state["ticket_id"],
                                  channel=channel, action_id=_action("send", suggestion.latency_ms, text))
        state["sent"] = (f"{'Inserted into the ticket' if channel == 'inserted_into_ticket' else 'Marked as sent'}: "
                         f"audit event {event.id} ({event.send_mode}, guard verdict {event.verdict}).")
        _save()


def _use_alternative(box_key: str, alternative: str, decision) -> None:
    """Put the compliant reply in the box, inside the agent's greeting and sign-off when those pass the guard."""
    from sopilot.guard.result import guard_decision

    from sopilot.suggest.composer import frame, reframe

    typed = st.session_state[box_key]
    greeting, _, _ = frame(typed)
    candidates = [reframe(alternative, typed), reframe(alternative, f"{greeting}\n\nx"), alternative]
    st.session_state[box_key] = next((c for c in candidates if guard_decision(decision, c).verdict.passed),
                                     alternative)


def _reply_panel(state: dict, settings, policies) -> None:
    """The guarded reply, re-checked as it is typed; the one-click compliant alternative; send and override."""
    from sopilot.guard.result import guard_decision

    from sopilot import audit

    st.subheader("Suggested reply", anchor=False)
    suggestion = state["suggestion"]
    if suggestion is None:
        st.caption("The guarded reply to the customer appears here, with the guard's verdict on every edit.")
        return
    pending = _unconfirmed(state, policies)
    if pending:
        facts = _facts(state)
        listed = ", ".join(f"{n.replace('_', ' ')} = {facts[n][0]}" for n in pending)
        st.warning(f"This decision automates on what only the customer said: **{listed}**. Check it, then "
                   "confirm, before the reply is offered.", icon=":material/fact_check:")
        st.button("Confirm these facts", key=f"confirm_{st.session_state['n']}", type="primary",
                  icon=":material/task_alt:", on_click=_confirm, args=(pending, settings), shortcut="Alt+F")
        return
    draft, n = suggestion.draft, st.session_state["n"]
    st.caption(f"Drafted by {'model ' + draft.model if draft.producer == 'llm' else 'the offline composer'}"
               + (f" (the LLM failed: {draft.fallback_reason})" if draft.fallback_reason else ""))
    if suggestion.blocked_reason:
        st.warning(f"The guard blocked the draft ({suggestion.blocked_reason}); its compliant reply replaces it.",
                   icon=":material/shield:")
    suggested = _suggested_text(suggestion, settings)
    key = f"reply_{n}_{hashlib.sha256(suggested.encode()).hexdigest()[:10]}"
    if key not in st.session_state:
        st.session_state[key] = suggested
    text = st.text_area(REPLY_LABEL, key=key, height=260)
    _live_check(REPLY_LABEL)
    result = guard_decision(suggestion.guard.decision, text)
    blocked = not result.verdict.passed
    if blocked:
        st.error("The guard blocks this text:\n" + "\n".join(
            f"- `{v.code}`: {v.message} (“{v.evidence}”)" for v in result.verdict.violations), icon=":material/block:")
        with components.edge(stop=False):
            audit.record_edit_blocked(settings, suggestion, text=text, agent=_agent(), ticket_id=state["ticket_id"],
                                      action_id=_action("blocked", text))
        st.button("Use the compliant reply", key=f"take_{n}", type="primary", icon=":material/verified_user:",
                  on_click=_use_alternative, args=(key, result.reply, suggestion.guard.decision), shortcut="Alt+A",
                  help="The guard's wording, inside your greeting and sign-off (Alt+A).")
    elif text.strip() != suggested.strip():
        st.success("The guard passes your edit.", icon=":material/verified_user:")
    st.caption("Copy")
    if blocked:
        st.code("(blocked text is never offered for copying: fix it or take the compliant reply)", language=None)
    else:
        st.code(text, language=None, wrap_lines=True)
    inserting = components.helpdesk_ticket(settings, state["ticket_id"]) is not None
    channel: Channel = "inserted_into_ticket" if inserting else "marked_sent"
    label = "Insert into ticket" if channel == "inserted_into_ticket" else "Mark as sent"
    st.button(label, key=f"send_{n}", type="primary", icon=":material/send:", disabled=blocked or bool(state["sent"]),
              on_click=_mark_sent, args=(settings, suggestion, text, channel), shortcut="Alt+S",
              help=("The guard blocks this text." if blocked else f"{label} (Alt+S): recorded once in the audit log."))
    if state["sent"]:
        st.success(state["sent"], icon=":material/task_alt:")
    who = components.identity()
    if blocked and components.may(who, "override"):
        with st.expander("Override", expanded=True, icon=":material/gavel:"):
            st.caption("Send this text against the guard. Handbook §4 and §7: every override needs a business "
                       "justification; it is logged with its violations and audited weekly.")
            why = st.text_area("Justification", key=f"why_{n}")
            if st.button("Override and send", key=f"override_{n}"):
                with components.edge(stop=False):
                    event = audit.record_override(settings, suggestion, text=text, justification=why or "",
                                                  agent=_agent(), ticket_id=state["ticket_id"],
                                                  action_id=_action("override", text, why))
                    state["sent"] = f"Overridden and sent: audit event {event.id}, violations recorded."
                    _save()
                    st.rerun()
    elif blocked:
        st.caption("Overriding the guard needs a senior agent, team lead or admin (handbook §7): sign in, or ask one.")


# ---- the page -----------------------------------------------------------------------------------

def render() -> None:
    """The Chat page."""
    settings = components.settings()
    state = _state()
    prompt = st.chat_input("Paste the customer's message, or type a note such as “locked out after 5 failed "
                           "logins, high priority”", key="prompt")
    with components.edge():
        retriever = components.retriever(settings)
        policies = components.policies(settings)
    if state["suggestion"] is not None and settings.stopped != state["stopped"]:
        _redo(settings, changed={"emergency_stop": sorted(settings.stopped)})
    with st.sidebar:
        _sign_in_panel(settings)
        _tickets_panel(state, settings)
        _facts_panel(state, settings, policies)
    chat, reply = st.columns([3, 2], gap="large")
    with chat:
        st.title("sopilot", anchor=False)
        st.caption(f"Ticket **{state['ticket_id']}**")
        if prompt:
            why = _looks_like_another_ticket(state, prompt, retriever)
            if why:
                state["pending"] = {"prompt": prompt, "why": why}
            else:
                _take(prompt, settings, join=True)
            st.rerun()
        if not state["turns"]:
            st.caption("Paste what the customer wrote, or ask a policy question such as “customer double charged "
                       "$180, can I refund?”. You get the SOP, the policy decision and a guarded reply.")
        for turn in state["turns"]:
            with st.chat_message("user"):
                st.markdown(turn["text"])
        if state["suggestion"] is not None:
            with st.chat_message("assistant"):
                _answer(state["suggestion"], f"step_{st.session_state['n']}", settings, retriever)
        if state["pending"]:
            pending = state["pending"]
            with st.container(border=True, key="another_ticket"):
                st.warning(f"This message may be a different ticket: {pending['why']}.", icon=":material/call_split:")
                left, right = st.columns(2)
                left.button("Start a new ticket with it", key="pending_new", type="primary",
                            on_click=_take, args=(pending["prompt"], settings), kwargs={"join": False})
                right.button(f"Add it to {state['ticket_id']}", key="pending_join",
                             on_click=_take, args=(pending["prompt"], settings), kwargs={"join": True})
    with reply:
        _reply_panel(state, settings, policies)


if __name__ == "__main__":
    render()
