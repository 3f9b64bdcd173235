"""`sopilot serve [--host 127.0.0.1] [--port 8000]`: the HTTP service (docs/interface.md §7) on uvicorn.

Bound to loopback unless told otherwise. The models load once, in the background, right after the
port opens: `GET /healthz` answers 503 while they load and 200 once the service is ready.
"""

from __future__ import annotations

import argparse

from sopilot.core.settings import Settings


def add_parser(commands) -> None:
    """Register `serve` on the top-level subparsers."""
    p = commands.add_parser("serve", help="the HTTP service (suggest, guard, retrieve, feedback, stops, audit)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(run=cmd_serve)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the service until interrupted."""
    from sopilot.service import serve

    serve(settings, host=args.host, port=args.port, log_level=args.log_level)
    return 0
