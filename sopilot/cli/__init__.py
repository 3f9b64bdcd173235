"""The `sopilot` command line: parse arguments, call one library function, print its result.

Data goes to stdout (exactly one JSON document with `--json`, JSON Lines with `--batch`);
progress and messages go to stderr. Exit 0 on success, 2 on bad input, 1 on internal failure.
Heavy libraries are imported only by the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sopilot.core.errors import SopilotError, UserError
from sopilot.core.settings import Settings


def _read_lines(path: str) -> list[tuple[int, dict]]:
    """JSON Lines queries from a file or stdin (`-`), with line numbers."""
    from sopilot.core.jsonl import read_jsonl

    return read_jsonl(path, "query file", example='{"query": "customer charged twice"}')


def _classifier(settings: Settings):
    """The guard's classifier for tickets without sop_id (loads the index only when a ticket needs it)."""
    from sopilot.suggest.resources import classifier

    return classifier(settings)


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def cmd_lint(args: argparse.Namespace, settings: Settings) -> int:
    """`sopilot lint`: placeholders, SOPs without a procedure, thresholds per SOP."""
    from sopilot.ingest.lint import lint
    from sopilot.ingest.pipeline import parse_paths

    parsed = parse_paths([Path(p) for p in args.paths] or [settings.knowledge_dir], settings)
    findings = lint(parsed.sops)
    if args.json:
        _print_json({"findings": [{"kind": f.kind, "sop_id": f.sop_id, "source": f.source, "line": f.line,
                                   "text": f.text} for f in findings],
                     "skipped": [{"source": s.source, "reason": s.reason} for s in parsed.skipped]})
    else:
        for f in findings:
            print(f"{f.source}:{f.line}: {f.kind} [{f.sop_id}] {f.text}")
        for s in parsed.skipped:
            print(f"skipped {s.source}: {s.reason}", file=sys.stderr)
    return 2 if parsed.skipped else 0


def cmd_retrieve(args: argparse.Namespace, settings: Settings) -> int:
    """`sopilot retrieve`: ranked SOP hits for a query or a batch."""
    from sopilot.cli.retrieve import cmd_retrieve as run

    return run(args, settings)


def cmd_guard(args: argparse.Namespace, settings: Settings) -> int:
    """`sopilot guard`: the decision for a ticket and the verdict on a draft."""
    from sopilot.cli.guard import run_guard

    return run_guard(ticket=args.ticket, reply=args.reply, batch=args.batch, as_json=args.json,
                     settings=settings, classify=_classifier(settings))


def cmd_suggest(args: argparse.Namespace, settings: Settings) -> int:
    """`sopilot suggest`: one guarded suggestion for a ticket file."""
    from sopilot.cli.suggest import suggest_command

    return suggest_command(ticket=args.ticket, as_json=args.json, settings=settings)


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """`sopilot eval retrieval|guard`: offline evaluation on a labelled set."""
    if args.what == "retrieval":
        from sopilot.cli.evaluate import run_eval_retrieval

        return run_eval_retrieval(queries=args.queries, k=args.k, as_json=args.json, settings=settings,
                                  report_dir=Path(args.report_dir) if args.report_dir else None)
    from sopilot.cli.guard import run_eval_guard

    return run_eval_guard(cases=args.cases, as_json=args.json, settings=settings, classify=_classifier(settings))


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    """`sopilot audit …`: export the log, the remuneration ledger, wrong-SOP labels."""
    from sopilot.audit import export_command

    return export_command(fmt=args.format, output=args.output, settings=settings)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command (docs/interface.md §1)."""
    parser = argparse.ArgumentParser(prog="sopilot", description="Support copilot: SOP retrieval, guarded replies.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from sopilot.cli import ingest as ingest_cli

    ingest_cli.add_parser(commands)

    p = commands.add_parser("lint", help="placeholders, SOPs without procedure, thresholds per SOP")
    p.add_argument("paths", nargs="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_lint)

    p = commands.add_parser("retrieve", help="ranked SOP hits for a query")
    p.add_argument("query", nargs="?")
    p.add_argument("--k", type=int, default=None)
    p.add_argument("--category")
    p.add_argument("--batch", metavar="FILE.jsonl", help="one {\"query\": …} per line ('-' for stdin)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_retrieve)

    p = commands.add_parser("guard", help="policy decision for a ticket and verdict on a draft reply")
    p.add_argument("--ticket", metavar="FILE")
    p.add_argument("--reply", metavar="FILE")
    p.add_argument("--batch", metavar="FILE.jsonl")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_guard)

    p = commands.add_parser("suggest", help="retrieve → draft reply → guard")
    p.add_argument("--ticket", metavar="FILE", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_suggest)

    p = commands.add_parser("eval", help="offline evaluation")
    p.add_argument("what", choices=["retrieval", "guard"])
    p.add_argument("--queries", metavar="FILE.jsonl", default="eval/queries.jsonl")
    p.add_argument("--cases", metavar="FILE.jsonl", default="eval/guard_cases.jsonl")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--report-dir", help="where the Markdown report and chart go (default eval/reports)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_eval)

    p = commands.add_parser("audit", help="the audit log")
    audit = p.add_subparsers(dest="audit_command", required=True)
    e = audit.add_parser("export", help="export every event")
    e.add_argument("--format", choices=["csv", "jsonl"], default="jsonl")
    e.add_argument("--output", default="-", help="file (default stdout)")
    e.set_defaults(run=cmd_audit)
    from sopilot.cli import audit as audit_cli

    audit_cli.add_subcommands(audit)

    from sopilot.cli import keys as keys_cli
    from sopilot.cli import serve as serve_cli

    keys_cli.add_parser(commands)
    serve_cli.add_parser(commands)
    from sopilot.cli import policy as policy_cli
    from sopilot.cli import report as report_cli

    report_cli.add_parser(commands)
    policy_cli.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code."""
    args = build_parser().parse_args(argv)
    if getattr(args, "k", None) is None and args.command == "retrieve":
        args.k = 10 if args.batch else 5
    try:
        settings = Settings.from_env()
        return args.run(args, settings)
    except UserError as exc:
        print(f"sopilot {args.command}: {exc}", file=sys.stderr)
        return 2
    except SopilotError as exc:
        print(f"sopilot {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
