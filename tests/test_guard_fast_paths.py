"""The reply check's fast paths find exactly what the slow ones find (hypothesis).

Every shortcut that makes the check fast (leak patterns tried only where they can match, the reply read
as one token stream sliced per clause) is compared here with the plain computation it replaces, on
generated texts dense with the material it shortcuts: a fast path may never pass what the slow one blocks.
"""

from __future__ import annotations

import importlib
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

check_module = importlib.import_module("sopilot.guard.check")

FRAGMENTS = [
    # leak material in several cases, and what sits around it
    "select", "SELECT", "Select", " * ", "from", "FROM", " invoices", " where ", "update", "UPDATE", " users ",
    " set ", "SET", " status", " = ", "'x'", "insert into", " events ", "(id)", " values", "delete", "drop table",
    "truncate", "alter", "```", "sql", ";", "sk-", "sk_live_", "rk_", "pk-", "ghp_", "ghp-", "gho_", "xoxb-",
    "glpat-", "AKIA", "ABCDEFGHIJKLMNOP", "0123456789abcdef", "api_key", "api-key", "apikey", ": ", "=",
    "Bearer ", "eyJhbGciOiJIUzI1NiIsInR5cCI6", "postgresql://", "user", ":secret@", "host", "reports-db-02",
    ".internal", ".corp", ".local", ".intranet", "password", "passwd", "pass", "pwd", "token", "secret", " is ",
    "Rpt#2023!", "login", "username", "credentials", " / ", "S3cret!", "internal", "Internal", "only", "note",
    "Note", " for ", "agent", "staff", "private", "(", ")", "use", ",", " do not ", "don't", "never", "share",
    "disclose", "tell", " customers", " until", "{", "}", "{{", "}}", "name", "0", "*|", "|*", "FNAME", "%",
    "DATE", "${", "{%", "%}", "___", "__", "NAME", "$", "CUSTOMER_NAME", ":", "customer_name", "INSERT_",
    "ENTER_", "AGENT", "YOUR_", "xx", "XXX", "X", "TODO", "FIXME", "TBD", "%s", "%(first_name)s", ".", "-",
    # whole leaks, so that generated texts hold every alternative of every pattern
    "SELECT * FROM invoices;", "update users set status = 'x'", "UPDATE invoices SET", "insert into events (id)",
    "delete from queue where", "DROP TABLE users", "```sql", "sk_live_51HqABCDEFGHIJKLMNOP", "xoxb-0123456789abcdef",
    "AKIA0123456789ABCDEF", "api_key = x", "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6", "postgresql://app:pw@db",
    "reports-db-02.internal", "password is Rpt#2023!", "login is admin / S3cret!", "Internal note:", "(internal:",
    "(private", "agent note", "staff note", "private note", "notes for the agents", "note to team", "for internal use",
    "internal, do not", "do not share this with customers", "never disclose:", "don't tell customers until",
    "{ticket_id}", "{{ customer.name }}", "{0}", "{}", "*|FNAME|*", "%DATE%", "${customer_name}", "{% if vip %}",
    "Dear ____ ", "%(first_name)s", " %s ", "__NAME__", "$DATE", "$CUSTOMER_NAME", " :customer_name",
    "INSERT_AGENT_NAME", " XXX ", "$X.XX", "$ XX", " TODO ", " TBD ",
    # letters a case-insensitive pattern reads as ASCII, and plain words
    "\u0131", "\u017f", "\u212a", "\u0130", "\u00e9", "refund", "we", " ", " ", "\n", "\t", "\u00a0",
]
texts = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_leak_scan_finds_what_a_full_scan_finds(text: str) -> None:
    """Trying each leak pattern only at its starts (or in runs with a trigger) equals `finditer` on the text."""
    lowered = check_module._lowered(text)
    scan = lowered if len(lowered) == len(text) else None
    for rule in check_module._LEAK_RULES:
        full = [(m.start(), m.end()) for m in rule.pattern.finditer(text)]
        if full:  # every match holds a trigger, so the rule is tried whenever it can match
            assert any(trigger in lowered for trigger in rule.triggers), (rule.pattern.pattern[:40], text)
        fast = [(m.start(), m.end()) for m in check_module._scan(rule, text, scan)]
        assert fast == full, (rule.pattern.pattern[:40], text)


