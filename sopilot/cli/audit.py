"""`sopilot audit ledger` and `sopilot audit labels`: what an auditor and the evaluation take out of the log."""

from __future__ import annotations

import argparse

from sopilot.core.settings import Settings


def _ledger(args: argparse.Namespace, settings: Settings) -> int:
    from sopilot.audit import ledger_command

    return ledger_command(fmt=args.format, output=args.output, settings=settings)


def _labels(args: argparse.Namespace, settings: Settings) -> int:
    from sopilot.audit import labels_command

    return labels_command(output=args.output, settings=settings)


def add_subcommands(audit: argparse._SubParsersAction) -> None:
    """Register `ledger` and `labels` under `sopilot audit`."""
    p = audit.add_parser("ledger", help="every automated refund and credit with its ticket id (handbook §5)")
    p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    p.add_argument("--output", default="-", help="file (default stdout)")
    p.set_defaults(run=_ledger)
    p = audit.add_parser("labels", help="agents' wrong-SOP marks as {query, relevant} JSON Lines for sopilot eval")
    p.add_argument("--output", default="-", help="file (default stdout)")
    p.set_defaults(run=_labels)
