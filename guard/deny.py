"""A default-deny reading of a draft's clauses: what they assert about money, the account and time.

The commitment lexicon (guard/lexicon.yaml) lists the ways a reply commits, and a list of ways is never
complete ("we've sorted the charge", "the $320 goes back", "your admin login is ready"). This reading turns
the question around, over the clauses `guard.check` has already split and stemmed:

- **Money**: a clause that asserts (not negated, asked, hedged, reported, or conditional on a team's
  review) an outcome for a money object of the customer's (the charge, the fee, an amount, "it" for one of
  them) commits to money UNLESS its verb is on a short allow-list of verbs that commit to nothing (look
  into, pass to, explain, ...). A future negation of owing ("you won't pay for it") promises money too.
- **Conditions**: a condition hedges only when it waits for a team, an approval, a review or an
  investigation; the customer's own act ("once you confirm") or mere time leaves the promise standing.
- **Time**: the decision's SLA is a grant of time; a shorter time, or a dated outcome the decision does
  not produce, is a commitment.
- **Implicit completion**: a completed state of an account object ("your admin login is ready") that the
  decision does not produce.

Every finding is then held to the decision's grant. The vocabulary is validated data (guard/deny.yaml); the
functions are pure and linear in the clause's length, and a clause with none of the words they read is
skipped by one set operation.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import yaml
from sopilot.guard.compiled import cached_compile, read_yaml
from sopilot.guard.decide import Decision
from sopilot.guard.internal import internal_findings
from sopilot.guard.lexicon import LEXICON_FILE, Lexicon, load_lexicon, phrase
from sopilot.guard.normalize import Normalized

from sopilot.core.errors import ConfigError
from sopilot.core.money import Money, iter_amounts

DENY_FILE = Path(__file__).with_name("deny.yaml")
Finding = tuple[str, str, str]
"""(violation code, message, evidence), the form `guard.check` collects."""


class Clause(Protocol):
    """What the reading needs of a clause of `guard.check`: its span, stems, sentence and mood (read only)."""

    @property
    def start(self) -> int:
        """Offset of the clause's first character in the normalised text."""
    @property
    def end(self) -> int:
        """Offset one past its last character."""
    @property
    def stems(self) -> list[str]:
        """Its words' stems, in order."""
    @property
    def sentence(self) -> int:
        """The number of the sentence it belongs to."""
    @property
    def question(self) -> bool:
        """Whether its sentence asks."""
    @property
    def reported(self) -> bool:
        """Whether it reports the customer's words ("You mentioned you'd like the $320 back")."""


# ---- the data --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _file_model() -> Any:
    """The pydantic schema of deny.yaml, built only when the file is validated (not when a cached form is read)."""
    from pydantic import BaseModel, ConfigDict, Field

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    class _Allow(_Strict):
        any_subject: list[str] = Field(min_length=1)
        writer_only: list[str] = Field(min_length=1)

    class _Demands(_Strict):
        negations: list[str] = Field(min_length=1)
        owing: list[str] = Field(min_length=1)
        staying: list[str] = Field(min_length=1)

    class _Conditions(_Strict):
        cues: list[str] = Field(min_length=1)
        team: list[str] = Field(min_length=1)
        review: list[str] = Field(min_length=1)
        passive: list[str] = Field(min_length=1)
        outcomes: list[str]

    class _File(_Strict):
        version: int = Field(ge=1, le=1)
        money_objects: list[str] = Field(min_length=1)
        currencies: list[str] = Field(min_length=1)
        money_compounds: list[str]
        pronouns: list[str]
        allow: _Allow
        logged: list[str]
        writer: list[str] = Field(min_length=1)
        customer: list[str] = Field(min_length=1)
        future: list[str]
        perfect: list[str]
        perfect_idioms: list[str]
        result: list[str]
        result_idioms: list[str]
        demands: _Demands
        conditions: _Conditions
        time_words: dict[str, Decimal]
        time_units: dict[str, Decimal]
        time_prepositions: list[str] = Field(min_length=1)
        sla_verbs: list[str] = Field(min_length=1)
        guarantees: list[str]
        guarantors: list[str]
        account_objects: list[str] = Field(min_length=1)
        completed: list[str] = Field(min_length=1)
        pending: list[str]

    return _File


