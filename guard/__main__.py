"""`python -m guard`: the guard's commands without the rest of sopilot (no retriever, so no classifier)."""

from __future__ import annotations

import argparse
import sys

from guard.cli import run_eval_guard, run_guard
from sopilot.errors import SopilotError, UserError
from sopilot.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Parse `--ticket/--reply/--batch/--cases/--json` and run the guard or its evaluation."""
    parser = argparse.ArgumentParser(prog="python -m guard", description="Policy decision and reply verdict.")
    parser.add_argument("--ticket", metavar="FILE", help="a ticket JSON file ('-' for stdin)")
    parser.add_argument("--reply", metavar="FILE", help="a draft reply text file to check")
    parser.add_argument("--batch", metavar="FILE.jsonl", help="one {\"ticket\": …, \"reply\": …} per line")
    parser.add_argument("--cases", metavar="FILE.jsonl", help="labelled cases: print the agreement report")
    parser.add_argument("--json", action="store_true", help="print JSON (JSON Lines for --batch)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.cases:
            return run_eval_guard(cases=args.cases, as_json=args.json, settings=settings)
        return run_guard(ticket=args.ticket, reply=args.reply, batch=args.batch, as_json=args.json,
                         settings=settings)
    except UserError as exc:
        print(f"guard: {exc}", file=sys.stderr)
        return 2
    except SopilotError as exc:
        print(f"guard: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