def test_leak_scan_on_every_labelled_draft() -> None:
    """The same equality on the normalised text of every draft of the labelled sets."""
    import json

    from sopilot.guard.normalize import normalize

    from sopilot.core.settings import ROOT

    for name in ("guard_cases", "guard_adversarial", "guard_fresh"):
        for line in (ROOT / "eval" / f"{name}.jsonl").read_text("utf-8").splitlines():
            reply = json.loads(line).get("reply") if line.strip() else None
            if not reply:
                continue
            norm = normalize(reply)
            for text in {norm.plain, norm.prose}:
                lowered = check_module._lowered(text)
                scan = lowered if len(lowered) == len(text) else None
                for rule in check_module._LEAK_RULES:
                    full = [m.span() for m in rule.pattern.finditer(text)]
                    assert [m.span() for m in check_module._scan(rule, text, scan)] == full, (name, text)


def test_case_equivalents_match_the_regex_engine() -> None:
    """The letters a case-insensitive pattern matches to ASCII letters are lowered to them, or change length."""
    every = "".join(chr(c) for c in range(0x80, 0x110000) if not 0xD800 <= c < 0xE000)
    for char in re.findall("(?i)[a-z]", every):
        lowered = char.lower()
        assert len(lowered) != 1 or check_module._lowered(char).isascii(), hex(ord(char))


REFERENCE_SPLIT = re.compile(r"""
    (?P<sentence> [.!?]+ ["')\]]* (?=\s|$) \s* | \n \s* | ; \s* )
    | (?P<colon> : \s+ )
    | (?P<dash> — \s* | – (?!\d) \s* )
    | , \s+ (?= (?: and|but|so|however|though|although|yet|while|whereas|then|i|we|you|our|your|it|this|they|he
                  |she|the|please|unfortunately|meanwhile|otherwise|also|no|there|just|simply|feel|let|thank|thanks
                  |sorry ) \b )
    | \s (?: [-–—]+ \s+
          | (?= (?: but|however|although|though|whereas|otherwise|so|because ) \b )
          | (?= (?: and|so|then ) \s+ (?: i|we|you|they|our|your|it|this|he|she|the|will|won't|can't|is|are|was
                  |were|has|have|had|can|could|should|shall|would|may|might|must|do|did|does|am|also|i've|we've
                  |we'll|i'll|we're|i'm|you'll|you're|they'll) \b ) )
    """, re.VERBOSE | re.IGNORECASE)
"""The clause split as one case-insensitive alternation: what the split on lower-cased text must equal."""
PROSE = [". ", "! ", "?", "...", ".\"", ".) ", ".x", ";", ":", ": ", ":\n", "—", "–", "–3", " – ", " - ", " -- ", ", ",
         ",", "\n", "\n\n", " ", "  ", "\t", "and", "AND", " and we", " and will", " So ", " so you", "But", " but",
         " however", " then I", " Then they'll", ", we", ", Please", ", thanks", ", sorry", "We", "I've", "won't",
         "can't", "haven't", "refund", "Refunded", "$42.50", "€", "100%", "+", "re-set", "we're", "\u0131", "\u017f",
         "\u212a", "\u0130", "\u00e9", "Ω", "so", "yet", "while", "because", "x"]
prose_texts = st.lists(st.sampled_from(PROSE), max_size=40).map("".join)


def _reference_kind(match: re.Match[str]) -> str | None:
    return next((name for name in ("sentence", "colon", "dash") if match[name] is not None), None)


def _kind(match: re.Match[str]) -> str | None:
    return {"newline": "sentence", "en_dash": "dash"}.get(match.lastgroup or "", match.lastgroup)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prose_texts)
def test_clause_split_on_lowered_text_equals_the_case_insensitive_split(text: str) -> None:
    """The split read on the lower-cased text finds the same boundaries, of the same kinds, as the reference."""
    expected = [(m.span(), _reference_kind(m)) for m in REFERENCE_SPLIT.finditer(text)]
    lowered = check_module._lowered(text)
    found = (check_module._SPLIT.finditer(lowered) if len(lowered) == len(text)
             else check_module._SPLIT_ANY_CASE.finditer(text))
    assert [(m.span(), _kind(m)) for m in found] == expected


@settings(max_examples=300, deadline=None)
@given(prose_texts, st.integers(0, 200), st.integers(0, 200))
def test_words_read_in_place_equal_the_words_of_the_slice(text: str, a: int, b: int) -> None:
    """`stems_in` on the whole lower-cased text equals `stems_of` on the slice, at every boundary."""
    from sopilot.guard.lexicon import _ASCII_LOWER, _TOKEN, ascii_lower, count_words, stem, stems_in, stems_of

    start, end = sorted((min(a, len(text)), min(b, len(text))))
    words = ascii_lower(text)
    assert len(words) == len(text)
    assert _TOKEN.findall(words) == _TOKEN.findall(text.translate(_ASCII_LOWER))  # str.lower reads the same words
    assert stems_in(words, start, end) == stems_of(text[start:end])
    assert stems_in(words, start, end) == [stem(w) for w in _TOKEN.findall(words, start, end)]  # with or without n't
    assert count_words(words, start, end) == len(stems_of(text[start:end]))


