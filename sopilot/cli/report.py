"""`sopilot report …`: the handbook's reports (L.1, L.2, §6, §8) and the demo history.

Each report prints Markdown by default (or with `--md`) and exactly one JSON document with
`--json` (docs/interface.md §8). `--record` also records the tasks, notifications and private flags the
report raises, once each (the Monday 09:00 run does this, see `sopilot.reports.schedule`).
`--database URL` reads another audit database than `SOPILOT_DATABASE_URL`, such as a demo one.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from sopilot.core.errors import UserError
from sopilot.core.settings import Settings


def _output(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="one JSON document on stdout")
    group.add_argument("--md", action="store_true", help="Markdown on stdout (the default)")
    p.add_argument("--database", metavar="URL", help="audit database (SQLAlchemy URL or SQLite file path)")


def add_parser(commands) -> None:
    """Register `report` and its subcommands on the top-level subparsers."""
    p = commands.add_parser("report", help="the handbook's reports: overrides (L.1), gaps (L.2), policies (§6)")
    sub = p.add_subparsers(dest="report_command", required=True, metavar="REPORT")

    r = sub.add_parser("overrides", help="weekly Automation Policy Exception Report (L.1)")
    r.add_argument("--week", metavar="YYYY-Www", help="ISO week (default: the current week)")
    r.add_argument("--record", action="store_true", help="record the tasks, notification and flags it raises")
    _output(r)
    r.set_defaults(run=cmd_report)

    for name, text in (("gaps", "knowledge-base gaps (L.2)"), ("policies", "policy review per policy (§6, §8)")):
        r = sub.add_parser(name, help=text)
        r.add_argument("--weeks", type=int, default=13, help="how many ISO weeks (default 13, one quarter)")
        r.add_argument("--until", metavar="YYYY-Www", help="last week of the period (default: the current week)")
        if name == "gaps":
            r.add_argument("--record", action="store_true", help="record the SME tasks and content-team flags")
        _output(r)
        r.set_defaults(run=cmd_report)

    r = sub.add_parser("weekly", help="what the Monday 09:00 run does: last week's L.1 and L.2, tasks recorded")
    _output(r)
    r.set_defaults(run=cmd_report)

    r = sub.add_parser("csat-import", help="import CSAT answers from a CSV (ticket_id,score,comment,at) (§8)")
    r.add_argument("file", metavar="FILE.csv")
    _output(r)
    r.set_defaults(run=cmd_report)

    r = sub.add_parser("tasks", help="tasks and flags the reports raised")
    r.add_argument("--assignee", help="only this role, e.g. 'Team Lead'")
    r.add_argument("--private", action="store_true", help="include private training-review flags (Team Leads)")
    _output(r)
    r.set_defaults(run=cmd_report)

    r = sub.add_parser("demo-data", help="write a generated audit history (planted patterns) to a new database")
    r.add_argument("--weeks", type=int, default=6)
    r.add_argument("--end-week", metavar="YYYY-Www", help="last week generated (default: the current week)")
    r.add_argument("--seed", type=int, default=7)
    _output(r)
    r.set_defaults(run=cmd_report)


def _settings(args: argparse.Namespace, settings: Settings, *, create: bool = False) -> Settings:
    """The settings with `--database` applied; a report never creates an empty database by a typo."""
    url = getattr(args, "database", None)
    if not url:
        return settings
    if "://" not in url:
        url = f"sqlite:///{url}"
    path = url.split(":///", 1)[1] if url.startswith("sqlite") and ":///" in url else ""
    if path and path != ":memory:" and not create and not Path(path).is_file():
        raise UserError(f"--database {args.database!r}: no audit database there. Check the path, or write a demo one "
                        "with `sopilot report demo-data --database PATH`")
    return dataclasses.replace(settings, database_url=url)


def _emit(args: argparse.Namespace, report) -> int:
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False, default=str) + "\n")
    else:
        sys.stdout.write(report.to_markdown())
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """Run one `report` subcommand."""
    command = args.report_command
    settings = _settings(args, settings, create=command == "demo-data")
    if command == "overrides":
        from sopilot.reports.overrides import override_report

        return _emit(args, override_report(settings, args.week, record=args.record))
    if command == "gaps":
        from sopilot.reports.gaps import gap_report

        return _emit(args, gap_report(settings, weeks=args.weeks, until=args.until, record=args.record))
    if command == "policies":
        from sopilot.reports.review import policy_review

        return _emit(args, policy_review(settings, weeks=args.weeks, until=args.until))
    if command == "weekly":
        from sopilot.reports.schedule import weekly_run

        return _emit(args, weekly_run(settings))
    if command == "csat-import":
        from sopilot.reports.csat import import_csv

        result = import_csv(settings, args.file)
        if args.json:
            sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        else:
            print(f"recorded {result.recorded} CSAT answers ({result.duplicates} already recorded); "
                  f"{result.low} low scores flagged for the Team Lead")
        return 0
    if command == "tasks":
        from sopilot.reports.tasks import list_tasks

        found = list_tasks(settings, assignee=args.assignee, include_private=args.private)
        if args.json:
            sys.stdout.write(json.dumps({"tasks": [t.to_json() for t in found]}, ensure_ascii=False) + "\n")
        else:
            for task in found:
                print(f"- [{task.source}] {task.assignee}: {task.title} (`{task.key}`)")
        return 0
    if command == "demo-data":
        from sopilot.reports.demo import write_demo

        planted = write_demo(settings, weeks=args.weeks, end_week=args.end_week, seed=args.seed)
        if args.json:
            sys.stdout.write(json.dumps({"database": settings.audit_url, "planted": planted.to_json()}) + "\n")
        else:
            print(f"wrote {planted.events} events for {planted.tickets} tickets, weeks {planted.weeks[0]} to "
                  f"{planted.weeks[-1]}, into {settings.audit_url}")
            print(f"planted: a policy gap in {planted.gap_policy} in {planted.gap_week}, an inconsistent agent "
                  f"({planted.inconsistent_agent}), {planted.kb_gap_count} tickets without an SOP, "
                  f"{planted.kb_review_count} poorly served {planted.kb_review_policy} tickets")
        return 0
    raise UserError(f"unknown report {command!r}: use overrides, gaps, policies, weekly, csat-import, tasks or "
                    "demo-data")
