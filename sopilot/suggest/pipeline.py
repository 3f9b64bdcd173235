"""The suggested-reply pipeline: retrieve → guard decision → draft → guard verdict → reply.

1. Retrieve: the SOP the ticket is about (or the ticket's own `sop_id`, when the agent knows it).
   A best hit below `min_confidence` is no match: the decision then goes to the Policy Exception
   queue instead of borrowing a policy that does not fit.
2. Decide: the guard decides from the ticket's facts; the customer's words never change that.
3. Draft: the LLM phrases the decision (grounded in the SOP's rule, response template and
   procedure, within the context token budget), or the offline composer does when no LLM is
   configured or the LLM fails, times out or answers garbage (the reason is kept).
4. Verdict: the guard checks the draft; a blocked draft is replaced by the guard's compliant reply,
   with the reason. The reply is never anything the guard has not passed.

Every suggestion carries the exact SOP lines it rests on. The retriever (with its embedding model)
and the LLM client are loaded once per process, so the UI and benchmarks stay warm.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any, Literal

from sopilot.suggest.citations import Citation, cite, context_sections, decision_citations, fit, locate, render_context
from sopilot.core.errors import InputError, LLMError

Producer = Literal["offline", "llm"]
PROMPT = "reply"
SEARCH_K = 5


@dataclasses.dataclass(frozen=True, kw_only=True)
class Draft:
    """The draft reply before the guard's verdict, and what produced it."""

    producer: Producer
    model: str | None
    """The LLM's model name; None for the offline composer."""
    text: str
    fallback_reason: str | None = None
    """Why the LLM's draft was not used (the composer answered instead); None when it was, or no LLM is set."""

    def to_json(self) -> dict[str, Any]:
        """The `draft` block of `suggest --json`."""
        return {"producer": self.producer, "model": self.model, "text": self.text,
                "fallback_reason": self.fallback_reason}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Suggestion:
    """A guarded reply suggestion for one ticket."""

    ticket: Mapping[str, Any]
    """The ticket as given (CONTRACT §5)."""
    retrieval: Mapping[str, Any]
    """`{"query", "hits": [CONTRACT §3 hits], "sop_id", "min_confidence"}`: what retrieval found and chose."""
    decision: Mapping[str, Any]
    """The guard's decision and verdict on the draft (CONTRACT §6), `reply` included."""
    draft: Draft
    reply: str
    """What may be shown to the customer: the draft when it passed, else the guard's replacement."""
    citations: tuple[Citation, ...]
    """The SOP sections the reply rests on, with source file, line range and text."""
    blocked_reason: str | None = None
    """Why the draft was replaced (the guard's violations), or None."""
    notes: tuple[str, ...] = ()
    """What an agent should know: no SOP matched, an unknown sop_id, an LLM fallback."""
    prompt_version: str | None = None
    """The reply prompt's version, when an LLM was asked."""
    latency_ms: float = 0.0
    timings: Mapping[str, float] = dataclasses.field(default_factory=dict)
    """Milliseconds per stage: retrieve, decide, draft, llm (the LLM's own time), guard."""

    @property
    def sop_id(self) -> str | None:
        """The SOP the reply is grounded in, or None when nothing matched."""
        return self.retrieval.get("sop_id")

    def to_json(self) -> dict[str, Any]:
        """The `suggest --json` document."""
        decision = dict(self.decision)
        return {"retrieval": dict(self.retrieval), "decision": decision, "guard": decision,
                "draft": self.draft.to_json(), "reply": self.reply, "blocked_reason": self.blocked_reason,
                "citations": [c.to_json() for c in self.citations], "notes": list(self.notes),
                "prompt_version": self.prompt_version, "latency_ms": round(self.latency_ms, 1),
                "timings": {k: round(v, 1) for k, v in self.timings.items()}}


# ---- process-wide resources ---------------------------------------------------------------------

_RETRIEVERS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def _retriever_key(settings) -> tuple:
    return (str(settings.data_dir), settings.chroma_url, settings.collection, settings.embedding_model)


