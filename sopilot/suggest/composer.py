"""The offline composer: a deterministic reply when no LLM is configured, or when the LLM fails.

It states nothing of its own. What happens next comes from the guard's decision, phrased by the
guard's own compliant wording (`guard.compose_reply`, built from the decided action, team, SLA and
granted remuneration); for SOPs that carry a response template (the customer operations pack)
it comes from that template, whose agent instructions ("Ask for confirmation to proceed") are
turned into sentences to the customer ("Please confirm that you would like us to proceed.").
Around that it puts what a good agent adds: a greeting by name, what we understood (the SOP's
subject and the ticket's facts), the ticket reference, and a sign-off. Same input, same reply.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from sopilot.suggest.citations import Citation, cite, decision_citations

SIGN_OFF = "Kind regards,\nThe Support Team"
_NAME_FIELDS = ("customer_name", "name", "customer", "requester_name")
_TICKET_ID_FIELDS = ("ticket_id", "id", "ticket")
_YOUR_ENDINGS = ("request", "inquiry", "enquiry", "report", "dispute", "issue", "query", "complaint")
_SLASH_LIST = re.compile(r"\b([\w-]+(?:/[\w-]+)+)\b")
_VERBS = ("acknowledge", "summarize", "summarise", "restate", "ask", "request", "confirm", "explain", "suggest",
          "propose", "provide", "offer", "note", "tell", "inform", "notify", "follow", "verify", "check", "after",
          "if", "create", "raise", "escalate", "commit", "flag", "forward")
_ACKNOWLEDGE = re.compile(r"(?:acknowledge|summari[sz]e|restate)\b", re.IGNORECASE)
_DETERMINERS = {"the", "your", "a", "an", "any", "that", "this", "which", "whether", "how", "what", "all", "some"}
_CLAUSE_SPLIT = re.compile(r"\s+and\s+(?=(?:" + "|".join(_VERBS) + r")\b)", re.IGNORECASE)
_FACT_WORDS: Mapping[str, tuple[str, ...]] = {
    "quantity": ("quantity", "licenses", "licences", "seats", "count", "number"),
    "roles": ("roles", "role", "user_role", "requested_role"),
    "role": ("role", "roles", "user_role", "requested_role"),
    "urgency": ("urgency", "priority"),
    "feature": ("feature",),
    "account": ("account", "account_id"),
    "scope": ("scope",),
    "ids": ("ids", "job_numbers", "invoice_ids"),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Composition:
    """A composed reply and the SOP sections it was built from."""

    text: str
    citations: tuple[Citation, ...]


def _field(ticket: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = ticket.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return " ".join(str(value).split())
    return None


def _slashes(text: str) -> str:
    """`refresh/update/sync` → `refresh, update or sync`."""
    def join(match: re.Match[str]) -> str:
        parts = match.group(1).split("/")
        return ", ".join(parts[:-1]) + " or " + parts[-1]

    return _SLASH_LIST.sub(join, text)


_DOC_WORDS = re.compile(r"""
    \s+(?:sops?|procedures?|policy|policies|process(?:es)?|guidelines?|workflows?|playbooks?|
         rules?|standards?|manual|faq)$                                           # "gift card support sops"
""", re.VERBOSE | re.IGNORECASE)
_AWKWARD = re.compile(r"""
    \b(?:of|for|to|not|no|by|with|from|via|per|without|identification|escalation|registration|provisioning|
         definitions?|report|reports|cycle|loop|control)\b                          # "right to be forgotten"
