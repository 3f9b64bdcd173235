"""Facts read from a ticket's own words, each with where it came from.

Agents paste the customer's email or type a short note ("user locked out after five failed logins,
high priority"); the policies need typed facts (`failed_login_attempts`, `priority`). This module
reads every fact a policy tests from that text, with the phrasings kept as data in
`ticket_text.yaml` and the fact types of `facts.FIELDS`, and says where each one came from:

- "set by the agent": a line of the agent's own note (`Note: identity verified`), or the panel;
- "read from the customer's words": everything else. The customer is not a trusted source, so
  a decision that would automate on such a fact asks the agent to confirm it first.

How it reads: number words become digits (text2num: "five" → 5, "two years" → 24 months); the
text is cut into clauses; a number is taken for the fact whose cue is nearest to it in its clause,
with a unit that fits (days, months, hours, percent; years and weeks are converted); a yes/no fact
is a phrase of its own ("under warranty" / "out of warranty"), turned to "no" by a negator just
before it; a choice (priority, tier, role, damage) is a phrase, sometimes only near a cue. Within
one source the last statement wins; the agent's note wins over the customer's words.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sopilot.guard.facts import FIELDS

from sopilot.core.errors import ConfigError
from sopilot.core.money import iter_amounts

LEXICON = Path(__file__).with_name("ticket_text.yaml")
Source = Literal["agent", "customer"]
SOURCE_LABELS: Mapping[str, str] = MappingProxyType({"agent": "set by the agent",
                                                      "customer": "read from the customer's words"})
_NEGATION_WINDOW = 3

# A number on its own, with the word after it: "5 failed", "99.5 %", "24 months". Not part of an id
# ("T-1234", "#4521"), a version or a price (prices are read as money).
_NUMBER = re.compile(r"""
    (?<![\w$€£#./-])            # not inside an id, a price or a path
    (?P<num>\d+(?:\.\d+)?)      # 5, 99.5
    (?![\w.]*\d)(?!\w)          # the whole number
    \s*(?P<unit>%|[a-z]+)?      # the word after it, if any: "%", "days", "failed"
""", re.VERBOSE)
# Clause ends: sentence marks, new lines, and commas that are not thousands separators ("1,200").
_CLAUSE_END = re.compile(r"""
    [.!?;\n]+(?!\d)             # "refund it. thanks"  (not "99.5")
  | ,(?!\d{3})                  # "5 failed logins, high priority"  (not "1,200")
  | \s(?:but|however)\s         # "under warranty but the screen is cracked"
""", re.VERBOSE)
_WORD = re.compile(r"[\w'’%/$.]+")


class _FactModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    cues: list[str] = Field(default_factory=list)
    yes: list[str] = Field(default_factory=list, alias="yes")
    no: list[str] = Field(default_factory=list, alias="no")
    values: dict[str, list[str]] = Field(default_factory=dict)
    near: list[str] = Field(default_factory=list)
    window: int = Field(default=4, ge=1, le=20)
    not_after: list[str] = Field(default_factory=list)


class _LexiconModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    agent_prefixes: list[str]
    negators: list[str]
    number_words: dict[str, int]
    units: dict[str, dict[str, int]]
    facts: dict[str, _FactModel]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ReadFact:
    """One fact read from the ticket's text."""

    name: str
    value: Any
    """The value as a docs/interface.md §5 field takes it: a choice, an int, a bool, a number or an amount as text."""
    source: Source
    evidence: str
    """The words it was read from (lower-cased, numbers as digits)."""

    @property
    def label(self) -> str:
        """Where it came from, as the app shows it."""
        return SOURCE_LABELS[self.source]

    def to_json(self) -> dict[str, Any]:
        """The fact as JSON-ready data."""
        value = str(self.value) if isinstance(self.value, Decimal) else self.value
        return {"name": self.name, "value": value, "source": self.source, "evidence": self.evidence}


@dataclasses.dataclass(frozen=True, kw_only=True)
class TicketText:
    """What a pasted or typed ticket says: the customer's words, the agent's notes, and the facts read."""

    customer: str
    agent: str
    facts: Mapping[str, ReadFact]
    notes: tuple[str, ...] = ()
    """Facts stated twice with different values, and which one was kept."""

    def values(self) -> dict[str, Any]:
        """The facts as docs/interface.md §5 fields."""
        return {name: fact.value for name, fact in self.facts.items()}

    def to_json(self) -> dict[str, Any]:
        """The reading as JSON-ready data."""
        return {"customer": self.customer, "agent": self.agent, "notes": list(self.notes),
                "facts": [fact.to_json() for fact in self.facts.values()]}


@dataclasses.dataclass(frozen=True)
class _Lexicon:
    agent_prefixes: tuple[str, ...]
    negators: tuple[re.Pattern, ...]
    number_words: re.Pattern
    number_values: Mapping[str, int]
    units: Mapping[str, Mapping[str, int]]
    facts: Mapping[str, _FactModel]
    patterns: Mapping[str, re.Pattern]


def _phrase(text: str) -> re.Pattern:
    """A phrase as a pattern: words apart by any space, the last one also as its plural."""
    words = _norm_words(text).split()
    body = r"\s+".join(re.escape(w) for w in words)
    start = r"(?<![\w])" if re.match(r"\w", words[0]) else ""
    end = r"(?:e?s)?(?![\w])" if re.search(r"\w$", words[-1]) else ""
    return re.compile(start + body + end)


def _norm_words(text: str) -> str:
    """Lower case, hyphens and brackets read as spaces: "Read-only (certified)" → "read only  certified "."""
    text = re.sub(r"(?<=\w)-(?=\w)", " ", text.lower().replace("’", "'"))
    return re.sub(r"[()\[\]]", " ", text)


@functools.cache
def lexicon(path: Path = LEXICON) -> _Lexicon:
    """The phrasings file, validated against the fact types (cached).

    Raises:
        ConfigError: the file is missing, not YAML, or names an unknown fact, choice or key.
    """
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        model = _LexiconModel.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read the ticket phrasings {str(path)!r}: {exc.strerror}") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"the ticket phrasings {str(path)!r} are invalid: {exc}") from None
    patterns: dict[str, re.Pattern] = {}
    for name, fact in model.facts.items():
        spec = FIELDS.get(name)
        if spec is None:
            raise ConfigError(f"{path.name}: unknown fact {name!r}; facts are {sorted(FIELDS)}")
        kinds = {"bool": ("yes", "no"), "int": ("cues",), "number": ("cues",), "money": ("cues",)}
        allowed = kinds.get(spec.kind, ("values", "near", "window", "not_after"))
        used = [k for k in fact.model_fields_set if k not in allowed and k not in ("window",)]
        if used:
            raise ConfigError(f"{path.name}: fact {name!r} is a {spec.kind}; it takes {list(allowed)}, not {used}")
        if spec.unit and spec.kind != "money" and spec.unit not in model.units:
            raise ConfigError(f"{path.name}: fact {name!r} is in {spec.unit!r}; add units.{spec.unit}")
        for choice in fact.values:
            if spec.choices and choice not in spec.choices:
                raise ConfigError(f"{path.name}: {name}.values {choice!r} is not one of {list(spec.choices)}")
        for phrase in {*fact.cues, *fact.yes, *fact.no, *fact.near, *fact.not_after,
                       *(p for ps in fact.values.values() for p in ps)}:
            patterns.setdefault(phrase, _phrase(phrase))
    words = "|".join(re.escape(w) for w in sorted(model.number_words, key=len, reverse=True))
    return _Lexicon(
        agent_prefixes=tuple(p.lower() for p in model.agent_prefixes),
        negators=tuple(_phrase(n) for n in model.negators),
        number_words=re.compile(rf"(?<!\w)({words})(?!\w)") if words else re.compile(r"(?!x)x"),
        number_values=MappingProxyType(dict(model.number_words)),
        units=MappingProxyType({u: MappingProxyType(dict(m)) for u, m in model.units.items()}),
        facts=MappingProxyType(dict(model.facts)), patterns=MappingProxyType(patterns))


def split_notes(message: str, lex: _Lexicon | None = None) -> tuple[str, str]:
    """The customer's words and the agent's note lines (`Note: …`) of one pasted or typed text."""
    lex = lex or lexicon()
    customer, agent = [], []
    for line in message.splitlines():
        low = line.strip().lower()
        prefix = next((p for p in lex.agent_prefixes if low.startswith(p)), None)
        if prefix is None:
            customer.append(line)
        else:
            agent.append(line.strip()[len(prefix):].strip())
    return "\n".join(customer).strip(), "\n".join(agent).strip()


def _normalize(text: str, lex: _Lexicon) -> str:
    from text_to_num import alpha2digit

    text = _norm_words(text)
    try:
        text = alpha2digit(text, "en", threshold=0)
    except Exception:  # noqa: BLE001 - the parser is a native extension; an odd input keeps the words
        pass
    return lex.number_words.sub(lambda m: str(lex.number_values[m.group(1)]), text)


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSE_END.split(text) if c and c.strip()]


@dataclasses.dataclass(frozen=True)
class _Hit:
    fact: str
    value: Any
    start: int
    end: int
    evidence: str


class _Clause:
    """One clause with word positions, so distances are counted in words."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [m.start() for m in _WORD.finditer(text)]

    def word(self, pos: int) -> int:
        return max(0, bisect.bisect_right(self.starts, pos) - 1)

    def find(self, pattern: re.Pattern) -> list[re.Match]:
        return list(pattern.finditer(self.text))

    def before(self, pos: int, words: int) -> str:
        first = self.word(pos) - words
        return self.text[self.starts[first] if first >= 0 else 0:pos] if self.starts else ""


def _negated(clause: _Clause, start: int, lex: _Lexicon) -> bool:
    window = clause.before(start, _NEGATION_WINDOW)
    return any(n.search(window) for n in lex.negators)


def _bool_hits(name: str, fact: _FactModel, clause: _Clause, lex: _Lexicon) -> list[_Hit]:
    noes = [(m.start(), m.end()) for p in fact.no for m in clause.find(lex.patterns[p])]
    hits = [_Hit(name, False, s, e, clause.text[s:e]) for s, e in noes]
    for phrase in fact.yes:
        for m in clause.find(lex.patterns[phrase]):
            if any(s < m.end() and m.start() < e for s, e in noes):
                continue  # "not certified" holds "certified": the "no" phrase said it
            value = not _negated(clause, m.start(), lex)
            hits.append(_Hit(name, value, m.start(), m.end(), clause.before(m.end(), 4 + _NEGATION_WINDOW)))
    return hits


def _choice_hits(name: str, fact: _FactModel, clause: _Clause, lex: _Lexicon) -> list[_Hit]:
    found = [(m.start(), m.end(), choice) for choice, phrases in fact.values.items() for p in phrases
             for m in clause.find(lex.patterns[p])]
    longest = [f for f in found if not any(o[0] <= f[0] and f[1] <= o[1] and (o[1] - o[0]) > (f[1] - f[0])
                                           for o in found)]
    cues = [(clause.word(m.start()), m) for p in fact.near for m in clause.find(lex.patterns[p])]
    hits = []
    for start, end, choice in longest:
        at = clause.word(start)
        if fact.near and not any(abs(at - w) <= fact.window and not (m.start() <= start < m.end())
                                 for w, m in cues):
            continue
        preceding = clause.before(start, 2)
        if any(lex.patterns[p].search(preceding) for p in fact.not_after):
            continue
        hits.append(_Hit(name, choice, start, end, clause.text[start:end]))
    return hits


def _in_unit(unit_word: str | None, unit: str | None, lex: _Lexicon) -> int | None:
    """The factor that turns a number followed by `unit_word` into the fact's unit, or None if it does not fit."""
    words = lex.units.get(unit or "", {})
    if unit_word is None or unit_word == "":
        return 1 if unit in ("count", "percent") else None
    for candidate in (unit_word, unit_word[:-1] if unit_word.endswith("s") else unit_word):
        if candidate in words:
            return words[candidate]
    if unit == "count" and not any(unit_word in m or unit_word.rstrip("s") in m for m in lex.units.values()):
        return 1  # "5 failed logins": a count is followed by what it counts
    return None


def _number_hits(clause: _Clause, lex: _Lexicon) -> list[_Hit]:
    """Candidate (fact, number) pairs by cue distance; each number and fact is then taken once."""
    money_spans = [(s, e) for _, s, e in iter_amounts(clause.text)]
    numbers = [m for m in _NUMBER.finditer(clause.text)
               if not any(s <= m.start() < e for s, e in money_spans)]
    candidates: list[tuple[int, int, str, Any, int, int]] = []
    for name, fact in lex.facts.items():
        spec = FIELDS[name]
        if spec.kind not in ("int", "number", "money") or not fact.cues:
            continue
        cue_words = [(clause.word(m.start()), clause.word(max(m.end() - 1, m.start())))
                     for p in fact.cues for m in clause.find(lex.patterns[p])]
        if not cue_words:
            continue
        spots: list[tuple[int, int, Any]]
        if spec.kind == "money":
            spots = [(s, e, clause.text[s:e]) for _, s, e in iter_amounts(clause.text)]
        else:
            spots = []
            for m in numbers:
                factor = _in_unit(m.group("unit"), spec.unit, lex)
                if factor is None:
                    continue
                number = Decimal(m.group("num")) * factor
                value: Decimal | int = number
                if spec.kind == "int":
                    if number != number.to_integral_value():
                        continue
                    value = int(number)
                elif (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
                    continue
                spots.append((m.start(), m.end(), value))
        for start, end, value in spots:
            at = clause.word(start)
            distance = min(min(abs(at - a), abs(at - b)) for a, b in cue_words)
            candidates.append((distance, start, name, value, start, end))
    taken_spans: set[int] = set()
    taken_facts: set[str] = set()
    hits = []
    for distance, _, name, value, start, end in sorted(candidates, key=lambda c: (c[0], c[1])):
        if start in taken_spans or name in taken_facts or distance > 8:
            continue
        taken_spans.add(start)
        taken_facts.add(name)
        hits.append(_Hit(name, value, start, end, clause.text))
    return hits


def _read(text: str, lex: _Lexicon) -> list[_Hit]:
    """Every fact stated in `text`, in the order said."""
    hits: list[_Hit] = []
    offset = 0
    for raw in _clauses(_normalize(text, lex)):
        clause = _Clause(raw)
        found = _number_hits(clause, lex)
        for name, fact in lex.facts.items():
            kind = FIELDS[name].kind
            if kind == "bool":
                found += _bool_hits(name, fact, clause, lex)
            elif kind in ("priority", "enum", "role"):
                found += _choice_hits(name, fact, clause, lex)
        hits += [dataclasses.replace(h, start=h.start + offset, end=h.end + offset,
                                     evidence=" ".join(h.evidence.split())[:160]) for h in found]
        offset += len(raw) + 1
    return sorted(hits, key=lambda h: h.start)


def _amount(text: str, source: Source) -> ReadFact | None:
    amounts = [(money, text[s:e]) for money, s, e in iter_amounts(text)]
    if not amounts:
        return None
    money, words = max(amounts, key=lambda a: a[0].amount)
    return ReadFact(name="amount", value=f"{money.currency} {money.amount:f}", source=source, evidence=words)


def read_ticket_text(message: str, *, agent_note: str = "", path: Path = LEXICON) -> TicketText:
    """Read every policy fact from a pasted or typed ticket, and say where each came from.

    Args:
        message: what was pasted or typed; lines starting with "Note:" (see `agent_prefixes`) are the agent's.
        agent_note: more of the agent's own words (a note field).
        path: the phrasings file.

    Raises:
        ConfigError: the phrasings file is invalid.
    """
    lex = lexicon(path)
    customer, noted = split_notes(message, lex)
    agent = "\n".join(filter(None, [noted, agent_note.strip()]))
    facts: dict[str, ReadFact] = {}
    notes: list[str] = []
    texts: tuple[tuple[Source, str], ...] = (("customer", customer), ("agent", agent))
    for source, text in texts:
        if not text:
            continue
        said: dict[str, ReadFact] = {}
        for hit in _read(text, lex):
            earlier = said.get(hit.fact)
            if earlier is not None and earlier.value != hit.value:
                notes.append(f"{hit.fact} said twice ({earlier.value!r}, then {hit.value!r}): the later is kept")
            said[hit.fact] = ReadFact(name=hit.fact, value=hit.value, source=source, evidence=hit.evidence)
        amount = _amount(text, source)
        if amount is not None:
            said["amount"] = amount
        facts.update(said)
    ordered = {name: facts[name] for name in FIELDS if name in facts}
    return TicketText(customer=customer, agent=agent, facts=MappingProxyType(ordered), notes=tuple(notes))