def get_retriever(settings):
    """The retriever for these settings, loaded once per process (it holds the embedding model)."""
    key = _retriever_key(settings)
    with _LOCK:
        retriever = _RETRIEVERS.get(key)
    if retriever is None:
        from sopilot.retriever.hybrid import load

        retriever = load(settings)
        with _LOCK:
            retriever = _RETRIEVERS.setdefault(key, retriever)
    return retriever


def forget_retriever(settings) -> None:
    """Drop the cached retriever (after a re-ingest, so the next suggestion reads the new index)."""
    with _LOCK:
        _RETRIEVERS.pop(_retriever_key(settings), None)


def warm(settings) -> None:
    """Load everything a suggestion needs now rather than on the first ticket."""
    from sopilot.guard.policy import policies_for

    retriever = get_retriever(settings)
    retriever.embedder.embed_query("warm up")
    policies_for(settings)
    from sopilot.suggest import llm as llm_module

    if llm_module.from_settings(settings) is not None:
        from sopilot.prompts.template import load_prompt

        load_prompt(PROMPT)
        llm_module.count_tokens("warm up")


# ---- the stages -------------------------------------------------------------------------------------

@dataclasses.dataclass(kw_only=True)
class _Run:
    """One ticket on its way through the pipeline."""

    ticket: Mapping[str, Any]
    parsed: Any
    settings: Any
    policies: Any
    retriever: Any
    llm: Any
    started: float
    query: str = ""
    hits: list = dataclasses.field(default_factory=list)
    sop: Any = None
    chosen: str | None = None
    decision: Any = None
    notes: list[str] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    prompt_version: str | None = None
    context: list[Citation] = dataclasses.field(default_factory=list)

    def classify(self, _message: str) -> str | None:
        return self.chosen


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _validate(ticket: Any) -> Mapping[str, Any]:
    if not isinstance(ticket, Mapping):
        raise InputError('a ticket is a JSON object such as {"message": "I was charged twice"}')
    message = ticket.get("message")
    if not isinstance(message, str) or not message.strip():
        raise InputError('the ticket has no "message": give the customer\'s words as a string')
    return ticket


def _start(ticket: Any, settings, retriever, llm) -> _Run:
    """Validate, retrieve and decide."""
    from sopilot.guard.decide import decide
    from sopilot.guard.facts import parse_ticket
    from sopilot.guard.policy import policies_for
    from sopilot.suggest import llm as llm_module

    started = time.perf_counter()
    ticket = _validate(ticket)
    parsed = parse_ticket(ticket)
    run = _Run(ticket=ticket, parsed=parsed, settings=settings, policies=policies_for(settings),
               retriever=retriever or get_retriever(settings),
               llm=llm if llm is not None else llm_module.from_settings(settings), started=started)
    run.query = parsed.message
    stage = time.perf_counter()
    if parsed.sop_id:
        run.sop = run.retriever.sops.get(parsed.sop_id)
        run.chosen = parsed.sop_id
        if run.sop is None:
            run.notes.append(f"sop_id {parsed.sop_id!r} is not in the index: the reply cites no SOP")
    else:
        run.hits = run.retriever.search(parsed.message, k=SEARCH_K)
        best = run.hits[0] if run.hits else None
        if best is not None and best.dense >= settings.min_confidence:
            run.sop, run.chosen = best.sop, best.sop_id
        else:
            seen = f"best {best.sop_id} at {best.dense:.2f}" if best else "no hits"
            run.notes.append(f"no SOP matched above confidence {settings.min_confidence:.2f} ({seen}): routed to the "
                             "Policy Exception queue for manual review by a senior support agent (handbook §4)")
    run.timings["retrieve"] = _ms(stage)
    stage = time.perf_counter()
    run.decision = decide(parsed, run.policies, classify=run.classify, stopped=settings.stopped)
    run.timings["decide"] = _ms(stage)
    return run


def _facts(ticket: Mapping[str, Any]) -> str:
    lines = [f"- {name}: {json.dumps(value, default=str, ensure_ascii=False)}"
             for name, value in ticket.items() if name != "message"]
    return "\n".join(lines) or "(none given)"