# ---- normalisation: patterns rewritten to begin with a character, and patterns tried only where they can begin

normalize_module = importlib.import_module("sopilot.guard.normalize")
REFERENCE_NORMALIZE = {
    "_ADJACENT_STARS": re.compile(r"(?<=\w)\*{4,6}(?=\w)"),
    "_LINK": re.compile(r"""
        !? \[ (?P<text>[^\[\]\n]{0,300}) \] \( (?P<url>[^()\s]{0,2000}) (?:\s+"[^"\n]{0,200}")? \)""", re.VERBOSE),
    "_LEET": re.compile(r"(?<=[A-Za-z])[013457@](?=[A-Za-z])"),
    "_HYPHEN_BREAK": re.compile(r"""
        (?<=[a-z]) - [ \t]* \r?\n [ \t]* (?=[a-z]) | (?<=[A-Z]) - [ \t]* \r?\n [ \t]* (?=[A-Z])""", re.VERBOSE),
    "_LINE_BREAK": re.compile(r"""
        (?<=[^\s.!?:;]) [ \t]* \r?\n [ \t]* (?![\s\-*+•>#|]|\d+[.)]\s)""", re.VERBOSE),
}
MARKUP = ["*", "**", "***", "****", "~~", "`", "```", "_", "__", "___", "[", "]", "(", ")", "![", "](", "https://x.io",
          ' "t"', "-", "- ", "-\n", "\n", "\r\n", " \n", "\t\n ", "\n\n", "\n- ", "\n1. ", "\n|", "\n#", ".", "!",
          ":", ";", " ", "a", "re", "fund", "R", "E", "x", "0", "1", "3", "4", "5", "7", "@", "9", "é", "r e f",
          " u n d", "e.r.a", ".s.e", "pass", "word", "read", "only", "ABCDEFGHIJKLMNOPQRSTU", "abcdefghijklmnopqrstu"]
markup_texts = st.lists(st.sampled_from(MARKUP), max_size=40).map("".join)


def _spans(matches) -> list[tuple[tuple[int, int], dict[str, str | None]]]:
    return [(m.span(), m.groupdict()) for m in matches]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markup_texts)
def test_normalize_fast_patterns_equal_their_references(text: str) -> None:
    """Each rewritten pattern matches what its reference matches, and the anchored scans equal `finditer`."""
    for name, reference in REFERENCE_NORMALIZE.items():
        assert _spans(getattr(normalize_module, name).finditer(text)) == _spans(reference.finditer(text)), name
    anchored = normalize_module._anchored
    positions = normalize_module._positions
    for pattern, starts in ((normalize_module._EMPHASIS, positions(text, "*~`_")),
                            (normalize_module._STRAY_MARKS, positions(text, "*~`")),
                            (normalize_module._HYPHENATED, normalize_module._hyphen_starts(text))):
        assert _spans(anchored(pattern, text, starts)) == _spans(pattern.finditer(text)), pattern.pattern[:30]
    if normalize_module._SPACED_LETTERS.search(text) is not None:
        assert normalize_module._SPACED_HINT.search(text) is not None


DISGUISE = ["refund", "r\u0435fund", "\u0440efund", "\u200b", "\u00ad", "\u00a0", "\u2122", "&#1077;", "&nbsp;",
            "<b>", "</b>", "**", "cr3d1t", "r e f u n d", "re-\nfund", "\n", " ", ".", "\u0391", "\u03c1", "\u2019",
            "\u20ac", "\u00e9", "\uff52\uff45", "ﬁ", "pass-word", "\u0131", "\u212a", "\u0130", "x", "\u0435\u200b"]
disguise_texts = st.lists(st.sampled_from(DISGUISE), max_size=30).map("".join)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(disguise_texts)
def test_disguised_words_equal_a_word_by_word_reading(text: str) -> None:
    """The bisection over the offset map finds exactly the words whose original letters were not all ASCII."""
    norm = normalize_module.normalize(text, joins=lambda word: word in {"password", "refund"})
    for mapping in (norm.plain_map, norm.prose_map):
        if mapping is not None:
            assert all(a <= b for a, b in zip(mapping, mapping[1:], strict=False))  # the map never decreases
    if norm.folded:
        expected = {m.group(0).lower() for m in re.finditer(r"[A-Za-z]+", norm.prose)
                    if not norm.original_span(m.start(), m.end()).isascii()}
        assert norm.disguised_words() == frozenset(expected)