""", re.VERBOSE)
_TOPIC_WORDS = 5
"""A subject longer than this reads as a document title, not as what a customer wrote about."""


def topic(sop) -> str:
    """What the ticket is about, from the SOP's title: "your request to add additional licenses", or "".

    A title that does not read as a customer's subject (too long, a document word, a clause such as
    "right to be forgotten") gives "": the reply then thanks without naming it, so that any SOP,
    shipped or uploaded, reads well.
    """
    title = re.sub(r"\((s)\)", r"\1", sop.title)
    title = re.sub(r"\s*\([^)]*\)", "", title).replace("&", "and")
    title = re.sub(r"\s*[-–—:]\s.*$", "", title)
    title = re.sub(r"\s*/\s*", "/", title)
    title = _slashes(title)
    words = [w if (w.isupper() and len(w) > 1) else w.lower() for w in title.split()]
    text = " ".join(words)
    steps = re.match(r"steps taken (to|for) (.+)$", text)
    if steps:
        return f"your request to {steps.group(2)}" if steps.group(1) == "to" else f"your {steps.group(2)} request"
    while _DOC_WORDS.search(text):
        text = _DOC_WORDS.sub("", text)
    if not text or len(text.split()) > _TOPIC_WORDS or _AWKWARD.search(text) or text.count(" and ") + \
            text.count(" or ") > 1:
        return ""
    if text.endswith(_YOUR_ENDINGS):
        return f"your {text}"
    return f"your {text} query"


def _amount(ticket: Mapping[str, Any]) -> str | None:
    """The `amount` field formatted "$420.00"; an amount only written in the message is never restated.

    The guard reads the largest amount in the message for caution, but that text is the customer's
    (and may be an injected "$5000"): a reply restates only what the helpdesk recorded.
    """
    from sopilot.guard.facts import parse_ticket

    try:
        parsed = parse_ticket(ticket)
    except Exception:  # noqa: BLE001 - an unreadable ticket has no amount to restate
        return None
    money = parsed.amount
    return str(money) if money is not None and money.is_usd and parsed.amount_source == "field" else None


def _noted_facts(instruction: str, ticket: Mapping[str, Any]) -> list[str]:
    """The ticket facts an "acknowledge and restate X/Y/Z" instruction asks for, as "quantity 5"."""
    wanted = re.findall(r"[a-z]+", instruction.lower().split("restate", 1)[-1]) if "restate" in instruction.lower() \
        else []
    noted: list[str] = []
    for word in wanted:
        names = _FACT_WORDS.get(word)
        value = _field(ticket, names) if names else None
        if value is not None and all(not n.endswith(value) for n in noted):
            noted.append(f"{word} {value}")
    return noted


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".;:")
    return text[0].upper() + text[1:] + "." if text else ""


def _customer_voice(text: str) -> str:
    text = _slashes(text.replace(" + ", " and "))
    text = re.sub(r"\bthe (?:user|customer)'s\b", "your", text, flags=re.IGNORECASE)
    text = re.sub(r"\bthe (?:user|customer)\b", "you", text, flags=re.IGNORECASE)
    text = re.sub(r"\bin the account\b", "in your account", text, flags=re.IGNORECASE)
    return text


def _the(phrase: str) -> str:
    """`feature and account scope` → `the feature and account scope` (a determiner where none is)."""
    first = phrase.split(" ", 1)[0].lower()
    return phrase if first in _DETERMINERS else f"the {phrase}"


def _and(listing: str) -> str:
    """`ticket ID, expected processing time, billing info` → `…, expected processing time and billing info`."""
    head, sep, last = listing.rpartition(", ")
    return f"{head} and {last}" if sep and " and " not in last else listing



_PHRASINGS = (
    (re.compile(r"note (?:that )?(.+)$", re.IGNORECASE), lambda rest: f"Please note that {rest}"),
    (re.compile(r"(?:propose|offer) (.+)$", re.IGNORECASE), lambda rest: f"We can offer {rest}"),
    (re.compile(r"suggest (.+)$", re.IGNORECASE), lambda rest: f"We suggest {rest}"),
    (re.compile(r"(?:tell|inform|notify) you (?:of|about) (.+)$", re.IGNORECASE),
     lambda rest: f"we will let you know about {rest}"),
    (re.compile(r"(?:tell|inform|notify) you (.+)$", re.IGNORECASE), lambda rest: f"we will tell you {rest}"),
    (re.compile(r"provide (.+)$", re.IGNORECASE), lambda rest: f"we will provide {_the(_and(rest))}"),
)
"""Template instructions whose verb alone says how to phrase them to the customer."""

_AGENT_ONLY = re.compile(r"""
    ^(?:do\s+not|don't|never|avoid|refrain|make\s+sure|ensure|remember|be\b|try|thank|greet|log|record|
        document|tag|assign|close|update\s+the\s+ticket|check\s+internally)\b     # "Do not promise a refund"
""", re.VERBOSE | re.IGNORECASE)
_WE_WILL = re.compile(r"""
    ^(?:send|email|share|process|review|check|verify|create|raise|escalate|follow|contact|call|confirm|update|
        notify|investigate|arrange|schedule|apply|issue|enable|disable|activate|deactivate|add|remove|reset|
        restore|ship|replace|refund|credit|look|get|keep|let|ask|monitor|assess|submit|forward|open|prepare)\b
