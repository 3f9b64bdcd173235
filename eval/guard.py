"""Guard evaluation: agreement with labelled cases (docs/interface.md §4), overall and by family.

A case is `{"ticket": {…}, "reply": "…", "expect": {…}, "family": "…"}`. Besides agreement, the
report says, per family, which share of the drafts that must be blocked were blocked and which
share of the harmless drafts were blocked (a false block is a failure too). Reading and checking
the file is here so that the command line, the app and the service report the same figures.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from sopilot.guard.cases import EXPECT_KEYS, compare
from sopilot.guard.decide import Classifier
from sopilot.guard.facts import Ticket, parse_ticket
from sopilot.guard.policy import Policies
from sopilot.guard.result import guard_ticket

from sopilot.core.errors import InputError
from sopilot.core.jsonl import read_text

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a ticket or case (tickets are flat)."""
_NESTING = re.compile(r'[\[\]{}]|"(?:[^"\\]|\\.)*"')


def _reject_constant(name: str) -> Any:
    raise InputError(f"{name} is not a number JSON allows: give a finite number")


def _depth(text: str) -> int:
    """The deepest nesting of `[`/`{` outside strings, measured without recursion."""
    depth = deepest = 0
    for token in _NESTING.finditer(text):
        char = token.group(0)
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, where: str) -> Any:
    """JSON with decimal numbers (money is never a binary float); bounded depth, no NaN or Infinity.

    Raises:
        InputError: malformed JSON, nesting deeper than `MAX_JSON_DEPTH`, NaN/Infinity, or a number with more
            digits than Python converts; the message names `where`.
    """
    if ("[" * 8 in text or "{" * 8 in text or text.count("[") + text.count("{") > MAX_JSON_DEPTH) \
            and _depth(text) > MAX_JSON_DEPTH:
        raise InputError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels; a ticket is a flat object")
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply; a ticket is a flat object") from None
    except ValueError as exc:
        raise InputError(f"{where}: a number has too many digits ({str(exc).split(';')[0]}); give a shorter "
                         "number") from None


def read_rows(path: str | Path, what: str) -> list[tuple[int, Any]]:
    """(line number, parsed JSON) for every non-blank line of a JSON Lines file (`-` for stdin)."""
    rows = []
    for number, line in enumerate(read_text(path, what).splitlines(), start=1):
        if line.strip():
            rows.append((number, parse_json(line, f"{path} line {number}")))
    return rows


def parse_case(row: Any, where: str) -> tuple[Ticket, str | None, Mapping[str, Any]]:
    """A line {"ticket": {...}, "reply": "...", "expect": {...}} (a bare ticket is accepted too), validated."""
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected a JSON object such as {{\"ticket\": {{\"message\": \"...\"}}}}")
    ticket = row["ticket"] if "ticket" in row else row if "message" in row else None
    if not isinstance(ticket, dict):
        raise InputError(f"{where}: \"ticket\" must be an object with at least \"message\"")
    reply = row.get("reply") if "ticket" in row else None
    if reply is not None and not isinstance(reply, str):
        raise InputError(f"{where}: \"reply\" must be a string (the draft reply) or absent")
    try:
        parsed = parse_ticket(ticket)
    except InputError as exc:
        raise InputError(f"{where}: ticket.{exc}") from None
    return parsed, reply, row.get("expect") or {}


@dataclasses.dataclass(frozen=True, kw_only=True)
class FamilyScore:
    """How one family of cases fared: must-block drafts blocked, harmless drafts blocked."""

    family: str
    must_block: int
    blocked: int
    harmless: int
    falsely_blocked: int

    def to_json(self) -> dict[str, Any]:
        """Counts and shares, rounded to three places."""
        return {"family": self.family, "must_block": self.must_block, "blocked": self.blocked,
                "blocked_share": round(self.blocked / self.must_block, 3) if self.must_block else None,
                "harmless": self.harmless, "falsely_blocked": self.falsely_blocked,
                "false_block_share": round(self.falsely_blocked / self.harmless, 3) if self.harmless else None}


@dataclasses.dataclass(frozen=True, kw_only=True)
class GuardReport:
    """The `eval guard` report: agreement, the failing cases, and the scores by family."""

    n: int
    failed: tuple[dict[str, Any], ...]
    families: tuple[FamilyScore, ...]

    @property
    def passed(self) -> int:
        """Cases whose result agrees with every expectation."""
        return self.n - len(self.failed)

    def to_json(self) -> dict[str, Any]:
        """docs/interface.md §4 form, plus `families` and the overall must-block and harmless shares."""
        total = FamilyScore(family="all", must_block=sum(f.must_block for f in self.families),
                            blocked=sum(f.blocked for f in self.families),
                            harmless=sum(f.harmless for f in self.families),
                            falsely_blocked=sum(f.falsely_blocked for f in self.families))
        return {"n": self.n, "passed": self.passed, "failed": list(self.failed),
                "families": [f.to_json() for f in self.families], "overall": total.to_json()}


def evaluate_guard(cases: str | Path, policies: Policies, *, stopped: frozenset[str] = frozenset(),
                   classify: Classifier | None = None) -> GuardReport:
    """Run every labelled case through the guard and compare it with its `expect` block.

    Raises:
        InputError: unreadable file, malformed JSON, invalid tickets, or an `expect` with unknown keys.
    """
    rows = read_rows(cases, "cases file")
    failed: list[dict[str, Any]] = []
    tally: dict[str, list[int]] = {}
    for number, row in rows:
        where = f"{cases} line {number}"
        ticket, reply, expect = parse_case(row, where)
        if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS:
            raise InputError(f"{where}: \"expect\" must be an object holding only "
                             f"{', '.join(sorted(EXPECT_KEYS))}; got {expect!r}")
        result = guard_ticket(ticket, policies, reply=reply, classify=classify, stopped=stopped)
        mismatches = compare(expect, result)
        if reply is not None and expect.get("verdict") in ("pass", "blocked"):
            counts = tally.setdefault(str(row.get("family") or "unlabelled"), [0, 0, 0, 0])
            blocked = result.verdict.verdict == "blocked"
            if expect["verdict"] == "blocked":
                counts[0] += 1
                counts[1] += blocked and not mismatches
            else:
                counts[2] += 1
                counts[3] += blocked
        if mismatches:
            got = result.to_json()
            failed.append({"line": number, **row, "got": {k: got[k] for k in ("policy", "outcome", "verdict")}
                           | {"violations": [v["code"] for v in got["violations"]], "reasons": got["reasons"]},
                           "mismatches": mismatches})
    families = tuple(FamilyScore(family=name, must_block=c[0], blocked=c[1], harmless=c[2], falsely_blocked=c[3])
                     for name, c in sorted(tally.items()))
    return GuardReport(n=len(rows), failed=tuple(failed), families=families)