def _reference_match(candidate: tuple[str, ...], stems: list[str], i: int, end: int) -> int:
    """The phrase match as one loop over the phrase's words (the form the fast path replaces)."""
    from sopilot.guard.lexicon import GAP, GAP_WORDS

    j, k = i, 0
    while k < len(candidate):
        word = candidate[k]
        if word == GAP:
            for skip in range(GAP_WORDS + 1):
                if j + skip < end and stems[j + skip] == candidate[k + 1]:
                    j += skip
                    break
            else:
                return -1
            k += 1
            continue
        if j >= end or stems[j] != word:
            return -1
        j, k = j + 1, k + 1
    return j


VOCABULARY = ["we", "have", "refund", "back", "pay", "you", "is", "be", "..."]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY[:-1]), max_size=12),
       st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=4).filter(lambda p: p[0] != "..." and p[-1] != "..."),
       st.integers(0, 12), st.integers(0, 12))
def test_phrase_match_equals_the_word_loop(stems: list[str], phrase: list[str], i: int, end: int) -> None:
    """Plain phrases compared as one slice match exactly where the word-by-word loop matches."""
    from sopilot.guard.lexicon import _match

    end = min(end, len(stems))
    if i >= len(stems):
        return
    candidate = tuple(word for n, word in enumerate(phrase) if not (word == "..." and phrase[n - 1] == "..."))
    assert _match(candidate, stems, i, end) == _reference_match(candidate, stems, i, end)


SCRIPTS = ["the", "refund", "we", "é", "Ω", "привет", "возврат", "日本", "el", "reembolso", "de", "la", " ", ". ",
           "! ", "\n\n", "3", "_", "-", "x", "Ж", "ß", "İ"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SCRIPTS), max_size=40).map("".join))
def test_foreign_words_counted_from_letter_runs_equal_the_pattern(text: str) -> None:
    """Counting letter runs with a letter outside ASCII equals counting matches of the foreign-word pattern."""
    lowered = text.lower()
    reference = re.compile(r"[^\W\d_]*[^\W\d_a-zA-Z][^\W\d_]*")
    words = check_module._WORD.findall(lowered)
    assert check_module._foreign_words(words) == len(reference.findall(lowered))
    assert sum(map(len, words)) == len(re.sub(r"[\W\d_]+", "", lowered))


def _reference_commitments(stems: list[str], lexicon) -> list[tuple[str, int, int, int]]:
    """The commitment search as first written: every term entry tried, companions looked up by position."""
    from sopilot.guard.lexicon import _match

    end, index, present = len(stems), lexicon.term_index, set(stems)
    masked: set[int] = set()
    for i in range(end):
        stop = lexicon.neutral.match_at(stems, i, end)
        if stop > 0:
            masked.update(range(i, stop))
    positions: dict[str, list[int]] = {}
    for j, word in enumerate(stems):
        positions.setdefault(word, []).append(j)
    hits = []
    for i in range(end):
        if i in masked:
            continue
        for term, frame, _ in index.get(stems[i], ()):
            stop = _match(term, stems, i, end)
            if stop < 0 or check_module._followed_by(frame.after_index, stems, stop) \
                    or check_module._preceded_by(frame.before_index, stems, i):
                continue
            reach = stop
            if frame.companions is not None:
                lo, hi = max(0, i - frame.window), min(end, stop + frame.window)
                valid = [j for word in present.intersection(frame.companion_index) for j in positions[word]
                         if lo <= j < hi and (j < i or j >= stop) and j not in masked
                         and any(_match(c, stems, j, hi) >= 0 for c in frame.companion_index[word])]
                if not valid:
                    continue
                reach = max(reach, max(valid) + 1)
            hits.append((frame.commitment, i, stop, reach))
    return hits


def _clause_words() -> list[str]:
    lexicon = check_module.load_lexicon()
    words = sorted({w for frame in lexicon.frames for p in (*frame.terms, *(frame.companions or ()),
                                                           *frame.not_after, *frame.not_before) for w in p
                    if w != "..."} | {w for p in lexicon.neutral.by_first.values() for q in p for w in q if w != "..."})
    return words + ["the", "a", "we", "you", "x", "y"]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_clause_words()), max_size=30))
def test_commitment_search_equals_the_reference(stems: list[str]) -> None:
    """Skipping terms whose second word does not follow, and reading companions from the window's far end,
    find the same commitments, in the same order, with the same reach."""
    lexicon = check_module.load_lexicon()
    found = [(h.frame.commitment, h.start, h.end, h.reach) for h in check_module._commitments(stems, lexicon)]
    assert found == _reference_commitments(stems, lexicon)