def _decision_text(decision) -> str:
    from sopilot.guard.reply import compose_reply

    money = decision.remuneration
    amount = f" of ${money.amount:,.2f}" if money.amount is not None else ""
    lines = [f"- outcome: {decision.outcome}", f"- action: {decision.action}",
             f"- handled by: {decision.escalate_to or 'this reply (automated)'}",
             f"- time frame (SLA): {decision.sla or 'not stated: promise no time frame'}",
             f"- approval required: {'yes' if decision.approval_required else 'no'}",
             f"- remuneration: {money.type}{amount}" + ("" if decision.allowance.kinds else
                                                        " (promise no refund, credit or replacement)"),
             f"- compliant wording (rephrase it, add no commitment): {compose_reply(decision)}"]
    return "\n".join(lines)


def _messages(run: _Run) -> list:
    """The chat messages for the LLM, with the SOP context trimmed to the token budget."""
    from sopilot.suggest.llm import count_tokens
    from sopilot.prompts.template import fence, load_prompt

    prompt = load_prompt(PROMPT)
    run.prompt_version = prompt.version
    sections = [locate(cite(run.sop, s), run.settings.knowledge_dir) for s in context_sections(run.sop, run.decision)] \
        if run.sop else []
    run.context = fit(sections, run.settings.llm_context_tokens, count_tokens)
    return prompt.render(ticket_facts=_facts(run.ticket), customer_message=fence(run.parsed.message),
                         sop_title=run.sop.title if run.sop else "(none)",
                         sop_id=run.sop.sop_id if run.sop else "(none)",
                         sop_context=render_context(run.context), decision=_decision_text(run.decision))


def _compose(run: _Run, reason: str | None) -> tuple[Draft, tuple[Citation, ...]]:
    from sopilot.suggest.composer import compose

    stage = time.perf_counter()
    composition = compose(run.ticket, run.decision, run.sop, sops=run.retriever.sops)
    run.timings["compose"] = _ms(stage)
    if reason:
        run.notes.append(f"the LLM draft was not used ({reason}): the offline composer drafted the reply")
    return Draft(producer="offline", model=None, text=composition.text, fallback_reason=reason), composition.citations


def _finish(run: _Run, draft: Draft, citations: tuple[Citation, ...]) -> Suggestion:
    """The guard's verdict on the draft, and the suggestion."""
    from sopilot.guard.result import guard_ticket

    stage = time.perf_counter()
    result = guard_ticket(run.parsed, run.policies, reply=draft.text, classify=run.classify,
                          stopped=run.settings.stopped)
    run.timings["guard"] = _ms(stage)
    blocked = None
    if not result.verdict.passed:
        blocked = "; ".join(f"{v.code}: {v.message}" for v in result.verdict.violations)
        citations = tuple(decision_citations(run.sop, result.decision, run.retriever.sops))
    retrieval = {"query": run.query, "hits": [h.to_json() for h in run.hits], "sop_id": run.sop.sop_id if run.sop
                 else None, "given_sop_id": run.parsed.sop_id, "min_confidence": run.settings.min_confidence}
    citations = tuple(dict.fromkeys(locate(c, run.settings.knowledge_dir) for c in citations))
    latency = _ms(run.started)
    run.timings["total"] = latency
    return Suggestion(ticket=run.ticket, retrieval=retrieval, decision=result.to_json(), draft=draft,
                      reply=result.reply, citations=citations, blocked_reason=blocked,
                      notes=tuple(run.notes), prompt_version=run.prompt_version, latency_ms=latency,
                      timings=dict(run.timings))


def _llm_citations(run: _Run) -> tuple[Citation, ...]:
    return tuple(dict.fromkeys([*run.context, *decision_citations(run.sop, run.decision, run.retriever.sops)]))


# ---- public API -------------------------------------------------------------------------------------

