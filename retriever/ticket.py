"""Reading a pasted ticket before searching it: its form, the customer's problem, and the pieces to embed.

Agents paste whole emails (greeting, signature, the quoted thread), chat transcripts or their own
notes. The reader recognises the form from the text's structure and keeps what states the problem:

- email and email thread: messages are split by `mail-parser-reply` (reply headers such as
  "On … wrote:", "-----Original Message-----" and forwarded headers, in the languages it knows);
  the newest message is the problem as it stands, the quoted ones are kept as context at a lower
  weight. Greetings and sign-offs are recognised by their shape (a short first line ending in a
  comma; a short closing line ending in a comma followed only by short lines such as a name,
  a title or a phone number), not by a list of words;
- chat transcript: lines of the form "[09:14] Name (role): text"; the speakers marked neither as
  the support side nor as those agents turn to (a lead, a supervisor) are the customer. When there
  is none and an agent opens the chat, it is an agent asking a lead and the agent's turns are the problem.
  The asking side's turns are read, the answering side's set aside, the last turn is emphasised;
- internal note and short query: read whole.

A long text is cut into pieces the encoder reads whole (sentences packed up to a word-piece
budget); every piece carries a weight, and the retriever aggregates their scores.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Literal

Form = Literal["email", "thread", "chat", "note", "short"]
FORMS: tuple[str, ...] = ("email", "thread", "chat", "note", "short")
SHORT_WORDS = 30
"""At most this many words on at most two lines: a query an agent typed."""
QUOTED_WEIGHT = 0.6
"""Weight of the pieces of earlier, quoted messages relative to the newest one."""
MAX_PIECES = 4
LAST_TURN_WEIGHT = 1.0
OTHER_TURN_WEIGHT = 0.7

_TURN = re.compile(r"""
    ^\s*
    (?:\[[^\]\n]{1,24}\]\s*|\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp][Mm])?\s*[-–]?\s*)?   # [09:14] or 09:14 -
    (?P<speaker>[^\s:\[\]][^:\n\[\]]{0,40}?)                                     # Marco (customer)
    \s*:\s+(?P<text>\S.*)$                                                       # : hi, we need …
    """, re.VERBOSE)
"""A chat turn, e.g. `[09:14] Marco (customer): hi, we need extra user licences`."""

_AGENT_MARK = re.compile(r"""\b(?:agent|support|bot|assistant|helpdesk|operator|advisor|representative)\b""",
                         re.VERBOSE | re.IGNORECASE)
"""A speaker label that names the support side, e.g. `Agent`, `Jess (Support)`."""

_SENIOR_MARK = re.compile(r"""\b(?:lead|supervisor|coach|mentor|escalations?)\b""", re.VERBOSE | re.IGNORECASE)
"""A speaker label naming someone agents turn to, e.g. `Lead (Tom)`, `Supervisor`.

Not "manager" or "senior": customers sign as "Office Manager" or "Senior Buyer"."""

_CUSTOMER_MARK = re.compile(r"""\b(?:customer|client|caller|member|partner)\b""", re.VERBOSE | re.IGNORECASE)
"""A speaker label naming the customer side, e.g. `Customer`, `Partner (Elena, Cloudmesh)`."""

_QUOTE_MARK = re.compile(r"""^[ \t]*(?:>[ \t]?)+""", re.VERBOSE | re.MULTILINE)
"""Leading quote markers, e.g. `>> ` in `>> Hi, how do I un-approve some invoices?`."""

_SENTENCE_END = re.compile(r"""(?<=[.!?…])\s+(?=\S)""", re.VERBOSE)
"""The gap after a sentence, e.g. between `…our limit.` and `Could you…`."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Piece:
    """A part of the ticket embedded on its own."""

    text: str
    weight: float
    """Relative importance in aggregation: 1 for the newest message or last customer turn."""
    role: Literal["problem", "context"] = "problem"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReadTicket:
    """What the retriever reads of a ticket."""

    form: Form
    read_as: str
    """The text searched, after quoted replies, signatures, greetings and agent turns were set aside."""
    pieces: tuple[Piece, ...]
    context: str = ""
    """Earlier messages or turns kept as weaker evidence (searched at a lower weight)."""

    def to_json(self) -> dict:
        """The reading as shown to agents."""
        return {"form": self.form, "read_as": self.read_as, "pieces": len(self.pieces)}


Counter = Callable[[str], int]


def _words(text: str) -> int:
    return len(text.split())


def _chat_turns(lines: list[str]) -> list[tuple[str, str]] | None:
    turns: list[tuple[str, str]] = []
    for line in lines:
        if not line.strip():
            continue
        match = _TURN.match(line)
        if match is None:
            if not turns:
                return None
            turns[-1] = (turns[-1][0], turns[-1][1] + " " + line.strip())
            continue
        turns.append((match.group("speaker").strip(), match.group("text").strip()))
    speakers = {s for s, _ in turns}
    if len(turns) < 2 or len(speakers) < 2 or len(speakers) > 6:
        return None
    return turns