""", re.VERBOSE | re.IGNORECASE)
"""Verbs that, after "we will", make a sentence a customer reads as a plain promise of work."""


def _instruction(clause: str) -> str:
    """One agent instruction from a response template, said to the customer ("" when it is for the agent only)."""
    clause = _customer_voice(clause.strip().rstrip("."))
    lowered = clause.lower()
    if _AGENT_ONLY.match(clause):
        return ""
    apology = re.match(r"apologi[sz]e(?: (?:to you|to the customer))?(?: for (.+))?$", clause, re.IGNORECASE)
    if apology:
        return _sentence(f"We are sorry for {apology.group(1)}" if apology.group(1) else "We are sorry")
    after = re.match(r"after ([^:]+):\s*(.+)$", clause, re.IGNORECASE)
    if after:
        rest = _instruction(after.group(2))
        when = after.group(1).strip().lower()
        return f"After {when if when.endswith('tion') else _the(when)}, {rest[0].lower()}{rest[1:]}"
    condition = re.match(r"if ([^,]+),\s*(.+)$", clause, re.IGNORECASE)
    if condition:
        rest = re.sub(r"^suggest (.+?) or proceed with (.+)$", r"we suggest \1, or we can proceed with the \2",
                      condition.group(2), flags=re.IGNORECASE)
        if not rest.lower().startswith("we "):
            rest = _instruction(rest)
            rest = rest[0].lower() + rest[1:]
        subject = re.sub(r"^all (\w+)", r"all of your \1", condition.group(1))
        return _sentence(f"If {subject}, {rest}")
    if re.match(r"ask for (?:the |your )?confirmation to proceed", lowered):
        return "Please confirm that you would like us to proceed."
    asked = re.match(r"(?:ask for|request) (.+)$", clause, re.IGNORECASE)
    if asked:
        verb = "grant us" if re.search(r"\b(?:permission|access)\b", asked.group(1), re.IGNORECASE) else "send us"
        return f"Could you please {verb} {asked.group(1)}?"
    confirm = re.match(r"confirm (?!by\b)(.+)$", clause, re.IGNORECASE)
    if confirm:
        return f"Could you please confirm {_the(confirm.group(1))}?"
    explain = re.match(r"explain (that )?(.+)$", clause, re.IGNORECASE)
    if explain:
        said = explain.group(2)
        if re.match(r"(?:how|what|why|when|where|which|whether|who)\b", said, re.IGNORECASE):
            return _sentence(f"We will explain {said}")
        statement = explain.group(1) or re.search(r"\b(?:affects|applies|is|are|may|can|will)\b", said)
        return _sentence(f"Please note that {said}" if statement else f"Please note {_the(said)}")
    for pattern, phrase in _PHRASINGS:
        match = pattern.match(clause)
        if match:
            return _sentence(phrase(match.group(1)))
    if not _WE_WILL.match(clause):
        return ""  # not a plain action we can promise: the decision's own wording says what happens
    return _sentence(f"we will {clause[0].lower()}{clause[1:]}")


def _template_lines(template: str, ticket: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(facts noted, sentences) from a response template's bullet instructions."""
    noted: list[str] = []
    sentences: list[str] = []
    for raw in template.split("\n"):
        bullet = re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", raw).strip()
        if not bullet:
            continue
        clauses = _CLAUSE_SPLIT.split(bullet)
        if _ACKNOWLEDGE.match(clauses[0]):
            noted += _noted_facts(bullet, ticket)
            clauses = [c for c in clauses if not _ACKNOWLEDGE.match(c)]
        sentences += [s for s in (_instruction(c) for c in clauses) if s]
    return noted, sentences


def _decision_body(decision) -> str:
    """The guard's compliant wording of the decision, without its greeting."""
    from sopilot.guard.reply import GREETING, compose_reply

    text = compose_reply(decision)
    return text[len(GREETING):].strip() if text.startswith(GREETING) else text


def compose(ticket: Mapping[str, Any], decision, sop=None, *, sops: Mapping[str, Any] | None = None) -> Composition:
    """The reply for `ticket` under `decision`, grounded in the matched `sop` (None: no SOP matched).

    Args:
        ticket: the docs/interface.md §5 ticket (name and ticket id are read from `customer_name`/`name` and
            `ticket_id`/`id` when present).
        decision: the guard's `Decision`.
        sop: the matched SOP, or None.
        sops: every indexed SOP by id, to cite the Policy Exception section for a manual review.
    """
    from sopilot.guard.check import check

    composition = _compose(ticket, decision, sop, sops or {}, name_topic=True)
    if sop is not None and not check(composition.text, decision).passed:
        # An SOP title can read as a commitment ("… password reset query" when the decision escalates):
        # then the opening leaves the subject out.
        composition = _compose(ticket, decision, sop, sops or {}, name_topic=False)
    return composition


