"""Metamorphic properties: meaning-preserving rewrites of a draft never change the guard's verdict.

Every case of the red-team set (eval/guard_adversarial.jsonl) is a draft whose verdict is known. Hiding
characters in it, swapping letters for look-alikes from other scripts, wrapping words in Markdown or HTML,
changing case, or breaking its lines must keep a must-block draft blocked and a harmless draft passing.
"""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sopilot.guard.check import check
from sopilot.guard.decide import decide
from sopilot.guard.policy import load_policies

from sopilot.core.settings import ROOT

POLICIES = load_policies(ROOT / "knowledge" / "policies.yaml")
CASES = [json.loads(line) for line in (ROOT / "eval" / "guard_adversarial.jsonl").read_text("utf-8").splitlines()
         if line.strip()]
COMMITMENT_FAMILIES = {"money_paraphrase", "amount_forms", "commitment_not_granted", "commitment_exceeds_grant",
                       "obfuscation", "injection", "refusal", "hedge", "neutral_money", "exact_grant",
                       "escalation_statement"}
"""Families whose verdict rests on commitments (placeholders and SQL are case- and markup-sensitive by nature)."""
DECISIONS = {index: decide(case["ticket"], POLICIES) for index, case in enumerate(CASES)}

INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\x00", "\u202c"]
LOOKALIKES = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441", "x": "\u0445",
              "i": "\u0456", "y": "\u0443", "A": "\u0410", "E": "\u0415", "O": "\u041e"}


def _words(text: str) -> list[tuple[int, int]]:
    """Spans of the words of `text`, leaving HTML entities ("&nbsp;") alone."""
    spans, start = [], None
    for i, char in enumerate(text + " "):
        if char.isalpha() and start is None:
            start = i
        elif not char.isalpha() and start is not None:
            inside_tag = text.rfind("<", 0, start) > text.rfind(">", 0, start)
            if not (text[start - 1:start] in ("&", "#") or text[i:i + 1] == ";" or inside_tag):
                spans.append((start, i))
            start = None
    return spans


def invisible(text: str, rng: random.Random) -> str:
    out = []
    for char in text:
        out.append(char)
        if char.isalpha() and rng.random() < 0.15:
            out.append(rng.choice(INVISIBLE))
    return "".join(out)


def confusable(text: str, rng: random.Random) -> str:
    def swap(part: str) -> str:
        return "".join(LOOKALIKES[c] if c in LOOKALIKES and rng.random() < 0.3 else c for c in part)
    return re.sub(r"&#?\w+;|[^&]+|&", lambda m: m.group(0) if m.group(0).endswith(";") else swap(m.group(0)), text)


def markdown(text: str, rng: random.Random) -> str:
    spans = [s for s in _words(text) if rng.random() < 0.3]
    for start, end in reversed(spans):
        mark = rng.choice(["**", "*", "***", "`"])  # not ~~: struck text is dropped, which changes the meaning
        text = f"{text[:start]}{mark}{text[start:end]}{mark}{text[end:]}"
    return text


def html(text: str, rng: random.Random) -> str:
    spans = [s for s in _words(text) if rng.random() < 0.3]
    for start, end in reversed(spans):
        tag = rng.choice(["b", "strong", "em", "span"])
        text = f"{text[:start]}<{tag}>{text[start:end]}</{tag}>{text[end:]}"
    return text.replace(" ", "&nbsp;", 2).replace("$", "&#36;")


def case_change(text: str, rng: random.Random) -> str:
    change = str.upper if rng.random() < 0.5 else str.lower
    return re.sub(r"&#?\w+;|[^&]+|&", lambda m: m.group(0) if m.group(0).endswith(";") else change(m.group(0)), text)


def line_breaks(text: str, rng: random.Random) -> str:
    chars = list(text)
    for i, char in enumerate(chars):
        if char == " " and 0 < i < len(chars) - 1 and chars[i + 1].isalnum() and rng.random() < 0.2:
            chars[i] = "\n"
    return "".join(chars)


TRANSFORMS = {"invisible": invisible, "confusable": confusable, "markdown": markdown, "html": html,
              "case": case_change, "line_breaks": line_breaks}


def _applicable(name: str, case: dict) -> bool:
    if case["family"] == "other_language":
        return name in ("invisible", "markdown", "html", "line_breaks")
    if name in ("case", "confusable", "markdown") and case["family"] not in COMMITMENT_FAMILIES:
        return False  # "[NAME]" lower-cased, or SQL with look-alike letters, is no longer the same text
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(CASES) - 1), name=st.sampled_from(sorted(TRANSFORMS)), seed=st.integers(0, 2**16))
def test_meaning_preserving_rewrites_keep_the_verdict(index, name, seed):
    case = CASES[index]
    if not _applicable(name, case):
        return
    rewritten = TRANSFORMS[name](case["reply"], random.Random(seed))
    verdict = check(rewritten, DECISIONS[index])
    assert verdict.verdict == case["expect"]["verdict"], (name, rewritten, verdict.violations)


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_every_rewrite_keeps_every_verdict_of_the_set(name):
    """The same, exhaustively over the set with one seed per transformation (fails with the first case)."""
    rng = random.Random(name)
    for index, case in enumerate(CASES):
        if not _applicable(name, case):
            continue
        rewritten = TRANSFORMS[name](case["reply"], rng)
        verdict = check(rewritten, DECISIONS[index])
        assert verdict.verdict == case["expect"]["verdict"], (index + 1, rewritten, verdict.violations)