@dataclasses.dataclass(frozen=True, slots=True)
class Phrases:
    """Phrases of stems, indexed by their first stem: a clause holding none of the firsts is skipped at once."""

    index: Mapping[str, tuple[tuple[str, ...], ...]]
    firsts: frozenset[str]

    @classmethod
    def of(cls, items: Iterable[str]) -> Phrases:
        """Stem each phrase the way a reply's words are stemmed."""
        index: dict[str, list[tuple[str, ...]]] = {}
        for item in items:
            words = tuple(word for word in phrase(item) if word != "...")
            if words:
                index.setdefault(words[0], []).append(words)
        return cls(index={k: tuple(sorted(v, key=len, reverse=True)) for k, v in index.items()},
                   firsts=frozenset(index))

    def spans(self, stems: list[str], start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
        """(start, end) of every phrase occurrence in `stems[start:end]`, the longest at each position, in order.

        The occurrences in the whole list are found once per list and phrase set (`_read`), from the positions
        of the first stems the list holds; a window is a filter of them.
        """
        positions, cache = _read(stems)
        full = cache.get(id(self))
        if full is None:
            full = cache[id(self)] = self._spans(stems, positions)
        if not full or (start == 0 and (end is None or end >= len(stems))):
            return full
        stop = len(stems) if end is None else end
        return [(i, j) for i, j in full if i >= start and j <= stop]

    def _spans(self, stems: list[str], positions: dict[str, list[int]]) -> list[tuple[int, int]]:
        """Every occurrence in the whole of `stems`, the longest phrase at each position, in order."""
        firsts = self.firsts.intersection(positions)
        if not firsts:
            return []
        stop = len(stems)
        found = []
        for first in firsts:
            candidates = self.index[first]
            for i in positions[first]:
                for candidate in candidates:
                    j = i + len(candidate)
                    if j <= stop and (len(candidate) == 1 or tuple(stems[i:j]) == candidate):
                        found.append((i, j))
                        break
        if len(firsts) > 1:
            found.sort()
        return found

    def within(self, present: frozenset[str] | set[str], stems: list[str], start: int = 0,
               end: int | None = None) -> bool:
        """Whether a phrase occurs in `stems[start:end]` (`present`: the clause's stems, for the fast path)."""
        if self.firsts.isdisjoint(present):
            return False
        return bool(self.spans(stems, start, end))


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class DenyData:
    """The compiled vocabulary of guard/deny.yaml."""

    money: Phrases
    currencies: frozenset[str]
    money_compounds: Phrases
    pronouns: frozenset[str]
    allow: Phrases
    writer_only: Phrases
    logged: Phrases
    writer: frozenset[str]
    customer: frozenset[str]
    future: Phrases
    perfect: Phrases
    perfect_idioms: Phrases
    result: Phrases
    result_idioms: Phrases
    demand_negations: Phrases
    owing: Phrases
    staying: Phrases
    cues: Phrases
    team: Phrases
    review: Phrases
    passive: Phrases
    outcomes: Phrases
    time_words: Mapping[tuple[str, ...], Decimal]
    time_word_phrases: Phrases
    time_units: Mapping[str, Decimal]
    time_prepositions: Phrases
    sla_verbs: Phrases
    guarantees: Phrases
    guarantors: frozenset[str]
    """Documents whose own guarantee a reply may describe ("the SLA promises 99.9% uptime")."""
    account_objects: Phrases
    completed: Phrases
    pending: Phrases
    time_gate: frozenset[str] = frozenset()
    """The last stems of the time words and the time units: a clause without one names no time frame."""
    words: frozenset[str] = frozenset()
    """Stems one of which a clause must hold to be read (besides a condition, a pronoun after money, or an
    account object with a completed state): a clause with none of them is skipped by one set operation."""


_Read = tuple[list[str], dict[str, list[int]], dict[int, list[tuple[int, int]]]]
_LAST: list[tuple[_Read, ...]] = [()]
_KEPT = 4
"""Lists whose reading is kept: a clause, its condition's words and a part of it are read in turn."""


def _read(stems: list[str]) -> tuple[dict[str, list[int]], dict[int, list[tuple[int, int]]]]:
    """Where each stem stands in `stems`, and the spans each phrase set found there so far.

    Kept for the last few lists read (a clause is read by many phrase sets, some more than once), each as one
    tuple and all of them replaced at once, so that threads reading other clauses never pair a list with
    another list's positions.
    """
    kept = _LAST[0]
    for last, positions, spans in kept:
        if last is stems:
            return positions, spans
    positions = {}
    for i, word in enumerate(stems):
        positions.setdefault(word, []).append(i)
    spans = {}
    _LAST[0] = ((stems, positions, spans), *kept[:_KEPT - 1])
    return positions, spans


def _positions(stems: list[str]) -> dict[str, list[int]]:
    """Where each stem stands in `stems` (see `_read`)."""
    return _read(stems)[0]


def _stems(items: Iterable[str]) -> frozenset[str]:
    return frozenset(word for item in items for word in phrase(item))


@functools.lru_cache(maxsize=4)
def load_deny(path: str | Path = DENY_FILE) -> DenyData:
    """Load, validate and compile guard/deny.yaml (once per process, and kept compiled between runs).

    The compiled form depends on the file, on the stems of the lexicon (guard/lexicon.yaml, whose overrides
    change how phrases stem) and on the code, so `cached_compile` keys it by all three.

    Raises:
        ConfigError: the file is missing, not YAML, or breaks the schema; the message says where.
    """
    source = Path(path)
    try:
        return cached_compile("deny", (source.resolve(), LEXICON_FILE.resolve()), lambda: _build(source))
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the default-deny vocabulary ({exc.strerror}); restore the file "
                          "from the repository") from None


