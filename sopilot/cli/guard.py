"""The guard's command-line entry points: read input, run the guard, print docs/interface.md §6 JSON or a summary.

`run_guard` serves `sopilot guard --ticket FILE [--reply FILE]` and `sopilot guard --batch FILE.jsonl`;
`run_eval_guard` serves `sopilot eval guard --cases FILE.jsonl`. Paths may be `-` for stdin. Input
is validated completely before anything is printed, so bad input (exit 2 via `InputError`) never
leaves half a JSON Lines stream behind.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from sopilot.core.errors import InputError
from sopilot.core.jsonl import read_text
from sopilot.core.settings import Settings
from sopilot.eval.guard import evaluate_guard, parse_case, parse_json, read_rows
from sopilot.guard.decide import Classifier
from sopilot.guard.policy import policies_for
from sopilot.guard.result import GuardResult, guard_ticket


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
        cases = [parse_case(row, f"{batch} line {n}") for n, row in read_rows(batch, "batch file")]
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
    if ticket is None:  # checked above: without --batch there is a --ticket
        raise InputError("give --ticket FILE (optionally with --reply FILE) or --batch FILE.jsonl")
    parsed, draft, _ = parse_case(parse_json(read_text(ticket, "ticket file"), f"ticket file {ticket}"),
                                  f"ticket file {ticket}")
    if reply is not None:
        draft = read_text(reply, "reply file").rstrip("\n")
    result = guard_ticket(parsed, policies, reply=draft, classify=classify, stopped=stopped)
    if as_json:
        _emit(result.to_json(), indent=2)
    else:
        print(_summary(result))
    return 0


def run_eval_guard(*, cases: str, as_json: bool, settings: Settings, classify: Classifier | None = None) -> int:
    """`sopilot eval guard`: agreement with labelled cases (docs/interface.md §4), and the by-family block rates.

    Disagreement is a finding, not a failure of the command: exit 0 (docs/interface.md §1: 1 = internal failure).
    """
    report = evaluate_guard(cases, policies_for(settings), stopped=settings.stopped, classify=classify)
    if as_json:
        _emit(report.to_json())
        return 0
    print(f"guard eval: {report.passed}/{report.n} cases agree")
    for score in report.families:
        row = score.to_json()
        print(f"  {score.family:<24} must-block blocked {score.blocked}/{score.must_block}"
              f"   harmless blocked {score.falsely_blocked}/{score.harmless}"
              + ("" if row["blocked_share"] is None else f"   ({row['blocked_share']:.1%} blocked)"))
    for case in report.failed:
        print(f"  line {case['line']}: " + "; ".join(case["mismatches"]))
    return 0
