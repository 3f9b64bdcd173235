"""`sopilot policy …`: policy versions (handbook §6): list, diff, archive, and try a proposed change."""

from __future__ import annotations

import argparse
import json
import sys

from sopilot.core.settings import Settings


def add_parser(commands) -> None:
    """Register `policy` and its subcommands on the top-level subparsers."""
    p = commands.add_parser("policy", help="policy versions: list, diff, archive, try a proposed change (§6)")
    sub = p.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    v = sub.add_parser("versions", help="every policy set with its effective date, and the one in force")
    v.add_argument("--on", metavar="YYYY-MM-DD", help="which set is in force on this day (default today)")
    v.add_argument("--json", action="store_true")
    v.set_defaults(run=cmd_policy)
    d = sub.add_parser("diff", help="what changed between two policy sets (versions, 'current' or files)")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--json", action="store_true")
    d.set_defaults(run=cmd_policy)
    t = sub.add_parser("try", help="a proposed policy file on the labelled guard cases and recent tickets")
    t.add_argument("proposed", metavar="PROPOSED.yaml")
    t.add_argument("--weeks", type=int, default=4, help="recorded weeks to replay (default 4)")
    t.add_argument("--until", metavar="YYYY-Www", help="last replayed week (default: the current week)")
    t.add_argument("--cases", default="eval/guard_cases.jsonl", metavar="FILE.jsonl")
    t.add_argument("--database", metavar="URL", help="audit database to replay (default SOPILOT_DATABASE_URL)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(run=cmd_policy)
    a = sub.add_parser("archive", help="copy the current policies.yaml into policy-archive/ before replacing it")
    a.add_argument("--json", action="store_true")
    a.set_defaults(run=cmd_policy)


def cmd_policy(args: argparse.Namespace, settings: Settings) -> int:
    """Run one `policy` subcommand."""
    import datetime as dt

    from sopilot.core.errors import InputError
    from sopilot.guard import versions

    knowledge = settings.knowledge_dir
    if args.policy_command == "versions":
        try:
            day = dt.date.fromisoformat(args.on) if args.on else None
        except ValueError:
            raise InputError(f"--on {args.on!r} is not a date: write it as YYYY-MM-DD") from None
        found = versions.policy_versions(knowledge)
        in_force = versions.version_in_force(day, knowledge)
        if args.json:
            sys.stdout.write(json.dumps({"versions": [v.to_json() for v in found], "in_force": in_force.version,
                                         "documents": [d.to_json() for d in versions.document_versions(knowledge)]})
                             + "\n")
        else:
            for item in found:
                mark = "  <- in force" if item.path == in_force.path else ""
                print(f"{item.version:12} {item.effective_date or 'from the start'}  {item.path}{mark}")
            for doc in versions.document_versions(knowledge):
                print(f"  {doc.file}:{doc.line}  document version {doc.version}, effective "
                      f"{doc.effective_date or '(not stated)'}")
        return 0
    if args.policy_command == "diff":
        diff = versions.diff_policies(versions.resolve(args.a, knowledge), versions.resolve(args.b, knowledge))
        sys.stdout.write(json.dumps(diff.to_json(), ensure_ascii=False) + "\n" if args.json else diff.to_markdown())
        return 0
    if args.policy_command == "archive":
        path = versions.archive_current(knowledge)
        if args.json:
            sys.stdout.write(json.dumps({"archived": str(path)}) + "\n")
        else:
            print(f"archived as {path}")
        return 0
    from sopilot.cli.report import _settings
    from sopilot.reports.trial import try_change

    trial = try_change(_settings(args, settings), args.proposed, weeks=args.weeks, until=args.until, cases=args.cases)
    sys.stdout.write(json.dumps(trial.to_json(), ensure_ascii=False, default=str) + "\n" if args.json
                     else trial.to_markdown())
    return 0
