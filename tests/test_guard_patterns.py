"""No regular expression of the guard backtracks catastrophically on text that almost matches.

An unclosed "<a xxxx…" once made the HTML-tag pattern try every split of its run (0.7 s at 22 characters,
doubling with each one more) and stalled a whole request. Every pattern is tried on runs that almost match:
a catastrophic one takes seconds at this length, a sound one microseconds, so the bound is far from both.
"""

from __future__ import annotations

import importlib
import re
import time

import pytest

MODULES = ["normalize", "check", "deny", "internal", "lexicon", "facts", "ticket_text", "decide", "policy",
           "conditions"]
UNITS = ["a", " ", "a ", "1", "1,", "$1", "1.", "x", '"x', "[x", "{x", ".", "-", "a.", "a,", ", ", " and ", "\n",
         "*", "_", "%", "1 ", "a-", "<a ", ": ", "| ", "$", "we ", "select a, ", "where a = 1 and "]
PREFIXES = ["", "<a ", '"', "[", "{", "$", "select ", "update x set ", "(", "`", "*|", "%", "http://", "x://a:", "<<"]
REPEATS = 26
BOUND = 1.0
"""Seconds for one search: the exponential form took about 10 s at 26 repeats."""


def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    found = []
    for name in MODULES:
        module = importlib.import_module(f"sopilot.guard.{name}")
        found += [(f"{name}.{key}", value) for key, value in vars(module).items() if isinstance(value, re.Pattern)]
    money = importlib.import_module("sopilot.core.money")
    found += [(f"money.{key}", value) for key, value in vars(money).items() if isinstance(value, re.Pattern)]
    return found


@pytest.mark.parametrize(("name", "pattern"), _patterns(), ids=lambda value: value if isinstance(value, str) else "")
def test_no_pattern_backtracks_catastrophically(name, pattern):
    for prefix in PREFIXES:
        for unit in UNITS:
            text = prefix + unit * REPEATS + "!"
            start = time.perf_counter()
            pattern.search(text)
            assert time.perf_counter() - start < BOUND, f"{name} backtracks on {text[:40]!r}"


def test_an_unclosed_tag_is_left_as_text():
    from sopilot.guard.normalize import normalize

    assert "<a xxxx" in normalize("Hello <a " + "x" * 5000).prose
