"""The language a ticket is written in, detected offline (lingua, models bundled in its wheel).

The detector considers the languages sopilot's customers write in rather than all 75 lingua knows:
among all of them, a three-word English query is too easily taken for Basque or Tagalog. Agents'
shorthand ("refund pls, charged 2x") has little language in it, so a text is reported as English
unless the detector is confident otherwise.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Container

_WORD = re.compile(r"[^\W\d_]{2,}")

LANGUAGES = ("ENGLISH", "SPANISH", "FRENCH", "GERMAN", "PORTUGUESE", "ITALIAN", "DUTCH", "SWEDISH", "DANISH",
             "BOKMAL", "FINNISH", "POLISH", "CZECH", "ROMANIAN", "HUNGARIAN", "GREEK", "TURKISH", "RUSSIAN",
             "UKRAINIAN", "ARABIC", "HEBREW", "HINDI", "CHINESE", "JAPANESE", "KOREAN", "INDONESIAN",
             "VIETNAMESE", "THAI")
"""lingua `Language` names considered."""
DEFAULT = "en"
MIN_CONFIDENCE = 0.95
"""Below this confidence in a language other than English, the text is reported as English.

In low-accuracy mode (trigrams only: 0.2 s to load instead of 11 s) every non-English ticket of the
labelled set scored 1.0, and the English queries misread as another language at most 0.89.
"""
MIN_LETTERS = 12
SHORT_WORDS = 8
SHORT_MIN_CONFIDENCE = 0.99
"""Texts of fewer than `SHORT_WORDS` words need this confidence ("I forgot my password" reads 0.97 Italian)."""


@functools.lru_cache(maxsize=1)
def _detector():
    from lingua import Language, LanguageDetectorBuilder

    return (LanguageDetectorBuilder.from_languages(*(getattr(Language, n) for n in LANGUAGES))
            .with_low_accuracy_mode().build())


ENGLISH_SHARE = 0.6
"""A text most of whose words are words of the (English) knowledge base is English, whatever the
detector says of it: short English queries are where the trigram models err."""


def detect_language(text: str, vocabulary: Container[str] | None = None) -> str:
    """The ISO 639-1 code of the language `text` is written in (`en` when unsure).

    Args:
        text: what the customer wrote.
        vocabulary: lower-cased words of the knowledge base, which is written in English.
    """
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return DEFAULT
    values = _detector().compute_language_confidence_values(text)
    if not values:
        return DEFAULT
    best = values[0]
    code = best.language.iso_code_639_1.name.lower()
    needed = SHORT_MIN_CONFIDENCE if len(text.split()) < SHORT_WORDS else MIN_CONFIDENCE
    if code != DEFAULT and best.value < needed:
        return DEFAULT
    if code != DEFAULT and vocabulary is not None:
        words = _WORD.findall(text.lower())
        if words and sum(w in vocabulary for w in words) >= ENGLISH_SHARE * len(words):
            return DEFAULT
    return code
