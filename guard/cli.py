"""The guard's command-line entry points: read input, run the guard, print CONTRACT §6 JSON or a summary.

`run_guard` serves `sopilot guard --ticket FILE [--reply FILE]` and `sopilot guard --batch FILE.jsonl`;
`run_eval_guard` serves `sopilot eval guard --cases FILE.jsonl`. Paths may be `-` for stdin. Input
is validated completely before anything is printed, so bad input (exit 2 via `InputError`) never
leaves half a JSON Lines stream behind.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from guard.cases import EXPECT_KEYS, compare
from guard.decide import Classifier
from guard.facts import Ticket, parse_ticket
from guard.policy import Policies, load_policies
from guard.result import GuardResult, guard_ticket
from sopilot.errors import InputError
from sopilot.settings import Settings

POLICY_FILE = "policies.yaml"


def policies_for(settings: Settings) -> Policies:
    """The policy file of the configured knowledge dir (loaded once per process and file version)."""
    return load_policies(settings.knowledge_dir / POLICY_FILE)


def _read(path: str, what: str) -> str:
    from sopilot.jsonl import read_text

    return read_text(path, what)


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def _case(row: Any, where: str) -> tuple[Ticket, str | None, Mapping[str, Any]]:
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


def _lines(path: str, what: str) -> list[tuple[int, Any]]:
    rows = []
    for number, line in enumerate(_read(path, what).splitlines(), start=1):
        if line.strip():
            rows.append((number, _json(line, f"{path} line {number}")))
    return rows


def _emit(data: Mapping[str, Any], *, indent: int | None = None) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=indent, default=str) + "\n")


def _summary(result: GuardResult) -> str:
    d = result.decision
    money = d.remuneration
    amount = f" ${money.amount:,.2f}" if money.amount is not None else ""
    lines = [f"{d.policy or '(no policy)'} → {d.outcome}" + (f" (rule {d.rule})" if d.rule else ""),
             f"  action: {d.action}",
             f"  escalate to: {d.escalate_to or '-'} · SLA: {d.sla or '-'} · approval required: "
             f"{'yes' if d.approval_required else 'no'}",
             f"  remuneration: {money.type}{amount}",
             "  reasons:", *(f"    - {reason}" for reason in d.reasons),
             f"  verdict: {result.verdict.verdict}",
             *(f"    ✗ {v.code}: {v.message} — {v.evidence!r}" for v in result.verdict.violations),
             f"  reply: {result.reply}"]
    return "\n".join(lines)


def run_guard(*, ticket: str | None, reply: str | None, batch: str | None, as_json: bool, settings: Settings,
              classify: Classifier | None = None) -> int:
    """`sopilot guard`: one ticket (and an optional draft file) or a JSON Lines batch; returns the exit code.

    Raises:
        InputError: unreadable files, malformed JSON, invalid ticket fields (with the line number in a batch).
    """
    if (ticket is None) == (batch is None):
        raise InputError("give --ticket FILE (optionally with --reply FILE) or --batch FILE.jsonl")
    if batch is not None and reply is not None:
        raise InputError("--reply goes with --ticket; in --batch each line carries its own \"reply\"")
    if ticket == "-" and reply == "-":
        raise InputError("only one of --ticket and --reply can read stdin ('-')")
    policies = policies_for(settings)
    stopped = settings.stopped
    if batch is not None:
        cases = [_case(row, f"{batch} line {n}") for n, row in _lines(batch, "batch file")]
        results = [guard_ticket(t, policies, reply=r, classify=classify, stopped=stopped) for t, r, _ in cases]
        for number, result in enumerate(results, start=1):
            if as_json:
                _emit(result.to_json())
            else:
                d = result.decision
                print(f"{number}: {d.policy or '(no policy)'} {d.outcome} {result.verdict.verdict}"
                      + "".join(f" {v.code}" for v in result.verdict.violations))
        if not as_json:
            print(f"{len(results)} tickets: " + ", ".join(
                f"{outcome} {sum(r.decision.outcome == outcome for r in results)}"
                for outcome in ("automate", "escalate", "manual_review")), file=sys.stderr)
        return 0
    parsed, draft, _ = _case(_json(_read(ticket, "ticket file"), f"ticket file {ticket}"), f"ticket file {ticket}")
    if reply is not None:
        draft = _read(reply, "reply file").rstrip("\n")
    result = guard_ticket(parsed, policies, reply=draft, classify=classify, stopped=stopped)
    if as_json:
        _emit(result.to_json(), indent=2)
    else:
        print(_summary(result))
    return 0


def run_eval_guard(*, cases: str, as_json: bool, settings: Settings, classify: Classifier | None = None) -> int:
    """`sopilot eval guard`: agreement with labelled cases (CONTRACT §4); exit 0 if all agree, else 1.

    Raises:
        InputError: unreadable file, malformed JSON, invalid tickets, or an `expect` with unknown keys.
    """
    policies = policies_for(settings)
    rows = _lines(cases, "cases file")
    failed = []
    for number, row in rows:
        where = f"{cases} line {number}"
        ticket, reply, expect = _case(row, where)
        if not isinstance(expect, dict) or set(expect) - EXPECT_KEYS:
            raise InputError(f"{where}: \"expect\" must be an object holding only "
                             f"{', '.join(sorted(EXPECT_KEYS))}; got {expect!r}")
        result = guard_ticket(ticket, policies, reply=reply, classify=classify, stopped=settings.stopped)
        mismatches = compare(expect, result)
        if mismatches:
            got = result.to_json()
            failed.append({"line": number, **row, "got": {k: got[k] for k in ("policy", "outcome", "verdict")}
                           | {"violations": [v["code"] for v in got["violations"]], "reasons": got["reasons"]},
                           "mismatches": mismatches})
    report = {"n": len(rows), "passed": len(rows) - len(failed), "failed": failed}
    if as_json:
        _emit(report)
    else:
        print(f"guard eval: {report['passed']}/{report['n']} cases agree")
        for case in failed:
            print(f"  line {case['line']}: " + "; ".join(case["mismatches"]))
    return 0  # disagreement is a finding, not a failure of the command (CONTRACT §1: 1 = internal failure)