def _build(source: Path) -> DenyData:
    """The validated, compiled vocabulary of `source` (see `load_deny`)."""
    from pydantic import ValidationError

    load_lexicon()  # phrases stem with the lexicon's overrides
    try:
        raw = read_yaml(source)
        model = _file_model().model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the default-deny vocabulary ({exc.strerror}); restore the file "
                          "from the repository") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc}); fix the file") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{source}: {where}: {first['msg']}; fix the file (schema in guard/deny.py)") from None
    time_words = {tuple(phrase(k)): v for k, v in model.time_words.items()}
    data = DenyData(
        money=Phrases.of([*model.money_objects, *model.currencies]), currencies=_stems(model.currencies),
        money_compounds=Phrases.of(model.money_compounds),
        pronouns=_stems(model.pronouns),
        allow=Phrases.of(model.allow.any_subject), writer_only=Phrases.of(model.allow.writer_only),
        logged=Phrases.of(model.logged),
        writer=_stems(model.writer), customer=_stems(model.customer), future=Phrases.of(model.future),
        perfect=Phrases.of(model.perfect), perfect_idioms=Phrases.of(model.perfect_idioms),
        result=Phrases.of(model.result),
        result_idioms=Phrases.of(model.result_idioms),
        demand_negations=Phrases.of(model.demands.negations), owing=Phrases.of(model.demands.owing),
        staying=Phrases.of(model.demands.staying), cues=Phrases.of(model.conditions.cues),
        team=Phrases.of(model.conditions.team), review=Phrases.of(model.conditions.review),
        passive=Phrases.of(model.conditions.passive), outcomes=Phrases.of(model.conditions.outcomes),
        time_words=time_words,
        time_word_phrases=Phrases.of(model.time_words), time_units={phrase(k)[0]: v for k, v in
                                                                    model.time_units.items()},
        time_prepositions=Phrases.of(model.time_prepositions), sla_verbs=Phrases.of(model.sla_verbs),
        guarantees=Phrases.of(model.guarantees), guarantors=_stems(model.guarantors),
        account_objects=Phrases.of(model.account_objects),
        completed=Phrases.of(model.completed), pending=Phrases.of(model.pending))
    time_gate = frozenset(words[-1] for words in time_words) | frozenset(data.time_units)
    words = (data.money.firsts | data.owing.firsts | data.staying.firsts | time_gate | data.guarantees.firsts)
    return dataclasses.replace(data, words=words, time_gate=time_gate)


# ---- conditions ------------------------------------------------------------------------------------

_TEMPORAL_CUES = frozenset(phrase("once when after upon as the"))
"""First words of the cues that wait for a time or an event ("once", "as soon as", "the moment"), not a choice."""


def condition_hedges(span: list[str], data: DenyData) -> bool:
    """Whether a condition (the words after "if", "once", ...) waits for a team, an approval or a review.

    "once approved", "if the team approves", "once your ID is verified" wait for someone's decision: the
    promise is conditional. "once you confirm", "if the other shop has it cheaper", "after the weekend" wait
    for the customer or for time: the promise stands.
    """
    if not span:
        return True
    present = set(span)
    if data.review.spans(span, 0, 1):  # "once approved", "upon review", "pending verification"
        return True
    if span[0] in data.pronouns and data.outcomes.spans(span, 1, min(len(span), 3)):
        return True  # "if that succeeds", "assuming it checks out": the outcome of the check just described
    if span[0] in data.customer:  # the customer acts, unless what happens to them is a review ("your ID is verified")
        for _, end in data.passive.spans(span):
            if data.review.spans(span, end, min(len(span), end + 2)):
                return True
        return data.team.within(present, span)  # "after your payments settle and Legal approve it"
    return data.team.within(present, span) or data.review.within(present, span)


def _conditions(stems: list[str], data: DenyData, lexicon: Lexicon) -> list[bool]:
    """For each condition the clause holds, whether it hedges (`condition_hedges` on the words after it)."""
    found = []
    for start, end in data.cues.spans(stems):
        span = stems[end:end + 12]
        reviews = data.review.spans(span) if stems[start] in _TEMPORAL_CUES and span and span[0] not in data.customer \
            else []
        if reviews:  # "once approved" waits for a result; "once the investigation closes": the promise stands
            found.append(lexicon.awaits_result(span, reviews))
        else:
            found.append(condition_hedges(span, data))
    positions = _positions(stems)
    for first in lexicon.condition.firsts.intersection(positions):  # "whether", "unless": always a hedge
        for i in positions[first]:
            if lexicon.condition.match_at(stems, i, len(stems)) >= 0 and not data.cues.spans(stems, i, i + 1):
                found.append(True)
    return found


def unconditional(clause: Clause, leads: Sequence[Clause], lexicon: Lexicon,
                  data: DenyData | None = None) -> bool:
    """Whether a clause that reads as conditional is in fact a promise: every condition waits on the customer.

    `leads` are the conditional clauses before it in the same sentence. True only when there is a condition,
    none of them waits for a team, an approval or a review, and nothing else in the clause hedges or asks.
    """
    data = data or load_deny()
    if clause.question:
        return False
    stems = clause.stems
    verdicts: list[bool] = []
    for part in [*(lead.stems for lead in leads), stems]:
        verdicts += _conditions(part, data, lexicon)
    if not verdicts or any(verdicts):
        return False
    hedge = lexicon.hedge
    if not hedge.firsts.isdisjoint(stems):
        cue_words = data.cues.firsts | lexicon.condition.firsts | lexicon.temporal.firsts
        for i, word in enumerate(stems):
            if word in hedge.firsts and word not in cue_words and hedge.match_at(stems, i, len(stems)) >= 0:
                return False
    return True


# ---- the reading of one clause ---------------------------------------------------------------------

_REPORTING = frozenset(phrase("mention said say wrote write ask asked told tell request claim note messag email "
                              "want like wish promis quot")) | {"'d"}


def _reported(stems: list[str], data: DenyData) -> bool:
    """Someone else's words or wishes ("you mentioned ...", "your note says a previous agent promised ...")."""
    head = stems[:6]
    return bool(head) and (head[0] in data.customer or (len(head) > 1 and head[1] in data.customer)) \
        and any(word in _REPORTING for word in head[1:])