def _customer_turns(turns: list[tuple[str, str]]) -> list[str]:
    """The turns of the side that brings the problem: the customer's, or an agent's asking a lead.

    A chat between agents and leads only is an agent asking when an agent opens it; opened by a
    lead, who asks is not clear and every turn is read.
    """
    agents = {s for s, _ in turns if _AGENT_MARK.search(s)}
    seniors = {s for s, _ in turns if _SENIOR_MARK.search(s) and not _CUSTOMER_MARK.search(s)} - agents
    customers = {s for s, _ in turns} - agents - seniors
    asking = customers or (agents if seniors and turns[0][0] in agents else set())
    if not asking:
        return [t for _, t in turns]
    return [t for s, t in turns if s in asking]


def _is_closing(lines: list[str], index: int) -> bool:
    """A short line ending in a comma (or a bare short line) followed only by short lines: a sign-off."""
    line = lines[index].strip()
    if not line or _words(line) > 4 or line.endswith(("?", ".")) and not line.endswith("..."):
        return False
    rest = [x.strip() for x in lines[index + 1:] if x.strip()]
    if len(rest) > 4 or not all(_words(x) <= 8 and not x.endswith(("?", ".")) for x in rest):
        return False
    return line.endswith((",", "!")) or (not rest and _words(line) <= 3) or (
        bool(rest) and not line.endswith(":") and index >= len(lines) - 5)


def trim_message(text: str) -> str:
    """A message without its greeting line and its sign-off block."""
    lines = [x.rstrip() for x in _QUOTE_MARK.sub("", text).splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    if lines:
        first = lines[0].strip()
        if _words(first) <= 5 and first.endswith((",", "!", ":")) and len(lines) > 1:
            lines.pop(0)
        elif _words(first) <= 5 and "," in first and not first.endswith((".", "?")):
            head, _, tail = first.partition(",")  # "Hi Jess, the app crashes": the greeting is the head
            if _words(head) <= 3 and _words(tail) >= 3:
                lines[0] = tail.strip()
    for index in range(len(lines)):
        if _is_closing(lines, index) and index > 0:
            lines = lines[:index]
            break
    return "\n".join(lines).strip()


def _messages(text: str) -> list[str]:
    """The messages of an email thread, newest first, headers removed."""
    from mailparser_reply import EmailReplyParser

    parsed = _parser(EmailReplyParser).read(text)
    messages = []
    for reply in parsed.replies:
        content = reply.content
        if reply.headers and content.startswith(reply.headers):
            content = content[len(reply.headers):]
        elif reply.headers:
            content = content.replace(reply.headers, "", 1)
        if content.strip():
            messages.append(content)
    return messages or [text]


_PARSERS: dict = {}


def _parser(cls):
    if "parser" not in _PARSERS:
        _PARSERS["parser"] = cls(languages=["en", "de", "fr", "es", "it", "pt", "nl", "sv", "pl"])
    return _PARSERS["parser"]


def split_pieces(text: str, budget: int, count: Counter | None = None) -> list[str]:
    """Sentences packed into pieces of at most `budget` word pieces (estimated from words without `count`)."""
    measure = count or (lambda s: int(_words(s) * 1.4) + 2)
    sentences = [s.strip() for part in text.split("\n") for s in _SENTENCE_END.split(part) if s.strip()]
    pieces: list[str] = []
    current = ""
    for sentence in sentences:
        candidate = f"{current} {sentence}".strip()
        if current and measure(candidate) > budget:
            pieces.append(current)
            current = sentence
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def read_ticket(text: str, *, budget: int = 128, count: Counter | None = None) -> ReadTicket:
    """Recognise the form of `text` and choose what to search and how to weigh it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    lines = text.split("\n")
    turns = _chat_turns(lines)
    if turns is not None:
        said = _customer_turns(turns)
        read_as = "\n".join(said)
        pieces = [Piece(text=p, weight=LAST_TURN_WEIGHT) for p in split_pieces(read_as, budget, count)]
        if len(said) > 1:
            pieces.append(Piece(text=said[-1], weight=LAST_TURN_WEIGHT))
            pieces += [Piece(text=t, weight=OTHER_TURN_WEIGHT) for t in reversed(said[:-1])]
        return ReadTicket(form="chat", read_as=read_as, pieces=_capped(pieces))
    nonblank = [x for x in lines if x.strip()]
    if len(nonblank) <= 2 and _words(text) <= SHORT_WORDS:
        return ReadTicket(form="short", read_as=text, pieces=(Piece(text=text, weight=1.0),))
    messages = _messages(text) if len(nonblank) > 1 else [text]
    newest = trim_message(messages[0]) or messages[0].strip()
    older = [m for m in (trim_message(x) for x in messages[1:]) if m]
    if older:
        form: Form = "thread"
    elif newest != text.strip() or "\n\n" in text:
        form = "email"
    else:
        form = "note"
    pieces = [Piece(text=p, weight=1.0) for p in split_pieces(newest, budget, count)]
    for message in older:
        pieces += [Piece(text=p, weight=QUOTED_WEIGHT, role="context") for p in split_pieces(message, budget, count)]
    return ReadTicket(form=form, read_as=newest, pieces=_capped(pieces), context="\n\n".join(older))


def _capped(pieces: list[Piece]) -> tuple[Piece, ...]:
    """At most `MAX_PIECES`, the problem's first: every piece is one more encoder pass."""
    problem = [p for p in pieces if p.role == "problem"]
    context = [p for p in pieces if p.role == "context"]
    return tuple((problem + context)[:MAX_PIECES])
