"""Query normalisation from what the knowledge base itself yields.

Agents type fast: misspellings, shorthand, amounts. Before retrieval a query is normalised with
resources built from the indexed text, never from example queries:
- misspelt words are corrected to the closest word of the knowledge base's own vocabulary;
- abbreviations the documents define ("Technical Account Manager (TAM)") are expanded, plus a
  short table of general helpdesk shorthand (`abbreviations.yaml`, not specific to any SOP);
- amounts ("$1,250.00", "USD 180", "180 dollars") become the words the documents use for them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]*")
_DEFINED = re.compile(r"((?:[A-Z][\w&/-]*\s+){1,6}[A-Z][\w&/-]*)\s+\(([A-Z][A-Za-z0-9]{1,7})\)|"
                      r"\b([A-Z][A-Z0-9]{1,7})\s+\(([A-Z][\w-]*(?:\s+[A-Za-z][\w-]*){1,6})\)")
_MONEY = re.compile(r"(?:[$€£]\s?\d[\d,]*(?:\.\d+)?|\b(?:USD|EUR|GBP|Rs\.?|INR)\s?\d[\d,]*(?:\.\d+)?"
                    r"|\b\d[\d,]*(?:\.\d+)?\s?(?:dollars|bucks|usd|euros?|rupees)\b)", re.I)


def _initials(words: str) -> str:
    return "".join(w[0] for w in re.findall(r"[A-Za-z][\w-]*", words) if w[0].isupper() or len(w) > 3).upper()


def defined_abbreviations(texts: Iterable[str]) -> dict[str, str]:
    """Abbreviations the documents define, as `ABBR → long form`, when the initials agree."""
    found: dict[str, str] = {}
    for text in texts:
        for m in _DEFINED.finditer(text):
            long, short = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
            words = long.split()
            for start in range(len(words)):  # the long form is the shortest tail whose initials match
                tail = " ".join(words[start:])
                if _initials(tail).startswith(short.rstrip("s").upper()[:len(_initials(tail))]) and \
                        _initials(tail) == short.rstrip("s").upper():
                    found.setdefault(short.lower(), tail)
                    found.setdefault(short.lower().rstrip("s"), tail)
                    break
    return found


@functools.lru_cache(maxsize=1)
def shorthand() -> dict[str, str]:
    """General helpdesk shorthand (`abbreviations.yaml` beside this module)."""
    data = yaml.safe_load((Path(__file__).with_name("abbreviations.yaml")).read_text(encoding="utf-8"))
    return {str(k).lower(): str(v) for k, v in (data or {}).items()}


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment edit distance (transpositions count 1), abandoned past `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = ca != cb
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


class QueryNormalizer:
    """Corrects, expands and rewrites queries using the indexed vocabulary."""

    def __init__(self, texts: Iterable[str], known_words: Iterable[str] = ()) -> None:
        """A normaliser for the knowledge base whose chunks are `texts`.

        Args:
            texts: the indexed chunks, whose words are the vocabulary queries are corrected to.
            known_words: words of the language that are never typos even when the documents lack them
                (e.g. the whole words of the encoder's tokenizer): one edit from a document word,
                "contractor", "stuck" or "paused" would otherwise become "contract", "stock", "passed".
        """
        texts = list(texts)
        self.known_words = frozenset(w.lower() for w in known_words)
        self.counts: dict[str, int] = {}
        for text in texts:
            for word in _WORD.findall(text.lower()):
                self.counts[word] = self.counts.get(word, 0) + 1
        self.abbreviations = shorthand() | defined_abbreviations(texts)
        self._by_shape: dict[tuple[str, int], list[str]] = {}
        for known in self.counts:
            if known.isalpha():
                self._by_shape.setdefault((known[0], len(known)), []).append(known)
        self._corrections: dict[str, str] = {}

    def correct(self, word: str) -> str:
        """The knowledge-base word closest to a word it does not contain, or the word itself.

        One edit is allowed from five letters, two from eight; candidates share the first letter
        (typos rarely hit it) and are compared only within the length window, so a query costs
        well under a millisecond per unknown word.
        """
        lower = word.lower()
        if len(lower) < 5 or lower in self.counts or lower in self.abbreviations or not lower.isalpha() \
                or lower in self.known_words:
            return word
        if lower not in self._corrections:
            limit = 2 if len(lower) >= 8 else 1
            best: tuple[int, int, str] | None = None
            for length in range(len(lower) - limit, len(lower) + limit + 1):
                for known in self._by_shape.get((lower[0], length), ()):
                    distance = _distance(lower, known, limit)
                    if distance <= limit:
                        rank = (distance, -self.counts[known], known)
                        best = rank if best is None or rank < best else best
            self._corrections[lower] = best[2] if best else lower
        corrected = self._corrections[lower]
        return word if corrected == lower else corrected

    def normalize(self, query: str) -> str:
        """The query as the knowledge base would phrase it."""
        query = _MONEY.sub(lambda m: f"{m.group(0)} amount", query)
        out: list[str] = []
        for token in re.split(r"(\s+)", query):
            core = token.strip(".,;:!?()\"'")
            lower = core.lower()
            if lower in self.abbreviations and core:
                out.append(token.replace(core, f"{core} ({self.abbreviations[lower]})"))
            elif core and _WORD.fullmatch(core):
                out.append(token.replace(core, self.correct(core)))
            else:
                out.append(token)
        return "".join(out)