def _negated(stems: list[str], lexicon: Lexicon, stop: int | None = None) -> bool:
    """Whether a negation stands in the clause before `stop` (an idiom that commits, "won't have to pay", is none)."""
    negation = lexicon.negation
    positions = _positions(stems)
    firsts = negation.firsts.intersection(positions)
    if not firsts:
        return False
    exceptions = lexicon.negation_exceptions
    end = len(stems) if stop is None else min(stop, len(stems))
    return any(i < end and negation.match_at(stems, i, len(stems)) >= 0
               and exceptions.match_at(stems, i, len(stems)) < 0
               for first in firsts for i in positions[first])


def _hedged(stems: list[str], lexicon: Lexicon, stop: int | None = None, masked: set[int] | None = None) -> bool:
    """Whether a hedge ("may", "whether", "decided by") stands in the clause before `stop`, outside `masked`."""
    hedge = lexicon.hedge
    positions = _positions(stems)
    firsts = hedge.firsts.intersection(positions)
    if not firsts:
        return False
    end = len(stems) if stop is None else min(stop, len(stems))
    masked = masked or set()
    return any(i < end and i not in masked and hedge.match_at(stems, i, len(stems)) >= 0
               for first in firsts for i in positions[first])


_BEFORE_VERB = frozenset(phrase("i we you they he she it who that team colleague 've 'll 'm 're 's 'd will would shall "
                                "can could have has had be been is are am was were to do did does also just already "
                                "now still happy glad personally first")) | {"n't", "not"}
"""Words a verb follows: a subject, an auxiliary, "to", an adverb. An allowed word counts as the clause's verb
only after one of these (or first in the clause): "exporting reports" holds "report" as a noun."""


_HANDOVER = frozenset(phrase("to with"))
_PRONOUNS = frozenset(phrase("we our they them us someone company"))
"""Team words that name no team to hand over to ("dealt with it on our side" hands nothing over)."""


def _verb_at(stems: list[str], start: int) -> bool:
    return start == 0 or stems[start - 1] in _BEFORE_VERB


def _allowed(stems: list[str], present: set[str], data: DenyData) -> bool:
    """Whether the clause's verb is one that commits to nothing (perception only with the writer as subject).

    A clause that hands its object to a team ("it has gone to our Billing team", "is now with our
    specialists") is a hand-over too.
    """
    if not data.team.firsts.isdisjoint(present):
        for start, _ in data.team.spans(stems):
            before = stems[max(0, start - 5):start]
            if stems[start] not in _PRONOUNS and any(word in _HANDOVER for word in before) and "your" not in before:
                return True
    if data.logged.within(present, stems):
        return True  # "I've added that to the ticket": recorded, not done
    writer = not present.isdisjoint(data.writer)
    verb = _main_verb(stems, present, data)
    if verb is not None:  # the verb after the subject or auxiliary decides ("has been corrected to the $880 you
        # were quoted" is a correction, whatever verbs follow)
        return _starts_at(data.allow, stems, verb) or (writer
                                                       and _starts_at(data.writer_only, stems, verb))
    if not data.allow.firsts.isdisjoint(present) and any(_verb_at(stems, start) for start, _ in
                                                          data.allow.spans(stems)):
        return True
    return writer and not data.writer_only.firsts.isdisjoint(present) and any(
        _verb_at(stems, start) for start, _ in data.writer_only.spans(stems))


def _starts_at(phrases: Phrases, stems: list[str], at: int) -> bool:
    """Whether one of `phrases` begins at position `at`."""
    return any(tuple(stems[at:at + len(candidate)]) == candidate for candidate in phrases.index.get(stems[at], ()))


_SKIP = frozenset(phrase("have has had 've 'll will shall would could can 'd be been being is are am 'm 're 's was "
                         "were just also already now still personally happily gladly then do did does happy glad "
                         "to")) | {
                             "n't", "not"}
"""Auxiliaries and adverbs between a subject or a marker and the verb it carries."""


