"""The commitment vocabulary (`guard/lexicon.yaml`), validated and compiled for the reply check.

Words are compared as Snowball English stems, so the data lists one form per word and the check
reads every inflection. Loading validates the file with pydantic (unknown keys, empty frames and
unknown kinds are errors that name their place) and builds an index from a phrase's first stem to
the frames it can start, so reading a reply costs one dictionary look-up per word.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import snowballstemmer
import yaml
from sopilot.guard.compiled import cached_compile, read_yaml
from sopilot.guard.normalize import normalize

from sopilot.core.errors import ConfigError

LEXICON_FILE = Path(__file__).with_name("lexicon.yaml")
MONEY_KINDS = frozenset({"refund", "credit", "waiver", "replacement"})
GAP = "..."
GAP_WORDS = 4

_TOKEN = re.compile(r"""
    n't                          # "haven't" -> "have" + "n't"
    | '(?:ve|ll|re|d|m|s)\b      # "we've" -> "we" + "'ve"
    | [a-z0-9]+(?=n't)
    | [a-z0-9]+                  # "read-only" is "read" "only": the lexicon is tokenised the same way
    | [$€£¥₹%+]
    """, re.VERBOSE)
_TOKEN_PLAIN = re.compile(r"""
    '(?:ve|ll|re|d|m|s)\b | [a-z0-9]+ | [$€£¥₹%+]
    """, re.VERBOSE)
"""`_TOKEN` for a text without "n't": its other branches, without the look-ahead every word would be tried with."""
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@functools.lru_cache(maxsize=1)
def _stemmer():
    return snowballstemmer.stemmer("english")


_STEMS: dict[str, str] = {}
_OVERRIDES: dict[str, str] = {}
_BRITISH = (("isations", "izations"), ("isation", "ization"), ("ising", "izing"), ("ised", "ized"), ("ises", "izes"),
            ("isers", "izers"), ("iser", "izer"), ("ise", "ize"), ("ysing", "yzing"), ("ysed", "yzed"), ("yse", "yze"))
"""British endings and their American forms, folded before stemming: Snowball stems "authorized" to "author" and
"authorised" to "authoris", so a lexicon word written in one spelling never matched a reply written in the other.
Words that only happen to end so ("promise", "raise") are folded on both sides alike and still match."""


def _american(word: str) -> str:
    """`word` with a British -ise/-yse ending in its American spelling (see `_BRITISH`)."""
    if "is" in word or "ys" in word:
        for british, american in _BRITISH:
            if word.endswith(british) and len(word) > len(british) + 1:
                return word[: -len(british)] + american
    return word


def stem(word: str) -> str:
    """The Snowball English stem of a lower-case word (cached: replies repeat their words)."""
    found = _STEMS.get(word)
    if found is None:
        if word[0] in "'$€£¥₹%+" or word == "n't" or word[0].isdigit():
            found = word
        elif word in _OVERRIDES:
            found = _OVERRIDES[word]
        else:
            found = _stemmer().stemWord(_american(word))
        if len(_STEMS) < 200_000:
            _STEMS[word] = found
    return found


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """(stem, start, end) of every word of `text` (ASCII case folded; offsets into `text`)."""
    lowered = text.translate(_ASCII_LOWER)
    return [(stem(m.group(0)), m.start(), m.end()) for m in _TOKEN.finditer(lowered)]


def ascii_lower(text: str) -> str:
    """`text` lower-cased for reading words: ASCII letters folded, same length, same offsets, same words.

    `str.lower` is used when it keeps the length and makes no letter outside ASCII an ASCII one (only "K",
    the Kelvin sign, and "İ" would): the other letters it lowers are no part of any word either way.
    """
    if text.isascii():
        return text.lower()
    if "\u212a" in text or "\u0130" in text:
        return text.translate(_ASCII_LOWER)
    return text.lower()


def stems_of(text: str) -> list[str]:
    """The stems of every word of `text`, in order (the fast path of `tokenize`, without offsets)."""
    cache = _STEMS
    return [cache.get(word) or stem(word) for word in _TOKEN.findall(text.translate(_ASCII_LOWER))]


def stems_in(lowered: str, start: int, end: int) -> list[str]:
    """`stems_of(text[start:end])`, read in place from `lowered = ascii_lower(text)`.

    The same words: no token pattern looks behind its start, and `endpos` reads as the end of the text.
    """
    words = (_TOKEN if lowered.find("n't", start, end) >= 0 else _TOKEN_PLAIN).findall(lowered, start, end)
    try:
        return list(map(_STEMS.__getitem__, words))  # every word seen before: one C-level pass
    except KeyError:
        cache = _STEMS
        return [cache.get(word) or stem(word) for word in words]


def count_words(lowered: str, start: int, end: int) -> int:
    """`len(stems_in(lowered, start, end))`, without stemming."""
    return len((_TOKEN if lowered.find("n't", start, end) >= 0 else _TOKEN_PLAIN).findall(lowered, start, end))


def phrase(text: str) -> tuple[str, ...]:
    """A lexicon phrase as a tuple of stems; `...` stays as the gap marker."""
    words: list[str] = []
    for part in text.split():
        if part == GAP:
            words.append(GAP)
        else:
            words.extend(s for s, _, _ in tokenize(part))
    return tuple(words)


# ---- the file's schema ----------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _file_model() -> Any:
    """The pydantic schema of lexicon.yaml, built only when the file is validated (not when a cached form is read)."""
    from pydantic import BaseModel, ConfigDict, Field

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    class _FrameModel(_Strict):
        terms: list[str] = Field(min_length=1)
        with_: list[str] | None = Field(default=None, alias="with", min_length=1)
        not_after: list[str] = []
        not_before: list[str] = []
        window: int = Field(default=6, ge=1, le=20)

    class _CommitmentModel(_Strict):
        id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
        kind: Literal["refund", "credit", "waiver", "replacement", "action", "approval"]
        sources: list[str] = Field(min_length=1)
        frames: list[_FrameModel] = Field(min_length=1)

    class _PromiseModel(_Strict):
        """The grammatical form of a promise, whatever its verb (single words; see lexicon.yaml `cues.promise`)."""

        subjects: list[str] = Field(min_length=1)
        markers: list[str] = Field(min_length=1)
        openers: list[str]
        owned: list[str]
        determiners: list[str]

    class _ReportedModel(_Strict):
        speakers: list[str] = Field(min_length=1)
        adverbs: list[str]
        verbs: list[str] = Field(min_length=1)
        relatives: list[str]
        acknowledgements: list[str]
        third_party_verbs: list[str]

    class _CuesModel(_Strict):
        negation: list[str]
        negation_exceptions: list[str]
        local_negations: list[str]
        subordinators: list[str]
        hedge: list[str]
        offer: list[str]
        condition: list[str]
        offer_condition: list[str]
        temporal: list[str]
        examine: list[str]
        completion: list[str]
        review: list[str]
        topic_heads: list[str]
        neutral: list[str]
        promise: _PromiseModel
        reported: _ReportedModel
        requests: list[str] = Field(min_length=1)
        request_leads: list[str]
        request_statements: list[str]

    class _LimitsModel(_Strict):
        roles: list[str]
        financial: list[str]
        write_access: list[str]
        permanent: list[str]
        full: list[str]
        multiples: dict[str, Decimal]
        fact_bases: list[str]
        duration_units: dict[str, Decimal]
        not_duration_before: list[str]
        plan_units: dict[str, Decimal]
        sum_words: list[str]
        counts: dict[str, int]
        count_fillers: list[str]
        counted: list[str] = Field(min_length=1)

    class _LanguageModel(_Strict):
        english: list[str] = Field(min_length=20)
        other: list[str] = Field(min_length=20)

    class _FileModel(_Strict):
        version: Literal[1]
        stem_overrides: dict[str, str] = {}
        cues: _CuesModel
        money_objects: list[str]
        commitments: list[_CommitmentModel] = Field(min_length=1)
        limits: _LimitsModel
        language: _LanguageModel

    return _FileModel


# ---- compiled form ---------------------------------------------------------------------------------

Phrase = tuple[str, ...]


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class Frame:
    """One way a commitment is written: a term, optionally with a companion word nearby."""

    commitment: str
    kind: str
    terms: tuple[Phrase, ...]
    companions: tuple[Phrase, ...] | None
    not_after: tuple[Phrase, ...]
    not_before: tuple[Phrase, ...]
    window: int
    after_index: Mapping[str, tuple[Phrase, ...]] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """`not_after` by first stem."""
    before_index: Mapping[str, tuple[Phrase, ...]] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """`not_before` by last stem."""
    companion_index: Mapping[str, tuple[Phrase, ...]] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """`companions` by first stem."""
    companion_words: frozenset[str] = frozenset()
    """The keys of `companion_index`, as a set."""


def _by(phrases: tuple[Phrase, ...] | None, position: int) -> Mapping[str, tuple[Phrase, ...]]:
    index: dict[str, list[Phrase]] = {}
    for p in phrases or ():
        index.setdefault(p[position], []).append(p)
    return MappingProxyType({k: tuple(v) for k, v in index.items()})


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class PhraseSet:
    """Phrases indexed by their first stem, for matching at a word position."""

    by_first: Mapping[str, tuple[Phrase, ...]]
    firsts: frozenset[str] = frozenset()
    """The keys of `by_first`, as a set (a membership test per word is the hot path of the check)."""

    def match_at(self, stems: list[str], i: int, end: int) -> int:
        """The end index of the longest phrase starting at `i` (before `end`), or -1."""
        best = -1
        for candidate in self.by_first.get(stems[i], ()):
            stop = _match(candidate, stems, i, end)
            if stop > best:
                best = stop
        return best

    def found(self, stems: list[str], start: int, end: int) -> bool:
        """Whether any phrase occurs in `stems[start:end]`."""
        firsts = self.firsts
        if firsts.isdisjoint(stems if start == 0 and end == len(stems) else stems[start:end]):
            return False  # the common case, decided in one set operation
        match_at = self.match_at
        for i in range(start, end):
            if stems[i] in firsts and match_at(stems, i, end) >= 0:
                return True
        return False


def _match(candidate: Phrase, stems: list[str], i: int, end: int) -> int:
    """One past the last word of `candidate` matched at `stems[i]` (before `end`), or -1."""
    n = len(candidate)
    if n == 1:
        return i + 1 if i < end and stems[i] == candidate[0] else -1
    if GAP not in candidate:  # a plain phrase: one slice comparison
        stop = i + n
        return stop if stop <= end and tuple(stems[i:stop]) == candidate else -1
    j = i
    k = 0
    while k < len(candidate):
        word = candidate[k]
        if word == GAP:
            nxt = candidate[k + 1]
            for skip in range(GAP_WORDS + 1):
                if j + skip < end and stems[j + skip] == nxt:
                    j += skip
                    break
            else:
                return -1
            k += 1
            continue
        if j >= end or stems[j] != word:
            return -1
        j += 1
        k += 1
    return j


def _stem_set(items: list[str]) -> frozenset[str]:
    """Single-word entries as the set of their stems."""
    return frozenset(word for item in items for word in phrase(item))


def _phrase_set(items: list[str] | tuple[str, ...]) -> PhraseSet:
    index: dict[str, list[Phrase]] = {}
    for item in items:
        p = phrase(item)
        if p and p[0] != GAP:
            index.setdefault(p[0], []).append(p)
    return PhraseSet(by_first=MappingProxyType({k: tuple(v) for k, v in index.items()}), firsts=frozenset(index))


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Lexicon:
    """The compiled vocabulary: cue phrase sets, frames indexed by the first stem of their terms, limits."""

    negation: PhraseSet
    negation_exceptions: PhraseSet
    local_negations: frozenset[str] = frozenset()
    """Negations that govern only a phrase of their own ("without"): see `negated_phrases`."""
    subordinators: frozenset[str] = frozenset()
    """Words that open a subordinate phrase ("since", "because"): a negation after one is that phrase's."""
    hedge: PhraseSet
    offer: PhraseSet
    condition: PhraseSet
    offer_condition: PhraseSet
    temporal: PhraseSet
    review: PhraseSet
    examine: PhraseSet = PhraseSet(by_first=MappingProxyType({}))
    """Verbs that examine their object ("check the provisioning"): a commitment after one is examined, not done."""
    completion: frozenset[str] = frozenset()
    """Stems of review that only has to finish ("once the team has reviewed it"): no condition on its outcome."""
    neutral: PhraseSet
    promise_subjects: frozenset[str] = frozenset()
    """Who promises or receives ("we", "you"): with a marker just after, the clause has the form of a promise."""
    promise_markers: frozenset[str] = frozenset()
    """Future and perfect auxiliaries ("'ll", "will", "'ve", "have")."""
    promise_openers: frozenset[str] = frozenset()
    """Imperatives that open a promise ("expect $40 in your account", "consider the fee gone")."""
    promise_owned: PhraseSet = PhraseSet(by_first=MappingProxyType({}))
    """Predicates that give the customer something ("the $40 is yours"; stems: "is your" before no content word)."""
    determiners: frozenset[str] = frozenset()
    """Words that make an amount attributive when a content word follows it ("the $89 charge")."""
    requests: PhraseSet = PhraseSet(by_first=MappingProxyType({}))
    """Words that open a request to the customer ("please", "kindly"): the verb after them is the customer's."""
    request_leads: frozenset[str] = frozenset()
    """Conjunctions that may stand before the request ("and please ...")."""
    request_statements: frozenset[str] = frozenset()
    """Verbs after "please" that introduce the writer's own statement ("please note ...", "please allow ...")."""
    reported_speakers: PhraseSet = PhraseSet(by_first=MappingProxyType({}))
    """The customer or their message, opening a clause that reports their words ("you", "your note")."""
    reported_adverbs: frozenset[str] = frozenset()
    reported_verbs: PhraseSet = PhraseSet(by_first=MappingProxyType({}))
    """Verbs of saying or wanting after the speaker ("mentioned", "'d like", "says")."""
    reported_relatives: frozenset[str] = frozenset()
    acknowledgements: PhraseSet = PhraseSet(by_first=MappingProxyType({}))
    """Thanks for what the customer did ("Thanks for sending the receipt for $900"): their act, not a promise."""
    third_party_verbs: PhraseSet = PhraseSet(by_first=MappingProxyType({}))
    """Verbs of saying after someone of the customer's ("Your partner engineer asked for ...")."""
    """Words that continue a reported clause with the writer's own statement ("which", "who")."""
    """Idioms that neutralise their words ("get back to you" carries no money back)."""
    frames: tuple[Frame, ...]
    term_index: Mapping[str, tuple[tuple[Phrase, Frame, str | None], ...]]
    """Frames by the first stem of a term: (term, frame, the term's second stem when it must follow at once)."""
    term_words: frozenset[str] = frozenset()
    """The keys of `term_index`, as a set: a clause with none of them commits to nothing."""
    commitment_kinds: Mapping[str, str]
    roles: PhraseSet
    financial: PhraseSet
    write_access: PhraseSet
    permanent: PhraseSet
    full: PhraseSet
    multiples: Mapping[str, Decimal]
    fact_bases: PhraseSet
    duration_units: Mapping[str, Decimal]
    not_duration_before: frozenset[str]
    plan_units: Mapping[str, Decimal]
    sum_words: PhraseSet
    counts: Mapping[str, int]
    """Number words that count payments ("both", "three"): "refund your last three payments" is three of them."""
    count_fillers: frozenset[str]
    """Words that may stand between the count and the payment ("the last three monthly payments")."""
    counted: frozenset[str]
    """The customer's payments, as a count may name them ("payments", "charges", "invoices")."""
    english: frozenset[str]
    other_languages: frozenset[str]
    vocabulary: frozenset[str]
    known: frozenset[str] = frozenset()
    """Stems of the cue words and English function words: never re-read as a commitment word."""
    action_objects: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """Action id → the one-word stems of its terms and companions (what an approval of it names)."""
    money_nouns: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    """One-word money terms → their kind ("refund" → refund), to read what an approval approves."""
    """Every stem of a commitment term or companion (to read a word disguised with letters of another script)."""

    def awaits_result(self, stems: list[str], spans: list[tuple[int, int]]) -> bool:
        """Whether one of the review phrases at `spans` waits for a result ("approved", "verified").

        A review that only has to finish ("reviewed", "investigated") is no condition: a promise after it stands.
        """
        return any(not self.completion.issuperset(stems[a:b]) for a, b in spans)

    def negated_phrases(self, stems: list[str]) -> list[int]:
        """Where the clause divides around a negation that governs only a phrase of its own (sorted word indices).

        "For the five days you went without your data | we'll pay you back": the main clause that follows the
        negated phrase without a comma (a subject and an auxiliary, "we'll") is not negated, nor is the clause
        before the subordinator that opens it ("We've refunded the $900 | since you couldn't use it"). The
        negation must be "without" or stand after a subordinator; "I can't promise we'll refund it" stays whole.
        """
        negation, exceptions, end = self.negation, self.negation_exceptions, len(stems)
        cuts: set[int] = set()
        for i, word in enumerate(stems):
            if (word not in negation.firsts or negation.match_at(stems, i, end) < 0
                    or exceptions.match_at(stems, i, end) >= 0):
                continue
            opener = max((k for k in range(i) if stems[k] in self.subordinators), default=-1)
            if opener < 0 and word not in self.local_negations:
                continue
            if opener > 0:
                cuts.add(opener)
            main = next((j for j in range(i + 1, end - 1)
                         if stems[j] in self.promise_subjects and stems[j + 1] in self.promise_markers), None)
            if main is not None:
                cuts.add(main)
        return sorted(cuts)

    def asked(self, stems: list[str]) -> int:
        """Where the verb stands that the clause asks the customer to do ("and please avoid ..."), or -1.

        A verb that introduces the writer's own statement ("please note ...", "please allow 5 days for ...") is
        not the customer's to do: -1.
        """
        at = 1 if len(stems) > 1 and stems[0] in self.request_leads else 0
        if stems[at] not in self.requests.firsts:
            return -1
        verb = self.requests.match_at(stems, at, len(stems))
        if verb < 0 or verb >= len(stems) or stems[verb] in self.request_statements:
            return -1
        return verb

    @property
    def actions(self) -> frozenset[str]:
        """Ids of the actions a policy's grant may list."""
        return frozenset(c for c, kind in self.commitment_kinds.items() if kind == "action")


def _describe(error: Any) -> str:
    loc = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
    return f"{loc}: {error['msg']}"


@functools.lru_cache(maxsize=4)
def load_lexicon(path: str | Path = LEXICON_FILE) -> Lexicon:
    """Load, validate and compile the lexicon (once per process, and kept compiled between runs: `cached_compile`).

    Raises:
        ConfigError: the file is missing, not YAML, or breaks the schema; the message says where.
    """
    source = Path(path)
    try:
        overrides, lexicon = cached_compile("lexicon", (source.resolve(),), lambda: _build(source))
    except OSError:
        raise ConfigError(f"lexicon file {str(source)!r} not found: restore guard/lexicon.yaml from git") from None
    _use_overrides(overrides)
    return lexicon


def _use_overrides(overrides: dict[str, str]) -> None:
    """Stem with the lexicon's own overrides (the stems cached so far are dropped when they change)."""
    if overrides != _OVERRIDES:
        _OVERRIDES.clear()
        _OVERRIDES.update(overrides)
        _STEMS.clear()


def _build(source: Path) -> tuple[dict[str, str], Lexicon]:
    """The stem overrides and the compiled lexicon of `source` (validated; see `load_lexicon`)."""
    from pydantic import ValidationError

    try:
        raw = read_yaml(source)
    except OSError:
        raise ConfigError(f"lexicon file {str(source)!r} not found: restore guard/lexicon.yaml from git") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source.name}: not valid YAML ({str(exc).splitlines()[0]}); fix the file") from None
    try:
        model = _file_model().model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors()[:3])
        raise ConfigError(f"{source.name}: {problems}") from None
    overrides = {k.lower(): v.lower() for k, v in model.stem_overrides.items()}
    _use_overrides(overrides)
    seen: set[str] = set()
    frames: list[Frame] = []
    kinds: dict[str, str] = {}
    for index, c in enumerate(model.commitments):
        if c.id in seen:
            raise ConfigError(f"{source.name}: commitments[{index}]: id {c.id!r} is used twice")
        seen.add(c.id)
        kinds[c.id] = c.kind
        for f in c.frames:
            companions = f.with_
            if companions is not None and any(item == "*money_objects" for item in companions):
                companions = model.money_objects
            with_ = None if companions is None else tuple(filter(None, map(phrase, companions)))
            after = tuple(filter(None, map(phrase, [*f.not_after, *model.cues.topic_heads])))
            before = tuple(filter(None, map(phrase, f.not_before)))
            frames.append(Frame(
                commitment=c.id, kind=c.kind, terms=tuple(filter(None, map(phrase, f.terms))), companions=with_,
                not_after=after, not_before=before, window=f.window, after_index=_by(after, 0),
                before_index=_by(before, -1), companion_index=_by(with_, 0),
                companion_words=frozenset(p[0] for p in with_ or ())))
    term_index: dict[str, list[tuple[Phrase, Frame, str | None]]] = {}
    for frame in frames:
        for term in frame.terms:
            second = term[1] if len(term) > 1 and term[1] != GAP else None
            term_index.setdefault(term[0], []).append((term, frame, second))
    cues, limits = model.cues, model.limits
    vocabulary = frozenset(word for frame in frames for p in (*frame.terms, *(frame.companions or ()))
                           for word in p if word != GAP and len(word) >= 4 and word.isalpha())
    money_nouns = {term[0]: frame.kind for frame in frames if frame.kind in ("refund", "credit") and frame.companions
                   is not None for term in frame.terms if len(term) == 1 and term[0].isalpha()
                   and frame is next(f for f in frames if f.commitment == frame.commitment)}
    cue_sets = (cues.negation, cues.negation_exceptions, cues.hedge, cues.offer, cues.condition,
                cues.offer_condition, cues.temporal, cues.review, cues.neutral, model.language.english)
    known = frozenset(word for items in cue_sets for item in items for word in phrase(item) if word != GAP)
    spread: dict[str, set[str]] = {}
    for frame in frames:
        for p in (*frame.terms, *(frame.companions or ())):
            spread.setdefault(p[0], set()).add(frame.commitment)
    objects: dict[str, set[str]] = {}
    for frame in frames:  # the words particular to an action ("plan", "access"), not shared verbs ("send")
        if frame.kind == "action":
            objects.setdefault(frame.commitment, set()).update(
                p[0] for p in (*frame.terms, *(frame.companions or ()))
                if len(p) == 1 and len(p[0]) >= 4 and len(spread[p[0]]) < 3)
    return overrides, Lexicon(
        action_objects=MappingProxyType({k: frozenset(v) for k, v in objects.items()}), known=known,
        money_nouns=MappingProxyType(money_nouns), vocabulary=vocabulary, negation=_phrase_set(cues.negation),
        negation_exceptions=_phrase_set(cues.negation_exceptions),
        local_negations=_stem_set(cues.local_negations), subordinators=_stem_set(cues.subordinators),
        hedge=_phrase_set(cues.hedge), offer=_phrase_set(cues.offer), condition=_phrase_set(cues.condition),
        offer_condition=_phrase_set(cues.offer_condition), temporal=_phrase_set(cues.temporal),
        review=_phrase_set(cues.review), examine=_phrase_set(cues.examine),
        completion=frozenset(word for item in cues.completion for word in phrase(item)),
        neutral=_phrase_set(cues.neutral),
        frames=tuple(frames),
        promise_subjects=_stem_set(cues.promise.subjects), promise_markers=_stem_set(cues.promise.markers),
        promise_openers=_stem_set(cues.promise.openers), promise_owned=_phrase_set(cues.promise.owned),
        determiners=_stem_set(cues.promise.determiners),
        requests=_phrase_set(cues.requests), request_leads=_stem_set(cues.request_leads),
        request_statements=_stem_set(cues.request_statements), reported_speakers=_phrase_set(cues.reported.speakers),
        reported_adverbs=_stem_set(cues.reported.adverbs),
        reported_verbs=_phrase_set(cues.reported.verbs), reported_relatives=_stem_set(cues.reported.relatives),
        acknowledgements=_phrase_set(cues.reported.acknowledgements),
        third_party_verbs=_phrase_set(cues.reported.third_party_verbs),
        term_index=MappingProxyType({k: tuple(v) for k, v in term_index.items()}), term_words=frozenset(term_index),
        commitment_kinds=MappingProxyType(kinds),
        roles=_phrase_set(limits.roles), financial=_phrase_set(limits.financial),
        write_access=_phrase_set(limits.write_access), permanent=_phrase_set(limits.permanent),
        full=_phrase_set(limits.full),
        multiples=MappingProxyType({phrase(k)[0]: v for k, v in limits.multiples.items()}),
        fact_bases=_phrase_set(limits.fact_bases),
        duration_units=MappingProxyType({stem(k): v for k, v in limits.duration_units.items()}),
        not_duration_before=frozenset(stem(w) for w in limits.not_duration_before if " " not in w),
        plan_units=MappingProxyType({stem(k): v for k, v in limits.plan_units.items()}),
        sum_words=_phrase_set(limits.sum_words),
        counts=MappingProxyType({stem(k): v for k, v in limits.counts.items()}),
        count_fillers=_stem_set(limits.count_fillers), counted=_stem_set(limits.counted),
        english=frozenset(w.lower() for w in model.language.english),
        # read as a reply is read: its normalisation folds accents ("się" is read "sie")
        other_languages=frozenset(normalize(w.lower()).prose for w in model.language.other)
        - frozenset(w.lower() for w in model.language.english))
