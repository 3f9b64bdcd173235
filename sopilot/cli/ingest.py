"""`sopilot ingest`: rebuild the index, add or update documents in it, or remove them (docs/interface.md §1).

    sopilot ingest                    # the knowledge directory: a full rebuild
    sopilot ingest "loyalty.docx"     # add or update that document; every other SOP is kept
    sopilot ingest --remove old.md    # take that document's SOPs out

Progress goes to stderr, also with `--json`; the summary (added, changed, removed, kept) goes to
stderr as text, or to stdout as one JSON document with `--json`. Exit 2 when a file was skipped
or the policy file disagrees with the documents, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sopilot.core.settings import Settings


def add_parser(commands) -> None:
    """Register `ingest` on the top-level subparsers."""
    p = commands.add_parser("ingest", help="rebuild the index, or add/update/remove SOP documents in it")
    p.add_argument("paths", nargs="*", help="documents or directories to add or update (default: rebuild from the "
                                             "knowledge dir)")
    p.add_argument("--remove", action="append", default=[], metavar="PATH",
                   help="take this document's SOPs out of the index (repeatable)")
    p.add_argument("--reset", action="store_true", help="drop every index version first")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON document on stdout")
    p.set_defaults(run=cmd_ingest)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _names(changes, shown: int = 10) -> str:
    names = ", ".join(f"{c.sop_id} ({c.source})" for c in changes[:shown])
    return f"{len(changes)} SOPs: {names}, …" if len(changes) > shown else names


def summary_lines(report) -> list[str]:
    """The human summary of an ingest report, one line per kind of change."""
    changes = report.changes
    lines = [f"index {report.version} ({report.mode}): {len(report.sop_ids)} SOPs, {report.chunks} chunks "
             f"({report.embedded} embedded, {report.chunks - report.embedded} unchanged)"]
    lines.append(f"added: {_names(changes.added) or 'none'}")
    lines.append(f"changed: {_names(changes.changed) or 'none'}")
    lines.append(f"removed: {_names(changes.removed) or 'none'}")
    lines.append(f"kept: {len(changes.kept)} SOPs")
    return lines


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ingest and report it."""
    from sopilot.ingest.pipeline import ingest

    report = ingest([Path(p) for p in args.paths] or None, settings, remove=[Path(p) for p in args.remove],
                    reset=args.reset, progress=_progress)
    for skipped in report.skipped:
        print(f"skipped {skipped.source}: {skipped.reason}", file=sys.stderr)
    for error in report.policy_errors:
        print(f"policy: {error}", file=sys.stderr)
    if args.json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    else:
        for line in summary_lines(report):
            print(line, file=sys.stderr)
    return 0 if report.ok else 2