def _compose(ticket: Mapping[str, Any], decision, sop, sops: Mapping[str, Any], *, name_topic: bool) -> Composition:
    name = _field(ticket, _NAME_FIELDS)
    ticket_id = _field(ticket, _TICKET_ID_FIELDS)
    paragraphs = [f"Hi {name}," if name else "Hello,"]
    citations: list[Citation] = []

    subject = topic(sop) if sop is not None and name_topic else ""
    opening = f"Thank you for contacting us about {subject}." if subject else "Thank you for contacting us."
    template = sop.text_of("response_template") if sop is not None else ""
    decided_by_rule = decision.rule is not None and decision.outcome in ("automate", "escalate")
    noted, sentences = _template_lines(template, ticket) if template and not decided_by_rule else ([], [])
    if sentences:
        if noted:
            opening += " Here is what I have noted: " + "; ".join(noted) + "."
        paragraphs.append(opening)
        paragraphs.append("\n".join(sentences))
        citations += [cite(sop, s) for s in sop.sections if s.kind == "response_template"]
    else:
        amount = _amount(ticket) if decision.remuneration.type in ("refund", "service_credit", "pending") else None
        if amount and decision.policy and sop is not None:
            opening += f" I understand the amount in question is {amount}."
        paragraphs.append(opening)
        paragraphs.append(_decision_body(decision))
        citations += decision_citations(sop, decision, sops)
    if ticket_id:
        paragraphs.append(f"Your ticket reference is {ticket_id}.")
    paragraphs.append(SIGN_OFF)
    return Composition(text="\n\n".join(paragraphs), citations=tuple(dict.fromkeys(citations)))


# ---- a reply's frame: greeting and sign-off, kept when its body is replaced --------------------------

_GREETING = re.compile(r"""
    ^\s*(?:hi|hello|hey|dear|good\s(?:morning|afternoon|evening)|greetings)\b[^\n]*\n   # "Hi Maria,"
""", re.VERBOSE | re.IGNORECASE)
_SIGN_OFF = re.compile(r"""
    \n\s*(?:kind\s+regards|best\s+regards|warm\s+regards|regards|best|thanks|thank\s+you|many\s+thanks|
           cheers|sincerely|all\s+the\s+best)\b[^\n]*(?:\n[^\n]*){0,3}\s*$               # "Kind regards,\nAna"
""", re.VERBOSE | re.IGNORECASE)
_SIGNED_NAME = re.compile(r"""
    (?:^|\n|[.!?]\s)\s*(?i:thanks|thank\s+you|regards|best|cheers|kind\s+regards|best\s+regards|sincerely)[,!.]?\s*\n?
    \s*(?P<name>[A-Z][a-zà-ÿ'-]+(?:\s[A-Z][a-zà-ÿ'-]+)?)\s*$                               # "Thanks,\nMaria Lopez"
  | \b(?i:my\s+name\s+is|i\s+am|i'm|this\s+is)\s+(?P<intro>[A-Z][a-zà-ÿ'-]+)\b              # "I'm Maria"
""", re.VERBOSE)


def frame(text: str) -> tuple[str, str, str]:
    """A reply as (greeting, body, sign-off); a part it lacks is ""."""
    greeting = _GREETING.match(text)
    head = greeting.group(0) if greeting else ""
    rest = text[len(head):]
    tail = _SIGN_OFF.search(rest)
    end = tail.group(0) if tail else ""
    return head.strip(), rest[:len(rest) - len(end)].strip(), end.strip()


def reframe(body_from: str, frame_from: str) -> str:
    """The body of `body_from` inside the greeting and sign-off of `frame_from` (the agent's own)."""
    greeting, _, sign_off = frame(frame_from)
    _, body, _ = frame(body_from)
    return "\n\n".join(part for part in (greeting, body, sign_off) if part)


def sign(text: str, signature: str, agent: str | None) -> str:
    """The reply signed with the agent's signature (`{agent}` is their name) instead of the team's."""
    if not agent or not signature.strip():
        return text
    signed = signature.replace("\\n", "\n").replace("{agent}", agent).strip()
    if text.endswith(SIGN_OFF):
        return text[:-len(SIGN_OFF)] + "Kind regards,\n" + signed
    return text


def customer_name(message: str) -> str | None:
    """The customer's first name, when the message signs off or introduces itself with one."""
    match = _SIGNED_NAME.search(message.strip())
    if match is None:
        return None
    name = match.group("name") or match.group("intro")
    return name.split()[0] if name else None
