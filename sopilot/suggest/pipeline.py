"""The suggested-reply pipeline: retrieve → guard decision → draft → guard verdict → reply.

1. Retrieve: the SOP the ticket is about (or the ticket's own `sop_id`, when the agent knows it).
   A best SOP whose calibrated match probability is below `match_threshold` is no match: the decision
   then goes to the Policy Exception queue instead of borrowing a policy that does not fit.
2. Decide: the guard decides from the ticket's facts; the customer's words never change that.
3. Draft: in the strict form, the LLM writes only the words around the reply (greeting, opening,
   closing) as structured output, and the committing sentences (decision, team, SLA, amounts) are
   composed by sopilot from the decision; LLM words that commit to anything send the draft to the
   offline composer, as do no LLM, a failure, a timeout or garbage (the reason is kept).
4. Verdict: the guard checks the draft; a blocked draft is replaced by the guard's compliant reply,
   with the reason. The reply is never anything the guard has not passed.

Every suggestion carries the exact SOP lines it rests on. The retriever (with its embedding model)
and the LLM client are loaded once per process, so the UI and benchmarks stay warm.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from sopilot.core.errors import InputError, LLMError
from sopilot.guard.check import check_own_words
from sopilot.guard.decide import Decision, decide
from sopilot.guard.facts import Ticket, parse_ticket
from sopilot.guard.policy import Policies
from sopilot.guard.result import GuardResult, guard_decision
from sopilot.guard.versions import policies_in_force, ticket_date
from sopilot.retriever.match import best_match
from sopilot.suggest import resources
from sopilot.suggest.citations import Citation, cite, context_sections, decision_citations, fit, locate, render_context
from sopilot.suggest.resources import forget as forget_retriever
from sopilot.suggest.resources import retriever as get_retriever
from sopilot.suggest.resources import warm

if TYPE_CHECKING:
    from sopilot.core.settings import Settings
    from sopilot.retriever.hybrid import Hit, Retriever
    from sopilot.suggest.llm import ChatLLM

__all__ = ["Draft", "Retrieval", "Suggestion", "SuggestionStream", "forget_retriever", "get_retriever", "suggest",
           "suggest_stream", "warm"]

Producer = Literal["offline", "llm"]
PROMPT = "reply"
PROGRESS = "Drafting a reply; it appears here once the guard has checked it.\n\n"
"""The first piece of an LLM stream: nothing the guard has not passed is ever streamed."""
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
class Retrieval:
    """What retrieval found for the ticket and which SOP the suggestion rests on."""

    query: str
    """The text searched (the customer's message)."""
    hits: tuple[Hit, ...]
    """Ranked SOPs (docs/interface.md §3); empty when the ticket named its `sop_id`."""
    sop_id: str | None
    """The SOP chosen: the ticket's own `sop_id`, the best match, or None when nothing matched."""
    given_sop_id: str | None
    """The `sop_id` the ticket named, if any."""
    min_confidence: float
    matched: bool = False
    """Whether the suggestion rests on an SOP (the ticket's own, or a calibrated match)."""
    match_probability: float | None = None
    """The calibrated probability that the best SOP matches; None when the ticket named its SOP."""
    language: str | None = None
    """The ticket's language (ISO 639-1), when it was searched."""
    read_as: str | None = None
    """The text the retriever searched, after quotes, signatures and greetings were set aside."""

    def to_json(self) -> dict[str, Any]:
        """The `retrieval` block of `suggest --json`."""
        return {"query": self.query, "hits": [h.to_json() for h in self.hits], "sop_id": self.sop_id,
                "given_sop_id": self.given_sop_id, "min_confidence": self.min_confidence, "matched": self.matched,
                "match_probability": None if self.match_probability is None else round(self.match_probability, 4),
                "language": self.language, "read_as": self.read_as}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Suggestion:
    """A guarded reply suggestion for one ticket."""

    ticket: Mapping[str, Any]
    """The ticket as given (docs/interface.md §5)."""
    retrieval: Retrieval
    guard: GuardResult
    """The guard's decision, its verdict on the draft, and the reply that may be shown (docs/interface.md §6)."""
    draft: Draft
    citations: tuple[Citation, ...]
    """The SOP sections the reply rests on, with source file, line range and text."""
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
        return self.retrieval.sop_id

    @property
    def reply(self) -> str:
        """What may be shown to the customer: the draft when it passed, else the guard's replacement."""
        return self.guard.reply

    @property
    def blocked_reason(self) -> str | None:
        """Why the draft was replaced (the guard's violations), or None when it passed."""
        if self.guard.verdict.passed:
            return None
        return "; ".join(f"{v.code}: {v.message}" for v in self.guard.verdict.violations)

    def to_json(self) -> dict[str, Any]:
        """The `suggest --json` document (the decision appears as `decision` and, as interface §6 names it, `guard`)."""
        decision = self.guard.to_json()
        return {"retrieval": self.retrieval.to_json(), "decision": decision, "guard": decision,
                "draft": self.draft.to_json(), "reply": self.reply, "blocked_reason": self.blocked_reason,
                "citations": [c.to_json() for c in self.citations], "notes": list(self.notes),
                "prompt_version": self.prompt_version, "latency_ms": round(self.latency_ms, 1),
                "timings": {k: round(v, 1) for k, v in self.timings.items()}}


# ---- the stages -------------------------------------------------------------------------------------

@dataclasses.dataclass(kw_only=True)
class _Run:
    """One ticket on its way through the pipeline: parsed once, decided once, checked once."""

    ticket: Mapping[str, Any]
    parsed: Ticket
    settings: Settings
    policies: Policies
    retriever: Retriever
    llm: ChatLLM | None
    started: float
    query: str = ""
    hits: list[Hit] = dataclasses.field(default_factory=list)
    sop: Any = None
    chosen: str | None = None
    decision: Decision | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    prompt_version: str | None = None
    context: list[Citation] = dataclasses.field(default_factory=list)
    read: Any = None
    """The retriever's reading of the ticket (language, what was searched), when it searched."""

    def classify(self, _message: str) -> str | None:
        return self.chosen


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def validate_ticket(ticket: Any) -> Mapping[str, Any]:
    """The ticket when it is a JSON object with a non-empty `message`; else `InputError` saying what to give."""
    if not isinstance(ticket, Mapping):
        raise InputError('a ticket is a JSON object such as {"message": "I was charged twice"}')
    message = ticket.get("message")
    if not isinstance(message, str) or not message.strip():
        raise InputError('the ticket has no "message": give the customer\'s words as a string')
    return ticket


def _start(ticket: Any, settings: Settings, retriever: Retriever | None, llm: ChatLLM | None) -> _Run:
    """Validate, retrieve and decide."""
    started = time.perf_counter()
    ticket = validate_ticket(ticket)
    parsed = parse_ticket(ticket)
    run = _Run(ticket=ticket, parsed=parsed, settings=settings,
               policies=policies_in_force(ticket_date(ticket), settings.knowledge_dir),
               retriever=retriever or resources.retriever(settings),
               llm=llm if llm is not None else resources.llm(settings), started=started)
    run.query = parsed.message
    stage = time.perf_counter()
    if parsed.sop_id:
        run.sop = run.retriever.sops.get(parsed.sop_id)
        run.chosen = parsed.sop_id
        if run.sop is None:
            run.notes.append(f"sop_id {parsed.sop_id!r} is not in the index: the reply cites no SOP")
    else:
        found = run.retriever.retrieve(parsed.message, k=SEARCH_K)
        run.hits = list(found.hits)
        run.read = found
        match = best_match(run.hits, settings.match_threshold)
        if match is not None:
            run.sop, run.chosen = match.sop, match.sop_id
        else:
            best = run.hits[0] if run.hits else None
            seen = f"best {best.sop_id} at match probability {best.match_probability:.2f}" if best else "no hits"
            run.notes.append(f"no SOP matched at probability {settings.match_threshold:.2f} ({seen}): routed to the "
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
    from sopilot.prompts.template import fence, load_prompt
    from sopilot.suggest.llm import count_tokens

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
    """The guard's verdict on the draft (against the decision already made), and the suggestion."""
    assert run.decision is not None  # set by _start
    stage = time.perf_counter()
    result = guard_decision(run.decision, draft.text)
    run.timings["guard"] = _ms(stage)
    if not result.verdict.passed:
        citations = tuple(decision_citations(run.sop, result.decision, run.retriever.sops))
    read = run.read
    retrieval = Retrieval(query=run.query, hits=tuple(run.hits), sop_id=run.sop.sop_id if run.sop else None,
                          matched=run.sop is not None, match_probability=read.match_probability if read else None,
                          language=read.language if read else None, read_as=read.read_as if read else None,
                          given_sop_id=run.parsed.sop_id, min_confidence=run.settings.min_confidence)
    citations = tuple(dict.fromkeys(locate(c, run.settings.knowledge_dir) for c in citations))
    latency = _ms(run.started)
    run.timings["total"] = latency
    return Suggestion(ticket=run.ticket, retrieval=retrieval, guard=result, draft=draft, citations=citations,
                      notes=tuple(run.notes), prompt_version=run.prompt_version, latency_ms=latency,
                      timings=dict(run.timings))


def _strict_draft(run: _Run, answer: str) -> tuple[Draft, tuple[Citation, ...]]:
    """The strict form: the LLM's words around the sentences sopilot composes from the decision.

    The answer must be the structured `ReplyWords`; its words are checked as committing to nothing (no money,
    action, approval, amount or time frame). A malformed answer or committing words fall back to the offline
    composer, with the reason recorded.
    """
    from sopilot.guard.reply import compose_body
    from sopilot.suggest.llm import parse_words

    assert run.decision is not None and run.llm is not None
    try:
        words = parse_words(answer)
    except LLMError as exc:
        return _compose(run, str(exc))
    own = check_own_words(words.own_words, run.decision)
    if not own.passed:
        reason = "the LLM's own words commit: " + "; ".join(f"{v.code}: {v.message} ({v.evidence!r})"
                                                           for v in own.violations)
        return _compose(run, reason)
    opening = f"{words.opening} " if words.opening else ""
    text = "\n\n".join(part for part in (words.greeting, opening + compose_body(run.decision), words.closing) if part)
    return Draft(producer="llm", model=run.llm.model, text=text), _llm_citations(run)


def _llm_citations(run: _Run) -> tuple[Citation, ...]:
    return tuple(dict.fromkeys([*run.context, *decision_citations(run.sop, run.decision, run.retriever.sops)]))


# ---- public API -------------------------------------------------------------------------------------

def suggest(ticket: Mapping[str, Any], settings: Settings, *, retriever: Retriever | None = None,
            llm: ChatLLM | None = None, record: bool = False, agent: str | None = None) -> Suggestion:
    """A guarded reply suggestion for `ticket` (docs/interface.md §5).

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
                answer = run.llm.complete(messages, json_mode=True).strip()
            finally:
                run.timings["llm"] = _ms(call)
            draft, citations = _strict_draft(run, answer)
        except LLMError as exc:
            draft, citations = _compose(run, str(exc))
    suggestion = _finish(run, draft, citations)
    if record:
        from sopilot import audit

        audit.record_suggestion(settings, suggestion, agent=agent)
    return suggestion


class SuggestionStream:
    """Only guarded text, as a stream: a progress line while the LLM writes, then the reply the guard passed.

    Iterate it to the end (e.g. `st.write_stream(stream)`), then read `stream.suggestion`. Nothing the
    guard has not passed is ever yielded: with an LLM, the first piece is `PROGRESS` and the last is
    `suggestion.reply` (the LLM's words and any failure or block are in `suggestion.draft` and its notes);
    offline, the only piece is `suggestion.reply`.
    """

    def __init__(self, ticket: Mapping[str, Any], settings: Settings, *, retriever: Retriever | None = None,
                 llm: ChatLLM | None = None, record: bool = False, agent: str | None = None) -> None:
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
        else:
            yield PROGRESS
            stage = time.perf_counter()
            try:
                messages = _messages(run)
                run.timings["prompt"] = _ms(stage)
                call = time.perf_counter()
                try:
                    answer = "".join(run.llm.stream(messages, json_mode=True)).strip()
                finally:
                    run.timings["llm"] = _ms(call)
                draft, citations = _strict_draft(run, answer)
            except LLMError as exc:
                draft, citations = _compose(run, str(exc))
        self.suggestion = _finish(run, draft, citations)
        yield self.suggestion.reply
        if self._record:
            from sopilot import audit

            audit.record_suggestion(self._settings, self.suggestion, agent=self._agent)


def suggest_stream(ticket: Mapping[str, Any], settings: Settings, *, retriever: Retriever | None = None,
                   llm: ChatLLM | None = None, record: bool = False, agent: str | None = None) -> SuggestionStream:
    """Like `suggest`, streaming the draft: iterate the result for text pieces, then read `.suggestion`.

    Retrieval and the decision run here, before the first piece (bad input raises here).
    """
    return SuggestionStream(ticket, settings, retriever=retriever, llm=llm, record=record, agent=agent)