def _perfect(stems: list[str], data: DenyData, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """The perfect markers of the clause ("has been", "is now"), without the idioms of "now" ("for now")."""
    found = data.perfect.spans(stems, start, len(stems) if end is None else end)
    if not found or "now" not in stems:
        return found
    idle = {i for a, b in data.perfect_idioms.spans(stems) for i in range(a, b)}
    return [(a, b) for a, b in found if not (b - a == 1 and stems[a] == "now" and a in idle)]


def _main_verb(stems: list[str], present: set[str], data: DenyData) -> int | None:
    """Position of the verb the clause's first subject ("we", "I") or first future/perfect marker carries."""
    positions = _positions(stems)
    writers = data.writer.intersection(positions)
    starts = [min(positions[word][0] for word in writers) + 1] if writers else []  # the word after "we"
    if not data.future.firsts.isdisjoint(present):
        starts += [end for _, end in data.future.spans(stems)][:1]  # the word after "will"
    if not data.perfect.firsts.isdisjoint(present):
        starts += [end for _, end in _perfect(stems, data)][:1]  # the word after "has been"
    if not starts:
        return None
    at = min(starts)
    while at < len(stems) and stems[at] in _SKIP:
        at += 1
    return at if at < len(stems) else None


def _asserts_outcome(stems: list[str], present: set[str], data: DenyData) -> bool:
    """A mark that the clause states an outcome (the writer acting, future, perfect, a result particle)."""
    if not present.isdisjoint(data.writer) or data.future.within(present, stems) or (
            not data.perfect.firsts.isdisjoint(present) and _perfect(stems, data)):
        return True
    if data.result.firsts.isdisjoint(present):
        return False
    idioms = {i for start, end in data.result_idioms.spans(stems) for i in range(start, end)}
    return any(start not in idioms and not (end < len(stems) and stems[end] in data.money.firsts)
               for start, end in data.result.spans(stems))  # "one settled charge": a description, not an outcome


def _demand_waived(stems: list[str], present: set[str], data: DenyData, money: bool) -> str | None:
    """A future negation of owing ("you won't pay for the days", "nothing further to pay"): waiver or refund."""
    if data.demand_negations.firsts.isdisjoint(present):
        return None
    for _, end in data.demand_negations.spans(stems):
        window = (end, min(len(stems), end + 4))
        if data.owing.spans(stems, *window):
            return "waiver"
        if money and data.staying.spans(stems, *window):
            return "refund"
    return None


@functools.lru_cache(maxsize=256)
def _sla_hours(sla: str | None, data: DenyData) -> Decimal | None:
    """The shortest time the decision's SLA names, in hours ("4 business hours" → 4); None without one."""
    if not sla:
        return None
    return _times(phrase(sla), data, bare=True)


_NUMBER = re.compile(r"\d+(?:\.\d+)?$")
_NUMBER_WORDS = {"an": Decimal(1), "a": Decimal(1), "one": Decimal(1), "two": Decimal(2), "three": Decimal(3),
                 "four": Decimal(4), "few": Decimal(2), "next": Decimal(1)}


def _times(stems: list[str], data: DenyData, *, bare: bool = False) -> Decimal | None:
    """The shortest time frame the words name, in hours ("within 2 hours", "by Friday", "today")."""
    found: list[Decimal] = []
    for start, end in data.time_word_phrases.spans(stems):
        value = data.time_words.get(tuple(stems[start:end]))
        if value is None:  # a longer phrase of the same first word matched a prefix: look the span up by length
            continue
        found.append(value)
    starts = [end for _, end in data.time_prepositions.spans(stems)] if not bare else range(len(stems))
    for at in starts:
        j = at
        if j < len(stems) and stems[j] in ("the", "next"):
            j += 1
        if j >= len(stems):
            continue
        word = stems[j]
        number = Decimal(word) if _NUMBER.match(word) else _NUMBER_WORDS.get(word)
        if number is None:
            continue
        k = j + 1
        while k < len(stems) and stems[k] in ("busi", "work", "calendar", "more", "full", "-"):
            k += 1
        if k < len(stems) and stems[k] in data.time_units:
            found.append(number * data.time_units[stems[k]])
    return min(found) if found else None


@dataclasses.dataclass(slots=True)
class _State:
    """What earlier clauses left for later ones: a money object to bind "it" to, hedging conditions."""

    money_sentence: int = -2
    hedged_sentence: int = -1
    object_sentence: int = -1
    """The sentence whose last clause named an account object ("The window ..., has been confirmed")."""


def _clause_findings(clause: Clause, text: str, decision: Decision, lexicon: Lexicon,
                     data: DenyData, state: _State) -> list[tuple[str, str]]:
    stems = clause.stems
    present = set(stems)
    if (present.isdisjoint(data.words) and stems[0] not in data.cues.firsts
            and (present.isdisjoint(data.pronouns) or state.money_sentence < clause.sentence - 1)
            and ((present.isdisjoint(data.account_objects.firsts) and stems[0] != "your")
                 or (present.isdisjoint(data.completed.firsts) and present.isdisjoint(data.future.firsts)
                     and present.isdisjoint(data.perfect.firsts)))):
        return []
    money = _money_object(stems, present, data)
    if money:
        state.money_sentence = clause.sentence
    elif not present.isdisjoint(data.pronouns) and state.money_sentence >= clause.sentence - 1:
        money = _refers(stems, data)  # "it", "that" for the charge of this sentence or the one before
    if clause.reported:
        return []  # the customer's words, reported (its money is still what a later "it" refers to)
    if stems[0] in data.cues.firsts and data.cues.spans(stems, 0, 1):
        if any(_conditions(stems, data, lexicon)):  # "Once the team approves it, ..." hedges the rest of the sentence
            state.hedged_sentence = clause.sentence
            return []
        main = _main_clause(stems)  # "When Jo next logs in | she'll see her admin rights": the promise after it
        if main is None:
            return []  # the condition itself ("once you confirm the digits") promises nothing
        return _clause_findings(_Part(clause.start, clause.end, stems[main:], clause.sentence, clause.question),
                                text, decision, lexicon, data, state)
    if clause.question or state.hedged_sentence == clause.sentence or lexicon.asked(stems) > 0:
        return []  # asked, hedged by its condition, or the customer's to do ("please avoid further exports")
    timed = not present.isdisjoint(data.time_gate) or not present.isdisjoint(data.guarantees.firsts)
    owing = not present.isdisjoint(data.demand_negations.firsts) and not (
        present.isdisjoint(data.owing.firsts) and present.isdisjoint(data.staying.firsts))
    continued = stems[0] in _CONTINUATION and state.object_sentence == clause.sentence  # "..., has been confirmed"
    objects = not present.isdisjoint(data.account_objects.firsts)
    if objects and data.account_objects.spans(stems, 0, min(len(stems), 6)):
        state.object_sentence = clause.sentence
    addressed = len(stems) > 1 and ((stems[0] in _ADDRESSEES and stems[1] in _COPULA)  # "you're all set"
                                    or _possessed(stems) is not None)  # "your 10GB is live"
    # read only when a finding could depend on it: without money, time or an object it changes nothing
    outcome = (money or timed or objects or continued or addressed) and _asserts_outcome(stems, present, data)
    complete = (objects or continued or addressed) and (outcome or not present.isdisjoint(data.completed.firsts))
    if not ((money and outcome) or timed or owing or complete):
        return []  # nothing this reading could find
    conditions = _conditions(stems, data, lexicon)
    if any(conditions) or _reported(stems, data):
        return []
    if conditions:  # a condition on the customer or on time: the promise is what stands before it
        cut = next((start for start, _ in data.cues.spans(stems) if start > 0), len(stems))
        if cut < len(stems):
            stems = stems[:cut]
            present = set(stems)
            money = money and (_money_object(stems, present, data) or _refers(stems, data))
    scope = _scope(stems, present, data)  # a negation or hedge after it belongs to a clause of its own
    if not lexicon.hedge.firsts.isdisjoint(present) and _hedged(stems, lexicon, scope,
                                                                 _not_hedges(stems, present, data)):
        return []
    grant = decision.grant
    found: list[tuple[str, str]] = []
    kind = _demand_waived(stems, present, data, money) if owing else None
    if kind is not None:  # "you won't pay for it", "nothing more to pay": read before the negation disarms it
        if not (kind == "refund" and grant.money_kinds):
            found.append(("unauthorized_refund", f"the reply promises the customer will not pay or be charged "
                          f"(a {kind}), which the decision ({_describe(decision)}) does not grant"))
        return found
    if _negated(stems, lexicon, scope):
        return found
    allowed = _allowed(stems, present, data)
    if money and not allowed and outcome:
        found += _money(text[clause.start:clause.end], decision, lexicon.money_nouns.keys().isdisjoint(stems))
    if timed:
        found += _time(stems, present, decision, data, allowed, outcome or money or objects)
    if complete and not allowed:
        if not _DATED_RECORD.search(text, clause.start, clause.end):  # "your plan started on 05/02/2024": a record
            found += _completion(stems, present, decision, data, continued)
    return found


_SUBJECTS = frozenset(phrase("i we you he she they it"))
_AUXILIARIES = frozenset(phrase("'ll will 'd would can could 'm 're 's 've is are am has have shall"))


def _main_clause(stems: list[str]) -> int | None:
    """Where the main clause begins in a clause that opens with its condition and has no comma between them.

    It is the first subject pronoun with an auxiliary after the condition's own words.
    """
    for i in range(2, len(stems) - 1):
        if stems[i] in _SUBJECTS and stems[i + 1] in _AUXILIARIES:
            return i
    return None


_CONTINUATION = frozenset(phrase("has have is are was were will 'll been"))
"""First words of a clause that continues the subject of the clause before it."""


def _not_hedges(stems: list[str], present: set[str], data: DenyData) -> set[int]:
    """Positions of words that look like hedges but are not: a state ("back to normal") or a month ("1 May")."""
    masked = {i for phrases in (data.completed, data.result) if not phrases.firsts.isdisjoint(present)
              for start, end in phrases.spans(stems) for i in range(start, end)}
    if "may" in present:
        masked.update(i for i, word in enumerate(stems) if word == "may" and (
            (i > 0 and stems[i - 1].isdigit()) or (i + 1 < len(stems) and stems[i + 1].isdigit())))
    return masked


_SCOPE = 5
"""Words after the first money or account object within which a negation or hedge still governs it."""


def _scope(stems: list[str], present: set[str], data: DenyData) -> int:
    """Where the part of the clause that speaks of its objects ends.

    In "we'll put ¥5,000 back on your account for the days you couldn't use it" the negation belongs to the
    days, not to the money.
    """
    for phrases in (data.money, data.account_objects):  # the money it speaks of, else the account object
        if not phrases.firsts.isdisjoint(present):
            spans = phrases.spans(stems)
            if spans:
                return spans[0][1] + _SCOPE
    return len(stems)


def _money_object(stems: list[str], present: set[str], data: DenyData) -> bool:
    """Whether the clause names a money object of the customer's (not a compound such as "payment plan")."""
    if data.money.firsts.isdisjoint(present):
        return False
    spans = [(start, end) for start, end in data.money.spans(stems)
             if not any(word in _TOPIC or (word == "for" and stems[start] not in data.currencies)
                        for word in stems[max(0, start - 3):start])]  # "a dispute about the bill"
    if data.money_compounds.firsts.isdisjoint(present):
        return bool(spans)
    masked = {i for start, end in data.money_compounds.spans(stems) for i in range(start, end)}
    return any(start not in masked for start, _ in spans)


def _refers(stems: list[str], data: DenyData) -> bool:
    """Whether a pronoun of the clause stands for the money itself, not for the topic ("get back to you about that")."""
    return any(word in data.pronouns and not (i and stems[i - 1] in _TOPIC) for i, word in enumerate(stems))


_TOPIC = frozenset(phrase("about regarding concerning re over"))
"""Words before a money object that make it the topic of something else ("your dispute about the June bill");
"for" too, before a money noun ("a payment plan for this invoice") but not before an amount ("has it for $20")."""


def _describe(decision: Decision) -> str:
    return f"{decision.outcome} under {decision.policy or 'no policy'}"


_CONTEXT_BEFORE = re.compile(r"\b(?:your|of\s+your|total(?:\s+of)?|charged|paid|of\s+the|usual|out\s+of)\s*$",
                             re.IGNORECASE)
_CONTEXT_AFTER = re.compile(r"\s*(?:monthly\s+|annual\s+|yearly\s+)?(?:fee|invoice|bill|plan|subscription|balance|"
                            r"order|purchase|total|per\s+month|a\s+month|/\s?mo)\b", re.IGNORECASE)


def _money(text: str, decision: Decision, unread: bool) -> list[tuple[str, str]]:
    """A money outcome held to the grant: covered when a refund or credit is granted and every amount fits.

    `unread`: the clause holds no money word of the commitment lexicon, whose reading already holds such a
    clause's amounts to the ceiling (so they are read here only when it has not).
    """
    grant = decision.grant
    if not grant.money_kinds - {"replacement"}:
        return [("unauthorized_refund", f"the reply asserts an outcome for the customer's money, which the decision "
                 f"({_describe(decision)}) does not grant")]
    if not unread:
        return []
    problems = []
    for money, start, end in iter_amounts(text):
        if _CONTEXT_BEFORE.search(text, max(0, start - 20), start) or _CONTEXT_AFTER.match(text, end):
            continue  # "your $400 monthly fee", "the $420 invoice": the bill, not the money promised
        if not money.is_usd:
            problems.append(("unauthorized_refund", f"the reply names {money}, but the decision grants US dollars "
                             "only"))
        elif grant.ceiling is not None and money.amount > grant.ceiling:
            problems.append(("unauthorized_refund", f"the reply names {money}, above the "
                             f"{Money(amount=grant.ceiling)} the decision grants"))
    return problems


def _time(stems: list[str], present: set[str], decision: Decision, data: DenyData, allowed: bool,
          outcome: bool) -> list[tuple[str, str]]:
    """A time frame shorter than the SLA, or a dated or guaranteed outcome the decision does not produce."""
    hours = None if present.isdisjoint(data.time_gate) else _times(stems, data)
    guaranteed = data.guarantees.within(present, stems) and not any(
        word in data.guarantors for start, _ in data.guarantees.spans(stems)
        for word in stems[max(0, start - 3):start])  # "the SLA promises 99.9% uptime" describes the contract
    if hours is None and not guaranteed:
        return []
    sla = _sla_hours(decision.sla, data)
    if data.sla_verbs.within(present, stems):
        if hours is not None and sla is not None and hours < sla:
            return [("unauthorized_commitment", f"the reply promises a time shorter than the decision's SLA "
                     f"({decision.sla})")]
        if guaranteed and hours is not None and (sla is None or hours < sla):  # "... within 15 minutes, guaranteed"
            return [("unauthorized_commitment", f"the reply guarantees a time the decision ({_describe(decision)}, "
                     f"SLA {decision.sla or 'none'}) does not give")]
        return []
    if allowed or not (outcome or guaranteed):
        return []
    if decision.outcome == "automate" and not guaranteed and hours is not None:
        if sla is not None and 0 < hours < sla and (data.future.within(present, stems) or "by" in present):
            # a future or a deadline ("gone by the end of today"); "right away" is the granted action started now
            return [("unauthorized_commitment", f"the reply promises the granted action sooner than the decision's "
                     f"SLA ({decision.sla})")]  # "it will be back on your card within the hour"
        return []  # the system performs the granted action; its SLA is the longest it may take (guard/DECISIONS.md)
    if decision.outcome == "automate" and guaranteed and hours is None:
        return []
    what = "a guaranteed outcome" if hours is None else "an outcome by a time"
    return [("unauthorized_commitment", f"the reply promises {what} that the decision ({_describe(decision)}, SLA "
             f"{decision.sla or 'none'}) does not give")]


_COPULA = frozenset({"'re", "are", "'ll", "will", "have", "'ve", "now"})
_FUTURE_AUX = frozenset({"'ll", "will"})
_VERB_AFTER_POSSESSED = frozenset(phrase("is are 's has have will 'll"))


def _possessed(stems: list[str]) -> int | None:
    """Where the predicate begins when the clause opens with the customer's own thing ("your 10GB is live")."""
    if stems[0] != "your":
        return None
    return next((k for k in range(2, min(len(stems), 5)) if stems[k] in _VERB_AFTER_POSSESSED), None)
_ADDRESSEES = frozenset(phrase("you he she"))
"""The customer and the customer's people as the subject of a promised outcome."""


_DATED_RECORD = re.compile(r"""
    \b (?:[a-z]{2,}ed|began|sent|went|shipped) \s+ (?:on \s+)?
    (?:\d{1,4}[-/.]\d | \d{1,2}(?:st|nd|rd|th)?\s+(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)
      | (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \s+ \d)   # "shipped on 2024-06-11", "shipped 5 June"
    """, re.VERBOSE | re.IGNORECASE)
"""A past event dated to a day ("shipped on 2024-06-11", "started on 05/02/2024"): what the records show."""


def _completion(stems: list[str], present: set[str], decision: Decision, data: DenyData,
                continued: bool) -> list[tuple[str, str]]:
    """A state or outcome of an account object that the decision does not produce.

    "your admin login is ready", "the plan starts next month": a completed state. "the erasure will go
    ahead", "your data has been wiped": the object as subject, then a future or perfect verb that is not a
    pending state ("will be reviewed", "is still with our team"). `continued`: the clause continues the subject
    of the clause before it.
    """
    if decision.outcome == "automate":
        return []
    subjects = data.account_objects.spans(stems, 0, min(len(stems), 6))
    starts = [end for _, end in subjects if not (end < len(stems) and stems[end] in _TOPIC_HEADS)]
    if continued:
        starts.append(0)
    possessed = _possessed(stems)
    if possessed is not None:
        starts.append(possessed)
    if len(stems) > 1 and stems[0] in _ADDRESSEES and stems[1] in _COPULA:
        starts.append(2)  # "you're all set"
        if subjects and stems[1] in _FUTURE_AUX:  # "she'll see her admin rights": the object as the outcome
            return [("unauthorized_commitment", f"the reply promises the customer an outcome that the decision "
                     f"({_describe(decision)}) leaves to a person or team")]
    for at in starts:
        window = (at, min(len(stems), at + _PREDICATE))
        done = data.completed.spans(stems, *window) or data.future.spans(stems, *window) or _perfect(
            stems, data, *window)
        if done and not data.pending.spans(stems, at, min(len(stems), done[0][1] + 3)):
            return [("unauthorized_commitment", f"the reply states as done or settled what the decision "
                     f"({_describe(decision)}) leaves to a person or team")]
    return []


_PREDICATE = 12
"""Words after an account object within which its predicate is read ("The change window on 12 May, 02:00-04:00
UTC, has been confirmed")."""
_TOPIC_HEADS = frozenset(phrase("request queri question issu problem ticket case process polici form status page "
                                "option procedur workflow team inquiri enquiri rule term threshold claim histori "
                                "concern detail manag holder owner number id name email execut protect offic"))
"""Words after an account object that make it the topic of another noun ("your access request")."""


def findings(text: str, clauses: Sequence[Clause], decision: Decision, lexicon: Lexicon,
             span: Callable[[int, int], str], data: DenyData | None = None,
             earlier: Sequence[Sequence[Finding]] = ()) -> list[Finding]:
    """Every commitment the default-deny reading finds in the clauses of `text`, held to the decision's grant.

    `span(start, end)` gives the original characters behind a span of `text` (the evidence). `earlier[i]`: what
    the commitment lexicon already found in clause `i`; a finding of the same code about the same text is not
    repeated (compared within the clause only, so the comparison stays linear in the length of the draft).
    """
    data = data or load_deny()
    state = _State()
    found: list[Finding] = []
    for number, clause in enumerate(clauses):
        if clause.stems:
            new = []
            for part in _relative_parts(clause):
                new += _clause_findings(part, text, decision, lexicon, data, state)
            if new:
                evidence = span(clause.start, clause.end)[:500]
                fresh = [(code, message, evidence) for code, message in dict.fromkeys(new)]
                found += _unrepeated(fresh, earlier[number] if number < len(earlier) else ())
    return found


def _unrepeated(found: Sequence[Finding], earlier: Sequence[Finding]) -> list[Finding]:
    """The findings whose code `earlier` does not already hold for the same text (one evidence within the other)."""
    if not earlier:
        return list(found)
    return [finding for finding in found if not any(
        code == finding[0] and evidence and (evidence in finding[2] or finding[2] in evidence)
        for code, _, evidence in earlier)]


@dataclasses.dataclass(frozen=True, slots=True)
class _Part:
    """A relative clause read on its own ("…, who'll have it fixed within 15 minutes"): its verb is its own."""

    start: int
    end: int
    stems: list[str]
    sentence: int
    question: bool
    reported: bool = False


_RELATIVES = frozenset({"who", "which"})


def _relative_parts(clause: Clause) -> list[Clause]:
    stems = clause.stems
    if _RELATIVES.isdisjoint(stems):
        return [clause]
    cuts = [i for i, word in enumerate(stems) if word in _RELATIVES and i > 0] + [len(stems)]
    parts: list[Clause] = [_Part(clause.start, clause.end, stems[:cuts[0]], clause.sentence, clause.question)]
    parts += [_Part(clause.start, clause.end, stems[a:b], clause.sentence, clause.question)
              for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
    return parts


_COMPARISONS = 100_000
"""Most pairs of internal and leak findings compared for containment (beyond it, equal evidence only)."""


def read(norm: Normalized, text: str, clauses: Sequence[Clause], decision: Decision, lexicon: Lexicon,
         leaks: Sequence[Finding] = (), earlier: Sequence[Sequence[Finding]] = ()) -> list[Finding]:
    """The default-deny findings of one draft: internal material, then the clauses' commitments.

    `text` is the normalised prose the clauses were split from (reported quotations blanked). `leaks`: the
    leak findings of the whole draft; `earlier[i]`: the commitment lexicon's findings in clause `i`. A finding
    of a code they already hold for the same text is not repeated.
    """
    internal = internal_findings(norm.prose, norm.original_span, [word for clause in clauses for word in clause.stems])
    if internal and leaks:
        same = list(dict.fromkeys(leak for leak in leaks if leak[0] == "internal_leak"))
        if len(internal) * len(same) <= _COMPARISONS:
            internal = _unrepeated(internal, same)
        else:  # thousands of each (a pasted dump): the same evidence only, so that time stays linear
            written = {evidence for _, _, evidence in same}
            internal = [finding for finding in internal if finding[2] not in written]
    return internal + findings(text, clauses, decision, lexicon, norm.original_span, earlier=earlier)