def suggest(ticket: Mapping[str, Any], settings, *, retriever=None, llm=None, record: bool = False,
            agent: str | None = None) -> Suggestion:
    """A guarded reply suggestion for `ticket` (CONTRACT §5).

    Args:
        ticket: the ticket; only `message` is required.
        settings: the configuration (index, LLM, confidence threshold, Emergency Stop).
        retriever: a loaded retriever; default: the process-wide one for `settings`.
        llm: a `sopilot.suggest.llm.ChatLLM`; default: the one `settings` configure (None: offline composer).
        record: also write it to the audit log (`suggestion_made`, and `reply_blocked` if blocked).
        agent: who asked, for the audit log.

    Raises:
        InputError: the ticket is not usable (no message, a bad field value).
    """
    run = _start(ticket, settings, retriever, llm)
    if run.llm is None:
        draft, citations = _compose(run, None)
    else:
        stage = time.perf_counter()
        try:
            messages = _messages(run)
            run.timings["prompt"] = _ms(stage)
            call = time.perf_counter()
            try:
                text = run.llm.complete(messages).strip()
            finally:
                run.timings["llm"] = _ms(call)
            draft, citations = Draft(producer="llm", model=run.llm.model, text=text), _llm_citations(run)
        except LLMError as exc:
            draft, citations = _compose(run, str(exc))
    suggestion = _finish(run, draft, citations)
    if record:
        from sopilot import audit

        audit.record_suggestion(settings, suggestion, agent=agent)
    return suggestion


class SuggestionStream:
    """The draft as it is written (an iterator of text pieces), then `suggestion`, the guarded result.

    Iterate it to the end (e.g. `st.write_stream(stream)`), then read `stream.suggestion`. The
    pieces are the draft, not the reply: when the guard blocks the draft, or the LLM fails half way
    and the offline composer takes over, a last piece says so and `suggestion.reply` is what may be
    sent.
    """

    def __init__(self, ticket: Mapping[str, Any], settings, *, retriever=None, llm=None, record: bool = False,
                 agent: str | None = None) -> None:
        self._run = _start(ticket, settings, retriever, llm)
        self._record, self._agent, self._settings = record, agent, settings
        self.suggestion: Suggestion | None = None
        self._started = False

    def __iter__(self) -> Iterator[str]:
        if self._started:
            raise InputError("a suggestion stream can be read only once: call suggest_stream again")
        self._started = True
        run = self._run
        if run.llm is None:
            draft, citations = _compose(run, None)
            yield draft.text
        else:
            pieces: list[str] = []
            stage = time.perf_counter()
            try:
                messages = _messages(run)
                run.timings["prompt"] = _ms(stage)
                call = time.perf_counter()
                try:
                    for piece in run.llm.stream(messages):
                        pieces.append(piece)
                        yield piece
                finally:
                    run.timings["llm"] = _ms(call)
                draft = Draft(producer="llm", model=run.llm.model, text="".join(pieces).strip())
                citations = _llm_citations(run)
            except LLMError as exc:
                draft, citations = _compose(run, str(exc))
                yield (f"\n\n[LLM failed: {exc}. Offline draft:]\n\n" if pieces else "") + draft.text
        self.suggestion = _finish(run, draft, citations)
        if self.suggestion.blocked_reason:
            yield "\n\n[The guard blocked this draft; the compliant reply replaces it.]"
        if self._record:
            from sopilot import audit

            audit.record_suggestion(self._settings, self.suggestion, agent=self._agent)


def suggest_stream(ticket: Mapping[str, Any], settings, *, retriever=None, llm=None, record: bool = False,
                   agent: str | None = None) -> SuggestionStream:
    """Like `suggest`, streaming the draft: iterate the result for text pieces, then read `.suggestion`.

    Retrieval and the decision run here, before the first piece (bad input raises here).
    """
    return SuggestionStream(ticket, settings, retriever=retriever, llm=llm, record=record, agent=agent)


# ---- command line -------------------------------------------------------------------------------------

def _read_ticket(path: str) -> Mapping[str, Any]:
    from sopilot.core.jsonl import read_text

    text = read_text(path, "ticket file")
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise InputError(f"ticket file {path!r}: not valid JSON ({exc.msg} at line {exc.lineno} column "
                         f"{exc.colno})") from None
    if isinstance(data, dict) and isinstance(data.get("ticket"), dict):
        data = data["ticket"]
    return _validate(data)


def suggest_command(*, ticket: str, as_json: bool, settings) -> int:
    """`sopilot suggest --ticket FILE [--json]`: one guarded suggestion, recorded in the audit log."""
    suggestion = suggest(_read_ticket(ticket), settings, record=True)
    if as_json:
        sys.stdout.write(json.dumps(suggestion.to_json(), ensure_ascii=False, default=str) + "\n")
        return 0
    decision = suggestion.decision
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
