r"""One normalisation before every check: the text the guard reads, and the way back to the original.

A draft can hide a promise from a reader that looks only at code points: "re\u200bfunded" with a
zero-width space, "rеfund" with a Cyrillic "е", "**refunded**", "<b>refunded</b>", "&#36;420",
"ｒｅｆｕｎｄ", or "re-\\nfunded" across a line break. `normalize` undoes each of those, in order:

1. HTML: tags are dropped (block-level tags become a line break) and entities decoded;
2. Unicode NFKC (full-width, ligatures, mathematical letters, no-break spaces become plain text);
3. invisible and control characters removed (format characters such as zero-width joiners, bidi
   controls and soft hyphens; C0/C1 controls such as NUL; variation selectors);
4. confusable letters folded to their Latin skeleton, with the Unicode confusables table shipped by
   the maintained `confusable-homoglyphs` package, and diacritics stripped;
5. Markdown: emphasis markers and code ticks removed, `[text](url)` links flattened to their text;
6. broken lines re-joined: a word hyphenated across a line break is rejoined, and a single line break
   inside a sentence becomes a space; blank lines and list items stay breaks.

Two texts come out: `plain` (steps 1-4: placeholders such as `__NAME__` and SQL are looked for here,
before Markdown flattening could erase the underscores) and `prose` (all steps: commitments are read
here). Each keeps an offset map, so evidence quotes the *original* characters of a span (`original_span`).
Every step is one regular-expression pass or one `str.translate`, so time and memory are linear in the
length of the text.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import html
import json
import re
import unicodedata
from array import array
from collections.abc import Callable, Iterable
from importlib import resources

_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 "
    "header hr li main nav ol p pre section table tbody td tfoot th thead tr ul".split())
_INLINE_TAGS = frozenset(
    "a abbr b bdi bdo big cite code del dfn em font i img ins kbd mark q s samp small span strike strong sub sup "
    "time tt u var wbr html body head meta title style script center label button input".split())
_TAG = re.compile(r"""
    < /? (?P<name>[A-Za-z][A-Za-z0-9]{0,10}) \b   # <b>, </strong>, <span class="x">, <br/>
    (?> [^<>"']{0,300} (?: (?: "[^"]{0,300}" | '[^']{0,300}' ) [^<>"']{0,300} ){0,20} ) /? >
    # one way only to read the attributes (runs between quoted values), and no backtracking into them: a "<a"
    # never closed ("<a xxxxxxxx…") is given up in linear time, not tried in every split of its run
    """, re.VERBOSE)
_ENTITY = re.compile(r"""
    & (?: \#[0-9]{1,7} | \#[xX][0-9A-Fa-f]{1,6} | [A-Za-z][A-Za-z0-9]{1,31} ) ;?   # &#36; &#x24; &nbsp &dollar;
    """, re.VERBOSE)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_NON_ASCII_CHAR = re.compile(r"[^\x00-\x7f]")
_NON_ASCII_LETTER = re.compile(r"[^\W\d_a-zA-Z]")
_EMPHASIS = re.compile(r"""
    (?<!\*) (?P<star>\*{1,3}) (?=[^\s*]) (?P<sbody>[^\n]{1,500}?) (?<=[^\s*]) (?P=star) (?!\*)     # **bold**, *re*fund
    | ~~ (?=\S) (?P<tbody>[^\n]{1,500}?) (?<=\S) ~~                                             # ~~struck~~
    | (?P<tick>`{1,3}) (?=[^`\s]) (?P<cbody>[^\n`]{1,500}?) (?<=[^`\s]) (?P=tick) (?!`)         # `code`
    | (?<![\w_]) (?P<umark>_{1,3}) (?=[^\s_]) (?P<ubody>[^\n_]{1,500}?[a-z][^\n_]{0,500}?) (?<=[^\s_]) (?P=umark)
      (?![\w_])                                                                             # _em_, not __NAME__
    """, re.VERBOSE)
_STRAY_MARKS = re.compile(r"""
    \*+ | ~~ | `+           # a marker left touching a word: "re**funded", "*refunded", "refunded*"
    """, re.VERBOSE)  # which markers are stray is decided by `_stray` from their neighbours (a fast scan)
_MARK_CHARS = frozenset("*~`")


def _stray(match: re.Match[str]) -> str | tuple[str, int]:
    """Drop a marker with a word character before it, or after it when no other marker precedes it."""
    text, start, end = match.string, match.start(), match.end()
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    word_before = before.isalnum() or before == "_"
    if word_before or ((after.isalnum() or after == "_") and before not in _MARK_CHARS):
        return ""
    return match.group(0), 0


_ADJACENT_STARS = re.compile(r"\*(?<=\w\*)\*{3,5}(?=\w)")  # two bold spans that meet inside a word
_LINK = re.compile(r"""
    (?:!\[|\[) (?P<text>(?:[^\[\]\n]|\n(?![ \t]*\n)){0,300})   # link text, which may wrap (never across a blank line)
    \] \( (?P<url>[^()\s]{0,2000}) (?:\s+"[^"\n]{0,200}")? \)   # [text](https://x)
    """, re.VERBOSE)
_STRUCK_HTML = re.compile(r"""
    < (?P<tag>s|del|strike) \b [^<>]{0,300} > [^<]{0,2000}? </ (?P=tag) \s* >   # <del>not</del>: struck text is dropped
    """, re.VERBOSE | re.IGNORECASE)
_SPACED_HINT = re.compile(r"(?P<sep>[ .\-_·*])[A-Za-z](?P=sep)[A-Za-z](?P=sep)")
"""What every `_SPACED_LETTERS` match holds ("r e f u n d" holds " e f "): without it there is nothing to join."""
_SPACED_LETTERS = re.compile(r"""
    (?<![A-Za-z0-9]) [A-Za-z] (?P<sep>[ .\-_·*]) [A-Za-z] (?:(?P=sep)[A-Za-z]){2,} (?P=sep)? (?![A-Za-z0-9])
    # "r e f u n d e d", "e.r.a.s.e.d", "r-e-f-u-n-d": one letter at a time, one separator throughout
    """, re.VERBOSE)
_LEET = re.compile(r"[013457@](?<=[A-Za-z][013457@])(?=[A-Za-z])")  # "cr3d1t", "appl1ed", "acc0unt"
_LEET_LETTERS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a"}
_HYPHENATED = re.compile(r"(?<![\w-])(?P<a>[A-Za-z]{1,20})-(?P<b>[A-Za-z]{1,20})(?![\w-])")  # "pass-word", "re-set"
_HYPHEN_BREAK = re.compile(r"""
    - (?<=[a-z]-) [ \t]* \r?\n [ \t]* (?=[a-z]) | - (?<=[A-Z]-) [ \t]* \r?\n [ \t]* (?=[A-Z])   # "re-\nfunded"
    """, re.VERBOSE)
_LINE_BREAK = re.compile(r"""
    [ \t\r\n] (?<=[^\s.!?:;][ \t\r\n])    # the line does not end a sentence ...
    (?: (?<=[ \t]) [ \t]* \r?\n | (?<=\r) \n | (?<=\n) ) [ \t]*    # ... one line break ...
    (?![\s\-*+•>#|]|\d+[.)]\s)  # ... not a blank line, a list item, a quote, a heading or a table row
    """, re.VERBOSE)  # (it begins with a character class, so the engine skips to the white space)


def _invisible_table() -> dict[int, None]:
    table: dict[int, None] = {}
    for code in range(0x10000):
        if unicodedata.category(chr(code)) in ("Cf", "Cc") and chr(code) not in "\n\t\r":
            table[code] = None
    for start, end in ((0xFE00, 0xFE0F), (0xE0000, 0xE007F), (0xE0100, 0xE01EF), (0x1BCA0, 0x1BCA3),
                       (0x1D173, 0x1D17A)):
        for code in range(start, end + 1):
            table[code] = None
    table[0x034F] = None  # combining grapheme joiner
    table[0x115F] = table[0x1160] = table[0x3164] = table[0xFFA0] = None  # Hangul fillers render blank
    return table


_ASCII_WORD = re.compile(r"[A-Za-z]+")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@functools.lru_cache(maxsize=1)
def _invisible() -> re.Pattern[str]:
    """Every invisible or control character (built on the first text that needs it: ~10 ms of start-up)."""
    table = _invisible_table()
    return re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(table) if c < 0x10000)
                      + "\U000e0000-\U000e007f\U000e0100-\U000e01ef\U0001bca0-\U0001bca3\U0001d173-\U0001d17a]")


@functools.lru_cache(maxsize=1)
def _confusables() -> dict[str, str]:
    """Character → Latin letter or digit it is confusable with, from the Unicode confusables data.

    Read from the data file `confusable-homoglyphs` ships (loaded only when a text has non-ASCII
    letters, and without importing the package's module, which pulls in urllib).
    """
    data = json.loads(resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8"))
    table: dict[str, str] = {}
    for char, glyphs in data.items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in glyphs:
            target = glyph.get("c", "")
            if len(target) == 1 and target.isascii() and target.isalnum():
                table[char] = target
                break
    return table


@dataclasses.dataclass(frozen=True, slots=True)
class Normalized:
    """The normalised texts and, for each, the original offset of every character."""

    original: str
    plain: str
    """HTML decoded, NFKC, invisible characters removed, confusables folded (Markdown kept)."""
    prose: str
    """`plain` with Markdown flattened and broken lines re-joined."""
    plain_map: array | None
    """Original offset of each character of `plain`; None when `plain` is the original itself."""
    prose_map: array | None
    folded: bool
    """Whether the text held letters outside ASCII (folded to Latin: a word may be disguised)."""

    def disguised_words(self) -> frozenset[str]:
        """Lower-case words of `prose` whose original letters were not all ASCII ("rеfund" with a Cyrillic е)."""
        if not self.folded:
            return frozenset()
        mapping = self.prose_map
        words = [match.span() for match in _ASCII_WORD.finditer(self.prose)]
        if mapping is None:
            candidates: Iterable[int] = range(len(words))
        else:  # only the words whose original span holds a character outside ASCII can be disguised
            candidates = _words_over(words, mapping, (m.start() for m in _NON_ASCII_CHAR.finditer(self.original)))
        found = set()
        for index in candidates:
            start, end = words[index]
            if not self.original_span(start, end).isascii():
                found.add(self.prose[start:end].lower())
        return frozenset(found)

    def original_span(self, start: int, end: int, *, prose: bool = True) -> str:
        """The original characters behind `[start, end)` of `prose` (or of `plain`)."""
        mapping = self.prose_map if prose else self.plain_map
        if mapping is None:
            return self.original[start:end].strip() or self.original[start:end]
        if not len(mapping) or start >= end:
            return ""
        first = mapping[min(start, len(mapping) - 1)]
        last = mapping[min(end, len(mapping)) - 1]
        return self.original[first:last + 1].strip() or self.original[first:last + 1]


def _words_over(words: list[tuple[int, int]], mapping: array, offsets: Iterable[int]) -> list[int]:
    """Indices of the `words` (spans of the normalised text) whose original span reaches one of `offsets`.

    The offset map never decreases (every step rewrites left to right), so the words whose original span
    `[mapping[start], mapping[end - 1]]` holds an offset are found by bisection.
    """
    lasts = [mapping[end - 1] for _, end in words]
    chosen: set[int] = set()
    for offset in offsets:
        index = bisect.bisect_left(lasts, offset)
        while index < len(words) and mapping[words[index][0]] <= offset:
            chosen.add(index)
            index += 1
    return sorted(chosen)


class _Builder:
    """Accumulates replaced text and, per output character, the offset it came from."""

    __slots__ = ("parts", "offsets")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.offsets = array("l")

    def keep(self, text: str, mapping: array, start: int, end: int) -> None:
        if end > start:
            self.parts.append(text[start:end])
            self.offsets.extend(mapping[start:end])

    def put(self, replacement: str, origin: int) -> None:
        if replacement:
            self.parts.append(replacement)
            self.offsets.extend([origin] * len(replacement))

    def result(self) -> tuple[str, array]:
        return "".join(self.parts), self.offsets


_IDENTITY = array("l")
_IDENTITY_CACHED = 1 << 18
"""Identity offset maps up to this length are sliced from one cached array (building one costs ~50 ns a char)."""


def _identity(length: int) -> array:
    """`array("l", range(length))`, sliced from a cached identity map when short enough."""
    global _IDENTITY
    if length > _IDENTITY_CACHED:
        return array("l", range(length))
    if len(_IDENTITY) < length:
        _IDENTITY = array("l", range(max(length, 2 * len(_IDENTITY), 4096)))
    return _IDENTITY[:length]


def _anchored(pattern: re.Pattern[str], text: str, starts: list[int]):
    """The matches `pattern.finditer(text)` yields, when every match can only begin at one of `starts` (sorted).

    The engine would try the pattern at every position; trying it only where a match can begin finds the same
    leftmost, non-overlapping matches, since a match never begins anywhere else.
    """
    position = 0
    match_at = pattern.match
    for at in starts:
        if at >= position:
            match = match_at(text, at)
            if match is not None:
                position = match.end()
                yield match


def _positions(text: str, chars: str) -> list[int]:
    """Every offset of one of `chars` in `text`, in order."""
    found: list[int] = []
    for char in chars:
        at = text.find(char)
        while at >= 0:
            found.append(at)
            at = text.find(char, at + 1)
    found.sort()
    return found


def _hyphen_starts(text: str) -> list[int]:
    """Where a `_HYPHENATED` match can begin: the start of the run of letters before each hyphen."""
    starts: list[int] = []
    at = text.find("-")
    while at >= 0:
        begin = at
        while begin > 0 and at - begin <= 20 and text[begin - 1] in _ASCII_LETTERS:
            begin -= 1
        if begin < at:
            starts.append(begin)
        at = text.find("-", at + 1)
    return starts


_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _substitute(text: str, mapping: array | None, pattern: re.Pattern[str], replace,
                matches=None) -> tuple[str, array | None]:
    """One pass of `pattern` over `text`; `replace(match)` gives the new text for each match.

    `matches`: the pattern's matches when the caller found them faster than `finditer` (see `_anchored`).
    Nothing is rebuilt when no match changes the text.
    """
    found = list(pattern.finditer(text) if matches is None else matches)
    if not found:
        return text, mapping
    replacements = [replace(match) for match in found]
    if all(r == (match.group(0), 0) if isinstance(r, tuple) else r == match.group(0)
           for r, match in zip(replacements, found, strict=True)):
        return text, mapping
    if mapping is None:
        mapping = _identity(len(text))
    out = _Builder()
    position = 0
    for match, replacement in zip(found, replacements, strict=True):
        out.keep(text, mapping, position, match.start())
        if isinstance(replacement, tuple):  # (a piece of the match kept as it is, its offset in the match)
            start = match.start() + replacement[1]
            out.keep(text, mapping, start, start + len(replacement[0]))
        else:
            out.put(replacement, mapping[match.start()])
        position = match.end()
    out.keep(text, mapping, position, len(text))
    return out.result()


def _tag(match: re.Match[str]) -> str:
    name = match["name"].lower()
    if name in _BLOCK_TAGS:
        return "\n"
    if name in _INLINE_TAGS:
        return ""
    return match.group(0)  # "<CUSTOMER_NAME>" is template text, not HTML: keep it for the placeholder check


def _entity(match: re.Match[str]) -> str:
    decoded = html.unescape(match.group(0))
    return decoded if decoded != match.group(0) else match.group(0)


_PUNCTUATION = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201b": "'", "\u2032": "'",
                              "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2010": "-", "\u2011": "-"})


_COMMON = frozenset("\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00a0\u2022\u00e9\u20ac\u00a3")


def _fold_run(match: re.Match[str]) -> str:
    if _COMMON.issuperset(match.group(0)):  # typographic punctuation, "é", "€", "£": no look-alike to fold
        run = unicodedata.normalize("NFKC", match.group(0)).translate(_PUNCTUATION)
        return run.replace("\u00e9", "e")
    run = unicodedata.normalize("NFKC", match.group(0)).translate(_PUNCTUATION)
    table = _confusables()
    folded = "".join(table.get(char, char) if char.isalnum() else char for char in run)
    stripped = "".join(c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def _link(match: re.Match[str]) -> tuple[str, int]:
    return match["text"], 1


def _emphasis(match: re.Match[str]) -> tuple[str, int] | str:
    if match["star"]:
        return match["sbody"], len(match["star"])
    if match["tbody"] is not None:
        return ""  # struck text is not what the reply says

    if match["tick"]:
        return match["cbody"], len(match["tick"])
    return match["ubody"], len(match["umark"])


def _spaced(match: re.Match[str]) -> str:
    letters = "".join(char for char in match.group(0) if char.isalpha())
    last = match.group(0)[-1]
    return letters + (last if last in " ." else "")  # "e.r.a.s.e.d." may end its sentence


def normalize(text: str, *, joins: Callable[[str], bool] | None = None) -> Normalized:
    """Normalise a draft reply for checking (see the module docstring for the steps and why).

    Args:
        text: the draft as written.
        joins: whether a word split by a hyphen ("pass-word", "ref-unded") is a word of the reader's
            vocabulary once joined; such words are read joined.
    """
    mapping: array | None = None
    current = text
    folded = False
    if current.isascii():
        current, mapping = _substitute(current, mapping, _ASCII_CONTROL, lambda m: "")
    else:
        current, mapping = _substitute(current, mapping, _invisible(), lambda m: "")
    if "<" in current:
        current, mapping = _substitute(current, mapping, _STRUCK_HTML, lambda m: "")
        current, mapping = _substitute(current, mapping, _TAG, _tag)
    if "&" in current:
        current, mapping = _substitute(current, mapping, _ENTITY, _entity)
        current, mapping = _substitute(current, mapping, _invisible(), lambda m: "")  # "&#8203;" was invisible
    if not current.isascii():
        folded = _NON_ASCII_LETTER.search(current) is not None
        current, mapping = _substitute(current, mapping, _NON_ASCII_RUN, _fold_run)
        if "<" in current:  # a tag whose name held look-alike letters ("<strоng>") is a tag once folded
            current, mapping = _substitute(current, mapping, _TAG, _tag)
    plain, plain_map = current, mapping
    if "[" in current:
        current, mapping = _substitute(current, mapping, _LINK, _link)
    if "*" in current or "_" in current or "`" in current or "~" in current:
        current, mapping = _substitute(current, mapping, _ADJACENT_STARS, lambda m: "")  # "**r****efund**"
        for _ in range(3):  # nested or adjacent markers: ***x***, **_x_**, `U`**N**
            before = current
            current, mapping = _substitute(current, mapping, _EMPHASIS, _emphasis,
                                           _anchored(_EMPHASIS, current, _positions(current, "*~`_")))
            if current == before:
                break
        current, mapping = _substitute(current, mapping, _STRAY_MARKS, _stray,  # "*re***funded**" leftovers
                                       _anchored(_STRAY_MARKS, current, _positions(current, "*~`")))
    if "\n" in current:
        current, mapping = _substitute(current, mapping, _HYPHEN_BREAK, lambda m: "")
        current, mapping = _substitute(current, mapping, _LINE_BREAK, lambda m: " ")
    if _SPACED_HINT.search(current) is not None:
        current, mapping = _substitute(current, mapping, _SPACED_LETTERS, _spaced)
    if any(char in current for char in "013457@"):
        current, mapping = _substitute(current, mapping, _LEET, lambda m: _LEET_LETTERS[m.group(0)])
    if joins is not None and "-" in current:
        def join(match: re.Match[str]) -> str:
            word = match["a"] + match["b"]
            return word if joins(word.lower()) else match.group(0)
        current, mapping = _substitute(current, mapping, _HYPHENATED, join,
                                       _anchored(_HYPHENATED, current, _hyphen_starts(current)))
    return Normalized(original=text, plain=plain, prose=current,
                      plain_map=plain_map, prose_map=mapping, folded=folded)
